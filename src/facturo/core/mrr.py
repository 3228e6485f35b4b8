"""Monthly recurring revenue: every frequency brought to one month, exactly.

Pure arithmetic (no clock, no I/O). A period's price is turned into a monthly amount with
``core.recurrence.months_per_period`` (day and week periods use 365.25 / 12 days per month),
kept as an exact fraction, summed exactly, and rounded **once** at the end, half up to the
currency's minor unit — so the MRR of many subscriptions does not drift by a cent per
subscription, and the same inputs always give the same figure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction

from .money import CURRENCY_EXPONENTS, check_currency
from .recurrence import Frequency, months_per_period


def monthly_fraction(period_amount: Decimal, frequency: Frequency) -> Fraction:
    """The exact monthly share of ``period_amount`` billed once per ``frequency`` period."""
    months, per = months_per_period(frequency)
    return Fraction(period_amount) * per / months


def round_fraction(value: Fraction, currency: str) -> Decimal:
    """Round half up (away from zero at the half, as ``ROUND_HALF_UP``) to the minor unit."""
    exponent = CURRENCY_EXPONENTS[check_currency(currency)]
    scaled = abs(value) * 10**exponent
    units, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        units += 1
    sign = -1 if value < 0 else 1
    return Decimal(sign * units).scaleb(-exponent)


def monthly_amount(period_amount: Decimal, frequency: Frequency, currency: str) -> Decimal:
    """One subscription's monthly amount, rounded (for display beside it)."""
    return round_fraction(monthly_fraction(period_amount, frequency), currency)


def mrr(items: Iterable[tuple[Decimal, Frequency]], currency: str) -> Decimal:
    """The sum of the monthly shares of ``(period_amount, frequency)`` items, rounded once."""
    total = sum((monthly_fraction(amount, freq) for amount, freq in items), Fraction(0))
    return round_fraction(total, currency)


def month_start(day: dt.date, shift: int = 0) -> dt.date:
    """The first day of the month ``shift`` months after the month of ``day``."""
    index = day.year * 12 + day.month - 1 + shift
    return dt.date(index // 12, index % 12 + 1, 1)


def next_months(today: dt.date, count: int = 3) -> list[tuple[dt.date, dt.date]]:
    """The ``count`` calendar months from the current one, as half-open ``[start, end)``."""
    return [(month_start(today, k), month_start(today, k + 1)) for k in range(count)]
