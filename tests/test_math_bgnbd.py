"""BG/NBD maths against its oracles: the papers, Hardie's sheets, lifetimes, pymc-marketing."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from scipy.special import gammaln

from clvbayes.data.compress import compress
from clvbayes.math import bgnbd
from clvbayes.math.bgnbd import _mean_if_alive, _mean_if_alive_quadrature
from clvbayes.math.ops import Factor

MLE = {"r": 0.2425945, "alpha": 4.4136027, "a": 0.7929218, "b": 2.4259057}
SHEET = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
# The pymc-marketing 1.3 NaN case (days): r, alpha, a, b
DAYS = {"r": 0.25, "alpha": 4.5, "a": 0.8, "b": 2.4}


def _params(p: dict[str, float]) -> tuple[float, float, float, float]:
    return p["r"], p["alpha"], p["a"], p["b"]


def _extreme_grid(n: int, seed: int) -> dict[str, np.ndarray]:
    """Parameters log-uniform on 1e-4..1e4; data with x up to 1e4, t_x = T, T up to 1e4."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = 10.0 ** rng.uniform(-4, 4, size=(4, n))
    x = rng.choice([0, 1, 2, 3, 10, 100, 1000, 10_000], size=n).astype(float)
    T = 10.0 ** rng.uniform(-2, 4, size=n)
    u = rng.choice([0.0, 0.3, 0.99, 1.0], size=n)
    t_x = np.where(x > 0, u * T, 0.0)
    return {"r": r, "alpha": alpha, "a": a, "b": b, "x": x, "t_x": t_x, "T": T}


def _lifetimes_fitter(p: dict[str, float]):
    from lifetimes import BetaGeoFitter

    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series({k: p[k] for k in ("r", "alpha", "a", "b")})
    return fitter


def _lifetimes_expected(fitter, t, x, t_x, T) -> np.ndarray:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(
            fitter.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T), dtype=float
        )


# --- log-likelihood ------------------------------------------------------------------


def test_loglik_matches_pymc_marketing_betageonbd_logp():
    import pymc as pm
    from pymc_marketing.clv.distributions import BetaGeoNBD

    g = _extreme_grid(3000, seed=1)
    # BetaGeoNBD.logp takes vector parameters and a (n, 2) value of [t_x, x]
    dist = BetaGeoNBD.dist(a=g["a"], b=g["b"], r=g["r"], alpha=g["alpha"], T=g["T"])
    with np.errstate(all="ignore"):
        theirs = pm.logp(dist, np.stack([g["t_x"], g["x"]], axis=1)).eval()
    ours = bgnbd.loglik(g["r"], g["alpha"], g["a"], g["b"], g["x"], g["t_x"], g["T"])
    assert np.all(np.isfinite(ours))
    finite = np.isfinite(theirs)
    assert finite.mean() > 0.9
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-8, atol=1e-9)


def test_loglik_numpy_equals_pytensor():
    import pytensor
    import pytensor.tensor as pt

    g = _extreme_grid(2000, seed=2)
    sym = [pt.dvector(k) for k in ("r", "alpha", "a", "b", "x", "t_x", "T")]
    fn = pytensor.function(sym, bgnbd.loglik(*sym))
    order = ("r", "alpha", "a", "b", "x", "t_x", "T")
    np.testing.assert_allclose(
        fn(*(g[k] for k in order)), bgnbd.loglik(*(g[k] for k in order)), rtol=1e-8, atol=1e-10
    )


def test_loglik_factor_gather_path_equals_elementwise_exactly():
    g = _extreme_grid(500, seed=3)
    args = (g["r"][:1], g["alpha"][:1], g["a"][:1], g["b"][:1])
    plain = bgnbd.loglik(*args, g["x"], g["t_x"], g["T"])
    fx = Factor.of(g["x"])
    via_kw = bgnbd.loglik(*args, None, g["t_x"], g["T"], x_levels=fx.levels, x_index=fx.index)
    via_factors = bgnbd.loglik(*args, fx, Factor.of(g["t_x"]), Factor.of(g["T"]))
    np.testing.assert_array_equal(via_kw, plain)
    np.testing.assert_array_equal(via_factors, plain)


