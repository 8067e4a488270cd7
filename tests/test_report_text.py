"""The words and cells of the report page: what a CRM reader sees.

Oracles: the page's own tables, read back with Python's ``html.parser`` (no cell shows a
Python repr: ``True``/``False``, ``None``, ``nan``, ``np.float64(...)``, ``[]``), the
report's ``summary.json`` (the holdout flags behind the page's yes/no), and the
comparison table's columns (every column the comparison's text describes is in it, and
it describes no column that is absent). One MAP report with ``--compare``, segments,
CAC and a holdout on 200 CDNOW-sample customers (slow: it fits three transaction models).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvbayes.datasets import load_cdnow
from clvbayes.report import ReportOptions, build_report, write_report

REPR = re.compile(r"^(True|False|None|nan|NaN|inf|-inf|<NA>|NaT|\[\]|\{\})$|\bnp\.\w+\(|\bnumpy\.")

# phrase of the comparison's text -> the column it describes
DESCRIBED = {
    "ELPD": "ELPD (LOO)",
    "stacking weights": "stacking weight",
    "Pareto k": "customers with k in (0.7, 1]",
    "mean absolute": "holdout MAE",
    "root-mean-square": "holdout RMSE",
    "90% predictive interval": "actual holdout purchases",
}


class _Tables(HTMLParser):
    """Every table of a page (headers and rows of cell text), with the section (``h2``
    id) it is in, and the paragraphs of each section."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self.paragraphs: dict[str, list[str]] = {}
        self.section = ""
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._para: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self.section = dict(attrs).get("id", "")
        elif tag == "table":
            self.tables.append({"section": self.section, "headers": [], "rows": []})
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "p":
            self._para = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            table = self.tables[-1]
            if table["headers"]:
                table["rows"].append(self._row)
            else:
                table["headers"] = self._row
            self._row = None
        elif tag == "p" and self._para is not None:
            self.paragraphs.setdefault(self.section, []).append("".join(self._para))
            self._para = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._para is not None:
            self._para.append(data)


def _read(page: Path) -> _Tables:
    parser = _Tables()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    return parser


def _column(table: dict, header: str) -> list[str]:
    i = table["headers"].index(header)
    return [row[i] for row in table["rows"]]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """A MAP report with --compare, segments, CAC and a holdout (200 customers, one of
    them buying on the holdout's last day)."""
    tx = load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:400])].copy()
    tx["channel"] = np.where(tx["customer_id"] % 2 == 0, "web", "store")
    ids = tx["customer_id"].unique()
    late = tx.loc[tx["date"] == tx["date"].max(), "customer_id"]
    few = tx[tx["customer_id"].isin({*ids[:199], late.iloc[0]})]
    options = ReportOptions(
        customer_col="customer_id", date_col="date", value_col="value",
        calibration_end="1997-09-30", holdout_end="1998-06-30", method="map", draws=60,
        chains=1, seed=3, compare=True, segment_col="channel", cac=25.0,
    )  # fmt: skip
    out = tmp_path_factory.mktemp("text") / "report"
    write_report(build_report(few, options, log=None), out)
    return out


@pytest.mark.slow
def test_no_cell_of_the_page_shows_a_python_repr(report_dir):
    page = _read(report_dir / "index.html")
    assert len(page.tables) >= 15
    shown = [
        (t["section"], h, cell)
        for t in page.tables
        for row in t["rows"]
        for h, cell in zip(t["headers"], row, strict=True)
        if REPR.search(cell)
    ]
    assert shown == []


@pytest.mark.slow
def test_flags_read_yes_or_no_and_agree_with_summary_json(report_dir):
    page = _read(report_dir / "index.html")
    summary = json.loads((report_dir / "summary.json").read_text())
    (totals,) = [t for t in page.tables if "inside 90%" in t["headers"]]
    expected = ["yes" if r["in_interval"] else "no" for r in summary["validation"]["totals"]]
    assert _column(totals, "inside 90%") == expected
    (comparison,) = [t for t in page.tables if t["section"] == "comparison"]
    chosen = ["yes" if r["chosen"] else "no" for r in summary["comparison"]]
    assert _column(comparison, "in this report") == chosen and chosen.count("yes") == 1
    (arguments,) = [t for t in page.tables if t["headers"] == ["argument", "value"]]
    values = dict(arguments["rows"])
    assert values["compare"] == "yes" and values["time_effects"] == "no"
    assert values["holdout_end"] == "1998-06-30" and values["tune"] == "–"
    assert values["covariates"] == "–"  # none given: not "[]"


@pytest.mark.slow
def test_map_comparison_text_names_only_the_columns_of_its_table(report_dir):
    page = _read(report_dir / "index.html")
    (comparison,) = [t for t in page.tables if t["section"] == "comparison"]
    text = " ".join(page.paragraphs["comparison"])
    assert "ELPD (LOO)" not in comparison["headers"]  # point estimates: no LOO
    for phrase, header in DESCRIBED.items():
        assert (phrase in text) == (header in comparison["headers"]), phrase
    assert "PSIS-LOO" in text and "holdout only" in text  # why there is no ELPD
    assert 'marked "yes"' in text


