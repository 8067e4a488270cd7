"""Full-NUTS fitting speed with customer covariates: clvbayes vs pymc-marketing 1.3.

Cases (each in a fresh interpreter, compilation included, tools alternating):

* ``apparel``: CLVTools' apparel data (600 customers, weeks, estimation to 2006-12-31;
  read from ``../shared/data/external``, see its README), gender and channel in both
  processes.
* ``cdnow``: CDNOW master (23,570 customers, calibration to 1997-09-30) with a synthetic
  binary covariate ``web`` (each customer 0/1 with probability 1/2, seed 2005), in both
  processes.

Models: BG/NBD (``BetaGeoModel`` with ``purchase_covariate_cols`` and
``dropout_covariate_cols``; nutpie for both tools, 4 chains x 1000 draws after 1000
tuning steps), Pareto/NBD (``ParetoNBDModel``; 2 chains x 600 draws after 600, as in
``bench_fit.py``: its hypergeometric gradient has no numba implementation, so
pymc-marketing runs PyMC's NUTS) and, clvbayes only (pymc-marketing has no spend
covariates), the Gamma-Gamma with the covariates on spend. Reported: wall time (import +
build + compile + sample), minimum bulk ESS over the parameters and coefficients, ESS
per second, and the posterior means of the coefficients (ours / theirs).

    python benchmarks/bench_covariates.py                       # all cases
    python benchmarks/bench_covariates.py --data apparel --models bgnbd
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

TIMEOUT = 1200  # seconds: an anchor that takes longer is reported as not finishing
EXTERNAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "external"
COVARIATES = {"apparel": ["gender", "channel"], "cdnow": ["web"]}
DRAWS = {
    "bgnbd": {"draws": 1000, "tune": 1000, "chains": 4},
    "gg": {"draws": 1000, "tune": 1000, "chains": 4},
    "pnbd": {"draws": 600, "tune": 600, "chains": 2},
}
# our posterior names -> pymc-marketing's (None: not in its model)
NAMES = {
    "bgnbd": {
        "r": "r",
        "alpha": "alpha_scale",
        "a": "a_scale",
        "b": "b_scale",
        "purchase_coefficient": "purchase_coefficient_alpha",
        "dropout_coefficient_a": "dropout_coefficient_a",
        "dropout_coefficient_b": "dropout_coefficient_b",
    },
    "pnbd": {
        "r": "r",
        "alpha": "alpha_scale",
        "s": "s",
        "beta": "beta_scale",
        "purchase_coefficient": "purchase_coefficient",
        "dropout_coefficient": "dropout_coefficient",
    },
    "gg": {"p": None, "q": None, "v": None, "spend_coefficient": None},
}


def load_rfm(dataset: str):
    """The RFM table with its covariate columns."""
    import numpy as np
    import pandas as pd

    import clvbayes

    if dataset == "apparel":
        rfm = clvbayes.rfm_summary(
            EXTERNAL / "apparel_trans.csv",
            customer_col="customer_id",
            date_col="date",
            value_col="value",
            calibration_end="2006-12-31",
        )
        static = pd.read_csv(EXTERNAL / "apparel_static_cov.csv")
        return rfm.merge(static, on="customer_id", validate="one_to_one")
    from clvbayes.datasets import load_cdnow

    rfm = clvbayes.rfm_summary(
        load_cdnow("master"),
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        calibration_end="1997-09-30",
    )
    rng = np.random.default_rng(2005)
    return rfm.assign(web=(rng.random(len(rfm)) < 0.5).astype(float))


def _fit_clvbayes(model: str, rfm, covariates: list[str], kw: dict):
    from clvbayes.models import BGNBD, GammaGamma, ParetoNBD

    if model == "gg":
        spec = GammaGamma(spend_covariates=covariates)
    else:
        cls = BGNBD if model == "bgnbd" else ParetoNBD
        spec = cls(purchase_covariates=covariates, dropout_covariates=covariates)
    fitted = spec.fit(rfm, seed=1, progressbar=False, **kw)
    return fitted.posterior, len(fitted.problems), fitted.settings.get("compiled_from")


def _fit_anchor(model: str, rfm, covariates: list[str], kw: dict):
    from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel

    config = {"purchase_covariate_cols": covariates, "dropout_covariate_cols": covariates}
    data = rfm[["customer_id", "frequency", "recency", "T", *covariates]]
    if model == "bgnbd":
        m = BetaGeoModel(model_config=config)
        m.fit(data, nuts_sampler="nutpie", random_seed=1, progressbar=False, **kw)
    else:
        m = ParetoNBDModel(model_config=config)
        m.fit(data, method="mcmc", random_seed=1, progressbar=False, **kw)
    idata = m.idata
    posterior = idata["posterior"].to_dataset() if hasattr(idata, "children") else idata.posterior
    return posterior, 0, None


def worker(tool: str, model: str, dataset: str) -> dict:
    """Fit one case and return timings and results (runs in a fresh process)."""
    start = time.perf_counter()
    rfm = load_rfm(dataset)
    covariates = COVARIATES[dataset]
    data_seconds = time.perf_counter() - start
    start = time.perf_counter()
    fit = _fit_clvbayes if tool == "clvbayes" else _fit_anchor
    posterior, problems, compiled_from = fit(model, rfm, covariates, DRAWS[model])
    seconds = time.perf_counter() - start
    import arviz as az

    names = [n if tool == "clvbayes" else NAMES[model][n] for n in NAMES[model]]
    ess = az.ess(posterior[names], method="bulk")
    min_ess = min(float(ess[n].min()) for n in names)
    means = {
        ours: [round(float(v), 4) for v in posterior[name].mean(("chain", "draw")).values.ravel()]
        for ours, name in zip(NAMES[model], names, strict=True)
    }
    return {
        "tool": tool,
        "model": model,
        "dataset": dataset,
        "customers": len(rfm),
        "data_seconds": round(data_seconds, 2),
        "fit_seconds": round(seconds, 2),
        "min_ess_bulk": round(min_ess),
        "ess_per_second": round(min_ess / seconds, 1),
        "means": means,
        "problems": problems,
        "compiled_from": compiled_from,  # clvbayes: "compiled", or the cache's "disk"
    }


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


def table(results: list[dict]) -> str:
    lines = [
        "| data | model | customers | clvbayes s | pymc-marketing s | speed-up | "
        "clvbayes ESS/s | pymc-marketing ESS/s | coefficients (ours / theirs) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keyed = {(r["tool"], r["model"], r["dataset"]): r for r in results}
    for model, dataset in dict.fromkeys((r["model"], r["dataset"]) for r in results):
        ours = keyed.get(("clvbayes", model, dataset), {})
        theirs = keyed.get(("pymc-marketing", model, dataset), {})
        speed = "n/a"
        if "fit_seconds" in ours and "fit_seconds" in theirs:
            speed = f"**{theirs['fit_seconds'] / ours['fit_seconds']:.1f}x**"
        coefficients = "; ".join(
            f"{k}={ours.get('means', {}).get(k, '-')}/{theirs.get('means', {}).get(k, '-')}"
            for k in NAMES[model]
            if k.endswith("coefficient") or "_coefficient_" in k
        )
        lines.append(
            f"| {dataset} | {model} | {ours.get('customers', theirs.get('customers', '?'))} "
            f"| {ours.get('fit_seconds', ours.get('error', '-'))} "
            f"| {theirs.get('fit_seconds', theirs.get('error', 'not available'))} | {speed} "
            f"| {ours.get('ess_per_second', '-')} | {theirs.get('ess_per_second', '-')} "
            f"| {coefficients} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "MODEL", "DATA"))
    parser.add_argument("--data", nargs="*", default=["apparel", "cdnow"])
    parser.add_argument("--models", nargs="*", default=["bgnbd", "pnbd", "gg"])
    parser.add_argument("--json", default=None, help="also write raw results here")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    results = []
    for dataset in args.data:
        for model in args.models:
            tools = ("clvbayes",) if model == "gg" else ("clvbayes", "pymc-marketing")
            for tool in tools:
                res = run_case(tool, model, dataset)
                print(json.dumps(res), file=sys.stderr, flush=True)
                results.append(res)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    print(table(results))


if __name__ == "__main__":
    main()
