"""Pixels: sources, sky, and the detector forward model (pure numerics, arrays in and out).

The forward model of one DCS raw detector image (``expose``) is, per pixel::

    x     = (sky + sources + lamp) * flat * DIT + dark_rate * DIT       true ADU per DIT
    x_n   = Poisson(NDIT * gain * x) / (NDIT * gain) + hits / NDIT       noisy mean per DIT
    M     = S(x_n (1 + k)) - S(x_n k),  S capped at saturation          DCS non-linearity
    raw   = NDIT * (M + dcs_offset + anomaly) + ndit_offset * (NDIT - 1)
            + sqrt(NDIT) * stripe[row] + N(0, sqrt(NDIT) * read_noise / gain)

and integer output. Photon noise is exact Poisson below 25 expected electrons and its Gaussian
limit above (indistinguishable there, and five times faster).
"""

from __future__ import annotations

import numpy as np

from .linearity import dcs_measure

__all__ = [
    "expose",
    "particle_hits",
    "photon_noise",
    "render_sources",
    "reset_anomaly",
    "reset_read",
    "sky_plane",
]

_BETA = 3.0
_RADII = (3, 4, 5, 7, 10, 14, 20, 32)


def sky_plane(nx: int, c0: float, cx: float, cy: float) -> np.ndarray:
    """``c0 + cx * x + cy * y`` on an ``nx`` x ``nx`` grid (0-based pixel indices), float32."""
    xs = np.arange(nx, dtype=np.float32)
    return (np.float32(c0) + np.float32(cx) * xs[None, :] + np.float32(cy) * xs[:, None]).astype(
        np.float32
    )


