"""Bad input to the models, the sampler and the predictions (issue 20, items 5-7, 9, 10,
13 and 14): each case gets a clear error naming the argument, or a warning that reaches
the report, or is shown to be handled.

Oracles: hand-made data whose answer is known (a tie of zeros, a table in days), the exact
scale invariance of the Gamma-Gamma likelihood (spend in cents = spend in dollars x 100,
so ``v`` scales by 100 and ``p``, ``q`` do not move), and real subprocesses sent SIGINT or
SIGTERM while NUTS samples.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from pymc_extras.prior import Prior

import clvbayes
from clvbayes import plots
from clvbayes.analyses import retention_curve
from clvbayes.cli import main
from clvbayes.data.rfm import rfm_summary
from clvbayes.datasets import load_cdnow
from clvbayes.inference import MIN_TUNE, check_sampler_settings, run_inference
from clvbayes.models import BGNBD, MBGNBD, GammaGamma, ParetoNBD
from clvbayes.ppc import tracking_curve
from clvbayes.predict import PredictOptions, p_alive, predict_customers, validate_holdout
from clvbayes.predict.holdout import predict_holdout
from clvbayes.predict.summaries import rank_columns
from clvbayes.priors import check_prior_support
from clvbayes.report import ReportOptions, build_report, write_report

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
KW = {"customer_col": "customer_id", "date_col": "date", "value_col": "value"}
COLS = ["--customer-col", "customer_id", "--date-col", "date", "--value-col", "value"]
MAP = {"method": "map"}


@pytest.fixture(scope="module")
def tx() -> pd.DataFrame:
    """400 customers of the CDNOW sample (the log)."""
    log = load_cdnow("sample")
    return log[log["customer_id"].isin(log["customer_id"].unique()[:400])].reset_index(drop=True)


@pytest.fixture(scope="module")
def weekly(tx) -> pd.DataFrame:
    return rfm_summary(tx, **KW, calibration_end="1997-09-30", observation_end="1998-06-30")


@pytest.fixture(scope="module")
def daily(tx) -> pd.DataFrame:
    return rfm_summary(
        tx, **KW, calibration_end="1997-09-30", observation_end="1998-06-30", time_unit="D"
    )


@pytest.fixture(scope="module")
def fits(weekly):
    """MAP fits on the weekly table (they record the unit)."""
    return BGNBD().fit(weekly, **MAP), GammaGamma().fit(weekly, **MAP)


def _error(call) -> str:
    with pytest.raises(ValueError) as exc:
        call()
    return str(exc.value)


def _cli_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("clvbayes: error: ")]
    assert len(errors) == 1, lines
    return errors[0]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


# --- item 9: sampler settings, in the API and the command line ----------------------------

BAD_SETTINGS = [
    ({"tune": 0}, "tune=0: NUTS adapts its step size and mass matrix"),
    ({"draws": 0}, "draws=0: must be a whole number >= 1"),
    ({"chains": 0}, "chains=0: must be a whole number >= 1"),
    ({"tune": -5}, "tune=-5: must be a whole number >= 0"),
    ({"draws": 2.5}, "draws=2.5: must be a whole number >= 1"),
    ({"draws": True}, "draws=True: must be a whole number >= 1"),
    ({"seed": -1}, "seed=-1: must be a whole number from 0 to 2**64 - 1"),
    ({"seed": 2**64}, "seed=18446744073709551616: must be a whole number"),
    ({"target_accept": 1.0}, "target_accept=1.0: must be in (0, 1)"),
    ({"sampler": "stan"}, "sampler='stan': use one of ['auto', 'nutpie', 'pymc']"),
    ({"method": "mcmc"}, "method='mcmc': use one of ['nuts', 'map', 'advi', 'pathfinder']"),
    ({"allow_partial": "yes"}, "allow_partial='yes': must be True or False"),
]


@pytest.mark.parametrize(("settings", "message"), BAD_SETTINGS)
def test_fit_refuses_impossible_sampler_settings_before_any_work(settings, message, small_rfm):
    started = time.perf_counter()
    assert message in _error(lambda: BGNBD().fit(small_rfm, **settings))
    assert time.perf_counter() - started < 5  # no compilation, no sampling


@pytest.mark.parametrize(("settings", "message"), BAD_SETTINGS[:4])
def test_fit_many_and_run_inference_check_the_same_way(settings, message, small_rfm):
    assert message in _error(lambda: BGNBD().fit_many([small_rfm], seeds=1, **settings))
    assert message in _error(lambda: run_inference(None, ["r"], **settings))


def test_fit_many_checks_every_seed(small_rfm):
    message = _error(lambda: BGNBD().fit_many([small_rfm, small_rfm], seeds=[1, -2]))
    assert "seed=-2: must be a whole number" in message


def test_tune_zero_is_fine_for_methods_without_tuning():
    check_sampler_settings(method="map", tune=0)  # MAP, ADVI and Pathfinder do not tune
    check_sampler_settings(method="nuts", tune=MIN_TUNE)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tune", "0"], "--tune 0: NUTS adapts its step size"),
        (["--seed", "-1"], "--seed -1: must be a whole number from 0"),
        (["--draws", "0"], "--draws 0: must be a whole number >= 1"),
        (["--chains", "0"], "--chains 0: must be a whole number >= 1"),
        (["--tune", "-5"], "--tune -5: must be a whole number >= 0"),
        (["--margin", "inf"], "--margin must be the share of spend that is profit"),
        (["--margin", "30"], "(for 30 % pass 0.3)"),
        (["--annual-discount", "5"], "--annual-discount must be a yearly rate"),
        (["--horizon", "nan"], "--horizon nan: must be a positive number"),
    ],
)
def test_cli_settings_are_one_line_naming_the_option_before_any_work(
    argv, message, tmp_path, capsys
):
    log = tmp_path / "log.csv"
    log.write_text("customer_id,date,value\n1,2020-01-01,1\n1,2020-02-01,2\n")
    out = tmp_path / "report"
    started = time.perf_counter()
    line = _cli_error(["report", str(log), *COLS, *argv, "--out", str(out)], capsys)
    assert message in line
    assert time.perf_counter() - started < 5
    assert not out.exists()


def test_cli_draws_that_are_not_whole_numbers_name_the_option(tmp_path, capsys):
    line = _cli_error(["report", "x.csv", *COLS, "--draws", "2.5", "--out", "r"], capsys)
    assert "argument --draws: invalid int value: '2.5'" in line


@pytest.mark.slow
def test_the_smallest_tune_nutpie_accepts_samples(small_rfm):
    """tune=1 (MIN_TUNE) runs; 0 panicked in nutpie 0.16 (``early_end < num_tune``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 5 draws fail every convergence check
        fit = BGNBD().fit(small_rfm, draws=5, tune=MIN_TUNE, chains=1, seed=1, progressbar=False)
    assert fit.posterior.sizes["draw"] == 5
    assert np.isfinite(fit.posterior["r"]).all()


# --- item 5: an interrupt stops the fit -----------------------------------------------------

SAMPLE_UNTIL_INTERRUPTED = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.simplefilter("ignore")
    import clvbayes
    from clvbayes.datasets import load_cdnow
    from clvbayes.inference import compile_nutpie, run_inference
    from clvbayes.data.rfm import rfm_summary

    tx = load_cdnow("sample")
    rfm = rfm_summary(tx, customer_col="customer_id", date_col="date",
                      calibration_end="1997-09-30")
    spec = clvbayes.BGNBD()
    model = spec.build(spec.prepare(rfm))
    compiled = compile_nutpie(model)
    print("sampling", flush=True)
    try:
        result = run_inference(model, list(spec.params), draws=10_000_000, tune=100,
                               chains=2, seed=1, progressbar=False, compiled=compiled,
                               allow_partial=sys.argv[1] == "partial")
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
    else:
        post = result.idata["posterior"].to_dataset()
        print(json.dumps({"settings": result.settings, "n_draw": post.sizes["draw"],
                          "nan": bool(post["r"].isnull().any())}), flush=True)
    """
)


def _interrupted_run(mode: str) -> tuple[str, float]:
    """Run the script above, send SIGINT 3 s into sampling; its output and how long it
    took to end after the signal."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SAMPLE_UNTIL_INTERRUPTED, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert proc.stdout.readline().strip() == "sampling", proc.stderr.read()
        time.sleep(3)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out.strip() + err, time.perf_counter() - sent


@pytest.mark.slow
def test_sigint_while_nuts_samples_raises_keyboard_interrupt_promptly():
    out, seconds = _interrupted_run("strict")
    assert out.splitlines()[0] == "KeyboardInterrupt", out
    assert seconds < 60  # 10 million draws per chain would take hours


@pytest.mark.slow
def test_allow_partial_returns_a_marked_trimmed_partial_fit():
    out, _ = _interrupted_run("partial")
    result = json.loads(out.splitlines()[0])
    settings = result["settings"]
    assert settings["interrupted"] is True
    assert settings["draws_requested"] == 10_000_000
    assert 0 < settings["draws"] == result["n_draw"] < 10_000_000
    assert result["nan"] is False  # nutpie's NaN padding is trimmed away


def test_a_partial_fit_says_so_in_its_problems(small_rfm, monkeypatch):
    """What _fit_built makes of an interrupted inference (allow_partial): marked settings,
    a problem and a warning (the interrupt itself is tested in the subprocesses above)."""
    import clvbayes.inference as inference

    real = inference.run_inference

    def interrupted(*args, **kwargs):
        result = real(*args, **kwargs)
        settings = {**result.settings, "interrupted": True}
        return dataclasses.replace(result, settings=settings)

    monkeypatch.setattr(inference, "run_inference", interrupted)
    with pytest.warns(UserWarning, match="map was interrupted before it converged"):
        fit = BGNBD().fit(small_rfm, method="map")
    assert fit.settings["interrupted"] is True
    assert any("a partial fit" in p for p in fit.problems)


@pytest.fixture(scope="module")
def earlier_report(tx, tmp_path_factory) -> Path:
    options = ReportOptions(**KW, calibration_end="1997-09-30", method="map", draws=20, chains=1)
    out = tmp_path_factory.mktemp("earlier") / "report"
    write_report(build_report(tx, options, log=None), out)
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "status", "line"),
    [
        (signal.SIGINT, 130, "clvbayes: interrupted; no partial output was written"),
        (signal.SIGTERM, 143, "clvbayes: terminated (SIGTERM); no partial output was written"),
    ],
)
def test_report_stopped_during_sampling_exits_promptly_and_keeps_the_earlier_report(
    signum, status, line, tx, earlier_report, tmp_path
):
    """A real ``python -m clvbayes report`` with far too many draws to finish."""
    log = tmp_path / "orders.parquet"
    tx.to_parquet(log, index=False)
    out = tmp_path / "report"
    shutil.copytree(earlier_report, out)
    before = _snapshot(out)
    args = [sys.executable, "-m", "clvbayes", "report", str(log), *COLS]
    args += ["--calibration-end", "1997-09-30", "--draws", "1000000", "--chains", "2"]
    proc = subprocess.Popen(
        [*args, "--out", str(out)], stderr=subprocess.PIPE, text=True, env=_env()
    )
    seen = []
    try:
        for text in proc.stderr:
            seen.append(text)
            if "] fit BG/NBD: " in text:
                break
        time.sleep(15)  # compiled and sampling by now (or still compiling: also stops)
        sent = time.perf_counter()
        proc.send_signal(signum)
        watchdog = threading.Timer(170, proc.kill)
        watchdog.start()
        rest = proc.stderr.read()
        proc.wait()
        watchdog.cancel()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    waited = time.perf_counter() - sent
    assert proc.returncode == status, "".join(seen) + rest
    assert waited < 60, waited
    assert line in rest
    assert "Traceback" not in rest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.parquet", "report"]
    assert _snapshot(out) == before


