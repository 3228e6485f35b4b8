"""Payment pages: record, allocate, unallocate with a reason, refund the credit; mandates
(record, revoke); SEPA batches (create, download, settle, return by hand and by file);
settings (Stripe test connection against the local fake). For a member, a read-only member
(403 on every action) and another organization (404). French is the default language."""

from __future__ import annotations

import html
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from facturo.accounts.models import User
from facturo.formats.sepa import pain008
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from facturo.organizations import services as orgs
from facturo.organizations.context import Ctx
from facturo.organizations.models import Role
from facturo.payments import online, sepa
from facturo.payments import services as payments
from facturo.payments.models import Allocation, DebitBatch, DebitItem, Mandate, Payment
from tests.factories import make_customer, make_org
from tests.integration import test_stripe as stripe_base
from tests.integration.test_sepa_returns_autopay import pain002

fake_stripe = stripe_base.fake_stripe
IBAN = "FR1420041010050500013M02606"
PASSWORD = "pw-1234-x"


@dataclass
class World:
    ctx: Ctx
    customer: Any
    invoice: Invoice
    payment: Payment


def issued(ctx: Ctx, customer: Any, price: str) -> Invoice:
    line = {"description": "Conseil", "quantity": Decimal(1), "unit_price": Decimal(price),
            "vat_rate": Decimal(20), "vat_category": "S"}  # fmt: skip
    draft = invoicing.create_draft(ctx, customer.id, [line])
    return invoicing.issue_invoice(ctx, draft.id, render=False)


@pytest.fixture
def world(engine: str) -> World:
    _org, ctx = make_org("owner-a@example.com")
    sepa.configure_creditor(ctx, identifier="FR72ZZZ123456")
    customer = make_customer(ctx)
    invoice = issued(ctx, customer, "100.00")
    payment = payments.record_payment(ctx, customer_id=customer.id, amount="50.00",
                                      currency="EUR", method="transfer",
                                      received_on=ctx.today(), reference="VIR-1")  # fmt: skip
    orgs.add_member(ctx, "viewer-a@example.com", Role.READ_ONLY, PASSWORD)
    make_org("owner-b@example.com", name="Autre Société")
    return World(ctx, customer, invoice, payment)


