"""Database sources: a PostgreSQL table or query and a DuckDB database file.

The oracle is the file path: the same log as a CSV file, a DuckDB database file and
PostgreSQL tables (typed columns, and text dates with ``numeric`` values) must give
byte-identical ``rfm_summary`` frames, repeat-purchase counts, first-purchase values and
scans. PostgreSQL is a real server started by the ``postgres_url`` fixture
(``tests/conftest.py``); errors must read like the file path's and never show the
password.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from urllib.parse import quote, unquote

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import PG_PASSWORD

import clvbayes
from clvbayes.cli import main
from clvbayes.data.database import Database, redact_url
from clvbayes.data.rfm import first_purchase_values, repeat_purchase_times
from clvbayes.data.source import open_source, scan
from clvbayes.datasets import load_cdnow

COLUMNS = {"customer_col": "customer_id", "date_col": "date", "value_col": "value"}
PERIOD = {"calibration_end": "1997-09-30", "observation_end": "1998-06-30"}
SECRETS = (PG_PASSWORD, quote(PG_PASSWORD, safe=""))


def _with_port(url: str, port: int) -> str:
    """``url`` with another port (``postgresql://user:pw@host:PORT/db``)."""
    head, at, tail = url.rpartition("@")
    host, _, rest = tail.partition("/")
    return f"{head}{at}{host.rsplit(':', 1)[0]}:{port}/{rest}"


def _no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    """The CDNOW sample with text ids, timestamps with a time of day and cent values."""
    tx = load_cdnow("sample")[["customer_id", "date", "value"]].copy()
    rng = np.random.default_rng(0)
    tx["customer_id"] = "c" + tx["customer_id"].astype(str)
    seconds = rng.integers(0, 86_400, len(tx))
    tx["date"] = pd.to_datetime(tx["date"]) + pd.to_timedelta(seconds, unit="s")
    tx["value"] = np.round(tx["value"].to_numpy(float) + rng.integers(0, 100, len(tx)) / 100, 2)
    return tx.reset_index(drop=True)


@pytest.fixture(scope="module")
def csv_path(log, tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "log.csv"
    log.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def duckdb_path(csv_path):
    path = csv_path.with_name("log.duckdb")
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE orders AS SELECT * FROM read_csv($p, types={'customer_id': "
            "'VARCHAR', 'date': 'TIMESTAMP', 'value': 'DOUBLE'})",
            {"p": str(csv_path)},
        )
        con.execute("CREATE SCHEMA shop")
        con.execute("CREATE TABLE shop.empty AS SELECT * FROM orders LIMIT 0")
    return path


def _pg_execute(url: str, *statements: str, ingest: dict | None = None) -> None:
    import adbc_driver_postgresql.dbapi as dbapi

    with dbapi.connect(url) as con, con.cursor() as cur:
        for name, table in (ingest or {}).items():
            cur.adbc_ingest(name, table, mode="replace")
        for sql in statements:
            cur.execute(sql)
        con.commit()


@pytest.fixture(scope="module")
def pg_url(postgres_url, log):
    """The server with the log as ``orders`` (text, timestamp, float8), ``orders_text``
    (text dates, numeric values), an empty table and one with a bad date."""
    table = pa.table({
        "customer_id": log["customer_id"].astype(str).to_numpy(),
        "date": log["date"].to_numpy(),
        "value": log["value"].to_numpy(float),
    })  # fmt: skip
    _pg_execute(
        postgres_url,
        'DROP TABLE IF EXISTS orders_text, empty_orders, bad_orders, "Mixed Case"',
        "CREATE TABLE orders_text AS SELECT customer_id, to_char(date, "
        "'YYYY-MM-DD HH24:MI:SS') AS date, value::numeric(12, 2) AS value FROM orders",
        "CREATE TABLE empty_orders AS SELECT * FROM orders LIMIT 0",
        "CREATE TABLE bad_orders AS SELECT customer_id, CASE WHEN row_number() OVER () = 7 "
        "THEN 'soon' ELSE date::text END AS date, value FROM orders",
        'CREATE TABLE "Mixed Case" AS SELECT * FROM orders',
        ingest={"orders": table},
    )
    return postgres_url


@pytest.fixture(scope="module")
def sources(pg_url, duckdb_path):
    """Every database form of the log (the oracle is the CSV file)."""
    return {
        "duckdb table": Database(duckdb_path, table="orders"),
        "duckdb query": Database(f"duckdb:{duckdb_path}", query="SELECT * FROM orders;"),
        "postgres table": Database(pg_url, table="orders"),
        "postgres text and numeric": Database(pg_url, table="ORDERS_TEXT"),
        "postgres query": Database(
            pg_url, query="SELECT customer_id, date, value FROM orders WHERE value >= 0"
        ),
        "postgres quoted name": Database(pg_url, table="Mixed Case"),
    }


NAMES = [
    "duckdb table",
    "duckdb query",
    "postgres table",
    "postgres text and numeric",
    "postgres query",
    "postgres quoted name",
]


@pytest.mark.parametrize("name", NAMES)
def test_rfm_summary_is_byte_identical_to_the_csv_files(name, sources, csv_path):
    expected = clvbayes.rfm_summary(csv_path, **COLUMNS, **PERIOD)
    got = clvbayes.rfm_summary(sources[name], **COLUMNS, **PERIOD)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got.to_csv(index=False) == expected.to_csv(index=False)
    assert len(got) == 2357 and got["frequency"].sum() > 0


@pytest.mark.parametrize("name", ["duckdb table", "postgres text and numeric"])
def test_other_summaries_and_the_scan_match_the_csv_files(name, sources, csv_path):
    db = sources[name]
    ids = {"customer_col": "customer_id", "date_col": "date"}
    args = {**ids, "calibration_end": "1997-09-30", "observation_end": "1998-06-30"}
    pd.testing.assert_series_equal(
        repeat_purchase_times(db, **args), repeat_purchase_times(csv_path, **args)
    )
    # values of the first purchase (here: the value column, as text)
    first = {**ids, "columns": ["value"], "calibration_end": "1997-09-30"}
    expected = first_purchase_values(csv_path, **first)
    got = first_purchase_values(db, **first)
    np.testing.assert_array_equal(got["customer_id"], expected["customer_id"])
    np.testing.assert_array_equal(
        got["value"].astype(float).round(2), expected["value"].astype(float).round(2)
    )
    checked = clvbayes.validate_transactions(db, **COLUMNS)
    reference = clvbayes.validate_transactions(csv_path, **COLUMNS)
    assert checked["n"] == reference["n"] == 6919
    assert (checked["first_day"], checked["last_day"]) == (
        reference["first_day"],
        reference["last_day"],
    )


def test_every_pass_reads_one_snapshot_of_postgres(pg_url, log):
    """Rows committed while the source is open are not seen: the checks and the summary
    of one call agree even when the table is being written to."""
    db = Database(pg_url, table="orders")
    with open_source(db, customer_col="customer_id", date_col="date") as source:
        before = scan(source)["n"]
        _pg_execute(pg_url, "INSERT INTO orders SELECT * FROM orders LIMIT 10")
        try:
            assert scan(source)["n"] == before == len(log)
        finally:
            _pg_execute(pg_url, "DELETE FROM orders WHERE ctid IN (SELECT ctid FROM orders "
                        "ORDER BY ctid DESC LIMIT 10)")  # fmt: skip
    with open_source(db, customer_col="customer_id", date_col="date") as source:
        assert scan(source)["n"] == len(log)


def test_timestamptz_days_follow_the_session_time_zone(pg_url):
    """23:30 UTC on 1 January is 2 January in Berlin: the day is what ``::date`` gives."""
    _pg_execute(
        pg_url,
        "DROP TABLE IF EXISTS tz_orders",
        "CREATE TABLE tz_orders (customer_id int, date timestamptz)",
        "INSERT INTO tz_orders VALUES (1, '2020-01-01 12:00+00'), (1, '2020-01-08 23:30+00')",
    )
    kw = {"customer_col": "customer_id", "date_col": "date", "time_unit": "D"}
    utc = clvbayes.rfm_summary(
        Database(pg_url + "?options=-c%20TimeZone%3DUTC", table="tz_orders"), **kw
    )
    berlin = clvbayes.rfm_summary(
        Database(pg_url + "?options=-c%20TimeZone%3DEurope/Berlin", table="tz_orders"), **kw
    )
    assert utc["recency"].iloc[0] == 7.0
    assert berlin["recency"].iloc[0] == 8.0


BAD_INPUT = [
    ("postgres", {"table": "orders"}, {"value_col": "amount"},
     ["column 'amount' not found", "table 'orders'", "'value'", "--value-col"]),
    ("postgres", {"table": "bad_orders"}, {},
     ["column 'date': 1 of 6,919 rows cannot be parsed as dates", "'soon'", "ISO 8601"]),
    ("postgres", {"table": "empty_orders"}, {},
     ["table 'empty_orders'", "are empty (0 rows)"]),
    ("postgres", {"table": "nope"}, {},
     ["table 'nope' not found", "'orders'", "--table"]),
    ("postgres", {"query": "SELEC * FROM orders"}, {},
     ["the query failed", "syntax error", "--query"]),
    ("postgres", {"query": "SELECT * FROM nowhere"}, {},
     ['relation "nowhere" does not exist', "--query"]),
    ("postgres", {"query": "SELECT customer_id, date, value / 0 AS value FROM orders"}, {},
     ["could not read query", "division by zero"]),
    ("refused", {"table": "orders"}, {},
     ["could not connect to", "Connection refused", "server is running"]),
    ("wrong password", {"table": "orders"}, {},
     ["password authentication failed", "PGPASSWORD"]),
    ("duckdb", {"table": "nope"}, {},
     ["table 'nope' not found in DuckDB database file", "'orders', 'shop.empty'"]),
    ("duckdb", {"table": "shop.empty"}, {}, ["table 'shop.empty'", "are empty (0 rows)"]),
    ("not duckdb", {"table": "orders"}, {}, ["is not a DuckDB database file"]),
]  # fmt: skip


@pytest.mark.parametrize(("where", "what", "change", "needles"), BAD_INPUT)
def test_bad_database_input_gets_a_clear_error_without_the_password(
    where, what, change, needles, pg_url, duckdb_path, csv_path
):
    url = {
        "postgres": pg_url,
        "refused": _with_port(pg_url, 1),
        "wrong password": pg_url.replace(quote(PG_PASSWORD, safe=""), "wrong"),
        "duckdb": str(duckdb_path),
        "not duckdb": str(csv_path),
    }[where]
    with pytest.raises(ValueError) as caught:
        clvbayes.rfm_summary(Database(url, **what), **{**COLUMNS, **change})
    message = str(caught.value)
    for needle in needles:
        assert needle in message, message
    assert "Traceback" not in message and "\n" not in message
    _no_secret(message)
    assert caught.value.__cause__ is None or "adbc" not in type(caught.value.__cause__).__module__


def test_a_missing_duckdb_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"DuckDB database file .*nope\.duckdb' does not"):
        clvbayes.rfm_summary(Database(tmp_path / "nope.duckdb", table="t"), **COLUMNS)
    assert not (tmp_path / "nope.duckdb").exists()  # read-only: nothing created


def test_urls_never_show_the_password():
    url = "postgresql://shop:s%40cret@db:5432/sales?sslmode=require&password=other&x=1"
    assert redact_url(url) == (
        "postgresql://shop:***@db:5432/sales?sslmode=require&password=***&x=1"
    )
    assert redact_url(url, None) == "postgresql://shop@db:5432/sales?sslmode=require&x=1"
    assert redact_url("orders.duckdb") == "orders.duckdb"
    db = Database(url, query="SELECT 1")
    for text in (repr(db), str(db), db.description, str(db.arguments())):
        assert "s%40cret" not in text and "s@cret" not in text and "other" not in text
    assert db.arguments() == {
        "transactions": "postgresql://shop@db:5432/sales?sslmode=require&x=1",
        "table": None,
        "query": "SELECT 1",
    }
    assert unquote("s%40cret") == "s@cret"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "postgresql://db/sales"}, "exactly one of table= (--table) and query="),
        ({"url": "postgresql://db/s", "table": "t", "query": "q"}, "got both"),
        ({"url": "mysql://db/sales", "table": "t"}, "unsupported database URL scheme"),
        ({"url": "postgresql://db/s", "table": " "}, "table= must be non-empty"),
    ],
)
def test_database_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Database(**kwargs)


