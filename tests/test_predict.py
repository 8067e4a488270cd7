"""Per-customer predictions: simulation vs analytic expectations, discounting, ranks, seeds.

The posteriors here are synthetic (draws scattered around the published CDNOW MLEs of
Fader, Hardie & Lee 2005 and Fader & Hardie 2013) so the tests need no sampling; the
oracle of each test is named in its name or docstring.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from clvbayes.math import bgnbd, gamma_gamma, mbgnbd
from clvbayes.math.bgnbd import expected_discounted_purchases
from clvbayes.math.clv import continuous_rate
from clvbayes.models import BGNBD, FittedModel, GammaGamma
from clvbayes.predict import (
    expected_purchases,
    p_alive,
    predict_customers,
    summary_table,
)
from clvbayes.predict.summaries import hdi, rank_columns
from clvbayes.simulate import simulate_future_purchases

FHL_MLE = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GG_MLE = {"p": 6.25, "q": 3.74, "v": 15.44}


def fake_fit(spec, centre: dict[str, float], chains: int, draws: int, seed: int) -> FittedModel:
    """A FittedModel whose posterior is ``centre`` times log-normal noise (sd 5 %)."""
    rng = np.random.default_rng(seed)
    ds = xr.Dataset(
        {
            k: (("chain", "draw"), v * np.exp(0.05 * rng.standard_normal((chains, draws))))
            for k, v in centre.items()
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    tree = xr.DataTree.from_dict({"posterior": ds})
    return FittedModel(spec=spec, idata=tree, data=None, fingerprint="synthetic")


@pytest.fixture(scope="module")
def bg_fit() -> FittedModel:
    return fake_fit(BGNBD(), FHL_MLE, chains=2, draws=500, seed=11)


@pytest.fixture(scope="module")
def gg_fit() -> FittedModel:
    return fake_fit(GammaGamma(), GG_MLE, chains=2, draws=500, seed=12)


@pytest.fixture(scope="module")
def rfm(small_rfm: pd.DataFrame) -> pd.DataFrame:
    return small_rfm.iloc[:150].reset_index(drop=True)


def _flat(fit: FittedModel) -> dict[str, np.ndarray]:
    return {k: v.reshape(-1, 1) for k, v in fit.params().items()}


def _z(simulated: np.ndarray, analytic: np.ndarray) -> float:
    """z-score of the mean of per-draw differences (iid across draws)."""
    d = simulated - analytic
    return float(d.mean() / (d.std(ddof=1) / np.sqrt(d.size)))


@pytest.mark.parametrize("horizon", [13.0, 52.0, 156.0])
@pytest.mark.parametrize("annual_discount", [0.0, 0.15])
def test_predictive_means_match_fhl_eq10_and_fh2013_eq5(
    bg_fit, gg_fit, rfm, horizon, annual_discount
):
    """Oracles: FHL 2005 eq. 10 (E[Y(t)], clvbayes.math.bgnbd) for purchases; for CLV
    E[discounted purchases] x E[spend] (Fader & Hardie 2013 eq. 5) per posterior draw,
    the discounted part by the quadrature tested against a fine Stieltjes sum below.
    Mean per-draw totals over customers must agree within 4 Monte-Carlo SE."""
    res = predict_customers(
        bg_fit,
        rfm,
        horizon=horizon,
        spend_fit=gg_fit,
        annual_discount=annual_discount,
        margin=0.3,
        seed=5,
        ranks=False,
    )
    th, sp = _flat(bg_fit), _flat(gg_fit)
    x, t_x, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    z_bar = rfm["monetary_value"].to_numpy(float)
    e_purch = bgnbd.expected_purchases(th["r"], th["alpha"], th["a"], th["b"], x, t_x, T, horizon)
    np.testing.assert_allclose(
        res.draws["expected_purchases"].to_numpy().reshape(-1, x.size), e_purch, rtol=1e-6
    )
    purchases = res.draws["purchases"].to_numpy().reshape(-1, x.size)
    assert abs(_z(purchases.sum(1), e_purch.sum(1))) < 4
    delta = continuous_rate(annual_discount, "week")
    e_disc = expected_discounted_purchases(
        th["r"], th["alpha"], th["a"], th["b"], x, t_x, T, horizon, delta
    )
    spend = gamma_gamma.expected_spend(sp["p"], sp["q"], sp["v"], x, np.where(x > 0, z_bar, 0))
    clv_oracle = 0.3 * e_disc * spend
    clv = res.draws["clv"].to_numpy().reshape(-1, x.size).astype(float)
    assert abs(_z(clv.sum(1), clv_oracle.sum(1))) < 4
    np.testing.assert_allclose(res.summary["clv_conditional_mean"], clv_oracle.mean(0), rtol=1e-9)
    # per customer too: no customer's simulated mean may be far off its expectation
    se = purchases.std(0, ddof=1) / np.sqrt(purchases.shape[0])
    z = (purchases.mean(0) - e_purch.mean(0)) / np.where(se > 0, se, np.inf)
    assert np.mean(np.abs(z) > 3) < 0.03


def _stieltjes(r, alpha, a, b, x, t_x, T, h, delta, steps=20_000):
    """Oracle: Σ_k exp(-δ t_mid) [E(t_k) - E(t_{k-1})] on a fine grid (midpoint rule)."""
    grid = np.linspace(0.0, h, steps + 1)
    e = np.stack([bgnbd.expected_purchases(r, alpha, a, b, x, t_x, T, t) for t in grid])
    mid = 0.5 * (grid[1:] + grid[:-1])
    return np.sum(np.exp(-delta * mid)[:, None] * np.diff(e, axis=0), axis=0)


@pytest.mark.slow
@pytest.mark.parametrize("delta", [0.002, 0.05])
@pytest.mark.parametrize("h", [10.0, 52.0, 400.0])
def test_expected_discounted_purchases_matches_fine_stieltjes_sum(delta, h):
    x = np.array([0.0, 1.0, 5.0, 20.0])
    t_x = np.array([0.0, 10.0, 30.0, 38.0])
    T = np.array([39.0, 39.0, 39.0, 39.0])
    p = FHL_MLE
    got = expected_discounted_purchases(p["r"], p["alpha"], p["a"], p["b"], x, t_x, T, h, delta)
    want = _stieltjes(p["r"], p["alpha"], p["a"], p["b"], x, t_x, T, h, delta)
    np.testing.assert_allclose(got, want, rtol=2e-6)


def test_discounted_value_of_known_alive_customer_matches_hand_computation():
    """Alive, fixed λ, p = 0: E[Σ exp(-δ t_j)] = λ (1 - e^{-δh}) / δ (Poisson process),
    and E[Σ V_j exp(-δ t_j)] = (shape/rate) x that; with δ = 0 the count is Poisson(λh)."""
    n, lam, h, delta, shape, rate = 100_000, 0.4, 52.0, 0.02, 3.0, 0.5
    rng = np.random.default_rng(3)
    out = simulate_future_purchases(
        np.full(n, lam),
        0.0,
        True,
        h,
        rng=rng,
        discount_rate=delta,
        value_shape=shape,
        value_rate=rate,
    )
    count_mean = lam * -np.expm1(-delta * h) / delta
    want = shape / rate * count_mean
    assert abs(out.value.mean() - want) < 4 * out.value.std() / np.sqrt(n)
    assert abs(out.count.mean() - lam * h) < 4 * np.sqrt(lam * h / n)
    plain = simulate_future_purchases(
        np.full(n, lam), 0.0, True, h, rng=rng, value_shape=shape, value_rate=rate
    )
    assert abs(plain.count.var() - lam * h) < 0.05 * lam * h
    assert abs(plain.value.mean() - shape / rate * lam * h) < 4 * plain.value.std() / np.sqrt(n)
    dead = simulate_future_purchases(
        np.full(10, lam), 0.0, False, h, rng=rng, value_shape=shape, value_rate=rate
    )
    assert not dead.count.any() and not dead.value.any()


def test_extreme_customers_give_finite_sensible_answers(bg_fit, gg_fit):
    rfm = pd.DataFrame(
        {
            "customer_id": ["new_long", "frequent", "recent", "zero_spend", "tiny_T", "stale"],
            "frequency": [0, 300, 5, 4, 0, 30],
            "recency": [0.0, 51.9, 60.0, 20.0, 0.0, 1.0],
            "T": [600.0, 52.0, 60.0, 40.0, 0.01, 300.0],
            "monetary_value": [0.0, 45.0, 20.0, 0.0, 0.0, 30.0],
        }
    )
    before = rfm.copy()
    res = predict_customers(bg_fit, rfm, horizon=104, spend_fit=gg_fit, annual_discount=0.1, seed=1)
    pd.testing.assert_frame_equal(rfm, before)
    s = res.summary.set_index("customer_id")
    numeric = s.select_dtypes("number")
    assert np.isfinite(numeric.to_numpy()).all()
    assert s["p_alive"].between(0, 1).all()
    assert s.loc["new_long", "p_alive"] == 1.0  # x = 0: no chance to drop out yet
    # last purchase at T: only the "dropped right after it" branch, 1/(1 + a/(b+x-1))
    th = bg_fit.params()
    by_hand = np.mean(1.0 / (1.0 + th["a"] / (th["b"] + 4.0)))
    assert s.loc["recent", "p_alive"] == pytest.approx(by_hand, rel=1e-6)
    assert s.loc["stale", "p_alive"] < 1e-3  # 30 purchases in week 1, none in 299 weeks
    assert s["expected_purchases"].idxmax() == "frequent"
    assert s.loc["frequent", "expected_purchases"] > 100
    assert (res.draws["clv"] >= 0).all() and (res.draws["purchases"] >= 0).all()
    # zero-spend customers get the population spend (the Gamma-Gamma prior for ν)
    assert s.loc["zero_spend", "clv_mean"] > 0


def _brute_force_ranks(clv: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Oracle: scipy.stats.rankdata (average ties) and a per-value loop for top shares: a
    customer is in the top ``k n`` as far as its last position under any order of ties
    (``above + tied``, counting itself) is (issue 20, item 13: ties create no probability)."""
    n = clv.shape[1]
    ranks = np.mean([stats.rankdata(-row, method="average") for row in clv], axis=0)
    tops = []
    for row in clv:
        p = np.zeros(n)
        for value in np.unique(row):
            tied = row == value
            worst = np.sum(row > value) + tied.sum()  # the tie's last position
            p[tied] = np.clip(share * n - (worst - 1), 0, 1)
        tops.append(p)
    return ranks, np.mean(tops, axis=0)


