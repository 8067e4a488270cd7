"""One time-unit table for the package: codes, lengths, names, aliases, and every user of it.

Oracle: the Gregorian calendar (365.2425 days a year; a month is a twelfth, a quarter a
quarter of it) and day counts written out by hand.
"""

from __future__ import annotations

import pandas as pd
import pytest

from clvbayes.cli import main
from clvbayes.data import TIME_UNITS as DATA_TIME_UNITS
from clvbayes.data.rfm import TIME_UNITS as RFM_TIME_UNITS
from clvbayes.data.rfm import rfm_summary
from clvbayes.math import clv, units
from clvbayes.report import ReportOptions


def test_time_units_are_the_gregorian_lengths():
    assert units.TIME_UNITS == {
        "D": 1.0,
        "W": 7.0,
        "M": 365.2425 / 12,
        "Q": 365.2425 / 4,
        "Y": 365.2425,
    }
    # one table: the data layer re-exports it, the discounting reads it
    assert DATA_TIME_UNITS is units.TIME_UNITS and RFM_TIME_UNITS is units.TIME_UNITS
    assert clv.days_per_unit is units.days_per_unit
    assert [units.unit_name(c, plural=True) for c in units.TIME_UNITS] == [
        "days", "weeks", "months", "quarters", "years",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("given", "code"),
    [("D", "D"), ("day", "D"), ("days", "D"), ("Week", "W"), ("weeks", "W"),
     ("month", "M"), ("Q", "Q"), ("quarter", "Q"), ("Quarters", "Q"), ("year", "Y")],
)  # fmt: skip
def test_check_time_unit_takes_codes_and_names(given, code):
    assert units.check_time_unit(given) == code
    assert units.days_per_unit(given) == units.TIME_UNITS[code]


@pytest.mark.parametrize("bad", ["H", "w", "fortnight", "", None, 7])
def test_unknown_time_unit_names_the_argument_and_the_choices(bad):
    with pytest.raises(ValueError) as exc:
        units.check_time_unit(bad, "--time-unit")
    message = str(exc.value)
    assert message.startswith(f"--time-unit={bad!r} is not a time unit")
    assert "'Q' (quarter)" in message and "'D' (day)" in message


def test_quarters_work_in_rfm_summary_the_cli_and_the_report_options(tmp_path):
    tx = pd.DataFrame(
        {"customer_id": [1, 1, 2], "date": ["2020-01-01", "2020-04-01", "2020-02-01"]}
    )
    kw = {"customer_col": "customer_id", "date_col": "date", "calibration_end": "2020-04-01"}
    quarters = rfm_summary(tx, **kw, time_unit="Q")
    days = rfm_summary(tx, **kw, time_unit="D")
    assert quarters["T"].tolist() == [91 / 91.310625, 60 / 91.310625]
    assert days["T"].tolist() == [91.0, 60.0]
    pd.testing.assert_frame_equal(rfm_summary(tx, **kw, time_unit="quarters"), quarters)
    path, out = tmp_path / "tx.csv", tmp_path / "rfm.csv"
    tx.to_csv(path, index=False)
    args = ["rfm", str(path), "--customer-col", "customer_id", "--date-col", "date"]
    assert (
        main([*args, "--time-unit", "Q", "--calibration-end", "2020-04-01", "--out", str(out)]) == 0
    )
    assert pd.read_csv(out)["T"].tolist() == quarters["T"].tolist()
    ReportOptions("c", "d", "v", time_unit="Q").check()
    with pytest.raises(ValueError, match="--time-unit='H' is not a time unit"):
        ReportOptions("c", "d", "v", time_unit="H").check()
    with pytest.raises(ValueError, match="time_unit='H' is not a time unit"):
        rfm_summary(tx, **kw, time_unit="H")
