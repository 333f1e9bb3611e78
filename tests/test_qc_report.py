"""The QC report: collection and range checks on hand-made products, the recipe and ``vircam
report`` on a real demo tree, and the page opened in headless Chromium with every image loaded.

The unit tests write small products with the one product writer, with QC values chosen to sit
inside, on and outside the expected ranges. The slow tests share one ``vircam demo`` run (the
README's main job, tiny preset), whose trees hold every product category the chain makes and
their QC figures.
"""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from PIL import Image

from vircamframe import run_recipe
from vircamframe.chain.manifest import chain_products
from vircamframe.chain.plan import plan_jobs
from vircamframe.errors import ChainError, FitsInputError, RecipeInputError
from vircamframe.frames import Frame, FrameSet
from vircamframe.parameters import resolve_parameters
from vircamframe.products import ProductFile
from vircamframe.qc.ranges import QC_RANGES, find_range
from vircamframe.qc.report import build_report, make_report, tree_products
from vircamframe.qc.report_html import figure_url
from vircamframe.qc.report_model import QCValue, assign_figures, check_value, report_table
from vircamframe.registry import load_recipe

from browser import Chromium
from conftest import run_cli

# --- hand-made products ---------------------------------------------------------------------------


def write_product(path: Path, category: str, recipe: str, detectors: dict[int, dict] | None = None,
                  primary: dict | None = None, table: tuple[str, Table, dict] | None = None) -> Path:
    """A product with ``ESO PRO CATG``, one ``PRO REC`` and the QC cards given."""
    header = fits.Header()
    header["MJD-OBS"] = 58664.75
    header["DATAMD5"] = "0" * 32
    header["HIERARCH ESO PRO CATG"] = category
    header["HIERARCH ESO PRO REC1 ID"] = "vircam_science_basic"
    header["HIERARCH ESO PRO REC2 ID"] = recipe
    for key, (value, comment) in (primary or {}).items():
        header[f"HIERARCH ESO QC {key}"] = (value, comment)
    with ProductFile(path, header) as out:
        for detector, qc in (detectors or {}).items():
            out.add_image(f"DET1.CHIP{detector}", np.zeros((4, 4), np.float32), qc=qc)
        if table is not None:
            extname, rows, units = table
            out.add_table(extname, rows, units=units)
    return path


def png(path: Path, size: tuple[int, int] = (40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 30, 30)).save(path)
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    """A chain-like tree: a master dark with one detector out of range and its figures."""
    root = tmp_path / "tree"
    dark = root / "master_common" / "master_dark.dit10.000_ndit1.58664.75193.fits"
    dark.parent.mkdir(parents=True)
    write_product(dark, "MASTER_DARK", "vircam_dark_combine", {
        1: {"DARKMED": (2.5, "[ADU] median of the master dark"), "DARKRMS": (4.25, "[ADU] robust rms")},
        2: {"DARKMED": (-3.0, "[ADU] median of the master dark"), "DARKRMS": (17.25, "[ADU] robust rms")},
        3: {"DARKMED": (50.0, "[ADU] median of the master dark"), "DARKRMS": (15.0, "[ADU] robust rms"),
            "NHOTPIX": (12, "number of hot pixels")},
    })
    png(root / "qc" / "dark_combine" / "master_dark.dit10.000_ndit1.58664.75193.qc.png")
    png(dark.parent / "master_dark.dit10.000_ndit1.58664.75193.mosaic.png")
    png(dark.parent / "master_dark.dit10.000_ndit1.58664.75193x.png")  # not <base>.<suffix>.png
    png(root / "qc" / "sky_combine" / "master_dark.dit10.000_ndit1.58664.75193.sky.png")  # other recipe
    return root