def client_for(email: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def test_record_allocate_unallocate_refund(world: World) -> None:
    owner = client_for("owner-a@example.com")
    listing = text(owner.get(reverse("web:payment_list")))
    assert "Paiements" in listing  # nav entry and title, in French
    assert "VIR-1" not in listing or world.invoice.number in listing
    assert world.invoice.number in listing
    response = owner.post(reverse("web:payment_create"), {
        "customer": world.customer.pk, "amount": "100.00", "currency": "EUR",
        "method": "cheque", "received_on": world.ctx.today().isoformat(), "fees": "0",
        "auto_allocate": "on",
    })  # fmt: skip
    assert response.status_code == 302
    second = Payment.objects.get(method="cheque")
    assert Invoice.objects.get(pk=world.invoice.pk).status == Status.PAID  # 50 + 70
    detail_url = reverse("web:payment_detail", args=[second.pk])
    detail = text(owner.get(detail_url))
    assert "30,00" in detail  # unallocated: the customer's credit
    allocation = Allocation.objects.get(payment=second)
    # Unallocating needs a reason.
    owner.post(detail_url, {"action": "unallocate", "allocation": allocation.pk, "reason": ""})
    assert Allocation.objects.get(pk=allocation.pk).reversed_at is None
    owner.post(detail_url, {"action": "unallocate", "allocation": allocation.pk,
                            "reason": "mauvaise facture"})  # fmt: skip
    allocation.refresh_from_db()
    assert allocation.reversal_reason == "mauvaise facture"
    assert Invoice.objects.get(pk=world.invoice.pk).status == Status.PARTIALLY_PAID
    # Allocate explicitly above what is owed: precise error, nothing written.
    page = text(owner.post(detail_url, {"action": "allocate", "alloc-invoice": world.invoice.pk,
                                        "alloc-amount": "99.00"}))  # fmt: skip
    assert "ne doit plus que" in page
    owner.post(detail_url, {"action": "allocate", "alloc-invoice": world.invoice.pk,
                            "alloc-amount": "70.00"})  # fmt: skip
    assert Invoice.objects.get(pk=world.invoice.pk).status == Status.PAID
    owner.post(detail_url, {"action": "refund", "refund-amount": "30.00",
                            "refund-refunded_on": world.ctx.today().isoformat(),
                            "refund-method": "transfer", "refund-reference": "RBT"})  # fmt: skip
    assert payments.customer_credit(world.customer, "EUR") == Decimal("0.00")


def test_mandates_and_batches(world: World) -> None:
    owner = client_for("owner-a@example.com")
    bad = owner.post(reverse("web:mandate_list"), {
        "customer": world.customer.pk, "debtor_name": "Martin", "iban": "FR00 1234",
        "signed_on": world.ctx.today().isoformat(), "kind": "recurrent"})  # fmt: skip
    assert bad.status_code == 200
    assert not Mandate.objects.exists()
    owner.post(reverse("web:mandate_list"), {
        "customer": world.customer.pk, "debtor_name": "Martin", "iban": IBAN,
        "signed_on": world.ctx.today().isoformat(), "kind": "recurrent"})  # fmt: skip
    mandate = Mandate.objects.get()
    assert mandate.reference in text(owner.get(reverse("web:mandate_list")))
    created = owner.post(reverse("web:batch_list"), {
        "action": "batch", "batch-collection_date": world.invoice.due_date.isoformat(),
        "batch-version": "pain.008.001.08"})  # fmt: skip
    batch = DebitBatch.objects.get()
    assert created.status_code == 302
    assert batch.version == "pain.008.001.08"
    file = owner.get(reverse("web:batch_file", args=[batch.pk]))
    assert pain008.validate(file.content) == []
    item = DebitItem.objects.get()
    assert item.end_to_end_id in text(owner.get(reverse("web:batch_detail", args=[batch.pk])))
    owner.post(reverse("web:batch_detail", args=[batch.pk]), {"action": "settle"})
    assert Payment.objects.get(pk=item.payment_id).status == "received"
    upload = SimpleUploadedFile(
        "status.xml", pain002(batch.message_id, [(item.end_to_end_id, "AM04", "70.00")])
    )
    report = text(owner.post(reverse("web:batch_list"), {"action": "returns",
                                                         "returns-file": upload}))  # fmt: skip
    assert "Provision insuffisante" in report
    assert Invoice.objects.get(pk=world.invoice.pk).status == Status.PARTIALLY_PAID
    owner.post(reverse("web:mandate_detail", args=[mandate.pk]), {
        "revoked_on": world.ctx.today().isoformat(), "reason": "fin de contrat"})  # fmt: skip
    assert Mandate.objects.get().revoked_on == world.ctx.today()


def test_stripe_settings_and_test_connection(world: World, fake_stripe: Any) -> None:
    owner = client_for("owner-a@example.com")
    url = reverse("web:payment_settings")
    owner.post(url, {"action": "stripe", "stripe-secret_key": "sk_test_fake",
                     "stripe-webhook_secret": "whsec_1", "stripe-enabled": "on"})  # fmt: skip
    page = text(owner.get(url))
    assert "/webhooks/stripe/" in page
    ok = text(owner.post(url, {"action": "test"}, follow=True))
    assert "La connexion à Stripe fonctionne" in ok
    online.configure(world.ctx, "stripe", secret_key="sk_wrong", webhook_secret="whsec_1")
    refused = text(owner.post(url, {"action": "test"}, follow=True))
    assert "Invalid API Key" in refused
    owner.post(url, {"action": "settings", "pay-notify_on_payment": "none",
                     "pay-notify_address": "", "pay-prenotification_days": "3",
                     "pay-pain_version": "pain.008.001.08"})  # fmt: skip
    from facturo.payments.notify import settings_of

    assert settings_of(world.ctx.organization).prenotification_days == 3


def test_read_only_and_other_organization(world: World) -> None:
    viewer = client_for("viewer-a@example.com")
    assert viewer.get(reverse("web:payment_list")).status_code == 200
    detail = reverse("web:payment_detail", args=[world.payment.pk])
    assert viewer.get(detail).status_code == 200
    assert 'value="unallocate"' not in text(viewer.get(detail))
    assert viewer.post(detail, {"action": "allocate_auto"}).status_code == 403
    assert viewer.post(reverse("web:payment_create"), {}).status_code == 403
    assert viewer.get(reverse("web:payment_settings")).status_code == 403
    other = client_for("owner-b@example.com")
    assert other.get(detail).status_code == 404
    assert other.post(detail, {"action": "allocate_auto"}).status_code == 404
    assert other.get(reverse("web:payment_list")).status_code == 200
    assert world.invoice.number not in text(other.get(reverse("web:payment_list")))
