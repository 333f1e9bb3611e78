"""Chains written down: a YAML file of steps and parameters, as an EsoReflex workflow is.

::

    name: science pawprints
    raw: $VIRCAM_DATA/raw              # a folder of raw frames, or an SOF
    calib: [$VIRCAM_DATA/sof/refcat.sof]
    out: reduced
    targets: [SKYSUB_SCI]              # default: the products of the last step
    steps:
      - recipe: vircam_dark_combine
      - recipe: vircam_sky_combine
        parameters: {sky_window: 60}

The steps are the recipes the chain may use (the engine still orders them by their inputs);
each step's parameters go to its recipe. ``$VAR`` is expanded and relative paths are taken
from the workflow's folder, so a workflow travels with its data like an SOF. An unknown key
is an error that names it and the closest known key.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ChainError
from ..frames import expand_vars

__all__ = ["Workflow", "check_keys", "read_workflow"]

WORKFLOW_KEYS = ("name", "raw", "calib", "out", "targets", "steps", "executor", "n_jobs", "on_error")
STEP_KEYS = ("recipe", "parameters")


def check_keys(data: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    """Raise a :class:`ChainError` naming the first unknown key of ``data`` and a close known one."""
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise ChainError(f"{where}: unknown key {key!r}{hint}")


@dataclass
class Workflow:
    """A chain read from a workflow file."""

    path: Path
    name: str
    steps: list[str]
    params: dict[str, dict[str, Any]]
    raw: Path | None = None
    calib: list[Path] = field(default_factory=list)
    out: Path | None = None
    targets: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


def _path(value: Any, base: Path, where: str) -> Path:
    text = expand_vars(os.path.expanduser(str(value)), where)
    path = Path(text)
    return path if path.is_absolute() else base / path


def read_workflow(path: str | os.PathLike) -> Workflow:
    """Read and check a workflow YAML file.

    Raises
    ------
    ChainError
        Unreadable YAML, an unknown key, a step without a recipe, or no steps.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ChainError(f"workflow {path}: cannot read it ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ChainError(f"workflow {path}: expected a mapping of keys (name, raw, steps, ...)")
    check_keys(data, WORKFLOW_KEYS, f"workflow {path}")
    steps = data.get("steps") or []
    if not isinstance(steps, list) or not steps:
        raise ChainError(f"workflow {path}: 'steps' must be a non-empty list of recipes")
    base = path.parent.absolute()
    names, params = [], {}
    for number, step in enumerate(steps, start=1):
        where = f"workflow {path} step {number}"
        if isinstance(step, str):
            step = {"recipe": step}
        if not isinstance(step, dict) or "recipe" not in step:
            raise ChainError(f"{where}: each step needs a 'recipe'")
        check_keys(step, STEP_KEYS, where)
        names.append(str(step["recipe"]))
        parameters = step.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ChainError(f"{where}: 'parameters' must be a mapping of name: value")
        params[str(step["recipe"])] = dict(parameters)
    calib = data.get("calib") or []
    calib = [calib] if isinstance(calib, str) else list(calib)
    targets = data.get("targets") or []
    targets = [targets] if isinstance(targets, str) else [str(t) for t in targets]
    where = f"workflow {path}"
    return Workflow(
        path=path,
        name=str(data.get("name", path.stem)),
        steps=names,
        params=params,
        raw=_path(data["raw"], base, where) if data.get("raw") else None,
        calib=[_path(c, base, where) for c in calib],
        out=_path(data["out"], base, where) if data.get("out") else None,
        targets=targets,
        options={k: data[k] for k in ("executor", "n_jobs", "on_error") if k in data},
    )
