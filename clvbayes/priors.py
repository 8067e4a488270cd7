"""Default priors, their reasoning, and coercion of user priors.

Priors are typed data: :class:`pymc_extras.prior.Prior` objects, or dicts in Prior's
serialised form (``{"dist": "Gamma", "kwargs": {"alpha": 2, "beta": 1}}``), keyed by
pymc-marketing's parameter names (``r, alpha, a, b`` or ``r, alpha, phi_dropout,
kappa_dropout`` for the BG/NBD; ``p, q, v`` for the Gamma-Gamma), so a pymc-marketing
``model_config`` ports unchanged. An unknown key is an error. User objects are copied
before use and never modified.

Why these defaults
------------------
All defaults are proper, weakly informative and heavy-tailed (half Student-t with 3
degrees of freedom): they rule out absurd magnitudes (a shape parameter of 10^6) without
pulling estimates that the data determine. On the CDNOW sample (2,357 customers) the
posterior means of ``r`` and ``alpha`` land within 1-2% of the maximum-likelihood values
and every 90% interval covers them (``tests/test_models_cdnow.py``).

* ``r`` (shape of the purchase-rate heterogeneity): typical values 0.1-3.
  ``HalfStudentT(nu=3, sigma=1)``.
* ``alpha`` (scale of purchase rates, in the time unit of the data: about 4 in weeks on
  CDNOW, 30 in days): ``HalfStudentT(nu=3, sigma=20)`` covers weeks, days and months.
* The dropout Beta(a, b) is parametrised by its mean ``phi_dropout = a / (a + b)`` with
  a uniform ``Beta(1, 1)`` prior (any mean dropout probability per purchase is equally
  plausible) and its concentration ``kappa_dropout = a + b`` with ``HalfCauchy(1)``.
  The heterogeneity of dropout is ``rho = 1 / (a + b + 1)`` (the share of the variance
  of a customer's dropout indicator that is between customers: 0 when all customers
  share one dropout probability, 1 when each either drops at once or never); a uniform
  prior on ``rho`` is the density ``(1 + kappa)^-2`` on ``kappa``, and ``HalfCauchy(1)``
  is its close, standard relative (same ``kappa^-2`` tail, similar mass below 3). So
  the prior is flat on both the mean and the heterogeneity of dropout. The data say
  little about ``kappa`` (dropout is never observed), and a prior that is nearly flat in
  ``kappa`` itself, such as the ``HalfStudentT(3, 10)`` used before, lets the
  likelihood's long right tail push ``a`` and ``b`` up: on the CDNOW sample their
  posterior means sat 11-16 % above the maximum-likelihood values (0.88 and 2.81) and
  the holdout forecast of repeat purchases dropped to 1,641, below the ML plug-in's
  1,653 (actual 1,882); with ``HalfCauchy(1)`` the means are 0.79 and 2.45 and the
  forecast is 1,665 (master: 16,882 vs the plug-in's 16,874). pymc-marketing's default,
  ``Pareto(1, 1)`` on ``kappa``, has the same tail but forbids ``a + b < 1``
  (U-shaped dropout distributions). In the (a, b) coordinates the posterior is a narrow
  curved ridge; in (phi, kappa) it is close to independent, which NUTS samples with far
  fewer gradient evaluations. Passing ``a`` and ``b`` priors uses them directly instead.
* Gamma-Gamma ``p`` and ``q`` (shapes): ``HalfStudentT(nu=3, sigma=10)``.
  pymc-marketing's defaults (Weibull(2, 1) for ``p`` and ``q``) put almost no mass at
  CDNOW's p = 6.25.
* Gamma-Gamma ``v`` (the scale of spend, in currency units) gets its default prior
  *relative to the data's mean spend* ``m`` (the mean ``monetary_value`` of the customers
  the model uses): ``v = m x v_relative`` with ``v_relative ~ HalfStudentT(nu=3,
  sigma=3)``. A prior in currency units makes the answer depend on the currency: with
  the former ``HalfStudentT(3, 100)`` on ``v``, the same spends in cents instead of
  dollars moved the posterior mean of ``p`` from 6.17 to 7.67 (the prior then pulls
  ``v`` hundredfold below the data's scale). Relative to ``m`` the posterior of ``p``
  and ``q`` is the same in any currency and ``v`` scales with it
  (``tests/test_bad_input_models.py``). Why ``sigma=3``: the mean spend per
  transaction is ``p v / (q - 1)``, of which ``m`` is an estimate, so ``v / m`` is about
  ``(q - 1) / p``: 0.44 on CDNOW (p = 6.25, q = 3.74), and below 6 for shapes ``p >=
  0.5``, ``q <= 4``; the half Student-t's bulk covers that and its tail leaves room for
  more. On CDNOW (``m`` = $35) this is ``sigma = 105`` dollars, the former default, so
  CDNOW's fits are unchanged. A prior on ``v`` itself (pymc-marketing's name, in currency
  units) replaces ``v_relative``.

Hierarchical (segmented) models
-------------------------------
With ``pooling="partial"`` each segment's parameter is ``link(theta_s) = mu + sigma z_s``
(log link for positive parameters, logit for ``phi_dropout``), and the priors are on
``<name>_mu`` and ``<name>_sigma`` (:data:`BGNBD_HIERARCHICAL_PRIORS`,
:data:`GAMMA_GAMMA_HIERARCHICAL_PRIORS`). The BG/NBD's purchase side is pooled as
``r`` and the mean purchase rate ``purchase_rate = r / alpha`` (``alpha`` follows):
within a segment ``log r`` and ``log alpha`` are strongly correlated (0.75 on CDNOW
cohorts) while ``log r`` and ``log(r/alpha)`` are nearly independent, which on the
CDNOW cohorts cut NUTS divergences from 18 to 3 per 1,000 draws. Likewise the
Gamma-Gamma is pooled on ``p``, ``q`` and the mean spend per transaction
``mean_spend = p v / (q - 1)`` (``v`` follows), with ``q > 1`` (``log(q - 1)`` link):
a segment's mean spend is what its data pin down, and it must be finite for a CLV.

* ``<name>_mu`` is Normal on the link scale, centred on a typical published value with a
  wide spread: ``r_mu ~ N(log 0.5, 1.5)`` puts 95 % of the prior median r in
  0.03-9.5; ``purchase_rate_mu ~ N(log 0.1, 2)`` covers weekly (CDNOW: 0.05) and daily
  rates; ``phi_dropout_mu ~ N(0, 1.5)`` (logit) is close to uniform on the mean dropout
  probability; ``kappa_dropout_mu ~ N(log 5, 1.5)``; Gamma-Gamma ``p_mu ~ N(log 5,
  1.5)``, ``q_mu ~ N(log 3, 1.5)`` on ``log(q - 1)``. The population's log mean spend
  ``mean_spend_mu`` is, like ``v`` above, relative to the data's mean spend ``m`` (so the
  answer does not depend on the currency): ``mean_spend_mu = log m +
  mean_spend_mu_relative`` with ``mean_spend_mu_relative ~ N(0, 1.5)``: ``m`` estimates
  the mean spend directly, and 1.5 on the log scale still allows a factor 20 either way.
  A prior on ``mean_spend_mu`` itself (log currency units) replaces it.
* ``<name>_sigma ~ Gamma(4, 10)`` (mean 0.4, 90 % in 0.14-0.78): segments' parameters
  typically differ by a factor ``exp(0.4) = 1.5``, and a factor 2 stays plausible.
  With a handful of segments sigma is barely identified and its prior shapes both the
  answer and the posterior geometry. This zero-avoiding prior (Chung et al. 2013) keeps
  the sampler out of the ``sigma -> 0`` neck, where large segments (centred, see
  :mod:`clvbayes.models.hierarchy`) diverge; its upper tail is lighter than a
  half-normal's, which keeps it out of the region where small segments' non-centred
  ``z_s`` are pinned by the data. Measured on the CDNOW master cohorts (centred,
  target_accept 0.99): ``Gamma(2, 5)`` (mean 0.4, 90 % in 0.07-0.95) gave 6
  divergences at 56 leapfrog steps per draw, ``Gamma(4, 10)`` none at 31. A tighter
  ``Gamma(2, 10)`` over-shrank genuinely different small segments: its 90 % intervals
  covered the truth in only 70 % of cases in ``tests/test_segments_recovery.py``.
  Pass another prior (``{"r_sigma": Prior(...)}``) to say otherwise.

``pooling="none"`` gives every segment the plain priors above, independently.

Support
-------
Every prior must live where its parameter does: shapes and scales (``r``, ``alpha``,
``a``, ``b``, ``kappa_dropout``, ``s``, ``beta``, ``p``, ``q``, ``v``, ``v_relative``) and
the ``<name>_sigma`` hyperparameters are positive, ``phi_dropout`` is a probability, and
only the link-scale ``<name>_mu`` (and ``<name>_mu_relative``) take any real value
(:func:`prior_support`). A user prior is checked when the spec is created
(:func:`check_prior_support`): a ``Normal`` on ``r`` gives negative values, which NUTS
would meet as PyMC's ``SamplingError`` after compiling; the error names the parameter
and a distribution that fits.

Covariate coefficients
----------------------
With customer covariates (``purchase_covariates=[...]`` etc., see
:mod:`clvbayes.math.covariates`) the priors sit where they mean something whatever the
covariates' units:

* The coefficient prior (``purchase_coefficient``, ``dropout_coefficient``,
  ``spend_coefficient``; default :data:`COEFFICIENT_PRIOR`, ``Normal(0, 1)``) is on the
  coefficient of the *standardized* covariate, ``<coefficient>_per_sd``: the change in
  the log of the scaled parameter per standard deviation of the covariate in the fitted
  data (for a 0/1 column with share ``p`` of ones, ``sd = sqrt(p (1 - p))``, at most
  0.5). The posterior also holds the coefficient per unit of the covariate as given
  (``<coefficient>``, CLVTools' and pymc-marketing's scale).
* The priors of the population parameters (``r, alpha, ...``, or ``phi_dropout,
  kappa_dropout``) are those of a customer whose covariates equal their means in the
  fitted data, the typical customer, for whom the defaults above were chosen; the
  posterior's ``alpha`` etc. are the values at covariates 0, the baseline of CLVTools
  and pymc-marketing (``alpha_scale``).

Why ``Normal(0, 1)`` per standard deviation. A covariate can only explain heterogeneity
the model already has: with Gamma shape ``r`` the log of the customers' purchase rates has
standard deviation ``sqrt(trigamma(r))``: 2.2 at ``r = 0.5``, 1.3 at ``r = 1``, 0.6 at
``r = 3`` (the dropout and spend sides are similar: CDNOW's ``s = 0.6``, ``q = 3.7``).
A per-sd coefficient of 1 (a factor ``e`` per sd) is already a strong covariate; the
prior keeps 95 % of its mass within +-2 (a factor 7.4 per sd), so every effect a single
covariate can plausibly have is a priori plausible, and rules out the values beyond +-3
to 4 that only quasi-separation produces (a small category whose customers never buy
again drives a maximum-likelihood coefficient towards infinity). Published effects sit
well inside: CLVTools' apparel fit (gender and channel, each about half of the
customers, sd ~0.5) has per-sd coefficients 0.14-0.40. On simulated data with per-sd
effects of 0.5 (``tests/test_covariates_recovery.py``)
the posterior means are within a few per cent of the maximum-likelihood ones and the 90 %
intervals cover the truth at the nominal rate: the prior does not shrink effects the data
can see. Scaling by the data's standard deviation is what makes one default serve a 0/1
flag and an order value in dollars alike; it was set from these plausibility bounds, not
from any data set's holdout fit. ``FLAT_PRIORS(..., "purchase_coefficient")`` gives flat
coefficients (maximum likelihood with ``method="map"``).

``notebooks/01_quickstart.ipynb`` shows the prior predictive check: the repeat-purchase
histograms these priors imply (:func:`clvbayes.ppc.prior_draws` and
:func:`clvbayes.ppc.frequency_histogram_check`).
"""

