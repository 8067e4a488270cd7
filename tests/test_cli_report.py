"""`clvbayes report`: the files, their contract, determinism, error paths, the page itself.

End-to-end runs use the CDNOW sample (2,357 customers) with MAP fits and 200 predictive
draws, so each takes a few seconds; one slow test runs small NUTS chains. The oracles:
``rfm_summary`` for the RFM and holdout columns, the issue's column list for
``customers.csv``, ``clvbayes.load`` for ``posterior.nc``, Python's ``html.parser`` for
the page structure and headless Chromium (Debian's ``chromium``) for console errors.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.cli import main
from clvbayes.datasets import load_cdnow
from clvbayes.report import CUSTOMER_COLUMNS

EVIL = "<script>alert(1)</script>"
COLS = ["--customer-col", "customer_id", "--date-col", "date", "--value-col", "value"]
PERIOD = ["--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30"]
FAST = ["--method", "map", "--draws", "100", "--chains", "1", "--quiet"]
N_CUSTOMERS = 800


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory) -> Path:
    """800 customers of the CDNOW sample as CSV, the busiest one renamed to a script tag,
    with a segment column holding markup too."""
    tx = load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:N_CUSTOMERS])].copy()
    tx["customer_id"] = tx["customer_id"].astype(str)
    busiest = tx["customer_id"].value_counts().index[0]  # a top customer: on the page
    tx.loc[tx["customer_id"] == busiest, "customer_id"] = EVIL
    tx["channel"] = np.where(tx.index % 2 == 0, "web", "store & <b>shop</b>")
    path = tmp_path_factory.mktemp("report") / "sample.csv"
    tx.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def report_dir(sample_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "report"
    args = ["report", str(sample_csv), *COLS, *PERIOD, *FAST, "--out", str(out)]
    assert main([*args, "--segment-col", "channel", "--cac", "20"]) == 0
    return out


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_report_writes_the_four_files_and_nothing_else(report_dir):
    assert sorted(p.name for p in report_dir.iterdir()) == sorted(clvbayes.report.FILES)
    leftovers = [p.name for p in report_dir.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_customers_csv_follows_the_column_contract(report_dir, sample_csv):
    customers = pd.read_csv(report_dir / "customers.csv", dtype={"customer_id": str})
    assert list(customers.columns) == list(CUSTOMER_COLUMNS)
    rfm = clvbayes.rfm_summary(
        pd.read_csv(sample_csv, dtype={"customer_id": str}),
        customer_col="customer_id", date_col="date", value_col="value",
        calibration_end="1997-09-30", observation_end="1998-06-30",
    )  # fmt: skip
    assert len(customers) == len(rfm) == N_CUSTOMERS
    merged = customers.merge(rfm, on="customer_id", suffixes=("", "_rfm"), validate="1:1")
    for col in ("frequency", "recency", "T", "monetary_value", "holdout_frequency"):
        # the report rounds value columns to 1e-9 (DuckDB's parallel sums differ in the
        # last bits between runs)
        np.testing.assert_allclose(merged[col], merged[f"{col}_rfm"], rtol=0, atol=1e-9)
    assert customers["p_alive"].between(0, 1).all()
    assert (customers["purchases_q05"] <= customers["purchases_q95"]).all()
    assert (customers["clv_q05"] <= customers["clv_q95"]).all()
    assert customers["p_top_decile"].sum() == pytest.approx(0.1 * len(customers), rel=1e-9)
    assert set(customers["segment"]) == {"web", "store & <b>shop</b>"}


@pytest.mark.slow
def test_plain_report_logs_stages_drops_optional_columns_and_replaces_old(
    sample_csv, report_dir, tmp_path, capsys
):
    out = tmp_path / "plain"
    shutil.copytree(report_dir, out)  # an earlier report (with segments: replaced whole)
    capsys.readouterr()
    args = ["report", str(sample_csv), *COLS, "--calibration-end", "1997-09-30"]
    args += ["--method", "map", "--draws", "50", "--chains", "1", "--out", str(out)]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(clvbayes.report.FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]
    err = capsys.readouterr().err
    for stage in ("read", "summarize", "fit BG/NBD", "fit Gamma-Gamma", "score", "analyse"):
        assert f"] {stage}: " in err and f"] {stage} done in " in err, stage
    assert "render" in err
    columns = pd.read_csv(out / "customers.csv", nrows=1).columns
    dropped = {"segment", "holdout_frequency", "holdout_value"}
    assert list(columns) == [c for c in CUSTOMER_COLUMNS if c not in dropped]
    summary = json.loads((out / "summary.json").read_text())
    assert "validation" not in summary and "segments" not in summary


def test_posterior_nc_loads_with_clvbayes_load(report_dir):
    fits = clvbayes.load(report_dir / "posterior.nc")
    assert {name: fit.kind for name, fit in fits.items()} == {
        "bgnbd": "BGNBD",
        "gamma_gamma": "GammaGamma",
    }


def test_summary_json_records_what_made_the_report(report_dir):
    summary = json.loads((report_dir / "summary.json").read_text())
    assert summary["seed"] == 0 and summary["arguments"]["method"] == "map"
    assert summary["versions"]["clvbayes"] == clvbayes.__version__
    assert len(summary["data"]["fingerprint"]) == 16
    assert set(summary["models"]) == {"bgnbd", "gamma_gamma"}
    # --segment-col: one set of parameters per segment, partially pooled
    levels = ("store & <b>shop</b>", "web")
    per_segment = {f"{p}[{lv}]" for p in ("r", "alpha", "a", "b") for lv in levels}
    hyper = {f"{h}_{s}" for h in ("r", "purchase_rate", "phi_dropout", "kappa_dropout")
             for s in ("mu", "sigma")}  # fmt: skip
    assert {row["parameter"] for row in summary["models"]["bgnbd"]["parameters"]} == (
        per_segment | hyper
    )
    validation = summary["validation"]
    assert [row["quantity"] for row in validation["totals"]] == ["purchases", "spend"]
    customers = pd.read_csv(report_dir / "customers.csv")
    assert validation["totals"][0]["actual"] == customers["holdout_frequency"].sum()
    assert {"read", "summarize", "fit BG/NBD", "score", "render"} <= set(summary["timings"])
    assert list(summary)[-1] == "timings"


@pytest.mark.slow
def test_same_arguments_and_seed_give_identical_files(sample_csv, report_dir, tmp_path, capsys):
    out = tmp_path / "again"
    args = ["report", str(sample_csv), *COLS, *PERIOD, *FAST, "--out", str(out)]
    assert main([*args, "--segment-col", "channel", "--cac", "20"]) == 0
    first = (report_dir / "customers.csv").read_bytes()
    assert (out / "customers.csv").read_bytes() == first

    def without_timings(path: Path) -> bytes:
        text = path.read_text()
        return text[: text.index('  "timings"')].encode()

    assert without_timings(out / "summary.json") == without_timings(report_dir / "summary.json")
    assert capsys.readouterr().err == ""  # --quiet


def test_index_html_parses_embeds_its_images_and_escapes_data(report_dir):
    html = (report_dir / "index.html").read_text()
    parser = _Collector()
    parser.feed(html)
    parser.close()
    assert not [t for t, _ in parser.tags if t in ("script", "iframe", "object", "embed", "link")]
    images = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
    assert len(images) >= 10
    assert all(src.startswith("data:image/png;base64,") for src in images)
    external = [
        attrs.get("href") or attrs.get("src")
        for _, attrs in parser.tags
        if (attrs.get("href") or attrs.get("src") or "#").split(":")[0] not in ("#", "data")
        and not (attrs.get("href") or "").startswith("#")
    ]
    assert external == []
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>shop</b>" not in html and "store &amp; &lt;b&gt;shop&lt;/b&gt;" in html
    text = " ".join(parser.text)
    for heading in ("Top customers", "Retention", "Average order value", "Value tiers",
                    "At-risk customers", "CLV versus acquisition cost", "Segments",
                    "Holdout validation"):  # fmt: skip
        assert heading in text
    assert "no convergence diagnostics" in text  # MAP fits: the note replaces the banner


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--customer-col", "nope"], "nope"),
        (["--calibration-end", "1997-13-45"], "calibration-end"),
        (["--holdout-end", "1997-01-01"], "before calibration_end"),
        (["--cac", "costs.csv"], "neither a number nor an existing CSV"),
        (["--method", "magic"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(sample_csv, tmp_path, capsys, change, message):
    out = tmp_path / "never"
    base = ["report", str(sample_csv), *COLS, *PERIOD, *FAST, "--out", str(out)]
    args = _with(base, change)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("clvbayes: error:") and message in err[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def _with(args: list[str], change: list[str]) -> list[str]:
    """``args`` with each ``--option value`` pair of ``change`` replacing or added."""
    out = list(args)
    for option, value in zip(change[::2], change[1::2], strict=True):
        if option in out:
            out[out.index(option) + 1] = value
        else:
            out += [option, value]
    return out


def test_bad_data_exits_2_with_one_line(sample_csv, tmp_path, capsys):
    bad_date = tmp_path / "bad_date.csv"
    lines = sample_csv.read_text().splitlines()
    lines[5] = lines[5].replace("1997-", "1997/x")
    bad_date.write_text("\n".join(lines) + "\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("customer_id,date,value\n")
    cases = {
        bad_date: "cannot be parsed as dates",
        empty: "0 rows",
        tmp_path / "missing.csv": "does not exist",
    }
    for path, message in cases.items():
        out = tmp_path / f"out_{path.stem}"
        assert main(["report", str(path), *COLS, *PERIOD, *FAST, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert not out.exists()


def test_unwritable_out_exits_2_before_any_work(sample_csv, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    for out in (blocker, blocker / "report"):
        assert main(["report", str(sample_csv), *COLS, *FAST, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and ("--out" in err[0] or "report directory" in err[0]), err
    assert blocker.read_text() == "not a directory"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed")
def test_page_renders_in_headless_chromium_without_console_errors(report_dir):
    result = subprocess.run(
        [
            _chromium(), "--headless", "--disable-gpu", "--no-sandbox",
            "--enable-logging=stderr", "--v=0", "--dump-dom",
            (report_dir / "index.html").resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    console = [
        line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line
    ]
    assert console == []
    assert "Holdout validation" in result.stdout and "<img" in result.stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in result.stdout


@pytest.mark.slow
def test_report_with_nuts_has_diagnostics_and_validation(sample_csv, tmp_path):
    """Small NUTS chains end to end: the banner reflects the diagnostics either way."""
    out = tmp_path / "nuts"
    args = ["report", str(sample_csv), *COLS, *PERIOD, "--method", "nuts", "--draws", "300"]
    args += ["--tune", "300", "--chains", "2", "--quiet", "--out", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    bgnbd = summary["models"]["bgnbd"]
    assert bgnbd["settings"]["sampler"] == "nutpie"
    assert {row["parameter"] for row in bgnbd["diagnostics"]} == {"r", "alpha", "a", "b"}
    html = (out / "index.html").read_text()
    assert 'id="diagnostics-banner"' in html
    failed = bool(summary["problems"])
    assert ("Convergence diagnostics failed" in html) == failed
    assert ("All convergence diagnostics passed" in html) == (not failed)
    # the published MLE on the sample (FHL 2005: r=0.243, alpha=4.414, a=0.793, b=2.426)
    means = {row["parameter"]: row["mean"] for row in bgnbd["parameters"]}
    assert means["r"] == pytest.approx(0.243, rel=0.15)
    assert means["alpha"] == pytest.approx(4.414, rel=0.2)
    totals = {row["quantity"]: row for row in summary["validation"]["totals"]}
    assert abs(totals["purchases"]["error_pct"]) < 15
