"""MRR arithmetic: each frequency brought to a month, summed exactly, rounded once (half up).

Expected figures are computed by hand below each case (a month = 365.25 / 12 = 30.4375 days
for day and week frequencies).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facturo.core.mrr import (
    month_start,
    monthly_amount,
    monthly_fraction,
    mrr,
    next_months,
    round_fraction,
)
from facturo.core.recurrence import PRESETS, Frequency, Unit

D = Decimal


@pytest.mark.parametrize(
    ("amount", "frequency", "currency", "expected"),
    [
        ("30.00", PRESETS["monthly"], "EUR", "30.00"),
        # 100 / 3 = 33.333…
        ("100.00", PRESETS["quarterly"], "EUR", "33.33"),
        # 200 / 3 = 66.666…
        ("200.00", PRESETS["quarterly"], "EUR", "66.67"),
        ("1200.00", PRESETS["yearly"], "EUR", "100.00"),
        ("600.00", PRESETS["half_yearly"], "EUR", "100.00"),
        ("90.00", PRESETS["bimonthly"], "EUR", "45.00"),
        # twice a month: 2 × 50
        ("50.00", PRESETS["semi_monthly"], "EUR", "100.00"),
        # weekly: 10 × 30.4375 / 7 = 43.482142…
        ("10.00", PRESETS["weekly"], "EUR", "43.48"),
        # every two weeks: 70 × 30.4375 / 14 = 152.1875
        ("70.00", PRESETS["biweekly"], "EUR", "152.19"),
        # every 10 days: 100 × 30.4375 / 10 = 304.375 exactly: the half goes up
        ("100.00", Frequency(Unit.DAY, 10), "EUR", "304.38"),
        # a half cent exactly: 0.06 / 12 = 0.005 → 0.01 (and −0.005 → −0.01)
        ("0.06", PRESETS["yearly"], "EUR", "0.01"),
        ("-0.06", PRESETS["yearly"], "EUR", "-0.01"),
        # 0.04 / 12 = 0.00333… → 0.00
        ("0.04", PRESETS["yearly"], "EUR", "0.00"),
        # currencies without / with three decimals: 1000 / 12 = 83.33…; 1 / 3 = 0.333…
        ("1000", PRESETS["yearly"], "JPY", "83"),
        ("1.000", PRESETS["quarterly"], "TND", "0.333"),
        # every 2 years: 2400 / 24
        ("2400.00", Frequency(Unit.YEAR, 2), "EUR", "100.00"),
    ],
)
def test_monthly_amount_by_hand(amount: str, frequency: Frequency, currency: str,
                                expected: str) -> None:  # fmt: skip
    result = monthly_amount(D(amount), frequency, currency)
    assert result == D(expected)
    assert str(result) == expected  # the currency's number of decimals, no exponent


def test_mrr_rounds_once_not_per_subscription() -> None:
    items = [
        (D("30.00"), PRESETS["monthly"]),  # 30
        (D("100.00"), PRESETS["quarterly"]),  # 33.3333…
        (D("1200.00"), PRESETS["yearly"]),  # 100
        (D("10.00"), PRESETS["weekly"]),  # 43.482142…
        (D("50.00"), PRESETS["semi_monthly"]),  # 100
    ]
    # exact sum: 306.815476… → 306.82; rounding each first would give 306.81
    assert mrr(items, "EUR") == D("306.82")
    assert sum(monthly_amount(a, f, "EUR") for a, f in items) == D("306.81")
    # three thirds of a quarter make a whole
    assert mrr([(D("100.00"), PRESETS["quarterly"])] * 3, "EUR") == D("100.00")
    assert mrr([], "EUR") == D("0.00")


def test_month_helpers() -> None:
    assert month_start(dt.date(2027, 1, 31)) == dt.date(2027, 1, 1)
    assert month_start(dt.date(2027, 11, 15), 2) == dt.date(2028, 1, 1)
    assert next_months(dt.date(2027, 12, 10)) == [
        (dt.date(2027, 12, 1), dt.date(2028, 1, 1)),
        (dt.date(2028, 1, 1), dt.date(2028, 2, 1)),
        (dt.date(2028, 2, 1), dt.date(2028, 3, 1)),
    ]


@given(
    st.decimals(D("-1000000"), D("1000000"), places=6, allow_nan=False, allow_infinity=False),
    st.sampled_from(["EUR", "JPY", "TND"]),
)
def test_round_fraction_matches_decimal_half_up(value: Decimal, currency: str) -> None:
    from facturo.core.money import round_money

    assert round_fraction(Fraction(value), currency) == round_money(value, currency)


@given(st.decimals(D("0"), D("100000"), places=2), st.sampled_from(sorted(PRESETS)))
def test_a_year_of_monthly_shares_is_a_year_of_periods(amount: Decimal, preset: str) -> None:
    """12 × the monthly share = what a year of periods bills (365.25 days a year)."""
    freq = PRESETS[preset]
    yearly = monthly_fraction(amount, freq) * 12
    periods_per_year: Fraction = {
        "weekly": Fraction(36525, 700),
        "biweekly": Fraction(36525, 1400),
        "semi_monthly": Fraction(24),
        "monthly": Fraction(12),
        "bimonthly": Fraction(6),
        "quarterly": Fraction(4),
        "half_yearly": Fraction(2),
        "yearly": Fraction(1),
    }[preset]
    assert yearly == Fraction(amount) * periods_per_year
