"""Figures from results. Functions here draw; they compute nothing.

Each takes a tidy frame or a fitted model's output, draws on ``ax`` (a new figure if
None) and returns the matplotlib Axes, so it works on its own in Jupyter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "plot_clv_cac",
    "plot_clv_distribution",
    "plot_conditional_expectations",
    "plot_coverage",
    "plot_frequency_check",
    "plot_p_alive",
    "plot_p_zero",
    "plot_parameter_draws",
    "plot_parameter_posteriors",
    "plot_pit",
    "plot_retention",
    "plot_segment_forest",
    "plot_segments",
    "plot_top_customers",
    "plot_tracking",
    "plot_value_tiers",
]

_BLUE, _ORANGE, _RED, _GREY = "#4c72b0", "#dd8452", "#c44e52", "#7f7f7f"


def _axes(ax: Any, figsize: tuple[float, float] = (7, 4)) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def plot_frequency_check(check: pd.DataFrame, *, ax: Any = None, title: str | None = None) -> Any:
    """Bars of observed customers per repeat-purchase count with predicted intervals.

    Parameters
    ----------
    check : DataFrame
        Output of :func:`clvbayes.ppc.frequency_histogram_check`.
    ax : matplotlib Axes, optional
    title : str, optional
    """
    ax = _axes(ax)
    pos = np.arange(len(check))
    ax.bar(pos - 0.2, check["observed"], width=0.4, label="observed", color="#4c72b0")
    err = np.vstack(
        [
            check["predicted_mean"] - check["predicted_low"],
            check["predicted_high"] - check["predicted_mean"],
        ]
    )
    ax.bar(
        pos + 0.2,
        check["predicted_mean"],
        width=0.4,
        label="predicted (90% interval)",
        color="#dd8452",
        yerr=err,
        capsize=3,
    )
    ax.set_xticks(pos, check.index)
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("customers")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_parameter_posteriors(
    fitted: Any, reference: dict[str, float] | None = None, *, axes: Any = None
) -> Any:
    """Histogram of each population parameter's posterior, with optional reference lines
    (one outlined histogram per segment for a segmented fit).

    Parameters
    ----------
    fitted : FittedModel
    reference : dict, optional
        Values to mark (e.g. published maximum-likelihood estimates).
    axes : array of Axes, optional
        One per parameter.
    """
    levels = getattr(fitted, "segment_levels", ()) or None
    return plot_parameter_draws(fitted.params(), reference, axes=axes, segments=levels)


def plot_parameter_draws(
    draws: Mapping[str, np.ndarray],
    reference: Mapping[str, float] | None = None,
    *,
    axes: Any = None,
    segments: Sequence[str] | None = None,
) -> Any:
    """Histogram of each parameter's draws, with optional reference lines.

    Parameters
    ----------
    draws : mapping of str to ndarray
        Draws per parameter (e.g. ``fitted.params()``): ``(chain, draw)``, or
        ``(chain, draw, segment)`` with ``segments``.
    reference : mapping, optional
        Values to mark (e.g. published maximum-likelihood estimates).
    axes : array of Axes, optional
        One per parameter.
    segments : sequence of str, optional
        Segment labels of a segmented fit: one outlined histogram per segment.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(draws), figsize=(3.2 * len(draws), 3))
    for ax, (name, values) in zip(np.atleast_1d(axes), draws.items(), strict=True):
        values = np.asarray(values)
        if segments is not None and values.ndim == 3:
            flat = values.reshape(-1, values.shape[-1])
            edges = np.histogram_bin_edges(flat, bins=40)
            for k, label in enumerate(segments):
                ax.hist(flat[:, k], bins=edges, histtype="step", lw=1.5, label=str(label))
        else:
            values = values.ravel()
            ax.hist(values, bins=40 if values.size > 1 else 1, color=_BLUE, alpha=0.8)
            ax.axvline(values.mean(), color="k", lw=1, label="posterior mean")
        if reference and name in reference:
            ax.axvline(reference[name], color=_RED, lw=2, ls="--", label="reference")
        ax.set_title(name)
        ax.set_yticks([])
    np.atleast_1d(axes)[0].legend(fontsize=8)
    return axes


