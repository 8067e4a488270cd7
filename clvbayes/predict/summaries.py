"""Per-customer summaries of posterior (predictive) draws: moments, intervals, P(> x), ranks.

Every function takes plain arrays of shape ``(draw, customer)`` (chains stacked into
draws) and returns one value per customer, so :func:`clvbayes.predict.predict_customers`
can call them chunk by chunk; :func:`summary_table` does the same from a draws Dataset.

Intervals. ``q05, q50, q95`` are equal-tailed quantiles (``numpy.quantile``'s default
linear interpolation, so a discrete quantity can have a fractional quantile).
``hdi90_low/high`` is the narrowest interval holding ``ceil(0.9 S)`` of the ``S`` draws;
for counts its ends are draws, hence integers.

Ranks. Within each draw customers are ranked by CLV, 1 = most valuable; tied customers
share the average of their positions (so the ranks of a draw always sum to
``n (n + 1) / 2``).

Top shares. ``p_top_<k>pct`` is the share of draws in which the customer is among the
``k n`` most valuable *whatever the order of ties*: in a draw, a customer counts 1 when
at most ``k n`` customers (itself included) have a CLV at least as high, fractionally
``k n - (m - 1)`` when ``m - 1 < k n < m`` of them do (the last position of a
fractional cut, as for a customer without ties), and 0 otherwise. Ties therefore never
create probability: in a draw where more than ``(1 - k) n`` customers have a CLV of
exactly 0 (common: customers who are not alive buy nothing), the customers with a
positive CLV are the top and those at 0 are not, instead of sharing the rest of the
top ``k n`` positions as if drawn by lot (which gave customers with CLV 0 in every draw
``p_top_decile = 0.096``). The probabilities of a draw sum to ``k n`` when no tie
straddles the cut (always, for CLV draws that are continuous above 0) and to less when
one does: the positions that only a lottery among equals could fill stay empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "customer_columns",
    "describe",
    "eti",
    "exceedance",
    "hdi",
    "percent_label",
    "rank_columns",
    "stacked_draws",
    "summary_table",
    "threshold_label",
]

_QUANTILES = (0.05, 0.5, 0.95)


def percent_label(fraction: float) -> str:
    """``0.1`` -> ``"10"``, ``0.025`` -> ``"2.5"`` (for column names)."""
    return f"{100 * fraction:g}"


def threshold_label(threshold: float) -> str:
    """``100.0`` -> ``"100"``, ``0.5`` -> ``"0.5"`` (for column names)."""
    return f"{threshold:g}"


def hdi(samples: np.ndarray, prob: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Narrowest interval holding ``ceil(prob * S)`` of the draws, per customer.

    Parameters
    ----------
    samples : ndarray, shape (draw, customer)
        Draws of one quantity.
    prob : float
        Probability mass of the interval, in ``(0, 1]``.

    Returns
    -------
    low, high : ndarray, shape (customer,)
        Ends of the interval (the lowest one among equally narrow intervals).
    """
    return _hdi_of_sorted(np.sort(samples, axis=0), prob)


def eti(samples: np.ndarray, ci_prob: float = 0.9, axis: int = 0) -> tuple[Any, Any]:
    """Equal-tailed interval: the ``(1 - ci_prob) / 2`` and ``(1 + ci_prob) / 2`` quantiles.

    Parameters
    ----------
    samples : ndarray
        Draws along ``axis``; NaN draws are ignored (``numpy.nanquantile``).
    ci_prob : float
        Probability mass of the interval, in ``(0, 1)``.
    axis : int
        The draws' axis.

    Returns
    -------
    low, high : ndarray or float
        The ends, with ``axis`` reduced.

    Examples
    --------
    >>> eti(np.arange(101.0), 0.5)
    (np.float64(25.0), np.float64(75.0))
    """
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob}")
    tail = (1.0 - ci_prob) / 2.0
    return np.nanquantile(samples, tail, axis=axis), np.nanquantile(samples, 1 - tail, axis=axis)


