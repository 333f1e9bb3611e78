"""Numerics of vircam_science_final: destriping, 2-D background, NaN filling, weights.

Synthetic 256 x 256 detectors with a known truth; every tolerance is derived from the noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from vircamframe.numerics.background import background_map
from vircamframe.numerics.destripe import group_stripes, profile_rms, row_profile
from vircamframe.numerics.interpolate import fill_isolated_nans
from vircamframe.numerics.weights import local_rms, weight_map

N = 256  # pixels per side of a test detector
SIGMA = 16.0  # sky noise, ADU
STRIPE_RMS = 3.0  # rms of the row offsets in raw (pre-flat) units, ADU
LEVELS = np.array([0.9, 0.97, 1.03, 1.1])  # flat levels L_d of a readout row
MODE_NOISE = 2.14  # sigma x sqrt(n) of SExtractor's mode 2.5 median - 1.5 mean on Gaussian noise


def readout_row(seed: int, heavy: int | None = None):
    """Four flat-fielded detectors sharing the stripe pattern s(y) / L_d.

    Each has Gaussian noise, a constant offset (not a stripe), 10 % of its pixels masked as
    sources with large positive values under the mask, and 0.5 % unmasked hot pixels (+500 ADU)
    that the row levels must clip. Detector ``heavy`` has in addition 80 % of its columns masked.
    """
    rng = np.random.default_rng(seed)
    stripes = rng.normal(0.0, 1.0, N)
    stripes *= STRIPE_RMS / stripes.std()  # exactly the nominal amplitude: the drop is then fixed
    images, masks = [], []
    for d, level in enumerate(LEVELS):
        image = rng.normal(0.0, SIGMA, (N, N)) + (stripes / level)[:, None] + rng.normal(0.0, 5.0)
        mask = rng.random((N, N)) < 0.10
        image[mask] += rng.uniform(200.0, 5000.0, mask.sum())
        hot = (rng.random((N, N)) < 0.005) & ~mask
        image[hot] += 500.0
        if d == heavy:
            mask |= (np.arange(N) < int(0.8 * N))[None, :]
        images.append(image.astype(np.float32))
        masks.append(mask)
    return stripes, images, masks


def floor_per_row(images, masks) -> np.ndarray:
    """Best possible error of s(y): sigma / sqrt(sum_d n_d(y) / L_d²) (inverse-variance pooling)."""
    counts = np.array([(np.isfinite(i) & ~m).sum(axis=1) for i, m in zip(images, masks, strict=True)])
    return SIGMA / np.sqrt((counts / LEVELS[:, None] ** 2).sum(axis=0))


def common_pattern_error(profiles, stripes) -> np.ndarray:
    """rms error, per detector, of s(y) as rebuilt from each profile (L_d x profile_d).

    The profiles have zero median by construction (a constant goes to the 2-D background), so the
    comparison is up to a constant.
    """
    errors = []
    for profile, level in zip(profiles, LEVELS, strict=True):
        error = profile * level - stripes
        errors.append(np.sqrt(np.mean((error - error.mean()) ** 2)))
    return np.array(errors)


def test_row_profile_is_a_clipped_mean_near_the_gaussian_limit():
    rng = np.random.default_rng(1)
    image = rng.normal(0.0, SIGMA, (2048, N)).astype(np.float32)
    image[rng.random(image.shape) < 0.005] += 500.0  # hot pixels: a plain mean would move 2.5 ADU
    profile, count = row_profile(image)
    floor = SIGMA / np.sqrt(N)
    # a 3-sigma clipped mean has std 1.015 floor, a median 1.253 floor: 1.12 tells them apart
    assert np.std(profile) < 1.12 * floor
    assert abs(np.mean(profile)) < 4 * floor / np.sqrt(image.shape[0])
    # clipped: the 0.5 % hot pixels and the 0.27 % of Gaussian noise beyond 3 sigma
    assert 1 - count.mean() / N == pytest.approx(0.005 + 0.0027, abs=0.001)


def test_row_profile_too_few_pixels_is_nan():
    image = np.zeros((4, 100), np.float32)
    mask = np.zeros(image.shape, bool)
    mask[1, :80] = True  # 20 pixels left
    mask[2] = True
    image[3] = np.nan
    profile, count = row_profile(image, mask, min_valid=32)
    assert list(count) == [100, 20, 0, 0]
    assert profile[0] == 0.0
    assert np.isnan(profile[1:]).all()


def test_shared_stripes_reach_the_noise_floor():
    stripes, images, masks = readout_row(seed=11)
    profiles = group_stripes(images, masks, LEVELS, mode="shared")
    floor = np.sqrt(np.mean(floor_per_row(images, masks) ** 2))  # 0.52 ADU here
    errors = common_pattern_error(profiles, stripes)
    assert np.all(errors <= 1.3 * floor), (errors, floor)
    # the same pattern, scaled by 1/L_d, for every detector
    np.testing.assert_allclose(profiles[0] * LEVELS[0], profiles[3] * LEVELS[3], rtol=0, atol=1e-4)
    # residual stripes after subtraction: expected drop 3 / 0.52 = 5.7; >= 5 needs <= 1.14 floor
    for profile, level in zip(profiles, LEVELS, strict=True):
        residual = stripes / level - profile
        assert np.std(stripes / level) / np.std(residual) >= 5.0
    # QC: the measured profile's rms is the stripe rms plus the estimate's noise in quadrature
    measured = profile_rms(profiles[1] * LEVELS[1])
    assert measured == pytest.approx(np.hypot(STRIPE_RMS, floor), rel=0.06)


def test_heavily_masked_detector_in_the_shared_pattern():
    stripes, images, masks = readout_row(seed=12, heavy=3)
    profiles = group_stripes(images, masks, LEVELS, mode="shared")
    floor = np.sqrt(np.mean(floor_per_row(images, masks) ** 2))
    errors = common_pattern_error(profiles, stripes)
    assert np.all(errors <= 1.3 * floor), (errors, floor)


def test_detector_mode_masked_detector_takes_the_group_pattern():
    stripes, images, masks = readout_row(seed=12, heavy=3)
    shared = group_stripes(images, masks, LEVELS, mode="shared")
    own = group_stripes(images, masks, LEVELS, mode="detector")
    np.testing.assert_array_equal(own[3], shared[3])  # 18 % usable < min_valid_fraction 20 %
    for d in range(3):
        # its own profile: the error of one detector's rows, sigma / sqrt(~230) = 1.05 ADU
        floor = SIGMA / np.sqrt(np.mean((np.isfinite(images[d]) & ~masks[d]).sum(axis=1)))
        residual = stripes / LEVELS[d] - own[d]
        assert np.std(residual) <= 1.3 * floor
        assert np.std(residual) > 1.3 * np.std(stripes / LEVELS[d] - shared[d])  # not the shared one
    # with a lower threshold the masked detector keeps its own (noisier) rows
    alone = group_stripes(images, masks, LEVELS, mode="detector", min_valid_fraction=0.1)
    assert not np.array_equal(alone[3], shared[3])


def test_fully_masked_rows():
    stripes, images, masks = readout_row(seed=13)
    stripes[40] += 20.0  # a strong stripe on the row that detector 2 cannot see
    for image, level in zip(images, LEVELS, strict=True):
        image[40] += np.float32(20.0 / level)
    masks[2][40] = True  # one row of one detector
    for mask in masks:
        mask[100] = True  # one row of all four
    shared = group_stripes(images, masks, LEVELS, mode="shared")
    # the other three measure row 40 to sigma / sqrt(3 x 230) = 0.6 ADU
    floor = SIGMA / np.sqrt(3 * 0.9 * N)
    for mode in ("shared", "detector"):
        profiles = group_stripes(images, masks, LEVELS, mode=mode)
        for profile in profiles:
            assert np.isfinite(profile).all()
            assert profile[100] == 0.0  # nothing measures it: left uncorrected
        assert profiles[2][40] == shared[2][40]
        rebuilt = profiles[2] * LEVELS[2]
        offset = np.median(rebuilt - stripes)  # the profiles are zero-median: s up to a constant
        assert abs(rebuilt[40] - stripes[40] - offset) < 4 * floor


def test_masked_and_dead_detectors_get_the_pattern_of_the_others():
    stripes, images, masks = readout_row(seed=15)
    masks[0][:] = True
    images[1][:] = np.nan
    floor = SIGMA / np.sqrt(2 * 0.9 * N)  # two detectors left
    for mode in ("shared", "detector"):
        profiles = group_stripes(images, masks, LEVELS, mode=mode)
        for d in (0, 1):
            residual = stripes / LEVELS[d] - profiles[d]
            assert np.std(residual) * LEVELS[d] < 1.3 * floor


def test_group_stripes_rejects_bad_levels():
    _, images, masks = readout_row(seed=14)
    with pytest.raises(ValueError, match="positive"):
        group_stripes(images, masks, [1.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="mode"):
        group_stripes(images, masks, LEVELS, mode="median")


def sky_with_sources(seed: int):
    """A smooth residual sky (plane + quadratic, +-10 ADU) under extended and compact sources."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:N, 0:N].astype(np.float64)
    u, v = x / (N - 1), y / (N - 1)
    truth = 12 * (u - 0.5) + 8 * (v - 0.5) + 2 * ((u - 0.3) ** 2 + (v - 0.6) ** 2)
    image = truth + rng.normal(0.0, SIGMA, (N, N))
    mask = np.zeros((N, N), bool)
    # a faint galaxy in the middle (2 sigma at peak, 20 px gaussian sigma), whose smooth light no
    # clipping can tell from sky, and 40 bright compact stars; each masked out to where its wing
    # falls below 0.01 sigma
    sources = [(N / 2, N / 2, 20.0, 2 * SIGMA)]
    stars = rng.uniform(0, N, 40), rng.uniform(0, N, 40), rng.uniform(0.8, 2.0, 40), [3000.0] * 40
    sources += zip(*stars, strict=True)
    for a, b, width, peak in sources:
        d2 = (y - a) ** 2 + (x - b) ** 2
        image += peak * np.exp(-d2 / (2 * width * width))
        mask |= d2 < 2 * np.log(peak / (0.01 * SIGMA)) * width * width
    image[rng.random((N, N)) < 0.01] = np.nan  # bad pixels
    return truth, image.astype(np.float32), mask


