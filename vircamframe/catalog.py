"""Source catalogues of co-adds (the tile and the stacks): SExtractor, calibrated magnitudes.

:func:`catalogue_image` makes the catalogue of one co-added image (the tile, or one detector of
a stack) with its confidence map:

1. A first SExtractor pass (``seeing_thresh``) measures the seeing: the clipped median FWHM of
   bright, unflagged, round, unsaturated sources.
2. The second pass measures every source: windowed positions and their errors, fluxes in
   apertures of :data:`APERTURE_FACTORS` times the seeing, ``MAG_AUTO``, flags, ``CLASS_STAR``
   (given that seeing), sizes and shapes; the confidence map is ``MAP_WEIGHT``, the image's
   ``PHOTZP`` the zero point and its ``GAIN`` the gain.
3. The noise of source-free apertures (:func:`~vircamframe.numerics.catalog.empty_aperture_noise`)
   gives the correlated-noise factor of each aperture; the background part of SExtractor's
   errors is multiplied by it.
4. Bright isolated stars (of all images of a product: :func:`calibrate_catalogues`) give each
   aperture's correction to the largest one (ten times the seeing, the aperture the pawprints
   were calibrated in; :func:`vircamframe.numerics.photometry.aperture_correction`, the
   pawprint photometry's method).
5. Magnitudes are calibrated and aperture-corrected; their errors add, in quadrature, the
   corrected flux error, the zero-point error, the aperture correction's error and its
   star-to-star scatter (the PSF varies over a co-add of pawprints of different seeing).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from scipy import ndimage

from .errors import QualityGateError
from .numerics.catalog import (
    MAG_PER_FLUX_ERROR,
    corrected_flux_error,
    empty_aperture_noise,
    limiting_magnitude,
    magnitude_at_snr,
    nearest_neighbour,
)
from .numerics.photometry import aperture_correction
from .numerics.stats import robust_sigma
from .refcat.ldac import read_ldac
from .sextractor import run_sextractor

__all__ = ["APERTURE_FACTORS", "COLUMN_UNITS", "MAIN_APERTURE", "Catalogue", "calibrate_catalogues",
           "catalogue_image", "measure_seeing"]

log = logging.getLogger(__name__)

# Aperture diameters in units of the seeing FWHM; the last is the "total" reference of the
# aperture corrections (the pawprints' zero points are for 10 FWHM), MAIN_APERTURE the one of
# the limiting magnitude and QC APCOR (twice the seeing: near the best signal-to-noise).
APERTURE_FACTORS: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0)
MAIN_APERTURE = 2
# SExtractor's saturation level on a co-add, as a fraction of its SATURATE (the lowest of its
# inputs'). A star clipped at saturation in its pawprints has its flat top smoothed by the
# resampling and the jitter average to just under SATURATE in the co-add: on the small tile,
# stars peaking at 0.9-1.0 SATURATE came out 0.23 mag too faint, unflagged, while those below
# 0.9 were right to 0.013 mag. 0.8 is the margin the pawprint photometry keeps too.
COADD_SATURATION = 0.8
_N = len(APERTURE_FACTORS)

_PARAMETERS = (
    "NUMBER", "XWIN_IMAGE", "YWIN_IMAGE", "ALPHAWIN_J2000", "DELTAWIN_J2000", "ERRAWIN_WORLD",
    "ERRBWIN_WORLD", "ERRTHETAWIN_J2000", f"FLUX_APER({_N})", f"FLUXERR_APER({_N})", "FLUX_AUTO",
    "FLUXERR_AUTO", "KRON_RADIUS", "A_IMAGE", "B_IMAGE", "THETA_J2000", "BACKGROUND", "FLUX_MAX",
    "FLUX_RADIUS", "FWHM_IMAGE", "ELONGATION", "ELLIPTICITY", "CLASS_STAR", "FLAGS", "FLAGS_WEIGHT",
    "SNR_WIN",
)
_SEEING_PARAMETERS = ("XWIN_IMAGE", "YWIN_IMAGE", "FWHM_IMAGE", "ELONGATION", "FLAGS", "FLUX_MAX", "SNR_WIN")

# Units of the catalogue's columns (TUNITn).
COLUMN_UNITS: dict[str, str] = {
    "X_IMAGE": "pix", "Y_IMAGE": "pix", "RA": "deg", "DEC": "deg", "ERRA": "arcsec", "ERRB": "arcsec",
    "ERRTHETA": "deg", "FLUX_APER": "ADU", "FLUXERR_APER": "ADU", "MAG_APER": "mag", "MAGERR_APER": "mag",
    "FLUX_AUTO": "ADU", "FLUXERR_AUTO": "ADU", "MAG_AUTO": "mag", "MAGERR_AUTO": "mag", "KRON_RADIUS": "",
    "A_IMAGE": "pix", "B_IMAGE": "pix", "THETA": "deg", "BACKGROUND": "ADU", "FLUX_MAX": "ADU",
    "FLUX_RADIUS": "pix", "FWHM_IMAGE": "pix", "FWHM_WORLD": "arcsec", "ELONGATION": "",
    "ELLIPTICITY": "", "CLASS_STAR": "", "FLAGS": "", "FLAGS_WEIGHT": "", "SNR_WIN": "",
}


@dataclass
class Catalogue:
    """The catalogue of one image and what was measured to make it.

    Attributes
    ----------
    table : Table
        One row per source (columns: :data:`COLUMN_UNITS`).
    seeing : float
        Median stellar FWHM [pixels] (first pass).
    pixel_scale : float
        [arcsec per pixel].
    diameters, apcor, apcor_err, apcor_sig, noise_factor : ndarray
        Per aperture: diameter [pixels], correction to total [mag], the error of that (mean)
        correction [mag], the star-to-star scatter of the correction beyond the stars' noise
        (the PSF's variation over the co-add) [mag], and the correlated-noise factor the
        errors were scaled by.
    apcor_stars : int
        Stars the aperture corrections rest on.
    zero_point, zero_point_err : float
        [mag for 1 ADU per DIT].
    maglim : float
        5-sigma point-source limit (empty-aperture noise in the main aperture, corrected to
        total) [mag].
    maglim_snr : float
        Magnitude where the catalogued sources' median S/N falls to 5 [mag] (NaN when the
        detection threshold stops the catalogue before).
    stars : ndarray of bool
        Rows of point sources (bright, round, unflagged, with a stellar FWHM) used for the QC.
    """

    table: Table
    seeing: float
    pixel_scale: float
    diameters: np.ndarray
    apcor: np.ndarray
    apcor_err: np.ndarray
    apcor_sig: np.ndarray
    noise_factor: np.ndarray
    apcor_stars: int
    zero_point: float
    zero_point_err: float
    maglim: float
    maglim_snr: float
    stars: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, bool))
    aperture_sigma: float = float("nan")  # empty-aperture rms of the main aperture [ADU]
    growth: tuple[np.ndarray, np.ndarray] = field(repr=False, default=(np.zeros((0, 0)), np.zeros((0, 0))))

    def apply_aperture_corrections(self, apcor: np.ndarray, apcor_err: np.ndarray,
                                   apcor_sig: np.ndarray) -> None:
        """Calibrate the magnitudes with these corrections (their own, or borrowed when the
        image has too few stars) and compute the limiting magnitudes."""
        self.apcor, self.apcor_err, self.apcor_sig = apcor, apcor_err, apcor_sig
        _calibrate(self.table, self.zero_point, self.zero_point_err, apcor, np.hypot(apcor_err, apcor_sig))
        # the main aperture's empty-aperture rms in the image's units (not homogenised: the
        # median-confidence noise, the typical depth of the image)
        self.maglim = limiting_magnitude(self.aperture_sigma, self.zero_point, apcor[MAIN_APERTURE])
        flux = np.asarray(self.table["FLUX_APER"][:, MAIN_APERTURE], float)
        snr = flux / np.asarray(self.table["FLUXERR_APER"][:, MAIN_APERTURE], float)
        self.maglim_snr = magnitude_at_snr(np.asarray(self.table["MAG_APER"][:, MAIN_APERTURE]), snr)

    def qc(self) -> dict[str, tuple[object, str]]:
        """QC cards (without the ``ESO QC`` prefix): NSOURCES, MAGLIM, MAGLIMSNR, APCOR, FWHM,
        ELLIPTICITY, NOISEFAC, MAGZERR."""
        ell = self.table["ELLIPTICITY"][self.stars]
        return {
            "NSOURCES": (len(self.table), "sources in the catalogue"),
            "MAGLIM": (_finite(self.maglim), "[mag] 5-sigma point-source limit (empty apertures)"),
            "MAGLIMSNR": (_finite(self.maglim_snr), "[mag] where the sources' median S/N is 5"),
            "APCOR": (_finite(self.apcor[MAIN_APERTURE]), "[mag] correction of the main aperture"),
            "APDIAM": (float(self.diameters[MAIN_APERTURE]), "[pixel] main aperture diameter"),
            "FWHM": (_finite(self.seeing * self.pixel_scale), "[arcsec] median stellar FWHM"),
            "ELLIPTICITY": (_finite(np.median(ell)) if len(ell) else -1.0, "median stellar ellipticity"),
            "NOISEFAC": (_finite(self.noise_factor[MAIN_APERTURE]), "correlated-noise factor, main aperture"),
            "MAGZERR": (float(self.zero_point_err), "[mag] zero-point error in the magnitude errors"),
        }

    def cards(self) -> fits.Header:
        """Table-header cards: zero point, seeing, and per aperture its diameter, correction and
        noise factor (``ESO DRS APDIAMi``, ``APCORi``, ``APCERRi``, ``NOISEFi``)."""
        header = fits.Header()
        header["PHOTZP"] = (self.zero_point, "[mag] zero point of the magnitudes")
        header["HIERARCH ESO DRS MAGZERR"] = (self.zero_point_err, "[mag] zero-point error")
        header["HIERARCH ESO DRS SEEING"] = (_finite(self.seeing), "[pixel] seeing FWHM used")
        header["HIERARCH ESO DRS PIXSCALE"] = (self.pixel_scale, "[arcsec/pixel]")
        header["HIERARCH ESO DRS APSTARS"] = (self.apcor_stars, "stars of the aperture corrections")
        for i in range(len(self.diameters)):
            n, key = i + 1, "HIERARCH ESO DRS "
            header[f"{key}APDIAM{n}"] = (float(self.diameters[i]), f"[pixel] diameter, aperture {n}")
            header[f"{key}APCOR{n}"] = (_finite(self.apcor[i]), f"[mag] to total, aperture {n}")
            header[f"{key}APCERR{n}"] = (_finite(self.apcor_err[i]), f"[mag] error of APCOR{n}")
            header[f"{key}APCSIG{n}"] = (_finite(self.apcor_sig[i]), f"[mag] star scatter of APCOR{n}")
            header[f"{key}NOISEF{n}"] = (_finite(self.noise_factor[i]), f"noise factor, aperture {n}")
        return header


def _finite(value: float) -> float:
    """A value for a header card: NaN (not allowed in FITS headers) becomes -99."""
    value = float(value)
    return value if np.isfinite(value) else -99.0


def _write(path: Path, data: np.ndarray, header: fits.Header) -> Path:
    fits.PrimaryHDU(data.astype(np.float32, copy=False), header).writeto(path, overwrite=True,
                                                                         output_verify="silentfix")
    return path


def _seeing(objects: Table, saturate: float) -> float:
    """Clipped median FWHM [pixels] of bright, unflagged, round, unsaturated sources."""
    fwhm = np.asarray(objects["FWHM_IMAGE"], float)
    good = ((np.asarray(objects["FLAGS"]) == 0) & (np.asarray(objects["SNR_WIN"]) > 30)
            & (np.asarray(objects["ELONGATION"]) < 1.3)
            & (np.asarray(objects["FLUX_MAX"]) < COADD_SATURATION * saturate)
            & (fwhm > 0.5))
    if good.sum() < 3:
        return float("nan")
    values = fwhm[good]
    for _ in range(5):
        median, sigma = np.median(values), max(float(robust_sigma(values)), 0.02)
        values = values[np.abs(values - median) < 3 * sigma]
    return float(np.median(values))


def _pixel_scale(header: fits.Header) -> float:
    """[arcsec per pixel] of an image's celestial WCS."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return float(np.mean(proj_plane_pixel_scales(WCS(header, naxis=2)))) * 3600.0


