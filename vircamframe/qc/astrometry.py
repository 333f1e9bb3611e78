"""QC figures of an astrometric solution: residual vectors per detector and residual histograms.

Pure plotting: arrays of residuals against Gaia in, PNG files next to the product out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .figures import new_figure, save_figure
from .mosaic import detector_positions

__all__ = ["binned_vectors", "plot_residual_histograms", "plot_residual_vectors", "residual_vector_figure"]

Residuals = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x, y [px], dx, dy [arcsec]


def binned_vectors(x: np.ndarray, y: np.ndarray, dx: np.ndarray, dy: np.ndarray, size: tuple[int, int],
                   nbin: int = 4, min_count: int = 3) -> Residuals:
    """Mean residual vector in each of ``nbin`` x ``nbin`` cells of a detector.

    Parameters
    ----------
    x, y : ndarray
        Pixel positions (FITS, 1-based).
    dx, dy : ndarray
        Residuals [arcsec].
    size : (int, int)
        ``(nx, ny)`` of the detector [px].
    nbin : int
        Cells per side.
    min_count : int
        Cells with fewer residuals are left out.

    Returns
    -------
    x, y, dx, dy : ndarray
        Cell centres [px] and mean residuals [arcsec] of the cells kept.
    """
    nx, ny = size
    ix = np.clip(((np.asarray(x) - 0.5) / nx * nbin).astype(int), 0, nbin - 1)
    iy = np.clip(((np.asarray(y) - 0.5) / ny * nbin).astype(int), 0, nbin - 1)
    cell = iy * nbin + ix
    count = np.bincount(cell, minlength=nbin * nbin)
    keep = np.flatnonzero(count >= min_count)
    mean_dx = np.bincount(cell, weights=dx, minlength=nbin * nbin)[keep] / count[keep]
    mean_dy = np.bincount(cell, weights=dy, minlength=nbin * nbin)[keep] / count[keep]
    centre_x = (keep % nbin + 0.5) * nx / nbin + 0.5
    centre_y = (keep // nbin + 0.5) * ny / nbin + 0.5
    return centre_x, centre_y, mean_dx, mean_dy


def residual_vector_figure(residuals: Mapping[int, Residuals], size: tuple[int, int], title: str,
                           scale: float | None = None, nbin: int = 4) -> Figure:
    """The 16 detectors where they sit in the focal plane, each with its mean residual vectors.

    Each detector shows its matched sources (grey dots) and, in each of ``nbin`` x ``nbin``
    cells, the mean residual vector (:func:`binned_vectors`, red): the pattern a wrong
    distortion solution leaves, above the centroid noise of single stars.

    Parameters
    ----------
    residuals : mapping
        Detector number -> ``(x, y, dx, dy)``: source pixel positions and residuals (ours -
        Gaia) along the detector's +x and +y pixel axes [arcsec], pooled over pawprints.
    size : (int, int)
        ``(nx, ny)`` of a detector [px].
    title : str
        Figure title.
    scale : float, optional
        Residual [arcsec] drawn as a quarter of a detector's width (default: three times the
        rms length of the cell means, at least 1 mas).
    nbin : int
        Cells per detector side.
    """
    fig = new_figure(10, 10.5, layout=None)
    nx, ny = size
    binned = {d: binned_vectors(*r, size, nbin=nbin) for d, r in residuals.items()}
    means = np.concatenate([np.hypot(b[2], b[3]) for b in binned.values()] or [np.zeros(0)])
    if scale is None:
        scale = max(3.0 * float(np.sqrt(np.mean(means**2))) if means.size else 0.0, 1e-3)
    stretch = 0.25 * nx / scale  # px of arrow per arcsec of residual
    positions = detector_positions()
    xs = [p[0] for p in positions.values()]
    ys = [p[1] for p in positions.values()]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    panel = 0.18
    for detector, (x, y, dx, dy) in sorted(residuals.items()):
        xi, eta = positions.get(detector, (min(xs), min(ys)))
        ax = fig.add_axes((0.05 + 0.74 * (xi - min(xs)) / span_x, 0.03 + 0.68 * (eta - min(ys)) / span_y,
                           panel, panel))
        ax.plot(x, y, ".", color="0.7", ms=1.5)
        bx, by, bdx, bdy = binned[detector]
        ax.quiver(bx, by, bdx * stretch, bdy * stretch, angles="xy", scale_units="xy", scale=1.0,
                  color="tab:red", width=0.012)
        ax.set_xlim(0.5, nx + 0.5)
        ax.set_ylim(0.5, ny + 0.5)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        rms = np.sqrt(np.mean(np.square(np.concatenate([dx, dy])))) if dx.size else np.nan
        ax.set_title(f"{detector}: {dx.size} stars, rms {1e3 * rms:.0f} mas", fontsize=7, pad=2)
    fig.suptitle(f"{title}\nresiduals vs Gaia along the pixel axes: mean per {nbin} x {nbin} cell (red); "
                 f"a quarter of a detector = {1e3 * scale:.0f} mas", fontsize=10)
    return fig


def plot_residual_vectors(product: Path, residuals: Mapping[int, Residuals], size: tuple[int, int],
                          scale: float | None = None) -> Path:
    """:func:`residual_vector_figure` as ``<product>.vectors.png``; returns its path."""
    fig = residual_vector_figure(residuals, size, f"{product.name}: astrometric residuals", scale)
    return save_figure(fig, product, "vectors")


def plot_residual_histograms(product: Path, dra: np.ndarray, ddec: np.ndarray) -> Path:
    """Histograms of the residuals vs Gaia per axis, ``<product>.histograms.png``.

    Parameters
    ----------
    product : path
        The product the figure belongs to.
    dra, ddec : ndarray
        Residuals (ours - Gaia) along ``ra * cos(dec)`` and ``dec`` [arcsec], all detectors and
        pawprints.
    """
    fig = new_figure(10, 4.5)
    axes = fig.subplots(1, 2, sharey=True)
    values = [1e3 * np.asarray(dra, dtype=float), 1e3 * np.asarray(ddec, dtype=float)]
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite)]
    limit = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 1.0
    bins = np.linspace(-limit, limit, 61) if limit > 0 else 61
    for ax, data, label in zip(axes, values, ("RA cos(Dec)", "Dec"), strict=True):
        data = data[np.isfinite(data)]
        ax.hist(data, bins=bins, color="tab:blue", alpha=0.8)
        if data.size:
            ax.axvline(float(np.median(data)), color="k", lw=1)
            ax.set_title(f"{label}: n = {data.size}, mean {np.mean(data):.1f}, "
                         f"rms {np.std(data):.1f} mas", fontsize=9)
        ax.set_xlabel(f"residual vs Gaia, {label} [mas]")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("sources")
    fig.suptitle(f"{product.name}: astrometric residuals vs Gaia")
    return save_figure(fig, product, "histograms")
