"""Calendar-time effects as a change of clock ("operational time").

A common calendar multiplier ``m(s) = exp(f(s))`` on every active customer's purchase
rate is, for models whose dropout happens only at purchase events (BG/NBD, MBG/NBD), a
change of clock: in operational time ``τ = C(s) = ∫_0^s m`` the process is the ordinary
model. ``f`` is piecewise constant on a grid of periods of length 1 (the model's time
unit): period ``p`` is ``[p, p + 1)``.

For a customer first seen at grid position ``c`` with repeat purchases at ``c + t_j`` and
observed to ``c + T``, given the purchase rate ``λ`` and dropout ``p`` the purchase times
have density ``∏_j λ m(c + t_j)`` times the homogeneous model's survival terms at the
operational times ``M(t) = C(c + t) - C(c)``: the homogeneous density in operational time
times the Jacobian ``∏_j m(c + t_j)``. Mixing over ``λ`` and ``p`` does not touch the
Jacobian, so

.. math::

    \\ell = \\ell_{\\text{model}}\\bigl(x, M(t_x), M(T)\\bigr) + \\sum_j f(c + t_j)
          = \\ell_{\\text{model}}(\\ldots) + \\sum_p n_p f_p,

with ``n_p`` the customer's repeat purchases in period ``p``; with ``f ≡ 0`` it is exactly
the ordinary model, and over all customers the Jacobian is ``Σ_p N_p f_p`` with the
pooled counts ``N_p`` (it enters the fit once). Level: ``(α, f) -> (α e^δ, f + δ)``
leaves the likelihood unchanged, so the level of ``f`` is fixed by a constraint
(:func:`centre`).

The latent process (:func:`level_posterior`, :func:`simulate_future`): a local level
(random walk) plus white noise per period, ``f_p = ℓ_p + ε_p``, ``ℓ_p = ℓ_{p-1} + η_p``,
``η ~ N(0, σ_level)``, ``ε ~ N(0, σ_noise)``: persistent and short-lived movement. Its
differences are an MA(1) process whose tridiagonal Toeplitz covariance the fixed sine
basis diagonalises exactly (:func:`difference_basis`), which is how the model samples
the path. Forecasts continue the walk from the last level's conditional distribution
given the path (a Kalman filter), so their uncertainty grows with the horizon.

Functions take numpy arrays; :func:`clock_at`, :func:`centre` and
:func:`difference_basis`'s use also accept PyTensor variables (through
:mod:`clvbayes.math.ops`), so the same formulas build the PyMC graph.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from clvbayes.math.ops import is_tensor, ops_for
from clvbayes.math.processes import AliveProcess, check_simulated_purchases

__all__ = [
    "GridPositions",
    "centre",
    "clock",
    "clock_at",
    "customer_jacobian",
    "difference_basis",
    "elapsed",
    "inverse_elapsed",
    "level_posterior",
    "partially_centred",
    "period_of",
    "polar_scales",
    "polar_start",
    "positions",
    "simulate_customers",
    "simulate_future",
    "simulate_path",
    "walk_information",
]


class GridPositions(NamedTuple):
    """Positions on the grid as each one's period ``index`` and ``fraction`` into it, so
    that ``C(s) = K[index] + fraction * exp(f[index])`` (``K``: cumulative sums of
    ``exp(f)`` at the period starts) is two gathers in a graph."""

    index: np.ndarray
    fraction: np.ndarray


def period_of(s: Any, n_periods: int) -> np.ndarray:
    """The period holding grid position ``s``: ``floor(s)``, the grid's end counting to the
    last period (positions are clipped to ``[0, n_periods]``)."""
    s = np.clip(np.asarray(s, dtype=float), 0.0, float(n_periods))
    return np.minimum(np.floor(s), n_periods - 1).astype(np.int64)


def positions(s: Any, n_periods: int) -> GridPositions:
    """:class:`GridPositions` of ``s`` on a grid of ``n_periods`` periods."""
    s = np.clip(np.asarray(s, dtype=float), 0.0, float(n_periods))
    index = period_of(s, n_periods)
    return GridPositions(index, s - index)


def clock_at(f: Any, at: GridPositions) -> Any:
    """``C(s) = ∫_0^s exp(f)`` at positions given as :class:`GridPositions`.

    ``f`` has the periods on its last axis (e.g. ``(draws, P)``); the result is
    ``(..., len(at))``. numpy or PyTensor.
    """
    ops = ops_for(f)
    w = ops.exp(f)
    K = ops.cumsum(w, axis=-1) - w  # exclusive cumulative sums: K[p] = Σ_{q<p} w_q
    return K[..., at.index] + at.fraction * w[..., at.index]


def clock(f: Any, s: Any) -> np.ndarray:
    """``C(s)`` for grid positions ``s`` (numpy); ``f`` ``(..., P)``, ``s`` any shape."""
    f = np.asarray(f, dtype=float)
    s = np.asarray(s, dtype=float)
    at = positions(s.reshape(-1), f.shape[-1])
    return np.reshape(clock_at(f, at), (*f.shape[:-1], *s.shape))


def elapsed(f: Any, start: Any, t: Any) -> np.ndarray:
    """Operational time of the window ``[start, start + t]``: ``M(t) = C(start + t) - C(start)``.

    Computed by the same gathers as the likelihood's graph (:func:`clock_at`), then
    clipped at 0 (on grids where ``exp(f)`` spans many orders of magnitude the difference
    can lose its last bits). ``f`` ``(..., P)``; ``start`` and ``t`` broadcast to the
    customers ``(n,)``; the result is ``(..., n)``.
    """
    start, t = np.broadcast_arrays(np.asarray(start, dtype=float), np.asarray(t, dtype=float))
    return np.maximum(clock(f, start + t) - clock(f, start), 0.0)


def inverse_elapsed(f: Any, start: float, tau: Any, draw: Any) -> np.ndarray:
    """Calendar offset ``s >= 0`` after ``start`` at which ``∫_start^{start+s} e^f = tau``.

    Maps purchase times simulated in operational time back to the calendar (so
    discounting stays exact). Each element uses its own draw's ``f``.

    Parameters
    ----------
    f : ndarray, shape (draws, P)
        Log multipliers per draw; the grid must cover every ``start + s`` asked for
        (elements beyond its end get ``inf``).
    start : float
        The common start position (e.g. the calibration end ``G``).
    tau : ndarray
        Operational durations ``>= 0``, one per element.
    draw : ndarray of int
        Each element's draw (row of ``f``).

    Returns
    -------
    ndarray
        Calendar offsets, shape of ``tau``.
    """
    f = np.asarray(f, dtype=float)
    tau, draw = np.broadcast_arrays(np.asarray(tau, dtype=float), np.asarray(draw))
    n_draws, n_periods = f.shape
    w = np.exp(f)
    k0 = int(min(np.floor(start), n_periods - 1))
    # per draw: operational time from `start` to each period boundary after it
    head = (k0 + 1 - start) * w[:, k0]
    bounds = np.concatenate([np.zeros((n_draws, 1)), head[:, None]], axis=1)
    if k0 + 1 < n_periods:
        bounds = np.concatenate([bounds, head[:, None] + np.cumsum(w[:, k0 + 1 :], axis=1)], axis=1)
    # boundary b of `bounds` is calendar position start (b = 0) or k0 + b (b >= 1)
    span = float(bounds[:, -1].max()) + 1.0  # rows laid end to end in one sorted array
    flat = (bounds + np.arange(n_draws)[:, None] * span).ravel()
    keys = tau + draw * span
    j = np.searchsorted(flat, keys, side="right") - 1 - draw * bounds.shape[1]
    j = np.clip(j, 0, bounds.shape[1] - 2)
    left = np.where(j == 0, start, k0 + j)
    period = np.where(j == 0, k0, k0 + j)
    s = left + (tau - bounds[draw, j]) / w[draw, period] - start
    return np.where(tau > bounds[draw, -1] * (1 + 1e-12), np.inf, s)


def customer_jacobian(f: Any, purchases: Any, n_customers: int) -> np.ndarray:
    """Each customer's Jacobian of the clock change, ``Σ_p n_ip f_p``.

    Parameters
    ----------
    f : ndarray, shape (..., P)
        Log multipliers (e.g. posterior draws ``(chain, draw, P)``).
    purchases : ndarray of int, shape (3, m)
        Rows ``(customer, period, count)`` of the repeat purchases per customer and period.
    n_customers : int

    Returns
    -------
    ndarray, shape (..., n_customers)
    """
    customer, period, count = np.asarray(purchases, dtype=np.int64)
    f = np.asarray(f, dtype=float)
    flat = f.reshape(-1, f.shape[-1])
    out = np.zeros((flat.shape[0], n_customers))
    for i in range(flat.shape[0]):
        out[i] = np.bincount(customer, weights=flat[i, period] * count, minlength=n_customers)
    return out.reshape(*f.shape[:-1], n_customers)


def centre(f: Any, weights: Any) -> Any:
    """``f`` minus its ``weights``-weighted mean over the periods (last axis): the level
    constraint ``Σ w_p f_p = 0`` that keeps ``α`` the purchase-rate scale at the
    calibration's average calendar conditions. numpy or PyTensor."""
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    if is_tensor(f):
        return f - (f * w).sum(axis=-1, keepdims=True)
    f = np.asarray(f, dtype=float)
    return f - (f @ w)[..., None]


