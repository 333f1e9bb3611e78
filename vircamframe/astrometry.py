"""The astrometric calibration of a set of pawprints: SExtractor, a Gaia reference, SCAMP, gates.

:func:`solve_astrometry` runs the steps in a work folder and returns, per pawprint, the SCAMP
header of each detector, SCAMP's figures for the pawprint, and per detector the residuals of
its sources against the Gaia reference (:class:`DetectorResiduals`: our own match, independent
of SCAMP's statistics, which say nothing per detector); :func:`check_gates` turns a bad
solution into a one-line error. The recipe ``vircam_astrometry`` writes the products.

A detector's solution is judged by its *completeness*: of the Gaia stars its header (the basic
calibration's WCS, right to a few arcsec) puts on it, within the magnitude range the run
detects (:func:`~vircamframe.numerics.astrometry.detected_range`), the fraction the solution
matched within one pixel. A right solution matches most of them; a detector SCAMP placed on
the wrong patch of sky, or solved right in one corner only, matches few (chance gives well under
a per cent). Detectors with too few such stars to judge are let through with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from .errors import QualityGateError
from .fitsio import open_fits
from .keywords import chip_number, frame_info
from .numerics.astrometry import (
    along_pixel_axes,
    completeness,
    detected_range,
    match_reference,
    residual_stats,
)
from .refcat import GAIA_DR3, mean_epoch, prepare_gaia, read_ldac, write_scamp_reference
from .scamp import SCAMP_MODES, read_head, read_scamp_xml, run_scamp
from .sextractor import run_sextractor
from .wcs import footprint, replace_wcs

__all__ = ["QC_UNITS", "DetectorResiduals", "FieldSolution", "check_gates", "choose_mode",
           "detector_residuals", "pooled_residuals", "qc_table", "residual_vectors", "solve_astrometry"]

log = logging.getLogger(__name__)
_MARGIN = 2.0 / 60.0  # deg around the footprint: pointing errors and stars on the edges
MATCH_RADIUS_PX = 1.0  # our match to Gaia: sources within one pixel of a Gaia star
MATCH_RESOL_PX = 2.0  # SCAMP's pattern-matching resolution, pixels (see vircamframe.scamp)
MIN_SNR = 10.0  # sources used for the per-detector QC: S/N (SNR_WIN) at least this (SCAMP's)
EDGE_ARCSEC = 10.0  # Gaia stars this close to a detector's edge are not expected on it
AUTO_MIN_SOURCES = 20  # "auto": "exposure" when the median detector holds this many sources
_BAD_FLAGS = 0xFC  # SExtractor flags that spoil a centroid (SCAMP's ASTR_FLAGSMASK)
QC_UNITS = {"RMS1": "arcsec", "RMS2": "arcsec", "OFFSET1": "arcsec", "OFFSET2": "arcsec"}


@dataclass
class DetectorResiduals:
    """One detector's sources against Gaia, with the solution applied.

    Attributes
    ----------
    detector : int
        Detector number (``ESO DET CHIP NO``).
    nsource : int
        Clean sources with S/N >= :data:`MIN_SNR`.
    nmatch : int
        Those with a Gaia star within :data:`MATCH_RADIUS_PX` pixels.
    offset, rms : (float, float)
        3-sigma clipped mean and standard deviation of (ours - Gaia) per axis, along
        ``ra * cos(dec)`` and ``dec`` [arcsec]; NaN without enough matches.
    x, y : ndarray
        Pixel positions (FITS, 1-based) of the matched sources.
    dra, ddec : ndarray
        Their residuals [arcsec].
    cd : ndarray, shape (2, 2)
        The solution's CD matrix [deg/px] (for :meth:`along_pixel_axes`).
    on_detector, matched : ndarray of int
        Gaia stars (indices into the reference) the header WCS puts on the detector, at least
        :data:`EDGE_ARCSEC` inside its edges; and those the solution matched.
    nexpect, nfound : int
        Set by :func:`solve_astrometry`: the ``on_detector`` stars within the run's detected
        magnitude range, and those of them matched (:func:`~vircamframe.numerics.astrometry.completeness`).
    """

    detector: int
    nsource: int
    nmatch: int
    offset: tuple[float, float]
    rms: tuple[float, float]
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    dra: np.ndarray = field(repr=False)
    ddec: np.ndarray = field(repr=False)
    cd: np.ndarray = field(repr=False, default_factory=lambda: np.eye(2))
    on_detector: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    matched: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    nexpect: int = 0
    nfound: int = 0

    @property
    def completeness(self) -> float:
        """``nfound / nexpect`` (NaN when no star is expected)."""
        return self.nfound / self.nexpect if self.nexpect else np.nan

    def along_pixel_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """The residuals along the detector's +x and +y pixel axes [arcsec]."""
        return along_pixel_axes(self.dra, self.ddec, self.cd)


