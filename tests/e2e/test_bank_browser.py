"""The reconciliation screen on a phone (real Chromium against the live server): drop a
statement file on the upload zone, accept the proposal with the keyboard, confirm a split,
undo; no horizontal scrolling; screenshots kept as artefacts."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from facturo.banking import services as banking
from facturo.banking.models import BankLine, LineStatus
from facturo.banking.samples import SampleEntry, camt053
from facturo.invoicing.models import Invoice, Status
from tests.e2e.test_browser import log_in, no_horizontal_scroll
from tests.factories import make_customer, make_org
from tests.integration.test_banking import IBAN, issued

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DAY = dt.date(2026, 3, 2)


def test_reconcile_on_a_phone(live_server: Any, browser: Any, screenshots: Path) -> None:
    _, ctx = make_org("bank-e2e@example.com")
    banking.create_account(ctx, name="Compte pro", iban=IBAN)
    customer = make_customer(ctx, name="Boulangerie Martin SARL")
    exact = issued(ctx, customer, "120.00")
    review = issued(ctx, customer, "75.00")
    part_a = issued(ctx, customer, "30.00")
    part_b = issued(ctx, customer, "20.00")
    data = camt053(IBAN, [
        SampleEntry(DAY, Decimal("120.00"), f"FACTURE {exact.number}", "BOULANGERIE MARTIN",
                    bank_reference="E1"),
        SampleEntry(DAY, Decimal("75.00"), "VIREMENT", "Boulangerie Martin", bank_reference="E2"),
        SampleEntry(DAY, Decimal("49.00"), "DEUX FACTURES", "M. X", bank_reference="E3"),
    ])  # fmt: skip
    path = screenshots.parent / "releve-e2e.xml"
    path.write_bytes(data)

    context = browser.new_context(locale="fr-FR", viewport=PHONE, is_mobile=True)
    page = context.new_page()
    log_in(page, live_server.url, "bank-e2e@example.com")
    page.goto(live_server.url + "/bank/")
    no_horizontal_scroll(page)
    # Drag and drop: the drop handler puts the file in the form and submits it.
    buffer = page.evaluate_handle(
        """(text) => { const dt = new DataTransfer();
             dt.items.add(new File([text], "releve-e2e.xml", {type: "application/xml"}));
             return dt; }""",
        data.decode(),
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": buffer})
    page.wait_for_url("**/bank/reconcile/**")
    expect(page.locator(".messages")).to_contain_text(re.compile(r"1 (rapprochée|matched)"))
    assert Invoice.objects.get(pk=exact.pk).status == Status.PAID
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "bank-phone-queue.png"), full_page=True)

    # The amount-and-name proposal is in the panel: accept it with the "a" key.
    e2 = BankLine.objects.get(bank_reference="E2")
    page.goto(f"{live_server.url}/bank/reconcile/?line={e2.pk}")
    expect(page.locator("#accept-form")).to_be_visible()
    page.keyboard.press("a")
    page.wait_for_load_state("networkidle")
    expect(page.locator(".messages")).to_contain_text(re.compile("rapprochée|reconciled"))
    assert Invoice.objects.get(pk=review.pk).status == Status.PAID

    # Split 49.00 over two invoices with 1.00 written off, from the candidates list.
    e3 = BankLine.objects.get(bank_reference="E3")
    page.goto(f"{live_server.url}/bank/reconcile/?line={e3.pk}")
    no_horizontal_scroll(page)
    for inv in (part_a, part_b):
        box = page.locator(f"input[name=invoice][value='{inv.pk}']")
        if not box.is_checked():
            box.check()
    page.fill("input[name=write_off]", "1,00")
    page.screenshot(path=str(screenshots / "bank-phone-split.png"), full_page=True)
    page.click("#confirm-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert BankLine.objects.get(pk=e3.pk).status == LineStatus.MATCHED
    assert Invoice.objects.get(pk=part_a.pk).status == Status.PAID
    assert Invoice.objects.get(pk=part_b.pk).status == Status.PAID

    # Undo with the "u" key (after confirming the dialog).
    page.goto(f"{live_server.url}/bank/reconcile/?status=matched&line={e3.pk}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#undo-form button").click()
    page.wait_for_load_state("networkidle")
    assert BankLine.objects.get(pk=e3.pk).status == LineStatus.UNMATCHED
    assert Invoice.objects.get(pk=part_a.pk).status == Status.ISSUED
    page.goto(f"{live_server.url}/bank/report/?start=2026-03-01&end=2026-03-31")
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "bank-phone-report.png"), full_page=True)
    context.close()
