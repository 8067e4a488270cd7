"""Input checks: transaction logs before they are summarized, RFM tables before a model.

Every error names the column, how many rows are affected, an example offending value and
the fix. The checks only read: nothing the caller passed is modified.

The row-level checks of a transaction log run as one DuckDB aggregate over the source
(:func:`clvbayes.data.source.scan`: a registered pandas, polars or Arrow frame, or a
CSV/Parquet file read in place), so a file is never loaded into pandas;
:func:`clvbayes.data.rfm.rfm_summary` runs them on the same relation it then summarizes.

Rules for transaction logs
--------------------------
* Every named column must exist; the transaction log must have at least one row.
* Customer ids must not be missing, empty or only whitespace.
* Dates must be present and parse as dates: datetime or date columns, or text in ISO 8601
  form (``YYYY-MM-DD``, optionally with a time). Text mixing time-zone-aware entries (with
  an offset such as ``+02:00`` or ``Z``) and naive ones is rejected: their days cannot be
  compared.
* Values must be numeric, present, finite and, unless ``allow_negative=True``, >= 0. Zero
  is legal (a free item or a fully discounted order is still a purchase occasion).
* ``observation_end`` must not precede ``calibration_end``, and some customer must have made
  the first purchase on or before ``calibration_end``.
* Rows that repeat another row exactly (same customer, date and value) are legal but give
  a ``UserWarning`` with their count when they have a time of day or make up at least 1 %
  of the log (:func:`warn_duplicates`): a log loaded twice doubles every customer's spend.

Rules for RFM tables (:func:`check_rfm`)
----------------------------------------
Every column numeric and finite; ``frequency`` a whole number >= 0; ``recency`` and ``T``
>= 0 with ``recency <= T`` and ``recency == 0`` when ``frequency == 0``; ``T > 0`` (a
customer whose first purchase is on the calibration end's day has ``T = 0`` and nothing for
a model to learn from yet: drop such customers, as ``clvbayes report`` does);
``monetary_value`` >= 0.

Rules for covariates (:func:`check_covariates`, :func:`check_covariate_variation`)
----------------------------------------------------------------------------------
Each covariate column must be in the RFM table, numeric or boolean (text and categorical
columns must be encoded first: one 0/1 column per category except a reference one,
``pd.get_dummies(rfm[col], prefix=col, drop_first=True, dtype=float)``), and finite. To
be fitted, each must vary across the customers the model uses, and no column may be a
linear combination of the others and a constant (e.g. every category's dummy column: one
of them must be left out as the reference): such coefficients are not identifiable.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from clvbayes.data.source import (
    SUBJECT,
    Source,
    count_duplicates,
    empty_message,
    open_source,
    scan,
)

__all__ = [
    "DUPLICATE_SHARE",
    "FEW_INFORMATIVE",
    "check_covariate_variation",
    "check_covariates",
    "check_informative",
    "check_rfm",
    "check_scan",
    "checked_scan",
    "validate_transactions",
    "warn_duplicates",
]


def _fail(column: str, count: str, what: str, example: Any, fix: str) -> None:
    raise ValueError(f"column {column!r}: {count} rows {what} (e.g. {example}); {fix}")


def _fail_rows(column: str, n_bad: int, n: int, what: str, example: Any, fix: str) -> None:
    _fail(column, f"{n_bad:,} of {n:,}", what, example, fix)


# --- transaction logs ------------------------------------------------------------------


def check_scan(
    scan: dict[str, Any],
    *,
    customer_col: str,
    date_col: str,
    value_col: str | None,
    allow_negative: bool = False,
    subject: str = SUBJECT,
) -> None:
    """Raise the first problem found by :func:`clvbayes.data.source.scan` as a ``ValueError``.

    ``subject`` names the log in the message about an empty one (``Source.subject``).
    """
    n = scan["n"]
    if n == 0:
        raise ValueError(empty_message(subject))
    problems = _ROW_PROBLEMS
    if value_col is not None:
        problems += _VALUE_PROBLEMS if allow_negative else (*_VALUE_PROBLEMS, _NEGATIVE_VALUES)
    columns = {"customer": customer_col, "date": date_col, "value": value_col}
    for problem in problems:
        if scan.get(problem.key) and (problem.also is None or scan.get(problem.also)):
            _fail_rows(
                columns[problem.column],
                scan[problem.key],
                n,
                problem.what,
                problem.example(scan),
                problem.fix,
            )


class _RowProblem(NamedTuple):
    """A problem a scan counts: the column it concerns (its role), the scan's count of the
    rows that have it, how a message says it, an example of a bad value from the scan, the
    fix, and another count that must be non-zero too for it to be a problem."""

    column: str
    key: str
    what: str
    example: Callable[[dict[str, Any]], Any]
    fix: str
    also: str | None = None


# In the order they are reported.
_ROW_PROBLEMS: tuple[_RowProblem, ...] = (
    _RowProblem(
        "customer",
        "customer_missing",
        "have a missing customer id",
        lambda scan: "None/NaN",
        "drop those rows or fill in the customer id.",
    ),
    _RowProblem(
        "customer",
        "customer_blank",
        "have an empty or blank customer id",
        lambda scan: repr(scan["customer_blank_example"]),
        "drop those rows or fill in the customer id (an empty id is no customer).",
    ),
    _RowProblem(
        "date",
        "date_missing",
        "have a missing date",
        lambda scan: "None/NaT",
        "drop those rows or fill in the transaction date.",
    ),
    _RowProblem(
        "date",
        "date_bad",
        "cannot be parsed as dates",
        lambda scan: repr(scan["date_bad_example"]),
        "write dates in ISO 8601 form (YYYY-MM-DD[ HH:MM:SS]) or parse the column to "
        "datetimes first (e.g. pandas.to_datetime(..., format=...)).",
    ),
    _RowProblem(
        "date",
        "date_aware",
        "are time-zone aware while the others are naive",
        lambda scan: f"{scan['date_aware_example']!r} next to {scan['date_naive_example']!r}",
        "make all dates naive local times or all time-zone aware "
        "(e.g. pandas.to_datetime(..., utc=True).dt.tz_convert(<shop time zone>)).",
        also="date_naive",
    ),
)
_VALUE_PROBLEMS: tuple[_RowProblem, ...] = (
    _RowProblem(
        "value",
        "value_bad",
        "are not numbers",
        lambda scan: repr(scan["value_bad_example"]),
        "convert the column to numbers (e.g. strip currency symbols, use '.' as the "
        "decimal separator).",
    ),
    _RowProblem(
        "value",
        "value_missing",
        "are missing or NaN",
        lambda scan: "NaN",
        "drop those rows or fill in the transaction value.",
    ),
    _RowProblem(
        "value",
        "value_inf",
        "are infinite",
        lambda scan: scan["value_inf_example"],
        "drop those rows or fix the transaction value.",
    ),
)
# Not a problem with allow_negative (returns netted into their day's value).
_NEGATIVE_VALUES = _RowProblem(
    "value",
    "value_negative",
    "are negative",
    lambda scan: scan["value_negative_example"],
    "if they are returns or refunds pass allow_negative=True (--allow-negative) to "
    "net them into their day's value; otherwise drop or fix them.",
)


def checked_scan(source: Source, *, allow_negative: bool = False) -> dict[str, Any]:
    """Scan ``source`` (:func:`clvbayes.data.source.scan`) and raise on its first problem.

    Returns
    -------
    dict
        The scan: ``n``, ``first_day``, ``last_day`` and the per-problem counts.
    """
    scanned = scan(source)
    check_scan(
        scanned,
        customer_col=source.customer_col,
        date_col=source.date_col,
        value_col=source.value_col,
        allow_negative=allow_negative,
        subject=source.subject,
    )
    return scanned


FEW_INFORMATIVE = 10
"""Fewer customers than this with a repeat purchase (the ones that inform the purchase
rate, the dropout and the spend) make :func:`check_informative` warn."""


def check_informative(
    informative: np.ndarray, *, model: str, what: str, stacklevel: int = 3
) -> None:
    """Refuse a fit that no customer informs, and warn when few do.

    A customer without a repeat purchase says little about a transaction model: under
    the BG/NBD a customer can drop out only after a purchase, so with no repeat purchase
    at all the dropout process is not identified (its posterior is its prior) and the
    purchase rate is driven to 0 (``r`` about 0.01, with only an R-hat warning to show).
    With a handful of repeat buyers the population parameters rest on them.

    Parameters
    ----------
    informative : ndarray of bool
        Per customer, whether it informs the model (e.g. ``frequency > 0``).
    model : str
        The model, for the messages (e.g. ``"BGNBD"``).
    what : str
        What makes a customer informative, e.g. ``"made a repeat purchase (frequency >
        0)"``.
    stacklevel : int
        Passed to ``warnings.warn``.

    Raises
    ------
    ValueError
        When no customer is informative.
    """
    k, n = int(np.count_nonzero(informative)), int(np.size(informative))
    if k == 0:
        raise ValueError(
            f"{model}: none of the {n:,} customers {what}; the purchase rate and the dropout "
            "process are not identified from such data (the fit would return r near 0 and "
            "the dropout prior). Use a later calibration end or more customers."
        )
    if k < FEW_INFORMATIVE:
        warnings.warn(
            f"{model}: only {k} of {n:,} customer{'s' if n != 1 else ''} {what}; the model's "
            "population parameters rest on them, so its posterior is mostly the prior and "
            "its predictions are uncertain. Use a longer calibration period or more customers.",
            UserWarning,
            stacklevel=stacklevel,
        )


DUPLICATE_SHARE = 0.01
"""Share of exactly repeated date-only rows from which :func:`warn_duplicates` warns."""


def warn_duplicates(source: Source, scanned: dict[str, Any], *, stacklevel: int = 2) -> int:
    """Warn when rows repeat another row exactly (same customer, date and value).

    Such rows are legal -- two identical orders on one day are two orders' worth of value
    -- but a log exported or loaded twice repeats every row and doubles the spend. So the
    warning comes when the repeated rows carry a time of day (identical orders in the same
    second are almost surely one order recorded twice) or make up at least
    :data:`DUPLICATE_SHARE` of the log. (CDNOW's 255 identical same-day orders among
    69,659 rows, 0.4 %, pass without one.) Without a value column repeated rows change
    nothing (same-day purchases merge) and are not counted.

    Parameters
    ----------
    source : Source
        The open log.
    scanned : dict
        Its scan (:func:`clvbayes.data.source.scan`), which counts the repeats.
    stacklevel : int
        Passed to :func:`warnings.warn`, counted from the caller.

    Returns
    -------
    int
        The number of surplus copies (a row present three times counts 2), whether or not
        a warning was given.
    """
    if "distinct_rows" not in scanned:
        return 0
    n_rows = scanned["n"]
    surplus = n_rows - scanned["distinct_rows"]
    timed = scanned["timed_rows"] - scanned["timed_distinct_rows"]
    if not timed and surplus < DUPLICATE_SHARE * n_rows:
        return surplus
    found = count_duplicates(source)  # exact counts and an example (one more pass)
    if not found.surplus:
        return 0
    names = [source.customer_col, source.date_col, source.value_col]
    shown = ", ".join(f"{name}={value!s}" for name, value in zip(names, found.example, strict=True))
    warnings.warn(
        f"{found.surplus:,} of {n_rows:,} transactions repeat another row exactly (same "
        f"{'/'.join(names)}; e.g. {shown}); their values add up in that day's purchase. "
        "If the log counts them twice (loaded or exported twice), drop them: "
        "rfm_summary(..., drop_duplicates=True) (clvbayes rfm --drop-duplicates) or "
        "deduplicate the log first. Identical orders that really happened twice can stay.",
        UserWarning,
        stacklevel=stacklevel + 1,
    )
    return found.surplus


def validate_transactions(
    transactions: Any,
    *,
    customer_col: str,
    date_col: str,
    value_col: str | None = None,
    allow_negative: bool = False,
) -> dict[str, Any]:
    """Check a transaction log without summarizing it.

    Runs the same checks as :func:`clvbayes.data.rfm.rfm_summary` (see the module
    docstring for the rules), including the warning about exactly repeated rows.

    Parameters
    ----------
    transactions : pandas.DataFrame, polars.DataFrame, pyarrow.Table, str or Path
        The log, or the path of a CSV or Parquet file holding it.
    customer_col, date_col : str
        Names of the customer id and transaction date columns.
    value_col : str, optional
        Name of the transaction value column.
    allow_negative : bool, default False
        Accept negative values (returns, refunds).

    Returns
    -------
    dict
        The scan (:func:`clvbayes.data.source.scan`): ``n`` (rows), ``first_day`` and
        ``last_day`` (the date range) and a count per kind of problem (all 0).

    Raises
    ------
    ValueError
        On missing columns, an empty log, missing or blank ids, missing or unparsable
        dates, mixed time-zone-aware and naive dates, non-numeric, missing, infinite or
        (unless allowed) negative values, or a file that cannot be read.
    TypeError
        When the input or a column has an unsupported type.
    """
    with open_source(
        transactions, customer_col=customer_col, date_col=date_col, value_col=value_col
    ) as source:
        scanned = checked_scan(source, allow_negative=allow_negative)
        warn_duplicates(source, scanned)
    return scanned


# --- RFM tables ------------------------------------------------------------------------


def _fail_mask(column: str, mask: np.ndarray, values: np.ndarray, what: str, fix: str) -> None:
    example = values[np.flatnonzero(mask)[0]]
    _fail(column, f"{int(mask.sum())} of {mask.size}", what, repr(example), fix)


def _numeric(rfm: Any, column: str) -> np.ndarray:
    raw = np.asarray(rfm[column])
    try:
        values = raw.astype(float)
    except (TypeError, ValueError):
        bad = np.array([not _is_number(v) for v in raw])
        _fail_mask(column, bad, raw, "are not numbers", "convert the column to numbers.")
    bad = ~np.isfinite(values)
    if bad.any():
        _fail_mask(column, bad, values, "are NaN or infinite", "drop or fill those customers.")
    return values


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def check_rfm(rfm: Any, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Validate the RFM ``columns`` and return them as float arrays (copies).

    Rules: every column present, numeric and finite; ``frequency`` a non-negative integer;
    ``recency`` and ``T`` non-negative with ``recency <= T`` (up to 1e-9 relative) and
    ``recency == 0`` when ``frequency == 0``; ``T > 0``; ``monetary_value`` non-negative.

    Parameters
    ----------
    rfm : DataFrame or mapping
        One row per customer, e.g. from :func:`clvbayes.rfm_summary`.
    columns : sequence of str
        Columns the model needs.

    Returns
    -------
    dict of str to ndarray
    """
    if not hasattr(rfm, "__getitem__") or isinstance(rfm, str | bytes):
        raise TypeError(
            f"expected an RFM DataFrame (from clvbayes.rfm_summary), got {type(rfm).__name__}."
        )
    missing = [c for c in columns if c not in rfm]
    if missing:
        have = list(getattr(rfm, "columns", rfm))
        raise ValueError(
            f"RFM table is missing column(s) {missing} (has {have}); build it with "
            "clvbayes.rfm_summary or rename your columns."
            + (
                " monetary_value needs a value column: pass value_col=... to "
                "clvbayes.rfm_summary or clvbayes.calendar_rfm."
                if "monetary_value" in missing
                else ""
            )
        )
    out = {c: _numeric(rfm, c) for c in columns}
    n = len(next(iter(out.values())))
    if n == 0:
        raise ValueError("RFM table has 0 rows; there are no customers to fit.")
    if "frequency" in out:
        x = out["frequency"]
        bad = (x < 0) | (x != np.round(x))
        if bad.any():
            _fail_mask(
                "frequency",
                bad,
                x,
                "are not whole numbers >= 0",
                "frequency counts repeat purchases (clvbayes.rfm_summary).",
            )
    for col in ("recency", "T", "monetary_value"):
        if col in out and (out[col] < 0).any():
            _fail_mask(
                col, out[col] < 0, out[col], "are negative", "times and values must be >= 0."
            )
    if "T" in out and (out["T"] <= 0).any():
        _fail_mask(
            "T",
            out["T"] <= 0,
            out["T"],
            "are 0",
            "T is the time from the first purchase to calibration_end, so these customers "
            "made their first purchase on the calibration end's day and there is nothing to "
            "learn from them yet; drop them (rfm[rfm['T'] > 0]; for a calendar_rfm summary "
            "data.select(data.customers['T'] > 0)), as clvbayes report does.",
        )
    if "recency" in out and "T" in out:
        t_x, T = out["recency"], out["T"]
        bad = t_x > T * (1 + 1e-9)
        if bad.any():
            _fail_mask(
                "recency",
                bad,
                t_x,
                "exceed T",
                "recency is the time from the first to the last purchase before the "
                "calibration end; transactions after it must not count.",
            )
        if "frequency" in out:
            bad = (out["frequency"] == 0) & (t_x > 0)
            if bad.any():
                _fail_mask(
                    "recency",
                    bad,
                    t_x,
                    "are > 0 with frequency 0",
                    "a customer without repeat purchases has recency 0.",
                )
    return out