from __future__ import annotations

import copy
import functools
import json
import types
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from clvbayes.imports import import_deferred


def _prior_module() -> types.ModuleType:
    """``pymc_extras.prior``, imported without running ``pymc_extras/__init__.py`` first.

    That ``__init__`` imports pymc-extras' inference, marginalisation and state-space
    modules (1.35 s of a fresh process; pymc-extras 0.15, 2-core machine), of which the
    ``Prior`` class needs none (:mod:`clvbayes.imports`): code that uses the package
    (``pymc_extras.fit_pathfinder``, ``from pymc_extras import ...``) still gets all of it.
    """
    return import_deferred("pymc_extras", "pymc_extras.prior")


Prior = _prior_module().Prior

__all__ = [
    "BGNBD_HIERARCHICAL_PRIORS",
    "BGNBD_PRIORS",
    "COEFFICIENT_PRIOR",
    "FLAT_PRIORS",
    "GAMMA_GAMMA_HIERARCHICAL_PRIORS",
    "GAMMA_GAMMA_PRIORS",
    "PARETO_NBD_PRIORS",
    "Prior",
    "check_prior_support",
    "prior_support",
    "resolve_priors",
    "with_dims",
]

BGNBD_PRIORS: dict[str, Prior] = {
    "r": Prior("HalfStudentT", nu=3, sigma=1),
    "alpha": Prior("HalfStudentT", nu=3, sigma=20),
    "phi_dropout": Prior("Beta", alpha=1, beta=1),
    "kappa_dropout": Prior("HalfCauchy", beta=1.0),
}

