"""Full-NUTS fitting speed: clvbayes vs pymc-marketing 1.3, side by side in one run.

Each (tool, model, data) case runs in a fresh interpreter so that compilation is
included and no cache is shared; all cases use 4 chains x 1000 draws after 1000 tuning
steps with nutpie. Reported: wall time (import + build + compile + sample), minimum bulk
ESS over the population parameters, ESS per second, posterior means, and the ratio
pymc-marketing / clvbayes.

    python benchmarks/bench_fit.py                      # CDNOW master + synthetic 100k, 1M
    python benchmarks/bench_fit.py --sizes 100000       # choose synthetic sizes
    python benchmarks/bench_fit.py --pareto             # + Pareto/NBD on the CDNOW sample
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

TIMEOUT = 600  # seconds: an anchor that takes longer is reported as not finishing
PARAMS = {
    "bgnbd": ["r", "alpha", "a", "b"],
    "gg": ["p", "q", "v"],
    "pnbd": ["r", "alpha", "s", "beta"],
}
# Pareto/NBD: the CDNOW sample and the setting of pymc-marketing's own report (2 chains x
# 600 draws after 600 tuning steps, its default PyMC NUTS: its likelihood's hypergeometric
# gradient has no numba implementation for nutpie).
PNBD_DRAWS = {"draws": 600, "tune": 600, "chains": 2}
# simulation truth for synthetic data (CDNOW-like, weeks; spend in dollars)
TRUTH = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 3.8, "v": 15.0}


def load_rfm(dataset: str):
    """RFM table for 'cdnow' (master, calibration to 1997-09-30) or a synthetic size."""
    import numpy as np
    import pandas as pd

    if dataset in ("cdnow", "sample"):
        import clvbayes
        from clvbayes.datasets import load_cdnow

        tx = load_cdnow("master" if dataset == "cdnow" else "sample")
        return clvbayes.rfm_summary(
            tx,
            customer_col="customer_id",
            date_col="date",
            value_col="value",
            calibration_end="1997-09-30",
        )
    from clvbayes.simulate import simulate_bgnbd, simulate_gamma_gamma

    n = int(dataset)
    rng = np.random.default_rng(2024)
    T = rng.uniform(27, 39, size=n).round(1)  # 12 weeks of acquisition, 39-week window
    sim = simulate_bgnbd(TRUTH["r"], TRUTH["alpha"], TRUTH["a"], TRUTH["b"], T, rng=rng)
    spend = simulate_gamma_gamma(TRUTH["p"], TRUTH["q"], TRUTH["v"], sim["frequency"], rng=rng)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "frequency": sim["frequency"],
            "recency": sim["recency"],
            "T": sim["T"],
            "monetary_value": spend,
        }
    )


def _anchor_gg_priors() -> dict:
    """pymc-marketing 1.3's GammaGammaModel default priors (``default_model_config``)."""
    from pymc_extras.prior import Prior

    return {
        "p": Prior("Weibull", alpha=2, beta=1),
        "q": Prior("Weibull", alpha=2, beta=1),
        "v": Prior("Weibull", alpha=2, beta=10),
    }


def _anchor_bgnbd_priors() -> dict:
    """pymc-marketing 1.3's BetaGeoModel default priors (``default_model_config``)."""
    from pymc_extras.prior import Prior

    return {
        "alpha": Prior("Weibull", alpha=2, beta=10),
        "r": Prior("Weibull", alpha=2, beta=1),
        "phi_dropout": Prior("Uniform", lower=0, upper=1),
        "kappa_dropout": Prior("Pareto", alpha=1, m=1),
    }


# --same-priors: clvbayes fitted with the anchor's priors, so that the posterior means
# must agree within Monte-Carlo error (with each tool's own defaults they differ by prior)
ANCHOR_PRIORS = {"gg": _anchor_gg_priors, "bgnbd": _anchor_bgnbd_priors}


