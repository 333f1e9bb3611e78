"""The ``vizier`` reference-catalogue provider: astroquery's VizieR client with a disk cache.

Gaia DR3 (``I/355/gaiadr3``) and the 2MASS PSC (``II/246``) come from VizieR through
:class:`astroquery.vizier.VizierClass` (``query_region_async``: a POST of the VizieR ASU script to
``https://<server>/viz-bin/votable``). Each answer is kept on disk as one FITS table per
(catalogue, centre, radius), the centre rounded to :data:`KEY_STEP` degrees and the radius
rounded up so that the cone asked of VizieR contains the cone asked of the provider. A later
query whose cone lies inside a cached cone of the same catalogue is cut from that file and
needs no network. Connection failures, timeouts and overload answers (HTTP 429/5xx) are
retried with exponential backoff; when VizieR stays out of reach the error says so in one line
and names the offline alternative, the ``local`` provider.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import numpy as np
import requests
from astropy.table import Table, vstack

from ..errors import RefcatError
from .catalogs import CatalogSpec, cone, normalise, spec_for

__all__ = ["KEY_STEP", "CacheKey", "cache_key", "default_cache_dir", "query_vizier"]

log = logging.getLogger(__name__)

KEY_STEP = 1e-4
"""Grid of the cache keys [deg]: centres are rounded to it, radii rounded up to it."""

_LOCAL_KEYS = {"astrometric": "local_gaia_catalog", "photometric": "local_2mass_catalog"}
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT = (
    requests.exceptions.ConnectionError,  # includes ConnectTimeout, ProxyError, SSLError
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    ConnectionError,
    TimeoutError,
)
# Columns VizieR gives as text; any other column of an empty answer is float64.
_TEXT_COLUMNS = {"Qflg": "U3", "Cflg": "U3", "Rflg": "U3", "Bflg": "U3", "_2MASS": "U17"}


@dataclass(frozen=True)
class CacheKey:
    """A cone on the :data:`KEY_STEP` grid: the one asked of VizieR and kept on disk.

    Parameters
    ----------
    ra, dec : float
        Centre [deg], on the grid (``ra`` in [0, 360)).
    radius : float
        Radius [deg], on the grid.
    """

    ra: float
    dec: float
    radius: float

    def filename(self, spec: CatalogSpec) -> str:
        """The cache file name, e.g. ``I_355_gaiadr3_280.0000_-60.0000_0.5001.fits``."""
        return f"{_slug(spec)}_{self.ra:.4f}_{self.dec:+.4f}_{self.radius:.4f}.fits"


def _slug(spec: CatalogSpec) -> str:
    return spec.vizier_id.replace("/", "_")


def _separation(ra0: float, dec0: float, ra1: float, dec1: float) -> float:
    """Great-circle distance [deg] (haversine, as :func:`~.catalogs.cone` computes it)."""
    r0, d0, r1, d1 = map(math.radians, (ra0, dec0, ra1, dec1))
    hav = math.sin((d1 - d0) / 2) ** 2 + math.cos(d0) * math.cos(d1) * math.sin((r1 - r0) / 2) ** 2
    return math.degrees(2 * math.asin(math.sqrt(min(max(hav, 0.0), 1.0))))


def cache_key(ra: float, dec: float, radius: float) -> CacheKey:
    """The grid cone that contains the cone of ``radius`` deg around (``ra``, ``dec``) [deg].

    The centre is rounded to :data:`KEY_STEP`, the radius grown by the rounding offset and
    rounded up to :data:`KEY_STEP`, so nearby queries of one field share a key and a file.
    """
    kra = round(round(ra / KEY_STEP) * KEY_STEP % 360.0, 4) % 360.0
    kdec = round(min(max(round(dec / KEY_STEP) * KEY_STEP, -90.0), 90.0), 4)
    needed = radius + _separation(ra, dec, kra, kdec)
    # up to the grid; the 1e-6 step slack only absorbs float noise (1e-10 deg)
    kradius = round(math.ceil(needed / KEY_STEP - 1e-6) * KEY_STEP, 4)
    return CacheKey(kra, kdec, max(kradius, KEY_STEP))


def default_cache_dir() -> Path:
    """``$VIRCAM_CACHE_DIR/refcat``, else ``${XDG_CACHE_HOME:-~/.cache}/vircamframe/refcat``.

    The same cache root as the recipe index (:mod:`vircamframe.registry`).
    """
    root = os.environ.get("VIRCAM_CACHE_DIR")
    if root:
        return Path(root) / "refcat"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vircamframe" / "refcat"


def _alternative(spec: CatalogSpec) -> str:
    return (f"use the local provider: give a local {spec.vizier_id} table tagged {spec.tag} "
            f"(VISIONS key {_LOCAL_KEYS.get(spec.role, 'local_' + spec.role + '_catalog')})")


def _host(server: str | None) -> str:
    """``server`` (else ``$VIRCAM_VIZIER_SERVER``, else astroquery's configured mirror) as
    ``host[:port]``. The variable reaches recipes run by a chain: a mirror astroquery does not
    list, or a local stand-in."""
    if server is None:
        from astroquery.vizier import conf

        server = os.environ.get("VIRCAM_VIZIER_SERVER") or conf.server
    host = str(server).strip()
    if host.lower().startswith("https://"):
        host = host[len("https://"):]
    host = host.rstrip("/")
    if not host or "/" in host or "://" in host or any(c.isspace() for c in host):
        raise RefcatError(f"VizieR server must be a host name (with an optional :port) reached over "
                          f"HTTPS, not {server!r}")
    return host


def _wanted_columns(spec: CatalogSpec, columns: Sequence[str] | None) -> list[str]:
    """The ``-out`` columns: the required ones, then ``columns``; ``["**"]`` for all."""
    extra = list(columns or ())
    if any(c in ("**", "all") for c in extra):
        return ["**"]
    return list(dict.fromkeys([*spec.required, *extra]))


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _reason(err: BaseException, timeout: float) -> str:
    """A short reason for a failed request (``Connection refused``, ``no answer within 5 s``)."""
    text = str(err)
    if isinstance(err, requests.exceptions.Timeout | TimeoutError) or "timed out" in text.lower():
        return f"no answer within {timeout:g} s"
    for pattern in (r"\[Errno -?\d+\] ([^'\"()]+)", r"(certificate verify failed[^'\"()]*)",
                    r"(Remote end closed connection without response)", r"(Connection aborted)"):
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip().rstrip(".")
    first = _one_line(text)
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def _is_permanent(err: BaseException) -> bool:
    """Failures that a retry cannot cure (a certificate the client does not trust)."""
    return isinstance(err, requests.exceptions.SSLError) and "certificate" in str(err).lower()


# --------------------------------------------------------------------------------------------
# the disk cache


def _read_cached(directory: Path, spec: CatalogSpec, ra: float, dec: float, radius: float,
                 wanted: list[str]) -> tuple[Table, Path] | None:
    """The smallest cached cone of ``spec`` containing the requested one, read; else None."""
    if not directory.is_dir():
        return None
    pattern = re.compile(rf"^{re.escape(_slug(spec))}_(\d+\.\d+)_([+-]\d+\.\d+)_(\d+\.\d+)\.fits$")
    covering = []
    for path in directory.iterdir():
        match = pattern.match(path.name)
        if not match:
            continue
        cra, cdec, cradius = (float(g) for g in match.groups())
        if _separation(cra, cdec, ra, dec) + radius <= cradius + 1e-9:
            covering.append((cradius, path))
    for _, path in sorted(covering):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = Table.read(path, format="fits", character_as_bytes=False)
        except Exception as err:  # a truncated or foreign file: ignore it, the network has it
            log.warning("refcat cache: cannot read %s (%s); ignoring it", path, _one_line(str(err)))
            continue
        if table.meta.get("VZCAT") != spec.vizier_id:
            continue
        if wanted == ["**"] and not table.meta.get("VZALLCOL", False):
            continue
        if wanted != ["**"] and not set(wanted) <= set(table.colnames):
            continue
        return table, path
    return None


def _write_cached(directory: Path, name: str, table: Table) -> Path | None:
    """Write ``table`` as ``directory/name`` atomically (temporary file, then rename)."""
    path = directory / name
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        os.close(fd)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # units FITS cannot name, long meta values
            table.write(tmp, format="fits", overwrite=True)
        os.replace(tmp, path)
    except OSError as err:  # a read-only or full disk costs a later download, not this run
        log.warning("refcat cache: cannot write %s (%s); not cached", path, _one_line(str(err)))
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        return None
    return path


# --------------------------------------------------------------------------------------------
# the VizieR answer


def _table_name(vo, table) -> str:
    """A VOTable TABLE's name, following a ``ref`` as astroquery does."""
    if getattr(table, "ref", None):
        return vo.get_table_by_id(table.ref).name or ""
    return table.name or ""


def _vizier_error(vo) -> str | None:
    """VizieR's own error report (``INFO name="Error"``, ``QUERY_STATUS=ERROR``), if any."""
    messages, status = [], None
    for info in vo.iter_info():
        if info.name == "Error" or info.ID == "Error":
            text = (info.value or "").strip() or (info.content or "").strip()
            if text:
                messages.append(text)
        if info.name == "QUERY_STATUS" and (info.value or "").upper() == "ERROR":
            status = (info.content or "").strip() or "unspecified error"
    if messages:
        return _one_line(messages[0])
    return _one_line(status) if status else None


def _overflow(vo) -> bool:
    return any(info.name == "QUERY_STATUS" and (info.value or "").upper() == "OVERFLOW"
               for info in vo.iter_info())


def _empty(spec: CatalogSpec, wanted: list[str]) -> Table:
    """A zero-row table of the ``wanted`` columns (VizieR sends no TABLE for an empty cone)."""
    names = list(spec.required) if wanted == ["**"] else wanted
    table = Table([np.zeros(0, dtype=_TEXT_COLUMNS.get(n, "f8")) for n in names], names=names)
    table[spec.ra].unit = table[spec.dec].unit = "deg"
    return table


def _parse_answer(content: bytes, spec: CatalogSpec, host: str, wanted: list[str]) -> tuple[Table, bool]:
    """The ``spec`` table of a VizieR VOTable answer, and whether VizieR says it overflowed."""
    from astropy.io import votable

    head = content[:2048].lstrip()
    if not (head.startswith(b"<?xml") or head.startswith(b"<VOTABLE")) or b"<VOTABLE" not in head:
        sent = _one_line(content[:200].decode("utf-8", "replace"), 80) or "an empty answer"
        raise RefcatError(f"VizieR at {host} did not answer the {spec.vizier_id} query with a VOTable "
                          f"(it sent {sent!r}); {_alternative(spec)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vo = votable.parse(BytesIO(content), verify="ignore")
    except Exception as err:  # malformed XML: one line for the user
        raise RefcatError(f"VizieR at {host} sent an unreadable VOTable for {spec.vizier_id} "
                          f"({_one_line(str(err), 100)}); {_alternative(spec)}") from None
    names = [(_table_name(vo, t), t) for t in vo.iter_tables()]
    # "I/355/gaiadr3" names the table itself; "II/246" is answered as the table "II/246/out"
    mine = [t for name, t in names if name == spec.vizier_id or name.startswith(spec.vizier_id + "/")]
    error = _vizier_error(vo)
    status_error = any(i.name == "QUERY_STATUS" and (i.value or "").upper() == "ERROR"
                       for i in vo.iter_info())
    if error and (status_error or not mine):
        raise RefcatError(f"VizieR at {host} answered the {spec.vizier_id} query with an error: {error}; "
                          f"{_alternative(spec)}")
    if error:
        log.warning("VizieR at %s reports for %s: %s", host, spec.vizier_id, error)
    if not mine:
        if names:
            got = ", ".join(name or "?" for name, _ in names)
            raise RefcatError(f"VizieR at {host} answered without a {spec.vizier_id} table (it sent {got}); "
                              f"{_alternative(spec)}")
        return _empty(spec, wanted), False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tables = [t.to_table(use_names_over_ids=True) for t in mine]
    table = tables[0] if len(tables) == 1 else vstack(tables, metadata_conflicts="silent")
    return normalise(table, spec, f"VizieR at {host}: {spec.vizier_id}"), _overflow(vo)


def _fetch(spec: CatalogSpec, key: CacheKey, host: str, wanted: list[str], *, retries: int,
           timeout: float, row_limit: int, backoff: float) -> tuple[Table, bool]:
    """Ask VizieR for the ``key`` cone of ``spec``; (table, complete)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astroquery.vizier import Vizier

    vizier = Vizier(columns=wanted, row_limit=row_limit, timeout=timeout, vizier_server=host)
    centre = SkyCoord(key.ra * u.deg, key.dec * u.deg, frame="icrs")
    attempts = max(int(retries), 0) + 1
    failure = "no attempt made"
    for attempt in range(1, attempts + 1):
        try:
            # frame="icrs": the centre goes out as given (astroquery's default fk5 would shift it
            # by the ~20 mas frame bias); cache=False: the disk cache here replaces astroquery's
            response = vizier.query_region_async(centre, radius=key.radius * u.deg, catalog=spec.vizier_id,
                                                 frame="icrs", cache=False)
        except (requests.exceptions.RequestException, ConnectionError, TimeoutError) as err:
            failure = _reason(err, timeout)
            if not isinstance(err, _TRANSIENT) or _is_permanent(err):
                break
        else:
            status = response.status_code
            if status in _RETRY_STATUS:
                failure = f"HTTP {status} {response.reason or ''}".strip()
            elif status >= 400:
                raise RefcatError(f"VizieR at {host} refused the {spec.vizier_id} query: HTTP {status} "
                                  f"{response.reason or ''}".rstrip() + f"; {_alternative(spec)}")
            else:
                table, overflow = _parse_answer(response.content, spec, host, wanted)
                complete = not overflow and (row_limit < 0 or len(table) < row_limit)
                return table, complete
        if attempt < attempts:
            delay = backoff * 2 ** (attempt - 1)
            log.warning("VizieR at %s: %s; retry %d of %d in %.3g s", host, failure, attempt, attempts - 1,
                        delay)
            time.sleep(delay)
    raise RefcatError(f"VizieR could not be reached at {host} ({failure}; {attempt} attempt(s)); "
                      f"{_alternative(spec)}")


def query_vizier(
    ra: float,
    dec: float,
    radius: float,
    *,
    role: str,
    epoch: float | None = None,
    server: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    row_limit: int = -1,
    backoff: float = 1.0,
    columns: Sequence[str] | None = None,
    cache: bool = True,
    **_options,
) -> Table:
    """Rows of the ``role`` catalogue within ``radius`` deg of (``ra``, ``dec``), from VizieR.

    Gaia DR3 ``I/355/gaiadr3`` for the astrometric role, 2MASS PSC ``II/246`` for the
    photometric one, with VizieR's column names and units. Positions are at the catalogue's
    own epoch (``epoch`` is accepted for the provider interface;
    :func:`vircamframe.refcat.gaia.prepare_gaia` propagates Gaia). The caller gives the
    footprint of its frames plus a margin as the cone.

    Parameters
    ----------
    ra, dec : float
        Centre of the cone, ICRS [deg].
    radius : float
        Radius of the cone [deg].
    role : {"astrometric", "photometric"}
        Which catalogue.
    epoch : float, optional
        Not used: VizieR positions come at the catalogue epoch.
    server : str, optional
        VizieR mirror as ``host[:port]`` (``https://`` is added); default astroquery's
        ``astroquery.vizier.conf.server``.
    cache_dir : path-like, optional
        Folder of the disk cache; default :func:`default_cache_dir`.
    retries : int
        Further attempts after a failed one (connection error, timeout, HTTP 408/429/5xx).
    timeout : float
        Seconds to wait for the connection and for each read.
    row_limit : int
        Most rows VizieR may send; -1 for all. A table that may have been cut is not cached.
    backoff : float
        Seconds before the first retry; doubled before each further one.
    columns : sequence of str, optional
        Columns wanted besides the required ones; ``["**"]`` for all of them.
    cache : bool
        Read and write the disk cache.

    Returns
    -------
    astropy.table.Table
        The rows in the cone (possibly none), the required columns in VizieR names first.

    Raises
    ------
    RefcatError
        VizieR cannot be reached (offline, refused, timed out after the retries), answers with
        an error or with something that is not a VOTable, or its table lacks a required column.
        The message names the server and the ``local`` provider as the offline alternative.
    """
    spec = spec_for(role)
    if not (math.isfinite(ra) and math.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise RefcatError(f"bad cone centre ({ra}, {dec}) deg for the {spec.vizier_id} query")
    if not (math.isfinite(radius) and radius > 0):
        raise RefcatError(f"bad cone radius {radius} deg for the {spec.vizier_id} query")
    wanted = _wanted_columns(spec, columns)
    host = _host(server)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    where = f"{spec.vizier_id} within {radius:.4f} deg of ({ra:.5f}, {dec:+.5f})"

    if cache:
        hit = _read_cached(directory, spec, ra, dec, radius, wanted)
        if hit is not None:
            table, path = hit
            log.info("refcat cache hit: %s from %s", where, path)
            return cone(normalise(table, spec, str(path)), spec, ra, dec, radius)
        log.info("refcat cache miss: %s; asking VizieR at %s", where, host)

    key = cache_key(ra, dec, radius)
    table, complete = _fetch(spec, key, host, wanted, retries=retries, timeout=timeout, row_limit=row_limit,
                             backoff=backoff)
    table.meta.clear()
    table.meta.update({"VZCAT": spec.vizier_id, "VZSERVER": host, "VZRA": key.ra, "VZDEC": key.dec,
                       "VZRADIUS": key.radius, "VZALLCOL": wanted == ["**"],
                       "VZDATE": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")})
    log.info("VizieR at %s: %d %s rows within %.4f deg of (%.4f, %+.4f)", host, len(table), spec.vizier_id,
             key.radius, key.ra, key.dec)
    if not complete:
        log.warning("VizieR at %s sent %d %s rows, the row limit: the table may be cut; not cached",
                    host, len(table), spec.vizier_id)
    elif cache:
        _write_cached(directory, key.filename(spec), table)
    return cone(table, spec, ra, dec, radius)
