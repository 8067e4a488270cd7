"""Forecasts refuse absurd purchase rates instead of simulating for ever.

The compiled simulation runs once per purchase, so a posterior draw, hand-given
parameters or a customer row implying millions of purchases in the window used to hang
``predict_customers`` (a BG/NBD rate of 1e12 per week ran for days). The check happens
before the loop, so these tests expect the error quickly; the ones that would hang
without it run in a subprocess with a timeout. Oracles: the exact sums the bound is
made of (the Beta-geometric tail summed term by term, the Lomax survival integrated by
quadrature), and the kernel's own simulated counts.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy import integrate
from scipy.special import betaln

from clvbayes.math import bgnbd, kernels, pareto_nbd
from clvbayes.math.processes import (
    MAX_EXPECTED_PURCHASES,
    AliveProcess,
    TooManyPurchasesError,
    expected_alive_purchases,
)

FHL = (0.243, 4.414, 0.793, 2.426)


@pytest.mark.parametrize("a, b", [(0.793, 2.426), (1.0, 3.0), (2.5, 0.7), (0.3, 1e6), (5.0, 1e9)])
@pytest.mark.parametrize("n", [1, 2, 7, 100, 5000])
def test_the_coin_bound_is_the_beta_geometric_tail_summed_term_by_term(a, b, n):
    k = np.arange(1, n + 1)
    exact = np.exp(betaln(a, b + k - 1) - betaln(a, b)).sum()  # Σ P(K >= k)
    # E[N] = n exactly (rate mean n per unit, window 1): the bound is g(n)
    bound = expected_alive_purchases(AliveProcess(1.0, 1e9 * n, 1e9, a, b), 1.0)
    assert bound == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize("s, c, window", [(0.5, 2.0, 10.0), (1.0, 3.0, 7.0), (3.0, 1.0, 50.0)])
def test_with_a_lifetime_the_expectation_is_the_rate_times_the_lomax_survival_integral(
    s, c, window
):
    lived, _ = integrate.quad(lambda t: (1.0 + t / c) ** -s, 0.0, window)
    got = expected_alive_purchases(AliveProcess(1.0, 4.0, 2.0, 0.0, 0.0, s, c), window)
    assert got == pytest.approx(2.0 * lived, rel=1e-9)


def test_with_a_concentrated_rate_the_bound_is_the_kernels_mean_count():
    """A huge, nearly fixed rate (E[λ] W ~ 3e6, sd 0.2 %) with an early dropout: the
    count is min(N, K) with N ~ E[N], so its mean is g(E[N]) (a = 3: K has a finite
    variance); it is simulated, not refused, and its mean matches within 4.5 standard
    errors."""
    process = AliveProcess(*(np.array([[v]]) for v in (1.0, 0.243e6, 4.414, 3.0, 2.426)))
    bound = float(expected_alive_purchases(process, 52.0)[0, 0])
    n = 20_000
    count, _ = kernels.simulate_alive_future(
        process, np.zeros(n, dtype=int), np.arange(n), np.array([0]), np.full(n, 52.0), seed=3
    )
    assert bound == pytest.approx((3.0 + 2.426 - 1.0) / 2.0, rel=1e-6)  # E[K]
    assert abs(count.mean() - bound) < 4.5 * count.std() / np.sqrt(n)


def _refusal(process: AliveProcess, horizon: float, n: int = 3) -> TooManyPurchasesError:
    with pytest.raises(TooManyPurchasesError) as caught:
        kernels.check_expected_purchases(
            process, np.zeros(n, dtype=int), np.full(n, horizon), (np.zeros((1, 1)),) * 2
        )
    return caught.value


def test_the_check_names_the_draw_customer_and_expected_count():
    rows = AliveProcess(*(np.array([[v, v], [v, v]]) for v in (1.0, 0.243, 4.414, 0.793, 2.426)))
    huge = rows._replace(rate_shape=np.array([[0.243, 0.243], [0.243, 2.43e11]]),
                         dropout_b=np.array([[2.426, 2.426], [2.426, 2.426e9]]))  # fmt: skip
    with pytest.raises(TooManyPurchasesError, match=r"expected to make .* purchases") as caught:
        kernels.check_expected_purchases(
            huge, np.array([0, 1, 1]), np.array([52.0, 13.0, 52.0]), (np.zeros((1, 1)),) * 2
        )
    err = caught.value
    assert (err.draw, err.customer, err.window) == (1, 2, 52.0)  # the longest window of row 1
    kernels.check_expected_purchases(
        rows, np.array([0, 1]), np.full(2, 52.0), (np.zeros((1, 1)),) * 2
    )


def test_a_huge_horizon_and_a_pareto_rate_are_refused():
    bg = bgnbd.FAMILY.alive_process(*(np.array([[v]]) for v in FHL), 0.0, 0.0, 38.0)
    bg = bg._replace(dropout_b=np.array([[1e12]]))  # a coin that almost never comes up
    assert _refusal(bg, 1e9).expected > MAX_EXPECTED_PURCHASES
    pareto = pareto_nbd.FAMILY.alive_process(
        *(np.array([[v]]) for v in (5e9, 10.0, 0.6, 12.0)), 0.0, 0.0, 38.0
    )._replace(p_alive=np.ones((1, 1)))
    assert _refusal(pareto, 52.0).expected > MAX_EXPECTED_PURCHASES
    # a customer who cannot be alive is never simulated: not refused
    dead = pareto._replace(p_alive=np.zeros((1, 1)))
    kernels.check_expected_purchases(
        dead, np.zeros(3, dtype=int), np.full(3, 52.0), (np.zeros((1, 1)),) * 2
    )


def test_a_calendar_clock_multiplies_the_window():
    """Calendar time running 1000 times faster in operational time (exp(f) huge): a
    customer fine in 52 calendar weeks is refused under that clock."""
    process = AliveProcess(*(np.array([[v]]) for v in (1.0, 1e4, 1.0, 0.0, 0.0)))
    args = (process, np.zeros(2, dtype=int), np.full(2, 52.0))
    kernels.check_expected_purchases(*args, (np.zeros((1, 1)),) * 2)
    fast = (np.array([[0.0, 1000.0]]), np.array([[0.0, 1.0]]))  # (operational, calendar)
    with pytest.raises(TooManyPurchasesError) as caught:
        kernels.check_expected_purchases(*args, fast)
    assert caught.value.window == pytest.approx(52_000.0)
    assert caught.value.expected == pytest.approx(5.2e8)


def _bounded(code: str, timeout: float = 240.0) -> str:
    """Run ``code`` in a fresh interpreter; a hang fails the test after ``timeout``."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


