"""The fitted model: spec, posterior, data fingerprint and settings, and how it is stored.

:func:`clvbayes.inference.fit` returns a :class:`FittedModel`. It holds the spec that was
fitted, the posterior as a DataTree (with the unique data rows as ``observed_data`` and the
fit settings as attributes), and answers the questions that need nothing but the fit:
parameter summaries, diagnostics, pointwise log-likelihood, each customer's parameter
draws. Predictions and analyses are functions of higher layers that take it
(:mod:`clvbayes.predict`, ...).

Storage. :func:`to_groups` and :func:`from_groups` convert to and
from the groups of a netCDF/zarr file (posterior, the sampler statistics worth keeping,
the compressed data, and as attributes the model kind, priors, fingerprint, settings);
:func:`clvbayes.save` / :func:`clvbayes.load` write and read such files, one or several
models each.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvbayes.data.calendar import CalendarGrid, CalendarRFM
from clvbayes.data.compress import CompressedRFM
from clvbayes.data.rfm import TIME_UNIT_ATTR, table_time_unit
from clvbayes.data.validate import check_covariates
from clvbayes.diagnostics import Diagnosis, diagnose
from clvbayes.io import read_tree, write_tree
from clvbayes.math.calendar import customer_jacobian
from clvbayes.math.covariates import CovariateDesign
from clvbayes.math.family import FAMILIES, Family, SpendFamily, TransactionFamily, family
from clvbayes.math.units import check_time_unit, days_per_unit, unit_name
from clvbayes.models.hierarchy import read_segments
from clvbayes.models.registry import spec_class
from clvbayes.priors import Prior

__all__ = [
    "FORMAT",
    "FittedModel",
    "ModelKindError",
    "check_calendar",
    "check_fitted",
    "check_time_units",
    "coefficients_of",
    "covariates_of",
    "design_of",
    "fitted_html",
    "from_groups",
    "is_stored_model",
    "load",
    "pointwise_log_likelihood",
    "save",
    "to_groups",
]

FORMAT = "clvbayes-fitted-model"
"""The ``format`` attribute of a stored model's posterior group."""

# sampler statistics worth keeping (others, e.g. per-draw messages, are not serialisable
# compactly and are not needed for diagnostics)
_KEEP_STATS = ("diverging", "energy", "step_size", "n_steps", "depth", "mean_tree_accept")