def test_comparison_text_follows_the_columns_present():
    from clvbayes.report.content import comparison_explanation

    loo = pd.DataFrame(
        columns=["label", "chosen", "elpd_loo", "se", "elpd_diff", "dse", "weight", "k_bad"]
    )
    held = pd.DataFrame(columns=["label", "chosen", "mae", "rmse", "actual_total", "total_low"])
    both = pd.concat([loo, held], axis=1)
    for table, has_loo, has_holdout in ((loo, True, False), (held, False, True),
                                        (both, True, True)):  # fmt: skip
        text = comparison_explanation(table)
        assert ("ELPD (LOO) is" in text) == has_loo
        assert ("stacking weights" in text) == has_loo
        assert ("mean absolute" in text) == has_holdout
        assert ("compared on the holdout only" in text) == (not has_loo)
        assert ("compared by PSIS-LOO only" in text) == (not has_holdout)


def test_cells_render_flags_and_missing_values_as_words():
    from clvbayes.report.html import _format, plain_text

    assert [_format(v, "text") for v in (True, False, np.True_, np.bool_(False))] == [
        "yes", "no", "yes", "no",
    ]  # fmt: skip
    assert _format(True, "int") == "yes"  # a flag is never 1
    for missing in (None, np.nan, np.float64("nan"), pd.NA, pd.NaT, float("inf")):
        assert _format(missing, "money") == "–" and _format(missing, "text") == "–"
    assert plain_text(np.float64(2.5)) == "2.5" and plain_text(np.int64(3)) == "3"
    assert plain_text([]) == "–" and plain_text(["gender", "channel"]) == "gender, channel"
    assert plain_text({"web": 20.0, "store": np.float64(30.0)}) == "web: 20.0, store: 30.0"
    assert plain_text([np.float64(1.0), None]) == "1.0, –"


@pytest.mark.slow
def test_customers_csv_purchase_columns_cover_the_holdout_window_as_described(report_dir):
    """With --holdout-end, expected_purchases is the model's expectation over the holdout
    window (39 weeks: 1997-09-30 to 1998-06-30), not over the 52-week --horizon of the CLV
    columns; the page and summary.json describe each column so."""
    import clvbayes

    customers = pd.read_csv(report_dir / "customers.csv")
    fit = clvbayes.load(report_dir / "posterior.nc")["bgnbd"]
    rfm = customers[["customer_id", "segment", "frequency", "recency", "T"]]
    holdout_weeks = (pd.Timestamp("1998-06-30") - pd.Timestamp("1997-09-30")).days / 7
    over = {
        h: clvbayes.expected_purchases(fit, rfm, horizon=h).mean(("chain", "draw")).to_numpy()
        for h in (holdout_weeks, 52.0)
    }
    actual = customers["expected_purchases"].to_numpy()
    np.testing.assert_allclose(actual, over[holdout_weeks], rtol=1e-6)  # float32 draws
    assert not np.allclose(actual, over[52.0], rtol=1e-3)
    described = json.loads((report_dir / "summary.json").read_text())["customers_columns"]
    assert list(described) == list(customers.columns)
    for col in ("expected_purchases", "purchases_q05", "purchases_q50", "purchases_q95"):
        assert "the holdout window, after 1997-09-30 up to 1998-06-30" in described[col]
        assert "not the --horizon" in described[col]
    for col in ("clv_mean", "clv_sd", "clv_q05", "clv_q50", "clv_q95", "p_top_decile"):
        assert "the 52 weeks after 1997-09-30 (--horizon)" in described[col]
    page = _read(report_dir / "index.html")
    (table,) = [t for t in page.tables if t["section"] == "columns"]
    assert dict(table["rows"]) == described


def test_customer_column_descriptions_without_a_holdout_cover_the_horizon():
    import datetime as dt

    from clvbayes.report.content import CUSTOMER_COLUMNS, customer_column_descriptions

    columns = [c for c in CUSTOMER_COLUMNS if not c.startswith("holdout_")]
    table = customer_column_descriptions(
        columns, calibration_end=dt.date(1997, 9, 30), holdout_end=None, horizon=26.0,
        time_unit="W", annual_discount=0.1, margin=0.3,
    )  # fmt: skip
    text = dict(zip(table["column"], table["description"], strict=True))
    assert list(text) == columns
    for col in ("expected_purchases", "purchases_q50", "clv_mean", "p_top_decile"):
        assert "the 26 weeks after 1997-09-30 (--horizon)" in text[col]
        assert "holdout" not in text[col]
    assert "10.0% a year, times margin 0.3" in text["clv_q95"]
