"""The real SExtractor and SCAMP on the tiny night: LDAC catalogues, and SCAMP against Gaia.

The simulator puts a pointing error of a few arcsec into every header; SCAMP, run against
the Gaia reference propagated to the night, must take it out. Tiny detectors have 2.7"
pixels and FWHM ~2 px, so the figure that scales is the residual in pixels; `small` data
(where the 25 mas acceptance of issue 7 applies) comes with the astrometry recipe.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from vircamframe.keywords import frame_info
from vircamframe.refcat import (
    GAIA_DR3,
    mean_epoch,
    prepare_gaia,
    read_catalog,
    read_ldac,
    write_scamp_reference,
)
from vircamframe.scamp import read_head, read_scamp_xml, run_scamp
from vircamframe.sextractor import run_sextractor
from vircamframe.simulate.truth import load_truth
from vircamframe.wcs import replace_wcs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def catalogs(final_night, tmp_path_factory):
    """One SExtractor LDAC catalogue per final pawprint (SKYSUB_SCI with its WEIGHT_SCI)."""
    out = tmp_path_factory.mktemp("sextractor")
    skysub = final_night.final.select("SKYSUB_SCI")
    weights = {f.name.replace(".weight.fits", ""): f for f in final_night.final.select("WEIGHT_SCI")}
    made = []
    for frame in skysub:
        base = frame.name.replace(".skysub.fits", "")
        made.append(run_sextractor(frame.path, out / f"{base}.ldac", out, weight=weights[base].path))
    return final_night, list(skysub), made


def _truth_stars(run) -> SkyCoord:
    """True positions at the epoch of the stars bright enough to have clean centroids."""
    stars = Table.read(run / "truth" / "stars.fits")
    stars = stars[(stars["KIND"] == 0) & (stars["MAG"] < 17.0)]
    return SkyCoord(stars["RA_OBS"], stars["DEC_OBS"], unit="deg")


def _offsets(cat, headers, truth: SkyCoord, scale: float):
    """(dRA*cos(dec), dDec) [arcsec] of bright, clean sources matched within 1.5 px to truth."""
    dra, ddec = [], []
    for det, (imhead, objects) in enumerate(read_ldac(cat)):
        good = (objects["FLAGS"] == 0) & (objects["SNR_WIN"] > 30)
        if headers is None:
            coords = SkyCoord(objects["ALPHAWIN_J2000"][good], objects["DELTAWIN_J2000"][good], unit="deg")
        else:
            header = replace_wcs(imhead, headers[det])  # SCAMP's solution in place of the old WCS
            x, y = objects["XWIN_IMAGE"][good], objects["YWIN_IMAGE"][good]
            coords = SkyCoord(*WCS(header).all_pix2world(x, y, 1), unit="deg")
        index, separation, _ = coords.match_to_catalog_sky(truth)
        ok = separation.arcsec < 1.5 * scale
        match = truth[index[ok]]
        dra.append(((coords[ok].ra - match.ra) * np.cos(match.dec.rad)).to_value("arcsec"))
        ddec.append((coords[ok].dec - match.dec).to_value("arcsec"))
    return np.concatenate(dra), np.concatenate(ddec)


def test_sextractor_writes_one_ldac_pair_per_detector(catalogs):
    _, skysub, made = catalogs
    pairs = read_ldac(made[0])
    assert len(pairs) == 16
    for imhead, objects in pairs:
        assert imhead["NAXIS1"] == imhead["NAXIS2"] == fits.getval(skysub[0].path, "NAXIS1", ext=1)
        assert {"XWIN_IMAGE", "ERRAWIN_IMAGE", "FLUX_AUTO", "FLAGS_WEIGHT"} <= set(objects.colnames)
    assert sum(len(objects) for _, objects in pairs) > 100


def test_scamp_against_gaia_removes_the_pointing_error(catalogs, tmp_path):
    night, skysub, made = catalogs
    truth = load_truth(night.run)
    scale = truth["pixel_scale_arcsec"]
    stars = _truth_stars(night.run)
    epoch = mean_epoch([frame_info(f.path).mjd for f in skysub])
    gaia = prepare_gaia(read_catalog(night.run / "refcat" / "gaia_dr3.fits", GAIA_DR3), epoch)
    reference = write_scamp_reference(tmp_path / "gaia.ldac", gaia, epoch)
    heads = run_scamp(made, reference, tmp_path / "scamp", mode="loose")

    before = np.hypot(*_offsets(made[0], None, stars, scale))
    assert np.median(before) > 1.0  # the simulated pointing error, arcsec
    dra, ddec = (np.concatenate(parts) for parts in zip(
        *(_offsets(cat, read_head(head), stars, scale) for cat, head in zip(made, heads, strict=True)),
        strict=True))
    assert dra.size > 200
    for axis in (dra, ddec):  # centroid noise of 2-px stars: < 0.12 px rms, no bias above 0.02 px
        robust_sigma = 1.4826 * np.median(np.abs(axis - np.median(axis)))
        assert robust_sigma < 0.12 * scale
        assert abs(np.median(axis)) < 0.02 * scale
    fields = read_scamp_xml(tmp_path / "scamp" / "scamp.xml")
    assert len(fields["Catalog_Name"]) == len(made)
    assert all(n > 0 for n in fields["NDeg_Reference"])  # every pawprint matched Gaia
    sigma = np.array([np.asarray(v, dtype=float) for v in fields["AstromSigma_Reference_HighSN"]])
    assert np.all(sigma < 0.2 * scale)  # SCAMP's own external rms per axis [arcsec]