def _inputs(data, confidence, header, workdir: Path, zero_point: float, detect_minarea: int):
    """SExtractor's image and weight files (NaN -> 0, no weight there) and its common options."""
    workdir.mkdir(parents=True, exist_ok=True)
    covered = np.isfinite(data) & np.isfinite(confidence) & (confidence > 0)
    image = _write(workdir / "image.fits", np.where(covered, data, np.float32(0.0)), header)
    weight = _write(workdir / "weight.fits", np.where(covered, confidence, np.float32(0.0)), fits.Header())
    saturate = float(header.get("SATURATE", np.inf))
    common = {"MAG_ZEROPOINT": zero_point, "BACK_SIZE": 64, "DETECT_MINAREA": detect_minarea,
              "WEIGHT_THRESH": 0,
              "SATUR_LEVEL": COADD_SATURATION * saturate if np.isfinite(saturate) else 1e30}
    common["SATUR_KEY"] = "NONE_SATURATE"  # SExtractor prefers a header's SATURATE to SATUR_LEVEL
    return image, weight, covered, common


def _first_pass(image, weight, workdir, common, thresh, saturate, log) -> float:
    first = workdir / "seeing.ldac"
    run_sextractor(image, first, workdir, weight, _SEEING_PARAMETERS,
                   {**common, "DETECT_THRESH": thresh, "ANALYSIS_THRESH": thresh}, log)
    return _seeing(read_ldac(first)[0][1], saturate)


