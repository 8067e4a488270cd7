"""The README's holdout-validation figure and tables (issue 4), on CDNOW.

Fits the BG/NBD and Gamma-Gamma (NUTS, default priors, 4 x 1000 draws) on the calibration
period (to 1997-09-30) of the CDNOW sample and master, predicts the holdout (to
1998-06-30) with :func:`clvbayes.validate_holdout`, and draws, per data set: the randomized
PIT histogram of holdout purchase counts, the coverage of the 50/80/90 % intervals
(observed against model-expected, purchases and spend) and the calibration of
P(no purchase in the holdout) by decile. Prints the totals and coverage tables.

    .venv/bin/python docs/make_holdout_figure.py            # writes docs/holdout_cdnow.png
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import clvbayes  # noqa: E402
from clvbayes import plots  # noqa: E402
from clvbayes.datasets import load_cdnow  # noqa: E402

OUT = Path(__file__).resolve().parent / "holdout_cdnow.png"


def holdout_report(kind: str):
    tx = load_cdnow(kind)
    rfm = clvbayes.rfm_summary(
        tx,
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        time_unit="W",
    )
    bg = clvbayes.BGNBD().fit(rfm, seed=1, progressbar=False)
    gg = clvbayes.GammaGamma().fit(rfm, seed=1, progressbar=False)
    return rfm, clvbayes.validate_holdout(bg, rfm, spend_fit=gg, seed=2)


def main() -> None:
    fig, axes = plt.subplots(2, 3, figsize=(14, 8.5))
    for row, kind in zip(axes, ("sample", "master"), strict=True):
        rfm, report = holdout_report(kind)
        name = f"CDNOW {kind} ({len(rfm):,} customers)"
        plots.plot_pit(report.pit, "purchases", ax=row[0])
        row[0].set_title(f"{name}: PIT of holdout purchases")
        plots.plot_coverage(report.coverage, ax=row[1])
        row[1].set_title("central intervals: observed vs expected")
        plots.plot_p_zero(report.p_zero, ax=row[2])
        row[2].set_title("P(no holdout purchase) by decile")
        print(f"\n## {name}\n")
        print(report.totals.round(3).to_string(index=False))
        print()
        print(report.coverage.round(3).to_string(index=False))
    fig.tight_layout()
    fig.savefig(OUT, dpi=90)
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
