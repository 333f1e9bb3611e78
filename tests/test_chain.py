"""The chain engine (``vircam chain`` and :class:`vircamframe.chain.Chain`) on a tiny simulated night.

Everything runs for real: the plan is checked against what the simulator meant (which darks and
flats belong to which science frame), one serial run to SKYSUB_SCI is the reference that reruns,
a resumed killed run and the parallel executors must reproduce bit for bit (``DATAMD5``), and the
error paths (a failing job, a foreign output folder, misspelt targets and parameters) are driven
through the command line.

The simulated night and the serial reference are built once per test session, also under
pytest-xdist: the first worker that needs them builds them in the session's shared temporary
folder under a file lock, the others wait and reuse them (read-only; tests that change an output
tree work on a copy).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from astropy.io import fits

from vircamframe.chain import Chain
from vircamframe.chain.plan import Job, Plan
from vircamframe.dfs import data_md5
from vircamframe.errors import ChainError
from vircamframe.fitsio import check_fits

from conftest import BIN, rec_params, run_cli

TARGET = "SKYSUB_SCI"
SCIENCE_TAGS = ("OBJECT", "SKY")
TMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


# --- shared data ------------------------------------------------------------------------------

@dataclass
class Night:
    """The simulated night: its raw folder, the reference-catalogue SOF and the truth per file."""

    run: Path
    frames: dict[str, dict]  # truth.json "frames" by file name

    @property
    def raw(self) -> Path:
        return self.run / "raw"

    @property
    def refcat(self) -> Path:
        return self.run / "sof" / "refcat.sof"

    def names(self, *tags: str) -> set[str]:
        return {name for name, frame in self.frames.items() if frame["tag"] in tags}


@dataclass
class Reference:
    """The uninterrupted serial run to SKYSUB_SCI."""

    out: Path
    status: dict[str, str]  # how each job of that first run ended
    md5: dict[str, str]  # DATAMD5 of every product, by path relative to out


def _shared_root(tmp_path_factory) -> Path:
    """A folder all xdist workers of this session share (the session's own base without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _build_once(folder: Path, build: Callable[[Path], None]) -> Path:
    """Build ``folder`` unless another worker did; one builder at a time (file lock)."""
    done = folder.with_name(folder.name + ".done")
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            if folder.exists():  # a builder that failed half-way
                shutil.rmtree(folder)
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> Night:
    from vircamframe.simulate import simulate

    def build(folder: Path) -> None:
        folder.mkdir()
        simulate(folder / "run", preset="tiny", seed=1, what="all")

    root = _build_once(_shared_root(tmp_path_factory) / "test_chain-night", build)
    truth = json.loads((root / "run" / "truth" / "truth.json").read_text())
    return Night(root / "run", {frame["file"]: frame for frame in truth["frames"]})


@pytest.fixture(scope="module")
def serial_ref(night, tmp_path_factory) -> Reference:
    def build(folder: Path) -> None:
        folder.mkdir()
        summary = make_chain(night, folder / "out").run(progress=False)
        (folder / "status.json").write_text(json.dumps(summary.status))

    root = _build_once(_shared_root(tmp_path_factory) / "test_chain-serial", build)
    status = json.loads((root / "status.json").read_text())
    return Reference(root / "out", status, product_md5s(root / "out"))


# --- helpers ----------------------------------------------------------------------------------

def make_chain(night: Night, out: Path, targets=(TARGET,), raw: Path | None = None, **options) -> Chain:
    options = {"executor": "serial", "qc_plots": False, **options}
    return Chain(raw or night.raw, list(targets), out, calibs=[night.refcat], **options)


def vircam_chain(night: Night, out: Path, *args: str, target: str = TARGET, raw: Path | None = None):
    return run_cli("vircam", "chain", "--raw", raw or night.raw, "--target", target, "--out", out,
                   "--calib", night.refcat, *args)


def product_files(out: Path) -> list[Path]:
    """The visible FITS files of an output tree (temporary files are hidden; temp/ holds none)."""
    return sorted(p for p in out.rglob("*.fits") if not p.name.startswith(".")
                  and p.relative_to(out).parts[0] != "temp")


def product_md5s(out: Path) -> dict[str, str]:
    """``{relative path: DATAMD5 header}`` of every product in ``out``."""
    return {str(p.relative_to(out)): fits.getval(p, "DATAMD5") for p in product_files(out)}


def mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in product_files(out)}


