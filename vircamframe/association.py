"""Association rules: which calibration goes with which frame, as data.

Each calibration tag has an :class:`AssociationRule`: the observation keys that must match
between a frame and the calibration (DESIGN.md 3.2: darks the DIT, NDIT and read mode; flats,
confidence maps, skies and illumination corrections the filter; linearity, bad-pixel and
read-gain tables anything) and its validity windows. As in ESO's EDPS, the windows are graded:
level 0 is the calibration plan (a dark of the same night), each further level relaxes it, and
a calibration outside the last window is not used. Among the matching candidates the one
closest in time wins, and the level it falls in is recorded.

A recipe hands over the calibrations it was given (a user-given calibration always wins: only
those are candidates, at any distance in time); the chain engine
(:mod:`vircamframe.chain`) uses the same rules, user-given calibrations first, to pick them
from what it makes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from astropy.io import fits

from .dfs import next_record_index
from .errors import RecipeInputError
from .fitsio import read_primary_header
from .frames import Frame
from .keywords import FrameInfo, frame_info

__all__ = [
    "ASSOCIATION_RULES",
    "MATCH_KEYS",
    "AssociationRule",
    "associate",
    "by_parent",
    "describe_setup",
    "lineage",
    "matches",
    "original_tag",
    "parent_name",
    "rule_for",
    "select_calibration",
]

T = TypeVar("T")


@dataclass(frozen=True)
class AssociationRule:
    """How calibrations of one tag are matched to frames.

    Parameters
    ----------
    match : tuple of str
        :class:`~vircamframe.keywords.FrameInfo` attributes that must be equal.
    windows : tuple of float
        Validity windows [days], level 0 first, increasing; ``|MJD difference|`` within
        ``windows[i]`` (and not an earlier one) is level ``i``. ``inf`` accepts any time.
    """

    match: tuple[str, ...]
    windows: tuple[float, ...] = (math.inf,)

    def level(self, delta_days: float) -> int | None:
        """The association level of a calibration ``delta_days`` away, or None (too far)."""
        for level, window in enumerate(self.windows):
            if abs(delta_days) <= window:
                return level
        return None


_DAY = 0.5  # within the same night
ASSOCIATION_RULES: dict[str, AssociationRule] = {
    "MASTER_DARK": AssociationRule(("dit", "ndit", "readmode"), (_DAY, 3.0, 14.0, math.inf)),
    "MASTER_TWILIGHT_FLAT": AssociationRule(("filter",), (1.0, 7.0, 30.0, math.inf)),
    "MASTER_CONF": AssociationRule(("filter",), (1.0, 7.0, 30.0, math.inf)),
    "MASTER_SKY": AssociationRule(("filter",), (_DAY,)),
    "MASTER_ILLUMCORR": AssociationRule(("filter",), (30.0, 180.0, math.inf)),
    "MASTER_BPM": AssociationRule((), (30.0, 180.0, math.inf)),
    "MASTER_CHANNEL_TABLE": AssociationRule((), (90.0, 365.0, math.inf)),
    "MASTER_READGAIN_TABLE": AssociationRule((), (90.0, 365.0, math.inf)),
    # a co-add's confidence map: made by the same job, so the same filter, offset and MJD
    "TILED_CONFIDENCE_MAP": AssociationRule(("filter",), (_DAY,)),
    "JITTERED_CONFIDENCE_MAP": AssociationRule(("filter", "offset"), (_DAY,)),
    # a tile and its statistics maps, for the Phase 3 products of its catalogue: same night
    "TILED_IMAGE": AssociationRule(("filter",), (_DAY,)),
    "STAT_EXPTIME": AssociationRule(("filter",), (_DAY,)),
    "STAT_MJD": AssociationRule(("filter",), (_DAY,)),
    "STAT_ASTRMS": AssociationRule(("filter",), (_DAY,)),
}
_ANY = AssociationRule(())  # tags without a rule (reference catalogues, third-party products)

# The match keys alone, for messages and for recipes choosing among given calibrations.
MATCH_KEYS: dict[str, tuple[str, ...]] = {tag: rule.match for tag, rule in ASSOCIATION_RULES.items()}


def rule_for(tag: str) -> AssociationRule:
    """The association rule of ``tag`` (match anything, at any time, when none is declared)."""
    return ASSOCIATION_RULES.get(tag, _ANY)


def matches(target: FrameInfo, candidate: FrameInfo, tag: str) -> bool:
    """Whether ``candidate`` (a ``tag`` calibration) may calibrate ``target``."""
    return all(getattr(target, key) == getattr(candidate, key) for key in rule_for(tag).match)


def _distance(target: FrameInfo, candidate: FrameInfo) -> float:
    return abs((candidate.mjd or 0.0) - (target.mjd or 0.0))


def associate(
    target: FrameInfo, candidates: Sequence[tuple[T, FrameInfo]], tag: str
) -> tuple[T, int] | None:
    """The ``tag`` calibration for ``target`` among ``(item, info)`` candidates, and its level.

    The closest in time among those that match wins (equal distances: the first given); it
    must fall within one of the rule's windows. Returns None when none qualifies.
    """
    rule = rule_for(tag)
    good = [(item, info) for item, info in candidates if matches(target, info, tag)]
    if not good:
        return None
    item, info = min(good, key=lambda pair: _distance(target, pair[1]))
    level = rule.level(_distance(target, info))
    return None if level is None else (item, level)


def describe_setup(info: FrameInfo, tag: str) -> str:
    """``DIT 10.0, NDIT 1, READMODE ...``: the values of ``info`` that ``tag`` must match."""
    return ", ".join(f"{key.upper()} {getattr(info, key)}" for key in rule_for(tag).match)


def select_calibration(
    target: FrameInfo, candidates: Sequence[Frame], tag: str, recipe: str, required: bool = True
) -> Frame | None:
    """The ``tag`` calibration among given ``candidates`` that matches ``target``, closest in time.

    Given calibrations are the user's choice, so no validity window applies here.

    Raises
    ------
    RecipeInputError
        When ``required`` and none matches: the message names the frame, the keys it needs
        and what was given.
    """
    infos = [(frame, frame_info(frame.path)) for frame in candidates if frame.tag == tag]
    good = [(frame, info) for frame, info in infos if matches(target, info, tag)]
    if not good:
        if not required:
            return None
        given = "; ".join(f"{f.name} ({describe_setup(i, tag)})" for f, i in infos) or "none"
        raise RecipeInputError(
            f"{recipe}: no {tag} matches {target.path.name} ({describe_setup(target, tag)}); given: {given}"
        )
    return min(good, key=lambda pair: _distance(target, pair[1]))[0]


# --- per-frame products: found through their provenance, never through file names ------------

def parent_name(frame: Frame, header: fits.Header | None = None) -> str | None:
    """The file a per-frame product was made from: its latest record's first raw input.

    ``header``: the product's primary header, when the caller has read it already.
    """
    header = read_primary_header(frame.path) if header is None else header
    last = next_record_index(header) - 1
    return header.get(f"ESO PRO REC{last} RAW1 NAME") if last >= 1 else None


def original_tag(frame: Frame, header: fits.Header | None = None) -> str:
    """The raw tag a product descends from (``OBJECT``, ``SKY``...): its first record's raw."""
    header = read_primary_header(frame.path) if header is None else header
    return str(header.get("ESO PRO REC1 RAW1 CATG", frame.tag))


