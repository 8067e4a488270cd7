"""BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam et al. 2007) maths.

Notation follows the papers: ``x`` repeat purchases, ``t_x`` time of the last one, ``T``
time since the first purchase, all in the same time unit; population parameters
``r, alpha`` (Gamma purchase rates) and ``a, b`` (Beta dropout probabilities).

The two models are one process with a flag. After each *repeat* purchase a customer
drops out with probability ``p``; the modified BG/NBD (``modified=True``) also flips the
coin right after the (uncounted) first purchase, so a customer with ``x = 0`` may be
inactive. Every formula below differs between them only by that one extra coin flip:
the alive customer's dropout posterior is ``Beta(a, b + x + s)`` with ``s = 1`` for the
MBG/NBD and 0 for the BG/NBD, and the "dropped after the last purchase" branch exists
at ``x = 0`` only for the MBG/NBD. :mod:`clvbayes.math.mbgnbd` gives the same functions
with the flag set (BTYDplus's ``mbgnbd.*`` conventions, Platzer 2016).

Every function accepts numpy arrays or PyTensor variables unless it says "numpy only"
(see :mod:`clvbayes.math.ops`).
"""

from __future__ import annotations

from functools import partial, update_wrapper
from typing import Any, NamedTuple

import numpy as np
from scipy import integrate
from scipy import special as sp

from clvbayes.math.clv import discounted_expectation, discounted_residual
from clvbayes.math.covariates import CovariateEffect
from clvbayes.math.family import Reparametrisation, TransactionFamily, check_counts, register
from clvbayes.math.ops import (
    Factor,
    LogLikTerms,
    at_levels,
    gather,
    is_tensor,
    log_rising_factorial,
    on_levels,
    ops_for,
    per_distinct_row,
    per_level,
    shared_by_customers,
    values_of,
)
from clvbayes.math.processes import (
    AliveProcess,
    BetaDropout,
    check_simulated_purchases,
    generator,
    simulate_future_purchases,
)

__all__ = [
    "COVARIATE_EFFECTS",
    "FAMILY",
    "PARAMS",
    "REPARAMETRISATION",
    "CustomerPosterior",
    "alive_process",
    "conditional_pmf",
    "customer_posterior",
    "dert",
    "expected_discounted_purchases",
    "expected_purchases",
    "expected_purchases_new",
    "frequency_terms",
    "loglik",
    "loglik_terms",
    "p_alive",
    "prob_purchases",
    "sample_alive_state",
    "simulate",
    "survival",
]

PARAMS = ("r", "alpha", "a", "b")
"""Population parameters, in the order the functions take them."""


def frequency_terms(
    r: Any, alpha: Any, a: Any, b: Any, x: Any, *, modified: bool = False
) -> tuple[Any, Any]:
    """Parts of the log-likelihood that depend on the frequency only.

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters (positive; ``alpha`` is not used).
    x : array_like
        Frequencies (repeat purchases), usually the *distinct* frequencies of a data set.
    modified : bool
        MBG/NBD instead of BG/NBD.

    Returns
    -------
    base : array
        ``log Γ(r+x) - log Γ(r) + log B(a, b+x+s) - log B(a, b)`` (``s = 1`` for the
        MBG/NBD): the alive branch's frequency terms, from rising factorials
        (:func:`~clvbayes.math.ops.log_rising_factorial`), accurate also for huge
        ``a, b``.
    log_odds : array
        The log of the "dropped out after the last purchase" branch's weight relative to
        the alive one: ``log(a / (b + x - 1 + s))``. For the BG/NBD it is ``-inf`` where
        ``x == 0`` (that branch does not exist there, so its weight is 0 and the
        likelihood needs no per-row switch); the argument is made safe first, so no NaN
        reaches a gradient.
    """
    ops = ops_for(r, alpha, a, b, x)
    # log B(a, b+n) - log B(a, b) = log[Γ(b+n)/Γ(b)] - log[Γ(a+b+n)/Γ(a+b)], which stays
    # accurate when a, b are huge (a homogeneous dropout rate: a posterior tail)
    n = x + 1 if modified else x
    base = log_rising_factorial(r, x) + log_rising_factorial(b, n) - log_rising_factorial(a + b, n)
    if modified:
        return base, ops.log(a) - ops.log(b + x)
    has_repeat = x > 0
    safe_denominator = ops.where(has_repeat, b + x - 1, 1.0)
    log_odds = ops.where(has_repeat, ops.log(a) - ops.log(safe_denominator), -np.inf)
    return base, log_odds


def loglik(
    r: Any,
    alpha: Any,
    a: Any,
    b: Any,
    x: Any,
    t_x: Any,
    T: Any,
    *,
    x_levels: Any = None,
    x_index: Any = None,
    modified: bool = False,
) -> Any:
    """Log-likelihood of each customer's ``(x, t_x, T)``.

    .. math::

        \\ell = \\log\\frac{\\Gamma(r+x)\\alpha^r}{\\Gamma(r)}
        + \\log\\frac{B(a, b+x+s)}{B(a, b)} - (r+x)\\log(\\alpha+T)
        + \\log\\left[1 + \\delta\\frac{a}{b+x-1+s}
          \\left(\\frac{\\alpha+T}{\\alpha+t_x}\\right)^{r+x}\\right]

    with ``s = 0`` and ``δ = [x > 0]`` for the BG/NBD (FHL 2005, eq. 6) and ``s = 1``,
    ``δ = 1`` for the MBG/NBD (Batislam et al. 2007, eq. 6). The last term is evaluated
    as ``softplus(log_odds + (r+x) log((α+T)/(α+t_x)))`` on the log scale, so no power
    is ever formed: the spreadsheet's ``#NUM!`` overflow (Fader & Hardie, note 027)
    cannot happen, and large ``x`` or ``T`` stay finite.

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters, broadcast against the data.
    x, t_x, T : array_like or Factor
        Frequency, recency and age of each row, in the same time unit. Each may be a
        :class:`~clvbayes.math.ops.Factor` (distinct levels + row index): the terms that
        depend on that column alone (the Γ and B functions for ``x``, the logarithms for
        ``t_x`` and ``T``) are then computed once per level and gathered. This is what
        makes the likelihood cost little more than one ``logaddexp`` per unique row.
    x_levels, x_index : array_like, optional
        Shorthand for ``x=Factor(x_levels, x_index)``.
    modified : bool
        MBG/NBD instead of BG/NBD.

    Returns
    -------
    array
        Log-likelihood of each row (not summed, not weighted).
    """
    if x_levels is not None:
        x = Factor(np.asarray(x_levels), np.asarray(x_index))
    return loglik_terms(r, alpha, a, b, x, t_x, T, modified=modified).per_row()