def test_weighted_unique_row_sum_equals_per_customer_sum(cdnow_summary_csv):
    rfm = cdnow_summary_csv
    per_customer = bgnbd.loglik(*_params(MLE), rfm["frequency"], rfm["recency"], rfm["T"]).sum()
    c = compress(rfm)
    rows = bgnbd.loglik(*_params(MLE), c.factor("frequency"), c.factor("recency"), c.factor("T"))
    assert c.n_rows < c.n_customers
    assert np.sum(c.counts * rows) == pytest.approx(per_customer, rel=1e-9)


def test_loglik_at_mle_matches_fader_hardie_lee_2005(cdnow_summary_csv):
    rfm = cdnow_summary_csv
    ll = bgnbd.loglik(*_params(MLE), rfm["frequency"], rfm["recency"], rfm["T"]).sum()
    assert ll == pytest.approx(-9582.4, abs=0.05)


positive = st.floats(1e-4, 1e4, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    r=positive,
    alpha=positive,
    a=positive,
    b=positive,
    x=st.integers(0, 10_000),
    T=st.floats(0.0, 1e4),
    u=st.floats(0.0, 1.0),
)
def test_loglik_and_p_alive_finite_over_extreme_grid(r, alpha, a, b, x, T, u):
    t_x = u * T if x > 0 else 0.0
    assert np.isfinite(bgnbd.loglik(r, alpha, a, b, x, t_x, T))
    pa = bgnbd.p_alive(r, alpha, a, b, x, t_x, T)
    assert 0.0 <= pa <= 1.0


def test_loglik_gradient_finite_at_extremes_in_pytensor():
    import pytensor
    import pytensor.tensor as pt

    theta = pt.dvector("theta")  # log r, log alpha, log a, log b
    x, t_x, T = pt.dvector("x"), pt.dvector("t_x"), pt.dvector("T")
    r, alpha, a, b = (pt.exp(theta[i]) for i in range(4))
    total = bgnbd.loglik(r, alpha, a, b, x, t_x, T).sum()
    grad = pytensor.function([theta, x, t_x, T], pytensor.grad(total, theta))
    # x = 0 with b < 1 is the #NUM! case of the spreadsheet (b + x - 1 < 0)
    data = (
        np.array([0.0, 0, 1, 10_000, 10_000, 1, 50]),
        np.array([0.0, 0, 1e4, 1e4, 1.0, 0, 20]),
        np.array([1e4, 1e-2, 1e4, 1e4, 1e4, 1e4, 30]),
    )
    for log_params in (
        [0.0, 0, 0, np.log(0.5)],
        np.log([1e-4, 1e4, 1e-4, 1e-4]),
        np.log([1e4, 1e-4, 1e4, 1e4]),
    ):
        g = grad(np.asarray(log_params, dtype=float), *data)
        assert np.all(np.isfinite(g)), (log_params, g)


def test_loglik_is_a_density_consistent_with_prob_purchases_eq_8():
    """exp(loglik) is the density of the x purchase times; it depends on them via t_x only,
    so the density of (x, t_x) is exp(loglik) t_x^(x-1)/(x-1)! (the simplex of the earlier
    times) and integrating it over t_x in [0, T] gives P(X(T) = x) (FHL 2005 eq. 8)."""
    r, alpha, a, b = _params(SHEET)
    T = 39.0

    def density(t: float, x: int) -> float:
        log_simplex = (x - 1) * np.log(t) - gammaln(x)
        return float(np.exp(bgnbd.loglik(r, alpha, a, b, x, t, T) + log_simplex))

    for x in (1, 2, 5):
        mass, _ = integrate.quad(density, 0, T, args=(x,), epsabs=0, epsrel=1e-11)
        assert mass == pytest.approx(float(bgnbd.prob_purchases(r, alpha, a, b, T, x)), rel=1e-8)
    p0 = float(np.exp(bgnbd.loglik(r, alpha, a, b, 0, 0.0, T)))
    assert p0 == pytest.approx(float(bgnbd.prob_purchases(r, alpha, a, b, T, 0)), rel=1e-12)


