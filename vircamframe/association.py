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

from .errors import RecipeInputError
from .frames import Frame
from .keywords import FrameInfo, frame_info

__all__ = ["MATCH_KEYS", "matches", "select_calibration"]

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
