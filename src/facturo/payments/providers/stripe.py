"""Stripe through its official SDK: Checkout Sessions and signed webhooks.

The API base is read from ``stripe.api_base`` (tests point it at a local server that speaks
Stripe's wire format; Stripe itself cannot be reached from the test machines).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import stripe

from facturo.core.money import CURRENCY_EXPONENTS

from . import CheckoutCreated, CheckoutRequest, PaymentSucceeded, ProviderEventData, WebhookRejected

TOLERANCE = 300  # seconds, Stripe's default, both ways
SIGNATURE_HEADER = "stripe-signature"
PAID_TYPES = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
MAX_PAYLOAD = 256 * 1024
METHODS = {"card": "card", "sepa_debit": "sepa_debit", "customer_balance": "transfer"}


def _client(secret_key: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret_key, base_addresses={"api": stripe.api_base}, max_network_retries=2
    )


def _minor(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(CURRENCY_EXPONENTS[currency]))


class StripeProvider:
    name = "stripe"

    def create_checkout(self, secret_key: str, request: CheckoutRequest) -> CheckoutCreated:
        params: dict[str, Any] = {
            "mode": "payment",
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": request.invoice_id,
            "line_items": [{
                "quantity": 1,
                "price_data": {
                    "currency": request.currency.lower(),
                    "unit_amount": _minor(request.amount, request.currency),
                    "product_data": {"name": request.description},
                },
            }],
            "metadata": {"invoice_id": request.invoice_id,
                         "organization_id": request.organization_id,
                         "invoice_number": request.invoice_number},
            "payment_intent_data": {"metadata": {"invoice_id": request.invoice_id}},
        }  # fmt: skip
        if request.customer_email:
            params["customer_email"] = request.customer_email
        session = _client(secret_key).v1.checkout.sessions.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": request.idempotency_key},
        )
        expires = getattr(session, "expires_at", None)
        return CheckoutCreated(
            external_id=session.id,
            url=session.url or "",
            expires_at=dt.datetime.fromtimestamp(expires, tz=dt.UTC) if expires else None,
        )

    def test_connection(self, secret_key: str) -> None:
        _client(secret_key).v1.balance.retrieve()

    def expire_checkout(self, secret_key: str, external_id: str) -> None:
        """Expire an open Checkout Session; one already expired or completed is left as is
        (Stripe answers 400 for those)."""
        try:
            _client(secret_key).v1.checkout.sessions.expire(external_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 400:
                raise

    def verify_event(
        self, payload: bytes, headers: dict[str, str], secrets: list[str], now: dt.datetime
    ) -> ProviderEventData:
        """Check the signature and the timestamp before reading anything of the payload."""
        if len(payload) > MAX_PAYLOAD:
            raise WebhookRejected("payload too large")
        header = headers.get(SIGNATURE_HEADER, "")
        if not header:
            raise WebhookRejected("missing Stripe-Signature header")
        stamps = [p[2:] for p in header.split(",") if p.startswith("t=")]
        if len(stamps) != 1 or not stamps[0].isdigit():
            raise WebhookRejected("malformed Stripe-Signature header")
        # The SDK refuses old timestamps only; a timestamp in the future is refused here.
        if int(stamps[0]) > now.timestamp() + TOLERANCE:
            raise WebhookRejected("timestamp in the future")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookRejected("payload is not UTF-8") from None
        reason = "no webhook secret configured"
        for secret in [s for s in secrets if s]:
            try:
                stripe.WebhookSignature.verify_header(text, header, secret, TOLERANCE)
            except stripe.SignatureVerificationError as exc:
                reason = str(exc)
                continue
            break
        else:
            raise WebhookRejected(reason)
        return _read_event(json.loads(text))


def _read_event(event: dict[str, Any]) -> ProviderEventData:
    event_id, event_type = str(event.get("id", "")), str(event.get("type", ""))
    if not event_id:
        raise WebhookRejected("event without id")
    payment = None
    obj = (event.get("data") or {}).get("object") or {}
    if event_type in PAID_TYPES and obj.get("payment_status") == "paid":
        currency = str(obj.get("currency", "")).upper()
        if currency not in CURRENCY_EXPONENTS:
            raise WebhookRejected(f"unknown currency {currency!r}")
        total = obj.get("amount_total")
        if not isinstance(total, int) or total <= 0:
            raise WebhookRejected("amount_total must be a positive integer")
        types = obj.get("payment_method_types") or ["card"]
        details = obj.get("customer_details") or {}
        payment = PaymentSucceeded(
            external_reference=str(obj.get("payment_intent") or obj.get("id")),
            invoice_id=str((obj.get("metadata") or {}).get("invoice_id", "")),
            amount=Decimal(total).scaleb(-CURRENCY_EXPONENTS[currency]),
            currency=currency,
            method=METHODS.get(str(types[0]), "other"),
            payer=str(details.get("name") or details.get("email") or "")[:200],
        )
    return ProviderEventData(event_id, event_type, payment)
