"""CLVTools' published Pareto/NBD fits of its apparel data, with and without covariates.

Oracle: CLVTools 0.11.2 (vignette; the data are CLVTools' simulated ``apparelTrans`` and
``apparelStaticCov``, read from ``../shared/data/external``): weekly units, estimation to
2006-12-31 (``estimation.split = 104``), gender and channel in both processes,
maximum likelihood.

Tolerance. Our flat-prior MAP reaches the likelihood's maximum to ~1e-9 in the
log-likelihood. CLVTools' published point lies 7e-6 below that maximum (its optimizer,
L-BFGS-B through optimx, stops when the relative change of the log-likelihood falls
under 2.2e-9, i.e. 1.3e-5 here), and along this flat ridge such a point differs from the
maximum by up to 2e-4 relatively in r, alpha, beta and 1e-3 absolutely in the weakest
coefficient (life.Gender). The test checks exactly that: the published point's
log-likelihood is within 1e-5 below ours, ours is not below it, and the estimates agree
to those tolerances; the log-likelihood agrees with the published value to 1e-3 (it does
to 1.4e-5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import external_file

from clvbayes.data.rfm import rfm_summary
from clvbayes.models import ParetoNBD
from clvbayes.priors import FLAT_PRIORS

COVARIATES = ["gender", "channel"]
PUBLISHED = {
    "r": 1.8387,
    "alpha": 92.9435,
    "s": 0.5913,
    "beta": 49.5050,
    "purchase_coefficient": [0.2860, 0.6239],  # trans.Gender, trans.Channel
    "dropout_coefficient": [-0.6428, 0.7902],  # life.Gender, life.Channel
    "loglik": -5821.0627,
}
PUBLISHED_PLAIN = {
    "r": 1.4489768,
    "alpha": 48.6360845,
    "s": 0.5612598,
    "beta": 46.8843633,
    "loglik": -5848.0978,
}


@pytest.fixture(scope="module")
def apparel() -> pd.DataFrame:
    rfm = rfm_summary(
        external_file("apparel_trans.csv"),
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        calibration_end="2006-12-31",
        time_unit="W",
    )
    static = pd.read_csv(external_file("apparel_static_cov.csv"))
    return rfm.merge(static, on="customer_id", validate="one_to_one")


def _loglik(fit) -> float:
    return float(fit.log_likelihood(per_customer=True).sum())


def _value(fit, name: str) -> np.ndarray:
    return fit.posterior[name].to_numpy().reshape(-1)


@pytest.mark.slow
def test_pareto_nbd_with_covariates_matches_clvtools_published_apparel_fit(apparel):
    names = ("r", "alpha", "s", "beta", "purchase_coefficient", "dropout_coefficient")
    spec = ParetoNBD(
        priors=FLAT_PRIORS(*names), purchase_covariates=COVARIATES, dropout_covariates=COVARIATES
    )
    fit = spec.fit(apparel, method="map", seed=1)
    ours = _loglik(fit)
    assert ours == pytest.approx(PUBLISHED["loglik"], abs=1e-3)
    at_published = {k: np.asarray(PUBLISHED[k], dtype=float) for k in names}
    theirs = float(spec.weighted_loglik(at_published, spec.prepare(apparel)))
    assert theirs <= ours <= theirs + 1e-5  # the same maximum; CLVTools stopped 7e-6 short
    for name in ("r", "alpha", "s", "beta"):
        assert _value(fit, name)[0] == pytest.approx(PUBLISHED[name], rel=3e-4), name
    for name in ("purchase_coefficient", "dropout_coefficient"):
        np.testing.assert_allclose(_value(fit, name), PUBLISHED[name], atol=1.5e-3, rtol=0)


@pytest.mark.slow
def test_pareto_nbd_without_covariates_matches_clvtools_published_apparel_fit(apparel):
    spec = ParetoNBD(priors=FLAT_PRIORS("r", "alpha", "s", "beta"))
    fit = spec.fit(apparel, method="map", seed=1)
    assert _loglik(fit) == pytest.approx(PUBLISHED_PLAIN["loglik"], abs=1e-3)
    for name in ("r", "alpha", "s", "beta"):
        assert _value(fit, name)[0] == pytest.approx(PUBLISHED_PLAIN[name], rel=1e-4), name
