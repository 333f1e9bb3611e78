"""Frames and set-of-frames (SOF) files.

The SOF is ESO's plain-text list of a recipe's inputs: one frame per line,
``<path> <TAG> [RAW|CALIB]``, whitespace separated. ``#`` starts a comment, blank lines are
ignored, ``$VAR`` and ``${VAR}`` are expanded from the environment and relative paths are
resolved against the folder of the SOF itself, so an SOF can travel with its data.

A *products* SOF, written after a run, lists ``<path> <PRO.CATG>`` and is the next recipe's
input; when its name ends in ``.json`` it is a JSON list of ``{"name", "category"}`` objects
instead (the format EsoRex writes with ``--products-sof``), which :func:`read_sof` reads too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SOFError

__all__ = ["GROUPS", "Frame", "FrameSet", "expand_vars", "read_sof", "write_products_sof"]

GROUPS = ("RAW", "CALIB")
_ENV_VAR = re.compile(r"\$(\w+|\{[^}]*\})")
_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_UNWRITABLE = re.compile(r"[\s#$]")


@dataclass(frozen=True)
class Frame:
    """One input or output file with its classification.

    Parameters
    ----------
    path : Path
        Location of the file (made absolute).
    tag : str
        The ESO classification tag (``DARK``, ``MASTER_DARK``, ...).
    group : {"RAW", "CALIB"}, optional
        Derived from the tag table when not given: raw tags are ``RAW``, everything else
        (products, reference catalogues) is ``CALIB``.
    level : str, optional
        For a calibration the chain engine chose: its association level (``0``, ``1``, ...,
        ``user``, ``frame``), recorded in the products. Not part of the frame's identity.
    """

    path: Path
    tag: str
    group: str = field(default="")
    level: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).absolute())
        object.__setattr__(self, "tag", self.tag.strip().upper())
        group = (self.group or _default_group(self.tag)).upper()
        if group not in GROUPS:
            raise SOFError(f"frame {self.path}: group must be RAW or CALIB, not {self.group!r}")
        object.__setattr__(self, "group", group)

    @property
    def name(self) -> str:
        """The file name without its folder."""
        return self.path.name


def _default_group(tag: str) -> str:
    from .tags import RAW_TAGS  # local: tags imports FITS readers, frames must stay light

    return "RAW" if tag.upper() in RAW_TAGS else "CALIB"


class FrameSet:
    """An ordered collection of :class:`Frame` objects, as a recipe receives and returns them."""

    def __init__(self, frames: Iterable[Frame] = ()) -> None:
        self._frames: list[Frame] = list(frames)

    # --- collection protocol -------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        return iter(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, index: int) -> Frame:
        return self._frames[index]

    def __add__(self, other: FrameSet) -> FrameSet:
        return FrameSet([*self._frames, *other])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FrameSet) and self._frames == other._frames

    def __repr__(self) -> str:
        counts = ", ".join(f"{tag}: {len(fs)}" for tag, fs in self.by_tag().items())
        return f"FrameSet({counts})"

    def append(self, frame: Frame) -> None:
        """Add one frame at the end."""
        self._frames.append(frame)

    # --- selection ----------------------------------------------------------------------
    def by_tag(self, tag: str | None = None) -> dict[str, FrameSet] | FrameSet:
        """Frames grouped by tag (a dict in first-seen order), or the frames of one tag."""
        if tag is not None:
            return FrameSet(f for f in self._frames if f.tag == tag.upper())
        groups: dict[str, FrameSet] = {}
        for frame in self._frames:
            groups.setdefault(frame.tag, FrameSet()).append(frame)
        return groups

    def select(self, *tags: str) -> FrameSet:
        """The frames with any of ``tags``, in order."""
        wanted = {t.upper() for t in tags}
        return FrameSet(f for f in self._frames if f.tag in wanted)

    def tags(self) -> list[str]:
        """The distinct tags, in first-seen order."""
        return list(dict.fromkeys(f.tag for f in self._frames))

    def raw(self) -> FrameSet:
        """The frames of group RAW."""
        return FrameSet(f for f in self._frames if f.group == "RAW")

    def calib(self) -> FrameSet:
        """The frames of group CALIB."""
        return FrameSet(f for f in self._frames if f.group == "CALIB")

    @property
    def paths(self) -> list[Path]:
        """The paths of all frames, in order."""
        return [f.path for f in self._frames]

    # --- files ----------------------------------------------------------------------------
    def to_sof(self, path: str | os.PathLike, relative: bool = False) -> Path:
        """Write the frames as an ESO SOF (``<path> <TAG> <GROUP>`` per line).

        Parameters
        ----------
        path : path-like
            Destination; ``.json`` writes the JSON products format instead.
        relative : bool
            Write paths relative to the SOF's folder where possible.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            records = [{"name": str(f.path), "category": f.tag, "group": f.group} for f in self._frames]
            text = json.dumps(records, indent=2) + "\n"
        else:
            lines = []
            for frame in self._frames:
                shown: Path | str = frame.path
                if relative:
                    shown = os.path.relpath(frame.path, path.parent.absolute())
                if _UNWRITABLE.search(str(shown)):
                    raise SOFError(
                        f"{frame.path}: a text SOF cannot hold a path with whitespace, '#' or '$' "
                        "(write a .json SOF instead)"
                    )
                lines.append(f"{shown} {frame.tag} {frame.group}")
            text = "\n".join(lines) + ("\n" if lines else "")
        path.write_text(text)
        return path


