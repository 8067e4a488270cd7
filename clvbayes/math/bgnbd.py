"""BG/NBD (Fader, Hardie & Lee 2005) maths as plain functions of arrays.

Notation follows the paper: ``x`` repeat purchases, ``t_x`` time of the last one, ``T``
time since the first purchase, all in the same time unit; population parameters
``r, alpha`` (Gamma purchase rates) and ``a, b`` (Beta dropout probabilities).

Every function accepts numpy arrays or PyTensor variables (see :mod:`clvbayes.math._ops`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clvbayes.math._ops import Factor, ops_for, per_level, values_of

__all__ = ["frequency_terms", "loglik"]


def frequency_terms(r: Any, alpha: Any, a: Any, b: Any, x: Any) -> tuple[Any, Any]:
    """Parts of the BG/NBD log-likelihood that depend on the frequency only.

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters (positive).
    x : array_like
        Frequencies (repeat purchases), usually the *distinct* frequencies of a data set.

    Returns
    -------
    base : array
        ``log Γ(r+x) - log Γ(r) + log B(a, b+x) - log B(a, b)``.
    log_odds : array
        ``log(a / (b + x - 1))`` for ``x > 0``: the log of
        ``B(a+1, b+x-1) / B(a, b+x)``, the weight of the "dropped out after the last
        purchase" branch. Set to 0 where ``x == 0`` (that branch does not exist there);
        the argument is made safe first, so no NaN reaches a gradient.
    """
    ops = ops_for(r, alpha, a, b, x)
    base = ops.gammaln(r + x) - ops.gammaln(r) + ops.betaln(a, b + x) - ops.betaln(a, b)
    has_repeat = x > 0
    safe_denominator = ops.where(has_repeat, b + x - 1, 1.0)
    log_odds = ops.where(has_repeat, ops.log(a) - ops.log(safe_denominator), 0.0)
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
) -> Any:
    """BG/NBD log-likelihood of each customer's ``(x, t_x, T)``.

    .. math::

        \\ell = \\log\\frac{\\Gamma(r+x)\\alpha^r}{\\Gamma(r)}
        + \\log\\frac{B(a, b+x)}{B(a, b)} - (r+x)\\log(\\alpha+T)
        + \\log\\left[1 + \\delta_{x>0}\\frac{a}{b+x-1}
          \\left(\\frac{\\alpha+T}{\\alpha+t_x}\\right)^{r+x}\\right]

    The last term is evaluated as ``logaddexp(0, log_odds + (r+x) log((α+T)/(α+t_x)))``
    on the log scale, so no power is ever formed: the spreadsheet's ``#NUM!`` overflow
    (Fader & Hardie, note 027) cannot happen, and large ``x`` or ``T`` stay finite.

    Parameters
    ----------
    r, alpha, a, b : array_like
        Population parameters, broadcast against the data.
    x, t_x, T : array_like or Factor
        Frequency, recency and age of each row, in the same time unit. Each may be a
        :class:`~clvbayes.math._ops.Factor` (distinct levels + row index): the terms that
        depend on that column alone (the Γ and B functions for ``x``, the logarithms for
        ``t_x`` and ``T``) are then computed once per level and gathered. This is what
        makes the likelihood cost little more than one ``logaddexp`` per unique row.
    x_levels, x_index : array_like, optional
        Shorthand for ``x=Factor(x_levels, x_index)``.

    Returns
    -------
    array
        Log-likelihood of each row (not summed, not weighted).
    """
    if x_levels is not None:
        x = Factor(np.asarray(x_levels), np.asarray(x_index))
    x_values = values_of(x)
    ops = ops_for(r, alpha, a, b, x_values, values_of(t_x), values_of(T))
    base, log_odds = per_level(lambda lv: frequency_terms(r, alpha, a, b, lv), x)
    log_alpha_T = per_level(lambda lv: ops.log(alpha + lv), T)
    log_alpha_t = per_level(lambda lv: ops.log(alpha + lv), t_x)
    alive_branch = r * ops.log(alpha) - (r + x_values) * log_alpha_T
    # log of [B(a+1,b+x-1)/B(a,b+x)] * ((alpha+T)/(alpha+t_x))^(r+x); ignored when x == 0.
    log_ratio = log_odds + (r + x_values) * (log_alpha_T - log_alpha_t)
    dropout_term = ops.where(x_values > 0, ops.logaddexp(0.0, log_ratio), 0.0)
    return base + alive_branch + dropout_term
