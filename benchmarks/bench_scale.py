"""Scale: a million customers end to end on one machine, 10 million for RFM and scoring.

Stages (each in a fresh interpreter; wall time of the stage's work, imports excluded;
peak memory = peak resident set of the stage's process tree, Dask workers included,
polled every 0.1 s with psutil; a tree above ``--mem-cap-gb`` is killed and reported as
out of memory; a stage above ``--timeout`` seconds is killed and reported as such):

* ``gen``      synthetic transactions (benchmarks/synthetic_transactions.write_customers:
               three BG/NBD + Gamma-Gamma segments, daily timestamps, same-day
               duplicates, heavy-tailed values), written to Parquet in chunks;
* ``rfm``      clvbayes.rfm_summary on the Parquet file (DuckDB) -> RFM Parquet;
* ``rfm-dask`` clvbayes.scale.rfm_summary_dask on a 2-worker LocalCluster;
* ``fit``      BG/NBD and Gamma-Gamma, full NUTS (nutpie, 4 chains x 1000 draws after
               1000 tuning steps) on the compressed unique rows;
* ``score``    clvbayes.predict_customers, 1,000 posterior draws, 52-week horizon, 10 %
               annual discount, P(CLV > 100), expected rank and P(top 10 %); one
               summarized row per customer written to Parquet (no draws kept);
* ``score-dask`` the same through clvbayes.scale.predict_customers_dask on a
               LocalCluster(2 workers x 1 thread, processes), partitioned Parquet out;
* anchors: lifetimes 0.11.3 (summary_data_from_transaction_data, BetaGeoFitter +
  GammaGammaFitter MLE, customer_lifetime_value) and pymc-marketing 1.3 (rfm_summary,
  BetaGeoModel/GammaGammaModel NUTS with nutpie, expected_customer_lifetime_value) on
  the same transactions.

    .venv/bin/python benchmarks/bench_scale.py --plan anchors --json out.jsonl
    .venv/bin/python benchmarks/bench_scale.py --stages score:10000000 --timeout 7200
    .venv/bin/python benchmarks/bench_scale.py --stages score:1000000 rfm-dask:1000000

(benchmarks/RESULTS.md, "Scale", has the full list of commands behind its tables.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("CLVBAYES_SCALE_DIR", "/tmp/clvbayes-scale"))
HORIZON_WEEKS = 52
ANNUAL_DISCOUNT = 0.10
N_DRAWS = 1000
NUTS = {"draws": 1000, "tune": 1000, "chains": 4}


def _paths(n: int) -> dict[str, Path]:
    return {
        "tx": DATA / f"tx_{n}.parquet",
        "rfm": DATA / f"rfm_{n}.parquet",
        # scoring above 1M customers uses the 1M fit (fit a sample, score everyone);
        # ``fit`` at any size writes its own file
        "fits": DATA / "fits_1000000.nc" if n > 1_000_000 else DATA / f"fits_{n}.nc",
        "fits_out": DATA / f"fits_{n}.nc",
        "scores": DATA / f"scores_{n}.parquet",
        "scores_dask": DATA / f"scores_dask_{n}",
        "lt": DATA / f"lifetimes_{n}.parquet",
        "pm": DATA / f"pymc_marketing_{n}.parquet",
    }


def _cluster():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return cluster, Client(cluster)


# --- stages (run inside the worker interpreter) ---------------------------------------


def stage_gen(n: int) -> dict:
    sys.path.insert(0, str(HERE))
    import pyarrow.parquet as pq
    from synthetic_transactions import write_customers

    p = _paths(n)
    t = time.perf_counter()
    write_customers(n, p["tx"])
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "transactions": pq.ParquetFile(p["tx"]).metadata.num_rows}


def stage_rfm(n: int) -> dict:
    import clvbayes

    p = _paths(n)
    t = time.perf_counter()
    rfm = clvbayes.rfm_summary(
        p["tx"], customer_col="customer_id", date_col="date", value_col="value"
    )
    seconds = time.perf_counter() - t
    rfm.to_parquet(p["rfm"])
    return {"seconds": seconds, "customers": len(rfm), "repeaters": int((rfm.frequency > 0).sum())}


def stage_rfm_dask(n: int) -> dict:
    import pandas as pd

    from clvbayes.scale import rfm_summary_dask

    p = _paths(n)
    cluster, client = _cluster()
    try:
        t = time.perf_counter()
        out = DATA / f"rfm_dask_{n}"
        rfm_summary_dask(
            str(p["tx"]), customer_col="customer_id", date_col="date", value_col="value"
        ).to_parquet(out, write_index=False, overwrite=True)
        seconds = time.perf_counter() - t
    finally:
        client.close()
        cluster.close()
    got = pd.read_parquet(out).sort_values("customer_id", ignore_index=True)
    ref = pd.read_parquet(p["rfm"])
    exact = [c for c in ref if c != "monetary_value"]
    # monetary_value is a DuckDB sum, whose float order varies even between two runs of
    # rfm_summary; every other column must be identical
    rel = ((got.monetary_value - ref.monetary_value).abs() / ref.monetary_value.abs().clip(1)).max()
    return {
        "seconds": seconds,
        "customers": len(got),
        "identical_except_value": bool(got[exact].equals(ref[exact])),
        "value_max_rel_diff": float(rel),
    }


def stage_fit(n: int) -> dict:
    import pandas as pd

    import clvbayes

    p = _paths(n)
    rfm = pd.read_parquet(p["rfm"])
    out: dict = {}
    t = time.perf_counter()
    bg = clvbayes.BGNBD().fit(rfm, seed=1, progressbar=False, **NUTS)
    out["bgnbd_seconds"] = time.perf_counter() - t
    t = time.perf_counter()
    gg = clvbayes.GammaGamma().fit(rfm, seed=1, progressbar=False, **NUTS)
    out["gg_seconds"] = time.perf_counter() - t
    out["seconds"] = out["bgnbd_seconds"] + out["gg_seconds"]
    out["bgnbd_unique_rows"] = bg.data.n_rows
    out["gg_unique_rows"] = gg.data.n_rows
    out["problems"] = len(bg.problems) + len(gg.problems)
    out["means"] = {k: round(float(v.mean()), 4) for f in (bg, gg) for k, v in f.params().items()}
    clvbayes.save({"bgnbd": bg, "spend": gg}, p["fits_out"])
    return out


def _score_options(n_draws: int = N_DRAWS) -> dict:
    return {
        "horizon": HORIZON_WEEKS,
        "time_unit": "W",
        "annual_discount": ANNUAL_DISCOUNT,
        "thresholds": [100],
        "n_draws": n_draws,
        "seed": 1,
    }


def stage_score(n: int, n_draws: int = N_DRAWS) -> dict:
    import pandas as pd

    import clvbayes

    p = _paths(n)
    fits = clvbayes.load(p["fits"])
    rfm = pd.read_parquet(p["rfm"])
    t = time.perf_counter()
    res = clvbayes.predict_customers(
        fits["bgnbd"], rfm, spend_fit=fits["spend"], keep_draws=(), **_score_options(n_draws)
    )
    res.summary.to_parquet(p["scores"])
    seconds = time.perf_counter() - t
    return {
        "seconds": seconds,
        "rows": len(res.summary),
        "sum_clv": float(res.summary.clv_mean.sum()),
    }


def stage_score_dask(n: int, ranks: bool = True, n_draws: int = N_DRAWS) -> dict:
    import dask.dataframe as dd

    import clvbayes
    from clvbayes.scale import predict_customers_dask

    p = _paths(n)
    fits = clvbayes.load(p["fits"])
    cluster, client = _cluster()
    try:
        t = time.perf_counter()
        rfm = dd.read_parquet(p["rfm"]).repartition(npartitions=max(2, n // 100_000))
        options = {**_score_options(), "n_draws": n_draws}
        res = predict_customers_dask(
            fits["bgnbd"],
            rfm,
            spend_fit=fits["spend"],
            out=p["scores_dask"],
            overwrite=True,
            ranks=ranks,
            memory_limit_mb=512,
            **options,
        )
        seconds = time.perf_counter() - t
        rows = len(res)
        total = float(res["clv_mean"].sum().compute())
    finally:
        client.close()
        cluster.close()
    return {"seconds": seconds, "rows": rows, "sum_clv": total, "draws": n_draws}


def stage_lifetimes(n: int, part: str) -> dict:
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    p = _paths(n)
    if part == "rfm":
        tx = pd.read_parquet(p["tx"], columns=["customer_id", "date", "value"])
        t = time.perf_counter()
        s = summary_data_from_transaction_data(
            tx, "customer_id", "date", monetary_value_col="value", freq="D", freq_multiplier=1
        )
        seconds = time.perf_counter() - t
        s["T"] /= 7.0
        s["recency"] /= 7.0
        s.to_parquet(p["lt"])
        return {"seconds": seconds, "customers": len(s)}
    s = pd.read_parquet(p["lt"])
    t = time.perf_counter()
    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(s["frequency"], s["recency"], s["T"])
    rep = s[(s.frequency > 0) & (s.monetary_value > 0)]
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(rep["frequency"], rep["monetary_value"])
    fit_seconds = time.perf_counter() - t
    if part == "fit":
        return {"seconds": fit_seconds}
    t = time.perf_counter()
    clv = ggf.customer_lifetime_value(
        bgf, s["frequency"], s["recency"], s["T"], s["monetary_value"],
        time=12, discount_rate=(1 + ANNUAL_DISCOUNT) ** (1 / 12) - 1, freq="W",
    )  # fmt: skip
    return {"seconds": time.perf_counter() - t, "rows": len(clv), "sum_clv": float(clv.sum())}


def stage_pymc_marketing(n: int, part: str) -> dict:
    import pandas as pd
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel
    from pymc_marketing.clv.utils import rfm_summary

    p = _paths(n)
    if part == "rfm":
        tx = pd.read_parquet(p["tx"], columns=["customer_id", "date", "value"])
        t = time.perf_counter()
        s = rfm_summary(tx, "customer_id", "date", "value", time_unit="D")
        seconds = time.perf_counter() - t
        s["T"] /= 7.0
        s["recency"] /= 7.0
        s.to_parquet(p["pm"])
        return {"seconds": seconds, "customers": len(s)}
    s = pd.read_parquet(p["pm"])
    rep = s[(s.frequency > 0) & (s.monetary_value > 0)]
    bg_data = s[["customer_id", "frequency", "recency", "T"]]
    gg_data = rep[["customer_id", "frequency", "monetary_value"]]
    bgm, ggm = BetaGeoModel(), GammaGammaModel()
    if part == "fit":
        t = time.perf_counter()
        kw = {**NUTS, "nuts_sampler": "nutpie", "random_seed": 1, "progressbar": False}
        bgm.fit(bg_data, **kw)
        ggm.fit(gg_data, **kw)
        return {"seconds": time.perf_counter() - t}
    # CLV stage: the clvbayes posterior (same 1,000 draws), as bench_predict.py does
    import xarray as xr

    import clvbayes

    fits = clvbayes.load(_paths(n)["fits"])
    bgm.build_model(bg_data)
    ggm.build_model(gg_data)
    bg_post, gg_post = fits["bgnbd"].posterior, fits["spend"].posterior
    bgm.fit_result = xr.DataTree.from_dict({"posterior": bg_post[["r", "alpha", "a", "b"]]})
    ggm.fit_result = xr.DataTree.from_dict({"posterior": gg_post[["p", "q", "v"]]})
    t = time.perf_counter()
    clv = ggm.expected_customer_lifetime_value(
        bgm,
        s[["customer_id", "frequency", "recency", "T", "monetary_value"]],
        future_t=12,
        discount_rate=(1 + ANNUAL_DISCOUNT) ** (1 / 12) - 1,
        time_unit="W",
    )
    values = clv.values
    return {"seconds": time.perf_counter() - t, "rows": int(values.size)}


STAGES = {
    "gen": stage_gen,
    "rfm": stage_rfm,
    "rfm-dask": stage_rfm_dask,
    "fit": stage_fit,
    "score": stage_score,
    "score-100draws": lambda n: stage_score(n, n_draws=100),
    "score-dask": stage_score_dask,
    "score-dask-100draws": lambda n: stage_score_dask(n, n_draws=100),
    "lifetimes-rfm": lambda n: stage_lifetimes(n, "rfm"),
    "lifetimes-fit": lambda n: stage_lifetimes(n, "fit"),
    "lifetimes-clv": lambda n: stage_lifetimes(n, "clv"),
    "pymc-marketing-rfm": lambda n: stage_pymc_marketing(n, "rfm"),
    "pymc-marketing-fit": lambda n: stage_pymc_marketing(n, "fit"),
    "pymc-marketing-clv": lambda n: stage_pymc_marketing(n, "clv"),
}


# --- driver ----------------------------------------------------------------------------


def run_stage(stage: str, n: int, timeout: float, cap_gb: float) -> dict:
    """Run one stage in a fresh interpreter; poll its process tree's memory."""
    import psutil

    cmd = [sys.executable, __file__, "--worker", stage, str(n)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak, start, status = 0, time.perf_counter(), None
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            rss = sum(pr.memory_info().rss for pr in tree if pr.is_running())
        except psutil.Error:
            rss = 0
        peak = max(peak, rss)
        if rss > cap_gb * 2**30:
            status = f"out of memory (> {cap_gb:g} GiB)"
        elif time.perf_counter() - start > timeout:
            status = f"timeout (> {timeout:g} s)"
        if status:
            for pr in reversed([root, *root.children(recursive=True)]):
                try:
                    pr.kill()
                except psutil.Error:
                    pass
            break
        time.sleep(0.1)
    stdout, stderr = proc.communicate()
    result = {"stage": stage, "n": n, "peak_mb": round(peak / 2**20)}
    if status:
        result["error"] = status
    elif proc.returncode != 0:
        result["error"] = (stderr.strip().splitlines() or ["?"])[-1][:200]
    else:
        result.update(json.loads(stdout.strip().splitlines()[-1]))
        result["seconds"] = round(result["seconds"], 2)
    return result


PLANS = {
    # the run recorded in RESULTS.md, in priority order
    "recorded": [
        *[(s, 1_000_000) for s in ("gen", "rfm", "rfm-dask", "fit", "score-dask-100draws")],
        *[(s, 10_000) for s in ("gen", "rfm", "fit", "score", "lifetimes-rfm",
                                "lifetimes-fit", "lifetimes-clv", "pymc-marketing-rfm",
                                "pymc-marketing-fit", "pymc-marketing-clv")],
        *[(s, 1_000_000) for s in ("lifetimes-rfm", "pymc-marketing-rfm", "lifetimes-fit",
                                   "lifetimes-clv", "pymc-marketing-clv")],
        *[(s, 10_000_000) for s in ("gen", "rfm")],
    ],
    # session 5: the 100k row and the anchors at 1M and 10M. pymc-marketing's NUTS fit
    # is left out: at 100k customers it did not finish within 10 minutes
    # (bench_fit.py --sizes 100000), so it cannot at 1M. 10M scoring with 1,000 draws
    # runs on its own: --stages score:10000000 --timeout 7200
    "anchors": [
        *[(s, 1_000_000) for s in ("gen", "rfm", "fit")],
        *[(s, 100_000) for s in ("gen", "rfm", "fit", "score", "lifetimes-rfm",
                                 "lifetimes-fit", "lifetimes-clv", "pymc-marketing-rfm",
                                 "pymc-marketing-clv")],
        *[(s, 1_000_000) for s in ("lifetimes-rfm", "lifetimes-fit", "lifetimes-clv",
                                   "pymc-marketing-rfm")],
        *[(s, 10_000_000) for s in ("gen", "rfm", "lifetimes-rfm", "pymc-marketing-rfm")],
    ],
    # the full plan (1,000 draws at 1M and 100k anchors): hours on a busy 2-core machine
    "full": [
        *[(s, 1_000_000) for s in ("gen", "rfm", "rfm-dask", "fit", "score", "score-dask")],
        *[(s, n) for n in (10_000, 100_000) for s in ("gen", "rfm", "fit", "score",
          "lifetimes-rfm", "lifetimes-fit", "lifetimes-clv", "pymc-marketing-rfm",
          "pymc-marketing-fit", "pymc-marketing-clv")],
        *[(s, 1_000_000) for s in ("lifetimes-rfm", "pymc-marketing-rfm", "lifetimes-fit",
                                   "lifetimes-clv", "pymc-marketing-fit",
                                   "pymc-marketing-clv")],
        *[(s, 10_000_000) for s in ("gen", "rfm", "score-dask-100draws")],
    ],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("STAGE", "N"))
    parser.add_argument("--plan", choices=sorted(PLANS))
    parser.add_argument("--stages", nargs="*", default=[], help="STAGE:N pairs")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--mem-cap-gb", type=float, default=8)
    parser.add_argument("--json", type=Path, default=None, help="append results here")
    args = parser.parse_args()
    if args.worker:
        stage, n = args.worker
        print(json.dumps(STAGES[stage](int(n))))
        return
    DATA.mkdir(parents=True, exist_ok=True)
    todo = list(PLANS.get(args.plan, []))
    todo += [(s.split(":")[0], int(s.split(":")[1])) for s in args.stages]
    for stage, n in todo:
        res = run_stage(stage, n, args.timeout, args.mem_cap_gb)
        print(json.dumps(res), flush=True)
        if args.json:
            with args.json.open("a") as fh:
                fh.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
