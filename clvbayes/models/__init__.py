"""Model specifications (PyMC graphs over :mod:`clvbayes.math`), the fitted model, storage.

One spec per model family; each registers itself by kind
(:mod:`clvbayes.models.registry`) when defined here.
"""

from clvbayes.models.base import ModelSpec
from clvbayes.models.bgnbd import BGNBD, MBGNBD
from clvbayes.models.calendar import TimeEffects
from clvbayes.models.fitted import FittedModel, load, save
from clvbayes.models.gamma_gamma import GammaGamma
from clvbayes.models.pareto_nbd import ParetoNBD
from clvbayes.models.registry import SPECS, spec_class, spec_named

__all__ = [
    "BGNBD",
    "MBGNBD",
    "SPECS",
    "FittedModel",
    "GammaGamma",
    "ModelSpec",
    "ParetoNBD",
    "TimeEffects",
    "load",
    "save",
    "spec_class",
    "spec_named",
]
