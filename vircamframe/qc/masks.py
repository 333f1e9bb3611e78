"""QC figures of a source mask (MASTER_OBJMASK): where the masks are, and how much they cover."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .figures import new_figure, save_figure
from .mosaic import focal_plane_mosaic, qc_bars

__all__ = ["mask_thumbnail", "plot_masks"]

THUMBNAIL = 128  # pixels per side of a detector in the mosaic


def mask_thumbnail(mask: np.ndarray, size: int = THUMBNAIL) -> np.ndarray:
    """The fraction of masked pixels in blocks, ``size`` blocks per side at most (float32).

    A block average, not a decimation: a thin mask (a star 3 pixels across on a 2048-pixel
    detector) still shows as a faint dot instead of disappearing between sampled pixels.
    """
    ny, nx = mask.shape
    step = max(1, int(np.ceil(max(ny, nx) / size)))
    py, px = -ny % step, -nx % step
    padded = np.pad(mask.astype(np.float32), ((0, py), (0, px)))
    blocks = padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step)
    return blocks.mean(axis=(1, 3))


def plot_masks(
    product: Path, summary: Mapping[int, tuple[np.ndarray, Mapping[str, tuple[object, str]]]]
) -> list[Path]:
    """``<product>.masks.png``, ``.maskfrac.png`` and ``.qc.png`` for one source-mask product.

    Parameters
    ----------
    product : Path
        The MASTER_OBJMASK file (the figures are written next to it).
    summary : mapping
        Detector number -> (thumbnail from :func:`mask_thumbnail`, QC cards with ``MASKFRAC``
        and ``NBRIGHT``).

    Returns
    -------
    list of Path
        The figures written.
    """
    paths = []
    fig = new_figure(9, 9, layout=None)
    focal_plane_mosaic(fig, {chip: thumb for chip, (thumb, _) in summary.items()},
                       f"{product.name}: masked fraction in blocks", "masked fraction",
                       percentiles=(0.0, 100.0))
    paths.append(save_figure(fig, product, "masks"))

    fractions = {chip: float(qc["MASKFRAC"][0]) for chip, (_, qc) in summary.items()}
    fig = new_figure(9, 9, layout=None)
    # One flat tile per detector, coloured by its masked fraction and labelled with it.
    tiles = {chip: np.full((2, 2), value, np.float32) for chip, value in fractions.items()}
    focal_plane_mosaic(fig, tiles, f"{product.name}: MASKFRAC per detector", "masked fraction",
                       percentiles=(0.0, 100.0))
    for ax, value in zip(fig.axes, fractions.values(), strict=False):  # detector axes come first
        ax.text(0.5, 0.5, f"{100 * value:.1f} %", transform=ax.transAxes, ha="center", va="center",
                fontsize=9, bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    paths.append(save_figure(fig, product, "maskfrac"))

    chips = list(summary)
    fig = new_figure(9, 6)
    qc_bars(fig, chips, {
        "MASKFRAC": [fractions[c] for c in chips],
        "NBRIGHT": [float(summary[c][1]["NBRIGHT"][0]) for c in chips],
    })
    fig.suptitle(f"{product.name}: QC per detector")
    paths.append(save_figure(fig, product, "qc"))
    return paths
