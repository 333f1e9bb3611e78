"""SWarp: pawprints resampled onto the tile grid, and resampled images combined (DESIGN.md 7).

Two steps, as VISIONS and CASU's VISTA tiles do them:

- :func:`resample` puts every detector of one pawprint on the tile grid (``RESAMPLE Y``,
  ``COMBINE N``): SWarp writes one image and one weight per detector, each cropped to the
  detector's own footprint on the grid (``COMIN1/2`` give its place in the tile).
- :func:`combine` co-adds such pieces, already on the grid, into a stack or the tile
  (``RESAMPLE N``): nothing is interpolated twice.

Two traps are set once here: SWarp subtracts a background unless told not to
(``SUBTRACT_BACK N``: the pawprints are background-subtracted already), and it scales fluxes by
the ratio of pixel areas (``FSCALASTRO_TYPE VARIABLE``), which keeps each source's total flux,
and so the zero point of the pawprints, on the tile. The output grid is given as a header file
next to the output image (``<image>.head``), which is how SWarp takes a fixed grid.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from astropy.io import fits

from .external import run_tool
from .tiling import detectors_on_grid

__all__ = ["COMBINE_TYPES", "RESAMPLING_KERNELS", "SWARP", "auto_mem_max", "combine", "resample",
           "write_grid_header"]

log = logging.getLogger(__name__)

SWARP = ("SWarp", "swarp")
RESAMPLING_KERNELS = ("nearest", "bilinear", "lanczos2", "lanczos3", "lanczos4")
COMBINE_TYPES = ("clipped", "weighted", "median", "average", "min", "max", "sum")


def write_grid_header(grid: Mapping[str, object], path: str | os.PathLike) -> Path:
    """Write the tile grid (WCS cards and ``NAXIS1/2``) as SWarp's ASCII ``.head`` file."""
    header = fits.Header()
    for key, value in grid.items():
        header[key] = value
    path = Path(path)
    path.write_text(header.tostring(sep="\n", endcard=True, padding=False) + "\n", encoding="ascii")
    return path


