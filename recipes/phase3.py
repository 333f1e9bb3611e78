"""vircam_phase3 and vircam_public_catalog: ESO Phase 3 products of a tile and its public catalogue."""

from __future__ import annotations

import functools

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from vircamframe.catalog import MAIN_APERTURE
from vircamframe.dfs import set_card
from vircamframe.errors import RecipeInputError
from vircamframe.fitsio import float32_pixels, open_fits, read_primary_header
from vircamframe.naming import raw_base
from vircamframe.numerics.stats import masked_median
from vircamframe.parameters import Parameter
from vircamframe.phase3 import (
    CATALOG_EXTNAME,
    COLUMNS,
    TileSummary,
    catalog_cards,
    column_cards,
    extension_cards,
    image_cards,
    saturation_magnitude,
    weight_cards,
)
from vircamframe.public_catalog import iau_names, public_table
from vircamframe.recipe import Input, Output, Recipe
from vircamframe.registry import strategy_names

TILE_EXTNAME = "TILE"
SRCTBL_COLUMNS = ("ID", "RA", "DEC", "ERRMAJ", "ERRMIN", "ERRPA", "MAG_APER", "MAGERR_APER", "MAG_AUTO",
                  "MAGERR_AUTO", "FWHM", "ELLIPTICITY", "CLASS_STAR", "SFLAGS")


def _image(path, pixels: bool = True) -> tuple[fits.Header, fits.Header, np.ndarray | None]:
    """A tile-grid product's primary header, its TILE extension's header and (``pixels``) its
    pixels as float32, held once (not memory-mapped: a full tile is 0.8 GB)."""
    with open_fits(path, memmap=False, check=False) as hdul:
        if TILE_EXTNAME not in hdul:
            raise RecipeInputError(f"{path.name}: no {TILE_EXTNAME} extension (not a tile?)")
        tile = hdul[TILE_EXTNAME]
        return hdul[0].header, tile.header.copy(), float32_pixels(tile) if pixels else None


def _map(path) -> tuple[fits.Header, np.ndarray]:
    """A statistics map (exposure time, astrometric rms) as float32, and its primary header."""
    primary, _, data = _image(path)
    return primary, data


def _footprint(header: fits.Header) -> list[tuple[float, float]]:
    """The tile's four corners (RA, Dec) [deg], counter-clockwise from the first pixel."""
    nx, ny = header["NAXIS1"], header["NAXIS2"]
    ra, dec = WCS(header).all_pix2world([0.5, nx + 0.5, nx + 0.5, 0.5], [0.5, 0.5, ny + 0.5, ny + 0.5], 1)
    return list(zip(ra.tolist(), dec.tolist(), strict=True))


