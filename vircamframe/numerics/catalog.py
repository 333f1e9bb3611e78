"""Pure numerics of the source catalogues: correlated-noise correction, errors, limits.

A co-add made by resampling (SWarp, ``lanczos3``) has noise correlated between neighbouring
pixels: the pixel-to-pixel rms is smaller than the noise of a sum over an aperture divided
by the square root of its area. SExtractor computes aperture errors from the pixel rms, so
its errors are too small. :func:`empty_aperture_noise` measures, for each aperture, the rms
of the sums in source-free apertures and its ratio to what uncorrelated pixels of the same
rms would give; :func:`corrected_flux_error` puts that factor on the background part of an
error. Everything here takes arrays and numbers; nothing knows files or headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from .stats import robust_sigma

__all__ = [
    "EmptyApertures",
    "combined_zero_point_error",
    "corrected_flux_error",
    "empty_aperture_noise",
    "limiting_magnitude",
    "magnitude_at_snr",
    "nearest_neighbour",
]

MAG_PER_FLUX_ERROR = 2.5 / np.log(10.0)  # 1.0857: d(mag) = this x d(flux) / flux


@dataclass(frozen=True)
class EmptyApertures:
    """Noise in source-free apertures of one image.

    Attributes
    ----------
    diameters : ndarray
        Aperture diameters [pixels].
    sigma : ndarray
        Robust rms of the aperture sums, per diameter [image unit, e.g. ADU per DIT].
    factor : ndarray
        ``sigma / (sqrt(area) x pixel_sigma)``: the correlated-noise factor (1 for independent
        pixels, larger after resampling).
    pixel_sigma : float
        Robust rms of the single source-free pixels [image unit].
    n : ndarray
        Apertures measured, per diameter.
    """

    diameters: np.ndarray
    sigma: np.ndarray
    factor: np.ndarray
    pixel_sigma: float
    n: np.ndarray

    def factor_at_area(self, area: np.ndarray) -> np.ndarray:
        """The correlated-noise factor for apertures of ``area`` [pixels^2], interpolated in
        log area between the measured apertures (constant beyond them)."""
        areas = np.pi * self.diameters**2 / 4.0
        good = np.isfinite(self.factor)
        if not good.any():
            return np.ones(np.shape(area))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.interp(np.log(np.maximum(np.asarray(area, float), 1.0)), np.log(areas[good]),
                             self.factor[good])


_SIGMA_PIXELS = 4_000_000


def empty_aperture_noise(
    image: np.ndarray,
    bad: np.ndarray,
    diameters: Sequence[float],
    max_apertures: int = 3000,
    seed: int = 0,
) -> EmptyApertures:
    """Rms of the sums in apertures that hold no source and no bad pixel.

    Parameters
    ----------
    image : ndarray
        Background-subtracted image with noise of uniform variance (a co-add multiplied by
        ``sqrt(weight / median weight)``) [image unit].
    bad : ndarray of bool
        Pixels to avoid: sources (with a margin), no data, zero weight.
    diameters : sequence of float
        Aperture diameters [pixels].
    max_apertures : int
        Most apertures per diameter (positions drawn at random, without overlap for the
        largest diameter's spacing as far as the image allows).
    seed : int
        Random seed of the positions (the result is reproducible).

    Returns
    -------
    EmptyApertures
    """
    image = np.asarray(image)
    if image.dtype.kind != "f":
        image = image.astype(float)
    bad = np.asarray(bad, bool) | ~np.isfinite(image)
    diameters = np.asarray(diameters, float)
    # the pixel noise from at most ~4 million clean pixels on a regular grid: exact for a
    # detector-sized image, and to ~0.05 % (1/sqrt(2N)) on a full tile, without copying it
    step = max(1, int(np.sqrt(image.size / _SIGMA_PIXELS)))
    clean = ~bad[::step, ::step]
    sample = image[::step, ::step][clean]
    pixel_sigma = float(robust_sigma(sample)) if sample.size else float("nan")
    del clean, sample
    rng = np.random.default_rng(seed)
    ny, nx = image.shape
    sigma, factor, count = [], [], []
    for diameter in diameters:
        half = int(np.ceil(diameter / 2.0))
        yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
        disk = np.hypot(xx, yy) <= diameter / 2.0
        area = int(disk.sum())
        sums: list[float] = []
        if nx > 2 * half + 1 and ny > 2 * half + 1:
            step = 2 * half + 1  # a grid of non-overlapping cells, visited in random order
            cx = np.arange(half, nx - half, step)
            cy = np.arange(half, ny - half, step)
            cells = np.array(np.meshgrid(cx, cy)).reshape(2, -1).T
            for x, y in cells[rng.permutation(len(cells))]:
                cut = slice(y - half, y + half + 1), slice(x - half, x + half + 1)
                if bad[cut][disk].any():
                    continue
                sums.append(float(image[cut][disk].sum(dtype=np.float64)))
                if len(sums) >= max_apertures:
                    break
        s = float(robust_sigma(np.asarray(sums))) if len(sums) >= 10 else float("nan")
        sigma.append(s)
        factor.append(s / (np.sqrt(area) * pixel_sigma) if pixel_sigma > 0 else float("nan"))
        count.append(len(sums))
    return EmptyApertures(diameters, np.array(sigma), np.array(factor), pixel_sigma, np.array(count))


def corrected_flux_error(
    flux: np.ndarray, flux_error: np.ndarray, gain: float, factor: np.ndarray | float
) -> np.ndarray:
    """SExtractor's flux error with its background part scaled by the correlated-noise factor.

    SExtractor's error is ``sqrt(A sigma_pix^2 + F / gain)``; the background part
    ``A sigma_pix^2`` is what correlated noise makes too small, the source's photon noise
    ``F / gain`` is right. Returns ``sqrt(factor^2 (err^2 - F/gain) + F/gain)``.

    Parameters
    ----------
    flux, flux_error : ndarray
        SExtractor's flux and error [ADU].
    gain : float
        The gain SExtractor was given [e-/ADU] (0 or inf: no photon-noise term).
    factor : ndarray or float
        The correlated-noise factor of each source's aperture.
    """
    flux = np.asarray(flux, float)
    error = np.asarray(flux_error, float)
    poisson = np.clip(flux, 0.0, None) / gain if 0 < gain < np.inf else np.zeros_like(flux)
    background = np.clip(error**2 - poisson, 0.0, None)
    return np.sqrt(np.square(factor) * background + poisson)


def combined_zero_point_error(errors: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """The zero-point error of a co-add of frames with zero-point errors ``errors`` [mag].

    The frames of one field are calibrated together against the same 2MASS stars (jittered
    pawprints see the same stars), so their zero-point errors are correlated, not independent:
    averaging frames does not average them down. The co-add's error is taken as the
    (weighted) rms of the frames' errors, what a full correlation gives, not that divided by
    the square root of the number of frames. NaN errors are ignored; NaN when none is left.
    """
    errors = np.asarray(errors, float)
    w = np.ones_like(errors) if weights is None else np.asarray(weights, float)
    good = np.isfinite(errors) & np.isfinite(w) & (w > 0)
    if not good.any():
        return float("nan")
    return float(np.sqrt(np.sum(w[good] * errors[good] ** 2) / np.sum(w[good])))


def limiting_magnitude(aperture_sigma: float, zero_point: float, aperture_correction: float,
                       nsigma: float = 5.0) -> float:
    """Total magnitude of a point source detected at ``nsigma`` in an aperture.

    ``zero_point - 2.5 log10(nsigma x aperture_sigma) + aperture_correction`` with
    ``aperture_sigma`` the empty-aperture rms [ADU] and the (negative) correction to total.
    """
    if not aperture_sigma > 0:
        return float("nan")
    return float(zero_point - 2.5 * np.log10(nsigma * aperture_sigma) + aperture_correction)


def magnitude_at_snr(mag: np.ndarray, snr: np.ndarray, level: float = 5.0, width: float = 0.25) -> float:
    """The magnitude at which the median signal-to-noise of catalogued sources falls to ``level``.

    Sources are binned in magnitude (``width`` mag); the running median of log S/N is
    interpolated linearly at ``log(level)``. When the median never falls that low (the
    detection threshold stops the catalogue just above it), it is extrapolated from the faint
    sources (S/N < 20, at least 10 of them), which are background-limited, so their S/N is
    proportional to their flux: ``log10 S/N = c - 0.4 mag``, ``c`` their median. NaN with too
    few sources.
    """
    mag, snr = np.asarray(mag, float), np.asarray(snr, float)
    good = np.isfinite(mag) & np.isfinite(snr) & (snr > 0)
    if good.sum() < 10:
        return float("nan")
    mag, log_snr = mag[good], np.log10(snr[good])
    edges = np.arange(np.floor(mag.min()), np.ceil(mag.max()) + width, width)
    centres, medians = [], []
    for lo, hi in pairwise(edges):
        sel = (mag >= lo) & (mag < hi)
        if sel.sum() >= 3:
            centres.append(0.5 * (lo + hi))
            medians.append(float(np.median(log_snr[sel])))
    target = np.log10(level)
    for i in range(len(medians) - 1):
        if medians[i] >= target > medians[i + 1]:
            t = (medians[i] - target) / (medians[i] - medians[i + 1])
            return float(centres[i] + t * (centres[i + 1] - centres[i]))
    faint = log_snr < np.log10(20.0)
    if faint.sum() < 10:
        return float("nan")
    return float((np.median(log_snr[faint] + 0.4 * mag[faint]) - target) / 0.4)


def nearest_neighbour(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance from each point to the nearest other point (inf when alone) [same unit]."""
    from scipy.spatial import cKDTree

    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 2:
        return np.full(x.size, np.inf)
    distance, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
    return distance[:, 1]
