"""Science-pawprint accuracy against the simulator's truth, on any preset (issue 5's figures).

Reads the output of ``vircam demo`` (``DEMO/data``: the simulated run; ``DEMO/pipeline``: the
calibration and science trees, whose manifests list the products), runs the few extra recipes
the figures need into ``--out``, and prints what the science chain recovers:

* ``vircam_science_basic``: GAIN and RDNOISE against truth (gain x NDIT x relative flat level;
  the noise floor of the gain darks x sqrt(NDIT)), worst relative error;
* ``vircam_source_mask``: coverage of the pixels truth sources brighten by more than 1 sigma
  (pooled and worst detector) and the masked fraction;
* ``vircam_sky_combine``: rms of MASTER_SKY x flat / truth flat, both sky methods; the ``sky``
  flat method against the truth flat;
* ``vircam_science_final``: 64-px mesh medians of the sky-subtracted frames (rms and mean in
  units of the noise), the stripe rms over the error of the removed pattern (truth stripes,
  scales below the background mesh), the median flux ratio final / basic of J 10-13 stars.

::

    .venv/bin/vircam demo --preset small --out /tmp/small
    .venv/bin/python benchmarks/science_accuracy.py /tmp/small --out /tmp/small/accuracy
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from astropy.io import fits

from vircamframe import run_recipe
from vircamframe.association import original_tag, select_calibration
from vircamframe.chain.manifest import chain_products
from vircamframe.frames import FrameSet, read_sof
from vircamframe.keywords import frame_info
from vircamframe.simulate.scoring import (
    background_flatness,
    high_pass,
    sky_pattern_rms,
    skysub_stripes,
    star_flux_ratios,
)
from vircamframe.simulate.truth import load_truth, source_image, truth_image

CHIPS = range(1, 17)


def _products(demo: Path, *tags: str) -> FrameSet:
    """Products of the demo's calibration and science pipeline trees, by tag (their manifests)."""
    trees = (demo / "pipeline" / "demo_calibration", demo / "pipeline" / "demo_science")
    return FrameSet(f for tree in trees for f in chain_products(tree, *tags))


def noise_keywords(run: Path, truth: dict, basic: Path) -> dict:
    medians = {c: float(np.median(truth_image(run, "flat", c))) for c in CHIPS}
    common = float(np.median(list(medians.values())))
    ndit = truth["science_setup"]["ndit"]
    gain_dit = next(f["dit"] for f in truth["frames"] if f["tag"] == "DARK_GAIN")
    gain_err, noise_err = [], []
    with fits.open(basic) as hdul:
        for chip in CHIPS:
            header, det = hdul[f"DET1.CHIP{chip}"].header, truth["detectors"][str(chip)]
            gain_err.append(header["GAIN"] / (det["gain"] * ndit * medians[chip] / common) - 1)
            floor = np.sqrt(det["read_noise"] ** 2 + det["dark_current"] * gain_dit * det["gain"])
            noise_err.append(header["RDNOISE"] / (floor * np.sqrt(ndit)) - 1)
    return {"gain_worst_rel": float(np.max(np.abs(gain_err))),
            "rdnoise_worst_rel": float(np.max(np.abs(noise_err)))}


def mask_coverage(run: Path, truth: dict, basic: Path, mask: Path) -> dict:
    """Masked share of the pixels truth sources brighten by > 1 sigma of the pixel noise."""
    raw = basic.name.replace(".basic.fits", ".fits")
    entry = next(f for f in truth["frames"] if f["file"] == raw)
    ndit, dit = entry["ndit"], entry["dit"]
    covered, total, per_detector, fractions = 0, 0, [], []
    with fits.open(mask) as masks:
        for chip in CHIPS:
            det = truth["detectors"][str(chip)]
            flat = truth_image(run, "flat", chip).astype(np.float64)
            bpm = truth_image(run, "bpm", chip)
            src = source_image(run, truth, raw, chip)
            signal = (entry["sky_level"] + src) * flat + truth_image(run, "dark_rate", chip) * dit
            noise = np.sqrt(signal / (det["gain"] * ndit) + det["read_noise_adu"] ** 2 / ndit) / flat
            footprint = (src > noise) & (bpm == 0)
            masked = masks[f"DET1.CHIP{chip}"].data > 0
            covered += int(masked[footprint].sum())
            total += int(footprint.sum())
            per_detector.append(float(masked[footprint].mean()))
            fractions.append(float(masked.mean()))
    return {"pooled": covered / total, "worst_detector": min(per_detector),
            "masked_fraction_max": max(fractions)}