@dataclass
class FieldSolution:
    """SCAMP's solution for one pawprint."""

    name: str
    headers: list[fits.Header]  # one per detector, SCAMP's WCS and statistics
    matches: int  # reference stars matched (SCAMP NDeg_Reference)
    rms: tuple[float, float]  # external rms vs the reference, high S/N, per axis [arcsec]
    offset: tuple[float, float]  # mean offset vs the reference [arcsec]
    contrast: float = np.nan  # SCAMP's XY_Contrast of the pattern match (LOOSE: mean over detectors)
    detectors: list[DetectorResiduals] = field(default_factory=list, repr=False)
    mode: str = ""  # the SCAMP mode used (vircamframe.scamp.SCAMP_MODES)


def _pair(value) -> tuple[float, float]:
    values = np.atleast_1d(np.asarray(value, dtype=float))
    return (float(values[0]), float(values[-1]))


def _pixel_scale(header: fits.Header) -> float:
    """Mean pixel scale [arcsec] of a header's celestial WCS."""
    return float(np.mean(proj_plane_pixel_scales(WCS(header).celestial)) * 3600.0)


def _on_detector(header: fits.Header, ref_ra: np.ndarray, ref_dec: np.ndarray) -> np.ndarray:
    """Indices of the reference stars ``header``'s WCS puts on its image, :data:`EDGE_ARCSEC` inside."""
    wcs = WCS(header).celestial
    nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])
    scale = _pixel_scale(header)
    ra0, dec0 = (float(v) for v in wcs.all_pix2world((nx + 1) / 2.0, (ny + 1) / 2.0, 1))
    radius = np.radians(0.5 * np.hypot(nx, ny) * scale / 3600.0 * 1.2)
    d0, a0 = np.radians(dec0), np.radians(ra0)
    d, a = np.radians(ref_dec), np.radians(ref_ra)
    near = np.flatnonzero(np.sin(d) * np.sin(d0) + np.cos(d) * np.cos(d0) * np.cos(a - a0) > np.cos(radius))
    if near.size == 0:
        return near.astype(np.int64)
    x, y = wcs.all_world2pix(ref_ra[near], ref_dec[near], 1)
    edge = EDGE_ARCSEC / scale
    inside = (x >= 0.5 + edge) & (x <= nx + 0.5 - edge) & (y >= 0.5 + edge) & (y <= ny + 0.5 - edge)
    return near[inside].astype(np.int64)


