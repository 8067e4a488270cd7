"""Write notebooks/04_model_comparison.ipynb (run: .venv/bin/python notebooks/_src/make_04_model_comparison.py).

The notebook is generated so that its code stays reviewable as plain Python; it is
executed (with CLVBAYES_QUICK=1) by tests/test_notebooks.py.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    (
        "md",
        """# 04 · Which transaction model? BG/NBD vs MBG/NBD vs Pareto/NBD

The experiment of the papers, start to finish: CDNOW, calibration to 1997-09-30, holdout
to 1998-06-30 (39 weeks). Three transaction models are fitted by NUTS and compared by

1. **PSIS-LOO per customer** (`clvbayes.compare`): out-of-sample fit of the calibration
   histories, with Pareto-k diagnostics;
2. **posterior predictive checks** of the calibration data: the repeat-purchase
   histogram, and the distributions of recency and of the time since the last purchase;
3. **holdout predictions**: the tracking plot, conditional expectations of holdout purchases
   by calibration frequency, per-customer errors, totals and interval coverage;
4. one **comparison table** with all of it.

With `CLVBAYES_QUICK=1` (the test suite) the notebook uses the CDNOW *sample* (2,357
customers) and few draws, so the numbers are rough and convergence warnings are expected;
without it, CDNOW *master* (23,570 customers) and 4 × 1000 draws.""",
    ),
    (
        "code",
        """import os
import time
import warnings

import matplotlib.pyplot as plt
import pandas as pd

import clvbayes
from clvbayes.data.rfm import repeat_purchase_times
from clvbayes.datasets import load_cdnow
from clvbayes.plots import plot_conditional_expectations, plot_frequency_check, plot_tracking
from clvbayes.ppc import predictive_histogram_check, tracking_curve
from clvbayes.validation import comparison_table, holdout_comparison

QUICK = os.environ.get("CLVBAYES_QUICK") == "1"
KIND = "sample" if QUICK else "master"
SAMPLING = (
    {"draws": 150, "tune": 200, "chains": 2} if QUICK else {"draws": 1000, "tune": 1000, "chains": 4}
)
N_PRED = 100 if QUICK else 500
pd.set_option("display.precision", 3)
pd.set_option("display.width", 200)""",
    ),
    ("md", "## Data: calibration and holdout from the transaction log"),
    (
        "code",
        """transactions = load_cdnow(KIND)
periods = {"calibration_end": "1997-09-30", "observation_end": "1998-06-30"}
rfm = clvbayes.rfm_summary(
    transactions, customer_col="customer_id", date_col="date", value_col="value",
    time_unit="W", **periods,
)
print(len(rfm), "customers;", int(rfm["frequency"].sum()), "calibration repeat purchases;",
      int(rfm["holdout_frequency"].sum()), "in the holdout")
rfm.head()""",
    ),
    (
        "md",
        """## Fit the three models

Same default priors family for all (weakly informative; see `clvbayes.priors`), NUTS via
nutpie. The Pareto/NBD likelihood is evaluated without the Gauss hypergeometric function
(`clvbayes.math.pareto_nbd`), which is what makes full NUTS practical for it.""",
    ),
    (
        "code",
        """specs = {"BG/NBD": clvbayes.BGNBD(), "MBG/NBD": clvbayes.MBGNBD(), "Pareto/NBD": clvbayes.ParetoNBD()}
fits, seconds = {}, {}
for name, spec in specs.items():
    start = time.perf_counter()
    with warnings.catch_warnings():
        if QUICK:  # few draws: ESS warnings are expected here and not the point
            warnings.simplefilter("ignore")
        fits[name] = spec.fit(rfm, seed=2024, progressbar=False, **SAMPLING)
    seconds[name] = time.perf_counter() - start
pd.concat({name: fit.summary()[["mean", "sd", "ess_bulk", "r_hat"]] for name, fit in fits.items()})""",
    ),
    (
        "code",
        """pd.Series(seconds, name="seconds to fit (incl. compilation)").round(1)""",
    ),
    (
        "md",
        """## 1. PSIS-LOO per customer

The models are fitted on unique (frequency, recency, T) rows with counts; LOO is still per
customer (customers sharing a row share their PSIS weights). Higher `elpd_loo` is better;
`dse` is the standard error of the difference to the best model.""",
    ),
    (
        "code",
        """compared = clvbayes.compare(fits)
compared.table""",
    ),
    (
        "md",
        """## 2. Posterior predictive checks of the calibration period

