"""Simulators tied to the likelihoods and expectations of clvbayes.math by Monte Carlo.

Every statistical check uses a fixed seed and a tolerance of 4-5 standard errors (or a
KS p-value above 1e-3), so it is deterministic and fails only on a real discrepancy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from clvbayes.math import bgnbd, mbgnbd, pareto_nbd
from clvbayes.math import gamma_gamma as gg
from clvbayes.simulate import (
    simulate_bgnbd,
    simulate_future_pareto_nbd,
    simulate_future_purchases,
    simulate_gamma_gamma,
    simulate_mbgnbd,
    simulate_pareto_nbd,
    simulate_segments,
    simulate_transaction_model,
    simulate_transaction_values,
)

SHEET = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
SPEND = {"p": 6.25, "q": 3.74, "v": 15.44}
PARAMS = tuple(SHEET.values())


def _assert_mean_zero(diff: np.ndarray, k: float = 4.5) -> None:
    diff = np.asarray(diff, dtype=float).ravel()
    se = diff.std(ddof=1) / np.sqrt(diff.size)
    assert abs(diff.mean()) < k * se, (diff.mean(), se)


def _cdf_sampler_check(samples: np.ndarray, grid: np.ndarray, density: np.ndarray) -> float:
    """KS p-value of ``samples`` against the distribution with ``density`` on ``grid``."""
    cdf = integrate.cumulative_trapezoid(density, grid, initial=0.0)
    cdf /= cdf[-1]
    return stats.kstest(samples, lambda s: np.interp(s, grid, cdf)).pvalue


@pytest.fixture(scope="module")
def new_customers() -> dict[str, np.ndarray]:
    return simulate_bgnbd(*PARAMS, np.full(200_000, 39.0), rng=1)


# --- BG/NBD ----------------------------------------------------------------------------


def test_simulated_frequency_matches_fhl_eq_8_pmf_mean_and_variance(new_customers):
    x = new_customers["frequency"]
    support = np.arange(5000)
    pmf = bgnbd.prob_purchases(*PARAMS, 39.0, support)
    mean = float(np.sum(support * pmf))
    var = float(np.sum(support**2 * pmf) - mean**2)
    assert mean == pytest.approx(float(bgnbd.expected_purchases_new(*PARAMS, 39.0)), rel=1e-8)
    n = x.size
    _assert_mean_zero(x - mean)
    m4 = np.mean((x - x.mean()) ** 4)
    assert abs(x.var() - var) < 4.5 * np.sqrt((m4 - x.var() ** 2) / n)
    observed = np.bincount(x, minlength=10)[:10]
    expected = n * pmf[:10]
    assert np.all(np.abs(observed - expected) < 4.5 * np.sqrt(expected * (1 - pmf[:10])))


def test_simulated_recency_matches_loglik_density(new_customers):
    # density of t_x given x is exp(loglik) t_x^(x-1) (the earlier times fill a simplex)
    grid = np.linspace(0.0, 39.0, 20_001)
    for x in (1, 2, 4):
        t_x = new_customers["recency"][new_customers["frequency"] == x]
        density = np.exp(bgnbd.loglik(*PARAMS, x, grid, 39.0)) * grid ** (x - 1)
        assert _cdf_sampler_check(t_x, grid, density) > 1e-3


def test_simulated_data_match_pymc_marketing_betageonbd_sampler(new_customers):
    import pymc as pm
    from pymc_marketing.clv.distributions import BetaGeoNBD

    r, alpha, a, b = PARAMS
    n = new_customers["T"].size
    theirs = pm.draw(BetaGeoNBD.dist(a=a, b=b, r=r, alpha=alpha, T=np.full(n, 39.0)), random_seed=2)
    t_x, x = theirs[:, 0], theirs[:, 1]
    ours_x = new_customers["frequency"]
    assert stats.ks_2samp(ours_x, x).pvalue > 1e-3
    repeat = ours_x > 0
    assert stats.ks_2samp(new_customers["recency"][repeat], t_x[x > 0]).pvalue > 1e-3


def test_p_alive_and_customer_posterior_are_calibrated_on_simulated_customers():
    """Tower property: E[truth - E[truth | data]] = 0 for alive, λ and p."""
    rng = np.random.default_rng(3)
    T = rng.uniform(20.0, 60.0, size=100_000)
    sim = simulate_bgnbd(*PARAMS, T, rng=rng)
    data = (sim["frequency"], sim["recency"], sim["T"])
    post = bgnbd.customer_posterior(*PARAMS, *data)
    w = post.p_alive
    np.testing.assert_array_equal(w, bgnbd.p_alive(*PARAMS, *data))
    _assert_mean_zero(sim["alive"] - w)
    mean_lam = w * post.alive_shape / post.alive_rate
    mean_lam += (1 - w) * post.dropped_shape / post.dropped_rate
    _assert_mean_zero(sim["lam"] - mean_lam)
    mean_p = w * post.alive_a / (post.alive_a + post.alive_b)
    mean_p += (1 - w) * post.dropped_a / (post.dropped_a + post.dropped_b)
    _assert_mean_zero(sim["p_drop"] - mean_p)


def test_simulate_bgnbd_broadcasts_and_is_reproducible():
    draws = np.array([0.2, 0.3])[:, None]  # parameters per draw against customers' T
    first = simulate_bgnbd(draws, 4.0, 0.8, 2.4, np.array([10.0, 20.0, 30.0]), rng=7)
    second = simulate_bgnbd(draws, 4.0, 0.8, 2.4, np.array([10.0, 20.0, 30.0]), rng=7)
    assert first["frequency"].shape == (2, 3)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert np.all(first["recency"] <= first["T"])
    assert np.all((first["frequency"] == 0) <= (first["recency"] == 0))
    assert np.all(first["alive"][first["frequency"] == 0])


def test_simulate_segments_gives_each_segment_its_own_process():
    """Oracles: FHL 2005 eq. 9 (a new customer's expected purchases) averaged over each
    segment's ages, and Fader & Hardie 2013's population mean spend p v / (q - 1)."""
    params = {
        "r": [0.25, 1.0],
        "alpha": [4.0, 2.0],
        "a": [0.8, 2.0],
        "b": [2.5, 1.0],
        "p": [6.0, 3.0],
        "q": [3.8, 5.0],
        "v": [15.0, 40.0],
    }
    sim = simulate_segments(params, [60_000, 40_000], (20.0, 40.0), rng=3, time_step=1 / 7)
    assert np.bincount(sim["segment"]).tolist() == [60_000, 40_000]
    days = np.concatenate([sim["T"], sim["recency"]]) * 7
    np.testing.assert_allclose(days, np.round(days), atol=1e-9)  # whole days
    assert np.all(sim["recency"] <= sim["T"])
    for code in (0, 1):
        mine = sim["segment"] == code
        r, alpha, a, b, p, q, v = (params[k][code] for k in "r alpha a b p q v".split())
        expected = bgnbd.expected_purchases_new(r, alpha, a, b, sim["T"][mine])
        _assert_mean_zero(sim["frequency"][mine] - expected)
        repeat = mine & (sim["frequency"] > 0)
        _assert_mean_zero(sim["monetary_value"][repeat] - p * v / (q - 1))
    no_spend = simulate_segments(
        {k: params[k] for k in "r alpha a b".split()}, [5, 5], (1, 2), rng=1
    )
    assert "monetary_value" not in no_spend and no_spend["T"].min() >= 1


# --- Gamma-Gamma -----------------------------------------------------------------------


def test_simulated_mean_spend_matches_gamma_gamma_loglik_and_expectation():
    rng = np.random.default_rng(4)
    p, q, v = SPEND.values()
    x = rng.choice([0, 1, 3], size=150_000)
    z = simulate_gamma_gamma(p, q, v, x, rng=rng)
    assert np.all(z[x == 0] == 0)
    # E[z̄ | x > 0] = E[p/ν] = p v/(q-1) whatever x
    _assert_mean_zero(z[x > 0] - gg.expected_spend_new(p, q, v))
    grid = np.linspace(1e-6, 1000.0, 200_001)
    for k in (1, 3):
        density = np.exp(gg.loglik(p, q, v, k, grid))
        assert _cdf_sampler_check(z[x == k], grid, density) > 1e-3


def test_simulated_transaction_values_have_the_same_mean_distribution():
    p, q, v = SPEND.values()
    x = np.full(40_000, 4)
    values = simulate_transaction_values(p, q, v, x, rng=5)
    assert values.values.size == x.sum()
    np.testing.assert_allclose(
        values.monetary_value, values.values.reshape(-1, 4).mean(axis=1), rtol=1e-12
    )
    direct = simulate_gamma_gamma(p, q, v, x, rng=6)
    assert stats.ks_2samp(values.monetary_value, direct).pvalue > 1e-3
    # the spend-scale posterior is calibrated: E[ν - E[ν | data]] = 0
    shape, rate = gg.spend_scale_posterior(p, q, v, x, values.monetary_value)
    _assert_mean_zero(values.nu - shape / rate)


# --- future purchases ------------------------------------------------------------------


def test_future_purchase_counts_match_fhl_eq_7():
    rng = np.random.default_rng(8)
    n = 200_000
    lam = rng.gamma(2.0, 0.5, size=n)
    p = rng.beta(1.0, 5.0, size=n)
    horizon = 10.0
    expected = (1 - np.exp(-lam * p * horizon)) / p  # given alive, eq. 7
    plain = simulate_future_purchases(lam, p, True, horizon, rng=9)
    _assert_mean_zero(plain.count - expected)
    np.testing.assert_array_equal(plain.discounted, plain.count)
    # the event-by-event path (any δ > 0) gives the same count distribution
    timed = simulate_future_purchases(lam, p, True, horizon, rng=10, discount_rate=1e-12)
    _assert_mean_zero(timed.count - expected)
    assert stats.ks_2samp(plain.count, timed.count).pvalue > 1e-3


def test_discounted_future_purchases_match_closed_form():
    # alive until a purchase-triggered dropout: E Σ e^{-δ t_j} = λ(1 - e^{-(λp+δ)h})/(λp+δ)
    rng = np.random.default_rng(11)
    n = 200_000
    lam = rng.gamma(2.0, 1.0, size=n)
    p = rng.beta(1.0, 3.0, size=n)
    delta, horizon = 0.05, 20.0
    sim = simulate_future_purchases(lam, p, True, horizon, rng=12, discount_rate=delta)
    rate = lam * p + delta
    _assert_mean_zero(sim.discounted - lam * (1 - np.exp(-rate * horizon)) / rate)
    assert np.all(sim.discounted <= sim.count)
    small = simulate_future_purchases(
        lam[:20_000], p[:20_000], True, horizon, rng=13, discount_rate=delta, max_block_elements=64
    )
    rate = rate[:20_000]
    _assert_mean_zero(small.discounted - lam[:20_000] * (1 - np.exp(-rate * horizon)) / rate)


def test_discounted_values_are_exact_when_one_customer_spans_several_passes():
    # ~1,000 purchases per customer in passes of 64: elements are split across passes
    rng = np.random.default_rng(21)
    n = 4_000
    lam = rng.gamma(50.0, 1.0, size=n)
    p = rng.beta(1.0, 50.0, size=n)
    delta, horizon, shape, rate = 0.05, 20.0, 3.0, 0.5
    sim = simulate_future_purchases(
        lam,
        p,
        True,
        horizon,
        rng=22,
        discount_rate=delta,
        value_shape=shape,
        value_rate=rate,
        max_block_elements=64,
    )
    total = lam * p + delta
    closed = lam * (1 - np.exp(-total * horizon)) / total
    _assert_mean_zero(sim.discounted - closed)
    _assert_mean_zero(sim.value - shape / rate * closed)
    assert sim.count.max() > 64
    assert np.all(sim.discounted <= sim.count)


def test_future_purchases_of_dead_customers_are_zero_and_shapes_are_kept():
    lam = np.full((3, 4), 2.0)
    alive = np.array([True, False, True, False])
    out = simulate_future_purchases(lam, 0.1, alive, 5.0, rng=14, discount_rate=0.01)
    assert out.count.shape == (3, 4)
    assert np.all(out.count[:, ~alive] == 0)
    assert np.all(out.discounted[:, ~alive] == 0)
    again = simulate_future_purchases(lam, 0.1, alive, 5.0, rng=14, discount_rate=0.01)
    np.testing.assert_array_equal(out.discounted, again.discounted)
    once = simulate_future_purchases(np.full(1000, 50.0), 1.0, True, 5.0, rng=15)
    assert once.count.max() == 1  # p = 1: drops right after the first purchase


def test_posterior_predictive_purchases_match_expected_purchases_eq_10():
    """Draw (alive, λ, p) from customer_posterior, simulate 39 weeks: mean = E[Y(39)]."""
    rng = np.random.default_rng(16)
    m = 400_000
    post = bgnbd.customer_posterior(*PARAMS, 2.0, 30.43, 38.86)
    alive = rng.random(m) < post.p_alive
    lam = rng.gamma(post.alive_shape, 1.0 / post.alive_rate, size=m)
    p = rng.beta(post.alive_a, post.alive_b, size=m)
    sim = simulate_future_purchases(lam, p, alive, 39.0, rng=rng)
    expected = float(bgnbd.expected_purchases(*PARAMS, 2.0, 30.43, 38.86, 39.0))
    assert expected == pytest.approx(1.226, abs=5e-4)
    _assert_mean_zero(sim.count - expected)


# --- MBG/NBD and Pareto/NBD ------------------------------------------------------------

MBG = (0.525, 6.183, 0.891, 1.614)  # BTYDplus's CDNOW-sample estimates
PNBD = (0.553, 10.578, 0.606, 11.669)  # Fader, Hardie & Lee (2005)


def _frequency_pmf_from_loglik(loglik, params, T: float, max_x: int) -> np.ndarray:
    """P(x) for x < max_x by integrating the likelihood over the recency.

    The likelihood of ``(x, t_x, T)`` is a density in the ``x`` purchase times; the
    first ``x - 1`` fill the simplex below ``t_x`` (volume ``t_x^(x-1)/(x-1)!``), so
    ``P(x) = ∫_0^T L(x, t, T) t^(x-1)/(x-1)! dt`` and ``P(0) = L(0, 0, T)``.
    """
    u, w = np.polynomial.legendre.leggauss(200)
    t = 0.5 * T * (u + 1.0)
    pmf = [float(np.exp(loglik(*params, 0.0, 0.0, T)))]
    for x in range(1, max_x):
        density = np.exp(
            loglik(*params, np.full_like(t, x), t, np.full_like(t, T))
            + (x - 1) * np.log(t)
            - sp_gammaln(x)
        )
        pmf.append(float(0.5 * T * w @ density))
    return np.array(pmf)


def sp_gammaln(x: float) -> float:
    from scipy.special import gammaln

    return float(gammaln(x))


def _assert_histogram_matches(x: np.ndarray, pmf: np.ndarray) -> None:
    observed = np.bincount(x, minlength=pmf.size)[: pmf.size]
    expected = x.size * pmf
    assert np.all(np.abs(observed - expected) < 4.5 * np.sqrt(expected * (1 - pmf))), (
        observed,
        expected,
    )


@pytest.fixture(scope="module")
def mbg_customers() -> dict[str, np.ndarray]:
    return simulate_mbgnbd(*MBG, np.full(200_000, 39.0), rng=21)


@pytest.fixture(scope="module")
def pnbd_customers() -> dict[str, np.ndarray]:
    return simulate_pareto_nbd(*PNBD, np.full(200_000, 39.0), rng=22)


def test_simulated_mbgnbd_frequency_matches_loglik_and_prob_purchases(mbg_customers):
    from lifetimes import ModifiedBetaGeoFitter

    pmf = _frequency_pmf_from_loglik(mbgnbd.loglik, MBG, 39.0, 8)
    closed = mbgnbd.prob_purchases(*MBG, 39.0, np.arange(8))
    np.testing.assert_allclose(pmf, closed, rtol=1e-8)  # two routes, one distribution
    fitter = ModifiedBetaGeoFitter()
    fitter.params_ = pd.Series(dict(zip(["r", "alpha", "a", "b"], MBG, strict=True)))
    lifetimes_pmf = [fitter.probability_of_n_purchases_up_to_time(39.0, k) for k in range(8)]
    np.testing.assert_allclose(closed, lifetimes_pmf, rtol=1e-10)
    _assert_histogram_matches(mbg_customers["frequency"], closed)
    support = np.arange(5000)
    mean = float(support @ mbgnbd.prob_purchases(*MBG, 39.0, support))
    assert mean == pytest.approx(float(mbgnbd.expected_purchases_new(*MBG, 39.0)), rel=1e-8)
    _assert_mean_zero(mbg_customers["frequency"] - mean)


def test_simulated_mbgnbd_recency_matches_loglik_density(mbg_customers):
    grid = np.linspace(0.0, 39.0, 20_001)
    for x in (1, 3):
        t_x = mbg_customers["recency"][mbg_customers["frequency"] == x]
        density = np.exp(mbgnbd.loglik(*MBG, x, grid, 39.0)) * grid ** (x - 1)
        assert _cdf_sampler_check(t_x, grid, density) > 1e-3


def test_simulated_mbgnbd_drops_out_at_time_zero():
    sim = simulate_mbgnbd(0.5, 5.0, 1.0, 1.0, np.full(100_000, 10.0), rng=23)
    zero = sim["frequency"] == 0
    assert not sim["alive"][zero].all()  # unlike the BG/NBD
    # dead with x = 0 <=> dropped at the first flip, probability p (mean a/(a+b) = 1/2)
    dead_at_zero = (~sim["alive"] & zero) * 1.0
    _assert_mean_zero(dead_at_zero - sim["p_drop"])
    _assert_mean_zero(dead_at_zero - 0.5)


def test_simulated_pareto_nbd_frequency_matches_loglik(pnbd_customers):
    pmf = _frequency_pmf_from_loglik(pareto_nbd.loglik, PNBD, 39.0, 8)
    _assert_histogram_matches(pnbd_customers["frequency"], pmf)
    assert np.all(pnbd_customers["recency"] <= pnbd_customers["T"])
    assert np.all(pnbd_customers["recency"][pnbd_customers["alive"] == 0] <= 39.0)


def test_simulated_pareto_nbd_recency_matches_loglik_density(pnbd_customers):
    grid = np.linspace(0.0, 39.0, 4_001)
    for x in (1, 3):
        t_x = pnbd_customers["recency"][pnbd_customers["frequency"] == x]
        density = np.exp(pareto_nbd.loglik(*PNBD, np.full_like(grid, x), grid, 39.0))
        assert _cdf_sampler_check(t_x, grid, density * grid ** (x - 1)) > 1e-3


def test_simulated_pareto_nbd_matches_pymc_marketing_sampler(pnbd_customers):
    import pymc as pm
    from pymc_marketing.clv.distributions import ParetoNBD

    n = 50_000
    dist = ParetoNBD.dist(*PNBD, T=np.full(n, 39.0))
    theirs = pm.draw(dist, random_seed=24)
    assert stats.ks_2samp(pnbd_customers["frequency"], theirs[:, 1]).pvalue > 1e-3
    ours = pnbd_customers["frequency"] > 0
    assert (
        stats.ks_2samp(pnbd_customers["recency"][ours], theirs[theirs[:, 1] > 0, 0]).pvalue > 1e-3
    )


def test_pareto_nbd_p_alive_and_customer_posterior_are_calibrated():
    """Tower property on simulated customers: E[alive - P(alive)] = 0, and given alive
    ``λ ~ Gamma(r+x, α+T)``, ``μ ~ Gamma(s, β+T)``, so E[λ 1(alive)] = P(alive)(r+x)/(α+T)."""
    rng = np.random.default_rng(25)
    sim = simulate_pareto_nbd(*PNBD, rng.uniform(20.0, 60.0, 100_000), rng=rng)
    post = pareto_nbd.customer_posterior(*PNBD, sim["frequency"], sim["recency"], sim["T"])
    w = post.p_alive
    _assert_mean_zero(sim["alive"] - w)
    _assert_mean_zero(sim["lam"] * sim["alive"] - w * post.lam_shape / post.lam_rate)
    _assert_mean_zero(sim["mu"] * sim["alive"] - w * post.mu_shape / post.mu_rate)


def test_mbgnbd_p_alive_and_customer_posterior_are_calibrated():
    rng = np.random.default_rng(26)
    sim = simulate_mbgnbd(*MBG, rng.uniform(20.0, 60.0, 100_000), rng=rng)
    data = (sim["frequency"], sim["recency"], sim["T"])
    post = mbgnbd.customer_posterior(*MBG, *data)
    w = post.p_alive
    np.testing.assert_array_equal(w, mbgnbd.p_alive(*MBG, *data))
    _assert_mean_zero(sim["alive"] - w)
    mean_lam = w * post.alive_shape / post.alive_rate
    mean_lam += (1 - w) * post.dropped_shape / post.dropped_rate
    _assert_mean_zero(sim["lam"] - mean_lam)
    mean_p = w * post.alive_a / (post.alive_a + post.alive_b)
    mean_p += (1 - w) * post.dropped_a / (post.dropped_a + post.dropped_b)
    _assert_mean_zero(sim["p_drop"] - mean_p)


@pytest.mark.parametrize("discount_rate", [0.0, 0.03])
def test_pareto_nbd_posterior_predictive_purchases_match_expected_purchases(discount_rate):
    """Draw (alive, λ, μ) from customer_posterior, simulate 39 weeks: mean = E[Y(39)]."""
    rng = np.random.default_rng(27)
    m = 300_000
    history = (2.0, 30.43, 38.86)
    post = pareto_nbd.customer_posterior(*PNBD, *history)
    alive = rng.random(m) < post.p_alive
    lam = rng.gamma(post.lam_shape, 1.0 / post.lam_rate, size=m)
    mu = rng.gamma(post.mu_shape, 1.0 / post.mu_rate, size=m)
    sim = simulate_future_pareto_nbd(lam, mu, alive, 39.0, rng=rng, discount_rate=discount_rate)
    expected = float(pareto_nbd.expected_discounted_purchases(*PNBD, *history, 39.0, discount_rate))
    if discount_rate == 0:
        assert expected == pytest.approx(
            float(pareto_nbd.expected_purchases(*PNBD, *history, 39.0)), rel=1e-12
        )
    _assert_mean_zero(sim.discounted - expected)


@pytest.mark.parametrize("discount_rate", [0.0, 0.03])
def test_mbgnbd_posterior_predictive_purchases_match_expected_purchases(discount_rate):
    rng = np.random.default_rng(28)
    m = 300_000
    history = (0.0, 0.0, 38.86)  # x = 0: P(alive) < 1 under the MBG/NBD
    post = mbgnbd.customer_posterior(*MBG, *history)
    assert post.p_alive < 1
    alive = rng.random(m) < post.p_alive
    lam = rng.gamma(post.alive_shape, 1.0 / post.alive_rate, size=m)
    p = rng.beta(post.alive_a, post.alive_b, size=m)
    sim = simulate_future_purchases(lam, p, alive, 39.0, rng=rng, discount_rate=discount_rate)
    expected = float(mbgnbd.expected_discounted_purchases(*MBG, *history, 39.0, discount_rate))
    _assert_mean_zero(sim.discounted - expected)


def test_simulate_transaction_model_dispatches_and_names_problems():
    T = np.full(5, 10.0)
    out = simulate_transaction_model(
        "ParetoNBD", dict(zip(("r", "alpha", "s", "beta"), PNBD, strict=True)), T, rng=1
    )
    np.testing.assert_array_equal(
        out["frequency"], simulate_pareto_nbd(*PNBD, T, rng=1)["frequency"]
    )
    with pytest.raises(ValueError, match="no simulator for model 'GammaGamma'"):
        simulate_transaction_model("GammaGamma", {}, T, rng=1)
    with pytest.raises(ValueError, match=r"needs parameters \['b'\]"):
        simulate_transaction_model("MBGNBD", {"r": 1, "alpha": 1, "a": 1}, T, rng=1)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ParetoNBD", "MBGNBD"])
def test_simulate_then_flat_map_fit_recovers_the_parameters(kind):
    """20,000 simulated customers observed 1-2 years: the MLE lands near the truth.

    Over seeds 29-31 the largest |log(estimate/truth)| was 0.05 for r, α, a, b, 0.1 for s
    and 0.2 for β (the Pareto/NBD dropout parameters are the weakly identified ones);
    the tolerances are 2-3 times those."""
    from clvbayes.models import MBGNBD, ParetoNBD
    from clvbayes.priors import FLAT_PRIORS

    truth = dict(zip(("r", "alpha", "s", "beta"), PNBD, strict=True))
    spec = ParetoNBD(priors=FLAT_PRIORS(*truth))
    if kind == "MBGNBD":
        truth = dict(zip(("r", "alpha", "a", "b"), MBG, strict=True))
        spec = MBGNBD(priors=FLAT_PRIORS(*truth))
    rng = np.random.default_rng(29)
    T = rng.uniform(52.0, 104.0, 20_000)
    sim = simulate_transaction_model(kind, truth, T, rng=rng)
    rfm = pd.DataFrame({k: sim[k] for k in ("frequency", "recency", "T")})
    fitted = spec.fit(rfm, method="map")
    got = {k: float(v.ravel()[0]) for k, v in fitted.params().items()}
    tolerance = {"r": 0.1, "alpha": 0.1, "a": 0.15, "b": 0.15, "s": 0.3, "beta": 0.45}
    for name, value in truth.items():
        assert abs(np.log(got[name] / value)) < tolerance[name], (name, got[name], value)
