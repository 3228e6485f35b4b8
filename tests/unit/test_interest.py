"""Late-payment interest (art. L441-10 II C. com.) and the 40 € indemnity (art. D441-5),
examples computed by hand.

Rates used (``facturo.core.interest.RATE_TABLE``): ECB main refinancing rate on 1 Jan 2025
3.15 %, on 1 Jul 2025 2.15 %, on 1 Jan 2026 2.15 %; legal interest rate ("autres cas")
S1 2026 2.62 % (arrêté of 15 Dec 2025). Day count actual/365, simple interest, one rounding
(half up, to the cent) on the total.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facturo.core import interest
from facturo.core.interest import HalfYearRates, late_interest, recovery_indemnity

D = Decimal


def test_default_rate_is_ecb_plus_ten_points() -> None:
    # 1 000 € due 31 Mar 2025, 30 days late (1–30 Apr), S1 2025: 3.15 + 10 = 13.15 %.
    # 1000 × 13.15 % × 30 / 365 = 3945 / 365 = 10.8082… → 10.81 €
    result = late_interest(D("1000.00"), dt.date(2025, 3, 31), dt.date(2025, 4, 30))
    assert result.amount == D("10.81")
    assert result.days == 30
    assert [s.rate for s in result.segments] == [D("13.15")]
    assert not result.provisional


def test_rate_changes_on_the_first_of_july() -> None:
    # 2 000 € due 15 Jun 2025, as of 15 Jul 2025:
    #   16–30 Jun: 15 days at 13.15 % → 2000 × 0.1315 × 15 / 365 = 10.80822
    #   1–15 Jul:  15 days at 12.15 % (ECB 2.15 % on 1 July + 10) → 9.98630
    #   total 20.79452 → 20.79 €
    result = late_interest(D("2000.00"), dt.date(2025, 6, 15), dt.date(2025, 7, 15))
    assert [(s.days, s.rate) for s in result.segments] == [(15, D("13.15")), (15, D("12.15"))]
    assert result.amount == D("20.79")


def test_contract_rate_never_below_three_times_the_legal_rate() -> None:
    # Contract says 5 %; S1 2026 floor = 3 × 2.62 % = 7.86 % (L441-10 II, 2nd sentence).
    # 10 000 € × 7.86 % × 10 / 365 = 7860 / 365 = 21.5342… → 21.53 €
    result = late_interest(
        D("10000.00"), dt.date(2026, 1, 10), dt.date(2026, 1, 20), contract_rate=D("5")
    )
    assert result.segments[0].rate == D("7.86")
    assert result.amount == D("21.53")
    # A contract rate above the floor is used as it is: 15 % → 10000 × 0.15 × 10/365 = 41.10
    above = late_interest(
        D("10000.00"), dt.date(2026, 1, 10), dt.date(2026, 1, 20), contract_rate=D("15")
    )
    assert above.amount == D("41.10")


def test_a_partial_payment_lowers_the_principal_from_its_date() -> None:
    # 1 000 € due 31 Mar 2025; 400 € received 10 Apr; as of 30 Apr, 13.15 %:
    #   1–9 Apr:   9 days on 1 000 → 1183.5 / 365 = 3.24247
    #   10–30 Apr: 21 days on 600  → 1656.9 / 365 = 4.53945
    #   total 7.78192 → 7.78 €
    result = late_interest(
        D("1000.00"),
        dt.date(2025, 3, 31),
        dt.date(2025, 4, 30),
        payments=[(dt.date(2025, 4, 10), D("400.00"))],
    )
    assert [(s.days, s.principal) for s in result.segments] == [
        (9, D("1000.00")),
        (21, D("600.00")),
    ]
    assert result.amount == D("7.78")


def test_paid_in_full_stops_the_interest() -> None:
    result = late_interest(
        D("500.00"),
        dt.date(2025, 3, 31),
        dt.date(2025, 12, 31),
        payments={dt.date(2025, 4, 5): D("500.00")},
    )
    assert result.days == 4  # 1–4 April
    assert result.amount == (D(500) * D("0.1315") * 4 / 365).quantize(D("0.01"))


def test_nothing_before_the_day_after_the_due_date() -> None:
    assert late_interest(D("100"), dt.date(2025, 3, 31), dt.date(2025, 3, 31)).amount == D("0.00")


def test_half_year_missing_from_the_table_is_provisional() -> None:
    result = late_interest(D("1000"), dt.date(2026, 6, 30), dt.date(2026, 7, 10))
    assert result.provisional  # S2 2026 not in the table yet: S1's rates stand in
    extra = HalfYearRates(dt.date(2026, 7, 1), D("2.00"), D("2.50"))
    table = interest.merged_table([extra])
    exact = late_interest(D("1000"), dt.date(2026, 6, 30), dt.date(2026, 7, 10), table=table)
    assert not exact.provisional
    assert exact.segments[0].rate == D("12.00")
    with pytest.raises(ValueError, match="1 January or 1 July"):
        interest.merged_table([HalfYearRates(dt.date(2026, 3, 1), D("1"), D("1"))])


def test_recovery_indemnity_is_forty_euros_per_invoice() -> None:
    assert recovery_indemnity("EUR") == D("40.00")  # art. D441-5 C. com.
    assert recovery_indemnity("USD") is None


@given(
    principal=st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=2),
    start=st.dates(min_value=dt.date(2023, 1, 1), max_value=dt.date(2026, 6, 1)),
    days=st.integers(min_value=0, max_value=900),
)
def test_segments_cover_every_late_day_once(principal: Decimal, start: dt.date, days: int) -> None:
    as_of = start + dt.timedelta(days=days)
    result = late_interest(principal, start, as_of)
    assert result.days == days
    assert result.amount >= 0
    for a, b in zip(result.segments, result.segments[1:], strict=False):
        assert b.start == a.end + dt.timedelta(days=1)