# --- item 6: time units are recorded and checked ------------------------------------------


def test_rfm_summary_records_its_time_unit_and_fits_record_it_through_save_and_load(
    weekly, daily, fits, tmp_path
):
    assert weekly.attrs["time_unit"] == "W" and daily.attrs["time_unit"] == "D"
    bg, gg = fits
    assert bg.time_unit == "W" and gg.time_unit == "W"
    assert bg.idata.attrs["time_unit"] == "W"
    clvbayes.save({"bg": bg, "gg": gg}, tmp_path / "fits.nc")
    loaded = clvbayes.load(tmp_path / "fits.nc")
    assert loaded["bg"].time_unit == "W" and loaded["gg"].time_unit == "W"
    # selections and copies keep the unit (pandas attrs)
    assert weekly[weekly["frequency"] > 0].reset_index(drop=True).attrs["time_unit"] == "W"


def test_weekly_fit_scored_with_a_daily_time_unit_is_refused(weekly, fits):
    bg, gg = fits
    message = _error(
        lambda: predict_customers(bg, weekly, horizon=52, spend_fit=gg, time_unit="D", seed=1)
    )
    assert "time_unit='D', but the BGNBD fit is in weeks" in message
    assert "pass time_unit='W', or leave it out" in message


def test_weekly_fit_applied_to_a_daily_table_is_refused_everywhere(daily, fits):
    bg, gg = fits
    expected = "the RFM table is in days (its attrs['time_unit'] = 'D') but the BGNBD fit"
    calls = [
        lambda: predict_customers(bg, daily, horizon=364, spend_fit=gg, seed=1),
        lambda: validate_holdout(bg, daily, spend_fit=gg, seed=1),
        lambda: predict_holdout(bg, daily, seed=1),
        lambda: p_alive(bg, daily),
        lambda: retention_curve(bg, daily, times=[0, 7]),
        lambda: tracking_curve(bg, daily),
    ]
    for call in calls:
        assert expected in _error(call)