@settings(max_examples=60, deadline=None)
@given(
    clv=arrays(
        np.float64, st.tuples(st.integers(1, 6), st.integers(1, 25)), elements=st.integers(0, 4)
    ),
    share=st.sampled_from([0.05, 0.1, 0.25, 0.5, 1.0]),
)
def test_ranks_and_top_shares_match_scipy_rankdata_and_sum_to_share(clv, share):
    got = rank_columns(clv, (share,), block_draws=2)
    ranks, top = _brute_force_ranks(clv, share)
    n = clv.shape[1]
    np.testing.assert_allclose(got["expected_rank"], ranks)
    key = f"p_top_{100 * share:g}pct"
    np.testing.assert_allclose(got[key], top, atol=1e-12)
    # k n without ties; less when a tie straddles the cut (no lottery among equals)
    assert got[key].sum() <= share * n + 1e-9
    if all(np.unique(row).size == n for row in clv):
        np.testing.assert_allclose(got[key].sum(), share * n)
    np.testing.assert_allclose(got["expected_rank"].sum(), n * (n + 1) / 2)


def test_top_shares_and_ranks_in_prediction(bg_fit, gg_fit, rfm):
    res = predict_customers(
        bg_fit, rfm, horizon=52, spend_fit=gg_fit, top=(0.1, 0.25), thresholds=(50, 200), seed=2
    )
    s = res.summary
    n = len(s)
    np.testing.assert_allclose(s["p_top_10pct"].sum(), 0.1 * n, rtol=1e-9)
    # in some draws more than 75 % of these 150 customers have CLV 0: that tie straddles
    # the top-25 % cut and gets no probability (issue 20, item 13), so the sum is below
    # 0.25 n by exactly what the brute-force oracle on the same draws says
    clv = res.draws["clv"].to_numpy().reshape(-1, n)
    np.testing.assert_allclose(s["p_top_25pct"], _brute_force_ranks(clv, 0.25)[1], atol=1e-9)
    assert s["p_top_25pct"].sum() <= 0.25 * n
    assert (s["p_top_25pct"] >= s["p_top_10pct"] - 1e-12).all()
    assert (s["p_clv_gt_50"] >= s["p_clv_gt_200"]).all()
    # the most valuable customers by expected rank are those most often in the top 10 %
    assert stats.spearmanr(s["expected_rank"], s["p_top_10pct"]).statistic < -0.5
    np.testing.assert_allclose(s["expected_rank"].sum(), n * (n + 1) / 2)
    # the table from the draws alone agrees with the streamed one
    again = summary_table(res.draws, thresholds=(50, 200), top=(0.1, 0.25))
    cols = [c for c in again.columns if c != "customer_id"]
    np.testing.assert_allclose(again[cols], s[cols], rtol=1e-5, atol=1e-5)


