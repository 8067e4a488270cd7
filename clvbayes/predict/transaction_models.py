"""Per-model pieces of the customer-level predictions, looked up by model kind.

:func:`clvbayes.predict.predict_customers` works the same way for every transaction
model; what differs is gathered here, one :class:`TransactionModel` per kind:

- the analytic quantities of :mod:`clvbayes.math` (``P(alive)``, conditional expected
  purchases, their discounted version);
- the customer's latent-state posterior and the simulator of the future
  (:mod:`clvbayes.simulate`), as one function that draws the state and simulates.

======================  ===========================================  ============================
model                   latent state given the history (alive part)  future process
======================  ===========================================  ============================
BG/NBD                  ``λ ~ Γ(r+x, α+T)``, ``p ~ B(a, b+x)``       Poisson(λ), drop w.p. p after
                                                                     each purchase
MBG/NBD                 ``λ ~ Γ(r+x, α+T)``, ``p ~ B(a, b+x+1)``     same
Pareto/NBD              ``λ ~ Γ(r+x, α+T)``, ``μ ~ Γ(s, β+T)``       Poisson(λ) until
                                                                     ``τ ~ Exp(μ)``
======================  ===========================================  ============================

A customer who is not alive at ``T`` buys nothing, so only the alive branch is sampled.
Parameters are passed as a tuple of arrays in the model's order (``params``), each
broadcasting against the data rows (e.g. ``(draws, 1)``, or ``(draws, rows)`` for
parameters that differ by row).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from clvbayes.math import bgnbd, mbgnbd, pareto_nbd
from clvbayes.simulate import (
    BetaDropout,
    FuturePurchases,
    simulate_future_pareto_nbd,
    simulate_future_purchases,
)

__all__ = ["TRANSACTION_MODELS", "TransactionModel", "transaction_model"]

Data = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class TransactionModel:
    """What the predictions need from one transaction model.

    Attributes
    ----------
    kind : str
        ``FittedModel.kind``.
    params : tuple of str
        Parameter names, in the order the functions take them.
    p_alive : callable
        ``(params, (x, t_x, T)) -> P(alive at T)``.
    expected_purchases : callable
        ``(params, data, t, alive) -> E[purchases in (T, T+t]]``; ``alive`` is
        ``p_alive``'s output (reused where it is costly).
    expected_discounted : callable
        ``(params, data, h, delta, nodes, alive) -> E[Σ exp(-δ t_j)]`` over ``(T, T+h]``.
    simulate_future : callable
        ``(params, data, alive, inverse, horizon, rng, options) -> FuturePurchases``:
        draws each element's latent state from its posterior (``alive`` and the arrays
        are per unique row, ``inverse`` maps customers to rows; ``horizon`` is shaped
        ``(draws, customers)``) and simulates the window; ``options`` go to the
        simulator (``discount_rate``, ``max_block_elements`` and ``value_shape``: with
        it each purchase is worth a ``Gamma(value_shape, 1)`` draw, so the caller scales
        the returned value by the customer's ``1/ν``).
    """

    kind: str
    params: tuple[str, ...]
    p_alive: Callable[..., np.ndarray]
    expected_purchases: Callable[..., np.ndarray]
    expected_discounted: Callable[..., np.ndarray]
    simulate_future: Callable[..., FuturePurchases]

    def parameters(self, theta: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """``theta``'s arrays in this model's order (a clear error if one is missing)."""
        missing = [k for k in self.params if k not in theta]
        if missing:
            raise ValueError(f"{self.kind} predictions need parameters {missing}.")
        return tuple(theta[k] for k in self.params)


def _alive_elements(
    alive: np.ndarray, inverse: np.ndarray, rng: np.random.Generator
) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Flip each ``(draw, customer)`` element's alive coin (weight ``P(alive)`` of its row).

    Returns the ``(draw, customer)`` shape, the alive elements' draw and customer indices
    (C order) and their unique-row index (for gathering per-row posterior fields).
    """
    weight = alive[:, inverse]
    draw, customer = np.nonzero(rng.random(weight.shape) < weight)
    return weight.shape, draw, customer, inverse[customer]


def _simulate_alive(
    simulator: Callable[..., FuturePurchases],
    shape: tuple[int, ...],
    draw: np.ndarray,
    customer: np.ndarray,
    rates: tuple[np.ndarray, np.ndarray],
    horizon: np.ndarray,
    rng: np.random.Generator,
    options: dict[str, Any],
) -> FuturePurchases:
    """Run ``simulator`` on the alive elements only and scatter into ``shape`` arrays.

    ``options["value_shape"]`` (broadcastable to ``shape``) is gathered for those elements;
    the dead elements buy nothing. When values are simulated, the result's
    ``discounted`` field is None (callers use the discounted ``value`` and the counts):
    one draw x customer array less per chunk.
    """
    options = dict(options)
    if options.get("value_shape") is not None:
        options["value_shape"] = np.broadcast_to(options["value_shape"], shape)[draw, customer]
        options["value_rate"] = 1.0
    future = simulator(
        *rates, True, np.broadcast_to(horizon, shape)[draw, customer], rng=rng, **options
    )
    count = np.zeros(shape, dtype=np.int64)
    count[draw, customer] = future.count
    if future.value is None:
        discounted = np.zeros(shape)
        discounted[draw, customer] = future.discounted
        return FuturePurchases(count, discounted)
    # with values the discounted counts are not read: no third draw x customer array
    value = np.zeros(shape)
    value[draw, customer] = future.value
    return FuturePurchases(count, None, value)


def _beta_geometric_future(posterior: Callable[..., bgnbd.CustomerPosterior]) -> Callable:
    """State sampler + simulator shared by the BG/NBD and the MBG/NBD."""

    def simulate(
        params: tuple,
        data: Data,
        alive: np.ndarray,
        inverse: np.ndarray,
        horizon: np.ndarray,
        rng: np.random.Generator,
        options: dict[str, Any],
    ) -> FuturePurchases:
        state = posterior(*params, *data, alive=alive)
        shape, draw, customer, row = _alive_elements(alive, inverse, rng)
        lam = rng.gamma(state.alive_shape[draw, row], 1.0 / state.alive_rate[draw, row])
        p_drop = BetaDropout(state.alive_a[draw, row], state.alive_b[draw, row])
        return _simulate_alive(
            simulate_future_purchases, shape, draw, customer, (lam, p_drop), horizon, rng, options
        )

    return simulate


def _pareto_future(
    params: tuple,
    data: Data,
    alive: np.ndarray,
    inverse: np.ndarray,
    horizon: np.ndarray,
    rng: np.random.Generator,
    options: dict[str, Any],
) -> FuturePurchases:
    state = pareto_nbd.customer_posterior(*params, *data, alive=alive)
    shape, draw, customer, row = _alive_elements(alive, inverse, rng)
    lam = rng.gamma(state.lam_shape[draw, row], 1.0 / state.lam_rate[draw, row])
    mu = rng.gamma(state.mu_shape[draw, row], 1.0 / state.mu_rate[draw, row])
    return _simulate_alive(
        simulate_future_pareto_nbd, shape, draw, customer, (lam, mu), horizon, rng, options
    )


def _closed_form(module: Any) -> dict[str, Callable]:
    """Analytic pieces of a model from its maths module (``P(alive)`` computed once, passed on)."""
    return {
        "p_alive": lambda params, data: module.p_alive(*params, *data),
        "expected_purchases": lambda params, data, t, alive: module.expected_purchases(
            *params, *data, t, alive=alive
        ),
        "expected_discounted": lambda params, data, h, delta, nodes, alive: (
            module.expected_discounted_purchases(*params, *data, h, delta, nodes=nodes, alive=alive)
        ),
    }


TRANSACTION_MODELS: dict[str, TransactionModel] = {
    "BGNBD": TransactionModel(
        kind="BGNBD",
        params=("r", "alpha", "a", "b"),
        simulate_future=_beta_geometric_future(bgnbd.customer_posterior),
        **_closed_form(bgnbd),
    ),
    "MBGNBD": TransactionModel(
        kind="MBGNBD",
        params=("r", "alpha", "a", "b"),
        simulate_future=_beta_geometric_future(mbgnbd.customer_posterior),
        **_closed_form(mbgnbd),
    ),
    "ParetoNBD": TransactionModel(
        kind="ParetoNBD",
        params=("r", "alpha", "s", "beta"),
        p_alive=lambda params, data: pareto_nbd.p_alive(*params, *data),
        expected_purchases=lambda params, data, t, alive: pareto_nbd.expected_purchases(
            *params, *data, t, alive=alive
        ),
        expected_discounted=lambda params, data, h, delta, nodes, alive: (
            pareto_nbd.expected_discounted_purchases(
                *params, *data, h, delta, nodes=nodes, alive=alive
            )
        ),
        simulate_future=_pareto_future,
    ),
}
"""The transaction models :func:`clvbayes.predict.predict_customers` accepts, by kind."""


def transaction_model(kind: str) -> TransactionModel:
    """The :class:`TransactionModel` of a model kind (``FittedModel.kind``).

    Raises
    ------
    TypeError
        If ``kind`` is not a transaction model (e.g. ``"GammaGamma"``).
    """
    if kind not in TRANSACTION_MODELS:
        raise TypeError(
            f"expected a fitted transaction model ({', '.join(TRANSACTION_MODELS)}), got {kind}."
        )
    return TRANSACTION_MODELS[kind]
