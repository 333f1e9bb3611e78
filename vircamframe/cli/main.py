"""``vircam``: the survey-level command (classify, plugins, simulate, sort, ...)."""

from __future__ import annotations

import click

from ..recipe import framework_version
from ..simulate.cli import simulate_command
from .chain import chain
from .classify import classify
from .demo import demo
from .docs import docs
from .pipeline import pipeline
from .plugins import plugins
from .report import report
from .sort import sort


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(framework_version(), prog_name="vircam", message="%(prog)s %(version)s")
def cli() -> None:
    """vircamframe: VIRCAM data reduction from raw frames to tiles and catalogues."""


cli.add_command(chain)
cli.add_command(classify)
cli.add_command(demo)
cli.add_command(docs)
cli.add_command(pipeline)
cli.add_command(plugins)
cli.add_command(report)
cli.add_command(sort)
cli.add_command(simulate_command, name="simulate")


if __name__ == "__main__":
    cli()