def test_hdi_matches_brute_force_window_search():
    rng = np.random.default_rng(0)
    samples = np.concatenate([rng.gamma(2.0, size=(301, 3)), rng.poisson(2.0, (301, 2))], 1)
    low, high = hdi(samples, 0.9)
    k = int(np.ceil(0.9 * 301))
    for j in range(samples.shape[1]):
        s = np.sort(samples[:, j])
        widths = [s[i + k - 1] - s[i] for i in range(301 - k + 1)]
        i = int(np.argmin(widths))
        assert (low[j], high[j]) == (s[i], s[i + k - 1])


def test_same_seed_same_output_other_seed_differs_inputs_untouched(bg_fit, gg_fit, rfm):
    before = rfm.copy()
    kw = {"horizon": 26, "spend_fit": gg_fit, "annual_discount": 0.1, "n_draws": 200}
    one = predict_customers(bg_fit, rfm, seed=9, **kw)
    two = predict_customers(bg_fit, rfm, seed=9, **kw)
    other = predict_customers(bg_fit, rfm, seed=10, **kw)
    pd.testing.assert_frame_equal(one.summary, two.summary)
    xr.testing.assert_identical(one.draws, two.draws)
    assert not np.array_equal(one.draws["clv"], other.draws["clv"])
    pd.testing.assert_frame_equal(rfm, before)


