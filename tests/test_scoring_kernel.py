"""The compiled scoring kernel: random streams per element, its law, and reproducibility.

Oracles: scipy's distributions for the samplers; the numpy reference simulator
(``simulate_future_purchases`` with each family's ``sample_alive_state``, which draws the
rates and the dropout probability explicitly) for the law of simulated purchases and
discounted values; ``gamma_gamma.expected_spend`` for the conditional-mean CLV; and the
output itself under another ``n_jobs``, chunking or memory cap, which must be identical
byte for byte (issue 20, item 4).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numba
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from clvbayes.math import bgnbd, gamma_gamma, kernels, mbgnbd, pareto_nbd
from clvbayes.models import BGNBD, MBGNBD, FittedModel, GammaGamma, ParetoNBD
from clvbayes.predict import predict_customers

# --- the random streams and the samplers -------------------------------------------------


def test_an_element_stream_depends_on_its_key_only():
    one = kernels.element_uniforms(7, 3, 11, 6)
    np.testing.assert_array_equal(one, kernels.element_uniforms(7, 3, 11, 6))
    others = [kernels.element_uniforms(*key, 6) for key in ((8, 3, 11), (7, 4, 11), (7, 3, 12))]
    assert all(not np.array_equal(one, o) for o in others)
    firsts = np.array(
        [kernels.element_uniforms(5, d, c, 1)[0] for d in range(60) for c in range(60)]
    )
    assert stats.kstest(firsts, "uniform").pvalue > 1e-3
    assert 0 < firsts.min() and firsts.max() < 1


@numba.njit
def _draw(kind: int, shape: float, n: int) -> np.ndarray:
    out = np.empty(n)
    state = kernels._key(np.uint64(2024), 0, kind)
    for i in range(n):
        if kind == 0:
            out[i], state = kernels._normal(state)
        elif kind == 1:
            out[i], state = kernels._gamma(shape, state)
        else:
            log_g, state = kernels._log_gamma_variate(shape, state)
            out[i] = np.exp(log_g)
    return out


def test_the_ziggurat_normal_matches_scipy():
    z = _draw(0, 0.0, 400_000)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    tail = np.mean(np.abs(z) > kernels._ZIGGURAT_R)
    assert tail == pytest.approx(2 * stats.norm.sf(kernels._ZIGGURAT_R), rel=0.25)


@pytest.mark.parametrize("shape", [0.02, 0.4, 1.0, 2.7, 60.0])
def test_gamma_variates_match_scipy(shape):
    for kind in (1, 2):
        assert stats.kstest(_draw(kind, shape, 100_000), stats.gamma(shape).cdf).pvalue > 1e-3


# --- the law of the simulated future against the numpy reference ---------------------------


FAMILIES = {
    "BGNBD": (bgnbd, (0.243, 4.414, 0.793, 2.426)),
    "MBGNBD": (mbgnbd, (0.5, 6.0, 0.4, 3.0)),
    "ParetoNBD": (pareto_nbd, (0.55, 10.6, 0.61, 11.7)),
}
# (x, t_x, T) of a few kinds of customer, and a window
HISTORIES = np.array([[0, 0.0, 30.0], [2, 10.0, 38.0], [7, 35.0, 38.0], [15, 30.0, 39.0]])
HORIZON = 52.0
DELTA = 0.004
SPEND = (6.25, 3.74, 15.44)


def _reference(family, params, x, t_x, T, n, rng, spend):
    """The numpy path: alive coin, explicit latent state, reference simulator, values."""
    post = family.customer_posterior(*(np.array([p]) for p in params), x, t_x, T)
    alive = rng.random(n) < post.p_alive[0]
    rates = family.sample_alive_state(post, (np.zeros(n, dtype=int),), rng)
    future = family.simulate_future(
        *rates, alive, HORIZON, rng=rng, discount_rate=DELTA, value_shape=spend[0], value_rate=1.0
    )
    shape, rate = gamma_gamma.spend_scale_posterior(*spend, x, 0.0)
    nu = rng.gamma(shape, 1.0 / rate, size=n)
    return future.count, future.value / nu


def _kernel(family, params, x, t_x, T, n, seed, spend):
    process = family.alive_process(*(np.array([[p]]) for p in params), x, t_x, T)
    count, clv = kernels.simulate_alive_future(
        process, np.zeros(n, dtype=int), np.arange(n), np.array([0]), np.full(n, HORIZON),
        seed=seed, discount_rate=DELTA, spend=spend, spend_x=np.full(n, x),
        spend_z=np.zeros(n),
    )  # fmt: skip
    return count[0], clv[0].astype(float)


def _z(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.mean() - b.mean()) / np.sqrt(a.var() / a.size + b.var() / b.size))


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(FAMILIES))
@pytest.mark.parametrize("history", range(len(HISTORIES)))
def test_kernel_matches_the_numpy_reference_in_law(kind, history):
    """Counts and discounted CLV of one customer type, 200k elements each way: means,
    P(0), P(1), P(2+) within 4.5 standard errors, and a two-sample KS test on the CLV of
    the buyers."""
    module, params = FAMILIES[kind]
    family = module.FAMILY
    x, t_x, T = HISTORIES[history]
    n = 200_000
    ref_count, ref_clv = _reference(family, params, x, t_x, T, n, np.random.default_rng(1), SPEND)
    count, clv = _kernel(family, params, x, t_x, T, n, seed=2, spend=SPEND)
    assert abs(_z(count, ref_count)) < 4.5
    assert abs(_z(clv, ref_clv)) < 4.5
    for k in (0, 1):
        assert abs(_z(count == k, ref_count == k)) < 4.5
    assert abs(_z(count >= 2, ref_count >= 2)) < 4.5
    buyers, ref_buyers = clv[count > 0], ref_clv[ref_count > 0]
    if min(buyers.size, ref_buyers.size) > 100:
        assert stats.ks_2samp(buyers, ref_buyers).pvalue > 1e-3


def test_without_spend_the_kernel_returns_counts_only_and_the_same_counts():
    family = bgnbd.FAMILY
    process = family.alive_process(*(np.array([[p]]) for p in FAMILIES["BGNBD"][1]), 2, 10.0, 38.0)
    args = (process, np.zeros(500, dtype=int), np.arange(500), np.arange(3), np.full(500, 52.0))
    count, clv = kernels.simulate_alive_future(*args, seed=4, discount_rate=DELTA)
    assert clv is None and count.shape == (3, 500) and count.dtype == np.int32
    with_spend, _ = kernels.simulate_alive_future(
        *args, seed=4, discount_rate=DELTA, spend=SPEND, spend_x=np.zeros(500),
        spend_z=np.zeros(500),
    )  # fmt: skip
    np.testing.assert_array_equal(count, with_spend)  # values come after the times


# --- the calendar-clock hook -----------------------------------------------------------------


def _clocked(clock, horizon=52.0, delta=DELTA):
    process = bgnbd.FAMILY.alive_process(
        *(np.array([[p]]) for p in FAMILIES["BGNBD"][1]), np.array([2.0, 9.0]),
        np.array([10.0, 30.0]), np.array([38.0, 38.0]),
    )  # fmt: skip
    n = 4000
    rows = np.arange(n) % 2
    return kernels.simulate_alive_future(
        process, rows, np.arange(n), np.arange(5), np.full(n, horizon), seed=9,
        discount_rate=delta, spend=SPEND, spend_x=rows * 2.0, spend_z=rows * 30.0,
        clock=clock,
    )  # fmt: skip


def test_an_identity_clock_changes_nothing_and_a_faster_clock_is_exact():
    plain = _clocked(None)
    identity = _clocked((np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]])))
    for a, b in zip(plain, identity, strict=True):
        np.testing.assert_array_equal(a, b)
    # calendar time running twice as fast as operational time, for every draw: the
    # window holds half the operational time and every purchase is discounted at twice
    # its operational time
    operational = np.tile([0.0, 1.0], (5, 1))
    doubled = _clocked((operational, 2 * operational))
    half = _clocked(None, horizon=26.0, delta=2 * DELTA)
    for a, b in zip(doubled, half, strict=True):
        np.testing.assert_array_equal(a, b)


# --- predict_customers: the conditional mean and reproducibility ------------------------------


def _fake_fit(spec, centre, seed, chains=2, draws=150):
    rng = np.random.default_rng(seed)
    ds = xr.Dataset(
        {
            k: (("chain", "draw"), v * np.exp(0.05 * rng.standard_normal((chains, draws))))
            for k, v in centre.items()
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    return FittedModel(
        spec=spec, idata=xr.DataTree.from_dict({"posterior": ds}), data=None, fingerprint="x"
    )


@pytest.fixture(scope="module")
def fits():
    names = {"BGNBD": BGNBD(), "MBGNBD": MBGNBD(), "ParetoNBD": ParetoNBD()}
    out = {
        kind: _fake_fit(spec, dict(zip(spec.params, FAMILIES[kind][1], strict=True)), 3)
        for kind, spec in names.items()
    }
    out["spend"] = _fake_fit(GammaGamma(), dict(zip("pqv", SPEND, strict=True)), 4)
    return out


@pytest.fixture(scope="module")
def rfm(small_rfm):
    return small_rfm.iloc[:120].reset_index(drop=True)


def test_the_conditional_mean_clv_is_margin_discounted_purchases_times_expected_spend(fits, rfm):
    bg, gg = fits["BGNBD"], fits["spend"]
    res = predict_customers(
        bg, rfm, horizon=52, spend_fit=gg, annual_discount=0.1, margin=0.4, seed=1, ranks=False,
        n_draws=bg.n_posterior_draws,  # each draw once (by default they are repeated to 500)
    )  # fmt: skip
    theta = {k: v.reshape(-1, 1) for k, v in bg.params().items()}
    spend = {k: v.reshape(-1, 1) for k, v in gg.params().items()}
    x, t_x, T, z = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value"))
    informed = (x > 0) & (z > 0)
    delta = np.log(1.1) * 7 / 365.2425
    discounted = bgnbd.expected_discounted_purchases(*theta.values(), x, t_x, T, 52.0, delta)
    mean_spend = gamma_gamma.expected_spend(
        *spend.values(), np.where(informed, x, 0), np.where(informed, z, 0)
    )
    expected = (0.4 * discounted * mean_spend).mean(axis=0)
    np.testing.assert_allclose(res.summary["clv_conditional_mean"], expected, rtol=1e-12)


def _csv(result) -> bytes:
    return result.summary.to_csv(index=False, float_format="%.17g").encode()


@pytest.mark.parametrize("kind", ["BGNBD", "MBGNBD", "ParetoNBD"])
def test_output_is_byte_identical_for_any_n_jobs_chunking_and_memory_cap(fits, rfm, kind):
    kw = {"horizon": 39, "spend_fit": fits["spend"], "annual_discount": 0.1, "seed": 5}
    kw |= {"thresholds": [30], "top": (0.1, 0.3), "keep_draws": ("purchases", "clv")}
    runs = [
        predict_customers(fits[kind], rfm, n_jobs=1, **kw),
        predict_customers(fits[kind], rfm, n_jobs=2, chunk_customers=17, **kw),
        predict_customers(fits[kind], rfm, n_jobs=4, memory_limit_mb=0.05, **kw),
        predict_customers(fits[kind], rfm, n_jobs=2, memory_limit_mb=4096, **kw),
    ]
    first = runs[0]
    for other in runs[1:]:
        assert _csv(other) == _csv(first)
        pd.testing.assert_frame_equal(other.summary, first.summary, check_exact=True)
        xr.testing.assert_identical(other.draws, first.draws)


def test_a_customer_keeps_its_draws_when_the_table_is_cut_after_it(fits, rfm):
    """Streams are keyed by the customer's row: scoring the first rows alone gives them
    the same simulated draws as scoring the whole table."""
    kw = {"horizon": 39, "spend_fit": fits["spend"], "seed": 6, "ranks": False}
    whole = predict_customers(fits["BGNBD"], rfm, **kw)
    head = predict_customers(fits["BGNBD"], rfm.iloc[:40], **kw)
    for name in ("purchases", "clv"):
        np.testing.assert_array_equal(head.draws[name], whole.draws[name][..., :40])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset is not installed")
def test_report_customers_csv_is_identical_on_one_cpu_and_on_all(tmp_path):
    """Issue 20, item 4: ``clvbayes report --seed 7`` plain and under ``taskset -c 0``."""
    from clvbayes.datasets import load_cdnow

    tx = load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:600])]
    data = tmp_path / "tx.csv"
    tx.to_csv(data, index=False)
    args = [sys.executable, "-m", "clvbayes", "report", str(data), "--customer-col",
            "customer_id", "--date-col", "date", "--value-col", "value", "--calibration-end",
            "1997-09-30", "--method", "map", "--draws", "200", "--chains", "1", "--seed", "7",
            "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    outputs = []
    for prefix, name in (([], "all"), (["taskset", "-c", "0"], "one")):
        out = tmp_path / name
        subprocess.run([*prefix, *args, "--out", str(out)], check=True, env=env, timeout=900)
        outputs.append(out)
    assert (outputs[0] / "customers.csv").read_bytes() == (
        outputs[1] / "customers.csv"
    ).read_bytes()


def test_segmented_fits_score_each_segments_parameters_identically_for_any_chunking(rfm):
    """Segments reach the kernel as per-row parameters: a segmented fit scores each
    customer exactly as the unsegmented fit of its segment's parameters does (same
    streams: the customer's row in its table), whatever the chunking."""
    rng = np.random.default_rng(8)
    levels = ["store", "web"]
    seg = rfm.assign(channel=np.where(np.arange(len(rfm)) % 3 == 0, "web", "store"))
    values = {"r": [0.24, 0.5], "alpha": [4.4, 9.0], "a": [0.79, 0.4], "b": [2.4, 3.1]}
    posterior = xr.Dataset(
        {
            k: (
                ("chain", "draw", "segment"),
                np.array(v) * np.exp(0.05 * rng.standard_normal((2, 40, 2))),
            )
            for k, v in values.items()
        },
        coords={"chain": [0, 1], "draw": np.arange(40), "segment": levels},
    )
    spec = BGNBD(segments="channel", pooling="none")
    fit = FittedModel(spec, xr.DataTree.from_dict({"posterior": posterior}), None, "x")
    kw = {"horizon": 39, "seed": 5, "keep_draws": ("purchases",), "ranks": False}
    whole = predict_customers(fit, seg, **kw)
    chunked = predict_customers(fit, seg, n_jobs=2, chunk_customers=13, **kw)
    pd.testing.assert_frame_equal(whole.summary, chunked.summary, check_exact=True)
    for code, level in enumerate(levels):
        plain = FittedModel(
            BGNBD(),
            xr.DataTree.from_dict({"posterior": posterior.isel(segment=code, drop=True)}),
            None,
            "x",
        )
        alone = predict_customers(plain, seg, **kw)  # every row with this segment's values
        mine = (seg["channel"] == level).to_numpy()
        np.testing.assert_array_equal(
            whole.draws["purchases"].to_numpy()[..., mine],
            alone.draws["purchases"].to_numpy()[..., mine],
        )
