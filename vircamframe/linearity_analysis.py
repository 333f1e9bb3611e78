"""The linearity analysis of ``vircam_linearity_analyse``: planning the inputs and one detector.

:func:`plan_linearity` matches every lamp flat (and CHECK flat) to the darks of its DIT and
NDIT; :func:`read_detector_data` reads one detector of every frame from open
:class:`~vircamframe.fitsio.FrameStack` objects and :func:`analyse_detector` fits its 16
readout channels and its bad pixel mask (no I/O, so detectors can be analysed in threads).
Nothing here writes a product or knows a Recipe: bad input is a
:class:`~vircamframe.errors.RecipeInputError` whose message starts with the recipe name the
caller passes in. The numerics are :mod:`vircamframe.numerics.linearity` and
:mod:`vircamframe.numerics.badpix`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .channel_table import make_channel_table
from .errors import RecipeInputError
from .fitsio import FrameStack
from .keywords import FrameInfo, frame_info, require_same_setup
from .numerics.badpix import dark_slopes, response_bad_pixels
from .numerics.linearity import (
    N_CHANNELS,
    ChannelFit,
    channel_columns,
    channel_levels,
    find_saturation,
    fit_channel,
    lamp_drift,
    linearise,
    sporadic_saturation,
)
from .numerics.stats import robust_stats

__all__ = [
    "SAT_PIXEL",
    "ChannelCurves",
    "DetectorData",
    "DetectorResult",
    "LinearityPlan",
    "analyse_detector",
    "channel_table",
    "mask_qc",
    "plan_linearity",
    "read_detector_data",
    "table_qc",
]

SAT_PIXEL = 0.98  # a pixel at or above this fraction of the saturation level is saturated


@dataclass
class LinearityPlan:
    """Which dark goes with which flat, and the order of the dark stack."""

    flats: list
    flat_infos: list[FrameInfo]
    dark_paths: list
    dark_dits: np.ndarray
    dark_ndits: np.ndarray
    flat_dark: list[list[int]]  # per flat: indices into the dark stack
    checks: list
    check_infos: list[FrameInfo]
    check_dark: list[list[int]]


@dataclass
class ChannelCurves:
    """One detector's channel fits and the levels they fit: small, what the QC plot draws."""

    fits: list[ChannelFit]
    levels: np.ndarray  # (n, 16) dark-subtracted channel levels per DIT
    dits: np.ndarray
    drift: np.ndarray
    satlevel: float


@dataclass
class DetectorResult:
    """What one detector's analysis gives the products (and, as ``curves``, the QC plot)."""

    curves: ChannelCurves
    bpm: np.ndarray  # (ny, nx) uint8, 1 = bad
    kinds: dict[str, int]  # number of pixels flagged per kind
    header: fits.Header  # of the detector's first flat


