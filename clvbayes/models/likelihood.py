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

import numpy as np
import pymc as pm

from clvbayes.math.ops import Factor, is_tensor
from clvbayes.models.calendar import operational_columns, time_effect
from clvbayes.models.covariates import (
    add_coefficients,
    covariate_coords,
    factored_parameters,
    prior_variable_names,
    profile_parameters,
)
from clvbayes.models.hierarchy import by_segment, segment_priors, sum_by_segment
from clvbayes.models.shared_data import SharedRFM

__all__ = [
    "MAX_SEGMENT_BLOCKS",
    "build_model",
    "create_priors",
    "population_terms",
    "row_loglik",
    "rows_by_segment",
    "split_coefficients",
    "weighted_loglik",
]


def population_terms(
    spec: Any,
    params: Mapping[str, Any],
    data: Any,
    coefficients: Mapping[str, Any] | None = None,
    clock: tuple[Any, Any] | None = None,
    *,
    profile: bool = False,
    segment_axis: bool = False,
) -> Any:
    """One population's log-likelihood terms on ``data``'s rows (``params`` broadcast
    against the rows).

    With covariates (``coefficients`` of the spec's design) the parameters they scale get
    a value per covariate profile (:func:`clvbayes.models.covariates.factored_parameters`)
    and the factored columns are crossed with the profiles
    (:meth:`~clvbayes.data.compress.CompressedRFM.crossed`). On a covariate ``profile``
    block (rows sharing their covariates,
    :meth:`~clvbayes.data.compress.CompressedRFM.profile_blocks`) they get one value
    (:func:`clvbayes.models.covariates.profile_parameters`) and the columns stay factored.
    With a ``clock`` ``(f, grid)`` (calendar-time effects) the rows' ``recency`` and ``T``
    enter as operational times (:func:`clvbayes.models.calendar.operational_columns`;
    on crossed columns the operational ``T`` is crossed too, :func:`_crossed_operational`).
    ``segment_axis``: ``params`` have the segment axis last and ``data`` are segmented
    (all rows at once, :func:`rows_by_segment`): every parameter then gets a value per
    (segment, covariates) profile on crossed columns, as covariates do.
    """
    family = spec.family
    if segment_axis or (spec.design and not profile):
        # parameters per profile, columns crossed with the profiles
        params = factored_parameters(
            spec.design, params, coefficients or {}, data, segment_axis=segment_axis
        )
        columns = {c: data.crossed(c) if c in family.factored else data[c] for c in spec.columns}
        if clock is not None:  # operational times: recency per row, T per (profile, T)
            columns["recency"], operational_T = operational_columns(*clock, data)
            columns["T"] = _crossed_operational(operational_T, data)
        return family.terms(params, columns)
    if spec.design:
        params = profile_parameters(spec.design, params, coefficients or {}, data)
    columns = {c: data.factor(c) if c in family.factored else data[c] for c in spec.columns}
    if clock is not None:
        columns["recency"], columns["T"] = operational_columns(*clock, data)
    return family.terms(params, columns)


def _crossed_operational(operational_T: Any, data: Any) -> Any:
    """The operational ``T`` (a Factor over ``T``'s levels) on ``T`` crossed with the
    profiles: each crossed level takes its ``T`` level's operational time."""
    crossed = data.crossed("T")
    level = data.derived(
        "T_crossed_level",
        lambda d: np.searchsorted(d.factor("T").levels, d.crossed("T").levels).astype(np.int64),
    )
    return Factor(
        operational_T.levels[..., level],
        crossed.index,
        crossed.profiles,
        n_levels=crossed.levels.shape[-1],
    )


