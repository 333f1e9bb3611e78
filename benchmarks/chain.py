"""Chain benchmark: the whole chain, raw frames to sky-subtracted pawprints, on 1 and 2 workers.

What it measures
----------------
One simulated run (:func:`vircamframe.simulate.simulate`, ``what="all"``: calibration and
science frames, reference catalogues), reduced from scratch by :class:`vircamframe.chain.Chain`
to the targets ``SKYSUB_SCI`` and ``WEIGHT_SCI``, which pulls in the whole calibration chain
(darks, linearity, detector noise, twilight flats) and the science recipes (basic calibration,
source masks, skies, final). ``sof/refcat.sof`` of the data folder is given as calibrations;
QC figures are off. Each configuration (``--executors``; default ``processes:1,processes:2``)
runs in a fresh output folder, in its own process (``python chain.py --run-worker ...``, its
output in ``WORK/logs``), ``--repeat`` times, the best wall time kept. The figures:

* ``plan s``: :meth:`Chain.plan` (reading the raw headers, planning; the same for every
  configuration, done in the main process);
* ``wall s``: :meth:`Chain.run`, starting and stopping the executor (process pool or Dask
  ``LocalCluster``) included; ``speed-up`` is the base configuration's ``wall s`` over this
  one's, the base being ``processes:1`` (else the first configuration). The headline is the
  speed-up of ``processes:2`` over ``processes:1``;
* ``job s``: the jobs' own times summed (``RunSummary.seconds``: the recipe run inside the
  worker), also per recipe in the second table. In a worker process the first job of each
  recipe also pays for importing the recipe's modules, which the ``serial`` executor's process
  imported while planning, so ``job s`` grows with the workers. ``busy %`` = ``job s`` /
  (``wall s`` x workers): how much of the workers' time went into recipes (the rest is start-up,
  hand-over and waiting for dependencies: a recipe that needs every frame of the step before it
  lets one worker idle);
* ``rerun s``: a second :meth:`Chain.run` (a new ``Chain``, planning included) on the finished
  output folder, where every job is skipped as current; ``ms/job`` divides it by the jobs, the
  cost of a no-op rerun per job (manifest checks, raw-file hashes from the cache, executor start);
* peak RSS in MB, from ``resource.getrusage`` (``ru_maxrss``) in the configuration's process
  after the first run, before the rerun: ``main`` is ``RUSAGE_SELF``, the chain's own process
  (which also runs the recipes with the ``serial`` executor); ``workers`` is
  ``RUSAGE_CHILDREN``, the largest peak among the descendants that have ended and been
  waited for: the pool's worker processes (``processes``), and with ``dask`` the worker
  processes of the ``LocalCluster`` (its scheduler and nannies run in the main process and
  start the workers as its children; whatever the depth, a process's figure includes those of
  the descendants it waited for). Linux carries the high-water mark over ``fork`` and
  ``exec``, so a worker's figure is never below the main process's peak when it started the
  worker; that floor (the main process's peak after planning, before the executor starts) is
  printed as ``floor`` (``floor_rss_mb`` in the JSON). For the same reason the data are
  simulated in a separate process: this script's own process, whose peak every configuration's
  process inherits, holds no data (about 60 MB, below the chain's own size). With ``serial``
  nothing is started and ``workers`` is empty.

The wall times are only as good as the machine is quiet: on 2 cores any other load shows at
once, and the first configuration can pay for what later ones find in the caches; ``--repeat
2`` (best of two) evens that out.

The products of every run (and of the reruns) are compared by their ``DATAMD5``: the chain's
products must not depend on the executor or the number of workers. A line says whether they are
identical; the script exits with 1 when they are not, or when a job failed.

How to run
----------
::

    .venv/bin/python benchmarks/chain.py --preset small --json /tmp/chain_small.json
    .venv/bin/python benchmarks/chain.py --preset tiny --executors processes:1,processes:2,serial,dask:2

``--data DIR`` reuses a simulated run there (``raw/``, ``sof/refcat.sof``), or simulates into it
when it holds no ``raw/`` yet; by default the data go to ``WORK/data``. ``--work DIR`` keeps the
data, the output folders (``WORK/runs/<configuration>``) and the logs; the default, a temporary
folder, is removed at the end unless something failed. ``--threads N`` sets the numeric thread
pools of the chain and its workers (default 1: one core per worker).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from calibration import tool_env, warm_cache  # noqa: E402
from science import fmt  # noqa: E402

TARGETS = ("SKYSUB_SCI", "WEIGHT_SCI")
DEFAULT_WORKERS = {"serial": 1, "processes": 2, "dask": 2}
DATA_NOTE = "chain_benchmark_data.json"  # what was simulated into a data folder


# --------------------------------------------------------------------------------------------
# in the child processes


def simulate_data(data: Path, preset: str, seed: int) -> None:
    from vircamframe.simulate import simulate

    simulate(data, preset=preset, seed=seed, what="all")
    (data / DATA_NOTE).write_text(json.dumps({"preset": preset, "seed": seed}))


def maxrss_mb(who: int) -> float:
    import resource

    return resource.getrusage(who).ru_maxrss / 1024.0  # KiB on Linux


def run_config(spec: dict) -> dict:
    """One configuration in this (fresh) process: plan, run, measure, rerun."""
    import resource

    from vircamframe.chain import Chain
    from vircamframe.chain.plan import short_name

    data, out = Path(spec["data"]), Path(spec["out"])
    refcat = data / "sof" / "refcat.sof"

    def make() -> Chain:
        return Chain(data / "raw", TARGETS, out, calibs=[refcat] if refcat.exists() else [],
                     executor=spec["executor"], n_jobs=spec["n_jobs"], qc_plots=False)

    t0 = time.perf_counter()
    chain = make()
    plan = chain.plan()
    t1 = time.perf_counter()
    floor = maxrss_mb(resource.RUSAGE_SELF)
    summary = chain.run(progress=False)
    t2 = time.perf_counter()
    main_rss, workers_rss = maxrss_mb(resource.RUSAGE_SELF), maxrss_mb(resource.RUSAGE_CHILDREN)
    again = make().run(progress=False)
    t3 = time.perf_counter()

    recipes = {job.id: short_name(job.recipe) for job in plan.jobs}
    per_recipe = {short_name(r): {"jobs": 0, "seconds": 0.0} for r in plan.stages()}
    for job_id, seconds in summary.seconds.items():
        per_recipe[recipes[job_id]]["jobs"] += 1
        per_recipe[recipes[job_id]]["seconds"] += seconds

    def products(run) -> dict[str, str]:
        return {p.path: p.datamd5 for p in run.all_products()}

    return {
        "jobs": len(plan.jobs), "plan_s": t1 - t0, "wall_s": t2 - t1, "engine_wall_s": summary.wall,
        "job_s": sum(summary.seconds.values()), "per_recipe": per_recipe,
        "status": {s: summary.count(s) for s in set(summary.status.values())},
        "errors": summary.errors,
        "rerun_s": t3 - t2, "rerun_status": {s: again.count(s) for s in set(again.status.values())},
        "floor_rss_mb": floor, "main_rss_mb": main_rss,
        "workers_rss_mb": workers_rss if spec["executor"] != "serial" else None,
        "products": products(summary), "rerun_products": products(again),
    }


# --------------------------------------------------------------------------------------------
# in the benchmark's process (kept small: no vircamframe import here)


def parse_executors(text: str) -> list[tuple[str, int]]:
    """``processes:1,processes:2,serial,dask:2`` -> [(kind, workers), ...]."""
    configs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, n = item.partition(":")
        if kind not in DEFAULT_WORKERS:
            raise SystemExit(f"--executors: unknown executor {kind!r} (serial, processes or dask)")
        workers = 1 if kind == "serial" else int(n) if n else DEFAULT_WORKERS[kind]
        if (kind, workers) not in configs:
            configs.append((kind, workers))
    if not configs:
        raise SystemExit("--executors: no configuration given")
    return configs


def prepare_data(args, data: Path, work: Path, env: dict) -> tuple[str, float]:
    """Simulate into ``data`` unless it holds a run already; (what the data are, seconds)."""
    if (data / "raw").is_dir():
        note = data / DATA_NOTE
        made = json.loads(note.read_text()) if note.exists() else {}
        what = f"preset {made['preset']}, seed {made['seed']}" if made else "given"
        print(f"reusing the simulated run in {data} ({what})", flush=True)
        return what, 0.0
    data.mkdir(parents=True, exist_ok=True)
    log = work / "logs" / "simulate.log"
    cmd = [sys.executable, __file__, "--simulate-worker", "--data", str(data), "--preset", args.preset,
           "--seed", str(args.seed)]
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"simulation failed, exit {proc.returncode}; see {log}")
    seconds = time.perf_counter() - t0
    print(f"simulated preset {args.preset} into {data} in {seconds:.0f} s", flush=True)
    return f"preset {args.preset}, seed {args.seed}", seconds


def measure(kind: str, workers: int, data: Path, work: Path, repeat: int, env: dict) -> dict:
    """Run one configuration ``repeat`` times, each in its own process; the best run's figures
    (peak RSS: the largest of all runs; ``all_products``: the products of every run)."""
    label = f"{kind}:{workers}"
    name = label.replace(":", "_")
    runs = []
    for i in range(repeat):
        out = work / "runs" / name
        if out.exists():
            shutil.rmtree(out)
        spec_path = work / "logs" / f"{name}_{i}.json"
        log = spec_path.with_suffix(".log")
        result_path = spec_path.with_suffix(".result.json")
        spec_path.write_text(json.dumps({"executor": kind, "n_jobs": workers, "data": str(data),
                                         "out": str(out), "result": str(result_path)}))
        with open(log, "w") as fh:
            proc = subprocess.run([sys.executable, __file__, "--run-worker", str(spec_path)], stdout=fh,
                                  stderr=subprocess.STDOUT, env=env, cwd=work, check=False)
        if proc.returncode != 0 or not result_path.exists():
            tail = " / ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            return {"label": label, "kind": kind, "workers": workers,
                    "failed": f"exit {proc.returncode}: {tail} (see {log})"}
        run = json.loads(result_path.read_text())
        runs.append(run)
        ok = not run["errors"] and set(run["status"]) == {"ran"}
        print(f"  {label:12} run {i + 1}/{repeat}: {run['wall_s']:7.1f} s, {run['jobs']} jobs"
              f"{'' if ok else ', NOT ALL RAN: ' + json.dumps(run['status'])}", flush=True)
    best = dict(min(runs, key=lambda r: r["wall_s"]))
    best.update(label=label, kind=kind, workers=workers, all_products=[r["products"] for r in runs],
                main_rss_mb=max(r["main_rss_mb"] for r in runs))
    if best["workers_rss_mb"] is not None:
        best["workers_rss_mb"] = max(r["workers_rss_mb"] for r in runs)
    return best


def compare_products(results: list[dict]) -> tuple[bool, int, list[str]]:
    """Whether every run (and rerun) has the products of the first, by path and DATAMD5."""
    runs = [(r["label"], p) for r in results for p in r["all_products"]]
    runs += [(f"{r['label']} rerun", r["rerun_products"]) for r in results]
    if not runs:
        return False, 0, ["no run finished"]
    ref_label, ref = runs[0]
    problems = []
    for label, products in runs[1:]:
        missing, extra = sorted(set(ref) - set(products)), sorted(set(products) - set(ref))
        differ = sorted(p for p in set(ref) & set(products) if ref[p] != products[p])
        for what, paths in (("missing", missing), ("extra", extra), ("different DATAMD5", differ)):
            if paths:
                problems.append(f"{label} against {ref_label}: {len(paths)} {what}, e.g. {paths[0]}")
    return not problems, len(ref), problems


def speedups(results: list[dict]) -> tuple[str | None, dict[str, float]]:
    """(base label, label -> base wall / wall)."""
    done = [r for r in results if "failed" not in r]
    base = next((r for r in done if r["label"] == "processes:1"), done[0] if done else None)
    if base is None:
        return None, {}
    return base["label"], {r["label"]: base["wall_s"] / r["wall_s"] for r in done if r["wall_s"] > 0}


def report(results: list[dict], base: str | None, ratio: dict[str, float]) -> str:
    lines = [f"{'config':12} {'jobs':>4} {'plan s':>6} {'wall s':>7} {'speed-up':>8} {'job s':>7} "
             f"{'busy %':>6} {'rerun s':>7} {'ms/job':>6} {'main MB':>7} {'workers MB':>10} {'floor MB':>8}"]
    for r in results:
        if "failed" in r:
            lines.append(f"{r['label']:12} FAILED {r['failed']}")
            continue
        busy = 100.0 * r["job_s"] / (r["wall_s"] * r["workers"]) if r["wall_s"] > 0 else None
        lines.append(
            f"{r['label']:12} {r['jobs']:4d} {r['plan_s']:6.1f} {r['wall_s']:7.1f} "
            f"{fmt(ratio.get(r['label']), '8.2f')} {r['job_s']:7.1f} {fmt(busy, '6.0f')} "
            f"{r['rerun_s']:7.2f} {1000.0 * r['rerun_s'] / max(r['jobs'], 1):6.0f} {r['main_rss_mb']:7.0f} "
            f"{fmt(r['workers_rss_mb'], '10.0f')} {r['floor_rss_mb']:8.0f}")
    done = [r for r in results if "failed" not in r]
    if done:
        lines += ["", "job seconds summed per recipe", f"{'recipe':24} {'jobs':>4} "
                  + " ".join(f"{r['label']:>12}" for r in done)]
        for recipe, first in done[0]["per_recipe"].items():
            lines.append(f"{recipe:24} {first['jobs']:4d} " + " ".join(
                fmt(r["per_recipe"].get(recipe, {}).get("seconds"), "12.1f") for r in done))
    if base is not None:
        lines.append("")
        lines.append(f"speed-up is the wall time of {base} over each configuration's (planning excluded)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=("tiny", "small", "full"))
    parser.add_argument("--data", type=Path, help="simulated run to reuse (simulated there if missing)")
    parser.add_argument("--work", type=Path, help="scratch folder, kept (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="write the results and the run's metadata to this file")
    parser.add_argument("--executors", default="processes:1,processes:2",
                        help="configurations, kind[:workers] separated by commas; kinds serial, "
                             "processes, dask [processes:1,processes:2]")
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (best wall kept)")
    parser.add_argument("--threads", type=int, default=1, help="numeric threads per process [1]")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed [1]")
    parser.add_argument("--simulate-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.simulate_worker:
        simulate_data(args.data, args.preset, args.seed)
        return 0
    if args.run_worker:
        spec = json.loads(args.run_worker.read_text())
        Path(spec["result"]).write_text(json.dumps(run_config(spec)))
        return 0

    configs = parse_executors(args.executors)
    temporary = args.work is None
    work = Path(tempfile.mkdtemp(prefix="chainbench-")) if temporary else args.work.resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    data = args.data.resolve() if args.data else work / "data"
    env = tool_env(args.threads)
    t0 = time.perf_counter()
    what, simulate_s = prepare_data(args, data, work, env)
    raws = sorted(p for p in (data / "raw").rglob("*") if p.is_file())
    warm_cache(raws)

    print(f"running the chain to {', '.join(TARGETS)}: {', '.join(f'{k}:{n}' for k, n in configs)}",
          flush=True)
    results = [measure(kind, workers, data, work, max(args.repeat, 1), env) for kind, workers in configs]
    base, ratio = speedups(results)
    done = [r for r in results if "failed" not in r]
    same, n_products, problems = compare_products(done)
    failed = [r["label"] for r in results if "failed" in r or r["errors"] or set(r["status"]) != {"ran"}
              or set(r["rerun_status"]) != {"skipped"}]

    raw_mb = sum(p.stat().st_size for p in raws) / 1e6
    print(f"\nchain benchmark, {what} ({len(raws)} raw files, {raw_mb:.0f} MB), "
          f"{os.cpu_count()} CPUs, threads {args.threads}, best of {max(args.repeat, 1)}\n")
    print(report(results, base, ratio))
    headline = ratio.get("processes:2") if base == "processes:1" else None
    if headline is not None:
        print(f"speed-up of 2 workers over 1 (processes): {headline:.2f}x")
    if same:
        print(f"products: {n_products} files, DATAMD5 identical in all {len(done)} configuration(s) "
              "and their reruns")
    else:
        print("products DIFFER between configurations:\n  " + "\n  ".join(problems))
    for label in failed:
        print(f"{label}: not every job ran (or was skipped on the rerun); see its log in {work / 'logs'}")

    if args.json:
        result = {
            "preset": args.preset, "data": str(data), "data_note": what, "seed": args.seed,
            "targets": list(TARGETS), "raw_files": len(raws), "threads": args.threads,
            "repeat": max(args.repeat, 1),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version()},
            "simulate_seconds": simulate_s, "total_seconds": time.perf_counter() - t0,
            "speedup_base": base, "speedup": ratio, "speedup_2_over_1": headline,
            "products_identical": same, "n_products": n_products, "product_problems": problems,
            "configs": [{k: v for k, v in r.items() if not k.endswith("products")} for r in results],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
        print(f"\nwritten {args.json}")
    ok = same and not failed
    if temporary and ok:
        shutil.rmtree(work, ignore_errors=True)
    elif temporary:
        print(f"kept {work} (logs in {work / 'logs'})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
