"""Gaia DR3 as the astrometric reference: selection, epoch propagation, the SCAMP catalogue.

Gaia DR3 positions are at epoch J2016.0; VIRCAM data were taken 2009 onwards, so a star moving
100 mas/yr is 0.7" off its Gaia position in 2009 -- two VIRCAM pixels. :func:`prepare_gaia`
keeps the astrometrically well-behaved stars (RUWE below 1.5), moves them to the mean epoch of
the observations (:func:`mean_epoch`) and inflates their errors by what the proper-motion
errors contribute over that time; :func:`write_scamp_reference` writes the result as the
FITS-LDAC file SCAMP reads with ``ASTREF_CATALOG FILE``.

Stars without a proper motion (Gaia's two-parameter solutions) are dropped: their motion is
unknown (tens of mas/yr are common), their positions are the least precise in the catalogue,
and Gaia gives them no RUWE, so the RUWE cut could not judge them either. A VIRCAM detector
holds hundreds of five- and six-parameter stars, so nothing is lost by leaving them out.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from ..errors import RefcatError
from .catalogs import GAIA_DR3, normalise
from .ldac import write_ldac

__all__ = ["MAS_PER_DEG", "mean_epoch", "prepare_gaia", "propagate", "write_scamp_reference"]

log = logging.getLogger(__name__)

MAS_PER_DEG = 3.6e6
_MAS = np.pi / (180.0 * MAS_PER_DEG)  # radians per mas
MJD_J2000 = 51544.5  # MJD of J2000.0 (2000-01-01T12:00 TT)
JULIAN_YEAR = 365.25  # days
G_MAGERR_PER_SNR = 2.5 / np.log(10.0)  # mag error = this / (flux / flux error)


def mean_epoch(mjds: Sequence[float] | np.ndarray) -> float:
    """The Julian epoch of the mean of ``mjds``.

    Parameters
    ----------
    mjds : sequence of float
        ``MJD-OBS`` of the frames [d].

    Returns
    -------
    float
        ``2000.0 + (mean MJD - 51544.5) / 365.25`` [Julian yr].

    Raises
    ------
    ValueError
        When ``mjds`` is empty or holds a non-finite value.
    """
    values = np.asarray(mjds, dtype=float).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"mean_epoch needs finite MJDs, got {values!r}")
    return 2000.0 + (float(np.mean(values)) - MJD_J2000) / JULIAN_YEAR


def propagate(
    ra: np.ndarray, dec: np.ndarray, pmra: np.ndarray, pmdec: np.ndarray, dt: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Move positions along their proper motions by ``dt`` years.

    Rigorous for zero parallax and radial velocity: the star moves along a straight line in
    space, ``u(t) = (u0 + mu dt) / |u0 + mu dt|`` with ``u0`` the unit vector to the star and
    ``mu`` its proper-motion vector in the tangent plane (the Gaia DR3 documentation's epoch
    propagation without the radial terms); valid at all declinations, poles included.
    Parallax and radial velocity change positions by far less than a mas over a decade for
    all but the nearest stars, which are few and bright.

    Parameters
    ----------
    ra, dec : array_like
        Positions at the catalogue epoch [deg].
    pmra, pmdec : array_like
        Proper motion in ``ra * cos(dec)`` and in ``dec`` [mas/yr].
    dt : float or array_like
        Target epoch minus catalogue epoch [yr].

    Returns
    -------
    ra, dec : ndarray
        Positions at the target epoch [deg], ``ra`` in [0, 360).
    """
    a = np.radians(np.asarray(ra, dtype=float))
    d = np.radians(np.asarray(dec, dtype=float))
    ca, sa, cd, sd = np.cos(a), np.sin(a), np.cos(d), np.sin(d)
    east = np.asarray(pmra, dtype=float) * _MAS * dt  # rad along p = (-sin a, cos a, 0)
    north = np.asarray(pmdec, dtype=float) * _MAS * dt  # rad along q = (-sin d cos a, -sin d sin a, cos d)
    x = cd * ca - east * sa - north * sd * ca
    y = cd * sa + east * ca - north * sd * sa
    z = sd + north * cd
    out_ra = np.degrees(np.arctan2(y, x)) % 360.0
    out_dec = np.degrees(np.arctan2(z, np.hypot(x, y)))  # the norm cancels
    return out_ra, out_dec


