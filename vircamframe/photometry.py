"""The photometric calibration of a set of pawprints against 2MASS.

:func:`measure_stars` runs SExtractor on each pawprint (aperture fluxes in a fixed ladder of
apertures), places the sources on the sky with the pawprint's astrometric solution
(``ASTROM_HEADER``), and matches them to 2MASS stars whose VIRCAM magnitude comes from ESO's
colour equations (:mod:`vircamframe.passbands`). :func:`calibrate` then picks, per pawprint, a
photometric aperture of about twice the seeing and its correction to a near-total aperture of
ten times the seeing, and fits frame zero points and the illumination correction together
(:func:`vircamframe.numerics.photometry.fit_zero_points`). The recipe ``vircam_photometry``
writes the products.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table, vstack
from astropy.wcs import WCS, FITSFixedWarning

from .errors import QualityGateError
from .fitsio import open_fits
from .keywords import frame_info, read_primary_header
from .numerics.photometry import (
    ZeroPointFit,
    affine_geometry,
    aperture_correction,
    fit_zero_points,
    unit_coordinates,
    weighted_clipped_mean,
)
from .passbands import COLOUR_EQUATIONS, band_name
from .refcat import TWOMASS_PSC
from .refcat.ldac import read_ldac
from .sextractor import run_sextractor
from .wcs import footprint, replace_wcs, wcs_cards

__all__ = [
    "APERTURE_DIAMETERS",
    "ILLUMINATION_GRID",
    "PhotometricSolution",
    "ReferenceStars",
    "calibrate",
    "correction_map",
    "detector_illumination_cards",
    "focal_plane_geometry",
    "illumination_cards",
    "measure_stars",
    "reference_stars",
    "scale_to_zero_point",
]

log = logging.getLogger(__name__)

# Aperture diameters [pixels] measured on every source: from the core of a 2-pixel seeing
# disc to ten times a 4-pixel one, so a photometric and a near-total aperture exist at any
# plausible seeing.
APERTURE_DIAMETERS: tuple[float, ...] = (3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 30, 40)
_PARAMETERS = (
    "NUMBER",
    "XWIN_IMAGE",
    "YWIN_IMAGE",
    f"FLUX_APER({len(APERTURE_DIAMETERS)})",
    f"FLUXERR_APER({len(APERTURE_DIAMETERS)})",
    "FLUX_MAX",
    "FWHM_IMAGE",
    "ELONGATION",
    "FLAGS",
)
_2MASS_COLUMNS = {"J": ("Jmag", "e_Jmag", 0), "H": ("Hmag", "e_Hmag", 1), "Ks": ("Kmag", "e_Kmag", 2)}
_MARGIN = 1.0 / 60.0  # deg around the footprint when asking for reference stars


@dataclass
class ReferenceStars:
    """2MASS stars with their magnitude in a VIRCAM band (Vega) and the colour used."""

    ra: np.ndarray  # deg, epoch 2000 (2MASS is not propagated: its proper motions are unknown)
    dec: np.ndarray
    mag: np.ndarray  # VIRCAM magnitude from the colour equation
    error: np.ndarray  # its error, the two 2MASS errors propagated [mag]
    colour: np.ndarray  # the 2MASS colour of the equation (J-H, or J-Ks for Ks) [mag]


def reference_stars(
    table: Table, band: str, window: tuple[float, float] = (-np.inf, np.inf)
) -> ReferenceStars:
    """VIRCAM magnitudes of the good 2MASS stars of ``table`` (VizieR II/246 columns).

    A star is kept when both 2MASS bands of ``band``'s colour equation have photometric
    quality ``A`` (``Qflg``), no contamination flag (``Cflg`` ``0``, when the column is there),
    and its VIRCAM magnitude lies within ``window`` [mag].
    """
    band = band_name(band)
    b1, a1, b2, a2 = COLOUR_EQUATIONS[band]
    (m1_col, e1_col, q1), (m2_col, e2_col, q2) = _2MASS_COLUMNS[b1], _2MASS_COLUMNS[b2]
    m1, m2 = (np.ma.filled(np.asarray(table[c], float), np.nan) for c in (m1_col, m2_col))
    e1, e2 = (np.ma.filled(np.asarray(table[c], float), np.nan) for c in (e1_col, e2_col))
    qflg = np.char.ljust(np.asarray(table["Qflg"]).astype("U3"), 3)
    good = np.array([q[q1] == "A" and q[q2] == "A" for q in qflg], bool)
    if "Cflg" in table.colnames:
        cflg = np.char.ljust(np.asarray(table["Cflg"]).astype("U3"), 3)
        good &= np.array([c[q1] == "0" and c[q2] == "0" for c in cflg], bool)
    mag = a1 * m1 + a2 * m2
    error = np.sqrt((a1 * e1) ** 2 + (a2 * e2) ** 2)
    good &= np.isfinite(mag) & np.isfinite(error) & (mag >= window[0]) & (mag <= window[1])
    ra = np.asarray(table[TWOMASS_PSC.ra], float)[good]
    dec = np.asarray(table[TWOMASS_PSC.dec], float)[good]
    return ReferenceStars(ra, dec, mag[good], error[good], (m1 - m2)[good])


def _detector_wcs(astrom: fits.HDUList) -> dict[str, WCS]:
    """Extension name -> the astrometric solution's celestial WCS."""
    import warnings

    result = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        for hdu in astrom[1:]:
            result[hdu.name] = WCS(hdu.header, naxis=2)
    return result


