"""Per-customer summaries of a transaction log, in the papers' conventions.

The aggregations are written once, as DuckDB SQL over a :class:`~clvbayes.data.source.Source`
(:func:`clvbayes.data.source.open_source`): a pandas, polars or Arrow frame is registered
and scanned in place, a CSV or Parquet file is read directly (never loaded into pandas), so
every input gives the same output and 10 million transactions summarize in seconds.

* :func:`rfm_summary`: one row per customer (frequency, recency, T, value, holdout).
* :func:`repeat_purchase_times`: the repeat purchases per day, timed relative to the
  calibration end (the tracking plot's actual curve).
* :func:`first_purchase_values`: each customer's value of given columns at their first
  purchase (e.g. the acquisition channel as the customer's segment).
* :func:`customer_values`: customer-level columns (one value per customer, checked), which
  ``rfm_summary(..., customer_cols=[...])`` carries into the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.data import validate
from clvbayes.data.period import parse_day, parse_period, resolve_period
from clvbayes.data.source import Source, open_source, quote
from clvbayes.math.units import TIME_UNITS, check_time_unit, unit_name

__all__ = [
    "TIME_UNITS",
    "TIME_UNIT_ATTR",
    "customer_col_specs",
    "customer_values",
    "days_sql",
    "first_purchase_values",
    "join_customer_table",
    "repeat_purchase_times",
    "rfm_summary",
    "summarize",
    "summary_sql",
    "table_time_unit",
    "time_unit_of",
    "with_customer_values",
]

TIME_UNIT_ATTR = "time_unit"
"""Key of ``DataFrame.attrs`` under which :func:`rfm_summary` records the table's time
unit (a code of :data:`TIME_UNITS`). pandas carries ``attrs`` through selections,
``assign``, ``copy``, ``merge`` and ``concat`` of tables with equal ``attrs``; a table
built by hand has none (its unit is unknown)."""


def table_time_unit(table: Any) -> str | None:
    """The time unit recorded on an RFM table (``table.attrs["time_unit"]``), or None.

    Parameters
    ----------
    table : DataFrame or any object with ``attrs``
        E.g. the output of :func:`rfm_summary`.

    Returns
    -------
    str or None
        The unit's code (``"D"``, ``"W"``, ...), None when nothing is recorded.

    Raises
    ------
    ValueError
        When the recorded value is no time unit.
    """
    attrs = getattr(table, "attrs", None)
    if not isinstance(attrs, Mapping) or attrs.get(TIME_UNIT_ATTR) is None:
        return None
    return check_time_unit(attrs[TIME_UNIT_ATTR], f"the table's attrs[{TIME_UNIT_ATTR!r}]")


def time_unit_of(
    table: Any, time_unit: str | None = None, argument: str = "time_unit"
) -> str | None:
    """The time unit of an RFM table: ``time_unit`` if given, else the recorded one.

    Parameters
    ----------
    table : DataFrame
        The RFM table (its ``attrs["time_unit"]``, if any, is read).
    time_unit : str, optional
        The unit the caller says the table is in (a code or name).
    argument : str
        The caller's name for ``time_unit`` in error messages.

    Returns
    -------
    str or None
        The unit's code, or None when neither says.

    Raises
    ------
    ValueError
        When ``time_unit`` and the recorded unit differ.
    """
    recorded = table_time_unit(table)
    if time_unit is None:
        return recorded
    code = check_time_unit(time_unit, argument)
    if recorded is not None and recorded != code:
        raise ValueError(
            f"{argument}={time_unit!r}, but the RFM table is in {unit_name(recorded, plural=True)}"
            f" (its attrs[{TIME_UNIT_ATTR!r}] = {recorded!r}, recorded by rfm_summary); "
            f"summarize the log again with time_unit={code!r}, or, if you converted its "
            f"columns yourself, set table.attrs[{TIME_UNIT_ATTR!r}] = {code!r}."
        )
    return code


def summary_sql(
    source: Source, *, holdout: bool, allow_negative: bool, drop_duplicates: bool = False
) -> str:
    """The aggregation of :func:`rfm_summary`: days per customer, then one row per customer.

    Parameters ``$cal``, ``$obs`` (days) and ``$unit`` (days per time unit); see
    :func:`summarize`, which runs it. ``drop_duplicates`` reads each exactly repeated row
    (same customer, date and value) once.
    """
    # Values are summed as DECIMAL(38, 9) (exact integer arithmetic at 1e-9 resolution,
    # days_sql): DuckDB's parallel aggregation combines partial sums in no fixed order, and
    # floating point sums would then differ in the last bits between runs (customers.csv of
    # a report must be byte-reproducible). Money is exact to far below a cent.
    has_value = source.value is not None
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
        {days_sql(source, allow_negative=allow_negative, drop_duplicates=drop_duplicates)}
        SELECT {", ".join(columns)}
        FROM days AS d JOIN firsts AS f ON d.customer_id = f.customer_id
        GROUP BY d.customer_id, f.first_day
        ORDER BY d.customer_id
    """


