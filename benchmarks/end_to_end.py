"""The whole chain from raw frames to the tile: wall time per stage, peak memory, scaling.

Runs ``vircam demo`` (simulate, sort, the calibration setup, the science setup with the tile)
for each preset asked, in a fresh folder, and prints per recipe the summed job seconds from
the chain manifests, the wall time of each setup, the peak RSS of the largest process, and,
for two presets, how each stage scales with the number of pixels (``full`` has 16 times the
pixels of ``small``)::

    .venv/bin/python benchmarks/end_to_end.py --presets small --out /tmp/e2e
    .venv/bin/python benchmarks/end_to_end.py --presets small full --out /scratch/e2e   # ~15 GB for full
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

PIXELS = {"tiny": 256**2, "small": 512**2, "full": 2048**2}


def run_preset(preset: str, out: Path, n_jobs: int) -> dict:
    """Run the demo for ``preset`` into ``out``; the timings of its stages and its peak RSS."""
    if out.exists():
        shutil.rmtree(out)
    vircam = Path(sys.executable).with_name("vircam")
    start = time.perf_counter()
    subprocess.run([str(vircam), "demo", "--preset", preset, "--out", str(out), "--n-jobs", str(n_jobs)],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    per_recipe: dict[str, float] = defaultdict(float)
    jobs: dict[str, int] = defaultdict(int)
    for manifest in sorted((out / "pipeline").glob("*/temp/manifest.json")):
        for job in json.loads(manifest.read_text())["jobs"].values():
            per_recipe[job["recipe"]] += job["seconds"]
            jobs[job["recipe"]] += 1
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0  # largest process
    return {"preset": preset, "wall_s": wall, "job_seconds": dict(per_recipe), "jobs": dict(jobs),
            "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small"], choices=list(PIXELS))
    parser.add_argument("--out", type=Path, required=True, help="scratch folder (one sub-folder per preset)")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    results = [run_preset(p, args.out / p, args.n_jobs) for p in args.presets]
    for r in results:
        print(f"\n{r['preset']}: {r['wall_s']:.0f} s wall (simulation included), "
              f"peak RSS of one process {r['peak_rss_mb']:.0f} MB")
        for recipe, seconds in sorted(r["job_seconds"].items(), key=lambda kv: -kv[1]):
            print(f"  {recipe:<30} {r['jobs'][recipe]:>3} job(s) {seconds:8.1f} s")
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
