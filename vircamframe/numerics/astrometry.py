"""Residuals of an astrometric solution against a reference catalogue (pure numerics).

A detector's sources, placed on the sky by its solution, are matched to the nearest reference
star within a radius (:func:`match_reference`); the residuals give the QC figures (offset and
rms per axis, :func:`residual_stats`). Whether a solution is plausible is judged from the
reference side (:func:`completeness`): of the reference stars that lie on the detector and are
as bright as the stars the run detects, how many did the solution match? A right solution
matches most; one placed on the wrong patch of sky (a false match of SCAMP's), or right in one
corner and wrong elsewhere, matches few. Counted on the reference side, the figure does not
care about artefacts in the source list or about sources Gaia lacks (embedded, red, galaxies).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["MatchResult", "along_pixel_axes", "completeness", "detected_range", "gnomonic", "match_reference",
           "residual_stats"]

ARCSEC_PER_RAD = 180.0 * 3600.0 / np.pi


def gnomonic(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Standard coordinates (xi, eta) [arcsec] of (ra, dec) [deg] about (ra0, dec0) [deg].

    ``xi`` grows to the east (along ``ra * cos(dec)``), ``eta`` to the north; NaN for
    positions 90 degrees or more from (ra0, dec0).
    """
    a, d = np.radians(np.asarray(ra, dtype=float)), np.radians(np.asarray(dec, dtype=float))
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    cosc = np.where(cosc > 0, cosc, np.nan)  # the far hemisphere has no projection
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return xi * ARCSEC_PER_RAD, eta * ARCSEC_PER_RAD


@dataclass(frozen=True)
class MatchResult:
    """Sources matched to a reference catalogue.

    Attributes
    ----------
    source, reference : ndarray of int
        Indices of the matched pairs into the source and the reference arrays.
    dra, ddec : ndarray
        Source minus reference position [arcsec]: along ``ra * cos(dec)`` and along ``dec``.
    """

    source: np.ndarray
    reference: np.ndarray
    dra: np.ndarray
    ddec: np.ndarray

    @property
    def n(self) -> int:
        """Number of matched pairs."""
        return int(self.source.size)


def match_reference(
    ra: np.ndarray, dec: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray, radius: float
) -> MatchResult:
    """Match every source to its nearest reference star within ``radius``.

    Both sets are projected on the tangent plane about the sources' mean position (a detector
    or a pawprint: the projection error is far below a mas), where a k-d tree finds the
    neighbours. Several sources may match one reference star (close pairs on the image): each
    keeps its nearest star.

    Parameters
    ----------
    ra, dec : array_like
        Source positions from the solution [deg].
    ref_ra, ref_dec : array_like
        Reference positions at the epoch of the observation [deg].
    radius : float
        Match radius [arcsec].

    Returns
    -------
    MatchResult
    """
    ra, dec = np.asarray(ra, dtype=float).ravel(), np.asarray(dec, dtype=float).ravel()
    ref_ra, ref_dec = np.asarray(ref_ra, dtype=float).ravel(), np.asarray(ref_dec, dtype=float).ravel()
    empty = np.zeros(0, dtype=np.int64)
    if ra.size == 0 or ref_ra.size == 0:
        return MatchResult(empty, empty, np.zeros(0), np.zeros(0))
    vectors = np.stack([np.cos(np.radians(dec)) * np.cos(np.radians(ra)),
                        np.cos(np.radians(dec)) * np.sin(np.radians(ra)), np.sin(np.radians(dec))])
    mean = vectors.mean(axis=1)
    ra0 = float(np.degrees(np.arctan2(mean[1], mean[0])))
    dec0 = float(np.degrees(np.arctan2(mean[2], np.hypot(mean[0], mean[1]))))
    xs, ys = gnomonic(ra, dec, ra0, dec0)
    xr, yr = gnomonic(ref_ra, ref_dec, ra0, dec0)
    near = np.isfinite(xr) & np.isfinite(yr)
    if not near.any():
        return MatchResult(empty, empty, np.zeros(0), np.zeros(0))
    tree = cKDTree(np.column_stack([xr[near], yr[near]]))
    sources = np.column_stack([xs, ys])
    distance, index = tree.query(sources, distance_upper_bound=radius)
    found = np.flatnonzero(np.isfinite(distance))
    reference = np.flatnonzero(near)[index[found]]
    return MatchResult(found.astype(np.int64), reference.astype(np.int64),
                       xs[found] - xr[reference], ys[found] - yr[reference])


