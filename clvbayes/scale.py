"""Beyond one machine: RFM summaries and per-customer scoring on Dask.

Two functions run the single-machine code of clvbayes on the partitions of a Dask
DataFrame, so a cluster gives the same numbers as one process:

* :func:`rfm_summary_dask` validates the log (one scan per partition, merged), shuffles
  the transactions so that every customer lies in one partition, and runs the very SQL of
  :func:`clvbayes.rfm_summary` on each partition with the global period bounds. Output:
  one row per customer, the table of :func:`clvbayes.rfm_summary` split over partitions.
* :func:`predict_customers_dask` runs :func:`clvbayes.predict_customers` on each partition
  with a seed derived from ``(seed, partition index)`` (:func:`partition_seed`); the
  posterior draws travel once to each worker (one graph key), and the per-customer table
  is written as partitioned Parquet. Ranks against all customers (``p_top_<k>pct``) take
  a second pass: the exact per-draw cut-off of the top ``k`` share is found by bisection
  on counts summed over partitions (see :func:`predict_customers_dask`).

Fitting stays in one process: the likelihood depends on the data only through the unique
``(frequency, recency, T)`` rows (:func:`clvbayes.compress`). With dates in days most
repeat buyers are unique (438,417 rows for a million synthetic customers, about 11
minutes of full NUTS on two cores); see the README ("Scale") for where that stops
holding and what to do then (fit a sample of customers, coarser dates).

Dask (``pip install 'clvbayes[dask]'``) is imported by these functions only. Whatever
scheduler is active is used: a ``distributed.Client`` (local or ``Client("tcp://...")``),
else Dask's default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.data import validate
from clvbayes.data.period import parse_period, resolve_period
from clvbayes.data.rfm import summarize
from clvbayes.data.source import check_columns, open_source, scan
from clvbayes.math.units import check_time_unit
from clvbayes.models.fitted import check_fitted
from clvbayes.predict.calendar import CALENDAR_VARIABLES
from clvbayes.predict.customers import predict_customers
from clvbayes.predict.options import PredictOptions
from clvbayes.predict.summaries import percent_label
from clvbayes.progress import progress_bar

__all__ = ["partition_seed", "predict_customers_dask", "rfm_summary_dask"]


# --- RFM --------------------------------------------------------------------------------


def _as_dask_frame(transactions: Any, columns: list[str]) -> Any:
    """A Dask DataFrame of ``columns`` from a Dask frame or a Parquet path/glob."""
    import dask.dataframe as dd

    if isinstance(transactions, str | Path):
        path = str(transactions)
        try:
            frame = dd.read_parquet(path)
        except (FileNotFoundError, OSError) as err:
            raise FileNotFoundError(
                f"no Parquet data found at {path!r}; pass a Parquet file, directory or glob "
                "(e.g. 'transactions/*.parquet') or a Dask DataFrame."
            ) from err
    elif isinstance(transactions, dd.DataFrame):
        frame = transactions
    else:
        raise TypeError(
            "transactions must be a Dask DataFrame or the path/glob of Parquet files, got "
            f"{type(transactions).__name__}; for an in-memory frame use clvbayes.rfm_summary."
        )
    check_columns(
        frame.columns, zip(("customer_col", "date_col", "value_col"), columns, strict=False)
    )
    return frame[columns]


def _scan_partition(
    part: pd.DataFrame, customer_col: str, date_col: str, value_col: str | None
) -> dict[str, Any]:
    """The validation scan of :func:`clvbayes.rfm_summary` on one partition."""
    with open_source(
        part, customer_col=customer_col, date_col=date_col, value_col=value_col
    ) as source:
        return scan(source)


def _merge_scans(scans: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Whole-log scan from per-partition scans: counts add, ranges widen, first example."""
    merged: dict[str, Any] = {}
    for part_scan in scans:
        for key, value in part_scan.items():
            old = merged.get(key)
            if key == "first_day":
                merged[key] = value if old is None or (value is not None and value < old) else old
            elif key == "last_day":
                merged[key] = value if old is None or (value is not None and value > old) else old
            elif key.endswith("_example"):
                merged[key] = old if old is not None else value
            else:
                merged[key] = (old or 0) + (value or 0)
    return merged


