"""One contract for every model: builds, reproducible, round-trips, never mutates input."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pymc_extras.prior import Prior

import clvbayes
from clvbayes.diagnostics import ConvergenceWarning
from clvbayes.models import BGNBD, MBGNBD, GammaGamma, ParetoNBD

MODELS = [BGNBD, GammaGamma, ParetoNBD, MBGNBD]
FAST = {"draws": 150, "tune": 150, "chains": 2, "progressbar": False}


@pytest.fixture(scope="module", params=MODELS, ids=lambda m: m.kind)
def fitted_pair(request, small_rfm):
    """Two fits with the same seed (for the determinism check) and the input copy."""
    spec = request.param()
    before = small_rfm.copy(deep=True)
    # 150 draws are too few for the ESS target: the warnings are expected and checked below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        first = spec.fit(small_rfm, seed=11, **FAST)
    second = spec.fit(small_rfm, seed=11, **FAST)
    first_warnings = [str(w.message) for w in caught if w.category is ConvergenceWarning]
    return spec, first, second, before, first_warnings


@pytest.mark.slow
def test_same_seed_gives_identical_draws(fitted_pair):
    _, first, second, _, _ = fitted_pair
    xr.testing.assert_equal(first.posterior, second.posterior)


@pytest.mark.slow
def test_convergence_problems_are_warned_and_recorded(fitted_pair):
    spec, first, _, _, caught = fitted_pair
    assert caught == [f"{spec.kind}: {p}" for p in first.problems]
    assert any("ESS" in p for p in first.problems)  # 2 x 150 draws cannot reach 400


@pytest.mark.slow
def test_fit_does_not_mutate_input_or_spec(fitted_pair, small_rfm):
    spec, first, _, before, _ = fitted_pair
    pd.testing.assert_frame_equal(small_rfm, before)
    assert first.spec is spec
    with pytest.raises(AttributeError, match="immutable"):
        spec.foo = 1


@pytest.mark.slow
def test_posterior_has_population_parameters(fitted_pair):
    spec, first, _, _, _ = fitted_pair
    post = first.posterior
    for name in spec.params:
        assert post[name].dims == ("chain", "draw")
        assert post[name].shape == (2, 150)
        assert np.all(post[name].to_numpy() > 0)
    table = first.summary()
    assert list(table.index) == list(spec.params)
    assert {"mean", "sd", "r_hat", "ess_bulk"} <= set(table.columns)
    diag = first.diagnostics()
    assert list(diag.table.columns) == ["r_hat", "ess_bulk", "ess_tail"]
    assert len(diag.bfmi) == 2


@pytest.mark.slow
def test_idata_holds_posterior_stats_observed_data_and_settings(fitted_pair, small_rfm):
    spec, first, _, _, _ = fitted_pair
    idata = first.idata
    assert {"posterior", "sample_stats", "observed_data"} <= set(idata.children)
    observed = idata["observed_data"].to_dataset()
    keep = spec.select({c: small_rfm[c].to_numpy(float) for c in spec.columns})
    for column in spec.columns:  # the fitted customers' RFM, rebuilt from the unique rows
        rebuilt = observed[column].to_numpy()[observed["customer_row"].to_numpy()]
        np.testing.assert_array_equal(rebuilt, small_rfm[column].to_numpy(float)[keep])
    assert int(observed["count"].sum()) == int(keep.sum())
    assert idata.attrs["model_kind"] == spec.kind
    assert idata.attrs["data_fingerprint"] == first.fingerprint
    for key in ("method", "sampler", "draws", "tune", "chains", "seed"):
        assert idata.attrs[key] == first.settings[key]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_save_load_round_trip_is_exact(fitted_pair, tmp_path, suffix):
    _, first, _, _, _ = fitted_pair
    path = tmp_path / f"model{suffix}"
    first.save(path)
    loaded = clvbayes.load(path)
    assert type(loaded.spec) is type(first.spec)
    xr.testing.assert_equal(loaded.posterior, first.posterior)
    assert loaded.fingerprint == first.fingerprint
    assert loaded.settings == first.settings
    assert loaded.spec.priors == first.spec.priors
    xr.testing.assert_equal(
        loaded.idata["observed_data"].to_dataset(), first.idata["observed_data"].to_dataset()
    )
    assert loaded.idata.attrs == first.idata.attrs
    np.testing.assert_array_equal(loaded.log_likelihood(), first.log_likelihood())


@pytest.mark.slow
def test_save_without_data_then_loglik_is_a_clear_error(fitted_pair, tmp_path):
    _, first, _, _, _ = fitted_pair
    path = tmp_path / "nodata.nc"
    first.save(path, include_data=False)
    loaded = clvbayes.load(path)
    assert loaded.data is None
    with pytest.raises(ValueError, match="saved without its data"):
        loaded.log_likelihood()


@pytest.mark.slow
def test_load_wrong_model_type_or_corrupt_file_fails_clearly(fitted_pair, tmp_path):
    _, first, _, _, _ = fitted_pair
    path = tmp_path / "m.nc"
    first.save(path)
    other = "GammaGamma" if first.kind == "BGNBD" else "BGNBD"
    with pytest.raises(ValueError, match=f"not '{other}'"):
        clvbayes.load(path, model=other)
    broken = tmp_path / "broken.nc"
    broken.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match="cannot be read as a clvbayes model file"):
        clvbayes.load(broken)
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("i", [1.0])}).to_netcdf(foreign, engine="h5netcdf")
    with pytest.raises(ValueError, match="not a clvbayes model file"):
        clvbayes.load(foreign)


@pytest.mark.slow
def test_pointwise_loglik_expands_to_customers_and_sums_like_the_weighted_rows(fitted_pair):
    _, first, _, _, _ = fitted_pair
    rows = first.log_likelihood()
    customers = first.log_likelihood(per_customer=True)
    assert customers.sizes["customer"] == first.data.n_customers
    weighted = (rows * first.data.counts).sum("row")
    np.testing.assert_allclose(customers.sum("customer"), weighted, rtol=1e-12)


def test_several_models_in_one_file(tmp_path, small_rfm):
    bg = BGNBD().fit(small_rfm, method="map")
    gg = GammaGamma().fit(small_rfm, method="map")
    path = tmp_path / "both.nc"
    clvbayes.save({"bgnbd": bg, "gamma_gamma": gg}, path)
    loaded = clvbayes.load(path)
    assert {k: v.kind for k, v in loaded.items()} == {"bgnbd": "BGNBD", "gamma_gamma": "GammaGamma"}


@pytest.mark.slow
def test_pymc_nuts_is_the_fallback_without_nutpie_and_is_reproducible(small_rfm, monkeypatch):
    """Without nutpie, ``sampler="auto"`` runs PyMC's own NUTS; the same seed gives the
    same draws there too, and the posterior agrees with nutpie's."""
    import clvbayes.inference as inference

    monkeypatch.setattr(inference, "nutpie_available", lambda: False)
    kw = {"draws": 200, "tune": 200, "chains": 2, "seed": 4, "progressbar": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 2 x 200 draws: low ESS
        one = BGNBD().fit(small_rfm, **kw)
        two = BGNBD().fit(small_rfm, **kw)
        ref = BGNBD().fit(small_rfm, sampler="nutpie", **kw)
    assert one.settings["sampler"] == "pymc" and ref.settings["sampler"] == "nutpie"
    assert "diverging" in one.idata["sample_stats"].to_dataset()
    for name in BGNBD.params:
        np.testing.assert_array_equal(one.posterior[name], two.posterior[name])
        ours, theirs = one.posterior[name].to_numpy(), ref.posterior[name].to_numpy()
        se = np.hypot(ours.std(), theirs.std()) / np.sqrt(40)  # ESS >= 40 of 400 draws
        assert abs(ours.mean() - theirs.mean()) < 4 * se, name


def test_user_priors_are_copied_not_mutated():
    r_prior = Prior("Gamma", alpha=2, beta=1)
    user = {"r": r_prior, "alpha": {"dist": "HalfNormal", "kwargs": {"sigma": 10}}}
    snapshot = copy.deepcopy(user)
    spec = BGNBD(priors=user)
    assert user == snapshot
    assert spec.priors["r"] == Prior("Gamma", alpha=2.0, beta=1.0)
    spec.priors["r"] = None  # a copy: the spec keeps its own
    assert spec.priors["r"] is not None


def test_prior_errors_are_clear():
    with pytest.raises(ValueError, match="unknown prior name"):
        BGNBD(priors={"rr": Prior("HalfFlat")})
    with pytest.raises(ValueError, match="go together"):
        BGNBD(priors={"a": Prior("HalfFlat")})
    with pytest.raises(TypeError, match="expected a pymc_extras Prior"):
        GammaGamma(priors={"p": 3.0})


def test_integer_prior_parameters_do_not_break_the_model(small_rfm):
    # PyMC 6.3 evaluates HalfStudentT's sigma**2 in int8 for sigma=20 (NaN logp): we cast.
    spec = BGNBD(priors={"alpha": Prior("HalfStudentT", nu=3, sigma=20)})
    fitted = spec.fit(small_rfm, method="map")
    assert np.isfinite(fitted.posterior["alpha"]).all()


def test_a_b_priors_replace_phi_kappa(small_rfm):
    spec = BGNBD(priors={"a": Prior("HalfNormal", sigma=5), "b": Prior("HalfNormal", sigma=5)})
    assert set(spec.priors) == {"r", "alpha", "a", "b"}
    fitted = spec.fit(small_rfm, method="map")
    assert set(fitted.posterior.data_vars) == {"r", "alpha", "a", "b"}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["advi", "pathfinder"])
def test_approximate_methods_return_a_posterior(small_rfm, method):
    fitted = BGNBD().fit(small_rfm, method=method, draws=100, chains=2, seed=3, progressbar=False)
    assert fitted.posterior["r"].shape == (2, 100)
    assert fitted.settings["method"] == method


def test_bad_rfm_input_names_column_count_and_fix(small_rfm):
    bad = small_rfm.copy()
    bad.loc[[3, 7], "recency"] = bad.loc[[3, 7], "T"] + 1
    bad.loc[[3, 7], "frequency"] = 2
    with pytest.raises(ValueError, match=r"column 'recency': 2 of 400 rows exceed T"):
        BGNBD().fit(bad, method="map")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['T'\]"):
        BGNBD().fit(small_rfm.drop(columns="T"), method="map")
    nan = small_rfm.copy()
    nan.loc[5, "monetary_value"] = np.nan
    with pytest.raises(ValueError, match="'monetary_value': 1 of 400 rows are NaN"):
        GammaGamma().fit(nan, method="map")
    with pytest.raises(ValueError, match="none of the 3 customers"):
        GammaGamma().fit(small_rfm[small_rfm.frequency == 0].head(3), method="map")
