"""Pure array maths of the models: one module per model family, plus shared maths.

Each family module (:mod:`~clvbayes.math.bgnbd`, :mod:`~clvbayes.math.mbgnbd`,
:mod:`~clvbayes.math.pareto_nbd`, :mod:`~clvbayes.math.gamma_gamma`) holds the family's
likelihood terms, per-customer quantities, latent-state posterior and simulators as
plain functions of arrays, and registers its :class:`~clvbayes.math.family.Family`
(importing this package registers them all). Shared pieces: :mod:`~clvbayes.math.ops`
(the numpy/PyTensor shim and factored likelihood terms), :mod:`~clvbayes.math.clv`
(discounting), :mod:`~clvbayes.math.processes` (simulated future purchases),
:mod:`~clvbayes.math.covariates` (customer covariates as per-customer parameter scales),
:mod:`~clvbayes.math.convergence` (R-hat, ESS and E-BFMI of MCMC draws).

Imports nothing of clvbayes beyond this package, and neither PyMC nor pandas.
"""

from clvbayes.math import (
    bgnbd,
    clv,
    convergence,
    covariates,
    draws,
    family,
    gamma_gamma,
    mbgnbd,
    ops,
    pareto_nbd,
    processes,
    units,
)

__all__ = [
    "bgnbd",
    "clv",
    "convergence",
    "covariates",
    "draws",
    "family",
    "gamma_gamma",
    "mbgnbd",
    "ops",
    "pareto_nbd",
    "processes",
    "units",
]
