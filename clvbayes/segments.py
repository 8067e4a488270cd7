"""Segment-level answers with uncertainty: value of a new customer, of the existing ones,
contrasts between segments, CLV:CAC.

Every quantity is a posterior: an ``xarray`` array with dims ``(chain, draw, segment)``
computed draw by draw from a segmented fit (``BGNBD(segments=...)``; see
:mod:`clvbayes.models.hierarchy`), then summarised in tidy tables.

* :func:`new_customer_value`: expected repeat purchases of a customer acquired today in
  each segment over a horizon (FHL 2005, eq. 9, :func:`clvbayes.math.bgnbd.
  expected_purchases_new`), the segment's mean spend per transaction ``p v / (q - 1)``
  (:func:`clvbayes.math.gamma_gamma.expected_spend_new`) and their product, the CLV of a
  new customer (discounted like :func:`clvbayes.predict.predict_customers`).
* :func:`existing_customer_value`: per segment, the mean over its customers of the
  predicted CLV / purchases and the share of them alive, from the draws of
  :func:`~clvbayes.predict.predict_customers` (each customer uses its segment's
  parameters).
* :func:`segment_table`, :func:`contrasts`: tidy summaries and pairwise differences,
  ratios and ``P(A > B)``.
* :func:`clv_cac`: CLV divided by the acquisition cost of each segment, with
  ``P(ratio > 1)`` (pays back) and ``P(ratio > 3)`` (a common target).
* :func:`acquisition_segments`: cohort (month of first purchase) and first-purchase
  value group of each customer, from a transaction log.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvbayes.math import bgnbd, gamma_gamma
from clvbayes.math.clv import continuous_rate, discounted_expectation
from clvbayes.models.fitted import FittedModel
from clvbayes.predict.customers import Result

__all__ = [
    "acquisition_segments",
    "clv_cac",
    "contrasts",
    "existing_customer_value",
    "new_customer_value",
    "segment_parameters",
    "segment_table",
]


def _require_segments(fit: FittedModel, argument: str) -> None:
    if not isinstance(fit, FittedModel):
        raise TypeError(f"{argument} must be a FittedModel, got {type(fit).__name__}.")
    if fit.segment_column is None:
        raise ValueError(
            f"{argument} was fitted without segments; fit e.g. "
            f"{fit.kind}(segments='channel') to get segment-level answers."
        )


def _paired_index(available: int, wanted: int) -> np.ndarray:
    """Indices of ``wanted`` draws out of ``available`` (evenly thinned or cycled)."""
    if wanted >= available:
        return np.arange(wanted) % available
    return (np.arange(wanted) * available) // wanted


def _spend_by_segment(
    spend_fit: FittedModel, levels: tuple[str, ...], column: str, shape: tuple[int, int]
) -> dict[str, np.ndarray]:
    """Gamma-Gamma draws ``(chain, draw, segment)`` paired with the transaction draws.

    An unsegmented spend fit applies to every segment; a segmented one must use the
    same column and levels.
    """
    if spend_fit.kind != "GammaGamma":
        raise TypeError(f"spend_fit must be a fitted GammaGamma model, got {spend_fit.kind}.")
    params = spend_fit.params()
    if spend_fit.segment_column is not None:
        if spend_fit.segment_column != column or spend_fit.segment_levels != levels:
            raise ValueError(
                f"spend_fit is segmented by {spend_fit.segment_column!r} "
                f"{list(spend_fit.segment_levels)}, the transaction fit by {column!r} "
                f"{list(levels)}; use the same segments, or an unsegmented spend fit."
            )
        flat = {k: v.reshape(-1, len(levels)) for k, v in params.items()}
    else:
        flat = {k: np.repeat(v.reshape(-1, 1), len(levels), axis=1) for k, v in params.items()}
    n = shape[0] * shape[1]
    index = _paired_index(next(iter(flat.values())).shape[0], n)
    return {k: v[index].reshape(*shape, len(levels)) for k, v in flat.items()}


def _coords(fit: FittedModel) -> dict[str, np.ndarray]:
    post = fit.posterior
    return {
        "chain": post["chain"].to_numpy(),
        "draw": post["draw"].to_numpy(),
        "segment": np.array(fit.segment_levels, dtype=str),
    }


def new_customer_value(
    bgnbd_fit: FittedModel,
    spend_fit: FittedModel | None = None,
    *,
    horizon: float,
    time_unit: str | float = "week",
    annual_discount: float = 0.0,
    margin: float = 1.0,
    include_first_purchase: bool = False,
    nodes: int = 16,
) -> xr.Dataset:
    """Posterior value of a customer newly acquired in each segment.

    Parameters
    ----------
    bgnbd_fit : FittedModel
        A segmented BG/NBD fit.
    spend_fit : FittedModel, optional
        A Gamma-Gamma fit: segmented by the same column, or unsegmented (one spend
        distribution for all segments). Without it only purchases are returned.
    horizon : float
        Window ``(0, horizon]`` after the first purchase, in the model's time unit.
    time_unit : str or float
        The model's time unit, for discounting.
    annual_discount : float
        Annual effective discount rate (0 = none).
    margin : float
        Profit margin applied to spend.
    include_first_purchase : bool
        Add the (undiscounted) margin on the first purchase, valued at the segment's
        mean spend. The models describe *repeat* purchases: by default the CLV is that
        of the repeat purchases only, like :func:`~clvbayes.predict.predict_customers`.
    nodes : int
        Gauss-Legendre nodes of the discounting integral.

    Returns
    -------
    xarray.Dataset
        Dims ``(chain, draw, segment)``: ``expected_purchases`` (undiscounted repeat
        purchases, FHL 2005 eq. 9) and, with ``spend_fit``, ``mean_spend``
        (``p v / (q - 1)``; infinite in draws with ``q <= 1``) and ``clv``
        (``margin x E[discounted purchases] x mean spend`` [+ first purchase]).
    """
    _require_segments(bgnbd_fit, "bgnbd_fit")
    if bgnbd_fit.kind != "BGNBD":
        raise TypeError(f"bgnbd_fit must be a fitted BGNBD model, got {bgnbd_fit.kind}.")
    if not np.isfinite(horizon) or horizon < 0:
        raise ValueError(f"horizon must be finite and >= 0, got {horizon!r}.")
    p = bgnbd_fit.params()
    r, alpha, a, b = (p[k] for k in ("r", "alpha", "a", "b"))
    coords = _coords(bgnbd_fit)
    dims = ("chain", "draw", "segment")
    out = {"expected_purchases": (dims, bgnbd.expected_purchases_new(r, alpha, a, b, horizon))}
    if spend_fit is not None:
        spend = _spend_by_segment(
            spend_fit, bgnbd_fit.segment_levels, bgnbd_fit.segment_column, r.shape[:2]
        )
        with np.errstate(divide="ignore"):
            mean_spend = np.where(
                spend["q"] > 1,
                gamma_gamma.expected_spend_new(spend["p"], spend["q"], spend["v"]),
                np.inf,
            )
        delta = float(continuous_rate(annual_discount, time_unit))
        discounted = discounted_expectation(
            lambda t: bgnbd.expected_purchases_new(r, alpha, a, b, t), horizon, delta, nodes=nodes
        )
        clv = margin * discounted * mean_spend
        if include_first_purchase:
            clv = clv + margin * mean_spend
        out.update(mean_spend=(dims, mean_spend), clv=(dims, clv))
    return xr.Dataset(out, coords=coords)


def existing_customer_value(result: Result, fit: FittedModel, rfm: Any) -> xr.Dataset:
    """Per-segment means over existing customers, from per-customer predictive draws.

    Parameters
    ----------
    result : Result
        Output of :func:`clvbayes.predict.predict_customers` for ``rfm`` (with the
        draws of ``p_alive`` and ``expected_purchases`` and, with a spend fit, ``clv``).
    fit : FittedModel
        The segmented transaction fit (for the segment column and labels).
    rfm : DataFrame
        The customers predicted, in the same order, with the segment column.

    Returns
    -------
    xarray.Dataset
        Dims ``(chain, draw, segment)``: ``alive_share`` (expected share of the segment's
        customers alive), ``mean_expected_purchases`` and, if present, ``mean_clv``;
        coordinate ``n_customers`` per segment. A segment without customers in ``rfm``
        is NaN.
    """
    _require_segments(fit, "fit")
    codes = fit.segment_codes(rfm)
    draws = result.draws
    if draws.sizes.get("customer_id") != codes.size:
        raise ValueError(
            f"result has {draws.sizes.get('customer_id')} customers, rfm {codes.size}; pass "
            "the rfm the predictions were made for."
        )
    names = {
        "p_alive": "alive_share",
        "expected_purchases": "mean_expected_purchases",
        "clv": "mean_clv",
    }
    missing = [k for k in ("p_alive", "expected_purchases") if k not in draws]
    if missing:
        raise ValueError(
            f"result.draws lacks {missing}; call predict_customers with keep_draws including "
            "'p_alive', 'expected_purchases' (and 'clv')."
        )
    n_levels = len(fit.segment_levels)
    onehot = np.zeros((codes.size, n_levels))
    onehot[np.arange(codes.size), codes] = 1.0
    counts = onehot.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = onehot / counts
    coords = {
        "chain": draws["chain"].to_numpy(),
        "draw": draws["draw"].to_numpy(),
        "segment": np.array(fit.segment_levels, dtype=str),
    }
    out = {}
    for source, name in names.items():
        if source in draws:
            values = draws[source].to_numpy().astype(float)
            out[name] = (("chain", "draw", "segment"), values @ weights)
    ds = xr.Dataset(out, coords=coords)
    return ds.assign_coords(n_customers=("segment", counts.astype(np.int64)))


def segment_parameters(fit: FittedModel, ci_prob: float = 0.9) -> pd.DataFrame:
    """Tidy table of each segment's parameters: ``segment, parameter, mean, sd, low,
    high`` (equal-tailed ``ci_prob`` interval)."""
    _require_segments(fit, "fit")
    params = fit.params()
    lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    records = []
    for name, values in params.items():
        flat = values.reshape(-1, values.shape[-1])
        for j, label in enumerate(fit.segment_levels):
            v = flat[:, j]
            records.append(
                {
                    "segment": label,
                    "parameter": name,
                    "mean": float(v.mean()),
                    "sd": float(v.std(ddof=1)) if v.size > 1 else np.nan,
                    "low": float(np.quantile(v, lo)),
                    "high": float(np.quantile(v, hi)),
                }
            )
    return pd.DataFrame.from_records(records)


def _finite_quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) if values.size else np.nan


def segment_table(draws: xr.Dataset | xr.DataArray, ci_prob: float = 0.9) -> pd.DataFrame:
    """Tidy summary of per-segment posteriors.

    Parameters
    ----------
    draws : Dataset or DataArray
        Variables with dims ``(chain, draw, segment)`` (e.g. :func:`new_customer_value`).
    ci_prob : float
        Mass of the equal-tailed interval.

    Returns
    -------
    DataFrame
        ``quantity, segment, mean, sd, low, median, high``.
    """
    ds = draws.to_dataset(name=draws.name or "value") if isinstance(draws, xr.DataArray) else draws
    lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    records = []
    for name, da in ds.data_vars.items():
        if "segment" not in da.dims:
            continue
        for label in da["segment"].to_numpy():
            v = da.sel(segment=label).to_numpy().ravel()
            records.append(
                {
                    "quantity": name,
                    "segment": str(label),
                    "mean": float(v.mean()),
                    "sd": float(v.std(ddof=1)) if v.size > 1 else np.nan,
                    "low": _finite_quantile(v, lo),
                    "median": _finite_quantile(v, 0.5),
                    "high": _finite_quantile(v, hi),
                }
            )
    return pd.DataFrame.from_records(records)


def contrasts(
    draws: xr.Dataset | xr.DataArray,
    pairs: Iterable[tuple[str, str]] | None = None,
    *,
    ci_prob: float = 0.9,
) -> pd.DataFrame:
    """Differences and ratios between segments, with ``P(A > B)``, as a tidy table.

    Parameters
    ----------
    draws : Dataset or DataArray
        Per-segment posteriors, dims ``(chain, draw, segment)``.
    pairs : iterable of (str, str), optional
        ``(A, B)`` segment pairs; default all pairs in label order.
    ci_prob : float
        Mass of the equal-tailed intervals.

    Returns
    -------
    DataFrame
        ``quantity, segment_a, segment_b, diff_mean, diff_low, diff_high, ratio_median,
        ratio_low, ratio_high, p_a_gt_b``. Differences and ratios are computed draw by
        draw (the segments' posteriors are joint), so their intervals are exact
        posterior intervals of the contrast, not a combination of the marginals.
    """
    ds = draws.to_dataset(name=draws.name or "value") if isinstance(draws, xr.DataArray) else draws
    lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    records = []
    for name, da in ds.data_vars.items():
        if "segment" not in da.dims:
            continue
        labels = [str(v) for v in da["segment"].to_numpy()]
        chosen = list(itertools.combinations(labels, 2)) if pairs is None else list(pairs)
        for a, b in chosen:
            unknown = [s for s in (a, b) if s not in labels]
            if unknown:
                raise ValueError(f"contrasts: unknown segment(s) {unknown}; known: {labels}.")
            va = da.sel(segment=a).to_numpy().ravel()
            vb = da.sel(segment=b).to_numpy().ravel()
            diff = va - vb
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = va / vb
            records.append(
                {
                    "quantity": name,
                    "segment_a": a,
                    "segment_b": b,
                    "diff_mean": float(diff.mean()),
                    "diff_low": float(np.quantile(diff, lo)),
                    "diff_high": float(np.quantile(diff, hi)),
                    "ratio_median": float(np.quantile(ratio, 0.5)),
                    "ratio_low": float(np.quantile(ratio, lo)),
                    "ratio_high": float(np.quantile(ratio, hi)),
                    "p_a_gt_b": float((va > vb).mean()),
                }
            )
    return pd.DataFrame.from_records(records)


def clv_cac(
    clv: xr.DataArray,
    cac: Mapping[str, float],
    *,
    thresholds: Sequence[float] = (1.0, 3.0),
    ci_prob: float = 0.9,
) -> Result:
    """CLV:CAC ratio per segment as a posterior.

    Parameters
    ----------
    clv : DataArray
        CLV draws per segment, dims ``(chain, draw, segment)``: e.g.
        ``new_customer_value(...)["clv"]`` (value of the next customer acquired: what an
        acquisition cost buys).
    cac : mapping of str to float
        Acquisition cost per segment label (positive; every segment of ``clv`` needed).
    thresholds : sequence of float
        Ratios for the ``p_ratio_gt_<t>`` columns (1: pays back; 3: a common target).
    ci_prob : float
        Mass of the equal-tailed interval.

    Returns
    -------
    Result
        ``summary``: ``segment, cac, clv_mean, ratio_mean, ratio_low, ratio_median,
        ratio_high, p_ratio_gt_1, p_ratio_gt_3``; ``draws``: the ratio, dims
        ``(chain, draw, segment)``.
    """
    labels = [str(v) for v in clv["segment"].to_numpy()]
    missing = [s for s in labels if s not in cac]
    if missing:
        raise ValueError(
            f"clv_cac: no acquisition cost for segment(s) {missing}; give all {labels}."
        )
    extra = sorted(set(cac) - set(labels))
    if extra:
        raise ValueError(f"clv_cac: cost given for unknown segment(s) {extra}; known: {labels}.")
    costs = np.array([float(cac[s]) for s in labels])
    if not np.all(np.isfinite(costs) & (costs > 0)):
        raise ValueError(f"clv_cac: acquisition costs must be positive numbers, got {dict(cac)}.")
    ratio = clv / xr.DataArray(costs, dims="segment", coords={"segment": clv["segment"]})
    ratio.name = "clv_cac"
    lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    records = []
    for j, label in enumerate(labels):
        v = ratio.isel(segment=j).to_numpy().ravel()
        row = {
            "segment": label,
            "cac": costs[j],
            "clv_mean": float(clv.isel(segment=j).mean()),
            "ratio_mean": float(v.mean()),
            "ratio_low": float(np.quantile(v, lo)),
            "ratio_median": float(np.quantile(v, 0.5)),
            "ratio_high": float(np.quantile(v, hi)),
        }
        for t in thresholds:
            row[f"p_ratio_gt_{t:g}"] = float((v > t).mean())
        records.append(row)
    return Result(pd.DataFrame.from_records(records), ratio.to_dataset())


def acquisition_segments(
    transactions: pd.DataFrame,
    *,
    customer_col: str,
    date_col: str,
    value_col: str | None = None,
    cohort_freq: str = "M",
    value_groups: int = 3,
) -> pd.DataFrame:
    """Each customer's acquisition cohort and first-purchase value group.

    Parameters
    ----------
    transactions : DataFrame
        One row per transaction. Not modified.
    customer_col, date_col : str
        Customer id and transaction date columns.
    value_col : str, optional
        Transaction value: adds ``first_value`` (the first purchase *day*'s total, as
        :func:`clvbayes.rfm_summary` merges a day's transactions) and ``value_group``.
    cohort_freq : str
        pandas period frequency of the cohort label (``"M"``: ``"1997-01"``; ``"Q"``,
        ``"W"``, ...).
    value_groups : int
        Number of equal-count groups of ``first_value`` (3: terciles labelled ``low,
        mid, high``; else ``q1..qk``), an ordered categorical.

    Returns
    -------
    DataFrame
        ``customer_id`` (named ``customer_col``), ``cohort`` (str) and, with
        ``value_col``, ``first_value`` and ``value_group``; one row per customer, sorted
        by id, to merge into an RFM table.
    """
    for col in (customer_col, date_col, *((value_col,) if value_col else ())):
        if col not in transactions:
            raise ValueError(
                f"acquisition_segments: column {col!r} not found (have "
                f"{list(transactions.columns)})."
            )
    days = pd.to_datetime(transactions[date_col]).dt.normalize()
    frame = pd.DataFrame({"customer": transactions[customer_col].to_numpy(), "day": days})
    if value_col:
        frame["value"] = pd.to_numeric(transactions[value_col]).to_numpy()
    first_day = frame.groupby("customer")["day"].transform("min")
    first = frame[frame["day"] == first_day].groupby("customer", sort=True)
    out = pd.DataFrame({"day": first["day"].first()})
    out["cohort"] = out["day"].dt.to_period(cohort_freq).astype(str)
    if value_col:
        out["first_value"] = first["value"].sum()
        labels = (
            ["low", "mid", "high"]
            if value_groups == 3
            else [f"q{i + 1}" for i in range(value_groups)]
        )
        out["value_group"] = pd.qcut(out["first_value"], value_groups, labels=labels)
    out = out.drop(columns="day").reset_index().rename(columns={"customer": customer_col})
    return out
