"""RFM summaries: the papers' CDNOW summaries, lifetimes, every input kind, conventions."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from conftest import reference_file

from clvbayes.data.rfm import TIME_UNITS, rfm_summary
from clvbayes.datasets import load_cdnow

CAL, OBS = "1997-09-30", "1998-06-30"
KW = {"customer_col": "customer_id", "date_col": "date", "value_col": "value"}


@pytest.fixture(scope="module")
def master() -> pd.DataFrame:
    return load_cdnow("master")


@pytest.fixture(scope="module")
def master_rfm(master: pd.DataFrame) -> pd.DataFrame:
    return rfm_summary(master, **KW, calibration_end=CAL, observation_end=OBS)


def _sample_rfm_by_paper_id() -> pd.DataFrame:
    # The papers' customer ID is the sample_id column (2nd) of CDNOW_sample.txt.
    tx = load_cdnow("sample")
    return rfm_summary(tx, customer_col="sample_id", date_col="date", value_col="value",
                       calibration_end=CAL)  # fmt: skip


def tx(rows: list[tuple], columns=("customer_id", "date", "value")) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


# ---------------------------------------------------------------- published oracles


def test_rfm_matches_fader_hardie_lee_2005_cdnow_summary():
    ours = _sample_rfm_by_paper_id()
    paper = pd.read_csv(reference_file("cdnow_customers_summary.csv"))
    assert len(ours) == len(paper) == 2357
    np.testing.assert_array_equal(ours["customer_id"], paper["ID"])
    np.testing.assert_array_equal(ours["frequency"], paper["frequency"])
    # the file is rounded to 2 decimals
    np.testing.assert_allclose(ours["recency"], paper["recency"], atol=0.005 + 1e-9, rtol=0)
    np.testing.assert_allclose(ours["T"], paper["T"], atol=0.005 + 1e-9, rtol=0)
    assert (ours["frequency"] > 0).sum() == 946


def test_rfm_matches_fader_hardie_2013_summary_with_transactions():
    ours = _sample_rfm_by_paper_id()
    paper = pd.read_csv(reference_file("cdnow_customers_summary_with_transactions.csv"))
    np.testing.assert_array_equal(ours["customer_id"], paper["ID"])
    np.testing.assert_array_equal(ours["frequency"], paper["x"])
    for ours_col, paper_col in [("recency", "t_x"), ("T", "T"), ("monetary_value", "zbar")]:
        np.testing.assert_allclose(ours[ours_col], paper[paper_col], atol=0.005 + 1e-9, rtol=0)
    repeat = ours["frequency"] > 0
    assert repeat.sum() == 946
    assert (ours.loc[~repeat, "monetary_value"] == 0).all()
    assert ours["T"].max() == pytest.approx(38.857142857, abs=1e-8)  # 272 days / 7


def test_calibration_and_holdout_match_lifetimes_on_cdnow_master(master, master_rfm):
    from lifetimes.utils import calibration_and_holdout_data

    # lifetimes needs a monetary column under pandas 3 (its no-value path breaks).
    lt = calibration_and_holdout_data(
        master, "customer_id", "date", calibration_period_end=CAL,
        observation_period_end=OBS, freq="D", freq_multiplier=7,
        monetary_value_col="value",
    ).sort_index()  # fmt: skip
    ours = master_rfm
    assert len(ours) == len(lt) == 23570
    np.testing.assert_array_equal(ours["customer_id"], lt.index)
    np.testing.assert_array_equal(ours["frequency"], lt["frequency_cal"])
    np.testing.assert_allclose(ours["recency"], lt["recency_cal"], rtol=1e-12)
    np.testing.assert_allclose(ours["T"], lt["T_cal"], rtol=1e-12)
    np.testing.assert_allclose(ours["monetary_value"], lt["monetary_value_cal"], rtol=1e-12)
    # lifetimes counts holdout purchase *days* as we do ...
    np.testing.assert_array_equal(ours["holdout_frequency"], lt["frequency_holdout"])
    # ... and its duration_holdout is our holdout_duration (273 days / 7) ...
    np.testing.assert_allclose(ours["holdout_duration"], lt["duration_holdout"], rtol=1e-12)
    # ... but its monetary_value_holdout is the *mean of the raw holdout transactions*
    # (same-day orders not merged), ours the *total* holdout value.
    hold = master[(master["date"] > CAL) & (master["date"] <= OBS)]
    n_raw = hold.groupby("customer_id").size().reindex(lt.index, fill_value=0).to_numpy()
    np.testing.assert_allclose(
        ours["holdout_value"], lt["monetary_value_holdout"].to_numpy() * n_raw, rtol=1e-9
    )


def test_summary_without_holdout_matches_lifetimes_summary_data(master):
    from lifetimes.utils import summary_data_from_transaction_data

    lt = summary_data_from_transaction_data(
        master, "customer_id", "date", monetary_value_col="value",
        observation_period_end=CAL, freq="D",
    ).sort_index()  # fmt: skip
    ours = rfm_summary(master, **KW, calibration_end=CAL, time_unit="D")
    assert list(ours.columns) == ["customer_id", "frequency", "recency", "T", "monetary_value"]
    for col in ["frequency", "recency", "T", "monetary_value"]:
        np.testing.assert_allclose(ours[col], lt[col], rtol=1e-12, err_msg=col)


# ---------------------------------------------------------------- every input kind


def test_pandas_polars_arrow_csv_and_parquet_inputs_give_identical_output(
    master, master_rfm, tmp_path
):
    csv, parquet = tmp_path / "tx.csv", tmp_path / "tx.parquet"
    master.to_csv(csv, index=False)
    master.to_parquet(parquet, index=False)
    kwargs = {**KW, "calibration_end": CAL, "observation_end": OBS}
    for source in [pl.from_pandas(master), pa.Table.from_pandas(master), csv, str(parquet)]:
        pd.testing.assert_frame_equal(rfm_summary(source, **kwargs), master_rfm)


def test_polars_frame_with_text_dates_and_string_ids():
    frame = pl.DataFrame({"c": ["b", "a", "a"], "d": ["2020-01-03", "2020-01-01", "2020-01-08"]})
    out = rfm_summary(frame, customer_col="c", date_col="d", time_unit="D")
    assert out["customer_id"].tolist() == ["a", "b"]
    assert out["recency"].tolist() == [7.0, 0.0]
    assert out["T"].tolist() == [7.0, 5.0]


def test_output_contract(master_rfm):
    assert list(master_rfm.columns) == [
        "customer_id", "frequency", "recency", "T", "monetary_value",
        "holdout_frequency", "holdout_value", "holdout_duration",
    ]  # fmt: skip
    assert isinstance(master_rfm.index, pd.RangeIndex) and master_rfm.index.start == 0
    assert master_rfm["customer_id"].is_monotonic_increasing
    for col in ["frequency", "holdout_frequency"]:
        assert master_rfm[col].dtype == np.int64
    for col in ["recency", "T", "monetary_value", "holdout_value", "holdout_duration"]:
        assert master_rfm[col].dtype == np.float64
    assert (master_rfm["recency"] <= master_rfm["T"]).all()


# ---------------------------------------------------------------- conventions


def test_same_day_transactions_merge_and_values_add_up():
    out = rfm_summary(
        tx([(1, "2020-01-01 09:00", 5.0), (1, "2020-01-08 10:00", 2.0),
            (1, "2020-01-08 23:59", 3.0), (1, "2020-01-15", 7.0)]),
        **KW, time_unit="D",
    )  # fmt: skip
    row = out.iloc[0]
    assert row["frequency"] == 2  # three distinct days, the first is not a repeat
    assert row["recency"] == 14.0 and row["T"] == 14.0
    assert row["monetary_value"] == pytest.approx((5.0 + 7.0) / 2)  # (2 + 3) and 7


def test_transactions_after_calibration_end_never_count_in_calibration():
    # pymc-marketing's rfm_summary trap: later transactions leak into frequency/recency.
    out = rfm_summary(
        tx([(1, "2020-01-01", 1.0), (1, "2020-01-05", 2.0), (1, "2020-01-20", 100.0),
            (2, "2020-01-02", 1.0), (3, "2020-01-20", 1.0)]),
        **KW, calibration_end="2020-01-10", time_unit="D",
    )  # fmt: skip
    assert out["customer_id"].tolist() == [1, 2]  # customer 3 starts after the end
    assert out["frequency"].tolist() == [1, 0]
    assert out["recency"].tolist() == [4.0, 0.0]
    assert out["T"].tolist() == [9.0, 8.0]
    assert out["monetary_value"].tolist() == [2.0, 0.0]
    assert "holdout_frequency" not in out


def test_calibration_and_observation_ends_are_inclusive_whole_days():
    data = tx([(1, "2020-01-01", 1.0), (1, "2020-01-10 18:30", 2.0),
               (1, "2020-01-11", 4.0), (1, "2020-01-20 23:00", 8.0), (1, "2020-01-21", 16.0)])  # fmt: skip
    out = rfm_summary(
        data, **KW, calibration_end=pd.Timestamp("2020-01-10 08:00"),
        observation_end="2020-01-20", time_unit="D",
    )  # fmt: skip
    row = out.iloc[0]
    assert (row["frequency"], row["recency"], row["T"]) == (1, 9.0, 9.0)
    assert row["holdout_frequency"] == 2 and row["holdout_value"] == 12.0
    assert row["holdout_duration"] == 10.0


def test_holdout_columns_only_when_observation_end_is_later():
    data = tx([(1, "2020-01-01", 1.0), (1, "2020-01-05", 2.0)])
    same = rfm_summary(data, **KW, calibration_end="2020-01-05", observation_end="2020-01-05")
    assert "holdout_frequency" not in same
    later = rfm_summary(data, **KW, calibration_end="2020-01-02", observation_end="2020-01-09")
    assert later.loc[0, "holdout_frequency"] == 1 and later.loc[0, "holdout_value"] == 2.0


@pytest.mark.parametrize("unit", ["D", "W", "M", "Y"])
def test_time_units_are_days_over_unit_length(unit):
    data = tx([(1, "2020-01-01", 1.0), (1, "2021-01-01", 1.0)])
    out = rfm_summary(data, **KW, calibration_end="2021-03-01", time_unit=unit)
    assert out.loc[0, "recency"] == 366 / TIME_UNITS[unit]
    assert out.loc[0, "T"] == 425 / TIME_UNITS[unit]
    assert TIME_UNITS["M"] == pytest.approx(30.436875)


def test_default_calibration_end_is_the_last_date():
    out = rfm_summary(tx([(1, "2020-01-01", 1.0), (2, "2020-01-08", 1.0)]), **KW, time_unit="D")
    assert out["T"].tolist() == [7.0, 0.0]


def test_without_value_col_no_monetary_columns():
    data = tx([(1, "2020-01-01", 1.0), (1, "2020-01-05", 2.0)])
    out = rfm_summary(
        data, customer_col="customer_id", date_col="date",
        calibration_end="2020-01-02", observation_end="2020-01-09",
    )  # fmt: skip
    assert list(out.columns) == [
        "customer_id", "frequency", "recency", "T", "holdout_frequency", "holdout_duration"
    ]  # fmt: skip


def test_zero_value_transactions_are_purchases():
    out = rfm_summary(tx([(1, "2020-01-01", 0.0), (1, "2020-01-05", 0.0)]), **KW)
    assert out.loc[0, "frequency"] == 1 and out.loc[0, "monetary_value"] == 0.0


def test_allow_negative_nets_returns_within_the_day():
    data = tx([
        (1, "2020-01-01", 10.0),
        (1, "2020-01-03", 8.0), (1, "2020-01-03", -3.0),  # net 5: a purchase
        (1, "2020-01-05", 4.0), (1, "2020-01-05", -4.0),  # returned the same day: none
        (1, "2020-01-07", -10.0),                         # a refund day: no purchase
        (1, "2020-01-09", 0.0),                           # zero-value rows only: a purchase
    ])  # fmt: skip
    out = rfm_summary(data, **KW, time_unit="D", allow_negative=True)
    row = out.iloc[0]
    assert row["frequency"] == 2 and row["recency"] == 8.0
    assert row["monetary_value"] == pytest.approx(2.5)  # (5 + 0) / 2


def test_tz_aware_dates_count_on_their_local_day(tmp_path):
    local = pd.to_datetime(["2020-01-01 23:30", "2020-01-02 00:30"]).tz_localize("America/New_York")
    data = pd.DataFrame({"customer_id": [1, 1], "date": local, "value": [1.0, 2.0]})
    parquet = tmp_path / "tz.parquet"
    data.to_parquet(parquet)
    for frame in (data, pl.from_pandas(data), parquet):
        out = rfm_summary(frame, **KW, time_unit="D")
        assert out.loc[0, "frequency"] == 1  # two local days (one day in UTC)
    text = data.assign(date=["2020-01-01T23:30:00-05:00", "2020-01-02T00:30:00-05:00"])
    assert rfm_summary(text, **KW).loc[0, "frequency"] == 1


def test_string_customer_ids_are_sorted():
    out = rfm_summary(tx([("b", "2020-01-01", 1.0), ("a", "2020-01-02", 1.0)]), **KW)
    assert out["customer_id"].tolist() == ["a", "b"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"time_unit": "H"}, "time_unit"),
        ({"observation_end": "2020-02-01"}, "needs calibration_end"),
        ({"calibration_end": "not a date"}, "calibration_end"),
    ],
)
def test_bad_arguments_are_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rfm_summary(tx([(1, "2020-01-01", 1.0)]), **KW, **kwargs)


def test_import_rfm_does_not_import_pymc():
    code = (
        "import sys, clvbayes.data.rfm; print('pymc' in sys.modules or 'pytensor' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sums_are_bit_identical_across_runs():
    """DuckDB aggregates in parallel in no fixed order; float sums used to differ in the
    last bits between runs (209-464 of CDNOW master's customers, every run). Exact decimal
    sums make the output reproducible, which the report's byte-identical CSV relies on."""
    from clvbayes.datasets import load_cdnow

    tx = load_cdnow("master")
    kw = {"customer_col": "customer_id", "date_col": "date", "value_col": "value"}
    kw |= {"calibration_end": "1997-09-30", "observation_end": "1998-06-30"}
    first = rfm_summary(tx, **kw)
    for _ in range(3):
        again = rfm_summary(tx, **kw)
        for column in ("monetary_value", "holdout_value"):
            assert np.array_equal(first[column].to_numpy(), again[column].to_numpy()), column
