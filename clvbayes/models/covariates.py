"""Customer covariates in a model spec: options, priors and the PyMC graph's pieces.

A spec with covariates (``ParetoNBD(purchase_covariates=["gender"], ...)``) has a
:class:`~clvbayes.math.covariates.CovariateDesign`: which columns scale which of its
family's parameters. Everything else is the plain model: the same likelihood terms,
evaluated with the parameters ``θ_i = θ exp(±γ'z_i)`` of each covariate profile (the
covariates are columns of the compressed data,
:func:`clvbayes.data.compress.covariate_column`; :func:`factored_parameters`), so the
unique-row compression, segments, the registry and the prediction path serve covariates
without a second copy of any family.

What the sampler sees. The population parameters are sampled for the *typical* customer
(covariates at their means in the fitted data; variables ``<name>_at_mean`` where the
name would clash) and the coefficients per standard deviation of each covariate
(``<coefficient>_per_sd``): centred and scaled, these are nearly uncorrelated, whatever
the covariates' units. The posterior keeps the model's parameters at covariates 0 and
the coefficients per unit of the covariate as given (CLVTools' and pymc-marketing's
scale), plus the per-sd coefficients: see :mod:`clvbayes.priors` ("Covariate
coefficients") for the priors and their reasoning.

Segments combine with covariates: each segment gets its own parameters (intercepts) and
all segments share the coefficients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from clvbayes.data.compress import SEGMENT, covariate_column
from clvbayes.data.validate import check_covariate_variation, check_covariates
from clvbayes.math.covariates import ROLES, CovariateDesign
from clvbayes.math.family import Family
from clvbayes.math.ops import Factor
from clvbayes.priors import COEFFICIENT_PRIOR, with_dims

__all__ = [
    "AT_MEAN",
    "PER_SD",
    "add_coefficients",
    "coefficient_priors",
    "covariate_coords",
    "covariate_data",
    "covariate_design",
    "data_columns",
    "factored_parameters",
    "per_sd",
    "posterior_names",
    "prior_variable_names",
    "profile_parameters",
]

AT_MEAN = "_at_mean"
"""Suffix of a sampled parameter of the typical customer whose name the parameter at
covariates 0 takes (e.g. ``alpha_at_mean``)."""

PER_SD = "_per_sd"
"""Suffix of a coefficient per standard deviation of its covariates."""


def covariate_design(family: Family, **roles: Any) -> CovariateDesign:
    """The design of a spec's ``<role>_covariates`` options (``purchase=[...]``, ...),
    checked against its family.

    Raises
    ------
    TypeError
        For an option that is not a list of column names (e.g. a bare string).
    ValueError
        For a role the family does not have (e.g. spend covariates on a BG/NBD), or a
        column named twice in one role.
    """
    has = {e.role for e in family.covariate_effects}
    checked: dict[str, tuple[str, ...]] = {}
    for role in ROLES:
        columns = roles.get(role)
        if columns is None:
            continue
        argument = f"{role}_covariates"
        if isinstance(columns, str) or not isinstance(columns, Sequence):
            raise TypeError(f"{argument} must be a list of column names, got {columns!r}.")
        columns = tuple(columns)
        if columns and role not in has:
            takes = [f"{r}_covariates" for r in ROLES if r in has]
            raise ValueError(
                f"{family.label} has no {role} process: {argument} is not one of its "
                f"options (it takes {takes or 'no covariates'})."
            )
        bad = [c for c in columns if not isinstance(c, str) or not c or "/" in c]
        if bad:
            raise ValueError(f"{argument}: {bad} are not valid column names (non-empty str).")
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise ValueError(f"{argument}: {twice} named more than once.")
        checked[role] = columns
    return CovariateDesign.of(family.covariate_effects, checked)


def covariate_data(
    design: CovariateDesign, rfm: Any, keep: np.ndarray, what: str
) -> dict[str, np.ndarray]:
    """The compressed covariate columns of the customers ``keep`` selects (none without
    covariates), validated: present, numeric, finite, varying over those customers
    (``what`` names them in messages) and not collinear."""
    if not design:
        return {}
    argument = " / ".join(f"{role}_covariates" for role in design.roles)
    values = {c: v[keep] for c, v in check_covariates(rfm, design.names, argument=argument).items()}
    check_covariate_variation(values, what)
    return {covariate_column(c): v for c, v in values.items()}


def coefficient_priors(design: CovariateDesign) -> dict[str, Any]:
    """The default coefficient priors of a design (:data:`clvbayes.priors.COEFFICIENT_PRIOR`
    per role, on the per-sd scale)."""
    return {e.prior: COEFFICIENT_PRIOR for e in design.effects}


def per_sd(coefficient: str) -> str:
    """Name of a coefficient per standard deviation: ``<coefficient>_per_sd``."""
    return coefficient + PER_SD


def posterior_names(design: CovariateDesign) -> tuple[str, ...]:
    """The coefficient variables a fit keeps: per unit, then per standard deviation."""
    return (*design.coefficients, *(per_sd(c) for c in design.coefficients))


def prior_variable_names(design: CovariateDesign, names: Sequence[str]) -> dict[str, str]:
    """Variable name of each prior: ``<name>_at_mean`` for the parameters the covariates
    scale (their own name goes to the value at covariates 0), the name itself otherwise."""
    return {n: n + AT_MEAN if n in design.parameters else n for n in names}


def covariate_coords(design: CovariateDesign) -> dict[str, list[str]]:
    """The model coordinates of the coefficients: ``<role>_covariate`` -> column names."""
    return {f"{role}_covariate": list(columns) for role, columns in design.roles.items()}


def data_columns(design: CovariateDesign, data: Any) -> list[Any]:
    """The covariate columns of compressed ``data`` (arrays or model inputs), in the
    design's order."""
    return [data[covariate_column(name)] for name in design.names]


