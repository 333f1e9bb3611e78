"""From target tags to jobs: recipe resolution, grouping and association (DESIGN.md 3.2, 3.6).

Nothing here knows a recipe by name. A recipe is pulled into the chain because it declares a
product that a target or another recipe's input needs; its raw inputs are grouped into jobs
by its ``group_by`` keys; each job's calibrations are chosen by the association rules of
:mod:`vircamframe.association` (user-given calibrations first), or, for per-frame products
such as a pawprint's sky, by the frame they are made from. What a job will make is predicted
from the recipe's declared outputs, so the whole plan exists before anything runs.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..association import associate, describe_setup, matches, rule_for
from ..errors import ChainError
from ..recipe import Input, Recipe
from .grouping import PlanFrame, group_key, group_label

__all__ = ["Calibration", "Job", "Plan", "plan_jobs"]


@dataclass(frozen=True)
class Calibration:
    """A calibration chosen for a job, and how: association ``level`` 0, 1, ..., ``user`` or
    ``frame`` (the product made from the job's frame)."""

    frame: PlanFrame
    level: str


@dataclass
class Job:
    """One recipe run: its raw inputs, chosen calibrations and predicted products."""

    id: str
    recipe: str
    raws: list[PlanFrame]
    calibs: list[Calibration]
    outputs: list[PlanFrame]
    output_dir: str
    deps: frozenset[str] = frozenset()
    stage: int = 0

    @property
    def file_stem(self) -> str:
        """The job id as a file name (its SOF ``temp/sof/<stem>.sof``, log ``temp/logs/<stem>.log``)."""
        return self.id.replace("/", ".")

    def inputs(self) -> list[tuple[PlanFrame, str, str]]:
        """(frame, group, association level) in SOF order: raws, then calibrations."""
        return [(f, "RAW", "") for f in self.raws] + [(c.frame, "CALIB", c.level) for c in self.calibs]


@dataclass
class Plan:
    """The jobs of a chain in dependency order, with notes on what could not be planned."""

    targets: tuple[str, ...]
    jobs: list[Job]
    notes: list[str] = field(default_factory=list)

    def by_id(self) -> dict[str, Job]:
        return {job.id: job for job in self.jobs}

    def stages(self) -> list[str]:
        """The recipes in the order their first jobs run."""
        order: list[str] = []
        for job in sorted(self.jobs, key=lambda j: j.stage):
            if job.recipe not in order:
                order.append(job.recipe)
        return order

    def describe(self) -> str:
        """The plan as text: per recipe, each job with its inputs, calibrations and products."""
        lines = [f"plan: {len(self.jobs)} job(s) for {', '.join(self.targets)}"]
        for recipe in self.stages():
            jobs = [j for j in self.jobs if j.recipe == recipe]
            lines.append(f"\n{recipe}: {len(jobs)} job(s)")
            for job in jobs:
                counts: dict[str, int] = defaultdict(int)
                for frame in job.raws:
                    counts[frame.tag] += 1
                raws = ", ".join(f"{n} {tag}" for tag, n in counts.items())
                lines.append(f"  {job.id}  [{raws}] -> {job.output_dir}/  (SOF temp/sof/{job.file_stem}.sof)")
                for calib in job.calibs:
                    lines.append(f"      {calib.frame.tag:<22} {calib.frame.label}  (level {calib.level})")
                made = defaultdict(int)
                for frame in job.outputs:
                    made[frame.tag] += 1
                lines.append("      makes " + ", ".join(f"{n} {tag}" for tag, n in made.items()))
        if self.notes:
            lines.append("\nnot planned:")
            lines.extend(f"  {note}" for note in self.notes)
        return "\n".join(lines)


def short_name(recipe: str) -> str:
    return recipe.removeprefix("vircam_")


class _Planner:
    def __init__(
        self,
        recipes: Mapping[str, type[Recipe]],
        files: Sequence[PlanFrame],
        params: Mapping[str, Mapping[str, Any]],
        layout: Callable[[type[Recipe]], str],
    ) -> None:
        self.recipes = recipes
        self.params = params
        self.layout = layout
        self.given: dict[str, list[PlanFrame]] = defaultdict(list)
        for frame in files:
            self.given[frame.tag].append(frame)
        self.producers: dict[str, list[str]] = defaultdict(list)
        self.per_frame: set[str] = set()
        for name, cls in recipes.items():
            for output in cls.products:
                if output.when is None or output.when(params[name]):
                    self.producers[output.category].append(name)
                    if output.per_frame:
                        self.per_frame.add(output.category)
        self.jobs: dict[str, list[Job]] = {}
        self.outputs: dict[str, PlanFrame] = {}  # every planned product by id, for lineages
        self.active: list[str] = []
        self.notes: list[str] = []

    # --- which frames of a tag exist or will exist -----------------------------------------
    def made(self, tag: str, consumer: str) -> list[PlanFrame]:
        frames = []
        for producer in self.producers.get(tag, []):
            if producer != consumer:  # a recipe never feeds itself (MASTER_BPM in and out)
                frames += [f for job in self.plan_recipe(producer) for f in job.outputs if f.tag == tag]
        return frames

    # --- one recipe's jobs ----------------------------------------------------------------
    def plan_recipe(self, name: str) -> list[Job]:
        if name in self.jobs:
            return self.jobs[name]
        if name in self.active:
            cycle = " -> ".join([*self.active[self.active.index(name):], name])
            raise ChainError(f"recipes depend on each other in a cycle: {cycle}")
        self.active.append(name)
        cls, params = self.recipes[name], self.params[name]
        raw_specs = [s for s in cls.inputs if s.group == "RAW" and s.chain_tag_tuple(params)]
        if not cls.in_chain():
            self.notes.append(f"{name} is not run by the chain (it is fed none of its inputs); "
                              "run it on an SOF")
        frames: dict[str, PlanFrame] = {}
        for spec in raw_specs:
            for tag in spec.chain_tag_tuple(params):
                for frame in self.given[tag] + self.made(tag, name):
                    frames.setdefault(frame.id, frame)
        groups: dict[tuple, list[PlanFrame]] = defaultdict(list)
        for frame in sorted(frames.values(), key=lambda f: (f.info.mjd or 0.0, f.id)):
            groups[group_key(frame, cls.group_by, name)].append(frame)
        jobs: list[Job] = []
        used_ids: set[str] = set()
        for values, members in groups.items():
            job_id = f"{short_name(name)}/{group_label(cls.group_by, values)}"
            while job_id in used_ids:
                job_id += "+"
            used_ids.add(job_id)
            job = self._job(cls, params, job_id, members, raw_specs)
            if job is not None:
                jobs.append(job)
                self.outputs.update((f.id, f) for f in job.outputs)
        self.active.pop()
        self.jobs[name] = jobs
        return jobs

    def _job(self, cls: type[Recipe], params, job_id: str, raws: list[PlanFrame],
             raw_specs: list[Input]) -> Job | None:
        for spec in raw_specs:
            count = sum(1 for f in raws if f.tag in spec.tag_tuple)
            tags = " or ".join(spec.chain_tag_tuple(params))
            if count < spec.min:
                self.notes.append(f"{job_id}: {count} {tags} frame(s), {cls.name} needs at least {spec.min}")
                return None
            if spec.max is not None and count > spec.max:
                self.notes.append(f"{job_id}: {count} {tags} frames, {cls.name} takes at most {spec.max}")
                return None
        outputs = []
        for output in cls.products:
            if output.when is not None and not output.when(params):
                continue
            if output.per_frame:
                outputs += [
                    f.product(output.category, job_id, True) for f in raws
                    if output.for_tags is None or f.root_tag in output.for_tags
                ]
            else:
                outputs.append(raws[0].product(output.category, job_id, False))
        if not outputs:
            return None  # e.g. a sky-subtraction job for an offset SKY frame: nothing to make
        calibs: list[Calibration] = []
        for spec in cls.inputs:
            if spec.group != "CALIB":
                continue
            for tag in spec.chain_tag_tuple(params):
                chosen, problem = self._associate(cls.name, tag, spec, raws)
                if problem and spec.required:
                    self.notes.append(f"{job_id}: {problem}")
                    return None
                calibs += [c for c in chosen if c.frame.id not in {k.frame.id for k in calibs}]
        deps = {f.job for f in raws if f.job} | {c.frame.job for c in calibs if c.frame.job}
        return Job(job_id, cls.name, raws, calibs, outputs, self.layout(cls), frozenset(deps))

    def _closest_relative(self, frame: PlanFrame, made: list[PlanFrame]) -> list[PlanFrame]:
        """The per-frame products in ``made`` of ``frame`` or of its nearest ancestor.

        A pawprint's weight is made from its basic-calibrated frame alongside the sky-subtracted
        one, so the photometric pawprint (a product of that) finds it one generation up.
        """
        node: PlanFrame | None = frame
        while node is not None:
            found = [f for f in made if f.parent == node.id]
            if found:
                return found
            node = self.outputs.get(node.parent) if node.parent else None
        return []

    def _associate(self, recipe: str, tag: str, spec: Input, raws: list[PlanFrame]):
        """The ``tag`` calibrations for ``raws``, and a one-line problem when one is missing."""
        user = self.given[tag]
        made = self.made(tag, recipe)
        chosen: list[Calibration] = []
        if tag in self.per_frame:  # a product made from each frame: found by its parent
            for raw in raws:
                given = [f for f in user if raw.path is not None and f.parent == raw.path.name]
                own = self._closest_relative(raw, made)
                if not given and not own:
                    return chosen, f"no {tag} made from {raw.label}"
                chosen.append(Calibration(given[0], "user") if given else Calibration(own[0], "frame"))
            return chosen, None
        targets = raws[:1] if spec.max == 1 else raws
        for raw in targets:
            good = [f for f in user if matches(raw.info, f.info, tag)]
            if good:  # a user-given calibration always wins, at any distance in time
                best = min(good, key=lambda f: abs((f.info.mjd or 0.0) - (raw.info.mjd or 0.0)))
                choice = Calibration(best, "user")
            else:
                found = associate(raw.info, [(f, f.info) for f in made], tag)
                if found is None:
                    setup = describe_setup(raw.info, tag)
                    windows = ", ".join(f"{w:g}" for w in rule_for(tag).windows)
                    where = f" ({setup})" if setup else ""
                    return chosen, f"no {tag} for {raw.label}{where} within {windows} days"
                choice = Calibration(found[0], str(found[1]))
            if choice.frame.id not in {c.frame.id for c in chosen}:
                chosen.append(choice)
        return chosen, None


def plan_jobs(
    recipes: Mapping[str, type[Recipe]],
    files: Sequence[PlanFrame],
    targets: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    layout: Callable[[type[Recipe]], str],
) -> Plan:
    """Resolve ``targets`` into the jobs that make them from ``files``.

    Parameters
    ----------
    recipes : mapping
        The recipes the chain may use, by name.
    files : sequence of PlanFrame
        Raw frames and user-given calibrations, classified.
    targets : sequence of str
        Product tags wanted (``SKYSUB_SCI``, ``MASTER_DARK``...).
    params : mapping
        Resolved parameters per recipe name.
    layout : callable
        The output folder (relative to the chain's output tree) of a recipe's products.

    Raises
    ------
    ChainError
        When no recipe makes a target, recipes form a cycle, or nothing can be planned.
    """
    planner = _Planner(recipes, files, params, layout)
    wanted: list[Job] = []
    for target in targets:
        if target not in planner.producers:
            known = sorted(planner.producers)
            close = difflib.get_close_matches(target, known, n=2, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; known: {', '.join(known)}"
            raise ChainError(f"no recipe makes target {target}{hint}")
        for producer in planner.producers[target]:
            wanted += [j for j in planner.plan_recipe(producer) if any(o.tag == target for o in j.outputs)]
    everything = {job.id: job for jobs in planner.jobs.values() for job in jobs}
    needed: dict[str, Job] = {}
    stack = list(wanted)
    while stack:  # keep only the jobs the targets depend on
        job = stack.pop()
        if job.id not in needed:
            needed[job.id] = job
            stack += [everything[d] for d in job.deps]
    if not needed:
        detail = "; ".join(planner.notes[:5]) or "no input frames with the tags the recipes take"
        raise ChainError(f"nothing to make for {', '.join(targets)}: {detail}")
    ordered: list[Job] = []
    done: set[str] = set()

    def visit(job: Job) -> None:
        if job.id in done:
            return
        for dep in sorted(job.deps):
            visit(needed[dep])
        job.stage = 1 + max((needed[d].stage for d in job.deps), default=-1)
        done.add(job.id)
        ordered.append(job)

    for job in sorted(needed.values(), key=lambda j: j.id):
        visit(job)
    ordered.sort(key=lambda j: (j.stage, j.id))
    return Plan(tuple(targets), ordered, planner.notes)
