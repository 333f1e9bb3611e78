"""The files a chain starts from: raw frames and user-given calibrations, classified.

Raw frames come from a directory (searched recursively; every FITS file a rule classifies is
taken, the others are counted and named in the log) or from an SOF. Calibrations the user
gives (``--calib``: SOFs, directories of products, or single products) are classified by their
``ESO PRO CATG`` or take the SOF's tag; they win over anything the chain would make.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from ..association import original_tag, parent_name
from ..errors import ChainError, VircamError
from ..fitsio import read_primary_header
from ..frames import Frame, read_sof
from ..keywords import frame_info
from ..tags import RAW_TAGS
from .grouping import PlanFrame

__all__ = ["find_fits", "load_calibrations", "load_raw"]

log = logging.getLogger(__name__)
_FITS = (".fits", ".fit", ".fts", ".fits.fz", ".fits.gz")


def find_fits(folder: Path) -> list[Path]:
    """FITS files under ``folder``, sorted, skipping hidden names (temporary files)."""
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.name.lower().endswith(_FITS) and not p.name.startswith(".")
    )


def _from_sof(sof: Path) -> list[PlanFrame]:
    return [_plan_frame(frame) for frame in read_sof(sof)]


def _plan_frame(frame: Frame, header=None) -> PlanFrame:
    if header is None:  # read once: classification and provenance
        header = read_primary_header(frame.path)
    info = frame_info(frame.path, header)
    plan = PlanFrame.from_file(info, frame.tag)
    if info.tag is not None and info.tag not in RAW_TAGS:  # a product descends from its first raw
        plan = dataclasses.replace(plan, root_tag=original_tag(frame, header),
                                   parent=parent_name(frame, header))
    return plan


def _classified(paths: Iterable[Path], what: str, products: bool) -> list[PlanFrame]:
    frames, unknown = [], []
    for path in paths:
        try:
            header = read_primary_header(path)
            info = frame_info(path, header)
        except VircamError as err:
            log.warning("skipped %s: %s", path, err)
            continue
        if info.tag is None or (products and info.tag in RAW_TAGS):
            unknown.append(path.name)
            continue
        frames.append(_plan_frame(Frame(path, info.tag, "CALIB" if products else ""), header))
    if unknown:
        log.info("%s: %d file(s) no rule classifies, left out: %s", what, len(unknown),
                 ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else ""))
    return frames


def load_raw(source: str | os.PathLike) -> list[PlanFrame]:
    """The raw frames in a directory (recursively) or an SOF, classified."""
    source = Path(source)
    if source.is_dir():
        frames = [f for f in _classified(find_fits(source), str(source), False) if f.path]
    elif source.is_file():
        frames = _from_sof(source)
    else:
        raise ChainError(f"raw input {source}: no such directory or SOF file")
    if not frames:
        raise ChainError(f"raw input {source}: no frame that a rule classifies")
    return frames


def load_calibrations(sources: Iterable[str | os.PathLike | Frame]) -> list[PlanFrame]:
    """User-given calibrations: SOFs, product directories, product files or tagged frames."""
    frames: list[PlanFrame] = []
    for source in sources:
        if isinstance(source, Frame):
            frames.append(_plan_frame(source))
            continue
        source = Path(source)
        if source.is_dir():
            frames += _classified(find_fits(source), str(source), True)
        elif source.is_file() and source.name.lower().endswith(_FITS):
            frames += _classified([source], str(source), True)
        elif source.is_file():
            frames += _from_sof(source)
        else:
            raise ChainError(f"calibration {source}: no such file or directory")
    return frames
