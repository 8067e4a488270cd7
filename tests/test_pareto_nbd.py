"""Pareto/NBD likelihood: oracles are numerical integration, pymc-marketing, FHL 2005, lifetimes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate
from scipy import special as sp

from clvbayes.math import pareto_nbd
from clvbayes.math.ops import Factor
from clvbayes.models.pareto_nbd import ParetoNBD
from clvbayes.priors import FLAT_PRIORS

FHL_2005 = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
FHL_2005_LL = -9595.0
PARAMS = [
    (0.553, 10.578, 0.606, 11.669),
    (0.1, 50.0, 3.0, 0.5),
    (5.0, 0.3, 0.2, 30.0),
    (1.0, 1.0, 1.0, 1.0),
    (2.0, 5.0, 0.5, 5.0),
    (0.07, 21.0, 0.13, 1.4),
]


def _data(seed: int = 0, n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, n).astype(float)
    x[: n // 4] = 0
    T = rng.uniform(1, 80, n)
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    return x, t_x, T


def _by_quadrature(r, alpha, s, beta, x, t_x, T) -> float:
    """Definition: alive till T, or dropout at tau in (t_x, T] (FHL 2005, eqs. 1-3)."""
    m = r + x
    low = min(alpha, beta)

    def integrand(ell: float) -> float:  # tau = e^ell - low, smooth in ell
        e = np.exp(ell)
        return np.exp(ell - m * np.log(alpha - low + e) - (s + 1) * np.log(beta - low + e))

    lo, hi = np.log(t_x + low), np.log(T + low)
    died = integrate.quad(integrand, lo, hi, epsabs=0, epsrel=1e-13, limit=500)[0] if hi > lo else 0
    alive = np.exp(-m * np.log(alpha + T) - s * np.log(beta + T))
    return (
        sp.gammaln(m)
        - sp.gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        + np.log(alive + s * died)
    )


@pytest.mark.parametrize("params", PARAMS)
def test_loglik_matches_numerical_integration_of_the_definition(params):
    x, t_x, T = _data()
    expected = np.array([_by_quadrature(*params, *row) for row in zip(x, t_x, T, strict=True)])
    got = pareto_nbd.loglik(*params, x, t_x, T)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("params", PARAMS)
def test_loglik_matches_pymc_marketing(params):
    import pymc as pm
    from pymc_marketing.clv.distributions import ParetoNBD as PymcMarketingParetoNBD

    x, t_x, T = _data(1)
    n = x.size
    dist = PymcMarketingParetoNBD.dist(*(np.full(n, p) for p in params), T=T)
    theirs = pm.logp(dist, np.column_stack([t_x, x])).eval()
    finite = np.isfinite(theirs)
    assert finite.sum() > n // 2
    ours = pareto_nbd.loglik(*params, x, t_x, T)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-8)


def test_factor_input_equals_plain_arrays():
    x, t_x, T = _data(2)
    plain = pareto_nbd.loglik(*PARAMS[0], x, t_x, T)
    factored = pareto_nbd.loglik(*PARAMS[0], Factor.of(x), Factor.of(t_x), Factor.of(T))
    np.testing.assert_allclose(factored, plain, rtol=1e-14)


def test_draw_shaped_parameters_broadcast_and_chunk():
    x, t_x, T = _data(3, n=500)
    rng = np.random.default_rng(0)
    r = rng.uniform(0.3, 1.0, (3, 40, 1))
    out = pareto_nbd.loglik(r, 10.0 * r, r, 12.0 * r, x, t_x, T)
    assert out.shape == (3, 40, 500)
    single = pareto_nbd.loglik(
        r[2, 17, 0], 10 * r[2, 17, 0], r[2, 17, 0], 12 * r[2, 17, 0], x, t_x, T
    )
    np.testing.assert_allclose(out[2, 17], single, rtol=1e-13)


@pytest.mark.slow
@pytest.mark.parametrize("params", [PARAMS[0], PARAMS[1], PARAMS[3], PARAMS[4]])
def test_pytensor_equals_numpy_and_gradient_matches_finite_differences(params):
    x, t_x, T = _data(4)
    sym = pt.dscalars("r", "alpha", "s", "beta")
    ll = pareto_nbd.loglik(*sym, x, t_x, T)
    fn = pytensor.function(sym, [ll, pt.stack(pt.grad(ll.sum(), sym))])
    value, grad = fn(*params)
    # PyTensor fuses and reorders operations: the last bits differ (seen: 1.3e-12 relative
    # on values ~5e-4 that come from cancellation); the design bound is 1e-8
    np.testing.assert_allclose(value, pareto_nbd.loglik(*params, x, t_x, T), rtol=1e-9)
    eps = 1e-6
    for i in range(4):
        up = [p * (1 + eps * (j == i)) for j, p in enumerate(params)]
        down = [p * (1 - eps * (j == i)) for j, p in enumerate(params)]
        numeric = (
            pareto_nbd.loglik(*up, x, t_x, T).sum() - pareto_nbd.loglik(*down, x, t_x, T).sum()
        ) / (2 * eps * params[i])
        assert grad[i] == pytest.approx(numeric, rel=1e-5, abs=1e-6), i  # alpha == beta too


def test_finite_over_extreme_grid():
    grid = [1e-4, 1e-2, 1.0, 1e2, 1e4]
    r, alpha, s, beta = (g.ravel() for g in np.meshgrid(grid, grid, grid, grid))
    for x, t_x, T in [
        (0, 0, 1e-2),
        (0, 0, 1e4),
        (1e4, 9999.0, 1e4),
        (1e4, 1.0, 1e4),
        (50, 0.01, 0.02),
        (3, 5.0, 5.0),
    ]:
        ll = pareto_nbd.loglik(r, alpha, s, beta, np.float64(x), np.float64(t_x), np.float64(T))
        assert np.all(np.isfinite(ll)), (x, t_x, T)
        if x == 0:  # log of a probability; the fixed rule's error reaches ~1e-3 only in
            # the corner x = 0, max(alpha, beta)/min >= 1e6 and (r+x)/s >= 1e4
            assert np.all(ll <= 2e-3)
        pa = pareto_nbd.p_alive(r, alpha, s, beta, x, t_x, T)
        assert np.all((pa >= 0) & (pa <= 1 + 1e-12)), (x, t_x, T)  # may underflow to 0


def test_alpha_equal_beta_is_continuous():
    x, t_x, T = _data(5)
    at = pareto_nbd.loglik(0.7, 5.0, 1.3, 5.0, x, t_x, T)
    near = pareto_nbd.loglik(0.7, 5.0 * (1 + 1e-9), 1.3, 5.0, x, t_x, T)
    # the two sides use mirrored node placements: they agree to the rule's accuracy
    np.testing.assert_allclose(at, near, rtol=5e-8)


def test_p_alive_and_expected_purchases_match_lifetimes():
    from lifetimes import ParetoNBDFitter

    x, t_x, T = _data(6, n=30)
    fitter = ParetoNBDFitter()
    fitter.params_ = pd.Series(dict(zip(["r", "alpha", "s", "beta"], PARAMS[0], strict=True)))
    np.testing.assert_allclose(
        pareto_nbd.p_alive(*PARAMS[0], x, t_x, T),
        fitter.conditional_probability_alive(x, t_x, T),
        rtol=1e-8,
    )
    np.testing.assert_allclose(
        pareto_nbd.expected_purchases(*PARAMS[0], x, t_x, T, 10.0),
        fitter.conditional_expected_number_of_purchases_up_to_time(10.0, x, t_x, T),
        rtol=1e-8,
    )


def test_expected_purchases_continuous_at_s_equal_one():
    x, t_x, T = _data(7)
    at = pareto_nbd.expected_purchases(0.5, 8.0, 1.0, 9.0, x, t_x, T, 13.0)
    near = pareto_nbd.expected_purchases(0.5, 8.0, 1.0 + 1e-6, 9.0, x, t_x, T, 13.0)
    np.testing.assert_allclose(at, near, rtol=1e-5)


@pytest.mark.slow
def test_flat_map_matches_fader_hardie_lee_2005(cdnow_summary_csv):
    fitted = ParetoNBD(priors=FLAT_PRIORS("r", "alpha", "s", "beta")).fit(
        cdnow_summary_csv, method="map"
    )
    point = {k: float(v.ravel()[0]) for k, v in fitted.params().items()}
    for name, published in FHL_2005.items():
        # published to 3 decimals, data to 2 decimals: 1e-3 relative is what is achieved
        assert point[name] == pytest.approx(published, rel=1e-3), name
    total = float(fitted.log_likelihood().to_numpy().ravel() @ fitted.data.counts)
    assert round(total, 1) == FHL_2005_LL


@pytest.mark.slow
def test_flat_map_matches_lifetimes_pareto_nbd_fitter(cdnow_summary_csv):
    from lifetimes import ParetoNBDFitter

    d = cdnow_summary_csv
    np.random.seed(1987)  # noqa: NPY002 (lifetimes draws its start values from it)
    theirs = ParetoNBDFitter().fit(d["frequency"], d["recency"], d["T"]).params_
    fitted = ParetoNBD(priors=FLAT_PRIORS("r", "alpha", "s", "beta")).fit(d, method="map")
    for name in ("r", "alpha", "s", "beta"):
        assert float(fitted.params()[name].ravel()[0]) == pytest.approx(theirs[name], rel=2e-3)
    # lifetimes reports its likelihood on rescaled time; recompute it on the paper's scale
    their_ll = pareto_nbd.loglik(
        *(theirs[k] for k in ("r", "alpha", "s", "beta")),
        d["frequency"].to_numpy(float),
        d["recency"].to_numpy(float),
        d["T"].to_numpy(float),
    ).sum()
    ours = float(fitted.log_likelihood().to_numpy().ravel() @ fitted.data.counts)
    assert ours >= their_ll - 1e-6
    assert ours == pytest.approx(their_ll, abs=0.05)


@pytest.mark.parametrize("params", PARAMS)
def test_customer_posterior_alive_mass_is_the_conjugate_kernel(params):
    """P(alive) x likelihood = Γ(r+x)α^r β^s / (Γ(r)(α+T)^(r+x)(β+T)^s): the mass of the
    alive branch, whose kernel is Gamma(r+x, α+T) x Gamma(s, β+T) (FHL 2005, eq. 19)."""
    r, alpha, s, beta = params
    x, t_x, T = _data(8)
    post = pareto_nbd.customer_posterior(*params, x, t_x, T)
    log_mass = (
        sp.gammaln(r + x)
        - sp.gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        - (r + x) * np.log(alpha + T)
        - s * np.log(beta + T)
    )
    expected = np.exp(log_mass - pareto_nbd.loglik(*params, x, t_x, T))
    np.testing.assert_allclose(post.p_alive, np.minimum(expected, 1.0), rtol=1e-9)
    np.testing.assert_array_equal(post.lam_shape, r + x)
    np.testing.assert_array_equal(post.mu_rate, beta + T)
    assert np.all(post.mu_shape == s)


def test_per_row_parameters_are_not_shared_across_equal_histories():
    x, t_x, T = np.array([2.0, 2.0]), np.array([3.0, 3.0]), np.array([10.0, 10.0])
    r = np.array([0.5, 0.9])
    both = pareto_nbd.loglik(r, 10.0, 0.6, 11.0, x, t_x, T)
    single = [pareto_nbd.loglik(v, 10.0, 0.6, 11.0, x[:1], t_x[:1], T[:1])[0] for v in r]
    np.testing.assert_allclose(both, single, rtol=1e-12)
    assert pareto_nbd.p_alive(0.55, 10.0, 0.6, 11.0, 2.0, 30.0, 38.0).shape == ()


def test_parameters_factored_over_profiles_equal_per_row_parameters():
    # covariates scale alpha and beta: 3 profiles over 300 rows with repeated histories
    x, t_x, T = _data(5, n=300)
    x[:40] = 0.0
    t_x[:40] = 0.0
    x[40:80], t_x[40:80], T[40:80] = x[80:120], t_x[80:120], T[80:120]  # equal histories
    profile = np.random.default_rng(5).integers(0, 3, x.size)
    alpha_k, beta_k = np.array([8.0, 12.0, 20.0]), np.array([9.0, 5.0, 30.0])
    per_row = pareto_nbd.loglik(0.6, alpha_k[profile], 0.7, beta_k[profile], x, t_x, T)
    alpha, beta = Factor(alpha_k, profile), Factor(beta_k, profile)
    np.testing.assert_allclose(pareto_nbd.loglik(0.6, alpha, 0.7, beta, x, t_x, T), per_row,
                               rtol=1e-13)  # fmt: skip

    # the PyMC path: symbolic per-profile values, shared per (profile, x, t) triple
    sym = pt.dvector("alpha_k"), pt.dvector("beta_k")
    ll = pareto_nbd.loglik(0.6, Factor(sym[0], profile), 0.7, Factor(sym[1], profile), x, t_x, T)
    fn = pytensor.function(list(sym), [ll, *pt.grad(ll.sum(), list(sym))])
    value, grad_alpha, _ = fn(alpha_k, beta_k)
    np.testing.assert_allclose(value, per_row, rtol=1e-9)
    eps = 1e-6
    up = pareto_nbd.loglik(0.6, alpha_k[profile] * (1 + eps * (profile == 1)), 0.7,
                           beta_k[profile], x, t_x, T).sum()  # fmt: skip
    down = pareto_nbd.loglik(0.6, alpha_k[profile] * (1 - eps * (profile == 1)), 0.7,
                             beta_k[profile], x, t_x, T).sum()  # fmt: skip
    assert grad_alpha[1] == pytest.approx((up - down) / (2 * eps * alpha_k[1]), rel=1e-5)


def test_factored_parameters_need_one_profile_index():
    x, t_x, T = _data(6, n=10)
    k = pt.dvector("k")
    with pytest.raises(ValueError, match="share one index"):
        pareto_nbd.loglik(
            0.6, Factor(k, np.arange(10) % 2), 0.7, Factor(k, np.arange(10) // 5), x, t_x, T
        )