def manifest_jobs(out: Path) -> dict[str, dict]:
    return json.loads((out / "temp" / "manifest.json").read_text())["jobs"]


def of_recipe(plan: Plan, recipe: str) -> list[Job]:
    return [job for job in plan.jobs if job.recipe == recipe]


def dependents(plan: Plan, job_id: str) -> set[str]:
    """Every job that needs ``job_id``'s products, directly or not."""
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for job in plan.jobs:
            if job.id not in found and job.deps & (found | {job_id}):
                found.add(job.id)
                changed = True
    return found


def with_status(summary, status: str) -> set[str]:
    return {job_id for job_id, s in summary.status.items() if s == status}


def error_lines(stderr: str) -> list[str]:
    """stderr without warnings (a plugin that fails to load warns in every command)."""
    return [line for line in stderr.splitlines() if line.strip() and ": warning:" not in line]


def expected_job_count(night: Night) -> int:
    """The jobs the simulator's intent calls for: a master dark per DIT/NDIT of the science and
    twilight frames (not of the standards), one linearity and one noise analysis, a twilight flat
    per filter, per science frame a basic calibration and a source mask, one sky job, and a
    final job per OBJECT frame."""
    science = [night.frames[n] for n in night.names(*SCIENCE_TAGS)]
    twilight = [night.frames[n] for n in night.names("FLAT_TWILIGHT")]
    darks = {(f["dit"], f["ndit"]) for f in science + twilight}
    filters = {f["filter"] for f in science}
    return len(darks) + 1 + 1 + len(filters) + 2 * len(science) + 1 + len(night.names("OBJECT"))


# --- planning ---------------------------------------------------------------------------------

def test_dry_run_lists_the_jobs_and_writes_nothing(night, tmp_path):
    out = tmp_path / "reduced"
    before = sorted(p.relative_to(night.run) for p in night.run.rglob("*"))
    result = vircam_chain(night, out, "--dry-run")
    assert result.returncode == 0, result.stderr
    plan = make_chain(night, out).plan()
    assert len(plan.jobs) == expected_job_count(night) == 46
    assert result.stdout.splitlines()[0] == f"plan: {len(plan.jobs)} job(s) for {TARGET}"
    lines = result.stdout.splitlines()
    listed = {line.split()[0] for line in lines if line.startswith("  ") and "->" in line}
    assert listed == {job.id for job in plan.jobs}
    assert "(level 0)" in result.stdout and "(level frame)" in result.stdout
    assert not out.exists()
    assert sorted(p.relative_to(night.run) for p in night.run.rglob("*")) == before