def split_coefficients(
    spec: Any, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``params`` as the population parameters (per segment, if any) and the covariate
    coefficients (shared by all segments)."""
    names = set(spec.design.coefficients)
    base = {k: v for k, v in params.items() if k not in names}
    return base, {k: v for k, v in params.items() if k in names}


def _parts(spec: Any, block: Any) -> list[tuple[Any, bool]]:
    """The parts one population's rows are evaluated in, each with whether it is a
    covariate profile block: the profile blocks when the rows are cut by profile
    (:meth:`~clvbayes.data.compress.CompressedRFM.profile_blocks`), else the rows."""
    profiles = block.profile_blocks() if spec.design else None
    if profiles is None:
        return [(block, False)]
    return [(part, True) for _, _, part in profiles]


def _clock(data: Any, f: Any) -> tuple[Any, Any] | None:
    return None if f is None else (f, data.extras["calendar"])


MAX_SEGMENT_BLOCKS = 4
"""Segmented likelihoods with at most this many segments (that have rows) are evaluated
one segment block at a time; with more, on all rows at once (:func:`rows_by_segment`),
with the parameters computed per (segment, covariates) profile and the columns crossed
with the profiles (:meth:`~clvbayes.data.compress.CompressedRFM.crossed`).

Blocks keep the per-level terms (``lgamma``, ``log`` per distinct frequency or age)
once per level and segment, so a gradient costs what the plain model's does; but every
block is a copy of the likelihood in the compiled graph, and numba's compilation grows
steeply with the copies. All rows at once is one copy whatever the count, at a somewhat
higher cost per gradient (the per-level terms run per (segment, value) pair, with
gathers between the two). Measured on CDNOW master's BG/NBD (``benchmarks/RESULTS.md``,
issue 19), first fit (compiling) and refit: 3 segments 33 s and 7.6 s as blocks, 28 s and
8.5 s all at once; 4 segments 54 s and 8.6 s against 30 s and 9.7 s; 5 segments 78 s and
11.8 s against 32 s and 11.5 s; 10 segments 400 s and 20 s against 37 s and 18 s; 50
segments all at once 4.0 min for the first fit. So blocks win refits (by about 11 %) up
to 4 segments and nothing from 5 on, while all rows at once wins every first fit; the
compile cache makes the blocks' compilation a one-off per machine and structure."""


def rows_by_segment(data: Any) -> bool:
    """Whether segmented ``data`` are evaluated on all rows at once with per-row
    parameters (more than :data:`MAX_SEGMENT_BLOCKS` segment blocks) rather than block by
    block."""
    return len(data.segment_blocks()) > MAX_SEGMENT_BLOCKS


def weighted_loglik(spec: Any, params: Mapping[str, Any], data: Any, f: Any = None) -> Any:
    """``Σ counts x per-row log-likelihood`` (the PyMC model's potential), with the
    per-level terms summed per level (:class:`~clvbayes.math.ops.LogLikTerms`); per
    segment block when the parameters are per segment (or on all rows with each row's
    segment's parameters, when there are more than :data:`MAX_SEGMENT_BLOCKS` segments),
    and per covariate profile block when the rows have few profiles. ``params`` holds the
    covariate coefficients too, if any. With calendar-time effects ``f`` (log multipliers
    per calibration period) the rows are in operational time and the Jacobian
    ``Σ_p N_p f_p`` is added once."""
    base, coefficients = split_coefficients(spec, params)
    clock = _clock(data, f)

    def total(p: Mapping[str, Any], block: Any) -> Any:
        value: Any = 0.0
        for part, profile in _parts(spec, block):
            terms = population_terms(spec, p, part, coefficients, clock, profile=profile)
            value = value + terms.weighted_sum(part.counts)
        return value

    if data.segmented and spec.pooling != "complete":
        if rows_by_segment(data):
            terms = population_terms(spec, base, data, coefficients, clock, segment_axis=True)
            value = terms.weighted_sum(data.counts)
        else:
            value = sum_by_segment(total, base, data)
    else:
        value = total(base, data)
    if clock is None:
        return value
    counts = data.derived("calendar_counts", lambda d: d.extras["calendar"].counts)
    return value + (f * counts).sum(axis=-1)


def row_loglik(spec: Any, params: Mapping[str, Any], data: Any, f: Any = None) -> Any:
    """Log-likelihood per unique row (numpy or PyTensor; the PyMC graph's function).

    ``params`` broadcast against the rows, e.g. ``(chain, draw, 1)``; for segmented specs
    with partial or no pooling they have the segment axis last, e.g. ``(chain, draw,
    n_segments)``, and each block of rows uses its segment's values. Covariate
    coefficients, if any, are draws ``(chain, draw, n_covariates)``. With calendar-time
    effects ``f`` (e.g. ``(chain, draw, 1, P)``) the rows are in operational time; the
    Jacobian is each customer's own (:meth:`clvbayes.models.FittedModel.log_likelihood`).
    """
    base, coefficients = split_coefficients(spec, params)
    clock = _clock(data, f)

    def per_row(p: Mapping[str, Any], block: Any) -> Any:
        values = [
            population_terms(spec, p, part, coefficients, clock, profile=profile).per_row()
            for part, profile in _parts(spec, block)
        ]  # the parts partition the rows in order
        if len(values) == 1:
            return values[0]
        if any(is_tensor(v) for v in values):
            import pytensor.tensor as pt

            return pt.concatenate(values, axis=-1)
        return np.concatenate(values, axis=-1)

    if data.segmented and spec.pooling != "complete":
        return by_segment(per_row, base, data)
    return per_row(base, data)