def factored_parameters(
    design: CovariateDesign,
    params: Mapping[str, Any],
    coefficients: Mapping[str, Any],
    data: Any,
    *,
    segment_axis: bool = False,
) -> dict[str, Any]:
    """The parameters of each row of compressed ``data`` as
    :class:`~clvbayes.math.ops.Factor` s over the rows' profiles
    (:meth:`~clvbayes.data.compress.CompressedRFM.profiles`): each profile's values
    (``levels``, the profiles along the last axis) and each row's profile (``index``), as
    every family's :attr:`~clvbayes.math.family.Family.loglik_terms` takes them on columns
    crossed with the profiles.

    ``θ exp(±γ'z)`` is computed once per profile for the parameters covariates scale; with
    ``segment_axis`` the ``params`` have the segment axis last (segmented data evaluated
    on all rows at once) and every parameter takes each profile's segment's value. The
    parameters neither covers are returned as they are."""
    values, index = data.profiles()
    factored = set(design.parameters)
    if segment_axis:
        factored |= set(params)
        params = {k: v[..., values[SEGMENT]] for k, v in params.items()}
    columns = [values[c] for c in map(covariate_column, design.names)]
    scaled = design.apply(params, coefficients, columns)
    return {k: Factor(v, index) if k in factored else v for k, v in scaled.items()}


def profile_parameters(
    design: CovariateDesign, params: Mapping[str, Any], coefficients: Mapping[str, Any], data: Any
) -> dict[str, Any]:
    """The parameters of a covariate profile block of compressed ``data``
    (:meth:`~clvbayes.data.compress.CompressedRFM.profile_blocks`): every row has the
    first row's covariates, so ``θ exp(±γ'z)`` is computed once and broadcasts against
    the rows (a length-1 last axis)."""
    values = [
        data.derived(f"{c}_profile", lambda d, c=c: np.asarray(d.rows[c][0]))
        for c in map(covariate_column, design.names)
    ]
    return design.apply(params, coefficients, values)


def add_coefficients(
    design: CovariateDesign,
    priors: Mapping[str, Any],
    at_mean: Mapping[str, Any],
    data: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Coefficients and the parameters at covariates 0, in the current model context.

    Creates ``<coefficient>_per_sd`` from the role's prior (dim ``<role>_covariate``),
    the deterministic per-unit ``<coefficient>`` (divided by the covariates' standard
    deviations in ``data``) and returns the parameters at covariates 0,
    ``θ_0 = θ_mean exp(∓γ'm)`` with ``m`` the covariates' means, and the coefficients.

    Parameters
    ----------
    design : CovariateDesign
    priors : mapping
        The spec's resolved priors (``<role>_coefficient`` among them).
    at_mean : mapping
        The parameters of a customer with mean covariates (created by the spec).
    data : CompressedRFM or SharedRFM
        The fitted data (its :meth:`~clvbayes.data.compress.CompressedRFM.moments`).
    """
    import pymc as pm
    import pytensor.tensor as pt

    moments = {n: data.moments(covariate_column(n)) for n in design.names}
    coefficients: dict[str, Any] = {}
    for effect in design.effects:
        sd = pt.stack([moments[c][1] for c in design.roles[effect.role]])
        prior = with_dims(priors[effect.prior], (effect.dim,))
        scaled = prior.create_variable(per_sd(effect.coefficient))
        coefficients[effect.coefficient] = pm.Deterministic(
            effect.coefficient, scaled / sd, dims=effect.dim
        )
    negated_means = [-moments[n][0] for n in design.names]
    return design.at(at_mean, coefficients, negated_means), coefficients
