"""core.metered: unit, tiered (graduated) and volume pricing — examples and properties."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facturo.core import metered
from facturo.core.errors import BusinessError
from facturo.core.metered import Tier

D = Decimal
TIERS = metered.parse_tiers([["100", "1.00"], ["1000", "0.50", "5"], [None, "0.10"]])


def test_examples() -> None:
    # 150 units: graduated 100 × 1.00 + 50 × 0.50 + 5 (tier 2's flat fee) = 130.00
    assert metered.amount("tiered", D(150), D(0), TIERS, "EUR") == D("130.00")
    # volume: all 150 at the tier they fall in (0.50) + its flat fee = 80.00
    assert metered.amount("volume", D(150), D(0), TIERS, "EUR") == D("80.00")
    assert metered.amount("unit", D("12.5"), D("0.40"), [], "EUR") == D("5.00")
    # a bound belongs to its tier
    assert metered.amount("volume", D(100), D(0), TIERS, "EUR") == D("100.00")
    assert metered.amount("tiered", D(0), D(0), TIERS, "EUR") == D("0.00")
    pieces = metered.pieces("tiered", D(1500), D(0), TIERS, "EUR")
    assert [(p.tier, p.quantity, p.flat) for p in pieces] == [
        (1, D(100), False),
        (2, D(900), False),
        (2, D(1), True),
        (3, D(500), False),
    ]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ([], "metered.no_tiers"),
        ([["10", "1"]], "metered.last_tier_bounded"),
        ([["10", "1"], ["5", "1"], [None, "1"]], "metered.tier_order"),
        ([[None, "1"], [None, "1"]], "metered.unbounded_tier"),
        ([["0", "1"], [None, "1"]], "metered.tier_order"),
        ([[None, "-1"]], "metered.negative_price"),
        ([["abc", "1"], [None, "1"]], "metered.invalid_number"),
    ],
)
def test_bad_tiers_are_refused_precisely(raw: list[list[str | None]], code: str) -> None:
    with pytest.raises(BusinessError) as exc:
        metered.parse_tiers(raw)
    assert exc.value.code == code


def test_negative_usage_is_refused() -> None:
    with pytest.raises(BusinessError):
        metered.amount("tiered", D(-1), D(0), TIERS, "EUR")


prices = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False)
quantities = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False)


@st.composite
def tier_lists(draw: st.DrawFn) -> list[Tier]:
    bounds = sorted(draw(st.sets(st.integers(1, 50_000), min_size=0, max_size=5)))
    return [
        Tier(None if b is None else D(b), draw(prices), draw(st.sampled_from([D(0), D(0), D(5)])))
        for b in [*bounds, None]
    ]


@settings(max_examples=300, deadline=None)
@given(tiers=tier_lists(), quantity=quantities)
def test_graduated_pieces_cover_the_quantity_and_sum_to_the_amount(
    tiers: list[Tier], quantity: Decimal
) -> None:
    pieces = metered.tiered_pieces(quantity, tiers, "EUR")
    assert sum((p.quantity for p in pieces if not p.flat), D(0)) == quantity
    assert metered.amount("tiered", quantity, D(0), tiers, "EUR") == sum(
        (p.amount for p in pieces), D(0)
    )
    # each unit piece is inside its tier
    for p in pieces:
        assert p.last is None or p.first + (0 if p.flat else p.quantity) <= p.last


@settings(max_examples=300, deadline=None)
@given(tiers=tier_lists(), a=quantities, b=quantities)
def test_graduated_is_monotone(tiers: list[Tier], a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    exact = [
        sum((p.quantity * p.unit_price for p in metered.tiered_pieces(q, tiers, "EUR")), D(0))
        for q in (low, high)
    ]
    assert exact[0] <= exact[1]


@settings(max_examples=300, deadline=None)
@given(price=prices, quantity=quantities, flat=st.sampled_from([D(0), D("2.5")]))
def test_one_tier_is_unit_pricing_for_every_model(
    price: Decimal, quantity: Decimal, flat: Decimal
) -> None:
    one = [Tier(None, price, D(0))]
    unit = metered.amount("unit", quantity, price, [], "EUR")
    assert metered.amount("tiered", quantity, D(0), one, "EUR") == unit
    assert metered.amount("volume", quantity, D(0), one, "EUR") == unit
    with_fee = [Tier(None, price, flat)]
    extra = flat if quantity > 0 else D(0)
    assert metered.amount("tiered", quantity, D(0), with_fee, "EUR") == unit + extra


@settings(max_examples=300, deadline=None)
@given(tiers=tier_lists(), quantity=quantities)
def test_volume_prices_every_unit_at_the_tier_of_the_total(
    tiers: list[Tier], quantity: Decimal
) -> None:
    pieces = metered.volume_pieces(quantity, tiers, "EUR")
    if quantity == 0:
        assert pieces == []
        return
    tier = tiers[metered.volume_tier(quantity, tiers)]
    lower = pieces[0].first
    assert lower < quantity
    assert tier.up_to is None or quantity <= tier.up_to
    assert pieces[0].quantity == quantity
    assert pieces[0].unit_price == tier.unit_price
