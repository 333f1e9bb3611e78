"""The ``local`` reference-catalogue provider: tables the user gives as files (offline)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from astropy.table import Table, vstack

from ..errors import RefcatError
from .catalogs import cone, read_catalog, spec_for

__all__ = ["query_local"]


def query_local(
    ra: float,
    dec: float,
    radius: float,
    *,
    role: str,
    epoch: float | None = None,
    files: Sequence[str | os.PathLike] = (),
    **_options,
) -> Table:
    """Rows of the local ``files`` of ``role`` within ``radius`` deg of (``ra``, ``dec``).

    Positions are returned at the catalogue's own epoch (``epoch`` is for providers that can
    propagate; :func:`vircamframe.refcat.gaia.prepare_gaia` does it for Gaia).

    Raises
    ------
    RefcatError
        No file given, a file that is missing, unreadable or lacks a required column.
    """
    spec = spec_for(role)
    if not files:
        raise RefcatError(f"no local {spec.vizier_id} file given (tag {spec.tag} in the SOF)")
    tables = [read_catalog(path, spec) for path in files]
    table = tables[0] if len(tables) == 1 else vstack(tables, metadata_conflicts="silent")
    return cone(table, spec, ra, dec, radius)
