"""Calendar-time effects (issue 16): the studies behind the default and its claims.

Usage (each writes a JSON summary under ``benchmarks/out/`` and prints a table)::

    python benchmarks/study_time_effects.py calibration 50   # common shocks: holdout total
    python benchmarks/study_time_effects.py stationary 20    # f = 0: interval width ratio
    python benchmarks/study_time_effects.py recovery 20      # r, alpha, a, b and the f path
    python benchmarks/study_time_effects.py cdnow            # CDNOW master and sample
    python benchmarks/study_time_effects.py lfo              # fit to week 26, forecast 27-39
    python benchmarks/study_time_effects.py speed 2          # fit times, stationary vs time effects

Simulated data sets are CDNOW-like cohorts: ``--customers`` customers (default 5,000)
acquired uniformly over weeks 0-12, 39 calibration and 39 holdout weeks, purchases on a
day grid, parameters near CDNOW's (r 0.25, alpha 4.8, a 0.72, b 2.16). Common shocks are
the local level plus white noise with scales drawn per data set from the ranges the
calibration data of real logs show (level 0-0.05 a week, noise 0.05-0.25). Fits: NUTS,
2 chains of ``--draws`` after the models' default tuning steps (1,000; 600 with time effects) or ``--tune``, one compilation per scenario
(``fit_many``); the time-effect and the stationary BG/NBD on the same data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import clvbayes
from clvbayes.data.calendar import calendar_rfm
from clvbayes.models import BGNBD, TimeEffects
from clvbayes.priors import Prior
from clvbayes.simulate import simulate_calendar, simulate_calendar_path, transactions_from

OUT = Path(__file__).resolve().parent / "out"
THETA = {"r": 0.25, "alpha": 4.8, "a": 0.72, "b": 2.16}
ORIGIN = dt.date(2020, 1, 6)
CAL_WEEKS, HOLD_WEEKS = 39, 39


def simulate(seed: int, n: int, f: np.ndarray | None = None) -> tuple:
    """A CDNOW-like cohort under common shocks (or ``f``) as a calendar summary."""
    rng = np.random.default_rng(seed)
    if f is None:
        s_level, s_noise = rng.uniform(0.0, 0.05), rng.uniform(0.05, 0.25)
        f = simulate_calendar_path(CAL_WEEKS + HOLD_WEEKS, s_level, s_noise, rng)
    sample = simulate_calendar(
        n,
        *THETA.values(),
        f,
        calibration_end=CAL_WEEKS - 1 / 7,
        observation_end=CAL_WEEKS + HOLD_WEEKS - 1 / 7,
        acquisition=(0.0, 12.0),
        resolution=1 / 7,
        rng=rng,
    )
    log = pd.DataFrame(transactions_from(sample, ORIGIN))
    cal = calendar_rfm(
        log,
        customer_col="customer_id",
        date_col="date",
        calibration_end=ORIGIN + dt.timedelta(days=7 * CAL_WEEKS - 1),
        observation_end=ORIGIN + dt.timedelta(days=7 * (CAL_WEEKS + HOLD_WEEKS) - 1),
    )
    return cal, f


def total_interval(fit, cal, seed: int) -> dict:
    """The holdout total's predictive distribution against the actual."""
    report = clvbayes.validate_holdout(fit, cal, seed=seed, n_draws=None)
    row = report.totals.iloc[0]
    width = row["predicted_q95"] - row["predicted_q05"]
    z = (row["actual"] - row["predicted_mean"]) / (width / 3.29)
    coverage = report.coverage.set_index("level").loc[0.9]
    return {
        "actual": float(row["actual"]),
        "mean": float(row["predicted_mean"]),
        "q05": float(row["predicted_q05"]),
        "q95": float(row["predicted_q95"]),
        "inside": bool(row["in_interval"]),
        "p_below": float(row["p_below"]),
        "z": float(z),
        "halfwidth_over_mean": float(width / 2 / row["predicted_mean"]),
        "customer_cov90": float(coverage["observed"]),
        "customer_cov90_expected": float(coverage["expected"]),
    }


def time_effects(args) -> TimeEffects:
    """The process under study: the package default, or ``--level-prior`` (e.g.
    ``HalfNormal:0.05``) for the level scale."""
    if not args.level_prior:
        return TimeEffects()
    name, scale = args.level_prior.split(":")
    key = (
        "sigma"
        if name in ("HalfNormal", "HalfStudentT")
        else "beta"
        if name == "HalfCauchy"
        else "lam"
    )
    return TimeEffects(priors={"level_sigma": Prior(name, **{key: float(scale)})})


