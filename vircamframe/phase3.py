"""ESO Phase 3 keywords of a VIRCAM tile, its weight map and its source tables (pure logic).

The keywords follow ESO's Science Data Products standard (ESO-044286) for VISTA/VIRCAM
imaging, as the VISIONS pipeline writes them: ``SCIENCE.IMAGE`` for the tile,
``ANCILLARY.WEIGHTMAP`` for its confidence map, ``SCIENCE.SRCTBL`` for the source list of the
tile and ``SCIENCE.CATALOGTILE`` for the public catalogue of a tile. Nothing here reads or
writes files: :func:`image_cards` and friends turn a :class:`TileSummary` (gathered by
``recipes/phase3.py`` from the tile, its catalogue and the statistics maps) into
``(keyword, value, comment)`` cards, and :data:`COLUMNS` holds each catalogue column's unit,
UCD and meaning.

Choices and derivations (documented in the products too):

- ``PHOTSYS = 'VEGA'`` and ``PHOTZP`` the tile's own Vega zero point for its pixel values
  (ADU per DIT, ``mag = -2.5 log10(value) + PHOTZP``): the standard lets PHOTSYS be VEGA or AB,
  VISTA's public surveys (and VISIONS) deliver Vega, and the pipeline is calibrated on 2MASS
  (Vega). The limits the standard always wants in AB (``ABMAGLIM``, ``ABMAGSAT``) are converted
  with :data:`vircamframe.passbands.VEGA_TO_AB`.
- ``ABMAGLIM``: the catalogue's QC MAGLIM (5-sigma point source, empty-aperture noise,
  corrected to total) plus the AB offset.
- ``ABMAGSAT``: the pipeline measures no saturation magnitude, so it is derived: a star whose
  Gaussian PSF (FWHM ``PSF_FWHM``) peaks at the lowest input ``SATURATE`` holds
  ``2 pi sigma^2 SATURATE`` ADU, i.e. ``PHOTZP - 2.5 log10(1.1331 FWHM_px^2 SATURATE)``, plus the
  AB offset. Stars brighter than this have at least one saturated pixel in some pawprint.
- ``CRDERi``: the median astrometric rms vs Gaia over the tile (STAT_ASTRMS) per axis
  (rms / sqrt(2)); ``CSYERi``: Gaia DR3's frame (sub-mas) and the proper-motion propagation,
  taken as 1 mas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .passbands import VEGA_TO_AB, band_name

__all__ = [
    "COLUMNS",
    "PRODCATG",
    "Card",
    "TileSummary",
    "ab_offset",
    "band_ucd",
    "catalog_cards",
    "column_cards",
    "image_cards",
    "saturation_magnitude",
    "weight_cards",
]

Card = tuple[str, object, str]

PRODCATG = {
    "PHASE3_IMAGE": "SCIENCE.IMAGE",
    "PHASE3_WEIGHT": "ANCILLARY.WEIGHTMAP",
    "PHASE3_SRCTBL": "SCIENCE.SRCTBL",
    "PUBLIC_CATALOGUE": "SCIENCE.CATALOGTILE",
}
CATALOG_EXTNAME = "PHASE3CATALOG"  # the standard's name of a catalogue's table extension
CSYER_DEG = 1.0 / 3.6e6  # [deg] systematic astrometric error: 1 mas (Gaia DR3 frame + epoch)
GAUSS_AREA = math.pi / (4.0 * math.log(2.0))  # flux / (peak FWHM^2) of a 2-D Gaussian: 1.1331


def ab_offset(band: str) -> float:
    """``m_AB - m_Vega`` [mag] of a VIRCAM band (:data:`vircamframe.passbands.VEGA_TO_AB`)."""
    return VEGA_TO_AB[band_name(band)]


def saturation_magnitude(saturate: float, zero_point: float, fwhm_pixels: float) -> float:
    """Vega magnitude of a point source whose Gaussian PSF peaks at ``saturate``.

    Parameters
    ----------
    saturate : float
        Saturation level [ADU per DIT, on ``zero_point``] (the lowest of the inputs).
    zero_point : float
        [mag] for 1 ADU per DIT.
    fwhm_pixels : float
        PSF FWHM [pixels].

    Returns
    -------
    float
        [mag] (Vega): ``zero_point - 2.5 log10(1.1331 fwhm^2 saturate)``.
    """
    if not (saturate > 0 and fwhm_pixels > 0):
        raise ValueError(f"saturation magnitude needs positive SATURATE and FWHM, got {saturate}, "
                         f"{fwhm_pixels}")
    return float(zero_point - 2.5 * math.log10(GAUSS_AREA * fwhm_pixels**2 * saturate))


def band_ucd(band: str) -> str:
    """The UCD1+ spectral word of a VIRCAM band: ``em.opt.I`` below 1 um, else ``em.IR.J/H/K``."""
    band = band_name(band)
    return {"Z": "em.opt.I", "NB980": "em.opt.I", "NB990": "em.opt.I", "Y": "em.IR.J", "J": "em.IR.J",
            "NB118": "em.IR.J", "H": "em.IR.H", "Ks": "em.IR.K"}[band]


@dataclass
class TileSummary:
    """What the Phase 3 headers of one tile say, gathered from its products.

    Attributes
    ----------
    band, object, prog_id, obstech : str
        Filter, target, ESO programme, observation technique (``ESO PRO TECH``).
    obids : list of int
        The OBs observed (``ESO OBS ID``).
    ra, dec : float
        [deg] centre of the tile.
    exptime : float
        [s] median total exposure time per covered pixel (STAT_EXPTIME).
    texptime : float
        [s] summed exposure time of all pawprints.
    mjd_obs, mjd_end : float
        [d] start of the first and end of the last exposure.
    provenance : list of str
        Archive names of the raw frames (``PROVi``).
    photzp, photzp_err : float
        [mag] Vega zero point of the pixel values and its error.
    maglim : float
        [mag] Vega 5-sigma point-source limit.
    saturate : float
        [ADU per DIT] lowest saturation level of the inputs.
    psf_fwhm : float
        [arcsec] median point-source FWHM.
    ellipticity : float
        Median point-source ellipticity.
    pixel_scale : float
        [arcsec per pixel].
    skysqdeg : float
        [deg^2] area with data.
    astrometric_rms : float
        [arcsec] median rms vs Gaia (both axes together); NaN when unknown.
    gain : float or None
        [e-/ADU] effective gain of the co-add.
    sequence : dict
        ``NJITTER``, ``NOFFSETS``, ``DIT``, ``NDIT`` and the like where known.
    procsoft : str
        Software and version.
    """

    band: str
    object: str
    prog_id: str
    obstech: str
    obids: list[int]
    ra: float
    dec: float
    exptime: float
    texptime: float
    mjd_obs: float
    mjd_end: float
    provenance: list[str]
    photzp: float
    photzp_err: float
    maglim: float
    saturate: float
    psf_fwhm: float
    ellipticity: float
    pixel_scale: float
    skysqdeg: float
    astrometric_rms: float = float("nan")
    gain: float | None = None
    sequence: dict[str, object] = field(default_factory=dict)
    procsoft: str = "vircamframe"

    @property
    def abmaglim(self) -> float:
        return self.maglim + ab_offset(self.band)

    @property
    def abmagsat(self) -> float:
        fwhm_pixels = self.psf_fwhm / self.pixel_scale
        return saturation_magnitude(self.saturate, self.photzp, fwhm_pixels) + ab_offset(self.band)

    @property
    def multi_epoch(self) -> bool:
        """Whether the exposures span more than one night (half a day)."""
        return self.mjd_end - self.mjd_obs > 0.5


def _common(s: TileSummary, prodcatg: str) -> list[Card]:
    """The identification keywords every Phase 3 product of a tile carries."""
    cards: list[Card] = [
        ("PRODCATG", prodcatg, "Data product category"),
        ("ORIGIN", "ESO-PARANAL", "European Southern Observatory"),
        ("TELESCOP", "ESO-VISTA", "ESO telescope designation"),
        ("INSTRUME", "VIRCAM", "Instrument name"),
        ("FILTER", band_name(s.band), "Filter name"),
        ("OBJECT", s.object, "Target designation"),
        ("RA", s.ra, "[deg] Tile centre (ICRS)"),
        ("DEC", s.dec, "[deg] Tile centre (ICRS)"),
        ("EQUINOX", 2000.0, "Standard FK5 (years)"),
        ("RADESYS", "ICRS", "Coordinate reference frame"),
        ("TIMESYS", "UTC", "Time system"),
        ("EXPTIME", s.exptime, "[s] Median total integration time per pixel"),
        ("TEXPTIME", s.texptime, "[s] Total integration time of all exposures"),
        ("MJD-OBS", s.mjd_obs, "[d] Start of observations"),
        ("MJD-END", s.mjd_end, "[d] End of observations"),
        ("PROG_ID", s.prog_id, "ESO programme identification"),
    ]
    cards += [(f"OBID{i}", int(obid), "Observation block ID") for i, obid in enumerate(s.obids, start=1)]
    cards += [
        ("NCOMBINE", len(s.provenance), "Number of raw science data files"),
        ("OBSTECH", s.obstech, "Technique of observation"),
        ("PROCSOFT", s.procsoft, "Reduction software/system with version no."),
        ("REFERENC", "", "Bibliographic reference (none yet)"),
        ("M_EPOCH", s.multi_epoch, "TRUE if resulting from multiple epochs"),
        ("SINGLEXP", False, "TRUE if resulting from a single exposure"),
    ]
    return cards


def _provenance(names: Sequence[str]) -> list[Card]:
    return [(f"PROV{i}", name, "Originating raw science file") for i, name in enumerate(names, start=1)]


def _photometry(s: TileSummary) -> list[Card]:
    return [
        ("FLUXCAL", "ABSOLUTE", "Type of flux calibration"),
        ("PHOTSYS", "VEGA", "Photometric system VEGA or AB"),
        ("PHOTZP", s.photzp, "[mag] Zero point: mag = -2.5 log10(ADU per DIT) + PHOTZP"),
        ("PHOTZPER", s.photzp_err, "[mag] Uncertainty on PHOTZP"),
        ("ABMAGLIM", s.abmaglim, "[mag] 5-sigma limiting AB magnitude, point sources"),
        ("ABMAGSAT", s.abmagsat, "[mag] AB saturation limit, point sources (PSF x SATURATE)"),
        ("PSF_FWHM", s.psf_fwhm, "[arcsec] Median FWHM of point sources"),
        ("ELLIPTIC", s.ellipticity, "Median ellipticity of point sources"),
    ]


def image_cards(s: TileSummary, weight_name: str) -> list[Card]:
    """Primary-header cards of the ``SCIENCE.IMAGE`` tile, associated with ``weight_name``."""
    cards = _common(s, PRODCATG["PHASE3_IMAGE"])
    cards += _provenance(s.provenance)
    cards += [("ASSOC1", PRODCATG["PHASE3_WEIGHT"], "Category of associated file"),
              ("ASSON1", weight_name, "Name of associated file")]
    cards += _photometry(s)
    cards += [("SKYSQDEG", s.skysqdeg, "[deg^2] Sky coverage"),
              ("IMATYPE", "TILE", "Image type: PAWPRINT or TILE"),
              ("ISAMP", False, "TRUE if the image is a partial sampling of a tile")]
    cards += [(key, value, "Observing sequence") for key, value in s.sequence.items()]
    return cards


def extension_cards(s: TileSummary) -> list[Card]:
    """Image-extension cards of the tile (beside its WCS): unit and astrometric errors."""
    random = s.astrometric_rms / math.sqrt(2.0) / 3600.0 if np.isfinite(s.astrometric_rms) else None
    cards: list[Card] = [("BUNIT", "ADU", "per DIT, on the zero point PHOTZP"),
                         ("CUNIT1", "deg", "Unit of coordinate 1"),
                         ("CUNIT2", "deg", "Unit of coordinate 2")]
    if random is not None:
        cards += [("CRDER1", random, "[deg] Random error, axis 1 (rms vs Gaia)"),
                  ("CRDER2", random, "[deg] Random error, axis 2 (rms vs Gaia)")]
    cards += [("CSYER1", CSYER_DEG, "[deg] Systematic error, axis 1"),
              ("CSYER2", CSYER_DEG, "[deg] Systematic error, axis 2")]
    if s.gain is not None:
        cards.append(("GAIN", s.gain, "[e-/ADU] Effective gain of the co-add"))
    return cards


def weight_cards(s: TileSummary) -> list[Card]:
    """Primary-header cards of the ``ANCILLARY.WEIGHTMAP`` (the tile's confidence map)."""
    return _common(s, PRODCATG["PHASE3_WEIGHT"]) + _provenance(s.provenance)


def catalog_cards(s: TileSummary, image_name: str, category: str,
                  footprint: Sequence[tuple[float, float]] = ()) -> list[Card]:
    """Primary-header cards of a source table of the tile (``PROV1`` = the Phase 3 image).

    ``category``: ``PHASE3_SRCTBL`` or ``PUBLIC_CATALOGUE``; ``footprint``: the tile's corners
    (RA, Dec) [deg], written as ``FPRAi``/``FPDEi``.
    """
    cards = _common(s, PRODCATG[category])
    cards += _provenance([image_name])
    cards += _photometry(s)
    cards += [("SKYSQDEG", s.skysqdeg, "[deg^2] Sky coverage"),
              ("APMATCHD", False, "TRUE if fluxes are aperture-matched")]
    for i, (ra, dec) in enumerate(footprint, start=1):
        cards += [(f"FPRA{i}", float(ra), "[deg] Footprint, RA of corner"),
                  (f"FPDE{i}", float(dec), "[deg] Footprint, Dec of corner")]
    return cards


# Catalogue columns: unit, UCD1+ ("{band}" is the band's spectral word), meaning.
COLUMNS: dict[str, tuple[str, str, str]] = {
    "ID": ("", "meta.id;meta.main", "Source name, VIRCAM Jhhmmss.ss+ddmmss.s (ICRS)"),
    "RA": ("deg", "pos.eq.ra;meta.main", "Right ascension (ICRS, windowed centroid)"),
    "DEC": ("deg", "pos.eq.dec;meta.main", "Declination (ICRS, windowed centroid)"),
    "ERRMAJ": ("arcsec", "stat.error;phys.angSize.smajAxis", "Position error ellipse, semi-major axis"),
    "ERRMIN": ("arcsec", "stat.error;phys.angSize.sminAxis", "Position error ellipse, semi-minor axis"),
    "ERRPA": ("deg", "stat.error;pos.posAng", "Position error ellipse, position angle (E of N)"),
    "MAG": ("mag", "phot.mag;{band};meta.main", "Best magnitude (Vega): aperture total, or 2MASS"),
    "MAGERR": ("mag", "stat.error;phot.mag;{band}", "Error of MAG"),
    "MAG_APER": ("mag", "phot.mag;{band}", "Aperture magnitudes corrected to total (Vega)"),
    "MAGERR_APER": ("mag", "stat.error;phot.mag;{band}", "Errors of MAG_APER"),
    "MAG_AUTO": ("mag", "phot.mag;{band}", "Kron magnitude (Vega)"),
    "MAGERR_AUTO": ("mag", "stat.error;phot.mag;{band}", "Error of MAG_AUTO"),
    "FWHM": ("arcsec", "phys.angSize;src", "FWHM assuming a Gaussian core"),
    "ELLIPTICITY": ("", "src.ellipticity", "1 - B/A"),
    "CLASS_STAR": ("", "src.class.starGalaxy", "SExtractor stellarity (1 = point source)"),
    "SFLAGS": ("", "meta.code", "SExtractor FLAGS (4 = saturated pixels)"),
    "QFLAG": ("", "meta.code.qual", "Quality flags, bits (vircamframe.public_catalog)"),
    "CFLAG": ("", "meta.code.qual", "Contamination flags, bits (vircamframe.public_catalog)"),
    "MAGSRC": ("", "meta.ref", "Source of MAG: VIRCAM or 2MASS"),
    "TMASS_ID": ("", "meta.id.cross", "2MASS PSC designation of a star whose MAG is 2MASS"),
}


def column_cards(names: Sequence[str], band: str) -> list[Card]:
    """``TUCDn`` and ``TCOMMn`` cards of a table with columns ``names`` (all in :data:`COLUMNS`)."""
    word = band_ucd(band)
    cards: list[Card] = []
    for i, name in enumerate(names, start=1):
        _, ucd, meaning = COLUMNS[name]
        cards += [(f"TUCD{i}", ucd.format(band=word), "UCD of the column"), (f"TCOMM{i}", meaning[:68], "")]
    return cards
