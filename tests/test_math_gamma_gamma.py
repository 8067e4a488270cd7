"""Gamma-Gamma maths against its oracles: Fader & Hardie, lifetimes, pymc-marketing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import gammaln

from clvbayes.data.compress import compress
from clvbayes.math import gamma_gamma as gg
from clvbayes.math.ops import Factor

MLE = {"p": 6.24957, "q": 3.74422, "v": 15.44352}


def _repeat_buyers(rfm: pd.DataFrame) -> pd.DataFrame:
    return rfm[rfm["frequency"] > 0]


def _grid(n: int, seed: int, low: float = -3.0, high: float = 3.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p, q, v = 10.0 ** rng.uniform(low, high, size=(3, n))
    x = rng.choice([1, 2, 5, 50, 1000, 10_000], size=n).astype(float)
    z = 10.0 ** rng.uniform(-2, 4, size=n)
    return {"p": p, "q": q, "v": v, "x": x, "z": z}


def test_loglik_matches_pymc_marketing_gamma_gamma_potential():
    """200 parameter sets log-uniform on 1e-4..1e4 against 500 customers (x up to 1e4,
    mean spend 0.01..1e4): equal to pymc-marketing 1.3's potential to 1e-8 relative
    wherever that is finite (at least 90 % of the points); ours finite everywhere. Both
    evaluate ``log Γ(px+q) - log Γ(px)`` as a difference, which carries the rounding of
    its two terms (``eps |log Γ(px)|``, up to 4e-7 at px = 1e8): that is allowed on top."""
    import pytensor
    import pytensor.tensor as pt
    from pymc_marketing.clv import GammaGammaModel
    from pytensor.graph.replace import clone_replace

    g = _grid(500, seed=1)
    data = pd.DataFrame(
        {"customer_id": np.arange(500), "frequency": g["x"], "monetary_value": g["z"]}
    )
    model = GammaGammaModel()
    model.build_model(data)
    scalars = {k: pt.dscalar(k) for k in ("p", "q", "v")}
    potential = clone_replace(
        model.model["likelihood"], replace={model.model[k]: scalars[k] for k in scalars}
    )
    theirs_at = pytensor.function(list(scalars.values()), potential)
    params = _grid(200, seed=7, low=-4.0, high=4.0)
    ours = gg.loglik(
        params["p"][:, None], params["q"][:, None], params["v"][:, None], g["x"], g["z"]
    )
    assert np.isfinite(ours).all()
    theirs = np.array(
        [theirs_at(params["p"][i], params["q"][i], params["v"][i]) for i in range(200)]
    )
    comparable = np.isfinite(theirs)
    assert comparable.mean() >= 0.9
    px = params["p"][:, None] * g["x"]
    rounding = (
        8 * np.finfo(float).eps * (np.abs(gammaln(px + params["q"][:, None])) + np.abs(gammaln(px)))
    )
    bound = 1e-8 * np.abs(theirs) + 1e-8 + rounding
    assert np.all(np.abs(ours - theirs)[comparable] <= bound[comparable])


def test_loglik_numpy_equals_pytensor_and_factor_path_is_exact():
    import pytensor
    import pytensor.tensor as pt

    g = _grid(1000, seed=2)
    order = ("p", "q", "v", "x", "z")
    sym = [pt.dvector(k) for k in order]
    fn = pytensor.function(sym, gg.loglik(*sym))
    plain = gg.loglik(*(g[k] for k in order))
    assert np.all(np.isfinite(plain))
    np.testing.assert_allclose(fn(*(g[k] for k in order)), plain, rtol=1e-8, atol=1e-9)

    f = Factor.of(g["x"])
    scalars = (g["p"][:1], g["q"][:1], g["v"][:1])
    np.testing.assert_array_equal(
        gg.loglik(*scalars, None, g["z"], x_levels=f.levels, x_index=f.index),
        gg.loglik(*scalars, g["x"], g["z"]),
    )


def test_loglik_at_mle_matches_fader_hardie_2013(cdnow_summary_csv):
    rfm = _repeat_buyers(cdnow_summary_csv)
    assert len(rfm) == 946
    ll = gg.loglik(MLE["p"], MLE["q"], MLE["v"], rfm["frequency"], rfm["monetary_value"]).sum()
    assert ll == pytest.approx(-4055.92, abs=0.01)
    c = compress(rfm, ("frequency", "monetary_value"))
    rows = gg.loglik(MLE["p"], MLE["q"], MLE["v"], c.factor("frequency"), c["monetary_value"])
    assert np.sum(c.counts * rows) == pytest.approx(ll, rel=1e-9)


def test_expected_spend_matches_hardie_sheet(cdnow_summary_csv):
    # Fader & Hardie (2013) Gamma-Gamma note, customers 1-10 of the CDNOW sample. The sheet
    # shows p=6.25, q=3.74, gamma=15.44 but computes with the unrounded MLE; with the
    # rounded values the population mean is 35.22, not the sheet's 35.17.
    head = cdnow_summary_csv.iloc[:10]
    expected = [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17]
    ours = gg.expected_spend(
        MLE["p"], MLE["q"], MLE["v"], head["frequency"].to_numpy(), head["monetary_value"]
    )
    np.testing.assert_allclose(ours, expected, atol=0.01)


def test_expected_spend_matches_lifetimes(cdnow_summary_csv):
    from lifetimes import GammaGammaFitter

    fitter = GammaGammaFitter()
    fitter.params_ = pd.Series(MLE)
    rfm = cdnow_summary_csv
    theirs = fitter.conditional_expected_average_profit(rfm["frequency"], rfm["monetary_value"])
    ours = gg.expected_spend(
        MLE["p"], MLE["q"], MLE["v"], rfm["frequency"].to_numpy(), rfm["monetary_value"].to_numpy()
    )
    np.testing.assert_allclose(ours, np.asarray(theirs, dtype=float), rtol=1e-10)


def test_expected_spend_matches_pymc_marketing_on_posterior_draws(cdnow_summary_csv):
    import xarray as xr
    from pymc_marketing.clv import GammaGammaModel

    data = _repeat_buyers(cdnow_summary_csv).iloc[:30][
        ["customer_id", "frequency", "monetary_value"]
    ]
    model = GammaGammaModel()
    model.build_model(data)
    rng = np.random.default_rng(3)
    draws = {k: v * np.exp(rng.normal(0, 0.05, size=(2, 4))) for k, v in MLE.items()}
    posterior = xr.Dataset(
        {k: (("chain", "draw"), v) for k, v in draws.items()},
        coords={"chain": [0, 1], "draw": np.arange(4)},
    )
    model.fit_result = xr.DataTree.from_dict({"posterior": posterior})
    theirs = model.expected_customer_spend(data).transpose("chain", "draw", "customer_id")
    params = [draws[k][..., None] for k in ("p", "q", "v")]
    ours = gg.expected_spend(
        *params, data["frequency"].to_numpy(float), data["monetary_value"].to_numpy(float)
    )
    assert ours.shape == (2, 4, 30)
    np.testing.assert_allclose(ours, theirs.values, rtol=1e-10)


def test_spend_scale_posterior_is_prior_times_likelihood_over_evidence():
    """Bayes' rule, pointwise, with the individual values' Gamma(p, ν) likelihood."""
    p, q, v = MLE["p"], MLE["q"], MLE["v"]
    values = np.array([12.0, 30.5, 18.25])
    x, z = values.size, values.mean()
    shape, rate = gg.spend_scale_posterior(p, q, v, x, z)
    nu = np.linspace(0.05, 3.0, 40)
    lik = np.prod(stats.gamma.pdf(values[:, None], p, scale=1 / nu), axis=0)
    joint = stats.gamma.pdf(nu, q, scale=1 / v) * lik
    nu_fine = np.linspace(1e-6, 40.0, 400_001)
    lik_fine = np.prod(stats.gamma.pdf(values[:, None], p, scale=1 / nu_fine), axis=0)
    evidence = np.trapezoid(stats.gamma.pdf(nu_fine, q, scale=1 / v) * lik_fine, nu_fine)
    np.testing.assert_allclose(
        stats.gamma.pdf(nu, shape, scale=1 / rate), joint / evidence, rtol=1e-6
    )
    # E[p/ν] under that posterior is the conditional expected spend
    assert p * rate / (shape - 1) == pytest.approx(float(gg.expected_spend(p, q, v, x, z)))


def test_expected_spend_is_population_mean_without_repeat_purchases():
    p, q, v = MLE["p"], MLE["q"], MLE["v"]
    assert gg.expected_spend_new(p, q, v) == pytest.approx(p * v / (q - 1))
    assert gg.expected_spend(p, q, v, 0.0, 0.0) == pytest.approx(p * v / (q - 1))
    assert gg.spend_scale_posterior(p, q, v, 0.0, 123.0) == (q, v)


def test_loglik_gradient_finite_at_extremes_in_pytensor():
    """The gradient NUTS follows stays finite at parameters 1e-4..1e4 with x up to 1e4."""
    import pytensor
    import pytensor.tensor as pt

    theta = pt.dvector("theta")  # log p, log q, log v
    x, z = pt.dvector("x"), pt.dvector("z")
    p, q, v = (pt.exp(theta[i]) for i in range(3))
    grad = pytensor.function([theta, x, z], pytensor.grad(gg.loglik(p, q, v, x, z).sum(), theta))
    data = (np.array([1.0, 1, 10_000, 10_000, 3]), np.array([1e-2, 1e4, 1e-2, 1e4, 25.0]))
    for log_params in np.log([[6.0, 3.7, 15.0], [1e-4, 1e-4, 1e-4], [1e4, 1e4, 1e4],
                              [1e-4, 1e4, 1e-4], [1e4, 1e-4, 1e4]]):  # fmt: skip
        g = grad(np.asarray(log_params), *data)
        assert np.all(np.isfinite(g)), (log_params, g)
