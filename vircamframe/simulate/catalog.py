"""The simulated sky: a Gaia-like star (and galaxy) list with 2MASS-like photometry.

Pure numerics: the catalogue is a dict of NumPy columns. Positions are ICRS at epoch 2016.0
(Gaia DR3) with proper motions; J/H/Ks are in the 2MASS system; the magnitude in a VIRCAM
filter follows the ESO colour equations (:mod:`vircamframe.passbands`).
"""

from __future__ import annotations

import numpy as np

from ..passbands import COLOUR_EQUATIONS, vircam_magnitude  # one place; re-exported

__all__ = [
    "COLOUR_EQUATIONS",
    "GAIA_EPOCH",
    "TWOMASS_EPOCH",
    "make_catalog",
    "propagate",
    "vircam_magnitude",
]

GAIA_EPOCH = 2016.0
TWOMASS_EPOCH = 2000.0

STAR_DENSITY = 20000.0  # stars per deg^2 with J < J_FAINT
GALAXY_DENSITY = 1200.0  # galaxies per deg^2 with J < J_FAINT
J_FAINT = 20.5
J_BRIGHT = 8.0


def _power_law_mags(rng: np.random.Generator, n: int, slope: float, lo: float, hi: float):
    """Magnitudes with dN/dm proportional to 10**(slope m) between lo and hi."""
    u = rng.uniform(0.0, 1.0, n)
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    return np.log10(a + u * (b - a)) / slope


def _uniform_cap(rng, n, ra0, dec0, radius):
    """n points uniform on the sky within ``radius`` degrees of (ra0, dec0)."""
    cosr = np.cos(np.radians(radius))
    cos_c = rng.uniform(cosr, 1.0, n)
    c = np.arccos(cos_c)
    pa = rng.uniform(0.0, 2 * np.pi, n)
    east, north = np.sin(c) * np.sin(pa), np.sin(c) * np.cos(pa)
    d0, a0 = np.radians(dec0), np.radians(ra0)
    sd = cos_c * np.sin(d0) + north * np.cos(d0)
    dec = np.arcsin(sd)
    ra = a0 + np.arctan2(east, cos_c * np.cos(d0) - north * np.sin(d0))
    return np.mod(np.degrees(ra), 360.0), np.degrees(dec)


def make_catalog(
    rng: np.random.Generator, regions: list[tuple[str, float, float, float]]
) -> dict[str, np.ndarray]:
    """Stars and galaxies in circular regions.

    Parameters
    ----------
    rng : Generator
        Random generator (the seed fixes the sky).
    regions : list of (name, ra, dec, radius)
        Caps to fill, degrees.

    Returns
    -------
    dict of ndarray
        Columns ``id kind region ra dec pmra pmdec j h ks g ruwe r_half axis_ratio pa``;
        ``kind`` 0 = star, 1 = galaxy; ``ra``/``dec`` ICRS at epoch 2016.0, degrees; ``pmra``
        includes cos(dec), mas/yr; ``r_half`` (arcsec), ``axis_ratio``, ``pa`` (degrees) shape
        the galaxies.
    """
    cols: dict[str, list[np.ndarray]] = {}
    for ireg, (_, ra0, dec0, radius) in enumerate(regions):
        area = 2 * np.pi * (1 - np.cos(np.radians(radius))) * (180 / np.pi) ** 2
        n_s = rng.poisson(STAR_DENSITY * area)
        n_g = rng.poisson(GALAXY_DENSITY * area)
        n = n_s + n_g
        kind = np.r_[np.zeros(n_s, np.int16), np.ones(n_g, np.int16)]
        ra, dec = _uniform_cap(rng, n, ra0, dec0, radius)
        j = np.r_[
            _power_law_mags(rng, n_s, 0.30, J_BRIGHT, J_FAINT),
            _power_law_mags(rng, n_g, 0.45, 14.0, J_FAINT),
        ]
        jh = np.r_[np.clip(rng.normal(0.55, 0.15, n_s), -0.05, 1.3), rng.normal(0.75, 0.1, n_g)]
        hk = np.r_[
            0.1 + 0.25 * (jh[:n_s] - 0.5) + rng.normal(0.0, 0.04, n_s),
            rng.normal(0.45, 0.1, n_g),
        ]
        h = j - jh
        ks = h - hk
        g = j + np.r_[1.0 + 1.6 * jh[:n_s], np.full(n_g, 2.0)] + rng.normal(0, 0.1, n)
        pmra = np.r_[rng.normal(-2.0, 5.0, n_s), np.zeros(n_g)]
        pmdec = np.r_[rng.normal(-4.0, 5.0, n_s), np.zeros(n_g)]
        fast = rng.uniform(0, 1, n_s) < 0.01
        pmra[:n_s][fast] *= 10.0
        pmdec[:n_s][fast] *= 10.0
        ruwe = np.r_[
            np.exp(rng.normal(0.0, 0.12, n_s)) * np.where(rng.uniform(0, 1, n_s) < 0.03, 2, 1),
            rng.uniform(2.0, 8.0, n_g),
        ]
        r_half = np.r_[np.zeros(n_s), np.exp(rng.normal(np.log(1.2), 0.4, n_g))]
        q = np.r_[np.ones(n_s), rng.uniform(0.35, 1.0, n_g)]
        pa = np.r_[np.zeros(n_s), rng.uniform(0.0, 180.0, n_g)]
        for key, val in (
            ("kind", kind), ("region", np.full(n, ireg, np.int16)), ("ra", ra), ("dec", dec),
            ("pmra", pmra), ("pmdec", pmdec), ("j", j), ("h", h), ("ks", ks), ("g", g),
            ("ruwe", ruwe), ("r_half", r_half), ("axis_ratio", q), ("pa", pa),
        ):
            cols.setdefault(key, []).append(val)
    out = {k: np.concatenate(v) for k, v in cols.items()}
    out["id"] = np.arange(1, out["ra"].size + 1, dtype=np.int64)
    return out


def propagate(
    ra: np.ndarray, dec: np.ndarray, pmra: np.ndarray, pmdec: np.ndarray,
    epoch: float, ref_epoch: float = GAIA_EPOCH,
) -> tuple[np.ndarray, np.ndarray]:
    """Move positions by their proper motions from ``ref_epoch`` to ``epoch`` (years).

    ``pmra`` includes the cos(dec) factor (Gaia convention), both in mas/yr. A linear
    tangent-plane step, exact to far below a microarcsecond over decades for these motions.
    """
    dt = epoch - ref_epoch
    east = pmra * dt / 3.6e6
    north = pmdec * dt / 3.6e6
    out_ra = np.empty_like(ra)
    out_dec = np.empty_like(dec)
    xi, eta = np.radians(east), np.radians(north)
    a0, d0 = np.radians(ra), np.radians(dec)
    rho = np.hypot(xi, eta)
    c = np.arctan(rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(rho > 0, np.sin(c) / np.where(rho > 0, rho, 1.0), 1.0)
    e, n = xi * s, eta * s
    cos_c = np.cos(c)
    sd = cos_c * np.sin(d0) + n * np.cos(d0)
    out_dec[:] = np.degrees(np.arcsin(np.clip(sd, -1, 1)))
    out_ra[:] = np.mod(
        np.degrees(a0 + np.arctan2(e, cos_c * np.cos(d0) - n * np.sin(d0))), 360.0
    )
    return out_ra, out_dec

