"""The public catalogue of a tile: one row per source, 2MASS magnitudes where the tile saturates.

Pure table logic (tables in, tables out), used by ``vircam_public_catalog``:

- :func:`deduplicate` keeps one row per source: rows closer than a radius are one source, the
  one with the best score (signal-to-noise) kept. The tile catalogue already has one row per
  source; merged catalogues of overlapping stacks need this.
- :func:`saturated` marks sources with saturated pixels: SExtractor FLAGS bit 4, a peak
  (FLUX_MAX + BACKGROUND) at or above SATURATE, or a magnitude brighter than the saturation
  magnitude of the PSF (:func:`vircamframe.phase3.saturation_magnitude`; the tile is a mean of
  pawprints, so a star can be saturated in its inputs while its mean peak is not).
- :func:`public_table` builds the catalogue: best magnitude (the main aperture corrected to
  total), position error ellipse, and for saturated sources the 2MASS magnitudes through ESO's
  colour equations (:func:`vircamframe.passbands.vircam_magnitude`).

Quality flags (``QFLAG``, bits): 1 SExtractor flags other than saturation (blended,
truncated, ...); 2 saturated, MAG from 2MASS; 4 saturated and no 2MASS counterpart (MAG from
the tile, too faint); 8 low weight under the source (FLAGS_WEIGHT); 16 MAGERR above 0.2 mag
(below 5 sigma). Contamination flags (``CFLAG``, bits): 1 a brighter source within twice the
seeing (blend); 2 within 5 FWHM of a saturated star (halo, spikes); 4 the 2MASS counterpart has
a contamination flag (Cflg not 0).
"""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.table import Table

from .passbands import COLOUR_EQUATIONS, band_name, vircam_magnitude

__all__ = ["deduplicate", "iau_names", "match_nearest", "public_table", "saturated"]

QFLAG_SEXTRACTOR, QFLAG_2MASS, QFLAG_SAT_NO_2MASS, QFLAG_WEIGHT, QFLAG_FAINT = 1, 2, 4, 8, 16
CFLAG_BLEND, CFLAG_HALO, CFLAG_2MASS = 1, 2, 4
SEX_SATURATED = 4


def iau_names(ra: np.ndarray, dec: np.ndarray, prefix: str = "VIRCAM") -> np.ndarray:
    """``VIRCAM Jhhmmss.ss+ddmmss.s`` designations of ICRS positions [deg] (truncated, as IAU)."""
    ra = np.mod(np.asarray(ra, float), 360.0) / 15.0
    dec = np.asarray(dec, float)
    names = []
    for r, d in zip(ra, dec, strict=True):
        hh, rem = divmod(r * 3600.0, 3600.0)
        mm, ss = divmod(rem, 60.0)
        sign = "+" if d >= 0 else "-"
        dd, drem = divmod(abs(d) * 3600.0, 3600.0)
        dm, ds = divmod(drem, 60.0)
        ss, ds = np.floor(ss * 100) / 100, np.floor(ds * 10) / 10
        names.append(f"{prefix} J{int(hh):02d}{int(mm):02d}{ss:05.2f}"
                     f"{sign}{int(dd):02d}{int(dm):02d}{ds:04.1f}")
    return np.array(names)


def deduplicate(ra: np.ndarray, dec: np.ndarray, score: np.ndarray, radius: float) -> np.ndarray:
    """Indices of the rows to keep so that no two kept rows lie within ``radius`` [arcsec].

    Rows are taken in decreasing ``score`` (NaN last); a row is dropped when a kept row lies
    within ``radius`` of it. Returns the kept indices, sorted.
    """
    n = len(ra)
    if n == 0:
        return np.zeros(0, int)
    coords = SkyCoord(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg)
    first, second, _, _ = search_around_sky(coords, coords, radius * u.arcsec)
    pairs = first != second
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for i, j in zip(first[pairs], second[pairs], strict=True):
        neighbours[i].append(int(j))
    order = np.argsort(-np.nan_to_num(np.asarray(score, float), nan=-np.inf), kind="stable")
    dropped = np.zeros(n, bool)
    for i in order:
        if not dropped[i]:
            dropped[neighbours[i]] = True
    return np.flatnonzero(~dropped)