def test_discount_conventions_give_identical_predictions(bg_fit, gg_fit, rfm):
    kw = {"horizon": 26, "spend_fit": gg_fit, "n_draws": 100, "seed": 3, "time_unit": "W"}
    annual = predict_customers(bg_fit, rfm, annual_discount=0.1, **kw).summary
    weekly = 1.1 ** (7 / 365.2425) - 1
    per_week = predict_customers(bg_fit, rfm, period_discount=weekly, **kw).summary
    continuous = np.log(1.1) * 7 / 365.2425
    per_time = predict_customers(bg_fit, rfm, continuous_discount=continuous, **kw).summary
    pd.testing.assert_frame_equal(annual, per_week, rtol=1e-9)
    pd.testing.assert_frame_equal(annual, per_time, rtol=1e-9)
    undiscounted = predict_customers(bg_fit, rfm, **kw).summary
    # the analytic conditional mean (no Monte-Carlo noise) can only fall with discounting
    assert (annual["clv_conditional_mean"] < undiscounted["clv_conditional_mean"]).all()
    with pytest.raises(ValueError, match="one discount rate"):
        predict_customers(bg_fit, rfm, annual_discount=0.1, continuous_discount=0.01, **kw)


def test_chunking_and_memory_cap_keep_analytic_draws_and_predictive_law(bg_fit, gg_fit, rfm):
    """Chunks of 7 customers and a tiny memory cap (blocks of a few draws) must leave the
    analytic draws identical and the simulated means within Monte-Carlo error."""
    kw = {"horizon": 52, "spend_fit": gg_fit, "n_draws": 300}
    whole = predict_customers(bg_fit, rfm, seed=1, **kw)
    parts = predict_customers(
        bg_fit,
        rfm,
        seed=1,
        chunk_customers=7,
        memory_limit_mb=0.2,
        keep_draws=("p_alive", "expected_purchases", "purchases"),
        **kw,
    )
    for name in ("p_alive", "expected_purchases"):
        np.testing.assert_array_equal(whole.draws[name], parts.draws[name])
    a = whole.draws["purchases"].sum("customer_id").to_numpy().ravel()
    b = parts.draws["purchases"].sum("customer_id").to_numpy().ravel()
    se = np.sqrt(a.var() / a.size + b.var() / b.size)
    assert abs(a.mean() - b.mean()) < 4 * se