@dataclass(frozen=True, eq=False)
class FittedModel:
    """A fitted model: the spec, the posterior, the data fingerprint and the settings.

    Attributes
    ----------
    spec : ModelSpec
        The specification that was fitted.
    idata : xarray.DataTree
        ``posterior`` (population parameters, dims ``chain, draw``), for NUTS
        ``sample_stats``, and ``observed_data``: the unique rows fitted (one variable per
        data column and ``count``, dim ``row``) and ``customer_row``, each customer's row
        (dim ``customer``), so ``observed_data[c][customer_row]`` is the fitted RFM
        column. The root's attributes hold the model type, data fingerprint, priors
        (JSON) and the fit settings (method, sampler, draws, tune, chains, seed, ...).
        Built from the other fields when the object is created.
    data : CompressedRFM or None
        The unique rows the model was fitted on (None if saved without data).
    fingerprint : str
        Hash of the data, to tell whether two fits saw the same customers.
    settings : dict
        Inference settings (method, sampler, draws, tune, chains, seed, seconds).
    problems : tuple of str
        Convergence problems found at fit time (each also raised as a warning).
    calendar : CalendarGrid or None
        With calendar-time effects: the grid the model was fitted on (periods, the
        calibration's per-period purchases, known covariates); predictions continue it.
    """

    spec: Any
    idata: xr.DataTree
    data: CompressedRFM | None
    fingerprint: str
    settings: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    calendar: CalendarGrid | None = None

    def __post_init__(self) -> None:
        groups = {
            k: self.idata[k].to_dataset() for k in self.idata.children if k != "observed_data"
        }
        if self.data is not None:
            d = self.data
            arrays = {c: ("row", d.rows[c]) for c in d.columns}
            arrays.update(count=("row", d.counts), customer_row=("customer", d.inverse))
            groups["observed_data"] = xr.Dataset(arrays)
        tree = xr.DataTree.from_dict(groups)
        tree.attrs = {
            "model_kind": self.spec.kind,
            "data_fingerprint": self.fingerprint,
            "priors": self.priors_json(),
            **self.settings,
        }
        object.__setattr__(self, "idata", tree)

    def __repr__(self) -> str:
        post = self.posterior
        n = f"{post.sizes['chain']}x{post.sizes['draw']}"
        customers = f"{self.data.n_customers:,}" if self.data is not None else "?"
        means = ", ".join(f"{k}={float(post[k].mean()):.4g}" for k in self.spec.params)
        grid = self.calendar
        calendar = "" if grid is None else f", time effects over {grid.n_periods} periods"
        return (
            f"<Fitted {self.kind}: {self.settings.get('method')} {n} draws, "
            f"{customers} customers{calendar}, {means}; {len(self.problems)} convergence "
            "problem(s)>"
        )

    def _repr_html_(self) -> str:
        """Jupyter's display: diagnostics badge, parameter table, data and settings."""
        return fitted_html(self)

    @property
    def kind(self) -> str:
        """Model type, e.g. ``"BGNBD"``."""
        return self.spec.kind

    @property
    def posterior(self) -> xr.Dataset:
        """Posterior draws of the population parameters (dims ``chain, draw`` and, for
        segmented fits with partial or no pooling, ``segment``)."""
        return self.idata["posterior"].to_dataset()

    @property
    def n_posterior_draws(self) -> int:
        """Posterior draws in all: chains x draws (1 for a MAP fit)."""
        sizes = self.idata["posterior"].sizes
        return int(sizes["chain"] * sizes["draw"])

    @property
    def segment_column(self) -> str | None:
        """Name of the RFM column that defines the segments (None if unsegmented)."""
        return self.spec.segments

    @property
    def segment_levels(self) -> tuple[str, ...]:
        """Segment labels in code order (empty if unsegmented)."""
        if self.spec.segments is None:
            return ()
        return tuple(str(v) for v in self.posterior["segment"].to_numpy())

    def segment_codes(self, rfm: Any) -> np.ndarray | None:
        """Each customer's segment code in ``rfm`` (None for an unsegmented fit).

        Raises ``ValueError`` for a missing column, missing values, or segments the model
        was not fitted on.
        """
        if self.spec.segments is None:
            return None
        codes, _ = read_segments(rfm, self.spec.segments, self.segment_levels)
        return codes

    def params(self) -> dict[str, np.ndarray]:
        """Posterior draws as numpy arrays.

        Shape ``(chain, draw)``, or ``(chain, draw, n_segments)`` for a segmented fit
        (complete pooling repeats the one population for every segment); segments are
        in the order of :attr:`segment_levels`.
        """
        post = self.posterior
        out = {p: post[p].to_numpy() for p in self.spec.params}
        if self.spec.segments is not None and self.spec.pooling == "complete":
            n = post.sizes["segment"]
            out = {k: np.repeat(v[..., None], n, axis=-1) for k, v in out.items()}
        return out

    def coefficients(self) -> dict[str, np.ndarray]:
        """Posterior draws of the covariate coefficients per unit of each covariate,
        ``(chain, draw, n_covariates)`` each (empty without covariates)."""
        return coefficients_of(self)

    @property
    def covariates(self) -> tuple[str, ...]:
        """The covariate columns the model was fitted with (empty without)."""
        return self.spec.covariates

    def covariate_matrix(self, rfm: Any) -> np.ndarray:
        """The customers' covariates, ``(n_customers, n_covariates)`` in the order of
        :attr:`covariates` (validated: present, numeric, finite), ``(n, 0)`` without."""
        return covariates_of(self, rfm)

    def customer_params(self, rfm: Any, take: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each customer's parameter draws: its segment's for a segmented fit, scaled by
        its covariates for a fit with covariates.

        Parameters
        ----------
        rfm : DataFrame or mapping
            The customers (with the segment column for a segmented fit and the covariate
            columns for a fit with covariates). Not modified.
        take : array of int, optional
            Flat ``chain * draw`` indices of the draws to use (default: all).

        Returns
        -------
        dict of str to ndarray
            Per parameter, ``(n_draws, n_customers)`` for a segmented fit or a parameter
            the covariates scale, and ``(n_draws, 1)`` otherwise (broadcasting against
            the customers).
        """
        codes = self.segment_codes(rfm)
        out = {}
        for name, values in self.params().items():
            flat = values.reshape(-1, values.shape[-1]) if codes is not None else values.reshape(-1)
            if take is not None:
                flat = flat[take]
            out[name] = flat[:, codes] if codes is not None else flat[:, None]
        design = design_of(self)
        if not design:
            return out
        coefficients = {}
        for name, values in coefficients_of(self).items():
            flat = values.reshape(-1, values.shape[-1])
            coefficients[name] = flat if take is None else flat[take]
        return design.apply(out, coefficients, list(covariates_of(self, rfm).T))

    def summary(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """Parameter table: mean, sd, equal-tailed interval, ESS, R-hat.

        With covariates the coefficients follow the parameters, per unit of each
        covariate and per standard deviation (``..._per_sd``), one row per covariate
        (e.g. ``purchase_coefficient[gender]``); the parameters are those at covariates 0.
        :func:`clvbayes.covariates.covariate_effects` says what each covariate does to
        the purchases, spend and CLV.

        Parameters
        ----------
        ci_prob : float
            Probability mass of the credible interval.
        """
        import arviz as az

        n_draws = self.n_posterior_draws
        kind = "all" if n_draws > 1 and self.posterior.sizes["chain"] > 1 else "stats"
        with warnings.catch_warnings():
            # single-chain/single-draw fits (MAP) have no defined R-hat: said in the docs
            warnings.simplefilter("ignore", RuntimeWarning)
            table = az.summary(
                self.posterior,
                var_names=self._summary_names(),
                kind=kind,
                ci_prob=ci_prob,
                round_to="none",
            )
        table.index.name = "parameter"
        return table

    def diagnostics(self) -> Diagnosis:
        """R-hat, bulk/tail ESS, divergences and E-BFMI (NUTS fits)."""
        if "sample_stats" not in self.idata.children:
            raise ValueError(
                f"diagnostics need NUTS output; this fit used method="
                f"{self.settings.get('method')!r}."
            )
        return diagnose(self.idata, [v for v in self.spec.posterior_names() if v in self.posterior])

    def _summary_names(self) -> list[str]:
        """The posterior's parameters for :meth:`summary` (the per-period time effects
        have their own table, :func:`clvbayes.calendar_multipliers`)."""
        names = [v for v in self.spec.posterior_names() if v in self.posterior]
        return [v for v in names if v != "time_effect"]

    def log_likelihood(
        self, per_customer: bool = False, customers: np.ndarray | None = None
    ) -> xr.DataArray:
        """Pointwise log-likelihood under every posterior draw
        (:func:`pointwise_log_likelihood`)."""
        return pointwise_log_likelihood(self, per_customer, customers)

    def save(self, path: str | Path, *, include_data: bool = True) -> None:
        """Write to netCDF (``.nc``) or zarr (``.zarr``); see :func:`clvbayes.save`
        (which also writes several models to one file)."""
        save(self, path, include_data=include_data)

    @property
    def family(self) -> Family:
        """The model family's maths (:mod:`clvbayes.math.family`)."""
        return self.spec.family

    @property
    def time_unit(self) -> str | None:
        """The time unit of the data the model was fitted on (None if not recorded)."""
        return self.settings.get("time_unit")

    def priors_json(self) -> str:
        """The resolved priors as JSON (Prior's dict form)."""
        return json.dumps({k: v.to_dict() for k, v in self.spec.priors.items()}, sort_keys=True)


