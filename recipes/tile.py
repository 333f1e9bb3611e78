"""vircam_tile: every resampled pawprint of a field co-added into the tile (SWarp)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from vircamframe.coadd import (
    COADD_PARAMETERS,
    coadd,
    coadd_cards,
    confidence_map,
    read_coadd_inputs,
    saturate_card,
    swarp_options,
)
from vircamframe.naming import master_name, setup_label
from vircamframe.recipe import Input, Output, Recipe

TILE_EXTNAME = "TILE"


class Tile(Recipe):
    name = "vircam_tile"
    version = "0.1.2"
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
    parameters = COADD_PARAMETERS

    def process(self, frames, params) -> None:
        inputs = read_coadd_inputs(frames, self.name)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".tile.", dir=self.output_dir) as work:
            result = coadd([f.path for f in inputs.images], [w.path for w in inputs.weights], inputs.grid,
                           [p for ps in inputs.pieces for p in ps], Path(work), crop=False,
                           **swarp_options(params, self.threads, self.log))
        coverage = float(np.count_nonzero(result.weight > 0)) / result.weight.size
        extra = {**inputs.primary_cards(),
                 "ESO QC NPAWPRINT": (len(inputs.images), "pawprints combined"),
                 "ESO QC COVERAGE": (coverage, "fraction of the tile grid with data")}
        setup = setup_label(**{"": inputs.primary.get("ESO INS FILT1 NAME", "nofilter")})
        mjd = float(inputs.primary.get("MJD-OBS", 0.0))
        header = coadd_cards(result, inputs.grid)
        saturate_card(header, inputs.saturation())
        images = inputs.images
        with self.product("TILED_IMAGE", master_name("TILED_IMAGE", setup, mjd), images, extra=extra) as out:
            out.add_image(TILE_EXTNAME, result.data, header, provenance=inputs.names)
        del result.data
        with self.product("TILED_CONFIDENCE_MAP", master_name("TILED_CONFIDENCE_MAP", setup, mjd), images,
                          extra=extra) as out:
            out.add_image(TILE_EXTNAME, confidence_map(result.weight), header, provenance=inputs.names)
