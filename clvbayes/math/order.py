"""Order statistics of posterior draws, compiled (numba): per-customer quantiles and
highest-density intervals, and per-draw ranks of all customers.

Both are sorting problems that numpy solves slowly at scale: ``np.sort`` along the
draws axis of a ``(draw, customer)`` block, and one ``argsort`` of every customer's value
per draw. Here each customer's column is sorted on its own (purchase counts by counting,
CLV by sorting only the non-zero draws: most draws of most customers are exactly 0), and
each draw's values are ranked by a radix sort of their bit patterns (non-negative floats
order like their bits), with the zeros, usually the majority, tied at the bottom without
sorting (a radix sort needs monotone keys: a float's bits with the sign bit flipped, all
bits flipped for negatives). The definitions are those of :mod:`clvbayes.predict.summaries` (linear-interpolation
quantiles, the lowest of the narrowest intervals, tied values sharing the mean of their
positions and the top-share weight of their last position).

numba is imported when this module is (``import clvbayes.math`` does not).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

__all__ = ["add_draw_ranks", "add_rows_in_order", "column_moments", "column_order_statistics"]

_JIT = {"nogil": True, "cache": True, "fastmath": False}


@numba.njit(**_JIT)
def _lerp(a: float, b: float, t: float) -> float:
    """numpy's quantile interpolation (exact at both ends, monotone)."""
    if t >= 0.5:
        return b - (b - a) * (1.0 - t)
    return a + (b - a) * t


@numba.njit(**_JIT)
def _sorted_column(column: Any, out: Any, counts: Any) -> None:
    """``column`` sorted into ``out``: counting sort for small non-negative integers;
    else, if no value is negative or NaN, the zeros first and only the rest sorted; else
    a full sort."""
    n = column.shape[0]
    integer = True
    plain = True  # no negative value, no NaN
    top = 0.0
    zeros = 0
    for i in range(n):
        v = float(column[i])
        if v == 0.0:
            zeros += 1
        if not v >= 0.0:
            plain = False
        if not (v >= 0.0 and v == math.floor(v) and v < counts.shape[0]):
            integer = False
        elif v > top:
            top = v
    if integer:
        m = int(top) + 1
        counts[:m] = 0
        for i in range(n):
            counts[int(column[i])] += 1
        k = 0
        for v in range(m):
            for _ in range(counts[v]):
                out[k] = v
                k += 1
        return
    if not plain:
        for i in range(n):
            out[i] = column[i]
        out[:] = np.sort(out)
        return
    k = zeros
    out[:zeros] = 0.0
    for i in range(n):
        v = float(column[i])
        if v != 0.0:
            out[k] = v
            k += 1
    _radix_sort_positive(out[zeros:])


@numba.njit(**_JIT)
def _radix_sort_positive(values: Any) -> None:
    """Sort positive float64 ``values`` in place (their bits order like the values): LSD
    radix sort in passes of 8 bits, skipping the passes whose byte is the same in all."""
    n = values.shape[0]
    if n < 2:
        return
    keys = values.view(np.uint64)
    spare = np.empty(n, dtype=np.uint64)
    counts = np.empty(256, dtype=np.int64)
    src, dst = keys, spare
    swapped = False
    for shift in range(0, 64, 8):
        sh = np.uint64(shift)
        counts[:] = 0
        for i in range(n):
            counts[(src[i] >> sh) & np.uint64(0xFF)] += 1
        if counts[(src[0] >> sh) & np.uint64(0xFF)] == n:
            continue  # every key has this byte: nothing to move
        total = 0
        for d in range(256):
            c = counts[d]
            counts[d] = total
            total += c
        for i in range(n):
            d = (src[i] >> sh) & np.uint64(0xFF)
            dst[counts[d]] = src[i]
            counts[d] += 1
        src, dst = dst, src
        swapped = not swapped
    if swapped:
        keys[:] = src


@numba.njit(**_JIT)
def _moments(values: Any, moments: Any) -> None:
    """Mean and sd (``ddof=1``) of each row of ``values`` (customer, draw), summing the
    draws in order."""
    m, n = values.shape
    for j in range(m):
        column = values[j]
        total = 0.0
        for i in range(n):
            total += float(column[i])
        mean = total / n
        square = 0.0
        for i in range(n):
            d = float(column[i]) - mean
            square += d * d
        moments[0, j] = mean
        moments[1, j] = math.sqrt(square / (n - 1)) if n > 1 else np.nan


