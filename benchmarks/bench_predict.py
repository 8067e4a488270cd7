"""Per-customer CLV scoring: clvbayes vs pymc-marketing 1.3, side by side in one run.

One posterior (BG/NBD + Gamma-Gamma, 4 chains x 250 draws = 1,000 draws, fitted by
clvbayes on CDNOW master) is shared by both tools. Customers are synthetic (CDNOW-like,
weeks). The horizon is 52 weeks (pymc-marketing: ``future_t=12`` months) with a 10 %
annual discount (pymc-marketing: the equivalent monthly rate).

* clvbayes: :func:`clvbayes.predict_customers` -- the full posterior predictive of
  purchases and CLV (every draw simulates each customer's latent state and future
  purchases with their values), the conditional-mean CLV, P(CLV > 100), the expected rank
  and P(top 10 %), summarized to one row per customer; no draws kept.
* pymc-marketing: ``GammaGammaModel.expected_customer_lifetime_value`` -- the conditional
  mean only, one value per (chain, draw, customer).

Each case runs in a fresh interpreter (import and set-up untimed); the time is the scoring
call; peak memory is the worker's peak RSS (``resource.getrusage``) minus its RSS just
before the call. A case that exceeds the timeout is reported as such.

    python benchmarks/bench_predict.py --sizes 10000 100000 1000000 --anchor-max 100000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fit import load_rfm

TIMEOUT = 600
POSTERIOR = Path(tempfile.gettempdir()) / "clvbayes-bench-posterior.nc"
HORIZON_WEEKS = 52
ANNUAL_DISCOUNT = 0.10


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_posterior(path: Path = POSTERIOR) -> None:
    """Fit both models on CDNOW master once (to ``path``); later workers load the file."""
    import clvbayes
    from clvbayes.datasets import load_cdnow

    tx = load_cdnow("master")
    rfm = clvbayes.rfm_summary(
        tx,
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        calibration_end="1997-09-30",
    )
    kw = {"draws": 250, "tune": 1000, "chains": 4, "seed": 1, "progressbar": False}
    bg = clvbayes.BGNBD().fit(rfm, **kw)
    gg = clvbayes.GammaGamma().fit(rfm, **kw)
    clvbayes.save({"bgnbd": bg, "spend": gg}, path)


def worker(tool: str, size: str) -> dict:
    import numpy as np

    import clvbayes

    models = clvbayes.load(POSTERIOR)
    bg, gg = models["bgnbd"], models["spend"]
    rfm = load_rfm(size)
    rss0 = _current_rss_mb()
    if tool.startswith("clvbayes"):
        discount = 0.0 if tool.endswith("no-discount") else ANNUAL_DISCOUNT
        start = time.perf_counter()
        res = clvbayes.predict_customers(
            bg,
            rfm,
            horizon=HORIZON_WEEKS,
            spend_fit=gg,
            time_unit="W",
            annual_discount=discount,
            thresholds=[100],
            keep_draws=(),
            seed=1,
        )
        seconds = time.perf_counter() - start
        total = float(res.summary["clv_mean"].sum())
        conditional = float(res.summary["clv_conditional_mean"].sum())
        rows = len(res.summary)
    else:
        import xarray as xr
        from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

        # pymc-marketing rejects monetary_value <= 0 even for customers without repeat
        # purchases, whose expected spend p v / (q - 1) does not depend on it: give those
        # a placeholder of 1 so that every customer is scored, as by clvbayes.
        rfm = rfm.assign(monetary_value=rfm["monetary_value"].where(rfm["frequency"] > 0, 1.0))
        bgm, ggm = BetaGeoModel(), GammaGammaModel()
        bgm.build_model(rfm[["customer_id", "frequency", "recency", "T"]])
        ggm.build_model(rfm[["customer_id", "frequency", "monetary_value"]])
        bgm.fit_result = xr.DataTree.from_dict(
            {"posterior": bg.posterior[["r", "alpha", "a", "b"]]}
        )
        ggm.fit_result = xr.DataTree.from_dict({"posterior": gg.posterior[["p", "q", "v"]]})
        monthly = (1 + ANNUAL_DISCOUNT) ** (1 / 12) - 1
        start = time.perf_counter()
        clv = ggm.expected_customer_lifetime_value(
            bgm,
            rfm[["customer_id", "frequency", "recency", "T", "monetary_value"]],
            future_t=12,
            discount_rate=monthly,
            time_unit="W",
        )
        values = np.asarray(clv)
        seconds = time.perf_counter() - start
        total = conditional = float(np.nanmean(values, axis=(0, 1)).sum())
        rows = int(values.size)
    return {
        "tool": tool,
        "customers": int(size),
        "seconds": round(seconds, 2),
        "peak_mb": round(_rss_mb() - rss0),
        "output_rows": rows,
        "sum_clv_mean": round(total),
        "sum_clv_conditional": round(conditional),
    }


def run_case(tool: str, size: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", tool, size]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=True)
    except subprocess.TimeoutExpired:
        return {"tool": tool, "customers": int(size), "error": f"> {TIMEOUT} s"}
    except subprocess.CalledProcessError as err:
        tail = (err.stderr or "").strip().splitlines()[-1:] or ["?"]
        return {"tool": tool, "customers": int(size), "error": tail[0][:160]}
    return json.loads(out.stdout.strip().splitlines()[-1])


TOOLS = ("clvbayes", "clvbayes-no-discount", "pymc-marketing")


def table(results: list[dict]) -> str:
    lines = [
        "| customers | tool | time (s) | peak extra RSS (MB) | output rows | "
        "Σ CLV (predictive mean) | Σ CLV (conditional mean) | time ratio (pymc-marketing / "
        "this) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sorted({r["customers"] for r in results}):
        rows = {r["tool"]: r for r in results if r["customers"] == size}
        anchor = rows.get("pymc-marketing", {}).get("seconds")
        for tool in TOOLS:
            r = rows.get(tool)
            if r is None:
                continue
            if "error" in r:
                lines.append(f"| {size:,} | {tool} | {r['error']} | | | | | |")
                continue
            ratio = f"{anchor / r['seconds']:.1f}x" if anchor and tool != "pymc-marketing" else ""
            lines.append(
                f"| {size:,} | {tool} | {r['seconds']} | {r['peak_mb']:,} | "
                f"{r['output_rows']:,} | {r['sum_clv_mean']:,} | {r['sum_clv_conditional']:,} "
                f"| {ratio} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "SIZE"))
    parser.add_argument("--sizes", nargs="*", default=["10000", "100000", "1000000"])
    parser.add_argument("--anchor-max", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    make_posterior()
    results = []
    for size in args.sizes:
        for tool in TOOLS:
            if tool == "pymc-marketing" and args.anchor_max and int(size) > args.anchor_max:
                res = {"tool": tool, "customers": int(size)}
                res["error"] = f"not run (> {args.anchor_max:,} customers)"
            else:
                res = run_case(tool, size)
            print(json.dumps(res), file=sys.stderr, flush=True)
            results.append(res)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
