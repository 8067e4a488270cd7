"""Model comparison: PSIS-LOO per customer on unique rows, holdout errors side by side.

:func:`compare` ranks fitted models by PSIS-LOO; :func:`holdout_comparison` holds the
models' holdout predictions against the same outcomes (MAE, RMSE, totals with intervals,
the papers' conditional expectations by calibration frequency, interval coverage); and
:func:`comparison_table` puts both in one frame, one row per model.

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

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize

from clvbayes.models.fitted import FittedModel
from clvbayes.predict.holdout import (
    HoldoutPrediction,
    conditional_expectations,
    coverage_table,
    error_metrics,
    holdout_streams,
    predict_holdout,
)
from clvbayes.predict.options import PredictOptions

__all__ = [
    "CompareResult",
    "HoldoutComparison",
    "RowLoo",
    "compare",
    "compare_html",
    "comparison_table",
    "customer_fingerprint",
    "holdout_comparison",
    "loo",
]

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
    inverse: np.ndarray | None = None

    def customers(self) -> RowLoo:
        """The same values with one element per customer (counts 1), so that models
        whose unique rows differ (a calendar-time fit groups customers by their purchase
        periods too) can be compared customer by customer."""
        if self.inverse is None:
            raise ValueError("these LOO values do not know their customers (no inverse map).")
        i = self.inverse
        return RowLoo(
            self.elpd_row[i],
            self.p_loo_row[i],
            self.pareto_k[i],
            np.ones(i.size),
            self.good_k,
            np.arange(i.size),
        )

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

    def __repr__(self) -> str:
        rows = [f"{m} {r.elpd_loo:,.1f}" for m, r in self.table.iterrows()]
        return f"<CompareResult elpd_loo: {', '.join(rows)}; {len(self.warnings)} warning(s)>"

    def _repr_html_(self) -> str:
        """Jupyter's display: the comparison table and the Pareto-k warnings."""
        return compare_html(self)


def compare_html(result: CompareResult) -> str:
    """The HTML card of a :class:`CompareResult`: the table (best model first) with a
    badge for Pareto-k problems, and their messages; every label escaped."""
    from clvbayes.display import badge, card, escape, frame_table

    status = (
        badge(f"{len(result.warnings)} Pareto-k warning(s)", "warn")
        if result.warnings
        else badge("no Pareto-k warnings", "ok")
    )
    sections = [("PSIS-LOO, best first", frame_table(result.table))]
    if result.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in result.warnings)
        sections.append(("Warnings", f"<ul>{items}</ul>"))
    return card("Model comparison", *sections, status=status)


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
    if fitted.calendar is not None:
        ll, counts, inverse = _calendar_pointwise(fitted)
    else:
        ll, counts, inverse = fitted.log_likelihood(), fitted.data.counts, fitted.data.inverse
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
        counts=np.asarray(counts),
        good_k=float(result.good_k),
        inverse=np.asarray(inverse),
    )


def _calendar_pointwise(fitted: FittedModel) -> tuple[xr.DataArray, np.ndarray, np.ndarray]:
    """The pointwise log-likelihood of a calendar-time fit on groups of identical
    customers: same unique row and same repeat purchases per period (hence the same
    Jacobian). Most customers share a group (all one-time buyers of a row do), so PSIS
    runs on far fewer elements than customers; returns the values ``(chain, draw,
    group)``, the customers per group and each customer's group."""
    grid = fitted.calendar
    inverse_row = fitted.data.inverse
    customer, period, count = grid.purchases
    pattern = pd.Series(list(zip(period, count, strict=True))).groupby(customer).agg(tuple)
    signature = pd.Series([()] * inverse_row.size)
    signature.iloc[pattern.index] = pattern.to_numpy()
    keys = pd.MultiIndex.from_arrays([inverse_row, signature.astype(str)])
    group, uniques = pd.factorize(keys)
    first = np.zeros(len(uniques), dtype=np.int64)
    first[group[::-1]] = np.arange(group.size)[::-1]  # a representative customer per group
    counts = np.bincount(group, minlength=len(uniques))
    customers = fitted.log_likelihood(per_customer=True, customers=first)
    return customers.rename(customer="row"), counts, group


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


def customer_fingerprint(fitted: FittedModel) -> str:
    """SHA-256 (first 16 hex digits) of the family's data columns per customer, in the
    customers' order: equal for fits to the same customers whatever else their unique
    rows hold (segments, covariates), unlike ``fitted.fingerprint``."""
    if fitted.data is None:
        return fitted.fingerprint
    h = hashlib.sha256()
    for column in fitted.spec.columns:
        h.update(column.encode())
        values = fitted.data.expand(np.asarray(fitted.data[column], dtype=np.float64))
        h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()[:16]