def test_plan_follows_the_simulators_intent(night, tmp_path):
    plan = make_chain(night, tmp_path / "out").plan()
    jobs = plan.by_id()
    raw_names = {job.id: {f.path.name for f in job.raws if f.path is not None} for job in plan.jobs}

    # every OBJECT and SKY frame has its own basic-calibration job; the standards are not in the chain
    basic = of_recipe(plan, "vircam_science_basic")
    by_frame = {job.raws[0].path.name: job for job in basic}
    assert all(len(job.raws) == 1 for job in basic)
    assert set(by_frame) == night.names(*SCIENCE_TAGS) and len(by_frame) == 14
    assert not any(names & night.names("STD_FLUX") for names in raw_names.values())

    for name, job in by_frame.items():
        truth = night.frames[name]
        calibs = {c.frame.tag: c for c in job.calibs}
        assert {c.level for c in job.calibs} == {"0"}, job.id
        dark = jobs[calibs["MASTER_DARK"].frame.job]
        assert dark.recipe == "vircam_dark_combine"
        assert raw_names[dark.id] == {
            n for n in night.names("DARK")
            if (night.frames[n]["dit"], night.frames[n]["ndit"]) == (truth["dit"], truth["ndit"])
        }, f"{name}: dark of DIT {truth['dit']} NDIT {truth['ndit']}"
        flat = jobs[calibs["MASTER_TWILIGHT_FLAT"].frame.job]
        assert flat.recipe == "vircam_twilight_flat_combine"
        assert raw_names[flat.id] == {
            n for n in night.names("FLAT_TWILIGHT") if night.frames[n]["filter"] == truth["filter"]
        }
        assert calibs["MASTER_DARK"].frame.job in job.deps and flat.id in job.deps

    # the twilight flat's own dark matches the flats' DIT/NDIT (not the science frames')
    (flat,) = of_recipe(plan, "vircam_twilight_flat_combine")
    flat_dark = jobs[next(c.frame.job for c in flat.calibs if c.frame.tag == "MASTER_DARK")]
    assert {(night.frames[n]["dit"], night.frames[n]["ndit"]) for n in raw_names[flat_dark.id]} == {
        (night.frames[n]["dit"], night.frames[n]["ndit"]) for n in raw_names[flat.id]
    }

    # the sky job takes each frame's own source mask, made from that very frame
    (sky,) = of_recipe(plan, "vircam_sky_combine")
    assert {f.root_name + ".fits" for f in sky.raws} == night.names(*SCIENCE_TAGS)
    masks = [c for c in sky.calibs if c.frame.tag == "MASTER_OBJMASK"]
    assert len(masks) == len(sky.raws) and {c.level for c in masks} == {"frame"}
    assert sorted(c.frame.parent for c in masks) == sorted(f.id for f in sky.raws)
    for calib in masks:
        maker = jobs[calib.frame.job]
        assert maker.recipe == "vircam_source_mask"
        assert [f.id for f in maker.raws] == [calib.frame.parent]

    # the final step exists for OBJECT frames only, each with its own sky and mask
    final = of_recipe(plan, "vircam_science_final")
    assert {job.raws[0].root_name + ".fits" for job in final} == night.names("OBJECT")
    assert len(final) == 12
    for job in final:
        own = {c.frame.tag: c for c in job.calibs if c.level == "frame"}
        assert set(own) == {"MASTER_SKY", "MASTER_OBJMASK"}
        assert {c.frame.root_name for c in own.values()} == {job.raws[0].root_name}
        assert sorted(f.tag for f in job.outputs) == ["SKYSUB_SCI", "WEIGHT_SCI"]


# --- reruns -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_serial_run_makes_every_planned_product(night, serial_ref):
    plan = make_chain(night, serial_ref.out).plan()
    assert serial_ref.status == {job.id: "ran" for job in plan.jobs}
    assert len(serial_ref.md5) == sum(len(job.outputs) for job in plan.jobs) == 72
    recorded = manifest_jobs(serial_ref.out)
    assert {k: v["status"] for k, v in recorded.items()} == {job.id: "done" for job in plan.jobs}
    assert {p["path"]: p["datamd5"] for r in recorded.values() for p in r["products"]} == serial_ref.md5
    for path in product_files(serial_ref.out)[::9]:  # the header DATAMD5 is the data's
        assert data_md5(path) == serial_ref.md5[str(path.relative_to(serial_ref.out))]


@pytest.mark.slow
def test_second_run_does_no_work(night, serial_ref, tmp_path):
    out = shutil.copytree(serial_ref.out, tmp_path / "out")
    before = mtimes(out)
    sofs = {p.name: p.stat().st_mtime_ns for p in (out / "temp" / "sof").iterdir()}
    assert len(sofs) == 46  # one per job of the first run
    result = vircam_chain(night, out, "--executor", "serial", "--no-qc-plots")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^46 job\(s\) in [\d.]+ s: 46 skipped$", result.stdout, re.M), result.stdout
    assert mtimes(out) == before
    # a job that starts writes its SOF first: none did
    assert {p.name: p.stat().st_mtime_ns for p in (out / "temp" / "sof").iterdir()} == sofs


