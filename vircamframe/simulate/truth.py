"""Reading a simulated run's truth back: what tests and accuracy benchmarks compare with.

``truth/truth.json`` and ``truth/*.fits`` hold the inputs of the forward model; the functions
here turn them into the quantities a reduction should recover (the expected master dark of a
set of frames, say), using the same model the simulator rendered with.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.io import fits

from .catalog import make_catalog
from .core import _rng, _Sky, _source_rate
from .focalplane import chip_geometries, world_to_pixel
from .linearity import dcs_measure
from .plan import make_plan
from .presets import get_preset
from .render import reset_anomaly

__all__ = ["expected_dark", "frame_stripes", "load_truth", "source_image", "truth_coverage", "truth_image"]

ANOMALY_DETECTOR = 13


def load_truth(run: str | os.PathLike) -> dict:
    """``truth/truth.json`` of a simulated run."""
    return json.loads((Path(run) / "truth" / "truth.json").read_text())


def truth_image(run: str | os.PathLike, name: str, chip: int) -> np.ndarray:
    """One detector of a truth image: ``bpm`` (kind bits), ``flat``, ``dark_rate``."""
    with fits.open(Path(run) / "truth" / f"{name}.fits") as hdul:
        return np.array(hdul[f"DET1.CHIP{chip}"].data)


def _frame_index(truth: dict, frame_file: str) -> int:
    """The frame's index in the simulator's full plan (which seeds its random draws)."""
    for position, frame in enumerate(truth["frames"]):
        if frame["file"] == Path(frame_file).name:
            return frame.get("index", position)  # runs written before "index": all frames listed
    raise KeyError(f"{frame_file} is not a frame of this simulated run")


def expected_dark(
    run: str | os.PathLike, truth: dict, chip: int, dit: float, ndit: int, files: Sequence[str]
) -> np.ndarray:
    """The dark level per DIT that combining the raw darks ``files`` should give, ADU.

    The DCS response to the dark current over one DIT, plus the per-DIT pedestal and the
    NDIT offset per DIT, plus detector 13's reset anomaly at the mean of the amplitudes the
    simulator drew for those frames.
    """
    det = truth["detectors"][str(chip)]
    width = truth["channel_width"]
    b2 = np.repeat([c["b2"] for c in det["linearity"]], width)[None, :]
    b3 = np.repeat([c["b3"] for c in det["linearity"]], width)[None, :]
    rate = truth_image(run, "dark_rate", chip).astype(np.float64)
    level = dcs_measure(rate * dit, dit, b2, b3)
    level += det["dcs_offset"] + det["ndit_offset"] * (ndit - 1) / ndit
    if chip == ANOMALY_DETECTOR:
        indices = [_frame_index(truth, name) for name in files]
        factor = np.mean([1.0 + 0.1 * _rng(truth["seed"], 61, i).normal() for i in indices])
        level += reset_anomaly(truth["nx"], 150.0 * math.exp(-dit / 6.0) * factor)
    return level


def frame_stripes(truth: dict, frame_file: str, chip: int) -> np.ndarray:
    """The row offsets (ADU per DIT, one per row) the simulator added to ``chip`` of a frame.

    The pattern is shared by the four detectors of a read-out row and redrawn every frame; a
    raw sum of NDIT DITs holds ``sqrt(NDIT)`` times it, so a frame divided by NDIT holds it
    divided by ``sqrt(NDIT)``.
    """
    index = _frame_index(truth, frame_file)
    det = truth["detectors"][str(chip)]
    return _rng(truth["seed"], 51, index, det["stripe_group"]).normal(0.0, det["stripe_rms"], truth["nx"])


@lru_cache(maxsize=2)
def _scene(seed: int, preset: str, band: str):
    """The simulator's preset, plan and sky of a run, rebuilt from its seed.

    Deterministic (every draw is keyed by the seed, as in :func:`.core.simulate`); cached,
    because the catalogue of the whole run is drawn again and a test asks for many detectors.
    """
    pre = get_preset(preset)
    plan = make_plan(pre, seed, band)
    return pre, plan, _Sky(make_catalog(_rng(seed, 31), plan.regions), plan, band)


def source_image(
    run: str | os.PathLike, truth: dict | None, frame_file: str | os.PathLike, chip: int
) -> np.ndarray:
    """The noise-free light of the stars and galaxies on one detector of one frame.

    Rendered by the simulator's own code (its plan, sky and ``_source_rate``), so it is
    exactly what went into the raw frame before the flat field, the detector and the noise.

    Parameters
    ----------
    run : path
        The simulated run (``truth`` is read from it when not given).
    truth : dict or None
        Its ``truth.json`` (:func:`load_truth`).
    frame_file : str or path
        The raw file (its name is looked up in ``truth["frames"]``).
    chip : int
        Detector number, 1..16.

    Returns
    -------
    ndarray
        float32, ``(ny, nx)``: ADU per DIT at flat = 1 (a basic-calibrated frame's unit), zero
        for frames without sources (darks, lamps).

    Raises
    ------
    KeyError
        When the run has no frame of that name.
    """
    truth = load_truth(run) if truth is None else truth
    name = Path(frame_file).name
    entry = next((f for f in truth["frames"] if f["file"] == name), None)
    if entry is None:
        raise KeyError(f"{name} is not a frame of the simulated run {run}")
    pre, plan, sky = _scene(truth["seed"], truth["preset"], truth["filter"])
    fp = next(p for p in plan.frames if p.arcfile == entry["arcfile"])
    if fp.scene not in ("sky", "twilight") or fp.region < 0:
        return np.zeros((pre.nx, pre.nx), np.float32)
    rate = _source_rate(sky, fp, chip_geometries(pre.nx)[chip - 1], pre.nx, pre.min_fwhm_px)
    return rate * np.float32(fp.dit)


def truth_coverage(
    run: str | os.PathLike, ra: np.ndarray, dec: np.ndarray, frame_files: Sequence[str], edge: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """How many of ``frame_files`` see each sky position, and their summed exposure time [s].

    A frame sees a position when the position falls on one of its detectors through the true
    pointing and focal-plane geometry, at least ``edge`` pixels inside the detector's edges.
    """
    truth = load_truth(run)
    _, plan, _ = _scene(truth["seed"], truth["preset"], truth["filter"])
    by_arcfile = {fp.arcfile: fp for fp in plan.frames}
    arcfile_of = {f["file"]: f["arcfile"] for f in truth["frames"]}  # VCAM...fits(.fz) -> ARCFILE
    chips = chip_geometries(truth["nx"])
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    count = np.zeros(ra.shape, int)
    exptime = np.zeros(ra.shape, float)
    for name in frame_files:
        name = Path(name).name
        fp = by_arcfile[arcfile_of.get(name, name)]
        seen = np.zeros(ra.shape, bool)
        for chip in chips:
            px, py = world_to_pixel(ra, dec, fp.ra, fp.dec, chip.crpix, chip.rotated_cd(fp.posang))
            seen |= ((px > 0.5 + edge) & (px < truth["nx"] + 0.5 - edge)
                     & (py > 0.5 + edge) & (py < truth["ny"] + 0.5 - edge))
        count += seen
        exptime += seen * fp.dit * fp.ndit
    return count, exptime
