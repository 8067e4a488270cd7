"""Predictive checks of the repeat-purchase histogram (the papers' fit figure).

The same function serves the prior predictive check (parameters drawn from the priors:
what data do the priors find plausible?) and the posterior predictive check (parameters
from the posterior: does the fitted model reproduce the data?). For each parameter draw,
a data set with the customers' own ages ``T`` is simulated from the BG/NBD process and
its frequency histogram (0, 1, ..., ``max_count`` or more) is recorded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvbayes.data.validate import check_rfm
from clvbayes.math.draws import draw_index
from clvbayes.math.processes import TooManyPurchasesError
from clvbayes.models.fitted import check_fitted, check_time_units
from clvbayes.predict.calendar import birth_groups, cohort_expectation
from clvbayes.predict.options import predictive_draws
from clvbayes.simulate import simulate_bgnbd, simulate_transaction_model

__all__ = [
    "frequency_histogram_check",
    "period_tracking",
    "predictive_histogram_check",
    "prior_draws",
    "tracking_curve",
]


def _bins(max_count: int) -> list[str]:
    return [str(k) for k in range(max_count)] + [f"{max_count}+"]


def _histogram(frequency: np.ndarray, max_count: int) -> np.ndarray:
    clipped = np.minimum(np.asarray(frequency, dtype=np.int64), max_count)
    return np.bincount(clipped, minlength=max_count + 1)


def prior_draws(spec: Any, rfm: Any, n_draws: int = 200, seed: int | None = None) -> dict:
    """Draws of the population parameters from ``spec``'s priors.

    Parameters
    ----------
    spec : ModelSpec
        E.g. ``clvbayes.BGNBD(priors=...)``.
    rfm : DataFrame
        Data the model would be fitted to (only its shape matters here).
    n_draws : int
        Number of draws.
    seed : int, optional
        Random seed.

    Returns
    -------
    dict of str to ndarray
        Each parameter's draws, shaped ``(1, n_draws)`` like a one-chain posterior.
    """
    import pymc as pm

    model = spec.build(spec.prepare(rfm), likelihood=False)
    with model:
        tree = pm.sample_prior_predictive(
            draws=n_draws, var_names=list(spec.params), random_seed=seed
        )
    prior = tree["prior"].to_dataset()
    return {p: prior[p].to_numpy().reshape(1, -1) for p in spec.params}


def frequency_histogram_check(
    params: dict[str, np.ndarray],
    rfm: Any,
    *,
    max_count: int = 7,
    n_draws: int | None = 200,
    ci_prob: float = 0.9,
    seed: int | None = None,
) -> pd.DataFrame:
    """Observed versus predicted number of customers by repeat purchases.

    Parameters
    ----------
    params : dict
        BG/NBD parameter draws ``r, alpha, a, b`` shaped ``(chain, draw)``, e.g.
        ``fitted.params()`` (posterior check) or :func:`prior_draws` (prior check).
    rfm : DataFrame
        Customers with ``frequency`` and ``T``; each simulated data set reuses their ``T``.
    max_count : int
        Frequencies at or above it are pooled into the last bin ("7+" in the papers).
    n_draws : int, optional
        Number of simulated data sets: parameter draws thinned evenly, or repeated
        cyclically when fewer draws are available (e.g. one MAP draw); None: one per draw
        (:func:`clvbayes.math.draws.draw_index`).
    ci_prob : float
        Mass of the central interval of the predicted counts.
    seed : int, optional
        Random seed for the simulations.

    Returns
    -------
    DataFrame
        One row per bin: ``observed``, ``predicted_mean``, ``predicted_low``,
        ``predicted_high`` (numbers of customers) and ``p_observed_below``, the
        share of simulated data sets with fewer customers in that bin than observed.
    """
    values = check_rfm(rfm, ("frequency", "T"))
    T = values["T"]
    flat = {k: np.asarray(v).reshape(-1) for k, v in params.items()}
    total = flat["r"].size
    take = draw_index(total, n_draws)
    rng = np.random.default_rng(seed)
    sims = np.empty((take.size, max_count + 1))
    for row, i in enumerate(take):
        draw = [flat[k][i] for k in ("r", "alpha", "a", "b")]
        try:
            sim = simulate_bgnbd(*draw, T, rng=rng)
        except TooManyPurchasesError as err:
            raise _at_draw(err, "frequency_histogram_check", int(i)) from err
        sims[row] = _histogram(sim["frequency"], max_count)
    observed = _histogram(values["frequency"], max_count)
    return _bin_table(observed, sims, ci_prob, pd.Index(_bins(max_count), name="repeat_purchases"))


def _at_draw(err: TooManyPurchasesError, caller: str, draw: int) -> TooManyPurchasesError:
    """``err`` of a simulator, told with the parameter draw it was simulating."""
    return TooManyPurchasesError(
        f"{caller}, parameter draw {draw} (its position in the flattened chain x draw "
        f"arrays): {err}",
        draw=draw,
        customer=err.customer,
        expected=err.expected,
        window=err.window,
    )


def _bin_table(
    observed: np.ndarray, sims: np.ndarray, ci_prob: float, index: pd.Index
) -> pd.DataFrame:
    """Observed counts per bin beside the simulated data sets' mean, central interval and
    the share of simulated data sets below the observed count (``sims``: data sets × bins)."""
    tail = (1 - ci_prob) / 2
    return pd.DataFrame(
        {
            "observed": observed,
            "predicted_mean": sims.mean(axis=0),
            "predicted_low": np.quantile(sims, tail, axis=0),
            "predicted_high": np.quantile(sims, 1 - tail, axis=0),
            "p_observed_below": (sims < observed).mean(axis=0),
        },
        index=index,
    )


# --- tracking: cumulative repeat purchases over calendar time -------------------------


def tracking_curve(
    fit: Any,
    rfm: Any,
    *,
    times: Any = None,
    actual: pd.Series | None = None,
    n_draws: int | None = 200,
    ci_prob: float = 0.9,
    seed: int | None = None,
    calendar_covariates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Cumulative repeat purchases of a cohort over time: predicted (with bands) vs actual.

    The papers' tracking plot (Fader, Hardie & Lee 2005, fig. 3). Time 0 is the end of
    the calibration period; a customer of age ``T`` there was born at ``-T``. The
    predicted cumulative repeat purchases at time ``t`` are, for each posterior draw,
    ``sum_i E[X(t + T_i)]`` over the customers born by then, with ``E[X(t)]`` the
    model's *unconditional* expected repeat purchases of a new customer (it uses the
    birth dates only, not the customers' histories, so the calibration part is a fit
    check and the holdout part an out-of-sample forecast). The band is the central
    ``ci_prob`` interval of that expectation over the posterior (parameter uncertainty).

    A fit with calendar-time effects runs each customer's clock through the estimated
    multipliers (calibration) and their forecast (holdout), so its band also holds the
    uncertainty of the future calendar; it needs ``rfm`` as a
    :func:`clvbayes.calendar_rfm` result (which any fit accepts).

    Parameters
    ----------
    fit : FittedModel
        A fitted transaction model (``BGNBD``, ``MBGNBD`` or ``ParetoNBD``); for a
        segmented fit each customer uses their segment's parameters.
    rfm : DataFrame
        The customers with their age ``T`` at the end of calibration (and the segment
        column of a segmented fit; e.g.
        :func:`clvbayes.rfm_summary`); ``holdout_duration`` sets the default end.
    times : array_like, optional
        Times (relative to the end of calibration, model units) at which to evaluate.
        Default: whole units from the first birth to the end of the holdout (or 0),
        plus 0 and the end.
    actual : Series, optional
        Repeat purchases indexed by time
        (:func:`clvbayes.data.rfm.repeat_purchase_times`): adds their cumulative count.
    n_draws : int, optional
        Posterior draws used (thinned evenly); None uses all. With calendar-time effects
        each draw has its own future path, and fewer draws than ``n_draws`` (a MAP fit's
        one) are repeated, each with another path.
    ci_prob : float
        Mass of the band.
    seed : int, optional
        Stream of the future calendar paths (fits with time effects).
    calendar_covariates : DataFrame, optional
        Future values of the fit's calendar covariates (indexed by period start).

    Returns
    -------
    DataFrame
        One row per time: ``time``, ``period`` (``"calibration"`` for ``time <= 0``, else
        ``"holdout"``), ``predicted_mean``, ``predicted_low``, ``predicted_high`` and
        ``actual`` (NaN without ``actual``).
    """
    family = check_fitted(fit, "fit")
    calendar_data = rfm if hasattr(rfm, "first_position") else None
    if getattr(fit, "calendar", None) is not None:
        _calendar_periods(rfm, "tracking_curve of a fit with calendar-time effects")
    if calendar_data is not None:
        rfm = calendar_data.customers
    check_time_units(fit, rfm)
    T = check_rfm(rfm, ("T",))["T"]
    if times is None:
        end = 0.0
        if "holdout_duration" in rfm:
            end = float(np.max(np.asarray(rfm["holdout_duration"], dtype=float), initial=0.0))
        start = -float(T.max())
        grid = np.arange(np.ceil(start), np.floor(end) + 1.0)
        times = np.unique(np.concatenate([grid, [0.0, end]]))
    times = np.asarray(times, dtype=float).reshape(-1)
    chains, draws = next(iter(fit.params().values())).shape[:2]
    total = int(chains * draws)
    if getattr(fit, "calendar", None) is not None:
        # each draw's future path is random: a MAP fit's one draw is repeated
        take = draw_index(total, predictive_draws(total, n_draws), cycle=True)
        totals = cohort_expectation(
            fit, calendar_data, calendar_data.grid_end + times, take,
            np.random.default_rng(seed), calendar_covariates,
        )  # fmt: skip
        return _tracking_table(times, totals, ci_prob, actual)
    take = draw_index(total, n_draws, cycle=False)
    # one term per distinct (segment, covariates, birth): a segmented fit's customers use
    # their segment's parameters, a fit with covariates their own
    births, counts, params = birth_groups(fit, rfm, T, take)
    theta = {k: v[:, None, :] for k, v in params.items()}  # (draw, 1, birth or 1)
    age_at = np.maximum(times[:, None] + births[None, :], 0.0)  # (time, birth)
    per_birth = np.asarray(
        family.expected_purchases_new(*family.values(theta), age_at[None]), dtype=float
    )
    totals = per_birth @ counts.astype(float)  # (draw, time)
    return _tracking_table(times, totals, ci_prob, actual)