def measure_seeing(data: np.ndarray, confidence: np.ndarray, header: fits.Header, workdir: Path, *,
                   seeing_thresh: float = 10.0, detect_minarea: int = 5, log: logging.Logger = log) -> float:
    """The seeing FWHM [pixels] of an image (SExtractor's first pass of :func:`catalogue_image`):
    the clipped median FWHM of bright, unflagged, round, unsaturated sources; NaN with fewer
    than 3 of them."""
    image, weight, _, common = _inputs(data, confidence, header, workdir, 0.0, detect_minarea)
    return _first_pass(image, weight, workdir, common, seeing_thresh,
                       float(header.get("SATURATE", np.inf)), log)


def catalogue_image(
    data: np.ndarray,
    confidence: np.ndarray,
    header: fits.Header,
    workdir: Path,
    *,
    zero_point: float,
    zero_point_err: float,
    detect_thresh: float = 1.5,
    detect_minarea: int = 5,
    seeing_thresh: float = 10.0,
    seeing: float | None = None,
    log: logging.Logger = log,
) -> Catalogue:
    """The source catalogue of one co-added image.

    Parameters
    ----------
    data : ndarray
        The co-add [ADU per DIT on ``zero_point``]; NaN where nothing covers it.
    confidence : ndarray
        Its confidence map (relative inverse variance; 0 where nothing covers it).
    header : Header
        The image's header: celestial WCS, ``GAIN`` [e-/ADU] and, when known, ``SATURATE`` [ADU].
    workdir : path
        Folder for SExtractor's inputs, configuration, check images and log.
    zero_point, zero_point_err : float
        Zero point of ``data`` [mag for 1 ADU per DIT] and its error [mag].
    detect_thresh : float
        Detection threshold [sigma per pixel] (with ``detect_minarea`` connected pixels).
    seeing_thresh : float
        Detection threshold of the seeing pass [sigma].
    seeing : float, optional
        The seeing FWHM [pixels] when known (:func:`measure_seeing`); measured otherwise.

    Returns
    -------
    Catalogue
        Without aperture corrections and calibrated magnitudes yet: they come from the curves
        of growth of all images of a product together (:func:`calibrate_catalogues`).

    Raises
    ------
    QualityGateError
        Fewer than 3 point sources to measure the seeing on.
    """
    image, weight, covered, common = _inputs(data, confidence, header, workdir, zero_point, detect_minarea)
    scale, gain = _pixel_scale(header), float(header.get("GAIN", 0.0))
    saturate = float(header.get("SATURATE", np.inf))
    if seeing is None:
        seeing = _first_pass(image, weight, workdir, common, seeing_thresh, saturate, log)
    if not np.isfinite(seeing):
        raise QualityGateError("fewer than 3 bright unflagged point sources to measure the seeing on: "
                               "empty or very shallow image?")
    diameters = np.array(APERTURE_FACTORS) * seeing
    catalog = workdir / "catalogue.ldac"
    segmentation, background = workdir / "segmentation.fits", workdir / "background.fits"
    run_sextractor(image, catalog, workdir, weight, _PARAMETERS, {
        **common, "DETECT_THRESH": detect_thresh, "ANALYSIS_THRESH": detect_thresh,
        "PHOT_APERTURES": ",".join(f"{d:.3f}" for d in diameters), "SEEING_FWHM": seeing * scale,
        "CHECKIMAGE_TYPE": "SEGMENTATION,BACKGROUND",
        "CHECKIMAGE_NAME": f"{segmentation.absolute()},{background.absolute()}",
    }, log)
    objects = read_ldac(catalog)[0][1]
    # correlated noise: empty apertures on the noise-homogenised, background-subtracted image,
    # built in place in float32 (a full tile is 200 million pixels: each copy is 0.8 GB)
    bad = ndimage.binary_dilation(fits.getdata(segmentation) > 0, iterations=max(2, round(seeing)))
    bad |= ~covered
    median_conf = float(np.median(confidence[covered])) if covered.any() else 1.0
    homogenised = np.subtract(data, fits.getdata(background), dtype=np.float32)
    noise_scale = np.where(covered, confidence, np.float32(0.0)).astype(np.float32, copy=False)
    noise_scale /= np.float32(median_conf)
    np.sqrt(noise_scale, out=noise_scale)
    homogenised *= noise_scale
    del noise_scale
    homogenised[~covered] = np.nan
    empty = empty_aperture_noise(homogenised, bad, diameters)
    del homogenised, bad
    factor = np.where(np.isfinite(empty.factor), empty.factor, 1.0)
    log.info("seeing %.2f px (%.2f arcsec); empty-aperture noise factors %s (%s apertures)", seeing,
             seeing * scale, " ".join(f"{f:.2f}" for f in factor), " ".join(str(n) for n in empty.n))
    table = _table(objects, diameters, factor, empty, gain, scale)
    stars, growth = _growth_stars(table, seeing, saturate, diameters)
    nan = np.full(len(diameters), np.nan)
    return Catalogue(table, seeing, scale, diameters, nan, nan, nan, factor, 0, zero_point,
                     zero_point_err, float("nan"), float("nan"), stars, float(empty.sigma[MAIN_APERTURE]),
                     growth)


