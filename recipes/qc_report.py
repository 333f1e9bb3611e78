"""vircam_qc_report: the QC of any products on one HTML page, and as a table."""

from __future__ import annotations

from vircamframe.chain.grouping import night_of
from vircamframe.errors import RecipeInputError
from vircamframe.naming import master_name, raw_base, setup_label
from vircamframe.parameters import Parameter
from vircamframe.qc.report import build_report
from vircamframe.qc.report_html import write_html
from vircamframe.qc.report_model import report_table
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.tags import PRODUCT_TAGS

# Every product category of the tag table but reference catalogues and the report itself.
_LOGGED = 20  # warnings logged one by one; the page and the table hold them all
REPORTED_TAGS = tuple(tag for tag in PRODUCT_TAGS if not tag.startswith("REFCAT_") and tag != "QC_REPORT")


class QCReportRecipe(Recipe):
    name = "vircam_qc_report"
    version = "0.1.0"
    synopsis = "The QC numbers and figures of any products on one HTML page, out-of-range values first"
    description = (
        "Reads every product given, whatever recipe made it: the ESO QC values of its primary\n"
        "header and extensions (a DET1.CHIPn extension's values belong to that detector, any\n"
        "other's to the product), and the rows of the tables that hold QC per detector\n"
        "(ASTROM_QC, MASTER_READGAIN_TABLE). Each value is checked against the expected range\n"
        "of its product category and key (vircamframe.qc.ranges: dark level and noise, stripes,\n"
        "non-linearity, gain and read noise, flat gain corrections, astrometric rms and offsets\n"
        "vs Gaia, zero-point errors, sky noise ...; inclusive bounds, values without a range are\n"
        "shown but not judged, a value that is not a number where a range applies is a warning;\n"
        "the rms of an ASTROM_QC row is judged only from 5 matched stars).\n"
        "The QC figures of a product are those named <product base>.<suffix>.png in its folder\n"
        "or in <tree>/qc/<recipe>/, where a chain puts them (the tree is the folder above the\n"
        "product's); a figure fitting several products belongs to the longest base.\n"
        "QC_REPORT is a table with a row per QC value: PRODUCT, CATEGORY, FRAME (the pawprint of\n"
        "a QC-table row), DETECTOR (0: the product as a whole), KEY, VALUE, UNIT, LOW, HIGH (NaN:\n"
        "open) and STATUS (ok, low, high, invalid, unchecked); primary QC NPRODUCT, NVALUE,\n"
        "NJUDGED and NWARN. Next to it, <QC_REPORT base>.html: one static page (inline CSS, no\n"
        "script, figures linked relative to it, so it opens from the output tree over file://)\n"
        "with the warnings first, an overview per category, then per category the product QC\n"
        "table and per product its figures and its QC per detector, out-of-range cells marked.\n"
        "A file without ESO PRO CATG, or tagged otherwise than its ESO PRO CATG, is an error.\n"
        "The chain does not run this recipe; `vircam report TREE` writes the same page for\n"
        "every product a finished chain or pipeline tree lists in its manifest."
    )
    inputs = (
        Input(REPORTED_TAGS, "RAW", min=1, chain_tags=(),
              help="products to report on (any product category)"),
    )
    products = (
        Output("QC_REPORT", "QC value per product, detector and key with its expected range and verdict"),
    )
    group_by = ("night",)
    parameters = (Parameter("title", str, "VIRCAM QC report", "Title of the HTML page"),)

    def process(self, frames, params) -> None:
        inputs = list(frames)
        report = build_report([f.path for f in inputs], params.title)
        category_of = {p.path: p.category for p in report.products}
        for frame in inputs:
            category = category_of[frame.path.absolute()]
            if category != frame.tag:
                raise RecipeInputError(
                    f"{self.name}: {frame.name} is tagged {frame.tag} but is a {category} product "
                    "(its ESO PRO CATG)"
                )
        mjds = [p.mjd for p in report.products if p.mjd is not None]
        first = min(mjds) if mjds else None
        night = night_of(first)
        label = setup_label(night=_date(night)) if night is not None else "nonight"
        table = report_table(report)
        warnings = len(report.warnings)
        extra = {
            "ESO QC NPRODUCT": (len(report.products), "products reported"),
            "ESO QC NVALUE": (len(report.checks), "QC values read"),
            "ESO QC NJUDGED": (sum(c.range is not None for c in report.checks), "QC values with a range"),
            "ESO QC NWARN": (warnings, "QC values out of range or not a number"),
        }
        order = {p.path: i for i, p in enumerate(report.products)}
        raws = sorted(inputs, key=lambda f: order[f.path.absolute()])
        filename = master_name("QC_REPORT", label, first or 0.0)
        with self.product("QC_REPORT", filename, raws, calibs=[], extra=extra) as out:
            out.add_table("QC_REPORT", table)
        page = write_html(report, out.path.with_name(raw_base(out.path.name) + ".html"), table=out.path)
        self.log.info("QC report %s: %d product(s), %d warning(s)", page, len(report.products), warnings)
        for check in report.warnings[:_LOGGED]:
            self.log.warning("QC %s", check.message())
        if warnings > _LOGGED:
            self.log.warning("QC ... and %d more warning(s): see %s", warnings - _LOGGED, page.name)


def _date(night: int) -> str:
    from astropy.time import Time

    return Time(night, format="mjd").strftime("%Y-%m-%d")
