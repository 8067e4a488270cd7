"""`clvbayes report --config`: a TOML file of options, or a report's summary.json.

The oracle for summary.json is the report it came from: fed back, its ``arguments``
rebuild the same ``customers.csv``, ``summary.json`` and ``index.html`` byte for byte
(timings aside). Options on the command line win over the file's keys; a key that is not
an option is an error naming it and listing the valid ones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from clvbayes.cli import _build_parser, apply_config, main
from clvbayes.datasets import load_cdnow

FAST = ["--method", "map", "--draws", "100", "--chains", "1", "--quiet"]


def _parse(*argv: str):
    parser, _ = _build_parser()
    args = parser.parse_args(["report", *argv])
    if args.config is not None:
        apply_config(args, args.options_parser)
    return args


def test_toml_keys_fill_the_options_and_the_command_line_wins(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        'transactions = "orders.csv"\ncustomer-col = "c"\ndate_col = "d"\n'
        'calibration_end = 1997-09-30\ndraws = 50\nhorizon = 26\nmethod = "map"\n'
        'quiet = true\ncac = 20\nout = "report"\ntune = 300\n'
    )
    args = _parse("--config", str(config), "--draws", "7", "--method", "nuts")
    assert (args.draws, args.method) == (7, "nuts")  # the command line wins
    assert args.horizon == 26.0 and isinstance(args.horizon, float)
    assert args.calibration_end == "1997-09-30"  # a TOML date, as text
    assert (args.customer_col, args.date_col, args.tune) == ("c", "d", 300)
    assert args.out == Path("report") and args.quiet is True and args.cac == 20
    assert args.transactions == "orders.csv" and args.value_col is None
    # the log's keys are one unit: naming the log on the command line drops the config's
    config.write_text('transactions = "db.duckdb"\ntable = "orders"\n')
    args = _parse("orders.csv", "--config", str(config))
    assert (args.transactions, args.table) == ("orders.csv", None)
    args = _parse("--config", str(config))
    assert (args.transactions, args.table) == ("db.duckdb", "orders")


def test_a_summary_json_gives_its_arguments(tmp_path):
    summary = tmp_path / "summary.json"
    arguments = {"transactions": "log.csv", "table": None, "customer_col": "id",
                 "date_col": "day", "value_col": None, "horizon": 52.0, "draws": 100,
                 "cac": {"web": 20.0, "store": 35.5}}  # fmt: skip
    summary.write_text(json.dumps({"title": "x", "arguments": arguments, "seed": 0}))
    args = _parse("--config", str(summary), "--out", "o")
    assert (args.transactions, args.customer_col, args.value_col) == ("log.csv", "id", None)
    assert args.cac == {"web": 20.0, "store": 35.5} and args.draws == 100


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('customer_col = "c"\nbogus = 1\n', "unknown key 'bogus'; valid keys: annual_discount"),
        ('draws = "many"\n', "key 'draws' is 'many', not a valid value"),
        ('method = "magic"\n', "key 'method' is 'magic'; choose one of ['nuts', 'map'"),
        ("quiet = 1\n", "key 'quiet' must be true or false"),
        ("customer_col = 5\n", "key 'customer_col' must be text"),
        ("draws = [1, 2]\n", "key 'draws' has the value [1, 2]"),
        ("draws = \n", "is not valid TOML"),
        ('customer_col = "c"\n', "required: SOURCE, --date-col, --out"),
    ],
)
def test_bad_config_files_exit_2_with_one_line(tmp_path, capsys, text, message):
    config = tmp_path / "run.toml"
    config.write_text(text)
    assert main(["report", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("clvbayes: error:"), err
    assert message in err[0], err[0]


def test_config_must_be_toml_or_json(tmp_path, capsys):
    for name, message in (("run.yaml", "use a .toml file or a report's summary.json"),
                          ("missing.toml", "cannot read it")):  # fmt: skip
        path = tmp_path / name
        if name.endswith(".yaml"):
            path.write_text("a: 1\n")
        assert main(["report", "--config", str(path)]) == 2
        assert message in capsys.readouterr().err


def _without_timings(path: Path) -> str:
    text = path.read_text()
    if path.suffix == ".json":
        return text[: text.index('  "timings"')]
    # the page's last table lists the stage timings
    return re.sub(r"<table>(?:(?!</table>).)*?seconds.*?</table>", "", text, flags=re.DOTALL)


@pytest.mark.slow
def test_summary_json_rebuilds_the_same_report_byte_for_byte(tmp_path):
    tx = load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:300])].copy()
    tx["channel"] = np.where(tx.index % 2 == 0, "web", "store")
    log = tmp_path / "log.csv"
    tx.to_csv(log, index=False)
    costs = tmp_path / "costs.csv"
    costs.write_text("segment,cac\nweb,20\nstore,35.5\n")
    first = tmp_path / "first"
    args = ["report", str(log), "--customer-col", "customer_id", "--date-col", "date",
            "--value-col", "value", "--calibration-end", "1997-09-30", "--holdout-end",
            "1998-06-15", "--segment-col", "channel", "--cac", str(costs), *FAST]  # fmt: skip
    assert main([*args, "--out", str(first)]) == 0
    again = tmp_path / "again"
    summary = first / "summary.json"
    assert main(["report", "--config", str(summary), "--out", str(again), "--quiet"]) == 0
    assert (again / "customers.csv").read_bytes() == (first / "customers.csv").read_bytes()
    for name in ("summary.json", "index.html"):
        assert _without_timings(again / name) == _without_timings(first / name), name
    page = (first / "index.html").read_text()
    assert ">seconds</th>" in page and ">seconds</th>" not in _without_timings(first / "index.html")
    arguments = json.loads(summary.read_text())["arguments"]
    assert arguments["transactions"] == str(log) and arguments["cac"] == {
        "web": 20.0,
        "store": 35.5,
    }


@pytest.mark.parametrize("cost", ["-5", "nan", "0"])
def test_a_bad_acquisition_cost_is_refused_before_fitting(tmp_path, capsys, cost):
    """It was refused only at the analysis stage, after every model had been fitted."""
    log = tmp_path / "log.csv"
    log.write_text("id,date,value\n1,2020-01-01,5\n1,2020-02-01,6\n2,2020-01-15,7\n")
    args = ["report", str(log), "--customer-col", "id", "--date-col", "date",
            "--value-col", "value", f"--cac={cost}", "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--cac: acquisition costs must be positive numbers" in err, err
    assert "fit" not in err.split("clvbayes: error:")[0]  # nothing was fitted first
