"""A small operator shim so each formula is written once for numpy and PyTensor.

The maths modules call ``ops = ops_for(*args)`` and then use ``ops.log``, ``ops.gammaln``
and friends. Plain arrays get numpy/scipy; if any argument is a PyTensor variable the
same names resolve to ``pytensor.tensor`` functions, so the very function that the tests
and predictions evaluate in numpy also builds the PyMC graph. PyTensor is imported only
when a PyTensor variable is seen: ``import clvbayes.math`` loads neither PyMC nor pandas.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from scipy import special as sp


def _np_log1mexp(x: Any) -> Any:
    """log(1 - exp(x)) for x <= 0, accurate on both sides of log(1/2)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(x > -np.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


NUMPY_OPS = SimpleNamespace(
    name="numpy",
    log=np.log,
    log1p=np.log1p,
    exp=np.exp,
    expm1=np.expm1,
    sqrt=np.sqrt,
    gammaln=sp.gammaln,
    betaln=sp.betaln,
    digamma=sp.digamma,
    logaddexp=np.logaddexp,
    log1mexp=_np_log1mexp,
    where=np.where,
    maximum=np.maximum,
    minimum=np.minimum,
    asarray=np.asarray,
)


def _tensor_ops() -> SimpleNamespace:
    import pytensor.tensor as pt

    def betaln(a: Any, b: Any) -> Any:
        return pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)

    return SimpleNamespace(
        name="pytensor",
        log=pt.log,
        log1p=pt.log1p,
        exp=pt.exp,
        expm1=pt.expm1,
        sqrt=pt.sqrt,
        gammaln=pt.gammaln,
        betaln=betaln,
        digamma=pt.digamma,
        logaddexp=pt.logaddexp,
        log1mexp=pt.log1mexp,
        where=pt.switch,
        maximum=pt.maximum,
        minimum=pt.minimum,
        asarray=pt.as_tensor_variable,
    )


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("pytensor")


def ops_for(*args: Any) -> SimpleNamespace:
    """Return the operator namespace for these arguments (PyTensor if any is symbolic)."""
    if any(_is_tensor(a) for a in args):
        return _tensor_ops()
    return NUMPY_OPS
