"""Compiled (numba) simulation of future purchases, one random stream per element.

:func:`simulate_alive_future` is the scoring's hot loop: for every ``(draw, customer)``
element it flips the customer's alive coin, draws the alive branch's latent state and
simulates the purchases in the window, with exact purchase times for discounting, Gamma
transaction values and the customer's spend scale, and returns the purchase count and
the CLV. The process is the one of :func:`clvbayes.math.processes.simulate_future_purchases`
(the numpy reference): a customer alive at the window's start buys as a Poisson process
of rate ``λ`` until the window ends, until a lifetime ``τ`` ends, or until a dropout coin
(probability ``p``, flipped after each purchase) comes up; each family describes its
alive branch as an :class:`~clvbayes.math.processes.AliveProcess` (the family's
``alive_process``): BG/NBD and MBG/NBD ``λ ~ Gamma``, ``p ~ Beta``, no lifetime;
Pareto/NBD ``λ ~ Gamma``, ``τ ~ Exponential(μ)`` with ``μ ~ Gamma``, no dropout coin.
Nothing here asks which model it is.

Random numbers. Every element draws from its own counter-based streams, keyed by
``(seed, draw index, customer key)`` (SplitMix64 sequences started at a hash of the
three; one for the alive coin, the purchase times and the dropout coins, one for the
values and the spend scale, so the purchases do not depend on whether values are
simulated), so an element's numbers do not depend on which other elements are simulated
with it, in which order, on how many threads or in what chunks: the output is identical
for any ``n_jobs``, chunking and memory cap. Exponentials by inversion, normals by
Marsaglia and Tsang's ziggurat, Gammas by Marsaglia and Tsang (2000) (with the
``U^(1/k)`` boost below shape 1), Betas as Gamma ratios in logs (small shapes cannot
underflow to 0/0).

The calendar hook. ``clock`` (optional) maps operational time after the window's start to
calendar time, one increasing piecewise-linear function per draw (knots
``(operational, calendar)``, both starting at 0, extended linearly beyond the last knot
with the last segment's slope): the window ``(0, h]`` is in calendar time (its end is
mapped back), purchases happen in operational time, and each is discounted at its
calendar time. Without it operational time is calendar time and nothing is mapped.

Speed. ``_element`` is inlined into the loop, and without windows their arrays are
passed as None, so numba compiles the window code out (a separate specialisation).
Compiled in, even never run, it made every element about 40 % slower (112 -> 69 ns per
element of a CDNOW-like chunk with values and discounting; 91 -> 51 ns for counts only),
with the same numbers.

Absurd rates. The loop runs once per purchase, so before it :func:`simulate_alive_future`
checks (vectorised, in numpy) that no customer alive at the window's start is expected to
buy more than :data:`~clvbayes.math.processes.MAX_EXPECTED_PURCHASES` times in its window
under any draw, and raises :class:`~clvbayes.math.processes.TooManyPurchasesError`
naming the draw and customer otherwise (a rate of ``1e12`` per time unit would otherwise
run for days). A count that still reaches ``2^31 - 1`` (the int32 output's limit, a
draw from a far tail) stops the element and raises the same error after the loop.

numba is imported when this module is (it is not imported by ``import clvbayes.math``).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from clvbayes.math.processes import (
    MAX_EXPECTED_PURCHASES,
    AliveProcess,
    TooManyPurchasesError,
    most_expected_purchases,
)

__all__ = ["element_uniforms", "simulate_alive_future", "stream_key"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_53 = 1.0 / 9007199254740992.0
_VALUES = np.uint64(0x5BD1E9955BD1E995)  # salt of an element's second stream (values)
_JIT = {"nogil": True, "cache": True, "fastmath": False}
_MAX_COUNT = 2**31 - 1  # an element's purchases stop here (the int32 count's limit)


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marsaglia and Tsang's (2000) 256-strip ziggurat for the standard normal, with
    52-bit magnitudes (the constants numpy's generator uses): ``k`` acceptance bounds,
    ``w`` magnitude scales, ``f`` the density at the strips' edges."""
    m = 2.0**52
    dn = tn = _ZIGGURAT_R
    vn = 0.00492867323399
    q = vn / np.exp(-0.5 * dn * dn)
    k, w, f = np.zeros(256, dtype=np.uint64), np.zeros(256), np.zeros(256)
    k[0], k[1] = np.uint64((dn / q) * m), np.uint64(0)
    w[0], w[255] = q / m, dn / m
    f[0], f[255] = 1.0, np.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = np.sqrt(-2.0 * np.log(vn / dn + np.exp(-0.5 * dn * dn)))
        k[i + 1] = np.uint64((dn / tn) * m)
        tn = dn
        f[i] = np.exp(-0.5 * dn * dn)
        w[i] = dn / m
    return k, w, f


