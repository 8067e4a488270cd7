"""MBG/NBD (Batislam, Denizel & Filiztekin 2007) maths as plain functions of arrays.

The modified BG/NBD lets a customer drop out right after *every* purchase, the first
one included, so unlike the BG/NBD a customer with ``x = 0`` may be inactive. Notation
as in :mod:`clvbayes.math.bgnbd` (``r, alpha`` Gamma purchase rates, ``a, b`` Beta
dropout probabilities); the likelihood is BTYDplus's ``mbgnbd.LL`` (Platzer 2016).

Every function accepts numpy arrays or PyTensor variables (see :mod:`clvbayes.math._ops`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special as sp

from clvbayes.math._ops import (
    LogLikTerms,
    log_rising_factorial,
    on_levels,
    ops_for,
)
from clvbayes.math.bgnbd import (
    CustomerPosterior,
    _discounted_if_alive,
    _log1p_dropout_odds,
    _mean_if_alive,
    _purchases_if_alive,
    beta_geometric_terms,
)

__all__ = [
    "customer_posterior",
    "expected_discounted_purchases",
    "expected_purchases",
    "expected_purchases_new",
    "frequency_terms",
    "loglik",
    "loglik_terms",
    "p_alive",
    "prob_purchases",
]


def frequency_terms(r: Any, a: Any, b: Any, x: Any) -> tuple[Any, Any]:
    """Parts of the MBG/NBD log-likelihood that depend on the frequency only.

    Returns
    -------
    base : array
        ``log Γ(r+x) - log Γ(r) + log B(a, b+x+1) - log B(a, b)``: the "still alive"
        branch's frequency terms (from rising factorials, accurate for huge ``a, b``).
    log_odds : array
        ``log(a / (b+x)) = log[B(a+1, b+x) / B(a, b+x+1)]``: the weight of the
        "dropped out after the last purchase" branch relative to the alive one.
    """
    ops = ops_for(r, a, b, x)
    # the Beta-function ratio as rising factorials: see clvbayes.math.bgnbd.frequency_terms
    base = (
        ops.gammaln(r + x)
        - ops.gammaln(r)
        + log_rising_factorial(b, x + 1)
        - log_rising_factorial(a + b, x + 1)
    )
    return base, ops.log(a) - ops.log(b + x)


def loglik(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any) -> Any:
    """MBG/NBD log-likelihood of each customer's ``(x, t_x, T)``.

    .. math::

        \\ell = \\log\\frac{\\Gamma(r+x)\\alpha^r}{\\Gamma(r)}
        + \\log\\frac{B(a, b+x+1)}{B(a, b)} - (r+x)\\log(\\alpha+T)
        + \\log\\left[1 + \\frac{a}{b+x}
          \\left(\\frac{\\alpha+T}{\\alpha+t_x}\\right)^{r+x}\\right]

    (Batislam et al. 2007, eq. 6), with the bracket as a ``logaddexp`` so no power is
    formed and large ``x`` or ``T`` stay finite.

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters, broadcast against the data.
    x, t_x, T : array_like or Factor
        Frequency, recency and age of each row; Factors make the terms that depend on
        one column alone be computed once per level.

    Returns
    -------
    array
        Log-likelihood of each row (not summed, not weighted).
    """
    return loglik_terms(r, alpha, a, b, x, t_x, T).per_row()


def loglik_terms(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any) -> LogLikTerms:
    """:func:`loglik` as a sum of terms (see :func:`clvbayes.math.bgnbd.loglik_terms`)."""
    frequency = on_levels(lambda lv: frequency_terms(r, a, b, lv), x)
    return beta_geometric_terms(r, alpha, frequency, x, t_x, T)


def p_alive(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any) -> Any:
    """Probability that a customer with history ``(x, t_x, T)`` is alive at ``T``.

    .. math::

        P(\\text{alive}) = \\left[1 + \\frac{a}{b+x}
        \\left(\\frac{\\alpha+T}{\\alpha+t_x}\\right)^{r+x}\\right]^{-1}

    (Batislam et al. 2007, eq. 8): below 1 also for ``x = 0``.
    """
    ops = ops_for(r, alpha, a, b, x, t_x, T)
    _, log_odds = frequency_terms(r, a, b, x)
    term = _log1p_dropout_odds(ops, r, x, log_odds, ops.log(alpha + T), ops.log(alpha + t_x))
    return ops.exp(-term)


def customer_posterior(
    r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any, *, alive: Any = None
) -> CustomerPosterior:
    """Conditional posterior of a customer's purchase rate ``λ`` and dropout ``p`` (numpy).

    Derivation. Given ``(λ, p)`` the MBG/NBD flips the dropout coin after every purchase,
    the first (time 0) included, so the history ``(x, t_x, T)`` has likelihood

    .. math::

        L(λ, p) = (1-p)^{x+1} λ^x e^{-λT} + p (1-p)^x λ^x e^{-λ t_x}:

    alive at ``T`` (survived ``x+1`` flips), or dropped right after the purchase at
    ``t_x`` (at time 0 when ``x = 0``). Times the prior ``Gamma(λ; r, α) Beta(p; a, b)``,
    each term is a product of conjugate kernels:

    - alive: ``Gamma(λ; r+x, α+T) Beta(p; a, b+x+1)`` with mass
      ``Γ(r+x)α^r / (Γ(r)(α+T)^{r+x}) · B(a, b+x+1)/B(a, b)``;
    - dropped: ``Gamma(λ; r+x, α+t_x) Beta(p; a+1, b+x)`` with mass
      ``Γ(r+x)α^r / (Γ(r)(α+t_x)^{r+x}) · B(a+1, b+x)/B(a, b)``.

    Unlike the BG/NBD (``Beta(a, b+x)`` and ``Beta(a+1, b+x-1)``, no dropped branch at
    ``x = 0``) both branches always exist. The alive weight is
    ``[1 + a/(b+x) ((α+T)/(α+t_x))^{r+x}]^{-1}``, i.e. :func:`p_alive`, and the sum of
    the masses is the likelihood (:func:`loglik`). A customer alive at ``T`` then buys as
    a Poisson process and drops after each purchase with probability ``p``
    (:func:`clvbayes.simulate.simulate_future_purchases`).

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters (e.g. draws of shape ``(draws, 1)``).
    x, t_x, T : array_like
        Frequency, recency and age.

    Returns
    -------
    clvbayes.math.bgnbd.CustomerPosterior
        The same fields as the BG/NBD's, broadcast to a common shape.
    """
    r, alpha, a, b, x, t_x, T = (np.asarray(v, dtype=float) for v in (r, alpha, a, b, x, t_x, T))
    weight = p_alive(r, alpha, a, b, x, t_x, T) if alive is None else alive
    fields = [weight, r + x, alpha + T, a, b + x + 1, r + x, alpha + t_x, a + 1, b + x]
    return CustomerPosterior(*np.broadcast_arrays(*fields))


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
) -> np.ndarray:
    """Expected number of purchases in ``(T, T+t]`` given the history ``(x, t_x, T)``.

    Batislam et al. (2007), eq. 11 (lifetimes' ``ModifiedBetaGeoFitter``):

    .. math::

        E[Y(t) \\mid x, t_x, T] = P(\\text{alive}) \\frac{a+b+x}{a-1}
        \\left[1 - \\left(\\frac{\\alpha+T}{\\alpha+T+t}\\right)^{r+x}
        {}_2F_1\\left(r+x, b+x+1; a+b+x; \\tfrac{t}{\\alpha+T+t}\\right)\\right]

    The bracket is the BG/NBD's ``E[(1 - (1+p t/(α+T))^{-(r+x)})/p]`` with
    ``p ~ Beta(a, b+x+1)`` (the alive branch of :func:`customer_posterior`), evaluated by
    the same stable routine (:func:`clvbayes.math.bgnbd._mean_if_alive`: convergent
    Euler form, ``a ≈ 1`` interpolation, quadrature fallback), once per distinct
    ``(x, T, t)`` when the parameters are shared by all customers; ``alive`` may pass
    :func:`p_alive` at these inputs if already computed. numpy only.
    """
    if alive is None:
        alive = p_alive(r, alpha, a, b, x, t_x, T)
    return alive * _purchases_if_alive(r, alpha, a, b, x, T, t, beta_shift=1.0)


def expected_purchases_new(r: Any, alpha: Any, a: Any, b: Any, t: Any) -> np.ndarray:
    """Expected repeat purchases ``E[X(t)]`` of a new customer in ``(0, t]``.

    Batislam et al. (2007), eq. 9: ``b/(a-1) [1 - (α/(α+t))^r 2F1(r, b+1; a+b; t/(α+t))]``.
    A new customer is alive after the first purchase with probability ``b/(a+b)``, and
    then ``p ~ Beta(a, b+1)``; the bracket is evaluated as in :func:`expected_purchases`.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    s = np.asarray(t, dtype=float) / np.asarray(alpha, dtype=float)
    return b / (a + b) * _mean_if_alive(r, b + 1.0, a, s)


def prob_purchases(r: Any, alpha: Any, a: Any, b: Any, t: Any, x: Any) -> np.ndarray:
    """``P(X(t) = x)``: probability of ``x`` repeat purchases in ``(0, t]`` (numpy).

    .. math::

        P(X(t)=x) = \\frac{B(a, b+x+1)}{B(a, b)} \\mathrm{NB}(x; r, \\tfrac{\\alpha}{\\alpha+t})
        + \\frac{B(a+1, b+x)}{B(a, b)} \\left[1 - \\sum_{j<x} \\mathrm{NB}(j)\\right]

    Derivation: ``x`` purchases by ``t`` while surviving all ``x+1`` coin flips, or the
    ``x``-th repeat purchase happens by ``t`` (``P(N(t) ≥ x)``, 1 for ``x = 0``) and the
    customer drops right after it (probability ``p(1-p)^x``). ``NB`` is the Gamma-Poisson
    pmf and ``1 - Σ_{j<x} NB(j) = I_{t/(α+t)}(x, r)`` the regularised incomplete beta.
    """
    r, alpha, a, b, t, x = (np.asarray(v, dtype=float) for v in (r, alpha, a, b, t, x))
    log_p0 = np.log(alpha) - np.log(alpha + t)
    log_nb = (
        sp.gammaln(r + x) - sp.gammaln(r) - sp.gammaln(x + 1) + r * log_p0 + sp.xlogy(x, t)
    ) - x * np.log(alpha + t)
    alive = np.exp(sp.betaln(a, b + x + 1) - sp.betaln(a, b) + log_nb)
    safe_x = np.where(x > 0, x, 1.0)
    reached = np.where(x > 0, sp.betainc(safe_x, r, t / (alpha + t)), 1.0)
    return alive + np.exp(sp.betaln(a + 1, b + x) - sp.betaln(a, b)) * reached


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
) -> np.ndarray:
    """Expected discounted purchases ``E[Σ_j exp(-δ t_j) | x, t_x, T]`` in ``(T, T+h]``.

    ``P(alive)`` (computed once, or passed) times the BG/NBD's discounted alive part
    (:func:`clvbayes.math.bgnbd._discounted_if_alive` with the dropout posterior
    ``Beta(a, b+x+1)``): :func:`clvbayes.math.clv.discounted_expectation` of the alive
    customer's expected purchases, once per distinct ``(x, T, h)`` when the parameters
    are shared, with Gauss-Legendre nodes chosen per customer for ~1e-8 relative
    accuracy unless ``nodes`` is given. numpy only.
    """
    if alive is None:
        alive = p_alive(r, alpha, a, b, x, t_x, T)
    inner = _discounted_if_alive(
        r, alpha, a, b, x, T, horizon, float(discount_rate), nodes, beta_shift=1.0
    )
    return np.asarray(alive) * inner