def pointwise_log_likelihood(
    fit: FittedModel, per_customer: bool = False, customers: np.ndarray | None = None
) -> xr.DataArray:
    """Pointwise log-likelihood of a fit under every posterior draw.

    Parameters
    ----------
    fit : FittedModel
        A fit that kept its data.
    per_customer : bool
        False: one value per unique data row (dims ``chain, draw, row``; weight each
        row by ``data.counts``). True: expanded to one value per customer (dims
        ``chain, draw, customer``), in the order of the fitted RFM table. With
        calendar-time effects only True (each customer has their own Jacobian terms).
    customers : ndarray of int, optional
        With ``per_customer``: only these customers (positions in the fitted table).

    Returns
    -------
    xarray.DataArray
    """
    if fit.data is None:
        raise ValueError("this model was saved without its data; refit or reload with it.")
    if fit.spec.segments is not None and fit.spec.pooling != "complete":
        params = fit.params()  # segment axis last: row_loglik works per segment
    else:
        params = {k: fit.posterior[k].to_numpy()[..., None] for k in fit.spec.params}
    params.update(fit.coefficients())
    rows = fit.data.inverse if customers is None else fit.data.inverse[customers]
    if fit.calendar is None:
        ll = fit.spec.row_loglik(params, fit.data)
        if per_customer:
            return xr.DataArray(ll[..., rows], dims=("chain", "draw", "customer"))
        return xr.DataArray(ll, dims=("chain", "draw", "row"))
    if not per_customer:
        raise ValueError(
            "with calendar-time effects customers sharing a row differ in their own "
            "purchase periods (the Jacobian), so the pointwise log-likelihood is per "
            "customer: pass per_customer=True."
        )
    f = fit.posterior["time_effect"].to_numpy()
    data = dataclasses.replace(fit.data, extras={"calendar": fit.calendar})
    ll = fit.spec.row_loglik(params, data, f)[..., rows]
    purchases = np.asarray(fit.calendar.purchases)
    if customers is not None:  # renumber the chosen customers' purchases 0..k-1
        position = np.full(fit.data.inverse.size, -1)
        position[np.asarray(customers)] = np.arange(len(customers))
        purchases = purchases[:, position[purchases[0]] >= 0]
        purchases[0] = position[purchases[0]]
    return xr.DataArray(
        ll + customer_jacobian(f, purchases, ll.shape[-1]),
        dims=("chain", "draw", "customer"),
    )


