"""Per-detector parallelism inside a recipe: an ordered, bounded thread map.

Reading stays in the calling thread (astropy's HDU lists are not thread-safe) and so does
writing; only the numerics run in worker threads, where numpy, bottleneck and scipy release
the GIL. At most ``threads`` detectors are in flight, so memory stays a few detectors' worth,
and results come back in input order, so products do not depend on the number of threads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["ordered_map"]

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(func: Callable[[T], R], items: Iterable[T], threads: int = 1) -> Iterator[R]:
    """``map(func, items)`` on ``threads`` threads, in order, with ``threads`` items in flight.

    ``items`` is consumed in the calling thread, as results are taken: a generator that reads
    one detector per item reads only as fast as the threads compute.
    """
    if threads <= 1:
        yield from map(func, items)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="vircam-detector") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(func, item))
            if len(pending) >= threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
