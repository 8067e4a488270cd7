"""Holdout validation: do the predictive distributions match what happened next?

(Holdout *validation* of a fit against what happened after calibration; the checks of
input data are :mod:`clvbayes.data.validate`.)

Given a fit on a calibration period and each customer's holdout outcome, the report
holds the model's posterior predictive distribution (from
:func:`clvbayes.predict.predict_customers`, over each customer's holdout duration,
undiscounted) against the observations:

- **totals**: repeat purchases (and spend) summed over customers: the predicted mean
  (posterior mean of the analytic expectation), the 90 % predictive interval of the
  total (from the joint draws, so parameter uncertainty widens it), the actual value and
  the error;
- **coverage**: for central 50/80/90 % predictive intervals per customer, the share of
  customers whose outcome falls inside (*observed*) and the share the model expects
  (*expected*: each customer's predictive mass inside its own interval, averaged).
  Counts are discrete, so a "90 %" interval holds more than 90 % of the mass; comparing
  observed with expected, not with the nominal level, is the fair test;
- **pit**: histogram of the randomized probability integral transform
  ``u = F(y-) + V (F(y) - F(y-))``, ``V ~ U(0, 1)`` (Czado, Gneiting & Held 2009), which
  is uniform under a calibrated model even for counts;
- **p_zero**: P(no purchase in the holdout), predicted vs observed share, by decile of
  the prediction.

Interval ends are ``numpy.quantile(..., method="inverted_cdf")`` of the predictive
draws: the smallest value whose predictive CDF reaches ``(1 - level)/2`` and
``(1 + level)/2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.data.calendar import customer_table
from clvbayes.data.validate import check_rfm
from clvbayes.models.fitted import FittedModel, check_time_units
from clvbayes.predict.customers import predict_customers
from clvbayes.predict.options import PredictOptions

__all__ = [
    "HOLDOUT_DRAWS",
    "HoldoutPrediction",
    "HoldoutReport",
    "conditional_expectations",
    "coverage_table",
    "error_metrics",
    "holdout_html",
    "holdout_streams",
    "p_zero_table",
    "pit_table",
    "predict_holdout",
    "randomized_pit",
    "validate_holdout",
]

HOLDOUT_COLUMNS = ("holdout_frequency", "holdout_duration")

HOLDOUT_DRAWS = 500
"""Predictive draws per customer of :func:`predict_holdout` and
:func:`clvbayes.comparison.holdout_comparison` unless ``n_draws`` or ``options`` say otherwise."""


def holdout_streams(
    seed: int | np.random.SeedSequence | None,
) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """The random streams of a holdout check with ``seed``: the simulation's and the
    randomized PIT's.

    :func:`validate_holdout` and :func:`clvbayes.comparison.holdout_comparison` (with
    ``seed={model: seed}``) simulate a model's holdout from the first, so with the same
    seed and options they draw the same holdout purchases.
    """
    simulation, pit = np.random.SeedSequence(seed).spawn(2)
    return simulation, pit


@dataclass(frozen=True, eq=False)
class HoldoutReport:
    """Tidy tables comparing holdout predictions with outcomes.

    Attributes
    ----------
    totals : DataFrame
        One row per quantity (``purchases``; ``spend`` with a spend fit):
        ``predicted_mean, simulated_mean, predicted_q05, predicted_q95, actual,
        error, error_pct, in_interval, p_below`` (``p_below``: the share of the
        predictive distribution of the total below the actual, ties counted half; near
        0 or 1 the actual is in a tail).
    coverage : DataFrame
        ``quantity, level, observed, expected, difference`` (observed - expected).
    pit : DataFrame
        ``quantity, bin_low, bin_high, count, share, expected_share``.
    p_zero : DataFrame
        ``decile, n_customers, predicted, observed`` (decile 1 = least likely to buy
        nothing).
    customers : DataFrame
        Per customer: ``customer_id, purchases_actual, purchases_mean, purchases_pit,
        p_zero`` and, with a spend fit, ``spend_actual, spend_mean, spend_pit``.
    predictions : DataFrame
        The :func:`~clvbayes.predict.predict_customers` summary over each customer's
        holdout window (purchase quantiles and intervals, P(alive), ...), so callers need
        not simulate the window a second time.
    """

    totals: pd.DataFrame
    coverage: pd.DataFrame
    pit: pd.DataFrame
    p_zero: pd.DataFrame
    customers: pd.DataFrame
    predictions: pd.DataFrame

    def __repr__(self) -> str:
        lines = [
            f"{row.quantity}: predicted {row.predicted_mean:,.0f} (90 %: {row.predicted_q05:,.0f}"
            f"-{row.predicted_q95:,.0f}) vs actual {row.actual:,.0f} ({row.error_pct:+.1f} %)"
            for row in self.totals.itertuples()
        ]
        return f"<HoldoutReport: {len(self.customers):,} customers; {'; '.join(lines)}>"

    def _repr_html_(self) -> str:
        """Jupyter's display: totals against the actuals, interval coverage, PIT."""
        return holdout_html(self)