@numba.njit(**_JIT)
def _add_rows(total: Any, values: Any) -> None:
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            total[j] += float(values[i, j])


def add_rows_in_order(total: np.ndarray, values: np.ndarray) -> None:
    """Add the rows of ``values`` ``(draw, column)`` to ``total`` (float64, one per
    column) one after another, in float64: the running sums of :func:`column_moments`,
    so a column's sum over blocks of draws is the one it would have over all of them."""
    _add_rows(total, np.ascontiguousarray(values))


def column_moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd (``ddof=1``; NaN for one draw) of each column of ``values`` ``(draw,
    customer)``, the draws summed in order: the same numbers whatever other columns the
    array holds (numpy's reductions along an axis change their summation order with the
    array's width)."""
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"values must be (draw, customer) with draws, got {values.shape}")
    moments = np.empty((2, values.shape[1]))
    _moments(np.ascontiguousarray(values.T), moments)
    return moments[0], moments[1]


@numba.njit(**_JIT)
def _column_statistics(
    values: Any, quantiles: Any, prob: float, moments: Any, qs: Any, low: Any, high: Any
) -> None:
    m, n = values.shape  # (customer, draw)
    ordered = np.empty(n)
    counts = np.zeros(4096, dtype=np.int64)
    k = min(n, math.ceil(prob * n))
    _moments(values, moments)
    for j in range(m):
        _sorted_column(values[j], ordered, counts)
        for q in range(quantiles.shape[0]):
            position = quantiles[q] * (n - 1)
            lo = math.floor(position)
            hi = min(lo + 1, n - 1)
            qs[q, j] = _lerp(ordered[lo], ordered[hi], position - lo)
        best = 0
        width = ordered[k - 1] - ordered[0]
        for start in range(1, n - k + 1):
            w = ordered[start + k - 1] - ordered[start]
            if w < width:
                best, width = start, w
        low[j] = ordered[best]
        high[j] = ordered[best + k - 1]


