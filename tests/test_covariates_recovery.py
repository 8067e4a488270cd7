"""Recovery of known covariate effects on simulated data (binary and continuous).

Oracle: the coefficients the data were simulated with (:func:`clvbayes.simulate.
simulate_covariates`, the BG/NBD process with each customer's ``alpha_i = alpha
exp(-γ'z_i)``). 30 data sets of 500 customers, each fitted by NUTS through
``BGNBD.fit_many`` (one compilation); the 90 % intervals of the two coefficients must
cover the truth in at least 80 % of the 60 cases (at a true rate of 90 %, fewer than 48
hits has probability 0.3 %).

"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clvbayes.diagnostics import ConvergenceWarning
from clvbayes.models import BGNBD
from clvbayes.simulate import simulate_covariates

TRUTH = {"r": 0.7, "alpha": 5.0, "a": 0.8, "b": 2.5}
COEFFICIENTS = {"purchase_coefficient": {"web": 0.5, "age": -0.3}}


def _data(seed: int, n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    covariates = {"web": (rng.random(n) < 0.4).astype(float), "age": rng.normal(0.0, 1.0, n)}
    T = np.round(rng.uniform(30, 50, n) * 7) / 7
    sim = simulate_covariates("BGNBD", TRUTH, COEFFICIENTS, covariates, T, rng=rng)
    recency = np.floor(sim["recency"] * 7) / 7
    return pd.DataFrame({"frequency": sim["frequency"], "recency": recency, "T": T, **covariates})


@pytest.mark.slow
def test_nuts_intervals_cover_known_binary_and_continuous_coefficients():
    datasets = [_data(seed) for seed in range(30)]
    spec = BGNBD(purchase_covariates=["web", "age"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 2 x 250 draws: low ESS
        fits = spec.fit_many(datasets, seeds=3, draws=250, tune=250, chains=2)
    hits, means = [], []
    for fit in fits:
        assert fit.settings["shared_inputs"] is True  # one compilation
        draws = fit.posterior["purchase_coefficient"].to_numpy().reshape(-1, 2)
        low, high = np.quantile(draws, [0.05, 0.95], axis=0)
        truth = np.array(list(COEFFICIENTS["purchase_coefficient"].values()))
        hits.append((low <= truth) & (truth <= high))
        means.append(draws.mean(axis=0))
    coverage = np.mean(hits)
    assert coverage >= 0.8, coverage
    # no systematic shrinkage by the Normal(0, 1)-per-sd prior: the mean over data sets
    # is within 3 standard errors of the truth
    means = np.array(means)
    error = means.mean(axis=0) - truth
    assert np.all(np.abs(error) < 3 * means.std(axis=0) / np.sqrt(len(fits))), error
