"""Data preparation: sources, RFM summaries, validation, compression. Knows no model.

* :mod:`clvbayes.data.source`: any input (frame, CSV, Parquet, database) as a DuckDB
  relation.
* :mod:`clvbayes.data.database`: a PostgreSQL table or query, or a DuckDB database file
  (``Database``).
* :mod:`clvbayes.data.period`: period bounds (ISO 8601 only) and their checks.
* :mod:`clvbayes.data.rfm`: per-customer summaries (``rfm_summary``,
  ``repeat_purchase_times``, ``first_purchase_values``).
* :mod:`clvbayes.data.validate`: input checks (transaction logs and RFM tables).
* :mod:`clvbayes.data.compress`: unique rows and their counts.

Public names are loaded on first use, so importing a model does not import DuckDB.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "rfm_summary": "clvbayes.data.rfm",
    "repeat_purchase_times": "clvbayes.data.rfm",
    "first_purchase_values": "clvbayes.data.rfm",
    "TIME_UNITS": "clvbayes.math.units",
    "open_source": "clvbayes.data.source",
    "Database": "clvbayes.data.database",
    "validate_transactions": "clvbayes.data.validate",
    "check_rfm": "clvbayes.data.validate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clvbayes.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
