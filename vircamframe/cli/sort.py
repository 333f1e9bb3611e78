"""``vircam sort FILES... --out DIR``: raw files into calibration and science folders."""

from __future__ import annotations

import click

from ..sorting import SORT_MODES, execute_sort, plan_sort
from .errors import user_errors


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Sorted tree root.")
@click.option("--move", "mode", flag_value="move", help="Move instead of copy.")
@click.option("--link", "mode", flag_value="link",
              help="Hard-link instead of copy: no extra disk space (a copy across file systems).")
@click.option("--copy", "mode", flag_value="copy", default=True, hidden=True)
@click.option("--dry-run", is_flag=True, help="Only print what would be done.")
@user_errors("vircam sort")
def sort(files: tuple[str, ...], out: str, mode: str, dry_run: bool) -> None:
    """Sort raw FILES into OUT/calibration and OUT/science/<OB>_<filter>.

    Nothing is overwritten or lost: identical files already in place are skipped, different
    ones are conflicts left alone, unclassifiable files stay where they are. Exits 1 when
    any file was unknown or in conflict.
    """
    actions = plan_sort(files, out, mode=mode)
    prefix = "would " if dry_run else ""
    for action in actions:
        click.echo(prefix + action.describe() if action.kind in SORT_MODES else action.describe())
    if not dry_run:
        execute_sort(actions)
    counts = {kind: sum(a.kind == kind for a in actions)
              for kind in (*SORT_MODES, "skip", "conflict", "unknown")}
    click.echo(", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "nothing to do")
    if counts["conflict"] or counts["unknown"]:
        raise SystemExit(1)
