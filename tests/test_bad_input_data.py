"""Bad input data (issue 20, items 8, 11, 12, 13 and 15): each case gets a clear error or a
warning that names the argument, the file and line, or the count, and says what to do.

Real files in ``tmp_path``; the command line through ``clvbayes.cli.main`` (exit status 2
and one ``clvbayes: error: ...`` line). The oracles are hand-made logs whose answer is
known, and ``pandas.read_csv`` for what a CSV file holds.
"""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest

from clvbayes.cli import main
from clvbayes.data.calendar import calendar_rfm
from clvbayes.data.rfm import first_purchase_values, rfm_summary
from clvbayes.data.validate import check_rfm, validate_transactions
from clvbayes.datasets import load_cdnow
from clvbayes.models import BGNBD, GammaGamma
from clvbayes.report import ReportOptions, build_report

KW = {"customer_col": "customer_id", "date_col": "date", "value_col": "value"}
COLS = ["--customer-col", "customer_id", "--date-col", "date", "--value-col", "value"]
FAST = ["--method", "map", "--draws", "50", "--chains", "1"]


def log() -> pd.DataFrame:
    """Three customers; the last transaction is on 2020-03-01."""
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3, 3],
            "date": ["2020-01-01", "2020-02-01", "2020-01-15", "2020-01-20", "2020-03-01"],
            "value": [10.0, 20.0, 5.0, 7.0, 3.0],
        }
    )


def write_csv(path, lines: list[str]):
    path.write_text("\n".join(lines) + "\n")
    return path


def long_csv(path, n: int = 30_000, bad_row: int | None = None, bad: str = ""):
    """``n`` rows (ids 0..n-1, one purchase each) with row ``bad_row`` replaced."""
    rows = [f"{i},2020-01-{1 + i % 28:02d},1.5" for i in range(n)]
    if bad_row is not None:
        rows[bad_row] = bad
    return write_csv(path, ["customer_id,date,value", *rows])


