"""Property tests of ``rfm_summary`` over random transaction logs (issue 20).

Oracle: a slow pure-Python reference of the documented conventions (one purchase per
customer and day, valued at the day's sum; frequency = repeat days in calibration;
recency and T from the first day, in weeks; monetary value = mean of the repeat days;
holdout days and their total value). For every generated log ``rfm_summary`` either
raises one of its documented errors (``ValueError``) or returns a table that satisfies
the RFM invariants and equals the reference.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clvbayes import rfm_summary

ORIGIN = dt.date(2021, 1, 1)
CAL_END = ORIGIN + dt.timedelta(days=60)
OBS_END = ORIGIN + dt.timedelta(days=100)

rows = st.tuples(
    st.sampled_from(["a", "b", "c", "d", "e", "f"]),
    st.integers(min_value=0, max_value=110),  # day offset: some after the holdout end
    st.floats(min_value=0.0, max_value=1e4, allow_nan=False).map(lambda v: round(v, 2)),
)
logs = st.lists(rows, min_size=1, max_size=40)


def reference(log: list[tuple[str, int, float]]) -> dict[str, dict[str, float]]:
    """The documented conventions, one customer at a time."""
    days: dict[str, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    for customer, offset, value in log:
        day = ORIGIN + dt.timedelta(days=offset)
        if day <= OBS_END:
            days[customer][day] += value
    out = {}
    for customer, values in days.items():
        calibration = sorted(d for d in values if d <= CAL_END)
        if not calibration:
            continue  # first purchase after the calibration: left out
        first, repeat = calibration[0], calibration[1:]
        holdout = [d for d in values if CAL_END < d <= OBS_END]
        out[customer] = {
            "frequency": len(repeat),
            "recency": ((calibration[-1] - first).days if repeat else 0) / 7,
            "T": (CAL_END - first).days / 7,
            "monetary_value": float(np.mean([values[d] for d in repeat])) if repeat else 0.0,
            "holdout_frequency": len(holdout),
            "holdout_value": float(sum(values[d] for d in holdout)),
        }
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs)
def test_rfm_summary_is_the_reference_or_a_documented_error(log):
    frame = pd.DataFrame(log, columns=["customer_id", "date", "value"])
    frame["date"] = [ORIGIN + dt.timedelta(days=int(d)) for d in frame["date"]]
    before = frame.copy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # duplicates, bounds past the data
            table = rfm_summary(
                frame, customer_col="customer_id", date_col="date", value_col="value",
                calibration_end=CAL_END, observation_end=OBS_END,
            )  # fmt: skip
    except ValueError as error:
        # the documented refusal for these logs: no customer in the calibration period
        assert "calibration" in str(error) or "no transaction" in str(error).lower(), error
        assert not reference(log)
        return
    pd.testing.assert_frame_equal(frame, before)  # never modified
    want = reference(log)
    assert list(table["customer_id"]) == sorted(want)
    # invariants
    assert (table["frequency"] >= 0).all() and (table["holdout_frequency"] >= 0).all()
    assert (table["recency"] >= 0).all() and (table["recency"] <= table["T"]).all()
    assert ((table["frequency"] == 0) == (table["recency"] == 0)).all()
    assert ((table["frequency"] == 0) <= (table["monetary_value"] == 0)).all()
    assert (table["holdout_duration"] == (OBS_END - CAL_END).days / 7).all()
    for row in table.itertuples(index=False):
        expected = want[row.customer_id]
        for column, value in expected.items():
            assert getattr(row, column) == pytest.approx(value, rel=1e-12, abs=1e-9), column
