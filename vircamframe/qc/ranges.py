"""The expected ranges of VIRCAM QC values, and which product tables hold QC in rows: data.

One table, :data:`QC_RANGES`, says for a product category and a QC key (``ESO QC <KEY>``, or
a column of a QC table) the range a healthy value falls in; the QC report
(:mod:`vircamframe.qc.report`) flags every value outside it. A value with no entry is shown
but not judged. Ranges are deliberately wide: they catch a broken detector, a wrong
calibration or a failed step, not night-to-night scatter; a survey tunes them by editing this
table (or by replacing entries at run time: it is a plain tuple of frozen records).

Where the numbers come from:

- Gain, read noise, saturation and non-linearity bracket the per-detector values of the real
  VIRCAM table shipped with the package (``vircamframe/data/vircam_detector_table.csv``,
  CASU's measurements: gain 3.66-5.7 e-/ADU, read noise 17-28 e-, saturation 24-37 kADU,
  non-linearity 1.7-10 % at 10 kADU, DESIGN.md section 4), widened by about 15 %.
- Dark and noise levels follow from those (read noise in ADU is 3-7.6 per frame) and from
  ESO's VIRCAM QC pages (``QC.DARKMED``, ``QC.DARKRMS``, ``QC.STRIPERMS`` are trended per
  detector; every NDIT adds about 12 ADU of dark level, which the division by NDIT removes).
- Astrometric and photometric limits are the accuracy VISTA's calibration reaches on 2MASS
  and Gaia (pawprint rms vs Gaia well below 0.1 arcsec, zero points good to a few
  hundredths of a magnitude: Gonzalez-Fernandez et al. 2018, MNRAS 474, 5459), with a
  margin, and sit inside the gates the recipes enforce (``vircam_astrometry --max_rms``
  0.5 arcsec, ``--min_completeness`` 0.3).
- The rest is engineering judgement, stated in each entry's ``why``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["QC_RANGES", "QC_TABLES", "QCRange", "find_range"]

Level = Literal["product", "detector", "any"]


@dataclass(frozen=True)
class QCRange:
    """The healthy range of one QC value.

    Parameters
    ----------
    categories : tuple of str
        The ``PRO.CATG`` of the products it applies to.
    key : str
        The QC key without ``ESO QC`` (``DARKRMS``), or a QC-table column name.
    low, high : float or None
        Inclusive bounds; ``None`` leaves that side open.
    unit : str
        The unit of the value (for the report).
    why : str
        One line: why a value outside the range is suspect, and where the numbers come from.
    level : {"product", "detector", "any"}
        Where the value sits: the product as a whole (primary header, a non-detector
        extension), one detector (``DET1.CHIPn`` extension or a QC-table row), or either.
    needs : (str, float), optional
        Judge the value only where another QC value of the same place (product, frame and
        detector) reaches a minimum, ``("NMATCH", 5)``: an rms of one or two stars says
        nothing.
    """

    categories: tuple[str, ...]
    key: str
    low: float | None
    high: float | None
    unit: str
    why: str
    level: Level = "any"
    needs: tuple[str, float] | None = None

    def contains(self, value: float) -> bool:
        """Whether ``value`` is a finite number within the bounds (inclusive)."""
        if not math.isfinite(value):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def text(self) -> str:
        """The range as people write it: ``0.1 .. 15``, ``>= 3``, ``<= 0.05``."""
        if self.low is not None and self.high is not None:
            return f"{self.low:g} .. {self.high:g}"
        return f">= {self.low:g}" if self.low is not None else f"<= {self.high:g}"


_SCIENCE_PAWPRINTS = ("SKYSUB_SCI",)  # sky-subtracted pawprints; later products inherit their QC cards

QC_RANGES: tuple[QCRange, ...] = (
    # --- master darks (vircam_dark_combine) ------------------------------------------------
    QCRange(("MASTER_DARK",), "DARKMED", -50.0, 50.0, "ADU",
            "dark level per DIT: VIRCAM darks sit within a few tens of ADU; beyond that a light "
            "leak, a wrong read mode or a grown reset anomaly (detector 13)", "detector"),
    QCRange(("MASTER_DARK",), "DARKRMS", 0.1, 15.0, "ADU",
            "robust rms of the master: at most about twice the worst raw read noise in ADU "
            "(28 e- / 3.7 e-/ADU); near zero the detector gives no signal", "detector"),
    QCRange(("MASTER_DARK",), "STRIPERMS", None, 10.0, "ADU",
            "horizontal stripes shared by a read-out row; a few ADU is normal, more biases gains "
            "and sky subtraction", "detector"),
    QCRange(("MASTER_DARK",), "HOTFRAC", None, 0.01, "",
            "VIRCAM detectors have a few tenths of a percent hot pixels; 1 % means a warm or "
            "damaged detector", "detector"),
    # --- linearity (vircam_linearity_analyse) ----------------------------------------------
    QCRange(("MASTER_CHANNEL_TABLE",), "LINEARITY", 1.0, 12.0, "%",
            "non-linearity at 10 kADU: 1.7-10 % per detector in CASU's table (detector 13 the "
            "worst); outside, the fit or the lamp sequence failed", "detector"),
    QCRange(("MASTER_CHANNEL_TABLE",), "LINERROR", None, 0.5, "%",
            "fit error of the non-linearity at 10 kADU; larger means too few or drifting lamp "
            "levels", "detector"),
    QCRange(("MASTER_CHANNEL_TABLE",), "LAMPDRIFT", None, 1.0, "%",
            "lamp drift corrected with the check frames; above 1 % the lamp was unstable",
            "detector"),
    QCRange(("MASTER_CHANNEL_TABLE",), "SATLEVEL", 20000.0, 40000.0, "ADU",
            "saturation 24-37 kADU per detector in CASU's table", "detector"),
    # --- gain and read noise (vircam_detector_noise), a QC table ---------------------------
    QCRange(("MASTER_READGAIN_TABLE",), "GAIN", 3.0, 6.5, "e-/ADU",
            "CASU's gains are 3.66-5.7 e-/ADU; an unremoved stripe pattern biases the photon "
            "transfer by up to 20 %", "detector"),
    QCRange(("MASTER_READGAIN_TABLE",), "READNOISE", 14.0, 32.0, "e-",
            "CASU's read noise is 17-28 e- per detector", "detector"),
    # --- flats and masks (vircam_twilight_flat_combine, vircam_linearity_analyse) -----------
    QCRange(("MASTER_TWILIGHT_FLAT",), "GAINCOR", 0.8, 1.2, "",
            "inter-detector gain harmonisation: the detectors' quantum efficiencies differ by "
            "about 10 %; beyond 20 % a detector or its flat is wrong", "detector"),
    QCRange(("MASTER_TWILIGHT_FLAT",), "FLATRMS", None, 0.08, "",
            "pixel rms of the normalised flat: a few percent; more means a structured or "
            "badly combined flat", "detector"),
    QCRange(("MASTER_TWILIGHT_FLAT",), "NUSED", 3.0, None, "",
            "fewer than three flats leave no room for rejecting stars and particle hits",
            "detector"),
    QCRange(("MASTER_TWILIGHT_FLAT", "MASTER_CONF", "MASTER_BPM"), "BADFRAC", None, 0.05, "",
            "bad pixels are below 1 % per detector (detector 16's noisy region included); 5 % "
            "means a failed mask", "detector"),
    # --- science pawprints ------------------------------------------------------------------
    QCRange(("BASIC_CALIBRATED_SCI",), "TANRES", None, 0.05, "arcsec",
            "largest offset of the TAN approximation of the raw ZPN distortion; it must stay far "
            "below a pixel (0.34 arcsec)", "detector"),
    QCRange(("MASTER_OBJMASK", *_SCIENCE_PAWPRINTS), "MASKFRAC", None, 0.5, "",
            "with more than half of a detector masked as sources the sky is poorly determined",
            "detector"),
    QCRange(("MASTER_SKY",), "NSKY", 5.0, None, "",
            "the VISIONS sliding-window sky needs at least 5 frames", "detector"),
    QCRange(_SCIENCE_PAWPRINTS, "STRIPERMS", None, 10.0, "ADU",
            "stripe pattern removed from the pawprint; above 10 ADU the destriping dominates "
            "the background noise", "detector"),
    QCRange(_SCIENCE_PAWPRINTS, "SKYSIG", 1.0, 100.0, "ADU",
            "background noise per DIT: below 1 ADU is less than the read noise allows, above "
            "100 ADU only a saturating sky gives (30 kADU at 4 e-/ADU)", "detector"),
    # --- astrometry (vircam_astrometry) -----------------------------------------------------
    QCRange(("ASTROM_HEADER", "ASTROM_QC"), "RMS1", None, 0.2, "arcsec",
            "rms vs Gaia along RA: VISTA pawprints reach well below 0.1 arcsec; the recipe's gate "
            "stops at 0.5", "product"),
    QCRange(("ASTROM_HEADER", "ASTROM_QC"), "RMS2", None, 0.2, "arcsec",
            "rms vs Gaia along Dec: VISTA pawprints reach well below 0.1 arcsec; the recipe's gate "
            "stops at 0.5", "product"),
    QCRange(("ASTROM_HEADER", "ASTROM_QC"), "OFFSET1", -0.1, 0.1, "arcsec",
            "mean offset from Gaia along RA: a solution tied to Gaia has none", "product"),
    QCRange(("ASTROM_HEADER", "ASTROM_QC"), "OFFSET2", -0.1, 0.1, "arcsec",
            "mean offset from Gaia along Dec: a solution tied to Gaia has none", "product"),
    QCRange(("ASTROM_HEADER",), "ASTRMS1", None, 0.2, "arcsec",
            "SCAMP's rms vs Gaia along axis 1 for the detector", "detector"),
    QCRange(("ASTROM_HEADER",), "ASTRMS2", None, 0.2, "arcsec",
            "SCAMP's rms vs Gaia along axis 2 for the detector", "detector"),
    QCRange(("ASTROM_HEADER",), "COMPLETENESS", 0.5, None, "",
            "fraction of the expected Gaia stars matched; below one half part of the detector is "
            "misplaced (the recipe's gate stops at 0.3); ASTROM_QC repeats it per row, unjudged",
            "detector"),
    QCRange(("ASTROM_QC",), "RMS1", None, 0.5, "arcsec",
            "one detector of one pawprint: its few stars make the rms noisy, so the limit is the "
            "recipe's gate, 0.5 arcsec, judged from 5 matches (its min_detector_stars)", "detector",
            needs=("NMATCH", 5.0)),
    QCRange(("ASTROM_QC",), "RMS2", None, 0.5, "arcsec",
            "one detector of one pawprint: its few stars make the rms noisy, so the limit is the "
            "recipe's gate, 0.5 arcsec, judged from 5 matches (its min_detector_stars)", "detector",
            needs=("NMATCH", 5.0)),
    # --- photometry (vircam_photometry) -----------------------------------------------------
    QCRange(("PHOTCAL_SCI",), "MAGZERR", None, 0.05, "mag",
            "zero-point error: the 2MASS calibration of VISTA is good to 0.02-0.03 mag",
            "any"),
    QCRange(("PHOTCAL_SCI",), "NSTARS", 10.0, None, "",
            "a pawprint zero point on fewer than 10 stars is fragile", "product"),
    QCRange(("PHOTCAL_SCI",), "FWHM", 1.0, 6.0, "pixel",
            "median stellar FWHM: VIRCAM pixels are 0.34 arcsec, so 1-6 pixels is 0.34-2 arcsec "
            "seeing; outside, the catalogue holds artefacts or the image is out of focus",
            "product"),
    QCRange(("MASTER_ILLUMCORR",), "ZPSCATTER", None, 0.05, "mag",
            "scatter of the star zero points after the illumination correction", "product"),
    QCRange(("MASTER_ILLUMCORR",), "ILLUMMEAN", -0.05, 0.05, "mag",
            "a detector's mean illumination correction is the flat's gain harmonisation error; "
            "5 % is far beyond it", "detector"),
)

# Binary tables that hold QC in rows, by product category: the extension name. Every numeric
# column but DETECTOR is a QC value of the row's detector (DETECTOR column) and, where the
# table has a FILE column, of that frame.
QC_TABLES: dict[str, str] = {
    "ASTROM_QC": "ASTROM_QC",
    "MASTER_READGAIN_TABLE": "READGAIN",
}


def find_range(category: str, key: str, detector: bool,
               ranges: Iterable[QCRange] = QC_RANGES) -> QCRange | None:
    """The range of ``key`` in a ``category`` product, at detector or product level.

    The first matching entry wins, so an entry for one level may stand before a general one.
    """
    level = "detector" if detector else "product"
    for entry in ranges:
        if entry.key == key and category in entry.categories and entry.level in (level, "any"):
            return entry
    return None
