"""The tiny simulated night reduced recipe by recipe, for the science-recipe tests.

Each stage runs once per test session (a session fixture in conftest calls these); the later
stages (sky, final) take the earlier stages' products, as a user chaining SOFs would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vircamframe import run_recipe
from vircamframe.frames import Frame, FrameSet, read_sof


@dataclass
class Night:
    run: Path  # the simulated run (raw/, truth/, sof/, refcat/)
    out: Path  # products, one folder per step
    masters: FrameSet = field(default_factory=FrameSet)
    basic: FrameSet = field(default_factory=FrameSet)
    masks: FrameSet = field(default_factory=FrameSet)
    skies: FrameSet = field(default_factory=FrameSet)
    final: FrameSet = field(default_factory=FrameSet)

    def raws(self, tag: str) -> FrameSet:
        return FrameSet(f for f in read_sof(self.run / "sof" / "science.sof") if f.tag == tag)

    def master(self, tag: str) -> Frame:
        return self.masters.by_tag(tag)[0]


def _run(name: str, frames: FrameSet, out: Path, **params) -> FrameSet:
    return run_recipe(name, frames, params, output_dir=out, qc_plots=False)


def calibrate_night(run: Path, out: Path) -> Night:
    """Master calibrations of the night (science-setup dark, linearity, gain, twilight flat)."""
    sof = run / "sof"
    night = Night(run, out)
    dark = _run("vircam_dark_combine", read_sof(sof / "dark.sof"), out / "dark")
    flat_dark = _run("vircam_dark_combine", read_sof(sof / "dark_10_1.sof"), out / "flat_dark")
    linearity = _run("vircam_linearity_analyse", read_sof(sof / "linearity.sof"), out / "linearity")
    table = linearity.by_tag("MASTER_CHANNEL_TABLE")
    noise = _run("vircam_detector_noise", read_sof(sof / "detector_noise.sof") + table, out / "noise")
    flat = _run("vircam_twilight_flat_combine",
                read_sof(sof / "twilight_flat.sof") + flat_dark + table + linearity.by_tag("MASTER_BPM"),
                out / "flat")
    night.masters = dark + flat_dark + linearity + noise + flat
    return night


def basic_calibrate(night: Night) -> Night:
    """vircam_science_basic on every OBJECT and SKY frame."""
    raws = night.raws("OBJECT") + night.raws("SKY")
    masters = night.masters.select("MASTER_DARK", "MASTER_TWILIGHT_FLAT", "MASTER_CHANNEL_TABLE",
                                   "MASTER_BPM", "MASTER_READGAIN_TABLE")
    night.basic = _run("vircam_science_basic", raws + masters, night.out / "basic")
    return night


def object_pawprints(night: Night) -> FrameSet:
    """The basic-calibrated OBJECT pawprints (not the offset SKY frames)."""
    objects = {f.name.replace(".fits", ".basic.fits") for f in night.raws("OBJECT")}
    return FrameSet(f for f in night.basic if f.name in objects)


def source_masks(night: Night) -> FrameSet:
    """vircam_source_mask (builtin) on every pawprint, once."""
    if not len(night.masks):
        night.masks = _run("vircam_source_mask", night.basic, night.out / "mask")
    return night.masks


def sky_combine(night: Night, sky_method: str = "sliding_window", **params) -> FrameSet:
    """vircam_sky_combine on every pawprint with its source mask."""
    out = night.out / f"sky_{sky_method}_{len(params)}"
    return _run("vircam_sky_combine", night.basic + source_masks(night), out, sky_method=sky_method, **params)


def finalise(night: Night, skies: FrameSet, out: str = "final", frames: FrameSet | None = None,
             **params) -> FrameSet:
    """vircam_science_final on the OBJECT pawprints (or ``frames``) with skies, masks, confidence."""
    frames = object_pawprints(night) if frames is None else frames
    inputs = frames + skies + source_masks(night) + night.masters.select("MASTER_CONF")
    return _run("vircam_science_final", inputs, night.out / out, **params)
