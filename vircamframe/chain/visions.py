"""The VISIONS-style driver: a ``setup.yml`` of VISIONS pipeline keys run through the chain.

``vircam pipeline --setup setup.yml`` accepts the keys of the VISIONS pipeline (vircampype)
and maps them onto chain targets and recipe parameters (DESIGN.md 3.7). A parameter key sets
that parameter in every recipe of the chain that declares it; nothing here names a recipe.
A setup whose ``name`` contains ``calibration`` makes master calibrations; any other makes
science products as far as the ``build_*`` keys ask and recipes exist. Products are laid out
as VISIONS lays them out, under ``path_pype/<name>/``::

    master_common/  master_object/  headers/  processed/  resampled/  stacks/  tile/
    statistics/  phase3/  qc/  temp/

Unknown keys are errors that name the key and the closest known one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ChainError
from ..frames import Frame, expand_vars
from .engine import Chain, available_recipes
from .workflow import check_keys

__all__ = ["SETUP_KEYS", "VISIONS_FOLDERS", "VISIONS_LAYOUT", "PipelineSetup", "read_setup"]

log = logging.getLogger(__name__)

VISIONS_FOLDERS = ("master_common", "master_object", "headers", "processed", "resampled", "stacks",
                   "tile", "statistics", "phase3", "qc", "temp")

# Where each product goes (the first product a recipe declares decides its folder).
VISIONS_LAYOUT: dict[str, str] = {
    "MASTER_DARK": "master_common",
    "MASTER_CHANNEL_TABLE": "master_common",
    "MASTER_BPM": "master_common",
    "MASTER_READGAIN_TABLE": "master_common",
    "MASTER_TWILIGHT_FLAT": "master_common",
    "MASTER_CONF": "master_common",
    "MASTER_OBJMASK": "master_object",
    "MASTER_SKY": "master_object",
    "MASTER_ILLUMCORR": "master_object",
    "BASIC_CALIBRATED_SCI": "processed",
    "SKYSUB_SCI": "processed",
    "WEIGHT_SCI": "processed",
    "PHOTCAL_SCI": "processed",
    "ASTROM_HEADER": "headers",
    "ASTROM_QC": "qc",
    "RESAMPLED_SCI": "resampled",
    "JITTERED_IMAGE_SCI": "stacks",
    "TILED_IMAGE": "tile",
    "TILED_OBJECT_CATALOGUE": "tile",
    "JITTERED_OBJECT_CATALOGUE": "stacks",
    "STAT_EXPTIME": "statistics",
    "PHASE3_IMAGE": "phase3",
    "PUBLIC_CATALOGUE": "phase3",
}

CALIBRATION_TARGETS = ("MASTER_DARK", "MASTER_CHANNEL_TABLE", "MASTER_BPM", "MASTER_READGAIN_TABLE",
                       "MASTER_TWILIGHT_FLAT", "MASTER_CONF")
SCIENCE_TARGETS = ("SKYSUB_SCI", "WEIGHT_SCI")
# the calibrated pawprints: asked for whenever a recipe makes them (like VISIONS, which always
# calibrates astrometry and photometry)
CALIBRATED_TARGETS = ("ASTROM_HEADER", "PHOTCAL_SCI")


@dataclass(frozen=True)
class SetupKey:
    """A setup key: its type, default, meaning, and the recipe parameter it sets (if any)."""

    type: type
    default: Any
    help: str
    param: str | None = None
    values: Mapping[str, str] | None = None  # setup value -> parameter value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError("expected true or false")


_BUILD: dict[str, tuple[str, ...]] = {  # build_* key -> the products it asks for
    "build_stacks": ("JITTERED_IMAGE_SCI", "JITTERED_OBJECT_CATALOGUE"),
    "build_tile": ("TILED_IMAGE", "TILED_OBJECT_CATALOGUE", "STAT_EXPTIME", "STAT_NIMG", "STAT_MJD",
                   "STAT_ASTRMS"),
    "build_phase3": ("PHASE3_IMAGE",),
    "build_public_catalog": ("PUBLIC_CATALOGUE",),
}

SETUP_KEYS: dict[str, SetupKey] = {
    "name": SetupKey(str, None, "run name; one containing 'calibration' makes master calibrations"),
    "path_data": SetupKey(str, None, "folder of the raw frames"),
    "path_pype": SetupKey(str, None, "root of the output trees (the run goes to path_pype/name)"),
    "path_master_common": SetupKey(str, "", "master calibrations of a calibration run"),
    "n_jobs": SetupKey(int, 0, "parallel jobs (0: all cores)"),
    "executor": SetupKey(str, "processes", "serial, processes or dask"),
    "scheduler": SetupKey(str, "", "Dask scheduler address (executor dask)"),
    "overwrite": SetupKey(bool, False, "rerun every step even when its products are current"),
    "qc_plots": SetupKey(bool, True, "write QC figures into qc/"),
    "build_stacks": SetupKey(bool, False, "make a stack per offset position"),
    "build_tile": SetupKey(bool, True, "make the co-added tile"),
    "build_phase3": SetupKey(bool, False, "make ESO Phase 3 products"),
    "build_public_catalog": SetupKey(bool, False, "make the public source catalogue"),
    "flat_type": SetupKey(str, "twilight", "twilight or sky flats", "flat_method"),
    "source_mask_method": SetupKey(str, "builtin", "source masker (builtin, noisechisel)", "mask_method"),
    "mask_2mass_sources": SetupKey(bool, True, "mask bright 2MASS stars", "mask_bright_stars"),
    "mask_bright_galaxies": SetupKey(bool, False, "mask RC3 galaxies", "mask_bright_galaxies"),
    "sky_window": SetupKey(float, 180.0, "full width of the sliding sky window [min]", "sky_window"),
    "sky_method": SetupKey(str, "sliding_window", "sky method plugin", "sky_method"),
    "destripe": SetupKey(bool, True, "remove the row stripe pattern", "destripe"),
    "subtract_background": SetupKey(bool, True, "subtract a 2-D background", "subtract_background"),
    "background_mesh_size": SetupKey(int, 64, "background mesh [pixels]", "background_mesh_size"),
    "background_mesh_filtersize": SetupKey(int, 3, "background filter [meshes]", "background_filter_size"),
    "scamp_mode": SetupKey(str, "auto", "SCAMP mode (auto, exposure, instrument, loose, ...)", "scamp_mode"),
    "illumination_correction_mode": SetupKey(str, "variable", "variable or constant",
                                             "illumination_correction_mode"),
    "resampling_kernel": SetupKey(str, "lanczos3", "SWarp resampling kernel", "resampling_kernel"),
    "local_gaia_catalog": SetupKey(str, "", "Gaia DR3 table with VizieR columns (offline)"),
    "local_2mass_catalog": SetupKey(str, "", "2MASS PSC table with VizieR columns (offline)"),
}
_REQUIRED = ("name", "path_data", "path_pype")
_CONVERT: dict[type, Callable[[Any], Any]] = {bool: _bool, int: int, float: float, str: str}


@dataclass
class PipelineSetup:
    """A checked setup: every key with its value (defaults filled in)."""

    path: Path
    values: dict[str, Any]
    given: frozenset[str] = frozenset()  # the keys the file sets

    @property
    def is_calibration(self) -> bool:
        return "calibration" in self.values["name"].lower()

    @property
    def out(self) -> Path:
        return Path(self.values["path_pype"]) / self.values["name"]

    def targets(self, makeable: set[str]) -> list[str]:
        """The products to make; ``build_*`` products no recipe makes yet are logged and left out."""
        if self.is_calibration:
            return list(CALIBRATION_TARGETS)
        wanted = list(SCIENCE_TARGETS) + [tag for tag in CALIBRATED_TARGETS if tag in makeable]
        for key, products in _BUILD.items():
            if self.values[key]:
                for product in products:
                    if product in makeable:
                        wanted.append(product)
                    else:
                        log.warning("%s: no recipe makes %s yet; left out", key, product)
        return wanted

    def params(self, declared: set[str]) -> dict[str, Any]:
        """Recipe parameters from the keys the user set (defaults stay the recipes' own)."""
        params = {}
        for key, spec in SETUP_KEYS.items():
            if spec.param is None or key not in self.given:
                continue
            if spec.param in declared:
                params[spec.param] = self.values[key]
            else:
                log.warning("%s: no recipe of this chain has parameter %s yet; ignored", key, spec.param)
        return params

    def provider_params(self) -> dict[str, dict[str, str]]:
        """Per recipe, ``refcat_provider: vizier`` where no local catalogue is given (VISIONS
        queries the archives unless told to use a local table; offline, the error names the
        local key)."""
        return {recipe: {"refcat_provider": "vizier"}
                for key, recipe in (("local_gaia_catalog", "vircam_astrometry"),
                                    ("local_2mass_catalog", "vircam_photometry"))
                if not self.values[key]}

    def calibrations(self) -> list[Path | Frame]:
        """User-given calibrations: a calibration run's masters and the local catalogues."""
        calibs: list[Path | Frame] = []
        if self.values["path_master_common"]:
            calibs.append(Path(self.values["path_master_common"]))
        for key, tag in (("local_gaia_catalog", "REFCAT_ASTROM"), ("local_2mass_catalog", "REFCAT_PHOTOM")):
            if self.values[key]:
                path = Path(self.values[key])
                if not path.is_file():
                    raise ChainError(f"setup {self.path}: {key} {path} is not a file")
                calibs.append(Frame(path, tag, "CALIB"))
        return calibs


def read_setup(path: str | os.PathLike) -> PipelineSetup:
    """Read and check a VISIONS-style setup file.

    Raises
    ------
    ChainError
        An unknown key (with the closest known one), a missing required key, or a value of
        the wrong type.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ChainError(f"setup {path}: cannot read it ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ChainError(f"setup {path}: expected a mapping of VISIONS setup keys")
    check_keys(data, tuple(SETUP_KEYS), f"setup {path}")
    missing = [key for key in _REQUIRED if not data.get(key)]
    if missing:
        raise ChainError(f"setup {path}: missing required key(s) {', '.join(missing)}")
    base = path.parent.absolute()
    values: dict[str, Any] = {}
    for key, spec in SETUP_KEYS.items():
        value = data.get(key, spec.default)
        if value is None:
            values[key] = None
            continue
        try:
            value = _CONVERT[spec.type](value)
        except (TypeError, ValueError):
            raise ChainError(
                f"setup {path}: {key} must be {spec.type.__name__}, got {data.get(key)!r}"
            ) from None
        if key.startswith(("path_", "local_")) and value:
            value = str(base / expand_vars(os.path.expanduser(value), f"setup {path} {key}"))
        values[key] = value
    return PipelineSetup(path, values, frozenset(data))


def pipeline_chain(setup: PipelineSetup) -> Chain:
    """The :class:`Chain` a setup describes, with the VISIONS output tree created."""
    values = setup.values
    recipes = available_recipes()
    makeable = {output.category for cls in recipes.values() for output in cls.products}
    declared = {p.name for cls in recipes.values() for p in cls.parameters}
    raw = Path(values["path_data"])
    if not raw.exists():
        raise ChainError(f"setup {setup.path}: path_data {raw} does not exist")
    for folder in VISIONS_FOLDERS:
        (setup.out / folder).mkdir(parents=True, exist_ok=True)
    return Chain(
        raw, setup.targets(makeable), setup.out,
        calibs=setup.calibrations(),
        params={"*": setup.params(declared),
                **{r: p for r, p in setup.provider_params().items() if r in recipes}},
        layout=VISIONS_LAYOUT,
        executor=values["executor"],
        n_jobs=values["n_jobs"] or None,
        scheduler=values["scheduler"] or None,
        qc_plots=values["qc_plots"],
        qc_folder="qc",
        overwrite=True,  # the VISIONS tree is the pipeline's own: it was just laid out
    )
