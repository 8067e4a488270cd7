"""Gamma-Gamma spend model specification over :mod:`clvbayes.math.gamma_gamma`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

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
        gamma, in currency units), as pymc_extras ``Prior`` objects or dicts, or
        ``v_relative`` instead of ``v``: ``v`` divided by the data's mean spend (the
        default, so that the answer does not depend on the currency; see
        :mod:`clvbayes.priors`). With ``segments`` and ``pooling="partial"``: the
        hyperpriors ``p_mu, p_sigma, q_mu, q_sigma, mean_spend_mu_relative`` (or
        ``mean_spend_mu``), ``mean_spend_sigma``
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
        As for :class:`clvbayes.models.BGNBD` (default ``"auto"``: centred for segments
        with at least 1,000 customers).

    Notes
    -----
    Only customers with at least one repeat purchase and a positive mean repeat value
    carry information about spend; the others are left out of the fit (and are predicted
    from the population). The likelihood runs over unique ``(frequency,
    monetary_value)`` rows weighted by counts.
    """

    family = gamma_gamma.FAMILY
    default_priors = GAMMA_GAMMA_PRIORS
    prior_names = frozenset({"p", "q", "v", "v_relative"})
    prior_alternatives: ClassVar[Mapping[frozenset[str], frozenset[str]]] = {
        frozenset({"v"}): frozenset({"v_relative"}),
        frozenset({"v_relative"}): frozenset({"v"}),
    }
    hierarchical_priors = GAMMA_GAMMA_HIERARCHICAL_PRIORS
    hierarchical_alternatives: ClassVar[Mapping[frozenset[str], frozenset[str]]] = {
        frozenset({"mean_spend_mu"}): frozenset({"mean_spend_mu_relative"}),
        frozenset({"mean_spend_mu_relative"}): frozenset({"mean_spend_mu"}),
    }
    selection_note = "only customers with frequency > 0 and monetary_value > 0 are used"

    def select(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Customers with repeat purchases of positive mean value."""
        return (values["frequency"] > 0) & (values["monetary_value"] > 0)

    def data_scale(self, data: Any) -> Any:
        """The data's mean spend: the mean ``monetary_value`` of the customers the model
        uses (what ``v_relative`` and ``mean_spend_mu_relative`` are relative to; numpy
        or PyTensor, so a compiled model takes new data)."""
        counts = data.counts
        return (data["monetary_value"] * counts).sum() / counts.sum()