# --- range checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "status"), [
    (17.25, "high"), (15.0, "ok"), (0.1, "ok"), (0.05, "low"), ("NaN", "invalid"), (4, "ok"),
])
def test_check_value_judges_darkrms(value, status):
    check = check_value(QCValue("d.fits", "MASTER_DARK", "DARKRMS", value, detector=2))
    assert check.status == status
    assert check.range is find_range("MASTER_DARK", "DARKRMS", True)
    assert (check.range.low, check.range.high, check.range.unit) == (0.1, 15.0, "ADU")
    assert check.warning == (status != "ok")


def test_values_without_a_range_or_at_another_level_are_not_judged():
    assert check_value(QCValue("d.fits", "MASTER_DARK", "NHOTPIX", 12, detector=3)).status == "unchecked"
    assert check_value(QCValue("d.fits", "MASTER_DARK", "DARKRMS", 99.0)).status == "unchecked"  # product
    assert check_value(QCValue("x.fits", "THIRD_PARTY_PRODUCT", "DARKRMS", 99.0, 1)).status == "unchecked"
    # ASTROM_QC's product-level RMS1 (0.2) and its per-detector rows (0.5, from 5 matches) differ
    assert check_value(QCValue("a.fits", "ASTROM_QC", "RMS1", 0.3)).status == "high"
    row = QCValue("a.fits", "ASTROM_QC", "RMS1", 0.3, detector=4, frame="p.fits")
    assert check_value(row, siblings={"NMATCH": 5}).status == "ok"
    few = QCValue("a.fits", "ASTROM_QC", "RMS1", 0.8, detector=4, frame="p.fits")
    assert check_value(few, siblings={"NMATCH": 4}).status == "unchecked"
    assert check_value(few, siblings={"NMATCH": 5}).status == "high"


def test_every_range_is_well_formed():
    seen = set()
    for entry in QC_RANGES:
        assert entry.low is not None or entry.high is not None, entry
        assert entry.low is None or entry.high is None or entry.low < entry.high, entry
        assert entry.why and entry.level in ("product", "detector", "any"), entry
        for category in entry.categories:
            place = (category, entry.key, entry.level)
            assert place not in seen, f"two ranges for {place}"
            seen.add(place)


# --- figures ----------------------------------------------------------------------------------------


def test_figures_belong_to_the_longest_base():
    owned = assign_figures(
        ["X.basic", "X.basic.var", "master_dark.a"],
        ["X.basic.var.hist.png", "X.basic.hist.png", "X.basic.png", "X.basicfoo.png",
         "master_dark.a.qc.png", "notes.txt", "master_dark.a.qc.pdf"],
    )
    assert owned == {"X.basic.var": ["X.basic.var.hist.png"], "X.basic": ["X.basic.hist.png"],
                     "master_dark.a": ["master_dark.a.qc.png"]}


def test_figure_links_are_relative_and_encoded(tmp_path):
    page_folder = tmp_path / "tree"
    figure = page_folder / "qc" / "science_final" / "VCAM.2019-07-01T03:50:24.000.skysub.stripes.png"
    encoded = "VCAM.2019-07-01T03%3A50%3A24.000.skysub.stripes.png"  # a colon would read as a scheme
    assert figure_url(figure, page_folder) == f"qc/science_final/{encoded}"
    assert figure_url(figure, figure.parent) == encoded
    assert figure_url(figure, tmp_path / "elsewhere") == f"../tree/qc/science_final/{encoded}"


# --- collection from products ------------------------------------------------------------------------


def test_out_of_range_value_gives_exactly_its_warning(tree):
    dark = tree / "master_common" / "master_dark.dit10.000_ndit1.58664.75193.fits"
    report = build_report([dark])
    [product] = report.products
    assert (product.category, product.recipe, product.mjd) == ("MASTER_DARK", "vircam_dark_combine", 58664.75)
    read = {(v.detector, v.key): (v.value, v.unit) for v in product.values}
    assert read == {(1, "DARKMED"): (2.5, "ADU"), (1, "DARKRMS"): (4.25, "ADU"),
                    (2, "DARKMED"): (-3.0, "ADU"), (2, "DARKRMS"): (17.25, "ADU"),
                    (3, "DARKMED"): (50.0, "ADU"), (3, "DARKRMS"): (15.0, "ADU"), (3, "NHOTPIX"): (12, "")}
    assert [c.status for c in report.checks] == ["ok", "ok", "ok", "high", "ok", "ok", "unchecked"]
    [warning] = report.warnings
    assert warning.message() == ("master_dark.dit10.000_ndit1.58664.75193.fits detector 2: "
                                 "DARKRMS = 17.25 ADU, expected 0.1 .. 15 ADU")
    assert [p.relative_to(tree).as_posix() for p in product.figures] == [
        "master_common/master_dark.dit10.000_ndit1.58664.75193.mosaic.png",
        "qc/dark_combine/master_dark.dit10.000_ndit1.58664.75193.qc.png",
    ]


