"""The report pipeline: transactions in, fitted models, predictions and report content out.

Stages (each logged with its time): **read** (validate the log, find its period),
**summarize** (RFM table, segments, repeat-purchase days), **fit** the transaction model
(``--model``: BG/NBD by default, any family of the registry by its short name) and the
Gamma-Gamma model, with ``--compare`` also the other transaction models, **compare**
them (PSIS-LOO, holdout errors and totals), **score** the customers (CLV over
the horizon; with a holdout, the purchases over the holdout window and the holdout
validation) and **analyse** (the CRM tables: one call each of :mod:`clvbayes.analyses`
and :mod:`clvbayes.segments`).

Without a value column (``value_col=None``: a log of visits, or orders without amounts)
there is no spend model and no CLV: the report gives P(alive), purchases and their
intervals, and leaves out what needs CLV (order value, value tiers, the at-risk list,
CLV:CAC; ``customers.csv`` has no value or CLV columns).

The log may be a frame, a CSV or Parquet file or a :class:`clvbayes.Database` (a
PostgreSQL or DuckDB table or query); :func:`source_arguments` is what ``summary.json``
records of it, so that ``clvbayes report --config summary.json`` runs the report again.

:func:`build_report` returns a :class:`Report`; :func:`write_report` renders and writes
it (``index.html``, ``customers.csv``, ``posterior.nc``, ``summary.json``).

Every random step gets its own seed spawned from ``ReportOptions.seed``, so the same
options and data give the same numbers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.analyses import (
    at_risk,
    average_order_value,
    lapse_risk,
    p_alive_thresholds,
    retention_curve,
    value_tiers,
)
from clvbayes.covariates import covariate_effects
from clvbayes.report.content import CUSTOMER_COLUMNS, ReportContent, build_content
from clvbayes.segments import (
    check_acquisition_costs,
    clv_cac,
    segment_contrasts,
    segment_summary,
)

__all__ = [
    "CalendarSection",
    "Comparison",
    "Report",
    "ReportOptions",
    "build_report",
    "source_arguments",
]

Log = Callable[[str], None]


@dataclass(frozen=True)
class ReportOptions:
    """What the report is built from (the command line's options).

    Attributes
    ----------
    customer_col, date_col : str
        Columns of the transaction log.
    value_col : str, optional
        Transaction value column. Without it there is no CLV: the report gives P(alive)
        and purchases (a log of visits, or orders without amounts).
    calibration_end : str, optional
        Last day of the calibration period (default: the last transaction day).
    holdout_end : str, optional
        Last day of the holdout period: adds the holdout validation.
    segment_col : str, optional
        Segment column; a customer's segment is the one of their first transaction.
    time_unit : {"D", "W", "M", "Q", "Y"}
        Model time unit (:mod:`clvbayes.math.units`).
    horizon : float
        CLV horizon, in ``time_unit``.
    annual_discount : float
        Annual effective discount rate.
    margin : float
        Profit margin applied to spend.
    draws, tune, chains : int
        Posterior draws per chain, tuning steps and chains of each fit; the predictions
        use ``draws`` posterior draws in all (thinned evenly over the chains). ``tune``
        None: the models' default (1,000; 600 with ``--time-effects``; partially pooled
        segment fits: :func:`clvbayes.models.hierarchy.partial_sampler_defaults`).
    seed : int
        Seed of everything random.
    method : {"nuts", "map", "advi", "pathfinder"}
        Inference method.
    cac : float or mapping of str to float, optional
        Acquisition cost per customer, one number or one per segment.
    model : str
        The transaction model, by its family's short name
        (:func:`clvbayes.math.family.model_names`: ``"bgnbd"``, ``"mbgnbd"``,
        ``"pareto-nbd"``); ``customers.csv`` and the analyses come from it.
    compare : bool
        Also fit the other transaction models on the same calibration data and compare
        them (PSIS-LOO with posterior draws; holdout errors and totals with a holdout).
        With ``time_effects`` the others are stationary, the chosen model's own
        stationary fit among them (key ``"<model>_stationary"``).
    lapse_window : float, optional
        Window of "who is likely to lapse" (no purchase in the next ``lapse_window``
        time units; default a quarter of the horizon).
    customer_table : str, optional
        A CSV or Parquet file with one row per customer: the customer column and static
        columns (gender, channel, region, ...) to use as ``covariates``.
    time_effects : bool
        Fit the transaction model (BG/NBD or MBG/NBD) with calendar-time effects
        (:class:`clvbayes.TimeEffects`, the default process) on the log's calendar
        (:func:`clvbayes.calendar_rfm`): a common weekly multiplier of every active
        customer's purchase rate, estimated and forecast. The report adds the multipliers
        with bands, the weekly tracking plot and whether the holdout total is inside its
        interval.
    calendar_covariates : str, optional
        With ``time_effects``: a CSV or Parquet file of known calendar covariates, one row
        per period (first column: a date in the period, e.g. its start; the others numeric, e.g. a
        holiday or promotion dummy), covering the calibration periods and the forecast's.
    covariates : tuple of str
        Numeric customer-level columns (of ``customer_table``, else of the transaction
        log, where each must be constant within a customer) that scale each customer's
        purchase rate and dropout (BG/NBD) and spend (Gamma-Gamma); the report adds a
        covariate-effects section.
    """

    customer_col: str
    date_col: str
    value_col: str | None = None
    calibration_end: str | None = None
    holdout_end: str | None = None
    segment_col: str | None = None
    time_unit: str = "W"
    horizon: float = 52.0
    annual_discount: float = 0.10
    margin: float = 1.0
    draws: int = 1000
    tune: int | None = None
    chains: int = 4
    seed: int = 0
    method: str = "nuts"
    cac: float | Mapping[str, float] | None = None
    model: str = "bgnbd"
    compare: bool = False
    lapse_window: float | None = None
    customer_table: str | None = None
    covariates: tuple[str, ...] = ()
    time_effects: bool = False
    calendar_covariates: str | None = None

    @property
    def window(self) -> float:
        """The lapse window: :attr:`lapse_window`, or a quarter of the horizon."""
        return self.horizon / 4.0 if self.lapse_window is None else float(self.lapse_window)

    def check(self) -> None:
        """Raise ``ValueError`` on an impossible option, naming it as the command line
        does (``--tune 0``): the sampler settings
        (:func:`clvbayes.inference.check_sampler_settings`) and the prediction options
        (:class:`~clvbayes.predict.options.PredictOptions`: e.g. ``--margin`` in (0, 1])."""
        from clvbayes.inference import check_sampler_settings
        from clvbayes.math.units import check_time_unit

        check_time_unit(self.time_unit, "--time-unit")
        self._check_models()
        check_sampler_settings(method=self.method, draws=self.draws, tune=self.tune,
                               chains=self.chains, seed=self.seed, cli=True)  # fmt: skip
        if not (math.isfinite(self.horizon) and self.horizon > 0):
            raise ValueError(f"--horizon {self.horizon}: must be a positive number of periods.")
        try:
            self.predict_options()
        except ValueError as error:  # name the option as the command line does
            message = str(error)
            for name in ("annual_discount", "margin"):
                if message.startswith(name):
                    message = f"--{name.replace('_', '-')}{message[len(name) :]}"
            raise ValueError(message) from None
        if self.lapse_window is not None and not self.lapse_window > 0:
            raise ValueError(f"--lapse-window must be positive, got {self.lapse_window}.")
        if self.cac is not None and self.value_col is None:
            raise ValueError(
                "--cac needs --value-col: CLV:CAC compares the CLV with the acquisition "
                "cost, and CLV needs a value column."
            )
        if self.cac is not None:  # checked before fitting, not after
            check_acquisition_costs(self.cac, "--cac")

    def _check_models(self) -> None:
        from clvbayes.math.family import model_names

        names = model_names()
        if self.model not in names:
            raise ValueError(f"--model {self.model!r}: use one of {sorted(names)}.")
        if self.segment_col is not None and not _poolable(self.model):
            label = _family_label(self.model)
            usable = [n for n in sorted(names) if _poolable(n)]
            raise ValueError(
                f"--model {self.model} cannot be fitted per segment yet (the {label} has no "
                f"partial pooling): leave out --segment-col or use --model {' or '.join(usable)}."
            )
        if self.compare and self.holdout_end is None and self.method == "map":
            raise ValueError(
                "--compare needs --holdout-end (holdout errors and totals) or a sampling "
                "--method such as nuts (PSIS-LOO): point estimates without a holdout have "
                "nothing to compare."
            )
        if self.customer_table is not None and not self.covariates:
            raise ValueError(
                "--customer-table needs --covariates: name the columns to use, e.g. "
                "--covariates gender,channel."
            )
        if len(set(self.covariates)) != len(self.covariates) or "" in self.covariates:
            raise ValueError(f"--covariates {','.join(self.covariates)}: name each column once.")
        self._check_time_effects()

    def _check_time_effects(self) -> None:
        if self.calendar_covariates is not None and not self.time_effects:
            raise ValueError(
                "--calendar-covariates needs --time-effects: the covariates enter the "
                "calendar-time effects."
            )
        if not self.time_effects:
            return
        if self.model not in TIME_EFFECT_MODELS:
            raise ValueError(
                f"--time-effects with --model {self.model}: calendar-time effects are a change "
                "of clock, exact for models whose customers drop out at purchases; use "
                f"--model {' or '.join(TIME_EFFECT_MODELS)}."
            )
        if self.time_unit not in ("W", "D"):
            raise ValueError(
                f"--time-effects needs --time-unit W or D (a calendar of whole-day periods), "
                f"got {self.time_unit!r}."
            )

    def predict_options(self) -> Any:
        """The :class:`~clvbayes.predict.options.PredictOptions` of the report's scoring
        (the same object :func:`clvbayes.predict_customers` and
        :func:`clvbayes.validate_holdout` take): discounting, margin, the top-10 % share
        and ``draws`` posterior draws."""
        from clvbayes.predict import PredictOptions

        return PredictOptions(
            time_unit=self.time_unit,
            annual_discount=self.annual_discount,
            margin=self.margin,
            top=(0.1,),
            n_draws=self.draws,
        )


@dataclass(frozen=True, eq=False)
class Report:
    """A built report: its content, the fitted models and how long each stage took.

    Attributes
    ----------
    options : ReportOptions
    content : ReportContent
        Everything the page shows, as tidy frames (see :mod:`clvbayes.report.content`).
    fits : dict of str to FittedModel
        The transaction model under its short name (``options.model``, e.g. ``"bgnbd"``),
        ``"gamma_gamma"`` (not without a value column), and with ``--compare`` the other
        transaction models.
    source : str
        What the transactions were (a path, or a description of a frame).
    timings : dict of str to float
        Seconds per stage.
    """

    options: ReportOptions
    content: ReportContent
    fits: dict[str, Any]
    source: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def customers(self) -> pd.DataFrame:
        """The per-customer table (``customers.csv``)."""
        return self.content.customers


class _Stages:
    """Times each stage, logs a line when it starts and ends, and keeps clvbayes's
    warnings (for ``summary.json``), passing each on when its stage ends."""

    def __init__(self, log: Log | None) -> None:
        self.log = log
        self.timings: dict[str, float] = {}
        self.start = time.perf_counter()
        self.warnings: list[str] = []

    def say(self, text: str) -> None:
        if self.log is not None:
            self.log(f"[{time.perf_counter() - self.start:7.1f}s] {text}")

    @contextmanager
    def __call__(self, name: str, detail: str = "") -> Iterator[None]:
        self.say(f"{name}{': ' + detail if detail else ''} ...")
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # every run records the same warnings
            yield
        for w in caught:
            if _reported(w) and str(w.message) not in self.warnings:
                self.warnings.append(str(w.message))
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        seconds = time.perf_counter() - t0
        self.timings[name] = round(self.timings.get(name, 0.0) + seconds, 3)
        self.say(f"{name} done in {seconds:.1f} s")


_PACKAGE = Path(__file__).resolve().parents[1]


def _reported(record: warnings.WarningMessage) -> bool:
    """Whether a warning belongs in ``summary.json``'s ``warnings``: clvbayes's own
    (issued from its code, or of a clvbayes warning class, which may name the caller's
    line), except convergence warnings (the report's ``problems``)."""
    from clvbayes.diagnostics import ConvergenceWarning

    if issubclass(record.category, ConvergenceWarning):
        return False
    if record.category.__module__.startswith("clvbayes."):  # e.g. CalendarWarning
        return True
    return Path(record.filename).resolve().is_relative_to(_PACKAGE)


def stderr_log(line: str) -> None:
    """Write one progress line to standard error."""
    print(line, file=sys.stderr, flush=True)


def _seeds(seed: int, n: int) -> list[int]:
    """``n`` independent integer seeds from one."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def source_arguments(transactions: Any) -> dict[str, Any]:
    """What ``summary.json`` records of the log, to be read back by ``--config``.

    ``transactions``: a file's path as given, a database's URL without its password (see
    :meth:`clvbayes.Database.arguments`), None for a frame; ``table`` and ``query``.
    """
    from clvbayes.data.database import Database

    if isinstance(transactions, Database):
        return transactions.arguments()
    path = str(transactions) if isinstance(transactions, str | Path) else None
    return {"transactions": path, "table": None, "query": None}


def _scan(transactions: Any, options: ReportOptions) -> dict[str, Any]:
    """Validate the log (same checks as ``rfm_summary``, and that the segment column
    exists); counts and first/last day."""
    from clvbayes.data.source import open_source
    from clvbayes.data.validate import checked_scan

    segment = [] if options.segment_col is None else [("segment_col", options.segment_col)]
    with open_source(
        transactions,
        customer_col=options.customer_col,
        date_col=options.date_col,
        value_col=options.value_col,
        other_cols=segment,
    ) as source:
        return checked_scan(source)


def _customer_segments(
    transactions: Any, options: ReportOptions, calibration_end: dt.date
) -> pd.DataFrame:
    """Each customer's segment: the segment of their first transaction."""
    from clvbayes.data.rfm import first_purchase_values

    return first_purchase_values(
        transactions,
        customer_col=options.customer_col,
        date_col=options.date_col,
        columns=[options.segment_col],
        calibration_end=calibration_end,
        argument="segment_col",
    ).rename(columns={options.segment_col: "segment"})


def _drop_new_customers(rfm: pd.DataFrame, calibration_end: dt.date) -> pd.DataFrame:
    """The RFM rows with ``T > 0``: customers acquired on the calibration end's day have
    ``T = 0`` and nothing for the models to learn from yet (a warning counts them)."""
    new = rfm["T"].to_numpy() <= 0
    if not new.any():
        return rfm
    warnings.warn(
        f"{int(new.sum()):,} of {len(rfm):,} customers made their first purchase on the "
        f"calibration end ({calibration_end}), so T = 0 and there is nothing to learn from "
        "them yet; the report leaves them out of the models and of customers.csv.",
        UserWarning,
        stacklevel=3,
    )
    return rfm.loc[~new].reset_index(drop=True)


TIME_EFFECT_MODELS = ("bgnbd", "mbgnbd")
"""The transaction models ``--time-effects`` works with."""

SEGMENT = "segment"
"""Column of the RFM table holding each customer's segment (``--segment-col``)."""


STATIONARY = "_stationary"
"""Suffix of the ``--compare`` key of the chosen model fitted without ``--time-effects``
(``"bgnbd_stationary"``)."""


def _family_named(name: str) -> Any:
    """The registered family of the transaction model ``name`` (``"bgnbd"``, ...; a
    ``"bgnbd_stationary"`` key is its family's)."""
    from clvbayes.math.family import family, model_names

    return family(model_names()[name.removesuffix(STATIONARY)])


def _poolable(name: str) -> bool:
    """Whether the transaction model ``name`` can be fitted per segment (partial pooling)."""
    return _family_named(name).reparametrisation is not None


def _read_side_table(path: Path, option: str) -> pd.DataFrame:
    """A CSV or Parquet file given by ``option`` (by its extension), or a one-line error."""
    if not path.is_file():
        raise ValueError(f"{option} {path}: no such file.")
    return pd.read_parquet(path) if path.name.lower().endswith(".parquet") else pd.read_csv(path)


def read_customer_table(path: str | Path, customer_col: str, columns: tuple[str, ...]) -> Any:
    """``--customer-table``: the customer column ``customer_col`` and ``columns`` of the
    file.

    Raises
    ------
    ValueError
        For a missing file or column.
    """
    path = Path(path)
    table = _read_side_table(path, "--customer-table")
    missing = [c for c in (customer_col, *columns) if c not in table.columns]
    if missing:
        raise ValueError(
            f"--customer-table {path}: column(s) {missing} not found (columns: "
            f"{list(table.columns)}); it needs the customer column {customer_col!r} and the "
            "--covariates columns."
        )
    return table[[customer_col, *columns]]


def _with_customer_table(rfm: pd.DataFrame, options: ReportOptions) -> pd.DataFrame:
    """The RFM table with the ``--covariates`` columns of ``--customer-table``, one row
    per customer; every customer must be in the table
    (:func:`clvbayes.data.rfm.join_customer_table`)."""
    from clvbayes.data.rfm import join_customer_table

    table = read_customer_table(options.customer_table, options.customer_col, options.covariates)
    return join_customer_table(
        rfm, table, options.customer_col, source=f"--customer-table {options.customer_table}"
    )


def _fit_transaction_model(
    rfm: pd.DataFrame, segmented: bool, options: ReportOptions, seed: int, quiet: bool, name: str
) -> Any:
    """Fit the transaction model ``name`` (a family's short name): with segments,
    partially pooled (each segment its own parameters under a hierarchical prior, e.g.
    :class:`clvbayes.BGNBD` ``segments=``); else one population; with ``--covariates`` on
    the purchase rate and the dropout."""
    from clvbayes.models import spec_named

    covariates = list(options.covariates) or None
    options_: dict[str, Any] = {"segments": SEGMENT} if segmented else {}
    if covariates:
        options_.update(purchase_covariates=covariates, dropout_covariates=covariates)
    if options.time_effects and name == options.model:  # --compare's others: stationary
        options_["time_effects"] = _time_effects(options)
    spec = spec_named(name.removesuffix(STATIONARY))(**options_)
    return spec.fit(rfm, **_fit_kwargs(options, seed, quiet))


def _family_label(name: str) -> str:
    """The display name of the transaction model ``name`` (``"bgnbd"`` -> ``"BG/NBD"``,
    ``"bgnbd_stationary"`` -> ``"BG/NBD, stationary"``)."""
    label = _family_named(name).label
    return f"{label}, stationary" if name.endswith(STATIONARY) else label


def _alternatives(options: ReportOptions, segmented: bool) -> tuple[list[str], list[str]]:
    """With ``--compare``: the other transaction models to fit, and those that cannot be
    (no partial pooling, with segments)."""
    from clvbayes.math.family import model_names

    if not options.compare:
        return [], []
    others = [n for n in sorted(model_names()) if n != options.model]
    if options.time_effects:  # the chosen model without them first, then the others
        others.insert(0, options.model + STATIONARY)
    usable = [n for n in others if not segmented or _poolable(n)]
    return usable, [n for n in others if n not in usable]


@dataclass(frozen=True, eq=False)
class Comparison:
    """The ``--compare`` section: one row per model and what could not be compared.

    Attributes
    ----------
    table : DataFrame
        :func:`clvbayes.comparison.comparison_table` (indexed by model name) with ``label``
        and ``chosen`` columns.
    notes : tuple of str
        Models left out, a missing LOO or holdout, Pareto-k warnings.
    """

    table: pd.DataFrame
    notes: tuple[str, ...]


def _compare(
    data: _Data, fits: dict[str, Any], names: list[str], skipped: list[str],
    options: ReportOptions, seed: int, chosen_seed: int, progressbar: bool = False,
) -> Comparison:  # fmt: skip
    """PSIS-LOO (with posterior draws) and holdout errors and totals (with a holdout) of the
    transaction models ``names``, fitted on the same calibration data (``progressbar``:
    the holdout predictions' bars, off with ``--quiet``). The chosen model's holdout is
    simulated with ``chosen_seed``, the holdout section's seed, so both show the same
    interval; the others' with seeds spawned from ``seed``."""
    from clvbayes.comparison import compare, comparison_table, holdout_comparison

    models = {n: fits[n] for n in names}
    notes = [
        f"{_family_label(n)}: not compared, it cannot be fitted per segment yet." for n in skipped
    ]
    sampled = all(f.n_posterior_draws > 1 for f in models.values())
    compared = holdout = None
    if sampled:
        compared = compare(models)
        notes += list(compared.warnings)
    else:
        notes.append(
            f"PSIS-LOO needs posterior draws; method={options.method!r} gives point "
            "estimates, so the models are compared on the holdout only."
        )
    if data.holdout_end is not None:
        predict = options.predict_options().replace(progressbar=progressbar)
        seeds = dict(zip(names, _seeds(seed, len(names)), strict=True))
        seeds[options.model] = chosen_seed
        holdout = holdout_comparison(models, data.transaction_data, seed=seeds, options=predict)
    else:
        notes.append("Without --holdout-end the models are compared by PSIS-LOO only.")
    table = comparison_table(compared, holdout)
    labels = {n: _family_label(n) for n in table.index}
    if options.time_effects:
        labels[options.model] += ", calendar-time effects"
    table.insert(0, "label", [labels[n] for n in table.index])
    table.insert(1, "chosen", [n == options.model for n in table.index])
    return Comparison(table, tuple(notes))


def _fit_spend_model(
    rfm: pd.DataFrame, segmented: bool, options: ReportOptions, seed: int, quiet: bool
) -> Any:
    """Fit the Gamma-Gamma spend model, partially pooled over the segments if any, with
    ``--covariates`` on the spend."""
    from clvbayes.models import GammaGamma

    segments = {"segments": SEGMENT} if segmented else {}
    spec = GammaGamma(**segments, spend_covariates=list(options.covariates) or None)
    return spec.fit(rfm, **_fit_kwargs(options, seed, quiet))


def _time_effects(options: ReportOptions) -> Any:
    """``--time-effects``: the default process, with ``--calendar-covariates`` if given."""
    from clvbayes.models import TimeEffects

    if options.calendar_covariates is None:
        return TimeEffects()
    covariates = read_calendar_covariates(options.calendar_covariates)
    with _naming_calendar_file(options, everything=True):
        return TimeEffects(covariates=covariates)


@contextmanager
def _naming_calendar_file(
    options: ReportOptions, note: str = "", *, everything: bool = False
) -> Iterator[None]:
    """Prefix a ValueError about the calendar covariates (any, with ``everything``) with
    the ``--calendar-covariates`` file it came from, and ``note``."""
    try:
        yield
    except ValueError as error:
        text = str(error)
        if options.calendar_covariates is None or text.startswith("--calendar-covariates"):
            raise
        if not (everything or "calendar covariate" in text):
            raise
        raise ValueError(
            f"--calendar-covariates {options.calendar_covariates}: {text}{note}"
        ) from None


def _fit_kwargs(options: ReportOptions, seed: int, quiet: bool) -> dict[str, Any]:
    return {
        "method": options.method,
        "draws": options.draws,
        "tune": options.tune,
        "chains": options.chains,
        "seed": seed,
        "progressbar": not quiet and sys.stderr.isatty(),
    }


def _fingerprint(rfm: pd.DataFrame) -> str:
    """SHA-256 (first 16 hex digits) of the RFM table as CSV."""
    return hashlib.sha256(rfm.to_csv(index=False).encode()).hexdigest()[:16]


def _customer_table(
    rfm: pd.DataFrame,
    segments: pd.Series | None,
    horizon_summary: pd.DataFrame,
    holdout_summary: pd.DataFrame | None,
) -> pd.DataFrame:
    """``customers.csv``: the column contract of the issue, in its order."""
    purchases = holdout_summary if holdout_summary is not None else horizon_summary
    table = pd.DataFrame({"customer_id": rfm["customer_id"].to_numpy()})
    if segments is not None:
        table["segment"] = segments.to_numpy()
    for col in ("frequency", "recency", "T", "monetary_value"):
        if col in rfm:  # monetary_value: with a value column
            table[col] = rfm[col].to_numpy()
    table["p_alive"] = horizon_summary["p_alive"].to_numpy()
    for col in ("expected_purchases", "purchases_q05", "purchases_q50", "purchases_q95"):
        table[col] = purchases[col].to_numpy()
    if "clv_mean" in horizon_summary:  # with a spend model (a value column)
        for col in ("clv_mean", "clv_sd", "clv_q05", "clv_q50", "clv_q95"):
            table[col] = horizon_summary[col].to_numpy()
        table["p_top_decile"] = horizon_summary["p_top_10pct"].to_numpy()
    if holdout_summary is not None:
        for col in ("holdout_frequency", "holdout_value"):
            if col in rfm:
                table[col] = rfm[col].to_numpy()
    expected = [c for c in CUSTOMER_COLUMNS if c in table.columns]
    assert list(table.columns) == expected, (list(table.columns), expected)
    return table


@dataclass(frozen=True, eq=False)
class _Data:
    """What the read and summarize stages found: the period, the RFM table and the
    customers' segments (``model_rfm`` is the models' view: the RFM table with the
    segment column)."""

    scan: dict[str, Any]
    calibration_end: dt.date
    holdout_end: dt.date | None
    rfm: pd.DataFrame
    segments: pd.Series | None
    repeat_times: pd.Series | None
    calendar: Any = None

    @property
    def transaction_data(self) -> Any:
        """What the transaction model is fitted to and scored on: the calendar
        (:class:`clvbayes.data.calendar.CalendarRFM`) with ``--time-effects``, else
        :attr:`model_rfm`."""
        return self.model_rfm if self.calendar is None else self.calendar

    @property
    def model_rfm(self) -> pd.DataFrame:
        if self.segments is None:
            return self.rfm
        return self.rfm.assign(**{SEGMENT: self.segments.to_numpy()})

    @property
    def segment_values(self) -> np.ndarray | None:
        return None if self.segments is None else self.segments.to_numpy()


def _period(scan: dict[str, Any], options: ReportOptions) -> tuple[dt.date, dt.date | None]:
    """The calibration end and holdout end, checked against the log's dates."""
    from clvbayes.data.period import check_period, parse_day, past_data
    from clvbayes.math.units import check_time_unit

    cal = (
        scan["last_day"]
        if options.calibration_end is None
        else parse_day(options.calibration_end, "--calibration-end")
    )
    obs = None
    if options.holdout_end is not None:
        obs = parse_day(options.holdout_end, "--holdout-end")
        check_period(cal, obs)
        if obs == cal:
            raise ValueError(
                f"--holdout-end {obs} equals --calibration-end: the holdout would be "
                "empty; pass a later --holdout-end or leave it out."
            )
    if cal > scan["last_day"] or cal < scan["first_day"]:
        raise ValueError(
            f"--calibration-end {cal} is outside the data ({scan['first_day']} to "
            f"{scan['last_day']}); pass a date inside that range."
        )
    if obs is not None:
        late = past_data("--holdout-end", obs, scan["last_day"], check_time_unit(options.time_unit))
        if late is not None:
            raise ValueError(
                f"{late}: the holdout validation would compare the predictions with "
                "purchases the log cannot contain; pass a --holdout-end on or before "
                f"{scan['last_day']}."
            )
    return cal, obs


def _summarize(
    transactions: Any, options: ReportOptions, scan: dict[str, Any], cal: Any, obs: Any
) -> _Data:
    """The RFM table, each customer's segment and the repeat-purchase days."""
    from clvbayes.data.rfm import repeat_purchase_times, rfm_summary

    columns = {"customer_col": options.customer_col, "date_col": options.date_col}
    from_log = options.covariates if options.customer_table is None else ()
    rfm = rfm_summary(
        transactions,
        **columns,
        value_col=options.value_col,
        calibration_end=cal,
        observation_end=obs,
        time_unit=options.time_unit,
        customer_cols=from_log,
    )
    if options.customer_table is not None:
        rfm = _with_customer_table(rfm, options)
    rfm = _drop_new_customers(rfm, cal)
    segments = None
    if options.segment_col is not None:
        seg = _customer_segments(transactions, options, cal)
        segments = (
            rfm[["customer_id"]]
            .merge(seg, on="customer_id", how="left", validate="one_to_one")["segment"]
            .astype(str)
        )
    repeat_times = None
    if obs is not None:
        repeat_times = repeat_purchase_times(
            transactions,
            **columns,
            calibration_end=cal,
            observation_end=obs,
            time_unit=options.time_unit,
            customers=rfm["customer_id"],
        )
    if int((rfm["frequency"] > 0).sum()) == 0:
        raise ValueError(
            f"none of the {len(rfm)} customers made a repeat purchase by {cal}; the "
            "models need repeat buyers: pass a later --calibration-end."
        )
    data = _Data(scan, cal, obs, rfm, segments, repeat_times)
    if options.time_effects:
        calendar = _calendar_data(transactions, options, cal, obs, rfm)
        model_columns = ["customer_id", *options.covariates]
        if segments is not None:
            model_columns.append(SEGMENT)
        if len(model_columns) > 1:
            calendar = calendar.with_customer_columns(data.model_rfm[model_columns])
        data = replace(data, calendar=calendar)
    return data


def _calendar_data(
    transactions: Any, options: ReportOptions, cal: Any, obs: Any, rfm: pd.DataFrame
) -> Any:
    """The log's calendar (:func:`clvbayes.calendar_rfm`) for the customers of ``rfm``, in
    its order (the RFM columns only: the caller adds covariates and segments)."""
    from clvbayes.data.calendar import calendar_rfm

    data = calendar_rfm(
        transactions,
        customer_col=options.customer_col,
        date_col=options.date_col,
        value_col=options.value_col,
        calibration_end=cal,
        observation_end=obs,
        time_unit=options.time_unit,
    )
    position = pd.Index(data.customers["customer_id"]).get_indexer(rfm["customer_id"])
    missing = rfm["customer_id"].to_numpy()[position < 0].tolist()
    if len(missing):  # get_indexer's -1 would silently select the last customer
        raise ValueError(
            f"--time-effects: {len(missing)} customers of the summary are not in the log's "
            f"calendar (e.g. {missing[0]!r}); both are read from the same transactions, so "
            "this is a bug: please report it with the command."
        )
    return data.select(position)


def read_calendar_covariates(path: str | Path) -> pd.DataFrame:
    """``--calendar-covariates``: known covariates per calendar period, indexed by a
    date in the period (the file's first column), every other column numeric.

    Raises
    ------
    ValueError
        For a missing file, a first column that is not dates, or a non-numeric column.
    """
    path = Path(path)
    table = _read_side_table(path, "--calendar-covariates")
    if table.shape[1] < 2:
        raise ValueError(
            f"--calendar-covariates {path}: expected a period-start column and at least one "
            f"covariate column, got columns {list(table.columns)}."
        )
    first = table.columns[0]
    try:
        index = pd.DatetimeIndex(pd.to_datetime(table[first], format="ISO8601"))
    except (ValueError, TypeError):
        raise ValueError(
            f"--calendar-covariates {path}: the first column {first!r} must hold each "
            f"period's date (YYYY-MM-DD, e.g. its start), and {str(table[first].iloc[0])!r} "
            "is not a date."
        ) from None
    values = table.drop(columns=first)
    text = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
    if text:
        raise ValueError(
            f"--calendar-covariates {path}: column(s) {text} are not numeric; give numbers "
            "(0/1 for a holiday or promotion)."
        )
    return values.set_axis(index.rename("period")).astype(float)


def _score(
    data: _Data,
    fits: dict[str, Any],
    options: ReportOptions,
    seeds: dict[str, int],
    progressbar: bool = False,
) -> tuple[Any, Any, Any, Any]:
    """CLV over the horizon; with a holdout, its validation and the tracking curve; with
    ``--time-effects``, the calendar section (:class:`CalendarSection`)."""
    from clvbayes.ppc import tracking_curve
    from clvbayes.predict import predict_customers, validate_holdout

    predict = options.predict_options().replace(progressbar=progressbar)
    tx = data.transaction_data
    spend_fit = fits.get("gamma_gamma")
    fit = fits[options.model]
    horizon = predict_customers(
        fit,
        tx,
        horizon=options.horizon,
        spend_fit=spend_fit,
        seed=seeds["horizon"],
        options=predict,
        keep_draws=("p_alive", "clv") if spend_fit is not None else ("p_alive",),
    )
    holdout = tracking = None
    if data.holdout_end is not None:
        holdout = validate_holdout(
            fit,
            tx,
            spend_fit=spend_fit,
            seed=seeds["validate"],
            options=predict,
        )
        tracking = tracking_curve(
            fit, tx, actual=data.repeat_times, n_draws=200, seed=seeds["tracking"]
        )  # the seed draws the future calendar of a fit with time effects
    calendar = None
    if data.calendar is not None:
        calendar = _calendar_section(data, fit, options, seeds["calendar"], holdout)
    return horizon, holdout, tracking, calendar


@dataclass(frozen=True, eq=False)
class CalendarSection:
    """The ``--time-effects`` section of a report.

    Attributes
    ----------
    multipliers : DataFrame
        :func:`clvbayes.calendar_multipliers` over calibration and the horizon.
    periods : DataFrame
        :func:`clvbayes.period_tracking`: repeat purchases per period, actual against
        predicted with 90 % bands.
    verdict : str
        In words: whether the holdout total of repeat purchases falls inside its 90 %
        predictive interval (or that there is no holdout).
    holdout_inside : bool or None
        The same as a flag (None without a holdout).
    """

    multipliers: pd.DataFrame
    periods: pd.DataFrame
    verdict: str
    holdout_inside: bool | None


def _calendar_section(
    data: _Data, fit: Any, options: ReportOptions, seed: int, holdout: Any
) -> CalendarSection:
    """The multipliers, the weekly tracking table and the holdout verdict."""
    from clvbayes.ppc import period_tracking
    from clvbayes.predict.calendar import calendar_multipliers

    multipliers = calendar_multipliers(fit, horizon=options.horizon, n_draws=200, seed=seed)
    periods = period_tracking(fit, data.calendar, n_draws=200, seed=seed)
    if holdout is None:
        return CalendarSection(
            multipliers, periods, "Without --holdout-end there is no holdout total to check.", None
        )
    totals = holdout.totals.set_index("quantity")
    row = totals.loc["purchases"]
    inside = bool(row["in_interval"])
    where = "inside" if inside else ("below" if row["actual"] < row["predicted_q05"] else "above")
    verdict = (
        f"The actual holdout total of repeat purchases, {row['actual']:,.0f}, is {where} the "
        f"90% predictive interval of the model with calendar-time effects "
        f"({row['predicted_q05']:,.0f} to {row['predicted_q95']:,.0f}, mean "
        f"{row['predicted_mean']:,.0f}); {row['p_below']:.0%} of the predictive distribution "
        "lies below it."
    )
    return CalendarSection(multipliers, periods, verdict, inside)


def _analyse(
    data: _Data,
    fits: dict[str, Any],
    scored: tuple[Any, Any, Any],
    options: ReportOptions,
    seeds: dict[str, int],
    source: str,
    arguments: dict[str, Any],
    comparison: Comparison | None = None,
    progressbar: bool = False,
) -> ReportContent:
    """The CRM analyses (one library call each) and the report's content (those that
    need CLV only with a spend model)."""
    from clvbayes.progress import progress_bar

    horizon, holdout, tracking, calendar = scored
    steps = progress_bar(4, desc="analyse", unit="analyses", unit_scale=False, enabled=progressbar)
    model_rfm, seg_values = data.model_rfm, data.segment_values
    fit = fits[options.model]
    holdout_summary = None if holdout is None else holdout.predictions
    customers = _customer_table(data.rfm, data.segments, horizon.summary, holdout_summary)
    step = max(options.horizon / 26.0, 1.0)
    times = np.unique(np.append(np.arange(0.0, options.horizon, step), options.horizon))
    retention = retention_curve(
        fit,
        data.transaction_data,
        times=times,
        segments=seg_values,
        n_draws=min(options.draws, 200),
        seed=seeds["retention"],
    )
    steps.update(1)
    valued = "gamma_gamma" in fits
    order_value = tiers = risky = segment_table = contrasts = cac = None
    if valued:
        order_value = average_order_value(
            fits["gamma_gamma"], model_rfm, segments=seg_values, n_draws=options.draws
        )
        tiers, risky = value_tiers(horizon), at_risk(horizon, model_rfm)
    steps.update(1)
    if seg_values is not None:
        variables = ("clv", "p_alive") if valued else ("p_alive",)
        segment_table = segment_summary(horizon, seg_values, variables=variables)
        if valued:
            contrasts = segment_contrasts(horizon, seg_values)
    if options.cac is not None:
        cac = clv_cac(horizon, options.cac, segments=seg_values)
    steps.update(1)
    lapse = lapse_risk(
        fit,
        data.transaction_data,
        window=options.window,
        result=horizon if valued else None,
        n_draws=min(options.draws, 200),
        seed=seeds["retention"],
    )
    steps.update(1)
    steps.close()
    effects = None
    if options.covariates:
        effects = covariate_effects(
            fit,
            fits.get("gamma_gamma"),
            time_unit=options.time_unit,
            annual_discount=options.annual_discount,
            margin=options.margin,
            reference=_reference(data, fits, options),
        )
    return build_content(
        options=arguments,
        source=source,
        scan=data.scan,
        calibration_end=data.calibration_end,
        holdout_end=data.holdout_end,
        rfm=data.rfm,
        fits=fits,
        customers=customers,
        fingerprint=_fingerprint(data.rfm),
        retention=retention,
        order_value=order_value,
        tiers=tiers,
        at_risk=risky,
        lapse=lapse,
        thresholds=p_alive_thresholds(horizon),
        comparison=comparison,
        segments=segment_table,
        contrasts=contrasts,
        cac=cac,
        holdout=holdout,
        tracking=tracking,
        covariate_effects=effects,
        calendar=calendar,
    )


def _reference(data: _Data, fits: dict[str, Any], options: ReportOptions) -> dict[str, Any]:
    """The typical customer of the covariate effects: the covariates' means (and, with
    segments, the largest segment)."""
    reference: dict[str, Any] = {c: float(data.rfm[c].mean()) for c in options.covariates}
    if data.segments is not None:
        reference[SEGMENT] = str(data.segments.value_counts().idxmax())
    return reference


def build_report(
    transactions: Any,
    options: ReportOptions,
    *,
    log: Log | None = stderr_log,
    source: str | None = None,
) -> Report:
    """Run the whole pipeline on a transaction log.

    Parameters
    ----------
    transactions : str, Path, DataFrame or Database
        A CSV or Parquet path (read in place by DuckDB), a frame, or a
        :class:`clvbayes.Database` (a PostgreSQL or DuckDB table or query), one row per
        transaction. Not modified.
    options : ReportOptions
        Columns, periods, model and prediction settings.
    log : callable, optional
        Receives one progress line per stage start and end (None: silent: no lines and
        no progress bars). Otherwise the fits show the sampler's bar on a terminal and
        the scoring a bar of customers (:mod:`clvbayes.progress`).
    source : str, optional
        How to describe the data in the report (default: the path, or the frame's type).

    Returns
    -------
    Report

    Raises
    ------
    ValueError, TypeError, FileNotFoundError
        On bad options or data, with a message naming the column or option and the fix.
    """
    options.check()
    stage = _Stages(log)
    quiet = log is None
    if source is None:
        source = str(transactions) if isinstance(transactions, str | Path) else "a data frame"
        source = getattr(transactions, "description", source)  # a Database (no password)
    arguments = {**source_arguments(transactions), **asdict(options)}
    # one seed per random step; new steps go at the end (the earlier seeds stay as they are)
    names = ("bgnbd", "spend", "horizon", "holdout", "validate", "tracking", "retention")
    seeds = dict(
        zip((*names, "compare", "calendar"), _seeds(options.seed, len(names) + 2), strict=True)
    )
    with stage("read", source):
        scan = _scan(transactions, options)
        cal, obs = _period(scan, options)
    with stage("summarize", "RFM table per customer"):
        data = _summarize(transactions, options, scan, cal, obs)
    fits: dict[str, Any] = {}
    segmented = data.segments is not None
    how = f"{options.method}, {options.chains} x {options.draws} draws"
    if segmented:
        how += f", {data.segments.nunique()} segments partially pooled"
    # every transaction model is fitted with the same seed, so its fit does not depend on
    # which one --model chose
    with stage(f"fit {_family_label(options.model)}", how), _naming_calendar_file(options):
        fits[options.model] = _fit_transaction_model(
            data.transaction_data, segmented, options, seeds["bgnbd"], quiet, options.model
        )
    if options.value_col is not None:
        with stage("fit Gamma-Gamma", how):
            fits["gamma_gamma"] = _fit_spend_model(
                data.model_rfm, segmented, options, seeds["spend"], quiet
            )
    others, skipped = _alternatives(options, segmented)
    for name in others:
        with stage(f"fit {_family_label(name)}", how):
            fits[name] = _fit_transaction_model(
                data.model_rfm, segmented, options, seeds["bgnbd"], quiet, name
            )
    comparison = None
    if options.compare:
        compared = sorted([options.model, *others])
        with stage("compare", ", ".join(_family_label(n) for n in compared)):
            comparison = _compare(
                data, fits, compared, skipped, options, seeds["compare"], seeds["validate"],
                progressbar=not quiet,
            )  # fmt: skip
    covered = (
        f" The file must cover the holdout and the --horizon ({options.horizon:g} "
        f"{options.time_unit})."
    )
    with (
        stage("score", f"{len(data.rfm):,} customers x {options.draws} draws"),
        _naming_calendar_file(options, covered),
    ):
        scored = _score(data, fits, options, seeds, progressbar=not quiet)
    with stage("analyse", "retention, order value, tiers, lapse, segments"):
        content = _analyse(data, fits, scored, options, seeds, source, arguments, comparison,
                           progressbar=not quiet)  # fmt: skip
    content = replace(content, warnings=tuple(stage.warnings))
    return Report(options=options, content=content, fits=fits, source=source, timings=stage.timings)
