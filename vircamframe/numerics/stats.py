"""Robust statistics used throughout (NaN-aware, float32-friendly)."""

from __future__ import annotations

import math

import bottleneck as bn
import numpy as np

__all__ = [
    "MAD_TO_SIGMA",
    "clipped_mean",
    "clipped_sigma",
    "masked_levels",
    "masked_median",
    "robust_sigma",
    "robust_stats",
    "stack_median",
]

MAD_TO_SIGMA = 1.4826  # sigma of a normal distribution per unit median absolute deviation


def masked_median(data: np.ndarray, mask: np.ndarray, max_pixels: int = 16_000_000) -> float:
    """Median of the finite values of a 2-D map where ``mask`` is True; NaN where there are none.

    A map larger than ``max_pixels`` (a full VIRCAM tile has 200 million) is sampled on a
    regular grid (every k-th row and column) first, and the selected values are sorted in
    place, so no map-sized copy is made. For the smooth or piecewise-constant maps this is
    used on (exposure time, image count, MJD, astrometric rms) the sample's median is theirs.
    """
    step = max(1, int(np.sqrt(data.size / max_pixels)))
    sample, keep = data[::step, ::step], mask[::step, ::step]
    if sample.dtype.kind == "f":
        keep = keep & np.isfinite(sample)
    values = sample[keep]
    return float(np.median(values, overwrite_input=True)) if values.size else float("nan")


def robust_sigma(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """1.4826 x the median absolute deviation from the median, ignoring NaN."""
    median = bn.nanmedian(values, axis=axis)
    centred = values - (median if axis is None else np.expand_dims(median, axis))
    return MAD_TO_SIGMA * bn.nanmedian(np.abs(centred), axis=axis)


def robust_stats(values: np.ndarray, max_pixels: int = 1 << 20) -> tuple[float, float]:
    """(median, clipped sigma) of all finite values; (NaN, NaN) when there are none.

    The sigma is :func:`clipped_sigma`, not the bare MAD: on integer data (raw frames, their
    differences) the MAD is quantised, which biases a noise of a few ADU by up to 10 %. A
    2-D image larger than ``max_pixels`` is sampled on a regular grid (every k-th row and
    column) down to that size: a million pixels pin a median to 0.1 % of the noise, at a
    fraction of the cost on a 2048² detector.
    """
    if values.ndim == 2 and values.size > max_pixels:
        step = math.ceil(math.sqrt(values.size / max_pixels))
        values = values[::step, ::step]
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    return float(np.median(finite)), float(clipped_sigma(finite[None, :])[0])


def clipped_sigma(values: np.ndarray, nsigma: float = 4.0, iterations: int = 3) -> np.ndarray:
    """Standard deviation of each row of ``values`` after iterative ``nsigma`` clipping.

    Starts from 1.4826 MAD about the median, then recomputes the standard deviation of the
    values within ``nsigma`` of the median a few times, and corrects for the truncation of a
    Gaussian at +-``nsigma`` (0.07 % at 4 sigma). NaN values are ignored.

    Parameters
    ----------
    values : ndarray, shape (n, m)
        ``n`` independent samples of ``m`` values each (cells of an image, say).
    """
    values = np.asarray(values)
    if values.dtype != np.float32:  # float32 stays: halves the memory traffic, ample precision
        values = values.astype(np.float64)
    median = bn.nanmedian(values, axis=1)[:, None]
    sigma = MAD_TO_SIGMA * bn.nanmedian(np.abs(values - median), axis=1)[:, None]
    for _ in range(iterations):
        with np.errstate(invalid="ignore"):
            kept = np.where(np.abs(values - median) <= nsigma * sigma, values, np.nan)
        sigma = bn.nanstd(kept, axis=1, ddof=1)[:, None]
    k = nsigma
    phi = np.exp(-0.5 * k * k) / np.sqrt(2.0 * np.pi)
    truncation = np.sqrt(1.0 - 2.0 * k * phi / math.erf(k / np.sqrt(2.0)))
    return sigma[:, 0] / truncation


def clipped_mean(values: np.ndarray, nsigma: float = 3.0) -> float:
    """Mean of the finite values within ``nsigma`` robust sigma of their median (one pass)."""
    median = bn.nanmedian(values)
    sigma = MAD_TO_SIGMA * bn.nanmedian(np.abs(values - median))
    if not np.isfinite(median):
        return float("nan")
    if sigma == 0:
        return float(median)
    keep = np.abs(values - median) <= nsigma * sigma
    return float(np.mean(values[keep], dtype=np.float64))


SORTING_NETWORK_MAX = 15  # above this, bottleneck's selection is faster than the network


def stack_median(stack: np.ndarray) -> np.ndarray:
    """Median along the first axis of a small stack (frames, ...), NaN ignored.

    For up to 15 frames an odd-even transposition sorting network of element-wise min/max
    runs 3-5x faster than a per-pixel selection (it streams through memory with vector
    instructions). NaN are sorted to the end as +inf, and each pixel's median is then read
    at the ranks its own count of valid values gives; a pixel with none is NaN. Larger
    stacks go to bottleneck's ``nanmedian``.
    """
    n = stack.shape[0]
    if n > SORTING_NETWORK_MAX or n < 2:
        return bn.nanmedian(stack, axis=0)
    rows = [stack[i].copy() for i in range(n)]
    missing = None
    for row in rows:
        nan = np.isnan(row)
        if nan.any():
            row[nan] = np.inf
            missing = nan.astype(np.int8) if missing is None else missing + nan
    spare = np.empty_like(rows[0])
    for sweep in range(n):
        for i in range(sweep % 2, n - 1, 2):
            np.minimum(rows[i], rows[i + 1], out=spare)
            np.maximum(rows[i], rows[i + 1], out=rows[i + 1])
            rows[i], spare = spare, rows[i]
    half = np.asarray(0.5, dtype=rows[0].dtype)
    if missing is None:
        return rows[n // 2] if n % 2 else (rows[n // 2 - 1] + rows[n // 2]) * half
    valid = n - missing
    ordered = np.stack(rows)
    low = np.take_along_axis(ordered, np.maximum(valid - 1, 0)[None] // 2, axis=0)[0]
    high = np.take_along_axis(ordered, (valid // 2)[None].astype(np.intp), axis=0)[0]
    median = (low + high) * half
    median[valid == 0] = np.nan
    return median


def masked_levels(cube: np.ndarray, masks: np.ndarray | None = None, max_pixels: int = 1 << 20) -> np.ndarray:
    """Median of each frame's unmasked, finite pixels (NaN for a frame without any).

    A regular sample of at most ``max_pixels`` pixels per frame is used (a million pins the
    median to a small fraction of the noise).
    """
    step = max(1, int(np.ceil(np.sqrt(cube.shape[-1] * cube.shape[-2] / max_pixels))))
    levels = np.full(cube.shape[0], np.nan)
    for index, frame in enumerate(cube):
        sample = frame[::step, ::step]
        if masks is not None:
            sample = np.where(masks[index][::step, ::step], np.nan, sample)
        if np.isfinite(sample).any():
            levels[index] = float(bn.nanmedian(sample))
    return levels
