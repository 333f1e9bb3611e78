"""vircam_twilight_flat_combine: master twilight flat, confidence map and bad-pixel mask."""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np

from vircamframe.calibrate import CalibrationImage, Linearity, sampled_levels
from vircamframe.errors import RecipeInputError
from vircamframe.fitsio import FrameStack, detector_extnames, open_fits
from vircamframe.keywords import chip_number, frame_info, require_same_setup
from vircamframe.naming import master_name, setup_label
from vircamframe.numerics.dark import hot_pixels
from vircamframe.numerics.flat import finish_flat, gain_corrections, relative_levels
from vircamframe.parameters import Parameter
from vircamframe.progress import progress
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.registry import strategy_names

TWILIGHT = ("FLAT_TWILIGHT",)  # what a flat method combines unless it declares ``input_tags``


class TwilightFlatCombine(Recipe):
    name = "vircam_twilight_flat_combine"
    version = "0.1.0"
    synopsis = "Master twilight flat, confidence map and bad-pixel mask"
    description = (
        "Flat exposures of one filter, DIT and NDIT are checked in a cheap pre-pass (every 16th\n"
        "row): twilight flats whose level per DIT is outside [lthr, hthr] on any detector are\n"
        "dropped and reported (as CASU does); science frames (--flat_method=sky) are dropped\n"
        "only when their sky is not positive or above hthr. The rest are divided by NDIT,\n"
        "dark-subtracted and linearised; the flat method plugin (--flat_method: 'twilight' by\n"
        "default, FLAT_TWILIGHT frames with multiplicative scaling, rejection, median; 'sky',\n"
        "dithered OBJECT and SKY frames with their sources masked) combines them per detector,\n"
        "and each flat is normalised to unit median (its level is kept as DRS MEDFLAT). The\n"
        "inter-detector gain harmonisation comes from the pre-pass, where every frame is\n"
        "measured on all detectors: QC GAINCOR = median over detectors of the relative level /\n"
        "this detector's, by which flat-fielded data are multiplied.\n"
        "MASTER_BPM flags pixels with a response below badlo or above badhi, hot pixels of the\n"
        "master dark, and those of an input MASTER_BPM; MASTER_CONF is CASU's confidence map."
    )
    inputs = (
        Input("FLAT_TWILIGHT", min=0, help="twilight flats of one filter/DIT/NDIT (flat_method twilight)",
              when=lambda params: params["flat_method"] != "sky"),
        Input(("OBJECT", "SKY"), min=0, help="dithered science and offset-sky frames (flat_method sky)",
              when=lambda params: params["flat_method"] == "sky"),
        Input("MASTER_DARK", "CALIB", min=1, max=1, help="master dark of the flats' DIT/NDIT"),
        Input("MASTER_CHANNEL_TABLE", "CALIB", min=0, max=1, help="linearity (strongly advised)"),
        Input("MASTER_BPM", "CALIB", min=0, max=1, help="bad pixels to carry over"),
    )
    products = (
        Output("MASTER_TWILIGHT_FLAT", "normalised flat per detector, with MEDFLAT and GAINCOR"),
        Output("MASTER_CONF", "confidence map, 0-110 (100 = nominal), 0 = bad"),
        Output("MASTER_BPM", "bad-pixel mask, 1 = bad"),
    )
    group_by = ("filter", "dit", "ndit", "readmode", "night")
    parameters = (
        Parameter("flat_method", str, "twilight", "Flat method plugin",
                  choices=strategy_names("flat_method")),
        Parameter("combtype", str, "median", "How surviving values are combined", choices=("median", "mean")),
        Parameter("thresh", float, 5.0, "Rejection threshold [robust sigma]", range=(0.1, 1000.0)),
        Parameter("xrej", bool, True, "Extra rejection cycle with each frame's own noise"),
        Parameter("lthr", float, 4000.0, "Lowest twilight-flat level per DIT [ADU]", range=(0.0, None)),
        Parameter("hthr", float, 30000.0, "Highest accepted flat level per DIT [ADU]", range=(0.0, None)),
        Parameter("badlo", float, 0.5, "Pixels below this normalised response are bad", range=(0.0, 1.0)),
        Parameter("badhi", float, 1.5, "Pixels above this normalised response are bad", range=(1.0, None)),
        Parameter("hot_thresh", float, 5.0, "Hot pixels of the master dark [local sigma]", range=(1.0, None)),
    )

    def process(self, frames, params) -> None:
        method = self.use_strategy("flat_method", params.flat_method)
        flats = self._flat_frames(frames, params.flat_method, getattr(method, "input_tags", TWILIGHT))
        infos = [frame_info(f.path) for f in flats]
        require_same_setup(infos, ("dit", "ndit", "readmode", "filter"), self.name)
        dit, ndit = infos[0].dit, infos[0].ndit
        dark_frame = frames.by_tag("MASTER_DARK")[0]
        dark_info = frame_info(dark_frame.path)
        if (dark_info.dit, dark_info.ndit) != (dit, ndit):
            raise RecipeInputError(
                f"{self.name}: {dark_frame.name} is a dark of DIT {dark_info.dit}/NDIT {dark_info.ndit}, "
                f"the flats have DIT {dit}/NDIT {ndit}"
            )
        dark = CalibrationImage(dark_frame.path)
        tables = frames.by_tag("MASTER_CHANNEL_TABLE")
        linearity = Linearity(tables[0].path) if len(tables) else None
        if linearity is None:
            self.log.warning("no MASTER_CHANNEL_TABLE: flats are not linearised")
        bpm_frames = frames.by_tag("MASTER_BPM")
        bpm_in = CalibrationImage(bpm_frames[0].path) if len(bpm_frames) else None
        with open_fits(flats[0].path, check=False) as hdul:
            extnames = detector_extnames(hdul)

        paths = [f.path for f in flats]
        raw_levels, linear_levels = sampled_levels(paths, extnames, ndit, dit, dark, linearity)
        twilight = np.array([f.tag in TWILIGHT for f in flats])[:, None]
        # as CASU: a twilight flat is used when its level is within [lthr, hthr] on every
        # detector; a science frame's sky is far below lthr, so it only has to be there and
        # clear of the non-linear regime
        bright_enough = np.where(twilight, raw_levels >= params.lthr, linear_levels > 0)
        in_range = bright_enough & (raw_levels <= params.hthr)
        usable = in_range.all(axis=1)
        self._report_selection(flats, raw_levels, usable, params, bool(twilight.all()))
        used = [f for f, k in zip(flats, usable, strict=True) if k]
        relative = relative_levels(linear_levels[usable], in_range[usable])
        gaincor = gain_corrections(dict(zip(extnames, relative, strict=True)))

        label = setup_label(**{"": infos[0].filter})
        mjd = infos[0].mjd or 0.0
        summary = {}
        with ExitStack() as stack:
            frames_in = stack.enter_context(FrameStack([f.path for f in used]))
            out_flat = stack.enter_context(self.product(
                "MASTER_TWILIGHT_FLAT", master_name("MASTER_TWILIGHT_FLAT", label, mjd), used))
            out_conf = stack.enter_context(self.product(
                "MASTER_CONF", master_name("MASTER_CONF", label, mjd), used))
            out_bpm = stack.enter_context(self.product(
                "MASTER_BPM", master_name("MASTER_BPM", label, mjd), used))
            for position, extname in enumerate(progress(extnames, "twilight flat"), start=1):
                cube, headers = frames_in.read(extname)
                cube /= np.float32(ndit)
                cube -= dark.detector(extname)[None]
                if linearity is not None:
                    for index in range(len(cube)):
                        cube[index] = linearity.apply(cube[index], dit, extname)
                combined = method(cube, combtype=params.combtype, thresh=params.thresh, xrej=params.xrej)
                del cube
                known_bad = hot_pixels(dark.detector(extname), params.hot_thresh)
                if bpm_in is not None:
                    known_bad |= bpm_in.detector(extname) > 0
                out = finish_flat(combined.image, known_bad, params.badlo, params.badhi)
                del combined
                qc = {
                    "GAINCOR": (gaincor[extname], "multiply flat-fielded data by this"),
                    "FLATRMS": (out.rms, "robust pixel rms of the normalised flat"),
                    "BADFRAC": (float(out.bad.mean()), "fraction of bad pixels"),
                    "NUSED": (len(used), "flats combined"),
                }
                header = headers[0].copy()
                header["HIERARCH ESO DRS MEDFLAT"] = (out.level, "[ADU] median level of the combined flat")
                names = [f.name for f in used]
                out_flat.add_image(extname, out.flat, header, qc, names)
                badfrac = {"BADFRAC": qc["BADFRAC"]}
                out_conf.add_image(extname, out.confidence, headers[0], badfrac, names)
                out_bpm.add_image(extname, out.bad.astype(np.uint8), headers[0], badfrac, names)
                summary[chip_number(headers[0], position)] = (
                    out.flat[::4, ::4].copy(), out.confidence[::4, ::4].copy(), qc)
        if self.qc_plots:
            from vircamframe.qc.flat import plot_flat

            plot_flat(out_flat.path, summary)

    def _flat_frames(self, frames, method: str, tags: tuple[str, ...]) -> list:
        """The frames the flat method combines (``tags``); others present are ignored, with a note."""
        flats = list(self.frames_of(*tags))
        if len(flats) < 2:
            raise RecipeInputError(
                f"{self.name}: --flat_method={method} needs at least 2 frames tagged "
                f"{' or '.join(tags)}, got {len(flats)}"
            )
        unused = [f for f in frames.raw() if f.tag not in tags]
        if unused:
            self.log.info("--flat_method=%s ignores %d %s frame(s)", method, len(unused),
                          "/".join(dict.fromkeys(f.tag for f in unused)))
        self.log.info("--flat_method=%s combines %d %s frame(s)", method, len(flats), " and ".join(tags))
        return flats

    def _report_selection(self, flats, raw_levels, usable, params, twilight: bool = True) -> None:
        """Log the flats dropped; fewer than 2 left is an error listing every flat's levels."""
        if twilight:
            window = f"[{params.lthr:g}, {params.hthr:g}] ADU"
        else:
            window = f"(0, {params.hthr:g}] ADU (sky above the dark)"
            self.log.info("science frames are kept when their sky per DIT is within %s on every detector "
                          "([lthr, hthr] is for twilight flats)", window)
        span = [f"{f.name}: {lv.min():.0f}-{lv.max():.0f}" for f, lv in zip(flats, raw_levels, strict=True)]
        for flat, ok, text in zip(flats, usable, span, strict=True):
            if not ok:
                self.log.info("dropped %s: level outside %s on some detector (%s)", flat.name, window,
                              text.split(": ")[1])
        if usable.sum() < 2:
            raise RecipeInputError(
                f"{self.name}: fewer than 2 flats within {window} on every detector ({', '.join(span)})"
            )
