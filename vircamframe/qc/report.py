"""The QC report of a set of products: their QC values, judged against expected ranges, and
their QC figures.

What a product holds is read from the product alone: the ``ESO QC`` cards of its primary
header and of every extension (a ``DET1.CHIPn`` extension's cards belong to that detector,
any other extension's to the product as a whole), and the rows of the binary tables that
hold QC per detector (:data:`~vircamframe.qc.ranges.QC_TABLES`). The recipe that made it is
the last ``ESO PRO RECi ID`` of its header. Its QC figures are found by the naming rule of
:func:`vircamframe.qc.figures.qc_plot_path` and nowhere else: ``<product base>.<suffix>.png``
in the product's folder, or in the tree's QC folder of that recipe,
``<tree>/qc/<recipe without vircam_>/`` (where a chain puts them; the tree is the folder
above the product's). A figure that fits the bases of several products belongs to the
longest (``X.basic.var.hist.png`` is the variance's, not ``X.basic``'s).

Each value is checked against :data:`~vircamframe.qc.ranges.QC_RANGES`. This module reads;
the model and the pure parts (the checks, the assignment of figures, the report as a table)
are in :mod:`vircamframe.qc.report_model`. :func:`build_report` collects,
:func:`make_report` also writes the HTML page
(:mod:`vircamframe.qc.report_html`); ``vircam report`` and the recipe ``vircam_qc_report`` go
through them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from astropy.io import fits
from astropy.table import Table

from ..errors import ChainError, FitsInputError
from ..fitsio import open_fits
from ..naming import raw_base
from .ranges import QC_RANGES, QC_TABLES, QCRange
from .report_html import write_html
from .report_model import (
    QC_TREE_FOLDER,
    ProductQC,
    QCReport,
    assign_figures,
    category_order,
    check_values,
    detector_of,
    header_values,
    table_values,
)

__all__ = ["build_report", "find_figures", "make_report", "read_product_qc", "tree_products"]


def read_product_qc(path: str | os.PathLike) -> ProductQC:
    """The category, recipe, observing time and QC values of one product file.

    Raises
    ------
    FitsInputError
        An unreadable file, or one without ``ESO PRO CATG`` (not a pipeline product).
    """
    path = Path(path)
    with open_fits(path) as hdul:
        primary = hdul[0].header
        category = str(primary.get("ESO PRO CATG", "")).strip()
        if not category:
            raise FitsInputError(f"{path}: not a pipeline product (no ESO PRO CATG)")
        product = ProductQC(path, category, _last_recipe(primary), _mjd(primary))
        product.values += header_values(primary, path.name, category, None)
        table_ext = QC_TABLES.get(category)
        for hdu in hdul[1:]:
            detector = detector_of(hdu.header)
            product.values += header_values(hdu.header, path.name, category, detector)
            if table_ext is not None and hdu.name == table_ext:
                units = {column.name: column.unit or "" for column in hdu.columns}
                # units are kept as strings: ADU and e-/ADU are not FITS units astropy parses
                table = Table.read(hdu, unit_parse_strict="silent")
                product.values += table_values(table, path.name, category, units)
    return product


def _last_recipe(header: fits.Header) -> str:
    index, recipe = 1, ""
    while f"ESO PRO REC{index} ID" in header:
        recipe = str(header[f"ESO PRO REC{index} ID"]).strip()
        index += 1
    return recipe


def _mjd(header: fits.Header) -> float | None:
    value = header.get("MJD-OBS")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def find_figures(products: Sequence[ProductQC]) -> None:
    """Give each product its QC figures (see the module docstring for the rule)."""
    owners: dict[Path, dict[str, ProductQC]] = {}
    for product in products:
        for folder in product.figure_folders():
            owners.setdefault(folder, {})[product.base] = product
    product_folders = {p.path.parent for p in products}
    for folder, reported in owners.items():
        if not folder.is_dir():
            continue
        names = [entry.name for entry in os.scandir(folder) if entry.is_file()]
        bases = set(reported)
        for other in product_folders:  # unreported products that could own a figure here
            if other == folder or other.parent / QC_TREE_FOLDER in folder.parents:
                bases |= {raw_base(p.name) for p in other.glob("*.fits")}
        for base, figures in assign_figures(bases, names).items():
            if base in reported:
                reported[base].figures += [folder / name for name in figures]
    for product in products:
        product.figures.sort(key=lambda p: p.name)


def build_report(paths: Iterable[str | os.PathLike], title: str = "VIRCAM QC report",
                 ranges: Sequence[QCRange] = QC_RANGES) -> QCReport:
    """Read, check and order the QC of ``paths`` (each product once)."""
    unique: dict[Path, None] = {}
    for path in paths:
        unique.setdefault(Path(path).absolute(), None)
    if not unique:
        raise FitsInputError("no products to report on")
    products = [read_product_qc(path) for path in unique]
    products.sort(key=lambda p: (category_order(p.category), p.name))
    find_figures(products)
    checks = [check for product in products for check in check_values(product.values, ranges)]
    return QCReport(title, products, checks)


def make_report(paths: Iterable[str | os.PathLike], html: str | os.PathLike,
                title: str = "VIRCAM QC report") -> QCReport:
    """Build the report of ``paths`` and write its HTML page to ``html`` (atomically)."""
    report = build_report(paths, title)
    write_html(report, Path(html))
    return report


def tree_products(tree: str | os.PathLike) -> list[Path]:
    """The products a chain tree's manifest lists, or those of every tree just below ``tree``
    (a VISIONS ``path_pype`` holding a calibration and a science run).

    Raises
    ------
    ChainError
        When neither ``tree`` nor a folder in it holds a chain manifest (``temp/manifest.json``).
    """
    from ..chain.manifest import chain_products

    tree = Path(tree)
    if not tree.is_dir():
        raise ChainError(f"{tree}: not a folder")
    manifest = Path("temp") / "manifest.json"
    trees = [tree] if (tree / manifest).is_file() else sorted(
        sub for sub in tree.iterdir() if (sub / manifest).is_file())
    if not trees:
        raise ChainError(f"{tree}: no chain manifest (temp/manifest.json) in it or in a folder in it")
    return [frame.path for sub in trees for frame in chain_products(sub)]
