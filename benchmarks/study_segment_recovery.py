"""Segment recovery study (issue 6): does partial pooling recover each segment's truth?

Five segments of 50 to 20,000 customers with known BG/NBD and Gamma-Gamma parameters
(differing by up to +-0.45 on the link scale of the hierarchical prior), simulated
``--replications`` times (:func:`clvbayes.simulate.simulate_segments`, whole days, ages
52-65 weeks). Each replication is fitted with partial pooling (the default hierarchical
prior and sampler settings) and with no pooling, through ``fit_many`` (one compilation
per model and pooling). Reported per segment: coverage of the 90 % intervals of the
pooled quantities (BG/NBD: r, r/alpha, phi, kappa; Gamma-Gamma: p, q, mean spend), their
RMSE on the link scale, and how far the estimates sit from the estimated population
centre (shrinkage); divergences and time.

    python benchmarks/study_segment_recovery.py                   # 20 replications
    python benchmarks/study_segment_recovery.py --replications 5 --json out.json
    # every segment centred (>= 1,000 customers): the marginal form, mu and sigma
    # integrated out (clvbayes.models.hierarchy.hierarchical_parameter)
    python benchmarks/study_segment_recovery.py --sizes 1000 2000 5000 10000 20000
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd

from clvbayes.diagnostics import ConvergenceWarning
from clvbayes.models import BGNBD, GammaGamma
from clvbayes.models.hierarchy import SegmentWarning
from clvbayes.simulate import simulate_segments

SIZES = [50, 200, 1000, 5000, 20000]
# link-scale centre and per-segment offsets (a permutation per quantity)
LINKS = {
    "r": (np.log(0.6), [0.3, -0.3, 0.0, 0.45, -0.45]),
    "purchase_rate": (np.log(0.1), [-0.3, 0.45, 0.3, 0.0, -0.45]),
    "phi_dropout": (np.log(0.25 / 0.75), [0.45, 0.0, -0.45, -0.3, 0.3]),
    "kappa_dropout": (np.log(4.0), [0.0, 0.3, 0.45, -0.45, -0.3]),
    "p": (np.log(6.0), [0.3, -0.3, 0.0, 0.15, -0.15]),
    "q": (np.log(2.8), [-0.15, 0.3, 0.15, -0.3, 0.0]),  # log(q - 1)
    "mean_spend": (np.log(40.0), [0.0, 0.15, -0.3, 0.3, -0.15]),
}
TRUE_LINK = {k: c + np.asarray(o) for k, (c, o) in LINKS.items()}
SPECS = {"BGNBD": BGNBD, "GammaGamma": GammaGamma}


def datasets(replications: int) -> list[pd.DataFrame]:
    truth = BGNBD().from_link_values(TRUE_LINK) | GammaGamma().from_link_values(TRUE_LINK)
    labels = np.array([f"n{n}" for n in SIZES])
    out = []
    for rep in range(replications):
        sim = simulate_segments(truth, SIZES, (52.0, 65.0), rng=7000 + rep, time_step=1 / 7)
        sim["segment"] = labels[sim["segment"]]
        out.append(pd.DataFrame(sim))
    return out


def run(model: str, pooling: str, data: list[pd.DataFrame], draws: int, chains: int) -> dict:
    spec = SPECS[model](segments="segment", pooling=pooling)
    names = list(spec.segment_links)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, SegmentWarning))
        fits = spec.fit_many(data, seeds=list(range(len(data))), draws=draws, chains=chains)
    seconds = time.perf_counter() - start
    labels = [f"n{n}" for n in SIZES]
    covered = np.zeros((len(fits), len(names), len(SIZES)), dtype=bool)
    means = np.zeros(covered.shape)
    centres = np.full((len(fits), len(names), 1), np.nan)
    divergences, rhat = 0, 1.0
    for i, fit in enumerate(fits):
        order = [fit.segment_levels.index(s) for s in labels]
        links = spec.link_values(fit.params())
        for j, name in enumerate(names):
            values = links[name].reshape(-1, links[name].shape[-1])[:, order]
            low, high = np.quantile(values, [0.05, 0.95], axis=0)
            covered[i, j] = (low <= TRUE_LINK[name]) & (TRUE_LINK[name] <= high)
            means[i, j] = values.mean(axis=0)
            if pooling == "partial":
                centres[i, j] = float(fit.posterior[f"{name}_mu"].mean())
        diagnosis = fit.diagnostics()
        divergences += int(diagnosis.divergences)
        rhat = max(rhat, float(diagnosis.table["r_hat"].max()))
    truth = np.array([TRUE_LINK[n] for n in names])
    return {
        "model": model,
        "pooling": pooling,
        "replications": len(fits),
        "names": names,
        "coverage_by_segment": covered.mean(axis=(0, 1)).round(3).tolist(),
        "coverage_by_parameter": dict(
            zip(names, covered.mean(axis=(0, 2)).round(3).tolist(), strict=True)
        ),
        "cells_below_80pct": int((covered.mean(axis=0) < 0.8).sum()),
        "coverage": round(float(covered.mean()), 3),
        "rmse_by_segment": np.sqrt(((means - truth) ** 2).mean(axis=(0, 1))).round(3).tolist(),
        "means": means.tolist(),
        "centres": centres.tolist(),
        "divergences": divergences,
        "max_rhat": round(rhat, 4),
        "seconds": round(seconds, 1),
        "seconds_per_fit": [f.settings["seconds"] for f in fits],
    }


def table(results: list[dict]) -> str:
    lines = [
        "| model | segment size | 90 % coverage, partial | 90 % coverage, none | "
        "RMSE partial | RMSE none | distance to centre, partial | distance to centre, none |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(r["model"], r["pooling"]): r for r in results}
    for model in SPECS:
        if (model, "partial") not in by or (model, "none") not in by:
            continue
        part, none = by[(model, "partial")], by[(model, "none")]
        centre = np.asarray(part["centres"])
        pull = {
            k: np.abs(np.asarray(r["means"]) - centre).mean(axis=(0, 1))
            for k, r in (("partial", part), ("none", none))
        }
        for s, size in enumerate(SIZES):
            lines.append(
                f"| {model} | {size:,} | {part['coverage_by_segment'][s]:.3f} | "
                f"{none['coverage_by_segment'][s]:.3f} | {part['rmse_by_segment'][s]:.3f} | "
                f"{none['rmse_by_segment'][s]:.3f} | {pull['partial'][s]:.3f} | "
                f"{pull['none'][s]:.3f} |"
            )
    lines.append("")
    lines.append(
        "| model | pooling | coverage (all) | by parameter | segment x parameter cells "
        "below 80 % | divergences | max R-hat | time (s) |"
    )
    lines.append("|---|---|---:|---|---:|---:|---:|---:|")
    for r in results:
        params = ", ".join(f"{k} {v:.3f}" for k, v in r["coverage_by_parameter"].items())
        lines.append(
            f"| {r['model']} | {r['pooling']} | {r['coverage']:.3f} | {params} | "
            f"{r['cells_below_80pct']} of {len(r['names']) * len(SIZES)} | "
            f"{r['divergences']} | {r['max_rhat']} | {r['seconds']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--models", nargs="*", default=list(SPECS))
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write raw results here")
    parser.add_argument(
        "--sizes", type=int, nargs=5, default=SIZES, help=f"customers per segment ({SIZES})"
    )
    args = parser.parse_args()
    SIZES[:] = args.sizes
    data = datasets(args.replications)
    results = []
    for model in args.models:
        for pooling in ("partial", "none"):
            res = run(model, pooling, data, args.draws, args.chains)
            summary = {k: v for k, v in res.items() if k not in ("means", "centres")}
            print(json.dumps(summary), flush=True)
            results.append(res)
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump(results, fh)
    print(table(results))


if __name__ == "__main__":
    main()
