"""``vircam demo``: a simulated night from raw frames to calibrated pawprints, with no download.

It does what a survey user does, with the same commands underneath: simulate a night
(``vircam simulate``), sort the raw files (``vircam sort``), run a VISIONS calibration setup
and a science setup (``vircam pipeline``), then write the QC report of both
(``vircam report``). Running it again resumes: the simulation, the sorting and every current
job are skipped (the report is written anew).
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import yaml

from ..chain.inputs import find_fits
from ..chain.visions import pipeline_chain, read_setup
from ..logconfig import configure_logging
from ..simulate.plan import FILTERS
from ..sorting import execute_sort, plan_sort
from .errors import user_errors
from .report import write_tree_report


def _setups(out: Path, n_jobs: int | None, executor: str) -> list[Path]:
    """The calibration and science setup files of the demo, written into ``out``."""
    common = {"path_pype": "pipeline", "executor": executor, "qc_plots": True}
    if n_jobs:
        common["n_jobs"] = n_jobs
    setups = {
        "setup_calibration.yml": {"name": "demo_calibration", "path_data": "raw_sorted/calibration"},
        "setup_science.yml": {
            "name": "demo_science", "path_data": "raw_sorted/science",
            "path_master_common": "pipeline/demo_calibration/master_common",
            "local_2mass_catalog": "data/refcat/twomass_psc.fits",
            "local_gaia_catalog": "data/refcat/gaia_dr3.fits",
            "build_tile": True,
            "build_phase3": True,
            "build_public_catalog": True,
        },
    }
    paths = []
    for name, values in setups.items():
        path = out / name
        path.write_text(yaml.safe_dump({**values, **common}, sort_keys=False))
        paths.append(path)
    return paths


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="vircam_demo",
              show_default=True, help="Folder for the data, the setups and the pipeline tree.")
@click.option("--preset", type=click.Choice(["tiny", "small", "full"]), default="tiny", show_default=True,
              help="Simulated detector size (tiny: 256 px, ~1 GB; small: 512 px, ~4 GB; "
              "full: 2048 px, ~65 GB, 52 GB with --compress).")
@click.option("--seed", type=int, default=1, show_default=True, help="Simulation seed.")
@click.option("--filter", "band", type=click.Choice(list(FILTERS), case_sensitive=False), default="J",
              show_default=True, help="Science filter of the simulated tile.")
@click.option("--executor", type=click.Choice(["serial", "processes", "dask"]), default="processes",
              show_default=True)
@click.option("--n-jobs", type=click.IntRange(1), default=None, help="Workers [all cores].")
@click.option("--compress", is_flag=True,
              help="Simulate RICE-compressed raw files (.fits.fz, as the ESO archive serves them).")
@user_errors("vircam demo")
def demo(out: Path, preset: str, seed: int, band: str, executor: str, n_jobs: int | None,
         compress: bool) -> None:
    """Simulate a VIRCAM night and reduce it: master calibrations, science pawprints, tile, QC report."""
    from ..simulate import simulate

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    if (data / "truth" / "truth.json").exists():
        click.echo(f"simulated night already in {data}")
    else:
        click.echo(f"simulating a {preset} night (seed {seed}, filter {band}) into {data} ...")
        simulate(data, preset=preset, seed=seed, filter=band, compress=compress)
    actions = plan_sort(find_fits(data / "raw"), out / "raw_sorted", mode="link")
    execute_sort(actions)
    click.echo(f"sorted {len(actions)} raw files into {out / 'raw_sorted'}")
    for setup_file in _setups(out, n_jobs, executor):
        setup = read_setup(setup_file)
        chain = pipeline_chain(setup)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        configure_logging("warning", chain.temp / f"vircam_{stamp}.log")
        click.echo(f"\nvircam pipeline --setup {setup_file}")
        summary = chain.run()
        click.echo(summary.describe())
        if not summary.ok:
            raise SystemExit(1)
        _report(chain.out)
    page, products, warnings = write_tree_report(out / "pipeline", title="VIRCAM QC report: vircam demo")
    click.echo(f"\nvircam report {out / 'pipeline'}")
    click.echo(f"QC report of {products} product(s), {warnings} QC value(s) out of range: {page}")
    click.echo(f"\ndemo done in {time.perf_counter() - start:.0f} s; rerun to resume, nothing is redone")


def _report(tree: Path) -> None:
    """Where the products and QC figures are."""
    for folder in sorted(p for p in tree.iterdir() if p.is_dir() and p.name != "temp"):
        fits_files = sorted(folder.rglob("*.fits"))
        figures = sorted(folder.rglob("*.png"))
        if fits_files or figures:
            what = f"{len(fits_files)} product(s)" if fits_files else f"{len(figures)} QC figure(s)"
            click.echo(f"  {folder}/: {what}")