def test_qc_tables_give_a_value_per_row(tmp_path):
    gains = Table({"EXTNAME": ["DET1.CHIP1", "DET1.CHIP2"], "DETECTOR": [1, 2], "GAIN": [4.25, 7.5],
                   "READNOISE": [22.0, 25.5]})
    readgain = write_product(tmp_path / "master_readgain_table.dit8.000_ndit1.58664.76059.fits",
                             "MASTER_READGAIN_TABLE", "vircam_detector_noise",
                             table=("READGAIN", gains, {"GAIN": "e-/ADU", "READNOISE": "e-"}))
    rows = Table({"FILE": ["a.skysub.fits", "a.skysub.fits"], "DETECTOR": [3, 4], "NMATCH": [9, 2],
                  "RMS1": [0.75, 0.9]})
    astrom = write_product(tmp_path / "astrom_qc.J.58665.16000.fits", "ASTROM_QC", "vircam_astrometry",
                           table=("ASTROM_QC", rows, {"RMS1": "arcsec"}))
    report = build_report([astrom, readgain])
    assert [p.category for p in report.products] == ["MASTER_READGAIN_TABLE", "ASTROM_QC"]  # pipeline order
    got = [(c.value.frame, c.value.detector, c.value.key, c.value.value, c.value.unit, c.status)
           for c in report.checks]
    assert got == [
        ("", 1, "GAIN", 4.25, "e-/ADU", "ok"), ("", 1, "READNOISE", 22.0, "e-", "ok"),
        ("", 2, "GAIN", 7.5, "e-/ADU", "high"), ("", 2, "READNOISE", 25.5, "e-", "ok"),
        ("a.skysub.fits", 3, "NMATCH", 9, "", "unchecked"),
        ("a.skysub.fits", 3, "RMS1", 0.75, "arcsec", "high"),
        ("a.skysub.fits", 4, "NMATCH", 2, "", "unchecked"),
        ("a.skysub.fits", 4, "RMS1", 0.9, "arcsec", "unchecked"),  # 2 matches: not judged
    ]
    assert [w.message() for w in report.warnings] == [
        "master_readgain_table.dit8.000_ndit1.58664.76059.fits detector 2: "
        "GAIN = 7.5 e-/ADU, expected 3 .. 6.5 e-/ADU",
        "astrom_qc.J.58665.16000.fits a.skysub.fits detector 3: RMS1 = 0.75 arcsec, expected <= 0.5 arcsec",
    ]
    table = report_table(report)
    assert table.colnames == ["PRODUCT", "CATEGORY", "FRAME", "DETECTOR", "KEY", "VALUE", "UNIT", "LOW",
                              "HIGH", "STATUS"]
    assert list(table[2]["PRODUCT", "DETECTOR", "KEY", "UNIT", "STATUS"]) == [
        "master_readgain_table.dit8.000_ndit1.58664.76059.fits", 2, "GAIN", "e-/ADU", "high"]
    assert (table[2]["VALUE"], table[2]["LOW"], table[2]["HIGH"]) == (7.5, 3.0, 6.5)
    assert math.isnan(table[4]["LOW"]) and math.isnan(table[4]["HIGH"])  # NMATCH: no range


