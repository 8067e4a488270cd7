"""Transaction logs in a database: a PostgreSQL table or query, or a DuckDB database file.

:class:`Database` names the log -- ``Database("postgresql://shop@db.example/sales",
table="orders")``, ``Database("shop.duckdb", query="SELECT ...")`` -- and is accepted
wherever a transaction log is (:func:`clvbayes.rfm_summary`,
:func:`clvbayes.validate_transactions`, :func:`clvbayes.data.rfm.repeat_purchase_times`,
:func:`clvbayes.data.rfm.first_purchase_values`, ``clvbayes rfm`` and ``clvbayes report``
with ``--table``/``--query``). It registers itself as the view ``src`` of
:func:`clvbayes.data.source.open_source`, so the checks and summaries run the very SQL
they run on a CSV or Parquet file and give the same numbers, byte for byte.

How each database is read
-------------------------
* **DuckDB database file** (a path, or ``duckdb:path``): attached read-only; the checks
  and the summary run inside it.
* **PostgreSQL** (``postgresql://`` or ``postgres://`` URL, libpq's form): through ADBC
  (the ``adbc-driver-postgresql`` wheel, which bundles libpq: ``pip install
  'clvbayes[db]'``; nothing is downloaded at run time). PostgreSQL runs the query (or
  reads the table) and sends only the columns needed, as Arrow batches over its binary
  COPY protocol; DuckDB aggregates the batches as they arrive, so the log never has to fit
  in memory, whatever its size. Each pass (the checks, the summary) reads the rows anew,
  all from one consistent snapshot (a ``REPEATABLE READ, READ ONLY`` transaction whose
  snapshot every pass joins), so a table written to meanwhile gives consistent numbers.
  Nothing is written to the database.

  Why the aggregation is not in PostgreSQL itself: DuckDB's own PostgreSQL scanner (which
  pushes work down) is an extension that DuckDB downloads at run time, and the packages
  on PyPI that ship it are built for older DuckDB versions than this one, which refuses
  them. Writing the summary and every check a second time in PostgreSQL's dialect would
  duplicate all of them and could not promise the same floating-point output.

Column types: text, integer, floating-point, ``numeric`` (read as text and parsed like a
CSV file's values), ``date``, ``timestamp`` and ``timestamptz``. Dates may also be ISO
8601 text. A PostgreSQL ``timestamptz`` counts on its calendar day in the session's
``TimeZone`` (what ``date_col::date`` gives in psql; set it in the URL with
``?options=-c%20TimeZone%3DEurope/Berlin``); a DuckDB ``TIMESTAMPTZ`` on its UTC day.

Credentials: a password in the URL is never shown -- not in error messages, reprs or the
report (``***`` stands in for it), and ``summary.json`` records the URL without it.
Prefer libpq's ``PGPASSWORD`` environment variable or ``~/.pgpass`` file, which keep it
out of the command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from clvbayes.data.source import Columns, Registered, check_columns, literal, quote

__all__ = ["DUCKDB_SUFFIXES", "POSTGRES_SCHEMES", "Database", "redact_url"]

POSTGRES_SCHEMES = ("postgresql", "postgres")
"""URL schemes read as PostgreSQL."""

DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".db")
"""File name endings of DuckDB database files (any other path works too)."""

_MASK = "***"
_SECRET_PARAMETERS = ("password", "sslpassword")
_ALIAS = "clvbayes_db"  # the DuckDB file's name in the private connection
_LISTED = 20  # tables named in a "table not found" message


# --- URLs ------------------------------------------------------------------------------


def redact_url(url: str, mask: str | None = _MASK) -> str:
    """``url`` with its password (and ``password=``/``sslpassword=`` parameters) hidden.

    Parameters
    ----------
    url : str
        A database URL, e.g. ``postgresql://shop:secret@db/sales?sslmode=require``.
    mask : str or None
        What stands in for a password (``"***"``); None removes it.

    Returns
    -------
    str
        E.g. ``postgresql://shop:***@db/sales?sslmode=require`` (or, with ``mask=None``,
        ``postgresql://shop@db/sales?sslmode=require``). Text that is not a URL is
        returned unchanged.

    Examples
    --------
    >>> redact_url("postgresql://shop:s3cret@db:5432/sales")
    'postgresql://shop:***@db:5432/sales'
    """
    if "://" not in url:
        return url
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at and ":" in userinfo:
        user = userinfo.partition(":")[0]
        netloc = f"{user}{'' if mask is None else ':' + mask}@{hosts}"
    kept = []
    for item in parts.query.split("&") if parts.query else []:
        key, eq, _ = item.partition("=")
        if unquote(key).lower() in _SECRET_PARAMETERS:
            if mask is not None:
                kept.append(f"{key}{eq}{mask}")
        else:
            kept.append(item)
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(kept), parts.fragment))


def _secrets(url: str) -> list[str]:
    """The password(s) in ``url``, raw and percent-decoded, to scrub from messages."""
    if "://" not in url:
        return []
    parts = urlsplit(url)
    found = []
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    for item in parts.query.split("&") if parts.query else []:
        key, _, value = item.partition("=")
        if unquote(key).lower() in _SECRET_PARAMETERS:
            found.append(value)
    return [s for raw in found if raw for s in {raw, unquote(raw)}]


def _short(sql: str, width: int = 60) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _query_text(query: str) -> str:
    """The query without trailing semicolons (it becomes a subquery)."""
    return query.strip().rstrip(";").strip()


# --- the log ---------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Database:
    """A transaction log in a database: a table, or the rows of a query.

    Pass it wherever a transaction log is accepted (:func:`clvbayes.rfm_summary`,
    :func:`clvbayes.validate_transactions`, ...); see :mod:`clvbayes.data.database` for
    how it is read.

    Parameters
    ----------
    url : str or Path
        ``postgresql://[user[:password]@][host][:port][/dbname][?param=value...]``
        (libpq's URL; ``postgres://`` too), or the path of a DuckDB database file
        (optionally as ``duckdb:path``). A password is better kept in ``PGPASSWORD`` or
        ``~/.pgpass`` than in the URL; it is never shown either way.
    table : str, optional
        The table (or view) holding one row per transaction: ``orders`` or
        ``schema.orders``. In PostgreSQL unquoted names are folded to lower case, as in
        SQL; a mixed-case name is found as written when the folded one does not exist.
    query : str, optional
        A ``SELECT`` giving one row per transaction, in the database's own SQL, e.g.
        ``SELECT customer_id, ordered_at, amount FROM orders WHERE shop = 'eu'``. It runs
        in the database, read-only.

    Exactly one of ``table`` and ``query`` is given.

    Examples
    --------
    >>> Database("postgresql://shop:s3cret@db.example/sales", table="orders")
    Database('postgresql://shop:***@db.example/sales', table='orders')
    """

    url: str
    table: str | None = None
    query: str | None = None

    def __post_init__(self) -> None:
        url = os.fspath(self.url) if isinstance(self.url, os.PathLike) else self.url
        if not isinstance(url, str) or not url.strip():
            raise TypeError(
                "Database url must be a postgresql:// URL or the path of a DuckDB database "
                f"file; got {url!r}."
            )
        object.__setattr__(self, "url", url.strip())
        if (self.table is None) == (self.query is None):
            raise ValueError(
                f"a database log needs exactly one of table= (--table) and query= (--query); "
                f"got {'both' if self.table is not None else 'neither'} for "
                f"{redact_url(self.url)}."
            )
        for name in ("table", "query"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name}= must be non-empty text, got {value!r}.")
        _ = self.kind  # an unsupported URL scheme fails here

    @property
    def kind(self) -> str:
        """``"postgresql"`` or ``"duckdb"``."""
        scheme = self.url.partition("://")[0].lower() if "://" in self.url else None
        if scheme in POSTGRES_SCHEMES:
            return "postgresql"
        if scheme is None or scheme == "duckdb":
            return "duckdb"
        raise ValueError(
            f"unsupported database URL scheme {scheme + '://'!r} in {redact_url(self.url)}; "
            "use a postgresql:// URL or the path of a DuckDB database file."
        )

    @property
    def path(self) -> Path:
        """The DuckDB database file (for ``kind == "duckdb"``)."""
        url = self.url
        if url.lower().startswith("duckdb:"):
            url = url[len("duckdb:") :]
            url = url[2:] if url.startswith("//") else url
        return Path(url)

    @property
    def where(self) -> str:
        """The database, for messages (the password masked)."""
        if self.kind == "duckdb":
            return f"DuckDB database file {str(self.path)!r}"
        return redact_url(self.url)

    @property
    def description(self) -> str:
        """E.g. ``table 'orders' in postgresql://shop:***@db/sales`` (never a password)."""
        what = (
            f"table {self.table!r}" if self.table is not None else f"query {_short(self.query)!r}"
        )
        return f"{what} in {self.where}"

    @property
    def subject(self) -> str:
        """How messages about the whole log name it."""
        return f"the transactions ({self.description})"

    def arguments(self) -> dict[str, str | None]:
        """``transactions`` (the URL without its password), ``table`` and ``query``: what
        a report's ``summary.json`` records to be run again (``--config``)."""
        url = redact_url(self.url, None) if self.kind == "postgresql" else self.url
        return {"transactions": url, "table": self.table, "query": self.query}

    def __repr__(self) -> str:
        what = f"table={self.table!r}" if self.table is not None else f"query={self.query!r}"
        return f"Database({redact_url(self.url)!r}, {what})"

    __str__ = __repr__

    def register_view(self, connection: Any, columns: Columns) -> Registered:
        """Create the view ``src`` of the log on ``connection`` (the
        :class:`~clvbayes.data.source.ViewReader` protocol of
        :func:`~clvbayes.data.source.open_source`)."""
        if self.kind == "duckdb":
            return _register_duckdb(self, connection, columns)
        return _register_postgres(self, connection, columns)


# --- DuckDB files ----------------------------------------------------------------------


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _register_duckdb(db: Database, con: Any, columns: Columns) -> Registered:
    import duckdb

    path = db.path
    if path.is_dir():
        raise ValueError(f"{db.where} is a directory; pass the database file itself.")
    if not path.is_file():
        raise FileNotFoundError(f"{db.where} does not exist.")
    with open(path, "rb") as handle:
        header = handle.read(12)
    if header[8:12] != b"DUCK":
        raise ValueError(
            f"{str(path)!r} is not a DuckDB database file; pass one written by DuckDB with "
            "table= or query= (--table/--query), or a CSV or Parquet file without them."
        )
    try:
        con.execute(f"ATTACH {literal(str(path))} AS {_ALIAS} (READ_ONLY)")
        con.execute(f"USE {_ALIAS}")
    except duckdb.Error as err:
        raise ValueError(
            f"could not open {str(path)!r} as a DuckDB database file ({_first_line(err)}); "
            "pass a file written by DuckDB, not in use by a process writing to it."
        ) from None
    if db.table is not None:
        relation = _duckdb_table(con, db)
    else:
        relation = f"({_query_text(db.query)}) AS q"
    try:
        con.execute(f"CREATE TEMP VIEW src AS SELECT * FROM {relation}")
        names = [row[0] for row in con.execute("DESCRIBE src").fetchall()]
    except duckdb.Error as err:
        raise ValueError(
            f"the query failed in {db.where}: {_first_line(err)}; fix the query (query=, --query)."
        ) from None
    check_columns(names, columns.required, db.subject)
    return Registered(None, db.description, subject=db.subject)


def _duckdb_table(con: Any, db: Database) -> str:
    """The quoted, qualified name of ``db.table`` in the attached file, or ``ValueError``."""
    rows = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = $db "
        "UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
        "WHERE database_name = $db AND NOT internal ORDER BY 1, 2",
        {"db": _ALIAS},
    ).fetchall()
    wanted = db.table.strip()
    for same in (str.__eq__, lambda a, b: a.lower() == b.lower()):
        found = [(s, t) for s, t in rows if same(t, wanted) or same(f"{s}.{t}", wanted)]
        if len(found) == 1:
            schema, table = found[0]
            return f"{_ALIAS}.{quote(schema)}.{quote(table)}"
        if len(found) > 1:
            names = [f"{s}.{t}" for s, t in found]
            raise ValueError(
                f"table {wanted!r} is ambiguous in {db.where} ({names}); pass it with its "
                "schema, e.g. table='main.orders' (--table main.orders)."
            )
    raise _table_not_found(db, [t if s == "main" else f"{s}.{t}" for s, t in rows])


