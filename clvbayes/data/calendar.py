"""Calendar summaries: the RFM table plus where on the calendar each purchase fell.

Models with calendar-time effects (``BGNBD(time_effects=True)``) need, besides each
customer's ``(frequency, recency, T)``, the calendar: a grid of periods of one time unit,
each customer's first purchase on it, and the repeat purchases per period.
:func:`calendar_rfm` computes all of it in one pass over the log (the same DuckDB SQL and
conventions as :func:`clvbayes.rfm_summary`) and returns a :class:`CalendarRFM`.

The grid. Period ``p`` covers the days ``[origin + p u, origin + (p + 1) u)`` with ``u``
the time unit in days (7 for weeks). The origin is chosen so that the calibration end
closes a period: the last calibration period is the week (or day) that ends on
``calibration_end``, and the holdout starts with a fresh period. A day ``d`` is at the
grid position ``(d - origin) / u``; as in the RFM conventions a purchase is an instant at
the start of its day, so a customer first seen on day ``d0`` has ``c = (d0 - origin) / u``
and ``T = G - c`` with ``G = (calibration_end - origin) / u`` (for weeks ``G = P - 1/7``
with ``P`` calibration periods).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.data import validate
from clvbayes.data.period import parse_period, resolve_period
from clvbayes.data.rfm import (
    TIME_UNIT_ATTR,
    customer_col_specs,
    days_sql,
    join_customer_table,
    summarize,
    with_customer_values,
)
from clvbayes.data.source import open_source
from clvbayes.math.units import TIME_UNITS, check_time_unit

__all__ = ["CALENDAR_UNITS", "CalendarGrid", "CalendarRFM", "calendar_rfm", "customer_table"]

CALENDAR_UNITS = ("D", "W")
"""Time units a calendar grid can have: periods of whole days."""


@dataclass(frozen=True, eq=False)
class CalendarRFM:
    """A customer table with its calendar (:func:`calendar_rfm`).

    Every model's ``fit``, :func:`clvbayes.predict_customers` and
    :func:`clvbayes.validate_holdout` accept it: stationary models use :attr:`customers`,
    models with calendar-time effects also the calendar.

    Attributes
    ----------
    customers : DataFrame
        :func:`clvbayes.rfm_summary`'s table (same rows and columns, same order) plus
        ``first_purchase`` (the date of the first purchase).
    periods : DataFrame
        One row per period of the grid, calibration then holdout: ``period`` (0, 1,
        ...), ``start`` (first day), ``days`` (its length in days; the last holdout
        period may be cut short by ``observation_end``), ``calibration`` (bool),
        ``repeat_purchases`` (repeat purchases of the customers in the period: same-day
        transactions merged, only customers first seen by the calibration end) and
        ``exposure`` (customer-time at risk in the period, in time units: how long the
        customers first seen by then could have bought in it; calibration periods only).
    purchases : DataFrame
        The calibration's repeat purchases per customer and period (``customer_id,
        period, repeat_purchases``; only non-zero counts): the data of each customer's
        own share of the calendar effects (pointwise log-likelihood, LOO).
    holdout_purchases : DataFrame
        The same for the holdout periods (empty without a holdout).
    origin : datetime.date
        First day of period 0.
    time_unit : str
        ``"W"`` or ``"D"``.
    calibration_end, observation_end : datetime.date
        The period bounds (``observation_end`` equals ``calibration_end`` without a
        holdout).
    """

    customers: pd.DataFrame
    periods: pd.DataFrame
    purchases: pd.DataFrame
    holdout_purchases: pd.DataFrame
    origin: dt.date
    time_unit: str
    calibration_end: dt.date
    observation_end: dt.date

    def __len__(self) -> int:
        return len(self.customers)

    @property
    def attrs(self) -> dict[str, Any]:
        """The customer table's ``attrs`` with the calendar's time unit: what a fit records
        and a prediction checks (:func:`clvbayes.data.rfm.table_time_unit`), as for an
        :func:`clvbayes.rfm_summary` table."""
        return {**self.customers.attrs, TIME_UNIT_ATTR: self.time_unit}

    def __repr__(self) -> str:
        holdout = self.n_holdout_periods
        return (
            f"<CalendarRFM: {len(self.customers):,} customers, {self.n_periods} "
            f"calibration and {holdout} holdout periods of 1 {self.time_unit} from "
            f"{self.origin}>"
        )

    @property
    def days_per_unit(self) -> float:
        """Days in one period."""
        return TIME_UNITS[self.time_unit]

    @property
    def n_periods(self) -> int:
        """Number of calibration periods ``P``."""
        return int(self.periods["calibration"].sum())

    @property
    def n_holdout_periods(self) -> int:
        """Number of holdout periods (the last may be shorter than one unit)."""
        return int((~self.periods["calibration"]).sum())

    @property
    def grid_end(self) -> float:
        """``G``: the grid position of the calibration end's day."""
        return (self.calibration_end - self.origin).days / self.days_per_unit

    @property
    def first_position(self) -> np.ndarray:
        """Each customer's first purchase on the grid, ``c = G - T`` (customers' order)."""
        return self.grid_end - self.customers["T"].to_numpy(dtype=float)

    def calibration_counts(self) -> np.ndarray:
        """Repeat purchases per calibration period (the pooled data of the Jacobian)."""
        calib = self.periods[self.periods["calibration"]]
        return calib["repeat_purchases"].to_numpy(dtype=float)

    def holdout_counts(self) -> np.ndarray:
        """Repeat purchases per holdout period (empty without a holdout)."""
        return self.periods.loc[~self.periods["calibration"], "repeat_purchases"].to_numpy()

    def select(self, customers: Any) -> CalendarRFM:
        """The same data for some of the customers (a boolean mask over
        :attr:`customers` or their positions): the per-period purchases and exposure are
        recomputed for them.

        Examples
        --------
        >>> from clvbayes.datasets import load_cdnow
        >>> cal = calendar_rfm(load_cdnow("sample"), customer_col="customer_id",
        ...                    date_col="date", calibration_end="1997-09-30")
        >>> repeat = cal.select(cal.customers["frequency"] > 0)
        >>> len(repeat), int(repeat.calibration_counts().sum())
        (946, 2457)
        """
        keep = np.asarray(customers)
        if keep.dtype == bool:
            if keep.shape != (len(self),):
                raise ValueError(
                    f"select: the mask has {keep.size} values for {len(self)} customers."
                )
            keep = np.flatnonzero(keep)
        table = self.customers.iloc[keep].reset_index(drop=True)
        ids = table["customer_id"]
        bought = [t[t["customer_id"].isin(ids)].reset_index(drop=True)
                  for t in (self.purchases, self.holdout_purchases)]  # fmt: skip
        periods = _periods(
            table, pd.concat(bought), self.origin, self.calibration_end,
            self.observation_end, self.time_unit, self.n_periods,
        )  # fmt: skip
        return dataclasses.replace(
            self, customers=table, periods=periods, purchases=bought[0], holdout_purchases=bought[1]
        )

    def with_customer_columns(self, table: pd.DataFrame, on: str = "customer_id") -> CalendarRFM:
        """The same data with more customer-level columns (covariates, a segment) joined
        from ``table``, one row per customer; ``self`` and ``table`` are not modified.

        Parameters
        ----------
        table : pandas.DataFrame
            One row per customer: the id column ``on`` and the columns to add. Every
            customer of :attr:`customers` needs a row; rows of other customers (e.g.
            acquired after the calibration) are ignored.
        on : str
            The id column of ``table``; its ids are compared with ``customer_id``, after
            conversion to that column's type when the types differ (``"17"`` and ``17``),
            as text when that conversion fails.

        Returns
        -------
        CalendarRFM

        Raises
        ------
        ValueError
            When ``on`` is not a column, a customer has several rows, some customers have
            none (with their number and an example), or a column is already in
            :attr:`customers`.
        TypeError
            When ``table`` is not a pandas DataFrame.

        Examples
        --------
        >>> import pandas as pd
        >>> from clvbayes.datasets import load_cdnow
        >>> cal = calendar_rfm(load_cdnow("sample"), customer_col="customer_id",
        ...                    date_col="date", calibration_end="1997-09-30")
        >>> crm = pd.DataFrame({"customer_id": cal.customers["customer_id"],
        ...                     "web": cal.customers["customer_id"] % 2})
        >>> cal.with_customer_columns(crm).customers.columns[-2:].tolist()
        ['first_purchase', 'web']
        """
        customers = join_customer_table(self.customers, table, on, source="with_customer_columns")
        return dataclasses.replace(self, customers=customers)

    def grid(self, customers: Any = None) -> CalendarGrid:
        """The :class:`CalendarGrid` of these data (no covariates, no free periods yet).

        ``customers`` (a boolean mask or positions) restricts the per-customer purchases
        to the customers a model is fitted on (positions then refer to them).

        A purchase counts for the period that holds it, except a purchase on the
        calibration's last day when ``G`` falls on a period boundary (daily grids): it lies
        at ``G`` itself, the end of the observed window, and counts for the period before,
        whose multiplier is in force up to ``G``. The period starting at ``G`` has no
        exposure, and a purchase counted in it made its effect's likelihood grow without
        bound (a fit whose last daily effect and noise scale ran away).
        """
        ids = self.customers["customer_id"].to_numpy()
        keep = np.arange(ids.size) if customers is None else np.asarray(customers)
        if keep.dtype == bool:
            keep = np.flatnonzero(keep)
        position = pd.Series(np.arange(keep.size), index=ids[keep])
        rows = self.purchases[self.purchases["customer_id"].isin(position.index)]
        last = max(math.ceil(self.grid_end) - 1, 0)  # the last period with exposure
        purchases = np.vstack(
            [
                position.loc[rows["customer_id"]].to_numpy(),
                np.minimum(rows["period"].to_numpy(), last),
                rows["repeat_purchases"].to_numpy(),
            ]
        ).astype(np.int64)
        calib = self.periods[self.periods["calibration"]]
        return CalendarGrid(
            origin=self.origin,
            time_unit=self.time_unit,
            grid_end=self.grid_end,
            counts=np.bincount(purchases[1], weights=purchases[2], minlength=self.n_periods).astype(
                float
            ),
            exposure=calib["exposure"].to_numpy(dtype=float),
            purchases=purchases,
        )


