"""The report's CRM analyses (:mod:`clvbayes.analyses`, :mod:`clvbayes.segments`), the
tracking curve and the report's figures, each against an oracle.

Oracles: :mod:`clvbayes.math` closed forms (P(alive), E[X(t)], expected spend),
numerical integration with scipy (retention of a new customer), ``rfm_summary`` (the
actual repeat purchases), simulation from the BG/NBD (the predicted tracking total),
direct computation on hand-made draws, and the report itself (the one-call functions give
the tables ``build_report`` shows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import integrate, stats

import clvbayes
from clvbayes import plots
from clvbayes.analyses import at_risk, average_order_value, retention_curve, value_tiers
from clvbayes.data.rfm import repeat_purchase_times
from clvbayes.datasets import load_cdnow
from clvbayes.math import bgnbd, gamma_gamma, pareto_nbd
from clvbayes.models import FittedModel
from clvbayes.ppc import tracking_curve
from clvbayes.predict import Result
from clvbayes.segments import ALL, clv_cac, segment_contrasts, segment_summary
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


def _draws(ids=None, **matrices) -> xr.Dataset:
    """Hand-made ``(draw, customer)`` matrices as per-customer draws of one chain."""
    first = np.asarray(next(iter(matrices.values())))
    ids = np.arange(first.shape[1]) if ids is None else np.asarray(ids)
    dims = ("chain", "draw", "customer_id")
    return xr.Dataset(
        {k: (dims, np.asarray(v, dtype=float)[None]) for k, v in matrices.items()},
        coords={"customer_id": ids},
    )


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


@pytest.mark.slow
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
    curve = retention_curve(fit, rfm, times=[0.0, 10.0, 52.0], seed=1).summary
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
    curve = retention_curve(fit, rfm, times=[0.0, 26.0], segments=seg, seed=0).summary
    now = curve[curve["time"] == 0].set_index("segment")["share_alive_mean"]
    p = bgnbd.p_alive(*THETA.values(), rfm["frequency"], rfm["recency"], rfm["T"])
    assert now[ALL] == pytest.approx(p.mean(), rel=1e-12)
    assert now["repeat"] == pytest.approx(p[seg == "repeat"].mean(), rel=1e-12)
    later = curve[curve["time"] == 26].set_index("segment")["share_alive_mean"]
    assert (later < now).all()


def test_average_order_value_is_the_gamma_gamma_conditional_mean(sample):
    rfm, _ = sample
    p, q, v = 6.25, 3.74, 15.44  # Fader & Hardie (2013)
    fit = Draws({"p": [[p]], "q": [[q]], "v": [[v]]}, kind="GammaGamma")
    seg = np.where(rfm["frequency"] > 2, "loyal", "other")
    result = average_order_value(fit, rfm, segments=seg)
    per_customer, per_segment = result.summary, result.groups
    x, z = rfm["frequency"].to_numpy(float), rfm["monetary_value"].to_numpy(float)
    expected = gamma_gamma.expected_spend(p, q, v, x, z)
    np.testing.assert_allclose(per_customer["aov_mean"], expected, rtol=1e-12)
    new = per_customer.loc[rfm["frequency"] == 0, "aov_mean"]
    np.testing.assert_allclose(new, p * v / (q - 1), rtol=1e-12)
    table = per_segment.set_index("segment")
    assert table.loc["loyal", "aov_mean"] == pytest.approx(expected[seg == "loyal"].mean())
    assert table.loc[ALL, "n_customers"] == len(rfm)


def test_value_tiers_sizes_and_certainty():
    rng = np.random.default_rng(0)
    n = 1000
    sure = np.tile(np.arange(n, dtype=float), (50, 1))  # every draw ranks alike
    result = value_tiers(_draws(clv=sure))
    per_customer, per_tier = result.summary, result.groups
    assert per_tier["n_customers"].tolist() == [200, 300, 500]
    assert (per_customer["p_in_tier"] == 1).all()
    assert per_customer.set_index("customer_id").loc[999, "tier"] == "high"
    assert per_tier["clv_share"].sum() == pytest.approx(1.0)
    noisy = sure + rng.normal(0, 300, sure.shape)
    noisy_tiers = value_tiers(_draws(clv=noisy)).groups
    assert (noisy_tiers["mean_p_in_tier"] < 1).all()


def test_segment_summary_and_contrasts_match_direct_computation():
    rng = np.random.default_rng(1)
    seg = np.array(["a"] * 30 + ["b"] * 20)
    draws = rng.gamma(2.0, 1.0, (400, 50))
    draws[:, :30] += 0.3
    summary = segment_summary(_draws(clv=draws), seg).summary.set_index("segment")
    mean_a, mean_b = draws[:, :30].mean(1), draws[:, 30:].mean(1)
    assert summary.loc["a", "clv_mean"] == pytest.approx(mean_a.mean())
    assert summary.loc["b", "clv_low"] == pytest.approx(np.quantile(mean_b, 0.05))
    contrast = segment_contrasts(_draws(clv=draws), seg).summary.iloc[0]
    assert (contrast["segment_a"], contrast["segment_b"]) == ("a", "b")
    assert contrast["p_a_gt_b"] == pytest.approx((mean_a > mean_b).mean())


def test_clv_cac_ratio_and_probabilities():
    seg = np.array(["x", "x", "y", "y"])
    draws = np.array([[10.0, 30.0, 1.0, 3.0], [50.0, 70.0, 5.0, 7.0]])
    draws = _draws(clv=draws)
    table = clv_cac(draws, {"x": 10.0, "y": 1.5}, segments=seg).summary.set_index("segment")
    assert table.loc["x", "ratio_mean"] == pytest.approx((2.0 + 6.0) / 2)
    assert table.loc["x", "p_ratio_gt_3"] == 0.5 and table.loc["y", "p_ratio_gt_1"] == 1.0
    overall = clv_cac(draws, 5.0).summary
    assert overall["segment"].tolist() == [ALL]
    with pytest.raises(ValueError, match="missing for segments"):
        clv_cac(draws, {"x": 10.0}, segments=seg)
    with pytest.raises(ValueError, match="positive"):
        clv_cac(draws, -1.0)


def test_at_risk_keeps_valuable_lapsed_customers():
    customers = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5],
            "frequency": [10, 10, 1, 0, 8],
            "monetary_value": [50.0, 50.0, 10.0, 0.0, 40.0],
            "p_alive": [0.1, 0.9, 0.1, 0.2, 0.3],
        }
    )
    predicted = Result(customers[["customer_id", "p_alive"]], xr.Dataset())
    rfm = customers[["customer_id", "frequency", "monetary_value"]]
    risky = at_risk(predicted, rfm, value_quantile=0.25).summary
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
            retention_curve(fit, rfm.head(50), times=[0, 26, 52], seed=0).summary, ax=ax
        ),
        lambda ax: plots.plot_p_alive(customers, ax=ax),
        lambda ax: plots.plot_clv_distribution(customers, ax=ax),
        lambda ax: plots.plot_top_customers(customers, ax=ax),
        lambda ax: plots.plot_value_tiers(
            value_tiers(_draws([1, 2, 3], clv=np.ones((2, 3)))).groups, ax=ax
        ),
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


# --- the one-call analyses give the report's tables ------------------------------------


@pytest.fixture(scope="module")
def built_report():
    """The report of the CDNOW sample (MAP fits, 100 draws, three channels, one CAC) and
    the inputs a notebook user would have: the model RFM table and the report's seeds."""
    from clvbayes.report import ReportOptions, build_report

    tx = load_cdnow("sample")
    channel = {0: "web", 1: "store", 2: "tv"}
    tx["channel"] = (tx["customer_id"] % 3).map(channel)
    options = ReportOptions(
        customer_col="customer_id", date_col="date", value_col="value",
        calibration_end="1997-09-30", holdout_end="1998-06-30", segment_col="channel",
        method="map", draws=100, chains=1, seed=4, cac=20.0,
    )  # fmt: skip
    report = build_report(tx, options, log=None)
    rfm = clvbayes.rfm_summary(
        tx, customer_col="customer_id", date_col="date", value_col="value",
        calibration_end="1997-09-30", observation_end="1998-06-30",
    )  # fmt: skip
    rfm["segment"] = (rfm["customer_id"] % 3).map(channel)
    # the pipeline spawns one seed per random step from options.seed, in this order
    names = ("bgnbd", "spend", "horizon", "holdout", "validate", "tracking", "retention")
    spawned = np.random.SeedSequence(options.seed).spawn(len(names))
    seeds = {k: int(s.generate_state(1)[0]) for k, s in zip(names, spawned, strict=True)}
    return report, rfm, seeds


