"""Online payment providers behind one small interface: adding PayPal, GoCardless or Mollie
is one module implementing :class:`Provider` and one entry in :data:`PROVIDERS`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


class WebhookRejected(Exception):
    """The request was not proven to come from the provider: nothing was read from it."""


@dataclass(frozen=True)
class CheckoutRequest:
    idempotency_key: str
    invoice_id: str
    invoice_number: str
    organization_id: str
    amount: Decimal
    currency: str
    description: str
    customer_email: str
    success_url: str
    cancel_url: str


@dataclass(frozen=True)
class CheckoutCreated:
    external_id: str
    url: str
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class PaymentSucceeded:
    """What a verified provider event says about money received for an invoice."""

    external_reference: str  # unique per payment at the provider (payment intent)
    invoice_id: str
    amount: Decimal
    currency: str
    method: str  # one of payments.models.Method
    payer: str


@dataclass(frozen=True)
class ProviderEventData:
    event_id: str
    event_type: str
    payment: PaymentSucceeded | None


class Provider(Protocol):
    name: str

    def create_checkout(self, secret_key: str, request: CheckoutRequest) -> CheckoutCreated: ...

    def verify_event(
        self, payload: bytes, headers: dict[str, str], secrets: list[str], now: dt.datetime
    ) -> ProviderEventData: ...

    def test_connection(self, secret_key: str) -> None: ...

    def expire_checkout(self, secret_key: str, external_id: str) -> None:
        """Make a hosted page unpayable (the invoice no longer owes its amount)."""
        ...


def get_provider(name: str) -> Provider:
    from .stripe import StripeProvider

    providers: dict[str, Provider] = {"stripe": StripeProvider()}
    try:
        return providers[name]
    except KeyError:
        raise LookupError(f"unknown payment provider {name!r}") from None
