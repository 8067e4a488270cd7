"""Fast smoke tests: every model family fits and predicts in seconds (part of `make test-fast`).

The NUTS fits of each family are in tests marked ``slow``; these MAP fits keep the fast set
able to catch a broken model graph. Oracle: with flat priors the MAP is the maximum-
likelihood estimate, so the numpy log-likelihood of :mod:`clvbayes.math` (independent of
the PyMC graph the fit optimised) must be lower at every nearby parameter point.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.math import bgnbd, gamma_gamma, mbgnbd, pareto_nbd
from clvbayes.models import BGNBD, MBGNBD, GammaGamma, ParetoNBD
from clvbayes.priors import FLAT_PRIORS

# family -> (spec class, numpy log-likelihood of one customer's data given the parameters)
FAMILIES = {
    "BGNBD": (BGNBD, lambda p, d: bgnbd.loglik(p["r"], p["alpha"], p["a"], p["b"], *d)),
    "MBGNBD": (MBGNBD, lambda p, d: mbgnbd.loglik(p["r"], p["alpha"], p["a"], p["b"], *d)),
    "ParetoNBD": (
        ParetoNBD,
        lambda p, d: pareto_nbd.loglik(p["r"], p["alpha"], p["s"], p["beta"], *d),
    ),
    "GammaGamma": (GammaGamma, lambda p, d: gamma_gamma.loglik(p["p"], p["q"], p["v"], *d)),
}


def _data(kind: str, rfm: pd.DataFrame) -> tuple[np.ndarray, ...]:
    if kind == "GammaGamma":
        repeat = rfm[rfm["frequency"] > 0]
        return repeat["frequency"].to_numpy(float), repeat["monetary_value"].to_numpy(float)
    return tuple(rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))


def _point(fitted) -> dict[str, float]:
    return {k: float(np.ravel(v)[0]) for k, v in fitted.params().items()}


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_flat_map_fit_is_the_numpy_likelihood_maximum_and_predicts(kind, small_rfm):
    spec_class, loglik = FAMILIES[kind]
    fitted = spec_class(priors=FLAT_PRIORS(*spec_class.params)).fit(small_rfm, method="map", seed=1)
    assert fitted.kind == kind
    point = _point(fitted)
    assert set(point) == set(spec_class.params)
    assert all(np.isfinite(v) and v > 0 for v in point.values()), point
    data = _data(kind, small_rfm)
    best = float(np.sum(loglik(point, data)))
    assert np.isfinite(best)
    for name in point:
        for factor in (0.98, 1.02):  # 2 %: the log-likelihood drops by >= 0.004
            moved = {**point, name: point[name] * factor}
            assert float(np.sum(loglik(moved, data))) < best, (name, factor)
    if kind == "GammaGamma":
        return
    rfm = small_rfm.iloc[:50]
    summary = clvbayes.predict_customers(fitted, rfm, horizon=52.0, n_draws=20, seed=3).summary
    assert len(summary) == len(rfm)
    assert summary["p_alive"].between(0, 1).all()
    assert (summary["expected_purchases"] >= 0).all()
    assert np.isfinite(summary["purchases_mean"]).all()
    # frequent buyers are expected to buy more (over these 50, a clearly positive relation)
    assert summary["expected_purchases"].corr(rfm["frequency"].reset_index(drop=True)) > 0


def test_segmented_model_fits_by_map_with_one_parameter_set_per_segment(small_rfm):
    rfm = small_rfm.assign(channel=np.where(small_rfm.index % 3 == 0, "web", "store"))
    fitted = BGNBD(segments="channel").fit(rfm, method="map", seed=2)
    assert fitted.segment_levels == ("store", "web")
    for name in BGNBD.params:
        value = fitted.params()[name]
        assert value.shape == (1, 1, 2), name
        assert np.all(np.isfinite(value)) and np.all(value > 0), name
    assert "r_sigma" in fitted.posterior
