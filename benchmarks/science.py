"""Science benchmark: throughput per pawprint of the science recipes, and EsoRex's HAWK-I sky step.

What it measures (issue 5; DESIGN.md sections 5 and 10)
-------------------------------------------------------
One simulated science set: the calibration frames the masters need (darks of the science
setup, DIT 10 s x NDIT 2, and of the twilight setup, 10 s x 1; the lamp linearity sequence;
the gain pairs; the twilight flats) and, of the J tile, the jitters of the first ``--offsets``
pawprint offsets (3 jitters each; 2 on ``tiny``) plus the offset SKY frames (4; 2), as
:func:`vircamframe.simulate.simulate` would write them (same seed, byte-identical frames), but
without the rest of the run. For ``full`` only the ``--lin-dits`` shortest linearity DITs are
simulated (6 of 11, default; no CHECK frames): the masters' accuracy is not what is measured
here, and the whole sequence would double the simulation time. The masters are built once
with our recipes (not timed): ``vircam_dark_combine`` (both setups),
``vircam_linearity_analyse``, ``vircam_detector_noise`` and ``vircam_twilight_flat_combine``.

Timed, each as a subprocess (``vircam-recipe ... --no-qc-plots``, its log in ``OUT/logs``),
best of ``--repeat``, on the VIRCAM layout (16 detectors per file):

* ``basic``: ``vircam_science_basic`` on every OBJECT and SKY frame with all the masters;
* ``mask``: ``vircam_source_mask`` (``builtin`` masker) on every basic-calibrated frame;
* ``sky_sliding`` / ``sky_pawsky``: ``vircam_sky_combine`` with ``sliding_window`` and with
  ``pawsky_mask`` (default parameters: with fewer than ``sky_min_frames`` = 5 offset skies
  all frames make the skies; ``tiny`` has only 4 frames in all, so ``sky_min_frames`` = 4);
* ``final``: ``vircam_science_final`` on the OBJECT frames with the sliding-window skies, the
  masks and the MASTER_CONF.

The figures per row: ``in``/``out`` pawprints (frames read as the recipe's RAW inputs /
pawprints it writes products for: skies and final products are made for OBJECT frames only),
input MB (the size of those RAW inputs: raw int32 frames for ``basic``, basic-calibrated float32
frames after it; masters, masks and skies not counted), wall time (page cache warmed first),
s per pawprint = wall / ``out``, MB/s = input MB / wall, and the peak RSS of the process from
``/usr/bin/time`` (``%M``; see :func:`calibration.run_measured`).

The EsoRex comparison (HAWK-I layout)
-------------------------------------
``esorex hawki_science_process`` (Debian ``cpl-plugin-hawki``, CASU code by the authors of the
VIRCAM pipeline) runs on the same OBJECT and SKY frames rewritten in the HAWK-I layout by
``hawki_layout.py`` (VIRCAM detectors 1-4, pixel for pixel, four extensions per file; no tiling:
this recipe has no hard-coded 2048-pixel window and runs on 512-pixel detectors), with our
masters in the same layout: MASTER_DARK (science setup), MASTER_TWILIGHT_FLAT and MASTER_CONF
(the flat recipe's); its MASTER_READGAIN is made by ``esorex hawki_detector_noise`` from the
HAWK-I copies of the gain frames (not timed). The recipe insists on more static calibration than
a simulated run has, found by running it: an astrometric and a photometric catalogue
(``MASTER_LOCAL_CATALOGUE_ASTROM/PHOTOM``), a ``PHOTCAL_TAB`` and the Schlegel dust maps
(``SCHLEGEL_MAP_NORTH/SOUTH``), each otherwise a fatal "... not found -- cannot continue".
Stand-ins are written to ``OUT/hawki/static``: a catalogue index naming a ``casu_2mass``
catalogue without its data files (casu_getstds logs "Unable to extract data" and the recipe
goes on without standards, so its WCS fit and photometric calibration are skipped), a PHOTCAL_TAB
with one 2MASS J row (the columns CASU reads: filter_name, atm_extcoef, mag_offset,
coleq_columns, coleq_errcols, coleq_coefs, gal_extcoef, default_zp, default_zp_err; PHOTOSYS)
and 64 x 64 zero dust maps (it logs "Unable to read Schlegel maps" and goes on). With them it
runs to the end: basic calibration, sky (with offset SKY frames and ``--skyalgo=pawsky_mask``,
CASU's pawsky_mask on the offset skies), sky subtraction, stacking of the jitters and a source
catalogue of the stack; skipping the WCS and photometric fits makes EsoRex's total *smaller*
than a real run's, i.e. the comparison is conservative for us.

EsoRex does everything in one process, so its sky step is timed from the time stamps of its
log (1 s resolution): the "Making skies" stage of the ``--skyalgo=pawsky_mask`` run (the
pawsky_mask combine with its own object masking; the subtraction itself happens in stage 2 and
costs about nothing: stage 2 takes as long with ``--skyalgo=none``). As a cross-check the
difference of the two whole runs, ``--skyalgo=pawsky_mask`` minus ``--skyalgo=none``, is
reported too (row ``sky diff``); it is noisier, since it subtracts two runs of 80-100 s on
``full`` whose stacking stage alone varies by several seconds. Ours runs on the very same HAWK-I
files (our recipes loop over the image extensions, so they take 4-extension files; the
linearity channel table is rewritten with the HAWK-I extension names, the read-gain table is
per detector number and used as is):
``vircam_science_basic`` + ``vircam_source_mask`` + ``vircam_sky_combine --sky_method=pawsky_mask
--sky_min_frames=<number of SKY frames>`` (so that, like CASU, the sky is made of the offset SKY
frames alone) + ``vircam_science_final``. Ratios (throughput, > 1: ours faster):

* sky step, MB/s ours/EsoRex: ours ``mask + sky_pawsky`` (CASU's pawsky_mask finds its own
  object masks) against EsoRex's "Making skies" stage; ``sky_pawsky`` alone against the same;
  and ours ``mask + sky_pawsky`` against EsoRex's pawsky_mask - none difference;
* whole chain, MB/s ours/EsoRex: ours basic + mask + sky + final against the whole
  ``hawki_science_process`` (which stacks and catalogues too, but skips the WCS/photometry);
* peak RSS ours/EsoRex: the largest of our four recipes against ``hawki_science_process``;
* basic calibration, ours ``vircam_science_basic`` against EsoRex's stage 1, timed from the
  time stamps of its log (1 s resolution, so meaningful on ``full`` only). Not like for like:
  hawki_science_process takes no linearity table (it does not linearise), ours linearises per
  read-out channel and also turns each detector's ZPN WCS into a TPV one.

EsoRex writes a variance map of every frame as well (ours only with ``--write_variance``); ours
destripes (no destriping in hawki_science_process), subtracts a 2-D background and writes an
inverse-variance weight map per pawprint (EsoRex a confidence map of the stack). On
``small`` every one of our recipes pays about 1 s of interpreter and import start-up, a large
part of its time there: ``full`` is the preset the figures are for.

The stage times of each EsoRex run (basic calibration, making skies, sky subtraction + WCS,
stacking + catalogue, saving; from its best run) are printed and stored too. MB/s uses the
size of the raw HAWK-I OBJECT+SKY frames for both tools. The table is printed and written with
the run's metadata to ``OUT/science_benchmark.json``.

How to run
----------
::

    .venv/bin/python benchmarks/science.py --preset small --out /tmp/scibench
    .venv/bin/python benchmarks/science.py --preset full --out /tmp/scibench-full --repeat 1

``small`` (512-pixel detectors) takes about 1.5 minutes with ``--repeat 1``. ``full`` simulates
40 frames of 268 MB (11 GB on disk, 21 GB in OUT at the end; about 3 minutes on 2 cores), builds
the masters (about 3 minutes) and measures for about 7 minutes per repeat: about 13 minutes with
``--repeat 1``. ``--reuse`` keeps the frames, masters and HAWK-I copies already in OUT (same preset
and options). ``--threads N`` sets ``OMP_NUM_THREADS`` (EsoRex/CPL) and the numeric thread pools
of all tools (default 1: the comparison is per core).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import hawki_layout  # noqa: E402
from calibration import run_measured, size_mb, tool_env, warm_cache  # noqa: E402

BIN = Path(sys.executable).parent
RECIPE = str(BIN / "vircam-recipe")
TWILIGHT_SETUP = (10.0, 1)
LIN_TAGS = ("FLAT_LAMP_LINEARITY", "DARK_LINEARITY")
CHECK_TAGS = ("FLAT_LAMP_CHECK", "DARK_CHECK")
GAIN_TAGS = ("DARK_GAIN", "FLAT_LAMP_GAIN")
DEFAULT_LIN_DITS = {"tiny": 0, "small": 0, "full": 6}  # 0: the whole sequence
MANIFEST_VERSION = 1


@dataclass
class Row:
    """One tool run (or a figure derived from several)."""

    step: str
    tool: str  # ours | esorex
    layout: str  # vircam | hawki
    n_in: int = 0  # pawprints read (the recipe's RAW inputs)
    n_out: int = 0  # pawprints with products
    input_mb: float = 0.0
    wall_s: float | None = None
    s_per_pawprint: float | None = None
    mb_per_s: float | None = None
    peak_rss_mb: float | None = None
    status: str = "ok"
    note: str = ""
    command: list[str] = field(default_factory=list)
    stages_s: dict[str, float] = field(default_factory=dict)  # EsoRex: its stages in the best run

    def finish(self, wall: float, rss: float | None) -> Row:
        self.wall_s, self.peak_rss_mb = wall, rss
        self.s_per_pawprint = wall / self.n_out if self.n_out else None
        self.mb_per_s = self.input_mb / wall if wall > 0 else None
        return self


# --------------------------------------------------------------------------------------------
# data


def simulate_science(out: Path, preset: str, seed: int, offsets: int,
                     lin_dits: int) -> tuple[dict[str, list[str]], int, tuple[float, int]]:
    """Simulate the frames the masters and the science recipes need, and nothing else.

    Returns ``(tag -> paths, nx, science (DIT, NDIT))``. The frames are those
    :func:`vircamframe.simulate.simulate` writes for the same seed (its random draws are keyed
    per frame and detector); like ``calibration.py`` this uses the simulator's internal steps,
    since the public API simulates one frame or a whole run.
    """
    from vircamframe.simulate import core
    from vircamframe.simulate.catalog import make_catalog

    pre = core.get_preset(preset)
    band = core._band("J")
    plan = core.make_plan(pre, seed, band)
    dits = sorted(pre.linearity_dits)
    keep_dits = set(dits if lin_dits <= 0 else dits[:lin_dits])
    setups = {tuple(plan.science_setup), TWILIGHT_SETUP}

    def wanted(fp) -> bool:
        if fp.tag == "DARK":
            return (fp.dit, fp.ndit) in setups
        if fp.tag in LIN_TAGS:
            return fp.dit in keep_dits
        if fp.tag in CHECK_TAGS:
            return len(keep_dits) == len(dits)
        if fp.tag == "OBJECT":
            return fp.offset_i <= offsets
        return fp.tag in (*GAIN_TAGS, "FLAT_TWILIGHT", "SKY")

    frames = [fp for fp in plan.frames if wanted(fp)]
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    paths = core._start_files(frames, raw, False)
    sky = core._Sky(make_catalog(core._rng(seed, 31), plan.regions), plan, band)
    core._render(seed, pre, frames, paths, sky, False, None)
    files: dict[str, list[str]] = {}
    for fp in frames:
        key = f"DARK_{fp.dit:g}_{fp.ndit}" if fp.tag == "DARK" else fp.tag
        files.setdefault(key, []).append(str(paths[fp.index]))
    return files, pre.nx, tuple(plan.science_setup)


def read_products(sof: Path) -> dict[str, list[str]]:
    """tag -> paths of a products SOF written by ``vircam-recipe --products-sof``."""
    found: dict[str, list[str]] = {}
    for line in sof.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#"):
            found.setdefault(parts[1], []).append(parts[0])
    return found


def run_recipe(out: Path, name: str, entries: list[tuple[str, str]], label: str, env: dict,
               params: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Run one of our recipes untimed (masters); its products by tag. Raises on failure."""
    import subprocess

    dest = out / "masters" / label
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    sof = hawki_layout.write_sof(out / "sof" / f"master_{label}.sof", entries)
    cmd = [RECIPE, "--output-dir", str(dest), "--products-sof", str(dest / "products.sof"),
           "--log-level", "warning", "--no-qc-plots", name, *params, str(sof)]
    log = out / "logs" / f"master_{label}.log"
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"{name} ({label}) failed, exit {proc.returncode}: {' / '.join(tail)}")
    return read_products(dest / "products.sof")


