"""The simulator (issue 3): layout, raw format, determinism, and physics recovered from the raw
files with independent simple code (``sim_helpers``), compared with ``truth.json``."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from click.testing import CliRunner

from vircamframe.simulate import simulate
from vircamframe.simulate.cli import simulate_command
from vircamframe.simulate.core import simulate_exposure
from vircamframe.simulate.scoring import centroid

from conftest import run_cli
from sim_helpers import (
    clipped_std,
    column_coefficients,
    destripe,
    ext_header,
    fit_dcs_rate,
    frames_of,
    linearise,
    load_truth,
    pct_at,
    read_det,
    slope,
    truth_image,
    wcs_of,
)

# DPR (CATG, TYPE) -> tag, DESIGN.md 3.2; resets also need NCORRS NAME = Uncorr
DPR_TAGS = {
    ("CALIB", "BIAS"): "RESET",
    ("CALIB", "DARK"): "DARK",
    ("CALIB", "DARK,LINEARITY"): "DARK_LINEARITY",
    ("CALIB", "DARK,CHECK"): "DARK_CHECK",
    ("CALIB", "DARK,GAIN"): "DARK_GAIN",
    ("CALIB", "FLAT,LAMP,LINEARITY"): "FLAT_LAMP_LINEARITY",
    ("CALIB", "FLAT,LAMP,CHECK"): "FLAT_LAMP_CHECK",
    ("CALIB", "FLAT,LAMP,GAIN"): "FLAT_LAMP_GAIN",
    ("CALIB", "FLAT,TWILIGHT"): "FLAT_TWILIGHT",
    ("CALIB", "STD,FLUX"): "STD_FLUX",
    ("SCIENCE", "OBJECT"): "OBJECT",
    ("SCIENCE", "SKY"): "SKY",
}

PRIMARY_KEYS = [
    "MJD-OBS", "DATE-OBS", "EXPTIME", "OBJECT", "RA", "DEC", "ARCFILE", "ORIGFILE",
    "INSTRUME", "TELESCOP", "ORIGIN", "OFFSET_I", "NOFFSETS", "JITTER_I", "NJITTER",
    "ESO DPR CATG", "ESO DPR TYPE", "ESO DPR TECH", "ESO DET DIT", "ESO DET NDIT",
    "ESO DET NCORRS NAME", "ESO INS FILT1 NAME", "ESO OBS NAME", "ESO OBS ID",
    "ESO OBS PROG ID", "ESO TPL ID", "ESO TPL START", "ESO TPL EXPNO", "ESO TPL NEXP",
    "ESO TEL AIRM START", "ESO TEL AIRM END", "ESO TEL POSANG", "ESO TEL TARG ALPHA",
    "ESO TEL TARG DELTA", "ESO OCS SADT TILE RA", "ESO OCS SADT TILE DEC",
    "ESO OCS SADT TILE OFFANGLE",
]
EXT_KEYS = [
    "EXTNAME", "ESO DET CHIP NO", "CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2",
    "CD1_1", "CD1_2", "CD2_1", "CD2_2", "PV2_1", "PV2_3", "PV2_5",
]


@pytest.fixture(scope="session")
def run(tmp_path_factory) -> Path:
    """One tiny simulated run through the command line, shared by the tests of this module."""
    out = tmp_path_factory.mktemp("sim") / "run"
    result = CliRunner().invoke(
        simulate_command, ["--out", str(out), "--preset", "tiny", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "OBJECT 12" in result.output and "truth.json" in result.output
    return out


@pytest.fixture(scope="session")
def truth(run) -> dict:
    return load_truth(run)


# ---- layout ------------------------------------------------------------------------------
def test_layout(run, truth):
    raws = sorted((run / "raw").iterdir())
    assert len(raws) == len(truth["frames"])
    assert all(re.fullmatch(r"VCAM\.\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\.fits", p.name)
               for p in raws)
    for name in ("dark", "linearity", "detector_noise", "twilight_flat", "science", "reset"):
        assert (run / "sof" / f"{name}.sof").is_file(), name
    setups = {(f["dit"], f["ndit"]) for f in frames_of(truth, "DARK")}
    assert len(setups) > 1
    for dit, ndit in setups:
        assert (run / "sof" / f"dark_{dit:g}_{ndit}.sof").is_file()
    sci = truth["science_setup"]
    dark_sof = (run / "sof" / "dark.sof").read_text().split("\n")
    by_name = {f["file"]: f for f in truth["frames"]}
    lines = [ln.split() for ln in dark_sof if ln.strip()]
    assert len(lines) >= 3
    for path, tag, group in lines:
        assert Path(path).is_absolute() and Path(path).is_file()
        assert (tag, group) == ("DARK", "RAW")
        f = by_name[Path(path).name]
        assert (f["dit"], f["ndit"]) == (sci["dit"], sci["ndit"])
    lin = (run / "sof" / "linearity.sof").read_text()
    for tag in ("FLAT_LAMP_LINEARITY", "DARK_LINEARITY", "FLAT_LAMP_CHECK", "DARK_CHECK"):
        assert f" {tag} RAW" in lin
    for name in ("bpm", "flat", "dark_rate", "stars"):
        assert (run / "truth" / f"{name}.fits").is_file()


def test_refcat_columns(run):
    gaia = Table.read(run / "refcat" / "gaia_dr3.fits")
    assert gaia.colnames == ["RA_ICRS", "DE_ICRS", "e_RA_ICRS", "e_DE_ICRS", "pmRA", "pmDE",
                             "e_pmRA", "e_pmDE", "Gmag", "RUWE"]
    tm = Table.read(run / "refcat" / "twomass_psc.fits")
    assert tm.colnames == ["RAJ2000", "DEJ2000", "Jmag", "e_Jmag", "Hmag", "e_Hmag", "Kmag",
                           "e_Kmag", "Qflg", "Cflg"]
    assert len(gaia) > 1000 and len(tm) > 300
    qflg = np.char.decode(np.asarray(tm["Qflg"]).astype("S3"))
    assert (qflg == "AAA").sum() > 1000  # enough quality-A stars to calibrate on


def test_observing_plan(truth):
    tags = [f["tag"] for f in truth["frames"]]
    assert tags.count("RESET") >= 2 and tags.count("OBJECT") == 12
    lin = frames_of(truth, "FLAT_LAMP_LINEARITY")
    assert len({f["dit"] for f in lin}) >= 8
    assert {f["dit"] for f in lin} == {f["dit"] for f in frames_of(truth, "DARK_LINEARITY")}
    assert len(frames_of(truth, "DARK_GAIN")) == len(frames_of(truth, "FLAT_LAMP_GAIN")) == 2
    for dit, ndit in {(f["dit"], f["ndit"]) for f in truth["frames"]
                      if f["tag"] in ("OBJECT", "SKY", "STD_FLUX", "FLAT_TWILIGHT")}:
        assert len(frames_of(truth, "DARK", dit=dit, ndit=ndit)) >= 3
    sky = [f["sky_level"] for f in frames_of(truth, "FLAT_TWILIGHT")]
    assert sky == sorted(sky, reverse=True)


# ---- raw format --------------------------------------------------------------------------
def test_raw_files_format(run, truth):
    for f in truth["frames"]:
        path = run / "raw" / f["file"]
        assert b"HIERARCH ESO DET CHIP PXSPACE = 2.000e-05 / Pixel-Pixel Spacing" in (
            path.read_bytes()[: 2880 * 8]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path) as hdul:
                assert len(hdul) == 17
                prim = hdul[0].header
                assert hdul[0].data is None
                for key in PRIMARY_KEYS:
                    assert key in prim, (f["file"], key)
                assert prim["ARCFILE"] == f["arcfile"] == path.name
                assert prim["EXPTIME"] == pytest.approx(prim["ESO DET DIT"] * prim["ESO DET NDIT"])
                assert prim["INSTRUME"] == "VIRCAM" and prim["TELESCOP"] == "ESO-VISTA"
                assert "CHECKSUM" not in prim
                dpr = (prim["ESO DPR CATG"], prim["ESO DPR TYPE"])
                tag = DPR_TAGS[dpr]
                if tag == "RESET":
                    assert prim["ESO DET NCORRS NAME"] == "Uncorr"
                else:
                    assert prim["ESO DET NCORRS NAME"] == "Double"
                assert tag == f["tag"]
                for i in range(1, 17):
                    hdu = hdul[i]
                    assert hdu.name == f"DET1.CHIP{i}"
                    assert hdu.header["ESO DET CHIP NO"] == i
                    assert hdu.data.dtype.kind == "i" and hdu.data.shape == (256, 256)
                    for key in EXT_KEYS:
                        assert key in hdu.header
                    hdu.verify("silentfix")
                    assert hdu.header["ESO DET CHIP PXSPACE"] == pytest.approx(2e-5)


def test_vircam_classify_tags_every_file(run, truth):
    """`vircam classify` on the whole raw folder gives the simulator's intended tag of each file."""
    files = sorted((run / "raw").iterdir())
    result = run_cli("vircam", "classify", *files)
    assert result.returncode == 0, result.stderr
    printed = {Path(line.split()[0]).name: line.split()[1] for line in result.stdout.splitlines()[1:]}
    assert printed == {f["file"]: f["tag"] for f in truth["frames"]}