def test_the_fits_unit_is_the_default_and_an_equal_number_of_days_is_accepted(weekly, fits):
    bg, gg = fits
    args = {"horizon": 52, "spend_fit": gg, "seed": 1, "annual_discount": 0.1, "n_draws": 20}
    default = predict_customers(bg, weekly, **args).summary
    weeks = predict_customers(bg, weekly, time_unit="W", **args).summary
    days = predict_customers(bg, weekly, time_unit=7.0, **args).summary
    pd.testing.assert_frame_equal(default, weeks)
    pd.testing.assert_frame_equal(default, days)


def test_fits_and_tables_without_a_recorded_unit_still_work(weekly, fits):
    """Old files and tables built by hand: nothing to check, weeks as before."""
    bg, gg = fits
    settings = {k: v for k, v in bg.settings.items() if k != "time_unit"}
    old = dataclasses.replace(bg, settings=settings)
    assert old.time_unit is None
    plain = pd.DataFrame(weekly.to_dict("list"))  # no attrs
    assert plain.attrs == {}
    args = {"horizon": 52, "spend_fit": gg, "seed": 1, "annual_discount": 0.1, "n_draws": 20}
    got = predict_customers(old, plain, **args).summary
    want = predict_customers(old, plain, time_unit="W", **args).summary
    pd.testing.assert_frame_equal(got, want)
    predict_customers(old, plain, time_unit="D", **args)  # nothing recorded: allowed