def build_masters(out: Path, files: dict[str, list[str]], science_setup: tuple[float, int],
                  env: dict) -> dict[str, list[str]]:
    """The masters of the science set, with our recipes; tag -> paths (all kept separately)."""
    sci_dark = files[f"DARK_{science_setup[0]:g}_{science_setup[1]}"]
    flat_dark = files[f"DARK_{TWILIGHT_SETUP[0]:g}_{TWILIGHT_SETUP[1]}"]
    dark = run_recipe(out, "vircam_dark_combine", [(p, "DARK") for p in sci_dark], "dark", env)
    fdark = run_recipe(out, "vircam_dark_combine", [(p, "DARK") for p in flat_dark], "flat_dark", env)
    lin_entries = [(p, tag) for tag in (*LIN_TAGS, *CHECK_TAGS) for p in files.get(tag, [])]
    lin = run_recipe(out, "vircam_linearity_analyse", lin_entries, "linearity", env)
    table = [(p, "MASTER_CHANNEL_TABLE") for p in lin["MASTER_CHANNEL_TABLE"]]
    noise = run_recipe(out, "vircam_detector_noise",
                       [(p, tag) for tag in GAIN_TAGS for p in files[tag]] + table, "noise", env)
    flat = run_recipe(out, "vircam_twilight_flat_combine",
                      [(p, "FLAT_TWILIGHT") for p in files["FLAT_TWILIGHT"]]
                      + [(p, "MASTER_DARK") for p in fdark["MASTER_DARK"]] + table
                      + [(p, "MASTER_BPM") for p in lin.get("MASTER_BPM", [])], "flat", env)
    return {
        "MASTER_DARK": dark["MASTER_DARK"],
        "MASTER_DARK_FLAT": fdark["MASTER_DARK"],
        "MASTER_CHANNEL_TABLE": lin["MASTER_CHANNEL_TABLE"],
        "MASTER_BPM": lin.get("MASTER_BPM", []) + flat.get("MASTER_BPM", []),
        "MASTER_READGAIN_TABLE": noise["MASTER_READGAIN_TABLE"],
        "MASTER_TWILIGHT_FLAT": flat["MASTER_TWILIGHT_FLAT"],
        "MASTER_CONF": flat["MASTER_CONF"],
    }


