"""``vircam pipeline --setup setup.yml``: the VISIONS-style driver over the chain engine."""

from __future__ import annotations

from pathlib import Path

import click

from ..chain.visions import pipeline_chain, read_setup
from ..logconfig import LOG_LEVELS
from .chain import run_chain
from .errors import user_errors


@click.command()
@click.option("--setup", "setup_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A setup YAML file with VISIONS pipeline keys.")
@click.option("--dry-run", is_flag=True, help="Print the plan and stop.")
@click.option("--reset-progress", is_flag=True, help="Forget earlier runs: every step runs again.")
@click.option("--clean", is_flag=True, help="Delete the products and temp/ of earlier runs first.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="warning", show_default=True)
@user_errors("vircam pipeline")
def pipeline(setup_file: Path, dry_run: bool, reset_progress: bool, clean: bool, log_level: str) -> None:
    """Run the pipeline a VISIONS setup file describes, into path_pype/name/.

    A name containing 'calibration' makes the master calibrations (master_common/); any
    other name makes calibrated pawprints (processed/) and, as recipes exist, stacks and
    tile. Interrupted runs resume; unchanged steps are skipped.
    """
    setup = read_setup(setup_file)
    chain = pipeline_chain(setup)
    run_chain(chain, dry_run, reset_progress or setup.values["overwrite"], clean, log_level,
              "vircam pipeline")