def _table(objects: Table, diameters: np.ndarray, factor: np.ndarray, empty, gain: float,
           scale: float) -> Table:
    """SExtractor's columns renamed, errors corrected for correlated noise."""
    n = len(objects)
    flux = np.asarray(objects["FLUX_APER"], float).reshape(n, -1)
    flux_err = corrected_flux_error(flux, np.asarray(objects["FLUXERR_APER"], float).reshape(n, -1),
                                    gain, factor[None, :])
    kron_area = (np.pi * np.asarray(objects["KRON_RADIUS"], float) ** 2
                 * np.asarray(objects["A_IMAGE"], float) * np.asarray(objects["B_IMAGE"], float))
    auto_err = corrected_flux_error(objects["FLUX_AUTO"], objects["FLUXERR_AUTO"], gain,
                                    empty.factor_at_area(kron_area) if np.isfinite(empty.factor).any()
                                    else 1.0)
    columns = _copied(objects, _POSITION_COLUMNS)
    columns.update({
        "ERRA": np.asarray(objects["ERRAWIN_WORLD"], float) * 3600.0,
        "ERRB": np.asarray(objects["ERRBWIN_WORLD"], float) * 3600.0,
        "ERRTHETA": np.asarray(objects["ERRTHETAWIN_J2000"], np.float32),
        "FLUX_APER": flux.astype(np.float32),
        "FLUXERR_APER": flux_err.astype(np.float32),
        "MAG_APER": np.zeros((n, len(diameters)), np.float32),
        "MAGERR_APER": np.zeros((n, len(diameters)), np.float32),
        "FLUX_AUTO": np.asarray(objects["FLUX_AUTO"], np.float32),
        "FLUXERR_AUTO": auto_err.astype(np.float32),
        "MAG_AUTO": np.zeros(n, np.float32),
        "MAGERR_AUTO": np.zeros(n, np.float32),
    })
    columns.update(_copied(objects, _SHAPE_COLUMNS))
    columns["FWHM_WORLD"] = (np.asarray(objects["FWHM_IMAGE"], float) * scale).astype(np.float32)
    columns.update(_copied(objects, _QUALITY_COLUMNS))
    return Table(columns)


