"""Masks of bright stars and galaxies from catalogues: circles and ellipses on a detector.

Pure numerics: positions come in as pixel coordinates (the caller applies the detector's WCS),
masks go out as boolean arrays. Each object only touches the pixels of its bounding box, so a
detector with hundreds of bright stars costs hundreds of small stamps, never a full-frame
operation per object.

Conventions: pixel ``(row, column)`` = ``(y, x)`` has its centre at integer ``x``, ``y``
(0-based, NumPy indexing); a pixel is masked when its centre lies inside the shape.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "MOFFAT_BETA",
    "WING_FRACTION",
    "angular_distance",
    "bright_star_radius",
    "ellipse_axes_on_detector",
    "mask_bright_stars",
    "mask_galaxies",
    "rasterise_circles",
    "rasterise_ellipses",
    "rc3_semi_axes",
    "star_flux_from_sky",
]

# Moffat index of the wings the bright-star law assumes. The core of a VISTA star is close to
# beta ~ 3 (Kolmogorov seeing gives 4.8), but scattered light makes the aureole of a bright
# star fall only as r**-3 (beta = 1.5, Racine 1996, PASP 108, 699); sky estimation must not
# see that aureole, so the law follows it.
MOFFAT_BETA = 1.5
# A star is masked out to where its wings fall to this fraction of the sky noise per pixel:
# well below what a per-frame source masker can detect (~1 sigma), because the sky is a
# median over many frames and a bias of a quarter of the noise in every frame survives it.
WING_FRACTION = 0.25


def star_flux_from_sky(
    mag: np.ndarray, sky_level: float, sky_brightness: float, pixel_area: float,
    extinction: float = 0.0,
) -> np.ndarray:
    """Total flux of stars in the image's unit, using the sky as the photometric reference.

    Before photometric calibration the zero point of a frame is unknown, but its sky level is
    measured and the sky's surface brightness is known to a few tenths of a magnitude. A star
    of magnitude ``m`` outside the atmosphere gives

    ``F = (S / A) * 10**(-0.4 (m + k - mu_sky))``

    with ``S`` the sky per pixel, ``A`` the pixel area (arcsec²), ``mu_sky`` the sky surface
    brightness (mag/arcsec², in the band of the star's magnitude) and ``k`` the extinction
    (mag). A 0.3 mag error in ``mu_sky`` changes a mask radius by only ~10 % (see
    :func:`bright_star_radius`).

    Parameters
    ----------
    mag : array_like
        Magnitudes in the frame's filter (Vega).
    sky_level : float
        Sky per pixel (any unit: ADU per DIT for a basic-calibrated frame).
    sky_brightness : float
        Sky surface brightness, mag/arcsec² (Vega).
    pixel_area : float
        Pixel area on the sky, arcsec².
    extinction : float
        Atmospheric extinction of the stars, mag (extinction coefficient x airmass).

    Returns
    -------
    ndarray
        Total flux per star, in the unit of ``sky_level``.
    """
    mag = np.asarray(mag, dtype=float)
    return sky_level / pixel_area * 10.0 ** (-0.4 * (mag + extinction - sky_brightness))


def bright_star_radius(
    flux: np.ndarray,
    sky_noise: float,
    fwhm: float,
    beta: float = MOFFAT_BETA,
    fraction: float = WING_FRACTION,
    r_min: float | None = None,
    r_max: float | None = None,
) -> np.ndarray:
    """Mask radius of stars: where a Moffat profile of their flux drops to a fraction of the noise.

    A star of total flux ``F`` and Moffat profile

    ``I(r) = F (beta - 1) / (pi alpha²) * (1 + r²/alpha²)**-beta``,
    ``alpha = fwhm / (2 sqrt(2**(1/beta) - 1))``

    is masked out to the radius where ``I(r) = fraction * sky_noise``:

    ``r = alpha * sqrt((F (beta - 1) / (pi alpha² fraction sky_noise))**(1/beta) - 1)``

    so far out ``r`` grows as ``F**(1 / (2 beta))``: with the default ``beta = 1.5`` (the
    scattered-light aureole, :data:`MOFFAT_BETA`) a star 2.5 mag brighter gets a radius
    ``10**(1/3) = 2.15`` times larger. Defaults: ``fraction = 0.25`` (:data:`WING_FRACTION`),
    ``r_min = 2 fwhm`` (a star is always masked beyond its core, whatever the noise), no
    ``r_max``.

    Parameters
    ----------
    flux : array_like
        Total flux of each star (unit of ``sky_noise`` per pixel, e.g. from
        :func:`star_flux_from_sky`).
    sky_noise : float
        Sky noise per pixel, same unit.
    fwhm : float
        Seeing FWHM, pixels.
    beta : float
        Moffat index (> 1).
    fraction : float
        Surface brightness at the mask edge, in units of ``sky_noise``.
    r_min, r_max : float, optional
        Radius limits, pixels.

    Returns
    -------
    ndarray of float
        Radii in pixels.
    """
    if beta <= 1.0:
        raise ValueError(f"Moffat beta must exceed 1 (finite flux), not {beta}")
    if sky_noise <= 0 or fraction <= 0 or fwhm <= 0:
        raise ValueError("sky_noise, fraction and fwhm must be positive")
    flux = np.asarray(flux, dtype=float)
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    peak = flux * (beta - 1.0) / (np.pi * alpha**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.maximum(peak / (fraction * sky_noise), 1.0) ** (1.0 / beta)
    radius = alpha * np.sqrt(ratio - 1.0)
    radius = np.maximum(radius, 2.0 * fwhm if r_min is None else r_min)
    if r_max is not None:
        radius = np.minimum(radius, r_max)
    return np.where(np.isfinite(flux), radius, np.nan)


def rasterise_circles(
    shape: tuple[int, int], x: np.ndarray, y: np.ndarray, radius: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Mask the pixels whose centres lie within ``radius`` of ``(x, y)``.

    Parameters
    ----------
    shape : (ny, nx)
        Detector shape.
    x, y : array_like
        Centres, 0-based pixel coordinates (may lie off the detector).
    radius : array_like or float
        Radii, pixels (NaN or non-positive: nothing masked).
    out : ndarray of bool, optional
        Mask to add to (in place); a new one otherwise.

    Returns
    -------
    ndarray of bool
        ``out``, with the circles set.
    """
    x, y, radius = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float)) for v in (x, y, radius)))
    # A circle is the ellipse with two perpendicular axes of length r.
    zero = np.zeros_like(radius)
    return rasterise_ellipses(shape, x, y, radius, zero, zero, radius, out=out)


