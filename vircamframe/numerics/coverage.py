"""Per-pixel statistics of a co-add from its inputs' footprints (pure numerics).

Each input is a piece on the tile grid: a boolean footprint placed at ``(x0, y0)`` (0-based)
with per-piece values (exposure time, MJD, astrometric rms). :class:`CoverageMaps` adds them
up one piece at a time, so memory is the maps, never the inputs, and turns its sums into
means in place: a full VIRCAM tile is ~200 million pixels, so every map-sized temporary
would cost 0.8-1.6 GB.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CoverageMaps"]


class CoverageMaps:
    """Accumulators of number of images, exposure time, mean MJD and mean rms on a grid.

    Parameters
    ----------
    shape : (int, int)
        ``(ny, nx)`` of the grid.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        self.nimg = np.zeros(shape, np.int16)
        self.exptime = np.zeros(shape, np.float32)
        self._mjd = np.zeros(shape, np.float64)
        self._rms = np.zeros(shape, np.float32)
        self._nrms: np.ndarray | None = np.zeros(shape, np.int16)

    def add(self, footprint: np.ndarray, x0: int, y0: int, exptime: float, mjd: float,
            rms: float | None = None) -> None:
        """Add one input: ``footprint`` (True where it has data) with its lower-left at (x0, y0).

        ``rms`` [mas] may be None (no astrometric rms known): the mean rms then leaves it out.
        """
        if self._nrms is None:
            raise RuntimeError("CoverageMaps: an input added after the means were taken")
        ny, nx = footprint.shape
        window = np.s_[y0 : y0 + ny, x0 : x0 + nx]
        cover = footprint.astype(bool)
        self.nimg[window] += cover
        self.exptime[window] += np.float32(exptime) * cover
        self._mjd[window] += mjd * cover
        if rms is not None and np.isfinite(rms):
            self._rms[window] += np.float32(rms) * cover
            self._nrms[window] += cover

    def _means(self) -> None:
        """The MJD and rms sums divided by their counts, in place; no input can be added after."""
        if self._nrms is None:
            return
        for total, count in ((self._mjd, self.nimg), (self._rms, self._nrms)):
            none = count == 0
            np.divide(total, count, out=total, where=~none)
            total[none] = np.nan
        self._nrms = None

    @property
    def mjd(self) -> np.ndarray:
        """Mean MJD of the inputs covering each pixel (NaN where none does) [d], float64."""
        self._means()
        return self._mjd

    @property
    def rms(self) -> np.ndarray:
        """Mean astrometric rms of the inputs covering each pixel (NaN where none is known), float32."""
        self._means()
        return self._rms
