"""The tag table and the header classification rules, in one place.

Raw frames are classified from ``HIERARCH ESO DPR CATG/TYPE/TECH`` (and the correlated
read-out name for resets) as ESO's VIRCAM pipeline does; products from ``HIERARCH ESO PRO
CATG``. The rules are data: a tuple of :class:`TagRule`, each a small pure predicate on a
header mapping, tried in order. ``vircam classify FILES`` prints them applied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLASSIFICATION_RULES",
    "PRODUCT_TAGS",
    "RAW_TAGS",
    "SKY_TARGETS",
    "TagRule",
    "classify_header",
    "normalise_dpr",
]

HeaderLike = Mapping[str, Any]


def normalise_dpr(value: Any) -> str:
    """Upper-case a DPR value and drop blanks, so ``'FLAT, LAMP'`` equals ``'FLAT,LAMP'``."""
    return "".join(str(value or "").split()).upper()


@dataclass(frozen=True)
class TagRule:
    """A classification rule: a tag, what it means, and a predicate on a primary header."""

    tag: str
    meaning: str
    predicate: Callable[[HeaderLike], bool]


def _dpr(catg: str, *types: str, prefix: bool = False) -> Callable[[HeaderLike], bool]:
    """Predicate: DPR.CATG equals ``catg`` and DPR.TYPE is one of ``types`` (or starts with)."""

    def predicate(header: HeaderLike) -> bool:
        if normalise_dpr(header.get("ESO DPR CATG")) != catg:
            return False
        dpr_type = normalise_dpr(header.get("ESO DPR TYPE"))
        if prefix:
            return any(dpr_type == t or dpr_type.startswith(t + ",") for t in types)
        return dpr_type in types

    return predicate


def _reset(header: HeaderLike) -> bool:
    readout = str(header.get("ESO DET NCORRS NAME", "")).strip().upper()
    return _dpr("CALIB", "BIAS")(header) and readout == "UNCORR"


# Raw tags (DESIGN.md 3.2). Order matters only where predicates overlap; here they do not.
RAW_RULES: tuple[TagRule, ...] = (
    TagRule("RESET", "reset frame (DPR CALIB/BIAS, uncorrelated read-out)", _reset),
    TagRule("DARK", "dark frame", _dpr("CALIB", "DARK")),
    TagRule("DARK_LINEARITY", "dark of the linearity sequence", _dpr("CALIB", "DARK,LINEARITY")),
    TagRule("DARK_CHECK", "dark of the linearity lamp-drift check", _dpr("CALIB", "DARK,CHECK")),
    TagRule("DARK_GAIN", "dark of a gain/read-noise pair", _dpr("CALIB", "DARK,GAIN")),
    TagRule("DARK_DARKCURRENT", "dark-current sequence dark", _dpr("CALIB", "DARK,CURRENT")),
    TagRule(
        "FLAT_LAMP_LINEARITY", "lamp flat of the linearity sequence",
        _dpr("CALIB", "FLAT,LAMP,LINEARITY"),
    ),
    TagRule("FLAT_LAMP_CHECK", "lamp flat of the lamp-drift check", _dpr("CALIB", "FLAT,LAMP,CHECK")),
    TagRule("FLAT_LAMP_GAIN", "lamp flat of a gain/read-noise pair", _dpr("CALIB", "FLAT,LAMP,GAIN")),
    TagRule("FLAT_DOME", "dome (lamp) flat", _dpr("CALIB", "FLAT,LAMP")),
    TagRule("FLAT_TWILIGHT", "twilight sky flat", _dpr("CALIB", "FLAT,TWILIGHT")),
    TagRule("STD_FLUX", "photometric standard field", _dpr("CALIB", "STD,FLUX", prefix=True)),
    TagRule("OBJECT", "science exposure", _dpr("SCIENCE", "OBJECT", prefix=True)),
    TagRule("SKY", "offset sky exposure", _dpr("SCIENCE", "SKY", prefix=True)),
)

RAW_TAGS: frozenset[str] = frozenset(rule.tag for rule in RAW_RULES)
# The raw tags whose pawprints are sky-subtracted; offset SKY frames only give sky.
SKY_TARGETS: tuple[str, ...] = ("OBJECT", "STD_FLUX")

# Product and reference tags with their one-line meanings. Recipes declare their products by
# these names; a third-party recipe may add its own PRO.CATG, which classifies the same way.
PRODUCT_TAGS: dict[str, str] = {
    "MASTER_DARK": "combined dark of one DIT/NDIT/read mode, per DIT",
    "MASTER_CHANNEL_TABLE": "per-channel DCS non-linearity coefficients",
    "MASTER_BPM": "bad-pixel mask (non-zero = bad)",
    "MASTER_READGAIN_TABLE": "gain and read noise per detector",
    "MASTER_TWILIGHT_FLAT": "normalised twilight flat field",
    "MASTER_CONF": "confidence map (0-110, 100 = nominal)",
    "BASIC_CALIBRATED_SCI": "linearised, dark-subtracted, flat-fielded pawprint",
    "BASIC_VARIANCE_SCI": "variance of a basic-calibrated pawprint",
    "MASTER_OBJMASK": "source mask of one pawprint (1 = source)",
    "MASTER_SKY": "sky frame for one pawprint",
    "SKYSUB_SCI": "sky-subtracted, destriped pawprint",
    "WEIGHT_SCI": "weight map of a pawprint",
    "ASTROM_HEADER": "astrometric solution of a pawprint",
    "ASTROM_QC": "astrometric QC table: rms, matches and offsets vs Gaia per detector and pawprint",
    "MASTER_ILLUMCORR": "illumination correction",
    "PHOTCAL_SCI": "photometrically calibrated pawprint",
    "RESAMPLED_SCI": "pawprint resampled onto the tile grid",
    "RESAMPLED_WEIGHT": "weight of a resampled pawprint",
    "JITTERED_IMAGE_SCI": "stack of the jitters of one offset, per detector",
    "JITTERED_CONFIDENCE_MAP": "confidence map of a stack",
    "TILED_IMAGE": "co-added tile",
    "TILED_CONFIDENCE_MAP": "confidence map of the tile",
    "TILED_OBJECT_CATALOGUE": "source catalogue of the tile",
    "JITTERED_OBJECT_CATALOGUE": "source catalogue of a stack, one table per detector",
    "STAT_EXPTIME": "total exposure time per pixel of a tile",
    "STAT_NIMG": "number of pawprints per pixel of a tile",
    "STAT_MJD": "mean MJD per pixel of a tile",
    "STAT_ASTRMS": "mean astrometric rms per pixel of a tile",
    "PHASE3_IMAGE": "ESO Phase 3 tile image (PRODCATG SCIENCE.IMAGE)",
    "PHASE3_WEIGHT": "ESO Phase 3 weight map of a tile (ANCILLARY.WEIGHTMAP)",
    "PHASE3_SRCTBL": "ESO Phase 3 source table of a tile (SCIENCE.SRCTBL)",
    "PUBLIC_CATALOGUE": "public source catalogue of a tile, 2MASS where saturated (SCIENCE.CATALOGTILE)",
    "TILE_HEADER": "a predefined tile grid: celestial WCS and size",
    "QC_REPORT": "QC value per product, detector and key, with its expected range and verdict",
    "REFCAT_ASTROM": "astrometric reference catalogue (Gaia DR3 columns)",
    "REFCAT_PHOTOM": "photometric reference catalogue (2MASS PSC columns)",
}

CLASSIFICATION_RULES: tuple[TagRule, ...] = (
    TagRule("<PRO.CATG>", "a pipeline product: its ESO PRO CATG", lambda h: "ESO PRO CATG" in h),
    *RAW_RULES,
)


def classify_header(header: HeaderLike) -> str | None:
    """Return the tag of a primary header, or ``None`` when no rule applies.

    Products carry their category in ``ESO PRO CATG`` and are classified by it; raw frames by
    the first raw rule whose predicate holds.
    """
    if "ESO PRO CATG" in header:
        return str(header["ESO PRO CATG"]).strip().upper()
    for rule in RAW_RULES:
        if rule.predicate(header):
            return rule.tag
    return None
