"""Model comparison by PSIS-LOO per customer, computed on unique rows.

Models are fitted on unique ``(frequency, recency, T)`` rows with customer counts
(:mod:`clvbayes.data.compress`). Leave-one-out is nevertheless *per customer*: customers
sharing a row have identical pointwise log-likelihood columns, hence identical PSIS
weights, Pareto k and ``elpd_i``. So PSIS (Vehtari, Gelman & Gabry 2017; arviz
``az.loo``) runs once per unique row and every per-customer sum is a count-weighted sum
over rows:

.. math::

    \\widehat{\\text{elpd}}_{loo} = \\sum_j n_j e_j, \\qquad
    \\text{se} = \\sqrt{N \\cdot \\tfrac{1}{N-1}\\sum_j n_j (e_j - \\bar e)^2},\\qquad
    \\bar e = \\widehat{\\text{elpd}}_{loo}/N,

with ``n_j`` the counts and ``N = Σ n_j`` customers; the standard error of a difference
(``dse``) uses the per-row differences the same way. Nothing of size
``chain x draw x customer`` is ever formed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize

from clvbayes.models.base import FittedModel

__all__ = ["CompareResult", "RowLoo", "compare", "loo"]

K_THRESHOLD = 0.7


@dataclass(frozen=True)
class RowLoo:
    """PSIS-LOO of one model, per unique row, with customer counts.

    Attributes
    ----------
    elpd_row, p_loo_row, pareto_k : ndarray
        Per unique row (each customer of a row has these values).
    counts : ndarray
        Customers per row.
    good_k : float
        arviz's sample-size dependent threshold ``min(1 - 1/log10(S), 0.7)``.
    """

    elpd_row: np.ndarray
    p_loo_row: np.ndarray
    pareto_k: np.ndarray
    counts: np.ndarray
    good_k: float

    @property
    def n_customers(self) -> int:
        """Number of customers."""
        return int(self.counts.sum())

    @property
    def elpd(self) -> float:
        """Sum over customers of the LOO expected log predictive density."""
        return float(self.counts @ self.elpd_row)

    @property
    def p_loo(self) -> float:
        """Effective number of parameters (sum over customers)."""
        return float(self.counts @ self.p_loo_row)

    @property
    def se(self) -> float:
        """Standard error of ``elpd`` from the per-customer values."""
        return _weighted_se(self.elpd_row, self.counts)

    def n_bad_k(self, threshold: float = K_THRESHOLD) -> int:
        """Number of customers whose Pareto k exceeds ``threshold``."""
        return int(self.counts[self.pareto_k > threshold].sum())

    def per_customer(self, inverse: np.ndarray) -> pd.DataFrame:
        """Per-customer table (``inverse`` maps customers to rows, e.g. ``data.inverse``)."""
        return pd.DataFrame(
            {
                "elpd_loo": self.elpd_row[inverse],
                "p_loo": self.p_loo_row[inverse],
                "pareto_k": self.pareto_k[inverse],
            }
        )


@dataclass(frozen=True)
class CompareResult:
    """Comparison table, per-model LOO and the warnings raised.

    Attributes
    ----------
    table : DataFrame
        One row per model, best first: ``rank, elpd_loo, p_loo, elpd_diff, se, dse,
        weight, n_bad_k, warning`` (arviz's columns plus the count of customers with
        Pareto k above 0.7).
    loo : dict of str to RowLoo
        Each model's row-level LOO.
    warnings : tuple of str
        Pareto-k problems (also emitted as ``UserWarning``).
    """

    table: pd.DataFrame
    loo: dict[str, RowLoo]
    warnings: tuple[str, ...] = field(default=())


def _weighted_se(values: np.ndarray, counts: np.ndarray) -> float:
    """``sqrt(N var(v))`` over customers (``ddof=1``, as arviz), row ``j`` repeated ``counts[j]`` times."""
    n = counts.sum()
    mean = (counts @ values) / n
    return float(np.sqrt(n * (counts @ (values - mean) ** 2) / max(n - 1, 1)))


def loo(fitted: FittedModel) -> RowLoo:
    """PSIS-LOO of a fitted model on its unique rows (arviz ``az.loo``).

    Parameters
    ----------
    fitted : FittedModel
        Fitted with posterior draws (NUTS or an approximation; a MAP fit has one draw
        and no LOO) and saved with its data.

    Returns
    -------
    RowLoo
    """
    import arviz as az

    if fitted.data is None:
        raise ValueError(f"{fitted.kind}: LOO needs the fitted data; reload with data.")
    ll = fitted.log_likelihood()
    if ll.sizes["chain"] * ll.sizes["draw"] < 2:
        raise ValueError(
            f"{fitted.kind}: LOO needs posterior draws; this fit has one "
            f"(method={fitted.settings.get('method')!r}). Refit with method='nuts'."
        )
    tree = xr.DataTree.from_dict(
        {
            "posterior": fitted.posterior,
            "log_likelihood": xr.Dataset({"loglik": ll}),
        }
    )
    with warnings.catch_warnings():
        # arviz warns per row about high k; compare() reports per customer instead
        warnings.simplefilter("ignore", UserWarning)
        result = az.loo(tree, pointwise=True)
    draws = ll.to_numpy().reshape(-1, ll.sizes["row"])
    lppd_row = np.logaddexp.reduce(draws, axis=0) - np.log(draws.shape[0])
    elpd_row = np.asarray(result.elpd_i, dtype=float)
    return RowLoo(
        elpd_row=elpd_row,
        p_loo_row=lppd_row - elpd_row,
        pareto_k=np.asarray(result.pareto_k, dtype=float),
        counts=np.asarray(fitted.data.counts),
        good_k=float(result.good_k),
    )


def _stacking_weights(elpd_rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Stacking weights (Yao et al. 2018) maximising ``Σ_i log Σ_k w_k exp(elpd_ik)``.

    ``elpd_rows`` has shape ``(models, rows)``; each row counts ``counts[j]`` times.
    """
    n_models = elpd_rows.shape[0]
    if n_models == 1:
        return np.ones(1)
    shifted = elpd_rows - elpd_rows.max(axis=0)

    def objective(z: np.ndarray) -> float:
        log_w = z - np.logaddexp.reduce(z)
        mix = np.logaddexp.reduce(log_w[:, None] + shifted, axis=0)
        return -float(counts @ mix) / counts.sum()

    z = optimize.minimize(objective, np.zeros(n_models), method="BFGS").x
    return np.exp(z - np.logaddexp.reduce(z))


