"""Shared plumbing for QC figures: a headless figure, an atomic PNG next to its product."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # QC plots are files; never try to open a display

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..naming import QC_FOLDER, raw_base

__all__ = ["new_figure", "qc_plot_path", "save_figure"]


def qc_plot_path(product: str | os.PathLike, suffix: str) -> Path:
    """``<product base>.<suffix>.png`` in the product's folder, or in the recipe's QC folder."""
    product = Path(product)
    folder = QC_FOLDER.get() or product.parent
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{raw_base(product.name)}.{suffix}.png"


def new_figure(width: float = 10.0, height: float = 7.0, layout: str | None = "constrained") -> Figure:
    """A figure not registered with pyplot's global state (safe in threads and loops).

    Pass ``layout=None`` for figures whose axes are placed by hand (the focal-plane mosaic).
    """
    return Figure(figsize=(width, height), layout=layout)


def save_figure(fig: Figure, product: str | os.PathLike, suffix: str, dpi: int = 110) -> Path:
    """Write ``fig`` as the QC plot ``suffix`` of ``product``, atomically; returns its path."""
    path = qc_plot_path(product, suffix)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    fig.savefig(tmp, dpi=dpi, format="png")
    os.replace(tmp, path)
    plt.close(fig)
    return path
