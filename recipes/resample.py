"""vircam_resample: calibrated pawprints resampled onto the common tile grid with SWarp."""

from __future__ import annotations

import tempfile
from pathlib import Path

from vircamframe.association import by_parent
from vircamframe.coadd import zero_point_error_cards
from vircamframe.errors import RecipeInputError
from vircamframe.fitsio import image_hdus, open_fits
from vircamframe.naming import per_frame_name
from vircamframe.parameters import Parameter
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.swarp import RESAMPLING_KERNELS, auto_mem_max, resample
from vircamframe.tags import SKY_TARGETS
from vircamframe.tiling import detectors_on_grid, read_grid, resampled_detector, tile_grid_of


class Resample(Recipe):
    name = "vircam_resample"
    version = "0.1.3"
    synopsis = "Pawprints resampled onto the tile grid (SWarp), with their weights"
    description = (
        "All pawprints given (one field, one filter) are put on one grid: a zenithal\n"
        "equal-area (ZEA) projection about the centre of their footprint, turned to the\n"
        "smallest rectangle holding every detector plus margin [arcsec], with pixels of\n"
        "pixel_scale arcsec (0: 1/3 arcsec for VIRCAM's 0.339-arcsec pixels, the VISIONS and\n"
        "CASU tile pixel; the simulator's coarser presets keep that ratio). A TILE_HEADER\n"
        "(any FITS file whose header has a celestial WCS and NAXIS1/2) replaces it: a survey\n"
        "then puts every tile on its own predefined grid. SWarp resamples each detector with\n"
        "resampling_kernel, using the weight map, without subtracting any background, with\n"
        "the flux scaled by the pixel-area ratio so every source keeps its total flux (the\n"
        "pawprint's zero point, PHOTZP, holds on the grid). SWarp rescales each weight map to\n"
        "the measured background noise, which makes the weights inverse variances in the\n"
        "pawprint's own units (interpolated bad pixels carry a reduced, non-zero weight from\n"
        "vircam_science_final: a zero would blank every pixel whose kernel touches it).\n"
        "RESAMPLED_SCI and RESAMPLED_WEIGHT keep one extension per detector, cropped to its\n"
        "footprint on the grid: the tile's WCS with CRPIX shifted,\n"
        "and ESO DRS TILE XMIN/YMIN (where its first pixel lies in the tile) and\n"
        "ESO DRS TILE NAXIS1/2 (the tile's size), so the stacks, the tile and the statistics\n"
        "maps all read the grid from them; a detector outside a given grid is left out (a\n"
        "pawprint wholly outside it is an error). QC TILEX/TILEY in the primary header: the tile's\n"
        "size in pixels. mem_max [MB] bounds SWarp's memory (0: an eighth of the machine's)."
    )
    inputs = (
        Input("PHOTCAL_SCI", "RAW", min=1, help="photometrically calibrated pawprints of one field"),
        Input("WEIGHT_SCI", "CALIB", min=1, help="their weight maps"),
        Input("TILE_HEADER", "CALIB", min=0, max=1, help="a predefined tile grid (WCS and size)"),
    )
    products = (
        Output("RESAMPLED_SCI", "pawprint resampled onto the tile grid", per_frame=True,
               for_tags=SKY_TARGETS),
        Output("RESAMPLED_WEIGHT", "its weight on the tile grid", per_frame=True, for_tags=SKY_TARGETS),
    )
    group_by = ("filter", "night")
    parameters = (
        Parameter("resampling_kernel", str, "lanczos3", "SWarp resampling kernel",
                  choices=RESAMPLING_KERNELS),
        Parameter("pixel_scale", float, 0.0, "Tile pixel [arcsec]; 0: 1/3 arcsec per native VIRCAM pixel",
                  range=(0.0, 60.0)),
        Parameter("margin", float, 10.0, "Border around the footprint [arcsec]", range=(0.0, 3600.0)),
        Parameter("rotate", bool, True, "Turn the grid to the smallest rectangle (else north up)"),
        Parameter("mem_max", int, 0, "SWarp memory [MB]; 0: an eighth of the machine's",
                  range=(0, 1_000_000)),
    )

    def process(self, frames, params) -> None:
        images = list(frames.raw())
        weights = by_parent(images, list(frames.calib()), "WEIGHT_SCI", self.name, required=True)
        given = self.frames_of("TILE_HEADER")
        if given:
            grid = read_grid(given[0].path)
        else:
            grid = tile_grid_of([f.path for f in images], params.pixel_scale, params.margin, params.rotate)
        self.log.info("tile grid %d x %d pixels of %.4f arcsec, centre %.6f %+.6f", grid["NAXIS1"],
                      grid["NAXIS2"], grid.pixel_scale, grid["CRVAL1"], grid["CRVAL2"])
        extra = {"ESO QC TILEX": (int(grid["NAXIS1"]), "[pixel] tile width"),
                 "ESO QC TILEY": (int(grid["NAXIS2"]), "[pixel] tile height")}
        on_grid = [detectors_on_grid(frame.path, grid) for frame in images]
        for frame, detectors in zip(images, on_grid, strict=True):  # before anything is written
            if not any(detectors):
                raise RecipeInputError(f"{self.name}: {frame.name} lies outside the tile grid"
                                       + (f" of TILE_HEADER {given[0].name}" if given else ""))
        mem_max = params.mem_max or auto_mem_max()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for frame, weight, detectors in zip(images, weights, on_grid, strict=True):
            with tempfile.TemporaryDirectory(prefix=".resample.", dir=self.output_dir) as work:
                pieces = resample(frame.path, weight.path, grid, Path(work), params.resampling_kernel,
                                  threads=self.threads, mem_max=mem_max, log=self.log, on_grid=detectors)
                calibs = [weight, *given]
                primary = {**extra, **zero_point_error_cards([frame.path])}
                with open_fits(frame.path, check=False) as hdul:
                    headers = [(h.name, h.header.copy()) for h in image_hdus(hdul)]
                outside = [name for (name, _), piece in zip(headers, pieces, strict=True) if piece is None]
                if outside:
                    self.log.info("%s: %d detector(s) outside the tile grid, left out: %s", frame.name,
                                  len(outside), ", ".join(outside))
                for category, index in (("RESAMPLED_SCI", 0), ("RESAMPLED_WEIGHT", 1)):
                    with self.product(category, per_frame_name(category, frame.name), [frame], calibs,
                                      extra=primary) as out:
                        for (extname, header), piece in zip(headers, pieces, strict=True):
                            if piece is None:
                                continue
                            data, cards = resampled_detector(piece[index], header, grid)
                            out.add_image(extname, data, cards, provenance=[frame.name])