def saturated(flags: np.ndarray, flux_max: np.ndarray, background: np.ndarray, mag: np.ndarray,
              saturate: float, magsat: float) -> np.ndarray:
    """Which sources have saturated pixels (see the module notes).

    Parameters
    ----------
    flags : ndarray of int
        SExtractor FLAGS.
    flux_max, background : ndarray
        [ADU per DIT] peak above the background, and the background.
    mag : ndarray
        [mag] total magnitudes (Vega).
    saturate : float
        [ADU per DIT] the tile's SATURATE (lowest of its inputs).
    magsat : float
        [mag] Vega saturation magnitude of the PSF.
    """
    flags = np.asarray(flags).astype(int)
    peak = np.asarray(flux_max, float) + np.asarray(background, float)
    with np.errstate(invalid="ignore"):
        return ((flags & SEX_SATURATED) > 0) | (peak >= saturate) | (np.asarray(mag, float) < magsat)


def match_nearest(ra: np.ndarray, dec: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray,
                  radius: float) -> np.ndarray:
    """For each position, the index of the nearest reference within ``radius`` [arcsec], or -1."""
    if len(ra) == 0 or len(ref_ra) == 0:
        return np.full(len(ra), -1)
    coords = SkyCoord(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg)
    refs = SkyCoord(np.asarray(ref_ra, float) * u.deg, np.asarray(ref_dec, float) * u.deg)
    index, distance, _ = coords.match_to_catalog_sky(refs)
    return np.where(distance.arcsec <= radius, index, -1)


def _twomass_magnitudes(tmass: Table, band: str) -> tuple[np.ndarray, np.ndarray]:
    """VIRCAM magnitudes and errors [mag] of 2MASS rows (ESO colour equations)."""
    mags = {key: np.asarray(tmass[col], float) for key, col in (("J", "Jmag"), ("H", "Hmag"), ("Ks", "Kmag"))}
    errs = {key: np.asarray(tmass[f"e_{col}"], float)
            for key, col in (("J", "Jmag"), ("H", "Hmag"), ("Ks", "Kmag"))}
    b1, a1, b2, a2 = COLOUR_EQUATIONS[band]
    mag = vircam_magnitude(mags["J"], mags["H"], mags["Ks"], band)
    err = np.hypot(a1 * errs[b1], a2 * errs[b2])
    return mag, err


def _designations(tmass: Table) -> np.ndarray:
    if "_2MASS" in tmass.colnames:
        return np.asarray(tmass["_2MASS"]).astype(str)
    return np.asarray(iau_names(tmass["RAJ2000"], tmass["DEJ2000"], prefix="2MASS")).astype(str)


