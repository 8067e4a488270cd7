"""Recovery of segment-level parameters (simulate, fit, compare with the truth).

Oracle: the simulators, run per segment with known parameters
(:func:`clvbayes.simulate.simulate_segments`). Four segments of very different sizes
(50 to 4,000 customers; the issue's five segments up to 20,000 are kept for the study in
``benchmarks/study_segment_recovery.py``, whose 20-replication results are in
``benchmarks/RESULTS.md``) whose true parameters differ on the link scale by up to
+-0.45 (BG/NBD) or +-0.3 (Gamma-Gamma) around a common centre. Five replications give
20 segment fits per parameter (80 intervals for the BG/NBD, 60 for the Gamma-Gamma).
Four segments rather than five: the compilation of a segmented model grows faster than
the number of segments (about 40 s for four, 70 s for five), and it is most of this
test's time; a fit on a compiled model takes seconds. Times are rounded to
whole days, as in transaction logs, so customers share unique rows.

Checks, over replications x segments x parameters, for the BG/NBD and the Gamma-Gamma:

* the partially pooled 90 % intervals cover the truth in at least 80 % of cases;
* the two smallest segments are shrunk toward the population: their partially pooled
  posterior means lie closer to the estimated population centre than the unpooled ones,
  and closer to the truth (RMSE on the link scale).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clvbayes.diagnostics import ConvergenceWarning
from clvbayes.models import BGNBD, GammaGamma
from clvbayes.models.hierarchy import SegmentWarning
from clvbayes.simulate import simulate_segments

SIZES = {"s50": 50, "s150": 150, "s2000": 2000, "s4000": 4000}
REPLICATIONS = 5
SETTINGS = {"draws": 300, "tune": 600, "chains": 2}

# link-scale centre and per-segment offsets (a permutation per parameter: this test's
# five-segment version's, its middle segment s600 left out)
BGNBD_LINKS = {
    "r": (np.log(0.6), [0.3, -0.3, 0.45, -0.45]),
    "purchase_rate": (np.log(0.1), [-0.3, 0.45, 0.0, -0.45]),
    "phi_dropout": (np.log(0.25 / 0.75), [0.45, 0.0, -0.3, 0.3]),
    "kappa_dropout": (np.log(4.0), [0.0, 0.3, -0.45, -0.3]),
}
GG_LINKS = {
    "p": (np.log(6.0), [0.3, -0.3, 0.15, -0.15]),
    "q": (np.log(2.8), [-0.15, 0.3, -0.3, 0.0]),  # log(q - 1)
    "mean_spend": (np.log(40.0), [0.0, 0.15, 0.3, -0.15]),
}


TRUE_LINK = {k: c + np.asarray(o) for k, (c, o) in {**BGNBD_LINKS, **GG_LINKS}.items()}


def _datasets() -> list[pd.DataFrame]:
    truth = BGNBD().from_link_values(TRUE_LINK) | GammaGamma().from_link_values(TRUE_LINK)
    labels = np.array(list(SIZES))
    out = []
    for rep in range(REPLICATIONS):
        sim = simulate_segments(
            truth, list(SIZES.values()), (52.0, 65.0), rng=100 + rep, time_step=1 / 7
        )
        sim["segment"] = labels[sim["segment"]]
        out.append(pd.DataFrame(sim))
    return out


def _recovery(spec_class, datasets) -> dict:
    covered, estimates = [], {}
    names = tuple(spec_class.segment_links)
    for pooling in ("partial", "none"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (ConvergenceWarning, SegmentWarning))
            spec = spec_class(segments="segment", pooling=pooling)
            fits = spec.fit_many(datasets, seeds=list(range(len(datasets))), **SETTINGS)
        means, centres = [], []
        for fit in fits:
            order = [fit.segment_levels.index(s) for s in SIZES]
            draws = {
                k: v.reshape(-1, v.shape[-1])[:, order]
                for k, v in spec.link_values(fit.params()).items()
            }
            # a Gamma-Gamma draw with q <= 1 has no mean spend (its link is NaN): a small
            # segment fitted alone (no pooling) has a few; they are left out of its mean
            for name, values in draws.items():
                low, high = np.nanquantile(values, [0.05, 0.95], axis=0)
                if pooling == "partial":
                    covered.extend((low <= TRUE_LINK[name]) & (TRUE_LINK[name] <= high))
            means.append(np.array([np.nanmean(draws[n], axis=0) for n in names]))
            if pooling == "partial":
                post = fit.posterior
                centres.append(np.array([float(post[f"{n}_mu"].mean()) for n in names]))
        estimates[pooling] = np.array(means)  # (replication, parameter, segment)
        if centres:
            estimates["centre"] = np.array(centres)[..., None]
    truth = np.array([TRUE_LINK[n] for n in names])
    small = slice(0, 2)
    rmse = {
        k: float(np.sqrt(np.mean((estimates[k] - truth)[..., small] ** 2)))
        for k in ("partial", "none")
    }
    pull = {
        k: float(np.mean(np.abs(estimates[k] - estimates["centre"])[..., small]))
        for k in ("partial", "none")
    }
    return {"coverage": float(np.mean(covered)), "n": len(covered), "rmse": rmse, "pull": pull}


@pytest.fixture(scope="module")
def datasets():
    return _datasets()


@pytest.mark.slow
@pytest.mark.parametrize("spec_class", [BGNBD, GammaGamma], ids=lambda c: c.kind)
def test_partial_pooling_covers_segment_truth_and_shrinks_small_segments(spec_class, datasets):
    res = _recovery(spec_class, datasets)
    print(f"{spec_class.kind}: {res}")
    assert res["n"] == REPLICATIONS * len(SIZES) * len(spec_class.segment_links)
    assert res["coverage"] >= 0.8
    # shrinkage: the small segments' estimates sit nearer the population centre ...
    assert res["pull"]["partial"] < res["pull"]["none"]
    # ... and nearer the truth than on their own data alone
    assert res["rmse"]["partial"] < res["rmse"]["none"]
