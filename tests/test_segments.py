"""Segmented models (partial / no / complete pooling) and segment-level answers.

Oracles: the one-population maths of :mod:`clvbayes.math` evaluated customer by customer
with that customer's segment parameters; plain numpy arithmetic on the draws for the
contrasts and CLV:CAC tables.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvbayes
from clvbayes.analyses import average_order_value, retention_curve
from clvbayes.comparison import compare
from clvbayes.data.compress import SEGMENT
from clvbayes.diagnostics import ConvergenceWarning
from clvbayes.math import bgnbd, gamma_gamma
from clvbayes.models import BGNBD, FittedModel, GammaGamma, ParetoNBD
from clvbayes.models.hierarchy import CENTERED_MIN_CUSTOMERS, SegmentWarning, centered_mask
from clvbayes.ppc import tracking_curve
from clvbayes.predict import expected_purchases, p_alive, predict_customers
from clvbayes.predict.customers import Result
from clvbayes.segments import (
    acquisition_segments,
    clv_cac,
    contrasts,
    existing_customer_value,
    new_customer_value,
    segment_parameters,
    segment_table,
)

FAST = {"draws": 100, "tune": 150, "chains": 2, "progressbar": False}


@pytest.fixture(scope="module")
def seg_rfm(small_rfm):
    """400 CDNOW-sample customers in three segments of unequal size (200, 120, 80)."""
    rfm = small_rfm.copy()
    slot = rfm.index % 10
    rfm["channel"] = np.where(slot < 5, "web", np.where(slot < 8, "store", "tv"))
    return rfm


def _fit(spec, rfm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 2 x 100 draws: ESS is low
        return spec.fit(rfm, seed=5, **FAST)


@pytest.fixture(scope="module")
def bg_partial(seg_rfm):
    return _fit(BGNBD(segments="channel"), seg_rfm)


@pytest.fixture(scope="module")
def gg_none(seg_rfm):
    return _fit(GammaGamma(segments="channel", pooling="none"), seg_rfm)


def _codes(rfm):
    levels = sorted(rfm["channel"].unique())
    return np.array([levels.index(c) for c in rfm["channel"]]), tuple(levels)


# --- data and likelihood (no sampling) ------------------------------------------------


def test_compression_keys_on_segment_and_blocks_partition_rows(seg_rfm):
    data = BGNBD(segments="channel").prepare(seg_rfm)
    codes, levels = _codes(seg_rfm)
    assert data.segments == levels
    assert data.columns[0] == SEGMENT
    np.testing.assert_array_equal(data.rows[SEGMENT][data.inverse], codes)
    np.testing.assert_array_equal(data.segment_counts(), np.bincount(codes))
    covered = np.concatenate([np.arange(s.start, s.stop) for _, s, _ in data.segment_blocks()])
    np.testing.assert_array_equal(covered, np.arange(data.n_rows))
    for code, part, block in data.segment_blocks():
        assert np.all(data.rows[SEGMENT][part] == code)
        np.testing.assert_array_equal(block["frequency"], data["frequency"][part])


def test_segmented_row_loglik_matches_per_customer_maths(seg_rfm):
    spec = BGNBD(segments="channel", pooling="none")
    data = spec.prepare(seg_rfm)
    rng = np.random.default_rng(0)
    params = {
        k: rng.uniform(lo, hi, size=(2, 3, 3))
        for k, (lo, hi) in {"r": (0.2, 1), "alpha": (2, 8), "a": (0.5, 2), "b": (1, 5)}.items()
    }
    rows = spec.row_loglik(params, data)
    codes, _ = _codes(seg_rfm)
    expected = bgnbd.loglik(
        *(params[k][..., codes] for k in ("r", "alpha", "a", "b")),
        seg_rfm["frequency"].to_numpy(float),
        seg_rfm["recency"].to_numpy(float),
        seg_rfm["T"].to_numpy(float),
    )
    np.testing.assert_allclose(data.expand(rows), expected, rtol=1e-10)


@pytest.mark.parametrize("pooling", ["partial", "none"])
def test_pymc_graph_equals_numpy_likelihood(seg_rfm, pooling):
    """The Potential of the PyMC model is the count-weighted numpy likelihood."""
    spec = GammaGamma(segments="channel", pooling=pooling)
    data = spec.prepare(seg_rfm)
    model = spec.build(data)
    point = model.initial_point()
    point = {k: v + 0.1 * np.arange(np.size(v)).reshape(np.shape(v)) for k, v in point.items()}
    outs = model.replace_rvs_by_values([model.potentials[0], *(model[k] for k in "pqv")])
    fn = model.compile_fn(outs, inputs=model.value_vars, mode="FAST_COMPILE")
    potential, p, q, v = fn(point)
    rows = spec.row_loglik({"p": p, "q": q, "v": v}, data)
    np.testing.assert_allclose(potential, (data.counts * rows).sum(), rtol=1e-10)
    informed = (seg_rfm["frequency"] > 0) & (seg_rfm["monetary_value"] > 0)
    codes, _ = _codes(seg_rfm)
    direct = gamma_gamma.loglik(
        p[codes[informed]],
        q[codes[informed]],
        v[codes[informed]],
        seg_rfm["frequency"][informed].to_numpy(float),
        seg_rfm["monetary_value"][informed].to_numpy(float),
    )
    np.testing.assert_allclose(potential, direct.sum(), rtol=1e-10)


@pytest.fixture(scope="module")
def many_seg_rfm(small_rfm):
    """400 CDNOW-sample customers in twelve segments, with a 0/1 covariate."""
    rfm = small_rfm.copy()
    rfm["group"] = [f"g{i % 12:02d}" for i in range(len(rfm))]
    rfm["flag"] = (np.arange(len(rfm)) % 3 == 0).astype(float)
    return rfm


MANY_SEGMENT_SPECS = {
    "BGNBD": lambda: BGNBD(segments="group"),
    "MBGNBD": lambda: clvbayes.MBGNBD(segments="group", pooling="none"),
    "GammaGamma": lambda: GammaGamma(segments="group"),
    "BGNBD-covariates": lambda: BGNBD(
        segments="group", purchase_covariates=["flag"], dropout_covariates=["flag"]
    ),
}


@pytest.mark.filterwarnings("ignore::clvbayes.models.hierarchy.SegmentWarning")
@pytest.mark.parametrize("case", list(MANY_SEGMENT_SPECS))
def test_many_segments_on_all_rows_equal_the_segment_blocks(case, many_seg_rfm, monkeypatch):
    """More than MAX_SEGMENT_BLOCKS segments: one likelihood over all rows, the parameters
    computed per (segment, covariates) profile and the columns crossed with the profiles,
    equal to the sum over segment blocks (numpy)."""
    from clvbayes.data.compress import SEGMENT
    from clvbayes.models import likelihood

    spec = MANY_SEGMENT_SPECS[case]()
    data = spec.prepare(many_seg_rfm)
    assert len(data.segment_blocks()) == 12 > likelihood.MAX_SEGMENT_BLOCKS
    assert likelihood.rows_by_segment(data)
    profiles, index = data.profiles()
    assert set(profiles[SEGMENT]) == set(range(12)) and index.shape == (data.n_rows,)
    frequency = data.crossed("frequency")
    np.testing.assert_array_equal(profiles[SEGMENT][frequency.profiles[frequency.index]],
                                  data[SEGMENT])  # fmt: skip
    rng = np.random.default_rng(3)
    for _ in range(3):
        params = {k: rng.uniform(0.3, 3.0, 12) for k in spec.params}
        for name in spec.design.coefficients if spec.design else ():
            params[name] = rng.normal(0.0, 0.3, len(spec.design.names))
        rows = spec.weighted_loglik(params, data)
        monkeypatch.setattr(likelihood, "MAX_SEGMENT_BLOCKS", 100)
        blocks = spec.weighted_loglik(params, data)
        monkeypatch.undo()
        np.testing.assert_allclose(rows, blocks, rtol=1e-12)


def test_many_segments_pymc_graph_equals_numpy_likelihood(many_seg_rfm):
    """The compiled model of many segments (all rows at once) has the numpy likelihood."""
    spec = BGNBD(segments="group", pooling="none")
    data = spec.prepare(many_seg_rfm)
    model = spec.build(data)
    point = model.initial_point()
    point = {k: v + 0.05 * np.arange(np.size(v)).reshape(np.shape(v)) for k, v in point.items()}
    names = ("r", "alpha", "a", "b")
    outs = model.replace_rvs_by_values([model.potentials[0], *(model[k] for k in names)])
    fn = model.compile_fn(outs, inputs=model.value_vars, mode="FAST_COMPILE")
    potential, *values = fn(point)
    params = dict(zip(names, values, strict=True))
    rows = spec.row_loglik(params, data)  # block by block
    np.testing.assert_allclose(potential, (data.counts * rows).sum(), rtol=1e-10)


def test_hierarchical_model_has_hyperparameters_and_centering(seg_rfm):
    spec = BGNBD(segments="channel", centered=False)
    model = spec.build(spec.prepare(seg_rfm))
    names = {v.name for v in model.free_RVs}
    assert {"r_mu", "r_sigma", "r_z", "phi_dropout_z"} <= names
    assert model.named_vars_to_dims["r"] == ("segment",)
    assert model["r_z"].type.shape == (3,)
    centred = BGNBD(segments="channel", centered=True).build(spec.prepare(seg_rfm))
    free = {v.name for v in centred.free_RVs}
    # the marginal form: mu and sigma integrated out of the centred segments' prior, then
    # drawn given them
    assert {"r_link_c", "r_mu_z", "r_sigma_z"} <= free
    assert not {"r_mu", "r_sigma"} & free
    assert {"r_mu", "r_sigma"} <= set(centred.named_vars)
    # a sigma prior the quadrature does not take: only mu is integrated out
    from pymc_extras.prior import Prior

    halfcauchy = {"r_sigma": Prior("HalfCauchy", beta=0.5)}
    spec = BGNBD(segments="channel", centered=True, priors=halfcauchy)
    free = {v.name for v in spec.build(spec.prepare(seg_rfm)).free_RVs}
    assert {"r_link_mean", "r_link_dev", "r_mu_z", "r_sigma", "purchase_rate_sigma_z"} <= free


def test_auto_centering_centres_large_segments_only(seg_rfm):
    """``centered="auto"``: centred at >= 1,000 customers (data pin the parameters),
    non-centred below; the model then has both kinds of variable."""
    counts = np.array([999, CENTERED_MIN_CUSTOMERS, 20_000])
    assert centered_mask("auto", counts).tolist() == [False, True, True]
    assert centered_mask(True, counts).all() and not centered_mask(False, counts).any()
    with pytest.raises(ValueError, match="centered must be True, False or 'auto'"):
        BGNBD(segments="channel", centered="yes")
    big = pd.concat([seg_rfm] * 3, ignore_index=True)  # 600 web, 360 store, 240 tv
    big = pd.concat([big, seg_rfm[seg_rfm["channel"] == "web"]] * 2, ignore_index=True)
    spec = BGNBD(segments="channel")
    data = spec.prepare(big)
    sizes = dict(zip(data.segments, data.segment_counts(), strict=True))
    assert sizes["web"] >= CENTERED_MIN_CUSTOMERS > max(sizes["store"], sizes["tv"])
    names = {v.name for v in spec.build(data).free_RVs}
    assert {"r_mu", "r_sigma", "r_link_c", "r_z"} <= names  # mixed: mu itself is sampled
    assert not {"r_link_mean", "r_link_dev", "r_mu_z"} & names


@pytest.mark.parametrize(
    ("spec_class", "centered"),
    [(BGNBD, True), (BGNBD, np.array([True, True, False])), (GammaGamma, True)],
    ids=["bgnbd-centred", "bgnbd-mixed", "gamma-gamma-centred"],
)
def test_marginal_form_keeps_the_hierarchical_prior(spec_class, centered, seg_rfm, monkeypatch):
    """Oracle: the hierarchical prior drawn directly (``mu ~ N(m0, s0)``, ``sigma`` from
    its prior, ``link(theta_s) = mu + sigma * N(0, 1)``) in numpy. The model's marginal
    form (every segment centred: ``mu`` integrated out of their prior, then drawn given
    them) and the mixed form must have the same joint prior: two-sample KS tests on
    ``mu``, ``sigma``, each segment's link value and the differences the funnel lived
    in."""
    import pymc as pm
    from scipy import stats

    from clvbayes.models import hierarchy

    monkeypatch.setattr(
        hierarchy, "centered_mask", lambda _c, counts: np.resize(centered, len(counts))
    )
    spec = spec_class(segments="channel")
    data = spec.prepare(seg_rfm)
    built = spec.build(data, likelihood=False)
    marginal = any(v.name.endswith("_mu_z") for v in built.free_RVs)
    assert marginal == bool(np.all(centered))  # mixed forms sample mu itself
    n = 4000
    prior = pm.sample_prior_predictive(draws=n, model=built, random_seed=3)["prior"]
    links = spec.link_values({k: prior[k].to_numpy().reshape(n, -1) for k in spec.params})
    rng = np.random.default_rng(11)
    failures = []
    for name, values in links.items():
        mu_key = f"{name}_mu"
        sampled_mu = prior[mu_key].to_numpy().ravel()
        hyper = spec.priors.get(mu_key) or spec.priors[f"{name}_mu_relative"]
        m0, s0 = hierarchy.normal_hyperprior(hyper)
        shift = 0.0
        if f"{name}_mu_relative" in prior:  # mu = log(data scale) + mu_relative
            shift = float((prior[mu_key] - prior[f"{name}_mu_relative"]).mean())
        mu = shift + rng.normal(m0, s0, n)
        with pm.Model():
            sigma = pm.draw(spec.priors[f"{name}_sigma"].create_variable("s"), n, random_seed=7)
        direct = mu[:, None] + sigma[:, None] * rng.standard_normal((n, values.shape[1]))
        pairs = {
            "mu": (sampled_mu, mu),
            "sigma": (prior[f"{name}_sigma"].to_numpy().ravel(), sigma),
            **{f"theta{s}": (values[:, s], direct[:, s]) for s in range(values.shape[1])},
            "theta0-theta1": (values[:, 0] - values[:, 1], direct[:, 0] - direct[:, 1]),
            "theta0-mu": (values[:, 0] - sampled_mu, direct[:, 0] - mu),
        }
        # sqrt(K) (mean of the centred thetas - mu) / sigma is N(0, 1) under the prior
        mask = np.resize(centered, values.shape[1])
        k = mask.sum()
        pairs["pivot"] = tuple(
            np.sqrt(k) * (th[:, mask].mean(1) - m) / sg
            for th, m, sg in ((values, sampled_mu, pairs["sigma"][0]), (direct, mu, sigma))
        )
        for what, (a, b) in pairs.items():
            p = stats.ks_2samp(a, b).pvalue
            if p < 1e-4:
                failures.append((name, what, p))
    assert not failures, failures


_SCIPY_SCALE_PRIORS = {
    "Gamma": lambda p, st: st.gamma(p["alpha"], scale=1.0 / p["beta"]),
    "HalfNormal": lambda p, st: st.halfnorm(scale=p["sigma"]),
    "Exponential": lambda p, st: st.expon(scale=1.0 / p["lam"]),
    "LogNormal": lambda p, st: st.lognorm(p["sigma"], scale=np.exp(p["mu"])),
}


def _integrated_logp_oracle(theta, m0, s0, sigma_dist):
    """``log ∫ p(sigma) N(theta | m0 1, sigma^2 I + s0^2 11') dsigma`` (``mu ~ N(m0, s0)``
    integrated out in closed form, a multivariate normal) by scipy's adaptive quadrature
    on ``t = log(sigma)`` over ``[-40, 5]``, in pieces half a unit long (so that narrow
    peaks are not missed) and scaled by the integrand's largest value."""
    from itertools import pairwise

    from scipy import integrate

    d = np.asarray(theta, dtype=float) - m0
    k, dd, total = d.size, d @ d, d.sum()

    def log_integrand(t):
        # N(d | 0, s^2 I + s0^2 11') by Sherman-Morrison
        s2 = np.exp(2 * t)
        quad_form = (dd - s0**2 * total**2 / (s2 + k * s0**2)) / s2
        log_det = (k - 1) * np.log(s2) + np.log(s2 + k * s0**2)
        with np.errstate(divide="ignore"):
            log_prior = sigma_dist.logpdf(np.exp(t))
        return log_prior + t - 0.5 * (k * np.log(2 * np.pi) + log_det + quad_form)

    top = np.max(log_integrand(np.linspace(-40, 5, 90_001)))
    pieces = np.arange(-40.0, 5.5, 0.5)
    value = sum(
        integrate.quad(
            lambda t: np.exp(log_integrand(t) - top), a, b, epsabs=1e-15, epsrel=1e-12, limit=200
        )[0]
        for a, b in pairwise(pieces)
    )
    return top + np.log(value)


