"""The tile grid, vircam_resample, vircam_stack, vircam_tile and vircam_statistics on the tiny night."""

from __future__ import annotations

import numpy as np
import pytest
import sep
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from vircamframe import run_recipe
from vircamframe.chain.manifest import chain_products
from vircamframe.dfs import next_record_index
from vircamframe.errors import RecipeInputError
from vircamframe.frames import Frame, FrameSet
from vircamframe.numerics.tilegrid import minimum_area_rotation, tile_grid, zea_offsets
from vircamframe.simulate.truth import load_truth, truth_coverage
from vircamframe.tiling import detectors_on_grid, read_grid, sub_grid

# --- the grid: pure numerics ------------------------------------------------------------------

def _rectangle(angle: float, n: int = 400, seed: int = 1):
    """Points filling a 1.4 x 1.0 deg rectangle turned by ``angle`` deg about (150, -30)."""
    rng = np.random.default_rng(seed)
    u, v = rng.uniform(-0.7, 0.7, n), rng.uniform(-0.5, 0.5, n)
    t = np.radians(angle)
    x, y = u * np.cos(t) - v * np.sin(t), u * np.sin(t) + v * np.cos(t)
    return 150.0 + x / np.cos(np.radians(-30.0)), -30.0 + y


def test_zea_offsets_agree_with_astropy():
    ra, dec = _rectangle(20.0)
    wcs = WCS({"CTYPE1": "RA---ZEA", "CTYPE2": "DEC--ZEA", "CRVAL1": 150.2, "CRVAL2": -29.8,
               "CRPIX1": 0.0, "CRPIX2": 0.0, "CD1_1": 1.0, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 1.0})
    x_ref, y_ref = wcs.all_world2pix(ra, dec, 1)  # 1-based pixels of 1 deg about CRPIX 0
    x, y = zea_offsets(ra, dec, 150.2, -29.8)
    assert np.max(np.abs(x - x_ref)) < 1e-9 and np.max(np.abs(y - y_ref)) < 1e-9


@pytest.mark.parametrize("angle", [0.0, 17.0, -31.0, 44.0])
def test_grid_turns_to_the_smallest_rectangle(angle):
    ra, dec = _rectangle(angle)
    x, y = zea_offsets(ra, dec, 150.0, -30.0)
    # the sampled rectangle's hull is a little inside the true one: its angle within 1.5 deg
    assert minimum_area_rotation(x, y) == pytest.approx(angle, abs=1.5)
    grid = tile_grid(ra, dec, pixel_scale=10.0, margin=20.0)
    px, py = WCS(dict(grid)).all_world2pix(ra, dec, 1)
    # every point inside, with the 2-pixel margin on the tightest side
    assert px.min() >= 2.5 and py.min() >= 2.5
    assert px.max() <= grid["NAXIS1"] - 1.5 and py.max() <= grid["NAXIS2"] - 1.5
    # 1.4 x 1.0 deg at 10 arcsec, plus margins, whatever the turn
    assert grid["NAXIS1"] == pytest.approx(1.4 * 360 + 4, abs=6)
    assert grid["NAXIS2"] == pytest.approx(1.0 * 360 + 4, abs=6)
    assert grid.pixel_scale == pytest.approx(10.0, rel=1e-12)


def test_north_up_grid_when_not_rotated():
    ra, dec = _rectangle(30.0)
    grid = tile_grid(ra, dec, pixel_scale=10.0, rotate=False)
    assert grid["CD1_2"] == 0.0 and grid["CD2_1"] == 0.0
    assert grid["CD1_1"] == pytest.approx(-10.0 / 3600) and grid["CD2_2"] == pytest.approx(10.0 / 3600)


