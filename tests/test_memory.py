"""Peak memory of a job: reset between jobs, and the tools' peaks (vircamframe.memory)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from vircamframe import memory
from vircamframe.external import run_tool


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs is Linux's")
def test_peak_is_reset_between_jobs():
    assert memory.reset_peak()
    before = memory.peak_mb()
    block = np.ones(200 * 2**20 // 8)  # 200 MB, touched
    assert memory.peak_mb() > before + 190
    del block
    assert memory.reset_peak()
    assert memory.peak_mb() < before + 50  # the 200 MB job's peak does not carry over


def test_a_tools_peak_counts_for_the_job(tmp_path):
    memory.reset_peak()
    own = memory.peak_mb()
    # a child process holding 300 MB more than this one ever did
    size = (int(own) + 300) * 2**20
    code = f"import numpy as n, sys; a = n.ones({size} // 8); sys.stdout.write('ok')"
    proc = run_tool(sys.executable, ["-c", code], tmp_path)
    assert proc.stdout == "ok"
    assert memory.peak_mb() > own + 250
    memory.reset_peak()
    assert memory.peak_mb() < own + 50
