"""Peak memory of a job: the high-water mark of the process running it, and of its tools.

A chain's worker runs one job after another, so its own peak (``VmHWM``) would carry over from
job to job; :func:`reset_peak` clears it (Linux ``/proc/self/clear_refs``, value 5) at the start
of a job. The external tools (SWarp, SExtractor, SCAMP, NoiseChisel) are child processes whose
peaks :func:`vircamframe.external.run_tool` reports through :func:`note_tool_peak`. The job's
peak, :func:`peak_mb`, is the larger of the two: what the machine had to hold for the job at
once, give or take the Python process sitting idle while a tool runs. Where ``/proc`` is
missing or read-only the figures are the process's peak since it started (``ru_maxrss``).
"""

from __future__ import annotations

import resource
import threading
from pathlib import Path

__all__ = ["note_tool_peak", "peak_mb", "reset_peak"]

_lock = threading.Lock()
_tool_peak_kb = 0


def reset_peak() -> bool:
    """Start measuring a new job's peak; False where the process's own peak can't be reset."""
    global _tool_peak_kb
    with _lock:
        _tool_peak_kb = 0
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def note_tool_peak(kilobytes: int) -> None:
    """Record the peak resident memory [kB] of a tool that ran for the current job."""
    global _tool_peak_kb
    with _lock:
        _tool_peak_kb = max(_tool_peak_kb, int(kilobytes))


def _own_peak_kb() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def peak_mb() -> float:
    """The current job's peak resident memory [MB]: its process's or one of its tools', the larger."""
    with _lock:
        tools = _tool_peak_kb
    return max(_own_peak_kb(), tools) / 1024.0
