"""Per-customer posteriors and posterior predictive draws of purchases and CLV.

For every posterior draw ``s`` of the population parameters and every customer:

1. **Analytic quantities** from :mod:`clvbayes.math`: ``P(alive)`` (FHL 2005, eq. 11),
   the conditional expected purchases in ``(T, T+h]`` (eq. 10) and, with a spend fit,
   the conditional-mean CLV ``margin x E[discounted purchases] x E[spend]`` (what
   pymc-marketing's ``expected_customer_lifetime_value`` reports per draw).
2. **Posterior predictive draws.** The customer's latent state is drawn from its exact
   conditional posterior (:func:`clvbayes.math.bgnbd.customer_posterior`): alive with
   probability ``P(alive)``, then ``λ ~ Gamma(r+x, α+T)`` and ``p ~ Beta(a, b+x)``; a
   customer who dropped out after the last purchase buys nothing more, so that branch's
   ``(λ, p)`` never matter. Future purchase *times* are simulated (Poisson arrivals,
   dropout after each purchase with probability ``p``), so discounting is exact. With a
   spend fit the spend scale is ``ν ~ Gamma(px+q, v+xz)``
   (:func:`clvbayes.math.gamma_gamma.spend_scale_posterior`; the prior ``Gamma(q, v)``
   for customers the Gamma-Gamma model does not use, i.e. ``x = 0`` or
   ``monetary_value = 0``), and each future transaction is worth ``Gamma(p, rate ν)``,
   independently of its timing. The draws carry both uncertainties: the population
   parameters' and the customer's own.

Discounting. A purchase at time ``t`` after ``T`` is worth ``exp(-δ t)``, with ``δ`` a
continuous rate per model time unit given by one of three conventions
(:func:`clvbayes.math.clv.resolve_discount`): ``annual_discount``, an annual *effective*
rate ``d`` (``δ = ln(1+d) x days_per_unit / 365.2425``); ``continuous_discount``, ``δ``
itself; or ``period_discount``, an effective rate per model time unit ``d_u``
(``δ = ln(1+d_u)``).

The options (discounting, margin, thresholds, intervals, draws, memory, threads) are one
:class:`~clvbayes.predict.options.PredictOptions`, shared with :func:`validate_holdout`,
the report and the Dask scorer; the per-chunk computation is
:mod:`clvbayes.predict.scoring`.

Memory and time. Customers are processed in chunks (and the draws of a chunk in blocks)
sized from ``memory_limit_mb``; no ``draw x customer`` intermediate is formed beyond a
chunk. Chunks follow the order of the distinct ``(frequency, recency, T, horizon)`` rows,
so the analytic quantities are computed about once per distinct row and draw (CDNOW
master: 8,685 distinct rows for 23,570 customers).
What is kept for all customers is what the caller asks for in ``keep_draws`` (float32 /
int32, ``4 x draws x customers`` bytes each) plus the CLV draws, which the ranks need.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvbayes.data.calendar import customer_table
from clvbayes.math.draws import draw_index
from clvbayes.math.family import check_counts
from clvbayes.math.kernels import stream_key
from clvbayes.models.fitted import (
    FittedModel,
    check_fitted,
    check_time_units,
    coefficients_of,
    design_of,
)
from clvbayes.predict.calendar import ForecastClock, forecast_clock
from clvbayes.predict.options import PredictOptions
from clvbayes.predict.result import Result
from clvbayes.predict.scoring import (
    Customers,
    dtype_of,
    plan_chunks,
    population_draw_ids,
    population_draws,
    read_customers,
    row_order,
    row_params,
    score_chunk,
    spend_draws,
    unique_rows,
)
from clvbayes.predict.spill import DrawMatrix
from clvbayes.predict.summaries import customer_columns, rank_columns
from clvbayes.progress import progress_bar

__all__ = [
    "DRAW_VARIABLES",
    "Result",
    "dert",
    "draw_variables",
    "expected_purchases",
    "p_alive",
    "p_no_purchase",
    "predict_customers",
    "purchase_pmf",
]

DRAW_VARIABLES = ("p_alive", "expected_purchases", "purchases", "clv")
"""Variables of :attr:`Result.draws` (``clv`` only with a spend fit)."""

_MEANS_ONLY = ("p_alive", "expected_purchases")  # the summary needs only their means


class _ParquetSink:
    """Appends long-format draws (chain, draw, customer_id, variables) chunk by chunk."""

    def __init__(self, path: str | Path, coords: dict[str, np.ndarray]) -> None:
        self.path = Path(path)
        self.coords = coords
        self.writer: Any = None

    def write(self, ids: np.ndarray, draws: dict[str, np.ndarray]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        n_chain, n_draw = self.coords["chain"].size, self.coords["draw"].size
        columns = {
            "chain": np.repeat(self.coords["chain"], n_draw * ids.size),
            "draw": np.tile(np.repeat(self.coords["draw"], ids.size), n_chain),
            "customer_id": np.tile(ids, n_chain * n_draw),
        }
        columns.update({k: v.reshape(-1) for k, v in draws.items()})
        table = pa.table(columns)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def predict_customers(
    fit: FittedModel,
    rfm: Any,
    *,
    horizon: Any,
    spend_fit: FittedModel | None = None,
    seed: int | np.random.SeedSequence | None = None,
    options: PredictOptions | None = None,
    keep_draws: Sequence[str] | None = None,
    stream_to: str | Path | None = None,
    **kwargs: Any,
) -> Result:
    """Posterior of P(alive), expected purchases, and predictive purchases and CLV.

    Parameters
    ----------
    fit : FittedModel
        A fitted transaction model: :class:`~clvbayes.models.BGNBD`,
        :class:`~clvbayes.models.MBGNBD` or :class:`~clvbayes.models.ParetoNBD` (the
        per-model maths and simulators come from its family, :mod:`clvbayes.math.family`).
    rfm : DataFrame or CalendarRFM
        One row per customer: ``customer_id`` (else the index), ``frequency``,
        ``recency``, ``T`` and, with ``spend_fit``, ``monetary_value``, in the fit's time
        unit (another recorded ``rfm.attrs["time_unit"]`` is an error); segmented fits
        need the segment column (an unseen segment is an error). Not modified.
    horizon : float or array_like
        Prediction window ``(T, T + horizon]`` in the model's time unit; one number or
        one per customer (e.g. a holdout duration).
    spend_fit : FittedModel, optional
        A fitted :class:`~clvbayes.models.GammaGamma`. Without it, only P(alive) and
        purchases are predicted, with their intervals (no CLV, threshold or rank
        columns): CLV needs a value column, so this is what a log without amounts (visits,
        orders without prices) gets.
    seed : int or SeedSequence, optional
        Seed of the simulation. The same seed and data give identical output for any
        ``n_jobs``, chunking and memory cap: each (draw, customer) element has its own
        random stream, keyed by the seed, the draw and the customer's row in ``rfm``.
    options : PredictOptions, optional
        Discounting, margin, thresholds, top shares, ranks, ``ci_prob``, ``n_draws``,
        memory cap, chunking, threads, the progress bar
        (:class:`~clvbayes.predict.options.PredictOptions` documents each); its fields
        may also be keyword arguments (``annual_discount=0.1``), overriding ``options``.
    keep_draws : sequence of str, optional
        Variables of :data:`DRAW_VARIABLES` to return in ``Result.draws``. By default
        all of them when they fit in ``memory_limit_mb``; otherwise none, with a warning
        (pass ``keep_draws`` explicitly, or ``stream_to``, to get them).
    stream_to : str or Path, optional
        Also write all draws, chunk by chunk, to this Parquet file (long format:
        ``chain, draw, customer_id`` and one column per variable).
    **kwargs
        Fields of :class:`~clvbayes.predict.options.PredictOptions`.

    Returns
    -------
    Result
        ``summary`` has one row per customer: ``customer_id, p_alive,
        expected_purchases, purchases_{mean, sd, q05, q50, q95, hdi90_low, hdi90_high}``
        and with a spend fit ``clv_{...same...}, clv_conditional_mean,
        p_clv_gt_<t>..., expected_rank, p_top_<k>pct...``. ``p_alive`` and
        ``expected_purchases`` are posterior means of the analytic values;
        ``clv_conditional_mean`` is the posterior mean of ``margin x E[discounted
        purchases] x E[spend]`` (NaN in draws with ``q <= 1``, where the expected spend
        of a customer without spend data is infinite). ``draws`` holds ``keep_draws``
        with dims ``(chain, draw, customer_id)``.

    Examples
    --------
    >>> res = predict_customers(bg, rfm, horizon=52, spend_fit=gg,
    ...                         annual_discount=0.1, thresholds=[100], seed=1)  # doctest: +SKIP
    >>> res.summary.sort_values("expected_rank").head()  # doctest: +SKIP
    """
    opts = PredictOptions.merge(options, kwargs, "predict_customers")
    family = check_fitted(fit, "fit")
    unit = check_time_units(fit, rfm, opts.time_unit)
    opts = opts.replace(time_unit="W" if unit is None else unit)
    if spend_fit is not None:
        check_fitted(spend_fit, "spend_fit", role="spend")
        if hasattr(rfm, "columns") and "monetary_value" not in rfm.columns:
            raise ValueError(
                "CLV needs a value column: rfm has no monetary_value (it was summarized "
                "without value_col). Summarize the log with rfm_summary(..., value_col=...) "
                "(clvbayes rfm --value-col), or predict without spend_fit for P(alive) and "
                "purchases only."
            )
    if opts.thresholds and spend_fit is None:
        raise ValueError(
            "CLV thresholds need a spend_fit (a GammaGamma fitted on a log with a value "
            "column): CLV needs a value column."
        )
    rfm = customer_table(rfm)
    n = len(rfm)
    opts = opts.simulated(fit.n_posterior_draws)
    names = draw_variables(opts, spend=spend_fit is not None)
    keep = _default_keep(keep_draws, n, opts.n_draws, fit, opts.memory_limit_mb, names)
    unknown = set(keep) - set(DRAW_VARIABLES) - set(names)
    if unknown:
        raise ValueError(f"unknown keep_draws {sorted(unknown)}; choose from {names}")
    customers = read_customers(
        rfm, horizon, need_spend=spend_fit is not None, fit=fit, spend_fit=spend_fit
    )
    _check_windows(opts, customers.horizon)
    theta, coords = population_draws(fit, opts.n_draws)
    n_samples = next(iter(theta.values())).shape[0]
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    clock_end = _add_clock(theta, fit, customers.horizon, root, opts)
    spend = None if spend_fit is None else spend_draws(spend_fit, n_samples)
    jobs = _n_jobs(opts.n_jobs)
    clv_all = _rank_matrix(opts, n_samples, n) if opts.ranks and spend is not None else None
    held_mb = 0.0 if clv_all is None else clv_all.memory_mb
    share_mb = (opts.memory_limit_mb - held_mb) / jobs  # the chunks get the rest of the cap
    size, block_draws = plan_chunks(n_samples, n, share_mb, opts.chunk_customers)
    settings = {
        "delta": opts.discount_rate,
        "margin": float(opts.margin),
        "nodes": opts.discount_nodes,
        "family": family,
        "clock_end": clock_end,
        "design": design_of(fit),
        "spend_design": None if spend_fit is None else design_of(spend_fit),
        "block_draws": block_draws,
        "windows": opts.windows,
        "seed": stream_key(root),  # keys each element's stream with its draw and row
        # their draws are made only when they are kept or streamed
        "means_only": ()
        if stream_to is not None
        else tuple(k for k in _MEANS_ONLY if k not in keep),
    }
    kept = {k: np.empty((n_samples, n), dtype=dtype_of(k)) for k in names if k in keep}
    order = row_order(customers)
    starts = range(0, n, size)

    def score(i: int) -> tuple[int, np.ndarray, dict[str, np.ndarray], pd.DataFrame]:
        """Chunk ``i``: its draws and summary rows."""
        part = order[starts[i] : starts[i] + size]
        chunk = customers.take(part)
        draws = score_chunk(theta, spend, chunk, **settings)
        return starts[i], part, draws, _summary_rows(draws, chunk, part, opts)

    with progress_bar(n, desc="predict_customers", enabled=opts.progressbar) as bar:
        summary = _run(score, len(starts), jobs, kept, clv_all, stream_to, coords, bar.update)
    if clv_all is not None:
        with clv_all:  # columns are in the scoring order: map the results back
            for name, values in rank_columns(clv_all, opts.top, n_jobs=jobs).items():
                column = np.empty(n)
                column[order] = values
                summary[name] = column
    return Result(summary, _dataset(kept, coords, customers.ids))


def _rank_matrix(opts: PredictOptions, n_samples: int, n: int) -> DrawMatrix:
    """Room for the CLV draws of all customers (for the ranks): in memory up to half the
    cap, else in a file written through a buffer of an eighth of the cap (wide blocks:
    large reads for the ranks)."""
    return DrawMatrix(
        n_samples,
        n,
        max_memory_mb=opts.memory_limit_mb / 2,
        directory=opts.spill_dir,
        buffer_mb=opts.memory_limit_mb / 8,
    )


def _summary_rows(
    draws: dict[str, np.ndarray], chunk: Customers, part: np.ndarray, opts: PredictOptions
) -> pd.DataFrame:
    """A chunk's summary rows (indexed by the customers' positions)."""
    extra = None
    if "clv_conditional_mean" in draws:
        extra = {"clv_conditional_mean": draws.pop("clv_conditional_mean")}
    means = {k: draws.pop(f"{k}_mean") for k in _MEANS_ONLY if f"{k}_mean" in draws}
    columns = {"customer_id": chunk.ids}
    columns.update(
        customer_columns(
            draws, thresholds=opts.thresholds, ci_prob=opts.ci_prob, extra=extra, means=means
        )
    )
    return pd.DataFrame(columns, index=part)


def _run(
    score: Callable[[int], Any],
    n_chunks: int,
    jobs: int,
    kept: dict[str, np.ndarray],
    clv_all: DrawMatrix | None,
    stream_to: str | Path | None,
    coords: dict[str, np.ndarray],
    done: Callable[[int], Any],
) -> pd.DataFrame:
    """Score every chunk on ``jobs`` threads and gather: the CLV draws for the ranks,
    the kept draws, the Parquet stream and the summary (in the customers' order);
    ``done(n)`` is told of every ``n`` customers scored."""
    pieces: list[pd.DataFrame] = []
    sink = None if stream_to is None else _ParquetSink(stream_to, coords)
    try:
        for start, part, draws, frame in _in_order(score, n_chunks, jobs):
            if clv_all is not None:
                clv_all.write_columns(start, draws["clv"])
            for k, values in kept.items():
                values[:, part] = draws[k]
            pieces.append(frame)
            if sink is not None:
                sink.write(frame["customer_id"].to_numpy(), draws)
            done(part.size)
    except BaseException:
        if clv_all is not None:
            clv_all.close()
        raise
    finally:
        if sink is not None:
            sink.close()
    return pd.concat(pieces).sort_index().reset_index(drop=True)


def _n_jobs(n_jobs: int | None) -> int:
    """Number of scoring threads: ``n_jobs`` or the CPUs available to this process."""
    if n_jobs is None:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if int(n_jobs) < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    return int(n_jobs)


def _in_order(work: Callable[[int], Any], n_tasks: int, jobs: int) -> Iterator[Any]:
    """``work(0), work(1), ...`` in order, computed by ``jobs`` threads at most
    ``jobs + 1`` tasks ahead of the consumer (so finished chunks do not pile up)."""
    if jobs == 1 or n_tasks <= 1:
        for i in range(n_tasks):
            yield work(i)
        return
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pending: deque[Future] = deque()
        submitted = 0
        while submitted < min(n_tasks, jobs + 1):
            pending.append(pool.submit(work, submitted))
            submitted += 1
        try:
            while pending:
                result = pending.popleft().result()
                if submitted < n_tasks:
                    pending.append(pool.submit(work, submitted))
                    submitted += 1
                yield result
        finally:
            for future in pending:
                future.cancel()


def draw_variables(options: PredictOptions, *, spend: bool) -> tuple[str, ...]:
    """The draw variables a prediction with ``options`` computes: :data:`DRAW_VARIABLES`
    (``clv`` with a spend fit) and each interval's ``purchases_<label>`` (and
    ``clv_<label>``)."""
    names = [k for k in DRAW_VARIABLES if k != "clv" or spend]
    for label in options.interval_labels:
        names += [f"purchases_{label}"] + ([f"clv_{label}"] if spend else [])
    return tuple(names)


def _check_windows(options: PredictOptions, horizon: np.ndarray) -> None:
    """Raise ``ValueError`` if an interval ends after a customer's horizon."""
    if not options.intervals or not horizon.size:
        return
    end, shortest = max(b for _, b in options.intervals), float(horizon.min())
    if end > shortest:
        raise ValueError(
            f"intervals end at {end:g}, after the horizon ({shortest:g}); the simulation "
            f"covers (0, horizon]: pass horizon >= {end:g} or shorter intervals."
        )


