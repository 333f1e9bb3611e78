"""vircam_science_basic on the tiny simulated night: levels, noise keywords, WCS, bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from vircamframe import run_recipe
from vircamframe.errors import RecipeInputError
from vircamframe.frames import FrameSet
from vircamframe.simulate.truth import load_truth, truth_image
from vircamframe.wcs import wcs_difference

from conftest import run_cli
from science_chain import basic_calibrate
from sim_helpers import destripe


@pytest.fixture(scope="module")
def truth(science_night):
    return load_truth(science_night.run)


def _first_object(night):
    return next(f for f in night.basic if ".basic." in f.name)


def _truth_frame(truth, product_name: str) -> dict:
    raw = product_name.replace(".basic.fits", ".fits")
    return next(f for f in truth["frames"] if f["file"] == raw)


def test_levels_match_truth_sky(science_night, truth):
    """Flat-fielded and gain-harmonised: every detector shows the same sky, the truth's, to 1 %.

    The truth sky (ADU per DIT at flat = 1) times the detectors' common flat scale (the median
    of the per-detector truth-flat medians: the harmonisation puts every detector on it).
    """
    run = science_night.run
    medians = {c: float(np.median(truth_image(run, "flat", c))) for c in range(1, 17)}
    common = float(np.median(list(medians.values())))
    product = _first_object(science_night)
    frame = _truth_frame(truth, product.name)
    with fits.open(product.path) as hdul:
        ratios = [np.nanmedian(hdul[f"DET1.CHIP{c}"].data) / (frame["sky_level"] * common)
                  for c in range(1, 17)]
    assert np.max(np.abs(np.array(ratios) - 1.0)) < 0.01, ratios


def test_gain_and_read_noise_keywords_match_truth(science_night, truth):
    """GAIN = gain x NDIT x relative flat level, RDNOISE = noise floor x sqrt(NDIT), within 3 %.

    The read-gain table measures the read noise on darks of the gain DIT, which hold the dark
    current's shot noise too: the truth it should match is sqrt(RN^2 + dark electrons).
    """
    run = science_night.run
    medians = {c: float(np.median(truth_image(run, "flat", c))) for c in range(1, 17)}
    common = float(np.median(list(medians.values())))
    ndit = truth["science_setup"]["ndit"]
    gain_dit = next(f["dit"] for f in truth["frames"] if f["tag"] == "DARK_GAIN")
    with fits.open(_first_object(science_night).path) as hdul:
        for chip in range(1, 17):
            header, det = hdul[f"DET1.CHIP{chip}"].header, truth["detectors"][str(chip)]
            expected_gain = det["gain"] * ndit * medians[chip] / common
            assert header["GAIN"] == pytest.approx(expected_gain, rel=0.03), chip
            floor = np.sqrt(det["read_noise"] ** 2 + det["dark_current"] * gain_dit * det["gain"])
            assert header["RDNOISE"] == pytest.approx(floor * np.sqrt(ndit), rel=0.03), chip
            assert header["SATURATE"] > 0.7 * det["saturation"]


def test_noise_matches_the_variance_model(science_night):
    """The scatter of the difference of two jittered pawprints equals the variance model.

    The difference cancels the flat's fixed pattern (same pixels), the MAD ignores the moved
    stars and removing row medians the frames' different stripes; each frame's variance is
    I / GAIN + (RDNOISE / GAIN)^2. Within 4 %. (Not detector 13: its reset anomaly differs from
    frame to frame and adds to the difference.)
    """
    first, second = [f for f in science_night.basic if ".basic." in f.name][:2]
    with fits.open(first.path) as one, fits.open(second.path) as two:
        for chip in (1, 8, 11, 16):
            a, b = one[f"DET1.CHIP{chip}"], two[f"DET1.CHIP{chip}"]
            la, lb = np.nanmedian(a.data), np.nanmedian(b.data)
            diff = destripe(a.data - b.data * (la / lb))  # the stripes differ between frames
            diff = diff[np.isfinite(diff)]
            sigma = 1.4826 * np.median(np.abs(diff - np.median(diff)))
            gain, rdnoise = a.header["GAIN"], a.header["RDNOISE"]
            variance = (la + lb) / gain + 2 * (rdnoise / gain) ** 2
            assert sigma == pytest.approx(np.sqrt(variance), rel=0.04), chip


def test_tpv_wcs_replaces_zpn(science_night):
    product = _first_object(science_night)
    raw = product.path.parents[2] / "run" / "raw" / product.name.replace(".basic.fits", ".fits")
    with fits.open(product.path) as out, fits.open(raw) as inp:
        for chip in (1, 7, 16):
            header = out[f"DET1.CHIP{chip}"].header
            assert header["CTYPE1"] == "RA---TPV" and header["CTYPE2"] == "DEC--TPV"
            assert header["ESO QC TANRES"] < 0.01
            raw_header = inp[f"DET1.CHIP{chip}"].header
            raw_header.remove("ESO DET CHIP PXSPACE", ignore_missing=True)
            assert wcs_difference(raw_header, header, out[f"DET1.CHIP{chip}"].data.shape) < 0.01
            WCS(header)  # astropy reads it


def test_bad_pixels_are_nan(science_night):
    bpm = science_night.masters.by_tag("MASTER_BPM")
    with fits.open(_first_object(science_night).path) as out, fits.open(bpm[0].path) as mask:
        for chip in (2, 16):
            bad = mask[f"DET1.CHIP{chip}"].data > 0
            assert np.isnan(out[f"DET1.CHIP{chip}"].data[bad]).all()


def test_no_matching_dark_is_a_clear_error(science_night, tmp_path):
    masters = science_night.masters
    wrong_dark = FrameSet(f for f in masters if f.tag != "MASTER_DARK" or "ndit2" not in f.name)
    frames = FrameSet(science_night.raws("OBJECT")[:1]) + wrong_dark.select(
        "MASTER_DARK", "MASTER_TWILIGHT_FLAT", "MASTER_CHANNEL_TABLE")
    with pytest.raises(RecipeInputError, match=r"no MASTER_DARK matches VCAM.*DIT 10.0, NDIT 2"):
        run_recipe("vircam_science_basic", frames, output_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_dead_detector_is_nan_and_logged(science_night, tmp_path):
    raw = science_night.raws("OBJECT")[0]
    dead = tmp_path / raw.name
    shutil.copy(raw.path, dead)
    with fits.open(dead, mode="update", output_verify="silentfix") as hdul:
        hdul["DET1.CHIP5"].data[:] = 0
    sof = tmp_path / "in.sof"
    masters = science_night.masters.select("MASTER_DARK", "MASTER_TWILIGHT_FLAT", "MASTER_CHANNEL_TABLE")
    sof.write_text(f"{dead} OBJECT\n" + "".join(f"{f.path} {f.tag}\n" for f in masters))
    result = run_cli("vircam-recipe", "--output-dir", str(tmp_path / "out"), "vircam_science_basic",
                     str(sof))
    assert result.returncode == 0, result.stderr
    assert "detector 5: no signal (dead)" in result.stderr
    with fits.open(next((tmp_path / "out").glob("*.basic.fits"))) as hdul:
        assert np.isnan(hdul["DET1.CHIP5"].data).all()
        assert np.isfinite(hdul["DET1.CHIP6"].data).mean() > 0.95


def test_variance_product(science_night, tmp_path):
    frames = FrameSet(science_night.raws("OBJECT")[:1]) + science_night.masters.select(
        "MASTER_DARK", "MASTER_TWILIGHT_FLAT", "MASTER_CHANNEL_TABLE", "MASTER_READGAIN_TABLE")
    products = run_recipe("vircam_science_basic", frames, {"write_variance": True}, output_dir=tmp_path,
                          qc_plots=False)
    variance = products.by_tag("BASIC_VARIANCE_SCI")[0]
    image = products.by_tag("BASIC_CALIBRATED_SCI")[0]
    with fits.open(variance.path) as var, fits.open(image.path) as img:
        hdu = img["DET1.CHIP3"]
        gain, rdnoise = hdu.header["GAIN"], hdu.header["RDNOISE"]
        expected = np.nanmedian(hdu.data) / gain + (rdnoise / gain) ** 2
        assert np.nanmedian(var["DET1.CHIP3"].data) == pytest.approx(expected, rel=0.02)


def test_rerun_is_idempotent_name(science_night):
    """Products are named after their raw frame."""
    names = {f.name for f in science_night.basic}
    assert {f.name.replace(".fits", ".basic.fits") for f in science_night.raws("OBJECT")} <= names
    assert basic_calibrate  # the chain helper the fixture used
