"""SCAMP against a Gaia reference in ``ASTREF_CATALOG FILE`` mode (DESIGN.md section 7).

SCAMP offline needs a FITS-LDAC reference (its default, 2MASS from the network, times out, and
``NONE`` crashes), written by :func:`vircamframe.refcat.gaia.write_scamp_reference` with
positions already at the observation epoch. One run solves all the pawprints of a field
together: ``loose`` lets every detector of every pawprint move (VISIONS' ``MOSAIC_TYPE
LOOSE``), ``fix_focalplane`` keeps the detector layout common to all pawprints. SCAMP writes a
``.head`` file next to each catalogue (one header block per detector, with a non-ASCII
character in its comments) and an XML summary, read by :func:`read_head` and
:func:`read_scamp_xml`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from astropy.io import fits
from astropy.io.votable import parse

from .errors import ExternalToolError
from .external import run_tool

__all__ = ["SCAMP_MODES", "read_head", "read_scamp_xml", "run_scamp"]

log = logging.getLogger(__name__)

# STABILITY_TYPE EXPOSURE: each pawprint's distortion is its own. Shared per instrument
# (INSTRUMENT) it degraded the small simulated tile from 26 to 206 mas rms against the truth
# (benchmarks/astrometry_accuracy.py).
SCAMP_MODES: dict[str, dict[str, object]] = {
    "loose": {"MOSAIC_TYPE": "LOOSE", "DISTORT_DEGREES": 3, "STABILITY_TYPE": "EXPOSURE"},
    "fix_focalplane": {"MOSAIC_TYPE": "FIX_FOCALPLANE", "DISTORT_DEGREES": 3, "STABILITY_TYPE": "INSTRUMENT"},
}


def run_scamp(
    catalogs: Sequence[str | os.PathLike],
    reference: str | os.PathLike,
    workdir: str | os.PathLike,
    mode: str = "loose",
    options: Mapping[str, object] | None = None,
    log: logging.Logger = log,
    timeout: float = 900.0,
) -> list[Path]:
    """Solve the astrometry of ``catalogs`` (SExtractor FITS-LDAC) against ``reference``.

    Parameters
    ----------
    catalogs : sequence of path
        One LDAC catalogue per pawprint (16 detectors each).
    reference : path
        The LDAC reference (``X_WORLD``, ``Y_WORLD``, ``ERRA_WORLD``, ``ERRB_WORLD``,
        ``ERRTHETA_WORLD`` [deg], ``MAG``, ``MAGERR``, ``OBSDATE`` [yr]).
    workdir : path
        Folder of the run: configuration, ``scamp.xml``, check plots, ``scamp.log``.
    mode : {"loose", "fix_focalplane"}
    options : mapping, optional
        More SCAMP keys, overriding these.
    timeout : float
        Seconds before SCAMP is stopped: a match that cannot converge can search for many
        minutes (seen with ``fix_focalplane`` and ``DISTORT_DEGREES 1`` on tiny frames).

    Returns
    -------
    list of Path
        The ``.head`` file of each catalogue, in order.

    Raises
    ------
    ExternalToolError
        SCAMP missing or failing, or a ``.head`` not written.
    """
    if mode not in SCAMP_MODES:
        raise ValueError(f"scamp mode must be one of {', '.join(SCAMP_MODES)}, not {mode!r}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    catalogs = [Path(c).absolute() for c in catalogs]
    heads = [c.with_suffix(".head") for c in catalogs]
    config: dict[str, object] = {
        "ASTREF_CATALOG": "FILE",
        "ASTREFCAT_NAME": Path(reference).absolute(),
        "ASTREFCENT_KEYS": "X_WORLD,Y_WORLD",
        "ASTREFERR_KEYS": "ERRA_WORLD,ERRB_WORLD,ERRTHETA_WORLD",
        "ASTREFMAG_KEY": "MAG",
        "ASTREFMAGERR_KEY": "MAGERR",
        "ASTREFOBSDATE_KEY": "OBSDATE",
        "MATCH": "Y",
        "POSITION_MAXERR": 0.5,  # arcmin: VIRCAM pointing errors are a few arcsec
        "PIXSCALE_MAXERR": 1.05,
        "POSANGLE_MAXERR": 1.0,
        "CROSSID_RADIUS": 1.5,  # arcsec
        "SOLVE_PHOTOM": "N",
        "SN_THRESHOLDS": "10.0,100.0",
        "CHECKPLOT_DEV": "NULL",
        "WRITE_XML": "Y",
        "XML_NAME": "scamp.xml",
        "HEADER_TYPE": "NORMAL",
        "HEADER_SUFFIX": ".head",
        "VERBOSE_TYPE": "NORMAL",
        "NTHREADS": 1,
        **SCAMP_MODES[mode],
    }
    config.update(options or {})
    args: list[str | os.PathLike] = [*catalogs, "-c", "/dev/null"]
    for key, value in config.items():
        args += [f"-{key}", str(value)]
    run_tool("scamp", args, workdir, expect=[*heads, "scamp.xml"], log=log, timeout=timeout)
    return heads


def read_head(path: str | os.PathLike) -> list[fits.Header]:
    """The header blocks of a SCAMP ``.head`` file, one per detector.

    SCAMP writes a non-ASCII character (a degree sign) in a comment; it is replaced, so the
    cards parse as FITS.
    """
    text = Path(path).read_bytes().decode("latin-1").encode("ascii", "replace").decode("ascii")
    headers, cards = [], []
    for line in text.splitlines():
        if line[:8].rstrip() == "END":  # one block per detector
            headers.append(fits.Header.fromstring("\n".join(cards), sep="\n"))
            cards = []
        elif line.strip():
            cards.append(line)
    if not headers:
        raise ExternalToolError(f"{path}: SCAMP wrote no header block")
    return headers


def read_scamp_xml(path: str | os.PathLike) -> dict[str, list]:
    """The ``Fields`` table of SCAMP's XML summary: one row per catalogue, as lists by column."""
    votable = parse(str(path), verify="ignore")
    try:
        data = votable.get_table_by_id("Fields").to_table()
    except (KeyError, IndexError):
        data = None
    if data is not None:
        return {name: list(data[name]) for name in data.colnames}
    raise ExternalToolError(f"{path}: no Fields table in the SCAMP XML")
