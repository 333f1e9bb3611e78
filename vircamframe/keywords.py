"""The observation keys a recipe or the classifier reads from a primary header."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from .errors import RecipeInputError
from .fitsio import get_key, read_primary_header
from .tags import classify_header

__all__ = ["FrameInfo", "chip_number", "frame_info", "require_same_setup"]


@dataclass(frozen=True)
class FrameInfo:
    """What the pipeline needs to know about a frame before reading its pixels."""

    path: Path
    tag: str | None
    dit: float | None
    ndit: int | None
    readmode: str | None
    filter: str | None
    mjd: float | None
    obs_name: str | None = None
    offset: int | None = None  # OFFSET_I: the pawprint position within a tile (1..6)


def frame_info(path: str | os.PathLike, header: fits.Header | None = None) -> FrameInfo:
    """Classify ``path`` and read its DIT, NDIT, read mode, filter and MJD-OBS (None if absent)."""
    path = Path(path)
    header = read_primary_header(path) if header is None else header

    def optional(key: str, kind: type):
        return get_key(header, key, path, kind) if key in header else None

    return FrameInfo(
        path=path,
        tag=classify_header(header),
        dit=optional("ESO DET DIT", float),
        ndit=optional("ESO DET NDIT", int),
        readmode=optional("ESO DET NCORRS NAME", str),
        filter=optional("ESO INS FILT1 NAME", str),
        mjd=optional("MJD-OBS", float),
        obs_name=optional("ESO OBS NAME", str),
        offset=optional("OFFSET_I", int),
    )


def require_same_setup(infos: Sequence[FrameInfo], keys: Sequence[str], recipe: str) -> None:
    """Raise a one-line error naming the files and values when ``keys`` differ among ``infos``.

    ``keys`` are :class:`FrameInfo` attribute names (``dit``, ``ndit``, ``readmode``,
    ``filter``); a key missing from a header is an error too.
    """
    first = infos[0]
    for key in keys:
        for info in infos:
            value = getattr(info, key)
            if value is None:
                raise RecipeInputError(f"{recipe}: {info.path.name} has no {key.upper()} keyword")
            if value != getattr(first, key):
                raise RecipeInputError(
                    f"{recipe}: mixed {key.upper()}: {first.path.name} has {getattr(first, key)}, "
                    f"{info.path.name} has {value}"
                )


def chip_number(header: fits.Header, position: int) -> int:
    """The detector number of an extension: ``ESO DET CHIP NO``, else its 1-based position."""
    value = header.get("ESO DET CHIP NO")
    return int(value) if value is not None else position
