"""vircam_dark_combine: combine darks of one DIT/NDIT/read mode into a master dark."""

from __future__ import annotations

from vircamframe.errors import RecipeInputError
from vircamframe.fitsio import FrameStack, detector_extnames, open_fits
from vircamframe.keywords import chip_number, frame_info, require_same_setup
from vircamframe.naming import master_name, setup_label
from vircamframe.numerics.combine import COMBINE_METHODS, combine_stack
from vircamframe.numerics.dark import dark_qc
from vircamframe.parameters import Parameter
from vircamframe.progress import progress
from vircamframe.recipe import Input, Output, Recipe

DARK_TAGS = ("DARK", "DARK_LINEARITY", "DARK_GAIN", "DARK_CHECK", "DARK_DARKCURRENT")


class DarkCombine(Recipe):
    name = "vircam_dark_combine"
    version = "0.2.0"
    synopsis = "Combine dark frames of one DIT/NDIT into a master dark"
    description = (
        "Dark frames of a single DIT, NDIT and read mode are divided by NDIT (raw VIRCAM data\n"
        "are sums of NDIT reads) and combined one detector at a time by the CASU imcombine\n"
        "algorithm: frames put on a common level (additive scaling), values beyond +-thresh\n"
        "times the frame-wide robust noise rejected (never more than half of a pixel's values),\n"
        "an extra rejection cycle with each frame's own noise, then the median. The master dark\n"
        "is the dark level of one DIT, in ADU. QC per detector: DARKMED, DARKRMS, STRIPERMS,\n"
        "NHOTPIX and HOTFRAC (pixels hot_thresh sigma above the median), PARTICLE_RATE (values\n"
        "rejected high per second of exposure). Mixed DIT, NDIT or read mode is an error."
    )
    inputs = (
        Input(DARK_TAGS, "RAW", min=2, help="raw darks of one DIT/NDIT/read mode", chain_tags=("DARK",)),
    )
    group_by = ("tag", "dit", "ndit", "readmode", "night")
    products = (Output("MASTER_DARK", "dark level per DIT [ADU], one extension per detector"),)
    parameters = (
        Parameter("combtype", str, "median", "How surviving values are combined", choices=COMBINE_METHODS),
        Parameter("scaletype", str, "additive", "Level scaling of each frame before combining",
                  choices=("none", "additive")),
        Parameter("xrej", bool, True, "Extra rejection cycle with each frame's own noise"),
        Parameter("thresh", float, 5.0, "Rejection threshold [robust sigma]", range=(0.1, 1000.0)),
        Parameter("hot_thresh", float, 5.0, "Hot-pixel threshold above the median [robust sigma]",
                  range=(1.0, 1000.0)),
    )

    def process(self, frames, params) -> None:
        darks = list(frames.raw())
        infos = [frame_info(f.path) for f in darks]
        require_same_setup(infos, ("dit", "ndit", "readmode"), self.name)
        first = infos[0]
        with open_fits(darks[0].path, check=False) as hdul:
            extnames = detector_extnames(hdul)
        if not extnames:
            raise RecipeInputError(f"{self.name}: {darks[0].path.name} has no image extensions")
        filename = master_name("MASTER_DARK", setup_label(dit=first.dit, ndit=first.ndit), first.mjd or 0.0)
        paths = [f.path for f in darks]
        summary = {}
        with self.product("MASTER_DARK", filename, raws=darks) as product, FrameStack(paths) as stack:
            for position, extname in enumerate(progress(extnames, "dark combine"), start=1):
                cube, headers = stack.read(extname)
                cube /= first.ndit
                result = combine_stack(cube, params.combtype, params.scaletype, params.thresh,
                                       xrej=params.xrej)
                del cube
                qc, _ = dark_qc(result.image, result.nrejected_high, first.dit * first.ndit,
                                params.hot_thresh)
                summary[chip_number(headers[0], position)] = (result.image[::4, ::4].copy(), qc)
                product.add_image(extname, result.image, headers[0], qc.cards(), [p.name for p in paths])
        if self.qc_plots:
            from vircamframe.qc.dark import plot_dark

            plot_dark(product.path, summary)
