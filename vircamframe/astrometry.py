"""The astrometric calibration of a set of pawprints: SExtractor, a Gaia reference, SCAMP, gates.

:func:`solve_astrometry` runs the steps in a work folder and returns, per pawprint, the SCAMP
header of each detector and the figures the quality gates read; :func:`check_gates` turns a
bad solution into a one-line error. The recipe ``vircam_astrometry`` writes the products.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from .errors import QualityGateError
from .fitsio import open_fits
from .keywords import frame_info
from .refcat import GAIA_DR3, mean_epoch, prepare_gaia, write_scamp_reference
from .scamp import read_head, read_scamp_xml, run_scamp
from .sextractor import run_sextractor
from .wcs import footprint

__all__ = ["FieldSolution", "check_gates", "solve_astrometry"]

log = logging.getLogger(__name__)
_MARGIN = 2.0 / 60.0  # deg around the footprint: pointing errors and stars on the edges


@dataclass
class FieldSolution:
    """SCAMP's solution for one pawprint."""

    name: str
    headers: list[fits.Header]  # one per detector, SCAMP's WCS and statistics
    matches: int  # reference stars matched (SCAMP NDeg_Reference)
    rms: tuple[float, float]  # external rms vs the reference, high S/N, per axis [arcsec]
    offset: tuple[float, float]  # mean offset vs the reference [arcsec]


def _pair(value) -> tuple[float, float]:
    values = np.atleast_1d(np.asarray(value, dtype=float))
    return (float(values[0]), float(values[-1]))


def solve_astrometry(
    images: Sequence[Path],
    weights: Sequence[Path | None],
    query: Callable[..., object],
    workdir: Path,
    *,
    mode: str = "loose",
    ruwe_max: float = 1.5,
    detect_thresh: float = 3.0,
    log: logging.Logger = log,
) -> list[FieldSolution]:
    """Solve ``images`` (SKYSUB_SCI MEFs) together against Gaia.

    Parameters
    ----------
    images, weights : sequence of path
        The pawprints and their weight maps (None: unweighted).
    query : callable
        A reference-catalogue provider for the astrometric role (``query(ra, dec, radius,
        role=..., epoch=...)``), with its options bound.
    workdir : path
        Folder for catalogues, the reference and SCAMP's files.
    mode : {"loose", "fix_focalplane"}
    ruwe_max : float
        Gaia stars with a RUWE at least this are left out.
    detect_thresh : float
        SExtractor detection threshold [sigma].
    """
    workdir.mkdir(parents=True, exist_ok=True)
    chips, mjds = [], []
    for image in images:
        mjds.append(frame_info(image).mjd)
        with open_fits(image, check=False) as hdul:
            chips += [(hdu.header, hdu.data.shape) for hdu in hdul[1:] if hdu.data is not None]
    ra, dec, radius = footprint(chips)
    epoch = mean_epoch(mjds)
    gaia = prepare_gaia(query(ra, dec, radius + _MARGIN, role=GAIA_DR3.role, epoch=epoch), epoch, ruwe_max)
    log.info("Gaia reference: %d stars within %.3f deg of (%.5f, %.5f) at epoch %.4f",
             len(gaia), radius + _MARGIN, ra, dec, epoch)
    reference = write_scamp_reference(workdir / "gaia_reference.ldac", gaia, epoch)
    catalogs = [
        run_sextractor(image, workdir / f"{Path(image).name.removesuffix('.fits')}.ldac", workdir,
                       weight=weight, options={"DETECT_THRESH": detect_thresh}, log=log)
        for image, weight in zip(images, weights, strict=True)
    ]
    heads = run_scamp(catalogs, reference, workdir / "scamp", mode=mode, log=log)
    fields = read_scamp_xml(workdir / "scamp" / "scamp.xml")
    return [
        FieldSolution(Path(image).name, read_head(head), int(fields["NDeg_Reference"][i]),
                      _pair(fields["AstromSigma_Reference_HighSN"][i]),
                      _pair(fields["AstromOffset_Reference"][i]))
        for i, (image, head) in enumerate(zip(images, heads, strict=True))
    ]


def check_gates(solutions: Sequence[FieldSolution], min_matches: int, max_rms: float, recipe: str) -> None:
    """Raise a one-line :class:`QualityGateError` for the first pawprint that fails a gate.

    Parameters
    ----------
    min_matches : int
        Fewest reference stars a pawprint must match.
    max_rms : float
        Largest external rms per axis vs the reference [arcsec].
    """
    for solution in solutions:
        if solution.matches < min_matches:
            raise QualityGateError(
                f"{recipe}: SCAMP matched {solution.matches} Gaia stars in {solution.name} (need at "
                f"least {min_matches}): wrong field, wrong reference catalogue or a bad header WCS?"
            )
        if max(solution.rms) > max_rms:
            raise QualityGateError(
                f"{recipe}: astrometric rms vs Gaia of {solution.name} is {max(solution.rms):.3f} "
                f"arcsec (at most {max_rms:g} allowed)"
            )
