"""Billing schedules: which periods a subscription bills, and on which day.

Pure (no clock: ``today`` is always a parameter). Periods are half-open ``[start, end)``.

A schedule is a set of *boundaries* generated from an anchor date and a frequency:

- every N days or weeks: ``anchor + k × N × (1 or 7) days``;
- every N months or years: the anchor day in every N-th month counted from the anchor's
  month, clamped to the month's last day (anchor day 31 → 30 April, 28/29 February); the
  clamping never drifts because each boundary is computed from the anchor, not from the
  previous boundary;
- twice a month: two fixed days of every month (the first ≤ 27 so both exist in February).

Billing starts on ``billing_start`` (the subscription start, or the end of the trial). When
it does not fall on a boundary, the first period is a *stub* up to the next boundary, billed
pro rata of the natural period containing it (``days / full_days``). In advance, a period is
invoiced on its first day; in arrears, on its end (the day after its last day).

Periods whose start falls in a pause are skipped (not invoiced, not counted). A schedule
ends on ``ends_on`` (exclusive: the last period is cut there, pro rata) or after
``max_periods`` invoiced periods.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from .errors import BusinessError, _


class Unit(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    SEMI_MONTH = "semi_month"  # twice a month on two fixed days


class Timing(StrEnum):
    ADVANCE = "advance"  # à échoir
    ARREARS = "arrears"  # échu


@dataclass(frozen=True)
class Frequency:
    unit: Unit
    interval: int = 1
    days: tuple[int, int] | None = None  # SEMI_MONTH only

    def __post_init__(self) -> None:
        if not 1 <= self.interval <= 366:
            raise BusinessError(
                "recurrence.invalid_interval",
                _("The interval must be between 1 and 366."),
                field="interval",
            )
        if self.unit == Unit.SEMI_MONTH:
            if self.days is None or self.interval != 1:
                raise BusinessError(
                    "recurrence.semi_month_days",
                    _("Twice a month needs two days of the month."),
                    field="semi_month_days",
                )
            first, second = self.days
            if first == second:
                raise BusinessError(
                    "recurrence.semi_month_same_day",
                    _("Twice a month needs two different days."),
                    field="semi_month_days",
                )
            if not (1 <= first < second <= 31 and first <= 27):
                raise BusinessError(
                    "recurrence.semi_month_days",
                    _(
                        "Twice a month: the first day must come before the second and be at most "
                        "the 27th (both must exist in February)."
                    ),
                    field="semi_month_days",
                )
        elif self.days is not None:
            raise BusinessError(
                "recurrence.days_not_allowed",
                _("Fixed days only apply to twice-a-month schedules."),
                field="semi_month_days",
            )


PRESETS: dict[str, Frequency] = {
    "weekly": Frequency(Unit.WEEK, 1),
    "biweekly": Frequency(Unit.WEEK, 2),
    "semi_monthly": Frequency(Unit.SEMI_MONTH, 1, (1, 15)),
    "monthly": Frequency(Unit.MONTH, 1),
    "bimonthly": Frequency(Unit.MONTH, 2),
    "quarterly": Frequency(Unit.MONTH, 3),
    "half_yearly": Frequency(Unit.MONTH, 6),
    "yearly": Frequency(Unit.YEAR, 1),
}


def months_per_period(freq: Frequency) -> tuple[int, int]:
    """How many months one period lasts, as a fraction (numerator, denominator), for MRR.
    Day and week periods use 365.25 / 12 days per month."""
    match freq.unit:
        case Unit.MONTH:
            return freq.interval, 1
        case Unit.YEAR:
            return 12 * freq.interval, 1
        case Unit.SEMI_MONTH:
            return 1, 2
        case Unit.WEEK:
            return 7 * freq.interval * 12 * 4, 1461
        case Unit.DAY:
            return freq.interval * 12 * 4, 1461
    raise AssertionError(freq.unit)


def clamp_day(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _month_shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


@dataclass(frozen=True)
class Rule:
    """The boundaries of a schedule: ``frequency`` from ``anchor`` (itself a boundary)."""

    frequency: Frequency
    anchor: date
    anchor_day: int = 0  # month/year units: 0 = the anchor's day; 31 = month ends

    @property
    def day(self) -> int:
        return self.anchor_day or self.anchor.day

    def boundary(self, k: int) -> date:
        f = self.frequency
        match f.unit:
            case Unit.DAY:
                return self.anchor + timedelta(days=k * f.interval)
            case Unit.WEEK:
                return self.anchor + timedelta(days=7 * k * f.interval)
            case Unit.MONTH | Unit.YEAR:
                step = f.interval * (12 if f.unit == Unit.YEAR else 1)
                y, m = _month_shift(self.anchor.year, self.anchor.month, k * step)
                return clamp_day(y, m, self.day)
            case Unit.SEMI_MONTH:
                assert f.days is not None
                y, m = _month_shift(self.anchor.year, self.anchor.month, k // 2)
                return clamp_day(y, m, f.days[k % 2])
        raise AssertionError(f.unit)

    def index_at(self, d: date) -> int:
        """The k with ``boundary(k) <= d < boundary(k + 1)``."""
        f = self.frequency
        months = (d.year - self.anchor.year) * 12 + d.month - self.anchor.month
        match f.unit:
            case Unit.DAY | Unit.WEEK:
                step = f.interval * (7 if f.unit == Unit.WEEK else 1)
                k = (d - self.anchor).days // step
            case Unit.MONTH:
                k = months // f.interval
            case Unit.YEAR:
                k = months // (12 * f.interval)
            case Unit.SEMI_MONTH:
                k = months * 2
        while self.boundary(k) > d:
            k -= 1
        while self.boundary(k + 1) <= d:
            k += 1
        return k

    def next_boundary(self, d: date) -> date:
        return self.boundary(self.index_at(d) + 1)

    def natural_period(self, d: date) -> tuple[date, date]:
        k = self.index_at(d)
        return self.boundary(k), self.boundary(k + 1)


@dataclass(frozen=True)
class Period:
    index: int  # 1 for the first invoiced period
    start: date
    end: date  # exclusive
    invoice_date: date
    days: int  # billed days
    full_days: int  # days of the natural period (days == full_days: a full period)

    @property
    def is_full(self) -> bool:
        return self.days == self.full_days

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)


@dataclass(frozen=True)
class Schedule:
    rule: Rule
    billing_start: date
    timing: Timing = Timing.ADVANCE
    ends_on: date | None = None  # exclusive
    max_periods: int | None = None
    pauses: Sequence[tuple[date, date | None]] = field(default=())  # [from, until)

    def __post_init__(self) -> None:
        if self.ends_on is not None and self.ends_on <= self.billing_start:
            raise BusinessError(
                "recurrence.end_before_start",
                _("The end date must come after the start date."),
                field="ends_on",
            )
        if self.max_periods is not None and self.max_periods < 1:
            raise BusinessError(
                "recurrence.invalid_count",
                _("The number of invoices must be at least 1."),
                field="max_periods",
            )
        for start, until in self.pauses:
            if until is not None and until <= start:
                raise BusinessError(
                    "recurrence.pause_order",
                    _("A pause must end after it starts."),
                    field="pauses",
                )

    def _paused(self, d: date) -> bool:
        return any(start <= d and (until is None or d < until) for start, until in self.pauses)

    def _paused_forever(self, d: date) -> bool:
        return any(start <= d and until is None for start, until in self.pauses)

    def periods(self) -> Iterator[Period]:
        """Every invoiced period in order (finite when the schedule ends)."""
        start = self.billing_start
        index = 0
        while self.ends_on is None or start < self.ends_on:
            if self.max_periods is not None and index >= self.max_periods:
                return
            if self._paused_forever(start):
                return  # nothing more until resumed
            natural_start, natural_end = self.rule.natural_period(start)
            end = natural_end
            if self.ends_on is not None and self.ends_on < end:
                end = self.ends_on
            if not self._paused(start):
                index += 1
                yield Period(
                    index=index,
                    start=start,
                    end=end,
                    invoice_date=start if self.timing == Timing.ADVANCE else end,
                    days=(end - start).days,
                    full_days=(natural_end - natural_start).days,
                )
            start = end

    def due(self, today: date, after: date | None = None, limit: int = 10_000) -> list[Period]:
        """Periods invoiced on or before ``today`` that start after ``after`` (the start of
        the last period already billed): what a billing run must create, catch-up included."""
        result: list[Period] = []
        for period in self.periods():
            if period.invoice_date > today or len(result) >= limit:
                break
            if after is None or period.start > after:
                result.append(period)
        return result

    def next_period(self, after: date | None) -> Period | None:
        for period in self.periods():
            if after is None or period.start > after:
                return period
        return None

    def period_containing(self, d: date) -> Period | None:
        for period in self.periods():
            if period.start > d:
                return None
            if period.start <= d < period.end:
                return period
        return None