def table_to_hawki(src: str | Path, dest: Path, chips=hawki_layout.DEFAULT_CHIPS) -> Path:
    """A per-detector table product (``DET1.CHIPn`` binary tables) with the HAWK-I names."""
    from astropy.io import fits

    dest.parent.mkdir(parents=True, exist_ok=True)
    with fits.open(src) as hdul:
        out = [fits.PrimaryHDU(header=hdul[0].header)]
        by_name = {hdu.name: hdu for hdu in hdul[1:]}
        for position, chip in enumerate(chips, start=1):
            hdu = by_name[f"DET1.CHIP{chip}"].copy()
            hdu.name = hawki_layout.HAWKI_EXTNAMES[position - 1]
            out.append(hdu)
        fits.HDUList(out).writeto(dest, overwrite=True)
    return dest


def write_static(folder: Path) -> dict[str, str]:
    """Stand-ins for the static calibration hawki_science_process requires (module docstring)."""
    import numpy as np
    from astropy.io import fits

    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "catalogue_index.fits"
    table = fits.BinTableHDU.from_columns([fits.Column(name="RA", format="D", array=np.zeros(1))],
                                          name="2MASS")
    table.header["CATNAME"] = "casu_2mass"
    primary = fits.PrimaryHDU()
    primary.header["CATNAME"] = "casu_2mass"
    fits.HDUList([primary, table]).writeto(index, overwrite=True)

    def text(name, value):
        return fits.Column(name=name, format="32A", array=np.array([value]))

    def real(name, value):
        return fits.Column(name=name, format="E", array=np.array([value], np.float32))

    photcal = fits.BinTableHDU.from_columns([
        text("filter_name", "J"), real("atm_extcoef", 0.11), real("mag_offset", 0.0),
        text("coleq_columns", "Jmag,Hmag"), text("coleq_errcols", "e_Jmag,e_Hmag"),
        text("coleq_coefs", "0.923,0.077"), real("gal_extcoef", 0.9), real("default_zp", 24.0),
        real("default_zp_err", 0.1)], name="2MASS")
    photcal.header["PHOTOSYS"] = "VEGA"
    photcal_path = folder / "photcal_tab.fits"
    fits.HDUList([fits.PrimaryHDU(), photcal]).writeto(photcal_path, overwrite=True)
    maps = {}
    n = 64
    for tag, sign in (("SCHLEGEL_MAP_NORTH", 1), ("SCHLEGEL_MAP_SOUTH", -1)):
        header = fits.Header()
        header["CTYPE1"], header["CTYPE2"] = "GLON-ZEA", "GLAT-ZEA"
        header["CRPIX1"] = header["CRPIX2"] = n / 2 + 0.5
        header["CRVAL1"], header["CRVAL2"] = 0.0, 90.0 * sign
        scale = float(np.degrees(4 * np.sqrt(2)) / n)
        header["CD1_1"], header["CD2_2"] = -scale * sign, scale * sign
        header["LAM_NSGP"], header["LAM_SCAL"] = sign, n // 2
        path = folder / f"dust_{'ngp' if sign > 0 else 'sgp'}.fits"
        fits.PrimaryHDU(np.zeros((n, n), np.float32), header=header).writeto(path, overwrite=True)
        maps[tag] = str(path)
    return {"MASTER_LOCAL_CATALOGUE_ASTROM": str(index), "MASTER_LOCAL_CATALOGUE_PHOTOM": str(index),
            "PHOTCAL_TAB": str(photcal_path), **maps}


