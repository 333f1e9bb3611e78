"""vircam_astrometry: pawprints astrometrically calibrated against Gaia with SCAMP."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from vircamframe.association import by_parent
from vircamframe.astrometry import check_gates, solve_astrometry
from vircamframe.fitsio import open_fits
from vircamframe.naming import per_frame_name
from vircamframe.parameters import Parameter
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.registry import strategy_names
from vircamframe.scamp import SCAMP_MODES


class Astrometry(Recipe):
    name = "vircam_astrometry"
    version = "0.1.0"
    synopsis = "Astrometric solution of sky-subtracted pawprints against Gaia DR3 (SExtractor, SCAMP)"
    description = (
        "All pawprints given are solved together. SExtractor (windowed centroids, the weight\n"
        "map) catalogues every detector; Gaia DR3 stars around the footprint come from the\n"
        "reference-catalogue provider (refcat_provider: 'local' reads the REFCAT_ASTROM file,\n"
        "'vizier' asks VizieR through astroquery, cached), keep RUWE < ruwe_max and are moved\n"
        "from epoch 2016.0 to the mean epoch of the frames with their proper motions, their\n"
        "errors grown by the proper-motion errors; SCAMP then solves in ASTREF_CATALOG FILE\n"
        "mode, scamp_mode 'loose' (every detector of every pawprint free, distortion degree 3)\n"
        "or 'fix_focalplane' (one detector layout for all pawprints).\n"
        "Gates: a pawprint matching fewer than min_matches Gaia stars, or with an external rms\n"
        "above max_rms arcsec on either axis, fails the run with a one-line error (nothing is\n"
        "written). ASTROM_HEADER holds, per detector, a data-less extension with SCAMP's TPV\n"
        "WCS and QC ASTRMS1/2 (rms vs Gaia per axis [arcsec]); its primary header QC NMATCH,\n"
        "RMS1/2 and OFFSET1/2 [arcsec] for the pawprint."
    )
    inputs = (
        Input("SKYSUB_SCI", "RAW", min=1, help="sky-subtracted pawprints of one field"),
        Input("WEIGHT_SCI", "CALIB", min=0, help="their weight maps (advised)"),
        Input("REFCAT_ASTROM", "CALIB", min=0, max=1, help="Gaia DR3 table (VizieR I/355/gaiadr3 columns)"),
    )
    products = (Output("ASTROM_HEADER", "SCAMP WCS of every detector of a pawprint", per_frame=True),)
    group_by = ("filter", "night")
    parameters = (
        Parameter("refcat_provider", str, "local", "Reference-catalogue provider",
                  choices=strategy_names("reference_catalog")),
        Parameter("scamp_mode", str, "loose", "SCAMP mosaic mode", choices=tuple(SCAMP_MODES)),
        Parameter("ruwe_max", float, 1.5, "Gaia stars with this RUWE or more are left out",
                  range=(1.0, 100.0)),
        Parameter("detect_thresh", float, 3.0, "SExtractor detection threshold [sigma]", range=(0.5, 100.0)),
        Parameter("min_matches", int, 10, "Fewest Gaia stars a pawprint must match", range=(1, 100000)),
        Parameter("max_rms", float, 0.5, "Largest rms vs Gaia per axis [arcsec]", range=(0.001, 60.0)),
    )

    def process(self, frames, params) -> None:
        images = list(frames.raw())
        weights = by_parent(images, list(frames.calib()), "WEIGHT_SCI", self.name, required=False)
        provider = self.use_strategy("reference_catalog", params.refcat_provider)
        query = functools.partial(provider, files=[f.path for f in self.frames_of("REFCAT_ASTROM")])
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".astrometry.", dir=self.output_dir) as work:
            solutions = solve_astrometry(
                [f.path for f in images], [w.path if w is not None else None for w in weights], query,
                Path(work), mode=params.scamp_mode, ruwe_max=params.ruwe_max,
                detect_thresh=params.detect_thresh, log=self.log,
            )
        check_gates(solutions, params.min_matches, params.max_rms, self.name)
        for frame, weight, solution in zip(images, weights, solutions, strict=True):
            self.log.info("%s: %d Gaia matches, rms %.3f/%.3f arcsec", frame.name, solution.matches,
                          *solution.rms)
            qc = {"NMATCH": (solution.matches, "Gaia stars matched"),
                  "RMS1": (solution.rms[0], "[arcsec] rms vs Gaia, axis 1"),
                  "RMS2": (solution.rms[1], "[arcsec] rms vs Gaia, axis 2"),
                  "OFFSET1": (solution.offset[0], "[arcsec] mean offset vs Gaia, axis 1"),
                  "OFFSET2": (solution.offset[1], "[arcsec] mean offset vs Gaia, axis 2")}
            extra = {f"ESO QC {key}": value for key, value in qc.items()}
            calibs = [w for w in (weight,) if w is not None] + list(self.frames_of("REFCAT_ASTROM"))
            with open_fits(frame.path, check=False) as hdul, self.product(
                    "ASTROM_HEADER", per_frame_name("ASTROM_HEADER", frame.name), [frame], calibs,
                    extra=extra) as out:
                for hdu, header in zip(hdul[1:], solution.headers, strict=True):
                    det_qc = {"ASTRMS1": (header.get("ASTRRMS1", 0.0) * 3600, "[arcsec] rms vs Gaia, axis 1"),
                              "ASTRMS2": (header.get("ASTRRMS2", 0.0) * 3600, "[arcsec] rms vs Gaia, axis 2")}
                    out.add_header(hdu.name, header, det_qc, [frame.name])
