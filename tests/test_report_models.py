"""`clvbayes report --model` and `--compare`.

The report scores the customers with the model ``--model`` names, and its comparison
table is the one-call library functions' (:func:`clvbayes.comparison.comparison_table` of
:func:`clvbayes.compare` and :func:`clvbayes.holdout_comparison`). MAP fits on 400
CDNOW-sample customers (NUTS for LOO); the runs that fit models are slow-marked, the
option checks are not. The lapse and P(alive) tables of the default report are checked
in ``tests/test_report_crm.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.cli import main
from clvbayes.comparison import compare, comparison_table, holdout_comparison
from clvbayes.datasets import load_cdnow
from clvbayes.math.family import model_names
from clvbayes.report import ReportOptions, build_report, write_report

COLS = ["--customer-col", "customer_id", "--date-col", "date", "--value-col", "value"]
PERIOD = ["--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30"]
FAST = ["--method", "map", "--draws", "60", "--chains", "1", "--quiet"]
NAMES = ("bgnbd", "spend", "horizon", "holdout", "validate", "tracking", "retention", "compare")


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    """The first 400 customers of the CDNOW sample, with a two-level channel."""
    tx = load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:400])].copy()
    tx["channel"] = np.where(tx["customer_id"] % 2 == 0, "web", "store")
    return tx


@pytest.fixture(scope="module")
def few(transactions) -> pd.DataFrame:
    """200 of those customers, for the runs that fit every model, with a purchase on the
    holdout's last day (the report refuses a holdout that outlasts the log)."""
    ids = transactions["customer_id"].unique()
    late = transactions.loc[transactions["date"] == transactions["date"].max(), "customer_id"]
    return transactions[transactions["customer_id"].isin({*ids[:199], late.iloc[0]})]


def _options(**changes) -> ReportOptions:
    base = dict(
        customer_col="customer_id", date_col="date", value_col="value",
        calibration_end="1997-09-30", holdout_end="1998-06-30", method="map", draws=60,
        chains=1, seed=3,
    )  # fmt: skip
    return ReportOptions(**{**base, **changes})


def _seeds(seed: int) -> dict[str, int]:
    """The report's seeds: one per random step, spawned in this order."""
    spawned = np.random.SeedSequence(seed).spawn(len(NAMES))
    return {k: int(s.generate_state(1)[0]) for k, s in zip(NAMES, spawned, strict=True)}


