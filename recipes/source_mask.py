"""vircam_source_mask: flag the sources of calibrated pawprints for sky estimation."""

from __future__ import annotations

import numpy as np

from vircamframe.catalog_masks import BrightStars, DetectorSky, read_rc3
from vircamframe.errors import RecipeInputError, VircamError
from vircamframe.fitsio import FrameStack, detector_extnames, open_fits, read_primary_header
from vircamframe.keywords import chip_number
from vircamframe.naming import per_frame_name
from vircamframe.numerics.destripe import flatten_rows
from vircamframe.parameters import Parameter
from vircamframe.progress import progress
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.registry import strategy_names


class SourceMask(Recipe):
    name = "vircam_source_mask"
    version = "0.2.0"
    synopsis = "Source masks of calibrated pawprints: masker plugin, bright stars and galaxies"
    description = (
        "For each basic-calibrated pawprint (ADU per DIT, sky not subtracted), every detector\n"
        "is masked in up to three steps; the mask (1 = source) feeds sky estimation.\n"
        "\n"
        "1. Sources: the source masker chosen with --mask_method (a plugin strategy), on the\n"
        "   detector with its row stripes removed (row medians), so that they are not flagged.\n"
        "   'builtin' estimates the background on a mesh of mask_mesh pixels, smooths the\n"
        "   image with a 2-pixel Gaussian (a matched filter for stars), flags pixels\n"
        "   mask_thresh sigma of the smoothed noise above it, keeps connected regions of at\n"
        "   least mask_minarea pixels and grows them by mask_dilate pixels; its defaults (1.5\n"
        "   sigma, 3 pixels, 1 pixel) cover the pixels that sources brighten by more than the noise\n"
        "   rather than only significant detections, because faint wings bias a sky built\n"
        "   from many frames. 'noisechisel' runs GNU Astro NoiseChisel (package gnuastro),\n"
        "   which grows its detections into their outskirts itself (mask_dilate=0 suits it).\n"
        "2. Bright stars (mask_bright_stars, with a REFCAT_PHOTOM 2MASS table): stars brighter\n"
        "   than bright_star_mag in the frame's filter (2MASS J, H, Ks through ESO's colour\n"
        "   equations) get a circle out to where a Moffat (beta 1.5: scattered-light aureole)\n"
        "   profile of their flux falls to a quarter of the sky noise, at least twice the\n"
        "   seeing FWHM. The flux is scaled from the measured sky level and the band's typical\n"
        "   sky brightness, so no zero point is needed; positions come from the detector WCS.\n"
        "3. Bright galaxies (mask_bright_galaxies): RC3 galaxies (VII/155, shipped with the\n"
        "   package) with a D25 diameter of at least galaxy_d25_min arcmin get their D25\n"
        "   ellipse (axis ratio from R25, position angle east of north).\n"
        "\n"
        "QC per detector: MASKFRAC (fraction of pixels masked), NBRIGHT (bright stars masked),\n"
        "NGALAXY (galaxies masked). With QC plots: a focal-plane mosaic of the masks and of\n"
        "the masked fraction per detector, and the QC values per detector."
    )
    inputs = (
        Input("BASIC_CALIBRATED_SCI", "RAW", min=1, help="basic-calibrated pawprints"),
        Input("REFCAT_PHOTOM", "CALIB", min=0, max=1,
              help="2MASS PSC table (VizieR II/246 columns RAJ2000 DEJ2000 Jmag Hmag Kmag)"),
    )
    products = (Output("MASTER_OBJMASK", "source mask per pawprint (1 = source)", per_frame=True),)
    group_by = ("frame",)
    parameters = (
        Parameter("mask_method", str, "builtin", "Source masker plugin",
                  choices=strategy_names("source_masker")),
        Parameter("mask_thresh", float, 1.5, "Detection threshold [sigma]", range=(0.5, 100.0)),
        Parameter("mask_minarea", int, 3, "Minimum source area [pixels]", range=(1, 10000)),
        Parameter("mask_dilate", int, 1, "Growth radius of each source [pixels]", range=(0, 200)),
        Parameter("mask_mesh", int, 64, "Background mesh size [pixels]", range=(8, 4096)),
        Parameter("mask_bright_stars", bool, True,
                  "Mask bright 2MASS stars (when a REFCAT_PHOTOM is given)"),
        Parameter("bright_star_mag", float, 12.0, "Bright-star limit in the frame's filter [Vega mag]",
                  range=(-2.0, 20.0)),
        Parameter("mask_bright_galaxies", bool, False, "Mask RC3 galaxies by their D25 ellipses"),
        Parameter("galaxy_d25_min", float, 1.0, "Smallest RC3 D25 diameter masked [arcmin]",
                  range=(0.0, 1000.0)),
    )

    def process(self, frames, params) -> None:
        masker = self.use_strategy("source_masker", params.mask_method)
        stars = self._bright_star_catalogue(params)
        galaxies = read_rc3(params.galaxy_d25_min) if params.mask_bright_galaxies else None
        plots = None
        if self.qc_plots:
            from vircamframe.qc import masks as plots  # matplotlib only when plotting
        for frame in frames.raw():
            primary = read_primary_header(frame.path)
            bright = stars.brighter_than(params.bright_star_mag, primary, frame.path) if stars else None
            with open_fits(frame.path, check=False) as hdul:
                extnames = detector_extnames(hdul)
            filename = per_frame_name("MASTER_OBJMASK", frame.name)
            summary = {}
            with self.product("MASTER_OBJMASK", filename, raws=[frame]) as product, \
                    FrameStack([frame.path]) as pawprint:
                for position, extname in enumerate(progress(extnames, f"mask {frame.name}"), start=1):
                    cube, (header,) = pawprint.read(extname, require_valid=False)  # dead: empty mask
                    image = cube[0]
                    try:
                        # No variance yet: the basic frame has none, and a model from GAIN and
                        # RDNOISE would ignore the flat field; maskers measure the noise.
                        mask = masker(flatten_rows(image), None, threshold=params.mask_thresh,
                                      min_area=params.mask_minarea, dilate=params.mask_dilate,
                                      mesh_size=params.mask_mesh)
                    except VircamError as err:
                        raise type(err)(f"{frame.name}[{extname}]: {err}") from None
                    nstars = ngal = 0
                    if (bright is not None or galaxies is not None) and np.isfinite(image).any():
                        sky = DetectorSky.from_header(header, image.shape, f"{frame.name}[{extname}]")
                        if bright is not None:
                            nstars = bright.mask(mask, image, sky, primary)
                        if galaxies is not None:
                            ngal = galaxies.mask(mask, sky)
                    qc = {
                        "MASKFRAC": (float(mask.mean()), "fraction of pixels masked"),
                        "NBRIGHT": (nstars, "bright 2MASS stars masked"),
                        "NGALAXY": (ngal, "RC3 galaxies masked"),
                    }
                    product.add_image(extname, mask, header, qc, [frame.name])
                    if plots is not None:
                        summary[chip_number(header, position)] = (plots.mask_thumbnail(mask), qc)
            if plots is not None:
                plots.plot_masks(product.path, summary)

    def _bright_star_catalogue(self, params) -> BrightStars | None:
        refcats = self.frames_of("REFCAT_PHOTOM")
        if not params.mask_bright_stars:
            return None
        if not refcats:
            if params.source("mask_bright_stars") != "default":
                raise RecipeInputError(f"{self.name}: mask_bright_stars=true needs a REFCAT_PHOTOM frame")
            return None
        return BrightStars.read(refcats[0].path)
