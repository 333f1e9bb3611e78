"""Photometric calibration numerics and the 2MASS reference selection, on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.stats import sigma_clipped_stats
from astropy.table import Table

from vircamframe.numerics.photometry import (
    aperture_correction,
    fit_zero_points,
    polynomial_terms,
    unit_coordinates,
    weighted_clipped_mean,
)
from vircamframe.passbands import vircam_magnitude
from vircamframe.photometry import reference_stars


def _synthetic(rng, n_frames=6, per_detector=400, degree=2, noise=0.02):
    """Stars with known frame zero points and per-detector quadratic illumination maps."""
    frame_zp = 24.0 + rng.normal(0, 0.05, n_frames)
    truth = {d: rng.normal(0, 0.02, (degree + 1) * (degree + 2) // 2) for d in range(1, 17)}
    frames, dets, us, vs, zps = [], [], [], [], []
    for d, coeffs in truth.items():
        u, v = rng.uniform(-1, 1, per_detector), rng.uniform(-1, 1, per_detector)
        f = rng.integers(0, n_frames, per_detector)
        zp = frame_zp[f] + polynomial_terms(u, v, degree) @ coeffs + rng.normal(0, noise, per_detector)
        frames.append(f), dets.append(np.full(per_detector, d)), us.append(u), vs.append(v), zps.append(zp)
    return frame_zp, truth, *(np.concatenate(a) for a in (frames, dets, us, vs, zps))


def _true_mean(truth, degree):
    g = np.linspace(-1, 1, 33)
    u, v = np.meshgrid(g, g)
    return np.mean([np.mean(polynomial_terms(u, v, degree) @ c) for c in truth.values()])


def test_joint_fit_recovers_frame_zero_points_and_illumination_maps():
    rng = np.random.default_rng(3)
    frame_zp, truth, frame, det, u, v, zp = _synthetic(rng)
    zp[::50] += 0.5  # outliers (blends, variables) must be clipped
    fit = fit_zero_points(zp, np.full(zp.size, 0.02), frame, det, u, v, degree=2)
    mean = _true_mean(truth, 2)  # the fit puts the focal-plane mean of delta into the frame zero points
    np.testing.assert_allclose(fit.frame_zp, frame_zp + mean, atol=0.004)
    assert np.all(fit.frame_zp_err < 0.003) and np.all(fit.frame_zp_err > 0.0005)
    g = np.linspace(-1, 1, 9)
    gu, gv = np.meshgrid(g, g)
    for d, coeffs in truth.items():
        true_map = polynomial_terms(gu, gv, 2) @ coeffs - mean
        assert (
            np.std(fit.delta(d, gu, gv).ravel() - true_map) < 0.006
        )  # ~2.5x the noise of 6 terms, 400 stars
    assert not fit.kept[::50].any()  # every outlier rejected
    assert fit.kept.mean() > 0.95
    assert 0.018 < fit.scatter < 0.022


def test_constant_mode_and_degree_lowered_for_sparse_detectors():
    rng = np.random.default_rng(5)
    frame_zp, truth, frame, det, u, v, zp = _synthetic(rng, degree=0)
    keep = (det != 7) | (np.arange(det.size) % 40 == 0)  # detector 7: 10 stars
    fit = fit_zero_points(
        zp[keep], np.full(keep.sum(), 0.02), frame[keep], det[keep], u[keep], v[keep], degree=2
    )
    assert fit.degrees[7] == 0 and fit.degrees[1] == 2  # 15 stars per term: 10 stars -> a constant
    fit0 = fit_zero_points(zp, np.full(zp.size, 0.02), frame, det, u, v, degree=0)
    mean = np.mean([c[0] for c in truth.values()])
    np.testing.assert_allclose(fit0.frame_zp, frame_zp + mean, atol=0.003)
    for d, coeffs in truth.items():
        assert fit0.delta(d, np.zeros(1), np.zeros(1))[0] == pytest.approx(coeffs[0] - mean, abs=0.004)


def test_a_frame_without_stars_gets_nan():
    rng = np.random.default_rng(1)
    _, _, frame, det, u, v, zp = _synthetic(rng, n_frames=3)
    fit = fit_zero_points(zp, np.full(zp.size, 0.02), frame, det, u, v, degree=0, n_frames=4)
    assert np.isnan(fit.frame_zp[3]) and np.isnan(fit.frame_zp_err[3])
    assert np.isfinite(fit.frame_zp[:3]).all()


def test_weighted_clipped_mean_agrees_with_astropy_for_equal_weights():
    rng = np.random.default_rng(2)
    values = np.r_[rng.normal(1.0, 0.1, 500), [5.0, 7.0, -4.0]]
    mean, error, kept = weighted_clipped_mean(values, np.full(values.size, 0.1))
    ref_mean, _, ref_std = sigma_clipped_stats(values, sigma=3.0, maxiters=5)
    assert mean == pytest.approx(ref_mean, abs=0.002)
    assert error == pytest.approx(ref_std / np.sqrt(kept.sum()), rel=0.1)
    assert not kept[-3:].any()


def test_weighted_mean_weights_by_inverse_variance():
    mean, error, _ = weighted_clipped_mean(np.array([1.0, 2.0]), np.array([0.1, 0.2]), kappa=100)
    assert mean == pytest.approx((1 / 0.01 + 2 / 0.04) / (1 / 0.01 + 1 / 0.04))
    assert error >= 1 / np.sqrt(1 / 0.01 + 1 / 0.04)


def test_aperture_correction_is_linear_in_seeing():
    rng = np.random.default_rng(4)
    fwhm = np.repeat(rng.uniform(2.0, 3.0, 10), 12)
    small = rng.uniform(12, 15, fwhm.size)
    large = small - 0.3 - 0.2 * (fwhm - np.median(fwhm)) + rng.normal(0, 0.003, fwhm.size)
    large[:4] -= 0.3  # contaminated by a neighbour
    a, b, error, n = aperture_correction(small, large, fwhm)
    assert a == pytest.approx(-0.3, abs=0.002) and b == pytest.approx(-0.2, abs=0.01)
    assert (
        fwhm.size - 7 <= n <= fwhm.size - 4 and 0 < error < 0.001
    )  # the 4 contaminated, maybe a 3-sigma one
    a1, b1, _, _ = aperture_correction(small[:12], large[:12], fwhm[:12])  # one seeing: no slope
    assert b1 == 0.0 and a1 == pytest.approx(np.median((large - small)[4:12]), abs=0.003)


def test_unit_coordinates_span_the_detector():
    u, v = unit_coordinates(np.array([0.5, 256.5]), np.array([0.5, 128.5]), (128, 256))
    np.testing.assert_allclose(u, [-1, 1])
    np.testing.assert_allclose(v, [-1, 1])


def _twomass():
    return Table(
        {
            "RAJ2000": [10.0, 10.1, 10.2, 10.3, 10.4],
            "DEJ2000": [-5.0] * 5,
            "Jmag": [12.0, 13.0, 14.0, 12.5, 18.0],
            "e_Jmag": [0.02, 0.03, 0.04, 0.02, 0.2],
            "Hmag": [11.5, 12.6, 13.2, 12.0, 17.0],
            "e_Hmag": [0.02, 0.03, 0.05, 0.02, 0.2],
            "Kmag": [11.4, 12.5, 13.0, 11.9, 16.5],
            "e_Kmag": [0.02, 0.03, 0.05, 0.02, 0.2],
            "Qflg": ["AAA", "AAB", "ABA", "AAA", "CCU"],
            "Cflg": ["000", "000", "000", "0c0", "000"],
        }
    )


@pytest.mark.parametrize("band", ["Z", "Y", "J", "H", "Ks", "NB118"])
def test_reference_magnitudes_follow_the_eso_colour_equations(band):
    table = _twomass()
    ref = reference_stars(table, band)
    expected = vircam_magnitude(table["Jmag"], table["Hmag"], table["Kmag"], band)
    # star 0 is good everywhere; star 1 has Ks quality B, star 2 H quality B, star 3 H contaminated
    uses = {"Ks": ("J", "Ks")}.get(band, ("J", "H"))
    good = [0] + ([1] if "Ks" not in uses else []) + ([2] if "H" not in uses else [])
    if "H" not in uses:
        good.append(3)
    good = sorted(good)
    np.testing.assert_allclose(ref.mag, expected[good])
    assert ref.ra.tolist() == [table["RAJ2000"][i] for i in good]


def test_reference_errors_propagate_both_bands():
    ref = reference_stars(_twomass(), "Z")  # Z = 2.025 J - 1.025 H
    assert ref.error[0] == pytest.approx(np.hypot(2.025 * 0.02, 1.025 * 0.02))
    assert ref.colour[0] == pytest.approx(0.5)
    assert reference_stars(_twomass(), "J", window=(12.2, 20)).mag.size == 1  # only star 1 (J~12.97)