def test_product_level_values_and_nan_cards(tmp_path):
    photcal = write_product(tmp_path / "p.photcal.fits", "PHOTCAL_SCI", "vircam_photometry",
                            {5: {"MAGZERR": (float("nan"), "[mag] error of MAGZPT")}},
                            primary={"MAGZERR": (0.0625, "[mag] error of MAGZPT"), "NSTARS": (9, "stars")})
    report = build_report([photcal])
    got = [(c.value.detector, c.value.key, c.value.value, c.status) for c in report.checks]
    assert got == [(None, "MAGZERR", 0.0625, "high"), (None, "NSTARS", 9, "low"),
                   (5, "MAGZERR", "NaN", "invalid")]
    assert [w.message() for w in report.warnings] == [
        "p.photcal.fits product: MAGZERR = 0.0625 mag, expected <= 0.05 mag",
        "p.photcal.fits product: NSTARS = 9, expected >= 10",
        "p.photcal.fits detector 5: MAGZERR = NaN, not a number (expected <= 0.05 mag)",
    ]


def test_bad_inputs_are_one_line_errors(tmp_path):
    plain = tmp_path / "plain.fits"
    fits.PrimaryHDU().writeto(plain)
    with pytest.raises(FitsInputError, match=f"^{re.escape(str(plain))}: not a pipeline product "
                                             r"\(no ESO PRO CATG\)$"):
        build_report([plain])
    with pytest.raises(FitsInputError, match=r"^no products to report on$"):
        build_report([])
    with pytest.raises(ChainError, match=f"^{re.escape(str(tmp_path))}: no chain manifest "
                                         r"\(temp/manifest.json\) in it or in a folder in it$"):
        tree_products(tmp_path)
    result = run_cli("vircam", "report", tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"vircam report: error: {tmp_path}: no chain manifest (temp/manifest.json) in it or in a folder "
        "in it"]


# --- the page ---------------------------------------------------------------------------------------


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def test_page_is_static_and_marks_the_warning(tree):
    dark = tree / "master_common" / "master_dark.dit10.000_ndit1.58664.75193.fits"
    page = tree / "qc_report.html"
    report = make_report([dark], page, title="Night <1> & co")
    text = page.read_text()
    assert len(report.warnings) == 1
    parser = _Images()
    parser.feed(text)
    assert parser.images == ["master_common/master_dark.dit10.000_ndit1.58664.75193.mosaic.png",
                             "qc/dark_combine/master_dark.dit10.000_ndit1.58664.75193.qc.png"]
    assert not parser.tags & {"script", "link", "iframe", "object"}
    assert "http:" not in text and "https:" not in text
    assert "<title>Night &lt;1&gt; &amp; co</title>" in text
    assert text.index('id="warnings"') < text.index('id="overview"') < text.index('id="cat-MASTER_DARK"')
    warned = re.findall(r'<td class="warn"[^>]*>([^<]*)</td>', text)
    assert warned == ["17.25", "1", "17.25"]  # warnings table, overview count, detector 2's cell
    assert "1 QC value(s) out of range" in text
    assert not list(tree.glob(".qc_report.html.*"))  # written through a temporary file, renamed


# --- the recipe ------------------------------------------------------------------------------------


