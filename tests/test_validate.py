"""Input checks: every error names the column, the count, an example and the fix."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import polars as pl
import pytest

from clvbayes.data.rfm import rfm_summary
from clvbayes.data.validate import validate_transactions

KW = {"customer_col": "customer_id", "date_col": "date", "value_col": "value"}


def frame(**columns) -> pd.DataFrame:
    base = {
        "customer_id": [1, 2, 3],
        "date": ["2020-01-01", "2020-01-02", "2020-01-03"],
        "value": [1.0, 2.0, 3.0],
    }
    return pd.DataFrame({**base, **columns})


def assert_error(exc: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(exc.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# (case, frame, expected parts of the message: column, count, example, fix)
ROW_CASES = [
    (
        "missing customer id",
        frame(customer_id=[1, None, 3]),
        ["'customer_id'", "1 of 3 rows", "missing customer id", "fill in the customer id"],
    ),
    (
        "unparsable date",
        frame(date=["2020-01-01", "01/02/2020x", "2020-01-03"]),
        ["'date'", "1 of 3 rows", "'01/02/2020x'", "ISO 8601"],
    ),
    (
        "missing date",
        frame(date=["2020-01-01", None, None]),
        ["'date'", "2 of 3 rows", "missing date", "fill in the transaction date"],
    ),
    (
        "missing datetime (NaT)",
        frame(date=pd.to_datetime(["2020-01-01", None, "2020-01-03"])),
        ["'date'", "1 of 3 rows", "NaT", "drop those rows"],
    ),
    (
        "non-numeric value",
        frame(value=["1.5", "$2", "3"]),
        ["'value'", "1 of 3 rows", "not numbers", "'$2'", "convert the column to numbers"],
    ),
    (
        "non-numeric value in an object column",
        frame(value=[1.5, "n/a", 3.0]),
        ["'value'", "1 of 3 rows", "'n/a'", "convert"],
    ),
    (
        "NaN value",
        frame(value=[1.0, np.nan, np.nan]),
        ["'value'", "2 of 3 rows", "missing or NaN", "fill in the transaction value"],
    ),
    (
        "infinite value",
        frame(value=[1.0, np.inf, 3.0]),
        ["'value'", "1 of 3 rows", "infinite", "inf", "fix the transaction value"],
    ),
    (
        "negative value",
        frame(value=[1.0, -2.5, -1.0]),
        ["'value'", "2 of 3 rows", "negative", "-2.5", "allow_negative=True"],
    ),
    (
        "mixed tz-aware and naive datetimes",
        frame(
            date=pd.Series(
                [
                    pd.Timestamp("2020-01-01", tz="UTC"),
                    pd.Timestamp("2020-01-02"),
                    pd.Timestamp("2020-01-03"),
                ],
                dtype=object,
            )
        ),
        ["'date'", "1 of 3 rows", "time-zone aware", "+00:00", "naive"],
    ),
    (
        "mixed tz-aware and naive text",
        frame(date=["2020-01-01T10:00:00+02:00", "2020-01-02", "2020-01-03 08:00Z"]),
        ["'date'", "2 of 3 rows", "time-zone aware", "naive"],
    ),
]


@pytest.mark.parametrize(("case", "data", "parts"), ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_bad_rows_raise_clear_value_errors(case, data, parts):
    for check in (rfm_summary, validate_transactions):
        with pytest.raises(ValueError) as exc:
            check(data, **KW)
        assert_error(exc, *parts)


def test_bad_rows_in_a_csv_file_give_the_same_message(tmp_path):
    path = tmp_path / "tx.csv"
    frame(value=[1.0, -2.5, 3.0]).to_csv(path, index=False)
    with pytest.raises(ValueError) as exc:
        rfm_summary(path, **KW)
    assert_error(exc, "'value'", "1 of 3 rows", "-2.5", "allow_negative=True")


def test_negative_values_accepted_with_allow_negative():
    out = rfm_summary(frame(value=[1.0, -2.5, 3.0]), **KW, allow_negative=True)
    assert out["customer_id"].tolist() == [1, 3]  # customer 2 only has a refund day


def test_zero_values_are_legal():
    validate_transactions(frame(value=[0.0, 0.0, 1.0]), **KW)


@pytest.mark.parametrize("column", ["customer_id", "date", "value"])
def test_missing_column_names_it_and_the_option(column):
    data = frame().rename(columns={column: "other"})
    with pytest.raises(ValueError) as exc:
        rfm_summary(data, **KW)
    assert_error(exc, f"column {column!r} not found", "'other'", "_col=")


def test_missing_column_in_a_parquet_file(tmp_path):
    path = tmp_path / "tx.parquet"
    frame().to_parquet(path)
    with pytest.raises(ValueError, match="column 'amount' not found"):
        rfm_summary(path, **{**KW, "value_col": "amount"})


@pytest.mark.parametrize(
    "data", [frame().iloc[:0], pd.DataFrame({"customer_id": [], "date": [], "value": []})]
)
def test_empty_frame(data):
    with pytest.raises(ValueError, match=r"empty \(0 rows\)"):
        rfm_summary(data, **KW)


def test_calibration_end_before_every_first_purchase():
    with pytest.raises(ValueError) as exc:
        rfm_summary(frame(), **KW, calibration_end="2019-12-31")
    assert_error(exc, "calibration_end=2019-12-31", "before every", "2020-01-01", "later")


def test_observation_end_before_calibration_end():
    with pytest.raises(ValueError) as exc:
        rfm_summary(frame(), **KW, calibration_end="2020-01-03", observation_end="2020-01-02")
    assert_error(exc, "observation_end=2020-01-02", "before calibration_end=2020-01-03")


def test_wrong_types_are_type_errors():
    with pytest.raises(TypeError, match=r"column 'date' has type BIGINT.*to_datetime"):
        rfm_summary(frame(date=[20200101, 20200102, 20200103]), **KW)
    with pytest.raises(TypeError, match="column 'value' has type TIMESTAMP"):
        rfm_summary(frame(value=pd.to_datetime(["2020-01-01"] * 3)), **KW)
    with pytest.raises(TypeError, match="pandas or polars DataFrame"):
        rfm_summary([(1, "2020-01-01", 1.0)], **KW)


def test_unknown_file_extension_and_missing_file(tmp_path):
    (tmp_path / "tx.xlsx").touch()
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        rfm_summary(tmp_path / "tx.xlsx", **KW)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rfm_summary(tmp_path / "nope.csv", **KW)


@pytest.mark.parametrize(
    "data",
    [
        frame(),
        frame(date=pd.to_datetime(["2020-01-01 10:00", "2020-01-02 00:00", "2020-01-03 23:59"])),
        frame(date=pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]).tz_localize("UTC")),
        frame(
            date=pd.Series(
                pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]), dtype=object
            ),
            value=pd.Series([1.0, 2.0, 3.0], dtype=object),
        ),
        frame(value=[1.0, -1.0, 2.0]),
    ],
    ids=["text dates", "naive datetimes", "tz-aware datetimes", "object columns", "negative"],
)
def test_input_frame_is_not_mutated(data):
    before = copy.deepcopy(data)
    rfm_summary(data, **KW, allow_negative=True, calibration_end="2020-01-02",
                observation_end="2020-01-03")  # fmt: skip
    validate_transactions(data, **KW, allow_negative=True)
    pd.testing.assert_frame_equal(data, before)


def test_polars_input_is_not_mutated():
    data = pl.from_pandas(frame())
    before = data.clone()
    rfm_summary(data, **KW)
    assert data.equals(before)
