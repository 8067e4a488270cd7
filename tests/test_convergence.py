"""R-hat, bulk/tail ESS and E-BFMI of clvbayes.math.convergence against ArviZ's.

Oracle: ``arviz_stats`` (the implementation of Vehtari et al. 2021 that ``az.summary``
uses), on chains with known features: independent draws, strong autocorrelation, an odd
number of draws (the split drops the middle one), ties (discrete values), chains that
disagree, a single chain, constant draws, NaN and too few draws.
"""

from __future__ import annotations

import arviz_stats as azs
import numpy as np
import pytest
import xarray as xr

from clvbayes.diagnostics import diagnose
from clvbayes.math import convergence as cv


def _ar1(rng, chains, draws, phi):
    x = np.zeros((chains, draws))
    noise = rng.normal(size=(chains, draws))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def _cases():
    rng = np.random.default_rng(7)
    return {
        "independent": rng.normal(size=(4, 1000)),
        "autocorrelated": _ar1(rng, 4, 1000, 0.95),
        "odd draws": _ar1(rng, 3, 501, 0.5),
        "ties": rng.integers(0, 3, (4, 200)).astype(float),
        "chains disagree": _ar1(rng, 4, 400, 0.3) + np.arange(4)[:, None] * 0.5,
        "one chain": _ar1(rng, 1, 300, 0.7),
        "random walk": np.cumsum(rng.normal(size=(2, 300)), axis=1),
        "heavy tails": rng.standard_t(1.5, size=(4, 500)),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_statistics_equal_arviz(name):
    draws = _cases()[name]
    data = xr.Dataset({"x": (("chain", "draw"), draws)})
    with np.errstate(all="ignore"):
        expected_rhat = float(azs.rhat(data)["x"])
    np.testing.assert_allclose(cv.rhat(draws), expected_rhat, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(
        cv.ess_bulk(draws), float(azs.ess(data, method="bulk")["x"]), rtol=1e-10
    )
    for prob in (0.95, 0.89):
        expected = float(azs.ess(data, method="tail", prob=(1 - prob, prob))["x"])
        np.testing.assert_allclose(cv.ess_tail(draws, prob), expected, rtol=1e-10)


def test_degenerate_draws_give_nan_or_the_draw_count_as_arviz_does():
    constant = np.ones((2, 50))
    assert np.isnan(cv.rhat(constant))
    assert cv.ess_bulk(constant) == cv.ess_tail(constant) == 100.0
    short = np.random.default_rng(0).normal(size=(2, 3))
    with_nan = np.random.default_rng(1).normal(size=(2, 100))
    with_nan[1, 7] = np.nan
    for bad in (short, with_nan):
        assert np.isnan(cv.rhat(bad)) and np.isnan(cv.ess_bulk(bad)) and np.isnan(cv.ess_tail(bad))


def test_bfmi_equals_arviz():
    energy = np.cumsum(np.random.default_rng(3).normal(size=(4, 300)), axis=1)
    tree = xr.DataTree.from_dict(
        {"sample_stats": xr.Dataset({"energy": (("chain", "draw"), energy)})}
    )
    expected = azs.bfmi(tree).to_dataset()["energy"].to_numpy()
    np.testing.assert_allclose(cv.bfmi(energy), expected, rtol=1e-12)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"\(chain, draw\) array, got shape \(10,\)"):
        cv.rhat(np.zeros(10))
    with pytest.raises(ValueError, match=r"prob=0\.3"):
        cv.ess_tail(np.zeros((2, 10)), 0.3)


def test_diagnose_table_equals_arviz_summary():
    rng = np.random.default_rng(11)
    post = xr.Dataset(
        {
            "r": (("chain", "draw"), _ar1(rng, 4, 500, 0.6) + 5.0),
            "f": (("chain", "draw", "period"), rng.normal(size=(4, 500, 3))),
        },
        coords={"period": ["a", "b", "c"]},
    )
    energy = rng.normal(size=(4, 500))
    tree = xr.DataTree.from_dict(
        {
            "posterior": post,
            "sample_stats": xr.Dataset(
                {
                    "energy": (("chain", "draw"), energy),
                    "diverging": (("chain", "draw"), np.zeros((4, 500), bool)),
                }
            ),
        }
    )
    table = diagnose(tree, ["r", "f"]).table
    summary = azs.summary(post, kind="diagnostics", round_to="none")
    assert list(table.index) == ["r", "f[a]", "f[b]", "f[c]"]
    for ours, theirs in zip(table.index, ["r", "f[a]", "f[b]", "f[c]"], strict=True):
        for column in ("r_hat", "ess_bulk", "ess_tail"):
            np.testing.assert_allclose(
                table.loc[ours, column], summary.loc[theirs, column], rtol=1e-10
            )
