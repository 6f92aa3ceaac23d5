"""Working time: SLA due times counted in working hours, not in wall-clock hours.

A ``WorkingCalendar`` says when a team works: on which weekdays, between which local hours, in
which time zone, and on which local dates it does not (holidays). Times are UTC epoch seconds,
as everywhere in the domain; the calendar works in local wall-clock time and converts back, so
a working day keeps its local hours across a DST change.

The working period of a working date is ``[start, end)``, where start (end) is the first
instant at which the local clock shows that date at ``start_hour`` (``end_hour``) or later.
On the day clocks go forward an hour that falls in the gap thus begins when the gap ends, and
the period is that much shorter; on the day they go back it is that much longer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leadflow.domain.errors import InvalidInput

HOUR = 3600.0
ONE_DAY = timedelta(days=1)
# A calendar with no working period for this many days in a row has none at all, as far as
# any due time is concerned.
MAX_IDLE_DAYS = 2 * 366


@dataclass(frozen=True)
class WorkingCalendar:
    timezone: str = "UTC"
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    start_hour: float = 9.0
    end_hour: float = 17.0
    holidays: frozenset[date] = frozenset()
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.timezone, str):
            raise InvalidInput("expected an IANA time zone name", field="timezone")
        try:
            tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise InvalidInput(f"unknown time zone {self.timezone!r}", field="timezone") from None
        days = tuple(self.days)
        if not days:
            raise InvalidInput("at least one weekday must be a working day", field="days")
        for day in days:
            if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                raise InvalidInput(f"weekday {day!r}: expected 0 (Monday) to 6 (Sunday)",
                                   field="days")
        for name in ("start_hour", "end_hour"):
            hour = getattr(self, name)
            if (isinstance(hour, bool) or not isinstance(hour, int | float)
                    or not 0.0 <= hour <= 24.0):
                raise InvalidInput(f"{hour!r}: expected an hour from 0 to 24", field=name)
        if self.start_hour >= self.end_hour:
            raise InvalidInput("the working day must end after it starts", field="end_hour")
        holidays = frozenset(self.holidays)
        for holiday in holidays:
            if isinstance(holiday, datetime) or not isinstance(holiday, date):
                raise InvalidInput(f"holiday {holiday!r}: expected a date", field="holidays")
        object.__setattr__(self, "days", tuple(sorted(set(days))))
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "_tz", tz)

    @property
    def day_seconds(self) -> float:
        """The length of a working day, as on a day without a DST change."""
        return (self.end_hour - self.start_hour) * HOUR

    def working_days(self, n: float) -> float:
        return n * self.day_seconds

    def is_working(self, ts: float) -> bool:
        _check_finite(ts, "ts")
        today = self._local_date(ts)
        for day in (today - ONE_DAY, today, today + ONE_DAY):
            period = self._period(day)
            if period is not None and period[0] <= ts < period[1]:
                return True
        return False

    def next_start(self, ts: float) -> float:
        """``ts`` if it is working time, else the start of the next working period."""
        return self.add(ts, 0.0)

    def add(self, ts: float, seconds: float) -> float:
        """The instant at which ``seconds`` of working time have elapsed since ``ts``.

        Counting starts at the next working period when ``ts`` is outside working time. A
        duration that ends exactly where a period ends gives that end, not the next start.
        """
        _check_finite(ts, "ts")
        _check_finite(seconds, "seconds")
        if seconds < 0:
            raise InvalidInput("a duration may not be negative", field="seconds")
        remaining = seconds
        for start, end in self._periods(self._local_date(ts) - ONE_DAY):
            if end <= ts:
                continue
            begin = max(start, ts)
            available = end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise AssertionError("unreachable: _periods never ends")

    def between(self, a: float, b: float) -> float:
        """The working seconds in ``[a, b)``; 0 when ``b <= a``."""
        _check_finite(a, "a")
        _check_finite(b, "b")
        total = 0.0
        if b <= a:
            return total
        day = self._local_date(a) - ONE_DAY
        last = self._local_date(b) + ONE_DAY
        while day <= last:
            period = self._period(day)
            if period is not None:
                start, end = period
                if start >= b:
                    break
                total += max(0.0, min(end, b) - max(start, a))
            day += ONE_DAY
        return total

    def _local_date(self, ts: float) -> date:
        return datetime.fromtimestamp(ts, self._tz).date()

    def _periods(self, day: date) -> Iterator[tuple[float, float]]:
        """The working periods from local date ``day`` on, in order, without end."""
        idle = 0
        while True:
            period = self._period(day)
            if period is None:
                idle += 1
                if idle > MAX_IDLE_DAYS:
                    raise InvalidInput(f"no working time in the {MAX_IDLE_DAYS} days after "
                                       f"{day - MAX_IDLE_DAYS * ONE_DAY}: every working day "
                                       "is a holiday", field="holidays")
            else:
                idle = 0
                yield period
            day += ONE_DAY

    def _period(self, day: date) -> tuple[float, float] | None:
        if day.weekday() not in self.days or day in self.holidays:
            return None
        midnight = datetime.combine(day, time())
        start = self._first_instant(midnight + timedelta(hours=self.start_hour))
        end = self._first_instant(midnight + timedelta(hours=self.end_hour))
        return (start, end) if end > start else None

    def _first_instant(self, wall: datetime) -> float:
        """The first instant at which the local clock shows ``wall`` (naive) or later."""
        ts = wall.replace(tzinfo=self._tz).timestamp()
        if datetime.fromtimestamp(ts, self._tz).replace(tzinfo=None) == wall:
            return ts
        # `wall` falls in a gap (clocks went forward): look for the transition, which tz
        # databases put on a whole second, between the two readings of `wall`.
        lo = math.floor(wall.replace(tzinfo=self._tz, fold=1).timestamp())
        hi = math.ceil(ts)
        while lo < hi:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, self._tz).replace(tzinfo=None) >= wall:
                hi = mid
            else:
                lo = mid + 1
        return float(lo)


def _check_finite(value: float, name: str) -> None:
    if not math.isfinite(value):
        raise InvalidInput(f"{value!r}: expected a finite number", field=name)