def _table_not_found(db: Database, tables: list[str]) -> ValueError:
    if tables:
        shown = ", ".join(repr(t) for t in tables[:_LISTED])
        more = " and more" if len(tables) > _LISTED else ""
        have = f"tables there: {shown}{more}"
    else:
        have = "it has no tables"
    return ValueError(
        f"table {db.table!r} not found in {db.where} ({have}); pass the right name with "
        "table= (--table), or a query= (--query)."
    )


# --- PostgreSQL ------------------------------------------------------------------------


def _adbc() -> Any:
    """The ADBC PostgreSQL driver's DB-API module."""
    try:
        import adbc_driver_postgresql.dbapi as dbapi
    except ImportError as err:
        raise ImportError(
            "reading a PostgreSQL database needs the adbc-driver-postgresql package (its "
            "wheel bundles libpq): pip install 'clvbayes[db]'."
        ) from err
    return dbapi


_HINTS = (
    ("connection refused", "check that the PostgreSQL server is running and that the host "
     "and port in the URL are right"),
    ("timeout expired", "check that the PostgreSQL server is running and reachable at the "
     "host and port in the URL"),
    ("could not translate host name", "check the host name in the URL"),
    ("password authentication failed", "check the user name and password (keep the password "
     "in PGPASSWORD or ~/.pgpass rather than in the URL)"),
    ("no password supplied", "give the password in PGPASSWORD or ~/.pgpass (or in the URL)"),
    ("role \"", "check the user name in the URL"),
    ("database \"", "check the database name at the end of the URL"),
    ("permission denied", "grant the user SELECT on the table, or connect as another user"),
)  # fmt: skip