def _fits(spec, datasets, seed, args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spec.fit_many(datasets, seeds=seed, draws=args.draws, tune=args.tune, chains=2)


def calibration(args, shocks: bool = True) -> list[dict]:
    """Coverage of the holdout total's 90 % interval over simulated data sets."""
    rows = []
    for start in range(0, args.n, args.batch):
        seeds = range(args.seed + start, args.seed + min(args.n, start + args.batch))
        zero = None if shocks else np.zeros(CAL_WEEKS + HOLD_WEEKS)
        data = [simulate(s, args.customers, zero)[0] for s in seeds]
        te = _fits(BGNBD(time_effects=time_effects(args)), data, start + 1, args)
        st = _fits(BGNBD(), data, start + 1, args)
        for i, (cal, a, b) in enumerate(zip(data, te, st, strict=True)):
            row = {"data": int(list(seeds)[i])}
            row.update({f"te_{k}": v for k, v in total_interval(a, cal, i).items()})
            row.update({f"st_{k}": v for k, v in total_interval(b, cal, i).items()})
            row["te_divergences"] = int(a.idata["sample_stats"]["diverging"].sum())
            rows.append(row)
            print(row, flush=True)
    return rows


def recovery(args) -> list[dict]:
    """Coverage of 90 % intervals of r, alpha, a, b and of the calibration f path."""
    rows = []
    sims = [simulate(args.seed + i, args.customers) for i in range(args.n)]
    fits = _fits(BGNBD(time_effects=time_effects(args)), [c for c, _ in sims], 1, args)
    for (cal, f), fit in zip(sims, fits, strict=True):
        post = fit.posterior
        # the truth's f, centred like the model's (weights: calibration purchases); the
        # centring moves the rate scale: rates lambda e^f = (lambda e^c) e^(f - c), so the
        # comparable alpha is alpha e^(-c)
        w = cal.calibration_counts() / cal.calibration_counts().sum()
        shift = float(f[:CAL_WEEKS] @ w)
        true_f = f[:CAL_WEEKS] - shift
        row = {}
        for name, truth in THETA.items():
            truth = truth * np.exp(-shift) if name == "alpha" else truth
            q = post[name].quantile([0.05, 0.95]).to_numpy()
            row[name] = bool(q[0] <= truth <= q[1])
        draws = post["time_effect"].to_numpy().reshape(-1, CAL_WEEKS)
        low, high = np.quantile(draws, [0.05, 0.95], axis=0)
        n_free = fit.calendar.n_free
        inside = (low <= true_f) & (true_f <= high)
        row["f_path"] = float(inside[n_free:].mean())
        row["f_free"] = float(inside[:n_free].mean()) if n_free else float("nan")
        rows.append(row)
        print(row, flush=True)
    return rows


def cdnow(args, cut: int | None = None) -> list[dict]:
    """The papers' split on CDNOW master and sample (``cut``: fit to week ``cut`` and
    forecast the calibration's remaining weeks instead)."""
    from clvbayes.datasets import load_cdnow

    rows = []
    for kind in ("master", "sample"):
        tx = load_cdnow(kind)
        cal_end, obs_end = "1997-09-30", "1998-06-30"
        if cut is not None:
            cal_end = (pd.Timestamp("1997-01-01") + pd.Timedelta(days=7 * cut - 1)).date()
            obs_end = "1997-09-30"
        data = calendar_rfm(
            tx, customer_col="customer_id", date_col="date", value_col="value",
            calibration_end=cal_end, observation_end=obs_end,
        )  # fmt: skip
        row = {"data": kind, "cut": cut}
        fits = {}
        for name, spec in (("st", BGNBD()), ("te", BGNBD(time_effects=time_effects(args)))):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fits[name] = spec.fit(data, draws=args.draws, tune=args.tune, chains=4, seed=1,
                                      progressbar=False)  # fmt: skip
            row[f"{name}_seconds"] = round(time.perf_counter() - t0, 2)
            row.update({f"{name}_{k}": v for k, v in total_interval(fits[name], data, 2).items()})
            pred = clvbayes.predict.holdout.predict_holdout(fits[name], data, seed=3)
            row[f"{name}_mae"] = float(np.mean(np.abs(pred.predicted - pred.actual)))
        row["time_ratio"] = row["te_seconds"] / row["st_seconds"]
        if cut is None:
            compared = clvbayes.compare({"time effects": fits["te"], "stationary": fits["st"]})
            table = compared.table
            row["elpd_te"] = float(table.loc["time effects", "elpd_loo"])
            row["elpd_st"] = float(table.loc["stationary", "elpd_loo"])
            row["elpd_dse"] = float(table["dse"].max())
        post = fits["te"].posterior
        row["level_sigma"] = float(post["level_sigma"].mean())
        row["noise_sigma"] = float(post["noise_sigma"].mean())
        rows.append(row)
        print(row, flush=True)
    return rows


def speed(args) -> list[dict]:
    """Fit time of the stationary and the time-effect BG/NBD on CDNOW master (the papers'
    split, 4 chains x ``--draws`` after ``--tune``), alternating, ``n`` rounds in this
    process: the first round compiles (or reads the compile cache), later ones reuse the
    compiled models, as refits in a notebook do. Round ``k`` uses seed ``1 + k`` for both
    models: a fit's warm-up varies with its seed (on CDNOW master the time-effect fit's
    warm-up took 38,000-48,000 leapfrog steps over seeds), so compare means over
    rounds. Leapfrog steps per draw say whether a difference is the cost of a gradient
    or the number of them."""
    from clvbayes.datasets import load_cdnow

    data = calendar_rfm(
        load_cdnow("master"), customer_col="customer_id", date_col="date", value_col="value",
        calibration_end="1997-09-30", observation_end="1998-06-30",
    )  # fmt: skip
    rows = []
    for round_ in range(args.n):
        row: dict = {"round": round_}
        for name, spec in (("st", BGNBD()), ("te", BGNBD(time_effects=time_effects(args)))):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = spec.fit(data, draws=args.draws, tune=args.tune, chains=4,
                               seed=1 + round_, progressbar=False)  # fmt: skip
            row[f"{name}_seconds"] = round(time.perf_counter() - t0, 2)
            stats = fit.idata["sample_stats"]
            row[f"{name}_steps"] = round(float(stats["n_steps"].mean()), 2)
            row[f"{name}_compiled_from"] = fit.settings.get("compiled_from")
        row["time_ratio"] = round(row["te_seconds"] / row["st_seconds"], 2)
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    studies = ["calibration", "stationary", "recovery", "cdnow", "lfo", "speed"]
    parser.add_argument("study", choices=studies)
    parser.add_argument("n", nargs="?", type=int, default=20)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument(
        "--tune", type=int, default=None, help="tuning steps (default: the models')"
    )
    parser.add_argument(
        "--level-prior", default="", help="e.g. HalfNormal:0.05 (default: the package's)"
    )
    parser.add_argument("--tag", default="", help="suffix of the output file")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.study == "calibration":
        rows = calibration(args)
    elif args.study == "stationary":
        rows = calibration(args, shocks=False)
    elif args.study == "recovery":
        rows = recovery(args)
    elif args.study == "cdnow":
        args.draws = max(args.draws, 500)
        rows = cdnow(args)
    elif args.study == "speed":
        args.draws = max(args.draws, 500)
        rows = speed(args)
    else:
        args.draws = max(args.draws, 500)
        rows = cdnow(args, cut=26)
    frame = pd.DataFrame(rows)
    summary = {"study": args.study, "args": vars(args), "seconds": time.perf_counter() - t0}
    if args.study in ("calibration", "stationary"):
        summary.update(
            te_inside=float(frame["te_inside"].mean()),
            st_inside=float(frame["st_inside"].mean()),
            width_ratio_median=float(
                ((frame["te_q95"] - frame["te_q05"]) / (frame["st_q95"] - frame["st_q05"])).median()
            ),
            te_halfwidth_median=float(frame["te_halfwidth_over_mean"].median()),
            st_halfwidth_median=float(frame["st_halfwidth_over_mean"].median()),
            te_divergent_fits=int((frame["te_divergences"] > 0).sum()),
            te_below_q05=float((frame["te_p_below"] < 0.05).mean()),
            te_above_q95=float((frame["te_p_below"] > 0.95).mean()),
            st_below_q05=float((frame["st_p_below"] < 0.05).mean()),
            st_above_q95=float((frame["st_p_below"] > 0.95).mean()),
        )
    elif args.study == "recovery":
        summary.update({k: float(frame[k].mean()) for k in [*THETA, "f_path", "f_free"]})
    print(json.dumps(summary, indent=1))
    OUT.mkdir(exist_ok=True)
    (OUT / f"time_effects_{args.study}{args.tag}.json").write_text(
        json.dumps({"summary": summary, "rows": rows}, indent=1, default=str)
    )


if __name__ == "__main__":
    main()
