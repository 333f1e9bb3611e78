"""Per-detector truth: electronic parameters, linearity, and the static pixel maps.

Scalar parameters come from the real ``vircam_detector_table.csv`` (gain, read noise in J,
saturation, non-linearity at 10 kADU) plus drawn values for what the table lacks (reset level,
dark current, NDIT offset, QE, stripe amplitude). The static maps of one detector (flat field,
bad-pixel kinds, dark-current map, read-noise multiplier, reset-level map) are generated on
demand from the seed, one detector at a time, so a 2048 x 2048 run never holds all 16.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..detector_table import instrument_table
from .linearity import MINDIT, choose_coefficients, nonlinearity_pct_at
from .presets import N_CHANNELS, Preset

__all__ = [
    "BPM_DEAD",
    "BPM_HOT",
    "BPM_NOISY",
    "BPM_WARM",
    "DetectorMaps",
    "DetectorParams",
    "detector_maps",
    "detector_params",
    "detector_table",
    "linearity_lamp_rate",
]

BPM_HOT = 1
BPM_WARM = 2
BPM_DEAD = 4
BPM_NOISY = 8

# The linearity lamp's true rate at flat = 1 (ADU/s); gain-pair lamp frames use a dimmer one.
LINEARITY_LAMP_RATE = 1800.0
STRIPE_GROUPS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16))


def linearity_lamp_rate() -> float:
    """Nominal true count rate of the linearity lamp at flat = 1, ADU/s."""
    return LINEARITY_LAMP_RATE


def detector_table() -> tuple[dict[str, float], ...]:
    """Rows of the packaged ``vircam_detector_table.csv`` as dicts of floats."""
    return instrument_table()


@dataclass
class DetectorParams:
    """Scalar truth of one detector (units in the attribute names' docs)."""

    chip: int
    gain: float  # e-/ADU
    read_noise: float  # e-, DCS (one correlated pair)
    dark_current: float  # ADU/s, typical pixel
    reset_level: float  # ADU, mean of an uncorrelated reset read
    ndit_offset: float  # ADU added to a raw frame per extra NDIT
    dcs_offset: float  # ADU per DIT: pedestal of a DCS frame
    saturation: float  # ADU, DCS plateau of the linearity sequence (the table's value)
    nonlin_pct_table: float  # % at 10 kADU from the table
    qe: float  # relative quantum efficiency (part of the flat field)
    stripe_rms: float  # ADU per DIT, rms of the row stripes of its readout row
    stripe_group: int  # 1..4: detectors sharing one stripe pattern
    gamma: float  # b3 / b2**2 of its channels before adjustment
    channel_pct: np.ndarray = field(default_factory=lambda: np.zeros(N_CHANNELS))

    @property
    def saturation_read(self) -> float:
        """Saturation of a single read, ADU: the DCS plateau plus the linearity lamp's first
        read, so the linearity sequence saturates at the table's value."""
        return self.saturation + LINEARITY_LAMP_RATE * MINDIT

    @property
    def read_noise_adu(self) -> float:
        """Read noise of one DCS read in ADU."""
        return self.read_noise / self.gain


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def detector_params(seed: int) -> list[DetectorParams]:
    """Scalar truth of the 16 detectors for a seed."""
    rng = _rng(seed, 11)
    group_rms = rng.uniform(2.5, 6.0, size=4)
    out = []
    for row in detector_table():
        chip = int(row["detector"])
        group = (chip - 1) // 4
        pct = row["nonlin_pct_at_10kadu_casu"]
        channel_pct = np.clip(pct * (1.0 + rng.normal(0.0, 0.05, N_CHANNELS)), 0.3, None)
        out.append(
            DetectorParams(
                chip=chip,
                gain=row["gain_e_per_adu_casu_avg"],
                read_noise=row["readnoise_e_casu_J"],
                dark_current=float(rng.uniform(0.05, 0.4) * (2.5 if chip == 13 else 1.0)),
                reset_level=float(rng.uniform(6000.0, 12000.0)),
                ndit_offset=float(rng.normal(12.0, 1.0)),
                dcs_offset=float(rng.normal(0.0, 4.0)),
                saturation=row["saturation_adu_casu"],
                nonlin_pct_table=pct,
                qe=float(np.clip(rng.normal(1.0, 0.05), 0.88, 1.12)),
                stripe_rms=float(group_rms[group]),
                stripe_group=group + 1,
                gamma=float(rng.uniform(0.05, 0.25)),
                channel_pct=channel_pct,
            )
        )
    return out


@dataclass
class DetectorMaps:
    """Static pixel maps of one detector, float32 ``(ny, nx)`` unless said otherwise."""

    flat: np.ndarray  # QE x large-scale x channel x pixel-to-pixel response
    bpm: np.ndarray  # uint8 bit flags: 1 hot, 2 warm, 4 dead, 8 noisy read-out region
    dark_rate: np.ndarray  # ADU/s per pixel
    noise_factor: np.ndarray | None  # read-noise multiplier (detector 16), else None
    reset_map: np.ndarray  # ADU, the uncorrelated reset read (without noise)
    lamp_illumination: np.ndarray  # lamp illumination pattern (mean 1 over the camera)
    b2: np.ndarray  # per column
    b3: np.ndarray  # per column
    channel_b2: np.ndarray  # per channel
    channel_b3: np.ndarray
    channel_pct: np.ndarray  # non-linearity in % at 10 kADU, per channel
    channel_rate: np.ndarray  # linearity-lamp true rate per channel, ADU/s


def _smooth_surface(rng: np.random.Generator, nx: int, amp: float) -> np.ndarray:
    """A smooth random surface of order 2 with values of order ``amp`` about 1."""
    u = (np.arange(nx, dtype=np.float32) + 0.5) / nx * 2.0 - 1.0
    c = rng.normal(0.0, amp, 5).astype(np.float32)
    row = c[0] * u + c[2] * u * u
    col = c[1] * u + c[3] * u * u
    return (1.0 + row[None, :] + col[:, None] + c[4] * u[None, :] * u[:, None]).astype(
        np.float32
    )


def detector_maps(
    seed: int, params: DetectorParams, preset: Preset, lamp_pattern: tuple[float, float, float]
) -> DetectorMaps:
    """Generate the static maps of one detector.

    Parameters
    ----------
    seed : int
        Simulation seed.
    params : DetectorParams
        The detector's scalar truth.
    preset : Preset
        Detector size and channel layout.
    lamp_pattern : tuple of float
        ``(c0, cx, cy)``: the linearity lamp illumination on this chip is
        ``c0 + cx * (x - 1) + cy * (y - 1)`` (pixel coordinates).
    """
    nx = preset.nx
    cw = preset.channel_width
    rng = _rng(seed, 12, params.chip)
    # flat field: QE x large scale x channel response x pixel-to-pixel (~1 %)
    flat = _smooth_surface(rng, nx, 0.02)
    flat *= np.float32(params.qe)
    chan = (1.0 + rng.normal(0.0, 0.008, N_CHANNELS)).astype(np.float32)
    flat *= np.repeat(chan, cw)[None, :]
    flat *= (1.0 + 0.01 * rng.standard_normal((nx, nx), dtype=np.float32))
    npix = nx * nx
    bpm = np.zeros((nx, nx), dtype=np.uint8)
    flat_f = flat.reshape(-1)
    bpm_f = bpm.reshape(-1)
    n_dead = max(1, round(npix * 0.0010))
    n_hot = max(1, round(npix * 0.0005))
    n_warm = max(1, round(npix * 0.0020))
    picks = rng.choice(npix, size=n_dead + n_hot + n_warm, replace=False)
    dead, hot, warm = np.split(picks, [n_dead, n_dead + n_hot])
    flat_f[dead] = rng.uniform(0.0, 0.15, dead.size).astype(np.float32)
    bpm_f[dead] |= BPM_DEAD
    dark = np.full((nx, nx), params.dark_current, dtype=np.float32)
    dark *= (1.0 + 0.05 * rng.standard_normal((nx, nx), dtype=np.float32))
    dark_f = dark.reshape(-1)
    dark_f[hot] = rng.uniform(30.0, 600.0, hot.size).astype(np.float32)
    dark_f[warm] = rng.uniform(2.0, 15.0, warm.size).astype(np.float32)
    bpm_f[hot] |= BPM_HOT
    bpm_f[warm] |= BPM_WARM
    noise_factor = None
    if params.chip == 16:  # a noisy region in one corner: 3x the read noise
        noise_factor = np.ones((nx, nx), dtype=np.float32)
        sl = (slice(nx - nx // 4, nx), slice(0, nx // 4))
        noise_factor[sl] = 3.0
        bpm[sl] |= BPM_NOISY
    reset_map = params.reset_level * _smooth_surface(rng, nx, 0.03)
    reset_map += np.repeat(rng.normal(0.0, 40.0, N_CHANNELS).astype(np.float32), cw)[None, :]
    c0, cx, cy = lamp_pattern
    xs = np.arange(nx, dtype=np.float32)
    lamp = (c0 + cx * xs[None, :] + cy * xs[:, None]).astype(np.float32)
    # linearity per channel, tied to the lamp rate that channel sees
    step = max(1, nx // 256)  # every row of tiny, a sample of rows of the larger presets
    resp = (flat[::step] * lamp[::step]).reshape(-1, N_CHANNELS, cw)
    channel_rate = LINEARITY_LAMP_RATE * np.median(resp, axis=(0, 2)).astype(float)
    cb2 = np.empty(N_CHANNELS)
    cb3 = np.empty(N_CHANNELS)
    pct = np.empty(N_CHANNELS)
    for j in range(N_CHANNELS):
        cb2[j], cb3[j] = choose_coefficients(
            float(params.channel_pct[j]), channel_rate[j], params.saturation_read, params.gamma
        )
        pct[j] = nonlinearity_pct_at(1e4, channel_rate[j], cb2[j], cb3[j])
    return DetectorMaps(
        flat=flat,
        bpm=bpm,
        dark_rate=dark,
        noise_factor=noise_factor,
        reset_map=reset_map.astype(np.float32),
        lamp_illumination=lamp,
        b2=np.repeat(cb2, cw),
        b3=np.repeat(cb3, cw),
        channel_b2=cb2,
        channel_b3=cb3,
        channel_pct=pct,
        channel_rate=channel_rate,
    )
