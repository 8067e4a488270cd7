"""`clvbayes rfm`: files in, files out, one clear error line, exit status 2 on errors."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from clvbayes.cli import _build_parser, main
from clvbayes.data.rfm import rfm_summary
from clvbayes.datasets import load_cdnow

ARGS = ["--customer-col", "customer_id", "--date-col", "date", "--value-col", "value"]
PERIOD = ["--calibration-end", "1997-09-30", "--observation-end", "1998-06-30"]


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "sample.csv"
    load_cdnow("sample").to_csv(path, index=False)
    return path


@pytest.mark.parametrize("out_name", ["rfm.csv", "rfm.parquet"])
def test_rfm_writes_the_summary(sample_csv, tmp_path, out_name, capsys):
    out = tmp_path / "sub" / out_name
    assert (
        main(["rfm", str(sample_csv), *ARGS, *PERIOD, "--time-unit", "D", "--out", str(out)]) == 0
    )
    expected = rfm_summary(
        sample_csv, customer_col="customer_id", date_col="date", value_col="value",
        calibration_end="1997-09-30", observation_end="1998-06-30", time_unit="D",
    )  # fmt: skip
    got = pd.read_csv(out) if out_name.endswith(".csv") else pd.read_parquet(out)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-15)
    assert "wrote 2,357 customers" in capsys.readouterr().err


def test_help_reads_well(capsys):
    assert main(["rfm", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ["--customer-col", "--date-col", "--value-col", "--calibration-end",
                   "--observation-end", "--time-unit", "--allow-negative", "--out", "example:"]:  # fmt: skip
        assert option in text
    assert main(["--help"]) == 0
    assert "rfm" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rfm", "{csv}", "--date-col", "date", "--out", "{out}"], "--customer-col"),
        (["rfm", "{csv}", "--customer-col", "cid", "--date-col", "date", "--out", "{out}"],
         "column 'cid' not found"),
        (["rfm", "{csv}", *ARGS, "--calibration-end", "1997-09-30", "--observation-end",
          "1997-01-01", "--out", "{out}"], "before calibration_end"),
        (["rfm", "{csv}", *ARGS, "--calibration-end", "someday", "--out", "{out}"],
         "calibration_end='someday' is not a date"),
        (["rfm", "{csv}", *ARGS, "--time-unit", "H", "--out", "{out}"], "invalid choice"),
        (["rfm", "{csv}", *ARGS, "--out", "rfm.xlsx"], ".csv or .parquet"),
        (["rfm", "missing.csv", *ARGS, "--out", "{out}"], "does not exist"),
        (["frobnicate"], "invalid choice"),
    ],
)  # fmt: skip
def test_errors_print_one_line_and_exit_2(argv, message, sample_csv, tmp_path, capsys):
    argv = [a.format(csv=sample_csv, out=tmp_path / "o.csv") for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clvbayes: error: ")
    assert message in lines[0]
    assert not (tmp_path / "o.csv").exists()


def test_data_error_in_file(tmp_path, capsys):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,date,value\n1,2020-01-01,5\n2,2020-01-02,-3\n")
    assert main(["rfm", str(path), *ARGS, "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "clvbayes: error: column 'value': 1 of 2 rows are negative" in err
    assert "--allow-negative" in err
    assert (
        main(["rfm", str(path), *ARGS, "--allow-negative", "--out", str(tmp_path / "o.csv")]) == 0
    )


def test_parser_exposes_handlers_for_new_subcommands():
    parser, handlers = _build_parser()
    assert {"rfm", "report", "demo"} <= set(handlers)
    assert parser.prog == "clvbayes"


def test_python_dash_m_entry_point(sample_csv, tmp_path):
    out = tmp_path / "rfm.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "clvbayes", "rfm", str(sample_csv), *ARGS, "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(out)) == 2357
    bad = subprocess.run([sys.executable, "-m", "clvbayes", "rfm", "x.csv"], capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("clvbayes: error:")
