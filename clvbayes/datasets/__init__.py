"""Bundled example data: the CDNOW transaction logs of Fader, Hardie & Lee (2005).

The files ship gzip-compressed in ``clvbayes/datasets/files`` (see the README there for the
citation, provenance and checksums).
"""

from __future__ import annotations

from importlib import resources
from typing import Literal

import pandas as pd

__all__ = ["load_cdnow", "load_cdnow_summary"]

_FILES = resources.files(__package__) / "files"


def _open(name: str):
    return (_FILES / name).open("rb")


def load_cdnow(kind: Literal["master", "sample"] = "master") -> pd.DataFrame:
    """The CDNOW transaction log, one row per transaction.

    Parameters
    ----------
    kind : {"master", "sample"}
        ``"master"``: all 69,659 transactions of the 23,570 customers of the cohort.
        ``"sample"``: the papers' 1/10 sample (6,919 transactions of 2,357 customers).

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (int64, the master file's id), ``date`` (datetime64, naive,
        the calendar day), ``quantity`` (int64, number of CDs) and ``value`` (float64,
        dollars). The sample also has ``sample_id`` (int64): the customer ID used in the
        papers and in :func:`load_cdnow_summary`.

    Examples
    --------
    >>> from clvbayes.datasets import load_cdnow
    >>> load_cdnow("sample").shape
    (6919, 5)
    """
    if kind == "master":
        names = ["customer_id", "date", "quantity", "value"]
        file, header = "CDNOW_master.txt.gz", 0
    elif kind == "sample":
        names = ["customer_id", "sample_id", "date", "quantity", "value"]
        file, header = "CDNOW_sample.txt.gz", None
    else:
        raise ValueError(f"kind must be 'master' or 'sample', got {kind!r}.")
    with _open(file) as fh:
        df = pd.read_csv(
            fh,
            sep=r"\s+",
            header=header,
            names=names,
            compression="gzip",
            dtype={"date": str, "quantity": "int64", "value": "float64"},
        )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    df["customer_id"] = df["customer_id"].astype("int64")
    if kind == "sample":
        df["sample_id"] = df["sample_id"].astype("int64")
        df = df[["customer_id", "date", "quantity", "value", "sample_id"]]
    return df


def load_cdnow_summary() -> pd.DataFrame:
    """The papers' RFM summary of the CDNOW sample (weeks, calibration to 1997-09-30).

    Returns
    -------
    pandas.DataFrame
        2,357 rows with the file's columns ``ID`` (the sample's ``sample_id``), ``x``
        (repeat purchases), ``t_x`` (recency), ``T`` (age) and ``zbar`` (mean value of the
        repeat purchases, 0 without one), rounded to 2 decimals as published.
    """
    with _open("cdnow_customers_summary_with_transactions.csv.gz") as fh:
        return pd.read_csv(fh, compression="gzip")
