"""Scoring blocks of customers: the per-draw quantities behind every prediction.

For a block of posterior draws (rows) and customers (columns) :func:`score_chunk`
computes ``P(alive)``, the conditional expected purchases, simulated purchases and, with
a spend fit, simulated and conditional-mean CLV, through the fit's family
(:mod:`clvbayes.math.family`); :func:`clvbayes.predict_customers` plans the chunks, runs
them on threads and summarises them. The latent state of a customer alive at ``T`` is
drawn from the family's exact conditional posterior and the future simulated by the
family's process (:func:`simulate_future`); a customer who is not alive buys nothing.
Customers are processed in the order :func:`row_order` gives, so the analytic quantities
are computed about once per distinct row and draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.data.validate import check_rfm
from clvbayes.math.draws import draw_index
from clvbayes.math.family import TransactionFamily
from clvbayes.models.fitted import FittedModel

__all__ = [
    "DTYPES",
    "Customers",
    "plan_chunks",
    "population_draws",
    "read_customers",
    "row_order",
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
    transaction fit and the spend fit (0 if unsegmented)."""

    ids: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    z: np.ndarray
    spend_informed: np.ndarray
    horizon: np.ndarray
    segment: np.ndarray  # segment code of the transaction fit (0 if unsegmented)
    spend_segment: np.ndarray  # segment code of the spend fit (0 if unsegmented)
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
    customer, finite and >= 0; with ``need_spend`` the ``monetary_value`` column too.
    """
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
    position = np.arange(n, dtype=np.int64)
    return Customers(
        ids, x, values["recency"], values["T"], z, informed, h, segment, spend_segment, position
    )


def population_draws(
    fit: FittedModel, n_draws: int | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Flat ``(chain*draw,)`` parameter draws (``(chain*draw, segment)`` for segmented
    fits) and the ``chain``/``draw`` coordinates."""
    params = fit.params()
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


def spend_draws(spend_fit: FittedModel, n_samples: int) -> dict[str, np.ndarray]:
    """Gamma-Gamma draws paired with the BG/NBD draws (independent posteriors)."""
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in spend_fit.params().items()}
    index = draw_index(next(iter(flat.values())).shape[0], n_samples)
    return {k: v[index] for k, v in flat.items()}


# --- one block of draws x one chunk of customers -------------------------------------


def unique_rows(c: Customers) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Distinct ``(segment, x, t_x, T, h)`` of a chunk and each customer's row."""
    stacked = np.column_stack([c.segment, c.x, c.t_x, c.T, c.horizon])
    rows, inverse = np.unique(stacked, axis=0, return_inverse=True)
    names = ("s", "x", "t_x", "T", "h")
    return {k: rows[:, i] for i, k in enumerate(names)}, inverse.reshape(-1)


def row_order(c: Customers) -> np.ndarray:
    """Customers sorted by segment, ``x``, ``T``, ``h`` and then ``t_x``, so that customers
    sharing a row, and also those sharing the ``(x, T, h)`` on which the costly
    hypergeometric functions depend, fall in the same chunk: those are then evaluated
    about once per distinct value and draw overall."""
    return np.lexsort((c.t_x, c.horizon, c.T, c.x, c.segment))


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
    clock: tuple[np.ndarray, np.ndarray] | None = None,
    conditional: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """All draws-level quantities for a block of draws (rows) and customers (columns).

    ``draws`` are the block's draw indices among all posterior draws used and ``seed`` the
    stream seed (:func:`clvbayes.math.kernels.stream_key`): with the customers' positions
    they key each element's random stream (:func:`simulate_future`). With a spend fit
    each draw's conditional-mean CLV is added to ``conditional`` (one sum per customer)."""
    rows, inv = unique_rows(c)
    codes = rows["s"].astype(np.int64)  # each row's segment's parameters
    params = tuple(take_segments(v, codes, 1) for v in family.values(theta))
    data = (rows["x"], rows["t_x"], rows["T"])
    alive_rows = family.p_alive(*params, *data)
    expected = family.expected_purchases(*params, *data, rows["h"], alive=alive_rows)
    out = {"p_alive": alive_rows[:, inv], "expected_purchases": expected[:, inv]}
    simulate = {"seed": seed, "discount_rate": delta, "margin": margin, "clock": clock}
    if spend is not None:
        if delta == 0:
            discounted = expected
        else:
            discounted = family.expected_discounted_purchases(
                *params, *data, rows["h"], delta, nodes=nodes, alive=alive_rows
            )
        simulate.update(
            spend=tuple(take_segments(spend[k], c.spend_segment, 1) for k in ("p", "q", "v")),
            spend_x=np.where(c.spend_informed, c.x, 0.0),
            spend_z=np.where(c.spend_informed, c.z, 0.0),
            discounted=discounted,
            conditional=conditional,
        )
    out["purchases"], clv = simulate_future(
        family, params, data, alive_rows, inv, c, draws, simulate
    )
    if clv is not None:
        out["clv"] = clv
    return out


DTYPES = {
    "p_alive": np.float32,
    "expected_purchases": np.float32,
    "purchases": np.int32,
    "clv": np.float32,
}


def score_chunk(
    theta: dict[str, np.ndarray],
    spend: dict[str, np.ndarray] | None,
    c: Customers,
    *,
    block_draws: int,
    clock: tuple[np.ndarray, np.ndarray] | None = None,
    **options: Any,
) -> dict[str, np.ndarray]:
    """Draws ``(sample, customer)`` of one customer chunk, filled block of draws by block,
    and with a spend fit ``clv_conditional_mean`` (one value per customer).

    ``clock``: optional per-draw calendar clock, knot arrays ``(sample, K)`` (or ``(1,
    K)`` for one clock), see :func:`clvbayes.math.kernels.simulate_alive_future`."""
    n_samples = next(iter(theta.values())).shape[0]
    out: dict[str, np.ndarray] = {}
    conditional = None if spend is None else np.zeros(len(c))
    for start in range(0, n_samples, block_draws):
        part = slice(start, start + block_draws)
        block_clock = None
        if clock is not None:
            block_clock = tuple(k[part] if len(k) == n_samples else k for k in clock)
        block = _block(
            {k: v[part] for k, v in theta.items()},
            None if spend is None else {k: v[part] for k, v in spend.items()},
            c,
            draws=np.arange(start, min(start + block_draws, n_samples)),
            clock=block_clock,
            conditional=conditional,
            **options,
        )
        for name, values in block.items():
            if name not in out:
                out[name] = np.empty((n_samples, len(c)), dtype=DTYPES[name])
            out[name][part] = values
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
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
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
    on chunking or threads); ``alive`` and ``data`` are per unique row, ``inverse`` maps
    customers to rows; ``options`` go to the kernel (``seed``, ``discount_rate``,
    ``margin``, ``clock`` and, with a spend fit, ``spend``, ``spend_x``, ``spend_z``,
    ``discounted``, ``conditional``).

    Returns
    -------
    count : ndarray of int32, (draw, customer)
    clv : ndarray of float32 or None
    """
    from clvbayes.math.kernels import simulate_alive_future

    return simulate_alive_future(
        family.alive_process(*params, *data, alive=alive),
        inverse,
        customers.position,
        draws,
        customers.horizon,
        **options,
    )
