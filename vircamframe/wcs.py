"""Convert a detector's raw WCS (VIRCAM: ZPN about the optical axis) to TAN + TPV polynomial.

SExtractor, SCAMP and SWarp cannot use the raw per-chip ZPN headers (DESIGN.md section 4).
:func:`tan_header` samples the raw WCS (anything ``astropy.wcs`` reads) on a grid covering the
chip and fits, by linear least squares, a TPV header: ``RA---TPV``/``DEC--TPV`` with CRPIX at the
chip centre, CRVAL its sky position, CD the local linear part and the ``PVi_j`` polynomial of the
intermediate coordinates (the form SCAMP writes). TPV swaps x and y in the ``PV2_j`` terms; the
radial terms (``PV1_3``, ``PV1_11``, ...) are written as 0. ``degree=1`` gives a plain TAN.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable

import numpy as np
from astropy.coordinates import angular_separation
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from .errors import FitsInputError

__all__ = ["footprint", "replace_wcs", "tan_header", "wcs_cards", "wcs_difference"]

_WCS_KEY = re.compile(
    r"^(?:(?:CTYPE|CUNIT|CRVAL|CRPIX|CDELT|CROTA|CRDER|CSYER|CNAME)\d+|(?:CD|PC|PV|PS)\d+_\d+|PROJP\d+"
    r"|LONPOLE|LATPOLE|WCSAXES|RADESYS|RADECSYS|EQUINOX|EPOCH|WCSNAME"
    r"|[AB]P?_(?:\d+_\d+|ORDER|DMAX))[A-Z]?$"
)


def _celestial(header: fits.Header) -> WCS:
    """The celestial (RA, Dec) WCS of ``header``; :class:`FitsInputError` when there is none."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header, relax=True)
    except Exception as exc:  # astropy raises many kinds for malformed WCS cards
        raise FitsInputError(f"cannot read the WCS of the header: {exc}") from None
    if not wcs.has_celestial:
        raise FitsInputError("header has no celestial WCS (no RA/Dec CTYPE1/CTYPE2 cards)")
    wcs = wcs.celestial
    if not wcs.wcs.ctype[wcs.wcs.lng].startswith("RA"):
        raise FitsInputError(f"header WCS is not equatorial (CTYPE {wcs.wcs.ctype[wcs.wcs.lng]!r})")
    return wcs