def _stamp_radius(fwhm: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Stamp half-size per source: wider for bright sources, so the wings are rendered."""
    need = fwhm * np.where(peak > 2000.0, 8.0, np.where(peak > 100.0, 4.5, 2.0))
    radii = np.array(_RADII)
    pos = np.searchsorted(radii, np.maximum(need, 1.0))
    return radii[np.minimum(pos, radii.size - 1)]


def _moffat_power(t: np.ndarray, beta: float) -> np.ndarray:
    """``t ** -beta``, with multiplications for the common integer indices (much faster)."""
    if beta == 3.0:
        return 1.0 / (t * t * t)
    if beta == 2.0:
        return 1.0 / (t * t)
    return t ** (-beta)


def render_sources(
    nx: int,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    fwhm_major: np.ndarray,
    fwhm_minor: np.ndarray | None = None,
    pa_deg: np.ndarray | None = None,
    beta: float = _BETA,
    max_elements: int = 4_000_000,
) -> np.ndarray:
    """Add elliptical Moffat sources to an empty ``nx`` x ``nx`` image.

    Each source is a pixel-integrated (oversampled) Moffat stamp whose integral over the whole
    plane is its flux (the little beyond the stamp is not rendered), added with
    ``np.bincount``; stamps are batched by size, so no full frame is touched per source.

    Parameters
    ----------
    nx : int
        Image size.
    x, y : ndarray
        Centres in 0-based pixel coordinates (pixel ``i`` spans ``i - 0.5 .. i + 0.5``).
    flux : ndarray
        Total flux per source (any unit; the image has the same unit per pixel).
    fwhm_major, fwhm_minor : ndarray
        FWHM along the major and minor axes, pixels (``fwhm_minor`` defaults to round).
    pa_deg : ndarray, optional
        Major-axis angle from the +x axis, degrees.
    beta : float
        Moffat index.
    max_elements : int
        Cap on the temporary array size per batch.

    Returns
    -------
    ndarray
        float32 image.
    """
    n = x.size
    out = np.zeros(nx * nx, dtype=np.float64)
    if n == 0:
        return out.reshape(nx, nx).astype(np.float32)
    fwhm_minor = fwhm_major if fwhm_minor is None else fwhm_minor
    pa = np.zeros(n) if pa_deg is None else np.radians(pa_deg)
    k = 2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0)
    sa, sb = fwhm_major / k, fwhm_minor / k
    cos, sin = np.cos(pa), np.sin(pa)
    qa = cos * cos / sa**2 + sin * sin / sb**2
    qc = sin * sin / sa**2 + cos * cos / sb**2
    qb = cos * sin * (1.0 / sa**2 - 1.0 / sb**2)
    peak = flux / (fwhm_major * fwhm_minor)
    round_ = pa_deg is None and np.array_equal(fwhm_minor, fwhm_major)
    radius = _stamp_radius(fwhm_major, peak)
    for r in np.unique(radius):
        sel = np.flatnonzero(radius == r)
        os_ = int(np.clip(np.ceil(3.0 / np.min(fwhm_minor[sel])), 1, 5))
        p = 2 * r + 1
        off = np.arange(-r, r + 1)
        sub = (np.arange(os_) + 0.5) / os_ - 0.5
        grid = (off[:, None] + sub[None, :]).ravel()
        chunk = max(1, max_elements // (p * os_) ** 2)
        for start in range(0, sel.size, chunk):
            s = sel[start : start + chunk]
            ix = np.rint(x[s]).astype(np.int64)
            iy = np.rint(y[s]).astype(np.int64)
            dx = (grid[None, :] - (x[s] - ix)[:, None]).astype(np.float32)
            dy = (grid[None, :] - (y[s] - iy)[:, None]).astype(np.float32)
            if round_:
                ax = dx * dx * qa[s, None].astype(np.float32)
                ay = dy * dy * qa[s, None].astype(np.float32)
                t = 1.0 + ax[:, None, :] + ay[:, :, None]
            else:
                t = (
                    1.0
                    + (qa[s, None, None] * dx[:, None, :] ** 2).astype(np.float32)
                    + (2.0 * qb[s, None, None] * dx[:, None, :] * dy[:, :, None]).astype(
                        np.float32
                    )
                    + (qc[s, None, None] * dy[:, :, None] ** 2).astype(np.float32)
                )
            prof = _moffat_power(t, beta)
            if os_ > 1:
                prof = prof.reshape(s.size, p, os_, p, os_).sum(axis=(2, 4))
            # normalised to the profile's integral over the whole plane, pi / ((beta - 1)
            # sqrt(det Q)), not to the stamp's sum: the light beyond the stamp is lost (0.2 % for
            # a star at 4.5 FWHM) rather than piled into the stamp, which made faint stars more
            # concentrated than bright ones (1.5 % in a 2-FWHM aperture)
            integral = np.pi / ((beta - 1.0) * np.sqrt(qa[s] * qc[s] - qb[s] ** 2))
            prof *= (flux[s] / (integral * os_**2))[:, None, None]
            px = ix[:, None] + off[None, :]
            py = iy[:, None] + off[None, :]
            inside = ((py >= 0) & (py < nx))[:, :, None] & ((px >= 0) & (px < nx))[:, None, :]
            idx = (py[:, :, None] * nx + px[:, None, :])[inside]
            out += np.bincount(idx, weights=prof[inside], minlength=nx * nx)
    return out.reshape(nx, nx).astype(np.float32)


def photon_noise(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    """Poisson deviates of mean ``lam`` (exact below 25, Gaussian limit above), float32."""
    lam = np.maximum(lam, 0.0, dtype=np.float32)
    out = rng.standard_normal(lam.shape, dtype=np.float32)
    out *= np.sqrt(lam)
    out += lam
    low = lam < 25.0
    if low.any():
        out[low] = rng.poisson(lam[low]).astype(np.float32)
    return out


def particle_hits(
    rng: np.random.Generator, nx: int, expected: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cosmic-ray and radioactivity hits: flat pixel indices and deposited electrons.

    Each hit deposits a log-normal charge (median 2000 e-) into one to four adjacent pixels.
    """
    n = int(rng.poisson(expected))
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    length = rng.integers(1, 5, n)
    x0 = rng.integers(0, nx, n)
    y0 = rng.integers(0, nx, n)
    step = rng.integers(0, 4, n)
    charge = np.exp(rng.normal(np.log(2000.0), 0.8, n))
    idx, val = [], []
    dxy = np.array([(1, 0), (0, 1), (1, 1), (1, -1)])
    for i in range(n):
        k = np.arange(length[i])
        xs = np.clip(x0[i] + k * dxy[step[i], 0], 0, nx - 1)
        ys = np.clip(y0[i] + k * dxy[step[i], 1], 0, nx - 1)
        idx.append(ys * nx + xs)
        val.append(np.full(length[i], charge[i] / length[i]))
    return np.concatenate(idx), np.concatenate(val).astype(np.float32)


def reset_anomaly(nx: int, amplitude: float) -> np.ndarray:
    """Detector 13's reset anomaly: a ramp decaying away from the first rows, float32."""
    ys = np.arange(nx, dtype=np.float32)[:, None]
    xs = np.arange(nx, dtype=np.float32)[None, :]
    shape = np.exp(-ys / (0.12 * nx)) * (1.0 + 0.4 * np.cos(2 * np.pi * xs / (nx / 2.0)))
    return (amplitude * shape).astype(np.float32)


def expose(
    rng: np.random.Generator,
    rate: np.ndarray,
    dark_rate: np.ndarray,
    dit: float,
    ndit: int,
    gain: float,
    read_noise_adu: float,
    b2: np.ndarray,
    b3: np.ndarray,
    saturation: float,
    dcs_offset: float,
    ndit_offset: float,
    stripes: np.ndarray,
    hits: tuple[np.ndarray, np.ndarray] | None = None,
    anomaly: np.ndarray | None = None,
    noise_factor: np.ndarray | None = None,
) -> np.ndarray:
    """One DCS raw detector image (sum of NDIT reads), int32. See the module docstring.

    Parameters
    ----------
    rng : Generator
        Noise generator for this detector and frame.
    rate : ndarray
        Photo-signal rate incl. the flat field, ADU/s (float32, ``(ny, nx)``).
    dark_rate : ndarray
        Dark-current rate per pixel, ADU/s.
    dit, ndit : float, int
        Integration time per read pair (s) and number of summed DITs.
    gain, read_noise_adu : float
        e-/ADU; DCS read noise in ADU.
    b2, b3 : ndarray
        Per-column non-linearity coefficients.
    saturation : float
        Saturation of a single read, ADU.
    dcs_offset, ndit_offset : float
        Pedestal per DIT; offset per extra NDIT (ADU).
    stripes : ndarray
        Row offsets of one DIT, ADU, shape ``(ny,)``.
    hits : tuple, optional
        Flat indices and electrons of particle hits.
    anomaly : ndarray, optional
        Additive structure per DIT (reset anomaly), ADU.
    noise_factor : ndarray, optional
        Read-noise multiplier map.
    """
    x = rate * np.float32(dit)
    x += dark_rate * np.float32(dit)
    scale = np.float32(ndit * gain)
    xn = photon_noise(rng, x * scale)
    xn /= scale
    del x
    if hits is not None and hits[0].size:
        flat = xn.reshape(-1)
        np.add.at(flat, hits[0], hits[1] / scale)
    m = dcs_measure(xn, dit, b2.astype(np.float32), b3.astype(np.float32), saturation)
    del xn
    m *= np.float32(ndit)
    pedestal = ndit * dcs_offset + ndit_offset * (ndit - 1)
    m += np.float32(pedestal)
    if anomaly is not None:
        m += anomaly * np.float32(ndit)
    m += (stripes.astype(np.float32) * np.float32(np.sqrt(ndit)))[:, None]
    noise = rng.standard_normal(m.shape, dtype=np.float32)
    noise *= np.float32(read_noise_adu * np.sqrt(ndit))
    if noise_factor is not None:
        noise *= noise_factor
    m += noise
    return np.rint(m).astype(np.int32)


def reset_read(
    rng: np.random.Generator,
    reset_map: np.ndarray,
    read_noise_adu: float,
    stripes: np.ndarray,
    anomaly: np.ndarray | None = None,
    noise_factor: np.ndarray | None = None,
) -> np.ndarray:
    """An uncorrelated (single) read of the reset level, int32.

    The noise of one read is the DCS read noise over sqrt(2).
    """
    m = reset_map.copy()
    if anomaly is not None:
        m += anomaly
    m += stripes.astype(np.float32)[:, None]
    noise = rng.standard_normal(m.shape, dtype=np.float32)
    noise *= np.float32(read_noise_adu / np.sqrt(2.0))
    if noise_factor is not None:
        noise *= noise_factor
    m += noise
    return np.rint(m).astype(np.int32)
