"""Issue 19 target 3: an independent reference for the 10M-customer BG/NBD fit.

lifetimes' ``BetaGeoFitter`` (maximum likelihood, its own likelihood code and optimiser)
on the same RFM table, compressed to its unique (frequency, recency, T) rows with counts
as weights, against the posterior of ``bench_scale.py --stages fit:10000000`` (full NUTS,
saved in ``$CLVBAYES_SCALE_DIR/fits_10000000.nc``). With 10 million customers the
posterior is all likelihood: its mean and the maximum-likelihood estimate differ by
O(sd / sqrt(n)) apart from Monte Carlo error, so the check is ``|mean - MLE|`` in units
of the posterior mean's Monte Carlo standard error (and of the posterior sd).

    python benchmarks/reference_10m.py [--n 10000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd

DATA = Path(os.environ.get("CLVBAYES_SCALE_DIR", "/tmp/clvbayes-scale"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    from arviz_stats import ess, mcse
    from lifetimes import BetaGeoFitter

    import clvbayes

    rfm = pd.read_parquet(DATA / f"rfm_{args.n}.parquet", columns=["frequency", "recency", "T"])
    rows = rfm.value_counts().reset_index(name="weight")
    start = time.perf_counter()
    ref = BetaGeoFitter(penalizer_coef=0.0)
    ref.fit(rows["frequency"], rows["recency"], rows["T"], weights=rows["weight"].to_numpy())
    seconds = time.perf_counter() - start
    fit = clvbayes.load(DATA / f"fits_{args.n}.nc")["bgnbd"]
    post = fit.posterior
    out = {"customers": len(rfm), "unique_rows": len(rows), "lifetimes_seconds": round(seconds, 1)}
    for name in ("r", "alpha", "a", "b"):
        draws = post[name]
        mean, sd = float(draws.mean()), float(draws.std())
        error = float(mcse(draws.to_numpy().reshape(draws.sizes["chain"], -1)))
        n_eff = float(ess(draws.to_numpy().reshape(draws.sizes["chain"], -1)))
        mle = float(ref.params_[name])
        out[name] = {
            "posterior_mean": round(mean, 5),
            "posterior_sd": round(sd, 5),
            "mcse": round(error, 6),
            "ess": round(n_eff),
            "lifetimes_mle": round(mle, 5),
            "diff_in_mcse": round((mean - mle) / error, 2),
            "diff_in_sd": round((mean - mle) / sd, 3),
        }
    stats = fit.idata["sample_stats"]
    out["steps_per_draw"] = round(float(stats["n_steps"].mean()), 2)
    out["divergences"] = int(stats["diverging"].sum())
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
