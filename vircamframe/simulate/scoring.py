"""Scoring science products of a simulated run against its truth (tests and accuracy benchmarks).

Each function measures one acceptance quantity of the science pawprints the same way for the
tests (``tiny``) and for ``benchmarks/science_accuracy.py`` (any preset).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .truth import frame_stripes, truth_image

__all__ = [
    "aperture_fluxes",
    "background_flatness",
    "centroid",
    "exact_twomass",
    "high_pass",
    "illumination_truth",
    "photometry_scores",
    "reduced_zero_points",
    "sky_pattern_rms",
    "skysub_stripes",
    "star_flux_ratios",
]

N_DETECTORS = 16


def sky_pattern_rms(sky: str | os.PathLike, flat: str | os.PathLike, run: str | os.PathLike) -> dict:
    """Per detector, the rms of MASTER_SKY x flat / truth flat about its median (fraction).

    The sky of a flat-fielded frame times the flat it was divided by is the raw sky pattern,
    truth flat times the (nearly uniform) sky; pixels with truth flat < 0.5 are left out.
    """
    result = {}
    with fits.open(sky) as sky_hdul, fits.open(flat) as flat_hdul:
        for chip in range(1, N_DETECTORS + 1):
            extname = f"DET1.CHIP{chip}"
            truth = truth_image(run, "flat", chip)
            ratio = sky_hdul[extname].data * flat_hdul[extname].data / truth
            good = np.isfinite(ratio) & (truth > 0.5)
            ratio = ratio[good] / np.median(ratio[good])
            result[chip] = float(np.std(ratio - 1.0))
    return result


def mesh_medians(image: np.ndarray, mesh: int = 64) -> np.ndarray:
    """Median of each ``mesh`` x ``mesh`` cell (NaN ignored)."""
    ny, nx = image.shape
    return np.array([[np.nanmedian(image[y : y + mesh, x : x + mesh]) for x in range(0, nx, mesh)]
                     for y in range(0, ny, mesh)])


def background_flatness(image: str | os.PathLike, mask: str | os.PathLike, mesh: int = 64) -> dict:
    """Per detector of a SKYSUB_SCI: (rms, mean) of the mesh medians, sources masked, in QC SKYSIG."""
    result = {}
    with fits.open(image) as hdul, fits.open(mask) as masks:
        for chip in range(1, N_DETECTORS + 1):
            hdu = hdul[f"DET1.CHIP{chip}"]
            sigma = hdu.header["ESO QC SKYSIG"]
            data = np.where(masks[f"DET1.CHIP{chip}"].data > 0, np.nan, hdu.data)
            medians = mesh_medians(data, mesh)
            result[chip] = (float(np.std(medians) / sigma), float(np.mean(medians) / sigma))
    return result


def skysub_stripes(
    truth: dict, raw_file: str, chip: int, sky_files: Sequence[str], gaincor: float
) -> np.ndarray:
    """The stripes a sky-subtracted, flat-fielded frame holds, ADU per DIT, one per row.

    Its own stripes minus those of the sky (the mean of its frames'), divided by sqrt(NDIT)
    (a raw sum holds sqrt(NDIT) times the per-DIT pattern), times the detector's gain
    correction.
    """
    ndit = truth["science_setup"]["ndit"]
    sky = np.mean([frame_stripes(truth, name, chip) for name in sky_files], axis=0)
    return (frame_stripes(truth, raw_file, chip) - sky) / np.sqrt(ndit) * gaincor


def high_pass(profile: np.ndarray, width: int = 33) -> np.ndarray:
    """A row profile less its running mean over ``width`` rows (structure below the mesh)."""
    from scipy.ndimage import uniform_filter1d

    return profile - uniform_filter1d(profile, width, mode="nearest")


def aperture_fluxes(image: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """Aperture sums minus the median of an annulus (radius + 3 to radius + 9) times the area.

    The median keeps neighbours and bad pixels (NaN, skipped everywhere) out of the local
    background. Positions are 0-based pixels at least ``radius + 10`` from the edges.
    """
    half = int(radius + 10)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    fluxes = []
    for cx, cy in zip(x, y, strict=True):
        ix, iy = round(cx), round(cy)
        cut = image[iy - half : iy + half + 1, ix - half : ix + half + 1]
        r = np.hypot(xx + ix - cx, yy + iy - cy)
        aperture = (r <= radius) & np.isfinite(cut)
        annulus = (r >= radius + 3) & (r <= radius + 9) & np.isfinite(cut)
        fluxes.append(cut[aperture].sum() - aperture.sum() * np.median(cut[annulus]))
    return np.array(fluxes)


def centroid(image: np.ndarray, x: float, y: float, half: int = 3) -> tuple[float, float, float]:
    """Background-subtracted first-moment centroid in a box (0-based pixels) and its flux.

    The background is the median of a box three times larger.
    """
    ix, iy = round(x), round(y)
    box = image[iy - half : iy + half + 1, ix - half : ix + half + 1]
    ring = image[iy - 3 * half : iy + 3 * half + 1, ix - 3 * half : ix + 3 * half + 1]
    sub = box - np.median(ring)
    yy, xx = np.mgrid[iy - half : iy + half + 1, ix - half : ix + half + 1]
    weight = np.clip(sub, 0, None)
    total = weight.sum()
    return float((weight * xx).sum() / total), float((weight * yy).sum() / total), float(sub.sum())


def star_flux_ratios(
    basic: str | os.PathLike, final: str | os.PathLike, run: str | os.PathLike, radius: float,
    mags: tuple[float, float] = (10.0, 13.0),
) -> np.ndarray:
    """Aperture flux of truth stars in a final pawprint over that in its basic-calibrated one.

    The same photometry (:func:`aperture_fluxes`, over the pixels valid in both) on both: what
    sky subtraction, destriping and background subtraction took from the stars. Stars: truth
    stars with magnitude in ``mags``, positions from the basic frame's WCS refined by a
    centroid (the header pointing is off by up to a few arcsec).
    """
    from astropy.wcs import WCS

    stars = Table.read(os.path.join(run, "truth", "stars.fits"))
    stars = stars[(stars["KIND"] == 0) & (stars["MAG"] > mags[0]) & (stars["MAG"] < mags[1])]
    ratios = []
    with fits.open(basic) as b, fits.open(final) as f:
        for chip in range(1, N_DETECTORS + 1):
            hb, hf = b[f"DET1.CHIP{chip}"], f[f"DET1.CHIP{chip}"]
            img_b, img_f = hb.data.astype(np.float64), hf.data.astype(np.float64)
            bad = ~np.isfinite(img_b) | ~np.isfinite(img_f)
            img_b[bad], img_f[bad] = np.nan, np.nan
            x, y = WCS(hb.header).all_world2pix(stars["RA_OBS"], stars["DEC_OBS"], 0)
            edge = radius + 12
            inside = (x > edge) & (x < img_b.shape[1] - edge) & (y > edge) & (y < img_b.shape[0] - edge)
            if not inside.any():
                continue
            filled = np.nan_to_num(img_b)
            x, y = np.array([centroid(filled, *xy)[:2] for xy in zip(x[inside], y[inside], strict=True)]).T
            flux_b = aperture_fluxes(img_b, x, y, radius)
            flux_f = aperture_fluxes(img_f, x, y, radius)
            good = flux_b > 0
            ratios.extend(flux_f[good] / flux_b[good])
    return np.array(ratios)


def reduced_zero_points(
    pawprint: str | os.PathLike, master_flat: str | os.PathLike, run: str | os.PathLike,
) -> dict[int, float]:
    """True zero point of each detector of a calibrated pawprint [mag for 1 ADU per DIT].

    The simulator's frame zero point is for 1 ADU/s at flat 1 (and illumination 1); the
    pipeline divides by its normalised flat and multiplies by the gain correction, so a star
    of true rate ``r`` reads ``r DIT s`` with ``s`` the median over the detector of truth flat
    x GAINCOR / master flat. Dead pixels (truth flat < 0.5) are left out.
    """
    import json
    from pathlib import Path

    truth = json.loads(Path(run, "truth", "truth.json").read_text())
    name = fits.getval(pawprint, "ESO PRO REC1 RAW1 NAME")  # the raw frame it descends from
    frame = next((f for f in truth["frames"] if f["file"] == name), None)
    if frame is None or frame.get("zero_point") is None:
        raise KeyError(f"{name}: no on-sky frame of that name in the truth of {run}")
    result = {}
    with fits.open(pawprint) as paw, fits.open(master_flat) as flat, \
            fits.open(os.path.join(run, "truth", "flat.fits")) as true_flat:
        for chip in range(1, N_DETECTORS + 1):
            extname = f"DET1.CHIP{chip}"
            gaincor = float(paw[extname].header.get("ESO DRS GAINCOR", 1.0))
            t, m = true_flat[extname].data.astype(float), flat[extname].data.astype(float)
            good = (t > 0.5) & np.isfinite(m) & (m > 0)
            scale = float(np.median(t[good] * gaincor / m[good]))
            result[chip] = frame["zero_point"] + 2.5 * np.log10(frame["dit"] * scale)
    return result


def illumination_truth(run: str | os.PathLike) -> dict[int, np.ndarray]:
    """Per detector, the true illumination pattern as a zero-point map [mag], 2.5 log10(P)."""
    with fits.open(os.path.join(run, "truth", "illumination.fits")) as hdul:
        return {chip: 2.5 * np.log10(hdul[f"DET1.CHIP{chip}"].data.astype(float))
                for chip in range(1, N_DETECTORS + 1)}


def photometry_scores(
    photcal: Sequence[str | os.PathLike], skysub: Sequence[str | os.PathLike], illumcorr: str | os.PathLike,
    master_flat: str | os.PathLike, run: str | os.PathLike,
) -> dict:
    """How well a photometric calibration recovered the simulator's zero points and pattern.

    Parameters
    ----------
    photcal, skysub : sequence of path
        The PHOTCAL_SCI products and the SKYSUB_SCI pawprints they were made from, in order.
    illumcorr : path
        The MASTER_ILLUMCORR of the run (its STARS table says which detectors had stars).
    master_flat : path
        The MASTER_TWILIGHT_FLAT the pawprints were flat-fielded with.

    Returns
    -------
    dict
        ``offsets``: per pawprint, (our MAGZPT + mean correction) - (true zero point + mean true
        pattern) over the detectors with stars [mag] (the split between a frame zero point and
        the illumination map is a normalisation choice; this comparison is free of it);
        ``detectors``: those detectors; ``pattern_rms``: rms of the true pattern over them;
        ``residual_rms``: rms of (our map - true map), both less their means [mag]; the true map
        is the pattern plus each detector's true zero-point offset from the others (the
        gain-harmonisation error of the flat).
    """
    stars = Table.read(illumcorr, "STARS")
    detectors = sorted(set(np.asarray(stars["DETECTOR"])[np.asarray(stars["USED"], bool)].tolist()))
    truth = illumination_truth(run)
    with fits.open(illumcorr) as hdul:
        ours = {d: -2.5 * np.log10(hdul[f"DET1.CHIP{d}"].data.astype(float)) for d in detectors}
    # the true pattern on the map's grid (cell centres)
    true_maps = {}
    for d in detectors:
        n, grid = truth[d].shape[0], ours[d].shape[0]
        index = (n / grid * (np.arange(grid) + 0.5)).astype(int)
        true_maps[d] = truth[d][np.ix_(index, index)]
    offsets, detector_zp = [], []
    for product, pawprint in zip(photcal, skysub, strict=True):
        zp = float(fits.getval(product, "ESO QC MAGZPT"))
        true_zp = reduced_zero_points(pawprint, master_flat, run)
        detector_zp.append([true_zp[d] for d in detectors])
        offsets.append(np.mean([zp + ours[d].mean() for d in detectors])
                       - np.mean([true_zp[d] + true_maps[d].mean() for d in detectors]))
    # the true correction: the pattern plus each detector's zero-point difference (the
    # pipeline's flat harmonises the detectors' gains only as well as the twilight allows)
    relative = np.mean(detector_zp, axis=0) - np.mean(detector_zp)
    fit_all = np.concatenate([ours[d].ravel() for d in detectors])
    true_all = np.concatenate([true_maps[d].ravel() + relative[i] for i, d in enumerate(detectors)])
    residual = (fit_all - fit_all.mean()) - (true_all - true_all.mean())
    return {"offsets": np.array(offsets), "detectors": detectors, "pattern_rms": float(np.std(true_all)),
            "residual_rms": float(np.std(residual))}


def exact_twomass(run: str | os.PathLike, path: str | os.PathLike, faint: float = 16.0) -> str | os.PathLike:
    """Write the simulator's true stars as a 2MASS PSC table (VizieR II/246 columns), errors
    0.005 mag, quality A, positions at the observation epoch: a noise-free reference, so that
    what is left of a photometric calibration's error is the pipeline's own."""
    stars = Table.read(os.path.join(run, "truth", "stars.fits"))
    stars = stars[(stars["KIND"] == 0) & (stars["J_2MASS"] < faint)]
    n = len(stars)
    error = np.full(n, 0.005, np.float32)
    Table({"RAJ2000": stars["RA_OBS"], "DEJ2000": stars["DEC_OBS"],
           "Jmag": stars["J_2MASS"], "e_Jmag": error, "Hmag": stars["H_2MASS"], "e_Hmag": error,
           "Kmag": stars["KS_2MASS"], "e_Kmag": error, "Qflg": np.full(n, "AAA")}).write(path, overwrite=True)
    return path


def catalogue_scores(
    catalogue: str | os.PathLike, run: str | os.PathLike, extname: str = "TILE", min_snr: float = 20.0,
    match_radius: float = 0.5, isolation: float = 3.0, aperture: int | None = None,
) -> dict:
    """How well a source catalogue (TILED_OBJECT_CATALOGUE) recovered the true stars.

    Stars of the truth (``KIND`` 0) are matched to the catalogue's nearest source within
    ``match_radius`` seeing FWHM; kept are those measured with S/N above ``min_snr`` in the
    main aperture (``aperture``: index, default the QC APDIAM one), unflagged (FLAGS 0: not
    saturated, blended or truncated), and isolated: no other true source (star or galaxy)
    brighter than the star's magnitude + 2.5 within ``isolation`` FWHM.

    Returns
    -------
    dict
        ``n``; ``pos_rms_mas``: rms of the position offsets per axis (RA cos dec, Dec) [mas];
        ``pos_offset_mas``: mean offsets; ``mag_median``: median of catalogue minus true
        magnitude [mag]; ``norm_rms``: rms of (residual - median) / error, with the error less
        its zero-point term (the median takes out what is common to all stars);
        ``norm_rms_total``: rms of residual / full error (the zero-point error in it);
        ``pos_robust_mas`` and ``norm_robust``: the same as robust sigmas (1.4826 MAD), which
        leave out the tail of blends the isolation cut misses.
    """
    from scipy.spatial import cKDTree

    from ..numerics.stats import robust_sigma

    table = Table.read(catalogue, extname)
    header = fits.getheader(catalogue, extname)
    stars = Table.read(os.path.join(run, "truth", "stars.fits"))
    scale = float(header["ESO DRS PIXSCALE"])
    fwhm = float(header["ESO DRS SEEING"]) * scale / 3600.0  # deg
    if aperture is None:
        diameters = [header[f"ESO DRS APDIAM{i}"] for i in range(1, len(table["MAG_APER"][0]) + 1)]
        aperture = int(np.argmin(np.abs(np.array(diameters) - fits.getval(catalogue, "ESO QC APDIAM"))))
    dec0 = np.deg2rad(np.median(table["DEC"]))

    def plane(ra, dec):
        return np.column_stack([np.asarray(ra) * np.cos(dec0), np.asarray(dec)])

    true_xy = plane(stars["RA_OBS"], stars["DEC_OBS"])
    tree = cKDTree(true_xy)
    distance, index = cKDTree(plane(table["RA"], table["DEC"])).query(true_xy)
    mag_true = np.asarray(stars["MAG"], float)
    isolated = np.ones(len(stars), bool)
    for i, neighbours in enumerate(tree.query_ball_point(true_xy, isolation * fwhm)):
        others = [j for j in neighbours if j != i]
        isolated[i] = not others or np.all(mag_true[others] > mag_true[i] + 2.5)
    rows = index
    flux = np.asarray(table["FLUX_APER"][rows, aperture], float)
    snr = flux / np.asarray(table["FLUXERR_APER"][rows, aperture], float)
    keep = ((np.asarray(stars["KIND"]) == 0) & (distance < match_radius * fwhm) & isolated
            & (snr > min_snr) & (np.asarray(table["FLAGS"][rows]) == 0))
    rows = rows[keep]
    d_ra = (np.asarray(table["RA"][rows]) - np.asarray(stars["RA_OBS"][keep])) * np.cos(dec0) * 3.6e6
    d_dec = (np.asarray(table["DEC"][rows]) - np.asarray(stars["DEC_OBS"][keep])) * 3.6e6
    residual = np.asarray(table["MAG_APER"][rows, aperture], float) - mag_true[keep]
    error = np.asarray(table["MAGERR_APER"][rows, aperture], float)
    zp_err = float(header.get("ESO DRS MAGZERR", 0.0))
    median = float(np.median(residual))
    random = np.sqrt(np.clip(error**2 - zp_err**2, 1e-12, None))
    return {"n": int(keep.sum()), "pos_rms_mas": (float(np.std(d_ra)), float(np.std(d_dec))),
            "pos_offset_mas": (float(np.mean(d_ra)), float(np.mean(d_dec))), "mag_median": median,
            "norm_rms": float(np.sqrt(np.mean(((residual - median) / random) ** 2))),
            "norm_rms_total": float(np.sqrt(np.mean((residual / error) ** 2))),
            "pos_robust_mas": (float(robust_sigma(d_ra)), float(robust_sigma(d_dec))),
            "norm_robust": float(robust_sigma((residual - median) / random))}
