"""The registry of model specifications, by kind.

Every concrete spec class (:class:`~clvbayes.models.BGNBD`, ...) registers itself when
it is defined (:meth:`clvbayes.models.base.ModelSpec.__init_subclass__`), keyed by its
family's kind; loading a saved model asks :func:`spec_class` for the class to rebuild.
The maths of each kind is registered separately, one level lower
(:mod:`clvbayes.math.family`), so layers below the PyMC models can ask for it too.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SPECS", "register_spec", "spec_class"]

SPECS: dict[str, type] = {}
"""Every registered spec class by kind (filled when :mod:`clvbayes.models` is imported)."""


def register_spec(cls: type) -> type:
    """Add a spec class under its ``kind`` (called by ``ModelSpec.__init_subclass__``)."""
    kind = cls.kind  # type: ignore[attr-defined]
    if kind in SPECS and SPECS[kind] is not cls:
        raise ValueError(f"a model spec of kind {kind!r} is already registered: {SPECS[kind]}.")
    SPECS[kind] = cls
    return cls


def spec_class(kind: Any) -> type:
    """The spec class of ``kind`` (e.g. ``"BGNBD"`` -> :class:`clvbayes.models.BGNBD`).

    Raises
    ------
    ValueError
        For a kind no spec is registered for.
    """
    if kind not in SPECS:
        raise ValueError(f"unknown model type {kind!r}; known: {sorted(SPECS)}.")
    return SPECS[kind]
