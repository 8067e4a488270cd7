"""Command-line interface: argument parsing and file writing only.

Subcommands are registered in :func:`_build_parser`, which returns the parser and a dict
mapping each subcommand to its handler ``handler(args) -> int``. To add one, write a
``_add_<name>(subparsers)`` function that adds its subparser, and a ``_run_<name>(args)``
handler, and register both there.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from clvbayes.math.units import TIME_UNITS

__all__ = ["main"]

PROG = "clvbayes"

Handler = Callable[[argparse.Namespace], int]


class CLIError(Exception):
    """A usage or data error, reported as one ``clvbayes: error: ...`` line (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`CLIError` instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CLIError(f"{message} (see '{self.prog} --help')")


def _add_rfm(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "rfm",
        help="summarize a transaction log to one RFM row per customer",
        description=(
            "Summarize a transaction log (CSV or Parquet, read in place by DuckDB) to one "
            "row per customer: frequency (repeat purchase days), recency and T (time from "
            "the first purchase to the last purchase and to the calibration end), "
            "monetary_value (mean value of the repeat purchase days) and, with "
            "--observation-end, the holdout columns. Same-day transactions count as one "
            "purchase; period ends are inclusive whole days."
        ),
        epilog=(
            "example: clvbayes rfm orders.parquet --customer-col customer_id "
            "--date-col date --value-col value --calibration-end 1997-09-30 "
            "--observation-end 1998-06-30 --out rfm.csv"
        ),
    )
    p.add_argument("transactions", type=Path, help="transaction log, a .csv or .parquet file")
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
    check_output_file(args.out, [args.transactions], what="--out")  # before any work
    rfm = rfm_summary(
        args.transactions,
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


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``report`` and ``demo``: models, predictions, output."""
    p.add_argument(
        "--time-unit",
        default="W",
        choices=list(TIME_UNITS),
        help="model time unit: days, weeks, months, quarters, years (default: W)",
    )
    p.add_argument(
        "--horizon",
        type=float,
        default=52.0,
        metavar="N",
        help="CLV horizon in time units (default: 52)",
    )
    p.add_argument(
        "--annual-discount",
        type=float,
        default=0.10,
        metavar="RATE",
        help="annual effective discount rate (default: 0.10)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=1.0,
        metavar="M",
        help="profit margin applied to spend (default: 1.0)",
    )
    p.add_argument(
        "--draws",
        type=int,
        default=1000,
        metavar="N",
        help="posterior draws per chain; predictions use N draws in all (default: 1000)",
    )
    p.add_argument(
        "--tune",
        type=int,
        default=None,
        metavar="N",
        help="NUTS tuning steps per chain (default: 1000; 2000 for the partially pooled "
        "fits of --segment-col)",
    )
    p.add_argument("--chains", type=int, default=4, metavar="N", help="chains (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--method",
        default="nuts",
        choices=["nuts", "map", "advi", "pathfinder"],
        help="inference method (default: nuts)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--out",
        required=True,
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
            "From a transaction log (CSV or Parquet, read in place by DuckDB) to a "
            "reproducible CLV report: fits BG/NBD and Gamma-Gamma on the calibration "
            "period, predicts every customer's purchases and CLV with intervals, and "
            "writes DIR/index.html (self-contained page), customers.csv (one row per "
            "customer), posterior.nc (the fitted models, clvbayes.load) and summary.json "
            "(versions, arguments, diagnostics, validation, timings). The same arguments "
            "and seed give the same customers.csv and summary.json (timings aside)."
        ),
        epilog=(
            "example: clvbayes report orders.parquet --customer-col customer_id "
            "--date-col date --value-col value --calibration-end 1997-09-30 "
            "--holdout-end 1998-06-30 --out reports/orders"
        ),
    )
    p.add_argument("transactions", type=Path, help="transaction log, a .csv or .parquet file")
    p.add_argument("--customer-col", required=True, metavar="C", help="customer id column")
    p.add_argument("--date-col", required=True, metavar="D", help="transaction date column")
    p.add_argument("--value-col", required=True, metavar="V", help="transaction value column")
    p.add_argument(
        "--calibration-end",
        metavar="DATE",
        help="last day of the calibration period (default: last date)",
    )
    p.add_argument(
        "--holdout-end",
        metavar="DATE",
        help="last day of the holdout period: adds the holdout validation",
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
        "segment,cac (needs --segment-col)",
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
    _add_model_options(p)


def _read_cac(text: str | None) -> float | dict[str, float] | None:
    if text is None:
        return None
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
    from clvbayes.report import ReportOptions

    names = ("time_unit", "horizon", "annual_discount", "margin", "draws", "tune", "chains",
             "seed", "method")  # fmt: skip
    return ReportOptions(**fixed, **{n: getattr(args, n) for n in names})


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
    )
    inputs = [args.transactions] + ([Path(args.cac)] if isinstance(cac, dict) else [])
    inputs += [Path(args.customer_table)] if args.customer_table else []
    return _build_and_write(args.transactions, options, args, str(args.transactions), inputs)


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
        description="Bayesian customer-lifetime-value models (BG/NBD, Gamma-Gamma).",
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
    except (CLIError, ValueError, TypeError, OSError) as exc:  # OSError: e.g. a full disk
        plain = isinstance(exc, OSError) and exc.strerror and exc.filename is None
        message = " ".join((exc.strerror if plain else str(exc)).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
