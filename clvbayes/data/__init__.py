"""Data preparation: RFM summaries, validation, compression. Knows no model.

Public names are loaded on first use, so importing a model does not import DuckDB.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "rfm_summary": "clvbayes.data.rfm",
    "TIME_UNITS": "clvbayes.data.rfm",
    "validate_transactions": "clvbayes.data.validate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clvbayes.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