# SExtractor columns the catalogue keeps as they are: (our name, SExtractor's name, dtype)
_POSITION_COLUMNS = (("NUMBER", "NUMBER", np.int32), ("X_IMAGE", "XWIN_IMAGE", float),
                     ("Y_IMAGE", "YWIN_IMAGE", float), ("RA", "ALPHAWIN_J2000", float),
                     ("DEC", "DELTAWIN_J2000", float))
_SHAPE_COLUMNS = tuple((name, source, np.float32) for name, source in (
    ("KRON_RADIUS", "KRON_RADIUS"), ("A_IMAGE", "A_IMAGE"), ("B_IMAGE", "B_IMAGE"), ("THETA", "THETA_J2000"),
    ("BACKGROUND", "BACKGROUND"), ("FLUX_MAX", "FLUX_MAX"), ("FLUX_RADIUS", "FLUX_RADIUS"),
    ("FWHM_IMAGE", "FWHM_IMAGE")))
_QUALITY_COLUMNS = (("ELONGATION", "ELONGATION", np.float32), ("ELLIPTICITY", "ELLIPTICITY", np.float32),
                    ("CLASS_STAR", "CLASS_STAR", np.float32), ("FLAGS", "FLAGS", np.int16),
                    ("FLAGS_WEIGHT", "FLAGS_WEIGHT", np.int16), ("SNR_WIN", "SNR_WIN", np.float32))


