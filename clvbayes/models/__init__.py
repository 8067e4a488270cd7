"""Model specifications (PyMC builders on top of :mod:`clvbayes.math`) and fitted models."""

from clvbayes.models.base import FittedModel, ModelSpec
from clvbayes.models.bgnbd import BGNBD
from clvbayes.models.gamma_gamma import GammaGamma

__all__ = ["BGNBD", "FittedModel", "GammaGamma", "ModelSpec"]