def compare(
    models: Mapping[str, FittedModel], *, k_threshold: float = K_THRESHOLD
) -> CompareResult:
    """Compare fitted models by PSIS-LOO per customer (arviz-style table).

    Parameters
    ----------
    models : mapping of str to FittedModel
        Models fitted to the same customers (same ``fingerprint``): e.g. BG/NBD,
        MBG/NBD and Pareto/NBD on one RFM table, or Gamma-Gamma variants on theirs.
    k_threshold : float
        Pareto k above which a customer's LOO estimate is deemed unreliable.

    Returns
    -------
    CompareResult

    Raises
    ------
    ValueError
        If the models were fitted to different customers or data columns.
    """
    if not models:
        raise ValueError("compare: give at least one fitted model.")
    names = list(models)
    prints = {n: models[n].fingerprint for n in names}
    if len(set(prints.values())) > 1:
        raise ValueError(
            "compare: models were fitted to different customers or columns, so their "
            f"LOO values are not comparable (fingerprints: {prints}). Fit all models "
            "to the same RFM table (the Gamma-Gamma model is compared only with "
            "other spend models)."
        )
    results = {n: loo(models[n]) for n in names}
    counts = results[names[0]].counts
    order = sorted(names, key=lambda n: -results[n].elpd)
    best = results[order[0]]
    elpd_rows = np.stack([results[n].elpd_row for n in order])
    weights = _stacking_weights(elpd_rows, counts)
    problems: list[str] = []
    records = []
    for rank, name in enumerate(order):
        res = results[name]
        n_bad = res.n_bad_k(k_threshold)
        if n_bad:
            problems.append(
                f"{name}: {n_bad} of {res.n_customers} customers have Pareto k > "
                f"{k_threshold}; their LOO estimates are unreliable (more draws, or "
                "check those customers' histories)."
            )
        records.append(
            {
                "model": name,
                "rank": rank,
                "elpd_loo": res.elpd,
                "p_loo": res.p_loo,
                "elpd_diff": best.elpd - res.elpd,
                "se": res.se,
                "dse": _weighted_se(best.elpd_row - res.elpd_row, counts),
                "weight": float(weights[rank]),
                "n_bad_k": n_bad,
                "warning": bool(n_bad),
            }
        )
    for message in problems:
        warnings.warn(message, UserWarning, stacklevel=2)
    table = pd.DataFrame.from_records(records).set_index("model")
    return CompareResult(table=table, loo=results, warnings=tuple(problems))
