"""MBG/NBD (Batislam, Denizel & Filiztekin 2007) maths as plain functions of arrays.

The modified BG/NBD lets a customer drop out right after *every* purchase, the first
one included, so unlike the BG/NBD a customer with ``x = 0`` may be inactive. Notation
as in :mod:`clvbayes.math.bgnbd` (``r, alpha`` Gamma purchase rates, ``a, b`` Beta
dropout probabilities); the likelihood is BTYDplus's ``mbgnbd.LL`` (Platzer 2016).

Every function accepts numpy arrays or PyTensor variables (see :mod:`clvbayes.math._ops`).
"""

from __future__ import annotations

from typing import Any

from clvbayes.math._ops import ops_for, per_level, values_of

__all__ = ["frequency_terms", "loglik", "p_alive"]


def frequency_terms(r: Any, a: Any, b: Any, x: Any) -> tuple[Any, Any]:
    """Parts of the MBG/NBD log-likelihood that depend on the frequency only.

    Returns
    -------
    base : array
        ``log Γ(r+x) - log Γ(r) + log B(a, b+x+1) - log B(a, b)``: the "still alive"
        branch's frequency terms.
    log_odds : array
        ``log(a / (b+x)) = log[B(a+1, b+x) / B(a, b+x+1)]``: the weight of the
        "dropped out after the last purchase" branch relative to the alive one.
    """
    ops = ops_for(r, a, b, x)
    base = ops.gammaln(r + x) - ops.gammaln(r) + ops.betaln(a, b + x + 1) - ops.betaln(a, b)
    return base, ops.log(a) - ops.log(b + x)


def _log1p_dropout_odds(ops: Any, r: Any, x: Any, log_odds: Any, log_a_T: Any, log_a_t: Any) -> Any:
    """``log[1 + a/(b+x) ((α+T)/(α+t_x))^(r+x)] = -log P(alive)``, as a ``logaddexp``."""
    return ops.logaddexp(0.0, log_odds + (r + x) * (log_a_T - log_a_t))


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
    x_values = values_of(x)
    ops = ops_for(r, alpha, a, b, x_values, values_of(t_x), values_of(T))
    base, log_odds = per_level(lambda lv: frequency_terms(r, a, b, lv), x)
    log_a_T = per_level(lambda lv: ops.log(alpha + lv), T)
    log_a_t = per_level(lambda lv: ops.log(alpha + lv), t_x)
    alive = r * ops.log(alpha) - (r + x_values) * log_a_T
    return base + alive + _log1p_dropout_odds(ops, r, x_values, log_odds, log_a_T, log_a_t)


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