def difference_basis(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The sine basis that diagonalises the covariance of the path's differences.

    Under the local level plus white noise, the ``n`` differences ``Δf_p = η_p + ε_p -
    ε_{p-1}`` have the tridiagonal Toeplitz covariance with diagonal ``σ_l² + 2σ_n²`` and
    off-diagonal ``-σ_n²``, whose eigenvectors are fixed:
    ``V[i, j] = sqrt(2/(n+1)) sin((i+1)(j+1)π/(n+1))`` with eigenvalues
    ``σ_l² + 4σ_n² s_j`` for the returned ``s_j = sin²((j+1)π/(2(n+1)))``. So
    ``Δf = V (sqrt(σ_l² + 4σ_n² s) z)`` with ``z ~ N(0, I)`` has exactly that covariance.

    Returns
    -------
    V : ndarray, shape (n, n)
        Orthonormal (and symmetric).
    s : ndarray, shape (n,)
    """
    j = np.arange(1, n + 1)
    V = np.sqrt(2.0 / (n + 1)) * np.sin(np.outer(j, j) * np.pi / (n + 1))
    return V, np.sin(j * np.pi / (2.0 * (n + 1))) ** 2


def walk_information(counts: Any, n_free: int) -> np.ndarray:
    """Approximate data information about the path's sampled coordinates: the walk's
    coordinates in the sine basis, then the free periods' effects.

    Each period's log multiplier ``f_p`` is informed by that period's repeat purchases
    like a Poisson log rate: information ``N_p``. A free period's effect is its own
    ``f_p``; the walk's path is ``(0, cumsum(V w))`` (:func:`difference_basis`), so the
    information about ``w`` is the diagonal of ``B' diag(N) B`` with ``B`` that map.

    Parameters
    ----------
    counts : array_like, shape (P,)
        Repeat purchases per calibration period.
    n_free : int
        Free periods at the start of the grid.

    Returns
    -------
    ndarray, shape (P - 1,)
        ``P - n_free - 1`` walk coordinates, then ``n_free`` free effects.
    """
    counts = np.asarray(counts, dtype=float)
    n = counts.size - n_free - 1
    if n < 1:
        raise ValueError(f"{counts.size} periods with n_free={n_free} leave no walk")
    V, _ = difference_basis(n)
    B = np.vstack([np.zeros((1, n)), np.cumsum(V, axis=0)])
    walk = np.einsum("pk,p,pk->k", B, counts[n_free:], B)
    return np.concatenate([walk, counts[:n_free]])


def partially_centred(tau: Any, information: Any, unit: float = 1.0) -> tuple[Any, Any]:
    """Prior scale and multiplier of a partially centred Gaussian effect.

    An effect ``w ~ N(0, τ)`` is sampled as ``u ~ N(0, (τ/κ)^c)`` and
    ``w = κ (τ/κ)^(1-c) u`` with ``c = τ²I / (1 + τ²I)``, ``I`` the data's information
    about ``w`` and ``κ`` the ``unit``: non-centred (``u = w / τ``) where the data say
    little compared with the prior, centred (``u = w / κ``) where they pin ``w`` down.
    For a fixed ``c`` this is the partially non-centred parametrisation
    (Papaspiliopoulos, Roberts & Sköld 2003, whose Gaussian case has this ``c`` as the
    weight that leaves ``u`` and ``τ`` uncorrelated); here ``c`` follows the current
    ``τ``, so the neck of the funnel (small ``τ``) is sampled non-centred and the wide
    part centred. For every ``c``, fixed or a function of ``τ``, and every unit, the
    density of ``u`` given ``τ`` is the one ``w ~ N(0, τ)`` induces: the prior and the
    posterior of ``w`` and ``τ`` do not change, only NUTS' geometry.

    The unit matters because ``c`` moves with ``τ``: ``d log(w/u) / d log τ = (1 - c)
    (1 - 2c log(τ/κ))``, which exceeds 1 (more than non-centred) when ``τ`` is far below
    ``κ``. Measured in a unit near the typical scale (the time-effect model's
    ``PATH_UNIT``), it stays between 0 and 1 where the posterior is.

    Parameters
    ----------
    tau : array_like or TensorVariable
        Positive prior scales.
    information : array_like or TensorVariable
        Non-negative, broadcast against ``tau``.
    unit : float
        Positive; the scale of a fully centred coordinate.

    Returns
    -------
    scale, multiplier
        ``(τ/κ)^c`` (the prior sd of ``u``) and ``κ (τ/κ)^(1-c)``.
    """
    o = ops_for(tau, information)
    c = tau**2 * information / (1.0 + tau**2 * information)
    log_ratio = o.log(tau / unit)
    return o.exp(c * log_ratio), unit * o.exp((1.0 - c) * log_ratio)


def polar_scales(log_radius: Any, logit_angle: Any) -> tuple[Any, Any, Any]:
    """The local level's two scales from the polar coordinates NUTS samples them in.

    ``σ_l = R sin θ`` and ``σ_n = R cos θ / 2`` with ``R = exp(log_radius)`` and ``θ =
    (π/2) sigmoid(logit_angle)``, so ``R² = σ_l² + 4σ_n²`` is the variance of the
    walk's fastest coordinate (a difference's spectrum is ``σ_l² + 4σ_n² s_k``, ``s_k``
    up to 1) and ``θ`` is how it splits between the level and the noise. The data pin
    ``R`` down; sampled as ``log σ_l`` and ``log σ_n``, the two scales traded along the
    curved ridge of constant ``R``, where NUTS diverged (CDNOW master: ``σ_l``
    0.07-0.15 with ``σ_n`` 0.075-0.13). In these coordinates that ridge is a line.

    Parameters
    ----------
    log_radius, logit_angle : array_like or TensorVariable
        Unconstrained coordinates (numpy or PyTensor).

    Returns
    -------
    level, noise, log_jacobian
        ``σ_l``, ``σ_n`` and ``log |∂(σ_l, σ_n) / ∂(log_radius, logit_angle)|`` (``log
        (R²/2) + log(π/2) + log s + log(1 - s)``, ``s = sigmoid(logit_angle)``), which
        the scales' prior density is multiplied by.
    """
    o = ops_for(log_radius, logit_angle)
    radius = o.exp(log_radius)
    log_share, log_rest = -o.softplus(-logit_angle), -o.softplus(logit_angle)
    angle = (np.pi / 2.0) * o.exp(log_share)
    level, noise = radius * o.sin(angle), radius * o.cos(angle) / 2.0
    log_jacobian = 2.0 * log_radius + np.log(np.pi / 4.0) + log_share + log_rest
    return level, noise, log_jacobian


def polar_start(level: float, noise: float) -> tuple[float, float]:
    """The polar coordinates of :func:`polar_scales` at the scales ``level, noise > 0``."""
    radius = np.hypot(level, 2.0 * noise)
    share = np.arctan2(level, 2.0 * noise) / (np.pi / 2.0)
    return float(np.log(radius)), float(np.log(share) - np.log1p(-share))


def level_posterior(f: Any, sigma_level: Any, sigma_noise: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the last level ``ℓ_{n-1}`` given a path ``f_0 .. f_{n-1}``.

    The Kalman filter of the local level model ``f_p = ℓ_p + ε_p``, ``ℓ_p = ℓ_{p-1} +
    η_p`` with a diffuse first level, vectorised over draws.

    Parameters
    ----------
    f : ndarray, shape (draws, n)
        The paths (the periods the process ran over).
    sigma_level, sigma_noise : ndarray, shape (draws,)
        The process's scales per draw.

    Returns
    -------
    mean, variance : ndarray, shape (draws,)
    """
    f = np.asarray(f, dtype=float)
    q = np.asarray(sigma_level, dtype=float) ** 2
    h = np.maximum(np.asarray(sigma_noise, dtype=float) ** 2, 1e-300)
    mean = f[:, 0].copy()
    var = h.copy()  # diffuse prior on ℓ_0 updated with f_0
    for p in range(1, f.shape[1]):
        prior = var + q
        gain = prior / (prior + h)
        mean = mean + gain * (f[:, p] - mean)
        var = prior * (1.0 - gain)
    return mean, var