def _tan(ra: float, dec: float, scale: float = 1.0) -> fits.Header:
    """A 100 x 100 detector header, TAN about (ra, dec), pixels of ``scale`` arcsec."""
    return fits.Header({"NAXIS": 2, "NAXIS1": 100, "NAXIS2": 100, "CTYPE1": "RA---TAN",
                        "CTYPE2": "DEC--TAN", "CRVAL1": ra, "CRVAL2": dec, "CRPIX1": 50.5, "CRPIX2": 50.5,
                        "CD1_1": -scale / 3600, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": scale / 3600})


def test_detectors_on_a_predefined_grid(tmp_path):
    # a 60 x 60 arcsec grid about (150, -30) at 1 arcsec, turned by 30 deg
    t = np.radians(30.0)
    grid = {"NAXIS1": 60, "NAXIS2": 60, "CTYPE1": "RA---ZEA", "CTYPE2": "DEC--ZEA", "CRVAL1": 150.0,
            "CRVAL2": -30.0, "CRPIX1": 30.5, "CRPIX2": 30.5, "CD1_1": -np.cos(t) / 3600,
            "CD1_2": np.sin(t) / 3600, "CD2_1": np.sin(t) / 3600, "CD2_2": np.cos(t) / 3600}
    east = 1.0 / 3600 / np.cos(np.radians(30.0))  # deg of RA per arcsec of sky at dec -30
    detectors = [
        _tan(150.0 + 70 * east, -30.0),  # its west edge 20" into the grid's (turned) square
        _tan(150.0, -30.0, scale=2.0),  # 200" wide: holds the whole grid, no corner of it inside
        _tan(150.0 + 200 * east, -30.0),  # 150" clear of it
        _tan(150.0, -30.0 + 94 / 3600),  # 3" north of the turned square's top corner (41" up)
    ]
    path = tmp_path / "pawprint.fits"
    fits.HDUList([fits.PrimaryHDU(), *(fits.ImageHDU(np.zeros((100, 100), np.float32), h)
                                       for h in detectors)]).writeto(path)
    assert detectors_on_grid(path, grid) == [True, True, False, False]
    # the same detectors on a grid that holds them all
    wide = {**grid, "NAXIS1": 1200, "NAXIS2": 1200, "CRPIX1": 600.5, "CRPIX2": 600.5}
    assert detectors_on_grid(path, wide) == [True, True, True, True]


# --- the recipes on the tiny night -------------------------------------------------------------

@pytest.fixture(scope="module")
def tiled(tile_night):
    """The tiny night reduced to the tile, its statistics and the stacks (conftest)."""
    return tile_night


def _tile(out, tag):
    (frame,) = chain_products(out, tag)
    return frame.path


@pytest.mark.slow
def test_statistics_maps_equal_the_truth_coverage(tiled):
    run, out = tiled
    truth = load_truth(run)
    objects = [f["file"] for f in truth["frames"] if f["tag"] == "OBJECT"]
    with fits.open(_tile(out, "STAT_NIMG")) as hdul:
        nimg, header = hdul["TILE"].data, hdul["TILE"].header
    exptime = fits.getdata(_tile(out, "STAT_EXPTIME"), "TILE")
    mjd = fits.getdata(_tile(out, "STAT_MJD"), "TILE")
    assert mjd.dtype == np.dtype(">f8")  # minutes matter: MJDs need double precision
    ny, nx = nimg.shape
    y, x = np.mgrid[5 : ny - 5 : 7, 5 : nx - 5 : 7]
    ra, dec = WCS(header).all_pix2world(x.ravel() + 1, y.ravel() + 1, 1)
    # positions 3 detector pixels inside and outside every detector edge see the same frames:
    # away from edges, where the resampling kernel and the solution's few 0.1" do not matter
    inner, inner_time = truth_coverage(run, ra, dec, objects, edge=3.0)
    outer, _ = truth_coverage(run, ra, dec, objects, edge=-3.0)
    clear = inner == outer
    got_n = nimg[y.ravel(), x.ravel()][clear]
    got_t = exptime[y.ravel(), x.ravel()][clear]
    kinds, counts = np.unique(inner[clear], return_counts=True)
    # tiny: 6 offsets x 2 jitters; the tile has single-offset strips (2), overlaps of two
    # offsets (4) and of four (8) where the detector gaps' edges meet
    assert {2, 4} <= set(kinds[counts >= 50].tolist()), dict(zip(kinds, counts, strict=True))
    for kind in kinds:
        where = inner[clear] == kind
        agree = np.mean(got_n[where] == kind)
        # a dead or fully masked pixel of one pawprint lowers the count there (a few in 1000)
        assert agree > 0.98, (kind, agree, np.unique(got_n[where], return_counts=True))
        assert np.median(got_t[where]) == pytest.approx(np.median(inner_time[clear][where]))
    frames = [f for f in truth["frames"] if f["tag"] == "OBJECT"]
    mid = [f["mjd_obs"] + f["dit"] * f["ndit"] / 2 / 86400 for f in frames]
    covered = np.isfinite(mjd)
    assert np.all((mjd[covered] >= min(mid) - 1e-9) & (mjd[covered] <= max(mid) + 1e-9))
    astrms = fits.getdata(_tile(out, "STAT_ASTRMS"), "TILE")
    assert 1.0 < np.nanmedian(astrms) < 1000.0  # mas: SCAMP's per-detector rms vs Gaia


@pytest.mark.slow
def test_tile_keeps_zero_point_25_and_the_grid(tiled):
    run, out = tiled
    truth = load_truth(run)
    with fits.open(_tile(out, "TILED_IMAGE")) as hdul:
        primary, image, header = hdul[0].header, hdul["TILE"].data.astype(float), hdul["TILE"].header
    assert primary["ESO PRO CATG"] == "TILED_IMAGE" and primary["PHOTZP"] == 25.0
    assert primary["ESO QC NPAWPRINT"] == 12
    assert header["CTYPE1"] == "RA---ZEA" and header["ESO DRS TILE XMIN"] == 1
    # tiny: 8 x 0.339" pixels -> 8 x 1/3" on the tile
    assert np.sqrt(abs(np.linalg.det(WCS(header).pixel_scale_matrix))) * 3600 == pytest.approx(8 / 3)
    stars = Table.read(run / "truth" / "stars.fits")
    stars = stars[(stars["KIND"] == 0) & (stars["MAG"] > 12.5) & (stars["MAG"] < 15.5)]
    fwhm = max(f["seeing"] for f in truth["frames"] if f["tag"] == "OBJECT")  # arcsec
    radius = 2.0 * fwhm  # arcsec; tiny's coarse pixels are crowded beyond that
    tile_mags = _aperture_mags(image, header, stars, radius)
    pawprint_mags: dict[int, list[float]] = {}
    for frame in chain_products(out, "PHOTCAL_SCI"):
        with fits.open(frame.path) as hdul:
            for hdu in hdul[1:]:
                for star, mag in _aperture_mags(hdu.data.astype(float), hdu.header, stars, radius).items():
                    pawprint_mags.setdefault(star, []).append(mag)
    common = [s for s in tile_mags if len(pawprint_mags.get(s, [])) >= 2]
    assert len(common) > 100
    # the tile keeps the pawprints' flux scale: zero point 25 on both (tiny measured -0.003)
    difference = [tile_mags[s] - np.median(pawprint_mags[s]) for s in common]
    assert np.median(difference) == pytest.approx(0.0, abs=0.01)
    # and against the truth: the aperture holds 97 % of a star (+0.03), the neighbours of
    # tiny's 2.7" pixels add a few percent (measured -0.03 in all)
    truth_offset = np.median([tile_mags[s] - m for s, m in zip(stars["ID"], stars["MAG"], strict=True)
                              if s in tile_mags])
    assert truth_offset == pytest.approx(0.0, abs=0.06)


def _aperture_mags(image, header, stars, radius_arcsec) -> dict[int, float]:
    """Magnitudes (zero point 25) of ``stars`` in circular apertures, by star ID, where the
    aperture lies on finite pixels."""
    wcs = WCS(header)
    scale = np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600.0
    radius = radius_arcsec / scale
    x, y = wcs.all_world2pix(stars["RA_OBS"], stars["DEC_OBS"], 0)
    ny, nx = image.shape
    inside = (x > radius + 2) & (x < nx - radius - 3) & (y > radius + 2) & (y < ny - radius - 3)
    x, y, ids = x[inside], y[inside], np.asarray(stars["ID"])[inside]
    flux, _, flag = sep.sum_circle(np.nan_to_num(image, nan=0.0), x, y, radius, subpix=5)
    bad, _, _ = sep.sum_circle(np.isnan(image).astype(float), x, y, radius, subpix=1)
    good = (flag == 0) & (flux > 0) & (bad == 0)
    return dict(zip(ids[good].tolist(), (25.0 - 2.5 * np.log10(flux[good])).tolist(), strict=True))


@pytest.mark.slow
def test_stacks_one_per_offset_with_every_detector(tiled):
    _, out = tiled
    stacks = chain_products(out, "JITTERED_IMAGE_SCI")
    assert len(stacks) == 6
    with fits.open(stacks[0].path) as hdul:
        assert hdul[0].header["ESO QC NJITTER"] == 2
        assert [h.name for h in hdul[1:]] == [f"DET1.CHIP{n}" for n in range(1, 17)]
        for hdu in hdul[1:]:
            assert hdu.header["ESO QC COVERAGE"] > 0.8
            assert "ESO DRS TILE XMIN" in hdu.header
    # the chain catalogues each stack (VISIONS' build_stacks): one table per detector
    catalogues = chain_products(out, "JITTERED_OBJECT_CATALOGUE")
    assert sorted(fits.getval(c.path, "OFFSET_I") for c in catalogues) == sorted(
        fits.getval(s.path, "OFFSET_I") for s in stacks)
    with fits.open(catalogues[0].path) as hdul:
        assert [h.name for h in hdul[1:]] == [f"DET1.CHIP{n}" for n in range(1, 17)]
        assert hdul[0].header["ESO QC NSOURCES"] == sum(h.header["NAXIS2"] for h in hdul[1:]) > 100


@pytest.mark.slow
def test_resample_refuses_a_pawprint_without_its_weight(tiled, tmp_path):
    _, out = tiled
    photcal = chain_products(out, "PHOTCAL_SCI")
    needs = r"vircam_resample: needs at least 1 frame\(s\) tagged WEIGHT_SCI"
    with pytest.raises(RecipeInputError, match=needs):
        run_recipe("vircam_resample", FrameSet(photcal[:1]), output_dir=tmp_path)
    weights = chain_products(out, "WEIGHT_SCI")
    stranger = next(w for w in weights if w.name[:28] != photcal[0].name[:28])
    frames = FrameSet([photcal[0], stranger])
    with pytest.raises(RecipeInputError, match=r"vircam_resample: no WEIGHT_SCI made from .*photcal"):
        run_recipe("vircam_resample", frames, output_dir=tmp_path)
    assert not list(tmp_path.glob("*.fits"))


@pytest.mark.slow
def test_a_given_grid_is_used_and_two_grids_do_not_mix(tiled, tmp_path):
    _, out = tiled
    # a survey's predefined grid: the tile's, moved by 36 arcsec
    with fits.open(_tile(out, "TILED_IMAGE")) as hdul:
        header = fits.Header([c for c in hdul["TILE"].header.cards if not c.keyword.startswith("ESO")])
        shape = hdul["TILE"].data.shape
    header["CRVAL1"] += 0.01
    grid = tmp_path / "grid.fits"
    fits.PrimaryHDU(np.zeros(shape, np.float32), header=header).writeto(grid)
    photcal = chain_products(out, "PHOTCAL_SCI")[0]
    weight = next(f for f in chain_products(out, "WEIGHT_SCI") if f.name[:28] == photcal.name[:28])
    moved = run_recipe("vircam_resample", FrameSet([photcal, weight, Frame(grid, "TILE_HEADER", "CALIB")]),
                       output_dir=tmp_path / "moved")
    with fits.open(moved.by_tag("RESAMPLED_SCI")[0].path) as hdul:
        assert hdul[1].header["CRVAL1"] == pytest.approx(header["CRVAL1"], abs=1e-9)
        assert hdul[1].header["ESO DRS TILE NAXIS1"] == shape[1]
        last = next_record_index(hdul[0].header) - 1  # the resampling's own record
        assert hdul[0].header[f"ESO PRO REC{last} ID"] == "vircam_resample"
        assert hdul[0].header[f"ESO PRO REC{last} CAL2 CATG"] == "TILE_HEADER"
    resampled = chain_products(out, "RESAMPLED_SCI", "RESAMPLED_WEIGHT")
    other = [f for f in resampled if f.name[:28] != photcal.name[:28]][:2]
    with pytest.raises(RecipeInputError, match="lies on another tile grid"):
        run_recipe("vircam_tile", FrameSet([*other, *moved]), output_dir=tmp_path / "tile")
    assert not (tmp_path / "tile").exists() or not list((tmp_path / "tile").glob("*.fits"))


@pytest.mark.slow
def test_a_grid_holding_part_of_the_pawprints_leaves_the_other_detectors_out(tiled, tmp_path):
    _, out = tiled
    # a survey's predefined grid holding only the western third of this tile
    full = read_grid(_tile(out, "TILED_IMAGE"))
    part = sub_grid(full, 1, 1, int(full["NAXIS1"]) // 3, int(full["NAXIS2"]))
    grid = tmp_path / "part.fits"
    fits.PrimaryHDU(np.zeros(part.shape, np.float32), header=fits.Header(dict(part))).writeto(grid)
    photcal = chain_products(out, "PHOTCAL_SCI")
    offset = fits.getval(photcal[0].path, "OFFSET_I")
    frames = [f for f in photcal if fits.getval(f.path, "OFFSET_I") == offset][:2]
    all_weights = chain_products(out, "WEIGHT_SCI")
    weights = [next(w for w in all_weights if w.name[:28] == f.name[:28]) for f in frames]
    given = Frame(grid, "TILE_HEADER", "CALIB")
    resampled = run_recipe("vircam_resample", FrameSet([*frames, *weights, given]),
                           output_dir=tmp_path / "rs", qc_plots=False)
    for frame, product in zip(frames, resampled.by_tag("RESAMPLED_SCI"), strict=True):
        with fits.open(frame.path) as source, fits.open(product.path) as hdul:
            kept = [hdu.name for hdu in hdul[1:]]
            assert 0 < len(kept) < 16
            for hdu in source[1:]:  # where each detector's centre falls on the part grid
                wcs = WCS(hdu.header)
                ra, dec = wcs.all_pix2world(hdu.header["NAXIS1"] / 2, hdu.header["NAXIS2"] / 2, 1)
                x, _ = WCS(dict(part)).all_world2pix(ra, dec, 1)
                native = wcs.proj_plane_pixel_scales()[0].to_value("arcsec")
                half = hdu.header["NAXIS1"] / 2 * native / part.pixel_scale  # in grid pixels
                if 1 + half < x < part["NAXIS1"] - half:  # wholly inside across: kept, with data
                    assert hdu.name in kept
                    assert np.count_nonzero(hdul[hdu.name].data) > 0.5 * hdul[hdu.name].data.size
                elif x < -1.5 * half or x > part["NAXIS1"] + 1.5 * half:  # well clear of it: left out
                    assert hdu.name not in kept
    # the stack of the two holds every detector either of them has
    stack = run_recipe("vircam_stack", resampled, output_dir=tmp_path / "stack", qc_plots=False)
    with fits.open(stack.by_tag("JITTERED_IMAGE_SCI")[0].path) as hdul:
        stacked = {hdu.name for hdu in hdul[1:]}
    pieces = set()
    for product in resampled.by_tag("RESAMPLED_SCI"):
        with fits.open(product.path) as hdul:
            pieces |= {hdu.name for hdu in hdul[1:]}
    assert stacked == pieces
    # a grid clear of the whole pawprint is a one-line error, and nothing is written
    far = tmp_path / "far.fits"
    fits.PrimaryHDU(np.zeros(part.shape, np.float32),
                    header=fits.Header({**part, "CRVAL2": part["CRVAL2"] + 5.0})).writeto(far)
    with pytest.raises(RecipeInputError, match=f"^vircam_resample: {frames[0].name} lies outside the tile "
                                               "grid of TILE_HEADER far.fits$"):
        run_recipe("vircam_resample", FrameSet([frames[0], weights[0], Frame(far, "TILE_HEADER", "CALIB")]),
                   output_dir=tmp_path / "far")
    assert not (tmp_path / "far").exists() or not any((tmp_path / "far").iterdir())