@pytest.fixture(scope="module")
def built_result(built_report):
    """The report's horizon predictions, made again by one call."""
    report, rfm, seeds = built_report
    bg, gg = report.fits["bgnbd"], report.fits["gamma_gamma"]
    return clvbayes.predict_customers(
        bg, rfm, horizon=52.0, spend_fit=gg, time_unit="W", annual_discount=0.1,
        n_draws=100, seed=seeds["horizon"], keep_draws=("p_alive", "clv"),
    )  # fmt: skip


def test_one_call_analyses_give_exactly_the_report_tables(built_report, built_result):
    report, rfm, seeds = built_report
    content, bg, gg = report.content, report.fits["bgnbd"], report.fits["gamma_gamma"]
    result = built_result
    pd.testing.assert_frame_equal(
        content.customers[["customer_id", "clv_mean", "p_alive"]],
        result.summary[["customer_id", "clv_mean", "p_alive"]],
        check_exact=True,
    )
    seg = rfm["segment"]
    times = np.arange(0.0, 53.0, 2.0)
    retention = clvbayes.retention_curve(
        bg, rfm, times=times, segments="segment", n_draws=100, seed=seeds["retention"]
    )
    aov = clvbayes.average_order_value(gg, rfm, segments=seg, n_draws=100)
    tiers = clvbayes.value_tiers(result)
    risk = clvbayes.at_risk(result, rfm)
    expected = {
        "retention": retention.summary,
        "aov_segments": aov.groups,
        "tiers": tiers.groups,
        "segments": clvbayes.segment_summary(result, seg, variables=["clv", "p_alive"]).summary,
        "contrasts": clvbayes.segment_contrasts(result, seg).summary,
        "cac": clvbayes.clv_cac(result, 20.0, segments=seg).summary,
    }
    for name, table in expected.items():
        pd.testing.assert_frame_equal(getattr(content, name), table, check_exact=True, obj=name)
    assert content.n_at_risk == len(risk.summary) > 0
    shown = ["customer_id", "segment", "frequency", "past_value", "p_alive", "clv_mean"]
    pd.testing.assert_frame_equal(
        content.at_risk[shown], risk.summary[shown].head(len(content.at_risk)), check_exact=True
    )
    details = tiers.summary.merge(aov.summary, on="customer_id")
    pd.testing.assert_frame_equal(
        content.customer_details[details.columns], details, check_exact=True
    )
    # the page's sections and summary.json carry these tables as they are
    summary = content.summary()
    assert summary["segment_contrasts"][0]["p_a_gt_b"] == expected["contrasts"]["p_a_gt_b"][0]
    assert [r["segment"] for r in summary["clv_cac"]] == [ALL, "store", "tv", "web"]


