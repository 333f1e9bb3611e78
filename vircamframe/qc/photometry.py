"""QC figures of a photometric calibration: zero points, star residuals, illumination maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..numerics.photometry import unit_coordinates
from .figures import new_figure, save_figure
from .mosaic import focal_plane_mosaic

__all__ = ["plot_photometry"]

_GRID = 48  # samples per axis of the illumination maps drawn


def plot_photometry(product: Path, solution) -> list[Path]:
    """Write ``<product>.zeropoints.png`` and ``<product>.illumination.png``; returns their paths.

    ``solution`` is a :class:`vircamframe.photometry.PhotometricSolution`: the zero point of
    every detector of every pawprint, the residuals of the stars against magnitude and colour,
    and the illumination correction of each detector in the focal plane.
    """
    stars = solution.stars
    used = np.asarray(stars["USED"], bool)
    fig = new_figure(11, 8)
    (ax_zp, ax_hist), (ax_mag, ax_col) = fig.subplots(2, 2)
    for frame in range(len(solution.names)):
        per_det = solution.detector_zero_points(frame)
        if per_det:
            dets = list(per_det)
            ax_zp.errorbar(
                np.asarray(dets) + 0.6 * (frame / max(len(solution.names) - 1, 1) - 0.5),
                [v[0] for v in per_det.values()],
                [v[1] for v in per_det.values()],
                fmt="o",
                ms=3,
                lw=0.8,
            )
    ax_zp.set_xlabel("detector")
    ax_zp.set_ylabel("zero point, illumination-corrected [mag]")
    ax_zp.set_xticks(range(1, 17))
    ax_zp.set_title("per detector and pawprint")
    residual = np.asarray(stars["RESIDUAL"])
    ax_hist.hist(residual[used], bins=40, color="tab:blue", alpha=0.8, label="used")
    ax_hist.set_xlabel("star zero point - model [mag]")
    ax_hist.set_title(f"robust rms {solution.fit.scatter:.4f} mag, {used.sum()} stars")
    for ax, column, label in (
        (ax_mag, "MAG_REF", "2MASS-based VIRCAM magnitude [mag]"),
        (ax_col, "COLOUR", "2MASS colour of the equation [mag]"),
    ):
        values = np.asarray(stars[column])
        ax.scatter(values[~used], residual[~used], s=4, c="0.7", label="rejected")
        ax.scatter(values[used], residual[used], s=4, c="tab:blue", label="used")
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("residual [mag]")
        limit = 5 * solution.fit.scatter if np.isfinite(solution.fit.scatter) else 0.5
        ax.set_ylim(-limit, limit)
        ax.grid(alpha=0.3)
    ax_mag.legend(fontsize=8)
    fig.suptitle(f"{product.name}: photometric calibration vs 2MASS")
    paths = [save_figure(fig, product, "zeropoints")]
    maps = {}
    for detector, shape in solution.shapes.items():
        ny, nx = shape
        x = np.linspace(1, nx, _GRID)
        y = np.linspace(1, ny, _GRID)
        uu, vv = unit_coordinates(x[None, :], y[:, None], shape)
        maps[detector] = solution.fit.delta(detector, *np.broadcast_arrays(uu, vv))
    fig = new_figure(9, 9, layout=None)
    focal_plane_mosaic(
        fig,
        maps,
        f"{product.name}: illumination correction",
        "zero-point offset [mag]",
        percentiles=(0.0, 100.0),
    )
    paths.append(save_figure(fig, product, "illumination"))
    return paths