def worker(tool: str, model: str, dataset: str) -> dict:
    """Fit one case and return timings and results (runs in a fresh process)."""
    start = time.perf_counter()
    rfm = load_rfm(dataset)
    if model == "gg":
        rfm = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    data_seconds = time.perf_counter() - start
    start = time.perf_counter()
    kw = PNBD_DRAWS if model == "pnbd" else {"draws": 1000, "tune": 1000, "chains": 4}
    if tool in ("clvbayes", "clvbayes-anchor-priors"):
        from clvbayes.models import BGNBD, GammaGamma, ParetoNBD

        priors = ANCHOR_PRIORS[model]() if tool == "clvbayes-anchor-priors" else None
        spec = {"bgnbd": BGNBD, "gg": GammaGamma, "pnbd": ParetoNBD}[model](priors)
        fitted = spec.fit(rfm, seed=1, progressbar=False, **kw)
        posterior = fitted.posterior
    elif model == "pnbd":
        from pymc_marketing.clv import ParetoNBDModel

        m = ParetoNBDModel()
        m.fit(
            rfm[["customer_id", "frequency", "recency", "T"]],
            method="mcmc",
            random_seed=1,
            progressbar=False,
            **kw,
        )
        posterior = m.idata["posterior"].to_dataset()
    else:
        from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

        if model == "bgnbd":
            m = BetaGeoModel()
            cols = ["customer_id", "frequency", "recency", "T"]
        else:
            m = GammaGammaModel()
            cols = ["customer_id", "frequency", "monetary_value"]
        m.fit(rfm[cols], nuts_sampler="nutpie", random_seed=1, progressbar=False, **kw)
        posterior = (
            m.idata["posterior"].to_dataset() if hasattr(m.idata, "children") else m.idata.posterior
        )
    seconds = time.perf_counter() - start
    import arviz as az

    names = PARAMS[model]
    ess = az.ess(posterior[names], method="bulk")
    mcse = az.mcse(posterior[names], method="mean")
    min_ess = min(float(ess[n]) for n in names)
    return {
        "tool": tool,
        "model": model,
        "dataset": dataset,
        "customers": len(rfm),
        "data_seconds": round(data_seconds, 2),
        "fit_seconds": round(seconds, 2),
        "min_ess_bulk": round(min_ess),
        "ess_per_second": round(min_ess / seconds, 1),
        "means": {n: round(float(posterior[n].mean()), 4) for n in names},
        "mcse": {n: round(float(mcse[n]), 4) for n in names},
    }


_WARM = "import pymc, nutpie, arviz, pymc_marketing.clv, clvbayes.models, clvbayes.datasets"


def _settle(seconds: float) -> None:
    """Flush dirty pages, wait, and warm the page cache, so that a case does not pay for
    the previous one: measured (session 5), the clvbayes Gamma-Gamma case right after
    the pymc-marketing BG/NBD process took 16-21 s instead of 8 s, 8-10 s of it loading
    the data and libraries from disk again (that process had pushed them out of the page
    cache). An untimed interpreter importing both tools' libraries first puts every case
    on the same warm cache."""
    if seconds > 0:
        os.sync()
        time.sleep(seconds)
    subprocess.run([sys.executable, "-c", _WARM], capture_output=True, check=False)


