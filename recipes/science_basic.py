"""vircam_science_basic: instrument signature removal of raw science pawprints."""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np

from vircamframe.association import select_calibration
from vircamframe.calibrate import CalibrationImage, Linearity, PawprintCalibration
from vircamframe.detector_table import DetectorConstants, packaged_constants, read_readgain_table
from vircamframe.fitsio import FrameStack, detector_extnames, open_fits
from vircamframe.keywords import chip_number, frame_info
from vircamframe.naming import per_frame_name
from vircamframe.numerics.pawprint import effective_gain, effective_read_noise, pawprint_variance
from vircamframe.numerics.stats import robust_stats
from vircamframe.parameters import Parameter
from vircamframe.progress import progress
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.wcs import replace_wcs, tan_header, wcs_difference

SCIENCE_TAGS = ("OBJECT", "SKY", "STD_FLUX")


class ScienceBasic(Recipe):
    name = "vircam_science_basic"
    version = "0.1.0"
    synopsis = "Basic calibration of science pawprints: NDIT, dark, linearity, flat, gain, WCS"
    description = (
        "Each raw OBJECT, SKY or STD_FLUX frame is divided by NDIT, dark-subtracted with the\n"
        "MASTER_DARK of its DIT/NDIT/read mode, linearised per read-out channel\n"
        "(MASTER_CHANNEL_TABLE), divided by the MASTER_TWILIGHT_FLAT of its filter and multiplied\n"
        "by that flat's inter-detector gain correction (QC GAINCOR), so that all 16 detectors\n"
        "share one gain. Pixels flagged by any MASTER_BPM given, and pixels at or above the\n"
        "detector's saturation, become NaN. When several darks or flats are given, the one\n"
        "matching the frame closest in time is used. Each detector header gets GAIN [e-/ADU]\n"
        "and RDNOISE [e-] of the calibrated image (gain x NDIT / GAINCOR, read noise x\n"
        "sqrt(NDIT): RDNOISE/GAIN is its read noise in ADU), from MASTER_READGAIN_TABLE when\n"
        "given, else the packaged CASU values, and SATURATE [ADU]. The raw ZPN WCS is replaced\n"
        "by a TPV one (TAN plus polynomial, fitted over the chip: QC TANRES is its largest\n"
        "deviation in arcsec) that SExtractor, SCAMP and SWarp read. A detector without signal\n"
        "(dead: constant or unreadable pixels) is written as NaN with a warning.\n"
        "With --write_variance, BASIC_VARIANCE_SCI holds each pixel's variance [ADU^2]."
    )
    inputs = (
        Input(SCIENCE_TAGS, "RAW", min=1, help="raw science pawprints (any DIT/NDIT/filter)",
              chain_tags=("OBJECT", "SKY")),  # standards are for a standard-star chain
        Input("MASTER_DARK", "CALIB", min=1, help="master darks; each frame takes its DIT/NDIT"),
        Input("MASTER_TWILIGHT_FLAT", "CALIB", min=1, help="master flats; each frame takes its filter"),
        Input("MASTER_CHANNEL_TABLE", "CALIB", min=0, max=1, help="linearity (strongly advised)"),
        Input("MASTER_BPM", "CALIB", min=0, help="bad pixels (all given are combined)"),
        Input("MASTER_READGAIN_TABLE", "CALIB", min=0, max=1, help="measured gain and read noise"),
    )
    products = (
        Output("BASIC_CALIBRATED_SCI", "calibrated pawprint, ADU per DIT, NaN = bad", per_frame=True),
        Output("BASIC_VARIANCE_SCI", "its variance per pixel [ADU^2] (with --write_variance)", per_frame=True,
               when=lambda params: params["write_variance"]),
    )
    group_by = ("frame",)
    parameters = (
        Parameter("tan_degree", int, 3, "Polynomial degree of the TPV WCS (1 = pure TAN)", range=(1, 3)),
        Parameter("write_variance", bool, False, "Also write the variance of each pawprint"),
    )

    def process(self, frames, params) -> None:
        calibs = list(frames.calib())
        tables = frames.by_tag("MASTER_CHANNEL_TABLE")
        linearity = Linearity(tables[0].path) if len(tables) else None
        if linearity is None:
            self.log.warning("no MASTER_CHANNEL_TABLE: pawprints are not linearised")
        bpm_frames = list(frames.by_tag("MASTER_BPM"))
        bpms = [CalibrationImage(f.path) for f in bpm_frames]
        readgain_frames = list(frames.by_tag("MASTER_READGAIN_TABLE"))
        readgain = read_readgain_table(readgain_frames[0].path) if readgain_frames else {}
        if not readgain:
            self.log.info("no MASTER_READGAIN_TABLE: packaged CASU gains and read noises are used")
        calibrations: dict = {}  # one per dark and flat: each calibration detector is read once
        jobs = []
        for frame in frames.raw():
            info = frame_info(frame.path)
            dark = select_calibration(info, calibs, "MASTER_DARK", self.name)
            flat = select_calibration(info, calibs, "MASTER_TWILIGHT_FLAT", self.name)
            if (dark.path, flat.path) not in calibrations:
                calibrations[dark.path, flat.path] = PawprintCalibration(
                    CalibrationImage(dark.path), CalibrationImage(flat.path), linearity, bpms)
            calibration = calibrations[dark.path, flat.path]
            jobs.append((frame, info, calibration, [dark, flat, *tables, *bpm_frames, *readgain_frames]))
        with open_fits(jobs[0][0].path, check=False) as hdul:
            extnames = detector_extnames(hdul)
        with ExitStack() as stack:
            # Detector by detector over all frames, so each calibration detector is read once;
            # every frame's products are open together and grow by one extension per detector.
            outputs = [self._open(stack, frame, used, params) for frame, _, _, used in jobs]
            for position, extname in enumerate(progress(extnames, "basic calibration"), start=1):
                for (frame, info, calibration, _), files in zip(jobs, outputs, strict=True):
                    cube, (header,) = files[0].read(extname, require_valid=False)
                    self._detector(cube[0], header, position, extname, frame, info, calibration, readgain,
                                   *files[1:], params)

    def _open(self, stack: ExitStack, frame, used, params) -> tuple:
        """The raw reader and the product files of one frame."""
        raw = stack.enter_context(FrameStack([frame.path]))
        out = stack.enter_context(self.product(
            "BASIC_CALIBRATED_SCI", per_frame_name("BASIC_CALIBRATED_SCI", frame.name), [frame], used))
        variance_out = stack.enter_context(self.product(
            "BASIC_VARIANCE_SCI", per_frame_name("BASIC_VARIANCE_SCI", frame.name), [frame], used,
        )) if params.write_variance else None
        return raw, out, variance_out

    def _detector(self, raw, header, position, extname, frame, info, calibration, readgain, out,
                  variance_out, params) -> None:
        """Calibrate one detector of one frame and add it to the frame's products."""
        chip = chip_number(header, position)
        constants = self._constants(chip, readgain, info.filter)
        dead = _is_dead(raw)
        image = calibration.apply(raw, info.ndit, info.dit, extname, constants.saturation)
        if dead:
            self.log.warning("%s detector %d: no signal (dead), written as NaN", frame.name, chip)
            image[:] = np.nan
        gaincor = calibration.gaincor(extname)
        header, tanres = self._header(header, image.shape, constants, info, gaincor,
                                      calibration.dark_level(extname), params.tan_degree)
        level = robust_stats(image)[0] if not dead else float("nan")
        qc = {"MEDIAN": (level, "[ADU] median level per DIT"),
              "TANRES": (tanres, "[arcsec] largest offset of the TPV from the raw WCS")}
        out.add_image(extname, image, header, qc, [frame.name])
        if variance_out is not None:
            variance = pawprint_variance(image, calibration.flat.detector(extname), constants.gain,
                                         constants.read_noise_adu, info.ndit, gaincor)
            variance_out.add_image(extname, variance, header, None, [frame.name])

    def _constants(self, chip: int, readgain: dict, band: str | None) -> DetectorConstants:
        packaged = packaged_constants(chip, band or "J")
        if chip not in readgain:
            return packaged
        gain, noise = readgain[chip]
        return DetectorConstants(gain, noise, packaged.saturation, "MASTER_READGAIN_TABLE")

    @staticmethod
    def _header(header, shape, constants, info, gaincor, dark_level, degree):
        """The detector header (TPV WCS, GAIN, RDNOISE, SATURATE) and the TPV's largest error."""
        wcs_cards = tan_header(header, shape, degree=degree)
        tanres = wcs_difference(header, wcs_cards, shape)
        header = replace_wcs(header, wcs_cards)
        saturate = (constants.saturation - dark_level) * gaincor  # linear, unit flat: a lower bound
        header["BUNIT"] = ("ADU", "per DIT")
        header["GAIN"] = (effective_gain(constants.gain, info.ndit, gaincor),
                          f"[e-/ADU] effective ({constants.source})")
        header["RDNOISE"] = (effective_read_noise(constants.read_noise, info.ndit),
                             "[e-] effective; RDNOISE/GAIN = noise floor in ADU")
        header["SATURATE"] = (saturate, "[ADU] saturation level of this image")
        header["HIERARCH ESO DRS GAINCOR"] = (gaincor, "inter-detector gain correction applied")
        return header, tanres


def _is_dead(raw: np.ndarray) -> bool:
    """A detector without signal: no finite pixel, or a constant read-out."""
    sample = raw[::4, ::4]
    finite = sample[np.isfinite(sample)]
    return finite.size == 0 or float(np.ptp(finite)) == 0.0
