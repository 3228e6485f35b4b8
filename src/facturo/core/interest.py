"""Late-payment interest and the fixed recovery indemnity between businesses (pure).

Law (art. L441-10 II C. com.):

- unless the contract says otherwise, the penalty rate is the ECB's rate on its most recent
  main refinancing operation **plus 10 percentage points**; the ECB rate used is the one in
  force on 1 January for the first half-year and on 1 July for the second;
- a contractual rate (the invoice's or the organization's) may be set, but never below
  **three times the legal interest rate** (taux de l'intérêt légal, "autres cas", fixed each
  half-year by arrêté);
- penalties are due the day after the due date, without any reminder;
- plus a fixed **40 € recovery indemnity per invoice** (art. D441-5 C. com.).

Computation: simple interest, per day, on the amount left unpaid each day, with the rate of
the half-year the day falls in; day count actual/365 (the usual French practice for
commercial penalties); rounded once, ROUND_HALF_UP to the cent, on the total.

The rate table is data (:data:`RATE_TABLE`, one row per half-year); the ``dunning`` app lets
an administrator add rows (``InterestRate`` in the admin) that take precedence. A day after
the last known half-year uses the last row and the result says so (``provisional``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

LEGAL_MARGIN_POINTS = Decimal(10)  # L441-10 II: ECB rate + 10 points
FLOOR_MULTIPLIER = Decimal(3)  # never below 3 × the legal interest rate
RECOVERY_INDEMNITY_EUR = Decimal("40.00")  # D441-5
DAYS_IN_YEAR = Decimal(365)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class HalfYearRates:
    """Rates for the half-year starting on ``start`` (1 January or 1 July), in % a year."""

    start: dt.date
    ecb_refinancing: Decimal  # ECB main refinancing operations rate in force on ``start``
    legal: Decimal  # taux de l'intérêt légal, "autres cas" (creditor acting professionally)
    source: str = ""


# ECB: main refinancing operations rate in force on 1 Jan / 1 Jul (ecb.europa.eu, key ECB
# interest rates). Legal rate: arrêtés published each half-year (Banque de France /
# service-public F20688). Add a row every half-year (or through the admin).
RATE_TABLE: tuple[HalfYearRates, ...] = (
    HalfYearRates(dt.date(2023, 1, 1), Decimal("2.50"), Decimal("2.06"), "arrêté 14/12/2022"),
    HalfYearRates(dt.date(2023, 7, 1), Decimal("4.00"), Decimal("4.22"), "arrêté 26/06/2023"),
    HalfYearRates(dt.date(2024, 1, 1), Decimal("4.50"), Decimal("5.07"), "arrêté 22/12/2023"),
    HalfYearRates(dt.date(2024, 7, 1), Decimal("4.25"), Decimal("4.92"), "arrêté 21/06/2024"),
    HalfYearRates(dt.date(2025, 1, 1), Decimal("3.15"), Decimal("3.71"), "arrêté 23/12/2024"),
    HalfYearRates(dt.date(2025, 7, 1), Decimal("2.15"), Decimal("2.76"), "arrêté 23/06/2025"),
    HalfYearRates(dt.date(2026, 1, 1), Decimal("2.15"), Decimal("2.62"), "arrêté 15/12/2025"),
)


def half_year_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 1 if day.month <= 6 else 7, 1)


def merged_table(
    extra: Iterable[HalfYearRates] = (), base: Sequence[HalfYearRates] = RATE_TABLE
) -> tuple[HalfYearRates, ...]:
    """``base`` with ``extra`` rows added or replacing the row of the same half-year."""
    rows: dict[dt.date, HalfYearRates] = {r.start: r for r in base}
    for row in extra:
        if row.start != half_year_start(row.start):
            raise ValueError(f"a half-year starts on 1 January or 1 July, not {row.start}")
        rows[row.start] = row
    return tuple(rows[k] for k in sorted(rows))


def rates_on(
    day: dt.date, table: Sequence[HalfYearRates] = RATE_TABLE
) -> tuple[HalfYearRates, bool]:
    """The row for ``day``'s half-year and whether it is exact (False: the last known row
    stands in for a half-year not in the table yet)."""
    if not table:
        raise ValueError("the interest rate table is empty")
    start = half_year_start(day)
    best = None
    for row in table:
        if row.start <= start and (best is None or row.start > best.start):
            best = row
    if best is None:
        raise ValueError(f"no interest rate known for {day} (the table starts {table[0].start})")
    return best, best.start == start


def applicable_rate(rates: HalfYearRates, contract_rate: Decimal | None = None) -> Decimal:
    """L441-10 II: the contractual rate, raised to 3 × the legal rate if below it; without
    one, the ECB rate + 10 points."""
    if contract_rate is None:
        return rates.ecb_refinancing + LEGAL_MARGIN_POINTS
    return max(contract_rate, FLOOR_MULTIPLIER * rates.legal)


@dataclass(frozen=True)
class InterestSegment:
    start: dt.date  # first day of interest, inclusive
    end: dt.date  # last day, inclusive
    days: int
    principal: Decimal
    rate: Decimal  # % a year
    amount: Decimal  # unrounded


@dataclass(frozen=True)
class LateInterest:
    amount: Decimal  # rounded to the cent
    segments: tuple[InterestSegment, ...]
    provisional: bool  # a day fell in a half-year missing from the table

    @property
    def days(self) -> int:
        return sum(s.days for s in self.segments)


def late_interest(
    principal: Decimal,
    due_date: dt.date,
    as_of: dt.date,
    *,
    payments: Mapping[dt.date, Decimal] | Iterable[tuple[dt.date, Decimal]] = (),
    contract_rate: Decimal | None = None,
    table: Sequence[HalfYearRates] = RATE_TABLE,
) -> LateInterest:
    """Interest owed on ``principal`` from the day after ``due_date`` to ``as_of`` (both
    inclusive), ``payments`` (date, amount) lowering the principal from their date on (a
    payment on day D stops interest on that part from day D)."""
    if principal < 0:
        raise ValueError("the principal cannot be negative")
    items = payments.items() if isinstance(payments, Mapping) else payments
    paid: dict[dt.date, Decimal] = {}
    for day, amount in items:
        paid[day] = paid.get(day, Decimal(0)) + amount
    # Principal changes at payment dates and rates at half-year boundaries: walk the
    # boundaries in order, one segment between two of them.
    first = due_date + dt.timedelta(days=1)
    if as_of < first:
        return LateInterest(Decimal("0.00"), (), False)
    remaining = principal - sum((a for d, a in paid.items() if d <= first), Decimal(0))
    cuts = {d for d in paid if first < d <= as_of}
    year = first.year
    while dt.date(year, 1, 1) <= as_of:
        for month in (1, 7):
            boundary = dt.date(year, month, 1)
            if first < boundary <= as_of:
                cuts.add(boundary)
        year += 1
    segments: list[InterestSegment] = []
    provisional = False
    start = first
    for cut in [*sorted(cuts), as_of + dt.timedelta(days=1)]:
        if remaining <= 0:
            break
        days = (cut - start).days
        if days > 0:
            row, exact = rates_on(start, table)
            provisional = provisional or not exact
            rate = applicable_rate(row, contract_rate)
            amount = remaining * rate / Decimal(100) * Decimal(days) / DAYS_IN_YEAR
            last = cut - dt.timedelta(days=1)
            segments.append(InterestSegment(start, last, days, remaining, rate, amount))
        remaining -= paid.get(cut, Decimal(0))
        start = cut
    total = sum((s.amount for s in segments), Decimal(0))
    return LateInterest(total.quantize(CENT, ROUND_HALF_UP), tuple(segments), provisional)


def recovery_indemnity(currency: str) -> Decimal | None:
    """40 € per invoice paid late (D441-5). The amount is set in euros: for an invoice in
    another currency there is no fixed figure to claim (None)."""
    return RECOVERY_INDEMNITY_EUR if currency == "EUR" else None