def test_n_draws_thins_and_repeats_and_map_fit_predicts(bg_fit, rfm):
    thin = predict_customers(bg_fit, rfm, horizon=10, n_draws=100, seed=1)
    assert dict(thin.draws.sizes) == {"chain": 2, "draw": 50, "customer_id": len(rfm)}
    single = fake_fit(BGNBD(), FHL_MLE, chains=1, draws=1, seed=1)
    rep = predict_customers(single, rfm, horizon=10, n_draws=500, seed=1)
    assert rep.draws.sizes["draw"] == 500
    assert (rep.summary["purchases_sd"] > 0).any()  # customer-level randomness remains


def test_convenience_functions_match_math_module(bg_fit, rfm):
    """Oracle: clvbayes.math.bgnbd.p_alive / expected_purchases evaluated directly."""
    th = {k: v[..., None] for k, v in bg_fit.params().items()}
    x, t_x, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    pa = p_alive(bg_fit, rfm)
    assert pa.dims == ("chain", "draw", "customer_id")
    np.testing.assert_allclose(pa, bgnbd.p_alive(th["r"], th["alpha"], th["a"], th["b"], x, t_x, T))
    ep = expected_purchases(bg_fit, rfm, 30)
    np.testing.assert_allclose(
        ep, bgnbd.expected_purchases(th["r"], th["alpha"], th["a"], th["b"], x, t_x, T, 30)
    )
    assert list(pa["customer_id"].to_numpy()) == list(rfm["customer_id"])


def test_purchases_only_without_spend_fit(bg_fit, rfm):
    res = predict_customers(bg_fit, rfm, horizon=20, n_draws=50, seed=1)
    assert not [c for c in res.summary.columns if "clv" in c or "rank" in c or "top" in c]
    assert set(res.draws.data_vars) == {"p_alive", "expected_purchases", "purchases"}
    with pytest.raises(ValueError, match="spend_fit"):
        predict_customers(bg_fit, rfm, horizon=20, thresholds=[10])
    with pytest.raises(TypeError, match="GammaGamma"):
        predict_customers(bg_fit, rfm, horizon=20, spend_fit=bg_fit)


def test_stream_to_parquet_holds_every_draw(bg_fit, gg_fit, rfm, tmp_path):
    path = tmp_path / "draws.parquet"
    res = predict_customers(
        bg_fit,
        rfm,
        horizon=20,
        spend_fit=gg_fit,
        n_draws=40,
        seed=1,
        chunk_customers=33,
        stream_to=path,
        keep_draws=("clv",),
    )
    assert set(res.draws.data_vars) == {"clv"}
    table = pd.read_parquet(path)
    assert len(table) == 40 * len(rfm)
    back = table.set_index(["chain", "draw", "customer_id"])["clv"].to_xarray()
    xr.testing.assert_equal(back.astype(np.float32), res.draws["clv"].drop_attrs())


