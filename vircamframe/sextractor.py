"""SExtractor catalogues of pawprints, for SCAMP (and later the source catalogues).

One call runs the real ``source-extractor`` on a pawprint MEF with its weight MEF and writes a
FITS-LDAC catalogue with one ``LDAC_IMHEAD``/``LDAC_OBJECTS`` pair per detector, the layout
SCAMP reads. Configuration is written into the run folder (the Debian package's filter and
neural network are used), so a run can be repeated by hand from that folder; every option the
pipeline sets is on the command line, logged with the tool's output.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .external import find_tool, run_tool

__all__ = ["ASTROMETRY_PARAMETERS", "SEXTRACTOR", "run_sextractor"]

log = logging.getLogger(__name__)

SEXTRACTOR = ("source-extractor", "sex")
_SHARE = Path("/usr/share/source-extractor")

# What SCAMP needs (windowed centroids and their errors, fluxes, flags) and what the QC uses.
ASTROMETRY_PARAMETERS = (
    "NUMBER", "XWIN_IMAGE", "YWIN_IMAGE", "ERRAWIN_IMAGE", "ERRBWIN_IMAGE", "ERRTHETAWIN_IMAGE",
    "ALPHAWIN_J2000", "DELTAWIN_J2000", "FLUX_AUTO", "FLUXERR_AUTO", "MAG_AUTO", "MAGERR_AUTO",
    "FLUX_RADIUS", "FWHM_IMAGE", "ELONGATION", "FLAGS", "FLAGS_WEIGHT", "SNR_WIN",
)


def _share_file(name: str) -> Path:
    """A file of the Debian package's configuration folder (found next to the binary too)."""
    for folder in (_SHARE, Path(find_tool(*SEXTRACTOR)).parent.parent / "share" / "source-extractor"):
        if (folder / name).is_file():
            return folder / name
    return _SHARE / name


def run_sextractor(
    image: str | os.PathLike,
    catalog: str | os.PathLike,
    workdir: str | os.PathLike,
    weight: str | os.PathLike | None = None,
    parameters: Sequence[str] = ASTROMETRY_PARAMETERS,
    options: Mapping[str, object] | None = None,
    log: logging.Logger = log,
) -> Path:
    """Run SExtractor on ``image`` (a MEF: every image extension) into the LDAC ``catalog``.

    Parameters
    ----------
    image : path
        The pawprint (``SKYSUB_SCI``: background-subtracted, ADU per DIT; its extensions carry
        ``GAIN`` [e-/ADU] and ``SATURATE`` [ADU], which SExtractor reads through
        ``GAIN_KEY``/``SATUR_KEY``).
    catalog : path
        The FITS-LDAC catalogue to write.
    workdir : path
        Folder for the configuration and the tool's log (``source-extractor.log``).
    weight : path, optional
        The weight MEF (``WEIGHT_SCI``, inverse variance): ``WEIGHT_TYPE MAP_WEIGHT``.
    parameters : sequence of str
        Output columns.
    options : mapping, optional
        More configuration keys (``{"DETECT_THRESH": 5}``), overriding the defaults here.

    Raises
    ------
    ExternalToolError
        SExtractor missing, failing, or writing no catalogue.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "sextractor.param").write_text("\n".join(parameters) + "\n")
    config: dict[str, object] = {
        "CATALOG_TYPE": "FITS_LDAC",
        "CATALOG_NAME": Path(catalog).absolute(),
        "PARAMETERS_NAME": "sextractor.param",
        "FILTER": "Y",
        "FILTER_NAME": _share_file("gauss_2.5_5x5.conv"),
        "STARNNW_NAME": _share_file("default.nnw"),
        "DETECT_MINAREA": 5,
        "DETECT_THRESH": 3.0,
        "ANALYSIS_THRESH": 3.0,
        "DEBLEND_NTHRESH": 32,
        "DEBLEND_MINCONT": 0.005,
        "CLEAN": "Y",
        "GAIN_KEY": "GAIN",
        "SATUR_KEY": "SATURATE",
        "PIXEL_SCALE": 0,
        "SEEING_FWHM": 1.0,
        "BACK_TYPE": "AUTO",
        "BACK_SIZE": 128,  # the frames are background-subtracted; this only takes residuals
        "BACK_FILTERSIZE": 3,
        "PHOT_APERTURES": 10,
        "VERBOSE_TYPE": "NORMAL",
        "WRITE_XML": "N",
        "NTHREADS": 1,
    }
    if weight is not None:
        config.update(WEIGHT_TYPE="MAP_WEIGHT", WEIGHT_IMAGE=Path(weight).absolute(), WEIGHT_GAIN="N")
    config.update(options or {})
    args: list[str | os.PathLike] = [Path(image).absolute(), "-c", "/dev/null"]
    for key, value in config.items():
        args += [f"-{key}", str(value)]
    run_tool(SEXTRACTOR, args, workdir, expect=[Path(catalog).absolute()], log=log)
    return Path(catalog)
