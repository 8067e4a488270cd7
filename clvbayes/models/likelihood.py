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

from clvbayes.models.covariates import add_coefficients, covariate_coords, row_parameters
from clvbayes.models.hierarchy import by_segment, sum_by_segment

__all__ = [
    "build_model",
    "population_terms",
    "row_loglik",
    "split_coefficients",
    "weighted_loglik",
]


def population_terms(
    spec: Any,
    params: Mapping[str, Any],
    data: Any,
    coefficients: Mapping[str, Any] | None = None,
) -> Any:
    """One population's log-likelihood terms on ``data``'s rows (``params`` broadcast
    against the rows).

    With covariates (``coefficients`` of the spec's design) the parameters they scale get
    a value per row (:func:`clvbayes.models.covariates.row_parameters`) and the columns
    enter as plain arrays (a per-level term would need one level per parameter value).
    """
    family = spec.family
    if spec.design:
        params = row_parameters(spec.design, params, coefficients or {}, data)
        return family.terms(params, {c: data[c] for c in spec.columns})
    columns = {c: data.factor(c) if c in family.factored else data[c] for c in spec.columns}
    return family.terms(params, columns)


def split_coefficients(
    spec: Any, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``params`` as the population parameters (per segment, if any) and the covariate
    coefficients (shared by all segments)."""
    names = set(spec.design.coefficients)
    base = {k: v for k, v in params.items() if k not in names}
    return base, {k: v for k, v in params.items() if k in names}


def weighted_loglik(spec: Any, params: Mapping[str, Any], data: Any) -> Any:
    """``Σ counts x per-row log-likelihood`` (the PyMC model's potential), with the
    per-level terms summed per level (:class:`~clvbayes.math.ops.LogLikTerms`); per
    segment block when the parameters are per segment. ``params`` holds the covariate
    coefficients too, if any."""
    base, coefficients = split_coefficients(spec, params)

    def total(p: Mapping[str, Any], block: Any) -> Any:
        return population_terms(spec, p, block, coefficients).weighted_sum(block.counts)

    if data.segmented and spec.pooling != "complete":
        return sum_by_segment(total, base, data)
    return total(base, data)


def row_loglik(spec: Any, params: Mapping[str, Any], data: Any) -> Any:
    """Log-likelihood per unique row (numpy or PyTensor; the PyMC graph's function).

    ``params`` broadcast against the rows, e.g. ``(chain, draw, 1)``; for segmented specs
    with partial or no pooling they have the segment axis last, e.g. ``(chain, draw,
    n_segments)``, and each block of rows uses its segment's values. Covariate
    coefficients, if any, are draws ``(chain, draw, n_covariates)``.
    """
    base, coefficients = split_coefficients(spec, params)

    def per_row(p: Mapping[str, Any], block: Any) -> Any:
        return population_terms(spec, p, block, coefficients).per_row()

    if data.segmented and spec.pooling != "complete":
        return by_segment(per_row, base, data)
    return per_row(base, data)


def build_model(spec: Any, data: Any, *, likelihood: bool = True) -> pm.Model:
    """The PyMC model of ``spec`` on compressed data (priors only without ``likelihood``).

    Priors are created on the spec's parametrisation; parameters that are not sampled
    directly (e.g. ``a, b`` from ``phi_dropout, kappa_dropout``, or ``alpha`` from the
    pooled mean purchase rate) are derived by the family's reparametrisation and kept as
    deterministics; the potential is the count-weighted sum of the family's
    log-likelihood terms over the unique rows. With covariates the priors describe the
    typical customer and the coefficients are added
    (:func:`clvbayes.models.covariates.add_coefficients`); the parameters kept are those
    at covariates 0.
    """
    coords = {"segment": list(data.segments)} if data.segmented else {}
    coords.update(covariate_coords(spec.design))
    with pm.Model(coords=coords) as model:
        created = spec.add_priors(data)
        params = spec.complete(created)
        coefficients: dict[str, Any] = {}
        if spec.design:
            params, coefficients = add_coefficients(spec.design, spec.priors, params, data)
        for name in spec.params:
            if name not in model.named_vars:
                dims = "segment" if getattr(params[name], "ndim", 0) else None
                params[name] = pm.Deterministic(name, params[name], dims=dims)
        if likelihood:
            pm.Potential("loglik", weighted_loglik(spec, {**params, **coefficients}, data))
    return model
