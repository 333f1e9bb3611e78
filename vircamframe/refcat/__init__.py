"""Reference catalogues: Gaia DR3 for astrometry, 2MASS for photometry (DESIGN.md 3.5, 7).

Providers (``local`` files, ``vizier`` through astroquery) are strategies registered through
the ``vircam_register_reference_catalogs`` hook and return tables with VizieR column names
(:mod:`.catalogs`).
"""

from .catalogs import GAIA_DR3, ROLES, TWOMASS_PSC, CatalogSpec, cone, normalise, read_catalog, spec_for
from .local import query_local

__all__ = ["GAIA_DR3", "ROLES", "TWOMASS_PSC", "CatalogSpec", "cone", "normalise", "query_local",
           "read_catalog", "spec_for"]
