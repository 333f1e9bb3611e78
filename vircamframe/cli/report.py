"""``vircam report TREE``: the QC report of a finished chain or pipeline tree, one HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from ..qc.report import make_report, tree_products
from .errors import user_errors

REPORT_PAGE = "qc_report.html"  # the page's name in the tree when --out is not given


def write_tree_report(tree: Path, out: Path | None = None, title: str | None = None) -> tuple[Path, int, int]:
    """Write the report of every product the manifest(s) of ``tree`` list.

    Returns the page, the number of products and the number of warnings.
    """
    page = out if out is not None else tree / REPORT_PAGE
    report = make_report(tree_products(tree), page, title or f"VIRCAM QC report: {tree.absolute().name}")
    return page, len(report.products), len(report.warnings)


@click.command()
@click.argument("tree", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"The HTML page to write [TREE/{REPORT_PAGE}].")
@click.option("--title", default=None, help="Title of the page [VIRCAM QC report: <tree name>].")
@user_errors("vircam report")
def report(tree: Path, out: Path | None, title: str | None) -> None:
    """Write the QC report of the finished chain or pipeline TREE: one static HTML page.

    TREE is a chain's output folder (it holds temp/manifest.json) or a folder of such trees
    (a VISIONS path_pype with a calibration and a science run). The page lists the QC values
    out of their expected ranges first, then the QC figures and per-detector QC numbers of
    every product the manifests list; open it in a browser, no server needed.
    """
    page, products, warnings = write_tree_report(tree, out, title)
    click.echo(f"QC report of {products} product(s), {warnings} QC value(s) out of range: {page}")