def test_lapse_and_threshold_tables_are_the_one_call_analyses(built_report, built_result):
    report, rfm, _ = built_report
    content, bg, result = report.content, report.fits["bgnbd"], built_result
    lapse = clvbayes.lapse_risk(bg, rfm, window=13.0, result=result, n_draws=100)
    assert content.lapse_window == 13.0  # a quarter of the horizon
    assert content.n_lapse == len(lapse.summary) > len(content.lapse)
    shown = ["customer_id", "segment", "frequency", "p_alive", "p_no_purchase_mean", "clv_mean"]
    pd.testing.assert_frame_equal(
        content.lapse[shown], lapse.summary[shown].head(len(content.lapse)), check_exact=True
    )
    thresholds = clvbayes.p_alive_thresholds(result)
    pd.testing.assert_frame_equal(content.thresholds, thresholds.summary, check_exact=True)
    summary = content.summary()
    assert summary["lapse"] == {"window": 13.0, "n_customers": content.n_lapse}
    assert summary["p_alive_thresholds"][4]["n_customers"] == thresholds.summary["n_customers"][4]
    assert summary["data"]["transaction model"] == "BG/NBD (purchases and dropout)"
    assert "comparison" not in summary


def test_analysis_draws_are_what_the_tables_summarise(built_report):
    report, rfm, _ = built_report
    bg, gg = report.fits["bgnbd"], report.fits["gamma_gamma"]
    retention = retention_curve(bg, rfm, times=[0.0, 26.0], segments="segment", seed=1)
    share = retention.draws["share_alive"]
    assert share.dims == ("chain", "draw", "segment", "time")
    row = retention.summary.set_index(["segment", "time"]).loc[("tv", 26.0)]
    assert row["share_alive_mean"] == share.sel(segment="tv", time=26.0).mean()
    aov = average_order_value(gg, rfm, segments="segment", n_draws=10)
    assert aov.draws["aov"].dims == ("chain", "draw", "customer_id")
    np.testing.assert_array_equal(
        aov.draws["aov"].mean(("chain", "draw")).to_numpy(), aov.summary["aov_mean"].to_numpy()
    )
    result = clvbayes.predict_customers(bg, rfm, horizon=26.0, spend_fit=gg, n_draws=50, seed=3)
    tiers = value_tiers(result)
    codes = tiers.summary["tier"].map({t: k for k, t in enumerate(tiers.draws["tier"].labels)})
    hits = tiers.draws["tier"].to_numpy().reshape(50, -1) == codes.to_numpy()
    np.testing.assert_array_equal(hits.mean(axis=0), tiers.summary["p_in_tier"])
    risk = at_risk(result, rfm)
    assert list(risk.draws["customer_id"].to_numpy()) == risk.summary["customer_id"].tolist()