def _driver_text(err: BaseException) -> str:
    """The driver's message without its status code, prefixes, SQL echo and caret."""
    text = str(err)
    text = re.split(r"\n\s*(?:LINE \d+:|Query was:)|\. SQLSTATE:", text)[0]
    text = re.sub(r"^[A-Z_]+: ", "", text.strip())
    text = re.sub(
        r"\[libpq\] |Failed to [a-z ]+: |could not begin COPY: |Execution error \[\w+\]: ", "", text
    )
    text = re.sub(r"(?:FATAL|ERROR):\s+", "", text)
    return " ".join(text.split()).rstrip(".")


def _scrub(text: str, db: Database) -> str:
    for secret in _secrets(db.url):
        text = text.replace(secret, _MASK)
    return text


def _pg_reason(err: BaseException, db: Database, fix: str) -> str:
    """The server's reason for ``err`` and the fix (``fix`` unless a known cause's)."""
    reason = _driver_text(err)
    lowered = reason.lower()
    hint = next((h for key, h in _HINTS if key in lowered), fix)
    return _scrub(f"{reason}; {hint}.", db)


def _pg_error(err: BaseException, db: Database, doing: str, fix: str) -> ValueError:
    """A driver error as one sentence: what failed, where, the server's reason, the fix."""
    return ValueError(f"{doing} {db.where}: {_pg_reason(err, db, fix)}")


