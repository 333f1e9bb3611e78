"""Bright-star circles and RC3 galaxy ellipses: the radius law, rasterisation, sky geometry.

The rasterisers are checked against a brute-force evaluation over the whole detector; the
galaxy masks against NGC 253 (RC3: D25 = 2.44, R25 = 0.61, PA = 52 deg) on a synthetic
north-up TAN detector, where the expected ellipse can be written down by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from vircamframe import run_recipe
from vircamframe.frames import Frame, FrameSet
from vircamframe.numerics.bright_masks import (
    angular_distance,
    bright_star_radius,
    ellipse_axes_on_detector,
    mask_bright_stars,
    rasterise_circles,
    rasterise_ellipses,
    rc3_semi_axes,
    star_flux_from_sky,
)
from vircamframe.passbands import COLOUR_EQUATIONS, band_name, vircam_magnitude

NGC253 = {"ra": 11.88824, "dec": -25.288285, "d25": 2.44, "r25": 0.61, "pa": 52.0}
SCALE = 4.0  # arcsec per pixel of the synthetic detector
NX = 512


# --- passbands ----------------------------------------------------------------------------------

def test_colour_equations_and_fallback():
    j, h, ks = np.array([10.0, 12.0]), np.array([9.5, np.nan]), np.array([9.3, 11.0])
    assert vircam_magnitude(j, h, ks, "Z")[0] == pytest.approx(2.025 * 10 - 1.025 * 9.5)
    assert vircam_magnitude(j, h, ks, "ks")[1] == pytest.approx(0.01 * 12 + 0.99 * 11)
    assert np.isnan(vircam_magnitude(j, h, ks, "J")[1])
    assert vircam_magnitude(j, h, ks, "J", fallback=True)[1] == 12.0  # nearest 2MASS band: J
    assert band_name("K") == "Ks" and set(COLOUR_EQUATIONS) >= {"NB118", "NB980", "NB990"}
    with pytest.raises(ValueError, match="unknown VIRCAM filter 'R'"):
        band_name("R")


# --- the radius law -----------------------------------------------------------------------------

def test_flux_from_the_sky():
    # A star as bright as one arcsec² of sky gives the sky level of one arcsec² of pixels.
    assert star_flux_from_sky(15.9, 1000.0, 15.9, 0.25) == pytest.approx(4000.0)
    assert star_flux_from_sky(13.4, 1000.0, 15.9, 0.25) == pytest.approx(40000.0)  # 2.5 mag: x 10
    assert star_flux_from_sky(15.9, 1000.0, 15.9, 0.25, extinction=0.1) == pytest.approx(
        4000.0 * 10 ** -0.04)


def test_radius_is_where_the_moffat_wings_reach_the_limit():
    flux = np.array([1e5, 1e6, 1e7, 1e8])
    noise, fwhm, beta, fraction = 15.0, 2.5, 1.5, 0.25
    radius = bright_star_radius(flux, noise, fwhm, beta=beta, fraction=fraction)
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    wings = flux * (beta - 1) / (np.pi * alpha**2) * (1 + (radius / alpha) ** 2) ** -beta
    assert wings == pytest.approx(fraction * noise, rel=1e-9)
    # Far out r ~ F**(1 / (2 beta)): 2.5 mag brighter, 10**(1/3) = 2.154 times larger.
    assert radius[3] / radius[2] == pytest.approx(10 ** (1 / 3), rel=0.01)
    # A faint star still gets twice the FWHM; r_max caps.
    assert bright_star_radius(1.0, noise, fwhm)[()] == pytest.approx(2 * fwhm)
    assert bright_star_radius(1e12, noise, fwhm, r_max=50.0)[()] == 50.0
    with pytest.raises(ValueError):
        bright_star_radius(flux, noise, fwhm, beta=1.0)


# --- rasterisation ------------------------------------------------------------------------------

def _brute_force(shape, x, y, ux, uy, vx, vy):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape, bool)
    for i in range(len(x)):
        m = np.array([[ux[i], vx[i]], [uy[i], vy[i]]])
        s, t = np.linalg.solve(m, np.stack([xx.ravel() - x[i], yy.ravel() - y[i]]))
        out |= (s * s + t * t <= 1.0).reshape(shape)
    return out


def test_circles_are_exact_and_clipped():
    shape = (60, 80)
    # Gauss's circle problem: 317 lattice points within radius 10 of a lattice point.
    assert rasterise_circles(shape, 40.0, 30.0, 10.0).sum() == 317
    mask = rasterise_circles(shape, [-5.0, 78.5, 20.0, 10.0], [30.0, 58.7, 20.0, 10.0],
                             [8.0, 6.0, np.nan, 0.0])
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    expected = ((xx + 5) ** 2 + (yy - 30) ** 2 <= 64) | ((xx - 78.5) ** 2 + (yy - 58.7) ** 2 <= 36)
    assert np.array_equal(mask, expected)  # off-detector centres clipped; NaN and 0 radii ignored
    assert not rasterise_circles(shape, 200.0, 30.0, 10.0).any()


def test_ellipses_match_brute_force():
    rng = np.random.default_rng(4)
    shape, n = (70, 90), 12
    x, y = rng.uniform(-10, 100, n), rng.uniform(-10, 80, n)
    ux, uy, vx, vy = rng.uniform(-15, 15, (4, n))  # oblique, non-perpendicular axes, flips
    fast = rasterise_ellipses(shape, x, y, ux, uy, vx, vy)
    assert np.array_equal(fast, _brute_force(shape, x, y, ux, uy, vx, vy))
    assert fast.any() and not fast.all()
    base = np.zeros(shape, bool)
    base[0, 0] = True
    out = rasterise_ellipses(shape, x, y, ux, uy, vx, vy, out=base)
    assert out is base and base[0, 0] and np.array_equal(base[1:], fast[1:])


def test_bright_star_count_includes_only_stars_touching_the_detector():
    mask = np.zeros((100, 200), bool)
    # Stars at y = 50: one on the detector, one 30 px off its left edge, one 100 px off its right.
    n = mask_bright_stars(mask, [50.0, -30.0, 300.0], [50.0, 50.0, 50.0], [9.0, 9.0, 9.0],
                          sky_level=1000.0, sky_noise=15.0, sky_brightness=15.9, pixel_scale=0.34,
                          fwhm=2.5)
    radius = bright_star_radius(star_flux_from_sky(9.0, 1000.0, 15.9, 0.34**2), 15.0, 2.5)[()]
    assert radius == pytest.approx(70.09, abs=0.01)  # a 9th-magnitude star on VIRCAM: 24 arcsec
    assert n == 2  # the star 30 px off the left edge reaches in, the one 100 px off does not
    assert mask[50, 50 + 70] and not mask[50, 50 + 71]  # the right edge of the first circle
    assert not mask[:, 121:].any()


# --- galaxies -----------------------------------------------------------------------------------

def test_rc3_axes():
    a, b = rc3_semi_axes([2.44, 1.0, np.nan], [0.61, np.nan, 0.1])
    assert a[0] == pytest.approx(0.05 * 10**2.44) and b[0] == pytest.approx(a[0] / 10**0.61)
    assert a[1] == pytest.approx(0.5) and b[1] == a[1]  # no R25: a circle
    assert np.isnan(a[2])
    assert rc3_semi_axes(2.0, 0.3, scale=1.5)[0] == pytest.approx(7.5)


def _ngc253_header(nx: int = NX) -> fits.Header:
    """A north-up, east-left TAN detector of ``nx`` pixels centred on NGC 253."""
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = NGC253["ra"], NGC253["dec"]
    header["CRPIX1"] = header["CRPIX2"] = (nx + 1) / 2.0  # FITS 1-based: the centre pixel
    header["CD1_1"], header["CD2_2"] = -SCALE / 3600.0, SCALE / 3600.0
    header["CD1_2"] = header["CD2_1"] = 0.0
    return header


def _expected_axes():
    a, b = rc3_semi_axes(NGC253["d25"], NGC253["r25"])
    pa = np.radians(NGC253["pa"])
    east, north = np.sin(pa), np.cos(pa)
    major = np.array([-east, north]) * a * 60 / SCALE  # east is -x on this detector
    minor = np.array([-north, -east]) * b * 60 / SCALE  # PA + 90: east cos(pa), north -sin(pa)
    return major, minor, a * 60 / SCALE, b * 60 / SCALE


def test_ellipse_axes_through_a_wcs():
    wcs = WCS(_ngc253_header())
    a, b = rc3_semi_axes(NGC253["d25"], NGC253["r25"])
    x, y, ux, uy, vx, vy = ellipse_axes_on_detector(
        NGC253["ra"], NGC253["dec"], a / 60, b / 60, NGC253["pa"],
        lambda r, d: wcs.all_world2pix(r, d, 0))
    centre = (NX - 1) / 2.0
    assert (x[0], y[0]) == pytest.approx((centre, centre), abs=1e-6)
    major, minor, _, _ = _expected_axes()
    # TAN over 14 arcmin: lengths within 0.1 %, directions to 0.01 degree.
    assert (ux[0], uy[0]) == pytest.approx(tuple(major), rel=1e-3)
    assert (vx[0], vy[0]) == pytest.approx(tuple(minor), rel=1e-3)
    assert angular_distance(10.0, -25.0, 10.0, -24.0) == pytest.approx(1.0)


def test_recipe_masks_ngc253_where_it_is(tmp_path):
    """A synthetic pawprint detector centred on NGC 253: its D25 ellipse, and nothing else."""
    rng = np.random.default_rng(1)
    primary = fits.PrimaryHDU()
    primary.header["HIERARCH ESO PRO CATG"] = "BASIC_CALIBRATED_SCI"
    image = (1000.0 + rng.normal(0, 10, (NX, NX))).astype(np.float32)
    ext = fits.ImageHDU(image, header=_ngc253_header(), name="DET1.CHIP1")
    ext.header["HIERARCH ESO DET CHIP NO"] = 1
    path = tmp_path / "VCAM.2019-07-01T00:00:00.000.basic.fits"
    fits.HDUList([primary, ext]).writeto(path)
    frames = FrameSet([Frame(path, "BASIC_CALIBRATED_SCI")])
    (product,) = run_recipe("vircam_source_mask", frames,
                            {"mask_bright_galaxies": True, "galaxy_d25_min": 5.0, "mask_thresh": 100.0},
                            output_dir=tmp_path / "out")
    with fits.open(product.path) as hdul:
        mask = hdul[1].data.astype(bool)
        assert hdul[1].header["ESO QC NGALAXY"] == 1  # NGC 253 only (nothing else > 5' nearby)
    major, minor, a_px, b_px = _expected_axes()
    centre = np.array([(NX - 1) / 2.0] * 2)

    def at(vector, f):
        x, y = np.rint(centre + f * vector).astype(int)
        return mask[y, x]

    assert at(major, 0.0) and at(major, 0.95) and at(-major, 0.95) and not at(major, 1.05)
    assert at(minor, 0.9) and at(-minor, 0.9) and not at(minor, 1.15) and not at(-minor, 1.15)
    assert mask.sum() == pytest.approx(np.pi * a_px * b_px, rel=0.01)
    # The same pawprint without galaxy masking: nothing masked at a 100-sigma threshold.
    (plain,) = run_recipe("vircam_source_mask", frames, {"mask_thresh": 100.0},
                          output_dir=tmp_path / "plain", qc_plots=False)
    assert not fits.getdata(plain.path, 1).any()