def create_priors(spec: Any, data: Any = None) -> dict[str, Any]:
    """The prior variables of ``spec``, created in the current model context, keyed by
    prior name; not the covariate coefficients'
    (:func:`clvbayes.models.covariates.add_coefficients`).

    Plain priors, or per segment (:func:`clvbayes.models.hierarchy.segment_priors`). A
    prior named ``<name>_relative`` is relative to the data's scale
    (``spec.data_scale(data)``, e.g. the Gamma-Gamma's mean spend): the parameter
    ``<name>`` is the deterministic ``scale x <name>_relative``; a hyperprior
    ``<name>_mu_relative`` gives ``<name>_mu = log(scale) + <name>_mu_relative``. With
    covariates the parameters they scale are created as ``<name>_at_mean``
    (:func:`clvbayes.models.covariates.prior_variable_names`).
    """
    coefficients = {e.prior for e in spec.design.effects}
    priors = {k: v for k, v in spec.priors.items() if k not in coefficients}
    relative = [name for name in priors if name.endswith("_relative")]
    if (relative or spec.segments is not None) and data is None:
        raise ValueError(f"{spec.kind}: these priors need the data (its scale, its segments).")
    scale = spec.data_scale(data) if relative else None
    links = spec.segment_links
    counts = data.segment_counts() if data is not None and data.segmented else None
    targets = [name.removesuffix("_relative") for name in relative]
    names = prior_variable_names(spec.design, [*priors, *targets])
    if spec.partially_pooled:
        return segment_priors(priors, "partial", links, spec.centered, counts, scale)
    if spec.segments is None or spec.pooling == "complete":
        created = {name: prior.create_variable(names[name]) for name, prior in priors.items()}
    else:
        created = segment_priors(priors, spec.pooling, links, spec.centered, counts, names=names)
    for name, target in zip(relative, targets, strict=True):
        value = created.pop(name)
        dims = "segment" if getattr(value, "ndim", 0) else None
        created[target] = pm.Deterministic(names[target], scale * value, dims=dims)
    return created


def build_model(spec: Any, data: Any, *, likelihood: bool = True) -> pm.Model:
    """The PyMC model of ``spec`` on compressed data (priors only without ``likelihood``).

    Priors are created on the spec's parametrisation; parameters that are not sampled
    directly (e.g. ``a, b`` from ``phi_dropout, kappa_dropout``, or ``alpha`` from the
    pooled mean purchase rate) are derived by the family's reparametrisation and kept as
    deterministics; the potential is the count-weighted sum of the family's
    log-likelihood terms over the unique rows. With covariates the priors describe the
    typical customer and the coefficients are added
    (:func:`clvbayes.models.covariates.add_coefficients`); the parameters kept are those
    at covariates 0. With calendar-time effects the latent log multipliers
    (:func:`clvbayes.models.calendar.time_effect`) change the rows' clock and add their
    Jacobian.
    """
    coords: dict[str, Any] = {"segment": list(data.segments)} if data.segmented else {}
    coords.update(covariate_coords(spec.design))
    grid = data.extras.get("calendar") if spec.time_effects is not None else None
    if grid is not None:
        coords["period"] = list(range(grid.n_periods))
        if grid.covariate_names:
            coords["calendar_covariate"] = list(grid.covariate_names)
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
        f = None if grid is None else time_effect(grid, spec.time_effects, data)
        if likelihood:
            loglik = weighted_loglik(spec, {**params, **coefficients}, data, f)
            if isinstance(data, SharedRFM):  # data-only parts become inputs, as constants fold
                loglik = data.hoist(loglik)
            pm.Potential("loglik", loglik)
    return model