def test_prob_purchases_is_a_distribution_with_mean_eq_9():
    r, alpha, a, b = _params(SHEET)
    x = np.arange(3000)
    pmf = bgnbd.prob_purchases(r, alpha, a, b, 39.0, x)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    mean = float(np.sum(x * pmf))
    assert mean == pytest.approx(
        float(bgnbd.expected_purchases_new(r, alpha, a, b, 39.0)), rel=1e-8
    )


# --- conditional expectations and P(alive) -------------------------------------------


def test_expected_purchases_matches_hardie_spreadsheet():
    # BG/NBD Excel note (Hardie 004): customer 1, E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226
    value = bgnbd.expected_purchases(*_params(SHEET), 2, 30.43, 38.86, 39)
    assert float(value) == pytest.approx(1.226, abs=5e-4)


def test_expected_purchases_and_p_alive_match_lifetimes_on_cdnow(cdnow_summary_csv):
    rfm = cdnow_summary_csv
    fitter = _lifetimes_fitter(MLE)
    x, t_x, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    for t in (1.0, 39.0, 52.0, 520.0):
        ours = bgnbd.expected_purchases(*_params(MLE), x, t_x, T, t)
        np.testing.assert_allclose(ours, _lifetimes_expected(fitter, t, x, t_x, T), rtol=1e-6)
    np.testing.assert_allclose(
        bgnbd.p_alive(*_params(MLE), x, t_x, T),
        fitter.conditional_probability_alive(x, t_x, T),
        rtol=1e-10,
    )


def _day_grid() -> tuple[np.ndarray, ...]:
    """72 customers: frequency 0..1000, recency 0..T, T up to 1e4 days, horizons to 3650."""
    rows = []
    for x in (0, 1, 10, 100, 500, 1000):
        for T in (30.0, 1000.0, 10_000.0):
            for frac in (0.0,) if x == 0 else (0.1, 1.0):
                for t in (30.0, 3650.0):
                    rows.append((x, frac * T, T, t))
    rows += [(500, 1000.0, 1000.0, 3650.0), (1000, 10.0, 10_000.0, 3650.0)]
    rows += [(0, 0.0, 0.0, 3650.0), (3, 1.0, 1.0, 1.0)]
    return tuple(np.array(c, dtype=float) for c in zip(*rows, strict=True))


def test_expected_purchases_finite_on_day_grid_and_matches_lifetimes():
    x, t_x, T, t = _day_grid()
    assert 60 <= x.size <= 80
    ours = bgnbd.expected_purchases(*_params(DAYS), x, t_x, T, t)
    assert np.all(np.isfinite(ours)) and np.all(ours >= 0)
    # the customer pymc-marketing 1.3 returns NaN for (x=500, t_x=T=1000, t=3650)
    case = (x == 500) & (t_x == 1000) & (T == 1000) & (t == 3650)
    assert float(ours[case][0]) == pytest.approx(897.7, abs=0.05)
    theirs = _lifetimes_expected(_lifetimes_fitter(DAYS), t, x, t_x, T)
    finite = np.isfinite(theirs)
    assert finite.sum() >= 0.9 * x.size
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-6)


def test_expected_purchases_matches_adaptive_quadrature_on_extreme_grid():
    # An independent evaluation of E_p[(1 - (1+ps)^-(r+x))/p] (no hypergeometric function)
    rng = np.random.default_rng(4)
    n = 150
    r, a, b = 10.0 ** rng.uniform(-2, 2, size=(3, n))
    a = a + 1e-3 * (np.abs(a - 1) < 1e-3)
    x = rng.choice([0, 1, 10, 100, 1000, 10_000], size=n).astype(float)
    s = 10.0 ** rng.uniform(-2, 3, size=n)
    ours = _mean_if_alive(r + x, b + x, a, s)
    quad = np.array([_mean_if_alive_quadrature(*v) for v in zip(r + x, b + x, a, s, strict=True)])
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, quad, rtol=1e-9)


