"""The ESO DFS header block of a product, built in one place.

Follows what CPL's ``cpl_dfs_setup_product_header`` writes for ESO pipeline products (compare
a product of ``esorex hawki_dark_combine``): the primary header inherits the first raw frame's
keywords but its ``DPR`` ones, drops the archive identity of its ancestor (``ARCFILE``,
``ORIGFILE``, integrity keys), and adds ``PIPEFILE``, ``PROCSOFT``, ``DATAMD5`` and the
``ESO PRO`` block with one ``ESO PRO RECi`` record per processing step: the recipe, the DRS and
pipeline identifiers, its raw and calibration inputs (the latter with their own ``DATAMD5``),
its parameters (comment ``Default: x``), and the plugin strategies that did the work. A product
of products keeps the earlier records and takes the next free ``i``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits

from .fitsio import STRUCTURAL_KEYS, open_fits
from .parameters import Parameter, format_value

__all__ = [
    "DATAMD5_PLACEHOLDER",
    "PRO_DID",
    "ProcessingRecord",
    "build_primary_header",
    "data_md5",
    "next_record_index",
    "set_card",
]

PRO_DID = "ESO-VLT-DIC.PRO-1.16"
DATAMD5_PLACEHOLDER = "0" * 32
# Keywords of an ancestor that describe that file, not the product.
_NOT_INHERITED = {"ARCFILE", "ORIGFILE", "PIPEFILE", "DATAMD5", "DATE", "CHECKSUM", "DATASUM"}
_PRO_REC = re.compile(r"^ESO PRO REC(\d+) ")


@dataclass
class ProcessingRecord:
    """What one recipe run contributes to the ``ESO PRO RECi`` block.

    Attributes
    ----------
    recipe : str
        Recipe name (``vircam_dark_combine``).
    pipe_id : str
        Pipeline identifier with version (``vircam_recipes/0.1.0``).
    drs_id : str
        Data-reduction system identifier with version (``vircamframe/0.1.0``).
    raws, calibs : sequence of (path, tag)
        The raw and calibration inputs.
    parameters : sequence of (Parameter, value)
        The declared parameters and the values used.
    plugins : sequence of (role=name, distribution version)
        The strategies that did the work.
    calib_levels : mapping of file name to str
        The association level of each calibration the chain engine chose.
    """

    recipe: str
    pipe_id: str
    drs_id: str
    raws: Sequence[tuple[Path, str]] = ()
    calibs: Sequence[tuple[Path, str]] = ()
    parameters: Sequence[tuple[Parameter, object]] = ()
    plugins: Sequence[tuple[str, str]] = field(default_factory=list)
    calib_levels: Mapping[str, str] = field(default_factory=dict)


def set_card(header: fits.Header, key: str, value: object, comment: str = "") -> None:
    """Set a card, writing ESO's long keywords as HIERARCH cards explicitly (no warning)."""
    if len(key) > 8 or " " in key:
        key = f"HIERARCH {key}"
    header.set(key, value, comment)


def next_record_index(header: fits.Header) -> int:
    """The first ``i`` with no ``ESO PRO RECi`` record in ``header``."""
    used = {int(m.group(1)) for key in header for m in [_PRO_REC.match(key)] if m}
    return max(used, default=0) + 1


def _inherited(ancestor: fits.Header) -> fits.Header:
    """Keywords a product inherits: all but DPR, layout, and the ancestor's own PRO/QC keys."""
    kept = fits.Header()
    for card in ancestor.cards:
        key = card.keyword
        if key in STRUCTURAL_KEYS or key in _NOT_INHERITED or key in ("COMMENT", "HISTORY", ""):
            continue
        if key.startswith(("ESO DPR ", "ESO QC ", "ESO DRS ")):
            continue
        if key.startswith("ESO PRO ") and not _PRO_REC.match(key):
            continue
        kept.append(card, end=True)
    return kept


def _calib_md5(path: Path) -> str:
    """The DATAMD5 a calibration carries, or one computed from its data units."""
    with open_fits(path, check=False) as hdul:
        stored = hdul[0].header.get("DATAMD5")
    return str(stored) if stored and stored != DATAMD5_PLACEHOLDER else data_md5(path)