def _sky(wcs: WCS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (deg) of FITS (1-based) pixel positions ``x``, ``y``."""
    world = wcs.all_pix2world(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), 1)
    return world[wcs.wcs.lng], world[wcs.wcs.lat]


def _grid(shape: tuple[int, int], n: int) -> tuple[np.ndarray, np.ndarray]:
    """An ``n`` x ``n`` grid of FITS pixel positions from edge to edge of the chip."""
    ny, nx = shape
    y, x = np.meshgrid(np.linspace(0.5, ny + 0.5, n), np.linspace(0.5, nx + 0.5, n), indexing="ij")
    return x.ravel(), y.ravel()


def _tpv_terms(degree: int) -> list[tuple[int, int] | None]:
    """TPV monomials ``x**i y**j`` in PV1_k order (k = list index); None for a radial term."""
    terms: list[tuple[int, int] | None] = []
    for d in range(degree + 1):
        terms += [(d - j, j) for j in range(d + 1)]
        if d % 2 and d < degree:
            terms.append(None)
    return terms


def _design(terms: list, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Design matrix of the non-constant, non-radial ``terms`` at (u, v)."""
    return np.stack([u ** t[0] * v ** t[1] for t in terms if t and sum(t)], axis=1)


def tan_header(header: fits.Header, shape: tuple[int, int], *, degree: int = 3,
               grid: int = 33) -> fits.Header:
    """Fit a TAN (``degree=1``) or TPV header to one detector's WCS.

    Parameters
    ----------
    header : astropy.io.fits.Header
        Detector header with any celestial WCS astropy reads (raw VIRCAM: ZPN).
    shape : tuple of int
        ``(ny, nx)`` of the detector, pixels.
    degree : int
        Polynomial degree of the TPV distortion, 1..7 (1: pure TAN, no PV cards).
    grid : int
        Sample points per axis over the chip (edge to edge) for the least-squares fit.

    Returns
    -------
    astropy.io.fits.Header
        Only the WCS cards: CTYPEi, CUNITi, CRPIXi (chip centre, pixels), CRVALi (deg),
        CDi_j (deg/pixel), PV1_k / PV2_k (deg-based polynomial), RADESYS, EQUINOX.

    Raises
    ------
    FitsInputError
        When ``header`` has no celestial WCS.
    """
    if not 1 <= degree <= 7:
        raise ValueError(f"TPV degree must be 1..7, not {degree}")
    wcs = _celestial(header)
    ny, nx = shape
    crpix = np.array([(nx + 1) / 2.0, (ny + 1) / 2.0])
    crval = np.array([c[0] for c in _sky(wcs, crpix[:1], crpix[1:])])
    x, y = _grid(shape, max(grid, degree + 2))
    ra, dec = _sky(wcs, x, y)
    # gnomonic projection about CRVAL: standard coordinates xi, eta (deg)
    a, d, a0, d0 = np.radians(ra), np.radians(dec), *np.radians(crval)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.degrees(np.cos(d) * np.sin(a - a0) / cosc)
    eta = np.degrees((np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc)
    std = np.stack([xi, eta], axis=1)
    terms = _tpv_terms(degree)
    # 1) polynomial in scaled pixel offsets (the fit passes through CRVAL): linear terms -> CD
    s = max(nx, ny) / 2.0
    coef = np.linalg.lstsq(_design(terms, (x - crpix[0]) / s, (y - crpix[1]) / s), std, rcond=None)[0]
    cd = coef[:2].T / s
    proj, what = ("TAN", "gnomonic projection") if degree == 1 else ("TPV", "gnomonic + TPV polynomial")
    cards = fits.Header(
        [("CTYPE1", f"RA---{proj}", what), ("CTYPE2", f"DEC--{proj}", what)]
        + [(f"CUNIT{i}", "deg", "Unit of coordinate") for i in (1, 2)]
        + [(f"CRPIX{i}", float(crpix[i - 1]), "Reference pixel (chip centre)") for i in (1, 2)]
        + [(f"CRVAL{i}", float(crval[i - 1]), "World coordinate at CRPIX (deg)") for i in (1, 2)]
        + [(f"CD{i}_{j}", float(cd[i - 1, j - 1]), "Linear transformation (deg/pixel)")
           for i in (1, 2) for j in (1, 2)]
    )
    if degree > 1:
        # 2) the same function space in intermediate coordinates (deg, scaled by t): PV terms
        t = np.abs(cd).max() * s
        inter = np.stack([x - crpix[0], y - crpix[1]], axis=1) @ cd.T / t
        for axis in (1, 2):
            u, v = (inter[:, 0], inter[:, 1]) if axis == 1 else (inter[:, 1], inter[:, 0])
            pv = iter(np.linalg.lstsq(_design(terms, u, v), std[:, axis - 1], rcond=None)[0])
            for k, term in enumerate(terms):
                value = 0.0 if not term or not sum(term) else float(next(pv)) / t ** sum(term)
                cards[f"PV{axis}_{k}"] = (value, "TPV distortion coefficient")
    cards["RADESYS"] = (wcs.wcs.radesys.strip() or "ICRS", "Coordinate reference frame")
    cards["EQUINOX"] = (float(np.nan_to_num(wcs.wcs.equinox, nan=2000.0)), "Equinox (years)")
    return cards


def footprint(chips: Iterable[tuple[fits.Header, tuple[int, int]]]) -> tuple[float, float, float]:
    """The circle holding every chip: centre RA, Dec and radius [deg].

    Parameters
    ----------
    chips : iterable of (Header, (ny, nx))
        Each detector's header (with its WCS) and image shape.
    """
    ras, decs = [], []
    for header, shape in chips:
        ra, dec = _sky(_celestial(header), *_grid(shape, 5))
        ras.append(ra)
        decs.append(dec)
    ra, dec = np.radians(np.concatenate(ras)), np.radians(np.concatenate(decs))
    vectors = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=1)
    centre = vectors.mean(axis=0)
    centre /= np.linalg.norm(centre)
    radius = np.degrees(np.arccos(np.clip(vectors @ centre, -1.0, 1.0)).max())
    return (float(np.degrees(np.arctan2(centre[1], centre[0])) % 360.0),
            float(np.degrees(np.arcsin(centre[2]))), float(radius))


def wcs_cards(header: fits.Header) -> fits.Header:
    """The celestial WCS cards of ``header`` (those :func:`replace_wcs` replaces), in order."""
    return fits.Header([card for card in header.cards if _WCS_KEY.match(card.keyword)])


def replace_wcs(header: fits.Header, wcs_cards: fits.Header) -> fits.Header:
    """A copy of ``header`` whose celestial WCS cards are replaced by ``wcs_cards``.

    Every old WCS keyword (CTYPEi, CUNITi, CRVALi, CRPIXi, CDi_j, PCi_j, CDELTi, CROTAi, PVi_j,
    PROJPn, LONPOLE, LATPOLE, WCSAXES, RADESYS, EQUINOX, SIP terms, alternate versions) is removed;
    the new cards go where the first old one was (at the end when there was none).
    """
    out = header.copy()
    old = [i for i, card in enumerate(out.cards) if _WCS_KEY.match(card.keyword)]
    for i in reversed(old):
        del out[i]
    at = old[0] if old else len(out)
    for k, card in enumerate(wcs_cards.cards):
        out.insert(at + k, fits.Card(card.keyword, card.value, card.comment))
    return out


def wcs_difference(header_a: fits.Header, header_b: fits.Header, shape: tuple[int, int],
                   grid: int = 65) -> float:
    """Largest sky separation between two WCSs over a grid covering the chip.

    Parameters
    ----------
    header_a, header_b : astropy.io.fits.Header
        Headers with a celestial WCS each.
    shape : tuple of int
        ``(ny, nx)`` of the detector, pixels.
    grid : int
        Sample points per axis, chip edge to chip edge.

    Returns
    -------
    float
        Maximum separation, arcsec.
    """
    x, y = _grid(shape, grid)
    (ra_a, dec_a), (ra_b, dec_b) = (_sky(_celestial(h), x, y) for h in (header_a, header_b))
    sep = angular_separation(*np.radians([ra_a, dec_a, ra_b, dec_b]))
    return float(np.degrees(np.max(sep)) * 3600.0)
