"""The chain engine: plan, then run the jobs in dependency order, skipping what is current.

:class:`Chain` is the Python API behind ``vircam chain``, ``vircam pipeline`` and
``vircam demo``: ``Chain(raw, targets, out).plan()`` resolves the jobs (nothing is written),
``.run()`` runs them on the chosen executor. Each job's SOF goes to ``temp/sof/``, its full
log to ``temp/logs/``, and the manifest (``temp/manifest.json``) records its key, status,
timing and products as soon as it ends, so a killed run resumes where it stopped and a second
run does no work.
"""

from __future__ import annotations

import difflib
import logging
import shutil
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ChainError
from ..frames import Frame
from ..parameters import format_value, resolve_parameters
from ..recipe import Recipe, framework_version
from ..registry import load_recipe, recipe_entries, strategies
from .executors import make_executor
from .grouping import PlanFrame
from .inputs import load_calibrations, load_raw
from .manifest import JobRecord, Manifest, ProductRecord, job_key
from .plan import Job, Plan, plan_jobs, short_name
from .worker import JobResult, JobSpec, execute_job

__all__ = ["Chain", "RunSummary"]

log = logging.getLogger(__name__)
ON_ERROR = ("abort", "continue")


@dataclass
class RunSummary:
    """How each job of a run ended: ``ran``, ``skipped`` (current), ``failed``, ``blocked``
    (an input failed) or ``not run`` (the run was aborted first)."""

    status: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    products: dict[str, list[ProductRecord]] = field(default_factory=dict)
    wall: float = 0.0

    @property
    def ok(self) -> bool:
        return all(s in ("ran", "skipped") for s in self.status.values())

    def count(self, status: str) -> int:
        return sum(1 for s in self.status.values() if s == status)

    def all_products(self) -> list[ProductRecord]:
        return [p for records in self.products.values() for p in records]

    def describe(self) -> str:
        statuses = ("ran", "skipped", "failed", "blocked", "not run")
        counts = ", ".join(f"{self.count(s)} {s}" for s in statuses if self.count(s))
        lines = [f"{len(self.status)} job(s) in {self.wall:.1f} s: {counts}"]
        for job_id, error in self.errors.items():
            lines.append(f"  FAILED {job_id}: {error}")
        blocked = [j for j, s in self.status.items() if s == "blocked"]
        if blocked:
            lines.append(f"  blocked by failures: {', '.join(blocked)}")
        return "\n".join(lines)


def available_recipes(names: Iterable[str] | None = None) -> dict[str, type[Recipe]]:
    """The recipe classes the chain may use (all registered ones by default).

    A recipe that fails to import is left out with a warning (fatal with
    ``VIRCAM_STRICT_PLUGINS=1``), as everywhere else.
    """
    from ..registry import _load_failed

    if names is not None:
        return {name: load_recipe(name) for name in names}
    found: dict[str, type[Recipe]] = {}
    for name, entry in recipe_entries().items():
        try:
            found[name] = entry.load()
        except Exception as err:  # one broken recipe never breaks the others
            _load_failed("recipe", entry.entry_point, err)
    return found