def summarise(frames, log) -> tuple[TileSummary, fits.Header, Table]:
    """The :class:`TileSummary` of a tile from its products, with its image header and catalogue."""
    primary, ext, _ = _image(frames.by_tag("TILED_IMAGE")[0].path, pixels=False)
    cat_header = read_primary_header(frames.by_tag("TILED_OBJECT_CATALOGUE")[0].path)
    catalogue = Table.read(frames.by_tag("TILED_OBJECT_CATALOGUE")[0].path, hdu=TILE_EXTNAME,
                           unit_parse_strict="silent")  # ADU is not a FITS unit
    exp_header, exptime = _map(frames.by_tag("STAT_EXPTIME")[0].path)
    mjd_header = read_primary_header(frames.by_tag("STAT_MJD")[0].path)
    covered = exptime > 0
    wcs = WCS(ext)
    scale = float(np.mean(proj_plane_pixel_scales(wcs.celestial))) * 3600.0
    ra, dec = wcs.all_pix2world([(ext["NAXIS1"] + 1) / 2.0], [(ext["NAXIS2"] + 1) / 2.0], 1)
    rms = float("nan")
    if len(frames.by_tag("STAT_ASTRMS")):
        astrms = _map(frames.by_tag("STAT_ASTRMS")[0].path)[1]
        rms = masked_median(astrms, covered) / 1000.0
    raws = [str(v) for k, v in exp_header.items() if k.startswith("ESO DRS RAW") and k.endswith(" NAME")]
    if "MJD-END" not in mjd_header or not raws:
        raise RecipeInputError(f"{frames.by_tag('STAT_MJD')[0].name}: no MJD-END or raw names "
                               "(made by vircam_statistics before 0.2.0: rerun it)")
    if "SATURATE" not in ext:
        raise RecipeInputError(f"{frames.by_tag('TILED_IMAGE')[0].name}: no SATURATE in {TILE_EXTNAME}")
    sequence = {k: primary[k] for k in ("NJITTER", "NOFFSETS", "NUSTEP") if k in primary}
    for key, name in (("ESO DET DIT", "DIT"), ("ESO DET NDIT", "NDIT")):
        if key in primary:
            sequence[name] = primary[key]
    summary = TileSummary(
        band=str(primary["ESO INS FILT1 NAME"]), object=str(primary.get("OBJECT", "")),
        prog_id=str(primary.get("ESO OBS PROG ID", "")), obstech=str(primary.get("ESO PRO TECH", "IMAGE")),
        obids=[int(primary["ESO OBS ID"])] if "ESO OBS ID" in primary else [],
        ra=float(ra[0]), dec=float(dec[0]),
        exptime=masked_median(exptime, covered), texptime=float(exp_header["TEXPTIME"]),
        mjd_obs=float(mjd_header["MJD-OBS"]), mjd_end=float(mjd_header["MJD-END"]), provenance=raws,
        photzp=float(primary.get("PHOTZP", 25.0)), photzp_err=float(primary.get("ESO DRS MAGZERR", 0.0)),
        maglim=float(cat_header["ESO QC MAGLIM"]), saturate=float(ext["SATURATE"]),
        psf_fwhm=float(cat_header["ESO QC FWHM"]), ellipticity=float(cat_header["ESO QC ELLIPTICITY"]),
        pixel_scale=scale, skysqdeg=float(covered.sum()) * (scale / 3600.0) ** 2, astrometric_rms=rms,
        gain=float(ext["GAIN"]) if "GAIN" in ext else None, sequence=sequence,
        procsoft=str(primary.get("PROCSOFT", "vircamframe")),
    )
    log.info("%s: %.1f s per pixel, %d exposures, ABMAGLIM %.2f, ABMAGSAT %.2f, PSF %.2f arcsec",
             summary.object, summary.exptime, len(raws), summary.abmaglim, summary.abmagsat, summary.psf_fwhm)
    return summary, ext, catalogue


def _cards(cards) -> dict[str, tuple[object, str]]:
    return {key: (value, comment) for key, value, comment in cards}


def _table_header(cards) -> fits.Header:
    header = fits.Header()
    for key, value, comment in cards:
        set_card(header, key, value, comment)
    return header


def _units(names) -> dict[str, str]:
    return {name: COLUMNS[name][0] for name in names}


_INPUTS = (
    Input("TILED_IMAGE", "CALIB", min=1, max=1, help="the co-added tile"),
    Input("STAT_EXPTIME", "CALIB", min=1, max=1, help="its exposure-time map (EXPTIME, TEXPTIME, PROVi)"),
    Input("STAT_MJD", "CALIB", min=1, max=1, help="its MJD map (MJD-OBS, MJD-END)"),
    Input("STAT_ASTRMS", "CALIB", min=0, max=1, help="its astrometric-rms map (CRDERi)"),
)


