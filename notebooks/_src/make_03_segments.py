"""Write notebooks/03_segments.ipynb (run: .venv/bin/python notebooks/_src/make_03_segments.py).

The notebook is generated so that its code stays reviewable as plain Python; it is
executed (with CLVBAYES_QUICK=1: the CDNOW sample and few draws) by
tests/test_notebooks.py.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    (
        "md",
        """# 03 · Segments: are cohorts and first-purchase groups really different?

Marketers compare customer groups (acquisition cohort, channel, region, size of the first
order) and want to know whether a difference is real. Fitting each group separately
("no pooling") gives small groups noisy answers; fitting one model to everyone
("complete pooling") hides real differences. clvbayes fits **one hierarchical model**:
each segment gets its own BG/NBD and Gamma-Gamma parameters, tied together by a prior on
their log (logit) scale whose spread is learnt from the data (**partial pooling**), so
small segments borrow strength from large ones.

On CDNOW (calibration to 1997-09-30, holdout to 1998-06-30) we look at two
segmentations: the **month of the first purchase** (January, February, March 1997) and
the **tercile of the first purchase's value**. With `CLVBAYES_QUICK=1` (the test suite)
the notebook uses the 2,357-customer CDNOW sample and few draws; otherwise the full
23,570-customer master file.""",
    ),
    (
        "code",
        """import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import clvbayes
from clvbayes import plots, segments
from clvbayes.compare import compare
from clvbayes.datasets import load_cdnow

QUICK = os.environ.get("CLVBAYES_QUICK") == "1"
DRAWS = dict(draws=100, tune=150, chains=2) if QUICK else dict(draws=1000, chains=2)
SEED = 3
tx = load_cdnow("sample" if QUICK else "master")
rfm = clvbayes.rfm_summary(
    tx, customer_col="customer_id", date_col="date", value_col="value",
    calibration_end="1997-09-30", observation_end="1998-06-30", time_unit="W",
)
groups = segments.acquisition_segments(
    tx, customer_col="customer_id", date_col="date", value_col="value"
)
rfm = rfm.merge(groups, on="customer_id")
rfm.groupby("cohort").agg(customers=("customer_id", "size"), mean_frequency=("frequency", "mean"))""",
    ),
    (
        "code",
        """rfm.groupby("value_group", observed=True).agg(
    customers=("customer_id", "size"),
    first_value=("first_value", "median"),
    mean_frequency=("frequency", "mean"),
    mean_repeat_spend=("monetary_value", lambda v: v[v > 0].mean()),
)""",
    ),
    (
        "md",
        """## 1. Three degrees of pooling

`BGNBD(segments="cohort")` is partially pooled; `pooling="none"` fits independent
segments with the plain priors; `pooling="complete"` is the plain model (one
population), fitted on rows keyed by segment so that PSIS-LOO can compare all three on
the same customers.

Sampling a hierarchy with three segments is delicate: their spread `sigma` is barely
identified, and the posterior has funnels. The partially pooled fit therefore uses the
centred form for segments with at least 1,000 customers (their own data pin their
parameters) and the non-centred form for smaller ones, `target_accept=0.995` and 2,000
tuning steps by default; on these cohorts and on the value terciles it runs without
divergences (`clvbayes.models.hierarchy` has the measurements).""",
    ),
    (
        "code",
        """def fit(spec):
    with warnings.catch_warnings():
        # few draws in quick mode: ESS warnings are expected there
        warnings.simplefilter("ignore" if QUICK else "default")
        return spec.fit(rfm, seed=SEED, progressbar=False, **DRAWS)


cohort_fits = {
    pooling: fit(clvbayes.BGNBD(segments="cohort", pooling=pooling))
    for pooling in ("partial", "none", "complete")
}
for name, f in cohort_fits.items():
    print(f"{name:>8}: {f.diagnostics().divergences} divergences")
segments.segment_parameters(cohort_fits["partial"]).round(3)""",
    ),
    (
        "md",
        """### Shrinkage

