"""Predictive checks of the repeat-purchase histogram (the papers' fit figure).

The same function serves the prior predictive check (parameters drawn from the priors:
what data do the priors find plausible?) and the posterior predictive check (parameters
from the posterior: does the fitted model reproduce the data?). For each parameter draw,
a data set with the customers' own ages ``T`` is simulated from the BG/NBD process and
its frequency histogram (0, 1, ..., ``max_count``+) is recorded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvbayes.data.checks import check_rfm
from clvbayes.simulate import simulate_bgnbd

__all__ = ["frequency_histogram_check", "prior_draws"]


def _bins(max_count: int) -> list[str]:
    return [str(k) for k in range(max_count)] + [f"{max_count}+"]


def _histogram(frequency: np.ndarray, max_count: int) -> np.ndarray:
    clipped = np.minimum(np.asarray(frequency, dtype=np.int64), max_count)
    return np.bincount(clipped, minlength=max_count + 1)


def prior_draws(spec: Any, rfm: Any, n_draws: int = 200, seed: int | None = None) -> dict:
    """Draws of the population parameters from ``spec``'s priors.

    Parameters
    ----------
    spec : ModelSpec
        E.g. ``clvbayes.BGNBD(priors=...)``.
    rfm : DataFrame
        Data the model would be fitted to (only its shape matters here).
    n_draws : int
        Number of draws.
    seed : int, optional
        Random seed.

    Returns
    -------
    dict of str to ndarray
        Each parameter's draws, shaped ``(1, n_draws)`` like a one-chain posterior.
    """
    import pymc as pm

    model = spec.build(spec.prepare(rfm), likelihood=False)
    with model:
        tree = pm.sample_prior_predictive(
            draws=n_draws, var_names=list(spec.params), random_seed=seed
        )
    prior = tree["prior"].to_dataset()
    return {p: prior[p].to_numpy().reshape(1, -1) for p in spec.params}


def frequency_histogram_check(
    params: dict[str, np.ndarray],
    rfm: Any,
    *,
    max_count: int = 7,
    n_draws: int | None = 200,
    interval: float = 0.9,
    seed: int | None = None,
) -> pd.DataFrame:
    """Observed versus predicted number of customers by repeat purchases.

    Parameters
    ----------
    params : dict
        BG/NBD parameter draws ``r, alpha, a, b`` shaped ``(chain, draw)``, e.g.
        ``fitted.params()`` (posterior check) or :func:`prior_draws` (prior check).
    rfm : DataFrame
        Customers with ``frequency`` and ``T``; each simulated data set reuses their ``T``.
    max_count : int
        Frequencies at or above it are pooled into the last bin ("7+" in the papers).
    n_draws : int, optional
        Number of parameter draws to simulate (thinned evenly); None uses all.
    interval : float
        Central interval of the predicted counts.
    seed : int, optional
        Random seed for the simulations.

    Returns
    -------
    DataFrame
        One row per bin: ``observed``, ``predicted_mean``, ``predicted_low``,
        ``predicted_high`` (numbers of customers) and ``p_observed_below``, the
        share of simulated data sets with fewer customers in that bin than observed.
    """
    values = check_rfm(rfm, ("frequency", "T"))
    T = values["T"]
    flat = {k: np.asarray(v).reshape(-1) for k, v in params.items()}
    total = flat["r"].size
    take = (
        np.arange(total)
        if n_draws is None or n_draws >= total
        else (np.linspace(0, total - 1, n_draws).round().astype(int))
    )
    rng = np.random.default_rng(seed)
    sims = np.empty((take.size, max_count + 1))
    for row, i in enumerate(take):
        sim = simulate_bgnbd(flat["r"][i], flat["alpha"][i], flat["a"][i], flat["b"][i], T, rng=rng)
        sims[row] = _histogram(sim["frequency"], max_count)
    observed = _histogram(values["frequency"], max_count)
    tail = (1 - interval) / 2
    return pd.DataFrame(
        {
            "observed": observed,
            "predicted_mean": sims.mean(axis=0),
            "predicted_low": np.quantile(sims, tail, axis=0),
            "predicted_high": np.quantile(sims, 1 - tail, axis=0),
            "p_observed_below": (sims < observed).mean(axis=0),
        },
        index=pd.Index(_bins(max_count), name="repeat_purchases"),
    )
