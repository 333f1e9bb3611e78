"""Where jobs run: in this process, in a process pool, or on a Dask cluster (DESIGN.md 3.6).

All three take the same top-level function and picklable argument and hand back futures with
``result()``; the chain engine waits on them the same way. The products do not depend on the
executor: each job is one deterministic recipe run on the same inputs.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Collection
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from ..errors import ChainError

__all__ = ["EXECUTORS", "Executor", "make_executor"]

EXECUTORS = ("serial", "processes", "dask")


class Executor:
    """Runs jobs in this process, one after the other, as they are submitted."""

    name = "serial"
    workers = 1

    def submit(self, func: Callable[[Any], Any], arg: Any) -> Any:
        future: Future = Future()
        try:
            future.set_result(func(arg))
        except BaseException as err:  # handed to the caller through the future
            future.set_exception(err)
        return future

    def wait(self, futures: Collection[Any]) -> set[Any]:
        """Block until at least one of ``futures`` is done; return the done ones."""
        return set(wait(futures, return_when=FIRST_COMPLETED).done)

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProcessExecutor(Executor):
    """A pool of ``n_jobs`` worker processes, started fresh (spawn), one job at a time each."""

    name = "processes"

    def __init__(self, n_jobs: int) -> None:
        self.workers = n_jobs
        self.pool = ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, func: Callable[[Any], Any], arg: Any) -> Any:
        return self.pool.submit(func, arg)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """A ``dask.distributed`` client: a ``LocalCluster`` of ``n_jobs`` single-threaded worker
    processes, or the scheduler at ``scheduler`` (``tcp://host:8786``)."""

    name = "dask"

    def __init__(self, n_jobs: int, scheduler: str | None = None) -> None:
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="20s")
            except OSError as err:
                raise ChainError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
        else:
            self.cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True,
                                        dashboard_address=None)
            self.client = Client(self.cluster)
        self.workers = len(self.client.scheduler_info().get("workers", {})) or n_jobs

    def submit(self, func: Callable[[Any], Any], arg: Any) -> Any:
        return self.client.submit(func, arg, pure=False)

    def wait(self, futures: Collection[Any]) -> set[Any]:
        from distributed import wait as dask_wait

        return set(dask_wait(list(futures), return_when="FIRST_COMPLETED").done)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(kind: str, n_jobs: int | None = None, scheduler: str | None = None) -> Executor:
    """The executor called ``kind`` with ``n_jobs`` workers (default: the machine's cores)."""
    n_jobs = n_jobs or os.cpu_count() or 1
    if kind == "serial":
        return Executor()
    if kind == "processes":
        return ProcessExecutor(n_jobs)
    if kind == "dask":
        return DaskExecutor(n_jobs, scheduler)
    raise ChainError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