Each segment's parameters without pooling (blue) and with partial pooling (orange).
Where a segment's own data pin a parameter down, the two agree; where they do not
(the dropout parameters, the smaller segments) partial pooling pulls the estimate
toward the other segments and narrows its interval.""",
    ),
    (
        "code",
        """table = pd.concat(
    [
        segments.segment_parameters(cohort_fits[p]).assign(pooling=p)
        for p in ("none", "partial")
    ]
)
fig, axes = plt.subplots(1, 4, figsize=(14, 3))
for ax, name in zip(axes, ("r", "alpha", "a", "b")):
    plots.plot_segment_forest(table, name, by="pooling", ax=ax, label=name)
    if ax is not axes[0]:
        ax.get_legend().remove()
fig.tight_layout()""",
    ),
    (
        "md",
        """### Which degree of pooling predicts best?

PSIS-LOO per customer (higher `elpd_loo` is better; `elpd_diff` and its standard error
`dse` against the best model). When the cohorts behave alike, complete pooling wins or
ties and the hierarchical model has learnt a small spread; no pooling pays for its
extra parameters.""",
    ),
    (
        "code",
        """with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Pareto-k notes for a handful of customers
    comparison = compare(cohort_fits)
comparison.table[["rank", "elpd_loo", "p_loo", "elpd_diff", "dse", "weight", "n_bad_k"]].round(1)""",
    ),
    (
        "code",
        """bg_cohort = cohort_fits["partial"]
print("between-cohort spread (link scale, posterior mean):")
for name in ("r", "purchase_rate", "phi_dropout", "kappa_dropout"):
    print(f"  {name:>14}_sigma = {float(bg_cohort.posterior[name + '_sigma'].mean()):.3f}")""",
    ),
    (
        "md",
        """## 2. First-purchase value terciles: purchases *and* spend

Here the segments differ by construction in what they spent first; the question is
whether that carries over to repeat purchases and their value. Both models are
segmented: the BG/NBD and the Gamma-Gamma.""",
    ),
    (
        "code",
        """bg_value = fit(clvbayes.BGNBD(segments="value_group"))
gg_value = fit(clvbayes.GammaGamma(segments="value_group"))
for name, f in (("BG/NBD", bg_value), ("Gamma-Gamma", gg_value)):
    d = f.diagnostics()
    print(f"{name:>11}: {d.divergences} divergences, max R-hat {d.table['r_hat'].max():.3f}")
pd.concat(
    [segments.segment_parameters(bg_value), segments.segment_parameters(gg_value)]
).round(3)""",
    ),
    (
        "md",
        """PSIS-LOO again, now for the terciles: unlike the cohorts, complete pooling should
lose clearly here if the first purchase really tells the segments apart.""",
    ),
    (
        "code",
        """value_fits = {
    "partial": bg_value,
    **{p: fit(clvbayes.BGNBD(segments="value_group", pooling=p)) for p in ("none", "complete")},
}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Pareto-k notes for a handful of customers
    value_comparison = compare(value_fits)
value_comparison.table[["rank", "elpd_loo", "p_loo", "elpd_diff", "dse", "weight", "n_bad_k"]].round(1)""",
    ),
    (
        "md",
        """### The value of a new customer in each segment

