"""Reference catalogues as data: what each role needs, in VizieR's column names.

The pipeline speaks VizieR: Gaia DR3 as ``I/355/gaiadr3`` for the astrometric role, the 2MASS
Point Source Catalogue as ``II/246`` for the photometric one. Tables from elsewhere (the Gaia
archive's ``gaia_source`` names, IRSA's 2MASS names) are renamed through each catalogue's
aliases, so a local file from any of these archives works; a table that still lacks a
required column is an error naming the file, the catalogue and the columns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..errors import RefcatError

__all__ = ["GAIA_DR3", "ROLES", "TWOMASS_PSC", "CatalogSpec", "cone", "normalise", "read_catalog", "spec_for"]


@dataclass(frozen=True)
class CatalogSpec:
    """One reference catalogue: its role, VizieR identifier, columns and epoch.

    Parameters
    ----------
    role : {"astrometric", "photometric"}
    tag : str
        The SOF tag of a local file of it (``REFCAT_ASTROM``, ``REFCAT_PHOTOM``).
    vizier_id : str
        The VizieR catalogue (``I/355/gaiadr3``).
    ra, dec : str
        Position columns [deg].
    required : tuple of str
        Columns the pipeline uses (VizieR names).
    epoch : float
        Julian epoch of the positions (2016.0 for Gaia DR3, 2000.0 for 2MASS: its own epochs
        vary per source around 1997-2001 and are not propagated).
    aliases : dict
        Other archives' column names -> VizieR names.
    """

    role: str
    tag: str
    vizier_id: str
    ra: str
    dec: str
    required: tuple[str, ...]
    epoch: float
    aliases: dict[str, str] = field(default_factory=dict)


GAIA_DR3 = CatalogSpec(
    role="astrometric", tag="REFCAT_ASTROM", vizier_id="I/355/gaiadr3", ra="RA_ICRS", dec="DE_ICRS",
    required=("RA_ICRS", "DE_ICRS", "e_RA_ICRS", "e_DE_ICRS", "pmRA", "pmDE", "e_pmRA", "e_pmDE",
              "Gmag", "RUWE"),
    epoch=2016.0,
    aliases={  # the Gaia archive's gaia_source names (astroquery.gaia)
        "ra": "RA_ICRS", "dec": "DE_ICRS", "ra_error": "e_RA_ICRS", "dec_error": "e_DE_ICRS",
        "pmra": "pmRA", "pmdec": "pmDE", "pmra_error": "e_pmRA", "pmdec_error": "e_pmDE",
        "phot_g_mean_mag": "Gmag", "ruwe": "RUWE", "source_id": "Source",
    },
)
TWOMASS_PSC = CatalogSpec(
    role="photometric", tag="REFCAT_PHOTOM", vizier_id="II/246", ra="RAJ2000", dec="DEJ2000",
    required=("RAJ2000", "DEJ2000", "Jmag", "e_Jmag", "Hmag", "e_Hmag", "Kmag", "e_Kmag", "Qflg"),
    epoch=2000.0,
    aliases={  # IRSA's fp_psc names (astroquery.ipac.irsa)
        "ra": "RAJ2000", "dec": "DEJ2000", "j_m": "Jmag", "j_msigcom": "e_Jmag", "h_m": "Hmag",
        "h_msigcom": "e_Hmag", "k_m": "Kmag", "k_msigcom": "e_Kmag", "ph_qual": "Qflg",
        "cc_flg": "Cflg", "designation": "_2MASS",
    },
)
ROLES: dict[str, CatalogSpec] = {GAIA_DR3.role: GAIA_DR3, TWOMASS_PSC.role: TWOMASS_PSC}


def spec_for(role: str) -> CatalogSpec:
    """The catalogue of ``role``; an unknown role is an error listing the known ones."""
    try:
        return ROLES[role]
    except KeyError:
        raise RefcatError(f"unknown reference-catalogue role {role!r}; known: {', '.join(ROLES)}") from None


def normalise(table: Table, spec: CatalogSpec, source: str) -> Table:
    """``table`` with VizieR column names; raises when a required column is missing.

    Columns already named as VizieR names them win over aliases (a table with both ``ra`` and
    ``RA_ICRS`` keeps ``RA_ICRS``).
    """
    table = Table(table, copy=False)
    for alias, name in spec.aliases.items():
        if alias in table.colnames and name not in table.colnames:
            table.rename_column(alias, name)
    missing = [c for c in spec.required if c not in table.colnames]
    if missing:
        has = ", ".join(table.colnames[:12]) + (" ..." if len(table.colnames) > 12 else "")
        raise RefcatError(
            f"{source}: not a {spec.vizier_id} table: lacks column(s) {', '.join(missing)} "
            f"(VizieR names; it has {has})"
        )
    return table


_FORMATS = {".fits": "fits", ".fit": "fits", ".fits.gz": "fits", ".fz": "fits", ".ecsv": "ascii.ecsv",
            ".xml": "votable", ".vot": "votable", ".votable": "votable", ".csv": "ascii.csv"}


def read_catalog(path: str | os.PathLike, spec: CatalogSpec) -> Table:
    """Read a local catalogue file (FITS, ECSV, VOTable or CSV) and normalise its columns."""
    path = Path(path)
    if not path.is_file():
        raise RefcatError(f"{path}: reference catalogue file not found")
    suffix = ".fits.gz" if path.name.lower().endswith(".fits.gz") else path.suffix.lower()
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        raise RefcatError(f"{path}: unknown catalogue format {suffix!r} (FITS, ECSV, VOTable or CSV)")
    try:
        table = Table.read(path, format=fmt)
    except Exception as err:  # astropy raises many kinds; the user needs one line
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RefcatError(f"{path}: cannot read it as a {fmt} table ({reason})") from None
    return normalise(table, spec, str(path))


def cone(table: Table, spec: CatalogSpec, ra: float, dec: float, radius: float) -> Table:
    """Rows within ``radius`` degrees of (``ra``, ``dec``) [deg] (haversine, vectorised)."""
    ra0, dec0 = np.radians(ra), np.radians(dec)
    ra1 = np.radians(np.asarray(table[spec.ra], dtype=float))
    dec1 = np.radians(np.asarray(table[spec.dec], dtype=float))
    hav = np.sin((dec1 - dec0) / 2) ** 2 + np.cos(dec0) * np.cos(dec1) * np.sin((ra1 - ra0) / 2) ** 2
    separation = np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1))))
    return table[separation <= radius]
