"""Gamma-Gamma spend model (Fader & Hardie 2013) maths as plain functions of arrays.

A customer's transaction values are Gamma(p, nu); the scale ``nu`` varies across
customers as Gamma(q, v) (the papers' ``gamma`` is our ``v``, pymc-marketing's name).
The observed data are ``x`` (number of repeat transactions) and ``z`` (their mean value);
only customers with ``x > 0`` carry information about spend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clvbayes.math._ops import Factor, LogLikTerms, on_levels, ops_for, values_of

__all__ = [
    "expected_spend",
    "expected_spend_new",
    "frequency_terms",
    "loglik",
    "loglik_terms",
    "spend_scale_posterior",
]


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
        :class:`~clvbayes.math._ops.Factor` computes the Gamma functions once per level.
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
    """:func:`loglik` as a sum of terms (:class:`~clvbayes.math._ops.LogLikTerms`): the
    Gamma-function part per level of ``x``, the rest per row; ``.weighted_sum(counts)``
    is the count-weighted total the PyMC model uses."""
    x_values = values_of(x)
    ops = ops_for(p, q, v, x_values, z)
    terms = LogLikTerms()
    terms.level(on_levels(lambda lv: frequency_terms(p, q, lv), x), x)
    px = p * x_values
    terms.row(q * ops.log(v) + (px - 1) * ops.log(z) - (px + q) * ops.log(v + x_values * z))
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
