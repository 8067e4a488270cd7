"""Gamma-Gamma spend model specification over :mod:`clvbayes.math.gamma_gamma`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pymc as pm

from clvbayes.data.compress import CompressedRFM
from clvbayes.math import gamma_gamma
from clvbayes.models.base import ModelSpec
from clvbayes.priors import GAMMA_GAMMA_PRIORS

__all__ = ["GammaGamma"]


class GammaGamma(ModelSpec):
    """Gamma-Gamma model of average transaction value (Fader & Hardie 2013).

    Parameters
    ----------
    priors : mapping, optional
        Priors for ``p``, ``q``, ``v`` (pymc-marketing's names; ``v`` is the papers'
        gamma), as pymc_extras ``Prior`` objects or dicts. Defaults in
        :mod:`clvbayes.priors`.

    Notes
    -----
    Only customers with at least one repeat purchase and a positive mean repeat value
    carry information about spend; the others are left out of the fit (and are predicted
    from the population). The likelihood runs over unique ``(frequency,
    monetary_value)`` rows weighted by counts.
    """

    kind: ClassVar[str] = "GammaGamma"
    columns: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")
    params: ClassVar[tuple[str, ...]] = ("p", "q", "v")
    default_priors = GAMMA_GAMMA_PRIORS
    prior_names = frozenset({"p", "q", "v"})
    selection_note = "only customers with frequency > 0 and monetary_value > 0 are used"

    def select(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Customers with repeat purchases of positive mean value."""
        return (values["frequency"] > 0) & (values["monetary_value"] > 0)

    def build(self, data: CompressedRFM, *, likelihood: bool = True) -> pm.Model:
        """PyMC model: priors, then the count-weighted unique-row log-likelihood."""
        with pm.Model() as model:
            v = self._add_priors()
            if not likelihood:
                return model
            ll = gamma_gamma.loglik(
                v["p"],
                v["q"],
                v["v"],
                data.factor("frequency"),
                data["monetary_value"],
            )
            pm.Potential("loglik", (data.counts * ll).sum())
        return model

    def row_loglik(self, params: Mapping[str, Any], data: CompressedRFM) -> np.ndarray:
        """Per-row log-likelihood in numpy (same function as the PyMC graph)."""
        return gamma_gamma.loglik(
            params["p"],
            params["q"],
            params["v"],
            data.factor("frequency"),
            data["monetary_value"],
        )
