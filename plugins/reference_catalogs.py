"""Built-in reference-catalogue providers (hook: ``vircam_register_reference_catalogs``)."""

from __future__ import annotations

from vircamframe.hookspecs import hookimpl
from vircamframe.refcat.local import query_local


@hookimpl
def vircam_register_reference_catalogs(registry) -> None:
    """Register ``local`` (files given in the SOF, offline)."""
    registry.add("local", query_local,
                 "tables given as files (FITS, ECSV, VOTable, CSV; VizieR, Gaia-archive or IRSA "
                 "column names), cone-selected")