def test_expected_purchases_falls_back_where_hyp2f1_overflows():
    # a and x in the thousands with z near 1: hyp2f1 overflows while (1-z)^(a-1) underflows
    n, beta, a, s = 10_000.0, 10_008.5, 9120.0, 244.0
    value = float(_mean_if_alive(n, beta, a, s))
    assert np.isfinite(value)
    # the customer almost surely buys 1/p times; E[1/p] = (a+beta-1)/(a-1)
    assert value == pytest.approx((a + beta - 1) / (a - 1), rel=1e-3)
    assert value == pytest.approx(_mean_if_alive_quadrature(n, beta, a, s), rel=1e-12)


def test_expected_purchases_continuous_through_a_equal_one():
    r, alpha, b = 0.25, 4.5, 2.4
    a = 1.0 + np.array([-1e-3, -1e-4, -1e-6, 0.0, 1e-6, 1e-4, 1e-3])
    values = bgnbd.expected_purchases(r, alpha, a, b, 5, 100.0, 1000.0, 365.0)
    assert np.all(np.isfinite(values))
    # smooth in a: second differences are tiny compared with the values
    slope = np.polyfit(a - 1, values, 2)
    np.testing.assert_allclose(np.polyval(slope, a - 1), values, rtol=1e-8)


def test_expected_purchases_new_matches_lifetimes_and_eq_10_at_zero_history():
    fitter = _lifetimes_fitter(MLE)
    t = np.array([1.0, 39.0, 78.0, 520.0])
    ours = bgnbd.expected_purchases_new(*_params(MLE), t)
    np.testing.assert_allclose(ours, fitter.expected_number_of_purchases_up_to_time(t), rtol=1e-8)
    np.testing.assert_allclose(
        bgnbd.expected_purchases(*_params(MLE), 0, 0, 0, t), ours, rtol=1e-14
    )


def _pymc_marketing_model(data: pd.DataFrame, draws: dict[str, np.ndarray]):
    import xarray as xr
    from pymc_marketing.clv import BetaGeoModel

    model = BetaGeoModel()
    model.build_model(data)
    shape = draws["r"].shape
    posterior = xr.Dataset(
        {k: (("chain", "draw"), v) for k, v in draws.items()},
        coords={"chain": np.arange(shape[0]), "draw": np.arange(shape[1])},
    )
    model.fit_result = xr.DataTree.from_dict({"posterior": posterior})
    return model


