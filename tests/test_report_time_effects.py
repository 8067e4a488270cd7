"""The report with calendar-time effects (issue 16): ``--time-effects`` and
``--calendar-covariates``.

Oracles: the library calls the section is made of (:func:`clvbayes.validate_holdout`'s
total on the same fit and data decides the sentence; :func:`clvbayes.calendar_multipliers`
and :func:`clvbayes.period_tracking` give the tables), the log itself (the weekly actual
counts add up to the repeat purchases of the calibration and holdout), and option errors
named as the command line names them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.cli import main
from clvbayes.datasets import load_cdnow
from clvbayes.report.pipeline import read_calendar_covariates

COLS = ["--customer-col", "customer_id", "--date-col", "date", "--value-col", "value"]
PERIOD = ["--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30"]
FAST = ["--method", "map", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    """600 CDNOW-sample customers' transactions and a weekly holiday dummy (the weeks of
    Christmas and New Year) covering calibration and the 52-week horizon."""
    tx = load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:600])]
    folder = tmp_path_factory.mktemp("time_effects")
    tx.to_csv(folder / "tx.csv", index=False)
    weeks = pd.date_range("1997-01-01", periods=95, freq="7D")
    holiday = ((weeks.month == 12) & (weeks.day >= 18)) | ((weeks.month == 1) & (weeks.day <= 7))
    pd.DataFrame({"week": weeks.date, "holiday": holiday.astype(int)}).to_csv(
        folder / "calendar.csv", index=False
    )
    return folder / "tx.csv", folder / "calendar.csv"


@pytest.fixture(scope="module")
def report_dir(files, tmp_path_factory) -> Path:
    tx, calendar = files
    out = tmp_path_factory.mktemp("out") / "report"
    extra = ["--time-effects", "--calendar-covariates", str(calendar)]
    assert main(["report", str(tx), *COLS, *PERIOD, *FAST, *extra, "--out", str(out)]) == 0
    return out


def test_report_shows_multipliers_weekly_tracking_and_the_verdict(report_dir, files):
    summary = json.loads((report_dir / "summary.json").read_text())
    section = summary["time_effects"]
    multipliers = pd.DataFrame(section["multipliers"])
    periods = pd.DataFrame(section["period_tracking"])
    # 39 calibration weeks, the holdout's 39 and the horizon's forecast weeks
    assert multipliers["calibration"].sum() == 39
    assert len(periods) == 78 and periods["calibration"].sum() == 39
    assert (multipliers["multiplier_low"] <= multipliers["multiplier_high"]).all()
    # the weekly actual counts are the log's repeat purchase days (same-day merged)
    tx = pd.read_csv(files[0])
    days = tx.drop_duplicates(["customer_id", "date"]).sort_values("date")
    repeat = days[days.duplicated("customer_id")]
    assert periods["actual"].sum() == len(repeat[repeat["date"] <= "1998-06-30"])
    # the sentence agrees with the holdout table of the same report
    totals = pd.DataFrame(summary["validation"]["totals"]).set_index("quantity")
    inside = bool(totals.loc["purchases", "in_interval"])
    assert section["holdout_total_inside"] is inside
    where = "inside" if inside else "(below|above)"
    assert re.search(rf"{int(totals.loc['purchases', 'actual']):,}, is {where} the 90%",
                     section["verdict"])  # fmt: skip
    page = (report_dir / "index.html").read_text()
    assert 'id="calendar"' in page and section["verdict"].split(",")[0] in page
    assert page.count("data:image/png;base64") >= 2
    assert summary["arguments"]["time_effects"] is True


def test_report_fits_the_time_effect_model_with_the_calendar_covariate(report_dir):
    fit = clvbayes.load(report_dir / "posterior.nc")["bgnbd"]
    assert fit.calendar is not None
    assert fit.calendar.covariate_names == ("holiday",)
    assert "calendar_coefficient" in fit.posterior


def test_config_from_summary_json_rebuilds_the_same_customers(report_dir, tmp_path):
    again = tmp_path / "again"
    config = str(report_dir / "summary.json")
    assert main(["report", "--config", config, "--out", str(again)]) == 0
    first = pd.read_csv(report_dir / "customers.csv")
    second = pd.read_csv(again / "customers.csv")
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--time-effects", "--model", "pareto-nbd"], "--model bgnbd or mbgnbd"),
        (["--calendar-covariates", "{calendar}"], "--calendar-covariates needs --time-effects"),
        (["--time-effects", "--time-unit", "M"], "needs --time-unit W or D"),
        (["--time-effects", "--calendar-covariates", "{missing}"], "no such file"),
        (["--time-effects", "--calendar-covariates", "{text}"], r"\['kind'\] are not numeric"),
    ],
)
def test_bad_time_effect_options_exit_2_with_one_line(files, tmp_path, capsys, extra, message):
    tx, calendar = files
    text = tmp_path / "text.csv"
    pd.read_csv(calendar).assign(kind="x").to_csv(text, index=False)
    names = {"calendar": calendar, "missing": tmp_path / "nope.csv", "text": text}
    extra = [e.format(**names) for e in extra]
    out = tmp_path / "report"
    assert main(["report", str(tx), *COLS, *PERIOD, *FAST, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(message, err), err
    assert not out.exists()


def test_time_effects_combine_with_segments_and_customer_covariates(files, tmp_path):
    """``--time-effects`` with ``--segment-col`` and ``--customer-table``/``--covariates``:
    one BG/NBD with the calendar, per-segment parameters and the covariate, and the
    report's sections of all three."""
    tx = files[0]
    log = pd.read_csv(tx)
    ids = log["customer_id"].unique()
    log["channel"] = np.where(log["customer_id"] % 3 == 0, "web", "shop")
    table = pd.DataFrame({"customer_id": ids, "member": (ids % 2).astype(int)})
    log.to_csv(tmp_path / "tx.csv", index=False)
    table.to_csv(tmp_path / "customers.csv", index=False)
    extra = ["--time-effects", "--segment-col", "channel", "--customer-table",
             str(tmp_path / "customers.csv"), "--covariates", "member"]  # fmt: skip
    out = tmp_path / "report"
    args = ["report", str(tmp_path / "tx.csv"), *COLS, *PERIOD, *FAST, *extra]
    assert main([*args, "--out", str(out)]) == 0
    fit = clvbayes.load(out / "posterior.nc")["bgnbd"]
    assert fit.calendar is not None and fit.covariates == ("member",)
    assert "purchase_coefficient" in fit.posterior
    assert list(fit.posterior["r"].coords["segment"].values) == ["shop", "web"]
    summary = json.loads((out / "summary.json").read_text())
    assert {"time_effects", "covariate_effects", "segments"} <= set(summary)
    customers = pd.read_csv(out / "customers.csv")
    web = customers["customer_id"] % 3 == 0
    assert (customers.loc[web, "segment"] == "web").all()


