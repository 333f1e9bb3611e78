"""Product file names, from one registry of suffixes.

Names are deterministic, unique and readable:

- per-frame products: ``<raw base>.<suffix>.fits`` (``VCAM.2019-04-01T07:12:00.123.basic.fits``);
- master calibrations: ``<pro.catg lowercase>.<setup>.<MJD>.fits``
  (``master_dark.dit10.000_ndit6.58574.98765.fits``), where *setup* is what the master depends
  on (DIT and NDIT for a dark, the filter for a flat) and MJD is the first input's, to 5 decimals.

QC figures go next to their product, or into the folder :data:`QC_FOLDER` names while a recipe
runs (the chain engine's ``qc/`` tree).
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from pathlib import Path

__all__ = ["PER_FRAME_SUFFIXES", "QC_FOLDER", "master_name", "per_frame_name", "raw_base", "setup_label"]

# PRO.CATG of per-frame products -> suffix. Third-party recipes may add entries.
PER_FRAME_SUFFIXES: dict[str, str] = {
    "BASIC_CALIBRATED_SCI": "basic",
    "BASIC_VARIANCE_SCI": "basic.var",
    "MASTER_OBJMASK": "objmask",
    "MASTER_SKY": "sky",
    "SKYSUB_SCI": "skysub",
    "WEIGHT_SCI": "weight",
    "ASTROM_HEADER": "astrom",
    "PHOTCAL_SCI": "photcal",
    "RESAMPLED_SCI": "resamp",
    "RESAMPLED_WEIGHT": "resamp.weight",
    "TILED_OBJECT_CATALOGUE": "cat",
    "JITTERED_OBJECT_CATALOGUE": "cat",
}

# Where QC figures of the running recipe go (None: next to the product). Set by Recipe.run.
QC_FOLDER: ContextVar[Path | None] = ContextVar("QC_FOLDER", default=None)

_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")


def raw_base(name: str) -> str:
    """A file name without its FITS extension (``.fits``, ``.fits.fz``, ``.fit``)."""
    return re.sub(r"\.(fits|fit|fts)(\.fz|\.gz)?$", "", name, flags=re.IGNORECASE)


def per_frame_name(category: str, raw_name: str) -> str:
    """The product name of a per-frame product of ``raw_name`` (a raw frame or a product of it).

    A product of a product keeps the raw base: the sky of ``X.basic.fits`` is ``X.sky.fits``.
    """
    try:
        suffix = PER_FRAME_SUFFIXES[category]
    except KeyError:
        raise KeyError(f"no per-frame suffix registered for {category}") from None
    base = raw_base(raw_name)
    for known in sorted(PER_FRAME_SUFFIXES.values(), key=len, reverse=True):
        if base.endswith(f".{known}"):
            base = base[: -len(known) - 1]
            break
    return f"{base}.{suffix}.fits"


def setup_label(**setup: object) -> str:
    """``dit10.000_ndit6`` from ``dit=10.0, ndit=6``; file-name safe.

    Keys are written lower-case before their values; an empty key (``**{"": "Ks"}``) writes
    the value alone, as it is (a filter name keeps its case).
    """
    parts = []
    for key, value in setup.items():
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        parts.append(_UNSAFE.sub("", f"{key.lower()}{text}"))
    return "_".join(parts)


def master_name(category: str, setup: str, mjd: float) -> str:
    """The name of a master calibration: ``<category>.<setup>.<MJD>.fits``."""
    return f"{category.lower()}.{setup}.{mjd:.5f}.fits"
