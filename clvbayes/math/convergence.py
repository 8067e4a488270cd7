"""MCMC convergence statistics on ``(chain, draw)`` arrays: rank-normalised split R-hat,
bulk and tail effective sample sizes, E-BFMI.

The definitions are those of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021),
"Rank-normalization, folding, and localization: an improved R-hat for assessing
convergence of MCMC", with the conventions ArviZ uses, so that a fit's diagnostics
equal ``arviz_stats``' to rounding (``tests/test_convergence.py``):

- draws are pooled over chains and ranked (ties share their average rank), the ranks
  mapped to normal scores with Blom's offset ``(rank - 3/8) / (n + 1/4)``;
- each chain is split into halves (the middle draw of an odd chain is dropped);
- R-hat is the larger of the bulk (rank-normalised draws) and the tail (rank-normalised
  distances from the median) split R-hat;
- the ESS uses the autocovariances of all chains, Geyer's initial positive and initial
  monotone sequences, and ``tau >= 1 / log10(N)``;
- the tail ESS is the smaller of the ESS of the indicators ``draw <= q`` at the
  quantiles ``1 - prob`` and ``prob`` (the paper: 0.05 and 0.95; ArviZ's summary takes
  ``prob`` from its ``stats.ci_prob`` setting, 0.89 by default).

Why not ``arviz_stats`` itself: importing it loads ``scipy.stats`` and ArviZ's
leave-one-out machinery, half a second of every fresh process that fits a model and
uses none of it. These statistics need numpy and one special function.

A statistic is NaN when an array has a NaN or too few draws (R-hat: 2 chains of 4 draws;
ESS: 4 draws).
"""

from __future__ import annotations

import numpy as np
from scipy import special as sp

__all__ = ["bfmi", "ess_bulk", "ess_tail", "normal_scores", "rhat"]


def _as_chains(ary: np.ndarray) -> np.ndarray:
    ary = np.asarray(ary, dtype=float)
    if ary.ndim != 2:
        raise ValueError(f"expected a (chain, draw) array, got shape {ary.shape}")
    return ary


def _invalid(ary: np.ndarray, min_chains: int) -> bool:
    return ary.shape[0] < min_chains or ary.shape[1] < 4 or bool(np.isnan(ary).any())


def _split(ary: np.ndarray) -> np.ndarray:
    """Each chain's first and last halves as separate chains."""
    half = ary.shape[1] // 2
    return np.concatenate([ary[:, :half], ary[:, ary.shape[1] - half :]])


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a flat array; tied values share the average of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], values.size]  # one past each run of ties
    run = np.repeat(np.arange(starts.size), ends - starts)
    ranks = np.empty(values.size)
    ranks[order] = 0.5 * (starts[run] + 1 + ends[run])
    return ranks


def normal_scores(ary: np.ndarray) -> np.ndarray:
    """Rank-normalised values: the normal quantiles of the pooled ranks (Blom's offset)."""
    ary = np.asarray(ary, dtype=float)
    ranks = _average_ranks(ary.reshape(-1))
    return sp.ndtri((ranks - 0.375) / (ranks.size + 0.25)).reshape(ary.shape)


def _split_rhat(ary: np.ndarray) -> float:
    n = ary.shape[1]
    between = n * np.var(ary.mean(axis=1), ddof=1)
    within = np.mean(np.var(ary, axis=1, ddof=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sqrt((between / within + n - 1) / n))


def rhat(ary: np.ndarray) -> float:
    """Rank-normalised split R-hat of ``(chain, draw)`` draws: the larger of the bulk and
    the tail (folded) version."""
    ary = _as_chains(ary)
    if _invalid(ary, 2):
        return float("nan")
    split = _split(ary)
    bulk = _split_rhat(normal_scores(split))
    tail = _split_rhat(normal_scores(np.abs(split - np.median(split))))
    return max(bulk, tail)


def _autocovariances(ary: np.ndarray) -> np.ndarray:
    """Biased autocovariances of each chain at lags 0..n-1 (by FFT)."""
    n = ary.shape[1]
    size = 1 << int(2 * n - 1).bit_length()  # zero padding: no circular wrap-around
    centred = ary - ary.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    return np.fft.irfft(spectrum * np.conjugate(spectrum), n=size, axis=1)[:, :n] / n


def _ess(ary: np.ndarray) -> float:
    """ESS of ``(chain, draw)`` draws (already split and transformed as wanted)."""
    if np.max(ary) - np.min(ary) < np.finfo(float).resolution:
        return float(ary.size)
    m, n = ary.shape
    acov = _autocovariances(ary).mean(axis=0)  # mean over chains, per lag
    within = acov[0] * n / (n - 1.0)
    var_plus = within * (n - 1.0) / n + (np.var(ary.mean(axis=1), ddof=1) if m > 1 else 0.0)
    rho = 1.0 - (within - acov) / var_plus  # rho[0] == 1 exactly in exact arithmetic
    rho[0] = 1.0
    # Geyer's initial positive sequence: sum lag pairs while their sum stays positive
    kept = np.zeros(n)
    kept[:2] = rho[:2]
    even, odd = rho[0], rho[1]
    t = 1
    while t < n - 3 and even + odd > 0.0:
        even, odd = rho[t + 1], rho[t + 2]
        if even + odd >= 0.0:
            kept[t + 1], kept[t + 2] = even, odd
        t += 2
    last = t - 2
    if even > 0.0:
        kept[last + 1] = even
    # Geyer's initial monotone sequence: pair sums may not increase
    for t in range(1, last - 1, 2):
        if kept[t + 1] + kept[t + 2] > kept[t - 1] + kept[t]:
            kept[t + 1] = kept[t + 2] = (kept[t - 1] + kept[t]) / 2.0
    tau = -1.0 + 2.0 * kept[: last + 1].sum() + kept[last + 1 : last + 2].sum()
    tau = max(tau, 1.0 / np.log10(ary.size))
    return float("nan") if np.isnan(kept).any() else float(ary.size / tau)


def ess_bulk(ary: np.ndarray) -> float:
    """Bulk ESS: the ESS of the rank-normalised split chains."""
    ary = _as_chains(ary)
    if _invalid(ary, 1):
        return float("nan")
    return _ess(normal_scores(_split(ary)))


def ess_tail(ary: np.ndarray, prob: float = 0.95) -> float:
    """Tail ESS: the smaller ESS of the indicators ``draw <= q`` at the quantiles
    ``1 - prob`` and ``prob`` of the pooled draws."""
    ary = _as_chains(ary)
    if not 0.5 <= prob < 1.0:
        raise ValueError(f"prob={prob!r}: must be in [0.5, 1), e.g. 0.95.")
    if _invalid(ary, 1):
        return float("nan")
    low, high = np.quantile(ary, [1.0 - prob, prob])
    return min(_ess(_split((ary <= q).astype(float))) for q in (low, high))


def bfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI of each chain from its ``(chain, draw)`` Hamiltonian energies."""
    energy = np.atleast_2d(np.asarray(energy, dtype=float))
    return np.square(np.diff(energy, axis=1)).mean(axis=1) / np.var(energy, axis=1, ddof=1)
