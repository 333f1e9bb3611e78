"""vircam_linearity_analyse: per-channel DCS linearity and a bad-pixel mask from a lamp sequence."""

from __future__ import annotations

from contextlib import ExitStack

from vircamframe.channel_table import CATEGORY as TABLE_CATEGORY
from vircamframe.errors import RecipeInputError
from vircamframe.fitsio import FrameStack, detector_extnames, open_fits
from vircamframe.keywords import chip_number
from vircamframe.linearity_analysis import (
    analyse_detector,
    channel_table,
    mask_qc,
    plan_linearity,
    read_detector_data,
    table_qc,
)
from vircamframe.naming import master_name
from vircamframe.parallel import ordered_map
from vircamframe.parameters import Parameter
from vircamframe.progress import progress
from vircamframe.recipe import Input, Output, Recipe


class LinearityAnalyse(Recipe):
    name = "vircam_linearity_analyse"
    version = "0.1.0"
    synopsis = "Per-channel DCS non-linearity and a bad pixel mask from a lamp linearity sequence"
    description = (
        "Lamp flats at several DITs (FLAT_LAMP_LINEARITY), each with a dark of the same DIT and\n"
        "NDIT (DARK_LINEARITY), are divided by NDIT and dark-subtracted. Per detector the\n"
        "saturation plateau is found from the saturated flats (or given with --satlevel);\n"
        "pixels saturated in one frame but not at a longer DIT (transient events, detector 6\n"
        "channel 14) are ignored. Per readout channel (16 per detector) the level at each DIT\n"
        "(a clipped mean over one set of the channel's pixels) below satfrac x saturation is\n"
        "fitted with the DCS cubic\n"
        "M = sum_j b_j ((1+k)^j - k^j) x^j, k = 1.0011/DIT, b1 = 1, jointly with the lamp rate\n"
        "(weighted linear least squares; outliers rejected). FLAT_LAMP_CHECK frames at one DIT\n"
        "through the sequence (with DARK_CHECK) measure lamp drift, which enters the fit as a\n"
        "known rate factor per frame. The bad pixel mask (1 = bad) flags pixels with no or an\n"
        "outlying linearised response, a response unstable from frame to frame, or a hot dark\n"
        "current (from the darks). QC per detector: LINEARITY (median % at 10 kADU), LINERROR,\n"
        "BADFRAC. Coefficients follow the convention of vircamframe.channel_table."
    )
    inputs = (
        Input("FLAT_LAMP_LINEARITY", "RAW", min=5, help="lamp flats at >= 5 distinct DITs"),
        Input("DARK_LINEARITY", "RAW", min=1, help="darks matching each flat's DIT and NDIT"),
        Input("FLAT_LAMP_CHECK", "RAW", min=0, help="lamp flats at one DIT through the sequence"),
        Input("DARK_CHECK", "RAW", min=0, help="dark of the CHECK flats' DIT and NDIT"),
    )
    products = (
        Output(TABLE_CATEGORY, "per-channel DCS non-linearity coefficients, one table per detector"),
        Output("MASTER_BPM", "bad pixel mask (uint8, 1 = bad), one image per detector"),
    )
    parameters = (
        Parameter("nord", int, 3, "Order of the read response fitted", range=(2, 3)),
        Parameter("satlevel", float, 0.0,
                  "Saturation level [ADU per DIT]; 0: found from the saturated flats", range=(0.0, None)),
        Parameter("satfrac", float, 0.85,
                  "Highest level fitted, as a fraction of the saturation level", range=(0.1, 1.0)),
        Parameter("clip", float, 5.0, "Rejection threshold of fit points [studentized residual]",
                  range=(1.0, 1000.0)),
        Parameter("lthr", float, 8.0, "Low bad-pixel threshold [robust sigma]", range=(1.0, 1000.0)),
        Parameter("hthr", float, 8.0, "High bad-pixel threshold [robust sigma]", range=(1.0, 1000.0)),
        Parameter("drift", bool, True, "Correct lamp drift with the FLAT_LAMP_CHECK frames"),
    )

    def process(self, frames, params) -> None:
        checks = self.frames_of("FLAT_LAMP_CHECK") if params.drift else []
        plan = plan_linearity(self.frames_of("FLAT_LAMP_LINEARITY"), self.frames_of("DARK_LINEARITY"),
                              checks, self.frames_of("DARK_CHECK"), params.nord, self.name, self.log)
        with open_fits(plan.flats[0].path, check=False) as hdul:
            extnames = detector_extnames(hdul)
        if not extnames:
            raise RecipeInputError(f"{self.name}: {plan.flats[0].path.name} has no image extensions")
        mjd = plan.flat_infos[0].mjd or 0.0
        raws = list(frames.raw())
        curves = {}  # detector number -> ChannelCurves (small), for the QC plot
        table_name = master_name(TABLE_CATEGORY, "linearity", mjd)
        bpm_name = master_name("MASTER_BPM", "linearity", mjd)
        with self.product(TABLE_CATEGORY, table_name, raws=raws) as table_file, \
                self.product("MASTER_BPM", bpm_name, raws=raws) as bpm_file, ExitStack() as files:
            flat_stack = files.enter_context(FrameStack([f.path for f in plan.flats]))
            dark_stack = files.enter_context(FrameStack(plan.dark_paths))
            check_stack = (files.enter_context(FrameStack([f.path for f in plan.checks]))
                           if len(plan.checks) >= 2 else None)  # fewer: no drift correction
            detectors = (read_detector_data(plan, extname, flat_stack, dark_stack, check_stack)
                         for extname in progress(extnames, "linearity"))  # read in this thread
            results = ordered_map(lambda data: analyse_detector(plan, data, params, self.name, self.log),
                                  detectors, self.threads)
            for position, (extname, result) in enumerate(zip(extnames, results, strict=True), start=1):
                header = result.header
                curves[chip_number(header, position)] = result.curves
                qc, bpm_qc = table_qc(result.curves), mask_qc(result)
                det_keys = header.__class__([c for c in header.cards if c.keyword.startswith("ESO DET")])
                table_file.add_table(extname, channel_table(result, params.nord), det_keys, qc)
                self.log.info("%s: LINEARITY %.2f %% (max %.2f), BADFRAC %.4f of %d", extname,
                              qc["LINEARITY"][0], qc["LINMAX"][0], bpm_qc["BADFRAC"][0], result.bpm.size)
                bpm_file.add_image(extname, result.bpm, header, bpm_qc, [f.path.name for f in plan.flats])
        if self.qc_plots:
            from vircamframe.qc.linearity import plot_linearity

            plot_linearity(table_file.path, curves)
