"""``simulate()``: run the plan, one detector at a time, and write everything.

The loop is detector-outer: the primary HDUs of all frames are written first, then for each
detector its static maps are generated once and its extension is rendered and appended to every
frame. Peak memory is a few detector-sized arrays whatever the preset. Every random draw comes
from a generator keyed by (seed, purpose, frame, detector), so the result does not depend on
the loop order or on which part of the run (``what``) is simulated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .catalog import make_catalog, vircam_magnitude
from .detectors import (
    BPM_DEAD,
    BPM_HOT,
    BPM_NOISY,
    BPM_WARM,
    DetectorParams,
    detector_maps,
    detector_params,
)
from .focalplane import ChipGeometry, chip_geometries, intermediate, intermediate_to_pixel
from .headers import extension_cards, primary_header
from .linearity import MINDIT
from .outputs import (
    frame_truth,
    write_refcats,
    write_sofs,
    write_stars_truth,
    write_truth_json,
)
from .plan import POINTING_MAX_ARCSEC, FramePlan, Plan, make_plan
from .presets import N_CHANNELS, get_preset
from .render import expose, particle_hits, render_sources, reset_anomaly, reset_read, sky_plane
from .writer import append_image, write_primary

__all__ = ["WHAT", "SimulationResult", "simulate", "simulate_exposure"]

WHAT = ("calib", "science", "all")
HIT_RATE = 0.6  # particle hits per second per detector


@dataclass
class SimulationResult:
    """What a simulation run wrote.

    Attributes
    ----------
    out : Path
        The output folder.
    raw_files : list of Path
        Raw frames, in observing order.
    tags : dict
        Raw file -> intended tag.
    sofs : dict
        SOF name (``dark``, ``linearity``, ...) -> path.
    refcats : dict
        ``gaia`` and ``twomass`` -> path (empty when no science was simulated).
    truth : Path
        ``truth/truth.json``.
    truth_files : dict
        ``bpm``, ``flat``, ``dark_rate``, ``stars`` -> path.
    """

    out: Path
    raw_files: list[Path] = field(default_factory=list)
    tags: dict[Path, str] = field(default_factory=dict)
    sofs: dict[str, Path] = field(default_factory=dict)
    refcats: dict[str, Path] = field(default_factory=dict)
    truth: Path | None = None
    truth_files: dict[str, Path] = field(default_factory=dict)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def _origfile(fp: FramePlan) -> str:
    kind = {"RESET": "RST", "OBJECT": "OBS", "SKY": "SKY", "STD_FLUX": "STD"}.get(
        fp.tag, "CAL"
    )
    return f"VIRCAM_IMG_{kind}{fp.obs_id % 1000:03d}_{fp.tpl_expno:04d}.fits"


# The illumination pattern: sources (not the sky) are multiplied by P(x, y), a smooth function
# of the position in the focal plane (degrees from the optical axis, instrument frame). It is the
# error a twilight flat carries (scattered light) that photometric calibration's illumination
# correction removes: a few per cent, mean ~1 over the focal plane.
ILLUMINATION_RADIAL = 0.04  # fractional change between the axis and r = 0.75 deg
ILLUMINATION_TILT = 0.015  # fractional change per 0.75 deg along the detector x axis


def illumination_pattern(xi: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Source-flux factor at focal-plane position ``(xi, eta)`` [deg, instrument frame]."""
    r2 = (np.square(xi) + np.square(eta)) / 0.75**2
    return 1.0 - ILLUMINATION_RADIAL * (r2 - 0.5) + ILLUMINATION_TILT * np.asarray(xi) / 0.75