def test_fit_time_unit_argument_is_recorded_and_checked_against_the_table(weekly):
    plain = pd.DataFrame(weekly.to_dict("list"))
    assert BGNBD().fit(plain, time_unit="weeks", **MAP).time_unit == "W"
    message = _error(lambda: BGNBD().fit(weekly, time_unit="D", **MAP))
    assert "time_unit='D', but the RFM table is in weeks" in message
    assert "set table.attrs['time_unit'] = 'D'" in message


# --- item 7: prediction options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"annual_discount": math.nan}, "annual_discount must be a yearly rate between 0 and 1"),
        ({"annual_discount": -0.5}, "annual_discount must be a yearly rate between 0 and 1"),
        ({"annual_discount": 10}, "annual_discount must be a yearly rate between 0 and 1"),
        ({"margin": math.nan}, "margin must be the share of spend that is profit"),
        ({"margin": -0.3}, "margin must be the share of spend that is profit"),
        ({"margin": 30}, "(for 30 % pass 0.3)"),
        ({"margin": math.inf}, "margin must be the share of spend that is profit"),
        ({"memory_limit_mb": -1}, "memory_limit_mb must be a positive number of megabytes"),
        ({"thresholds": [math.nan]}, "thresholds must be finite numbers, got [nan]"),
        ({"time_unit": "fortnight"}, "time_unit='fortnight' is not a time unit"),
    ],
)
def test_prediction_options_refuse_impossible_values(option, message):
    assert message in _error(lambda: PredictOptions(**option))


def test_holdout_purchases_in_a_holdout_of_length_zero_are_refused(weekly, fits):
    bg, gg = fits
    broken = weekly.assign(holdout_duration=0.0)
    expected = "customers have holdout purchases in a holdout of length 0"
    assert expected in _error(lambda: validate_holdout(bg, broken, spend_fit=gg, seed=1))
    assert expected in _error(lambda: predict_holdout(bg, broken, seed=1))


# --- item 10: segment names with '/', mathtext in ids, priors outside their support --------


