"""The 16 detectors drawn where they sit in VIRCAM's focal plane, and per-detector QC bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from vircamframe.detector_table import instrument_table

__all__ = ["detector_positions", "focal_plane_mosaic", "qc_bars"]


def detector_positions() -> dict[int, tuple[float, float]]:
    """Centre (xi, eta) in arcmin of each detector, from the packaged focal-plane model."""
    return {
        int(row["detector"]): (row["ahead_block_centre_xi_arcmin"], row["ahead_block_centre_eta_arcmin"])
        for row in instrument_table()
    }


def focal_plane_mosaic(
    fig: Figure, images: Mapping[int, np.ndarray], title: str, label: str,
    percentiles: tuple[float, float] = (1.0, 99.0),
) -> None:
    """Draw each detector image at its focal-plane position on one shared colour scale."""
    positions = detector_positions()
    values = np.concatenate([img[np.isfinite(img)].ravel()[::7] for img in images.values()])
    vmin, vmax = np.percentile(values, percentiles) if values.size else (0.0, 1.0)
    xs = [positions[d][0] for d in images]
    ys = [positions[d][1] for d in images]
    span_x = (max(xs) - min(xs)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    size = 0.18  # the 4 x 4 grid spans 0.03-0.87 across, leaving room for the colour bar
    image = None
    for detector, data in images.items():
        xi, eta = positions[detector]
        left = 0.03 + 0.66 * (xi - min(xs)) / span_x
        bottom = 0.03 + 0.72 * (eta - min(ys)) / span_y
        ax = fig.add_axes((left, bottom, size, size))
        image = ax.imshow(data, origin="lower", vmin=vmin, vmax=vmax, cmap="viridis",
                          interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{detector}", fontsize=8, pad=2)
    if image is not None:
        cax = fig.add_axes((0.9, 0.1, 0.015, 0.7))
        fig.colorbar(image, cax=cax, label=label)
    fig.suptitle(title)


def qc_bars(fig: Figure, detectors: Sequence[int], series: Mapping[str, Sequence[float]]) -> None:
    """One panel per QC quantity, a bar per detector."""
    axes = fig.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, values) in zip(axes, series.items(), strict=True):
        ax.bar(detectors, values, color="tab:blue")
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("detector")
    axes[-1].set_xticks(list(detectors))