def _spawned(seed: int, n: int) -> list[int]:
    """``n`` seeds spawned from one, as the report spawns them."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def _rfm(transactions) -> pd.DataFrame:
    return clvbayes.rfm_summary(
        transactions, customer_col="customer_id", date_col="date", value_col="value",
        calibration_end="1997-09-30", observation_end="1998-06-30",
    )  # fmt: skip


@pytest.fixture(scope="module")
def mbg_report(transactions, tmp_path_factory):
    report = build_report(transactions, _options(model="mbgnbd", lapse_window=8.0), log=None)
    out = tmp_path_factory.mktemp("mbg") / "report"
    write_report(report, out)
    return report, out


@pytest.mark.slow
def test_model_option_fits_the_named_family_and_scores_with_it(mbg_report, transactions):
    report, out = mbg_report
    assert list(report.fits) == ["mbgnbd", "gamma_gamma"]
    assert report.fits["mbgnbd"].kind == "MBGNBD"
    assert "fit MBG/NBD" in report.timings and "fit BG/NBD" not in report.timings
    rfm = _rfm(transactions)
    seeds = _seeds(3)
    result = clvbayes.predict_customers(
        report.fits["mbgnbd"], rfm, horizon=52.0, spend_fit=report.fits["gamma_gamma"],
        time_unit="W", annual_discount=0.1, n_draws=60, seed=seeds["horizon"],
        keep_draws=("p_alive", "clv"),
    )  # fmt: skip
    customers = pd.read_csv(out / "customers.csv")
    np.testing.assert_allclose(customers["p_alive"], result.summary["p_alive"], rtol=1e-12)
    np.testing.assert_allclose(customers["clv_mean"], result.summary["clv_mean"], rtol=1e-12)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arguments"]["model"] == "mbgnbd"
    assert summary["data"]["transaction model"] == "MBG/NBD (purchases and dropout)"
    assert list(summary["models"]) == ["mbgnbd", "gamma_gamma"]
    assert "comparison" not in summary
    assert summary["lapse"] == {"window": 8.0, "n_customers": report.content.n_lapse}
    loaded = clvbayes.load(out / "posterior.nc")
    assert loaded["mbgnbd"].kind == "MBGNBD"
    page = (out / "index.html").read_text()
    assert "Who is likely to lapse in the next 8 weeks" in page
    assert "MBG/NBD models each customer" in page and "Model comparison" not in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--model", "bgnbd2"], "invalid choice"),
        (["--model", "pareto-nbd", "--segment-col", "channel"], "cannot be fitted per segment"),
        (["--lapse-window", "0"], "--lapse-window must be positive"),
    ],
)
def test_bad_model_options_exit_2_with_one_line(transactions, tmp_path, capsys, change, message):
    path = tmp_path / "tx.csv"
    transactions.to_csv(path, index=False)
    out = tmp_path / "never"
    assert main(["report", str(path), *COLS, *PERIOD, *FAST, *change, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("clvbayes: error:") and message in err[0], err
    assert not out.exists()


def test_compare_without_draws_or_holdout_is_refused_before_any_work(transactions):
    with pytest.raises(ValueError, match="--compare needs --holdout-end"):
        build_report(transactions, _options(compare=True, holdout_end=None), log=None)


@pytest.mark.slow
def test_compare_fits_every_transaction_model_and_tables_their_holdout(few, tmp_path):
    report = build_report(few, _options(model="pareto-nbd", compare=True), log=None)
    assert set(report.fits) == {*model_names(), "gamma_gamma"}
    table = report.content.comparison
    assert list(table.index) == sorted(model_names())
    assert table["chosen"].tolist() == [n == "pareto-nbd" for n in table.index]
    rfm = _rfm(few)
    models = {n: report.fits[n] for n in sorted(model_names())}
    # the chosen model's holdout is the holdout section's (its seed), the others' are
    # spawned from the comparison's seed
    seeds = dict(zip(models, _spawned(_seeds(3)["compare"], len(models)), strict=True))
    seeds["pareto-nbd"] = _seeds(3)["validate"]
    holdout = holdout_comparison(models, rfm, seed=seeds, options=report.options.predict_options())
    expected = comparison_table(None, holdout)
    pd.testing.assert_frame_equal(table[expected.columns], expected, check_exact=True)
    # so the chosen model shows one interval, not two differing in Monte Carlo error
    shown = report.content.holdout_totals.set_index("quantity").loc["purchases"]
    assert table.loc["pareto-nbd", "total_low"] == shown["predicted_q05"]
    assert table.loc["pareto-nbd", "total_high"] == shown["predicted_q95"]
    assert any("PSIS-LOO needs posterior draws" in n for n in report.content.notes)
    # the chosen model scores the customers; every model's figures are in summary.json
    write_report(report, tmp_path / "report")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert {r["model"] for r in summary["comparison"]} == set(model_names())
    assert set(summary["models"]) == {*model_names(), "gamma_gamma"}
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Model comparison" in page and "holdout MAE" in page


def test_compare_with_segments_leaves_out_models_without_pooling():
    from clvbayes.report.pipeline import _alternatives

    options = _options(model="bgnbd", compare=True, segment_col="channel")
    assert _alternatives(options, segmented=True) == (["mbgnbd"], ["pareto-nbd"])
    assert _alternatives(options, segmented=False) == (["mbgnbd", "pareto-nbd"], [])
    assert _alternatives(_options(model="mbgnbd"), segmented=False) == ([], [])


@pytest.mark.slow
def test_compare_with_posterior_draws_adds_psis_loo(few):
    options = _options(compare=True, method="nuts", draws=150, tune=150, chains=2, holdout_end=None)
    report = build_report(few, options, log=None)
    table = report.content.comparison
    models = {n: report.fits[n] for n in sorted(model_names())}
    expected = comparison_table(compare(models))
    pd.testing.assert_frame_equal(table[expected.columns], expected, check_exact=True)
    assert table["elpd_diff"].min() == 0.0 and table["weight"].sum() == pytest.approx(1.0)
    assert "mae" not in table
