"""What the report says, as pure data: tidy frames and plain values, no HTML.

:class:`ReportContent` holds one entry per section of the page; the renderer
(:mod:`clvbayes.report.html`) only formats it, and :meth:`ReportContent.summary` is the
deterministic part of ``summary.json``.
"""

from __future__ import annotations

import datetime as dt
import math
import platform
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clvbayes.math.units import unit_name

if TYPE_CHECKING:
    from clvbayes.predict.result import Result

__all__ = [
    "CLV_COLUMNS",
    "CUSTOMER_COLUMNS",
    "NO_VALUE_NOTE",
    "ReportContent",
    "build_content",
    "comparison_explanation",
    "customer_column_descriptions",
    "versions",
]

CUSTOMER_COLUMNS = (
    "customer_id",
    "segment",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "purchases_q05",
    "purchases_q50",
    "purchases_q95",
    "clv_mean",
    "clv_sd",
    "clv_q05",
    "clv_q50",
    "clv_q95",
    "p_top_decile",
    "holdout_frequency",
    "holdout_value",
)
"""Columns of ``customers.csv`` in order. Always: ``customer_id``, ``frequency``,
``recency``, ``T``, ``p_alive``, ``expected_purchases`` and ``purchases_q05/q50/q95``
(over the holdout window with a holdout, else over the horizon; the CLV columns and
``p_top_decile`` always over the horizon: :func:`customer_column_descriptions` says it
per column, and the report writes it in ``index.html`` and ``summary.json``). ``segment`` only with
segments; ``holdout_frequency`` only with a holdout. The value and CLV columns
(:data:`CLV_COLUMNS`: ``monetary_value``, ``clv_*``, ``p_top_decile`` and, with a holdout,
``holdout_value``) only with a value column: CLV needs one."""

CLV_COLUMNS = tuple(
    c
    for c in CUSTOMER_COLUMNS
    if c.startswith("clv_") or c in ("monetary_value", "p_top_decile", "holdout_value")
)
"""The columns of ``customers.csv`` that need a value column (``--value-col``)."""

NO_VALUE_NOTE = (
    "CLV needs a value column: this report was built without --value-col, so it gives "
    "P(alive) and purchases with their intervals, but no CLV, order value, value tiers, "
    "at-risk list or CLV:CAC. Pass --value-col to add them."
)
"""The note of a report without a value column."""

TOP_N = 20
AT_RISK_N = 25
LAPSE_N = 25

_PACKAGES = (
    "clvbayes",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "duckdb",
    "matplotlib",
    "jinja2",
)


