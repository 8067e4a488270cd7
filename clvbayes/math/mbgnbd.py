"""MBG/NBD (Batislam, Denizel & Filiztekin 2007) maths: the BG/NBD's with the flag set.

The modified BG/NBD lets a customer drop out right after *every* purchase, the first
one included, so unlike the BG/NBD a customer with ``x = 0`` may be inactive. The
formulas are those of :mod:`clvbayes.math.bgnbd` with ``modified=True`` (one
implementation, see its module docstring); this module names them for the MBG/NBD and
registers its family. The likelihood is BTYDplus's ``mbgnbd.LL`` (Platzer 2016).
"""

from __future__ import annotations

from functools import partial, update_wrapper
from typing import Any

from clvbayes.math import bgnbd
from clvbayes.math.family import register

__all__ = [
    "FAMILY",
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
    "simulate",
]

FAMILY = register(bgnbd.family("MBGNBD", "MBG/NBD", modified=True, name="mbgnbd"))
"""The MBG/NBD family (:mod:`clvbayes.math.family`)."""

loglik = update_wrapper(partial(bgnbd.loglik, modified=True), bgnbd.loglik)
loglik_terms = FAMILY.loglik_terms
p_alive = FAMILY.p_alive
expected_purchases = FAMILY.expected_purchases
expected_discounted_purchases = FAMILY.expected_discounted_purchases
expected_purchases_new = FAMILY.expected_purchases_new
customer_posterior = FAMILY.customer_posterior
conditional_pmf = FAMILY.conditional_pmf
dert = FAMILY.dert
simulate = FAMILY.simulate
prob_purchases = update_wrapper(partial(bgnbd.prob_purchases, modified=True), bgnbd.prob_purchases)


def frequency_terms(r: Any, a: Any, b: Any, x: Any) -> tuple[Any, Any]:
    """The MBG/NBD's frequency-only terms (:func:`clvbayes.math.bgnbd.frequency_terms`).

    Returns ``base = log Γ(r+x) - log Γ(r) + log B(a, b+x+1) - log B(a, b)`` and
    ``log_odds = log(a / (b+x))``.
    """
    return bgnbd.frequency_terms(r, None, a, b, x, modified=True)
