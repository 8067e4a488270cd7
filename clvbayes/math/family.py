"""Model families: everything the package knows about one model, described once.

A *family* (BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma) is a frozen object that names its
parameters and data columns and holds the plain functions of its maths module: the
log-likelihood terms, the per-customer quantities (``P(alive)``, conditional expected
purchases, ...), the customer's latent-state posterior, the simulators, and the
reparametrisation that partial pooling works on. Each maths module builds its family and
registers it here (:func:`register`); everything that must ask "which kind of model is
this?" -- the PyMC specs, prediction, simulation, predictive checks, save/load -- asks
the registry (:func:`family`) instead of keeping a list of its own. Adding a family is
one maths module (functions + its family object) and one small spec
(:mod:`clvbayes.models`).

Functions take the parameters positionally in the family's order (``params``) followed
by the data columns, and broadcast: parameters shaped ``(draws, 1)`` against customers
``(n,)``, or ``(draws, n)`` for parameters that differ by customer (segments,
covariates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from clvbayes.math.covariates import CovariateEffect

__all__ = [
    "FAMILIES",
    "Family",
    "Reparametrisation",
    "SpendFamily",
    "TransactionFamily",
    "check_counts",
    "family",
    "from_link",
    "model_names",
    "register",
    "to_link",
]


def to_link(link: Literal["log", "logit", "log_excess"], values: Any) -> np.ndarray:
    """``values`` on the ``link`` scale of :func:`hierarchical_parameter` (numpy)."""
    values = np.asarray(values, dtype=float)
    if link == "log":
        return np.log(values)
    if link == "logit":
        return np.log(values) - np.log1p(-values)
    if link == "log_excess":
        return np.log(values - 1.0)
    raise ValueError(f"unknown link {link!r}; use 'log', 'logit' or 'log_excess'.")


def from_link(link: Literal["log", "logit", "log_excess"], values: Any) -> np.ndarray:
    """The inverse of :func:`to_link`."""
    values = np.asarray(values, dtype=float)
    if link == "log":
        return np.exp(values)
    if link == "logit":
        return 1.0 / (1.0 + np.exp(-values))
    if link == "log_excess":
        return 1.0 + np.exp(values)
    raise ValueError(f"unknown link {link!r}; use 'log', 'logit' or 'log_excess'.")


def check_counts(counts: Any) -> np.ndarray:
    """Numbers of purchases ``n >= 0`` (for a ``conditional_pmf``) as a 1-D float array.

    Raises
    ------
    ValueError
        For a value that is negative or not a whole number.
    """
    n = np.atleast_1d(np.asarray(counts, dtype=float))
    if n.ndim != 1 or n.size == 0 or not np.all((n >= 0) & (n == np.round(n))):
        raise ValueError(
            f"counts must be whole numbers of purchases >= 0 (e.g. range(6)), got {counts!r}."
        )
    return n


@dataclass(frozen=True)
class Reparametrisation:
    """The quantities partial pooling works on, and the map to and from the parameters.

    Written once as plain arithmetic, so the same functions serve numpy (segment
    summaries, link-scale comparisons) and PyTensor (the hierarchical PyMC graph).

    Attributes
    ----------
    links : mapping of str to str
        Each pooled quantity and its link scale (``"log"``, ``"logit"`` or
        ``"log_excess"``; see :mod:`clvbayes.models.hierarchy`), in the order the
        hierarchical priors are created.
    pooled : callable
        ``params -> pooled``: the pooled quantities from the model parameters.
    complete : callable
        ``values -> params``: the model parameters from any mapping that holds each
        parameter or the quantities it is derived from (pooled quantities, or an
        alternative prior parametrisation such as ``phi_dropout, kappa_dropout`` for
        ``a, b``). Parameters present in ``values`` are returned as they are.
    """

    links: Mapping[str, str]
    pooled: Callable[[Mapping[str, Any]], dict[str, Any]]
    complete: Callable[[Mapping[str, Any]], dict[str, Any]]

    def link_values(self, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The pooled quantities on their link scales (numpy)."""
        pooled = self.pooled({k: np.asarray(v, dtype=float) for k, v in params.items()})
        return {n: to_link(link, pooled[n]) for n, link in self.links.items()}

    def from_link_values(self, links: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The parameters from link-scale values (the inverse of :meth:`link_values`)."""
        return self.complete({n: from_link(link, links[n]) for n, link in self.links.items()})


@dataclass(frozen=True)
class Family:
    """What every family has.

    Attributes
    ----------
    kind : str
        Registry key and ``FittedModel.kind`` (e.g. ``"BGNBD"``).
    label : str
        Display name (e.g. ``"BG/NBD"``).
    params : tuple of str
        Population parameters, in the order the functions take them.
    columns : tuple of str
        RFM columns the likelihood uses, in the order the functions take them.
    loglik_terms : callable
        ``(*params, *columns) -> LogLikTerms``: the log-likelihood of each row as terms
        (:class:`clvbayes.math.ops.LogLikTerms`); columns may be
        :class:`~clvbayes.math.ops.Factor` s. Parameters may be Factors over the rows'
        profiles (the combinations of segment and covariates that set a row's parameters:
        a value per profile, each row's profile as the index), the factored columns then
        crossed with the profiles (:attr:`~clvbayes.math.ops.Factor.profiles`,
        :func:`~clvbayes.math.ops.at_levels`): work is shared per (profile, value) pair.
        Works on numpy and PyTensor.
    simulate : callable
        ``(*params, *inputs, rng=...) -> dict``: the generative simulator.
    reparametrisation : Reparametrisation or None
        How partial pooling sees the parameters (None: the family cannot be pooled).
    factored : tuple of str
        Columns passed as :class:`~clvbayes.math.ops.Factor` (terms computed once per
        distinct value); the others as plain arrays.
    reusable_compilation : bool
        Whether the likelihood's graph depends on the data only through arrays (so one
        compiled model can take new data). False when the graph's shape depends on data
        values (the Pareto/NBD groups rows by pairs of concrete values).
    name : str
        Short name for the command line and the report (``"bgnbd"``, ``"pareto-nbd"``;
        :func:`model_names`); empty for a family not offered there.
    covariate_effects : tuple of CovariateEffect
        Which parameter each covariate role scales, with which sign and coefficient name
        (:mod:`clvbayes.math.covariates`); empty: the family takes no covariates.
    """

    kind: str
    label: str
    params: tuple[str, ...]
    columns: tuple[str, ...]
    loglik_terms: Callable[..., Any]
    simulate: Callable[..., dict[str, Any]]
    reparametrisation: Reparametrisation | None = None
    factored: tuple[str, ...] = ()
    reusable_compilation: bool = True
    name: str = ""
    covariate_effects: tuple[CovariateEffect, ...] = ()

    def values(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """``params`` in this family's order, with a clear error for a missing one."""
        missing = [k for k in self.params if k not in params]
        if missing:
            raise ValueError(f"{self.label} needs parameters {missing}; got {sorted(params)}.")
        return tuple(params[k] for k in self.params)

    def terms(self, params: Mapping[str, Any], columns: Mapping[str, Any]) -> Any:
        """:attr:`loglik_terms` with parameters and columns by name."""
        return self.loglik_terms(*self.values(params), *(columns[c] for c in self.columns))


@dataclass(frozen=True)
class TransactionFamily(Family):
    """A model of purchases and dropout (columns ``frequency, recency, T``).

    Attributes
    ----------
    p_alive : callable
        ``(*params, x, t_x, T) -> P(alive at T)``.
    expected_purchases : callable
        ``(*params, x, t_x, T, t, *, alive=None) -> E[purchases in (T, T+t]]``.
    expected_discounted_purchases : callable
        ``(*params, x, t_x, T, h, delta, *, nodes=None, alive=None) -> E[Σ exp(-δ t_j)]``.
    expected_purchases_new : callable
        ``(*params, t) -> E[X(t)]`` for a customer acquired at time 0.
    conditional_pmf : callable
        ``(*params, x, t_x, T, t, counts, *, alive=None) -> P(N = n | history)``: the
        probability of ``n`` purchases in ``(T, T+t]`` for each ``n`` of ``counts``, on a
        new last axis. ``n = 0`` is the probability of no purchase in the window, which is
        ``L(x, t_x, T+t) / L(x, t_x, T)`` for every family (:meth:`p_no_purchase`).
    dert : callable
        ``(*params, x, t_x, T, discount_rate, *, alive=None) -> E[Σ_j exp(-δ t_j)]`` over
        all purchases after ``T``: discounted expected residual transactions (CLVTools'
        DERT), the infinite-horizon limit of :attr:`expected_discounted_purchases`.
    customer_posterior : callable
        ``(*params, x, t_x, T, *, alive=None)``: the latent state given the history (its
        alive branch is what the future depends on).
    sample_alive_state : callable
        ``(posterior, index, rng) -> (rate, dropout)``: draws of the alive branch's
        latent state at ``index`` (a tuple of index arrays into the posterior's fields),
        in the form :attr:`simulate_future` takes.
    survival : callable
        ``(posterior, times, rng) -> P(still alive t after T | alive at T)``, shaped
        ``(time, *posterior shape)``, averaged over the alive branch's latent state (a
        family may draw part of it with ``rng``).
    simulate_future : callable
        ``(rate, dropout, alive, horizon, *, rng, **options) -> FuturePurchases``:
        purchases in ``(0, horizon]`` of customers with a known latent state
        (:func:`clvbayes.math.processes.simulate_future_purchases`, the numpy reference).
    alive_process : callable
        ``(*params, x, t_x, T, *, alive=None) -> AliveProcess``: the alive branch of
        :attr:`customer_posterior` as the data of the compiled simulation
        (:mod:`clvbayes.math.kernels`), the scoring's entry point.
    clock_change : bool
        Whether a common calendar multiplier of the purchase rate is a change of clock
        for this family (dropout happens only at purchases: BG/NBD, MBG/NBD), so that
        calendar-time effects apply (:mod:`clvbayes.math.calendar`). False for the
        Pareto/NBD, whose dropout runs in calendar time.
    """

    p_alive: Callable[..., Any] = field(kw_only=True)
    expected_purchases: Callable[..., Any] = field(kw_only=True)
    expected_discounted_purchases: Callable[..., Any] = field(kw_only=True)
    expected_purchases_new: Callable[..., Any] = field(kw_only=True)
    conditional_pmf: Callable[..., Any] = field(kw_only=True)
    dert: Callable[..., Any] = field(kw_only=True)
    customer_posterior: Callable[..., Any] = field(kw_only=True)
    sample_alive_state: Callable[..., tuple[Any, Any]] = field(kw_only=True)
    survival: Callable[..., Any] = field(kw_only=True)
    simulate_future: Callable[..., Any] = field(kw_only=True)
    alive_process: Callable[..., Any] = field(kw_only=True)
    clock_change: bool = field(default=False, kw_only=True)

    def p_no_purchase(self, *args: Any, alive: Any = None) -> Any:
        """``P(no purchase in (T, T+t] | x, t_x, T)`` from ``(*params, x, t_x, T, t)``:
        the churn probability of a window (:attr:`conditional_pmf` at ``n = 0``)."""
        return self.conditional_pmf(*args, (0,), alive=alive)[..., 0]


@dataclass(frozen=True)
class SpendFamily(Family):
    """A model of the value of transactions (columns ``frequency, monetary_value``).

    Attributes
    ----------
    expected_spend : callable
        ``(*params, x, z) -> E[value per transaction | x, z]``.
    expected_spend_new : callable
        ``(*params) -> population mean value per transaction``.
    spend_scale_posterior : callable
        ``(*params, x, z) -> (shape, rate)`` of the customer's spend scale.
    """

    expected_spend: Callable[..., Any] = field(kw_only=True)
    expected_spend_new: Callable[..., Any] = field(kw_only=True)
    spend_scale_posterior: Callable[..., Any] = field(kw_only=True)


FAMILIES: dict[str, Family] = {}
"""Every registered family by kind (filled when :mod:`clvbayes.math` is imported)."""


def register(entry: Family) -> Family:
    """Add ``entry`` to :data:`FAMILIES` (its maths module calls this once) and return it."""
    if entry.kind in FAMILIES and FAMILIES[entry.kind] is not entry:
        raise ValueError(f"a family of kind {entry.kind!r} is already registered.")
    FAMILIES[entry.kind] = entry
    return entry


def model_names(role: type[Family] = TransactionFamily) -> dict[str, str]:
    """The short name of every registered family of ``role`` that has one, and its kind
    (e.g. ``{"bgnbd": "BGNBD", ...}``): the choices of ``clvbayes report --model``."""
    return {f.name: k for k, f in FAMILIES.items() if f.name and isinstance(f, role)}


def family(kind: str, role: type[Family] = Family) -> Family:
    """The registered family of ``kind``, optionally required to be a ``role``.

    Parameters
    ----------
    kind : str
        ``FittedModel.kind`` or a spec's ``kind``, e.g. ``"BGNBD"``.
    role : type, optional
        :class:`TransactionFamily` or :class:`SpendFamily` to require that role.

    Raises
    ------
    ValueError
        For an unknown kind.
    TypeError
        For a known kind of another role (e.g. a Gamma-Gamma where a transaction model
        is needed), naming the kinds that would do.
    """
    if kind not in FAMILIES:
        raise ValueError(f"unknown model kind {kind!r}; known: {sorted(FAMILIES)}.")
    entry = FAMILIES[kind]
    if not isinstance(entry, role):
        fitting = sorted(k for k, f in FAMILIES.items() if isinstance(f, role))
        what = "transaction" if role is TransactionFamily else "spend"
        raise TypeError(f"expected a {what} model ({', '.join(fitting)}), got {kind}.")
    return entry
