"""Built-in reference-catalogue providers (hook: ``vircam_register_reference_catalogs``)."""

from __future__ import annotations

from vircamframe.hookspecs import hookimpl
from vircamframe.refcat.local import query_local
from vircamframe.refcat.vizier import query_vizier


@hookimpl
def vircam_register_reference_catalogs(registry) -> None:
    """Register ``local`` (files given in the SOF, offline) and ``vizier`` (astroquery, cached)."""
    registry.add("local", query_local,
                 "tables given as files (FITS, ECSV, VOTable, CSV; VizieR, Gaia-archive or IRSA "
                 "column names), cone-selected")
    registry.add("vizier", query_vizier,
                 "VizieR through astroquery (I/355/gaiadr3, II/246), cached on disk by sky region, "
                 "retried; offline it says so and names the local alternative")
