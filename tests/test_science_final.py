"""Sky, destriping, background and weights on the tiny night: the issue-5 acceptance figures.

The chain (conftest ``final_night``): science_basic -> source_mask (builtin) -> sky_combine
(sliding_window) -> science_final, on 12 OBJECT and 2 offset SKY pawprints.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from vircamframe import run_recipe
from vircamframe.errors import RecipeInputError
from vircamframe.frames import FrameSet
from vircamframe.simulate.scoring import (
    background_flatness,
    high_pass,
    sky_pattern_rms,
    skysub_stripes,
    star_flux_ratios,
)
from vircamframe.simulate.truth import load_truth, truth_image

from science_chain import finalise, object_pawprints, sky_combine

CHIPS = range(1, 17)


def _by_base(frames: FrameSet) -> dict[str, object]:
    """Per-frame products by their raw base (``X.objmask.fits`` -> ``X``)."""
    return {f.name.rsplit(".", 2)[0]: f for f in frames}


def _flat(night):
    return night.masters.by_tag("MASTER_TWILIGHT_FLAT")[0].path


@pytest.mark.parametrize("method", ["sliding_window", "pawsky_mask"])
def test_master_sky_matches_truth_pattern(final_night, method):
    """MASTER_SKY x our flat = truth flat x sky (gradient): < 0.5 % rms on every detector."""
    night = final_night
    skies = night.skies if method == "sliding_window" else sky_combine(night, method)
    rms = sky_pattern_rms(skies[0].path, _flat(night), night.run)
    assert max(rms.values()) < 0.005, rms


def test_background_is_flat(final_night):
    """Acceptance 1: 64-px mesh medians (sources masked) have rms < 0.2 sigma, mean within 0.1 sigma."""
    masks = _by_base(final_night.masks)
    for product in final_night.final.by_tag("SKYSUB_SCI"):
        flatness = background_flatness(product.path, masks[product.name.rsplit(".", 2)[0]].path)
        for chip, (rms, mean) in flatness.items():
            assert rms < 0.2 and abs(mean) < 0.1, (product.name, chip, rms, mean)


def test_destriping_removes_truth_stripes(final_night):
    """Acceptance 2: the stripe rms drops >= 5x (truth stripes against the estimate's error).

    The stripes of a sky-subtracted frame are its own minus those the sky carries (the mean of
    the sky frames'), divided by sqrt(NDIT), times the detector's gain correction. The removed
    profile is the difference of runs with and without --destripe (no 2-D background in either);
    both are compared on scales below the 64-px background mesh, which the background step takes.
    """
    night = final_night
    truth = load_truth(night.run)
    sky_files = [f["file"] for f in truth["frames"] if f["tag"] in ("OBJECT", "SKY")]
    frames = FrameSet(object_pawprints(night)[:3])
    plain = finalise(night, night.skies, "final_plain", frames, destripe=False, subtract_background=False)
    striped = finalise(night, night.skies, "final_destriped", frames, subtract_background=False)
    truths, errors = [], []
    for a, b in zip(plain.by_tag("SKYSUB_SCI"), striped.by_tag("SKYSUB_SCI"), strict=True):
        raw = a.name.replace(".skysub.fits", ".fits")
        with fits.open(a.path) as one, fits.open(b.path) as two:
            for chip in CHIPS:
                removed = np.nanmedian(one[chip].data - two[chip].data, axis=1)
                stripes = skysub_stripes(truth, raw, chip, sky_files, one[chip].header["ESO DRS GAINCOR"])
                truths.append(high_pass(stripes))
                errors.append(high_pass(removed) - high_pass(stripes))
    ratio = np.std(np.concatenate(truths)) / np.std(np.concatenate(errors))
    assert ratio >= 5.0, ratio


def test_star_fluxes_survive_sky_and_destriping(final_night):
    """Acceptance 2: aperture fluxes of truth stars change by < 0.5 % (median over bright stars).

    The same photometry (aperture minus the local annulus median) on the basic-calibrated and
    the final pawprint of four frames; stars J 10-13 (unsaturated, well above the noise),
    aperture radius 3 x the seeing FWHM.
    """
    night = final_night
    truth = load_truth(night.run)
    final = {f.name.replace(".skysub.fits", ".basic.fits"): f for f in night.final.by_tag("SKYSUB_SCI")}
    seeing = max(f["seeing"] for f in truth["frames"] if f["tag"] == "OBJECT")
    radius = 3.0 * seeing / truth["pixel_scale_arcsec"]
    ratios = np.concatenate([star_flux_ratios(basic.path, final[basic.name].path, night.run, radius)
                             for basic in object_pawprints(night)[:4]])
    assert ratios.size > 50
    assert abs(np.median(ratios) - 1.0) < 0.005, (np.median(ratios), ratios.size)


def test_weights_follow_confidence_and_noise(final_night):
    """Weight = confidence / local variance: zero on bad pixels, detector 16's noisy region lower."""
    product = final_night.final.by_tag("WEIGHT_SCI")[0]
    image = final_night.final.by_tag("SKYSUB_SCI")[0]
    with fits.open(product.path) as w, fits.open(image.path) as img:
        for chip in (1, 16):
            weight, data = w[f"DET1.CHIP{chip}"].data, img[f"DET1.CHIP{chip}"].data
            assert np.all(weight[~np.isfinite(data)] == 0)
            sigma = img[f"DET1.CHIP{chip}"].header["ESO QC SKYSIG"]
            assert np.median(weight[weight > 0]) == pytest.approx(1.0 / sigma**2, rel=0.1)
        bpm = truth_image(final_night.run, "bpm", 16)
        noisy = (bpm & 8) > 0
        weight16 = w["DET1.CHIP16"].data
        quiet = ~noisy & (weight16 > 0)
        if noisy.sum() > 500:
            assert np.median(weight16[noisy & (weight16 > 0)]) < 0.7 * np.median(weight16[quiet])


def test_too_few_sky_frames_is_a_clear_error(final_night, tmp_path):
    night = final_night
    frames = FrameSet(object_pawprints(night)[:3]) + night.masks
    with pytest.raises(RecipeInputError, match=r"a sky needs at least 5 frames, only 3"):
        run_recipe("vircam_sky_combine", frames, output_dir=tmp_path, qc_plots=False)
    assert not list(tmp_path.iterdir())


def test_missing_sky_is_a_clear_error(final_night, tmp_path):
    night = final_night
    frames = FrameSet(object_pawprints(night)[:2]) + FrameSet(night.skies[:1])
    with pytest.raises(RecipeInputError, match=r"no MASTER_SKY made from VCAM.*basic\.fits"):
        run_recipe("vircam_science_final", frames, output_dir=tmp_path, qc_plots=False)
    assert not list(tmp_path.iterdir())


def test_offset_sky_pawprints_are_skipped(final_night, tmp_path, caplog):
    """The whole products SOF of vircam_science_basic may be given: SKY pawprints are skipped."""
    caplog.set_level("INFO")
    night = final_night
    sky_pawprints = FrameSet(f for f in night.basic if f not in object_pawprints(night))
    assert len(sky_pawprints) == 2
    frames = FrameSet(object_pawprints(night)[:1]) + sky_pawprints + night.skies + night.masks
    products = run_recipe("vircam_science_final", frames, output_dir=tmp_path, qc_plots=False)
    assert len(products.by_tag("SKYSUB_SCI")) == 1
    assert caplog.text.count("is an offset SKY frame without a MASTER_SKY: skipped") == 2


def test_thin_window_falls_back_with_a_log(final_night, caplog):
    """A window with fewer than sky_min_frames frames takes the nearest ones, and says so."""
    skies = sky_combine(final_night, "sliding_window", sky_window=1.0)
    assert "the 5 nearest in time are used" in caplog.text
    with fits.open(skies[0].path) as hdul:
        assert hdul["DET1.CHIP1"].header["ESO QC NSKY"] == 5


def test_dead_detector_flows_through_sky_and_final(final_night, tmp_path, caplog):
    """A pawprint with a dead detector: left out of that detector's skies (logged), NaN with
    zero weight in its own products, and its other detectors processed as usual."""
    import shutil

    night = final_night
    raw = night.raws("OBJECT")[0]
    dead = tmp_path / raw.name
    shutil.copy(raw.path, dead)
    with fits.open(dead, mode="update", output_verify="silentfix") as hdul:
        hdul["DET1.CHIP5"].data[:] = 0
    masters = night.masters.select("MASTER_DARK", "MASTER_TWILIGHT_FLAT", "MASTER_CHANNEL_TABLE")
    basic = run_recipe("vircam_science_basic", FrameSet([type(raw)(dead, "OBJECT")]) + masters,
                       output_dir=tmp_path / "basic", qc_plots=False)
    mask = run_recipe("vircam_source_mask", basic, output_dir=tmp_path / "mask", qc_plots=False)
    others = FrameSet(f for f in night.basic if f.name != basic[0].name)
    other_masks = FrameSet(f for f in night.masks if not f.name.startswith(raw.name[:-5]))
    skies = run_recipe("vircam_sky_combine", basic + others + mask + other_masks,
                       output_dir=tmp_path / "sky", qc_plots=False)
    assert "detector 5: 1 frame(s) without valid pixels left out of the sky" in caplog.text
    sky = next(f for f in skies if f.name.startswith(raw.name[:-5]))
    final = run_recipe("vircam_science_final", basic + FrameSet([sky]) + mask,
                       output_dir=tmp_path / "final", qc_plots=False)
    with fits.open(final.by_tag("SKYSUB_SCI")[0].path) as image, \
            fits.open(final.by_tag("WEIGHT_SCI")[0].path) as weight:
        assert np.isnan(image["DET1.CHIP5"].data).all()
        assert (weight["DET1.CHIP5"].data == 0).all()
        assert np.isfinite(image["DET1.CHIP6"].data).mean() > 0.95
        assert (weight["DET1.CHIP6"].data > 0).mean() > 0.95
