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
