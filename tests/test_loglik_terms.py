"""The count-weighted total the PyMC models use equals the weighted sum of the per-row
log-likelihoods (oracle: ``(counts * loglik).sum()``), in numpy and in PyTensor, with
concrete and with symbolic (swapped-in) data."""

from __future__ import annotations

import numpy as np
import pytest

from clvbayes.data.compress import compress
from clvbayes.math import bgnbd, gamma_gamma, mbgnbd
from clvbayes.math.ops import Factor, level_weights


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    n = 4000
    x = rng.poisson(1.5, n) * (rng.random(n) < 0.6)
    T = np.round(rng.uniform(20, 40, n) * 7) / 7
    t_x = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * T * 7) / 7, 0.0)
    z = np.round(rng.gamma(3.0, 10.0, n), 1)
    return compress({"frequency": x, "recency": t_x, "T": T, "monetary_value": z},
                    ("frequency", "recency", "T", "monetary_value"))  # fmt: skip


MODELS = {
    "BGNBD": (bgnbd, (0.4, 5.0, 0.8, 2.4), ("frequency", "recency", "T")),
    "MBGNBD": (mbgnbd, (0.5, 6.0, 0.9, 1.6), ("frequency", "recency", "T")),
    "GammaGamma": (gamma_gamma, (6.2, 3.7, 15.4), ("frequency", "monetary_value")),
}


def _columns(module, data, names):
    if module is gamma_gamma:  # only repeat buyers carry spend information
        return data.factor("frequency"), data["monetary_value"]
    return tuple(data.factor(c) for c in names)


@pytest.mark.parametrize("kind", list(MODELS))
def test_weighted_total_equals_weighted_rows_in_numpy(kind, data):
    module, params, names = MODELS[kind]
    counts = data.counts
    if module is gamma_gamma:
        keep = data["frequency"] > 0
        sub = compress({c: data[c][keep] for c in names}, names)
        data, counts = sub, sub.counts
    columns = _columns(module, data, names)
    terms = module.loglik_terms(*params, *columns)
    rows = terms.per_row()
    np.testing.assert_array_equal(rows, module.loglik(*params, *columns))
    assert terms.weighted_sum(counts) == pytest.approx(float((counts * rows).sum()), rel=1e-12)


@pytest.mark.parametrize("kind", list(MODELS))
def test_pytensor_total_with_constant_or_symbolic_data_equals_numpy(kind, data):
    import pytensor
    import pytensor.tensor as pt

    module, params, names = MODELS[kind]
    if module is gamma_gamma:
        keep = data["frequency"] > 0
        data = compress({c: data[c][keep] for c in names}, names)
    theta = [pt.dscalar(f"p{i}") for i in range(len(params))]
    columns = _columns(module, data, names)
    want = float((data.counts * module.loglik(*params, *columns)).sum())
    constant = module.loglik_terms(*theta, *columns).weighted_sum(data.counts)
    assert pytensor.function(theta, constant)(*params) == pytest.approx(want, rel=1e-11)
    # the same data as symbolic inputs (what fit_many swaps into a compiled model)
    inputs, symbolic = [], []
    for column in columns:
        if isinstance(column, Factor):
            levels, index = pt.dvector(), pt.lvector()
            inputs += [levels, index]
            symbolic.append(Factor(levels, index))
        else:
            values = pt.dvector()
            inputs.append(values)
            symbolic.append(values)
    counts = pt.lvector()
    total = module.loglik_terms(*theta, *symbolic).weighted_sum(counts)
    fn = pytensor.function([*theta, *inputs, counts], total)
    arrays = []
    for column in columns:
        arrays += [column.levels, column.index] if isinstance(column, Factor) else [column]
    assert fn(*params, *arrays, data.counts) == pytest.approx(want, rel=1e-11)


def test_level_weights_symbolic_equals_bincount():
    import pytensor
    import pytensor.tensor as pt

    factor = Factor.of(np.array([3.0, 1.0, 3.0, 2.0, 1.0, 3.0]))
    weights = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    want = np.bincount(factor.index, weights=weights)
    np.testing.assert_array_equal(level_weights(factor, weights), want)
    levels, index, w = pt.dvector(), pt.lvector(), pt.dvector()
    fn = pytensor.function([levels, index, w], level_weights(Factor(levels, index), w))
    np.testing.assert_array_equal(fn(factor.levels, factor.index, weights), want)
