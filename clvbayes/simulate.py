"""Generative simulators, one per model, numpy only and seeded explicitly.

Each simulator draws the latent per-customer quantities from the population
distributions and then the observable summary by simulating the process itself (event
by event), so the tests can hold it against the closed-form likelihood of
:mod:`clvbayes.math`. Loops run over the purchase index, never over customers: each pass
handles every customer still "in play" at once, and that set shrinks as they leave.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from clvbayes.math.clv import discount_factor

__all__ = [
    "BetaDropout",
    "FuturePurchases",
    "TransactionValues",
    "simulate_bgnbd",
    "simulate_future_pareto_nbd",
    "simulate_future_purchases",
    "simulate_gamma_gamma",
    "simulate_mbgnbd",
    "simulate_pareto_nbd",
    "simulate_segments",
    "simulate_transaction_model",
    "simulate_transaction_values",
]


def _generator(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def simulate_bgnbd(
    r: Any, alpha: Any, a: Any, b: Any, T: Any, *, rng: np.random.Generator | int
) -> dict[str, np.ndarray]:
    """Simulate ``(x, t_x, T)`` from the BG/NBD process (Fader, Hardie & Lee 2005, sec. 2).

    Each customer draws ``λ ~ Gamma(r, rate α)`` and ``p ~ Beta(a, b)``. Starting from the
    (uncounted) first purchase at time 0, purchases arrive as a Poisson process of rate
    ``λ``; right after each *repeat* purchase the customer drops out with probability
    ``p``. Purchases after ``T`` are not observed.

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters, broadcast against ``T``.
    T : array_like
        Age of each customer (time from the first purchase to the end of observation).
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    dict of str to ndarray
        All of the broadcast shape of the inputs:

        - ``frequency`` (int64): repeat purchases ``x`` in ``(0, T]``;
        - ``recency``: time of the last repeat purchase ``t_x`` (0 when ``x = 0``);
        - ``T``: age of the customer;
        - ``lam``, ``p_drop``: the latent purchase rate and dropout probability;
        - ``alive`` (bool): whether the customer is still alive at ``T``.
    """
    return _simulate_beta_geometric(r, alpha, a, b, T, rng=rng, drop_at_first=False)


def simulate_mbgnbd(
    r: Any, alpha: Any, a: Any, b: Any, T: Any, *, rng: np.random.Generator | int
) -> dict[str, np.ndarray]:
    """Simulate ``(x, t_x, T)`` from the MBG/NBD process (Batislam et al. 2007).

    As :func:`simulate_bgnbd`, except that the customer may also drop out right after
    the (uncounted) first purchase at time 0, with the same probability ``p``: a
    customer with ``x = 0`` may be inactive.

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters, broadcast against ``T``.
    T : array_like
        Age of each customer.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    dict of str to ndarray
        ``frequency, recency, T, lam, p_drop, alive`` as in :func:`simulate_bgnbd`.
    """
    return _simulate_beta_geometric(r, alpha, a, b, T, rng=rng, drop_at_first=True)


def _simulate_beta_geometric(
    r: Any,
    alpha: Any,
    a: Any,
    b: Any,
    T: Any,
    *,
    rng: np.random.Generator | int,
    drop_at_first: bool,
) -> dict[str, np.ndarray]:
    """Poisson purchases with a coin flip for dropout after each (BG/NBD, MBG/NBD)."""
    rng = _generator(rng)
    params = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (r, alpha, a, b, T)))
    shape = params[0].shape
    r, alpha, a, b, T = (v.ravel() for v in params)
    n = r.size
    lam = rng.gamma(r, 1.0 / alpha)
    p = rng.beta(a, b)
    frequency = np.zeros(n, dtype=np.int64)
    recency = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    idx = np.arange(n)
    if drop_at_first:
        alive = rng.random(n) >= p
        idx = idx[alive]
    now = np.zeros(idx.size)
    while idx.size:
        # a rate of 0 (or one so small the gap overflows) means no purchase: arrival = inf
        with np.errstate(divide="ignore", over="ignore"):
            arrival = now + rng.standard_exponential(idx.size) / lam[idx]
        inside = arrival <= T[idx]
        idx, now = idx[inside], arrival[inside]
        frequency[idx] += 1
        recency[idx] = now
        drop = rng.random(idx.size) < p[idx]
        alive[idx[drop]] = False
        idx, now = idx[~drop], now[~drop]
    out = {"frequency": frequency, "recency": recency, "T": T.copy()}
    out.update(lam=lam, p_drop=p, alive=alive)
    return {k: v.reshape(shape) for k, v in out.items()}


def simulate_pareto_nbd(
    r: Any, alpha: Any, s: Any, beta: Any, T: Any, *, rng: np.random.Generator | int
) -> dict[str, np.ndarray]:
    """Simulate ``(x, t_x, T)`` from the Pareto/NBD process (Schmittlein et al. 1987).

    Each customer draws a purchase rate ``λ ~ Gamma(r, rate α)``, a dropout rate
    ``μ ~ Gamma(s, rate β)`` and an unobserved lifetime ``τ ~ Exponential(μ)`` from the
    (uncounted) first purchase at time 0; repeat purchases arrive as a Poisson process
    of rate ``λ`` on ``(0, min(τ, T)]``.

    Parameters
    ----------
    r, alpha, s, beta : array_like
        Population parameters, broadcast against ``T``.
    T : array_like
        Age of each customer.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    dict of str to ndarray
        All of the broadcast shape of the inputs: ``frequency`` (int64), ``recency``,
        ``T``, the latent ``lam``, ``mu`` and ``lifetime`` (``τ``), and ``alive``
        (``τ > T``).
    """
    rng = _generator(rng)
    params = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (r, alpha, s, beta, T)))
    shape = params[0].shape
    r, alpha, s, beta, T = (v.ravel() for v in params)
    n = r.size
    lam = rng.gamma(r, 1.0 / alpha)
    mu = rng.gamma(s, 1.0 / beta)
    with np.errstate(divide="ignore", over="ignore"):
        lifetime = rng.standard_exponential(n) / mu
    end = np.minimum(lifetime, T)
    frequency = np.zeros(n, dtype=np.int64)
    recency = np.zeros(n)
    idx = np.arange(n)
    now = np.zeros(n)
    while idx.size:
        with np.errstate(divide="ignore", over="ignore"):
            arrival = now + rng.standard_exponential(idx.size) / lam[idx]
        inside = arrival <= end[idx]
        idx, now = idx[inside], arrival[inside]
        frequency[idx] += 1
        recency[idx] = now
    out = {"frequency": frequency, "recency": recency, "T": T.copy()}
    out.update(lam=lam, mu=mu, lifetime=lifetime, alive=lifetime > T)
    return {k: v.reshape(shape) for k, v in out.items()}


_TRANSACTION_SIMULATORS = {
    "BGNBD": (simulate_bgnbd, ("r", "alpha", "a", "b")),
    "MBGNBD": (simulate_mbgnbd, ("r", "alpha", "a", "b")),
    "ParetoNBD": (simulate_pareto_nbd, ("r", "alpha", "s", "beta")),
}


def simulate_transaction_model(
    kind: str, params: dict[str, Any], T: Any, *, rng: np.random.Generator | int
) -> dict[str, np.ndarray]:
    """Simulate ``(x, t_x, T)`` from the transaction model named ``kind``.

    Parameters
    ----------
    kind : {"BGNBD", "MBGNBD", "ParetoNBD"}
        Model type (``FittedModel.kind``).
    params : dict
        Population parameters by name (``r, alpha, a, b`` or ``r, alpha, s, beta``).
    T : array_like
        Age of each customer.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    dict of str to ndarray
        The simulator's output (at least ``frequency``, ``recency``, ``T``, ``alive``).
    """
    if kind not in _TRANSACTION_SIMULATORS:
        raise ValueError(
            f"no simulator for model {kind!r}; known: {sorted(_TRANSACTION_SIMULATORS)}."
        )
    simulator, names = _TRANSACTION_SIMULATORS[kind]
    missing = [k for k in names if k not in params]
    if missing:
        raise ValueError(f"{kind} simulation needs parameters {missing}.")
    return simulator(*(params[k] for k in names), T, rng=rng)


class TransactionValues(NamedTuple):
    """Simulated Gamma-Gamma spend with the individual transactions.

    Attributes
    ----------
    monetary_value : ndarray
        Mean value of each customer's ``x`` transactions (0 where ``x = 0``).
    nu : ndarray
        The latent scale (rate) ``ν`` of each customer's transaction values.
    values : ndarray
        Every transaction value, grouped by customer in customer order (flat).
    customer : ndarray of int64
        The flat index of each value's customer.
    """

    monetary_value: np.ndarray
    nu: np.ndarray
    values: np.ndarray
    customer: np.ndarray


def simulate_segments(
    params: Mapping[str, Sequence[float]],
    sizes: Sequence[int],
    T: tuple[float, float],
    *,
    rng: np.random.Generator | int,
    time_step: float | None = None,
) -> dict[str, np.ndarray]:
    """Customers of several segments, each segment with its own population parameters.

    For recovery studies of segmented fits (``BGNBD(segments=...)``) and for planning:
    how many customers a segment needs before its parameters are told apart.

    Parameters
    ----------
    params : mapping of str to sequence of float
        One value per segment for each of ``r, alpha, a, b`` (BG/NBD) and, optionally,
        ``p, q, v`` (Gamma-Gamma): then ``monetary_value`` is simulated too.
    sizes : sequence of int
        Customers per segment.
    T : (float, float)
        Customers' ages are uniform on ``[T[0], T[1])``.
    rng : numpy.random.Generator or int
        Random generator or seed.
    time_step : float, optional
        Round ages and recencies down to multiples of this (``1/7`` for days when the
        unit is weeks), as a transaction log does: customers then share unique rows.

    Returns
    -------
    dict of str to ndarray
        ``segment`` (int64 code, the index into ``sizes``), ``frequency``, ``recency``,
        ``T`` and, with spend parameters, ``monetary_value`` (0 for customers without
        repeat purchases), segment after segment.
    """
    rng = _generator(rng)
    sizes = [int(n) for n in sizes]
    codes = np.repeat(np.arange(len(sizes)), sizes)
    per_customer = {k: np.asarray(v, dtype=float)[codes] for k, v in params.items()}
    age = rng.uniform(T[0], T[1], size=codes.size)
    if time_step is not None:
        age = np.floor(age / time_step) * time_step
    sim = simulate_bgnbd(*(per_customer[k] for k in ("r", "alpha", "a", "b")), age, rng=rng)
    recency = sim["recency"]
    if time_step is not None:
        recency = np.floor(recency / time_step) * time_step
    out = {"segment": codes, "frequency": sim["frequency"], "recency": recency, "T": age}
    if {"p", "q", "v"} <= set(params):
        spend = (per_customer[k] for k in ("p", "q", "v"))
        out["monetary_value"] = simulate_gamma_gamma(*spend, sim["frequency"], rng=rng)
    return out


def _spend_inputs(p: Any, q: Any, v: Any, frequency: Any) -> tuple[tuple[int, ...], list]:
    arrays = np.broadcast_arrays(*(np.asarray(w, dtype=float) for w in (p, q, v, frequency)))
    return arrays[0].shape, [w.ravel() for w in arrays]


def simulate_gamma_gamma(
    p: Any, q: Any, v: Any, frequency: Any, *, rng: np.random.Generator | int
) -> np.ndarray:
    """Simulate mean transaction values from the Gamma-Gamma model (Fader & Hardie 2013).

    ``ν ~ Gamma(q, rate v)`` per customer and each of the ``x`` transaction values is
    ``Gamma(p, rate ν)``; their mean is then ``Gamma(px, rate xν)``, drawn directly
    (:func:`simulate_transaction_values` draws the individual values instead).

    Parameters
    ----------
    p, q, v : array_like
        Population parameters, broadcast against ``frequency``.
    frequency : array_like of int
        Number of transactions ``x`` per customer.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    ndarray
        Mean spend per customer (0 where ``x = 0``), broadcast shape of the inputs.
    """
    rng = _generator(rng)
    shape, (p, q, v, x) = _spend_inputs(p, q, v, frequency)
    counts = x.astype(np.int64)
    nu = rng.gamma(q, 1.0 / v)
    has = counts > 0
    mean = np.zeros(x.size)
    mean[has] = rng.gamma(p[has] * counts[has], 1.0 / (counts[has] * nu[has]))
    return mean.reshape(shape)


def simulate_transaction_values(
    p: Any, q: Any, v: Any, frequency: Any, *, rng: np.random.Generator | int
) -> TransactionValues:
    """Simulate every transaction value of the Gamma-Gamma model and their means.

    Same process as :func:`simulate_gamma_gamma`, but each of the ``x`` values of a
    customer is drawn as ``Gamma(p, rate ν)``; ``monetary_value`` is their mean.
    """
    rng = _generator(rng)
    shape, (p, q, v, x) = _spend_inputs(p, q, v, frequency)
    counts = x.astype(np.int64)
    nu = rng.gamma(q, 1.0 / v)
    customer = np.repeat(np.arange(x.size), counts)
    values = rng.gamma(p[customer], 1.0 / nu[customer])
    sums = np.bincount(customer, weights=values, minlength=x.size)
    mean = np.divide(sums, counts, out=np.zeros(x.size), where=counts > 0)
    return TransactionValues(mean.reshape(shape), nu.reshape(shape), values, customer)


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
    """

    count: np.ndarray
    discounted: np.ndarray | None
    value: np.ndarray | None = None


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

    Returns
    -------
    FuturePurchases
        Arrays of the broadcast shape of the inputs.
    """
    rng = _generator(rng)
    marks = value_shape is not None
    if marks != (value_rate is not None):
        raise ValueError("pass both value_shape and value_rate, or neither")
    lazy = isinstance(p_drop, BetaDropout)
    inputs = [lam, alive, horizon, discount_rate, *(p_drop if lazy else (p_drop,))]
    if marks:
        inputs += [value_shape, value_rate]
    shape = np.broadcast_shapes(*(np.shape(w) for w in inputs))
    n = int(np.prod(shape))
    # array inputs flattened to the common shape; scalars stay scalars (no copies)
    lam, alive, horizon, delta = (_flat(w, shape) for w in (lam, alive, horizon, discount_rate))
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
    if not np.any(_at(delta, idx)):
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
    free = bought.copy()
    free[stops] -= 1
    _uniform_purchases(
        idx, free, end, delta, v_shape, v_rate, rng, discounted, value, max_block_elements
    )
    return FuturePurchases(
        count.reshape(shape),
        discounted.reshape(shape),
        None if value is None else value.reshape(shape),
    )


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
) -> None:
    """Add ``counts[i]`` purchases at iid uniform times on ``(0, end[i])`` to element
    ``idx[i]``'s discounted count (and value), in passes of at most ``cap`` purchases."""
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
        weight = discount_factor(rng.random(owner.size) * end[i:j][owner], _at(delta, element))
        discounted[idx[i:j]] += np.bincount(owner, weights=weight, minlength=j - i)
        if value is not None:
            worth = rng.gamma(_at(v_shape, element), 1.0 / _at(v_rate, element), size=owner.size)
            worth *= weight
            value[idx[i:j]] += np.bincount(owner, weights=worth, minlength=j - i)
        done = stop


