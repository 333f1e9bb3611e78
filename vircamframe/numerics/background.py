"""2-D background of a sky-subtracted detector: the large-scale residual the sky frame left."""

from __future__ import annotations

import numpy as np

from .stats import robust_stats

__all__ = ["background_map"]

MIN_MESH = 8  # pixels: smaller meshes measure noise, not background
MIN_PIXELS = 64  # usable pixels below which a detector's level and noise are not measured


def background_map(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    mesh: int = 64,
    filter_size: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth background and background rms of one detector, with sources and bad pixels masked.

    SExtractor's estimator through ``sep``: per ``mesh`` x ``mesh`` cell a 3-sigma clipped mode
    (2.5 median - 1.5 mean; the median in a crowded cell) and rms, a ``filter_size`` x
    ``filter_size`` median filter over the cells, and a bicubic spline between cell centres.
    The VISIONS defaults are a 64-pixel mesh and a 3-cell filter (``background_mesh_size``,
    ``background_mesh_filtersize``, the same as its SExtractor ``BACK_SIZE``/``BACK_FILTERSIZE``):
    64 pixels follow the residual sky structure of a 2048² detector (32 x 32 cells) while each
    cell still holds ~4000 pixels, so its level is known to 2.1 sigma / sqrt(4000) = 0.03 sigma.

    For weights prefer :func:`~.weights.local_rms`: next to a sharp change of noise (detector
    16's noisy region) the spline of the rms dips well below the quiet level.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Sky-subtracted (and destriped) detector, ADU; NaN for bad pixels.
    mask : ndarray of bool, optional
        ``True`` on sources; masked like the NaN pixels.
    mesh : int
        Cell size in pixels: at least 8, at most the image's smaller side.
    filter_size : int
        Median filter size in cells (odd; 1 = no filtering).

    Returns
    -------
    background : ndarray of float32
        Background level (ADU), defined everywhere (masked pixels are interpolated over).
    rms : ndarray of float32
        Background rms (ADU), the per-pixel sky noise.

    Notes
    -----
    ``sep`` discards a cell with less than half of its pixels usable and interpolates it from
    the others; when *every* cell is discarded it silently returns a background of 0 and an rms
    of 1 ADU, which would make absurd weights. Such a detector (a large galaxy, a sparse
    mask over a crowded field) gets a flat background and rms instead: the median and clipped
    sigma of its usable pixels (:func:`~.stats.robust_stats`). A detector with fewer than
    ``MIN_PIXELS`` usable pixels has nothing to measure: its background is 0 (subtracting it
    changes nothing) and its rms NaN, which :func:`~.weights.weight_map` turns into zero weight.
    """
    import sep  # imported here, as in masking.py: importing numerics must not cost the import

    data = np.ascontiguousarray(image, dtype=np.float32)
    excluded = ~np.isfinite(data)
    if mask is not None:
        excluded |= np.asarray(mask, dtype=bool)
    usable = ~excluded
    if usable.sum() < MIN_PIXELS:
        return np.zeros(data.shape, np.float32), np.full(data.shape, np.nan, np.float32)
    size = int(min(max(mesh, MIN_MESH), *data.shape))
    if not _any_good_cell(usable, size):
        level, sigma = robust_stats(np.where(usable, data, np.float32(np.nan)))
        return np.full(data.shape, level, np.float32), np.full(data.shape, sigma, np.float32)
    back = sep.Background(data, mask=excluded, bw=size, bh=size, fw=filter_size, fh=filter_size)
    return back.back().astype(np.float32), back.rms().astype(np.float32)


def _any_good_cell(usable: np.ndarray, size: int) -> bool:
    """Whether some cell of sep's ``size``² grid has at least half of ``size``² pixels usable.

    Partial cells at the top and right are held to the full cell's count: conservative, so that
    a cell counted good here is good for sep whichever size it compares with.
    """
    ny, nx = usable.shape
    counts = np.add.reduceat(np.add.reduceat(usable.astype(np.int32), np.arange(0, ny, size), axis=0),
                             np.arange(0, nx, size), axis=1)
    return bool((2 * counts >= size * size).any())