@pytest.mark.slow
def test_parameter_change_reruns_exactly_the_affected_jobs(night, serial_ref, tmp_path):
    out = shutil.copytree(serial_ref.out, tmp_path / "out")
    before = mtimes(out)
    chain = make_chain(night, out, params={"vircam_source_mask": {"mask_thresh": 2.0}})
    summary = chain.run(progress=False)
    assert summary.ok
    after = product_md5s(out)
    assert set(after) == set(serial_ref.md5)

    plan = chain.plan()
    masks = [p for p in serial_ref.md5 if p.startswith("source_mask/")]
    assert len(masks) == 14
    assert all(after[p] != serial_ref.md5[p] for p in masks), "mask_thresh 2.0 changes every mask"
    header = fits.getheader(out / masks[0])
    (record,) = [r for r in range(1, 5) if header.get(f"ESO PRO REC{r} ID") == "vircam_source_mask"]
    assert float(rec_params(header, record)["mask_thresh"]) == 2.0
    changed = {p for p in serial_ref.md5 if after[p] != serial_ref.md5[p]}

    def inputs_changed(job: Job) -> bool:  # its own mask or sky differs from the reference's
        root = job.raws[0].root_name + "."
        return any(Path(p).name.startswith(root) for p in changed
                   if p.startswith(("source_mask/", "sky_combine/")))

    expected = {j.id for j in of_recipe(plan, "vircam_source_mask")}
    expected |= {j.id for j in of_recipe(plan, "vircam_sky_combine")}  # every mask changed
    expected |= {j.id for j in of_recipe(plan, "vircam_science_final") if inputs_changed(j)}
    assert with_status(summary, "ran") == expected
    assert summary.count("ran") == 14 + 1 + 12 == 27
    assert summary.count("skipped") == len(plan.jobs) - 27 == 19
    # what was skipped was not touched, and its products are the reference's
    for job_id in with_status(summary, "skipped"):
        for product in summary.products[job_id]:
            assert after[product.path] == serial_ref.md5[product.path]
            assert (out / product.path).stat().st_mtime_ns == before[product.path]
    # everything that ran rewrote its products
    for job_id in expected:
        for product in summary.products[job_id]:
            assert (out / product.path).stat().st_mtime_ns != before[product.path]

    again = make_chain(night, out, params={"vircam_source_mask": {"mask_thresh": 2.0}}).run(progress=False)
    assert again.count("skipped") == len(plan.jobs)


@pytest.mark.slow
def test_resume_after_sigkill(night, tmp_path, request):
    out = tmp_path / "out"
    manifest = out / "temp" / "manifest.json"
    command = [str(BIN / "vircam"), "chain", "--raw", str(night.raw), "--target", TARGET, "--out", str(out),
               "--calib", str(night.refcat), "--executor", "serial", "--no-qc-plots"]
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 400
        done = 0
        while done < 10:
            assert proc.poll() is None, "the chain ended before it could be killed"
            assert time.monotonic() < deadline, "the chain did not finish 10 jobs in time"
            time.sleep(0.2)
            if manifest.exists():
                done = sum(r["status"] == "done" for r in json.loads(manifest.read_text())["jobs"].values())
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    recorded = manifest_jobs(out)
    done_before = {job_id for job_id, r in recorded.items() if r["status"] == "done"}
    assert 10 <= len(done_before) < 46
    for record in recorded.values():  # what the manifest lists is on disk, whole
        for product in record["products"]:
            assert fits.getval(out / product["path"], "DATAMD5") == product["datamd5"]
    visible = product_files(out)
    assert len(visible) >= sum(len(recorded[j]["products"]) for j in done_before)
    for path in visible:  # no torn product: complete, and its data are what its header says
        check_fits(path)
        assert fits.getval(path, "DATAMD5") == data_md5(path), path
    for path in out.rglob(".*"):  # the only hidden files: temporaries of the killed writer
        match = TMP_NAME.match(path.name)
        assert match and int(match["pid"]) == proc.pid, path

    summary = make_chain(night, out).run(progress=False)
    assert summary.ok
    assert with_status(summary, "skipped") == done_before
    assert summary.count("ran") == 46 - len(done_before)
    leftovers = [p for p in out.rglob(".*") if p.relative_to(out).parts[0] != "temp"]
    assert leftovers == [], "the resumed writers remove the killed run's temporaries"
    reference = request.getfixturevalue("serial_ref")
    assert product_md5s(out) == reference.md5


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_parallel_executors_match_serial(night, tmp_path, request, executor):
    out = tmp_path / "out"
    summary = make_chain(night, out, executor=executor, n_jobs=2).run(progress=False)
    assert summary.ok, summary.describe()
    assert summary.count("ran") == 46
    md5 = product_md5s(out)
    assert {p.path: p.datamd5 for p in summary.all_products()} == md5
    reference = request.getfixturevalue("serial_ref")
    assert set(md5) == set(reference.md5)
    assert md5 == reference.md5


