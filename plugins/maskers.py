"""Built-in source maskers (hook: ``vircam_register_source_maskers``).

``builtin``
    :func:`vircamframe.numerics.masking.threshold_mask`: mesh background, threshold, area cut,
    disk dilation.
``noisechisel``
    GNU Astro NoiseChisel (Akhlaghi & Ichikawa 2015), run through
    :func:`vircamframe.external.run_tool`: noise-based detection that follows sources far into
    their faint outskirts, then a disk dilation of ``dilate`` pixels.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from vircamframe.hookspecs import hookimpl
from vircamframe.numerics.masking import threshold_mask

__all__ = ["detection_mask", "noisechisel_mask", "noisechisel_options", "vircam_register_source_maskers"]

log = logging.getLogger(__name__)

NOISECHISEL = "astnoisechisel"

# NoiseChisel 0.19 options for VIRCAM detectors, beyond the size-dependent ones of
# noisechisel_options(). NoiseChisel's defaults suit well-sampled images; a VIRCAM star has a
# FWHM of only 2-3 pixels (0.34"/pixel), which they erode away.
NOISECHISEL_FIXED = (
    "--erode=1",  # default 2: two erosions delete compact, faint point sources
    "--noerodequant=0.8",  # default 0.99: the brightest 20 % of pixels (star cores) never erode
    "--snminarea=3",  # default 10: pseudo-detections as small as a VIRCAM star count for the S/N
    "--qthresh=0.35",  # default 0.3: a bit higher, as the gentler erosion lets more noise through
    "--snquant=0.9",  # default 0.99: a missed source biases the sky, a false one costs pixels
    "--numthreads=1",  # the pipeline runs detectors and frames in parallel itself
    "--rawoutput",  # only the detection map (and tile grid): no copy of the input written
)


def detection_mask(detections: np.ndarray, dilate: int) -> np.ndarray:
    """A source mask from a detection map: non-zero pixels, grown by a disk of ``dilate`` px.

    Parameters
    ----------
    detections : ndarray
        Detection map (NoiseChisel's ``DETECTIONS``: 1 on detected pixels, 0 elsewhere; a
        labelled map works too).
    dilate : int
        Growth radius, pixels (0: none).

    Returns
    -------
    ndarray of bool
        ``True`` on sources.
    """
    from scipy import ndimage  # lazy: registering the plugin must not cost every recipe scipy

    mask = np.asarray(detections) > 0
    if dilate > 0 and mask.any():
        y, x = np.mgrid[-dilate : dilate + 1, -dilate : dilate + 1]
        mask = ndimage.binary_dilation(mask, structure=x * x + y * y <= dilate * dilate)
    return mask


def noisechisel_options(shape: tuple[int, int], mesh_size: int) -> list[str]:
    """NoiseChisel command-line options for a detector of ``shape`` (pixels).

    ``--tilesize`` is half the background mesh (``mesh_size`` 64 gives 32, near NoiseChisel's
    own 30), but at most 1/12 of the detector, so that a small (simulated) detector still has
    enough tiles to interpolate the thresholds; ``--interpnumngb`` (default 15) and
    ``--minnumfalse`` (default 100) shrink with the number of tiles and pixels for the same
    reason; a full 2048 x 2048 VIRCAM detector gets the defaults. :data:`NOISECHISEL_FIXED`
    holds the options that do not depend on the size.
    """
    ny, nx = shape
    tile = int(max(8, min(mesh_size // 2, min(ny, nx) // 12)))
    tiles = (ny // tile) * (nx // tile)
    interp = int(np.clip(tiles // 25, 4, 15))
    minfalse = int(np.clip(ny * nx // 2000, 30, 100))
    return [f"--tilesize={tile},{tile}", f"--interpnumngb={interp}", f"--minnumfalse={minfalse}",
            *NOISECHISEL_FIXED]


def noisechisel_mask(
    image: np.ndarray,
    variance: np.ndarray | None = None,
    *,
    threshold: float = 3.0,
    min_area: int = 5,
    dilate: int = 0,
    mesh_size: int = 64,
) -> np.ndarray:
    """Flag sources with GNU Astro NoiseChisel, grown by ``dilate`` pixels.

    The detector is written as the primary HDU of a temporary FITS file (NaN pixels are blank
    for NoiseChisel, which ignores them), ``astnoisechisel -h0`` runs on it with the options
    of :func:`noisechisel_options`, and its ``DETECTIONS`` map becomes the mask
    (:func:`detection_mask`). A detector with no finite pixel gives an empty mask without
    running the tool.

    NoiseChisel defines sources by quantile thresholds and the S/N of false detections
    measured on the image itself, not by a sigma cut, and grows its detections into their
    outskirts itself: ``threshold``, ``min_area`` and ``variance`` are accepted (the masker
    contract) but not used, and ``dilate = 0`` is its natural setting.

    Parameters
    ----------
    image : ndarray
        One detector, background dominated; NaN for missing pixels.
    variance : ndarray, optional
        Ignored (NoiseChisel measures the noise).
    threshold, min_area : float, int
        Ignored (see above).
    dilate : int
        Growth radius after NoiseChisel's own growth, pixels.
    mesh_size : int
        Background mesh size, pixels; sets NoiseChisel's tile size.

    Returns
    -------
    ndarray of bool
        ``True`` on sources.

    Raises
    ------
    ExternalToolError
        When ``astnoisechisel`` (Debian package ``gnuastro``) is missing or fails.
    """
    from astropy.io import fits

    from vircamframe.errors import ExternalToolError
    from vircamframe.external import run_tool

    data = np.asarray(image, dtype=np.float32)
    if not np.isfinite(data).any():
        return np.zeros(data.shape, dtype=bool)
    with tempfile.TemporaryDirectory(prefix="vircam_noisechisel_") as folder:
        fits.PrimaryHDU(data).writeto(Path(folder) / "detector.fits")
        run_tool(NOISECHISEL, ["detector.fits", "-h0", "--output=detections.fits",
                               *noisechisel_options(data.shape, mesh_size)],
                 folder, expect=["detections.fits"], log=log)
        with fits.open(Path(folder) / "detections.fits") as hdul:
            try:
                detections = np.asarray(hdul["DETECTIONS"].data)
            except KeyError:
                detections = None
    if detections is None or detections.shape != data.shape:
        got = "no DETECTIONS extension" if detections is None else f"a {detections.shape} map"
        raise ExternalToolError(f"{NOISECHISEL} wrote {got} for a {data.shape} image")
    return detection_mask(detections, dilate)


@hookimpl
def vircam_register_source_maskers(registry) -> None:
    """Register ``builtin`` (threshold) and ``noisechisel`` (GNU Astro)."""
    registry.add(
        "builtin", threshold_mask,
        "sep mesh background, N-sigma threshold, minimum area, disk dilation",
    )
    registry.add(
        "noisechisel", noisechisel_mask,
        "GNU Astro NoiseChisel noise-based detection (astnoisechisel), disk dilation",
    )