def _default_keep(
    keep_draws: Sequence[str] | None,
    n_customers: int,
    n_draws: int | None,
    fit: FittedModel,
    memory_limit_mb: float,
    names: Sequence[str] = DRAW_VARIABLES,
) -> tuple[str, ...]:
    """``keep_draws`` as given, or all variables (``names``) when they fit in the cap."""
    if keep_draws is not None:
        return tuple(keep_draws)
    if n_draws is None:
        n_draws = fit.n_posterior_draws
    size_mb = max(len(DRAW_VARIABLES), len(names)) * 4 * n_draws * n_customers / 2**20
    if size_mb <= memory_limit_mb:
        return tuple(dict.fromkeys((*DRAW_VARIABLES, *names)))
    warnings.warn(
        f"predict_customers: the draws of {n_customers:,} customers x {n_draws:,} samples "
        f"would take {size_mb:,.0f} MB (memory_limit_mb={memory_limit_mb:,.0f}), so only "
        "the summary is returned; pass keep_draws=[...] to keep some anyway, or "
        "stream_to='draws.parquet' to write them all to disk.",
        UserWarning,
        stacklevel=3,
    )
    return ()


def _dataset(
    draws: dict[str, np.ndarray], coords: dict[str, np.ndarray], ids: np.ndarray
) -> xr.Dataset:
    n_chain, n_draw = coords["chain"].size, coords["draw"].size
    dims = ("chain", "draw", "customer_id")
    return xr.Dataset(
        {k: (dims, v.reshape(n_chain, n_draw, ids.size)) for k, v in draws.items()},
        coords={**coords, "customer_id": ids},
    )