@pytest.mark.slow
@pytest.mark.parametrize("cap_mb", [8.0, 32.0])
def test_working_memory_stays_under_the_cap(bg_fit, gg_fit, cdnow_summary_csv, cap_mb):
    """Oracle: tracemalloc's peak (numpy allocations are traced), minus the CLV draws kept
    for the ranks, stays under the cap plus a small fixed overhead (tables, indices)."""
    import tracemalloc

    n = len(cdnow_summary_csv)
    # load the compiled simulation first: its one-time loading is not working memory
    predict_customers(bg_fit, cdnow_summary_csv.iloc[:5], horizon=52, spend_fit=gg_fit, n_draws=4)
    tracemalloc.start()
    try:
        predict_customers(
            bg_fit,
            cdnow_summary_csv,
            horizon=52,
            spend_fit=gg_fit,
            annual_discount=0.1,
            n_draws=400,
            seed=1,
            keep_draws=(),
            memory_limit_mb=cap_mb,
        )
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    kept = 400 * n * 4 / 2**20
    assert peak - kept < cap_mb + 4.0


@pytest.mark.parametrize("module", [bgnbd, mbgnbd], ids=["bgnbd", "mbgnbd"])
def test_automatic_discount_nodes_match_64_point_rule_to_1e8(module):
    """The per-customer node count (8/16/48 by h/(α+T) and δh) against 64 nodes; the
    MBG/NBD shares the rule (its alive part is the BG/NBD's with Beta(a, b+x+1))."""
    rng = np.random.default_rng(11)
    draws = {k: v * np.exp(rng.normal(0, 0.05, (40, 1))) for k, v in FHL_MLE.items()}
    n = 300
    T = rng.uniform(0.5, 80, n)
    x = rng.poisson(2, n).astype(float)
    t_x = T * rng.uniform(0, 1, n) * (x > 0)
    params = [draws[k] for k in ("r", "alpha", "a", "b")]
    for h, delta in [(52.0, 0.0018), (104.0, 0.05), (400.0, 0.05), (rng.uniform(1, 200, n), 0.01)]:
        want = module.expected_discounted_purchases(*params, x, t_x, T, h, delta, nodes=64)
        got = module.expected_discounted_purchases(*params, x, t_x, T, h, delta)
        np.testing.assert_allclose(got, want, rtol=1e-8)


def test_draw_matrix_on_disk_reads_back_what_was_written(tmp_path):
    from clvbayes.predict.spill import DrawMatrix

    values = np.random.default_rng(5).gamma(1.0, 50.0, size=(37, 101)).astype(np.float32)
    with DrawMatrix(37, 101, max_memory_mb=0.001, directory=tmp_path) as disk:
        # on disk, but nameless: a killed process leaves nothing behind
        assert disk.on_disk and (not list(tmp_path.iterdir()) or os.name == "nt")
        for start in reversed(range(0, 101, 17)):  # chunks finish in any order
            disk.write_columns(start, values[:, start : start + 17])
        np.testing.assert_array_equal(disk[5:30], values[5:30])
        np.testing.assert_array_equal(disk[36:37], values[36:37])
        with pytest.raises(ValueError, match="overlap"):
            disk.write_columns(10, values[:, 10:12])
        assert rank_columns(disk, (0.1,), block_draws=8).keys() == {"expected_rank", "p_top_10pct"}
        for k, v in rank_columns(values, (0.1, 0.5)).items():
            np.testing.assert_array_equal(rank_columns(disk, (0.1, 0.5), block_draws=8)[k], v)
    assert not list(tmp_path.iterdir())  # the temporary file is gone