def loglik_terms(
    r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any, *, modified: bool = False
) -> LogLikTerms:
    """:func:`loglik` as a sum of terms (:class:`~clvbayes.math.ops.LogLikTerms`).

    The frequency terms and ``-(r + x) log(α + T)`` enter additively and are kept per
    level of ``x`` and ``T``; only the dropout bracket needs its inputs on every row.
    ``loglik_terms(...).weighted_sum(counts)`` is the count-weighted total the PyMC model
    uses; ``.per_row()`` is :func:`loglik`. Parameters that covariates scale may come with
    a value per covariate profile (:class:`~clvbayes.math.ops.Factor` s, see
    :func:`~clvbayes.math.ops.at_levels`), the columns then crossed with the profiles:
    the per-level terms are computed once per (profile, value) pair.
    """
    base, log_odds = on_levels(
        lambda lv: frequency_terms(
            *(at_levels(p, x) for p in (r, alpha, a, b)), lv, modified=modified
        ),
        x,
    )
    x_values = values_of(x)
    r_rows, alpha_rows = values_of(r), values_of(alpha)
    ops = ops_for(r_rows, alpha_rows, x_values, values_of(t_x), values_of(T))
    log_alpha_T = on_levels(lambda lv: ops.log(at_levels(alpha, T) + lv), T)
    log_alpha_t = on_levels(lambda lv: ops.log(at_levels(alpha, t_x) + lv), t_x)
    terms = LogLikTerms()
    terms.level(base, x)
    terms.parameters(lambda r_, alpha_: r_ * ops.log(alpha_), r, alpha)
    terms.level(-at_levels(r, T) * log_alpha_T, T)
    terms.level(-log_alpha_T, T, weight=x_values)
    dropout = _log1p_dropout_odds(
        ops, r_rows, x_values, gather(log_odds, x), gather(log_alpha_T, T), gather(log_alpha_t, t_x)
    )
    terms.row(dropout)
    return terms


def _log1p_dropout_odds(
    ops: Any, r: Any, x: Any, log_odds: Any, log_alpha_T: Any, log_alpha_t: Any
) -> Any:
    """``log[1 + e^{log_odds} ((α+T)/(α+t_x))^(r+x)]``, which is ``-log P(alive)``.

    The bracket is the ratio (both likelihood branches)/(alive branch), so the same number
    is the log-likelihood's last term and minus the log posterior weight of "alive"
    (FHL 2008, note 021, eq. 1). Evaluated as ``softplus(log ratio) = log(1 + e^ratio)``
    so no power is formed; for a BG/NBD ``x = 0`` the log odds are ``-inf`` and the term
    is exactly 0 (with zero gradient), so no per-row switch is needed.
    """
    return ops.softplus(log_odds + (r + x) * (log_alpha_T - log_alpha_t))


def _as_arrays(ops: Any, *args: Any) -> tuple[Any, ...]:
    """Plain inputs (lists, scalars) as float arrays (or PyTensor constants)."""
    return tuple(v if is_tensor(v) else ops.asarray(np.asarray(v, dtype=float)) for v in args)


def p_alive(
    r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any, *, modified: bool = False
) -> Any:
    """Probability that a customer with history ``(x, t_x, T)`` is alive at ``T``.

    .. math::

        P(\\text{alive} \\mid x, t_x, T) = \\left[1 + \\delta\\frac{a}{b+x-1+s}
        \\left(\\frac{\\alpha+T}{\\alpha+t_x}\\right)^{r+x}\\right]^{-1}

    (BG/NBD: FHL 2005, eq. 11, note 021, equal to 1 for ``x = 0``: a customer can only
    drop out right after a repeat purchase; MBG/NBD: Batislam et al. 2007, eq. 8, below 1
    also for ``x = 0``). This is the same bracket as the log-likelihood's last term (one
    computation, see :func:`_log1p_dropout_odds`), so it is also the mixture weight of
    the alive branch in :func:`customer_posterior`.

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters, broadcast against the data (e.g. shape ``(chain, draw, 1)``).
    x, t_x, T : array_like
        Frequency, recency and age.
    modified : bool
        MBG/NBD instead of BG/NBD.

    Returns
    -------
    array
        ``P(alive)`` in ``(0, 1]``, broadcast shape of all inputs.
    """
    ops = ops_for(r, alpha, a, b, x, t_x, T)
    r, alpha, a, b, x, t_x, T = _as_arrays(ops, r, alpha, a, b, x, t_x, T)
    # numpy: the frequency terms once per distinct frequency (customers share few of them)
    once = ops.name == "numpy" and np.ndim(x) == 1 and shared_by_customers(r, alpha, a, b)
    levels = Factor.of(x) if once else x
    log_odds = per_level(
        lambda lv: frequency_terms(r, alpha, a, b, lv, modified=modified)[1], levels
    )
    term = _log1p_dropout_odds(ops, r, x, log_odds, ops.log(alpha + T), ops.log(alpha + t_x))
    return ops.exp(-term)


