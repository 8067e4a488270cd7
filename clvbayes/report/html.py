"""Render a report as one self-contained HTML page.

Figures come from :mod:`clvbayes.plots`, drawn on matplotlib ``Figure`` objects (no
pyplot state, no display needed) and embedded as base64 PNG ``data:`` URIs; the page has
no scripts and loads nothing. Text is rendered by an autoescaping jinja2 template, so a
customer id or segment name from the data is always shown as text, never as markup.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from clvbayes import plots
from clvbayes.report.content import ReportContent

__all__ = ["FLAGS", "MISSING", "figures", "plain_text", "render_html"]

Column = tuple[str, str, str]  # (column, header, format: "text", "int", "money", ...)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("clvbayes.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


MISSING = "–"
"""How every table of the page shows a missing value (None, NaN, an empty list)."""

FLAGS = ("no", "yes")
"""How every table of the page shows a flag (False, True)."""


def _missing(value: Any) -> bool:
    """Whether ``value`` is a missing cell: None, ``pd.NA``, ``NaT`` or a non-finite float."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and not np.isfinite(value)


def plain_text(value: Any) -> str:
    """A value as a reader of the page reads it, never as a Python repr.

    Flags are :data:`FLAGS` (``"yes"``/``"no"``), missing values :data:`MISSING`, numpy
    scalars their Python value, lists their items joined by commas and mappings
    ``key: value`` pairs (an empty one is missing).

    Parameters
    ----------
    value : Any
        A cell or an argument of the report.

    Returns
    -------
    str
    """
    if _missing(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return FLAGS[bool(value)]
    if isinstance(value, dict):
        items = [f"{k}: {plain_text(v)}" for k, v in value.items()]
        return ", ".join(items) or MISSING
    if isinstance(value, list | tuple):
        return ", ".join(plain_text(v) for v in value) or MISSING
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _format(value: Any, kind: str) -> str:
    if _missing(value) or isinstance(value, bool | np.bool_):
        return plain_text(value)
    if kind == "text":
        return plain_text(value)
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{float(value):,.2f}"
    if kind == "pct":
        return f"{float(value):.1%}"
    if kind == "prob":
        return f"{float(value):.3f}"
    if kind == "auto":
        if isinstance(value, int | np.integer):
            return f"{int(value):,}"
        if isinstance(value, float | np.floating):
            return f"{float(value):,.2f}" if abs(value) >= 100 else f"{float(value):.4g}"
        return plain_text(value)
    return f"{float(value):{kind}}"


def _table(frame: pd.DataFrame, columns: Sequence[Column], table_id: str = "") -> dict[str, Any]:
    """Headers and formatted cells of the chosen columns (those present)."""
    present = [c for c in columns if c[0] in frame.columns]
    rows = [
        [_format(value, kind) for value, (_, _, kind) in zip(row, present, strict=True)]
        for row in frame[[c[0] for c in present]].itertuples(index=False)
    ]
    return {
        "id": table_id,
        "headers": [c[1] for c in present],
        "rows": rows,
        "text": {i for i, c in enumerate(present) if c[2] == "text"},
    }


def _png(draw: Callable[[Any], Any], figsize: tuple[float, float], *, ncols: int = 1) -> str:
    """Draw with ``draw(ax)`` on a fresh Figure; return the PNG as base64 text."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=100, layout="constrained")
    axes = fig.subplots(1, ncols)
    draw(axes)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def figures(content: ReportContent) -> dict[str, Any]:
    """Every figure of the page, as base64 PNG text (``posteriors`` is per model)."""
    unit = content.time_unit_name
    out: dict[str, Any] = {"posteriors": {}}
    for name, draws in content.parameter_draws.items():
        if next(iter(draws.values())).size < 2:
            continue  # a point estimate: the table says it all
        levels = content.parameter_segments.get(name) or None
        out["posteriors"][name] = _png(
            lambda axes, d=draws, s=levels: plots.plot_parameter_draws(d, axes=axes, segments=s),
            (2.6 * len(draws), 2.4),
            ncols=len(draws),
        )
    customers = content.customers
    out["p_alive"] = _png(lambda ax: plots.plot_p_alive(customers, ax=ax), (5.2, 3.4))
    if content.has_clv:
        out["clv"] = _png(lambda ax: plots.plot_clv_distribution(customers, ax=ax), (5.2, 3.4))
        top = content.top_customers
        out["top"] = _png(
            lambda ax: plots.plot_top_customers(top, ax=ax), (8, 0.28 * len(top) + 1.2)
        )
    out["retention"] = _png(
        lambda ax: plots.plot_retention(
            content.retention, ax=ax, time_label=f"{unit}s after the end of calibration"
        ),
        (8, 3.8),
    )
    if content.tiers is not None:
        out["tiers"] = _png(lambda ax: plots.plot_value_tiers(content.tiers, ax=ax), (5, 3.2))
    if content.cac is not None:
        out["cac"] = _png(
            lambda ax: plots.plot_clv_cac(content.cac, ax=ax),
            (7, 0.4 * len(content.cac) + 1.2),
        )
    if content.segments is not None:
        seg = content.segments
        size = (5.2, 0.4 * len(seg) + 1.2)
        if content.has_clv:
            out["segments_clv"] = _png(lambda ax: plots.plot_segments(seg, "clv", ax=ax), size)
        out["segments_alive"] = _png(
            lambda ax: plots.plot_segments(
                seg, "p_alive", ax=ax, label="mean P(alive) (90% interval)"
            ),
            size,
        )
    if content.tracking is not None:
        out["tracking"] = _png(
            lambda ax: plots.plot_tracking(
                content.tracking, ax=ax, time_label=f"{unit}s from the end of calibration"
            ),
            (9, 4),
        )
        out["coverage"] = _png(
            lambda ax: plots.plot_coverage(content.holdout_coverage, ax=ax), (4.6, 4)
        )
    if content.calendar_multipliers is not None:
        out["multipliers"] = _png(
            lambda ax: plots.plot_calendar_multipliers(content.calendar_multipliers, ax=ax),
            (9, 3.6),
        )
        out["period_tracking"] = _png(
            lambda ax: plots.plot_period_tracking(content.calendar_periods, ax=ax), (9, 4)
        )
    return out


_PARAMS: list[Column] = [
    ("parameter", "parameter", "text"),
    ("mean", "mean", ".4g"),
    ("sd", "sd", ".3g"),
    ("eti90_lb", "5%", ".4g"),
    ("eti90_ub", "95%", ".4g"),
    ("ess_bulk", "ESS bulk", ".0f"),
    ("ess_tail", "ESS tail", ".0f"),
    ("r_hat", "R-hat", ".3f"),
]
_CUSTOMER: list[Column] = [
    ("customer_id", "customer", "text"),
    ("segment", "segment", "text"),
    ("frequency", "repeat purchases", "int"),
    ("recency", "recency", ".1f"),
    ("T", "T", ".1f"),
    ("monetary_value", "avg repeat value", "money"),
]


_COLUMNS: dict[str, list[Column]] = {
    "overview": [("item", "item", "text"), ("value", "value", "auto")],
    "diagnostics": [
        ("parameter", "parameter", "text"),
        ("r_hat", "R-hat", ".3f"),
        ("ess_bulk", "ESS bulk", ".0f"),
        ("ess_tail", "ESS tail", ".0f"),
        ("divergences", "divergences (all)", "int"),
        ("bfmi", "E-BFMI per chain", "text"),
    ],
    "top": [
        *_CUSTOMER,
        ("p_alive", "P(alive)", "prob"),
        ("clv_mean", "CLV mean", "money"),
        ("clv_q05", "CLV 5%", "money"),
        ("clv_q95", "CLV 95%", "money"),
        ("p_top_decile", "P(top 10%)", "prob"),
        ("tier", "tier", "text"),
        ("p_in_tier", "P(in tier)", "prob"),
    ],
    "top_purchases": [  # without a value column: the most active customers
        *_CUSTOMER,
        ("p_alive", "P(alive)", "prob"),
        ("expected_purchases", "expected purchases", ".2f"),
        ("purchases_q05", "5%", ".2f"),
        ("purchases_q95", "95%", ".2f"),
    ],
    "retention": [
        ("segment", "group", "text"),
        ("time", "time", ".0f"),
        ("share_alive_mean", "share alive", "pct"),
        ("share_alive_low", "5%", "pct"),
        ("share_alive_high", "95%", "pct"),
    ],
    "aov": [
        ("segment", "group", "text"),
        ("n_customers", "customers", "int"),
        ("aov_mean", "expected order value", "money"),
        ("aov_low", "5%", "money"),
        ("aov_high", "95%", "money"),
    ],
    "tiers": [
        ("tier", "tier", "text"),
        ("n_customers", "customers", "int"),
        ("clv_mean_total", "expected CLV", "money"),
        ("clv_share", "share of CLV", "pct"),
        ("mean_p_in_tier", "mean P(in tier)", "prob"),
    ],
    "risk": [
        *_CUSTOMER,
        ("past_value", "past repeat spend", "money"),
        ("p_alive", "P(alive)", "prob"),
        ("clv_mean", "CLV mean", "money"),
    ],
    "lapse": [
        *_CUSTOMER,
        ("p_alive", "P(alive)", "prob"),
        ("p_no_purchase_mean", "P(no purchase)", "prob"),
        ("p_no_purchase_low", "5%", "prob"),
        ("p_no_purchase_high", "95%", "prob"),
        ("clv_mean", "CLV mean", "money"),
    ],
    "thresholds": [
        ("p_alive_below", "P(alive) below", ".2f"),
        ("n_customers", "customers", "int"),
        ("share_customers", "share of customers", "pct"),
        ("clv_mean_total", "expected CLV", "money"),
        ("clv_total_low", "5%", "money"),
        ("clv_total_high", "95%", "money"),
        ("clv_share", "share of CLV", "pct"),
    ],
    "comparison": [
        ("label", "model", "text"),
        ("chosen", "in this report", "text"),
        ("elpd_loo", "ELPD (LOO)", ",.1f"),
        ("se", "SE", ",.1f"),
        ("elpd_diff", "ELPD difference", ",.1f"),
        ("dse", "SE of difference", ",.1f"),
        ("weight", "stacking weight", ".2f"),
        ("k_bad", "customers with k in (0.7, 1]", "int"),
        ("k_very_bad", "with k > 1", "int"),
        ("mae", "holdout MAE", ".3f"),
        ("rmse", "holdout RMSE", ".3f"),
        ("actual_total", "actual holdout purchases", ",.0f"),
        ("predicted_total", "predicted", ",.0f"),
        ("total_low", "5%", ",.0f"),
        ("total_high", "95%", ",.0f"),
        ("total_error_pct", "error %", ".1f"),
    ],
    "cac": [
        ("segment", "group", "text"),
        ("n_customers", "customers", "int"),
        ("cac", "CAC", "money"),
        ("clv_mean", "mean CLV", "money"),
        ("ratio_mean", "CLV:CAC", ".2f"),
        ("ratio_low", "5%", ".2f"),
        ("ratio_high", "95%", ".2f"),
        ("p_ratio_gt_1", "P(> 1)", "prob"),
        ("p_ratio_gt_3", "P(> 3)", "prob"),
    ],
    "segments": [
        ("segment", "segment", "text"),
        ("n_customers", "customers", "int"),
        ("clv_mean", "mean CLV", "money"),
        ("clv_low", "5%", "money"),
        ("clv_high", "95%", "money"),
        ("p_alive_mean", "mean P(alive)", "prob"),
        ("aov_mean", "order value", "money"),
    ],
    "contrasts": [
        ("segment_a", "segment A", "text"),
        ("segment_b", "segment B", "text"),
        ("diff_mean", "mean CLV A - B", "money"),
        ("diff_low", "5%", "money"),
        ("diff_high", "95%", "money"),
        ("p_a_gt_b", "P(A > B)", "prob"),
    ],
    "effects": [
        ("covariate", "covariate", "text"),
        ("sd", "1 sd", ".3g"),
        ("from", "typical", ".3g"),
        ("purchases_change_mean", "purchases", "pct"),
        ("spend_change_mean", "spend", "pct"),
        ("clv_change_mean", "CLV", "pct"),
        ("clv_change_low", "CLV 5%", "pct"),
        ("clv_change_high", "CLV 95%", "pct"),
        ("p_clv_up", "P(CLV up)", "prob"),
    ],
    "coefficients": [
        ("model", "model", "text"),
        ("coefficient", "coefficient", "text"),
        ("covariate", "covariate", "text"),
        ("direction", "positive means", "text"),
        ("mean", "per unit", ".3f"),
        ("low", "5%", ".3f"),
        ("high", "95%", ".3f"),
        ("per_sd_mean", "per sd", ".3f"),
    ],
    "totals": [
        ("quantity", "holdout total", "text"),
        ("actual", "actual", "money"),
        ("predicted_mean", "predicted", "money"),
        ("predicted_q05", "5%", "money"),
        ("predicted_q95", "95%", "money"),
        ("error_pct", "error %", ".1f"),
        ("in_interval", "inside 90%", "text"),
    ],
    "coverage": [
        ("quantity", "quantity", "text"),
        ("level", "interval", "pct"),
        ("observed", "observed inside", "pct"),
        ("expected", "expected inside", "pct"),
    ],
    "customer_columns": [("column", "column", "text"), ("description", "meaning", "text")],
    "arguments": [("item", "argument", "text"), ("value", "value", "text")],
    "versions": [("item", "package", "text"), ("value", "version", "text")],
    "timings": [("item", "stage", "text"), ("value", "seconds", ".1f")],
}
"""The columns of each table of the page: (column, heading, format)."""

_TABLE_IDS = {"top": "top-customers", "risk": "at-risk", "lapse": "lapse-risk"}


def _items(mapping: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({"item": list(mapping), "value": list(mapping.values())})


def _frames(content: ReportContent, timings: dict[str, float]) -> dict[str, pd.DataFrame]:
    """Each table's frame (the tables the content has)."""
    ret = content.retention
    horizon = ret["time"].max()
    frames = {
        "overview": content.overview,
        "top": content.top_customers,
        "retention": ret[np.isclose(ret["time"], 0) | np.isclose(ret["time"], horizon)],
        "aov": content.aov_segments,
        "tiers": content.tiers,
        "risk": content.at_risk,
        "lapse": content.lapse,
        "thresholds": content.thresholds,
        "comparison": content.comparison,
        "cac": content.cac,
        "contrasts": content.contrasts,
        "effects": content.covariate_effects,
        "coefficients": content.covariate_coefficients,
        "totals": content.holdout_totals,
        "coverage": content.holdout_coverage,
        "customer_columns": content.customer_columns,
        "arguments": _items({k: plain_text(v) for k, v in content.arguments.items()}),
        "versions": _items(content.versions),
        "timings": _items(timings),
    }
    if content.segments is not None:
        frames["segments"] = content.segments
        if content.aov_segments is not None:
            aov = content.aov_segments[["segment", "aov_mean"]]
            frames["segments"] = content.segments.merge(aov, on="segment")
    return {k: v for k, v in frames.items() if v is not None}


def _tables(content: ReportContent, timings: dict[str, float]) -> dict[str, Any]:
    t: dict[str, Any] = {
        name: _table(frame, _COLUMNS[name], _TABLE_IDS.get(name, ""))
        for name, frame in _frames(content, timings).items()
    }
    if not content.has_clv:
        t["top"] = _table(content.top_customers, _COLUMNS["top_purchases"], _TABLE_IDS["top"])
    t["parameters"] = {
        name: {
            "label": content.model_labels[name],
            "table": _table(table.reset_index(), _PARAMS),
        }
        for name, table in content.parameters.items()
    }
    t["diagnostics"] = {}
    for name, table in content.diagnostics.items():
        info = content.sampler[name]
        frame = table.reset_index().assign(
            divergences=info.get("divergences"),
            bfmi=", ".join(f"{b:.2f}" for b in info.get("bfmi", [])),
        )
        t["diagnostics"][name] = _table(frame, _COLUMNS["diagnostics"])
    return t


def render_html(report: Any, *, timings: dict[str, float] | None = None) -> str:
    """The report as one self-contained HTML page.

    Parameters
    ----------
    report : Report or ReportContent
        What :func:`clvbayes.report.build_report` returned (or its ``content``).
    timings : dict, optional
        Stage timings to show (default: the report's).

    Returns
    -------
    str
        The HTML document.
    """
    content = getattr(report, "content", report)
    if timings is None:
        timings = dict(getattr(report, "timings", {}))
    source = getattr(report, "source", content.overview["value"].iloc[0])
    unit = content.time_unit_name
    template = _environment().get_template("report.html.j2")
    return template.render(
        c=content,
        source=source,
        horizon=f"{content.arguments['horizon']:g} {unit}s",
        window=f"{content.lapse_window:g} {unit}s",
        model=content.transaction_label,
        tables=_tables(content, timings),
        images=figures(content),
    )
