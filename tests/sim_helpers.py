"""Independent, deliberately simple measurement code for the simulator tests.

Nothing here imports the simulator's numerics: the tests measure the raw files the way an
astronomer would check a detector, and compare with ``truth.json``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.wcs import WCS

MINDIT = 1.0011


def load_truth(run: Path) -> dict:
    """``truth/truth.json`` of a simulated run."""
    return json.loads((run / "truth" / "truth.json").read_text())


def frames_of(truth: dict, tag: str, **match) -> list[dict]:
    """Truth entries of the frames of one tag (optionally matching dit=, ndit=...)."""
    return [
        f for f in truth["frames"]
        if f["tag"] == tag and all(f.get(k) == v for k, v in match.items())
    ]


def read_det(run: Path, frame: dict, chip: int) -> np.ndarray:
    """One detector of a raw frame as float64."""
    with fits.open(run / "raw" / frame["file"]) as hdul:
        return hdul[f"DET1.CHIP{chip}"].data.astype(np.float64)


def ext_header(run: Path, frame: dict, chip: int) -> fits.Header:
    """One extension header of a raw frame (PXSPACE card repaired)."""
    with fits.open(run / "raw" / frame["file"]) as hdul:
        hdu = hdul[f"DET1.CHIP{chip}"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdu.verify("silentfix")
        return hdu.header.copy()


def truth_image(run: Path, name: str, chip: int) -> np.ndarray:
    """A truth image (``bpm``, ``flat``, ``dark_rate``) of one detector."""
    with fits.open(run / "truth" / f"{name}.fits") as hdul:
        return np.array(hdul[f"DET1.CHIP{chip}"].data)


def destripe(img: np.ndarray) -> np.ndarray:
    """Subtract each row's median."""
    return img - np.median(img, axis=1, keepdims=True)


def clipped_std(values: np.ndarray, mask: np.ndarray | None = None) -> float:
    """4-sigma clipped standard deviation of the unmasked values."""
    v = values[~mask] if mask is not None else values.ravel()
    return float(sigma_clipped_stats(v, sigma=4.0, maxiters=10)[2])


def column_coefficients(det_truth: dict, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column b2, b3 from the truth's channel table."""
    b2 = np.empty(nx)
    b3 = np.empty(nx)
    for ch in det_truth["linearity"]:
        sl = slice(ch["x_start"] - 1, ch["x_end"])
        b2[sl], b3[sl] = ch["b2"], ch["b3"]
    return b2, b3


def dcs_terms(dit: float) -> tuple[float, float]:
    """``(1+k)^2 - k^2`` and ``(1+k)^3 - k^3`` with ``k = MINDIT / dit``."""
    k = MINDIT / dit
    return (1 + k) ** 2 - k**2, (1 + k) ** 3 - k**3


def linearise(m: np.ndarray, dit: float, b2: np.ndarray, b3: np.ndarray) -> np.ndarray:
    """Solve ``m = x + b2 a2 x^2 + b3 a3 x^3`` for x (Newton, per pixel)."""
    a2, a3 = dcs_terms(dit)
    c2, c3 = b2 * a2, b3 * a3
    x = m.copy()
    for _ in range(30):
        f = x + c2 * x * x + c3 * x**3 - m
        x -= f / (1.0 + 2.0 * c2 * x + 3.0 * c3 * x * x)
    return x


def slope(x: np.ndarray, dit: float, b2: np.ndarray, b3: np.ndarray) -> np.ndarray:
    """dM/dx of the DCS response at true counts x."""
    a2, a3 = dcs_terms(dit)
    return 1.0 + 2.0 * b2 * a2 * x + 3.0 * b3 * a3 * x * x


def fit_dcs_rate(dits: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Least-squares ``beta_j`` of ``M(t) = sum_j beta_j ((t + MINDIT)^j - MINDIT^j)``."""
    a = np.stack([(dits + MINDIT) ** j - MINDIT**j for j in (1, 2, 3)], axis=1)
    return np.linalg.lstsq(a, levels, rcond=None)[0]


def pct_at(beta: np.ndarray, level: float = 1e4) -> float:
    """Non-linearity (%) where the fitted response reaches ``level``: 100 (1 - M / (b1 t))."""
    ts = np.linspace(0.0, 100.0, 400001)
    m = sum(beta[j - 1] * ((ts + MINDIT) ** j - MINDIT**j) for j in (1, 2, 3))
    i = int(np.argmax(m >= level))  # first crossing
    if m[i] < level:
        raise ValueError("the fitted response never reaches the level")
    t = ts[i - 1] + (level - m[i - 1]) / (m[i] - m[i - 1]) * (ts[i] - ts[i - 1])
    return 100.0 * (1.0 - level / (beta[0] * t))


def wcs_of(header: fits.Header, crval: tuple[float, float] | None = None) -> WCS:
    """The header WCS, optionally moved to another CRVAL (e.g. the true pointing)."""
    h = header.copy()
    if crval is not None:
        h["CRVAL1"], h["CRVAL2"] = crval
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(h)