def _tracking_table(
    times: np.ndarray, totals: np.ndarray, ci_prob: float, actual: pd.Series | None
) -> pd.DataFrame:
    """The tracking curve's table from its per-draw totals ``(draw, time)``."""
    tail = (1.0 - ci_prob) / 2.0
    out = pd.DataFrame(
        {
            "time": times,
            "period": np.where(times <= 0, "calibration", "holdout"),
            "predicted_mean": totals.mean(axis=0),
            "predicted_low": np.quantile(totals, tail, axis=0),
            "predicted_high": np.quantile(totals, 1.0 - tail, axis=0),
            "actual": np.nan,
        }
    )
    if actual is not None:
        order = np.argsort(np.asarray(actual.index, dtype=float), kind="stable")
        when = np.asarray(actual.index, dtype=float)[order]
        cumulative = np.cumsum(np.asarray(actual, dtype=float)[order])
        position = np.searchsorted(when, times, side="right")
        out["actual"] = np.where(position > 0, cumulative[np.maximum(position - 1, 0)], 0.0)
    return out


def period_tracking(
    fit: Any,
    data: Any,
    *,
    n_draws: int | None = 200,
    ci_prob: float = 0.9,
    seed: int | None = None,
    calendar_covariates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Repeat purchases per calendar period, actual against predicted with bands (the
    weekly tracking plot of Fader, Hardie & Lee 2005, figure 2).

    The prediction for a period is the cohort's *unconditional* expectation (births
    only, not histories: :func:`clvbayes.predict.calendar.cohort_expectation`), so the
    calibration part checks the fit and the holdout part is a forecast. A stationary fit
    spreads purchases evenly over calendar time; a fit with calendar-time effects uses
    its estimated multipliers in calibration and their forecast afterwards. The band is
    predictive: per posterior draw (and future path) a Poisson count around the
    period's expectation, so it holds parameter, common-shock and count uncertainty
    (the extra variance from customer heterogeneity within one period is small for
    short periods and left out).

    Parameters
    ----------
    fit : FittedModel
        A fitted transaction model.
    data : CalendarRFM
        The customers and their calendar (:func:`clvbayes.calendar_rfm`), with the
        holdout periods to forecast.
    n_draws : int, optional
        Posterior draws used (thinned evenly); None uses all. Fewer draws than
        ``n_draws`` (a MAP fit's one) are repeated, each with its own future path and
        Poisson counts.
    ci_prob : float
        Mass of the band.
    seed : int, optional
        Random seed (future paths, Poisson counts).
    calendar_covariates : DataFrame, optional
        Future values of the fit's calendar covariates (indexed by period start).

    Returns
    -------
    DataFrame
        One row per period: ``period``, ``start``, ``calibration`` (bool), ``actual``,
        ``predicted_mean``, ``predicted_low``, ``predicted_high``.
    """
    check_fitted(fit, "fit")
    periods = _calendar_periods(data, "period_tracking")
    if not 0.0 < ci_prob < 1.0:
        raise ValueError(f"ci_prob must be in (0, 1); got {ci_prob!r}.")
    rng = np.random.default_rng(seed)
    chains, draws = next(iter(fit.params().values())).shape[:2]
    total = int(chains * draws)
    # each draw's future path and counts are random: a MAP fit's one draw is repeated
    take = draw_index(total, predictive_draws(total, n_draws), cycle=True)
    first_day = (pd.to_datetime(periods["start"]) - pd.Timestamp(data.origin)).dt.days
    unit = data.days_per_unit
    last_day = first_day + periods["days"].to_numpy()
    # period p holds the grid positions [p, p + days / unit): the multiplier's own span
    edges = np.concatenate([[first_day.iloc[0]], last_day]) / unit
    cumulative = cohort_expectation(fit, data, edges, take, rng, calendar_covariates)
    expected = np.maximum(np.diff(cumulative, axis=1), 0.0)
    counts = rng.poisson(expected)
    tail = (1.0 - ci_prob) / 2.0
    return pd.DataFrame(
        {
            "period": periods["period"].to_numpy(),
            "start": periods["start"].to_numpy(),
            "calibration": periods["calibration"].to_numpy(),
            "actual": periods["repeat_purchases"].to_numpy(dtype=float),
            "predicted_mean": expected.mean(axis=0),
            "predicted_low": np.quantile(counts, tail, axis=0),
            "predicted_high": np.quantile(counts, 1.0 - tail, axis=0),
        }
    )


def _calendar_periods(data: Any, caller: str) -> pd.DataFrame:
    """The periods table of a CalendarRFM, or a clear error."""
    periods = getattr(data, "periods", None)
    if not isinstance(periods, pd.DataFrame) or not hasattr(data, "first_position"):
        raise TypeError(
            f"{caller} needs the customers with their calendar: pass "
            "clvbayes.calendar_rfm(transactions, customer_col=..., date_col=..., "
            f"calibration_end=..., observation_end=...), not a {type(data).__name__}."
        )
    return periods


# --- histogram checks of frequency, recency and inactivity for any transaction model ----

STATISTICS = ("frequency", "recency", "inactivity")


def _statistic_bins(statistic: str, T: np.ndarray, max_count: int, n_bins: int) -> Any:
    """Bin labels and a function ``(x, t_x) -> bin index`` for one summary statistic."""
    if statistic == "frequency":
        return _bins(max_count), lambda x, t_x: np.minimum(x.astype(np.int64), max_count)
    edges = np.linspace(0.0, float(T.max()), n_bins + 1)
    spans = [f"{edges[i]:.4g}-{edges[i + 1]:.4g}" for i in range(n_bins)]

    def which(values: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, n_bins - 1)

    if statistic == "recency":
        # customers without a repeat purchase have no recency: a bin of their own
        return ["no repeat", *spans], lambda x, t_x: np.where(x > 0, 1 + which(t_x), 0)
    return spans, lambda x, t_x: which(T - t_x)


def predictive_histogram_check(
    params: dict[str, np.ndarray],
    rfm: Any,
    *,
    model: str = "BGNBD",
    statistic: str = "frequency",
    max_count: int = 7,
    n_bins: int = 10,
    n_draws: int | None = 200,
    ci_prob: float = 0.9,
    seed: int | None = None,
) -> pd.DataFrame:
    """Observed versus predicted histogram of frequency, recency or inactivity, any model.

    For each parameter draw a data set with the customers' own ages ``T`` is simulated
    from the model (:func:`clvbayes.simulate.simulate_transaction_model`) and binned like
    the data. The ages are conditioned on, so their distribution is reproduced by
    construction and is not a check; what the model must reproduce is how the repeat
    purchases fall within each customer's window:

    - ``"frequency"``: repeat purchases 0, 1, ..., ``max_count`` or more (the papers' figure);
    - ``"recency"``: time of the last repeat purchase ``t_x`` in ``n_bins`` equal bins of
      ``[0, max T]``, after a bin for customers with no repeat purchase;
    - ``"inactivity"``: time since the last purchase, ``T - t_x`` (``T`` without a
      repeat purchase), in ``n_bins`` equal bins of ``[0, max T]``; dropout models differ
      most here.

    Parameters
    ----------
    params : dict
        Parameter draws shaped ``(chain, draw)`` (``fitted.params()`` or
        :func:`prior_draws`).
    rfm : DataFrame
        Customers with ``frequency``, ``recency`` and ``T``.
    model : {"BGNBD", "MBGNBD", "ParetoNBD"}
        Model kind (``fitted.kind``).
    statistic : {"frequency", "recency", "inactivity"}
        What to bin.
    max_count : int
        Pooled frequency (``"frequency"``).
    n_bins : int
        Number of time bins (``"recency"``, ``"inactivity"``).
    n_draws : int, optional
        Number of simulated data sets: parameter draws thinned evenly, or repeated
        cyclically when fewer draws are available (e.g. one MAP draw); None: one per draw.
    ci_prob : float
        Mass of the central interval of the predicted counts.
    seed : int, optional
        Random seed.

    Returns
    -------
    DataFrame
        One row per bin: ``observed``, ``predicted_mean``, ``predicted_low``,
        ``predicted_high`` (numbers of customers) and ``p_observed_below``.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}.")
    values = check_rfm(rfm, ("frequency", "recency", "T"))
    T = values["T"]
    labels, binning = _statistic_bins(statistic, T, max_count, n_bins)
    size = len(labels)
    flat = {k: np.asarray(v).reshape(-1) for k, v in params.items()}
    total = next(iter(flat.values())).size
    take = draw_index(total, n_draws)  # cyclic: a point estimate still gets n_draws data sets
    rng = np.random.default_rng(seed)
    sims = np.empty((take.size, size))
    for row, i in enumerate(take):
        try:
            sim = simulate_transaction_model(model, {k: v[i] for k, v in flat.items()}, T, rng=rng)
        except TooManyPurchasesError as err:
            raise _at_draw(err, "predictive_histogram_check", int(i)) from err
        sims[row] = np.bincount(binning(sim["frequency"], sim["recency"]), minlength=size)
    observed = np.bincount(binning(values["frequency"], values["recency"]), minlength=size)
    return _bin_table(observed, sims, ci_prob, pd.Index(labels, name=statistic))
