"""The numpy simulators refuse absurd purchase rates instead of simulating for ever.

``simulate_bgnbd``, ``simulate_mbgnbd``, ``simulate_pareto_nbd`` (and through them
``simulate_transaction_model`` and the predictive checks) loop once per purchase of the
busiest customer; ``simulate_future_purchases`` draws every purchase time when it
discounts or bins; ``simulate_calendar`` draws every purchase time at once. With
``r=1e11, alpha=1`` over 52 weeks the first ones ran past a 30 s timeout on the parent
commit (the BG/NBD loop: 6.5 us a purchase, ~2.4e10 purchases) and the last one raised
MemoryError for 105 TiB. The refusals run in a subprocess with a timeout, so the parent
fails them instead of hanging the suite. Oracles: ``expected_alive_purchases`` (the
forecast's rule) and the simulators' own output without the check.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from clvbayes import simulate as sim
from clvbayes.math import bgnbd, calendar, pareto_nbd, processes
from clvbayes.math.processes import (
    MAX_EXPECTED_PURCHASES,
    AliveProcess,
    TooManyPurchasesError,
    check_simulated_purchases,
    expected_alive_purchases,
)

TIMEOUT = 120.0
"""Seconds a refusal may take in its subprocess (interpreter start included)."""


def _bounded(code: str) -> str:
    """Run ``code`` in a fresh interpreter; a hang fails the test after ``TIMEOUT``."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


ABSURD = {
    "simulate_bgnbd": "sim.simulate_bgnbd(1e11, 1.0, 0.793, 1e9, [38.0, 52.0], rng=1)",
    "simulate_mbgnbd": "sim.simulate_mbgnbd(1e11, 1.0, 0.793, 1e9, [38.0, 52.0], rng=1)",
    "simulate_pareto_nbd": "sim.simulate_pareto_nbd(1e11, 1.0, 0.6, 12.0, [38.0, 52.0], rng=1)",
    "simulate_transaction_model": (
        "sim.simulate_transaction_model('ParetoNBD', "
        "dict(r=1e11, alpha=1.0, s=0.6, beta=12.0), [38.0, 52.0], rng=1)"
    ),
    "simulate_future_purchases": (
        "sim.simulate_future_purchases([1.0, 1e11], 0.0, True, 52.0, rng=1, discount_rate=0.01)"
    ),
    "simulate_future_purchases, breaks": (
        "sim.simulate_future_purchases([1.0, 1e11], sim.BetaDropout(0.793, [2.4, 1e9]), "
        "True, 52.0, rng=1, breaks=[0.0, 13.0, 52.0])"
    ),
    "simulate_future_pareto_nbd": (
        "sim.simulate_future_pareto_nbd([1.0, 1e11], 0.01, True, 52.0, rng=1, discount_rate=0.01)"
    ),
    "simulate_calendar": (
        "sim.simulate_calendar(3, 1e11, 1.0, 0.793, 2.426, np.zeros(60), calibration_end=52.0)"
    ),
}
NAMED = {  # the name the message gives, and a parameter it quotes
    "simulate_transaction_model": ("simulate_pareto_nbd", "s=0.6"),
    "simulate_future_purchases, breaks": ("simulate_future_purchases", "p_drop_b=1e+09"),
    "simulate_calendar": ("simulate_calendar", "r=1e+11"),
}


@pytest.mark.parametrize("entry", list(ABSURD))
def test_every_simulator_refuses_an_absurd_rate_instead_of_hanging(entry):
    out = _bounded(
        f"""
        import time
        import numpy as np
        from clvbayes import simulate as sim
        start = time.perf_counter()
        try:
            {ABSURD[entry]}
        except Exception as err:
            print(type(err).__name__, err)
        print("seconds", time.perf_counter() - start)
        """
    )
    name, quoted = NAMED.get(entry, (entry, "=1e+11"))
    assert f"TooManyPurchasesError {name}: " in out, out
    assert quoted in out and "1,000,000 expected purchases" in out and "Check that" in out, out
    if entry != "simulate_calendar":
        assert "customer 1 of 2" in out, out  # the absurd one, not the first
    assert float(out.rsplit("seconds", 1)[1]) < 1.0, out


def test_the_predictive_check_names_the_parameter_draw_instead_of_hanging():
    out = _bounded(
        """
        import numpy as np, pandas as pd
        from clvbayes.ppc import predictive_histogram_check
        rfm = pd.DataFrame({"frequency": [0.0, 2.0, 5.0], "recency": [0.0, 20.0, 30.0],
                            "T": [38.0, 38.0, 52.0]})
        params = {"r": np.array([[0.243, 0.243, 1e11]]), "alpha": np.array([[4.414] * 2 + [1.0]]),
                  "a": np.full((1, 3), 0.793), "b": np.array([[2.426] * 2 + [1e9]])}
        try:
            predictive_histogram_check(params, rfm, model="MBGNBD", n_draws=None, seed=1)
        except Exception as err:
            print(type(err).__name__, err)
        """
    )
    assert "TooManyPurchasesError predictive_histogram_check, parameter draw 2 " in out, out
    assert "simulate_mbgnbd: customer 2 of 3 (r=1e+11, alpha=1, a=0.793, b=1e+09, T=52)" in out


