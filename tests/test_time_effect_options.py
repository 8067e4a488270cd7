"""The options of calendar-time effects (``TimeEffects``) and their covariates frame are
checked with messages that name the problem and the fix; no fit is run."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clvbayes.data.calendar import calendar_rfm
from clvbayes.models import BGNBD, TimeEffects


@pytest.fixture(scope="module")
def sample(cdnow_sample_calendar):
    return cdnow_sample_calendar


@pytest.fixture(scope="module")
def promo(sample):
    """A varying covariate, one row per period (calibration and holdout), indexed by the
    periods' first days."""
    starts = pd.to_datetime(sample.periods["start"])
    return pd.DataFrame({"promo": (np.arange(starts.size) % 5 == 0).astype(float)}, index=starts)


def _grid(spec, calendar):
    return spec.prepare(calendar).extras["calendar"]


def _ours(record, text):
    return [str(w.message) for w in record if text in str(w.message)]


# --- 1. an empty frame -----------------------------------------------------------------


def test_an_empty_covariates_frame_is_refused_when_built():
    empty = pd.DataFrame({"holiday": pd.Series([], dtype=float)}, index=pd.DatetimeIndex([]))
    with pytest.raises(ValueError, match=r"covariates has 0 rows \(columns \['holiday'\]\)"):
        TimeEffects(covariates=empty)


# --- 2. the options as a mapping and as numbers ----------------------------------------


def test_a_mapping_with_unknown_keys_is_refused_naming_them_and_the_options():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['seasonalty', 'nfree'\]") as exc:
        BGNBD(time_effects={"seasonalty": 2, "nfree": 0})
    assert "['covariates', 'seasonality', 'n_free', 'priors']" in str(exc.value)


def test_a_mapping_of_the_options_builds_them(promo):
    level = {"dist": "HalfNormal", "kwargs": {"sigma": 0.1}}
    spec = BGNBD(
        time_effects={"covariates": promo, "seasonality": 1, "priors": {"level_sigma": level}}
    )
    assert spec.time_effects == TimeEffects(promo, 1, priors={"level_sigma": level})
    stored = spec.time_effects.to_dict()
    assert TimeEffects.from_dict(stored) == spec.time_effects


def test_numpy_integers_are_whole_numbers_and_bools_are_not():
    options = TimeEffects(seasonality=np.int64(2), n_free=np.int32(3))
    assert options.seasonality == 2 and type(options.seasonality) is int
    assert options.n_free == 3 and type(options.n_free) is int
    assert options == TimeEffects(seasonality=2, n_free=3)
    with pytest.raises(ValueError, match=r"seasonality must be a whole number >= 0, got True"):
        TimeEffects(seasonality=True)
    with pytest.raises(ValueError, match=r"n_free must be 'auto' or a whole number >= 0"):
        TimeEffects(n_free=True)
    with pytest.raises(ValueError, match=r"seasonality must be a whole number >= 0, got 1\.5"):
        BGNBD(time_effects={"seasonality": 1.5})  # a mapping is no longer truncated by int()


def test_the_type_error_says_a_mapping_is_accepted():
    with pytest.raises(TypeError, match=r"or a mapping of its options") as exc:
        BGNBD(time_effects="weekly")
    assert "'seasonality'" in str(exc.value) and "got str" in str(exc.value)


# --- 3. the options own their frame ----------------------------------------------------


def test_editing_the_callers_frame_afterwards_changes_nothing(sample, promo):
    frame = promo.copy()
    options = TimeEffects(covariates=frame)
    before = hash(options)
    frame.iloc[3, 0] = np.nan
    assert options.covariates is not frame and hash(options) == before
    assert np.isfinite(_grid(BGNBD(time_effects=options), sample).covariates).all()


def test_nan_put_into_the_options_frame_is_reported_as_nan_not_as_flat(sample, promo):
    options = TimeEffects(covariates=promo.copy())
    options.covariates.iloc[3, 0] = np.nan  # the stored copy, edited after the check
    with pytest.raises(
        ValueError, match=r"\['promo'\] are NaN or infinite in 1 calibration"
    ) as exc:
        _grid(BGNBD(time_effects=options), sample)
    assert "1997-01-22" in str(exc.value) and "do not vary" not in str(exc.value)


# --- 4. frames without a date index; repeated column names ------------------------------