def run_case(tool: str, model: str, dataset: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", tool, model, dataset]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=True)
    except subprocess.TimeoutExpired:
        return {"tool": tool, "model": model, "dataset": dataset, "error": f"> {TIMEOUT} s"}
    except subprocess.CalledProcessError as err:
        tail = (err.stderr or "").strip().splitlines()[-1:] or ["?"]
        return {"tool": tool, "model": model, "dataset": dataset, "error": tail[0][:120]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _seconds(result: dict) -> str:
    if "fit_seconds" not in result:
        return str(result.get("error", "-"))
    spread = f" ({result['range']})" if "range" in result else ""
    return f"{result['fit_seconds']}{spread}"


def _medians(results: list[dict]) -> list[dict]:
    """One result per (tool, model, data): with ``--repeat``, the run of median time,
    its ``fit_seconds`` shown as ``median (min-max)`` in the table's ``range`` field."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["tool"], r["model"], r["dataset"]), []).append(r)
    out = []
    for runs in groups.values():
        timed = sorted((r for r in runs if "fit_seconds" in r), key=lambda r: r["fit_seconds"])
        if not timed:
            out.append(runs[0])
            continue
        median = dict(timed[(len(timed) - 1) // 2])
        if len(timed) > 1:
            median["range"] = f"{timed[0]['fit_seconds']}-{timed[-1]['fit_seconds']}"
        out.append(median)
    return out


def table(results: list[dict]) -> str:
    lines = [
        "| data | model | customers | clvbayes s | pymc-marketing s | speed-up | "
        "clvbayes ESS/s | pymc-marketing ESS/s | ESS/s ratio | posterior means (ours / theirs) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    keyed = {(r["tool"], r["model"], r["dataset"]): r for r in _medians(results)}
    order = {"cdnow": 0, "sample": 1}
    cases = sorted(
        {(r["model"], r["dataset"]) for r in results},
        key=lambda c: (order.get(c[1], 2), int(c[1]) if c[1].isdigit() else 0, c[0]),
    )
    for model, dataset in cases:
        ours = keyed.get(("clvbayes", model, dataset), {})
        theirs = keyed.get(("pymc-marketing", model, dataset), {})
        if "fit_seconds" in ours and "fit_seconds" in theirs:
            speed = f"**{theirs['fit_seconds'] / ours['fit_seconds']:.1f}x**"
            ess_ratio = f"{ours['ess_per_second'] / theirs['ess_per_second']:.1f}x"
        else:
            speed = ess_ratio = "n/a"
        means = " ".join(
            f"{k}={ours.get('means', {}).get(k, '-')}/{theirs.get('means', {}).get(k, '-')}"
            for k in PARAMS[model]
        )
        lines.append(
            f"| {dataset} | {model} | {ours.get('customers', theirs.get('customers', '?'))} "
            f"| {_seconds(ours)} | {_seconds(theirs)} | {speed} "
            f"| {ours.get('ess_per_second', '-')} | {theirs.get('ess_per_second', '-')} "
            f"| {ess_ratio} | {means} |"
        )
    same = [
        (model, dataset, keyed[("clvbayes-anchor-priors", model, dataset)], theirs)
        for model, dataset in cases
        if ("clvbayes-anchor-priors", model, dataset) in keyed
        and "means" in (theirs := keyed.get(("pymc-marketing", model, dataset), {}))
    ]
    if same:
        lines += [
            "",
            "Same priors (clvbayes fitted with pymc-marketing's default priors): posterior "
            "means ± Monte-Carlo standard error, and their difference in units of the "
            "combined MCSE.",
            "",
            "| data | model | clvbayes s | parameter | clvbayes | pymc-marketing | difference / MCSE |",
            "|---|---|---:|---|---:|---:|---:|",
        ]
        for model, dataset, ours, theirs in same:
            for k in PARAMS[model]:
                m1, m2 = ours["means"][k], theirs["means"][k]
                se = (ours["mcse"][k] ** 2 + theirs["mcse"][k] ** 2) ** 0.5
                lines.append(
                    f"| {dataset} | {model} | {_seconds(ours)} | {k} | {m1} ± {ours['mcse'][k]} "
                    f"| {m2} ± {theirs['mcse'][k]} | {(m1 - m2) / se:+.1f} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "MODEL", "DATA"))
    parser.add_argument("--sizes", nargs="*", default=["100000", "1000000"])
    parser.add_argument("--models", nargs="*", default=["bgnbd", "gg"])
    parser.add_argument(
        "--synthetic-models",
        nargs="*",
        default=None,
        help="models for the synthetic sizes (default: --models)",
    )
    parser.add_argument("--pareto", action="store_true", help="add Pareto/NBD on CDNOW sample")
    parser.add_argument(
        "--same-priors",
        action="store_true",
        help="also fit clvbayes with pymc-marketing's default priors (means must agree)",
    )
    parser.add_argument("--json", default=None, help="also write raw results here")
    parser.add_argument(
        "--pause", type=float, default=20.0, help="seconds of quiet (after a sync) before each case"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every case this many times, tools alternating; the table shows medians",
    )
    parser.add_argument(
        "--anchor-max",
        type=int,
        default=None,
        help="skip pymc-marketing above this many customers (after it timed out below)",
    )
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    results = []
    cases = [("cdnow", m) for m in args.models]
    cases += [(d, m) for d in args.sizes for m in (args.synthetic_models or args.models)]
    if args.pareto:
        cases.append(("sample", "pnbd"))
    for dataset, model in cases:
        tools = ("clvbayes", "pymc-marketing")
        if args.same_priors and model in ANCHOR_PRIORS:
            tools = ("clvbayes", "clvbayes-anchor-priors", "pymc-marketing")
        for tool in tools * args.repeat:
            too_big = dataset.isdigit() and args.anchor_max and int(dataset) > args.anchor_max
            if tool == "pymc-marketing" and too_big:
                res = {"tool": tool, "model": model, "dataset": dataset}
                res["error"] = f"not run (> {args.anchor_max} customers)"
            else:
                _settle(args.pause)
                res = run_case(tool, model, dataset)
            print(json.dumps(res), file=sys.stderr, flush=True)
            results.append(res)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    print(table(results))


if __name__ == "__main__":
    main()
