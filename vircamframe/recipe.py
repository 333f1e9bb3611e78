"""The recipe base class: declared metadata, validated inputs, logged parameters, safe products.

A recipe declares what it is (``name``, ``version``, ``synopsis``, ``description``,
``author``), what it takes (:class:`Input`), what it makes (:class:`Output`) and how it can be
tuned (:class:`~vircamframe.parameters.Parameter`), and implements :meth:`Recipe.process`.
Everything else — validation of the frames, parameter precedence and logging, the DFS
headers, atomic product files, the returned :class:`~vircamframe.frames.FrameSet` — happens
here, once, for every recipe. :meth:`Recipe.run` is the one way to run a recipe; the command
line, the chain engine, scripts and tests all go through it.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path
from typing import Any, ClassVar

from astropy.io import fits

from .dfs import ProcessingRecord, build_primary_header, parameter_pairs
from .errors import RecipeInputError
from .fitsio import check_fits, read_primary_header
from .frames import Frame, FrameSet
from .naming import QC_FOLDER
from .parameters import Parameter, ResolvedParameters, resolve_parameters
from .products import ProductFile

__all__ = ["Input", "Output", "Recipe"]


@dataclass(frozen=True)
class Input:
    """A declared input: one tag, or alternative tags counted together.

    Parameters
    ----------
    tags : str or tuple of str
        Accepted tags (``"DARK"`` or ``("DARK", "DARK_LINEARITY", "DARK_GAIN")``).
    group : {"RAW", "CALIB"}
        How the recipe uses the frames (raw inputs or calibrations); recorded in the product.
    min, max : int
        Allowed number of frames with these tags (``max=None``: no limit); ``min=0`` makes the
        input optional.
    help : str
        One line for the man page.
    chain_tags : tuple of str, optional
        The tags the chain engine feeds into this input (default: all of ``tags``). A dark
        combination takes the darks of a linearity sequence when a user gives them, but the
        chain makes master darks from the ``DARK`` frames only.
    when : callable, optional
        ``when(params) -> bool``: the chain engine feeds this input only when it holds for the
        job's parameters (a flat made from science frames only with ``flat_method=sky``).
    """

    tags: str | tuple[str, ...]
    group: str = "RAW"
    min: int = 1
    max: int | None = None
    help: str = ""
    chain_tags: tuple[str, ...] | None = None
    when: Callable[[Mapping[str, Any]], bool] | None = None

    @property
    def tag_tuple(self) -> tuple[str, ...]:
        return (self.tags,) if isinstance(self.tags, str) else tuple(self.tags)

    def chain_tag_tuple(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The tags the chain engine feeds into this input under ``params`` (may be empty)."""
        if self.when is not None and not self.when(params):
            return ()
        return self.chain_tags if self.chain_tags is not None else self.tag_tuple

    @property
    def required(self) -> bool:
        return self.min > 0


@dataclass(frozen=True)
class Output:
    """A declared product: its ``PRO.CATG`` and a one-line meaning.

    The other fields tell the chain engine how many products a job makes, before it runs.

    Parameters
    ----------
    per_frame : bool
        One product per raw input frame (``<raw base>.<suffix>.fits``), recorded with that
        frame as ``PRO REC RAW1``; otherwise one product per job.
    for_tags : tuple of str, optional
        A per-frame product is made only for frames that descend from raw frames with these
        tags (a sky for each ``OBJECT``, none for the offset ``SKY`` frames).
    when : callable, optional
        ``when(params) -> bool``: the product is made only when it holds (an optional
        variance plane).
    """

    category: str
    help: str
    per_frame: bool = False
    for_tags: tuple[str, ...] | None = None
    when: Callable[[Mapping[str, Any]], bool] | None = None


@cache
def _distribution_of(module: str) -> tuple[str, str]:
    top = module.split(".", 1)[0]
    names = packages_distributions().get(top, [])
    for name in names:
        try:
            return name, version(name)
        except PackageNotFoundError:
            continue
    return top, "unknown"


def framework_version() -> str:
    """The installed version of vircamframe."""
    return _distribution_of(__name__)[1]