def test_recipe_refuses_a_product_tagged_otherwise(tree, tmp_path):
    dark = tree / "master_common" / "master_dark.dit10.000_ndit1.58664.75193.fits"
    message = (f"vircam_qc_report: {dark.name} is tagged MASTER_SKY but is a MASTER_DARK product "
               "(its ESO PRO CATG)")
    with pytest.raises(RecipeInputError, match=f"^{re.escape(message)}$"):
        run_recipe("vircam_qc_report", FrameSet([Frame(dark, "MASTER_SKY")]), output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_recipe_writes_table_and_page(tree, tmp_path):
    dark = tree / "master_common" / "master_dark.dit10.000_ndit1.58664.75193.fits"
    [product] = run_recipe("vircam_qc_report", FrameSet([Frame(dark, "MASTER_DARK")]), {"title": "t"},
                           output_dir=tmp_path)
    assert product.name == "qc_report.night2019-06-30.58664.75000.fits"
    header = fits.getheader(product.path)
    assert (header["ESO PRO CATG"], header["ESO QC NPRODUCT"], header["ESO QC NVALUE"],
            header["ESO QC NJUDGED"], header["ESO QC NWARN"]) == ("QC_REPORT", 1, 7, 6, 1)
    assert header["ESO PRO REC3 ID"] == "vircam_qc_report"
    assert header["ESO PRO REC3 RAW1 NAME"] == dark.name
    table = Table.read(product.path, "QC_REPORT")
    assert list(table["STATUS"]) == ["ok", "ok", "ok", "high", "ok", "ok", "unchecked"]
    page = tmp_path / "qc_report.night2019-06-30.58664.75000.html"
    assert 'href="qc_report.night2019-06-30.58664.75000.fits"' in page.read_text()


def test_the_chain_says_it_does_not_run_the_report():
    cls = load_recipe("vircam_qc_report")
    message = ("nothing to make for QC_REPORT: vircam_qc_report is not run by the chain (it is fed none "
               "of its inputs); run it on an SOF")
    with pytest.raises(ChainError, match=f"^{re.escape(message)}$"):
        plan_jobs({cls.name: cls}, [], ["QC_REPORT"], {cls.name: resolve_parameters(cls.parameters)},
                  lambda recipe: "qc")


# --- a real tree: vircam demo ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_run) -> tuple[Path, str]:
    """The session's ``vircam demo`` run: two pipeline trees and the report of both."""
    return demo_run


@pytest.mark.slow
def test_demo_writes_the_report_of_both_trees(demo):
    out, stdout = demo
    page = out / "pipeline" / "qc_report.html"
    products = tree_products(out / "pipeline")
    n_products = len(chain_products(out / "pipeline" / "demo_calibration")) + len(
        chain_products(out / "pipeline" / "demo_science"))
    assert len(products) == n_products
    report = build_report(products)
    line = f"QC report of {n_products} product(s), {len(report.warnings)} QC value(s) out of range: {page}"
    assert line in stdout.splitlines()
    assert page.is_file()
    # every QC figure the chain wrote belongs to exactly one product of the report
    written = sorted((out / "pipeline").glob("*/qc/*/*.png"))
    found = sorted(f for p in report.products for f in p.figures)
    assert found == written and len(written) > 50
    assert {p.category for p in report.products} == {
        "MASTER_DARK", "MASTER_CHANNEL_TABLE", "MASTER_BPM", "MASTER_READGAIN_TABLE", "MASTER_TWILIGHT_FLAT",
        "MASTER_CONF", "BASIC_CALIBRATED_SCI", "MASTER_OBJMASK", "MASTER_SKY", "SKYSUB_SCI", "WEIGHT_SCI",
        "ASTROM_HEADER", "ASTROM_QC", "PHOTCAL_SCI", "MASTER_ILLUMCORR", "RESAMPLED_SCI",
        "RESAMPLED_WEIGHT", "TILED_IMAGE", "TILED_CONFIDENCE_MAP", "TILED_OBJECT_CATALOGUE", "STAT_EXPTIME",
        "STAT_NIMG", "STAT_MJD", "STAT_ASTRMS", "PHASE3_IMAGE", "PHASE3_WEIGHT", "PHASE3_SRCTBL",
        "PUBLIC_CATALOGUE"}

    result = run_cli("vircam", "report", out / "pipeline" / "demo_science", "--out", out / "science.html")
    assert result.returncode == 0, result.stderr
    science = build_report(chain_products(out / "pipeline" / "demo_science").paths)
    assert result.stdout.strip() == (
        f"QC report of {len(science.products)} product(s), {len(science.warnings)} QC value(s) out of "
        f"range: {out / 'science.html'}")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::astropy.units.UnitsWarning")  # e-/ADU, ADU: not FITS units
def test_recipe_on_demo_products_reads_exact_values(demo, tmp_path):
    out, _ = demo
    frames = FrameSet(Frame(f.path, f.tag) for f in chain_products(out / "pipeline" / "demo_calibration")
                      + chain_products(out / "pipeline" / "demo_science", "ASTROM_QC", "PHOTCAL_SCI"))
    [product] = run_recipe("vircam_qc_report", frames, output_dir=tmp_path)
    table = Table.read(product.path, "QC_REPORT", mask_invalid=False)  # FRAME "" stays "", not masked
    header = fits.getheader(product.path)
    assert header["ESO QC NPRODUCT"] == len(frames)
    assert header["ESO QC NVALUE"] == len(table)
    statuses = table["STATUS"].astype(str)
    assert header["ESO QC NWARN"] == int(np.isin(statuses, ["low", "high", "invalid"]).sum()) > 0

    def value(name: str, detector: int, key: str, frame: str = "") -> float:
        [row] = table[(table["PRODUCT"] == name) & (table["DETECTOR"] == detector) & (table["KEY"] == key)
                      & (table["FRAME"] == frame)]
        return row["VALUE"]

    dark = next(f.path for f in frames if f.tag == "MASTER_DARK")
    assert value(dark.name, 5, "DARKRMS") == fits.getval(dark, "ESO QC DARKRMS", extname="DET1.CHIP5")
    gain = next(f.path for f in frames if f.tag == "MASTER_READGAIN_TABLE")
    assert value(gain.name, 3, "GAIN") == Table.read(gain, "READGAIN")["GAIN"][2]
    photcal = next(f.path for f in frames if f.tag == "PHOTCAL_SCI")
    assert value(photcal.name, 0, "MAGZPT") == fits.getval(photcal, "ESO QC MAGZPT")
    astrom = next(f.path for f in frames if f.tag == "ASTROM_QC")
    rows = Table.read(astrom, "ASTROM_QC")
    assert value(astrom.name, int(rows["DETECTOR"][17]), "NMATCH", rows["FILE"][17]) == rows["NMATCH"][17]
    assert int(((table["PRODUCT"] == astrom.name) & (table["KEY"] == "RMS1")).sum()) == len(rows) + 1
    assert product.path.with_suffix(".html").is_file()


@pytest.mark.slow
def test_report_opens_in_headless_chromium_with_every_image(demo, tmp_path):
    out, _ = demo
    page = out / "pipeline" / "qc_report.html"
    parser = _Images()
    parser.feed(page.read_text())
    assert len(parser.images) > 50
    broken = page.with_name("qc_report_broken.html")  # the check must be able to fail
    broken.write_text(page.read_text().replace(parser.images[0], "qc/no_such_figure.png"))
    with Chromium(width=1280, height=1000) as browser:
        browser.open(broken.as_uri())
        missing = [i["src"] for i in browser.images().images if not i["naturalWidth"]]
        assert missing == ["qc/no_such_figure.png"]

        browser.open(page.as_uri())
        loaded = browser.images()
        shot = browser.screenshot(tmp_path / "qc_report.png")
    print(f"\nscreenshot of {page}: {shot}")
    assert loaded.title == "VIRCAM QC report: vircam demo"
    assert [i["src"] for i in loaded.images] == parser.images
    not_loaded = [i["src"] for i in loaded.images if not (i["complete"] and i["naturalWidth"] > 0)]
    assert not_loaded == []
    for image in loaded.images:  # each one is the figure file it names, read from disk
        url = urlparse(image["url"])
        assert url.scheme == "file"
        path = Path(unquote(url.path))
        assert path.is_file() and path.is_relative_to(out / "pipeline")
        assert (image["naturalWidth"], image["naturalHeight"]) == Image.open(path).size
    assert all(resource.startswith("file://") for resource in loaded.resources)
    with Image.open(shot) as picture:
        assert picture.size[0] == 1280 and picture.size[1] > 3000
        assert len(picture.convert("L").getcolors(1 << 16)) > 50  # a rendered page, not a blank one
