"""The tile grid in files: made from pawprints, read from a user's header, carried by pieces.

A resampled detector (a *piece*) is an image on the tile grid, cropped to the detector's
footprint: its WCS is the tile's with ``CRPIX`` shifted, and it carries where it sits in the
tile (``ESO DRS TILE XMIN/YMIN``, 1-based) and the tile's size (``ESO DRS TILE NAXIS1/2``). Any
piece therefore gives the whole grid back (:func:`grid_of_piece`), and stacks, the tile and the
statistics maps need no other input to agree on it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from .errors import FitsInputError
from .fitsio import image_hdus
from .numerics.tilegrid import NATIVE_PIXEL_ARCSEC, TILE_PIXEL_ARCSEC, TileGrid, tile_grid

__all__ = [
    "GRID_KEYS",
    "detector_edges",
    "detectors_on_grid",
    "grid_of_piece",
    "piece_cards",
    "read_grid",
    "sub_grid",
    "tile_grid_of",
    "tile_pixel_scale",
]

GRID_KEYS = ("CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2",
             "CD1_1", "CD1_2", "CD2_1", "CD2_2", "RADESYS", "EQUINOX")
_EDGE_SAMPLES = 9  # points per detector edge: the TPV distortion bends the edges a little


def _wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header, relax=True).celestial


def _outline(nx: int, ny: int, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` points along each edge of an ``nx`` x ``ny`` image, going round it (1-based)."""
    along_x = np.linspace(0.5, nx + 0.5, samples)
    along_y = np.linspace(0.5, ny + 0.5, samples)
    low, high_x, high_y = (np.full(samples, v) for v in (0.5, nx + 0.5, ny + 0.5))
    return np.concatenate([along_x, high_x, along_x[::-1], low]), np.concatenate([low, along_y, high_y,
                                                                                 along_y[::-1]])


def _detector_outlines(path: str | os.PathLike, samples: int = _EDGE_SAMPLES):
    """Per image extension of a pawprint: the sky positions round its edges, and its WCS."""
    with fits.open(path) as hdul:
        for hdu in image_hdus(hdul):
            wcs = _wcs(hdu.header)
            ra, dec = wcs.all_pix2world(*_outline(hdu.header["NAXIS1"], hdu.header["NAXIS2"], samples), 1)
            yield ra, dec, wcs


