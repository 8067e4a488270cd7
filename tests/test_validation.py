"""Holdout validation across models, the comparison table and the histogram checks.

Oracles: pandas group-bys and brute-force loops for the pure functions; customers
simulated from the model itself (calibration and holdout) for the calibration checks —
at the true parameters the predictions must cover the simulated outcomes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from clvbayes.comparison import CompareResult, RowLoo, comparison_table, holdout_comparison
from clvbayes.math import mbgnbd
from clvbayes.models import BGNBD, MBGNBD, FittedModel, ParetoNBD
from clvbayes.ppc import predictive_histogram_check, tracking_curve
from clvbayes.predict.holdout import conditional_expectations, error_metrics
from clvbayes.simulate import (
    simulate_future_pareto_nbd,
    simulate_future_purchases,
    simulate_mbgnbd,
    simulate_pareto_nbd,
)

PNBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
MBG = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}


def point_fit(spec, params: dict[str, float]) -> FittedModel:
    """A one-draw 'posterior' at known parameter values."""
    ds = xr.Dataset(
        {k: (("chain", "draw"), np.array([[v]])) for k, v in params.items()},
        coords={"chain": [0], "draw": [0]},
    )
    return FittedModel(
        spec=spec, idata=xr.DataTree.from_dict({"posterior": ds}), data=None, fingerprint="p"
    )


def _simulated_cohort(kind: str, n: int = 3000, holdout: float = 39.0, seed: int = 0):
    """Customers simulated over calibration *and* holdout from one model's process."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(27.0, 39.0, n)
    if kind == "ParetoNBD":
        sim = simulate_pareto_nbd(*PNBD.values(), T, rng=rng)
        # memoryless lifetime: the remaining lifetime after T is what is left of tau
        remaining = np.maximum(sim["lifetime"] - T, 0.0)
        future = simulate_future_purchases(
            sim["lam"], 0.0, sim["alive"], np.minimum(remaining, holdout), rng=rng
        )
    else:
        sim = simulate_mbgnbd(*MBG.values(), T, rng=rng)
        future = simulate_future_purchases(
            sim["lam"], sim["p_drop"], sim["alive"], holdout, rng=rng
        )
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "frequency": sim["frequency"],
            "recency": sim["recency"],
            "T": T,
            "holdout_frequency": future.count,
            "holdout_duration": holdout,
        }
    )


# --- pure functions ---------------------------------------------------------------------


