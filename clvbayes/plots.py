"""Figures from results. Functions here draw; they compute nothing.

Each takes a tidy frame or a fitted model's output, draws on ``ax`` (a new figure if
None) and returns the matplotlib Axes, so it works on its own in Jupyter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["plot_frequency_check", "plot_parameter_posteriors"]


def _axes(ax: Any, figsize: tuple[float, float] = (7, 4)) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def plot_frequency_check(check: pd.DataFrame, *, ax: Any = None, title: str | None = None) -> Any:
    """Bars of observed customers per repeat-purchase count with predicted intervals.

    Parameters
    ----------
    check : DataFrame
        Output of :func:`clvbayes.ppc.frequency_histogram_check`.
    ax : matplotlib Axes, optional
    title : str, optional
    """
    ax = _axes(ax)
    pos = np.arange(len(check))
    ax.bar(pos - 0.2, check["observed"], width=0.4, label="observed", color="#4c72b0")
    err = np.vstack(
        [
            check["predicted_mean"] - check["predicted_low"],
            check["predicted_high"] - check["predicted_mean"],
        ]
    )
    ax.bar(
        pos + 0.2,
        check["predicted_mean"],
        width=0.4,
        label="predicted (90% interval)",
        color="#dd8452",
        yerr=err,
        capsize=3,
    )
    ax.set_xticks(pos, check.index)
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("customers")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_parameter_posteriors(
    fitted: Any, reference: dict[str, float] | None = None, *, axes: Any = None
) -> Any:
    """Histogram of each population parameter's posterior, with optional reference lines.

    Parameters
    ----------
    fitted : FittedModel
    reference : dict, optional
        Values to mark (e.g. published maximum-likelihood estimates).
    axes : array of Axes, optional
        One per parameter.
    """
    import matplotlib.pyplot as plt

    params = fitted.params()
    if axes is None:
        _, axes = plt.subplots(1, len(params), figsize=(3.2 * len(params), 3))
    for ax, (name, draws) in zip(np.atleast_1d(axes), params.items(), strict=True):
        ax.hist(draws.ravel(), bins=40, color="#4c72b0", alpha=0.8)
        ax.axvline(draws.mean(), color="k", lw=1, label="posterior mean")
        if reference and name in reference:
            ax.axvline(reference[name], color="#c44e52", lw=2, ls="--", label="reference")
        ax.set_title(name)
        ax.set_yticks([])
    np.atleast_1d(axes)[0].legend(fontsize=8)
    return axes