def detector_residuals(
    catalog: Path, headers: Sequence[fits.Header], ref_ra: np.ndarray, ref_dec: np.ndarray
) -> list[DetectorResiduals]:
    """Match each detector's catalogue, placed by its solution, to the reference.

    Parameters
    ----------
    catalog : path
        The pawprint's SExtractor LDAC catalogue (one ``LDAC_IMHEAD``/``LDAC_OBJECTS`` pair per
        detector; the image headers carry the WCS of the basic calibration).
    headers : sequence of Header
        The solution: one WCS header per detector, in catalogue order (SCAMP's ``.head``).
    ref_ra, ref_dec : ndarray
        The reference at the epoch of the observation [deg].

    Returns
    -------
    list of DetectorResiduals
        In catalogue order, without ``nexpect``/``nfound``. Clean sources (no flag of SCAMP's
        ``ASTR_FLAGSMASK``, S/N at least :data:`MIN_SNR`) are matched within
        :data:`MATCH_RADIUS_PX` pixels of the solution's scale.
    """
    out = []
    pairs = read_ldac(catalog)
    for position, ((imhead, objects), solution) in enumerate(zip(pairs, headers, strict=True), start=1):
        header = replace_wcs(imhead, solution)
        wcs = WCS(header).celestial
        flags, snr = np.asarray(objects["FLAGS"]), np.asarray(objects["SNR_WIN"])
        good = ((flags & _BAD_FLAGS) == 0) & (snr >= MIN_SNR)
        x = np.asarray(objects["XWIN_IMAGE"], dtype=float)[good]
        y = np.asarray(objects["YWIN_IMAGE"], dtype=float)[good]
        ra, dec = wcs.all_pix2world(x, y, 1) if x.size else (x, y)
        match = match_reference(ra, dec, ref_ra, ref_dec, MATCH_RADIUS_PX * _pixel_scale(header))
        offset, rms, _ = residual_stats(match.dra, match.ddec)
        out.append(DetectorResiduals(
            chip_number(imhead, position), int(x.size), match.n, offset, rms, x[match.source],
            y[match.source], match.dra, match.ddec, wcs.pixel_scale_matrix,
            _on_detector(imhead, ref_ra, ref_dec), np.unique(match.reference),
        ))
    return out


def choose_mode(catalogs: Sequence[Path]) -> tuple[str, float]:
    """The SCAMP mode ``auto`` stands for, from the number of sources per detector.

    ``exposure`` (a degree-3 distortion of 20 terms per detector and pawprint) needs more clean
    sources (S/N >= :data:`MIN_SNR`) on a detector than it has terms; with fewer than
    :data:`AUTO_MIN_SOURCES` on the median detector, ``instrument`` (one distortion per
    detector for all pawprints) is used.

    Returns
    -------
    mode : str
    median : float
        The median number of clean sources per detector and pawprint.
    """
    counts = []
    for catalog in catalogs:
        for _, objects in read_ldac(catalog):
            flags, snr = np.asarray(objects["FLAGS"]), np.asarray(objects["SNR_WIN"])
            counts.append(int((((flags & _BAD_FLAGS) == 0) & (snr >= MIN_SNR)).sum()))
    median = float(np.median(counts)) if counts else 0.0
    return ("exposure" if median >= AUTO_MIN_SOURCES else "instrument"), median


