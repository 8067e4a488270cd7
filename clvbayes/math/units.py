"""Time units: the one table of the package.

Every function that takes a ``time_unit`` (``rfm_summary``, the predictions, the
discounting arithmetic, the report and the command line) reads it here, so a unit works
everywhere or nowhere. A unit is named by its one-letter code (``"D"``, ``"W"``, ``"M"``,
``"Q"``, ``"Y"``) or by its English name, singular or plural (``"week"``, ``"weeks"``);
:func:`check_time_unit` turns any of them into the code. Months, quarters and years are
mean Gregorian lengths (365.2425 days a year), so a period's length in a unit does not
depend on where the period falls in the calendar.

Pure Python: this module imports nothing (it sits below numpy, pandas and PyMC).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DAYS_PER_YEAR",
    "TIME_UNITS",
    "UNITS",
    "TimeUnit",
    "check_time_unit",
    "days_per_unit",
    "unit_name",
]

DAYS_PER_YEAR = 365.2425
"""Mean length of the Gregorian year in days."""


@dataclass(frozen=True)
class TimeUnit:
    """One time unit: its code, its length in days and its names for display.

    Attributes
    ----------
    code : str
        One capital letter, e.g. ``"W"``.
    days : float
        Length in days (months, quarters and years are mean Gregorian lengths).
    name, plural : str
        English names for display, e.g. ``"week"`` and ``"weeks"``.
    """

    code: str
    days: float
    name: str
    plural: str


UNITS: dict[str, TimeUnit] = {
    unit.code: unit
    for unit in (
        TimeUnit("D", 1.0, "day", "days"),
        TimeUnit("W", 7.0, "week", "weeks"),
        TimeUnit("M", DAYS_PER_YEAR / 12.0, "month", "months"),
        TimeUnit("Q", DAYS_PER_YEAR / 4.0, "quarter", "quarters"),
        TimeUnit("Y", DAYS_PER_YEAR, "year", "years"),
    )
}
"""Every time unit by its code, shortest first."""

TIME_UNITS: dict[str, float] = {code: unit.days for code, unit in UNITS.items()}
"""Length of each time unit in days, by code (``TIME_UNITS["M"] == 365.2425 / 12``)."""

_ALIASES: dict[str, str] = {
    alias: unit.code
    for unit in UNITS.values()
    for alias in (unit.code, unit.name, unit.plural, unit.name.capitalize(), unit.plural.title())
}


def check_time_unit(time_unit: object, name: str = "time_unit") -> str:
    """The code of a time unit given by its code or name.

    Parameters
    ----------
    time_unit : str
        A code (``"D"``, ``"W"``, ``"M"``, ``"Q"``, ``"Y"``) or a name, singular or plural
        (``"day"``, ``"weeks"``, ...).
    name : str
        The argument's name in error messages (e.g. ``"--time-unit"``).

    Returns
    -------
    str
        The one-letter code.

    Raises
    ------
    ValueError
        When ``time_unit`` is no time unit; the message names ``name`` and lists the units.

    Examples
    --------
    >>> check_time_unit("weeks"), check_time_unit("Q")
    ('W', 'Q')
    """
    code = _ALIASES.get(time_unit) if isinstance(time_unit, str) else None
    if code is None:
        choices = ", ".join(f"{u.code!r} ({u.name})" for u in UNITS.values())
        raise ValueError(f"{name}={time_unit!r} is not a time unit; use one of {choices}.")
    return code


def days_per_unit(time_unit: str | float, name: str = "time_unit") -> float:
    """Number of days in one ``time_unit``: a code or name (see :func:`check_time_unit`) or
    a positive number of days.

    Examples
    --------
    >>> days_per_unit("W"), days_per_unit("year"), days_per_unit(3.5)
    (7.0, 365.2425, 3.5)
    """
    if isinstance(time_unit, str):
        return UNITS[check_time_unit(time_unit, name)].days
    days = float(time_unit)
    if not days > 0:
        raise ValueError(f"{name} must be a positive number of days, got {time_unit!r}")
    return days


def unit_name(time_unit: str, *, plural: bool = False) -> str:
    """The English name of a time unit given by code or name (``"W"`` -> ``"week"``)."""
    unit = UNITS[check_time_unit(time_unit)]
    return unit.plural if plural else unit.name
