"""BG/NBD model specification: priors + PyMC graph over :mod:`clvbayes.math.bgnbd`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pymc as pm

from clvbayes.data.compress import CompressedRFM
from clvbayes.math import bgnbd
from clvbayes.models.base import ModelSpec
from clvbayes.priors import BGNBD_PRIORS

__all__ = ["BGNBD"]


class BGNBD(ModelSpec):
    """Beta-Geometric/NBD model of repeat purchases and dropout (Fader, Hardie & Lee 2005).

    Parameters
    ----------
    priors : mapping, optional
        Priors by pymc-marketing's names: ``r``, ``alpha`` and either ``phi_dropout`` and
        ``kappa_dropout`` (mean and concentration of the dropout Beta; the default) or
        ``a`` and ``b``. Values are pymc_extras ``Prior`` objects or their dict form.
        See :mod:`clvbayes.priors` for the defaults and their reasoning.

    Notes
    -----
    The likelihood is summed over the unique ``(frequency, recency, T)`` rows weighted by
    their customer counts, with the Gamma/Beta-function terms computed once per distinct
    frequency. The same numpy function gives the pointwise log-likelihood
    (:meth:`FittedModel.log_likelihood`), so nothing is hidden in an opaque potential.

    Examples
    --------
    >>> fitted = BGNBD().fit(rfm, seed=1)            # doctest: +SKIP
    >>> fitted.summary()                             # doctest: +SKIP
    """

    kind: ClassVar[str] = "BGNBD"
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
            ll = bgnbd.loglik(
                v["r"],
                v["alpha"],
                a,
                b,
                data.factor("frequency"),
                data.factor("recency"),
                data.factor("T"),
            )
            pm.Potential("loglik", (data.counts * ll).sum())
        return model

    def row_loglik(self, params: Mapping[str, Any], data: CompressedRFM) -> np.ndarray:
        """Per-row log-likelihood in numpy (same function as the PyMC graph)."""
        return bgnbd.loglik(
            params["r"],
            params["alpha"],
            params["a"],
            params["b"],
            data.factor("frequency"),
            data.factor("recency"),
            data.factor("T"),
        )