def design_of(fit: Any) -> CovariateDesign:
    """The covariate design of a fitted model (empty for one without covariates, or for a
    stand-in holding only posterior draws, see :func:`check_fitted`)."""
    design = getattr(getattr(fit, "spec", None), "design", None)
    return design if design is not None else CovariateDesign()


def coefficients_of(fit: Any) -> dict[str, np.ndarray]:
    """Posterior draws ``(chain, draw, n_covariates)`` of each coefficient of a fit's
    covariates (empty without)."""
    post = fit.posterior if design_of(fit) else None
    return {c: post[c].to_numpy() for c in design_of(fit).coefficients}


def covariates_of(fit: Any, rfm: Any) -> np.ndarray:
    """The customers' covariates under ``fit``, ``(n_customers, n_covariates)`` in the
    order of its design (validated: present, numeric, finite), ``(n, 0)`` without."""
    design = design_of(fit)
    if not design:
        n = len(rfm) if hasattr(rfm, "columns") else len(np.asarray(next(iter(rfm.values()))))
        return np.zeros((n, 0))
    values = check_covariates(rfm, design.names, argument=f"{fit.kind} covariates")
    return np.column_stack([values[c] for c in design.names])


def _parameter_rows(fit: FittedModel, max_rows: int = 40) -> pd.DataFrame:
    """Mean, sd and 90 % interval of every parameter (one row per segment of a
    segmented parameter): plain numpy over the draws, nothing slower."""
    rows = {}
    post = fit.posterior
    for name in [v for v in fit.spec.posterior_names() if v in post and v != "time_effect"]:
        values = post[name].to_numpy()
        flat = values.reshape(-1, *values.shape[2:])
        labels = [name]
        if flat.ndim > 1:
            flat = flat.reshape(flat.shape[0], -1)
            dim = post[name].dims[2]
            labels = [f"{name}[{label}]" for label in post[name][dim].to_numpy()]
        else:
            flat = flat[:, None]
        q05, q95 = np.quantile(flat, [0.05, 0.95], axis=0)
        for j, label in enumerate(labels):
            col = flat[:, j]
            sd = float(col.std(ddof=1)) if col.size > 1 else float("nan")
            rows[label] = (float(col.mean()), sd, float(q05[j]), float(q95[j]))
            if len(rows) == max_rows:
                break
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "sd", "q05", "q95"])
    table.index.name = "parameter"
    return table


