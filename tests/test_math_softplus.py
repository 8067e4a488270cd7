"""The one-pass softplus Op the BG-family likelihoods use in PyTensor graphs."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from clvbayes.math.softplus import softplus

GRID = np.concatenate(
    [[-1e308, -800.0, -40.0, -1e-12, 0.0, 1e-12, 40.0, 800.0, 1e308], np.linspace(-30, 30, 121)]
)


@pytest.mark.parametrize("mode", ["FAST_COMPILE", "NUMBA"])
def test_softplus_value_and_gradient_match_numpy_on_extremes(mode):
    u = pt.dvector("u")
    value = softplus(u)
    grad = pytensor.grad(value.sum(), u)
    fn = pytensor.function([u], [value, grad], mode=mode)
    got_value, got_grad = fn(GRID)
    with np.errstate(over="ignore"):
        want_value = np.logaddexp(0.0, GRID)
        want_grad = 1.0 / (1.0 + np.exp(-GRID))
    assert np.all(np.isfinite(got_value)) and np.all(np.isfinite(got_grad))
    np.testing.assert_allclose(got_value, want_value, rtol=1e-15, atol=0)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-15, atol=1e-300)


def test_softplus_second_derivative_and_matrix_input():
    u = pt.dmatrix("u")
    value = softplus(u)
    grad = pytensor.grad(value.sum(), u)
    hess_diag = pytensor.grad(grad.sum(), u)  # differentiates through the stored sigmoid
    fn = pytensor.function([u], [value, hess_diag], mode="NUMBA")
    x = np.linspace(-5, 5, 12).reshape(3, 4)
    got_value, got_hess = fn(x)
    s = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(got_value, np.logaddexp(0.0, x), rtol=1e-15)
    np.testing.assert_allclose(got_hess, s * (1 - s), rtol=1e-13)