def test_expected_purchases_and_p_alive_match_pymc_marketing_on_posterior_draws(
    cdnow_summary_csv,
):
    data = cdnow_summary_csv.iloc[:40][["customer_id", "frequency", "recency", "T"]]
    rng = np.random.default_rng(5)
    draws = {k: v * np.exp(rng.normal(0, 0.1, size=(2, 3))) for k, v in MLE.items()}
    model = _pymc_marketing_model(data, draws)
    x, t_x, T = (data[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    params = [draws[k][..., None] for k in ("r", "alpha", "a", "b")]  # (chain, draw, 1)

    ours = bgnbd.expected_purchases(*params, x, t_x, T, 52.0)
    theirs = model.expected_purchases(future_t=52).transpose("chain", "draw", "customer_id")
    assert ours.shape == (2, 3, 40)
    np.testing.assert_allclose(ours, theirs.values, rtol=1e-6)

    alive = model.expected_probability_alive().transpose("chain", "draw", "customer_id")
    np.testing.assert_allclose(bgnbd.p_alive(*params, x, t_x, T), alive.values, rtol=1e-10)

    new = model.expected_purchases_new_customer(t=52).transpose("chain", "draw", "customer_id")
    ours_new = bgnbd.expected_purchases_new(*params, np.full(40, 52.0))
    np.testing.assert_allclose(ours_new, new.values, rtol=1e-6)


def test_p_alive_is_one_for_no_repeat_purchases_and_works_in_pytensor():
    import pytensor.tensor as pt

    assert bgnbd.p_alive(*_params(MLE), 0, 0.0, 100.0) == 1.0
    sym = bgnbd.p_alive(pt.dscalar("r"), *_params(MLE)[1:], 2.0, 30.43, 38.86)
    value = sym.eval({"r": MLE["r"]})
    assert value == pytest.approx(float(bgnbd.p_alive(*_params(MLE), 2.0, 30.43, 38.86)))


# --- conditional posterior -------------------------------------------------------------


@pytest.mark.parametrize(("x", "t_x", "T"), [(0, 0.0, 38.86), (1, 1.71, 38.86), (7, 29.43, 38.86)])
def test_customer_posterior_equals_prior_times_likelihood_over_evidence(x, t_x, T):
    """Bayes' rule, pointwise: posterior(λ, p) = prior(λ, p) L(λ, p) / exp(loglik)."""
    r, alpha, a, b = _params(MLE)
    post = bgnbd.customer_posterior(r, alpha, a, b, x, t_x, T)
    rng = np.random.default_rng(6)
    lam = rng.gamma(1.0, 0.5, size=50) + 1e-3
    p = rng.uniform(0.01, 0.99, size=50)

    def mix(w, shape, rate, pa, pb):
        return w * stats.gamma.pdf(lam, shape, scale=1 / rate) * stats.beta.pdf(p, pa, pb)

    posterior = mix(
        post.p_alive, post.alive_shape, post.alive_rate, post.alive_a, post.alive_b
    ) + mix(1 - post.p_alive, post.dropped_shape, post.dropped_rate, post.dropped_a, post.dropped_b)
    lik = (1 - p) ** x * lam**x * np.exp(-lam * T)
    if x > 0:
        lik = lik + p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * t_x)
    prior = stats.gamma.pdf(lam, r, scale=1 / alpha) * stats.beta.pdf(p, a, b)
    evidence = np.exp(bgnbd.loglik(r, alpha, a, b, x, t_x, T))
    np.testing.assert_allclose(posterior, prior * lik / evidence, rtol=1e-10)


def test_customer_posterior_broadcasts_draws_against_customers():
    draws = np.array([[0.2, 0.25, 0.3]])[..., None]  # (chain, draw, 1)
    x = np.array([0.0, 2, 7])
    post = bgnbd.customer_posterior(draws, 4.4, 0.79, 2.4, x, np.array([0, 30.4, 29.4]), 38.86)
    assert all(np.shape(f) == (1, 3, 3) for f in post)
    assert np.all(post.p_alive[..., 0] == 1.0)
    # x = 0 has no dropped branch; its fields are valid copies of the alive branch
    assert np.all(post.dropped_b[..., 0] == post.alive_b[..., 0])
    np.testing.assert_array_equal(
        post.p_alive, bgnbd.p_alive(draws, 4.4, 0.79, 2.4, x, [0, 30.4, 29.4], 38.86)
    )


def test_expected_purchases_per_distinct_row_equals_per_customer():
    # customers sharing (x, T, t) but not t_x share the hypergeometric part: evaluated once
    rng = np.random.default_rng(5)
    n = 400
    x = rng.integers(0, 4, n).astype(float)
    T = rng.choice([30.0, 35.5, 39.0], n)
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    draws = (np.array([[0.24], [0.3]]), np.array([[4.4], [5.0]]), np.array([[0.79], [0.7]]))
    r, alpha, a = draws
    b = np.array([[2.4], [2.1]])
    got = bgnbd.expected_purchases(r, alpha, a, b, x, t_x, T, 39.0)
    one = [bgnbd.expected_purchases(r, alpha, a, b, x[i], t_x[i], T[i], 39.0) for i in range(n)]
    np.testing.assert_allclose(got, np.concatenate(one, axis=-1), rtol=1e-13)
    disc = bgnbd.expected_discounted_purchases(r, alpha, a, b, x, t_x, T, 39.0, 0.002)
    one = [
        bgnbd.expected_discounted_purchases(r, alpha, a, b, x[i], t_x[i], T[i], 39.0, 0.002)
        for i in range(n)
    ]
    np.testing.assert_allclose(disc, np.concatenate(one, axis=-1), rtol=1e-13)
    # per-customer parameters (segments) take the direct path and agree too
    seg_r = np.broadcast_to(r, (2, n))
    np.testing.assert_allclose(
        bgnbd.expected_purchases(seg_r, alpha, a, b, x, t_x, T, 39.0), got, rtol=1e-13
    )
    np.testing.assert_allclose(
        bgnbd.p_alive(seg_r, alpha, a, b, x, t_x, T), bgnbd.p_alive(r, alpha, a, b, x, t_x, T)
    )