def plot_p_alive(customers: pd.DataFrame, *, ax: Any = None, bins: int = 20) -> Any:
    """Histogram of the customers' P(alive) (posterior means).

    Parameters
    ----------
    customers : DataFrame
        A ``p_alive`` column, e.g. the report's ``customers.csv`` or
        ``predict_customers(...).summary``.
    ax : matplotlib Axes, optional
    bins : int
    """
    ax = _axes(ax)
    ax.hist(customers["p_alive"], bins=np.linspace(0, 1, bins + 1), color=_BLUE)
    ax.set_xlabel("P(alive) at the end of calibration")
    ax.set_ylabel("customers")
    return ax


def plot_clv_distribution(customers: pd.DataFrame, *, ax: Any = None, bins: int = 50) -> Any:
    """Histogram of the customers' expected CLV, with the median and the top-decile cut.

    Parameters
    ----------
    customers : DataFrame
        A ``clv_mean`` column.
    ax : matplotlib Axes, optional
    bins : int
    """
    ax = _axes(ax)
    values = customers["clv_mean"].to_numpy(float)
    ax.hist(values, bins=bins, color=_BLUE)
    ax.set_yscale("log")
    for q, style, label in ((0.5, ":", "median"), (0.9, "--", "top-10% cut")):
        ax.axvline(np.quantile(values, q), color="k", ls=style, lw=1, label=label)
    ax.set_xlabel("expected CLV over the horizon")
    ax.set_ylabel("customers (log scale)")
    ax.legend(fontsize=8)
    return ax


def plot_top_customers(top: pd.DataFrame, *, ax: Any = None) -> Any:
    """The most valuable customers' CLV: mean and 90 % interval (``clv_q05``-``clv_q95``).

    Parameters
    ----------
    top : DataFrame
        ``customer_id, clv_mean, clv_q05, clv_q95``, most valuable first.
    ax : matplotlib Axes, optional
    """
    ax = _axes(ax, (7, max(3.0, 0.28 * len(top) + 1)))
    pos = np.arange(len(top))[::-1]
    mean = top["clv_mean"].to_numpy(float)
    err = np.vstack([mean - top["clv_q05"].to_numpy(float), top["clv_q95"].to_numpy(float) - mean])
    ax.errorbar(mean, pos, xerr=np.clip(err, 0, None), fmt="o", color=_BLUE, ecolor=_GREY)
    ax.set_yticks(pos, [str(c) for c in top["customer_id"]])
    ax.set_xlabel("CLV: mean and 90% interval")
    ax.set_ylabel("customer")
    return ax


def plot_retention(retention: pd.DataFrame, *, ax: Any = None, time_label: str = "time") -> Any:
    """Expected share of customers still alive over time, one line (and band) per segment.

    Parameters
    ----------
    retention : DataFrame
        ``segment, time, share_alive_mean, share_alive_low, share_alive_high``
        (:func:`clvbayes.analyses.retention_curve`, its ``summary``).
    ax : matplotlib Axes, optional
    time_label : str
        Label of the time axis.
    """
    ax = _axes(ax)
    for segment, part in retention.groupby("segment", sort=False):
        line = ax.plot(part["time"], part["share_alive_mean"], label=str(segment))[0]
        ax.fill_between(
            part["time"],
            part["share_alive_low"],
            part["share_alive_high"],
            color=line.get_color(),
            alpha=0.2,
        )
    ax.set_ylim(0, None)
    ax.set_xlabel(time_label)
    ax.set_ylabel("share of customers alive")
    ax.legend(fontsize=8)
    return ax