_ZIGGURAT_R = 3.6541528853610088
_ZIG_K, _ZIG_W, _ZIG_F = _ziggurat_tables()


@numba.njit(**_JIT)
def _mix(z: Any) -> Any:
    """SplitMix64's finaliser: a bijective 64-bit hash with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@numba.njit(**_JIT)
def _key(seed: Any, draw: Any, customer: Any) -> Any:
    """The stream key of element ``(draw, customer)`` under ``seed``."""
    k = _mix(np.uint64(seed) + _GOLDEN)
    k = _mix(k + np.uint64(draw) + _GOLDEN)
    return _mix(k + np.uint64(customer) + _GOLDEN)


@numba.njit(**_JIT)
def _uniform(state: Any) -> Any:
    """``(u, next state)``: ``u`` uniform on the open interval ``(0, 1)``."""
    state = state + _GOLDEN
    bits = _mix(state) >> np.uint64(11)
    return (float(bits) + 0.5) * _TWO_53, state


@numba.njit(**_JIT)
def _normal(state: Any) -> Any:
    """``(z, next state)``, ``z ~ N(0, 1)`` by the ziggurat (one 64-bit draw 99 % of
    the time)."""
    while True:
        state = state + _GOLDEN
        bits = _mix(state)
        strip = np.int64(bits & np.uint64(0xFF))
        bits = bits >> np.uint64(8)
        negative = (bits & np.uint64(1)) != np.uint64(0)
        magnitude = (bits >> np.uint64(1)) & np.uint64(0x000FFFFFFFFFFFFF)
        x = float(magnitude) * _ZIG_W[strip]
        if negative:
            x = -x
        if magnitude < _ZIG_K[strip]:
            return x, state
        if strip == 0:  # the tail beyond r
            while True:
                u1, state = _uniform(state)
                u2, state = _uniform(state)
                xx = -math.log(u1) / _ZIGGURAT_R
                if -2.0 * math.log(u2) > xx * xx:
                    return (-(_ZIGGURAT_R + xx) if negative else _ZIGGURAT_R + xx), state
        u, state = _uniform(state)
        if _ZIG_F[strip] + u * (_ZIG_F[strip - 1] - _ZIG_F[strip]) < math.exp(-0.5 * x * x):
            return x, state


@numba.njit(**_JIT)
def _gamma_at_least_one(shape: float, state: Any) -> Any:
    """``G ~ Gamma(shape, 1)`` for ``shape >= 1`` (Marsaglia and Tsang)."""
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x, state = _normal(state)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u, state = _uniform(state)
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2 or math.log(u) < 0.5 * x2 + d * (1.0 - v + math.log(v)):
            return d * v, state


@numba.njit(**_JIT)
def _log_gamma_variate(shape: float, state: Any) -> Any:
    """``(log G, next state)`` with ``G ~ Gamma(shape, 1)``, ``shape > 0``: below shape 1
    ``G = G' U^(1/shape)`` with ``G' ~ Gamma(shape + 1)``, in logs (no underflow)."""
    if shape >= 1.0:
        g, state = _gamma_at_least_one(shape, state)
        return math.log(g), state
    u, state = _uniform(state)
    g, state = _gamma_at_least_one(shape + 1.0, state)
    return math.log(g) + math.log(u) / shape, state


@numba.njit(**_JIT)
def _gamma(shape: float, state: Any) -> Any:
    """``(G, next state)`` with ``G ~ Gamma(shape, 1)``, ``shape > 0``."""
    if shape >= 1.0:
        return _gamma_at_least_one(shape, state)
    u, state = _uniform(state)
    g, state = _gamma_at_least_one(shape + 1.0, state)
    return g * math.exp(math.log(u) / shape), state


@numba.njit(**_JIT)
def _interp(x: float, xs: Any, ys: Any) -> float:
    """The piecewise-linear function through ``(xs, ys)`` at ``x >= 0`` (linear beyond
    the last knot with the last segment's slope)."""
    n = xs.shape[0]
    j = 1
    while j < n - 1 and xs[j] < x:
        j += 1
    x0, x1, y0, y1 = xs[j - 1], xs[j], ys[j - 1], ys[j]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


@numba.njit(inline="always", **_JIT)
def _element(
    key: Any,
    alive: float,
    rate_shape: float,
    rate_rate: float,
    drop_a: float,
    drop_b: float,
    life_shape: float,
    life_rate: float,
    horizon: float,
    delta: float,
    value_shape: float,
    clock_op: Any,
    clock_cal: Any,
    win_lo: Any,
    win_hi: Any,
    win_count: Any,
    win_value: Any,
) -> Any:
    """``(purchases, Σ_j w_j V_j, value state)`` of one element (``V_j ~
    Gamma(value_shape, 1)``, or 1 without values; ``w_j`` the discount at the purchase's
    calendar time). The values come from a second stream of the element (``value
    state``, also for the caller's spend scale), so the purchases are the same with or
    without them. With windows (``win_lo < win_hi``, calendar times; None without) each
    purchase at calendar time ``c`` with ``win_lo[w] < c <= win_hi[w]`` is added to ``win_count[w]``
    and its ``w_j V_j`` to ``win_value[w]`` (arrays the caller zeroed).

    The Gamma-distributed rates and the Beta dropout probability are integrated out
    exactly, which needs no Gamma or Beta draw: after ``k`` purchases in ``(0, t]`` the
    rate is ``Gamma(shape + k, rate + t)``, so the next purchase comes ``S`` later with
    ``P(S > s) = ((rate + t) / (rate + t + s))^(shape + k)``, drawn by inversion; the
    dropout coins are Beta-Bernoulli, so having survived ``k - 1`` coins the ``k``-th
    comes up with probability ``a / (a + b + k - 1)`` (Pólya's urn); a Gamma-mixed
    exponential lifetime is Lomax, ``τ = rate (U^(-1/shape) - 1)``.
    """
    state = key
    values = _mix(key ^ _VALUES)
    u, state = _uniform(state)
    if not u < alive or horizon <= 0.0 or rate_shape <= 0.0:
        return 0, 0.0, values
    mapped = clock_op.shape[0] > 1
    window = _interp(horizon, clock_cal, clock_op) if mapped else horizon
    if life_shape > 0.0:
        e, state = _uniform(state)
        window = min(window, life_rate * math.expm1(-math.log(e) / life_shape))
    count = 0
    total = 0.0
    exposure = rate_rate  # rate + time elapsed
    while True:
        e, state = _uniform(state)
        exposure = exposure * math.exp(-math.log(e) / (rate_shape + count))
        if not exposure - rate_rate <= window:
            break
        count += 1
        if count >= _MAX_COUNT:  # only from a far tail: simulate_alive_future raises
            break
        weight = 1.0
        when = exposure - rate_rate
        if mapped and (delta > 0.0 or win_lo is not None):  # the purchase's calendar time
            when = _interp(when, clock_op, clock_cal)
        if delta > 0.0:
            weight = math.exp(-delta * when)
        if value_shape > 0.0:
            g, values = _gamma(value_shape, values)
            weight = weight * g
        total += weight
        if win_lo is not None:  # (compiled out without windows: see _simulate)
            for w in range(win_lo.shape[0]):
                if win_lo[w] < when <= win_hi[w]:
                    win_count[w] += 1
                    win_value[w] += weight
        if drop_a > 0.0:
            u, state = _uniform(state)
            if u * (drop_a + drop_b + count - 1.0) < drop_a:
                break
    return count, total, values


@numba.njit(**_JIT)
def _simulate(
    seed: Any,
    draws: Any,
    customers: Any,
    rows: Any,
    horizon: Any,
    alive: Any,
    rate_shape: Any,
    rate_rate: Any,
    drop_a: Any,
    drop_b: Any,
    life_shape: Any,
    life_rate: Any,
    delta: float,
    with_spend: bool,
    spend_p: Any,
    spend_q: Any,
    spend_v: Any,
    spend_x: Any,
    spend_z: Any,
    margin: float,
    clock_op: Any,
    clock_cal: Any,
    discounted: Any,
    count: Any,
    clv: Any,
    conditional: Any,
    win_lo: Any,
    win_hi: Any,
    win_count: Any,
    win_clv: Any,
) -> None:
    with_conditional = discounted.shape[0] > 0
    n_windows = 0 if win_lo is None else win_lo.shape[0]
    raw = np.zeros(n_windows)  # an element's Σ w_j V_j per window, before its spend scale
    counted = np.zeros(n_windows, dtype=np.int32)
    for i in range(draws.shape[0]):
        if clock_op.shape[0] > 1:
            cop, ccal = clock_op[i], clock_cal[i]
        else:
            cop, ccal = clock_op[0], clock_cal[0]
        for j in range(customers.shape[0]):
            row = rows[j]
            key = _key(seed, draws[i], customers[j])
            n, total, state = _element(
                key,
                alive[i, row],
                rate_shape[i, row],
                rate_rate[i, row],
                drop_a[i, row],
                drop_b[i, row],
                life_shape[i, row],
                life_rate[i, row],
                horizon[j],
                delta,
                spend_p[i, j] if with_spend else 0.0,
                cop,
                ccal,
                win_lo,
                win_hi,
                counted,
                raw,
            )
            count[i, j] = n
            if win_lo is not None:
                for w in range(n_windows):
                    win_count[i, j, w] = counted[w]
                    counted[w] = 0
                    if not with_spend:
                        raw[w] = 0.0
            if not with_spend:
                continue
            # the customer's spend scale ν ~ Gamma(p x + q, rate v + x z) (Gamma-Gamma,
            # clvbayes.math.gamma_gamma.spend_scale_posterior): each value is Gamma(p) / ν
            nu_shape = spend_p[i, j] * spend_x[j] + spend_q[i, j]
            nu_rate = spend_v[i, j] + spend_x[j] * spend_z[j]
            if n > 0:
                nu, state = _gamma(nu_shape, state)
                scale = margin * nu_rate / nu
                clv[i, j] = total * scale
                if win_lo is not None:
                    for w in range(n_windows):
                        win_clv[i, j, w] = raw[w] * scale
                        raw[w] = 0.0
            else:
                clv[i, j] = 0.0
            if with_conditional:  # E[spend] = E[p / ν] = p rate / (shape - 1), if finite
                mean_spend = (
                    spend_p[i, j] * nu_rate / (nu_shape - 1.0) if nu_shape > 1.0 else np.nan
                )
                conditional[j] += margin * discounted[i, row] * mean_spend


def stream_key(seed: Any) -> int:
    """A 64-bit stream seed from an int, a ``numpy.random.SeedSequence`` or None
    (fresh entropy)."""
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return int(sequence.generate_state(1, dtype=np.uint64)[0])


def simulate_alive_future(
    process: AliveProcess,
    rows: np.ndarray,
    customers: np.ndarray,
    draws: np.ndarray,
    horizon: np.ndarray,
    *,
    seed: int,
    discount_rate: float = 0.0,
    spend: tuple[Any, Any, Any] | None = None,
    spend_x: Any = None,
    spend_z: Any = None,
    margin: float = 1.0,
    clock: tuple[np.ndarray, np.ndarray] | None = None,
    discounted: np.ndarray | None = None,
    conditional: np.ndarray | None = None,
    windows: tuple[np.ndarray, np.ndarray] | None = None,
    window_count: np.ndarray | None = None,
    window_clv: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Simulated purchases (and CLV) of every ``(draw, customer)`` element.

    Parameters
    ----------
    process : AliveProcess
        The latent state's alive branch per draw (rows) and unique data row (columns),
        each field broadcastable to ``(n_draws, n_rows)``.
    rows : ndarray of int
        Each customer's unique data row (a column of ``process``).
    customers : ndarray of int
        Each customer's stream key (its position in a fixed order).
    draws : ndarray of int
        Each draw's stream index (its position among all posterior draws used).
    horizon : ndarray
        Each customer's window length (calendar time).
    seed : int
        From :func:`stream_key`.
    discount_rate : float
        Continuous discount rate ``δ`` per time unit.
    spend : (p, q, v), optional
        Gamma-Gamma parameters, broadcastable to ``(n_draws, n_customers)`` (segments may
        differ): each purchase is worth ``Gamma(p, rate ν)`` with
        the customer's ``ν ~ Gamma(p x + q, rate v + x z)`` (``spend_x``, ``spend_z``: the
        customer's repeat purchases and mean spend, 0 for the prior).
    margin : float
        Multiplies the value.
    clock : (operational knots, calendar knots), optional
        Per-draw increasing piecewise-linear map from operational to calendar time
        (arrays ``(n_draws, K)`` or ``(1, K)``, first knot 0); see the module docstring.
    discounted, conditional : ndarray, optional
        With ``spend``: the expected discounted purchases per draw and unique row
        (``(n_draws, n_rows)``), and an array ``(n_customers,)`` to which each draw's
        conditional-mean CLV ``margin x discounted x E[spend]`` is added, draw after draw
        (so the sum does not depend on how the draws are split into calls; NaN where
        ``p x + q <= 1``, the expected spend being infinite).
    windows : (starts, ends), optional
        ``W`` windows ``(start, end]`` in calendar time after the window's start (e.g.
        year 1 and years 2-3): each element's purchases in each are written to
        ``window_count`` (int32, ``(n_draws, n_customers, W)``) and, with ``spend``, its
        CLV from them to ``window_clv`` (float32, same shape); both arrays are given by
        the caller. The same simulated purchases as ``count`` and ``clv``.

    Returns
    -------
    count : ndarray of int32, shape (n_draws, n_customers)
    clv : ndarray of float32 or None
        ``margin x Σ_j exp(-δ c_j) V_j`` (with ``spend``).
    """
    n_draws = len(draws)
    fields = [np.atleast_2d(np.asarray(f, dtype=float)) for f in process]
    shape = (n_draws, np.broadcast_shapes(*(f.shape for f in fields))[1])
    fields = [np.broadcast_to(f, shape) for f in fields]
    elements = (n_draws, len(customers))
    count = np.zeros(elements, dtype=np.int32)
    clv = np.zeros(elements, dtype=np.float32) if spend is not None else None
    if spend is None:
        spend = (0.0, 0.0, 0.0)
        spend_x = spend_z = np.zeros(len(customers))
    params = [np.broadcast_to(np.asarray(s, dtype=float), elements) for s in spend]
    if clock is None:
        clock = (np.zeros((1, 1)), np.zeros((1, 1)))
    clock_op, clock_cal = (np.atleast_2d(np.asarray(c, dtype=float)) for c in clock)
    if discounted is None or conditional is None or clv is None:
        discounted, conditional = np.zeros((0, 0)), np.zeros(0)
    if windows is None:
        windows = (np.zeros(0), np.zeros(0))
    win_lo, win_hi = (np.asarray(w, dtype=float).reshape(-1) for w in windows)
    n_windows = win_lo.size
    if window_count is None:
        window_count = np.zeros((*elements, n_windows), dtype=np.int32)
    if clv is None:
        window_clv = np.zeros((0, 0, n_windows), dtype=np.float32)
    elif window_clv is None:
        window_clv = np.zeros((*elements, n_windows), dtype=np.float32)
    if window_count.shape != (*elements, n_windows) or (
        clv is not None and window_clv.shape != (*elements, n_windows)
    ):
        raise ValueError(f"window outputs must be shaped {(*elements, n_windows)}")
    horizon, rows = np.asarray(horizon, dtype=float), np.asarray(rows, dtype=np.int64)
    check_expected_purchases(AliveProcess(*fields), rows, horizon, (clock_op, clock_cal))
    _simulate(
        np.uint64(seed),
        np.asarray(draws, dtype=np.int64),
        np.asarray(customers, dtype=np.int64),
        rows,
        horizon,
        *fields,
        float(discount_rate),
        clv is not None,
        *params,
        np.asarray(spend_x, dtype=float),
        np.asarray(spend_z, dtype=float),
        float(margin),
        clock_op,
        clock_cal,
        np.broadcast_to(np.asarray(discounted, dtype=float), (n_draws, shape[1]))
        if discounted.size
        else discounted,
        count,
        clv if clv is not None else np.zeros((0, 0), dtype=np.float32),
        conditional,
        win_lo if n_windows else None,  # None: the window code is compiled out
        win_hi if n_windows else None,
        window_count,
        window_clv,
    )
    if count.size and count.max() >= _MAX_COUNT:
        i, j = np.unravel_index(int(np.argmax(count)), count.shape)
        raise TooManyPurchasesError(
            f"draw {i}, customer {j} of this call: the simulation reached {_MAX_COUNT:,} "
            "purchases in the window (the most a count can hold); its purchase rate "
            f"Gamma(shape {fields[1][i, rows[j]]:.4g}, rate {fields[2][i, rows[j]]:.4g}) is "
            "not plausible for customer data.",
            draw=int(i),
            customer=int(j),
            expected=float("nan"),
            window=float(horizon[j]),
        )
    return count, clv


def check_expected_purchases(
    process: AliveProcess,
    rows: np.ndarray,
    horizon: np.ndarray,
    clock: tuple[np.ndarray, np.ndarray],
    cap: float = MAX_EXPECTED_PURCHASES,
) -> None:
    """Raise :class:`~clvbayes.math.processes.TooManyPurchasesError` if a customer alive at
    its window's start is expected to buy more than ``cap`` times in the window under a
    draw (:func:`~clvbayes.math.processes.expected_alive_purchases`).

    First a bound of every ``(draw, row)``, ``E[λ]`` times the longest window, which is
    all that normal inputs cost (two array operations per draw and row); only the pairs
    above ``cap`` get the exact windows of their row's customers and the dropout coin's
    and lifetime's reductions. Elements that cannot be alive (``P(alive) = 0``) pass.

    Parameters
    ----------
    process : AliveProcess
        Fields shaped ``(n_draws, n_rows)``.
    rows, horizon : ndarray
        Each customer's unique row and calendar window.
    clock : (operational knots, calendar knots)
        ``(n_draws or 1, K)``, as :func:`simulate_alive_future` passes them to the loop.
    cap : float
        The most expected purchases allowed.
    """
    if not horizon.size:
        return
    rows = np.asarray(rows, dtype=np.int64)
    fields = [np.atleast_2d(np.asarray(f, dtype=float)) for f in process]
    process = AliveProcess(*np.broadcast_arrays(*fields))
    op, cal = clock
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_mean = process.rate_shape / process.rate_rate
    longest = _operational(np.full((op.shape[0], 1), horizon.max()), op, cal)
    with np.errstate(divide="ignore"):
        above = rate_mean > cap / longest  # NaN compares False
    if not above.any():  # (normal inputs: a division and a comparison per draw and row)
        return
    suspect = np.argwhere(above)
    longest_row = np.full(rate_mean.shape[1], -np.inf)
    np.maximum.at(longest_row, rows, horizon)
    d, r = suspect[:, 0], suspect[:, 1]
    knots = np.minimum(d, op.shape[0] - 1)
    window = _operational(longest_row[r][:, None], op[knots], cal[knots])[:, 0]
    fields = AliveProcess(*(f[d, r] for f in process))
    worst, expected = most_expected_purchases(fields, window)
    if not expected > cap:
        return
    i, row = int(d[worst]), int(r[worst])
    mine = np.flatnonzero(rows == row)
    j = int(mine[np.argmax(horizon[mine])])
    raise TooManyPurchasesError(
        _too_many_message(fields, worst, i, j, expected, horizon[j], cap),
        draw=i,
        customer=j,
        expected=expected,
        window=float(window[worst]),
    )


def _too_many_message(
    fields: AliveProcess, k: int, i: int, j: int, expected: float, horizon: float, cap: float
) -> str:
    """The message of :func:`check_expected_purchases` for entry ``k`` of ``fields``."""
    shape, rate = fields.rate_shape[k], fields.rate_rate[k]
    details = [f"purchase rate Gamma(shape {shape:.4g}, rate {rate:.4g}), mean {shape / rate:.4g}"]
    if fields.dropout_a[k] > 0.0:
        details.append(f"dropout Beta({fields.dropout_a[k]:.4g}, {fields.dropout_b[k]:.4g})")
    if fields.life_shape[k] > 0.0:
        details.append(
            f"lifetime Lomax(shape {fields.life_shape[k]:.4g}, scale {fields.life_rate[k]:.4g})"
        )
    return (
        f"draw {i}, customer {j} of this call: if alive, the customer is expected to make "
        f"{expected:.4g} purchases in its window of {horizon:g} time units ("
        + "; ".join(details)
        + f"); forecasts simulate each purchase and refuse more than {cap:,.0f} expected "
        "purchases per customer and draw (clvbayes.math.processes.MAX_EXPECTED_PURCHASES), "
        "which no customer data comes near."
    )


def _operational(h: np.ndarray, op: np.ndarray, cal: np.ndarray) -> np.ndarray:
    """Operational times of calendar times ``h`` ``(n, m)`` under clocks ``(n or 1, K)``
    (knots as in the loop's ``_interp``: linear beyond the last knot; one knot: the
    identity)."""
    if op.shape[1] < 2:
        return h
    j = 1 + np.sum(cal[:, None, 1:-1] < h[..., None], axis=-1)
    x0, x1 = np.take_along_axis(cal, j - 1, 1), np.take_along_axis(cal, j, 1)
    y0, y1 = np.take_along_axis(op, j - 1, 1), np.take_along_axis(op, j, 1)
    return y0 + (y1 - y0) * (h - x0) / (x1 - x0)


def element_uniforms(seed: int, draw: int, customer: int, n: int) -> np.ndarray:
    """The first ``n`` uniforms of element ``(draw, customer)``'s stream (for tests)."""
    return _uniforms(np.uint64(seed), draw, customer, n)


@numba.njit(**_JIT)
def _uniforms(seed: Any, draw: int, customer: int, n: int) -> Any:
    out = np.empty(n)
    state = _key(seed, draw, customer)
    for k in range(n):
        out[k], state = _uniform(state)
    return out
