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
