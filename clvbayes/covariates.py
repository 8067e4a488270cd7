"""What each customer covariate does: coefficients with intervals, and its effect on a
new customer's purchases, spend and CLV.

A fit with covariates (``ParetoNBD(purchase_covariates=[...])``, see
:mod:`clvbayes.math.covariates` for the conventions) answers two questions here:

* :func:`coefficient_table`: each coefficient per unit of its covariate and per
  standard deviation, with intervals, and the parameter it scales.
* :func:`covariate_effects`: what +1 standard deviation of each covariate does to a new
  customer: the relative change, with its interval, of the expected repeat purchases
  over the horizon (one year by default), of the mean spend per transaction (with a
  spend fit) and of the CLV (their discounted product), starting from the typical
  customer (every covariate at its mean in the fitted data) and changing one covariate
  at a time. For a 0/1 column a change of one standard deviation is a change in the
  share of that category, so the per-unit coefficient (the full switch) is in
  :func:`coefficient_table` too.

Both are computed draw by draw from the posterior; the CLV is
:func:`clvbayes.segments.new_customer_value`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvbayes.data.compress import covariate_column
from clvbayes.math.units import TIME_UNITS, check_time_unit
from clvbayes.models.covariates import per_sd
from clvbayes.models.fitted import FittedModel, check_fitted, design_of
from clvbayes.predict.result import Result
from clvbayes.predict.summaries import eti
from clvbayes.segments import new_customer_value

__all__ = ["coefficient_table", "covariate_effects", "reference_profile"]

DAYS_PER_YEAR = 365.2425


def _fits(fit: FittedModel, spend_fit: FittedModel | None) -> list[FittedModel]:
    check_fitted(fit, "fit")
    if spend_fit is not None:
        check_fitted(spend_fit, "spend_fit", role="spend")
    fits = [f for f in (fit, spend_fit) if f is not None]
    if not any(design_of(f).names for f in fits):
        raise ValueError(
            "the fits have no covariates; fit e.g. ParetoNBD(purchase_covariates=[...]) "
            "or GammaGamma(spend_covariates=[...])."
        )
    return fits


def coefficient_table(
    fit: FittedModel, spend_fit: FittedModel | None = None, *, ci_prob: float = 0.9
) -> pd.DataFrame:
    """Every covariate coefficient with its interval, per unit and per standard deviation.

    Parameters
    ----------
    fit : FittedModel
        A transaction model fitted with covariates (or without, with ``spend_fit``).
    spend_fit : FittedModel, optional
        A Gamma-Gamma fit, with or without spend covariates.
    ci_prob : float
        Mass of the equal-tailed intervals.

    Returns
    -------
    DataFrame
        One row per coefficient and covariate: ``model, coefficient, covariate,
        parameter`` (what it scales), ``direction`` (the sign's meaning: e.g. "higher
        purchase rate"), ``mean, low, high`` (per unit of the covariate),
        ``per_sd_mean, per_sd_low, per_sd_high`` and ``sd`` (the covariate's standard
        deviation in the fitted data).
    """
    records = []
    for f in _fits(fit, spend_fit):
        post = f.posterior
        for effect in design_of(f).effects:
            unit = post[effect.coefficient].to_numpy()
            scaled = post[per_sd(effect.coefficient)].to_numpy()
            for j, column in enumerate(design_of(f).roles[effect.role]):
                u, z = unit[..., j].ravel(), scaled[..., j].ravel()
                (u_low, u_high), (z_low, z_high) = eti(u, ci_prob), eti(z, ci_prob)
                records.append(
                    {
                        "model": f.kind,
                        "coefficient": effect.coefficient,
                        "covariate": column,
                        "parameter": effect.parameter,
                        "direction": _direction(effect),
                        "mean": float(u.mean()),
                        "low": float(u_low),
                        "high": float(u_high),
                        "per_sd_mean": float(z.mean()),
                        "per_sd_low": float(z_low),
                        "per_sd_high": float(z_high),
                        "sd": _covariate_sd(f, column),
                    }
                )
    return pd.DataFrame.from_records(records)


def _direction(effect: Any) -> str:
    """What a positive coefficient means (:mod:`clvbayes.math.covariates`)."""
    meaning = {
        ("purchase", "alpha"): "higher purchase rate",
        ("dropout", "beta"): "higher dropout rate",
        ("dropout", "a"): "higher dropout probability (raises a)",
        ("dropout", "b"): "lower dropout probability (raises b)",
        ("spend", "v"): "higher spend per transaction",
    }
    return meaning.get((effect.role, effect.parameter), f"scales {effect.parameter}")


def _covariate_sd(fit: FittedModel, column: str) -> float:
    """The covariate's standard deviation over the fitted customers (per-sd / per-unit)."""
    if fit.data is not None:
        return float(fit.data.moments(covariate_column(column))[1])
    post = fit.posterior
    for effect in design_of(fit).effects:
        columns = design_of(fit).roles[effect.role]
        if column in columns:
            j = columns.index(column)
            unit = post[effect.coefficient].to_numpy()[..., j]
            scaled = post[per_sd(effect.coefficient)].to_numpy()[..., j]
            return float(np.nanmedian(scaled / unit))
    raise ValueError(f"{column!r} is not a covariate of this fit.")


def reference_profile(fit: FittedModel, spend_fit: FittedModel | None = None) -> dict[str, Any]:
    """The typical customer: every covariate at its mean over the fitted customers (the
    transaction fit's customers for a covariate both fits have) and, for a segmented fit,
    the segment with the most customers."""
    out: dict[str, Any] = {}
    for f in reversed(_fits(fit, spend_fit)):  # the transaction fit's values win
        column = f.segment_column
        if f.data is None and (design_of(f).names or column is not None):
            needed = [*design_of(f).names, *([] if column is None else [column])]
            raise ValueError(
                f"the {f.kind} fit was saved without its data; pass reference= with a "
                f"value for each of {needed}."
            )
        for name in design_of(f).names:
            out[name] = float(f.data.moments(covariate_column(name))[0])
        if column is not None:
            out[column] = f.segment_levels[int(np.argmax(f.data.segment_counts()))]
    return out


def covariate_effects(
    fit: FittedModel,
    spend_fit: FittedModel | None = None,
    *,
    time_unit: str = "W",
    horizon: float | None = None,
    annual_discount: float = 0.0,
    margin: float = 1.0,
    reference: dict[str, Any] | None = None,
    ci_prob: float = 0.9,
) -> Result:
    """What +1 standard deviation of each covariate does to a new customer's value.

    Parameters
    ----------
    fit : FittedModel
        A transaction model (with or without covariates).
    spend_fit : FittedModel, optional
        A Gamma-Gamma fit (with or without spend covariates). Without it the effects on
        spend and CLV are not computed.
    time_unit : str
        The models' time unit (:data:`clvbayes.math.units.TIME_UNITS`).
    horizon : float, optional
        Window after acquisition, in ``time_unit``; default one year (52.18 weeks).
    annual_discount, margin : float
        Discounting and margin of the CLV (:func:`clvbayes.segments.new_customer_value`).
    reference : mapping, optional
        The profile the changes start from (covariate -> value; plus the segment of a
        segmented fit); default :func:`reference_profile`, the typical customer (in the
        largest segment of a segmented fit).
    ci_prob : float
        Mass of the equal-tailed intervals.

    Returns
    -------
    Result
        ``summary``: one row per covariate: ``covariate, sd, from, to`` (the covariate's
        value before and after), ``purchases_change_{mean, low, high}`` (relative change
        of the expected repeat purchases over the horizon, e.g. 0.25 = +25 %) and with a
        spend fit ``spend_change_...`` and ``clv_change_...``, and ``p_clv_up`` (the
        posterior probability that the CLV rises); ``groups``: :func:`coefficient_table`;
        ``draws``: the relative changes with dims ``(chain, draw, covariate)``.
    """
    fits = _fits(fit, spend_fit)
    unit = check_time_unit(time_unit)
    if horizon is None:
        horizon = DAYS_PER_YEAR / TIME_UNITS[unit]
    base = dict(reference_profile(fit, spend_fit) if reference is None else reference)
    columns = list(dict.fromkeys(c for f in fits for c in design_of(f).names))
    missing = [c for c in columns if c not in base]
    if missing:
        raise ValueError(f"reference: give a value for each covariate; missing {missing}.")
    for f in fits:
        column = f.segment_column
        if column is not None and column not in base:
            raise ValueError(
                f"reference: the {f.kind} fit is segmented by {column!r}, and a covariate's "
                f"effect depends on the segment; add the segment the changes start from, "
                f"e.g. reference={{..., {column!r}: {f.segment_levels[0]!r}}} (segments: "
                f"{list(f.segment_levels)})."
            )
    sds = {c: _covariate_sd(next(f for f in fits if c in design_of(f).names), c) for c in columns}
    profiles = pd.DataFrame([base] + [{**base, c: base[c] + sds[c]} for c in columns])
    values = new_customer_value(
        fit,
        spend_fit,
        horizon=float(horizon),
        covariates=profiles,
        time_unit=unit,
        annual_discount=annual_discount,
        margin=margin,
    )
    names = {"expected_purchases": "purchases", "mean_spend": "spend", "clv": "clv"}
    draws, rows = {}, {c: {"covariate": c, "sd": sds[c]} for c in columns}
    for variable, short in names.items():
        if variable not in values:
            continue
        v = values[variable].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            change = v[..., 1:] / v[..., :1] - 1.0
        draws[f"{short}_change"] = (("chain", "draw", "covariate"), change)
        flat = change.reshape(-1, len(columns))
        low, high = eti(flat, ci_prob)
        for j, c in enumerate(columns):
            rows[c].update(
                {
                    f"{short}_change_mean": float(np.nanmean(flat[:, j])),
                    f"{short}_change_low": float(low[j]),
                    f"{short}_change_high": float(high[j]),
                }
            )
            if short == "clv":
                rows[c]["p_clv_up"] = float(np.mean(flat[:, j] > 0))
    for c in columns:
        rows[c].update({"from": float(base[c]), "to": float(base[c] + sds[c])})
    order = ["covariate", "sd", "from", "to"]
    summary = pd.DataFrame(list(rows.values()))
    summary = summary[order + [k for k in summary.columns if k not in order]]
    coords = {"chain": values["chain"].to_numpy(), "draw": values["draw"].to_numpy()}
    dataset = xr.Dataset(draws, coords={**coords, "covariate": np.array(columns, dtype=str)})
    return Result(summary, dataset, coefficient_table(fit, spend_fit, ci_prob=ci_prob))
