"""``softplus(u) = log(1 + e^u)`` as one PyTensor Op that also returns its derivative.

The BG-family likelihoods spend most of their time in ``log(1 + e^u)`` over the unique
customer rows (the "dropped out after the last purchase" bracket). PyTensor's
``logaddexp``/``softplus`` and their gradients compile to several passes with three or
four transcendental calls per element; this Op computes the value and the derivative
``sigmoid(u)`` in one pass from a single ``exp(-|u|)`` and ``log1p``, and the gradient
reuses the stored derivative. It is a numeric primitive like ``logaddexp`` (the
likelihood formulas stay in :mod:`clvbayes.math`), with a numba implementation for
nutpie and a numpy ``perform`` for every other backend.

Imported only when a PyTensor graph is built (see :func:`clvbayes.math.ops.ops_for`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

__all__ = ["SoftplusWithSigmoid", "softplus"]


def _numpy_softplus(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e = np.exp(-np.abs(u))
    value = np.maximum(u, 0.0) + np.log1p(e)
    slope = np.where(u >= 0, 1.0, e) / (1.0 + e)
    return value, slope


class SoftplusWithSigmoid(Op):
    """``u -> (log(1 + e^u), 1 / (1 + e^-u))``, elementwise, stable for any real ``u``."""

    __props__ = ()

    def make_node(self, u: Any) -> Apply:
        u = pt.as_tensor_variable(u)
        if u.dtype not in ("float32", "float64"):
            u = pt.cast(u, "float64")
        return Apply(self, [u], [u.type(), u.type()])

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        (u,) = inputs
        value, slope = _numpy_softplus(np.asarray(u))
        outputs[0][0] = np.asarray(value, dtype=node.outputs[0].dtype)
        outputs[1][0] = np.asarray(slope, dtype=node.outputs[1].dtype)

    def infer_shape(self, *args: Any) -> list:
        # (node, shapes); older PyTensor versions pass (fgraph, node, shapes)
        shapes = args[-1]
        return [shapes[0], shapes[0]]

    def pullback(self, inputs: list, outputs: list, output_grads: list) -> list:
        _, slope = outputs
        g_value, g_slope = output_grads
        total = pt.zeros_like(slope)
        if not isinstance(g_value.type, DisconnectedType):
            total = total + g_value * slope
        if not isinstance(g_slope.type, DisconnectedType):
            total = total + g_slope * slope * (1.0 - slope)
        return [total]


_softplus_op = SoftplusWithSigmoid()


def softplus(u: Any) -> Any:
    """``log(1 + e^u)`` of a PyTensor variable (gradient ``sigmoid(u)`` without recomputation)."""
    return _softplus_op(u)[0]


def _register_numba() -> None:
    try:
        from pytensor.link.numba.dispatch import basic as numba_basic
    except ImportError:  # numba not installed: the Op runs through `perform`
        return

    @numba_basic.register_funcify_default_op_cache_key(SoftplusWithSigmoid)
    def _funcify(op: Any, **kwargs: Any) -> Any:
        # IEEE arithmetic (no fast-math): the same bits whether this is compiled fresh and
        # inlined or loaded from numba's cache, so a seed always gives the same draws
        @numba_basic.numba_njit(fastmath=False)
        def softplus_with_sigmoid(u: Any) -> Any:
            flat = u.ravel()
            value = np.empty_like(flat)
            slope = np.empty_like(flat)
            for i in range(flat.size):
                x = flat[i]
                e = np.exp(-abs(x))
                if x >= 0:
                    value[i] = x + np.log1p(e)
                    slope[i] = 1.0 / (1.0 + e)
                else:
                    value[i] = np.log1p(e)
                    slope[i] = e / (1.0 + e)
            return value.reshape(u.shape), slope.reshape(u.shape)

        return softplus_with_sigmoid, 2


_register_numba()
