"""ZPN -> TAN/TPV conversion of the per-detector WCS (vircamframe.wcs)."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import angular_separation
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from vircamframe.errors import FitsInputError
from vircamframe.fitsio import clean_header
from vircamframe.wcs import replace_wcs, tan_header, wcs_difference

SEX = shutil.which("source-extractor") or shutil.which("sex")
SEX_SHARE = Path("/usr/share/source-extractor")


def _wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def _off_axis_deg(header: fits.Header, shape: tuple[int, int]) -> float:
    """Distance of the chip centre from the optical axis (raw CRPIX), degrees."""
    w = _wcs(header)
    offset = np.array([(shape[1] + 1) / 2, (shape[0] + 1) / 2]) - w.wcs.crpix
    return float(np.hypot(*(w.wcs.cd @ offset)))


@pytest.fixture(scope="module")
def tiny_chips(tmp_path_factory) -> list[tuple[fits.Header, tuple[int, int]]]:
    """(clean raw header, shape) of the 16 detectors of a simulated tiny OBJECT frame."""
    from vircamframe.simulate.core import simulate_exposure

    path = simulate_exposure(tmp_path_factory.mktemp("wcs_tiny"), preset="tiny", seed=3, tag="OBJECT")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdul:
            chips = [(clean_header(hdu.header), hdu.data.shape) for hdu in hdul[1:]]
    assert len(chips) == 16
    return chips


@pytest.fixture(scope="module")
def full_chips() -> list[tuple[fits.Header, tuple[int, int]]]:
    """The same for full-size (2048 x 2048, 0.34"/px) detectors: headers only, no images."""
    from vircamframe.simulate.focalplane import chip_geometries
    from vircamframe.simulate.headers import extension_header
    from vircamframe.simulate.plan import make_plan
    from vircamframe.simulate.presets import get_preset

    plan = make_plan(get_preset("full"), 3, "J")
    fp = next(f for f in plan.frames if f.tag == "OBJECT")
    return [(clean_header(extension_header(fp, chip, 2048, f"VRG-{1000 + 37 * chip.chip}")), (2048, 2048))
            for chip in chip_geometries(2048)]


@pytest.mark.parametrize("preset", ["tiny", "full"])
def test_tpv_matches_raw_zpn_on_every_detector(preset, request):
    chips = request.getfixturevalue(f"{preset}_chips")
    errors = []
    for raw, shape in chips:
        assert _wcs(raw).wcs.ctype[0] == "RA---ZPN"
        tpv = tan_header(raw, shape)
        assert tpv["CTYPE1"] == "RA---TPV" and tpv["CTYPE2"] == "DEC--TPV"
        assert (tpv["CRPIX1"], tpv["CRPIX2"]) == ((shape[1] + 1) / 2, (shape[0] + 1) / 2)
        assert [f"PV1_{k}" in tpv for k in (0, 10, 11)] == [True, True, False]
        errors.append(wcs_difference(raw, tpv, shape))
    print(f"\n{preset}: TPV(3) vs ZPN max error per chip (arcsec): {np.round(errors, 5).tolist()}")
    # measured: ~0.9e-3 (central chips) .. 2.0e-3 arcsec (outer chips)
    assert max(errors) < 0.01
    assert min(errors) > 0  # a real comparison, not a header compared with itself


def test_degree_one_is_much_worse_off_axis(tiny_chips):
    outer = [(raw, shape) for raw, shape in tiny_chips if _off_axis_deg(raw, shape) > 0.6]
    assert len(outer) == 4  # the corner detectors 1, 4, 13, 16 (~0.69 deg off axis)
    for raw, shape in outer:
        tan = tan_header(raw, shape, degree=1)
        assert tan["CTYPE1"] == "RA---TAN" and not any(k.startswith("PV") for k in tan)
        err1 = wcs_difference(raw, tan, shape)
        err3 = wcs_difference(raw, tan_header(raw, shape, degree=3), shape)
        print(f"\nchip {raw['ESO DET CHIP NO']}: degree 1 {err1:.3f}\", degree 3 {err3:.2e}\"")
        assert 1.0 < err1 < 3.0  # measured ~1.6 arcsec
        assert err1 > 300 * err3


def test_round_trip_through_fits_file(tiny_chips, tmp_path):
    raw, shape = tiny_chips[0]
    tpv = tan_header(raw, shape)
    path = tmp_path / "chip1.fits"
    fits.ImageHDU(np.zeros(shape, np.float32), header=replace_wcs(raw, tpv)).writeto(path)
    back = fits.getheader(path, 1)
    assert back["CTYPE1"] == "RA---TPV" and back["ESO DET CHIP NO"] == 1
    assert wcs_difference(tpv, back, shape) < 1e-6
    assert wcs_difference(raw, back, shape) < 0.01
    x, y = np.array([1.0, 100.5, 256.0]), np.array([1.0, 17.25, 256.0])
    np.testing.assert_allclose(_wcs(back).all_pix2world(x, y, 1), _wcs(tpv).all_pix2world(x, y, 1),
                               rtol=0, atol=1e-10)


def test_sextractor_reads_tpv_like_astropy(tiny_chips, tmp_path):
    raw, shape = tiny_chips[0]  # a corner detector: the PV terms are worth ~1.6 arcsec there
    tpv = tan_header(raw, shape)
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[1 : shape[0] + 1, 1 : shape[1] + 1]
    image = 100.0 + rng.normal(0.0, 2.0, shape)
    stars = rng.uniform(20, shape[0] - 20, size=(12, 2))
    for x0, y0 in stars:
        image += 5000.0 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 1.5**2))
    fits.PrimaryHDU(image.astype(np.float32), header=replace_wcs(raw, tpv)).writeto(tmp_path / "img.fits")
    (tmp_path / "cat.param").write_text("X_IMAGE\nY_IMAGE\nALPHA_J2000\nDELTA_J2000\n")
    (tmp_path / "minimal.sex").write_text(
        "CATALOG_NAME cat.fits\nCATALOG_TYPE FITS_1.0\nPARAMETERS_NAME cat.param\n"
        f"DETECT_THRESH 10\nDETECT_MINAREA 3\nFILTER Y\nFILTER_NAME {SEX_SHARE / 'default.conv'}\n"
        "BACK_SIZE 64\nSATUR_LEVEL 1e9\nVERBOSE_TYPE QUIET\n"
    )
    assert SEX is not None, "source-extractor is not installed (make test installs it)"
    proc = subprocess.run([SEX, "img.fits", "-c", "minimal.sex", "-CATALOG_TYPE", "FITS_1.0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cat = fits.getdata(tmp_path / "cat.fits", 1)
    assert len(cat) == len(stars)

    def arcsec_from_sex(header):
        ra, dec = _wcs(header).all_pix2world(cat["X_IMAGE"], cat["Y_IMAGE"], 1)
        sep = angular_separation(*np.radians([cat["ALPHA_J2000"], cat["DELTA_J2000"], ra, dec]))
        return np.degrees(sep) * 3600.0

    assert arcsec_from_sex(tpv).max() < 0.05
    assert arcsec_from_sex(raw).max() < 0.05  # so SExtractor positions are the raw ZPN's
    tan_only = tpv.copy()  # the same header without its PV terms is measurably off
    for key in [k for k in tan_only if k.startswith("PV")]:
        del tan_only[key]
    tan_only["CTYPE1"], tan_only["CTYPE2"] = "RA---TAN", "DEC--TAN"
    assert arcsec_from_sex(tan_only).max() > 0.3


def test_replace_wcs_drops_every_old_keyword(tiny_chips):
    clean, shape = tiny_chips[0]
    raw = clean.copy()  # with more WCS cards that must go too
    raw["PC1_1"], raw["CDELT1"], raw["LONPOLE"], raw["CTYPE1A"] = 1.0, 1.0, 180.0, "RA---ZPN"
    for degree in (1, 3):
        new = replace_wcs(raw, tan_header(clean, shape, degree=degree))
        text = new.tostring()
        assert "ZPN" not in text and "-10300" not in text
        assert not {"PC1_1", "CDELT1", "LONPOLE", "CTYPE1A"} & set(new)
        assert ("PV2_3" in new) == (degree == 3)
        if degree == 3:
            assert new["PV2_3"] == 0.0  # TPV radial term, not the ZPN's 44
        assert new["ESO DET CHIP NO"] == 1 and new["ESO DET NDIT"] == raw["ESO DET NDIT"]
        assert new["EXTNAME"] == "DET1.CHIP1" and new["RADESYS"] == "ICRS"
        assert list(new).count("CTYPE1") == 1
    # the original header is untouched
    assert raw["CTYPE1"] == "RA---ZPN" and raw["PV2_3"] == 44.0


def test_missing_wcs_is_a_clear_error(tiny_chips):
    raw, shape = tiny_chips[0]
    bare = fits.Header([("EXTNAME", "DET1.CHIP1"), ("HIERARCH ESO DET CHIP NO", 1)])
    with pytest.raises(FitsInputError, match="no celestial WCS"):
        tan_header(bare, shape)
    with pytest.raises(FitsInputError, match="no celestial WCS"):
        wcs_difference(raw, bare, shape)
    galactic = raw.copy()
    galactic["CTYPE1"], galactic["CTYPE2"] = "GLON-ZPN", "GLAT-ZPN"
    with pytest.raises(FitsInputError, match="not equatorial"):
        tan_header(galactic, shape)
