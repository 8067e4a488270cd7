"""Pure array maths of the models: likelihoods, conditional expectations, posteriors.

Imports nothing of clvbayes beyond this package, and neither PyMC nor pandas.
"""

from clvbayes.math import bgnbd, clv, gamma_gamma, mbgnbd, pareto_nbd, units

__all__ = ["bgnbd", "clv", "gamma_gamma", "mbgnbd", "pareto_nbd", "units"]