GAMMA_GAMMA_PRIORS: dict[str, Prior] = {
    "p": Prior("HalfStudentT", nu=3, sigma=10),
    "q": Prior("HalfStudentT", nu=3, sigma=10),
    # v = (the data's mean spend) x v_relative: scale-free (see the module docstring)
    "v_relative": Prior("HalfStudentT", nu=3, sigma=3),
}

#: Hyperpriors of the partially pooled BG/NBD (link scale; see the module docstring).
_SEGMENT_SIGMA = Prior("Gamma", alpha=4.0, beta=10.0)  # see "Hierarchical (segmented) models"

BGNBD_HIERARCHICAL_PRIORS: dict[str, Prior] = {
    "r_mu": Prior("Normal", mu=float(np.log(0.5)), sigma=1.5),
    "r_sigma": _SEGMENT_SIGMA,
    "purchase_rate_mu": Prior("Normal", mu=float(np.log(0.1)), sigma=2.0),
    "purchase_rate_sigma": _SEGMENT_SIGMA,
    "phi_dropout_mu": Prior("Normal", mu=0.0, sigma=1.5),
    "phi_dropout_sigma": _SEGMENT_SIGMA,
    "kappa_dropout_mu": Prior("Normal", mu=float(np.log(5.0)), sigma=1.5),
    "kappa_dropout_sigma": _SEGMENT_SIGMA,
}

