"""Per-pixel weights of a calibrated detector: inverse sky variance scaled by the flat confidence."""

from __future__ import annotations

import numpy as np

from .stats import clipped_sigma

__all__ = ["local_rms", "weight_map"]

MIN_CELL_FRACTION = 0.1  # of a cell's pixels usable, below which its rms is taken from a neighbour


# Weight of an interpolated bad pixel, relative to the detector's median weight (weight_map).
INTERPOLATED_WEIGHT = 0.25


def weight_map(
    confidence: np.ndarray,
    rms_map: np.ndarray,
    image: np.ndarray | None = None,
    interpolated: np.ndarray | None = None,
) -> np.ndarray:
    """Inverse-variance weight of each pixel, scaled by the flat-field confidence.

    ``weight = (confidence / 100) / rms²``: the sky noise of the frame (``rms_map``, which
    follows regions of excess noise such as detector 16's) and the flat's relative response
    (confidence 100 = nominal, CASU convention), so that a pixel of half the sensitivity counts
    half in a co-add. This is a ``MAP_WEIGHT`` for SWarp and SExtractor.

    Parameters
    ----------
    confidence : ndarray of int, shape (ny, nx)
        Confidence map of the flat, 0-110 (percent of the nominal response; 0 = bad).
    rms_map : ndarray, shape (ny, nx)
        Local sky rms of the frame (ADU), e.g. from :func:`local_rms` or
        :func:`~.background.background_map`.
    image : ndarray, optional
        The frame: its NaN pixels get weight 0.
    interpolated : ndarray of bool, optional
        Bad pixels whose values were interpolated from their neighbours: they get
        ``INTERPOLATED_WEIGHT`` times the median weight of the good pixels, not 0. SWarp blanks
        every output pixel whose resampling kernel touches a zero weight (6 x 6 pixels with
        lanczos3: 15 % of a detector with 0.35 % bad pixels), and SExtractor leaves such a
        pixel out of a star's windowed centroid; the interpolated value, down-weighted, serves
        both better.

    Returns
    -------
    ndarray of float32
        Weight in ADU⁻²; 0 where the confidence is 0 (or negative), the rms is not a finite
        positive number, or the image is NaN, unless the pixel is ``interpolated``.
    """
    conf = np.asarray(confidence, dtype=np.float32)
    rms = np.asarray(rms_map, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        weight = (conf * np.float32(0.01)) / (rms * rms)
        bad = ~(conf > 0) | ~(rms > 0) | ~np.isfinite(weight)
    if image is not None:
        bad |= ~np.isfinite(image)
    weight[bad] = 0.0
    if interpolated is not None and interpolated.any() and not bad.all():
        typical = np.median(weight[~bad])
        weight[interpolated & np.isfinite(rms) & (rms > 0)] = np.float32(INTERPOLATED_WEIGHT * typical)
    return weight.astype(np.float32, copy=False)


def local_rms(image: np.ndarray, mask: np.ndarray | None = None, *, mesh: int = 64) -> np.ndarray:
    """Sky rms of each pixel: the clipped sigma of its ``mesh`` x ``mesh`` cell, interpolated.

    The rms is measured on the frame itself, sky-subtracted, destriped and background-subtracted,
    with sources masked, so it holds everything that makes the pixel noisy: sky photon noise,
    read noise, and excess noise in a region of the detector (detector 16), which the flat's
    confidence knows nothing about. Each cell's value is the 4-sigma clipped standard deviation
    (:func:`~.stats.clipped_sigma`), and pixels get it by bilinear interpolation between cell
    centres (constant beyond the outer centres). Unlike ``sep``'s bicubic spline
    (:func:`~.background.background_map`), linear interpolation cannot overshoot at the sharp
    edge of a noisy region, so it never makes a pixel next to one look quieter than it is.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Sky-subtracted detector (ADU); NaN for bad pixels.
    mask : ndarray of bool, optional
        ``True`` on sources (excluded).
    mesh : int
        Cell size in pixels (clipped to the image's smaller side).

    Returns
    -------
    ndarray of float32, shape (ny, nx)
        rms in ADU. Cells with less than 10 % of their pixels usable take the value of the
        nearest measured cell; NaN everywhere when no cell is measured.
    """
    from scipy import ndimage  # imported here: importing numerics must not cost the import

    data = np.asarray(image, dtype=np.float32)
    if mask is not None:
        data = np.where(mask, np.float32(np.nan), data)
    ny, nx = data.shape
    size = int(max(1, min(mesh, ny, nx)))
    nby, nbx = -(-ny // size), -(-nx // size)
    padded = np.full((nby * size, nbx * size), np.nan, np.float32)
    padded[:ny, :nx] = data
    cells = padded.reshape(nby, size, nbx, size).swapaxes(1, 2).reshape(nby * nbx, size * size)
    usable = np.isfinite(cells).sum(axis=1)
    measured = usable >= max(MIN_CELL_FRACTION * size * size, 8)
    grid = np.full(nby * nbx, np.nan)
    if measured.any():
        grid[measured] = clipped_sigma(cells[measured])
    grid = grid.reshape(nby, nbx)
    missing = ~np.isfinite(grid)
    if missing.all():
        return np.full(data.shape, np.nan, np.float32)
    if missing.any():
        nearest = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
        grid = grid[tuple(nearest)]
    return _bilinear(grid.astype(np.float32), size, ny, nx)


def _bilinear(grid: np.ndarray, size: int, ny: int, nx: int) -> np.ndarray:
    """Cell values at cell centres, linearly interpolated to every pixel (separable)."""

    def axis_weights(n: int, ncells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = np.clip((np.arange(n) + 0.5) / size - 0.5, 0, ncells - 1)  # position in cell units
        low = np.minimum(np.floor(u).astype(int), ncells - 1)
        high = np.minimum(low + 1, ncells - 1)
        return low, high, (u - low).astype(np.float32)

    y0, y1, wy = axis_weights(ny, grid.shape[0])
    x0, x1, wx = axis_weights(nx, grid.shape[1])
    rows = grid[y0] * (1 - wy)[:, None] + grid[y1] * wy[:, None]  # (ny, ncells x)
    return (rows[:, x0] * (1 - wx) + rows[:, x1] * wx).astype(np.float32)
