"""Reference catalogues: Gaia DR3 for astrometry, 2MASS for photometry (DESIGN.md 3.5, 7).

Providers (``local`` files, ``vizier`` through astroquery) are strategies registered through
the ``vircam_register_reference_catalogs`` hook and return tables with VizieR column names
(:mod:`.catalogs`); :mod:`.gaia` prepares Gaia for SCAMP, :mod:`.ldac` reads and writes
FITS-LDAC. ``vizier`` imports astroquery only when it is called.
"""

from .catalogs import GAIA_DR3, ROLES, TWOMASS_PSC, CatalogSpec, cone, normalise, read_catalog, spec_for
from .gaia import mean_epoch, prepare_gaia, propagate, write_scamp_reference
from .ldac import read_ldac, write_ldac
from .local import query_local
from .vizier import query_vizier

__all__ = ["GAIA_DR3", "ROLES", "TWOMASS_PSC", "CatalogSpec", "cone", "mean_epoch", "normalise",
           "prepare_gaia", "propagate", "query_local", "query_vizier", "read_catalog", "read_ldac",
           "spec_for", "write_ldac", "write_scamp_reference"]