def test_vircam_sort_simulated_night(run, truth, tmp_path):
    files = sorted((run / "raw").iterdir())
    result = run_cli("vircam", "sort", *files, "--out", tmp_path)
    assert result.returncode == 0, result.stdout
    science_tags = {"OBJECT", "SKY", "STD_FLUX"}
    n_science = sum(f["tag"] in science_tags for f in truth["frames"])
    sorted_science = list((tmp_path / "science").rglob("*.fits"))
    assert len(sorted_science) == n_science
    assert len(list((tmp_path / "calibration").iterdir())) == len(files) - n_science
    # one folder per OB and filter: the tile (OBJECT + SKY) and the standard
    obs = {f["file"]: f for f in truth["frames"]}
    expected = {}
    for name, frame in obs.items():
        if frame["tag"] in science_tags:
            ob = fits.getval(run / "raw" / name, "HIERARCH ESO OBS NAME")
            expected.setdefault(f"{ob}_J", set()).add(name)
    found = {folder: {p.name for p in sorted_science if p.parent.name == folder} for folder in expected}
    assert found == expected
    assert len(expected) == 2


def test_wcs_is_zpn_with_axis_off_chip(run, truth):
    obj = frames_of(truth, "OBJECT")[0]
    off = 0
    for chip in range(1, 17):
        h = ext_header(run, obj, chip)
        assert h["CTYPE1"] == "RA---ZPN" and h["PV2_1"] == 1.0
        assert h["PV2_3"] == pytest.approx(44.0) and h["PV2_5"] == pytest.approx(-10300.0)
        off += not (0 < h["CRPIX1"] < 257 and 0 < h["CRPIX2"] < 257)
        assert abs(h["CRVAL1"] - obj["header_pointing"]["ra"]) < 1e-6
    assert off == 16