def days_sql(source: Source, *, allow_negative: bool = False, drop_duplicates: bool = False) -> str:
    """The ``WITH`` clause every summary starts from: the purchase days of the log.

    Defines ``tx`` (transactions up to ``$obs``), ``days`` (one row per customer and
    purchase day, its ``value`` the day's total; with ``allow_negative`` a day whose net
    value is <= 0 and that holds a negative row is no purchase) and ``firsts`` (each
    customer's ``first_day``, for customers whose first purchase is on or before
    ``$cal``). ``drop_duplicates`` reads each exactly repeated row once.
    """
    has_value = source.value is not None
    value = f"CAST({source.value} AS DECIMAL(38, 9))" if has_value else "0.0"
    having = "HAVING NOT (sum(value) <= 0 AND min(value) < 0)" if allow_negative else ""
    rows = "src"
    if drop_duplicates:
        keys = [source.customer, source.date] + ([source.raw_value] if has_value else [])
        rows = f"(SELECT DISTINCT {', '.join(keys)} FROM src) AS src"
    return f"""
        WITH tx AS (
            SELECT {source.customer} AS customer_id, {source.day} AS day, {value} AS value
            FROM {rows} WHERE {source.day} <= $obs
        ),
        days AS (
            SELECT customer_id, day, sum(value) AS value
            FROM tx GROUP BY customer_id, day {having}
        ),
        firsts AS (
            SELECT customer_id, min(day) AS first_day
            FROM days GROUP BY customer_id HAVING min(day) <= $cal
        )"""


