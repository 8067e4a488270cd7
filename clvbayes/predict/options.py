"""Prediction options: one object shared by every path that scores customers.

:func:`clvbayes.predict_customers`, :func:`clvbayes.validate_holdout`, the report and
:func:`clvbayes.scale.predict_customers_dask` take the same :class:`PredictOptions`, so
their defaults cannot drift apart. Each of them also accepts the fields as keyword
arguments (``predict_customers(fit, rfm, horizon=52, annual_discount=0.1)``), which
are checked here, once.

The fields fall in two groups: *what* is predicted (discounting, margin, thresholds,
ranks, interval mass, posterior draws) and *how* the work is done (memory cap, chunking,
threads, spill directory, progress bar). The second group never changes the statistics'
definition.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from clvbayes.math.clv import days_per_unit, resolve_discount

__all__ = ["PREDICTIVE_DRAWS", "PredictOptions", "predictive_draws"]

PREDICTIVE_DRAWS = 500
"""Fewest predictive draws a simulated prediction uses when ``n_draws`` is not given:
every posterior draw, repeated up to this many when the fit has fewer (a MAP fit has one
draw, and one simulated future would make every interval a point and every customer's
rank a tie)."""


def predictive_draws(n_posterior_draws: int, n_draws: int | None = None) -> int | None:
    """The ``n_draws`` a simulated prediction uses: the caller's ``n_draws`` if given;
    else every posterior draw (None), each repeated the same number of times to reach at
    least :data:`PREDICTIVE_DRAWS` when the fit has fewer (equal weights, so posterior
    means are unchanged).

    Parameters
    ----------
    n_posterior_draws : int
        The fit's draws (chains x draws; a MAP fit has 1).
    n_draws : int, optional
        The caller's choice, which wins.

    Returns
    -------
    int or None
        ``n_draws``, a multiple of ``n_posterior_draws``, or None (all draws once).
    """
    if n_draws is not None or n_posterior_draws >= PREDICTIVE_DRAWS:
        return n_draws
    n = max(int(n_posterior_draws), 1)
    return n * math.ceil(PREDICTIVE_DRAWS / n)


# Old keyword names still accepted (with a DeprecationWarning), and their new names.
_RENAMED = {"hdi_prob": "ci_prob"}


@dataclass(frozen=True)
class PredictOptions:
    """What to predict and how to compute it.

    Parameters
    ----------
    time_unit : str or float, optional
        The model's time unit (``"W"``, ``"D"``, ``"M"``, ``"Q"``, ``"Y"``, their names,
        or a number of days), the unit of horizons and of discounting. Default (None):
        the fit's recorded unit, else the unit recorded on the RFM table, else weeks.
        Given, it must equal the recorded ones
        (:func:`clvbayes.models.fitted.check_time_units`): the fit's rates are per its
        unit, so another unit would silently give wrong CLVs.
    annual_discount : float
        Annual effective discount rate in ``[0, 1]`` (0.1 = 10 %/year); 0 = no
        discounting.
    continuous_discount : float, optional
        Instead: a continuous-time discount rate per model time unit (``exp(-δ t)``).
    period_discount : float, optional
        Instead: an effective discount rate per model time unit (0.002 = 0.2 % a week
        for weekly data). At most one of the three may be given
        (:func:`clvbayes.math.clv.resolve_discount`).
    margin : float
        Profit margin applied to spend: the share of spend that is profit, in ``(0, 1]``
        (1 = CLV in revenue).
    thresholds : tuple of float
        CLV thresholds: adds ``p_clv_gt_<t>``.
    top : tuple of float
        Shares in ``(0, 1]`` (0.1 = top 10 %): adds ``p_top_<k>pct`` (with a spend fit).
    ranks : bool
        Add ``expected_rank`` and ``p_top_<k>pct`` (with a spend fit). They need all
        customers' CLV draws at once; False skips that pass.
    intervals : tuple of (float, float)
        Windows ``(start, end]`` inside the horizon, in model time units, e.g.
        ``((0, 52), (52, 156))`` for year 1 and years 2-3 of weekly data: adds the
        purchases and (with a spend fit) the CLV of each window, ``purchases_<start>_<end>_*``
        and ``clv_<start>_<end>_*``, from the same simulated futures as the totals (so
        the windows' draws add up to the total's when they tile the horizon). CLV is
        discounted to the end of calibration, like the total.
    ci_prob : float
        Probability mass of the highest-density interval columns (0.9 gives
        ``*_hdi90_low/high``).
    n_draws : int, optional
        Number of posterior draws to use (spread evenly over chains, thinned evenly
        within each). More than available repeats the draws cyclically, so a MAP fit
        (one draw) still gives the customer-level predictive distribution. Default: every
        posterior draw, repeated to at least :data:`PREDICTIVE_DRAWS` in simulated predictions
        (:func:`clvbayes.predict_customers`, :func:`clvbayes.validate_holdout`,
        :func:`clvbayes.calendar_multipliers`).
    discount_nodes : int, optional
        Gauss-Legendre nodes of the conditional-mean CLV's discounting; by default chosen
        per customer for ~1e-8 relative accuracy.
    memory_limit_mb : float
        Cap on the working memory of the scoring (all threads together). The CLV draws
        the ranks need (4 bytes per draw and customer) stay in memory up to half of it
        and count against it; above that they go to a temporary file in ``spill_dir``,
        through a write buffer of an eighth of the cap. The rank pass that follows holds,
        whatever the cap, 8 draws of every customer, their sums and a sort's work arrays
        per thread (up to about 64 bytes per customer and thread with one top share) and
        the totals (16 bytes per customer): about 1.4 GB on two threads at 10M customers.
    chunk_customers : int, optional
        Customers per chunk; by default as many as ``memory_limit_mb`` allows.
    n_jobs : int, optional
        Threads scoring chunks in parallel (default: the CPUs this process may use).
    spill_dir : str or Path, optional
        Directory of the temporary CLV-draw file of large runs (default: the system's
        temporary directory). Needs room for ``4 x draws x customers`` bytes while the
        run lasts; the file is nameless (removed when opened), so nothing is left there
        afterwards, however the run ends.
    calendar_covariates : DataFrame, optional
        For fits with calendar-time effects and known calendar covariates: their values
        in the forecast periods (one row per period, indexed by a date in it) that the fit's
        ``TimeEffects.covariates`` did not already hold.
    calendar_seed : int, optional
        For fits with calendar-time effects: the seed of the future calendar paths
        (default: derived from the call's ``seed``). Give the same one to separate calls
        that should share one forecast of the calendar (the Dask scorer's partitions do),
        so that their totals add up with the common shocks correlated.
    progressbar : bool
        Show a progress bar (customers per second, time left) when the scoring takes
        more than two seconds (:mod:`clvbayes.progress`); False: never.
    """

    time_unit: str | float | None = None
    annual_discount: float = 0.0
    continuous_discount: float | None = None
    period_discount: float | None = None
    margin: float = 1.0
    thresholds: tuple[float, ...] = ()
    top: tuple[float, ...] = (0.1,)
    ranks: bool = True
    intervals: tuple[tuple[float, float], ...] = ()
    ci_prob: float = 0.9
    n_draws: int | None = None
    discount_nodes: int | None = None
    memory_limit_mb: float = 1024.0
    chunk_customers: int | None = None
    n_jobs: int | None = None
    spill_dir: str | Path | None = None
    calendar_covariates: pd.DataFrame | None = field(default=None, compare=False)
    calendar_seed: int | None = None
    progressbar: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        object.__setattr__(self, "top", tuple(float(k) for k in self.top))
        if self.time_unit is not None:
            days_per_unit(self.time_unit)  # a clear error for an unknown unit
        object.__setattr__(self, "intervals", _check_intervals(self.intervals))
        if not (math.isfinite(self.annual_discount) and 0 <= self.annual_discount <= 1):
            raise ValueError(
                f"annual_discount must be a yearly rate between 0 and 1 (0.10 for 10 %), got "
                f"{self.annual_discount!r}."
            )
        for name in ("continuous_discount", "period_discount"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite rate >= 0, got {value!r}.")
        self.discount_rate  # noqa: B018  (checks that at most one rate is given)
        if not (math.isfinite(self.margin) and 0 < self.margin <= 1):
            hint = f" (for {self.margin:g} % pass {self.margin / 100:g})" if self.margin > 1 else ""
            raise ValueError(
                f"margin must be the share of spend that is profit, in (0, 1] (0.3 for "
                f"30 %), got {self.margin!r}{hint}."
            )
        bad = [t for t in self.thresholds if not math.isfinite(t)]
        if bad:
            raise ValueError(f"thresholds must be finite numbers, got {bad}.")
        for k in self.top:
            if not 0 < k <= 1:
                raise ValueError(f"top shares must be in (0, 1], got {k}")
        if not 0 < self.ci_prob < 1:
            raise ValueError(f"ci_prob must be in (0, 1), got {self.ci_prob!r}.")
        _positive_int(self.n_draws, "n_draws")
        _positive_int(self.discount_nodes, "discount_nodes")
        _positive_int(self.chunk_customers, "chunk_customers")
        _positive_int(self.n_jobs, "n_jobs")
        if self.calendar_seed is not None and (
            isinstance(self.calendar_seed, bool) or not float(self.calendar_seed).is_integer()
            or self.calendar_seed < 0
        ):  # fmt: skip
            raise ValueError(
                f"calendar_seed must be a whole number >= 0, got {self.calendar_seed!r}."
            )
        if not isinstance(self.progressbar, bool | int) or self.progressbar not in (0, 1):
            raise TypeError(f"progressbar must be True or False, got {self.progressbar!r}.")
        object.__setattr__(self, "progressbar", bool(self.progressbar))
        if not (math.isfinite(self.memory_limit_mb) and self.memory_limit_mb > 0):
            raise ValueError(
                f"memory_limit_mb must be a positive number of megabytes, got "
                f"{self.memory_limit_mb!r}."
            )

    @property
    def discount_rate(self) -> float:
        """The continuous discount rate ``δ`` per model time unit (weeks if ``time_unit``
        is None)."""
        return resolve_discount(
            "W" if self.time_unit is None else self.time_unit,
            annual=self.annual_discount,
            continuous=self.continuous_discount,
            per_period=self.period_discount,
        )

    @property
    def interval_labels(self) -> tuple[str, ...]:
        """``"<start>_<end>"`` of each of :attr:`intervals` (e.g. ``"0_52"``)."""
        return tuple(f"{a:g}_{b:g}".replace(".", "p") for a, b in self.intervals)

    @property
    def windows(self) -> tuple[tuple[str, float, float], ...]:
        """``(label, start, end)`` of each of :attr:`intervals`."""
        labels = self.interval_labels
        return tuple((label, a, b) for label, (a, b) in zip(labels, self.intervals, strict=True))

    def replace(self, **changes: Any) -> PredictOptions:
        """A copy with some fields changed (checked like the constructor's)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def merge(
        cls, options: PredictOptions | None, changes: Mapping[str, Any], caller: str
    ) -> PredictOptions:
        """``options`` (or the defaults) with the keyword arguments ``changes`` applied.

        Raises ``TypeError`` naming ``caller`` for a keyword that is no option.
        """
        if options is not None and not isinstance(options, PredictOptions):
            raise TypeError(
                f"{caller}: options must be a clvbayes.PredictOptions, got "
                f"{type(options).__name__}."
            )
        changes = dict(changes)
        for old, new in _RENAMED.items():
            if old in changes:
                warnings.warn(
                    f"{caller}: {old}= is now called {new}=.", DeprecationWarning, stacklevel=3
                )
                changes[new] = changes.pop(old)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(
                f"{caller}() got unexpected keyword argument(s) {unknown}; prediction "
                f"options are {sorted(known)}."
            )
        base = options if options is not None else cls()
        return base.replace(**changes) if changes else base

    def simulated(self, n_posterior_draws: int) -> PredictOptions:
        """These options for a simulated prediction from a fit with ``n_posterior_draws``
        draws: without ``n_draws``, :func:`predictive_draws` (every draw, repeated up to at
        least :data:`PREDICTIVE_DRAWS`)."""
        wanted = predictive_draws(n_posterior_draws, self.n_draws)
        return self if wanted == self.n_draws else self.replace(n_draws=wanted)


def _check_intervals(intervals: Any) -> tuple[tuple[float, float], ...]:
    """``intervals`` as a tuple of float pairs ``0 <= start < end`` (clear errors)."""
    try:
        pairs = tuple((float(a), float(b)) for a, b in intervals)
    except (TypeError, ValueError):
        raise ValueError(
            f"intervals must be (start, end) pairs of model time units, e.g. ((0, 52), "
            f"(52, 156)), got {intervals!r}."
        ) from None
    bad = [p for p in pairs if not (math.isfinite(p[1]) and 0 <= p[0] < p[1])]
    if bad:
        raise ValueError(f"intervals need 0 <= start < end (finite), got {bad}.")
    if len(set(pairs)) < len(pairs):
        raise ValueError(f"intervals has a window twice: {list(pairs)}.")
    return pairs


def _positive_int(value: Any, name: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not float(value).is_integer() or value < 1:
        raise ValueError(f"{name} must be a positive whole number, got {value!r}.")
