"""The CRM quantities of every transaction family: the conditional pmf of future purchases
(churn in a window), discounted expected residual transactions (DERT), and purchases in
sub-windows of one simulated future.

Oracles: CLVTools 0.12.1's published predictions on its apparel example (PAlive, CET,
DERT), lifetimes 0.11.3's Pareto/NBD conditional pmf, pymc-marketing 1.3's BG/NBD
``expected_probability_no_purchase``, closed forms (the likelihood ratio, the Tricomi-U
DERT, ``Σ n P(n)`` = conditional expectation) and simulation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy import special as sp

import clvbayes
from clvbayes.math import bgnbd, clv, mbgnbd, pareto_nbd
from clvbayes.math.family import family
from clvbayes.math.processes import simulate_future_purchases

EXTERNAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "external"

BG = (0.243, 4.414, 0.793, 2.426)  # FHL 2005 CDNOW weeks
MBG = (0.525, 6.183, 0.891, 1.614)
PNBD = (0.553, 10.578, 0.606, 11.669)
FAMILIES = {"BGNBD": (bgnbd, BG), "MBGNBD": (mbgnbd, MBG), "ParetoNBD": (pareto_nbd, PNBD)}
# (x, t_x, T): new, one-off, regular, lapsed-looking, heavy buyer
HISTORIES = np.array(
    [[0, 0, 38.86], [1, 2.0, 38.86], [4, 36.0, 38.86], [5, 10.0, 38.86], [25, 37.5, 38.0]]
).T

# --- CLVTools' apparel example ---------------------------------------------------------

# CLVTools 0.12.1, pnbd() on apparelTrans with estimation.split = 104 (weeks), predicted
# to the end of the data (207.1429 weeks) with continuous.discount.factor = log(1.1):
CLVTOOLS = pd.DataFrame(
    {
        "PAlive": [0.9468478, 0.9825606, 0.2784686],
        "CET": [7.3256573, 3.5198114, 0.4190901],
        "DERT": [0.46765602, 0.22469806, 0.02675392],
    },
    index=pd.Index([1, 10, 100], name="customer_id"),
)
# Its estimates to 7 significant digits, as its PAlive and CET pin them down (least squares
# on those six printed numbers; all nine agree to < 6e-7 at these values); CLVTools' own
# optimizer stops within 4e-5 of the exact maximum of the likelihood (checked below).
CLVTOOLS_PARAMS = (1.448977, 48.63603, 0.5612608, 46.88451)


@pytest.fixture(scope="module")
def apparel_rfm() -> pd.DataFrame:
    if not (EXTERNAL / "apparel_trans.csv").exists():
        pytest.skip(
            f"reference data {EXTERNAL / 'apparel_trans.csv'} not available (GPL-3, not shipped)"
        )
    return clvbayes.rfm_summary(
        str(EXTERNAL / "apparel_trans.csv"),
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        calibration_end="2006-12-31",  # 104 weeks after the first day, 2005-01-02
        time_unit="W",
    )


def test_pareto_nbd_palive_cet_dert_match_clvtools_apparel(apparel_rfm):
    rows = apparel_rfm.set_index("customer_id").loc[CLVTOOLS.index]
    np.testing.assert_array_equal(rows["frequency"], [6, 2, 0])
    np.testing.assert_allclose(rows["T"], 104.0)
    x, t_x, T = (rows[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    horizon = (pd.Timestamp("2010-12-20") - pd.Timestamp("2006-12-31")).days / 7
    assert horizon == pytest.approx(207.1429, abs=1e-4)
    p = CLVTOOLS_PARAMS
    alive = pareto_nbd.p_alive(*p, x, t_x, T)
    np.testing.assert_allclose(alive, CLVTOOLS["PAlive"], rtol=0, atol=1e-6)
    cet = pareto_nbd.expected_purchases(*p, x, t_x, T, horizon)
    np.testing.assert_allclose(cet, CLVTOOLS["CET"], rtol=0, atol=1e-6)
    dert = pareto_nbd.dert(*p, x, t_x, T, np.log(1.1))
    np.testing.assert_allclose(dert, CLVTOOLS["DERT"], rtol=0, atol=1e-6)
    # DERT's closed form (FHL 2005 "RFM and CLV", eq. 2), with Tricomi's U
    r, alpha, s, beta = p
    z = np.log(1.1) * (beta + T)
    closed = alive * (r + x) / (alpha + T) * z**s * sp.hyperu(s, s, z) / np.log(1.1)
    np.testing.assert_allclose(dert, closed, rtol=1e-9)


def test_clvtools_parameters_are_its_maximum_likelihood_estimates(apparel_rfm):
    x, t_x, T = (apparel_rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))

    def nll(log_params):
        return -pareto_nbd.loglik(*np.exp(log_params), x, t_x, T).sum()

    start = np.log(CLVTOOLS_PARAMS)
    best = optimize.minimize(nll, start, method="BFGS", options={"gtol": 1e-8})
    np.testing.assert_allclose(np.exp(best.x), CLVTOOLS_PARAMS, rtol=1e-4)
    assert nll(start) - best.fun < 1e-6


# --- the conditional pmf ----------------------------------------------------------------


def test_pareto_nbd_conditional_pmf_matches_lifetimes():
    from lifetimes import ParetoNBDFitter

    fitter = ParetoNBDFitter()
    fitter.params_ = pd.Series(dict(zip(("r", "alpha", "s", "beta"), PNBD, strict=True)))
    for (x, t_x, T), t in zip(HISTORIES[:, :4].T, (39.0, 10.0, 52.0, 5.0), strict=True):
        ours = pareto_nbd.conditional_pmf(*PNBD, x, t_x, T, t, range(8))
        theirs = [
            fitter.conditional_probability_of_n_purchases_up_to_time(n, t, x, t_x, T)
            for n in range(8)
        ]
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-14)


@pytest.mark.slow  # builds a pymc-marketing model
def test_bgnbd_p_no_purchase_matches_pymc_marketing(cdnow_summary_csv):
    from test_math_bgnbd import _pymc_marketing_model

    data = cdnow_summary_csv.iloc[:30][["customer_id", "frequency", "recency", "T"]]
    rng = np.random.default_rng(3)
    names = ("r", "alpha", "a", "b")
    draws = {k: v * np.exp(rng.normal(0, 0.1, (2, 3))) for k, v in zip(names, BG, strict=True)}
    model = _pymc_marketing_model(data, draws)
    theirs = model.expected_probability_no_purchase(t=26).transpose("chain", "draw", "customer_id")
    x, t_x, T = (data[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    params = [draws[k][..., None] for k in names]
    ours = family("BGNBD").p_no_purchase(*params, x, t_x, T, 26.0)
    repeat = x > 0
    np.testing.assert_allclose(ours[..., repeat], theirs.values[..., repeat], rtol=1e-12)
    # pymc-marketing keeps the "dropped after the last purchase" term at x = 0, where the
    # BG/NBD has none (a customer can only drop out after a repeat purchase): there the
    # customer is alive and P(no purchase) = ((α+T)/(α+T+t))^r
    r, alpha = params[0], params[1]
    quiet = ((alpha + T) / (alpha + T + 26.0)) ** r
    np.testing.assert_allclose(ours[..., ~repeat], quiet[..., ~repeat], rtol=1e-12)
    assert np.all(np.abs(theirs.values[..., ~repeat] - ours[..., ~repeat]) > 0.01)


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_no_purchase_is_the_likelihood_of_the_stretched_history(kind):
    """P(N = 0) = L(x, t_x, T+t) / L(x, t_x, T), for every family."""
    module, p = FAMILIES[kind]
    x, t_x, T = HISTORIES
    for t in (0.0, 1.0, 26.0, 300.0):
        ratio = np.exp(module.loglik(*p, x, t_x, T + t) - module.loglik(*p, x, t_x, T))
        np.testing.assert_allclose(family(kind).p_no_purchase(*p, x, t_x, T, t), ratio, rtol=1e-9)
    # the Pareto/NBD's quadrature agrees with its likelihood ratio at n = 0
    if kind == "ParetoNBD":
        alive = pareto_nbd.p_alive(*p, x, t_x, T)
        r, alpha, s, beta = p
        quiet = pareto_nbd.pmf_if_alive(r + x, alpha + T, s, beta + T, 26.0, [0])[:, 0]
        ratio = np.exp(pareto_nbd.loglik(*p, x, t_x, T + 26) - pareto_nbd.loglik(*p, x, t_x, T))
        np.testing.assert_allclose(1 - alive + alive * quiet, ratio, rtol=1e-9)


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_conditional_pmf_sums_to_one_and_its_mean_is_the_expected_purchases(kind):
    module, p = FAMILIES[kind]
    x, t_x, T = HISTORIES
    counts = np.arange(400)
    for t in (4.0, 39.0, 104.0):
        pmf = family(kind).conditional_pmf(*p, x, t_x, T, t, counts)
        assert pmf.shape == (x.size, counts.size)
        assert np.all(pmf >= 0)
        np.testing.assert_allclose(pmf.sum(axis=-1), 1.0, rtol=1e-9)
        mean = pmf @ counts
        np.testing.assert_allclose(mean, module.expected_purchases(*p, x, t_x, T, t), rtol=1e-8)
    # posterior draws broadcast against customers; counts last
    draws = [np.full((3, 1), v) for v in p]
    assert family(kind).conditional_pmf(*draws, x, t_x, T, 39.0, [0, 2]).shape == (3, x.size, 2)


def _simulate_histories(fam, params, horizon, n, rng, **options):
    """``n`` simulated futures of each of :data:`HISTORIES` (customers x n): the latent
    state drawn from its exact posterior, then the family's process over ``horizon``."""
    x, t_x, T = (v[:, None] for v in HISTORIES)
    state = fam.customer_posterior(*params, x, t_x, T)  # fields shaped (customers, 1)
    shape = (x.size, n)
    alive = rng.random(shape) < state.p_alive
    index = (np.repeat(np.arange(x.size)[:, None], n, axis=1), np.zeros(shape, dtype=int))
    rate, dropout = fam.sample_alive_state(state, index, rng)
    return fam.simulate_future(rate, dropout, alive, horizon, rng=rng, **options)