def _copied(objects: Table, spec) -> dict[str, np.ndarray]:
    """SExtractor columns under our names and types."""
    return {name: np.asarray(objects[source], dtype) for name, source, dtype in spec}


def _growth_stars(table: Table, seeing: float, saturate: float, diameters: np.ndarray):
    """Point sources, and the curve of growth of the bright isolated ones.

    Stars: unflagged, peak below 80 % of saturation, elongation below 1.3, FWHM within 25 % of
    the seeing; for the curve of growth also S/N above 50 in the largest aperture and no other
    source within its radius plus one seeing FWHM.

    Returns
    -------
    stars : ndarray of bool
    growth : (ndarray, ndarray)
        Per picked star and aperture: magnitude in the largest aperture minus that in the
        aperture, and the noise of that difference [mag].
    """
    flux = np.asarray(table["FLUX_APER"], float)
    err = np.asarray(table["FLUXERR_APER"], float)
    stars = ((np.asarray(table["FLAGS"]) == 0) & (np.asarray(table["FLAGS_WEIGHT"]) == 0)
             & (np.asarray(table["FLUX_MAX"]) < COADD_SATURATION * saturate)
             & (np.asarray(table["ELONGATION"]) < 1.3)
             & (np.abs(np.asarray(table["FWHM_IMAGE"]) / seeing - 1.0) < 0.25))
    isolated = nearest_neighbour(table["X_IMAGE"], table["Y_IMAGE"]) > diameters[-1] / 2 + seeing
    with np.errstate(divide="ignore", invalid="ignore"):
        pick = stars & isolated & (flux[:, -1] / err[:, -1] > 50) & np.all(flux > 0, axis=1)
        diff = -2.5 * np.log10(flux[pick, -1:] / flux[pick])
        noise = MAG_PER_FLUX_ERROR * np.hypot(err[pick] / flux[pick], err[pick, -1:] / flux[pick, -1:])
    return stars, (diff, noise)