@dataclass(frozen=True, eq=False)
class CalendarGrid:
    """The calendar a model with calendar-time effects is fitted on and predicts with.

    Built from a :class:`CalendarRFM` (:meth:`CalendarRFM.grid`) and completed by the
    model's options (:func:`clvbayes.models.calendar.prepare_grid`: covariates, periods
    outside the latent process). Plain arrays and numbers, so it is stored with a fit.

    Attributes
    ----------
    origin : datetime.date
        First day of period 0.
    time_unit : str
        ``"W"`` or ``"D"``.
    grid_end : float
        ``G``, the calibration end's position.
    counts : ndarray, shape (P,)
        Repeat purchases per calibration period ``N_p`` (the pooled Jacobian's data).
    exposure : ndarray, shape (P,)
        Customer-time at risk per calibration period.
    purchases : ndarray of int64, shape (3, m)
        Each customer's calibration repeat purchases per period as rows ``(customer,
        period, count)`` (customer: position in the fitted table): the per-customer
        Jacobian of the pointwise log-likelihood.
    n_free : int
        The first periods whose effects are free (outside the latent process), e.g. a
        cohort's acquisition weeks.
    covariate_names : tuple of str
        Known calendar covariates (user columns and seasonality terms), in the order of
        ``covariates``' columns.
    covariates : ndarray, shape (K, n_covariates)
        Their values for the first ``K >= P`` periods (calibration, then any future
        periods given).
    """

    origin: dt.date
    time_unit: str
    grid_end: float
    counts: np.ndarray
    exposure: np.ndarray
    purchases: np.ndarray
    n_free: int = 0
    covariate_names: tuple[str, ...] = ()
    covariates: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def n_periods(self) -> int:
        """Number of calibration periods ``P``."""
        return int(self.counts.size)

    @property
    def days_per_unit(self) -> float:
        """Days in one period."""
        return TIME_UNITS[self.time_unit]

    def period_start(self, period: Any) -> Any:
        """The first day of ``period`` (an int or an array of ints)."""
        days = np.asarray(period, dtype=np.int64) * int(self.days_per_unit)
        return np.datetime64(self.origin) + days.astype("timedelta64[D]")

    def period_of(self, dates: Any) -> np.ndarray:
        """The period holding each of ``dates`` (anything ``pandas.to_datetime`` reads;
        times of day and time zones are dropped): ``floor((day - origin) / unit)``,
        negative before the grid's first period."""
        days = pd.DatetimeIndex(pd.to_datetime(dates)).tz_localize(None).normalize()
        elapsed = (days - pd.Timestamp(self.origin)).days.to_numpy()
        return np.floor_divide(elapsed, int(self.days_per_unit)).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        """The arrays and attributes to store with a fit (:meth:`from_dict`)."""
        return {
            "origin": self.origin.isoformat(),
            "time_unit": self.time_unit,
            "grid_end": float(self.grid_end),
            "counts": self.counts,
            "exposure": self.exposure,
            "purchases": self.purchases,
            "n_free": int(self.n_free),
            "covariate_names": list(self.covariate_names),
            "covariates": self.covariates,
        }

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> CalendarGrid:
        """Rebuild from :meth:`to_dict`'s output."""
        names = tuple(str(c) for c in _names(stored["covariate_names"]))
        counts = np.asarray(stored["counts"], dtype=float)
        covariates = np.asarray(stored["covariates"], dtype=float)
        # without covariates the stored (K, 0) array comes back empty: K is lost, and
        # any K serves (the forecast computes no covariate)
        covariates = covariates.reshape(-1, len(names)) if names else np.zeros((counts.size, 0))
        return cls(
            origin=dt.date.fromisoformat(str(stored["origin"])),
            time_unit=str(stored["time_unit"]),
            grid_end=float(stored["grid_end"]),
            counts=counts,
            exposure=np.asarray(stored["exposure"], dtype=float),
            purchases=np.asarray(stored["purchases"], dtype=np.int64).reshape(3, -1),
            n_free=int(stored["n_free"]),
            covariate_names=names,
            covariates=covariates,
        )


