"""ESO Phase 3 products and the public catalogue: a checker from the SDP standard's keyword lists.

The checker below is written from ESO's Science Data Products standard (ESO-044286), its
keyword tables for imaging products: the keywords each PRODCATG must carry, their types and
allowed values, the PROVi/ASSONi bookkeeping, and TUNITn/TUCDn for every catalogue column.
The products of the tiny night must pass it, and a deliberately broken header must fail it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from vircamframe.chain.manifest import chain_products
from vircamframe.phase3 import ab_offset, saturation_magnitude
from vircamframe.public_catalog import deduplicate, iau_names, match_nearest

# --- the checker (from the SDP standard's keyword tables) ----------------------------------------

_STR, _NUM, _INT, _BOOL = str, (int, float), int, bool
_COMMON = {
    "PRODCATG": _STR, "ORIGIN": _STR, "TELESCOP": _STR, "INSTRUME": _STR, "FILTER": _STR,
    "OBJECT": _STR, "RA": _NUM, "DEC": _NUM, "EQUINOX": _NUM, "RADESYS": _STR, "TIMESYS": _STR,
    "EXPTIME": _NUM, "TEXPTIME": _NUM, "MJD-OBS": _NUM, "MJD-END": _NUM, "PROG_ID": _STR, "OBID1": _INT,
    "NCOMBINE": _INT, "OBSTECH": _STR, "PROCSOFT": _STR, "REFERENC": _STR, "M_EPOCH": _BOOL,
    "SINGLEXP": _BOOL, "PROV1": _STR,
}
_PHOT = {"FLUXCAL": _STR, "PHOTZP": _NUM, "PHOTZPER": _NUM, "PHOTSYS": _STR, "ABMAGLIM": _NUM,
         "ABMAGSAT": _NUM, "PSF_FWHM": _NUM, "ELLIPTIC": _NUM, "SKYSQDEG": _NUM}
MANDATORY = {
    "SCIENCE.IMAGE": {**_COMMON, **_PHOT, "ASSOC1": _STR, "ASSON1": _STR, "IMATYPE": _STR, "ISAMP": _BOOL},
    "ANCILLARY.WEIGHTMAP": dict(_COMMON),
    "SCIENCE.SRCTBL": {**_COMMON, **_PHOT, "APMATCHD": _BOOL},
    "SCIENCE.CATALOGTILE": {**_COMMON, **_PHOT, "APMATCHD": _BOOL, "FPRA1": _NUM, "FPDE1": _NUM},
}
IMAGE_EXTENSION = {"BUNIT": _STR, "CTYPE1": _STR, "CTYPE2": _STR, "CRVAL1": _NUM, "CRVAL2": _NUM,
                   "CRPIX1": _NUM, "CRPIX2": _NUM, "CD1_1": _NUM, "CD1_2": _NUM, "CD2_1": _NUM, "CD2_2": _NUM,
                   "CUNIT1": _STR, "CUNIT2": _STR, "CRDER1": _NUM, "CRDER2": _NUM,
                   "CSYER1": _NUM, "CSYER2": _NUM}
ALLOWED = {"ORIGIN": {"ESO-PARANAL"}, "TELESCOP": {"ESO-VISTA"}, "INSTRUME": {"VIRCAM"},
           "FLUXCAL": {"ABSOLUTE", "UNCALIBRATED"}, "PHOTSYS": {"VEGA", "AB"}, "TIMESYS": {"UTC"},
           "RADESYS": {"ICRS", "FK5"}, "IMATYPE": {"PAWPRINT", "TILE", "OTHER"},
           "FILTER": {"Z", "Y", "J", "H", "Ks", "NB118", "NB980", "NB990"}}
MAIN_UCDS = ("meta.id;meta.main", "pos.eq.ra;meta.main", "pos.eq.dec;meta.main")


def _indexed(header, stem: str) -> list[str]:
    pattern = re.compile(rf"^{stem}(\d+)$")
    found = sorted(int(m.group(1)) for k in header for m in [pattern.match(k)] if m)
    return [header[f"{stem}{i}"] for i in found] if found == list(range(1, len(found) + 1)) else [None]


def check_phase3(path: Path, siblings: dict[str, str] | None = None) -> list[str]:
    """The ways ``path`` breaks the Phase 3 standard (empty: it passes).

    ``siblings``: file name -> PRODCATG of the other products delivered with it (ASSONi).
    """
    problems = []
    with fits.open(path, checksum=True) as hdul:
        primary = hdul[0].header
        category = primary.get("PRODCATG")
        if category not in MANDATORY:
            return [f"PRODCATG {category!r} unknown"]
        for key, kind in MANDATORY[category].items():
            if key not in primary:
                problems.append(f"{key} missing")
            elif not isinstance(primary[key], kind) or (kind != _BOOL and isinstance(primary[key], bool)):
                problems.append(f"{key} has type {type(primary[key]).__name__}")
        for key, allowed in ALLOWED.items():
            if key in primary and primary[key] not in allowed:
                problems.append(f"{key} = {primary[key]!r} not allowed")
        for key, value in primary.items():
            if isinstance(value, float) and not np.isfinite(value):
                problems.append(f"{key} not finite")
        if problems:
            return problems
        if not primary["MJD-END"] > primary["MJD-OBS"]:
            problems.append("MJD-END not after MJD-OBS")
        if primary["TEXPTIME"] < primary["EXPTIME"]:
            problems.append("TEXPTIME below EXPTIME")
        provenance = _indexed(primary, "PROV")
        if None in provenance:
            problems.append("PROVi not numbered 1..n")
        elif category in ("SCIENCE.IMAGE", "ANCILLARY.WEIGHTMAP") and len(provenance) != primary["NCOMBINE"]:
            problems.append(f"{len(provenance)} PROVi for NCOMBINE {primary['NCOMBINE']}")
        if category in ("SCIENCE.IMAGE", "SCIENCE.SRCTBL", "SCIENCE.CATALOGTILE"):
            if not primary["ABMAGSAT"] < primary["ABMAGLIM"]:
                problems.append("ABMAGSAT not brighter than ABMAGLIM")
            if not (0 <= primary["ELLIPTIC"] < 1 and primary["PSF_FWHM"] > 0 and primary["SKYSQDEG"] > 0):
                problems.append("ELLIPTIC, PSF_FWHM or SKYSQDEG out of range")
        names, cats = _indexed(primary, "ASSON"), _indexed(primary, "ASSOC")
        if len(names) != len(cats) or None in names:
            problems.append("ASSONi/ASSOCi inconsistent")
        elif siblings is not None:
            for name, cat in zip(names, cats, strict=True):
                if siblings.get(name) != cat:
                    problems.append(f"ASSON {name} is not a delivered {cat}")
        for index, hdu in enumerate(hdul):
            if "CHECKSUM" not in hdu.header or "DATASUM" not in hdu.header:
                problems.append(f"HDU {index} without CHECKSUM/DATASUM")
        if category in ("SCIENCE.IMAGE", "ANCILLARY.WEIGHTMAP"):
            images = [h for h in hdul if h.is_image and h.data is not None]
            if len(images) != 1:
                problems.append(f"{len(images)} image HDUs")
            else:
                missing = [k for k in IMAGE_EXTENSION if k not in images[0].header]
                if category == "SCIENCE.IMAGE" and missing:
                    problems.append(f"image HDU lacks {', '.join(missing)}")
        else:
            problems += _check_table(hdul)
    return problems


def _check_table(hdul) -> list[str]:
    tables = [h for h in hdul if isinstance(h, fits.BinTableHDU)]
    if len(tables) != 1:
        return [f"{len(tables)} tables"]
    header, problems = tables[0].header, []
    ucds = []
    for i in range(1, header["TFIELDS"] + 1):
        for key in (f"TUNIT{i}", f"TUCD{i}"):
            if key not in header:
                problems.append(f"column {header[f'TTYPE{i}']} without {key[:5]}")
        ucds.append(header.get(f"TUCD{i}", ""))
    for ucd in MAIN_UCDS:
        if ucds.count(ucd) != 1:
            problems.append(f"{ucds.count(ucd)} columns with UCD {ucd}")
    return problems


# --- unit tests: pure logic ---------------------------------------------------------------------

def test_deduplicate_keeps_the_best_of_each_overlap():
    rng = np.random.default_rng(3)
    ra, dec = 150 + rng.uniform(0, 0.1, 300), 2 + rng.uniform(0, 0.1, 300)
    # two overlapping "stack" catalogues: the second repeats the first 100 sources within 0.3"
    ra2 = np.r_[ra, ra[:100] + rng.normal(0, 0.1, 100) / 3600 / np.cos(np.radians(2))]
    dec2 = np.r_[dec, dec[:100] + rng.normal(0, 0.1, 100) / 3600]
    score = np.r_[np.ones(300), np.full(100, 2.0)]
    keep = deduplicate(ra2, dec2, score, 1.0)
    assert len(keep) == 300
    assert set(keep) >= set(range(300, 400))  # the better copies win
    coords = SkyCoord(ra2[keep] * u.deg, dec2[keep] * u.deg)
    _, sep, _ = coords.match_to_catalog_sky(coords, nthneighbor=2)
    assert sep.arcsec.min() > 1.0


def test_names_and_saturation_magnitude():
    assert iau_names(np.array([10.68458]), np.array([41.26917]))[0] == "VIRCAM J004244.29+411609.0"
    assert iau_names(np.array([280.0]), np.array([-0.5]))[0] == "VIRCAM J184000.00-003000.0"
    # a Gaussian of FWHM 3 px peaking at 1000 ADU holds 1.1331 * 9 * 1000 ADU
    assert saturation_magnitude(1000.0, 25.0, 3.0) == pytest.approx(25 - 2.5 * np.log10(10197.9), abs=1e-3)
    assert ab_offset("Ks") == 1.85 and ab_offset("k") == 1.85
    assert list(match_nearest(np.array([1.0, 5.0]), np.array([0.0, 0.0]), np.array([1.0 + 0.5 / 3600]),
                              np.array([0.0]), 1.0)) == [0, -1]


# --- the products of the tiny night --------------------------------------------------------------

@pytest.fixture(scope="module")
def phase3(tile_night):
    """The tiny night's Phase 3 products and public catalogue (conftest's reduced night)."""
    run, out = tile_night
    products = {f.tag: f.path for f in chain_products(out, "PHASE3_IMAGE", "PHASE3_WEIGHT", "PHASE3_SRCTBL",
                                                      "PUBLIC_CATALOGUE")}
    return run, products


@pytest.mark.slow
def test_phase3_products_pass_the_checker(phase3):
    _, products = phase3
    assert set(products) == {"PHASE3_IMAGE", "PHASE3_WEIGHT", "PHASE3_SRCTBL", "PUBLIC_CATALOGUE"}
    siblings = {p.name: fits.getval(p, "PRODCATG") for p in products.values()}
    for path in products.values():
        assert check_phase3(path, siblings) == [], path.name
    image = fits.getheader(products["PHASE3_IMAGE"])
    assert image["NCOMBINE"] == 12 and image["PROV1"].startswith("VCAM.")
    assert image["TEXPTIME"] == pytest.approx(12 * 20.0)
    assert fits.getval(products["PHASE3_SRCTBL"], "PROV1") == products["PHASE3_IMAGE"].name


@pytest.mark.slow
def test_checker_fails_broken_headers(phase3, tmp_path):
    _, products = phase3
    siblings = {p.name: fits.getval(p, "PRODCATG") for p in products.values()}
    breakages = {
        "missing": lambda h: h.remove("ABMAGLIM"),
        "value": lambda h: h.set("PHOTSYS", "STMAG"),
        "type": lambda h: h.set("NCOMBINE", "twelve"),
        "provenance": lambda h: h.remove("PROV3"),
        "association": lambda h: h.set("ASSON1", "nothing.fits"),
    }
    for name, breakage in breakages.items():
        with fits.open(products["PHASE3_IMAGE"]) as hdul:
            breakage(hdul[0].header)
            broken = tmp_path / f"{name}.fits"
            hdul.writeto(broken, checksum=True)
        assert check_phase3(broken, siblings), name
    with fits.open(products["PHASE3_SRCTBL"]) as hdul:
        del hdul[1].header["TUCD2"]
        hdul.writeto(tmp_path / "ucd.fits", checksum=True)
    assert check_phase3(tmp_path / "ucd.fits")


@pytest.mark.slow
def test_public_catalogue_unique_and_2mass_for_saturated_stars(phase3):
    run, products = phase3
    table = Table.read(products["PUBLIC_CATALOGUE"], hdu="PHASE3CATALOG")
    coords = SkyCoord(np.asarray(table["RA"]) * u.deg, np.asarray(table["DEC"]) * u.deg)
    _, sep, _ = coords.match_to_catalog_sky(coords, nthneighbor=2)
    assert sep.arcsec.min() > 1.0  # no duplicates within 1 arcsec
    assert len(set(table["ID"])) == len(table)
    twomass = table[table["MAGSRC"] == "2MASS"]
    assert len(twomass) >= 2 and np.all(twomass["QFLAG"] & 2)
    truth = Table.read(run / "truth" / "stars.fits")
    stars = SkyCoord(np.asarray(truth["RA_OBS"]) * u.deg, np.asarray(truth["DEC_OBS"]) * u.deg)
    index, distance, _ = SkyCoord(np.asarray(twomass["RA"]) * u.deg,
                                  np.asarray(twomass["DEC"]) * u.deg).match_to_catalog_sky(stars)
    assert np.all(distance.arcsec < 1.0)
    assert np.max(np.abs(np.asarray(twomass["MAG"]) - np.asarray(truth["MAG"])[index])) < 0.1
    # every saturated source is flagged: 2MASS magnitude, or none found
    sat = (np.asarray(table["SFLAGS"]) & 4) > 0
    assert np.all(np.asarray(table["QFLAG"])[sat] & 6)
