"""Command-line interface: argument parsing and file writing only.

Subcommands are registered in :func:`_build_parser`, which returns the parser and a dict
mapping each subcommand to its handler ``handler(args) -> int``. To add one, write a
``_add_<name>(subparsers)`` function that adds its subparser, and a ``_run_<name>(args)``
handler, and register both there.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
        choices=["D", "W", "M", "Y"],
        help="unit of recency and T: days, weeks, months (365.2425/12 d), years (default: W)",
    )
    p.add_argument(
        "--allow-negative",
        action="store_true",
        help="accept negative values (returns), netted into their day's value",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="FILE",
        help="output file; .csv or .parquet (format by extension)",
    )


def _run_rfm(args: argparse.Namespace) -> int:
    from clvbayes.data.rfm import rfm_summary

    suffix = args.out.name.lower()
    if not suffix.endswith((".csv", ".parquet")):
        raise CLIError(f"--out {str(args.out)!r}: use a .csv or .parquet file name")
    rfm = rfm_summary(
        args.transactions,
        customer_col=args.customer_col,
        date_col=args.date_col,
        value_col=args.value_col,
        calibration_end=args.calibration_end,
        observation_end=args.observation_end,
        time_unit=args.time_unit,
        allow_negative=args.allow_negative,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if suffix.endswith(".parquet"):
        rfm.to_parquet(args.out, index=False)
    else:
        rfm.to_csv(args.out, index=False)
    print(f"wrote {len(rfm):,} customers to {args.out}", file=sys.stderr)
    return 0


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
    handlers: dict[str, Handler] = {"rfm": _run_rfm}
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 usage or data error)."""
    parser, handlers = _build_parser()
    try:
        args = parser.parse_args(argv)
        return handlers[args.command](args)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except (CLIError, ValueError, TypeError, FileNotFoundError) as exc:
        message = " ".join(str(exc).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
