"""Discounting arithmetic: an annual effective rate becomes exp(-δ t) per time unit."""

from __future__ import annotations

import numpy as np
import pytest

from clvbayes.math import clv


@pytest.mark.parametrize("time_unit", ["day", "week", "month", "quarter", "year", 3.5])
def test_one_year_of_discounting_is_one_over_one_plus_d(time_unit):
    delta = clv.continuous_rate(0.1, time_unit)
    units_per_year = clv.DAYS_PER_YEAR / clv.days_per_unit(time_unit)
    assert clv.discount_factor(units_per_year, delta) == pytest.approx(1 / 1.1, rel=1e-14)


def test_continuous_rate_values_and_errors():
    assert clv.continuous_rate(0.1, "year") == pytest.approx(np.log(1.1), rel=1e-15)
    assert clv.continuous_rate(0.1, "week") == pytest.approx(np.log(1.1) * 7 / 365.2425)
    assert clv.continuous_rate(0.0) == 0.0
    np.testing.assert_allclose(clv.continuous_rate([0.0, 0.1], 1.0), [0.0, np.log(1.1) / 365.2425])
    with pytest.raises(ValueError, match="time_unit"):
        clv.continuous_rate(0.1, "fortnight")
    with pytest.raises(ValueError, match="positive"):
        clv.days_per_unit(0)
    with pytest.raises(ValueError, match="greater than -1"):
        clv.continuous_rate(-1.0)


def test_three_discount_conventions_give_the_same_rate():
    """10 % a year in weeks, as an annual effective rate, as the continuous weekly rate
    ln(1.1) * 7 / 365.2425, and as the effective weekly rate 1.1^(7/365.2425) - 1."""
    delta = np.log(1.1) * 7 / 365.2425
    assert clv.resolve_discount("W", annual=0.1) == pytest.approx(delta, rel=1e-15)
    assert clv.resolve_discount("W", continuous=delta) == delta
    weekly = 1.1 ** (7 / 365.2425) - 1
    assert clv.resolve_discount("W", per_period=weekly) == pytest.approx(delta, rel=1e-12)
    # one week at the per-period rate is worth exactly 1 / (1 + d_u)
    rate = clv.resolve_discount("W", per_period=0.01)
    assert clv.discount_factor(1.0, rate) == pytest.approx(1 / 1.01, rel=1e-15)
    assert clv.resolve_discount("W") == 0.0
    with pytest.raises(ValueError, match="one discount rate, not annual and per_period"):
        clv.resolve_discount("W", annual=0.1, per_period=0.01)
    with pytest.raises(ValueError, match=">= 0"):
        clv.resolve_discount("W", continuous=-0.1)
    with pytest.raises(ValueError, match="> -1"):
        clv.resolve_discount("W", per_period=-1.0)


def test_discounted_sum_ignores_nan_padding():
    values = np.array([[10.0, 20.0, 0.0], [5.0, 0.0, 0.0]])
    times = np.array([[1.0, 2.0, np.nan], [0.0, np.nan, np.nan]])
    delta = 0.1
    expected = [10 * np.exp(-0.1) + 20 * np.exp(-0.2), 5.0]
    np.testing.assert_allclose(clv.discounted_sum(values, times, delta), expected, rtol=1e-15)
