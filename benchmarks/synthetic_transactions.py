"""A tiny deterministic generator of synthetic transaction logs for benchmarks.

Customers arrive uniformly over the first year; each makes ``1 + NegBin`` purchases
(mean about 10) separated by geometric gaps in days; about 15 % of the rows are same-day
duplicates (a second order on the same day) and values are heavy-tailed (Pareto, tail
index 2.5, in dollars with cents). Rows are written to Parquet in chunks, so memory stays
small whatever the size; the same ``seed`` and ``n_transactions`` give the same file.

    python benchmarks/synthetic_transactions.py 1000000 /tmp/tx_1M.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = np.datetime64("2020-01-01", "us")
DAY_US = 86_400_000_000
CUSTOMERS_PER_CHUNK = 100_000


def _chunk(rng: np.random.Generator, first_id: int) -> pa.Table:
    n = CUSTOMERS_PER_CHUNK
    counts = 1 + rng.negative_binomial(1, 0.1, size=n)  # mean 10 purchase days
    ids = np.repeat(np.arange(first_id, first_id + n, dtype=np.int64), counts)
    starts = np.repeat(rng.integers(0, 365, size=n), counts)
    gaps = rng.geometric(1 / 30, size=ids.size)
    # day offset within a customer: cumulative gaps after the first purchase
    first_row = np.repeat(np.cumsum(counts) - counts, counts)
    cum = np.cumsum(gaps)
    offset = cum - cum[first_row] + starts
    dup = rng.random(ids.size) < 0.15  # a second order on the same day
    ids, offset = np.concatenate([ids, ids[dup]]), np.concatenate([offset, offset[dup]])
    order = np.lexsort((offset, ids))
    ids, offset = ids[order], offset[order]
    values = np.round(20.0 * (1.0 + rng.pareto(2.5, size=ids.size)), 2)
    dates = START + offset.astype("timedelta64[D]").astype("timedelta64[us]")
    return pa.table({"customer_id": ids, "date": dates, "value": values})


def write_transactions(n_transactions: int, path: str | Path, seed: int = 2005) -> Path:
    """Write ``n_transactions`` synthetic rows to the Parquet file ``path``.

    Parameters
    ----------
    n_transactions : int
        Number of rows (the last customer may be cut short).
    path : str or Path
        Output Parquet file (overwritten).
    seed : int
        Seed of the numpy generator; each chunk gets its own spawned stream.

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    streams = np.random.SeedSequence(seed)
    written, first_id, writer = 0, 1, None
    try:
        while written < n_transactions:
            (child,) = streams.spawn(1)
            table = _chunk(np.random.default_rng(child), first_id)
            table = table.slice(0, n_transactions - written)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            written += table.num_rows
            first_id += CUSTOMERS_PER_CHUNK
    finally:
        if writer is not None:
            writer.close()
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_transactions", type=int)
    parser.add_argument("path", type=Path)
    parser.add_argument("--seed", type=int, default=2005)
    args = parser.parse_args()
    print(write_transactions(args.n_transactions, args.path, args.seed))
