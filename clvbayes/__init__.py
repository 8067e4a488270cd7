"""clvbayes: Bayesian customer-lifetime-value models with a posterior for every customer.

Public names are loaded on first use, so ``import clvbayes`` is quick and has no side
effects (PyMC is imported only when a model is used).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "BGNBD": "clvbayes.models",
    "GammaGamma": "clvbayes.models",
    "ParetoNBD": "clvbayes.models",
    "MBGNBD": "clvbayes.models",
    "FittedModel": "clvbayes.models",
    "rfm_summary": "clvbayes.data.rfm",
    "validate_transactions": "clvbayes.data.validate",
    "predict_customers": "clvbayes.predict",
    "validate_holdout": "clvbayes.predict",
    "PredictOptions": "clvbayes.predict",
    "p_alive": "clvbayes.predict",
    "expected_purchases": "clvbayes.predict",
    "Result": "clvbayes.predict",
    "retention_curve": "clvbayes.analyses",
    "average_order_value": "clvbayes.analyses",
    "value_tiers": "clvbayes.analyses",
    "at_risk": "clvbayes.analyses",
    "segment_summary": "clvbayes.segments",
    "segment_contrasts": "clvbayes.segments",
    "clv_cac": "clvbayes.segments",
    "compare": "clvbayes.comparison",
    "holdout_comparison": "clvbayes.comparison",
    "comparison_table": "clvbayes.comparison",
    "compress": "clvbayes.data.compress",
    "CompressedRFM": "clvbayes.data.compress",
    "load": "clvbayes.models",
    "save": "clvbayes.models",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


_SUBMODULES = ("datasets",)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"clvbayes.{name}")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clvbayes' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])
