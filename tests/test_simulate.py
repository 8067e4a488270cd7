"""Simulators tied to the likelihoods and expectations of clvbayes.math by Monte Carlo.

Every statistical check uses a fixed seed and a tolerance of 4-5 standard errors (or a
KS p-value above 1e-3), so it is deterministic and fails only on a real discrepancy.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from clvbayes.math import bgnbd
from clvbayes.math import gamma_gamma as gg
from clvbayes.simulate import (
    simulate_bgnbd,
    simulate_future_purchases,
    simulate_gamma_gamma,
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
