"""PSIS-LOO per customer from unique rows (oracle: arviz ``az.loo`` on expanded data)."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
import xarray as xr

from clvbayes.comparison import compare, loo
from clvbayes.diagnostics import ConvergenceWarning
from clvbayes.models import BGNBD, MBGNBD, GammaGamma
from clvbayes.models.pareto_nbd import ParetoNBD

QUICK = {"draws": 200, "tune": 200, "chains": 2, "progressbar": False}


def _fit(spec, rfm, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return spec.fit(rfm, seed=seed, **QUICK)


@pytest.fixture(scope="module")
def fits(small_rfm):
    return {
        "BGNBD": _fit(BGNBD(), small_rfm, 1),
        "MBGNBD": _fit(MBGNBD(), small_rfm, 2),
        "ParetoNBD": _fit(ParetoNBD(), small_rfm, 3),
    }


@pytest.mark.slow
def test_row_loo_matches_arviz_loo_on_expanded_customers(fits):
    fitted = fits["ParetoNBD"]
    assert fitted.data.n_rows < fitted.data.n_customers  # the test needs shared rows
    expanded = fitted.log_likelihood(per_customer=True)
    tree = xr.DataTree.from_dict(
        {"posterior": fitted.posterior, "log_likelihood": xr.Dataset({"y": expanded})}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        full = az.loo(tree, pointwise=True)
    rows = loo(fitted)
    assert rows.elpd == pytest.approx(float(full.elpd), rel=1e-8, abs=1e-8)
    assert rows.p_loo == pytest.approx(float(full.p), rel=1e-8)
    assert rows.se == pytest.approx(float(full.se), rel=1e-8)
    per_customer = rows.per_customer(fitted.data.inverse)
    np.testing.assert_allclose(per_customer["pareto_k"], np.asarray(full.pareto_k), atol=1e-10)


@pytest.mark.slow
def test_compare_table_ranks_and_weighted_differences(fits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = compare(fits)
    table = result.table
    assert list(table["rank"]) == [0, 1, 2]
    assert table["elpd_loo"].is_monotonic_decreasing
    assert table["elpd_diff"].iloc[0] == 0.0 and (table["elpd_diff"].iloc[1:] > 0).all()
    assert table["weight"].sum() == pytest.approx(1.0)
    assert table["dse"].iloc[0] == 0.0
    best, other = table.index[0], table.index[1]
    diff = fits[best].log_likelihood(per_customer=False)  # dse oracle: expanded differences
    a = result.loo[best].per_customer(fits[best].data.inverse)["elpd_loo"].to_numpy()
    b = result.loo[other].per_customer(fits[other].data.inverse)["elpd_loo"].to_numpy()
    assert diff.sizes["row"] == fits[best].data.n_rows
    assert table.loc[other, "dse"] == pytest.approx(
        np.sqrt(a.size * np.var(a - b, ddof=1)), rel=1e-10
    )
    assert table.loc[other, "elpd_diff"] == pytest.approx((a - b).sum(), rel=1e-10)


@pytest.mark.slow
def test_compare_rejects_models_fitted_to_different_customers(fits, small_rfm):
    other = _fit(BGNBD(), small_rfm.iloc[:300], 4)
    with pytest.raises(ValueError, match="different customers"):
        compare({"a": fits["BGNBD"], "b": other})


@pytest.mark.slow
def test_compare_gamma_gamma_models(small_rfm):
    first = _fit(GammaGamma(), small_rfm, 5)
    second = _fit(
        GammaGamma(priors={"p": {"dist": "HalfNormal", "kwargs": {"sigma": 5.0}}}), small_rfm, 6
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = compare({"default": first, "halfnormal_p": second})
    assert np.isfinite(result.table["elpd_loo"]).all()
    assert result.loo["default"].n_customers == first.data.n_customers


def test_loo_of_a_map_fit_is_a_clear_error(small_rfm):
    fitted = BGNBD().fit(small_rfm, method="map")
    with pytest.raises(ValueError, match="posterior draws"):
        loo(fitted)
