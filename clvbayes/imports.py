"""Importing third-party packages without the parts of their ``__init__`` a fit never uses.

A fresh process that fits a model pays for every module its imports load. Three packages
load much more than clvbayes needs, from their ``__init__``:

- ``pymc_extras/__init__`` imports its inference, marginalisation and state-space code
  (1.35 s on the 2-core benchmark machine); clvbayes needs only ``pymc_extras.prior``.
- ``arviz/__init__`` (1.x) gathers ``arviz_base``, ``arviz_stats`` and ``arviz_plots``
  into one namespace, loading ``scipy.stats`` and ``matplotlib.pyplot`` (about 0.8 s).
  nutpie imports ``arviz`` at import and calls two of its names when it returns the
  draws, ``from_dict`` and ``dict_to_dataset``, which are ``arviz_base``'s.
- ``arviz_base/__init__`` imports every converter; the numpyro one asks ``lazy_loader``
  for ``jax`` and ``numpyro``, which, when they are not installed, calls
  ``inspect.stack()`` and reads the source of every frame on the stack (about 0.3 s of
  a fit on 600 customers). The two names come from ``arviz_base.io_dict`` and
  ``arviz_base.base``.

:func:`defer_package_init` registers such a package as a module whose ``__init__`` runs
at the first attribute access that needs it: its submodules import without it, and the
``light`` names are served from where the package itself takes them. Code that uses the
package (``arviz.plot_trace``, ``from pymc_extras import fit_laplace``) gets all of it,
as if nothing had happened. Nothing changes when the package is already imported or its
import machinery is not the standard one.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Mapping
from typing import Any

__all__ = ["DeferredPackage", "defer_package_init", "import_deferred", "import_nutpie"]


class DeferredPackage(types.ModuleType):
    """A package module whose ``__init__`` runs at the first attribute it lacks (its
    submodules import without it), except the names in ``_light_names``, which come from
    the modules that define them."""

    _light_names: Mapping[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        source = type(self)._light_names.get(name)
        if source is not None:
            return getattr(importlib.import_module(source), name)
        spec = self.__spec__
        self.__class__ = types.ModuleType  # once: the package is now an ordinary module
        spec.loader.exec_module(self)
        return getattr(self, name)


def defer_package_init(name: str, light: Mapping[str, str] | None = None) -> DeferredPackage | None:
    """Register package ``name`` with its ``__init__`` deferred (see the module docstring).

    Parameters
    ----------
    name : str
        A top-level package, e.g. ``"arviz"``.
    light : mapping of str to str, optional
        Attributes served without the ``__init__``: name -> the module that defines the
        very object the package exports under that name.

    Returns
    -------
    DeferredPackage or None
        The registered module; None (nothing done) when the package is already imported,
        not installed, or not an ordinary package on the file system.
    """
    if name in sys.modules:
        return None
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return None
    kind = type(f"Deferred_{name}", (DeferredPackage,), {"_light_names": dict(light or {})})
    package = kind(name)
    package.__spec__, package.__loader__ = spec, spec.loader
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__, package.__package__ = spec.origin, name
    sys.modules[name] = package
    return package


def import_deferred(name: str, submodule: str, light: Mapping[str, str] | None = None) -> Any:
    """Import ``submodule`` with package ``name``'s ``__init__`` deferred; if the import
    fails, the deferred package is unregistered again (unless replaced meanwhile)."""
    package = defer_package_init(name, light)
    try:
        return importlib.import_module(submodule)
    except BaseException:
        if package is not None and sys.modules.get(name) is package:
            del sys.modules[name]
        raise


_ARVIZ_LIGHT = {"from_dict": "arviz_base.io_dict", "dict_to_dataset": "arviz_base.base"}


def import_nutpie(module: str = "nutpie") -> types.ModuleType:
    """``nutpie`` (or its submodule ``module``, e.g. ``"nutpie.compile_pymc"``), imported
    without running ``arviz/__init__`` or ``arviz_base/__init__`` (see the module
    docstring): the draws nutpie returns are built by ``arviz_base``'s own functions, as
    they would be through ``arviz``."""
    if "nutpie" not in sys.modules:
        defer_package_init("arviz_base")
        import_deferred("arviz", "nutpie", _ARVIZ_LIGHT)
    return importlib.import_module(module)