_CLOCK_STREAM = 2**31 - 1  # spawn key of the forecast clock's stream (a child of the seed)


def _add_clock(
    theta: dict[str, np.ndarray],
    fit: FittedModel,
    horizon: np.ndarray,
    root: np.random.SeedSequence,
    opts: PredictOptions,
) -> float:
    """With calendar-time effects, put each draw's forecast clock into ``theta`` (as
    ``clock_f``, sliced with the draws) and return the calibration end's position."""
    if getattr(fit, "calendar", None) is None:
        return 0.0
    stream = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, _CLOCK_STREAM))
    if opts.calendar_seed is not None:
        stream = np.random.SeedSequence(int(opts.calendar_seed))
    draws = population_draw_ids(fit, opts.n_draws)
    h_max = float(np.max(horizon, initial=0.0))
    clock = forecast_clock(
        fit, draws, h_max, np.random.default_rng(stream), opts.calendar_covariates
    )
    theta["clock_f"] = clock.f
    return clock.grid_end


def _analytic(
    fit: FittedModel,
    rfm: Any,
    horizon: Any,
    name: str,
    compute: Callable[..., np.ndarray] | None = None,
    *,
    n_draws: int | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
    seed: Any = None,
    calendar_covariates: pd.DataFrame | None = None,
) -> xr.DataArray:
    """A per-draw analytic quantity of every customer, computed once per distinct row.

    ``compute(family, params, data, h)`` (default: the family's function ``name`` at
    ``(*params, *data, h)``) gets the parameters ``(chain, draw, row)``, the
    rows' ``(x, t_x, T)`` and window ``h`` and returns ``(chain, draw, row, *extra)``;
    ``extra`` names and labels the trailing dims. ``n_draws`` thins the draws of each
    chain evenly (:func:`clvbayes.math.draws.draw_index`, no repeats). With calendar-time
    effects ``t_x``, ``T`` and ``h`` are each draw's operational times (its forecast
    clock drawn with ``seed``, with ``calendar_covariates`` for forecast periods).
    """
    family = check_fitted(fit, "fit")
    check_time_units(fit, rfm)
    customers = read_customers(customer_table(rfm), horizon, need_spend=False, fit=fit)
    rows, inv = unique_rows(customers)
    codes = rows["s"].astype(np.int64)
    n_chain, n_draw = next(iter(fit.params().values())).shape[:2]
    per_chain = None if n_draws is None else math.ceil(n_draws / n_chain)
    take = draw_index(n_draw, per_chain, cycle=False)
    theta = {k: v[:, take] for k, v in {**fit.params(), **coefficients_of(fit)}.items()}
    params = row_params(theta, family, design_of(fit), codes, rows["z"], ndim=2)
    data = (rows["x"], rows["t_x"], rows["T"])
    window = rows["h"]
    if getattr(fit, "calendar", None) is not None:
        theta: dict[str, np.ndarray] = {}
        opts = PredictOptions(calendar_covariates=calendar_covariates)
        end = _add_clock(theta, fit, rows["h"], np.random.SeedSequence(seed), opts)
        clock = ForecastClock(theta["clock_f"], end)

        def per_draw(v: np.ndarray) -> np.ndarray:
            return v.reshape(n_chain, n_draw, -1)[:, take]

        data = (rows["x"], *(per_draw(v) for v in clock.history(data[1], data[2])))
        window = per_draw(clock.window(rows["h"]))
    if compute is None:
        values = getattr(family, name)(*params, *data, window)
    else:
        values = compute(family, params, data, window)
    posterior = fit.posterior
    extra = dict(extra or {})
    return xr.DataArray(
        np.asarray(values)[:, :, inv],
        dims=("chain", "draw", "customer_id", *extra),
        coords={
            "chain": posterior["chain"].to_numpy(),
            "draw": posterior["draw"].to_numpy()[take],
            "customer_id": customers.ids,
            **extra,
        },
        name=name,
    )