def test_the_kernel_refuses_an_absurd_rate_instead_of_hanging():
    out = _bounded(
        """
        import numpy as np
        from clvbayes.math import kernels
        from clvbayes.math.processes import AliveProcess
        process = AliveProcess(*(np.array([[v]]) for v in (1.0, 2.43e11, 4.414, 0.793, 2.426e9)))
        try:
            kernels.simulate_alive_future(process, np.zeros(2, dtype=int), np.arange(2),
                                          np.array([0]), np.full(2, 52.0), seed=1)
        except Exception as err:
            print(type(err).__name__, err)
        """
    )
    assert "TooManyPurchasesError" in out, out


def test_predict_customers_names_the_customer_with_absurd_data_instead_of_hanging():
    """A customer row with a billion purchases in 10 weeks, under the CDNOW MLEs: the
    parent commit simulated it for more than two minutes (killed); now an error names
    the customer, the draw's parameters and the expected count, in well under a second
    of checking."""
    out = _bounded(
        """
        import numpy as np, pandas as pd, xarray as xr
        from clvbayes.models import BGNBD, FittedModel
        from clvbayes.predict import predict_customers
        draws = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
        ds = xr.Dataset({k: (("chain", "draw"), np.full((1, 4), v)) for k, v in draws.items()})
        fit = FittedModel(BGNBD(), xr.DataTree.from_dict({"posterior": ds}), None, "x")
        rfm = pd.DataFrame({"customer_id": ["a", "whale"], "frequency": [2.0, 1e9],
                            "recency": [30.0, 10.0], "T": [38.0, 10.0]})
        try:
            predict_customers(fit, rfm, horizon=52, seed=1, progressbar=False)
        except Exception as err:
            print(type(err).__name__, err)
        """
    )
    assert (
        "TooManyPurchasesError: customer 'whale'" in out
        or "TooManyPurchasesError customer 'whale'" in out
    ), out
    assert "r=0.243" in out and "purchases in the forecast window of 52" in out, out