def test_compare_with_time_effects_sets_the_stationary_models_beside_it(
    files, tmp_path, monkeypatch, capsys
):
    """``--time-effects --compare``: the chosen model with time effects against itself
    without them and the other (stationary) families; the section is the library's
    holdout comparison of the same fits on the calendar data. Quiet (no log) means no
    progress bar, also for the comparison's predictions."""
    import clvbayes.progress
    from clvbayes.comparison import comparison_table, holdout_comparison
    from clvbayes.report.pipeline import ReportOptions, _seeds, build_report

    monkeypatch.setattr(clvbayes.progress, "DELAY", 0.0)

    tx = pd.read_csv(files[0])
    options = ReportOptions(
        customer_col="customer_id", date_col="date", value_col="value",
        calibration_end="1997-09-30", holdout_end="1998-06-30", method="map",
        time_effects=True, compare=True, draws=100, seed=2,
    )  # fmt: skip
    report = build_report(tx, options, log=None)
    assert "predict_customers" not in capsys.readouterr().err
    fits = report.fits
    assert fits["bgnbd"].calendar is not None
    assert fits["bgnbd_stationary"].calendar is None
    assert fits["bgnbd_stationary"].spec.options() == clvbayes.BGNBD().options()
    table = report.content.comparison
    assert set(table.index) == {"bgnbd", "bgnbd_stationary", "mbgnbd", "pareto-nbd"}
    assert table.loc["bgnbd", "label"] == "BG/NBD, calendar-time effects"
    assert table.loc["bgnbd_stationary", "label"] == "BG/NBD, stationary"
    assert bool(table.loc["bgnbd", "chosen"]) and table["chosen"].sum() == 1
    names = ("bgnbd", "spend", "horizon", "holdout", "validate", "tracking", "retention")
    seed = dict(zip((*names, "compare", "calendar"), _seeds(2, len(names) + 2), strict=True))
    models = {n: fits[n] for n in sorted(table.index)}
    data = clvbayes.calendar_rfm(
        tx, customer_col="customer_id", date_col="date", value_col="value",
        calibration_end="1997-09-30", observation_end="1998-06-30",
    )  # fmt: skip
    per_model = dict(zip(models, _seeds(seed["compare"], len(models)), strict=True))
    per_model["bgnbd"] = seed["validate"]  # the holdout section's: one interval, not two
    expected = comparison_table(
        None,
        holdout_comparison(models, data, seed=per_model, options=options.predict_options()),
    )
    shown = table.drop(columns=["label", "chosen"])
    pd.testing.assert_frame_equal(shown, expected.loc[shown.index], check_exact=False)
    totals = report.content.holdout_totals.set_index("quantity").loc["purchases"]
    assert table.loc["bgnbd", "total_low"] == totals["predicted_q05"]
    assert table.loc["bgnbd", "total_high"] == totals["predicted_q95"]
    from clvbayes.report import write_report

    write_report(report, tmp_path / "report")
    back = clvbayes.load(tmp_path / "report" / "posterior.nc")
    assert back["bgnbd_stationary"].calendar is None and back["bgnbd"].calendar is not None
    page = (tmp_path / "report" / "index.html").read_text()
    assert "BG/NBD, calendar-time effects" in page and "BG/NBD, stationary" in page