def p_alive(fit: FittedModel, rfm: Any, *, n_draws: int | None = None) -> xr.DataArray:
    """Posterior of each customer's P(alive): dims ``(chain, draw, customer_id)``.

    Parameters
    ----------
    fit : FittedModel
        A fitted BG/NBD, MBG/NBD or Pareto/NBD (with calendar-time effects too: the
        histories then run on each draw's operational clock).
    rfm : DataFrame or CalendarRFM
        ``customer_id`` (else the index), ``frequency``, ``recency``, ``T``.
    n_draws : int, optional
        Posterior draws to use (thinned evenly within each chain; default all).
    """
    return _analytic(
        fit,
        rfm,
        0.0,
        "p_alive",
        lambda family, params, data, h: family.p_alive(*params, *data),
        n_draws=n_draws,
    )


def expected_purchases(
    fit: FittedModel,
    rfm: Any,
    horizon: Any,
    *,
    n_draws: int | None = None,
    seed: int | None = None,
    calendar_covariates: pd.DataFrame | None = None,
) -> xr.DataArray:
    """Posterior of the expected purchases in ``(T, T+horizon]`` per customer.

    Parameters
    ----------
    fit : FittedModel
        A fitted BG/NBD, MBG/NBD or Pareto/NBD.
    rfm : DataFrame or CalendarRFM
        ``customer_id`` (else the index), ``frequency``, ``recency``, ``T``.
    horizon : float or array_like
        Window length, one number or one per customer.
    n_draws : int, optional
        Posterior draws to use (thinned evenly within each chain; default all).
    seed : int, optional
        With calendar-time effects: the seed of each draw's future calendar path (the
        expectation is then that of a draw of the posterior predictive calendar).
    calendar_covariates : DataFrame, optional
        With known calendar covariates: their values for the forecast periods the fit's
        ``TimeEffects(covariates=...)`` did not hold (as for
        :func:`clvbayes.predict_customers`).

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, customer_id)``.
    """
    return _analytic(
        fit,
        rfm,
        horizon,
        "expected_purchases",
        n_draws=n_draws,
        seed=seed,
        calendar_covariates=calendar_covariates,
    )


