"""Amounts and currencies: Decimal only, half-up rounding to the currency's minor unit."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from .errors import BusinessError, _

# ISO 4217 exponents of the currencies we accept; anything else is refused explicitly.
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "CAD": 2,
    "AUD": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "HUF": 2,
    "RON": 2,
    "BGN": 2,
    "XPF": 0,
    "JPY": 0,
    "MAD": 2,
    "TND": 3,
    "XOF": 0,
    "XAF": 0,
}

ZERO = Decimal(0)


def check_currency(currency: str) -> str:
    if currency not in CURRENCY_EXPONENTS:
        raise BusinessError(
            "money.unknown_currency",
            _("Unknown currency “%(currency)s”: use an ISO 4217 code such as EUR."),
            field="currency",
            currency=currency,
        )
    return currency


def minor_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-CURRENCY_EXPONENTS[check_currency(currency)])


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half up to the currency's minor unit.

    EN 16931 and the CIBS (« la moitié étant comptabilisée pour une unité »)."""
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def split_amount(total: Decimal, weights: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights``; the parts always sum to ``total``.

    Largest-remainder method on minor units; ties go to the earliest part.
    """
    if not weights:
        raise ValueError("split_amount needs at least one weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    unit = minor_unit(currency)
    units_total = int((round_money(total, currency) / unit).to_integral_value())
    weight_sum = sum(weights, ZERO)
    if weight_sum == 0:
        weights = [Decimal(1)] * len(weights)
        weight_sum = Decimal(len(weights))
    sign = -1 if units_total < 0 else 1
    magnitude = abs(units_total)
    exact = [Decimal(magnitude) * w / weight_sum for w in weights]
    floors = [int(e) for e in exact]
    remainder = magnitude - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:remainder]:
        floors[i] += 1
    return [Decimal(sign * f) * unit for f in floors]
