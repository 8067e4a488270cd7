"""Checks of a transaction log before it is summarized.

Every error names the column, how many rows are affected, an example offending value and
the fix. The checks only read: nothing the caller passed is modified.

The row-level checks run as one DuckDB aggregate over the source (a registered pandas,
polars or Arrow frame, or a CSV/Parquet file read in place), so a file is never loaded into
pandas; :func:`clvbayes.data.rfm.rfm_summary` calls them on the same relation it then
summarizes.

Rules
-----
* Every named column must exist; the transaction log must have at least one row.
* Customer ids must not be missing.
* Dates must be present and parse as dates: datetime or date columns, or text in ISO 8601
  form (``YYYY-MM-DD``, optionally with a time). Text mixing time-zone-aware entries (with
  an offset such as ``+02:00`` or ``Z``) and naive ones is rejected: their days cannot be
  compared.
* Values must be numeric, present, finite and, unless ``allow_negative=True``, >= 0. Zero
  is legal (a free item or a fully discounted order is still a purchase occasion).
* ``observation_end`` must not precede ``calibration_end``, and some customer must have made
  the first purchase on or before ``calibration_end``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

__all__ = [
    "check_columns",
    "check_period",
    "parse_day",
    "validate_transactions",
]

# A time of day followed by a UTC offset or "Z": the text is time-zone aware.
TZ_PATTERN = r"\d:\d\d(:\d\d(\.\d+)?)?\s*(Z|[+-]\d\d(:?\d\d)?)$"


def _fail(column: str, n_bad: int, n: int, what: str, example: Any, fix: str) -> None:
    raise ValueError(f"column {column!r}: {n_bad:,} of {n:,} rows {what} (e.g. {example}); {fix}")


def check_columns(available: Iterable[str], required: Sequence[str | None]) -> None:
    """Raise ``ValueError`` naming each required column that is absent.

    Parameters
    ----------
    available : iterable of str
        Columns the input has.
    required : sequence of str or None
        Columns the caller named; ``None`` entries (optional columns not used) are skipped.
    """
    have = list(available)
    for column in required:
        if column is not None and column not in have:
            raise ValueError(
                f"column {column!r} not found in the transactions (columns: {have}); "
                "pass the right name with customer_col=/date_col=/value_col= "
                "(--customer-col/--date-col/--value-col on the command line)."
            )


def parse_day(value: Any, name: str) -> dt.date:
    """A period bound (str, date, datetime, Timestamp, numpy datetime64) as a calendar day.

    The time of day, if any, is dropped: bounds are inclusive whole days. A time-zone-aware
    bound keeps its own wall-clock date.

    Raises
    ------
    ValueError
        When the value cannot be read as a date.
    """
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name}={value!r} is not a date; pass e.g. '1997-09-30' or a datetime.date."
        ) from err
    if ts is pd.NaT:
        raise ValueError(f"{name} is missing (NaT); pass e.g. '1997-09-30'.")
    return ts.date()


def check_period(calibration_end: dt.date, observation_end: dt.date | None) -> None:
    """Raise ``ValueError`` if ``observation_end`` precedes ``calibration_end``."""
    if observation_end is not None and observation_end < calibration_end:
        raise ValueError(
            f"observation_end={observation_end} is before calibration_end={calibration_end}; "
            "the holdout period runs from the day after calibration_end to observation_end, "
            "so pass an observation_end on or after calibration_end."
        )


def check_first_purchase(calibration_end: dt.date, first_day: dt.date) -> None:
    """Raise ``ValueError`` if no purchase happened on or before ``calibration_end``."""
    if first_day > calibration_end:
        raise ValueError(
            f"calibration_end={calibration_end} is before every customer's first purchase "
            f"(the earliest is {first_day}); no customer can be summarized. Pass a later "
            "calibration_end."
        )


def scan_sql(
    source: str,
    *,
    customer: str,
    date: str,
    day: str,
    value: str | None,
    raw_value: str | None,
    date_is_text: bool,
) -> str:
    """One aggregate over the source counting every kind of bad row (with an example)."""

    def example(expr: str, cond: str) -> str:
        return f"first(CAST({expr} AS VARCHAR)) FILTER (WHERE {cond})"

    parts = [
        "count(*) AS n",
        f"count(*) FILTER (WHERE {customer} IS NULL) AS customer_missing",
        f"count(*) FILTER (WHERE {date} IS NULL) AS date_missing",
        f"count(*) FILTER (WHERE {date} IS NOT NULL AND {day} IS NULL) AS date_bad",
        f"{example(date, f'{date} IS NOT NULL AND {day} IS NULL')} AS date_bad_example",
        f"min({day}) AS first_day",
        f"max({day}) AS last_day",
    ]
    if date_is_text:
        aware = f"regexp_matches(trim({date}), '{TZ_PATTERN}')"
        parts += [
            f"count(*) FILTER (WHERE {day} IS NOT NULL AND {aware}) AS date_aware",
            f"count(*) FILTER (WHERE {day} IS NOT NULL AND NOT {aware}) AS date_naive",
            f"{example(date, f'{day} IS NOT NULL AND {aware}')} AS date_aware_example",
            f"{example(date, f'{day} IS NOT NULL AND NOT {aware}')} AS date_naive_example",
        ]
    if value is not None:
        parts += [
            f"count(*) FILTER (WHERE {raw_value} IS NOT NULL AND {value} IS NULL) AS value_bad",
            f"{example(raw_value, f'{raw_value} IS NOT NULL AND {value} IS NULL')}"
            " AS value_bad_example",
            f"count(*) FILTER (WHERE {raw_value} IS NULL OR isnan({value})) AS value_missing",
            f"count(*) FILTER (WHERE isinf({value})) AS value_inf",
            f"{example(value, f'isinf({value})')} AS value_inf_example",
            f"count(*) FILTER (WHERE {value} < 0) AS value_negative",
            f"{example(value, f'{value} < 0')} AS value_negative_example",
        ]
    return f"SELECT {', '.join(parts)} FROM {source}"


def check_scan(
    scan: dict[str, Any],
    *,
    customer_col: str,
    date_col: str,
    value_col: str | None,
    allow_negative: bool = False,
) -> None:
    """Raise the first problem found by :func:`scan_sql` as a ``ValueError``."""
    n = scan["n"]
    if n == 0:
        raise ValueError(
            "the transactions are empty (0 rows); pass a log with one row per transaction."
        )
    if scan["customer_missing"]:
        _fail(
            customer_col,
            scan["customer_missing"],
            n,
            "have a missing customer id",
            "None/NaN",
            "drop those rows or fill in the customer id.",
        )
    if scan["date_missing"]:
        _fail(
            date_col,
            scan["date_missing"],
            n,
            "have a missing date",
            "None/NaT",
            "drop those rows or fill in the transaction date.",
        )
    if scan["date_bad"]:
        _fail(
            date_col,
            scan["date_bad"],
            n,
            "cannot be parsed as dates",
            repr(scan["date_bad_example"]),
            "write dates in ISO 8601 form (YYYY-MM-DD[ HH:MM:SS]) or parse the column to "
            "datetimes first (e.g. pandas.to_datetime(..., format=...)).",
        )
    if scan.get("date_aware") and scan.get("date_naive"):
        _fail(
            date_col,
            scan["date_aware"],
            n,
            "are time-zone aware while the others are naive",
            f"{scan['date_aware_example']!r} next to {scan['date_naive_example']!r}",
            "make all dates naive local times or all time-zone aware "
            "(e.g. pandas.to_datetime(..., utc=True).dt.tz_convert(<shop time zone>)).",
        )
    if value_col is None:
        return
    _check_values(scan, n, value_col, allow_negative)


def _check_values(scan: dict[str, Any], n: int, value_col: str, allow_negative: bool) -> None:
    if scan["value_bad"]:
        _fail(
            value_col,
            scan["value_bad"],
            n,
            "are not numbers",
            repr(scan["value_bad_example"]),
            "convert the column to numbers (e.g. strip currency symbols, use '.' as the "
            "decimal separator).",
        )
    if scan["value_missing"]:
        _fail(
            value_col,
            scan["value_missing"],
            n,
            "are missing or NaN",
            "NaN",
            "drop those rows or fill in the transaction value.",
        )
    if scan["value_inf"]:
        _fail(
            value_col,
            scan["value_inf"],
            n,
            "are infinite",
            scan["value_inf_example"],
            "drop those rows or fix the transaction value.",
        )
    if scan["value_negative"] and not allow_negative:
        _fail(
            value_col,
            scan["value_negative"],
            n,
            "are negative",
            scan["value_negative_example"],
            "if they are returns or refunds pass allow_negative=True (--allow-negative) to "
            "net them into their day's value; otherwise drop or fix them.",
        )


def validate_transactions(
    transactions: Any,
    *,
    customer_col: str,
    date_col: str,
    value_col: str | None = None,
    allow_negative: bool = False,
) -> None:
    """Check a transaction log without summarizing it.

    Runs the same checks as :func:`clvbayes.data.rfm.rfm_summary` (see the module
    docstring for the rules).

    Parameters
    ----------
    transactions : pandas.DataFrame, polars.DataFrame, pyarrow.Table, str or Path
        The log, or the path of a CSV or Parquet file holding it.
    customer_col, date_col : str
        Names of the customer id and transaction date columns.
    value_col : str, optional
        Name of the transaction value column.
    allow_negative : bool, default False
        Accept negative values (returns, refunds).

    Raises
    ------
    ValueError
        On missing columns, an empty log, missing ids, missing or unparsable dates, mixed
        time-zone-aware and naive dates, or non-numeric, missing, infinite or (unless
        allowed) negative values.
    TypeError
        When the input or a column has an unsupported type.
    """
    from clvbayes.data.rfm import _open_source, _scan

    with _open_source(transactions, customer_col, date_col, value_col) as source:
        _scan(source, allow_negative=allow_negative)