def _summarize_partition(
    part: pd.DataFrame,
    customer_col: str,
    date_col: str,
    value_col: str | None,
    cal: dt.date,
    obs: dt.date,
    time_unit: str,
    allow_negative: bool,
) -> pd.DataFrame:
    """:func:`clvbayes.rfm_summary`'s aggregation on one partition (whole customers)."""
    with open_source(
        part, customer_col=customer_col, date_col=date_col, value_col=value_col
    ) as source:
        return summarize(
            source,
            calibration_end=cal,
            observation_end=obs,
            time_unit=time_unit,
            allow_negative=allow_negative,
        )


def rfm_summary_dask(
    transactions: Any,
    *,
    customer_col: str,
    date_col: str,
    value_col: str | None = None,
    calibration_end: Any = None,
    observation_end: Any = None,
    time_unit: str = "W",
    allow_negative: bool = False,
    npartitions: int | None = None,
) -> Any:
    """Per-customer RFM summary of a transaction log held as a Dask DataFrame or Parquet.

    The conventions and columns are those of :func:`clvbayes.rfm_summary` (same-day
    purchases merged, repeat purchases only, fractional time in ``time_unit``, holdout
    columns when ``observation_end > calibration_end``); the computation is its own SQL,
    run by DuckDB on each partition after the transactions are shuffled by customer.

    Two passes over the data: (1) the validation scan of every partition, merged, which
    raises the same errors with whole-log counts and gives the date range (the default
    ``calibration_end`` is the last transaction day); (2) a shuffle by ``customer_col``
    and the per-partition summary, returned lazily.

    Parameters
    ----------
    transactions : dask.dataframe.DataFrame, str or Path
        One row per transaction, or a Parquet file, directory or glob (read with
        ``dask.dataframe.read_parquet``; remote URLs work through fsspec). Not modified.
    customer_col, date_col, value_col, calibration_end, observation_end, time_unit, allow_negative
        As in :func:`clvbayes.rfm_summary`.
    npartitions : int, optional
        Partitions of the output (default: those of the input).

    Returns
    -------
    dask.dataframe.DataFrame
        One row per customer, each customer in exactly one partition, each partition
        sorted by ``customer_id``. ``.compute().sort_values("customer_id",
        ignore_index=True)`` equals :func:`clvbayes.rfm_summary` of the same log: counts
        and times identically, value columns up to the order of DuckDB's floating-point
        sums (last-bit differences, as between two runs of :func:`clvbayes.rfm_summary`).

    Raises
    ------
    ValueError
        On bad input, as :func:`clvbayes.rfm_summary` (row counts over the whole log).
    TypeError
        When ``transactions`` is neither a Dask DataFrame nor a path.

    Examples
    --------
    >>> rfm = rfm_summary_dask("tx/*.parquet", customer_col="customer_id",
    ...                        date_col="date", value_col="value")  # doctest: +SKIP
    >>> rfm.to_parquet("rfm/")  # doctest: +SKIP
    """
    import dask

    time_unit = check_time_unit(time_unit)
    cal, obs = parse_period(calibration_end, observation_end)
    columns = [customer_col, date_col] + ([value_col] if value_col is not None else [])
    frame = _as_dask_frame(transactions, columns)

    scan_tasks = [
        dask.delayed(_scan_partition)(part, customer_col, date_col, value_col)
        for part in frame.to_delayed()
    ]
    scanned = _merge_scans(dask.compute(*scan_tasks))
    validate.check_scan(
        scanned,
        customer_col=customer_col,
        date_col=date_col,
        value_col=value_col,
        allow_negative=allow_negative,
    )
    cal, obs = resolve_period(cal, obs, scanned, time_unit)

    args = (customer_col, date_col, value_col, cal, obs, time_unit, allow_negative)
    meta = _summarize_partition(frame._meta, *args)
    shuffled = frame.shuffle(
        on=customer_col, ignore_index=True, npartitions=npartitions or frame.npartitions
    )
    return shuffled.map_partitions(_summarize_partition, *args, meta=meta)


