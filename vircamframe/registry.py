"""The one registry: recipes and plugin strategies, discovered through entry points.

Recipes are found in the ``vircamframe.recipes`` entry-point group (``name = module:Class``)
and imported only when used. Listing them with their versions and synopses reads a small
index cached per user, keyed by each module file's size and modification time, so
``vircam-recipe --list`` does not import every recipe module once the index is warm.

Plugins are modules or objects in the ``vircamframe.plugins`` group, loaded into one pluggy
plugin manager; strategies (source maskers, flat methods, sky methods, reference catalogues)
are registered through the hooks of :mod:`vircamframe.hookspecs` into one
:class:`StrategyRegistry` per role and chosen by name.

A plugin or recipe that fails to import warns, naming its distribution and version, and the
rest carry on; with ``VIRCAM_STRICT_PLUGINS=1`` (for CI) the failure is fatal.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import PluginError, UnknownRecipeError

if TYPE_CHECKING:
    from .recipe import Recipe

__all__ = [
    "PLUGIN_GROUP",
    "RECIPE_GROUP",
    "ROLES",
    "PluginInfo",
    "PluginLoadWarning",
    "RecipeEntry",
    "StrategyRegistry",
    "load_recipe",
    "plugin_manager",
    "recipe_entries",
    "recipe_summaries",
    "strategies",
]

log = logging.getLogger(__name__)

RECIPE_GROUP = "vircamframe.recipes"
PLUGIN_GROUP = "vircamframe.plugins"
# role -> the hook that fills its registry
ROLES: dict[str, str] = {
    "source_masker": "vircam_register_source_maskers",
    "flat_method": "vircam_register_flat_methods",
    "sky_method": "vircam_register_sky_methods",
    "reference_catalog": "vircam_register_reference_catalogs",
}


class PluginLoadWarning(UserWarning):
    """A recipe or plugin entry point could not be loaded; the others still work."""


def canonical_name(distribution: str) -> str:
    """PEP 503 normalised distribution name: ``Vircam_Example.Masker`` -> ``vircam-example-masker``."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _dist_label(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"


def _load_failed(kind: str, ep: EntryPoint, err: BaseException) -> None:
    message = (
        f"{kind} {ep.name!r} ({ep.value}) from {_dist_label(ep)} failed to load: "
        f"{type(err).__name__}: {err}"
    )
    if os.environ.get("VIRCAM_STRICT_PLUGINS", "") not in ("", "0"):
        raise PluginError(message) from err
    warnings.warn(message, PluginLoadWarning, stacklevel=3)


# --- recipes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecipeEntry:
    """A recipe known from its entry point, not yet imported."""

    name: str
    entry_point: EntryPoint

    @property
    def distribution(self) -> str:
        """``name version`` of the distribution that provides the recipe."""
        return _dist_label(self.entry_point)

    def load(self) -> type[Recipe]:
        """Import the recipe class (errors propagate; callers decide how loud to be)."""
        from .recipe import Recipe

        obj = self.entry_point.load()
        if not (isinstance(obj, type) and issubclass(obj, Recipe)):
            raise TypeError(f"{self.entry_point.value} is not a vircamframe Recipe subclass")
        if obj.name != self.name:
            raise TypeError(f"entry point {self.name!r} names a recipe called {obj.name!r}")
        return obj


def recipe_entries() -> dict[str, RecipeEntry]:
    """All registered recipes by name, without importing any of them."""
    found = {}
    for ep in entry_points(group=RECIPE_GROUP):
        found.setdefault(ep.name, RecipeEntry(ep.name, ep))
    return dict(sorted(found.items()))


def load_recipe(name: str) -> type[Recipe]:
    """Import and return the recipe class registered as ``name``.

    Raises
    ------
    UnknownRecipeError
        When no recipe has that name (with the closest names), or its module fails to import.
    """
    entries = recipe_entries()
    if name not in entries:
        close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else "; see vircam-recipe --list"
        raise UnknownRecipeError(f"unknown recipe {name!r}{hint}")
    entry = entries[name]
    try:
        return entry.load()
    except Exception as err:
        raise UnknownRecipeError(
            f"recipe {name!r} from {entry.distribution} failed to load: {type(err).__name__}: {err}"
        ) from err


