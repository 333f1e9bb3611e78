"""`vircam demo` and `vircam pipeline`: the README's main job, the VISIONS setups and layout.

One `vircam demo` run on tiny data (simulate, sort, a calibration setup, a science setup) is
shared by the tests; it is the README's main-job command, run as a user runs it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from astropy.io import fits

from vircamframe.chain.manifest import chain_products
from vircamframe.chain.visions import VISIONS_FOLDERS, read_setup
from vircamframe.dfs import data_md5
from vircamframe.errors import ChainError

from conftest import run_cli

pytestmark = pytest.mark.slow

STATISTICS = ("STAT_EXPTIME", "STAT_NIMG", "STAT_MJD", "STAT_ASTRMS")
PHASE3 = ("PHASE3_IMAGE", "PHASE3_WEIGHT", "PHASE3_SRCTBL", "PUBLIC_CATALOGUE")


@pytest.fixture(scope="module")
def demo(demo_run) -> tuple[Path, str]:
    """The session's ``vircam demo`` run (conftest), shared with the QC report and catalogue tests."""
    return demo_run


def _manifest(tree: Path) -> dict:
    return json.loads((tree / "temp" / "manifest.json").read_text())


def test_demo_makes_the_visions_layout(demo):
    out, stdout = demo
    for name in ("demo_calibration", "demo_science"):
        tree = out / "pipeline" / name
        assert sorted(p.name for p in tree.iterdir() if p.is_dir()) == sorted(VISIONS_FOLDERS)
        assert all(record["status"] == "done" for record in _manifest(tree)["jobs"].values())
    calibration = out / "pipeline" / "demo_calibration"
    masters = {f.tag for f in chain_products(calibration)}
    assert masters == {"MASTER_DARK", "MASTER_CHANNEL_TABLE", "MASTER_BPM", "MASTER_READGAIN_TABLE",
                       "MASTER_TWILIGHT_FLAT", "MASTER_CONF"}
    assert all(f.path.parent.name == "master_common" for f in chain_products(calibration))
    science = out / "pipeline" / "demo_science"
    truth = json.loads((out / "data" / "truth" / "truth.json").read_text())
    n_object = sum(1 for f in truth["frames"] if f["tag"] == "OBJECT")
    n_sky = sum(1 for f in truth["frames"] if f["tag"] == "SKY")
    folder_of = {"BASIC_CALIBRATED_SCI": "processed", "SKYSUB_SCI": "processed", "WEIGHT_SCI": "processed",
                 "MASTER_OBJMASK": "master_object", "MASTER_SKY": "master_object", "ASTROM_HEADER": "headers",
                 "PHOTCAL_SCI": "processed", "MASTER_ILLUMCORR": "processed",  # a job writes one folder
                 "RESAMPLED_SCI": "resampled", "RESAMPLED_WEIGHT": "resampled", "TILED_IMAGE": "tile",
                 "TILED_CONFIDENCE_MAP": "tile", "TILED_OBJECT_CATALOGUE": "tile",
                 **dict.fromkeys(STATISTICS, "statistics"),
                 **dict.fromkeys(PHASE3, "phase3")}
    counts = {"BASIC_CALIBRATED_SCI": n_object + n_sky, "MASTER_OBJMASK": n_object + n_sky,
              "MASTER_SKY": n_object, "SKYSUB_SCI": n_object, "WEIGHT_SCI": n_object,
              "ASTROM_HEADER": n_object, "PHOTCAL_SCI": n_object, "MASTER_ILLUMCORR": 1,
              "RESAMPLED_SCI": n_object, "RESAMPLED_WEIGHT": n_object, "TILED_IMAGE": 1,
              "TILED_CONFIDENCE_MAP": 1, "TILED_OBJECT_CATALOGUE": 1, **dict.fromkeys(STATISTICS, 1),
              **dict.fromkeys(PHASE3, 1)}
    for tag, folder in folder_of.items():
        products = chain_products(science, tag)
        assert len(products) == counts[tag], tag
        assert {f.path.parent.name for f in products} == {folder}
    # the science run took its masters from the calibration run (user-given, level "user")
    sof = next((science / "temp" / "sof").glob("science_basic.*.sof")).read_text()
    assert "demo_calibration/master_common" in sof and "association level user" in sof
    header = fits.getheader(chain_products(science, "BASIC_CALIBRATED_SCI")[0].path)
    levels = {header[f"ESO PRO REC1 CAL{j} CATG"]: header[f"ESO PRO REC1 CAL{j} LEVEL"]
              for j in range(1, 6)}
    assert levels == dict.fromkeys(("MASTER_DARK", "MASTER_TWILIGHT_FLAT", "MASTER_CHANNEL_TABLE",
                                    "MASTER_BPM", "MASTER_READGAIN_TABLE"), "user")
    mask_header = fits.getheader(chain_products(science, "SKYSUB_SCI")[0].path)
    recorded = [mask_header[k] for k in mask_header if k.startswith("ESO PRO REC") and k.endswith("LEVEL")]
    assert "frame" in recorded  # the sky and the mask made from this very pawprint
    # QC figures went to qc/<recipe>/, and every product is whole
    assert list((science / "qc" / "science_final").glob("*.stripes.png"))
    for frame in chain_products(science, "SKYSUB_SCI"):
        assert fits.getval(frame.path, "DATAMD5") == data_md5(frame.path)
    assert "master_common/" in stdout and "processed/" in stdout


