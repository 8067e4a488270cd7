"""MBG/NBD likelihood: oracles are pymc-marketing, BTYDplus (CDNOW sample) and lifetimes."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from clvbayes.math import mbgnbd
from clvbayes.math.ops import Factor
from clvbayes.models import MBGNBD
from clvbayes.priors import FLAT_PRIORS

BTYDPLUS = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
PARAMS = [(0.525, 6.183, 0.891, 1.614), (2.0, 1.0, 0.1, 30.0), (0.05, 200.0, 5.0, 0.2)]


def _data(seed: int = 0, n: int = 80):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, n).astype(float)
    x[: n // 4] = 0
    T = rng.uniform(1, 80, n)
    return x, np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0), T


@pytest.mark.parametrize("params", PARAMS)
def test_loglik_matches_pymc_marketing(params):
    import pymc as pm
    from pymc_marketing.clv.distributions import ModifiedBetaGeoNBD

    x, t_x, T = _data()
    r, alpha, a, b = params
    n = x.size
    dist = ModifiedBetaGeoNBD.dist(
        a=np.full(n, a), b=np.full(n, b), r=np.full(n, r), alpha=np.full(n, alpha), T=T
    )
    theirs = pm.logp(dist, np.column_stack([t_x, x])).eval()
    np.testing.assert_allclose(mbgnbd.loglik(*params, x, t_x, T), theirs, rtol=1e-8)


def test_pytensor_equals_numpy_and_factors_equal_arrays():
    x, t_x, T = _data(1)
    sym = pt.dscalars("r", "alpha", "a", "b")
    fn = pytensor.function(sym, mbgnbd.loglik(*sym, Factor.of(x), Factor.of(t_x), Factor.of(T)))
    for params in PARAMS:
        np.testing.assert_allclose(
            fn(*params), mbgnbd.loglik(*params, x, t_x, T), rtol=1e-10, atol=1e-12
        )


def test_finite_over_extreme_grid_and_p_alive_below_one_at_zero_frequency():
    grid = [1e-4, 1e-2, 1.0, 1e2, 1e4]
    r, alpha, a, b = (g.ravel() for g in np.meshgrid(grid, grid, grid, grid))
    for x, t_x, T in [(0, 0, 1e4), (1e4, 9999.0, 1e4), (1e4, 1.0, 1e4), (3, 5.0, 5.0)]:
        assert np.all(np.isfinite(mbgnbd.loglik(r, alpha, a, b, x, t_x, T))), (x, t_x, T)
    pa = mbgnbd.p_alive(1.0, 5.0, 1.0, 2.0, 0.0, 0.0, 10.0)
    assert 0 < pa < 1  # unlike the BG/NBD, a zero-repeat customer may have left


def test_probabilities_of_x_sum_to_one_over_frequencies():
    """At t_x = T the likelihood is a density in t_x; integrate it and add P(x=0)."""
    from scipy import integrate

    r, alpha, a, b = PARAMS[0]
    T = 20.0
    total = np.exp(mbgnbd.loglik(r, alpha, a, b, 0.0, 0.0, T))
    for x in range(1, 200):
        # P(x) = ∫_0^T L(x, t_x, T) t_x^(x-1)/(x-1)! dt_x (the x purchase times are ordered)
        def density(t, x=x):
            return np.exp(
                mbgnbd.loglik(r, alpha, a, b, float(x), t, T)
                + (x - 1) * np.log(t)
                - np.sum(np.log(np.arange(1, x)))
            )

        total += integrate.quad(density, 0, T, epsrel=1e-10)[0]
    assert total == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
def test_flat_map_matches_btydplus(cdnow_summary_csv):
    fitted = MBGNBD(priors=FLAT_PRIORS("r", "alpha", "a", "b")).fit(cdnow_summary_csv, method="map")
    for name, published in BTYDPLUS.items():
        # BTYDplus prints 3 decimals, the CSV has 2: 1e-3 relative is achieved
        assert float(fitted.params()[name].ravel()[0]) == pytest.approx(published, rel=1e-3)


@pytest.mark.slow
def test_flat_map_matches_lifetimes_modified_beta_geo_fitter(cdnow_summary_csv):
    from lifetimes import ModifiedBetaGeoFitter

    d = cdnow_summary_csv
    theirs = ModifiedBetaGeoFitter().fit(d["frequency"], d["recency"], d["T"]).params_
    fitted = MBGNBD(priors=FLAT_PRIORS("r", "alpha", "a", "b")).fit(d, method="map")
    for name in ("r", "alpha", "a", "b"):
        assert float(fitted.params()[name].ravel()[0]) == pytest.approx(theirs[name], rel=2e-3)


@pytest.mark.parametrize("params", PARAMS)
def test_p_alive_expected_purchases_and_pmf_match_lifetimes(params):
    import pandas as pd
    from lifetimes import ModifiedBetaGeoFitter

    x, t_x, T = _data(2, n=40)
    fitter = ModifiedBetaGeoFitter()
    fitter.params_ = pd.Series(dict(zip(["r", "alpha", "a", "b"], params, strict=True)))
    np.testing.assert_allclose(
        mbgnbd.p_alive(*params, x, t_x, T),
        fitter.conditional_probability_alive(x, t_x, T),
        rtol=1e-6,
    )
    theirs = fitter.conditional_expected_number_of_purchases_up_to_time(10.0, x, t_x, T)
    np.testing.assert_allclose(
        mbgnbd.expected_purchases(*params, x, t_x, T, 10.0), theirs, rtol=1e-6
    )
    t = np.array([1.0, 10.0, 39.0])
    np.testing.assert_allclose(
        mbgnbd.expected_purchases_new(*params, t),
        fitter.expected_number_of_purchases_up_to_time(t),
        rtol=1e-6,
    )
    for k in range(4):
        assert float(mbgnbd.prob_purchases(*params, 39.0, k)) == pytest.approx(
            fitter.probability_of_n_purchases_up_to_time(39.0, k), rel=1e-6
        )


def test_customer_posterior_masses_sum_to_the_likelihood():
    """The two conjugate branches' masses (derivation in customer_posterior) add up to
    exp(loglik), and their ratio is P(alive)."""
    from scipy import special as sp

    r, alpha, a, b = PARAMS[0]
    x, t_x, T = _data(3)
    common = sp.gammaln(r + x) - sp.gammaln(r) + r * np.log(alpha) - sp.betaln(a, b)
    alive = np.exp(common + sp.betaln(a, b + x + 1) - (r + x) * np.log(alpha + T))
    dropped = np.exp(common + sp.betaln(a + 1, b + x) - (r + x) * np.log(alpha + t_x))
    np.testing.assert_allclose(np.log(alive + dropped), mbgnbd.loglik(*PARAMS[0], x, t_x, T))
    post = mbgnbd.customer_posterior(*PARAMS[0], x, t_x, T)
    np.testing.assert_allclose(post.p_alive, alive / (alive + dropped), rtol=1e-12)
    np.testing.assert_array_equal(post.alive_b, b + x + 1)
    np.testing.assert_array_equal(post.dropped_rate, alpha + t_x)
