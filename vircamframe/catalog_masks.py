"""Catalogue masks of a detector: bright 2MASS stars and RC3 galaxies placed through its WCS.

The I/O and geometry around :mod:`vircamframe.numerics.bright_masks` for
``vircam_source_mask``: reading the 2MASS reference table and the packaged RC3 catalogue,
putting the objects on a detector, and the seeing and airmass from the frame's header.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import resources

import numpy as np
from astropy.io import fits

from .errors import FitsInputError, RecipeInputError
from .fitsio import open_fits
from .numerics.bright_masks import (
    angular_distance,
    mask_bright_stars,
    mask_galaxies,
    rc3_semi_axes,
)
from .numerics.stats import robust_stats
from .passbands import EXTINCTION, SKY_BRIGHTNESS, band_name, vircam_magnitude

__all__ = ["BrightFrameStars", "BrightStars", "DetectorSky", "Galaxies", "read_rc3"]

TWOMASS_COLUMNS = ("RAJ2000", "DEJ2000", "Jmag", "Hmag", "Kmag")
DEFAULT_SEEING = 1.0  # arcsec, when the header has no DIMM seeing
MIN_FWHM_PIXELS = 2.0  # VIRCAM's PSF is never narrower than ~2 pixels (0.34"/pixel)


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
