"""Astrometric accuracy of ``vircam_astrometry`` against the simulator's truth (issue 7, item 1).

Reads a ``vircam demo`` tree (``DEMO/data``: the simulated run; ``DEMO/pipeline/demo_science``:
its sky-subtracted pawprints and weights), runs ``vircam_astrometry`` on all pawprints into
``--out``, catalogues them again with SExtractor, applies each ASTROM_HEADER's WCS to the
windowed centroids of bright, clean stars (S/N > 50, truth magnitude 11-17, matched within
1 arcsec) and prints the rms of (ours - truth at the observation epoch) per axis, pooled and
for the worst detector, in mas. Stars beyond 1 arcsec are not in the rms, so it also counts
the bright sources more than 1 arcsec from any true star or galaxy, and the detector solutions
whose median source is ("lost": a detector SCAMP placed on the wrong patch of sky); the rms
means little unless both are about 0.
As a yardstick it also prints the rms of the basic calibration's own WCS after removing one
constant offset per pawprint (the simulated pointing error): what a solution that only fixed
the pointing would reach.

::

    .venv/bin/vircam demo --preset small --out /tmp/small
    .venv/bin/python benchmarks/astrometry_accuracy.py /tmp/small --out /tmp/small/astrometry
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from vircam_recipes.astrometry import Astrometry
from vircamframe import run_recipe
from vircamframe.chain.manifest import chain_products
from vircamframe.frames import Frame, FrameSet
from vircamframe.refcat import read_ldac
from vircamframe.scamp import SCAMP_MODES
from vircamframe.sextractor import run_sextractor
from vircamframe.wcs import replace_wcs


def _offsets(coords: SkyCoord, truth: SkyCoord, radius: float) -> tuple[np.ndarray, np.ndarray]:
    index, separation, _ = coords.match_to_catalog_sky(truth)
    ok = separation.arcsec < radius
    match = truth[index[ok]]
    return (((coords[ok].ra - match.ra) * np.cos(match.dec.rad)).to_value("mas"),
            (coords[ok].dec - match.dec).to_value("mas"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("demo", type=Path, help="output folder of vircam demo")
    parser.add_argument("--out", type=Path, required=True, help="folder for the products")
    default_mode = next(p.default for p in Astrometry.parameters if p.name == "scamp_mode")
    parser.add_argument("--scamp-mode", default=default_mode, choices=tuple(SCAMP_MODES))
    parser.add_argument("--no-detector-gates", action="store_true",
                        help="turn the per-detector gates off (to measure a mode that fails them)")
    args = parser.parse_args()
    tree = args.demo / "pipeline" / "demo_science"
    refcat = Frame(args.demo / "data" / "refcat" / "gaia_dr3.fits", "REFCAT_ASTROM", "CALIB")
    frames = chain_products(tree, "SKYSUB_SCI", "WEIGHT_SCI") + FrameSet([refcat])
    params = {"scamp_mode": args.scamp_mode}
    if args.no_detector_gates:
        params.update(min_completeness=0.0)
    products = run_recipe("vircam_astrometry", frames, params,
                          output_dir=args.out, overwrite=True, qc_plots=False)
    stars = Table.read(args.demo / "data" / "truth" / "stars.fits")
    everything = SkyCoord(stars["RA_OBS"], stars["DEC_OBS"], unit="deg")  # galaxies too
    stars = stars[(stars["KIND"] == 0) & (stars["MAG"] > 11) & (stars["MAG"] < 17)]
    truth = SkyCoord(stars["RA_OBS"], stars["DEC_OBS"], unit="deg")
    solved: dict[int, list] = {}
    basic = []
    n_sources = n_far = lost = n_solutions = 0
    for product in products.select("ASTROM_HEADER"):
        skysub = tree / "processed" / product.name.replace(".astrom.fits", ".skysub.fits")
        catalog = run_sextractor(skysub, args.out / f"{product.name}.ldac", args.out / "sextractor")
        pointing_fixed = [[], []]
        with fits.open(product.path) as hdul:
            for detector, (imhead, objects) in enumerate(read_ldac(catalog), start=1):
                good = (objects["FLAGS"] == 0) & (objects["SNR_WIN"] > 50)
                x, y = objects["XWIN_IMAGE"][good], objects["YWIN_IMAGE"][good]
                wcs = WCS(replace_wcs(imhead, hdul[detector].header))
                coords = SkyCoord(*wcs.all_pix2world(x, y, 1), unit="deg")
                dra, ddec = _offsets(coords, truth, 1.0)
                separation = coords.match_to_catalog_sky(everything)[1].arcsec if x.size else np.zeros(0)
                n_sources += separation.size
                n_far += int((separation >= 1.0).sum())
                n_solutions += 1
                lost += int(separation.size > 0 and np.median(separation) > 1.0)
                solved.setdefault(detector, [[], []])
                solved[detector][0].append(dra)
                solved[detector][1].append(ddec)
                old = SkyCoord(objects["ALPHAWIN_J2000"][good], objects["DELTAWIN_J2000"][good], unit="deg")
                for axis, values in zip(pointing_fixed, _offsets(old, truth, 6.0), strict=True):
                    axis.append(values)
        for axis in pointing_fixed:
            values = np.concatenate(axis)
            values = values - np.median(values)
            basic.append(np.std(values[np.abs(values) < 1500]))
    pooled = [np.concatenate([np.concatenate(v[a]) for v in solved.values()]) for a in (0, 1)]
    worst = max((max(np.std(np.concatenate(v[0])), np.std(np.concatenate(v[1]))), d)
                for d, v in solved.items())
    print(f"scamp_mode {args.scamp_mode}: {pooled[0].size} stars; rms vs truth {np.std(pooled[0]):.1f} "
          f"(RA) {np.std(pooled[1]):.1f} (Dec) mas; mean {np.mean(pooled[0]):.1f} "
          f"{np.mean(pooled[1]):.1f} mas; worst detector {worst[1]} {worst[0]:.1f} mas")
    per_axis = {d: (np.std(np.concatenate(v[0])), np.std(np.concatenate(v[1]))) for d, v in solved.items()}
    print("per detector rms (RA/Dec) mas: " + " ".join(f"{d}:{a:.0f}/{b:.0f}" for d, (a, b) in
                                                   sorted(per_axis.items())))
    print(f"{n_far} of {n_sources} bright sources more than 1 arcsec from any true source; "
          f"{lost} of {n_solutions} detector solutions lost (median star > 1 arcsec off)")
    print(f"basic WCS with the pointing offset removed: median rms {np.median(basic):.1f} mas per axis")


if __name__ == "__main__":
    main()