def _cache_file() -> Path:
    root = os.environ.get("VIRCAM_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path.home() / ".cache"
    return (base if os.environ.get("VIRCAM_CACHE_DIR") else base / "vircamframe") / "recipe-index.json"


def _module_stamp(ep: EntryPoint) -> str | None:
    """``value|size|mtime`` of the recipe's module file, found without importing it."""
    module = ep.value.split(":", 1)[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    stat = os.stat(spec.origin)
    return f"{ep.value}|{_dist_label(ep)}|{spec.origin}|{stat.st_size}|{stat.st_mtime_ns}"


def recipe_summaries() -> list[tuple[str, str, str]]:
    """``(name, version, synopsis)`` of every loadable recipe, importing only changed ones.

    A recipe that fails to import is left out with a :class:`PluginLoadWarning`.
    """
    cache_path = _cache_file()
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    rows, changed = [], False
    for name, entry in recipe_entries().items():
        stamp = _module_stamp(entry.entry_point)
        cached = cache.get(name)
        if stamp and cached and cached.get("stamp") == stamp:
            rows.append((name, cached["version"], cached["synopsis"]))
            continue
        try:
            recipe = entry.load()
        except Exception as err:
            _load_failed("recipe", entry.entry_point, err)
            continue
        rows.append((name, recipe.version, recipe.synopsis))
        if stamp:
            cache[name] = {"stamp": stamp, "version": recipe.version, "synopsis": recipe.synopsis}
            changed = True
    if changed:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            os.replace(tmp, cache_path)
        except OSError as err:  # a read-only home must not break listing
            log.debug("recipe index not cached: %s", err)
    return rows


# --- plugins and strategies ------------------------------------------------------------------

@dataclass
class Strategy:
    """One registered implementation of a role."""

    name: str
    implementation: Callable[..., Any]
    description: str
    plugin: str
    distribution: str


class StrategyNames(tuple):
    """The names shown for a role, whose ``in`` also accepts every ``dist:name`` form."""

    def __new__(cls, shown: list[str], qualified: set[str]) -> StrategyNames:
        names = super().__new__(cls, shown)
        names.qualified = frozenset(qualified)
        return names

    def __contains__(self, name: object) -> bool:
        if tuple.__contains__(self, name):
            return True
        if not isinstance(name, str) or ":" not in name:
            return False
        dist, plain = name.split(":", 1)
        return f"{canonical_name(dist)}:{plain}" in self.qualified


class StrategyRegistry:
    """The strategies of one role (e.g. ``source_masker``), chosen by name.

    A strategy can always be selected as ``<distribution>:<name>``; the plain ``<name>`` works
    while only one distribution registers it, and is an error naming the candidates otherwise:
    the choice never depends on install order.
    """

    def __init__(self, role: str) -> None:
        self.role = role
        self._by_name: dict[str, list[Strategy]] = {}
        self._current: tuple[str, str] = ("", "")

    def add(self, name: str, implementation: Callable[..., Any], description: str = "") -> None:
        """Register ``implementation`` under ``name`` (called from a plugin's hook)."""
        if not name or ":" in name or not callable(implementation):
            raise PluginError(
                f"plugin {self._current[0]!r} registered an invalid {self.role} {name!r}"
            )
        plugin, dist = self._current
        self._by_name.setdefault(name, []).append(
            Strategy(name, implementation, description, plugin, dist)
        )

    def names(self) -> StrategyNames:
        """Selectable names: each unique plain name, ``dist:name`` for the ambiguous ones.

        Membership (``x in names``) also accepts the qualified form of every strategy.
        """
        plain = [n for n in sorted(self._by_name) if len(self._by_name[n]) == 1]
        ambiguous = sorted(
            f"{s.distribution.split()[0]}:{s.name}" for s in self if len(self._by_name[s.name]) > 1
        )
        qualified = {f"{canonical_name(s.distribution.split()[0])}:{s.name}" for s in self}
        return StrategyNames(plain + ambiguous, qualified)

    def __iter__(self) -> Iterator[Strategy]:
        for candidates in self._by_name.values():
            yield from candidates

    def get(self, name: str) -> Strategy:
        """The strategy called ``name`` (or ``dist:name``); errors list what is available."""
        if ":" in name:
            dist, plain = name.split(":", 1)
            for strategy in self._by_name.get(plain, []):
                if canonical_name(strategy.distribution.split()[0]) == canonical_name(dist):
                    return strategy
        elif len(self._by_name.get(name, [])) == 1:
            return self._by_name[name][0]
        elif name in self._by_name:
            options = " or ".join(f"{s.distribution.split()[0]}:{name}" for s in self._by_name[name])
            raise PluginError(f"{self.role} {name!r} is registered by several plugins; use {options}")
        raise PluginError(
            f"unknown {self.role} {name!r}; installed: {', '.join(self.names()) or 'none'}"
        )


@dataclass
class PluginInfo:
    """A loaded plugin: where it came from and which hooks it implements."""

    name: str
    value: str
    distribution: str
    hooks: list[str] = field(default_factory=list)


class _Manager:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        for ep in entry_points(group=PLUGIN_GROUP):
            try:
                plugin = ep.load()
                registered = self.pm.register(plugin, name=f"{ep.name}@{_dist_label(ep)}")
                if registered is None:
                    continue  # the same module twice: pluggy keeps the first
            except Exception as err:
                _load_failed("plugin", ep, err)
                continue
            hooks = [h.name for h in self.pm.get_hookcallers(plugin) or []]
            self.info[registered] = PluginInfo(ep.name, ep.value, _dist_label(ep), sorted(hooks))
        self.registries: dict[str, StrategyRegistry] = {}

    def registry(self, role: str) -> StrategyRegistry:
        if role not in self.registries:
            registry = StrategyRegistry(role)
            caller = getattr(self.pm.hook, ROLES[role])
            for impl in reversed(caller.get_hookimpls()):  # pluggy lists last-registered first
                info = self.info.get(impl.plugin_name)
                registry._current = (impl.plugin_name, info.distribution if info else "unknown")
                try:
                    impl.function(registry)
                except PluginError:
                    raise
                except Exception as err:
                    message = f"plugin {impl.plugin_name!r} failed in {ROLES[role]}: {err}"
                    if os.environ.get("VIRCAM_STRICT_PLUGINS", "") not in ("", "0"):
                        raise PluginError(message) from err
                    warnings.warn(message, PluginLoadWarning, stacklevel=2)
            self.registries[role] = registry
        return self.registries[role]


@cache
def _manager() -> _Manager:
    return _Manager()


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide pluggy manager with every plugin of the entry-point group loaded."""
    return _manager().pm


def plugin_infos() -> list[PluginInfo]:
    """The loaded plugins, in load order."""
    return list(_manager().info.values())


def strategies(role: str) -> StrategyRegistry:
    """The :class:`StrategyRegistry` of ``role`` (one of :data:`ROLES`)."""
    if role not in ROLES:
        raise PluginError(f"unknown strategy role {role!r}; roles: {', '.join(ROLES)}")
    return _manager().registry(role)


def strategy_names(role: str) -> Callable[[], list[str]]:
    """A callable for ``Parameter(choices=...)``: the names selectable for ``role`` now.

    It carries ``role``, so the chain engine can put the chosen plugin's version into a job key.
    """

    def names() -> list[str]:
        return strategies(role).names()

    names.role = role  # type: ignore[attr-defined]
    return names


def reset() -> None:
    """Forget loaded plugins (tests that install or break plugins call this)."""
    _manager.cache_clear()
