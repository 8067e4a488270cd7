"""Stochastic processes shared by the families' simulators (numpy only, seeded explicitly).

:func:`simulate_future_purchases` simulates the purchases of customers whose latent state
is known -- a Poisson process of rate ``lam`` with dropout after each purchase with
probability ``p_drop`` -- over a window, with exact purchase times for discounting and
optional Gamma transaction values. The BG/NBD and MBG/NBD use it as it is; the
Pareto/NBD runs it over the customer's remaining lifetime. Loops run over purchases,
never over customers.

Simulating one purchase at a time takes as long as there are purchases, so a forecast
refuses parameters under which a customer alive at the window's start is expected to buy
more than :data:`MAX_EXPECTED_PURCHASES` times in the window
(:func:`expected_alive_purchases`, :class:`TooManyPurchasesError`), instead of running
for hours or for ever; the numpy simulators refuse the same way before simulating
(:func:`check_simulated_purchases`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from clvbayes.math.clv import discount_factor
from clvbayes.math.ops import log_rising_factorial

__all__ = [
    "MAX_EXPECTED_PURCHASES",
    "AliveProcess",
    "BetaDropout",
    "FuturePurchases",
    "TooManyPurchasesError",
    "check_simulated_purchases",
    "expected_alive_purchases",
    "generator",
    "most_expected_purchases",
    "simulate_future_purchases",
]

MAX_EXPECTED_PURCHASES = 1_000_000
"""The most purchases a customer alive at the window's start may be expected to make in
the window for a forecast to simulate it (one purchase at a time, about 10 ns each: a
customer at the cap takes about 10 ms per posterior draw). Real customers are orders of
magnitude below it; above it are parameters that are absurd for the data (a posterior
draw of a fit that did not converge, parameters given by hand, a horizon or time unit
that does not match the data) rather than a forecast worth hours of simulation."""


def generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """``rng`` as a numpy Generator (a seed or None makes a new one)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


class AliveProcess(NamedTuple):
    """A customer's latent state as the future-purchase process needs it: the weight of
    the alive branch and the distributions of that branch's rates, as data.

    A customer alive at the window's start buys as a Poisson process of rate ``λ ~
    Gamma(rate_shape, rate rate_rate)`` until the window ends, until its remaining
    lifetime ``τ ~ Exponential(μ)``, ``μ ~ Gamma(life_shape, rate life_rate)`` ends
    (``life_shape = 0``: no lifetime), or until the coin it flips after each purchase
    comes up with probability ``p ~ Beta(dropout_a, dropout_b)`` (``dropout_a = 0``: no
    coin). Each family's ``alive_process`` maps its customer posterior to this form
    (BG/NBD and MBG/NBD: Gamma rate and Beta coin; Pareto/NBD: Gamma rate and
    exponential lifetime), which is all :mod:`clvbayes.math.kernels` simulates.
    Fields broadcast against each other (e.g. ``(draws, rows)``).
    """

    p_alive: Any
    rate_shape: Any
    rate_rate: Any
    dropout_a: Any = 0.0
    dropout_b: Any = 0.0
    life_shape: Any = 0.0
    life_rate: Any = 0.0


class TooManyPurchasesError(ValueError):
    """A customer alive at the window's start would be expected to make more purchases in
    the window than :data:`MAX_EXPECTED_PURCHASES` under some posterior draw, so the
    forecast is refused before any simulation.

    Attributes
    ----------
    draw : int
        The draw's position in the arrays of the call that refused it.
    customer : int
        The customer's position in the arrays of the call that refused it.
    expected : float
        The (upper bound of the) expected purchases of that customer, if alive.
    window : float
        The customer's window, in operational time (calendar time without time effects).
    """

    def __init__(
        self, message: str, *, draw: int, customer: int, expected: float, window: float
    ) -> None:
        super().__init__(message)
        self.draw, self.customer, self.expected, self.window = draw, customer, expected, window