def detected_range(matched_mag: np.ndarray, percentiles: tuple[float, float] = (5.0, 90.0)
                   ) -> tuple[float, float]:
    """The magnitude range of the reference stars a run detects and matches reliably.

    Parameters
    ----------
    matched_mag : array_like
        Reference magnitudes of all the matched stars of the run.
    percentiles : (float, float)
        Bright and faint ends [per cent]: the bright end leaves out the saturated stars (they
        are flagged, so not matched), the faint end the stars near the detection limit.

    Returns
    -------
    (float, float)
        Bright and faint limits [mag]; (NaN, NaN) without matches.
    """
    values = np.asarray(matched_mag, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan, np.nan
    bright, faint = np.percentile(values, percentiles)
    return float(bright), float(faint)


def completeness(on_detector: np.ndarray, matched: np.ndarray, mag: np.ndarray,
                 mag_range: tuple[float, float]) -> tuple[int, int]:
    """The reference stars a detector should show, and how many of them its solution matched.

    Parameters
    ----------
    on_detector : array_like of int
        Indices of the reference stars that lie on the detector (from its header WCS, not the
        solution being judged).
    matched : array_like of int
        Indices of the reference stars the solution matched.
    mag : array_like
        Reference magnitudes, indexed like the reference.
    mag_range : (float, float)
        Bright and faint limits (:func:`detected_range`), inclusive.

    Returns
    -------
    expected, found : int
        Stars on the detector within ``mag_range``, and those of them matched.
    """
    on_detector = np.asarray(on_detector, dtype=np.int64)
    m = np.asarray(mag, dtype=float)[on_detector]
    with np.errstate(invalid="ignore"):
        wanted = on_detector[(m >= mag_range[0]) & (m <= mag_range[1])]
    return int(wanted.size), int(np.isin(wanted, np.asarray(matched, dtype=np.int64)).sum())


def residual_stats(dra: np.ndarray, ddec: np.ndarray, nsigma: float = 3.0,
                   iterations: int = 5) -> tuple[tuple[float, float], tuple[float, float], int]:
    """Mean offset and rms per axis of residuals, clipped at ``nsigma`` together on both axes.

    Parameters
    ----------
    dra, ddec : array_like
        Residuals per axis (any one unit; the results have it).
    nsigma : float
        Clipping threshold in standard deviations, per axis.
    iterations : int
        Largest number of clipping passes.

    Returns
    -------
    offset : (float, float)
        Clipped mean per axis (NaN without residuals).
    rms : (float, float)
        Clipped standard deviation about the mean per axis (NaN with fewer than two).
    n : int
        Residuals kept.
    """
    a, b = np.asarray(dra, dtype=float).ravel(), np.asarray(ddec, dtype=float).ravel()
    keep = np.isfinite(a) & np.isfinite(b)
    for _ in range(iterations):
        if keep.sum() < 3:
            break
        mean = np.array([a[keep].mean(), b[keep].mean()])
        std = np.array([a[keep].std(ddof=1), b[keep].std(ddof=1)])
        with np.errstate(invalid="ignore", divide="ignore"):
            new = keep & (np.abs(a - mean[0]) <= nsigma * std[0]) & (np.abs(b - mean[1]) <= nsigma * std[1])
        if new.sum() == keep.sum():
            break
        keep = new
    n = int(keep.sum())
    if n == 0:
        return (np.nan, np.nan), (np.nan, np.nan), 0
    offset = (float(a[keep].mean()), float(b[keep].mean()))
    rms = ((float(a[keep].std(ddof=1)), float(b[keep].std(ddof=1))) if n > 1 else (np.nan, np.nan))
    return offset, rms, n


def along_pixel_axes(dra: np.ndarray, ddec: np.ndarray, cd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sky residuals turned into components along a detector's +x and +y pixel axes.

    Parameters
    ----------
    dra, ddec : array_like
        Residuals along ``ra * cos(dec)`` (east) and ``dec`` (north) [arcsec].
    cd : array_like, shape (2, 2)
        The detector's CD matrix [deg/px]: pixel offsets to (east, north) offsets.

    Returns
    -------
    dx, dy : ndarray
        The same displacement along the pixel axes [arcsec]: ``CD^-1 (dra, ddec)`` in pixels,
        times each axis's pixel size.
    """
    cd = np.asarray(cd, dtype=float)
    pixels = np.linalg.solve(cd, np.vstack([np.ravel(dra), np.ravel(ddec)]))
    size = np.hypot(cd[0], cd[1])  # sky length of one pixel step along x and along y [deg]
    return pixels[0] * size[0], pixels[1] * size[1]
