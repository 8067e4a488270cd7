"""Model specifications (PyMC builders on top of :mod:`clvbayes.math`) and fitted models."""

from clvbayes.models.base import FittedModel, ModelSpec
from clvbayes.models.bgnbd import BGNBD
from clvbayes.models.gamma_gamma import GammaGamma
from clvbayes.models.mbgnbd import MBGNBD
from clvbayes.models.pareto_nbd import ParetoNBD

__all__ = ["BGNBD", "MBGNBD", "FittedModel", "GammaGamma", "ModelSpec", "ParetoNBD"]
