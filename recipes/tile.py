"""vircam_tile: every resampled pawprint of a field co-added into the tile (SWarp)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

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

TILE_EXTNAME = "TILE"


class Tile(Recipe):
    name = "vircam_tile"
    version = "0.1.1"
    synopsis = "The co-added tile and its confidence map from all resampled pawprints (SWarp)"
    description = (
        "All resampled pawprints of a field (six offsets times their jitters) are co-added on\n"
        "the whole tile grid with SWarp (combine_type; 'clipped': a weighted mean after\n"
        "rejecting pixels more than clip_sigma from the median, which takes out particle hits,\n"
        "satellite trails and what the pawprints' own masks missed), with nothing resampled\n"
        "again. TILED_IMAGE holds the tile in one image extension, TILE (ADU per DIT on the\n"
        "pawprints' zero point, PHOTZP; pixels nothing covers are NaN), with GAIN the effective\n"
        "gain SWarp computes for the co-add; TILED_CONFIDENCE_MAP the combined weight in percent\n"
        "of its median over the covered pixels. QC NPAWPRINT (pawprints combined), COVERAGE\n"
        "(fraction of the grid with data)."
    )
    inputs = (
        Input("RESAMPLED_SCI", "RAW", min=1, help="resampled pawprints of one field"),
        Input("RESAMPLED_WEIGHT", "CALIB", min=1, help="their weights"),
    )
    products = (
        Output("TILED_IMAGE", "co-added tile"),
        Output("TILED_CONFIDENCE_MAP", "confidence map of the tile"),
    )
    group_by = ("filter", "night")
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
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".tile.", dir=self.output_dir) as work:
            result = coadd([f.path for f in images], [w.path for w in weights], grid,
                           [p for _, ps in layouts for p in ps], Path(work), crop=False,
                           combine_type=params.combine_type, clip_sigma=params.clip_sigma,
                           threads=self.threads, mem_max=params.mem_max or auto_mem_max(), log=self.log)
        coverage = float(np.count_nonzero(result.weight > 0)) / result.weight.size
        extra = {"PHOTZP": (primary.get("PHOTZP", 25.0), "[mag] zero point (ADU per DIT)"),
                 "ESO QC NPAWPRINT": (len(images), "pawprints combined"),
                 "ESO QC COVERAGE": (coverage, "fraction of the tile grid with data"),
                 **zero_point_error_cards([f.path for f in images])}
        setup = setup_label(**{"": primary.get("ESO INS FILT1 NAME", "nofilter")})
        mjd = float(primary.get("MJD-OBS", 0.0))
        header = coadd_cards(result, grid)
        saturate = saturation_level([f.path for f in images])
        if saturate is not None:
            header["SATURATE"] = (saturate, "[ADU] lowest saturation level of the inputs")
        provenance = [f.name for f in images]
        with self.product("TILED_IMAGE", master_name("TILED_IMAGE", setup, mjd), images, extra=extra) as out:
            out.add_image(TILE_EXTNAME, result.data, header, provenance=provenance)
        del result.data
        with self.product("TILED_CONFIDENCE_MAP", master_name("TILED_CONFIDENCE_MAP", setup, mjd), images,
                          extra=extra) as out:
            out.add_image(TILE_EXTNAME, confidence_map(result.weight), header, provenance=provenance)
