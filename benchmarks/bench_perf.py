"""Issue 19: cold-start fitting with the compile cache, and scoring throughput.

* ``fit``: the BG/NBD fitted with NUTS (nutpie, 4 chains x 1000 draws after 1000 tuning
  steps) on CDNOW master in a fresh interpreter, timed from the interpreter's start
  (imports, data, build, compilation, sampling): with an empty compile cache (cold),
  then in fresh interpreters with the cache the first one filled (warm), alternating
  with pymc-marketing's ``BetaGeoModel`` (nutpie) timed the same way (``--repeats``
  rounds; the issue's rule is the best of two). Every timed process fits once and
  exits, so its wall time is one fit's. A last clvbayes process (warm, not part of the
  comparison) fits the same structure a second time and reports how long that fit took
  until nutpie started sampling (``second_fit_to_sampling_s``).
* ``segments``: the BG/NBD on CDNOW master pooled and with partially pooled segments of
  customers by first-purchase date (3 calendar-month cohorts, then 10 and 50 groups of
  consecutive first-purchase days of about equal size), default settings, each in a
  fresh interpreter with a warm compile cache (the first run of a structure compiles;
  ``compiled_from`` says which); wall time of the fit, leapfrog steps per draw,
  divergences.
* ``score``: :func:`clvbayes.predict_customers` (BG/NBD + Gamma-Gamma, 52 weeks, 10 %
  annual discount, P(CLV > 100), ranks and P(top 10 %)) on synthetic CDNOW-like
  customers with ``n_draws`` posterior draws, in a fresh interpreter; throughput =
  customers x draws / second of the call; the process's peak resident memory.
  ``--tree`` points at another checkout (e.g. the code before the compiled kernel) to
  compare; ``--variants`` splits the cost:
  ``no-ranks`` leaves out the per-draw ranking (expected rank, P(top 10 %)), ``counts``
  simulates purchases only (no values, no discounting, no thresholds).

* ``ranks``: the rank pass alone (:func:`clvbayes.predict.summaries.rank_columns`,
  expected rank and P(top 10 %)) on CLV-like draws held in memory (Gamma(0.5, 50),
  70 % zeros), on one thread and on two: milliseconds per draw; ``--tree`` as above.

* ``gradient``: microseconds per call of the compiled log density and gradient (the
  function nutpie calls once per leapfrog step) of each family on CDNOW master (the
  papers' split; built as a fit builds them), compiled with PyTensor's default rewrites
  and without the ones :data:`clvbayes.models.compiled.EXCLUDED_REWRITES` leaves out
  (best of 5 x 300 calls at a fixed point), with the largest difference in value and
  gradient between the two.

    python benchmarks/bench_perf.py fit [--anchor] [--repeats 2]
    python benchmarks/bench_perf.py segments [--groups 1 3 10 50]
    python benchmarks/bench_perf.py score --customers 200000 --draws 500 [--tree DIR]
        [--variants full no-ranks counts]
    python benchmarks/bench_perf.py ranks --customers 10000000 --draws 64 [--tree DIR]
    python benchmarks/bench_perf.py gradient [--cases BG te-BG ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
POSTERIOR = Path(tempfile.gettempdir()) / "clvbayes-bench-perf-posterior.nc"

_FIT = """
import time, json
start = time.perf_counter()
import sys
sys.path.insert(0, {bench!r})
from bench_fit import load_rfm
rfm = load_rfm("cdnow")
kw = dict(draws=1000, tune=1000, chains=4)
second = None
if {tool!r} == "clvbayes":
    from clvbayes import BGNBD
    fit = BGNBD().fit(rfm, seed=1, progressbar=False, **kw)
    seconds = time.perf_counter() - start
    source = fit.settings.get("compiled_from")
    means = {{k: round(float(fit.posterior[k].mean()), 4) for k in ("r", "alpha", "a", "b")}}
    if {second!r}:  # not in a timed run: its wall time would include this fit
        import nutpie
        started = []
        real_sample = nutpie.sample
        def sample(*args, **kwargs):
            started.append(time.perf_counter())
            return real_sample(*args, **kwargs)
        nutpie.sample = sample
        t0 = time.perf_counter()
        BGNBD().fit(rfm, seed=2, progressbar=False, **kw)
        second = round(started[0] - t0, 3)