def test_draw_matrix_writes_consecutive_blocks_as_one(tmp_path, monkeypatch):
    """On disk, consecutive column blocks are gathered in the write buffer and written
    together (wide blocks: large reads for the ranks); blocks out of order, wider than
    the buffer or not yet flushed read back all the same."""
    from clvbayes.predict.spill import DrawMatrix

    values = np.random.default_rng(6).gamma(1.0, 50.0, size=(37, 1000)).astype(np.float32)
    written = []
    real = os.pwritev
    monkeypatch.setattr(os, "pwritev", lambda fd, bufs, off: written.append(
        sum(memoryview(b).nbytes for b in bufs)) or real(fd, bufs, off))  # fmt: skip
    with DrawMatrix(37, 1000, max_memory_mb=1.0, buffer_mb=0.5) as held:  # in memory
        assert not held.on_disk and held.memory_mb == pytest.approx(37 * 1000 * 4 / 2**20)
    buffer_mb = 37 * 4 * 300 / 2**20  # 300 columns
    with DrawMatrix(37, 1000, max_memory_mb=0.001, directory=tmp_path, buffer_mb=buffer_mb) as disk:
        assert disk.on_disk and disk.buffer_mb == pytest.approx(buffer_mb)
        assert disk.memory_mb == disk.buffer_mb  # on disk it holds only its buffer
        for start in range(0, 700, 70):  # in order: 4 chunks per write
            disk.write_columns(start, values[:, start : start + 70])
        disk.write_columns(900, values[:, 900:1000])  # out of order
        disk.write_columns(700, values[:, 700:900])  # not contiguous with what is held
        np.testing.assert_array_equal(disk[3:20], values[3:20])  # flushes what is held
        assert written[:2] == [37 * 4 * 280] * 2 and sum(written) == values.nbytes
        with pytest.raises(ValueError, match="overlap"):
            disk.write_columns(650, values[:, 650:660])
        for k, v in rank_columns(values, (0.1, 0.5)).items():
            np.testing.assert_array_equal(rank_columns(disk, (0.1, 0.5), block_draws=8)[k], v)
    with DrawMatrix(
        5, 50, max_memory_mb=0.0001, directory=tmp_path, buffer_mb=5 * 4 * 8 / 2**20
    ) as disk:
        disk.write_columns(0, values[:5, :20])  # wider than the buffer: written directly
        disk.write_columns(20, values[:5, 20:26])  # held
        np.testing.assert_array_equal(disk[0:5], np.where(np.arange(50) < 26, values[:5, :50], 0))
    assert not list(tmp_path.iterdir())


def test_ranks_spilled_to_disk_match_ranks_of_the_returned_draws(bg_fit, gg_fit, rfm, tmp_path):
    """A memory cap below the CLV draws (1000 x 150 x 4 B) moves them to a file; the ranks
    must still be those of exactly the draws returned, customer by customer."""
    res = predict_customers(
        bg_fit,
        rfm,
        horizon=39,
        spend_fit=gg_fit,
        keep_draws=("clv",),
        memory_limit_mb=0.4,
        spill_dir=tmp_path,
        seed=4,
    )
    clv = res.draws["clv"].to_numpy().reshape(-1, len(rfm))
    want = rank_columns(clv, (0.1,))
    np.testing.assert_allclose(res.summary["expected_rank"], want["expected_rank"])
    np.testing.assert_allclose(res.summary["p_top_10pct"], want["p_top_10pct"])
    assert not list(tmp_path.iterdir())


def test_large_runs_return_the_summary_only_and_say_so(bg_fit, rfm):
    with pytest.warns(UserWarning, match="keep_draws"):
        res = predict_customers(bg_fit, rfm, horizon=10, memory_limit_mb=0.5, seed=1)
    assert len(res.draws.data_vars) == 0 and len(res.summary) == len(rfm)


def test_threads_do_not_change_the_output(bg_fit, gg_fit, rfm):
    kw = {"horizon": 52, "spend_fit": gg_fit, "annual_discount": 0.1, "n_draws": 200}
    kw |= {"chunk_customers": 20, "seed": 8, "thresholds": [20]}
    one = predict_customers(bg_fit, rfm, n_jobs=1, **kw)
    two = predict_customers(bg_fit, rfm, n_jobs=2, **kw)
    pd.testing.assert_frame_equal(one.summary, two.summary)
    xr.testing.assert_identical(one.draws, two.draws)