def simulate_future(
    f: Any,
    sigma_level: Any,
    sigma_noise: Any,
    n_future: int,
    rng: np.random.Generator,
    *,
    effects: Any = 0.0,
) -> np.ndarray:
    """Future log multipliers ``f_n, ..., f_{n+H-1}`` per draw, given the path so far.

    The last level from its conditional distribution (:func:`level_posterior`), then the
    walk continued with fresh ``η`` and white noise ``ε``: ``f_{n+h} = ℓ_{n-1} + Σ_{i<=h}
    η_i + ε_{n+h}`` (plus known ``effects``, e.g. covariates ``z'γ`` of the future
    periods). The variance of a level ``h`` periods ahead grows like ``h σ_level²``.

    Parameters
    ----------
    f : ndarray, shape (draws, n)
        The latent part of the path the process ran over (without known effects).
    sigma_level, sigma_noise : ndarray, shape (draws,)
    n_future : int
        Periods to simulate.
    rng : numpy.random.Generator
    effects : array_like, shape (draws, n_future) or broadcastable
        Known effects of the future periods, added.

    Returns
    -------
    ndarray, shape (draws, n_future)
    """
    mean, var = level_posterior(f, sigma_level, sigma_noise)
    n_draws = mean.size
    level = mean + np.sqrt(var) * rng.standard_normal(n_draws)
    s_l = np.asarray(sigma_level, dtype=float)[:, None]
    s_n = np.asarray(sigma_noise, dtype=float)[:, None]
    walk = level[:, None] + np.cumsum(s_l * rng.standard_normal((n_draws, n_future)), axis=1)
    return walk + s_n * rng.standard_normal((n_draws, n_future)) + effects


