"""Shared fixtures. Reference data come from ../shared/data/cdnow (CI has it beside the repo)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cdnow"


@pytest.fixture(scope="session")
def cdnow_summary_csv() -> pd.DataFrame:
    """The papers' CDNOW-sample RFM summary (2-decimal CSV), in our column names."""
    d = pd.read_csv(SHARED / "cdnow_customers_summary_with_transactions.csv")
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