def _hdi_of_sorted(ordered: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`hdi` of draws already sorted along axis 0."""
    if not 0 < prob <= 1:
        raise ValueError(f"prob must be in (0, 1], got {prob}")
    n = ordered.shape[0]
    k = min(n, int(np.ceil(prob * n)))
    widths = ordered[k - 1 :] - ordered[: n - k + 1]
    start = np.argmin(widths, axis=0)
    columns = np.arange(ordered.shape[1])
    return ordered[start, columns], ordered[start + k - 1, columns]


def _quantile_of_sorted(ordered: np.ndarray, q: float) -> np.ndarray:
    """``np.quantile(x, q, axis=0)`` (method "linear") from ``x`` sorted along axis 0."""
    position = q * (ordered.shape[0] - 1)
    lo = int(np.floor(position))
    hi = min(lo + 1, ordered.shape[0] - 1)
    t = position - lo
    a, b = ordered[lo], ordered[hi]
    # numpy's lerp: exact at both ends and monotone
    return np.where(t >= 0.5, b - (b - a) * (1 - t), a + (b - a) * t)


def describe(
    name: str,
    samples: np.ndarray,
    *,
    ci_prob: float = 0.9,
    quantiles: Sequence[float] = _QUANTILES,
) -> dict[str, np.ndarray]:
    """Mean, sd, quantiles and HDI of ``samples`` (draw, customer) as named columns.

    Returns
    -------
    dict of str to ndarray
        ``<name>_mean``, ``<name>_sd``, ``<name>_q05`` ... and
        ``<name>_hdi90_low`` / ``<name>_hdi90_high`` (for ``ci_prob=0.9``).
    """
    from clvbayes.math.order import column_moments, column_order_statistics

    label = percent_label(ci_prob)
    samples = np.asarray(samples)
    if np.issubdtype(samples.dtype, np.integer) and samples.shape[0] > 0:
        # counts: sorted by counting, compiled (clvbayes.math.order), same definitions
        mean, sd, qs, low, high = column_order_statistics(samples, quantiles, ci_prob)
        out = {f"{name}_mean": mean, f"{name}_sd": sd}
        out.update({f"{name}_q{round(100 * q):02d}": qs[i] for i, q in enumerate(quantiles)})
        out[f"{name}_hdi{label}_low"] = low
        out[f"{name}_hdi{label}_high"] = high
        return out
    # draws summed in order: a customer's numbers do not depend on its chunk's width
    mean, sd = column_moments(samples)
    out = {f"{name}_mean": mean, f"{name}_sd": sd}
    ordered = np.sort(np.asarray(samples, dtype=float), axis=0)  # for quantiles and HDI
    for q in quantiles:
        out[f"{name}_q{round(100 * q):02d}"] = _quantile_of_sorted(ordered, q)
    low, high = _hdi_of_sorted(ordered, ci_prob)
    out[f"{name}_hdi{label}_low"] = low
    out[f"{name}_hdi{label}_high"] = high
    return out


def exceedance(
    name: str, samples: np.ndarray, thresholds: Iterable[float]
) -> dict[str, np.ndarray]:
    """``p_<name>_gt_<t>``: share of draws strictly above each threshold, per customer."""
    return {f"p_{name}_gt_{threshold_label(t)}": (samples > t).mean(axis=0) for t in thresholds}


_RANK_GROUP = 8  # draws summed per partial (fixed, so results never depend on blocking)


def rank_columns(
    clv: Any, top: Iterable[float] = (0.1,), *, block_draws: int | None = None, n_jobs: int = 1
) -> dict[str, np.ndarray]:
    """Expected CLV rank and probability of being in the top ``k`` share, per customer.

    Parameters
    ----------
    clv : ndarray or DrawMatrix, shape (draw, customer)
        CLV draws of *all* customers (ranks are relative to everyone); anything that
        returns rows for a slice (e.g. :class:`clvbayes.predict.spill.DrawMatrix`).
    top : iterable of float
        Shares in ``(0, 1]``, e.g. ``0.1`` for the top 10 %.
    block_draws : int, optional
        Draws read per pass (default: about 16 million values, and at least 8 per thread:
        a pass ranks its groups of 8 draws on ``n_jobs`` threads at once).
    n_jobs : int
        Threads ranking draws in parallel (sorting releases the GIL).

    Returns
    -------
    dict of str to ndarray
        ``expected_rank`` (1 = most valuable) and ``p_top_<k>pct`` for each share. Ties
        share the mean of their positions; a tie counts as in the top ``k`` only as far
        as all of its customers are (see the module docstring), so customers with equal
        draws get equal answers and ties create no probability. Identical for every ``block_draws`` and
        ``n_jobs``: draws are summed in fixed groups of 8, and the groups in order.
    """
    top = tuple(top)
    for k in top:
        if not 0 < k <= 1:
            raise ValueError(f"top shares must be in (0, 1], got {k}")
    n_draws, n = clv.shape
    if block_draws is None:  # (at 10M customers 8 draws were 2**24 values: one thread)
        block_draws = max(_RANK_GROUP * max(1, int(n_jobs)), 2**24 // max(n, 1))
    block_draws = max(_RANK_GROUP, int(block_draws) // _RANK_GROUP * _RANK_GROUP)
    from clvbayes.math.order import add_draw_ranks

    cuts = np.array([k * n for k in top], dtype=float)

    def partial(start: int) -> np.ndarray:
        """Sums over draws ``start .. start+7``: column 0 rank, column 1+j top share j."""
        sums = np.zeros((n, 1 + len(top)))
        for row in np.asarray(clv[start : start + _RANK_GROUP]):
            add_draw_ranks(row, cuts, sums)  # a radix sort per draw, compiled
        return sums

    total = np.zeros((n, 1 + len(top)))
    groups = range(0, n_draws, _RANK_GROUP)
    with ThreadPoolExecutor(max(1, int(n_jobs))) as pool:
        for lo in range(0, len(groups), block_draws // _RANK_GROUP):
            for sums in pool.map(partial, groups[lo : lo + block_draws // _RANK_GROUP]):
                total += sums
    out = {"expected_rank": total[:, 0] / n_draws}
    out.update(
        {f"p_top_{percent_label(k)}pct": total[:, 1 + j] / n_draws for j, k in enumerate(top)}
    )
    return out


def customer_columns(
    samples: Mapping[str, np.ndarray],
    *,
    thresholds: Iterable[float] = (),
    ci_prob: float = 0.9,
    extra: Mapping[str, np.ndarray] | None = None,
    means: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Every per-customer column that needs only that customer's draws.

    Parameters
    ----------
    samples : mapping of str to ndarray, each of shape (draw, customer)
        Any of ``p_alive``, ``expected_purchases``, ``purchases``, ``clv``; any other
        variable (e.g. an interval's ``purchases_0_52`` or ``clv_0_52``) is described
        like ``purchases`` and ``clv``, after them, in the mapping's order.
    thresholds : iterable of float
        CLV thresholds for ``p_clv_gt_<t>``.
    ci_prob : float
        Mass of the HDI columns.
    extra : mapping, optional
        Columns placed as they are right after the CLV description (e.g.
        ``clv_conditional_mean``).
    means : mapping, optional
        ``p_alive`` or ``expected_purchases`` means already computed (their draws are
        then not in ``samples``).

    Returns
    -------
    dict of str to ndarray
        Columns in the table's order (without ``customer_id`` and the rank columns).
    """
    from clvbayes.math.order import column_moments

    columns: dict[str, np.ndarray] = {}
    for name in ("p_alive", "expected_purchases"):
        if name in samples:
            columns[name] = column_moments(samples[name])[0]
        elif means and name in means:
            columns[name] = means[name]
    if "purchases" in samples:
        columns.update(describe("purchases", samples["purchases"], ci_prob=ci_prob))
    if "clv" in samples:
        columns.update(describe("clv", samples["clv"], ci_prob=ci_prob))
        columns.update(extra or {})
        columns.update(exceedance("clv", samples["clv"], thresholds))
    for name, values in samples.items():
        if name not in _CUSTOMER_VARIABLES:
            columns.update(describe(name, values, ci_prob=ci_prob))
    return columns


_CUSTOMER_VARIABLES = ("p_alive", "expected_purchases", "purchases", "clv")


def stacked_draws(draws: xr.Dataset, name: str) -> np.ndarray:
    """``draws[name]`` as a ``(chain*draw, customer)`` array.

    Parameters
    ----------
    draws : xarray.Dataset
        Per-customer draws with a ``customer_id`` dim (e.g. ``predict_customers(...).draws``).
    name : str
        The variable.

    Returns
    -------
    ndarray, shape (sample, customer)
        The other dims (``chain, draw``) stacked in their order, customers last.
    """
    da = draws[name]
    sample_dims = [d for d in da.dims if d != "customer_id"]
    n = da.sizes["customer_id"]
    return da.transpose(*sample_dims, "customer_id").to_numpy().reshape(-1, n)


def summary_table(
    draws: xr.Dataset,
    *,
    thresholds: Iterable[float] = (),
    top: Iterable[float] = (0.1,),
    ci_prob: float = 0.9,
) -> pd.DataFrame:
    """The tidy per-customer table from a Dataset of draws.

    Parameters
    ----------
    draws : xarray.Dataset
        Variables with dims ``(chain, draw, customer_id)`` among ``p_alive``,
        ``expected_purchases``, ``purchases`` and ``clv`` (e.g.
        ``predict_customers(...).draws``).
    thresholds : iterable of float
        CLV thresholds for ``p_clv_gt_<t>``.
    top : iterable of float
        Shares for ``p_top_<k>pct``.
    ci_prob : float
        Mass of the HDI columns.

    Returns
    -------
    DataFrame
        One row per customer; the columns of
        :func:`clvbayes.predict.predict_customers` except ``clv_conditional_mean``.
    """
    names = [n for n in _CUSTOMER_VARIABLES if n in draws]
    names += [n for n in draws.data_vars if n not in names and "customer_id" in draws[n].dims]
    samples = {n: stacked_draws(draws, n) for n in names}
    columns = {"customer_id": draws["customer_id"].to_numpy()}
    columns.update(customer_columns(samples, thresholds=thresholds, ci_prob=ci_prob))
    if "clv" in samples:
        columns.update(rank_columns(samples["clv"], top))
    return pd.DataFrame(columns)