def _values(table: Table, name: str, unit: str | None) -> np.ndarray:
    """Column ``name`` as float64 in ``unit`` (when it carries one), masked entries as NaN."""
    column = table[name]
    values = np.ma.filled(np.ma.asarray(column, dtype=float), np.nan)
    if unit is not None and getattr(column, "unit", None) is not None and column.unit != unit:
        try:
            values = (values * column.unit).to_value(unit)
        except u.UnitConversionError:
            raise RefcatError(f"Gaia column {name} is in {column.unit}, expected {unit}") from None
    return values


def _ref_epoch(table: Table) -> np.ndarray | float:
    """The catalogue epoch of each row [Julian yr]: ``ref_epoch``/``Epoch``, meta or 2016.0."""
    for name in ("ref_epoch", "Epoch"):
        if name in table.colnames:
            epochs = _values(table, name, None)
            if np.all(np.isfinite(epochs)):
                return epochs
    return float(table.meta.get("EPOCH", GAIA_DR3.epoch))


def prepare_gaia(
    table: Table,
    epoch: float,
    ruwe_max: float = 1.5,
    mag_limits: tuple[float, float] | None = None,
) -> Table:
    """Gaia DR3 stars fit to be astrometric references at ``epoch``.

    Keeps the rows with ``RUWE < ruwe_max``, a proper motion with errors, finite positions
    and errors, and ``Gmag`` (within ``mag_limits`` when given); rows without a proper motion
    are dropped (see the module's documentation). Positions are propagated from the catalogue
    epoch (2016.0; a ``ref_epoch`` or ``Epoch`` column or the table's ``EPOCH`` keyword takes
    precedence) to ``epoch`` with :func:`propagate`, and the errors become

    ``ERR_RA**2 = e_RA_ICRS**2 + (dt * e_pmRA)**2``, ``ERR_DEC**2 = e_DE_ICRS**2 + (dt * e_pmDE)**2``

    with ``dt = epoch - catalogue epoch`` [yr]. The correlations between position and proper
    motion (``ra_pmra_corr`` ...) are ignored: Gaia's reference epoch is near the middle of
    its observations, where they are small.

    Parameters
    ----------
    table : Table
        Gaia DR3 rows in VizieR (``I/355/gaiadr3``) or Gaia-archive column names (see
        :data:`~vircamframe.refcat.catalogs.GAIA_DR3`); positions [deg], position errors
        [mas], proper motions and their errors [mas/yr]. Not modified.
    epoch : float
        Target epoch [Julian yr], e.g. :func:`mean_epoch` of the frames.
    ruwe_max : float
        Rows with ``RUWE >= ruwe_max`` (or no RUWE) are dropped.
    mag_limits : (float, float), optional
        Bright and faint ``Gmag`` limits [mag], both inclusive.

    Returns
    -------
    Table
        The kept rows with all their columns, plus ``RA``, ``DEC`` [deg] at ``epoch``,
        ``ERR_RA`` (along ``ra * cos(dec)``), ``ERR_DEC`` [mas], ``MAG`` (= ``Gmag``) and
        ``MAGERR`` [mag] (``e_Gmag``, or from ``phot_g_mean_flux_over_error``, else NaN).
        ``meta``: ``EPOCH`` (= ``epoch``), ``REFEPOCH`` (the catalogue epoch when a single
        one), ``RUWEMAX``.

    Raises
    ------
    RefcatError
        When a required column is missing or has an incompatible unit.
    """
    table = normalise(Table(table, copy=False), GAIA_DR3, "Gaia table given to prepare_gaia")
    ra = _values(table, "RA_ICRS", "deg")
    dec = _values(table, "DE_ICRS", "deg")
    e_ra = _values(table, "e_RA_ICRS", "mas")
    e_dec = _values(table, "e_DE_ICRS", "mas")
    pmra = _values(table, "pmRA", "mas / yr")
    pmdec = _values(table, "pmDE", "mas / yr")
    e_pmra = _values(table, "e_pmRA", "mas / yr")
    e_pmdec = _values(table, "e_pmDE", "mas / yr")
    gmag = _values(table, "Gmag", "mag")
    ruwe = _values(table, "RUWE", None)
    ref_epoch = _ref_epoch(table)

    with np.errstate(invalid="ignore"):
        good_ruwe = ruwe < ruwe_max  # NaN (no RUWE) fails
    has_pm = np.isfinite(pmra) & np.isfinite(pmdec) & np.isfinite(e_pmra) & np.isfinite(e_pmdec)
    finite = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(e_ra) & np.isfinite(e_dec) & np.isfinite(gmag)
    keep = good_ruwe & has_pm & finite
    if mag_limits is not None:
        bright, faint = mag_limits
        with np.errstate(invalid="ignore"):
            keep &= (gmag >= bright) & (gmag <= faint)
    log.info("Gaia: %d of %d rows kept (%d RUWE >= %g or none, %d without proper motion, %d outside "
             "magnitude limits or incomplete)", keep.sum(), keep.size, (~good_ruwe).sum(), ruwe_max,
             (~has_pm).sum(), (good_ruwe & has_pm & ~keep).sum())

    dt = (epoch - ref_epoch)[keep] if np.ndim(ref_epoch) else epoch - ref_epoch
    out = table[keep]  # a copy
    out["RA"], out["DEC"] = propagate(ra[keep], dec[keep], pmra[keep], pmdec[keep], dt)
    out["ERR_RA"] = np.hypot(e_ra[keep], dt * e_pmra[keep])
    out["ERR_DEC"] = np.hypot(e_dec[keep], dt * e_pmdec[keep])
    out["MAG"] = gmag[keep]
    if "e_Gmag" in table.colnames:
        out["MAGERR"] = _values(table, "e_Gmag", "mag")[keep]
    elif "phot_g_mean_flux_over_error" in table.colnames:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["MAGERR"] = G_MAGERR_PER_SNR / _values(table, "phot_g_mean_flux_over_error", None)[keep]
    else:
        out["MAGERR"] = np.full(int(keep.sum()), np.nan)
    for name, unit in (("RA", "deg"), ("DEC", "deg"), ("ERR_RA", "mas"), ("ERR_DEC", "mas"),
                       ("MAG", "mag"), ("MAGERR", "mag")):
        out[name].unit = unit
    out.meta["EPOCH"] = float(epoch)
    if np.ndim(ref_epoch) == 0 or np.unique(np.asarray(ref_epoch)).size == 1:
        out.meta["REFEPOCH"] = float(np.ravel(ref_epoch)[0])
    out.meta["RUWEMAX"] = float(ruwe_max)
    return out


