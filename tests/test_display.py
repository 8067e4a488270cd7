"""Jupyter displays (``_repr_html_``) and short reprs of the package's objects.

Oracles: Python's XML parser for well-formedness (the displays are written as XML: every
tag closed, only numeric character references), the objects' own numbers for the
content (a parameter's posterior mean, the holdout totals, a comparison's elpd), and the
markup itself for escaping: a segment label, customer id or model name holding a script
tag must appear only escaped.
"""

from __future__ import annotations

import dataclasses
import time
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvbayes
from clvbayes.comparison import CompareResult
from clvbayes.display import format_value, frame_table
from clvbayes.predict import Result

EVIL = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"


def well_formed(markup: str) -> ET.Element:
    """Parse ``markup`` as XML (raises on an unclosed tag or a stray ``<`` / ``&``)."""
    return ET.fromstring(markup)


def assert_escaped(markup: str) -> None:
    assert "<script" not in markup
    assert ESCAPED in markup


@pytest.fixture(scope="module")
def rfm(sample_holdout_rfm) -> pd.DataFrame:
    rfm = sample_holdout_rfm.copy()
    rfm["customer_id"] = rfm["customer_id"].astype(str)
    rfm.loc[0, "customer_id"] = EVIL
    rfm["channel"] = np.where(np.arange(len(rfm)) % 2 == 0, "web", EVIL)
    return rfm


@pytest.fixture(scope="module")
def fits(sample_holdout_map_fits):
    return sample_holdout_map_fits


# --- the pieces ---------------------------------------------------------------------------


def test_format_value_numbers_and_labels():
    assert format_value(23570) == "23,570"
    assert format_value(np.int64(5)) == "5"
    assert format_value(0.243456) == "0.2435"
    assert format_value(16885.4) == "16,885"
    assert format_value(float("nan")) == "&#8211;"
    assert format_value(np.True_) == "yes"
    assert format_value(EVIL) == ESCAPED


def test_frame_table_escapes_labels_cells_and_headers_and_truncates():
    frame = pd.DataFrame({EVIL: [1.5, 2.5, 3.5]}, index=pd.Index([EVIL, "b", "c"], name=EVIL))
    markup = frame_table(frame, max_rows=2)
    well_formed(markup)
    assert_escaped(markup)
    assert "1 more rows" in markup


# --- fitted models and specs --------------------------------------------------------------


def test_fitted_model_html_has_parameters_data_and_settings(fits, rfm):
    bg, _ = fits
    markup = bg._repr_html_()
    well_formed(markup)
    for name in ("r", "alpha", "a", "b"):
        assert f">{name}</th>" in markup
        assert format_value(float(bg.posterior[name].mean())) in markup
    assert f"{len(rfm):,}" in markup  # customers
    assert "no convergence diagnostics (map)" in markup
    assert "Fit settings" in markup and ">map<" in markup
    assert repr(bg).startswith("<Fitted BGNBD: map 1x1 draws, 400 customers")


def test_fitted_model_badge_follows_the_fit_time_diagnostics(fits):
    bg, _ = fits
    nuts = {**bg.settings, "method": "nuts"}
    good = dataclasses.replace(bg, settings=nuts, problems=())
    assert "clvbayes-ok" in good._repr_html_() and ">converged<" in good._repr_html_()
    bad = dataclasses.replace(bg, settings=nuts, problems=(f"R-hat > 1.01 for {EVIL}",))
    markup = bad._repr_html_()
    well_formed(markup)
    assert "1 convergence problem(s)" in markup and "clvbayes-bad" in markup
    assert_escaped(markup)


def test_segmented_fit_escapes_segment_labels(rfm):
    fit = clvbayes.GammaGamma(segments="channel", pooling="none").fit(rfm, method="map")
    markup = fit._repr_html_()
    well_formed(markup)
    assert_escaped(markup)
    assert "p[web]" in markup
    assert "2 (channel, none)" in markup


