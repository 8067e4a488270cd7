"""Pure array maths of the models: likelihoods, conditional expectations, posteriors.

Imports nothing of clvbayes beyond this package, and neither PyMC nor pandas.
"""

from clvbayes.math import bgnbd, gamma_gamma

__all__ = ["bgnbd", "gamma_gamma"]
