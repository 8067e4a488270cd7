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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvbayes.data.validate import check_rfm
from clvbayes.math import gamma_gamma
from clvbayes.math.clv import resolve_discount
from clvbayes.models.base import FittedModel
from clvbayes.predict.spill import DrawMatrix
from clvbayes.predict.summaries import customer_columns, rank_columns
from clvbayes.predict.transaction_models import transaction_model

__all__ = [
    "DRAW_VARIABLES",
    "Result",
    "expected_purchases",
    "p_alive",
    "predict_customers",
]

DRAW_VARIABLES = ("p_alive", "expected_purchases", "purchases", "clv")
"""Variables of :attr:`Result.draws` (``clv`` only with a spend fit)."""

# float64 temporaries per (draw, customer) element of a working block, and bytes held
# per element of a customer chunk (outputs in float32/int32 plus the summaries' sorts).
_WORK_BYTES = 640
_CHUNK_BYTES = 64


@dataclass(frozen=True, eq=False)
class Result:
    """Per-customer predictions.

    Attributes
    ----------
    summary : DataFrame
        One row per customer (see :func:`predict_customers`).
    draws : xarray.Dataset
        Draws with dims ``(chain, draw, customer_id)``.
    """

    summary: pd.DataFrame
    draws: xr.Dataset


@dataclass(frozen=True, eq=False)
class _Customers:
    """The columns a prediction needs, as float arrays (copies of the caller's data)."""

    ids: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    z: np.ndarray
    spend_informed: np.ndarray
    horizon: np.ndarray
    segment: np.ndarray  # segment code of the transaction fit (0 if unsegmented)
    spend_segment: np.ndarray  # segment code of the spend fit (0 if unsegmented)

    def __len__(self) -> int:
        return self.x.size

    def take(self, part: slice | np.ndarray) -> _Customers:
        return _Customers(*(getattr(self, f)[part] for f in self.__dataclass_fields__))


def _segment_codes(fit: FittedModel | None, rfm: Any, n: int) -> np.ndarray:
    """Each customer's segment code under ``fit`` (zeros if unsegmented)."""
    codes = None if fit is None else fit.segment_codes(rfm)
    return np.zeros(n, dtype=np.int64) if codes is None else codes


def _take_segments(values: np.ndarray, codes: np.ndarray, ndim: int) -> np.ndarray:
    """Parameter draws per element of ``codes``: ``values[..., None]`` for an unsegmented
    fit (``values.ndim == ndim``), else ``values[..., codes]`` (segment axis last)."""
    return values[..., None] if values.ndim == ndim else values[..., codes]


def _read_customers(
    rfm: Any,
    horizon: Any,
    *,
    need_spend: bool,
    fit: FittedModel | None = None,
    spend_fit: FittedModel | None = None,
) -> _Customers:
    columns = ("frequency", "recency", "T", *(("monetary_value",) if need_spend else ()))
    values = check_rfm(rfm, columns)
    n = values["frequency"].size
    if "customer_id" in rfm:
        ids = np.asarray(rfm["customer_id"]).copy()
    else:
        ids = np.asarray(getattr(rfm, "index", np.arange(n))).copy()
    if pd.Index(ids).has_duplicates:
        raise ValueError("customer_id has duplicates; predictions need one row per customer.")
    h = np.asarray(horizon, dtype=float)
    if h.ndim > 1 or (h.ndim == 1 and h.size != n):
        raise ValueError(f"horizon must be a number or one value per customer ({n}).")
    h = np.broadcast_to(h, (n,)).copy()
    if not np.all(np.isfinite(h) & (h >= 0)):
        raise ValueError("horizon must be finite and non-negative.")
    x = values["frequency"]
    z = values.get("monetary_value", np.zeros(n))
    informed = (x > 0) & (z > 0)
    segment, spend_segment = _segment_codes(fit, rfm, n), _segment_codes(spend_fit, rfm, n)
    return _Customers(
        ids, x, values["recency"], values["T"], z, informed, h, segment, spend_segment
    )