@pytest.mark.slow  # statistical: simulation against the closed form
@pytest.mark.parametrize("kind", list(FAMILIES))
def test_conditional_pmf_matches_simulated_futures(kind):
    """Simulate each customer's latent state from its posterior and its next 39 weeks."""
    fam = family(kind)
    _, p = FAMILIES[kind]
    n = 40_000
    future = _simulate_histories(fam, p, 39.0, n, np.random.default_rng(11))
    counts = np.arange(6)
    pmf = fam.conditional_pmf(*p, HISTORIES[0], HISTORIES[1], HISTORIES[2], 39.0, counts)
    simulated = (future.count[..., None] == counts).mean(axis=1)
    tolerance = 4.5 * np.sqrt(pmf * (1 - pmf) / n) + 1e-4
    assert np.all(np.abs(simulated - pmf) < tolerance), (simulated, pmf)


def test_conditional_pmf_rejects_bad_counts():
    with pytest.raises(ValueError, match="whole numbers of purchases"):
        bgnbd.conditional_pmf(*BG, 1, 2.0, 30.0, 10.0, [-1])
    with pytest.raises(ValueError, match="whole numbers of purchases"):
        pareto_nbd.conditional_pmf(*PNBD, 1, 2.0, 30.0, 10.0, [0.5])


