"""Segments: reading the segment column, pooling, and the hierarchical-prior builder.

A segmented model (``BGNBD(segments="channel")``) gives every segment ``s`` its own
population parameters. Three degrees of pooling:

``"complete"``
    One population for all segments: the plain model, fitted on rows keyed by segment
    (so its pointwise log-likelihood is comparable with the other two by PSIS-LOO).
``"none"``
    Independent parameters per segment, each with the plain model's prior.
``"partial"`` (default)
    ``link(theta_s) = mu + sigma z_s``, ``z_s ~ N(0, 1)``, with hyperpriors on ``mu`` and
    ``sigma`` (:mod:`clvbayes.priors`); ``link`` is ``log`` for positive parameters and
    ``logit`` for probabilities. Small segments borrow strength from the others: their
    estimates are pulled toward ``mu`` in proportion to how little their own data say.

Centred or not, per segment. The non-centred form above samples well when a segment's
data are weak relative to ``sigma`` (the funnel between ``sigma`` and ``theta_s``
disappears); when a segment's ``theta_s`` is pinned by its data far more tightly than
``sigma``, the centred form ``link(theta_s) ~ N(mu, sigma)`` is the one without a funnel
(in the non-centred form ``mu`` and every ``z_s`` then move together along a ridge whose
width changes with ``sigma``). The default ``centered="auto"`` chooses per segment:
centred for segments with at least :data:`CENTERED_MIN_CUSTOMERS` customers, non-centred
for smaller ones. When every segment is centred they are sampled in the marginal form
(``mu``, and for the usual ``sigma`` priors ``sigma`` too, integrated out of their prior
and drawn given them, :func:`hierarchical_parameter`), which removes the funnel between
``mu`` and ``sigma`` that few segments leave. Mixed
forms sample ``mu`` itself: in the segment recovery study (five segments of 50 to 20,000
customers) the marginal form left a chain stuck in one of six BG/NBD fits (R-hat 2.2),
which the plain mixed form did not in twenty. Measured on the CDNOW master acquisition
cohorts (three segments of ~8,000 customers; 4 x 1000 draws, nutpie, target_accept
0.99): non-centred 0 divergences at 101 leapfrog steps per draw, centred 0 divergences
at 31 steps (3x faster); at target_accept 0.95, 14 (non-centred, 53 steps) and 7
(centred, 15 steps) divergences.

The likelihood is written once (:mod:`clvbayes.math`) and evaluated per segment on that
segment's contiguous block of unique rows (:meth:`CompressedRFM.segment_blocks`) with
that segment's parameters, so the per-level terms still run once per distinct value.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from clvbayes.data.compress import CompressedRFM
from clvbayes.priors import Prior, with_dims

__all__ = [
    "CENTERED_MIN_CUSTOMERS",
    "FEW_CUSTOMERS",
    "MARGINAL_SAMPLER",
    "MEAN_MARGINAL_SAMPLER",
    "MIN_MEAN_CUSTOMERS",
    "PARTIAL_TARGET_ACCEPT",
    "PARTIAL_TUNE",
    "POOLING",
    "SCALE_LOG_BOUND",
    "SCALE_MAX_NODES",
    "SCALE_STEP",
    "PoolingQuantities",
    "SegmentWarning",
    "by_segment",
    "check_segment_options",
    "hierarchical_parameter",
    "marginal_form",
    "normal_hyperprior",
    "partial_sampler_defaults",
    "read_segments",
    "scale_grid",
    "segment_prior",
    "segment_priors",
    "sum_by_segment",
]

Pooling = Literal["partial", "none", "complete"]
POOLING = ("partial", "none", "complete")

PARTIAL_TARGET_ACCEPT = 0.995
"""Default NUTS ``target_accept`` of partially pooled fits (PyMC's default is 0.8).

With a few segments the between-segment spread ``sigma`` is weakly identified and the
posterior has funnel-like regions; smaller steps avoid divergences there. On the CDNOW
master cohorts (3 x ~8,000 customers, centred, 4 x 1000 draws) the BG/NBD gave 7
divergences at 0.95 and none at 0.99 (31 leapfrog steps per draw; the pooled model
takes ~4); the Gamma-Gamma gave 0-2 per seed at 0.99 and none at 0.995 (34-38 steps).
Pass ``target_accept=`` to :meth:`fit` to override."""

PARTIAL_TUNE = 2000
"""Default NUTS tuning steps of partially pooled fits (1,000 for other fits).

On the CDNOW master cohorts (centred, target_accept 0.995, 2 chains) 1,000 tuning steps
left 7 divergences for one seed of five, all where the cohorts' mean purchase rates
nearly coincide (``purchase_rate_sigma`` ~ 0.01: the neck of the centred form); 2,000
gave none for all five (38-45 leapfrog steps per draw)."""

MARGINAL_SAMPLER: dict[str, tuple[float, int]] = {
    "BGNBD": (0.9, 600),
    "GammaGamma": (0.99, 1000),
}
"""Default NUTS ``(target_accept, tune)`` of partially pooled fits in the marginal form
with both hyperparameters integrated out (every segment centred, every ``<name>_mu``
hyperprior a Normal and every ``<name>_sigma`` hyperprior one of :func:`scale_grid`'s,
with fixed numbers: the defaults; see :func:`hierarchical_parameter`), per model kind,
for specs without covariates or calendar-time effects (what was measured). Where only
``<name>_mu`` can be integrated out, or with covariates or time effects,
:data:`MEAN_MARGINAL_SAMPLER`; other kinds and forms keep :data:`PARTIAL_TARGET_ACCEPT`
and :data:`PARTIAL_TUNE`.

BG/NBD, chosen on the CDNOW master acquisition cohorts and first-purchase-value terciles
(3 x ~8,000 customers each, 4 x 1000 draws; ``benchmarks/RESULTS.md``, "fourteenth
session"): at target_accept 0.9 every fit was free of divergences with 1,000 (seeds 1-4),
800 (1-4), 700 (1-8), 600 (5-8) and 500 (5-8) tuning steps, 48 fits in all, at 7.0
leapfrog steps per draw, minimum bulk ESS 3,900-5,300 and R-hat at most 1.005 whatever
the warm-up's length. 600 is one step above the shortest measured; ten segments of
~2,400 customers (seeds 1-3) sampled without divergences at 14 steps per draw and
minimum bulk ESS 1,500-2,300 (2,100-2,500 after 1,000 tuning steps). With ``sigma``
sampled (:data:`MEAN_MARGINAL_SAMPLER`) 1,000 tuning steps left a divergence in about one
fit in four. The Gamma-Gamma keeps the settings measured with ``sigma`` sampled: in this
form, 0 divergences for seeds 1-3 on both segmentations at 15.6-16.4 steps per draw."""

MEAN_MARGINAL_SAMPLER: dict[str, tuple[float, int]] = {
    "BGNBD": (0.9, 1500),
    "GammaGamma": (0.99, 1000),
}
"""Default NUTS ``(target_accept, tune)`` of partially pooled fits in the marginal form
with only ``<name>_mu`` integrated out (every segment centred and every ``<name>_mu``
hyperprior a Normal with fixed numbers, but a ``<name>_sigma`` hyperprior that
:func:`scale_grid` does not integrate), per model kind.

Chosen on the CDNOW master acquisition cohorts (3 x ~8,000 customers) and the
first-purchase-value terciles (3 x ~7,900 customers), 4 x 1000 draws, counting the fits
with any divergence. BG/NBD, after the compile-mode change of 2026-12-05 (the draws per
seed changed): (0.9, 1500) 0 of 5 fits on the cohorts and 1 of 3 on the terciles (a
single divergence) at 7.0-7.2 leapfrog steps per draw; (0.95, 1000), the earlier default,
1 of 3 and 1 of 3 (one divergence each) at 12.0-13.1 steps; (0.925, 1000) 2 of 5 (4
divergences) at 8.1-8.6; (0.9, 1000) 1 of 4 at 7.1; (0.8, 1000) 3 of 3 (4-8 each) at 6.9.
So a longer adaptation, not a higher acceptance target, is what keeps divergences rare,
and it costs fewer gradients (2,500 iterations x 7.1 steps against 2,000 x 12.5): about
20 % less time per fit. The Gamma-Gamma at (0.99, 1000) had 0 divergences for seeds 1-3
on both segmentations at 16.7-18.8 steps, against 0-6 at (0.95, 1000 or 2000) and
10.5-11.2 steps; re-checked after the compile-mode change: 0 divergences for seeds 1-3 on
both, 15.8-18.8 steps, max R-hat 1.003. In the plain centred form these fits needed
(0.995, 2000) and 28-40 steps per draw. Mixed forms (small segments non-centred), MBG/NBD
and Pareto/NBD were not measured, so they keep the cautious settings."""

CENTERED_MIN_CUSTOMERS = 1000
"""``centered="auto"``: segments with at least this many customers use the centred form.

A segment this large pins its own link-scale parameters to within about 0.1, well
inside the typical between-segment spread (``sigma`` ~ 0.4 a priori), which is where
the centred form samples better."""

FEW_CUSTOMERS = 30
"""Segments with fewer customers than this get a :class:`SegmentWarning` at fit time."""

MIN_MEAN_CUSTOMERS = 5
"""Fewer customers per segment than this on average is an error: the column is most
likely an identifier, not a segment."""


class SegmentWarning(UserWarning):
    """A segment has too few customers to say much on its own (the message says which)."""


def _labels(values: np.ndarray) -> np.ndarray:
    return np.array([str(v) for v in values], dtype=object)


def read_segments(
    rfm: Any, column: str, levels: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each customer's segment code and the segment labels.

    Parameters
    ----------
    rfm : DataFrame or mapping
        One row per customer with ``column``. Not modified.
    column : str
        The segment column: any values (strings, integers, a categorical); labels are
        their string forms.
    levels : sequence of str, optional
        Known labels (those of a fitted model). Without them the labels are learnt:
        the categories of a categorical column in their order (every category must
        have customers), else the distinct values, sorted.

    Returns
    -------
    codes : ndarray of int64
        Index into ``levels`` per customer.
    levels : tuple of str

    Raises
    ------
    ValueError
        Unknown column, missing values, unused categories, or (with ``levels``) values
        the fitted model has not seen.
    """
    if column not in rfm:
        have = list(getattr(rfm, "columns", rfm))
        raise ValueError(
            f"segment column {column!r} is not in the RFM table (columns: {have}); add it, "
            "e.g. rfm.merge(customers[['customer_id', 'channel']], on='customer_id')."
        )
    series = pd.Series(rfm[column]).reset_index(drop=True)
    missing = series.isna().to_numpy()
    if missing.any():
        raise ValueError(
            f"segment column {column!r}: {int(missing.sum())} of {missing.size} customers have "
            "no segment (NaN/None); fill them (e.g. with 'unknown') or drop those customers."
        )
    labels = _labels(series.to_numpy())
    if levels is None:
        if isinstance(series.dtype, pd.CategoricalDtype):
            learnt = _labels(np.asarray(series.cat.categories))
            used = set(labels)
            empty = [lv for lv in learnt if lv not in used]
            if empty:
                raise ValueError(
                    f"segment column {column!r}: categories {empty} have no customers in "
                    "the calibration data; a segment needs customers to be fitted. Drop "
                    "them with rfm[col].cat.remove_unused_categories()."
                )
        else:
            distinct = pd.unique(series)
            try:
                distinct = np.sort(distinct)
            except TypeError:  # mixed types: keep order of appearance
                pass
            learnt = _labels(distinct)
        if len(set(learnt)) != len(learnt):
            raise ValueError(
                f"segment column {column!r}: distinct values {list(learnt)} have equal "
                "string forms; make the column one type."
            )
        levels = tuple(learnt)
    levels = tuple(str(lv) for lv in levels)
    lookup = {lv: i for i, lv in enumerate(levels)}
    codes = np.fromiter((lookup.get(lv, -1) for lv in labels), dtype=np.int64, count=labels.size)
    unknown = codes < 0
    if unknown.any():
        new = sorted(set(labels[unknown]))
        raise ValueError(
            f"segment column {column!r}: {int(unknown.sum())} of {unknown.size} customers are "
            f"in segment(s) {new[:10]} that the model was not fitted on (known: "
            f"{list(levels)}); refit with them, or map them to a known segment."
        )
    return codes, levels


def check_segment_options(segments: Any, pooling: Any, centered: Any) -> None:
    """Raise a clear error for a bad ``segments=``, ``pooling=`` or ``centered=``."""
    if not isinstance(segments, str):
        raise TypeError(f"segments must name a column (a str), got {segments!r}.")
    if pooling not in POOLING:
        raise ValueError(f"pooling={pooling!r} is not one of {POOLING}.")
    if not (isinstance(centered, bool) or centered == "auto"):
        raise ValueError(f"centered must be True, False or 'auto', got {centered!r}.")


def check_segment_sizes(
    counts: np.ndarray, levels: Sequence[str], pooling: str, kind: str, what: str = "customers"
) -> None:
    """Error if segments average fewer than :data:`MIN_MEAN_CUSTOMERS` customers; warn
    (:class:`SegmentWarning`) for each fit with segments under :data:`FEW_CUSTOMERS`."""
    sizes = dict(zip(levels, (int(c) for c in counts), strict=True))
    shown = dict(list(sizes.items())[:20])
    more = "" if len(sizes) <= 20 else f" (and {len(sizes) - 20} more)"
    if counts.sum() < MIN_MEAN_CUSTOMERS * len(levels):
        raise ValueError(
            f"{kind}: {len(levels)} segments for {int(counts.sum())} {what} is too many "
            f"(fewer than {MIN_MEAN_CUSTOMERS} per segment on average; {what} per segment: "
            f"{shown}{more}). Is the segment column an identifier? Merge small segments."
        )
    small = {k: v for k, v in sizes.items() if v < FEW_CUSTOMERS}
    if small:
        consequence = {
            "partial": "their parameters are mostly the population's (partial pooling)",
            "none": "their parameters are mostly the prior (no pooling); consider "
            "pooling='partial'",
            "complete": "they share the population's parameters anyway (complete pooling)",
        }[pooling]
        warnings.warn(
            f"{kind}: segment(s) with fewer than {FEW_CUSTOMERS} {what}: {small}; {consequence}.",
            SegmentWarning,
            stacklevel=4,
        )


def segment_prior(prior: Prior) -> Prior:
    """Copy of ``prior`` with one independent draw per segment (``dims=("segment",)``)."""
    return with_dims(prior, ("segment",))


def centered_mask(centered: bool | Literal["auto"], counts: np.ndarray) -> np.ndarray:
    """Which segments use the centred form (one flag per segment).

    ``True``/``False``: all or none; ``"auto"``: the segments with at least
    :data:`CENTERED_MIN_CUSTOMERS` customers (``counts``).
    """
    if centered == "auto":
        return np.asarray(counts) >= CENTERED_MIN_CUSTOMERS
    if not isinstance(centered, bool):
        raise ValueError(f"centered must be True, False or 'auto', got {centered!r}.")
    return np.full(len(counts), centered)


def partial_sampler_defaults(spec: Any, counts: np.ndarray) -> tuple[float, int]:
    """Default NUTS ``(target_accept, tune)`` of a partially pooled fit of ``spec`` on
    segments with ``counts`` customers: :data:`MARGINAL_SAMPLER` in the marginal form with
    both hyperparameters integrated out (for a spec without covariates or calendar-time
    effects, the fits it was measured on), :data:`MEAN_MARGINAL_SAMPLER` in the marginal
    forms otherwise, else :data:`PARTIAL_TARGET_ACCEPT` and :data:`PARTIAL_TUNE`."""
    centered = centered_mask(spec.centered, counts)
    marginal, scale = True, True
    for name in spec.segment_links:
        mu_prior = spec.priors.get(f"{name}_mu") or spec.priors[f"{name}_mu_relative"]
        marginal = marginal and marginal_form(centered, mu_prior)
        scale = scale and scale_grid(spec.priors[f"{name}_sigma"], len(counts)) is not None
    # measured on segments alone: with covariates or calendar-time effects (whose own
    # warm-up diverged when shortened) the longer warm-up of the mu-only form stays
    alone = not spec.covariates and spec.time_effects is None
    if marginal and scale and alone and spec.kind in MARGINAL_SAMPLER:
        return MARGINAL_SAMPLER[spec.kind]
    if marginal and spec.kind in MEAN_MARGINAL_SAMPLER:
        return MEAN_MARGINAL_SAMPLER[spec.kind]
    return PARTIAL_TARGET_ACCEPT, PARTIAL_TUNE


def marginal_form(centered: np.ndarray, mu_prior: Prior) -> bool:
    """Whether :func:`hierarchical_parameter` samples a parameter in the marginal form:
    every segment centred and ``mu_prior`` a Normal with fixed numbers."""
    centered = np.asarray(centered, dtype=bool)
    return bool(centered.size and centered.all()) and normal_hyperprior(mu_prior) is not None


def normal_hyperprior(prior: Prior) -> tuple[float, float] | None:
    """``(mu, sigma)`` of a Normal prior with fixed numbers, else None.

    A prior with a ``transform`` or ``dims`` also gives None: the marginal form integrates
    ``mu`` out as a plain scalar Normal and would ignore them; the forms that sample
    ``mu`` (``prior.create_variable``) honour them."""
    if prior.transform is not None or prior.dims:
        return None
    if prior.distribution != "Normal" or set(prior.parameters) != {"mu", "sigma"}:
        return None
    values = prior.parameters.values()
    if not all(isinstance(v, int | float | np.number) for v in values):
        return None
    return float(prior.parameters["mu"]), float(prior.parameters["sigma"])


SCALE_STEP = 0.05
"""Largest spacing of :func:`scale_grid`'s nodes in ``log sigma`` (357 nodes for the
default ``Gamma(4, 10)`` with up to 51 centred segments). The spacing is also at most
half the prior's own width in ``log sigma`` and ``0.5 / sqrt(2 (K - 1))`` for ``K``
centred segments (the width of ``p(theta | sigma)`` in ``log sigma``), so the integrand
spans at least two nodes per unit of its width and the trapezoidal rule's error (of
order ``exp(-2 pi^2 width^2 / step^2)``) stays below 1e-8 (see :func:`scale_grid`)."""

SCALE_MAX_NODES = 2000
"""Most nodes :func:`scale_grid` builds; a prior that would need more gets None (``sigma``
is then sampled). 2,000 nodes at :data:`SCALE_STEP` span 100 units of ``log sigma`` (43
decades): a prior whose 1e-10 to ``1 - 1e-12`` quantiles lie more than ~90 units apart
(``Gamma(alpha, ...)`` with ``alpha`` below ~0.3, ``LogNormal`` with ``sigma`` above ~7)
is so vague on the log scale that integrating it gains nothing over sampling. The cap also
bounds the finer steps: priors narrower than ~0.01 in ``log sigma`` (standard deviation)
and, with the default ``Gamma(4, 10)``, more than ~1,600 centred segments are sampled
too. Below the cap the nodes cost little: each is a few operations per evaluation of the
log density and its gradient, against the likelihood's thousands of rows."""

SCALE_LOG_BOUND = 300.0
"""The nodes of :func:`scale_grid` lie within ``|log sigma| <= 300``, else it gives None.
The integrated density evaluates ``exp(-2 log sigma)`` (times the link values' spread,
and ``K / sigma^2`` in ``mu``'s conditional) and ``exp(2 log sigma)``, which overflow
double precision beyond ``|log sigma| = 354.9`` (an infinite term times a zero weight:
NaN log densities and gradients). 300 leaves a factor ``exp(109)`` (1e47) for what
multiplies them."""

_SCALE_PRIORS: dict[str, tuple[tuple[str, ...], Callable[..., Any]]] = {
    "Gamma": (("alpha", "beta"), lambda st, alpha, beta: st.gamma(alpha, scale=1.0 / beta)),
    "HalfNormal": (("sigma",), lambda st, sigma: st.halfnorm(scale=sigma)),
    "Exponential": (("lam",), lambda st, lam: st.expon(scale=1.0 / lam)),
    "LogNormal": (("mu", "sigma"), lambda st, mu, sigma: st.lognorm(sigma, scale=np.exp(mu))),
}


def scale_grid(prior: Prior, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Quadrature of a between-segment ``sigma`` prior on the log scale, or None.

    For a Gamma, HalfNormal, Exponential or LogNormal prior with fixed numbers (no
    ``transform``, no ``dims``), for ``k`` centred segments: equally spaced values of
    ``log sigma`` from a hundredth of the prior's 1e-10 quantile to a hundred times its
    ``1 - 1e-12`` quantile, and the log weights ``log(p(sigma) sigma h)`` (prior density,
    Jacobian of the log, spacing ``h``), so that ``sum(exp(log_w) g(sigma))``
    approximates ``E[g(sigma)]`` under the prior for smooth ``g`` (the trapezoidal rule,
    exponentially accurate for smooth integrands that vanish at both ends, once ``h`` is
    a fraction of the integrand's width).

    Spacing. ``h`` is the smallest of :data:`SCALE_STEP`, half the prior's width in
    ``log sigma`` (half the distance from its 16th to its 84th percentile, which is the
    standard deviation for a LogNormal) and ``0.5 / sqrt(2 (k - 1))``: ``p(theta |
    sigma)`` for ``k`` values spread by ``S`` (their sum of squared deviations from
    their mean) behaves like ``sigma^-(k-1) exp(-S / (2 sigma^2))``, whose width in
    ``log sigma`` at its peak is ``1 / sqrt(2 (k - 1))``. The integrand is the product
    of the two, no narrower than about ``1 / sqrt(2)`` of the narrower factor, so it
    spans more than a node; its log density then equals scipy's adaptive quadrature to
    1e-8 (``tests/test_segments.py``; the fixed step 0.05 gave errors of 2e-8 at 200
    segments, 8e-4 at 500). The error grows where the integrand is narrower than both
    factors: under strong prior-data conflict (link values spread far beyond where the
    prior puts ``sigma``), where both factors are steep where they meet.

    Ends. The lower end lies two decades below the prior's 1e-10 quantile because
    ``p(theta | sigma)`` grows like ``sigma^-(k-1)`` as ``sigma`` falls while the
    segments' values stay apart by more than ``sigma``: nearly equal segments move the
    posterior of ``sigma`` below where its prior has mass. Below the grid the prior is,
    in effect, truncated. The upper end lies two decades above the ``1 - 1e-12``
    quantile because segments spread by more than the prior allows move the posterior
    above it, as far as the prior's tail lets them: above the top node ``sigma_top``,
    ``p(theta | sigma)`` is at most ``exp(|theta - m0|^2 / (2 sigma_top^2))`` times its
    value at ``sigma_top`` (``m0`` the prior mean of ``mu``, ``|.|`` the Euclidean norm
    over the ``k`` values; the ``sigma^-(k-1)`` factor and ``mu``'s variance only shrink
    it, the two exponents gain at most that together). So the part of the integral above
    the grid is at most ``P(sigma > sigma_top) exp(|theta - m0|^2 / (2 sigma_top^2))
    p(theta | sigma_top)``, a vanishing fraction unless ``|theta - m0|`` approaches
    ``sigma_top sqrt(2 log(1 / P(sigma > sigma_top)))``: 31,000 on the link scale for
    the default ``Gamma(4, 10)``, 25,000 for ``HalfNormal(0.05)``, 70,000 for
    ``LogNormal(-1, 0.7)``. That is what remains truncated. At the ``1 - 1e-12`` quantile
    itself (the grid's former upper end) these were 27, 2.7 and 380: a tight prior on
    ``sigma`` with segments a few units apart lost most of the integral.

    Returns None for other priors (heavy tails, parameters that are themselves random, a
    transform or dims, which the integrated form would ignore), when the quantiles are
    not finite or the grid reaches beyond ``|log sigma|`` = :data:`SCALE_LOG_BOUND`, or
    when it needs more than :data:`SCALE_MAX_NODES` nodes: ``sigma`` is then sampled.

    Parameters
    ----------
    prior : Prior
        The ``sigma`` hyperprior.
    k : int
        The number of centred segments whose link values the grid integrates over.

    Returns
    -------
    log_sigma, log_weight : ndarray, ndarray
    """
    if prior.transform is not None or prior.dims:
        return None
    known = _SCALE_PRIORS.get(prior.distribution)
    if known is None or set(prior.parameters) != set(known[0]):
        return None
    values = [prior.parameters[key] for key in known[0]]
    if not all(isinstance(v, int | float | np.number) for v in values):
        return None
    from scipy import stats

    dist = known[1](stats, *(float(v) for v in values))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        # ppf(1 - p) rounds for p below 1e-16; isf keeps the upper tail's precision
        low, high = np.log([dist.ppf(1e-10), dist.isf(1e-12)]) + np.log([0.01, 100.0])
        q16, q84 = np.log(dist.ppf([0.5 - 0.3413447460685429, 0.5 + 0.3413447460685429]))
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    if low < -SCALE_LOG_BOUND or high > SCALE_LOG_BOUND:
        return None
    widths = [SCALE_STEP, 0.5 * (q84 - q16) / 2.0, 0.5 / np.sqrt(2.0 * max(k - 1, 1))]
    step = min(w for w in widths if np.isfinite(w) and w > 0)
    nodes = int(np.ceil((high - low) / step)) + 1
    if nodes > SCALE_MAX_NODES:
        return None
    log_sigma = np.linspace(low, high, nodes)
    step = log_sigma[1] - log_sigma[0]
    log_weight = dist.logpdf(np.exp(log_sigma)) + log_sigma + np.log(step)
    return log_sigma, log_weight


def _marginal_link_logp(theta: Any, centre: Any, s0: float, grid: tuple) -> Any:
    """Per node of ``grid``: ``log w + log p(theta | sigma)`` with ``theta ~ N(centre,
    sigma^2 I + s0^2 11')`` (``mu ~ N(centre, s0)`` integrated out), up to the constant
    ``-(K log(2 pi) + log K) / 2`` (``K`` values)."""
    import pytensor.tensor as pt

    log_sigma, log_weight = grid
    k = theta.shape[-1]
    mean = pt.mean(theta, axis=-1, keepdims=True)
    spread = pt.sum((theta - mean) ** 2, axis=-1, keepdims=True)
    var_mean = np.exp(2 * log_sigma) / k + s0**2
    return (
        log_weight
        - 0.5 * (mean - centre) ** 2 / var_mean
        - 0.5 * pt.log(var_mean)
        - (k - 1) * log_sigma
        - 0.5 * spread * np.exp(-2 * log_sigma)
    )


def _scale_marginal_links(
    name: str, centre: Any, s0: float, sigma_prior: Prior, grid: tuple, k: int
) -> tuple[Any, Any, Any]:
    """The marginal form with ``mu`` and ``sigma`` integrated out (see
    :func:`hierarchical_parameter`): the sampled link values, ``sigma`` and ``mu``."""
    import pymc as pm
    import pytensor.tensor as pt
    from pymc.distributions.shape_utils import rv_size_is_none

    log_sigma, _ = grid
    step = log_sigma[1] - log_sigma[0]
    scale_dist = getattr(pm, sigma_prior.distribution)
    scale_params = {p: float(v) for p, v in sigma_prior.parameters.items()}

    def logp(value: Any, centre: Any, s0_: Any, shape: Any) -> Any:
        nodes = _marginal_link_logp(value, centre[..., None], s0, grid)
        return pt.logsumexp(nodes, axis=-1) - 0.5 * (k * np.log(2 * np.pi) + np.log(k))

    def dist(centre: Any, s0_: Any, shape: Any, size: Any) -> Any:
        # the hierarchical prior drawn directly (prior predictive draws)
        size = pt.shape(centre) if rv_size_is_none(size) else size
        sigma = scale_dist.dist(**scale_params, size=size)
        mu = pm.Normal.dist(centre, s0_, size=size)
        noise = pm.Normal.dist(0.0, 1.0, size=pt.concatenate([size, pt.shape(shape)[-1:]]))
        return mu[..., None] + sigma[..., None] * noise

    def support_point(rv: Any, size: Any, centre: Any, s0_: Any, shape: Any) -> Any:
        return pt.zeros_like(shape) + centre[..., None]

    theta = pm.CustomDist(
        f"{name}_link_c",
        centre,
        s0,
        np.zeros(k),
        dist=dist,
        logp=logp,
        support_point=support_point,
        signature="(),(),(k)->(k)",
    )
    # sigma given the link values: inverse CDF of its posterior on the grid, at
    # Phi(sigma_z) with sigma_z ~ N(0, 1) (uniform within a node's cell of width step)
    nodes = _marginal_link_logp(theta, centre, s0, grid)
    mass = pt.exp(nodes - pt.max(nodes))
    cdf = pt.cumsum(mass) / pt.sum(mass)
    sigma_z = pm.Normal(f"{name}_sigma_z", mu=0.0, sigma=1.0)
    u = 0.5 * pt.erfc(-sigma_z / np.sqrt(2.0))
    cell = pt.minimum(pt.sum(pt.lt(cdf, u)), log_sigma.size - 1)
    cell_mass = mass[cell] / pt.sum(mass)
    within = pt.clip((u - (cdf[cell] - cell_mass)) / pt.maximum(cell_mass, 1e-300), 0.0, 1.0)
    sigma = pm.Deterministic(
        f"{name}_sigma", pt.exp(pt.as_tensor(log_sigma)[cell] + (within - 0.5) * step)
    )
    return theta, sigma, pt.mean(theta)


def hierarchical_parameter(
    name: str,
    link: Literal["log", "logit", "log_excess"],
    mu_prior: Prior,
    sigma_prior: Prior,
    centered: np.ndarray,
    mu_shift: Any = None,
) -> Any:
    """One segment-level parameter under a Normal prior on its ``link`` scale.

    The prior is ``link(theta_s) ~ N(mu, sigma)`` with hyperpriors on ``<name>_mu`` and
    ``<name>_sigma`` (with ``mu_shift``, ``mu_prior`` is that of ``<name>_mu_relative``
    and ``<name>_mu = mu_shift + <name>_mu_relative``). Segments flagged in ``centered``
    are centred, the others non-centred: ``mu + sigma * <name>_z``.

    When every segment is centred and ``mu_prior`` is a Normal with fixed numbers, no
    transform and no dims (the defaults), ``mu`` is integrated out of the centred
    segments' prior (the marginal form), and with it ``sigma`` when :func:`scale_grid`
    integrates its prior (Gamma, HalfNormal, Exponential or LogNormal with fixed numbers,
    no transform or dims, neither extremely vague nor extremely tight on the log scale,
    and up to ~1,600 centred segments for the default ``Gamma(4, 10)``):

    - ``mu`` and ``sigma`` integrated out: the ``K`` centred link values
      ``<name>_link_c`` are sampled under their marginal prior ``p(theta) = ∫ p(sigma)
      N(theta | m0 1, sigma^2 I + s0^2 11') dsigma`` (``mu ~ N(m0, s0)`` integrated in
      closed form, ``sigma`` on the grid of :func:`scale_grid`). ``sigma`` is then the
      deterministic inverse CDF of its posterior given ``theta`` (on the same grid) at
      ``Phi(<name>_sigma_z)``, ``<name>_sigma_z ~ N(0, 1)``, and ``mu`` is drawn given
      ``theta`` and ``sigma`` as below. The sampler sees only the link values and two
      independent standard normals per quantity: no funnel between the link values and
      ``sigma``. On the CDNOW master cohorts and first-purchase-value terciles (3 x
      ~8,000 customers each) it sampled without divergences after 500 to 1,000 tuning
      steps (48 fits, seeds 1-8), where the form below needed 1,500 for that.
    - ``mu`` integrated out, ``sigma`` sampled: their link values are sampled as their
      mean ``<name>_link_mean ~ N(m0, sqrt(sigma^2 / K + s0^2))`` plus deviations
      ``<name>_link_dev ~ ZeroSumNormal(sigma)``.

    In both, ``mu`` is the deterministic ``post_mean + post_sd * <name>_mu_z`` with
    ``<name>_mu_z ~ N(0, 1)`` and ``post_mean``, ``post_sd`` those of ``mu`` given the
    centred values and ``sigma``. That is an exact change of variables (the joint
    distribution of ``mu``, ``sigma`` and every ``theta_s`` is unchanged, up to the
    quadrature of ``sigma``'s prior on a grid that covers all but 1e-10 of it) that
    removes the funnel between ``mu`` and ``sigma``: with few segments pinned by their
    data, ``mu``'s spread given ``sigma`` shrinks and grows with ``sigma``. On the CDNOW
    master cohorts (3 x ~8,000 customers, target_accept 0.9, 1,000 tuning steps) the
    second form gave 1 divergence at 7.1 leapfrog steps per draw against 90 divergences
    at 13.7 for the plain centred form. Otherwise (some or all segments non-centred, or
    another hyperprior) ``<name>_mu`` and ``<name>_sigma`` are sampled.

    Creates the deterministic ``name`` on the natural scale with dims ``("segment",)``:
    ``exp``, ``invlogit`` or ``1 + exp`` (``"log_excess"``, for a parameter that must
    exceed 1). Must be called inside a model whose coords have ``segment``.

    Returns
    -------
    TensorVariable
        ``name`` per segment, shape ``(n_segments,)``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    centered = np.asarray(centered, dtype=bool)
    index_c = np.flatnonzero(centered)
    index_nc = np.flatnonzero(~centered)
    theta = pt.zeros(centered.size)
    if marginal_form(centered, mu_prior):
        k = index_c.size
        grid = scale_grid(sigma_prior, k)
        m0, s0 = normal_hyperprior(mu_prior)
        centre = m0 if mu_shift is None else mu_shift + m0
        if grid is not None:
            direct, sigma, mean = _scale_marginal_links(name, centre, s0, sigma_prior, grid, k)
        else:
            sigma = sigma_prior.create_variable(f"{name}_sigma")
            mean = pm.Normal(f"{name}_link_mean", mu=centre, sigma=pt.sqrt(sigma**2 / k + s0**2))
            direct = pt.zeros(k) + mean
            if k > 1:
                direct = direct + pm.ZeroSumNormal(f"{name}_link_dev", sigma=sigma, shape=k)
        precision = 1.0 / s0**2 + k / sigma**2
        post_mean = (centre / s0**2 + k * mean / sigma**2) / precision
        mu_z = pm.Normal(f"{name}_mu_z", mu=0.0, sigma=1.0)
        mu = pm.Deterministic(f"{name}_mu", post_mean + mu_z / pt.sqrt(precision))
        if mu_shift is not None:
            pm.Deterministic(f"{name}_mu_relative", mu - mu_shift)
        theta = pt.set_subtensor(theta[index_c], direct)
    else:
        if mu_shift is None:
            mu = mu_prior.create_variable(f"{name}_mu")
        else:
            relative = mu_prior.create_variable(f"{name}_mu_relative")
            mu = pm.Deterministic(f"{name}_mu", mu_shift + relative)
        sigma = sigma_prior.create_variable(f"{name}_sigma")
        if index_c.size:
            direct = pm.Normal(f"{name}_link_c", mu=mu, sigma=sigma, shape=index_c.size)
            theta = pt.set_subtensor(theta[index_c], direct)
    if index_nc.size:
        z = pm.Normal(f"{name}_z", mu=0.0, sigma=1.0, shape=index_nc.size)
        theta = pt.set_subtensor(theta[index_nc], mu + sigma * z)
    if link == "log":
        natural = pt.exp(theta)
    elif link == "logit":
        natural = pm.math.invlogit(theta)
    elif link == "log_excess":  # parameters > 1: log(theta - 1)
        natural = 1.0 + pt.exp(theta)
    else:
        raise ValueError(f"unknown link {link!r}; use 'log', 'logit' or 'log_excess'.")
    return pm.Deterministic(name, natural, dims="segment")


def segment_priors(
    priors: Mapping[str, Prior],
    pooling: Pooling,
    links: Mapping[str, str],
    centered: bool | Literal["auto"],
    counts: np.ndarray,
    scale: Any = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Per-segment prior variables (dims ``("segment",)``) in the current model context.

    ``pooling="none"``: each of ``priors`` independently per segment
    (:func:`segment_prior`), as the variable ``names[name]`` (default: ``name``);
    ``"partial"``: the hierarchical prior
    (:func:`hierarchical_parameter`) on each quantity of ``links`` with the hyperpriors
    ``<name>_mu``/``<name>_sigma`` of ``priors``, centred per segment as
    :func:`centered_mask` of ``centered`` and the segments' customer ``counts`` says. A
    quantity with a log link may have ``<name>_mu_relative`` instead of ``<name>_mu``:
    relative to the data's ``scale``, ``<name>_mu = log(scale) + <name>_mu_relative``.
    """
    if pooling == "none":
        names = names or {}
        return {
            name: segment_prior(prior).create_variable(names.get(name, name))
            for name, prior in priors.items()
        }
    import pymc as pm

    mask = centered_mask(centered, counts)
    created = {}
    for name, link in links.items():
        mu_prior, shift = priors.get(f"{name}_mu"), None
        if mu_prior is None:
            mu_prior, shift = priors[f"{name}_mu_relative"], pm.math.log(scale)
        sigma_prior = priors[f"{name}_sigma"]
        created[name] = hierarchical_parameter(name, link, mu_prior, sigma_prior, mask, shift)
    return created


def by_segment(
    fn: Callable[[dict[str, Any], CompressedRFM], Any],
    params: Mapping[str, Any],
    data: CompressedRFM,
) -> Any:
    """Per-row log-likelihood of segmented data, one segment block at a time.

    Parameters
    ----------
    fn : callable
        ``fn(params, block)``: the one-population log-likelihood of a block's rows, with
        parameters broadcasting against its rows.
    params : mapping
        Each parameter with the segment axis last: a PyTensor vector ``(n_segments,)`` or
        numpy draws ``(chain, draw, n_segments)``.
    data : CompressedRFM
        Segmented data.

    Returns
    -------
    array or TensorVariable
        Per row (last axis), in the row order of ``data``.
    """
    parts = [
        fn({k: v[..., code, None] for k, v in params.items()}, block)
        for code, _, block in data.segment_blocks()
    ]
    if any(type(p).__module__.startswith("pytensor") for p in parts):
        import pytensor.tensor as pt

        return pt.concatenate(parts, axis=-1)
    return np.concatenate(parts, axis=-1)


def sum_by_segment(
    fn: Callable[[dict[str, Any], CompressedRFM], Any],
    params: Mapping[str, Any],
    data: CompressedRFM,
) -> Any:
    """``Σ_segments fn(segment's params, segment's block)``: a total over segmented data
    (e.g. the count-weighted log-likelihood), one segment block at a time (see
    :func:`by_segment` for ``params``)."""
    total: Any = 0.0
    for code, _, block in data.segment_blocks():
        total = total + fn({k: v[..., code, None] for k, v in params.items()}, block)
    return total


class PoolingQuantities:
    """The quantities partial pooling works on, for a spec (a mixin of
    :class:`clvbayes.models.base.ModelSpec`: it needs ``family``, ``kind``, ``params``
    and ``complete``), from its family's reparametrisation."""

    family: Any
    kind: str
    params: tuple[str, ...]
    complete: Callable[[Mapping[str, Any]], dict[str, Any]]

    def pooled_values(self, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The quantities partial pooling works on (keys of ``segment_links``) from the
        model parameters, on their natural scale (the family's reparametrisation)."""
        pooled = self._reparametrisation().pooled
        return pooled({k: np.asarray(params[k], dtype=float) for k in self.params})

    def from_pooled_values(self, pooled: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The inverse of :meth:`pooled_values`: model parameters."""
        links = self._reparametrisation().links
        return self.complete({k: np.asarray(pooled[k], dtype=float) for k in links})

    def link_values(self, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """:meth:`pooled_values` on the link scale of the hierarchical prior (where
        ``<name>_mu`` and ``<name>_sigma`` live): what segments are compared and shrunk on."""
        return self._reparametrisation().link_values({k: params[k] for k in self.params})

    def from_link_values(self, links: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Model parameters from link-scale values (the inverse of :meth:`link_values`)."""
        return self._reparametrisation().from_link_values(links)

    def _reparametrisation(self) -> Any:
        if self.family.reparametrisation is None:
            raise NotImplementedError(f"{self.kind} has no segment parametrisation.")
        return self.family.reparametrisation
