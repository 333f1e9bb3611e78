"""vircam_science_final: sky subtraction, destriping, background, weights of science pawprints."""

from __future__ import annotations

from contextlib import ExitStack

import bottleneck as bn
import numpy as np

from vircamframe.association import by_parent, original_tag, select_calibration
from vircamframe.calibrate import CalibrationImage
from vircamframe.errors import RecipeInputError
from vircamframe.fitsio import FrameStack, detector_extnames, open_fits
from vircamframe.keywords import chip_number, frame_info
from vircamframe.naming import per_frame_name
from vircamframe.numerics.background import background_map
from vircamframe.numerics.destripe import group_stripes, profile_rms
from vircamframe.numerics.interpolate import fill_isolated_nans
from vircamframe.numerics.masking import threshold_mask
from vircamframe.numerics.weights import local_rms, weight_map
from vircamframe.parameters import Parameter
from vircamframe.progress import progress
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.tags import SKY_TARGETS

DETECTORS_PER_READOUT_ROW = 4


class ScienceFinal(Recipe):
    name = "vircam_science_final"
    version = "0.1.1"
    synopsis = "Sky-subtracted, destriped, background-subtracted pawprints and their weights"
    description = (
        "For each basic-calibrated pawprint, with its MASTER_SKY and MASTER_OBJMASK (matched\n"
        "through their provenance), detector by detector: the sky is scaled to the frame's\n"
        "level (ratio of the medians of the unmasked pixels) and subtracted (QC SKY); the row\n"
        "stripe pattern is measured on the masked data as a clipped mean per row and removed\n"
        "(--destripe): with destripe_mode=shared the four detectors of a read-out row pool their\n"
        "rows into one pattern (rescaled by each detector's gain correction), with 'detector'\n"
        "each keeps its own unless heavily masked (QC STRIPERMS); a 2-D background (mesh\n"
        "background_mesh_size, median filter background_filter_size cells, sources masked) is\n"
        "subtracted (--subtract_background); isolated bad pixels (groups up to\n"
        "interpolate_max_size pixels) are filled from their neighbours. WEIGHT_SCI is the\n"
        "inverse variance from the local noise (64-pixel cells) times the flat's confidence\n"
        "(MASTER_CONF of the filter; 100 without one): noisy regions are down-weighted, bad\n"
        "pixels get 0, interpolated ones a quarter of the median weight (SWarp and SExtractor\n"
        "treat a zero as a hole around it) (QC SKYSIG: median noise). Without a\n"
        "MASTER_OBJMASK the sources are found on the sky-subtracted detector by thresholding\n"
        "(logged). Offset SKY pawprints\n"
        "without a sky of their own are skipped (logged)."
    )
    inputs = (
        Input("BASIC_CALIBRATED_SCI", "RAW", min=1, help="basic-calibrated pawprints"),
        Input("MASTER_SKY", "CALIB", min=1, help="the sky of each pawprint"),
        Input("MASTER_OBJMASK", "CALIB", min=0, help="source masks of the pawprints (advised)"),
        Input("MASTER_CONF", "CALIB", min=0, help="confidence maps; each pawprint takes its filter's"),
    )
    products = (
        Output("SKYSUB_SCI", "sky-subtracted, destriped pawprint, ADU per DIT",
               per_frame=True, for_tags=SKY_TARGETS),
        Output("WEIGHT_SCI", "weight map: confidence / local variance [ADU^-2]",
               per_frame=True, for_tags=SKY_TARGETS),
    )
    group_by = ("frame",)
    parameters = (
        Parameter("destripe", bool, True, "Remove the horizontal stripe pattern"),
        Parameter("destripe_mode", str, "shared", "Stripe estimate per read-out row or per detector",
                  choices=("shared", "detector")),
        Parameter("subtract_background", bool, True, "Subtract a 2-D background after the sky"),
        Parameter("background_mesh_size", int, 64, "Background mesh [pixels]", range=(8, 4096)),
        Parameter("background_filter_size", int, 3, "Background median filter [meshes]", range=(1, 15)),
        Parameter("interpolate_max_size", int, 4, "Largest bad-pixel group filled [pixels]", range=(0, 100)),
        Parameter("weight_mesh", int, 64, "Cell size of the local noise for the weights [pixels]",
                  range=(8, 4096)),
    )

    def process(self, frames, params) -> None:
        calibs = list(frames.calib())
        pawprints = self._science_pawprints(list(frames.raw()), calibs)
        skies = by_parent(pawprints, calibs, "MASTER_SKY", self.name)
        masks = by_parent(pawprints, calibs, "MASTER_OBJMASK", self.name, required=False)
        if not all(masks):
            self.log.warning("%d pawprint(s) without MASTER_OBJMASK: sources found by thresholding",
                             sum(m is None for m in masks))
        with open_fits(pawprints[0].path, check=False) as hdul:
            extnames = detector_extnames(hdul)
        groups = [extnames[i : i + DETECTORS_PER_READOUT_ROW]
                  for i in range(0, len(extnames), DETECTORS_PER_READOUT_ROW)]
        confidences: dict = {}  # one reader per MASTER_CONF, keeping a read-out row's detectors
        with ExitStack() as stack:
            jobs = []
            for frame, sky, mask in zip(pawprints, skies, masks, strict=True):
                conf = select_calibration(frame_info(frame.path), calibs, "MASTER_CONF", self.name,
                                          required=False)
                used = [f for f in (sky, mask, conf) if f is not None]
                inputs = [stack.enter_context(FrameStack([f.path])) if f is not None else None
                          for f in (frame, sky, mask)]
                confidence = (confidences.setdefault(conf.path, CalibrationImage(conf.path, keep=4))
                              if conf is not None else None)
                out = stack.enter_context(self.product(
                    "SKYSUB_SCI", per_frame_name("SKYSUB_SCI", frame.name), [frame], used))
                weights = stack.enter_context(self.product(
                    "WEIGHT_SCI", per_frame_name("WEIGHT_SCI", frame.name), [frame], used))
                jobs.append((inputs, confidence, out, weights, {}))
            # Read-out row by read-out row over all frames: each confidence detector is read once.
            for group in progress(groups, "science final"):
                for inputs, confidence, out, weights, stripes in jobs:
                    stripes.update(self._group(group, extnames, inputs, confidence, out, weights, params))
        if self.qc_plots and params.destripe:
            from vircamframe.qc.sky import plot_stripes

            for _, _, out, _, stripes in jobs:
                plot_stripes(out.path, stripes)

    def _science_pawprints(self, pawprints: list, calibs: list) -> list:
        """The pawprints to process: offset SKY frames without a sky of their own are skipped."""
        skies = by_parent(pawprints, calibs, "MASTER_SKY", self.name, required=False)
        kept = []
        for frame, sky in zip(pawprints, skies, strict=True):
            if sky is None and original_tag(frame) == "SKY":
                self.log.info("%s is an offset SKY frame without a MASTER_SKY: skipped", frame.name)
            else:
                kept.append(frame)
        if not kept:
            raise RecipeInputError(f"{self.name}: only offset SKY pawprints given, nothing to process")
        return kept

    def _group(self, group, extnames, inputs, confidence, out, weights, params) -> dict:
        """Process the detectors of one read-out row; returns their stripe profiles by chip."""
        image_in, sky_in, mask_in = inputs
        images, masks, headers, qcs = [], [], [], []
        for extname in group:
            (image,), (header,) = image_in.read(extname, require_valid=False)
            (sky,), _ = sky_in.read(extname, with_headers=False, require_valid=False)
            if mask_in is not None:
                mask = mask_in.read(extname, with_headers=False, require_valid=False)[0][0] > 0
            else:
                mask = None
            image, sky_level = _subtract_sky(image, sky, mask)
            if mask is None:
                mask = threshold_mask(image) if np.isfinite(image).any() else np.ones(image.shape, bool)
            images.append(image)
            masks.append(mask)
            headers.append(header)
            qcs.append({"SKY": (sky_level, "[ADU] sky level subtracted, per DIT")})
        chips = [chip_number(h, extnames.index(e) + 1) for h, e in zip(headers, group, strict=True)]
        if params.destripe:
            levels = [1.0 / float(h.get("ESO DRS GAINCOR", 1.0)) for h in headers]
            profiles = group_stripes(images, masks, levels, mode=params.destripe_mode)
        else:
            profiles = [np.zeros(images[0].shape[0], np.float32) for _ in images]
        for extname, image, mask, header, qc, profile in zip(group, images, masks, headers, qcs, profiles,
                                                             strict=True):
            image -= profile[:, None]
            qc["STRIPERMS"] = (profile_rms(profile), "[ADU] rms of the stripe pattern removed")
            if params.subtract_background:
                background, _ = background_map(image, mask, mesh=params.background_mesh_size,
                                               filter_size=params.background_filter_size)
                image -= background
            missing = ~np.isfinite(image)
            image, filled = fill_isolated_nans(image, max_size=params.interpolate_max_size)
            rms = local_rms(image, mask, mesh=params.weight_mesh)
            conf = (confidence.detector(extname) if confidence is not None
                    else np.where(np.isfinite(image), 100, 0).astype(np.int16))
            weight = weight_map(conf, rms, image, interpolated=missing & np.isfinite(image))
            qc["SKYSIG"] = (float(np.nanmedian(rms)) if np.isfinite(rms).any() else float("nan"),
                            "[ADU] median local background noise")
            qc["NFILLED"] = (filled, "isolated bad pixels interpolated")
            qc["MASKFRAC"] = (float(mask.mean()), "fraction of pixels masked as sources")
            out.add_image(extname, image, header, qc, [])
            weights.add_image(extname, weight, header, None, [])
        return dict(zip(chips, profiles, strict=True))


def _subtract_sky(image: np.ndarray, sky: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, float]:
    """``image - k sky`` with ``k`` the ratio of their medians over unmasked pixels; the sky level.

    The medians come from every other row and column (a million pixels of a 2048² detector pin
    them to a small fraction of the noise; the level only scales the sky).
    """
    step = max(1, image.shape[0] // 1024)
    sample_image, sample_sky = image[::step, ::step], sky[::step, ::step]
    usable = np.isfinite(sample_image) & np.isfinite(sample_sky)
    if mask is not None:
        usable &= ~mask[::step, ::step]
    if not usable.any():
        return image - sky, float("nan")
    sky_level = float(bn.median(sample_sky[usable]))
    scale = float(bn.median(sample_image[usable])) / sky_level
    return image - sky * np.float32(scale), sky_level * scale