def test_clv_cac_of_existing_customers_is_the_ratio_of_segment_mean_clv():
    rng = np.random.default_rng(7)
    clv = rng.gamma(2.0, 30.0, (300, 6))
    seg = np.array(["a", "a", "a", "b", "b", "c"])
    result = clv_cac(_draws(clv=clv), {"a": 20.0, "b": 40.0, "c": 10.0, "unused": 1.0},
                     segments=seg)  # fmt: skip
    table = result.summary.set_index("segment")
    assert table.index.tolist() == ["a", "b", "c"]
    assert table["n_customers"].tolist() == [3, 2, 1]
    ratio_b = clv[:, 3:5].mean(axis=1) / 40.0
    assert table.loc["b", "ratio_mean"] == pytest.approx(ratio_b.mean(), rel=1e-12)
    assert table.loc["b", "p_ratio_gt_1"] == pytest.approx((ratio_b > 1).mean())
    np.testing.assert_allclose(result.draws["clv_cac"].sel(segment="b").to_numpy().ravel(), ratio_b)
    # per-segment draws (a new customer's value) take one number for all segments too
    per_segment = xr.DataArray(clv[None, :, :3], dims=("chain", "draw", "segment"),
                               coords={"segment": ["x", "y", "z"]}, name="clv")  # fmt: skip
    same = clv_cac(per_segment, 5.0).summary
    assert same["cac"].tolist() == [5.0] * 3 and "n_customers" not in same
    with pytest.raises(
        ValueError, match=r"no acquisition cost for segment\(s\) \['all customers'\]"
    ):
        clv_cac(_draws(clv=clv), {"a": 1.0})


