"""Shared fixtures: raw-format dark sets with known truth, and the command-line runners."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rawfactory import dark_images, write_raw

BIN = Path(sys.executable).parent
NDET, SHAPE = 16, (32, 48)


@dataclass
class DarkSet:
    folder: Path
    sof: Path
    files: list[Path]
    level: np.ndarray  # true dark level per DIT, (16, ny, nx), ADU
    noise: float  # read noise per raw frame, ADU
    ndit: int


@pytest.fixture
def dark_set(tmp_path: Path) -> DarkSet:
    """Five raw darks (DIT 10 s, NDIT 2) with a known level map, two of them with particle hits."""
    rng = np.random.default_rng(42)
    level = rng.uniform(200, 800, size=(NDET, *SHAPE)).astype(np.float32)
    noise, ndit = 6.0, 2
    raw = tmp_path / "raw"
    raw.mkdir()
    files = []
    for i in range(5):
        images = dark_images(rng, level, ndit, noise)
        if i in (1, 3):  # cosmic-ray hits the combine must reject
            for image in images:
                image.flat[rng.choice(image.size, 20, replace=False)] += 5000
        files.append(write_raw(raw / f"VCAM.dark{i}.fits", "DARK", images, dit=10.0, ndit=ndit,
                               mjd=60000.0 + i / 1440))
    sof = tmp_path / "dark.sof"
    sof.write_text("# darks of one DIT/NDIT\n" + "".join(f"raw/{f.name} DARK\n" for f in files))
    return DarkSet(tmp_path, sof, files, level, noise, ndit)


def run_cli(program: str, *args: str, cwd: Path | None = None, env: dict | None = None):
    """Run one of the installed console scripts; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(BIN / program), *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=600)


def rec_params(header, record: int = 1) -> dict[str, str]:
    """``{name: value}`` of the ``ESO PRO REC<record> PARAMj`` cards of a product header."""
    values, j = {}, 1
    while f"ESO PRO REC{record} PARAM{j} NAME" in header:
        values[header[f"ESO PRO REC{record} PARAM{j} NAME"]] = header[f"ESO PRO REC{record} PARAM{j} VALUE"]
        j += 1
    return values


@pytest.fixture(scope="session")
def calib_run(tmp_path_factory) -> Path:
    """A tiny simulated calibration night (seed 1), shared by the calibration-recipe tests."""
    from vircamframe.simulate import simulate

    out = tmp_path_factory.mktemp("calib") / "run"
    simulate(out, preset="tiny", seed=1, what="calib")
    return out


@pytest.fixture(scope="session")
def channel_table(calib_run, tmp_path_factory) -> Path:
    """The MASTER_CHANNEL_TABLE of the simulated night (vircam_linearity_analyse, run once)."""
    from vircamframe import run_recipe

    products = run_recipe("vircam_linearity_analyse", calib_run / "sof" / "linearity.sof",
                          output_dir=tmp_path_factory.mktemp("linearity"))
    return products.by_tag("MASTER_CHANNEL_TABLE")[0].path


def sof_with(sof: Path, out: Path, *extra: tuple[Path, str]) -> Path:
    """A copy of ``sof`` with more ``(path, tag)`` lines, written to ``out``."""
    lines = sof.read_text() + "".join(f"{path} {tag}\n" for path, tag in extra)
    out.write_text(lines)
    return out


@pytest.fixture(scope="session")
def science_night(tmp_path_factory):
    """A tiny simulated night (seed 1, calibrations and science) with its master calibrations
    and basic-calibrated OBJECT and SKY pawprints (see science_chain.py)."""
    from vircamframe.simulate import simulate

    from science_chain import basic_calibrate, calibrate_night

    root = tmp_path_factory.mktemp("night")
    simulate(root / "run", preset="tiny", seed=1, what="all")
    return basic_calibrate(calibrate_night(root / "run", root / "products"))


@pytest.fixture(scope="session")
def final_night(science_night):
    """The tiny night through source masks, the sliding-window sky and vircam_science_final."""
    from science_chain import finalise, sky_combine

    science_night.skies = sky_combine(science_night)
    science_night.final = finalise(science_night, science_night.skies)
    return science_night


# What the tiny night is reduced to once, for the co-addition and Phase 3 tests.
TILE_NIGHT_TARGETS = ("TILED_IMAGE", "STAT_EXPTIME", "STAT_NIMG", "STAT_MJD", "STAT_ASTRMS",
                      "JITTERED_IMAGE_SCI", "JITTERED_OBJECT_CATALOGUE", "PHASE3_IMAGE", "PUBLIC_CATALOGUE")


@pytest.fixture(scope="session")
def tile_night(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny night (seed 1) reduced by the serial chain to the tile, its statistics maps, the
    stacks and their catalogues, the Phase 3 set and the public catalogue: ``(simulated run, output tree)``.

    Its raw files are RICE-compressed ``.fits.fz``, as the ESO archive serves VIRCAM data, so the
    whole chain is tested on that form too (the demo tests run it on plain ``.fits``).
    """
    from vircamframe.chain import Chain
    from vircamframe.simulate import simulate

    root = tmp_path_factory.mktemp("tile_night")
    run = root / "run"
    simulate(run, preset="tiny", seed=1, compress=True)
    out = root / "out"
    chain = Chain(run / "raw", list(TILE_NIGHT_TARGETS), out, calibs=[run / "sof" / "refcat.sof"],
                  executor="serial", qc_plots=False)
    summary = chain.run(progress=False)
    assert summary.ok, summary.errors
    return run, out


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> tuple[Path, str]:
    """One ``vircam demo`` run (tiny preset, as the README's main job runs it): the output folder
    (data, raw_sorted, the two pipeline trees, the report) and what the command printed.

    It is the longest fixture (about a minute on two cores, ~0.7 GB), so a test session makes it
    once: under pytest-xdist its workers share it, the first making it under a file lock.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent  # this session's, shared by its workers
    else:
        root = tmp_path_factory.mktemp("demo")
    out, stdout = root / "demo_out", root / "demo_out.stdout"
    with open(root / "demo_out.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not stdout.exists():
                shutil.rmtree(out, ignore_errors=True)
                result = run_cli("vircam", "demo", "--out", out, "--n-jobs", "2")
                assert result.returncode == 0, result.stderr[-3000:]
                stdout.write_text(result.stdout)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return out, stdout.read_text()
