"""The return type of the per-customer predictions and of the analyses built on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import xarray as xr

__all__ = ["Result", "customer_draws", "result_html", "result_repr"]


@dataclass(frozen=True, eq=False)
class Result:
    """A tidy table and the posterior draws it was computed from.

    Returned by :func:`clvbayes.predict.predict_customers` and by the analyses
    (:mod:`clvbayes.analyses`, :mod:`clvbayes.segments`).

    Attributes
    ----------
    summary : DataFrame
        The tidy table: one row per customer for per-customer quantities (e.g.
        :func:`~clvbayes.predict.predict_customers`), else one row per segment, pair of
        segments or time point.
    draws : xarray.Dataset
        The draws behind ``summary``, dims ``(chain, draw, ...)``: ``customer_id`` for
        per-customer quantities, ``segment`` (and then ``time``) for per-segment ones.
    groups : DataFrame, optional
        For analyses that also summarise groups of customers (the segments of
        :func:`~clvbayes.analyses.average_order_value`, the tiers of
        :func:`~clvbayes.analyses.value_tiers`): one row per group; None otherwise.
    """

    summary: pd.DataFrame
    draws: xr.Dataset
    groups: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return result_repr(self)

    def _repr_html_(self) -> str:
        """Jupyter's display: the table's size, columns at a glance, first rows and
        the draws' variables."""
        return result_html(self)


def customer_draws(
    source: Result | xr.Dataset | xr.DataArray, variables: Sequence[str] | None = None
) -> xr.Dataset:
    """The per-customer draws of a :class:`Result`, Dataset or DataArray, as a Dataset.

    Parameters
    ----------
    source : Result, Dataset or DataArray
        E.g. ``predict_customers(...)`` or its ``draws``; variables with dims
        ``(chain, draw, customer_id)``. A DataArray needs a name.
    variables : sequence of str, optional
        The variables wanted, in this order (default: all of ``source``).

    Returns
    -------
    xarray.Dataset
        The variables asked for.

    Raises
    ------
    ValueError
        If a variable is missing or has no ``customer_id`` dim.
    """
    draws = source.draws if isinstance(source, Result) else source
    if isinstance(draws, xr.DataArray):
        if draws.name is None:
            raise ValueError("the draws DataArray needs a name (e.g. da.rename('clv')).")
        draws = draws.to_dataset()
    if not isinstance(draws, xr.Dataset):
        raise TypeError(
            f"expected a Result, Dataset or DataArray of per-customer draws, got "
            f"{type(source).__name__}."
        )
    names = list(draws.data_vars) if variables is None else list(variables)
    missing = [n for n in names if n not in draws]
    if missing or not names:
        raise ValueError(
            f"the draws lack {missing or 'any variable'} (have {list(draws.data_vars)}); call "
            f"predict_customers with keep_draws including {missing or 'them'}."
        )
    flat = [n for n in names if "customer_id" not in draws[n].dims]
    if flat:
        raise ValueError(f"draws {flat} have no customer_id dim (dims {draws[flat[0]].dims}).")
    return draws[names]


def _draws_line(draws: xr.Dataset) -> str:
    if not draws.data_vars:
        return "no draws"
    sizes = ", ".join(f"{d} {n:,}" for d, n in draws.sizes.items())
    return f"draws {', '.join(map(str, draws.data_vars))} ({sizes})"


def result_repr(result: Result) -> str:
    """One line: the table's size and first columns, the draws and the groups."""
    from clvbayes.display import shorten

    rows, columns = result.summary.shape
    groups = "" if result.groups is None else f"; groups: {len(result.groups):,} rows"
    return (
        f"<Result: {rows:,} rows x {columns} columns ({shorten(result.summary.columns)}); "
        f"{_draws_line(result.draws)}{groups}>"
    )


def _column_overview(summary: pd.DataFrame, max_columns: int = 24) -> pd.DataFrame:
    """Mean, min and max over the rows of each numeric column but the customer id (one
    pass each)."""
    numeric = summary.drop(columns="customer_id", errors="ignore").select_dtypes("number")
    numeric = numeric.iloc[:, :max_columns]
    return pd.DataFrame(
        {"mean": numeric.mean(), "min": numeric.min(), "max": numeric.max()}
    ).rename_axis("column")


def result_html(result: Result) -> str:
    """The HTML card of a :class:`Result`: rows and columns, each numeric column's mean,
    min and max over the rows, the first rows, the draws' variables (dims, memory) and
    the groups; every label escaped (customer ids and segment names are user data)."""
    from clvbayes.display import card, draws_table, frame_table

    summary = result.summary
    sections = []
    overview = _column_overview(summary)
    if len(overview):
        sections.append(("Columns over the rows", frame_table(overview, max_rows=24)))
    sections.append(("First rows of summary", frame_table(summary, max_rows=5, index=False)))
    if result.groups is not None:
        sections.append(("groups", frame_table(result.groups, max_rows=10)))
    sections.append(("draws", draws_table(result.draws)))
    rows, columns = summary.shape
    note = f"summary: {rows:,} rows x {columns} columns; {_draws_line(result.draws)}"
    return card("Result", *sections, note=note)