def summarize(
    source: Source,
    *,
    calibration_end: dt.date,
    observation_end: dt.date,
    time_unit: str,
    allow_negative: bool = False,
    drop_duplicates: bool = False,
) -> pd.DataFrame:
    """:func:`rfm_summary`'s table of an open, checked source and a resolved period.

    Shared by :func:`rfm_summary` and :func:`clvbayes.scale.rfm_summary_dask` (which runs
    it per partition with the whole log's period).

    Parameters
    ----------
    source : Source
        The open log (:func:`clvbayes.data.source.open_source`), already checked.
    calibration_end, observation_end : datetime.date
        The period (:func:`clvbayes.data.period.resolve_period`).
    time_unit : str
        A code of :data:`TIME_UNITS`.
    allow_negative, drop_duplicates : bool
        As in :func:`rfm_summary`.

    Returns
    -------
    pandas.DataFrame
    """
    holdout = observation_end > calibration_end
    sql = summary_sql(
        source, holdout=holdout, allow_negative=allow_negative, drop_duplicates=drop_duplicates
    )
    params = {"cal": calibration_end, "obs": observation_end, "unit": TIME_UNITS[time_unit]}
    table = source.execute(sql, params).df().reset_index(drop=True)
    table.attrs[TIME_UNIT_ATTR] = time_unit
    return table


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
    drop_duplicates: bool = False,
    customer_cols: Sequence[str] = (),
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
    * Customers whose first purchase is after ``calibration_end`` are left out. A customer
      whose first purchase is *on* ``calibration_end`` is kept with ``T = 0`` (as lifetimes
      and pymc-marketing do: the table describes the log), but there is nothing for a
      model to learn from them yet, so the models refuse ``T = 0``
      (:func:`clvbayes.data.validate.check_rfm`: drop them with ``rfm[rfm["T"] > 0]``) and
      ``clvbayes report`` leaves them out with a warning that counts them.
    * Zero-value transactions are legal purchases. Rows that repeat another row exactly
      (same customer, date and value) count; when they have a time of day or make up at
      least 1 % of the log a ``UserWarning`` gives their number (a log loaded twice
      doubles every value; :func:`clvbayes.data.validate.warn_duplicates`).
      ``drop_duplicates=True`` reads each such row once.
    * A ``calibration_end`` or ``observation_end`` more than one ``time_unit`` after the
      last transaction gives a ``UserWarning``: ``T`` (or the holdout) would include time
      in which the log records no purchase.

    Parameters
    ----------
    transactions : pandas.DataFrame, polars.DataFrame, pyarrow.Table, str or Path
        One row per transaction, or the path of a CSV or Parquet file holding them (read
        by DuckDB in place; the format follows the extension, ``.csv``/``.csv.gz``/
        ``.parquet``). Dates may be datetime or date columns or ISO 8601 text. Never
        modified. A CSV file's customer ids get the type its values have (integers stay
        integers, as with ``pandas.read_csv``; see :mod:`clvbayes.data.source`).
    customer_col : str
        Customer id column (any type; output sorted by it). Ids must not be missing, empty
        or whitespace only.
    date_col : str
        Transaction date column.
    value_col : str, optional
        Transaction value column. Without it, the output has no ``monetary_value`` and no
        ``holdout_value`` column.
    calibration_end : str, date, datetime, Timestamp or numpy.datetime64, optional
        Last day of the calibration period (inclusive); text in ISO 8601 form only
        (``"1997-09-30"``, optionally with a time). Default: the last transaction day in
        the data.
    observation_end : str, date, datetime, Timestamp or numpy.datetime64, optional
        Last day of the observation period (inclusive), in the same forms. When later than
        ``calibration_end``, the holdout columns are added. Requires ``calibration_end``.
    time_unit : {"D", "W", "M", "Q", "Y"}, default "W"
        Unit of ``recency``, ``T`` and ``holdout_duration``: days, weeks (7 days), mean
        Gregorian months (365.2425 / 12 = 30.436875 days), quarters (365.2425 / 4 days)
        or years (365.2425 days); names such as ``"week"`` work too
        (:mod:`clvbayes.math.units`).
    allow_negative : bool, default False
        Accept negative values (returns, refunds). They are netted into their day's value
        (not carried back to the purchase they refund); a day whose net value is <= 0 and
        that holds a negative row is no purchase (it is dropped: a pure return day or a
        purchase returned the same day). A day of zero-value rows only is still a purchase.
        Without this option a negative value is an error.
    drop_duplicates : bool, default False
        Read rows that repeat another row exactly (same customer, date and value) once.
    customer_cols : sequence of str, optional
        Customer-level columns (gender, channel, ...) to carry into the table, e.g. as
        covariates, type kept (:func:`customer_values`: one value per customer, else an
        error; for a value that changes, see :func:`first_purchase_values`).

    Returns
    -------
    pandas.DataFrame
        One row per customer, sorted by ``customer_id``, with a RangeIndex and the time
        unit in ``attrs["time_unit"]`` (:data:`TIME_UNIT_ATTR`, checked by predictions):
        ``customer_id``; ``frequency`` (int64); ``recency``, ``T`` (float64);
        ``monetary_value`` (float64, with ``value_col``); and, when ``observation_end``
        is later than ``calibration_end``, ``holdout_frequency`` (int64: distinct purchase
        days in (calibration_end, observation_end]), ``holdout_value`` (float64: *total*
        value of those days, with ``value_col``) and ``holdout_duration`` (float64:
        observation_end - calibration_end in ``time_unit``, the same for every
        customer); then the ``customer_cols``.

    Raises
    ------
    ValueError
        On bad input (see :mod:`clvbayes.data.validate`): missing columns, an empty log,
        missing or blank ids, missing or unparsable dates, mixed time-zone-aware and naive
        dates, non-numeric, NaN, infinite or (unless allowed) negative values, a period
        bound that is not an ISO 8601 date, an ``observation_end`` before
        ``calibration_end``, a ``calibration_end`` before every first purchase, an unknown
        ``time_unit``, or a file that cannot be read (empty, a directory, ragged lines).
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
    unit = check_time_unit(time_unit)
    cal, obs = parse_period(calibration_end, observation_end)
    other = customer_col_specs(customer_cols)
    columns = {"customer_col": customer_col, "date_col": date_col, "value_col": value_col}
    with open_source(transactions, **columns, other_cols=other) as source:
        scanned = validate.checked_scan(source, allow_negative=allow_negative)
        if not drop_duplicates:
            validate.warn_duplicates(source, scanned)
        cal, obs = resolve_period(cal, obs, scanned, unit)
        table = summarize(
            source,
            calibration_end=cal,
            observation_end=obs,
            time_unit=unit,
            allow_negative=allow_negative,
            drop_duplicates=drop_duplicates,
        )
        return with_customer_values(table, source, customer_cols)


