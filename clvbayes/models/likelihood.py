"""A spec's likelihood on compressed data, and its PyMC model.

Everything that assembles the family's log-likelihood terms
(:mod:`clvbayes.math.family`) into a model lives here: which columns enter as
:class:`~clvbayes.math.ops.Factor` s, how segmented data are evaluated block by block
with each segment's parameters, the count-weighted potential, and the PyMC graph. New
model features enter here as extra inputs to the same terms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pymc as pm

from clvbayes.models.hierarchy import by_segment, sum_by_segment
from clvbayes.models.shared_data import SharedRFM

__all__ = ["build_model", "population_terms", "row_loglik", "weighted_loglik"]


def population_terms(spec: Any, params: Mapping[str, Any], data: Any) -> Any:
    """One population's log-likelihood terms on ``data``'s rows (``params`` broadcast
    against the rows)."""
    family = spec.family
    columns = {c: data.factor(c) if c in family.factored else data[c] for c in spec.columns}
    return family.terms(params, columns)


def weighted_loglik(spec: Any, params: Mapping[str, Any], data: Any) -> Any:
    """``Σ counts x per-row log-likelihood`` (the PyMC model's potential), with the
    per-level terms summed per level (:class:`~clvbayes.math.ops.LogLikTerms`); per
    segment block when the parameters are per segment."""

    def total(p: Mapping[str, Any], block: Any) -> Any:
        return population_terms(spec, p, block).weighted_sum(block.counts)

    if data.segmented and spec.pooling != "complete":
        return sum_by_segment(total, params, data)
    return total(params, data)


def row_loglik(spec: Any, params: Mapping[str, Any], data: Any) -> Any:
    """Log-likelihood per unique row (numpy or PyTensor; the PyMC graph's function).

    ``params`` broadcast against the rows, e.g. ``(chain, draw, 1)``; for segmented specs
    with partial or no pooling they have the segment axis last, e.g. ``(chain, draw,
    n_segments)``, and each block of rows uses its segment's values.
    """

    def per_row(p: Mapping[str, Any], block: Any) -> Any:
        return population_terms(spec, p, block).per_row()

    if data.segmented and spec.pooling != "complete":
        return by_segment(per_row, params, data)
    return per_row(params, data)


def build_model(spec: Any, data: Any, *, likelihood: bool = True) -> pm.Model:
    """The PyMC model of ``spec`` on compressed data (priors only without ``likelihood``).

    Priors are created on the spec's parametrisation; parameters that are not sampled
    directly (e.g. ``a, b`` from ``phi_dropout, kappa_dropout``, or ``alpha`` from the
    pooled mean purchase rate) are derived by the family's reparametrisation and kept as
    deterministics; the potential is the count-weighted sum of the family's
    log-likelihood terms over the unique rows.
    """
    coords = {"segment": list(data.segments)} if data.segmented else {}
    with pm.Model(coords=coords) as model:
        created = spec.add_priors(data)
        params = spec.complete(created)
        for name in spec.params:
            if name not in created:
                dims = "segment" if getattr(params[name], "ndim", 0) else None
                params[name] = pm.Deterministic(name, params[name], dims=dims)
        if likelihood:
            loglik = weighted_loglik(spec, params, data)
            if isinstance(data, SharedRFM):  # data-only parts become inputs, as constants fold
                loglik = data.hoist(loglik)
            pm.Potential("loglik", loglik)
    return model