def solve_astrometry(
    images: Sequence[Path],
    weights: Sequence[Path | None],
    query: Callable[..., object],
    workdir: Path,
    *,
    mode: str = "auto",
    ruwe_max: float = 1.5,
    detect_thresh: float = 3.0,
    log: logging.Logger = log,
) -> list[FieldSolution]:
    """Solve ``images`` (SKYSUB_SCI MEFs) together against Gaia.

    Parameters
    ----------
    images, weights : sequence of path
        The pawprints and their weight maps (None: unweighted).
    query : callable
        A reference-catalogue provider for the astrometric role (``query(ra, dec, radius,
        role=..., epoch=...)``), with its options bound.
    workdir : path
        Folder for catalogues, the reference and SCAMP's files.
    mode : {"auto", "exposure", "instrument", "loose", "fix_focalplane"}
        :data:`~vircamframe.scamp.SCAMP_MODES`, or ``auto`` (:func:`choose_mode`).
    ruwe_max : float
        Gaia stars with a RUWE at least this are left out.
    detect_thresh : float
        SExtractor detection threshold [sigma].

    Returns
    -------
    list of FieldSolution
        One per image, in order, with the per-detector residuals against the prepared Gaia
        stars (:func:`detector_residuals`) and their completeness in the magnitude range of
        the run's matched stars.
    """
    if mode != "auto" and mode not in SCAMP_MODES:
        raise ValueError(f"scamp mode must be auto or one of {', '.join(SCAMP_MODES)}, not {mode!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    chips, mjds = [], []
    for image in images:
        mjds.append(frame_info(image).mjd)
        with open_fits(image, check=False) as hdul:
            chips += [(hdu.header, hdu.data.shape) for hdu in hdul[1:] if hdu.data is not None]
    ra, dec, radius = footprint(chips)
    epoch = mean_epoch(mjds)
    gaia = prepare_gaia(query(ra, dec, radius + _MARGIN, role=GAIA_DR3.role, epoch=epoch), epoch, ruwe_max)
    log.info("Gaia reference: %d stars within %.3f deg of (%.5f, %.5f) at epoch %.4f",
             len(gaia), radius + _MARGIN, ra, dec, epoch)
    reference = write_scamp_reference(workdir / "gaia_reference.ldac", gaia, epoch)
    catalogs = [
        run_sextractor(image, workdir / f"{Path(image).name.removesuffix('.fits')}.ldac", workdir,
                       weight=weight, options={"DETECT_THRESH": detect_thresh}, log=log)
        for image, weight in zip(images, weights, strict=True)
    ]
    if mode == "auto":
        mode, median = choose_mode(catalogs)
        log.info("scamp_mode auto: %s (median %.0f sources with S/N >= %g per detector and pawprint; "
                 "exposure from %d)", mode, median, MIN_SNR, AUTO_MIN_SOURCES)
    match_resol = MATCH_RESOL_PX * float(np.median([_pixel_scale(header) for header, _ in chips]))
    heads = run_scamp(catalogs, reference, workdir / "scamp", mode=mode, log=log, match_resol=match_resol)
    fields = read_scamp_xml(workdir / "scamp" / "scamp.xml")
    ref_ra, ref_dec = np.asarray(gaia["RA"], dtype=float), np.asarray(gaia["DEC"], dtype=float)
    solutions = []
    for i, (image, catalog, head) in enumerate(zip(images, catalogs, heads, strict=True)):
        headers = read_head(head)
        solutions.append(FieldSolution(
            Path(image).name, headers, int(fields["NDeg_Reference"][i]),
            _pair(fields["AstromSigma_Reference_HighSN"][i]), _pair(fields["AstromOffset_Reference"][i]),
            float(fields["XY_Contrast"][i]) if "XY_Contrast" in fields else np.nan,
            detector_residuals(catalog, headers, ref_ra, ref_dec), mode,
        ))
    mag = np.asarray(gaia["MAG"], dtype=float)
    detectors = [d for s in solutions for d in s.detectors]
    mag_range = detected_range(mag[np.concatenate([d.matched for d in detectors])] if detectors else [])
    for det in detectors:
        det.nexpect, det.nfound = completeness(det.on_detector, det.matched, mag, mag_range)
    log.info("Gaia stars expected on a detector: G %.2f to %.2f (the run's matched stars)", *mag_range)
    return solutions


def qc_table(solutions: Sequence[FieldSolution]) -> Table:
    """One row per (pawprint, detector): the per-detector figures of :class:`DetectorResiduals`.

    Columns: ``FILE``, ``DETECTOR``, ``NSOURCE``, ``NMATCH``, ``NEXPECT``, ``COMPLETENESS``,
    ``RMS1``, ``RMS2``, ``OFFSET1``, ``OFFSET2`` (axis 1 along ``ra * cos(dec)``, axis 2 along
    ``dec``, [arcsec]; see :data:`QC_UNITS`).
    """
    rows = [(s.name, d.detector, d.nsource, d.nmatch, d.nexpect, d.completeness, *d.rms, *d.offset)
            for s in solutions for d in s.detectors]
    names = ("FILE", "DETECTOR", "NSOURCE", "NMATCH", "NEXPECT", "COMPLETENESS", "RMS1", "RMS2",
             "OFFSET1", "OFFSET2")
    dtypes = ("U64", "i2", "i4", "i4", "i4", "f4", "f4", "f4", "f4", "f4")
    return Table(rows=rows, names=names, dtype=dtypes) if rows else Table(names=names, dtype=dtypes)


def pooled_residuals(solutions: Sequence[FieldSolution]) -> tuple[np.ndarray, np.ndarray]:
    """The residuals (ours - Gaia) of all detectors of all pawprints, per axis [arcsec]."""
    parts = [(d.dra, d.ddec) for s in solutions for d in s.detectors]
    if not parts:
        return np.zeros(0), np.zeros(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def residual_vectors(
    solutions: Sequence[FieldSolution],
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per detector, pooled over pawprints: ``(x, y, dx, dy)``, pixel positions of the matched
    sources [px] and their residuals along the detector's pixel axes [arcsec]."""
    rows: dict[int, list] = {}
    for solution in solutions:
        for det in solution.detectors:
            rows.setdefault(det.detector, []).append((det.x, det.y, *det.along_pixel_axes()))
    return {d: tuple(np.concatenate(column) for column in zip(*parts, strict=True))  # type: ignore[misc]
            for d, parts in sorted(rows.items())}


def check_gates(
    solutions: Sequence[FieldSolution],
    min_matches: int,
    max_rms: float,
    recipe: str,
    *,
    min_detector_stars: int = 0,
    min_completeness: float = 0.0,
    log: logging.Logger = log,
) -> None:
    """Raise a one-line :class:`QualityGateError` for the first pawprint that fails a gate.

    Parameters
    ----------
    min_matches : int
        Fewest reference stars a pawprint must match (SCAMP's count).
    max_rms : float
        Largest external rms per axis vs the reference [arcsec] (SCAMP's, high S/N).
    recipe : str
        Name for the message.
    min_detector_stars : int
        A detector whose header puts at least this many Gaia stars of the detected magnitude
        range on it (:attr:`DetectorResiduals.nexpect`) is judged: it must match at least
        ``min_completeness`` of them. Detectors with fewer are logged as not judged (too few
        stars to tell a right solution from a wrong one).
    min_completeness : float
        Smallest fraction of the expected stars a judged detector must match (0: no gate).
    """
    unverified = []
    for solution in solutions:
        if solution.matches < min_matches:
            raise QualityGateError(
                f"{recipe}: SCAMP matched {solution.matches} Gaia stars in {solution.name} (need at "
                f"least {min_matches}): wrong field, wrong reference catalogue or a bad header WCS?"
            )
        if max(solution.rms) > max_rms:
            raise QualityGateError(
                f"{recipe}: astrometric rms vs Gaia of {solution.name} is {max(solution.rms):.3f} "
                f"arcsec (at most {max_rms:g} allowed)"
            )
        for det in solution.detectors:
            if det.nexpect < max(min_detector_stars, 1):
                unverified.append(f"{solution.name}:{det.detector}")
                continue
            if det.nfound < min_completeness * det.nexpect:
                raise QualityGateError(
                    f"{recipe}: implausible solution for detector {det.detector} of {solution.name}: it "
                    f"matches {det.nfound} of the {det.nexpect} Gaia stars its header puts on it (a "
                    f"completeness of at least {min_completeness:g} needed; {det.nmatch} of its "
                    f"{det.nsource} sources match Gaia): a false match by SCAMP, or a bad header WCS?"
                )
    if unverified:
        log.warning("%d detector solution(s) not judged (fewer than %d Gaia stars expected): %s",
                    len(unverified), max(min_detector_stars, 1), ", ".join(unverified))