def focal_plane_geometry(image: Path, grid: int = 5) -> dict[int, np.ndarray]:
    """Detector -> affine map from unit detector coordinates to the focal plane [deg].

    The focal plane is the tangent plane at the centre of ``image``'s footprint, through the
    image's own WCS: its pointing may be off by arcseconds, which moves the whole focal plane
    and changes nothing in the layout. The detectors keep their places in it whatever the
    pointing, so one pawprint gives the layout for all pawprints of a set.
    """
    import warnings

    with open_fits(image, check=False) as hdul:
        chips = [(h.header, h.data.shape) for h in hdul[1:] if h.data is not None]
    centre_ra, centre_dec, _ = footprint(chips)
    centre = SkyCoord(centre_ra * u.deg, centre_dec * u.deg)
    uu, vv = (a.ravel() for a in np.meshgrid(np.linspace(-1, 1, grid), np.linspace(-1, 1, grid)))
    geometry = {}
    for header, shape in chips:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header, naxis=2)
        ra, dec = wcs.all_pix2world((uu + 1.0) * shape[1] / 2.0 + 0.5, (vv + 1.0) * shape[0] / 2.0 + 0.5, 1)
        offset = SkyCoord(ra * u.deg, dec * u.deg).transform_to(centre.skyoffset_frame())
        geometry[int(header["ESO DET CHIP NO"])] = affine_geometry(uu, vv, offset.lon.deg, offset.lat.deg)
    return geometry