#: Hyperpriors of the partially pooled Gamma-Gamma model (log scale).
GAMMA_GAMMA_HIERARCHICAL_PRIORS: dict[str, Prior] = {
    "p_mu": Prior("Normal", mu=float(np.log(5.0)), sigma=1.5),
    "p_sigma": _SEGMENT_SIGMA,
    "q_mu": Prior("Normal", mu=float(np.log(3.0)), sigma=1.5),
    "q_sigma": _SEGMENT_SIGMA,
    # mean_spend_mu = log(the data's mean spend) + mean_spend_mu_relative: scale-free
    "mean_spend_mu_relative": Prior("Normal", mu=0.0, sigma=1.5),
    "mean_spend_sigma": _SEGMENT_SIGMA,
}


#: Default priors (weakly informative, heavy-tailed half Student-t with 3 d.o.f.).
#: ``r`` and ``s`` are Gamma shapes of the purchase and dropout rates: published fits
#: lie in 0.1-3 (CDNOW: 0.55 and 0.61), so ``sigma=1``. ``alpha`` and ``beta`` are
#: scales in the data's time unit (CDNOW weeks: 10.6 and 11.7; about 7x that in days),
#: so ``sigma=20`` keeps weeks, days and months in the bulk and the tail open.
PARETO_NBD_PRIORS: dict[str, Prior] = {
    "r": Prior("HalfStudentT", nu=3.0, sigma=1.0),
    "alpha": Prior("HalfStudentT", nu=3.0, sigma=20.0),
    "s": Prior("HalfStudentT", nu=3.0, sigma=1.0),
    "beta": Prior("HalfStudentT", nu=3.0, sigma=20.0),
}


