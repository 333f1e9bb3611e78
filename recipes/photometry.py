"""vircam_photometry: pawprints photometrically calibrated against 2MASS, put on zero point 25."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

from vircamframe.association import by_parent
from vircamframe.errors import ParameterError, QualityGateError, RecipeInputError
from vircamframe.fitsio import open_fits
from vircamframe.naming import master_name, per_frame_name, setup_label
from vircamframe.parameters import Parameter
from vircamframe.passbands import EXTINCTION, NEAREST_2MASS, TWOMASS_WINDOW
from vircamframe.photometry import (
    ILLUMINATION_GRID,
    airmass,
    calibrate,
    correction_map,
    detector_illumination_cards,
    frame_band,
    illumination_cards,
    scale_to_zero_point,
)
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.registry import strategy_names
from vircamframe.tags import SKY_TARGETS


class Photometry(Recipe):
    name = "vircam_photometry"
    version = "0.1.0"
    synopsis = "Zero points against 2MASS, illumination correction, pawprints scaled to ZP 25"
    description = (
        "All pawprints given (one filter, one night) are calibrated together. SExtractor\n"
        "measures every source in a ladder of apertures; the pawprint's ASTROM_HEADER places\n"
        "it on the sky, and it is matched (match_radius) to 2MASS stars of quality A in both\n"
        "bands of the filter's ESO colour equation (so Z and Y calibrate too), within the\n"
        "magnitude window (mag_window; 'auto': the nearest 2MASS band's 9-15.8 J, 8.5-15.1 H,\n"
        "8-14.3 Ks). Flagged, saturated (peak above 80 % of SATURATE), elongated and crowded\n"
        "sources are left out, and so are stars below min_snr. The photometric aperture is\n"
        "the one nearest twice the median seeing; its correction to one of ten times the seeing\n"
        "is fitted to the bright isolated stars of all pawprints as a linear function of each\n"
        "pawprint's seeing. Star zero points (2MASS minus instrumental) are fitted, weighted\n"
        "and kappa-clipped, as one zero point per pawprint plus per detector an illumination\n"
        "correction common to all pawprints: one offset per detector (the flat's gain\n"
        "harmonisation error) plus, with illumination_correction_mode 'variable', a polynomial\n"
        "of degree illumcorr_degree over the whole focal plane (scattered light in the flat is\n"
        "smooth across it; lowered with fewer than 40 stars per term); 'constant' keeps the\n"
        "offsets only. The correction's mean over the focal plane is zero. PHOTCAL_SCI is each\n"
        "pawprint divided by the illumination correction and scaled to zero point target_zp,\n"
        "with the astrometric solution in its headers; GAIN is divided and SATURATE multiplied\n"
        "by the mean scale of each detector (RDNOISE, in e-, is unchanged). Its primary header:\n"
        "QC MAGZPT (the measured zero point [mag for 1 ADU per DIT]), MAGZERR, MAGZPT0 (at\n"
        "airmass 0 with the filter's extinction, DRS EXTINCT), NSTARS, APCOR, APDIAM, FWHM, and\n"
        "PHOTZP (= target_zp). Per detector: QC MAGZPT and NSTARS of its own stars after the\n"
        "correction, DRS ZPSCALE. MASTER_ILLUMCORR holds per detector the correction as a flux\n"
        "factor on a 64 x 64 grid with its offset and focal-plane geometry (the polynomial in\n"
        "the primary header), and a table of every matched star (STARS). Fewer than min_stars\n"
        "used stars in a pawprint fails the run with a one-line error."
    )
    inputs = (
        Input("SKYSUB_SCI", "RAW", min=1, help="sky-subtracted pawprints of one filter and night"),
        Input("ASTROM_HEADER", "CALIB", min=1, help="the astrometric solution of each pawprint"),
        Input("WEIGHT_SCI", "CALIB", min=0, help="their weight maps (advised)"),
        Input("REFCAT_PHOTOM", "CALIB", min=0, max=1, help="2MASS PSC table (VizieR II/246 columns)"),
    )
    products = (
        Output(
            "PHOTCAL_SCI",
            "pawprint on zero point target_zp, illumination-corrected",
            per_frame=True,
            for_tags=SKY_TARGETS,
        ),
        Output("MASTER_ILLUMCORR", "illumination correction per detector and the matched stars"),
    )
    group_by = ("filter", "night")
    parameters = (
        Parameter(
            "refcat_provider",
            str,
            "local",
            "Reference-catalogue provider",
            choices=strategy_names("reference_catalog"),
        ),
        Parameter(
            "illumination_correction_mode",
            str,
            "variable",
            "Illumination correction",
            choices=("variable", "constant"),
        ),
        Parameter(
            "illumcorr_degree", int, 2, "Degree of the variable correction over the focal plane", range=(1, 6)
        ),
        Parameter("match_radius", float, 1.0, "Largest source-2MASS distance [arcsec]", range=(0.05, 10.0)),
        Parameter(
            "mag_window", str, "auto", "VIRCAM magnitudes of the 2MASS stars used: 'auto' or 'BRIGHT,FAINT'"
        ),
        Parameter("detect_thresh", float, 5.0, "SExtractor detection threshold [sigma]", range=(1.0, 1000.0)),
        Parameter(
            "min_snr",
            float,
            50.0,
            "Fewest signal-to-noise of a star used for zero points",
            range=(3.0, 10000.0),
        ),
        Parameter("kappa", float, 3.0, "Clipping threshold [robust sigma]", range=(1.5, 10.0)),
        Parameter("min_stars", int, 5, "Fewest stars a pawprint's zero point may rest on", range=(1, 100000)),
        Parameter(
            "target_zp", float, 25.0, "Zero point of the products [mag for 1 ADU per DIT]", range=(10.0, 40.0)
        ),
    )

    def process(self, frames, params) -> None:
        images = list(frames.raw())
        calibs = list(frames.calib())
        astrometry = by_parent(images, calibs, "ASTROM_HEADER", self.name, required=True)
        weights = by_parent(images, calibs, "WEIGHT_SCI", self.name, required=False)
        bands = {frame_band(f.path) for f in images}
        if len(bands) > 1:
            raise RecipeInputError(
                f"{self.name}: SKYSUB_SCI frames of several filters ({', '.join(sorted(bands))});"
                " give one filter per run"
            )
        band = bands.pop()
        mag_window = _window(params.mag_window, band)
        provider = self.use_strategy("reference_catalog", params.refcat_provider)
        query = functools.partial(provider, files=[f.path for f in self.frames_of("REFCAT_PHOTOM")])
        degree = params.illumcorr_degree if params.illumination_correction_mode == "variable" else 0
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".photometry.", dir=self.output_dir) as work:
            solution = calibrate(
                [f.path for f in images],
                [w.path if w is not None else None for w in weights],
                [a.path for a in astrometry],
                query,
                Path(work),
                band=band,
                degree=degree,
                match_radius=params.match_radius,
                mag_window=mag_window,
                detect_thresh=params.detect_thresh,
                min_snr=params.min_snr,
                kappa=params.kappa,
                log=self.log,
            )
        used = np.bincount(
            np.asarray(solution.stars["FRAME"])[np.asarray(solution.stars["USED"])], minlength=len(images)
        )
        for frame, n in zip(images, used, strict=True):
            if n < params.min_stars:
                raise QualityGateError(
                    f"{self.name}: {frame.name}: {n} 2MASS stars left for its zero point "
                    f"(min_stars={params.min_stars}): too few matches, wrong field or bad astrometry?"
                )
        self.log.info(
            "zero points: %s; star scatter %.4f mag; focal-plane degree %d",
            ", ".join(f"{zp:.4f}" for zp in solution.fit.frame_zp),
            solution.fit.scatter,
            solution.fit.fp_degree,
        )
        illum = self._write_illumination(images, solution, band)
        for index, (frame, astrom, weight) in enumerate(zip(images, astrometry, weights, strict=True)):
            self._write_pawprint(index, frame, astrom, weight, illum, solution, band, params.target_zp)

    def _write_illumination(self, images, solution, band):
        fit = solution.fit
        name = master_name("MASTER_ILLUMCORR", setup_label(**{"": band}), _mjd(images[0].path))
        extra = {
            "ESO DRS ILLUM MODE": (self.params.illumination_correction_mode, "illumination correction"),
            "ESO QC ZPSCATTER": (fit.scatter, "[mag] robust rms of star zero points"),
            "ESO QC NSTARS": (int(np.count_nonzero(solution.stars["USED"])), "stars used"),
            **illumination_cards(fit),
        }
        used = np.asarray(solution.stars["USED"], bool)
        with self.product("MASTER_ILLUMCORR", name, images, extra=extra) as out:
            for detector, shape in sorted(solution.shapes.items()):
                delta = correction_map(fit, detector, shape, ILLUMINATION_GRID)
                n_det = int(np.count_nonzero(used & (solution.stars["DETECTOR"] == detector)))
                qc = {
                    "ILLUMRMS": (float(np.std(delta)), "[mag] rms of the correction over the detector"),
                    "ILLUMMEAN": (float(np.mean(delta)), "[mag] mean correction of the detector"),
                    "NSTARS": (n_det, "stars used on this detector"),
                }
                header = _header(detector_illumination_cards(fit, detector, shape))
                out.add_image(f"DET1.CHIP{detector}", (10 ** (-0.4 * delta)).astype(np.float32), header, qc)
            stars = solution.stars.copy()
            stars["FILE"] = [solution.names[i] for i in stars["FRAME"]]
            out.add_table("STARS", stars)
        if self.qc_plots:
            from vircamframe.qc.photometry import plot_photometry

            plot_photometry(out.path, solution)
        return out.path

    def _write_pawprint(self, index, frame, astrom, weight, illum, solution, band, target_zp) -> None:
        zp, zp_err = float(solution.fit.frame_zp[index]), float(solution.fit.frame_zp_err[index])
        diameter, apcor, _, fwhm = solution.apertures[index]
        am = airmass(frame.path)
        n_used = int(np.count_nonzero(solution.stars["USED"] & (solution.stars["FRAME"] == index)))
        qc = {
            "MAGZPT": (zp, "[mag] zero point for 1 ADU per DIT, before scaling"),
            "MAGZERR": (zp_err, "[mag] error of MAGZPT"),
            "MAGZPT0": (zp + EXTINCTION[band] * am, "[mag] MAGZPT at airmass 0"),
            "NSTARS": (n_used, "2MASS stars used"),
            "APCOR": (apcor, "[mag] aperture correction to total"),
            "APDIAM": (diameter, "[pixel] photometric aperture diameter"),
            "FWHM": (fwhm, "[pixel] median stellar FWHM"),
        }
        extra = {f"ESO QC {key}": value for key, value in qc.items()}
        extra.update(
            {
                "PHOTZP": (target_zp, "[mag] zero point of the image (ADU per DIT)"),
                "ESO DRS EXTINCT": (EXTINCTION[band], "[mag/airmass] extinction used for MAGZPT0"),
                "ESO DRS AIRMASS": (am, "mean airmass of the pawprint"),
            }
        )
        per_detector = solution.detector_zero_points(index)
        calibs = [astrom, *([weight] if weight is not None else []), *self.frames_of("REFCAT_PHOTOM")]
        with (
            open_fits(frame.path, check=False) as hdul,
            open_fits(astrom.path, check=False) as wcs_hdul,
            self.product(
                "PHOTCAL_SCI", per_frame_name("PHOTCAL_SCI", frame.name), [frame], calibs, extra=extra
            ) as out,
        ):
            for hdu in hdul[1:]:
                if hdu.data is None:
                    continue
                detector = int(hdu.header["ESO DET CHIP NO"])
                data, header = scale_to_zero_point(
                    hdu.data, hdu.header, wcs_hdul[hdu.name].header, solution.fit, detector, zp, target_zp
                )
                det_zp, det_err, det_n = per_detector.get(detector, (float("nan"), float("nan"), 0))
                det_qc = {"NSTARS": (det_n, "2MASS stars used on this detector")}
                if np.isfinite(det_zp):  # a detector without stars has the frame's zero point only
                    det_qc["MAGZPT"] = (det_zp, "[mag] this detector's stars, illumination-corrected")
                    det_qc["MAGZERR"] = (det_err, "[mag] error of MAGZPT")
                out.add_image(hdu.name, data, header, det_qc, [frame.name, Path(illum).name])


def _window(text: str, band: str) -> tuple[float, float]:
    """The magnitude window of parameter ``mag_window`` for ``band``."""
    if text.strip().lower() == "auto":
        return TWOMASS_WINDOW[NEAREST_2MASS[band]]
    try:
        bright, faint = (float(v) for v in text.split(","))
    except ValueError:
        raise ParameterError(
            f"vircam_photometry: mag_window must be 'auto' or 'BRIGHT,FAINT' magnitudes, not {text!r}"
        ) from None
    return bright, faint


def _mjd(path: Path) -> float:
    from vircamframe.keywords import frame_info

    return frame_info(path).mjd or 0.0


def _header(cards):
    from astropy.io import fits

    header = fits.Header()
    for key, (value, comment) in cards.items():
        header[f"HIERARCH {key}" if key.startswith("ESO ") else key] = (value, comment)
    return header
