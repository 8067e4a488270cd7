"""clvbayes: Bayesian customer-lifetime-value models with a posterior for every customer."""

__version__ = "0.1.0"