def lineage(frame: Frame, header: fits.Header | None = None) -> list[str]:
    """``frame``'s file name, then the files it was made from, nearest first.

    Read from the provenance: the first raw input of each ``PRO RECi`` record, latest record
    first (``X.photcal.fits`` <- ``X.skysub.fits`` <- ``X.basic.fits`` <- ``X.fits``).
    """
    header = read_primary_header(frame.path) if header is None else header
    names = [frame.name]
    for index in range(next_record_index(header) - 1, 0, -1):
        name = header.get(f"ESO PRO REC{index} RAW1 NAME")
        if name and name not in names:
            names.append(str(name))
    return names


def by_parent(frames: Sequence[Frame], candidates: Sequence[Frame], tag: str, recipe: str,
              required: bool = True) -> list[Frame | None]:
    """For each of ``frames``, the ``tag`` product among ``candidates`` made from it.

    Made from the frame itself or, failing that, from its nearest ancestor with one (a
    pawprint's weight is made from its basic-calibrated frame, alongside the sky-subtracted
    pawprint that later products descend from).

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
        products: list[Frame] = []
        for name in lineage(frame) if made_from else []:
            products = made_from.get(name, [])
            if products:
                break
        if len(products) > 1:
            names = ", ".join(p.name for p in products)
            raise RecipeInputError(f"{recipe}: {len(products)} {tag} made from {frame.name}: {names}")
        if not products and required:
            raise RecipeInputError(f"{recipe}: no {tag} made from {frame.name} among the inputs")
        found.append(products[0] if products else None)
    return found
