"""The ordered, bounded thread map used for per-detector parallelism inside recipes."""

from __future__ import annotations

import threading
import time

import pytest

from vircamframe.parallel import ordered_map


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_results_come_back_in_input_order(threads):
    def slow_square(x: int) -> int:
        time.sleep(0.002 * (10 - x))  # later items finish first
        return x * x

    assert list(ordered_map(slow_square, range(10), threads)) == [x * x for x in range(10)]


def test_items_are_produced_in_the_caller_thread_and_bounded_in_flight():
    caller = threading.get_ident()
    produced, in_flight, peak = [], [0], [0]
    lock = threading.Lock()

    def items():
        for i in range(12):
            produced.append(threading.get_ident())  # a detector read: must stay in this thread
            yield i

    def work(i: int) -> tuple[int, int]:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.005)
        with lock:
            in_flight[0] -= 1
        return i, threading.get_ident()

    results = list(ordered_map(work, items(), threads=3))
    assert [i for i, _ in results] == list(range(12))
    assert set(produced) == {caller}
    assert any(ident != caller for _, ident in results)  # the work ran in worker threads
    assert peak[0] <= 3


def test_a_worker_error_reaches_the_caller():
    def fail_on_five(x: int) -> int:
        if x == 5:
            raise ValueError("detector 5 is broken")
        return x

    with pytest.raises(ValueError, match="detector 5"):
        list(ordered_map(fail_on_five, range(8), threads=2))
