"""``vircam-recipe``: run one recipe on an SOF, with EsoRex's habits.

::

    vircam-recipe --list
    vircam-recipe --man-page vircam_dark_combine
    vircam-recipe --params vircam_dark_combine
    vircam-recipe --create-config vircam_dark_combine          # writes vircam_dark_combine.rc
    vircam-recipe vircam_dark_combine --thresh=4.5 dark.sof --output-dir out \\
        --products-sof out/products.sof --recipe-config my.rc
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ParameterError, UsageError
from ..frames import read_sof, write_products_sof
from ..logconfig import LOG_LEVELS, configure_logging
from ..parameters import write_config
from ..recipe import framework_version, run_recipe
from ..recipe_doc import man_page, parameter_table
from ..registry import load_recipe, recipe_summaries
from .errors import user_errors

PROG = "vircam-recipe"


def _split_arguments(args: tuple[str, ...]) -> tuple[str | None, dict[str, str], list[str]]:
    """(recipe, {param: value}, positional) from what click left unparsed."""
    recipe, params, positional = None, {}, []
    for arg in args:
        if arg.startswith("--"):
            if "=" not in arg:
                raise ParameterError(f"recipe parameters are given as --name=value, got {arg!r}")
            name, value = arg[2:].split("=", 1)
            params[name] = value
        elif arg.startswith("-") and arg != "-":
            raise ParameterError(f"unknown option {arg!r}")
        elif recipe is None:
            recipe = arg
        else:
            positional.append(arg)
    return recipe, params, positional


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                      "help_option_names": ["-h", "--help"]},
)
@click.option("--list", "list_recipes", is_flag=True, help="List the recipes with versions and synopses.")
@click.option("--man-page", "show_man", is_flag=True, help="Show the manual page of RECIPE.")
@click.option("--params", "show_params", is_flag=True, help="List the parameters of RECIPE.")
@click.option("--create-config", is_flag=True,
              help="Write RECIPE's configuration file with the defaults (RECIPE.rc).")
@click.option("--config-out", type=click.Path(dir_okay=False),
              help="Where --create-config writes (a .yaml name writes YAML).")
@click.option("--recipe-config", type=click.Path(dir_okay=False),
              help="Parameter file (EsoRex .rc or YAML); overridden by --PARAM=VALUE.")
@click.option("--output-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder for the products.")
@click.option("--products-sof", type=click.Path(dir_okay=False),
              help="Write the products as an SOF (JSON when the name ends in .json).")
@click.option("--overwrite", is_flag=True, help="Replace existing products of the same name.")
@click.option("--qc-plots/--no-qc-plots", default=True, show_default=True,
              help="Write QC figures (PNG) next to the products.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="Detectors computed at once, in recipes that can.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
@click.option("--log-file", type=click.Path(dir_okay=False),
              help="Log file [OUTPUT_DIR/vircam-recipe.log].")
@click.version_option(framework_version(), prog_name=PROG, message="%(prog)s %(version)s")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@user_errors(PROG)
def main(list_recipes, show_man, show_params, create_config, config_out, recipe_config,
         output_dir, products_sof, overwrite, qc_plots, threads, log_level, log_file, args) -> None:
    """Run RECIPE on the frames of SOF: vircam-recipe [OPTIONS] RECIPE [--PARAM=VALUE ...] SOF"""
    recipe_name, params, positional = _split_arguments(args)
    if list_recipes:
        rows = recipe_summaries()
        width = max((len(name) for name, _, _ in rows), default=0)
        for name, version, synopsis in rows:
            click.echo(f"{name.ljust(width)}  {version:>8}  {synopsis}")
        return
    if recipe_name is None:
        raise UsageError("no recipe given (see --list)")
    recipe = load_recipe(recipe_name)
    if show_man:
        click.echo(man_page(recipe), nl=False)
        return
    if show_params:
        click.echo(parameter_table(recipe))
        return
    if create_config:
        target = Path(config_out or f"{recipe.name}.rc")
        write_config(target, recipe.name, recipe.parameters)
        click.echo(f"wrote {target}")
        return
    if len(positional) != 1:
        raise UsageError(f"expected one SOF after the recipe name, got {len(positional)}")
    configure_logging(log_level, log_file or Path(output_dir) / "vircam-recipe.log")
    frames = read_sof(positional[0])
    products = run_recipe(recipe.name, frames, params, output_dir=output_dir,
                          recipe_config=recipe_config, overwrite=overwrite, qc_plots=qc_plots,
                          threads=threads)
    if products_sof:
        write_products_sof(products, products_sof)
    for frame in products:
        click.echo(f"{frame.path} {frame.tag}")



if __name__ == "__main__":
    main()
