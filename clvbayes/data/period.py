"""Period bounds: ISO 8601 text or date objects in, calendar days out, checked.

A period is ``calibration_end`` (the last day of the calibration period) and optionally
``observation_end`` (the last day of the holdout), both inclusive whole days. Text must be
ISO 8601 (``YYYY-MM-DD``, optionally with a time): ``01/02/1998`` is 2 January in one
country and 1 February in another, so it is refused with both readings spelled out.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.math.units import TIME_UNITS, unit_name

__all__ = [
    "check_first_purchase",
    "check_period",
    "parse_day",
    "parse_period",
    "past_data",
    "resolve_period",
]

_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?)?"
)
_SLASHED = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})")


def _iso_hint(text: str) -> str:
    """How to write ``text`` in ISO form when it is a slashed day-month-year date."""
    match = _SLASHED.fullmatch(text.strip())
    if match is None:
        return "e.g. '1997-09-30'"
    first, second, year = (int(g) for g in match.groups())
    readings = []
    for day, month in ((first, second), (second, first)):
        try:
            readings.append(dt.date(year, month, day))
        except ValueError:
            continue
    options = [f"'{d.isoformat()}' for {d.day} {d:%B} {d.year}" for d in dict.fromkeys(readings)]
    return " or ".join(options) if options else "e.g. '1997-09-30'"


def parse_day(value: Any, name: str) -> dt.date:
    """A period bound as a calendar day.

    Accepted: ISO 8601 text (``YYYY-MM-DD``, optionally with a time and a UTC offset),
    ``datetime.date``/``datetime.datetime``, ``pandas.Timestamp`` and
    ``numpy.datetime64``. The time of day, if any, is dropped: bounds are inclusive whole
    days. A time-zone-aware bound keeps its own wall-clock date. Other text (``01/02/1998``
    is 2 January in one country and 1 February in another) is refused.

    Parameters
    ----------
    value : str, date, datetime, Timestamp or numpy.datetime64
        The bound.
    name : str
        The argument's name for messages (``"calibration_end"``, ``"--holdout-end"``).

    Raises
    ------
    ValueError
        When the value is not a date in one of these forms, or is missing (NaT).

    Examples
    --------
    >>> parse_day("1997-09-30 18:00", "calibration_end")
    datetime.date(1997, 9, 30)
    """
    if value is pd.NaT or (isinstance(value, np.datetime64) and np.isnat(value)):
        raise ValueError(f"{name} is missing (NaT); pass e.g. '1997-09-30'.")
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        if _ISO.fullmatch(value.strip()) is None:
            raise ValueError(
                f"{name}={value!r} is not a date in ISO 8601 form (YYYY-MM-DD, optionally "
                f"with a time); pass {_iso_hint(value)}."
            )
    elif not isinstance(value, dt.datetime | np.datetime64):
        raise ValueError(
            f"{name}={value!r} is not a date; pass ISO 8601 text such as '1997-09-30' or a "
            "datetime.date."
        )
    try:
        return pd.Timestamp(value.strip() if isinstance(value, str) else value).date()
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name}={value!r} is not a date; pass e.g. '1997-09-30' or a datetime.date."
        ) from err


def check_period(calibration_end: dt.date, observation_end: dt.date | None) -> None:
    """Raise ``ValueError`` if ``observation_end`` precedes ``calibration_end``."""
    if observation_end is not None and observation_end < calibration_end:
        raise ValueError(
            f"observation_end={observation_end} is before calibration_end={calibration_end}; "
            "the holdout period runs from the day after calibration_end to observation_end, "
            "so pass an observation_end on or after calibration_end."
        )


def parse_period(
    calibration_end: Any, observation_end: Any
) -> tuple[dt.date | None, dt.date | None]:
    """The parsed and checked ``(calibration_end, observation_end)`` (each may be None).

    Raises
    ------
    ValueError
        On a bound that is not a date (:func:`parse_day`), an ``observation_end`` without
        a ``calibration_end``, or an ``observation_end`` before ``calibration_end``.
    """
    cal = None if calibration_end is None else parse_day(calibration_end, "calibration_end")
    obs = None if observation_end is None else parse_day(observation_end, "observation_end")
    if cal is None and obs is not None:
        raise ValueError(
            "observation_end needs calibration_end: pass the last day of the calibration "
            "period too."
        )
    if cal is not None:
        check_period(cal, obs)
    return cal, obs


def check_first_purchase(calibration_end: dt.date, first_day: dt.date) -> None:
    """Raise ``ValueError`` if no purchase happened on or before ``calibration_end``."""
    if first_day > calibration_end:
        raise ValueError(
            f"calibration_end={calibration_end} is before every customer's first purchase "
            f"(the earliest is {first_day}); no customer can be summarized. Pass a later "
            "calibration_end."
        )


def past_data(name: str, day: dt.date, last_day: dt.date, time_unit: str) -> str | None:
    """Say how far ``day`` lies after the last transaction, when by more than one time unit.

    Parameters
    ----------
    name : str
        The bound's argument, e.g. ``"observation_end"`` or ``"--holdout-end"``.
    day, last_day : datetime.date
        The bound and the last transaction day of the log.
    time_unit : str
        A code of :data:`clvbayes.math.units.TIME_UNITS`: the tolerance.

    Returns
    -------
    str or None
        E.g. ``"observation_end=2030-01-01 is 11,508 days (1,644.0 weeks) after the last
        transaction in the log (1998-06-30)"``; None when ``day`` is at most one time unit
        after ``last_day``.
    """
    days = (day - last_day).days
    unit = TIME_UNITS[time_unit]
    if days <= unit:
        return None
    units = "" if unit == 1 else f" ({days / unit:,.1f} {unit_name(time_unit, plural=True)})"
    return (
        f"{name}={day} is {days:,} days{units} after the last transaction in the log ({last_day})"
    )


def resolve_period(
    calibration_end: dt.date | None,
    observation_end: dt.date | None,
    scanned: Mapping[str, Any],
    time_unit: str,
) -> tuple[dt.date, dt.date]:
    """Complete a parsed period with the log's date range, warning about empty stretches.

    ``calibration_end`` defaults to the last transaction day and ``observation_end`` to
    ``calibration_end``. A bound more than one ``time_unit`` after the last transaction
    gives a ``UserWarning``: ``T`` (or the holdout) would include time in which the log
    records no purchase.

    Parameters
    ----------
    calibration_end, observation_end : datetime.date or None
        From :func:`parse_period`.
    scanned : mapping
        :func:`clvbayes.data.source.scan`'s result (``first_day`` and ``last_day`` are used).
    time_unit : str
        A code of :data:`clvbayes.math.units.TIME_UNITS`.

    Returns
    -------
    (datetime.date, datetime.date)

    Raises
    ------
    ValueError
        When ``calibration_end`` is before every first purchase.
    """
    last_day = scanned["last_day"]
    cal = calibration_end if calibration_end is not None else last_day
    obs = observation_end if observation_end is not None else cal
    check_first_purchase(cal, scanned["first_day"])
    late = past_data("calibration_end", cal, last_day, time_unit)
    what = "T (and the holdout period) would include" if obs > cal else "T would include"
    if late is None:
        late = past_data("observation_end", obs, last_day, time_unit)
        what = "the holdout period (holdout_duration) would include"
    if late is not None:
        warnings.warn(
            f"{late}: {what} time without any recorded purchase, which reads as customers "
            f"having stopped buying. Pass a bound on or before {last_day} unless the log "
            "really has no purchases after it.",
            UserWarning,
            stacklevel=3,
        )
    return cal, obs
