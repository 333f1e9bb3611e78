"""The sky of dithered science pawprints: which frames make a target's sky, and how they combine.

Two methods work on one detector's stack of basic-calibrated frames (ADU per DIT: divided by
NDIT, linearised, dark-subtracted, flat-fielded; NaN = bad) and give the sky *pattern*, the
sky divided by its median, which the caller scales to each target frame's own level:

* :func:`sliding_window_sky` (VISIONS, vircampype): for each target, the frames within a time
  window around it; each frame divided by its level, sources masked, the extreme values of
  each pixel dropped, a clip about the per-pixel median with each frame's own noise, and a
  mean weighted by 1/noise².
* :func:`pawsky_mask_sky` (CASU ``casu_pawsky_mask``): one sky from all the frames, whose object
  masks are found on the sky-subtracted frames and refined until they stop growing.

:func:`stack_source_masks` flags the sources of a stack of sky-dominated frames against their
own median; the ``sky`` flat method uses it. Work proceeds in blocks of rows, so temporaries
stay small next to the cube, which the methods normalise in place (callers hand it over).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import bottleneck as bn
import numpy as np

from .masking import threshold_mask
from .stats import MAD_TO_SIGMA, stack_median

__all__ = [
    "PawskyResult",
    "SkyInputError",
    "frame_noise",
    "level_normalise",
    "pawsky_mask",
    "pawsky_mask_sky",
    "sliding_window_sky",
    "stack_source_masks",
    "window_members",
]

_BLOCK_PIXELS = 1 << 19  # pixels per frame in one row block: ~2 MB at float32
_LEVEL_PIXELS = 1 << 20  # a regular sample of this many pixels pins a frame's median to 0.1 % of its noise
_NOISE_PIXELS = 1 << 16  # pixels per frame to measure its noise on: 0.5 % precision


class SkyInputError(ValueError):
    """The frames cannot make a sky: too few of them, or one without a positive level."""


# --- selection and normalisation -------------------------------------------------------------

def window_members(
    times: Sequence[float] | np.ndarray, target: float, window: float, min_frames: int
) -> tuple[np.ndarray, bool]:
    """The frames that make the sky of a target time: those within +-``window``/2 of it.

    Parameters
    ----------
    times : sequence of float, shape (n,)
        Observation times of the candidate frames, minutes (any zero point).
    target : float
        Time of the frame whose sky is wanted, minutes, same zero point.
    window : float
        Full width of the time window, minutes.
    min_frames : int
        Fewest frames a sky may be made of.

    Returns
    -------
    indices : ndarray of int
        The members, in increasing index order.
    widened : bool
        ``True`` when the window held fewer than ``min_frames`` frames and the ``min_frames``
        frames nearest in time were taken instead (the caller may log the fallback).

    Raises
    ------
    SkyInputError
        When there are fewer than ``min_frames`` frames in all.
    """
    times = np.asarray(times, dtype=np.float64)
    if times.size < min_frames:
        raise SkyInputError(f"a sky needs at least {min_frames} frames, only {times.size} given")
    distance = np.abs(times - float(target))
    inside = np.flatnonzero(distance <= 0.5 * window)
    if inside.size >= min_frames:
        return inside, False
    nearest = np.argsort(distance, kind="stable")[:min_frames]  # ties: the earlier-listed frame
    return np.sort(nearest), True


def _sample_step(shape: tuple[int, ...], max_pixels: int) -> int:
    """Row and column stride that samples an image of ``shape`` down to ``max_pixels``."""
    size = shape[-1] * shape[-2]
    return max(1, math.ceil(math.sqrt(size / max_pixels)))


def level_normalise(cube: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """Divide each frame by its sky level in place; masked pixels become NaN.

    Parameters
    ----------
    cube : ndarray, shape (n, ny, nx)
        Frames (ADU; NaN = bad), modified in place.
    masks : ndarray of bool, same shape, optional
        ``True`` on sources: set to NaN and kept out of the level.

    Returns
    -------
    ndarray of float64, shape (n,)
        Each frame's level: the median of its unmasked pixels (ADU).

    Raises
    ------
    SkyInputError
        When a frame has no valid pixel or a level that is not positive.
    """
    levels = np.empty(cube.shape[0])
    step = _sample_step(cube.shape, _LEVEL_PIXELS)
    for index, frame in enumerate(cube):
        if masks is not None:
            np.putmask(frame, masks[index], np.float32(np.nan))
        level = float(bn.nanmedian(frame[::step, ::step]))
        if not level > 0:  # also NaN: an all-bad frame
            raise SkyInputError(f"frame {index} has no positive sky level ({level:g})")
        frame *= np.float32(1.0 / level)
        levels[index] = level
    return levels


def frame_noise(cube: np.ndarray, members: np.ndarray | None = None) -> np.ndarray:
    """Robust pixel noise of each frame, measured against the per-pixel median of the others.

    Differences to the other frames leave out what the frames share (the flat pattern,
    gradients), which a frame's own scatter would count as noise; leaving the frame itself
    out of the reference keeps the residuals Gaussian (a median that includes the value has
    a spike of small residuals, which biases a MAD low by ~10 % for a dozen frames). The
    reference's own scatter, a median of ``k`` values (variance ~pi/2k of one frame's), is
    subtracted in quadrature using the typical frame.

    Parameters
    ----------
    cube : ndarray, shape (n, ny, nx)
        Frames on a common level (NaN ignored); only a regular sample of pixels is read.
    members : ndarray of int, optional
        The frames to use (all by default).

    Returns
    -------
    ndarray of float64
        Noise of each member frame, in the frames' units; a frame whose noise cannot be
        measured gets the median of the others.
    """
    step = _sample_step(cube.shape, _NOISE_PIXELS)
    sample = cube[:, ::step, ::step]
    sample = sample if members is None else sample[members]
    count = sample.shape[0]
    if count < 2:
        return np.ones(count)
    spread = np.empty(count)
    for index in range(count):
        residual = sample[index] - stack_median(np.delete(sample, index, axis=0))
        centre = bn.nanmedian(residual)
        spread[index] = MAD_TO_SIGMA * bn.nanmedian(np.abs(residual - centre))
    others = count - 1
    reference = 1.0 if others == 1 else 0.5 if others == 2 else math.pi / (2 * others)
    finite = spread[np.isfinite(spread)]
    if finite.size == 0:  # nothing valid in common: no basis for weights
        return np.ones(count)
    typical = float(np.median(finite**2)) / (1.0 + reference)
    with np.errstate(invalid="ignore"):
        sigma = np.sqrt(spread**2 - reference * typical)
    good = np.isfinite(sigma) & (sigma > 0)
    fill = float(np.median(sigma[good])) if good.any() else 1.0
    return np.where(good, sigma, fill)


def _row_blocks(ny: int, nx: int) -> Iterator[slice]:
    rows = max(1, _BLOCK_PIXELS // max(nx, 1))
    for start in range(0, ny, rows):
        yield slice(start, min(start + rows, ny))


def _unit_median(image: np.ndarray) -> np.ndarray:
    """``image`` divided by the median of its finite values, in place (all-NaN stays NaN)."""
    level = bn.nanmedian(image)
    if np.isfinite(level) and level != 0:
        image *= np.float32(1.0 / level)
    return image


def _check_inputs(cube: np.ndarray, masks: np.ndarray | None, times) -> np.ndarray:
    if cube.ndim != 3:
        raise ValueError(f"cube must be (frames, ny, nx), not of shape {cube.shape}")
    if masks is not None and masks.shape != cube.shape:
        raise ValueError(f"masks of shape {masks.shape} do not match the cube {cube.shape}")
    times = np.asarray(times, dtype=np.float64)
    if times.shape != (cube.shape[0],):
        raise ValueError(f"{times.size} times for {cube.shape[0]} frames")
    return times


# --- VISIONS: sliding window, clipped, noise-weighted ------------------------------------------

def _clipped_weighted_mean(
    block: np.ndarray, noise: np.ndarray, weights: np.ndarray, thresh: float, nminmax: int
) -> np.ndarray:
    """Per-pixel min/max rejection, clip about the median, weighted mean (``block`` is consumed)."""
    nan = np.float32(np.nan)
    lowest, highest = np.fmin.reduce(block, axis=0), np.fmax.reduce(block, axis=0)  # NaN ignored
    # the lowest and highest value of each pixel that has enough values to spare them (a tie
    # drops all the tied values: harmless with float data; a constant pixel keeps all)
    spare = (np.count_nonzero(~np.isnan(block), axis=0) >= nminmax) & (lowest < highest)
    if spare.any():
        extreme = (block == lowest[None]) | (block == highest[None])
        np.putmask(block, extreme & spare[None], nan)
    centre = stack_median(block)
    with np.errstate(invalid="ignore"):
        limit = (np.float32(thresh) * noise.astype(np.float32))[:, None, None]
        deviant = np.abs(block - centre[None]) > limit
    np.putmask(block, deviant, nan)
    unused = np.isnan(block)
    np.putmask(block, unused, np.float32(0))
    w = weights.astype(np.float32)
    summed = np.tensordot(w, block, axes=1)  # one pass over the frames, no NaN-aware reduction
    total = np.tensordot(w, (~unused).astype(np.float32), axes=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, summed / total, nan).astype(np.float32)


def sliding_window_sky(
    cube: np.ndarray,
    masks: np.ndarray | None,
    times: Sequence[float] | np.ndarray,
    targets: Sequence[float],
    *,
    window: float = 180.0,
    min_frames: int = 5,
    thresh: float = 3.0,
    nminmax: int = 5,
    weighted: bool = True,
    **_options,
) -> Iterator[np.ndarray]:
    """VISIONS sky: for each target time, a clipped, noise-weighted mean of the frames around it.

    Each frame is divided by its level (median of its unmasked pixels) once, and its masked
    pixels become NaN. For each target, the frames within the window
    (:func:`window_members`; the target frame itself among them when it is a candidate, as in
    VISIONS, where one sky serves all the frames of its window) are combined per pixel: when
    at least ``nminmax`` values are valid the lowest and highest are dropped; values further
    than ``thresh`` times their frame's noise (:func:`frame_noise`, among the members) from
    the median of the rest are rejected; the survivors are averaged with weights 1/noise² of
    each normalised frame, so a noisier (fainter, or worse) frame counts less. Targets that
    share their members share one computation.

    Parameters
    ----------
    cube : ndarray of float32, shape (n, ny, nx)
        Candidate sky frames of one detector (ADU per DIT; NaN = bad); normalised in place.
    masks : ndarray of bool, same shape, or None
        ``True`` on sources.
    times : sequence of float, shape (n,)
        Observation times, minutes.
    targets : sequence of float
        Times of the frames whose sky is wanted, minutes (same zero point).
    window : float
        Full width of the time window, minutes (VISIONS ``sky_window``).
    min_frames : int
        Fewest frames per sky; a thinner window takes the nearest frames instead.
    thresh : float
        Clipping threshold, in units of each frame's noise.
    nminmax : int
        Fewest valid values of a pixel for its minimum and maximum to be dropped.
    weighted : bool
        Weight by 1/noise² (``False``: a plain mean of the survivors).
    **_options
        Options of other methods, ignored.

    Yields
    ------
    ndarray of float32, shape (ny, nx)
        For each target in order, the sky pattern normalised to unit median (NaN where no
        value survived).

    Raises
    ------
    SkyInputError
        Fewer than ``min_frames`` frames, or a frame with no positive level (raised by the
        call, before anything is yielded).
    """
    times = _check_inputs(cube, masks, times)
    plans = [window_members(times, t, window, min_frames)[0] for t in targets]
    level_normalise(cube, masks)
    return _sliding_skies(cube, plans, thresh, nminmax, weighted)


def _sliding_skies(cube, plans, thresh, nminmax, weighted) -> Iterator[np.ndarray]:
    _, ny, nx = cube.shape
    previous, sky = None, None
    for members in plans:
        if previous is None or not np.array_equal(members, previous):
            noise = frame_noise(cube, members)
            weights = 1.0 / noise**2 if weighted else np.ones_like(noise)
            sky = np.empty((ny, nx), np.float32)
            for rows in _row_blocks(ny, nx):
                block = cube[members, rows]  # a copy: the shared cube is left as it is
                sky[rows] = _clipped_weighted_mean(block, noise, weights, thresh, nminmax)
            _unit_median(sky)
            previous = members
        yield sky.copy()


# --- CASU: pawsky_mask --------------------------------------------------------------------------

@dataclass
class PawskyResult:
    """Output of :func:`pawsky_mask`.

    Attributes
    ----------
    sky : ndarray of float32
        The sky pattern, unit median (NaN where every frame was masked or bad).
    masks : ndarray of bool, shape (n, ny, nx)
        The final object masks (given masks included).
    niter : int
        Detection passes run.
    converged : bool
        Whether the masked-pixel count settled before ``niter`` ran out.
    counts : list of int
        Masked pixels (all frames) before the first pass and after each pass.
    levels : ndarray
        Each frame's sky level (median of its unmasked pixels, input units).
    """

    sky: np.ndarray
    masks: np.ndarray
    niter: int
    converged: bool
    counts: list[int] = field(default_factory=list)
    levels: np.ndarray | None = None


def _masked_median(cube: np.ndarray, masks: np.ndarray) -> np.ndarray:
    _, ny, nx = cube.shape
    sky = np.empty((ny, nx), np.float32)
    for rows in _row_blocks(ny, nx):
        sky[rows] = stack_median(np.where(masks[:, rows], np.float32(np.nan), cube[:, rows]))
    return sky


def _relevel(cube: np.ndarray, masks: np.ndarray, levels: np.ndarray) -> None:
    """Re-measure each normalised frame's level without its masked pixels, divide it out."""
    step = _sample_step(cube.shape, _LEVEL_PIXELS)
    for index, frame in enumerate(cube):
        sample = frame[::step, ::step]
        level = float(bn.nanmedian(np.where(masks[index, ::step, ::step], np.float32(np.nan), sample)))
        if np.isfinite(level) and level > 0:
            frame *= np.float32(1.0 / level)
            levels[index] *= level


