"""``vircam-recipe`` as a user runs it: listing, man page, configuration, products, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from vircam_recipes.dark_combine import DarkCombine

from conftest import rec_params, run_cli


def fits_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".fits" in p.name)


def test_list_shows_versions_and_synopses(tmp_path):
    result = run_cli("vircam-recipe", "--list", env={"VIRCAM_CACHE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert lines["vircam_dark_combine"].split()[1] == DarkCombine.version
    assert "Combine dark frames of one DIT/NDIT into a master dark" in lines["vircam_dark_combine"]
    assert "vircam_source_mask" in lines
    # the second listing is served from the index without importing the recipes
    index = json.loads((tmp_path / "recipe-index.json").read_text())
    assert index["vircam_dark_combine"]["synopsis"].startswith("Combine dark frames")
    again = run_cli("vircam-recipe", "--list", env={"VIRCAM_CACHE_DIR": str(tmp_path)})
    assert again.stdout == result.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from vircamframe.registry import recipe_summaries; "
         "recipe_summaries(); print(sorted(m for m in sys.modules if m.startswith('vircam_recipes.')))"],
        env={**os.environ, "VIRCAM_CACHE_DIR": str(tmp_path)}, capture_output=True, text=True, check=True,
    )
    assert probe.stdout.strip() == "[]"  # a warm index lists without importing any recipe


def test_man_page_sections():
    result = run_cli("vircam-recipe", "--man-page", "vircam_dark_combine")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    sections = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert sections == ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "AUTHOR", "RELEASE"]
    assert "vircam_dark_combine -- Combine dark frames" in text
    assert "      DARK              RAW    2..    raw darks" in text  # the input-tag table
    assert "MASTER_DARK" in text
    assert "--thresh=<float>" in text and "[5.0]" in text and "[median]" in text


def test_params_and_create_config(tmp_path):
    params = run_cli("vircam-recipe", "--params", "vircam_dark_combine")
    assert params.returncode == 0
    assert any(line.split()[:3] == ["--thresh", "float", "5.0"] for line in params.stdout.splitlines())
    created = run_cli("vircam-recipe", "--create-config", "vircam_dark_combine", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    text = (tmp_path / "vircam_dark_combine.rc").read_text()
    assert "vircam.vircam_dark_combine.thresh=5.0\n" in text
    assert "vircam.vircam_dark_combine.xrej=TRUE\n" in text


def test_run_with_config_and_override(dark_set, tmp_path):
    config = tmp_path / "my.rc"
    config.write_text("vircam.vircam_dark_combine.thresh=3.0\nvircam.vircam_dark_combine.combtype=mean\n")
    out = tmp_path / "out"
    result = run_cli("vircam-recipe", "vircam_dark_combine", "--thresh=4.5", dark_set.sof,
                     "--output-dir", out, "--products-sof", out / "p.sof", "--recipe-config", config)
    assert result.returncode == 0, result.stderr
    (product,) = fits_files(out)
    assert (out / "p.sof").read_text() == f"{product} MASTER_DARK\n"
    header = fits.getheader(product)
    assert rec_params(header) == {"thresh": "4.5", "combtype": "mean", "scaletype": "additive",
                                  "xrej": "TRUE", "hot_thresh": "5.0"}
    log = (out / "vircam-recipe.log").read_text()  # precedence is logged
    assert "thresh = 4.5  (command line)" in log
    assert f"combtype = mean  (recipe config {config})" in log
    assert "scaletype = additive  (default)" in log


def _bad_cases(dark_set, tmp_path):
    sof = dark_set.sof
    missing = tmp_path / "missing.sof"
    missing.write_text(sof.read_text() + "raw/VCAM.nothere.fits DARK\n")
    malformed = tmp_path / "malformed.sof"
    malformed.write_text("raw/VCAM.dark0.fits DARK RAW\nraw/VCAM.dark1.fits\n")
    wrong_tag = tmp_path / "wrongtag.sof"
    wrong_tag.write_text(sof.read_text() + "raw/VCAM.dark4.fits FLAT_TWILIGHT\n")
    no_required = tmp_path / "norequired.sof"
    no_required.write_text("")
    truncated_file = dark_set.folder / "raw" / "VCAM.trunc.fits"
    truncated_file.write_bytes(dark_set.files[0].read_bytes()[:-3000])
    truncated = tmp_path / "truncated.sof"
    truncated.write_text(sof.read_text() + "raw/VCAM.trunc.fits DARK\n")
    return [
        ((missing,), f"{missing}:7: file not found: "),
        ((malformed,), f"{malformed}:2: expected '<path> <TAG> [RAW|CALIB]'"),
        ((wrong_tag,), "VCAM.dark4.fits has tag FLAT_TWILIGHT, which this recipe does not take"),
        ((no_required,), "vircam_dark_combine: no input frames"),
        ((sof, "--thersh=4"), "unknown parameter 'thersh' (command line); did you mean 'thresh'"),
        ((sof, "--thresh=-1"), "parameter 'thresh' (command line): -1.0 is outside [0.1, 1000.0]"),
        ((sof, "--thresh=abc"), "parameter 'thresh' (command line): 'abc' is not a valid float"),
        ((truncated,), "VCAM.trunc.fits: truncated FITS file (3000 bytes missing)"),
    ]


def test_bad_input_one_line_error_and_nothing_written(dark_set, tmp_path):
    for index, (args, message) in enumerate(_bad_cases(dark_set, tmp_path)):
        out = tmp_path / f"out{index}"
        result = run_cli("vircam-recipe", "--log-level", "error", "vircam_dark_combine", *args,
                         "--output-dir", out)
        assert result.returncode != 0, message
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("vircam-recipe: error: ") and message in lines[0], lines[0]
        assert not fits_files(out), message
        assert not list(out.glob(".*.tmp")) if out.exists() else True


def test_unknown_recipe_and_missing_sof():
    result = run_cli("vircam-recipe", "vircam_dark_combin", "x.sof")
    assert result.returncode != 0
    assert "unknown recipe 'vircam_dark_combin'; did you mean vircam_dark_combine" in result.stderr
    result = run_cli("vircam-recipe", "vircam_dark_combine")
    assert result.returncode == 2
    assert result.stderr == "vircam-recipe: error: expected one SOF after the recipe name, got 0\n"


@pytest.mark.parametrize("flag", ["--version"])
def test_version(flag):
    result = run_cli("vircam-recipe", flag)
    assert result.returncode == 0 and result.stdout.startswith("vircam-recipe 0.1.0")


def test_docs_are_generated_from_declarations(tmp_path):
    result = run_cli("vircam", "docs", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "vircam_dark_combine.md").read_text()
    man = run_cli("vircam-recipe", "--man-page", "vircam_dark_combine").stdout
    assert man in page  # the same text, not a second copy written by hand
    assert "| [vircam_source_mask](vircam_source_mask.md) | 0.2.0 |" in (tmp_path / "index.md").read_text()


def test_committed_recipe_docs_are_current(tmp_path):
    """docs/recipes is generated; regenerate with `vircam docs` after changing a recipe."""
    run_cli("vircam", "docs", "--out", tmp_path)
    committed = Path(__file__).parent.parent / "docs" / "recipes"
    for page in tmp_path.glob("*.md"):
        assert (committed / page.name).read_text() == page.read_text(), f"stale docs/recipes/{page.name}"
