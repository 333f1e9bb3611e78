"""Photometric accuracy of ``vircam_photometry`` against the simulator's truth (issue 7, item 3).

Reads a ``vircam demo`` tree (``DEMO/data``: the simulated run with its truth; the VISIONS
science tree with SKYSUB_SCI, ASTROM_HEADER, PHOTCAL_SCI and MASTER_ILLUMCORR; the calibration
tree's MASTER_TWILIGHT_FLAT) and prints, per pawprint, our zero point minus the true one
(:func:`vircamframe.simulate.scoring.photometry_scores`: the pipeline's flat normalisation and
gain correction folded into the truth), and the rms of the injected illumination pattern and
of our correction minus it. With ``--rerun MODE`` it first runs ``vircam_photometry`` again
with ``illumination_correction_mode`` MODE into ``--out``; ``--exact-reference`` then
calibrates on the simulator's true magnitudes (a noise-free 2MASS), which leaves the
pipeline's own error.

::

    .venv/bin/vircam demo --preset small --out /tmp/small
    .venv/bin/python benchmarks/photometry_accuracy.py /tmp/small
    .venv/bin/python benchmarks/photometry_accuracy.py /tmp/small --rerun constant --out /tmp/small/phot
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vircamframe import run_recipe
from vircamframe.chain.manifest import chain_products
from vircamframe.frames import Frame, FrameSet
from vircamframe.simulate.scoring import exact_twomass, photometry_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("demo", type=Path, help="output folder of vircam demo")
    parser.add_argument("--rerun", choices=("variable", "constant"), help="run vircam_photometry again")
    parser.add_argument("--out", type=Path, help="folder for the products of --rerun")
    parser.add_argument(
        "--exact-reference",
        action="store_true",
        help="with --rerun: calibrate on the true magnitudes instead of the noisy 2MASS table",
    )
    args = parser.parse_args()
    science = args.demo / "pipeline" / "demo_science"
    if args.rerun:
        out = args.out or args.demo / "photometry"
        out.mkdir(parents=True, exist_ok=True)
        table = args.demo / "data" / "refcat" / "twomass_psc.fits"
        if args.exact_reference:
            table = exact_twomass(args.demo / "data", out / "exact_2mass.fits")
        refcat = Frame(table, "REFCAT_PHOTOM", "CALIB")
        inputs = chain_products(science, "SKYSUB_SCI", "WEIGHT_SCI", "ASTROM_HEADER") + FrameSet([refcat])
        products = run_recipe(
            "vircam_photometry",
            inputs,
            {"illumination_correction_mode": args.rerun},
            output_dir=args.out or args.demo / "photometry",
            overwrite=True,
            qc_plots=False,
        )
    else:
        products = chain_products(science, "PHOTCAL_SCI", "MASTER_ILLUMCORR")
    skysub = {f.name: f.path for f in chain_products(science, "SKYSUB_SCI")}
    photcal = products.by_tag("PHOTCAL_SCI")
    flat = chain_products(args.demo / "pipeline" / "demo_calibration", "MASTER_TWILIGHT_FLAT")[0].path
    scores = photometry_scores(
        [f.path for f in photcal],
        [skysub[f.name.replace(".photcal.", ".skysub.")] for f in photcal],
        products.by_tag("MASTER_ILLUMCORR")[0].path,
        flat,
        args.demo / "data",
    )
    offsets = scores["offsets"]
    for frame, offset in zip(photcal, offsets, strict=True):
        print(f"{frame.name}: zero point - truth {offset:+.4f} mag")
    summary = {
        "pawprints": len(offsets),
        "detectors_with_stars": len(scores["detectors"]),
        "zp_offset_mean_mag": float(np.mean(offsets)),
        "zp_offset_max_abs_mag": float(np.max(np.abs(offsets))),
        "illumination_pattern_rms_mag": scores["pattern_rms"],
        "illumination_residual_rms_mag": scores["residual_rms"],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
