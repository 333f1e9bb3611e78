"""vircam_detector_noise: gain and read noise per detector by photon transfer."""

from __future__ import annotations

from astropy.table import Table

from vircamframe.calibrate import Linearity
from vircamframe.fitsio import FrameStack, detector_extnames, open_fits
from vircamframe.keywords import chip_number, frame_info, require_same_setup
from vircamframe.naming import master_name, setup_label
from vircamframe.numerics.noise import photon_transfer
from vircamframe.parameters import Parameter
from vircamframe.progress import progress
from vircamframe.recipe import Input, Output, Recipe

UNITS = {"GAIN": "e-/ADU", "READNOISE": "e-", "READNOISE_ADU": "ADU", "GAIN_SCATTER": "e-/ADU",
         "SIGNAL": "ADU"}


class DetectorNoise(Recipe):
    name = "vircam_detector_noise"
    version = "0.1.0"
    synopsis = "Gain and read noise of each detector from two darks and two lamp flats"
    description = (
        "Photon transfer (Janesick) on a pair of lamp flats and a pair of darks of one DIT and\n"
        "NDIT: both flats minus the mean dark are linearised with the channel table (the\n"
        "non-linearity compresses the variance: without it the gain is biased high by up to\n"
        "10 %), the flat and dark differences are destriped, and in each of ncells x ncells\n"
        "cells gain = signal / (flat-difference variance - dark-difference variance) and read\n"
        "noise = sigma(dark difference)/sqrt(2 NDIT); the medians over cells are kept. As in\n"
        "CASU's recipe, the read noise holds the dark current's shot noise over the darks' DIT\n"
        "(1-2 % at 8 s): the signal-independent noise of a frame of that DIT. The table has one\n"
        "row per detector: GAIN [e-/ADU], READNOISE [e-], READNOISE_ADU."
    )
    inputs = (
        Input("DARK_GAIN", "RAW", min=2, max=2, help="two darks of the gain DIT/NDIT"),
        Input("FLAT_LAMP_GAIN", "RAW", min=2, max=2, help="two lamp flats of the same DIT/NDIT"),
        Input("MASTER_CHANNEL_TABLE", "CALIB", min=0, max=1, help="linearity (strongly advised)"),
    )
    products = (Output("MASTER_READGAIN_TABLE", "gain and read noise per detector"),)
    parameters = (
        Parameter("ncells", int, 8, "Cells per side for the statistics", range=(1, 64)),
    )

    def process(self, frames, params) -> None:
        darks, flats = list(frames.by_tag("DARK_GAIN")), list(frames.by_tag("FLAT_LAMP_GAIN"))
        infos = [frame_info(f.path) for f in darks + flats]
        require_same_setup(infos, ("dit", "ndit", "readmode"), self.name)
        dit, ndit = infos[0].dit, infos[0].ndit
        tables = frames.by_tag("MASTER_CHANNEL_TABLE")
        linearity = Linearity(tables[0].path) if len(tables) else None
        if linearity is None:
            self.log.warning("no MASTER_CHANNEL_TABLE: gains are not linearised and will be high")
        with open_fits(darks[0].path, check=False) as hdul:
            extnames = detector_extnames(hdul)
        rows = []
        with FrameStack([f.path for f in darks + flats]) as stack:
            for position, extname in enumerate(progress(extnames, "detector noise"), start=1):
                rows.append(self._detector(stack, extname, position, dit, ndit, linearity, params))
        table = Table(rows=rows, names=("EXTNAME", "DETECTOR", "GAIN", "READNOISE", "READNOISE_ADU",
                                        "GAIN_SCATTER", "SIGNAL"))
        filename = master_name("MASTER_READGAIN_TABLE", setup_label(dit=dit, ndit=ndit), infos[0].mjd or 0.0)
        with self.product("MASTER_READGAIN_TABLE", filename, raws=darks + flats) as product:
            product.add_table("READGAIN", table, units=UNITS)
        if self.qc_plots:
            from vircamframe.qc.noise import plot_readgain

            plot_readgain(product.path, table)

    def _detector(self, stack, extname, position, dit, ndit, linearity, params) -> tuple:
        """One row of the table: photon transfer on one detector."""
        cube, headers = stack.read(extname)
        dark_mean = 0.5 * (cube[0] + cube[1])
        signals = [(flat - dark_mean) / ndit for flat in cube[2:]]
        if linearity is not None:
            signals = [linearity.apply(s, dit, extname) for s in signals]
        result = photon_transfer(signals[0] * ndit, signals[1] * ndit, cube[0], cube[1],
                                 ndit=ndit, ncells=params.ncells)
        return (extname, chip_number(headers[0], position), result.gain, result.read_noise,
                result.read_noise_adu, result.gain_scatter, result.signal)