# ---- determinism -------------------------------------------------------------------------
def test_determinism_byte_identical(run, truth, tmp_path):
    """Same seed -> byte-identical raw and truth files, whatever part of the run is made."""
    res = simulate(tmp_path / "again", preset="tiny", seed=1, what="calib")
    calib = [f["file"] for f in truth["frames"] if f["tag"] not in ("OBJECT", "SKY", "STD_FLUX")]
    assert sorted(p.name for p in res.raw_files) == sorted(calib)
    for name in calib:
        assert (tmp_path / "again" / "raw" / name).read_bytes() == (
            run / "raw" / name
        ).read_bytes(), name
    for name in ("bpm.fits", "flat.fits", "dark_rate.fits"):
        assert (tmp_path / "again" / "truth" / name).read_bytes() == (
            run / "truth" / name
        ).read_bytes()


def test_single_exposure_and_compression(run, truth, tmp_path):
    """``simulate_exposure`` writes the same file; ``compress`` writes RICE .fits.fz with the
    same pixels and a plain primary; another seed gives other pixels."""
    first_dark = frames_of(truth, "DARK")[0]["file"]
    path = simulate_exposure(tmp_path / "one", preset="tiny", seed=1, tag="DARK")
    assert path.name == first_dark
    assert path.read_bytes() == (run / "raw" / first_dark).read_bytes()
    fz = simulate_exposure(tmp_path / "fz", preset="tiny", seed=1, tag="DARK", compress=True)
    assert fz.name == first_dark.replace(".fits", ".fits.fz")
    assert b"2.000e-05 / Pixel-Pixel Spacing" in fz.read_bytes()
    assert fz.read_bytes().count(b"ZCMPTYPE= 'RICE_1  '") == 16
    other = simulate_exposure(tmp_path / "seed2", preset="tiny", seed=2, tag="DARK")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(fz) as packed, fits.open(run / "raw" / first_dark) as plain, \
                fits.open(other) as diff:
            assert isinstance(packed[0], fits.PrimaryHDU) and packed[0].data is None
            assert packed[0].header["ARCFILE"] == first_dark
            for i in range(1, 17):
                assert isinstance(packed[i], fits.CompImageHDU)
                assert packed[i].name == f"DET1.CHIP{i}"
                assert np.array_equal(packed[i].data, plain[i].data)
            assert not np.array_equal(diff[1].data, plain[1].data)