def rasterise_ellipses(
    shape: tuple[int, int],
    x: np.ndarray,
    y: np.ndarray,
    ux: np.ndarray,
    uy: np.ndarray,
    vx: np.ndarray,
    vy: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Mask the pixels inside ellipses given by their centre and two conjugate semi-axes.

    The ellipse is ``{c + s u + t v : s² + t² <= 1}`` for centre ``c = (x, y)`` and
    semi-axis vectors ``u = (ux, uy)``, ``v = (vx, vy)`` in pixels. Any image of a sky ellipse
    under a locally linear WCS has this form (the axes need not be perpendicular), so sky
    shapes can be mapped axis by axis (:func:`ellipse_axes_on_detector`) without assuming
    square pixels or a particular orientation.

    Parameters
    ----------
    shape : (ny, nx)
        Detector shape.
    x, y : array_like
        Centres, 0-based pixel coordinates.
    ux, uy, vx, vy : array_like
        Semi-axis vectors, pixels. Degenerate (zero-area) or non-finite ellipses mask nothing.
    out : ndarray of bool, optional
        Mask to add to (in place); a new one otherwise.

    Returns
    -------
    ndarray of bool
        ``out``, with the ellipses set.
    """
    ny, nx = shape
    if out is None:
        out = np.zeros(shape, dtype=bool)
    arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float)) for v in (x, y, ux, uy, vx, vy)))
    x, y, ux, uy, vx, vy = (a.ravel() for a in arrays)
    det = ux * vy - uy * vx
    # Half-extent of the bounding box along x and y: the support of s u + t v, |(s,t)| <= 1.
    half_x = np.hypot(ux, vx)
    half_y = np.hypot(uy, vy)
    with np.errstate(invalid="ignore"):
        good = (np.isfinite(det) & (np.abs(det) > 0) & np.isfinite(x) & np.isfinite(y)
                & (x + half_x >= -0.5) & (x - half_x <= nx - 0.5)
                & (y + half_y >= -0.5) & (y - half_y <= ny - 0.5))
    for i in np.flatnonzero(good):
        x0 = max(int(np.ceil(x[i] - half_x[i])), 0)
        x1 = min(int(np.floor(x[i] + half_x[i])), nx - 1)
        y0 = max(int(np.ceil(y[i] - half_y[i])), 0)
        y1 = min(int(np.floor(y[i] + half_y[i])), ny - 1)
        if x1 < x0 or y1 < y0:
            continue
        dx = np.arange(x0, x1 + 1) - x[i]
        dy = (np.arange(y0, y1 + 1) - y[i])[:, None]
        # (s, t) = [u v]^-1 (dx, dy): inside when s² + t² <= 1.
        s = (vy[i] * dx - vx[i] * dy) / det[i]
        t = (ux[i] * dy - uy[i] * dx) / det[i]
        out[y0 : y1 + 1, x0 : x1 + 1] |= s * s + t * t <= 1.0
    return out


def rc3_semi_axes(
    d25: np.ndarray, r25: np.ndarray, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Semi-major and semi-minor axes of RC3 galaxies, arcmin.

    RC3 (de Vaucouleurs et al. 1991, VizieR VII/155) gives the isophotal diameter at
    25 B-mag/arcsec² as ``D25 = log10(D / 0.1 arcmin)`` and the axis ratio as
    ``R25 = log10(a / b)``. So ``a = scale * 0.1 * 10**D25 / 2`` and ``b = a / 10**R25``;
    a missing ``R25`` gives a circle (``b = a``), the conservative choice.

    Parameters
    ----------
    d25, r25 : array_like
        Catalogue values (NaN where missing).
    scale : float
        Factor on both axes (1 = the D25 isophote).

    Returns
    -------
    (a, b) : tuple of ndarray
        Semi-axes in arcmin (NaN where ``D25`` is missing).
    """
    d25 = np.asarray(d25, dtype=float)
    r25 = np.asarray(r25, dtype=float)
    a = scale * 0.05 * 10.0**d25
    b = a / 10.0 ** np.where(np.isfinite(r25), np.maximum(r25, 0.0), 0.0)
    return a, b


def ellipse_axes_on_detector(
    ra: np.ndarray,
    dec: np.ndarray,
    a_deg: np.ndarray,
    b_deg: np.ndarray,
    pa_deg: np.ndarray,
    world_to_pixel: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, ...]:
    """Centres and semi-axis vectors (pixels) of sky ellipses, through a detector's WCS.

    The end points of the major axis (at position angle ``pa``, east of north, distance
    ``a``) and of the minor axis (``pa + 90``, distance ``b``) are placed on the sphere and
    mapped by ``world_to_pixel``; the axis vectors are their half-differences, which cancels
    the WCS's curvature to first order. A missing ``pa`` (NaN) is treated as 0 — callers give
    such galaxies ``b = a`` (a circle), for which the angle does not matter.

    Parameters
    ----------
    ra, dec : array_like
        Centres, degrees.
    a_deg, b_deg : array_like
        Semi-major and semi-minor axes, degrees.
    pa_deg : array_like
        Position angle of the major axis, degrees east of north.
    world_to_pixel : callable
        ``(ra, dec) -> (x, y)``, 0-based pixel coordinates (e.g. ``wcs.all_world2pix(ra, dec,
        0)``).

    Returns
    -------
    (x, y, ux, uy, vx, vy) : tuple of ndarray
        For :func:`rasterise_ellipses`.
    """
    ra, dec, a_deg, b_deg, pa_deg = (np.atleast_1d(np.asarray(v, dtype=float))
                                     for v in (ra, dec, a_deg, b_deg, pa_deg))
    pa = np.where(np.isfinite(pa_deg), pa_deg, 0.0)
    n = ra.size
    ends_ra = np.empty(4 * n)
    ends_dec = np.empty(4 * n)
    for k, (dist, angle) in enumerate(((a_deg, pa), (a_deg, pa + 180.0),
                                       (b_deg, pa + 90.0), (b_deg, pa + 270.0))):
        ends_ra[k * n : (k + 1) * n], ends_dec[k * n : (k + 1) * n] = _offset(ra, dec, dist, angle)
    px, py = world_to_pixel(np.r_[ra, ends_ra], np.r_[dec, ends_dec])
    px, py = np.asarray(px, dtype=float), np.asarray(py, dtype=float)
    x, y = px[:n], py[:n]
    ends = [(px[(k + 1) * n : (k + 2) * n], py[(k + 1) * n : (k + 2) * n]) for k in range(4)]
    ux = 0.5 * (ends[0][0] - ends[1][0])
    uy = 0.5 * (ends[0][1] - ends[1][1])
    vx = 0.5 * (ends[2][0] - ends[3][0])
    vy = 0.5 * (ends[2][1] - ends[3][1])
    return x, y, ux, uy, vx, vy


def _offset(ra: np.ndarray, dec: np.ndarray, dist: np.ndarray, pa: np.ndarray):
    """The point at angular distance ``dist`` and position angle ``pa`` (degrees) from (ra, dec)."""
    d0, r = np.radians(dec), np.radians(dist)
    theta = np.radians(pa)
    sin_d = np.sin(d0) * np.cos(r) + np.cos(d0) * np.sin(r) * np.cos(theta)
    dec1 = np.arcsin(np.clip(sin_d, -1.0, 1.0))
    dra = np.arctan2(np.sin(theta) * np.sin(r) * np.cos(d0), np.cos(r) - np.sin(d0) * sin_d)
    return np.mod(ra + np.degrees(dra), 360.0), np.degrees(dec1)


WorldToPixel = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def angular_distance(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    """Great-circle distance of (ra, dec) from (ra0, dec0), degrees (haversine: exact when small)."""
    ra, dec = np.radians(np.asarray(ra, dtype=float)), np.radians(np.asarray(dec, dtype=float))
    ra0, dec0 = np.radians(ra0), np.radians(dec0)
    h = np.sin((dec - dec0) / 2) ** 2 + np.cos(dec) * np.cos(dec0) * np.sin((ra - ra0) / 2) ** 2
    return np.degrees(2.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def mask_bright_stars(
    mask: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    mag: np.ndarray,
    *,
    sky_level: float,
    sky_noise: float,
    sky_brightness: float,
    pixel_scale: float,
    fwhm: float,
    extinction: float = 0.0,
) -> int:
    """Add circles around bright stars to ``mask`` (in place); return how many touch it.

    Radii from :func:`star_flux_from_sky` and :func:`bright_star_radius` (default law
    parameters), in pixels.

    Parameters
    ----------
    mask : ndarray of bool
        The detector's mask, updated in place.
    x, y : array_like
        Star positions, 0-based pixels (from the detector's WCS).
    mag : array_like
        Magnitudes in the frame's filter (Vega).
    sky_level, sky_noise : float
        Sky per pixel and its noise (the image's unit).
    sky_brightness : float
        Sky surface brightness, mag/arcsec².
    pixel_scale : float
        Arcsec per pixel.
    fwhm : float
        Seeing FWHM, pixels.
    extinction : float
        Extinction of the stars, mag.

    Returns
    -------
    int
        Number of stars whose circle covers at least one pixel centre of the detector.
    """
    x, y, mag = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (x, y, mag))
    if x.size == 0:
        return 0
    flux = star_flux_from_sky(mag, sky_level, sky_brightness, pixel_scale**2, extinction)
    radius = bright_star_radius(flux, sky_noise, fwhm)
    on = _touches(mask.shape, x, y, radius, radius)
    rasterise_circles(mask.shape, x[on], y[on], radius[on], out=mask)
    return int(on.sum())


def mask_galaxies(
    mask: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    a_deg: np.ndarray,
    b_deg: np.ndarray,
    pa_deg: np.ndarray,
    world_to_pixel: WorldToPixel,
) -> int:
    """Add sky ellipses (galaxies) to ``mask`` (in place); return how many touch it.

    Parameters
    ----------
    mask : ndarray of bool
        The detector's mask, updated in place.
    ra, dec : array_like
        Centres, degrees.
    a_deg, b_deg : array_like
        Semi-axes, degrees (:func:`rc3_semi_axes` gives arcmin).
    pa_deg : array_like
        Position angles, degrees east of north.
    world_to_pixel : callable
        ``(ra, dec) -> (x, y)``, 0-based pixels.

    Returns
    -------
    int
        Number of ellipses that cover at least one pixel centre of the detector.
    """
    ra = np.atleast_1d(np.asarray(ra, dtype=float))
    if ra.size == 0:
        return 0
    x, y, ux, uy, vx, vy = ellipse_axes_on_detector(ra, dec, a_deg, b_deg, pa_deg, world_to_pixel)
    on = _touches(mask.shape, x, y, np.hypot(ux, vx), np.hypot(uy, vy))
    rasterise_ellipses(mask.shape, x[on], y[on], ux[on], uy[on], vx[on], vy[on], out=mask)
    return int(on.sum())


def _touches(shape, x, y, half_x, half_y) -> np.ndarray:
    """Which shapes (centre, bounding half-sizes) can cover a pixel centre of the detector.

    Exact for the bounding box; an ellipse in a corner of its box may still miss the
    detector, which only makes the count an upper bound for shapes grazing a corner.
    """
    ny, nx = shape
    with np.errstate(invalid="ignore"):
        return (np.isfinite(x) & np.isfinite(y) & np.isfinite(half_x) & np.isfinite(half_y)
                & (np.ceil(x - half_x) <= np.minimum(np.floor(x + half_x), nx - 1))
                & (np.maximum(np.ceil(x - half_x), 0) <= np.floor(x + half_x))
                & (np.ceil(y - half_y) <= np.minimum(np.floor(y + half_y), ny - 1))
                & (np.maximum(np.ceil(y - half_y), 0) <= np.floor(y + half_y)))
