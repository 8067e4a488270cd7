"""The questions a retail CRM team asks of CLV, as pure functions of posterior draws.

Each function takes fitted models, per-customer draws ``(sample, customer)`` or the
per-customer table, and returns tidy frames; none draws or writes anything.

- :func:`retention_curve` -- expected share of today's customers still alive over the
  horizon, with bands (overall and per segment).
- :func:`average_order_value` -- expected spend per transaction (Gamma-Gamma), per
  customer and per segment.
- :func:`value_tiers` -- high / medium / low tiers by expected CLV, with each customer's
  probability of really being in their tier.
- :func:`at_risk` -- customers with high past value and a low P(alive).
- :func:`segment_summary` / :func:`segment_contrasts` -- segment means per posterior
  draw, and P(segment A > segment B).
- :func:`clv_cac` -- CLV : acquisition cost, and P(ratio > 1), P(ratio > 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.data.validate import check_rfm
from clvbayes.math import bgnbd, gamma_gamma

__all__ = [
    "ALL",
    "TIERS",
    "at_risk",
    "average_order_value",
    "clv_cac",
    "group_means",
    "retention_curve",
    "segment_contrasts",
    "segment_summary",
    "value_tiers",
]

ALL = "all customers"
"""Label of the whole customer base in per-segment tables."""

TIERS = ("high", "medium", "low")


def _thin(total: int, wanted: int | None) -> np.ndarray:
    if wanted is None or wanted >= total:
        return np.arange(total)
    return np.linspace(0, total - 1, wanted).round().astype(int)


def _n_draws(fit: Any) -> int:
    """Number of posterior draws (chains x draws) of a fitted model."""
    chains, draws = next(iter(fit.params().values())).shape[:2]
    return int(chains * draws)


def _columns(values: np.ndarray, part: slice) -> np.ndarray:
    """The customers ``part`` of per-customer draws (a shared ``(draw, 1)`` column as is)."""
    return values if values.shape[1] == 1 else values[:, part]


def _groups(segments: Any, n: int) -> tuple[list[str], np.ndarray]:
    """Group labels (the whole base first) and a ``(customer, group)`` 0/1 matrix."""
    if segments is None:
        return [ALL], np.ones((n, 1))
    codes, labels = pd.factorize(pd.Series(np.asarray(segments)).astype(str), sort=True)
    if codes.size != n:
        raise ValueError(f"segments has {codes.size} values for {n} customers.")
    onehot = np.zeros((n, labels.size + 1))
    onehot[:, 0] = 1.0
    onehot[np.arange(n), codes + 1] = 1.0
    return [ALL, *labels.tolist()], onehot


def group_means(samples: np.ndarray, segments: Any = None) -> tuple[list[str], np.ndarray]:
    """Mean over each segment's customers, per draw.

    Parameters
    ----------
    samples : ndarray, shape (draw, customer)
        Per-customer draws (NaN-free).
    segments : array_like, optional
        Segment label of each customer.

    Returns
    -------
    labels : list of str
        :data:`ALL` first, then the segments in sorted order.
    means : ndarray, shape (draw, group)
    """
    values = np.asarray(samples, dtype=float)
    labels, onehot = _groups(segments, values.shape[1])
    return labels, (values @ onehot) / onehot.sum(axis=0)


def _interval(values: np.ndarray, interval: float, axis: int = 0) -> tuple[Any, Any]:
    tail = (1.0 - interval) / 2.0
    return np.nanquantile(values, tail, axis=axis), np.nanquantile(values, 1 - tail, axis=axis)


def retention_curve(
    bgnbd_fit: Any,
    rfm: Any,
    *,
    times: Sequence[float],
    segments: Any = None,
    n_draws: int | None = 200,
    interval: float = 0.9,
    seed: int | None = None,
    chunk_customers: int = 2048,
) -> pd.DataFrame:
    """Expected share of the customers still alive ``t`` units after the calibration end.

    For a customer alive at ``T`` with purchase rate ``λ`` and dropout probability ``p``,
    purchases are Poisson and each is followed by dropout with probability ``p``, so
    dropouts arrive at rate ``λ p`` and ``P(alive at T+t) = exp(-λ p t)``. Averaging over
    ``λ ~ Gamma(r+x, α+T)`` (the customer's conditional posterior,
    :func:`clvbayes.math.bgnbd.customer_posterior`) gives ``((α+T)/(α+T+p t))^(r+x)``;
    ``p ~ Beta(a, b+x)`` is drawn once per draw and customer. Times P(alive at T) and
    averaged over customers, this is the share alive per posterior draw.

    Parameters
    ----------
    bgnbd_fit : FittedModel
        A fitted BG/NBD; for a segmented fit each customer uses their segment's
        parameters (``rfm`` then has the segment column).
    rfm : DataFrame
        ``frequency, recency, T`` per customer.
    times : sequence of float
        Times after the calibration end (model units); 0 gives today's share alive.
    segments : array_like, optional
        Segment of each customer: adds one curve per segment.
    n_draws : int, optional
        Posterior draws used (thinned evenly).
    interval : float
        Mass of the band.
    seed : int, optional
        Seed of the dropout-probability draws.
    chunk_customers : int
        Customers handled at once (memory ``n_draws x chunk x len(times)`` floats).

    Returns
    -------
    DataFrame
        ``segment, time, share_alive_mean, share_alive_low, share_alive_high``.
    """
    values = check_rfm(rfm, ("frequency", "recency", "T"))
    x, t_x, T = values["frequency"], values["recency"], values["T"]
    times = np.asarray(times, dtype=float)
    take = _thin(_n_draws(bgnbd_fit), n_draws)
    params = bgnbd_fit.customer_params(rfm, take)  # (draw, customer or 1)
    labels, onehot = _groups(segments, x.size)
    rng = np.random.default_rng(seed)
    sums = np.zeros((take.size, times.size, onehot.shape[1]))
    for start in range(0, x.size, chunk_customers):
        part = slice(start, start + chunk_customers)
        r, alpha, a, b = (_columns(params[k], part) for k in ("r", "alpha", "a", "b"))
        state = bgnbd.customer_posterior(r, alpha, a, b, x[part], t_x[part], T[part])
        p = rng.beta(state.alive_a, state.alive_b)  # (draw, customer)
        base = state.alive_rate[None]  # (1, draw, customer)
        surv = (base / (base + p[None] * times[:, None, None])) ** state.alive_shape[None]
        alive = state.p_alive[None] * surv  # (time, draw, customer)
        sums += np.einsum("tdc,cg->dtg", alive, onehot[part])
    shares = sums / onehot.sum(axis=0)  # (draw, time, group)
    low, high = _interval(shares, interval)
    rows = []
    for g, label in enumerate(labels):
        for i, t in enumerate(times):
            rows.append((label, t, shares[:, i, g].mean(), low[i, g], high[i, g]))
    columns = ["segment", "time", "share_alive_mean", "share_alive_low", "share_alive_high"]
    return pd.DataFrame(rows, columns=columns)


def average_order_value(
    spend_fit: Any,
    rfm: Any,
    *,
    segments: Any = None,
    n_draws: int | None = 1000,
    interval: float = 0.9,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Expected spend per transaction, per customer and per segment (Gamma-Gamma).

    Per draw, :func:`clvbayes.math.gamma_gamma.expected_spend` (Fader & Hardie 2013,
    eq. 5): a weighted mean of the population mean and the customer's own average
    repeat spend; customers without a repeat purchase get the population mean. Draws
    with ``q <= 1`` (no finite mean) are left out.

    Parameters
    ----------
    spend_fit : FittedModel
        A fitted GammaGamma; for a segmented fit each customer uses their segment's
        parameters (``rfm`` then has the segment column).
    rfm : DataFrame
        ``frequency, monetary_value`` per customer (and ``customer_id``).
    segments : array_like, optional
        Segment of each customer.
    n_draws : int, optional
        Posterior draws used (thinned evenly).
    interval : float
        Mass of the intervals.

    Returns
    -------
    per_customer : DataFrame
        ``customer_id, aov_mean, aov_low, aov_high``.
    per_segment : DataFrame
        ``segment, n_customers, aov_mean, aov_low, aov_high`` (the segment's mean
        expected order value per draw).
    """
    values = check_rfm(rfm, ("frequency", "monetary_value"))
    x, z = values["frequency"], values["monetary_value"]
    informed = (x > 0) & (z > 0)
    x, z = np.where(informed, x, 0.0), np.where(informed, z, 0.0)
    take = _thin(_n_draws(spend_fit), n_draws)
    params = spend_fit.customer_params(rfm, take)  # (draw, customer or 1)
    p, q, v = (params[k] for k in ("p", "q", "v"))
    finite = (q > 1).all(axis=1).nonzero()[0]  # draws with a finite mean in every segment
    if finite.size == 0:
        raise ValueError(
            "every Gamma-Gamma draw has q <= 1: the mean order value is infinite; check the "
            "spend data (monetary_value) and the priors."
        )
    aov = gamma_gamma.expected_spend(p[finite], q[finite], v[finite], x, z)
    low, high = _interval(aov, interval)
    ids = np.asarray(rfm["customer_id"]) if "customer_id" in rfm else np.arange(x.size)
    per_customer = pd.DataFrame(
        {"customer_id": ids, "aov_mean": aov.mean(axis=0), "aov_low": low, "aov_high": high}
    )
    labels, means = group_means(aov, segments)
    _, onehot = _groups(segments, x.size)
    seg_low, seg_high = _interval(means, interval)
    per_segment = pd.DataFrame(
        {
            "segment": labels,
            "n_customers": onehot.sum(axis=0).astype(np.int64),
            "aov_mean": means.mean(axis=0),
            "aov_low": seg_low,
            "aov_high": seg_high,
        }
    )
    return per_customer, per_segment


