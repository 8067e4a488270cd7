"""The registry of model specifications, by kind.

Every concrete spec class (:class:`~clvbayes.models.BGNBD`, ...) registers itself when
it is defined (:meth:`clvbayes.models.base.ModelSpec.__init_subclass__`), keyed by its
family's kind; loading a saved model asks :func:`spec_class` for the class to rebuild.
The maths of each kind is registered separately, one level lower
(:mod:`clvbayes.math.family`), so layers below the PyMC models can ask for it too; so is
a family's short name (``clvbayes report --model pareto-nbd``), which :func:`spec_named`
turns into the spec.
"""

from __future__ import annotations

from typing import Any

from clvbayes.math.family import Family, model_names

__all__ = ["SPECS", "register_spec", "spec_class", "spec_named"]

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


def spec_named(name: str) -> type:
    """The spec class of a family's short name (``"pareto-nbd"`` -> ``ParetoNBD``;
    :func:`clvbayes.math.family.model_names`).

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    names = model_names(Family)
    if name not in names:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(names)}.")
    return spec_class(names[name])