def column_order_statistics(
    values: np.ndarray, quantiles: Any, prob: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per column (customer) of ``values`` ``(draw, customer)``: mean, sd (``ddof=1``;
    NaN for one draw), the ``quantiles`` (linear interpolation) and the narrowest
    interval holding ``ceil(prob * draws)`` draws (the lowest among equally narrow ones).

    Returns
    -------
    mean, sd : ndarray, shape (customer,)
    quantiles : ndarray, shape (len(quantiles), customer)
    low, high : ndarray, shape (customer,)
    """
    if not 0 < prob <= 1:
        raise ValueError(f"prob must be in (0, 1], got {prob}")
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"values must be (draw, customer) with draws, got {values.shape}")
    quantiles = np.asarray(quantiles, dtype=float)
    m = values.shape[1]
    moments, qs = np.empty((2, m)), np.empty((quantiles.size, m))
    low, high = np.empty(m), np.empty(m)
    by_customer = np.ascontiguousarray(values.T)  # each customer's draws contiguous
    _column_statistics(by_customer, quantiles, float(prob), moments, qs, low, high)
    return moments[0], moments[1], qs, low, high


@numba.njit(**_JIT)
def _descending(row: Any, nonzero: int) -> Any:
    """The non-zero values of ``row`` as ``(key << 32) | index`` sorted ascending, where
    ``key`` orders the values descending (float bits made monotone: ``~(bits ^ sign
    mask)``); LSD radix sort, two passes of 16 bits over the keys. The sorted values are
    the first ``nonzero`` entries of the array returned (it has one more)."""
    bits = row.view(np.uint32)
    packed = np.empty(nonzero + 1, dtype=np.uint64)  # + 1: room for the unconditional write
    sign = np.uint32(0x80000000)
    k = 0
    for i in range(row.shape[0]):  # branch-free (zero or not is a coin flip per customer):
        b = bits[i]  # every value written, the position advanced if it is not zero
        ascending = b ^ (np.uint32(0xFFFFFFFF) if b & sign else sign)
        packed[k] = (np.uint64(~ascending) << np.uint64(32)) | np.uint64(i)
        k += np.int64(row[i] != 0)
    spare = np.empty_like(packed)
    mask = np.uint64(0xFFFF)
    digits = np.zeros((2, 1 << 16), dtype=np.int64)  # both digits counted in one sweep
    for i in range(nonzero):
        digits[0, (packed[i] >> np.uint64(32)) & mask] += 1
        digits[1, packed[i] >> np.uint64(48)] += 1
    for p, shift in enumerate((np.uint64(32), np.uint64(48))):
        counts = digits[p]
        total = 0
        for d in range(counts.shape[0]):
            c = counts[d]
            counts[d] = total
            total += c
        for i in range(nonzero):
            d = (packed[i] >> shift) & mask
            spare[counts[d]] = packed[i]
            counts[d] += 1
        packed, spare = spare, packed
    return packed


@numba.njit(**_JIT)
def _group_shares(cuts: Any, wholes: Any, start: int, stop: int, shares: Any) -> float:
    """The tie group at positions ``start + 1 .. stop``: its mean position (returned) and,
    for each cut, the top-share weight of its last position, ``clip(cut - (stop - 1), 0,
    1)`` (into ``shares``): a tie is in the top only as far as all of its customers are
    (:mod:`clvbayes.predict.summaries`)."""
    for j in range(cuts.shape[0]):
        shares[j] = min(1.0, max(0.0, cuts[j] - (stop - 1)))
    return 0.5 * (start + 1 + stop)


@numba.njit(**_JIT)
def _add_ranks(row: Any, cuts: Any, sums: Any) -> None:
    n = row.shape[0]
    m = cuts.shape[0]
    wholes = np.empty(m, dtype=np.int64)
    for j in range(m):
        wholes[j] = math.floor(cuts[j])
    positive = zeros = 0
    for i in range(n):
        if row[i] > 0:
            positive += 1
        elif row[i] == 0:
            zeros += 1
    nonzero = n - zeros
    packed = _descending(row, nonzero)
    low = np.uint64(0xFFFFFFFF)
    shares = np.empty(m)
    start = 0
    while start < nonzero:  # sorted: the positive values, then the negative ones
        key = packed[start] >> np.uint64(32)
        stop = start + 1
        while stop < nonzero and packed[stop] >> np.uint64(32) == key:
            stop += 1
        first = start if start < positive else start + zeros  # positions after the zeros
        if stop == start + 1:  # no tie (the common case): position first + 1
            c = np.int64(packed[start] & low)
            sums[c, 0] += first + 1.0
            for j in range(m):
                if first < wholes[j]:
                    sums[c, 1 + j] += 1.0
                elif first == wholes[j]:
                    sums[c, 1 + j] += cuts[j] - wholes[j]
        else:
            rank = _group_shares(cuts, wholes, first, first + stop - start, shares)
            for p in range(start, stop):
                c = np.int64(packed[p] & low)
                sums[c, 0] += rank
                for j in range(m):
                    sums[c, 1 + j] += shares[j]
        start = stop
    if zeros:  # the zeros (usually most customers), tied, not sorted
        rank = _group_shares(cuts, wholes, positive, positive + zeros, shares)
        for c in range(n):  # branch-free: the others' sums get + 0.0, which leaves them
            zero = 1.0 if row[c] == 0 else 0.0
            sums[c, 0] += rank * zero
            for j in range(m):
                sums[c, 1 + j] += shares[j] * zero


def add_draw_ranks(row: np.ndarray, cuts: np.ndarray, sums: np.ndarray) -> None:
    """Add one draw's ranks to ``sums``.

    Parameters
    ----------
    row : ndarray of float32, shape (customer,)
        The draw's values (no NaN); position 1 = the largest.
    cuts : ndarray of float
        ``k n`` for each top share ``k``.
    sums : ndarray, shape (customer, 1 + len(cuts))
        Column 0 receives each customer's rank (tied customers share the mean of their
        positions), column ``1 + j`` its weight in the top ``cuts[j]`` positions (position
        ``i`` weighs ``clip(cut - (i - 1), 0, 1)``; tied customers all get the weight of
        their group's last position).
    """
    row = np.ascontiguousarray(row, dtype=np.float32)
    if np.isnan(row).any():
        raise ValueError("ranks of NaN values are not defined")
    _add_ranks(row, np.asarray(cuts, dtype=float), sums)