Each posterior draw simulates a data set with the customers' own ages `T` (conditioned on,
so the T distribution is reproduced by construction); the bars are the observed numbers
of customers, with the predicted means and 90 % intervals.""",
    ),
    (
        "code",
        """statistics = ("frequency", "recency", "inactivity")
fig, axes = plt.subplots(len(fits), len(statistics), figsize=(16, 3.4 * len(fits)))
for row, (name, fit) in enumerate(fits.items()):
    for col, statistic in enumerate(statistics):
        check = predictive_histogram_check(
            fit.params(), rfm, model=fit.kind, statistic=statistic, n_draws=50 if QUICK else 200,
            seed=1,
        )
        ax = plot_frequency_check(check, ax=axes[row, col], title=f"{name}: {statistic}")
        ax.set_xlabel(statistic if statistic != "inactivity" else "T - recency (weeks)")
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
fig.tight_layout()""",
    ),
    (
        "md",
        """## 3. Holdout: tracking, conditional expectations, errors, coverage

The tracking plot uses each customer's birth date only (the models' unconditional
expectation); the conditional expectations use each customer's history (posterior
predictive draws of the holdout purchases, `n_draws` per customer).""",
    ),
    (
        "code",
        """actual_times = repeat_purchase_times(
    transactions, customer_col="customer_id", date_col="date", **periods
)
fig, axes = plt.subplots(1, len(fits), figsize=(16, 3.6), sharey=True)
for ax, (name, fit) in zip(axes, fits.items()):
    plot_tracking(tracking_curve(fit, rfm, actual=actual_times), ax=ax, time_label="weeks")
    ax.set_title(name)
fig.tight_layout()""",
    ),
    (
        "code",
        """holdout = holdout_comparison(fits, rfm, n_draws=N_PRED, seed=7)
plot_conditional_expectations(holdout.by_frequency)
holdout.metrics""",
    ),
    (
        "code",
        """holdout.by_frequency.pivot(index="calibration_frequency", columns="model",
                          values=["actual", "predicted"]).round(3)""",
    ),
    (
        "md",
        """## 4. The comparison table

LOO (`elpd_loo`, `se`, `elpd_diff`, `dse`, `p_loo`, stacking `weight`), customers per
Pareto-k class, holdout errors (per-customer MAE/RMSE of the predicted mean, total error
and its 90 % predictive interval `total_low`–`total_high`, `freq_mae`: mean absolute error
of the conditional expectations by frequency) and coverage of the per-customer 50 % and
90 % predictive intervals, observed against what the model itself expects.""",
    ),
    (
        "code",
        """table = comparison_table(compared, holdout)
table.T""",
    ),
    (
        "md",
        """## Conclusion

On CDNOW master (4 × 1000 NUTS draws per model, 500 predictive draws per customer; the
run recorded in the issue note) the two criteria disagree, which is the point of
looking at both:

- **Calibration fit (PSIS-LOO)** ranks MBG/NBD first (elpd −95,341), BG/NBD 31 ± 13
  below and Pareto/NBD 79 ± 16 below; every customer's Pareto k is good, so the LOO
  estimates are reliable. With 23,570 customers the predictive checks are strict: for
  every model 3 to 5 of the 8 frequency bins and 4 to 6 of the 10 inactivity bins fall
  outside their 90 % intervals, so none reproduces the calibration data exactly.
- **Holdout** ranks Pareto/NBD first: the smallest total error (−13 % of 19,684 repeat
  purchases, against −14 % for BG/NBD and −19 % for MBG/NBD), conditional expectations by
  calibration frequency within their intervals for 3 to 7+ purchases (mean absolute bin
  error 0.09, against 0.21 and 0.30), and marginally the best MAE/RMSE.
- All three under-predict the holdout total by more than their own 90 % interval of the
  total, and their per-customer 90 % intervals cover 94.3–94.5 % of customers where they
  expect 96.4–96.6 %: the CDNOW cohort bought more in 1997-10…1998-06 than any of these
  stationary-rate models extrapolates, mostly through customers with 0–2 calibration
  purchases.

So the choice between them is not settled by the calibration data; for forecasting this
cohort the Pareto/NBD's dropout-at-any-time story predicts best, and full NUTS for it is
practical (56.6 s for 4 × 1000 draws on the CDNOW sample, min ESS 2,718). In quick
mode (CDNOW sample, few draws) the numbers differ but the same tables and figures are
produced.""",
    ),
]


def build() -> nbformat.NotebookNode:
    """The notebook object."""
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell(text) if kind == "md" else new_code_cell(text) for kind, text in CELLS
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "04_model_comparison.ipynb"
    nbformat.write(build(), path)
    print(f"wrote {path}")
