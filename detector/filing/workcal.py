"""Working calendar and case disposal deadlines (处置时限).

Time-limit rules come in working hours (工作时), working days (工作日) or
natural hours/days (自然时/自然日, used for urgent cases). A `WorkCalendar`
knows the daily work windows, the weekend, public holidays and 调休 make-up
working days; `deadline()` turns a start time and a `TimeLimit` into the
moment the case is due, and `working_time_between()` measures working time
(e.g. how long a case ran overdue) on the same calendar.

Working-days convention (`unit="working_days"`): the day the case starts is
never counted, whatever the hour (民法典 第二百零一条: 开始的当日不计入，自下一日
开始计算). The deadline is the end of the last work window of the N-th working
day after the start's local date. So "1 个工作日" for a case filed Monday 10:00
is Monday's next working day, Tuesday 17:30; a case filed Friday after hours,
on Saturday or on Sunday is due Monday 17:30 alike.

Work windows are half-open [start, end): 12:00 itself is lunch, not work.
All arithmetic is on absolute (UTC) time in whole microseconds, so results
are exact and correct in zones with daylight saving too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

DEFAULT_TZ = "Asia/Shanghai"
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ONE_DAY = timedelta(days=1)


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {name!r}") from e
    return name


#: an IANA time zone name, checked when the configuration is read
TimeZoneName = Annotated[str, AfterValidator(_known_zone)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeLimit(Strict):
    """A time-limit rule's amount, e.g. 2 working hours or 3 working days."""

    amount: float = Field(gt=0, description="How many units; working_days must be a whole number.")
    unit: Literal["working_hours", "working_days", "natural_hours", "natural_days"] = Field(
        description="working_*: counted on the calendar; natural_*: plain elapsed time (urgent cases)."
    )

    @model_validator(mode="after")
    def _whole_days(self) -> TimeLimit:
        # "1.5 个工作日" has no agreed meaning; platforms express such limits in working hours.
        if self.unit == "working_days" and self.amount != int(self.amount):
            raise ValueError(f"amount: working_days must be a whole number, got {self.amount}")
        return self


class WorkCalendar(Strict):
    """Which moments are working time: work windows on working days in one zone."""

    timezone: TimeZoneName = Field(DEFAULT_TZ, description="IANA zone of the windows and dates; results are in it.")
    work_hours: list[tuple[time, time]] = Field(
        default_factory=lambda: [(time(8, 30), time(12)), (time(13, 30), time(17, 30))],
        min_length=1,
        description="[start, end] HH:MM windows of each working day, ordered, not overlapping, within one day.",
    )
    weekend: list[Day] = Field(default_factory=lambda: ["sat", "sun"], description="Weekly days off.")
    holidays: list[date] = Field(default_factory=list, description="Days off, e.g. 国庆 2026-10-01..07.")
    workdays: list[date] = Field(
        default_factory=list, description="调休 make-up days: working days although they fall on the weekend."
    )

    _holidays: frozenset[date] = PrivateAttr(default=frozenset())
    _workdays: frozenset[date] = PrivateAttr(default=frozenset())
    _weekend: frozenset[int] = PrivateAttr(default=frozenset())
    _tz: ZoneInfo = PrivateAttr(default=None)  # type: ignore[assignment]

    @field_validator("work_hours")
    @classmethod
    def _ordered_windows(cls, v: list[tuple[time, time]]) -> list[tuple[time, time]]:
        prev_end: time | None = None
        for i, (start, end) in enumerate(v):
            if start >= end:
                raise ValueError(f"window {i}: start {start:%H:%M} must be before end {end:%H:%M}")
            if prev_end is not None and start < prev_end:
                raise ValueError(
                    f"window {i}: starts at {start:%H:%M}, before the previous window ends ({prev_end:%H:%M})"
                )
            prev_end = end
        return v

    @field_validator("weekend")
    @classmethod
    def _some_weekday(cls, v: list[str]) -> list[str]:
        # Guarantees every search for the next working day ends: holidays are finite.
        if len(set(v)) == len(_DAYS):
            raise ValueError("at least one day of the week must be a working day")
        return v

    @field_validator("workdays")
    @classmethod
    def _not_also_holiday(cls, v: list[date], info: ValidationInfo) -> list[date]:
        both = sorted(set(v) & set(info.data.get("holidays", ())))
        if both:
            raise ValueError(f"dates in both holidays and workdays: {', '.join(map(str, both))}")
        return v

    def model_post_init(self, _context: object) -> None:
        self._holidays = frozenset(self.holidays)
        self._workdays = frozenset(self.workdays)
        self._weekend = frozenset(_DAYS.index(d) for d in self.weekend)
        self._tz = ZoneInfo(self.timezone)

    # ------------------------------------------------------------ queries

    def is_working_day(self, d: date) -> bool:
        """Make-up days beat the weekend; holidays beat everything else."""
        if d in self._workdays:
            return True
        return d not in self._holidays and d.weekday() not in self._weekend

    def is_working_time(self, ts: datetime) -> bool:
        """True when aware `ts` lies inside a work window of a working day."""
        local = self._local(ts)
        t = local.time()
        return self.is_working_day(local.date()) and any(s <= t < e for s, e in self.work_hours)

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time in [a, b]; negative when b is before a (e.g. closed early vs. a deadline)."""
        if b < a:
            return -self.working_time_between(b, a)
        a, b = a.astimezone(UTC), b.astimezone(UTC)
        total = timedelta(0)
        d, last = self._local(a).date(), self._local(b).date()
        while d <= last:
            for ws, we in self._windows(d):
                lo, hi = max(ws, a), min(we, b)
                if hi > lo:
                    total += hi - lo
            d += _ONE_DAY
        return total

    def deadline(self, start: datetime, limit: TimeLimit) -> datetime:
        """When a case started at aware `start` is due under `limit`, in the calendar's zone."""
        begin = self._local(start).astimezone(UTC)
        if limit.unit == "natural_hours":
            return (begin + timedelta(hours=limit.amount)).astimezone(self._tz)
        if limit.unit == "natural_days":
            return (begin + timedelta(days=limit.amount)).astimezone(self._tz)
        if limit.unit == "working_days":
            return self._end_of_nth_working_day(self._local(start).date(), int(limit.amount))
        remaining = timedelta(hours=limit.amount)
        d = self._local(start).date()
        while True:  # terminates: the weekend validator leaves a working day in every week
            for ws, we in self._windows(d):
                if we <= begin:
                    continue
                seg = max(ws, begin)
                if remaining <= we - seg:  # `<=`: a deadline may fall exactly at a window end
                    return (seg + remaining).astimezone(self._tz)
                remaining -= we - seg
            d += _ONE_DAY

    # ------------------------------------------------------------ helpers

    def _local(self, ts: datetime) -> datetime:
        if ts.tzinfo is None or ts.utcoffset() is None:
            raise ValueError(f"timestamp must be timezone-aware, got naive {ts.isoformat()}")
        return ts.astimezone(self._tz)

    def _windows(self, d: date) -> Iterator[tuple[datetime, datetime]]:
        """The day's work windows as UTC instants; none on days off."""
        if not self.is_working_day(d):
            return
        for s, e in self.work_hours:
            yield (
                datetime.combine(d, s, self._tz).astimezone(UTC),
                datetime.combine(d, e, self._tz).astimezone(UTC),
            )

    def _end_of_nth_working_day(self, start_day: date, n: int) -> datetime:
        d = start_day
        while n > 0:
            d += _ONE_DAY
            if self.is_working_day(d):
                n -= 1
        return datetime.combine(d, self.work_hours[-1][1], self._tz)
