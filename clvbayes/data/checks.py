"""Checks of an RFM table before a model sees it.

Every error names the column, how many rows fail, an example, and what to do. Nothing
the caller passed is modified: the checks only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["check_rfm"]


def _fail(column: str, mask: np.ndarray, values: np.ndarray, what: str, fix: str) -> None:
    n_bad = int(mask.sum())
    example = values[np.flatnonzero(mask)[0]]
    raise ValueError(
        f"column {column!r}: {n_bad} of {mask.size} rows {what} (e.g. {example!r}); {fix}"
    )


def _numeric(rfm: Any, column: str) -> np.ndarray:
    raw = np.asarray(rfm[column])
    try:
        values = raw.astype(float)
    except (TypeError, ValueError):
        bad = np.array([not _is_number(v) for v in raw])
        _fail(column, bad, raw, "are not numbers", "convert the column to numbers.")
    bad = ~np.isfinite(values)
    if bad.any():
        _fail(column, bad, values, "are NaN or infinite", "drop or fill those customers.")
    return values


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def check_rfm(rfm: Any, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Validate the RFM ``columns`` and return them as float arrays (copies).

    Rules: every column present, numeric and finite; ``frequency`` a non-negative integer;
    ``recency`` and ``T`` non-negative with ``recency <= T`` (up to 1e-9 relative) and
    ``recency == 0`` when ``frequency == 0``; ``T > 0``; ``monetary_value`` non-negative.

    Parameters
    ----------
    rfm : DataFrame or mapping
        One row per customer, e.g. from :func:`clvbayes.rfm_summary`.
    columns : sequence of str
        Columns the model needs.

    Returns
    -------
    dict of str to ndarray
    """
    if not hasattr(rfm, "__getitem__") or isinstance(rfm, str | bytes):
        raise TypeError(
            f"expected an RFM DataFrame (from clvbayes.rfm_summary), got {type(rfm).__name__}."
        )
    missing = [c for c in columns if c not in rfm]
    if missing:
        have = list(getattr(rfm, "columns", rfm))
        raise ValueError(
            f"RFM table is missing column(s) {missing} (has {have}); build it with "
            "clvbayes.rfm_summary or rename your columns."
        )
    out = {c: _numeric(rfm, c) for c in columns}
    n = len(next(iter(out.values())))
    if n == 0:
        raise ValueError("RFM table has 0 rows; there are no customers to fit.")
    if "frequency" in out:
        x = out["frequency"]
        bad = (x < 0) | (x != np.round(x))
        if bad.any():
            _fail(
                "frequency",
                bad,
                x,
                "are not whole numbers >= 0",
                "frequency counts repeat purchases (clvbayes.rfm_summary).",
            )
    for col in ("recency", "T", "monetary_value"):
        if col in out and (out[col] < 0).any():
            _fail(col, out[col] < 0, out[col], "are negative", "times and values must be >= 0.")
    if "T" in out and (out["T"] <= 0).any():
        _fail(
            "T",
            out["T"] <= 0,
            out["T"],
            "are 0",
            "T is the time since the first purchase; drop customers acquired on the "
            "last day or move calibration_end later.",
        )
    if "recency" in out and "T" in out:
        t_x, T = out["recency"], out["T"]
        bad = t_x > T * (1 + 1e-9)
        if bad.any():
            _fail(
                "recency",
                bad,
                t_x,
                "exceed T",
                "recency is the time from the first to the last purchase before the "
                "calibration end; transactions after it must not count.",
            )
        if "frequency" in out:
            bad = (out["frequency"] == 0) & (t_x > 0)
            if bad.any():
                _fail(
                    "recency",
                    bad,
                    t_x,
                    "are > 0 with frequency 0",
                    "a customer without repeat purchases has recency 0.",
                )
    return out