def test_a_segment_name_with_a_slash_fits_saves_and_loads(weekly, tmp_path):
    rfm = weekly.assign(channel=np.where(weekly.index % 2 == 0, "web/app", "store"))
    fit = BGNBD(segments="channel").fit(rfm, **MAP)
    assert fit.segment_levels == ("store", "web/app")
    for name in ("seg.nc", "seg.zarr"):
        clvbayes.save(fit, tmp_path / name)
        assert clvbayes.load(tmp_path / name).segment_levels == ("store", "web/app")


@pytest.mark.slow
def test_a_segment_name_with_a_slash_survives_nuts(weekly):
    rfm = weekly.assign(channel=np.where(weekly.index % 2 == 0, "web/app", "store"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 50 draws fail the ESS check
        fit = BGNBD(segments="channel").fit(
            rfm, draws=50, tune=50, chains=1, seed=1, progressbar=False
        )
    assert list(fit.posterior["segment"].to_numpy()) == ["store", "web/app"]
    assert predict_customers(fit, rfm, horizon=10, seed=1).summary["p_alive"].notna().all()


def test_plots_draw_mathtext_like_ids_literally(tmp_path):
    ids = ["$\\badcommand$", "a$b", "$x^2$"]
    top = pd.DataFrame(
        {"customer_id": ids, "clv_mean": [3.0, 2.0, 1.0], "clv_q05": [1.0, 1.0, 0.0],
         "clv_q95": [5.0, 3.0, 2.0]}
    )  # fmt: skip
    ax = plots.plot_top_customers(top)
    ax.figure.savefig(tmp_path / "top.png")  # raised ValueError (mathtext) before
    labels = [t for t in ax.get_yticklabels()]
    assert [t.get_text() for t in labels] == [plots.plain_text(i) for i in ids]
    # what is drawn is the text as typed, not a formula
    assert [t._preprocess_math(t.get_text()) for t in labels] == [(i, False) for i in ids]
    retention = pd.DataFrame(
        {"segment": ["$\\x$"] * 2, "time": [0.0, 1.0], "share_alive_mean": [1.0, 0.9],
         "share_alive_low": [1.0, 0.8], "share_alive_high": [1.0, 1.0]}
    )  # fmt: skip
    plots.plot_retention(retention, time_label="$weeks").figure.savefig(tmp_path / "ret.png")


@pytest.mark.parametrize(
    ("spec", "priors", "message"),
    [
        (BGNBD, {"r": Prior("Normal", mu=1, sigma=1)}, "prior 'r': Prior(\"Normal\""),
        (BGNBD, {"alpha": Prior("Uniform", lower=-1, upper=2)}, "prior 'alpha'"),
        (
            BGNBD,
            {"phi_dropout": Prior("HalfNormal", sigma=1), "kappa_dropout": Prior("HalfCauchy")},
            "but phi_dropout must be a probability in (0, 1); use a prior on (0, 1) such as Beta",
        ),
        (ParetoNBD, {"s": Prior("StudentT", nu=3, sigma=1)}, "prior 's'"),
        (GammaGamma, {"v": Prior("Normal", mu=20, sigma=5)}, "prior 'v'"),
        (MBGNBD, {"a": Prior("Flat"), "b": Prior("HalfFlat")}, "prior 'a'"),
    ],
)
def test_priors_outside_their_parameters_support_are_refused_at_spec_creation(
    spec, priors, message
):
    error = _error(lambda: spec(priors=priors))
    assert message in error
    if "phi_dropout" not in message:
        assert "must be positive; use a prior on the positive numbers such as HalfNormal" in error


def test_hyperpriors_are_checked_by_their_role():
    message = _error(lambda: BGNBD(segments="c", priors={"r_sigma": Prior("Normal")}))
    assert "prior 'r_sigma'" in message and "must be positive" in message
    BGNBD(segments="c", priors={"r_mu": Prior("Normal", mu=0, sigma=3)})  # link scale: real


def test_every_default_prior_is_on_its_parameters_support():
    for spec in (BGNBD(), GammaGamma(), ParetoNBD(), BGNBD(segments="c"), GammaGamma(segments="c")):
        for name, prior in spec.priors.items():
            check_prior_support(name, prior)


def test_two_ways_to_set_the_same_parameters_are_refused():
    both = {"a": Prior("HalfNormal"), "b": Prior("HalfNormal"), "phi_dropout": Prior("Beta")}
    both["kappa_dropout"] = Prior("HalfCauchy")
    assert "are two ways to set the same parameters" in _error(lambda: BGNBD(priors=both))
    v_twice = {"v": Prior("HalfNormal", sigma=100), "v_relative": Prior("HalfNormal")}
    assert "are two ways to set the same parameters" in _error(lambda: GammaGamma(v_twice))


# --- item 13: ties, identification, warnings that reach the report -------------------------


def test_customers_tied_at_zero_are_not_in_the_top_share():
    """95 of 100 customers have CLV 0 in every draw: only the 5 others can be top 10 %."""
    rng = np.random.default_rng(1)
    clv = np.zeros((40, 100))
    clv[:, :5] = rng.gamma(2.0, 50.0, size=(40, 5))
    got = rank_columns(clv, (0.1, 0.05))
    assert (got["p_top_10pct"][5:] == 0).all()  # was 0.1 * 100 - 5 = 5 shared by 95: 0.053
    assert (got["p_top_10pct"][:5] == 1).all()
    assert (got["p_top_5pct"][:5] == 1).all()
    assert got["p_top_10pct"].sum() == 5  # less than 0.1 n: the rest would be a lottery
    np.testing.assert_allclose(got["expected_rank"][5:], (6 + 100) / 2)


def test_without_ties_the_top_shares_sum_to_k_n():
    clv = np.random.default_rng(2).gamma(2.0, 10.0, size=(30, 57))
    got = rank_columns(clv, (0.1, 0.25))
    np.testing.assert_allclose(got["p_top_10pct"].sum(), 5.7)
    np.testing.assert_allclose(got["p_top_25pct"].sum(), 14.25)


def test_a_fit_without_repeat_buyers_is_refused_as_not_identified(small_rfm):
    none = small_rfm.assign(frequency=0, recency=0.0, monetary_value=0.0)
    for spec in (BGNBD(), MBGNBD(), ParetoNBD()):
        message = _error(lambda s=spec: s.fit(none, **MAP))
        assert "none of the 400 customers made a repeat purchase" in message
        assert "not identified" in message


def test_a_fit_with_few_repeat_buyers_warns(small_rfm):
    few = small_rfm.assign(frequency=0, recency=0.0, monetary_value=0.0)
    few.loc[:2, "frequency"] = [2, 1, 3]
    few.loc[:2, "recency"] = few.loc[:2, "T"] / 2
    with pytest.warns(UserWarning, match="BGNBD: only 3 of 400 customers made a repeat purchase"):
        BGNBD().fit(few, **MAP)


@pytest.fixture(scope="module")
def odd_report(tx):
    """A MAP report whose log has a mathtext id, a segment with a '/' and a tiny segment."""
    log = tx.assign(customer_id=tx["customer_id"].astype(str))
    first = log["customer_id"].iloc[0]
    log.loc[log["customer_id"] == first, "customer_id"] = "$\\badcommand$"
    few = log["customer_id"].unique()[:5]
    log["channel"] = np.where(log["customer_id"].isin(few), "tiny/segment", "web")
    options = ReportOptions(**KW, calibration_end="1997-09-30", segment_col="channel",
                            method="map", draws=20, chains=1)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the small segment: checked below
        return build_report(log, options, log=None)


def test_report_with_a_mathtext_id_and_a_slash_segment_is_written(odd_report, tmp_path):
    write_report(odd_report, tmp_path / "report")
    assert "$\\badcommand$" in set(odd_report.customers["customer_id"])
    assert (tmp_path / "report" / "index.html").stat().st_size > 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert "tiny/segment" in {row["segment"] for row in summary["segments"]}


def test_small_segment_warning_reaches_summary_json(odd_report, tmp_path):
    write_report(odd_report, tmp_path / "report")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    small = [w for w in summary["warnings"] if "segment(s) with fewer than 30" in w]
    assert len(small) == 2 and all("'tiny/segment': " in w for w in small)  # both models
    assert "tiny/segment" in (tmp_path / "report" / "index.html").read_text()


@pytest.mark.parametrize("n_customers", [1, 40])
def test_report_with_one_repeat_buyer_warns_in_summary(n_customers, tmp_path):
    """One customer (who buys three times), or 40 of whom one buys again."""
    ids = [0, 0, 0, *range(1, n_customers)]
    days = ["2020-01-01", "2020-02-01", "2020-03-01"] + ["2020-01-05"] * (n_customers - 1)
    log = pd.DataFrame({"customer_id": ids, "date": days, "value": 10.0})
    options = ReportOptions(**KW, calibration_end="2020-03-01", method="map", draws=20, chains=1)
    with pytest.warns(UserWarning, match=f"only 1 of {n_customers} customer"):
        report = build_report(log, options, log=None)
    write_report(report, tmp_path / "report")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert len(summary["warnings"]) == 2, summary["warnings"]
    for model, warning in zip(("BGNBD", "GammaGamma"), summary["warnings"], strict=True):
        assert warning.startswith(f"{model}: only 1 of {n_customers} customer")


# --- item 14: the spend model does not depend on the currency -----------------------------


def test_gamma_gamma_map_is_exactly_currency_invariant(weekly):
    cents = weekly.assign(monetary_value=weekly["monetary_value"] * 100)
    segmented = weekly.assign(c=np.where(weekly.index % 3 == 0, "a", "b"))
    for spec, rfm in ((GammaGamma(), weekly), (GammaGamma(segments="c"), segmented)):
        dollars_fit = spec.fit(rfm, **MAP).posterior
        cents_fit = spec.fit(rfm.assign(monetary_value=cents["monetary_value"]), **MAP).posterior
        for name in ("p", "q"):
            np.testing.assert_allclose(cents_fit[name], dollars_fit[name], rtol=2e-3)  # optimiser
        np.testing.assert_allclose(cents_fit["v"], 100 * dollars_fit["v"], rtol=2e-3)


@pytest.mark.slow
def test_gamma_gamma_posterior_is_currency_invariant_under_nuts(weekly):
    """The bug: p's posterior mean went from 6.17 (dollars) to 7.67 (cents)."""
    cents = weekly.assign(monetary_value=weekly["monetary_value"] * 100)
    settings = {"draws": 500, "tune": 500, "chains": 2, "seed": 3, "progressbar": False}
    dollars_post = GammaGamma().fit(weekly, **settings).posterior
    cents_post = GammaGamma().fit(cents, **settings).posterior
    for name, factor in (("p", 1), ("q", 1), ("v", 100)):
        a, b = dollars_post[name].to_numpy() * factor, cents_post[name].to_numpy()
        se = np.hypot(a.std(), b.std()) / np.sqrt(a.size / 10)  # ESS >= a tenth of draws
        assert abs(a.mean() - b.mean()) < 4 * se, (name, a.mean(), b.mean())


def test_a_prior_on_v_in_currency_units_still_means_currency_units(weekly):
    """pymc-marketing's ``v`` prior ports unchanged (and replaces v_relative): a prior
    pinning v at 5 gives v = 5 whatever the currency of the data."""
    spec = GammaGamma(priors={"v": Prior("TruncatedNormal", mu=5, sigma=0.01, lower=0)})
    assert set(spec.priors) == {"p", "q", "v"}
    cents = weekly.assign(monetary_value=weekly["monetary_value"] * 100)
    for rfm in (weekly, cents):
        assert spec.fit(rfm, **MAP).posterior["v"].item() == pytest.approx(5, abs=0.05)


def test_a_sampler_that_cannot_start_is_said_in_words():
    """nutpie's "All initialization points failed" (a Rust error with a stack backtrace)
    becomes one message saying what it means and what to try; other errors pass through,
    and the sampler is cancelled either way."""
    from clvbayes.inference import _wait_for

    class Failing:
        cancelled = False

        def __init__(self, message):
            self.message = message

        def wait(self):
            raise RuntimeError(self.message)

        def cancel(self):
            self.cancelled = True

    nutpie_error = (
        "All initialization points failed\n\nCaused by:\n    Could not initialize state "
        "because of bad initial gradient: Invalid initial point\n    \n    Stack backtrace:\n"
        "   0: <unknown>\n"
    )
    sampler = Failing(nutpie_error)
    with pytest.raises(RuntimeError) as exc:
        _wait_for(sampler, allow_partial=False)
    message = str(exc.value)
    assert message.startswith("NUTS (nutpie) could not start any chain")
    assert "bad initial gradient: Invalid initial point)" in message
    assert "backtrace" not in message and "sampler='pymc'" in message
    assert sampler.cancelled
    other = Failing("something else")
    with pytest.raises(RuntimeError, match=r"^something else$"):
        _wait_for(other, allow_partial=False)
    assert other.cancelled