#: Default prior of covariate coefficients, per standard deviation of the covariate (see
#: "Covariate coefficients" above).
COEFFICIENT_PRIOR = Prior("Normal", mu=0.0, sigma=1.0)


def FLAT_PRIORS(*names: str) -> dict[str, Prior]:
    """Improper flat priors for ``names``: MAP then equals the MLE.

    ``HalfFlat`` (on ``(0, inf)``) for the population parameters; ``Flat`` (the whole
    line) for covariate coefficients (names ending in ``_coefficient``, e.g.
    ``"purchase_coefficient"``).
    """
    return {n: Prior("Flat" if n.endswith("_coefficient") else "HalfFlat") for n in names}


def with_dims(prior: Prior, dims: tuple[str, ...]) -> Prior:
    """Copy of ``prior`` with one independent draw per element of ``dims`` (e.g. one per
    segment, or one coefficient per covariate)."""
    return Prior(
        prior.distribution,
        **prior.parameters,
        dims=dims,
        centered=prior.centered,
        transform=prior.transform,
    )


def _float_kwargs(prior: Prior) -> Prior:
    """Copy of ``prior`` with integer scalar parameters as floats.

    PyTensor turns a Python ``20`` into an ``int8`` constant, and PyMC 6.3 evaluates some
    terms (e.g. ``sigma**2`` of ``HalfStudentT``) in that dtype: ``sigma=20`` overflows
    and the model's log-density is NaN everywhere, while ``sigma=20.0`` is fine.
    """
    params = {
        k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in prior.parameters.items()
    }
    return Prior(
        prior.distribution,
        **params,
        dims=prior.dims,
        centered=prior.centered,
        transform=prior.transform,
    )


Support = Literal["positive", "unit interval", "real"]

_UNIT_INTERVAL = frozenset({"phi_dropout"})

# values outside each support at which a prior's log-density must be -inf
_OUTSIDE: dict[str, tuple[float, ...]] = {
    "positive": (-1e-6, -1.0, -1e6),
    "unit interval": (-1e-6, -0.5, 1.0 + 1e-6, 1.5, 1e6),
}

# (what the parameter must be, where a bad prior puts mass, distributions that fit)
_WORDS = {
    "positive": (
        "positive",
        "values <= 0",
        "a prior on the positive numbers such as HalfNormal(sigma=1), Gamma(alpha=2, "
        "beta=1) or LogNormal(mu=0, sigma=1)",
    ),
    "unit interval": (
        "a probability in (0, 1)",
        "values outside (0, 1)",
        "a prior on (0, 1) such as Beta(alpha=1, beta=1) (uniform)",
    ),
}


def prior_support(name: str) -> Support:
    """Where the parameter behind prior ``name`` lives: ``"positive"`` (shapes, scales,
    ``<name>_sigma``), ``"unit interval"`` (``phi_dropout``) or ``"real"`` (the link-scale
    ``<name>_mu`` and ``<name>_mu_relative`` of hierarchical priors, and the regression
    coefficients: ``<role>_coefficient...`` of customer covariates and
    ``calendar_coefficient`` of calendar covariates)."""
    if name.endswith(("_mu", "_mu_relative")) or "_coefficient" in name:
        return "real"
    return "unit interval" if name in _UNIT_INTERVAL else "positive"


