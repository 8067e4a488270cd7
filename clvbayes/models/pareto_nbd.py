"""Pareto/NBD model specification: priors + PyMC graph over :mod:`clvbayes.math.pareto_nbd`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pymc as pm

from clvbayes.data.compress import CompressedRFM
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

    kind: ClassVar[str] = "ParetoNBD"
    columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    params: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    default_priors = PARETO_NBD_PRIORS
    prior_names = frozenset({"r", "alpha", "s", "beta"})
    reusable_compilation: ClassVar[bool] = False  # pairs of concrete values shape the graph

    def build(self, data: CompressedRFM, *, likelihood: bool = True) -> pm.Model:
        """PyMC model: priors, then the count-weighted unique-row log-likelihood."""
        with pm.Model() as model:
            v = self._add_priors()
            if not likelihood:
                return model
            ll = self._loglik(v, data)
            pm.Potential("loglik", (data.counts * ll).sum())
        return model

    def row_loglik(self, params: Mapping[str, Any], data: CompressedRFM) -> np.ndarray:
        """Per-row log-likelihood in numpy (same function as the PyMC graph)."""
        return self._loglik(params, data)

    @staticmethod
    def _loglik(v: Mapping[str, Any], data: CompressedRFM) -> Any:
        return pareto_nbd.loglik(
            v["r"],
            v["alpha"],
            v["s"],
            v["beta"],
            data.factor("frequency"),
            data.factor("recency"),
            data.factor("T"),
        )
