"""Working time: what ``add`` gives back ``between`` measures, for random calendars in zones
with and without DST, and the plain cases an SLA meets (weekends, holidays, the DST switch)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.domain.errors import InvalidInput
from leadflow.domain.working_time import WorkingCalendar

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]
PARIS = ZoneInfo("Europe/Paris")
HOUR = 3600.0
LO = datetime(2024, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp()
HI = datetime(2027, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp()


@st.composite
def calendars(draw: st.DrawFn) -> WorkingCalendar:
    # Half hours, so that some days start or end inside a DST gap (02:00-03:00 in Paris and
    # New York); Kolkata's half-hour offset shifts every period off the UTC hour.
    start = draw(st.integers(0, 47))
    end = draw(st.integers(start + 1, 48))
    return WorkingCalendar(
        timezone=draw(st.sampled_from(ZONES)),
        days=tuple(sorted(draw(st.sets(st.integers(0, 6), min_size=1)))),
        start_hour=start / 2,
        end_hour=end / 2,
        holidays=draw(st.frozensets(st.dates(date(2023, 12, 1), date(2027, 1, 31)), max_size=6)),
    )


instants = st.floats(LO, HI, allow_nan=False)


@st.composite
def durations(draw: st.DrawFn, cal: WorkingCalendar) -> float:
    """Up to 20 working days, often whole hours or days, sometimes a sliver."""
    return draw(st.one_of(
        st.floats(0.0, cal.working_days(20)),
        st.integers(0, 20 * 24).map(lambda h: min(h * HOUR, cal.working_days(20))),
        st.integers(0, 20).map(cal.working_days),
        st.floats(0.0, 1e-3),
    ))


def local(ts: float, tz: ZoneInfo = PARIS) -> datetime:
    return datetime.fromtimestamp(ts, tz)


def at(y: int, mo: int, d: int, h: float = 0.0, tz: ZoneInfo = PARIS) -> float:
    return (datetime(y, mo, d, tzinfo=tz) + timedelta(hours=h)).timestamp()


def close(x: float, y: float) -> bool:
    return abs(x - y) <= 1e-6 * max(1.0, abs(y))


fast = settings(max_examples=60, deadline=None)


@fast
@given(st.data())
def test_between_measures_what_add_added(data: st.DataObject) -> None:
    cal = data.draw(calendars())
    ts = data.draw(instants)
    seconds = data.draw(durations(cal))
    due = cal.add(ts, seconds)
    assert due >= ts
    assert close(cal.between(ts, due), seconds)


@fast
@given(st.data())
def test_add_is_monotone_and_lands_in_working_time_or_on_a_period_end(
        data: st.DataObject) -> None:
    cal = data.draw(calendars())
    ts = data.draw(instants)
    s1, s2 = sorted((data.draw(durations(cal)), data.draw(durations(cal))))
    d1, d2 = cal.add(ts, s1), cal.add(ts, s2)
    assert d1 <= d2
    for s, due in ((s1, d1), (s2, d2)):
        if s > 0 and not cal.is_working(due):
            # The end of a period (all are at least half an hour long here): working time
            # right before it, none right at it.
            assert cal.between(due - 1.0, due) == pytest.approx(1.0)
            assert cal.next_start(due) > due


@fast
@given(st.data())
def test_next_start_is_working_time_and_skips_none(data: st.DataObject) -> None:
    cal = data.draw(calendars())
    ts = data.draw(instants)
    start = cal.next_start(ts)
    assert start >= ts
    assert cal.is_working(start)
    assert cal.between(ts, start) == 0.0
    assert (start == ts) == cal.is_working(ts)
    assert cal.add(ts, 0.0) == start


@fast
@given(st.data())
def test_holidays_and_days_off_hold_no_working_time(data: st.DataObject) -> None:
    cal = data.draw(calendars())
    tz = ZoneInfo(cal.timezone)
    off = [d for d in (date(2025, 6, 2) + timedelta(days=i) for i in range(7))
           if d.weekday() not in cal.days]
    day = data.draw(st.sampled_from(sorted(cal.holidays) + off)) if cal.holidays or off else None
    if day is None:
        return
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
    next_midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(),
                                     tzinfo=tz).timestamp()
    assert cal.between(midnight, next_midnight) == 0.0
    assert not cal.is_working(data.draw(st.floats(midnight, next_midnight, exclude_max=True)))
    assert cal.next_start(midnight) >= next_midnight


@fast
@given(st.data())
def test_between_adds_up_over_a_split(data: st.DataObject) -> None:
    cal = data.draw(calendars())
    a, m, b = sorted(data.draw(st.floats(LO, LO + 40 * 86400.0)) for _ in range(3))
    assert close(cal.between(a, m) + cal.between(m, b), cal.between(a, b))
    assert cal.between(b, a) == 0.0


def test_friday_afternoon_plus_four_hours_is_monday_noon() -> None:
    cal = WorkingCalendar(timezone="Europe/Paris")
    due = cal.add(at(2026, 3, 6, 16), 4 * HOUR)
    assert local(due) == datetime(2026, 3, 9, 12, tzinfo=PARIS)


def test_two_working_days_from_wednesday_and_a_thursday_holiday() -> None:
    cal = WorkingCalendar(timezone="Europe/Paris")
    wednesday = at(2026, 3, 4, 10)
    assert local(cal.add(wednesday, cal.working_days(2))) == datetime(2026, 3, 6, 10,
                                                                      tzinfo=PARIS)
    holiday = WorkingCalendar(timezone="Europe/Paris", holidays=frozenset({date(2026, 3, 5)}))
    assert local(holiday.add(wednesday, holiday.working_days(2))) == datetime(2026, 3, 9, 10,
                                                                             tzinfo=PARIS)


def test_across_the_march_dst_switch_local_hours_hold() -> None:
    cal = WorkingCalendar(timezone="Europe/Paris")
    # Clocks go forward on Sunday 29 March 2026: Friday is UTC+1, Monday UTC+2.
    due = cal.add(at(2026, 3, 27, 16), 4 * HOUR)
    assert local(due).replace(tzinfo=None) == datetime(2026, 3, 30, 12)
    assert local(due).utcoffset() == timedelta(hours=2)
    assert cal.between(at(2026, 3, 27, 9), at(2026, 3, 30, 17)) == 16 * HOUR


def test_a_working_day_over_the_switch_is_an_hour_shorter_or_longer() -> None:
    every_day = WorkingCalendar(timezone="Europe/Paris", days=tuple(range(7)),
                                start_hour=0, end_hour=24)
    assert every_day.between(at(2026, 3, 28), at(2026, 3, 30)) == 47 * HOUR
    assert every_day.between(at(2026, 10, 24), at(2026, 10, 26)) == 49 * HOUR
    # A day that starts inside the gap (02:00-03:00 does not exist) starts when it ends.
    night = WorkingCalendar(timezone="Europe/Paris", days=tuple(range(7)),
                            start_hour=2.5, end_hour=4)
    assert local(night.next_start(at(2026, 3, 29))).replace(tzinfo=None) == datetime(
        2026, 3, 29, 3)
    assert night.between(at(2026, 3, 29), at(2026, 3, 30)) == HOUR


def test_two_hundred_working_days_take_no_time() -> None:
    cal = WorkingCalendar(timezone="America/New_York", holidays=frozenset({date(2026, 7, 3)}))
    ts = at(2026, 3, 4, 10, ZoneInfo("America/New_York"))
    began = time.perf_counter()
    due = cal.add(ts, cal.working_days(200))
    assert time.perf_counter() - began < 0.5
    assert cal.between(ts, due) == cal.working_days(200)
    assert local(due, ZoneInfo("America/New_York")).hour == 10


def test_a_calendar_without_working_days_fails_instead_of_looping() -> None:
    mondays = frozenset(date(2025, 1, 6) + timedelta(weeks=i) for i in range(3 * 53))
    cal = WorkingCalendar(days=(0,), holidays=mondays)
    with pytest.raises(InvalidInput) as caught:
        cal.add(at(2025, 1, 1), HOUR)
    assert caught.value.field == "holidays"
    assert not cal.is_working(at(2025, 1, 6, 10))
    assert cal.between(at(2025, 1, 1), at(2026, 1, 1)) == 0.0


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": "../etc/passwd"}, "timezone"),
    ({"days": ()}, "days"),
    ({"days": (0, 7)}, "days"),
    ({"days": (-1,)}, "days"),
    ({"start_hour": 17.0, "end_hour": 9.0}, "end_hour"),
    ({"start_hour": 9.0, "end_hour": 9.0}, "end_hour"),
    ({"start_hour": -1.0}, "start_hour"),
    ({"end_hour": 24.5}, "end_hour"),
    ({"end_hour": float("nan")}, "end_hour"),
    ({"holidays": frozenset({datetime(2026, 1, 1)})}, "holidays"),
])
def test_invalid_calendars_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        WorkingCalendar(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_invalid_durations_and_instants_are_refused() -> None:
    cal = WorkingCalendar()
    with pytest.raises(InvalidInput):
        cal.add(LO, -1.0)
    with pytest.raises(InvalidInput):
        cal.add(LO, float("inf"))
    with pytest.raises(InvalidInput):
        cal.between(LO, float("inf"))


def test_a_calendar_is_a_value() -> None:
    a = WorkingCalendar(timezone="Asia/Kolkata", days=[4, 0, 0],  # type: ignore[arg-type]
                        holidays={date(2026, 1, 26)})  # type: ignore[arg-type]
    b = WorkingCalendar(timezone="Asia/Kolkata", days=(0, 4),
                        holidays=frozenset({date(2026, 1, 26)}))
    assert a == b
    assert hash(a) == hash(b)
    assert a.day_seconds == 8 * HOUR
    assert a.working_days(1.5) == 12 * HOUR