def compare(
    models: Mapping[str, FittedModel], *, k_threshold: float = K_THRESHOLD
) -> CompareResult:
    """Compare fitted models by PSIS-LOO per customer (arviz-style table).

    Parameters
    ----------
    models : mapping of str to FittedModel
        Models fitted to the same customers (same :func:`customer_fingerprint`): e.g.
        BG/NBD, MBG/NBD and Pareto/NBD on one RFM table, with or without segments or
        covariates, or Gamma-Gamma variants on theirs. Models whose unique rows differ
        are compared customer by customer.
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
    same_rows = len({models[n].fingerprint for n in names}) == 1
    prints = {n: customer_fingerprint(models[n]) for n in names}
    if not same_rows and len(set(prints.values())) > 1:
        raise ValueError(
            "compare: models were fitted to different customers or data, so their "
            f"LOO values are not comparable (fingerprints: {prints}). Fit all models "
            "to the same RFM table (the Gamma-Gamma model is compared only with "
            "other spend models)."
        )
    results = {n: loo(models[n]) for n in names}
    if (
        not same_rows
        or len({len(r.elpd_row) for r in results.values()}) > 1
        or any(models[n].calendar is not None for n in names)
    ):  # different groupings of customers (segments, covariates, calendar time):
        # compare customer by customer
        results = {n: r.customers() for n, r in results.items()}
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


# --- holdout comparison and the one-frame table ------------------------------------------


@dataclass(frozen=True, eq=False)
class HoldoutComparison:
    """Holdout validation of several models, side by side.

    Attributes
    ----------
    metrics : DataFrame
        One row per model: :func:`~clvbayes.predict.holdout.error_metrics` plus ``total_low``/``total_high``
        (central 90 % predictive interval of the total) and ``freq_mae`` (mean absolute
        error of the bin means of :func:`~clvbayes.predict.holdout.conditional_expectations`).
    by_frequency : DataFrame
        :func:`~clvbayes.predict.holdout.conditional_expectations` of every model, stacked, with a ``model`` column.
    coverage : DataFrame
        Per-customer interval coverage (observed vs model-expected) per model.
    predictions : dict of str to HoldoutPrediction
        The underlying predictions.
    """

    metrics: pd.DataFrame
    by_frequency: pd.DataFrame
    coverage: pd.DataFrame
    predictions: dict[str, HoldoutPrediction]

    def __repr__(self) -> str:
        rows = [f"{m} MAE {r.mae:.3g}" for m, r in self.metrics.iterrows()]
        return f"<HoldoutComparison: {', '.join(rows)}>"

    def _repr_html_(self) -> str:
        """Jupyter's display: the error metrics and the coverage, per model."""
        from clvbayes.display import card, frame_table

        return card(
            "Holdout comparison",
            ("Errors per model", frame_table(self.metrics)),
            ("Coverage", frame_table(self.coverage, max_rows=20, index=False)),
        )


def holdout_comparison(
    models: Mapping[str, FittedModel],
    rfm_with_holdout: Any,
    *,
    seed: int | Mapping[str, int] | None = None,
    max_count: int = 7,
    ci_probs: Sequence[float] = (0.5, 0.9),
    options: PredictOptions | None = None,
    **kwargs: Any,
) -> HoldoutComparison:
    """Holdout predictions of several fitted models against the same outcomes.

    Parameters
    ----------
    models : mapping of str to FittedModel
        Transaction models fitted on the calibration period of ``rfm_with_holdout``.
    rfm_with_holdout : DataFrame
        Calibration RFM with ``holdout_frequency`` and ``holdout_duration``.
    seed : int or mapping of str to int, optional
        Seed; each model gets its own stream from it. Or one seed per model (every name
        of ``models``): a model's holdout draws are then those of
        :func:`~clvbayes.predict.validate_holdout` with that seed and the same options
        (:func:`~clvbayes.predict.holdout.holdout_streams`), so a report's comparison
        and its holdout section show the same interval for the same model.
    max_count : int
        Pooled frequency of :func:`~clvbayes.predict.holdout.conditional_expectations`.
    ci_probs : sequence of float
        Central interval masses of the coverage table.
    options : PredictOptions, optional
        As for :func:`clvbayes.predict_customers` (fields may be passed as keyword
        arguments, e.g. ``n_draws``: predictive draws per customer and model, 500 by
        default, :data:`~clvbayes.predict.holdout.HOLDOUT_DRAWS`).

    Returns
    -------
    HoldoutComparison
    """
    if not models:
        raise ValueError("holdout_comparison: give at least one fitted model.")
    seeds = _model_streams(models, seed)
    predictions, metrics, bins, coverage = {}, [], [], []
    for (name, fitted), child in zip(models.items(), seeds, strict=True):
        pred = predict_holdout(fitted, rfm_with_holdout, seed=child, options=options, **kwargs)
        predictions[name] = pred
        table = conditional_expectations(
            pred.frequency, pred.actual, pred.predicted, pred.draws, max_count=max_count
        )
        totals = pred.draws.sum(axis=1, dtype=float)
        row = {"model": name, **error_metrics(pred.actual, pred.predicted)}
        row["total_low"], row["total_high"] = (float(q) for q in np.quantile(totals, [0.05, 0.95]))
        row["freq_mae"] = float(np.mean(np.abs(table["predicted"] - table["actual"])))
        metrics.append(row)
        bins.append(table.reset_index().assign(model=name))
        cov = coverage_table("purchases", pred.draws, pred.actual, ci_probs)
        coverage.append(cov.assign(model=name))
    return HoldoutComparison(
        metrics=pd.DataFrame(metrics).set_index("model"),
        by_frequency=pd.concat(bins, ignore_index=True),
        coverage=pd.concat(coverage, ignore_index=True),
        predictions=predictions,
    )