def fitted_html(fit: FittedModel) -> str:
    """The HTML card of a fitted model (``FittedModel._repr_html_``).

    A diagnostics badge (from the checks run at fit time: converged, or the number of
    problems; none for MAP and approximations), the parameters' posterior mean, sd and
    90 % interval, the data size and the fit settings. Every value is escaped.
    """
    from clvbayes.display import badge, card, escape, frame_table, items_table

    method = fit.settings.get("method")
    if method != "nuts":
        status = badge(f"no convergence diagnostics ({method})", "info")
    elif fit.problems:
        status = badge(f"{len(fit.problems)} convergence problem(s)", "bad")
    else:
        status = badge("converged", "ok")
    post = fit.posterior
    data: dict[str, Any] = {}
    if fit.data is not None:
        data["customers"] = fit.data.n_customers
        data["unique rows"] = int(np.size(fit.data.counts))
    if fit.spec.segments is not None:
        data["segments"] = f"{len(fit.segment_levels)} ({fit.spec.segments}, {fit.spec.pooling})"
    if fit.time_unit is not None:
        data["time unit"] = fit.time_unit
    if fit.calendar is not None:
        grid = fit.calendar
        free = f", the first {grid.n_free} free" if grid.n_free else ""
        known = f"; covariates {', '.join(grid.covariate_names)}" if grid.covariate_names else ""
        data["calendar-time effects"] = (
            f"{grid.n_periods} periods of 1 {grid.time_unit} from {grid.origin}{free}{known}"
        )
    data["data fingerprint"] = fit.fingerprint
    keys = ("method", "sampler", "chains", "draws", "tune", "target_accept", "seed", "seconds")
    settings = {k: fit.settings[k] for k in keys if k in fit.settings}
    if settings.get("target_accept") == -1.0:
        settings.pop("target_accept")
    if "seed" in settings:
        settings["seed"] = str(settings["seed"])  # an identifier: no thousands separators
    sections = [
        ("Parameters (posterior mean, sd, 90 % interval)", frame_table(_parameter_rows(fit)))
    ]
    if fit.problems:
        items = "".join(f"<li>{escape(problem)}</li>" for problem in fit.problems)
        sections.append(("Convergence problems", f"<ul>{items}</ul>"))
    sections += [("Data", items_table(data)), ("Fit settings", items_table(settings))]
    draws = f"{post.sizes['chain']} chain(s) x {post.sizes['draw']:,} draws"
    return card(f"Fitted {fit.kind}", *sections, status=status, note=draws)


class ModelKindError(TypeError, ValueError):
    """A fitted model of the wrong kind was passed (e.g. a Gamma-Gamma fit where a
    transaction model is needed). Both a TypeError and a ValueError, so either catches it."""


def check_fitted(fit: Any, argument: str, role: str = "transaction") -> Family:
    """The family of ``fit`` if it is a fitted model of the ``role`` asked for, else a
    clear TypeError.

    Any object with the ``kind`` of a registered family of that role passes (a
    :class:`FittedModel`, or a stand-in holding posterior draws).

    Parameters
    ----------
    fit : object
        What the caller was given.
    argument : str
        The caller's argument name (for the message), e.g. ``"fit"`` or ``"spend_fit"``.
    role : {"transaction", "spend"}
        A model of purchases and dropout (BG/NBD, MBG/NBD, Pareto/NBD) or of spend
        (Gamma-Gamma).

    Returns
    -------
    Family
        The model's family (:mod:`clvbayes.math.family`).

    Raises
    ------
    ModelKindError
        For anything else.
    """
    wanted = TransactionFamily if role == "transaction" else SpendFamily
    kind = getattr(fit, "kind", None)
    try:
        return family(kind, wanted)
    except (TypeError, ValueError):
        fitting = ", ".join(sorted(k for k, f in FAMILIES.items() if isinstance(f, wanted)))
        got = kind if isinstance(kind, str) else type(fit).__name__
        raise ModelKindError(
            f"{argument}: expected a fitted {role} model ({fitting}), got {got}."
        ) from None


def _unit_words(unit: str | float) -> str:
    return unit_name(unit, plural=True) if isinstance(unit, str) else f"periods of {unit:g} days"