def auto_mem_max() -> int:
    """SWarp's memory by default [MB]: an eighth of the machine's, from 256 to 8192."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        total = 4096
    return int(min(8192, max(256, total // 8)))


def _common(threads: int, mem_max: int, rescale_weights: bool) -> dict[str, object]:
    """Options of every SWarp run: no background subtraction, memory and threads."""
    return {
        "SUBTRACT_BACK": "N",
        "FSCALASTRO_TYPE": "VARIABLE",
        "FSCALE_KEYWORD": "NOFSCALE",  # fluxes are on the target zero point already
        "WEIGHT_TYPE": "MAP_WEIGHT",
        "RESCALE_WEIGHTS": "Y" if rescale_weights else "N",
        "COPY_KEYWORDS": "OBJECT",
        "MEM_MAX": mem_max,
        "VMEM_MAX": 4 * mem_max,
        "COMBINE_BUFSIZE": max(64, mem_max // 4),
        "NTHREADS": threads,
        "VERBOSE_TYPE": "NORMAL",
        "WRITE_XML": "N",
    }


def _run(images: Sequence[Path], weights: Sequence[Path], workdir: Path, options: Mapping[str, object],
         expect: Sequence[Path], log: logging.Logger) -> None:
    args: list[str | os.PathLike] = [",".join(str(Path(i).absolute()) for i in images), "-c", "/dev/null"]
    config = {**options, "WEIGHT_IMAGE": ",".join(str(Path(w).absolute()) for w in weights)}
    for key, value in config.items():
        args += [f"-{key}", str(value)]
    run_tool(SWARP, args, workdir, expect=expect, log=log)


def resample(
    image: str | os.PathLike,
    weight: str | os.PathLike,
    grid: Mapping[str, object],
    workdir: str | os.PathLike,
    kernel: str = "lanczos3",
    threads: int = 1,
    mem_max: int = 1024,
    log: logging.Logger = log,
    on_grid: Sequence[bool] | None = None,
) -> list[tuple[Path, Path] | None]:
    """Resample every image extension of ``image`` onto ``grid``.

    Parameters
    ----------
    image : path
        A pawprint MEF (each extension with its astrometric solution, e.g. SCAMP's TPV).
    weight : path
        Its weight MEF (relative inverse variance, extension for extension).
    grid : mapping
        The tile grid: ``NAXIS1/2`` and WCS cards (:func:`vircamframe.numerics.tilegrid.tile_grid`).
    workdir : path
        Folder for the resampled pieces, the grid header and SWarp's log.
    kernel : str
        One of :data:`RESAMPLING_KERNELS`.
    threads, mem_max : int
        SWarp's ``NTHREADS`` and ``MEM_MAX`` [MB].
    on_grid : sequence of bool, optional
        Per image extension, whether it lies on the grid, when the caller knows already
        (:func:`vircamframe.tiling.detectors_on_grid`, worked out here otherwise).

    Returns
    -------
    list of (Path, Path) or None
        Per image extension, in file order: the resampled image and its weight, cropped to
        the extension's footprint (``COMIN1/2``: 1-based position of its first pixel in the grid);
        None for a detector outside the grid (a predefined grid may hold part of a pawprint).

    Raises
    ------
    ExternalToolError
        When SWarp fails, or writes no piece for a detector that lies on the grid.
    """
    if kernel not in RESAMPLING_KERNELS:
        raise ValueError(f"resampling kernel must be one of {', '.join(RESAMPLING_KERNELS)}, not {kernel!r}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    image = Path(image)
    if on_grid is None:
        on_grid = detectors_on_grid(image, grid)
    stem = image.name[: -len(".fits")] if image.name.endswith(".fits") else image.stem
    write_grid_header(grid, workdir / "unused_coadd.head")
    pieces = [(workdir / f"{stem}.{n:04d}.resamp.fits", workdir / f"{stem}.{n:04d}.resamp.weight.fits")
              for n in range(1, len(on_grid) + 1)]
    options = {
        # weights rescaled to the measured noise: inverse variances in the pawprint's units
        **_common(threads, mem_max, rescale_weights=True),
        "IMAGEOUT_NAME": workdir / "unused_coadd.fits",
        "WEIGHTOUT_NAME": workdir / "unused_coadd.weight.fits",
        "HEADER_SUFFIX": ".head",
        "RESAMPLE": "Y",
        "COMBINE": "N",
        "RESAMPLE_DIR": workdir.absolute(),
        "RESAMPLING_TYPE": kernel.upper(),
    }
    expect = [p for pair, on in zip(pieces, on_grid, strict=True) if on for p in pair]
    _run([image], [Path(weight)], workdir, options, expect, log)
    # SWarp writes a blank one-pixel-wide strip for a detector off the grid (or nothing): dropped
    return [pair if on else None for pair, on in zip(pieces, on_grid, strict=True)]


def combine(
    images: Sequence[str | os.PathLike],
    weights: Sequence[str | os.PathLike],
    grid: Mapping[str, object],
    output: str | os.PathLike,
    workdir: str | os.PathLike,
    combine_type: str = "clipped",
    clip_sigma: float = 4.0,
    threads: int = 1,
    mem_max: int = 1024,
    log: logging.Logger = log,
) -> tuple[Path, Path]:
    """Co-add images already on ``grid`` (SWarp ``RESAMPLE N``) into ``output`` and its weight.

    Parameters
    ----------
    images, weights : sequence of path
        Resampled images (single or multi-extension) and their weights, on ``grid``'s
        projection (only ``CRPIX`` differs).
    grid : mapping
        The output grid (the tile, or a stack's part of it).
    output : path
        The co-added image; its weight is ``<output>.weight.fits`` next to it.
    combine_type : str
        One of :data:`COMBINE_TYPES`: ``clipped`` is a weighted mean after rejecting pixels
        more than ``clip_sigma`` from the median (SWarp's ``CLIP_SIGMA``, ``CLIP_AMPFRAC`` 0.3).

    Returns
    -------
    (Path, Path)
        The co-add and its weight (inverse variance, relative).
    """
    if combine_type not in COMBINE_TYPES:
        raise ValueError(f"combine type must be one of {', '.join(COMBINE_TYPES)}, not {combine_type!r}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    output = Path(output).absolute()
    weight_out = output.with_name(output.name.replace(".fits", "") + ".weight.fits")
    write_grid_header(grid, output.with_name(output.name.replace(".fits", "") + ".head"))
    options = {
        # the resampled weights are inverse variances already; resampling correlates the
        # noise, so measuring it again would undo that
        **_common(threads, mem_max, rescale_weights=False),
        "IMAGEOUT_NAME": output,
        "WEIGHTOUT_NAME": weight_out,
        "HEADER_SUFFIX": ".head",
        "RESAMPLE": "N",
        "RESAMPLE_DIR": workdir.absolute(),
        "COMBINE": "Y",
        "COMBINE_TYPE": combine_type.upper(),
        "CLIP_SIGMA": clip_sigma,
        "CLIP_AMPFRAC": 0.3,
        "BLANK_BADPIXELS": "Y",
    }
    _run([Path(i) for i in images], [Path(w) for w in weights], workdir, options, [output, weight_out], log)
    return output, weight_out