def _model_streams(
    models: Mapping[str, Any], seed: int | Mapping[str, int] | None
) -> list[np.random.SeedSequence]:
    """One simulation stream per model: spawned from one seed, or each model's own
    seed's holdout simulation stream (as :func:`~clvbayes.predict.validate_holdout`)."""
    if not isinstance(seed, Mapping):
        return np.random.SeedSequence(seed).spawn(len(models))
    missing = [name for name in models if name not in seed]
    if missing:
        raise ValueError(
            f"holdout_comparison: seed is a mapping but has no seed for model(s) {missing} "
            f"(it has {sorted(seed)}); give one seed per model, or one int for all."
        )
    return [holdout_streams(seed[name])[0] for name in models]


def _k_counts(pareto_k: np.ndarray, counts: np.ndarray, good_k: float) -> dict[str, int]:
    """Customers per Pareto-k class (Vehtari et al. 2024: good / ok / bad / very bad)."""
    edges = {
        "k_good": pareto_k <= good_k,
        "k_ok": (pareto_k > good_k) & (pareto_k <= 0.7),
        "k_bad": (pareto_k > 0.7) & (pareto_k <= 1.0),
        "k_very_bad": pareto_k > 1.0,
    }
    return {name: int(counts[mask].sum()) for name, mask in edges.items()}


def comparison_table(
    compared: Any = None, holdout: HoldoutComparison | None = None
) -> pd.DataFrame:
    """One frame per model: LOO, Pareto-k counts, holdout errors and coverage.

    Parameters
    ----------
    compared : CompareResult, optional
        :func:`clvbayes.compare` of the models (gives ``elpd_loo, se, elpd_diff, dse,
        p_loo, weight`` and the customer counts per Pareto-k class ``k_good`` (at most
        arviz's sample-size threshold), ``k_ok`` (up to 0.7), ``k_bad`` (up to 1) and
        ``k_very_bad``).
    holdout : HoldoutComparison, optional
        :func:`holdout_comparison` of the same models (gives ``mae, rmse,
        actual_total, predicted_total, total_error, total_error_pct, total_low,
        total_high, freq_mae`` and ``coverage_<level>`` / ``coverage_<level>_expected``,
        the observed and model-expected shares of customers inside their central
        predictive intervals).

    Returns
    -------
    DataFrame
        Indexed by model, in the LOO ranking when LOO is given.
    """
    if compared is None and holdout is None:
        raise ValueError("comparison_table: give a CompareResult, a HoldoutComparison or both.")
    parts = []
    if compared is not None:
        loo_cols = ["elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight"]
        loo = compared.table[loo_cols].copy()
        ks = {
            name: _k_counts(res.pareto_k, res.counts, res.good_k)
            for name, res in compared.loo.items()
        }
        parts.append(loo.join(pd.DataFrame.from_dict(ks, orient="index")))
    if holdout is not None:
        metrics = holdout.metrics.copy()
        cov = holdout.coverage
        for level in sorted(cov["level"].unique()):
            pct = f"{round(100 * level)}"
            sel = cov[cov["level"] == level].set_index("model")
            metrics[f"coverage_{pct}"] = sel["observed"]
            metrics[f"coverage_{pct}_expected"] = sel["expected"]
        parts.append(metrics)
    table = parts[0] if len(parts) == 1 else parts[0].join(parts[1], how="outer")
    if compared is not None:
        first = [m for m in compared.table.index if m in table.index]
        table = table.loc[first + [m for m in table.index if m not in first]]
    table.index.name = "model"
    return table
