"""vircam_catalog and vircam_stack_catalog: source catalogues of the tile and of the stacks.

Two recipes, one code path (:class:`_CoaddCatalogue`): the chain engine plans a recipe from the
tags it declares, and a recipe taking either a tile or stacks would plan both products for
every job. The tile catalogue is one table (the tile is one image); a stack catalogue has one
table per detector extension, named as the stack's extensions (``DET1.CHIPn``), as ESO's and
CASU's VIRCAM catalogues are: each detector keeps its own seeing, aperture corrections,
correlated-noise factors and QC in its table header, and a table maps onto its image
extension one to one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import numpy as np

from vircamframe.catalog import (
    APERTURE_FACTORS,
    COLUMN_UNITS,
    calibrate_catalogues,
    catalogue_image,
    measure_seeing,
)
from vircamframe.errors import QualityGateError, RecipeInputError
from vircamframe.fitsio import float32_pixels, image_hdus, open_fits, read_primary_header
from vircamframe.naming import per_frame_name
from vircamframe.parameters import Parameter
from vircamframe.recipe import Input, Output, Recipe

_DESCRIPTION = (
    "SExtractor runs on every image extension of the {image} with its confidence map as\n"
    "MAP_WEIGHT, the image's PHOTZP as MAG_ZEROPOINT and its GAIN (the co-add's effective gain)\n"
    "and 0.8 SATURATE as its saturation level (a star clipped in its pawprints peaks just\n"
    "under SATURATE in a co-add: resampling and averaging smooth its flat top). A first\n"
    "pass (seeing_thresh) measures the seeing: the clipped median FWHM of\n"
    "bright, unflagged, round, unsaturated sources. The second pass (detect_thresh,\n"
    "detect_minarea) measures windowed positions (RA/DEC from ALPHAWIN/DELTAWIN_J2000, errors\n"
    "ERRA/ERRB/ERRTHETA), fluxes in apertures of {factors} times the seeing (diameters in the\n"
    "table header, ESO DRS APDIAMi), FLUX_AUTO, FLAGS, FLAGS_WEIGHT, CLASS_STAR (with the\n"
    "measured seeing), FLUX_RADIUS, FWHM, ELONGATION, ELLIPTICITY, SNR_WIN.\n"
    "Resampling (lanczos3) correlates the noise of neighbouring pixels, so SExtractor's\n"
    "errors, computed from the pixel rms, are too small: the rms of the sums in source-free\n"
    "apertures (on the background-subtracted image with its noise made uniform by the\n"
    "confidence map) over sqrt(area) times the pixel rms gives a factor per aperture (ESO DRS\n"
    "NOISEFi) that multiplies the background part of each flux error (the source's photon\n"
    "noise is kept); MAG_AUTO's error uses the factor at its Kron area.\n"
    "Aperture corrections to the largest aperture (ten times the seeing: the pawprints' zero\n"
    "points are for that aperture; one set per product, the stars of all its images pooled)\n"
    "come from the curve of growth of bright (S/N > 50), isolated, unflagged, unsaturated\n"
    "point sources, kappa-clipped (the pawprint photometry's method). MAG_APER is calibrated\n"
    "and corrected to total; MAG_AUTO is calibrated, not\n"
    "corrected. Magnitude errors: sqrt(flux error^2 + MAGZERR^2 + aperture correction\n"
    "error^2 + its star-to-star scatter^2 (ESO DRS APCSIGi: the PSF varies over a co-add of\n"
    "pawprints of different seeing)), MAGZERR the zero-point error of the pawprints (their\n"
    "QC MAGZERR carried as ESO DRS MAGZERR through the resampling and the co-add, combined\n"
    "as their rms: the pawprints of a field share their 2MASS stars, so their errors do not\n"
    "average down).\n"
    "QC (primary header; for stacks also per table, the primary holding the total and the\n"
    "medians over detectors): NSOURCES; MAGLIM, the 5-sigma point-source limit, from the\n"
    "empty-aperture rms of the main aperture (twice the seeing) corrected to total; MAGLIMSNR,\n"
    "the magnitude at which the catalogued sources' median S/N in the main aperture falls to 5\n"
    "(a check of MAGLIM with the sources' own errors). A stack detector with fewer than 3\n"
    "stars for its seeing takes the median of the other detectors'.\n"
    "APCOR, APDIAM of the main aperture; FWHM [arcsec] and ELLIPTICITY, medians of the\n"
    "point sources; NOISEFAC; MAGZERR."
)

_PARAMETERS = (
    Parameter("detect_thresh", float, 1.5, "Detection threshold [sigma per pixel]", range=(0.5, 1000.0)),
    Parameter("detect_minarea", int, 5, "Fewest connected pixels of a detection", range=(1, 1000)),
    Parameter("seeing_thresh", float, 10.0, "Detection threshold of the seeing pass [sigma]",
              range=(3.0, 1000.0)),
)


class _CoaddCatalogue(Recipe):
    """The catalogue of co-adds of one kind (the declarations say which)."""

    image_tag: ClassVar[str]
    confidence_tag: ClassVar[str]
    catalogue_tag: ClassVar[str]
    parameters = _PARAMETERS

    def process(self, frames, params) -> None:
        images = list(frames.by_tag(self.image_tag))
        confidences = list(frames.by_tag(self.confidence_tag))
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for image in images:
            confidence = _confidence_of(image, confidences, self.confidence_tag, self.name)
            self._catalogue(image, confidence, params)

    def _catalogue(self, image, confidence, params) -> None:
        primary = read_primary_header(image.path)
        zero_point = float(primary.get("PHOTZP", 25.0))
        zp_err = float(primary.get("ESO DRS MAGZERR", 0.0))
        if "ESO DRS MAGZERR" not in primary:
            self.log.warning("%s: no ESO DRS MAGZERR: magnitude errors leave the zero point's out",
                             image.name)
        results = []
        name = per_frame_name(self.catalogue_tag, image.name)
        # no memory mapping: each image is then held once, as float32 (a tile is 0.8 GB)
        with (open_fits(image.path, memmap=False, check=False) as sci,
              open_fits(confidence.path, memmap=False, check=False) as conf,
              tempfile.TemporaryDirectory(prefix=".catalog.", dir=self.output_dir) as work):
            hdus = image_hdus(sci)  # from the headers: no pixel is read yet
            for hdu in hdus:
                if hdu.name not in conf:
                    raise RecipeInputError(f"{self.name}: {confidence.name} has no extension {hdu.name}")
            seeing = _seeing_per_image(hdus, conf, Path(work), params, image.name, self.log)
            for hdu in hdus:
                self.log.info("%s[%s]: SExtractor, seeing %.2f px", image.name, hdu.name, seeing[hdu.name])
                with _pixels(hdu, conf[hdu.name], keep=len(hdus) == 1) as (data, confidence_map):
                    result = catalogue_image(
                        data, confidence_map, hdu.header,
                        Path(work) / hdu.name, zero_point=zero_point, zero_point_err=zp_err,
                        detect_thresh=params.detect_thresh, detect_minarea=params.detect_minarea,
                        seeing=seeing[hdu.name], log=self.log,
                    )
                results.append((hdu.name, result))
        n_stars = calibrate_catalogues([r for _, r in results])
        self.log.info("aperture corrections from %d stars: %s mag", n_stars,
                      " ".join(f"{a:.4f}" for a in results[0][1].apcor))
        extra = {"PHOTZP": (zero_point, "[mag] zero point of the magnitudes"),
                 **{f"ESO QC {k}": v for k, v in _primary_qc([r for _, r in results]).items()}}
        with self.product(self.catalogue_tag, name, [image], [confidence], extra=extra) as out:
            for extname, result in results:
                qc = result.qc() if len(results) > 1 else None
                out.add_table(extname, result.table, result.cards(), qc, COLUMN_UNITS)


@contextmanager
def _pixels(hdu, confidence_hdu, keep: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One image's pixels and its confidence map's (float32), released afterwards unless
    ``keep``: a stack's 16 detectors are read one at a time, for each pass (seeing, then
    catalogue); a single image (the tile) is read once and kept for both."""
    try:
        yield float32_pixels(hdu), float32_pixels(confidence_hdu)
    finally:
        if not keep:
            del hdu.data, confidence_hdu.data