def _check_transaction_model(fit: FittedModel, argument: str) -> None:
    """``fit`` must be a fitted BG/NBD, MBG/NBD or Pareto/NBD (clear TypeError if not)."""
    if not isinstance(fit, FittedModel):
        raise TypeError(f"{argument} must be a fitted transaction model, got {type(fit).__name__}.")
    try:
        transaction_model(fit.kind)
    except TypeError as error:
        raise TypeError(f"{argument}: {error}") from None


def _check_kind(fit: FittedModel, kind: str, argument: str) -> None:
    if not isinstance(fit, FittedModel) or fit.kind != kind:
        got = getattr(fit, "kind", type(fit).__name__)
        raise TypeError(f"{argument} must be a fitted {kind} model, got {got}.")


def _draw_index(available: int, wanted: int | None) -> np.ndarray:
    """Draws to use: all, evenly thinned, or repeated cyclically when more are wanted.

    Repeating lets a point estimate (MAP: one draw) still give a predictive distribution
    of the customer-level randomness.
    """
    if wanted is None:
        return np.arange(available)
    if wanted < 1:
        raise ValueError(f"n_draws must be positive, got {wanted}")
    if wanted >= available:
        return np.arange(wanted) % available
    return (np.arange(wanted) * available) // wanted


def _population_draws(
    fit: FittedModel, n_draws: int | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Flat ``(chain*draw,)`` parameter draws (``(chain*draw, segment)`` for segmented
    fits) and the ``chain``/``draw`` coordinates."""
    params = fit.params()
    n_chain, n_draw = next(iter(params.values())).shape[:2]
    per_chain = None if n_draws is None else math.ceil(n_draws / n_chain)
    index = _draw_index(n_draw, per_chain)
    posterior = fit.posterior
    coords = {
        "chain": posterior["chain"].to_numpy(),
        "draw": posterior["draw"].to_numpy() if n_draws is None else np.arange(index.size),
    }
    flat = {
        k: np.ascontiguousarray(v[:, index]).reshape(-1, *v.shape[2:]) for k, v in params.items()
    }
    return flat, coords


def _spend_draws(spend_fit: FittedModel, n_samples: int) -> dict[str, np.ndarray]:
    """Gamma-Gamma draws paired with the BG/NBD draws (independent posteriors)."""
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in spend_fit.params().items()}
    index = _draw_index(next(iter(flat.values())).shape[0], n_samples)
    return {k: v[index] for k, v in flat.items()}


# --- one block of draws x one chunk of customers -------------------------------------


def _unique_rows(c: _Customers) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Distinct ``(segment, x, t_x, T, h)`` of a chunk and each customer's row."""
    stacked = np.column_stack([c.segment, c.x, c.t_x, c.T, c.horizon])
    rows, inverse = np.unique(stacked, axis=0, return_inverse=True)
    names = ("s", "x", "t_x", "T", "h")
    return {k: rows[:, i] for i, k in enumerate(names)}, inverse.reshape(-1)


def _row_order(c: _Customers) -> np.ndarray:
    """Customers sorted by segment, ``x``, ``T``, ``h`` and then ``t_x``, so that customers
    sharing a row, and also those sharing the ``(x, T, h)`` on which the costly
    hypergeometric functions depend, fall in the same chunk: those are then evaluated
    about once per distinct value and draw overall."""
    return np.lexsort((c.t_x, c.horizon, c.T, c.x, c.segment))


def _block(
    theta: dict[str, np.ndarray],
    spend: dict[str, np.ndarray] | None,
    c: _Customers,
    *,
    delta: float,
    margin: float,
    rng: np.random.Generator,
    nodes: int | None,
    max_block_elements: int,
    model: str = "BGNBD",
) -> dict[str, np.ndarray]:
    """All draws-level quantities for a block of draws (rows) and customers (columns)."""
    maths = transaction_model(model)  # per-model maths and simulator
    rows, inv = _unique_rows(c)
    codes = rows["s"].astype(np.int64)  # each row's segment's parameters
    params = tuple(_take_segments(v, codes, 1) for v in maths.parameters(theta))
    data = (rows["x"], rows["t_x"], rows["T"])
    alive_rows = maths.p_alive(params, data)
    expected = maths.expected_purchases(params, data, rows["h"], alive_rows)
    out = {"p_alive": alive_rows[:, inv], "expected_purchases": expected[:, inv]}
    shape = out["p_alive"].shape
    horizon = np.broadcast_to(c.horizon, shape)
    simulate = {"max_block_elements": max_block_elements}
    if spend is None:
        out["purchases"] = maths.simulate_future(
            params, data, alive_rows, inv, horizon, rng, simulate
        ).count
        return out
    p, q, v = (_take_segments(spend[k], c.spend_segment, 1) for k in ("p", "q", "v"))
    x_spend = np.where(c.spend_informed, c.x, 0.0)
    z_spend = np.where(c.spend_informed, c.z, 0.0)
    nu_shape, nu_rate = gamma_gamma.spend_scale_posterior(p, q, v, x_spend, z_spend)
    simulate.update(discount_rate=delta, value_shape=p)
    future = maths.simulate_future(params, data, alive_rows, inv, horizon, rng, simulate)
    out["purchases"] = future.count
    # values were drawn as Gamma(p, 1): divide by the spend scale ν ~ Gamma(shape, rate),
    # drawn (independently of the purchases) only where something was bought
    buyers = np.nonzero(future.count)
    shape_b, rate_b = (np.broadcast_to(w, shape)[buyers] for w in (nu_shape, nu_rate))
    clv = np.zeros(shape)
    clv[buyers] = margin * future.value[buyers] / rng.gamma(shape_b, 1.0 / rate_b)
    out["clv"] = clv
    if delta == 0:
        discounted = out["expected_purchases"]
    else:
        discounted = maths.expected_discounted(params, data, rows["h"], delta, nodes, alive_rows)
        discounted = discounted[:, inv]
    with np.errstate(divide="ignore", invalid="ignore"):
        spend_mean = gamma_gamma.expected_spend(p, q, v, x_spend, z_spend)
    out["clv_conditional"] = margin * discounted * np.where(nu_shape > 1, spend_mean, np.nan)
    return out


_DTYPES = {
    "p_alive": np.float32,
    "expected_purchases": np.float32,
    "purchases": np.int32,
    "clv": np.float32,
    "clv_conditional": np.float64,
}


def _chunk(
    theta: dict[str, np.ndarray],
    spend: dict[str, np.ndarray] | None,
    c: _Customers,
    *,
    block_draws: int,
    **options: Any,
) -> dict[str, np.ndarray]:
    """Draws ``(sample, customer)`` of one customer chunk, filled block of draws by block."""
    n_samples = next(iter(theta.values())).shape[0]
    out: dict[str, np.ndarray] = {}
    for start in range(0, n_samples, block_draws):
        part = slice(start, start + block_draws)
        block = _block(
            {k: v[part] for k, v in theta.items()},
            None if spend is None else {k: v[part] for k, v in spend.items()},
            c,
            **options,
        )
        for name, values in block.items():
            if name not in out:
                out[name] = np.empty((n_samples, len(c)), dtype=_DTYPES[name])
            out[name][part] = values
    return out


def _plan(
    n_samples: int, n_customers: int, memory_limit_mb: float, chunk_customers: int | None
) -> tuple[int, int]:
    """Customers per chunk and draws per block under the memory cap."""
    budget = memory_limit_mb * 2**20
    if chunk_customers is None:
        chunk_customers = int(budget // (n_samples * (_CHUNK_BYTES + _WORK_BYTES)))
    chunk_customers = int(np.clip(chunk_customers, 1, n_customers))
    block_draws = int(np.clip(budget // (chunk_customers * _WORK_BYTES), 1, n_samples))
    return chunk_customers, block_draws


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
    bgnbd_fit: FittedModel,
    rfm: Any,
    *,
    horizon: Any,
    spend_fit: FittedModel | None = None,
    time_unit: str | float = "week",
    annual_discount: float = 0.0,
    continuous_discount: float | None = None,
    period_discount: float | None = None,
    margin: float = 1.0,
    thresholds: Iterable[float] = (),
    top: Iterable[float] = (0.1,),
    ranks: bool = True,
    hdi_prob: float = 0.9,
    n_draws: int | None = None,
    seed: int | np.random.SeedSequence | None = None,
    chunk_customers: int | None = None,
    memory_limit_mb: float = 1024.0,
    keep_draws: Sequence[str] | None = None,
    stream_to: str | Path | None = None,
    discount_nodes: int | None = None,
    spill_dir: str | Path | None = None,
    n_jobs: int | None = None,
) -> Result:
    """Posterior of P(alive), expected purchases, and predictive purchases and CLV.

    Parameters
    ----------
    bgnbd_fit : FittedModel
        A fitted transaction model: :class:`~clvbayes.models.BGNBD`,
        :class:`~clvbayes.models.MBGNBD` or :class:`~clvbayes.models.ParetoNBD` (the
        per-model maths and simulators are in :mod:`clvbayes.predict.transaction_models`).
    rfm : DataFrame
        One row per customer: ``customer_id`` (else the index is used), ``frequency``,
        ``recency``, ``T`` and, with ``spend_fit``, ``monetary_value``; in the fit's
        time unit; for segmented fits also their segment column (each customer uses
        its segment's parameters; a segment the fit has not seen is an error). Not
        modified.
    horizon : float or array_like
        Prediction window ``(T, T + horizon]`` in the model's time unit; one number or
        one per customer (e.g. a holdout duration).
    spend_fit : FittedModel, optional
        A fitted :class:`~clvbayes.models.GammaGamma`. Without it, only P(alive) and
        purchases are predicted (no CLV, threshold or rank columns).
    time_unit : str or float
        The model's time unit (``"day"``, ``"week"``, ... or days), for discounting.
    annual_discount : float
        Annual effective discount rate (0.1 = 10 %/year); 0 = no discounting.
    continuous_discount : float, optional
        Instead: a continuous-time discount rate per model time unit (``exp(-δ t)``).
    period_discount : float, optional
        Instead: an effective discount rate per model time unit (0.002 = 0.2 % a week
        for weekly data). At most one of the three may be given.
    margin : float
        Profit margin applied to spend.
    thresholds : iterable of float
        CLV thresholds: adds ``p_clv_gt_<t>``.
    top : iterable of float
        Shares (0.1 = top 10 %): adds ``p_top_<k>pct`` (with a spend fit).
    ranks : bool
        Add ``expected_rank`` and ``p_top_<k>pct`` (with a spend fit). They need all
        customers' CLV draws at once; False skips that pass.
    hdi_prob : float
        Mass of the HDI columns (0.9 gives ``*_hdi90_low/high``).
    n_draws : int, optional
        Number of posterior draws to use (spread evenly over chains, thinned evenly
        within each). More than available repeats the draws cyclically, so a MAP fit
        (one draw) still gives the customer-level predictive distribution.
    seed : int or SeedSequence, optional
        Seed of the simulation. The same seed, data and chunking (``chunk_customers``
        / ``memory_limit_mb``) give identical output.
    chunk_customers : int, optional
        Customers per chunk; by default as many as ``memory_limit_mb`` allows.
    memory_limit_mb : float
        Cap on the working memory of the scoring (all threads together). The CLV draws
        the ranks need (4 bytes per draw and customer) stay in memory up to half of it
        and count against it; above that they go to a temporary file in ``spill_dir``,
        read back in blocks. The kept draws come on top (4 bytes per draw, customer and
        kept variable).
    keep_draws : sequence of str, optional
        Variables of :data:`DRAW_VARIABLES` to return in ``Result.draws``. By default
        all of them when they fit in ``memory_limit_mb``; otherwise none, with a warning
        (pass ``keep_draws`` explicitly, or ``stream_to``, to get them).
    stream_to : str or Path, optional
        Also write all draws, chunk by chunk, to this Parquet file (long format:
        ``chain, draw, customer_id`` and one column per variable).
    discount_nodes : int, optional
        Quadrature nodes of :func:`clvbayes.math.bgnbd.expected_discounted_purchases`
        (conditional-mean CLV); by default chosen per customer for ~1e-8 accuracy.
    spill_dir : str or Path, optional
        Directory of the temporary CLV-draw file for large runs (default: the system's
        temporary directory).
    n_jobs : int, optional
        Threads scoring chunks in parallel (default: the CPUs this process may use). The
        numerical kernels release the GIL; ``memory_limit_mb`` is shared among them. Each
        chunk has its own random stream derived from ``seed``, so the output does not
        depend on ``n_jobs`` (it does on the chunking).

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
    _check_transaction_model(bgnbd_fit, "bgnbd_fit")
    if spend_fit is not None:
        _check_kind(spend_fit, "GammaGamma", "spend_fit")
    thresholds, top = tuple(thresholds), tuple(top)
    if thresholds and spend_fit is None:
        raise ValueError("CLV thresholds need a spend_fit (a fitted GammaGamma).")
    customers_n = len(rfm)
    keep_draws = _default_keep(keep_draws, customers_n, n_draws, bgnbd_fit, memory_limit_mb)
    unknown = set(keep_draws) - set(DRAW_VARIABLES)
    if unknown:
        raise ValueError(f"unknown keep_draws {sorted(unknown)}; choose from {DRAW_VARIABLES}")
    customers = _read_customers(
        rfm, horizon, need_spend=spend_fit is not None, fit=bgnbd_fit, spend_fit=spend_fit
    )
    theta, coords = _population_draws(bgnbd_fit, n_draws)
    n_samples, n = next(iter(theta.values())).shape[0], len(customers)
    spend = None if spend_fit is None else _spend_draws(spend_fit, n_samples)
    jobs = _n_jobs(n_jobs)
    want_ranks = ranks and spend is not None
    # the CLV draws of all customers (for the ranks) stay in memory up to half the cap,
    # else spill to a file; the chunks' working memory gets the rest of the cap
    clv_all = (
        DrawMatrix(n_samples, n, max_memory_mb=memory_limit_mb / 2, directory=spill_dir)
        if want_ranks
        else None
    )
    held_mb = 0.0 if clv_all is None or clv_all.on_disk else n_samples * n * 4 / 2**20
    size, block_draws = _plan(n_samples, n, (memory_limit_mb - held_mb) / jobs, chunk_customers)
    options = {
        "delta": resolve_discount(
            time_unit,
            annual=annual_discount,
            continuous=continuous_discount,
            per_period=period_discount,
        ),
        "margin": float(margin),
        "nodes": discount_nodes,
        "model": bgnbd_fit.kind,
        "block_draws": block_draws,
        # the simulators' passes over purchases (~10 float64 per purchase): an eighth of
        # each thread's share of the cap
        "max_block_elements": int(max(4096, memory_limit_mb / jobs * 2**20 // 640)),
    }
    names = [k for k in DRAW_VARIABLES if k != "clv" or spend is not None]
    kept = {k: np.empty((n_samples, n), dtype=_DTYPES[k]) for k in names if k in keep_draws}
    pieces: list[pd.DataFrame] = []
    sink = None if stream_to is None else _ParquetSink(stream_to, coords)
    order = _row_order(customers)
    starts = range(0, n, size)
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)

    def score(i: int) -> tuple[int, np.ndarray, dict[str, np.ndarray], pd.DataFrame]:
        """Chunk ``i``: its draws and summary rows, with its own random stream."""
        start = starts[i]
        part = order[start : start + size]
        chunk = customers.take(part)
        stream = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, i))
        draws = _chunk(theta, spend, chunk, rng=np.random.default_rng(stream), **options)
        extra = None
        if spend is not None:
            extra = {"clv_conditional_mean": draws.pop("clv_conditional").mean(axis=0)}
        columns = {"customer_id": chunk.ids}
        columns.update(
            customer_columns(draws, thresholds=thresholds, hdi_prob=hdi_prob, extra=extra)
        )
        return start, part, draws, pd.DataFrame(columns, index=part)

    try:
        for start, part, draws, frame in _in_order(score, len(starts), jobs):
            if clv_all is not None:
                clv_all.write_columns(start, draws["clv"])
            for k, values in kept.items():
                values[:, part] = draws[k]
            pieces.append(frame)
            if sink is not None:
                sink.write(frame["customer_id"].to_numpy(), draws)
    except BaseException:
        if clv_all is not None:
            clv_all.close()
        raise
    finally:
        if sink is not None:
            sink.close()
    summary = pd.concat(pieces).sort_index().reset_index(drop=True)
    if clv_all is not None:
        with clv_all:  # columns are in the scoring order: map the results back
            for name, values in rank_columns(clv_all, top, n_jobs=jobs).items():
                column = np.empty(n)
                column[order] = values
                summary[name] = column
    return Result(summary, _dataset(kept, coords, customers.ids))


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


def _default_keep(
    keep_draws: Sequence[str] | None,
    n_customers: int,
    n_draws: int | None,
    fit: FittedModel,
    memory_limit_mb: float,
) -> tuple[str, ...]:
    """``keep_draws`` as given, or all variables when they fit in the memory cap."""
    if keep_draws is not None:
        return tuple(keep_draws)
    if n_draws is None:
        n_draws = int(fit.posterior.sizes["chain"] * fit.posterior.sizes["draw"])
    size_mb = len(DRAW_VARIABLES) * 4 * n_draws * n_customers / 2**20
    if size_mb <= memory_limit_mb:
        return DRAW_VARIABLES
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


def _analytic(fit: FittedModel, rfm: Any, horizon: Any, what: str) -> xr.DataArray:
    _check_transaction_model(fit, "fit")
    maths = transaction_model(fit.kind)
    customers = _read_customers(rfm, horizon, need_spend=False, fit=fit)
    rows, inv = _unique_rows(customers)
    codes = rows["s"].astype(np.int64)
    params = tuple(_take_segments(v, codes, 2) for v in maths.parameters(fit.params()))
    data = (rows["x"], rows["t_x"], rows["T"])
    values = maths.p_alive(params, data)
    if what != "p_alive":
        values = maths.expected_purchases(params, data, rows["h"], values)
    posterior = fit.posterior
    return xr.DataArray(
        np.asarray(values)[..., inv],
        dims=("chain", "draw", "customer_id"),
        coords={
            "chain": posterior["chain"].to_numpy(),
            "draw": posterior["draw"].to_numpy(),
            "customer_id": customers.ids,
        },
        name=what,
    )


def p_alive(fit: FittedModel, rfm: Any) -> xr.DataArray:
    """Posterior of each customer's P(alive): dims ``(chain, draw, customer_id)``.

    Parameters
    ----------
    fit : FittedModel
        A fitted BG/NBD, MBG/NBD or Pareto/NBD.
    rfm : DataFrame
        ``customer_id`` (else the index), ``frequency``, ``recency``, ``T``.
    """
    return _analytic(fit, rfm, 0.0, "p_alive")


def expected_purchases(fit: FittedModel, rfm: Any, horizon: Any) -> xr.DataArray:
    """Posterior of the expected purchases in ``(T, T+horizon]`` per customer.

    Parameters
    ----------
    fit : FittedModel
        A fitted BG/NBD, MBG/NBD or Pareto/NBD.
    rfm : DataFrame
        ``customer_id`` (else the index), ``frequency``, ``recency``, ``T``.
    horizon : float or array_like
        Window length, one number or one per customer.

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, customer_id)``.
    """
    return _analytic(fit, rfm, horizon, "expected_purchases")