class Phase3(Recipe):
    name = "vircam_phase3"
    version = "0.1.1"
    synopsis = "ESO Phase 3 tile image, weight map and source table (SDP standard keywords)"
    description = (
        "The tile, its confidence map and its source catalogue rewritten with the keywords of\n"
        "ESO's Science Data Products standard for VISTA/VIRCAM imaging (vircamframe.phase3):\n"
        "PHASE3_IMAGE (PRODCATG SCIENCE.IMAGE, IMATYPE TILE), PHASE3_WEIGHT (ANCILLARY.WEIGHTMAP,\n"
        "named by the image's ASSON1) and PHASE3_SRCTBL (SCIENCE.SRCTBL, PROV1 the image; table\n"
        "PHASE3CATALOG with TUNITn, TUCDn and TCOMMn per column). PROVi are the raw frames'\n"
        "archive names, NCOMBINE their number; EXPTIME the median of STAT_EXPTIME over the covered\n"
        "pixels, TEXPTIME the summed exposure time; MJD-OBS/MJD-END the start of the first and end\n"
        "of the last exposure (from STAT_MJD). PHOTSYS VEGA with the tile's PHOTZP (ADU per DIT);\n"
        "ABMAGLIM from the catalogue's QC MAGLIM, ABMAGSAT from the lowest SATURATE and a Gaussian\n"
        "PSF of the catalogue's FWHM, both in AB (passbands.VEGA_TO_AB). CRDERi from STAT_ASTRMS.\n"
        "The pixels stay in the TILE extension (data-less primary), as for archive deliveries\n"
        "compressed with fpack."
    )
    inputs = (
        Input("TILED_OBJECT_CATALOGUE", "RAW", min=1, max=1, help="the tile's source catalogue"),
        Input("TILED_CONFIDENCE_MAP", "CALIB", min=1, max=1, help="the tile's confidence map"),
        *_INPUTS,
    )
    products = (
        Output("PHASE3_IMAGE", "Phase 3 tile (SCIENCE.IMAGE)"),
        Output("PHASE3_WEIGHT", "Phase 3 weight map of the tile (ANCILLARY.WEIGHTMAP)"),
        Output("PHASE3_SRCTBL", "Phase 3 source table of the tile (SCIENCE.SRCTBL)"),
    )
    group_by = ("filter", "night")
    parameters = ()

    def process(self, frames, params) -> None:
        summary, ext, catalogue = summarise(frames, self.log)
        tile = frames.by_tag("TILED_IMAGE")[0]
        base = raw_base(tile.name).replace("tiled_image", "phase3")
        names = {tag: f"{base}.{suffix}.fits" for tag, suffix in
                 (("PHASE3_IMAGE", "image"), ("PHASE3_WEIGHT", "weight"), ("PHASE3_SRCTBL", "srctbl"))}
        ext_header = ext.copy()
        for key, value, comment in extension_cards(summary):
            ext_header[key] = (value, comment)
        raws = list(frames.raw())
        with self.product("PHASE3_IMAGE", names["PHASE3_IMAGE"], raws,
                          extra=_cards(image_cards(summary, names["PHASE3_WEIGHT"]))) as out:
            out.add_image(TILE_EXTNAME, _image(tile.path)[2], ext_header)
        conf = _image(frames.by_tag("TILED_CONFIDENCE_MAP")[0].path)[2]
        with self.product("PHASE3_WEIGHT", names["PHASE3_WEIGHT"], raws,
                          extra=_cards(weight_cards(summary))) as out:
            out.add_image(TILE_EXTNAME, conf, ext_header)
        table = _srctbl(catalogue)
        header = _table_header(column_cards(table.colnames, summary.band))
        extra = _cards(catalog_cards(summary, names["PHASE3_IMAGE"], "PHASE3_SRCTBL"))
        with self.product("PHASE3_SRCTBL", names["PHASE3_SRCTBL"], raws, extra=extra) as out:
            out.add_table(CATALOG_EXTNAME, table, header, units=_units(table.colnames))


def _srctbl(cat: Table) -> Table:
    """The source table's columns from the tile catalogue (one row per source already)."""
    table = Table()
    table["ID"] = iau_names(cat["RA"], cat["DEC"])
    table["RA"], table["DEC"] = cat["RA"], cat["DEC"]
    table["ERRMAJ"], table["ERRMIN"], table["ERRPA"] = cat["ERRA"], cat["ERRB"], cat["ERRTHETA"]
    for name in ("MAG_APER", "MAGERR_APER", "MAG_AUTO", "MAGERR_AUTO"):
        table[name] = cat[name]
    table["FWHM"] = cat["FWHM_WORLD"]
    table["ELLIPTICITY"], table["CLASS_STAR"] = cat["ELLIPTICITY"], cat["CLASS_STAR"]
    table["SFLAGS"] = np.asarray(cat["FLAGS"]).astype(np.int16)
    return table[list(SRCTBL_COLUMNS)]