def _seeing_per_image(hdus, conf, work: Path, params, name: str, log) -> dict[str, float]:
    """Each image's seeing [pixels]; one with too few stars takes the median of the others'."""
    seeing = {}
    for hdu in hdus:
        with _pixels(hdu, conf[hdu.name], keep=len(hdus) == 1) as (data, confidence_map):
            seeing[hdu.name] = measure_seeing(data, confidence_map, hdu.header, work / hdu.name,
                                              seeing_thresh=params.seeing_thresh,
                                              detect_minarea=params.detect_minarea, log=log)
    known = [v for v in seeing.values() if np.isfinite(v)]
    if not known:
        raise QualityGateError(f"{name}: fewer than 3 bright unflagged point sources to measure the "
                               "seeing on in every image: empty or very shallow?")
    for key, value in seeing.items():
        if not np.isfinite(value):
            log.warning("%s[%s]: too few stars for the seeing; the median of %d others", name, key,
                        len(known))
            seeing[key] = float(np.median(known))
    return seeing


def _primary_qc(results) -> dict[str, tuple[object, str]]:
    """One catalogue's QC, or for several the total NSOURCES and the medians of the others."""
    if len(results) == 1:
        return results[0].qc()
    qcs = [r.qc() for r in results]
    merged: dict[str, tuple[object, str]] = {}
    for key, (_, comment) in qcs[0].items():
        values = [q[key][0] for q in qcs]
        if key == "NSOURCES":
            merged[key] = (int(sum(values)), "sources in all tables")
        else:
            good = [v for v in values if v != -99.0]
            merged[key] = (float(np.median(good)) if good else -99.0, f"median over tables: {comment}")
    return merged