else:
    from pymc_marketing.clv import BetaGeoModel
    m = BetaGeoModel()
    m.fit(rfm[["customer_id", "frequency", "recency", "T"]], nuts_sampler="nutpie",
          random_seed=1, progressbar=False, **kw)
    seconds = time.perf_counter() - start
    source = None
    post = m.idata["posterior"]
    means = {{k: round(float(post[k].mean()), 4) for k in ("r", "alpha", "a", "b")}}
print(json.dumps({{"seconds_in_process": round(seconds, 2), "compiled_from": source,
                  "means": means, "second_fit_to_sampling_s": second}}))
"""

_SEGMENTS = """
import time, json, sys
start = time.perf_counter()
sys.path.insert(0, {bench!r})
import numpy as np
from bench_fit import load_rfm
from clvbayes import BGNBD
from clvbayes.datasets import load_cdnow
rfm = load_rfm("cdnow")
groups = {groups}
if groups == 1:
    spec = BGNBD()
else:
    tx = load_cdnow("master")
    first = tx.groupby("customer_id")["date"].min()
    first = first.reindex(rfm["customer_id"]).to_numpy()
    if groups == 3:
        labels = first.astype("datetime64[M]").astype(str)
    else:  # consecutive first-purchase days, about equal numbers of customers
        days = first.astype("datetime64[D]").astype(np.int64)
        edges = np.quantile(days, np.linspace(0, 1, groups + 1)[1:-1])
        labels = np.searchsorted(edges, days, side="right").astype(str)
    rfm = rfm.assign(cohort=labels)
    spec = BGNBD(segments="cohort")
ready = time.perf_counter()
fit = spec.fit(rfm, seed=1, progressbar=False)
seconds = time.perf_counter() - ready
stats = fit.idata["sample_stats"]
print(json.dumps({{"groups": groups, "segments": int(rfm["cohort"].nunique()) if groups > 1 else 1,
                  "fit_seconds": round(seconds, 2), "compiled_from": fit.settings.get("compiled_from"),
                  "steps_per_draw": round(float(stats["n_steps"].mean()), 1),
                  "divergences": int(stats["diverging"].sum()),
                  "settings": {{k: fit.settings.get(k) for k in ("draws", "tune", "chains", "target_accept")}}}}))
"""

_SCORE = """
import time, json, sys
sys.path.insert(0, {bench!r})
from bench_fit import load_rfm
import clvbayes
models = clvbayes.load({posterior!r})
rfm = load_rfm({customers!r})
kw = dict(horizon=52, spend_fit=models["spend"], time_unit="W", annual_discount=0.1,
          thresholds=[100], n_draws={draws}, seed=1, keep_draws=())
variant = {variant!r}
if variant == "no-ranks":  # no per-draw ranking pass: no expected rank, no P(top 10 %)
    kw.update(ranks=False, top=())
elif variant == "counts":  # purchases only: no values, no discounting, no ranks
    kw.update(ranks=False, top=(), thresholds=[], spend_fit=None, annual_discount=0.0)
clvbayes.predict_customers(models["bgnbd"], rfm.iloc[:200], **kw)  # loads compiled code
import clvbayes.predict.customers as scoring
rank_seconds = []
rank_columns = scoring.rank_columns
def timed_rank_columns(*args, **kwargs):  # the rank pass after the scoring loop
    t0 = time.perf_counter()
    out = rank_columns(*args, **kwargs)
    rank_seconds.append(time.perf_counter() - t0)
    return out
