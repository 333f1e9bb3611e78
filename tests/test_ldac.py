"""FITS-LDAC: read what the real SExtractor writes, write the same layout back."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from vircamframe.errors import FitsInputError
from vircamframe.external import run_tool
from vircamframe.refcat.ldac import HEADER_COLUMN, IMHEAD, OBJECTS, read_ldac, write_ldac

REAL = Path(__file__).resolve().parent / "data" / "realdata"  # copies of shared/vircam_realdata
CUTOUT = REAL / "astroquery_ukidss_wfcam_K_cutout.fits"  # image in extension 1 (WSAIMAGE)
PARAMS = ["NUMBER", "X_IMAGE", "Y_IMAGE", "XWIN_IMAGE", "YWIN_IMAGE", "ERRAWIN_IMAGE", "X_WORLD",
          "Y_WORLD", "ERRA_WORLD", "ERRB_WORLD", "ERRTHETA_WORLD", "FLUX_AUTO", "MAG_AUTO", "FLAGS",
          "FLUX_RADIUS"]

needs_sextractor = pytest.mark.skipif(
    shutil.which("source-extractor") is None and shutil.which("sex") is None,
    reason="SExtractor (Debian package source-extractor) not installed",
)


def run_sextractor(folder: Path, params: list[str] = PARAMS) -> Path:
    """The real SExtractor's FITS-LDAC catalogue of the UKIDSS cutout."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cat.param").write_text("\n".join(params) + "\n")
    run_tool(("source-extractor", "sex"),
             [CUTOUT, "-c", "/usr/share/source-extractor/default.sex", "-CATALOG_TYPE", "FITS_LDAC",
              "-CATALOG_NAME", "sex.cat", "-PARAMETERS_NAME", "cat.param", "-FILTER", "N",
              "-DETECT_THRESH", "3", "-VERBOSE_TYPE", "QUIET"],
             cwd=folder, expect=["sex.cat"], timeout=60)
    return folder / "sex.cat"


@pytest.fixture(scope="module")
def sex_catalog(tmp_path_factory) -> Path:
    if not Path("/usr/share/source-extractor/default.sex").is_file():
        pytest.skip("SExtractor's default.sex not found")
    return run_sextractor(tmp_path_factory.mktemp("sex"))


def _tform(value: str) -> str:
    """``'1J'`` and ``'J'`` are the same FITS binary-table format."""
    return value[1:] if value.startswith("1") and not value[1:2].isdigit() else value


@needs_sextractor
def test_reads_real_sextractor_catalogue(sex_catalog):
    catalogues = read_ldac(sex_catalog)
    assert len(catalogues) == 1  # one image extension
    header, objects = catalogues[0]
    image = fits.getheader(CUTOUT, 1)
    assert header["NAXIS1"] == image["NAXIS1"] == 300 and header["NAXIS2"] == 300
    for key in ("CRVAL1", "CRVAL2", "CD1_1", "CTYPE1", "PV2_3"):
        assert header[key] == image[key]
    assert header["XTENSION"] == "IMAGE" and "SEXPIXSK" in header  # SExtractor adds its settings
    assert objects.colnames == PARAMS
    assert len(objects) >= 5
    assert str(objects["X_WORLD"].unit) == "deg" and objects["X_WORLD"].dtype.str[1:] == "f8"
    assert objects["X_WORLD"].description == "Barycenter position along world x axis"
    # positions inside the 300 x 300 image, sky positions near its centre
    assert np.all((objects["X_IMAGE"] > 0) & (objects["X_IMAGE"] < 301))
    assert np.all(np.abs(objects["Y_WORLD"] - 22.014) < 0.02)