def test_segment_contrasts_compare_the_largest_segments_unless_pairs_are_given():
    rng = np.random.default_rng(2)
    seg = np.repeat(["small", "big", "mid"], [2, 6, 4])
    draws = _draws(clv=rng.gamma(2.0, 1.0, (200, seg.size)))
    largest = segment_contrasts(draws, seg, max_segments=2)
    assert largest.summary[["segment_a", "segment_b"]].values.tolist() == [["big", "mid"]]
    assert largest.draws["segment"].to_numpy().tolist() == ["big", "mid"]
    assert set(largest.summary["quantity"]) == {"clv"}
    chosen = segment_contrasts(draws, seg, pairs=[("small", "big")], max_segments=2).summary
    assert chosen[["segment_a", "segment_b"]].values.tolist() == [["small", "big"]]
    assert len(segment_contrasts(draws, seg, max_segments=None).summary) == 3


def test_retention_of_a_pareto_nbd_fit_is_p_alive_times_the_gamma_survival(sample):
    """Pareto/NBD: a customer alive at T survives t with E[exp(-mu t)] over
    mu ~ Gamma(s, beta+T), i.e. ((beta+T)/(beta+T+t))^s (no simulation involved)."""
    rfm, _ = sample
    theta = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
    fit = Draws({k: [[v]] for k, v in theta.items()}, kind="ParetoNBD")
    curve = retention_curve(fit, rfm, times=[0.0, 26.0], seed=1).summary.set_index("time")
    args = [rfm[c].to_numpy(float) for c in ("frequency", "recency", "T")]
    alive = pareto_nbd.p_alive(*theta.values(), *args)
    later = ((theta["beta"] + args[2]) / (theta["beta"] + args[2] + 26.0)) ** theta["s"]
    assert curve.loc[0.0, "share_alive_mean"] == pytest.approx(alive.mean(), rel=1e-12)
    assert curve.loc[26.0, "share_alive_mean"] == pytest.approx((alive * later).mean(), rel=1e-12)


def test_analyses_reject_bad_input_with_clear_errors(sample):
    rfm, _ = sample
    bg = Draws({k: [[v]] for k, v in THETA.items()})
    gg = Draws({"p": [[6.25]], "q": [[3.74]], "v": [[15.44]]}, kind="GammaGamma")
    with pytest.raises(TypeError, match=r"fit: expected a fitted transaction model .* GammaGamma"):
        retention_curve(gg, rfm, times=[0.0])
    with pytest.raises(TypeError, match=r"spend_fit: expected a fitted spend model \(GammaGamma\)"):
        average_order_value(bg, rfm)
    with pytest.raises(ValueError, match="segments='region' is not a column"):
        retention_curve(bg, rfm, times=[0.0], segments="region")
    labels = np.where(rfm["frequency"] > 0, "repeat", None)
    with pytest.raises(ValueError, match=r"segments: \d+ of 2357 customers have no segment"):
        average_order_value(gg, rfm, segments=labels)
    with pytest.raises(ValueError, match="segments has 3 values for 2357 customers"):
        average_order_value(gg, rfm, segments=["a", "b", "c"])
    draws = _draws(p_alive=np.full((4, 3), 0.5))
    with pytest.raises(ValueError, match=r"the draws lack \['clv'\]"):
        value_tiers(draws)
    with pytest.raises(ValueError, match="ci_prob must be in"):
        segment_summary(draws, ci_prob=90)
    predicted = Result(pd.DataFrame({"customer_id": [3, 2, 1], "p_alive": 0.5}), draws)
    with pytest.raises(ValueError, match="result has 3 customers, rfm 2357"):
        at_risk(predicted, rfm)
