"""Per-customer RFM summaries of a transaction log, in the papers' conventions.

The aggregation is written once, as DuckDB SQL over a relation: a pandas, polars or Arrow
frame is registered and scanned in place, a CSV or Parquet file is read directly (never
loaded into pandas), so every input gives the same output and 10 million transactions
summarize in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from clvbayes.data import validate

__all__ = ["TIME_UNITS", "rfm_summary"]

#: Length of one time unit in days. A month is the mean Gregorian month (365.2425 / 12
#: days), a year the mean Gregorian year.
TIME_UNITS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.2425 / 12, "Y": 365.2425}

_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)


@dataclass(frozen=True)
class _Source:
    """A transaction log registered in DuckDB as the view ``src``, with SQL expressions."""

    con: duckdb.DuckDBPyConnection
    customer_col: str
    date_col: str
    value_col: str | None
    customer: str  # quoted column
    date: str  # quoted raw date column
    day: str  # expression: the calendar day (DATE), NULL when unparsable
    raw_value: str | None
    value: str | None  # expression: the value as DOUBLE, NULL when not a number
    date_is_text: bool


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    raise ValueError(
        f"cannot tell the format of {str(path)!r} from its extension; use a .csv or .parquet file."
    )


def _register_file(con: duckdb.DuckDBPyConnection, path: Path, date_col: str) -> str | None:
    """Create the view ``src`` over a CSV/Parquet file; return the date column's time zone."""
    if not path.is_file():
        raise FileNotFoundError(f"transactions file {str(path)!r} does not exist.")
    kind = _file_kind(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        con.execute(f"CREATE VIEW src AS SELECT * FROM read_parquet({_literal(str(path))})")
        schema = pq.read_schema(path)
        if date_col in schema.names:
            return getattr(schema.field(date_col).type, "tz", None)
        return None
    con.execute(f"CREATE VIEW src AS SELECT * FROM read_csv({_literal(str(path))})")
    names = [row[0] for row in con.execute("DESCRIBE src").fetchall()]
    if date_col in names:
        # Dates are read as text and parsed by the same SQL as text columns of a frame,
        # so a CSV gives what pandas.read_csv of it would.
        types = "{" + _literal(date_col) + ": 'VARCHAR'}"
        con.execute(
            f"CREATE OR REPLACE VIEW src AS SELECT * FROM "
            f"read_csv({_literal(str(path))}, types={types})"
        )
    return None


def _pandas_columns(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, str | None]:
    """A shallow frame of the needed columns (object date/value columns as text)."""
    tz = None
    out = {}
    for i, name in enumerate(columns):
        series = frame[name]
        if i > 0 and series.dtype == object:
            # Mixed Python objects (datetimes with and without tz, numbers and text) are
            # not scannable by DuckDB; as text they get the same checks as text columns.
            series = series.astype("str")
        if i == 1 and isinstance(series.dtype, pd.DatetimeTZDtype):
            tz = str(series.dtype.tz)
        out[name] = series
    return pd.DataFrame(out, copy=False), tz


def _register_frame(con: duckdb.DuckDBPyConnection, frame: Any, columns: list[str]) -> str | None:
    """Register a frame as ``src``; return the date column's time zone (if aware)."""
    if isinstance(frame, pd.DataFrame):
        validate.check_columns(frame.columns, columns)
        view, tz = _pandas_columns(frame, columns)
        con.register("src", view)
        return tz
    import narwhals as nw

    try:
        nw_frame = nw.from_native(frame, eager_only=True)
    except TypeError as err:
        raise TypeError(
            "transactions must be a pandas or polars DataFrame, a pyarrow Table, or the path "
            f"of a CSV or Parquet file; got {type(frame).__name__}."
        ) from err
    validate.check_columns(nw_frame.columns, columns)
    dtype = nw_frame.schema[columns[1]]
    tz = dtype.time_zone if isinstance(dtype, nw.Datetime) else None
    con.register("src", nw_frame.select(columns).to_arrow())
    return tz


def _day_expr(column: str, sql_type: str, name: str) -> tuple[str, bool]:
    if sql_type == "DATE":
        return column, False
    if sql_type.startswith("TIMESTAMP"):
        return f"CAST({column} AS DATE)", False
    if sql_type == "VARCHAR":
        return f"CAST(TRY_CAST({column} AS TIMESTAMP) AS DATE)", True
    raise TypeError(
        f"column {name!r} has type {sql_type}, not dates; parse it to datetimes first "
        "(e.g. pandas.to_datetime(df[col].astype(str), format='%Y%m%d'))."
    )


def _value_expr(column: str, sql_type: str, name: str) -> str:
    if sql_type.startswith(_NUMERIC):
        return f"CAST({column} AS DOUBLE)"
    if sql_type == "VARCHAR":
        return f"TRY_CAST({column} AS DOUBLE)"
    raise TypeError(
        f"column {name!r} has type {sql_type}, not numbers; convert it to a numeric column."
    )


@contextmanager
def _open_source(
    transactions: Any, customer_col: str, date_col: str, value_col: str | None
) -> Iterator[_Source]:
    """Register ``transactions`` in a private DuckDB connection as ``src``."""
    columns = [customer_col, date_col] + ([value_col] if value_col is not None else [])
    con = duckdb.connect()
    try:
        if isinstance(transactions, str | Path):
            tz = _register_file(con, Path(transactions), date_col)
        else:
            tz = _register_frame(con, transactions, columns)
        # A time-zone-aware timestamp's day is its calendar day in its own time zone.
        con.execute(f"SET TimeZone = {_literal(tz or 'UTC')}")
        types = {row[0]: row[1] for row in con.execute("DESCRIBE src").fetchall()}
        validate.check_columns(types, columns)
        date = _quote(date_col)
        try:
            day, date_is_text = _day_expr(date, types[date_col], date_col)
            raw_value = value = None
            if value_col is not None:
                raw_value = _quote(value_col)
                value = _value_expr(raw_value, types[value_col], value_col)
        except TypeError:
            # An empty column has no meaningful type: report the emptiness instead.
            if con.execute("SELECT count(*) FROM src").fetchone()[0] == 0:
                validate.check_scan({"n": 0}, customer_col="", date_col="", value_col=None)
            raise
        yield _Source(
            con,
            customer_col,
            date_col,
            value_col,
            _quote(customer_col),
            date,
            day,
            raw_value,
            value,
            date_is_text,
        )
    finally:
        con.close()


def _scan_counts(source: _Source) -> dict[str, Any]:
    """The validation scan's counts and date range (no checks; see :func:`_scan`)."""
    sql = validate.scan_sql(
        "src",
        customer=source.customer,
        date=source.date,
        day=source.day,
        value=source.value,
        raw_value=source.raw_value,
        date_is_text=source.date_is_text,
    )
    cursor = source.con.execute(sql)
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def _scan(source: _Source, *, allow_negative: bool) -> dict[str, Any]:
    """Run the validation scan; raise on bad rows; return counts and the date range."""
    scan = _scan_counts(source)
    validate.check_scan(
        scan,
        customer_col=source.customer_col,
        date_col=source.date_col,
        value_col=source.value_col,
        allow_negative=allow_negative,
    )
    return scan


def _summary_sql(source: _Source, *, holdout: bool, allow_negative: bool) -> str:
    """The aggregation: days per customer, then one row per customer."""
    has_value = source.value is not None
    value = f"CAST({source.value} AS DECIMAL(38, 9))" if has_value else "0.0"
    # Values are summed as DECIMAL(38, 9) (exact integer arithmetic at 1e-9 resolution):
    # DuckDB's parallel aggregation combines partial sums in no fixed order, and floating
    # point sums would then differ in the last bits between runs (customers.csv of a
    # report must be byte-reproducible). Money is exact to far below a cent.
    # With returns allowed, a day whose net value is <= 0 and that holds a negative row
    # (a return or refund day, or a purchase fully returned the same day) is no purchase.
    having = "HAVING NOT (sum(value) <= 0 AND min(value) < 0)" if allow_negative else ""
    columns = [
        "d.customer_id",
        "CAST(count(*) FILTER (WHERE d.day <= $cal) - 1 AS BIGINT) AS frequency",
        "CAST(date_diff('day', f.first_day, max(d.day) FILTER (WHERE d.day <= $cal))"
        " AS DOUBLE) / $unit AS recency",
        "CAST(date_diff('day', f.first_day, $cal) AS DOUBLE) / $unit AS T",
    ]
    if has_value:
        columns.append(
            "coalesce(CAST(avg(d.value) FILTER (WHERE d.day <= $cal AND d.day > f.first_day)"
            " AS DOUBLE), 0.0) AS monetary_value"
        )
    if holdout:
        columns.append("CAST(count(*) FILTER (WHERE d.day > $cal) AS BIGINT) AS holdout_frequency")
        if has_value:
            columns.append(
                "coalesce(CAST(sum(d.value) FILTER (WHERE d.day > $cal) AS DOUBLE), 0.0)"
                " AS holdout_value"
            )
        columns.append("CAST(date_diff('day', $cal, $obs) AS DOUBLE) / $unit AS holdout_duration")
    return f"""
        WITH tx AS (
            SELECT {source.customer} AS customer_id, {source.day} AS day, {value} AS value
            FROM src WHERE {source.day} <= $obs
        ),
        days AS (
            SELECT customer_id, day, sum(value) AS value
            FROM tx GROUP BY customer_id, day {having}
        ),
        firsts AS (
            SELECT customer_id, min(day) AS first_day
            FROM days GROUP BY customer_id HAVING min(day) <= $cal
        )
        SELECT {", ".join(columns)}
        FROM days AS d JOIN firsts AS f ON d.customer_id = f.customer_id
        GROUP BY d.customer_id, f.first_day
        ORDER BY d.customer_id
    """


def _period(calibration_end: Any, observation_end: Any, time_unit: str) -> tuple[Any, Any]:
    """Checked ``time_unit`` and the parsed ``(calibration_end, observation_end)`` days.

    Shared by :func:`rfm_summary` and :func:`clvbayes.scale.rfm_summary_dask`.
    """
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit must be one of {list(TIME_UNITS)}, got {time_unit!r}.")
    cal = (
        None if calibration_end is None else validate.parse_day(calibration_end, "calibration_end")
    )
    obs = (
        None if observation_end is None else validate.parse_day(observation_end, "observation_end")
    )
    if cal is None and obs is not None:
        raise ValueError(
            "observation_end needs calibration_end: pass the last day of the calibration "
            "period too."
        )
    if cal is not None:
        validate.check_period(cal, obs)
    return cal, obs


def rfm_summary(
    transactions: Any,
    *,
    customer_col: str,
    date_col: str,
    value_col: str | None = None,
    calibration_end: Any = None,
    observation_end: Any = None,
    time_unit: str = "W",
    allow_negative: bool = False,
) -> pd.DataFrame:
    """Summarize a transaction log to one row per customer (frequency, recency, T, value).

    Conventions are those of Fader, Hardie & Lee (2005) and Fader & Hardie (2013):

    * A *day* is the calendar date of a transaction (the time of day is dropped). All
      transactions of a customer on one day merge into one purchase whose value is their
      sum. Time-zone-aware timestamps count on their calendar day in their own time zone
      (the column's zone for datetime columns; the wall-clock date as written for text
      with an offset).
    * ``frequency`` counts *repeat* purchases: the number of distinct purchase days in the
      calibration period minus one.
    * ``recency`` is the time from the first purchase to the last purchase in the
      calibration period (0 without a repeat purchase); ``T`` the time from the first
      purchase to ``calibration_end``. Both are fractional, in ``time_unit``.
    * ``monetary_value`` is the mean value of the repeat purchase days of the calibration
      period (the first purchase is excluded), 0 for a customer without one.
    * ``calibration_end`` and ``observation_end`` are inclusive whole days: a transaction
      on the ``calibration_end`` date is in the calibration period. Transactions after
      ``calibration_end`` never count towards the calibration columns, and transactions
      after ``observation_end`` do not count at all.
    * Customers whose first purchase is after ``calibration_end`` are left out.
    * Zero-value transactions are legal purchases.

    Parameters
    ----------
    transactions : pandas.DataFrame, polars.DataFrame, pyarrow.Table, str or Path
        One row per transaction, or the path of a CSV or Parquet file holding them (read
        by DuckDB in place; the format follows the extension, ``.csv``/``.csv.gz``/
        ``.parquet``). Dates may be datetime or date columns or ISO 8601 text. Never
        modified.
    customer_col : str
        Customer id column (any type; output sorted by it).
    date_col : str
        Transaction date column.
    value_col : str, optional
        Transaction value column. Without it, the output has no ``monetary_value`` and no
        ``holdout_value`` column.
    calibration_end : str, date, datetime or Timestamp, optional
        Last day of the calibration period (inclusive). Default: the last transaction day
        in the data.
    observation_end : str, date, datetime or Timestamp, optional
        Last day of the observation period (inclusive). When later than
        ``calibration_end``, the holdout columns are added. Requires ``calibration_end``.
    time_unit : {"D", "W", "M", "Y"}, default "W"
        Unit of ``recency``, ``T`` and ``holdout_duration``: days, weeks (7 days), mean
        Gregorian months (365.2425 / 12 = 30.436875 days) or mean Gregorian years
        (365.2425 days).
    allow_negative : bool, default False
        Accept negative values (returns, refunds). They are netted into their day's value
        (not carried back to the purchase they refund); a day whose net value is <= 0 and
        that holds a negative row is no purchase (it is dropped: a pure return day or a
        purchase returned the same day). A day of zero-value rows only is still a purchase.
        Without this option a negative value is an error.

    Returns
    -------
    pandas.DataFrame
        One row per customer, sorted by ``customer_id``, with a RangeIndex:
        ``customer_id``; ``frequency`` (int64); ``recency``, ``T`` (float64);
        ``monetary_value`` (float64, with ``value_col``); and, when ``observation_end``
        is later than ``calibration_end``, ``holdout_frequency`` (int64: distinct purchase
        days in (calibration_end, observation_end]), ``holdout_value`` (float64: *total*
        value of those days, with ``value_col``) and ``holdout_duration`` (float64:
        observation_end - calibration_end in ``time_unit``, the same for every
        customer).

    Raises
    ------
    ValueError
        On bad input (see :mod:`clvbayes.data.validate`): missing columns, an empty log,
        missing ids, missing or unparsable dates, mixed time-zone-aware and naive dates,
        non-numeric, NaN, infinite or (unless allowed) negative values, an
        ``observation_end`` before ``calibration_end``, a ``calibration_end`` before every
        first purchase, or an unknown ``time_unit``.
    TypeError
        When the input, or its date or value column, has an unsupported type.

    Examples
    --------
    >>> from clvbayes.datasets import load_cdnow
    >>> rfm = rfm_summary(load_cdnow("sample"), customer_col="customer_id",
    ...                   date_col="date", value_col="value", calibration_end="1997-09-30")
    >>> len(rfm), int((rfm["frequency"] > 0).sum())
    (2357, 946)
    """
    cal, obs = _period(calibration_end, observation_end, time_unit)
    try:
        return _summarize(
            transactions, customer_col, date_col, value_col, cal, obs, time_unit, allow_negative
        )
    except duckdb.Error as err:  # e.g. a malformed CSV file
        message = str(err).splitlines()[0]
        raise ValueError(f"could not read the transactions: {message}") from err


def _summarize(
    transactions: Any,
    customer_col: str,
    date_col: str,
    value_col: str | None,
    cal: Any,
    obs: Any,
    time_unit: str,
    allow_negative: bool,
) -> pd.DataFrame:
    with _open_source(transactions, customer_col, date_col, value_col) as source:
        scan = _scan(source, allow_negative=allow_negative)
        cal = cal if cal is not None else scan["last_day"]
        obs = obs if obs is not None else cal
        validate.check_first_purchase(cal, scan["first_day"])
        holdout = obs > cal
        sql = _summary_sql(source, holdout=holdout, allow_negative=allow_negative)
        params: dict[str, Any] = {"cal": cal, "obs": obs, "unit": TIME_UNITS[time_unit]}
        out = source.con.execute(sql, params).df()
    return out.reset_index(drop=True)
