"""The QC report's model and its pure logic: QC values, their checks against the expected
ranges, the assignment of figures by the naming rule, the report as a table.

Nothing here opens a file; :mod:`vircamframe.qc.report` reads the products and builds a
:class:`QCReport` with these pieces.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import FitsInputError
from ..naming import raw_base
from ..tags import PRODUCT_TAGS
from .ranges import QC_RANGES, QCRange, find_range

__all__ = [
    "QC_TREE_FOLDER",
    "WARNING_STATUSES",
    "ProductQC",
    "QCCheck",
    "QCReport",
    "QCValue",
    "assign_figures",
    "category_order",
    "check_value",
    "check_values",
    "detector_of",
    "format_number",
    "header_values",
    "report_table",
    "table_values",
    "unit_of",
]

QC_TREE_FOLDER = "qc"  # <tree>/qc/<recipe short name>/: where a chain puts QC figures
WARNING_STATUSES = ("low", "high", "invalid")
_DETECTOR_EXT = re.compile(r"^DET\d+\.CHIP(\d+)$")
_UNIT = re.compile(r"^\s*\[([^\]]*)\]")


@dataclass(frozen=True)
class QCValue:
    """One QC number of a product.

    ``detector`` is None for a value of the product as a whole; ``frame`` names the frame a
    QC-table row describes (the pawprint of an ``ASTROM_QC`` row), empty otherwise.
    """

    product: str
    category: str
    key: str
    value: Any
    detector: int | None = None
    frame: str = ""
    unit: str = ""
    comment: str = ""

    @property
    def number(self) -> float:
        """The value as a float (NaN when it is not a number)."""
        if isinstance(self.value, bool):
            return float(self.value)
        if isinstance(self.value, int | float | np.integer | np.floating):
            return float(self.value)
        try:
            return float(str(self.value))  # a "NaN" card: FITS has no NaN literal
        except ValueError:
            return math.nan

    @property
    def where(self) -> str:
        """``detector 5``, ``<frame> detector 5`` or ``product``."""
        place = f"detector {self.detector}" if self.detector is not None else "product"
        return f"{self.frame} {place}" if self.frame else place


@dataclass(frozen=True)
class QCCheck:
    """A value with its expected range and the verdict: ``ok``, ``low``, ``high``,
    ``invalid`` (not a finite number) or ``unchecked`` (no range for it)."""

    value: QCValue
    range: QCRange | None
    status: str

    @property
    def warning(self) -> bool:
        return self.status in WARNING_STATUSES

    def message(self) -> str:
        """One line for the summary: where, what, and which range it left."""
        v, r = self.value, self.range
        if r is None:
            return f"{v.product} {v.where}: {v.key} = {v.value} (no range)"
        unit = f" {r.unit}" if r.unit else ""
        if self.status == "invalid":
            return f"{v.product} {v.where}: {v.key} = {v.value}, not a number (expected {r.text()}{unit})"
        return f"{v.product} {v.where}: {v.key} = {format_number(v.number)}{unit}, expected {r.text()}{unit}"


@dataclass
class ProductQC:
    """What the report knows of one product."""

    path: Path
    category: str
    recipe: str
    mjd: float | None
    values: list[QCValue] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def base(self) -> str:
        return raw_base(self.path.name)

    def figure_folders(self) -> list[Path]:
        """Where its QC figures may be: its folder and its recipe's folder in the tree's QC tree."""
        folders = [self.path.parent]
        if self.recipe:
            short = self.recipe.removeprefix("vircam_")
            folders.append(self.path.parent.parent / QC_TREE_FOLDER / short)
        return folders


@dataclass
class QCReport:
    """The products of a report (in pipeline order) and the check of every QC value."""

    title: str
    products: list[ProductQC]
    checks: list[QCCheck]

    @property
    def warnings(self) -> list[QCCheck]:
        return [c for c in self.checks if c.warning]

    def categories(self) -> list[str]:
        """The product categories present, in pipeline order."""
        return list(dict.fromkeys(p.category for p in self.products))


# --- pure logic ---------------------------------------------------------------------------------

def format_number(value: float) -> str:
    """A QC number for people: integers as they are, others to 5 significant digits."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.5g}"


def check_value(value: QCValue, ranges: Iterable[QCRange] = QC_RANGES,
                siblings: Mapping[str, float] | None = None) -> QCCheck:
    """Judge one value against the range the table gives for its category, key and level.

    ``siblings`` are the other QC values of the same place (product, frame, detector) by
    key, for ranges that are judged only where another value reaches a minimum
    (:attr:`QCRange.needs`); without the value needed, the check is ``unchecked``.
    """
    expected = find_range(value.category, value.key, value.detector is not None, ranges)
    if expected is None:
        return QCCheck(value, None, "unchecked")
    if expected.needs is not None:
        key, minimum = expected.needs
        if not (siblings or {}).get(key, -math.inf) >= minimum:
            return QCCheck(value, None, "unchecked")
    number = value.number
    if not math.isfinite(number):
        return QCCheck(value, expected, "invalid")
    if expected.low is not None and number < expected.low:
        return QCCheck(value, expected, "low")
    if expected.high is not None and number > expected.high:
        return QCCheck(value, expected, "high")
    return QCCheck(value, expected, "ok")