# --- covariates ------------------------------------------------------------------------

_ONE_HOT = (
    "encode it as 0/1 columns, one per category except a reference category, e.g. "
    "rfm = rfm.join(pd.get_dummies(rfm[{col!r}], prefix={col!r}, drop_first=True, "
    "dtype=float)), and pass those columns as covariates"
)


def check_covariates(
    rfm: Any, columns: Sequence[str], *, argument: str = "covariates"
) -> dict[str, np.ndarray]:
    """Validate covariate columns of an RFM table and return them as float arrays (copies).

    Parameters
    ----------
    rfm : DataFrame or mapping
        One row per customer (not modified).
    columns : sequence of str
        The covariate columns.
    argument : str
        The caller's argument name, for messages (e.g. ``"purchase_covariates"``).

    Returns
    -------
    dict of str to ndarray
        Each column as float64 (booleans as 0/1).

    Raises
    ------
    ValueError
        For a missing column (with how to add it), a text or categorical column (with
        how to one-hot encode it), or NaN/infinite values (with their count and an
        example).
    """
    out: dict[str, np.ndarray] = {}
    for col in columns:
        if not isinstance(col, str):
            raise TypeError(f"{argument}: covariate names must be str, got {col!r}.")
        if col not in rfm:
            have = list(getattr(rfm, "columns", rfm))
            raise ValueError(
                f"{argument}: covariate column {col!r} is not in the RFM table (columns: "
                f"{have}); merge the customer table first, e.g. rfm.merge(customers[["
                f"'customer_id', {col!r}]], on='customer_id'), or build the table with "
                f"clvbayes.rfm_summary(..., customer_cols=[{col!r}])."
            )
        raw = np.asarray(rfm[col])
        if raw.dtype.kind not in "biuf":
            example = next((v for v in raw if not _is_number(v) or isinstance(v, str)), raw[0])
            raise ValueError(
                f"{argument}: covariate column {col!r} is not numeric (dtype "
                f"{getattr(rfm[col], 'dtype', raw.dtype)}, e.g. {example!r}); "
                + _ONE_HOT.format(col=col)
                + "."
            )
        values = raw.astype(float)
        bad = ~np.isfinite(values)
        if bad.any():
            _fail_mask(
                col,
                bad,
                values,
                "are NaN or infinite",
                f"a covariate ({argument}) needs a value for every customer: fill them "
                "(e.g. with the column's mean plus a 0/1 'missing' indicator column) or "
                "drop those customers.",
            )
        out[col] = values
    return out


