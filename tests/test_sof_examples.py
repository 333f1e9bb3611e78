"""The examples in ``sof_examples/``: one SOF per recipe and a workflow, run on the data they name.

The tiny simulated night (seed 1) is made once and the example workflow reduces it to
``$VIRCAM_DATA/products``; ``VIRCAM_DATA`` points there for this module only. Under
pytest-xdist the night lives in a folder shared by the run's workers and a file lock lets the
first worker make it while the others wait (the workflow takes about a minute on one core).
Each example SOF is then run into its own folder: it must make the products its recipe
declares, with the same data (``DATAMD5``) as the same-named products of the workflow, which
were made from the same inputs with the same (default) parameters.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.table import Table

from vircamframe import run_recipe
from vircamframe.association import original_tag
from vircamframe.chain import Chain
from vircamframe.chain.workflow import read_workflow
from vircamframe.frames import read_sof
from vircamframe.naming import per_frame_name
from vircamframe.parameters import resolve_parameters
from vircamframe.registry import load_recipe, recipe_entries

from conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "sof_examples"
WORKFLOW = EXAMPLES / "workflow.yml"
SOFS = sorted(EXAMPLES.glob("*.sof"))
NIGHT = "sof_examples_night"
N_OBJECT = 12  # OBJECT pawprints of the tiny night: one SKYSUB_SCI and one WEIGHT_SCI each


def project_recipes() -> list[str]:
    """The recipes this project registers (a third-party one installed beside it has no example)."""
    return [name for name, entry in recipe_entries().items()
            if entry.entry_point.value.startswith("vircam_recipes.")]


def chained(name: str) -> bool:
    """Whether the chain runs recipe ``name`` (it feeds at least one of its inputs); the QC
    report is not a chain step (``vircam report`` makes it for a finished tree)."""
    return load_recipe(name).in_chain()


def chain_recipes() -> list[str]:
    """The project's recipes the example workflow runs."""
    return [name for name in project_recipes() if chained(name)]


CHAIN_SOFS = [sof for sof in SOFS if chained(sof.stem)]


def _make_night(data: Path) -> None:
    """Simulate the night into ``data`` and run the example workflow on it."""
    from vircamframe.simulate import simulate

    simulate(data, preset="tiny", seed=1)
    summary = Chain.from_workflow(WORKFLOW, executor="serial", qc_plots=False).run(progress=False)
    if not summary.ok:
        raise RuntimeError(f"the example workflow failed: {summary.describe()}")


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> Path:
    """``$VIRCAM_DATA``: the simulated night with the workflow's products, made once per run."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent  # this run's, shared by its workers
    else:
        root = tmp_path_factory.mktemp("sof_examples")
    data, done, failed = root / NIGHT, root / f"{NIGHT}.done", root / f"{NIGHT}.failed"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIRCAM_DATA", str(data))
        with open(root / f"{NIGHT}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if failed.exists():
                    pytest.fail(f"making the example night failed in another worker: {failed.read_text()}")
                if not done.exists():
                    shutil.rmtree(data, ignore_errors=True)
                    try:
                        _make_night(data)
                    except Exception as err:
                        failed.write_text(f"{type(err).__name__}: {err}")
                        raise
                    done.touch()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        yield data


def workflow_products(data: Path) -> dict[str, Path]:
    """The workflow's products by file name."""
    found: dict[str, Path] = {}
    for path in (data / "products").rglob("*.fits"):
        if "temp" not in path.relative_to(data / "products").parts:
            assert path.name not in found, f"two workflow products named {path.name}"
            found[path.name] = path
    return found


def datamd5(path: Path) -> str:
    value = fits.getheader(path)["DATAMD5"]
    assert value and value != "0" * 32, f"{path.name} has no DATAMD5"
    return value


def expected_products(recipe_name: str, sof: Path) -> Counter:
    """How many products of each category the recipe declares for the frames of ``sof``."""
    cls = load_recipe(recipe_name)
    params = resolve_parameters(cls.parameters)
    raws = list(read_sof(sof).raw())
    expected = Counter()
    for output in cls.products:
        if output.when is not None and not output.when(params):
            continue
        if not output.per_frame:
            expected[output.category] += 1
        else:
            expected[output.category] += sum(1 for frame in raws if output.for_tags is None
                                             or original_tag(frame) in output.for_tags)
    return expected


# --- the examples themselves (no data needed) ---------------------------------------------------

def test_every_recipe_has_an_example_sof():
    assert sorted(sof.stem for sof in SOFS) == project_recipes()