def test_spec_html_shows_priors_and_escapes_the_segment_column():
    spec = clvbayes.BGNBD(segments=EVIL)
    markup = spec._repr_html_()
    well_formed(markup)
    assert_escaped(markup)
    assert "not fitted" in markup and "frequency, recency, T" in markup
    assert "r_mu" in markup and "Prior(&quot;" in markup
    assert "Fader, Hardie &amp; Lee 2005" in markup  # the docstring's first line, escaped


# --- results ------------------------------------------------------------------------------


def test_result_html_summarises_table_and_draws(fits, rfm):
    bg, gg = fits
    res = clvbayes.predict_customers(bg, rfm, horizon=10, spend_fit=gg, n_draws=20, seed=1)
    markup = res._repr_html_()
    well_formed(markup)
    assert_escaped(markup)  # a customer id
    assert f"summary: {len(rfm)} rows x {res.summary.shape[1]} columns" in markup
    assert format_value(res.summary["p_alive"].mean()) in markup
    assert "clv" in markup and "customer_id 400" in markup
    text = repr(res)
    assert text.startswith("<Result: 400 rows x") and "draws p_alive" in text
    assert len(text) < 300


def test_segment_result_escapes_labels(fits, rfm):
    bg, gg = fits
    res = clvbayes.predict_customers(bg, rfm, horizon=10, spend_fit=gg, n_draws=20, seed=1)
    table = clvbayes.segment_summary(res, rfm["channel"].to_numpy(), variables=("clv",))
    markup = table._repr_html_()
    well_formed(markup)
    assert_escaped(markup)


def test_result_html_is_fast_on_a_large_result():
    n, draws = 200_000, 100
    rng = np.random.default_rng(0)
    summary = pd.DataFrame({f"c{j}": rng.random(n) for j in range(20)})
    summary.insert(0, "customer_id", np.arange(n))
    ds = xr.Dataset({"clv": (("chain", "draw", "customer_id"), np.zeros((1, draws, n), "f4"))})
    res = Result(summary, ds)
    start = time.perf_counter()
    markup = res._repr_html_()
    assert time.perf_counter() - start < 1.0
    assert "200,000 rows" in markup and "76.3 MB" in markup


def test_holdout_report_html_has_totals_and_coverage(fits, rfm):
    bg, gg = fits
    report = clvbayes.validate_holdout(bg, rfm, spend_fit=gg, n_draws=50, seed=1)
    markup = report._repr_html_()
    well_formed(markup)
    totals = report.totals.set_index("quantity")
    assert format_value(totals.loc["purchases", "actual"]) in markup
    assert format_value(totals.loc["purchases", "predicted_mean"]) in markup
    assert ("clvbayes-warn" in markup) == (not totals["in_interval"].all())
    assert "Coverage" in markup and "PIT" in markup
    text = repr(report)
    assert text.startswith("<HoldoutReport: 400 customers; purchases: predicted")


def test_compare_result_html_escapes_model_names_and_warnings():
    table = pd.DataFrame(
        {"rank": [0, 1], "elpd_loo": [-95341.2, -95372.0], "warning": [False, True]},
        index=pd.Index(["MBG/NBD", EVIL], name="model"),
    )
    result = CompareResult(table=table, loo={}, warnings=(f"{EVIL}: 3 of 10 customers",))
    markup = result._repr_html_()
    well_formed(markup)
    assert_escaped(markup)
    assert "-95,341" in markup and "1 Pareto-k warning(s)" in markup
    assert repr(result) == (
        f"<CompareResult elpd_loo: MBG/NBD -95,341.2, {EVIL} -95,372.0; 1 warning(s)>"
    )


def test_holdout_comparison_html(fits, rfm):
    bg, _ = fits
    cmp = clvbayes.holdout_comparison({EVIL: bg}, rfm, n_draws=20, seed=1)
    markup = cmp._repr_html_()
    well_formed(markup)
    assert_escaped(markup)
    assert format_value(cmp.metrics["mae"].iloc[0]) in markup
    assert repr(cmp).startswith(f"<HoldoutComparison: {EVIL} MAE")