def prepare_hawki(out: Path, files: dict[str, list[str]], masters: dict[str, list[str]],
                  env: dict) -> dict:
    """HAWK-I copies of the science frames and masters, EsoRex's read-gain table, the stand-ins."""
    import subprocess

    hk = out / "hawki"
    if hk.exists():
        shutil.rmtree(hk)
    raws = {tag: [str(p) for p in hawki_layout.convert(files.get(tag, []), hk / "raw")]
            for tag in ("OBJECT", "SKY")}
    gain = {tag: [str(p) for p in hawki_layout.convert(files[tag], hk / "gain")] for tag in GAIN_TAGS}
    ours: dict[str, list[str]] = {}
    for tag in ("MASTER_DARK", "MASTER_TWILIGHT_FLAT", "MASTER_CONF", "MASTER_BPM"):
        ours[tag] = [str(hawki_layout.to_hawki(p, hk / "masters" / f"{i}_{Path(p).name}"))
                     for i, p in enumerate(masters[tag])]
    ours["MASTER_CHANNEL_TABLE"] = [str(table_to_hawki(p, hk / "masters" / Path(p).name))
                                    for p in masters["MASTER_CHANNEL_TABLE"]]
    ours["MASTER_READGAIN_TABLE"] = list(masters["MASTER_READGAIN_TABLE"])
    readgain, note = None, ""
    esorex = shutil.which("esorex")
    if esorex:
        sof = hawki_layout.write_sof(out / "sof" / "esorex_detector_noise.sof",
                                     [*((p, "DARK") for p in gain["DARK_GAIN"]),
                                      *((p, "FLAT_TWILIGHT") for p in gain["FLAT_LAMP_GAIN"])])
        dest = hk / "esorex_readgain"
        dest.mkdir(parents=True)
        with open(out / "logs" / "esorex_detector_noise.log", "w") as fh:
            proc = subprocess.run([esorex, f"--output-dir={dest}", f"--log-dir={dest}", "--msg-level=warning",
                                   "hawki_detector_noise", str(sof)], stdout=fh,
                                  stderr=subprocess.STDOUT, env=env, cwd=dest, check=False)
        made = dest / "readgain.fits"
        if proc.returncode == 0 and made.exists():
            readgain = str(made)
        else:
            note = f"hawki_detector_noise failed (exit {proc.returncode}), see logs"
    else:
        note = "esorex is not installed"
    return {"raw": raws, "ours": ours, "esorex_readgain": readgain, "note": note,
            "static": write_static(hk / "static")}