def test_cli_rfm_reads_a_table_and_writes_what_the_file_gives(pg_url, csv_path, tmp_path):
    args = ["--customer-col", "customer_id", "--date-col", "date", "--value-col", "value"]
    args += ["--calibration-end", "1997-09-30"]
    assert main(["rfm", str(csv_path), *args, "--out", str(tmp_path / "file.csv")]) == 0
    out = tmp_path / "db.csv"
    assert main(["rfm", pg_url, "--table", "orders", *args, "--out", str(out)]) == 0
    assert out.read_bytes() == (tmp_path / "file.csv").read_bytes()


def test_cli_database_errors_are_one_line_without_the_password(pg_url, tmp_path, capsys):
    base = ["--customer-col", "customer_id", "--date-col", "date"]
    refused = _with_port(pg_url, 1)
    cases = [
        (["rfm", refused, "--table", "orders"], "could not connect to"),
        (["rfm", pg_url, "--table", "nope"], "table 'nope' not found"),
        (["rfm", pg_url], "a database URL needs --table or --query"),
        (["rfm", pg_url, "--table", "a", "--query", "b"], "not allowed with argument"),
    ]
    for args, needle in cases:
        assert main([*args, *base, "--out", str(tmp_path / "x.csv")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("clvbayes: error:") and needle in err[0], err
        _no_secret(err[0])
    assert not (tmp_path / "x.csv").exists()


def test_first_day_of_a_date_column_is_a_date(pg_url):
    """A ``date`` column (not a timestamp) reads as dates too."""
    _pg_execute(
        pg_url,
        "DROP TABLE IF EXISTS day_orders",
        "CREATE TABLE day_orders AS SELECT customer_id, date::date AS date FROM orders",
    )
    checked = clvbayes.validate_transactions(
        Database(pg_url, table="day_orders"), customer_col="customer_id", date_col="date"
    )
    assert checked["first_day"] == dt.date(1997, 1, 1)


@pytest.mark.slow
def test_report_is_the_same_from_a_csv_file_duckdb_and_postgres(
    pg_url, duckdb_path, log, tmp_path, monkeypatch
):
    """``customers.csv`` byte for byte; the password nowhere in the report, and
    ``summary.json`` rebuilds the report with the password from ``PGPASSWORD``.

    The customers whose ids sort below 'c15' (in byte order, the PostgreSQL cluster's C
    collation): the queries select them in each database, the CSV file holds them."""
    subset = "SELECT * FROM orders WHERE customer_id < 'c15'"
    csv = tmp_path / "subset.csv"
    chosen = log[log["customer_id"] < "c15"]
    chosen.to_csv(csv, index=False)
    options = ["--customer-col", "customer_id", "--date-col", "date", "--value-col", "value",
               "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30",
               "--method", "map", "--draws", "100", "--chains", "1", "--quiet"]  # fmt: skip
    runs = {
        "csv": [str(csv)],
        "duckdb": [str(duckdb_path), "--query", subset],
        "postgres": [pg_url, "--query", subset],
    }
    for name, source in runs.items():
        assert main(["report", *source, *options, "--out", str(tmp_path / name)]) == 0
    expected = (tmp_path / "csv" / "customers.csv").read_bytes()
    assert expected.count(b"\n") == chosen["customer_id"].nunique() + 1
    for name in ("duckdb", "postgres"):
        assert (tmp_path / name / "customers.csv").read_bytes() == expected, name
    for path in (tmp_path / "postgres").iterdir():
        _no_secret(path.read_bytes().decode("latin-1"))
    summary = json.loads((tmp_path / "postgres" / "summary.json").read_text())
    assert summary["arguments"]["transactions"] == redact_url(pg_url, None)
    assert summary["arguments"]["query"] == subset
    assert summary["data"]["transactions file"] == f"query {subset!r} in {redact_url(pg_url)}"
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)
    again = tmp_path / "again"
    config = str(tmp_path / "postgres" / "summary.json")
    assert main(["report", "--config", config, "--out", str(again), "--quiet"]) == 0
    assert (again / "customers.csv").read_bytes() == expected
