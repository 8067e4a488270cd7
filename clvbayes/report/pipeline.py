"""The report pipeline: transactions in, fitted models, predictions and report content out.

Stages (each logged with its time): **read** (validate the log, find its period),
**summarize** (RFM table, segments, repeat-purchase days), **fit** the BG/NBD and the
Gamma-Gamma models, **score** the customers (CLV over the horizon; with a holdout, the
purchases over the holdout window and the holdout validation) and **analyse** (the CRM
tables: one call each of :mod:`clvbayes.analyses` and :mod:`clvbayes.segments`).
:func:`build_report` returns a :class:`Report`; :func:`write_report` renders and writes
it (``index.html``, ``customers.csv``, ``posterior.nc``, ``summary.json``).

Every random step gets its own seed spawned from ``ReportOptions.seed``, so the same
options and data give the same numbers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.analyses import at_risk, average_order_value, retention_curve, value_tiers
from clvbayes.covariates import covariate_effects
from clvbayes.report.content import CUSTOMER_COLUMNS, ReportContent, build_content
from clvbayes.segments import clv_cac, segment_contrasts, segment_summary

__all__ = ["Report", "ReportOptions", "build_report"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class ReportOptions:
    """What the report is built from (the command line's options).

    Attributes
    ----------
    customer_col, date_col, value_col : str
        Columns of the transaction log.
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
        None: the models' default (1,000; 2,000 for partially pooled segment fits).
    seed : int
        Seed of everything random.
    method : {"nuts", "map", "advi", "pathfinder"}
        Inference method.
    cac : float or mapping of str to float, optional
        Acquisition cost per customer, one number or one per segment.
    customer_table : str, optional
        A CSV or Parquet file with one row per customer: the customer column and static
        columns (gender, channel, region, ...) to use as ``covariates``.
    covariates : tuple of str
        Numeric customer-level columns (of ``customer_table``, else of the transaction
        log, where each must be constant within a customer) that scale each customer's
        purchase rate and dropout (BG/NBD) and spend (Gamma-Gamma); the report adds a
        covariate-effects section.
    """

    customer_col: str
    date_col: str
    value_col: str
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
    customer_table: str | None = None
    covariates: tuple[str, ...] = ()

    def check(self) -> None:
        """Raise ``ValueError`` on an impossible option."""
        from clvbayes.inference import METHODS
        from clvbayes.math.units import check_time_unit

        check_time_unit(self.time_unit, "--time-unit")
        if self.method not in METHODS:
            raise ValueError(f"--method {self.method!r}: use one of {list(METHODS)}.")
        for name in ("horizon", "draws", "chains"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}.")
        if self.tune is not None and self.tune < 0:
            raise ValueError(f"--tune must be >= 0, got {self.tune}.")
        if not 0 <= self.annual_discount < 10:
            raise ValueError(
                f"--annual-discount {self.annual_discount}: give a yearly rate such as 0.10."
            )
        if not self.margin > 0:
            raise ValueError(f"--margin must be positive, got {self.margin}.")
        if self.customer_table is not None and not self.covariates:
            raise ValueError(
                "--customer-table needs --covariates: name the columns to use, e.g. "
                "--covariates gender,channel."
            )
        if len(set(self.covariates)) != len(self.covariates) or "" in self.covariates:
            raise ValueError(f"--covariates {','.join(self.covariates)}: name each column once.")

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
        ``{"bgnbd": ..., "gamma_gamma": ...}``.
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
    """Times each stage and logs a line when it starts and ends."""

    def __init__(self, log: Log | None) -> None:
        self.log = log
        self.timings: dict[str, float] = {}
        self.start = time.perf_counter()

    def say(self, text: str) -> None:
        if self.log is not None:
            self.log(f"[{time.perf_counter() - self.start:7.1f}s] {text}")

    @contextmanager
    def __call__(self, name: str, detail: str = "") -> Iterator[None]:
        self.say(f"{name}{': ' + detail if detail else ''} ...")
        t0 = time.perf_counter()
        yield
        seconds = time.perf_counter() - t0
        self.timings[name] = round(self.timings.get(name, 0.0) + seconds, 3)
        self.say(f"{name} done in {seconds:.1f} s")


def stderr_log(line: str) -> None:
    """Write one progress line to standard error."""
    print(line, file=sys.stderr, flush=True)


def _seeds(seed: int, n: int) -> list[int]:
    """``n`` independent integer seeds from one."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


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


SEGMENT = "segment"
"""Column of the RFM table holding each customer's segment (``--segment-col``)."""


def read_customer_table(path: str | Path, customer_col: str, columns: tuple[str, ...]) -> Any:
    """``--customer-table``: one row per customer with ``customer_col`` and ``columns``.

    Raises
    ------
    ValueError
        For a missing file or column, or a customer listed twice.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--customer-table {path}: no such file.")
    name = path.name.lower()
    table = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)
    missing = [c for c in (customer_col, *columns) if c not in table.columns]
    if missing:
        raise ValueError(
            f"--customer-table {path}: column(s) {missing} not found (columns: "
            f"{list(table.columns)}); it needs the customer column {customer_col!r} and the "
            "--covariates columns."
        )
    table = table[[customer_col, *columns]].rename(columns={customer_col: "customer_id"})
    twice = table["customer_id"].duplicated()
    if twice.any():
        raise ValueError(
            f"--customer-table {path}: {int(twice.sum())} customer(s) listed more than once "
            f"(e.g. {table['customer_id'][twice].iloc[0]!r}); give one row per customer."
        )
    return table


def _with_customer_table(rfm: pd.DataFrame, options: ReportOptions) -> pd.DataFrame:
    """The RFM table with the ``--covariates`` columns of ``--customer-table``; every
    customer must be in the table."""
    table = read_customer_table(options.customer_table, options.customer_col, options.covariates)
    ids = rfm["customer_id"]
    table = table.astype({"customer_id": ids.dtype}, errors="ignore")
    merged = rfm.merge(table, on="customer_id", how="left", validate="one_to_one")
    absent = ~ids.isin(table["customer_id"])
    if absent.any():
        raise ValueError(
            f"--customer-table {options.customer_table}: {int(absent.sum()):,} of {len(ids):,} "
            f"customers are not in it (e.g. {ids[absent].iloc[0]!r}); add them (one row per "
            "customer of the log)."
        )
    return merged


def _fit_transaction_model(
    rfm: pd.DataFrame, segmented: bool, options: ReportOptions, seed: int, quiet: bool
) -> Any:
    """Fit the BG/NBD: with segments, partially pooled (each segment its own parameters
    under a hierarchical prior, :class:`clvbayes.BGNBD` ``segments=``); else one
    population; with ``--covariates`` on the purchase rate and the dropout."""
    from clvbayes.models import BGNBD

    covariates = list(options.covariates) or None
    segments = {"segments": SEGMENT} if segmented else {}
    spec = BGNBD(**segments, purchase_covariates=covariates, dropout_covariates=covariates)
    return spec.fit(rfm, **_fit_kwargs(options, seed, quiet))


def _fit_spend_model(
    rfm: pd.DataFrame, segmented: bool, options: ReportOptions, seed: int, quiet: bool
) -> Any:
    """Fit the Gamma-Gamma spend model, partially pooled over the segments if any, with
    ``--covariates`` on the spend."""
    from clvbayes.models import GammaGamma

    segments = {"segments": SEGMENT} if segmented else {}
    spec = GammaGamma(**segments, spend_covariates=list(options.covariates) or None)
    return spec.fit(rfm, **_fit_kwargs(options, seed, quiet))


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
        table[col] = rfm[col].to_numpy()
    table["p_alive"] = horizon_summary["p_alive"].to_numpy()
    for col in ("expected_purchases", "purchases_q05", "purchases_q50", "purchases_q95"):
        table[col] = purchases[col].to_numpy()
    for col in ("clv_mean", "clv_sd", "clv_q05", "clv_q50", "clv_q95"):
        table[col] = horizon_summary[col].to_numpy()
    table["p_top_decile"] = horizon_summary["p_top_10pct"].to_numpy()
    if holdout_summary is not None:
        table["holdout_frequency"] = rfm["holdout_frequency"].to_numpy()
        table["holdout_value"] = rfm["holdout_value"].to_numpy()
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
    return _Data(scan, cal, obs, rfm, segments, repeat_times)


def _score(
    data: _Data, fits: dict[str, Any], options: ReportOptions, seeds: dict[str, int]
) -> tuple[Any, Any, Any]:
    """CLV over the horizon; with a holdout, its validation and the tracking curve."""
    from clvbayes.ppc import tracking_curve
    from clvbayes.predict import predict_customers, validate_holdout

    predict = options.predict_options()
    model_rfm = data.model_rfm
    horizon = predict_customers(
        fits["bgnbd"],
        model_rfm,
        horizon=options.horizon,
        spend_fit=fits["gamma_gamma"],
        seed=seeds["horizon"],
        options=predict,
        keep_draws=("p_alive", "clv"),
    )
    holdout = tracking = None
    if data.holdout_end is not None:
        holdout = validate_holdout(
            fits["bgnbd"],
            model_rfm,
            spend_fit=fits["gamma_gamma"],
            seed=seeds["validate"],
            options=predict,
        )
        tracking = tracking_curve(fits["bgnbd"], model_rfm, actual=data.repeat_times, n_draws=200)
    return horizon, holdout, tracking


def _analyse(
    data: _Data,
    fits: dict[str, Any],
    scored: tuple[Any, Any, Any],
    options: ReportOptions,
    seeds: dict[str, int],
    source: str,
) -> ReportContent:
    """The CRM analyses (one library call each) and the report's content."""
    horizon, holdout, tracking = scored
    model_rfm, seg_values = data.model_rfm, data.segment_values
    holdout_summary = None if holdout is None else holdout.predictions
    customers = _customer_table(data.rfm, data.segments, horizon.summary, holdout_summary)
    step = max(options.horizon / 26.0, 1.0)
    times = np.unique(np.append(np.arange(0.0, options.horizon, step), options.horizon))
    retention = retention_curve(
        fits["bgnbd"],
        model_rfm,
        times=times,
        segments=seg_values,
        n_draws=min(options.draws, 200),
        seed=seeds["retention"],
    )
    order_value = average_order_value(
        fits["gamma_gamma"], model_rfm, segments=seg_values, n_draws=options.draws
    )
    segment_table = contrasts = cac = None
    if seg_values is not None:
        segment_table = segment_summary(horizon, seg_values, variables=("clv", "p_alive"))
        contrasts = segment_contrasts(horizon, seg_values)
    if options.cac is not None:
        cac = clv_cac(horizon, options.cac, segments=seg_values)
    effects = None
    if options.covariates:
        effects = covariate_effects(
            fits["bgnbd"],
            fits["gamma_gamma"],
            time_unit=options.time_unit,
            annual_discount=options.annual_discount,
            margin=options.margin,
            reference=_reference(data, fits, options),
        )
    return build_content(
        options=asdict(options),
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
        tiers=value_tiers(horizon),
        at_risk=at_risk(horizon, model_rfm),
        segments=segment_table,
        contrasts=contrasts,
        cac=cac,
        holdout=holdout,
        tracking=tracking,
        covariate_effects=effects,
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
    transactions : str, Path or DataFrame
        A CSV or Parquet path (read in place by DuckDB) or a frame, one row per
        transaction. Not modified.
    options : ReportOptions
        Columns, periods, model and prediction settings.
    log : callable, optional
        Receives one progress line per stage start and end (None: silent).
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
    seeds = dict(
        zip(
            ("bgnbd", "spend", "horizon", "holdout", "validate", "tracking", "retention"),
            _seeds(options.seed, 7),
            strict=True,
        )
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
    with stage("fit BG/NBD", how):
        fits["bgnbd"] = _fit_transaction_model(
            data.model_rfm, segmented, options, seeds["bgnbd"], quiet
        )
    with stage("fit Gamma-Gamma", how):
        fits["gamma_gamma"] = _fit_spend_model(
            data.model_rfm, segmented, options, seeds["spend"], quiet
        )
    with stage("score", f"{len(data.rfm):,} customers x {options.draws} draws"):
        scored = _score(data, fits, options, seeds)
    with stage("analyse", "retention, order value, tiers, segments"):
        content = _analyse(data, fits, scored, options, seeds, source)
    return Report(options=options, content=content, fits=fits, source=source, timings=stage.timings)