def pawsky_mask(
    cube: np.ndarray,
    masks: np.ndarray | None = None,
    *,
    mask_thresh: float = 1.5,
    mask_min_area: int = 10,
    mask_grow: int = 2,
    mask_mesh: int = 128,
    niter: int = 6,
    converge: float = 0.025,
) -> PawskyResult:
    """CASU's ``casu_pawsky_mask``: a sky from all frames, with iteratively found object masks.

    The frames are divided by their levels and combined by a median with the masks known so
    far; each frame divided by that sky is searched for objects (:func:`threshold_mask`:
    ``mask_thresh`` sigma, ``mask_min_area`` pixels, grown by ``mask_grow``), which, with the
    given masks, make the next masks; the frames are re-levelled and recombined. This repeats
    until the number of masked pixels changes by less than the fraction ``converge``, or
    ``niter`` passes have run. The defaults are CASU's.

    Parameters
    ----------
    cube : ndarray of float32, shape (n, ny, nx)
        Frames of one detector (ADU per DIT; NaN = bad); normalised in place.
    masks : ndarray of bool, same shape, optional
        Known sources (``True``), kept masked throughout.
    mask_thresh : float
        Detection threshold, in units of the background noise of each sky-divided frame.
    mask_min_area : int
        Smallest object, pixels.
    mask_grow : int
        Radius by which each object is grown, pixels.
    mask_mesh : int
        Background mesh of the detection, pixels (CASU ``nbsize``).
    niter : int
        Most detection passes.
    converge : float
        Fractional change of the masked-pixel count below which the masks have settled.

    Returns
    -------
    PawskyResult
    """
    if masks is not None and masks.shape != cube.shape:
        raise ValueError(f"masks of shape {masks.shape} do not match the cube {cube.shape}")
    levels = level_normalise(cube, masks)  # given masks become NaN for good
    current = np.zeros(cube.shape, dtype=bool)
    sky = _masked_median(cube, current)
    counts = [int(np.count_nonzero(masks)) if masks is not None else 0]
    converged = False
    for _ in range(niter):
        for index, frame in enumerate(cube):
            current[index] = _detect(frame, sky, mask_thresh, mask_min_area, mask_grow, mask_mesh)
        count = int(np.count_nonzero(current if masks is None else current | masks))
        _relevel(cube, current, levels)
        sky = _masked_median(cube, current)
        settled = abs(count - counts[-1]) <= converge * max(counts[-1], 1)
        counts.append(count)
        if settled:
            converged = True
            break
    final = current if masks is None else current | masks
    return PawskyResult(_unit_median(sky), final, len(counts) - 1, converged, counts, levels)


