"""Prior and posterior predictive checks of the repeat-purchase histogram."""

from __future__ import annotations

import numpy as np
import pytest

from clvbayes import ppc
from clvbayes.math import bgnbd
from clvbayes.models import BGNBD

MLE = {"r": 0.2425945, "alpha": 4.4136027, "a": 0.7929218, "b": 2.4259057}


def test_posterior_check_at_the_mle_reproduces_fader_hardie_lee_2005_figure(cdnow_summary_csv):
    params = {k: np.full((1, 400), v) for k, v in MLE.items()}
    check = ppc.frequency_histogram_check(params, cdnow_summary_csv, n_draws=None, seed=1)
    assert list(check.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert check["observed"].sum() == len(cdnow_summary_csv)
    # the simulated mean equals the analytic expectation sum_i P(X(T_i) = k)
    T = cdnow_summary_csv["T"].to_numpy()
    for k in range(7):
        analytic = bgnbd.prob_purchases(*MLE.values(), T, k).sum()
        sd = np.sqrt(analytic) / np.sqrt(400)
        assert check["predicted_mean"].iloc[k] == pytest.approx(analytic, abs=5 * sd + 0.5)
    # the papers' fit: zero-repeat customers predicted within 3% of the 1,411 observed
    assert check.loc["0", "predicted_mean"] == pytest.approx(1411, rel=0.03)
    assert (check["predicted_low"] <= check["predicted_high"]).all()


def test_prior_check_is_wide_but_covers_the_data(cdnow_summary_csv):
    prior = ppc.prior_draws(BGNBD(), cdnow_summary_csv, n_draws=150, seed=3)
    assert set(prior) == {"r", "alpha", "a", "b"}
    assert prior["r"].shape == (1, 150)
    check = ppc.frequency_histogram_check(prior, cdnow_summary_csv, seed=3)
    # weakly informative: the observed count of every bin is inside the prior's 90% range
    assert (check["predicted_low"] <= check["observed"]).all()
    assert (check["observed"] <= check["predicted_high"]).all()
    # and the range is wide (the prior does not pin the data down)
    assert (check.loc["0", "predicted_high"] - check.loc["0", "predicted_low"]) > 500