@needs_sextractor
def test_written_layout_matches_sextractor(sex_catalog, tmp_path):
    catalogues = read_ldac(sex_catalog)
    out = write_ldac(tmp_path / "copy.cat", catalogues)
    with fits.open(sex_catalog) as real, fits.open(out) as mine:
        assert [h.name for h in real] == [h.name for h in mine] == ["PRIMARY", IMHEAD, OBJECTS]
        assert mine[0].header["NAXIS"] == 0 and mine[0].header["EXTEND"]
        for key in ("TTYPE1", "TFORM1", "TDIM1", "NAXIS1", "NAXIS2", "TFIELDS"):
            assert mine[1].header[key] == real[1].header[key], key
        assert real[1].header["TTYPE1"] == HEADER_COLUMN
        assert mine[2].columns.names == real[2].columns.names
        assert [_tform(f) for f in mine[2].columns.formats] == [_tform(f) for f in real[2].columns.formats]
        assert mine[2].header["NAXIS1"] == real[2].header["NAXIS1"]
        assert mine[2].header.comments["TTYPE4"] == real[2].header.comments["TTYPE4"]
    (header, objects), = catalogues
    (header2, objects2), = read_ldac(out)
    assert [c.image for c in header2.cards] == [c.image for c in header.cards]
    assert objects2.colnames == objects.colnames
    for name in objects.colnames:
        assert objects2[name].unit == objects[name].unit
        np.testing.assert_array_equal(objects2[name], objects[name])


def _table(n: int, scale: float = 1.0) -> Table:
    table = Table({"X_WORLD": np.linspace(10.0, 11.0, n) * scale, "FLAGS": np.arange(n, dtype=np.int16),
                   "NAME": [f"s{i}" for i in range(n)]})
    table["X_WORLD"].unit = "deg"
    return table


def test_write_several_catalogues_and_read_them_back(tmp_path):
    headers = []
    for chip in (1, 2):
        header = fits.Header()
        header["EXTNAME"] = f"DET1.CHIP{chip}"
        header["OBJECT"] = ("it's a 'quoted' name", "with a comment")
        header["CRVAL1"] = 280.0 + chip
        header["HISTORY"] = "one history line"
        header["HIERARCH ESO DET CHIP NO"] = chip
        headers.append(header)
    path = write_ldac(tmp_path / "two.cat", [(headers[0], _table(3)), (headers[1], _table(0))])
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", IMHEAD, OBJECTS, IMHEAD, OBJECTS]
        ncards = len(headers[0]) + 1  # END included, as SExtractor stores it
        assert hdul[1].header["TDIM1"] == f"(80, {ncards})"
        assert hdul[1].header["TFORM1"] == f"{80 * ncards}A"
    back = read_ldac(path)
    assert len(back) == 2
    for (header, table), original, n in zip(back, headers, (3, 0), strict=True):
        assert header == original
        assert header["OBJECT"] == "it's a 'quoted' name"
        assert header["ESO DET CHIP NO"] == original["ESO DET CHIP NO"]
        assert len(table) == n and table.colnames == ["X_WORLD", "FLAGS", "NAME"]
        assert table["FLAGS"].dtype.str[1:] == "i2" and str(table["X_WORLD"].unit) == "deg"
    assert list(back[0][1]["NAME"]) == ["s0", "s1", "s2"]


def test_write_replaces_atomically_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "ref.cat"
    path.write_text("old content")
    write_ldac(path, [(fits.Header(), _table(2))])
    write_ldac(path, [(fits.Header(), _table(4, 2.0))])
    (_, table), = read_ldac(path)
    assert len(table) == 4 and table["X_WORLD"][0] == 20.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.cat"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ref.cat"
    write_ldac(path, [(fits.Header(), _table(2))])

    def disk_full(self, name, **kwargs):
        Path(name).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fits.HDUList, "writeto", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_ldac(path, [(fits.Header(), _table(5))])
    monkeypatch.undo()
    assert len(read_ldac(path)[0][1]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.cat"]


def test_non_ldac_files_are_errors_naming_the_file(tmp_path):
    plain = tmp_path / "plain.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((2, 2)))]).writeto(plain)
    with pytest.raises(FitsInputError, match=r"plain\.fits: not a FITS-LDAC"):
        read_ldac(plain)
    text = tmp_path / "text.cat"
    text.write_text("not fits at all\n")
    with pytest.raises(FitsInputError, match=r"text\.cat"):
        read_ldac(text)
    orphan = tmp_path / "orphan.cat"
    write_ldac(orphan, [(fits.Header(), _table(1))])
    with fits.open(orphan) as hdul:
        fits.HDUList([hdul[0].copy(), hdul[1].copy()]).writeto(tmp_path / "cut.cat")
    with pytest.raises(FitsInputError, match=f"no {OBJECTS}"):
        read_ldac(tmp_path / "cut.cat")