def test_conditional_expectations_match_pandas_groupby_and_brute_force_intervals():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 12, 500)
    y = rng.poisson(1.0 + x / 3)
    pred = 1.0 + x / 3 + rng.normal(0, 0.1, 500)
    draws = rng.poisson(pred, size=(300, 500))
    table = conditional_expectations(x, y, pred, draws, max_count=7, ci_prob=0.8)
    group = np.minimum(x, 7)
    expected = pd.DataFrame({"y": y, "p": pred, "g": group}).groupby("g").mean()
    np.testing.assert_allclose(table["actual"], expected["y"])
    np.testing.assert_allclose(table["predicted"], expected["p"])
    assert list(table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["n_customers"].sum() == 500
    for k in range(8):
        bin_means = draws[:, group == k].mean(axis=1)
        lo, hi = np.quantile(bin_means, [0.1, 0.9])
        assert table["predicted_low"].iloc[k] == pytest.approx(lo)
        assert table["predicted_high"].iloc[k] == pytest.approx(hi)
    sparse = conditional_expectations([0, 0, 3], [1, 0, 2], [0.5, 0.5, 1.0])
    assert list(sparse.index) == ["0", "3"]  # empty bins are left out
    with pytest.raises(ValueError, match="1-D of one length"):
        conditional_expectations([0, 1], [1], [1, 2])
    with pytest.raises(ValueError, match=r"draws must have shape \(sample, 3\)"):
        conditional_expectations([0, 0, 3], [1, 0, 2], [0.5, 0.5, 1.0], np.zeros((5, 2)))


def test_error_metrics_by_hand():
    got = error_metrics([0, 2, 4], [1.0, 2.0, 2.0])
    assert got["mae"] == pytest.approx(1.0)
    assert got["rmse"] == pytest.approx(np.sqrt(5 / 3))
    assert got["total_error"] == pytest.approx(-1.0)
    assert got["total_error_pct"] == pytest.approx(-100 / 6)
    assert (got["actual_total"], got["predicted_total"]) == (6.0, 5.0)
    with pytest.raises(ValueError, match="differ in shape"):
        error_metrics([1, 2], [1.0])


def test_comparison_table_joins_loo_k_counts_and_holdout_metrics():
    k = np.array([0.1, 0.6, 0.8, 1.2, 0.3])
    counts = np.array([10, 3, 2, 1, 4])
    loo = {
        name: RowLoo(
            elpd_row=np.full(5, -1.0 - i),
            p_loo_row=np.full(5, 0.1),
            pareto_k=k,
            counts=counts,
            good_k=0.5,
        )
        for i, name in enumerate(["A", "B"])
    }
    table = pd.DataFrame(
        {
            "elpd_loo": [-20.0, -40.0],
            "se": [1.0, 1.0],
            "elpd_diff": [0.0, 20.0],
            "dse": [0.0, 2.0],
            "p_loo": [2.0, 2.0],
            "weight": [1.0, 0.0],
        },
        index=pd.Index(["A", "B"], name="model"),
    )
    compared = CompareResult(table=table, loo=loo)
    only_loo = comparison_table(compared)
    assert list(only_loo.index) == ["A", "B"]
    row = only_loo.loc["A"]
    assert (row["k_good"], row["k_ok"], row["k_bad"], row["k_very_bad"]) == (14, 3, 2, 1)
    with pytest.raises(ValueError, match="give a CompareResult"):
        comparison_table()


# --- calibration on simulated customers -------------------------------------------------


@pytest.fixture(scope="module")
def simulated_holdouts():
    cohorts = {
        kind: _simulated_cohort(kind, seed=i) for i, kind in enumerate(("ParetoNBD", "MBGNBD"))
    }
    fits = {"ParetoNBD": point_fit(ParetoNBD(), PNBD), "MBGNBD": point_fit(MBGNBD(), MBG)}
    return cohorts, fits


@pytest.mark.parametrize("kind", ["ParetoNBD", "MBGNBD"])
def test_holdout_predictions_at_the_true_parameters_cover_simulated_outcomes(
    kind, simulated_holdouts
):
    cohorts, fits = simulated_holdouts
    rfm = cohorts[kind]
    before = rfm.copy()
    result = holdout_comparison({kind: fits[kind]}, rfm, n_draws=200, seed=5, ci_probs=(0.5, 0.9))
    pd.testing.assert_frame_equal(rfm, before)
    metrics = result.metrics.loc[kind]
    assert metrics["total_low"] <= metrics["actual_total"] <= metrics["total_high"]
    # the analytic mean and the simulated draws describe the same predictive distribution
    pred = result.predictions[kind]
    sim_total = pred.draws.sum(axis=1).mean()
    assert sim_total == pytest.approx(pred.predicted.sum(), rel=0.01)
    by_freq = result.by_frequency
    assert by_freq["in_interval"].mean() >= 0.75  # 90 % intervals of 8 bins
    cov = result.coverage.set_index("level")
    assert np.all(np.abs(cov["observed"] - cov["expected"]) < 0.03)
    table = comparison_table(holdout=result)
    assert {"mae", "rmse", "total_error", "coverage_90", "coverage_90_expected"} <= set(
        table.columns
    )


@pytest.mark.slow
def test_wrong_model_is_worse_on_holdout(simulated_holdouts):
    """Pareto/NBD data: the Pareto/NBD at its true parameters beats a BG/NBD that
    keeps every zero-repeat customer alive forever (a = 1e-3: almost no dropout)."""
    cohorts, fits = simulated_holdouts
    wrong = point_fit(BGNBD(), {"r": 0.553, "alpha": 10.578, "a": 1e-3, "b": 10.0})
    result = holdout_comparison(
        {"true": fits["ParetoNBD"], "no dropout": wrong}, cohorts["ParetoNBD"], n_draws=200, seed=6
    )
    errors = result.metrics["total_error"].abs()
    assert errors["true"] < errors["no dropout"]
    assert set(result.by_frequency["model"]) == {"true", "no dropout"}


def test_holdout_columns_are_required_with_a_clear_error(simulated_holdouts):
    cohorts, fits = simulated_holdouts
    rfm = cohorts["MBGNBD"].drop(columns="holdout_duration")
    with pytest.raises(ValueError, match=r"needs column\(s\) \['holdout_duration'\]"):
        holdout_comparison(fits, rfm)
    bad = cohorts["MBGNBD"].assign(holdout_frequency=-1)
    with pytest.raises(ValueError, match="'holdout_frequency': 3000 of 3000 rows"):
        holdout_comparison(fits, bad)


# --- histogram checks and tracking ------------------------------------------------------


@pytest.mark.parametrize("kind", ["ParetoNBD", "MBGNBD"])
@pytest.mark.parametrize("statistic", ["frequency", "recency", "inactivity"])
def test_histogram_check_at_the_true_parameters_holds_the_data(kind, statistic, simulated_holdouts):
    cohorts, fits = simulated_holdouts
    rfm = cohorts[kind]
    params = fits[kind].params()
    check = predictive_histogram_check(
        params, rfm, model=kind, statistic=statistic, n_draws=120, seed=7
    )
    assert check["observed"].sum() == len(rfm)
    np.testing.assert_allclose(check["predicted_mean"].sum(), len(rfm))
    inside = (check["observed"] >= check["predicted_low"]) & (
        check["observed"] <= check["predicted_high"]
    )
    assert inside.mean() >= 0.7  # 90 % intervals per bin


def test_inactivity_check_tells_dropout_models_apart(simulated_holdouts):
    """Pareto/NBD data checked against a BG/NBD with almost no dropout: customers'
    long inactivity is far more common in the data than that model predicts."""
    cohorts, _ = simulated_holdouts
    wrong = {"r": np.array([[0.553]]), "alpha": np.array([[10.578]])}
    wrong.update(a=np.array([[1e-3]]), b=np.array([[10.0]]))
    check = predictive_histogram_check(
        wrong, cohorts["ParetoNBD"], model="BGNBD", statistic="inactivity", n_draws=50, seed=8
    )
    last = check.iloc[-3:]
    assert np.all(last["observed"] > last["predicted_high"])
    with pytest.raises(ValueError, match="statistic must be one of"):
        predictive_histogram_check(wrong, cohorts["ParetoNBD"], statistic="T")


def test_tracking_curve_supports_mbgnbd_with_its_unconditional_expectation():
    rfm = pd.DataFrame({"frequency": [0, 1], "recency": [0.0, 2.0], "T": [10.0, 20.0]})
    fit = point_fit(MBGNBD(), MBG)
    curve = tracking_curve(fit, rfm, times=[0.0, 5.0])
    at_zero = float(mbgnbd.expected_purchases_new(*MBG.values(), np.array([10.0, 20.0])).sum())
    assert curve["predicted_mean"].iloc[0] == pytest.approx(at_zero)
    assert curve["predicted_mean"].iloc[1] > at_zero


def test_pareto_and_mbgnbd_future_simulators_agree_with_the_cohort_process():
    # the holdout draws above rely on these two routes being the same process
    rng = np.random.default_rng(9)
    lam = rng.gamma(2.0, 0.5, 100_000)
    mu = rng.gamma(1.0, 0.05, 100_000)
    a = simulate_future_pareto_nbd(lam, mu, True, 30.0, rng=10).count
    b = simulate_future_purchases(lam, 0.0, True, np.minimum(rng.exponential(1 / mu), 30.0), rng=11)
    diff = a.mean() - b.count.mean()
    se = np.sqrt(a.var() / a.size + b.count.var() / a.size)
    assert abs(diff) < 4.5 * se


def test_holdout_comparison_with_a_seed_per_model_draws_validate_holdouts_holdout():
    """``seed={model: seed}``: a model's holdout draws are validate_holdout's with that seed
    (a report's comparison had shown the chosen model's interval a second time, from
    another seed, e.g. 1,567-1,798 beside 1,570-1,802); a mapping without a model is a
    clear error."""
    from clvbayes.predict import validate_holdout

    rfm = _simulated_cohort("MBGNBD", n=400)
    fits = {
        "bg": point_fit(BGNBD(), {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}),
        "mbg": point_fit(MBGNBD(), MBG),
    }
    result = holdout_comparison(fits, rfm, seed={"bg": 11, "mbg": 12}, n_draws=300)
    for name, seed in (("bg", 11), ("mbg", 12)):
        totals = validate_holdout(fits[name], rfm, seed=seed, n_draws=300).totals.iloc[0]
        metrics = result.metrics.loc[name]
        assert (metrics["total_low"], metrics["total_high"]) == (
            totals["predicted_q05"],
            totals["predicted_q95"],
        )
    with pytest.raises(ValueError, match=r"no seed for model\(s\) \['mbg'\]"):
        holdout_comparison(fits, rfm, seed={"bg": 11}, n_draws=300)