def prepare(out: Path, args, env: dict) -> dict:
    """Simulate (or reuse) the set, build the masters and the HAWK-I copies; the manifest."""
    manifest_path = out / "manifest.json"
    lin_dits = DEFAULT_LIN_DITS.get(args.preset, 0) if args.lin_dits is None else args.lin_dits
    key = {"version": MANIFEST_VERSION, "preset": args.preset, "seed": args.seed,
           "offsets": args.offsets, "lin_dits": lin_dits}
    if args.reuse and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("key") == key:
            print(f"reusing the frames, masters and HAWK-I copies in {out}")
            return manifest
    for sub in ("raw", "masters", "hawki"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    t0 = time.perf_counter()
    files, nx, setup = simulate_science(out, args.preset, args.seed, args.offsets, lin_dits)
    t1 = time.perf_counter()
    print(f"simulated {sum(map(len, files.values()))} frames ({nx} px) in {t1 - t0:.0f} s", flush=True)
    masters = build_masters(out, files, setup, env)
    t2 = time.perf_counter()
    print(f"built the masters in {t2 - t1:.0f} s", flush=True)
    hawki = prepare_hawki(out, files, masters, env)
    t3 = time.perf_counter()
    print(f"HAWK-I layout in {t3 - t2:.0f} s", flush=True)
    manifest = {"key": key, "preset": args.preset, "nx": nx, "science_setup": list(setup),
                "files": files, "masters": masters, "hawki": hawki,
                "seconds": {"simulate": t1 - t0, "masters": t2 - t1, "hawki": t3 - t2}}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


# --------------------------------------------------------------------------------------------
# the benchmark


class Bench:
    """Runs and records the timed tools."""

    def __init__(self, out: Path, repeat: int, env: dict) -> None:
        self.out, self.repeat, self.env = out, repeat, env
        self.rows: list[Row] = []
        (out / "logs").mkdir(exist_ok=True)

    def measure(self, row: Row, cmd: list, dest: Path, stages_log: str | None = None) -> Row:
        """Best of ``repeat`` runs of ``cmd``; ``dest`` (its products) is emptied before each.

        With ``stages_log`` (an EsoRex log file name in ``dest``), the stage times of the best
        run go to ``row.stages_s``.
        """
        row.command = [str(c) for c in cmd]
        best = None
        for i in range(self.repeat):
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            log = self.out / "logs" / f"{row.step}_{row.tool}_{row.layout}_{i}.log"
            rc, wall, rss = run_measured(row.command, log, self.env, self.out)
            if rc != 0:
                row.status = "failed"
                tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
                row.note = f"exit code {rc}: {tail[0][:300] if tail else ''} (see {log})"
                break
            if best is None or wall < best[0]:
                best = (wall, rss)
                if stages_log:
                    row.stages_s = esorex_stages(dest / stages_log)
        if best is not None and row.status == "ok":
            row.finish(*best)
        self.rows.append(row)
        print(f"  {row.step:13} {row.tool:6} {row.layout:6} "
              f"{fmt(row.wall_s, '8.2f')} s  {row.status} {row.note}", flush=True)
        return row

    def ours(self, step: str, layout: str, name: str, entries: list[tuple[str, str]], raws: list[str],
             n_out: int, params: tuple[str, ...] = ()) -> tuple[Row, dict[str, list[str]]]:
        """Time one of our recipes; the row and its products by tag (empty when it failed)."""
        row = Row(step, "ours", layout, n_in=len(raws), n_out=n_out, input_mb=size_mb(raws))
        dest = self.out / "products" / f"{step}_ours_{layout}"
        sof = hawki_layout.write_sof(self.out / "sof" / f"{step}_{layout}.sof", entries)
        cmd = [RECIPE, "--output-dir", dest, "--products-sof", dest / "products.sof", "--log-level",
               "warning", "--no-qc-plots", name, *params, sof]
        self.measure(row, cmd, dest)
        products = read_products(dest / "products.sof") if row.status == "ok" else {}
        return row, products

    def skipped(self, step: str, tool: str, layout: str, why: str) -> None:
        self.rows.append(Row(step, tool, layout, status="skipped", note=why))


def originals(paths: list[str]) -> dict[str, str]:
    """basic-calibrated product -> the raw tag it descends from (OBJECT/SKY)."""
    from astropy.io import fits

    return {p: str(fits.getheader(p).get("HIERARCH ESO PRO REC1 RAW1 CATG", "?")) for p in paths}


def chain(bench: Bench, layout: str, raws: dict[str, list[str]], calib: dict[str, list[str]],
          sky_methods: tuple[str, ...], final_sky: str, sky_params: tuple[str, ...] = ()) -> dict:
    """basic -> mask -> sky (each method) -> final on one layout; returns the rows by step."""
    rows: dict[str, Row] = {}
    frames = raws["OBJECT"] + raws["SKY"]
    n_obj = len(raws["OBJECT"])
    entries = [(p, "OBJECT") for p in raws["OBJECT"]] + [(p, "SKY") for p in raws["SKY"]]
    for tag in ("MASTER_DARK", "MASTER_TWILIGHT_FLAT", "MASTER_CHANNEL_TABLE", "MASTER_BPM",
                "MASTER_READGAIN_TABLE"):
        entries += [(p, tag) for p in calib.get(tag, [])]
    rows["basic"], basic = bench.ours("basic", layout, "vircam_science_basic", entries, frames, len(frames))
    basics = basic.get("BASIC_CALIBRATED_SCI", [])
    if not basics:
        for step in ("mask", *(f"sky_{short(m)}" for m in sky_methods), "final"):
            bench.skipped(step, "ours", layout, "no basic-calibrated frames")
        return rows
    kind = originals(basics)
    objects = [p for p in basics if kind[p] == "OBJECT"]
    basic_entries = [(p, "BASIC_CALIBRATED_SCI") for p in basics]
    rows["mask"], mask = bench.ours("mask", layout, "vircam_source_mask", basic_entries, basics, len(basics))
    masks = [(p, "MASTER_OBJMASK") for p in mask.get("MASTER_OBJMASK", [])]
    skies: dict[str, list[str]] = {}
    for method in sky_methods:
        step = f"sky_{short(method)}"
        rows[step], sky = bench.ours(step, layout, "vircam_sky_combine", basic_entries + masks, basics,
                                     n_obj, (f"--sky_method={method}", *sky_params))
        skies[method] = sky.get("MASTER_SKY", [])
    if not skies.get(final_sky):
        bench.skipped("final", "ours", layout, f"no {final_sky} skies")
        return rows
    entries = ([(p, "BASIC_CALIBRATED_SCI") for p in objects] + [(p, "MASTER_SKY") for p in skies[final_sky]]
               + masks + [(p, "MASTER_CONF") for p in calib.get("MASTER_CONF", [])])
    rows["final"], _ = bench.ours("final", layout, "vircam_science_final", entries, objects, n_obj)
    return rows


def short(method: str) -> str:
    return {"sliding_window": "sliding", "pawsky_mask": "pawsky"}.get(method, method)


def run_benchmark(out: Path, manifest: dict, repeat: int,
                  env: dict) -> tuple[list[Row], dict, dict[str, dict[str, float]]]:
    bench = Bench(out, repeat, env)
    files, masters, hawki = manifest["files"], manifest["masters"], manifest["hawki"]
    vraws = {"OBJECT": files.get("OBJECT", []), "SKY": files.get("SKY", [])}
    hraws = hawki["raw"]
    warm_cache([*vraws["OBJECT"], *vraws["SKY"], *hraws["OBJECT"], *hraws["SKY"],
                *(p for paths in masters.values() for p in paths),
                *(p for paths in hawki["ours"].values() for p in paths)])

    print("VIRCAM layout (16 detectors per file)", flush=True)
    n_frames = len(vraws["OBJECT"]) + len(vraws["SKY"])
    small_set = (f"--sky_min_frames={n_frames}",) if 2 <= n_frames < 5 else ()  # tiny: 4 frames
    chain(bench, "vircam", vraws, masters, ("sliding_window", "pawsky_mask"), "sliding_window", small_set)

    print("HAWK-I layout (VIRCAM detectors 1-4)", flush=True)
    n_sky = len(hraws["SKY"])
    sky_params = (f"--sky_min_frames={n_sky}",) if n_sky >= 2 else ()
    ours_h = chain(bench, "hawki", hraws, hawki["ours"], ("pawsky_mask",), "pawsky_mask", sky_params)

    esorex = shutil.which("esorex")
    es: dict[str, Row] = {}
    hframes = hraws["OBJECT"] + hraws["SKY"]
    if esorex is None or hawki.get("esorex_readgain") is None:
        why = hawki.get("note") or "esorex is not installed"
        for algo in ("pawsky_mask", "none"):
            bench.skipped(f"esorex_{algo}", "esorex", "hawki", why)
    else:
        calib = [(hawki["ours"]["MASTER_DARK"][0], "MASTER_DARK"),
                 (hawki["ours"]["MASTER_TWILIGHT_FLAT"][0], "MASTER_TWILIGHT_FLAT"),
                 (hawki["ours"]["MASTER_CONF"][0], "MASTER_CONF"),
                 (hawki["esorex_readgain"], "MASTER_READGAIN"),
                 *((path, tag) for tag, path in hawki["static"].items())]
        sof = hawki_layout.write_sof(out / "sof" / "esorex_science.sof",
                                     [*((p, "OBJECT") for p in hraws["OBJECT"]),
                                      *((p, "SKY") for p in hraws["SKY"]), *calib])
        for algo in ("pawsky_mask", "none"):
            step = f"esorex_{short(algo)}"
            row = Row(step, "esorex", "hawki", n_in=len(hframes), n_out=len(hraws["OBJECT"]),
                      input_mb=size_mb(hframes))
            dest = out / "products" / f"{step}_hawki"
            cmd = [esorex, f"--log-dir={dest}", f"--output-dir={dest}", "--suppress-prefix=TRUE",
                   "--msg-level=warning", "hawki_science_process", f"--skyalgo={algo}", sof]
            es[algo] = bench.measure(row, cmd, dest, stages_log="esorex.log")
    rows = bench.rows
    rows.extend(derived(ours_h, es, hframes, len(hraws["OBJECT"])))
    stages = {algo: row.stages_s for algo, row in es.items() if row.status == "ok"}
    return rows, ratios(rows, stages), stages


ESOREX_STAGES = (  # (label, the first log line of the stage) in hawki_science_process's order
    ("basic calibration", "Beginning stage1 reduction"),
    ("making skies", "Making skies"),
    ("sky subtraction + WCS", "Beginning stage2 reduction"),
    ("stacking + catalogue", "Beginning group processing"),
    ("saving", "Saving paw"),
    ("end", "Recipe operation(s) took"),
)


def esorex_stages(log: Path) -> dict[str, float]:
    """Seconds per stage of hawki_science_process, from its log's time stamps (1 s resolution)."""
    starts: dict[str, float] = {}
    last = None
    for line in log.read_text(errors="replace").splitlines():
        stamp = line[:8]
        if len(stamp) != 8 or stamp[2] != ":" or stamp[5] != ":":
            continue
        h, m, sec = (int(v) for v in stamp.split(":"))
        t = 3600 * h + 60 * m + sec
        if last is not None and t < last:  # past midnight
            t += 86400
        last = t
        for label, marker in ESOREX_STAGES:
            if marker in line and label not in starts:
                starts[label] = t
    labels = [label for label, _ in ESOREX_STAGES if label in starts]
    return {a: float(starts[b] - starts[a]) for a, b in itertools.pairwise(labels)}


def derived(ours: dict[str, Row], es: dict[str, Row], hframes: list[str], n_obj: int) -> list[Row]:
    """The sums and differences the EsoRex comparison uses (status 'derived')."""
    mb = size_mb(hframes)

    def make(step, tool, parts, minus=None, stage=None) -> Row:
        row = Row(step, tool, "hawki", n_in=len(hframes), n_out=n_obj, input_mb=mb, status="derived")
        if not parts or any(p is None or p.status != "ok" for p in parts) or (
                minus is not None and minus.status != "ok"):
            row.status, row.note = "skipped", "a run it needs is missing or failed"
            return row
        if stage is not None:
            wall = parts[0].stages_s.get(stage, 0.0)
            what = f"'{stage}' in the {parts[0].step} log"
        else:
            wall = sum(p.wall_s for p in parts) - (minus.wall_s if minus is not None else 0.0)
            what = " + ".join(p.step for p in parts) + (f" - {minus.step}" if minus is not None else "")
        if wall <= 0:
            row.status, row.note = "skipped", f"{what}: {wall:.0f} s, below the timing resolution"
            return row
        row.finish(wall, max(p.peak_rss_mb for p in parts))
        row.note = what
        return row

    get = ours.get
    return [
        make("sky step", "ours", [get("mask"), get("sky_pawsky")]),
        make("sky only", "ours", [get("sky_pawsky")]),
        make("sky step", "esorex", [es.get("pawsky_mask")], stage="making skies"),
        make("sky diff", "esorex", [es.get("pawsky_mask")], es.get("none")),
        make("chain", "ours", [get("basic"), get("mask"), get("sky_pawsky"), get("final")]),
        make("chain", "esorex", [es.get("pawsky_mask")]),
    ]


def ratios(rows: list[Row], stages: dict[str, dict[str, float]]) -> dict[str, float | None]:
    def get(step, tool):
        for r in rows:
            if (r.step, r.tool, r.layout) == (step, tool, "hawki") and r.status in ("ok", "derived"):
                return r
        return None

    def ratio(a, b, attr):
        return getattr(a, attr) / getattr(b, attr) if a and b and getattr(b, attr) else None

    es_sky, es_diff, es_chain = get("sky step", "esorex"), get("sky diff", "esorex"), get("chain", "esorex")
    basic = get("basic", "ours")
    stage1 = stages.get("pawsky_mask", {}).get("basic calibration")
    return {
        "basic: MB/s ours science_basic/EsoRex stage1 (its log, 1 s)": (
            stage1 / basic.wall_s if basic and stage1 and basic.wall_s else None),
        "sky step (mask + pawsky_mask): MB/s ours/EsoRex 'making skies'": ratio(
            get("sky step", "ours"), es_sky, "mb_per_s"),
        "sky_combine pawsky_mask alone: MB/s ours/EsoRex 'making skies'": ratio(
            get("sky only", "ours"), es_sky, "mb_per_s"),
        "sky step (mask + pawsky_mask): MB/s ours/EsoRex (pawsky - none)": ratio(
            get("sky step", "ours"), es_diff, "mb_per_s"),
        "chain (basic+mask+sky+final): MB/s ours/EsoRex": ratio(get("chain", "ours"), es_chain, "mb_per_s"),
        "peak RSS ours (largest recipe)/EsoRex": ratio(get("chain", "ours"), es_chain, "peak_rss_mb"),
    }


def fmt(value, spec: str) -> str:
    if value is None:
        width = spec.split(".")[0]
        return "-".rjust(int(width) if width.isdigit() else 0)
    return format(value, spec)


def report(rows: list[Row], rat: dict[str, float | None]) -> str:
    lines = [f"{'step':13} {'tool':6} {'layout':6} {'in':>3} {'out':>3} {'input MB':>9} {'wall s':>8} "
             f"{'s/pawprint':>10} {'MB/s':>7} {'peak RSS MB':>11}  status"]
    for r in rows:
        lines.append(f"{r.step:13} {r.tool:6} {r.layout:6} {r.n_in:3d} {r.n_out:3d} "
                     f"{fmt(r.input_mb, '9.1f')} {fmt(r.wall_s, '8.2f')} {fmt(r.s_per_pawprint, '10.2f')} "
                     f"{fmt(r.mb_per_s, '7.1f')} "
                     f"{fmt(r.peak_rss_mb, '11.1f')}  {r.status}{' (' + r.note + ')' if r.note else ''}")
    lines.append("")
    for key, value in rat.items():
        lines.append(f"{key:64} {fmt(value, '6.2f')}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=("tiny", "small", "full"))
    parser.add_argument("--out", type=Path, required=True, help="work and output folder")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool (best wall time kept)")
    parser.add_argument("--threads", type=int, default=1, help="thread count for every tool [1]")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed [1]")
    parser.add_argument("--offsets", type=int, default=1, choices=range(1, 7), metavar="1..6",
                        help="pawprint offsets of the tile whose jitters are simulated [1]")
    parser.add_argument("--lin-dits", type=int, default=None,
                        help="simulate only the N shortest linearity DITs (0: all; default 6 for full)")
    parser.add_argument("--reuse", action="store_true", help="reuse frames, masters, HAWK-I copies in OUT")
    args = parser.parse_args(argv)

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    env = tool_env(args.threads)
    t0 = time.perf_counter()
    manifest = prepare(out, args, env)
    rows, rat, stages = run_benchmark(out, manifest, args.repeat, env)
    files = manifest["files"]
    counts = {tag: len(paths) for tag, paths in files.items()}
    print(f"\nscience benchmark, preset {args.preset} ({manifest['nx']} px; "
          f"{counts.get('OBJECT', 0)} OBJECT + {counts.get('SKY', 0)} SKY frames), "
          f"threads {args.threads}, best of {args.repeat}\n")
    print(report(rows, rat))
    for algo, times in stages.items():
        print(f"hawki_science_process --skyalgo={algo} stages (its log, 1 s resolution): "
              + ", ".join(f"{label} {sec:.0f} s" for label, sec in times.items()))
    result = {
        "preset": args.preset, "nx": manifest["nx"], "seed": args.seed, "offsets": args.offsets,
        "lin_dits": manifest["key"]["lin_dits"], "science_setup": manifest["science_setup"],
        "frames": counts, "threads": args.threads, "repeat": args.repeat,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "prepare_seconds": manifest["seconds"], "total_seconds": time.perf_counter() - t0,
        "rows": [asdict(r) for r in rows],
        "ratios": rat,
        "esorex_stages_s": stages,
    }
    (out / "science_benchmark.json").write_text(json.dumps(result, indent=1))
    print(f"\nwritten {out / 'science_benchmark.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