def holdout_html(report: HoldoutReport) -> str:
    """The HTML card of a :class:`HoldoutReport`: a badge saying whether every actual
    total lies in its 90 % predictive interval, the totals, the coverage (observed vs
    model-expected) and the PIT histogram's largest departure from uniform."""
    from clvbayes.display import badge, card, frame_table

    totals = report.totals.set_index("quantity")
    outside = [str(q) for q, inside in totals["in_interval"].items() if not inside]
    status = (
        badge(f"actual outside the 90 % interval: {', '.join(outside)}", "warn")
        if outside
        else badge("actual totals inside their 90 % intervals", "ok")
    )
    columns = ["predicted_mean", "predicted_q05", "predicted_q95", "actual", "error_pct"]
    pit = report.pit.assign(departure=lambda t: (t["share"] - t["expected_share"]).abs())
    pit = pit.groupby("quantity")["departure"].max().to_frame("max |share - expected|")
    return card(
        "Holdout validation",
        ("Totals", frame_table(totals[columns])),
        (
            "Coverage of central predictive intervals",
            frame_table(report.coverage, max_rows=20, index=False),
        ),
        ("PIT histogram (uniform if calibrated)", frame_table(pit)),
        status=status,
        note=f"{len(report.customers):,} customers",
    )


def central_intervals(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer central predictive interval from draws ``(draw, customer)``."""
    tail = (1.0 - level) / 2.0
    low = np.quantile(samples, tail, axis=0, method="inverted_cdf")
    high = np.quantile(samples, 1.0 - tail, axis=0, method="inverted_cdf")
    return low, high


def coverage_table(
    quantity: str, samples: np.ndarray, actual: np.ndarray, ci_probs: Sequence[float]
) -> pd.DataFrame:
    """Observed and model-expected coverage of central predictive intervals.

    Parameters
    ----------
    quantity : str
        Label of the rows.
    samples : ndarray, shape (draw, customer)
        Predictive draws.
    actual : ndarray, shape (customer,)
        Observed outcomes.
    ci_probs : sequence of float
        Nominal masses of the central intervals, e.g. ``(0.5, 0.8, 0.9)``.

    Returns
    -------
    DataFrame
        ``quantity, level, observed, expected, difference`` (``level`` is the mass).
    """
    rows = []
    for level in ci_probs:
        low, high = central_intervals(samples, level)
        inside = (samples >= low) & (samples <= high)
        observed = float(np.mean((actual >= low) & (actual <= high)))
        expected = float(inside.mean())
        rows.append((quantity, level, observed, expected, observed - expected))
    return pd.DataFrame(rows, columns=["quantity", "level", "observed", "expected", "difference"])


def randomized_pit(samples: np.ndarray, actual: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomized PIT of each outcome under its predictive draws (uniform if calibrated)."""
    below = (samples < actual).mean(axis=0)
    at_or_below = (samples <= actual).mean(axis=0)
    return below + rng.random(actual.size) * (at_or_below - below)


def pit_table(quantity: str, pit: np.ndarray, bins: int) -> pd.DataFrame:
    """Histogram of PIT values on ``bins`` equal bins of [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(pit, bins=edges)
    return pd.DataFrame(
        {
            "quantity": quantity,
            "bin_low": edges[:-1],
            "bin_high": edges[1:],
            "count": counts,
            "share": counts / pit.size,
            "expected_share": 1.0 / bins,
        }
    )


def p_zero_table(
    predicted: np.ndarray, observed_zero: np.ndarray, groups: int = 10
) -> pd.DataFrame:
    """Predicted P(no purchase) vs observed share, by group of sorted predictions."""
    order = np.argsort(predicted, kind="stable")
    rows = []
    for number, part in enumerate(np.array_split(order, groups), start=1):
        if part.size:
            rows.append((number, part.size, predicted[part].mean(), observed_zero[part].mean()))
    return pd.DataFrame(rows, columns=["decile", "n_customers", "predicted", "observed"])


def _total_row(
    quantity: str, predicted_mean: float, per_draw_totals: np.ndarray, actual: float
) -> dict[str, Any]:
    low, high = np.quantile(per_draw_totals, [0.05, 0.95])
    return {
        "quantity": quantity,
        "predicted_mean": predicted_mean,
        "simulated_mean": float(per_draw_totals.mean()),
        "predicted_q05": float(low),
        "predicted_q95": float(high),
        "actual": actual,
        "error": predicted_mean - actual,
        "error_pct": 100.0 * (predicted_mean - actual) / actual if actual else np.nan,
        "in_interval": bool(low <= actual <= high),
        "p_below": float(
            (per_draw_totals < actual).mean() + 0.5 * (per_draw_totals == actual).mean()
        ),
    }


def validate_holdout(
    fit: FittedModel,
    rfm_with_holdout: Any,
    *,
    spend_fit: FittedModel | None = None,
    seed: int | None = None,
    options: PredictOptions | None = None,
    ci_probs: Sequence[float] = (0.5, 0.8, 0.9),
    pit_bins: int = 10,
    **kwargs: Any,
) -> HoldoutReport:
    """Compare posterior predictive holdout distributions with the outcomes.

    Parameters
    ----------
    fit : FittedModel
        Transaction model (BG/NBD, MBG/NBD or Pareto/NBD) fitted on the calibration
        period.
    rfm_with_holdout : DataFrame
        Calibration RFM (``customer_id, frequency, recency, T`` and, with a spend fit,
        ``monetary_value``) plus ``holdout_frequency`` (purchases in the holdout),
        ``holdout_duration`` (its length, model time unit) and, with a spend fit,
        ``holdout_value`` (total spend in the holdout). Not modified.
    spend_fit : FittedModel, optional
        Gamma-Gamma fitted on the calibration period: adds the spend rows.
    seed : int, optional
        Seed of the simulation and of the PIT randomization.
    options : PredictOptions, optional
        As for :func:`clvbayes.predict_customers` (``n_draws``: predictive draws per
        customer, by default every posterior draw, and
        :data:`~clvbayes.predict.options.PREDICTIVE_DRAWS` when the fit has fewer, e.g.
        a MAP fit's one, whose draw is then repeated so that the customer-level
        predictive distribution is sampled; memory, threads); fields may
        be passed as keyword arguments. Holdout spend is compared undiscounted and
        before margin, so the discount, margin, threshold and rank options are ignored
        here.
    ci_probs : sequence of float
        Central interval masses of the coverage table.
    pit_bins : int
        Bins of the PIT histogram.

    Returns
    -------
    HoldoutReport
    """
    check_time_units(fit, rfm_with_holdout)
    rfm_with_holdout = customer_table(rfm_with_holdout)
    opts = PredictOptions.merge(options, kwargs, "validate_holdout")
    opts = opts.replace(
        annual_discount=0.0,
        continuous_discount=None,
        period_discount=None,
        margin=1.0,
        thresholds=(),
        ranks=False,
    )
    values = _holdout_columns(rfm_with_holdout, spend=spend_fit is not None)
    actual = {"purchases": values["holdout_frequency"]}
    duration = values["holdout_duration"]
    if spend_fit is not None:
        actual["spend"] = values["holdout_value"]
    simulation_seed, pit_seed = holdout_streams(seed)
    result = predict_customers(
        fit,
        rfm_with_holdout,
        horizon=duration,
        spend_fit=spend_fit,
        seed=simulation_seed,
        options=opts,
        keep_draws=("purchases", "clv"),
    )
    n = duration.size
    samples = {"purchases": result.draws["purchases"].to_numpy().reshape(-1, n)}
    predicted = {"purchases": float(result.summary["expected_purchases"].sum())}
    if spend_fit is not None:
        samples["spend"] = result.draws["clv"].to_numpy().reshape(-1, n)
        conditional = result.summary["clv_conditional_mean"].to_numpy()
        predicted["spend"] = float(
            conditional.sum() if np.isfinite(conditional).all() else samples["spend"].mean(0).sum()
        )
    rng = np.random.default_rng(pit_seed)
    customers = {"customer_id": result.summary["customer_id"].to_numpy()}
    totals, coverage, pit = [], [], []
    for quantity, draws in samples.items():
        totals.append(
            _total_row(
                quantity,
                predicted[quantity],
                draws.sum(axis=1, dtype=float),
                float(actual[quantity].sum()),
            )
        )
        coverage.append(coverage_table(quantity, draws, actual[quantity], ci_probs))
        u = randomized_pit(draws, actual[quantity], rng)
        pit.append(pit_table(quantity, u, pit_bins))
        customers[f"{quantity}_actual"] = actual[quantity]
        customers[f"{quantity}_mean"] = draws.mean(axis=0)
        customers[f"{quantity}_pit"] = u
    p_zero = (samples["purchases"] == 0).mean(axis=0)
    customers["p_zero"] = p_zero
    return HoldoutReport(
        totals=pd.DataFrame(totals),
        coverage=pd.concat(coverage, ignore_index=True),
        pit=pd.concat(pit, ignore_index=True),
        p_zero=p_zero_table(p_zero, actual["purchases"] == 0),
        customers=pd.DataFrame(customers),
        predictions=result.summary,
    )


# --- holdout predictions of one model, for model comparison ------------------------------


def _holdout_options(
    options: PredictOptions | None, kwargs: dict[str, Any], caller: str
) -> PredictOptions:
    """The options of a comparison's holdout predictions: :data:`HOLDOUT_DRAWS` draws
    unless given, no ranks."""
    if options is None:
        kwargs = {"n_draws": HOLDOUT_DRAWS, **kwargs}
    return PredictOptions.merge(options, kwargs, caller).replace(ranks=False)


@dataclass(frozen=True, eq=False)
class HoldoutPrediction:
    """One model's holdout predictions for every customer.

    Attributes
    ----------
    frequency : ndarray, shape (customer,)
        Calibration repeat purchases.
    actual : ndarray, shape (customer,)
        Holdout repeat purchases.
    predicted : ndarray, shape (customer,)
        Posterior mean of the conditional expected holdout purchases.
    draws : ndarray of int32, shape (sample, customer)
        Posterior predictive draws of the holdout purchases.
    """

    frequency: np.ndarray
    actual: np.ndarray
    predicted: np.ndarray
    draws: np.ndarray


def _holdout_columns(rfm: Any, *, spend: bool = False) -> dict[str, np.ndarray]:
    """The calibration columns and the holdout columns (``holdout_value`` too with
    ``spend``), checked: present, finite, >= 0, and no purchases in a holdout of length 0."""
    names = ["holdout_frequency", "holdout_duration"] + (["holdout_value"] if spend else [])
    missing = [c for c in names if c not in rfm]
    if missing:
        raise ValueError(
            f"holdout validation needs column(s) {missing}; build the table with "
            "clvbayes.rfm_summary(..., calibration_end=..., observation_end=...)."
        )
    values = check_rfm(rfm, ("frequency", "recency", "T"))
    n = values["frequency"].size
    for column in names:
        v = np.asarray(rfm[column], dtype=float)
        bad = int(np.sum(~np.isfinite(v) | (v < 0)))
        if bad:
            raise ValueError(
                f"column {column!r}: {bad} of {n} rows are negative or not finite; "
                "holdout columns must be finite counts, durations and values >= 0."
            )
        values[column] = v
    impossible = (values["holdout_duration"] == 0) & (values["holdout_frequency"] > 0)
    if impossible.any():
        first = int(np.flatnonzero(impossible)[0])
        raise ValueError(
            f"column 'holdout_duration': {int(impossible.sum())} of {n} customers have "
            f"holdout purchases in a holdout of length 0 (e.g. row {first}: "
            f"holdout_frequency {values['holdout_frequency'][first]:g}); holdout_duration "
            "is the length of the holdout period (observation_end - calibration_end, in "
            "the model's time unit), as clvbayes.rfm_summary(..., observation_end=...) "
            "writes it."
        )
    return values


def predict_holdout(
    fit: FittedModel,
    rfm_with_holdout: Any,
    *,
    seed: int | np.random.SeedSequence | None = None,
    options: PredictOptions | None = None,
    **kwargs: Any,
) -> HoldoutPrediction:
    """Holdout predictions of one fitted transaction model.

    Parameters
    ----------
    fit : FittedModel
        BG/NBD, MBG/NBD or Pareto/NBD fitted on the calibration period.
    rfm_with_holdout : DataFrame
        ``customer_id``, ``frequency``, ``recency``, ``T``, ``holdout_frequency`` and
        ``holdout_duration`` (e.g. :func:`clvbayes.rfm_summary` with ``observation_end``).
        Not modified.
    seed : int or SeedSequence, optional
        Seed of the simulation.
    options : PredictOptions, optional
        As for :func:`clvbayes.predict_customers` (``n_draws``, memory, threads; fields
        may be passed as keyword arguments). Without ``options`` and ``n_draws``, 500
        predictive draws per customer are used (:data:`HOLDOUT_DRAWS`).

    Returns
    -------
    HoldoutPrediction
    """
    check_time_units(fit, rfm_with_holdout)
    rfm_with_holdout = customer_table(rfm_with_holdout)
    values = _holdout_columns(rfm_with_holdout)
    result = predict_customers(
        fit,
        rfm_with_holdout,
        horizon=values["holdout_duration"],
        seed=seed,
        options=_holdout_options(options, kwargs, "predict_holdout"),
        keep_draws=("purchases",),
    )
    n = values["frequency"].size
    return HoldoutPrediction(
        frequency=values["frequency"],
        actual=values["holdout_frequency"],
        predicted=result.summary["expected_purchases"].to_numpy(dtype=float),
        draws=result.draws["purchases"].to_numpy().reshape(-1, n),
    )


def conditional_expectations(
    frequency: Any,
    actual: Any,
    predicted: Any,
    draws: Any = None,
    *,
    max_count: int = 7,
    ci_prob: float = 0.9,
) -> pd.DataFrame:
    """Mean holdout purchases by calibration frequency: actual versus predicted.

    Parameters
    ----------
    frequency : array_like, shape (customer,)
        Calibration repeat purchases; ``max_count`` and above are pooled ("7+").
    actual : array_like, shape (customer,)
        Holdout repeat purchases.
    predicted : array_like, shape (customer,)
        Predicted mean holdout purchases.
    draws : array_like, shape (sample, customer), optional
        Predictive draws: adds the central ``ci_prob`` interval of each bin's mean.
    max_count : int
        First pooled frequency.
    ci_prob : float
        Mass of the interval.

    Returns
    -------
    DataFrame
        Indexed by ``calibration_frequency`` (``"0"``, ..., ``"7+"``): ``n_customers``,
        ``actual``, ``predicted`` and, with draws, ``predicted_low``,
        ``predicted_high`` and ``in_interval``. Empty bins are left out.
    """
    x = np.asarray(frequency, dtype=float)
    y = np.asarray(actual, dtype=float)
    mean = np.asarray(predicted, dtype=float)
    if not (x.shape == y.shape == mean.shape) or x.ndim != 1:
        raise ValueError(
            f"frequency, actual and predicted must be 1-D of one length; got shapes "
            f"{x.shape}, {y.shape}, {mean.shape}."
        )
    group = np.minimum(x, max_count).astype(np.int64)
    labels = [str(k) for k in range(max_count)] + [f"{max_count}+"]
    n = np.bincount(group, minlength=max_count + 1)
    present = n > 0
    table = pd.DataFrame(
        {
            "n_customers": n,
            "actual": np.bincount(group, weights=y, minlength=max_count + 1) / np.maximum(n, 1),
            "predicted": np.bincount(group, weights=mean, minlength=max_count + 1)
            / np.maximum(n, 1),
        },
        index=pd.Index(labels, name="calibration_frequency"),
    )
    if draws is not None:
        sims = np.asarray(draws, dtype=float)
        if sims.ndim != 2 or sims.shape[1] != x.size:
            raise ValueError(f"draws must have shape (sample, {x.size}), got {sims.shape}.")
        one_hot = np.zeros((x.size, max_count + 1))
        one_hot[np.arange(x.size), group] = 1.0
        bin_means = (sims @ one_hot) / np.maximum(n, 1)  # (sample, bin)
        tail = (1.0 - ci_prob) / 2.0
        table["predicted_low"] = np.quantile(bin_means, tail, axis=0)
        table["predicted_high"] = np.quantile(bin_means, 1.0 - tail, axis=0)
        table["in_interval"] = (table["actual"] >= table["predicted_low"]) & (
            table["actual"] <= table["predicted_high"]
        )
    return table[present]


def error_metrics(actual: Any, predicted: Any) -> dict[str, float]:
    """Holdout error of per-customer predictions.

    Parameters
    ----------
    actual, predicted : array_like, shape (customer,)
        Outcomes and predicted means.

    Returns
    -------
    dict
        ``mae`` and ``rmse`` over customers, ``actual_total``, ``predicted_total``,
        ``total_error`` (predicted - actual) and ``total_error_pct`` (of the actual).
    """
    y = np.asarray(actual, dtype=float)
    mean = np.asarray(predicted, dtype=float)
    if y.shape != mean.shape:
        raise ValueError(f"actual and predicted differ in shape: {y.shape} vs {mean.shape}.")
    error = mean - y
    total = float(y.sum())
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "actual_total": total,
        "predicted_total": float(mean.sum()),
        "total_error": float(error.sum()),
        "total_error_pct": 100.0 * float(error.sum()) / total if total else float("nan"),
    }
