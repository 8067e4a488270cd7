"""Logs without amounts: the report and ``predict_customers`` without a value column.

The log is a slice of BTYDplus's grocery log (``../shared/data/external``: customer and
date only). The oracles: ``rfm_summary`` for the RFM and holdout columns, the column
contract of ``clvbayes.report.content`` (:data:`CUSTOMER_COLUMNS` less
:data:`CLV_COLUMNS`), and ``predict_customers`` for what a prediction without a spend
model holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvbayes
from clvbayes.cli import main
from clvbayes.models import BGNBD, FittedModel, GammaGamma
from clvbayes.report import CUSTOMER_COLUMNS
from clvbayes.report.content import CLV_COLUMNS, NO_VALUE_NOTE

GROCERY = Path(__file__).resolve().parents[1].parent / "shared/data/external/grocery_elog.csv"
PERIOD = ["--calibration-end", "2006-12-31", "--holdout-end", "2007-12-30"]
COLS = ["--customer-col", "customer_id", "--date-col", "date"]
FAST = ["--method", "map", "--draws", "200", "--chains", "1", "--quiet"]


@pytest.fixture(scope="module")
def grocery_csv(tmp_path_factory) -> Path:
    """500 customers of the grocery log, with a made-up channel as their segment."""
    if not GROCERY.exists():
        pytest.skip(f"the grocery log is not at {GROCERY} (see shared/data/external/README.md)")
    tx = pd.read_csv(GROCERY)
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:500])].copy()
    tx["channel"] = np.where(tx["customer_id"] % 3 == 0, "app", "web")
    path = tmp_path_factory.mktemp("grocery") / "grocery.csv"
    tx.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def report_dir(grocery_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "report"
    args = ["report", str(grocery_csv), *COLS, *PERIOD, *FAST, "--segment-col", "channel"]
    assert main([*args, "--out", str(out)]) == 0
    return out


@pytest.mark.slow  # a partially pooled fit
def test_customers_csv_has_no_value_or_clv_columns(report_dir, grocery_csv):
    customers = pd.read_csv(report_dir / "customers.csv")
    assert list(customers.columns) == [c for c in CUSTOMER_COLUMNS if c not in CLV_COLUMNS]
    rfm = clvbayes.rfm_summary(
        grocery_csv, customer_col="customer_id", date_col="date",
        calibration_end="2006-12-31", observation_end="2007-12-30",
    )  # fmt: skip
    assert "monetary_value" not in rfm and len(customers) == len(rfm) == 500
    merged = customers.merge(rfm, on="customer_id", suffixes=("", "_rfm"), validate="1:1")
    for col in ("frequency", "recency", "T", "holdout_frequency"):
        np.testing.assert_allclose(merged[col], merged[f"{col}_rfm"], rtol=0, atol=1e-9)
    assert customers["p_alive"].between(0, 1).all()
    assert (customers["purchases_q05"] <= customers["purchases_q50"]).all()
    assert (customers["purchases_q50"] <= customers["purchases_q95"]).all()
    assert set(customers["segment"]) == {"app", "web"}


@pytest.mark.slow
def test_summary_and_page_say_that_clv_needs_a_value_column(report_dir):
    summary = json.loads((report_dir / "summary.json").read_text())
    assert NO_VALUE_NOTE in summary["notes"]
    assert set(summary["models"]) == {"bgnbd"}
    assert summary["arguments"]["value_col"] is None
    assert not {"tiers", "average_order_value", "n_at_risk", "segment_contrasts"} & set(summary)
    assert [row["quantity"] for row in summary["validation"]["totals"]] == ["purchases"]
    assert {"p_alive_mean"} <= set(summary["segments"][0]) and not any(
        key.startswith("clv") for key in summary["segments"][0]
    )
    assert "expected total CLV over the horizon" not in summary["data"]
    html = (report_dir / "index.html").read_text()
    assert NO_VALUE_NOTE in html and "Most active customers" in html
    for absent in ("Value tiers", "Average order value", "At-risk customers", "CLV histogram"):
        assert absent not in html, absent
    assert set(clvbayes.load(report_dir / "posterior.nc")) == {"bgnbd"}


def test_cac_needs_a_value_column(grocery_csv, tmp_path, capsys):
    out = tmp_path / "never"
    args = ["report", str(grocery_csv), *COLS, *FAST, "--cac", "20", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--cac needs --value-col" in err[0]
    assert not out.exists()


def _fake(spec, centre: dict[str, float]) -> FittedModel:
    rng = np.random.default_rng(3)
    ds = xr.Dataset(
        {k: (("chain", "draw"), v * np.exp(0.05 * rng.standard_normal((2, 100))))
         for k, v in centre.items()},
        coords={"chain": np.arange(2), "draw": np.arange(100)},
    )  # fmt: skip
    return FittedModel(
        spec=spec, idata=xr.DataTree.from_dict({"posterior": ds}), data=None, fingerprint="x"
    )


def test_predict_customers_without_a_value_column(small_rfm):
    """P(alive), purchases and their intervals; asking for CLV says it needs values."""
    bg = _fake(BGNBD(), {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    rfm = small_rfm.iloc[:100][["customer_id", "frequency", "recency", "T"]]
    result = clvbayes.predict_customers(bg, rfm, horizon=52, seed=1)
    columns = set(result.summary.columns)
    assert {"p_alive", "expected_purchases", "purchases_q05", "purchases_q95"} <= columns
    assert not [c for c in columns if c.startswith(("clv", "p_top", "expected_rank"))]
    assert "clv" not in result.draws
    gg = _fake(GammaGamma(), {"p": 6.25, "q": 3.74, "v": 15.44})
    with pytest.raises(ValueError, match="CLV needs a value column: rfm has no monetary_value"):
        clvbayes.predict_customers(bg, rfm, horizon=52, spend_fit=gg, seed=1)
    with pytest.raises(ValueError, match="CLV needs a value column"):
        clvbayes.predict_customers(bg, rfm, horizon=52, thresholds=[100], seed=1)
