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
    "high_pass",
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
