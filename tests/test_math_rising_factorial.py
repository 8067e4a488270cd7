"""``log Γ(z+n) - log Γ(z)`` accurate for huge ``z``, and the likelihoods that use it.

Oracles: the exact sum ``Σ_{j<n} log(z + j)`` (math.fsum) for integer ``n``; for the
BG/NBD at huge ``a + b``, its own limit: a Beta(a, b) of fixed mean ``phi`` concentrates
on ``phi`` as ``a + b → ∞``, so the likelihood tends to that of one dropout probability
``phi`` for every customer, ``B(a, b+x)/B(a, b) → (1-phi)^x`` and
``a/(b+x-1) → phi/(1-phi)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import gammaln, softplus

from clvbayes.math import bgnbd, mbgnbd
from clvbayes.math.ops import log_rising_factorial


def _exact(z: float, n: int) -> float:
    return math.fsum(math.log(z) + math.log1p(j / z) for j in range(n))


@pytest.mark.parametrize("z", [1e-4, 0.3, 7.5, 999.0, 1e3, 3e7, 1e13, 1e18])
@pytest.mark.parametrize("n", [0, 1, 2, 17, 1000, 10_000])
def test_matches_the_exact_sum_of_logs(z, n):
    got = float(log_rising_factorial(np.float64(z), np.float64(n)))
    want = _exact(z, n)
    assert got == pytest.approx(want, rel=1e-13, abs=5e-12)


def test_direct_difference_loses_what_the_series_keeps():
    """The reason for the function: at z = 1e13 plain gammaln differences are off by
    ~1e-2, the rising factorial by less than 1e-12."""
    z, n = 1e13, 5
    assert abs(gammaln(z + n) - gammaln(z) - _exact(z, n)) > 1e-3
    assert abs(float(log_rising_factorial(z, float(n))) - _exact(z, n)) < 1e-12


def test_continuous_across_the_switch_for_real_n():
    n = np.array([0.37, 2.5, 14.2, 3000.7])
    below = log_rising_factorial(np.nextafter(1e3, 0.0), n)
    above = log_rising_factorial(1e3, n)
    # the jump is the direct branch's rounding, eps * z log z ~ 1.5e-12
    np.testing.assert_allclose(below, above, rtol=1e-13, atol=2e-12)


def test_pytensor_value_and_gradient_agree_with_numpy_and_stay_finite():
    import pytensor
    import pytensor.tensor as pt

    z, n = pt.dvector("z"), pt.dvector("n")
    out = log_rising_factorial(z, n)
    fn = pytensor.function([z, n], [out, pt.grad(out.sum(), z)])
    zs = np.array([1e-4, 3.0, 900.0, 1e3, 2e6, 1e13, 1e18])
    ns = np.array([3.0, 0.0, 40.0, 7.0, 1e4, 2.0, 5.0])
    value, grad = fn(zs, ns)
    np.testing.assert_allclose(value, log_rising_factorial(zs, ns), rtol=1e-12)
    assert np.isfinite(grad).all()
    # d/dz [log Γ(z+n) - log Γ(z)] = ψ(z+n) - ψ(z) ≈ n / z for large z
    np.testing.assert_allclose(grad[-2:], ns[-2:] / zs[-2:], rtol=1e-6)


def _homogeneous_limit(r, alpha, phi, x, t_x, T):
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + T)
    odds = np.where(
        x > 0,
        np.log(phi) - np.log1p(-phi) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)),
        -np.inf,
    )
    return base + x * np.log1p(-phi) + softplus(odds)


@pytest.mark.parametrize("kappa", [1e8, 1e11, 1e13, 1e16])
def test_bgnbd_loglik_tends_to_the_homogeneous_dropout_model(kappa):
    """Huge a + b is a legal tail of the posterior (dropout nearly homogeneous); the
    likelihood must approach its limit there, not dissolve into rounding noise."""
    r, alpha, phi = 0.25, 4.4, 0.25
    x = np.array([0.0, 1.0, 2.0, 7.0, 30.0])
    T = np.array([38.0, 38.0, 30.0, 38.0, 38.0])
    t_x = np.array([0.0, 12.0, 29.0, 36.0, 38.0])
    ll = bgnbd.loglik(r, alpha, phi * kappa, (1 - phi) * kappa, x, t_x, T)
    limit = _homogeneous_limit(r, alpha, phi, x, t_x, T)
    np.testing.assert_allclose(ll, limit, atol=2e3 / kappa + 1e-11)


def test_mbgnbd_frequency_terms_tend_to_the_homogeneous_dropout_model():
    kappa, phi = 1e13, 0.3
    x = np.array([0.0, 1.0, 5.0])
    base, _ = mbgnbd.frequency_terms(0.5, phi * kappa, (1 - phi) * kappa, x)
    want = (gammaln(0.5 + x) - gammaln(0.5)) + (x + 1) * np.log1p(-phi)
    np.testing.assert_allclose(base, want, atol=1e-9)
