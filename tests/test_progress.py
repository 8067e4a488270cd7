"""Progress bars on long work (``clvbayes.progress``).

Oracle: what reaches standard error (pytest's ``capsys``). A run longer than the bar's
delay writes a bar naming the work with a rate and the time left; a run shorter than
the delay, or any run with ``progressbar=False`` / ``--quiet``, writes nothing. Most
tests make "long" by setting the delay to 0 (``clvbayes.progress.DELAY``, read at each
call); one slow test runs a scoring that really takes longer than the default delay.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import clvbayes
import clvbayes.progress
from clvbayes.cli import main
from clvbayes.datasets import load_cdnow


@pytest.fixture(scope="module")
def rfm(sample_holdout_rfm) -> pd.DataFrame:
    return sample_holdout_rfm


@pytest.fixture(scope="module")
def fits(sample_holdout_map_fits):
    return sample_holdout_map_fits


@pytest.fixture
def no_delay(monkeypatch):
    """Every bar shows from the start: a stand-in for work longer than the delay."""
    monkeypatch.setattr(clvbayes.progress, "DELAY", 0.0)


def _bar_lines(err: str) -> str:
    return err.replace("\r", "\n")


def test_predict_customers_shows_rate_and_time_left(fits, rfm, no_delay, capsys):
    bg, gg = fits
    clvbayes.predict_customers(bg, rfm, horizon=10, spend_fit=gg, n_draws=20, seed=1)
    err = _bar_lines(capsys.readouterr().err)
    assert "predict_customers" in err
    assert f"{len(rfm)}/{len(rfm)}" in err  # every customer counted, once
    assert "customers/s" in err and "<00:00" in err  # rate and time left


def test_predict_customers_progressbar_false_prints_nothing(fits, rfm, no_delay, capsys):
    bg, gg = fits
    clvbayes.predict_customers(
        bg, rfm, horizon=10, spend_fit=gg, n_draws=20, seed=1, progressbar=False
    )
    options = clvbayes.PredictOptions(n_draws=20, progressbar=False)
    clvbayes.predict_customers(bg, rfm, horizon=10, seed=1, options=options)
    assert capsys.readouterr().err == ""


def test_short_work_prints_nothing_with_the_default_delay(fits, rfm, capsys):
    bg, _ = fits
    start = time.perf_counter()
    clvbayes.predict_customers(bg, rfm.iloc[:20], horizon=10, n_draws=5, seed=1)
    assert time.perf_counter() - start < clvbayes.progress.DELAY
    assert capsys.readouterr().err == ""


def test_progress_does_not_change_the_numbers(fits, rfm, no_delay):
    bg, gg = fits
    kw = {"horizon": 10, "spend_fit": gg, "n_draws": 20, "seed": 3}
    shown = clvbayes.predict_customers(bg, rfm, **kw).summary
    silent = clvbayes.predict_customers(bg, rfm, progressbar=False, **kw).summary
    pd.testing.assert_frame_equal(shown, silent)


def test_progressbar_option_is_checked():
    with pytest.raises(TypeError, match="progressbar must be True or False"):
        clvbayes.PredictOptions(progressbar="yes")


def test_validate_holdout_shows_progress_unless_off(fits, rfm, no_delay, capsys):
    bg, gg = fits
    clvbayes.validate_holdout(bg, rfm, spend_fit=gg, n_draws=20, seed=1)
    assert "customers/s" in capsys.readouterr().err
    clvbayes.validate_holdout(bg, rfm, spend_fit=gg, n_draws=20, seed=1, progressbar=False)
    assert capsys.readouterr().err == ""


@pytest.mark.slow  # two MAP fits, each compiling its model
def test_fit_many_counts_fits_unless_off(rfm, no_delay, capsys):
    parts = [rfm.iloc[:200], rfm.iloc[200:]]
    fitted = clvbayes.BGNBD().fit_many(parts, seeds=[1, 2], method="map")
    err = _bar_lines(capsys.readouterr().err)
    assert len(fitted) == 2
    assert "fit_many" in err and "2/2" in err and "fits/s" in err
    clvbayes.BGNBD().fit_many(parts, seeds=[1, 2], method="map", progressbar=False)
    assert capsys.readouterr().err == ""


def test_dask_scorer_counts_partitions_on_the_local_scheduler(
    fits, rfm, no_delay, capsys, tmp_path
):
    dd = pytest.importorskip("dask.dataframe", exc_type=ImportError)
    from clvbayes.scale import predict_customers_dask

    bg, gg = fits
    ddf = dd.from_pandas(rfm, npartitions=3)
    kw = {"spend_fit": gg, "horizon": 10, "n_draws": 10, "seed": 1}
    out = predict_customers_dask(bg, ddf, out=tmp_path / "a", **kw).compute()
    err = _bar_lines(capsys.readouterr().err)
    assert len(out) == len(rfm)
    assert "predict_customers_dask" in err and "3/3" in err
    assert f"{len(rfm):,} customers" in err  # customers scored, in the postfix
    # the per-partition predictions show no bars of their own
    assert "predict_customers:" not in err
    predict_customers_dask(bg, ddf, out=tmp_path / "b", progressbar=False, **kw)
    assert capsys.readouterr().err == ""


def _report_args(rfm_csv, out) -> list[str]:
    return [
        "report",
        str(rfm_csv),
        "--customer-col",
        "customer_id",
        "--date-col",
        "date",
        "--value-col",
        "value",
        "--calibration-end",
        "1997-09-30",
        "--holdout-end",
        "1998-06-15",
        "--method",
        "map",
        "--draws",
        "40",
        "--chains",
        "1",
        "--out",
        str(out),
    ]


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory):
    tx = load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:200])]
    path = tmp_path_factory.mktemp("progress") / "tx.csv"
    tx.to_csv(path, index=False)
    return path


@pytest.mark.slow  # two reports, each fitting two models
def test_report_stages_show_progress_and_quiet_silences_them(log_csv, tmp_path, no_delay, capsys):
    assert main(_report_args(log_csv, tmp_path / "loud")) == 0
    err = _bar_lines(capsys.readouterr().err)
    assert "predict_customers" in err and "customers/s" in err  # the score stage
    assert "analyse" in err and "4/4" in err  # the analyse stage's steps
    assert main([*_report_args(log_csv, tmp_path / "quiet"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "%|" not in err and "predict_customers" not in err and "analyse" not in err


@pytest.mark.slow
def test_long_scoring_shows_a_bar_with_the_default_delay(fits, rfm, capsys):
    """No stand-in: 24,000 customers x 1,000 draws on one thread take several seconds,
    longer than the 2 s delay."""
    bg, gg = fits
    many = pd.concat([rfm] * 60, ignore_index=True).assign(customer_id=np.arange(len(rfm) * 60))
    start = time.perf_counter()
    clvbayes.predict_customers(
        bg, many, horizon=52, spend_fit=gg, n_draws=1000, n_jobs=1, chunk_customers=200, seed=1
    )
    took = time.perf_counter() - start
    err = _bar_lines(capsys.readouterr().err)
    assert took > clvbayes.progress.DELAY, f"the run took only {took:.1f} s; make it longer"
    assert "predict_customers" in err and "customers/s" in err
