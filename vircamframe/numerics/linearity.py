"""VIRCAM DCS non-linearity: the model, its per-channel fit, and its fast inversion.

The model (DESIGN.md section 4). A pixel holding ``Q`` true ADU since its reset reads
``S(Q) = Q + b2 Q**2 + b3 Q**3``. A double-correlated (DCS) exposure of DIT ``t`` reads the
pixel ``MINDIT = 1.0011 s`` after the reset and again ``t`` later and records the difference, so
with ``x`` the true counts of the DIT and ``k = MINDIT / t``::

    M = sum_j b_j ((1 + k)**j - k**j) x**j,        b1 = 1.

For a lamp of constant true rate ``r`` (ADU/s) this is linear in ``beta_j = b_j r**j``::

    M(t) = sum_j beta_j ((t + MINDIT)**j - MINDIT**j),

which is how :func:`fit_channel` fits a linearity sequence: weighted linear least squares in
``beta``, then ``r = beta_1``, ``b_j = beta_j / r**j``. A lamp that drifts by a known factor
``s_i`` at frame ``i`` has rate ``r s_i``: the design-matrix column ``j`` is multiplied by
``s_i**j``, still linear. The non-linearity "at 10 kADU" is ``100 (1 - M / x)`` at the DIT
where the lamp (of the fitted rate) gives ``M = 10000`` ADU (:func:`nonlinearity_pct`).

Readout channels: 16 per detector, channel ``c`` (0-based) covers columns
``[c w, (c + 1) w)`` with ``w = nx / 16``.

Everything here is pure: arrays in, arrays and numbers out, float64 wherever precision matters
(the cubic coefficients span 13 orders of magnitude), float32 for images returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import bottleneck as bn
import numpy as np

from .stats import MAD_TO_SIGMA

__all__ = [
    "MINDIT",
    "N_CHANNELS",
    "ChannelFit",
    "channel_columns",
    "channel_levels",
    "dcs_response",
    "dcs_terms",
    "find_saturation",
    "fit_channel",
    "lamp_drift",
    "linearise",
    "nonlinearity_pct",
    "sporadic_saturation",
    "turnover",
]

MINDIT = 1.0011  # s: the first read of a DCS exposure after the reset
N_CHANNELS = 16  # readout channels per detector
_FAST_NEWTON = 3  # Newton steps of the vectorised fast path of linearise()
_BLOCK_VALUES = 1 << 16  # values per row block of linearise(): 512 kB per float64 temporary


# --- the model -------------------------------------------------------------------------------
def dcs_terms(dit: float, nord: int = 3) -> np.ndarray:
    """``a_j = (1 + k)**j - k**j`` for ``j = 1..nord``, ``k = MINDIT / dit`` (``a_1 = 1``)."""
    if not dit > 0:
        raise ValueError(f"DIT must be positive, not {dit}")
    k = MINDIT / float(dit)
    return np.array([(1.0 + k) ** j - k**j for j in range(1, nord + 1)])


def dcs_response(x, dit: float, b2, b3) -> np.ndarray:
    """Measured DCS counts (float64) for true counts ``x`` of one DIT; ``b2, b3`` broadcast."""
    a = dcs_terms(dit)
    x = np.asarray(x, dtype=np.float64)
    c2 = np.asarray(b2, dtype=np.float64) * a[1]
    c3 = np.asarray(b3, dtype=np.float64) * a[2]
    return x * (1.0 + x * (c2 + c3 * x))


def turnover(dit: float, b2, b3) -> tuple[np.ndarray, np.ndarray]:
    """Where the DCS response of one DIT stops rising: ``(x_turn, M_max)`` (inf if never).

    The smallest positive root of ``dM/dx = 1 + 2 c2 x + 3 c3 x**2``, ``c_j = b_j a_j``;
    arrays of the broadcast shape of ``b2`` and ``b3`` (at least 1-D).
    """
    a = dcs_terms(dit)
    return _turnover(np.asarray(b2, dtype=np.float64) * a[1], np.asarray(b3, dtype=np.float64) * a[2])


def _turnover(c2, c3) -> tuple[np.ndarray, np.ndarray]:
    """``(x, p(x))`` at the first maximum of ``p(x) = x + c2 x**2 + c3 x**3`` for x > 0."""
    c2, c3 = np.broadcast_arrays(np.atleast_1d(c2), np.atleast_1d(c3))
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = 4.0 * c2 * c2 - 12.0 * c3
        sq = np.sqrt(np.where(disc >= 0, disc, np.nan))
        roots = np.stack([(-2.0 * c2 - sq) / (6.0 * c3), (-2.0 * c2 + sq) / (6.0 * c3)])
        roots = np.where((roots > 0) & np.isfinite(roots), roots, np.inf).min(axis=0)
        quad = np.where(c2 < 0, -0.5 / np.where(c2 < 0, c2, -1.0), np.inf)
        x_turn = np.where(c3 != 0, roots, quad)
        p_max = np.where(np.isfinite(x_turn), x_turn * (1.0 + x_turn * (c2 + c3 * x_turn)), np.inf)
    return x_turn, p_max


def _solve_increasing(
    f: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    lo: np.ndarray,
    hi: np.ndarray,
    x0: np.ndarray,
    rtol: float = 1e-10,
    max_iter: int = 60,
) -> np.ndarray:
    """Root of an increasing function on ``[lo, hi]`` (``f(lo) <= 0 <= f(hi)``) per element.

    Safeguarded Newton: a Newton step that leaves the bracket becomes a bisection, and the
    bracket shrinks with the sign of ``f``. ``f(x, index)`` returns ``(value, derivative)``
    for the still-active elements ``index``. Converged elements drop out of the iteration.
    """
    x = np.array(x0, dtype=np.float64)
    lo = np.array(lo, dtype=np.float64)
    hi = np.array(hi, dtype=np.float64)
    active = np.flatnonzero(np.isfinite(x))
    for _ in range(max_iter):
        if active.size == 0:
            break
        xa = x[active]
        value, slope = f(xa, active)
        below = value < 0
        lo[active] = np.where(below, xa, lo[active])
        hi[active] = np.where(below, hi[active], xa)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = value / slope
            new = xa - step
        la, ha = lo[active], hi[active]
        outside = ~((new > la) & (new < ha)) | ~np.isfinite(new)
        new = np.where(outside, 0.5 * (la + ha), new)
        x[active] = new
        done = np.abs(new - xa) <= rtol * np.maximum(np.abs(new), 1.0)
        active = active[~done]
    return x


def linearise(
    data: np.ndarray,
    dit: float,
    coeffs: tuple[np.ndarray | float, np.ndarray | float],
    beyond: str = "nan",
) -> np.ndarray:
    """True (linear) counts ``x`` from measured DCS counts ``M`` of one DIT, per pixel.

    Parameters
    ----------
    data : ndarray
        Measured counts of one DIT (raw divided by NDIT, pedestal removed, i.e. dark
        subtracted), any shape; NaN stays NaN.
    dit : float
        Detector integration time, s.
    coeffs : (b2, b3)
        Read-response coefficients broadcast against ``data`` — per column, shape ``(nx,)``,
        as :func:`vircamframe.channel_table.coefficients_per_column` returns, or scalars.
    beyond : {"nan", "clip"}
        Values at or above the model's turnover ``M_max`` (see :func:`turnover`; the response
        of a cubic with ``b3 > 0`` peaks and falls again, so no true value maps there) become
        NaN, or the turnover's true counts ``x_turn`` with ``"clip"``. Real data above the
        saturation level should be masked by the caller in any case.

    Returns
    -------
    ndarray of float32
        The linearised counts: ``M = x + b2 a2 x**2 + b3 a3 x**3`` solved for the root on the
        rising branch (the real root nearest ``M``), to 1e-9 relative in float64: three
        Newton steps on the whole array from the series inversion
        ``x0 = M (1 - c2 M + (2 c2**2 - c3) M**2)``, then a safeguarded (bracketed)
        Newton-bisection for the few pixels near the turnover that need more.
    """
    if beyond not in ("nan", "clip"):
        raise ValueError(f"beyond must be 'nan' or 'clip', not {beyond!r}")
    b2, b3 = coeffs
    a = dcs_terms(dit)
    shape = np.shape(data)
    data = np.asarray(data)
    c2 = np.asarray(b2, dtype=np.float64) * a[1]  # per column (or scalar): broadcast, never
    c3 = np.asarray(b3, dtype=np.float64) * a[2]  # materialised at the image's size
    x_turn, m_max = _turnover(c2, c3)
    if x_turn.size == 1:
        x_turn, m_max = x_turn[0], m_max[0]
    flat = data.reshape(-1, shape[-1]) if data.ndim >= 2 else np.atleast_2d(data)
    out = np.empty(flat.shape, dtype=np.float32)
    # Blocks of rows keep the float64 temporaries in cache: the arithmetic is memory bound.
    step = max(1, _BLOCK_VALUES // max(1, flat.shape[1]))
    for start in range(0, flat.shape[0], step):
        rows = slice(start, start + step)
        out[rows] = _linearise_block(flat[rows].astype(np.float64), c2, c3, x_turn, m_max, beyond)
    return out.reshape(shape)


def _linearise_block(m, c2, c3, x_turn, m_max, beyond: str) -> np.ndarray:
    """:func:`linearise` of a 2-D block of rows (float64 in, float64 out)."""
    # Fast path: series inversion as the start, then a fixed number of Newton steps on the
    # whole block (quadratic convergence: 1e-12 where the series start is good).
    x = m * (1.0 - c2 * m + (2.0 * c2 * c2 - c3) * m * m)
    x = np.minimum(x, 0.999 * x_turn)
    np.maximum(x, np.minimum(m, 0.0) * 2.0 - 1.0, out=x)
    for _ in range(_FAST_NEWTON):
        value = ((c3 * x + c2) * x + 1.0) * x - m
        slope = (3.0 * c3 * x + 2.0 * c2) * x + 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            x -= value / slope
    value = ((c3 * x + c2) * x + 1.0) * x - m
    with np.errstate(invalid="ignore"):
        inside = m < m_max
        good = (np.abs(value) <= 1e-9 * np.maximum(np.abs(m), 1.0)) & (x < x_turn) & inside
        slow = np.flatnonzero((inside & ~good).ravel())
    if slow.size:  # near the turnover: the safeguarded solver
        x.ravel()[slow] = _invert_slow(
            m.ravel()[slow], *(np.broadcast_to(v, m.shape).ravel()[slow] for v in (c2, c3, x_turn))
        )
    if beyond == "clip":
        x = np.where(inside | np.isnan(m), x, x_turn)
    else:
        x[~inside] = np.nan
    return x


def _invert_slow(mv: np.ndarray, c2v: np.ndarray, c3v: np.ndarray, xt: np.ndarray) -> np.ndarray:
    """Safeguarded inversion of ``M = x + c2 x**2 + c3 x**3`` on the rising branch (1-D)."""
    # Bracket: [2M - 1, 0] for M < 0 (the response is steeper than 1 there), else
    # [0, x_turn], or a doubling search where the response never turns over.
    lo = np.where(mv < 0, 2.0 * mv - 1.0, 0.0)
    hi = np.where(mv < 0, 0.0, xt)
    inf_hi = np.flatnonzero(~np.isfinite(hi))
    if inf_hi.size:
        guess = 2.0 * np.abs(mv[inf_hi]) + 1.0
        for _ in range(200):
            g = guess * (1.0 + guess * (c2v[inf_hi] + c3v[inf_hi] * guess)) - mv[inf_hi]
            low = g < 0
            if not low.any():
                break
            guess = np.where(low, guess * 2.0, guess)
        hi[inf_hi] = guess

    def f(x, active):
        p2, p3 = c2v[active], c3v[active]
        return x * (1.0 + x * (p2 + p3 * x)) - mv[active], 1.0 + x * (2.0 * p2 + 3.0 * p3 * x)

    return _solve_increasing(f, lo, hi, np.clip(mv, lo, hi), rtol=1e-12)


def nonlinearity_pct(b2, b3, rate, level: float = 10000.0) -> np.ndarray:
    """Non-linearity in per cent where a lamp of true ``rate`` (ADU/s) measures ``level`` ADU.

    ``100 (1 - level / (rate t))`` with ``t`` the DIT at which
    ``sum_j b_j rate**j ((t + MINDIT)**j - MINDIT**j) = level``; NaN where the response turns
    over before reaching ``level``. Broadcasts over its array arguments.
    """
    b2, b3, rate = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, np.float64)) for v in
                                         (b2, b3, rate)))
    shape = b2.shape
    b2, b3, r = b2.ravel(), b3.ravel(), rate.ravel()
    # In Q = r (t + MINDIT), the counts since reset at the second read, the response is
    # S(Q) - S(r MINDIT), rising until the read response S turns over.
    q0 = r * MINDIT
    s0 = q0 * (1.0 + q0 * (b2 + b3 * q0))
    q_turn, s_max = _turnover(b2, b3)
    out = np.full(b2.shape, np.nan)
    ok = (r > 0) & (s_max - s0 > level)
    idx = np.flatnonzero(ok)
    target = level + s0[idx]
    p2, p3 = b2[idx], b3[idx]
    lo = q0[idx]
    hi = np.where(np.isfinite(q_turn[idx]), q_turn[idx], np.inf)
    inf_hi = ~np.isfinite(hi)
    if inf_hi.any():  # monotonic response: double until past the target
        guess = np.maximum(2.0 * target[inf_hi], lo[inf_hi] + 1.0)
        for _ in range(200):
            low = guess * (1.0 + guess * (p2[inf_hi] + p3[inf_hi] * guess)) < target[inf_hi]
            if not low.any():
                break
            guess = np.where(low, 2.0 * guess, guess)
        hi[inf_hi] = guess

    def f(q, active):
        a2, a3 = p2[active], p3[active]
        return q * (1.0 + q * (a2 + a3 * q)) - target[active], 1.0 + q * (2.0 * a2 + 3.0 * a3 * q)

    q = _solve_increasing(f, lo, hi, np.minimum(target, 0.5 * (lo + hi)), rtol=1e-13)
    t = q / r[idx] - MINDIT
    out[idx] = 100.0 * (1.0 - level / (r[idx] * t))
    return out.reshape(shape)


# --- the fit ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelFit:
    """The DCS fit of one readout channel.

    Attributes
    ----------
    b2, b3 : float
        Read-response coefficients (``b1 = 1``; ``b3 = 0`` for ``nord = 2``).
    rate : float
        Fitted true lamp rate, ADU/s (at drift factor 1).
    pct, pct_err : float
        Non-linearity in per cent at ``level`` and its 1-sigma error from the fit covariance.
    rms_pct : float
        RMS of the fractional residuals of the points used, per cent.
    used : ndarray of bool
        Points used (below ``maxlevel``, finite, not rejected as outliers).
    model : ndarray
        Fitted measured counts at every input point.
    """

    b2: float
    b3: float
    rate: float
    pct: float
    pct_err: float
    rms_pct: float
    used: np.ndarray
    model: np.ndarray

    @property
    def npts(self) -> int:
        return int(self.used.sum())


def _design(dits: np.ndarray, scale: np.ndarray, nord: int) -> np.ndarray:
    cols = [(scale**j) * ((dits + MINDIT) ** j - MINDIT**j) for j in range(1, nord + 1)]
    return np.stack(cols, axis=1)


def _coefficients(beta: np.ndarray) -> tuple[float, float, float]:
    rate = beta[0]
    b2 = beta[1] / rate**2
    b3 = beta[2] / rate**3 if beta.size > 2 else 0.0
    return float(b2), float(b3), float(rate)


def fit_channel(
    measured: Sequence[float] | np.ndarray,
    dit: Sequence[float] | np.ndarray,
    *,
    scale: Sequence[float] | np.ndarray | None = None,
    moments: Sequence[float] | None = None,
    nord: int = 3,
    maxlevel: float | None = None,
    clip: float = 5.0,
    min_points: int | None = None,
    level: float = 10000.0,
) -> ChannelFit:
    """Fit ``b2`` (and ``b3``) of one channel, with the lamp rate, to a linearity sequence.

    Parameters
    ----------
    measured : array of shape (n,)
        Dark-subtracted measured counts per DIT of the lamp at each DIT — for a channel, the
        median over its pixels (the median of a monotonic response is the response of the
        median rate, so the fitted rate is the channel's median lamp rate). NaN points are
        ignored.
    dit : array of shape (n,)
        DIT of each point, s.
    scale : array of shape (n,), optional
        Lamp drift factor of each point (true rate ``rate * scale``); 1 by default.
    moments : (1, m2, m3), optional
        When ``measured`` are means over pixels whose rates spread about their mean with
        relative moments ``m_j = <P**j>``, column ``j`` of the model is multiplied by ``m_j``
        (see :func:`channel_levels`); the fit is then of the mean pixel.
    nord : {2, 3}
        Order of the read response.
    maxlevel : float, optional
        Points above this level (ADU, e.g. a fraction of the saturation level) are not used.
    clip : float
        Points whose studentized deleted residual is rarer than ``clip`` sigma of a normal
        distribution (at the t-distribution's few degrees of freedom) are rejected one at a
        time (the worst first), while more than ``min_points`` remain.
    min_points : int, optional
        Fewest points to fit (default ``nord + 2``, one degree of freedom beyond the fit).
    level : float
        Level of the quoted non-linearity, ADU.

    Weights: the points' noise is taken as Poisson-like, ``sigma_i**2 ∝ max(M_i, 1 % of the
    largest M)``.

    Raises
    ------
    ValueError
        Too few usable points (the message says how many); the caller names the channel.
    """
    if nord not in (2, 3):
        raise ValueError(f"nord must be 2 or 3, not {nord}")
    y = np.asarray(measured, dtype=np.float64)
    t = np.asarray(dit, dtype=np.float64)
    s = np.ones_like(y) if scale is None else np.asarray(scale, dtype=np.float64)
    min_points = nord + 2 if min_points is None else max(int(min_points), nord + 1)
    usable = np.isfinite(y) & np.isfinite(t) & (t > 0) & np.isfinite(s)
    if maxlevel is not None and np.isfinite(maxlevel):
        usable &= y <= maxlevel
    if usable.sum() < min_points:
        raise ValueError(f"{int(usable.sum())} usable point(s), need {min_points}")
    a_full = _design(t, s, nord)
    if moments is not None:
        a_full = a_full * np.asarray(moments, dtype=np.float64)[:nord]
    sigma = np.sqrt(np.maximum(np.where(np.isfinite(y), y, 0.0), 0.01 * np.nanmax(np.abs(y[usable]))))
    used = usable.copy()
    while True:
        w = 1.0 / sigma[used]
        aw = a_full[used] * w[:, None]
        norm = np.sqrt((aw**2).sum(axis=0))
        beta_n, *_ = np.linalg.lstsq(aw / norm, y[used] * w, rcond=None)
        beta = beta_n / norm
        resid = (y[used] - a_full[used] @ beta) * w
        n, p = resid.size, nord
        if n <= min_points or n - p - 1 < 1:
            break
        q, _ = np.linalg.qr(aw / norm)
        lev = np.clip((q**2).sum(axis=1), 0.0, 1.0 - 1e-12)
        sse = float(resid @ resid)
        floor = 1e-6 * float(np.median(np.abs(y[used]) * w))  # noiseless data: no rejection
        s_del = np.sqrt(np.maximum((sse - resid**2 / (1.0 - lev)) / (n - p - 1), floor**2))
        tdel = np.abs(resid) / (s_del * np.sqrt(1.0 - lev))
        worst = int(np.argmax(tdel))
        if tdel[worst] <= _t_threshold(clip, n - p - 1):
            break
        used[np.flatnonzero(used)[worst]] = False
    b2, b3, rate = _coefficients(beta)
    model = a_full @ beta
    dof = used.sum() - nord
    frac = (y[used] - model[used]) / model[used]
    rms = float(100.0 * np.sqrt(np.mean(frac**2)))
    pct = float(nonlinearity_pct(b2, b3, rate, level)[0])
    pct_err = float("nan")
    if dof > 0:
        resid = (y[used] - model[used]) / sigma[used]
        s2 = float(resid @ resid) / dof
        aw = a_full[used] / sigma[used][:, None]
        cov = s2 * np.linalg.pinv(aw.T @ aw)
        pct_err = _pct_error(beta, cov, level)
    return ChannelFit(b2, b3, rate, pct, pct_err, rms, used, model)


def _t_threshold(clip: float, dof: int) -> float:
    """The studentized residual as rare at ``dof`` degrees of freedom as ``clip`` sigma."""
    from scipy import stats  # 0.4 s to import: only when a fit needs it, not for every recipe

    return float(stats.t.isf(stats.norm.sf(clip), dof))


def _pct_error(beta: np.ndarray, cov: np.ndarray, level: float) -> float:
    """1-sigma error of the non-linearity from the covariance of ``beta`` (numerical gradient)."""
    grad = np.empty(beta.size)
    for j in range(beta.size):
        h = 1e-5 * abs(beta[j]) if beta[j] != 0 else 1e-12
        plus, minus = beta.copy(), beta.copy()
        plus[j] += h
        minus[j] -= h
        values = [nonlinearity_pct(*(_coefficients(b)[:3]), level)[0] for b in (plus, minus)]
        grad[j] = (values[0] - values[1]) / (2.0 * h)
    var = float(grad @ cov @ grad)
    return math.sqrt(var) if var >= 0 and np.isfinite(var) else float("nan")


# --- helpers for a linearity sequence ----------------------------------------------------------
def channel_columns(values, nx: int) -> np.ndarray:
    """Per-column array from one value per channel (16 channels of ``nx / 16`` columns)."""
    values = np.asarray(values)
    if nx % values.size:
        raise ValueError(f"{nx} columns do not split into {values.size} channels")
    return np.repeat(values, nx // values.size)


def channel_levels(
    cube: np.ndarray,
    n_channels: int = N_CHANNELS,
    reference: np.ndarray | None = None,
    clip: float = 5.0,
    min_common: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """Level of each frame in each readout channel: a clipped mean over one set of pixels.

    The pixels of a lamp flat have a fixed spread of response (flat field, lamp pattern) much
    wider than their noise, which makes a per-frame median noisy (its pixel changes from frame
    to frame). So each channel's pixels are first flattened by their relative response ``P``
    (median over the ``reference`` frames of frame / frame median); a pixel deviating from its
    frame's flattened median by more than ``clip`` robust sigma in any reference frame (dead,
    hot, hit by a particle) or NaN in any frame is dropped, and the level of every frame is the
    plain mean of the same remaining pixels. The mean over a fixed pixel set of a cubic
    response is the response at the mean rate up to the pixels' relative rate variance times
    the non-linearity (a few 1e-3 of it), so the levels follow one lamp rate.

    Parameters
    ----------
    cube : ndarray (n, ny, nx)
        Frames with NaN for pixels to ignore.
    reference : bool array (n,), optional
        Frames to derive ``P`` and the clipping from (unsaturated ones); default all.
    clip : float
        Outlier threshold in robust sigma.
    min_common : float
        If fewer than this fraction of a channel's pixels survive, each frame falls back to
        the median of its own finite pixels.

    Returns
    -------
    levels : ndarray (n, n_channels) float64
    npix : ndarray (n_channels,) int
        Pixels averaged per channel (0 where the per-frame median fallback was used).
    moments : ndarray (n_channels, 3) float64
        ``(1, <P**2>, <P**3>)`` of the averaged pixels' relative response (``<P> = 1``): the
        mean of ``x**j`` over them is ``<P**j>`` times the ``j``-th power of the mean, which
        :func:`fit_channel` takes as ``moments`` to fit the mean pixel's response without the
        bias of the spread (ones for the median fallback).
    """
    n, _, nx = cube.shape
    w = nx // n_channels
    ref = np.ones(n, dtype=bool) if reference is None else np.asarray(reference, dtype=bool)
    if not ref.any():
        ref = np.ones(n, dtype=bool)
    levels = np.full((n, n_channels), np.nan)
    npix = np.zeros(n_channels, dtype=int)
    moments = np.ones((n_channels, 3))
    for c in range(n_channels):
        block = cube[:, :, c * w : (c + 1) * w].reshape(n, -1).astype(np.float64)
        keep = np.isfinite(block).all(axis=0)
        if keep.mean() >= min_common:
            good = block[:, keep]
            refs = good[ref]
            with np.errstate(divide="ignore", invalid="ignore"):
                pattern = np.median(refs / np.median(refs, axis=1, keepdims=True), axis=0)
                flat = refs / pattern
            centre = np.median(flat, axis=1, keepdims=True)
            spread = MAD_TO_SIGMA * np.median(np.abs(flat - centre), axis=1, keepdims=True)
            spread = np.maximum(spread, 1e-6 * np.abs(centre))  # noiseless data
            inlier = (np.abs(flat - centre) <= clip * spread).all(axis=0) & (pattern > 0)
            if inlier.sum() >= min_common * keep.size:
                levels[:, c] = good[:, inlier].mean(axis=1)
                npix[c] = int(inlier.sum())
                rel = pattern[inlier] / pattern[inlier].mean()
                moments[c] = (1.0, np.mean(rel**2), np.mean(rel**3))
                continue
        levels[:, c] = bn.nanmedian(block, axis=1)
    return levels, npix, moments


def find_saturation(
    frames: np.ndarray, window: float = 0.005, min_fraction: float = 0.2, step: int = 2
) -> float:
    """The saturation plateau of a detector from its linearity flats (ADU per DIT), or NaN.

    A saturated frame piles its pixels up against the ceiling of the reads: a large fraction
    of its pixels lies within ``window`` (relative) of its 99.5th percentile, where a smooth
    lamp flat has only a few per cent. The plateau is the median 99.5th percentile of the
    frames with at least ``min_fraction`` of their pixels there; NaN when no frame is
    saturated (then the caller must know the level, or fit without a saturation cut).
    ``frames`` is ``(n, ny, nx)``, raw counts per DIT; every ``step``-th pixel is sampled.
    """
    plateaus = []
    for frame in frames:
        values = frame[::step, ::step]
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        top = float(np.percentile(values, 99.5))
        if top <= 0:
            continue
        if np.mean(np.abs(values / top - 1.0) < window) >= min_fraction:
            plateaus.append(top)
    return float(np.median(plateaus)) if plateaus else float("nan")


def sporadic_saturation(saturated: np.ndarray, dits: np.ndarray) -> np.ndarray:
    """Saturated pixels that are not saturated in some longer-DIT frame (transient events).

    A pixel that really saturates at DIT ``t`` is saturated at every longer DIT too; a pixel
    saturated in one frame but not in a later, longer one was hit by a transient event (e.g.
    detector 6 channel 14). ``saturated`` is ``(n, ny, nx)`` bool; returns the same shape.
    """
    order = np.argsort(dits, kind="stable")
    genuine = np.empty_like(saturated)
    running = np.ones(saturated.shape[1:], dtype=bool)
    for i in order[::-1]:
        running &= saturated[i]
        genuine[i] = running
    return saturated & ~genuine


def lamp_drift(
    check_times: Sequence[float], check_levels: Sequence[float], times: Sequence[float],
    order: int = 1,
) -> np.ndarray:
    """Relative lamp level at ``times`` from CHECK-frame levels at ``check_times``.

    A polynomial of ``order`` (at most the number of checks minus one) is fitted to the
    check levels against time; the returned factors are its values at ``times`` divided by
    their mean (so they average 1 over the sequence). Fewer than two checks: all ones.
    """
    ct = np.asarray(check_times, dtype=np.float64)
    cl = np.asarray(check_levels, dtype=np.float64)
    tt = np.asarray(times, dtype=np.float64)
    ok = np.isfinite(ct) & np.isfinite(cl) & (cl > 0)
    if ok.sum() < 2 or tt.size == 0:
        return np.ones(tt.size)
    t0 = ct[ok].mean()
    span = max(float(np.ptp(ct[ok])), 1e-9)
    deg = min(order, int(ok.sum()) - 1)
    poly = np.polynomial.polynomial.polyfit((ct[ok] - t0) / span, cl[ok], deg)
    value = np.polynomial.polynomial.polyval((tt - t0) / span, poly)
    return value / value.mean()