def test_workflow_runs_every_recipe_with_defaults(monkeypatch):
    monkeypatch.setenv("VIRCAM_DATA", "/data")
    workflow = read_workflow(WORKFLOW)
    assert sorted(workflow.steps) == chain_recipes()
    assert len(set(workflow.steps)) == len(workflow.steps)
    assert workflow.raw == Path("/data/raw")
    assert workflow.calib == [Path("/data/sof/refcat.sof")]
    assert workflow.out == Path("/data/products")
    assert sorted(workflow.targets) == ["ASTROM_HEADER", "JITTERED_IMAGE_SCI", "JITTERED_OBJECT_CATALOGUE",
                                        "PHASE3_IMAGE", "PHOTCAL_SCI", "PUBLIC_CATALOGUE", "SKYSUB_SCI",
                                        "STAT_EXPTIME", "TILED_IMAGE", "TILED_OBJECT_CATALOGUE", "WEIGHT_SCI"]
    # the example SOFs are run with defaults, so the workflow must keep them to match
    assert not any(workflow.params.values()), workflow.params


@pytest.mark.parametrize("sof", SOFS, ids=lambda path: path.stem)
def test_example_sof_is_well_formed(sof, monkeypatch):
    """``$VIRCAM_DATA`` paths only, a run command in the header, inputs the recipe accepts."""
    text = sof.read_text()
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    paths = [line.split()[0] for line in lines if line]
    assert paths and all(path.startswith("$VIRCAM_DATA/") for path in paths)
    assert f"vircam-recipe {sof.stem} sof_examples/{sof.name}" in text
    assert "vircam simulate --out $VIRCAM_DATA --preset tiny --seed 1" in text
    if "$VIRCAM_DATA/products/" in text:
        assert "vircam chain --workflow sof_examples/workflow.yml" in text
    monkeypatch.setenv("VIRCAM_DATA", "/data")
    frames = read_sof(sof, check_exists=False)
    cls = load_recipe(sof.stem)
    accepted = {tag: item.group for item in cls.inputs for tag in item.tag_tuple}
    for frame in frames:
        assert accepted.get(frame.tag) == frame.group, f"{frame.name}: {frame.tag} {frame.group}"
    for item in cls.inputs:
        count = sum(1 for frame in frames if frame.tag in item.tag_tuple)
        assert count >= item.min and (item.max is None or count <= item.max), item.tags


# --- run on the simulated night ------------------------------------------------------------------

def test_workflow_makes_the_products_the_sofs_use(night):
    folders = {path.name for path in (night / "products").iterdir() if path.is_dir()} - {"temp"}
    assert folders == {name.removeprefix("vircam_") for name in chain_recipes()}
    made = workflow_products(night)
    assert sum(name.endswith(".skysub.fits") for name in made) == N_OBJECT
    weights = {per_frame_name("WEIGHT_SCI", name) for name in made if name.endswith(".skysub.fits")}
    assert len(weights) == N_OBJECT and weights <= set(made)  # each pawprint's own weight
    for sof in SOFS:
        for frame in read_sof(sof):  # every file exists
            if frame.path.is_relative_to(night / "products"):
                assert made[frame.name] == frame.path


@pytest.mark.parametrize("sof", CHAIN_SOFS, ids=lambda path: path.stem)
def test_example_sof_reproduces_the_workflow(night, sof, tmp_path):
    products = run_recipe(sof.stem, sof, output_dir=tmp_path, qc_plots=False)
    assert Counter(frame.tag for frame in products) == expected_products(sof.stem, sof)
    made = workflow_products(night)
    for frame in products:
        assert frame.path.parent == tmp_path
        assert frame.name in made, f"the workflow made no {frame.name}"
        assert datamd5(frame.path) == datamd5(made[frame.name]), frame.name


def test_qc_report_example_reports_every_product(night, tmp_path):
    """The QC-report example (not a workflow step) reads every product of its SOF, each
    under the category its SOF line gives."""
    sof = EXAMPLES / "vircam_qc_report.sof"
    [report] = run_recipe("vircam_qc_report", sof, output_dir=tmp_path, qc_plots=False)
    table = Table.read(report.path, "QC_REPORT")
    given = {frame.name: frame.tag for frame in read_sof(sof)}
    assert dict(zip(table["PRODUCT"], table["CATEGORY"], strict=True)) == given
    assert report.path.with_suffix(".html").is_file()


def test_documented_commands_run(night, tmp_path):
    """The header's vircam-recipe command line works as written, and a second run of the
    workflow by ``vircam chain`` finds every job current."""
    sof = EXAMPLES / "vircam_dark_combine.sof"
    command = re.search(r"^#\s+vircam-recipe (.+)$", sof.read_text(), re.MULTILINE).group(1).split()
    assert command[-2:] == ["--output-dir", "out"]
    result = run_cli("vircam-recipe", *command[:-1], tmp_path / "out", "--no-qc-plots", cwd=REPO)
    assert result.returncode == 0, result.stderr
    [product] = (tmp_path / "out").glob("master_dark.*.fits")
    assert datamd5(product) == datamd5(workflow_products(night)[product.name])

    result = run_cli("vircam", "chain", "--workflow", WORKFLOW, "--no-qc-plots", "--executor", "serial",
                     cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert re.search(r"\b(\d+) job\(s\) in [\d.]+ s: \1 skipped", result.stdout), result.stdout
