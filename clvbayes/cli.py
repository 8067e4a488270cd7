"""Command-line interface: argument parsing and file writing only.

Subcommands are registered in :func:`_build_parser`, which returns the parser and a dict
mapping each subcommand to its handler ``handler(args) -> int``. To add one, write a
``_add_<name>(subparsers)`` function that adds its subparser, and a ``_run_<name>(args)``
handler, and register both there.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from clvbayes.math.family import model_names
from clvbayes.math.units import TIME_UNITS

__all__ = ["apply_config", "main", "run"]

PROG = "clvbayes"

Handler = Callable[[argparse.Namespace], int]


class CLIError(Exception):
    """A usage or data error, reported as one ``clvbayes: error: ...`` line (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`CLIError` instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CLIError(f"{message} (see '{self.prog} --help')")


SOURCE_HELP = (
    "the transaction log: a .csv or .parquet file; or, with --table or --query, a database: "
    "a postgresql:// URL (keep the password in PGPASSWORD or ~/.pgpass) or a DuckDB "
    "database file"
)


def _add_source(p: argparse.ArgumentParser, *, optional: bool = False) -> None:
    """The log: ``SOURCE`` and, for a database, ``--table`` or ``--query``."""
    p.add_argument(
        "transactions",
        nargs="?" if optional else None,
        metavar="SOURCE",
        help=SOURCE_HELP + (" (or the config's 'transactions')" if optional else ""),
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--table", metavar="NAME", help="read the log from this table (or view) of SOURCE"
    )
    group.add_argument(
        "--query",
        metavar="SQL",
        help="read the log from this SELECT, run read-only in SOURCE (in its own SQL)",
    )


def _transactions(source: str, table: str | None, query: str | None) -> Any:
    """The log named on the command line: a file path or a :class:`Database`."""
    from clvbayes.data.database import DUCKDB_SUFFIXES, Database

    if table is None and query is None:
        if "://" in source:
            raise CLIError(
                "SOURCE is a database URL: a database URL needs --table or --query to say "
                "where the transactions are."
            )
        if source.lower().endswith(DUCKDB_SUFFIXES):
            raise CLIError(
                f"{source!r} is read as a DuckDB database file: pass --table NAME or --query "
                "SQL to say where the transactions are."
            )
        return Path(source)
    return Database(source, table=table, query=query)


def _input_files(transactions: Any) -> list[Path]:
    """The files a run reads (an output must not replace them)."""
    if isinstance(transactions, Path):
        return [transactions]
    if getattr(transactions, "kind", None) == "duckdb":
        return [transactions.path]
    return []


def _describe(transactions: Any) -> str:
    """The log for the report's pages: the path, or the table or query and the database."""
    return str(transactions) if isinstance(transactions, Path) else transactions.description


def _add_rfm(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "rfm",
        help="summarize a transaction log to one RFM row per customer",
        description=(
            "Summarize a transaction log (CSV or Parquet, read in place by DuckDB; or a "
            "PostgreSQL or DuckDB table or query) to one "
            "row per customer: frequency (repeat purchase days), recency and T (time from "
            "the first purchase to the last purchase and to the calibration end), "
            "monetary_value (mean value of the repeat purchase days) and, with "
            "--observation-end, the holdout columns. Same-day transactions count as one "
            "purchase; period ends are inclusive whole days."
        ),
        epilog=(
            "example: clvbayes rfm orders.parquet --customer-col customer_id "
            "--date-col date --value-col value --calibration-end 1997-09-30 "
            "--observation-end 1998-06-30 --out rfm.csv; from PostgreSQL: clvbayes rfm "
            "postgresql://shop@db.example/sales --table orders --customer-col customer_id "
            "--date-col ordered_at --value-col amount --out rfm.parquet"
        ),
    )
    _add_source(p)
    p.add_argument("--customer-col", required=True, metavar="C", help="customer id column")
    p.add_argument("--date-col", required=True, metavar="D", help="transaction date column")
    p.add_argument(
        "--value-col",
        metavar="V",
        help="transaction value column (adds monetary_value and holdout_value)",
    )
    p.add_argument(
        "--calibration-end",
        metavar="DATE",
        help="last day of the calibration period, e.g. 1997-09-30 (default: last date)",
    )
    p.add_argument(
        "--observation-end",
        metavar="DATE",
        help="last day of the holdout period; adds holdout_frequency/_value/_duration",
    )
    p.add_argument(
        "--time-unit",
        default="W",
        choices=list(TIME_UNITS),
        help="unit of recency and T: days, weeks, months (365.2425/12 d), quarters, years "
        "(default: W)",
    )
    p.add_argument(
        "--allow-negative",
        action="store_true",
        help="accept negative values (returns), netted into their day's value",
    )
    p.add_argument(
        "--drop-duplicates",
        action="store_true",
        help="read rows that repeat another row exactly (same customer, date, value) once",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="FILE",
        help="output file; .csv or .parquet (format by extension); not the input. In a CSV, "
        "text starting with = + - @ or a tab gets a leading ' (spreadsheet-safe)",
    )


def _run_rfm(args: argparse.Namespace) -> int:
    from clvbayes.data.rfm import rfm_summary
    from clvbayes.files import check_output_file, write_table

    suffix = args.out.name.lower()
    if not suffix.endswith((".csv", ".parquet")):
        raise CLIError(f"--out {str(args.out)!r}: use a .csv or .parquet file name")
    transactions = _transactions(args.transactions, args.table, args.query)
    check_output_file(args.out, _input_files(transactions), what="--out")  # before any work
    rfm = rfm_summary(
        transactions,
        customer_col=args.customer_col,
        date_col=args.date_col,
        value_col=args.value_col,
        calibration_end=args.calibration_end,
        observation_end=args.observation_end,
        time_unit=args.time_unit,
        allow_negative=args.allow_negative,
        drop_duplicates=args.drop_duplicates,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_table(rfm, args.out)  # atomic; a CSV is spreadsheet-safe
    print(f"wrote {len(rfm):,} customers to {args.out}", file=sys.stderr)
    return 0


def _add_model_options(p: argparse.ArgumentParser, *, out_required: bool = True) -> None:
    """Options shared by ``report`` and ``demo``: models, predictions, output.

    No defaults here (an option not given is None): :class:`clvbayes.report.ReportOptions`
    holds them, so ``--config`` can tell what the command line set.
    """
    names = sorted(model_names())
    p.add_argument(
        "--model",
        default=None,
        choices=names,
        help="transaction model; customers.csv and the analyses come from it (default: bgnbd)",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        default=None,
        help=f"also fit the other transaction models ({', '.join(names)}) on the same "
        "calibration data and add a comparison section (PSIS-LOO with posterior draws; "
        "holdout errors and totals with --holdout-end); with --time-effects they, and "
        "the chosen model fitted without them, are stationary",
    )
    p.add_argument(
        "--lapse-window",
        type=float,
        default=None,
        metavar="N",
        help="window of the 'who is likely to lapse' table, in time units (default: a "
        "quarter of the horizon)",
    )
    p.add_argument(
        "--time-unit",
        choices=list(TIME_UNITS),
        help="model time unit: days, weeks, months, quarters, years (default: W)",
    )
    p.add_argument(
        "--horizon",
        type=float,
        metavar="N",
        help="CLV horizon in time units (default: 52)",
    )
    p.add_argument(
        "--annual-discount",
        type=float,
        metavar="RATE",
        help="annual effective discount rate (default: 0.10)",
    )
    p.add_argument(
        "--margin",
        type=float,
        metavar="M",
        help="profit margin applied to spend (default: 1.0)",
    )
    p.add_argument(
        "--draws",
        type=int,
        metavar="N",
        help="posterior draws per chain; predictions use N draws in all (default: 1000)",
    )
    p.add_argument(
        "--tune",
        type=int,
        metavar="N",
        help="NUTS tuning steps per chain (default: 1000; 600 with --time-effects; "
        "the partially pooled fits of --segment-col choose their own)",
    )
    p.add_argument("--chains", type=int, metavar="N", help="chains (default: 4)")
    p.add_argument("--seed", type=int, help="random seed (default: 0)")
    p.add_argument(
        "--method",
        choices=["nuts", "map", "advi", "pathfinder"],
        help="inference method (default: nuts)",
    )
    p.add_argument(
        "--quiet", action="store_true", default=None, help="no progress lines or progress bars"
    )
    p.add_argument(
        "--out",
        required=out_required,
        type=Path,
        metavar="DIR",
        help="report folder: new, empty, or an earlier clvbayes report (replaced); never "
        "the current folder or one holding the input (written to a temporary name, then "
        "renamed)",
    )


def _add_report(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="fit the models and write a CLV report (HTML, CSV, posterior, JSON)",
        description=(
            "From a transaction log (CSV or Parquet, read in place by DuckDB; or a "
            "PostgreSQL or DuckDB table or query) to a reproducible CLV report: fits a "
            "transaction model (BG/NBD unless --model says otherwise) and Gamma-Gamma on "
            "the calibration period, predicts every customer's purchases and CLV with "
            "intervals, and writes DIR/index.html (self-contained page), customers.csv "
            "(one row per customer), posterior.nc (the fitted models, clvbayes.load) and "
            "summary.json (versions, arguments, diagnostics, validation, timings). The "
            "same arguments and seed give the same customers.csv and summary.json "
            "(timings aside). Without --value-col (a log of visits, or orders without "
            "amounts) the report gives P(alive) and purchases only: CLV needs a value "
            "column."
        ),
        epilog=(
            "example: clvbayes report orders.parquet --customer-col customer_id "
            "--date-col date --value-col value --calibration-end 1997-09-30 "
            "--holdout-end 1998-06-30 --out reports/orders; from PostgreSQL: clvbayes report "
            "postgresql://shop@db.example/sales --table orders --customer-col customer_id "
            "--date-col ordered_at --value-col amount --out reports/sales; from a file of "
            "options: clvbayes report --config run.toml; again: clvbayes report --config "
            "reports/orders/summary.json --out reports/again"
        ),
    )
    _add_source(p, optional=True)
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="read the options from FILE: a .toml file whose keys are the options' names "
        "(customer_col or customer-col, transactions for SOURCE, table, query, out, ...), "
        "or a report's summary.json (its 'arguments' rebuild that report); options given "
        "on the command line win",
    )
    p.add_argument("--customer-col", metavar="C", help="customer id column")
    p.add_argument("--date-col", metavar="D", help="transaction date column")
    p.add_argument(
        "--value-col",
        metavar="V",
        help="transaction value column; without it no CLV (P(alive) and purchases only)",
    )
    p.add_argument(
        "--calibration-end",
        metavar="DATE",
        help="last day of the calibration period (default: last date)",
    )
    p.add_argument(
        "--holdout-end",
        metavar="DATE",
        help="last day of the holdout period: adds the holdout validation; customers.csv's "
        "expected_purchases and purchases_q05/q50/q95 then cover the holdout window, not "
        "--horizon (the CLV columns always cover --horizon)",
    )
    p.add_argument(
        "--segment-col",
        metavar="S",
        help="segment column (a customer's segment is that of their first "
        "transaction): the models are fitted per segment with partial pooling "
        "(hierarchical priors) and the report adds segment comparisons",
    )
    p.add_argument(
        "--cac",
        metavar="COST_OR_CSV",
        help="acquisition cost per customer: one number, or a CSV with columns "
        "segment,cac (needs --segment-col and --value-col)",
    )
    p.add_argument(
        "--time-effects",
        action="store_true",
        default=None,
        help="fit the transaction model (bgnbd or mbgnbd) with calendar-time effects: a "
        "common multiplier per period on every customer's purchase rate, estimated and "
        "forecast; adds the multipliers, a weekly tracking plot and the holdout-total check",
    )
    p.add_argument(
        "--calendar-covariates",
        metavar="FILE",
        help="with --time-effects: CSV or Parquet of known calendar covariates, one row per "
        "period (first column a date in the period, e.g. its start, then numeric columns "
        "such as a holiday dummy), covering calibration and the forecast",
    )
    p.add_argument(
        "--customer-table",
        metavar="FILE",
        help="CSV or Parquet file with one row per customer: the --customer-col column "
        "and static columns for --covariates (default: take them from the transaction "
        "log, where each must be constant within a customer)",
    )
    p.add_argument(
        "--covariates",
        metavar="COL,COL",
        help="numeric customer-level columns (0/1 for categories) that scale each "
        "customer's purchase rate, dropout and spend; adds a covariate-effects section",
    )
    _add_model_options(p, out_required=False)
    p.set_defaults(options_parser=p)


def _read_cac(text: Any) -> float | dict[str, float] | None:
    """``--cac``: a number, a CSV of costs per segment, or (from ``--config``) a number or
    a mapping of segment to cost."""
    if text is None:
        return None
    if isinstance(text, Mapping):
        costs = {}
        for segment, cost in text.items():
            if isinstance(cost, bool) or not isinstance(cost, int | float):
                raise CLIError(f"cac: the cost of segment {segment!r} is {cost!r}, not a number.")
            costs[str(segment)] = float(cost)
        return costs
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    try:
        return float(text)
    except ValueError:
        pass
    path = Path(text)
    if not path.is_file():
        raise CLIError(f"--cac {text!r} is neither a number nor an existing CSV file.")
    import pandas as pd

    table = pd.read_csv(path, dtype={"segment": str})
    if not {"segment", "cac"} <= set(table.columns):
        raise CLIError(
            f"--cac {text!r}: the CSV needs columns 'segment' and 'cac', has {list(table.columns)}."
        )
    if table["segment"].duplicated().any():
        raise CLIError(f"--cac {text!r}: a segment appears more than once.")
    costs = pd.to_numeric(table["cac"], errors="coerce")
    if costs.isna().any():
        raise CLIError(f"--cac {text!r}: column 'cac' has values that are not numbers.")
    return dict(zip(table["segment"], costs.astype(float), strict=True))


def _read_covariates(text: str | None) -> tuple[str, ...]:
    """``--covariates a,b`` as ``("a", "b")``."""
    if text is None:
        return ()
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise CLIError(f"--covariates {text!r}: give column names separated by commas.")
    return names


def _report_options(args: argparse.Namespace, **fixed: object) -> object:
    """The :class:`~clvbayes.report.ReportOptions` of the options given (the others keep
    its defaults)."""
    from clvbayes.report import ReportOptions

    names = ("time_unit", "horizon", "annual_discount", "margin", "draws", "tune", "chains",
             "seed", "method", "model", "compare", "lapse_window")  # fmt: skip
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    return ReportOptions(**fixed, **given)


class Terminated(SystemExit):
    """Raised by the SIGTERM handler while a command runs, so that clean-up runs."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` (exit status 143) for the ``with`` block.

    Python's default SIGTERM ends the process at once, skipping ``finally`` blocks and
    leaving hidden staging folders and temporary files; this lets them run. Only in the
    main thread (signal handlers can be set nowhere else).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _build_and_write(transactions: object, options: object, args: argparse.Namespace,
                     source: str, inputs: Sequence[Path] = ()) -> int:  # fmt: skip
    from clvbayes.report import build_report, write_report
    from clvbayes.report.output import ReportTarget
    from clvbayes.report.pipeline import stderr_log

    log = None if args.quiet else stderr_log
    options.check()
    # a bad, busy or unwritable --out fails here, before any work; the staging folder and
    # the lock are removed on every exit, SIGTERM included (see main)
    with ReportTarget(args.out, inputs=inputs) as target:
        report = build_report(transactions, options, log=log, source=source)
        write_report(report, args.out, target=target, log=log)
    return 0


def _run_report(args: argparse.Namespace) -> int:
    if args.config is not None:
        apply_config(args, args.options_parser)
    missing = [flag for dest, flag in _REQUIRED if getattr(args, dest) is None]
    if missing:
        raise CLIError(
            f"the following arguments are required: {', '.join(missing)} (on the command "
            "line or as keys of --config)"
        )
    transactions = _transactions(args.transactions, args.table, args.query)
    cac = _read_cac(args.cac)
    if isinstance(cac, dict) and args.segment_col is None:
        raise CLIError("--cac with a CSV of costs per segment needs --segment-col.")
    options = _report_options(
        args,
        customer_col=args.customer_col,
        date_col=args.date_col,
        value_col=args.value_col,
        calibration_end=args.calibration_end,
        holdout_end=args.holdout_end,
        segment_col=args.segment_col,
        cac=cac,
        customer_table=args.customer_table,
        covariates=_read_covariates(args.covariates),
        time_effects=bool(args.time_effects),
        calendar_covariates=args.calendar_covariates,
    )
    inputs = _input_files(transactions)
    if isinstance(cac, dict) and isinstance(args.cac, str):
        inputs.append(Path(args.cac))
    if args.customer_table:
        inputs.append(Path(args.customer_table))
    if args.calendar_covariates:
        inputs.append(Path(args.calendar_covariates))
    return _build_and_write(transactions, options, args, _describe(transactions), inputs)


_REQUIRED = (("transactions", "SOURCE"), ("customer_col", "--customer-col"),
             ("date_col", "--date-col"), ("out", "--out"))  # fmt: skip
_SOURCE_KEYS = ("transactions", "table", "query")  # one unit: the command line's, or the config's


def _read_config(path: Path) -> dict[str, Any]:
    """The keys of a ``--config`` file: a TOML table, or a summary.json's ``arguments``."""
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise CLIError(f"--config {str(path)!r}: cannot read it ({err.strerror}).") from None
    name = path.name.lower()
    try:
        if name.endswith(".toml"):
            data = tomllib.loads(text)
        elif name.endswith(".json"):
            data = json.loads(text)
            if isinstance(data, dict) and isinstance(data.get("arguments"), dict):
                data = data["arguments"]  # a report's summary.json
        else:
            raise CLIError(f"--config {str(path)!r}: use a .toml file or a report's summary.json.")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise CLIError(f"--config {str(path)!r} is not valid {name.rsplit('.', 1)[-1].upper()}: "
                       f"{err}") from None  # fmt: skip
    if not isinstance(data, dict):
        raise CLIError(
            f"--config {str(path)!r}: expected keys and values, got {type(data).__name__}."
        )
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def _config_value(action: argparse.Action, key: str, value: Any, where: str) -> Any:
    """A config value as the option's own type (as if typed on the command line)."""
    if action.nargs == 0:  # a flag
        if not isinstance(value, bool):
            raise CLIError(f"{where}: key {key!r} must be true or false, got {value!r}.")
        return value
    if key == "cac" and isinstance(value, Mapping | int | float) and not isinstance(value, bool):
        return value  # a cost, or costs per segment (checked by _read_cac)
    if key == "covariates" and isinstance(value, list | tuple):
        # a list, as summary.json records it (empty: none)
        return ",".join(str(v) for v in value) or None
    if isinstance(value, dt.date):  # a TOML date
        value = value.isoformat()
    kind = action.type
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise CLIError(f"{where}: key {key!r} has the value {value!r}, which is not a "
                       "number or text.")  # fmt: skip
    if kind is float and not isinstance(value, str):
        value = float(value)
    elif kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    elif kind is not None and not isinstance(value, kind if isinstance(kind, type) else ()):
        try:
            value = kind(value if isinstance(value, str) else str(value))
        except (TypeError, ValueError):
            raise CLIError(f"{where}: key {key!r} is {value!r}, not a valid value.") from None
    elif kind is None and not isinstance(value, str):
        raise CLIError(f"{where}: key {key!r} must be text, got {value!r}.")
    if action.choices is not None and value not in action.choices:
        raise CLIError(f"{where}: key {key!r} is {value!r}; choose one of {list(action.choices)}.")
    return value


def apply_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Fill the options not given on the command line from ``args.config``.

    Keys are the options' names (``customer_col`` or ``customer-col``; ``transactions``
    for the log, ``table``, ``query``, ``out``, ...); a key that is not an option is an
    error listing the valid ones. ``null`` values are skipped. The log's keys
    (``transactions``, ``table``, ``query``) come as a unit: when the command line names
    the log, the config's are ignored.
    """
    where = f"--config {str(args.config)!r}"
    config = _read_config(args.config)
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
    unknown = [key for key in config if key not in actions]
    if unknown:
        raise CLIError(
            f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(actions))}."
        )
    source_given = any(getattr(args, key) is not None for key in _SOURCE_KEYS)
    for key, value in config.items():
        if value is None or getattr(args, key) is not None:
            continue
        if key in _SOURCE_KEYS and source_given:
            continue
        setattr(args, key, _config_value(actions[key], key, value, where))


DEMO_CALIBRATION_END = "1997-09-30"
DEMO_HOLDOUT_END = "1998-06-30"


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the report on the bundled CDNOW master log (what `make demo` runs)",
        description=(
            "Runs `clvbayes report` on the bundled CDNOW master log (23,570 customers, "
            f"69,659 transactions) with calibration to {DEMO_CALIBRATION_END}, holdout to "
            f"{DEMO_HOLDOUT_END}, weeks, and the customers' acquisition month (January, "
            "February or March 1997) as the segment."
        ),
        epilog="example: clvbayes demo --out reports/cdnow",
    )
    _add_model_options(p)


def _run_demo(args: argparse.Namespace) -> int:
    from clvbayes.datasets import load_cdnow

    tx = load_cdnow("master")
    first = tx.groupby("customer_id")["date"].transform("min")
    tx = tx.assign(acquisition_month=first.dt.strftime("%Y-%m"))
    options = _report_options(
        args,
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        calibration_end=DEMO_CALIBRATION_END,
        holdout_end=DEMO_HOLDOUT_END,
        segment_col="acquisition_month",
    )
    return _build_and_write(tx, options, args, "CDNOW master (clvbayes.datasets.load_cdnow)")


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    """The top-level parser with its subcommands, and each subcommand's handler."""
    parser = _Parser(
        prog=PROG,
        description="Bayesian customer-lifetime-value models (BG/NBD, MBG/NBD, Pareto/NBD, "
        "Gamma-Gamma).",
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser, required=True
    )
    _add_rfm(subparsers)
    _add_report(subparsers)
    _add_demo(subparsers)
    handlers: dict[str, Handler] = {"rfm": _run_rfm, "report": _run_report, "demo": _run_demo}
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 usage or data error)."""
    parser, handlers = _build_parser()
    try:
        args = parser.parse_args(argv)
        with _sigterm_raises():
            return handlers[args.command](args)
    except Terminated as exc:
        print(f"{PROG}: terminated (SIGTERM); no partial output was written", file=sys.stderr)
        return int(exc.code)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    # OSError: e.g. a full disk; ImportError: an optional dependency (the PostgreSQL driver)
    except (CLIError, ValueError, TypeError, OSError, ImportError) as exc:
        plain = isinstance(exc, OSError) and exc.strerror and exc.filename is None
        message = " ".join((exc.strerror if plain else str(exc)).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2


INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""


def run() -> None:
    """The ``clvbayes`` program (and ``python -m clvbayes``): :func:`main`, with Ctrl-C
    reported as one line and exit status :data:`INTERRUPTED` instead of a traceback.

    :func:`main` itself lets ``KeyboardInterrupt`` through (after the report's staging
    folder and lock are removed; an earlier report stays as it was), so callers in
    Python see the interrupt.
    """
    try:
        status = main()
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no partial output was written", file=sys.stderr)
        status = INTERRUPTED
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    run()
