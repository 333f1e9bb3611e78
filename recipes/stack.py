"""vircam_stack: the jitters of one pawprint offset co-added, detector by detector (SWarp)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

from vircamframe.association import by_parent
from vircamframe.coadd import (
    coadd,
    coadd_cards,
    confidence_map,
    read_pieces,
    same_grid,
    saturation_level,
    zero_point_error_cards,
)
from vircamframe.fitsio import read_primary_header
from vircamframe.naming import master_name, setup_label
from vircamframe.parameters import Parameter
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.swarp import COMBINE_TYPES, auto_mem_max


class Stack(Recipe):
    name = "vircam_stack"
    version = "0.1.1"
    synopsis = "Jittered pawprints of one offset co-added per detector on the tile grid (SWarp)"
    description = (
        "The resampled pawprints of one offset position (OFFSET_I), all jitters, are co-added\n"
        "detector by detector with SWarp (combine_type; 'clipped': a weighted mean after\n"
        "rejecting pixels more than clip_sigma from the median), on the part of the tile grid\n"
        "each detector covers, with nothing resampled again. JITTERED_IMAGE_SCI has one\n"
        "extension per detector (ADU per DIT on the pawprints' zero point, PHOTZP; empty\n"
        "pixels NaN) with the tile grid's WCS and ESO DRS TILE XMIN/YMIN; JITTERED_CONFIDENCE_MAP\n"
        "the combined weight in percent of its median over the covered pixels. QC NJITTER:\n"
        "the pawprints combined."
    )
    inputs = (
        Input("RESAMPLED_SCI", "RAW", min=1, help="resampled pawprints of one offset"),
        Input("RESAMPLED_WEIGHT", "CALIB", min=1, help="their weights"),
    )
    products = (
        Output("JITTERED_IMAGE_SCI", "stack of the jitters of one offset, per detector"),
        Output("JITTERED_CONFIDENCE_MAP", "confidence map of the stack"),
    )
    group_by = ("filter", "night", "offset")
    parameters = (
        Parameter("combine_type", str, "clipped", "SWarp combination", choices=COMBINE_TYPES),
        Parameter("clip_sigma", float, 4.0, "Clipping threshold of 'clipped' [sigma]", range=(1.0, 100.0)),
        Parameter("mem_max", int, 0, "SWarp memory [MB]; 0: an eighth of the machine's",
                  range=(0, 1_000_000)),
    )

    def process(self, frames, params) -> None:
        images = list(frames.raw())
        weights = by_parent(images, list(frames.calib()), "RESAMPLED_WEIGHT", self.name, required=True)
        layouts = [read_pieces(f.path) for f in images]
        grid = same_grid([g for g, _ in layouts], [f.name for f in images], self.name)
        primary = read_primary_header(images[0].path)
        offset = primary.get("OFFSET_I", 1)
        extra = {"PHOTZP": (primary.get("PHOTZP", 25.0), "[mag] zero point (ADU per DIT)"),
                 "ESO QC NJITTER": (len(images), "pawprints combined"),
                 **zero_point_error_cards([f.path for f in images])}
        setup = setup_label(**{"": primary.get("ESO INS FILT1 NAME", "nofilter")}, offset=offset)
        mjd = float(primary.get("MJD-OBS", 0.0))
        options = {"combine_type": params.combine_type, "clip_sigma": params.clip_sigma,
                   "threads": self.threads, "mem_max": params.mem_max or auto_mem_max(), "log": self.log}
        extnames = [p.extname for p in layouts[0][1]]
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with (self.product("JITTERED_IMAGE_SCI", master_name("JITTERED_IMAGE_SCI", setup, mjd), images,
                           extra=extra) as sci,
              self.product("JITTERED_CONFIDENCE_MAP", master_name("JITTERED_CONFIDENCE_MAP", setup, mjd),
                           images, extra=extra) as conf):
            for extname in extnames:
                pieces = [p for _, ps in layouts for p in ps if p.extname == extname]
                with tempfile.TemporaryDirectory(prefix=".stack.", dir=self.output_dir) as work:
                    inputs = _extract(images, weights, extname, Path(work))
                    result = coadd(*inputs, grid, pieces, Path(work), crop=True, **options)
                header = coadd_cards(result, grid)
                saturate = saturation_level([f.path for f in images], extname)
                if saturate is not None:
                    header["SATURATE"] = (saturate, "[ADU] lowest saturation level of the inputs")
                coverage = float(np.count_nonzero(result.weight > 0)) / result.weight.size
                qc = {"COVERAGE": (coverage, "fraction of the stack's pixels with data")}
                sci.add_image(extname, result.data, header, qc, [f.name for f in images])
                conf.add_image(extname, confidence_map(result.weight), header, qc, [f.name for f in images])


def _extract(images, weights, extname: str, work: Path) -> tuple[list[Path], list[Path]]:
    """One detector of every pawprint (and its weight) as single-image files for SWarp."""
    paths: tuple[list[Path], list[Path]] = ([], [])
    for n, (image, weight) in enumerate(zip(images, weights, strict=True)):
        for kind, frame, out in (("sci", image, paths[0]), ("wht", weight, paths[1])):
            with fits.open(frame.path) as hdul:
                hdu = hdul[extname]
                path = work / f"{n:03d}.{kind}.fits"
                fits.PrimaryHDU(hdu.data, hdu.header).writeto(path, output_verify="silentfix")
            out.append(path)
    return paths