# --- scoring ----------------------------------------------------------------------------


def partition_seed(seed: int | np.random.SeedSequence | None, index: int) -> np.random.SeedSequence:
    """The seed of partition ``index``: child ``index`` of ``SeedSequence(seed)``.

    ``predict_customers(fit, partition, seed=partition_seed(seed, i), ranks=False, ...)``
    on one machine reproduces partition ``i`` of :func:`predict_customers_dask`.
    """
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, index))


def _slim(fit: Any) -> Any:
    """The fit without its data and sampler stats: what prediction needs, small to ship."""
    import xarray as xr

    keep = [*fit.spec.params, *(v for v in CALENDAR_VARIABLES if v in fit.posterior)]
    posterior = fit.posterior[keep]
    idata = xr.DataTree.from_dict({"posterior": posterior})
    return dataclasses.replace(fit, idata=idata, data=None)


def _score(
    part: pd.DataFrame,
    fit: Any,
    spend_fit: Any,
    index: int,
    *,
    seed: np.random.SeedSequence,
    horizon: Any,
    keep_clv: bool,
    draws_to: str | None,
    options: PredictOptions,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """One partition through :func:`clvbayes.predict_customers` (no global ranks)."""
    h = part[horizon].to_numpy() if isinstance(horizon, str) else horizon
    stream = None if draws_to is None else str(Path(draws_to) / f"part.{index}.parquet")
    res = predict_customers(
        fit,
        part,
        horizon=h,
        spend_fit=spend_fit,
        seed=partition_seed(seed, index),
        options=options.replace(ranks=False, progressbar=False),
        keep_draws=("clv",) if keep_clv else (),
        stream_to=stream,
    )
    keys = None
    if keep_clv:
        clv = res.draws["clv"].to_numpy()
        keys = _sort_keys(clv.reshape(-1, clv.shape[-1]))
    return res.summary, keys


def _summary(scored: tuple[pd.DataFrame, np.ndarray | None]) -> pd.DataFrame:
    """The summary of a scored partition."""
    return scored[0]


def _n_customers(scored: tuple[pd.DataFrame, np.ndarray | None]) -> int:
    """Customers of a scored partition."""
    return len(scored[0])


def _distributed_client() -> Any:
    """The active ``distributed.Client``, or None (Dask's local schedulers)."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _persist_scored(tasks: list[Any], progressbar: bool) -> list[Any]:
    """Persist the partitions' scoring tasks with a progress bar over partitions
    (customers scored and customers per second as its postfix)."""
    import dask

    start, customers = time.perf_counter(), [0]
    bar = progress_bar(
        len(tasks),
        desc="predict_customers_dask",
        unit="partitions",
        unit_scale=False,
        enabled=progressbar,
    )

    def done(n: int) -> None:
        customers[0] += n
        rate = customers[0] / max(time.perf_counter() - start, 1e-9)
        bar.set_postfix_str(f"{customers[0]:,} customers, {rate:,.0f}/s", refresh=False)
        bar.update(1)

    with bar:
        client = _distributed_client()
        if client is None:  # local scheduler: persist blocks, a callback sees each task
            from dask.callbacks import Callback

            keys = {task.key for task in tasks}

            def posttask(key: Any, result: Any, *_: Any) -> None:
                if key in keys:
                    done(_n_customers(result))

            with Callback(posttask=posttask):
                return list(dask.persist(*tasks))
        from distributed import as_completed, futures_of

        scored = list(dask.persist(*tasks))  # returns at once; the cluster computes
        sizes = [client.submit(_n_customers, futures_of(s)[0]) for s in scored]
        for finished in as_completed(sizes):
            done(finished.result())
        return scored


def _sort_keys(values: np.ndarray) -> np.ndarray:
    """float32 -> uint32 keys with the same order (``-0.0`` equal to ``0.0``)."""
    bits = (np.asarray(values, dtype=np.float32) + np.float32(0.0)).view(np.uint32)
    negative = (bits >> np.uint32(31)).astype(bool)
    return np.where(negative, ~bits, bits | np.uint32(0x80000000))


def _sizes(scored: tuple[pd.DataFrame, np.ndarray]) -> tuple[int, int]:
    """Customers and posterior samples of a scored partition."""
    return len(scored[0]), scored[1].shape[0]


def _count_ge(scored: tuple[pd.DataFrame, np.ndarray], cut: np.ndarray) -> np.ndarray:
    """Per share and draw: customers of the partition whose key is >= the cut."""
    keys = scored[1]
    return np.stack([(keys >= c[:, None]).sum(axis=1) for c in cut])


def _count_gt_eq(scored: tuple[pd.DataFrame, np.ndarray], cut: np.ndarray) -> np.ndarray:
    keys = scored[1]
    greater = np.stack([(keys > c[:, None]).sum(axis=1) for c in cut])
    equal = np.stack([(keys == c[:, None]).sum(axis=1) for c in cut])
    return np.stack([greater, equal])


def _add_top(
    scored: tuple[pd.DataFrame, np.ndarray],
    cut: np.ndarray,
    greater: np.ndarray,
    equal: np.ndarray,
    shares: np.ndarray,
    names: list[str],
) -> pd.DataFrame:
    """``p_top_<k>pct``: draws above the cut count 1; those tied at the cut count as
    the tie's last position (:func:`clvbayes.predict.summaries.rank_columns`)."""
    summary, keys = scored
    summary = summary.copy()
    for j, name in enumerate(names):
        tie_weight = np.clip(shares[j] - greater[j] - equal[j] + 1, 0.0, 1.0)  # per draw
        c = cut[j][:, None]
        weights = (keys > c) + (keys == c) * tie_weight[:, None]
        summary[name] = weights.mean(axis=0)
    return summary


def _top_cuts(scored: list[Any], top: Sequence[float], n: int, n_samples: int) -> tuple:
    """Exact per-draw cut-offs of the top shares by bisection on the uint32 keys.

    For share ``k`` the cut of draw ``s`` is the ``ceil(k n)``-th largest key: the largest
    ``t`` with ``#(key >= t) >= ceil(k n)``. Each of the 32 rounds sums one
    ``(shares, draws)`` count array over the partitions.
    """
    import dask

    need = np.ceil(np.asarray(top) * n - 1e-9).astype(np.int64)[:, None]
    lo = np.zeros((len(top), n_samples), dtype=np.int64)
    hi = np.full((len(top), n_samples), 2**32, dtype=np.int64)
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        cut = mid.astype(np.uint32)
        counts = sum(dask.compute(*[dask.delayed(_count_ge)(s, cut) for s in scored]))
        ok = counts >= need
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    cut = lo.astype(np.uint32)
    greater, equal = sum(dask.compute(*[dask.delayed(_count_gt_eq)(s, cut) for s in scored]))
    return cut, greater, equal


def _meta_summary(rfm: Any, fit: Any, spend_fit: Any, horizon: Any, options: PredictOptions) -> Any:
    """The summary's columns and dtypes: a two-draw prediction of one made-up customer."""
    ids = rfm._meta_nonempty["customer_id"].iloc[:1].reset_index(drop=True)
    one = pd.DataFrame({"customer_id": ids, "frequency": [1], "recency": [1.0], "T": [2.0]})
    if spend_fit is not None:
        one["monetary_value"] = 10.0
    opts = options.replace(ranks=False, n_draws=2, chunk_customers=None, progressbar=False)
    # a horizon column: any horizon that holds the intervals gives the same columns
    longest = max([1.0, *(end for _, end in options.intervals)])
    h = longest if isinstance(horizon, str) else np.asarray(horizon).reshape(-1)[:1]
    res = predict_customers(fit, one, horizon=h, spend_fit=spend_fit, seed=0, options=opts)
    return res.summary.iloc[:0]


def predict_customers_dask(
    fit: Any,
    rfm: Any,
    *,
    horizon: float | str,
    out: str | Path,
    spend_fit: Any = None,
    seed: int | np.random.SeedSequence | None = None,
    options: PredictOptions | None = None,
    draws_to: str | Path | None = None,
    overwrite: bool = False,
    **kwargs: Any,
) -> Any:
    """Per-customer posterior predictions on a Dask cluster, written as partitioned Parquet.

    Partition ``i`` of ``rfm`` is scored by :func:`clvbayes.predict_customers` with the
    seed :func:`partition_seed` ``(seed, i)``, so the output depends on the seed and the
    partitioning, not on the workers or the order they run in. The analytic columns
    (``p_alive``, ``expected_purchases``, ``clv_conditional_mean``) equal those of a
    single-machine run on the whole table (to 1e-12 relative: the draws are averaged in
    different blocks); the simulated ones equal a single-machine run
    per partition with the same derived seeds (and agree with a whole-table run up to
    Monte Carlo error). The fits are reduced to their posterior draws and enter the graph
    once (one key, fetched once by each worker).

    Ranks. ``p_top_<k>pct`` compares each customer with everyone, so with ``ranks`` and a
    spend fit the CLV draws of every partition are kept on the workers (4 bytes per draw
    and customer across the cluster, spilled to disk by ``distributed`` when short), the
    exact cut-off of each draw's top ``k`` share is found by 32 rounds of bisection on
    counts summed over partitions, and a last pass adds the column: the same definition
    as :func:`clvbayes.predict.summaries.rank_columns` (ties at the cut share the
    remaining weight), computed on the whole population. ``expected_rank`` needs a global
    sort of every draw and is not computed by this path.

    Progress. The partitions are scored first (their summaries, and with ranks their
    CLV draws, are kept on the workers until written); a progress bar counts the
    scored partitions, with the customers scored and customers per second
    (``progressbar=False`` to turn it off; the per-partition predictions show none).

    Parameters
    ----------
    fit : FittedModel
        A fitted transaction model (BG/NBD, MBG/NBD or Pareto/NBD; fitted in one process).
    rfm : dask.dataframe.DataFrame or pandas.DataFrame
        One row per customer with ``customer_id``, ``frequency``, ``recency``, ``T`` (and
        ``monetary_value`` with ``spend_fit``), e.g. from :func:`rfm_summary_dask`. A
        pandas frame is split into ``ceil(n / 100_000)`` partitions.
    horizon : float or str
        Prediction window in the model's time unit, or the name of a column of ``rfm``
        holding one per customer (e.g. ``"holdout_duration"``).
    out : str or Path
        Directory of the output Parquet dataset (one file per partition; any fsspec URL).
    spend_fit : FittedModel, optional
        A fitted :class:`~clvbayes.models.GammaGamma` (CLV columns and ranks).
    seed : int or SeedSequence, optional
        Root seed; partition ``i`` uses :func:`partition_seed` ``(seed, i)``.
    options : PredictOptions, optional
        As for :func:`clvbayes.predict_customers` (the same object and defaults; fields
        may be passed as keyword arguments), applied per partition. ``ranks`` adds
        ``p_top_<k>pct`` for each share in ``top`` (second pass; needs ``spend_fit``).
    draws_to : str or Path, optional
        Directory to stream every partition's draws to (``part.<i>.parquet``, long
        format, via ``predict_customers(stream_to=...)``); must be reachable by all
        workers.
    overwrite : bool
        Replace an existing dataset at ``out``.

    Returns
    -------
    dask.dataframe.DataFrame
        The written table, read back lazily: the columns of
        :func:`clvbayes.predict_customers` without ``expected_rank`` (``p_top_<k>pct``
        last).

    Examples
    --------
    >>> from distributed import Client
    >>> client = Client("tcp://scheduler:8786")  # doctest: +SKIP
    >>> rfm = rfm_summary_dask("s3://shop/tx/*.parquet", customer_col="customer_id",
    ...                        date_col="date", value_col="value")  # doctest: +SKIP
    >>> bg = BGNBD().fit(rfm.compute())  # doctest: +SKIP
    >>> predict_customers_dask(bg, rfm, horizon=52, spend_fit=gg, seed=1,
    ...                        out="s3://shop/clv/")  # doctest: +SKIP
    """
    import dask
    import dask.dataframe as dd

    opts = PredictOptions.merge(options, kwargs, "predict_customers_dask")
    check_fitted(fit, "fit")
    if spend_fit is not None:
        check_fitted(spend_fit, "spend_fit", role="spend")
    top = opts.top
    if isinstance(rfm, pd.DataFrame):
        rfm = dd.from_pandas(rfm, npartitions=max(1, -(-len(rfm) // 100_000)), sort=False)
    if not isinstance(rfm, dd.DataFrame):
        raise TypeError(f"rfm must be a Dask or pandas DataFrame, got {type(rfm).__name__}.")
    needed = ["customer_id", "frequency", "recency", "T"]
    needed += ["monetary_value"] if spend_fit is not None else []
    needed += [horizon] if isinstance(horizon, str) else []
    missing = [c for c in needed if c not in rfm.columns]
    if missing:
        raise ValueError(
            f"rfm lacks column(s) {missing} (it has {list(rfm.columns)}); build it with "
            "rfm_summary_dask or clvbayes.rfm_summary."
        )
    seed = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    if getattr(fit, "calendar", None) is not None and opts.calendar_seed is None:
        # one forecast of the calendar shared by every partition (the common shocks)
        opts = opts.replace(calendar_seed=int(seed.spawn(1)[0].generate_state(1)[0]))
    bg, spend = _slim(fit), None if spend_fit is None else _slim(spend_fit)
    meta = _meta_summary(rfm, bg, spend, horizon, opts)
    if draws_to is not None:
        Path(draws_to).mkdir(parents=True, exist_ok=True)
        draws_to = str(draws_to)
    # one graph key per fit: shipped once to each worker that needs it
    bg_key = dask.delayed(bg, pure=True)
    spend_key = None if spend is None else dask.delayed(spend, pure=True)
    kw = {"seed": seed, "horizon": horizon, "draws_to": draws_to, "options": opts}
    write = {"write_index": False, "overwrite": overwrite}

    ranks = bool(opts.ranks and spend is not None and top)
    tasks = [
        dask.delayed(_score)(part, bg_key, spend_key, i, keep_clv=ranks, **kw)
        for i, part in enumerate(rfm.to_delayed())
    ]
    scored = _persist_scored(tasks, opts.progressbar)
    if not ranks:
        summaries = [dask.delayed(_summary)(s) for s in scored]
        dd.from_delayed(summaries, meta=meta, verify_meta=False).to_parquet(str(out), **write)
        return dd.read_parquet(str(out))
    sizes = dask.compute(*[dask.delayed(_sizes)(s) for s in scored])
    n, n_samples = sum(size[0] for size in sizes), sizes[0][1]
    cut, greater, equal = _top_cuts(scored, top, n, n_samples)
    names = [f"p_top_{percent_label(k)}pct" for k in top]
    shares = (np.asarray(top) * n)[:, None]
    final = [dask.delayed(_add_top)(s, cut, greater, equal, shares, names) for s in scored]
    meta = meta.assign(**{name: np.float64(0.0) for name in names}).iloc[:0]
    dd.from_delayed(final, meta=meta, verify_meta=False).to_parquet(str(out), **write)
    del scored
    return dd.read_parquet(str(out))