def _chip_illumination(chip: ChipGeometry, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """:func:`illumination_pattern` at 1-based pixel positions of one chip."""
    dx, dy = np.asarray(px) - chip.crpix[0], np.asarray(py) - chip.crpix[1]
    return illumination_pattern(chip.cd[0, 0] * dx + chip.cd[0, 1] * dy,
                                chip.cd[1, 0] * dx + chip.cd[1, 1] * dy)


def _lamp_pattern(chip: ChipGeometry, nx: int) -> tuple[float, float, float]:
    """Linearised lamp illumination (1 - 5 % (r / 0.75 deg)^2) over one chip."""
    cen = (nx - 1) / 2.0
    xy = chip.cd @ (np.array([cen + 1.0, cen + 1.0]) - chip.crpix)
    value = 1.0 - 0.05 * float(xy @ xy) / 0.75**2
    grad = -0.1 / 0.75**2 * (xy @ chip.cd)
    return value - grad[0] * cen - grad[1] * cen, float(grad[0]), float(grad[1])


class _Sky:
    """Per-frame source positions (intermediate coordinates), shared by the 16 detectors."""

    def __init__(self, cat: dict[str, np.ndarray], plan: Plan, band: str) -> None:
        from .catalog import propagate

        self.cat = cat
        self.mag = vircam_magnitude(cat["j"], cat["h"], cat["ks"], band)
        self.ra, self.dec = propagate(cat["ra"], cat["dec"], cat["pmra"], cat["pmdec"],
                                      plan.epoch)
        self._cache: dict[int, tuple[np.ndarray, ...]] = {}

    def frame(self, fp: FramePlan) -> tuple[np.ndarray, ...]:
        if fp.index not in self._cache:
            sel = np.flatnonzero(self.cat["region"] == fp.region)
            x, y = intermediate(self.ra[sel], self.dec[sel], fp.ra, fp.dec)
            near = np.hypot(x, y) < 1.1
            sel, x, y = sel[near], x[near], y[near]
            flux = 10 ** (-0.4 * (self.mag[sel] - fp.zeropoint))
            self._cache[fp.index] = (sel, x, y, flux)
        return self._cache[fp.index]


def _source_rate(sky: _Sky, fp: FramePlan, chip: ChipGeometry, nx: int,
                 min_fwhm_px: float) -> np.ndarray:
    """Rate image (ADU/s at flat = 1) of the stars and galaxies on one chip."""
    sel, x, y, flux = sky.frame(fp)
    cd = chip.rotated_cd(fp.posang)
    px, py = intermediate_to_pixel(x, y, chip.crpix, cd)
    flux = flux * _chip_illumination(chip, px, py)
    px -= 1.0
    py -= 1.0
    pixscale = chip.pixel_scale_arcsec
    margin = 40
    on = (px > -margin) & (px < nx + margin) & (py > -margin) & (py < nx + margin)
    if not on.any():
        return np.zeros((nx, nx), np.float32)
    idx = sel[on]
    fwhm = max(fp.seeing / pixscale, min_fwhm_px)
    kind = sky.cat["kind"][idx]
    star = kind == 0
    img = render_sources(nx, px[on][star], py[on][star], flux[on][star],
                         np.full(star.sum(), fwhm))
    gal = ~star
    if gal.any():
        g = idx[gal]
        rh = sky.cat["r_half"][g] / pixscale
        q = sky.cat["axis_ratio"][g]
        img += render_sources(
            nx, px[on][gal], py[on][gal], flux[on][gal],
            np.sqrt(fwhm**2 + rh**2), np.sqrt(fwhm**2 + (q * rh) ** 2),
            sky.cat["pa"][g], beta=2.0,
        )
    return img


def _frame_image(
    seed: int, fp: FramePlan, det: DetectorParams, maps, chip: ChipGeometry,
    nx: int, sky: _Sky | None, min_fwhm_px: float,
) -> np.ndarray:
    """The raw int32 image of one detector in one frame."""
    group = det.stripe_group
    stripes = _rng(seed, 51, fp.index, group).normal(0.0, det.stripe_rms, nx)
    rng = _rng(seed, 41, fp.index, det.chip)
    anomaly = None
    if det.chip == 13:
        factor = 1.0 + 0.1 * _rng(seed, 61, fp.index).normal()
        amp = 600.0 if fp.scene == "reset" else 150.0 * math.exp(-fp.dit / 6.0)
        anomaly = reset_anomaly(nx, amp * factor)
    if fp.scene == "reset":
        return reset_read(rng, maps.reset_map, det.read_noise_adu, stripes, anomaly,
                          maps.noise_factor)
    if fp.scene == "dark":
        rate = np.zeros((nx, nx), np.float32)
    elif fp.scene == "lamp":
        rate = maps.lamp_illumination * np.float32(fp.lamp_rate)
        rate *= maps.flat
    else:
        cd = chip.rotated_cd(fp.posang)
        gx, gy = fp.sky_gradient
        x0 = cd @ (np.array([1.0, 1.0]) - chip.crpix)
        c0 = 1.0 + gx * x0[0] + gy * x0[1]
        cx = gx * cd[0, 0] + gy * cd[1, 0]
        cy = gx * cd[0, 1] + gy * cd[1, 1]
        rate = sky_plane(nx, fp.sky_rate * c0, fp.sky_rate * cx, fp.sky_rate * cy)
        if sky is not None and fp.region >= 0:
            rate += _source_rate(sky, fp, chip, nx, min_fwhm_px)
        rate *= maps.flat
    hits = particle_hits(rng, nx, HIT_RATE * fp.exptime)
    img = expose(
        rng, rate, maps.dark_rate, fp.dit, fp.ndit, det.gain, det.read_noise_adu,
        maps.b2, maps.b3, det.saturation_read, det.dcs_offset, det.ndit_offset, stripes,
        hits=hits, anomaly=anomaly, noise_factor=maps.noise_factor,
    )
    if det.chip == 6 and fp.det6_event is not None:
        cw = nx // N_CHANNELS
        r0, r1 = fp.det6_event
        img[r0:r1, 13 * cw : 14 * cw] = int(det.saturation * fp.ndit)
    return img


def _detector_truth(det: DetectorParams, maps, cw: int) -> dict:
    channels = [
        {
            "channel": j + 1,
            "x_start": j * cw + 1,
            "x_end": (j + 1) * cw,
            "b1": 1.0,
            "b2": float(maps.channel_b2[j]),
            "b3": float(maps.channel_b3[j]),
            "pct_at_10kadu": float(maps.channel_pct[j]),
            "lamp_rate": float(maps.channel_rate[j]),
        }
        for j in range(N_CHANNELS)
    ]
    return {
        "gain": det.gain,
        "read_noise": det.read_noise,
        "read_noise_adu": det.read_noise_adu,
        "dark_current": det.dark_current,
        "reset_level": float(np.mean(maps.reset_map)),
        "ndit_offset": det.ndit_offset,
        "dcs_offset": det.dcs_offset,
        "saturation": det.saturation,
        "saturation_read": det.saturation_read,
        "qe": det.qe,
        "stripe_rms": det.stripe_rms,
        "stripe_group": det.stripe_group,
        "nonlinearity_pct_table": det.nonlin_pct_table,
        "linearity": channels,
        "n_hot": int(np.count_nonzero(maps.bpm & BPM_HOT)),
        "n_warm": int(np.count_nonzero(maps.bpm & BPM_WARM)),
        "n_dead": int(np.count_nonzero(maps.bpm & BPM_DEAD)),
        "n_noisy": int(np.count_nonzero(maps.bpm & BPM_NOISY)),
    }


CONVENTIONS = {
    "units": "ADU are raw counts; gain in e-/ADU; read_noise in e- (DCS, one correlated pair);"
             " dark_current in ADU/s (typical pixel; hot/warm pixels in truth/dark_rate.fits);"
             " rates in ADU/s per pixel at flat = 1.",
    "raw_model": "raw = sum over NDIT of M(x) + ndit_offset*(NDIT-1) + NDIT*dcs_offset + "
                 "sqrt(NDIT)*stripe[row] + read noise; x = (sky+sources+lamp)*flat*DIT + "
                 "dark_rate*DIT (true counts per DIT, with Poisson noise).",
    "linearity": "Per channel (16 channels of x_start..x_end columns): a pixel holding Q true "
                 "ADU since reset reads S(Q) = b1*Q + b2*Q**2 + b3*Q**3 (b1 = 1), capped at "
                 "saturation_read. DCS measured counts of one DIT t with true counts x in that DIT: "
                 "M = sum_j b_j*((1+k)**j - k**j)*x**j, k = 1.0011/t; for a constant true rate "
                 "r (ADU/s): M = sum_j b_j*r**j*((t+1.0011)**j - 1.0011**j). pct_at_10kadu = "
                 "100*(1 - 10000/(r*t)) at the DIT t where M = 10000 for the linearity lamp rate"
                 " r of that channel (lamp_rate, channel median).",
    "saturation": "DCS plateau (ADU per DIT) of the linearity sequence (the detector table's"
                  " value). saturation_read caps a single read: a DCS pixel saturating between "
                  "the reads measures saturation_read - S(first read), so bright short-DIT "
                  "frames plateau lower and stars saturated at the first read have dark cores.",
    "stripe_rms": "rms (ADU per DIT) of the row offsets shared by detectors 1-4, 5-8, 9-12, "
                  "13-16, redrawn every frame (sqrt(NDIT) times larger in a raw sum).",
    "reset_level": "mean of an uncorrelated (RESET) read, ADU.",
    "ndit_offset": "ADU added to a raw frame per extra NDIT.",
    "zero_point": "magnitude (Vega, in the filter) giving 1 ADU/s of total flux on pixels "
                  "with flat = 1 and illumination P = 1, at the frame's mean airmass (smaller "
                  "presets: throughput reduced by the pixel-area factor, so per-pixel levels match "
                  "the real camera).",
    "seeing": "rendered PSF FWHM in arcsec (Moffat beta = 3); seeing_atmosphere before the "
              "preset's minimum FWHM in pixels.",
    "pointing": "true optical axis (CRVAL of the truth WCS); header_pointing carries the error.",
    "bpm_codes": {"1": "hot", "2": "warm", "4": "dead", "8": "noisy read-out region"},
    "illumination": "sources (stars and galaxies, not the sky) are multiplied by "
                    "truth/illumination.fits, P = 1 - 0.04 ((r/0.75 deg)^2 - 0.5) + 0.015 xi/0.75 deg "
                    "with (xi, eta) the focal-plane position from the optical axis (instrument frame):"
                    " the twilight flat's error an illumination correction removes. Star magnitudes"
                    " on the images are MAG - 2.5 log10(P).",
    "flat": "truth/flat.fits: QE x large-scale x channel x pixel-to-pixel response (dead "
            "pixels included), same for twilight, sky and lamp (the lamp adds its own "
            "illumination pattern).",
}


def simulate(
    out: Path | str,
    preset: str = "tiny",
    seed: int = 1,
    filter: str = "J",
    compress: bool = False,
    what: str = "all",
) -> SimulationResult:
    """Simulate a VIRCAM observing run as raw files, with truth, reference catalogues, SOFs.

    Parameters
    ----------
    out : path-like
        Output folder (``raw/``, ``sof/``, ``refcat/``, ``truth/`` are made in it).
    preset : {"tiny", "small", "full"}
        Detector size and number of frames.
    seed : int
        Random seed; the same seed gives byte-identical files.
    filter : str
        Science filter: Z, Y, J, H, Ks, NB118, NB980 or NB990.
    compress : bool
        Write RICE_1 tile-compressed ``.fits.fz`` raw files.
    what : {"calib", "science", "all"}
        Which part of the run to simulate.

    Returns
    -------
    SimulationResult
    """
    if what not in WHAT:
        raise ValueError(f"what must be one of {', '.join(WHAT)}, not {what!r}")
    band = _band(filter)
    pre = get_preset(preset)
    plan = make_plan(pre, seed, band)
    out = Path(out)
    raw_dir, truth_dir = out / "raw", out / "truth"
    raw_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    frames = [fp for fp in plan.frames if what == "all" or fp.part == what]
    result = SimulationResult(out=out)
    paths = _start_files(frames, raw_dir, compress)
    for fp in frames:
        result.raw_files.append(paths[fp.index])
        result.tags[paths[fp.index]] = fp.tag
    cat = make_catalog(_rng(seed, 31), plan.regions)
    sky = _Sky(cat, plan, band) if any(fp.region >= 0 for fp in frames) else None
    truth_paths = {k: truth_dir / f"{k}.fits" for k in ("bpm", "flat", "dark_rate", "illumination")}
    det_truth = _render(seed, pre, frames, paths, sky, compress, truth_paths)
    geoms = chip_geometries(pre.nx)
    cw = pre.channel_width

    refcats = None
    if any(fp.part == "science" for fp in frames):
        refcats = write_refcats(out / "refcat", cat, _rng(seed, 71))
        result.refcats = {"gaia": refcats[0], "twomass": refcats[1]}
    stars_path = write_stars_truth(truth_dir / "stars.fits", cat, band, sky.mag if sky else
                                   vircam_magnitude(cat["j"], cat["h"], cat["ks"], band),
                                   plan.epoch)
    result.sofs = write_sofs(out / "sof", plan, paths, refcats)
    pixscale = float(np.mean([g.pixel_scale_arcsec for g in geoms]))
    truth = {
        "generator": "vircamframe.simulate",
        "format_version": 1,
        "preset": pre.name,
        "seed": seed,
        "filter": band,
        "what": what,
        "compress": compress,
        "nx": pre.nx,
        "ny": pre.nx,
        "n_channels": N_CHANNELS,
        "channel_width": cw,
        "pixel_scale_arcsec": pixscale,
        "pixel_scale_factor": pre.scale,
        "mindit": MINDIT,
        "epoch": plan.epoch,
        "tile_centre": list(plan.tile_centre),
        "science_setup": {"dit": plan.science_setup[0], "ndit": plan.science_setup[1]},
        "dark_setups": [{"dit": d, "ndit": n} for d, n in plan.dark_setups],
        "pointing_error_max_arcsec": POINTING_MAX_ARCSEC,
        "regions": [{"name": n, "ra": r, "dec": d, "radius": rad}
                    for n, r, d, rad in plan.regions],
        "conventions": CONVENTIONS,
        "detectors": det_truth,
        "frames": [frame_truth(fp, paths[fp.index], pixscale, pre.min_fwhm_px)
                   for fp in frames],
        "files": {
            "bpm": "bpm.fits", "flat": "flat.fits", "dark_rate": "dark_rate.fits",
            "illumination": "illumination.fits", "stars": "stars.fits",
        },
    }
    result.truth = write_truth_json(truth_dir / "truth.json", truth)
    result.truth_files = {**truth_paths, "stars": stars_path}
    return result


def _start_files(frames: list[FramePlan], raw_dir: Path, compress: bool) -> dict[int, Path]:
    """Write the primary HDU of every frame; return frame index -> path."""
    suffix = ".fits.fz" if compress else ".fits"
    paths = {}
    for fp in frames:
        path = raw_dir / (fp.arcfile[: -len(".fits")] + suffix)
        write_primary(path, primary_header(fp, _origfile(fp)))
        paths[fp.index] = path
    return paths


def _render(
    seed: int, pre, frames: list[FramePlan], paths: dict[int, Path], sky: _Sky | None,
    compress: bool, truth_paths: dict[str, Path] | None,
) -> dict[str, dict]:
    """Detector-outer loop: static maps once per detector, then its extension of every frame.

    Returns the per-detector truth; writes the truth images when ``truth_paths`` is given.
    """
    params = detector_params(seed)
    geoms = chip_geometries(pre.nx)
    if truth_paths:
        for p in truth_paths.values():
            write_primary(p, _primary_only())
    det_truth = {}
    for det, chip in zip(params, geoms, strict=True):
        maps = detector_maps(seed, det, pre, _lamp_pattern(chip, pre.nx))
        det_truth[str(det.chip)] = _detector_truth(det, maps, pre.channel_width)
        if truth_paths:
            extname = _extname_header(det.chip)
            append_image(truth_paths["bpm"], maps.bpm, extname)
            append_image(truth_paths["flat"], maps.flat, extname)
            append_image(truth_paths["dark_rate"], maps.dark_rate, extname)
            pix = np.arange(1, pre.nx + 1, dtype=float)
            append_image(truth_paths["illumination"],
                         _chip_illumination(chip, pix[None, :], pix[:, None]).astype(np.float32), extname)
        chip_id = f"VRG-{1000 + 37 * det.chip}"
        for fp in frames:
            img = _frame_image(seed, fp, det, maps, chip, pre.nx, sky, pre.min_fwhm_px)
            append_image(paths[fp.index], img, extension_cards(fp, chip, pre.nx, chip_id),
                         compress=compress)
        del maps
    return det_truth


def simulate_exposure(
    out: Path | str,
    preset: str = "full",
    seed: int = 1,
    filter: str = "J",
    tag: str = "OBJECT",
    compress: bool = False,
) -> Path:
    """Simulate only the first raw frame of one tag (no truth, SOFs or catalogues).

    For benchmarks: the file is identical to the one :func:`simulate` writes for that frame.

    Parameters
    ----------
    out : path-like
        Folder to write the raw file to.
    preset, seed, filter, compress
        As for :func:`simulate`.
    tag : str
        Raw tag of the frame (``OBJECT``, ``DARK``, ``FLAT_TWILIGHT``...).

    Returns
    -------
    Path
        The raw file.
    """
    band = _band(filter)
    pre = get_preset(preset)
    plan = make_plan(pre, seed, band)
    chosen = [fp for fp in plan.frames if fp.tag == tag.upper()][:1]
    if not chosen:
        raise ValueError(f"the plan has no frame tagged {tag!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = _start_files(chosen, out, compress)
    sky = None
    if chosen[0].region >= 0:
        sky = _Sky(make_catalog(_rng(seed, 31), plan.regions), plan, band)
    _render(seed, pre, chosen, paths, sky, compress, None)
    return paths[chosen[0].index]


def _band(name: str) -> str:
    known = {b.upper(): b for b in ("Z", "Y", "J", "H", "Ks", "NB118", "NB980", "NB990")}
    known["K"] = "Ks"
    return known.get(name.upper(), name)


def _primary_only():
    from astropy.io import fits

    h = fits.Header()
    h["SIMPLE"] = True
    h["BITPIX"] = 8
    h["NAXIS"] = 0
    h["EXTEND"] = True
    h["ORIGIN"] = ("vircamframe.simulate", "Simulation truth")
    return h


def _extname_header(chip: int):
    from astropy.io import fits

    h = fits.Header()
    h["EXTNAME"] = f"DET1.CHIP{chip}"
    h["HIERARCH ESO DET CHIP NO"] = chip
    return h
