"""``vircam classify`` and ``vircam sort`` on a mixed directory."""

from __future__ import annotations

import hashlib

import numpy as np

from conftest import run_cli
from rawfactory import primary_header, write_raw


def make_mixed(folder):
    folder.mkdir()
    images = [np.full((8, 8), 100.0)] * 16
    files = {
        "VCAM.d1.fits": "DARK", "VCAM.d2.fits": "DARK_GAIN", "VCAM.t1.fits": "FLAT_TWILIGHT",
        "VCAM.r1.fits": "RESET", "VCAM.o1.fits": "OBJECT", "VCAM.o2.fits": "OBJECT",
    }
    for name, tag in files.items():
        write_raw(folder / name, tag, images)
    junk = folder / "notes.fits"
    header = primary_header("DARK", 1.0, 1, 60000.0)
    header["HIERARCH ESO DPR TYPE"] = "LAMP,WAVE"  # no VIRCAM rule for this
    from astropy.io import fits

    fits.PrimaryHDU(header=header).writeto(junk)
    return files, junk


def test_classify_prints_tags(tmp_path):
    files, junk = make_mixed(tmp_path / "raw")
    paths = sorted((tmp_path / "raw").glob("VCAM.*.fits"))
    result = run_cli("vircam", "classify", *paths, junk)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    for path in paths:
        row = rows[str(path)]
        assert row[1:5] == [files[path.name], "10", "1", "J"]
        assert row[5] == "60000.000000"
    assert rows[str(junk)][1] == "UNKNOWN"


def test_sort_copies_reruns_as_noop_and_leaves_unknown(tmp_path):
    _, junk = make_mixed(tmp_path / "raw")
    sources = sorted((tmp_path / "raw").glob("*.fits"))
    digests = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sources}
    out = tmp_path / "sorted"
    dry = run_cli("vircam", "sort", *sources, "--out", out, "--dry-run")
    assert dry.returncode == 1 and not out.exists()  # 1: an unknown frame was reported
    assert "would copy" in dry.stdout
    first = run_cli("vircam", "sort", *sources, "--out", out)
    assert first.returncode == 1
    assert f"unknown {junk}: no classification rule applies (left in place)" in first.stdout
    assert "6 copy, 1 unknown" in first.stdout
    calib = sorted(p.name for p in (out / "calibration").iterdir())
    assert calib == ["VCAM.d1.fits", "VCAM.d2.fits", "VCAM.r1.fits", "VCAM.t1.fits"]
    science = sorted(p.name for p in (out / "science" / "test_ob_J").iterdir())
    assert science == ["VCAM.o1.fits", "VCAM.o2.fits"]
    again = run_cli("vircam", "sort", *sources, "--out", out)
    assert "6 skip, 1 unknown" in again.stdout
    # nothing lost, nothing changed, the unknown file still in place
    assert {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sources} == digests
    # a different file under a sorted name is a conflict, never overwritten
    other = tmp_path / "other"
    other.mkdir()
    write_raw(other / "VCAM.d1.fits", "DARK", [np.full((8, 8), 5.0)] * 16)
    conflict = run_cli("vircam", "sort", other / "VCAM.d1.fits", "--out", out)
    assert conflict.returncode == 1 and "conflict" in conflict.stdout
    kept = hashlib.md5((out / "calibration" / "VCAM.d1.fits").read_bytes()).hexdigest()
    assert kept == digests["VCAM.d1.fits"]


def test_sort_move(tmp_path):
    make_mixed(tmp_path / "raw")
    sources = sorted((tmp_path / "raw").glob("VCAM.*.fits"))
    result = run_cli("vircam", "sort", *sources, "--out", tmp_path / "s", "--move")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not any(p.exists() for p in sources)
    assert len(list((tmp_path / "s").rglob("*.fits"))) == 6


def test_sort_link_shares_the_bytes_and_keeps_the_originals(tmp_path):
    make_mixed(tmp_path / "raw")
    sources = sorted((tmp_path / "raw").glob("VCAM.*.fits"))
    result = run_cli("vircam", "sort", *sources, "--out", tmp_path / "s", "--link")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 link" in result.stdout
    sorted_files = {p.name: p for p in (tmp_path / "s").rglob("*.fits")}
    assert len(sorted_files) == 6
    for source in sources:  # the same inode: no extra disk space, the original still in place
        assert source.exists()
        assert sorted_files[source.name].stat().st_ino == source.stat().st_ino
    again = run_cli("vircam", "sort", *sources, "--out", tmp_path / "s", "--link")
    assert "6 skip" in again.stdout