# --- simulation ------------------------------------------------------------------------


def simulate_path(
    n_periods: int,
    sigma_level: float,
    sigma_noise: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """A path ``f_0 .. f_{n-1}`` of the local level plus white noise, starting at level 0
    (common calendar shocks for simulation studies)."""
    level = np.cumsum(np.concatenate([[0.0], sigma_level * rng.standard_normal(n_periods - 1)]))
    return level + sigma_noise * rng.standard_normal(n_periods)


class CalendarSample(NamedTuple):
    """Customers simulated under calendar multipliers (:func:`simulate_customers`).

    Attributes
    ----------
    first : ndarray, shape (n,)
        Grid position of each first purchase.
    x, t_x, T : ndarray, shape (n,)
        The calibration summary (repeat purchases up to ``calibration_end``).
    x_holdout : ndarray, shape (n,)
        Repeat purchases in ``(calibration_end, observation_end]``.
    customer, purchase_time : ndarray, shape (N,)
        Every repeat purchase (calibration and holdout): its customer and grid position.
    lam, p_drop : ndarray, shape (n,)
        The latent rates (per unit of operational time) and dropout probabilities.
    """

    first: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    x_holdout: np.ndarray
    customer: np.ndarray
    purchase_time: np.ndarray
    lam: np.ndarray
    p_drop: np.ndarray


def simulate_customers(
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    f: Any,
    *,
    calibration_end: float,
    observation_end: float | None = None,
    acquisition: tuple[float, float] = (0.0, 12.0),
    resolution: float | None = None,
    modified: bool = False,
    rng: np.random.Generator | int = 0,
) -> CalendarSample:
    """Simulate BG/NBD (or MBG/NBD) customers whose purchase rate is ``λ exp(f(s))``.

    Exact inversion of the operational clock: each customer draws ``λ ~ Gamma(r, α)``,
    ``p ~ Beta(a, b)`` and a first purchase uniform on ``acquisition``; in operational
    time the repeat purchases are a Poisson process of rate ``λ`` and the customer drops
    out right after each with probability ``p`` (MBG/NBD: also right after the first
    purchase), and every operational time is mapped back to the calendar. Vectorised:
    ``N ~ Poisson(λ H)`` purchases on the whole window (``H`` its operational length),
    the dropout index ``K ~ Geometric(p)``, the first ``min(N, K)`` of the ``N`` sorted
    uniform times kept. With ``resolution`` (``1/7`` for days when the unit is weeks)
    times are floored to that grid and same-instant purchases merge, as transaction logs
    do with same-day purchases (the model then holds only approximately).

    Parameters
    ----------
    n : int
        Customers.
    r, alpha, a, b : float
        Population parameters (``alpha`` per unit of operational time).
    f : array_like, shape (P,)
        Log multipliers per period; the grid must reach ``observation_end``.
    calibration_end, observation_end : float
        Grid positions of the calibration end and of the holdout end (default: no
        holdout).
    acquisition : (float, float)
        First purchases uniform on this interval of the grid.
    resolution : float, optional
        Time grid of purchases (None: continuous).
    modified : bool
        MBG/NBD instead of BG/NBD.
    rng : numpy.random.Generator or int

    Returns
    -------
    CalendarSample

    Raises
    ------
    TooManyPurchasesError
        Before simulating, if a customer acquired at the start of ``acquisition`` would be
        expected to make more than
        :data:`~clvbayes.math.processes.MAX_EXPECTED_PURCHASES` purchases (``E[λ] H``,
        no credit for the dropout: every one of the ``N`` purchase times is drawn).
    """
    f = np.asarray(f, dtype=float)
    rng = np.random.default_rng(rng)
    end = calibration_end if observation_end is None else observation_end
    if not (0 <= acquisition[0] and acquisition[1] <= calibration_end <= end <= f.size):
        raise ValueError(
            f"need 0 <= acquisition start, acquisition end <= calibration_end <= "
            f"observation_end <= len(f) = {f.size}; got acquisition={acquisition}, "
            f"calibration_end={calibration_end}, observation_end={observation_end}."
        )
    longest = elapsed(f, acquisition[0], end - acquisition[0])  # the earliest customer's
    check_simulated_purchases(
        "simulate_calendar",
        AliveProcess(1.0, r, alpha),
        longest,
        {"r": r, "alpha": alpha, "a": a, "b": b, "operational window": longest},
    )
    first = rng.uniform(acquisition[0], acquisition[1], size=n)
    if resolution is not None:
        first = np.floor(first / resolution) * resolution
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    H = elapsed(f, first, end - first)
    N = rng.poisson(lam * H)
    K = rng.geometric(np.clip(p, 1e-300, 1.0)) - (1 if modified else 0)
    keep = np.minimum(N, K)
    owner = np.repeat(np.arange(n), N)
    u = rng.random(owner.size)
    order = np.lexsort((u, owner))
    u, owner = u[order], owner[order]
    rank = np.arange(owner.size) - np.repeat(np.cumsum(N) - N, N)
    kept = rank < keep[owner]
    owner, tau = owner[kept], u[kept] * H[owner[kept]]
    s = first[owner] + _inverse_from(f, first[owner], tau)
    s = np.minimum(s, end)
    if resolution is not None:  # same-instant purchases merge; the first absorbs ties
        s = np.minimum(np.floor(s / resolution + 1e-9) * resolution, end)
        keys = np.unique(np.column_stack([owner, s]), axis=0)
        owner, s = keys[:, 0].astype(np.int64), keys[:, 1]
        later = s > first[owner] + 1e-12
        owner, s = owner[later], s[later]
    in_cal = s <= calibration_end + 1e-12
    x = np.bincount(owner[in_cal], minlength=n)
    t_x = np.zeros(n)
    np.maximum.at(t_x, owner[in_cal], s[in_cal] - first[owner[in_cal]])
    x_hold = np.bincount(owner[~in_cal], minlength=n)
    return CalendarSample(
        first,
        x.astype(float),
        t_x,
        calibration_end - first,
        x_hold.astype(float),
        owner,
        s,
        lam,
        p,
    )


def _inverse_from(f: np.ndarray, start: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Calendar offsets after per-element ``start`` of operational durations ``tau`` on
    one grid ``f``, through the global clock (past the grid's end: its end)."""
    w = np.exp(f)
    K = np.concatenate([[0.0], np.cumsum(w)])
    target = clock(f, start) + tau
    k = np.clip(np.searchsorted(K, target, side="right") - 1, 0, f.size - 1)
    s = np.minimum(k + (target - K[k]) / w[k], float(f.size))
    return s - start
