"""Reminders in a real browser on a phone-sized screen: the policy editor's live preview
(htmx) shows the French text, then the clear error for an unknown variable; the upcoming
list and an invoice's timeline fit the screen."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from facturo.dunning import run as dunning_run
from facturo.dunning import services as dunning
from facturo.invoicing import services as invoicing
from tests.e2e.test_browser import PHONE, log_in, no_horizontal_scroll
from tests.factories import lines, make_customer, make_org

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_policy_editor_preview_and_timeline_on_a_phone(
    live_server: Any, browser: Any, screenshots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dunning_run, "RENDER_PENALTY_INVOICES", False)
    _org, ctx = make_org("e2e@example.com")
    policy = dunning.create_default_policy(ctx)
    customer = make_customer(ctx)
    today = ctx.today()
    draft = invoicing.create_draft(ctx, customer.id, lines(1), payment_terms_kind="on_receipt")
    invoice = invoicing.issue_invoice(
        ctx, draft.id, issue_date=today - dt.timedelta(days=10), render=False
    )
    assert dunning_run.run_organization(ctx.organization, today).queued == 1  # +7
    base = live_server.url
    context = browser.new_context(locale="fr-FR", viewport=PHONE, is_mobile=True)
    page = context.new_page()
    log_in(page, base, "e2e@example.com")

    page.goto(f"{base}/reminders/policies/{policy.pk}/")
    expect(page.locator("h1")).to_contain_text("Standard")
    body = page.locator("textarea[name='steps-1-body_fr']")
    body.fill("Bonjour {{ customer_name }}, reste dû : {{ total_due }}")
    page.locator("#step-1 button:has-text('Aperçu (français)')").click()
    preview = page.locator("#preview-1-fr")
    expect(preview).to_contain_text("Bonjour Boulangerie Martin SARL, reste dû : 1")
    body.fill("")
    body.press_sequentially("Bonjour {{ client }}")  # typing: the preview follows (keyup)
    expect(preview).to_contain_text("Variable inconnue {{ client }}")
    page.screenshot(path=str(screenshots / "dunning-editor-phone.png"), full_page=True)
    no_horizontal_scroll(page)

    page.goto(f"{base}/reminders/")
    expect(page.locator("h1")).to_contain_text("Relances")
    no_horizontal_scroll(page)
    page.goto(f"{base}/reminders/invoices/{invoice.pk}/")
    expect(page.locator(".timeline")).to_contain_text("Relance")
    page.locator(".timeline summary").first.click()
    expect(page.locator(".timeline pre").first).to_contain_text(invoice.number or "")
    page.screenshot(path=str(screenshots / "dunning-timeline-phone.png"), full_page=True)
    no_horizontal_scroll(page)
    context.close()
