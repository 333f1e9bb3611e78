"""What runs on a worker: one job, from its frames and parameters to its product records.

:func:`execute_job` is a plain top-level function of picklable arguments, so the same call runs
in the main process (``serial``), in a process pool or on a Dask worker. It goes through
:func:`vircamframe.run_recipe`, the one way to run a recipe, and logs the job in full to its
own file under ``temp/logs/``, and measures its peak memory (:mod:`vircamframe.memory`); a
failure comes back as a one-line error, never as an exception that would take the other jobs
down.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..association import parent_name
from ..errors import VircamError
from ..frames import Frame, FrameSet
from ..memory import peak_mb, reset_peak
from .manifest import ProductRecord, stored_md5

__all__ = ["JobResult", "JobSpec", "execute_job"]


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to run one job."""

    job_id: str
    recipe: str
    frames: tuple[Frame, ...]  # in SOF order, calibrations with their association level
    params: dict[str, Any]
    output_dir: str
    log_file: str
    qc_plots: bool = True
    qc_dir: str | None = None
    threads: int = 1


@dataclass
class JobResult:
    """What came of a job: its products, or the error that stopped it."""

    job_id: str
    ok: bool
    seconds: float
    products: list[ProductRecord] = field(default_factory=list)
    error: str = ""
    peak_rss_mb: float = 0.0  # the job's process or one of its tools, the larger


def execute_job(spec: JobSpec) -> JobResult:
    """Run ``spec`` and describe its products (``DATAMD5`` and the frame each was made from)."""
    from ..recipe import run_recipe

    logger = logging.getLogger("vircamframe")
    Path(spec.log_file).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(spec.log_file, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    start = time.perf_counter()
    reset_peak()
    try:
        frames = FrameSet(spec.frames)
        products = run_recipe(spec.recipe, frames, spec.params, output_dir=spec.output_dir,
                              overwrite=True, qc_plots=spec.qc_plots, qc_dir=spec.qc_dir,
                              threads=spec.threads)
        records = [
            ProductRecord(str(p.path), p.tag, stored_md5(p.path) or "", parent_name(p)) for p in products
        ]
        return JobResult(spec.job_id, True, time.perf_counter() - start, records, peak_rss_mb=peak_mb())
    except VircamError as err:
        logger.error("%s", err)
        return JobResult(spec.job_id, False, time.perf_counter() - start, error=str(err))
    except Exception as err:  # a bug or an environment failure: one line here, the trace in the log
        logger.error("%s", traceback.format_exc())
        message = f"{type(err).__name__}: {err}".splitlines()[0]
        return JobResult(spec.job_id, False, time.perf_counter() - start, error=message)
    finally:
        logger.removeHandler(handler)
        handler.close()
