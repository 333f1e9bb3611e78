"""vircam_source_mask: flag the sources of calibrated pawprints for sky estimation."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import resources

import numpy as np
from astropy.io import fits

from vircamframe.errors import FitsInputError, RecipeInputError, VircamError
from vircamframe.fitsio import FrameStack, detector_extnames, open_fits, read_primary_header
from vircamframe.keywords import chip_number
from vircamframe.naming import per_frame_name
from vircamframe.numerics.bright_masks import (
    angular_distance,
    mask_bright_stars,
    mask_galaxies,
    rc3_semi_axes,
)
from vircamframe.numerics.destripe import flatten_rows
from vircamframe.numerics.stats import robust_stats
from vircamframe.parameters import Parameter
from vircamframe.passbands import EXTINCTION, SKY_BRIGHTNESS, band_name, vircam_magnitude
from vircamframe.progress import progress
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.registry import strategy_names

TWOMASS_COLUMNS = ("RAJ2000", "DEJ2000", "Jmag", "Hmag", "Kmag")
DEFAULT_SEEING = 1.0  # arcsec, when the header has no DIMM seeing
MIN_FWHM_PIXELS = 2.0  # VIRCAM's PSF is never narrower than ~2 pixels (0.34"/pixel)


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
    products = (Output("MASTER_OBJMASK", "source mask per pawprint (1 = source)"),)
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


@dataclass
class DetectorSky:
    """A detector's celestial WCS, its centre, radius and pixel scale on the sky."""

    world_to_pixel: object
    ra: float
    dec: float
    radius: float  # degrees from the centre to a corner
    pixel_scale: float  # arcsec per pixel at the centre

    @classmethod
    def from_header(cls, header: fits.Header, shape: tuple[int, int], where: str) -> DetectorSky:
        from astropy.wcs import WCS, FITSFixedWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            try:
                wcs = WCS(header)
            except Exception as err:  # astropy raises a zoo of types for broken WCS keywords
                raise FitsInputError(f"{where}: unusable WCS ({err})") from None
        if not wcs.has_celestial:
            raise FitsInputError(f"{where}: no celestial WCS, needed for bright-star and galaxy masks")
        ny, nx = shape
        cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
        (ra, ra_x, ra_y), (dec, dec_x, dec_y) = wcs.all_pix2world([cx, cx + 1, cx], [cy, cy, cy + 1], 0)
        cosd = np.cos(np.radians(dec))
        jacobian = np.array([[(ra_x - ra) * cosd, (ra_y - ra) * cosd], [dec_x - dec, dec_y - dec]])
        scale = float(np.sqrt(abs(np.linalg.det(jacobian)))) * 3600.0
        return cls(lambda r, d: wcs.all_world2pix(r, d, 0), float(ra), float(dec),
                   1.05 * np.hypot(nx, ny) / 2.0 * scale / 3600.0, scale)


@dataclass
class BrightStars:
    """A 2MASS PSC table (VizieR column names) for bright-star masks."""

    ra: np.ndarray
    dec: np.ndarray
    j: np.ndarray
    h: np.ndarray
    ks: np.ndarray
    path: str = ""

    @classmethod
    def read(cls, path) -> BrightStars:
        """Read the needed columns; one-line errors name the file."""
        with open_fits(path) as hdul:
            table = next((hdu for hdu in hdul[1:] if isinstance(hdu, fits.BinTableHDU | fits.TableHDU)),
                         None)
            if table is None:
                raise RecipeInputError(f"{path}: REFCAT_PHOTOM is not a FITS table (no table extension)")
            missing = [c for c in TWOMASS_COLUMNS if c not in table.columns.names]
            if missing:
                raise RecipeInputError(
                    f"{path}: REFCAT_PHOTOM lacks column(s) {', '.join(missing)} "
                    f"(2MASS PSC with VizieR II/246 names needed: {' '.join(TWOMASS_COLUMNS)})"
                )
            cols = [np.ma.filled(np.ma.asarray(table.data[c], dtype=float), np.nan) for c in TWOMASS_COLUMNS]
        return cls(*cols, path=str(path))

    def brighter_than(self, limit: float, primary: fits.Header, path) -> BrightFrameStars:
        """The stars brighter than ``limit`` in the frame's filter (its primary header)."""
        name = primary.get("ESO INS FILT1 NAME")
        if name is None:
            raise RecipeInputError(f"{path}: no ESO INS FILT1 NAME keyword (the filter is needed "
                                   "to select bright stars)")
        try:
            band = band_name(name)
        except ValueError as err:
            raise RecipeInputError(f"{path}: {err}") from None
        mag = vircam_magnitude(self.j, self.h, self.ks, band, fallback=True)
        keep = np.isfinite(mag) & (mag < limit) & np.isfinite(self.ra) & np.isfinite(self.dec)
        return BrightFrameStars(self.ra[keep], self.dec[keep], mag[keep], band)


