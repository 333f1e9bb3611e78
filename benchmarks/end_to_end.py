"""The whole chain from raw frames to the tile: wall time per stage, peak memory, scaling.

Runs ``vircam demo`` (simulate, sort, the calibration setup, the science setup with the tile)
for each preset asked, in a fresh folder, and prints its wall time, per recipe the summed job
seconds and the largest job peak memory (the worker's or a tool's) from the chain manifests,
the disk used, and, for two presets, how each stage scales with the number of pixels
(``full`` has 16 times the pixels of ``small``)::

    .venv/bin/python benchmarks/end_to_end.py --presets small --out /tmp/e2e
    .venv/bin/python benchmarks/end_to_end.py --presets small full --compress --discard --out /scratch/e2e

Disk: ``small`` needs ~4 GB, ``full`` ~65 GB (~50 GB with ``--compress``, RICE-compressed raw
files as the ESO archive serves them; the sorted raw tree is hard-linked, not copied).
``--discard`` removes each preset's tree once it is measured, so only one is on disk at a time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

PIXELS = {"tiny": 256**2, "small": 512**2, "full": 2048**2}


def disk_usage_gb(tree: Path) -> float:
    """Allocated size of ``tree`` in GB, each hard-linked file counted once (as ``du`` does)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in tree.rglob("*"):
        st = path.lstat()
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total / 1e9


def run_preset(preset: str, out: Path, n_jobs: int, compress: bool = False) -> dict:
    """Run the demo for ``preset`` into ``out``; the timings of its stages, peak RSS and disk use."""
    if out.exists():
        shutil.rmtree(out)
    vircam = Path(sys.executable).with_name("vircam")
    command = [str(vircam), "demo", "--preset", preset, "--out", str(out), "--n-jobs", str(n_jobs)]
    if compress:
        command.append("--compress")
    start = time.perf_counter()
    returncode = subprocess.run(command, stdout=subprocess.DEVNULL, check=False).returncode
    wall = time.perf_counter() - start
    if returncode:
        raise SystemExit(f"vircam demo --preset {preset} failed (exit {returncode}); see {out}")
    per_recipe: dict[str, float] = defaultdict(float)
    jobs: dict[str, int] = defaultdict(int)
    peak: dict[str, float] = defaultdict(float)
    for manifest in sorted((out / "pipeline").glob("*/temp/manifest.json")):
        for job in json.loads(manifest.read_text())["jobs"].values():
            per_recipe[job["recipe"]] += job["seconds"]
            jobs[job["recipe"]] += 1
            peak[job["recipe"]] = max(peak[job["recipe"]], job.get("peak_rss_mb", 0.0))
    # a worker's own peak is reset per job (vircamframe.memory), so the run's peak is its
    # largest job's: that worker's high-water mark, or one of its tools'
    return {"preset": preset, "wall_s": wall, "job_seconds": dict(per_recipe), "jobs": dict(jobs),
            "job_peak_mb": dict(peak), "peak_rss_mb": max(peak.values(), default=0.0),
            "disk_gb": disk_usage_gb(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small"], choices=list(PIXELS))
    parser.add_argument("--out", type=Path, required=True, help="scratch folder (one sub-folder per preset)")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--compress", action="store_true", help="RICE-compressed raw files (.fits.fz)")
    parser.add_argument("--discard", action="store_true", help="remove each preset's tree once measured")
    parser.add_argument("--keep-last", action="store_true",
                        help="with --discard: keep the last preset's tree (to look into it)")
    args = parser.parse_args()
    results = []
    for preset in args.presets:
        results.append(run_preset(preset, args.out / preset, args.n_jobs, args.compress))
        if args.discard and not (args.keep_last and preset == args.presets[-1]):
            shutil.rmtree(args.out / preset)
    for r in results:
        print(f"\n{r['preset']}: {r['wall_s']:.0f} s wall (simulation included), "
              f"largest job peak {r['peak_rss_mb']:.0f} MB, {r['disk_gb']:.1f} GB on disk")
        for recipe, seconds in sorted(r["job_seconds"].items(), key=lambda kv: -kv[1]):
            print(f"  {recipe:<30} {r['jobs'][recipe]:>3} job(s) {seconds:8.1f} s"
                  f"   peak {r['job_peak_mb'].get(recipe, 0.0):7.0f} MB")
    if len(results) == 2:
        a, b = results
        ratio = PIXELS[b["preset"]] / PIXELS[a["preset"]]
        print(f"\nscaling {a['preset']} -> {b['preset']} ({ratio:.0f} x the pixels): job seconds ratio")
        for recipe in sorted(a["job_seconds"]):
            if recipe in b["job_seconds"] and a["job_seconds"][recipe] > 0:
                print(f"  {recipe:<30} {b['job_seconds'][recipe] / a['job_seconds'][recipe]:6.1f}")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