def cell_values(image: np.ndarray, size: int = 64) -> np.ndarray:
    return image.reshape(N // size, size, N // size, size).swapaxes(1, 2).reshape(-1, size * size)


def test_background_recovers_a_gradient_under_masked_sources():
    truth, image, mask = sky_with_sources(seed=21)
    back, rms = background_map(image, mask)  # VISIONS defaults: mesh 64, filter 3
    assert back.dtype == rms.dtype == np.float32
    # a 64² cell's level is known to 2.14 sigma / sqrt(n), n ~ 3000 usable pixels: 0.04 sigma
    usable = (np.isfinite(image) & ~mask).reshape(4, 64, 4, 64).sum(axis=(1, 3))
    cell_noise = MODE_NOISE * SIGMA / np.sqrt(usable.mean())
    error = back - truth
    # measured over 12 seeds: rms 0.9-1.6, max between the outer cell centres (where the spline
    # does not extrapolate) 1.4-3.8 cell noise; the excess over 1 is sep's filling of the cells
    # the galaxy leaves less than half usable with their neighbours' mean (the sky's curvature)
    assert np.sqrt(np.mean(error**2)) < 2 * cell_noise  # 0.08 sigma
    assert np.abs(error[32:-32, 32:-32]).max() < 5 * cell_noise  # 0.2 sigma
    assert abs(error[96:160, 96:160].mean()) < 2 * cell_noise  # under the galaxy
    residual = np.where(mask, np.nan, image - back)
    medians = np.nanmedian(cell_values(residual), axis=1)
    assert np.sqrt(np.mean(medians**2)) < 0.2 * SIGMA
    assert abs(np.mean(medians)) < 0.1 * SIGMA
    assert np.median(rms) == pytest.approx(SIGMA, rel=0.05)
    # without the mask the galaxy lifts the background (3.8-5.7 cell noise over the same seeds)
    unmasked = background_map(image, None)[0]
    assert (unmasked - truth)[96:160, 96:160].mean() > 3 * cell_noise


def test_background_of_empty_and_sparse_detectors():
    empty = np.full((N, N), np.nan, np.float32)
    back, rms = background_map(empty, None)
    assert (back == 0).all() and np.isnan(rms).all()
    rng = np.random.default_rng(22)
    image = (rng.normal(0.0, SIGMA, (N, N)) + 7.0).astype(np.float32)
    back, rms = background_map(image, np.ones((N, N), bool))
    assert (back == 0).all() and np.isnan(rms).all()
    # 80 % masked at random: no cell is half usable, sep would answer 0 +- 1 ADU
    sparse = rng.random((N, N)) < 0.8
    back, rms = background_map(image, sparse)
    usable = (~sparse).sum()
    assert np.ptp(back) == 0 and back[0, 0] == pytest.approx(7.0, abs=5 * 1.25 * SIGMA / np.sqrt(usable))
    assert rms[0, 0] == pytest.approx(SIGMA, rel=0.05)


def test_fill_isolated_nans_is_exact_on_a_ramp_and_leaves_holes():
    y, x = np.mgrid[0:N, 0:N].astype(np.float32)
    ramp = (3.0 * x - 2.0 * y + 100.0).astype(np.float32)
    image = ramp.copy()
    singles = [(10, 10), (50, 200), (128, 3)]
    for p in singles:
        image[p] = np.nan
    image[100:102, 100:102] = np.nan  # 2 x 2
    image[30:32, 60:62] = np.nan
    image[200, 40:43] = np.nan  # 1 x 3
    image[150:160, 150:160] = np.nan  # a dead area
    image[220:222, 220:223] = np.nan  # 6 pixels: above max_size
    filled, count = fill_isolated_nans(image, max_size=4)
    assert count == 3 + 4 + 4 + 3
    assert filled.dtype == np.float32
    assert np.isnan(filled[150:160, 150:160]).all()
    assert np.isnan(filled[220:222, 220:223]).all()
    finite = np.isfinite(filled)
    assert finite.sum() == N * N - 100 - 6
    np.testing.assert_allclose(filled[finite], ramp[finite], rtol=0, atol=2e-3)  # float32 of ~800
    assert np.isnan(image[10, 10])  # the input is not modified


def test_fill_single_pixel_is_the_neighbour_mean():
    rng = np.random.default_rng(31)
    image = rng.normal(0.0, SIGMA, (8, 8)).astype(np.float32)
    image[4, 4] = np.nan
    image[0, 0] = np.nan  # a corner: three neighbours
    filled, count = fill_isolated_nans(image)
    assert count == 2
    assert filled[4, 4] == pytest.approx(np.nanmean(image[3:6, 3:6]), abs=1e-4)
    assert filled[0, 0] == pytest.approx(np.nanmean(image[0:2, 0:2]), abs=1e-4)
    untouched, none = fill_isolated_nans(np.ones((4, 4), np.float32))
    assert none == 0 and (untouched == 1).all()


def noisy_corner(seed: int) -> np.ndarray:
    """Sky noise SIGMA, three times that in the lower-left 128 x 128 (like detector 16)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.0, SIGMA, (N, N)).astype(np.float32)
    image[:128, :128] *= 3
    return image


@pytest.mark.parametrize("method", ["local_rms", "background_map"])
def test_weight_of_a_noisy_region(method):
    image = noisy_corner(seed=41)
    mask = np.zeros((N, N), bool)
    rms = local_rms(image, mask, mesh=64) if method == "local_rms" else background_map(image, mask)[1]
    confidence = np.full((N, N), 100, np.int16)
    weight = weight_map(confidence, rms)
    assert weight.dtype == np.float32
    quiet, noisy = np.median(weight[160:, 160:]), np.median(weight[:96, :96])
    # each 64² cell's sigma is known to 1/sqrt(2 x 4096) = 1.1 %; the spline costs sep a few %
    assert quiet * SIGMA**2 == pytest.approx(1.0, rel=0.08)
    assert noisy / quiet == pytest.approx(1 / 9, rel=0.1)


def test_local_rms_does_not_overshoot_at_a_noise_edge():
    image = noisy_corner(seed=42)
    rms = local_rms(image, None, mesh=64)
    # linear between cell centres: never quieter than the quiet cells, up to the 1.1 % noise of a
    # cell's sigma (5 x that allowed: 16 cells)
    assert rms.min() > 0.94 * SIGMA
    assert rms.max() < 1.06 * 3 * SIGMA
    # sep's bicubic spline dips well below the quiet level next to the edge: 2-3x too much weight
    assert background_map(image, None)[1].min() < 0.8 * SIGMA


def test_weight_map_zeros():
    rng = np.random.default_rng(43)
    image = rng.normal(0.0, SIGMA, (N, N)).astype(np.float32)
    confidence = np.full((N, N), 100, np.int16)
    confidence[:, :10] = 0
    confidence[:, 10:20] = 50
    image[5, 50] = np.nan
    rms = np.full((N, N), SIGMA, np.float32)
    rms[200, 200] = np.nan
    rms[201, 201] = 0.0
    weight = weight_map(confidence, rms, image)
    assert (weight[:, :10] == 0).all()
    assert weight[5, 50] == 0 and weight[200, 200] == 0 and weight[201, 201] == 0
    assert weight[100, 15] == pytest.approx(0.5 / SIGMA**2, rel=1e-6)
    assert weight[100, 100] == pytest.approx(1 / SIGMA**2, rel=1e-6)
    assert np.isfinite(weight).all()


def test_interpolated_bad_pixels_keep_a_quarter_weight():
    image = np.zeros((N, N), np.float32)
    confidence = np.full((N, N), 100, np.int16)
    confidence[:, :10] = 0  # a bad column block, not interpolated: stays 0
    confidence[50, 60] = confidence[70, 80] = 0  # isolated bad pixels, interpolated
    image[:, :5] = np.nan
    interpolated = np.zeros((N, N), bool)
    interpolated[50, 60] = interpolated[70, 80] = True
    rms = np.full((N, N), SIGMA, np.float32)
    weight = weight_map(confidence, rms, image, interpolated=interpolated)
    assert weight[50, 60] == pytest.approx(0.25 / SIGMA**2, rel=1e-6)
    assert weight[70, 80] == pytest.approx(0.25 / SIGMA**2, rel=1e-6)
    assert (weight[:, :10] == 0).all()
    assert weight[100, 100] == pytest.approx(1 / SIGMA**2, rel=1e-6)


def test_local_rms_with_masked_and_empty_cells():
    rng = np.random.default_rng(44)
    image = rng.normal(0.0, SIGMA, (N, N)).astype(np.float32)
    mask = np.zeros((N, N), bool)
    mask[:64, :64] = True  # a cell with no usable pixel takes its neighbour's value
    image[mask] += 1000.0
    rms = local_rms(image, mask, mesh=64)
    assert np.isfinite(rms).all()
    assert np.median(rms[:64, :64]) == pytest.approx(SIGMA, rel=0.04)
    assert np.isnan(local_rms(image, np.ones((N, N), bool))).all()
