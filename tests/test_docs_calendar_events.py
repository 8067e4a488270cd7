"""The calendar-time guide's recommendation for closures, outages and one-off promotions
runs as written: its example is taken from ``docs/user-guide/calendar-time.md`` and
executed, with one declared change (a MAP fit instead of NUTS, to keep it quick).

Oracles: the API itself (``TimeEffects`` accepts the 0/1 frame, the fit gets one
``calendar_coefficient`` per column, and the CSV the example writes for
``--calendar-covariates`` reads back through the report's own reader as the same
frame) and the dates the example flags (two closed weeks, two promotion weeks, one of
them after the calibration).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "user-guide" / "calendar-time.md"
SECTION = "### Closures, outages and one-off promotions"


def _example() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    assert SECTION in text, "the guide lost its section on closures and promotions"
    section = text[text.index(SECTION) :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_guide_recommends_a_0_1_calendar_covariate_for_events():
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :].split("\n## ")[0]
    for words in ("0/1 calendar covariate", "TimeEffects(covariates=...)",
                  "--calendar-covariates", "forecast periods"):  # fmt: skip
        assert words in section, words


@pytest.mark.slow
def test_the_guides_event_example_runs(tmp_path, monkeypatch):
    from clvbayes.report.pipeline import read_calendar_covariates

    code = _example()
    fit_line = ".fit(cal, seed=1)"
    assert code.count(fit_line) == 1
    code = code.replace(fit_line, '.fit(cal, seed=1, method="map")')
    monkeypatch.chdir(tmp_path)  # the example writes events.csv
    scope: dict = {}
    exec(compile(code, str(GUIDE), "exec"), scope)  # our own documentation
    events, fit, cal = scope["events"], scope["fit"], scope["cal"]
    assert set(events.stack().unique()) == {0, 1}
    assert events["closed"].sum() == 2 and events["promotion"].sum() == 2
    calibration_end = pd.Timestamp("1997-09-30")
    assert events.index[events["promotion"] == 1].max() > calibration_end  # a planned sale
    assert list(fit.posterior["calendar_coefficient"].coords["calendar_covariate"].values) == [
        "closed",
        "promotion",
    ]
    assert len(events) >= cal.periods["calibration"].sum() + 52  # calibration and a year
    read = read_calendar_covariates(tmp_path / "events.csv")
    assert list(read.columns) == ["closed", "promotion"]
    assert (read.index == events.index).all() and (read.to_numpy() == events.to_numpy()).all()