def _detect(frame, reference, threshold, min_area, grow, mesh) -> np.ndarray:
    """Objects of one frame against a reference sky (their ratio: flat where the sky is)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = frame / reference
    return threshold_mask(ratio, threshold=threshold, min_area=min_area, dilate=grow, mesh_size=mesh,
                          smooth_fwhm=0.0)  # CASU thresholds the pixels themselves


def pawsky_mask_sky(
    cube: np.ndarray,
    masks: np.ndarray | None,
    times: Sequence[float] | np.ndarray,
    targets: Sequence[float],
    *,
    min_frames: int = 5,
    mask_thresh: float = 1.5,
    mask_min_area: int = 10,
    mask_grow: int = 2,
    mask_mesh: int = 128,
    niter: int = 6,
    converge: float = 0.025,
    **_options,
) -> Iterator[np.ndarray]:
    """CASU sky (:func:`pawsky_mask`) of all the frames, the same for every target.

    Parameters
    ----------
    cube, masks, times, targets
        As for :func:`sliding_window_sky` (``times`` are only checked: CASU combines the
        whole pawprint sequence).
    min_frames : int
        Fewest frames a sky may be made of.
    mask_thresh, mask_min_area, mask_grow, mask_mesh, niter, converge
        As for :func:`pawsky_mask` (CASU's defaults).
    **_options
        Options of other methods (``window``, ``thresh``), ignored.

    Yields
    ------
    ndarray of float32, shape (ny, nx)
        The sky pattern, unit median, once per target.
    """
    _check_inputs(cube, masks, times)
    if cube.shape[0] < min_frames:
        raise SkyInputError(f"a sky needs at least {min_frames} frames, only {cube.shape[0]} given")
    result = pawsky_mask(cube, masks, mask_thresh=mask_thresh, mask_min_area=mask_min_area,
                         mask_grow=mask_grow, mask_mesh=mask_mesh, niter=niter, converge=converge)
    return (result.sky.copy() for _ in targets)


# --- sources of a stack of sky frames ------------------------------------------------------------

def stack_source_masks(
    cube: np.ndarray,
    *,
    threshold: float = 3.0,
    min_area: int = 5,
    dilate: int = 3,
    mesh_size: int = 64,
) -> np.ndarray:
    """Sources in each frame of a dithered stack, found against the stack's own median.

    A first-pass median of the level-normalised frames holds what they share (sky, flat
    pattern, dark residuals) but not the sources, which move between dithers; each frame
    divided by it is flat but for noise and sources, which :func:`threshold_mask` flags.
    The cube is left as it is.

    Parameters
    ----------
    cube : ndarray, shape (n, ny, nx)
        Sky-dominated frames (ADU; NaN = bad).
    threshold, min_area, dilate, mesh_size
        Detection threshold (sigma), smallest source (pixels), growth radius (pixels) and
        background mesh (pixels), as for :func:`threshold_mask`.

    Returns
    -------
    ndarray of bool, shape (n, ny, nx)
        ``True`` on sources.
    """
    nframes, ny, nx = cube.shape
    step = _sample_step(cube.shape, _LEVEL_PIXELS)
    scale = np.empty(nframes, np.float32)
    for index, frame in enumerate(cube):
        level = float(bn.nanmedian(frame[::step, ::step]))
        if not level > 0:
            raise SkyInputError(f"frame {index} has no positive sky level ({level:g})")
        scale[index] = 1.0 / level
    first = np.empty((ny, nx), np.float32)
    for rows in _row_blocks(ny, nx):
        first[rows] = stack_median(cube[:, rows] * scale[:, None, None])
    masks = np.empty(cube.shape, dtype=bool)
    for index, frame in enumerate(cube):
        masks[index] = _detect(frame * scale[index], first, threshold, min_area, dilate, mesh_size)
    return masks