class Recipe(ABC):
    """Base class of every recipe; subclasses declare metadata and implement :meth:`process`."""

    name: ClassVar[str]
    version: ClassVar[str] = "0.1.0"
    synopsis: ClassVar[str] = ""
    description: ClassVar[str] = ""
    author: ClassVar[str] = "vircamframe developers"
    email: ClassVar[str] = ""
    inputs: ClassVar[tuple[Input, ...]] = ()
    products: ClassVar[tuple[Output, ...]] = ()
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    # How the chain engine groups the raw inputs into jobs (DESIGN.md 3.6): frame keys of
    # vircamframe.chain.grouping (``dit``, ``filter``, ``night``, ``tag``, ...); ``frame`` makes
    # one job per frame. Frames in one job share the values of every key.
    group_by: ClassVar[tuple[str, ...]] = ("night",)

    def __init__(self, output_dir: str | Path = ".", overwrite: bool = False, qc_plots: bool = True,
                 qc_dir: str | Path | None = None, threads: int = 1) -> None:
        self.output_dir = Path(output_dir)
        self.overwrite = overwrite
        self.qc_plots = qc_plots  # recipes import matplotlib only when they plot
        self.qc_dir = Path(qc_dir) if qc_dir is not None else None  # None: next to the products
        self.threads = max(1, int(threads))  # detectors computed at once, where a recipe can
        self.log = logging.getLogger(f"vircamframe.recipe.{self.name}")
        self.params: ResolvedParameters = resolve_parameters(self.parameters)
        self.frames = FrameSet()
        self._written: list[Frame] = []
        self._created: list[Path] = []
        self._plugins: list[tuple[str, str]] = []

    # --- identification -----------------------------------------------------------------
    @classmethod
    def pipe_id(cls) -> str:
        """``distribution/version`` of the package that provides this recipe (PRO REC PIPE ID)."""
        dist, dist_version = _distribution_of(cls.__module__)
        return f"{dist}/{dist_version}"

    @classmethod
    def in_chain(cls) -> bool:
        """Whether the chain engine runs this recipe: it feeds at least one of its inputs (the
        QC report, which takes any product, declares ``chain_tags=()`` and is run on an SOF)."""
        return not cls.inputs or any(spec.chain_tags != () for spec in cls.inputs)

    @classmethod
    def input_tags(cls) -> list[str]:
        """Every tag this recipe accepts."""
        return [tag for spec in cls.inputs for tag in spec.tag_tuple]

    # --- the one way to run a recipe ---------------------------------------------------------
    def run(self, frames: FrameSet, params: Mapping[str, Any] | None = None) -> FrameSet:
        """Validate ``frames``, resolve ``params``, process, and return the products written.

        Parameters
        ----------
        frames : FrameSet
            The tagged inputs (from an SOF, the chain engine, or a script).
        params : mapping or ResolvedParameters, optional
            Parameter values overriding the declared defaults (already-resolved parameters
            from :func:`vircamframe.run_recipe` keep their recorded sources).

        Raises
        ------
        VircamError
            For bad inputs or parameters; nothing is written in that case.
        """
        start = time.perf_counter()
        if isinstance(params, ResolvedParameters):
            self.params = params
        else:
            self.params = resolve_parameters(self.parameters, overrides=params, override_source="caller")
        self.log.info("%s %s (%s)", self.name, self.version, self.pipe_id())
        for line in self.params.describe():
            self.log.info("parameter %s", line)
        self.frames = self.validate(frames)
        self._written, self._created, self._plugins = [], [], []
        token = QC_FOLDER.set(self.qc_dir)
        try:
            self.process(self.frames, self.params)
        except BaseException:
            for path in self._created:  # a failed run leaves no partial product set behind
                path.unlink(missing_ok=True)
            raise
        finally:
            QC_FOLDER.reset(token)
        self.log.info(
            "%s wrote %d product(s) in %.1f s", self.name, len(self._written), time.perf_counter() - start
        )
        return FrameSet(self._written)

    @abstractmethod
    def process(self, frames: FrameSet, params: ResolvedParameters) -> None:
        """The recipe's work: read inputs, call numerics, write products with :meth:`product`."""

    # --- validation ------------------------------------------------------------------------
    def validate(self, frames: FrameSet) -> FrameSet:
        """Check ``frames`` against the declared inputs; return them with the declared groups.

        Every frame must have a tag this recipe takes, every input its allowed count, and
        every file must be a complete FITS file.
        """
        if len(frames) == 0:
            raise RecipeInputError(f"{self.name}: no input frames")
        accepted = {tag: spec for spec in self.inputs for tag in spec.tag_tuple}
        regrouped = FrameSet()
        for frame in frames:
            spec = accepted.get(frame.tag)
            if spec is None:
                raise RecipeInputError(
                    f"{self.name}: {frame.path.name} has tag {frame.tag}, which this recipe does "
                    f"not take (it takes {', '.join(accepted)})"
                )
            regrouped.append(Frame(frame.path, frame.tag, spec.group, frame.level))
        for spec in self.inputs:
            count = sum(1 for f in regrouped if f.tag in spec.tag_tuple)
            tags = " or ".join(spec.tag_tuple)
            if count < spec.min:
                raise RecipeInputError(
                    f"{self.name}: needs at least {spec.min} frame(s) tagged {tags}, got {count}"
                )
            if spec.max is not None and count > spec.max:
                raise RecipeInputError(
                    f"{self.name}: takes at most {spec.max} frame(s) tagged {tags}, got {count}"
                )
        for frame in regrouped:
            check_fits(frame.path)
        return regrouped

    # --- helpers for process() ---------------------------------------------------------------
    def frames_of(self, *tags: str) -> FrameSet:
        """The validated input frames with any of ``tags``, in input order."""
        return self.frames.select(*tags)

    def use_strategy(self, role: str, name: str):
        """The implementation of strategy ``name`` for ``role``, recorded in the products."""
        from .registry import strategies

        strategy = strategies(role).get(name)
        entry = (f"{role}={strategy.name}", strategy.distribution)
        if entry not in self._plugins:
            self._plugins.append(entry)
        self.log.info("%s %r from %s", role, strategy.name, strategy.distribution)
        return strategy.implementation

    def product(
        self,
        category: str,
        filename: str,
        raws: Sequence[Frame],
        calibs: Sequence[Frame] | None = None,
        datancom: int | None = None,
        extra: Mapping[str, tuple[object, str]] | None = None,
    ) -> ProductFile:
        """Start a product file; use it as a context manager and add one extension per detector.

        Parameters
        ----------
        category : str
            Its ``PRO.CATG``: one of the recipe's declared products.
        filename : str
            File name within the output folder (from :mod:`vircamframe.naming`).
        raws : sequence of Frame
            The raw inputs of this product; the first is its ancestor (header inheritance).
        calibs : sequence of Frame, optional
            The calibrations used; by default every CALIB-group input of the run.
        datancom : int, optional
            Number of combined frames (default: ``len(raws)``).
        extra : mapping, optional
            More primary-header cards, ``{keyword: (value, comment)}``.
        """
        if category not in {p.category for p in self.products}:
            raise ValueError(f"{self.name} does not declare product {category}")
        calibs = list(self.frames.calib()) if calibs is None else list(calibs)
        ancestor = read_primary_header(raws[0].path) if raws else None
        record = ProcessingRecord(
            recipe=self.name,
            pipe_id=self.pipe_id(),
            drs_id=f"vircamframe/{framework_version()}",
            raws=[(f.path, f.tag) for f in raws],
            calibs=[(f.path, f.tag) for f in calibs],
            calib_levels={f.name: f.level for f in calibs if f.level},
            parameters=parameter_pairs(self.parameters, self.params),
            plugins=list(self._plugins),
        )
        science = any(f.tag in ("OBJECT", "SKY", "STD_FLUX") for f in raws) or bool(
            ancestor is not None and ancestor.get("ESO PRO SCIENCE", False)
        )
        header = build_primary_header(
            ancestor, record, category, filename, f"vircamframe/{framework_version()}",
            datancom if datancom is not None else len(raws), science, extra=extra,
        )
        return _TrackedProduct(self, self.output_dir / filename, header, self.overwrite)

    def _committed(self, product: ProductFile, existed: bool) -> None:
        frame = Frame(product.path, product.category, "CALIB")
        self._written.append(frame)
        if not existed:
            self._created.append(product.path)
        self.log.info("product %s %s", product.category, product.path)
        from .registry import plugin_manager

        try:
            plugin_manager().hook.vircam_product_written(product=frame)
        except Exception as err:  # the product is safe on disk; a listener must not undo it
            self.log.warning("vircam_product_written hook failed: %s", err)


