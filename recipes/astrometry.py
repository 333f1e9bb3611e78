"""vircam_astrometry: pawprints astrometrically calibrated against Gaia with SCAMP."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from vircamframe.association import by_parent
from vircamframe.astrometry import (
    QC_UNITS,
    check_gates,
    pooled_residuals,
    qc_table,
    residual_vectors,
    solve_astrometry,
)
from vircamframe.fitsio import open_fits
from vircamframe.keywords import frame_info
from vircamframe.naming import master_name, per_frame_name, setup_label
from vircamframe.numerics.astrometry import residual_stats
from vircamframe.parameters import Parameter
from vircamframe.products import qc_cards
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.registry import strategy_names
from vircamframe.scamp import SCAMP_MODES


class Astrometry(Recipe):
    name = "vircam_astrometry"
    version = "0.2.0"
    synopsis = "Astrometric solution of sky-subtracted pawprints against Gaia DR3 (SExtractor, SCAMP)"
    description = (
        "All pawprints given are solved together. SExtractor (windowed centroids, the weight\n"
        "map) catalogues every detector; Gaia DR3 stars around the footprint come from the\n"
        "reference-catalogue provider (refcat_provider: 'local' reads the REFCAT_ASTROM file,\n"
        "'vizier' asks VizieR through astroquery, cached), keep RUWE < ruwe_max and are moved\n"
        "from epoch 2016.0 to the mean epoch of the frames with their proper motions, their\n"
        "errors grown by the proper-motion errors; SCAMP then solves in ASTREF_CATALOG FILE mode.\n"
        "scamp_mode: 'exposure' matches each pawprint as a whole, its detectors where the headers\n"
        "put them, then gives every detector of every pawprint its own degree-3 distortion;\n"
        "'instrument' matches the same way and gives each detector one distortion for all\n"
        "pawprints (for sparse fields, where a detector holds fewer stars than the 20 terms of\n"
        "its own); 'auto' (default) takes 'exposure' when the median detector of a pawprint has\n"
        "at least 20 sources with S/N >= 10, else 'instrument'. 'loose' (VISIONS) pattern-matches\n"
        "each detector on its own, which puts detectors with few stars on the wrong patch of\n"
        "sky; 'fix_focalplane' keeps one detector layout for all pawprints (slow).\n"
        "Each detector's clean sources (S/N >= 10), placed by the solution, are then matched to\n"
        "Gaia within one pixel: residuals, and the completeness of the match, the fraction of\n"
        "the Gaia stars the header puts on the detector, in the G range the run detects, that\n"
        "the solution matched.\n"
        "Gates (a failure stops the run with a one-line error naming the frame, and the\n"
        "detector, and nothing is written): a pawprint matching fewer than min_matches Gaia\n"
        "stars in SCAMP, or with SCAMP's rms above max_rms arcsec on either axis; a detector\n"
        "holding at least min_detector_stars expected Gaia stars whose completeness is below\n"
        "min_completeness (a detector placed on the wrong patch of sky, or solved right in one\n"
        "corner only). Detectors with fewer expected stars are not judged (logged).\n"
        "ASTROM_HEADER holds, per detector, a data-less extension with SCAMP's TPV WCS and QC\n"
        "ASTRMS1/2 (SCAMP's rms vs Gaia per axis [arcsec]), NMATCH and COMPLETENESS; its primary\n"
        "header QC NMATCH, RMS1/2, OFFSET1/2 [arcsec] and XYCONTRAST (SCAMP's) for the pawprint.\n"
        "ASTROM_QC, one per run, is a table with a row per pawprint and detector: FILE,\n"
        "DETECTOR, NSOURCE, NMATCH, NEXPECT, COMPLETENESS, RMS1, RMS2, OFFSET1, OFFSET2\n"
        "[arcsec] (3-sigma clipped rms and mean of ours - Gaia along RA cos(Dec) and Dec, all\n"
        "matched sources). With QC plots on: <ASTROM_QC>.vectors.png (mean residual vectors in\n"
        "cells of each detector, in the focal-plane layout) and <ASTROM_QC>.histograms.png\n"
        "(residuals per axis)."
    )
    inputs = (
        Input("SKYSUB_SCI", "RAW", min=1, help="sky-subtracted pawprints of one field"),
        Input("WEIGHT_SCI", "CALIB", min=0, help="their weight maps (advised)"),
        Input("REFCAT_ASTROM", "CALIB", min=0, max=1, help="Gaia DR3 table (VizieR I/355/gaiadr3 columns)"),
    )
    products = (
        Output("ASTROM_HEADER", "SCAMP WCS of every detector of a pawprint", per_frame=True),
        Output("ASTROM_QC",
               "astrometric QC table: rms, matches and offsets vs Gaia per detector and pawprint"),
    )
    group_by = ("filter", "night")
    parameters = (
        Parameter("refcat_provider", str, "local", "Reference-catalogue provider",
                  choices=strategy_names("reference_catalog")),
        Parameter("scamp_mode", str, "auto", "SCAMP mode: how pawprints are matched and solved",
                  choices=("auto", *SCAMP_MODES)),
        Parameter("ruwe_max", float, 1.5, "Gaia stars with this RUWE or more are left out",
                  range=(1.0, 100.0)),
        Parameter("detect_thresh", float, 3.0, "SExtractor detection threshold [sigma]", range=(0.5, 100.0)),
        Parameter("min_matches", int, 10, "Fewest Gaia stars a pawprint must match", range=(1, 100000)),
        Parameter("max_rms", float, 0.5, "Largest rms vs Gaia per axis [arcsec]", range=(0.001, 60.0)),
        Parameter("min_detector_stars", int, 5,
                  "Expected Gaia stars from which a detector's solution is judged", range=(1, 100000)),
        Parameter("min_completeness", float, 0.3,
                  "Smallest fraction of its expected Gaia stars a judged detector must match (0: no gate)",
                  range=(0.0, 1.0)),
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
        check_gates(solutions, params.min_matches, params.max_rms, self.name,
                    min_detector_stars=params.min_detector_stars, min_completeness=params.min_completeness,
                    log=self.log)
        for frame, weight, solution in zip(images, weights, solutions, strict=True):
            self.log.info("%s: %d Gaia matches, rms %.3f/%.3f arcsec", frame.name, solution.matches,
                          *solution.rms)
            qc = {"NMATCH": (solution.matches, "Gaia stars matched"),
                  "RMS1": (solution.rms[0], "[arcsec] rms vs Gaia, axis 1"),
                  "RMS2": (solution.rms[1], "[arcsec] rms vs Gaia, axis 2"),
                  "OFFSET1": (solution.offset[0], "[arcsec] mean offset vs Gaia, axis 1"),
                  "OFFSET2": (solution.offset[1], "[arcsec] mean offset vs Gaia, axis 2"),
                  "XYCONTRAST": (solution.contrast, "SCAMP pattern-match position contrast")}
            extra = {key: (value, comment) for key, value, comment in qc_cards(qc)}
            extra["ESO DRS SCAMP MODE"] = (solution.mode, "SCAMP mode used (auto resolved)")
            calibs = [w for w in (weight,) if w is not None] + list(self.frames_of("REFCAT_ASTROM"))
            with open_fits(frame.path, check=False) as hdul, self.product(
                    "ASTROM_HEADER", per_frame_name("ASTROM_HEADER", frame.name), [frame], calibs,
                    extra=extra) as out:
                for hdu, header, det in zip(hdul[1:], solution.headers, solution.detectors, strict=True):
                    det_qc = {"ASTRMS1": (header.get("ASTRRMS1", 0.0) * 3600, "[arcsec] rms vs Gaia, axis 1"),
                              "ASTRMS2": (header.get("ASTRRMS2", 0.0) * 3600, "[arcsec] rms vs Gaia, axis 2"),
                              "NMATCH": (det.nmatch, "sources matched to Gaia within 1 px"),
                              "COMPLETENESS": (det.completeness, "fraction of expected Gaia stars matched")}
                    out.add_header(hdu.name, header, det_qc, [frame.name])
        self._write_qc(images, solutions)

    def _write_qc(self, images, solutions) -> None:
        """The ASTROM_QC table of the run and, with QC plots on, its figures."""
        table = qc_table(solutions)
        dra, ddec = pooled_residuals(solutions)
        offset, rms, _ = residual_stats(dra, ddec)
        qc = {"NMATCH": (int(dra.size), "sources matched to Gaia, all detectors"),
              "RMS1": (rms[0], "[arcsec] clipped rms vs Gaia, axis 1"),
              "RMS2": (rms[1], "[arcsec] clipped rms vs Gaia, axis 2"),
              "OFFSET1": (offset[0], "[arcsec] clipped mean offset vs Gaia, axis 1"),
              "OFFSET2": (offset[1], "[arcsec] clipped mean offset vs Gaia, axis 2")}
        first = frame_info(images[0].path)
        name = master_name("ASTROM_QC", setup_label(**{"": first.filter or "nofilter"}), first.mjd or 0.0)
        mode = {"ESO DRS SCAMP MODE": (solutions[0].mode, "SCAMP mode used (auto resolved)")}
        with self.product("ASTROM_QC", name, images, extra=mode) as product:
            product.add_table("ASTROM_QC", table, qc=qc, units=QC_UNITS)
        if self.qc_plots:
            from vircamframe.qc.astrometry import plot_residual_histograms, plot_residual_vectors

            with open_fits(images[0].path, check=False) as hdul:
                ny, nx = next(h for h in hdul[1:] if h.data is not None).data.shape
            plot_residual_vectors(product.path, residual_vectors(solutions), (nx, ny))
            plot_residual_histograms(product.path, dra, ddec)
