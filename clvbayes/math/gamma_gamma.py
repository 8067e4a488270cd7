"""Gamma-Gamma spend model (Fader & Hardie 2013) maths as plain functions of arrays.

A customer's transaction values are Gamma(p, nu); the scale ``nu`` varies across
customers as Gamma(q, v) (the papers' ``gamma`` is our ``v``, pymc-marketing's name).
The observed data are ``x`` (number of repeat transactions) and ``z`` (their mean value);
only customers with ``x > 0`` carry information about spend.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from clvbayes.math.covariates import CovariateEffect
from clvbayes.math.family import Reparametrisation, SpendFamily, register
from clvbayes.math.ops import (
    Factor,
    LogLikTerms,
    at_levels,
    on_levels,
    ops_for,
    values_of,
)
from clvbayes.math.processes import generator

__all__ = [
    "COVARIATE_EFFECTS",
    "FAMILY",
    "PARAMS",
    "REPARAMETRISATION",
    "TransactionValues",
    "expected_spend",
    "expected_spend_new",
    "frequency_terms",
    "loglik",
    "loglik_terms",
    "simulate",
    "simulate_transaction_values",
    "spend_scale_posterior",
]

PARAMS = ("p", "q", "v")
"""Population parameters, in the order the functions take them."""


def frequency_terms(p: Any, q: Any, x: Any) -> Any:
    """``log Γ(px+q) - log Γ(px) - log Γ(q) + px log x``: the part that depends on x only."""
    ops = ops_for(p, q, x)
    px = p * x
    return ops.gammaln(px + q) - ops.gammaln(px) - ops.gammaln(q) + px * ops.log(x)


def loglik(
    p: Any,
    q: Any,
    v: Any,
    x: Any,
    z: Any,
    *,
    x_levels: Any = None,
    x_index: Any = None,
) -> Any:
    """Log density of each customer's mean spend ``z`` given ``x > 0`` transactions.

    .. math::

        \\ell = \\log\\frac{\\Gamma(px+q)}{\\Gamma(px)\\Gamma(q)} + q\\log v
        + (px-1)\\log z + px\\log x - (px+q)\\log(v + x z)

    Parameters
    ----------
    p, q, v : array_like
        Population parameters (positive).
    x : array_like or Factor
        Number of repeat transactions (must be > 0); a
        :class:`~clvbayes.math.ops.Factor` computes the Gamma functions once per level.
    z : array_like
        Mean value of those transactions (must be > 0).
    x_levels, x_index : array_like, optional
        Shorthand for ``x=Factor(x_levels, x_index)``.

    Returns
    -------
    array
        Log density of each row.
    """
    if x_levels is not None:
        x = Factor(np.asarray(x_levels), np.asarray(x_index))
    return loglik_terms(p, q, v, x, z).per_row()


def loglik_terms(p: Any, q: Any, v: Any, x: Any, z: Any) -> LogLikTerms:
    """:func:`loglik` as a sum of terms (:class:`~clvbayes.math.ops.LogLikTerms`): the
    Gamma-function part per level of ``x``, the rest per row; ``.weighted_sum(counts)``
    is the count-weighted total the PyMC model uses. ``v`` may have a value per covariate
    profile (a :class:`~clvbayes.math.ops.Factor`, ``x`` then crossed with the profiles;
    :func:`~clvbayes.math.ops.at_levels`)."""
    x_values = values_of(x)
    p_rows, q_rows, v_rows = (values_of(a) for a in (p, q, v))
    ops = ops_for(p_rows, q_rows, v_rows, x_values, z)
    terms = LogLikTerms()
    terms.level(on_levels(lambda lv: frequency_terms(at_levels(p, x), at_levels(q, x), lv), x), x)
    px = p_rows * x_values
    terms.parameters(lambda q_, v_: q_ * ops.log(v_), q, v)
    terms.row((px - 1) * ops.log(z) - (px + q_rows) * ops.log(v_rows + x_values * z))
    return terms


def spend_scale_posterior(p: Any, q: Any, v: Any, x: Any, z: Any) -> tuple[Any, Any]:
    """Conditional posterior of a customer's spend scale ``ν``: ``Gamma(px + q, v + xz)``.

    With ``x`` transactions of mean ``z``, the values' Gamma(p, ν) likelihood is
    ``∝ ν^(px) e^(-ν x z)``; times the prior ``Gamma(ν; q, v)`` this is
    ``Gamma(ν; px + q, v + x z)`` (Fader & Hardie 2013, sec. 3). For ``x = 0`` it is the
    prior ``Gamma(q, v)`` (``z`` is then ignored; pass 0).

    Returns
    -------
    shape, rate : array
        Gamma shape and *rate* of ``ν``, broadcast like the inputs.
    """
    ops = ops_for(p, q, v, x, z)
    x_z = ops.where(x > 0, x * z, 0.0)
    return p * x + q, v + x_z


def expected_spend(p: Any, q: Any, v: Any, x: Any, z: Any) -> Any:
    """Conditional expected average transaction value ``E[Z | x, z̄]``.

    .. math::

        E[Z \\mid p, q, v, x, \\bar z] = \\frac{p (v + x \\bar z)}{p x + q - 1}

    (Fader & Hardie 2013, eq. 5): ``E[p/ν]`` under :func:`spend_scale_posterior`. A
    weighted mean of the population mean ``p v/(q-1)`` and the observed ``z̄`` with
    weight ``px/(px+q-1)`` on ``z̄``. For ``x = 0`` it is the population mean,
    :func:`expected_spend_new`. Requires ``q > 1`` (the mean exists).
    """
    shape, rate = spend_scale_posterior(p, q, v, x, z)
    return p * rate / (shape - 1)


def expected_spend_new(p: Any, q: Any, v: Any) -> Any:
    """Population mean transaction value ``p v / (q - 1)`` (``E[p/ν]``, ``ν ~ Gamma(q, v)``)."""
    return expected_spend(p, q, v, 0.0, 0.0)


# --- simulation ------------------------------------------------------------------------


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


def _spend_inputs(p: Any, q: Any, v: Any, frequency: Any) -> tuple[tuple[int, ...], list]:
    arrays = np.broadcast_arrays(*(np.asarray(w, dtype=float) for w in (p, q, v, frequency)))
    return arrays[0].shape, [w.ravel() for w in arrays]


def simulate(
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
    rng = generator(rng)
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

    Same process as :func:`simulate`, but each of the ``x`` values of a
    customer is drawn as ``Gamma(p, rate ν)``; ``monetary_value`` is their mean.
    """
    rng = generator(rng)
    shape, (p, q, v, x) = _spend_inputs(p, q, v, frequency)
    counts = x.astype(np.int64)
    nu = rng.gamma(q, 1.0 / v)
    customer = np.repeat(np.arange(x.size), counts)
    values = rng.gamma(p[customer], 1.0 / nu[customer])
    sums = np.bincount(customer, weights=values, minlength=x.size)
    mean = np.divide(sums, counts, out=np.zeros(x.size), where=counts > 0)
    return TransactionValues(mean.reshape(shape), nu.reshape(shape), values, customer)


