"""Progress bars for long work, shown the same way everywhere.

:func:`clvbayes.predict_customers`, :func:`clvbayes.validate_holdout`,
:func:`clvbayes.inference.fit_many`, :func:`clvbayes.scale.predict_customers_dask` and the
report's scoring take ``progressbar=`` (for the prediction paths a field of
:class:`~clvbayes.predict.options.PredictOptions`); ``clvbayes report --quiet`` turns
them off. A bar is tqdm's *auto* flavour (a widget in Jupyter, text on standard error
in a terminal) showing the count done, the rate (customers per second) and the time
left. It appears only once the work has run for :data:`DELAY` seconds, so short calls
print nothing.
"""

from __future__ import annotations

from typing import Any, TextIO

__all__ = ["DELAY", "progress_bar"]

DELAY = 2.0
"""Seconds of work before a bar appears (tqdm's ``delay``); quicker work prints nothing."""


def progress_bar(
    total: int,
    *,
    desc: str,
    unit: str = "customers",
    unit_scale: bool = True,
    enabled: bool = True,
    file: TextIO | None = None,
) -> Any:
    """A progress bar over ``total`` units of work (tqdm's auto flavour).

    Parameters
    ----------
    total : int
        Units of work, e.g. customers to score.
    desc : str
        What is being done (the bar's label).
    unit : str
        What is counted, plural (the rate reads ``"1.2k customers/s"``).
    unit_scale : bool
        Abbreviate large counts (``12.3k``); False for small counts (partitions, fits).
    enabled : bool
        False gives a bar that prints nothing (``progressbar=False``).
    file : file-like, optional
        Where a text bar goes (default: standard error at the time of the call).

    Returns
    -------
    tqdm.tqdm
        Use as a context manager and call ``update(n)`` as units finish.

    Examples
    --------
    >>> with progress_bar(3, desc="scoring", enabled=False) as bar:
    ...     for _ in range(3):
    ...         _ = bar.update(1)
    """
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=f" {unit}",
        unit_scale=unit_scale,
        delay=DELAY,
        disable=not enabled,
        file=file,
        dynamic_ncols=True,
        mininterval=0.5,
    )
