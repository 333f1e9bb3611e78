"""Reference catalogues: the real archive fixtures parse into VizieR names; the local provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from vircamframe.errors import RefcatError
from vircamframe.refcat import GAIA_DR3, TWOMASS_PSC, cone, read_catalog, spec_for
from vircamframe.registry import strategies

REAL = Path(__file__).resolve().parent / "data" / "realdata"  # copies of shared/vircam_realdata


def test_real_gaia_archive_rows_read_with_vizier_names():
    table = read_catalog(REAL / "astroquery_gaia_dr3_cone_280_-60.ecsv", GAIA_DR3)
    assert len(table) == 5
    assert set(GAIA_DR3.required) <= set(table.colnames)
    assert str(table["pmRA"].unit) == "mas / yr" and str(table["e_RA_ICRS"].unit) == "mas"
    # the first row is Gaia DR3 source 6636090334814214528 at (280.00025, -60.00003)
    assert table["RA_ICRS"][0] == pytest.approx(280.0002534562339, abs=1e-12)
    assert table["RUWE"][0] == pytest.approx(1.0521834, rel=1e-6)


def test_real_irsa_2mass_votable_reads_with_vizier_names():
    table = read_catalog(REAL / "astroquery_irsa_2mass_fp_psc_polygon.xml", TWOMASS_PSC)
    assert len(table) == 7
    assert list(table["Qflg"][:2]) == ["AAA", "BBC"]
    assert table["Jmag"][0] == pytest.approx(15.237, abs=1e-6)
    assert table["RAJ2000"][0] == pytest.approx(10.015696, abs=1e-6)  # IRSA stores float32


def test_missing_column_names_the_file_and_the_columns(tmp_path):
    path = tmp_path / "gaia.ecsv"
    Table({"RA_ICRS": [1.0], "DE_ICRS": [2.0], "Gmag": [15.0]}).write(path)
    with pytest.raises(RefcatError) as err:
        read_catalog(path, GAIA_DR3)
    message = str(err.value)
    assert message.startswith(f"{path}: not a I/355/gaiadr3 table: lacks column(s) e_RA_ICRS, e_DE_ICRS,")
    assert "RUWE" in message and "\n" not in message


@pytest.mark.parametrize("name, reason", [("absent.fits", "not found"),
                                          ("cat.txt", "unknown catalogue format")])
def test_bad_files_are_one_line_errors(tmp_path, name, reason):
    path = tmp_path / name
    if name.endswith(".txt"):
        path.write_text("x")
    with pytest.raises(RefcatError, match=reason):
        read_catalog(path, TWOMASS_PSC)


def test_cone_agrees_with_astropy_separation():
    rng = np.random.default_rng(3)
    ra = rng.uniform(279, 281, 4000)
    dec = rng.uniform(-61, -59, 4000)
    table = Table({"RAJ2000": ra, "DEJ2000": dec})
    inside = cone(table, TWOMASS_PSC, 280.2, -60.1, 0.5)
    truth = SkyCoord(ra, dec, unit="deg").separation(SkyCoord(280.2, -60.1, unit="deg")).deg <= 0.5
    assert len(inside) == truth.sum() > 1000
    assert set(inside["RAJ2000"]) == set(ra[truth])


def test_local_provider_is_registered_and_cone_selects(tmp_path):
    rng = np.random.default_rng(4)
    rows = {c: rng.uniform(0, 1, 500) for c in TWOMASS_PSC.required if c != "Qflg"}
    rows["RAJ2000"], rows["DEJ2000"] = rng.uniform(9, 11, 500), rng.uniform(9, 11, 500)
    rows["Qflg"] = ["AAA"] * 500
    path = tmp_path / "2mass.fits"
    Table(rows).write(path)
    provider = strategies("reference_catalog").get("local").implementation
    found = provider(10.0, 10.0, 0.3, role="photometric", files=[path])
    expected = cone(Table(rows), TWOMASS_PSC, 10.0, 10.0, 0.3)
    assert 0 < len(found) == len(expected) < 500
    with pytest.raises(RefcatError, match=r"no local II/246 file given \(tag REFCAT_PHOTOM"):
        provider(10.0, 10.0, 0.3, role="photometric")
    with pytest.raises(RefcatError, match="unknown reference-catalogue role 'colour'"):
        spec_for("colour")
