"""vircam_statistics: exposure time, image count, mean MJD and astrometric rms maps of a tile."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from vircamframe.association import by_parent
from vircamframe.coadd import read_pieces, same_grid
from vircamframe.fitsio import read_primary_header
from vircamframe.naming import master_name, setup_label
from vircamframe.numerics.coverage import CoverageMaps
from vircamframe.numerics.stats import masked_median
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.tiling import piece_cards

EXTNAME = "TILE"
MAPS = (
    ("STAT_EXPTIME", "exptime", "s", "total exposure time of the pawprints covering each pixel"),
    ("STAT_NIMG", "nimg", "", "number of pawprints covering each pixel"),
    ("STAT_MJD", "mjd", "d", "mean mid-exposure MJD of the pawprints covering each pixel"),
    ("STAT_ASTRMS", "rms", "mas", "mean astrometric rms vs Gaia of the detectors covering each pixel"),
)


class Statistics(Recipe):
    name = "vircam_statistics"
    version = "0.2.1"
    synopsis = "Per-pixel exposure time, number of images, mean MJD and astrometric rms on the tile grid"
    description = (
        "From the resampled weights of all pawprints of a tile (a pixel is covered by a\n"
        "pawprint where its resampled weight is positive), four maps on the tile grid:\n"
        "STAT_EXPTIME, the summed exposure time (EXPTIME = DIT x NDIT) [s]; STAT_NIMG, the\n"
        "number of pawprints; STAT_MJD, the mean mid-exposure MJD, in double precision [d];\n"
        "STAT_ASTRMS, the mean over the covering detectors of their astrometric rms vs Gaia,\n"
        "sqrt(ASTRMS1^2 + ASTRMS2^2) from each pawprint's ASTROM_HEADER [mas] (NaN without one).\n"
        "Pixels no pawprint covers are 0 (counts, times) or NaN (means). Each input is read once,\n"
        "one detector at a time. QC per map: its median over the covered pixels (on a regular\n"
        "sample of at most 16 million of them), and QC\n"
        "NIMGMAX, EXPTMAX in STAT_NIMG and STAT_EXPTIME. Every map's primary header gives the\n"
        "start of the first exposure (MJD-OBS), the end of the last (MJD-END), the summed exposure\n"
        "time (TEXPTIME) and the archive names of the raw frames (ESO DRS RAWi NAME), for the\n"
        "Phase 3 keywords."
    )
    inputs = (
        Input("RESAMPLED_WEIGHT", "RAW", min=1, help="resampled weights of the pawprints of one tile"),
        Input("ASTROM_HEADER", "CALIB", min=0, help="their astrometric solutions (for STAT_ASTRMS)"),
    )
    products = tuple(Output(tag, help) for tag, _, _, help in MAPS)
    group_by = ("filter", "night")
    parameters = ()

    def process(self, frames, params) -> None:
        weights = list(frames.raw())
        astrom = by_parent(weights, list(frames.calib()), "ASTROM_HEADER", self.name, required=False)
        layouts = [read_pieces(f.path) for f in weights]
        grid = same_grid([g for g, _ in layouts], [f.name for f in weights], self.name)
        maps = CoverageMaps((int(grid["NAXIS2"]), int(grid["NAXIS1"])))
        starts, ends, raws, total = [], [], [], 0.0
        for frame, (_, pieces), solution in zip(weights, layouts, astrom, strict=True):
            primary = read_primary_header(frame.path)
            exptime = float(primary["EXPTIME"])
            mjd = float(primary["MJD-OBS"]) + exptime / 2.0 / 86400.0
            starts.append(float(primary["MJD-OBS"]))
            ends.append(float(primary["MJD-OBS"]) + exptime / 86400.0)
            raws.append(str(primary.get("ESO PRO ANCESTOR", frame.name)))
            total += exptime
            rms = _detector_rms(solution.path) if solution is not None else {}
            with fits.open(frame.path) as hdul:
                for piece in pieces:
                    hdu = hdul[piece.extname]
                    maps.add(hdu.data > 0, piece.xmin - 1, piece.ymin - 1, exptime, mjd,
                             rms.get(piece.extname))
        first = read_primary_header(weights[0].path)
        setup = setup_label(**{"": first.get("ESO INS FILT1 NAME", "nofilter")})
        mjd0 = float(first.get("MJD-OBS", 0.0))
        header = piece_cards(grid, 1, 1)
        covered = maps.nimg > 0
        extra = {"MJD-OBS": (min(starts), "[d] start of the first exposure"),
                 "MJD-END": (max(ends), "[d] end of the last exposure"),
                 "TEXPTIME": (total, "[s] summed exposure time of the pawprints"),
                 **{f"ESO DRS RAW{i} NAME": (name, "raw frame of a pawprint")
                    for i, name in enumerate(raws, start=1)}}
        for category, attribute, unit, _ in MAPS:
            data = getattr(maps, attribute)
            cards = header.copy()
            cards["BUNIT"] = (unit, "unit of the map")
            median = masked_median(data, covered)
            qc = {"MEDIAN": (median, f"[{unit or 'count'}] median over the covered pixels")}
            if category == "STAT_NIMG":
                qc["NIMGMAX"] = (int(data.max()), "most pawprints on one pixel")
            if category == "STAT_EXPTIME":
                qc["EXPTMAX"] = (float(data.max()), "[s] longest total exposure time")
            with self.product(category, master_name(category, setup, mjd0), weights, extra=extra) as out:
                out.add_image(EXTNAME, data, cards, qc, float64=category == "STAT_MJD")


def _detector_rms(path) -> dict[str, float]:
    """Per detector extension, sqrt(ASTRMS1^2 + ASTRMS2^2) of an ASTROM_HEADER [mas]."""
    result = {}
    with fits.open(path) as hdul:
        for hdu in hdul[1:]:
            a, b = hdu.header.get("ESO QC ASTRMS1"), hdu.header.get("ESO QC ASTRMS2")
            if a is not None and b is not None:
                result[hdu.name] = 1000.0 * float(np.hypot(a, b))
    return result
