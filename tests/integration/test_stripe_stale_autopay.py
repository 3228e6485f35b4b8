"""Stripe: old checkout pages are expired once the invoice no longer owes their amount, a
page paid anyway becomes the customer's credit, and auto-pay by card e-mails the payment
link once (the real SDK against the local fake server of test_stripe)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import time_machine

from facturo.foundation.db import current_alias
from facturo.invoicing.models import Invoice, Status
from facturo.notifications.models import OutboxEmail
from facturo.payments import autopay, online
from facturo.payments import services as payments
from facturo.payments.models import AutoPayRequest, CheckoutLink
from facturo.subscriptions.events import SubscriptionInvoiceIssued
from tests.integration import test_stripe as base
from tests.integration.test_sepa_returns_autopay import IssuedWithAutoPay
from tests.integration.test_stripe import NOW, SECRET, FakeStripe, paid_event, post, sign

fake_stripe = base.fake_stripe  # fixtures shared with test_stripe
setup = base.setup

DAY = dt.date(2026, 3, 2)


def urls(invoice: Invoice) -> str:
    return online.checkout_url(invoice, success_url="https://x/ok", cancel_url="https://x/no")


def test_paying_the_invoice_expires_its_open_checkout(
    setup: tuple[Any, Invoice, str],
    fake_stripe: type[FakeStripe],
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Regression: a page made before the invoice was paid stayed payable."""
    ctx, invoice, _ = setup
    urls(invoice)
    with django_capture_on_commit_callbacks(using=current_alias(), execute=True):
        payments.record_payment(ctx, customer_id=invoice.customer_id, amount="120.00",
                                currency="EUR", method="transfer", received_on=DAY)  # fmt: skip
    assert Invoice.objects.get(pk=invoice.pk).status == Status.PAID
    (session,) = fake_stripe.sessions.values()
    assert session["status"] == "expired"
    assert CheckoutLink.objects.get().closed_at is not None
    assert online.expire_stale_checkouts() == 0  # nothing left to do, idempotent


def test_a_partial_payment_replaces_the_page_with_one_for_the_rest(
    setup: tuple[Any, Invoice, str], fake_stripe: type[FakeStripe]
) -> None:
    ctx, invoice, _ = setup
    first = urls(invoice)
    payments.record_payment(ctx, customer_id=invoice.customer_id, amount="20.00",
                            currency="EUR", method="cheque", received_on=DAY)  # fmt: skip
    second = urls(Invoice.objects.get(pk=invoice.pk))
    assert second != first
    old, new = sorted(fake_stripe.sessions.values(), key=lambda s: s["id"])
    assert (old["status"], new["status"]) == ("expired", "open")
    assert new["amount_total"] == 10000
    assert CheckoutLink.objects.filter(closed_at__isnull=True).get().amount == Decimal("100")


@time_machine.travel(NOW, tick=False)
def test_old_page_paid_after_the_invoice_was_settled_becomes_credit(
    setup: tuple[Any, Invoice, str],
) -> None:
    ctx, invoice, url = setup
    payments.record_payment(ctx, customer_id=invoice.customer_id, amount="120.00",
                            currency="EUR", method="transfer", received_on=DAY)  # fmt: skip
    body = paid_event(invoice, "evt_late", "pi_late")
    response = post(url, body, sign(body, SECRET, NOW))
    assert response.status_code == 200
    assert response.content.decode() == "recorded as credit (invoice already settled)"
    customer = invoice.customer
    assert payments.customer_credit(customer, "EUR") == Decimal("120.00")


def test_auto_pay_by_card_e_mails_the_payment_link_once(
    setup: tuple[Any, Invoice, str], fake_stripe: type[FakeStripe]
) -> None:
    _ctx, invoice, _ = setup
    fields = SubscriptionInvoiceIssued.__dataclass_fields__
    kwargs = dict(organization_id=invoice.organization_id, subscription_id=uuid.uuid4(),
                  invoice_id=invoice.pk, period_start=DAY, period_end=DAY)  # fmt: skip
    event: Any = (
        SubscriptionInvoiceIssued(**kwargs, auto_pay="card")  # type: ignore[call-arg]
        if "auto_pay" in fields
        else IssuedWithAutoPay(**kwargs, auto_pay="card")
    )
    autopay.on_subscription_invoice_issued(event)
    assert AutoPayRequest.objects.get(invoice=invoice).state == "queued"
    assert online.send_payment_links() == 1
    assert online.send_payment_links() == 0
    mail = OutboxEmail.objects.get(idempotency_key=f"autopay-link:{invoice.pk}")
    assert mail.to == [invoice.customer.email]
    assert "https://checkout.example/c/pay/cs_test_1" in mail.body
    assert AutoPayRequest.objects.get(invoice=invoice).state == "link_sent"
    assert len(fake_stripe.sessions) == 1