def calibrate_catalogues(catalogues: list[Catalogue]) -> int:
    """Aperture corrections from the pooled curves of growth of ``catalogues``, applied to all.

    The apertures are in units of each image's seeing, so the images of one product (the tile,
    or the detectors of a stack, whose own few stars would not do) share their corrections.
    Per aperture: the clipped correction to the largest and its error
    (:func:`vircamframe.numerics.photometry.aperture_correction`, the pawprint photometry's
    method), and the stars' scatter about it beyond their noise (the PSF changes over a co-add
    of pawprints of different seeing: an error of every magnitude).

    Returns
    -------
    int
        The stars used.

    Raises
    ------
    QualityGateError
        Fewer than 3 bright isolated stars in all of them.
    """
    diff = np.concatenate([c.growth[0] for c in catalogues])
    noise = np.concatenate([c.growth[1] for c in catalogues])
    n_used = len(diff)
    if n_used < 3:
        raise QualityGateError(f"{n_used} bright isolated stars for the aperture corrections "
                               "(at least 3 needed): too crowded or too shallow")
    n_ap = diff.shape[1]
    apcor, apcor_err, apcor_sig = (np.zeros(n_ap) for _ in range(3))
    for i in range(n_ap - 1):
        a, _, e, _ = aperture_correction(np.zeros(n_used), diff[:, i], np.ones(n_used))
        scatter = float(robust_sigma(diff[:, i]))
        apcor[i], apcor_err[i] = a, e
        apcor_sig[i] = np.sqrt(max(scatter**2 - float(np.median(noise[:, i] ** 2)), 0.0))
    for catalogue in catalogues:
        catalogue.apcor_stars = n_used
        catalogue.apply_aperture_corrections(apcor, apcor_err, apcor_sig)
    return n_used


def _calibrate(table: Table, zp: float, zp_err: float, apcor: np.ndarray, apcor_err: np.ndarray) -> None:
    """Fill MAG_APER/MAGERR_APER (aperture-corrected to total) and MAG_AUTO/MAGERR_AUTO (not
    corrected: the Kron aperture's own estimate of the total); 99 where the flux is not positive."""
    for flux_col, err_col, mag_col, magerr_col, cor, cor_err in (
        ("FLUX_APER", "FLUXERR_APER", "MAG_APER", "MAGERR_APER", apcor, apcor_err),
        ("FLUX_AUTO", "FLUXERR_AUTO", "MAG_AUTO", "MAGERR_AUTO", 0.0, 0.0),
    ):
        flux, err = np.asarray(table[flux_col], float), np.asarray(table[err_col], float)
        positive = flux > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = np.where(positive, zp - 2.5 * np.log10(flux) + cor, 99.0)
            magerr = np.where(positive, np.sqrt((MAG_PER_FLUX_ERROR * err / flux) ** 2 + zp_err**2
                                                + np.square(cor_err)), 99.0)
        table[mag_col] = mag.astype(np.float32)
        table[magerr_col] = magerr.astype(np.float32)
