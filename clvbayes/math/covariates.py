"""Time-invariant customer covariates: one scale multiplier per customer and parameter.

Fader & Hardie (2007, note 019, "Incorporating time-invariant covariates into the
Pareto/NBD and BG/NBD models") let a customer's covariates ``z_i`` move a population
parameter ``θ`` to

.. math::

    \\theta_i = \\theta \\exp(\\pm \\gamma' z_i),

so the customer's latent rates keep their family's distribution, only with a scale of
their own. Nothing else in a family's maths changes: its likelihood terms, conditional
expectations, latent-state posterior and simulators take per-customer parameter arrays
(the customer axis last) exactly as they take per-segment ones. This module is that one
mechanism, written once for numpy and PyTensor:

* a family declares, per covariate *role* (``"purchase"``, ``"dropout"``, ``"spend"``),
  which parameter the role scales, with which sign and under which coefficient name
  (:class:`CovariateEffect`, :attr:`clvbayes.math.family.Family.covariate_effects`);
* a model with covariates has a :class:`CovariateDesign`: its distinct covariate columns
  and the effects that are switched on, and :meth:`CovariateDesign.apply` turns
  population parameters and coefficients into per-row parameters.

The conventions are CLVTools' and pymc-marketing's (so their estimates and log-densities
can be compared directly): a positive purchase coefficient raises the purchase rate
(``alpha_i = alpha exp(-γ'z_i)``, ``alpha`` being the Gamma *rate*); a positive Pareto/NBD
dropout coefficient raises the dropout rate (``beta_i = beta exp(-γ'z_i)``); the BG/NBD
and MBG/NBD's dropout covariates act on both shapes of the dropout Beta, ``a_i = a
exp(γ_a'z_i)`` and ``b_i = b exp(γ_b'z_i)`` (pymc-marketing's ``dropout_coefficient_a``
and ``dropout_coefficient_b``: a positive ``γ_a - γ_b`` raises the mean dropout
probability ``a_i / (a_i + b_i)``); the Gamma-Gamma's spend covariates scale ``v``, the
rate of the customers' spend-scale distribution, ``v_i = v exp(γ'z_i)``, so a positive
spend coefficient means a higher mean spend per transaction (``p v_i / (q - 1)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clvbayes.math.ops import ops_for

__all__ = ["ROLES", "CovariateDesign", "CovariateEffect", "linear_predictor"]

ROLES = ("purchase", "dropout", "spend")
"""The covariate roles, in the order specs take them (``<role>_covariates=[...]``)."""


@dataclass(frozen=True)
class CovariateEffect:
    """How the covariates of one role scale one parameter of a family.

    ``parameter_i = parameter * exp(sign * coefficient' z_i)``.

    Attributes
    ----------
    role : str
        One of :data:`ROLES`: the spec argument ``<role>_covariates`` names the columns.
    parameter : str
        The family parameter that gets a value per customer (e.g. ``"alpha"``).
    coefficient : str
        Name of the coefficient vector (posterior variable, dim ``<role>_covariate``),
        e.g. ``"purchase_coefficient"``.
    sign : int
        +1 or -1 (see the module docstring for each family's convention).
    """

    role: str
    parameter: str
    coefficient: str
    sign: int

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"covariate role {self.role!r} is not one of {ROLES}.")
        if self.sign not in (1, -1):
            raise ValueError(f"covariate effect sign must be +1 or -1, got {self.sign!r}.")

    @property
    def prior(self) -> str:
        """The prior name of the coefficient: ``<role>_coefficient`` (the BG/NBD's two
        dropout vectors share ``dropout_coefficient``, as in pymc-marketing)."""
        return f"{self.role}_coefficient"

    @property
    def dim(self) -> str:
        """The coefficient's dimension: ``<role>_covariate``."""
        return f"{self.role}_covariate"


def linear_predictor(coefficient: Any, columns: Sequence[Any], *, rows: bool = True) -> Any:
    """``Σ_j coefficient[..., j] * columns[j]``.

    ``coefficient`` is a vector (PyTensor, ``(k,)``) or draws ``(..., k)`` (numpy). With
    ``rows`` each column is an array along the customers (or rows) and the result has
    that axis last: numpy draws ``(d, k)`` against columns ``(n,)`` give ``(d, n)``.
    Without ``rows`` the columns are one customer's values (scalars, or arrays
    broadcasting against the coefficient's leading axes) and the result has the
    coefficient's leading shape.
    """
    total: Any = 0.0
    for j, column in enumerate(columns):
        weight = coefficient[..., j, None] if rows else coefficient[..., j]
        total = total + weight * column
    return total


@dataclass(frozen=True)
class CovariateDesign:
    """The covariate columns of a model and the effects they switch on.

    Attributes
    ----------
    names : tuple of str
        The distinct covariate columns, in the order of a covariate matrix's columns.
    roles : mapping of str to tuple of str
        The columns of each role that has covariates (in coefficient order).
    effects : tuple of CovariateEffect
        The family's effects whose role has columns.
    """

    names: tuple[str, ...] = ()
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    effects: tuple[CovariateEffect, ...] = ()

    @classmethod
    def of(
        cls, effects: Sequence[CovariateEffect], roles: Mapping[str, Sequence[str]]
    ) -> CovariateDesign:
        """The design of a family's ``effects`` with the columns of each role in ``roles``
        (roles without columns are left out)."""
        used = {r: tuple(c) for r, c in roles.items() if c}
        names: list[str] = []
        for columns in used.values():
            names.extend(c for c in columns if c not in names)
        active = tuple(e for e in effects if e.role in used)
        return cls(tuple(names), dict(used), active)

    def __bool__(self) -> bool:
        return bool(self.effects)

    @property
    def coefficients(self) -> tuple[str, ...]:
        """The coefficient vectors' names, in the effects' order."""
        return tuple(e.coefficient for e in self.effects)

    @property
    def parameters(self) -> frozenset[str]:
        """The parameters that get a value per customer."""
        return frozenset(e.parameter for e in self.effects)

    def apply(
        self,
        params: Mapping[str, Any],
        coefficients: Mapping[str, Any],
        columns: Sequence[Any],
    ) -> dict[str, Any]:
        """The parameters of each row: ``θ_i = θ exp(sign γ'z_i)`` for every effect.

        Parameters
        ----------
        params : mapping
            Population parameters broadcasting against the rows (scalars, numpy draws
            ``(..., 1)`` or per-row arrays ``(..., n)``; PyTensor scalars or vectors).
        coefficients : mapping
            Each effect's coefficient vector: numpy draws ``(..., k)`` with the same
            leading axes as ``params``, or a PyTensor vector ``(k,)``.
        columns : sequence
            One array (or scalar) per covariate of :attr:`names`, along the rows.

        Returns
        -------
        dict
            ``params`` with the scaled parameters replaced (the others as they were).
        """
        return self._scale(params, coefficients, columns, rows=True)

    def at(
        self, params: Mapping[str, Any], coefficients: Mapping[str, Any], values: Sequence[Any]
    ) -> dict[str, Any]:
        """The parameters of one covariate profile (``values``: one per :attr:`names`),
        with the shape of the population parameters (no row axis): e.g. the parameters at
        covariates 0 from those at the covariates' means (``values = -means``)."""
        return self._scale(params, coefficients, values, rows=False)

    def _scale(
        self,
        params: Mapping[str, Any],
        coefficients: Mapping[str, Any],
        columns: Sequence[Any],
        *,
        rows: bool,
    ) -> dict[str, Any]:
        out = dict(params)
        if not self.effects:
            return out
        if len(columns) != len(self.names):
            raise ValueError(f"expected {len(self.names)} covariate columns, got {len(columns)}.")
        index = {name: j for j, name in enumerate(self.names)}
        ops = ops_for(*params.values(), *coefficients.values(), *columns)
        for effect in self.effects:
            role_columns = [columns[index[c]] for c in self.roles[effect.role]]
            eta = linear_predictor(coefficients[effect.coefficient], role_columns, rows=rows)
            out[effect.parameter] = out[effect.parameter] * ops.exp(effect.sign * eta)
        return out
