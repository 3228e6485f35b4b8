"""A customer opens their portal link on a phone, sees the invoice and what they owe, and
signs a SEPA mandate (real Chromium against the live server)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from facturo.invoicing import services as invoicing
from facturo.payments import sepa
from facturo.payments.models import Mandate
from facturo.portal import links
from tests.factories import make_customer, make_org

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_customer_signs_a_mandate_from_the_portal_on_a_phone(
    live_server: Any, browser: Any, screenshots: Path
) -> None:
    _, ctx = make_org("portal-e2e@example.com")
    sepa.configure_creditor(ctx, identifier="FR72ZZZ123456")
    customer = make_customer(ctx)
    line = {
        "description": "Maintenance du site",
        "quantity": Decimal(1),
        "unit_price": Decimal("250.00"),
        "vat_rate": Decimal(20),
        "vat_category": "S",
    }
    draft = invoicing.create_draft(ctx, customer.id, [line])
    invoice = invoicing.issue_invoice(ctx, draft.id, render=False)
    context = browser.new_context(locale="fr-FR", viewport=PHONE, is_mobile=True)
    page = context.new_page()
    page.goto(live_server.url + links.invoice_link(invoice))
    expect(page.locator("h1")).to_contain_text(str(invoice.number))
    expect(page.locator("[data-portal=due]")).to_contain_text("300,00")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{width}px wide on a {PHONE['width']}px phone"
    page.fill("#id_debtor_name", "Boulangerie Martin")
    page.fill("#id_iban", "FR14 2004 1010 0505 0001 3M02 607")
    page.check("#id_consent")
    page.click("button:has-text('Signer le mandat')")
    expect(page.locator("#id_iban-error")).to_contain_text("n’est pas un IBAN valide")
    page.screenshot(path=str(screenshots / "portal-phone-bad-iban.png"), full_page=True)
    page.fill("#id_iban", "FR14 2004 1010 0505 0001 3M02 606")
    page.check("#id_consent")
    page.click("button:has-text('Signer le mandat')")
    expect(page.locator("[data-portal=mandate-signed]")).to_be_visible()
    mandate = Mandate.objects.get()
    expect(page.locator("[data-portal=mandate]")).to_contain_text(mandate.reference)
    assert mandate.source == "portal"
    page.screenshot(path=str(screenshots / "portal-phone-mandate.png"), full_page=True)
    context.close()
