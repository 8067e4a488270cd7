"""Pareto/NBD model specification over :mod:`clvbayes.math.pareto_nbd`."""

from __future__ import annotations

from clvbayes.math import pareto_nbd
from clvbayes.models.base import ModelSpec
from clvbayes.priors import PARETO_NBD_PRIORS

__all__ = ["ParetoNBD"]


class ParetoNBD(ModelSpec):
    """Pareto/NBD model of purchases and unobserved dropout in continuous time.

    Schmittlein, Morrison & Colombo (1987); likelihood as in Fader, Hardie & Lee (2005),
    evaluated without the Gauss hypergeometric function (see
    :mod:`clvbayes.math.pareto_nbd`), so it is finite for every parameter value.

    Parameters
    ----------
    priors : mapping, optional
        Priors for ``r, alpha, s, beta`` (pymc-marketing's names), as pymc_extras
        ``Prior`` objects or dicts. Defaults: :data:`clvbayes.priors.PARETO_NBD_PRIORS`.

    Notes
    -----
    The log-likelihood is summed over unique ``(frequency, recency, T)`` rows weighted
    by counts; the integral terms are evaluated once per distinct ``(frequency,
    recency)`` and ``(frequency, T)`` pair.
    """

    family = pareto_nbd.FAMILY
    default_priors = PARETO_NBD_PRIORS
    prior_names = frozenset({"r", "alpha", "s", "beta"})
