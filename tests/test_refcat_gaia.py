"""Gaia preparation: RUWE cut, epoch propagation (checked against astropy), error inflation,
the SCAMP reference file (read back by the real SCAMP)."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.io.votable import parse as parse_votable
from astropy.table import MaskedColumn, Table
from astropy.time import Time

from vircamframe.errors import RefcatError
from vircamframe.external import run_tool
from vircamframe.refcat import GAIA_DR3, read_catalog
from vircamframe.refcat.gaia import mean_epoch, prepare_gaia, propagate, write_scamp_reference
from vircamframe.refcat.ldac import IMHEAD, OBJECTS, read_ldac

REAL = Path(__file__).resolve().parent / "data" / "realdata"  # copies of shared/vircam_realdata
MAS = 3.6e6  # mas per degree


def astropy_positions(ra, dec, pmra, pmdec, epoch) -> SkyCoord:
    """Positions at ``epoch`` by astropy (ERFA's pmsafe: space motion, no parallax, RV 0)."""
    coord = SkyCoord(ra * u.deg, dec * u.deg, pm_ra_cosdec=pmra * u.mas / u.yr, pm_dec=pmdec * u.mas / u.yr,
                     obstime=Time(2016.0, format="jyear"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ERFA warns that the distance was made up
        return coord.apply_space_motion(new_obstime=Time(epoch, format="jyear"))


def separation_mas(ra, dec, coord: SkyCoord) -> np.ndarray:
    return SkyCoord(ra * u.deg, dec * u.deg).separation(coord).to_value(u.mas)


def gaia_table(n: int, rng: np.random.Generator, **columns) -> Table:
    """Synthetic Gaia DR3 rows in VizieR names (defaults: near 280, -60, slow, RUWE 1)."""
    table = Table({
        "RA_ICRS": rng.uniform(279.9, 280.1, n), "DE_ICRS": rng.uniform(-60.05, -59.95, n),
        "e_RA_ICRS": np.full(n, 0.2), "e_DE_ICRS": np.full(n, 0.2),
        "pmRA": rng.normal(0.0, 5.0, n), "pmDE": rng.normal(0.0, 5.0, n),
        "e_pmRA": np.full(n, 0.1), "e_pmDE": np.full(n, 0.1),
        "Gmag": rng.uniform(14.0, 19.0, n), "RUWE": np.full(n, 1.0),
    })
    for name, values in columns.items():
        table[name] = values
    for name, unit in (("RA_ICRS", "deg"), ("DE_ICRS", "deg"), ("e_RA_ICRS", "mas"), ("e_DE_ICRS", "mas"),
                       ("pmRA", "mas / yr"), ("pmDE", "mas / yr"), ("e_pmRA", "mas / yr"),
                       ("e_pmDE", "mas / yr"), ("Gmag", "mag")):
        table[name].unit = unit
    table.meta["EPOCH"] = 2016.0
    return table


# --- propagation ------------------------------------------------------------------------------

def test_propagation_agrees_with_astropy_over_the_sky_and_at_the_poles():
    rng = np.random.default_rng(7)
    n = 3000
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))  # uniform over the sphere
    dec[:200] = np.sign(rng.normal(size=200)) * rng.uniform(89.0, 89.9999, 200)  # near the poles
    pmra, pmdec = rng.normal(0.0, 300.0, n), rng.normal(0.0, 300.0, n)
    pmra[:10], pmdec[10:20] = 6000.0, -10000.0  # Barnard's-star-like and faster
    dt = rng.uniform(-10.0, 10.0, n)
    dt[:5] = [-10.0, 10.0, 0.0, -10.0, 10.0]
    ours = propagate(ra, dec, pmra, pmdec, dt)
    theirs = astropy_positions(ra, dec, pmra, pmdec, 2016.0 + dt)
    assert separation_mas(*ours, theirs).max() < 0.01  # required: 0.1 mas; found ~1e-6 mas
    # and a position near 0/360 stays in [0, 360)
    ra0, _ = propagate(np.array([0.0]), np.array([0.0]), np.array([-100.0]), np.array([0.0]), 1.0)
    assert 359.9 < ra0[0] < 360.0


def test_prepared_positions_agree_with_astropy():
    rng = np.random.default_rng(3)
    table = gaia_table(500, rng, pmRA=rng.normal(0, 200, 500), pmDE=rng.normal(0, 200, 500))
    for epoch in (2006.0, 2009.7, 2016.0, 2026.0):
        out = prepare_gaia(table, epoch)
        theirs = astropy_positions(np.asarray(table["RA_ICRS"]), np.asarray(table["DE_ICRS"]),
                                   np.asarray(table["pmRA"]), np.asarray(table["pmDE"]), epoch)
        assert separation_mas(np.asarray(out["RA"]), np.asarray(out["DEC"]), theirs).max() < 0.01
        assert out.meta["EPOCH"] == epoch and out.meta["REFEPOCH"] == 2016.0


def test_zero_interval_changes_nothing():
    rng = np.random.default_rng(4)
    table = gaia_table(50, rng)
    out = prepare_gaia(table, 2016.0)
    np.testing.assert_allclose(out["RA"], table["RA_ICRS"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["DEC"], table["DE_ICRS"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(out["ERR_RA"], table["e_RA_ICRS"])
    np.testing.assert_array_equal(out["ERR_DEC"], table["e_DE_ICRS"])


def test_large_proper_motions_must_be_propagated():
    """500 mas/yr over 8 yr is 4": without propagation the references are useless."""
    rng = np.random.default_rng(11)
    n = 200
    angle = rng.uniform(0.0, 2 * np.pi, n)
    pmra, pmdec = 500.0 * np.sin(angle), 500.0 * np.cos(angle)
    table = gaia_table(n, rng, pmRA=pmra, pmDE=pmdec)
    epoch = 2008.0
    truth = astropy_positions(np.asarray(table["RA_ICRS"]), np.asarray(table["DE_ICRS"]), pmra, pmdec, epoch)
    out = prepare_gaia(table, epoch)
    assert separation_mas(np.asarray(out["RA"]), np.asarray(out["DEC"]), truth).max() < 0.01
    stale = separation_mas(np.asarray(table["RA_ICRS"]), np.asarray(table["DE_ICRS"]), truth)
    assert stale.min() > 1000.0  # > 1" for every star (4" expected)
    np.testing.assert_allclose(stale, 4000.0, rtol=1e-6)


# --- errors and selection ---------------------------------------------------------------------

def test_errors_are_inflated_by_the_proper_motion_errors():
    rng = np.random.default_rng(5)
    table = gaia_table(2, rng, e_RA_ICRS=[3.0, 0.05], e_pmRA=[0.4, 0.012], e_DE_ICRS=[0.5, 0.09],
                       e_pmDE=[0.12, 0.0])
    for epoch in (2006.0, 2026.0):  # |dt| = 10 yr either way
        out = prepare_gaia(table, epoch)
        # sqrt(3^2 + 4^2), sqrt(.05^2 + .12^2)
        np.testing.assert_allclose(out["ERR_RA"], [5.0, 0.13], rtol=1e-12)
        np.testing.assert_allclose(out["ERR_DEC"], [1.3, 0.09], rtol=1e-12)  # sqrt(.5^2 + 1.2^2)
        assert str(out["ERR_RA"].unit) == "mas" and str(out["RA"].unit) == "deg"
    out = prepare_gaia(table, 2016.0 + 2.5)
    np.testing.assert_allclose(out["ERR_RA"], [np.hypot(3.0, 1.0), np.hypot(0.05, 0.03)], rtol=1e-12)


def test_ruwe_cut_and_rows_without_proper_motion():
    rng = np.random.default_rng(6)
    table = gaia_table(7, rng, RUWE=[1.0, 1.4999, 1.5, 2.0, np.nan, 1.1, 1.2])
    table["pmRA"][5] = np.nan  # a two-parameter solution has no proper motion
    table["e_pmDE"][6] = np.nan
    table["ID"] = np.arange(7)
    assert list(prepare_gaia(table, 2012.0)["ID"]) == [0, 1]
    assert list(prepare_gaia(table, 2012.0, ruwe_max=2.1)["ID"]) == [0, 1, 2, 3]
    assert len(table) == 7 and "RA" not in table.colnames  # the input is left alone


def test_magnitude_limits_and_originals_kept():
    rng = np.random.default_rng(8)
    table = gaia_table(4, rng, Gmag=[12.0, 15.0, 18.0, np.nan])
    table["e_Gmag"] = [0.001, 0.002, 0.003, 0.004]
    out = prepare_gaia(table, 2012.0, mag_limits=(12.0, 17.0))
    assert list(out["Gmag"]) == [12.0, 15.0]
    assert list(out["MAG"]) == [12.0, 15.0] and list(out["MAGERR"]) == [0.001, 0.002]
    assert set(table.colnames) < set(out.colnames)
    assert len(prepare_gaia(table, 2012.0)) == 3  # no G: dropped
    assert out.meta["RUWEMAX"] == 1.5


def test_archive_names_and_units_are_understood():
    rng = np.random.default_rng(9)
    table = gaia_table(3, rng)
    table.rename_columns(["RA_ICRS", "pmRA", "RUWE"], ["ra", "pmra", "ruwe"])  # Gaia archive names
    table["e_RA_ICRS"] = table["e_RA_ICRS"].to(u.arcsec)  # 0.2 mas in arcsec
    table["pmDE"] = MaskedColumn(table["pmDE"], mask=[False, True, False])  # as VizieR's tables come
    out = prepare_gaia(table, 2016.0)
    assert len(out) == 2  # the masked proper motion is a missing one
    np.testing.assert_allclose(out["ERR_RA"], 0.2, rtol=1e-12)
    table["pmDE"].unit = "deg"
    with pytest.raises(RefcatError, match="pmDE"):
        prepare_gaia(table, 2016.0)
    with pytest.raises(RefcatError, match="lacks column"):
        prepare_gaia(Table({"RA_ICRS": [1.0]}), 2016.0)


def test_real_gaia_rows():
    """The 5 real archive rows: the two two-parameter solutions (no pm, no RUWE) are dropped."""
    table = read_catalog(REAL / "astroquery_gaia_dr3_cone_280_-60.ecsv", GAIA_DR3)
    out = prepare_gaia(table, 2009.5)
    assert list(out["Source"]) == [6636090334814214528, 6636090339113063296, 6636090334814217600]
    kept = np.isin(table["Source"], out["Source"])
    theirs = astropy_positions(np.asarray(table["RA_ICRS"][kept]), np.asarray(table["DE_ICRS"][kept]),
                               np.asarray(table["pmRA"][kept]), np.asarray(table["pmDE"][kept]), 2009.5)
    assert separation_mas(np.asarray(out["RA"]), np.asarray(out["DEC"]), theirs).max() < 0.01
    # the fast one (-30 mas/yr in RA) moved 0.2" in 6.5 yr
    moved = separation_mas(np.asarray(out["RA_ICRS"]), np.asarray(out["DE_ICRS"]),
                           SkyCoord(out["RA"], out["DEC"], unit="deg"))
    assert moved[1] == pytest.approx(6.5 * np.hypot(out["pmRA"][1], out["pmDE"][1]), rel=1e-6)
    expected = np.hypot(np.asarray(out["e_RA_ICRS"], float), 6.5 * np.asarray(out["e_pmRA"], float))
    np.testing.assert_allclose(out["ERR_RA"], expected, rtol=1e-12)
    np.testing.assert_allclose(out["MAGERR"], 1.0857362 / np.asarray(out["phot_g_mean_flux_over_error"]),
                               rtol=1e-6)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    from vircamframe.simulate import simulate
    from vircamframe.simulate.truth import load_truth

    run = tmp_path_factory.mktemp("gaia-sim") / "run"
    simulate(run, preset="tiny", seed=1, what="science")
    return run, load_truth(run)


def test_simulated_catalogue_propagates_to_the_true_positions(simulated):
    """The simulator's Gaia table (errors drawn from e_RA, e_pmRA ...) against the true
    positions at the night's epoch: residuals over the inflated errors are unit normal."""
    run, truth = simulated
    gaia = read_catalog(run / "refcat" / "gaia_dr3.fits", GAIA_DR3)
    stars = Table.read(run / "truth" / "stars.fits")
    stars = stars[stars["G"] < 21.0]  # the simulator's Gaia rows, in order
    assert len(stars) == len(gaia)
    gaia["ROW"] = np.arange(len(gaia))
    epoch = truth["epoch"]
    out = prepare_gaia(gaia, epoch)
    true = stars[out["ROW"]]
    assert np.all(true["KIND"] == 0)  # galaxies (RUWE 2-8) are gone
    assert len(out) > 0.9 * np.count_nonzero(stars["KIND"] == 0)
    cosd = np.cos(np.radians(true["DEC_OBS"]))
    dra = (np.asarray(out["RA"]) - true["RA_OBS"]) * cosd * MAS / out["ERR_RA"]
    ddec = (np.asarray(out["DEC"]) - true["DEC_OBS"]) * MAS / out["ERR_DEC"]
    for z in (dra, ddec):  # ~1e5 stars: std 1.000 +- 0.003
        assert 0.97 < np.std(z) < 1.03 and abs(np.mean(z)) < 0.02
    uninflated = ddec * out["ERR_DEC"] / out["e_DE_ICRS"]
    assert np.std(uninflated) > 2.0  # the catalogue errors alone understate the error at the epoch
    stale = (np.asarray(out["DE_ICRS"]) - true["DEC_OBS"]) * MAS / out["ERR_DEC"]
    assert np.std(stale) > 10.0  # without propagation the stars are many sigma off (found ~65)


def test_mean_epoch():
    assert mean_epoch([51544.5]) == 2000.0  # J2000.0 = MJD 51544.5, J2016.0 = MJD 57388.5
    assert mean_epoch(np.array([57388.5 - 365.25, 57388.5 + 365.25])) == pytest.approx(2016.0, abs=1e-12)
    assert mean_epoch([54384.55006]) == pytest.approx(2007.775633, abs=1e-6)
    for bad in ([], [51544.5, np.nan]):
        with pytest.raises(ValueError):
            mean_epoch(bad)


# --- the SCAMP reference file -----------------------------------------------------------------

COLUMNS = ["X_WORLD", "Y_WORLD", "ERRA_WORLD", "ERRB_WORLD", "ERRTHETA_WORLD", "MAG", "MAGERR", "OBSDATE",
           "FLAGS"]


def test_scamp_reference_layout_columns_and_units(tmp_path):
    rng = np.random.default_rng(12)
    table = gaia_table(3, rng, e_RA_ICRS=[0.3, 0.1, 0.2], e_DE_ICRS=[0.1, 0.3, 0.2],
                       e_pmRA=[0.0, 0.0, 0.0], e_pmDE=[0.0, 0.0, 0.0])
    epoch = 2010.25
    prepared = prepare_gaia(table, epoch)
    path = write_scamp_reference(tmp_path / "gaia.ldac", prepared, epoch)
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", IMHEAD, OBJECTS]
        formats = dict(zip(hdul[2].columns.names, hdul[2].columns.formats, strict=True))
    assert formats["X_WORLD"] == formats["Y_WORLD"] == formats["OBSDATE"] == "D"
    assert formats["FLAGS"] == "I"  # SCAMP reads FLAGS as 16-bit
    (header, objects), = read_ldac(path)
    assert objects.colnames == COLUMNS
    units = {name: str(objects[name].unit) for name in COLUMNS if objects[name].unit is not None}
    assert units == {"X_WORLD": "deg", "Y_WORLD": "deg", "ERRA_WORLD": "deg", "ERRB_WORLD": "deg",
                     "ERRTHETA_WORLD": "deg", "MAG": "mag", "MAGERR": "mag", "OBSDATE": "yr"}
    np.testing.assert_array_equal(objects["X_WORLD"], prepared["RA"])
    np.testing.assert_array_equal(objects["Y_WORLD"], prepared["DEC"])
    np.testing.assert_allclose(objects["ERRA_WORLD"] * MAS, [0.3, 0.3, 0.2], rtol=1e-6)
    np.testing.assert_allclose(objects["ERRB_WORLD"] * MAS, [0.1, 0.1, 0.2], rtol=1e-6)
    assert list(objects["ERRTHETA_WORLD"]) == [0.0, 90.0, 0.0]
    assert np.all(objects["OBSDATE"] == epoch) and np.all(objects["FLAGS"] == 0)
    assert np.all(objects["MAGERR"] == np.float32(0.01))  # no G errors in the input
    assert header["EPOCH"] == epoch and header["REFEPOCH"] == 2016.0 and header["NREF"] == 3
    with pytest.raises(ValueError, match="epoch"):
        write_scamp_reference(tmp_path / "wrong.ldac", prepared, 2016.0)


needs_astromatic = pytest.mark.skipif(
    shutil.which("scamp") is None or not (shutil.which("source-extractor") or shutil.which("sex")),
    reason="SCAMP and SExtractor (Debian packages scamp, source-extractor) needed",
)


def _scamp(folder: Path, catalog: str, reference: str) -> tuple[str, Table]:
    """Run SCAMP on ``catalog`` against the FILE reference; its output and the field-group stats."""
    xml = f"{reference}.xml"
    proc = run_tool("scamp", [catalog, "-ASTREF_CATALOG", "FILE", "-ASTREFCAT_NAME", reference,
                              "-SOLVE_ASTROM", "N", "-SOLVE_PHOTOM", "N", "-MATCH", "N", "-CHECKPLOT_TYPE",
                              "NONE", "-WRITE_XML", "Y", "-XML_NAME", xml, "-NTHREADS", "1"],
                    cwd=folder, expect=[xml], timeout=120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SCAMP's VOTable is not strictly valid
        votable = parse_votable(folder / xml)
    groups = next(t for t in votable.iter_tables() if t.name == "FGroups").to_table()
    return proc.stdout + proc.stderr, groups


@needs_astromatic
def test_real_scamp_reads_the_reference(tmp_path):
    """SExtractor on the real UKIDSS cutout (MJD 54384.55, J2007.78); a Gaia-like reference whose
    stars move 300 mas/yr and sit, at that epoch, on the detected sources. SCAMP (without
    solving: the image's WCS is kept) cross-identifies them at ~0.01"; the same stars at their
    2016.0 positions are 2.5" off and SCAMP finds few of them."""
    from test_ldac import run_sextractor

    if not Path("/usr/share/source-extractor/default.sex").is_file():
        pytest.skip("SExtractor's default.sex not found")
    params = ["NUMBER", "XWIN_IMAGE", "YWIN_IMAGE", "ERRAWIN_IMAGE", "ERRBWIN_IMAGE", "ERRTHETAWIN_IMAGE",
              "X_WORLD", "Y_WORLD", "FLUX_AUTO", "FLUXERR_AUTO", "MAG_AUTO", "MAGERR_AUTO", "FLAGS"]
    run_sextractor(tmp_path, params)
    (tmp_path / "sex.ahead").write_text("MJD-OBS =          54384.55006\nEND\n")
    (_, detected), = read_ldac(tmp_path / "sex.cat")
    n = len(detected)
    assert n >= 8
    epoch = mean_epoch([54384.55006])
    rng = np.random.default_rng(2)
    pmra, pmdec = rng.normal(0.0, 300.0, n), rng.normal(0.0, 300.0, n)
    ra16, dec16 = propagate(np.asarray(detected["X_WORLD"]), np.asarray(detected["Y_WORLD"]), pmra, pmdec,
                            2016.0 - epoch)
    gaia = gaia_table(n, rng, RA_ICRS=ra16, DE_ICRS=dec16, pmRA=pmra, pmDE=pmdec,
                      Gmag=np.asarray(detected["MAG_AUTO"]) + 25.0)
    write_scamp_reference(tmp_path / "ref.cat", prepare_gaia(gaia, epoch), epoch)
    write_scamp_reference(tmp_path / "stale.cat", prepare_gaia(gaia, 2016.0), 2016.0)

    output, groups = _scamp(tmp_path, "sex.cat", "ref.cat")
    loaded = re.search(r"(\d+) astrometric references loaded from ref\.cat", output)
    assert loaded and int(loaded.group(1)) == n
    matched = int(groups["AstromNDets_Reference"][0])
    sigma = np.asarray(groups["AstromSigma_Reference"][0], dtype=float)  # arcsec, per axis
    assert matched >= n - 6 and matched >= 8
    assert np.all(sigma < 0.05)

    _, stale = _scamp(tmp_path, "sex.cat", "stale.cat")
    stale_sigma = np.asarray(stale["AstromSigma_Reference"][0], dtype=float)
    assert int(stale["AstromNDets_Reference"][0]) < matched and np.all(stale_sigma > 0.3)
