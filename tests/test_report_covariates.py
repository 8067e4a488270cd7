"""`clvbayes report --customer-table FILE --covariates a,b`: covariates in the report.

End-to-end on 600 customers of the CDNOW sample with MAP fits (a few seconds). Oracles:
``clvbayes.load`` (the stored models have the covariates), the library's
``covariate_effects`` on the same fits (the report's section is that table), and the
plain report (``customers.csv`` keeps its columns).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes.cli import main
from clvbayes.covariates import covariate_effects
from clvbayes.datasets import load_cdnow
from clvbayes.report import CUSTOMER_COLUMNS

COLS = ["--customer-col", "customer_id", "--date-col", "date", "--value-col", "value"]
PERIOD = ["--calibration-end", "1997-09-30"]
FAST = ["--method", "map", "--draws", "100", "--chains", "1", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    """600 CDNOW-sample customers' transactions, and a customer table with a 0/1 column,
    a numeric one and a text one."""
    tx = load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:600])]
    folder = tmp_path_factory.mktemp("covariates")
    rng = np.random.default_rng(3)
    ids = tx["customer_id"].unique()
    table = pd.DataFrame(
        {
            "customer_id": ids,
            "web": rng.integers(0, 2, ids.size),
            "age": np.round(rng.normal(40, 10, ids.size), 1),
            "region": np.where(rng.random(ids.size) < 0.5, "north", "south"),
        }
    )
    tx.to_csv(folder / "tx.csv", index=False)
    table.to_csv(folder / "customers.csv", index=False)
    return folder / "tx.csv", folder / "customers.csv"


@pytest.fixture(scope="module")
def report_dir(files, tmp_path_factory) -> Path:
    tx, customers = files
    out = tmp_path_factory.mktemp("out") / "report"
    extra = ["--customer-table", str(customers), "--covariates", "web,age"]
    assert main(["report", str(tx), *COLS, *PERIOD, *FAST, *extra, "--out", str(out)]) == 0
    return out


def test_report_fits_the_covariates_and_shows_their_effects(report_dir):
    fits = clvbayes.load(report_dir / "posterior.nc")
    assert fits["bgnbd"].covariates == ("web", "age")
    assert fits["bgnbd"].spec.options()["dropout_covariates"] == ["web", "age"]
    assert fits["gamma_gamma"].covariates == ("web", "age")
    summary = json.loads((report_dir / "summary.json").read_text())
    effects = pd.DataFrame(summary["covariate_effects"])
    assert list(effects["covariate"]) == ["web", "age"]
    assert summary["arguments"]["covariates"] == ["web", "age"]
    page = (report_dir / "index.html").read_text()
    assert 'id="covariates"' in page and "Covariate effects" in page
    assert "purchase_coefficient[web]" in page
    customers = pd.read_csv(report_dir / "customers.csv")
    assert list(customers.columns) == [c for c in CUSTOMER_COLUMNS if c != "segment"][:-2]


def test_report_section_is_the_librarys_covariate_effects(report_dir, files):
    fits = clvbayes.load(report_dir / "posterior.nc")
    table = pd.read_csv(files[1])
    rfm = fits["bgnbd"].data  # the fitted customers: the reference is their mean
    means = {c: float(rfm.moments(f"covariate_{c}")[0]) for c in ("web", "age")}
    ours = covariate_effects(
        fits["bgnbd"], fits["gamma_gamma"], time_unit="W", annual_discount=0.10, reference=means
    )
    summary = json.loads((report_dir / "summary.json").read_text())
    shown = pd.DataFrame(summary["covariate_effects"])
    np.testing.assert_allclose(shown["clv_change_mean"], ours.summary["clv_change_mean"])
    assert len(table) == 600


def test_covariates_can_come_from_the_transaction_log(files, tmp_path):
    tx, customers = files
    log = pd.read_csv(tx).merge(pd.read_csv(customers), on="customer_id")
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    out = tmp_path / "report"
    args = ["report", str(path), *COLS, *PERIOD, *FAST, "--covariates", "web", "--out", str(out)]
    assert main(args) == 0
    assert clvbayes.load(out / "posterior.nc")["bgnbd"].covariates == ("web",)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--customer-table", "{table}"], "--customer-table needs --covariates"),
        (["--covariates", "web,,age"], "give column names separated by commas"),
        (["--customer-table", "{table}", "--covariates", "height"], r"\['height'\] not found"),
        (["--customer-table", "{table}", "--covariates", "region"], "'region' is not numeric"),
        (["--covariates", "web"], "column 'web' not found in the transactions"),
        (["--customer-table", "{missing}", "--covariates", "web"], "no such file"),
        (
            ["--customer-table", "{partial}", "--covariates", "web"],
            "1 of 600 customers have no row",
        ),
        (["--customer-table", "{twice}", "--covariates", "web"], r"1 customer\(s\) have more than"),
        (["--customer-table", "{clash}", "--covariates", "T"], r"\['T'\] are already in"),
    ],
)
def test_bad_covariate_options_exit_2_with_one_line(files, tmp_path, capsys, extra, message):
    tx, customers = files
    partial = tmp_path / "partial.csv"
    table = pd.read_csv(customers)
    table.iloc[1:].to_csv(partial, index=False)
    twice, clash = tmp_path / "twice.csv", tmp_path / "clash.csv"
    pd.concat([table, table.iloc[:1]]).to_csv(twice, index=False)
    table.assign(T=1.0).to_csv(clash, index=False)
    names = {"table": customers, "missing": tmp_path / "nope.csv", "partial": partial}
    names.update(twice=twice, clash=clash)
    extra = [e.format(**names) for e in extra]
    out = tmp_path / "report"
    assert main(["report", str(tx), *COLS, *PERIOD, *FAST, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    import re

    assert re.search(message, err), err