def expected_alive_purchases(process: AliveProcess, window: Any) -> np.ndarray:
    """Expected purchases in ``(0, window]`` of a customer alive at 0 (an upper bound with a
    dropout coin): how many purchases simulating the window one at a time takes.

    ``E[λ] = rate_shape / rate_rate``, and ``λ`` is independent of the lifetime and of the
    coin. Without a coin the expectation is exact: ``E[λ] W`` without a lifetime, ``E[λ]
    E[min(τ, W)]`` with one (``τ`` Lomax, ``E[min(τ, W)] = c ((1 + W/c)^(1-s) - 1) / (1 -
    s)`` with shape ``s`` and scale ``c``, ``c log(1 + W/c)`` at ``s = 1``). With a coin
    (``p ~ Beta(a, b)``) the count is ``min(N, K)``: ``N`` the purchases without the coin,
    ``K`` the purchase after which the coin comes up, ``P(K >= k) = B(a, b+k-1) / B(a,
    b)``. ``g(n) = E[min(n, K)] = Σ_{k<=n} P(K >= k) = ((a+b-1) - Γ(a+b) Γ(b+n) / (Γ(b)
    Γ(a+b+n-1))) / (a - 1)`` (a telescoping sum) is increasing and concave in ``n``, so
    ``E[min(N, K)] <= g(ceil(E[N]))`` (Jensen); ``g(∞) = (a+b-1) / (a-1)`` for ``a > 1``,
    infinite otherwise (used above ``E[N] = 1e15``).

    Parameters
    ----------
    process : AliveProcess
        The alive branch (its ``p_alive`` is ignored: the expectation is given alive).
    window : array_like
        The window in operational time, broadcast against the fields.

    Returns
    -------
    ndarray
        Of the broadcast shape; 0 where the customer cannot buy, NaN where a field is NaN.
    """
    shape, rate, a, b, life_shape, life_rate = (np.asarray(f, dtype=float) for f in process[1:])
    window = np.asarray(window, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rate_mean = np.where(shape > 0.0, shape / rate, 0.0)
        span = np.where(window > 0.0, window, 0.0)
        s, c = life_shape, np.where(life_rate > 0.0, life_rate, 0.0)
        log_growth = np.log1p(span / c)
        near_one = np.abs(1.0 - s) < 1e-9
        one_minus = np.where(near_one, 1.0, 1.0 - s)
        lived = c * np.where(near_one, log_growth, np.expm1(one_minus * log_growth) / one_minus)
        lived = np.where(s > 0.0, np.where(c > 0.0, np.minimum(lived, span), 0.0), span)
        n = np.where(rate_mean > 0.0, rate_mean * lived, 0.0)
    return np.where(a > 0.0, _coin_bound(n, a, b), n)


def most_expected_purchases(process: AliveProcess, window: Any) -> tuple[int, float]:
    """The element with the most :func:`expected_alive_purchases` and that number, among
    elements that may be alive (``p_alive > 0``; the others and NaN count as -inf).

    The second step of both refusals of absurd rates (the compiled forecast's
    :func:`clvbayes.math.kernels.check_expected_purchases` and
    :func:`check_simulated_purchases`), on the few elements a cheap bound flagged.

    Parameters
    ----------
    process : AliveProcess
        Fields of one dimension (the flagged elements).
    window : array_like
        Their windows in operational time.

    Returns
    -------
    position, expected : int, float
    """
    expected = np.where(
        np.asarray(process.p_alive) > 0.0, expected_alive_purchases(process, window), -np.inf
    )
    expected = np.where(np.isnan(expected), -np.inf, expected)
    worst = int(np.argmax(expected))
    return worst, float(expected[worst])


def check_simulated_purchases(
    function: str,
    process: AliveProcess,
    window: Any,
    params: Mapping[str, Any],
    *,
    cap: float = MAX_EXPECTED_PURCHASES,
) -> None:
    """Refuse, before simulating, a simulation in which a customer alive at its window's
    start is expected to make more than ``cap`` purchases in the window.

    The numpy simulators draw purchases one after another (or the purchase times of all
    of them), so their work grows with the busiest customer's purchases; this is the rule
    of the compiled forecast (:func:`expected_alive_purchases` against
    :data:`MAX_EXPECTED_PURCHASES`) applied to their inputs. It consumes no random
    numbers. Normal inputs cost a division, a product and two comparisons per element:
    ``E[λ]`` times the window bounds the expectation (a dropout coin and a lifetime only
    lower it), and only elements above ``cap`` get the exact expectation.

    Parameters
    ----------
    function : str
        The public name of the simulator, for the message (e.g. ``"simulate_bgnbd"``).
    process : AliveProcess
        The process each element simulates (its ``p_alive`` > 0: the element may buy).
    window : array_like
        Each element's window, broadcast against the fields.
    params : mapping of str to array_like
        The caller's inputs by name, broadcast like the fields, quoted in the message at
        the refused element.
    cap : float
        The most expected purchases allowed.

    Raises
    ------
    TooManyPurchasesError
        Naming ``function``, the element's position (``customer``, the flat position in
        the broadcast shape), its inputs, its expected purchases and ``cap``.
    """
    arrays = np.broadcast_arrays(*(np.asarray(f, dtype=float) for f in (*process, window)))
    fields, span = AliveProcess(*arrays[:-1]), arrays[-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        above = (fields.p_alive > 0.0) & (fields.rate_shape / fields.rate_rate * span > cap)
    if not above.any():  # normal inputs (NaN compares False)
        return
    suspect = np.flatnonzero(above)
    flat = AliveProcess(*(f.reshape(-1)[suspect] for f in fields))
    worst, expected = most_expected_purchases(flat, span.reshape(-1)[suspect])
    if not expected > cap:
        return
    k = int(suspect[worst])
    where = np.unravel_index(k, span.shape)
    values = ", ".join(
        f"{name}={np.broadcast_to(np.asarray(v, dtype=float), span.shape)[where]:.4g}"
        for name, v in params.items()
    )
    position = f"customer {k} of {span.size}" if span.ndim else "every customer"
    if span.ndim > 1:
        position += f" (index {tuple(int(i) for i in where)})"
    raise TooManyPurchasesError(
        f"{function}: {position} ({values}) would be expected to make "
        f"{expected:.4g} purchases in its window of {span.reshape(-1)[k]:g} time "
        f"units if alive (purchase rate mean {flat.rate_shape[worst] / flat.rate_rate[worst]:.4g}"
        " per time unit). The simulation draws each purchase and refuses more than "
        f"{cap:,.0f} expected purchases per customer "
        "(clvbayes.math.processes.MAX_EXPECTED_PURCHASES): such a rate is not plausible "
        "for customer data. Check that the parameters are in the time unit of the ages and "
        "windows (e.g. not a rate per day against weeks), that parameter draws come from a "
        "converged fit (summary(), diagnostics()) and that the windows are right.",
        draw=0,
        customer=k,
        expected=expected,
        window=float(span.reshape(-1)[k]),
    )


def _coin_bound(n: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``g(ceil(n))`` of :func:`expected_alive_purchases`, ``E[min(n, K)]`` for ``K`` the
    Beta-geometric purchase the coin comes up after, ``n`` purchases without it."""
    n, a, b = np.broadcast_arrays(n, a, b)
    a_bound = np.where(np.abs(a - 1.0) < 1e-6, np.minimum(a, 1.0 - 1e-6), a)  # P(K>=k) falls in a
    a_pos = np.where(a_bound > 0.0, a_bound, 1.0)
    b_pos = np.where(b > 0.0, b, 1.0)
    whole = np.ceil(np.where((n >= 1.0) & (n <= 1e15), n, 1.0))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ratio = np.exp(
            log_rising_factorial(b_pos, whole) - log_rising_factorial(a_pos + b_pos, whole - 1.0)
        )
        sums = ((a_pos + b_pos - 1.0) - ratio) / (a_pos - 1.0)
        limit = np.where(a_pos > 1.0, (a_pos + b_pos - 1.0) / (a_pos - 1.0), np.inf)
    out = np.where(n > 1e15, limit, np.where(n >= 1.0, sums, n))  # g(n) = n for n <= 1
    return np.where(b > 0.0, out, np.minimum(n, 1.0))  # b = 0: the first coin comes up


class FuturePurchases(NamedTuple):
    """Simulated future purchases per (draw x customer) element.

    Attributes
    ----------
    count : ndarray of int64
        Number of purchases in ``(0, horizon]``.
    discounted : ndarray of float or None
        ``Σ_j exp(-δ t_j)`` over those purchases (equal to ``count`` when ``δ = 0``); None
        where a caller that only needs ``value`` skipped it.
    value : ndarray of float or None
        ``Σ_j V_j exp(-δ t_j)`` with ``V_j ~ Gamma(value_shape, rate value_rate)``, when
        transaction values were asked for; else None.
    binned_count, binned_value : ndarray or None
        With ``breaks`` ``e_0 < e_1 < ... < e_B``: the purchases (and their discounted
        values, with transaction values) in each ``(e_{i-1}, e_i]``, on a new last axis of
        length ``B``, from the same simulated purchases as ``count`` and ``value``; else
        None.
    """

    count: np.ndarray
    discounted: np.ndarray | None
    value: np.ndarray | None = None
    binned_count: np.ndarray | None = None
    binned_value: np.ndarray | None = None


def simulate_future_purchases(
    lam: Any,
    p_drop: Any,
    alive: Any,
    horizon: Any,
    *,
    rng: np.random.Generator | int,
    discount_rate: Any = 0.0,
    value_shape: Any = None,
    value_rate: Any = None,
    max_block_elements: int = 2**22,
    breaks: Any = None,
) -> FuturePurchases:
    """Simulate purchases in ``(0, horizon]`` for customers with known latent state.

    A customer alive at time 0 buys as a Poisson process of rate ``lam`` and drops out
    right after each purchase with probability ``p_drop``; a dead one never buys. The
    purchase after which a customer drops is ``K ~ Geometric(p_drop)``. With
    ``value_shape`` and ``value_rate`` each purchase is also worth ``V_j ~
    Gamma(value_shape, rate value_rate)``, independent of its timing (Gamma-Gamma).

    The count is exactly ``min(K, N)`` with ``N ~ Poisson(lam horizon)`` (the purchases
    the customer would make without dropping out). Without discounting the total value is
    one ``Gamma(count x shape, rate)`` draw (a sum of iid Gammas of equal rate). With
    discounting the purchase times are drawn too, so ``Σ exp(-δ t_j)`` and ``Σ V_j
    exp(-δ t_j)`` are exact: given ``N``, the ``N`` purchase times are iid uniform on the
    window, so when ``K >= N`` (alive to the end) they are drawn as such; when ``K < N``
    the customer stops at the ``K``-th of them, whose time is ``h W`` with ``W ~ Beta(K,
    N - K + 1)`` (the ``K``-th order statistic of ``N`` uniforms), and the ``K - 1``
    earlier ones are iid uniform on ``(0, h W)``. Every purchase is an independent point,
    so they are drawn in flat passes of at most ``max_block_elements`` (memory is bounded
    whatever the number of purchases) and summed per element; the work is proportional to
    the number of purchases simulated.

    Parameters
    ----------
    lam, p_drop : array_like
        Purchase rate and dropout probability of each element (e.g. flat ``draw x
        customer`` arrays of posterior draws of the latent state). ``p_drop`` may also be
        a :class:`BetaDropout` ``(a, b)``: each element's ``p ~ Beta(a, b)``, drawn only
        for the elements that would buy at all (``N >= 1``), since ``p`` cannot matter
        for the others (same distribution, fewer draws).
    alive : array_like of bool
        Whether each element is alive at time 0 (the end of the observation period).
    horizon : array_like
        Length of the prediction window, in the rate's time unit.
    rng : numpy.random.Generator or int
        Random generator or seed.
    discount_rate : float or array_like
        Continuous discount rate ``δ`` per time unit (see
        :func:`clvbayes.math.clv.continuous_rate`); 0 for no discounting.
    value_shape, value_rate : array_like, optional
        Gamma shape and rate of each transaction's value (Gamma-Gamma ``p`` and the
        customer's ``ν``); both or neither.
    max_block_elements : int
        Upper bound on the size of the temporary ``(elements x purchases)`` block.
    breaks : sequence of float, optional
        Increasing times ``e_0 < ... < e_B`` within the window: also return the
        purchases (and values) of each ``(e_{i-1}, e_i]`` (``binned_count``,
        ``binned_value``), e.g. year 1 and years 2-3 of one simulated future. The purchase
        times are then drawn also without discounting.
    Returns
    -------
    FuturePurchases
        Arrays of the broadcast shape of the inputs.

    Raises
    ------
    TooManyPurchasesError
        Before simulating, when purchase times are drawn (discounting or ``breaks``) and
        an alive element would be expected to buy more than
        :data:`MAX_EXPECTED_PURCHASES` times (:func:`check_simulated_purchases`; a fixed
        ``p_drop`` is not credited, so the bound is ``lam * horizon``, a
        :class:`BetaDropout`'s is). Counts alone cost the same whatever the rate.
    """
    rng = generator(rng)
    marks = value_shape is not None
    if marks != (value_rate is not None):
        raise ValueError("pass both value_shape and value_rate, or neither")
    lazy = isinstance(p_drop, BetaDropout)
    if breaks is not None or np.any(discount_rate):
        _check_timed("simulate_future_purchases", lam, p_drop, alive, horizon)
    inputs = [lam, alive, horizon, discount_rate, *(p_drop if lazy else (p_drop,))]
    if marks:
        inputs += [value_shape, value_rate]
    shape = np.broadcast_shapes(*(np.shape(w) for w in inputs))
    n = int(np.prod(shape))
    # array inputs flattened to the common shape; scalars stay scalars (no copies)
    lam, alive, horizon, delta = (_flat(w, shape) for w in (lam, alive, horizon, discount_rate))
    bins = None if breaks is None else _Bins(breaks, n)
    if lazy:
        p_drop = BetaDropout(*(_flat(w, shape) for w in p_drop))
    else:
        p_drop = _flat(p_drop, shape)
    v_shape, v_rate = (_flat(value_shape, shape), _flat(value_rate, shape)) if marks else (0, 0)
    count = np.zeros(n, dtype=np.int64)
    discounted = np.zeros(n)
    value = np.zeros(n) if marks else None
    idx = np.flatnonzero(np.broadcast_to((alive != 0) & (lam > 0) & (horizon > 0), (n,)))
    arrivals = rng.poisson(_at(lam, idx) * _at(horizon, idx), size=idx.size)
    buying = np.flatnonzero(arrivals)  # p cannot matter for the others
    idx, arrivals = idx[buying], arrivals[buying]
    if lazy:
        p_idx = rng.beta(_at(p_drop.a, idx), _at(p_drop.b, idx), size=idx.size)
    else:
        p_idx = np.broadcast_to(_at(p_drop, idx), idx.shape)
    churn_after = np.full(idx.size, np.iinfo(np.int64).max)
    drops = np.flatnonzero(p_idx > 0)
    churn_after[drops] = rng.geometric(np.minimum(p_idx[drops], 1.0))
    bought = np.minimum(churn_after, arrivals)
    count[idx] = bought
    if not np.any(_at(delta, idx)) and bins is None:
        if marks:
            value[idx] = rng.gamma(bought * _at(v_shape, idx), 1.0 / _at(v_rate, idx))
            value = value.reshape(shape)
        return FuturePurchases(count.reshape(shape), count.astype(float).reshape(shape), value)
    # Customers who stop inside the window: their last purchase is at h W, W ~ Beta(K,
    # N-K+1); the others' purchases and the stoppers' earlier ones are iid uniform.
    stops = np.flatnonzero(churn_after < arrivals)
    end = np.array(np.broadcast_to(_at(horizon, idx), idx.shape), dtype=float)
    end[stops] *= rng.beta(bought[stops], arrivals[stops] - bought[stops] + 1)
    last = idx[stops]
    weight = discount_factor(end[stops], _at(delta, last))
    discounted[last] = weight
    if marks:
        value[last] = rng.gamma(_at(v_shape, last), 1.0 / _at(v_rate, last), size=last.size)
        value[last] *= weight
    if bins is not None:
        bins.add(last, end[stops], None if value is None else value[last])
    free = bought.copy()
    free[stops] -= 1
    _uniform_purchases(
        idx, free, end, delta, v_shape, v_rate, rng, discounted, value, max_block_elements, bins
    )
    return FuturePurchases(
        count.reshape(shape),
        discounted.reshape(shape),
        None if value is None else value.reshape(shape),
        *(() if bins is None else bins.result(shape, marks)),
    )


def _check_timed(function: str, lam: Any, p_drop: Any, alive: Any, horizon: Any) -> None:
    """:func:`check_simulated_purchases` of :func:`simulate_future_purchases`' inputs."""
    coin = p_drop if isinstance(p_drop, BetaDropout) else (0.0, 0.0)  # a fixed p: no credit
    names = {"lam": lam, "horizon": horizon}
    if isinstance(p_drop, BetaDropout):
        names.update(p_drop_a=p_drop.a, p_drop_b=p_drop.b)
    check_simulated_purchases(
        function, AliveProcess(np.not_equal(alive, 0), lam, 1.0, *coin), horizon, names
    )


class _Bins:
    """Per-element purchase counts and values in the intervals between ``breaks``."""

    def __init__(self, breaks: Any, n: int) -> None:
        edges = np.asarray(breaks, dtype=float)
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
            raise ValueError(f"breaks must be increasing times (at least two), got {breaks!r}.")
        self.edges = edges
        self.count = np.zeros((n, edges.size - 1))
        self.value = np.zeros((n, edges.size - 1))

    def add(self, element: np.ndarray, times: np.ndarray, worth: np.ndarray | None) -> None:
        """Count purchases at ``times`` of ``element`` (with discounted values ``worth``)."""
        which = np.searchsorted(self.edges, times, side="left") - 1  # t in (e_i, e_i+1]
        width = self.count.shape[1]
        inside = (which >= 0) & (which < width)
        flat = element[inside] * width + which[inside]
        if not flat.size:
            return
        low = int(flat.min())
        span = int(flat.max()) - low + 1  # only the elements of this pass
        self.count.reshape(-1)[low : low + span] += np.bincount(flat - low, minlength=span)
        if worth is not None:
            sums = np.bincount(flat - low, weights=worth[inside], minlength=span)
            self.value.reshape(-1)[low : low + span] += sums

    def result(self, shape: tuple[int, ...], marks: bool) -> tuple[np.ndarray, np.ndarray | None]:
        width = self.count.shape[1]
        value = self.value.reshape(*shape, width) if marks else None
        return self.count.astype(np.int64).reshape(*shape, width), value


class BetaDropout(NamedTuple):
    """Dropout probabilities given as ``p ~ Beta(a, b)`` per element (drawn lazily)."""

    a: Any
    b: Any


def _flat(value: Any, shape: tuple[int, ...]) -> Any:
    """A float scalar as is, an array broadcast to ``shape`` and flattened."""
    value = np.asarray(value, dtype=float)
    if value.ndim == 0:
        return float(value)
    return np.broadcast_to(value, shape).ravel()


def _at(value: Any, index: Any) -> Any:
    """``value[index]`` for a flat array; a scalar is the same everywhere."""
    return value if np.ndim(value) == 0 else value[index]


def _uniform_purchases(
    idx: np.ndarray,
    counts: np.ndarray,
    end: np.ndarray,
    delta: Any,
    v_shape: Any,
    v_rate: Any,
    rng: np.random.Generator,
    discounted: np.ndarray,
    value: np.ndarray | None,
    cap: int,
    bins: _Bins | None = None,
) -> None:
    """Add ``counts[i]`` purchases at iid uniform times on ``(0, end[i])`` to element
    ``idx[i]``'s discounted count (and value, and ``bins``), in passes of at most ``cap``
    purchases."""
    keep = counts > 0
    idx, counts, end = idx[keep], counts[keep], end[keep]
    if not idx.size:
        return
    ends = np.cumsum(counts)
    starts = ends - counts
    total, done, cap = int(ends[-1]), 0, max(int(cap), 1)
    while done < total:  # purchases [done, stop) in global order, element by element
        stop = min(done + cap, total)
        i = int(np.searchsorted(ends, done, side="right"))
        j = int(np.searchsorted(ends, stop - 1, side="right")) + 1
        here = np.minimum(ends[i:j], stop) - np.maximum(starts[i:j], done)
        owner = np.repeat(np.arange(j - i), here)
        element = idx[i:j][owner]
        times = rng.random(owner.size) * end[i:j][owner]
        weight = discount_factor(times, _at(delta, element))
        discounted[idx[i:j]] += np.bincount(owner, weights=weight, minlength=j - i)
        worth = None
        if value is not None:
            worth = rng.gamma(_at(v_shape, element), 1.0 / _at(v_rate, element), size=owner.size)
            worth *= weight
            value[idx[i:j]] += np.bincount(owner, weights=worth, minlength=j - i)
        if bins is not None:
            bins.add(element, times, worth)
        done = stop
