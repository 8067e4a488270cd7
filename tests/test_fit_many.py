"""``ModelSpec.fit_many``: one compiled model, many data sets.

Oracle: the model built on constants by ``spec.build(data)``. A model built on named
inputs (``SharedRFM``) and then given another data set's inputs must have the same log
density as the model built directly on that data set, at any parameter point; fits
through the swapped inputs must then be reproducible and agree with ``fit``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest

import clvbayes.data.compress as compress_module
import clvbayes.models.likelihood as likelihood_module
from clvbayes.diagnostics import ConvergenceWarning
from clvbayes.models import BGNBD, MBGNBD, GammaGamma, ParetoNBD
from clvbayes.models.shared_data import SharedRFM, structure
from clvbayes.simulate import simulate_bgnbd, simulate_gamma_gamma

FAST = {"draws": 150, "tune": 150, "chains": 2}


def _rfm(seed: int, n: int = 300) -> pd.DataFrame:
    """Simulated BG/NBD + Gamma-Gamma customers in three segments (days-rounded times)."""
    rng = np.random.default_rng(seed)
    T = np.round(rng.uniform(20, 40, size=n) * 7) / 7
    sim = simulate_bgnbd(0.5, 5.0, 0.8, 2.5, T, rng=rng)
    spend = simulate_gamma_gamma(6.0, 3.8, 15.0, sim["frequency"], rng=rng)
    channel = np.array(["web", "store", "tv"])[np.arange(n) % 3]
    return pd.DataFrame(
        {
            "frequency": sim["frequency"],
            "recency": np.floor(sim["recency"] * 7) / 7,
            "T": T,
            "monetary_value": spend,
            "channel": channel,
            "web": (channel == "web").astype(float),  # covariates
            "age": rng.normal(40, 10, size=n),
            "vip": (rng.random(n) < 0.3).astype(float),
        }
    )


SPECS = {
    "BGNBD": BGNBD(),
    "MBGNBD": MBGNBD(),
    "GammaGamma": GammaGamma(),
    "BGNBD-partial": BGNBD(segments="channel"),
    "BGNBD-none": BGNBD(segments="channel", pooling="none"),
    "GammaGamma-partial": GammaGamma(segments="channel"),
    "BGNBD-covariates": BGNBD(purchase_covariates=["web", "age"], dropout_covariates=["web"]),
    "BGNBD-partial-covariates": BGNBD(segments="channel", purchase_covariates=["age"]),
    "GammaGamma-covariates": GammaGamma(spend_covariates=["age"]),
    # categorical covariates only: evaluated per covariate profile block (thresholds
    # lowered in the test)
    "BGNBD-profiles": BGNBD(purchase_covariates=["web", "vip"], dropout_covariates=["vip"]),
    "BGNBD-partial-profiles": BGNBD(segments="channel", purchase_covariates=["vip"]),
    "GammaGamma-profiles": GammaGamma(spend_covariates=["vip"]),
    # segments on all rows at once with per-row parameters (threshold lowered in the test)
    "BGNBD-partial-rows": BGNBD(segments="channel"),
    "BGNBD-partial-covariates-rows": BGNBD(segments="channel", purchase_covariates=["age"]),
}


def _logp_at(model: pm.Model, points: list[dict]) -> np.ndarray:
    logp = model.compile_logp()
    return np.array([logp(p) for p in points])


@pytest.mark.parametrize("name", list(SPECS))
def test_swapped_inputs_give_the_log_density_of_the_model_built_on_the_new_data(name, monkeypatch):
    spec = SPECS[name]
    if name.endswith("profiles"):  # cut these small data sets by covariate profile
        monkeypatch.setattr(compress_module, "MIN_PROFILE_ROWS", 0)
        monkeypatch.setattr(compress_module, "MAX_PROFILE_BLOCKS", 4)
    if name.endswith("rows"):
        monkeypatch.setattr(likelihood_module, "MAX_SEGMENT_BLOCKS", 1)
        assert likelihood_module.rows_by_segment(spec.prepare(_rfm(1)))
    template, other = spec.prepare(_rfm(1)), spec.prepare(_rfm(2, n=420))
    assert structure(template) == structure(other)
    blocks = [template] if not template.segmented else [b for *_, b in template.segment_blocks()]
    assert all((b.profile_blocks() is not None) == name.endswith("profiles") for b in blocks)
    assert template.n_rows != other.n_rows  # shapes change, structure does not
    shared = SharedRFM(template)
    model = spec.build(shared)
    direct = spec.build(other)
    rng = np.random.default_rng(0)
    start = direct.initial_point()
    points = [
        {k: v + rng.normal(0, 0.3, size=np.shape(v)) for k, v in start.items()} for _ in range(5)
    ]
    with model:
        pm.set_data(shared.inputs(other))
    np.testing.assert_allclose(_logp_at(model, points), _logp_at(direct, points), rtol=1e-11)


def test_inputs_of_data_with_another_structure_are_refused():
    spec = BGNBD(segments="channel")
    template = spec.prepare(_rfm(1))
    rfm = _rfm(2)
    rfm["channel"] = np.where(rfm["channel"] == "tv", "web", rfm["channel"])
    other = spec.prepare(rfm)
    shared = SharedRFM(template)
    with pm.Model():
        shared.factor("frequency")
    with pytest.raises(ValueError, match="another structure"):
        shared.inputs(other)


@pytest.fixture(scope="module")
def many():
    datasets, seeds = [_rfm(11), _rfm(12, n=400)], [1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 150 draws: low ESS expected
        first = BGNBD().fit_many(datasets, seeds=seeds, **FAST)
        again = BGNBD().fit_many(datasets, seeds=seeds, **FAST)
        direct = [
            BGNBD().fit(d, seed=s, progressbar=False, **FAST)
            for d, s in zip(datasets, seeds, strict=True)
        ]
    return datasets, first, again, direct


@pytest.mark.slow
def test_fit_many_returns_one_fit_per_data_set_in_order(many):
    datasets, first, _, direct = many
    assert len(first) == len(datasets)
    for fitted, single in zip(first, direct, strict=True):
        assert fitted.fingerprint == single.fingerprint
        assert fitted.settings["shared_inputs"] is True
        assert fitted.posterior.sizes == single.posterior.sizes


@pytest.mark.slow
def test_fit_many_is_reproducible_and_agrees_with_fit(many):
    _, first, again, direct = many
    for one, two, single in zip(first, again, direct, strict=True):
        for name in ("r", "alpha", "a", "b"):
            np.testing.assert_array_equal(one.posterior[name], two.posterior[name])
            # same posterior: means within a few Monte-Carlo standard errors of fit()'s
            draws, ref = one.posterior[name].to_numpy(), single.posterior[name].to_numpy()
            se = np.hypot(draws.std(), ref.std()) / np.sqrt(50)  # ESS >= 50 of 300 draws
            assert abs(draws.mean() - ref.mean()) < 4 * se, name


@pytest.mark.slow
def test_fit_many_recompiles_for_a_new_structure_and_fits_every_segment():
    datasets = [_rfm(21), _rfm(22)]
    datasets[1]["channel"] = np.where(datasets[1]["channel"] == "tv", "web", "store")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = GammaGamma(segments="channel", pooling="none").fit_many(datasets, seeds=5, **FAST)
    assert [f.segment_levels for f in fits] == [("store", "tv", "web"), ("store", "web")]
    assert all(np.isfinite(f.posterior["p"]).all() for f in fits)


@pytest.mark.slow
def test_fit_many_fits_one_by_one_where_nothing_is_compiled_for_nutpie():
    """MAP (and PyMC's sampler, and the Pareto/NBD, whose graph groups rows by concrete
    value pairs) take the plain ``fit`` path: the same answer as ``fit``."""
    assert not ParetoNBD.reusable_compilation
    (fitted,) = BGNBD().fit_many([_rfm(31)], seeds=[4], method="map")
    single = BGNBD().fit(_rfm(31), seed=4, method="map", progressbar=False)
    assert "shared_inputs" not in fitted.settings
    for name in ("r", "alpha", "a", "b"):
        np.testing.assert_array_equal(fitted.posterior[name], single.posterior[name])


def test_fit_many_checks_the_seeds():
    with pytest.raises(ValueError, match="2 seeds for 1 data sets"):
        BGNBD().fit_many([_rfm(1)], seeds=[1, 2])