def test_calendar_covariates_too_short_for_the_horizon_are_named(files, tmp_path, capsys):
    tx, calendar = files
    short = tmp_path / "short.csv"
    pd.read_csv(calendar).iloc[:60].to_csv(short, index=False)
    extra = ["--time-effects", "--calendar-covariates", str(short)]
    out = tmp_path / "report"
    assert main(["report", str(tx), *COLS, *PERIOD, *FAST, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"clvbayes: error: --calendar-covariates {short}: ")
    assert re.search(r"missing for \d+ period\(s\) starting 1998-02-25", err), err


def test_calendar_covariates_file_is_read_as_periods(files, tmp_path):
    table = read_calendar_covariates(files[1])
    assert isinstance(table.index, pd.DatetimeIndex) and list(table.columns) == ["holiday"]
    assert table["holiday"].sum() == np.sum(pd.read_csv(files[1])["holiday"])
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"week": ["soon"], "holiday": [1]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="must hold each period's date"):
        read_calendar_covariates(bad)


def test_a_summary_customer_missing_from_the_calendar_is_an_error_not_another_customer(files):
    """The calendar is aligned to the summary by id; an id it lacks must not pick the last
    customer (pandas' ``get_indexer`` gives -1 for it)."""
    from clvbayes.report.pipeline import ReportOptions, _calendar_data

    tx = pd.read_csv(files[0])
    rfm = clvbayes.rfm_summary(
        tx, customer_col="customer_id", date_col="date", value_col="value",
        calibration_end="1997-09-30", time_unit="W",
    )  # fmt: skip
    options = ReportOptions(customer_col="customer_id", date_col="date", value_col="value")
    cal, obs = pd.Timestamp("1997-09-30"), None
    assert len(_calendar_data(tx, options, cal, obs, rfm).customers) == len(rfm)
    stranger = rfm.iloc[:3].assign(customer_id=[rfm["customer_id"].iloc[0], -1, -2])
    with pytest.raises(ValueError, match=r"2 customers of the summary .* \(e\.g\. -1\)"):
        _calendar_data(tx, options, cal, obs, stranger)


@pytest.mark.parametrize("flaw", ["gap", "blank"])
def test_calendar_covariates_flaws_found_when_fitting_name_the_file(files, tmp_path, capsys, flaw):
    """A calibration period without a row, or a blank value: the error names the file
    (before, only errors of the scoring stage did)."""
    tx, calendar = files
    table = pd.read_csv(calendar)
    if flaw == "gap":
        table = table.drop(index=10)
    else:
        table.loc[10, "holiday"] = np.nan
    bad = tmp_path / f"{flaw}.csv"
    table.to_csv(bad, index=False)
    extra = ["--time-effects", "--calendar-covariates", str(bad)]
    out = tmp_path / "report"
    assert main(["report", str(tx), *COLS, *PERIOD, *FAST, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"clvbayes: error: --calendar-covariates {bad}: "), err
    assert ("missing for 1 period(s)" if flaw == "gap" else "NaN or infinite") in err, err


def test_a_calendar_file_dated_off_the_week_starts_is_warned_in_the_report(files, tmp_path):
    """The warning names the caller's line (outside the package), and the report still
    records it in summary.json (it was printed only, as a raw Python warning)."""
    tx, calendar = files
    table = pd.read_csv(calendar)
    table["week"] = (pd.to_datetime(table["week"]) + pd.Timedelta(days=4)).dt.date  # Sundays
    sundays = tmp_path / "sundays.csv"
    table.to_csv(sundays, index=False)
    extra = ["--time-effects", "--calendar-covariates", str(sundays)]
    out = tmp_path / "report"
    with pytest.warns(UserWarning, match="dated on a Sunday"):
        code = main(["report", str(tx), *COLS, *PERIOD, *FAST, *extra, "--out", str(out)])
    assert code == 0
    recorded = json.loads((out / "summary.json").read_text())["warnings"]
    assert any("dated on a Sunday" in w for w in recorded), recorded