def versions() -> dict[str, str]:
    """Python and package versions (``"not installed"`` for a missing one)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass(frozen=True, eq=False)
class ReportContent:
    """Everything the report shows.

    Attributes
    ----------
    title : str
    overview : DataFrame
        ``item, value`` rows describing the data and the settings.
    arguments : dict
        The options the report was built with.
    period : dict
        ``first_day, last_day, calibration_end, holdout_end`` (ISO dates or None).
    problems : tuple of str
        Failed convergence checks (the page's banner), prefixed with the model.
    notes : tuple of str
        Caveats (e.g. a point-estimate fit has no diagnostics).
    parameters : dict of str to DataFrame
        Per model: the parameter table (``FittedModel.summary()``).
    diagnostics : dict of str to DataFrame
        Per NUTS model: ``r_hat, ess_bulk, ess_tail`` per parameter.
    sampler : dict of str to dict
        Per model: settings (method, draws, ...; no timing), divergences, E-BFMI.
    parameter_draws : dict of str to dict of str to ndarray
        Per model: the posterior draws of each parameter ``(chain, draw)``, or
        ``(chain, draw, segment)`` for a segmented model.
    parameter_segments : dict of str to tuple of str
        Per model: its segment labels (empty for a one-population model).
    customers : DataFrame
        ``customers.csv``.
    customer_details : DataFrame
        ``customer_id, tier, p_in_tier, aov_mean, aov_low, aov_high, past_value`` (with a
        value column; else ``customer_id`` only).
    top_customers : DataFrame
        The most valuable customers (by expected CLV; without a value column, by
        expected purchases).
    at_risk : DataFrame or None
        The valuable customers who probably lapsed (None without a value column).
    n_at_risk : int or None
        All customers flagged at risk (``at_risk`` shows the first :data:`AT_RISK_N`).
    retention : DataFrame
        The ``summary`` of :func:`clvbayes.analyses.retention_curve`.
    aov_segments, tiers : DataFrame or None
        The ``groups`` of :func:`clvbayes.analyses.average_order_value` and
        :func:`clvbayes.analyses.value_tiers` (None without a value column).
    segments, contrasts, cac : DataFrame or None
        Segment comparison, pairwise contrasts, CLV:CAC (when asked for): the
        ``summary`` of :func:`clvbayes.segments.segment_summary`,
        :func:`clvbayes.segments.segment_contrasts` and :func:`clvbayes.segments.clv_cac`.
    holdout_totals, holdout_coverage, tracking : DataFrame or None
        Holdout validation (when a holdout period is given).
    calendar_multipliers, calendar_periods : DataFrame or None
        With ``--time-effects``: :func:`clvbayes.calendar_multipliers` and
        :func:`clvbayes.period_tracking`.
    calendar_verdict : str or None
        With ``--time-effects``: in words, whether the holdout total of repeat purchases
        lies inside its 90 % interval; ``holdout_inside`` the same as a flag.
    covariate_effects, covariate_coefficients : DataFrame or None
        With ``--covariates``: what +1 standard deviation of each covariate does to a
        new customer's purchases, spend and CLV (``summary``) and the coefficients with
        intervals (``groups``) of :func:`clvbayes.covariates.covariate_effects`.
    versions : dict of str to str
    fingerprint : str
        Hash of the RFM table the models were fitted on.
    model_fingerprints : dict of str to str
        Per model: the fingerprint of the data it was fitted on.
    model_labels : dict of str to str
        Per model: its display name (``"BG/NBD (purchases and dropout)"``).
    transaction_label : str
        The display name of the report's transaction model (``"BG/NBD"``).
    lapse : DataFrame
        Who is likely to lapse in the next ``lapse_window``: the first :data:`LAPSE_N`
        customers of :func:`clvbayes.analyses.lapse_risk` (``summary``).
    n_lapse : int
        All customers flagged by it.
    lapse_window : float
        Its window, in the model's time unit.
    thresholds : DataFrame
        :func:`clvbayes.analyses.p_alive_thresholds` (``summary``).
    customer_columns : DataFrame or None
        ``column, description`` of every column of ``customers.csv``
        (:func:`customer_column_descriptions`: which window each covers).
    comparison : DataFrame or None
        With ``--compare``: :func:`clvbayes.comparison.comparison_table` of the transaction
        models (indexed by model name, with ``label`` and ``chosen``).
    warnings : tuple of str
        clvbayes's warnings while the report was built (few repeat buyers, small
        segments, customers left out, dates past the data, ...), in order, each once;
        convergence warnings are the ``problems``.
    """

    title: str
    overview: pd.DataFrame
    arguments: dict[str, Any]
    period: dict[str, str | None]
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    parameters: dict[str, pd.DataFrame]
    diagnostics: dict[str, pd.DataFrame]
    sampler: dict[str, dict[str, Any]]
    parameter_draws: dict[str, dict[str, np.ndarray]]
    parameter_segments: dict[str, tuple[str, ...]]
    customers: pd.DataFrame
    customer_details: pd.DataFrame
    top_customers: pd.DataFrame
    at_risk: pd.DataFrame | None
    n_at_risk: int | None
    retention: pd.DataFrame
    aov_segments: pd.DataFrame | None
    tiers: pd.DataFrame | None
    segments: pd.DataFrame | None
    contrasts: pd.DataFrame | None
    cac: pd.DataFrame | None
    holdout_totals: pd.DataFrame | None
    holdout_coverage: pd.DataFrame | None
    tracking: pd.DataFrame | None
    versions: dict[str, str]
    fingerprint: str
    model_fingerprints: dict[str, str]
    model_labels: dict[str, str]
    transaction_label: str
    lapse: pd.DataFrame
    n_lapse: int
    lapse_window: float
    thresholds: pd.DataFrame
    comparison: pd.DataFrame | None = None
    warnings: tuple[str, ...] = ()
    covariate_effects: pd.DataFrame | None = None
    covariate_coefficients: pd.DataFrame | None = None
    calendar_multipliers: pd.DataFrame | None = None
    calendar_periods: pd.DataFrame | None = None
    calendar_verdict: str | None = None
    holdout_inside: bool | None = None
    customer_columns: pd.DataFrame | None = None

    @property
    def has_clv(self) -> bool:
        """Whether the report has CLV (it was built with a value column)."""
        return "clv_mean" in self.customers.columns

    @property
    def time_unit_name(self) -> str:
        """``"week"`` for ``"W"`` and so on."""
        return unit_name(self.arguments["time_unit"])

    @property
    def comparison_explanation(self) -> str | None:
        """What the comparison table's columns mean: :func:`comparison_explanation` of
        :attr:`comparison` (None without ``--compare``)."""
        return None if self.comparison is None else comparison_explanation(self.comparison)

    def summary(self) -> dict[str, Any]:
        """The deterministic content of ``summary.json`` (everything but the timings)."""
        out: dict[str, Any] = {
            "title": self.title,
            "versions": self.versions,
            "arguments": self.arguments,
            "seed": self.arguments["seed"],
            "data": {
                "fingerprint": self.fingerprint,
                "model_fingerprints": self.model_fingerprints,
                "period": self.period,
                **dict(zip(self.overview["item"], self.overview["value"], strict=True)),
            },
            "models": {
                name: {
                    "parameters": _records(table, index="parameter"),
                    "diagnostics": _records(self.diagnostics[name], index="parameter")
                    if name in self.diagnostics
                    else None,
                    **self.sampler[name],
                }
                for name, table in self.parameters.items()
            },
            "problems": list(self.problems),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }
        if self.has_clv:
            out["tiers"] = _records(self.tiers)
            out["average_order_value"] = _records(self.aov_segments)
            out["n_at_risk"] = self.n_at_risk
        if self.segments is not None:
            out["segments"] = _records(self.segments)
            if self.contrasts is not None:  # contrasts of CLV: with a value column
                out["segment_contrasts"] = _records(self.contrasts)
        if self.cac is not None:
            out["clv_cac"] = _records(self.cac)
        if self.calendar_multipliers is not None:
            out["time_effects"] = {
                "holdout_total_inside": self.holdout_inside,
                "verdict": self.calendar_verdict,
                "multipliers": _records(self.calendar_multipliers),
                "period_tracking": _records(self.calendar_periods),
            }
        if self.covariate_effects is not None:
            out["covariate_effects"] = _records(self.covariate_effects)
            out["covariate_coefficients"] = _records(self.covariate_coefficients)
        if self.holdout_totals is not None:
            out["validation"] = {
                "totals": _records(self.holdout_totals),
                "coverage": _records(self.holdout_coverage),
                "tracking_end": _records(self.tracking.tail(1)),
            }
        if self.customer_columns is not None:
            table = self.customer_columns
            out["customers_columns"] = dict(zip(table["column"], table["description"], strict=True))
        out["lapse"] = {"window": self.lapse_window, "n_customers": self.n_lapse}
        out["p_alive_thresholds"] = _records(self.thresholds)
        if self.comparison is not None:
            out["comparison"] = _records(self.comparison, index="model")
        return jsonable(out)


def comparison_explanation(table: pd.DataFrame) -> str:
    """The sentences that explain a report's model comparison table, naming only the
    columns it has.

    PSIS-LOO needs posterior draws (a point-estimate fit, ``--method map``, has none) and
    the holdout errors need a holdout period (``--holdout-end``), so a table may have the
    ELPD columns, the holdout columns or both; the text says which and why.

    Parameters
    ----------
    table : DataFrame
        :attr:`ReportContent.comparison`: :func:`clvbayes.comparison.comparison_table`
        with ``label`` and ``chosen`` columns.

    Returns
    -------
    str
    """
    loo, held = "elpd_loo" in table.columns, "mae" in table.columns
    text = ["The transaction models fitted on the same calibration data."]
    if loo:
        text.append(
            "ELPD (LOO) is the expected log predictive density of each customer's history, "
            "left out in turn (PSIS-LOO, higher is better; a difference of a few SEs is "
            "meaningful), with the stacking weights that would mix the models best and the "
            "number of customers whose left-out estimate is unreliable (Pareto k above 0.7)."
        )
    else:
        text.append(
            "The fits are point estimates without posterior draws, so PSIS-LOO cannot be "
            "computed and the models are compared on the holdout only (--method nuts adds "
            "it)."
        )
    if held:
        text.append(
            "The holdout columns compare each model's predictions with what happened after "
            "calibration: the mean absolute and root-mean-square error of the customers' "
            "holdout purchases, and the total with its 90% predictive interval against the "
            "actual total."
        )
    else:
        text.append(
            "Without a holdout period (--holdout-end) the models are compared by PSIS-LOO only."
        )
    text.append('This report\'s customers.csv and analyses come from the model marked "yes".')
    return " ".join(text)


def customer_column_descriptions(
    columns: Any,
    *,
    calibration_end: dt.date,
    holdout_end: dt.date | None,
    horizon: float,
    time_unit: str,
    annual_discount: float,
    margin: float,
) -> pd.DataFrame:
    """What each column of ``customers.csv`` holds, and over which window.

    With a holdout (``--holdout-end``) ``expected_purchases`` and ``purchases_q05/q50/q95``
    cover the holdout window, from the day after ``calibration_end`` through
    ``holdout_end`` (so they compare with ``holdout_frequency``), not the ``--horizon``;
    without one they cover the horizon. The CLV columns and ``p_top_decile`` always cover
    the horizon after ``calibration_end``; ``p_alive`` is at ``calibration_end``.

    Parameters
    ----------
    columns : iterable of str
        The columns of ``customers.csv`` (a subset of :data:`CUSTOMER_COLUMNS`).
    calibration_end, holdout_end : date
        The calibration's last day, the holdout's (None without a holdout).
    horizon : float
        The CLV horizon, in ``time_unit``.
    time_unit : str
        The time unit (``"W"``, ``"D"``, ...).
    annual_discount, margin : float
        The CLV's discount rate and margin.

    Returns
    -------
    DataFrame
        ``column, description``, one row per column, in the order of ``columns``.
    """
    unit = unit_name(time_unit, plural=True)
    cal = calibration_end.isoformat()
    ahead = f"the {horizon:g} {unit} after {cal} (--horizon)"
    if holdout_end is None:
        window = ahead
    else:
        window = (
            f"the holdout window, after {cal} up to {holdout_end.isoformat()}, not the "
            "--horizon; compare with holdout_frequency"
        )
    clv = f"CLV over {ahead}, discounted at {annual_discount:.1%} a year, times margin {margin:g}"
    text = {
        "customer_id": "the customer's id in the log",
        "segment": "the segment of the customer's first transaction (--segment-col)",
        "frequency": f"repeat purchases (purchase days after the first) up to {cal}",
        "recency": f"{unit} from the first purchase to the last repeat purchase up to {cal}",
        "T": f"{unit} from the first purchase to {cal}",
        "monetary_value": f"average value of a repeat purchase day up to {cal}",
        "p_alive": f"probability that the customer is still active at {cal}",
        "expected_purchases": f"expected repeat purchases over {window}",
        "clv_mean": f"expected {clv}",
        "clv_sd": f"standard deviation of the {clv}",
        "p_top_decile": f"probability of being among the 10% with the highest {clv}",
        "holdout_frequency": f"actual repeat purchase days after {cal} up to {holdout_end}",
        "holdout_value": f"actual total value of the purchase days after {cal} up to {holdout_end}",
    }
    for q, name in (("05", "5%"), ("50", "50%"), ("95", "95%")):
        text[f"purchases_q{q}"] = f"{name} quantile of the repeat purchases over {window}"
        text[f"clv_q{q}"] = f"{name} quantile of the {clv}"
    columns = list(columns)
    return pd.DataFrame({"column": columns, "description": [text[c] for c in columns]})


def _column_descriptions(
    customers: pd.DataFrame,
    calibration_end: dt.date,
    holdout_end: dt.date | None,
    options: dict[str, Any],
) -> pd.DataFrame:
    """:func:`customer_column_descriptions` of ``customers.csv`` with the report's options."""
    keys = ("horizon", "time_unit", "annual_discount", "margin")
    return customer_column_descriptions(
        customers.columns,
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        **{k: options[k] for k in keys},
    )


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and NaN/inf as None (valid JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _field(result: Any, name: str) -> Any:
    """``result.name``, or ``None`` for an analysis that was not run (``result`` is None)."""
    return None if result is None else getattr(result, name)


def _records(frame: pd.DataFrame | None, index: str | None = None) -> Any:
    if frame is None:
        return None
    table = frame.reset_index() if index is not None else frame
    return [dict(zip(table.columns, row, strict=True)) for row in table.itertuples(index=False)]


def _sampler_info(fitted: Any) -> tuple[dict[str, Any], pd.DataFrame | None, list[str]]:
    settings = {k: v for k, v in fitted.settings.items() if k != "seconds"}
    info: dict[str, Any] = {"settings": settings}
    if "sample_stats" not in fitted.idata.children:
        return info, None, []
    diagnosis = fitted.diagnostics()
    info["divergences"] = diagnosis.divergences
    info["bfmi"] = list(diagnosis.bfmi)
    return info, diagnosis.table, list(diagnosis.problems)


def model_label(name: str, fitted: Any) -> str:
    """A fitted model's display name with its role: ``"BG/NBD (purchases and dropout)"``,
    ``"BG/NBD with calendar-time effects (purchases and dropout)"``, ``"Gamma-Gamma
    (spend)"``."""
    from clvbayes.math.family import TransactionFamily

    role = "purchases and dropout" if isinstance(fitted.family, TransactionFamily) else "spend"
    timed = getattr(fitted, "calendar", None) is not None
    effects = " with calendar-time effects" if timed else ""
    return f"{fitted.family.label}{effects} ({role})"


def build_content(
    *,
    options: dict[str, Any],
    source: str,
    scan: dict[str, Any],
    calibration_end: dt.date,
    holdout_end: dt.date | None,
    rfm: pd.DataFrame,
    fits: dict[str, Any],
    customers: pd.DataFrame,
    fingerprint: str,
    retention: Result,
    order_value: Result | None,
    tiers: Result | None,
    at_risk: Result | None,
    lapse: Result,
    thresholds: Result,
    comparison: Any,
    segments: Result | None,
    contrasts: Result | None,
    cac: Result | None,
    holdout: Any,
    tracking: pd.DataFrame | None,
    covariate_effects: Result | None = None,
    calendar: Any = None,
) -> ReportContent:
    """Assemble the report's content from the pipeline's results (no computation of
    model quantities here: selection, sorting and labelling only).

    ``retention``, ``order_value``, ``tiers`` and ``at_risk`` are the
    :class:`~clvbayes.predict.Result` of the :mod:`clvbayes.analyses` functions of the
    same names (the last three None without a value column: no CLV), ``lapse`` and
    ``thresholds`` those of :func:`~clvbayes.analyses.lapse_risk` and
    :func:`~clvbayes.analyses.p_alive_thresholds`; ``segments``, ``contrasts`` and ``cac`` those of
    :func:`clvbayes.segments.segment_summary`, :func:`~clvbayes.segments.segment_contrasts`
    and :func:`~clvbayes.segments.clv_cac`, or None; ``comparison`` the pipeline's
    ``--compare`` section (a table and notes) or None; ``covariate_effects`` that of
    :func:`clvbayes.covariates.covariate_effects`, or None; ``calendar`` the pipeline's
    ``--time-effects`` section (:class:`clvbayes.report.pipeline.CalendarSection`) or None."""
    parameters, diagnostics, sampler, draws, levels = {}, {}, {}, {}, {}
    problems: list[str] = []
    notes: list[str] = []
    labels = {name: model_label(name, fitted) for name, fitted in fits.items()}
    for name, fitted in fits.items():
        label = labels[name]
        parameters[name] = fitted.summary()
        draws[name] = fitted.params()
        levels[name] = fitted.segment_levels
        info, table, found = _sampler_info(fitted)
        sampler[name] = info
        if table is not None:
            diagnostics[name] = table
        else:
            notes.append(
                f"{label}: fitted with method={fitted.settings.get('method')!r}, which has no "
                "convergence diagnostics; use --method nuts for the full posterior."
            )
        problems += [f"{label}: {p}" for p in found]
    valued = "clv_mean" in customers.columns
    if valued:
        details = tiers.summary.merge(order_value.summary, on="customer_id", validate="one_to_one")
        past = customers["frequency"].to_numpy(float) * customers["monetary_value"].to_numpy(float)
        details["past_value"] = past
    else:
        notes.append(NO_VALUE_NOTE)
        details = customers[["customer_id"]]
    enriched = customers.merge(details, on="customer_id", validate="one_to_one")
    rank = "clv_mean" if valued else "expected_purchases"
    top = enriched.sort_values([rank, "customer_id"], ascending=[False, True]).head(TOP_N)
    n_repeat = int((rfm["frequency"] > 0).sum())
    unit = unit_name(options["time_unit"], plural=True)
    overview_rows = [
        ("transactions file", source),
        ("transactions", int(scan["n"])),
        ("first transaction", scan["first_day"].isoformat()),
        ("last transaction", scan["last_day"].isoformat()),
        ("calibration period ends", calibration_end.isoformat()),
        ("holdout period ends", holdout_end.isoformat() if holdout_end else "no holdout"),
        ("customers (first purchase in calibration)", len(rfm)),
        ("repeat customers in calibration", n_repeat),
        ("repeat purchases in calibration", int(rfm["frequency"].sum())),
        ("time unit", unit),
        ("CLV horizon", f"{options['horizon']:g} {unit}"),
        ("annual discount rate", f"{options['annual_discount']:.1%}"),
        ("margin", f"{options['margin']:g}"),
        ("transaction model", labels[options["model"]]),
    ]
    if valued:
        overview_rows.append(
            ("expected total CLV over the horizon", float(customers["clv_mean"].sum()))
        )
    if comparison is not None:
        notes += list(comparison.notes)
    overview = pd.DataFrame(overview_rows, columns=["item", "value"])
    return ReportContent(
        title="Customer lifetime value report",
        overview=overview,
        arguments=jsonable(options),
        period={
            "first_day": scan["first_day"].isoformat(),
            "last_day": scan["last_day"].isoformat(),
            "calibration_end": calibration_end.isoformat(),
            "holdout_end": holdout_end.isoformat() if holdout_end else None,
        },
        problems=tuple(problems),
        notes=tuple(notes),
        parameters=parameters,
        diagnostics=diagnostics,
        sampler=sampler,
        parameter_draws=draws,
        parameter_segments=levels,
        customers=customers,
        customer_details=details,
        top_customers=top.reset_index(drop=True),
        at_risk=None if at_risk is None else at_risk.summary.head(AT_RISK_N),
        n_at_risk=None if at_risk is None else len(at_risk.summary),
        retention=retention.summary,
        aov_segments=_field(order_value, "groups"),
        tiers=_field(tiers, "groups"),
        segments=_field(segments, "summary"),
        contrasts=_field(contrasts, "summary"),
        cac=_field(cac, "summary"),
        holdout_totals=_field(holdout, "totals"),
        holdout_coverage=_field(holdout, "coverage"),
        tracking=tracking,
        versions=versions(),
        fingerprint=fingerprint,
        model_fingerprints={name: fitted.fingerprint for name, fitted in fits.items()},
        model_labels=labels,
        transaction_label=fits[options["model"]].family.label,
        lapse=lapse.summary.head(LAPSE_N),
        n_lapse=len(lapse.summary),
        lapse_window=float(lapse.groups["window"].iloc[0]),
        thresholds=thresholds.summary,
        comparison=_field(comparison, "table"),
        calendar_multipliers=_field(calendar, "multipliers"),
        calendar_periods=_field(calendar, "periods"),
        calendar_verdict=_field(calendar, "verdict"),
        holdout_inside=_field(calendar, "holdout_inside"),
        covariate_effects=_field(covariate_effects, "summary"),
        covariate_coefficients=_field(covariate_effects, "groups"),
        customer_columns=_column_descriptions(customers, calibration_end, holdout_end, options),
    )