@dataclass
class BrightFrameStars:
    """The bright stars of one frame, with magnitudes in its filter."""

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    band: str

    def mask(self, mask: np.ndarray, image: np.ndarray, sky: DetectorSky, primary: fits.Header) -> int:
        """Add the circles of the stars near this detector to ``mask``; return their number."""
        # Generous preselection: a 4th-magnitude star's circle reaches a few arcmin.
        near = angular_distance(self.ra, self.dec, sky.ra, sky.dec) < sky.radius + 0.2
        if not near.any():
            return 0
        level, noise = robust_stats(np.where(mask, np.nan, image))
        if not (np.isfinite(level) and np.isfinite(noise) and noise > 0):
            return 0
        x, y = sky.world_to_pixel(self.ra[near], self.dec[near])
        airmass = _mean_key(primary, ("ESO TEL AIRM START", "ESO TEL AIRM END"), 1.0)
        seeing = _mean_key(primary, ("ESO TEL AMBI FWHM START", "ESO TEL AMBI FWHM END"), DEFAULT_SEEING)
        return mask_bright_stars(
            mask, x, y, self.mag[near], sky_level=level, sky_noise=noise,
            sky_brightness=SKY_BRIGHTNESS[self.band], pixel_scale=sky.pixel_scale,
            fwhm=max(seeing / sky.pixel_scale, MIN_FWHM_PIXELS),
            extinction=EXTINCTION[self.band] * airmass,
        )


@dataclass
class Galaxies:
    """RC3 galaxies above a size limit: centres, semi-axes (degrees) and position angles."""

    ra: np.ndarray
    dec: np.ndarray
    a: np.ndarray
    b: np.ndarray
    pa: np.ndarray

    def mask(self, mask: np.ndarray, sky: DetectorSky) -> int:
        """Add the ellipses of the galaxies near this detector to ``mask``; return their number."""
        near = angular_distance(self.ra, self.dec, sky.ra, sky.dec) < sky.radius + self.a
        if not near.any():
            return 0
        return mask_galaxies(mask, self.ra[near], self.dec[near], self.a[near], self.b[near],
                             self.pa[near], sky.world_to_pixel)


def read_rc3(d25_min: float) -> Galaxies:
    """The RC3 galaxies (package data, VizieR VII/155) with a D25 diameter >= ``d25_min`` arcmin."""
    from astropy.table import Table

    source = resources.files("vircamframe").joinpath("data/rc3_vii155.fits")
    with resources.as_file(source) as path:
        table = Table.read(path, hdu=1)  # a Table masks the TNULL (missing) position angles
    ra, dec, d25, r25, pa = (np.ma.filled(np.ma.asarray(table[c], dtype=float), np.nan)
                             for c in ("RAJ2000", "DEJ2000", "D25", "R25", "PA"))
    a, b = rc3_semi_axes(d25, r25)
    keep = np.isfinite(a) & (2.0 * a >= d25_min)
    b = np.where(np.isfinite(pa), b, a)  # no position angle: the conservative circle
    return Galaxies(ra[keep], dec[keep], a[keep] / 60.0, b[keep] / 60.0, pa[keep])


def _mean_key(header: fits.Header, keys: tuple[str, ...], default: float) -> float:
    values = [float(header[k]) for k in keys if isinstance(header.get(k), int | float)]
    values = [v for v in values if np.isfinite(v) and v > 0]
    return float(np.mean(values)) if values else default