def customer_col_specs(customer_cols: Sequence[str]) -> list[tuple[str, str]]:
    """``customer_cols`` as the ``other_cols`` of :func:`clvbayes.data.source.open_source`
    (each column with the argument that named it).

    Raises
    ------
    TypeError
        For a single string (``customer_cols="gender"``) instead of a list of names.
    """
    if isinstance(customer_cols, str):
        raise TypeError(
            f"customer_cols must be a list of column names, got {customer_cols!r}; pass "
            f"customer_cols=[{customer_cols!r}]."
        )
    return [("customer_cols", c) for c in customer_cols]


def with_customer_values(table: pd.DataFrame, source: Source, columns: Sequence[str]) -> Any:
    """``table`` (one row per customer, ``customer_id`` sorted) with each customer's value of
    the customer-level ``columns`` (:func:`customer_values`) appended; ``table`` itself
    when there are none."""
    if not columns:
        return table
    static = customer_values(source, columns)
    return table.merge(static, on="customer_id", how="left", validate="one_to_one")


def join_customer_table(
    customers: pd.DataFrame, table: Any, on: str = "customer_id", *, source: str = "table"
) -> pd.DataFrame:
    """``customers`` (one row per customer, a ``customer_id`` column) with the other
    columns of ``table`` (one row per customer) joined by customer id.

    Every customer needs a row in ``table``; rows of other customers (e.g. acquired after
    the calibration) are ignored. Ids are compared after converting ``table``'s to the
    type of ``customer_id`` when the types differ (``"17"`` and ``17``), as text when
    that conversion fails. Neither frame is modified; ``customers``' row order, index and
    ``attrs`` are kept.

    Parameters
    ----------
    customers : pandas.DataFrame
        The customer table to extend (an RFM table, a calendar summary's customers).
    table : pandas.DataFrame
        The id column ``on`` and the columns to add.
    on : str
        The id column of ``table``.
    source : str
        How error messages name the table (``"--customer-table crm.csv"``).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    TypeError
        When ``table`` is not a pandas DataFrame.
    ValueError
        When ``on`` is not a column, a column to add is already in ``customers``, a
        customer has several rows, or some customers have none (with their number and an
        example).
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"{source}: must be a pandas DataFrame with one row per customer, got "
            f"{type(table).__name__}."
        )
    if on not in table.columns:
        raise ValueError(
            f"{source}: no id column {on!r} (columns: {list(table.columns)}); pass "
            "on='<its customer id column>'."
        )
    added = [c for c in table.columns if c != on]
    clash = [c for c in added if c in customers.columns]
    if clash:
        raise ValueError(
            f"{source}: column(s) {clash} are already in the customer table; rename or drop "
            "them in the table you join."
        )
    ids, theirs = customers["customer_id"], table[on]
    if theirs.dtype != ids.dtype:
        try:
            theirs = theirs.astype(ids.dtype)
        except (TypeError, ValueError):  # e.g. text ids not all numbers: compare as text
            ids, theirs = ids.astype(str), theirs.astype(str)
    twice = theirs.duplicated()
    if twice.any():
        raise ValueError(
            f"{source}: {int(twice.sum()):,} customer(s) have more than one row (e.g. "
            f"{theirs[twice].tolist()[0]!r}); give one row per customer."
        )
    position = pd.Index(theirs).get_indexer(ids)
    absent = position < 0
    if absent.any():
        raise ValueError(
            f"{source}: {int(absent.sum()):,} of {len(ids):,} customers have no row (e.g. "
            f"customer {ids[absent].tolist()[0]!r}; ids here are "
            f"{customers['customer_id'].dtype}, in the table's {on!r} {table[on].dtype}); "
            "add a row for each."
        )
    values = table[added].iloc[position].set_axis(customers.index)
    joined = pd.concat([customers, values], axis=1)
    joined.attrs = dict(customers.attrs)
    return joined


def customer_values(source: Source, columns: Sequence[str]) -> pd.DataFrame:
    """Each customer's value of customer-level ``columns`` (one row per customer).

    Parameters
    ----------
    source : Source
        The open log, with ``columns`` among its ``other_cols``.
    columns : sequence of str
        Columns that hold one value per customer (e.g. gender, acquisition channel).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` and the columns (their type kept), sorted by ``customer_id``.

    Raises
    ------
    ValueError
        When a column has missing values, or several values for some customer (with
        their number and an example).
    """
    for col in columns:
        q = quote(col)
        ((missing, n),) = source.execute(
            f"SELECT count(*) FILTER (WHERE {q} IS NULL), count(*) FROM src"
        ).fetchall()
        if missing:
            raise ValueError(
                f"customer_cols: column {col!r}: {missing:,} of {n:,} rows have a missing "
                "value; fill them in (e.g. 'unknown', or 0 plus a 0/1 'missing' column) "
                "or drop those rows."
            )
        ((varying, customers, example),) = source.execute(
            f"""
            WITH per AS (
                SELECT {source.customer} AS c, count(DISTINCT {q}) AS k,
                       list(DISTINCT CAST({q} AS VARCHAR) ORDER BY CAST({q} AS VARCHAR)) AS v
                FROM src GROUP BY c
            )
            SELECT count(*) FILTER (WHERE k > 1), count(*),
                   first(CAST(c AS VARCHAR) || ': ' || CAST(v AS VARCHAR) ORDER BY c)
                       FILTER (WHERE k > 1)
            FROM per
            """
        ).fetchall()
        if varying:
            raise ValueError(
                f"customer_cols: column {col!r} is not constant within a customer: "
                f"{varying:,} of {customers:,} customers have several values (e.g. customer "
                f"{example}); a customer-level column needs one value per customer. Take "
                "the value at the first purchase (clvbayes.data.rfm.first_purchase_values) "
                "or merge a customer table instead."
            )
    picks = ", ".join(f"any_value({quote(c)}) AS {quote(c)}" for c in columns)
    sql = f"SELECT {source.customer} AS customer_id, {picks} FROM src GROUP BY 1 ORDER BY 1"
    return source.execute(sql).df()


def repeat_purchase_times(
    transactions: Any,
    *,
    customer_col: str,
    date_col: str,
    calibration_end: Any,
    observation_end: Any = None,
    time_unit: str = "W",
    customers: Any = None,
) -> pd.Series:
    """Repeat purchases per day, timed relative to the end of the calibration period.

    The same conventions as :func:`rfm_summary` (same-day transactions are one
    purchase; only customers whose first purchase is on or before ``calibration_end``;
    nothing after ``observation_end``), so the counts up to time 0 sum to the table's
    ``frequency`` and those in ``(0, holdout_duration]`` to ``holdout_frequency``.

    Parameters
    ----------
    transactions : DataFrame or str or Path
        The log (frame, or CSV/Parquet path read in place by DuckDB).
    customer_col, date_col : str
        Customer id and transaction date columns.
    calibration_end, observation_end : date-like
        Inclusive period ends (``observation_end`` defaults to ``calibration_end``), as in
        :func:`rfm_summary`.
    time_unit : str, default "W"
        Unit of the times (:data:`TIME_UNITS`).
    customers : array_like, optional
        Count only these customers (e.g. the ``customer_id`` of the RFM rows a model was
        fitted to), so the counts match that table's.

    Returns
    -------
    pandas.Series
        Number of repeat purchases (int64) indexed by ``time`` (float: days since
        ``calibration_end`` in ``time_unit``; <= 0 in the calibration period), sorted.
    """
    unit = check_time_unit(time_unit)
    cal = parse_day(calibration_end, "calibration_end")
    _, obs = parse_period(cal, observation_end)
    obs = cal if obs is None else obs
    with open_source(transactions, customer_col=customer_col, date_col=date_col) as source:
        validate.checked_scan(source)
        among = ""
        if customers is not None:
            ids = pd.DataFrame({"customer_id": np.asarray(customers)})
            source.connection.register("chosen", ids)
            among = "AND c IN (SELECT customer_id FROM chosen)"
        rows = source.execute(
            f"""
            WITH days AS (
                SELECT DISTINCT {source.customer} AS c, {source.day} AS day
                FROM src WHERE {source.day} <= $obs
            ),
            firsts AS (
                SELECT c, min(day) AS first_day FROM days GROUP BY c
                HAVING min(day) <= $cal {among}
            )
            SELECT date_diff('day', $cal, d.day) AS day_offset, count(*) AS n
            FROM days AS d JOIN firsts AS f ON d.c = f.c
            WHERE d.day > f.first_day
            GROUP BY day_offset ORDER BY day_offset
            """,
            {"cal": cal, "obs": obs},
        ).fetchall()
    offsets = np.array([r[0] for r in rows], dtype=float)
    counts = np.array([r[1] for r in rows], dtype=np.int64)
    return pd.Series(
        counts,
        index=pd.Index(offsets / TIME_UNITS[unit], name="time"),
        name="repeat_purchases",
    )


def first_purchase_values(
    transactions: Any,
    *,
    customer_col: str,
    date_col: str,
    columns: Sequence[str],
    calibration_end: Any = None,
    argument: str = "columns",
) -> pd.DataFrame:
    """Each customer's values of ``columns`` at their first purchase.

    E.g. the acquisition channel or month of each customer, to use as their segment. When
    a customer's first day has several transactions with different values, the smallest
    value (as text) is taken, so the result does not depend on the row order.

    Parameters
    ----------
    transactions, customer_col, date_col
        The log and its customer id and date columns, as in :func:`rfm_summary`.
    columns : sequence of str
        Columns whose first-purchase values are wanted; read as text.
    calibration_end : date-like, optional
        Only customers whose first purchase is on or before this day (ISO 8601 text or a
        date; default: all customers).
    argument : str, default "columns"
        The name of the argument that chose ``columns``, for error messages (the report
        passes ``"segment_col"`` so a missing column names ``--segment-col``).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` and one text column per entry of ``columns``, sorted by
        ``customer_id``.

    Raises
    ------
    ValueError
        On a missing column, on any missing value in ``columns`` (fill them in, e.g. with
        ``"unknown"``, or drop those rows), or on bad transactions (as :func:`rfm_summary`).
    """
    cal = None if calibration_end is None else parse_day(calibration_end, "calibration_end")
    other = [(argument, column) for column in columns]
    with open_source(
        transactions, customer_col=customer_col, date_col=date_col, other_cols=other
    ) as source:
        scanned = validate.checked_scan(source)
        values = {col: f"CAST({quote(col)} AS VARCHAR)" for col in columns}
        for col, expr in values.items():
            sql = f"SELECT count(*) FILTER (WHERE {expr} IS NULL) FROM src"
            ((missing,),) = source.execute(sql).fetchall()
            if missing:
                raise ValueError(
                    f"column {col!r}: {missing:,} of {scanned['n']:,} rows have a missing "
                    "value; fill them in (e.g. 'unknown') or drop those rows."
                )
        day = source.day
        firsts = ", ".join(
            f"first({expr} ORDER BY {day}, {expr}) AS {quote(col)}" for col, expr in values.items()
        )
        where = "" if cal is None else f"WHERE {day} <= $cal"
        sql = (
            f"SELECT {source.customer} AS customer_id, {firsts} FROM src {where} "
            "GROUP BY customer_id ORDER BY customer_id"
        )
        return source.execute(sql, {} if cal is None else {"cal": cal}).df()