def write_products_sof(frames: FrameSet, path: str | os.PathLike) -> Path:
    """Write a products SOF: ``<path> <PRO.CATG>`` lines, or JSON for ``*.json``."""
    path = Path(path)
    if path.suffix == ".json":
        return frames.to_sof(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{f.path} {f.tag}\n" for f in frames))
    return path


def expand_vars(text: str, where: str) -> str:
    """Expand ``$VAR`` and ``${VAR}``; an unset variable is an error naming ``where``."""

    def substitute(match: re.Match) -> str:
        name = match.group(1).strip("{}")
        if name not in os.environ:
            raise SOFError(f"{where}: environment variable ${name} is not set")
        return os.environ[name]

    return _ENV_VAR.sub(substitute, text)


def read_sof(path: str | os.PathLike, check_exists: bool = True) -> FrameSet:
    """Read an SOF (ESO text format, or the JSON products format).

    Parameters
    ----------
    path : path-like
        The SOF file.
    check_exists : bool
        Raise if a listed file does not exist (the default, as EsoRex does).

    Raises
    ------
    SOFError
        For an unreadable SOF, a malformed line, an unset variable or a missing file; the
        message names the SOF, the line number and the offending path.
    """
    sof = Path(path)
    try:
        text = sof.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise SOFError(f"cannot read SOF {sof}: {getattr(err, 'strerror', None) or err}") from None
    base = sof.absolute().parent
    if sof.suffix == ".json":
        return _read_json_sof(sof, text, base, check_exists)
    frames = FrameSet()
    for lineno, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{sof}:{lineno}"
        fields = line.split()
        if len(fields) not in (2, 3):
            raise SOFError(f"{where}: expected '<path> <TAG> [RAW|CALIB]', got {raw_line.strip()!r}")
        group = fields[2].upper() if len(fields) == 3 else ""
        if group and group not in GROUPS:
            raise SOFError(f"{where}: group must be RAW or CALIB, got {fields[2]!r}")
        if not _TAG.fullmatch(fields[1]):
            raise SOFError(f"{where}: {fields[1]!r} is not a valid tag")
        frames.append(_make_frame(expand_vars(fields[0], where), fields[1], group, base, where, check_exists))
    return frames


def _read_json_sof(sof: Path, text: str, base: Path, check_exists: bool) -> FrameSet:
    try:
        records = json.loads(text)
    except json.JSONDecodeError as err:
        raise SOFError(f"{sof}:{err.lineno}: not valid JSON ({err.msg})") from None
    except RecursionError:
        raise SOFError(f"{sof}: JSON nested too deeply to be an SOF") from None
    if not isinstance(records, list):
        raise SOFError(f"{sof}: a JSON SOF is a list of {{'name', 'category'}} objects")
    frames = FrameSet()
    for index, record in enumerate(records):
        where = f"{sof}[{index}]"
        if not isinstance(record, dict) or not {"name", "category"} <= record.keys():
            raise SOFError(f"{where}: each entry needs 'name' and 'category'")
        if not isinstance(record["category"], str) or not _TAG.fullmatch(record["category"]):
            raise SOFError(f"{where}: {record['category']!r} is not a valid tag")
        frames.append(
            _make_frame(expand_vars(str(record["name"]), where), str(record["category"]),
                        str(record.get("group", "")), base, where, check_exists)
        )
    return frames


def _make_frame(name: str, tag: str, group: str, base: Path, where: str, check: bool) -> Frame:
    file = Path(name)
    if not file.is_absolute():
        file = Path(os.path.normpath(base / file))
    if check and not file.is_file():
        raise SOFError(f"{where}: file not found: {file}")
    return Frame(file, tag, group)