def simulate_future_pareto_nbd(
    lam: Any,
    mu: Any,
    alive: Any,
    horizon: Any,
    *,
    rng: np.random.Generator | int,
    discount_rate: Any = 0.0,
    value_shape: Any = None,
    value_rate: Any = None,
    max_block_elements: int = 2**22,
) -> FuturePurchases:
    """Simulate Pareto/NBD purchases in ``(0, horizon]`` for a known latent state.

    A customer alive at time 0 (the end of observation) has a remaining lifetime
    ``τ ~ Exponential(mu)`` (memoryless) and buys as a Poisson process of rate ``lam``
    until ``min(τ, horizon)``; a dead one never buys. That is the process of
    :func:`simulate_future_purchases` without purchase-triggered dropout over the window
    ``min(τ, horizon)``, which is what is run (so discounting and transaction values
    work the same way).

    Parameters
    ----------
    lam, mu : array_like
        Purchase and dropout rates of each element.
    alive : array_like of bool
        Whether each element is alive at time 0.
    horizon : array_like
        Length of the prediction window.
    rng : numpy.random.Generator or int
        Random generator or seed.
    discount_rate, value_shape, value_rate, max_block_elements
        As in :func:`simulate_future_purchases`.

    Returns
    -------
    FuturePurchases
    """
    rng = _generator(rng)
    lam, mu, alive, horizon = np.broadcast_arrays(
        *(np.asarray(w, dtype=float) for w in (lam, mu, alive, horizon))
    )
    with np.errstate(divide="ignore", over="ignore"):
        lifetime = rng.standard_exponential(lam.shape) / mu
    return simulate_future_purchases(
        lam,
        0.0,
        alive,
        np.minimum(lifetime, horizon),
        rng=rng,
        discount_rate=discount_rate,
        value_shape=value_shape,
        value_rate=value_rate,
        max_block_elements=max_block_elements,
    )