For a customer acquired today: expected repeat purchases over a year (FHL 2005, eq. 9),
the segment's mean spend per transaction `p v / (q - 1)`, and the one-year CLV at a 30 %
margin and 10 % annual discount, each as a posterior over the segment's parameters.""",
    ),
    (
        "code",
        """new = segments.new_customer_value(
    bg_value, gg_value, horizon=52.0, annual_discount=0.1, margin=0.3
)
new_table = segments.segment_table(new)
fig, axes = plt.subplots(1, 3, figsize=(14, 2.8))
for ax, q in zip(axes, ("expected_purchases", "mean_spend", "clv")):
    plots.plot_segment_forest(new_table, q, ax=ax)
fig.tight_layout()
new_table.round(2)""",
    ),
    (
        "md",
        """### Contrasts: is the difference real?

Differences and ratios are computed draw by draw, so `p_a_gt_b` is the posterior
probability that segment A's value exceeds B's.""",
    ),
    (
        "code",
        """segments.contrasts(new[["expected_purchases", "clv"]], [("high", "low"), ("mid", "low")]).round(3)""",
    ),
    (
        "md",
        """### Existing customers

The same question for the customers we already have: each customer's predictive
distribution uses its own segment's parameters (`predict_customers` works unchanged);
the segment means are then taken draw by draw.""",
    ),
    (
        "code",
        """result = clvbayes.predict_customers(
    bg_value, rfm, horizon=52.0, spend_fit=gg_value, annual_discount=0.1, margin=0.3,
    n_draws=100, seed=SEED, ranks=False,
)
existing = segments.existing_customer_value(result, bg_value, rfm)
existing_table = segments.segment_table(existing)
plots.plot_segment_forest(existing_table, "mean_clv", label="mean 1-year CLV of existing customers")
existing_table.round(3)""",
    ),
    (
        "md",
        """### CLV:CAC, which groups pay back?

With a (hypothetical) acquisition cost per segment, the ratio of a new customer's
one-year CLV to its cost is a posterior too: `p_ratio_gt_1` is the probability that the
customer pays back within the year, `p_ratio_gt_3` that it reaches the common 3x
target.""",
    ),
    (
        "code",
        """cac = {"low": 3.0, "mid": 3.5, "high": 8.0}
payback = segments.clv_cac(new["clv"], cac)
plots.plot_clv_cac(payback.summary)
payback.summary.round(3)""",
    ),
    (
        "md",
        """## 3. Holdout check per segment

Per segment, the share of customers whose holdout purchases fall in their central
predictive interval (*observed*) against the share the model expects (*expected*;
counts are discrete, so a "90 %" interval holds more than 90 % of the mass).""",
    ),
    (
        "code",
        """rows = []
for column, bg in (("cohort", bg_cohort), ("value_group", bg_value)):
    for label in bg.segment_levels:
        part = rfm[rfm[column].astype(str) == label].reset_index(drop=True)
        report = clvbayes.validate_holdout(bg, part, n_draws=100, seed=SEED)
        cov = report.coverage.set_index("level")
        rows.append(
            {
                "segmentation": column,
                "segment": label,
                "customers": len(part),
                "holdout_purchases": report.totals["actual"].iloc[0],
                "predicted": report.totals["predicted_mean"].iloc[0],
                "observed_90": cov.loc[0.9, "observed"],
                "expected_90": cov.loc[0.9, "expected"],
            }
        )
pd.DataFrame(rows).round(3)""",
    ),
    (
        "md",
        """## What should a marketer conclude?""",
    ),
    (
        "code",
        """spread = {n: float(bg_cohort.posterior[n + "_sigma"].mean()) for n in ("r", "purchase_rate")}
best = comparison.table.index[0]
print(f"Cohorts: best by PSIS-LOO is '{best}'; the learnt between-cohort spread of the purchase")
print(f"  rate is {spread['purchase_rate']:.2f} on the log scale (a factor {np.exp(spread['purchase_rate']):.2f}).")
c = segments.contrasts(new["clv"], [("high", "low")]).iloc[0]
print(f"Value terciles: a new high-first-value customer is worth {c['ratio_median']:.2f}x a low one")
print(f"  (90% interval {c['ratio_low']:.2f}-{c['ratio_high']:.2f}), P(high > low) = {c['p_a_gt_b']:.3f}.")
for _, row in payback.summary.iterrows():
    print(f"  {row['segment']:>4}: P(pays back) = {row['p_ratio_gt_1']:.2f}, P(CLV:CAC > 3) = {row['p_ratio_gt_3']:.2f}")""",
    ),
    (
        "md",
        """* **Cohorts** (January, February, March 1997) behave alike: the hierarchical model
  learns a small spread and PSIS-LOO cannot tell the three degrees of pooling apart
  (differences within about one standard error `dse`). A marketer should not read the
  small differences between the cohorts' point estimates as real.
* **First-purchase value** is informative: customers whose first order was large come
  back more often *and* spend more per repeat transaction. The contrasts give the size
  of each gap with its interval, and `P(A > B)` how sure we are of its sign.
* **CLV:CAC** turns this into a decision: acquisition spending on a segment is justified
  when `P(ratio > 1)` is high, not merely when the mean ratio exceeds 1. The costs above
  are made up; plug in yours.
* In quick mode (the test suite) the numbers come from the 2,357-customer sample and few
  draws; run without `CLVBAYES_QUICK` for the full data.""",
    ),
]


def build() -> nbformat.NotebookNode:
    """The notebook object."""
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS
    ]
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    return nb


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "03_segments.ipynb"
    nbformat.write(build(), out)
    print(f"wrote {out}")
