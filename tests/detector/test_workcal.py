from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from detector.filing.workcal import TimeLimit, WorkCalendar

SH = ZoneInfo("Asia/Shanghai")
PLAIN = WorkCalendar()  # 08:30-12:00 and 13:30-17:30: 7.5 working hours a day
# 国庆-style week: Oct 1-7 off, Sunday Sep 27 and Saturday Oct 10 worked instead.
NATIONAL_DAY = WorkCalendar(
    holidays=[date(2026, 10, d) for d in range(1, 8)],
    workdays=[date(2026, 9, 27), date(2026, 10, 10)],
)


def sh(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


# 2026-01-09 is a Friday, 2026-01-12 the Monday after.
@pytest.mark.parametrize(
    ("cal", "start", "amount", "unit", "expected"),
    [
        # working hours
        (PLAIN, sh(1, 9, 16), 4, "working_hours", sh(1, 12, 11)),  # 1.5 h Fri + 2.5 h Mon from 08:30
        (PLAIN, sh(1, 9, 16), 1.5, "working_hours", sh(1, 9, 17, 30)),  # lands exactly on a window end
        (PLAIN, sh(1, 9, 17, 30), 1, "working_hours", sh(1, 12, 9, 30)),  # at closing time
        (PLAIN, sh(1, 10, 11), 2, "working_hours", sh(1, 12, 10, 30)),  # Saturday
        (PLAIN, sh(1, 12, 7), 2, "working_hours", sh(1, 12, 10, 30)),  # before hours
        (PLAIN, sh(1, 12, 20), 2, "working_hours", sh(1, 13, 10, 30)),  # after hours
        (PLAIN, sh(1, 12, 12, 15), 1, "working_hours", sh(1, 12, 14, 30)),  # lunch break
        (PLAIN, sh(1, 12, 12), 1, "working_hours", sh(1, 12, 14, 30)),  # 12:00 is already lunch
        (PLAIN, sh(1, 12, 11, 30), 1, "working_hours", sh(1, 12, 14)),  # straddles lunch
        (PLAIN, sh(1, 12, 11, 30), 0.5, "working_hours", sh(1, 12, 12)),  # ends at the lunch bell
        (PLAIN, sh(1, 12, 9), 0.25, "working_hours", sh(1, 12, 9, 15)),  # fractional
        (PLAIN, sh(1, 12, 9), 8, "working_hours", sh(1, 13, 9, 30)),  # a 7.5 h day and half an hour
        (PLAIN, sh(1, 12, 8, 30), 150, "working_hours", sh(2, 6, 17, 30)),  # 20 working days
        (NATIONAL_DAY, sh(9, 30, 16), 4, "working_hours", sh(10, 8, 11)),  # over the holiday week
        (NATIONAL_DAY, sh(9, 26, 10), 2, "working_hours", sh(9, 27, 10, 30)),  # Sat -> make-up Sunday
        (NATIONAL_DAY, sh(10, 9, 17), 1, "working_hours", sh(10, 10, 9)),  # Fri -> make-up Saturday
        # working days: the start day never counts
        (PLAIN, sh(1, 12, 10), 1, "working_days", sh(1, 13, 17, 30)),
        (PLAIN, sh(1, 12, 7), 1, "working_days", sh(1, 13, 17, 30)),
        (PLAIN, sh(1, 9, 10), 1, "working_days", sh(1, 12, 17, 30)),
        (PLAIN, sh(1, 9, 20), 1, "working_days", sh(1, 12, 17, 30)),
        (PLAIN, sh(1, 10, 10), 1, "working_days", sh(1, 12, 17, 30)),
        (PLAIN, sh(1, 11, 23, 59), 1, "working_days", sh(1, 12, 17, 30)),
        (PLAIN, sh(1, 12, 10), 20, "working_days", sh(2, 9, 17, 30)),
        (NATIONAL_DAY, sh(9, 30, 10), 1, "working_days", sh(10, 8, 17, 30)),
        (NATIONAL_DAY, sh(9, 30, 10), 3, "working_days", sh(10, 10, 17, 30)),  # Thu 8, Fri 9, Sat 10
        (NATIONAL_DAY, sh(9, 25, 10), 1, "working_days", sh(9, 27, 17, 30)),  # make-up Sunday counts
        (NATIONAL_DAY, sh(10, 3, 10), 2, "working_days", sh(10, 9, 17, 30)),
        # natural time ignores the calendar
        (NATIONAL_DAY, sh(10, 1, 10), 2, "natural_hours", sh(10, 1, 12)),
        (PLAIN, sh(1, 9, 23), 1.5, "natural_hours", sh(1, 10, 0, 30)),
        (NATIONAL_DAY, sh(9, 30, 16), 3, "natural_days", sh(10, 3, 16)),
        (PLAIN, sh(1, 10, 6), 0.5, "natural_days", sh(1, 10, 18)),
    ],
)
def test_deadline(cal: WorkCalendar, start: datetime, amount: float, unit: str, expected: datetime) -> None:
    got = cal.deadline(start, TimeLimit(amount=amount, unit=unit))
    assert got == expected
    assert got.tzinfo == SH


def test_utc_input_gives_shanghai_result() -> None:
    start = datetime(2026, 1, 9, 8, 0, tzinfo=UTC)  # Friday 16:00 in Shanghai
    got = PLAIN.deadline(start, TimeLimit(amount=4, unit="working_hours"))
    assert got.tzinfo == SH and got.replace(tzinfo=None) == datetime(2026, 1, 12, 11, 0)
    assert PLAIN.deadline(start, TimeLimit(amount=1, unit="natural_hours")).utcoffset() == timedelta(hours=8)
    # UTC Sunday 20:00 is Monday 04:00 in Shanghai: Monday is the start day and does not count.
    assert PLAIN.deadline(datetime(2026, 1, 11, 20, tzinfo=UTC), TimeLimit(amount=1, unit="working_days")) == sh(
        1, 13, 17, 30
    )


@pytest.mark.parametrize(
    ("cal", "ts", "expected"),
    [
        (PLAIN, sh(1, 12, 8, 30), True),
        (PLAIN, sh(1, 12, 11, 59), True),
        (PLAIN, sh(1, 12, 12), False),
        (PLAIN, sh(1, 12, 13, 30), True),
        (PLAIN, sh(1, 12, 17, 30), False),
        (PLAIN, sh(1, 12, 8, 29), False),
        (PLAIN, sh(1, 10, 10), False),  # Saturday
        (NATIONAL_DAY, sh(10, 5, 10), False),  # holiday Monday
        (NATIONAL_DAY, sh(10, 10, 10), True),  # make-up Saturday
        (NATIONAL_DAY, sh(9, 27, 15), True),  # make-up Sunday
        (PLAIN, datetime(2026, 1, 12, 2, tzinfo=UTC), True),  # 10:00 Shanghai
    ],
)
def test_is_working_time(cal: WorkCalendar, ts: datetime, expected: bool) -> None:
    assert cal.is_working_time(ts) is expected


@pytest.mark.parametrize(
    ("cal", "a", "b", "hours"),
    [
        (PLAIN, sh(1, 12, 9), sh(1, 12, 10), 1),
        (PLAIN, sh(1, 12, 11), sh(1, 12, 14), 1.5),  # lunch excluded
        (PLAIN, sh(1, 9, 16), sh(1, 12, 11), 4),  # weekend excluded
        (PLAIN, sh(1, 10, 9), sh(1, 11, 18), 0),  # all weekend
        (PLAIN, sh(1, 12, 0), sh(1, 19, 0), 37.5),  # a whole week
        (PLAIN, sh(1, 12, 10), sh(1, 12, 10), 0),
        (NATIONAL_DAY, sh(9, 30, 17), sh(10, 8, 9), 1),  # 0.5 h Sep 30 + 0.5 h Oct 8
        (NATIONAL_DAY, sh(9, 26, 0), sh(9, 28, 0), 7.5),  # only the make-up Sunday
    ],
)
def test_working_time_between(cal: WorkCalendar, a: datetime, b: datetime, hours: float) -> None:
    assert cal.working_time_between(a, b) == timedelta(hours=hours)
    assert cal.working_time_between(b, a) == -timedelta(hours=hours)
    assert cal.working_time_between(a.astimezone(UTC), b) == timedelta(hours=hours)


def test_deadline_and_working_time_agree_for_random_starts() -> None:
    rng = random.Random(20261001)
    base = sh(9, 1)
    for _ in range(500):
        start = base + timedelta(seconds=rng.randrange(0, 60 * 86400), microseconds=rng.randrange(1_000_000))
        hours = rng.choice([rng.uniform(0.001, 8), rng.uniform(8, 160), float(rng.randrange(1, 30))])
        due = NATIONAL_DAY.deadline(start, TimeLimit(amount=hours, unit="working_hours"))
        assert NATIONAL_DAY.working_time_between(start, due) == timedelta(hours=hours), (start, hours)
        assert NATIONAL_DAY.is_working_time(due - timedelta(microseconds=1))


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        PLAIN.deadline(datetime(2026, 1, 12, 9), TimeLimit(amount=1, unit="working_hours"))
    with pytest.raises(ValueError, match="timezone-aware"):
        PLAIN.is_working_time(datetime(2026, 1, 12, 9))


def test_calendar_reads_from_plain_data() -> None:
    cal = WorkCalendar.model_validate(
        {"work_hours": [["09:00", "17:00"]], "weekend": ["sun"], "holidays": ["2026-10-01"], "workdays": []}
    )
    assert cal.deadline(sh(1, 10, 16), TimeLimit(amount=2, unit="working_hours")) == sh(1, 12, 10)  # Sat works
    assert PLAIN.deadline(sh(1, 12, 9), TimeLimit(amount=1, unit="working_hours")) == sh(1, 12, 10)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"work_hours": [["08:30", "12:00"], ["11:30", "17:30"]]}, "work_hours", "before the previous window ends"),
        ({"work_hours": [["13:30", "17:30"], ["08:30", "12:00"]]}, "work_hours", "before the previous window ends"),
        ({"work_hours": [["12:00", "08:30"]]}, "work_hours", "must be before end"),
        ({"work_hours": []}, "work_hours", "at least 1"),
        ({"holidays": ["2026-10-10"], "workdays": ["2026-10-10"]}, "workdays", "both holidays and workdays"),
        ({"weekend": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}, "weekend", "at least one day"),
        ({"weekend": ["caturday"]}, "weekend", "Input should be"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"holiday": ["2026-10-01"]}, "holiday", "Extra inputs"),
    ],
)
def test_calendar_validation(data: dict, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        WorkCalendar.model_validate(data)
    err = exc.value.errors()[0]
    assert err["loc"][0] == field
    assert message in err["msg"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": 0, "unit": "working_hours"}, "greater than 0"),
        ({"amount": 1.5, "unit": "working_days"}, "whole number"),
        ({"amount": 1, "unit": "weeks"}, "Input should be"),
    ],
)
def test_time_limit_validation(data: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TimeLimit.model_validate(data)


def test_calendar_is_frozen() -> None:
    with pytest.raises(ValidationError):
        PLAIN.timezone = "UTC"  # type: ignore[misc]