def check_time_units(
    fit: Any, rfm: Any = None, time_unit: str | float | None = None
) -> str | float | None:
    """The time unit in which ``fit`` meets ``rfm``: the units that are known must agree.

    Three sources: the unit the fit's data were in (:attr:`FittedModel.time_unit`,
    recorded when fitting), the unit recorded on the table (``rfm.attrs["time_unit"]``,
    :func:`clvbayes.data.rfm.table_time_unit`) and the caller's ``time_unit`` (a
    prediction option; a code, a name or a number of days). A weekly fit's rates are per
    week, so a table in days, or a horizon and discount rate in days, would silently give
    wrong predictions (expected purchases 56.7 instead of 344). Fits and tables without a
    recorded unit (older files, tables built by hand) are taken as they are. A fit with
    calendar-time effects also needs ``rfm`` on its calendar (:func:`check_calendar`), so
    every prediction that checks the units checks that too.

    Parameters
    ----------
    fit : FittedModel
        The fitted model (any object with a ``time_unit`` attribute, or none).
    rfm : DataFrame, optional
        The customers the fit is applied to.
    time_unit : str or float, optional
        The unit the caller asked for.

    Returns
    -------
    str, float or None
        ``time_unit`` if given, else the fit's unit, else the table's (None if none is
        known).

    Raises
    ------
    ValueError
        When two known units differ (compared in days), naming both and the fix.
    """
    fitted = getattr(fit, "time_unit", None)
    table = None if rfm is None else table_time_unit(rfm)
    check_calendar(fit, rfm)
    if fitted is not None and table is not None and fitted != table:
        raise ValueError(
            f"the RFM table is in {_unit_words(table)} (its attrs[{TIME_UNIT_ATTR!r}] = "
            f"{table!r}) but the {fit.kind} fit is in {_unit_words(fitted)}: its rates are per "
            f"{unit_name(fitted)}, so recency, T and horizons must be too; summarize the log "
            f"with time_unit={fitted!r}, or refit on this table."
        )
    if time_unit is not None:
        asked = check_time_unit(time_unit) if isinstance(time_unit, str) else time_unit
        for known, what in (
            (fitted, f"the {getattr(fit, 'kind', '')} fit"),
            (table, "the RFM table"),
        ):
            if known is not None and days_per_unit(known) != days_per_unit(asked):
                raise ValueError(
                    f"time_unit={time_unit!r}, but {what} is in {_unit_words(known)}; "
                    f"horizons and discount rates are in the fit's unit: pass "
                    f"time_unit={known!r}, or leave it out (the fit's unit is the default)."
                )
        return asked
    return fitted if fitted is not None else table


def check_calendar(fit: Any, rfm: Any, *, same_origin: bool = False) -> None:
    """Refuse data a fit with calendar-time effects cannot place on its calendar.

    Its multipliers are known on its own grid, and every customer enters at ``c = G - T``
    on it. So a :class:`~clvbayes.data.calendar.CalendarRFM` must have the fit's time unit
    and calibration end (another end would start the forecasts on the wrong day), and no
    customer may have been first seen before the grid's origin (``T > G``: the path
    before it is unknown). ``same_origin``: the data's own grid positions are used (the
    tracking curves), so its origin must be the fit's too. Stationary fits take any data.

    Raises
    ------
    ValueError
        Naming what differs (or how many customers, with an example) and the fix.
    """
    grid = getattr(fit, "calendar", None)
    if grid is None or rfm is None:
        return
    if isinstance(rfm, CalendarRFM):
        fit_end = grid.origin + dt.timedelta(days=round(grid.grid_end * grid.days_per_unit))
        ours = (grid.time_unit, fit_end, grid.origin)
        theirs = (rfm.time_unit, rfm.calibration_end, rfm.origin)
        compared = 3 if same_origin else 2
        if ours[:compared] != theirs[:compared]:
            raise ValueError(
                f"the calendar data (periods of 1 {theirs[0]} from {theirs[2]}, calibration "
                f"end {theirs[1]}) are not on the {fit.kind} fit's calendar (periods of 1 "
                f"{ours[0]} from {ours[2]}, calibration end {ours[1]}): a fit with "
                "calendar-time effects knows its multipliers on its own grid and forecasts "
                "from its own calibration end. Summarize the log with calendar_rfm(..., "
                f"calibration_end='{ours[1]}', time_unit='{ours[0]}')"
                + (" from the fit's first day" if same_origin else "")
                + ", or refit on these data."
            )
    table = rfm.customers if isinstance(rfm, CalendarRFM) else rfm
    if not hasattr(table, "__contains__") or "T" not in table:
        return  # check_rfm names what is missing
    try:  # a table or a mapping of columns; what is not numeric check_rfm refuses later
        T = np.asarray(table["T"], dtype=float).reshape(-1)
    except (TypeError, ValueError):
        return
    older = T > grid.grid_end + 1e-9
    if older.any():
        first = int(np.flatnonzero(older)[0])
        if "customer_id" in table:
            ids = np.asarray(table["customer_id"])
        else:
            ids = np.asarray(getattr(table, "index", np.arange(T.size)))
        raise ValueError(
            f"{int(older.sum())} of {T.size} customers were first seen before the {fit.kind} "
            f"fit's calendar starts ({grid.origin}): T > {grid.grid_end:g} {grid.time_unit}, "
            f"e.g. customer {ids[first].tolist()!r} with T = {T[first]:g}. A fit with "
            "calendar-time effects knows the multipliers only on its grid; score customers "
            "first seen since its origin (at its calibration end), or refit on a calendar "
            "that covers them."
        )