class Chain:
    """A chain of recipes from raw frames to ``targets``, in the output tree ``out``.

    Parameters
    ----------
    raw : path
        A directory of raw frames (searched recursively) or an SOF.
    targets : sequence of str
        Product tags to make (``MASTER_DARK``, ``SKYSUB_SCI``...).
    out : path
        The output tree; it belongs to the chain (products, ``temp/``).
    calibs : sequence of path or Frame
        User-given calibrations and reference catalogues (SOFs, product folders or files, or
        tagged frames); they win over what the chain would make.
    params : mapping
        Parameter values: ``{recipe name: {param: value}}``; the key ``"*"`` sets a parameter
        of every recipe that declares it.
    recipes : sequence of str, optional
        Restrict the chain to these recipes (a workflow's steps).
    layout : mapping, optional
        Output folder per product tag (the first product a recipe declares decides);
        by default one folder per recipe.
    executor : {"serial", "processes", "dask"}
    n_jobs : int, optional
        Workers (default: the machine's cores).
    scheduler : str, optional
        Address of a running Dask scheduler (with ``executor="dask"``).
    on_error : {"abort", "continue"}
    qc_plots : bool
        Let recipes write their QC figures.
    qc_folder : str, optional
        Put the QC figures into ``out/<qc_folder>/<recipe>/`` rather than next to the products.
    overwrite : bool
        Allow an existing, non-empty ``out`` that holds no chain manifest.
    """

    def __init__(
        self,
        raw: str | Path,
        targets: Sequence[str],
        out: str | Path,
        *,
        calibs: Sequence[str | Path | Frame] = (),
        params: Mapping[str, Mapping[str, Any]] | None = None,
        recipes: Sequence[str] | None = None,
        layout: Mapping[str, str] | None = None,
        executor: str = "processes",
        n_jobs: int | None = None,
        scheduler: str | None = None,
        on_error: str = "abort",
        qc_plots: bool = True,
        qc_folder: str | None = None,
        overwrite: bool = False,
    ) -> None:
        if on_error not in ON_ERROR:
            raise ChainError(f"on_error must be abort or continue, not {on_error!r}")
        if not targets:
            raise ChainError("no target product tags given")
        self.raw = Path(raw)
        self.targets = tuple(t.strip().upper() for t in targets)
        self.out = Path(out).absolute()
        self.calib_sources = [c if isinstance(c, Frame) else Path(c) for c in calibs]
        self.qc_folder = qc_folder
        self.recipes = available_recipes(recipes)
        self.layout = dict(layout or {})
        self.executor, self.n_jobs, self.scheduler = executor, n_jobs, scheduler
        self.on_error, self.qc_plots, self.overwrite = on_error, qc_plots, overwrite
        self.params = self._resolve_params(params or {})
        self._plan: Plan | None = None

    @classmethod
    def from_workflow(cls, path: str | Path, **overrides: Any) -> Chain:
        """A chain from a workflow YAML file (:mod:`.workflow`); ``overrides`` (``raw``,
        ``out``, ``targets``, ``calibs``, ``params``, executor options) win over the file.

        Targets default to the products of the last step.
        """
        from .workflow import read_workflow

        workflow = read_workflow(path)
        recipes = available_recipes(workflow.steps)
        targets = overrides.pop("targets", None) or workflow.targets or [
            output.category for output in recipes[workflow.steps[-1]].products
            if output.when is None
            or output.when(resolve_parameters(recipes[workflow.steps[-1]].parameters,
                                              overrides=workflow.params.get(workflow.steps[-1])))
        ]
        params = {name: dict(values) for name, values in workflow.params.items()}
        for recipe, values in (overrides.pop("params", None) or {}).items():
            params.setdefault(recipe, {}).update(values)
        raw = overrides.pop("raw", None) or workflow.raw
        out = overrides.pop("out", None) or workflow.out
        if raw is None or out is None:
            raise ChainError(f"workflow {path}: give 'raw' and 'out' in the file or on the command line")
        calibs = list(workflow.calib) + list(overrides.pop("calibs", None) or [])
        options = {**workflow.options, **overrides}
        return cls(raw, targets, out, calibs=calibs, params=params, recipes=workflow.steps, **options)

    # --- parameters -------------------------------------------------------------------------
    def _resolve_params(self, params: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        shared = dict(params.get("*", {}))
        declared = {p.name for cls in self.recipes.values() for p in cls.parameters}
        for name in shared:
            if name not in declared:
                close = difflib.get_close_matches(name, sorted(declared), n=2, cutoff=0.6)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                raise ChainError(f"no recipe in the chain has a parameter {name!r}{hint}")
        for recipe in params:
            if recipe != "*" and recipe not in self.recipes:
                close = difflib.get_close_matches(recipe, list(self.recipes), n=2, cutoff=0.6)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                raise ChainError(f"parameters for {recipe!r}, which is not a recipe of the chain{hint}")
        resolved = {}
        for name, cls in self.recipes.items():
            own = {p.name for p in cls.parameters}
            values = {k: v for k, v in shared.items() if k in own}
            values.update(params.get(name, {}))
            resolved[name] = resolve_parameters(cls.parameters, overrides=values, override_source="chain")
        return resolved

    # --- planning ---------------------------------------------------------------------------
    def _folder(self, cls: type[Recipe]) -> str:
        first = cls.products[0].category if cls.products else ""
        return self.layout.get(first, short_name(cls.name))

    def files(self) -> list[PlanFrame]:
        """The classified raw frames and user calibrations the chain starts from."""
        return load_raw(self.raw) + load_calibrations(self.calib_sources)

    def plan(self) -> Plan:
        """The jobs that make the targets, in dependency order; nothing is written."""
        if self._plan is None:
            self._plan = plan_jobs(self.recipes, self.files(), self.targets, self.params, self._folder)
        return self._plan

    # --- the output tree --------------------------------------------------------------------
    @property
    def temp(self) -> Path:
        return self.out / "temp"

    def manifest(self) -> Manifest:
        return Manifest(self.temp / "manifest.json")

    def clean(self) -> list[Path]:
        """Delete what earlier runs made here (the products the manifest lists, and ``temp/``).

        Files the chain did not make are left alone.
        """
        removed = []
        for record in self.manifest().jobs.values():
            for product in record.products:
                path = self.out / product.path
                if path.exists():
                    path.unlink()
                    removed.append(path)
                for figure in path.parent.glob(f"{path.name.removesuffix('.fits')}*.png"):
                    figure.unlink()
                    removed.append(figure)
        for tree in [self.temp] + ([self.out / self.qc_folder] if self.qc_folder else []):
            if tree.exists():
                shutil.rmtree(tree)
                removed.append(tree)
        for folder in sorted({p.parent for p in removed if p != self.temp}, reverse=True):
            if folder.is_dir() and folder != self.out and not any(folder.iterdir()):
                folder.rmdir()
        if self.out.exists():
            self.manifest().save()  # an empty manifest: the tree stays the chain's
        return removed

    def claim_output(self) -> None:
        """Make ``out`` the chain's: refuse a non-empty folder without a manifest (unless
        ``overwrite``), then write an empty manifest so later checks know the tree."""
        manifest = self.temp / "manifest.json"
        if manifest.exists():
            return
        if self.out.exists() and any(self.out.iterdir()) and not self.overwrite:
            raise ChainError(
                f"{self.out} is not empty and holds no chain manifest; choose another output "
                "directory or allow overwriting"
            )
        self.manifest().save()

    # --- running ----------------------------------------------------------------------------
    def run(self, reset_progress: bool = False, progress: bool = True) -> RunSummary:
        """Run the plan; jobs whose key and products are current are skipped.

        Parameters
        ----------
        reset_progress : bool
            Forget the manifest first: every job runs again (products are replaced).
        progress : bool
            Show a progress bar per recipe when stderr is a terminal.
        """
        plan = self.plan()
        self.claim_output()
        manifest = self.manifest()
        if reset_progress:
            manifest.forget()
        with make_executor(self.executor, self.n_jobs, self.scheduler) as executor:
            log.info("running %d job(s) on %s with %d worker(s)", len(plan.jobs), executor.name,
                     executor.workers)
            return _Run(self, plan, manifest, executor, progress).go()

    def job_spec(self, job: Job, frames: list[Frame], threads: int = 1) -> JobSpec:
        params = {name: self.params[job.recipe][name] for name in self.params[job.recipe]}
        return JobSpec(
            job.id, job.recipe, tuple(frames), params, str(self.out / job.output_dir),
            str(self.temp / "logs" / f"{job.file_stem}.log"), self.qc_plots,
            str(self.out / self.qc_folder / short_name(job.recipe)) if self.qc_folder else None,
            threads,
        )

    def key_of(self, job: Job, frames: list[Frame], manifest: Manifest) -> str:
        cls = self.recipes[job.recipe]
        params = self.params[job.recipe]
        plugins = {}
        for parameter in cls.parameters:
            role = getattr(parameter.choices, "role", None)
            if role is not None:
                plugins[parameter.name] = strategies(role).get(params[parameter.name]).distribution
        return job_key({
            "recipe": cls.name, "version": cls.version, "pipe": cls.pipe_id(),
            "framework": framework_version(), "plugins": plugins,
            "params": {name: format_value(params[name]) for name in params},
            "inputs": [(f.tag, f.group, f.name, manifest.content_hash(f.path)) for f in frames],
        })


class _Run:
    """One execution of a plan: the scheduling loop and its book-keeping."""

    def __init__(self, chain: Chain, plan: Plan, manifest: Manifest, executor, progress: bool) -> None:
        self.chain, self.plan, self.manifest, self.executor = chain, plan, manifest, executor
        self.jobs = plan.by_id()
        self.summary = RunSummary()
        self.actual: dict[str, list[str]] = {}  # plan frame id -> files it turned out to be
        self.bars = _Bars(plan, progress)
        self.keys: dict[str, str] = {}
        # A recipe with one job holds up the rest of the chain: it computes its detectors on all
        # workers' cores (threads); recipes with several jobs are parallel across jobs already.
        jobs_per_recipe = {r: sum(1 for j in plan.jobs if j.recipe == r) for r in plan.stages()}
        self.threads = {r: executor.workers if n == 1 else 1 for r, n in jobs_per_recipe.items()}

    def go(self) -> RunSummary:
        start = time.perf_counter()
        pending = list(self.plan.jobs)
        running: dict[Any, Job] = {}
        aborted = False
        try:
            while pending or running:
                started = True
                while started and not aborted:  # a skipped job can make others ready at once
                    started = False
                    for job in [j for j in pending if self._ready(j)]:
                        if aborted:
                            break
                        pending.remove(job)
                        started = True
                        future = self._start(job)
                        if future is None:
                            continue
                        if future.done():  # the serial executor ran it already: stop at a failure
                            aborted = self._complete(job, future)
                        else:
                            running[future] = job
                pending = [j for j in pending if j.id not in self.summary.status]
                if not running:
                    for job in pending:
                        self._finish(job, "not run" if aborted else "blocked")
                    break
                for future in self.executor.wait(list(running)):
                    aborted = self._complete(running.pop(future), future) or aborted
        finally:
            self.bars.close()
        self.summary.wall = time.perf_counter() - start
        log.info("%s", self.summary.describe())
        return self.summary

    def _complete(self, job: Job, future: Any) -> bool:
        """Record a finished job; True when the run must stop (it failed, ``on_error=abort``)."""
        result = future.result()
        self._record(job, result)
        return not result.ok and self.chain.on_error == "abort"

    def _ready(self, job: Job) -> bool:
        states = [self.summary.status.get(dep) for dep in job.deps]
        if any(s in ("failed", "blocked", "not run") for s in states):
            self._finish(job, "blocked")
            return False
        return all(s in ("ran", "skipped") for s in states) and job.id not in self.summary.status

    def _frames(self, job: Job) -> list[Frame]:
        frames = []
        for frame, group, level in job.inputs():
            paths = [str(frame.path)] if frame.path is not None else self.actual.get(frame.id, [])
            frames += [Frame(Path(path), frame.tag, group, level) for path in paths]
        return frames

    def _start(self, job: Job):
        frames = self._frames(job)
        key = self.chain.key_of(job, frames, self.manifest)
        self.keys[job.id] = key
        record = self.manifest.current(job.id, key, self.chain.out)
        if record is not None:
            self._resolve(job, [self._absolute(p) for p in record.products])
            self._finish(job, "skipped", products=record.products)
            return None
        self._write_sof(job, frames)
        log.info("start %s (%s)", job.id, job.recipe)
        return self.executor.submit(execute_job, self.chain.job_spec(job, frames, self.threads[job.recipe]))

    def _absolute(self, product: ProductRecord) -> ProductRecord:
        return ProductRecord(str(self.chain.out / product.path), product.tag, product.datamd5, product.parent)

    def _relative(self, product: ProductRecord) -> ProductRecord:
        path = Path(product.path)
        relative = path.relative_to(self.chain.out) if path.is_relative_to(self.chain.out) else path
        return ProductRecord(str(relative), product.tag, product.datamd5, product.parent)

    def _record(self, job: Job, result: JobResult) -> None:
        spec_log = str(Path("temp") / "logs" / f"{job.file_stem}.log")
        if result.ok:
            products = [self._relative(p) for p in result.products]
            self.manifest.record(job.id, JobRecord(self.keys[job.id], job.recipe, "done", result.seconds,
                                                   products=products, log=spec_log,
                                                   peak_rss_mb=round(result.peak_rss_mb, 1)))
            self._resolve(job, result.products)
            self._finish(job, "ran", result.seconds, products)
            log.info("done %s in %.1f s (peak %.0f MB): %d product(s)", job.id, result.seconds,
                     result.peak_rss_mb, len(products))
        else:
            self.manifest.record(job.id, JobRecord(self.keys[job.id], job.recipe, "failed", result.seconds,
                                                   error=result.error, log=spec_log))
            self.summary.errors[job.id] = result.error
            self._finish(job, "failed", result.seconds)
            log.error("FAILED %s: %s (log: %s)", job.id, result.error, self.chain.out / spec_log)

    def _resolve(self, job: Job, products: list[ProductRecord]) -> None:
        """Which product files the job's predicted outputs turned out to be."""
        raw_ids = {}
        for frame in job.raws:
            for path in [str(frame.path)] if frame.path is not None else self.actual.get(frame.id, []):
                raw_ids[Path(path).name] = frame.id
        for output in job.outputs:
            if output.parent is not None:
                found = [p.path for p in products
                         if p.tag == output.tag and raw_ids.get(p.parent) == output.parent]
            else:
                found = [p.path for p in products if p.tag == output.tag]
            self.actual[output.id] = found

    def _finish(self, job: Job, status: str, seconds: float = 0.0,
                products: list[ProductRecord] | None = None) -> None:
        self.summary.status[job.id] = status
        self.summary.seconds[job.id] = seconds
        self.summary.products[job.id] = list(products or [])
        self.bars.update(job)

    def _write_sof(self, job: Job, frames: list[Frame]) -> Path:
        path = self.chain.temp / "sof" / f"{job.file_stem}.sof"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"# {job.recipe} job {job.id} (written by the vircamframe chain engine)"]
        for frame in frames:
            note = f"  # association level {frame.level}" if frame.level else ""
            lines.append(f"{frame.path} {frame.tag} {frame.group}{note}")
        path.write_text("\n".join(lines) + "\n")
        return path


class _Bars:
    """A progress bar per recipe, on a terminal only."""

    def __init__(self, plan: Plan, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bars = {}
        if not enabled:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for position, recipe in enumerate(plan.stages()):
                total = sum(1 for j in plan.jobs if j.recipe == recipe)
                self.bars[recipe] = tqdm(total=total, desc=short_name(recipe), position=position,
                                         disable=None, leave=True, unit="job")

    def update(self, job: Job) -> None:
        bar = self.bars.get(job.recipe)
        if bar is not None:
            bar.update(1)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