# --- the inputs ------------------------------------------------------------------------------
def plan_linearity(
    flats: Sequence,
    darks: Sequence,
    checks: Sequence,
    check_darks: Sequence,
    nord: int,
    recipe: str,
    log: logging.Logger,
) -> LinearityPlan:
    """Match every flat to the darks of its DIT and NDIT, and check the inputs.

    ``flats``, ``darks``, ``checks`` and ``check_darks`` are the FLAT_LAMP_LINEARITY,
    DARK_LINEARITY, FLAT_LAMP_CHECK and DARK_CHECK frames (``checks`` empty: no drift
    correction). A CHECK flat takes a DARK_CHECK of its setup, or else a linearity dark.
    """
    flats, darks, checks = list(flats), list(darks), list(checks)
    check_darks = list(check_darks) if checks else []
    infos = {f.path: frame_info(f.path) for f in [*flats, *darks, *checks, *check_darks]}
    require_same_setup(list(infos.values()), ("readmode",), recipe)
    for info in infos.values():
        for key in ("dit", "ndit"):
            if getattr(info, key) is None:
                raise RecipeInputError(f"{recipe}: {info.path.name} has no {key.upper()} keyword")
    by_setup: dict[tuple[float, int], list] = defaultdict(list)
    for frame in darks:
        by_setup[(infos[frame.path].dit, infos[frame.path].ndit)].append(frame)
    check_setup: dict[tuple[float, int], list] = defaultdict(list)
    for frame in check_darks:
        check_setup[(infos[frame.path].dit, infos[frame.path].ndit)].append(frame)
    dark_paths: list = []

    def dark_indices(frame, pool, what) -> list[int]:
        info = infos[frame.path]
        matches = pool.get((info.dit, info.ndit))
        if not matches:
            raise RecipeInputError(
                f"{recipe}: no {what} with DIT {info.dit:g} s and NDIT {info.ndit} for {frame.path.name}"
            )
        out = []
        for dark in matches:
            if dark.path not in dark_paths:
                dark_paths.append(dark.path)
            out.append(dark_paths.index(dark.path))
        return out

    flat_dark = [dark_indices(f, by_setup, "DARK_LINEARITY") for f in flats]
    dits = sorted({infos[f.path].dit for f in flats})
    need = nord + 2
    if len(dits) < need:
        raise RecipeInputError(
            f"{recipe}: needs FLAT_LAMP_LINEARITY frames at {need} or more distinct DITs, got "
            f"{len(dits)} ({', '.join(f'{d:g}' for d in dits)} s)"
        )
    check_dark = []
    for frame in checks:
        pool = check_setup if (infos[frame.path].dit, infos[frame.path].ndit) in check_setup else by_setup
        check_dark.append(dark_indices(frame, pool, "DARK_CHECK or DARK_LINEARITY"))
    if checks and any(infos[f.path].mjd is None for f in [*flats, *checks]):
        log.warning("MJD-OBS missing: lamp drift not corrected")
        checks, check_dark = [], []
    unused = [f.path.name for f in darks if f.path not in dark_paths]
    if unused:
        log.warning("darks with no flat of their DIT/NDIT, not used: %s", ", ".join(unused))
    return LinearityPlan(
        flats=flats, flat_infos=[infos[f.path] for f in flats], dark_paths=dark_paths,
        dark_dits=np.array([infos[p].dit for p in dark_paths]),
        dark_ndits=np.array([infos[p].ndit for p in dark_paths], dtype=np.float32),
        flat_dark=flat_dark, checks=checks, check_infos=[infos[f.path] for f in checks],
        check_dark=check_dark,
    )


# --- one detector ----------------------------------------------------------------------------
@dataclass
class DetectorData:
    """One detector of every frame of the sequence, as read (flats and darks per DIT)."""

    extname: str
    flats: np.ndarray
    headers: list
    darks: np.ndarray
    checks: np.ndarray | None


def read_detector_data(
    plan: LinearityPlan,
    extname: str,
    flat_stack: FrameStack,
    dark_stack: FrameStack,
    check_stack: FrameStack | None,
) -> DetectorData:
    """Read detector ``extname`` of the stacks holding ``plan.flats``, ``plan.dark_paths`` and
    ``plan.checks`` (None, or fewer than two CHECK flats: no drift correction)."""
    flats, headers = flat_stack.read(extname)
    flats /= np.array([i.ndit for i in plan.flat_infos], dtype=np.float32)[:, None, None]
    darks, _ = dark_stack.read(extname, with_headers=False)
    darks /= plan.dark_ndits[:, None, None]
    checks = None
    if check_stack is not None and len(plan.checks) >= 2:
        checks = check_stack.read(extname, with_headers=False)[0]
    return DetectorData(extname, flats, headers, darks, checks)


