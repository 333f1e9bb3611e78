"""FITS-LDAC catalogues: the format SExtractor writes and SCAMP reads.

An LDAC file is an empty primary HDU followed, per catalogue (one per image or detector), by
two binary tables:

- ``LDAC_IMHEAD``: one row, one column ``Field Header Card`` holding the image's FITS header
  as 80-character cards, ``END`` included (``TFORM1 = '<80 n>A'``, ``TDIM1 = '(80, n)'`` for
  ``n`` cards), exactly as SExtractor writes it;
- ``LDAC_OBJECTS``: the sources, one row each.

:func:`write_ldac` writes that layout atomically; :func:`read_ldac` reads it back, SExtractor's
catalogues included.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import FitsInputError

__all__ = ["HEADER_COLUMN", "IMHEAD", "OBJECTS", "header_hdu", "read_ldac", "write_ldac"]

IMHEAD = "LDAC_IMHEAD"
OBJECTS = "LDAC_OBJECTS"
HEADER_COLUMN = "Field Header Card"
CARD = 80  # characters per header card


def header_hdu(header: fits.Header) -> fits.BinTableHDU:
    """The ``LDAC_IMHEAD`` table of ``header``.

    Parameters
    ----------
    header : Header
        The image header; its cards are stored as they serialise (``END`` appended).

    Returns
    -------
    BinTableHDU
        One row, column ``Field Header Card`` of ``TFORM '<80 n>A'`` and ``TDIM '(80, n)'``.
    """
    text = header.tostring(sep="", endcard=True, padding=False)
    cards = np.array([text[i:i + CARD] for i in range(0, len(text), CARD)], dtype=f"S{CARD}")
    column = fits.Column(name=HEADER_COLUMN, format=f"{CARD * cards.size}A", dim=f"({CARD}, {cards.size})",
                         array=cards[np.newaxis, :])
    hdu = fits.BinTableHDU.from_columns([column], name=IMHEAD)
    return hdu


def _objects_hdu(table: Table) -> fits.BinTableHDU:
    hdu = fits.table_to_hdu(Table(table, copy=False))
    hdu.name = OBJECTS
    for i, name in enumerate(table.colnames, start=1):
        description = getattr(table[name], "description", None)
        if description:  # SExtractor puts each column's description in its TTYPE comment
            hdu.header.comments[f"TTYPE{i}"] = str(description)[:CARD - 20]
    return hdu


def write_ldac(path: str | os.PathLike, tables: Sequence[tuple[fits.Header, Table]]) -> Path:
    """Write catalogues as one FITS-LDAC file, atomically.

    Parameters
    ----------
    path : path
        Output file; replaced when it exists (the new file appears complete or not at all:
        it is written under a temporary name in the same folder and renamed).
    tables : sequence of (Header, Table)
        Per catalogue: the image header (stored in ``LDAC_IMHEAD``) and the sources (written
        as ``LDAC_OBJECTS``; column units become ``TUNIT``, descriptions ``TTYPE`` comments).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    hdus: list[fits.hdu.base.ExtensionHDU] = []
    for header, table in tables:
        hdus += [header_hdu(header), _objects_hdu(table)]
    hdul = fits.HDUList([fits.PrimaryHDU(), *hdus])
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        hdul.writeto(tmp, overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _text(value) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _cards(hdu: fits.BinTableHDU, path: Path) -> fits.Header:
    """The image header stored in an ``LDAC_IMHEAD`` table."""
    if hdu.data is None or len(hdu.data) != 1 or not hdu.columns.names:
        raise FitsInputError(f"{path}: {IMHEAD} table is not one row of header cards")
    cell = hdu.data.field(0)[0]
    if np.ndim(cell) == 0:  # no TDIM: one long string of cards
        return fits.Header.fromstring(_text(cell))
    # TDIM (80, n): n cards, each stripped of its trailing blanks by astropy
    return fits.Header.fromstring("".join(_text(card).ljust(CARD) for card in np.ravel(cell)))


def read_ldac(path: str | os.PathLike) -> list[tuple[fits.Header, Table]]:
    """Read a FITS-LDAC file (SExtractor's, SCAMP's or :func:`write_ldac`'s).

    Parameters
    ----------
    path : path
        The LDAC file.

    Returns
    -------
    list of (Header, Table)
        Per catalogue, in file order: the image header rebuilt from ``LDAC_IMHEAD`` and the
        ``LDAC_OBJECTS`` table (units from ``TUNIT``, column descriptions from the ``TTYPE``
        comments, as SExtractor writes them).

    Raises
    ------
    FitsInputError
        When the file cannot be read as FITS, holds no ``LDAC_OBJECTS`` table, or a header
        table is not followed by an objects table.
    """
    path = Path(path)
    try:
        hdul = fits.open(path, memmap=False)
    except (OSError, ValueError) as err:
        raise FitsInputError(f"{path}: cannot read it as FITS ({err})") from None
    out: list[tuple[fits.Header, Table]] = []
    with hdul:
        header: fits.Header | None = None
        for index, hdu in enumerate(hdul[1:], start=1):
            name = hdu.name.upper()
            if name == IMHEAD:
                if header is not None:
                    raise FitsInputError(f"{path}: {IMHEAD} in HDU {index - 1} has no {OBJECTS} table")
                header = _cards(hdu, path)
            elif name in (OBJECTS, "OBJECTS"):
                table = Table.read(hdu, format="fits", character_as_bytes=False)
                table.meta.pop("EXTNAME", None)
                for i, column in enumerate(table.columns.values(), start=1):
                    comment = hdu.header.comments[f"TTYPE{i}"] if f"TTYPE{i}" in hdu.header else ""
                    if comment and not column.description:
                        column.description = comment
                out.append((header if header is not None else fits.Header(), table))
                header = None
        if header is not None:
            raise FitsInputError(f"{path}: the last {IMHEAD} has no {OBJECTS} table")
    if not out:
        raise FitsInputError(f"{path}: not a FITS-LDAC catalogue (no {OBJECTS} table)")
    return out
