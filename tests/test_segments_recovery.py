"""Recovery of segment-level BG/NBD parameters (simulate, fit, compare with the truth).

Oracle: the simulator :func:`clvbayes.simulate.simulate_bgnbd`, run per segment with
known parameters. Five segments of very different sizes (40 to 4,000 customers; the
issue's 20,000 is cut to 4,000 to keep the test short) whose true parameters
differ on the link scale by up to +-0.45 around a common centre.

Checks, over replications x segments x parameters:

* the partially pooled 90 % intervals cover the truth in at least 80 % of cases;
* for the two smallest segments, the partially pooled posterior means are closer to the
  truth (RMSE on the link scale) than the unpooled ones: shrinkage helps where the
  segment's own data say little.

Times are rounded to whole days (as in real transaction logs) so that customers share
unique rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clvbayes.diagnostics import ConvergenceWarning
from clvbayes.models import BGNBD
from clvbayes.models.hierarchy import SegmentWarning
from clvbayes.simulate import simulate_bgnbd

SIZES = {"s40": 40, "s150": 150, "s600": 600, "s2000": 2000, "s4000": 4000}
CENTRE = {"r": np.log(0.6), "alpha": np.log(6.0), "phi": np.log(0.25 / 0.75), "kappa": np.log(4.0)}
# link-scale offsets of each segment (a permutation per parameter)
OFFSETS = {
    "r": [0.3, -0.3, 0.0, 0.45, -0.45],
    "alpha": [-0.3, 0.45, 0.3, 0.0, -0.45],
    "phi": [0.45, 0.0, -0.45, -0.3, 0.3],
    "kappa": [0.0, 0.3, 0.45, -0.45, -0.3],
}
REPLICATIONS = 3
SETTINGS = {"draws": 300, "tune": 400, "chains": 2, "progressbar": False}


def _truth() -> pd.DataFrame:
    link = {k: CENTRE[k] + np.asarray(v) for k, v in OFFSETS.items()}
    phi = 1 / (1 + np.exp(-link["phi"]))
    kappa = np.exp(link["kappa"])
    return pd.DataFrame(
        {
            "r": np.exp(link["r"]),
            "alpha": np.exp(link["alpha"]),
            "a": phi * kappa,
            "b": (1 - phi) * kappa,
        },
        index=list(SIZES),
    )


def _simulate(truth: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for label, n in SIZES.items():
        p = truth.loc[label]
        T = (52 + rng.integers(0, 13 * 7, size=n) / 7.0).astype(float)  # 52-65 weeks
        sim = simulate_bgnbd(p["r"], p["alpha"], p["a"], p["b"], T, rng=rng)
        recency = np.floor(sim["recency"] * 7.0) / 7.0  # whole days
        parts.append(
            pd.DataFrame(
                {"frequency": sim["frequency"], "recency": recency, "T": T, "segment": label}
            )
        )
    return pd.concat(parts, ignore_index=True)


def _link(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Draws on the link scale: log r, log alpha, logit phi, log kappa."""
    a, b = params["a"], params["b"]
    return {
        "r": np.log(params["r"]),
        "alpha": np.log(params["alpha"]),
        "phi": np.log(a / b),
        "kappa": np.log(a + b),
    }


@pytest.fixture(scope="module")
def recovery():
    truth = _truth()
    true_link = {k: CENTRE[k] + np.asarray(v) for k, v in OFFSETS.items()}
    covered, errors = [], {"partial": [], "none": []}
    divergences = 0
    for rep in range(REPLICATIONS):
        rfm = _simulate(truth, seed=100 + rep)
        for pooling in ("partial", "none"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", (ConvergenceWarning, SegmentWarning))
                fit = BGNBD(segments="segment", pooling=pooling).fit(rfm, seed=rep, **SETTINGS)
            divergences += fit.diagnostics().divergences if pooling == "partial" else 0
            order = [fit.segment_levels.index(s) for s in SIZES]
            draws = {
                k: v.reshape(-1, v.shape[-1])[:, order] for k, v in _link(fit.params()).items()
            }
            for name, values in draws.items():
                low, high = np.quantile(values, [0.05, 0.95], axis=0)
                if pooling == "partial":
                    covered.extend((low <= true_link[name]) & (true_link[name] <= high))
                errors[pooling].append(values.mean(axis=0) - true_link[name])
    return {
        "coverage": float(np.mean(covered)),
        "n_intervals": len(covered),
        "rmse_small": {
            k: float(np.sqrt(np.mean(np.square(np.array(v)[:, :2])))) for k, v in errors.items()
        },
        "divergences": divergences,
    }


@pytest.mark.slow
def test_hierarchical_intervals_cover_segment_truth(recovery):
    print(f"coverage of 90% intervals: {recovery['coverage']:.3f} of {recovery['n_intervals']}")
    assert recovery["n_intervals"] == REPLICATIONS * len(SIZES) * 4
    assert recovery["coverage"] >= 0.8


@pytest.mark.slow
def test_partial_pooling_beats_no_pooling_on_small_segments(recovery):
    rmse = recovery["rmse_small"]
    print(f"link-scale RMSE of the two smallest segments: {rmse}")
    assert rmse["partial"] < rmse["none"]