def test_demo_rerun_redoes_nothing(demo):
    out, _ = demo
    before = {name: _manifest(out / "pipeline" / name) for name in ("demo_calibration", "demo_science")}
    result = run_cli("vircam", "demo", "--out", out, "--n-jobs", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "simulated night already in" in result.stdout
    summaries = re.findall(r"^(\d+) job\(s\) in [\d.]+ s: (.*)$", result.stdout, re.MULTILINE)
    assert len(summaries) == 2
    for total, statuses in summaries:  # only the statuses that occurred are named
        assert statuses == f"{total} skipped"
    for name, manifest in before.items():
        assert _manifest(out / "pipeline" / name)["jobs"] == manifest["jobs"]


def test_pipeline_setup_typo_names_the_key(tmp_path):
    setup = tmp_path / "setup.yml"
    setup.write_text(yaml.safe_dump({"name": "x_calibration", "path_data": str(tmp_path),
                                     "path_pype": str(tmp_path / "pype"), "sky_windw": 60}))
    result = run_cli("vircam", "pipeline", "--setup", setup)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"vircam pipeline: error: setup {setup}: unknown key 'sky_windw'; did you mean 'sky_window'?"
    ]
    assert not (tmp_path / "pype").exists()


def test_setup_keys_map_onto_recipe_parameters(tmp_path):
    setup = tmp_path / "setup.yml"
    setup.write_text(yaml.safe_dump({
        "name": "vvv_science", "path_data": "raw", "path_pype": "pype", "sky_window": 60,
        "source_mask_method": "noisechisel", "destripe": False, "n_jobs": 3,
    }))
    parsed = read_setup(setup)
    assert not parsed.is_calibration
    assert parsed.out == tmp_path / "pype" / "vvv_science"
    declared = {"sky_window", "mask_method", "destripe", "flat_method"}
    assert parsed.params(declared) == {"sky_window": 60.0, "mask_method": "noisechisel", "destripe": False}
    assert parsed.targets({"SKYSUB_SCI", "WEIGHT_SCI"}) == ["SKYSUB_SCI", "WEIGHT_SCI"]
    assert parsed.targets({"SKYSUB_SCI", "WEIGHT_SCI", "PHOTCAL_SCI", "ASTROM_HEADER"}) == [
        "SKYSUB_SCI", "WEIGHT_SCI", "ASTROM_HEADER", "PHOTCAL_SCI"]
    # no local reference tables: astrometry and photometry ask VizieR
    assert parsed.provider_params() == {"vircam_astrometry": {"refcat_provider": "vizier"},
                                        "vircam_photometry": {"refcat_provider": "vizier"}}
    setup.write_text(yaml.safe_dump({"name": "n", "path_data": "r", "path_pype": "p",
                                     "local_2mass_catalog": "2mass.fits"}))
    assert read_setup(setup).provider_params() == {"vircam_astrometry": {"refcat_provider": "vizier"}}
    setup.write_text(yaml.safe_dump({"name": "n", "path_data": "r", "path_pype": "p", "n_jobs": "many"}))
    with pytest.raises(ChainError, match="n_jobs must be int, got 'many'"):
        read_setup(setup)