def _connect(dbapi: Any, db: Database) -> Any:
    try:
        return dbapi.connect(db.url)
    except dbapi.Error as err:
        raise _pg_error(err, db, "could not connect to", "check the URL") from None


def _begin(dbapi: Any, db: Database, cursor: Any, snapshot: str | None = None) -> None:
    """Start a read-only transaction with one snapshot for all reads (``snapshot``: join
    an exported one)."""
    statements = ["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"]
    if snapshot is not None:
        statements.append(f"SET TRANSACTION SNAPSHOT {literal(snapshot)}")
    for sql in statements:
        try:
            cursor.execute(sql)
        except dbapi.Error as err:
            raise _pg_error(
                err, db, "could not start a read-only transaction in", "check the URL"
            ) from None


def _export_snapshot(dbapi: Any, cursor: Any) -> str | None:
    """The snapshot id every pass joins, or None where the server cannot export one."""
    try:
        cursor.execute("SELECT pg_export_snapshot()")
        return cursor.fetchone()[0]
    except dbapi.Error:
        return None  # e.g. a pooler in transaction mode: each pass then has its own snapshot


def _pg_table(dbapi: Any, db: Database, connection: Any, cursor: Any) -> str:
    """The quoted, qualified name of ``db.table`` (as PostgreSQL resolves it), or raise.

    The name is read as SQL would read it (``Orders`` is ``orders``, ``sales.orders`` is
    in schema ``sales``); failing that, as one quoted name (``"Mixed Case"``).
    """
    wanted = db.table.strip()
    name = None
    for candidate in (wanted, '"' + wanted.replace('"', '""') + '"'):
        try:
            cursor.execute(f"SELECT to_regclass({literal(candidate)})::text")
            (name,) = cursor.fetchone()
        except dbapi.Error:  # not a valid name (e.g. a.b.c.d)
            connection.rollback()  # the failed statement ended the transaction
            _begin(dbapi, db, cursor)
        if name is not None:
            break
    if name is not None:
        return name
    cursor.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema "
        "NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        f" LIMIT {_LISTED + 1}"
    )
    tables = [t if s == "public" else f"{s}.{t}" for s, t in cursor.fetchall()]
    raise _table_not_found(db, tables)


