"""Proration: pieces of any split of a period sum to the full amount (Hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from facturo.core.money import CURRENCY_EXPONENTS
from facturo.core.proration import change_adjustment, piece, split_by_days, stub

amounts = st.decimals(Decimal("0"), Decimal("1000000"), places=3)
currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))


@given(
    amounts,
    currencies,
    st.dates(date(2020, 1, 1), date(2040, 1, 1)),
    st.lists(st.integers(0, 40), min_size=1, max_size=12),
)
def test_pieces_of_any_split_sum_to_the_whole(
    amount: Decimal, currency: str, start: date, gaps: list[int]
) -> None:
    cuts = [start]
    for g in gaps:
        cuts.append(cuts[-1] + timedelta(days=g))
    if cuts[-1] == start:
        cuts[-1] = start + timedelta(days=1)
    from facturo.core.money import round_money

    assert sum(split_by_days(amount, cuts, currency)) == round_money(amount, currency)


@given(amounts, st.integers(1, 400), st.data())
def test_old_part_plus_new_part_is_consistent(
    amount: Decimal, length: int, data: st.DataObject
) -> None:
    start = date(2027, 1, 1)
    end = start + timedelta(days=length)
    change = start + timedelta(days=data.draw(st.integers(0, length)))
    before = piece(amount, (start, end), (start, change), "EUR")
    after = piece(amount, (start, end), (change, end), "EUR")
    assert before + after == amount.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert change_adjustment(amount, amount, (start, end), change, "EUR") == 0


def test_known_values() -> None:
    # 100 € over 31 days, 12 days used: 100 × 12 / 31 = 38.709… → 38.71, remainder 61.29
    assert stub(Decimal(100), 12, 31, "EUR") == Decimal("38.71")
    assert piece(
        Decimal(100),
        (date(2027, 1, 1), date(2027, 2, 1)),
        (date(2027, 1, 13), date(2027, 2, 1)),
        "EUR",
    ) == Decimal("61.29")
    # upgrade 30 → 60 €/month on 16 January (16 of 31 days left): the new piece (30.97)
    # minus the old piece (15.48), not 30 × 16/31 rounded alone (15.48): the customer pays
    # exactly old[1–15 Jan] + new[16–31 Jan] = 14.52 + 30.97

    assert change_adjustment(
        Decimal(30), Decimal(60), (date(2027, 1, 1), date(2027, 2, 1)), date(2027, 1, 16), "EUR"
    ) == Decimal("15.49")
