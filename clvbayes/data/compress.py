"""Unique-row compression of an RFM table.

Likelihoods of buy-till-you-die models depend on a customer only through a few summary
numbers, and many customers share them (every one-time buyer of a given first-purchase
day has the same ``(0, 0, T)``). Evaluating the likelihood once per unique row and
weighting by the number of customers gives exactly the per-customer sum at a fraction of
the cost; ``inverse`` maps every customer back to its row, so per-customer quantities
(pointwise log-likelihoods for LOO, predictions) are recovered without loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clvbayes.math._ops import Factor

__all__ = ["CompressedRFM", "compress"]


@dataclass(frozen=True, eq=False)
class CompressedRFM:
    """Unique rows of some RFM columns, their customer counts and the map back.

    Attributes
    ----------
    columns : tuple of str
        Names of the compressed columns, e.g. ``("frequency", "recency", "T")``.
    rows : dict of str to ndarray
        Each column's value per unique row (float64, length ``n_rows``).
    counts : ndarray of int64
        Number of customers sharing each unique row; ``counts.sum() == n_customers``.
    inverse : ndarray of int64
        For each customer (in the input order), the index of its unique row.
    factors : dict of str to Factor
        Each column as distinct levels plus each row's index into them, so likelihood
        terms that depend on one column alone are computed once per distinct value
        (see :class:`clvbayes.math._ops.Factor`).
    """

    columns: tuple[str, ...]
    rows: dict[str, np.ndarray]
    counts: np.ndarray
    inverse: np.ndarray
    factors: dict[str, Factor]

    def factor(self, column: str) -> Factor:
        """``column`` as a :class:`~clvbayes.math._ops.Factor` of the unique rows."""
        return self.factors[column]

    def __repr__(self) -> str:
        return (
            f"CompressedRFM(columns={self.columns}, n_rows={self.n_rows}, "
            f"n_customers={self.n_customers})"
        )

    @property
    def n_rows(self) -> int:
        """Number of unique rows."""
        return int(self.counts.shape[0])

    @property
    def n_customers(self) -> int:
        """Number of customers that were compressed."""
        return int(self.inverse.shape[0])

    def __getitem__(self, column: str) -> np.ndarray:
        return self.rows[column]

    def expand(self, per_row: np.ndarray, axis: int = -1) -> np.ndarray:
        """Map a per-row array back to one value per customer along ``axis``."""
        return np.take(per_row, self.inverse, axis=axis)

    def to_dict(self) -> dict[str, np.ndarray]:
        """Arrays to store (``rows`` columns prefixed ``row_``), e.g. in a netCDF file."""
        out = {f"row_{c}": self.rows[c] for c in self.columns}
        out.update(row_count=self.counts, customer_row=self.inverse)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], columns: Sequence[str]) -> CompressedRFM:
        """Rebuild from :meth:`to_dict` output (``customer_row`` may be absent)."""
        rows = {c: np.asarray(data[f"row_{c}"], dtype=float) for c in columns}
        counts = np.asarray(data["row_count"], dtype=np.int64)
        inverse = np.asarray(data.get("customer_row", np.empty(0)), dtype=np.int64)
        return cls._build(tuple(columns), rows, counts, inverse)

    @classmethod
    def _build(
        cls,
        columns: tuple[str, ...],
        rows: dict[str, np.ndarray],
        counts: np.ndarray,
        inverse: np.ndarray,
    ) -> CompressedRFM:
        factors = {c: Factor.of(rows[c]) for c in columns}
        return cls(columns, rows, counts, inverse, factors)


def compress(rfm: Any, columns: Sequence[str] = ("frequency", "recency", "T")) -> CompressedRFM:
    """Compress an RFM table to its unique rows with customer counts.

    Parameters
    ----------
    rfm : DataFrame or mapping of column name to array
        One row per customer (e.g. the output of :func:`clvbayes.rfm_summary`).
    columns : sequence of str
        The columns the likelihood depends on. Defaults to the BG/NBD's
        ``("frequency", "recency", "T")``; the Gamma-Gamma model uses
        ``("frequency", "monetary_value")``.

    Returns
    -------
    CompressedRFM
        Unique rows (sorted lexicographically by ``columns``), counts and the inverse map.

    Examples
    --------
    >>> c = compress({"frequency": [0, 0, 2], "recency": [0, 0, 5.0], "T": [9, 9, 9]})
    >>> c.n_rows, c.counts.tolist(), c.inverse.tolist()
    (2, [2, 1], [0, 0, 1])
    """
    columns = tuple(columns)
    missing = [c for c in columns if c not in rfm]
    if missing:
        raise ValueError(
            f"compress: column(s) {missing} not found; the RFM table needs {list(columns)} "
            "(build it with clvbayes.rfm_summary)."
        )
    stacked = np.column_stack([np.asarray(rfm[c], dtype=float) for c in columns])
    if stacked.shape[0] == 0:
        raise ValueError("compress: the RFM table has 0 rows; there is nothing to fit.")
    unique, inverse, counts = np.unique(stacked, axis=0, return_inverse=True, return_counts=True)
    rows = {c: np.ascontiguousarray(unique[:, j]) for j, c in enumerate(columns)}
    return CompressedRFM._build(
        columns, rows, counts.astype(np.int64), inverse.reshape(-1).astype(np.int64)
    )
