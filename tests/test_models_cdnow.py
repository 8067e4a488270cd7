"""Published values on the CDNOW sample (2,357 customers, weeks, calibration to 1997-09-30).

Oracles: Fader, Hardie & Lee (2005) for the BG/NBD; Fader & Hardie (2013) for the
Gamma-Gamma; the exact-RFM maximum-likelihood values as R's BTYD and CLVTools report them.
"""

from __future__ import annotations

import numpy as np
import pytest

import clvbayes
from clvbayes.datasets import load_cdnow
from clvbayes.models import BGNBD, GammaGamma
from clvbayes.priors import FLAT_PRIORS

BGNBD_MLE = {"r": 0.2425945, "alpha": 4.4136027, "a": 0.7929218, "b": 2.4259057}
BGNBD_MLE_LL = -9582.429
BGNBD_PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GG_MLE = {"p": 6.24957, "q": 3.74422, "v": 15.44352}
GG_MLE_LL = -4055.9177
GG_PUBLISHED = {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.fixture(scope="module")
def cdnow_sample_rfm():
    tx = load_cdnow("sample")
    return clvbayes.rfm_summary(
        tx,
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        calibration_end="1997-09-30",
    )


def _point(fitted) -> dict[str, float]:
    return {k: float(v.ravel()[0]) for k, v in fitted.params().items()}


def _total_loglik(fitted) -> float:
    return float(fitted.log_likelihood().to_numpy().ravel() @ fitted.data.counts)


@pytest.mark.slow
def test_bgnbd_flat_map_matches_btyd_mle_and_fader_hardie_lee_2005(cdnow_sample_rfm):
    fitted = BGNBD(priors=FLAT_PRIORS("r", "alpha", "a", "b")).fit(cdnow_sample_rfm, method="map")
    point = _point(fitted)
    for name, mle in BGNBD_MLE.items():
        assert point[name] == pytest.approx(mle, rel=1e-3), name
        assert round(point[name], 3) == pytest.approx(BGNBD_PUBLISHED[name], abs=1.5e-3)
    assert _total_loglik(fitted) == pytest.approx(BGNBD_MLE_LL, abs=1e-3)
    assert round(_total_loglik(fitted), 1) == -9582.4  # the paper's figure


def test_gamma_gamma_flat_map_matches_fader_hardie_2013(cdnow_sample_rfm):
    fitted = GammaGamma(priors=FLAT_PRIORS("p", "q", "v")).fit(cdnow_sample_rfm, method="map")
    assert fitted.data.n_customers == 946  # the repeat customers
    point = _point(fitted)
    for name, mle in GG_MLE.items():
        assert point[name] == pytest.approx(mle, rel=1e-3), name
        assert point[name] == pytest.approx(GG_PUBLISHED[name], abs=6e-3)
    assert _total_loglik(fitted) == pytest.approx(GG_MLE_LL, abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "mle", "tight"),
    [(BGNBD(), BGNBD_MLE, ("r", "alpha")), (GammaGamma(), GG_MLE, ())],
    ids=["BGNBD", "GammaGamma"],
)
def test_default_prior_posterior_covers_the_mle(cdnow_sample_rfm, spec, mle, tight):
    fitted = spec.fit(cdnow_sample_rfm, seed=2005, progressbar=False)
    assert fitted.problems == ()
    post = fitted.posterior
    for name, value in mle.items():
        low, high = np.quantile(post[name].to_numpy(), [0.05, 0.95])
        assert low < value < high, f"{name}: 90% interval [{low:.4g}, {high:.4g}] misses {value}"
    for name in tight:
        assert float(post[name].mean()) == pytest.approx(mle[name], rel=0.03), name


@pytest.mark.slow
def test_saved_cdnow_master_fit_is_small_and_round_trips(tmp_path):
    """pymc-marketing users report saved CLV models of hundreds of MB; a 4 x 1000-draw
    CDNOW-master BG/NBD (23,570 customers) with its data must stay under 2 MB."""
    tx = load_cdnow("master")
    rfm = clvbayes.rfm_summary(
        tx, customer_col="customer_id", date_col="date", calibration_end="1997-09-30"
    )
    fitted = BGNBD().fit(rfm, draws=1000, tune=300, chains=4, seed=3, progressbar=False)
    path = tmp_path / "master.nc"
    fitted.save(path)
    assert path.stat().st_size < 2 * 2**20
    again = clvbayes.load(path)
    for name, values in fitted.params().items():
        np.testing.assert_array_equal(again.params()[name], values)
    assert again.data.n_customers == 23_570
