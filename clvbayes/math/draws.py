"""Which posterior draws to use: one rule for thinning, everywhere."""

from __future__ import annotations

import numpy as np

__all__ = ["draw_index"]


def draw_index(available: int, wanted: int | None, *, cycle: bool = True) -> np.ndarray:
    """Indices of ``wanted`` draws out of ``available``: all, evenly thinned, or cyclic.

    The one thinning rule of the package. ``None`` takes all draws in order; fewer than
    available are spread evenly (``floor(i * available / wanted)``, so the first draw is
    always used); more than available repeat the draws cyclically (``cycle=True``), so a
    point estimate (MAP: one draw) still gives as many samples of the customer-level or
    simulated randomness as asked for, or are all draws once (``cycle=False``, for
    quantities that are deterministic per draw).

    Parameters
    ----------
    available : int
        Number of draws there are (e.g. ``chains x draws``, or draws per chain).
    wanted : int, optional
        Number of draws to use (positive).
    cycle : bool
        Repeat the draws when more are wanted than available.

    Returns
    -------
    ndarray of int64
    """
    if wanted is None:
        return np.arange(available)
    if wanted < 1:
        raise ValueError(f"n_draws must be positive, got {wanted}")
    if wanted >= available:
        return np.arange(wanted) % available if cycle else np.arange(available)
    return (np.arange(wanted) * available) // wanted
