"""Noise bookkeeping of a basic-calibrated pawprint.

A raw VIRCAM frame is the sum of NDIT DCS frames of one DIT. The pipeline divides it by NDIT,
linearises, subtracts the dark and divides by the flat times the inter-detector gain
correction. With ``scale = GAINCOR / flat`` the image is ``I = scale * x`` for ``x`` true ADU per
DIT, so

    var(I) = scale * I / (g * NDIT) + (scale * sigma_read / sqrt(NDIT))**2

(``g`` in e-/ADU, ``sigma_read`` the read noise of one DCS frame in ADU). The effective gain of the
image is therefore ``g * NDIT / GAINCOR`` at unit flat, and its read noise, in those effective
electrons, ``RN * sqrt(NDIT)``: what SExtractor and SWarp expect in GAIN and RDNOISE.
"""

from __future__ import annotations

import numpy as np

__all__ = ["effective_gain", "effective_read_noise", "pawprint_variance"]


def effective_gain(gain: float, ndit: int, gaincor: float) -> float:
    """GAIN of the calibrated image [e-/ADU]: ``gain * ndit / gaincor`` (unit flat)."""
    return gain * ndit / gaincor


def effective_read_noise(read_noise: float, ndit: int) -> float:
    """RDNOISE of the calibrated image [effective e-]: ``read_noise * sqrt(ndit)``.

    ``RDNOISE / GAIN`` is the read noise of the image in ADU.
    """
    return read_noise * float(np.sqrt(ndit))


def pawprint_variance(
    image: np.ndarray, flat: np.ndarray, gain: float, read_noise_adu: float, ndit: int, gaincor: float
) -> np.ndarray:
    """Per-pixel variance of a basic-calibrated image [ADU²] (NaN where the image is).

    Parameters
    ----------
    image : ndarray
        The calibrated image, ADU per DIT (sky included).
    flat : ndarray
        The normalised flat it was divided by.
    gain : float
        Detector gain, e-/ADU.
    read_noise_adu : float
        Read noise of one DCS frame, ADU.
    ndit, gaincor : int, float
        NDIT of the raw frame; the gain correction the image was multiplied by.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.float32(gaincor) / flat
        variance = scale * np.maximum(image, 0.0) / np.float32(gain * ndit)
        variance += (scale * np.float32(read_noise_adu)) ** 2 / np.float32(ndit)
    return variance.astype(np.float32)
