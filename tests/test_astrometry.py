"""vircam_astrometry on the tiny night: ASTROM_HEADER products, QC, and the SCAMP gates."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from vircamframe import run_recipe
from vircamframe.errors import QualityGateError, RecipeInputError, RefcatError
from vircamframe.frames import Frame, FrameSet
from vircamframe.simulate.truth import load_truth

pytestmark = pytest.mark.slow


def _inputs(night, refcat) -> FrameSet:
    return night.final + FrameSet([Frame(refcat, "REFCAT_ASTROM", "CALIB")])


@pytest.fixture(scope="module")
def solved(final_night, tmp_path_factory):
    out = tmp_path_factory.mktemp("astrometry")
    inputs = _inputs(final_night, final_night.run / "refcat" / "gaia_dr3.fits")
    products = run_recipe("vircam_astrometry", inputs, output_dir=out, qc_plots=False)
    return final_night, products


def test_one_astrom_header_per_pawprint_with_scamp_wcs(solved):
    night, products = solved
    skysub = night.final.select("SKYSUB_SCI")
    assert sorted(p.name for p in products) == sorted(
        f.name.replace(".skysub.fits", ".astrom.fits") for f in skysub)
    scale = load_truth(night.run)["pixel_scale_arcsec"]
    with fits.open(products[0].path) as hdul:
        primary = hdul[0].header
        assert primary["ESO PRO CATG"] == "ASTROM_HEADER"
        assert primary["ESO QC NMATCH"] >= 10
        assert max(primary["ESO QC RMS1"], primary["ESO QC RMS2"]) < 0.12 * scale  # centroid noise
        assert [h.name for h in hdul[1:]] == [f"DET1.CHIP{i}" for i in range(1, 17)]
        for hdu in hdul[1:]:
            assert hdu.data is None and hdu.header["CTYPE1"] == "RA---TPV"
            assert 0 < hdu.header["ESO QC ASTRMS1"] < 0.2 * scale  # SCAMP picks the degree per chip


def test_wrong_reference_field_fails_the_gate(final_night, tmp_path):
    gaia = Table.read(final_night.run / "refcat" / "gaia_dr3.fits")
    gaia["DE_ICRS"] += 3.0 / 60.0  # 3 arcmin away: SCAMP may search 0.5 arcmin
    wrong = tmp_path / "wrong_field.fits"
    gaia.write(wrong)
    with pytest.raises(QualityGateError, match=r"SCAMP matched \d+ Gaia stars in VCAM.*need at least 10"):
        run_recipe("vircam_astrometry", _inputs(final_night, wrong), output_dir=tmp_path / "out",
                   qc_plots=False)
    assert not list((tmp_path / "out").glob("*.fits"))


def test_local_provider_without_refcat_names_the_tag(final_night, tmp_path):
    with pytest.raises(RefcatError, match=r"no local I/355/gaiadr3 file given \(tag REFCAT_ASTROM"):
        run_recipe("vircam_astrometry", final_night.final, output_dir=tmp_path, qc_plots=False)
    with pytest.raises(RecipeInputError, match="at most 1 frame"):
        refcat = final_night.run / "refcat" / "gaia_dr3.fits"
        run_recipe("vircam_astrometry", final_night.final + FrameSet([Frame(refcat, "REFCAT_ASTROM"),
                                                                       Frame(refcat, "REFCAT_ASTROM")]),
                   output_dir=tmp_path, qc_plots=False)
    assert np.isfinite(load_truth(final_night.run)["pixel_scale_arcsec"])
