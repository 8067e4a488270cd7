"""A tiny deterministic generator of synthetic transaction logs for benchmarks.

Customers arrive uniformly over the first year; each makes ``1 + NegBin`` purchases
(mean about 10) separated by geometric gaps in days; about 15 % of the rows are same-day
duplicates (a second order on the same day) and values are heavy-tailed (Pareto, tail
index 2.5, in dollars with cents). Rows are written to Parquet in chunks, so memory stays
small whatever the size; the same ``seed`` and ``n_transactions`` give the same file.

:func:`write_customers` instead follows the models' own generative processes, per
customer segment: BG/NBD purchase times (Poisson purchases at a Gamma-distributed daily
rate, dropout with a Beta-distributed probability after each repeat purchase) over two
years of daily timestamps (with a random time of day), about 15 % same-day duplicate
orders, and Gamma-Gamma values (a Gamma-distributed spend scale per customer: a
Pareto-like tail across customers). About 4.5 rows per customer.

    python benchmarks/synthetic_transactions.py 1000000 /tmp/tx_1M.parquet
    python benchmarks/synthetic_transactions.py --customers 1000000 /tmp/cust_1M.parquet
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


#: Segments of :func:`write_customers`: share of customers, BG/NBD parameters with rates
#: per *day* (``alpha`` in days) and Gamma-Gamma spend parameters (dollars).
SEGMENTS = {
    "occasional": {"share": 0.6, "r": 0.3, "alpha": 100.0, "a": 1.0, "b": 3.0,
                   "p": 4.0, "q": 2.5, "v": 30.0},
    "regular": {"share": 0.3, "r": 0.8, "alpha": 120.0, "a": 0.6, "b": 5.0,
                "p": 5.0, "q": 3.0, "v": 40.0},
    "vip": {"share": 0.1, "r": 2.0, "alpha": 70.0, "a": 0.3, "b": 8.0,
            "p": 6.0, "q": 3.0, "v": 60.0},
}  # fmt: skip
PERIOD_DAYS = 730  # two years of activity; first purchases in the first year
DUPLICATE_SHARE = 0.15


def _customer_chunk(rng: np.random.Generator, first_id: int, n: int) -> pa.Table:
    names = list(SEGMENTS)
    shares = np.array([SEGMENTS[k]["share"] for k in names])
    segment = rng.choice(len(names), size=n, p=shares / shares.sum())
    par = {k: np.array([SEGMENTS[s][k] for s in names])[segment] for k in SEGMENTS[names[0]]}
    lam = rng.gamma(par["r"], 1.0 / par["alpha"])  # purchases per day
    p_drop = rng.beta(par["a"], par["b"])
    start = rng.uniform(0, 365, size=n)
    # repeat purchases: Poisson arrivals on (start, end], stop after the K-th (dropout)
    arrivals = rng.poisson(lam * (PERIOD_DAYS - start))
    keep = np.minimum(arrivals, rng.geometric(p_drop))
    owner = np.repeat(np.arange(n), arrivals)
    times = start[owner] + rng.uniform(size=owner.size) * (PERIOD_DAYS - start[owner])
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    rank = np.arange(owner.size) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    kept = rank < keep[owner]
    owner = np.concatenate([np.arange(n), owner[kept]])
    times = np.concatenate([start, times[kept]])
    dup = rng.random(owner.size) < DUPLICATE_SHARE  # a second order the same day
    day = np.floor(times)
    owner = np.concatenate([owner, owner[dup]])
    times = np.concatenate([times, day[dup] + rng.uniform(size=int(dup.sum()))])
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    nu = rng.gamma(par["q"], 1.0 / par["v"])  # spend rate per customer (heavy tail)
    values = np.round(rng.gamma(par["p"][owner], 1.0 / nu[owner]), 2)
    seconds = np.round(times * 86_400).astype(np.int64)
    dates = START + (seconds * 1_000_000).astype("timedelta64[us]")
    return pa.table(
        {
            "customer_id": first_id + owner.astype(np.int64),
            "date": dates,
            "value": values,
            "segment": np.array(names)[segment[owner]],
        }
    )


def write_customers(n_customers: int, path: str | Path, seed: int = 2005) -> Path:
    """Write the transactions of ``n_customers`` segment-model customers to Parquet.

    Parameters
    ----------
    n_customers : int
        Number of customers (ids ``1..n_customers``).
    path : str or Path
        Output Parquet file (overwritten), written chunk by chunk (one row group per
        100,000 customers).
    seed : int
        Seed; each chunk gets its own spawned stream, so a size is a prefix of a larger
        one.

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    streams = np.random.SeedSequence(seed)
    writer = None
    try:
        for first in range(0, n_customers, CUSTOMERS_PER_CHUNK):
            (child,) = streams.spawn(1)
            n = min(CUSTOMERS_PER_CHUNK, n_customers - first)
            table = _customer_chunk(np.random.default_rng(child), first + 1, n)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="transactions (default) or customers")
    parser.add_argument("path", type=Path)
    parser.add_argument("--seed", type=int, default=2005)
    parser.add_argument(
        "--customers", action="store_true", help="n is customers: the segment-model generator"
    )
    args = parser.parse_args()
    if args.customers:
        print(write_customers(args.n, args.path, args.seed))
    else:
        print(write_transactions(args.n, args.path, args.seed))