# Below this distance from a = 1 the closed form's 1/(a-1) cancels badly; the expectation
# is smooth in a there, so it is interpolated linearly between a = 1 - h and a = 1 + h
# (interpolation error O(h^2) ~ 1e-10 relative, cancellation error ~ eps/h ~ 1e-11).
_A_NEAR_ONE = 1e-5


def _hyp_product(n: np.ndarray, beta: np.ndarray, a: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``(1-z)^n 2F1(n, β; a+β-1; z)`` with ``z = s/(1+s)``, choosing a convergent form.

    Euler's transformation ``2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)`` turns the
    product into ``(1-z)^(a-1) 2F1(a-1, a+β-1-n; a+β-1; z)``. Of the two equal forms the
    one whose ``C - A - B`` is positive (``a - 1 - n`` resp. ``n - a + 1``) is used, so the
    hypergeometric series converges at ``z = 1`` and stays bounded, instead of diverging
    like ``(1-z)^(a-1-n)`` and being multiplied by an underflowing ``(1-z)^n`` (the 0 * inf
    = NaN of pymc-marketing 1.3 for frequent customers and long horizons).
    """
    c = a + beta - 1.0
    z = s / (1.0 + s)
    log1mz = -np.log1p(s)
    direct = (a - 1.0 - n) >= 0
    first = np.where(direct, n, a - 1.0)
    second = np.where(direct, beta, c - n)
    with np.errstate(all="ignore"):
        return np.exp(first * log1mz) * sp.hyp2f1(first, second, c, z)


def _mean_if_alive_closed(
    n: np.ndarray, beta: np.ndarray, a: np.ndarray, s: np.ndarray
) -> np.ndarray:
    c = a + beta - 1.0
    with np.errstate(all="ignore"):
        return c / (a - 1.0) * (1.0 - _hyp_product(n, beta, a, s))


def _mean_if_alive_quadrature(n: float, beta: float, a: float, s: float) -> float:
    """``E[(1 - (1+ps)^-n)/p]`` for ``p ~ Beta(a, β)`` by adaptive quadrature.

    Fallback for the rare parameter corners where ``scipy.special.hyp2f1`` over- or
    underflows (e.g. ``a`` and ``x`` both in the thousands and ``z`` near 1). Integrates
    over ``u = logit(p)``, where the Beta weight is ``∝ p^a (1-p)^β``, a smooth unimodal
    function peaking at ``u* = log(a/β)``; it is scaled to 1 at the peak, so neither the
    Beta function nor the weights can overflow, and the ratio of two integrals is taken.
    """
    peak = np.log(a) - np.log(beta)

    def log_weight(u: float) -> float:
        return a * (-np.logaddexp(0.0, -u) + np.logaddexp(0.0, -peak)) + beta * (
            -np.logaddexp(0.0, u) + np.logaddexp(0.0, peak)
        )

    def g(u: float) -> float:
        log_p = -np.logaddexp(0.0, -u)
        p = np.exp(log_p)
        if p * s < 1e-300:
            return n * s
        return float(-np.expm1(-n * np.log1p(p * s)) / p)

    def integral(fn: Any) -> float:
        options = {"epsabs": 0.0, "epsrel": 1e-12, "limit": 500}
        left = integrate.quad(fn, -np.inf, peak, **options)[0]
        return left + integrate.quad(fn, peak, np.inf, **options)[0]

    numerator = integral(lambda u: g(u) * np.exp(log_weight(u)))
    return numerator / integral(lambda u: np.exp(log_weight(u)))


def _mean_if_alive(n: Any, beta: Any, a: Any, s: Any) -> np.ndarray:
    """Expected purchases in a window for a customer alive at its start.

    Given alive, ``λ ~ Gamma(n, rate m)`` and ``p ~ Beta(a, β)``; each ``(λ, p)`` gives
    ``(1 - exp(-λ p t))/p`` purchases in ``(0, t]`` (FHL 2005, eq. 7). Integrating over
    ``λ`` gives ``E_p[(1 - (1 + p s)^-n)/p]`` with ``s = t/m``, which equals FHL eq. 9/10's
    ``(a+β-1)/(a-1) [1 - (1-z)^n 2F1(n, β; a+β-1; z)]`` with ``z = t/(m+t)``.
    """
    n, beta, a, s = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (n, beta, a, s)))
    near_one = np.abs(a - 1.0) < _A_NEAR_ONE
    if near_one.any():
        h = _A_NEAR_ONE
        lo = _mean_if_alive_closed(n, beta, np.full_like(a, 1.0 - h), s)
        hi = _mean_if_alive_closed(n, beta, np.full_like(a, 1.0 + h), s)
        w = (a - (1.0 - h)) / (2.0 * h)
        out = np.where(near_one, lo + w * (hi - lo), _mean_if_alive_closed(n, beta, a, s))
    else:
        out = _mean_if_alive_closed(n, beta, a, s)
    out = np.where(s == 0, 0.0, out)
    bad = ~np.isfinite(out)
    if bad.any():
        out = np.array(out, copy=True)
        for i in np.flatnonzero(bad):
            out.flat[i] = _mean_if_alive_quadrature(n.flat[i], beta.flat[i], a.flat[i], s.flat[i])
    return out


def expected_purchases(
    r: Any,
    alpha: Any,
    a: Any,
    b: Any,
    x: Any,
    t_x: Any,
    T: Any,
    t: Any,
    *,
    alive: Any = None,
    modified: bool = False,
) -> np.ndarray:
    """Expected number of purchases in ``(T, T+t]`` given the history ``(x, t_x, T)``.

    FHL 2005, eq. 10 (BG/NBD; Batislam et al. 2007, eq. 11 for the MBG/NBD with
    ``s = 1``):

    .. math::

        E[Y(t) \\mid x, t_x, T] = P(\\text{alive}) \\frac{a+b+x-1+s}{a-1}
        \\left[1 - \\left(\\frac{\\alpha+T}{\\alpha+T+t}\\right)^{r+x}
        {}_2F_1\\left(r+x, b+x+s; a+b+x-1+s; \\tfrac{t}{\\alpha+T+t}\\right)\\right]

    The bracket is ``E[(1 - (1 + p t/(α+T))^-(r+x)) / p]`` with ``p ~ Beta(a, b+x+s)``,
    the alive customer's dropout posterior. It is evaluated through Euler's
    transformation in whichever of its two forms converges at ``z = 1`` (see
    :func:`_hyp_product`), ``a`` within 1e-5 of 1 by interpolation, and any remaining
    non-finite corner by adaptive quadrature of ``E_p[(1 - (1+ps)^-(r+x))/p]``, so the
    result is finite for every valid input. numpy only (uses ``scipy.special.hyp2f1``).
    The bracket depends on ``(x, T, t)`` but not on ``t_x``, so it is evaluated once per
    distinct ``(x, T, t)`` when the parameters are shared by all customers
    (:func:`clvbayes.math.ops.per_distinct_row`).

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters, e.g. posterior draws of shape ``(chain, draw, 1)``.
    x, t_x, T : array_like
        Frequency, recency and age of each customer, shape ``(n,)``.
    t : array_like
        Length of the prediction window, in the same time unit.
    alive : array_like, optional
        :func:`p_alive` at these inputs, if already computed.
    modified : bool
        MBG/NBD instead of BG/NBD.

    Returns
    -------
    ndarray
        Broadcast shape of all inputs, e.g. ``(chain, draw, n)``.
    """
    if alive is None:
        alive = p_alive(r, alpha, a, b, x, t_x, T, modified=modified)
    shift = 1.0 if modified else 0.0
    return alive * _purchases_if_alive(r, alpha, a, b, x, T, t, beta_shift=shift)


def _purchases_if_alive(
    r: Any, alpha: Any, a: Any, b: Any, x: Any, T: Any, t: Any, *, beta_shift: float = 0.0
) -> Any:
    """The bracket of :func:`expected_purchases`, once per distinct ``(x, T, t)``.

    ``E[(1 - (1 + p t/(α+T))^-(r+x)) / p]`` with ``p ~ Beta(a, b + x + beta_shift)``: the
    alive customer's dropout posterior, ``beta_shift = 0`` for the BG/NBD and 1 for the
    MBG/NBD (which can also drop out at the first purchase).
    """

    def fn(x: Any, T: Any, t: Any) -> np.ndarray:
        s = np.asarray(t, dtype=float) / (np.asarray(alpha) + np.asarray(T))
        return _mean_if_alive(np.add(r, x), np.add(b, x) + beta_shift, a, s)

    return per_distinct_row(fn, (x, T, t), (r, alpha, a, b))


def expected_purchases_new(
    r: Any, alpha: Any, a: Any, b: Any, t: Any, *, modified: bool = False
) -> np.ndarray:
    """Expected repeat purchases ``E[X(t)]`` of a new customer in ``(0, t]``.

    BG/NBD: FHL 2005, eq. 9, ``(a+b-1)/(a-1) [1 - (α/(α+t))^r 2F1(r, b; a+b-1;
    t/(α+t))]``: eq. 10 with ``x = t_x = T = 0``. MBG/NBD: Batislam et al. (2007), eq. 9,
    ``b/(a-1) [1 - (α/(α+t))^r 2F1(r, b+1; a+b; t/(α+t))]``: a new customer is alive
    after the first purchase with probability ``b/(a+b)``, and then ``p ~ Beta(a, b+1)``.
    Evaluated as :func:`expected_purchases`. numpy only.
    """
    s = np.asarray(t, dtype=float) / np.asarray(alpha, dtype=float)
    if not modified:
        return _mean_if_alive(r, b, a, s)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return b / (a + b) * _mean_if_alive(r, b + 1.0, a, s)


def prob_purchases(
    r: Any, alpha: Any, a: Any, b: Any, t: Any, x: Any, *, modified: bool = False
) -> np.ndarray:
    """``P(X(t) = x)``: probability of ``x`` repeat purchases in ``(0, t]`` (numpy).

    .. math::

        P(X(t)=x) = \\frac{B(a, b+x+s)}{B(a, b)} \\mathrm{NB}(x; r, \\tfrac{\\alpha}{\\alpha+t})
        + \\frac{B(a+1, b+x-1+s)}{B(a, b)} I_{t/(\\alpha+t)}(x, r)

    (FHL 2005, eq. 8, ``s = 0``, the second term only for ``x > 0``). Derivation: ``x``
    purchases by ``t`` while surviving every coin flip, or the ``x``-th repeat purchase
    happens by ``t`` (``P(N(t) ≥ x)``, 1 for ``x = 0``) and the customer drops right after
    it. ``NB`` is the Gamma-Poisson pmf and ``1 - Σ_{j<x} NB(j) = I_{t/(α+t)}(x, r)`` the
    regularised incomplete beta. For the MBG/NBD (``s = 1``) the second term exists at
    ``x = 0`` too (dropped right after the first purchase).
    """
    r, alpha, a, b, t, x = (np.asarray(v, dtype=float) for v in (r, alpha, a, b, t, x))
    shift = 1.0 if modified else 0.0
    log_p0 = np.log(alpha) - np.log(alpha + t)
    log_nb = (
        sp.gammaln(r + x) - sp.gammaln(r) - sp.gammaln(x + 1) + r * log_p0 + sp.xlogy(x, t)
    ) - x * np.log(alpha + t)
    alive = np.exp(sp.betaln(a, b + x + shift) - sp.betaln(a, b) + log_nb)
    safe_x = np.where(x > 0, x, 1.0)
    if modified:
        reached = np.where(x > 0, sp.betainc(safe_x, r, t / (alpha + t)), 1.0)
        return alive + np.exp(sp.betaln(a + 1, b + x) - sp.betaln(a, b)) * reached
    dropped = np.exp(sp.betaln(a + 1, b + safe_x - 1) - sp.betaln(a, b)) * sp.betainc(
        safe_x, r, t / (alpha + t)
    )
    return alive + np.where(x > 0, dropped, 0.0)


class CustomerPosterior(NamedTuple):
    """Exact conditional posterior of a customer's ``(λ, p)`` given ``(r, α, a, b)``.

    A two-component mixture; every field broadcasts like the inputs. Gamma rates are
    *rates* (``scale = 1/rate``).

    Attributes
    ----------
    p_alive : array
        Weight of the alive branch, :func:`p_alive`.
    alive_shape, alive_rate : array
        ``λ | alive ~ Gamma(r+x, α+T)``.
    alive_a, alive_b : array
        ``p | alive ~ Beta(a, b+x+s)``.
    dropped_shape, dropped_rate : array
        ``λ | dropped ~ Gamma(r+x, α+t_x)``.
    dropped_a, dropped_b : array
        ``p | dropped ~ Beta(a+1, b+x-1+s)``. For a BG/NBD customer with ``x = 0`` the
        branch does not exist (weight ``1 - p_alive = 0``) and these four fields repeat
        the alive branch, so a vectorised sampler never sees an invalid parameter.
    """

    p_alive: Any
    alive_shape: Any
    alive_rate: Any
    alive_a: Any
    alive_b: Any
    dropped_shape: Any
    dropped_rate: Any
    dropped_a: Any
    dropped_b: Any


def customer_posterior(
    r: Any,
    alpha: Any,
    a: Any,
    b: Any,
    x: Any,
    t_x: Any,
    T: Any,
    *,
    alive: Any = None,
    modified: bool = False,
) -> CustomerPosterior:
    """Conditional posterior of a customer's purchase rate ``λ`` and dropout ``p``.

    Derivation. Given ``(λ, p)``, the likelihood of ``(x, t_x, T)`` (FHL 2005, eq. 3) is

    .. math::

        L(λ, p) = (1-p)^{x+s} λ^x e^{-λT}
        + \\delta\\, p (1-p)^{x-1+s} λ^x e^{-λ t_x}:

    the first term is "no dropout at any of the coin flips" (the customer is alive at
    ``T``), the second "dropped out right after the ``x``-th purchase at ``t_x``" (BG/NBD:
    ``s = 0``, only for ``x > 0``; MBG/NBD: ``s = 1``, also at time 0 when ``x = 0``).
    Multiplying by the prior ``Gamma(λ; r, α) Beta(p; a, b)`` turns each term into a
    product of conjugate kernels:

    - alive: ``Gamma(λ; r+x, α+T) Beta(p; a, b+x+s)`` with mass
      ``A_1 = Γ(r+x)α^r / (Γ(r)(α+T)^{r+x}) · B(a, b+x+s)/B(a, b)``;
    - dropped: ``Gamma(λ; r+x, α+t_x) Beta(p; a+1, b+x-1+s)`` with mass
      ``A_2 = Γ(r+x)α^r / (Γ(r)(α+t_x)^{r+x}) · B(a+1, b+x-1+s)/B(a, b)``.

    The posterior is their mixture with weight ``A_1/(A_1+A_2) =
    [1 + a/(b+x-1+s) ((α+T)/(α+t_x))^{r+x}]^{-1}``, which is :func:`p_alive`
    (``A_1 + A_2`` is the marginal likelihood, :func:`loglik`). A customer alive at ``T``
    then buys as a Poisson process and drops after each purchase with probability ``p``
    (:func:`clvbayes.math.processes.simulate_future_purchases`).

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters (e.g. draws of shape ``(chain, draw, 1)``).
    x, t_x, T : array_like
        Frequency, recency and age.
    alive : array_like, optional
        :func:`p_alive` at these inputs, if already computed.
    modified : bool
        MBG/NBD instead of BG/NBD.

    Returns
    -------
    CustomerPosterior
        Fields broadcast to a common shape.
    """
    ops = ops_for(r, alpha, a, b, x, t_x, T)
    r, alpha, a, b, x, t_x, T = _as_arrays(ops, r, alpha, a, b, x, t_x, T)
    if alive is None:
        alive = p_alive(r, alpha, a, b, x, t_x, T, modified=modified)
    shape = r + x
    alive_rate = alpha + T
    if modified:
        alive_b = b + x + 1
        dropped = (alpha + t_x, a + 1 + 0 * alive, b + x)
    else:
        has_repeat = x > 0
        alive_b = b + x
        dropped = (
            ops.where(has_repeat, alpha + t_x, alive_rate),
            ops.where(has_repeat, a + 1, a),
            ops.where(has_repeat, alive_b - 1, alive_b),
        )
    fields = [alive, shape, alive_rate, a + 0 * alive, alive_b, shape, *dropped]
    if ops.name == "numpy":
        fields = np.broadcast_arrays(*(np.asarray(f, dtype=float) for f in fields))
    return CustomerPosterior(*fields)


def _discount_nodes(alpha: Any, T: Any, horizon: Any, rate: float) -> np.ndarray:
    """Gauss-Legendre nodes per customer that give ~1e-8 relative accuracy or better.

    The integrand ``e^{-δt} E(t)`` varies on the scales ``α + T`` and ``1/δ``; measured
    against 64 nodes on CDNOW-like histories (``tests/test_predict.py``): 8 nodes give
    < 3e-10 while ``h <= 3 (α+T)`` and ``δh <= 1.5``, 16 nodes < 2e-8 while ``h <= 10
    (α+T)`` and ``δh <= 20``; beyond that 48 nodes.
    """
    scale = np.min(np.asarray(alpha, dtype=float)) + np.asarray(T, dtype=float)
    h = np.asarray(horizon, dtype=float)
    q = h / scale
    d = rate * h
    return np.where((q <= 3) & (d <= 1.5), 8, np.where((q <= 10) & (d <= 20), 16, 48))


def expected_discounted_purchases(
    r: Any,
    alpha: Any,
    a: Any,
    b: Any,
    x: Any,
    t_x: Any,
    T: Any,
    horizon: Any,
    discount_rate: float,
    *,
    nodes: int | None = None,
    alive: Any = None,
    modified: bool = False,
) -> np.ndarray:
    """Expected discounted purchases in ``(T, T+h]``: ``E[Σ_j exp(-δ t_j) | x, t_x, T]``.

    ``P(alive)`` times :func:`clvbayes.math.clv.discounted_expectation` of the alive
    customer's expected purchases (the hypergeometric part of :func:`expected_purchases`;
    ``P(alive)`` does not depend on the window, so it is computed once), the latter once
    per distinct ``(x, T, h)`` when the parameters are shared by all customers. numpy only.

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters, broadcast against the data (e.g. shape ``(draws, 1)``).
    x, t_x, T : array_like
        Frequency, recency and age; the customer axis is the last one.
    horizon : array_like
        Length of the window ``h``.
    discount_rate : float
        Continuous rate ``δ`` per time unit.
    nodes : int, optional
        Gauss-Legendre nodes. By default chosen per customer from ``h / (α+T)`` and
        ``δh`` for ~1e-8 relative accuracy (see :func:`_discount_nodes`), customers with
        the same count evaluated together.
    alive : array_like, optional
        :func:`p_alive` at these inputs, if already computed.
    modified : bool
        MBG/NBD instead of BG/NBD.

    Returns
    -------
    ndarray
    """
    if alive is None:
        alive = p_alive(r, alpha, a, b, x, t_x, T, modified=modified)
    shift = 1.0 if modified else 0.0
    inner = _discounted_if_alive(
        r, alpha, a, b, x, T, horizon, float(discount_rate), nodes, beta_shift=shift
    )
    return np.asarray(alive) * inner


def _discounted_if_alive(
    r: Any,
    alpha: Any,
    a: Any,
    b: Any,
    x: Any,
    T: Any,
    horizon: Any,
    rate: float,
    nodes: Any,
    *,
    beta_shift: float = 0.0,
) -> np.ndarray:
    """Discounted expected purchases of a customer alive at ``T``, once per distinct
    ``(x, T, h)``; Gauss-Legendre nodes chosen per row (customers with the same count
    evaluated together) unless ``nodes`` is given; ``beta_shift`` as in
    :func:`_purchases_if_alive`."""

    def rows(x: Any, T: Any, horizon: Any) -> np.ndarray:
        n, beta = np.add(r, x), np.add(b, x) + beta_shift
        m = np.add(alpha, T)
        shape = np.broadcast_shapes(np.shape(n), np.shape(beta), np.shape(m), np.shape(horizon))

        def part(sel: Any, count: int) -> np.ndarray:
            """The expectation on the customers ``sel`` (None: all of them)."""

            def pick(v: Any) -> Any:
                v = np.asarray(v, dtype=float)
                if sel is None:
                    return v
                v = np.broadcast_to(v, np.broadcast_shapes(np.shape(v), (1,)))
                return v[..., sel] if v.shape[-1] > 1 else v

            h_sel, n_sel, beta_sel, a_sel, m_sel = (pick(v) for v in (horizon, n, beta, a, m))
            return discounted_expectation(
                lambda t: _mean_if_alive(n_sel, beta_sel, a_sel, t / m_sel),
                h_sel,
                rate,
                nodes=count,
            )

        if nodes is not None or rate == 0 or len(shape) == 0:
            return np.broadcast_to(part(None, nodes or 16), shape).copy()
        counts = np.broadcast_to(_discount_nodes(alpha, T, horizon, rate), shape[-1:])
        out = np.empty(shape)
        for count in np.unique(counts):
            sel = np.flatnonzero(counts == count)
            out[..., sel] = part(sel, int(count))
        return out

    return per_distinct_row(rows, (x, T, horizon), (r, alpha, a, b))


def _last_axis(*values: Any) -> tuple[np.ndarray, ...]:
    """Each value as a float array with a new last axis (for a trailing ``count`` axis)."""
    return tuple(np.asarray(v, dtype=float)[..., None] for v in values)


def conditional_pmf(
    r: Any,
    alpha: Any,
    a: Any,
    b: Any,
    x: Any,
    t_x: Any,
    T: Any,
    t: Any,
    counts: Any,
    *,
    alive: Any = None,
    modified: bool = False,
) -> np.ndarray:
    """``P(n purchases in (T, T+t] | x, t_x, T)`` for each ``n`` of ``counts`` (numpy).

    .. math::

        P(N = n \\mid x, t_x, T) = (1 - P_a)\\,[n = 0] + P_a\\, P(N = n \\mid \\text{alive})

    with ``P_a`` = :func:`p_alive`. A customer alive at ``T`` has ``λ ~ Gamma(r+x, α+T)``
    and ``p ~ Beta(a, b+x+s)`` (:func:`customer_posterior`) and from then on follows the
    BG/NBD process with no coin flip at ``T`` itself, so ``P(N = n | alive)`` is the new
    customer's pmf (:func:`prob_purchases`, FHL 2005 eq. 8) at those parameters and
    ``t``: ``n`` purchases while surviving each coin flip, or the ``n``-th purchase by
    ``T + t`` and dropout right after it. ``n = 0`` gives ``P(no purchase in the
    window)``, which equals ``L(x, t_x, T+t) / L(x, t_x, T)`` (the likelihood of the
    history stretched by a quiet window; pymc-marketing's
    ``expected_probability_no_purchase`` for the BG/NBD).

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters, broadcast against the data (e.g. ``(draws, 1)``).
    x, t_x, T : array_like
        Frequency, recency and age.
    t : array_like
        Window length (``0`` gives ``[n = 0]``).
    counts : sequence of int
        The numbers of purchases ``n >= 0`` asked for.
    alive : array_like, optional
        :func:`p_alive` at these inputs, if already computed.
    modified : bool
        MBG/NBD instead of BG/NBD.

    Returns
    -------
    ndarray
        The broadcast shape of the inputs plus a last axis over ``counts``.
    """
    n = check_counts(counts)
    if alive is None:
        alive = p_alive(r, alpha, a, b, x, t_x, T, modified=modified)
    shift = 1.0 if modified else 0.0
    r, alpha, a, b, x, T, t, alive = _last_axis(r, alpha, a, b, x, T, t, alive)
    given_alive = prob_purchases(r + x, alpha + T, a, b + x + shift, t, n)
    return alive * given_alive + (1.0 - alive) * (n == 0)


def dert(
    r: Any,
    alpha: Any,
    a: Any,
    b: Any,
    x: Any,
    t_x: Any,
    T: Any,
    discount_rate: float,
    *,
    alive: Any = None,
    modified: bool = False,
    nodes: int = 64,
) -> np.ndarray:
    """Discounted expected residual transactions: ``E[Σ_j exp(-δ t_j) | x, t_x, T]`` over
    *all* purchases after ``T`` (CLVTools' DERT; numpy).

    ``P(alive)`` times :func:`clvbayes.math.clv.discounted_residual` of the alive
    customer's expected purchases (the bracket of :func:`expected_purchases`), whose
    closed form is ``E[λ / (δ + λ p)]`` over the alive posterior of ``(λ, p)``: a customer
    with rate ``λ`` who drops out after each purchase with probability ``p`` makes
    ``λ / (δ + λ p)`` discounted purchases in expectation. Computed once per distinct
    ``(x, T)`` when the parameters are shared by all customers, on the time scale
    ``(α+T) / max(1, (r+x) E[p])`` (when the expected purchases bend).

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters, broadcast against the data.
    x, t_x, T : array_like
        Frequency, recency and age.
    discount_rate : float
        Continuous discount rate ``δ > 0`` per time unit.
    alive : array_like, optional
        :func:`p_alive` at these inputs, if already computed.
    modified : bool
        MBG/NBD instead of BG/NBD.
    nodes : int
        Gauss-Legendre nodes of :func:`~clvbayes.math.clv.discounted_residual`.

    Returns
    -------
    ndarray
    """
    if alive is None:
        alive = p_alive(r, alpha, a, b, x, t_x, T, modified=modified)
    shift = 1.0 if modified else 0.0

    def rows(x: Any, T: Any) -> np.ndarray:
        n, beta, m = np.add(r, x), np.add(b, x) + shift, np.add(alpha, T)
        scale = m / np.maximum(1.0, n * a / (a + beta))
        return discounted_residual(
            lambda t: _mean_if_alive(n, beta, a, t / m), scale, discount_rate, nodes=nodes
        )

    return np.asarray(alive) * per_distinct_row(rows, (x, T), (r, alpha, a, b))


# --- simulation ------------------------------------------------------------------------


def simulate(
    r: Any,
    alpha: Any,
    a: Any,
    b: Any,
    T: Any,
    *,
    rng: np.random.Generator | int,
    modified: bool = False,
) -> dict[str, np.ndarray]:
    """Simulate ``(x, t_x, T)`` from the BG/NBD (FHL 2005, sec. 2) or MBG/NBD process.

    Each customer draws ``λ ~ Gamma(r, rate α)`` and ``p ~ Beta(a, b)``. Starting from the
    (uncounted) first purchase at time 0, purchases arrive as a Poisson process of rate
    ``λ``; right after each *repeat* purchase the customer drops out with probability
    ``p`` (MBG/NBD: also right after the first purchase, so a customer with ``x = 0``
    may be inactive). Purchases after ``T`` are not observed.

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters, broadcast against ``T``.
    T : array_like
        Age of each customer (time from the first purchase to the end of observation).
    rng : numpy.random.Generator or int
        Random generator or seed.
    modified : bool
        MBG/NBD instead of BG/NBD.

    Returns
    -------
    dict of str to ndarray
        All of the broadcast shape of the inputs:

        - ``frequency`` (int64): repeat purchases ``x`` in ``(0, T]``;
        - ``recency``: time of the last repeat purchase ``t_x`` (0 when ``x = 0``);
        - ``T``: age of the customer;
        - ``lam``, ``p_drop``: the latent purchase rate and dropout probability;
        - ``alive`` (bool): whether the customer is still alive at ``T``.

    Raises
    ------
    TooManyPurchasesError
        Before simulating, if a customer would be expected to make more than
        :data:`~clvbayes.math.processes.MAX_EXPECTED_PURCHASES` repeat purchases in
        ``(0, T]`` (:func:`~clvbayes.math.processes.check_simulated_purchases`): the
        simulation draws one purchase at a time.
    """
    rng = generator(rng)
    params = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (r, alpha, a, b, T)))
    check_simulated_purchases(
        "simulate_mbgnbd" if modified else "simulate_bgnbd",
        AliveProcess(1.0, *params[:4]),  # MBG/NBD: its first coin only lowers the bound
        params[4],
        dict(zip(("r", "alpha", "a", "b", "T"), params, strict=True)),
    )
    shape = params[0].shape
    r, alpha, a, b, T = (v.ravel() for v in params)
    n = r.size
    lam = rng.gamma(r, 1.0 / alpha)
    p = rng.beta(a, b)
    frequency = np.zeros(n, dtype=np.int64)
    recency = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    idx = np.arange(n)
    if modified:
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


def sample_alive_state(
    posterior: CustomerPosterior, index: tuple[Any, ...], rng: np.random.Generator
) -> tuple[np.ndarray, BetaDropout]:
    """Draws of the alive branch's ``(λ, p)`` at ``index`` of the posterior's fields.

    ``λ ~ Gamma(r+x, α+T)`` now; ``p ~ Beta(a, b+x+s)`` as a :class:`BetaDropout`, drawn
    by :func:`~clvbayes.math.processes.simulate_future_purchases` only for customers who
    would buy at all.
    """
    lam = rng.gamma(posterior.alive_shape[index], 1.0 / posterior.alive_rate[index])
    return lam, BetaDropout(posterior.alive_a[index], posterior.alive_b[index])


def alive_process(
    r: Any,
    alpha: Any,
    a: Any,
    b: Any,
    x: Any,
    t_x: Any,
    T: Any,
    *,
    alive: Any = None,
    modified: bool = False,
) -> AliveProcess:
    """The alive branch of :func:`customer_posterior` for the compiled simulation:
    ``λ ~ Gamma(r+x, α+T)`` and a dropout coin after each purchase with ``p ~ Beta(a,
    b+x+s)``, no lifetime (fields broadcast like the inputs; nothing is copied to a common
    shape)."""
    if alive is None:
        alive = p_alive(r, alpha, a, b, x, t_x, T, modified=modified)
    return AliveProcess(
        alive,
        np.add(r, x),
        np.add(alpha, T),
        dropout_a=np.asarray(a, dtype=float),
        dropout_b=np.add(b, x) + (1.0 if modified else 0.0),
    )


def survival(posterior: CustomerPosterior, times: Any, rng: np.random.Generator) -> np.ndarray:
    """``P(alive at T+t | alive at T)`` for each of ``times``, shaped ``(time, ...)``.

    A customer alive at ``T`` with rate ``λ`` and dropout probability ``p`` drops out at
    the events of a Poisson process of rate ``λ p``, so survives ``t`` with probability
    ``exp(-λ p t)``; averaged over ``λ ~ Gamma(r+x, α+T)`` this is
    ``((α+T)/(α+T+p t))^(r+x)``. ``p ~ Beta(a, b+x+s)`` is drawn once per element.
    ``times`` may also be shaped ``(time, ...)`` already, broadcasting against the
    elements (e.g. each draw's operational time under calendar-time effects).
    """
    p = rng.beta(posterior.alive_a, posterior.alive_b)
    rate = posterior.alive_rate[None]
    times = np.asarray(times, dtype=float)
    if times.ndim <= 1:
        times = times.reshape((-1,) + (1,) * p.ndim)
    return (rate / (rate + p[None] * times)) ** posterior.alive_shape[None]


# --- the family ------------------------------------------------------------------------


def _pooled(params: Any) -> dict[str, Any]:
    r, alpha, a, b = (params[k] for k in PARAMS)
    return {"r": r, "purchase_rate": r / alpha, "phi_dropout": a / (a + b), "kappa_dropout": a + b}


def _complete(values: Any) -> dict[str, Any]:
    r = values["r"]
    alpha = values["alpha"] if "alpha" in values else r / values["purchase_rate"]
    if "a" in values:
        a, b = values["a"], values["b"]
    else:
        phi, kappa = values["phi_dropout"], values["kappa_dropout"]
        a, b = phi * kappa, (1.0 - phi) * kappa
    return {"r": r, "alpha": alpha, "a": a, "b": b}


REPARAMETRISATION = Reparametrisation(
    links={"r": "log", "purchase_rate": "log", "phi_dropout": "logit", "kappa_dropout": "log"},
    pooled=_pooled,
    complete=_complete,
)
"""Partial pooling works on ``r``, the mean purchase rate ``r / alpha`` (log scale), the
mean dropout probability ``phi_dropout = a / (a + b)`` (logit) and its concentration
``kappa_dropout = a + b`` (log); ``phi_dropout, kappa_dropout`` are also the default
prior parametrisation of ``a, b`` (:mod:`clvbayes.priors`)."""


COVARIATE_EFFECTS = (
    CovariateEffect("purchase", "alpha", "purchase_coefficient", -1),
    CovariateEffect("dropout", "a", "dropout_coefficient_a", 1),
    CovariateEffect("dropout", "b", "dropout_coefficient_b", 1),
)
"""pymc-marketing's ``BetaGeoModel`` conventions: ``alpha_i = alpha exp(-γ'z_i)`` (its
``purchase_coefficient_alpha``), ``a_i = a exp(γ_a'z_i)``, ``b_i = b exp(γ_b'z_i)``."""


def family(kind: str, label: str, *, modified: bool, name: str = "") -> TransactionFamily:
    """The BG/NBD (``modified=False``) or MBG/NBD family object (for registration)."""

    def bind(fn: Any) -> Any:
        return update_wrapper(partial(fn, modified=True), fn) if modified else fn

    return TransactionFamily(
        kind=kind,
        label=label,
        name=name,
        params=PARAMS,
        columns=("frequency", "recency", "T"),
        loglik_terms=bind(loglik_terms),
        simulate=bind(simulate),
        reparametrisation=REPARAMETRISATION,
        factored=("frequency", "recency", "T"),
        covariate_effects=COVARIATE_EFFECTS,
        p_alive=bind(p_alive),
        expected_purchases=bind(expected_purchases),
        expected_discounted_purchases=bind(expected_discounted_purchases),
        expected_purchases_new=bind(expected_purchases_new),
        conditional_pmf=bind(conditional_pmf),
        dert=bind(dert),
        customer_posterior=bind(customer_posterior),
        sample_alive_state=sample_alive_state,
        survival=survival,
        simulate_future=simulate_future_purchases,
        clock_change=True,
        alive_process=bind(alive_process),
    )


FAMILY = register(family("BGNBD", "BG/NBD", modified=False, name="bgnbd"))
"""The BG/NBD family (:mod:`clvbayes.math.family`)."""