def _nearest_other(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance [pixels] from each source to its nearest neighbour on the same detector."""
    from scipy.spatial import cKDTree

    if x.size < 2:
        return np.full(x.size, np.inf)
    distance, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
    return distance[:, 1]


def measure_stars(
    image: Path,
    weight: Path | None,
    astrom: Path,
    workdir: Path,
    *,
    detect_thresh: float = 5.0,
    log: logging.Logger = log,
) -> Table:
    """SExtractor sources of one pawprint with their sky positions from ``astrom``.

    Returns
    -------
    Table
        One row per source: ``DETECTOR``, ``X``, ``Y`` (FITS pixels), ``U``, ``V`` (unit
        detector coordinates), ``RA``, ``DEC`` [deg], ``FLUX``/``FLUXERR`` [ADU per DIT] in
        each of :data:`APERTURE_DIAMETERS`, ``FLUX_MAX`` [ADU], ``FWHM`` [pixels],
        ``ELONGATION``, ``FLAGS``, ``SATURATE`` [ADU] and ``NEIGHBOUR`` (distance to the
        nearest other source [pixels]).
    """
    catalog = workdir / f"{image.name.removesuffix('.fits')}.phot.ldac"
    run_sextractor(
        image,
        catalog,
        workdir,
        weight=weight,
        parameters=_PARAMETERS,
        options={
            "DETECT_THRESH": detect_thresh,
            "ANALYSIS_THRESH": detect_thresh,
            "PHOT_APERTURES": ",".join(f"{d:g}" for d in APERTURE_DIAMETERS),
        },
        log=log,
    )
    with open_fits(image, check=False) as hdul:
        detectors = [
            (h.name, int(h.header["ESO DET CHIP NO"]), h.data.shape, float(h.header.get("SATURATE", np.inf)))
            for h in hdul[1:]
            if h.data is not None
        ]
    with open_fits(astrom, check=False) as hdul:
        wcs = _detector_wcs(hdul)
    tables = []
    for (extname, detector, shape, saturate), (_, objects) in zip(detectors, read_ldac(catalog), strict=True):
        if extname not in wcs:
            raise QualityGateError(f"{astrom}: no astrometric solution for {extname} of {image.name}")
        x = np.asarray(objects["XWIN_IMAGE"], float)
        y = np.asarray(objects["YWIN_IMAGE"], float)
        ra, dec = wcs[extname].all_pix2world(x, y, 1)
        uu, vv = unit_coordinates(x, y, shape)
        tables.append(
            Table(
                {
                    "DETECTOR": np.full(x.size, detector, np.int16),
                    "X": x,
                    "Y": y,
                    "U": uu,
                    "V": vv,
                    "RA": ra,
                    "DEC": dec,
                    "FLUX": np.asarray(objects["FLUX_APER"], float).reshape(x.size, -1),
                    "FLUXERR": np.asarray(objects["FLUXERR_APER"], float).reshape(x.size, -1),
                    "FLUX_MAX": np.asarray(objects["FLUX_MAX"], float),
                    "FWHM": np.asarray(objects["FWHM_IMAGE"], float),
                    "ELONGATION": np.asarray(objects["ELONGATION"], float),
                    "FLAGS": np.asarray(objects["FLAGS"], np.int16),
                    "SATURATE": np.full(x.size, saturate),
                    "NEIGHBOUR": _nearest_other(x, y),
                }
            )
        )
    return vstack(tables, metadata_conflicts="silent")


def _match(sources: Table, ref: ReferenceStars, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Mutual nearest neighbours within ``radius`` arcsec: (source rows, reference rows)."""
    if len(sources) == 0 or ref.ra.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    src = SkyCoord(np.asarray(sources["RA"]) * u.deg, np.asarray(sources["DEC"]) * u.deg)
    cat = SkyCoord(ref.ra * u.deg, ref.dec * u.deg)
    to_ref, sep, _ = src.match_to_catalog_sky(cat)
    to_src, _, _ = cat.match_to_catalog_sky(src)
    rows = np.flatnonzero((sep.arcsec <= radius) & (to_src[to_ref] == np.arange(len(sources))))
    return rows, to_ref[rows]


@dataclass
class PhotometricSolution:
    """Zero points of a set of pawprints and the illumination correction they share."""

    names: list[str]
    fit: ZeroPointFit
    stars: Table  # every matched star (see calibrate)
    apertures: list[tuple[float, float, float, float]]  # per frame: diameter, apcor, its error, FWHM
    shapes: dict[int, tuple[int, int]] = field(default_factory=dict)  # detector -> (ny, nx)

    def detector_zero_points(self, frame: int) -> dict[int, tuple[float, float, int]]:
        """Per detector: clipped mean of its stars' illumination-corrected zero points in
        ``frame``, the error and the star count [mag]."""
        result = {}
        rows = self.stars[self.stars["FRAME"] == frame]
        for detector in sorted(set(rows["DETECTOR"].tolist())):
            sel = rows[(rows["DETECTOR"] == detector) & rows["USED"]]
            if len(sel) == 0:
                continue
            mean, error, kept = weighted_clipped_mean(
                np.asarray(sel["ZP"] - sel["ILLUM"]), np.asarray(sel["ZP_ERR"])
            )
            result[detector] = (mean, error, int(kept.sum()))
        return result


def _pick_aperture(fwhm: float, factor: float) -> int:
    """Index of the aperture whose diameter is nearest ``factor`` times ``fwhm``."""
    return int(np.argmin(np.abs(np.asarray(APERTURE_DIAMETERS) - factor * fwhm)))


def calibrate(
    images: Sequence[Path],
    weights: Sequence[Path | None],
    astrometry: Sequence[Path],
    query: Callable[..., Table],
    workdir: Path,
    *,
    band: str,
    degree: int = 2,
    match_radius: float = 1.0,
    mag_window: tuple[float, float] = (-np.inf, np.inf),
    detect_thresh: float = 5.0,
    min_snr: float = 50.0,
    kappa: float = 3.0,
    log: logging.Logger = log,
) -> PhotometricSolution:
    """Zero points of ``images`` (SKYSUB_SCI) against 2MASS, with the illumination correction.

    Parameters
    ----------
    images, weights, astrometry : sequence of path
        The pawprints, their weight maps (None: unweighted) and astrometric solutions.
    query : callable
        A reference-catalogue provider for the photometric role, options bound.
    workdir : path
        Folder for SExtractor's files.
    band : str
        The VIRCAM filter of the pawprints.
    degree : int
        Degree of the illumination correction's polynomial over the focal plane, on top of one
        offset per detector (0: the offsets alone).
    match_radius : float
        Largest source-to-2MASS distance [arcsec].
    mag_window : tuple of float
        VIRCAM magnitudes of the reference stars to use [mag].
    detect_thresh : float
        SExtractor detection threshold [sigma].
    min_snr : float
        Stars fainter than this signal-to-noise in the photometric aperture are measured but
        not used: faint stars carry the light of their faint neighbours and of the background
        residuals, a bias that grows with magnitude.
    kappa : float
        Clipping threshold [robust sigma].

    Returns
    -------
    PhotometricSolution
        Its ``stars`` table has per matched star ``FRAME``, ``DETECTOR``, ``X``, ``Y``, ``U``,
        ``V``, ``MAG_REF``, ``MAG_REF_ERR``, ``COLOUR``, ``MAG_INST`` (aperture-corrected,
        ``-2.5 log10`` ADU per DIT), ``MAG_INST_ERR``, ``ZP``, ``ZP_ERR``, ``ILLUM`` (the
        fitted illumination correction there), ``RESIDUAL`` and ``USED`` (survived the cuts
        and the clipping).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    chips = []
    shapes: dict[int, tuple[int, int]] = {}
    for image in images:
        with open_fits(image, check=False) as hdul:
            for hdu in hdul[1:]:
                if hdu.data is not None:
                    chips.append((hdu.header, hdu.data.shape))
                    shapes[int(hdu.header["ESO DET CHIP NO"])] = hdu.data.shape
    ra, dec, radius = footprint(chips)
    ref = reference_stars(query(ra, dec, radius + _MARGIN, role=TWOMASS_PSC.role), band, mag_window)
    log.info("2MASS reference: %d quality-A stars in %s within %.3f deg", ref.ra.size, band, radius + _MARGIN)
    if ref.ra.size == 0:
        raise QualityGateError(
            f"no 2MASS star of quality A within {radius + _MARGIN:.3f} deg of "
            f"({ra:.5f}, {dec:.5f}): wrong field or reference catalogue?"
        )
    measured = []  # per pawprint: matched sources, 2MASS rows, clean flags, FWHM
    for image, weight, astrom in zip(images, weights, astrometry, strict=True):
        sources = measure_stars(
            Path(image), weight, Path(astrom), workdir, detect_thresh=detect_thresh, log=log
        )
        rows, refs = _match(sources, ref, match_radius)
        stars = sources[rows]
        clean = (
            (stars["FLAGS"] == 0)
            & (stars["FLUX_MAX"] < 0.8 * stars["SATURATE"])
            & (stars["ELONGATION"] < 1.5)
        )
        if not clean.any():
            raise QualityGateError(f"{Path(image).name}: no unflagged, unsaturated 2MASS star measured")
        fwhm = float(np.median(stars["FWHM"][clean]))
        clean &= np.abs(stars["FWHM"] / fwhm - 1.0) < 0.4  # stellar, not a galaxy or a blend
        measured.append((stars, refs, clean, fwhm))
    # one aperture pair for the set (the correction then varies smoothly with the seeing)
    seeing = float(np.median([m[3] for m in measured]))
    small, large = _pick_aperture(seeing, 2.0), _pick_aperture(seeing, 10.0)
    pooled = []
    for stars, _, clean, fwhm in measured:
        snr = stars["FLUX"][:, large] / np.maximum(stars["FLUXERR"][:, large], 1e-30)
        isolated = stars["NEIGHBOUR"] > APERTURE_DIAMETERS[large] / 2 + fwhm
        pick = clean & isolated & (snr > 50)
        with np.errstate(divide="ignore", invalid="ignore"):
            pooled.append(
                (
                    -2.5 * np.log10(stars["FLUX"][pick][:, small]),
                    -2.5 * np.log10(stars["FLUX"][pick][:, large]),
                    np.full(pick.sum(), fwhm),
                )
            )
    a, b, apcor_err, n_ap = aperture_correction(*(np.concatenate(c) for c in zip(*pooled, strict=True)))
    if n_ap < 3:
        raise QualityGateError(
            f"{n_ap} bright isolated 2MASS stars to measure the aperture correction on "
            f"(at least 3 needed): too crowded or too shallow"
        )
    log.info(
        "aperture %g px (median FWHM %.2f px); correction to %g px: %.4f %+.4f (FWHM - %.2f) mag, "
        "+- %.4f, %d stars",
        APERTURE_DIAMETERS[small],
        seeing,
        APERTURE_DIAMETERS[large],
        a,
        b,
        seeing,
        apcor_err,
        n_ap,
    )
    matched, apertures = [], []
    for index, (stars, refs, clean, fwhm) in enumerate(measured):
        apcor = a + b * (fwhm - seeing)
        apertures.append((APERTURE_DIAMETERS[small], apcor, apcor_err, fwhm))
        flux_s = stars["FLUX"][:, small]
        with np.errstate(divide="ignore", invalid="ignore"):
            mag_s = -2.5 * np.log10(flux_s)
            inst_err = 1.0857 * stars["FLUXERR"][:, small] / flux_s
        usable = (
            clean
            & (stars["NEIGHBOUR"] > APERTURE_DIAMETERS[small])
            & np.isfinite(mag_s)
            & (flux_s > 0)
            & (inst_err < 1.0857 / min_snr)
        )
        log.info(
            "%s: %d 2MASS matches, %d usable; FWHM %.2f px, aperture correction %.4f mag",
            Path(images[index]).name,
            len(stars),
            int(usable.sum()),
            fwhm,
            apcor,
        )
        matched.append(
            Table(
                {
                    "FRAME": np.full(len(stars), index, np.int16),
                    "DETECTOR": stars["DETECTOR"],
                    "X": stars["X"],
                    "Y": stars["Y"],
                    "U": stars["U"],
                    "V": stars["V"],
                    "MAG_REF": ref.mag[refs],
                    "MAG_REF_ERR": ref.error[refs],
                    "COLOUR": ref.colour[refs],
                    "MAG_INST": mag_s + apcor,
                    "MAG_INST_ERR": inst_err,
                    "USABLE": usable,
                }
            )
        )
    stars = vstack(matched, metadata_conflicts="silent")
    stars["ZP"] = stars["MAG_REF"] - stars["MAG_INST"]
    stars["ZP_ERR"] = np.hypot(stars["MAG_REF_ERR"], stars["MAG_INST_ERR"])
    use = np.asarray(stars["USABLE"], bool)
    fit = fit_zero_points(
        np.where(use, stars["ZP"], np.nan),
        np.asarray(stars["ZP_ERR"]),
        np.asarray(stars["FRAME"]),
        np.asarray(stars["DETECTOR"]),
        np.asarray(stars["U"]),
        np.asarray(stars["V"]),
        0,
        geometry=focal_plane_geometry(Path(images[0])),
        fp_degree=degree,
        n_frames=len(images),
        kappa=kappa,
    )
    illum = np.zeros(len(stars))
    for detector in set(stars["DETECTOR"].tolist()):
        rows = np.flatnonzero(stars["DETECTOR"] == detector)
        illum[rows] = fit.delta(detector, np.asarray(stars["U"])[rows], np.asarray(stars["V"])[rows])
    stars["ILLUM"] = illum
    stars["RESIDUAL"] = stars["ZP"] - fit.frame_zp[np.asarray(stars["FRAME"])] - stars["ILLUM"]
    stars["USED"] = fit.kept & use
    del stars["USABLE"]
    for name, unit in (
        ("X", "pix"),
        ("Y", "pix"),
        ("MAG_REF", "mag"),
        ("MAG_REF_ERR", "mag"),
        ("COLOUR", "mag"),
        ("MAG_INST", "mag"),
        ("MAG_INST_ERR", "mag"),
        ("ZP", "mag"),
        ("ZP_ERR", "mag"),
        ("ILLUM", "mag"),
        ("RESIDUAL", "mag"),
    ):
        stars[name].unit = unit
    return PhotometricSolution([Path(i).name for i in images], fit, stars, apertures, shapes)


ILLUMINATION_GRID = 64  # samples per axis of the illumination map MASTER_ILLUMCORR stores


def correction_map(
    fit: ZeroPointFit, detector: int, shape: tuple[int, int], grid: int | None = None
) -> np.ndarray:
    """The illumination correction [mag] of ``detector`` over its ``shape`` (ny, nx).

    Every pixel, or with ``grid`` the centres of ``grid`` x ``grid`` equal cells.
    """
    ny, nx = shape
    if grid is None:
        x, y = np.arange(1, nx + 1, dtype=float), np.arange(1, ny + 1, dtype=float)
    else:
        x = 0.5 + nx / grid * (np.arange(grid) + 0.5)
        y = 0.5 + ny / grid * (np.arange(grid) + 0.5)
    uu, vv = unit_coordinates(x[None, :], y[:, None], shape)
    return fit.delta(detector, *np.broadcast_arrays(uu, vv))


def illumination_cards(fit: ZeroPointFit) -> dict[str, tuple[object, str]]:
    """Primary-header cards of MASTER_ILLUMCORR: the focal-plane polynomial, reproducibly."""
    cards: dict[str, tuple[object, str]] = {
        "ESO DRS ILLUM FPDEG": (fit.fp_degree, "degree of the focal-plane polynomial"),
        "ESO DRS ILLUM FPSCALE": (fit.fp_scale, "[deg] focal-plane coordinates divided by this"),
    }
    for i, c in enumerate(fit.focal_plane, start=1):
        cards[f"ESO DRS ILLUM FP{i}"] = (float(c), "[mag] focal-plane coefficient (polynomial_terms order)")
    return cards


def detector_illumination_cards(fit: ZeroPointFit, detector: int, shape: tuple[int, int]) -> dict:
    """Cards of one detector's MASTER_ILLUMCORR extension: its offset, geometry, map size."""
    cards: dict[str, tuple[object, str]] = {
        "ESO DRS ILLUM NX": (shape[1], "[pixel] detector width the map covers"),
        "ESO DRS ILLUM NY": (shape[0], "[pixel] detector height the map covers"),
        "BUNIT": ("", "flux factor: the pawprint is multiplied by it"),
    }
    for i, c in enumerate(fit.coefficients.get(detector, np.zeros(1))):
        cards[f"ESO DRS ILLUM C{i}"] = (float(c), "[mag] detector polynomial coefficient")
    if detector in fit.geometry:
        for (row, col), value in np.ndenumerate(fit.geometry[detector]):
            cards[f"ESO DRS ILLUM A{row + 1}{col + 1}"] = (float(value), "[deg] (xi, eta) = A (1, u, v)")
    return cards


def scale_to_zero_point(
    data: np.ndarray,
    header: fits.Header,
    wcs_header: fits.Header,
    fit: ZeroPointFit,
    detector: int,
    zero_point: float,
    target: float,
) -> tuple[np.ndarray, fits.Header]:
    """One detector divided by its illumination correction and put on zero point ``target``.

    Parameters
    ----------
    data, header : ndarray, Header
        The detector of a SKYSUB_SCI pawprint [ADU per DIT] and its header.
    wcs_header : Header
        Its astrometric solution (the ASTROM_HEADER extension): the WCS cards replace the old.
    fit : ZeroPointFit
        The calibration; ``zero_point`` is the pawprint's [mag for 1 ADU per DIT].

    Returns
    -------
    data, header
        ``data x 10^(0.4 (target - zero_point - delta))`` as float32, and the header with GAIN
        divided and SATURATE multiplied by the mean of that scale (recorded as DRS ZPSCALE;
        RDNOISE is in electrons and does not change). Not named FLXSCALE: SWarp would apply it.
    """
    delta = correction_map(fit, detector, data.shape)
    scale = (10 ** (0.4 * (target - zero_point - delta))).astype(np.float32)
    mean_scale = float(np.mean(scale))
    header = replace_wcs(header, wcs_cards(wcs_header))
    if "GAIN" in header:
        header["GAIN"] = (float(header["GAIN"]) / mean_scale, header.comments["GAIN"])
    if "SATURATE" in header:
        header["SATURATE"] = (float(header["SATURATE"]) * mean_scale, header.comments["SATURATE"])
    header["HIERARCH ESO DRS ZPSCALE"] = (mean_scale, "mean flux scale applied (with illumination)")
    return data * scale, header


def airmass(path: Path) -> float:
    """Mean of ``ESO TEL AIRM START`` and ``END`` of a frame (1 when absent)."""
    header = read_primary_header(path)
    values = [float(header[k]) for k in ("ESO TEL AIRM START", "ESO TEL AIRM END") if k in header]
    return float(np.mean(values)) if values else 1.0


def frame_band(path: Path) -> str:
    """The VIRCAM band of a frame (its ``ESO INS FILT1 NAME``)."""
    info = frame_info(path)
    if info.filter is None:
        raise QualityGateError(f"{path}: no ESO INS FILT1 NAME: the filter is needed for the colour equation")
    return band_name(info.filter)
