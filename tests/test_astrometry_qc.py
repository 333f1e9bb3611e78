"""Per-detector astrometric QC without the tools: the Gaia match, its completeness, the gates, the figures."""

from __future__ import annotations

import numpy as np
import pytest

from vircamframe.astrometry import (
    QC_UNITS,
    DetectorResiduals,
    FieldSolution,
    check_gates,
    pooled_residuals,
    qc_table,
    residual_vectors,
)
from vircamframe.errors import QualityGateError
from vircamframe.numerics.astrometry import (
    along_pixel_axes,
    completeness,
    detected_range,
    match_reference,
    residual_stats,
)

RA0, DEC0 = 280.0, -60.0


def _field(rng, n_ref=400, size=0.1):
    """Reference stars over a ``size``-degree square at (RA0, DEC0), positions in deg."""
    dec = DEC0 + rng.uniform(-size / 2, size / 2, n_ref)
    ra = RA0 + rng.uniform(-size / 2, size / 2, n_ref) / np.cos(np.radians(DEC0))
    return ra, dec


def test_match_recovers_offsets_and_completeness_tells_a_false_match():
    rng = np.random.default_rng(3)
    ref_ra, ref_dec = _field(rng)
    mag = rng.uniform(12.0, 21.0, ref_ra.size)
    pick = np.flatnonzero(mag < 17.0)  # the detected stars: all the brighter ones
    noise = 0.05  # arcsec per axis
    shift = (0.2, -0.1)  # arcsec, east and north
    cos_dec = np.cos(np.radians(ref_dec[pick]))
    ra = ref_ra[pick] + (shift[0] + rng.normal(0, noise, pick.size)) / 3600 / cos_dec
    dec = ref_dec[pick] + (shift[1] + rng.normal(0, noise, pick.size)) / 3600
    good = match_reference(ra, dec, ref_ra, ref_dec, radius=1.0)
    assert good.n == pick.size > 100 and np.array_equal(good.reference, pick[good.source])
    offset, rms, n = residual_stats(good.dra, good.ddec)
    assert n >= 0.95 * pick.size
    assert offset == pytest.approx(shift, abs=0.03)
    assert rms == pytest.approx((noise, noise), rel=0.3)
    mag_range = detected_range(mag[good.reference])
    assert 12.0 < mag_range[0] < mag_range[1] < 17.0
    on_detector = np.arange(ref_ra.size)
    expected, found = completeness(on_detector, good.reference, mag, mag_range)
    assert expected > 80 and found == expected  # every star of the detected range was matched
    # the same detector placed 40 arcsec off (a false SCAMP match): chance matches only
    false = match_reference(ra + 40 / 3600, dec, ref_ra, ref_dec, radius=1.0)
    expected, found = completeness(on_detector, false.reference, mag, mag_range)
    assert found < 0.1 * expected
    # right in one half, wrong in the other: half the stars
    half = np.where(np.arange(ra.size) % 2 == 0, ra, ra + 40 / 3600)
    expected, found = completeness(on_detector, match_reference(half, dec, ref_ra, ref_dec, 1.0).reference,
                                   mag, mag_range)
    assert 0.4 * expected < found < 0.6 * expected


def test_match_handles_empty_inputs():
    empty = match_reference(np.zeros(0), np.zeros(0), np.array([RA0]), np.array([DEC0]), 1.0)
    assert empty.n == 0
    assert residual_stats(empty.dra, empty.ddec)[2] == 0
    assert np.isnan(detected_range(np.zeros(0))[0])
    assert completeness(np.zeros(0, int), np.zeros(0, int), np.zeros(3), (10.0, 20.0)) == (0, 0)


def test_residuals_along_pixel_axes_follow_the_cd_matrix():
    scale = 0.34 / 3600  # deg/px; VIRCAM chips have x along Dec: CD = [[0, s], [-s, 0]]
    cd = np.array([[0.0, scale], [-scale, 0.0]])
    dx, dy = along_pixel_axes(np.array([0.1]), np.array([0.0]), cd)  # 0.1 arcsec east
    assert dx == pytest.approx([0.0], abs=1e-12) and dy == pytest.approx([0.1])
    dx, dy = along_pixel_axes(np.array([0.0]), np.array([0.2]), cd)  # north
    assert dx == pytest.approx([-0.2]) and dy == pytest.approx([0.0], abs=1e-12)


def _detector(number, nmatch, nexpect=30, nfound=28, nsource=40):
    rng = np.random.default_rng(number)
    x, y = rng.uniform(1, 512, nmatch), rng.uniform(1, 512, nmatch)
    dra, ddec = rng.normal(0, 0.03, nmatch), rng.normal(0, 0.03, nmatch)
    scale = 1.37 / 3600
    return DetectorResiduals(number, nsource, nmatch, (0.0, 0.0), (0.03, 0.03), x, y, dra, ddec,
                             np.array([[0.0, scale], [-scale, 0.0]]), nexpect=nexpect, nfound=nfound)


def _solution(detectors, name="VCAM.2019-07-01T03:50:24.000.skysub.fits"):
    return FieldSolution(name, [], 300, (0.02, 0.02), (0.0, 0.0), 40.0, detectors, "exposure")


