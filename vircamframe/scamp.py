"""SCAMP against a Gaia reference in ``ASTREF_CATALOG FILE`` mode (DESIGN.md section 7).

SCAMP offline needs a FITS-LDAC reference (its default, 2MASS from the network, times out, and
``NONE`` crashes), written by :func:`vircamframe.refcat.gaia.write_scamp_reference` with
positions already at the observation epoch. One run solves all the pawprints of a field
together. The modes (:data:`SCAMP_MODES`) differ in how SCAMP matches a pawprint to the
reference before it solves, and in how much of the distortion each pawprint may have its own:

- ``exposure``: each pawprint is matched as a whole, its 16 detectors where their headers put
  them (``MOSAIC_TYPE UNCHANGED``: the focal-plane model of the basic calibration, right to
  well under an arcsec; only the pointing is off by a few arcsec); then every detector of
  every pawprint gets its own degree-3 distortion (``STABILITY_TYPE EXPOSURE``, 20 terms).
- ``instrument``: matched the same way; one degree-3 distortion per detector for all the
  pawprints, and a linear transformation of each pawprint (``STABILITY_TYPE INSTRUMENT``).
  For sparse data, where a detector of one pawprint holds fewer stars than the 20 terms of its
  own distortion: ``exposure`` then fits the noise and lands hundreds of mas off between the
  stars (the ``tiny`` preset: 0.29"/0.33" rms against the truth, against 0.05" here), while on
  denser data it leaves more (``small``: 34/28 mas, against 19/20 mas with ``exposure``).
- ``loose`` (VISIONS' ``MOSAIC_TYPE LOOSE``, ``STABILITY_TYPE EXPOSURE``): each detector is
  pattern-matched on its own. Fine with the thousands of stars of a full VIRCAM detector; with
  tens (sparse fields, the simulator's ``small`` and ``tiny`` presets) a detector is often
  matched to the wrong patch of sky, tens of arcsec to a degree away, and SCAMP's solution and
  statistics carry on without it (on ``small``, 107 of 288 detector solutions were wrong).
- ``fix_focalplane``: one detector layout for all pawprints (slow: many minutes on ``small``).

SCAMP's automatic matching resolution for a whole-pawprint match takes the smaller of the
reference's and the detections' positional cross-sections; with Gaia's sub-mas errors that is
a tiny fraction of a pixel, and the match takes minutes per pawprint. ``match_resol``
(:func:`run_scamp`) sets it; :func:`vircamframe.astrometry.solve_astrometry` gives two pixels.
SCAMP writes a ``.head`` file next to each catalogue (one header block per detector, with a
non-ASCII character in its comments) and an XML summary, read by :func:`read_head` and
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

# See the module's documentation; measured with benchmarks/astrometry_accuracy.py.
SCAMP_MODES: dict[str, dict[str, object]] = {
    "exposure": {"MOSAIC_TYPE": "UNCHANGED", "DISTORT_DEGREES": 3, "STABILITY_TYPE": "EXPOSURE"},
    "instrument": {"MOSAIC_TYPE": "UNCHANGED", "DISTORT_DEGREES": 3, "STABILITY_TYPE": "INSTRUMENT"},
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
    match_resol: float | None = None,
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
    mode : {"exposure", "instrument", "loose", "fix_focalplane"}
        See the module's documentation.
    options : mapping, optional
        More SCAMP keys, overriding these.
    timeout : float
        Seconds before SCAMP is stopped: a match that cannot converge can search for many
        minutes (seen with ``fix_focalplane`` and ``DISTORT_DEGREES 1`` on tiny frames).
    match_resol : float, optional
        Pattern-matching resolution ``MATCH_RESOL`` [arcsec]; SCAMP's own choice when None.

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
    if match_resol is not None:
        config["MATCH_RESOL"] = float(match_resol)
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
    """The ``Fields`` table of SCAMP's XML summary: one row per catalogue, as lists by column.

    The columns are per pawprint (SCAMP reports nothing per detector): among them
    ``NDeg_Reference`` (reference stars matched), ``AstromSigma_Reference[_HighSN]`` and
    ``AstromOffset_Reference`` (rms and mean offset vs the reference per axis [arcsec]),
    ``XY_Contrast`` and ``AS_Contrast`` (the pattern match's position and angle/scale
    contrast; in ``LOOSE`` mode the mean over the detectors), ``DX``, ``DY``, ``DPixelScale``
    and ``DPosAngle`` (the match's corrections to the header).
    """
    votable = parse(str(path), verify="ignore")
    try:
        data = votable.get_table_by_id("Fields").to_table()
    except (KeyError, IndexError):
        data = None
    if data is not None:
        return {name: list(data[name]) for name in data.colnames}
    raise ExternalToolError(f"{path}: no Fields table in the SCAMP XML")
