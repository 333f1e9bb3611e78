"""Association rules: which calibration goes with which frame, as data.

Each calibration tag lists the observation keys that must match between a frame and the
calibration (DESIGN.md 3.2): darks the DIT, NDIT and read mode, flats, confidence maps and skies
the filter; linearity, bad-pixel and read-gain tables match anything. Among the matching
candidates the one closest in time wins. A recipe hands over the calibrations it was given (a
user-given calibration always wins: only those are candidates); the chain engine uses the same
rules to pick calibrations from a products tree.
"""

from __future__ import annotations

from collections.abc import Sequence

from .dfs import next_record_index
from .errors import RecipeInputError
from .fitsio import read_primary_header
from .frames import Frame
from .keywords import FrameInfo, frame_info

__all__ = ["MATCH_KEYS", "by_parent", "matches", "original_tag", "parent_name", "select_calibration"]

MATCH_KEYS: dict[str, tuple[str, ...]] = {
    "MASTER_DARK": ("dit", "ndit", "readmode"),
    "MASTER_TWILIGHT_FLAT": ("filter",),
    "MASTER_CONF": ("filter",),
    "MASTER_SKY": ("filter",),
    "MASTER_ILLUMCORR": ("filter",),
    "MASTER_BPM": (),
    "MASTER_CHANNEL_TABLE": (),
    "MASTER_READGAIN_TABLE": (),
}


def matches(target: FrameInfo, candidate: FrameInfo, tag: str) -> bool:
    """Whether ``candidate`` (a ``tag`` calibration) may calibrate ``target``."""
    return all(getattr(target, key) == getattr(candidate, key) for key in MATCH_KEYS.get(tag, ()))


def _describe(info: FrameInfo, keys: Sequence[str]) -> str:
    return ", ".join(f"{key.upper()} {getattr(info, key)}" for key in keys)


def select_calibration(
    target: FrameInfo, candidates: Sequence[Frame], tag: str, recipe: str, required: bool = True
) -> Frame | None:
    """The ``tag`` calibration among ``candidates`` that matches ``target``, closest in time.

    Raises
    ------
    RecipeInputError
        When ``required`` and none matches: the message names the frame, the keys it needs
        and what was given.
    """
    keys = MATCH_KEYS.get(tag, ())
    infos = [(frame, frame_info(frame.path)) for frame in candidates if frame.tag == tag]
    good = [(frame, info) for frame, info in infos if matches(target, info, tag)]
    if not good:
        if not required:
            return None
        given = "; ".join(f"{f.name} ({_describe(i, keys)})" for f, i in infos) or "none"
        raise RecipeInputError(
            f"{recipe}: no {tag} matches {target.path.name} ({_describe(target, keys)}); given: {given}"
        )
    mjd = target.mjd or 0.0
    return min(good, key=lambda pair: abs((pair[1].mjd or 0.0) - mjd))[0]


# --- per-frame products: found through their provenance, never through file names ------------

def parent_name(frame: Frame) -> str | None:
    """The file a per-frame product was made from: its latest record's first raw input."""
    header = read_primary_header(frame.path)
    last = next_record_index(header) - 1
    return header.get(f"ESO PRO REC{last} RAW1 NAME") if last >= 1 else None


def original_tag(frame: Frame) -> str:
    """The raw tag a product descends from (``OBJECT``, ``SKY``...): its first record's raw."""
    header = read_primary_header(frame.path)
    return str(header.get("ESO PRO REC1 RAW1 CATG", frame.tag))


def by_parent(frames: Sequence[Frame], candidates: Sequence[Frame], tag: str, recipe: str,
              required: bool = True) -> list[Frame | None]:
    """For each of ``frames``, the ``tag`` product among ``candidates`` made from it.

    Raises
    ------
    RecipeInputError
        When ``required`` and a frame has none, or one has two.
    """
    made_from: dict[str, list[Frame]] = {}
    for candidate in candidates:
        if candidate.tag == tag:
            made_from.setdefault(parent_name(candidate) or "", []).append(candidate)
    found: list[Frame | None] = []
    for frame in frames:
        products = made_from.get(frame.name, [])
        if len(products) > 1:
            names = ", ".join(p.name for p in products)
            raise RecipeInputError(f"{recipe}: {len(products)} {tag} made from {frame.name}: {names}")
        if not products and required:
            raise RecipeInputError(f"{recipe}: no {tag} made from {frame.name} among the inputs")
        found.append(products[0] if products else None)
    return found