def detector_edges(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Sky positions along the edges of every detector of a pawprint, and their pixel scales.

    Returns
    -------
    ra, dec : array
        [deg], ``_EDGE_SAMPLES`` points along each edge of each image extension.
    scales : list of float
        Each detector's pixel scale at its centre [arcsec].
    """
    ras, decs, scales = [], [], []
    for ra, dec, wcs in _detector_outlines(path):
        ras.append(ra)
        decs.append(dec)
        scales.append(float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600.0))
    if not ras:
        raise FitsInputError(f"{Path(path).name}: no image extension with a WCS to place on the tile")
    return np.concatenate(ras), np.concatenate(decs), scales


def detectors_on_grid(path: str | os.PathLike, grid: Mapping[str, object], inset: float = 2.0) -> list[bool]:
    """Per image extension of a pawprint: whether the detector covers part of ``grid``.

    A predefined grid (a survey's ``TILE_HEADER``) may hold only part of a pawprint; SWarp then
    writes a blank one-pixel-wide strip (or nothing) for each detector outside it. A detector
    counts as on the grid when its outline (33 points per edge, so the TPV distortion is
    followed) and the grid's rectangle, shrunk by ``inset`` pixels, overlap: a point of either
    lies inside the other. Shapes thinner than the sampling that cross without either holding a
    point of the other are missed; at 33 points per 2048-pixel edge that needs a grid under 64
    native pixels wide.
    """
    from matplotlib.path import Path as Polygon

    grid_wcs = _wcs(fits.Header(dict(grid)))
    nx, ny = int(grid["NAXIS1"]), int(grid["NAXIS2"])
    low, high = 0.5 + inset, np.array([nx, ny]) + 0.5 - inset
    rectangle = np.column_stack(_outline(nx, ny, 33))
    rectangle = np.clip(rectangle, low, high)
    on_grid = []
    for ra, dec, _ in _detector_outlines(path, samples=33):
        x, y = grid_wcs.all_world2pix(ra, dec, 1)
        outline = np.column_stack([x, y])
        inside = np.all((outline >= low) & (outline <= high), axis=1)
        on_grid.append(bool(inside.any() or Polygon(outline).contains_points(rectangle).any()))
    return on_grid


def tile_pixel_scale(native_scales: Iterable[float]) -> float:
    """The default tile pixel [arcsec]: 1/3 arcsec per 0.339-arcsec native pixel.

    The simulator's small presets have coarser pixels (``tiny``: 8 x 0.339"); their tiles get
    the same ratio, so a ``tiny`` tile is no larger in pixels than its pawprints.
    """
    native = float(np.median(list(native_scales)))
    binning = max(1, round(native / NATIVE_PIXEL_ARCSEC))
    return TILE_PIXEL_ARCSEC * binning


def tile_grid_of(paths: Iterable[str | os.PathLike], pixel_scale: float = 0.0, margin: float = 10.0,
                 rotate: bool = True) -> TileGrid:
    """The tile grid holding every detector of the pawprints ``paths`` (``pixel_scale`` 0: default)."""
    ras, decs, scales = [], [], []
    for path in paths:
        ra, dec, s = detector_edges(path)
        ras.append(ra)
        decs.append(dec)
        scales += s
    scale = pixel_scale if pixel_scale > 0 else tile_pixel_scale(scales)
    return tile_grid(np.concatenate(ras), np.concatenate(decs), scale, margin=margin, rotate=rotate)


def read_grid(path: str | os.PathLike) -> TileGrid:
    """A user-given tile grid: the first HDU of ``path`` with a celestial WCS and a size.

    The size is ``NAXIS1/2`` of an image HDU, or ``ESO DRS TILE NAXIS1/2`` of a data-less one
    (a header file written from a TileGrid). ``CDELTi``/``PCi_j`` and ``CROTA2`` are turned into
    the ``CD`` matrix.
    """
    path = Path(path)
    with fits.open(path) as hdul:
        for hdu in hdul:
            header = hdu.header
            nx = header.get("NAXIS1") if header.get("NAXIS", 0) == 2 else header.get("ESO DRS TILE NAXIS1")
            ny = header.get("NAXIS2") if header.get("NAXIS", 0) == 2 else header.get("ESO DRS TILE NAXIS2")
            if nx is None or ny is None or "CTYPE1" not in header:
                continue
            wcs = _wcs(header)
            if not wcs.has_celestial or not wcs.wcs.ctype[0].startswith("RA"):
                continue
            cd = wcs.pixel_scale_matrix
            return TileGrid(
                NAXIS1=int(nx), NAXIS2=int(ny), CTYPE1=wcs.wcs.ctype[0], CTYPE2=wcs.wcs.ctype[1],
                CUNIT1="deg", CUNIT2="deg", CRVAL1=float(wcs.wcs.crval[0]), CRVAL2=float(wcs.wcs.crval[1]),
                CRPIX1=float(wcs.wcs.crpix[0]), CRPIX2=float(wcs.wcs.crpix[1]),
                CD1_1=float(cd[0, 0]), CD1_2=float(cd[0, 1]), CD2_1=float(cd[1, 0]), CD2_2=float(cd[1, 1]),
                RADESYS=(wcs.wcs.radesys or "ICRS").strip(),
                EQUINOX=float(np.nan_to_num(wcs.wcs.equinox, nan=2000.0)),
            )
    raise FitsInputError(
        f"{path.name}: no HDU with a celestial WCS and a size (NAXIS1/2, or ESO DRS TILE NAXIS1/2) "
        "to use as the tile grid"
    )


def piece_cards(grid: Mapping[str, object], xmin: int, ymin: int) -> fits.Header:
    """The WCS and placement cards of a piece whose first pixel is tile pixel (xmin, ymin)."""
    header = fits.Header()
    for key in GRID_KEYS:
        value = grid[key]
        if key == "CRPIX1":
            value = float(grid["CRPIX1"]) - (xmin - 1)
        elif key == "CRPIX2":
            value = float(grid["CRPIX2"]) - (ymin - 1)
        header[key] = value
    header["HIERARCH ESO DRS TILE NAXIS1"] = (int(grid["NAXIS1"]), "[pixel] width of the tile grid")
    header["HIERARCH ESO DRS TILE NAXIS2"] = (int(grid["NAXIS2"]), "[pixel] height of the tile grid")
    header["HIERARCH ESO DRS TILE XMIN"] = (int(xmin), "tile column of this image's first pixel")
    header["HIERARCH ESO DRS TILE YMIN"] = (int(ymin), "tile row of this image's first pixel")
    return header


def grid_of_piece(header: fits.Header) -> tuple[TileGrid, int, int]:
    """The tile grid a piece lies on, and the piece's (xmin, ymin) in it."""
    try:
        xmin, ymin = int(header["ESO DRS TILE XMIN"]), int(header["ESO DRS TILE YMIN"])
        grid = TileGrid({key: header[key] for key in GRID_KEYS})
        grid["NAXIS1"] = int(header["ESO DRS TILE NAXIS1"])
        grid["NAXIS2"] = int(header["ESO DRS TILE NAXIS2"])
    except KeyError as err:
        raise FitsInputError(f"not a resampled image: header has no {err.args[0]}") from None
    grid["CRPIX1"] = float(header["CRPIX1"]) + xmin - 1
    grid["CRPIX2"] = float(header["CRPIX2"]) + ymin - 1
    return grid, xmin, ymin


def sub_grid(grid: Mapping[str, object], xmin: int, ymin: int, xmax: int, ymax: int) -> TileGrid:
    """The part ``[xmin, xmax] x [ymin, ymax]`` (1-based, inclusive) of ``grid``, same projection."""
    part = TileGrid(grid)
    part["NAXIS1"], part["NAXIS2"] = xmax - xmin + 1, ymax - ymin + 1
    part["CRPIX1"] = float(grid["CRPIX1"]) - (xmin - 1)
    part["CRPIX2"] = float(grid["CRPIX2"]) - (ymin - 1)
    return part


def resampled_detector(piece: str | os.PathLike, source: fits.Header,
                       grid: Mapping[str, object]) -> tuple[np.ndarray, fits.Header]:
    """A SWarp piece as a product extension: its pixels, and the source detector's header with
    the tile grid's WCS and placement (and SWarp's GAIN/SATURATE for the resampled pixels)."""
    from .wcs import replace_wcs

    with fits.open(piece) as hdul:
        data = np.asarray(hdul[0].data, dtype=np.float32)
        swarp = hdul[0].header
    cards = piece_cards(grid, int(swarp["COMIN1"]), int(swarp["COMIN2"]))
    header = replace_wcs(source, fits.Header([c for c in cards.cards if not c.keyword.startswith("ESO")]))
    for card in cards.cards:
        if card.keyword.startswith("ESO"):
            header[f"HIERARCH {card.keyword}"] = (card.value, card.comment)
    for key in ("GAIN", "SATURATE"):
        if key in swarp and key in header:
            header[key] = (float(swarp[key]), header.comments[key])
    header["HIERARCH ESO DRS FLASCALE"] = (float(swarp.get("FLASCALE", 1.0)),
                                           "flux scale of the resampling (pixel-area ratio)")
    return data, header

