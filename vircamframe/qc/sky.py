"""QC figures of the sky and of the final pawprints: sky level versus time, stripe patterns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np

from .figures import new_figure, save_figure

__all__ = ["plot_sky_levels", "plot_stripes"]


def plot_sky_levels(product: Path, times: np.ndarray, levels: np.ndarray, chips: Sequence[int],
                    kinds: Sequence[str]) -> Path:
    """Sky level per DIT versus time, one line per detector; offset SKY frames marked.

    ``times`` in minutes, ``levels`` of shape (frames, detectors) in ADU.
    """
    fig = new_figure(10.0, 6.0)
    ax = fig.add_subplot()
    minutes = times - np.min(times)
    order = np.argsort(minutes)
    colours = matplotlib.colormaps["tab20"](np.arange(len(chips)) % 20)
    for column, chip in enumerate(chips):
        ax.plot(minutes[order], levels[order, column], "-", lw=1, color=colours[column], label=f"{chip}")
    sky = np.array([kind == "SKY" for kind in kinds])
    if sky.any():
        ax.plot(minutes[sky], np.nanmedian(levels[sky], axis=1), "k^", label="SKY frames")
    ax.set_xlabel("time since first frame [min]")
    ax.set_ylabel("sky level [ADU per DIT]")
    ax.legend(ncol=6, fontsize=7, title="detector")
    ax.set_title("Sky level per detector")
    return save_figure(fig, product, "skylevel")


def plot_stripes(product: Path, profiles: Mapping[int, np.ndarray]) -> Path:
    """The stripe profile removed from each detector (ADU versus row), one panel per read-out row."""
    fig = new_figure(10.0, 8.0)
    axes = fig.subplots(4, 1, sharex=True)
    for chip, profile in sorted(profiles.items()):
        axes[(chip - 1) // 4].plot(profile, lw=0.6, label=f"{chip}")
    for row, ax in enumerate(axes):
        ax.set_ylabel(f"det {4 * row + 1}-{4 * row + 4}\n[ADU]")
        ax.legend(fontsize=6, ncol=4, loc="upper right")
    axes[-1].set_xlabel("row")
    fig.suptitle("Stripe patterns removed")
    return save_figure(fig, product, "stripes")
