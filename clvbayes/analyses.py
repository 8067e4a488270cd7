"""The questions a retail CRM team asks of CLV, one call each, with their uncertainty.

Each function takes fitted models, the RFM table or a
:func:`~clvbayes.predict.predict_customers` result and returns a
:class:`~clvbayes.predict.Result`: a tidy ``summary`` table and the ``draws`` (xarray) it
was computed from (and, where the analysis also summarises groups of customers, a
``groups`` table). The report (``clvbayes report``) shows exactly these tables.

- :func:`retention_curve` -- expected share of today's customers still alive over the
  horizon, with bands (overall and per segment).
- :func:`average_order_value` -- expected spend per transaction (Gamma-Gamma), per
  customer and per segment.
- :func:`value_tiers` -- high / medium / low tiers by expected CLV, with each customer's
  probability of really being in their tier.
- :func:`at_risk` -- customers with high past value and a low P(alive).
- :func:`lapse_risk` -- who is likely to lapse in the next window: probably active
  today, probably no purchase in the window.
- :func:`purchase_probabilities` -- each customer's probability of 0, 1, 2, ...
  purchases in the next window.
- :func:`residual_value` -- discounted expected residual transactions (CLVTools' DERT)
  and the lifetime value without a horizon.
- :func:`p_alive_thresholds` -- how many customers and how much expected CLV lie below
  each P(alive) cut-off.

CLV over sub-windows of the horizon (year 1, years 2-3) from one simulation is
:func:`~clvbayes.predict.predict_customers`'s ``intervals`` option.

Segment comparisons of per-customer draws (means per segment, contrasts, CLV:CAC) are in
:mod:`clvbayes.segments`: :func:`~clvbayes.segments.segment_summary`,
:func:`~clvbayes.segments.segment_contrasts`, :func:`~clvbayes.segments.clv_cac`.

Draws from a fit (:func:`retention_curve`, :func:`average_order_value`) are ``n_draws``
posterior draws pooled over the chains and thinned evenly; their ``draws`` have one
chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvbayes.data.calendar import customer_table
from clvbayes.data.validate import check_rfm
from clvbayes.math import gamma_gamma
from clvbayes.math.draws import draw_index
from clvbayes.models.fitted import check_fitted, check_time_units
from clvbayes.predict.calendar import forecast_clock
from clvbayes.predict.customers import dert, p_alive, p_no_purchase, purchase_pmf
from clvbayes.predict.options import PredictOptions
from clvbayes.predict.result import Result, customer_draws
from clvbayes.predict.summaries import eti, stacked_draws
from clvbayes.segments import segment_indicator, segment_summary

__all__ = [
    "P_ALIVE_CUTOFFS",
    "TIERS",
    "at_risk",
    "average_order_value",
    "lapse_risk",
    "p_alive_thresholds",
    "purchase_probabilities",
    "residual_value",
    "retention_curve",
    "value_tiers",
]

TIERS = ("high", "medium", "low")
"""Value tiers, most valuable first (:func:`value_tiers`)."""


def _n_draws(fit: Any) -> int:
    """Number of posterior draws (chains x draws) of a fitted model."""
    chains, draws = next(iter(fit.params().values())).shape[:2]
    return int(chains * draws)


def _columns(values: np.ndarray, part: slice) -> np.ndarray:
    """The customers ``part`` of per-customer draws (a shared ``(draw, 1)`` column as is)."""
    return values if values.shape[1] == 1 else values[:, part]


def _labels(segments: Any, rfm: Any) -> Any:
    """``segments`` as given, or the RFM column it names."""
    if not isinstance(segments, str):
        return segments
    if segments not in rfm:
        raise ValueError(
            f"segments={segments!r} is not a column of the RFM table (columns: "
            f"{list(rfm.columns)}); pass a column name or one label per customer."
        )
    return np.asarray(rfm[segments])


def _customer_ids(rfm: Any, n: int) -> np.ndarray:
    if "customer_id" in rfm:
        return np.asarray(rfm["customer_id"])
    return np.asarray(getattr(rfm, "index", np.arange(n)))


def _pooled(values: np.ndarray) -> tuple[tuple[str, str], dict[str, np.ndarray]]:
    """Dims and coordinates of pooled ``(sample, ...)`` draws as one chain."""
    return ("chain", "draw"), {"chain": np.array([0]), "draw": np.arange(values.shape[0])}


def retention_curve(
    fit: Any,
    rfm: Any,
    *,
    times: Sequence[float],
    segments: Any = None,
    n_draws: int | None = 200,
    ci_prob: float = 0.9,
    seed: int | None = None,
    chunk_customers: int = 2048,
    calendar_covariates: pd.DataFrame | None = None,
) -> Result:
    """Expected share of the customers still alive ``t`` units after the calibration end.

    Per posterior draw and customer: ``P(alive at T)`` times the probability that a
    customer alive at ``T`` is still alive ``t`` later, averaged over the customer's
    latent state (the family's ``survival``; BG/NBD: dropouts arrive at rate ``λ p``, so
    ``((α+T)/(α+T+p t))^(r+x)`` over ``λ ~ Gamma(r+x, α+T)``, with ``p ~ Beta(a, b+x)``
    drawn once per draw and customer; Pareto/NBD: ``((β+T)/(β+T+t))^s``). Averaged over
    customers, this is the share alive per posterior draw. With calendar-time effects
    (a fit of :func:`clvbayes.calendar_rfm` data) the histories and the times ``t`` run on
    each draw's operational clock (its calibration multipliers and a forecast path of
    them drawn with ``seed``, :func:`clvbayes.predict.calendar.forecast_clock`).

    Parameters
    ----------
    fit : FittedModel
        A fitted transaction model (BG/NBD, MBG/NBD, Pareto/NBD); for a segmented fit
        each customer uses their segment's parameters (``rfm`` then has the segment
        column).
    rfm : DataFrame
        ``frequency, recency, T`` per customer.
    times : sequence of float
        Times after the calibration end (model units); 0 gives today's share alive.
    segments : str or array_like, optional
        A column of ``rfm`` or each customer's segment label: adds one curve per segment.
    n_draws : int, optional
        Posterior draws used (pooled over chains and thinned evenly; None: all).
    ci_prob : float
        Mass of the band (equal-tailed).
    seed : int, optional
        Seed of the dropout-probability draws (and of the future calendar paths of a fit
        with calendar-time effects).
    chunk_customers : int
        Customers handled at once (memory ``n_draws x chunk x len(times)`` floats).
    calendar_covariates : DataFrame, optional
        With known calendar covariates: their values for the forecast periods the fit's
        ``TimeEffects(covariates=...)`` did not hold (as for
        :func:`clvbayes.predict_customers`).

    Returns
    -------
    Result
        ``summary``: ``segment, time, share_alive_mean, share_alive_low,
        share_alive_high``, the whole base (:data:`clvbayes.segments.ALL`) first;
        ``draws``: ``share_alive`` with dims ``(chain, draw, segment, time)``.

    Examples
    --------
    >>> bg = clvbayes.BGNBD().fit(rfm, seed=1)  # doctest: +SKIP
    >>> curve = retention_curve(bg, rfm, times=[0, 13, 26, 52], segments="channel", seed=2)
    ...     # doctest: +SKIP
    >>> curve.summary.pivot(index="time", columns="segment", values="share_alive_mean")
    ...     # doctest: +SKIP
    """
    family = check_fitted(fit, "fit")
    check_time_units(fit, rfm)
    rfm = customer_table(rfm)
    values = check_rfm(rfm, ("frequency", "recency", "T"))
    x, t_x, T = values["frequency"], values["recency"], values["T"]
    times = np.asarray(times, dtype=float)
    take = draw_index(_n_draws(fit), n_draws, cycle=False)
    params = fit.customer_params(rfm, take)  # (draw, customer or 1)
    labels, onehot = segment_indicator(_labels(segments, rfm), x.size)
    rng = np.random.default_rng(seed)
    clock = None
    if getattr(fit, "calendar", None) is not None:  # each draw's operational clock
        horizon = float(np.max(times, initial=0.0))
        clock = forecast_clock(fit, take, horizon, rng, calendar_covariates)
        windows = clock.window(times).T[:, :, None]  # (time, draw, 1)
    sums = np.zeros((take.size, times.size, onehot.shape[1]))
    for start in range(0, x.size, chunk_customers):
        part = slice(start, start + chunk_customers)
        theta = (_columns(params[k], part) for k in family.params)
        if clock is None:
            state = family.customer_posterior(*theta, x[part], t_x[part], T[part])
            surv = family.survival(state, times, rng)  # (time, draw, customer)
        else:
            state = family.customer_posterior(*theta, x[part], *clock.history(t_x[part], T[part]))
            surv = family.survival(state, windows, rng)
        alive = state.p_alive[None] * surv
        sums += np.einsum("tdc,cg->dtg", alive, onehot[part])
    shares = sums / onehot.sum(axis=0)  # (draw, time, group)
    low, high = eti(shares, ci_prob)
    rows = []
    for g, label in enumerate(labels):
        for i, t in enumerate(times):
            rows.append((label, t, shares[:, i, g].mean(), low[i, g], high[i, g]))
    columns = ["segment", "time", "share_alive_mean", "share_alive_low", "share_alive_high"]
    dims, coords = _pooled(shares)
    draws = xr.Dataset(
        {"share_alive": ((*dims, "segment", "time"), shares.transpose(0, 2, 1)[None])},
        coords={**coords, "segment": np.array(labels, dtype=str), "time": times},
    )
    return Result(pd.DataFrame(rows, columns=columns), draws)


def average_order_value(
    spend_fit: Any,
    rfm: Any,
    *,
    segments: Any = None,
    n_draws: int | None = 1000,
    ci_prob: float = 0.9,
) -> Result:
    """Expected spend per transaction, per customer and per segment (Gamma-Gamma).

    Per draw, :func:`clvbayes.math.gamma_gamma.expected_spend` (Fader & Hardie 2013,
    eq. 5): a weighted mean of the population mean and the customer's own average
    repeat spend; customers without a repeat purchase get the population mean. Draws
    with ``q <= 1`` (no finite mean) are left out.

    Parameters
    ----------
    spend_fit : FittedModel
        A fitted GammaGamma; for a segmented fit each customer uses their segment's
        parameters (``rfm`` then has the segment column).
    rfm : DataFrame or CalendarRFM
        ``frequency, monetary_value`` per customer (and ``customer_id``, else the index);
        a :class:`~clvbayes.data.calendar.CalendarRFM` gives its customer table.
    segments : str or array_like, optional
        A column of ``rfm`` or each customer's segment label.
    n_draws : int, optional
        Posterior draws used (pooled over chains and thinned evenly; None: all).
    ci_prob : float
        Mass of the intervals (equal-tailed).

    Returns
    -------
    Result
        ``summary``: ``customer_id, aov_mean, aov_low, aov_high``; ``groups``: ``segment,
        n_customers, aov_mean, aov_low, aov_high`` (the segment's mean expected order
        value per draw, :func:`clvbayes.segments.segment_summary`; the whole base
        first); ``draws``: ``aov`` with dims ``(chain, draw, customer_id)``.

    Examples
    --------
    >>> gg = clvbayes.GammaGamma().fit(rfm, seed=1)  # doctest: +SKIP
    >>> aov = average_order_value(gg, rfm, segments="channel")  # doctest: +SKIP
    >>> aov.groups  # doctest: +SKIP
    """
    check_fitted(spend_fit, "spend_fit", role="spend")
    rfm = customer_table(rfm)
    values = check_rfm(rfm, ("frequency", "monetary_value"))
    x, z = values["frequency"], values["monetary_value"]
    informed = (x > 0) & (z > 0)
    x, z = np.where(informed, x, 0.0), np.where(informed, z, 0.0)
    take = draw_index(_n_draws(spend_fit), n_draws, cycle=False)
    params = spend_fit.customer_params(rfm, take)  # (draw, customer or 1)
    p, q, v = (params[k] for k in ("p", "q", "v"))
    finite = (q > 1).all(axis=1).nonzero()[0]  # draws with a finite mean in every segment
    if finite.size == 0:
        raise ValueError(
            "every Gamma-Gamma draw has q <= 1: the mean order value is infinite; check the "
            "spend data (monetary_value) and the priors."
        )
    aov = gamma_gamma.expected_spend(p[finite], q[finite], v[finite], x, z)
    low, high = eti(aov, ci_prob)
    ids = _customer_ids(rfm, x.size)
    per_customer = pd.DataFrame(
        {"customer_id": ids, "aov_mean": aov.mean(axis=0), "aov_low": low, "aov_high": high}
    )
    dims, coords = _pooled(aov)
    draws = xr.Dataset(
        {"aov": ((*dims, "customer_id"), aov[None])}, coords={**coords, "customer_id": ids}
    )
    groups = segment_summary(draws, _labels(segments, rfm), ci_prob=ci_prob).summary
    return Result(per_customer, draws, groups)


def value_tiers(
    draws: Result | xr.Dataset | xr.DataArray,
    *,
    variable: str = "clv",
    shares: tuple[float, float] = (0.2, 0.3),
) -> Result:
    """High / medium / low value tiers by expected CLV, with P(in tier) per customer.

    A customer's tier is set by the rank of their posterior mean CLV: the top
    ``shares[0]`` of customers are *high*, the next ``shares[1]`` *medium*, the rest
    *low*. In each draw the same cut points are applied to that draw's CLV ranks (the
    draw's ``1 - shares[0]`` and ``1 - shares[0] - shares[1]`` quantiles across
    customers); ``p_in_tier`` is the share of draws in which the customer lands in their
    own tier: how sure the assignment is.

    Parameters
    ----------
    draws : Result, Dataset or DataArray
        Per-customer draws with dims ``(chain, draw, customer_id)``, e.g. the result of
        :func:`~clvbayes.predict.predict_customers` with a spend fit.
    variable : str
        The value ranked.
    shares : (float, float)
        Shares of customers in the high and medium tiers.

    Returns
    -------
    Result
        ``summary``: ``customer_id, tier, p_in_tier``; ``groups``: ``tier, n_customers,
        clv_mean_total, clv_share, mean_p_in_tier`` (the tier's expected total value and
        its share of the base's); ``draws``: the value ranked and ``tier``, each draw's
        tier of each customer (0 = high, 1 = medium, 2 = low; :data:`TIERS`).

    Examples
    --------
    >>> res = predict_customers(bg, rfm, horizon=52, spend_fit=gg, seed=1)  # doctest: +SKIP
    >>> tiers = value_tiers(res)  # doctest: +SKIP
    >>> tiers.groups  # doctest: +SKIP
    """
    high_share, medium_share = shares
    if not (0 < high_share and 0 < medium_share and high_share + medium_share < 1):
        raise ValueError(f"tier shares must be positive and sum to less than 1, got {shares}.")
    ds = customer_draws(draws, [variable])
    values = np.asarray(stacked_draws(ds, variable), dtype=float)  # (sample, customer)
    n = values.shape[1]
    mean = values.mean(axis=0)
    rank = np.empty(n)
    rank[np.argsort(-mean, kind="stable")] = np.arange(n)  # 0 = most valuable
    n_high = round(high_share * n)
    n_medium = round((high_share + medium_share) * n)
    tier = np.where(rank < n_high, 0, np.where(rank < n_medium, 1, 2))
    cuts = np.quantile(values, [1 - high_share, 1 - high_share - medium_share], axis=1)
    in_high = values > cuts[0][:, None]
    in_medium = ~in_high & (values > cuts[1][:, None])
    drawn = np.where(in_high, 0, np.where(in_medium, 1, 2)).astype(np.int8)
    p_in_tier = (drawn == tier).mean(axis=0)
    per_customer = pd.DataFrame(
        {
            "customer_id": ds["customer_id"].to_numpy(),
            "tier": np.array(TIERS)[tier],
            "p_in_tier": p_in_tier,
        }
    )
    total = mean.sum()
    rows = []
    for k, name in enumerate(TIERS):
        members = tier == k
        value = float(mean[members].sum())
        rows.append(
            (
                name,
                int(members.sum()),
                value,
                value / total if total > 0 else np.nan,
                float(p_in_tier[members].mean()) if members.any() else np.nan,
            )
        )
    per_tier = pd.DataFrame(
        rows, columns=["tier", "n_customers", "clv_mean_total", "clv_share", "mean_p_in_tier"]
    )
    da = ds[variable]
    out = ds.assign(tier=(da.dims, drawn.reshape(da.shape)))
    out["tier"].attrs["labels"] = list(TIERS)
    return Result(per_customer, out, per_tier)


def at_risk(
    result: Result,
    rfm: Any,
    *,
    value_quantile: float = 0.8,
    p_alive_below: float = 0.5,
) -> Result:
    """Customers with high past value and a low probability of being alive.

    Past value is the calibration spend on repeat purchases, ``frequency x
    monetary_value``. A customer is at risk when their past value is at or above the
    ``value_quantile`` of the repeat customers' past values and their posterior mean
    ``p_alive`` is below ``p_alive_below``: valuable customers who have probably lapsed,
    the targets of a re-engagement campaign.

    Parameters
    ----------
    result : Result
        :func:`~clvbayes.predict.predict_customers` for ``rfm`` (its summary's
        ``p_alive``).
    rfm : DataFrame or CalendarRFM
        The customers predicted, in the same order: ``frequency, monetary_value`` (and
        ``customer_id``, else the index; a CalendarRFM gives its customer table). Not
        modified.
    value_quantile : float
        Past-value cut among repeat customers.
    p_alive_below : float
        P(alive) cut.

    Returns
    -------
    Result
        ``summary``: the at-risk customers, most valuable first: the columns of ``rfm``,
        then those of ``result.summary`` and ``past_value``; ``draws``: ``result.draws``
        of these customers.

    Examples
    --------
    >>> res = predict_customers(bg, rfm, horizon=52, spend_fit=gg, seed=1)  # doctest: +SKIP
    >>> at_risk(res, rfm).summary.head(25)  # doctest: +SKIP
    """
    rfm = customer_table(rfm)
    values = check_rfm(rfm, ("frequency", "monetary_value"))
    ids = _customer_ids(rfm, values["frequency"].size)
    predicted = result.summary
    _check_result(result, ids, "p_alive", "pass predict_customers' result")
    table = pd.DataFrame(rfm).reset_index(drop=True)
    if "customer_id" not in table:
        table.insert(0, "customer_id", ids)
    extra = [c for c in predicted.columns if c not in table.columns]
    table = pd.concat([table, predicted[extra].reset_index(drop=True)], axis=1)
    past = values["frequency"] * values["monetary_value"]
    repeat = past[values["frequency"] > 0]
    if repeat.size == 0:
        mask = np.zeros(past.size, dtype=bool)
    else:
        cut = float(np.quantile(repeat, value_quantile))
        mask = (past >= cut) & (past > 0) & (table["p_alive"].to_numpy(float) < p_alive_below)
    out = table.loc[mask].assign(past_value=past[mask])
    out = out.sort_values(["past_value", "customer_id"], ascending=[False, True])
    draws = result.draws
    if "customer_id" in draws.dims:
        draws = draws.sel(customer_id=out["customer_id"].to_numpy())
    return Result(out.reset_index(drop=True), draws)


def _posterior_summary(name: str, draws: xr.DataArray, ci_prob: float) -> dict[str, np.ndarray]:
    """``<name>_mean, <name>_low, <name>_high`` (equal-tailed) of per-customer draws."""
    values = stacked_draws(draws.to_dataset(name=name), name)
    low, high = eti(values, ci_prob)
    return {f"{name}_mean": np.nanmean(values, axis=0), f"{name}_low": low, f"{name}_high": high}


def purchase_probabilities(
    fit: Any,
    rfm: Any,
    *,
    window: float,
    max_count: int = 5,
    n_draws: int | None = 200,
) -> Result:
    """Each customer's probability of 0, 1, ..., ``max_count`` purchases in the next window.

    The posterior predictive pmf ``P(n purchases in (T, T+window] | history)``: the
    family's exact conditional pmf (:mod:`clvbayes.math.family`, ``conditional_pmf``)
    averaged over posterior draws. ``p_0`` is the probability of no purchase in the
    window (churn in the window, :func:`lapse_risk`).

    Parameters
    ----------
    fit : FittedModel
        A fitted transaction model (BG/NBD, MBG/NBD, Pareto/NBD); for a segmented fit
        ``rfm`` has the segment column.
    rfm : DataFrame
        ``customer_id`` (else the index), ``frequency, recency, T``.
    window : float
        Window length in the model's time unit.
    max_count : int
        Largest count with its own column; ``p_more`` is the rest.
    n_draws : int, optional
        Posterior draws used (thinned evenly within each chain; None: all).

    Returns
    -------
    Result
        ``summary``: ``customer_id, p_0, ..., p_<max_count>, p_more``; ``draws``:
        ``purchase_pmf`` with dims ``(chain, draw, customer_id, purchases)``.

    Examples
    --------
    >>> pmf = purchase_probabilities(bg, rfm, window=13)  # doctest: +SKIP
    >>> pmf.summary.head()  # doctest: +SKIP
    """
    if not (isinstance(max_count, int | np.integer) and max_count >= 0):
        raise ValueError(f"max_count must be a whole number >= 0, got {max_count!r}.")
    pmf = purchase_pmf(fit, rfm, window, range(max_count + 1), n_draws=n_draws)
    mean = pmf.mean(("chain", "draw")).to_numpy()
    columns = {"customer_id": pmf["customer_id"].to_numpy()}
    columns.update({f"p_{k}": mean[:, k] for k in range(max_count + 1)})
    columns["p_more"] = np.clip(1.0 - mean.sum(axis=1), 0.0, 1.0)
    return Result(pd.DataFrame(columns), pmf.to_dataset())


def lapse_risk(
    fit: Any,
    rfm: Any,
    *,
    window: float,
    result: Result | None = None,
    p_no_purchase_above: float = 0.5,
    p_alive_above: float = 0.5,
    min_frequency: int = 1,
    n_draws: int | None = 200,
    ci_prob: float = 0.9,
    seed: int | None = None,
    calendar_covariates: pd.DataFrame | None = None,
) -> Result:
    """Who is likely to lapse in the next window: probably active, probably quiet.

    A customer is flagged when their posterior mean ``P(alive)`` is at least
    ``p_alive_above`` (still a customer today), their probability of no purchase in
    ``(T, T+window]`` is at least ``p_no_purchase_above`` and they made at least
    ``min_frequency`` repeat purchases: active customers about to go quiet, the ones to
    contact before they do (compare :func:`at_risk`: valuable customers who have
    probably lapsed already). ``P(no purchase)`` is the churn probability of the window,
    ``L(x, t_x, T+window) / L(x, t_x, T)`` per draw
    (:func:`clvbayes.predict.p_no_purchase`). One-time buyers are left out by default:
    the BG/NBD cannot tell whether they are still active (``P(alive) = 1`` until a repeat
    purchase), so they would all count as active and quiet.

    Parameters
    ----------
    fit : FittedModel
        A fitted transaction model (BG/NBD, MBG/NBD, Pareto/NBD).
    rfm : DataFrame
        ``customer_id`` (else the index), ``frequency, recency, T`` (and any other
        columns, e.g. ``monetary_value``, which are carried along). Not modified.
    window : float
        Window length in the model's time unit (e.g. 13 for a quarter of weekly data).
    result : Result, optional
        :func:`~clvbayes.predict.predict_customers` for ``rfm`` (same customers, same
        order): adds its ``clv_mean`` and ranks the flagged customers by it; else they
        are ranked by ``P(no purchase)``.
    p_no_purchase_above, p_alive_above : float
        The two probability cut-offs.
    min_frequency : int
        Fewest repeat purchases of a flagged customer (0: everyone).
    n_draws : int, optional
        Posterior draws used (thinned evenly within each chain; None: all).
    ci_prob : float
        Mass of the ``p_no_purchase`` interval (equal-tailed).
    seed : int, optional
        For a fit with calendar-time effects: the seed of the future calendar paths.
    calendar_covariates : DataFrame, optional
        As for :func:`retention_curve`.

    Returns
    -------
    Result
        ``summary``: the flagged customers, most valuable (or most likely quiet) first:
        the columns of ``rfm``, ``p_alive``, ``p_no_purchase_mean, p_no_purchase_low,
        p_no_purchase_high`` and ``clv_mean`` with ``result``; ``groups``: one row, the
        number of customers flagged and of customers in all; ``draws``: ``p_alive`` and
        ``p_no_purchase`` of the flagged customers.

    Examples
    --------
    >>> res = predict_customers(bg, rfm, horizon=52, spend_fit=gg, seed=1)  # doctest: +SKIP
    >>> lapse_risk(bg, rfm, window=13, result=res).summary.head(25)  # doctest: +SKIP
    """
    for name, cut in (("p_no_purchase_above", p_no_purchase_above), ("p_alive_above", p_alive_above)):  # fmt: skip
        if not 0 <= cut <= 1:
            raise ValueError(f"{name} must be a probability in [0, 1], got {cut!r}.")
    quiet = p_no_purchase(
        fit, rfm, window, n_draws=n_draws, seed=seed, calendar_covariates=calendar_covariates
    )
    alive = p_alive(fit, rfm, n_draws=n_draws)
    rfm = customer_table(rfm)
    table = pd.DataFrame(rfm).reset_index(drop=True)
    ids = quiet["customer_id"].to_numpy()
    if "customer_id" not in table:
        table.insert(0, "customer_id", ids)
    table["p_alive"] = alive.mean(("chain", "draw")).to_numpy()
    for column, values in _posterior_summary("p_no_purchase", quiet, ci_prob).items():
        table[column] = values
    order = ["p_no_purchase_mean", "customer_id"]
    if result is not None:
        _check_result(result, ids, "clv_mean", "predict_customers needs a spend_fit for CLV")
        table["clv_mean"] = result.summary["clv_mean"].to_numpy()
        order = ["clv_mean", "customer_id"]
    mask = (
        (table["p_alive"] >= p_alive_above)
        & (table["p_no_purchase_mean"] >= p_no_purchase_above)
        & (check_rfm(rfm, ("frequency",))["frequency"] >= min_frequency)
    )
    flagged = table.loc[mask].sort_values(order, ascending=[False, True])
    counts = pd.DataFrame({"window": [float(window)], "n_flagged": [int(mask.sum())],
                           "n_customers": [len(table)]})  # fmt: skip
    draws = xr.Dataset({"p_alive": alive, "p_no_purchase": quiet})
    draws = draws.sel(customer_id=flagged["customer_id"].to_numpy())
    return Result(flagged.reset_index(drop=True), draws, counts)


def _check_result(result: Result, ids: np.ndarray, column: str, fix: str) -> None:
    """Raise ``ValueError`` unless ``result`` holds the customers ``ids`` (in this order)
    and a ``column`` (``fix`` says how to get one)."""
    predicted = result.summary
    if len(predicted) != ids.size or not np.array_equal(predicted["customer_id"].to_numpy(), ids):
        raise ValueError(
            f"result has {len(predicted)} customers, rfm {ids.size} (or another order); pass "
            "the rfm the predictions were made for."
        )
    if column not in predicted:
        raise ValueError(f"result.summary has no {column} column; {fix}.")


def residual_value(
    fit: Any,
    rfm: Any,
    *,
    spend_fit: Any = None,
    options: PredictOptions | None = None,
    **kwargs: Any,
) -> Result:
    """Discounted expected residual transactions (DERT) and the residual lifetime value.

    DERT is the expected number of *all* the customer's future purchases, each discounted
    continuously to the end of calibration, ``E[Σ_j exp(-δ t_j)]`` (CLVTools' ``DERT``;
    the family's ``dert``, :mod:`clvbayes.math.family`). With a spend fit, the residual
    value is ``margin x DERT x E[spend per purchase]`` per posterior draw (CLVTools'
    ``predicted.CLV``): the customer's lifetime value without a horizon.

    Parameters
    ----------
    fit : FittedModel
        A fitted transaction model (BG/NBD, MBG/NBD, Pareto/NBD).
    rfm : DataFrame or CalendarRFM
        ``customer_id`` (else the index), ``frequency, recency, T`` and, with a spend
        fit, ``monetary_value`` (a CalendarRFM gives its customer table).
    spend_fit : FittedModel, optional
        A fitted GammaGamma (its draws are paired with the transaction draws in order,
        repeating when it has fewer).
    options : PredictOptions, optional
        The discount rate (``annual_discount``, ``continuous_discount`` or
        ``period_discount`` with ``time_unit``; it must be positive: undiscounted, the
        expected purchases of an unlimited future may be infinite), ``margin``,
        ``n_draws`` (default: all draws) and ``ci_prob``; fields may be passed as
        keyword arguments, e.g. ``annual_discount=0.1``. CLVTools' default is
        ``continuous_discount=log(1.1)`` per time unit.

    Returns
    -------
    Result
        ``summary``: ``customer_id, dert_mean, dert_low, dert_high`` and with a spend fit
        ``residual_clv_mean, residual_clv_low, residual_clv_high`` (equal-tailed
        intervals of mass ``ci_prob``); ``draws``: ``dert`` (and ``residual_clv``) with
        dims ``(chain, draw, customer_id)``.

    Examples
    --------
    >>> residual_value(pnbd, rfm, spend_fit=gg, time_unit="W", annual_discount=0.1)
    ...     # doctest: +SKIP
    """
    opts = PredictOptions.merge(options, kwargs, "residual_value")
    delta = opts.discount_rate
    if not delta > 0:
        raise ValueError(
            "residual_value needs a positive discount rate (annual_discount=0.1, "
            "continuous_discount=..., or period_discount=...): without discounting the "
            "expected purchases over an unlimited future may be infinite."
        )
    rfm = customer_table(rfm)
    dert_draws = dert(fit, rfm, delta, n_draws=opts.n_draws)
    columns = {"customer_id": dert_draws["customer_id"].to_numpy()}
    columns.update(_posterior_summary("dert", dert_draws, opts.ci_prob))
    draws = dert_draws.to_dataset()
    if spend_fit is not None:
        check_fitted(spend_fit, "spend_fit", role="spend")
        values = check_rfm(rfm, ("frequency", "monetary_value"))
        x, z = values["frequency"], values["monetary_value"]
        informed = (x > 0) & (z > 0)
        shape = dert_draws.shape[:2]
        take = draw_index(_n_draws(spend_fit), int(np.prod(shape)))
        params = spend_fit.customer_params(rfm, take)
        p, q, v = (params[k] for k in ("p", "q", "v"))
        with np.errstate(divide="ignore", invalid="ignore"):
            spend = gamma_gamma.expected_spend(
                p, q, v, np.where(informed, x, 0.0), np.where(informed, z, 0.0)
            )
        spend = np.where(q > 1, spend, np.nan).reshape(*shape, -1)
        value = (opts.margin * dert_draws * spend).rename("residual_clv")
        columns.update(_posterior_summary("residual_clv", value, opts.ci_prob))
        draws["residual_clv"] = value
    return Result(pd.DataFrame(columns), draws)


P_ALIVE_CUTOFFS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Default cut-offs of :func:`p_alive_thresholds`."""


def p_alive_thresholds(
    result: Result, cutoffs: Sequence[float] = P_ALIVE_CUTOFFS, *, ci_prob: float = 0.9
) -> Result:
    """How many customers, and how much expected CLV, lie below each P(alive) cut-off.

    A guide for choosing a "probably lapsed" threshold: for each cut-off, the customers
    whose posterior mean ``P(alive)`` is below it, their share of the base, their total
    expected CLV and its share of the base's, with an interval of that total from the
    CLV draws (the customers are fixed by their mean ``P(alive)``; the interval is the
    spread of their summed CLV over the draws).

    Parameters
    ----------
    result : Result
        :func:`~clvbayes.predict.predict_customers` (its summary's ``p_alive`` and,
        with a spend fit, ``clv_mean``; its ``clv`` draws, if kept, give the intervals).
    cutoffs : sequence of float
        P(alive) cut-offs in ``(0, 1]``.
    ci_prob : float
        Mass of the intervals (equal-tailed).

    Returns
    -------
    Result
        ``summary``: one row per cut-off: ``p_alive_below, n_customers,
        share_customers`` and with CLV ``clv_mean_total, clv_share`` (and
        ``clv_total_low, clv_total_high`` with CLV draws); ``draws``: ``clv_below`` with
        dims ``(chain, draw, cutoff)`` (empty without CLV draws).

    Examples
    --------
    >>> res = predict_customers(bg, rfm, horizon=52, spend_fit=gg, seed=1)  # doctest: +SKIP
    >>> p_alive_thresholds(res).summary  # doctest: +SKIP
    """
    cuts = np.asarray(cutoffs, dtype=float)
    if cuts.ndim != 1 or not cuts.size or not np.all((cuts > 0) & (cuts <= 1)):
        raise ValueError(f"cutoffs must be probabilities in (0, 1], got {cutoffs!r}.")
    summary = result.summary
    if "p_alive" not in summary:
        raise ValueError("result.summary has no p_alive column; pass predict_customers' result.")
    alive = summary["p_alive"].to_numpy(float)
    below = alive[None, :] < cuts[:, None]  # (cutoff, customer)
    table = pd.DataFrame({"p_alive_below": cuts, "n_customers": below.sum(axis=1)})
    table["share_customers"] = table["n_customers"] / max(alive.size, 1)
    draws = xr.Dataset()
    if "clv_mean" in summary:
        clv = summary["clv_mean"].to_numpy(float)
        total = clv.sum()
        table["clv_mean_total"] = below @ clv
        table["clv_share"] = table["clv_mean_total"] / total if total > 0 else np.nan
        if "clv" in result.draws:
            da = result.draws["clv"].transpose("chain", "draw", "customer_id")
            sums = np.einsum("cdn,kn->cdk", da.to_numpy().astype(float), below.astype(float))
            low, high = eti(sums.reshape(-1, cuts.size), ci_prob)
            table["clv_total_low"], table["clv_total_high"] = low, high
            draws = xr.Dataset(
                {"clv_below": (("chain", "draw", "cutoff"), sums)},
                coords={"chain": da["chain"].to_numpy(), "draw": da["draw"].to_numpy(),
                        "cutoff": cuts},
            )  # fmt: skip
    return Result(table, draws)