def test_the_refusal_is_the_forecasts_rule_at_the_cap():
    """Just above the cap is refused with expected_alive_purchases' value, just below is
    not; the dropout coin and the lifetime are credited like in the forecast."""
    coin = dict(dropout_a=np.array([2.0]), dropout_b=np.array([3.0]))
    for factor, refused in ((1.001, True), (0.999, False)):
        rate = factor * MAX_EXPECTED_PURCHASES / 52.0
        process = AliveProcess(np.ones(1), np.array([rate]), np.ones(1))
        expected = float(expected_alive_purchases(process, 52.0)[0])
        if refused:
            with pytest.raises(TooManyPurchasesError) as caught:
                check_simulated_purchases("f", process, 52.0, {"lam": rate})
            assert caught.value.expected == pytest.approx(expected)
            assert (caught.value.customer, caught.value.window) == (0, 52.0)
        else:
            check_simulated_purchases("f", process, 52.0, {"lam": rate})
    # a coin that comes up early makes 1e11 per week harmless: E[min(N, K)] <= E[K] = 4
    check_simulated_purchases("f", AliveProcess(1.0, np.array([1e11]), 1.0, **coin), 52.0, {})
    # a customer who cannot be alive is never refused
    check_simulated_purchases("f", AliveProcess(np.zeros(1), np.array([1e11]), 1.0), 52.0, {})


def test_a_customer_whose_dropout_ends_the_loop_early_is_simulated_not_refused():
    """r=1e11 per week with an early coin (BG/NBD) or a short lifetime (Pareto/NBD): the
    expected counts are far below the cap, so the simulators run as before."""
    out = sim.simulate_bgnbd(1e11, 1.0, 3.0, 2.0, [52.0] * 4, rng=1)
    assert out["frequency"].max() < 100
    out = sim.simulate_pareto_nbd(1e6, 1.0, 100.0, 1.0, [52.0] * 4, rng=1)
    assert 0 < out["frequency"].mean() < 1e5
    alive = np.array([False, True])
    dead = sim.simulate_future_purchases([1e11, 1.0], 0.0, alive, 52.0, rng=1, discount_rate=0.1)
    assert dead.count[0] == 0
    counts = sim.simulate_future_purchases(1e11, 0.0, True, 52.0, rng=1)  # no times drawn
    assert counts.count > 1e12


CASES = {
    "bgnbd": (bgnbd, lambda: sim.simulate_bgnbd(0.243, 4.414, 0.793, 2.426, T, rng=7)),
    "mbgnbd": (bgnbd, lambda: sim.simulate_mbgnbd(0.243, 4.414, 0.793, 2.426, T, rng=7)),
    "pareto_nbd": (pareto_nbd, lambda: sim.simulate_pareto_nbd(0.55, 10.6, 0.61, 11.7, T, rng=7)),
    "future": (
        processes,
        lambda: sim.simulate_future_purchases(
            np.linspace(0.0, 2.0, T.size),
            sim.BetaDropout(0.8, 2.4),
            T > 20,
            52.0,
            rng=7,
            discount_rate=0.002,
            breaks=[0.0, 13.0, 52.0],
        ),
    ),
    "future_pareto": (
        pareto_nbd,
        lambda: sim.simulate_future_pareto_nbd(
            np.linspace(0.0, 2.0, T.size), 0.05, True, 52.0, rng=7, discount_rate=0.002
        ),
    ),
    "calendar": (
        calendar,
        lambda: sim.simulate_calendar(
            300, 0.243, 4.414, 0.793, 2.426, np.sin(np.arange(60.0)), calibration_end=52.0
        ),
    ),
}
T = np.linspace(1.0, 78.0, 500)


@pytest.mark.parametrize("case", list(CASES))
def test_normal_inputs_simulate_the_same_numbers_as_without_the_check(case, monkeypatch):
    """The check draws no random number: the output is the unguarded simulator's."""
    module, run = CASES[case]
    guarded = run()
    monkeypatch.setattr(module, "check_simulated_purchases", lambda *a, **k: None)
    bare = run()
    left = guarded._asdict() if hasattr(guarded, "_asdict") else guarded
    right = bare._asdict() if hasattr(bare, "_asdict") else bare
    assert left.keys() == right.keys()
    for key in left:
        if left[key] is None:
            assert right[key] is None
        else:
            np.testing.assert_array_equal(left[key], right[key], err_msg=key)
