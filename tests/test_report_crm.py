"""CRM quantities, the tracking curve and the report's figures, each against an oracle.

Oracles: :mod:`clvbayes.math` closed forms (P(alive), E[X(t)], expected spend),
numerical integration with scipy (retention of a new customer), ``rfm_summary`` (the
actual repeat purchases), simulation from the BG/NBD (the predicted tracking total) and
direct computation on hand-made draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import clvbayes
from clvbayes import plots
from clvbayes.data.rfm import repeat_purchase_times
from clvbayes.datasets import load_cdnow
from clvbayes.math import bgnbd, gamma_gamma
from clvbayes.models.base import FittedModel
from clvbayes.ppc import tracking_curve
from clvbayes.report import crm
from clvbayes.simulate import simulate_bgnbd

THETA = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL 2005, CDNOW sample


@dataclass
class Draws:
    """Stands in for a fitted model where only its parameter draws matter."""

    values: dict[str, np.ndarray]
    kind: str = "BGNBD"

    segment_column = None

    def params(self) -> dict[str, np.ndarray]:
        return {k: np.atleast_2d(np.asarray(v, dtype=float)) for k, v in self.values.items()}

    def segment_codes(self, rfm) -> None:
        return None

    customer_params = FittedModel.customer_params


@pytest.fixture(scope="module")
def sample():
    tx = load_cdnow("sample")
    kw = {"customer_col": "customer_id", "date_col": "date"}
    rfm = clvbayes.rfm_summary(
        tx, value_col="value", calibration_end="1997-09-30", observation_end="1998-06-30", **kw
    )
    times = repeat_purchase_times(
        tx, calibration_end="1997-09-30", observation_end="1998-06-30", **kw
    )
    return rfm, times


def test_repeat_purchase_times_add_up_to_rfm_summary(sample):
    rfm, times = sample
    assert times[times.index <= 0].sum() == rfm["frequency"].sum()
    assert times[times.index > 0].sum() == rfm["holdout_frequency"].sum()
    assert times.index.max() <= rfm["holdout_duration"].iloc[0]


def test_tracking_curve_matches_closed_form_and_actual_counts(sample):
    rfm, times = sample
    fit = Draws({k: [[v]] for k, v in THETA.items()})
    curve = tracking_curve(fit, rfm, actual=times)
    at = curve.set_index("time")
    T = rfm["T"].to_numpy()
    expected_now = bgnbd.expected_purchases_new(*THETA.values(), T).sum()
    assert at.loc[0.0, "predicted_mean"] == pytest.approx(expected_now, rel=1e-12)
    end = rfm["holdout_duration"].iloc[0]
    expected_end = bgnbd.expected_purchases_new(*THETA.values(), T + end).sum()
    assert at.loc[end, "predicted_mean"] == pytest.approx(expected_end, rel=1e-12)
    assert at.loc[0.0, "actual"] == rfm["frequency"].sum()
    assert at.loc[end, "actual"] == rfm["frequency"].sum() + rfm["holdout_frequency"].sum()
    assert (np.diff(curve["predicted_mean"]) >= 0).all() and (np.diff(curve["actual"]) >= 0).all()
    assert set(curve["period"]) == {"calibration", "holdout"}


def test_cumulative_tracking_at_week_78_is_within_5_percent_of_actual(sample):
    """FHL 2005: calibration + holdout repeat purchases of the CDNOW sample at week 78 are
    under-forecast by about 4 %; ours (the posterior mean) must be within 5 %."""
    rfm, times = sample
    published = tracking_curve(Draws({k: [[v]] for k, v in THETA.items()}), rfm, actual=times)
    end = published.iloc[-1]
    assert end["actual"] == 4339 and end["time"] == 39.0
    assert end["predicted_mean"] / end["actual"] - 1 == pytest.approx(-0.04, abs=0.002)
    fit = clvbayes.BGNBD().fit(rfm, seed=2, progressbar=False)
    ours = tracking_curve(fit, rfm, actual=times).iloc[-1]
    assert abs(ours["predicted_mean"] / ours["actual"] - 1) < 0.05


def test_tracking_curve_predicts_simulated_repeat_purchases():
    rng = np.random.default_rng(3)
    T = rng.uniform(20, 40, 20_000)
    sim = simulate_bgnbd(*THETA.values(), T, rng=rng)
    rfm = pd.DataFrame({"T": T})
    curve = tracking_curve(Draws({k: [[v]] for k, v in THETA.items()}), rfm, times=[0.0])
    total = sim["frequency"].sum()
    assert curve["predicted_mean"].iloc[0] == pytest.approx(total, rel=0.03)


def test_tracking_curve_band_covers_the_draws_and_rejects_unknown_models(sample):
    rfm, _ = sample
    rng = np.random.default_rng(0)
    draws = {k: v * np.exp(rng.normal(0, 0.05, (2, 50))) for k, v in THETA.items()}
    curve = tracking_curve(Draws(draws), rfm, n_draws=None)
    assert (curve["predicted_low"] < curve["predicted_mean"]).iloc[1:].all()
    assert (curve["predicted_mean"] < curve["predicted_high"]).iloc[1:].all()
    with pytest.raises(ValueError, match="GammaGamma"):
        tracking_curve(Draws(draws, kind="GammaGamma"), rfm)


def test_retention_starts_at_mean_p_alive_and_matches_quadrature():
    r, alpha, a, b = THETA.values()
    n = 40_000
    T = 1e-9  # a brand-new customer (T = 0 is not a valid RFM row)
    rfm = pd.DataFrame({"frequency": np.zeros(n), "recency": np.zeros(n), "T": np.full(n, T)})
    fit = Draws({k: [[v]] for k, v in THETA.items()})
    curve = crm.retention_curve(fit, rfm, times=[0.0, 10.0, 52.0], seed=1)
    assert curve["share_alive_mean"].iloc[0] == pytest.approx(1.0)

    def alive(t: float) -> float:  # E_p[(alpha / (alpha + p t))^r], p ~ Beta(a, b)
        integrand = lambda p: ((alpha + T) / (alpha + T + p * t)) ** r * stats.beta.pdf(p, a, b)  # noqa: E731
        return integrate.quad(integrand, 0, 1)[0]

    for t, share in zip(curve["time"].iloc[1:], curve["share_alive_mean"].iloc[1:], strict=True):
        assert share == pytest.approx(alive(t), abs=3e-3)


def test_retention_per_segment_and_p_alive_at_zero(sample):
    rfm, _ = sample
    fit = Draws({k: [[v]] for k, v in THETA.items()})
    seg = np.where(rfm["frequency"] > 0, "repeat", "one-off")
    curve = crm.retention_curve(fit, rfm, times=[0.0, 26.0], segments=seg, seed=0)
    now = curve[curve["time"] == 0].set_index("segment")["share_alive_mean"]
    p = bgnbd.p_alive(*THETA.values(), rfm["frequency"], rfm["recency"], rfm["T"])
    assert now[crm.ALL] == pytest.approx(p.mean(), rel=1e-12)
    assert now["repeat"] == pytest.approx(p[seg == "repeat"].mean(), rel=1e-12)
    later = curve[curve["time"] == 26].set_index("segment")["share_alive_mean"]
    assert (later < now).all()


def test_average_order_value_is_the_gamma_gamma_conditional_mean(sample):
    rfm, _ = sample
    p, q, v = 6.25, 3.74, 15.44  # Fader & Hardie (2013)
    fit = Draws({"p": [[p]], "q": [[q]], "v": [[v]]}, kind="GammaGamma")
    seg = np.where(rfm["frequency"] > 2, "loyal", "other")
    per_customer, per_segment = crm.average_order_value(fit, rfm, segments=seg)
    x, z = rfm["frequency"].to_numpy(float), rfm["monetary_value"].to_numpy(float)
    expected = gamma_gamma.expected_spend(p, q, v, x, z)
    np.testing.assert_allclose(per_customer["aov_mean"], expected, rtol=1e-12)
    new = per_customer.loc[rfm["frequency"] == 0, "aov_mean"]
    np.testing.assert_allclose(new, p * v / (q - 1), rtol=1e-12)
    table = per_segment.set_index("segment")
    assert table.loc["loyal", "aov_mean"] == pytest.approx(expected[seg == "loyal"].mean())
    assert table.loc[crm.ALL, "n_customers"] == len(rfm)


def test_value_tiers_sizes_and_certainty():
    rng = np.random.default_rng(0)
    n = 1000
    sure = np.tile(np.arange(n, dtype=float), (50, 1))  # every draw ranks alike
    per_customer, per_tier = crm.value_tiers(sure, np.arange(n))
    assert per_tier["n_customers"].tolist() == [200, 300, 500]
    assert (per_customer["p_in_tier"] == 1).all()
    assert per_customer.set_index("customer_id").loc[999, "tier"] == "high"
    assert per_tier["clv_share"].sum() == pytest.approx(1.0)
    noisy = sure + rng.normal(0, 300, sure.shape)
    _, noisy_tiers = crm.value_tiers(noisy, np.arange(n))
    assert (noisy_tiers["mean_p_in_tier"] < 1).all()


def test_segment_summary_and_contrasts_match_direct_computation():
    rng = np.random.default_rng(1)
    seg = np.array(["a"] * 30 + ["b"] * 20)
    draws = rng.gamma(2.0, 1.0, (400, 50))
    draws[:, :30] += 0.3
    summary = crm.segment_summary({"clv": draws}, seg).set_index("segment")
    mean_a, mean_b = draws[:, :30].mean(1), draws[:, 30:].mean(1)
    assert summary.loc["a", "clv_mean"] == pytest.approx(mean_a.mean())
    assert summary.loc["b", "clv_low"] == pytest.approx(np.quantile(mean_b, 0.05))
    contrast = crm.segment_contrasts(draws, seg).iloc[0]
    assert (contrast["segment_a"], contrast["segment_b"]) == ("a", "b")
    assert contrast["p_a_greater"] == pytest.approx((mean_a > mean_b).mean())


def test_clv_cac_ratio_and_probabilities():
    seg = np.array(["x", "x", "y", "y"])
    draws = np.array([[10.0, 30.0, 1.0, 3.0], [50.0, 70.0, 5.0, 7.0]])
    table = crm.clv_cac(draws, {"x": 10.0, "y": 1.5}, seg).set_index("segment")
    assert table.loc["x", "ratio_mean"] == pytest.approx((2.0 + 6.0) / 2)
    assert table.loc["x", "p_ratio_gt_3"] == 0.5 and table.loc["y", "p_ratio_gt_1"] == 1.0
    overall = crm.clv_cac(draws, 5.0)
    assert overall["segment"].tolist() == [crm.ALL]
    with pytest.raises(ValueError, match="missing for segments"):
        crm.clv_cac(draws, {"x": 10.0}, seg)
    with pytest.raises(ValueError, match="positive"):
        crm.clv_cac(draws, -1.0)


def test_at_risk_keeps_valuable_lapsed_customers():
    customers = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5],
            "frequency": [10, 10, 1, 0, 8],
            "monetary_value": [50.0, 50.0, 10.0, 0.0, 40.0],
            "p_alive": [0.1, 0.9, 0.1, 0.2, 0.3],
        }
    )
    risky = crm.at_risk(customers, value_quantile=0.25)
    assert risky["customer_id"].tolist() == [1, 5]
    assert risky["past_value"].tolist() == [500.0, 320.0]


def test_every_report_figure_draws_alone(sample):
    from matplotlib.figure import Figure

    rfm, times = sample
    fit = Draws({k: [[v]] for k, v in THETA.items()})
    customers = pd.DataFrame(
        {
            "customer_id": ["<b>1</b>", "2", "3"],
            "p_alive": [0.2, 0.5, 0.9],
            "clv_mean": [10.0, 50.0, 5.0],
            "clv_q05": [0.0, 5.0, 0.0],
            "clv_q95": [40.0, 120.0, 20.0],
        }
    )
    segments = pd.DataFrame(
        {"segment": ["a", "b"], "clv_mean": [1.0, 2.0], "clv_low": [0.5, 1.5], "clv_high": [2, 3]}
    )
    cac = pd.DataFrame(
        {"segment": ["a"], "ratio_mean": [2.0], "ratio_low": [1.0], "ratio_high": [3.0]}
    )
    coverage = pd.DataFrame(
        {"quantity": ["purchases"] * 2, "level": [0.5, 0.9], "observed": [0.6, 0.9],
         "expected": [0.62, 0.93]}
    )  # fmt: skip
    pit = pd.DataFrame(
        {"quantity": "purchases", "bin_low": [0.0, 0.5], "bin_high": [0.5, 1.0],
         "share": [0.4, 0.6], "expected_share": 0.5}
    )  # fmt: skip
    p_zero = pd.DataFrame({"decile": [1, 2], "predicted": [0.2, 0.7], "observed": [0.25, 0.66]})
    draws = [
        lambda ax: plots.plot_tracking(tracking_curve(fit, rfm, actual=times), ax=ax),
        lambda ax: plots.plot_retention(
            crm.retention_curve(fit, rfm.head(50), times=[0, 26, 52], seed=0), ax=ax
        ),
        lambda ax: plots.plot_p_alive(customers, ax=ax),
        lambda ax: plots.plot_clv_distribution(customers, ax=ax),
        lambda ax: plots.plot_top_customers(customers, ax=ax),
        lambda ax: plots.plot_value_tiers(crm.value_tiers(np.ones((2, 3)), [1, 2, 3])[1], ax=ax),
        lambda ax: plots.plot_segments(segments, "clv", ax=ax),
        lambda ax: plots.plot_clv_cac(cac, ax=ax),
        lambda ax: plots.plot_coverage(coverage, ax=ax),
        lambda ax: plots.plot_pit(pit, ax=ax),
        lambda ax: plots.plot_p_zero(p_zero, ax=ax),
    ]
    for draw in draws:
        ax = Figure().subplots()
        assert draw(ax) is ax
        assert ax.has_data()
    axes = Figure().subplots(1, 2)
    plots.plot_parameter_draws({"r": np.arange(10.0), "alpha": np.ones(10)}, axes=axes)
    assert all(ax.get_title() for ax in axes)
