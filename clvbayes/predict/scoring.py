"""Scoring blocks of customers: the per-draw quantities behind every prediction.

For a block of posterior draws (rows) and customers (columns) :func:`score_chunk`
computes ``P(alive)``, the conditional expected purchases, simulated purchases and, with
a spend fit, simulated and conditional-mean CLV, through the fit's family
(:mod:`clvbayes.math.family`); :func:`clvbayes.predict_customers` plans the chunks, runs
them on threads and summarises them. The latent state of a customer alive at ``T`` is
drawn from the family's exact conditional posterior and the future simulated by the
family's process (:func:`simulate_future`, compiled: :mod:`clvbayes.math.kernels`); a
customer who is not alive buys nothing. Every ``(draw, customer)`` element draws from its
own random stream, keyed by the seed, the draw's index and the customer's row in the
caller's table, so no number depends on chunking, threads or the memory cap.
Customers are processed in the order :func:`row_order` gives, so the analytic quantities
are computed about once per distinct row and draw. A fit with covariates scales its
parameters per row by the customers' covariates (its spec's
:class:`~clvbayes.math.covariates.CovariateDesign`), which join the distinct-row key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.data.validate import check_rfm
from clvbayes.math import gamma_gamma
from clvbayes.math.clv import discounted_expectation
from clvbayes.math.covariates import CovariateDesign
from clvbayes.math.draws import draw_index
from clvbayes.math.family import TransactionFamily
from clvbayes.math.processes import MAX_EXPECTED_PURCHASES, TooManyPurchasesError
from clvbayes.models.fitted import FittedModel, check_time_units, coefficients_of, covariates_of
from clvbayes.predict.calendar import ForecastClock

__all__ = [
    "DTYPES",
    "Customers",
    "dtype_of",
    "plan_chunks",
    "population_draw_ids",
    "population_draws",
    "read_customers",
    "row_order",
    "row_params",
    "score_chunk",
    "simulate_future",
    "spend_draws",
    "take_segments",
    "unique_rows",
]

# float64 temporaries per (draw, customer) element of a working block, and bytes held
# per element of a customer chunk (outputs in float32/int32 plus the summaries' sorts).
_WORK_BYTES = 640
_CHUNK_BYTES = 64


@dataclass(frozen=True, eq=False)
class Customers:
    """The columns a prediction needs, as float arrays (copies of the caller's data).

    ``segment`` and ``spend_segment`` are each customer's segment code under the
    transaction fit and the spend fit (0 if unsegmented); ``covariates`` and
    ``spend_covariates`` their covariates under each fit, ``(n, k)`` (``k = 0``
    without)."""

    ids: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    z: np.ndarray
    spend_informed: np.ndarray
    horizon: np.ndarray
    segment: np.ndarray  # segment code of the transaction fit (0 if unsegmented)
    spend_segment: np.ndarray  # segment code of the spend fit (0 if unsegmented)
    covariates: np.ndarray  # (n, k) covariates of the transaction fit
    spend_covariates: np.ndarray  # (n, k) covariates of the spend fit
    position: np.ndarray  # row in the caller's table: the customer's random-stream key

    def __len__(self) -> int:
        return self.x.size

    def take(self, part: slice | np.ndarray) -> Customers:
        return Customers(*(getattr(self, f)[part] for f in self.__dataclass_fields__))


def _segment_codes(fit: FittedModel | None, rfm: Any, n: int) -> np.ndarray:
    """Each customer's segment code under ``fit`` (zeros if unsegmented)."""
    codes = None if fit is None else fit.segment_codes(rfm)
    return np.zeros(n, dtype=np.int64) if codes is None else codes


def take_segments(values: np.ndarray, codes: np.ndarray, ndim: int) -> np.ndarray:
    """Parameter draws per element of ``codes``: ``values[..., None]`` for an unsegmented
    fit (``values.ndim == ndim``), else ``values[..., codes]`` (segment axis last)."""
    return values[..., None] if values.ndim == ndim else values[..., codes]


def read_customers(
    rfm: Any,
    horizon: Any,
    *,
    need_spend: bool,
    fit: FittedModel | None = None,
    spend_fit: FittedModel | None = None,
) -> Customers:
    """Validate and copy the columns a prediction needs (one row per customer).

    ``customer_id`` (else the index) must be unique; ``horizon`` one number or one per
    customer, finite and >= 0; with ``need_spend`` the ``monetary_value`` column too; the
    table's recorded time unit that of ``fit`` (:func:`check_time_units`).
    """
    columns = ("frequency", "recency", "T", *(("monetary_value",) if need_spend else ()))
    if fit is not None:
        check_time_units(fit, rfm)
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
    covariates = _covariates(fit, rfm, n)
    spend_covariates = _covariates(spend_fit, rfm, n)
    return Customers(
        ids,
        x,
        values["recency"],
        values["T"],
        z,
        informed,
        h,
        segment,
        spend_segment,
        covariates,
        spend_covariates,
        np.arange(n, dtype=np.int64),
    )


def _covariates(fit: FittedModel | None, rfm: Any, n: int) -> np.ndarray:
    """Each customer's covariates under ``fit``, ``(n, k)`` (``k = 0`` without)."""
    return np.zeros((n, 0)) if fit is None else covariates_of(fit, rfm)


def row_params(
    theta: dict[str, np.ndarray],
    family: Any,
    design: CovariateDesign,
    codes: np.ndarray,
    covariates: np.ndarray,
    ndim: int = 1,
) -> tuple[np.ndarray, ...]:
    """The family's parameters per row, in its order: each row's segment's draws
    (:func:`take_segments`), scaled by the row's ``covariates`` ``(rows, k)`` with the
    coefficient draws in ``theta`` (``ndim`` leading draw axes)."""
    params = {k: take_segments(theta[k], codes, ndim) for k in family.params}
    coefficients = {k: theta[k] for k in design.coefficients}
    return family.values(design.apply(params, coefficients, list(covariates.T)))


def population_draws(
    fit: FittedModel, n_draws: int | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Flat ``(chain*draw,)`` parameter draws (``(chain*draw, segment)`` for segmented
    fits; coefficients ``(chain*draw, covariate)``) and the ``chain``/``draw``
    coordinates."""
    params = {**fit.params(), **coefficients_of(fit)}
    n_chain, n_draw = next(iter(params.values())).shape[:2]
    per_chain = None if n_draws is None else math.ceil(n_draws / n_chain)
    index = draw_index(n_draw, per_chain)
    posterior = fit.posterior
    coords = {
        "chain": posterior["chain"].to_numpy(),
        "draw": posterior["draw"].to_numpy() if n_draws is None else np.arange(index.size),
    }
    flat = {
        k: np.ascontiguousarray(v[:, index]).reshape(-1, *v.shape[2:]) for k, v in params.items()
    }
    return flat, coords


def population_draw_ids(fit: FittedModel, n_draws: int | None) -> np.ndarray:
    """Flat ``chain x draw`` indices of the draws :func:`population_draws` uses, in its
    order (to pair other per-draw quantities with them)."""
    post = fit.posterior
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    per_chain = None if n_draws is None else math.ceil(n_draws / n_chain)
    index = draw_index(n_draw, per_chain)
    return (np.arange(n_chain)[:, None] * n_draw + index[None, :]).reshape(-1)


def spend_draws(spend_fit: FittedModel, n_samples: int) -> dict[str, np.ndarray]:
    """Gamma-Gamma draws paired with the BG/NBD draws (independent posteriors), with the
    coefficients of its covariates."""
    draws = {**spend_fit.params(), **coefficients_of(spend_fit)}
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in draws.items()}
    index = draw_index(next(iter(flat.values())).shape[0], n_samples)
    return {k: v[index] for k, v in flat.items()}


# --- one block of draws x one chunk of customers -------------------------------------


def unique_rows(c: Customers) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Distinct ``(segment, covariates, x, t_x, T, h)`` of a chunk and each customer's
    row (``"z"``: the rows' covariates, ``(rows, k)``)."""
    stacked = np.column_stack([c.segment, c.covariates, c.x, c.t_x, c.T, c.horizon])
    rows, inverse = np.unique(stacked, axis=0, return_inverse=True)
    k = c.covariates.shape[1]
    names = ("x", "t_x", "T", "h")
    out = {name: rows[:, 1 + k + i] for i, name in enumerate(names)}
    out.update(s=rows[:, 0], z=rows[:, 1 : 1 + k])
    return out, inverse.reshape(-1)


def row_order(c: Customers) -> np.ndarray:
    """Customers sorted by segment, covariates, ``x``, ``T``, ``h`` and then ``t_x``, so
    that customers sharing a row, and also those sharing the ``(x, T, h)`` on which the
    costly hypergeometric functions depend, fall in the same chunk: those are then
    evaluated about once per distinct value and draw overall."""
    return np.lexsort((c.t_x, c.horizon, c.T, c.x, *c.covariates.T[::-1], c.segment))


def _block(
    theta: dict[str, np.ndarray],
    spend: dict[str, np.ndarray] | None,
    c: Customers,
    *,
    draws: np.ndarray,
    seed: int,
    delta: float,
    margin: float,
    nodes: int | None,
    family: TransactionFamily,
    clock_end: float = 0.0,
    windows: tuple[tuple[str, float, float], ...] = (),
    design: CovariateDesign | None = None,
    spend_design: CovariateDesign | None = None,
    conditional: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """All draws-level quantities for a block of draws (rows) and customers (columns):
    ``(per customer, per unique row, each customer's unique row)``; ``p_alive`` and
    ``expected_purchases`` are per unique row.

    ``draws`` are the block's indices among all posterior draws used and ``seed`` the
    stream seed (:func:`clvbayes.math.kernels.stream_key`): with the customers' positions
    they key each element's random stream (:func:`simulate_future`).

    With calendar-time effects (``theta["clock_f"]``: each draw's log multipliers of the
    calibration and forecast periods, :mod:`clvbayes.predict.calendar`) the histories and
    windows are operational times, and simulated purchase times are mapped back to the
    calendar before discounting and binning (:meth:`ForecastClock.knots`).

    ``windows``: ``(label, start, end)`` of each interval whose purchases (and CLV) are
    counted from the same simulated futures (``purchases_<label>``, ``clv_<label>``).
    ``design``/``spend_design``: the fits' covariates (None: none). With a spend fit each
    draw's conditional-mean CLV is added to ``conditional`` (one sum per customer, draw
    after draw).
    """
    design, spend_design = design or CovariateDesign(), spend_design or CovariateDesign()
    rows, inv = unique_rows(c)
    codes = rows["s"].astype(np.int64)  # each row's segment's parameters
    params = row_params(theta, family, design, codes, rows["z"])
    clock = None if "clock_f" not in theta else ForecastClock(theta["clock_f"], clock_end)
    if clock is None:
        data, window = (rows["x"], rows["t_x"], rows["T"]), rows["h"]
    else:
        data, window = (rows["x"], *clock.history(rows["t_x"], rows["T"])), clock.window(rows["h"])
    alive_rows = family.p_alive(*params, *data)
    expected = family.expected_purchases(*params, *data, window, alive=alive_rows)
    per_row = {"p_alive": alive_rows, "expected_purchases": expected}
    out: dict[str, np.ndarray] = {}
    elements = (alive_rows.shape[0], inv.size, len(windows))
    simulate: dict[str, Any] = {"seed": seed, "discount_rate": delta, "margin": margin}
    if clock is not None:
        simulate["clock"] = clock.knots()
    if windows:
        simulate["windows"] = tuple(np.array([w[i] for w in windows]) for i in (1, 2))
        simulate["window_count"] = np.zeros(elements, dtype=np.int32)
    if spend is not None:
        p, q, v = row_params(
            spend, gamma_gamma.FAMILY, spend_design, c.spend_segment, c.spend_covariates
        )
        simulate.update(
            spend=(p, q, v),
            spend_x=np.where(c.spend_informed, c.x, 0.0),
            spend_z=np.where(c.spend_informed, c.z, 0.0),
            discounted=_discounted(
                family, params, data, rows["h"], alive_rows, delta, nodes, clock
            ),
            conditional=conditional,
            window_clv=np.zeros(elements, dtype=np.float32),
        )
    out["purchases"], clv = simulate_future(
        family, params, data, alive_rows, inv, c, draws, simulate
    )
    if clv is not None:
        out["clv"] = clv
    for i, (label, _, _) in enumerate(windows):
        out[f"purchases_{label}"] = simulate["window_count"][..., i]
        if clv is not None:
            out[f"clv_{label}"] = simulate["window_clv"][..., i]
    return out, per_row, inv


def _discounted(
    family: TransactionFamily,
    params: tuple[np.ndarray, ...],
    data: tuple[Any, Any, Any],
    horizon: np.ndarray,
    alive: np.ndarray,
    delta: float,
    nodes: int | None,
    clock: ForecastClock | None,
) -> np.ndarray:
    """Expected discounted purchases per draw and unique row in the calendar windows
    ``(0, horizon]`` (``data``: the rows' histories, operational with a ``clock``)."""
    if clock is None and delta == 0:
        return family.expected_purchases(*params, *data, horizon, alive=alive)
    if clock is None:
        return family.expected_discounted_purchases(
            *params, *data, horizon, delta, nodes=nodes, alive=alive
        )
    if delta == 0:
        return family.expected_purchases(*params, *data, clock.window(horizon), alive=alive)

    def expected_by(offset: Any) -> Any:  # ∫ e^{-δs} dE(τ(s)) over calendar offsets s
        return family.expected_purchases(*params, *data, clock.window(offset), alive=alive)

    return discounted_expectation(expected_by, horizon, delta, nodes=nodes or 16)


DTYPES = {
    "p_alive": np.float32,
    "expected_purchases": np.float32,
    "purchases": np.int32,
    "clv": np.float32,
}
"""Storage type of each kept draw variable (a window's ``purchases_<label>`` and
``clv_<label>`` are stored like ``purchases`` and ``clv``; :func:`dtype_of`)."""


def dtype_of(name: str) -> Any:
    """The storage type of draw variable ``name`` (:data:`DTYPES`, windows included)."""
    return DTYPES.get(name) or DTYPES[name.split("_", 1)[0]]


def score_chunk(
    theta: dict[str, np.ndarray],
    spend: dict[str, np.ndarray] | None,
    c: Customers,
    *,
    block_draws: int,
    means_only: tuple[str, ...] = (),
    **options: Any,
) -> dict[str, np.ndarray]:
    """Draws ``(sample, customer)`` of one customer chunk, filled block of draws by block,
    and with a spend fit ``clv_conditional_mean`` (one value per customer, the draws
    summed in order).

    ``means_only``: of ``p_alive`` and ``expected_purchases``, those for which only each
    customer's mean over the draws is wanted, returned as ``<name>_mean``: the draws
    (stored in float32) summed in order once per unique row, the same numbers as
    :func:`clvbayes.math.order.column_moments` of the customers' draws, without making
    them. ``options`` go to the block (``seed``, ``delta``, ``margin``, ``nodes``,
    ``family``, ``clock_end``, ``windows``, ``design``, ``spend_design``)."""
    from clvbayes.math.order import add_rows_in_order  # (numba: imported when scoring)

    n_samples = next(iter(theta.values())).shape[0]
    out: dict[str, np.ndarray] = {}
    sums: dict[str, np.ndarray] = {}
    inv = np.zeros(0, dtype=np.int64)
    conditional = None if spend is None else np.zeros(len(c))
    for start in range(0, n_samples, block_draws):
        part = slice(start, start + block_draws)
        block, per_row, inv = _block(
            {k: v[part] for k, v in theta.items()},
            None if spend is None else {k: v[part] for k, v in spend.items()},
            c,
            draws=np.arange(start, min(start + block_draws, n_samples)),
            conditional=conditional,
            **options,
        )
        customers = {}
        for name, values in per_row.items():
            if name not in means_only:
                customers[name] = values[:, inv]
                continue
            total = sums.setdefault(name, np.zeros(values.shape[1]))
            add_rows_in_order(total, values.astype(dtype_of(name)))  # as the draws are kept
        for name, values in {**customers, **block}.items():
            if name not in out:
                out[name] = np.empty((n_samples, len(c)), dtype=dtype_of(name))
            out[name][part] = values
    for name, total in sums.items():
        out[f"{name}_mean"] = total[inv] / n_samples
    if conditional is not None:
        out["clv_conditional_mean"] = conditional / n_samples
    return out


def plan_chunks(
    n_samples: int, n_customers: int, memory_limit_mb: float, chunk_customers: int | None
) -> tuple[int, int]:
    """Customers per chunk and draws per block under the memory cap."""
    budget = memory_limit_mb * 2**20
    if chunk_customers is None:
        chunk_customers = int(budget // (n_samples * (_CHUNK_BYTES + _WORK_BYTES)))
    chunk_customers = int(np.clip(chunk_customers, 1, n_customers))
    block_draws = int(np.clip(budget // (chunk_customers * _WORK_BYTES), 1, n_samples))
    return chunk_customers, block_draws


def simulate_future(
    family: TransactionFamily,
    params: tuple[np.ndarray, ...],
    data: tuple[Any, Any, Any],
    alive: np.ndarray,
    inverse: np.ndarray,
    customers: Customers,
    draws: np.ndarray,
    options: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray | None]:
    """Simulated future purchases (and CLV) of every ``(draw, customer)`` element.

    Each element flips its alive coin (weight ``P(alive)`` of its unique row), draws the
    alive branch's latent state from the family's conditional posterior
    (``alive_process``) and simulates its window
    (:func:`clvbayes.math.kernels.simulate_alive_future`, one random stream per element
    keyed by the seed, its draw index and the customer's position, so no result depends
    on chunking or threads); ``params``, ``alive`` and ``data`` are per draw and unique
    row (with calendar-time effects ``data`` holds operational times), ``inverse`` maps
    customers to rows; ``options`` go to the kernel (``seed``, ``discount_rate``,
    ``margin``, ``clock``, ``windows``, ``window_count`` and, with a spend fit,
    ``spend``, ``spend_x``, ``spend_z``, ``discounted``, ``conditional``,
    ``window_clv``). The window is each customer's calendar horizon.

    Returns
    -------
    count : ndarray of int32, (draw, customer)
    clv : ndarray of float32 or None
    """
    from clvbayes.math.kernels import simulate_alive_future

    try:
        return simulate_alive_future(
            family.alive_process(*params, *data, alive=alive),
            inverse,
            customers.position,
            draws,
            customers.horizon,
            **options,
        )
    except TooManyPurchasesError as err:
        raise _named(err, family, params, inverse, customers, draws) from err


def _named(
    err: TooManyPurchasesError,
    family: TransactionFamily,
    params: tuple[np.ndarray, ...],
    inverse: np.ndarray,
    customers: Customers,
    draws: np.ndarray,
) -> TooManyPurchasesError:
    """``err`` of the compiled simulation, told with the customer's id and data and the
    draw's parameters (the kernel knows only positions and its process's fields)."""
    i, j = err.draw, err.customer
    row = inverse[j]
    at = [np.atleast_2d(p) for p in params]  # (draws or 1, rows or 1)
    values = ", ".join(
        f"{name}={v[min(i, v.shape[0] - 1), min(row, v.shape[1] - 1)]:.4g}"
        for name, v in zip(family.params, at, strict=True)
    )
    customer_id = np.asarray(customers.ids)[j : j + 1].tolist()[0]
    message = (
        f"customer {customer_id!r} (frequency {customers.x[j]:g}, recency "
        f"{customers.t_x[j]:g}, T {customers.T[j]:g}), posterior draw {int(draws[i])} "
        f"({values}): if alive, the customer is expected to make {err.expected:.4g} "
        f"purchases in the forecast window of {customers.horizon[j]:g} time units. The "
        "forecast simulates each purchase and refuses more than "
        f"{MAX_EXPECTED_PURCHASES:,} expected purchases per customer and draw: such a "
        "rate is not plausible for customer data. Check that the horizon and the data "
        "are in the fit's time unit, that the fit converged (summary(), diagnostics()) or "
        "that parameters given by hand are in that unit, and that this customer's "
        "frequency, recency and T are right."
    )
    return TooManyPurchasesError(
        message, draw=i, customer=j, expected=err.expected, window=err.window
    )