# --- failures ---------------------------------------------------------------------------------

def broken_raw(night: Night, folder: Path) -> tuple[Path, str]:
    """A raw folder of links to the night's frames, one DARK of DIT 10 s, NDIT 1 replaced by a
    copy whose fifth detector lost 8 rows (a windowed read-out): complete FITS, so it is planned,
    but its dark_combine job fails. Returns the folder and the damaged file's name."""
    folder.mkdir()
    darks = sorted(n for n in night.names("DARK")
                   if (night.frames[n]["dit"], night.frames[n]["ndit"]) == (10, 1))
    victim = darks[1]
    for path in night.raw.iterdir():
        if path.name != victim:
            (folder / path.name).symlink_to(path)
    with fits.open(night.raw / victim) as hdul:
        hdul[5].data = hdul[5].data[:-8].copy()
        hdul.writeto(folder / victim, output_verify="silentfix")
    return folder, victim


def test_on_error_continue_and_abort(night, tmp_path):
    raw, victim = broken_raw(night, tmp_path / "raw")
    target = "BASIC_CALIBRATED_SCI"
    chain = make_chain(night, tmp_path / "continue", targets=[target], raw=raw, on_error="continue")
    plan = chain.plan()
    assert len(plan.jobs) == 19
    (bad,) = [j.id for j in of_recipe(plan, "vircam_dark_combine") if victim in {f.path.name for f in j.raws}]
    blocked = dependents(plan, bad)
    assert len(blocked) == 15  # the twilight flat and, through it, all 14 basic calibrations

    summary = chain.run(progress=False)
    assert not summary.ok
    assert with_status(summary, "failed") == {bad}
    assert with_status(summary, "blocked") == blocked
    assert with_status(summary, "ran") == {j.id for j in plan.jobs} - blocked - {bad}
    assert summary.count("ran") == 3  # the other dark, linearity, detector noise
    assert victim in summary.errors[bad] and "shape" in summary.errors[bad]
    recorded = manifest_jobs(tmp_path / "continue")
    assert recorded[bad]["status"] == "failed" and victim in recorded[bad]["error"]
    assert set(recorded) == {j.id for j in plan.jobs} - blocked

    result = vircam_chain(night, tmp_path / "continue", "--on-error", "continue", "--executor", "serial",
                          "--no-qc-plots", target=target, raw=raw)
    assert result.returncode == 1
    assert "19 job(s) in" in result.stdout and ": 3 skipped, 1 failed, 15 blocked" in result.stdout
    assert f"  FAILED {bad}: " in result.stdout

    aborted = make_chain(night, tmp_path / "abort", targets=[target], raw=raw, on_error="abort")
    summary = aborted.run(progress=False)
    assert not summary.ok
    assert with_status(summary, "failed") == {bad}
    assert summary.count("blocked") == 0
    assert blocked <= with_status(summary, "not run")
    noise = of_recipe(plan, "vircam_detector_noise")[0].id  # independent, but not yet started
    assert summary.status[noise] == "not run"
    first_stage = {j.id for j in plan.jobs if j.stage == 0}
    assert with_status(summary, "ran") <= first_stage - {bad}
    order = [j.id for j in plan.jobs]  # serial: nothing starts after the failed job
    assert with_status(summary, "ran") == set(order[:order.index(bad)])
    assert summary.count("ran") + 1 + summary.count("not run") == 19


# --- the output tree --------------------------------------------------------------------------

def cli_darks(night: Night, out: Path, *args: str) -> str:
    """``vircam chain`` to MASTER_DARK (cheap: three small jobs); its stdout."""
    result = vircam_chain(night, out, "--executor", "serial", "--no-qc-plots", *args, target="MASTER_DARK")
    assert result.returncode == 0, result.stderr
    return result.stdout


def dark_setups(night: Night) -> int:
    return len({(night.frames[f]["dit"], night.frames[f]["ndit"]) for f in night.names("DARK")})


def test_cli_runs_into_a_fresh_output_folder(night, tmp_path):
    n = dark_setups(night)
    assert f": {n} ran\n" in cli_darks(night, tmp_path / "out")
    assert f": {n} skipped\n" in cli_darks(night, tmp_path / "out")


