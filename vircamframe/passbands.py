"""VIRCAM passbands: 2MASS colour equations, extinction and Vega-to-AB offsets, as data.

The one place these numbers live: the simulator renders with them, the source masker picks
bright 2MASS stars with them, photometric calibration will use them. Values as in DESIGN.md
section 4: the colour equations are ESO's (the ``PHOTCAL_TAB`` of the VIRCAM pipeline, ESO
data-processing FAQ), Vega magnitudes throughout.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BANDS",
    "COLOUR_EQUATIONS",
    "EXTINCTION",
    "NEAREST_2MASS",
    "SKY_BRIGHTNESS",
    "TWOMASS_WINDOW",
    "VEGA_TO_AB",
    "band_name",
    "vircam_magnitude",
]

BANDS: tuple[str, ...] = ("Z", "Y", "J", "H", "Ks", "NB118", "NB980", "NB990")

# VIRCAM magnitude = a * (2MASS band1) + b * (2MASS band2), as (band1, a, band2, b).
COLOUR_EQUATIONS: dict[str, tuple[str, float, str, float]] = {
    "Z": ("J", 2.025, "H", -1.025),
    "Y": ("J", 1.610, "H", -0.610),
    "J": ("J", 0.923, "H", 0.077),
    "H": ("J", 0.032, "H", 0.968),
    "Ks": ("J", 0.010, "Ks", 0.990),
    "NB118": ("J", 1.100, "H", -0.100),
    "NB980": ("J", 1.680, "H", -0.680),
    # ESO publishes no NB990 equation; the filter sits 10 nm redder than NB980 on the same
    # stellar continuum, so NB980's is the best available (the difference is far below 2MASS's
    # own errors at the magnitudes where these are used).
    "NB990": ("J", 1.680, "H", -0.680),
}

# Atmospheric extinction at Paranal, mag per airmass. J, H, Ks as in DESIGN.md; for Z, Y and
# the narrow bands no value is given there and J's is used (what the simulator renders with).
EXTINCTION: dict[str, float] = {
    "Z": 0.11, "Y": 0.11, "J": 0.11, "H": 0.06, "Ks": 0.07,
    "NB118": 0.11, "NB980": 0.11, "NB990": 0.11,
}

# Typical dark-sky surface brightness at Paranal, mag/arcsec² (Vega), the values the simulator
# renders with. Used where a frame's zero point is not known yet (bright-star mask radii): the
# sky then serves as the photometric reference, and the night-to-night spread of a few tenths
# of a magnitude is harmless there.
SKY_BRIGHTNESS: dict[str, float] = {
    "Z": 18.2, "Y": 17.2, "J": 15.9, "H": 13.9, "Ks": 13.1,
    "NB118": 16.8, "NB980": 17.5, "NB990": 17.5,
}

# The 2MASS band closest in wavelength to each VIRCAM band: the fallback where a colour
# equation needs a 2MASS magnitude the catalogue lacks.
NEAREST_2MASS: dict[str, str] = {
    "Z": "J", "Y": "J", "J": "J", "H": "H", "Ks": "Ks", "NB118": "J", "NB980": "J", "NB990": "J",
}

# 2MASS magnitudes good for calibration, per 2MASS band: bright enough for errors below ~0.1
# mag (the PSC's 10-sigma limits are J 15.8, H 15.1, Ks 14.3) and fainter than where 2MASS's own
# 1.3 s exposures saturate (J ~9, H ~8.5, Ks ~8). A VIRCAM band uses the window of its nearest
# 2MASS band (NEAREST_2MASS); the frames' own saturation is cut on separately.
TWOMASS_WINDOW: dict[str, tuple[float, float]] = {"J": (9.0, 15.8), "H": (8.5, 15.1), "Ks": (8.0, 14.3)}

# m_AB = m_Vega + offset [mag]. J, H, Ks as DESIGN.md gives them (Blanton et al. 2005, AJ 129,
# 2562, the values the VISIONS pipeline uses). Z and Y: CASU's VISTA filter-set page (Vega-AB
# offsets computed through the VISTA system response; quoted from memory of that page, not
# re-derived here: Z 0.521, Y 0.618). The narrow bands have no published offset we could
# check; theirs are interpolated linearly in central wavelength between the broad-band values
# (Z 0.878 um, Y 1.021 um, J 1.254 um): NB980 (0.980 um) and NB990 (0.990 um) between Z and Y,
# NB118 (1.185 um) between Y and J. Good to a few hundredths of a magnitude (Vega's spectrum
# is smooth there); used only for the Phase 3 AB limits (ABMAGLIM, ABMAGSAT).
VEGA_TO_AB: dict[str, float] = {
    "Z": 0.521, "Y": 0.618, "J": 0.91, "H": 1.39, "Ks": 1.85,
    "NB980": 0.590, "NB990": 0.597, "NB118": 0.824,
}


def band_name(name: str) -> str:
    """The canonical VIRCAM band name for a filter name (``"ks"``, ``"K"`` -> ``"Ks"``).

    Raises
    ------
    ValueError
        For a name that is not a VIRCAM science filter.
    """
    known = {b.upper(): b for b in BANDS}
    known["K"] = "Ks"
    try:
        return known[str(name).strip().upper()]
    except KeyError:
        raise ValueError(f"unknown VIRCAM filter {name!r}; known: {', '.join(BANDS)}") from None


def vircam_magnitude(
    j: np.ndarray | float, h: np.ndarray | float, ks: np.ndarray | float, band: str,
    fallback: bool = False,
) -> np.ndarray:
    """VIRCAM magnitude in ``band`` from 2MASS J, H, Ks (ESO colour equations), Vega mag.

    Parameters
    ----------
    j, h, ks : array_like
        2MASS magnitudes (Vega); NaN where a band is missing propagates only if that band is
        used by the equation.
    band : str
        VIRCAM filter (any spelling :func:`band_name` accepts).
    fallback : bool
        Where the equation gives NaN (a 2MASS band missing), use the nearest 2MASS band's
        magnitude (:data:`NEAREST_2MASS`) instead: good to a few tenths of a magnitude, enough
        to select bright stars, not for photometry.

    Returns
    -------
    ndarray
        Magnitudes, same shape as the inputs.
    """
    band = band_name(band)
    b1, a1, b2, a2 = COLOUR_EQUATIONS[band]
    mags = {"J": np.asarray(j, dtype=float), "H": np.asarray(h, dtype=float),
            "Ks": np.asarray(ks, dtype=float)}
    result = a1 * mags[b1] + a2 * mags[b2]
    if fallback:
        result = np.where(np.isfinite(result), result, mags[NEAREST_2MASS[band]])
    return result