def analyse_detector(
    plan: LinearityPlan,
    data: DetectorData,
    params,
    recipe: str,
    log: logging.Logger,
) -> DetectorResult:
    """Fit the 16 channels of one detector and find its bad pixels (pure numerics: no I/O).

    ``params`` has the recipe's ``nord``, ``satlevel``, ``satfrac``, ``clip``, ``lthr`` and
    ``hthr``.
    """
    extname, flats, headers, darks = data.extname, data.flats, data.headers, data.darks
    dits = np.array([i.dit for i in plan.flat_infos])
    satlevel = params.satlevel if params.satlevel > 0 else find_saturation(flats)
    if not np.isfinite(satlevel):
        log.warning("%s: no saturated linearity flat; fitting without a saturation cut "
                    "(give --satlevel)", extname)
    with np.errstate(invalid="ignore"):
        cut = SAT_PIXEL * satlevel if np.isfinite(satlevel) else np.inf
        darks[darks >= cut] = np.nan  # a saturated dark pixel is a transient event (or very hot)
        sporadic = sporadic_saturation(flats >= cut, dits)
        genuine = (flats >= cut) & ~sporadic
    for i, idx in enumerate(plan.flat_dark):
        flats[i] -= darks[idx[0]] if len(idx) == 1 else np.nanmean(darks[idx], axis=0)
    flats[sporadic] = np.nan
    del sporadic
    maxlevel = params.satfrac * satlevel
    frame_level = np.array([np.nanmedian(frame[::4, ::4]) for frame in flats])
    levels, _, moments = channel_levels(flats, reference=frame_level <= maxlevel)
    if np.isfinite(maxlevel) and not (levels <= maxlevel).any():
        raise RecipeInputError(
            f"{recipe}: all {len(plan.flats)} FLAT_LAMP_LINEARITY frames are saturated on "
            f"{extname} (levels above {params.satfrac:g} x {satlevel:.0f} ADU)"
        )
    check_rates = None
    if data.checks is not None:
        check_rates = _check_rates(plan, data.checks, darks, cut)
    drift = np.ones(len(dits))
    if check_rates is not None:
        drift = _drift(plan, np.nanmedian(check_rates, axis=1))

    def fit():
        nflats = len(plan.flats)
        return _fit(extname, levels, dits, drift, moments, maxlevel, satlevel, nflats, params, recipe)

    fits_ = fit()
    if check_rates is not None:  # second pass: the drift from linearised CHECK levels
        check_dits = np.array([i.dit for i in plan.check_infos])
        linear = np.array([[float(linearise(rate[c] * dit, dit, (f.b2, f.b3))) / dit
                            for c, f in enumerate(fits_)]
                           for rate, dit in zip(check_rates, check_dits, strict=True)])
        drift = _drift(plan, np.nanmedian(linear, axis=1))
        fits_ = fit()
    bpm, kinds = _bad_pixels(flats, genuine, dits, drift, fits_, darks, plan.dark_dits, params)
    curves = ChannelCurves(fits_, levels, dits, drift, float(satlevel))
    return DetectorResult(curves, bpm, kinds, headers[0])


def _fit(extname, levels, dits, drift, moments, maxlevel, satlevel, nflats, params, recipe):
    """The DCS fit of every channel; too few usable points is an error naming the channel."""
    fits_ = []
    for c in range(N_CHANNELS):
        try:
            fits_.append(fit_channel(levels[:, c], dits, scale=drift, moments=moments[c],
                                     nord=params.nord, maxlevel=maxlevel, clip=params.clip))
        except ValueError as err:
            raise RecipeInputError(
                f"{recipe}: {extname} channel {c + 1}: {err} (levels below {params.satfrac:g} x "
                f"saturation {satlevel:.0f} ADU, of {nflats} FLAT_LAMP_LINEARITY frames)"
            ) from None
    return fits_


def _check_rates(plan: LinearityPlan, checks: np.ndarray, darks: np.ndarray, cut: float) -> np.ndarray:
    """Dark-subtracted CHECK-flat levels per channel divided by DIT, ``(k, 16)``."""
    checks /= np.array([i.ndit for i in plan.check_infos], dtype=np.float32)[:, None, None]
    with np.errstate(invalid="ignore"):
        checks[checks >= cut] = np.nan
    for k, idx in enumerate(plan.check_dark):
        checks[k] -= darks[idx[0]] if len(idx) == 1 else np.nanmean(darks[idx], axis=0)
    levels = channel_levels(checks)[0]
    return levels / np.array([i.dit for i in plan.check_infos])[:, None]


