"""Metered pricing: what a quantity of usage costs, per unit, tiered or by volume.

Pure (stdlib only). Tiers are ``(up_to, unit_price, flat_fee)`` with ``up_to`` the inclusive
upper bound of the tier in units (``None``: no bound, only for the last tier), in strictly
increasing order.

- **unit**: ``quantity × unit_price``.
- **tiered** (graduated): each tier prices the units that fall in it — 150 units with tiers
  ``≤ 100 at 1.00``, ``above at 0.50`` cost ``100 × 1.00 + 50 × 0.50 = 125.00``; a tier's
  flat fee is added once as soon as one unit falls in it.
- **volume**: the tier that the *whole* quantity falls in prices every unit — 150 units cost
  ``150 × 0.50 = 75.00`` — plus that tier's flat fee.

The result is a list of :class:`Piece` (one per invoice line: a quantity at a unit price,
or a flat fee), each rounded to the minor unit like an invoice line
(``round_money(quantity × unit_price)``, half-up); the amount is the sum of the rounded
pieces, so it equals what the invoice lines add up to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from .errors import BusinessError, _
from .money import round_money

ZERO = Decimal(0)
MAX_TIERS = 20


class Pricing(StrEnum):
    FIXED = "fixed"
    UNIT = "unit"
    TIERED = "tiered"
    VOLUME = "volume"


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = ZERO


@dataclass(frozen=True)
class Piece:
    tier: int  # 1-based tier number (0 for unit pricing)
    first: Decimal  # first unit counted (exclusive lower bound), for the line's text
    last: Decimal | None  # last unit of the tier (None: unbounded)
    quantity: Decimal  # 1 for a flat fee
    unit_price: Decimal
    amount: Decimal  # rounded to the minor unit
    flat: bool = False


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        raise BusinessError(
            "metered.invalid_number",
            _("“%(value)s” is not a number."),
            field=field,
            value=value,
        ) from None
    if not result.is_finite():
        raise BusinessError(
            "metered.invalid_number", _("“%(value)s” is not a number."), field=field, value=value
        )
    return result


def parse_tiers(raw: Iterable[Any], field: str = "tiers") -> list[Tier]:
    """Tiers from ``[[up_to | None, unit_price, flat_fee?], …]`` or dicts with those keys;
    refuses unordered bounds, negative prices, a bounded last tier or an unbounded inner one."""
    tiers: list[Tier] = []
    for n, item in enumerate(raw, start=1):
        where = f"{field}.{n}"
        if isinstance(item, dict):
            up_to, price, flat = item.get("up_to"), item.get("unit_price"), item.get("flat_fee")
        else:
            values = list(item) + [None] * 3
            up_to, price, flat = values[0], values[1], values[2]
        bound = None if up_to in (None, "") else _decimal(up_to, f"{where}.up_to")
        tier = Tier(
            bound,
            _decimal(price if price not in (None, "") else "0", f"{where}.unit_price"),
            _decimal(flat if flat not in (None, "") else "0", f"{where}.flat_fee"),
        )
        if tier.unit_price < 0 or tier.flat_fee < 0:
            raise BusinessError(
                "metered.negative_price",
                _("Tier %(n)s: prices cannot be negative."),
                field=where,
                n=n,
            )
        if tiers:
            previous = tiers[-1].up_to
            if previous is None:
                raise BusinessError(
                    "metered.unbounded_tier",
                    _("Tier %(n)s: only the last tier can be unbounded."),
                    field=f"{field}.{n - 1}.up_to",
                    n=n - 1,
                )
            if bound is not None and bound <= previous:
                raise BusinessError(
                    "metered.tier_order",
                    _("Tier %(n)s: its upper bound must be above the previous tier's (%(prev)s)."),
                    field=f"{where}.up_to",
                    n=n,
                    prev=previous,
                )
        elif bound is not None and bound <= 0:
            raise BusinessError(
                "metered.tier_order",
                _("Tier %(n)s: its upper bound must be above the previous tier's (%(prev)s)."),
                field=f"{where}.up_to",
                n=n,
                prev=0,
            )
        tiers.append(tier)
    if not tiers:
        raise BusinessError(
            "metered.no_tiers", _("Tiered and volume pricing need at least one tier."), field=field
        )
    if len(tiers) > MAX_TIERS:
        raise BusinessError(
            "metered.too_many_tiers", _("At most %(max)s tiers."), field=field, max=MAX_TIERS
        )
    if tiers[-1].up_to is not None:
        raise BusinessError(
            "metered.last_tier_bounded",
            _("The last tier must have no upper bound (it prices everything above)."),
            field=f"{field}.{len(tiers)}.up_to",
        )
    return tiers


def _check_quantity(quantity: Decimal) -> None:
    if quantity < 0:
        raise BusinessError("usage.negative", _("Usage cannot be negative."), field="quantity")


def unit_pieces(quantity: Decimal, unit_price: Decimal, currency: str) -> list[Piece]:
    _check_quantity(quantity)
    return [
        Piece(0, ZERO, None, quantity, unit_price, round_money(quantity * unit_price, currency))
    ]


def tiered_pieces(quantity: Decimal, tiers: Sequence[Tier], currency: str) -> list[Piece]:
    """Graduated: the units of each tier at its price (tiers with no unit are left out)."""
    _check_quantity(quantity)
    pieces: list[Piece] = []
    lower = ZERO
    for n, tier in enumerate(tiers, start=1):
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        units = upper - lower
        pieces.append(
            Piece(
                n,
                lower,
                tier.up_to,
                units,
                tier.unit_price,
                round_money(units * tier.unit_price, currency),
            )
        )
        if tier.flat_fee:
            pieces.append(
                Piece(
                    n,
                    lower,
                    tier.up_to,
                    Decimal(1),
                    tier.flat_fee,
                    round_money(tier.flat_fee, currency),
                    flat=True,
                )
            )
        if tier.up_to is None:
            break
        lower = tier.up_to
    return pieces


def volume_tier(quantity: Decimal, tiers: Sequence[Tier]) -> int:
    """The 0-based index of the tier the whole quantity falls in."""
    for n, tier in enumerate(tiers):
        if tier.up_to is None or quantity <= tier.up_to:
            return n
    return len(tiers) - 1


def volume_pieces(quantity: Decimal, tiers: Sequence[Tier], currency: str) -> list[Piece]:
    """Volume: every unit at the price of the tier the whole quantity falls in."""
    _check_quantity(quantity)
    if quantity == 0:
        return []
    n = volume_tier(quantity, tiers)
    tier = tiers[n]
    lower = tiers[n - 1].up_to if n else ZERO
    assert lower is not None
    pieces = [
        Piece(
            n + 1,
            lower,
            tier.up_to,
            quantity,
            tier.unit_price,
            round_money(quantity * tier.unit_price, currency),
        )
    ]
    if tier.flat_fee:
        pieces.append(
            Piece(
                n + 1,
                lower,
                tier.up_to,
                Decimal(1),
                tier.flat_fee,
                round_money(tier.flat_fee, currency),
                flat=True,
            )
        )
    return pieces


def pieces(
    pricing: str, quantity: Decimal, unit_price: Decimal, tiers: Sequence[Tier], currency: str
) -> list[Piece]:
    match Pricing(pricing):
        case Pricing.UNIT:
            return unit_pieces(quantity, unit_price, currency)
        case Pricing.TIERED:
            return tiered_pieces(quantity, tiers, currency)
        case Pricing.VOLUME:
            return volume_pieces(quantity, tiers, currency)
    raise ValueError(f"not a metered pricing: {pricing}")


def amount(
    pricing: str, quantity: Decimal, unit_price: Decimal, tiers: Sequence[Tier], currency: str
) -> Decimal:
    """What ``quantity`` costs (excl. VAT): the sum of the rounded pieces."""
    return sum(
        (p.amount for p in pieces(pricing, quantity, unit_price, tiers, currency)),
        round_money(ZERO, currency),
    )