# --- the family ------------------------------------------------------------------------


def _pooled(params: Any) -> dict[str, Any]:
    p, q, v = (params[k] for k in PARAMS)
    return {"p": p, "q": q, "mean_spend": p * v / (q - 1.0)}


def _complete(values: Any) -> dict[str, Any]:
    p, q = values["p"], values["q"]
    v = values["v"] if "v" in values else values["mean_spend"] * (q - 1.0) / p
    return {"p": p, "q": q, "v": v}


REPARAMETRISATION = Reparametrisation(
    links={"p": "log", "q": "log_excess", "mean_spend": "log"},
    pooled=_pooled,
    complete=_complete,
)
"""Partial pooling works on ``log p``, ``log(q - 1)`` and the log of the mean spend per
transaction ``p v / (q - 1)`` (this restricts ``q > 1``, i.e. a finite mean spend)."""

COVARIATE_EFFECTS = (CovariateEffect("spend", "v", "spend_coefficient", 1),)
"""``v_i = v exp(γ'z_i)``: ``v`` is the rate of the spend scales ``ν ~ Gamma(q, v)``, so the
mean spend per transaction ``p v_i / (q - 1)`` rises with a positive coefficient."""

FAMILY = register(
    SpendFamily(
        kind="GammaGamma",
        label="Gamma-Gamma",
        params=PARAMS,
        columns=("frequency", "monetary_value"),
        loglik_terms=loglik_terms,
        simulate=simulate,
        reparametrisation=REPARAMETRISATION,
        factored=("frequency",),
        covariate_effects=COVARIATE_EFFECTS,
        expected_spend=expected_spend,
        expected_spend_new=expected_spend_new,
        spend_scale_posterior=spend_scale_posterior,
    )
)
"""The Gamma-Gamma family (:mod:`clvbayes.math.family`)."""
