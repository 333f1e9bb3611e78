"""Photometric calibration numerics: clipped zero points, aperture corrections, illumination maps.

Pure functions of arrays. A star's zero point is ``zp = m_ref - m_inst`` with ``m_inst =
-2.5 log10(flux [ADU per DIT])`` and ``m_ref`` its VIRCAM magnitude from 2MASS. Across the stars
of a set of pawprints it is modelled as

    zp = ZP_frame + delta_detector(u, v) + noise,

``ZP_frame`` one number per pawprint (airmass, transparency) and ``delta_detector`` the
illumination correction, the same for every pawprint of the set: a polynomial of total degree
``degree`` in the detector's pixel coordinates scaled to [-1, 1] (degree 0: one constant per
detector). The two are degenerate in one constant, fixed by making the mean of ``delta`` over the
whole focal plane zero, so that ``ZP_frame`` is the zero point of the average pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stats import robust_sigma

__all__ = [
    "ZeroPointFit",
    "affine_geometry",
    "aperture_correction",
    "fit_zero_points",
    "polynomial_terms",
    "unit_coordinates",
    "weighted_clipped_mean",
]


def weighted_clipped_mean(
    values: np.ndarray,
    errors: np.ndarray,
    kappa: float = 3.0,
    iterations: int = 5,
) -> tuple[float, float, np.ndarray]:
    """Inverse-variance weighted mean with kappa-sigma clipping.

    Parameters
    ----------
    values, errors : ndarray
        Measurements and their 1-sigma errors (same unit, e.g. mag).
    kappa : float
        Clip at ``kappa`` times the robust sigma (1.4826 MAD) of the residuals.
    iterations : int
        Most clipping passes.

    Returns
    -------
    mean, error : float
        The mean and its error: the formal ``1 / sqrt(sum w)``, scaled up by the square root
        of the reduced chi-square when the scatter exceeds the errors. NaN without values.
    kept : ndarray of bool
        The values used.
    """
    values = np.asarray(values, dtype=float)
    weights = 1.0 / np.square(np.asarray(errors, dtype=float))
    kept = np.isfinite(values) & np.isfinite(weights) & (weights > 0)
    if not kept.any():
        return float("nan"), float("nan"), kept
    for _ in range(iterations):
        mean = float(np.average(values[kept], weights=weights[kept]))
        sigma = robust_sigma(values[kept] - mean)
        if not sigma > 0:
            break
        new = kept & (np.abs(values - mean) <= kappa * sigma)
        if new.sum() < 2 or np.array_equal(new, kept):
            kept = new if new.sum() >= 2 else kept
            break
        kept = new
    mean = float(np.average(values[kept], weights=weights[kept]))
    error = 1.0 / np.sqrt(weights[kept].sum())
    n = int(kept.sum())
    if n > 1:
        chi2 = float(np.sum(weights[kept] * (values[kept] - mean) ** 2)) / (n - 1)
        error *= np.sqrt(max(chi2, 1.0))
    return mean, float(error), kept


def aperture_correction(
    mag_small: np.ndarray,
    mag_large: np.ndarray,
    fwhm: np.ndarray,
    kappa: float = 3.0,
    iterations: int = 5,
) -> tuple[float, float, float, int]:
    """Correction from a small to a large (near-total) aperture as a linear function of seeing.

    ``mag_large - mag_small = a + b (fwhm - median(fwhm))``, fitted to bright isolated stars of
    several pawprints together (each star carries its pawprint's seeing), kappa-clipped: one
    pawprint has too few such stars for a correction good to a few millimag, and the
    correction changes smoothly with the seeing. With one seeing value only ``a`` is fitted.

    Parameters
    ----------
    mag_small, mag_large : ndarray
        Instrumental magnitudes of the stars in the two apertures.
    fwhm : ndarray
        The seeing FWHM of each star's pawprint [pixels].

    Returns
    -------
    a, b : float
        The correction at the median seeing [mag] (negative: the large aperture holds more
        light; add it to small-aperture magnitudes) and its slope [mag/pixel].
    error : float
        The error of ``a`` [mag].
    n : int
        Stars used (NaN and 0 when none).
    """
    diff = np.asarray(mag_large, float) - np.asarray(mag_small, float)
    fwhm = np.asarray(fwhm, float)
    good = np.isfinite(diff) & np.isfinite(fwhm)
    diff, fwhm = diff[good], fwhm[good]
    if diff.size == 0:
        return float("nan"), 0.0, float("nan"), 0
    dx = fwhm - np.median(fwhm)
    slope = diff.size >= 5 and np.ptp(dx) > 0.02 * np.median(fwhm)
    kept = np.ones(diff.size, bool)
    a, b = float(np.median(diff)), 0.0
    for _ in range(iterations):
        if slope:
            b, a = np.polyfit(dx[kept], diff[kept], 1)
        else:
            a = float(np.median(diff[kept]))
        residual = diff - a - b * dx
        sigma = max(float(robust_sigma(residual[kept])), 1e-4)
        new = np.abs(residual) <= kappa * sigma
        if new.sum() < 3 or np.array_equal(new, kept):
            break
        kept = new
    n = int(kept.sum())
    error = float(robust_sigma(residual[kept])) / np.sqrt(n) if n > 1 else float("nan")
    return float(a), float(b), error, n


def unit_coordinates(x: np.ndarray, y: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """FITS pixel coordinates (1-based) scaled to [-1, 1] over a detector of ``shape`` (ny, nx)."""
    ny, nx = shape
    return (2.0 * (np.asarray(x, float) - 0.5) / nx - 1.0, 2.0 * (np.asarray(y, float) - 0.5) / ny - 1.0)


def polynomial_terms(u: np.ndarray, v: np.ndarray, degree: int) -> np.ndarray:
    """Design matrix ``(n, n_terms)`` of ``u**i v**j`` with ``i + j <= degree`` (constant first)."""
    u, v = np.asarray(u, float).ravel(), np.asarray(v, float).ravel()
    columns = [u**i * v ** (total - i) for total in range(degree + 1) for i in range(total, -1, -1)]
    return np.stack(columns, axis=1)


def affine_geometry(u: np.ndarray, v: np.ndarray, xi: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Least-squares affine map ``(xi, eta) = A @ (1, u, v)`` of a detector, ``A`` of shape (2, 3).

    ``u, v``: unit detector coordinates; ``xi, eta``: the same points in the focal plane
    (any unit, e.g. degrees from the pawprint's centre). The projection's distortion (a per cent
    at the edge of VIRCAM's field) does not matter for a smooth illumination model.
    """
    design = np.column_stack([np.ones(np.size(u)), np.ravel(u), np.ravel(v)])
    solution, *_ = np.linalg.lstsq(design, np.column_stack([np.ravel(xi), np.ravel(eta)]), rcond=None)
    return solution.T


@dataclass
class ZeroPointFit:
    """The joint fit of frame zero points and the illumination correction.

    The correction of detector ``d`` at unit coordinates ``(u, v)`` is its own polynomial
    (``coefficients[d]``, degree ``degrees[d]``; degree 0 is an offset) plus a polynomial over
    the whole focal plane (``focal_plane``, degree ``fp_degree``, no constant term) at the
    focal-plane position ``geometry[d] @ (1, u, v)`` divided by ``fp_scale``.

    Attributes
    ----------
    frame_zp, frame_zp_err : ndarray, shape (n_frames,)
        Zero point of each pawprint for the average pixel [mag] and its error.
    coefficients, degrees : dict
        Detector -> its polynomial's coefficients [mag] (:func:`polynomial_terms` order) and degree.
    focal_plane : ndarray
        Coefficients of the focal-plane polynomial without its constant [mag].
    fp_degree : int
        Its degree (0: none).
    geometry : dict
        Detector -> the (2, 3) affine map of :func:`affine_geometry`.
    fp_scale : float
        Focal-plane coordinates are divided by this before the polynomial (keeps it near [-1, 1]).
    residuals : ndarray
        ``zp - ZP_frame - delta`` per star [mag].
    kept : ndarray of bool
        Stars that survived the clipping.
    scatter : float
        Robust rms of the kept residuals [mag].
    """

    frame_zp: np.ndarray
    frame_zp_err: np.ndarray
    coefficients: dict[int, np.ndarray]
    degrees: dict[int, int]
    focal_plane: np.ndarray
    fp_degree: int
    geometry: dict[int, np.ndarray]
    fp_scale: float
    residuals: np.ndarray
    kept: np.ndarray
    scatter: float

    def delta(self, detector: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Illumination correction [mag] of ``detector`` at unit coordinates ``(u, v)``."""
        shape = np.shape(u)
        result = np.zeros(int(np.prod(shape)))
        coeffs = self.coefficients.get(detector)
        if coeffs is not None:
            result += polynomial_terms(u, v, self.degrees[detector]) @ coeffs
        if self.fp_degree > 0 and detector in self.geometry:
            result += (
                _focal_plane_terms(self.geometry[detector], u, v, self.fp_scale, self.fp_degree)
                @ self.focal_plane
            )
        return result.reshape(shape)


def _focal_plane_terms(geometry: np.ndarray, u, v, scale: float, degree: int) -> np.ndarray:
    """The focal-plane polynomial's terms (without the constant) at unit detector coordinates."""
    u, v = np.ravel(u), np.ravel(v)
    xi = (geometry[0, 0] + geometry[0, 1] * u + geometry[0, 2] * v) / scale
    eta = (geometry[1, 0] + geometry[1, 1] * u + geometry[1, 2] * v) / scale
    return polynomial_terms(xi, eta, degree)[:, 1:]


def _grid(n: int = 33) -> tuple[np.ndarray, np.ndarray]:
    g = np.linspace(-1.0, 1.0, n)
    return tuple(a.ravel() for a in np.meshgrid(g, g))


def _n_terms(degree: int) -> int:
    return (degree + 1) * (degree + 2) // 2


def fit_zero_points(
    zp: np.ndarray,
    error: np.ndarray,
    frame: np.ndarray,
    detector: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    degree: int = 0,
    *,
    geometry: dict[int, np.ndarray] | None = None,
    fp_degree: int = 0,
    n_frames: int | None = None,
    kappa: float = 3.0,
    iterations: int = 5,
    stars_per_term: int = 40,
    error_floor: float = 0.01,
    offset_prior: float = 0.03,
) -> ZeroPointFit:
    """Fit ``zp = ZP_frame + delta(detector, u, v)`` by clipped weighted least squares.

    Parameters
    ----------
    zp, error : ndarray
        Star zero points and their errors [mag] (instrumental and reference errors combined).
    frame, detector : ndarray of int
        Index of each star's pawprint (0..n_frames-1) and its detector number.
    u, v : ndarray
        The star's position on its detector, :func:`unit_coordinates`.
    degree : int
        Degree of each detector's own polynomial (0: one offset per detector).
    geometry : dict, optional
        Detector -> :func:`affine_geometry` map to the focal plane; needed for ``fp_degree``.
        A detector without stars but with a geometry gets the focal-plane part.
    fp_degree : int
        Degree of the polynomial over the whole focal plane (0: none). Scattered light in a
        twilight flat is smooth over the focal plane: a few terms for all detectors together
        are far better constrained than a map per detector.
    n_frames : int, optional
        Number of pawprints (default: ``frame.max() + 1``); a pawprint without stars gets NaN.
    kappa, iterations : float, int
        Clipping of the residuals at ``kappa`` robust sigma, at most ``iterations`` passes.
    stars_per_term : int
        Stars needed per fitted term: a detector with fewer has its own degree lowered (down to
        an offset; a detector with no star gets none), and so has the focal-plane polynomial.
    error_floor : float
        Added in quadrature to every error [mag], so that a few very bright stars do not
        dominate: the model itself is good to about this level.
    offset_prior : float
        Width of a Gaussian prior centred on 0 for each detector's offset [mag].
    """
    zp = np.asarray(zp, float)
    frame = np.asarray(frame, int)
    detector = np.asarray(detector, int)
    u, v = np.asarray(u, float), np.asarray(v, float)
    n_frames = int(frame.max()) + 1 if n_frames is None else n_frames
    geometry = dict(geometry or {})
    weight = 1.0 / (np.square(np.asarray(error, float)) + error_floor**2)
    kept = np.isfinite(zp) & np.isfinite(weight)
    detectors = sorted(set(detector[kept].tolist()))
    degrees = {}
    for d in detectors:
        n = int(np.count_nonzero(kept & (detector == d)))
        deg = degree
        while deg > 0 and n < stars_per_term * _n_terms(deg):
            deg -= 1
        degrees[d] = deg
    if fp_degree and not all(d in geometry for d in detectors):
        raise ValueError("fp_degree needs the geometry of every detector with stars")
    while fp_degree > 0 and kept.sum() < stars_per_term * (_n_terms(fp_degree) - 1 + len(detectors)):
        fp_degree -= 1
    corners = np.array([[1, cu, cv] for cu in (-1, 1) for cv in (-1, 1)], float)
    fp_scale = max((float(np.abs(corners @ g.T).max()) for g in geometry.values()), default=1.0) or 1.0
    # columns: frames, each detector's terms, the focal-plane terms
    offsets, column = {}, n_frames
    for d in detectors:
        offsets[d] = column
        column += _n_terms(degrees[d])
    fp_column = column
    column += _n_terms(fp_degree) - 1
    design = np.zeros((zp.size, column))
    design[np.arange(zp.size), frame] = 1.0
    for d in set(detector.tolist()):
        rows = np.flatnonzero(detector == d)
        if d in offsets:
            terms = polynomial_terms(u[rows], v[rows], degrees[d])
            design[rows[:, None], offsets[d] + np.arange(terms.shape[1])[None, :]] = terms
        if fp_degree > 0 and d in geometry:
            design[rows, fp_column:] = _focal_plane_terms(geometry[d], u[rows], v[rows], fp_scale, fp_degree)
    # a prior holds each detector's offset near zero (the flat harmonised the gains): it
    # settles the split between frame zero points and offsets, and keeps a detector with few
    # stars from taking their noise; a detector with many stars overrules it
    prior = np.zeros((len(detectors), column))
    for row, d in enumerate(detectors):
        prior[row, offsets[d]] = 1.0
    prior_weight = np.full(len(detectors), 1.0 / offset_prior**2)
    solution = np.zeros(column)
    for _ in range(iterations):
        sw = np.sqrt(np.r_[weight[kept], prior_weight])
        a = np.vstack([design[kept], prior]) * sw[:, None]
        b = np.r_[zp[kept], np.zeros(len(detectors))] * sw
        solution, *_ = np.linalg.lstsq(a, b, rcond=None)
        residuals = zp - design @ solution
        sigma = robust_sigma(residuals[kept])
        new = np.isfinite(zp) & np.isfinite(weight) & (np.abs(residuals) <= kappa * sigma)
        if np.array_equal(new, kept):
            break
        kept = new
    coefficients = {d: solution[offsets[d] : offsets[d] + _n_terms(degrees[d])].copy() for d in detectors}
    fit = ZeroPointFit(
        np.zeros(n_frames),
        np.zeros(n_frames),
        coefficients,
        degrees,
        solution[fp_column:].copy(),
        fp_degree,
        geometry,
        fp_scale,
        np.zeros(0),
        kept,
        0.0,
    )
    # the mean correction over the focal plane (every detector with stars or a geometry) is zero
    gu, gv = _grid()
    everywhere = sorted(set(detectors) | set(geometry))
    mean = float(np.mean([fit.delta(d, gu, gv).mean() for d in everywhere])) if everywhere else 0.0
    for d in detectors:
        coefficients[d][0] -= mean
    missing = [d for d in everywhere if d not in coefficients]
    for d in missing:  # a starless detector: the focal-plane part alone, less the same mean
        coefficients[d] = np.array([-mean])
        degrees[d] = 0
    residuals = zp - design @ solution
    scatter = float(robust_sigma(residuals[kept])) if kept.any() else float("nan")
    # a frame's error: its stars' weights, scaled by the fit's reduced chi-square (the
    # illumination map's own error is common to all frames and left out)
    dof = max(int(kept.sum()) - column + 1, 1)
    chi2 = float(np.sum(weight[kept] * residuals[kept] ** 2)) / dof
    frame_weight = np.bincount(frame[kept], weights=weight[kept], minlength=n_frames)
    with np.errstate(divide="ignore"):
        frame_err = np.sqrt(max(chi2, 1.0) / frame_weight)
    present = np.bincount(frame[kept], minlength=n_frames) > 0
    fit.frame_zp = np.where(present, solution[:n_frames] + mean, np.nan)
    fit.frame_zp_err = np.where(present, frame_err, np.nan)
    fit.residuals, fit.kept, fit.scatter = residuals, kept, scatter
    return fit