def plot_tracking(tracking: pd.DataFrame, *, ax: Any = None, time_label: str = "time") -> Any:
    """Cumulative repeat purchases, actual vs predicted with a band (the tracking plot).

    Parameters
    ----------
    tracking : DataFrame
        ``time, predicted_mean, predicted_low, predicted_high, actual``
        (:func:`clvbayes.ppc.tracking_curve`); time 0 is the end of calibration.
    ax : matplotlib Axes, optional
    time_label : str
        Label of the time axis.
    """
    ax = _axes(ax)
    ax.fill_between(
        tracking["time"],
        tracking["predicted_low"],
        tracking["predicted_high"],
        color=_ORANGE,
        alpha=0.3,
        label="predicted, 90% band",
    )
    ax.plot(tracking["time"], tracking["predicted_mean"], color=_ORANGE, ls="--", label="predicted")
    if tracking["actual"].notna().any():
        ax.plot(tracking["time"], tracking["actual"], color=_BLUE, label="actual")
    ax.axvline(0, color=_GREY, ls=":", lw=1)
    ax.annotate("end of calibration", (0, 0.02), xycoords=("data", "axes fraction"), fontsize=8)
    ax.set_xlabel(time_label)
    ax.set_ylabel("cumulative repeat purchases")
    ax.legend(fontsize=8)
    return ax


def plot_coverage(coverage: pd.DataFrame, *, ax: Any = None) -> Any:
    """Holdout coverage: share of customers inside their central predictive intervals,
    observed against what the model expects, per interval level and quantity.

    Parameters
    ----------
    coverage : DataFrame
        ``quantity, level, observed, expected`` (``HoldoutReport.coverage``).
    ax : matplotlib Axes, optional
    """
    ax = _axes(ax, (5, 4))
    for quantity, part in coverage.groupby("quantity", sort=False):
        ax.plot(part["expected"], part["observed"], "o-", label=str(quantity))
        for level, x, y in zip(part["level"], part["expected"], part["observed"], strict=True):
            ax.annotate(f"{level:.0%}", (x, y), textcoords="offset points", xytext=(4, -10))
    low = float(np.nanmin(coverage[["observed", "expected"]].to_numpy(float), initial=1.0))
    low = max(0.0, np.floor(20 * low) / 20 - 0.05)  # zoom on the points, keep the diagonal
    ax.plot([low, 1], [low, 1], color=_GREY, ls=":", lw=1)
    ax.set_xlim(low, 1)
    ax.set_ylim(low, 1)
    ax.set_xlabel("expected share inside the interval")
    ax.set_ylabel("observed share inside the interval")
    ax.legend(fontsize=8)
    return ax


def plot_pit(pit: pd.DataFrame, quantity: str = "purchases", *, ax: Any = None) -> Any:
    """Randomized PIT histogram of holdout outcomes: flat at the expected share when the
    per-customer predictive distributions are calibrated; a U shape means too narrow,
    a hump too wide, a slope biased.

    Parameters
    ----------
    pit : DataFrame
        ``quantity, bin_low, bin_high, share, expected_share`` (``HoldoutReport.pit``).
    quantity : str
        Which quantity to draw (``"purchases"`` or ``"spend"``).
    ax : matplotlib Axes, optional
    """
    ax = _axes(ax, (5, 3.5))
    part = pit[pit["quantity"] == quantity]
    widths = part["bin_high"] - part["bin_low"]
    ax.bar(part["bin_low"], part["share"], width=widths, align="edge", color=_BLUE, ec="white")
    ax.axhline(float(part["expected_share"].iloc[0]), color="k", ls="--", lw=1, label="uniform")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"randomized PIT of the holdout {quantity}")
    ax.set_ylabel("share of customers")
    ax.legend(fontsize=8)
    return ax


