"""Customer covariates: one mechanism for every family (``clvbayes.math.covariates``).

Oracles: the plain model (zero coefficients), each customer's likelihood with parameters
scaled by hand (``alpha_i = alpha exp(-γ'z_i)``, ...), pymc-marketing 1.3's
``BetaGeoModel`` and ``ParetoNBDModel`` with the same covariates, and the PyTensor graph
against numpy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pymc_extras.prior import Prior

from clvbayes.data.compress import compress
from clvbayes.math import bgnbd, gamma_gamma, mbgnbd, pareto_nbd
from clvbayes.models import BGNBD, MBGNBD, GammaGamma, ParetoNBD
from clvbayes.priors import FLAT_PRIORS
from clvbayes.simulate import simulate_covariates

TRUTH = {
    "BGNBD": {"r": 0.6, "alpha": 6.0, "a": 0.9, "b": 2.6},
    "MBGNBD": {"r": 0.6, "alpha": 6.0, "a": 0.9, "b": 2.6},
    "ParetoNBD": {"r": 0.6, "alpha": 6.0, "s": 0.7, "beta": 9.0},
    "GammaGamma": {"p": 6.0, "q": 3.8, "v": 15.0},
}
SPECS = {"BGNBD": BGNBD, "MBGNBD": MBGNBD, "ParetoNBD": ParetoNBD, "GammaGamma": GammaGamma}
MATHS = {"BGNBD": bgnbd, "MBGNBD": mbgnbd, "ParetoNBD": pareto_nbd, "GammaGamma": gamma_gamma}
COLUMNS = ["gender", "age"]


def customers(n: int = 500, seed: int = 0) -> pd.DataFrame:
    """BG/NBD customers with a binary and a continuous covariate, and their spend."""
    rng = np.random.default_rng(seed)
    covariates = {"gender": rng.integers(0, 2, n).astype(float), "age": rng.normal(40, 10, n)}
    T = np.round(rng.uniform(20, 40, n) * 7) / 7
    sim = simulate_covariates(
        "BGNBD",
        TRUTH["BGNBD"],
        {"purchase_coefficient": {"gender": 0.4, "age": -0.02}},
        covariates,
        T,
        rng=rng,
    )
    spend = simulate_covariates(
        "GammaGamma",
        TRUTH["GammaGamma"],
        {"spend_coefficient": {"gender": 0.3}},
        covariates,
        sim["frequency"],
        rng=rng,
    )
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "frequency": sim["frequency"],
            "recency": np.floor(sim["recency"] * 7) / 7,
            "T": T,
            "monetary_value": spend["monetary_value"],
            **covariates,
        }
    )


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    return customers()


def _spec(kind: str, **kwargs):
    if kind == "GammaGamma":
        return GammaGamma(spend_covariates=COLUMNS, **kwargs)
    return SPECS[kind](purchase_covariates=COLUMNS, dropout_covariates=["gender"], **kwargs)


def _coefficients(spec, draws: int | None = None, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for effect in spec.design.effects:
        k = len(spec.design.roles[effect.role])
        shape = (k,) if draws is None else (draws, k)
        scale = np.where(np.array(spec.design.roles[effect.role]) == "age", 0.02, 0.5)
        out[effect.coefficient] = rng.normal(0, 1, shape) * scale
    return out


# --- the likelihood -------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(SPECS))
def test_zero_coefficients_give_the_plain_models_likelihood(kind, rfm):
    spec, plain = _spec(kind), SPECS[kind]()
    zeros = {k: np.zeros_like(v) for k, v in _coefficients(spec).items()}
    ours = spec.weighted_loglik({**TRUTH[kind], **zeros}, spec.prepare(rfm))
    assert float(ours) == pytest.approx(
        float(plain.weighted_loglik(TRUTH[kind], plain.prepare(rfm))), rel=1e-12
    )


def _by_hand(kind: str, coefficients: dict[str, np.ndarray], rfm: pd.DataFrame) -> dict:
    """Each customer's parameters from the conventions written out (CLVTools /
    pymc-marketing), without clvbayes.math.covariates."""
    z = rfm[COLUMNS].to_numpy()
    g = rfm[["gender"]].to_numpy()
    p = {k: np.full(len(rfm), v) for k, v in TRUTH[kind].items()}
    if kind == "GammaGamma":
        p["v"] = p["v"] * np.exp(z @ coefficients["spend_coefficient"])
        return p
    p["alpha"] = p["alpha"] * np.exp(-(z @ coefficients["purchase_coefficient"]))
    if kind == "ParetoNBD":
        p["beta"] = p["beta"] * np.exp(-(g @ coefficients["dropout_coefficient"]))
    else:
        p["a"] = p["a"] * np.exp(g @ coefficients["dropout_coefficient_a"])
        p["b"] = p["b"] * np.exp(g @ coefficients["dropout_coefficient_b"])
    return p


@pytest.mark.parametrize("kind", list(SPECS))
def test_unique_row_total_equals_each_customers_likelihood_with_scaled_parameters(kind, rfm):
    spec = _spec(kind)
    coefficients = _coefficients(spec)
    data = spec.prepare(rfm)
    ours = float(spec.weighted_loglik({**TRUTH[kind], **coefficients}, data))
    maths = MATHS[kind]
    per_customer = _by_hand(kind, coefficients, rfm)
    params = [per_customer[k] for k in spec.params]
    if kind == "GammaGamma":
        used = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)].index.to_numpy()
        want = maths.loglik(*(v[used] for v in params), *(rfm.loc[used, c] for c in spec.columns))
    else:
        want = maths.loglik(*params, *(rfm[c].to_numpy() for c in spec.columns))
    assert ours == pytest.approx(float(np.sum(want)), rel=1e-10)


@pytest.mark.parametrize("kind", list(SPECS))
def test_pytensor_likelihood_equals_numpy_with_covariates(kind, rfm):
    import pytensor
    import pytensor.tensor as pt

    spec = _spec(kind)
    data = spec.prepare(rfm)
    coefficients = _coefficients(spec)
    symbols = {k: pt.dscalar(k) for k in TRUTH[kind]}
    symbols.update({k: pt.dvector(k) for k in coefficients})
    fn = pytensor.function(list(symbols.values()), spec.weighted_loglik(symbols, data))
    values = {**TRUTH[kind], **coefficients}
    got = fn(*(values[k] for k in symbols))
    assert got == pytest.approx(float(spec.weighted_loglik(values, data)), rel=1e-10)


def _categorical_spec(kind: str):
    if kind == "GammaGamma":
        return GammaGamma(spend_covariates=["gender", "club"])
    return SPECS[kind](purchase_covariates=["gender", "club"], dropout_covariates=["club"])


@pytest.mark.parametrize("kind", list(SPECS))
def test_few_covariate_profiles_are_evaluated_per_profile_with_the_same_likelihood(
    kind, rfm, monkeypatch
):
    """Two binary covariates make 4 profiles: the likelihood is the plain one per profile
    block (factored columns, one parameter set each). Oracle: the per-row path, forced
    by allowing no profile blocks, in numpy (draws, pointwise) and in PyTensor."""
    import pytensor
    import pytensor.tensor as pt

    import clvbayes.data.compress as compress_module

    club = (np.random.default_rng(7).random(len(rfm)) < 0.4).astype(float)
    table = rfm.assign(club=club)
    spec = _categorical_spec(kind)
    assert spec.prepare(table).profile_blocks() is None  # by default: 4 profiles, 500 rows
    monkeypatch.setattr(compress_module, "MIN_PROFILE_ROWS", 0)
    monkeypatch.setattr(compress_module, "MAX_PROFILE_BLOCKS", 4)
    data = spec.prepare(table)
    blocks = data.profile_blocks()
    assert blocks is not None and len(blocks) == 4
    assert [part.start for _, part, _ in blocks] == sorted(part.start for _, part, _ in blocks)
    monkeypatch.setattr(compress_module, "MAX_PROFILE_BLOCKS", 3)
    per_row = spec.prepare(table)
    assert per_row.profile_blocks() is None
    coefficients = _coefficients(spec)
    values = {**TRUTH[kind], **coefficients}
    want = float(spec.weighted_loglik(values, per_row))
    assert float(spec.weighted_loglik(values, data)) == pytest.approx(want, rel=1e-12)
    draws = {k: np.asarray(v, dtype=float)[None, None] for k, v in TRUTH[kind].items()}
    draws = {
        k: np.broadcast_to(v, (3, 1)) * np.array([[1.0], [0.9], [1.2]]) for k, v in draws.items()
    }
    draws.update(_coefficients(spec, draws=3))
    np.testing.assert_allclose(
        spec.row_loglik(draws, data), spec.row_loglik(draws, per_row), rtol=1e-12
    )
    symbols = {k: pt.dscalar(k) for k in TRUTH[kind]}
    symbols.update({k: pt.dvector(k) for k in coefficients})
    fn = pytensor.function(list(symbols.values()), spec.weighted_loglik(symbols, data))
    assert fn(*(values[k] for k in symbols)) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("kind", list(SPECS))
def test_parameters_per_profile_on_crossed_columns_equal_per_row_parameters(kind, rfm):
    """Few profiles on few rows (no profile blocks): the parameters are computed once per
    covariate profile and the columns crossed with the profiles, so the per-level terms
    are computed per (profile, value). Oracle: the family's own log-likelihood with each
    row's parameters computed here, in numpy; the model's graph in PyTensor (constant
    data)."""
    import pytensor
    import pytensor.tensor as pt

    club = (np.random.default_rng(7).random(len(rfm)) < 0.4).astype(float)
    spec = _categorical_spec(kind)
    data = spec.prepare(rfm.assign(club=club))
    assert data.profile_blocks() is None
    profiles, index = data.profiles()
    assert len(profiles["covariate_club"]) == 4 and index.shape == (data.n_rows,)
    crossed = data.crossed("frequency")
    assert len(crossed.levels) < data.n_rows
    np.testing.assert_array_equal(crossed.values, data["frequency"])
    np.testing.assert_array_equal(crossed.profiles[crossed.index], index)

    coefficients = _coefficients(spec)
    values = {**TRUTH[kind], **coefficients}
    per_row = dict(TRUTH[kind])
    z = {c: data[f"covariate_{c}"] for c in ("gender", "club")}
    for effect in spec.design.effects:
        eta = sum(g * z[c] for g, c in zip(coefficients[effect.coefficient],
                                           spec.design.roles[effect.role], strict=True))  # fmt: skip
        per_row[effect.parameter] = per_row[effect.parameter] * np.exp(effect.sign * eta)
    args = [per_row[k] for k in spec.family.params]
    want_rows = MATHS[kind].loglik(*args, *(data[c] for c in spec.family.columns))
    want = float(np.sum(data.counts * want_rows))
    assert float(spec.weighted_loglik(values, data)) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(spec.row_loglik(values, data), want_rows, rtol=1e-12)

    symbols = {k: pt.dscalar(k) for k in TRUTH[kind]}
    symbols.update({k: pt.dvector(k) for k in coefficients})
    fn = pytensor.function(list(symbols.values()), spec.weighted_loglik(symbols, data))
    assert fn(*(values[k] for k in symbols)) == pytest.approx(want, rel=1e-10)
    # other data swapped into a model built on inputs: tests/test_fit_many.py


def test_one_binary_covariate_on_many_rows_is_cut_into_two_profile_blocks():
    """The defaults: profile blocks for a large table with one binary covariate, not for
    two binary covariates (compilation) nor for a small table (per-row is cheap)."""
    big = customers(n=12000, seed=3)
    big["club"] = (np.arange(len(big)) % 3 == 0).astype(float)
    spec = BGNBD(purchase_covariates=["gender"], dropout_covariates=["gender"])
    blocks = spec.prepare(big).profile_blocks()
    assert blocks is not None and len(blocks) == 2
    assert sum(block.n_customers for *_, block in blocks) == 0  # blocks keep no inverse
    assert sum(int(block.counts.sum()) for *_, block in blocks) == len(big)
    assert BGNBD(purchase_covariates=["gender", "club"]).prepare(big).profile_blocks() is None
    assert spec.prepare(big.iloc[:500]).profile_blocks() is None
    segmented = BGNBD(segments="club", purchase_covariates=["gender"]).prepare(big)
    assert segmented.profile_blocks() is None  # segmented data: per segment block
    from clvbayes.data.compress import MIN_PROFILE_ROWS

    cut = [b.profile_blocks() is not None for *_, b in segmented.segment_blocks()]
    assert cut == [b.n_rows >= MIN_PROFILE_ROWS for *_, b in segmented.segment_blocks()]
    assert any(cut)


def test_categorical_covariates_keep_the_compression_continuous_ones_do_not(rfm):
    plain = BGNBD().prepare(rfm)
    binary = BGNBD(purchase_covariates=["gender"]).prepare(rfm)
    continuous = BGNBD(purchase_covariates=["age"]).prepare(rfm)
    assert plain.n_rows < binary.n_rows <= 2 * plain.n_rows
    assert continuous.n_rows == len(rfm)
    # the unique-row key is (covariates, x, t_x, T)
    key = rfm[["gender", "frequency", "recency", "T"]].drop_duplicates()
    assert binary.n_rows == len(key)


# --- pymc-marketing 1.3 ---------------------------------------------------------------


def _theirs(model_cls, config: dict, data: pd.DataFrame):
    from pymc_extras.prior import Prior

    flat = {k: Prior("HalfFlat") for k in config.pop("positive")}
    model = model_cls(
        model_config={
            **flat,
            "purchase_coefficient": Prior("Flat"),
            "dropout_coefficient": Prior("Flat"),
            **config,
        }
    )
    model.build_model(data)
    logp = model.model.compile_logp(vars=[model.model["recency_frequency"]], jacobian=False)
    return model, logp


def _point(model, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    point = {}
    for name in model.model.initial_point():
        base = name.removesuffix("_log__")
        value = np.asarray(values[base], dtype=float)
        point[name] = np.log(value) if name.endswith("_log__") else value
    return point


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["BGNBD", "ParetoNBD"])
def test_likelihood_with_covariates_matches_pymc_marketing_at_200_parameter_sets(kind, rfm):
    from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel

    data = rfm[["customer_id", "frequency", "recency", "T", *COLUMNS]].copy()
    data["age"] = (data["age"] - 40) / 10  # pymc-marketing samples badly-scaled data poorly
    columns = {"purchase_covariate_cols": COLUMNS, "dropout_covariate_cols": ["gender"]}
    if kind == "BGNBD":
        model, logp = _theirs(BetaGeoModel, {"positive": ["r", "alpha", "a", "b"], **columns}, data)
    else:
        model, logp = _theirs(
            ParetoNBDModel, {"positive": ["r", "alpha", "s", "beta"], **columns}, data
        )
    spec = _spec(kind)
    prepared = spec.prepare(data)
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(200):
        base = {
            "r": rng.uniform(0.1, 3.0),
            "alpha": rng.uniform(0.5, 30.0),
            "a": rng.uniform(0.2, 3.0),
            "b": rng.uniform(0.5, 10.0),
            "s": rng.uniform(0.1, 3.0),
            "beta": rng.uniform(0.5, 30.0),
        }
        gamma_p, gamma_a, gamma_b = (rng.normal(0, 0.5, k) for k in (2, 1, 1))
        if kind == "BGNBD":
            theirs_values = {
                "r": base["r"],
                "alpha_scale": base["alpha"],
                "a_scale": base["a"],
                "b_scale": base["b"],
                "purchase_coefficient_alpha": gamma_p,
                "dropout_coefficient_a": gamma_a,
                "dropout_coefficient_b": gamma_b,
            }
            ours_values = {
                **{k: base[k] for k in ("r", "alpha", "a", "b")},
                "purchase_coefficient": gamma_p,
                "dropout_coefficient_a": gamma_a,
                "dropout_coefficient_b": gamma_b,
            }
        else:
            theirs_values = {
                "r": base["r"],
                "alpha_scale": base["alpha"],
                "s": base["s"],
                "beta_scale": base["beta"],
                "purchase_coefficient": gamma_p,
                "dropout_coefficient": gamma_a,
            }
            ours_values = {
                **{k: base[k] for k in ("r", "alpha", "s", "beta")},
                "purchase_coefficient": gamma_p,
                "dropout_coefficient": gamma_a,
            }
        theirs = float(logp(_point(model, theirs_values)))
        ours = float(spec.weighted_loglik(ours_values, prepared))
        worst = max(worst, abs(ours - theirs) / abs(theirs))
    assert worst < 1e-8, worst


# --- bad input ------------------------------------------------------------------------


def test_missing_covariate_column_is_named(rfm):
    with pytest.raises(ValueError, match=r"'region' is not in the RFM table.*merge"):
        BGNBD(purchase_covariates=["region"]).prepare(rfm)


def test_nan_covariate_is_named_with_count(rfm):
    bad = rfm.assign(age=rfm["age"].where(rfm.index % 50 != 0))
    with pytest.raises(ValueError, match=r"'age': 10 of 500 rows are NaN or infinite"):
        BGNBD(purchase_covariates=["age"]).prepare(bad)


def test_text_covariate_says_how_to_one_hot_encode(rfm):
    bad = rfm.assign(channel=np.where(rfm["gender"] > 0, "web", "store"))
    with pytest.raises(ValueError, match=r"'channel' is not numeric.*get_dummies.*drop_first"):
        ParetoNBD(dropout_covariates=["channel"]).prepare(bad)
    categorical = bad.assign(channel=bad["channel"].astype("category"))
    with pytest.raises(ValueError, match="'channel' is not numeric"):
        ParetoNBD(dropout_covariates=["channel"]).prepare(categorical)


def test_constant_covariate_is_not_identifiable(rfm):
    with pytest.raises(ValueError, match=r"'one' has the same value \(1\) for all 500"):
        BGNBD(purchase_covariates=["gender", "one"]).prepare(rfm.assign(one=1.0))


def test_constant_among_the_customers_used_is_caught(rfm):
    # the Gamma-Gamma uses repeat buyers only: a flag set only for the others is constant
    flag = (rfm["frequency"] == 0).astype(float)
    with pytest.raises(ValueError, match=r"'flag' .* customers used \(only customers with"):
        GammaGamma(spend_covariates=["flag"]).prepare(rfm.assign(flag=flag))


def test_every_category_as_a_column_is_collinear(rfm):
    both = rfm.assign(male=1.0 - rfm["gender"])
    with pytest.raises(ValueError, match=r"\['gender', 'male'\] are collinear.*drop_first"):
        BGNBD(purchase_covariates=["gender", "male"]).prepare(both)


def test_bad_covariate_options():
    with pytest.raises(TypeError, match="purchase_covariates must be a list"):
        BGNBD(purchase_covariates="gender")
    with pytest.raises(ValueError, match="has no spend process"):
        BGNBD(spend_covariates=["gender"])
    with pytest.raises(ValueError, match="has no purchase process"):
        GammaGamma(purchase_covariates=["gender"])
    with pytest.raises(ValueError, match=r"\['gender'\] named more than once"):
        ParetoNBD(purchase_covariates=["gender", "gender"])
    with pytest.raises(ValueError, match="unknown prior name"):
        BGNBD(priors={"purchase_coefficient": {"dist": "Normal", "kwargs": {"sigma": 1}}})


def test_covariates_do_not_change_the_callers_frame(rfm):
    before = rfm.copy()
    BGNBD(purchase_covariates=COLUMNS).prepare(rfm)
    pd.testing.assert_frame_equal(rfm, before)


def test_flat_priors_give_flat_coefficients():
    priors = FLAT_PRIORS("r", "purchase_coefficient")
    assert priors["r"].distribution == "HalfFlat"
    assert priors["purchase_coefficient"].distribution == "Flat"


@pytest.mark.parametrize(
    "prior", [Prior("Flat"), Prior("Normal", mu=0.0, sigma=0.5), Prior("StudentT", nu=3)]
)
def test_coefficient_priors_may_be_negative(prior):
    # a coefficient lives on the whole line: the prior-support check must not reject
    # FLAT_PRIORS (maximum likelihood) or a user's Normal prior on it
    spec = ParetoNBD(
        priors={"purchase_coefficient": prior, "dropout_coefficient": prior},
        purchase_covariates=COLUMNS,
        dropout_covariates=COLUMNS,
    )
    assert spec.priors["purchase_coefficient"].distribution == prior.distribution
    with pytest.raises(ValueError, match="must be positive"):
        ParetoNBD(priors={"r": Prior("Normal", mu=0.0, sigma=1.0)})


# --- compression, segments, storage -------------------------------------------------------


def test_segments_get_their_own_intercepts_and_share_the_coefficients(rfm):
    seg = rfm.assign(channel=np.where(rfm.index % 2 == 0, "web", "store"))
    spec = BGNBD(segments="channel", pooling="none", purchase_covariates=COLUMNS)
    data = spec.prepare(seg)
    assert data.segmented and "covariate_gender" in data.columns
    coefficients = {"purchase_coefficient": np.array([0.3, -0.01])}
    per_segment = {"r": [0.5, 0.7], "alpha": [5.0, 8.0], "a": [0.8, 1.1], "b": [2.0, 3.0]}
    params = {k: np.asarray(v) for k, v in per_segment.items()}
    ours = float(spec.weighted_loglik({**params, **coefficients}, data))
    want = 0.0
    for code, label in enumerate(("store", "web")):
        part = seg[seg["channel"] == label]
        alone = BGNBD(purchase_covariates=COLUMNS)
        values = {k: v[code] for k, v in per_segment.items()}
        want += float(alone.weighted_loglik({**values, **coefficients}, alone.prepare(part)))
    assert ours == pytest.approx(want, rel=1e-12)
    model = spec.build(data)
    assert model.named_vars_to_dims["alpha"] == ("segment",)
    assert model.named_vars_to_dims["purchase_coefficient"] == ("purchase_covariate",)


@pytest.fixture(scope="module")
def map_fit(rfm):
    spec = BGNBD(purchase_covariates=COLUMNS, dropout_covariates=["gender"])
    return spec.fit(rfm, method="map", seed=1)


def test_map_fit_keeps_parameters_at_zero_and_coefficients_per_unit_and_per_sd(map_fit, rfm):
    post = map_fit.posterior
    assert list(post["purchase_coefficient"].coords["purchase_covariate"].values) == COLUMNS
    per_unit = post["purchase_coefficient"].to_numpy().ravel()
    per_sd = post["purchase_coefficient_per_sd"].to_numpy().ravel()
    np.testing.assert_allclose(per_sd, per_unit * rfm[COLUMNS].std(ddof=0).to_numpy())
    table = map_fit.summary()
    assert "purchase_coefficient[gender]" in table.index
    assert "dropout_coefficient_b_per_sd[gender]" in table.index


def test_save_load_round_trip_keeps_covariates_and_predictions(map_fit, rfm, tmp_path):
    import clvbayes

    path = tmp_path / "fit.nc"
    map_fit.save(path)
    loaded = clvbayes.load(path)
    assert loaded.spec.covariates == map_fit.spec.covariates
    assert loaded.spec.options() == map_fit.spec.options()
    np.testing.assert_array_equal(
        clvbayes.p_alive(loaded, rfm).to_numpy(), clvbayes.p_alive(map_fit, rfm).to_numpy()
    )
    np.testing.assert_allclose(
        loaded.log_likelihood().to_numpy(), map_fit.log_likelihood().to_numpy(), rtol=1e-12
    )


def test_predictions_use_each_customers_own_covariates(map_fit, rfm):
    import clvbayes

    post = map_fit.posterior
    theta = {k: float(post[k].to_numpy().ravel()[0]) for k in ("r", "alpha", "a", "b")}
    gamma = {k: post[k].to_numpy().reshape(-1) for k in map_fit.spec.design.coefficients}
    z, g = rfm[COLUMNS].to_numpy(), rfm["gender"].to_numpy()
    alpha = theta["alpha"] * np.exp(-(z @ gamma["purchase_coefficient"]))
    a = theta["a"] * np.exp(g * gamma["dropout_coefficient_a"][0])
    b = theta["b"] * np.exp(g * gamma["dropout_coefficient_b"][0])
    data = (rfm["frequency"].to_numpy(), rfm["recency"].to_numpy(), rfm["T"].to_numpy())
    want = bgnbd.p_alive(theta["r"], alpha, a, b, *data)
    np.testing.assert_allclose(clvbayes.p_alive(map_fit, rfm).to_numpy().ravel(), want, rtol=1e-12)
    expected = bgnbd.expected_purchases(theta["r"], alpha, a, b, *data, 10.0)
    got = clvbayes.expected_purchases(map_fit, rfm, 10.0).to_numpy().ravel()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    result = clvbayes.predict_customers(map_fit, rfm, horizon=10.0, seed=1)
    np.testing.assert_allclose(result.summary["expected_purchases"], expected, rtol=1e-6)
    swapped = rfm.assign(gender=1.0 - rfm["gender"])
    other = clvbayes.p_alive(map_fit, swapped).to_numpy().ravel()
    assert not np.allclose(other, want)


def test_pareto_p_alive_with_per_customer_parameters_is_each_customers_own(rfm):
    # scoring passes draws x customers parameters (covariates) against 1-d columns with
    # repeated values: the per-level shortcut must not mix customers of one level
    data = (rfm["frequency"].to_numpy(), rfm["recency"].to_numpy(), rfm["T"].to_numpy())
    rng = np.random.default_rng(3)
    alpha = 8.0 * np.exp(rng.normal(0, 0.5, (2, len(rfm))))
    beta = 12.0 * np.exp(rng.normal(0, 0.5, (2, len(rfm))))
    got = pareto_nbd.p_alive(0.6, alpha, 0.8, beta, *data)
    want = [
        [pareto_nbd.p_alive(0.6, alpha[d, i], 0.8, beta[d, i], *(c[i] for c in data))
         for i in range(len(rfm))]
        for d in range(2)
    ]  # fmt: skip
    np.testing.assert_allclose(got, np.array(want, dtype=float), rtol=1e-10)


def test_simulated_futures_follow_each_customers_own_parameters_for_any_chunking(
    map_fit, spend_map_fit, rfm
):
    """The compiled simulation reads each customer's covariate-scaled parameters: the
    total of the simulated purchases matches the sum of the customers' own expected
    purchases (z-test over draws), and the table is identical for any n_jobs, chunking
    and memory cap (one random stream per draw and customer)."""
    import clvbayes

    kw = {"horizon": 20.0, "seed": 3, "n_draws": 400, "spend_fit": spend_map_fit}
    kw |= {"annual_discount": 0.1, "keep_draws": ("purchases", "clv")}
    one = clvbayes.predict_customers(map_fit, rfm, n_jobs=1, **kw)
    expected = clvbayes.expected_purchases(map_fit, rfm, 20.0).to_numpy().ravel().sum()
    totals = one.draws["purchases"].to_numpy().reshape(400, -1).sum(axis=1)
    z = (totals.mean() - expected) / (totals.std(ddof=1) / np.sqrt(totals.size))
    assert abs(z) < 4.5
    other = clvbayes.predict_customers(
        map_fit, rfm, n_jobs=2, chunk_customers=37, memory_limit_mb=1, **kw
    )
    pd.testing.assert_frame_equal(one.summary, other.summary, check_exact=True)
    xr.testing.assert_identical(one.draws, other.draws)


def test_prediction_needs_the_covariate_columns(map_fit, rfm):
    import clvbayes

    with pytest.raises(ValueError, match="'age' is not in the RFM table"):
        clvbayes.predict_customers(map_fit, rfm.drop(columns="age"), horizon=10.0, seed=1)


def test_prepared_covariates_equal_a_direct_compression(rfm):
    data = BGNBD(purchase_covariates=["gender"]).prepare(rfm)
    direct = compress(
        {
            "covariate_gender": rfm["gender"],
            "frequency": rfm["frequency"],
            "recency": rfm["recency"],
            "T": rfm["T"],
        },
        ("covariate_gender", "frequency", "recency", "T"),
    )
    np.testing.assert_array_equal(data.counts, direct.counts)
    np.testing.assert_array_equal(data.inverse, direct.inverse)


# --- new customers, effects, customer-level columns ----------------------------------------


@pytest.fixture(scope="module")
def spend_map_fit(rfm):
    return GammaGamma(spend_covariates=["gender"]).fit(rfm, method="map", seed=1)


def test_new_customer_value_of_covariate_profiles_is_the_scaled_maths(map_fit, spend_map_fit):
    import clvbayes

    profiles = {"gender": [0.0, 1.0], "age": [40.0, 30.0]}
    ds = clvbayes.new_customer_value(map_fit, spend_map_fit, horizon=52.0, covariates=profiles)
    assert ds["clv"].dims == ("chain", "draw", "profile")
    assert list(ds["gender"].values) == [0.0, 1.0]
    post, spend = map_fit.posterior, spend_map_fit.posterior
    theta = {k: float(post[k].to_numpy().ravel()[0]) for k in ("r", "alpha", "a", "b")}
    gamma = post["purchase_coefficient"].to_numpy().reshape(-1)
    g_a = float(post["dropout_coefficient_a"].to_numpy().ravel()[0])
    g_b = float(post["dropout_coefficient_b"].to_numpy().ravel()[0])
    z = np.column_stack([profiles["gender"], profiles["age"]])
    alpha = theta["alpha"] * np.exp(-(z @ gamma))
    a = theta["a"] * np.exp(z[:, 0] * g_a)
    b = theta["b"] * np.exp(z[:, 0] * g_b)
    want = bgnbd.expected_purchases_new(theta["r"], alpha, a, b, 52.0)
    np.testing.assert_allclose(ds["expected_purchases"].to_numpy().ravel(), want, rtol=1e-12)
    p, q, v = (float(spend[k].to_numpy().ravel()[0]) for k in ("p", "q", "v"))
    v_i = v * np.exp(z[:, 0] * float(spend["spend_coefficient"].to_numpy().ravel()[0]))
    np.testing.assert_allclose(ds["mean_spend"].to_numpy().ravel(), p * v_i / (q - 1), rtol=1e-12)
    np.testing.assert_allclose(ds["clv"].to_numpy().ravel(), want * p * v_i / (q - 1), rtol=1e-8)


def test_new_customer_value_needs_the_profiles_of_a_fit_with_covariates(map_fit):
    import clvbayes

    with pytest.raises(ValueError, match=r"covariates \['age', 'gender'\]: pass covariates="):
        clvbayes.new_customer_value(map_fit, horizon=52.0)


def test_covariate_effects_are_one_sd_changes_of_the_typical_customer(map_fit, spend_map_fit, rfm):
    from clvbayes.covariates import covariate_effects

    result = covariate_effects(map_fit, spend_map_fit, time_unit="W")
    table = result.summary.set_index("covariate")
    sd = rfm[COLUMNS].std(ddof=0)
    np.testing.assert_allclose(table["sd"], sd[table.index], rtol=1e-10)
    np.testing.assert_allclose(table["from"], rfm[COLUMNS].mean()[table.index], rtol=1e-10)
    # spend: the mean spend p v_i / (q - 1) scales with exp(γ sd); age does not enter it
    gamma = float(spend_map_fit.posterior["spend_coefficient"].to_numpy().ravel()[0])
    assert table.loc["gender", "spend_change_mean"] == pytest.approx(
        np.expm1(gamma * sd["gender"]), rel=1e-10
    )
    assert table.loc["age", "spend_change_mean"] == 0.0
    # undiscounted CLV = purchases x mean spend: the changes multiply
    for c in COLUMNS:
        row = table.loc[c]
        want = (1 + row["purchases_change_mean"]) * (1 + row["spend_change_mean"]) - 1
        assert row["clv_change_mean"] == pytest.approx(want, rel=1e-8)
    # one year in weeks: the purchases of the typical customer and of +1 sd, by hand
    post = map_fit.posterior
    theta = {k: float(post[k].to_numpy().ravel()[0]) for k in ("r", "alpha", "a", "b")}
    gp = post["purchase_coefficient"].to_numpy().reshape(-1)
    ga = float(post["dropout_coefficient_a"].to_numpy().ravel()[0])
    gb = float(post["dropout_coefficient_b"].to_numpy().ravel()[0])
    mean = rfm[COLUMNS].mean().to_numpy()

    def purchases(z):
        alpha = theta["alpha"] * np.exp(-(z @ gp))
        a, b = theta["a"] * np.exp(z[0] * ga), theta["b"] * np.exp(z[0] * gb)
        return bgnbd.expected_purchases_new(theta["r"], alpha, a, b, 365.2425 / 7)

    plus_age = mean + np.array([0.0, sd["age"]])
    assert table.loc["age", "purchases_change_mean"] == pytest.approx(
        purchases(plus_age) / purchases(mean) - 1, rel=1e-10
    )
    coefficients = result.groups
    assert set(coefficients["coefficient"]) == {
        "purchase_coefficient",
        "dropout_coefficient_a",
        "dropout_coefficient_b",
        "spend_coefficient",
    }
    assert result.draws["clv_change"].dims == ("chain", "draw", "covariate")


def test_covariate_effects_of_a_segmented_fit_start_in_its_largest_segment(rfm):
    """Segments and covariates together: the typical customer is in the largest segment;
    the effects equal those from that segment given explicitly, and a reference or
    profiles without a segment get an error that names the column."""
    import clvbayes
    from clvbayes.covariates import covariate_effects, reference_profile

    seg = rfm.assign(channel=np.where(rfm.index % 3 == 0, "web", "store"))
    fit = BGNBD(segments="channel", purchase_covariates=["gender"]).fit(seg, method="map", seed=1)
    reference = reference_profile(fit)
    assert reference["channel"] == "store"
    assert reference["gender"] == pytest.approx(seg["gender"].mean(), rel=1e-12)
    default = covariate_effects(fit, time_unit="W").summary
    given = covariate_effects(fit, time_unit="W", reference=reference).summary
    pd.testing.assert_frame_equal(default, given)
    web = covariate_effects(fit, time_unit="W", reference={**reference, "channel": "web"})
    assert web.summary["purchases_change_mean"].iloc[0] != pytest.approx(
        default["purchases_change_mean"].iloc[0], rel=1e-6
    )
    with pytest.raises(ValueError, match=r"segmented by 'channel'.*'channel': 'store'"):
        covariate_effects(fit, time_unit="W", reference={"gender": 0.5})
    with pytest.raises(ValueError, match=r"covariates: the .* segmented by 'channel'; add"):
        clvbayes.new_customer_value(fit, horizon=52.0, covariates={"gender": [0, 1]})


@pytest.mark.slow
def test_covariate_effects_need_covariates(rfm):
    from clvbayes.covariates import covariate_effects

    plain = BGNBD().fit(rfm, method="map", seed=1)
    with pytest.raises(ValueError, match="the fits have no covariates"):
        covariate_effects(plain)


def test_rfm_summary_carries_customer_level_columns():
    import clvbayes

    log = pd.DataFrame(
        {
            "customer": [1, 1, 2, 3, 3],
            "date": ["2020-01-01", "2020-02-01", "2020-01-05", "2020-01-02", "2020-03-01"],
            "gender": [1, 1, 0, 1, 1],
            "region": ["n", "n", "s", "s", "s"],
        }
    )
    rfm = clvbayes.rfm_summary(
        log, customer_col="customer", date_col="date", customer_cols=["gender", "region"]
    )
    assert list(rfm["gender"]) == [1, 0, 1]
    assert list(rfm["region"]) == ["n", "s", "s"]
    assert rfm["gender"].dtype.kind == "i"
    changing = log.assign(gender=[1, 0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"'gender' is not constant within a customer: 1 of 3"):
        clvbayes.rfm_summary(
            changing, customer_col="customer", date_col="date", customer_cols=["gender"]
        )
    missing = log.assign(gender=[1.0, np.nan, 0, 1, 1])
    with pytest.raises(ValueError, match=r"'gender': 1 of 5 rows have a missing value"):
        clvbayes.rfm_summary(
            missing, customer_col="customer", date_col="date", customer_cols=["gender"]
        )
    with pytest.raises(ValueError, match="'age' not found"):
        clvbayes.rfm_summary(log, customer_col="customer", date_col="date", customer_cols=["age"])


def test_coefficient_priors_may_be_negative_and_shape_priors_may_not():
    """Coefficients live on the real line (a Normal prior is the default, and a saved fit
    reloads with it); positive parameters still refuse a Normal prior."""
    from pymc_extras.prior import Prior

    from clvbayes.priors import check_prior_support, prior_support

    normal = Prior("Normal", mu=0.0, sigma=1.0)
    for name in ("purchase_coefficient", "dropout_coefficient_a", "calendar_coefficient"):
        assert prior_support(name) == "real"
        check_prior_support(name, normal)
    with pytest.raises(ValueError, match="alpha must be positive"):
        check_prior_support("alpha", normal)
