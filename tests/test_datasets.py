"""Bundled CDNOW data: byte-identical to the published files, loaded with the right types."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from conftest import reference_file

from clvbayes.datasets import load_cdnow, load_cdnow_summary

FILES = resources.files("clvbayes.datasets") / "files"
# md5 of the uncompressed originals (lifetimes 0.11.3, lifetimes/datasets/)
MD5 = {
    "CDNOW_master.txt": "37ee2da5127d4a369d6fe0052678624d",
    "CDNOW_sample.txt": "bc36b42c242f7c5653b36ad90a2807bd",
    "cdnow_customers_summary_with_transactions.csv": "6e7ae02a35c0f2914b03ea87179ac09c",
}


@pytest.mark.parametrize("name", sorted(MD5))
def test_bundled_files_match_the_lifetimes_originals_md5(name):
    raw = gzip.decompress((FILES / f"{name}.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == MD5[name]
    assert MD5[name] in (FILES / "README.md").read_text()


def test_load_cdnow_master():
    df = load_cdnow("master")
    assert df.shape == (69659, 4)
    assert list(df.columns) == ["customer_id", "date", "quantity", "value"]
    assert df["customer_id"].dtype == np.int64 and df["customer_id"].nunique() == 23570
    assert df["quantity"].dtype == np.int64 and df["value"].dtype == np.float64
    assert pd.api.types.is_datetime64_dtype(df["date"]) and df["date"].dt.tz is None
    assert df["date"].min() == pd.Timestamp("1997-01-01")
    assert df["date"].max() == pd.Timestamp("1998-06-30")
    assert df.iloc[0].tolist() == [1, pd.Timestamp("1997-01-01"), 1, 11.77]


def test_load_cdnow_sample_uses_master_id_and_keeps_papers_id():
    df = load_cdnow("sample")
    assert df.shape == (6919, 5)
    assert list(df.columns) == ["customer_id", "date", "quantity", "value", "sample_id"]
    assert df["customer_id"].nunique() == df["sample_id"].nunique() == 2357
    assert df.iloc[0].tolist() == [4, pd.Timestamp("1997-01-01"), 2, 29.33, 1]
    master = load_cdnow("master")
    merged = df.merge(master, on=["customer_id", "date", "quantity", "value"], how="left",
                      indicator=True)  # fmt: skip
    assert (merged["_merge"] == "both").all()  # every sample row is a master row


def test_load_cdnow_summary_equals_shared_csv():
    pd.testing.assert_frame_equal(
        load_cdnow_summary(),
        pd.read_csv(reference_file("cdnow_customers_summary_with_transactions.csv")),
    )


def test_unknown_kind():
    with pytest.raises(ValueError, match="'master' or 'sample'"):
        load_cdnow("full")
