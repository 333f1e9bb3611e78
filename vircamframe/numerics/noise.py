"""Gain and read noise by photon transfer (Janesick) from two flats and two darks."""

from __future__ import annotations

from dataclasses import dataclass

import bottleneck as bn
import numpy as np

from .destripe import flatten_rows
from .stats import MAD_TO_SIGMA, clipped_sigma

__all__ = ["PhotonTransfer", "photon_transfer"]


def _cell_stats(image: np.ndarray, ncells: int) -> tuple[np.ndarray, np.ndarray]:
    """Median and clipped variance of each of ``ncells`` x ``ncells`` cells."""
    ny, nx = image.shape
    cy, cx = ny // ncells, nx // ncells
    cells = image[: cy * ncells, : cx * ncells].reshape(ncells, cy, ncells, cx).swapaxes(1, 2)
    cells = cells.reshape(ncells * ncells, cy * cx)
    return bn.nanmedian(cells, axis=1), clipped_sigma(cells) ** 2


@dataclass
class PhotonTransfer:
    """Result of :func:`photon_transfer` for one detector.

    Attributes
    ----------
    gain : float
        e-/ADU.
    read_noise_adu : float
        Read noise of one DCS read pair (one DIT), ADU.
    gain_scatter : float
        Robust scatter of the per-cell gains (a consistency check), e-/ADU.
    signal : float
        Median flat signal above dark of one frame, ADU (as summed over NDIT).
    """

    gain: float
    read_noise_adu: float
    gain_scatter: float
    signal: float

    @property
    def read_noise(self) -> float:
        """Read noise in electrons."""
        return self.gain * self.read_noise_adu


def photon_transfer(
    signal1: np.ndarray, signal2: np.ndarray, dark1: np.ndarray, dark2: np.ndarray,
    ndit: int = 1, ncells: int = 8,
) -> PhotonTransfer:
    """Gain and read noise from a flat pair and a dark pair of one detector.

    ``signal1`` and ``signal2`` are the two flats minus the *mean* of the two darks, linearised
    (the non-linearity compresses the variance and biases the gain high by up to 10 %), as
    sums over ``ndit`` DCS reads; ``dark1`` and ``dark2`` are the raw darks of the same DIT and
    NDIT. Subtracting one mean dark from both flats keeps the darks' noise out of the flat
    difference. Both differences are destriped (row medians removed): the stripe pattern
    changes from frame to frame and would inflate the variances by up to 20 %. In each of
    ``ncells`` x ``ncells`` cells::

        gain = (S1 + r S2) / (var(S1 - r S2) - (1 + r^2) var(D1 - D2) / 2)
        read noise (one read pair, ADU) = sigma(D1 - D2) / sqrt(2 ndit)

    with clipped variances (a MAD is quantised on integer data) and ``r`` the level ratio of
    the two flats (a lamp drift would otherwise leave the flat field in the difference); the
    medians over cells are returned.
    """
    ratio = float(bn.nanmedian(signal1) / bn.nanmedian(signal2))
    level1, _ = _cell_stats(signal1, ncells)
    level2, _ = _cell_stats(signal2 * ratio, ncells)
    _, flat_var = _cell_stats(flatten_rows(signal1 - ratio * signal2), ncells)
    _, dark_var = _cell_stats(flatten_rows(dark1 - dark2), ncells)
    excess = flat_var - dark_var * (1.0 + ratio**2) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        gains = (level1 + level2) / excess
    gains = gains[np.isfinite(gains) & (gains > 0)]
    gain = float(np.median(gains)) if gains.size else float("nan")
    scatter = float(MAD_TO_SIGMA * np.median(np.abs(gains - gain))) if gains.size else float("nan")
    read_noise = float(np.sqrt(np.median(dark_var) / (2.0 * ndit)))
    return PhotonTransfer(gain, read_noise, scatter, float(np.median(level1)))
