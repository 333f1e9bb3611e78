"""Sky numerics on synthetic pawprints with a known sky pattern.

The frames are what ``vircam_science_basic`` makes of a J-band jitter sequence: ADU per DIT,
sky ~1700 ADU varying in time, gain 4 e-/ADU, NDIT 2 (photon and read noise of the mean of
two DITs), 12 frames; dithered sources, most of them masked, some not, and particle hits. Both
methods must give the pattern (a smooth gradient times a pixel-to-pixel pattern) to < 0.5 %
rms, close to the limit the noise sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from vircamframe.numerics.sky import (
    SkyInputError,
    frame_noise,
    level_normalise,
    pawsky_mask,
    pawsky_mask_sky,
    sliding_window_sky,
    window_members,
)
from vircamframe.registry import strategies

SKY, GAIN, NDIT, READ_NOISE = 1700.0, 4.0, 2, 20.0  # ADU per DIT, e-/ADU, -, e- per DIT
NY, NX, NFRAMES = 256, 256, 12


@dataclass
class Pawprints:
    cube: np.ndarray  # (n, ny, nx) float32, ADU per DIT
    masks: np.ndarray  # given source masks
    times: np.ndarray  # minutes
    levels: np.ndarray  # true sky level of each frame, ADU per DIT
    pattern: np.ndarray  # true sky pattern, unit median
    sources: np.ndarray  # (n, ny, nx) true source flux, ADU per DIT
    noise: np.ndarray  # true noise of each frame at its level, ADU per DIT


def sky_pattern(rng, tilt: float = 0.03) -> np.ndarray:
    """A smooth gradient times a 2 % pixel-to-pixel pattern, unit median."""
    y, x = np.mgrid[0:NY, 0:NX] / np.float32(NX)
    smooth = 1 + tilt * x - 0.02 * y + 0.04 * ((x - 0.5) ** 2 + (y - 0.5) ** 2)
    pattern = smooth * (1 + rng.normal(0.0, 0.02, (NY, NX)))
    return (pattern / np.median(pattern)).astype(np.float32)


def make_pawprints(seed: int = 5, nframes: int = NFRAMES, times=None, patterns=None) -> Pawprints:
    """Jittered frames of a known sky: per-frame level x pattern + sources + noise + hits."""
    rng = np.random.default_rng(seed)
    times = np.arange(nframes) * 1.6 if times is None else np.asarray(times, float)
    pattern = sky_pattern(rng)
    patterns = [pattern] * nframes if patterns is None else patterns
    levels = SKY * (1 + 0.06 * np.sin(times / 15.0))
    y, x = np.mgrid[0:NY, 0:NX].astype(np.float32)
    cube = np.empty((nframes, NY, NX), np.float32)
    masks = np.zeros(cube.shape, bool)
    sources = np.zeros(cube.shape, np.float32)
    for i in range(nframes):
        sky = levels[i] * patterns[i]
        electrons = NDIT * GAIN * sky
        noise = np.sqrt(electrons + NDIT * READ_NOISE**2) / (NDIT * GAIN)
        image = sky + rng.normal(0.0, 1.0, sky.shape) * noise
        xs, ys = rng.uniform(0, NX, 40), rng.uniform(0, NY, 40)  # new positions: a dither
        peaks = 10 ** rng.uniform(1.5, 3.5, 40)
        for k, (xc, yc, peak) in enumerate(zip(xs, ys, peaks, strict=True)):
            blob = peak * np.exp(-((x - xc) ** 2 + (y - yc) ** 2) / (2 * 1.4**2))
            sources[i] += blob
            if k % 5:  # one source in five is missing from the given masks
                masks[i] |= blob > 5.0
        hits = rng.choice(NY * NX, 60, replace=False)  # particle hits, never masked
        image.flat[hits] += rng.uniform(200.0, 5000.0, hits.size)
        cube[i] = image + sources[i]
    noise = np.sqrt(NDIT * GAIN * levels + NDIT * READ_NOISE**2) / (NDIT * GAIN)
    return Pawprints(cube, masks, times, levels, pattern, sources, noise)


def pattern_rms(estimate: np.ndarray, truth: np.ndarray) -> float:
    """rms of estimate / truth about 1, both at unit median, over finite pixels."""
    ratio = estimate / truth
    ratio = ratio[np.isfinite(ratio)]
    return float(np.std(ratio / np.median(ratio) - 1.0))


def noise_limit(paw: Pawprints) -> float:
    """Relative rms of a plain mean of all frames: the best any combination can do."""
    return float(np.sqrt(np.sum((paw.noise / paw.levels) ** 2)) / paw.noise.size)


@pytest.fixture(scope="module")
def paw() -> Pawprints:
    return make_pawprints()


# --- both methods recover the pattern ------------------------------------------------------------

def test_sliding_window_recovers_the_pattern(paw):
    assert pattern_rms(np.ones_like(paw.pattern), paw.pattern) > 0.02  # the pattern is there to find
    skies = list(sliding_window_sky(paw.cube.copy(), paw.masks, paw.times, paw.times[[0, 6, 11]]))
    assert len(skies) == 3
    limit = noise_limit(paw)  # 0.25 %
    for sky in skies:
        assert sky.dtype == np.float32 and sky.shape == (NY, NX)
        assert np.nanmedian(sky) == pytest.approx(1.0, abs=1e-6)
        rms = pattern_rms(sky, paw.pattern)
        assert rms < 0.005, rms  # acceptance: < 0.5 %
        assert rms < 1.15 * limit, (rms, limit)  # clipping and weighting cost little


def test_pawsky_mask_recovers_the_pattern(paw):
    skies = list(pawsky_mask_sky(paw.cube.copy(), paw.masks, paw.times, paw.times[[0, 11]]))
    assert len(skies) == 2 and np.array_equal(skies[0], skies[1], equal_nan=True)
    rms = pattern_rms(skies[0], paw.pattern)
    assert np.nanmedian(skies[0]) == pytest.approx(1.0, abs=1e-6)
    assert rms < 0.005, rms
    assert rms < 1.35 * noise_limit(paw), rms  # a median of 12: ~1.2 x the mean's noise


def test_pawsky_masks_the_sources_itself_and_converges(paw):
    result = pawsky_mask(paw.cube.copy(), None)
    assert result.converged and 2 <= result.niter <= 6, result.counts
    assert result.counts[0] == 0 and result.counts[1] > 0
    last, before = result.counts[-1], result.counts[-2]
    assert abs(last - before) <= 0.025 * before
    bright = paw.sources > 3 * paw.noise[:, None, None]  # source pixels above 3 sigma
    assert result.masks[bright].mean() > 0.99, result.masks[bright].mean()
    empty = paw.sources < 0.01  # far from every source
    assert result.masks[empty].mean() < 0.03, result.masks[empty].mean()
    assert pattern_rms(result.sky, paw.pattern) < 0.005
    assert result.levels == pytest.approx(paw.levels * np.median(paw.pattern), rel=2e-3)


def test_given_masks_are_kept_by_pawsky(paw):
    masks = np.zeros(paw.cube.shape, bool)
    masks[:, 10:20, 30:40] = True  # nothing there to detect
    result = pawsky_mask(paw.cube.copy(), masks)
    assert result.masks[:, 10:20, 30:40].all()
    assert result.counts[0] == masks.sum()


def test_bad_pixels(paw):
    cube = paw.cube.copy()
    cube[:, 5, 5] = np.nan  # bad everywhere
    cube[:7, 6, 6] = np.nan  # bad in most frames
    for method in (sliding_window_sky, pawsky_mask_sky):
        (sky,) = method(cube.copy(), paw.masks, paw.times, [paw.times[0]])
        assert np.isnan(sky[5, 5])
        assert sky[6, 6] == pytest.approx(paw.pattern[6, 6], rel=0.02)
        assert np.isfinite(sky).sum() == NY * NX - 1


# --- the window --------------------------------------------------------------------------------

def test_window_members():
    times = [0.0, 10.0, 20.0, 30.0, 200.0]
    members, widened = window_members(times, 15.0, 40.0, 3)
    assert members.tolist() == [0, 1, 2, 3] and not widened
    members, widened = window_members(times, 20.0, 20.0, 3)  # +-10 min, ends included
    assert members.tolist() == [1, 2, 3] and not widened
    members, widened = window_members(times, 200.0, 20.0, 3)  # alone in its window
    assert members.tolist() == [2, 3, 4] and widened  # the three nearest in time
    with pytest.raises(SkyInputError, match=r"at least 6 frames, only 5 given") as err:
        window_members(times, 15.0, 40.0, 6)
    assert isinstance(err.value, ValueError)


def test_too_few_frames_fail_before_any_sky(paw):
    cube = paw.cube[:4].copy()
    for method in (sliding_window_sky, pawsky_mask_sky):
        with pytest.raises(SkyInputError, match="at least 5 frames, only 4"):
            method(cube, None, paw.times[:4], paw.times[:4], min_frames=5)
    cube[2] = np.nan
    with pytest.raises(SkyInputError, match="frame 2 has no positive sky level"):
        level_normalise(cube)


def test_each_target_gets_the_sky_of_its_own_window():
    rng = np.random.default_rng(9)
    early, late = sky_pattern(rng, tilt=0.05), sky_pattern(rng, tilt=-0.05)
    times = np.r_[np.arange(8) * 3.0, 120 + np.arange(8) * 3.0]  # two sequences, 2 h apart
    paw = make_pawprints(seed=11, nframes=16, times=times, patterns=[early] * 8 + [late] * 8)
    first, second = sliding_window_sky(paw.cube, paw.masks, times, [9.0, 130.0], window=60.0)
    assert pattern_rms(first, early) < 0.006 < 0.02 < pattern_rms(first, late)
    assert pattern_rms(second, late) < 0.006 < 0.02 < pattern_rms(second, early)


# --- noise weighting ----------------------------------------------------------------------------

def test_noisy_frame_is_down_weighted(paw):
    noisy = paw.cube.copy()
    extra = 6.0 * paw.noise[3]  # a frame six times noisier (say, thin cloud and a bad read)
    noisy[3] += np.random.default_rng(3).normal(0.0, extra, noisy[3].shape).astype(np.float32)

    normalised = noisy.copy()
    level_normalise(normalised, paw.masks)
    measured = frame_noise(normalised)
    expected = paw.noise / paw.levels
    expected[3] = np.hypot(paw.noise[3], extra) / paw.levels[3]
    assert measured == pytest.approx(expected, rel=0.05)

    def rms(cube, **options):
        (sky,) = sliding_window_sky(cube.copy(), paw.masks, paw.times, [0.0], **options)
        return pattern_rms(sky, paw.pattern)

    clean = rms(paw.cube, nminmax=99)
    weighted, plain = rms(noisy, nminmax=99), rms(noisy, nminmax=99, weighted=False)
    assert weighted < 1.1 * clean, (weighted, clean)  # the noisy frame hardly counts ...
    assert plain > 1.6 * weighted, (plain, weighted)  # ... and would with equal weights
    # with the default min/max rejection the noisy frame's extremes go anyway; weights still help
    assert rms(noisy) <= rms(noisy, weighted=False)


# --- plugins --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["sliding_window", "pawsky_mask"])
def test_registered_methods_accept_unknown_options(paw, name):
    method = strategies("sky_method").get(name).implementation
    skies = list(method(paw.cube[:6].copy(), paw.masks[:6], paw.times[:6], paw.times[:2], window=30.0,
                        min_frames=5, thresh=3.0, not_an_option="ignored"))
    assert len(skies) == 2
    assert all(sky.shape == (NY, NX) and sky.dtype == np.float32 for sky in skies)
    assert pattern_rms(skies[0], paw.pattern) < 0.008  # six frames