def cli_error(argv: list[str], capsys) -> str:
    """Run the command line; assert exit 2 with one error line; return that line."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("clvbayes: error: ")]
    assert len(errors) == 1, lines
    return errors[0]


def no_warnings(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


# --- item 8: period arguments are ISO 8601 or date objects; bounds past the data -------


@pytest.mark.parametrize("argument", ["calibration_end", "observation_end"])
def test_slashed_period_bound_is_refused_with_both_iso_readings(argument):
    bounds = {"calibration_end": "2020-02-01", argument: "01/02/2020"}
    with pytest.raises(ValueError) as exc:
        rfm_summary(log(), **KW, **bounds)
    message = str(exc.value)
    assert f"{argument}='01/02/2020' is not a date in ISO 8601 form" in message
    assert "'2020-01-02' for 2 January 2020" in message
    assert "'2020-02-01' for 1 February 2020" in message


@pytest.mark.parametrize("bad", ["Feb 1 2020", "20200201", "2020/02/01", 20200201, 1.5])
def test_other_non_iso_bounds_are_refused(bad):
    with pytest.raises(ValueError, match=r"calibration_end=.* is not a date"):
        rfm_summary(log(), **KW, calibration_end=bad)


@pytest.mark.parametrize(
    "bound",
    [
        "2020-02-01",
        "2020-02-01 23:59:59",
        "2020-02-01T08:00+02:00",
        dt.date(2020, 2, 1),
        dt.datetime(2020, 2, 1, 12),
        pd.Timestamp("2020-02-01 12:00", tz="Europe/Paris"),
        np.datetime64("2020-02-01T12:00"),
    ],
    ids=["iso", "iso with time", "iso with offset", "date", "datetime", "Timestamp", "dt64"],
)
def test_iso_text_and_date_objects_give_the_same_table(bound):
    expected = rfm_summary(log(), **KW, calibration_end="2020-02-01")
    pd.testing.assert_frame_equal(rfm_summary(log(), **KW, calibration_end=bound), expected)


def test_cli_period_options_take_iso_only(tmp_path, capsys):
    path = tmp_path / "tx.csv"
    log().to_csv(path, index=False)
    out = tmp_path / "o.csv"
    line = cli_error(
        ["rfm", str(path), *COLS, "--calibration-end", "01/02/2020", "--out", str(out)], capsys
    )
    assert "calibration_end='01/02/2020' is not a date in ISO 8601 form" in line
    assert "'2020-01-02' for 2 January 2020" in line
    line = cli_error(
        ["report", str(path), *COLS, *FAST, "--holdout-end", "03/01/2020", "--out", str(out)],
        capsys,
    )
    assert "--holdout-end='03/01/2020' is not a date in ISO 8601 form" in line
    assert not out.exists()


def test_calibration_end_past_the_data_warns_that_t_includes_time_without_data():
    with pytest.warns(UserWarning) as record:
        rfm = rfm_summary(log(), **KW, calibration_end="2030-01-01")
    (warning,) = record
    message = str(warning.message)
    assert "calibration_end=2030-01-01 is 3,593 days (513.3 weeks) after the last" in message
    assert "transaction in the log (2020-03-01)" in message
    assert "T would include time without any recorded purchase" in message
    assert warning.filename == __file__  # points at the caller's line
    assert rfm["T"].min() > 500  # the table is still returned


def test_observation_end_past_the_data_warns_about_the_holdout():
    with pytest.warns(UserWarning, match="observation_end=2021-01-01 is 306 days") as record:
        rfm_summary(log(), **KW, calibration_end="2020-02-01", observation_end="2021-01-01")
    assert "holdout period (holdout_duration)" in str(record[0].message)


def test_bounds_within_one_time_unit_of_the_data_do_not_warn():
    # the last transaction is 2020-03-01: a week later is fine in weeks, not in days
    no_warnings(lambda: rfm_summary(log(), **KW, calibration_end="2020-03-08"))
    no_warnings(lambda: rfm_summary(log(), **KW, calibration_end="2020-03-02", time_unit="D"))
    with pytest.warns(UserWarning, match=r"is 2 days after the last transaction"):
        rfm_summary(log(), **KW, calibration_end="2020-03-03", time_unit="D")
    no_warnings(
        lambda: rfm_summary(log(), **KW, calibration_end="2020-02-01", observation_end="2020-03-01")
    )


def test_report_holdout_end_past_the_data_fails_before_any_fitting(tmp_path, capsys):
    path = tmp_path / "tx.csv"
    log().to_csv(path, index=False)
    out = tmp_path / "report"
    argv = ["report", str(path), *COLS, *FAST, "--calibration-end", "2020-02-01"]
    line = cli_error([*argv, "--holdout-end", "2022-01-01", "--out", str(out)], capsys)
    assert "--holdout-end=2022-01-01 is 671 days (95.9 weeks) after the last" in line
    assert "on or before 2020-03-01" in line
    assert not out.exists()


def test_report_holdout_end_check_runs_before_the_fit_stage(tmp_path):
    lines: list[str] = []
    options = ReportOptions(
        **KW,
        calibration_end="2020-02-01",
        holdout_end="2022-01-01",
        method="map",
    )
    with pytest.raises(ValueError, match="--holdout-end=2022-01-01"):
        build_report(log(), options, log=lines.append)
    assert not [line for line in lines if "fit" in line]


# --- item 11: files ------------------------------------------------------------------


def test_empty_file_says_it_is_empty(tmp_path, capsys):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"file '.*empty\.csv' is empty \(0 bytes\)"):
        rfm_summary(path, **KW)
    line = cli_error(["rfm", str(path), *COLS, "--out", str(tmp_path / "o.csv")], capsys)
    assert "is empty (0 bytes)" in line and "column0" not in line


def test_directory_as_input_says_it_is_a_directory(tmp_path, capsys):
    folder = tmp_path / "orders.csv"
    folder.mkdir()
    with pytest.raises(ValueError, match="is a directory, not a file"):
        validate_transactions(folder, **KW)
    line = cli_error(["rfm", str(folder), *COLS, "--out", str(tmp_path / "o.csv")], capsys)
    assert "is a directory, not a file" in line and "does not exist" not in line


def test_ragged_line_past_the_sniffer_sample_names_file_line_and_fix(tmp_path, capsys):
    path = long_csv(tmp_path / "ragged.csv", bad_row=27720, bad="5,2020-01-01,1.5,extra")
    with pytest.raises(ValueError) as exc:
        rfm_summary(path, **KW)
    message = str(exc.value)
    assert "ragged.csv" in message and "line 27722" in message  # header is line 1
    assert "'5,2020-01-01,1.5,extra'" in message
    assert "has 4 fields where the header has 3" in message
    assert "quote values that contain the delimiter" in message
    assert "CSV Error" not in message
    line = cli_error(["rfm", str(path), *COLS, "--out", str(tmp_path / "o.csv")], capsys)
    assert "line 27722" in line


def test_ragged_line_in_the_first_rows_names_the_line_not_a_missing_column(tmp_path):
    path = write_csv(
        tmp_path / "short.csv",
        ["customer_id,date,value", "1,2020-01-01,1", "2,2020-01-02", "3,2020-01-03,3"],
    )
    with pytest.raises(ValueError, match=r"line 3 .* has 2 fields where the header has 3"):
        rfm_summary(path, **KW)
    path = write_csv(
        tmp_path / "long.csv",
        ["customer_id,date,value", "1,2020-01-01,1", "2,2020-01-02,2,9", "3,2020-01-03,3"],
    )
    with pytest.raises(ValueError, match=r"line 3 .* has 4 fields where the header has 3"):
        rfm_summary(path, **KW)


def test_non_numeric_value_past_the_sniffer_sample_is_counted_like_any_other(tmp_path):
    path = long_csv(tmp_path / "tx.csv", bad_row=27720, bad="5,2020-01-01,n/a")
    with pytest.raises(ValueError) as exc:
        rfm_summary(path, **KW)
    assert str(exc.value).startswith(
        "column 'value': 1 of 30,000 rows are not numbers (e.g. 'n/a'); convert the column"
    )


def test_text_id_past_the_sniffer_sample_reads_ids_as_text_like_pandas(tmp_path):
    path = long_csv(tmp_path / "tx.csv", bad_row=27720, bad="A-17,2020-01-01,1.5")
    got = rfm_summary(path, **KW)
    expected = rfm_summary(pd.read_csv(path), **KW)  # pandas reads the column as text
    pd.testing.assert_frame_equal(got, expected)
    assert "A-17" in set(got["customer_id"]) and len(got) == 30_000


def test_numeric_ids_of_a_clean_csv_stay_numbers(tmp_path):
    path = tmp_path / "tx.csv"
    log().to_csv(path, index=False)
    pd.testing.assert_frame_equal(rfm_summary(path, **KW), rfm_summary(log(), **KW))


def test_rfm_out_that_is_a_folder_is_refused_before_any_work(tmp_path, capsys):
    path = tmp_path / "tx.csv"
    log().to_csv(path, index=False)
    folder = tmp_path / "dir.csv"
    (folder / "sub").mkdir(parents=True)
    line = cli_error(["rfm", str(path), *COLS, "--out", str(folder)], capsys)
    assert f"--out '{folder}' is a folder; give a file name" in line
    assert [p.name for p in folder.iterdir()] == ["sub"]


# --- item 12: a customer whose first purchase is on the calibration end's day ---------


def test_rfm_summary_keeps_t_zero_customers_and_check_rfm_says_to_drop_them():
    rfm = rfm_summary(log(), **KW, calibration_end="2020-01-20")
    assert rfm.set_index("customer_id").loc[3, "T"] == 0.0  # first purchase on the day
    with pytest.raises(ValueError) as exc:
        check_rfm(rfm, ["frequency", "recency", "T"])
    message = str(exc.value)
    assert "column 'T': 1 of 3 rows are 0" in message
    assert "first purchase on the calibration end's day" in message
    assert "rfm[rfm['T'] > 0]" in message
    assert "later" not in message  # the CLI refuses a calibration end after the data
    check_rfm(rfm[rfm["T"] > 0], ["frequency", "recency", "T"])


def test_a_calendar_summary_gets_fixes_that_work_on_it():
    """The fixes the errors name work on what calendar_rfm returns: its T = 0 customers
    are dropped with ``select`` (it is not a DataFrame), and a Gamma-Gamma fit of a
    summary without spend asks for ``value_col``."""
    no_value = {k: v for k, v in KW.items() if k != "value_col"}
    newcomer = pd.DataFrame({"customer_id": [4], "date": ["2020-02-01"], "value": [1.0]})
    transactions = pd.concat([log(), newcomer], ignore_index=True)
    data = calendar_rfm(transactions, **no_value, calibration_end="2020-02-01")
    with pytest.raises(ValueError) as exc:
        BGNBD().fit(data, method="map")
    assert "data.select(data.customers['T'] > 0)" in str(exc.value)
    kept = data.select(data.customers["T"] > 0)
    assert sorted(kept.customers["customer_id"]) == [1, 2, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one repeat buyer: the fit warns that few inform it
        BGNBD().fit(kept, method="map")
    with pytest.raises(ValueError, match=r"pass value_col=\.\.\. to clvbayes.rfm_summary"):
        GammaGamma().fit(kept, method="map")


@pytest.fixture(scope="module")
def sample_with_new_customer() -> pd.DataFrame:
    """300 CDNOW customers plus one acquired on the calibration end with a holdout repeat."""
    tx = load_cdnow("sample")[["customer_id", "date", "value"]]
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:300])]
    new = pd.DataFrame(
        {
            "customer_id": [99_999, 99_999],
            "date": pd.to_datetime(["1997-09-30", "1998-01-05"]),
            "value": [12.0, 20.0],
        }
    )
    return pd.concat([tx, new], ignore_index=True)


def test_report_leaves_out_customers_acquired_on_the_calibration_end(sample_with_new_customer):
    options = ReportOptions(
        customer_col="customer_id", date_col="date", value_col="value",
        calibration_end="1997-09-30", holdout_end="1998-06-30",
        method="map", draws=50, chains=1,
    )  # fmt: skip
    with pytest.warns(UserWarning) as record:
        report = build_report(sample_with_new_customer, options, log=None)
    messages = [str(w.message) for w in record]
    assert any(
        m.startswith("1 of 301 customers made their first purchase on the calibration end "
                     "(1997-09-30), so T = 0") for m in messages
    ), messages  # fmt: skip
    customers = report.customers
    assert len(customers) == 300 and 99_999 not in set(customers["customer_id"])
    # the tracking plot's actual curve counts the same customers as the table
    end = report.content.tracking.iloc[-1]
    assert end["actual"] == customers["frequency"].sum() + customers["holdout_frequency"].sum()


# --- item 13: ids and duplicates -----------------------------------------------------


@pytest.mark.parametrize("blank", ["", "  ", "\t"])
def test_empty_or_blank_ids_are_an_error(blank):
    data = log().assign(customer_id=["a", "a", blank, "b", blank])
    with pytest.raises(ValueError) as exc:
        rfm_summary(data, **KW)
    message = str(exc.value)
    assert message.startswith(
        f"column 'customer_id': 2 of 5 rows have an empty or blank customer id (e.g. {blank!r})"
    )
    assert "drop those rows or fill in the customer id" in message


def test_blank_ids_in_a_csv_file_are_an_error(tmp_path):
    path = write_csv(
        tmp_path / "tx.csv",
        ["customer_id,date,value", "a,2020-01-01,1", '"   ",2020-01-02,2', "b,2020-01-03,3"],
    )
    with pytest.raises(ValueError, match="1 of 3 rows have an empty or blank customer id"):
        validate_transactions(path, **KW)


def test_a_log_loaded_twice_warns_with_the_count_and_the_way_out():
    twice = pd.concat([log(), log()], ignore_index=True)
    with pytest.warns(UserWarning) as record:
        doubled = rfm_summary(twice, **KW, calibration_end="2020-02-15")
    (warning,) = record
    message = str(warning.message)
    assert message.startswith("5 of 10 transactions repeat another row exactly")
    assert "e.g. customer_id=1, date=2020-01-01, value=10.0" in message
    assert "drop_duplicates=True" in message and "--drop-duplicates" in message
    once = rfm_summary(log(), **KW, calibration_end="2020-02-15")
    assert doubled.loc[0, "monetary_value"] == 2 * once.loc[0, "monetary_value"]
    deduplicated = no_warnings(
        lambda: rfm_summary(twice, **KW, calibration_end="2020-02-15", drop_duplicates=True)
    )
    pd.testing.assert_frame_equal(deduplicated, once)
    with pytest.warns(UserWarning, match="5 of 10 transactions repeat"):
        validate_transactions(twice, **KW)


def test_repeated_timestamped_row_warns_even_when_rare():
    data = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, *range(2, 200)],
            "date": ["2020-01-01 10:15:02", "2020-01-01 10:15:02", "2020-02-01 09:00:00"]
            + ["2020-01-05 12:00:00"] * 198,
            "value": [5.0, 5.0, 7.0] + [1.0] * 198,
        }
    )
    with pytest.warns(UserWarning, match=r"1 of 201 transactions repeat another row"):
        rfm_summary(data, **KW)


def test_rare_identical_same_day_orders_and_same_day_purchases_do_not_warn():
    # CDNOW: 255 identical same-day orders among 69,659 rows (0.4 %) are real orders
    no_warnings(lambda: rfm_summary(load_cdnow("master"), **KW, calibration_end="1997-09-30"))
    # same customer, same day, different values: one purchase, values summed (no warning)
    data = pd.DataFrame(
        {
            "customer_id": [1, 1, 1],
            "date": ["2020-01-01", "2020-01-01", "2020-01-08"],
            "value": [2.0, 3.0, 4.0],
        }
    )
    rfm = no_warnings(lambda: rfm_summary(data, **KW, time_unit="D"))
    assert rfm[["frequency", "recency", "monetary_value"]].values.tolist() == [[1, 7.0, 4.0]]


def test_cli_rfm_drop_duplicates(tmp_path, capsys):
    path, out = tmp_path / "tx.csv", tmp_path / "o.csv"
    pd.concat([log(), log()]).to_csv(path, index=False)
    assert main(["rfm", str(path), *COLS, "--drop-duplicates", "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), rfm_summary(log(), **KW))


# --- item 15: a missing --segment-col column names --segment-col ---------------------


def test_missing_segment_column_names_segment_col(tmp_path, capsys):
    path = tmp_path / "tx.csv"
    log().to_csv(path, index=False)
    out = tmp_path / "report"
    line = cli_error(
        ["report", str(path), *COLS, *FAST, "--segment-col", "channel", "--out", str(out)],
        capsys,
    )
    assert "column 'channel' not found" in line
    assert "--segment-col" in line and "--customer-col" not in line
    assert not out.exists()
    with pytest.raises(ValueError, match=r"pass the right name with columns=\."):
        first_purchase_values(log(), customer_col="customer_id", date_col="date",
                              columns=["channel"])  # fmt: skip


def test_missing_main_column_names_only_its_own_option():
    with pytest.raises(ValueError) as exc:
        rfm_summary(log(), **{**KW, "value_col": "amount"})
    message = str(exc.value)
    assert "value_col= (--value-col on the command line)" in message
    assert "--customer-col" not in message


def test_a_missing_customer_level_column_names_the_command_line_options():
    """The report's per-customer columns come from --covariates/--segment-col (or a
    --customer-table); the message named only the Python keyword."""
    from clvbayes.data.source import check_columns

    with pytest.raises(ValueError, match="--covariates or --segment-col on the command line"):
        check_columns(["customer_id", "date"], [("customer_cols", "gender")])
