"""Applying calibrations to one detector: the steps every recipe after linearity shares.

These functions tie numerics to calibration products (one detector at a time); recipes call
them so that ÷NDIT, dark subtraction and linearisation happen the same way everywhere.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence

import bottleneck as bn
import numpy as np
from astropy.io import fits

from .channel_table import coefficients_per_column, read_channel_table
from .fitsio import read_detector, read_rows, row_bands
from .numerics.linearity import linearise

__all__ = ["CalibrationImage", "Linearity", "PawprintCalibration", "sampled_levels"]


class Linearity:
    """The channel table of a MASTER_CHANNEL_TABLE, ready to linearise detectors of a DIT."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = path
        self._coefficients: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def coefficients(self, extname: str, nx: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-column (b2, b3) of one detector (read once, then cached)."""
        if extname not in self._coefficients:
            table = read_channel_table(self.path, extname)
            self._coefficients[extname] = coefficients_per_column(table, nx)
        return self._coefficients[extname]

    def apply(self, measured_per_dit: np.ndarray, dit: float, extname: str) -> np.ndarray:
        """Linear counts per DIT from measured, pedestal-free counts per DIT of ``extname``.

        Pixels beyond the fitted response (saturated) come back NaN.
        """
        coeffs = self.coefficients(extname, measured_per_dit.shape[-1])
        return linearise(measured_per_dit, dit, coeffs)


class CalibrationImage:
    """An image calibration (MASTER_DARK, MASTER_BPM...) read one detector at a time.

    The last ``keep`` detectors read are kept, so a recipe may ask for them several times
    (``keep`` = 4 serves a loop over the frames of one read-out row of detectors).
    """

    def __init__(self, path: str | os.PathLike, keep: int = 1) -> None:
        self.path = path
        self.keep = keep
        self._cached: OrderedDict[str, tuple[np.ndarray, fits.Header]] = OrderedDict()

    def _load(self, extname: str) -> tuple[np.ndarray, fits.Header]:
        if extname in self._cached:
            self._cached.move_to_end(extname)
        else:
            self._cached[extname] = read_detector(self.path, extname, with_header=True)
            while len(self._cached) > self.keep:
                self._cached.popitem(last=False)
        return self._cached[extname]

    def detector(self, extname: str) -> np.ndarray:
        """One detector of the calibration, float32."""
        return self._load(extname)[0]

    def header(self, extname: str) -> fits.Header:
        """The extension header of one detector."""
        return self._load(extname)[1]


class PawprintCalibration:
    """The basic calibration of raw science frames, one detector at a time.

    ÷NDIT, dark subtraction, linearisation, division by the flat times the flat's
    inter-detector gain correction (QC GAINCOR), and NaN for the pixels of every bad-pixel mask
    given and for pixels beyond the linearised range (saturated).
    """

    def __init__(
        self, dark: CalibrationImage, flat: CalibrationImage, linearity: Linearity | None,
        bpms: Sequence[CalibrationImage] = (),
    ) -> None:
        self.dark, self.flat, self.linearity, self.bpms = dark, flat, linearity, list(bpms)
        self._dark_levels: dict[str, float] = {}

    def dark_level(self, extname: str) -> float:
        """Median of the master dark of ``extname`` [ADU per DIT] (computed once per detector)."""
        if extname not in self._dark_levels:
            self._dark_levels[extname] = float(np.nanmedian(self.dark.detector(extname)))
        return self._dark_levels[extname]

    def gaincor(self, extname: str) -> float:
        """The flat's gain correction of ``extname`` (1 when the flat has none)."""
        return float(self.flat.header(extname).get("ESO QC GAINCOR", 1.0))

    def bad_pixels(self, extname: str) -> np.ndarray:
        """Union of the bad-pixel masks and the flat's undefined pixels."""
        flat = self.flat.detector(extname)
        bad = ~np.isfinite(flat) | (flat <= 0)
        for bpm in self.bpms:
            bad |= bpm.detector(extname) > 0
        return bad

    def apply(
        self, raw_sum: np.ndarray, ndit: int, dit: float, extname: str, saturation: float | None = None
    ) -> np.ndarray:
        """The calibrated image (ADU per DIT, float32) of one detector of a raw frame.

        Pixels whose raw level per DIT reaches ``saturation`` (ADU) are NaN: beyond it the
        linearity model does not hold. ``raw_sum`` is modified in place and returned.
        """
        image = raw_sum
        image /= np.float32(ndit)
        saturated = image >= saturation if saturation is not None else None
        image -= self.dark.detector(extname)
        if self.linearity is not None:
            image = self.linearity.apply(image, dit, extname)
        with np.errstate(invalid="ignore", divide="ignore"):
            image /= self.flat.detector(extname)
        image *= np.float32(self.gaincor(extname))
        image[self.bad_pixels(extname)] = np.nan
        if saturated is not None:
            image[saturated] = np.nan
        return image


def sampled_levels(
    paths: Sequence[str | os.PathLike], extnames: Sequence[str], ndit: int, dit: float,
    dark: CalibrationImage, linearity: Linearity | None, step: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Levels of many frames from ``1/step`` of the rows of each detector (a cheap pre-pass).

    Each file is opened once and only the sampled rows (:func:`~vircamframe.fitsio.read_rows`)
    are read.

    Returns
    -------
    raw : ndarray, shape (frames, detectors)
        Median raw level per DIT (÷ NDIT, before dark subtraction): what exposure
        thresholds are about.
    linear : ndarray, shape (frames, detectors)
        Median after dark subtraction and linearisation: the true signal, comparable between
        detectors (the rows are an unbiased sample of the whole detector).
    """
    dark_rows = {}
    for extname in extnames:  # the same rows of the master dark (a copy, not views of it)
        image = dark.detector(extname)
        dark_rows[extname] = np.concatenate([image[band] for band in row_bands(image.shape[0], step)])
    raw = np.empty((len(paths), len(extnames)))
    linear = np.empty_like(raw)
    for f, path in enumerate(paths):
        sample = read_rows(path, extnames, step)
        for d, extname in enumerate(extnames):
            rows = sample.pop(extname) / np.float32(ndit)
            raw[f, d] = bn.nanmedian(rows)
            signal = rows - dark_rows[extname]
            if linearity is not None:
                signal = linearity.apply(signal, dit, extname)
            linear[f, d] = bn.nanmedian(signal)
    return raw, linear