def _pg_schema(dbapi: Any, db: Database, cursor: Any, sql: str) -> Any:
    """The Arrow schema of ``sql``'s result (the query is planned, not run)."""
    try:
        return cursor.adbc_execute_schema(sql)
    except dbapi.Error as err:
        what = "the query failed in" if db.query is not None else "could not read the table in"
        raise _pg_error(err, db, what, "fix the query (query=, --query)") from None


def _register_postgres(db: Database, con: Any, columns: Columns) -> Registered:
    dbapi = _adbc()
    main = _connect(dbapi, db)
    try:
        cursor = main.cursor()
        _begin(dbapi, db, cursor)
        if db.table is not None:
            relation = _pg_table(dbapi, db, main, cursor)
        else:
            relation = f"({_query_text(db.query)}) AS q"
        names = _pg_schema(dbapi, db, cursor, f"SELECT * FROM {relation}").names
        check_columns(names, columns.required, db.subject)
        needed = list(dict.fromkeys(column for _, column in columns.required))
        sql = f"SELECT {', '.join(quote(c) for c in needed)} FROM {relation}"
        schema = _pg_schema(dbapi, db, cursor, sql)
        tz = None
        if getattr(schema.field(columns.date_col).type, "tz", None):
            cursor.execute("SELECT current_setting('TimeZone')")
            tz = cursor.fetchone()[0]
        snapshot = _export_snapshot(dbapi, cursor)
        con.register("src", _PostgresRows(dbapi, db, sql, schema, snapshot))
    except BaseException:
        main.close()
        raise
    # the main connection holds the transaction whose snapshot the passes join
    return Registered(tz, db.description, subject=db.subject, close=main.close)


class _PostgresRows:
    """The rows of one ``SELECT`` as a new Arrow stream each time DuckDB scans ``src``.

    DuckDB asks for a stream to learn the schema and again for every scan; the rows are
    fetched only when DuckDB reads the first batch, over a connection of their own that
    joins the main transaction's snapshot, and the connection closes when the stream ends.
    """

    def __init__(self, dbapi: Any, db: Database, sql: str, schema: Any, snapshot: str | None):
        self.dbapi, self.db, self.sql, self.schema, self.snapshot = dbapi, db, sql, schema, snapshot

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        import pyarrow as pa

        reader = pa.RecordBatchReader.from_batches(self.schema, self._batches())
        return reader.__arrow_c_stream__(requested_schema)

    def _batches(self) -> Iterator[Any]:
        connection = _connect(self.dbapi, self.db)
        cursor = None
        try:
            cursor = connection.cursor()
            _begin(self.dbapi, self.db, cursor, self.snapshot)
            cursor.execute(self.sql)
            yield from cursor.fetch_record_batch()
        except (self.dbapi.Error, OSError) as err:  # OSError: Arrow's error mid-stream
            # DuckDB reports it as "could not read <the table or query>: <this>"
            raise ValueError(_pg_reason(err, self.db, "run the query in psql to see why")) from None
        finally:
            if cursor is not None:
                cursor.close()
            connection.close()
