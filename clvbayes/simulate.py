"""Generative simulators, one per model family, numpy only and seeded explicitly.

Each family's simulator lives in its maths module (with the likelihood it is tested
against); this module gives them their public names and adds what spans families:
:func:`simulate_transaction_model` (by model kind, through the family registry) and
:func:`simulate_segments` (customers of several segments with their own parameters) and
:func:`simulate_covariates` (customers whose covariates scale their parameters).
Simulators draw the latent per-customer quantities from the population distributions and
then the observable summary by simulating the process itself (event by event); loops run
over the purchase index, never over customers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from clvbayes.math import bgnbd, gamma_gamma, mbgnbd, pareto_nbd
from clvbayes.math.calendar import CalendarSample, simulate_customers, simulate_path
from clvbayes.math.covariates import CovariateDesign
from clvbayes.math.family import TransactionFamily, family
from clvbayes.math.gamma_gamma import TransactionValues, simulate_transaction_values
from clvbayes.math.processes import (
    BetaDropout,
    FuturePurchases,
    generator,
    simulate_future_purchases,
)

__all__ = [
    "BetaDropout",
    "CalendarSample",
    "FuturePurchases",
    "TransactionValues",
    "simulate_bgnbd",
    "simulate_calendar",
    "simulate_calendar_path",
    "simulate_covariates",
    "simulate_future_pareto_nbd",
    "simulate_future_purchases",
    "simulate_gamma_gamma",
    "simulate_mbgnbd",
    "simulate_pareto_nbd",
    "simulate_segments",
    "simulate_transaction_model",
    "simulate_transaction_values",
    "transactions_from",
]

simulate_bgnbd = bgnbd.simulate
simulate_mbgnbd = mbgnbd.simulate
simulate_pareto_nbd = pareto_nbd.simulate
simulate_future_pareto_nbd = pareto_nbd.simulate_future
simulate_gamma_gamma = gamma_gamma.simulate
simulate_calendar = simulate_customers
simulate_calendar_path = simulate_path


def simulate_transaction_model(
    kind: str, params: Mapping[str, Any], T: Any, *, rng: np.random.Generator | int
) -> dict[str, np.ndarray]:
    """Simulate ``(x, t_x, T)`` from the transaction model named ``kind``.

    Parameters
    ----------
    kind : str
        Model type (``FittedModel.kind``: ``"BGNBD"``, ``"MBGNBD"``, ``"ParetoNBD"``).
    params : mapping
        Population parameters by name (``r, alpha, a, b`` or ``r, alpha, s, beta``).
    T : array_like
        Age of each customer.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    dict of str to ndarray
        The simulator's output (at least ``frequency``, ``recency``, ``T``, ``alive``).
    """
    try:
        entry = family(kind, TransactionFamily)
    except (TypeError, ValueError) as error:
        raise ValueError(f"no simulator for model {kind!r}: {error}") from None
    return entry.simulate(*entry.values(params), T, rng=rng)


def simulate_segments(
    params: Mapping[str, Sequence[float]],
    sizes: Sequence[int],
    T: tuple[float, float],
    *,
    rng: np.random.Generator | int,
    time_step: float | None = None,
) -> dict[str, np.ndarray]:
    """Customers of several segments, each segment with its own population parameters.

    For recovery studies of segmented fits (``BGNBD(segments=...)``) and for planning:
    how many customers a segment needs before its parameters are told apart.

    Parameters
    ----------
    params : mapping of str to sequence of float
        One value per segment for each of ``r, alpha, a, b`` (BG/NBD) and, optionally,
        ``p, q, v`` (Gamma-Gamma): then ``monetary_value`` is simulated too.
    sizes : sequence of int
        Customers per segment.
    T : (float, float)
        Customers' ages are uniform on ``[T[0], T[1])``.
    rng : numpy.random.Generator or int
        Random generator or seed.
    time_step : float, optional
        Round ages and recencies down to multiples of this (``1/7`` for days when the
        unit is weeks), as a transaction log does: customers then share unique rows.

    Returns
    -------
    dict of str to ndarray
        ``segment`` (int64 code, the index into ``sizes``), ``frequency``, ``recency``,
        ``T`` and, with spend parameters, ``monetary_value`` (0 for customers without
        repeat purchases), segment after segment.
    """
    rng = generator(rng)
    sizes = [int(n) for n in sizes]
    codes = np.repeat(np.arange(len(sizes)), sizes)
    per_customer = {k: np.asarray(v, dtype=float)[codes] for k, v in params.items()}
    age = rng.uniform(T[0], T[1], size=codes.size)
    if time_step is not None:
        age = np.floor(age / time_step) * time_step
    sim = bgnbd.simulate(*(per_customer[k] for k in ("r", "alpha", "a", "b")), age, rng=rng)
    recency = sim["recency"]
    if time_step is not None:
        recency = np.floor(recency / time_step) * time_step
    out = {"segment": codes, "frequency": sim["frequency"], "recency": recency, "T": age}
    if {"p", "q", "v"} <= set(params):
        spend = (per_customer[k] for k in ("p", "q", "v"))
        out["monetary_value"] = gamma_gamma.simulate(*spend, sim["frequency"], rng=rng)
    return out


def transactions_from(
    sample: CalendarSample, origin: dt.date, *, days_per_unit: float = 7.0
) -> dict[str, Any]:
    """A transaction log (``customer_id``, ``date``) of customers simulated under
    calendar multipliers (:func:`simulate_calendar` with ``resolution=1/days_per_unit``):
    each first and repeat purchase on its day, grid position 0 being ``origin``. Feed it
    to :func:`clvbayes.calendar_rfm` to fit it like a real log.
    """
    import numpy as np

    n = sample.first.size
    customers = np.concatenate([np.arange(n), sample.customer])
    position = np.concatenate([sample.first, sample.purchase_time])
    days = np.round(position * days_per_unit).astype("timedelta64[D]")
    return {"customer_id": customers, "date": np.datetime64(origin, "D") + days}


def simulate_covariates(
    kind: str,
    params: Mapping[str, float],
    coefficients: Mapping[str, Mapping[str, float]],
    covariates: Mapping[str, Any],
    inputs: Any,
    *,
    rng: np.random.Generator | int,
) -> dict[str, np.ndarray]:
    """Simulate customers whose covariates scale their parameters (any family).

    Each customer's parameters are ``θ_i = θ exp(±γ'z_i)`` (the family's convention,
    :mod:`clvbayes.math.covariates`); the family's own simulator then runs with those
    per-customer parameters.

    Parameters
    ----------
    kind : str
        Model type (``"BGNBD"``, ``"MBGNBD"``, ``"ParetoNBD"``, ``"GammaGamma"``).
    params : mapping
        Population parameters at covariates 0 (``r, alpha, a, b``, ...).
    coefficients : mapping of str to mapping of str to float
        Per coefficient name (``"purchase_coefficient"``, ``"dropout_coefficient"`` or,
        for the BG/NBD, ``"dropout_coefficient_a"`` and ``"_b"``, ``"spend_coefficient"``)
        the coefficient of each covariate column, e.g. ``{"purchase_coefficient":
        {"gender": 0.3}}``. The coefficients of one role must name the same columns.
    covariates : mapping of str to array_like
        Each covariate column, one value per customer.
    inputs : array_like
        The simulator's data: ``T`` (transaction models) or ``frequency`` (Gamma-Gamma).
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    dict of str to ndarray
        The family simulator's output (``frequency, recency, T, ...``; the Gamma-Gamma's
        mean spend as ``monetary_value``) and the covariate columns.
    """
    entry = family(kind)
    known = {e.coefficient for e in entry.covariate_effects}
    unknown = sorted(set(coefficients) - known)
    if unknown:
        raise ValueError(f"{entry.label} has no coefficients {unknown}; it has {sorted(known)}.")
    roles: dict[str, tuple[str, ...]] = {}
    for effect in entry.covariate_effects:
        if effect.coefficient in coefficients:
            columns = tuple(coefficients[effect.coefficient])
            if roles.setdefault(effect.role, columns) != columns:
                raise ValueError(f"the {effect.role} coefficients must name the same columns.")
    design = CovariateDesign.of(entry.covariate_effects, roles)
    vectors = {
        name: np.array([coefficients[name][c] for c in design.roles[e.role]], dtype=float)
        for e in design.effects
        for name in (e.coefficient,)
    }
    columns = [np.asarray(covariates[c], dtype=float) for c in design.names]
    base = {k: np.asarray(params[k], dtype=float) for k in entry.params}
    per_customer = design.apply(base, vectors, columns)
    out = entry.simulate(*entry.values(per_customer), inputs, rng=rng)
    if not isinstance(out, dict):
        out = {"frequency": np.asarray(inputs), "monetary_value": out}
    out.update({c: np.asarray(covariates[c]) for c in design.names})
    return out
