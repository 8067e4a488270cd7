"""The CRM questions as one-call analyses: purchase probabilities in a window, who is
likely to lapse, the residual value (DERT), the P(alive) threshold guide, and CLV over
sub-windows of one simulation.

Oracles: the family maths of :mod:`clvbayes.math` evaluated directly on the fits' draws,
the simulated predictive draws of :func:`clvbayes.predict_customers` (Monte Carlo), and
direct computation on the result tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_transaction_models import CENTRES, GG, fake_fit

import clvbayes
from clvbayes import analyses
from clvbayes.math import gamma_gamma
from clvbayes.math.draws import draw_index
from clvbayes.math.family import TransactionFamily, family
from clvbayes.models import BGNBD, GammaGamma

SPECS = {**CENTRES, "BGNBD": (BGNBD, {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})}


@pytest.fixture(scope="module")
def customers(cdnow_summary_csv) -> pd.DataFrame:
    d = cdnow_summary_csv.iloc[::20].reset_index(drop=True)  # 118 varied customers
    return d[["customer_id", "frequency", "recency", "T", "monetary_value"]]


@pytest.fixture(scope="module")
def fits():
    return {kind: fake_fit(spec(), centre) for kind, (spec, centre) in SPECS.items()}


@pytest.fixture(scope="module")
def spend():
    return fake_fit(GammaGamma(), GG, seed=2)


def _by_draw(fit, customers):
    """Each posterior draw's parameters ``(draw, 1)`` and the customers' columns."""
    maths = family(fit.kind, TransactionFamily)
    params = tuple(fit.params()[k].reshape(-1)[:, None] for k in maths.params)
    data = tuple(customers[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    return maths, params, data


@pytest.mark.parametrize("kind", list(SPECS))
def test_purchase_probabilities_are_the_posterior_mean_conditional_pmf(kind, fits, customers):
    fit = fits[kind]
    res = analyses.purchase_probabilities(fit, customers, window=13.0, max_count=4, n_draws=None)
    maths, params, data = _by_draw(fit, customers)
    pmf = maths.conditional_pmf(*params, *data, 13.0, range(5)).mean(axis=0)
    columns = [f"p_{k}" for k in range(5)]
    np.testing.assert_allclose(res.summary[columns].to_numpy(), pmf, rtol=1e-10)
    total = res.summary[[*columns, "p_more"]].sum(axis=1)
    np.testing.assert_allclose(total, 1.0, rtol=1e-9)
    assert res.draws["purchase_pmf"].dims == ("chain", "draw", "customer_id", "purchases")
    # p_0 is the churn probability of the window (every customer, no cut-offs)
    lapse = analyses.lapse_risk(
        fit, customers, window=13.0, p_no_purchase_above=0, p_alive_above=0, min_frequency=0,
        n_draws=None,
    )  # fmt: skip
    quiet = lapse.summary.set_index("customer_id")["p_no_purchase_mean"]
    np.testing.assert_allclose(quiet.loc[res.summary["customer_id"]], res.summary["p_0"])


@pytest.mark.slow  # statistical: simulation against the closed form
@pytest.mark.parametrize("kind", list(SPECS))
def test_purchase_probabilities_match_the_simulated_predictive_draws(kind, fits, customers):
    fit = fits[kind]
    few = customers.iloc[:12]
    n = 6000
    sims = clvbayes.predict_customers(fit, few, horizon=13.0, n_draws=n, seed=4, ranks=False)
    counts = sims.draws["purchases"].to_numpy().reshape(-1, len(few))
    res = analyses.purchase_probabilities(fit, few, window=13.0, max_count=2, n_draws=None)
    for k in range(3):
        simulated = (counts == k).mean(axis=0)
        p = res.summary[f"p_{k}"].to_numpy()
        assert np.all(np.abs(simulated - p) < 4.5 * np.sqrt(p * (1 - p) / n) + 1e-3), k


def test_lapse_risk_flags_active_customers_likely_quiet_ranked_by_value(fits, spend, customers):
    fit = fits["ParetoNBD"]
    result = clvbayes.predict_customers(
        fit, customers, horizon=52.0, spend_fit=spend, n_draws=200, seed=1
    )
    res = analyses.lapse_risk(fit, customers, window=13.0, result=result, n_draws=None)
    table = res.summary
    assert len(table) == res.groups["n_flagged"].item() > 0
    assert res.groups["n_customers"].item() == len(customers)
    assert np.all(table["p_alive"] >= 0.5) and np.all(table["p_no_purchase_mean"] >= 0.5)
    assert np.all(table["frequency"] >= 1)
    assert table["clv_mean"].is_monotonic_decreasing
    assert {"frequency", "monetary_value"} <= set(table.columns)
    assert np.all(table["p_no_purchase_low"] <= table["p_no_purchase_mean"])
    assert np.all(table["p_no_purchase_mean"] <= table["p_no_purchase_high"])
    # every customer left out fails a cut-off
    everyone = analyses.lapse_risk(
        fit, customers, window=13.0, p_no_purchase_above=0, p_alive_above=0, min_frequency=0,
        n_draws=None,
    ).summary.set_index("customer_id")  # fmt: skip
    assert len(everyone) == len(customers)
    out = everyone.drop(table["customer_id"])
    quiet_active = (out["p_alive"] >= 0.5) & (out["p_no_purchase_mean"] >= 0.5)
    assert np.all(~quiet_active | (out["frequency"] == 0))
    maths, params, data = _by_draw(fit, customers)
    quiet = maths.p_no_purchase(*params, *data, 13.0).mean(axis=0)
    np.testing.assert_allclose(everyone.loc[customers["customer_id"], "p_no_purchase_mean"], quiet)
    np.testing.assert_array_equal(res.draws["customer_id"], table["customer_id"])
    # the BG/NBD's one-time buyers are all "alive" and mostly quiet: left out by default
    bg = fits["BGNBD"]
    one_time = analyses.lapse_risk(bg, customers, window=13.0, min_frequency=0).summary
    assert (one_time["frequency"] == 0).sum() == (customers["frequency"] == 0).sum()
    repeat = analyses.lapse_risk(bg, customers, window=13.0).summary
    pd.testing.assert_frame_equal(
        repeat, one_time[one_time["frequency"] > 0].reset_index(drop=True)
    )
    with pytest.raises(ValueError, match="customers"):
        analyses.lapse_risk(fit, customers.iloc[:10], window=13.0, result=result)
    with pytest.raises(ValueError, match="p_alive_above"):
        analyses.lapse_risk(fit, customers, window=13.0, p_alive_above=2)


@pytest.mark.parametrize("kind", list(SPECS))
def test_residual_value_is_dert_times_expected_spend(kind, fits, spend, customers):
    fit = fits[kind]
    delta = np.log(1.1) / 52
    res = analyses.residual_value(
        fit, customers, spend_fit=spend, continuous_discount=delta, margin=0.3, n_draws=10
    )
    dert = res.draws["dert"]
    assert dert.dims == ("chain", "draw", "customer_id") and dert.sizes["draw"] == 5
    maths, params, data = _by_draw(fit, customers)
    take = dert["draw"].to_numpy()
    index = (np.arange(2)[:, None] * 30 + take).reshape(-1)  # the chains' thinned draws
    expected = maths.dert(*(p[index] for p in params), *data, delta)
    np.testing.assert_allclose(dert.to_numpy().reshape(-1, len(customers)), expected, rtol=1e-10)
    np.testing.assert_allclose(res.summary["dert_mean"], expected.mean(axis=0), rtol=1e-10)
    paired = draw_index(60, 10)  # spend draws paired in order, thinned like predictions
    p, q, v = (spend.params()[k].reshape(-1)[paired, None] for k in ("p", "q", "v"))
    x, z = customers["frequency"].to_numpy(float), customers["monetary_value"].to_numpy(float)
    informed = (x > 0) & (z > 0)
    aov = gamma_gamma.expected_spend(p, q, v, np.where(informed, x, 0), np.where(informed, z, 0))
    np.testing.assert_allclose(
        res.draws["residual_clv"].to_numpy().reshape(10, -1), 0.3 * expected * aov, rtol=1e-10
    )
    with pytest.raises(ValueError, match="positive discount rate"):
        analyses.residual_value(fit, customers)


def test_p_alive_thresholds_count_customers_and_value_below_each_cutoff(fits, spend, customers):
    result = clvbayes.predict_customers(
        fits["BGNBD"], customers, horizon=52.0, spend_fit=spend, n_draws=100, seed=2
    )
    res = analyses.p_alive_thresholds(result, cutoffs=(0.2, 0.5, 0.9, 1.0))
    table = res.summary
    alive, clv = result.summary["p_alive"], result.summary["clv_mean"]
    for row in table.itertuples():
        below = alive < row.p_alive_below
        assert row.n_customers == below.sum()
        assert row.clv_mean_total == pytest.approx(clv[below].sum())
        assert row.clv_share == pytest.approx(clv[below].sum() / clv.sum())
        assert row.clv_total_low <= row.clv_mean_total <= row.clv_total_high
    assert table["n_customers"].is_monotonic_increasing
    assert table["n_customers"].iloc[-1] == (alive < 1).sum()
    totals = res.draws["clv_below"].mean(("chain", "draw")).to_numpy()
    np.testing.assert_allclose(totals, table["clv_mean_total"], rtol=1e-5)  # float32 draws
    with pytest.raises(ValueError, match="cutoffs"):
        analyses.p_alive_thresholds(result, cutoffs=(0.0, 0.5))
    # without a spend fit: the counts only
    counts = analyses.p_alive_thresholds(
        clvbayes.predict_customers(fits["BGNBD"], customers, horizon=52.0, n_draws=20, seed=2)
    )
    assert "clv_mean_total" not in counts.summary and len(counts.summary) == 10


@pytest.mark.slow  # statistical: simulation against the closed form
@pytest.mark.parametrize("kind", list(SPECS))
def test_interval_purchases_match_the_window_expectations(kind, fits, customers):
    """Purchases in (13, 52] of one simulated future average to E[Y(52)] - E[Y(13)]."""
    fit = fits[kind]
    res = clvbayes.predict_customers(
        fit, customers, horizon=52.0, n_draws=3000, seed=5, intervals=[(0, 13), (13, 52)]
    )
    draws = res.draws
    np.testing.assert_array_equal(draws["purchases_0_13"] + draws["purchases_13_52"],
                                  draws["purchases"])  # fmt: skip
    late = draws["purchases_13_52"].to_numpy().reshape(-1, len(customers)).sum(axis=1)
    maths, params, data = _by_draw(fit, customers)
    per_draw = tuple(p[:60] for p in params)  # the 60 draws, cycled by n_draws
    alive = maths.p_alive(*per_draw, *data)
    expected = [maths.expected_purchases(*per_draw, *data, t, alive=alive) for t in (13.0, 52.0)]
    window = (expected[1] - expected[0]).sum(axis=1)
    diff = late - window[np.arange(3000) % 60]
    assert abs(diff.mean()) < 4.5 * diff.std(ddof=1) / np.sqrt(diff.size)
    assert "purchases_13_52_mean" in res.summary and "clv_13_52_mean" not in res.summary


def test_interval_clv_adds_up_to_the_total_and_rejects_windows_past_the_horizon(
    fits, spend, customers
):
    fit = fits["MBGNBD"]
    res = clvbayes.predict_customers(
        fit, customers, horizon=156.0, spend_fit=spend, n_draws=200, seed=6,
        annual_discount=0.1, intervals=[(0, 52), (52, 156)],
    )  # fmt: skip
    d = res.draws
    np.testing.assert_allclose(d["clv_0_52"] + d["clv_52_156"], d["clv"], rtol=1e-5, atol=1e-3)
    assert {"clv_0_52_mean", "clv_52_156_q95", "purchases_0_52_hdi90_low"} <= set(res.summary)
    # the totals do not depend on asking for windows (same seed, same simulation)
    plain = clvbayes.predict_customers(
        fit, customers, horizon=156.0, spend_fit=spend, n_draws=200, seed=6, annual_discount=0.1
    )
    assert plain.summary["clv_mean"].sum() == pytest.approx(res.summary["clv_mean"].sum(), 0.05)
    with pytest.raises(ValueError, match="after the horizon"):
        clvbayes.predict_customers(fit, customers, horizon=52.0, intervals=[(0, 104)])
    with pytest.raises(ValueError, match="start < end"):
        clvbayes.PredictOptions(intervals=[(52, 13)])
    with pytest.raises(ValueError, match="pairs"):
        clvbayes.PredictOptions(intervals=[52])
    kept = clvbayes.predict_customers(
        fit, customers, horizon=52.0, n_draws=10, intervals=[(0, 13)], keep_draws=["purchases_0_13"]
    )
    assert list(kept.draws.data_vars) == ["purchases_0_13"]
