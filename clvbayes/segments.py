"""Segment-level answers with uncertainty: value of a new customer, of the existing ones,
contrasts between segments, CLV:CAC.

Every quantity is a posterior: an ``xarray`` array with dims ``(chain, draw, segment)``
computed draw by draw from a segmented fit (``BGNBD(segments=...)``; see
:mod:`clvbayes.models.hierarchy`), then summarised in tidy tables.

* :func:`new_customer_value`: expected repeat purchases of a customer acquired today in
  each segment (or with each covariate profile) over a horizon (FHL 2005, eq. 9, :func:`clvbayes.math.bgnbd.
  expected_purchases_new`), the segment's mean spend per transaction ``p v / (q - 1)``
  (:func:`clvbayes.math.gamma_gamma.expected_spend_new`) and their product, the CLV of a
  new customer (discounted like :func:`clvbayes.predict.predict_customers`).
* :func:`existing_customer_value`: per segment, the mean over its customers of the
  predicted CLV / purchases and the share of them alive, from the draws of
  :func:`~clvbayes.predict.predict_customers` (each customer uses its segment's
  parameters).
* :func:`segment_table`, :func:`contrasts`: tidy summaries and pairwise differences,
  ratios and ``P(A > B)``.
* :func:`segment_means`, :func:`segment_summary`, :func:`segment_contrasts`: the same
  from per-customer draws (e.g. of :func:`~clvbayes.predict.predict_customers`) grouped
  by any segment labels, the whole customer base first (:data:`ALL`).
* :func:`clv_cac`: CLV divided by the acquisition cost of each segment, with
  ``P(ratio > 1)`` (pays back) and ``P(ratio > 3)`` (a common target): of a new customer
  (per-segment draws) or of the existing ones (per-customer draws).
* :func:`acquisition_segments`: cohort (month of first purchase) and first-purchase
  value group of each customer, from a transaction log.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvbayes.math import gamma_gamma
from clvbayes.math.clv import continuous_rate, discounted_expectation
from clvbayes.math.draws import draw_index
from clvbayes.models.fitted import FittedModel, check_fitted, design_of
from clvbayes.predict.result import Result, customer_draws
from clvbayes.predict.summaries import eti, stacked_draws

__all__ = [
    "ALL",
    "acquisition_segments",
    "check_acquisition_costs",
    "clv_cac",
    "contrasts",
    "existing_customer_value",
    "new_customer_value",
    "segment_contrasts",
    "segment_indicator",
    "segment_means",
    "segment_parameters",
    "segment_summary",
    "segment_table",
]

ALL = "all customers"
"""Label of the whole customer base in the tables of per-customer draws grouped by segment."""


def _require_segments(fit: FittedModel, argument: str) -> None:
    if not isinstance(fit, FittedModel):
        raise TypeError(f"{argument} must be a FittedModel, got {type(fit).__name__}.")
    if fit.segment_column is None:
        raise ValueError(
            f"{argument} was fitted without segments; fit e.g. "
            f"{fit.kind}(segments='channel') to get segment-level answers."
        )


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
    index = draw_index(next(iter(flat.values())).shape[0], n)
    return {k: v[index].reshape(*shape, len(levels)) for k, v in flat.items()}


def _coords(fit: FittedModel) -> dict[str, np.ndarray]:
    post = fit.posterior
    return {
        "chain": post["chain"].to_numpy(),
        "draw": post["draw"].to_numpy(),
        "segment": np.array(fit.segment_levels, dtype=str),
    }


def new_customer_value(
    fit: FittedModel,
    spend_fit: FittedModel | None = None,
    *,
    horizon: float,
    covariates: Any = None,
    time_unit: str | float = "week",
    annual_discount: float = 0.0,
    margin: float = 1.0,
    include_first_purchase: bool = False,
    nodes: int = 16,
) -> xr.Dataset:
    """Posterior value of a customer newly acquired in each segment, or with each
    covariate profile.

    Parameters
    ----------
    fit : FittedModel
        A transaction model (BG/NBD, MBG/NBD or Pareto/NBD): segmented (one value per
        segment), or fitted with covariates (one value per row of ``covariates``).
    spend_fit : FittedModel, optional
        A Gamma-Gamma fit: segmented by the same column, or unsegmented (one spend
        distribution for all segments); with covariates of its own, they are read from
        ``covariates`` too. Without it only purchases are returned.
    horizon : float
        Window ``(0, horizon]`` after the first purchase, in the model's time unit.
    covariates : DataFrame or mapping, optional
        Covariate profiles of new customers, one row each: every covariate column of
        ``fit`` and ``spend_fit`` (and the segment column of a segmented fit), e.g.
        ``{"gender": [0, 1], "channel": [1, 1]}``. Required when a fit has covariates.
    time_unit : str or float
        The model's time unit, for discounting.
    annual_discount : float
        Annual effective discount rate (0 = none).
    margin : float
        Profit margin applied to spend.
    include_first_purchase : bool
        Add the (undiscounted) margin on the first purchase, valued at the mean spend.
        The models describe *repeat* purchases: by default the CLV is that of the
        repeat purchases only, like :func:`~clvbayes.predict.predict_customers`.
    nodes : int
        Gauss-Legendre nodes of the discounting integral.

    Returns
    -------
    xarray.Dataset
        Dims ``(chain, draw, segment)``, or ``(chain, draw, profile)`` with
        ``covariates`` (the profile's columns as coordinates): ``expected_purchases``
        (undiscounted repeat purchases of a new customer, e.g. FHL 2005 eq. 9 for the
        BG/NBD) and, with ``spend_fit``, ``mean_spend`` (``p v / (q - 1)``; infinite in
        draws with ``q <= 1``) and ``clv`` (``margin x E[discounted purchases] x mean
        spend`` [+ first purchase]).

    Examples
    --------
    >>> new_customer_value(bg, gg, horizon=52, covariates={"channel": [0, 1]})
    ...     # doctest: +SKIP
    """
    family = check_fitted(fit, "fit")
    if not np.isfinite(horizon) or horizon < 0:
        raise ValueError(f"horizon must be finite and >= 0, got {horizon!r}.")
    needed = sorted({*design_of(fit).names, *design_of(spend_fit).names})
    if covariates is None and needed:
        raise ValueError(
            f"the fits have covariates {needed}: pass covariates= with one row per "
            f"profile, e.g. {{{needed[0]!r}: [0, 1]}}."
        )
    if covariates is None:
        _require_segments(fit, "fit")
        params = family.values(fit.params())
        coords, dim = _coords(fit), "segment"
        shape = params[0].shape[:2]
        spend = (
            None
            if spend_fit is None
            else _spend_by_segment(spend_fit, fit.segment_levels, fit.segment_column, shape)
        )
    else:
        profiles = pd.DataFrame(covariates).reset_index(drop=True)
        for f in (fit, spend_fit):
            column = None if f is None else f.segment_column
            if column is not None and column not in profiles:
                levels = list(f.segment_levels)
                raise ValueError(
                    f"covariates: the {f.kind} fit is segmented by {column!r}; add that "
                    f"column, each profile's segment (one of {levels}), e.g. "
                    f"covariates={{..., {column!r}: [{levels[0]!r}]}}."
                )
        post = fit.posterior
        shape = (post.sizes["chain"], post.sizes["draw"])
        flat = fit.customer_params(profiles)
        params = tuple(_by_profile(flat[k], shape, len(profiles)) for k in family.params)
        dim = "profile"
        coords = {
            "chain": post["chain"].to_numpy(),
            "draw": post["draw"].to_numpy(),
            "profile": np.arange(len(profiles)),
            **{c: ("profile", profiles[c].to_numpy()) for c in profiles.columns},
        }
        spend = None if spend_fit is None else _spend_by_profile(spend_fit, profiles, shape)

    def expected_new(t: Any) -> np.ndarray:
        return family.expected_purchases_new(*params, t)

    dims = ("chain", "draw", dim)
    out = {"expected_purchases": (dims, expected_new(horizon))}
    if spend is not None:
        with np.errstate(divide="ignore"):
            mean_spend = np.where(
                spend["q"] > 1,
                gamma_gamma.expected_spend_new(spend["p"], spend["q"], spend["v"]),
                np.inf,
            )
        delta = float(continuous_rate(annual_discount, time_unit))
        discounted = discounted_expectation(expected_new, horizon, delta, nodes=nodes)
        clv = margin * discounted * mean_spend
        if include_first_purchase:
            clv = clv + margin * mean_spend
        out.update(mean_spend=(dims, mean_spend), clv=(dims, clv))
    return xr.Dataset(out, coords=coords)


def _by_profile(values: np.ndarray, shape: tuple[int, int], n: int) -> np.ndarray:
    """Flat draws ``(chain * draw, n or 1)`` as ``(chain, draw, n)``."""
    return np.broadcast_to(values, (values.shape[0], n)).reshape(*shape, n)


def _spend_by_profile(
    spend_fit: FittedModel, profiles: pd.DataFrame, shape: tuple[int, int]
) -> dict[str, np.ndarray]:
    """Gamma-Gamma draws ``(chain, draw, profile)`` of each profile (its segment's and
    covariates' parameters), paired with the transaction draws."""
    check_fitted(spend_fit, "spend_fit", role="spend")
    flat = spend_fit.customer_params(profiles)
    index = draw_index(next(iter(flat.values())).shape[0], shape[0] * shape[1])
    return {k: _by_profile(v[index], shape, len(profiles)) for k, v in flat.items()}


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
    levels = np.array(fit.segment_levels, dtype=str)
    present = [k for k in names if k in draws]
    means = segment_means(draws, levels[codes], variables=present).drop_sel(segment=ALL)
    renamed = {k: names[k] for k in present}
    ds = means.drop_vars("n_customers").reindex(segment=levels).rename(renamed)
    counts = np.bincount(codes, minlength=levels.size).astype(np.int64)
    return ds.assign_coords(n_customers=("segment", counts))


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


def _by_segment(draws: xr.Dataset | xr.DataArray) -> Iterator[tuple[Hashable, xr.DataArray]]:
    """``(name, variable)`` for each variable of ``draws`` with a ``segment`` dim."""
    ds = draws.to_dataset(name=draws.name or "value") if isinstance(draws, xr.DataArray) else draws
    for name, da in ds.data_vars.items():
        if "segment" in da.dims:
            yield name, da


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
    lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    records = []
    for name, da in _by_segment(draws):
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
    lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    records = []
    for name, da in _by_segment(draws):
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


def segment_indicator(segments: Any, n_customers: int) -> tuple[list[str], np.ndarray]:
    """Group labels and each customer's membership: the whole base first, then each segment.

    Parameters
    ----------
    segments : array_like or None
        Segment label of each customer (compared as text); None: the whole base only.
    n_customers : int
        Number of customers.

    Returns
    -------
    labels : list of str
        :data:`ALL`, then the segments in sorted order.
    onehot : ndarray, shape (customer, group)
        1.0 where the customer is in the group (everyone is in :data:`ALL`).

    Examples
    --------
    >>> segment_indicator(["b", "a", "b"], 3)[0]
    ['all customers', 'a', 'b']
    """
    if segments is None:
        return [ALL], np.ones((n_customers, 1))
    labels = pd.Series(np.asarray(segments))
    if labels.size != n_customers:
        raise ValueError(f"segments has {labels.size} values for {n_customers} customers.")
    if labels.isna().any():
        raise ValueError(
            f"segments: {int(labels.isna().sum())} of {labels.size} customers have no segment "
            "label; fill them in (e.g. 'unknown')."
        )
    codes, levels = pd.factorize(labels.astype(str), sort=True)
    onehot = np.zeros((n_customers, levels.size + 1))
    onehot[:, 0] = 1.0
    onehot[np.arange(n_customers), codes + 1] = 1.0
    return [ALL, *levels.tolist()], onehot


def segment_means(
    draws: Result | xr.Dataset | xr.DataArray,
    segments: Any = None,
    *,
    variables: Sequence[str] | None = None,
) -> xr.Dataset:
    """Per posterior draw, the mean of per-customer draws over each segment's customers.

    Parameters
    ----------
    draws : Result, Dataset or DataArray
        Per-customer draws, dims ``(chain, draw, customer_id)``: e.g. the result of
        :func:`~clvbayes.predict.predict_customers` (``keep_draws`` must include the
        variables) or its ``draws``.
    segments : array_like, optional
        Segment label of each customer, in the order of ``customer_id``; without it the
        whole base only.
    variables : sequence of str, optional
        Variables to average (default: all).

    Returns
    -------
    xarray.Dataset
        Each variable with dims ``(chain, draw, segment)``, segment :data:`ALL` first then
        the segments in sorted order; coordinate ``n_customers`` per segment.

    Examples
    --------
    >>> res = predict_customers(bg, rfm, horizon=52, spend_fit=gg, seed=1)  # doctest: +SKIP
    >>> segment_means(res, rfm["channel"], variables=["clv"])["clv"].mean(("chain", "draw"))
    ...     # doctest: +SKIP
    """
    ds = customer_draws(draws, variables)
    labels, onehot = segment_indicator(segments, ds.sizes["customer_id"])
    counts = onehot.sum(axis=0)
    out = {}
    for name, da in ds.data_vars.items():
        values = np.asarray(stacked_draws(ds, name), dtype=float)  # (sample, customer)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (values @ onehot) / counts
        dims = [d for d in da.dims if d != "customer_id"]
        out[name] = ((*dims, "segment"), means.reshape(*(da.sizes[d] for d in dims), -1))
    coords = {d: ds[d].to_numpy() for d in ds.dims if d != "customer_id" and d in ds.coords}
    coords["segment"] = np.array(labels, dtype=str)
    result = xr.Dataset(out, coords=coords)
    return result.assign_coords(n_customers=("segment", counts.astype(np.int64)))


def segment_summary(
    draws: Result | xr.Dataset | xr.DataArray,
    segments: Any = None,
    *,
    variables: Sequence[str] | None = None,
    ci_prob: float = 0.9,
) -> Result:
    """Per segment, the posterior mean and interval of the segment mean of each quantity.

    The report's segment comparison: :func:`segment_means` summarised in one wide table.

    Parameters
    ----------
    draws : Result, Dataset or DataArray
        Per-customer draws (see :func:`segment_means`).
    segments : array_like, optional
        Segment label of each customer (without: the whole base only).
    variables : sequence of str, optional
        Quantities, in the order of the columns (default: all variables of ``draws``).
    ci_prob : float
        Mass of the equal-tailed intervals.

    Returns
    -------
    Result
        ``summary``: ``segment, n_customers`` and ``<name>_mean, <name>_low,
        <name>_high`` per quantity, the whole base (:data:`ALL`) first; ``draws``: the
        segment means (:func:`segment_means`).

    Examples
    --------
    >>> res = predict_customers(bg, rfm, horizon=52, spend_fit=gg, seed=1)  # doctest: +SKIP
    >>> segment_summary(res, rfm["channel"], variables=["clv", "p_alive"]).summary
    ...     # doctest: +SKIP
    """
    means = segment_means(draws, segments, variables=variables)
    table: dict[str, Any] = {
        "segment": [str(v) for v in means["segment"].to_numpy()],
        "n_customers": means["n_customers"].to_numpy(),
    }
    for name, da in means.data_vars.items():
        values = da.to_numpy().reshape(-1, da.sizes["segment"])  # (sample, segment)
        low, high = eti(values, ci_prob)
        table[f"{name}_mean"] = values.mean(axis=0)
        table[f"{name}_low"] = low
        table[f"{name}_high"] = high
    return Result(pd.DataFrame(table), means)


def segment_contrasts(
    draws: Result | xr.Dataset | xr.DataArray,
    segments: Any,
    *,
    variable: str = "clv",
    pairs: Iterable[tuple[str, str]] | None = None,
    max_segments: int | None = 8,
    ci_prob: float = 0.9,
) -> Result:
    """Pairwise contrasts of segment means of per-customer draws: differences, ratios and
    ``P(A > B)``.

    The segments' means per draw (:func:`segment_means`) contrasted by :func:`contrasts`.

    Parameters
    ----------
    draws : Result, Dataset or DataArray
        Per-customer draws (see :func:`segment_means`).
    segments : array_like
        Segment label of each customer.
    variable : str
        The quantity compared (e.g. ``"clv"``, ``"p_alive"``).
    pairs : iterable of (str, str), optional
        ``(A, B)`` segment pairs; default all pairs, in label order, of the
        ``max_segments`` largest segments.
    max_segments : int, optional
        Without ``pairs``: contrast only the largest segments (pairs grow quadratically);
        None for all.
    ci_prob : float
        Mass of the equal-tailed intervals.

    Returns
    -------
    Result
        ``summary``: the columns of :func:`contrasts` (``quantity`` is ``variable``);
        ``draws``: the means of the segments compared, dims ``(chain, draw, segment)``.

    Examples
    --------
    >>> res = predict_customers(bg, rfm, horizon=52, spend_fit=gg, seed=1)  # doctest: +SKIP
    >>> segment_contrasts(res, rfm["channel"]).summary[["segment_a", "segment_b", "p_a_gt_b"]]
    ...     # doctest: +SKIP
    """
    if segments is None:
        raise ValueError("segment_contrasts needs segments: one label per customer.")
    means = segment_means(draws, segments, variables=[variable]).drop_sel(segment=ALL)
    if pairs is None and max_segments is not None:
        largest = np.argsort(-means["n_customers"].to_numpy(), kind="stable")[:max_segments]
        means = means.isel(segment=np.sort(largest))
    return Result(contrasts(means, pairs, ci_prob=ci_prob), means)


def check_acquisition_costs(cac: Any, argument: str = "cac") -> None:
    """Refuse acquisition costs that are not finite numbers above 0 (one, or a mapping of
    segment to cost; a bool is no cost).

    Raises
    ------
    ValueError
        Naming ``argument`` (e.g. ``"clv_cac"``, ``"--cac"``) and the first bad cost.
    """
    costs = cac.values() if isinstance(cac, Mapping) else [cac]
    for cost in costs:
        try:
            number = float(cost)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(cost, bool) or not (math.isfinite(number) and number > 0):
            raise ValueError(
                f"{argument}: acquisition costs must be positive numbers, got {cost!r}; give "
                "one cost for all customers or one per segment."
            )


def clv_cac(
    clv: Result | xr.Dataset | xr.DataArray,
    cac: float | Mapping[str, float],
    *,
    segments: Any = None,
    thresholds: Sequence[float] = (1.0, 3.0),
    ci_prob: float = 0.9,
) -> Result:
    """CLV:CAC ratio per segment as a posterior.

    Two uses. With per-segment CLV draws (dim ``segment``), e.g.
    ``new_customer_value(...)["clv"]``, the value of the next customer acquired in each
    segment against what acquiring one costs. With per-customer CLV draws (dim
    ``customer_id``), e.g. :func:`~clvbayes.predict.predict_customers`, the mean CLV of
    the existing customers of each segment (:func:`segment_means`) against the cost.

    Parameters
    ----------
    clv : Result, Dataset or DataArray
        CLV draws, dims ``(chain, draw, segment)`` or ``(chain, draw, customer_id)`` (a
        Result or Dataset: its ``clv`` variable).
    cac : float or mapping of str to float
        Acquisition cost: one positive number for every segment, or one per segment
        (each segment needs one; with per-customer draws, costs of segments not in the
        data are ignored).
    segments : array_like, optional
        With per-customer draws: each customer's segment label. With one cost the whole
        base (:data:`ALL`) comes first.
    thresholds : sequence of float
        Ratios for the ``p_ratio_gt_<t>`` columns (1: pays back; 3: a common target).
    ci_prob : float
        Mass of the equal-tailed interval.

    Returns
    -------
    Result
        ``summary``: ``segment, cac, clv_mean, ratio_mean, ratio_low, ratio_median,
        ratio_high, p_ratio_gt_1, p_ratio_gt_3`` (with per-customer draws
        ``n_customers`` after ``segment``); ``draws``: the ratio, dims
        ``(chain, draw, segment)``.

    Examples
    --------
    >>> new = new_customer_value(bg, gg, horizon=52, time_unit="week")  # doctest: +SKIP
    >>> clv_cac(new["clv"], {"web": 20.0, "store": 35.0}).summary  # doctest: +SKIP
    >>> res = predict_customers(bg, rfm, horizon=52, spend_fit=gg, seed=1)  # doctest: +SKIP
    >>> clv_cac(res, 20.0, segments=rfm["channel"]).summary  # doctest: +SKIP
    """
    check_acquisition_costs(cac, "clv_cac")
    given = dict(cac) if isinstance(cac, Mapping) else {ALL: cac}
    if isinstance(clv, Result):
        clv = clv.draws
    if isinstance(clv, xr.Dataset):
        if "clv" not in clv:
            raise ValueError(
                f"clv_cac: the draws have no 'clv' variable (have {list(clv.data_vars)}); "
                "predict with a spend_fit and keep_draws including 'clv'."
            )
        clv = clv["clv"]
    per_customer = "customer_id" in clv.dims
    if per_customer:
        clv = next(iter(segment_means(clv, segments).data_vars.values()))
        if isinstance(cac, Mapping) and segments is not None:
            clv = clv.drop_sel(segment=ALL)  # a cost per segment: the segments only
    labels = [str(v) for v in clv["segment"].to_numpy()]
    if not isinstance(cac, Mapping):
        given = dict.fromkeys(labels, float(cac))
    elif per_customer:
        given = {k: v for k, v in given.items() if k in labels}
    missing = [s for s in labels if s not in given]
    if missing:
        raise ValueError(
            f"clv_cac: no acquisition cost for segment(s) {missing} (costs given for "
            f"{sorted(given)}; missing for segments {missing}). Give one cost per segment "
            "(e.g. a CSV with columns segment,cac) or one number for all customers."
        )
    extra = sorted(set(given) - set(labels))
    if extra:
        raise ValueError(f"clv_cac: cost given for unknown segment(s) {extra}; known: {labels}.")
    costs = np.array([float(given[s]) for s in labels])
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
    table = pd.DataFrame.from_records(records)
    if per_customer:
        table.insert(1, "n_customers", clv["n_customers"].to_numpy().astype(int))
    return Result(table, ratio.to_dataset())


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