# ---- physics -----------------------------------------------------------------------------
def test_read_noise_from_dark_difference(run, truth):
    d1, d2 = frames_of(truth, "DARK_GAIN")
    for chip in range(1, 17):
        det = truth["detectors"][str(chip)]
        bpm = truth_image(run, "bpm", chip) > 0
        diff = destripe(read_det(run, d1, chip) - read_det(run, d2, chip))
        measured = clipped_std(diff, bpm) / np.sqrt(2.0) * det["gain"]
        expected = np.sqrt(det["read_noise"] ** 2 + det["dark_current"] * d1["dit"] * det["gain"])
        assert measured == pytest.approx(expected, rel=0.05), chip


def test_gain_from_flat_pair(run, truth):
    """Photon transfer on a linearised, destriped flat pair."""
    d1, d2 = frames_of(truth, "DARK_GAIN")
    f1, f2 = frames_of(truth, "FLAT_LAMP_GAIN")
    dit = f1["dit"]
    for chip in range(1, 17):
        det = truth["detectors"][str(chip)]
        bpm = truth_image(run, "bpm", chip) > 0
        b2, b3 = column_coefficients(det, truth["nx"])
        dk1, dk2 = read_det(run, d1, chip), read_det(run, d2, chip)
        dmean = (dk1 + dk2) / 2.0
        x1 = linearise(read_det(run, f1, chip) - dmean, dit, b2, b3)
        x2 = linearise(read_det(run, f2, chip) - dmean, dit, b2, b3)
        level = np.median((x1 + x2) / 2.0)
        s = slope(level, dit, b2, b3)
        var_signal = clipped_std(destripe(x1 - x2), bpm) ** 2
        var_read = clipped_std(destripe((dk1 - dk2) / s), bpm) ** 2
        gain = 2.0 * level / (var_signal - var_read)
        assert gain == pytest.approx(det["gain"], rel=0.05), chip


def test_nonlinearity_at_10kadu(run, truth):
    """Per channel: DCS cubic fitted to the linearity sequence vs truth, within 0.5 pp."""
    nx, cw = truth["nx"], truth["channel_width"]
    flats = frames_of(truth, "FLAT_LAMP_LINEARITY")
    darks = {f["dit"]: f for f in frames_of(truth, "DARK_LINEARITY")}
    worst = 0.0
    for chip in range(1, 17):
        det = truth["detectors"][str(chip)]
        dits, levels = [], []
        for f in flats:
            dark = darks[f["dit"]]
            diff = read_det(run, f, chip) - read_det(run, dark, chip)
            for frame in (f, dark):  # detector 6 channel 14: sporadic saturation events
                if chip == 6 and frame["det6_ch14_saturated_rows"]:
                    r0, r1 = frame["det6_ch14_saturated_rows"]
                    diff[r0:r1, 13 * cw : 14 * cw] = np.nan
            dits.append(f["dit"])
            levels.append(np.nanmedian(diff.reshape(nx, 16, cw), axis=(0, 2)))
        dits, levels = np.array(dits), np.array(levels)
        for j in range(16):
            ok = levels[:, j] < 0.85 * det["saturation"]
            assert ok.sum() >= 5
            pct = pct_at(fit_dcs_rate(dits[ok], levels[ok, j]))
            true = det["linearity"][j]["pct_at_10kadu"]
            worst = max(worst, abs(pct - true))
            assert pct == pytest.approx(true, abs=0.5), (chip, j + 1)
    assert truth["detectors"]["13"]["linearity"][0]["pct_at_10kadu"] > 8.0
    assert worst < 0.5


def test_flat_field_from_twilight(run, truth):
    nx = truth["nx"]
    twi = frames_of(truth, "FLAT_TWILIGHT")
    darks = frames_of(truth, "DARK", dit=twi[0]["dit"], ndit=twi[0]["ndit"])
    levels = [np.median([np.median(read_det(run, f, c)) for c in range(1, 17)]) for f in twi]
    assert max(levels) > 30000 and min(levels) < 4000
    use = [f for f, lev in zip(twi, levels, strict=True) if 4000 < lev < 30000]
    assert len(use) >= 2
    measured, true = {}, {}
    for chip in range(1, 17):
        b2, b3 = column_coefficients(truth["detectors"][str(chip)], nx)
        dark = np.median([read_det(run, d, chip) for d in darks], axis=0)
        measured[chip] = [linearise(read_det(run, f, chip) - dark, f["dit"], b2, b3)
                          for f in use]
        true[chip] = truth_image(run, "flat", chip)
    norms = [np.median(np.concatenate([measured[c][i].ravel() for c in measured]))
             for i in range(len(use))]
    tnorm = np.median(np.concatenate([t.ravel() for t in true.values()]))
    for chip in range(1, 17):
        flat = np.median([m / n for m, n in zip(measured[chip], norms, strict=True)], axis=0)
        good = truth_image(run, "bpm", chip) == 0
        ratio = flat[good] / (true[chip][good] / tnorm)
        assert np.median(ratio) == pytest.approx(1.0, abs=0.01), chip
        assert np.std(ratio) < 0.01, chip
        assert np.corrcoef(flat[good], true[chip][good])[0, 1] > 0.9, chip


