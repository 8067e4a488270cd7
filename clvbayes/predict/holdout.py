"""Holdout validation: do the predictive distributions match what happened next?

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

from clvbayes.models.base import FittedModel
from clvbayes.predict.customers import predict_customers

__all__ = ["HoldoutReport", "validate_holdout"]

HOLDOUT_COLUMNS = ("holdout_frequency", "holdout_duration")


@dataclass(frozen=True, eq=False)
class HoldoutReport:
    """Tidy tables comparing holdout predictions with outcomes.

    Attributes
    ----------
    totals : DataFrame
        One row per quantity (``purchases``; ``spend`` with a spend fit):
        ``predicted_mean, simulated_mean, predicted_q05, predicted_q95, actual,
        error, error_pct, in_interval``.
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


def _holdout_values(rfm: Any, column: str) -> np.ndarray:
    if column not in rfm:
        raise ValueError(
            f"holdout validation needs column {column!r}; build the table with "
            "clvbayes.rfm_summary(..., calibration_end=..., observation_end=...)."
        )
    values = np.asarray(rfm[column], dtype=float)
    if not np.all(np.isfinite(values) & (values >= 0)):
        raise ValueError(f"column {column!r} must be finite and non-negative.")
    return values


def central_intervals(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer central predictive interval from draws ``(draw, customer)``."""
    tail = (1.0 - level) / 2.0
    low = np.quantile(samples, tail, axis=0, method="inverted_cdf")
    high = np.quantile(samples, 1.0 - tail, axis=0, method="inverted_cdf")
    return low, high


def coverage_table(
    quantity: str, samples: np.ndarray, actual: np.ndarray, levels: Sequence[float]
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
    levels : sequence of float
        Nominal levels, e.g. ``(0.5, 0.8, 0.9)``.

    Returns
    -------
    DataFrame
        ``quantity, level, observed, expected, difference``.
    """
    rows = []
    for level in levels:
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
    }


def validate_holdout(
    bgnbd_fit: FittedModel,
    rfm_with_holdout: Any,
    *,
    spend_fit: FittedModel | None = None,
    n_draws: int | None = None,
    seed: int | None = None,
    levels: Sequence[float] = (0.5, 0.8, 0.9),
    pit_bins: int = 10,
    memory_limit_mb: float = 1024.0,
) -> HoldoutReport:
    """Compare posterior predictive holdout distributions with the outcomes.

    Parameters
    ----------
    bgnbd_fit : FittedModel
        BG/NBD fitted on the calibration period.
    rfm_with_holdout : DataFrame
        Calibration RFM (``customer_id, frequency, recency, T`` and, with a spend fit,
        ``monetary_value``) plus ``holdout_frequency`` (purchases in the holdout),
        ``holdout_duration`` (its length, model time unit) and, with a spend fit,
        ``holdout_value`` (total spend in the holdout). Not modified.
    spend_fit : FittedModel, optional
        Gamma-Gamma fitted on the calibration period: adds the spend rows.
    n_draws : int, optional
        Predictive draws per customer (see :func:`predict_customers`; with a MAP fit
        pass e.g. 1000 so the customer-level predictive distribution is sampled).
    seed : int, optional
        Seed of the simulation and of the PIT randomization.
    levels : sequence of float
        Central interval levels for the coverage table.
    pit_bins : int
        Bins of the PIT histogram.
    memory_limit_mb : float
        Passed to :func:`predict_customers`.

    Returns
    -------
    HoldoutReport
    """
    actual = {"purchases": _holdout_values(rfm_with_holdout, "holdout_frequency")}
    duration = _holdout_values(rfm_with_holdout, "holdout_duration")
    if spend_fit is not None:
        actual["spend"] = _holdout_values(rfm_with_holdout, "holdout_value")
    simulation_seed, pit_seed = np.random.SeedSequence(seed).spawn(2)
    result = predict_customers(
        bgnbd_fit,
        rfm_with_holdout,
        horizon=duration,
        spend_fit=spend_fit,
        n_draws=n_draws,
        seed=simulation_seed,
        ranks=False,
        keep_draws=("purchases", "clv"),
        memory_limit_mb=memory_limit_mb,
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
        coverage.append(coverage_table(quantity, draws, actual[quantity], levels))
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