@pytest.mark.parametrize(
    "sigma_prior",
    [
        pytest.param(("Gamma", {"alpha": 4.0, "beta": 10.0}), id="Gamma"),
        pytest.param(("HalfNormal", {"sigma": 0.3}), id="HalfNormal"),
        pytest.param(("Exponential", {"lam": 5.0}), id="Exponential"),
        pytest.param(("LogNormal", {"mu": -1.0, "sigma": 0.7}), id="LogNormal"),
        # segments far apart for the prior: sigma's posterior lies above the prior's
        # 1 - 1e-12 quantile (the grid's former upper end)
        pytest.param(("HalfNormal", {"sigma": 0.05}), id="HalfNormal-tight"),
        # narrower than SCALE_STEP on the log scale
        pytest.param(("Gamma", {"alpha": 2500.0, "beta": 25000.0}), id="Gamma-tight"),
        pytest.param(("LogNormal", {"mu": -1.2, "sigma": 0.02}), id="LogNormal-tight"),
    ],
)
def test_integrated_hierarchical_prior_equals_numerical_integral(sigma_prior, seg_rfm):
    """Oracle: scipy's adaptive quadrature of ``p(sigma) N(theta | m0 1, sigma^2 I + s0^2
    11')`` over ``sigma`` (:func:`_integrated_logp_oracle`). The model's density of the
    centred link values, with ``mu`` and ``sigma`` integrated out on :func:`scale_grid`,
    must equal it to 1e-8, from nearly equal segments (``sigma`` near 0) to segments far
    apart, for priors of ordinary width, priors narrower than :data:`SCALE_STEP` and a
    tight prior the segments' spread conflicts with."""
    import pymc as pm
    from pymc_extras.prior import Prior
    from scipy import stats

    from clvbayes.models.hierarchy import scale_grid

    name, params = sigma_prior
    prior = Prior(name, **params)
    assert scale_grid(prior, 3) is not None
    spec = BGNBD(segments="channel", centered=True, priors={"r_sigma": prior})
    built = spec.build(spec.prepare(seg_rfm), likelihood=False)
    m0, s0 = spec.priors["r_mu"].parameters["mu"], spec.priors["r_mu"].parameters["sigma"]
    sigma_dist = _SCIPY_SCALE_PRIORS[name](params, stats)
    for theta in ([-0.7, -0.7001, -0.6999], [-0.9, -0.6, -0.5], [-3.0, 0.5, 2.0], [1.0, 1.2, 0.9]):
        theta = np.asarray(theta)
        model_logp = pm.logp(built["r_link_c"], theta).eval()
        assert np.isfinite(model_logp)
        expected = _integrated_logp_oracle(theta, m0, s0, sigma_dist)
        np.testing.assert_allclose(model_logp, expected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("k", [500, 1000])
def test_integrated_prior_with_many_segments_equals_numerical_integral(k):
    """With ``K`` centred segments the conditional of ``log sigma`` is ~``1 / sqrt(2 (K -
    1))`` wide; the grid's step follows it, so the model's density of ``K`` link values
    drawn from the hierarchical prior still equals scipy's quadrature to 1e-8 (with the
    fixed step 0.05 the error was 8e-4 at 500 segments and 0.04 at 1,000). Far more
    segments than the node cap allows: ``sigma`` is sampled."""
    import pymc as pm
    from pymc_extras.prior import Prior
    from scipy import stats

    from clvbayes.models.hierarchy import hierarchical_parameter

    mu_prior, sigma_prior = (
        Prior("Normal", mu=-0.7, sigma=1.5),
        Prior("Gamma", alpha=4.0, beta=10.0),
    )
    rng = np.random.default_rng(k)
    sigma_dist = stats.gamma(4.0, scale=0.1)
    with pm.Model(coords={"segment": np.arange(k)}) as model:
        hierarchical_parameter("r", "log", mu_prior, sigma_prior, np.ones(k, dtype=bool))
    logp = model.compile_fn(pm.logp(model["r_link_c"], model.rvs_to_values[model["r_link_c"]]))
    for sigma in (0.05, 0.4, 1.5):
        theta = rng.normal(-0.5, 1.0) + sigma * rng.standard_normal(k)
        model_logp = logp({"r_link_c": theta})
        expected = _integrated_logp_oracle(theta, -0.7, 1.5, sigma_dist)
        np.testing.assert_allclose(model_logp, expected, rtol=0, atol=1e-8)
    with pm.Model(coords={"segment": np.arange(5000)}) as many:
        hierarchical_parameter("r", "log", mu_prior, sigma_prior, np.ones(5000, dtype=bool))
    assert "r_sigma" in {v.name for v in many.free_RVs}


def test_scale_grid_stays_finite_fine_enough_and_bounded():
    """Every grid :func:`scale_grid` returns, over priors from very vague to very tight
    and 1 to 5,000 segments: finite nodes within ``|log sigma| <= SCALE_LOG_BOUND`` (the
    log density overflows to NaN beyond ~355), at most ``SCALE_MAX_NODES`` of them, a
    step no wider than ``SCALE_STEP``, ``0.5 / sqrt(2 (K - 1))`` and half the prior's
    log-scale width, and weights that integrate the prior (sum 1; priors narrower than
    the fixed step summed to 0.27-1.04). Vague priors whose quantiles underflow to 0
    (``Gamma(0.01, 0.01)`` crashed with an OverflowError) or whose grid would pass the
    bound or the cap give None: ``sigma`` is sampled."""
    from pymc_extras.prior import Prior
    from scipy import stats

    from clvbayes.models.hierarchy import SCALE_LOG_BOUND, SCALE_MAX_NODES, SCALE_STEP, scale_grid

    for name, params in [
        ("Gamma", {"alpha": 0.01, "beta": 0.01}),
        ("Gamma", {"alpha": 0.001, "beta": 0.001}),
        ("Gamma", {"alpha": 0.05, "beta": 0.05}),
        ("LogNormal", {"mu": 0.0, "sigma": 60.0}),
        ("LogNormal", {"mu": 0.0, "sigma": 100.0}),
        ("HalfNormal", {"sigma": 1e-140}),
    ]:
        assert scale_grid(Prior(name, **params), 3) is None, (name, params)
    cases = [
        *(("Gamma", {"alpha": a, "beta": a * 10}) for a in (0.3, 0.5, 4.0, 400.0, 2500.0, 1e4)),
        ("Gamma", {"alpha": 2.0, "beta": 1e-6}),
        *(("HalfNormal", {"sigma": s}) for s in (1e-6, 0.05, 1e6)),
        *(("Exponential", {"lam": lam}) for lam in (1e-8, 5.0, 1e8)),
        *(("LogNormal", {"mu": -1.0, "sigma": s}) for s in (0.005, 0.02, 0.7, 5.0, 10.0)),
    ]
    integrated = 0
    for name, params in cases:
        dist = _SCIPY_SCALE_PRIORS[name](params, stats)
        q16, q84 = np.log(dist.ppf([0.15865525393145707, 0.8413447460685429]))
        for k in (1, 3, 50, 500, 5000):
            grid = scale_grid(Prior(name, **params), k)
            if grid is None:
                continue
            integrated += 1
            log_sigma, log_weight = grid
            step = np.diff(log_sigma)
            assert np.isfinite(log_sigma).all() and np.isfinite(log_weight).all()
            assert np.abs(log_sigma).max() <= SCALE_LOG_BOUND
            assert log_sigma.size <= SCALE_MAX_NODES
            np.testing.assert_allclose(step, step[0], rtol=1e-6)
            bound = min(SCALE_STEP, (q84 - q16) / 4, 0.5 / np.sqrt(2 * max(k - 1, 1)))
            assert step[0] <= bound * (1 + 1e-9), (name, params, k)
            np.testing.assert_allclose(np.exp(log_weight).sum(), 1.0, atol=1e-9)
    assert integrated > 3 * len(cases)  # most of them are integrated


def test_vague_sigma_prior_samples_sigma_with_finite_gradient(seg_rfm):
    """A vague ``Gamma(0.05, 0.05)`` prior put the grid down to ``log sigma = -463``,
    where ``exp(-2 log sigma)`` overflows: the model's log density and gradient were NaN
    at ordinary link values. Now ``sigma`` is sampled, and both are finite."""
    from pymc_extras.prior import Prior

    spec = BGNBD(
        segments="channel", centered=True, priors={"r_sigma": Prior("Gamma", alpha=0.05, beta=0.05)}
    )
    model = spec.build(spec.prepare(seg_rfm), likelihood=False)
    assert "r_sigma" in {v.name for v in model.free_RVs}
    point = model.initial_point()
    assert np.isfinite(model.compile_logp()(point))
    assert np.isfinite(model.compile_dlogp()(point)).all()


def test_tight_sigma_prior_keeps_its_prior_draws(seg_rfm):
    """Oracle: scipy's ``Gamma(2500, 25000)`` (a prior 0.02 wide on the log scale,
    narrower than ``SCALE_STEP``). Prior draws of the integrated form's ``r_sigma`` (the
    inverse CDF on the grid) must follow it: one-sample KS test."""
    import pymc as pm
    from pymc_extras.prior import Prior
    from scipy import stats

    prior = Prior("Gamma", alpha=2500.0, beta=25000.0)
    spec = BGNBD(segments="channel", centered=True, priors={"r_sigma": prior})
    model = spec.build(spec.prepare(seg_rfm), likelihood=False)
    assert "r_sigma_z" in {v.name for v in model.free_RVs}  # integrated
    draws = pm.sample_prior_predictive(
        draws=4000, model=model, random_seed=1, var_names=["r_sigma"]
    )
    sigma = draws["prior"]["r_sigma"].to_numpy().ravel()
    assert stats.kstest(sigma, stats.gamma(2500.0, scale=1 / 25000.0).cdf).pvalue > 1e-3


def test_transformed_hyperpriors_are_honoured_not_integrated(seg_rfm):
    """Oracle: the transformed priors' own distributions (scipy). A ``transform`` on the
    ``sigma`` prior (``1 / Gamma(3, 1)``: an inverse gamma) or on the ``mu`` prior
    (``-N(0.7, 0.1)``) was ignored by the integrated form; those hyperpriors (and any with
    dims) are now sampled, and prior draws follow the transformed distributions."""
    import pymc as pm
    from pymc_extras.prior import Prior
    from scipy import stats

    from clvbayes.models.hierarchy import normal_hyperprior, scale_grid

    reciprocal = Prior("Gamma", alpha=3.0, beta=1.0, transform="reciprocal")
    negative = Prior("Normal", mu=0.7, sigma=0.1, transform="neg")
    assert scale_grid(reciprocal, 3) is None and normal_hyperprior(negative) is None
    assert scale_grid(Prior("Gamma", alpha=4.0, beta=10.0, dims="segment"), 3) is None
    assert normal_hyperprior(Prior("Normal", mu=0.0, sigma=1.0, dims="segment")) is None
    for key, prior, oracle in [
        ("r_sigma", reciprocal, stats.invgamma(3.0, scale=1.0)),
        ("r_mu", negative, stats.norm(-0.7, 0.1)),
    ]:
        spec = BGNBD(segments="channel", centered=True, priors={key: prior})
        model = spec.build(spec.prepare(seg_rfm), likelihood=False)
        draws = pm.sample_prior_predictive(draws=2000, model=model, random_seed=2, var_names=[key])
        values = draws["prior"][key].to_numpy().ravel()
        assert stats.kstest(values, oracle.cdf).pvalue > 1e-3, key


@pytest.mark.parametrize(
    ("spec_class", "centered"),
    [(BGNBD, True), (GammaGamma, True), (GammaGamma, np.array([True, False, True, False, True]))],
    ids=["bgnbd-centred", "gamma-gamma-centred", "gamma-gamma-mixed"],
)
def test_model_on_data_inputs_keeps_the_models_random_variables(
    spec_class, centered, seg_rfm, monkeypatch
):
    """Models built on data inputs hoist their data-only parts
    (:meth:`SharedRFM.hoist`). The Gamma-Gamma's ``mean_spend`` prior is centred on the
    data's log mean spend, a data-only ancestor of its hierarchical prior's random
    variables (the integrated prior's ``pm.CustomDist`` in the marginal form, the
    centred segments' Normal in the mixed form): hoisting must not clone a random
    variable out of the model. The clones broke compilation (random generators nutpie
    cannot take; "no gradient defined for random variables" for any Gamma-Gamma with
    small and large segments). Every random variable the likelihood reads is one of the
    model's."""
    from pymc.distributions.distribution import SymbolicRandomVariable
    from pytensor.graph.traversal import ancestors
    from pytensor.tensor.random.op import RandomVariable

    from clvbayes.models import hierarchy
    from clvbayes.models.shared_data import SharedRFM

    monkeypatch.setattr(
        hierarchy, "centered_mask", lambda _c, counts: np.resize(centered, len(counts))
    )
    five = seg_rfm[seg_rfm["frequency"] > 0].copy()  # five segments: three did not show it
    five["channel"] = np.resize(list("abcde"), len(five))
    spec = spec_class(segments="channel")
    model = spec.build(SharedRFM(spec.prepare(five)))
    marginal = any(v.name.endswith("_sigma_z") for v in model.free_RVs)
    assert marginal == bool(np.all(centered))
    random = (RandomVariable, SymbolicRandomVariable)
    read = {
        v
        for v in ancestors(model.potentials)
        if v.owner is not None and isinstance(v.owner.op, random)
    }
    assert read and read <= set(model.free_RVs)


def test_sampler_defaults_follow_the_form_of_the_hierarchical_prior():
    """The marginal form's measured settings (``MARGINAL_SAMPLER``) only where it is
    used and was measured; the cautious settings everywhere else."""
    from pymc_extras.prior import Prior

    from clvbayes.models import MBGNBD
    from clvbayes.models.hierarchy import (
        MARGINAL_SAMPLER,
        MEAN_MARGINAL_SAMPLER,
        PARTIAL_TARGET_ACCEPT,
        PARTIAL_TUNE,
        partial_sampler_defaults,
    )

    big, mixed = np.array([5000, 8000, 9000]), np.array([50, 8000, 9000])
    cautious = (PARTIAL_TARGET_ACCEPT, PARTIAL_TUNE)
    assert partial_sampler_defaults(BGNBD(segments="s"), big) == MARGINAL_SAMPLER["BGNBD"]
    halfcauchy = BGNBD(segments="s", priors={"r_sigma": Prior("HalfCauchy", beta=0.5)})
    assert partial_sampler_defaults(halfcauchy, big) == MEAN_MARGINAL_SAMPLER["BGNBD"]
    # the short warm-up was measured on segments alone
    with_te = BGNBD(segments="s", time_effects=True)
    assert partial_sampler_defaults(with_te, big) == MEAN_MARGINAL_SAMPLER["BGNBD"]
    with_covariates = BGNBD(segments="s", purchase_covariates=["x"])
    assert partial_sampler_defaults(with_covariates, big) == MEAN_MARGINAL_SAMPLER["BGNBD"]
    assert partial_sampler_defaults(GammaGamma(segments="s"), big) == MARGINAL_SAMPLER["GammaGamma"]
    assert partial_sampler_defaults(BGNBD(segments="s"), mixed) == cautious
    assert partial_sampler_defaults(BGNBD(segments="s", centered=False), big) == cautious
    assert partial_sampler_defaults(MBGNBD(segments="s"), big) == cautious  # not measured
    student = BGNBD(segments="s", priors={"r_mu": Prior("StudentT", nu=3, mu=-0.7, sigma=1.5)})
    assert partial_sampler_defaults(student, big) == cautious


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("spec_class", [BGNBD, GammaGamma], ids=lambda c: c.kind)
def test_link_values_are_the_hierarchical_priors_link_scale_and_invert(spec_class, seg_rfm):
    """Oracle: the model graph itself. Under partial pooling each pooled quantity is
    ``mu + sigma * z`` on its link scale (non-centred segments); ``link_values`` of the
    model parameters drawn from that prior must give exactly that, and invert."""
    import pymc as pm

    spec = spec_class(segments="channel", centered=False)
    built = spec.build(spec.prepare(seg_rfm), likelihood=False)
    prior = pm.sample_prior_predictive(draws=50, model=built, random_seed=1)["prior"]
    params = {k: prior[k].to_numpy() for k in spec.params}
    links = spec.link_values(params)
    assert set(links) == set(spec.segment_links)
    for name, values in links.items():
        mu, sigma = (prior[f"{name}_{h}"].to_numpy()[..., None] for h in ("mu", "sigma"))
        np.testing.assert_allclose(values, mu + sigma * prior[f"{name}_z"].to_numpy(), rtol=1e-9)
    back = spec.from_link_values(links)
    for k in spec.params:
        np.testing.assert_allclose(back[k], params[k], rtol=1e-10)


def test_bad_segment_input_gives_clear_errors(seg_rfm):
    with pytest.raises(ValueError, match="segment column 'region' is not in the RFM table"):
        BGNBD(segments="region").prepare(seg_rfm)
    nan = seg_rfm.assign(channel=seg_rfm["channel"].where(seg_rfm.index % 50 != 0))
    with pytest.raises(ValueError, match="8 of 400 customers have no segment"):
        BGNBD(segments="channel").prepare(nan)
    cat = seg_rfm.assign(
        channel=pd.Categorical(seg_rfm["channel"], categories=["tv", "web", "store", "radio"])
    )
    with pytest.raises(ValueError, match=r"categories \['radio'\] have no customers"):
        BGNBD(segments="channel").prepare(cat)
    ids = seg_rfm.assign(channel=seg_rfm["customer_id"] % 100)
    with pytest.raises(ValueError, match="100 segments for 400 customers is too many"):
        BGNBD(segments="channel").prepare(ids)
    with pytest.raises(ValueError, match="pooling='some'"):
        BGNBD(segments="channel", pooling="some")
    with pytest.raises(ValueError, match="ParetoNBD does not support segments"):
        ParetoNBD(segments="channel")
    with pytest.raises(ValueError, match="unknown prior name"):
        BGNBD({"r": {"dist": "Gamma", "kwargs": {"alpha": 2, "beta": 1}}}, segments="channel")


def test_small_segments_are_warned_with_their_sizes(seg_rfm):
    rfm = seg_rfm.assign(channel=np.where(seg_rfm.index < 12, "tiny", seg_rfm["channel"]))
    with pytest.warns(SegmentWarning, match=r"\{'tiny': 12\}"):
        BGNBD(segments="channel", pooling="none").prepare(rfm)


def test_categorical_levels_keep_category_order(seg_rfm):
    cat = seg_rfm.assign(
        channel=pd.Categorical(seg_rfm["channel"], categories=["web", "tv", "store"])
    )
    assert BGNBD(segments="channel").prepare(cat).segments == ("web", "tv", "store")


# --- fitted models --------------------------------------------------------------------


@pytest.mark.slow
def test_posterior_dims_params_and_levels(bg_partial, gg_none):
    for fit, names in ((bg_partial, ("r", "alpha", "a", "b")), (gg_none, ("p", "q", "v"))):
        assert fit.segment_column == "channel"
        assert fit.segment_levels == ("store", "tv", "web")
        for name in names:
            assert fit.posterior[name].dims == ("chain", "draw", "segment")
            assert fit.params()[name].shape == (2, 100, 3)
    assert "r_sigma" in bg_partial.posterior
    assert "r[web]" in bg_partial.summary().index
    assert bg_partial.diagnostics().divergences == 0


@pytest.mark.slow
@pytest.mark.parametrize("method", ["map", "advi"])
def test_map_and_advi_fit_segmented_models(seg_rfm, bg_partial, method):
    """Fast approximations keep the segment dimension and land near the NUTS posterior."""
    fit = BGNBD(segments="channel").fit(
        seg_rfm, method=method, seed=3, draws=50, chains=2, advi_steps=3000, progressbar=False
    )
    assert fit.segment_levels == ("store", "tv", "web")
    n_samples = (1, 1) if method == "map" else (2, 50)
    for name in ("r", "alpha", "a", "b"):
        assert fit.params()[name].shape == (*n_samples, 3)
        assert np.all(np.isfinite(fit.params()[name]))
    assert fit.posterior["r_sigma"].dims == ("chain", "draw")
    # the purchase side is well determined: near NUTS (mean-field ADVI is looser on the
    # 80-customer segment, whose r it pulls toward the others less than NUTS does)
    nuts = bg_partial.posterior["r"].median(("chain", "draw")).to_numpy()
    approx = fit.posterior["r"].median(("chain", "draw")).to_numpy()
    np.testing.assert_allclose(approx, nuts, rtol=0.3 if method == "map" else 0.5)
    assert expected_purchases(fit, seg_rfm, horizon=10.0).shape[-1] == len(seg_rfm)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_save_load_round_trip_of_segmented_fits(bg_partial, gg_none, tmp_path, suffix):
    path = tmp_path / f"seg{suffix}"
    clvbayes.save({"bg": bg_partial, "gg": gg_none}, path)
    loaded = clvbayes.load(path)
    for name, fit in (("bg", bg_partial), ("gg", gg_none)):
        back = loaded[name]
        assert back.spec.options() == fit.spec.options()
        assert back.segment_levels == fit.segment_levels
        xr.testing.assert_equal(back.posterior, fit.posterior)
        np.testing.assert_array_equal(back.log_likelihood(), fit.log_likelihood())
        assert back.data.segments == fit.data.segments


@pytest.mark.slow
def test_pointwise_loglik_per_customer_and_loo(bg_partial, seg_rfm):
    rows = bg_partial.log_likelihood()
    customers = bg_partial.log_likelihood(per_customer=True)
    assert customers.sizes["customer"] == len(seg_rfm)
    np.testing.assert_allclose(
        customers.sum("customer"), (rows * bg_partial.data.counts).sum("row"), rtol=1e-12
    )
    assert BGNBD(segments="channel", pooling="none").prepare(seg_rfm).n_rows == rows.sizes["row"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto k with 200 draws
        table = compare({"partial": bg_partial}).table
    assert np.isfinite(table["elpd_loo"]).all()


@pytest.mark.slow
def test_customer_outputs_use_their_segment_parameters(bg_partial, gg_none, seg_rfm):
    codes, _ = _codes(seg_rfm)
    par = bg_partial.params()
    data = [seg_rfm[c].to_numpy(float) for c in ("frequency", "recency", "T")]
    theta = [par[k][..., codes] for k in ("r", "alpha", "a", "b")]
    np.testing.assert_allclose(
        p_alive(bg_partial, seg_rfm).to_numpy(), bgnbd.p_alive(*theta, *data), rtol=1e-12
    )
    np.testing.assert_allclose(
        expected_purchases(bg_partial, seg_rfm, 10.0).to_numpy(),
        bgnbd.expected_purchases(*theta, *data, 10.0),
        rtol=1e-10,
    )
    res = predict_customers(bg_partial, seg_rfm, horizon=10.0, spend_fit=gg_none, seed=1)
    expected = bgnbd.expected_purchases(*theta, *data, 10.0).mean(axis=(0, 1))
    np.testing.assert_allclose(res.summary["expected_purchases"], expected, rtol=1e-5)
    # spend: the conditional expected spend of each customer uses its segment's p, q, v
    gp = {k: v.reshape(-1, 3) for k, v in gg_none.params().items()}
    assert np.isfinite(res.summary["clv_mean"]).all()
    assert res.draws["clv"].dims == ("chain", "draw", "customer_id")
    assert gp["p"].shape == (200, 3)
    unknown = seg_rfm.assign(channel=np.where(seg_rfm.index == 3, "radio", seg_rfm["channel"]))
    with pytest.raises(ValueError, match=r"in segment\(s\) \['radio'\] that the model was not"):
        predict_customers(bg_partial, unknown, horizon=10.0)
    with pytest.raises(ValueError, match="segment column 'channel' is not in the RFM"):
        p_alive(bg_partial, seg_rfm.drop(columns="channel"))


# --- segment-level answers ------------------------------------------------------------


class _OneSegment:
    """One segment of a segmented fit, as an unsegmented model (the oracle's view)."""

    segment_column = None
    customer_params = FittedModel.customer_params

    def __init__(self, fit, code):
        self.kind, self._params = fit.kind, {k: v[..., code] for k, v in fit.params().items()}

    def params(self):
        return self._params

    def segment_codes(self, rfm):
        return None


@pytest.mark.slow
def test_report_curves_use_each_segments_parameters(bg_partial, gg_none, seg_rfm):
    """Tracking, retention and order value of a segmented fit = the one-population
    computation on each segment's customers with that segment's draws, added up."""
    seg = seg_rfm["channel"].to_numpy()
    levels = bg_partial.segment_levels
    times = [-10.0, 0.0, 20.0]
    whole = tracking_curve(bg_partial, seg_rfm, times=times, n_draws=None)
    parts = sum(
        tracking_curve(_OneSegment(bg_partial, k), seg_rfm[seg == lv], times=times, n_draws=None)[
            "predicted_mean"
        ].to_numpy()
        for k, lv in enumerate(levels)
    )
    np.testing.assert_allclose(whole["predicted_mean"], parts, rtol=1e-12)

    alive = retention_curve(bg_partial, seg_rfm, times=[0.0], segments=seg, n_draws=None)
    alive = alive.summary.set_index("segment")["share_alive_mean"]
    for k, lv in enumerate(levels):
        p = bg_partial.params()
        own = seg_rfm[seg == lv]
        expected = bgnbd.p_alive(
            *(p[n][..., k].reshape(-1, 1) for n in ("r", "alpha", "a", "b")),
            own["frequency"].to_numpy(),
            own["recency"].to_numpy(),
            own["T"].to_numpy(),
        ).mean()
        assert alive[lv] == pytest.approx(expected, rel=1e-12)

    assert (gg_none.params()["q"] > 1).all()  # every draw has a finite mean spend
    per_customer = average_order_value(gg_none, seg_rfm, n_draws=None).summary
    for k, lv in enumerate(gg_none.segment_levels):
        own = average_order_value(_OneSegment(gg_none, k), seg_rfm[seg == lv], n_draws=None).summary
        np.testing.assert_allclose(
            per_customer["aov_mean"].to_numpy()[seg == lv], own["aov_mean"], rtol=1e-12
        )


@pytest.mark.slow
def test_new_customer_value_is_the_segment_maths(bg_partial, gg_none):
    ds = new_customer_value(bg_partial, gg_none, horizon=52.0, margin=0.3)
    par, gpar = bg_partial.params(), gg_none.params()
    expected = bgnbd.expected_purchases_new(*(par[k] for k in ("r", "alpha", "a", "b")), 52.0)
    np.testing.assert_allclose(ds["expected_purchases"].to_numpy(), expected, rtol=1e-12)
    spend = gamma_gamma.expected_spend_new(gpar["p"], gpar["q"], gpar["v"])
    ok = gpar["q"] > 1
    np.testing.assert_allclose(ds["mean_spend"].to_numpy()[ok], spend[ok], rtol=1e-12)
    np.testing.assert_allclose(ds["clv"].to_numpy()[ok], 0.3 * expected[ok] * spend[ok], rtol=1e-12)
    assert ds["clv"].dims == ("chain", "draw", "segment")
    table = segment_table(ds)
    assert set(table["quantity"]) == {"expected_purchases", "mean_spend", "clv"}
    assert len(table) == 9
    params = segment_parameters(bg_partial)
    assert len(params) == 12 and {"segment", "parameter", "mean", "low", "high"} <= set(params)


@pytest.mark.slow
def test_existing_customer_value_averages_each_segments_customers(bg_partial, seg_rfm):
    res = predict_customers(bg_partial, seg_rfm, horizon=10.0, seed=2)
    ds = existing_customer_value(res, bg_partial, seg_rfm)
    codes, _ = _codes(seg_rfm)
    pa = res.draws["p_alive"].to_numpy()
    for j in range(3):
        np.testing.assert_allclose(
            ds["alive_share"].isel(segment=j), pa[..., codes == j].mean(-1), rtol=1e-5
        )
    assert ds["n_customers"].to_numpy().tolist() == np.bincount(codes).tolist()


def test_contrasts_and_clv_cac_match_numpy_on_known_draws():
    rng = np.random.default_rng(1)
    values = rng.gamma(5.0, 1.0, size=(2, 500, 3)) + np.array([0.0, 1.0, 10.0])
    da = xr.DataArray(
        values, dims=("chain", "draw", "segment"), coords={"segment": ["a", "b", "c"]}
    )
    da.name = "clv"
    table = contrasts(da, [("c", "a")])
    diff = (values[..., 2] - values[..., 0]).ravel()
    row = table.iloc[0]
    assert row["diff_mean"] == pytest.approx(diff.mean())
    assert row["diff_low"] == pytest.approx(np.quantile(diff, 0.05))
    assert row["p_a_gt_b"] == pytest.approx((diff > 0).mean())
    assert row["ratio_median"] == pytest.approx(
        np.median((values[..., 2] / values[..., 0]).ravel())
    )
    assert len(contrasts(da)) == 3
    with pytest.raises(ValueError, match="unknown segment"):
        contrasts(da, [("a", "z")])
    res = clv_cac(da, {"a": 5.0, "b": 2.0, "c": 5.0})
    ratio_b = values[..., 1].ravel() / 2.0
    b = res.summary.set_index("segment").loc["b"]
    assert b["p_ratio_gt_1"] == pytest.approx((ratio_b > 1).mean())
    assert b["p_ratio_gt_3"] == pytest.approx((ratio_b > 3).mean())
    assert b["ratio_mean"] == pytest.approx(ratio_b.mean())
    with pytest.raises(ValueError, match=r"no acquisition cost for segment\(s\) \['c'\]"):
        clv_cac(da, {"a": 1.0, "b": 1.0})
    with pytest.raises(ValueError, match="must be positive"):
        clv_cac(da, {"a": 1.0, "b": 0.0, "c": 1.0})


@pytest.mark.slow
def test_existing_value_needs_matching_result(bg_partial, seg_rfm):
    empty = Result(pd.DataFrame(), xr.Dataset())
    with pytest.raises(ValueError, match="customers"):
        existing_customer_value(empty, bg_partial, seg_rfm)


def test_acquisition_segments_from_a_transaction_log():
    tx = pd.DataFrame(
        {
            "id": [1, 1, 2, 3, 3, 4, 5, 6],
            "date": pd.to_datetime(
                [
                    "2020-01-05",
                    "2020-03-01",
                    "2020-02-10",
                    "2020-01-20",
                    "2020-01-20",
                    "2020-03-03",
                    "2020-02-01",
                    "2020-01-01",
                ]
            ),
            "value": [10.0, 99.0, 30.0, 5.0, 6.0, 50.0, 1.0, 20.0],
        }
    )
    before = tx.copy()
    seg = acquisition_segments(tx, customer_col="id", date_col="date", value_col="value")
    pd.testing.assert_frame_equal(tx, before)
    assert seg["id"].tolist() == [1, 2, 3, 4, 5, 6]
    assert seg["cohort"].tolist() == [
        "2020-01",
        "2020-02",
        "2020-01",
        "2020-03",
        "2020-02",
        "2020-01",
    ]
    assert seg["first_value"].tolist() == [10.0, 30.0, 11.0, 50.0, 1.0, 20.0]
    assert seg["value_group"].astype(str).tolist() == ["low", "high", "mid", "high", "low", "mid"]