def p_no_purchase(
    fit: FittedModel,
    rfm: Any,
    window: Any,
    *,
    n_draws: int | None = None,
    seed: int | None = None,
    calendar_covariates: pd.DataFrame | None = None,
) -> xr.DataArray:
    """Posterior of each customer's probability of no purchase in ``(T, T+window]``.

    The churn probability of a window: ``L(x, t_x, T+window) / L(x, t_x, T)`` per
    posterior draw, i.e. one minus the probability of buying again within the window
    (the family's ``conditional_pmf`` at ``n = 0``, :mod:`clvbayes.math.family`).

    Parameters
    ----------
    fit, rfm, n_draws
        As for :func:`p_alive`.
    window : float or array_like
        Window length in the model's time unit, one number or one per customer.
    seed : int, optional
        As for :func:`expected_purchases` (fits with calendar-time effects).
    calendar_covariates : DataFrame, optional
        As for :func:`expected_purchases`.

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, customer_id)``.
    """
    return _analytic(
        fit,
        rfm,
        window,
        "p_no_purchase",
        n_draws=n_draws,
        seed=seed,
        calendar_covariates=calendar_covariates,
    )


def purchase_pmf(
    fit: FittedModel,
    rfm: Any,
    window: Any,
    counts: Any,
    *,
    n_draws: int | None = None,
    seed: int | None = None,
    calendar_covariates: pd.DataFrame | None = None,
) -> xr.DataArray:
    """Posterior of ``P(n purchases in (T, T+window])`` per customer, for ``n`` in ``counts``.

    The family's exact conditional pmf per posterior draw (:mod:`clvbayes.math.family`,
    ``conditional_pmf``); its mean over draws is the posterior predictive pmf.

    Parameters
    ----------
    fit, rfm
        As for :func:`p_alive`.
    window : float or array_like
        Window length, one number or one per customer.
    counts : sequence of int
        Numbers of purchases ``n >= 0``, e.g. ``range(6)``.
    n_draws : int, optional
        As for :func:`p_alive`; the memory is ``8 x draws x customers x len(counts)``
        bytes.
    seed : int, optional
        As for :func:`expected_purchases` (fits with calendar-time effects).
    calendar_covariates : DataFrame, optional
        As for :func:`expected_purchases`.

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, customer_id, purchases)``; ``purchases`` holds ``counts``.
    """
    n = check_counts(counts).astype(np.int64)
    return _analytic(
        fit,
        rfm,
        window,
        "purchase_pmf",
        lambda family, params, data, h: family.conditional_pmf(*params, *data, h, n),
        n_draws=n_draws,
        extra={"purchases": n},
        seed=seed,
        calendar_covariates=calendar_covariates,
    )


