"""Gamma-Gamma spend model specification over :mod:`clvbayes.math.gamma_gamma`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pymc as pm

from clvbayes.data.compress import CompressedRFM
from clvbayes.math import gamma_gamma
from clvbayes.models.base import ModelSpec
from clvbayes.priors import GAMMA_GAMMA_HIERARCHICAL_PRIORS, GAMMA_GAMMA_PRIORS

__all__ = ["GammaGamma"]


class GammaGamma(ModelSpec):
    """Gamma-Gamma model of average transaction value (Fader & Hardie 2013).

    Parameters
    ----------
    priors : mapping, optional
        Priors for ``p``, ``q``, ``v`` (pymc-marketing's names; ``v`` is the papers'
        gamma), as pymc_extras ``Prior`` objects or dicts. Defaults in
        :mod:`clvbayes.priors`. With ``segments`` and ``pooling="partial"``: the
        hyperpriors ``p_mu, p_sigma, q_mu, q_sigma, mean_spend_mu, mean_spend_sigma``
        (:data:`clvbayes.priors.GAMMA_GAMMA_HIERARCHICAL_PRIORS`).
    segments : str, optional
        RFM column defining segments; each gets its own ``p, q, v`` (dims ``chain,
        draw, segment``). Segments are learnt from all customers, so a segment whose
        customers have no repeat purchases still gets parameters (from the population
        under partial pooling, from the prior under none), with a warning.
    pooling : {"partial", "none", "complete"}
        Hierarchical prior on ``log p``, ``log(q - 1)`` and the log of the mean spend
        per transaction ``p v / (q - 1)`` (default; this restricts ``q > 1``, i.e. a
        finite mean spend), independent segments, or one population (see
        :class:`clvbayes.models.BGNBD`).
    centered : bool or "auto"
        Centred hierarchical prior for all segments (True), for none (False), or
        (``"auto"``, default) for segments with at least 1,000 customers, whose own data
        pin their parameters (:mod:`clvbayes.models.hierarchy`).

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
    supports_segments: ClassVar[bool] = True
    segment_links: ClassVar[Mapping[str, str]] = {
        "p": "log",
        "q": "log_excess",
        "mean_spend": "log",
    }
    hierarchical_priors = GAMMA_GAMMA_HIERARCHICAL_PRIORS

    def select(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Customers with repeat purchases of positive mean value."""
        return (values["frequency"] > 0) & (values["monetary_value"] > 0)

    def pooled_values(self, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``p``, ``q`` and ``mean_spend = p v / (q - 1)`` (see
        :meth:`ModelSpec.pooled_values`)."""
        p, q, v = (np.asarray(params[k], dtype=float) for k in ("p", "q", "v"))
        return {"p": p, "q": q, "mean_spend": p * v / (q - 1.0)}

    def from_pooled_values(self, pooled: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``p, q, v`` from :meth:`pooled_values`."""
        p, q, mean = (np.asarray(pooled[k], dtype=float) for k in ("p", "q", "mean_spend"))
        return {"p": p, "q": q, "v": mean * (q - 1.0) / p}

    def build(self, data: CompressedRFM, *, likelihood: bool = True) -> pm.Model:
        """PyMC model: priors, then the count-weighted unique-row log-likelihood."""
        with pm.Model(coords=self._model_coords(data)) as model:
            v = self._add_priors(data)
            if "mean_spend" in v:  # pooled on (p, q, mean spend): see clvbayes.priors
                scale = v["mean_spend"] * (v["q"] - 1.0) / v["p"]
                v["v"] = pm.Deterministic("v", scale, dims="segment")
            if not likelihood:
                return model
            pm.Potential("loglik", self._weighted_loglik(v, data))
        return model

    def row_loglik(self, params: Mapping[str, Any], data: CompressedRFM) -> np.ndarray:
        """Per-row log-likelihood in numpy (same function as the PyMC graph).

        ``params`` broadcast against the rows, e.g. ``(chain, draw, 1)``; for segmented
        fits with partial or no pooling, ``(chain, draw, n_segments)``.
        """
        return self._rows_loglik(params, data)

    def _population_terms(self, params: Mapping[str, Any], data: CompressedRFM) -> Any:
        """One population's log-density: :func:`clvbayes.math.gamma_gamma.loglik_terms`."""
        return gamma_gamma.loglik_terms(
            params["p"],
            params["q"],
            params["v"],
            data.factor("frequency"),
            data["monetary_value"],
        )