def public_table(cat: Table, band: str, saturate: float, magsat: float, fwhm: float,
                 tmass: Table | None, main_aperture: int, match_radius: float = 1.0,
                 dedup_radius: float = 1.0) -> tuple[Table, dict[str, int]]:
    """The public catalogue from a tile catalogue (and 2MASS), with counts for the QC.

    Parameters
    ----------
    cat : Table
        Tile catalogue (``vircam_catalog`` columns).
    band : str
        VIRCAM filter.
    saturate, magsat : float
        [ADU per DIT], [mag]: see :func:`saturated`.
    fwhm : float
        [arcsec] seeing of the tile (contamination radii).
    tmass : Table or None
        2MASS PSC rows over the tile (VizieR II/246 columns), None without one.
    main_aperture : int
        Index of the aperture whose total magnitude is MAG.
    match_radius, dedup_radius : float
        [arcsec] 2MASS match radius; duplicates radius.
    """
    band = band_name(band)
    ra, dec = np.asarray(cat["RA"], float), np.asarray(cat["DEC"], float)
    mag = np.asarray(cat["MAG_APER"], float)[:, main_aperture]
    magerr = np.asarray(cat["MAGERR_APER"], float)[:, main_aperture]
    n_in = len(ra)
    keep = deduplicate(ra, dec, 1.0 / np.where(magerr > 0, magerr, np.nan), dedup_radius)
    cat, ra, dec, mag, magerr = cat[keep], ra[keep], dec[keep], mag[keep], magerr[keep]
    flags = np.asarray(cat["FLAGS"]).astype(int)
    sat = saturated(flags, cat["FLUX_MAX"], cat["BACKGROUND"], mag, saturate, magsat)
    n = len(cat)
    qflag, cflag = np.zeros(n, np.int16), np.zeros(n, np.int16)
    source = np.full(n, "VIRCAM")
    tmass_id = np.full(n, "", dtype="U24")
    qflag[(flags & ~SEX_SATURATED) > 0] |= QFLAG_SEXTRACTOR
    qflag[np.asarray(cat["FLAGS_WEIGHT"]).astype(int) > 0] |= QFLAG_WEIGHT
    if tmass is not None and len(tmass) and sat.any():
        idx = match_nearest(ra[sat], dec[sat], tmass["RAJ2000"], tmass["DEJ2000"], match_radius)
        tmag, terr = _twomass_magnitudes(tmass, band)
        rows = np.flatnonzero(sat)
        found = (idx >= 0) & np.isfinite(tmag[np.maximum(idx, 0)])
        good, ref = rows[found], idx[found]
        mag[good], magerr[good] = tmag[ref], terr[ref]
        source[good] = "2MASS"
        tmass_id[good] = _designations(tmass)[ref]
        qflag[good] |= QFLAG_2MASS
        if "Cflg" in tmass.colnames:
            contaminated = np.array([str(c).strip("0 ") != "" for c in np.asarray(tmass["Cflg"])[ref]], bool)
            cflag[good[contaminated]] |= CFLAG_2MASS
        qflag[rows[~found]] |= QFLAG_SAT_NO_2MASS
    else:
        qflag[sat] |= QFLAG_SAT_NO_2MASS
    with np.errstate(invalid="ignore"):
        qflag[~(magerr <= 0.2)] |= QFLAG_FAINT
    cflag |= _contamination(ra, dec, mag, sat, fwhm)
    table = Table()
    table["ID"] = iau_names(ra, dec)
    table["RA"], table["DEC"] = ra, dec
    table["ERRMAJ"], table["ERRMIN"] = np.asarray(cat["ERRA"], float), np.asarray(cat["ERRB"], float)
    table["ERRPA"] = np.asarray(cat["ERRTHETA"], float)
    table["MAG"], table["MAGERR"] = mag.astype(np.float32), magerr.astype(np.float32)
    for name in ("MAG_APER", "MAGERR_APER", "MAG_AUTO", "MAGERR_AUTO", "ELLIPTICITY", "CLASS_STAR"):
        table[name] = np.asarray(cat[name], np.float32)
    table["FWHM"] = np.asarray(cat["FWHM_WORLD"], np.float32)
    table["SFLAGS"] = flags.astype(np.int16)
    table["QFLAG"], table["CFLAG"], table["MAGSRC"], table["TMASS_ID"] = qflag, cflag, source, tmass_id
    counts = {"NSOURCES": n, "NDUPLICATE": n_in - n,
              "NSATURATED": int(sat.sum()), "N2MASS": int((source == "2MASS").sum())}
    return table, counts


def _contamination(ra: np.ndarray, dec: np.ndarray, mag: np.ndarray, sat: np.ndarray,
                   fwhm: float) -> np.ndarray:
    """CFLAG bits 1 (brighter neighbour within 2 FWHM) and 2 (within 5 FWHM of a saturated star)."""
    flags = np.zeros(len(ra), np.int16)
    if len(ra) < 2:
        return flags
    coords = SkyCoord(ra * u.deg, dec * u.deg)
    first, second, _, _ = search_around_sky(coords, coords, 5.0 * fwhm * u.arcsec)
    distance = coords[first].separation(coords[second]).arcsec
    other = first != second
    with np.errstate(invalid="ignore"):
        blend = other & (distance <= 2.0 * fwhm) & (mag[second] < mag[first])
    flags[np.unique(first[blend])] |= CFLAG_BLEND
    halo = other & sat[second]
    flags[np.unique(first[halo])] |= CFLAG_HALO
    return flags