def to_groups(fit: FittedModel, include_data: bool = True) -> dict[str, xr.Dataset]:
    """The groups a file stores for one model (see :func:`clvbayes.save`)."""
    import clvbayes

    groups: dict[str, xr.Dataset] = {"posterior": fit.posterior}
    if "sample_stats" in fit.idata.children:
        stats = fit.idata["sample_stats"].to_dataset()
        groups["sample_stats"] = stats[[v for v in _KEEP_STATS if v in stats]]
    if include_data and fit.data is not None:
        d = fit.data
        arrays = {f"row_{c}": ("row", d.rows[c]) for c in d.columns}
        arrays["row_count"] = ("row", d.counts)
        arrays["customer_row"] = ("customer", d.inverse.astype(np.int32))
        groups["constant_data"] = xr.Dataset(arrays)
    if fit.calendar is not None:
        groups["calendar"] = _calendar_group(fit.calendar)
    columns = fit.data.columns if fit.data is not None else fit.spec.columns
    attrs = {
        "format": FORMAT,
        "clvbayes_version": clvbayes.__version__,
        "model_kind": fit.kind,
        "priors": fit.priors_json(),
        "data_fingerprint": fit.fingerprint,
        "data_columns": json.dumps(list(columns)),
        "spec_options": json.dumps(fit.spec.options(), sort_keys=True),
        "settings": json.dumps(fit.settings, sort_keys=True),
        "problems": json.dumps(list(fit.problems)),
    }
    groups["posterior"] = groups["posterior"].assign_attrs(attrs)
    return groups


def is_stored_model(node: xr.DataTree) -> bool:
    """Whether a file's node holds a model written by :func:`to_groups`."""
    return "posterior" in node.children and node["posterior"].attrs.get("format") == FORMAT


def from_groups(node: xr.DataTree, where: str) -> FittedModel:
    """Rebuild a model from the groups :func:`to_groups` wrote (``where`` names the
    file and node in error messages)."""
    posterior = node["posterior"].to_dataset()
    attrs = posterior.attrs
    try:
        spec_type = spec_class(attrs.get("model_kind"))
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    priors = {k: Prior.from_dict(v) for k, v in json.loads(attrs["priors"]).items()}
    spec = spec_type(priors=priors, **json.loads(attrs.get("spec_options", "{}")))
    # segment labels (segmented fits) live in the posterior's "segment" coordinate
    segments = [str(s) for s in posterior["segment"].to_numpy()] if spec.segments else []
    data = None
    if "constant_data" in node.children:
        cd = node["constant_data"].to_dataset()
        arrays = {k: cd[k].to_numpy() for k in cd.data_vars}
        columns = json.loads(attrs["data_columns"])
        data = CompressedRFM.from_dict(arrays, columns, segments=segments)
    groups = {"posterior": posterior.assign_attrs({})}
    if "sample_stats" in node.children:
        groups["sample_stats"] = node["sample_stats"].to_dataset()
    calendar = None
    if "calendar" in node.children:
        stored = node["calendar"].to_dataset()
        calendar = CalendarGrid.from_dict(
            {**stored.attrs, **{k: stored[k].to_numpy() for k in stored.data_vars}}
        )
        if data is not None:
            data = dataclasses.replace(data, extras={"calendar": calendar})
    return FittedModel(
        spec=spec,
        idata=xr.DataTree.from_dict(groups),
        data=data,
        fingerprint=attrs["data_fingerprint"],
        settings=json.loads(attrs["settings"]),
        problems=tuple(json.loads(attrs["problems"])),
        calendar=calendar,
    )


