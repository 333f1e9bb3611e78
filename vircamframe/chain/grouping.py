"""Frames in a plan, and the keys that group them into jobs.

A plan is made before any product exists, so a product a job will make is a
:class:`PlanFrame` too: it carries the :class:`~vircamframe.keywords.FrameInfo` of the raw
frame it inherits its header from (the first raw input of its job, as
:func:`~vircamframe.dfs.build_primary_header` does), with its own tag. Grouping and
association therefore see the same DIT, filter and time the product will carry.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ChainError
from ..keywords import FrameInfo

__all__ = ["GROUP_KEYS", "PlanFrame", "group_key", "group_label", "night_of"]

# Local noon at Paranal (70.4 deg W) is at 16:42 UT: one observing night runs from one local
# noon to the next, so a night's twilight flats and its science frames share a night number.
_NOON_UT = (12.0 + 70.4 / 15.0) / 24.0


def night_of(mjd: float | None) -> int | None:
    """The observing night of ``mjd``: the integer MJD of the local noon that starts it."""
    return None if mjd is None else math.floor(mjd - _NOON_UT)


@dataclass(frozen=True)
class PlanFrame:
    """A frame in a plan: a file that exists, or a product a job will make.

    Parameters
    ----------
    id : str
        Unique in the plan: the file's path, or ``<job id>:<TAG>[:<parent id>]``.
    tag : str
        Its tag.
    info : FrameInfo
        Observation keys: of the file, or of the raw frame a future product inherits from.
    path : Path or None
        The file, when it exists (raw frames, user calibrations).
    job : str or None
        The id of the job that makes it.
    parent : str or None
        For a per-frame product: the id of the input frame it is made from (for a product
        file the user gave: the file name of that frame, from its provenance).
    root_tag : str
        The raw tag it descends from (``OBJECT``, ``SKY``...).
    root_name : str
        The base name of the raw file it descends from (for readable job ids).
    """

    id: str
    tag: str
    info: FrameInfo
    path: Path | None = None
    job: str | None = None
    parent: str | None = None
    root_tag: str = ""
    root_name: str = ""

    @classmethod
    def from_file(cls, info: FrameInfo, tag: str) -> PlanFrame:
        name = info.path.name
        return cls(str(info.path), tag, info, info.path, root_tag=tag, root_name=_base(name))

    def product(self, tag: str, job: str, per_frame: bool) -> PlanFrame:
        """The frame a job makes from this one (its ancestor): ``tag``, made by ``job``."""
        suffix = f":{self.id}" if per_frame else ""
        return PlanFrame(
            f"{job}:{tag}{suffix}", tag, dataclasses.replace(self.info, tag=tag), None, job,
            self.id if per_frame else None, self.root_tag, self.root_name,
        )

    @property
    def label(self) -> str:
        """How the plan names it: the file name, or ``<job id>:<TAG>``."""
        if self.path is not None:
            return self.path.name
        return f"{self.job}:{self.tag}" + (f"[{self.root_name}]" if self.parent else "")


def _base(name: str) -> str:
    return re.sub(r"\.fits(\.fz|\.gz)?$", "", name)


def _night(frame: PlanFrame):
    return night_of(frame.info.mjd)


GROUP_KEYS = {
    "tag": lambda frame: frame.tag if frame.path is not None else frame.root_tag,
    "dit": lambda frame: frame.info.dit,
    "ndit": lambda frame: frame.info.ndit,
    "readmode": lambda frame: frame.info.readmode,
    "filter": lambda frame: frame.info.filter,
    "ob": lambda frame: frame.info.obs_name,
    "offset": lambda frame: frame.info.offset,
    "night": _night,
    "frame": lambda frame: frame.root_name if frame.path is None else _base(frame.path.name),
}


def group_key(frame: PlanFrame, keys: tuple[str, ...], recipe: str) -> tuple:
    """The values of ``keys`` for ``frame``; an unknown key is an error naming the recipe."""
    try:
        return tuple(GROUP_KEYS[key](frame) for key in keys)
    except KeyError as err:
        raise ChainError(
            f"{recipe}: unknown group_by key {err.args[0]!r}; known: {', '.join(GROUP_KEYS)}"
        ) from None


def _format(key: str, value) -> str:
    if value is None:
        return f"no{key}"
    if key == "night":
        from astropy.time import Time

        return Time(value, format="mjd").strftime("%Y-%m-%d")
    if key == "dit":
        return f"dit{value:g}"
    if key == "ndit":
        return f"ndit{value}"
    if key == "offset":
        return f"offset{value}"
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)).strip("-") or "x"


def group_label(keys: tuple[str, ...], values: tuple) -> str:
    """A readable job label from group values: ``DARK_dit10_ndit1_Double_2019-06-30``."""
    return "_".join(_format(key, value) for key, value in zip(keys, values, strict=True)) or "all"