def test_dark_levels_and_ndit_offset(run, truth):
    sci = truth["science_setup"]
    darks = frames_of(truth, "DARK", dit=sci["dit"], ndit=sci["ndit"])
    ndit, dit = sci["ndit"], sci["dit"]
    for chip in (1, 7, 12):
        det = truth["detectors"][str(chip)]
        level = np.mean([np.median(read_det(run, d, chip)) for d in darks])
        expected = (ndit * (det["dcs_offset"] + det["dark_current"] * dit)
                    + det["ndit_offset"] * (ndit - 1))
        assert level == pytest.approx(expected, abs=1.5), chip


def test_stripes_shared_by_readout_rows(run, truth):
    d1, d2 = frames_of(truth, "DARK_GAIN")
    rows = {c: np.median(read_det(run, d1, c) - read_det(run, d2, c), axis=1) for c in (1, 4, 5)}
    assert np.corrcoef(rows[1], rows[4])[0, 1] > 0.8
    assert abs(np.corrcoef(rows[1], rows[5])[0, 1]) < 0.3


def test_hot_pixels_in_darks(run, truth):
    d = frames_of(truth, "DARK", dit=truth["science_setup"]["dit"])[0]
    for chip in (2, 9):
        bpm = truth_image(run, "bpm", chip)
        img = read_det(run, d, chip)
        hot = (bpm & 1) > 0
        assert np.median(img[hot]) > np.median(img) + 200


def test_star_positions_through_header_wcs(run, truth):
    """Centroids of bright isolated stars agree with the truth through the ZPN WCS: exactly
    with the true pointing, and to the pointing error with the header's."""
    nx = truth["nx"]
    stars = Table.read(run / "truth" / "stars.fits")
    stars = stars[stars["REGION"] == 0]
    obj = frames_of(truth, "OBJECT")[0]
    err = obj["pointing_error_arcsec"]
    assert 0 < err <= truth["pointing_error_max_arcsec"]
    offsets, seps = [], []
    for chip in range(1, 17):
        img = read_det(run, obj, chip)
        header = ext_header(run, obj, chip)
        w_true = wcs_of(header, (obj["pointing"]["ra"], obj["pointing"]["dec"]))
        x, y = w_true.all_world2pix(stars["RA_OBS"], stars["DEC_OBS"], 0)
        on = (x > 10) & (x < nx - 11) & (y > 10) & (y < nx - 11)
        s, x, y = stars[on], x[on], y[on]
        for i in np.flatnonzero((s["MAG"] > 12.0) & (s["MAG"] < 14.5) & (s["KIND"] == 0)):
            d = np.hypot(x - x[i], y - y[i])
            if ((d > 0) & (d < 8) & (s["MAG"] < s["MAG"][i] + 4)).any():
                continue
            cx, cy, _ = centroid(img, x[i], y[i], 2)
            offsets.append(np.hypot(cx - x[i], cy - y[i]))
            ra, dec = wcs_of(header).all_pix2world(cx, cy, 0)
            seps.append(np.hypot((ra - s["RA_OBS"][i]) * np.cos(np.radians(dec)),
                                 dec - s["DEC_OBS"][i]) * 3600.0)
    assert len(offsets) > 30
    assert np.median(offsets) < 0.3
    pixel = truth["pixel_scale_arcsec"]
    assert np.median(seps) == pytest.approx(err, abs=0.3 * pixel)
    assert np.median(seps) < truth["pointing_error_max_arcsec"]


def test_truth_json_contents(truth):
    assert set(truth["detectors"]) == {str(i) for i in range(1, 17)}
    for det in truth["detectors"].values():
        for key in ("gain", "read_noise", "dark_current", "reset_level", "ndit_offset",
                    "saturation", "linearity", "stripe_rms"):
            assert key in det
        assert len(det["linearity"]) == 16
        assert {"b1", "b2", "b3", "pct_at_10kadu"} <= set(det["linearity"][0])
        assert det["linearity"][0]["b1"] == 1.0 and det["linearity"][0]["b2"] < 0
    for f in frames_of(truth, "OBJECT"):
        for key in ("sky_level", "seeing", "zero_point", "pointing", "file", "tag"):
            assert f[key] is not None
    assert "linearity" in truth["conventions"]