def _calendar_group(grid: CalendarGrid) -> xr.Dataset:
    """A fit's calendar grid as a dataset (arrays) with attributes (the rest)."""
    stored = grid.to_dict()
    arrays = {
        "counts": ("period", stored.pop("counts")),
        "exposure": ("period", stored.pop("exposure")),
        "purchases": (("purchase_field", "purchase"), stored.pop("purchases")),
        "covariates": (("known_period", "calendar_covariate"), stored.pop("covariates")),
    }
    stored["covariate_names"] = json.dumps(stored["covariate_names"])
    return xr.Dataset(arrays).assign_attrs(stored)


def _check_models(models: Any) -> None:
    """Raise ``TypeError`` unless ``models`` is a fitted model or a mapping of them."""
    accepts = "save accepts a FittedModel (from spec.fit) or a mapping {name: FittedModel}"
    if isinstance(models, FittedModel):
        return
    if not isinstance(models, Mapping):
        raise TypeError(f"{accepts}; got {type(models).__name__}.")
    if not models:
        raise TypeError(f"{accepts}; got an empty {type(models).__name__}.")
    for name, fitted in models.items():
        if not isinstance(name, str):
            raise TypeError(f"{accepts}; key {name!r} is a {type(name).__name__}, not a str.")
        if not isinstance(fitted, FittedModel):
            raise TypeError(f"{accepts}; {name!r} is a {type(fitted).__name__}.")


def save(models: Any, path: str | Path, *, include_data: bool = True) -> None:
    """Write one fitted model, or a mapping ``{name: fitted}``, to ``path``.

    The file is written under a temporary name next to ``path`` and renamed at the end,
    so a failed write leaves an earlier file intact. An existing regular file at ``path``
    is replaced; a folder is never removed, except a ``.zarr`` store that ``save`` wrote.

    A file holds one fitted model, or several (e.g. a BG/NBD and a Gamma-Gamma fit) as
    named groups. Each model's node stores the posterior, the sampler statistics, the
    compressed data (unique rows, counts and the customer-to-row map; optional) and, as
    attributes, the package version, model type, priors (JSON), data fingerprint and fit
    settings.

    Parameters
    ----------
    models : FittedModel or mapping of str to FittedModel
        What to save. Several models go into named groups of one file.
    path : str or Path
        ``*.zarr`` writes a zarr store (a folder); anything else a netCDF4 file (HDF5,
        via h5netcdf).
    include_data : bool
        Store the compressed data (needed for the pointwise log-likelihood and LOO);
        a CDNOW-master fit is about 0.5 MB with it.

    Raises
    ------
    TypeError
        When ``models`` is neither a fitted model nor a mapping of names to them.
    ValueError
        When a model name is empty or contains ``/``.
    IsADirectoryError
        When a netCDF ``path`` is a folder.
    FileExistsError
        When a ``.zarr`` ``path`` exists and is not a store that ``save`` wrote.
    """
    _check_models(models)
    if isinstance(models, Mapping):
        tree: dict[str, xr.Dataset] = {}
        for name, fitted in models.items():
            if "/" in name or not name:
                raise ValueError(f"model name {name!r} must be non-empty without '/'.")
            for group, ds in to_groups(fitted, include_data).items():
                tree[f"{name}/{group}"] = ds
    else:
        tree = to_groups(models, include_data)
    write_tree(xr.DataTree.from_dict(tree), path, replaceable=is_stored_model)


def load(path: str | Path, model: str | type | None = None) -> Any:
    """Load what :func:`save` wrote.

    Parameters
    ----------
    path : str or Path
        A ``.nc`` or ``.zarr`` file written by clvbayes.
    model : str or model class, optional
        Expected model type (``"BGNBD"`` or ``clvbayes.BGNBD``); a file holding another
        type raises ``ValueError``.

    Returns
    -------
    FittedModel, or dict of str to FittedModel for a file of several models.
    """
    tree = read_tree(path)
    if is_stored_model(tree):
        result: Any = from_groups(tree, str(path))
        found = {result.kind}
    else:
        named = {k: v for k, v in tree.children.items() if is_stored_model(v)}
        if not named:
            raise ValueError(f"{path}: not a clvbayes model file (no fitted model inside).")
        result = {k: from_groups(v, f"{path}:{k}") for k, v in named.items()}
        found = {m.kind for m in result.values()}
    if model is not None:
        expected = model if isinstance(model, str) else model.kind
        if found != {expected}:
            raise ValueError(
                f"{path} holds {sorted(found)}, not {expected!r}; load it without "
                "model=..., or with the type it holds."
            )
    return result