def _names(value: Any) -> list[str]:
    """A stored list of names (a list, or its JSON text)."""
    if isinstance(value, str):
        import json

        return list(json.loads(value))
    return list(value)


def customer_table(rfm: Any) -> Any:
    """The per-customer table of ``rfm``: a :class:`CalendarRFM`'s :attr:`~CalendarRFM.customers`,
    anything else as it is."""
    return rfm.customers if isinstance(rfm, CalendarRFM) else rfm


def calendar_rfm(
    transactions: Any,
    *,
    customer_col: str,
    date_col: str,
    value_col: str | None = None,
    calibration_end: Any,
    observation_end: Any = None,
    time_unit: str = "W",
    allow_negative: bool = False,
    drop_duplicates: bool = False,
    customer_cols: Sequence[str] = (),
) -> CalendarRFM:
    """The RFM table of a transaction log with its calendar of periods.

    Same conventions, arguments and checks as :func:`clvbayes.rfm_summary` (whose table
    is :attr:`CalendarRFM.customers`); in addition the calendar grid (see the module
    docstring), the repeat purchases per period in calibration and holdout, and per
    customer and period in calibration.

    Parameters
    ----------
    transactions, customer_col, date_col, value_col, allow_negative, drop_duplicates
        As in :func:`clvbayes.rfm_summary`.
    customer_cols : sequence of str, optional
        Customer-level columns to carry into :attr:`CalendarRFM.customers` (covariates,
        a segment), as in :func:`clvbayes.rfm_summary`; columns from another table join
        with :meth:`CalendarRFM.with_customer_columns`.
    calibration_end : date-like
        Last day of the calibration period (inclusive); required: the grid is anchored
        on it.
    observation_end : date-like, optional
        Last day of the holdout (inclusive): adds the holdout periods and the holdout
        columns of the customer table.
    time_unit : {"W", "D"}
        Length of the periods (and unit of ``recency``, ``T``): a calendar grid needs
        periods of whole days.

    Returns
    -------
    CalendarRFM

    Examples
    --------
    >>> from clvbayes.datasets import load_cdnow
    >>> cal = calendar_rfm(load_cdnow("sample"), customer_col="customer_id",
    ...                    date_col="date", value_col="value", calibration_end="1997-09-30",
    ...                    observation_end="1998-06-30")
    >>> cal.n_periods, cal.n_holdout_periods, int(cal.calibration_counts().sum())
    (39, 39, 2457)
    """
    unit = check_time_unit(time_unit)
    if unit not in CALENDAR_UNITS:
        raise ValueError(
            f"time_unit={time_unit!r}: a calendar grid needs periods of whole days; use "
            "time_unit='W' (weeks) or 'D' (days)."
        )
    if calibration_end is None:
        raise ValueError(
            "calendar_rfm needs calibration_end (the grid is anchored on it); pass e.g. "
            "calibration_end='1997-09-30'."
        )
    cal, obs = parse_period(calibration_end, observation_end)
    other = customer_col_specs(customer_cols)
    columns = {"customer_col": customer_col, "date_col": date_col, "value_col": value_col}
    with open_source(transactions, **columns, other_cols=other) as source:
        scanned = validate.checked_scan(source, allow_negative=allow_negative)
        if not drop_duplicates:
            validate.warn_duplicates(source, scanned)
        cal, obs = resolve_period(cal, obs, scanned, unit)
        options = {"allow_negative": allow_negative, "drop_duplicates": drop_duplicates}
        customers = summarize(
            source, calibration_end=cal, observation_end=obs, time_unit=unit, **options
        )
        days = int(TIME_UNITS[unit])
        first = source.execute(
            f"{days_sql(source, **options)} SELECT first_day FROM firsts ORDER BY customer_id",
            {"cal": cal, "obs": obs},
        ).df()["first_day"]
        n_cal = math.ceil(((cal - min(first).date()).days + 1) / days) if len(first) else 1
        origin = cal + dt.timedelta(days=1) - dt.timedelta(days=n_cal * days)
        counts = source.execute(
            f"""{days_sql(source, **options)}
            SELECT d.customer_id, CAST(floor(date_diff('day', $origin, d.day) / $unit)
                   AS BIGINT) AS period, count(*) AS repeat_purchases
            FROM days AS d JOIN firsts AS f ON d.customer_id = f.customer_id
            WHERE d.day > f.first_day
            GROUP BY ALL ORDER BY d.customer_id, period""",
            {"cal": cal, "obs": obs, "origin": origin, "unit": days},
        ).df()
        customers = with_customer_values(customers, source, customer_cols)
    customers = customers.assign(first_purchase=pd.to_datetime(first.to_numpy()).date)
    periods = _periods(customers, counts, origin, cal, obs, unit, n_cal)
    calibration = counts["period"] < n_cal
    purchases = counts[calibration].reset_index(drop=True)
    holdout = counts[~calibration].reset_index(drop=True)
    return CalendarRFM(customers, periods, purchases, holdout, origin, unit, cal, obs)


