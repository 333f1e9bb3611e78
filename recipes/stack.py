"""vircam_stack: the jitters of one pawprint offset co-added, detector by detector (SWarp)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

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


class Stack(Recipe):
    name = "vircam_stack"
    version = "0.1.2"
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
    parameters = COADD_PARAMETERS

    def process(self, frames, params) -> None:
        inputs = read_coadd_inputs(frames, self.name)
        primary = inputs.primary
        extra = {**inputs.primary_cards(), "ESO QC NJITTER": (len(inputs.images), "pawprints combined")}
        band = primary.get("ESO INS FILT1 NAME", "nofilter")
        setup = setup_label(**{"": band}, offset=primary.get("OFFSET_I", 1))
        mjd = float(primary.get("MJD-OBS", 0.0))
        options = swarp_options(params, self.threads, self.log)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with (self.product("JITTERED_IMAGE_SCI", master_name("JITTERED_IMAGE_SCI", setup, mjd), inputs.images,
                           extra=extra) as sci,
              self.product("JITTERED_CONFIDENCE_MAP", master_name("JITTERED_CONFIDENCE_MAP", setup, mjd),
                           inputs.images, extra=extra) as conf):
            # every detector on the grid in any input (a predefined grid may leave some out), in
            # the file order of the input holding the most
            fullest = max(inputs.pieces, key=len)
            extnames = list(dict.fromkeys(p.extname for ps in (fullest, *inputs.pieces) for p in ps))
            for extname in extnames:
                pieces = [p for ps in inputs.pieces for p in ps if p.extname == extname]
                holding = [(image, weight) for image, weight, ps in
                           zip(inputs.images, inputs.weights, inputs.pieces, strict=True)
                           if any(p.extname == extname for p in ps)]
                with tempfile.TemporaryDirectory(prefix=".stack.", dir=self.output_dir) as work:
                    files = _extract(*zip(*holding, strict=True), extname, Path(work))
                    result = coadd(*files, inputs.grid, pieces, Path(work), crop=True, **options)
                header = coadd_cards(result, inputs.grid)
                saturate_card(header, inputs.saturation(extname))
                coverage = float(np.count_nonzero(result.weight > 0)) / result.weight.size
                qc = {"COVERAGE": (coverage, "fraction of the stack's pixels with data")}
                sci.add_image(extname, result.data, header, qc, inputs.names)
                conf.add_image(extname, confidence_map(result.weight), header, qc, inputs.names)


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