def plot_p_zero(p_zero: pd.DataFrame, *, ax: Any = None) -> Any:
    """Calibration of P(no purchase in the holdout): predicted probability against the
    observed share of customers who bought nothing, per decile of the prediction.

    Parameters
    ----------
    p_zero : DataFrame
        ``decile, predicted, observed`` (``HoldoutReport.p_zero``).
    ax : matplotlib Axes, optional
    """
    ax = _axes(ax, (4, 4))
    ax.plot(p_zero["predicted"], p_zero["observed"], "o-", color=_ORANGE)
    ax.plot([0, 1], [0, 1], color=_GREY, ls=":", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted P(no purchase), decile mean")
    ax.set_ylabel("observed share with no purchase")
    return ax


def plot_value_tiers(tiers: pd.DataFrame, *, ax: Any = None) -> Any:
    """Share of customers and share of expected CLV per value tier.

    Parameters
    ----------
    tiers : DataFrame
        ``tier, n_customers, clv_share`` (``groups`` of
        :func:`clvbayes.analyses.value_tiers`).
    ax : matplotlib Axes, optional
    """
    ax = _axes(ax, (5, 3.5))
    pos = np.arange(len(tiers))
    customers = tiers["n_customers"] / tiers["n_customers"].sum()
    ax.bar(pos - 0.2, customers, width=0.4, color=_GREY, label="share of customers")
    ax.bar(pos + 0.2, tiers["clv_share"], width=0.4, color=_BLUE, label="share of CLV")
    ax.set_xticks(pos, tiers["tier"])
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    return ax


def plot_segments(
    segments: pd.DataFrame, quantity: str = "clv", *, ax: Any = None, label: str | None = None
) -> Any:
    """Segment means of a quantity with their intervals.

    Parameters
    ----------
    segments : DataFrame
        ``segment, <quantity>_mean, <quantity>_low, <quantity>_high``
        (:func:`clvbayes.segments.segment_summary`, its ``summary``).
    quantity : str
        E.g. ``"clv"`` or ``"p_alive"``.
    ax : matplotlib Axes, optional
    label : str, optional
        Axis label (default: "mean <quantity> per customer").
    """
    ax = _axes(ax, (6, max(2.5, 0.35 * len(segments) + 1)))
    pos = np.arange(len(segments))[::-1]
    mean = segments[f"{quantity}_mean"].to_numpy(float)
    low = segments[f"{quantity}_low"].to_numpy(float)
    high = segments[f"{quantity}_high"].to_numpy(float)
    err = np.clip(np.vstack([mean - low, high - mean]), 0, None)
    ax.errorbar(mean, pos, xerr=err, fmt="o", color=_BLUE, ecolor=_GREY)
    ax.set_yticks(pos, [str(s) for s in segments["segment"]])
    ax.set_xlabel(label or f"mean {quantity} per customer (90% interval)")
    return ax


def plot_clv_cac(cac: pd.DataFrame, *, ax: Any = None) -> Any:
    """CLV : CAC ratio per segment with its interval, and the 1 and 3 reference lines.

    Parameters
    ----------
    cac : DataFrame
        ``segment, ratio_mean, ratio_low, ratio_high`` (``summary`` of
        :func:`clvbayes.segments.clv_cac`).
    ax : matplotlib Axes, optional
    """
    ax = _axes(ax, (6, max(2.5, 0.35 * len(cac) + 1)))
    pos = np.arange(len(cac))[::-1]
    mean = cac["ratio_mean"].to_numpy(float)
    err = np.vstack([mean - cac["ratio_low"].to_numpy(float), cac["ratio_high"] - mean])
    ax.errorbar(mean, pos, xerr=np.clip(err, 0, None), fmt="o", color=_BLUE, ecolor=_GREY)
    for ref in (1, 3):
        ax.axvline(ref, color=_RED if ref == 1 else _GREY, ls="--", lw=1)
    ax.set_yticks(pos, [str(s) for s in cac["segment"]])
    ax.set_xlabel("CLV : CAC (90% interval)")
    return ax


def plot_conditional_expectations(by_frequency: pd.DataFrame, *, ax: Any = None) -> Any:
    """Mean holdout purchases by calibration frequency: actual and each model's prediction.

    Parameters
    ----------
    by_frequency : DataFrame
        :attr:`clvbayes.comparison.HoldoutComparison.by_frequency` (columns
        ``calibration_frequency, actual, predicted, predicted_low, predicted_high, model``)
        or one model's :func:`clvbayes.predict.holdout.conditional_expectations` (reset index).
    ax : matplotlib Axes, optional
    """
    ax = _axes(ax)
    frame = by_frequency if "model" in by_frequency else by_frequency.assign(model="model")
    models = list(dict.fromkeys(frame["model"]))
    labels = list(dict.fromkeys(frame["calibration_frequency"]))
    pos = {label: i for i, label in enumerate(labels)}
    first = frame[frame["model"] == models[0]]
    ax.plot(
        [pos[v] for v in first["calibration_frequency"]],
        first["actual"],
        color="black",
        marker="o",
        label="actual",
    )
    width = 0.5 / max(len(models), 1)
    for i, name in enumerate(models):
        part = frame[frame["model"] == name]
        x = (
            np.array([pos[v] for v in part["calibration_frequency"]])
            + (i - (len(models) - 1) / 2) * width
        )
        err = None
        if "predicted_low" in part:
            err = np.vstack(
                [
                    part["predicted"] - part["predicted_low"],
                    part["predicted_high"] - part["predicted"],
                ]
            )
        ax.errorbar(x, part["predicted"], yerr=err, fmt="s", capsize=3, ms=4, label=name)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout")
    ax.legend(fontsize=8)
    return ax


def plot_segment_forest(
    table: pd.DataFrame,
    quantity: str | None = None,
    *,
    by: str | None = None,
    reference: float | None = None,
    ax: Any = None,
    label: str | None = None,
) -> Any:
    """Forest plot: each segment's posterior mean and interval, one row per segment.

    Parameters
    ----------
    table : DataFrame
        Long format with ``segment, mean, low, high`` and optionally ``quantity`` or
        ``parameter`` (:func:`clvbayes.segments.segment_table`,
        :func:`clvbayes.segments.segment_parameters`).
    quantity : str, optional
        Row filter on the ``quantity`` (or ``parameter``) column.
    by : str, optional
        Column whose values are drawn side by side within each segment (e.g. a
        ``pooling`` column to show shrinkage: "none" vs "partial").
    reference : float, optional
        Vertical reference line (e.g. the population value).
    ax : matplotlib Axes, optional
    label : str, optional
        x-axis label (default: the quantity and "90% interval").
    """
    rows = table
    if quantity is not None:
        key = "quantity" if "quantity" in table else "parameter"
        rows = table[table[key] == quantity]
        if rows.empty:
            raise ValueError(f"no rows with {key} == {quantity!r}.")
    segments = list(dict.fromkeys(rows["segment"].astype(str)))
    groups = [None] if by is None else list(dict.fromkeys(rows[by]))
    ax = _axes(ax, (6, max(2.5, 0.45 * len(segments) * len(groups) ** 0.5 + 1)))
    colors = [_BLUE, _ORANGE, _RED, _GREY]
    step = 0.6 / max(len(groups), 1)
    base = np.arange(len(segments))[::-1].astype(float)
    for k, group in enumerate(groups):
        part = rows if group is None else rows[rows[by] == group]
        where = {s: i for i, s in enumerate(segments)}
        pos = np.array([base[where[s]] for s in part["segment"].astype(str)])
        pos = pos + (len(groups) - 1) * step / 2 - k * step
        mean = part["mean"].to_numpy(float)
        err = np.vstack([mean - part["low"].to_numpy(float), part["high"].to_numpy(float) - mean])
        ax.errorbar(
            mean,
            pos,
            xerr=np.clip(err, 0, None),
            fmt="o",
            color=colors[k % len(colors)],
            ecolor=colors[k % len(colors)],
            label=None if group is None else str(group),
        )
    if reference is not None:
        ax.axvline(reference, color=_GREY, ls="--", lw=1)
    ax.set_yticks(base, segments)
    ax.set_xlabel(label or f"{quantity or 'value'} (90% interval)")
    if by is not None:
        ax.legend(fontsize=8, title=by)
    return ax
