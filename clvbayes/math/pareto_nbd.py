"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987) maths as plain functions of arrays.

Notation follows Fader, Hardie & Lee (2005, "A note on implementing the Pareto/NBD
model in MATLAB"): ``x`` repeat purchases, ``t_x`` time of the last one, ``T`` age, in
one time unit; purchase rates ``λ ~ Gamma(r, α)``, dropout rates ``μ ~ Gamma(s, β)``.

Why no Gauss hypergeometric function
------------------------------------
The published likelihood contains ``2F1(r+s+x, s+1; r+s+x+1; z)``; its series diverges as
``z → 1`` and overflows for large ``r+s+x``, which is where other implementations return
NaN or -inf. Here the same quantity is written as an expectation of a *bounded* function
and integrated by a fixed double-exponential rule:

Given rates, the customer is alive at ``T`` (purchases only) or died at some
``τ ∈ (t_x, T]``. Integrating ``λ`` and ``μ`` out,

.. math::

    L = \\frac{\\Gamma(r+x)\\alpha^r\\beta^s}{\\Gamma(r)}
        \\left[\\psi(T) + s\\int_{t_x}^{T} \\frac{\\psi(\\tau)}{\\beta+\\tau}d\\tau\\right],
    \\qquad \\psi(\\tau) = (\\alpha+\\tau)^{-(r+x)}(\\beta+\\tau)^{-s}.

``ψ`` is a survival function (up to a constant) with hazard
``h(τ) = (r+x)/(α+τ) + s/(β+τ)``; writing ``w(τ) = [s/(β+τ)] / h(τ) ∈ (0, 1)`` (the
share of the hazard that is dropout) gives
``s ∫_t^∞ ψ(τ)/(β+τ) dτ = ψ(t) W(t)`` with ``W(t) = E[w(τ) | τ > t]`` under that
survival law, and therefore, with no subtraction anywhere,

.. math::

    L = \\frac{\\Gamma(r+x)\\alpha^r\\beta^s}{\\Gamma(r)}
        \\left[\\psi(T)\\,(1 - W(T)) + \\psi(t_x)\\,W(t_x)\\right].

``W`` and ``1 - W`` are averages of numbers in ``(0, 1)``, computed as ratios of two
positive quadrature sums, so ``log L`` is finite for every positive parameter and every
data value (``α = β``, ``x = 10^4``, ``T = 10^4``, parameters from 1e-4 to 1e4). In the
variable ``ℓ = log((min(α,β) + τ)/(min(α,β) + t))`` the integrands are smooth and
decay exponentially, and a fixed rule (exp-exp / sinh double-exponential map, Takahasi &
Mori 1974) reaches ~1e-13 relative accuracy for ``x > 0`` and ~1e-10 for ``x = 0``.
The same expression is the analytic continuation of FHL's ``A_0`` term through Euler's
and Pfaff's transformations, so no ``α ≥ β`` case split is needed.

Every function accepts numpy arrays or PyTensor variables (see :mod:`clvbayes.math.ops`).
"""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple

import numpy as np
from scipy import special as sp

from clvbayes.math.clv import discounted_expectation, discounted_residual
from clvbayes.math.covariates import CovariateEffect
from clvbayes.math.family import TransactionFamily, check_counts, register
from clvbayes.math.ops import (
    Factor,
    LogLikTerms,
    at_levels,
    is_tensor,
    ops_for,
    per_level,
    shared_by_customers,
    values_of,
)
from clvbayes.math.processes import (
    AliveProcess,
    FuturePurchases,
    check_simulated_purchases,
    generator,
    simulate_future_purchases,
)

__all__ = [
    "COVARIATE_EFFECTS",
    "FAMILY",
    "PARAMS",
    "CustomerPosterior",
    "alive_process",
    "conditional_pmf",
    "customer_posterior",
    "dert",
    "expected_discounted_purchases",
    "expected_purchases",
    "log_dropout_shares",
    "loglik",
    "loglik_terms",
    "p_alive",
    "pmf_if_alive",
    "sample_alive_state",
    "simulate",
    "simulate_future",
    "survival",
]

PARAMS = ("r", "alpha", "s", "beta")
"""Population parameters, in the order the functions take them."""

# numpy evaluation is chunked so that (draws x rows x nodes) temporaries stay small
_CHUNK_ELEMENTS = 4_000_000


@cache
def _rule(fine: bool) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of a rule for ``∫_0^∞ f(ℓ) dℓ`` with ``f`` decaying like ``e^{-ℓ}``.

    ``fine=False``: exp-exp map ``ℓ = exp(u - e^{-u})``, step 0.12, 62 nodes (enough when
    the decay rate varies little, i.e. ``x ≥ 1``). ``fine=True``: sinh map
    ``ℓ = exp(π/2 sinh u)``, step 0.05, 151 nodes (``x = 0``, where ``r + s`` may be small
    and the decay rate changes by orders of magnitude). Returns ``(nodes, weights)``
    including the Jacobian; the trapezoidal rule in ``u`` converges exponentially.
    """
    if fine:
        u = np.arange(-4.0, 3.5 + 1e-9, 0.05)
        nodes = np.exp(np.pi / 2 * np.sinh(u))
        return nodes, nodes * np.pi / 2 * np.cosh(u) * 0.05
    u = np.arange(-3.6, 3.7 + 1e-9, 0.12)
    nodes = np.exp(u - np.exp(-u))
    return nodes, nodes * (1.0 + np.exp(-u)) * 0.12


def log_dropout_shares(
    m: Any, s: Any, alpha: Any, beta: Any, t: Any, *, fine: bool = True
) -> tuple[Any, Any]:
    """``log W(t)`` and ``log(1 - W(t))``: the expected dropout share of the hazard.

    Let ``A = α + t``, ``B = β + t``, ``c = min(A, B)``, ``δ = |A - B| / c`` and
    ``ℓ = log(1 + (τ - t)/c)``. The survival law ``ψ(τ)/ψ(t)`` is ``exp(-Φ(ℓ))`` with

    .. math::

        \\Phi(\\ell) = (m + s)\\ell - e_{hi}\\left[\\log(1+\\delta) - \\log(1+\\delta e^{-\\ell})\\right],

    where ``e_hi`` is the exponent (``m = r + x`` or ``s``) of the larger of ``A, B`` and
    ``e_lo`` the other. Its hazard in ``ℓ`` splits as ``e_lo + e_hi / (1 + δ e^{-ℓ})``;
    ``W`` is the mean share of the dropout part (``s``'s), ``1 - W`` that of the purchase
    part. Both are ratios of positive sums over the same nodes, so they lie in ``(0, 1)``
    and the rule's scale (``ℓ = node / Φ'(0)``) cancels.

    Parameters
    ----------
    m : array_like
        ``r + x``.
    s, alpha, beta : array_like
        Population parameters.
    t : array_like
        Time from which the expectation runs (``t_x`` or ``T``).
    fine : bool
        Use the 151-node rule (needed when ``m + s`` can be small, i.e. ``x = 0``).

    Returns
    -------
    log_w, log_1mw : arrays
        Broadcast shape of the inputs.
    """
    ops = ops_for(m, s, alpha, beta, t)
    if ops.name == "numpy":
        m, s, alpha, beta, t = np.broadcast_arrays(
            *(np.asarray(v, dtype=float) for v in (m, s, alpha, beta, t))
        )
    nodes, weights = _rule(fine)
    A, B = alpha + t, beta + t
    # one switch decides which scale is the lower one, so that at alpha == beta the
    # gradient is a consistent one-sided derivative of this (smooth) function
    dropout_is_low = beta <= alpha
    low = ops.where(dropout_is_low, B, A)
    delta = ops.where(dropout_is_low, A - B, B - A) / low
    e_lo = ops.where(dropout_is_low, s, m)
    e_hi = ops.where(dropout_is_low, m, s)
    kappa = e_lo + e_hi / (1.0 + delta)  # Φ'(0)
    ell = nodes / kappa[..., None]
    q = delta[..., None] * ops.exp(-ell)
    phi = (m + s)[..., None] * ell - e_hi[..., None] * (ops.log1p(delta)[..., None] - ops.log1p(q))
    weight = weights * ops.exp(-phi)
    hazard_lo = e_lo[..., None] + 0.0 * q
    hazard_hi = e_hi[..., None] / (1.0 + q)
    low_sum = (weight * hazard_lo).sum(axis=-1)
    high_sum = (weight * hazard_hi).sum(axis=-1)
    log_total = ops.log(low_sum + high_sum)
    log_w = ops.where(dropout_is_low, ops.log(low_sum), ops.log(high_sum)) - log_total
    log_1mw = ops.where(dropout_is_low, ops.log(high_sum), ops.log(low_sum)) - log_total
    return log_w, log_1mw


def _pairs(
    x: Any, t: Any, profile: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Distinct ``(x, t)`` pairs of concrete data (``(profile, x, t)`` triples when each
    row's covariate ``profile`` is given) and each row's index into them: ``(x, t,
    profile, index)``, the profile 0 throughout without one."""
    xv, tv = values_of(x), values_of(t)
    if is_tensor(xv) or is_tensor(tv):
        return None
    xv, tv = np.broadcast_arrays(np.asarray(xv, dtype=float), np.asarray(tv, dtype=float))
    if xv.ndim != 1:
        return None
    kv = np.zeros(xv.shape) if profile is None else np.asarray(profile, dtype=float)
    levels, index = np.unique(np.column_stack([kv, xv, tv]), axis=0, return_inverse=True)
    return levels[:, 1], levels[:, 2], levels[:, 0].astype(np.int64), index.reshape(-1)


def _profile_index(params: tuple[Any, ...]) -> np.ndarray | None:
    """Each row's covariate profile when some parameters are
    :class:`~clvbayes.math.ops.Factor` s over the profiles (one value per profile, see
    :attr:`clvbayes.math.family.Family.loglik_terms`), else None."""
    factors = [p for p in params if isinstance(p, Factor)]
    if not factors or is_tensor(factors[0].index):
        return None  # a symbolic index has no distinct triples to find: per row
    index = np.asarray(factors[0].index)
    if any(not np.array_equal(f.index, index) for f in factors[1:]):
        raise ValueError("parameters factored over covariate profiles must share one index.")
    return index


def _shares_by_pair(r: Any, s: Any, alpha: Any, beta: Any, x: Any, t: Any) -> tuple[Any, Any]:
    """:func:`log_dropout_shares` at each row's ``(x, t)``, computed once per distinct pair.

    Parameters with a value per covariate profile (:class:`~clvbayes.math.ops.Factor` s)
    are shared by the distinct ``(profile, x, t)`` triples instead. Pairs with ``x = 0``
    use the fine rule, the others the coarse one; for symbolic data every row uses the
    fine rule.
    """
    params = (r, s, alpha, beta)
    profile = _profile_index(params)
    if profile is None:
        params = tuple(values_of(p) for p in params)
        r, s, alpha, beta = params
    # parameters that vary along the row axis (one per row) cannot be shared by a pair
    per_row = profile is None and any(_varies_by_row(p) for p in params)
    pairs = _pairs(x, t, profile)
    if pairs is not None and per_row:
        return _shares_by_row(r, s, alpha, beta, x, t)
    if pairs is None:
        rows = [values_of(p) for p in params]
        return log_dropout_shares(
            rows[0] + values_of(x), rows[1], rows[2], rows[3], values_of(t), fine=True
        )
    px, pt, pk, index = pairs
    zero = px == 0
    ops = ops_for(*(values_of(p) for p in params))
    parts_w, parts_v, order = [], [], []
    for mask, fine in ((zero, True), (~zero, False)):
        if mask.any():
            rr, ss, aa, bb = (
                p.levels[..., pk[mask]] if isinstance(p, Factor) else p for p in params
            )
            w, v = log_dropout_shares(rr + px[mask], ss, aa, bb, pt[mask], fine=fine)
            parts_w.append(w)
            parts_v.append(v)
            order.append(np.flatnonzero(mask))
    position = np.empty(px.size, dtype=np.int64)
    position[np.concatenate(order)] = np.arange(px.size)
    gather = position[index]
    log_w = ops.concatenate(parts_w, axis=-1)
    log_v = ops.concatenate(parts_v, axis=-1)
    return log_w[..., gather], log_v[..., gather]


def _varies_by_row(p: Any) -> bool:
    """Whether a parameter has a value per row (its last axis is not of length 1; for a
    PyTensor variable, by its static shape)."""
    if np.ndim(p) == 0:
        return False
    last = p.type.shape[-1] if is_tensor(p) else np.shape(p)[-1]
    return last != 1


def _shares_by_row(r: Any, s: Any, alpha: Any, beta: Any, x: Any, t: Any) -> tuple[Any, Any]:
    """:func:`log_dropout_shares` of every row when the parameters differ by row (e.g.
    scaled by covariates): concrete data still choose the rule per row, the fine one
    for ``x = 0`` and the coarse one (62 nodes instead of 151) for the others."""
    xv = np.asarray(values_of(x), dtype=float)
    tv = np.broadcast_to(np.asarray(values_of(t), dtype=float), xv.shape)
    ops = ops_for(r, s, alpha, beta)

    def rows(p: Any, index: np.ndarray) -> Any:
        return p[..., index] if _varies_by_row(p) else p

    parts_w, parts_v, order = [], [], []
    for mask, fine in ((xv == 0, True), (xv != 0, False)):
        index = np.flatnonzero(mask)
        if index.size:
            w, v = log_dropout_shares(
                rows(r, index) + xv[index],
                rows(s, index),
                rows(alpha, index),
                rows(beta, index),
                tv[index],
                fine=fine,
            )
            parts_w.append(w)
            parts_v.append(v)
            order.append(index)
    position = np.empty(xv.size, dtype=np.int64)
    position[np.concatenate(order)] = np.arange(xv.size)
    log_w = ops.concatenate(parts_w, axis=-1)
    log_v = ops.concatenate(parts_v, axis=-1)
    return log_w[..., position], log_v[..., position]


def _bracket_terms(
    r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any
) -> tuple[Any, Any, Any]:
    """The two branches of the bracket, on the log scale.

    ``alive = log ψ(T) + log(1 - W(T))`` and ``dead = log ψ(t_x) + log W(t_x)``; their
    ``logaddexp`` is the bracket of the likelihood and ``exp(log ψ(T) - logaddexp)`` is
    ``P(alive)``.
    """
    log_w_tx, _ = _shares_by_pair(r, s, alpha, beta, x, t_x)
    _, log_v_T = _shares_by_pair(r, s, alpha, beta, x, T)
    rows = [values_of(p) for p in (r, alpha, s, beta)]
    ops = ops_for(*rows, values_of(x), values_of(t_x), values_of(T))
    m = rows[0] + values_of(x)
    log_psi_T = _log_psi(ops, m, rows[2], alpha, beta, T)
    log_psi_tx = _log_psi(ops, m, rows[2], alpha, beta, t_x)
    return log_psi_T + log_v_T, log_psi_tx + log_w_tx, log_psi_T


def _log_psi(ops: Any, m: Any, s: Any, alpha: Any, beta: Any, t: Any) -> Any:
    """``log ψ(t) = -(r+x) log(α+t) - s log(β+t)`` (logs once per level of a Factor; per
    (profile, value) pair when ``α, β`` have a value per covariate profile)."""
    log_a = per_level(lambda lv: ops.log(at_levels(alpha, t) + lv), t)
    log_b = per_level(lambda lv: ops.log(at_levels(beta, t) + lv), t)
    return -m * log_a - s * log_b


def _numpy_chunked(fn: Any, params: tuple[Any, ...], *data: Any) -> np.ndarray:
    """``fn(*params, *data)`` in numpy, chunked over the leading parameter axes.

    Parameters shaped e.g. ``(chain, draw, 1)`` against ``n`` rows would otherwise need
    ``chain x draw x n x nodes`` temporaries.
    """
    params = np.broadcast_arrays(*(np.asarray(p, dtype=float) for p in params))
    shape = params[0].shape
    n_rows = max(np.size(values_of(d)) for d in data)
    if params[0].ndim < 2 or params[0].size * n_rows * 151 <= _CHUNK_ELEMENTS:
        return fn(*params, *data)
    lead = int(np.prod(shape[:-1]))
    flat = [p.reshape(lead, shape[-1]) for p in params]
    step = max(1, _CHUNK_ELEMENTS // (shape[-1] * n_rows * 151))
    out = [fn(*(p[i : i + step] for p in flat), *data) for i in range(0, lead, step)]
    result = np.concatenate(out, axis=0)
    return result.reshape(*shape[:-1], result.shape[-1])


def loglik(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any) -> Any:
    """Pareto/NBD log-likelihood of each customer's ``(x, t_x, T)``.

    .. math::

        \\ell = \\log\\frac{\\Gamma(r+x)}{\\Gamma(r)} + r\\log\\alpha + s\\log\\beta
        + \\operatorname{logaddexp}\\left(\\log\\psi(T) + \\log(1 - W(T)),
          \\log\\psi(t_x) + \\log W(t_x)\\right)

    (see the module docstring; equal to FHL 2005's eq. with the ``A_0`` term).

    Parameters
    ----------
    r, alpha, s, beta : array_like or Factor
        Population parameters, broadcast against the data (e.g. ``(chain, draw, 1)``).
        Parameters scaled by covariates may come as :class:`~clvbayes.math.ops.Factor` s
        over the rows' covariate profiles (``levels``: a value per profile along the last
        axis; ``index``: each row's profile; the same index for all of them).
    x, t_x, T : array_like or Factor
        Frequency, recency and age of each row. Factors make the Γ and log terms be
        computed once per level; the integral terms are computed once per distinct
        ``(x, t_x)`` and ``(x, T)`` pair (per ``(profile, x, t)`` triple with factored
        parameters) whenever the data are concrete.

    Returns
    -------
    array
        Log-likelihood of each row (not summed, not weighted).
    """
    args = (r, alpha, s, beta)
    if not any(is_tensor(values_of(a)) for a in args) and not is_tensor(values_of(x)):
        # numpy draws are chunked over their leading axes; parameters per covariate
        # profile are taken to the rows, and then so are the columns
        if any(isinstance(a, Factor) for a in args):
            args = tuple(values_of(a) for a in args)
            x, t_x, T = (values_of(c) for c in (x, t_x, T))
        return _numpy_chunked(_loglik, args, x, t_x, T)
    return _loglik(r, alpha, s, beta, x, t_x, T)


def _loglik(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any) -> Any:
    alive, dead, _ = _bracket_terms(r, alpha, s, beta, x, t_x, T)
    r_x = at_levels(r, x)
    r, alpha, s, beta = (values_of(p) for p in (r, alpha, s, beta))
    ops = ops_for(r, alpha, s, beta, values_of(x), values_of(t_x), values_of(T))
    gamma_ratio = per_level(lambda lv: ops.gammaln(r_x + lv) - ops.gammaln(r_x), x)
    return gamma_ratio + r * ops.log(alpha) + s * ops.log(beta) + ops.logaddexp(alive, dead)


def p_alive(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any) -> Any:
    """Probability that a customer with history ``(x, t_x, T)`` is alive at ``T``.

    .. math::

        P(\\text{alive}) = \\frac{\\psi(T)}{\\psi(T)(1 - W(T)) + \\psi(t_x) W(t_x)}

    i.e. the "alive" term of the likelihood bracket over the whole bracket (FHL 2005,
    eq. 19, without its 2F1). Numpy arrays only need to broadcast.
    """

    def fn(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any) -> Any:
        ops = ops_for(r, alpha, s, beta, values_of(x), values_of(t_x), values_of(T))
        alive, dead, log_psi_T = _bracket_terms(r, alpha, s, beta, x, t_x, T)
        # the ratio is <= 1 exactly; the rule's error (~1e-10, up to ~1e-5 in extreme
        # corners such as x = 0, T = 0.01, max(α, β)/min(α, β) = 1e8) must not push it over
        return ops.minimum(ops.exp(log_psi_T - ops.logaddexp(alive, dead)), 1.0)

    args = (r, alpha, s, beta)
    if not any(is_tensor(a) for a in args) and not is_tensor(values_of(x)):
        # the logs once per distinct x, t_x, T; not with per-customer parameters
        # (covariates), whose terms differ between customers of one level
        one_d = max(np.ndim(values_of(v)) for v in (x, t_x, T)) == 1
        if one_d and shared_by_customers(*args):  # else: plain broadcasting
            x, t_x, T = (Factor.of(v) if not isinstance(v, Factor) else v for v in (x, t_x, T))
        return _numpy_chunked(fn, args, x, t_x, T)
    return fn(r, alpha, s, beta, x, t_x, T)


def expected_purchases(
    r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any, t: Any, *, alive: Any = None
) -> Any:
    """Expected number of purchases in ``(T, T+t]`` given the history ``(x, t_x, T)``.

    Schmittlein et al. (1987), eq. 22 (FHL 2005, eq. 21):

    .. math::

        E[Y(t)\\mid x, t_x, T] = P(\\text{alive})\\,\\frac{r+x}{\\alpha+T}\\,
        \\frac{\\beta+T}{s-1}\\left[1 - \\left(\\frac{\\beta+T}{\\beta+T+t}\\right)^{s-1}\\right]

    The last factor is evaluated as ``(β+T) (-expm1(-(s-1) L)) / (s-1)`` with
    ``L = log1p(t/(β+T))``, and as its limit ``(β+T) L`` within 1e-8 of ``s = 1``.
    ``alive`` may pass :func:`p_alive` at these inputs if already computed.
    """
    if alive is None:
        alive = p_alive(r, alpha, s, beta, x, t_x, T)
    return alive * _alive_purchases(r, alpha, s, beta, x, T)(t)


class CustomerPosterior(NamedTuple):
    """Conditional posterior of a customer's state given ``(r, α, s, β)`` and the history.

    Only the "alive at ``T``" branch matters for the future (a customer who has left buys
    nothing), and on it the rates are independent Gammas (``rate`` = 1/scale).

    Attributes
    ----------
    p_alive : array
        ``P(alive at T)``, :func:`p_alive`.
    lam_shape, lam_rate : array
        ``λ | alive ~ Gamma(r+x, α+T)``.
    mu_shape, mu_rate : array
        ``μ | alive ~ Gamma(s, β+T)``.
    """

    p_alive: Any
    lam_shape: Any
    lam_rate: Any
    mu_shape: Any
    mu_rate: Any


def customer_posterior(
    r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any, *, alive: Any = None
) -> CustomerPosterior:
    """Posterior of a customer's ``(alive, λ, μ)`` at ``T`` (numpy).

    Derivation. Given ``(λ, μ)``, the history has likelihood
    ``λ^x e^{-λT} e^{-μT}`` (alive at ``T``) plus ``∫_{t_x}^T λ^x e^{-λτ} μ e^{-μτ} dτ``
    (died at ``τ``). With the prior ``Gamma(λ; r, α) Gamma(μ; s, β)`` the alive term is a
    product of conjugate kernels, ``Gamma(λ; r+x, α+T) Gamma(μ; s, β+T)``, with mass
    ``Γ(r+x)α^rβ^s / (Γ(r)(α+T)^{r+x}(β+T)^s) = ... ψ(T)``; divided by the marginal
    likelihood (:func:`loglik`) it is :func:`p_alive`. Future purchases then follow from
    the memoryless lifetime: ``τ' ~ Exp(μ)`` after ``T``, purchases
    ``Poisson(λ min(τ', h))`` (:func:`simulate_future`).

    Parameters
    ----------
    r, alpha, s, beta : array_like
        Population parameters (e.g. draws of shape ``(draws, 1)``).
    x, t_x, T : array_like
        Frequency, recency and age.
    alive : array_like, optional
        :func:`p_alive` at these inputs, if already computed (it is the costly part).

    Returns
    -------
    CustomerPosterior
        Fields broadcast to a common shape.
    """
    weight = p_alive(r, alpha, s, beta, x, t_x, T) if alive is None else alive
    weight = np.asarray(weight, dtype=float)
    fields = [
        weight,
        np.add(r, x),
        np.add(alpha, T),
        np.asarray(s, dtype=float),
        np.add(beta, T),
    ]
    return CustomerPosterior(*np.broadcast_arrays(*(np.asarray(f, dtype=float) for f in fields)))


def expected_discounted_purchases(
    r: Any,
    alpha: Any,
    s: Any,
    beta: Any,
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

    :func:`clvbayes.math.clv.discounted_expectation` of :func:`expected_purchases`
    (16 Gauss-Legendre ``nodes`` unless given; numpy only). ``P(alive)`` does not depend on the window, so it is computed once
    (or passed in as ``alive``).
    """
    if alive is None:
        alive = p_alive(r, alpha, s, beta, x, t_x, T)
    given_alive = _alive_purchases(r, alpha, s, beta, x, T)
    return alive * discounted_expectation(
        given_alive, horizon, discount_rate, nodes=16 if nodes is None else nodes
    )


def _alive_purchases(r: Any, alpha: Any, s: Any, beta: Any, x: Any, T: Any) -> Any:
    """``t -> E[purchases in (T, T+t] | alive at T]``, the factor after ``P(alive)``."""

    def fn(t: Any) -> Any:
        ops = ops_for(r, alpha, s, beta, x, T, t)
        L = ops.log1p(t / (beta + T))
        sm1 = s - 1.0
        near_one = ops.where(sm1 > 0, sm1, -sm1) < 1e-8
        safe = ops.where(near_one, 1.0, sm1)
        horizon = ops.where(near_one, L, -ops.expm1(-sm1 * L) / safe)
        return (r + x) / (alpha + T) * (beta + T) * horizon

    return fn


def dert(
    r: Any,
    alpha: Any,
    s: Any,
    beta: Any,
    x: Any,
    t_x: Any,
    T: Any,
    discount_rate: float,
    *,
    alive: Any = None,
    nodes: int = 64,
) -> np.ndarray:
    """Discounted expected residual transactions (CLVTools' DERT; numpy).

    ``E[Σ_j exp(-δ t_j) | x, t_x, T]`` over all purchases after ``T``. A customer alive at
    ``T`` with rates ``(λ, μ)`` makes ``λ / (δ + μ)`` of them in expectation, so (Fader,
    Hardie & Lee 2005, "RFM and CLV", eq. 2)

    .. math::

        \\text{DERT} = P(\\text{alive})\\,\\frac{r+x}{\\alpha+T}\\,
        E\\left[\\frac{1}{δ + μ}\\right]
        = P(\\text{alive})\\,\\frac{r+x}{\\alpha+T}\\,(\\beta+T)^s δ^{s-1}
          U(s, s; δ(\\beta+T)),

    ``μ ~ Gamma(s, β+T)`` and ``U`` Tricomi's confluent hypergeometric function (which
    overflows for large ``s``). It is evaluated as
    :func:`clvbayes.math.clv.discounted_residual` of the alive customer's expected
    purchases, on the time scale ``β + T``, without special functions.
    """
    if alive is None:
        alive = p_alive(r, alpha, s, beta, x, t_x, T)
    residual = discounted_residual(
        _alive_purchases(r, alpha, s, beta, x, T), np.add(beta, T), discount_rate, nodes=nodes
    )
    return np.asarray(alive) * residual


def conditional_pmf(
    r: Any,
    alpha: Any,
    s: Any,
    beta: Any,
    x: Any,
    t_x: Any,
    T: Any,
    t: Any,
    counts: Any,
    *,
    alive: Any = None,
) -> np.ndarray:
    """``P(n purchases in (T, T+t] | x, t_x, T)`` for each ``n`` of ``counts`` (numpy).

    ``n = 0``: ``L(x, t_x, T+t) / L(x, t_x, T)`` (:func:`loglik`): no purchase in the
    window is the same event as the history stretched to ``T + t``. ``n >= 1``: the
    customer must be alive at ``T`` (:func:`p_alive`), with ``λ ~ Gamma(r+x, α+T)`` and a
    remaining lifetime ``τ`` of survival ``S(u) = ((β+T)/(β+T+u))^s``; the purchases are
    ``Poisson(λ min(τ, t))``, so

    .. math::

        P(N = n \\mid \\text{alive}) = S(t)\\,\\mathrm{NB}_n(t)
        + \\int_0^t \\frac{s}{\\beta+T+u} S(u)\\, \\mathrm{NB}_n(u)\\, du,

    ``NB_n(u)`` the Gamma-Poisson pmf of ``n`` purchases in a time ``u``. This is the
    conditional pmf of Fader & Hardie's note 028 (lifetimes'
    ``conditional_probability_of_n_purchases_up_to_time``), integrated numerically
    instead of through differences of Gauss hypergeometric functions (which lose all
    digits for frequent customers): composite Gauss-Legendre in ``v = log(1 + u/c)``,
    ``c`` the time to the first event (``1 / ((r+x)/(α+T) + s/(β+T))``), with panels
    narrow enough for the pmf's peak (~1e-13 against adaptive quadrature).

    Parameters
    ----------
    r, alpha, s, beta : array_like
        Population parameters, broadcast against the data.
    x, t_x, T : array_like
        Frequency, recency and age.
    t : array_like
        Window length.
    counts : sequence of int
        Numbers of purchases ``n >= 0``.
    alive : array_like, optional
        :func:`p_alive` at these inputs, if already computed.

    Returns
    -------
    ndarray
        The broadcast shape of the inputs plus a last axis over ``counts``.
    """
    n = check_counts(counts)
    shape = np.broadcast_shapes(*(np.shape(v) for v in (r, alpha, s, beta, x, t_x, T, t)))
    out = np.zeros((*shape, n.size))
    zero = n == 0
    if zero.any():
        quiet = loglik(r, alpha, s, beta, x, t_x, np.add(T, t)) - loglik(
            r, alpha, s, beta, x, t_x, T
        )
        out[..., zero] = np.minimum(np.exp(np.broadcast_to(quiet, shape)), 1.0)[..., None]
    if (~zero).any():
        if alive is None:
            alive = p_alive(r, alpha, s, beta, x, t_x, T)
        given_alive = pmf_if_alive(np.add(r, x), np.add(alpha, T), s, np.add(beta, T), t, n[~zero])
        out[..., ~zero] = np.broadcast_to(alive, shape)[..., None] * given_alive
    return out


_PMF_NODES = 16  # Gauss-Legendre nodes per panel of :func:`pmf_if_alive`


def pmf_if_alive(shape: Any, rate: Any, s: Any, k: Any, t: Any, counts: Any) -> np.ndarray:
    """``P(N = n | alive)`` in a window ``t`` of a customer with ``λ ~ Gamma(shape, rate)``
    and lifetime survival ``(k/(k+u))^s`` (see :func:`conditional_pmf`; numpy).

    Parameters
    ----------
    shape, rate : array_like
        ``r + x`` and ``α + T``.
    s, k : array_like
        ``s`` and ``β + T``.
    t : array_like
        Window length.
    counts : sequence of int
        Numbers of purchases ``n >= 0``.

    Returns
    -------
    ndarray
        The broadcast shape of the inputs plus a last axis over ``counts``.
    """
    n = check_counts(counts)
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (shape, rate, s, k, t)))
    flat = [v.ravel() for v in arrays]
    rp, m, ss, kk, tt = flat
    log_coef = sp.gammaln(rp[:, None] + n) - sp.gammaln(rp)[:, None] - sp.gammaln(n + 1)

    def log_nb(u: np.ndarray, rows: Any) -> np.ndarray:
        """``log NB_n(u)`` for the elements ``rows`` (``u`` shaped (rows, nodes))."""
        rp_, m_ = rp[rows, None, None], m[rows, None, None]
        log_m_u = np.log(m_ + u[..., None])
        with np.errstate(divide="ignore", invalid="ignore"):
            log_u = np.where(u[..., None] > 0, np.log(u[..., None]), -np.inf)
            powers = np.where(n > 0, n * log_u, 0.0)
        return log_coef[rows, None] + rp_ * (np.log(m_) - log_m_u) + powers - n * log_m_u

    at_end = np.exp(ss[:, None] * (np.log(kk) - np.log(kk + tt))[:, None]) * np.exp(
        log_nb(tt[:, None], slice(None))[:, 0]
    )
    scale = 1.0 / (rp / m + ss / kk)
    top = np.log1p(tt / scale)
    width = 0.5 * np.minimum(1.0, 3.0 * np.sqrt(1.0 / max(n.max(), 1.0) + 1.0 / rp))
    panels = 2 ** np.ceil(np.log2(np.maximum(np.ceil(top / width), 1.0))).astype(np.int64)
    died = np.zeros((rp.size, n.size))
    y, w = np.polynomial.legendre.leggauss(_PMF_NODES)
    for count in np.unique(panels):
        members = np.flatnonzero(panels == count)
        nodes = (np.arange(count)[:, None] + 0.5 * (y + 1.0)).ravel() / count  # (0, 1)
        weights = np.tile(w / (2.0 * count), count)
        step = max(1, _CHUNK_ELEMENTS // (nodes.size * n.size))
        for start in range(0, members.size, step):
            rows = members[start : start + step]
            v = top[rows, None] * nodes
            u = scale[rows, None] * np.expm1(v)
            k_, s_ = kk[rows, None], ss[rows, None]
            log_f = np.log(s_) + np.log(scale[rows, None] + u) - np.log(k_ + u)
            log_f = log_f + s_ * (np.log(k_) - np.log(k_ + u))  # f(u) du/dv
            terms = np.exp(log_f[..., None] + log_nb(u, rows))
            died[rows] = top[rows, None] * np.einsum("j,ejk->ek", weights, terms)
    return (at_end + died).reshape(*arrays[0].shape, n.size)


def loglik_terms(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any) -> LogLikTerms:
    """:func:`loglik` as :class:`~clvbayes.math.ops.LogLikTerms` (one per-row term: the
    integral terms are already shared per distinct pair of values inside)."""
    terms = LogLikTerms()
    terms.row(loglik(r, alpha, s, beta, x, t_x, T))
    return terms


# --- simulation ------------------------------------------------------------------------


def simulate(
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

    Raises
    ------
    TooManyPurchasesError
        Before simulating, if a customer would be expected to make more than
        :data:`~clvbayes.math.processes.MAX_EXPECTED_PURCHASES` repeat purchases in
        ``(0, T]`` (:func:`~clvbayes.math.processes.check_simulated_purchases`): the
        simulation draws one purchase at a time.
    """
    rng = generator(rng)
    params = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (r, alpha, s, beta, T)))
    check_simulated_purchases(
        "simulate_pareto_nbd",
        AliveProcess(1.0, params[0], params[1], life_shape=params[2], life_rate=params[3]),
        params[4],
        dict(zip(("r", "alpha", "s", "beta", "T"), params, strict=True)),
    )
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


def simulate_future(
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
    breaks: Any = None,
) -> FuturePurchases:
    """Simulate Pareto/NBD purchases in ``(0, horizon]`` for a known latent state.

    A customer alive at time 0 (the end of observation) has a remaining lifetime
    ``τ ~ Exponential(mu)`` (memoryless) and buys as a Poisson process of rate ``lam``
    until ``min(τ, horizon)``; a dead one never buys. That is the process of
    :func:`~clvbayes.math.processes.simulate_future_purchases` without
    purchase-triggered dropout over the window ``min(τ, horizon)``, which is what is run
    (so discounting and transaction values work the same way).

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
    discount_rate, value_shape, value_rate, max_block_elements, breaks
        As in :func:`~clvbayes.math.processes.simulate_future_purchases`.

    Returns
    -------
    FuturePurchases

    Raises
    ------
    TooManyPurchasesError
        As :func:`~clvbayes.math.processes.simulate_future_purchases`, before the
        lifetimes are drawn: ``lam * horizon`` against
        :data:`~clvbayes.math.processes.MAX_EXPECTED_PURCHASES` (a known ``mu`` is not
        credited).
    """
    rng = generator(rng)
    lam, mu, alive, horizon = np.broadcast_arrays(
        *(np.asarray(w, dtype=float) for w in (lam, mu, alive, horizon))
    )
    if breaks is not None or np.any(discount_rate):
        check_simulated_purchases(
            "simulate_future_pareto_nbd",
            AliveProcess(alive != 0, lam, 1.0),
            horizon,
            {"lam": lam, "mu": mu, "horizon": horizon},
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
        breaks=breaks,
    )


def sample_alive_state(
    posterior: CustomerPosterior, index: tuple[Any, ...], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draws of the alive branch's ``(λ, μ)`` at ``index`` of the posterior's fields:
    ``λ ~ Gamma(r+x, α+T)``, ``μ ~ Gamma(s, β+T)``."""
    lam = rng.gamma(posterior.lam_shape[index], 1.0 / posterior.lam_rate[index])
    mu = rng.gamma(posterior.mu_shape[index], 1.0 / posterior.mu_rate[index])
    return lam, mu


def alive_process(
    r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any, *, alive: Any = None
) -> AliveProcess:
    """The alive branch of :func:`customer_posterior` for the compiled simulation:
    ``λ ~ Gamma(r+x, α+T)`` and a remaining lifetime ``τ ~ Exponential(μ)``,
    ``μ ~ Gamma(s, β+T)``, no dropout coin (fields broadcast like the inputs)."""
    if alive is None:
        alive = p_alive(r, alpha, s, beta, x, t_x, T)
    return AliveProcess(
        alive,
        np.add(r, x),
        np.add(alpha, T),
        life_shape=np.asarray(s, dtype=float),
        life_rate=np.add(beta, T),
    )


def survival(posterior: CustomerPosterior, times: Any, rng: np.random.Generator) -> np.ndarray:
    """``P(alive at T+t | alive at T) = E[exp(-μ t)] = ((β+T)/(β+T+t))^s`` over
    ``μ ~ Gamma(s, β+T)``, shaped ``(time, ...)`` (``rng`` is not used)."""
    rate = posterior.mu_rate[None]
    times = np.asarray(times, dtype=float).reshape((-1,) + (1,) * np.ndim(posterior.mu_rate))
    return (rate / (rate + times)) ** posterior.mu_shape[None]


def _expected_purchases_new(r: Any, alpha: Any, s: Any, beta: Any, t: Any) -> Any:
    """``E[X(t)]`` of a new customer: a customer observed for no time (``x = t_x = T =
    0``) is alive, so eq. 22 at ``T = 0`` is the unconditional expectation."""
    return expected_purchases(r, alpha, s, beta, 0.0, 0.0, 0.0, t)


COVARIATE_EFFECTS = (
    CovariateEffect("purchase", "alpha", "purchase_coefficient", -1),
    CovariateEffect("dropout", "beta", "dropout_coefficient", -1),
)
"""CLVTools' and pymc-marketing's ``ParetoNBDModel`` conventions: ``alpha_i = alpha
exp(-γ_p'z_i)``, ``beta_i = beta exp(-γ_d'z_i)`` (positive coefficients raise the rates)."""

FAMILY = register(
    TransactionFamily(
        kind="ParetoNBD",
        label="Pareto/NBD",
        name="pareto-nbd",
        params=PARAMS,
        columns=("frequency", "recency", "T"),
        loglik_terms=loglik_terms,
        simulate=simulate,
        factored=("frequency", "recency", "T"),
        reusable_compilation=False,  # the likelihood groups rows by pairs of concrete values
        covariate_effects=COVARIATE_EFFECTS,
        p_alive=p_alive,
        expected_purchases=expected_purchases,
        expected_discounted_purchases=expected_discounted_purchases,
        expected_purchases_new=_expected_purchases_new,
        conditional_pmf=conditional_pmf,
        dert=dert,
        customer_posterior=customer_posterior,
        sample_alive_state=sample_alive_state,
        survival=survival,
        simulate_future=simulate_future,
        alive_process=alive_process,
    )
)
"""The Pareto/NBD family (:mod:`clvbayes.math.family`)."""
