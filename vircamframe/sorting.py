"""Sorting raw files into calibration and science folders, losing and overwriting nothing.

Planning (:func:`plan_sort`) is separate from doing (:func:`execute_sort`), so a dry run
prints exactly what a real run would do. Calibration frames go to ``OUT/calibration/``;
science frames (OBJECT, SKY, STD_FLUX) to ``OUT/science/<OB name>_<filter>/``. A file whose
destination already holds identical bytes is skipped (so sorting twice is a no-op); a
destination holding different bytes is a conflict and is never overwritten; a file no rule
classifies is reported and left where it is. Copies are atomic (temporary file, then rename).

A file can be copied, moved, or hard-linked (``link``): a link costs no disk space and keeps the
original in place, which is what a full-size night wants (the raw frames of one night are
~20 GB); across file systems a link falls back to a copy. The pipeline never writes to a raw
file, so sharing its bytes between the two folders is safe.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import VircamError
from .keywords import frame_info
from .tags import RAW_TAGS

__all__ = ["SCIENCE_TAGS", "SORT_MODES", "SortAction", "execute_sort", "plan_sort"]

SORT_MODES = ("copy", "move", "link")
SCIENCE_TAGS = frozenset({"OBJECT", "SKY", "STD_FLUX"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class SortAction:
    """What happens to one file: ``copy``/``move``/``link``, ``skip``, ``conflict`` or ``unknown``."""

    kind: str
    source: Path
    destination: Path | None
    reason: str = ""

    def describe(self) -> str:
        """One line for the report."""
        if self.kind in SORT_MODES:
            return f"{self.kind} {self.source} -> {self.destination}"
        if self.kind == "skip":
            return f"skip {self.source}: already sorted as {self.destination}"
        if self.kind == "conflict":
            return f"conflict {self.source}: {self.destination} exists with other content (left alone)"
        return f"unknown {self.source}: {self.reason} (left in place)"


def _folder_for(tag: str, obs_name: str | None, filt: str | None) -> Path:
    if tag in SCIENCE_TAGS:
        label = f"{obs_name or 'unknown_ob'}_{filt or 'nofilter'}"
        return Path("science") / _UNSAFE.sub("_", label)
    return Path("calibration")


def plan_sort(
    files: Iterable[str | os.PathLike], out: str | os.PathLike, mode: str = "copy"
) -> list[SortAction]:
    """Decide, for each file, where it goes; reads headers only.

    ``mode`` is what happens to a file that is not in place yet: one of :data:`SORT_MODES`.
    """
    if mode not in SORT_MODES:
        raise ValueError(f"sort mode must be one of {', '.join(SORT_MODES)}, not {mode!r}")
    out = Path(out)
    actions: list[SortAction] = []
    claimed: dict[Path, Path] = {}
    for name in files:
        source = Path(name)
        try:
            info = frame_info(source)
        except VircamError as err:
            actions.append(SortAction("unknown", source, None, str(err)))
            continue
        if info.tag is None:
            actions.append(SortAction("unknown", source, None, "no classification rule applies"))
            continue
        if info.tag not in RAW_TAGS:
            actions.append(SortAction("unknown", source, None, f"a {info.tag} product, not a raw frame"))
            continue
        destination = out / _folder_for(info.tag, info.obs_name, info.filter) / source.name
        if source.absolute() == destination.absolute() or (
            # a hard link (sort --link) is the same file: no need to read both to know it
            destination.exists() and (os.path.samefile(source, destination)
                                      or filecmp.cmp(source, destination, shallow=False))
        ):
            actions.append(SortAction("skip", source, destination))
        elif destination.exists() or destination in claimed:
            actions.append(SortAction("conflict", source, destination))
        else:
            claimed[destination] = source
            actions.append(SortAction(mode, source, destination))
    return actions


def _hard_link(source: Path, destination: Path) -> bool:
    """Hard-link ``source`` as ``destination``; False across file systems (then it is copied).

    Raises FileExistsError when the destination exists: a link never replaces a file.
    """
    try:
        os.link(source, destination)
    except FileExistsError:
        raise
    except OSError:
        return False
    return True


def execute_sort(actions: Iterable[SortAction]) -> None:
    """Carry out the copy/move/link actions of a plan (atomic per file, never overwriting)."""
    for action in actions:
        if action.kind not in SORT_MODES:
            continue
        destination = action.destination
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            linked = action.kind in ("move", "link") and _hard_link(action.source, destination)
        except FileExistsError:
            continue  # appeared meanwhile: left alone, and so is the source
        if linked:
            if action.kind == "move":
                os.unlink(action.source)
            continue
        tmp = destination.parent / f".{destination.name}.{os.getpid()}.tmp"
        shutil.copy2(action.source, tmp)
        if destination.exists():  # appeared meanwhile: never overwrite
            tmp.unlink()
            continue
        os.replace(tmp, destination)
        if action.kind == "move":
            os.unlink(action.source)
