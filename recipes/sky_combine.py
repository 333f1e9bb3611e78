"""vircam_sky_combine: the sky of each science pawprint, by a selectable sky method."""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np

from vircamframe.association import by_parent, original_tag
from vircamframe.errors import RecipeInputError
from vircamframe.fitsio import FrameStack, detector_extnames, open_fits
from vircamframe.keywords import chip_number, frame_info
from vircamframe.naming import per_frame_name
from vircamframe.numerics.sky import SkyInputError, window_members
from vircamframe.numerics.stats import masked_levels
from vircamframe.parallel import ordered_map
from vircamframe.parameters import Parameter
from vircamframe.progress import progress
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.registry import strategy_names
from vircamframe.tags import SKY_TARGETS

MINUTES_PER_DAY = 1440.0


class SkyCombine(Recipe):
    name = "vircam_sky_combine"
    version = "0.1.0"
    synopsis = "Master sky of each science pawprint (sliding window or CASU pawsky_mask)"
    description = (
        "For every basic-calibrated OBJECT or STD_FLUX pawprint, the sky method plugin\n"
        "(--sky_method) combines, detector by detector, sky frames with their sources masked\n"
        "(MASTER_OBJMASK of each frame, matched through its provenance). 'sliding_window'\n"
        "(VISIONS) takes the frames within +-sky_window/2 minutes of the target (at least\n"
        "sky_min_frames: a thinner window takes the nearest frames, logged), level-normalised,\n"
        "min/max and sigma-clipped, weighted by 1/noise^2; 'pawsky_mask' (CASU) combines all\n"
        "frames, refining object masks on the sky-subtracted frames until they stop growing.\n"
        "Offset SKY frames, when at least sky_min_frames are given, are the only sky frames;\n"
        "otherwise all frames are. The MASTER_SKY of a frame is the sky pattern scaled to the\n"
        "frame's own masked median level (QC SKYLEVEL, ADU per DIT); QC NSKY counts its frames.\n"
        "A detector without valid pixels in a frame is left out of that detector's skies."
    )
    inputs = (
        Input("BASIC_CALIBRATED_SCI", "RAW", min=1, help="basic-calibrated OBJECT/SKY/STD pawprints"),
        Input("MASTER_OBJMASK", "CALIB", min=0, help="source masks of those pawprints (advised)"),
    )
    products = (Output("MASTER_SKY", "sky of one pawprint, ADU per DIT at its level", per_frame=True,
                       for_tags=SKY_TARGETS),)
    group_by = ("filter", "night")
    parameters = (
        Parameter("sky_method", str, "sliding_window", "Sky method plugin",
                  choices=strategy_names("sky_method")),
        Parameter("sky_window", float, 180.0, "Full width of the sliding time window [min]",
                  range=(0.1, 1e5)),
        Parameter("sky_min_frames", int, 5, "Fewest frames a sky is made of", range=(2, 1000)),
        Parameter("sky_thresh", float, 3.0, "Clipping threshold [sigma of each frame]", range=(0.5, 100.0)),
    )

    def process(self, frames, params) -> None:
        pawprints = list(frames.raw())
        masks = by_parent(pawprints, list(frames.calib()), "MASTER_OBJMASK", self.name, required=False)
        if not any(masks):
            self.log.warning("no MASTER_OBJMASK: sources are not masked (only clipped)")
        kinds = [original_tag(f) for f in pawprints]
        targets = [i for i, kind in enumerate(kinds) if kind != "SKY"]
        if not targets:
            raise RecipeInputError(f"{self.name}: only SKY pawprints given; no frame needs a sky")
        sources = self._sky_frames(kinds, params.sky_min_frames)
        times = np.array([(frame_info(f.path).mjd or 0.0) * MINUTES_PER_DAY for f in pawprints])
        self._log_windows(pawprints, times, sources, targets, params)
        method = self.use_strategy("sky_method", params.sky_method)
        with open_fits(pawprints[0].path, check=False) as hdul:
            extnames = detector_extnames(hdul)
        levels = np.full((len(pawprints), len(extnames)), np.nan)
        chips = []
        with ExitStack() as stack:
            images = stack.enter_context(FrameStack([f.path for f in pawprints]))
            mask_files = [m.path for m in masks if m is not None]
            mask_stack = stack.enter_context(FrameStack(mask_files)) if mask_files else None
            outputs = [stack.enter_context(self.product(
                "MASTER_SKY", per_frame_name("MASTER_SKY", pawprints[i].name), [pawprints[i]],
                [m for m in (masks[i],) if m is not None])) for i in targets]

            def detectors():  # read in this thread, one detector at a time
                for position, extname in enumerate(progress(extnames, "sky combine"), start=1):
                    cube, headers = images.read(extname, all_headers=True, require_valid=False)
                    mask_cube = self._masks(mask_stack, masks, extname, cube.shape)
                    yield position, extname, cube, mask_cube, headers

            def compute(item):  # numerics only: may run in a worker thread
                position, extname, cube, mask_cube, headers = item
                chip_levels = masked_levels(cube, mask_cube)
                chip = chip_number(headers[0], position)
                skies = self._detector_skies(cube, mask_cube, times, sources, targets, chip_levels,
                                             method, params, chip)
                return position, extname, headers, chip, chip_levels, skies

            for position, extname, headers, chip, chip_levels, skies in ordered_map(
                    compute, detectors(), self.threads):
                levels[:, position - 1] = chip_levels
                chips.append(chip)
                for out, index, (sky, nsky) in zip(outputs, targets, skies, strict=True):
                    qc = {"SKYLEVEL": (levels[index, position - 1], "[ADU] sky level per DIT of this frame"),
                          "NSKY": (nsky, "frames combined")}
                    out.add_image(extname, sky, headers[index], qc, [pawprints[index].name])
        if self.qc_plots:
            from vircamframe.qc.sky import plot_sky_levels

            plot_sky_levels(outputs[0].path, times, levels, chips, kinds)

    @staticmethod
    def _sky_frames(kinds: list[str], min_frames: int) -> list[int]:
        """Indices of the frames skies are made of: the SKY frames when there are enough."""
        sky = [i for i, kind in enumerate(kinds) if kind == "SKY"]
        return sky if len(sky) >= min_frames else list(range(len(kinds)))

    def _log_windows(self, pawprints, times, sources, targets, params) -> None:
        """Say which sky frames are used; fail early when there are too few."""
        if len(sources) < len(pawprints):
            self.log.info("sky from the %d offset SKY frames", len(sources))
        elif len(targets) < len(pawprints):
            self.log.warning("fewer than %d SKY frames: skies made from all pawprints", params.sky_min_frames)
        for index in targets:
            try:
                _, widened = window_members(times[sources], times[index], params.sky_window,
                                            params.sky_min_frames)
            except SkyInputError as err:
                raise RecipeInputError(
                    f"{self.name}: {err} (sky_min_frames = {params.sky_min_frames})") from None
            if widened and params.sky_method == "sliding_window":
                self.log.warning("%s: fewer than %d frames within +-%g min; the %d nearest in time are used",
                                 pawprints[index].name, params.sky_min_frames, params.sky_window / 2,
                                 params.sky_min_frames)

    @staticmethod
    def _masks(mask_stack, masks, extname, shape) -> np.ndarray:
        """The source masks of one detector (False where a frame has no mask)."""
        mask_cube = np.zeros(shape, dtype=bool)
        if mask_stack is not None:
            read, _ = mask_stack.read(extname, with_headers=False, require_valid=False)
            rows = [i for i, m in enumerate(masks) if m is not None]
            mask_cube[rows] = read > 0
        return mask_cube

    def _detector_skies(self, cube, mask_cube, times, sources, targets, levels, method, params, chip):
        """``(sky image, frames used)`` per target for one detector, in target order."""
        usable = [i for i in sources if np.isfinite(levels[i]) and levels[i] > 0]
        if len(usable) < len(sources):
            self.log.warning("detector %d: %d frame(s) without valid pixels left out of the sky", chip,
                             len(sources) - len(usable))
        if len(usable) < params.sky_min_frames:
            nan = np.full(cube.shape[1:], np.nan, np.float32)
            self.log.warning("detector %d: only %d usable sky frames: sky is NaN", chip, len(usable))
            return [(nan, 0) for _ in targets]
        counts = [len(window_members(times[usable], times[t], params.sky_window, params.sky_min_frames)[0])
                  if params.sky_method == "sliding_window" else len(usable) for t in targets]
        if len(usable) < len(cube):  # a fancy-indexed copy only when frames are left out
            cube, mask_cube = cube[usable], mask_cube[usable]
        patterns = method(cube, mask_cube, times[usable], [times[t] for t in targets],
                          window=params.sky_window, min_frames=params.sky_min_frames,
                          thresh=params.sky_thresh)
        return [(pattern * np.float32(levels[t]), n)
                for pattern, t, n in zip(patterns, targets, counts, strict=True)]
