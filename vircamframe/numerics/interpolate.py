"""Filling of isolated bad pixels (NaN) from their neighbours; dead areas stay NaN."""

from __future__ import annotations

import numpy as np

__all__ = ["fill_isolated_nans"]

# the eight neighbours of a pixel, (dy, dx)
_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def fill_isolated_nans(
    image: np.ndarray,
    *,
    max_size: int = 4,
    tolerance: float = 1e-7,
    max_iterations: int = 200,
) -> tuple[np.ndarray, int]:
    """Fill groups of at most ``max_size`` NaN pixels from their finite neighbours.

    Bad pixels are grouped 8-connected. A pixel alone is replaced by the mean of its finite
    8-neighbours (a normalised convolution). In a group of several, each pixel becomes the mean
    of *all* its in-image 8-neighbours, the group's other pixels taken at their own filled values:
    the discrete harmonic interpolant, solved by Jacobi iteration over the group's pixels only.
    It reproduces a linear ramp exactly away from the image border (the 8-neighbour mean of a
    linear function is its central value), where the plain mean of the finite neighbours of a
    2x2 group is off by 0.4 pixel of gradient. Larger groups (dead areas, bad columns) are left
    NaN: filling them would invent data, and their pixels get zero weight anyway.

    VISIONS fills a NaN with at most 3 bad neighbours (``interpolate_max_bad_neighbors``).
    ``max_size=4`` fills the same isolated pixels, pairs, triples and 2x2 groups (all of whose
    pixels have at most 3 bad neighbours) but, unlike VISIONS, does not nibble at the rim of
    larger bad regions, where every filled value would be an extrapolation.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        One detector (ADU); NaN (or inf) for bad pixels.
    max_size : int
        Largest group of bad pixels that is filled, in pixels.
    tolerance : float
        The iteration stops when no value changes by more than ``tolerance`` times
        (1 + the largest absolute neighbour value).
    max_iterations : int
        Iteration cap (a group of up to 4 pixels converges in 10-20).

    Returns
    -------
    filled : ndarray of float32
        A copy of ``image`` with the small groups filled.
    count : int
        Number of pixels filled.
    """
    from scipy import ndimage  # imported here: importing numerics must not cost the import

    out = np.array(image, dtype=np.float32, copy=True)
    bad = ~np.isfinite(out)
    if not bad.any() or bad.all():
        return out, 0
    labels, ngroups = ndimage.label(bad, structure=np.ones((3, 3), bool))
    small = np.bincount(labels.ravel(), minlength=ngroups + 1) <= max_size
    small[0] = False
    holes = np.flatnonzero(small[labels])
    if holes.size == 0:
        return out, 0

    ny, nx = out.shape
    flat = out.ravel()
    ys, xs = np.divmod(holes, nx)
    fixed = np.zeros(holes.size)  # sum of the finite neighbours
    nfixed = np.zeros(holes.size)
    inside = np.zeros(holes.size)  # number of in-image neighbours
    # position in ``holes`` of each neighbour that is itself a hole, else holes.size (reads 0)
    linked = np.full((holes.size, len(_OFFSETS)), holes.size)
    for k, (dy, dx) in enumerate(_OFFSETS):
        yy, xx = ys + dy, xs + dx
        within = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
        index = np.where(within, yy * nx + xx, 0)
        value = np.where(within, flat[index], np.nan).astype(np.float64)
        good = np.isfinite(value)
        fixed += np.where(good, value, 0.0)
        nfixed += good
        inside += within
        # a bad in-image neighbour belongs to the same (small) group: groups are maximal
        position = np.searchsorted(holes, index)
        linked[:, k] = np.where(within & ~good, position, holes.size)

    with np.errstate(invalid="ignore", divide="ignore"):
        values = fixed / nfixed  # the normalised convolution: exact for a lone pixel
    start = np.nanmean(values)  # a hole in a corner may have no finite neighbour at all
    values = np.append(np.where(np.isfinite(values), values, start), 0.0)
    step = tolerance * (1.0 + np.max(np.abs(fixed / np.maximum(nfixed, 1))))
    if (linked < holes.size).any():
        for _ in range(max_iterations):
            update = (fixed + values[linked].sum(axis=1)) / inside
            change = np.max(np.abs(update - values[:-1]))
            values[:-1] = update
            if change <= step:
                break
    flat[holes] = values[:-1]
    return out, int(holes.size)
