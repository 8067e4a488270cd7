"""The return type of the per-customer predictions and of the analyses built on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import xarray as xr

__all__ = ["Result", "customer_draws"]


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