class PublicCatalog(Recipe):
    name = "vircam_public_catalog"
    version = "0.1.1"
    synopsis = "Public source catalogue of a tile: one row per source, 2MASS where the tile saturates"
    description = (
        "The tile catalogue made public (vircamframe.public_catalog): sources closer than\n"
        "dedup_radius are one source (the best signal-to-noise kept); MAG is the main aperture's\n"
        "total magnitude, or, for a saturated source (SExtractor FLAGS bit 4, a peak at or above\n"
        "SATURATE, or brighter than the PSF's saturation magnitude), the 2MASS magnitude within\n"
        "match_radius transformed with ESO's colour equations (MAGSRC 2MASS, TMASS_ID). Position\n"
        "error ellipse ERRMAJ/ERRMIN/ERRPA; QFLAG (1 SExtractor flags, 2 MAG from 2MASS, 4\n"
        "saturated without 2MASS, 8 low weight, 16 MAGERR > 0.2) and CFLAG (1 brighter source\n"
        "within 2 FWHM, 2 within 5 FWHM of a saturated star, 4 2MASS contamination flag).\n"
        "PUBLIC_CATALOGUE carries the Phase 3 keywords of SCIENCE.CATALOGTILE (footprint\n"
        "FPRAi/FPDEi, table PHASE3CATALOG with TUNITn/TUCDn/TCOMMn); QC NSOURCES, NDUPLICATE,\n"
        "NSATURATED, N2MASS."
    )
    inputs = (
        Input("TILED_OBJECT_CATALOGUE", "RAW", min=1, max=1, help="the tile's source catalogue"),
        *_INPUTS,
        Input("REFCAT_PHOTOM", "CALIB", min=0, max=1, help="2MASS PSC table (VizieR II/246 columns)"),
    )
    products = (Output("PUBLIC_CATALOGUE", "public source catalogue of a tile (SCIENCE.CATALOGTILE)"),)
    group_by = ("filter", "night")
    parameters = (
        Parameter("refcat_provider", str, "local", "Reference-catalogue provider",
                  choices=strategy_names("reference_catalog")),
        Parameter("match_radius", float, 1.0, "Largest source-2MASS distance [arcsec]", range=(0.05, 10.0)),
        Parameter("dedup_radius", float, 1.0, "Sources closer than this are one [arcsec]", range=(0.0, 10.0)),
    )

    def process(self, frames, params) -> None:
        summary, ext, catalogue = summarise(frames, self.log)
        provider = self.use_strategy("reference_catalog", params.refcat_provider)
        query = functools.partial(provider, files=[f.path for f in self.frames_of("REFCAT_PHOTOM")])
        footprint = _footprint(ext)
        corners = SkyCoord([r for r, _ in footprint] * u.deg, [d for _, d in footprint] * u.deg)
        radius = float(SkyCoord(summary.ra * u.deg, summary.dec * u.deg).separation(corners).deg.max()) + 0.01
        tmass = query(summary.ra, summary.dec, radius, role="photometric")
        fwhm_pixels = summary.psf_fwhm / summary.pixel_scale
        magsat = saturation_magnitude(summary.saturate, summary.photzp, fwhm_pixels)
        table, counts = public_table(catalogue, summary.band, summary.saturate, magsat, summary.psf_fwhm,
                                     tmass,
                                     MAIN_APERTURE, params.match_radius, params.dedup_radius)
        self.log.info("%d sources (%d duplicates dropped), %d saturated, %d with 2MASS magnitudes",
                      counts["NSOURCES"], counts["NDUPLICATE"], counts["NSATURATED"], counts["N2MASS"])
        tile = frames.by_tag("TILED_IMAGE")[0]
        base = raw_base(tile.name).replace("tiled_image", "public_catalogue")
        image = raw_base(tile.name).replace("tiled_image", "phase3") + ".image.fits"
        extra = {**_cards(catalog_cards(summary, image, "PUBLIC_CATALOGUE", footprint)),
                 **{f"ESO QC {k}": (v, "public catalogue") for k, v in counts.items()}}
        header = _table_header(column_cards(table.colnames, summary.band))
        with self.product("PUBLIC_CATALOGUE", f"{base}.fits", list(frames.raw()), extra=extra) as out:
            out.add_table(CATALOG_EXTNAME, table, header, units=_units(table.colnames))
