"""Co-adding resampled pawprints: the detectors' pieces on the tile grid into stacks and tiles.

The pieces (:mod:`vircamframe.tiling`) already lie on the tile grid, so a co-add is SWarp's
``RESAMPLE N`` combine (:func:`vircamframe.swarp.combine`) over the part of the grid they
cover. A stack combines one detector's jitters; the tile combines everything. The combined
weight (inverse variance) is turned into a confidence map, percent of its median over the
covered pixels, as CASU's confidence maps are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from .errors import RecipeInputError
from .fitsio import image_hdus
from .frames import Frame, FrameSet
from .numerics.tilegrid import TileGrid
from .parameters import Parameter
from .swarp import COMBINE_TYPES, auto_mem_max, combine
from .tiling import grid_of_piece, piece_cards, sub_grid

__all__ = ["COADD_PARAMETERS", "Coadd", "CoaddInputs", "Piece", "coadd", "confidence_map",
           "read_coadd_inputs", "read_pieces", "same_grid", "saturate_card", "swarp_options",
           "zero_point_error_cards"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Piece:
    """One resampled detector: where it is, and where on the tile grid."""

    path: Path
    extname: str
    xmin: int
    ymin: int
    nx: int
    ny: int
    saturate: float | None = None  # [ADU] SATURATE of the resampled detector

    @property
    def xmax(self) -> int:
        return self.xmin + self.nx - 1

    @property
    def ymax(self) -> int:
        return self.ymin + self.ny - 1


@dataclass
class Coadd:
    """A co-added image on (part of) the tile grid."""

    data: np.ndarray
    weight: np.ndarray
    grid: TileGrid
    header: fits.Header  # SWarp's output header (GAIN, ...)
    xmin: int
    ymin: int


def read_pieces(path: str | os.PathLike) -> tuple[TileGrid, list[Piece]]:
    """The tile grid and the pieces of one RESAMPLED_SCI (or RESAMPLED_WEIGHT) file."""
    path = Path(path)
    grid, pieces = None, []
    with fits.open(path) as hdul:
        for hdu in image_hdus(hdul):
            piece_grid, xmin, ymin = grid_of_piece(hdu.header)
            grid = grid or piece_grid
            saturate = float(hdu.header["SATURATE"]) if "SATURATE" in hdu.header else None
            pieces.append(Piece(path, hdu.name, xmin, ymin, hdu.header["NAXIS1"], hdu.header["NAXIS2"],
                                saturate))
    if grid is None:
        raise RecipeInputError(f"{path.name}: no resampled detector in it")
    return grid, pieces


def same_grid(grids: Sequence[TileGrid], names: Sequence[str], recipe: str) -> TileGrid:
    """The one grid of all inputs; a one-line error when two inputs were resampled differently."""
    first = grids[0]
    for grid, name in zip(grids[1:], names[1:], strict=True):
        for key, value in first.items():
            other = grid[key]
            same = np.isclose(value, other, rtol=0, atol=1e-9) if isinstance(value, float) else value == other
            if not same:
                raise RecipeInputError(
                    f"{recipe}: {name} lies on another tile grid than {names[0]} ({key} {other} vs {value}); "
                    "resample them together"
                )
    return first


def _bbox(pieces: Sequence[Piece]) -> tuple[int, int, int, int]:
    return (min(p.xmin for p in pieces), min(p.ymin for p in pieces),
            max(p.xmax for p in pieces), max(p.ymax for p in pieces))


def coadd(
    images: Sequence[str | os.PathLike],
    weights: Sequence[str | os.PathLike],
    grid: TileGrid,
    pieces: Sequence[Piece],
    workdir: str | os.PathLike,
    crop: bool = True,
    **options,
) -> Coadd:
    """Combine resampled ``images`` with their ``weights`` on ``grid``.

    Parameters
    ----------
    images, weights : sequence of path
        SWarp inputs (each a single image or a MEF of pieces, all on ``grid``).
    pieces : sequence of Piece
        The pieces they hold (for the covered region).
    crop : bool
        Combine on the pieces' bounding box only (a stack); otherwise the whole grid (the tile).
    **options
        For :func:`vircamframe.swarp.combine` (``combine_type``, ``clip_sigma``, ``threads``,
        ``mem_max``, ``log``).
    """
    workdir = Path(workdir)
    xmin, ymin = 1, 1
    target = grid
    if crop:
        xmin, ymin, xmax, ymax = _bbox(pieces)
        target = sub_grid(grid, xmin, ymin, xmax, ymax)
    output, weight_path = combine(images, weights, target, workdir / "coadd.fits", workdir, **options)
    with fits.open(output) as hdul:
        data = np.asarray(hdul[0].data, dtype=np.float32)
        header = hdul[0].header.copy()
    with fits.open(weight_path) as hdul:
        weight = np.asarray(hdul[0].data, dtype=np.float32)
    data[weight <= 0] = np.nan  # SWarp writes 0 where nothing contributed
    return Coadd(data, weight, target, header, xmin, ymin)


def confidence_map(weight: np.ndarray) -> np.ndarray:
    """Weights as a confidence map: percent of the median weight of the covered pixels."""
    covered = weight > 0
    if not covered.any():
        return np.zeros_like(weight, dtype=np.float32)
    median = float(np.median(weight[covered], overwrite_input=True))  # sorts its own copy only
    return np.multiply(weight, np.float32(100.0 / median), dtype=np.float32)


def coadd_cards(result: Coadd, grid: TileGrid) -> fits.Header:
    """WCS and placement cards of a co-add, and the gain SWarp computed for it."""
    header = piece_cards(grid, result.xmin, result.ymin)
    header["BUNIT"] = ("ADU", "per DIT, on the zero point PHOTZP")
    if "GAIN" in result.header:
        header["GAIN"] = (float(result.header["GAIN"]), "[e-/ADU] effective, of the co-add (SWarp)")
    return header


def zero_point_error_cards(paths: Sequence[str | os.PathLike]) -> dict[str, tuple[float, str]]:
    """``ESO DRS MAGZERR`` of a product made from ``paths``: their zero-point errors combined.

    Each input's error is its ``ESO QC MAGZERR`` (a PHOTCAL_SCI pawprint) or ``ESO DRS MAGZERR``
    (a product that carries one on); they are combined as fully correlated (the rms, see
    :func:`vircamframe.numerics.catalog.combined_zero_point_error`): the pawprints of a field
    share their 2MASS stars. Empty when no input has one.
    """
    from .fitsio import read_primary_header
    from .numerics.catalog import combined_zero_point_error

    errors = []
    for path in paths:
        header = read_primary_header(path)
        value = header.get("ESO QC MAGZERR", header.get("ESO DRS MAGZERR"))
        if value is not None:
            errors.append(float(value))
    if not errors:
        return {}
    return {"ESO DRS MAGZERR": (combined_zero_point_error(errors), "[mag] zero-point error of the inputs")}


COADD_PARAMETERS = (
    Parameter("combine_type", str, "clipped", "SWarp combination", choices=COMBINE_TYPES),
    Parameter("clip_sigma", float, 4.0, "Clipping threshold of 'clipped' [sigma]", range=(1.0, 100.0)),
    Parameter("mem_max", int, 0, "SWarp memory [MB]; 0: an eighth of the machine's", range=(0, 1_000_000)),
)


@dataclass
class CoaddInputs:
    """The resampled pawprints of a co-add, their weights, pieces and common grid."""

    images: list[Frame]
    weights: list[Frame]
    pieces: list[list[Piece]]  # per image, in its extension order
    grid: TileGrid
    primary: fits.Header  # of the first image: filter, time, PHOTZP

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.images]

    def saturation(self, extname: str | None = None) -> float | None:
        """The lowest ``SATURATE`` [ADU] of the pieces (of ``extname`` only, if given).

        A co-add is saturated where any of its inputs is: the lowest level is the safe one for
        the co-add's saturation flags. None when no piece has the keyword.
        """
        levels = [p.saturate for ps in self.pieces for p in ps
                  if p.saturate is not None and (extname is None or p.extname == extname)]
        return min(levels) if levels else None

    def primary_cards(self) -> dict[str, tuple[object, str]]:
        """``PHOTZP`` and the combined zero-point error of the co-add's primary header."""
        return {"PHOTZP": (self.primary.get("PHOTZP", 25.0), "[mag] zero point (ADU per DIT)"),
                **zero_point_error_cards([f.path for f in self.images])}