def check_covariate_variation(covariates: dict[str, np.ndarray], what: str = "customers") -> None:
    """Raise ``ValueError`` if a covariate is constant, or the covariates are collinear
    with each other and a constant, over the customers a model uses (``what`` says which
    customers, for the message): such coefficients are not identifiable."""
    names = list(covariates)
    for col in names:
        values = covariates[col]
        if values.size and np.all(values == values[0]):
            raise ValueError(
                f"covariate column {col!r} has the same value ({values[0]:g}) for all "
                f"{values.size} {what}: its coefficient cannot be estimated (it is not "
                "identifiable against the population parameters); drop it."
            )
    if len(names) < 2:
        return
    matrix = np.column_stack([covariates[c] for c in names])
    centred = (matrix - matrix.mean(axis=0)) / matrix.std(axis=0)
    singular = np.linalg.svd(centred, full_matrices=False, compute_uv=False)
    if singular[-1] <= 1e-8 * singular[0]:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        involved = [names[j] for j in np.flatnonzero(np.abs(vt[-1]) > 1e-6)]
        raise ValueError(
            f"covariate columns {involved} are collinear over the {matrix.shape[0]} {what} "
            "(one is a linear combination of the others and a constant, e.g. a 0/1 column "
            "for every category of one variable): their coefficients are not identifiable; "
            "drop one of them (for one-hot columns, leave one category out as the "
            "reference: pd.get_dummies(..., drop_first=True))."
        )
