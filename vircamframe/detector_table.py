"""Per-detector instrument constants: the packaged VIRCAM table and measured read-gain tables.

``data/vircam_detector_table.csv`` holds the real camera's per-detector values (CASU gain,
read noise, saturation, non-linearity, focal-plane positions). A MASTER_READGAIN_TABLE of
``vircam_detector_noise`` measures gain and read noise for one night; recipes prefer it and
fall back on the packaged values.
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
from astropy.table import Table
from astropy.units import UnitsWarning

from .errors import FitsInputError

__all__ = ["DetectorConstants", "instrument_table", "packaged_constants", "read_readgain_table"]


@cache
def instrument_table() -> tuple[dict[str, float], ...]:
    """Rows of the packaged ``vircam_detector_table.csv`` (detectors 1-16) as dicts of floats."""
    text = resources.files("vircamframe").joinpath("data/vircam_detector_table.csv").read_text()
    rows = tuple({k: float(v) for k, v in row.items()} for row in csv.DictReader(text.splitlines()))
    if len(rows) != 16 or [int(r["detector"]) for r in rows] != list(range(1, 17)):
        raise RuntimeError("vircam_detector_table.csv must list detectors 1-16 in order")
    return rows


@dataclass(frozen=True)
class DetectorConstants:
    """Gain [e-/ADU], read noise [e-, one DCS pair] and saturation [ADU per DIT] of a detector."""

    gain: float
    read_noise: float
    saturation: float
    source: str

    @property
    def read_noise_adu(self) -> float:
        """Read noise of one DCS frame in ADU."""
        return self.read_noise / self.gain


def packaged_constants(chip: int, band: str = "J") -> DetectorConstants:
    """The packaged CASU values of detector ``chip`` (read noise of the Y table for Z/Y/NB980/NB990)."""
    row = instrument_table()[chip - 1]
    noise_key = "readnoise_e_casu_Y" if band in ("Z", "Y", "NB980", "NB990") else "readnoise_e_casu_J"
    return DetectorConstants(row["gain_e_per_adu_casu_avg"], row[noise_key], row["saturation_adu_casu"],
                             "vircam_detector_table.csv")


def read_readgain_table(path: str | os.PathLike) -> dict[int, tuple[float, float]]:
    """``{detector: (gain e-/ADU, read noise e-)}`` from a MASTER_READGAIN_TABLE.

    Raises
    ------
    FitsInputError
        When the file has no READGAIN table with DETECTOR, GAIN and READNOISE columns, or a
        value is not a positive number.
    """
    try:
        with warnings.catch_warnings():  # the detector units (e-/ADU, ADU) are not FITS units
            warnings.simplefilter("ignore", UnitsWarning)
            table = Table.read(path, hdu="READGAIN")
    except (OSError, ValueError, KeyError) as err:
        raise FitsInputError(f"{path}: no READGAIN table ({err})") from None
    missing = {"DETECTOR", "GAIN", "READNOISE"} - set(table.colnames)
    if missing:
        raise FitsInputError(f"{path}: READGAIN table lacks column(s) {', '.join(sorted(missing))}")
    values = {}
    for row in table:
        gain, noise = float(row["GAIN"]), float(row["READNOISE"])
        if not (np.isfinite(gain) and gain > 0 and np.isfinite(noise) and noise > 0):
            detector = int(row["DETECTOR"])
            raise FitsInputError(f"{path}: detector {detector} has GAIN {gain}, READNOISE {noise}")
        values[int(row["DETECTOR"])] = (gain, noise)
    return values
