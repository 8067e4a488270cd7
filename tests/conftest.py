"""Shared fixtures.

Reference data (the CDNOW files the papers and the anchors use) come from
``../shared/data/cdnow`` when the repository sits beside it, else from the identical copies
in lifetimes' package data (lifetimes 0.11.3 is a test dependency): either way an
independent source, never the copies bundled in ``clvbayes.datasets``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cdnow"
_EXTERNAL = _SHARED.parent / "external"


def external_file(name: str) -> Path:
    """Path of a non-CDNOW reference file in ``../shared/data/external`` (CLVTools'
    apparel, BTYDplus' grocery; GPL-3 data that the repository does not ship, see the
    README there); the test is skipped, saying so, where the folder is absent."""
    path = _EXTERNAL / name
    if not path.exists():
        pytest.skip(f"reference data {path} not available (GPL-3, not shipped)")
    return path


def reference_file(name: str) -> Path:
    """Path of the reference CDNOW file ``name`` (``../shared`` first, then lifetimes')."""
    if (_SHARED / name).exists():
        return _SHARED / name
    import importlib.util

    # find_spec does not run lifetimes.datasets/__init__ (it imports the removed pkg_resources)
    path = Path(importlib.util.find_spec("lifetimes").origin).parent / "datasets" / name
    if not path.exists():
        raise FileNotFoundError(f"reference file {name} is in neither {_SHARED} nor {path.parent}")
    return path


@pytest.fixture(scope="session")
def cdnow_summary_csv() -> pd.DataFrame:
    """The papers' CDNOW-sample RFM summary (2-decimal CSV), in our column names."""
    d = pd.read_csv(reference_file("cdnow_customers_summary_with_transactions.csv"))
    return pd.DataFrame(
        {
            "customer_id": d["ID"],
            "frequency": d["x"],
            "recency": d["t_x"],
            "T": d["T"],
            "monetary_value": d["zbar"],
        }
    )


@pytest.fixture(scope="session")
def small_rfm(cdnow_summary_csv: pd.DataFrame) -> pd.DataFrame:
    """400 CDNOW-sample customers: enough for a quick, well-identified fit."""
    return cdnow_summary_csv.iloc[:400].reset_index(drop=True)


# --- a private PostgreSQL server ------------------------------------------------------

PG_USER = "clv"
PG_PASSWORD = "Pa55:w@rd/!"  # characters a URL must escape: the masking is tested with them


def _pg_bindir() -> Path | None:
    """The folder of Debian's (or any) ``initdb`` and ``pg_ctl``, if PostgreSQL is installed."""
    import shutil

    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """``postgresql://clv:<password>@127.0.0.1:<port>/postgres`` of a private server.

    A new cluster in a temporary folder (``initdb`` with password authentication over
    TCP), started with ``pg_ctl`` on a free port of the loopback address and removed at
    the end. PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the
    ``postgres`` user (else ``nobody``) and its commands run through ``runuser``. Skipped,
    with the reason, only where PostgreSQL or the ADBC driver is not installed
    (``.ci/run`` installs Debian's ``postgresql``; ``pip install '.[db]'`` the driver).
    """
    import os
    import pwd
    import shutil
    import subprocess
    import tempfile
    from urllib.parse import quote

    pytest.importorskip(
        "adbc_driver_postgresql", reason="adbc-driver-postgresql is not installed (.[db])"
    )
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install -y postgresql)")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            try:
                owner = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        if owner is None or shutil.which("runuser") is None:
            pytest.skip("running as root without a 'postgres' user and runuser")
        prefix = ["runuser", "-u", owner.pw_name, "--"]
    root = Path(tempfile.mkdtemp(prefix="clvbayes-pg-"))
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    if owner is not None:
        for path in (root, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()

    def run(*args: str) -> None:
        result = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}")

    pg_ctl = str(bindir / "pg_ctl")
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8",
            "--locale=C")  # fmt: skip
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    except (RuntimeError, OSError, subprocess.TimeoutExpired):
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield f"postgresql://{PG_USER}:{quote(PG_PASSWORD, safe='')}@127.0.0.1:{port}/postgres"
    finally:
        try:
            run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def cdnow_sample_log() -> pd.DataFrame:
    """The CDNOW sample's transactions (``load_cdnow("sample")``); not to be modified."""
    from clvbayes.datasets import load_cdnow

    return load_cdnow("sample")


@pytest.fixture(scope="session")
def cdnow_sample_calendar(cdnow_sample_log):
    """CDNOW sample with the papers' split (39 calibration weeks from Wednesday
    1997-01-01, holdout to 1998-06-30), as a calendar summary (``calendar_rfm``)."""
    from clvbayes.data.calendar import calendar_rfm

    return calendar_rfm(
        cdnow_sample_log,
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
    )


@pytest.fixture(scope="session")
def sample_holdout_rfm() -> pd.DataFrame:
    """400 customers of the bundled CDNOW sample log, calibration to 1997-09-30 and
    holdout to 1998-06-30 (with the holdout columns); copy before changing it."""
    from clvbayes import rfm_summary
    from clvbayes.datasets import load_cdnow

    tx = load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:400])]
    return rfm_summary(
        tx,
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
    )


@pytest.fixture(scope="session")
def sample_holdout_map_fits(sample_holdout_rfm):
    """MAP fits of the BG/NBD and the Gamma-Gamma to :func:`sample_holdout_rfm`."""
    from clvbayes import BGNBD, GammaGamma

    rfm = sample_holdout_rfm
    return BGNBD().fit(rfm, method="map"), GammaGamma().fit(rfm, method="map")


def pytest_configure(config: pytest.Config) -> None:
    """Compiled models of this test session go to a temporary cache (shared with the
    session's subprocesses and xdist workers), not the user's, unless
    ``CLVBAYES_CACHE_DIR`` is set already."""
    import os
    import tempfile

    if "CLVBAYES_CACHE_DIR" not in os.environ:
        path = tempfile.mkdtemp(prefix="clvbayes-test-cache-")
        os.environ["CLVBAYES_CACHE_DIR"] = path
        config._clvbayes_cache = path  # removed by this process only


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    path = getattr(config, "_clvbayes_cache", None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


LONGEST_FIRST = ("test_segments_recovery.py", "test_notebooks.py")
"""Modules whose tests take one to two and a half minutes each (segment recovery, the
notebooks): they run first, so that under ``pytest -n 2`` they do not end the run on one
worker while the other has nothing left to do."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run :data:`LONGEST_FIRST` modules first, the rest in collection order (a stable
    sort: each module's tests stay together and in their order)."""
    items.sort(key=lambda item: item.path.name not in LONGEST_FIRST)
