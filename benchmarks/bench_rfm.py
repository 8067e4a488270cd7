"""RFM summary speed and memory: clvbayes vs lifetimes 0.11.3 and pymc-marketing 1.3.

Every (tool, size) case runs in its own interpreter: it loads the synthetic log (except
for the Parquet-path case, which hands the file to DuckDB), then times only the summary
call. Peak memory is the worker's peak resident set size (``resource.getrusage``), which
includes the loaded pandas frame; ``base`` is the RSS before the call. All tools summarize
the whole log in weeks (days / 7) up to its last day. A case that takes longer than the
timeout or dies (e.g. out of memory) is recorded as such.

    python benchmarks/bench_rfm.py                        # 1M and 10M transactions
    python benchmarks/bench_rfm.py --sizes 1000000 --timeout 600
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLS = {
    "clvbayes (pandas)": "clvbayes_pandas",
    "clvbayes (Parquet path)": "clvbayes_path",
    "lifetimes": "lifetimes",
    "pymc-marketing": "pymc_marketing",
}
ANCHORS = ("lifetimes", "pymc-marketing")


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(tool: str, path: str) -> dict:
    """Run one case in this process; return seconds, memory and a result fingerprint."""
    import warnings

    import pandas as pd

    warnings.simplefilter("ignore")
    df = None if tool == "clvbayes_path" else pd.read_parquet(path)
    if tool.startswith("clvbayes"):
        from clvbayes.data.rfm import rfm_summary

        def run():
            return rfm_summary(
                path if df is None else df,
                customer_col="customer_id",
                date_col="date",
                value_col="value",
                time_unit="W",
            )
    elif tool == "lifetimes":
        from lifetimes.utils import summary_data_from_transaction_data

        def run():
            return summary_data_from_transaction_data(
                df, "customer_id", "date", monetary_value_col="value", freq="D", freq_multiplier=7
            )
    else:
        from pymc_marketing.clv.utils import rfm_summary as pmm_rfm

        def run():
            return pmm_rfm(
                df, "customer_id", "date", monetary_value_col="value", time_unit="D", time_scaler=7
            )

    base = _rss_mb()
    t0 = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "peak_mb": _rss_mb(),
        "base_mb": base,
        "customers": len(out),
        "sum_frequency": float(out["frequency"].sum()),
    }


def run_case(tool: str, path: Path, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", tool, "--path", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"failed": f"> {timeout / 60:.0f} min (timeout)"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["killed"])[-1]
        oom = proc.returncode == -9 or "MemoryError" in proc.stderr
        return {"failed": "out of memory" if oom else f"failed: {last[:80]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results: dict[int, dict[str, dict]]) -> str:
    lines = [
        "| transactions | tool | time (s) | peak RSS (MB) | RSS before call (MB) | customers "
        "| time ratio (anchor / clvbayes pandas) | time ratio (anchor / clvbayes Parquet) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, cases in results.items():
        ours = cases.get("clvbayes (pandas)", {}).get("seconds")
        ours_path = cases.get("clvbayes (Parquet path)", {}).get("seconds")
        for name, r in cases.items():
            if "failed" in r:
                lines.append(f"| {n:,} | {name} | {r['failed']} | | | | | |")
                continue
            ratio = ratio_path = ""
            if name in ANCHORS and ours and ours_path:
                ratio = f"{r['seconds'] / ours:.1f}x"
                ratio_path = f"{r['seconds'] / ours_path:.1f}x"
            lines.append(
                f"| {n:,} | {name} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | "
                f"{r['base_mb']:.0f} | {r['customers']:,} | {ratio} | {ratio_path} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per case")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/clvbayes-bench"))
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=list(TOOLS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.path)))
        return

    sys.path.insert(0, str(HERE))
    from synthetic_transactions import write_transactions

    results: dict[int, dict[str, dict]] = {}
    for n in args.sizes:
        path = args.data_dir / f"transactions_{n}.parquet"
        if not path.exists():
            write_transactions(n, path)
        results[n] = {}
        for name in args.tools:
            results[n][name] = r = run_case(TOOLS[name], path, args.timeout)
            print(f"{n:>11,} {name:<24} {r}", file=sys.stderr, flush=True)
        checks = {r.get("sum_frequency") for r in results[n].values() if "failed" not in r}
        if len(checks) > 1:
            print(f"WARNING: tools disagree on total frequency at {n:,}: {checks}", file=sys.stderr)
    print(f"machine: {platform.machine()}, {platform.python_version()}, {platform.platform()}")
    print(table(results))


if __name__ == "__main__":
    main()
