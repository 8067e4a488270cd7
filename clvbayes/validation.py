"""Holdout validation across transaction models, and the one-frame comparison table.

For each fitted model the holdout predictive distribution of every customer (purchases in
``(T, T + holdout_duration]``) is drawn once by :func:`clvbayes.predict_customers`; the
pure functions below turn those draws and the outcomes into the papers' tables:

- :func:`conditional_expectations`: mean holdout purchases by calibration frequency
  (0, 1, ..., 7+), actual versus predicted, with a predictive interval for the bin mean
  (Fader, Hardie & Lee 2005, fig. 4);
- :func:`error_metrics`: per-customer MAE and RMSE of the predicted mean, and the total
  error (predicted minus actual holdout purchases over all customers);
- coverage of per-customer predictive intervals
  (:func:`clvbayes.predict.holdout.coverage_table`);
- :func:`comparison_table`: the above next to PSIS-LOO (:func:`clvbayes.compare`), one
  row per model, ready for a paper.

The predicted mean of a customer is the posterior mean of the analytic conditional
expectation ``E[Y(h) | x, t_x, T]``; the intervals come from the joint posterior
predictive draws, so they include parameter and customer-level uncertainty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.data.validate import check_rfm
from clvbayes.models.base import FittedModel
from clvbayes.predict.customers import predict_customers
from clvbayes.predict.holdout import coverage_table

__all__ = [
    "HoldoutComparison",
    "HoldoutPrediction",
    "comparison_table",
    "conditional_expectations",
    "error_metrics",
    "holdout_comparison",
    "predict_holdout",
]


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


def _holdout_columns(rfm: Any) -> dict[str, np.ndarray]:
    missing = [c for c in ("holdout_frequency", "holdout_duration") if c not in rfm]
    if missing:
        raise ValueError(
            f"holdout validation needs column(s) {missing}; build the table with "
            "clvbayes.rfm_summary(..., calibration_end=..., observation_end=...)."
        )
    values = check_rfm(rfm, ("frequency", "recency", "T"))
    n = values["frequency"].size
    for column in ("holdout_frequency", "holdout_duration"):
        v = np.asarray(rfm[column], dtype=float)
        bad = int(np.sum(~np.isfinite(v) | (v < 0)))
        if bad:
            raise ValueError(
                f"column {column!r}: {bad} of {n} rows are negative or not finite; "
                "holdout columns must be finite counts and durations >= 0."
            )
        values[column] = v
    return values


def predict_holdout(
    fitted: FittedModel,
    rfm_with_holdout: Any,
    *,
    n_draws: int | None = 500,
    seed: int | None = None,
    memory_limit_mb: float = 1024.0,
) -> HoldoutPrediction:
    """Holdout predictions of one fitted transaction model.

    Parameters
    ----------
    fitted : FittedModel
        BG/NBD, MBG/NBD or Pareto/NBD fitted on the calibration period.
    rfm_with_holdout : DataFrame
        ``customer_id``, ``frequency``, ``recency``, ``T``, ``holdout_frequency`` and
        ``holdout_duration`` (e.g. :func:`clvbayes.rfm_summary` with ``observation_end``).
        Not modified.
    n_draws : int, optional
        Predictive draws per customer (None: all posterior draws).
    seed : int, optional
        Seed of the simulation.
    memory_limit_mb : float
        Passed to :func:`clvbayes.predict_customers`.

    Returns
    -------
    HoldoutPrediction
    """
    values = _holdout_columns(rfm_with_holdout)
    result = predict_customers(
        fitted,
        rfm_with_holdout,
        horizon=values["holdout_duration"],
        n_draws=n_draws,
        seed=seed,
        ranks=False,
        keep_draws=("purchases",),
        memory_limit_mb=memory_limit_mb,
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
    interval: float = 0.9,
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
        Predictive draws: adds the central ``interval`` of each bin's mean.
    max_count : int
        First pooled frequency.
    interval : float
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
        tail = (1.0 - interval) / 2.0
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


@dataclass(frozen=True, eq=False)
class HoldoutComparison:
    """Holdout validation of several models, side by side.

    Attributes
    ----------
    metrics : DataFrame
        One row per model: :func:`error_metrics` plus ``total_low``/``total_high``
        (central 90 % predictive interval of the total) and ``freq_mae`` (mean absolute
        error of the bin means of :func:`conditional_expectations`).
    by_frequency : DataFrame
        :func:`conditional_expectations` of every model, stacked, with a ``model`` column.
    coverage : DataFrame
        Per-customer interval coverage (observed vs model-expected) per model.
    predictions : dict of str to HoldoutPrediction
        The underlying predictions.
    """

    metrics: pd.DataFrame
    by_frequency: pd.DataFrame
    coverage: pd.DataFrame
    predictions: dict[str, HoldoutPrediction]


def holdout_comparison(
    models: Mapping[str, FittedModel],
    rfm_with_holdout: Any,
    *,
    n_draws: int | None = 500,
    seed: int | None = None,
    max_count: int = 7,
    levels: Sequence[float] = (0.5, 0.9),
    memory_limit_mb: float = 1024.0,
) -> HoldoutComparison:
    """Holdout predictions of several fitted models against the same outcomes.

    Parameters
    ----------
    models : mapping of str to FittedModel
        Transaction models fitted on the calibration period of ``rfm_with_holdout``.
    rfm_with_holdout : DataFrame
        Calibration RFM with ``holdout_frequency`` and ``holdout_duration``.
    n_draws : int, optional
        Predictive draws per customer and model.
    seed : int, optional
        Seed; each model gets its own stream from it.
    max_count : int
        Pooled frequency of :func:`conditional_expectations`.
    levels : sequence of float
        Central interval levels of the coverage table.
    memory_limit_mb : float
        Passed to :func:`clvbayes.predict_customers`.

    Returns
    -------
    HoldoutComparison
    """
    if not models:
        raise ValueError("holdout_comparison: give at least one fitted model.")
    seeds = np.random.SeedSequence(seed).spawn(len(models))
    predictions, metrics, bins, coverage = {}, [], [], []
    for (name, fitted), child in zip(models.items(), seeds, strict=True):
        pred = predict_holdout(
            fitted, rfm_with_holdout, n_draws=n_draws, seed=child, memory_limit_mb=memory_limit_mb
        )
        predictions[name] = pred
        table = conditional_expectations(
            pred.frequency, pred.actual, pred.predicted, pred.draws, max_count=max_count
        )
        totals = pred.draws.sum(axis=1, dtype=float)
        row = {"model": name, **error_metrics(pred.actual, pred.predicted)}
        row["total_low"], row["total_high"] = (float(q) for q in np.quantile(totals, [0.05, 0.95]))
        row["freq_mae"] = float(np.mean(np.abs(table["predicted"] - table["actual"])))
        metrics.append(row)
        bins.append(table.reset_index().assign(model=name))
        cov = coverage_table("purchases", pred.draws, pred.actual, levels)
        coverage.append(cov.assign(model=name))
    return HoldoutComparison(
        metrics=pd.DataFrame(metrics).set_index("model"),
        by_frequency=pd.concat(bins, ignore_index=True),
        coverage=pd.concat(coverage, ignore_index=True),
        predictions=predictions,
    )


def _k_counts(pareto_k: np.ndarray, counts: np.ndarray, good_k: float) -> dict[str, int]:
    """Customers per Pareto-k class (Vehtari et al. 2024: good / ok / bad / very bad)."""
    edges = {
        "k_good": pareto_k <= good_k,
        "k_ok": (pareto_k > good_k) & (pareto_k <= 0.7),
        "k_bad": (pareto_k > 0.7) & (pareto_k <= 1.0),
        "k_very_bad": pareto_k > 1.0,
    }
    return {name: int(counts[mask].sum()) for name, mask in edges.items()}


def comparison_table(
    compared: Any = None, holdout: HoldoutComparison | None = None
) -> pd.DataFrame:
    """One frame per model: LOO, Pareto-k counts, holdout errors and coverage.

    Parameters
    ----------
    compared : CompareResult, optional
        :func:`clvbayes.compare` of the models (gives ``elpd_loo, se, elpd_diff, dse,
        p_loo, weight`` and the customer counts per Pareto-k class ``k_good`` (at most
        arviz's sample-size threshold), ``k_ok`` (up to 0.7), ``k_bad`` (up to 1) and
        ``k_very_bad``).
    holdout : HoldoutComparison, optional
        :func:`holdout_comparison` of the same models (gives ``mae, rmse,
        actual_total, predicted_total, total_error, total_error_pct, total_low,
        total_high, freq_mae`` and ``coverage_<level>`` / ``coverage_<level>_expected``,
        the observed and model-expected shares of customers inside their central
        predictive intervals).

    Returns
    -------
    DataFrame
        Indexed by model, in the LOO ranking when LOO is given.
    """
    if compared is None and holdout is None:
        raise ValueError("comparison_table: give a CompareResult, a HoldoutComparison or both.")
    parts = []
    if compared is not None:
        loo_cols = ["elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight"]
        loo = compared.table[loo_cols].copy()
        ks = {
            name: _k_counts(res.pareto_k, res.counts, res.good_k)
            for name, res in compared.loo.items()
        }
        parts.append(loo.join(pd.DataFrame.from_dict(ks, orient="index")))
    if holdout is not None:
        metrics = holdout.metrics.copy()
        cov = holdout.coverage
        for level in sorted(cov["level"].unique()):
            pct = f"{round(100 * level)}"
            sel = cov[cov["level"] == level].set_index("model")
            metrics[f"coverage_{pct}"] = sel["observed"]
            metrics[f"coverage_{pct}_expected"] = sel["expected"]
        parts.append(metrics)
    table = parts[0] if len(parts) == 1 else parts[0].join(parts[1], how="outer")
    if compared is not None:
        first = [m for m in compared.table.index if m in table.index]
        table = table.loc[first + [m for m in table.index if m not in first]]
    table.index.name = "model"
    return table
