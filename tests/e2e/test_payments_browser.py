"""Payments on a phone, in real Chromium: record a payment, take an allocation back with a
reason, record a paper mandate, create a SEPA batch, settle it, import a pain.002 rejection;
screenshots kept in test-artifacts/screenshots/."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from facturo.payments import sepa
from facturo.payments.models import DebitBatch, DebitItem
from tests.e2e.test_browser import log_in, no_horizontal_scroll
from tests.factories import make_customer, make_org
from tests.integration.test_sepa_returns_autopay import pain002

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
IBAN = "FR14 2004 1010 0505 0001 3M02 606"


def test_payments_on_a_phone(
    live_server: Any, browser: Any, screenshots: Path, tmp_path: Path
) -> None:
    _, ctx = make_org("pay-e2e@example.com")
    sepa.configure_creditor(ctx, identifier="FR72ZZZ123456")
    customer = make_customer(ctx)
    line = {"description": "Maintenance", "quantity": Decimal(1), "unit_price": Decimal(100),
            "vat_rate": Decimal(20), "vat_category": "S"}  # fmt: skip
    invoice = invoicing.issue_invoice(
        ctx, invoicing.create_draft(ctx, customer.id, [line]).id, render=False
    )
    base = live_server.url
    context = browser.new_context(locale="fr-FR", viewport=PHONE, is_mobile=True)
    page = context.new_page()
    log_in(page, base, "pay-e2e@example.com")

    # Record a payment of 50 €: it goes to the invoice (partly paid).
    page.goto(f"{base}/payments/new/")
    page.select_option("#id_customer", str(customer.pk))
    page.fill("#id_amount", "50")
    page.select_option("#id_method", "transfer")
    page.fill("#id_reference", "VIR 1234")
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "payments-phone-record.png"), full_page=True)
    page.click("main button[type=submit]")
    expect(page.locator("[data-testid=allocation]")).to_contain_text(str(invoice.number))
    assert Invoice.objects.get(pk=invoice.pk).status == Status.PARTIALLY_PAID
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "payments-phone-detail.png"), full_page=True)

    # Take it back, with a reason: the 50 € become the customer's credit.
    page.locator("[data-testid=allocation] input[name=reason]").fill("mauvaise facture")
    page.locator("[data-testid=allocation] button").click()
    expect(page.locator("[data-testid=allocation]")).to_contain_text("mauvaise facture")
    expect(page.locator("[data-testid=unallocated]")).to_contain_text("50,00")
    assert Invoice.objects.get(pk=invoice.pk).status == Status.ISSUED

    # Paper mandate, then a SEPA batch for what is owed.
    page.goto(f"{base}/payments/mandates/")
    page.locator("summary").first.click()
    page.select_option("#id_customer", str(customer.pk))
    page.fill("#id_debtor_name", "Boulangerie Martin")
    page.fill("#id_iban", IBAN)
    page.locator("form button[type=submit]").last.click()
    expect(page.locator("h1")).to_contain_text("FCT-")
    page.goto(f"{base}/payments/sepa/")
    page.fill("#id_batch-collection_date", str(invoice.due_date))
    page.click("[data-testid=create-batch]")
    expect(page.locator("[data-testid=debit]")).to_have_count(1)
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "payments-phone-batch.png"), full_page=True)
    page.click("[data-testid=settle]")
    expect(page.locator("[data-testid=batch-state]")).not_to_contain_text("Sent")
    assert Invoice.objects.get(pk=invoice.pk).status == Status.PAID

    # The bank rejects it (pain.002, AM04): the invoice is open again, with the reason.
    batch = DebitBatch.objects.get()
    item = DebitItem.objects.get()
    status_file = tmp_path / "status.xml"
    status_file.write_bytes(pain002(batch.message_id, [(item.end_to_end_id, "AM04", "120.00")]))
    page.goto(f"{base}/payments/sepa/")
    page.set_input_files("#id_returns-file", str(status_file))
    page.click("[data-testid=import-returns]")
    expect(page.locator("[data-testid=returns-report]")).to_contain_text("AM04")
    expect(page.locator("[data-testid=returns-report]")).to_contain_text("Provision insuffisante")
    expect(page.locator(".field-error")).to_have_count(0)  # the batch form is left alone
    assert Invoice.objects.get(pk=invoice.pk).status == Status.ISSUED
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "payments-phone-returns.png"), full_page=True)
    context.close()