def _drift(plan: LinearityPlan, check_rate: np.ndarray) -> np.ndarray:
    """Lamp level at each linearity flat relative to the sequence mean."""
    return lamp_drift([i.mjd for i in plan.check_infos], check_rate, [i.mjd for i in plan.flat_infos])


def _bad_pixels(diffs, genuine, dits, drift, fits_, darks, dark_dits, params):
    """The BPM: response outliers and unstable pixels from the flats, hot pixels from the darks."""
    nx = diffs.shape[2]
    coeffs = (channel_columns([f.b2 for f in fits_], nx), channel_columns([f.b3 for f in fits_], nx))
    used = np.stack([f.used for f in fits_], axis=1)  # (n, 16)
    for i in range(diffs.shape[0]):  # linearised rate per frame, in place
        rate = linearise(diffs[i], dits[i], coeffs)
        rate /= np.float32(dits[i] * drift[i])
        rate[genuine[i]] = np.nan
        rate[:, ~channel_columns(used[i], nx)] = np.nan
        diffs[i] = rate
    keep = used.any(axis=1)
    flags = response_bad_pixels(diffs[keep], params.lthr, params.hthr, cell=nx // N_CHANNELS)
    slopes = dark_slopes(darks, dark_dits)
    centre, spread = robust_stats(slopes)
    flags["hot"] = slopes > centre + params.hthr * max(spread, 1e-6)
    bpm = np.zeros(diffs.shape[1:], dtype=np.uint8)
    for mask in flags.values():
        bpm |= mask.astype(np.uint8)
    return bpm, {kind: int(mask.sum()) for kind, mask in flags.items()}


# --- what the products hold ------------------------------------------------------------------
def channel_table(result: DetectorResult, nord: int) -> Table:
    """The detector's channel table (:func:`vircamframe.channel_table.make_channel_table`)."""
    res = result.curves
    ny, nx = result.bpm.shape
    return make_channel_table(
        nx, ny, [f.b2 for f in res.fits], [f.b3 for f in res.fits],
        pct=np.array([f.pct for f in res.fits]), pct_err=[f.pct_err for f in res.fits],
        fit_rms=[f.rms_pct for f in res.fits], satlevel=res.satlevel,
        lamp_rate=[f.rate for f in res.fits], npts=[f.npts for f in res.fits], norder=nord,
    )


def table_qc(curves: ChannelCurves) -> dict[str, tuple[float, str]]:
    """QC of a detector's channel fits: ``{key: (value, comment)}``."""
    pct = np.array([f.pct for f in curves.fits])
    drift_pct = float(100.0 * np.max(np.abs(curves.drift - 1.0)))
    return {
        "LINEARITY": (float(np.median(pct)), "[%] median non-linearity at 10 kADU"),
        "LINERROR": (float(np.median([f.pct_err for f in curves.fits])), "[%] median fit error of it"),
        "LINMAX": (float(np.max(pct)), "[%] largest channel non-linearity at 10 kADU"),
        "SATLEVEL": (curves.satlevel, "[ADU] saturation level used"),
        "LAMPDRIFT": (drift_pct, "[%] largest lamp drift correction"),
    }


def mask_qc(result: DetectorResult) -> dict[str, tuple[float | int, str]]:
    """QC of a detector's bad pixel mask: ``{key: (value, comment)}``."""
    return {
        "BADFRAC": (float(result.bpm.mean()), "fraction of bad pixels"),
        "NBADPIX": (int(result.bpm.sum()), "number of bad pixels"),
        **{f"N{kind.upper()}": (count, f"pixels flagged {kind}") for kind, count in result.kinds.items()},
    }