def test_a_numeric_index_is_refused_with_set_index(sample):
    starts = pd.to_datetime(sample.periods["start"]).iloc[:39]
    table = pd.DataFrame({"week": starts.to_numpy(), "holiday": np.arange(39) % 5 == 0.0})
    with pytest.raises(ValueError, match=r"indexed by numbers \(RangeIndex: 0, 1, 2") as exc:
        TimeEffects(covariates=table)
    assert "frame.set_index('week')" in str(exc.value) and "1970" in str(exc.value)
    with pytest.raises(ValueError, match=r"frame\.set_index\('date'\)"):
        TimeEffects(covariates=table[["holiday"]])
    floats = table[["holiday"]].set_index(pd.Index(np.arange(39.0)))
    with pytest.raises(ValueError, match="indexed by numbers"):
        TimeEffects(covariates=floats)


def test_a_column_of_dates_is_named_with_set_index(promo):
    for dates in (promo.index, promo.index.strftime("%Y-%m-%d")):
        with pytest.raises(ValueError, match=r"column 'week' holds dates") as exc:
            TimeEffects(covariates=promo.assign(week=dates))
        assert "frame.set_index('week')" in str(exc.value) and "get_dummies" not in str(exc.value)
    with pytest.raises(ValueError, match=r"is not numeric.*get_dummies"):
        TimeEffects(covariates=promo.assign(kind="a"))  # text stays "encode it"


def test_repeated_column_names_are_named(promo):
    frame = pd.concat([promo, promo.rename(columns={"promo": "other"}), promo], axis=1)
    with pytest.raises(
        ValueError, match=r"1 column name\(s\) occur more than once, e\.g\. \['promo'\]"
    ):
        TimeEffects(covariates=frame)


# --- 5. a missing date -----------------------------------------------------------------


def test_a_nat_in_the_index_is_refused_with_its_position(promo):
    index = pd.DatetimeIndex([*promo.index[:39], pd.NaT])
    frame = pd.DataFrame({"promo": promo["promo"].to_numpy()[:40]}, index=index)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(
            ValueError, match=r"1 of 40 rows have no date in the index \(NaT\), e\.g\. row 39"
        ):
            TimeEffects(covariates=frame)


# --- 6. seasonality on less than a year ------------------------------------------------


def test_seasonality_on_less_than_a_year_warns_and_on_a_year_does_not(sample, cdnow_sample_log):
    with pytest.warns(UserWarning, match=r"seasonality=2: the calibration covers 273 days") as rec:
        grid = _grid(BGNBD(time_effects=TimeEffects(seasonality=2)), sample)
    assert grid.covariate_names[:2] == ("season_sin1", "season_cos1")  # still done
    assert "use seasonality=0" in _ours(rec, "seasonality=2")[0]
    # it names the caller's line, not the package's
    assert [r.filename for r in rec if "seasonality=2" in str(r.message)] == [__file__]
    year = calendar_rfm(
        cdnow_sample_log, customer_col="customer_id", date_col="date", calibration_end="1997-12-30"
    )  # 52 weeks
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        _grid(BGNBD(time_effects=TimeEffects(seasonality=2)), year)
        _grid(BGNBD(time_effects=True), sample)
    assert not _ours(rec, "seasonality")


# --- 7. rows dated on another weekday than the grid's weeks start ----------------------


def test_rows_all_dated_on_another_weekday_warn_and_keep_their_period(sample, promo):
    """The sample's weeks start on Wednesdays; Sunday rows (CLVTools' week starts) count
    for the week holding them, with a warning that tells how to shift them."""
    expected = _grid(BGNBD(time_effects=TimeEffects(covariates=promo)), sample).covariates
    sundays = promo.set_index(promo.index + pd.Timedelta(days=4))
    with pytest.warns(
        UserWarning,
        match=r"all 78 rows are dated on a Sunday, while the grid's weeks start on a Wednesday",
    ) as rec:
        grid = _grid(BGNBD(time_effects=TimeEffects(covariates=sundays)), sample)
    np.testing.assert_array_equal(grid.covariates, expected)  # the rule is unchanged
    message = _ours(rec, "dated on a Sunday")[0]
    assert "the row dated 1997-01-05 counts for the week 1997-01-01 to 1997-01-07" in message
    assert "frame.index + pd.Timedelta(days=3)" in message
    thursdays = promo.set_index(promo.index + pd.Timedelta(days=1))
    with pytest.warns(UserWarning, match=r"frame\.index - pd\.Timedelta\(days=1\)"):
        _grid(BGNBD(time_effects=TimeEffects(covariates=thursdays)), sample)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        _grid(BGNBD(time_effects=TimeEffects(covariates=promo)), sample)
        mixed = promo.set_index(promo.index + pd.to_timedelta(np.arange(78) % 2, unit="D"))
        _grid(BGNBD(time_effects=TimeEffects(covariates=mixed)), sample)
    assert not _ours(rec, "rows are dated on a")
