"""The one wrapper layer for external programs (SExtractor, SCAMP, SWarp, NoiseChisel, PSFEx).

Every call of an external tool goes through :func:`run_tool`: it finds the binary
(:func:`find_tool`), runs it in a working folder with its output captured, keeps that output
in ``<cwd>/<tool>.log`` and in the debug log, and checks the exit status and that the files
the tool should have written are there and not empty. Whatever goes wrong becomes one
:class:`~vircamframe.errors.ExternalToolError` line that names the tool, the command line and
the last lines the tool printed, because "SCAMP failed" alone sends the user digging for a
log the pipeline did not keep.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from .errors import ExternalToolError
from .memory import note_tool_peak

__all__ = ["DEBIAN_PACKAGES", "find_tool", "run_tool"]

log = logging.getLogger(__name__)

# Binary name -> Debian package that installs it (DESIGN.md section 7).
DEBIAN_PACKAGES: dict[str, str] = {
    "source-extractor": "source-extractor",
    "sex": "source-extractor",
    "scamp": "scamp",
    "SWarp": "swarp",
    "swarp": "swarp",
    "astnoisechisel": "gnuastro",
    "psfex": "psfex",
    "esorex": "esorex",
}

TAIL_LINES = 6  # lines of the tool's output quoted in an error message
TAIL_WIDTH = 200  # characters per quoted line (some tools print very long progress lines)


def find_tool(*names: str) -> str:
    """The path of the first of ``names`` found on ``PATH``.

    Parameters
    ----------
    *names : str
        Alternative binary names, preferred first (``"source-extractor", "sex"``).

    Returns
    -------
    str
        Absolute path of the binary.

    Raises
    ------
    ExternalToolError
        When none is installed; the message names the Debian package to install.
    """
    if not names:
        raise ValueError("find_tool needs at least one binary name")
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    package = next((DEBIAN_PACKAGES[n] for n in names if n in DEBIAN_PACKAGES), None)
    hint = f"install the Debian package '{package}'" if package else "install it"
    tried = " or ".join(repr(n) for n in names)
    raise ExternalToolError(f"{names[0]}: external tool not found on PATH (tried {tried}); {hint}")


def run_tool(
    names: str | Sequence[str],
    args: Sequence[str | os.PathLike],
    cwd: str | os.PathLike,
    expect: Sequence[str | os.PathLike] = (),
    log: logging.Logger = log,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run an external tool and check that it worked.

    Parameters
    ----------
    names : str or sequence of str
        The binary, or alternative names for it (first found on ``PATH`` is used); the first
        name is the one used in messages and for the log file.
    args : sequence
        Command-line arguments (converted with ``str``).
    cwd : path
        Working folder; must exist. ``<cwd>/<name>.log`` receives the command line and the
        tool's standard output and error (appended: several runs in one folder keep theirs).
    expect : sequence of path
        Files the tool must have written, relative to ``cwd`` unless absolute; each must
        exist and be non-empty.
    log : Logger
        Receives the command line (info) and the tool's output (debug).
    timeout : float, optional
        Seconds after which the tool is killed and the run fails.

    Returns
    -------
    CompletedProcess
        With ``stdout`` and ``stderr`` as text.

    Raises
    ------
    ExternalToolError
        For a missing tool, a non-zero exit (or death by a signal), a timeout, or a missing
        or empty expected output.
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    tool = names[0]
    binary = find_tool(*names)
    cwd = Path(cwd)
    command = [binary, *(str(a) for a in args)]
    line = shlex.join(command)
    log.info("running %s", line)
    logfile = cwd / f"{tool}.log"
    try:
        proc = _run_measured(command, cwd, timeout)
    except subprocess.TimeoutExpired as err:
        output = _text(err.stdout) + _text(err.stderr)
        _keep_log(logfile, line, output, log)
        raise ExternalToolError(
            f"{tool} timed out after {timeout:g} s: {line}{_tail(output)}"
        ) from None
    except OSError as err:  # not executable, wrong architecture, cwd missing
        raise ExternalToolError(f"{tool} could not be started ({err.strerror}): {line}") from None
    output = proc.stdout + proc.stderr
    _keep_log(logfile, line, output, log)
    if proc.returncode != 0:
        raise ExternalToolError(f"{tool} {_status(proc.returncode)}: {line}{_tail(output)}")
    for path in expect:
        path = Path(path)
        full = path if path.is_absolute() else cwd / path
        if not full.is_file() or full.stat().st_size == 0:
            what = "an empty" if full.is_file() else "no"
            raise ExternalToolError(
                f"{tool} exited 0 but wrote {what} {path} (log {logfile}): {line}{_tail(output)}"
            )
    return proc


def _run_measured(command: list[str], cwd: Path, timeout: float | None) -> subprocess.CompletedProcess:
    """Run ``command`` to its end (killed after ``timeout`` s) and note its peak memory.

    The tool is waited for with ``wait4``, which returns its resource usage, so its peak
    resident memory reaches :func:`vircamframe.memory.note_tool_peak`; its output goes to
    temporary files rather than pipes, so nothing has to read them while it runs.
    """
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        timer = threading.Timer(timeout, kill) if timeout is not None else None
        if timer is not None:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted (Ctrl-C, a signal): the tool must not outlive us
            proc.kill()
            proc.wait()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        note_tool_peak(usage.ru_maxrss)
        out.seek(0)
        err.seek(0)
        stdout, stderr = (f.read().decode(errors="replace") for f in (out, err))
    if killed.is_set():
        raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"failed with exit status {code}"


def _tail(output: str) -> str:
    """`` | last lines: a | b | c`` from a tool's output, as one line (or nothing)."""
    lines = [ln.strip() for ln in output.replace("\r", "\n").splitlines() if ln.strip()]
    if not lines:
        return " (no output)"
    quoted = [ln if len(ln) <= TAIL_WIDTH else ln[: TAIL_WIDTH - 3] + "..." for ln in lines[-TAIL_LINES:]]
    return " | last output: " + " | ".join(quoted)


def _keep_log(logfile: Path, line: str, output: str, log: logging.Logger) -> None:
    for text in output.splitlines():
        log.debug("%s", text)
    try:
        with logfile.open("a", encoding="utf-8", errors="replace") as stream:
            stream.write(f"$ {line}\n{output}")
            if output and not output.endswith("\n"):
                stream.write("\n")
    except OSError as err:  # a log we cannot keep must not hide the tool's own result
        log.warning("could not write %s: %s", logfile, err)
