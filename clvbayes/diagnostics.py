"""Convergence diagnostics with actionable warnings.

Thresholds follow Vehtari et al. (2021): R-hat <= 1.01 and bulk ESS >= 400 for reliable
posterior summaries; any divergent transition signals a region NUTS could not explore;
E-BFMI < 0.3 signals poor energy exploration (heavy tails, bad parametrisation).
The statistics are :mod:`clvbayes.math.convergence`'s, equal to ArviZ's (its summary
table shows the same R-hat and ESS) without loading ``arviz_stats`` into every fit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd
import xarray as xr

from clvbayes.math import convergence

__all__ = ["BFMI_MIN", "ESS_MIN", "RHAT_MAX", "ConvergenceWarning", "diagnose"]

RHAT_MAX = 1.01
ESS_MIN = 400
BFMI_MIN = 0.3


class ConvergenceWarning(UserWarning):
    """The sampler's output fails a convergence check; the message says what to try."""


@dataclass(frozen=True)
class Diagnosis:
    """Per-parameter table plus the sampler-level checks and the problems found."""

    table: pd.DataFrame
    divergences: int
    bfmi: tuple[float, ...]
    problems: tuple[str, ...]


def _sample_stat(idata: xr.DataTree, name: str) -> xr.DataArray | None:
    if "sample_stats" not in idata.children:
        return None
    stats = idata["sample_stats"].to_dataset()
    return stats[name] if name in stats else None


def _flat_parameters(post: xr.Dataset, names: list[str]) -> tuple[xr.Dataset, list[str]]:
    """``names`` of ``post`` as scalar variables: a parameter with a dimension besides
    ``chain, draw`` (per segment, per calendar period, per covariate) becomes one variable
    ``name[label]`` per element, checked on its own."""
    flat: dict[str, xr.DataArray] = {}
    for name in names:
        values = post[name]
        extra = [d for d in values.dims if d not in ("chain", "draw")]
        if not extra:
            flat[name] = values
            continue
        stacked = (
            values.stack(element=extra) if len(extra) > 1 else values.rename({extra[0]: "element"})
        )
        labels = [
            ",".join(str(v) for v in (label if isinstance(label, tuple) else (label,)))
            for label in stacked["element"].to_numpy()
        ]
        for i, label in enumerate(labels):
            flat[f"{name}[{label}]"] = stacked.isel(element=i, drop=True)
    return xr.Dataset(flat), list(flat)


def diagnose(idata: xr.DataTree, var_names: list[str]) -> Diagnosis:
    """Compute R-hat, bulk/tail ESS, divergences and E-BFMI for ``var_names``.

    Parameters
    ----------
    idata : DataTree
        Output of NUTS with ``posterior`` and ``sample_stats`` groups.
    var_names : list of str
        Population parameters to check; per-segment parameters are checked segment by
        segment (rows ``name[label]``).

    Returns
    -------
    Diagnosis
        ``table`` has one row per parameter with columns ``r_hat, ess_bulk, ess_tail``;
        ``problems`` lists each failed check with what to try.
    """
    from arviz_base.rcparams import rcParams  # the tail quantile ArviZ's summary uses

    post, var_names = _flat_parameters(idata["posterior"].to_dataset(), var_names)
    tail = float(rcParams["stats.ci_prob"])
    draws = [post[v].transpose("chain", "draw").to_numpy() for v in var_names]
    table = pd.DataFrame(
        {
            "r_hat": [convergence.rhat(d) for d in draws],
            "ess_bulk": [convergence.ess_bulk(d) for d in draws],
            "ess_tail": [convergence.ess_tail(d, max(tail, 1.0 - tail)) for d in draws],
        },
        index=pd.Index(var_names, name="parameter"),
    )
    diverging = _sample_stat(idata, "diverging")
    divergences = int(diverging.sum()) if diverging is not None else 0
    energy = _sample_stat(idata, "energy")
    bfmi: tuple[float, ...] = ()
    if energy is not None:
        values = convergence.bfmi(energy.transpose("chain", "draw").to_numpy())
        bfmi = tuple(float(b) for b in values)

    problems = []
    bad_rhat = table.index[table["r_hat"] > RHAT_MAX].tolist()
    if bad_rhat:
        problems.append(
            f"R-hat > {RHAT_MAX} for {bad_rhat} (max {table['r_hat'].max():.3f}): chains "
            "disagree. Run longer (tune=2000, draws=2000) or check for multimodality "
            "with a trace plot."
        )
    low_ess = table.index[table["ess_bulk"] < ESS_MIN].tolist()
    if low_ess:
        problems.append(
            f"bulk ESS < {ESS_MIN} for {low_ess} (min {table['ess_bulk'].min():.0f}): "
            "increase draws or chains; strong posterior correlation may call for a "
            "reparametrisation (e.g. the default phi/kappa dropout priors)."
        )
    if divergences:
        problems.append(
            f"{divergences} divergent transition(s): increase tuning (tune=2000), or use "
            "more informative priors / the non-centred parametrisation; posterior "
            "summaries may be biased."
        )
    low_bfmi = [round(b, 3) for b in bfmi if b < BFMI_MIN]
    if low_bfmi:
        problems.append(
            f"E-BFMI {low_bfmi} < {BFMI_MIN} in some chain(s): the sampler explores the "
            "energy distribution poorly; try longer tuning or lighter-tailed priors."
        )
    return Diagnosis(table, divergences, bfmi, tuple(problems))


def warn_problems(problems: tuple[str, ...], model_name: str) -> None:
    """Emit one :class:`ConvergenceWarning` per problem."""
    for problem in problems:
        warnings.warn(f"{model_name}: {problem}", ConvergenceWarning, stacklevel=3)