def value_tiers(
    clv: np.ndarray,
    customer_ids: Any,
    *,
    shares: tuple[float, float] = (0.2, 0.3),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """High / medium / low value tiers by expected CLV, with P(in tier) per customer.

    A customer's tier is set by the rank of their posterior mean CLV: the top
    ``shares[0]`` of customers are *high*, the next ``shares[1]`` *medium*, the rest
    *low*. In each draw the same cut points are applied to that draw's CLV ranks (the
    draw's ``1 - shares[0]`` and ``1 - shares[0] - shares[1]`` quantiles across
    customers); ``p_in_tier`` is the share of draws in which the customer lands in their
    own tier: how sure the assignment is.

    Parameters
    ----------
    clv : ndarray, shape (draw, customer)
        CLV draws.
    customer_ids : array_like
        One id per customer.
    shares : (float, float)
        Shares of customers in the high and medium tiers.

    Returns
    -------
    per_customer : DataFrame
        ``customer_id, tier, p_in_tier``.
    per_tier : DataFrame
        ``tier, n_customers, clv_mean_total, clv_share, mean_p_in_tier`` (the tier's
        expected total CLV and its share of the base's).
    """
    high_share, medium_share = shares
    if not (0 < high_share and 0 < medium_share and high_share + medium_share < 1):
        raise ValueError(f"tier shares must be positive and sum to less than 1, got {shares}.")
    values = np.asarray(clv, dtype=float)
    n = values.shape[1]
    mean = values.mean(axis=0)
    rank = np.empty(n)
    rank[np.argsort(-mean, kind="stable")] = np.arange(n)  # 0 = most valuable
    n_high = round(high_share * n)
    n_medium = round((high_share + medium_share) * n)
    tier = np.where(rank < n_high, 0, np.where(rank < n_medium, 1, 2))
    cuts = np.quantile(values, [1 - high_share, 1 - high_share - medium_share], axis=1)
    in_high = values > cuts[0][:, None]
    in_medium = ~in_high & (values > cuts[1][:, None])
    in_low = ~in_high & ~in_medium
    hits = np.stack([in_high, in_medium, in_low])  # (tier, draw, customer)
    p_in_tier = hits[tier, :, np.arange(n)].mean(axis=1)
    labels = np.array(TIERS)[tier]
    per_customer = pd.DataFrame(
        {"customer_id": np.asarray(customer_ids), "tier": labels, "p_in_tier": p_in_tier}
    )
    total = mean.sum()
    rows = []
    for k, name in enumerate(TIERS):
        members = tier == k
        value = float(mean[members].sum())
        rows.append(
            (
                name,
                int(members.sum()),
                value,
                value / total if total > 0 else np.nan,
                float(p_in_tier[members].mean()) if members.any() else np.nan,
            )
        )
    per_tier = pd.DataFrame(
        rows, columns=["tier", "n_customers", "clv_mean_total", "clv_share", "mean_p_in_tier"]
    )
    return per_customer, per_tier


def at_risk(
    customers: pd.DataFrame,
    *,
    value_quantile: float = 0.8,
    p_alive_below: float = 0.5,
) -> pd.DataFrame:
    """Customers with high past value and a low probability of being alive.

    Past value is the calibration spend on repeat purchases, ``frequency x
    monetary_value``. A customer is at risk when their past value is at or above the
    ``value_quantile`` of the repeat customers' past values and ``p_alive`` is below
    ``p_alive_below``: valuable customers who have probably lapsed, the targets of a
    re-engagement campaign.

    Parameters
    ----------
    customers : DataFrame
        ``customer_id, frequency, monetary_value, p_alive`` (and any other columns,
        kept), e.g. the report's customer table.
    value_quantile : float
        Past-value cut among repeat customers.
    p_alive_below : float
        P(alive) cut.

    Returns
    -------
    DataFrame
        The at-risk customers, most valuable first, with a ``past_value`` column.
    """
    past = customers["frequency"].to_numpy(float) * customers["monetary_value"].to_numpy(float)
    repeat = past[customers["frequency"].to_numpy() > 0]
    if repeat.size == 0:
        return customers.iloc[:0].assign(past_value=pd.Series(dtype=float))
    cut = float(np.quantile(repeat, value_quantile))
    mask = (past >= cut) & (past > 0) & (customers["p_alive"].to_numpy(float) < p_alive_below)
    out = customers.loc[mask].assign(past_value=past[mask])
    return out.sort_values(["past_value", "customer_id"], ascending=[False, True]).reset_index(
        drop=True
    )


def segment_summary(
    draws: Mapping[str, np.ndarray], segments: Any = None, *, interval: float = 0.9
) -> pd.DataFrame:
    """Per segment, posterior mean and interval of the segment mean of each quantity.

    Parameters
    ----------
    draws : mapping of str to ndarray, each (draw, customer)
        E.g. ``{"clv": ..., "p_alive": ...}``.
    segments : array_like, optional
        Segment of each customer (without: the whole base only).
    interval : float
        Mass of the intervals.

    Returns
    -------
    DataFrame
        ``segment, n_customers`` and ``<name>_mean, <name>_low, <name>_high`` per quantity.
    """
    first = next(iter(draws.values()))
    labels, onehot = _groups(segments, np.shape(first)[1])
    out: dict[str, Any] = {"segment": labels, "n_customers": onehot.sum(axis=0).astype(np.int64)}
    for name, samples in draws.items():
        _, means = group_means(samples, segments)
        low, high = _interval(means, interval)
        out[f"{name}_mean"] = means.mean(axis=0)
        out[f"{name}_low"] = low
        out[f"{name}_high"] = high
    return pd.DataFrame(out)


def _segment_means(means: np.ndarray, labels: list[str], groups: Sequence[int]) -> Any:
    """Per-draw group means as the ``(chain, draw, segment)`` DataArray of
    :mod:`clvbayes.segments` (one chain)."""
    import xarray as xr

    return xr.DataArray(
        means[None][..., list(groups)],
        dims=("chain", "draw", "segment"),
        coords={"segment": [labels[g] for g in groups]},
        name="mean",
    )


def segment_contrasts(
    samples: np.ndarray, segments: Any, *, interval: float = 0.9, max_segments: int = 8
) -> pd.DataFrame:
    """Pairwise differences of segment means: ``P(mean A > mean B)`` per pair.

    The segments' mean per draw, contrasted by :func:`clvbayes.segments.contrasts`.

    Parameters
    ----------
    samples : ndarray, shape (draw, customer)
        Per-customer draws, e.g. CLV.
    segments : array_like
        Segment of each customer.
    interval : float
        Mass of the difference's interval.
    max_segments : int
        Only the ``max_segments`` largest segments are contrasted (pairs grow
        quadratically).

    Returns
    -------
    DataFrame
        ``segment_a, segment_b, difference_mean, difference_low, difference_high,
        p_a_greater``.
    """
    from clvbayes.segments import contrasts

    labels, means = group_means(samples, segments)
    _, onehot = _groups(segments, np.shape(samples)[1])
    sizes = onehot.sum(axis=0)[1:]
    order = np.sort(np.argsort(-sizes, kind="stable")[:max_segments] + 1)
    table = contrasts(_segment_means(means, labels, order), ci_prob=interval)
    names = {
        "diff_mean": "difference_mean",
        "diff_low": "difference_low",
        "diff_high": "difference_high",
        "p_a_gt_b": "p_a_greater",
    }
    return table.rename(columns=names)[["segment_a", "segment_b", *names.values()]]


def clv_cac(
    clv: np.ndarray,
    cac: float | Mapping[str, float],
    segments: Any = None,
    *,
    interval: float = 0.9,
) -> pd.DataFrame:
    """CLV : acquisition cost per segment, with ``P(ratio > 1)`` and ``P(ratio > 3)``.

    The ratio is the segment's mean CLV per customer divided by its cost of acquiring
    one customer, per posterior draw (:func:`clvbayes.segments.clv_cac` on the
    segments' mean CLV). 3 is the usual rule of thumb for a healthy ratio.

    Parameters
    ----------
    clv : ndarray, shape (draw, customer)
        CLV draws.
    cac : float or mapping of str to float
        One cost for every customer, or a cost per segment (every segment needs one;
        costs of segments not in the data are ignored).
    segments : array_like, optional
        Segment of each customer.
    interval : float
        Mass of the interval.

    Returns
    -------
    DataFrame
        ``segment, n_customers, cac, clv_mean, ratio_mean, ratio_low, ratio_high,
        p_ratio_gt_1, p_ratio_gt_3``; the whole base first only when ``cac`` is one
        number.
    """
    from clvbayes.segments import clv_cac as segment_clv_cac

    labels, means = group_means(clv, segments)
    _, onehot = _groups(segments, np.shape(clv)[1])
    if isinstance(cac, Mapping):
        costs = {str(k): float(v) for k, v in cac.items()}
        missing = [g for g in labels[1:] if g not in costs]
        if segments is None or missing:
            raise ValueError(
                f"acquisition costs are missing for segments {missing or ['(no segments)']}; "
                "give one cost per segment (CSV columns segment,cac) or one number."
            )
        keep = list(range(1, len(labels)))
    else:
        costs = dict.fromkeys(labels, float(cac))
        keep = list(range(len(labels)))
    for g, value in costs.items():
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"acquisition cost for {g!r} must be a positive number, got {value}.")
    used = {labels[g]: costs[labels[g]] for g in keep}
    table = segment_clv_cac(_segment_means(means, labels, keep), used, ci_prob=interval).summary
    table.insert(1, "n_customers", onehot[:, keep].sum(axis=0).astype(int))
    columns = ["segment", "n_customers", "cac", "clv_mean", "ratio_mean", "ratio_low"]
    return table[[*columns, "ratio_high", "p_ratio_gt_1", "p_ratio_gt_3"]]