def build_primary_header(
    ancestor: fits.Header | None,
    record: ProcessingRecord,
    category: str,
    pipefile: str,
    procsoft: str,
    datancom: int,
    science: bool,
    tech: str | None = None,
    product_type: str = "REDUCED",
    extra: Mapping[str, tuple[object, str]] | None = None,
) -> fits.Header:
    """The primary header of a product, with ``DATAMD5`` as a placeholder to be filled in.

    Parameters
    ----------
    ancestor : Header or None
        Primary header of the first raw input (already repaired), or ``None``.
    record : ProcessingRecord
        This run's contribution to the PRO RECi block.
    category : str
        ``ESO PRO CATG`` (``MASTER_DARK``...).
    pipefile : str
        The product's file name.
    procsoft : str
        ``PROCSOFT``: the software and version that wrote the product.
    datancom : int
        Number of raw frames combined into the product.
    science : bool
        ``ESO PRO SCIENCE``: whether the product derives from science observations.
    tech : str, optional
        ``ESO PRO TECH``; by default the ancestor's ``ESO DPR TECH``.
    extra : mapping, optional
        More ``keyword: (value, comment)`` cards (primary QC values, for example).
    """
    header = _inherited(ancestor) if ancestor is not None else fits.Header()
    if tech is None and ancestor is not None:
        tech = ancestor.get("ESO DPR TECH") or ancestor.get("ESO PRO TECH")
    tech = str(tech or "IMAGE")
    ancestor_name = None
    if ancestor is not None:
        ancestor_name = ancestor.get("ESO PRO ANCESTOR") or ancestor.get("ARCFILE")
    if ancestor_name is None and record.raws:
        ancestor_name = Path(record.raws[0][0]).name

    def put(key: str, value: object, comment: str) -> None:
        set_card(header, key, value, comment)

    put("PIPEFILE", pipefile, "Filename of data product")
    put("PROCSOFT", procsoft, "Reduction software/system with version no.")
    put("DATAMD5", DATAMD5_PLACEHOLDER, "MD5 checksum")
    put("ESO PRO DID", PRO_DID, "Data dictionary for PRO")
    put("ESO PRO CATG", category, "Category of pipeline product frame")
    put("ESO PRO TYPE", product_type, "Product type")
    put("ESO PRO TECH", tech, "Observation technique")
    put("ESO PRO SCIENCE", bool(science), "Scientific product if T")
    put("ESO PRO DATANCOM", int(datancom), "Number of combined frames")
    if ancestor_name:
        put("ESO PRO ANCESTOR", str(ancestor_name), "Inherited file name")
    _append_record(header, next_record_index(header), record)
    for key, (value, comment) in (extra or {}).items():
        put(key, value, comment)
    return header


def _append_record(header: fits.Header, index: int, record: ProcessingRecord) -> None:
    rec = f"ESO PRO REC{index}"
    set_card(header, f"{rec} ID", record.recipe, "Pipeline recipe (unique) identifier")
    set_card(header, f"{rec} DRS ID", record.drs_id, "Data Reduction System identifier")
    set_card(header, f"{rec} PIPE ID", record.pipe_id, "Pipeline (unique) identifier")
    for j, (path, tag) in enumerate(record.raws, start=1):
        set_card(header, f"{rec} RAW{j} NAME", Path(path).name, "File name of raw frame")
        set_card(header, f"{rec} RAW{j} CATG", tag, "Category of raw frame")
    for j, (path, tag) in enumerate(record.calibs, start=1):
        set_card(header, f"{rec} CAL{j} NAME", Path(path).name, "File name of calibration frame")
        set_card(header, f"{rec} CAL{j} CATG", tag, "Category of calibration frame")
        set_card(header, f"{rec} CAL{j} DATAMD5", _calib_md5(Path(path)), "MD5 signature of calib frame")
        if Path(path).name in record.calib_levels:
            set_card(header, f"{rec} CAL{j} LEVEL", record.calib_levels[Path(path).name],
                     "Association level chosen by the chain")
    for j, (param, value) in enumerate(record.parameters, start=1):
        set_card(header, f"{rec} PARAM{j} NAME", param.name, param.help[:40])
        default = format_value(param.default)
        set_card(header, f"{rec} PARAM{j} VALUE", format_value(value), f"Default: {default}")
    for j, (role, dist) in enumerate(record.plugins, start=1):
        set_card(header, f"{rec} PLUGIN{j} NAME", role, "Strategy plugin (role=name)")
        set_card(header, f"{rec} PLUGIN{j} DIST", dist, "Distribution providing it")


def data_md5(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """MD5 of all data units of a FITS file, block padding included (ESO's ``DATAMD5``).

    Computed from the bytes on disk, so it is independent of how the file was written and
    can be checked by anyone with the file (headers, and so ``DATE`` or checksums, are not
    part of it).
    """
    digest = hashlib.md5()
    with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
        spans = [(h.fileinfo()["datLoc"], h.fileinfo()["datSpan"]) for h in hdul]
    with open(path, "rb") as handle:
        for start, span in spans:
            handle.seek(start)
            remaining = span
            while remaining:
                block = handle.read(min(chunk, remaining))
                if not block:
                    raise OSError(f"{path}: file ends inside a data unit")
                digest.update(block)
                remaining -= len(block)
    return digest.hexdigest()


def parameter_pairs(
    declared: Iterable[Parameter], values: Mapping[str, object]
) -> list[tuple[Parameter, object]]:
    """(declaration, value) pairs in declaration order, for :class:`ProcessingRecord`."""
    return [(p, values[p.name]) for p in declared]