scoring.rank_columns = timed_rank_columns
start = time.perf_counter()
res = clvbayes.predict_customers(models["bgnbd"], rfm, **kw)
seconds = time.perf_counter() - start
import resource
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
clv = "clv_mean" in res.summary
print(json.dumps({{"variant": variant, "module": clvbayes.__file__, "seconds": round(seconds, 2), "customers": len(rfm), "draws": {draws},
                  "rank_pass_seconds": round(sum(rank_seconds), 2), "peak_rss_mb": round(peak_mb),
                  "elements_per_second": round(len(rfm) * {draws} / seconds),
                  "sum_clv_mean": round(float(res.summary["clv_mean"].sum())) if clv else None,
                  "sum_clv_conditional": round(float(res.summary["clv_conditional_mean"].sum())) if clv else None}}))
"""


def _run(code: str, env: dict[str, str], tree: Path = HERE.parent) -> dict:
    """``code`` in a fresh interpreter started in ``tree`` (``python -c`` imports from the
    working directory first: that checkout's clvbayes is the one timed)."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=tree,
        timeout=3600,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - start, 2)
    result["load_average"] = os.getloadavg()[0]
    return result


def fit(anchor: bool, repeats: int) -> list[dict]:
    rows = []

    def run(tool: str, env: dict[str, str], label: str, second: bool = False) -> None:
        result = _run(_FIT.format(bench=str(HERE), tool=tool, second=second), env)
        rows.append({"tool": tool, "cache": label, **result})
        print(json.dumps(rows[-1]), flush=True)

    with tempfile.TemporaryDirectory(prefix="clvbayes-cache-") as cache:
        env = {**os.environ, "CLVBAYES_CACHE_DIR": cache}
        run("clvbayes", env, "cold")
        for _ in range(repeats):
            run("clvbayes", env, "warm")
            if anchor:
                run("pymc-marketing", dict(os.environ), "")
        run("clvbayes", env, "warm, then a second fit (wall not comparable)", second=True)
    return rows


def segments(groups: list[int]) -> list[dict]:
    rows = []
    for g in groups:
        result = _run(_SEGMENTS.format(bench=str(HERE), groups=g), dict(os.environ))
        rows.append(result)
        print(json.dumps(result), flush=True)
    return rows


def score(customers: int, draws: int, tree: str | None, variant: str = "full") -> dict:
    if not POSTERIOR.exists():  # BG/NBD + Gamma-Gamma on CDNOW master, 4 x 250 draws
        sys.path.insert(0, str(HERE))
        from bench_predict import make_posterior

        make_posterior(POSTERIOR)
    root = HERE.parent if tree is None else Path(tree).resolve()
    env = {**os.environ, "PYTHONPATH": str(root)}
    code = _SCORE.format(
        bench=str(HERE),
        posterior=str(POSTERIOR),
        customers=str(customers),
        draws=draws,
        variant=variant,
    )
    result = {"tree": str(root), **_run(code, env, root)}
    print(json.dumps(result), flush=True)
    return result


_RANKS = """
import time, json
import numpy as np
from clvbayes.predict.summaries import rank_columns
rng = np.random.default_rng(0)
n, d = {customers}, {draws}
clv = np.empty((d, n), np.float32)
for i in range(d):
    row = rng.gamma(0.5, 50, n).astype(np.float32)
    row[rng.random(n) < 0.7] = 0
    clv[i] = row
rank_columns(clv[:8, :1000], (0.1,))  # loads the compiled code
out = {{"customers": n, "draws": d}}
for jobs in (1, 2):
    start = time.perf_counter()
    rank_columns(clv, (0.1,), n_jobs=jobs)
    out[f"ms_per_draw_{{jobs}}_threads"] = round((time.perf_counter() - start) / d * 1e3, 1)
print(json.dumps(out))
"""


def ranks(customers: int, draws: int, tree: str | None) -> dict:
    root = HERE.parent if tree is None else Path(tree).resolve()
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = {"tree": str(root), **_run(_RANKS.format(customers=customers, draws=draws), env, root)}
    print(json.dumps(result), flush=True)
    return result


