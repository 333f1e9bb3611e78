"""The ``sky`` flat method: a flat from the dithered science frames themselves (VISIONS ``flat_type: sky``).

On synthetic frames (flat x sky + moving sources, not flat-fielded) the method must find the
sources itself and recover the flat; on the tiny simulated night,
``vircam_twilight_flat_combine --flat_method=sky`` on the J-band OBJECT and SKY frames must give
each detector's true flat to < 1 % rms, while ``twilight`` stays the default.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from vircamframe import run_recipe
from vircamframe.errors import RecipeInputError
from vircamframe.numerics.sky import stack_source_masks
from vircamframe.registry import load_recipe, strategies
from vircamframe.simulate import simulate
from vircamframe.simulate.truth import truth_image

from conftest import rec_params, sof_with

# --- the method on synthetic frames ----------------------------------------------------------------

def synthetic_flat_frames(seed: int = 2, nframes: int = 9, shape=(192, 160)):
    """Frames of flat x (sky level), plus dithered sources (not flat-fielded), ADU per DIT."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float32)
    flat = (1 + 0.05 * x / nx - 0.03 * y / ny) * (1 + rng.normal(0, 0.03, shape))
    flat = (flat / np.median(flat)).astype(np.float32)
    cube = np.empty((nframes, ny, nx), np.float32)
    sources = np.zeros(cube.shape, np.float32)
    for i in range(nframes):
        level = 1700.0 * (1 + 0.1 * rng.uniform(-1, 1))
        for xc, yc, peak in zip(rng.uniform(0, nx, 30), rng.uniform(0, ny, 30), 10 ** rng.uniform(2, 3.5, 30),
                                strict=True):
            sources[i] += peak * np.exp(-((x - xc) ** 2 + (y - yc) ** 2) / (2 * 1.5**2))
        signal = (level + sources[i]) * flat
        cube[i] = signal + rng.normal(0, 1, shape) * np.sqrt(signal / 8.0)  # gain 4, NDIT 2
    return cube, flat, sources


def test_sky_flat_masks_the_sources_and_recovers_the_flat():
    cube, flat, sources = synthetic_flat_frames()
    masks = stack_source_masks(cube)
    bright = sources > 3 * np.sqrt(1700.0 / 8.0)
    assert masks[bright].mean() > 0.99
    assert masks[sources < 0.01].mean() < 0.02

    method = strategies("flat_method").get("sky").implementation
    assert method.input_tags == ("OBJECT", "SKY")
    result = method(cube.copy(), combtype="median", thresh=5.0, xrej=True, unknown_option=1)
    assert np.median(result.image) == pytest.approx(1700.0, rel=0.1)  # ADU per DIT, the mean sky
    ratio = result.image / flat
    rms = np.std(ratio / np.median(ratio) - 1)
    assert rms < 0.006, rms  # 9 frames of 0.9 % noise: a median gives ~0.4 %
    # sources are what the masks are for: unmasked, the median keeps their wings
    plain = strategies("flat_method").get("sky").implementation(
        cube.copy(), masks=np.zeros(cube.shape, bool), combtype="median", thresh=5.0, xrej=True)
    residual = plain.image / flat / np.median(plain.image / flat) - 1
    masked_residual = ratio / np.median(ratio) - 1
    assert residual[bright.any(axis=0)].mean() > 2 * abs(masked_residual[bright.any(axis=0)].mean())


# --- the recipe on the tiny simulated night ------------------------------------------------------------

@pytest.fixture(scope="module")
def science_run(tmp_path_factory):
    """The science frames of the tiny night that ``calib_run`` calibrates (same seed)."""
    out = tmp_path_factory.mktemp("science") / "run"
    simulate(out, preset="tiny", seed=1, what="science")
    return out


@pytest.fixture(scope="module")
def sky_flat_products(calib_run, channel_table, science_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("skyflat")
    # the science setup of J is DIT 10 s, NDIT 2
    (dark,) = run_recipe("vircam_dark_combine", calib_run / "sof" / "dark_10_2.sof", output_dir=out / "dark")
    sof = sof_with(science_run / "sof" / "science.sof", out / "in.sof",
                   (dark.path, "MASTER_DARK"), (channel_table, "MASTER_CHANNEL_TABLE"))
    products = run_recipe("vircam_twilight_flat_combine", sof, {"flat_method": "sky"},
                          output_dir=out / "flat", qc_plots=False)
    return {frame.tag: frame.path for frame in products}, sof


def test_sky_flat_matches_the_true_flat(calib_run, sky_flat_products):
    products, _ = sky_flat_products
    rms, levels = [], []
    with fits.open(products["MASTER_TWILIGHT_FLAT"]) as flat, fits.open(products["MASTER_BPM"]) as bpm:
        header = flat[0].header
        assert rec_params(header)["flat_method"] == "sky"
        assert header["ESO PRO DATANCOM"] == 14  # 12 OBJECT + 2 SKY
        for chip in range(1, 17):
            ext = flat[f"DET1.CHIP{chip}"]
            response = ext.data / ext.header["ESO QC GAINCOR"]  # back to relative sensitivity
            truth = truth_image(calib_run, "flat", chip)
            good = (bpm[f"DET1.CHIP{chip}"].data == 0) & (truth_image(calib_run, "bpm", chip) == 0)
            ratio = response[good] / truth[good]
            levels.append(np.median(ratio))
            rms.append(float(np.std(ratio / levels[-1] - 1)))
            assert np.std(truth[good] / np.median(truth[good])) > 0.015  # the flat has structure
    rms = np.array(rms)
    assert rms.max() < 0.01, rms  # measured 0.32-0.39 %
    levels = np.array(levels) / np.median(levels)
    assert np.abs(levels - 1).max() < 0.01, levels  # inter-detector scale, measured < 0.6 %


def test_twilight_stays_the_default(calib_run, sky_flat_products, tmp_path):
    declared = {p.name: p.default for p in load_recipe("vircam_twilight_flat_combine").parameters}
    assert declared["flat_method"] == "twilight"
    _, sof = sky_flat_products
    with pytest.raises(RecipeInputError,
                       match=r"--flat_method=twilight needs at least 2 frames tagged FLAT_TWILIGHT, got 0"):
        run_recipe("vircam_twilight_flat_combine", sof, output_dir=tmp_path / "o1")
    calibs = [line for line in sof.read_text().splitlines() if "MASTER_" in line]
    twilight = tmp_path / "twilight.sof"
    twilight.write_text((calib_run / "sof" / "twilight_flat.sof").read_text() + "\n".join(calibs) + "\n")
    with pytest.raises(RecipeInputError,
                       match=r"--flat_method=sky needs at least 2 frames tagged OBJECT or SKY, got 0"):
        run_recipe("vircam_twilight_flat_combine", twilight, {"flat_method": "sky"},
                   output_dir=tmp_path / "o2")
    for out in ("o1", "o2"):
        assert not (tmp_path / out).exists() or not any((tmp_path / out).iterdir())
