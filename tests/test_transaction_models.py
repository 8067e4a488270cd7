"""Customer-level predictions for every transaction model (BG/NBD, MBG/NBD, Pareto/NBD).

Oracles: pymc-marketing 1.3's ``ParetoNBDModel`` / ``ModifiedBetaGeoModel`` on the same
posterior draws (analytic P(alive) and expected purchases), and the analytic expectations
of :mod:`clvbayes.math` for the simulated predictive draws (Monte Carlo).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvbayes
from clvbayes.math import mbgnbd, pareto_nbd
from clvbayes.math.family import FAMILIES, TransactionFamily, family
from clvbayes.models import BGNBD, MBGNBD, FittedModel, GammaGamma, ParetoNBD

CENTRES = {
    "ParetoNBD": (ParetoNBD, {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}),
    "MBGNBD": (MBGNBD, {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}),
}
GG = {"p": 6.25, "q": 3.74, "v": 15.44}


def fake_fit(spec, centre: dict[str, float], chains: int = 2, draws: int = 30, seed: int = 1):
    """A FittedModel whose posterior is ``centre`` times log-normal noise (sd 5 %)."""
    rng = np.random.default_rng(seed)
    ds = xr.Dataset(
        {
            k: (("chain", "draw"), v * np.exp(0.05 * rng.standard_normal((chains, draws))))
            for k, v in centre.items()
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    return FittedModel(
        spec=spec, idata=xr.DataTree.from_dict({"posterior": ds}), data=None, fingerprint="x"
    )


@pytest.fixture(scope="module")
def customers(cdnow_summary_csv) -> pd.DataFrame:
    d = cdnow_summary_csv.iloc[::12].reset_index(drop=True)  # 197 varied customers
    return d[["customer_id", "frequency", "recency", "T", "monetary_value"]]


def test_every_transaction_model_is_dispatched():
    transaction = {k for k, f in FAMILIES.items() if isinstance(f, TransactionFamily)}
    assert transaction == {"BGNBD", "MBGNBD", "ParetoNBD"}
    for kind in transaction:
        assert family(kind, TransactionFamily).kind == kind
    with pytest.raises(TypeError, match="expected a transaction model"):
        family("GammaGamma", TransactionFamily)


@pytest.mark.parametrize("kind", list(CENTRES))
def test_p_alive_and_expected_purchases_match_pymc_marketing_on_the_same_draws(kind, customers):
    from pymc_marketing.clv import ModifiedBetaGeoModel, ParetoNBDModel

    spec, centre = CENTRES[kind]
    fit = fake_fit(spec(), centre)
    theirs_cls = ParetoNBDModel if kind == "ParetoNBD" else ModifiedBetaGeoModel
    data = customers[["customer_id", "frequency", "recency", "T"]]
    theirs = theirs_cls()
    theirs.build_model(data)
    theirs.idata = xr.DataTree.from_dict({"posterior": fit.posterior})
    order = ("chain", "draw", "customer_id")
    their_alive = theirs.expected_probability_alive(data).transpose(*order).to_numpy()
    their_mean = theirs.expected_purchases(data, future_t=10).transpose(*order).to_numpy()
    ours_alive = clvbayes.p_alive(fit, data)
    ours_mean = clvbayes.expected_purchases(fit, data, 10.0)
    assert ours_alive.dims == order
    np.testing.assert_allclose(ours_alive, their_alive, rtol=1e-8)
    np.testing.assert_allclose(ours_mean, their_mean, rtol=1e-8)


@pytest.mark.parametrize("kind", list(CENTRES))
def test_predictive_draws_match_analytic_expectations(kind, customers):
    """Simulated purchases average to E[Y(h)] and CLV draws to the conditional-mean CLV
    (with discounting: purchase times are simulated, expectations by quadrature)."""
    spec, centre = CENTRES[kind]
    fit = fake_fit(spec(), centre, draws=200)
    spend = fake_fit(GammaGamma(), GG, draws=200, seed=2)
    res = clvbayes.predict_customers(
        fit, customers, horizon=52.0, spend_fit=spend, annual_discount=0.15,
        n_draws=4000, seed=3, ranks=False,
    )  # fmt: skip
    draws = res.draws
    purchases = draws["purchases"].to_numpy().reshape(-1, len(customers)).astype(float)
    expected = draws["expected_purchases"].to_numpy().reshape(-1, len(customers))
    diff = (purchases - expected).sum(axis=1)  # per draw, summed over customers
    assert abs(diff.mean()) < 4.5 * diff.std(ddof=1) / np.sqrt(diff.size)
    clv = draws["clv"].to_numpy().reshape(-1, len(customers)).sum(axis=1)
    conditional = res.summary["clv_conditional_mean"].sum()
    assert abs(clv.mean() - conditional) < 4.5 * clv.std(ddof=1) / np.sqrt(clv.size)
    # the analytic columns are the math module's, per draw
    maths = family(kind, TransactionFamily)
    params = tuple(fit.params()[k].reshape(-1)[:, None] for k in maths.params)
    data = tuple(customers[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    alive = maths.p_alive(*params, *data)
    np.testing.assert_allclose(
        res.summary["p_alive"], alive.mean(axis=0), rtol=1e-5
    )  # float32 draws
    assert np.all(draws["purchases"].to_numpy() >= 0)


def test_pareto_nbd_discounted_expectation_reduces_to_expected_purchases():
    args = (0.553, 10.578, 0.606, 11.669, 3.0, 20.0, 38.0)
    plain = pareto_nbd.expected_purchases(*args, 52.0)
    assert pareto_nbd.expected_discounted_purchases(*args, 52.0, 0.0) == pytest.approx(plain)
    discounted = pareto_nbd.expected_discounted_purchases(*args, 52.0, 0.01)
    assert 0.6 * plain < discounted < plain
    mbg = (0.525, 6.183, 0.891, 1.614, 3.0, 20.0, 38.0)
    assert mbgnbd.expected_discounted_purchases(*mbg, 52.0, 0.0) == pytest.approx(
        mbgnbd.expected_purchases(*mbg, 52.0)
    )


def test_non_transaction_models_are_rejected_clearly(customers):
    gg = fake_fit(GammaGamma(), GG)
    with pytest.raises(TypeError, match="fit: expected a fitted transaction model"):
        clvbayes.predict_customers(gg, customers, horizon=10.0)
    with pytest.raises(TypeError, match="fit: expected a fitted transaction model"):
        clvbayes.p_alive(gg, customers)
    bg = fake_fit(BGNBD(), {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4})
    assert clvbayes.p_alive(bg, customers).shape == (2, 30, len(customers))
