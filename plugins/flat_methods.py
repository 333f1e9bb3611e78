"""Built-in flat-field methods (hook: ``vircam_register_flat_methods``).

A method that combines frames other than twilight flats names the raw tags it takes in an
``input_tags`` attribute, which ``vircam_twilight_flat_combine`` reads to pick its inputs.
"""

from __future__ import annotations

import numpy as np

from vircamframe.hookspecs import hookimpl
from vircamframe.numerics.combine import CombineResult, combine_stack
from vircamframe.numerics.sky import stack_source_masks


def twilight_flat(cube, *, combtype: str = "median", thresh: float = 5.0, xrej: bool = True, **_):
    """CASU's twilight combination: multiplicative scaling, rejection, then median or mean."""
    return combine_stack(cube, combtype, "multiplicative", thresh, xrej=xrej)


twilight_flat.input_tags = ("FLAT_TWILIGHT",)


def sky_flat(
    cube: np.ndarray,
    *,
    masks: np.ndarray | None = None,
    combtype: str = "median",
    thresh: float = 5.0,
    xrej: bool = True,
    mask_thresh: float = 3.0,
    mask_min_area: int = 5,
    mask_dilate: int = 3,
    mask_mesh: int = 64,
    **_,
) -> CombineResult:
    """A flat from dithered science (or offset-sky) frames: VISIONS ``flat_type: sky``.

    The sources move between dithers and the flat pattern does not: where no masks are given,
    each frame is divided by the median of all (level-normalised) and its sources are flagged
    (:func:`~vircamframe.numerics.sky.stack_source_masks`). Masked pixels become NaN and the
    frames are combined as twilight flats are (multiplicative scaling to the mean level,
    ``thresh``-sigma rejection, CASU's extra cycle, median or mean), so the image is on the
    frames' mean sky level, ADU per DIT.

    Parameters
    ----------
    cube : ndarray of float32, shape (n, ny, nx)
        One detector's frames, divided by NDIT, dark-subtracted and linearised (ADU per DIT;
        NaN = bad). Consumed: masked in place and scaled.
    masks : ndarray of bool, same shape, optional
        ``True`` on sources; found from the frames when not given.
    combtype, thresh, xrej
        As for :func:`~vircamframe.numerics.combine.combine_stack`.
    mask_thresh, mask_min_area, mask_dilate, mask_mesh
        Source detection when no masks are given: threshold (sigma), smallest source
        (pixels), growth radius (pixels), background mesh (pixels).

    Returns
    -------
    CombineResult
    """
    if masks is None:
        masks = stack_source_masks(cube, threshold=mask_thresh, min_area=mask_min_area,
                                   dilate=mask_dilate, mesh_size=mask_mesh)
    np.putmask(cube, masks, np.float32(np.nan))
    return combine_stack(cube, combtype, "multiplicative", thresh, xrej=xrej)


sky_flat.input_tags = ("OBJECT", "SKY")


@hookimpl
def vircam_register_flat_methods(registry) -> None:
    """Register ``twilight`` (CASU twilight flats) and ``sky`` (flats from science frames)."""
    registry.add("twilight", twilight_flat,
                 "twilight sky frames, multiplicative scaling, +-thresh rejection with extra cycle, median")
    registry.add("sky", sky_flat,
                 "dithered OBJECT/SKY frames, sources masked against their median, then combined as twilight")
