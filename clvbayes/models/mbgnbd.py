"""MBG/NBD model specification: priors + PyMC graph over :mod:`clvbayes.math.mbgnbd`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pymc as pm

from clvbayes.data.compress import CompressedRFM
from clvbayes.math import mbgnbd
from clvbayes.models.base import ModelSpec
from clvbayes.priors import BGNBD_PRIORS

__all__ = ["MBGNBD"]


class MBGNBD(ModelSpec):
    """Modified BG/NBD (Batislam, Denizel & Filiztekin 2007): dropout possible at x = 0.

    Parameters
    ----------
    priors : mapping, optional
        Priors by pymc-marketing's names: ``r``, ``alpha`` and either ``phi_dropout`` and
        ``kappa_dropout`` (mean and concentration of the dropout Beta; the default) or
        ``a`` and ``b``. Values are pymc_extras ``Prior`` objects or their dict form.
        Defaults are the BG/NBD's (:data:`clvbayes.priors.BGNBD_PRIORS`): the parameters
        have the same meaning and similar magnitudes (CDNOW weeks: r=0.53, alpha=6.2).

    Notes
    -----
    The likelihood is summed over the unique ``(frequency, recency, T)`` rows weighted by
    their customer counts, with the Gamma/Beta-function terms computed once per distinct
    frequency. The same numpy function gives the pointwise log-likelihood
    (:meth:`FittedModel.log_likelihood`), so nothing is hidden in an opaque potential.

    Examples
    --------
    >>> fitted = MBGNBD().fit(rfm, seed=1)            # doctest: +SKIP
    >>> fitted.summary()                             # doctest: +SKIP
    """

    kind: ClassVar[str] = "MBGNBD"
    columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    params: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    default_priors = BGNBD_PRIORS
    prior_names = frozenset({"r", "alpha", "a", "b", "phi_dropout", "kappa_dropout"})
    prior_alternatives: ClassVar[Mapping[frozenset[str], frozenset[str]]] = {
        frozenset({"a", "b"}): frozenset({"phi_dropout", "kappa_dropout"}),
        frozenset({"phi_dropout", "kappa_dropout"}): frozenset({"a", "b"}),
    }

    def build(self, data: CompressedRFM, *, likelihood: bool = True) -> pm.Model:
        """PyMC model: priors, then the count-weighted unique-row log-likelihood."""
        with pm.Model() as model:
            v = self._add_priors()
            if "a" in v:
                a, b = v["a"], v["b"]
            else:
                a = pm.Deterministic("a", v["phi_dropout"] * v["kappa_dropout"])
                b = pm.Deterministic("b", (1.0 - v["phi_dropout"]) * v["kappa_dropout"])
            if not likelihood:
                return model
            params = {"r": v["r"], "alpha": v["alpha"], "a": a, "b": b}
            pm.Potential("loglik", self._population_terms(params, data).weighted_sum(data.counts))
        return model

    def row_loglik(self, params: Mapping[str, Any], data: CompressedRFM) -> np.ndarray:
        """Per-row log-likelihood in numpy (same function as the PyMC graph)."""
        return self._population_loglik(params, data)

    def _population_terms(self, params: Mapping[str, Any], data: CompressedRFM) -> Any:
        """The log-likelihood: :func:`clvbayes.math.mbgnbd.loglik_terms`."""
        return mbgnbd.loglik_terms(
            params["r"],
            params["alpha"],
            params["a"],
            params["b"],
            data.factor("frequency"),
            data.factor("recency"),
            data.factor("T"),
        )