def read_coadd_inputs(frames: FrameSet, recipe: str) -> CoaddInputs:
    """The RAW resampled pawprints of ``frames`` with the RESAMPLED_WEIGHT made from each,
    their pieces, and the one grid they share (a one-line error otherwise)."""
    from .association import by_parent
    from .fitsio import read_primary_header

    images = list(frames.raw())
    weights = by_parent(images, list(frames.calib()), "RESAMPLED_WEIGHT", recipe, required=True)
    layouts = [read_pieces(f.path) for f in images]
    grid = same_grid([g for g, _ in layouts], [f.name for f in images], recipe)
    return CoaddInputs(images, weights, [ps for _, ps in layouts], grid, read_primary_header(images[0].path))


def swarp_options(params, threads: int, log: logging.Logger) -> dict[str, object]:
    """:func:`coadd` options from the :data:`COADD_PARAMETERS` of a run."""
    return {"combine_type": params.combine_type, "clip_sigma": params.clip_sigma, "threads": threads,
            "mem_max": params.mem_max or auto_mem_max(), "log": log}


def saturate_card(header: fits.Header, level: float | None) -> None:
    """Set a co-add's ``SATURATE`` to ``level``, the lowest of its inputs (nothing if None)."""
    if level is not None:
        header["SATURATE"] = (level, "[ADU] lowest saturation level of the inputs")