def _periods(
    customers: pd.DataFrame,
    counts: pd.DataFrame,
    origin: dt.date,
    cal: dt.date,
    obs: dt.date,
    unit: str,
    n_cal: int,
) -> pd.DataFrame:
    """The periods table: starts, lengths, repeat purchases and calibration exposure."""
    days = int(TIME_UNITS[unit])
    n_hold = math.ceil((obs - cal).days / days)
    index = np.arange(n_cal + n_hold)
    starts = [origin + dt.timedelta(days=int(p) * days) for p in index]
    ends = [min(s + dt.timedelta(days=days), obs + dt.timedelta(days=1)) for s in starts]
    per_period = counts.groupby("period")["repeat_purchases"].sum()
    purchases = per_period.reindex(index, fill_value=0).to_numpy(dtype=np.int64)
    # calibration exposure: each customer is at risk from its first purchase to G
    grid_end = (cal - origin).days / days
    first = grid_end - customers["T"].to_numpy(dtype=float)
    low, high = index[:n_cal], index[:n_cal] + 1.0
    exposure = np.zeros(index.size)
    if first.size:
        starts_at, where = np.unique(first, return_counts=True)
        overlap = np.clip(
            np.minimum(grid_end, high)[None, :] - np.maximum(starts_at[:, None], low), 0, None
        )
        exposure[:n_cal] = where @ overlap
    return pd.DataFrame(
        {
            "period": index,
            "start": starts,
            "days": [(e - s).days for s, e in zip(starts, ends, strict=True)],
            "calibration": index < n_cal,
            "repeat_purchases": purchases,
            "exposure": exposure,
        }
    )