@functools.lru_cache(maxsize=256)
def _finite_outside(prior_json: str, support: str) -> tuple[float, ...]:
    """The points outside ``support`` where the prior's log-density is finite."""
    import pymc as pm

    prior = Prior.from_dict(json.loads(prior_json))
    plain = Prior(prior.distribution, **prior.parameters, transform=prior.transform)
    with pm.Model():
        variable = plain.create_variable("x")
    points = np.array(_OUTSIDE[support])
    values = points.reshape(-1, *([1] * variable.ndim))
    logp = np.asarray(pm.logp(variable, values).eval()).reshape(points.size, -1)
    return tuple(float(x) for x in points[np.isfinite(logp).any(axis=1)])


def check_prior_support(name: str, prior: Prior) -> None:
    """Raise ``ValueError`` when ``prior`` gives values where parameter ``name`` cannot be.

    The prior's log-density is evaluated at points outside the parameter's support
    (:func:`prior_support`; e.g. -1 and -1e-6 for a positive parameter): a finite value
    there means the prior puts mass where the likelihood is undefined.

    Raises
    ------
    ValueError
        Naming the parameter, the prior, a point it allows and distributions that fit.
    """
    support = prior_support(name)
    if support == "real":
        return
    try:
        bad = _finite_outside(json.dumps(prior.to_dict(), sort_keys=True, default=str), support)
    except Exception:  # a prior this probe cannot build on its own (e.g. dims of its
        return  # parents); PyMC still rejects impossible values when sampling
    if bad:
        must, where, fits = _WORDS[support]
        raise ValueError(
            f"prior {name!r}: {prior!r} puts mass on {where} (its density is positive at "
            f"{bad[0]:g}), but {name} must be {must}; use {fits}."
        )


def _coerce(name: str, value: Any) -> Prior:
    if isinstance(value, Prior):
        return _float_kwargs(copy.deepcopy(value))
    if isinstance(value, Mapping):
        try:
            return _float_kwargs(Prior.from_dict(copy.deepcopy(dict(value))))
        except Exception as err:  # pymc_extras raises several types here
            raise ValueError(
                f"prior {name!r}: could not read {dict(value)!r} as a Prior "
                f"({err}); use Prior('Gamma', alpha=2, beta=1) or "
                "{'dist': 'Gamma', 'kwargs': {'alpha': 2, 'beta': 1}}."
            ) from err
    raise TypeError(
        f"prior {name!r}: expected a pymc_extras Prior or a dict, got {type(value).__name__}."
    )


def resolve_priors(
    defaults: Mapping[str, Prior],
    user: Mapping[str, Any] | None,
    *,
    allowed: frozenset[str],
    alternatives: Mapping[frozenset[str], frozenset[str]] | None = None,
) -> dict[str, Prior]:
    """Merge user priors over defaults, validating names.

    Parameters
    ----------
    defaults : mapping
        Default priors of the model.
    user : mapping or None
        User priors (``Prior`` objects or dicts). Not modified.
    allowed : frozenset of str
        Every name the model understands.
    alternatives : mapping, optional
        ``{frozenset(user_names): frozenset(default_names_they_replace)}``; e.g. giving
        both ``a`` and ``b`` replaces ``phi_dropout`` and ``kappa_dropout``.

    Returns
    -------
    dict of str to Prior
        Fresh copies, safe to use.
    """
    user = dict(user or {})
    unknown = sorted(set(user) - allowed)
    if unknown:
        raise ValueError(f"unknown prior name(s) {unknown}; this model takes {sorted(allowed)}.")
    resolved = {k: _float_kwargs(v) for k, v in defaults.items()}
    for given, replaced in (alternatives or {}).items():
        present = given & set(user)
        if present and present != given:
            raise ValueError(
                f"priors {sorted(given)} go together: got only {sorted(present)}; "
                f"give all of them, or none to keep the defaults {sorted(replaced)}."
            )
        if present and replaced & set(user):
            raise ValueError(
                f"priors {sorted(given)} and {sorted(replaced & set(user))} are two ways to "
                "set the same parameters; give one of them."
            )
        if present:
            for name in replaced:
                resolved.pop(name, None)
    for name, value in user.items():
        resolved[name] = _coerce(name, value)
        check_prior_support(name, resolved[name])
    return resolved