def _raw_names(path: Path) -> tuple[str, ...]:
    """The ``ESO PRO RECi RAWj NAME`` values of a product: what it was made from."""
    header = read_primary_header(path)
    return tuple(sorted(str(v) for k, v in header.items() if k.startswith("ESO PRO REC") and
                        k.endswith(" NAME") and " RAW" in k))


def _confidence_of(image, confidences, tag: str, recipe: str):
    """The confidence map made alongside ``image`` (from the same inputs); the only one given
    when there is one."""
    if len(confidences) == 1:
        return confidences[0]
    wanted = _raw_names(image.path)
    found = [c for c in confidences if _raw_names(c.path) == wanted]
    if len(found) != 1:
        raise RecipeInputError(f"{recipe}: {len(found)} {tag} made from the inputs of {image.name} "
                               f"(one needed) among {len(confidences)} given")
    return found[0]


_FACTORS = ", ".join(f"{f:g}" for f in APERTURE_FACTORS)


class Catalog(_CoaddCatalogue):
    name = "vircam_catalog"
    version = "0.1.4"
    synopsis = "Source catalogue of the tile: calibrated, aperture-corrected magnitudes (SExtractor)"
    description = _DESCRIPTION.format(image="tile (TILED_IMAGE)", factors=_FACTORS) + (
        "\nTILED_OBJECT_CATALOGUE: one table, TILE, with units (TUNITn).")
    inputs = (
        Input("TILED_IMAGE", "RAW", min=1, help="the co-added tile (PHOTZP, GAIN, ESO DRS MAGZERR)"),
        Input("TILED_CONFIDENCE_MAP", "CALIB", min=1, help="its confidence map"),
    )
    products = (Output("TILED_OBJECT_CATALOGUE", "source catalogue of the tile", per_frame=True),)
    group_by = ("filter", "night")
    image_tag, confidence_tag, catalogue_tag = "TILED_IMAGE", "TILED_CONFIDENCE_MAP", "TILED_OBJECT_CATALOGUE"


class StackCatalog(_CoaddCatalogue):
    name = "vircam_stack_catalog"
    version = "0.1.4"
    synopsis = "Source catalogues of the stacks, per detector: calibrated magnitudes (SExtractor)"
    description = _DESCRIPTION.format(image="stack (JITTERED_IMAGE_SCI)", factors=_FACTORS) + (
        "\nJITTERED_OBJECT_CATALOGUE: one table per detector extension of the stack (DET1.CHIPn),\n"
        "with units (TUNITn) and the detector's QC.")
    inputs = (
        Input("JITTERED_IMAGE_SCI", "RAW", min=1, help="stacks of the jitters of one offset"),
        Input("JITTERED_CONFIDENCE_MAP", "CALIB", min=1, help="their confidence maps"),
    )
    products = (Output("JITTERED_OBJECT_CATALOGUE", "source catalogue of a stack, per detector",
                       per_frame=True),)
    group_by = ("filter", "night", "offset")
    image_tag, confidence_tag = "JITTERED_IMAGE_SCI", "JITTERED_CONFIDENCE_MAP"
    catalogue_tag = "JITTERED_OBJECT_CATALOGUE"

