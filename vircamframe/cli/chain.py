"""``vircam chain``: from a directory of raw frames to the products of target tags.

::

    vircam chain --raw data/raw --target SKYSUB_SCI --out reduced --calib refcat.sof --dry-run
    vircam chain --workflow science.yml -p vircam_sky_combine.sky_window=60 --executor dask
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..chain import Chain
from ..chain.executors import EXECUTORS
from ..errors import UsageError
from ..logconfig import LOG_LEVELS, configure_logging
from .errors import user_errors


def parse_params(values: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``[RECIPE.]NAME=VALUE`` options as ``{recipe or "*": {name: value}}``."""
    params: dict[str, dict[str, str]] = {}
    for item in values:
        if "=" not in item:
            raise UsageError(f"parameters are given as [RECIPE.]NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        recipe, _, param = name.rpartition(".")
        params.setdefault(recipe or "*", {})[param] = value
    return params


def run_chain(chain: Chain, dry_run: bool, reset_progress: bool, clean: bool, log_level: str,
              prog: str) -> None:
    """Print the plan, or clean, log to ``temp/`` and run it; exit 1 when a job failed."""
    plan = chain.plan()
    if dry_run:
        click.echo(plan.describe())
        return
    if clean:
        removed = chain.clean()
        click.echo(f"{prog}: removed {len(removed)} file(s) and folder(s) of earlier runs")
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    log_file = chain.temp / f"vircam_{stamp}.log"
    chain.claim_output()
    configure_logging(log_level, log_file)
    summary = chain.run(reset_progress=reset_progress)
    click.echo(summary.describe())
    click.echo(f"products in {chain.out}; log {log_file}")
    if not summary.ok:
        raise SystemExit(1)


@click.command()
@click.option("--raw", type=click.Path(exists=True, path_type=Path), help="Raw frames: a folder or an SOF.")
@click.option("--target", "targets", multiple=True, help="Product tag to make (repeatable).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output tree.")
@click.option("--calib", "calibs", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="User calibrations or reference catalogues: SOF, folder or file (repeatable).")
@click.option("-p", "--param", "params", multiple=True, metavar="[RECIPE.]NAME=VALUE",
              help="A recipe parameter; without RECIPE, for every recipe that has it.")
@click.option("--workflow", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A workflow YAML file of steps and parameters.")
@click.option("--dry-run", is_flag=True, help="Print the plan (jobs, SOFs, calibrations) and stop.")
@click.option("--executor", type=click.Choice(EXECUTORS), default=None, help="Where jobs run [processes].")
@click.option("--n-jobs", type=click.IntRange(1), default=None, help="Workers [all cores].")
@click.option("--scheduler", default=None, help="Dask scheduler address (with --executor dask).")
@click.option("--on-error", type=click.Choice(["abort", "continue"]), default=None,
              help="Stop at the first failed job, or run every job that does not depend on it.")
@click.option("--reset-progress", is_flag=True, help="Forget earlier runs: every job runs again.")
@click.option("--clean", is_flag=True, help="Delete the products and temp/ of earlier runs first.")
@click.option("--overwrite", is_flag=True, help="Allow a non-empty output folder without a manifest.")
@click.option("--no-qc-plots", is_flag=True, help="Do not write QC figures.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="warning", show_default=True)
@user_errors("vircam chain")
def chain(raw, targets, out, calibs, params, workflow, dry_run, executor, n_jobs, scheduler, on_error,
          reset_progress, clean, overwrite, no_qc_plots, log_level) -> None:
    """Reduce the raw frames in RAW to the TARGET products, in OUT.

    Recipes are chained from the tags they declare; calibrations are associated by their
    rules (user-given ones first). A second run skips every job whose inputs, parameters and
    versions are unchanged; a killed run resumes. Exit status 1 when a job failed.
    """
    options = {k: v for k, v in (("executor", executor), ("n_jobs", n_jobs), ("scheduler", scheduler),
                                 ("on_error", on_error)) if v is not None}
    options.update(qc_plots=not no_qc_plots, overwrite=overwrite)
    if workflow is not None:
        built = Chain.from_workflow(workflow, raw=raw, out=out, targets=list(targets), calibs=list(calibs),
                                    params=parse_params(params), **options)
    else:
        given = (("--raw", raw), ("--target", targets), ("--out", out))
        missing = [name for name, value in given if not value]
        if missing:
            raise UsageError(f"give {', '.join(missing)} (or a --workflow)")
        built = Chain(raw, targets, out, calibs=calibs, params=parse_params(params), **options)
    run_chain(built, dry_run, reset_progress, clean, log_level, "vircam chain")
