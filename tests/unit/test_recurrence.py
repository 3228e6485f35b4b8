"""Schedules: every preset, month ends, leap days, stubs, advance/arrears, ends, pauses."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facturo.core.errors import BusinessError
from facturo.core.recurrence import PRESETS, Frequency, Rule, Schedule, Timing, Unit


def starts(schedule: Schedule, n: int) -> list[date]:
    out = []
    for period in schedule.periods():
        out.append(period.start)
        if len(out) == n:
            break
    return out


def monthly(anchor: date, **kw: object) -> Schedule:
    return Schedule(Rule(PRESETS["monthly"], anchor), anchor, **kw)  # type: ignore[arg-type]


def test_month_end_anchor_clamps_without_drift() -> None:
    s = monthly(date(2027, 1, 31))
    assert starts(s, 5) == [
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),
        date(2027, 4, 30),
        date(2027, 5, 31),
    ]


def test_leap_day_anchor_yearly() -> None:
    s = Schedule(Rule(PRESETS["yearly"], date(2028, 2, 29)), date(2028, 2, 29))
    assert starts(s, 5) == [
        date(2028, 2, 29),
        date(2029, 2, 28),
        date(2030, 2, 28),
        date(2031, 2, 28),
        date(2032, 2, 29),
    ]


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("weekly", [date(2027, 1, 6), date(2027, 1, 13), date(2027, 1, 20)]),
        ("biweekly", [date(2027, 1, 6), date(2027, 1, 20), date(2027, 2, 3)]),
        ("semi_monthly", [date(2027, 1, 6), date(2027, 1, 15), date(2027, 2, 1)]),
        ("monthly", [date(2027, 1, 6), date(2027, 2, 6), date(2027, 3, 6)]),
        ("bimonthly", [date(2027, 1, 6), date(2027, 3, 6), date(2027, 5, 6)]),
        ("quarterly", [date(2027, 1, 6), date(2027, 4, 6), date(2027, 7, 6)]),
        ("half_yearly", [date(2027, 1, 6), date(2027, 7, 6), date(2028, 1, 6)]),
        ("yearly", [date(2027, 1, 6), date(2028, 1, 6), date(2029, 1, 6)]),
    ],
)
def test_presets(preset: str, expected: list[date]) -> None:
    # semi-monthly boundaries are the 1st and 15th: starting on the 6th gives a stub first
    s = Schedule(Rule(PRESETS[preset], date(2027, 1, 6)), date(2027, 1, 6))
    assert starts(s, 3) == expected


def test_stub_then_anchor_on_the_first() -> None:
    s = Schedule(Rule(PRESETS["monthly"], date(2027, 1, 1)), date(2027, 1, 20))
    first, second = (
        list(s.periods())[:2] if False else [p for _, p in zip(range(2), s.periods(), strict=False)]
    )
    assert (first.start, first.end, first.days, first.full_days) == (
        date(2027, 1, 20),
        date(2027, 2, 1),
        12,
        31,
    )
    assert second.is_full
    assert second.start == date(2027, 2, 1)


def test_arrears_invoice_on_period_end_and_catch_up() -> None:
    s = monthly(date(2027, 1, 1), timing=Timing.ARREARS)
    due = s.due(date(2027, 4, 1))
    assert [p.invoice_date for p in due] == [date(2027, 2, 1), date(2027, 3, 1), date(2027, 4, 1)]
    assert s.due(date(2027, 4, 1), after=date(2027, 2, 1))[0].start == date(2027, 3, 1)


def test_end_on_date_cuts_last_period_and_max_periods() -> None:
    s = monthly(date(2027, 1, 1), ends_on=date(2027, 3, 16))
    periods = list(s.periods())
    assert [(p.start, p.end) for p in periods][-1] == (date(2027, 3, 1), date(2027, 3, 16))
    assert periods[-1].days == 15
    assert periods[-1].full_days == 31
    assert len(list(monthly(date(2027, 1, 1), max_periods=3).periods())) == 3


def test_pause_skips_periods_and_does_not_count() -> None:
    s = monthly(date(2027, 1, 1), max_periods=3, pauses=[(date(2027, 2, 1), date(2027, 4, 1))])
    assert [p.start for p in s.periods()] == [date(2027, 1, 1), date(2027, 4, 1), date(2027, 5, 1)]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"unit": Unit.SEMI_MONTH, "days": (10, 10)}, "recurrence.semi_month_same_day"),
        ({"unit": Unit.SEMI_MONTH, "days": (28, 30)}, "recurrence.semi_month_days"),
        ({"unit": Unit.SEMI_MONTH, "days": (15, 1)}, "recurrence.semi_month_days"),
        ({"unit": Unit.MONTH, "interval": 0}, "recurrence.invalid_interval"),
        ({"unit": Unit.MONTH, "days": (1, 15)}, "recurrence.days_not_allowed"),
    ],
)
def test_impossible_frequencies(kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(BusinessError) as exc:
        Frequency(**kwargs)  # type: ignore[arg-type]
    assert exc.value.code == code


def test_end_before_start_refused() -> None:
    with pytest.raises(BusinessError) as exc:
        monthly(date(2027, 1, 1), ends_on=date(2026, 12, 1))
    assert exc.value.code == "recurrence.end_before_start"


frequencies = st.one_of(
    st.sampled_from(list(PRESETS.values())),
    st.builds(Frequency, st.sampled_from([Unit.DAY, Unit.WEEK, Unit.MONTH]), st.integers(1, 14)),
)


@given(
    frequencies,
    st.dates(date(2020, 1, 1), date(2035, 12, 31)),
    st.dates(date(2020, 1, 1), date(2035, 12, 31)),
)
def test_periods_are_contiguous_and_boundaries_consistent(
    freq: Frequency, anchor: date, start: date
) -> None:
    s = Schedule(Rule(freq, anchor), start)
    previous_end = start
    for _, period in zip(range(30), s.periods(), strict=False):
        assert period.start == previous_end
        assert 0 < period.days <= period.full_days
        assert s.rule.next_boundary(period.start) == period.end
        previous_end = period.end
