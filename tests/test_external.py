"""The external-tool wrapper: found or named with its Debian package, failures explained in one line.

The "tools" here are tiny shell scripts on a temporary PATH, so every failure mode is exercised
for real (a process that exits non-zero, dies, sleeps, or forgets its output).
"""

from __future__ import annotations

import logging
import os
import stat
import textwrap
from pathlib import Path

import pytest

from vircamframe.errors import ExternalToolError, VircamError
from vircamframe.external import find_tool, run_tool


def _script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def bin_dir(tmp_path, monkeypatch) -> Path:
    """A folder of fake tools first on PATH (``/bin`` kept for the shell utilities)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}/usr/bin{os.pathsep}/bin")
    return folder


def test_missing_tool_names_it_and_its_debian_package(bin_dir, monkeypatch):
    with pytest.raises(ExternalToolError) as err:
        find_tool("source-extractor-not-here", "sex-not-here")
    message = str(err.value)
    assert "source-extractor-not-here" in message and "sex-not-here" in message
    assert "\n" not in message
    assert isinstance(err.value, VircamError)
    # A known tool's message says which Debian package provides it.
    monkeypatch.setenv("PATH", str(bin_dir))  # nothing but our empty folder
    with pytest.raises(ExternalToolError, match=r"astnoisechisel.*Debian package 'gnuastro'"):
        find_tool("astnoisechisel")
    with pytest.raises(ExternalToolError, match=r"'SWarp' or 'swarp'.*'swarp'"):
        run_tool(("SWarp", "swarp"), [], bin_dir)


def test_find_tool_prefers_the_first_name(bin_dir):
    second = _script(bin_dir, "fake-sex", "exit 0\n")
    assert find_tool("fake-source-extractor", "fake-sex") == str(second)  # the first is absent
    first = _script(bin_dir, "fake-source-extractor", "exit 0\n")
    assert find_tool("fake-source-extractor", "fake-sex") == str(first)


def test_failing_tool_reports_command_and_tail(bin_dir, tmp_path):
    _script(bin_dir, "faketool", """\
        i=1
        while [ $i -le 20 ]; do echo "progress line $i"; i=$((i+1)); done
        echo "ERROR: cannot open catalogue $1" >&2
        exit 3
        """)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ExternalToolError) as err:
        run_tool("faketool", ["input file.fits", "-c", "x.conf"], work)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("faketool failed with exit status 3: ")
    assert "'input file.fits' -c x.conf" in message  # the command line, shell-quoted
    assert "ERROR: cannot open catalogue input file.fits" in message
    assert "progress line 20" in message and "progress line 1 " not in message  # only the tail
    log = (work / "faketool.log").read_text()
    assert "progress line 1\n" in log and "ERROR: cannot open catalogue" in log  # everything kept


def test_killed_and_timed_out_tools(bin_dir, tmp_path):
    _script(bin_dir, "crasher", "echo about to crash\nkill -SEGV $$\n")
    with pytest.raises(ExternalToolError, match=r"crasher was killed by SIGSEGV: .*about to crash"):
        run_tool("crasher", [], tmp_path)
    _script(bin_dir, "sleeper", "echo sleeping\nexec sleep 30\n")
    with pytest.raises(ExternalToolError, match=r"sleeper timed out after 0.5 s"):
        run_tool("sleeper", [], tmp_path, timeout=0.5)


def test_missing_or_empty_expected_output(bin_dir, tmp_path):
    _script(bin_dir, "lazytool", 'echo "done"\n: > "$1"\n')  # writes an empty file, exits 0
    with pytest.raises(ExternalToolError) as err:
        run_tool("lazytool", ["empty.cat"], tmp_path, expect=["empty.cat"])
    assert "wrote an empty empty.cat" in str(err.value) and "done" in str(err.value)
    with pytest.raises(ExternalToolError, match=r"lazytool exited 0 but wrote no other.cat"):
        run_tool("lazytool", ["empty.cat"], tmp_path, expect=["other.cat"])


def test_success_returns_output_and_logs(bin_dir, tmp_path, caplog):
    _script(bin_dir, "goodtool", 'echo "hello $1"\necho "note" >&2\necho data > "$2"\n')
    out = tmp_path / "abs.cat"
    logger = logging.getLogger("test.external")
    with caplog.at_level(logging.DEBUG, logger="test.external"):
        proc = run_tool(["goodtool"], ["world", out], tmp_path, expect=[out], log=logger)
        run_tool("goodtool", ["again", "rel.cat"], tmp_path, expect=["rel.cat"], log=logger)
    assert proc.returncode == 0 and proc.stdout == "hello world\n" and proc.stderr == "note\n"
    assert out.read_text() == "data\n"
    assert "hello world" in caplog.text and "note" in caplog.text
    log = (tmp_path / "goodtool.log").read_text().splitlines()
    assert log[0].startswith("$ ") and log[0].endswith(f"goodtool world {out}")
    assert log[1:3] == ["hello world", "note"]
    assert log[3].endswith("goodtool again rel.cat") and log[4] == "hello again"  # appended