def dert(
    fit: FittedModel, rfm: Any, discount_rate: float, *, n_draws: int | None = None
) -> xr.DataArray:
    """Posterior of each customer's discounted expected residual transactions (DERT).

    ``E[Σ_j exp(-δ t_j)]`` over all of the customer's purchases after ``T``, per
    posterior draw (CLVTools' ``DERT``; the family's ``dert``,
    :mod:`clvbayes.math.family`). Times the expected spend per purchase it is the
    customer's residual lifetime value (:func:`clvbayes.analyses.residual_value`).

    Parameters
    ----------
    fit, rfm, n_draws
        As for :func:`p_alive`.
    discount_rate : float
        Continuous discount rate ``δ > 0`` per model time unit (e.g.
        :func:`clvbayes.math.clv.continuous_rate` of an annual rate, or
        ``PredictOptions(...).discount_rate``).

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, customer_id)``.
    """
    if getattr(fit, "calendar", None) is not None:
        raise ValueError(
            "dert of a fit with calendar-time effects: discounting runs in calendar time, "
            "which the closed form does not know; use predict_customers (its "
            "clv_conditional_mean integrates the forecast clock) instead."
        )
    return _analytic(
        fit,
        rfm,
        0.0,
        "dert",
        lambda family, params, data, h: family.dert(*params, *data, discount_rate),
        n_draws=n_draws,
    )