def test_reset_progress_and_clean(night, tmp_path):
    out = tmp_path / "out"
    n = dark_setups(night)
    assert n == 3
    assert make_chain(night, out, targets=["MASTER_DARK"]).run(progress=False).count("ran") == n
    first = mtimes(out)
    md5 = product_md5s(out)
    assert len(first) == n and all(p.startswith("dark_combine/") for p in first)
    assert f": {n} skipped\n" in cli_darks(night, out)
    assert mtimes(out) == first
    assert f": {n} ran\n" in cli_darks(night, out, "--reset-progress")
    assert all(t != first[p] for p, t in mtimes(out).items())
    assert product_md5s(out) == md5  # rerun, same data

    foreign = [out / "notes.txt", out / "dark_combine" / "mine.fits", out / "extra" / "keep.txt"]
    for path in foreign:
        path.parent.mkdir(exist_ok=True)
        path.write_text("not the chain's\n")
    removed = make_chain(night, out, targets=["MASTER_DARK"]).clean()
    assert sorted(removed) == sorted([out / p for p in md5] + [out / "temp"])
    # what is left: the foreign files, and an empty manifest that keeps the tree the chain's
    manifest = out / "temp" / "manifest.json"
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted([*foreign, manifest])
    assert json.loads(manifest.read_text())["jobs"] == {}
    assert all(path.read_text() == "not the chain's\n" for path in foreign)
    assert f": {n} ran\n" in cli_darks(night, out)  # the cleaned tree is still the chain's


def test_cli_clean_keeps_foreign_files_and_runs_again(night, tmp_path):
    out = tmp_path / "out"
    n = dark_setups(night)
    assert make_chain(night, out, targets=["MASTER_DARK"]).run(progress=False).count("ran") == n
    made = product_files(out)
    foreign = [out / "notes.txt", out / "dark_combine" / "mine.fits"]
    for path in foreign:
        path.write_text("not the chain's\n")
    text = cli_darks(night, out, "--clean")
    assert f"removed {n + 1} file(s) and folder(s) of earlier runs" in text  # n products and temp/
    assert f": {n} ran\n" in text  # nothing left to skip
    assert all(path.read_text() == "not the chain's\n" for path in foreign)
    assert product_files(out) == sorted([*made, out / "dark_combine" / "mine.fits"])


def test_non_empty_out_without_manifest_is_refused(night, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    result = vircam_chain(night, out, "--executor", "serial", target="MASTER_DARK")
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        f"vircam chain: error: {out} is not empty and holds no chain manifest; "
        "choose another output directory or allow overwriting"
    ]
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    with pytest.raises(ChainError, match="not empty"):
        make_chain(night, out, targets=["MASTER_DARK"]).run(progress=False)

    result = vircam_chain(night, out, "--executor", "serial", "--no-qc-plots", "--overwrite",
                          target="MASTER_DARK")
    assert result.returncode == 0, result.stderr
    assert ": 3 ran\n" in result.stdout
    assert (out / "notes.txt").read_text() == "mine\n"
    assert len(product_files(out)) == 3


@pytest.mark.parametrize(("args", "expected"), [
    (["--target", "SKYSUB_SC"], "no recipe makes target SKYSUB_SC; did you mean SKYSUB_SCI?"),
    (["-p", "mask_thres=2"], "no recipe in the chain has a parameter 'mask_thres'; did you mean mask_thresh"),
    (["-p", "vircam_source_mask.mask_thres=2"],
     "unknown parameter 'mask_thres' (chain); did you mean 'mask_thresh'"),
    (["-p", "vircam_source_msk.mask_thresh=2"],
     "parameters for 'vircam_source_msk', which is not a recipe of the chain; "
     "did you mean vircam_source_mask"),
])
def test_unknown_target_or_parameter(night, tmp_path, args, expected):
    target = args[1] if args[0] == "--target" else TARGET
    extra = [] if args[0] == "--target" else args
    result = vircam_chain(night, tmp_path / "out", "--dry-run", *extra, target=target)
    assert result.returncode == 1
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"vircam chain: error: {expected}"), result.stderr
    assert not (tmp_path / "out").exists()