def _gradient_cases() -> dict:
    import numpy as np

    import clvbayes as cb
    from clvbayes.datasets import load_cdnow

    log = load_cdnow("master")
    cols = dict(customer_col="customer_id", date_col="date", value_col="value")
    calendar = cb.calendar_rfm(
        log, **cols, calibration_end="1997-09-30", observation_end="1998-06-30"
    )
    rfm = cb.rfm_summary(log, **cols, calibration_end="1997-09-30").copy()
    rfm["web"] = np.random.default_rng(1).integers(0, 2, len(rfm)).astype(float)
    rfm["cohort"] = np.digitize(rfm["T"], rfm["T"].quantile([1 / 3, 2 / 3])).astype(str)
    return {
        "BG": (cb.BGNBD(), rfm),
        "MBG": (cb.MBGNBD(), rfm),
        "PNBD": (cb.ParetoNBD(), rfm),
        "GG": (cb.GammaGamma(), rfm[rfm["frequency"] > 0]),
        "BG-covariate": (cb.BGNBD(purchase_covariates=["web"], dropout_covariates=["web"]), rfm),
        "BG-3-segments": (cb.BGNBD(segments="cohort"), rfm),
        "te-BG": (cb.BGNBD(time_effects=True), calendar),
        "te-MBG": (cb.MBGNBD(time_effects=True), calendar),
    }


def gradient(names: list[str] | None) -> list[dict]:
    import warnings

    import numpy as np
    import nutpie.compile_pymc as ncp
    from pytensor import config

    from clvbayes.models.compiled import compile_mode
    from clvbayes.models.shared_data import SharedRFM

    warnings.simplefilter("ignore")
    cases = _gradient_cases()
    rows = []
    for name in names or list(cases):
        spec, rfm = cases[name]
        data = spec.prepare(rfm)
        model = spec.build(SharedRFM(data) if spec.reusable_compilation else data)
        row: dict = {"case": name}
        results = {}
        for label, mode in (("default", compile_mode(())), ("excluded", compile_mode())):
            with config.change_flags(numba__fastmath=False):
                n_dim, _, fn, *_ = ncp._make_functions(
                    model, mode=mode, compute_grad=True, join_expanded=True,
                    pymc_initial_point_fn=lambda seed=None: {}, var_names=None,
                )  # fmt: skip
            x = np.random.default_rng(0).normal(size=n_dim) * 0.1
            results[label] = fn(x)
            best = float("inf")
            for _ in range(5):
                start = time.perf_counter()
                for _ in range(300):
                    fn(x)
                best = min(best, (time.perf_counter() - start) / 300)
            row[f"{label}_us"] = round(best * 1e6, 1)
        row["ratio"] = round(row["excluded_us"] / row["default_us"], 3)
        row["max_abs_diff"] = float(
            max(np.max(np.abs(np.asarray(a) - np.asarray(b)))
                for a, b in zip(results["default"], results["excluded"], strict=True))
        )  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--anchor", action="store_true", help="also time pymc-marketing")
    f.add_argument("--repeats", type=int, default=2, help="warm/anchor rounds")
    g = sub.add_parser("segments")
    g.add_argument("--groups", type=int, nargs="*", default=[1, 3, 10, 50])
    s = sub.add_parser("score")
    s.add_argument("--customers", type=int, default=200_000)
    s.add_argument("--draws", type=int, default=500)
    s.add_argument("--tree", default=None, help="checkout whose clvbayes to import")
    s.add_argument(
        "--variants",
        nargs="*",
        default=["full"],
        choices=["full", "no-ranks", "counts"],
        help="what is computed: everything; without the per-draw ranks; purchases only",
    )
    r = sub.add_parser("ranks")
    r.add_argument("--customers", type=int, default=10_000_000)
    r.add_argument("--draws", type=int, default=64)
    r.add_argument("--tree", default=None, help="checkout whose clvbayes to import")
    d = sub.add_parser("gradient")
    d.add_argument("--cases", nargs="*", default=None, help="default: every case")
    args = parser.parse_args()
    if args.what == "gradient":
        gradient(args.cases)
    elif args.what == "fit":
        fit(args.anchor, args.repeats)
    elif args.what == "segments":
        segments(args.groups)
    elif args.what == "ranks":
        ranks(args.customers, args.draws, args.tree)
    else:
        for variant in args.variants:
            score(args.customers, args.draws, args.tree, variant)


if __name__ == "__main__":
    main()