def test_detector_gate_names_frame_and_detector():
    good = [_detector(d, 30) for d in range(1, 17)]
    check_gates([_solution(good)], 10, 0.5, "vircam_astrometry", min_detector_stars=5, min_completeness=0.5)
    lost = [*good[:3], _detector(4, 2, nexpect=25, nfound=1), *good[4:]]  # on the wrong patch of sky
    solutions = [_solution(good), _solution(lost, "VCAM.2019-07-01T03:51:00.000.skysub.fits")]
    # SCAMP's figures for the pawprint are fine: only the per-detector gate sees it
    check_gates(solutions, 10, 0.5, "vircam_astrometry")
    with pytest.raises(QualityGateError) as error:
        check_gates(solutions, 10, 0.5, "vircam_astrometry", min_detector_stars=5, min_completeness=0.5)
    message = str(error.value)
    assert "\n" not in message
    assert "detector 4 of VCAM.2019-07-01T03:51:00.000.skysub.fits" in message
    assert "matches 1 of the 25 Gaia stars" in message and "2 of its 40 sources" in message


def test_detector_gate_catches_a_solution_right_in_one_corner_only():
    partial = [_detector(d, 30) for d in range(1, 16)] + [_detector(16, 12, nexpect=30, nfound=11)]
    check_gates([_solution(partial)], 10, 0.5, "r", min_detector_stars=5, min_completeness=0.3)
    with pytest.raises(QualityGateError, match=r"detector 16 of .*matches 11 of the 30 Gaia stars"):
        check_gates([_solution(partial)], 10, 0.5, "r", min_detector_stars=5, min_completeness=0.5)


def test_detectors_with_too_few_stars_are_not_judged(caplog):
    sparse = [_detector(d, 30) for d in range(1, 16)] + [_detector(16, 1, nexpect=3, nfound=0, nsource=4)]
    check_gates([_solution(sparse)], 10, 0.5, "r", min_detector_stars=5, min_completeness=0.5)
    assert "1 detector solution(s) not judged" in caplog.text and "skysub.fits:16" in caplog.text
    with pytest.raises(QualityGateError, match="detector 16"):
        check_gates([_solution(sparse)], 10, 0.5, "r", min_detector_stars=3, min_completeness=0.5)


def test_qc_table_has_a_row_per_pawprint_and_detector_with_units():
    solutions = [_solution([_detector(d, 20 + d) for d in range(1, 17)], name=f"f{i}.fits")
                 for i in range(3)]
    table = qc_table(solutions)
    assert len(table) == 48
    assert table.colnames == ["FILE", "DETECTOR", "NSOURCE", "NMATCH", "NEXPECT", "COMPLETENESS", "RMS1",
                              "RMS2", "OFFSET1", "OFFSET2"]
    assert list(table["DETECTOR"][:16]) == list(range(1, 17)) and table["FILE"][16] == "f1.fits"
    assert table["NMATCH"][2] == 23 and table["RMS1"][0] == pytest.approx(0.03)
    assert table["COMPLETENESS"][0] == pytest.approx(28 / 30)
    assert set(QC_UNITS) == {"RMS1", "RMS2", "OFFSET1", "OFFSET2"} and set(QC_UNITS.values()) == {"arcsec"}
    dra, ddec = pooled_residuals(solutions)
    assert dra.size == ddec.size == 3 * sum(20 + d for d in range(1, 17))
    vectors = residual_vectors(solutions)
    assert sorted(vectors) == list(range(1, 17))
    assert all(len(v) == 4 and v[0].size == 3 * (20 + d) for d, v in vectors.items())


def test_qc_figures_are_written(tmp_path):
    from vircamframe.qc.astrometry import binned_vectors, plot_residual_histograms, plot_residual_vectors

    solutions = [_solution([_detector(d, 40) for d in range(1, 17)])]
    product = tmp_path / "astrom_qc.J.58665.15000.fits"
    vectors = plot_residual_vectors(product, residual_vectors(solutions), (512, 512))
    histograms = plot_residual_histograms(product, *pooled_residuals(solutions))
    assert vectors.name == "astrom_qc.J.58665.15000.vectors.png" and vectors.stat().st_size > 10000
    assert histograms.name == "astrom_qc.J.58665.15000.histograms.png" and histograms.stat().st_size > 10000
    x, y, dx, _ = binned_vectors(np.array([10.0, 20.0, 30.0, 500.0]), np.array([10.0, 15.0, 20.0, 500.0]),
                                  np.array([1.0, 2.0, 3.0, 9.0]), np.zeros(4), (512, 512))
    assert x.size == 1 and dx == pytest.approx([2.0]) and (x[0], y[0]) == (64.5, 64.5)


def test_qc_table_units_reach_the_file(tmp_path):
    """ProductFile.add_table writes TUNITn (it used to set them on a header that was not written)."""
    from astropy.io import fits
    from astropy.table import Table

    from vircamframe.products import ProductFile

    header = fits.Header()
    header["DATAMD5"] = "0" * 32
    table = qc_table([_solution([_detector(d, 10) for d in range(1, 17)])])
    with ProductFile(tmp_path / "qc.fits", header) as product:
        product.add_table("ASTROM_QC", table, units=QC_UNITS)
    written = Table.read(tmp_path / "qc.fits", hdu="ASTROM_QC")
    assert {name: str(written[name].unit) for name in QC_UNITS} == QC_UNITS
    assert written["NMATCH"].unit is None