def sky_flat(demo: Path, run: Path, out: Path) -> float:
    """Worst per-detector rms of the `sky` flat method's flat against the truth flat."""
    raws = FrameSet(f for f in read_sof(run / "sof" / "science.sof"))
    dark = select_calibration(frame_info(raws[0].path), _products(demo, "MASTER_DARK"), "MASTER_DARK", "demo")
    calibs = FrameSet([dark]) + _products(demo, "MASTER_CHANNEL_TABLE")
    products = run_recipe("vircam_twilight_flat_combine", raws + calibs, {"flat_method": "sky"},
                          output_dir=out / "sky_flat", qc_plots=False, overwrite=True)
    worst = 0.0
    with fits.open(products.by_tag("MASTER_TWILIGHT_FLAT")[0].path) as flat:
        for chip in CHIPS:
            truth = truth_image(run, "flat", chip)
            ratio = flat[f"DET1.CHIP{chip}"].data / truth
            good = np.isfinite(ratio) & (truth > 0.5)
            worst = max(worst, float(np.std(ratio[good] / np.median(ratio[good]) - 1)))
    return worst


def destriping(demo: Path, truth: dict, out: Path, objects: list, n: int = 3) -> float:
    """Truth stripe rms over the rms of the removed pattern's error (scales below the mesh)."""
    inputs = FrameSet(objects[:n]) + _products(demo, "MASTER_SKY", "MASTER_OBJMASK")
    plain = run_recipe("vircam_science_final", inputs, {"destripe": False, "subtract_background": False},
                       output_dir=out / "final_plain", qc_plots=False, overwrite=True)
    striped = run_recipe("vircam_science_final", inputs, {"subtract_background": False},
                         output_dir=out / "final_destriped", qc_plots=False, overwrite=True)
    sky_files = [f["file"] for f in truth["frames"] if f["tag"] in ("OBJECT", "SKY")]
    truths, errors = [], []
    for a, b in zip(plain.by_tag("SKYSUB_SCI"), striped.by_tag("SKYSUB_SCI"), strict=True):
        raw = a.name.replace(".skysub.fits", ".fits")
        with fits.open(a.path) as one, fits.open(b.path) as two:
            for chip in CHIPS:
                removed = np.nanmedian(one[chip].data - two[chip].data, axis=1)
                stripes = skysub_stripes(truth, raw, chip, sky_files, one[chip].header["ESO DRS GAINCOR"])
                truths.append(high_pass(stripes))
                errors.append(high_pass(removed) - high_pass(stripes))
    return float(np.std(np.concatenate(truths)) / np.std(np.concatenate(errors)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("demo", type=Path, help="output folder of vircam demo")
    parser.add_argument("--out", type=Path, required=True, help="folder for the extra recipe runs")
    args = parser.parse_args()
    run = args.demo / "data"
    truth = load_truth(run)
    basic = _products(args.demo, "BASIC_CALIBRATED_SCI")
    objects = [f for f in basic if original_tag(f) == "OBJECT"]
    masks = {f.name.replace(".objmask.fits", ""): f for f in _products(args.demo, "MASTER_OBJMASK")}
    finals = _products(args.demo, "SKYSUB_SCI")
    flat = _products(args.demo, "MASTER_TWILIGHT_FLAT")[0].path
    first = objects[0]
    base = first.name.replace(".basic.fits", "")
    pawsky = run_recipe("vircam_sky_combine", basic + _products(args.demo, "MASTER_OBJMASK"),
                        {"sky_method": "pawsky_mask"}, output_dir=args.out / "sky_pawsky", qc_plots=False,
                        overwrite=True)
    flatness = [v for f in finals for v in background_flatness(f.path, masks[f.name.replace(
        ".skysub.fits", "")].path).values()]
    seeing = max(f["seeing"] for f in truth["frames"] if f["tag"] == "OBJECT")
    radius = 3.0 * seeing / truth["pixel_scale_arcsec"]
    final_of = {f.name.replace(".skysub.fits", ".basic.fits"): f for f in finals}
    ratios = np.concatenate([star_flux_ratios(b.path, final_of[b.name].path, run, radius)
                             for b in objects[:4]])
    figures = {
        "preset": truth["preset"],
        "noise_keywords": noise_keywords(run, truth, first.path),
        "mask_coverage_builtin": mask_coverage(run, truth, first.path, masks[base].path),
        "sky_rms_sliding_window": max(
            sky_pattern_rms(_products(args.demo, "MASTER_SKY")[0].path, flat, run).values()),
        "sky_rms_pawsky_mask": max(sky_pattern_rms(pawsky[0].path, flat, run).values()),
        "sky_flat_rms": sky_flat(args.demo, run, args.out),
        "background_mesh_rms_over_sigma_max": max(abs(r) for r, _ in flatness),
        "background_mesh_mean_over_sigma_max": max(abs(m) for _, m in flatness),
        "destripe_ratio": destriping(args.demo, truth, args.out, objects),
        "star_flux_ratio_median": float(np.median(ratios)),
        "stars": int(ratios.size),
    }
    print(json.dumps(figures, indent=2))
    (args.out / "science_accuracy.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