SCAMP_FALLBACK_MAGERR = 0.01  # mag, written where the input has no G error


def write_scamp_reference(path: str | os.PathLike, table: Table, epoch: float) -> Path:
    """Write a :func:`prepare_gaia` table as SCAMP's ``ASTREF_CATALOG FILE`` reference.

    One FITS-LDAC catalogue (:func:`~vircamframe.refcat.ldac.write_ldac`): a minimal
    ``LDAC_IMHEAD`` (``EPOCH``, ``REFEPOCH``, ``RUWEMAX``, ``NREF``, ``REFCAT``) and an
    ``LDAC_OBJECTS`` table with

    =============== ====== ==========================================================
    X_WORLD         deg    right ascension at ``epoch`` (``RA``)
    Y_WORLD         deg    declination at ``epoch`` (``DEC``)
    ERRA_WORLD      deg    major axis of the error ellipse: max(``ERR_RA``, ``ERR_DEC``)
    ERRB_WORLD      deg    minor axis: min(``ERR_RA``, ``ERR_DEC``)
    ERRTHETA_WORLD  deg    major-axis angle from the RA axis: 0 or 90
    MAG             mag    Gaia ``G``
    MAGERR          mag    its error (0.01 where the input has none)
    OBSDATE         yr     ``epoch``: the positions' epoch
    FLAGS                  0 (SCAMP rejects references flagged by ``ASTR_FLAGSMASK``)
    =============== ====== ==========================================================

    SCAMP reads them with its defaults::

        ASTREF_CATALOG     FILE
        ASTREFCAT_NAME     <path>
        ASTREFCENT_KEYS    X_WORLD,Y_WORLD
        ASTREFERR_KEYS     ERRA_WORLD,ERRB_WORLD,ERRTHETA_WORLD
        ASTREFMAG_KEY      MAG
        ASTREFMAGERR_KEY   MAGERR
        ASTREFOBSDATE_KEY  OBSDATE

    The error columns follow SExtractor's ellipse convention (``A >= B``; the RA/Dec
    correlation is ignored, so the ellipse is aligned with the axes). SCAMP 2.x reads only the
    first two error keys and takes ``sqrt(ERRA**2 + ERRB**2)`` as the error on both axes, so
    the split does not change its solution. No proper-motion columns are written: the
    positions are already at ``epoch``, and SCAMP must not move them again.

    Parameters
    ----------
    path : path
        Output file, written atomically.
    table : Table
        Output of :func:`prepare_gaia` (columns ``RA``, ``DEC`` [deg], ``ERR_RA``,
        ``ERR_DEC`` [mas], ``MAG``, optionally ``MAGERR`` [mag]).
    epoch : float
        Epoch of the positions [Julian yr]; must equal ``table.meta["EPOCH"]`` when set.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        When ``epoch`` differs from the epoch the table was propagated to.
    RefcatError
        When a column is missing.
    """
    missing = [c for c in ("RA", "DEC", "ERR_RA", "ERR_DEC", "MAG") if c not in table.colnames]
    if missing:
        raise RefcatError(f"not a prepare_gaia table: lacks {', '.join(missing)}")
    if "EPOCH" in table.meta and abs(float(table.meta["EPOCH"]) - epoch) > 1e-9:
        raise ValueError(f"the positions are at epoch {table.meta['EPOCH']}, not {epoch}")
    err_ra = _values(table, "ERR_RA", "mas") / MAS_PER_DEG
    err_dec = _values(table, "ERR_DEC", "mas") / MAS_PER_DEG
    magerr = (_values(table, "MAGERR", "mag") if "MAGERR" in table.colnames
              else np.full(len(table), np.nan))
    objects = Table()
    objects["X_WORLD"] = _values(table, "RA", "deg")
    objects["Y_WORLD"] = _values(table, "DEC", "deg")
    objects["ERRA_WORLD"] = np.maximum(err_ra, err_dec).astype(np.float32)
    objects["ERRB_WORLD"] = np.minimum(err_ra, err_dec).astype(np.float32)
    objects["ERRTHETA_WORLD"] = np.where(err_ra >= err_dec, 0.0, 90.0).astype(np.float32)
    objects["MAG"] = _values(table, "MAG", "mag").astype(np.float32)
    objects["MAGERR"] = np.where(np.isfinite(magerr), magerr, SCAMP_FALLBACK_MAGERR).astype(np.float32)
    objects["OBSDATE"] = np.full(len(table), float(epoch))
    objects["FLAGS"] = np.zeros(len(table), dtype=np.int16)
    descriptions = {
        "X_WORLD": "Barycenter position along world x axis",
        "Y_WORLD": "Barycenter position along world y axis",
        "ERRA_WORLD": "World RMS position error along major axis",
        "ERRB_WORLD": "World RMS position error along minor axis",
        "ERRTHETA_WORLD": "Error ellipse pos. angle (CCW/world-x)",
        "MAG": "Gaia G magnitude",
        "MAGERR": "Gaia G magnitude RMS error",
        "OBSDATE": "Epoch of the positions",
        "FLAGS": "Flags (always 0)",
    }
    units = {"X_WORLD": "deg", "Y_WORLD": "deg", "ERRA_WORLD": "deg", "ERRB_WORLD": "deg",
             "ERRTHETA_WORLD": "deg", "MAG": "mag", "MAGERR": "mag", "OBSDATE": "yr"}
    for name, column in objects.columns.items():
        column.description = descriptions[name]
        column.unit = units.get(name)
    header = fits.Header()
    header["REFCAT"] = (f"Gaia DR3 ({GAIA_DR3.vizier_id})", "astrometric reference catalogue")
    header["EPOCH"] = (float(epoch), "[yr] Julian epoch of the positions")
    if "REFEPOCH" in table.meta:
        header["REFEPOCH"] = (float(table.meta["REFEPOCH"]), "[yr] catalogue epoch")
    if "RUWEMAX" in table.meta:
        header["RUWEMAX"] = (float(table.meta["RUWEMAX"]), "rows with RUWE >= this dropped")
    header["NREF"] = (len(table), "number of reference stars")
    return write_ldac(path, [(header, objects)])