# --- DERT ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(FAMILIES))
@pytest.mark.parametrize("delta", [0.0005, 0.02, 0.5])
def test_dert_is_the_long_horizon_limit_of_discounted_purchases(kind, delta):
    module, p = FAMILIES[kind]
    x, t_x, T = HISTORIES
    long = module.expected_discounted_purchases(*p, x, t_x, T, 60 / delta, delta, nodes=160)
    np.testing.assert_allclose(family(kind).dert(*p, x, t_x, T, delta), long, rtol=1e-7)


@pytest.mark.slow  # statistical: simulation against the closed form
@pytest.mark.parametrize("kind", list(FAMILIES))
def test_dert_matches_simulated_discounted_futures(kind):
    fam = family(kind)
    _, p = FAMILIES[kind]
    delta, n = 0.02, 60_000
    rng = np.random.default_rng(5)
    future = _simulate_histories(fam, p, 40 / delta, n, rng, discount_rate=delta)
    mean, se = future.discounted.mean(axis=1), future.discounted.std(axis=1) / np.sqrt(n)
    dert = fam.dert(*p, HISTORIES[0], HISTORIES[1], HISTORIES[2], delta)
    assert np.all(np.abs(mean - dert) < 4.5 * se + 1e-9), (mean, dert, se)


def test_pareto_nbd_dert_matches_the_tricomi_u_closed_form_over_a_grid():
    rng = np.random.default_rng(2)
    for _ in range(50):
        r, alpha, s, beta = np.exp(
            rng.uniform(np.log([0.05, 0.5, 0.05, 0.5]), np.log([20, 200, 8, 200]))
        )
        x, T = rng.integers(0, 60), rng.uniform(1, 150)
        t_x = rng.uniform(0, T) if x else 0.0
        delta = np.exp(rng.uniform(np.log(1e-4), np.log(1.0)))
        alive = pareto_nbd.p_alive(r, alpha, s, beta, x, t_x, T)
        z = delta * (beta + T)
        closed = alive * (r + x) / (alpha + T) * z**s * sp.hyperu(s, s, z) / delta
        got = pareto_nbd.dert(r, alpha, s, beta, x, t_x, T, delta)
        assert got == pytest.approx(float(closed), rel=1e-8)


def test_discounted_residual_needs_a_positive_rate():
    with pytest.raises(ValueError, match="positive discount rate"):
        clv.discounted_residual(lambda t: t, 1.0, 0.0)
    with pytest.raises(ValueError, match="positive discount rate"):
        bgnbd.dert(*BG, 1, 2.0, 30.0, 0.0)


# --- sub-windows of one simulated future --------------------------------------------------


def test_binned_purchases_add_up_and_match_the_window_expectations():
    lam, p_drop, h = np.full(300_000, 0.3), 0.05, 60.0
    for delta in (0.0, 0.01):
        out = simulate_future_purchases(
            lam, p_drop, True, h, rng=1, discount_rate=delta, value_shape=2.0, value_rate=0.1,
            breaks=[0.0, 20.0, 60.0],
        )  # fmt: skip
        np.testing.assert_array_equal(out.binned_count.sum(axis=-1), out.count)
        np.testing.assert_allclose(out.binned_value.sum(axis=-1), out.value, rtol=1e-12)
        # a customer alive with rate λ and dropout p buys (1 - e^{-λ p t}) / p by t
        by = (1 - np.exp(-0.3 * p_drop * np.array([20.0, 60.0]))) / p_drop
        means = out.binned_count.mean(axis=0)
        np.testing.assert_allclose(means, [by[0], by[1] - by[0]], rtol=0.01)
    with pytest.raises(ValueError, match="increasing"):
        simulate_future_purchases(lam[:3], p_drop, True, h, rng=1, breaks=[20.0, 10.0])