def assign_figures(bases: Iterable[str], names: Iterable[str]) -> dict[str, list[str]]:
    """Figures by owner: ``<base>.<suffix>.png`` belongs to the longest base it starts with.

    ``bases`` are the bases of every product that could own a figure in the folder (not only
    those reported, so that a figure is never given to a shorter base by mistake).
    """
    ordered = sorted(set(bases), key=len, reverse=True)
    owned: dict[str, list[str]] = {}
    for name in sorted(names):
        if not name.endswith(".png"):
            continue
        stem = name[: -len(".png")]
        for base in ordered:
            if stem.startswith(base + ".") and len(stem) > len(base) + 1:
                owned.setdefault(base, []).append(name)
                break
    return owned


def unit_of(comment: str) -> str:
    """The unit a card comment starts with (``[ADU] median`` -> ``ADU``)."""
    match = _UNIT.match(comment or "")
    return match.group(1).strip() if match else ""


def detector_of(header: fits.Header) -> int | None:
    """The detector of an extension: ``DET1.CHIPn`` -> n; otherwise ``ESO DET CHIP NO``."""
    match = _DETECTOR_EXT.match(str(header.get("EXTNAME", "")).strip())
    if match:
        return int(match.group(1))
    number = header.get("ESO DET CHIP NO")
    return int(number) if isinstance(number, int | np.integer) and not isinstance(number, bool) else None


def header_values(header: fits.Header, product: str, category: str,
                  detector: int | None) -> list[QCValue]:
    """The ``ESO QC`` cards of one header as values."""
    return [QCValue(product, category, card.keyword[len("ESO QC "):], card.value, detector,
                    unit=unit_of(card.comment), comment=card.comment)
            for card in header.cards if card.keyword.startswith("ESO QC ")]


def table_values(table: Table, product: str, category: str,
                 units: Mapping[str, str] | None = None) -> list[QCValue]:
    """QC values of a table with a row per detector (and per frame, with a FILE column).

    ``units`` are the columns' ``TUNITn`` strings by name.
    """
    if "DETECTOR" not in table.colnames:
        raise FitsInputError(f"{product}: QC table has no DETECTOR column")
    values = []
    columns = [name for name in table.colnames
               if name != "DETECTOR" and table[name].dtype.kind in "iuf"]
    for row in table:
        frame = _text(row["FILE"]) if "FILE" in table.colnames else ""
        for name in columns:
            values.append(QCValue(product, category, name, row[name].item(), int(row["DETECTOR"]),
                                  frame, (units or {}).get(name, "")))
    return values


def _text(value: Any) -> str:
    return (value.decode() if isinstance(value, bytes) else str(value)).strip()


def category_order(category: str) -> tuple[int, str]:
    """Pipeline order: the order of the tag table; unknown categories after, by name."""
    order = list(PRODUCT_TAGS)
    return (order.index(category), "") if category in order else (len(order), category)


def report_table(report: QCReport) -> Table:
    """The report as a table, one row per QC value (the ``QC_REPORT`` product's content).

    ``DETECTOR`` is 0 for a value of the whole product; ``LOW``/``HIGH`` are NaN where the
    range is open or there is none; ``VALUE`` is NaN for a value that is not a number.
    """
    rows = [(c.value.product, c.value.category, c.value.frame, c.value.detector or 0, c.value.key,
             c.value.number, c.range.unit if c.range else c.value.unit,
             _bound(c.range.low if c.range else None), _bound(c.range.high if c.range else None),
             c.status) for c in report.checks]
    names = ("PRODUCT", "CATEGORY", "FRAME", "DETECTOR", "KEY", "VALUE", "UNIT", "LOW", "HIGH", "STATUS")
    dtypes = ("U", "U", "U", np.int16, "U", np.float64, "U", np.float64, np.float64, "U")
    if not rows:
        return Table(names=names, dtype=[d if d != "U" else "U1" for d in dtypes])
    columns = list(zip(*rows, strict=True))
    return Table([np.asarray(col, dtype=d if d != "U" else None) for col, d in zip(columns, dtypes,
                                                                                    strict=True)],
                 names=names)


def _bound(value: float | None) -> float:
    return math.nan if value is None else float(value)


def check_values(values: Sequence[QCValue], ranges: Sequence[QCRange] = QC_RANGES) -> list[QCCheck]:
    """Judge every value, each with the other values of its place as siblings."""
    places: dict[tuple, dict[str, float]] = {}
    for value in values:
        places.setdefault(_place(value), {})[value.key] = value.number
    return [check_value(value, ranges, places[_place(value)]) for value in values]


def _place(value: QCValue) -> tuple:
    return (value.product, value.frame, value.detector)