class _TrackedProduct(ProductFile):
    """A :class:`ProductFile` that reports its commit back to the recipe run."""

    def __init__(self, recipe: Recipe, path: Path, header: fits.Header, overwrite: bool) -> None:
        self._recipe = recipe
        self._existed = Path(path).exists()
        super().__init__(path, header, overwrite)

    def commit(self) -> Path:
        path = super().commit()
        self._recipe._committed(self, self._existed)
        return path


def run_recipe(
    name: str,
    frames: FrameSet | str | Path,
    params: Mapping[str, Any] | None = None,
    *,
    output_dir: str | Path = ".",
    recipe_config: str | Path | None = None,
    overwrite: bool = False,
    qc_plots: bool = True,
    qc_dir: str | Path | None = None,
    threads: int = 1,
) -> FrameSet:
    """Run the registered recipe ``name`` and return its products.

    Parameters
    ----------
    name : str
        Registered recipe name (``vircam_dark_combine``).
    frames : FrameSet or path
        The inputs, or an SOF file to read them from.
    params : mapping, optional
        Parameter overrides (highest precedence).
    output_dir : path
        Where products are written.
    recipe_config : path, optional
        An EsoRex ``.rc`` or YAML configuration (precedence between defaults and ``params``).
    overwrite : bool
        Replace existing products of the same name.
    qc_plots : bool
        Write the recipe's QC figures (next to its products, or into ``qc_dir``).
    qc_dir : path, optional
        A folder for the QC figures.
    threads : int
        Detectors a recipe may compute at once (recipes that can use
        :func:`vircamframe.parallel.ordered_map`); the products do not depend on it.
    """
    from .frames import read_sof
    from .parameters import read_config
    from .registry import load_recipe

    recipe_class = load_recipe(name)
    if not isinstance(frames, FrameSet):
        frames = read_sof(frames)
    config = read_config(recipe_config, name) if recipe_config else None
    resolved = resolve_parameters(
        recipe_class.parameters, config, params,
        config_source=f"recipe config {recipe_config}", override_source="command line",
    )
    recipe = recipe_class(output_dir=output_dir, overwrite=overwrite, qc_plots=qc_plots, qc_dir=qc_dir,
                          threads=threads)
    return recipe.run(frames, resolved)

