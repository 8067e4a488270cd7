"""BG/NBD model specification: priors + PyMC graph over :mod:`clvbayes.math.bgnbd`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pymc as pm

from clvbayes.data.compress import CompressedRFM
from clvbayes.math import bgnbd
from clvbayes.models.base import ModelSpec
from clvbayes.priors import BGNBD_HIERARCHICAL_PRIORS, BGNBD_PRIORS

__all__ = ["BGNBD"]


class BGNBD(ModelSpec):
    """Beta-Geometric/NBD model of repeat purchases and dropout (Fader, Hardie & Lee 2005).

    Parameters
    ----------
    priors : mapping, optional
        Priors by pymc-marketing's names: ``r``, ``alpha`` and either ``phi_dropout`` and
        ``kappa_dropout`` (mean and concentration of the dropout Beta; the default) or
        ``a`` and ``b``. Values are pymc_extras ``Prior`` objects or their dict form.
        See :mod:`clvbayes.priors` for the defaults and their reasoning. With
        ``segments`` and ``pooling="partial"`` the priors are the hyperpriors ``r_mu,
        r_sigma, purchase_rate_mu, purchase_rate_sigma, phi_dropout_mu,
        phi_dropout_sigma, kappa_dropout_mu, kappa_dropout_sigma``
        (:data:`clvbayes.priors.BGNBD_HIERARCHICAL_PRIORS`).
    segments : str, optional
        Name of an RFM column (channel, cohort, region, ...): each segment gets its own
        ``r, alpha, a, b`` (posterior dims ``chain, draw, segment``).
    pooling : {"partial", "none", "complete"}
        How segments share information (:mod:`clvbayes.models.hierarchy`): a
        hierarchical prior on ``log r``, ``log(r / alpha)`` (the mean purchase rate),
        ``logit phi_dropout`` and ``log kappa_dropout`` (default); independent segments with the plain priors; or
        one population (the plain model, on rows keyed by segment so that its
        pointwise log-likelihood compares with the other two by PSIS-LOO).
    centered : bool or "auto"
        Centred hierarchical prior for all segments (True), for none (False), or
        (``"auto"``, default) for segments with at least 1,000 customers, whose own data
        pin their parameters (:mod:`clvbayes.models.hierarchy`).

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
    >>> by_channel = BGNBD(segments="channel").fit(rfm, seed=1)  # doctest: +SKIP
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
    supports_segments: ClassVar[bool] = True
    segment_links: ClassVar[Mapping[str, str]] = {
        "r": "log",
        "purchase_rate": "log",
        "phi_dropout": "logit",
        "kappa_dropout": "log",
    }
    hierarchical_priors = BGNBD_HIERARCHICAL_PRIORS

    def pooled_values(self, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``r``, ``purchase_rate = r / alpha``, ``phi_dropout = a / (a + b)`` and
        ``kappa_dropout = a + b`` (see :meth:`ModelSpec.pooled_values`)."""
        r, alpha, a, b = (np.asarray(params[k], dtype=float) for k in ("r", "alpha", "a", "b"))
        return {
            "r": r,
            "purchase_rate": r / alpha,
            "phi_dropout": a / (a + b),
            "kappa_dropout": a + b,
        }

    def from_pooled_values(self, pooled: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``r, alpha, a, b`` from :meth:`pooled_values`."""
        r, rate, phi, kappa = (
            np.asarray(pooled[k], dtype=float)
            for k in ("r", "purchase_rate", "phi_dropout", "kappa_dropout")
        )
        return {"r": r, "alpha": r / rate, "a": phi * kappa, "b": (1.0 - phi) * kappa}

    def build(self, data: CompressedRFM, *, likelihood: bool = True) -> pm.Model:
        """PyMC model: priors, then the count-weighted unique-row log-likelihood."""
        with pm.Model(coords=self._model_coords(data)) as model:
            v = self._add_priors(data)
            if "purchase_rate" in v:  # pooled on (r, r/alpha): see clvbayes.priors
                v["alpha"] = pm.Deterministic("alpha", v["r"] / v["purchase_rate"], dims="segment")
            if "a" in v:
                a, b = v["a"], v["b"]
            else:
                dims = "segment" if v["phi_dropout"].ndim else None
                a = pm.Deterministic("a", v["phi_dropout"] * v["kappa_dropout"], dims=dims)
                b = pm.Deterministic("b", (1.0 - v["phi_dropout"]) * v["kappa_dropout"], dims=dims)
            if not likelihood:
                return model
            params = {"r": v["r"], "alpha": v["alpha"], "a": a, "b": b}
            pm.Potential("loglik", self._weighted_loglik(params, data))
        return model

    def row_loglik(self, params: Mapping[str, Any], data: CompressedRFM) -> np.ndarray:
        """Per-row log-likelihood in numpy (same function as the PyMC graph).

        ``params`` broadcast against the rows, e.g. ``(chain, draw, 1)``; for segmented
        fits with partial or no pooling, ``(chain, draw, n_segments)``.
        """
        return self._rows_loglik(params, data)

    def _population_terms(self, params: Mapping[str, Any], data: CompressedRFM) -> Any:
        """One population's log-likelihood: :func:`clvbayes.math.bgnbd.loglik_terms`."""
        return bgnbd.loglik_terms(
            params["r"],
            params["alpha"],
            params["a"],
            params["b"],
            data.factor("frequency"),
            data.factor("recency"),
            data.factor("T"),
        )
