"""Subscriptions in a real Chromium on a phone: create a plan, a subscription with a metered
line (tiers), change it with the proration preview, cancel it — screenshots of each page,
no horizontal scrolling; then the creation form in English on a desktop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from facturo.catalog import services as catalog
from facturo.invoicing.models import Invoice
from facturo.organizations.models import DocumentKind
from facturo.subscriptions import billing
from facturo.subscriptions.models import Plan, Subscription, SubscriptionStatus
from tests.e2e.test_browser import PHONE, log_in, no_horizontal_scroll
from tests.factories import make_customer, make_org

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_subscription_journey_on_a_phone(live_server: Any, browser: Any, screenshots: Path) -> None:
    _org, ctx = make_org("subs-e2e@example.com")
    customer = make_customer(ctx)
    catalog.create_product(ctx, name="Hébergement", unit_price="19.99")
    base = live_server.url
    context = browser.new_context(locale="fr-FR", viewport=PHONE, is_mobile=True)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, base, "subs-e2e@example.com")

    # a plan
    page.goto(f"{base}/subscriptions/plans/new/")
    page.fill("#id_name", "Formule Pro")
    page.select_option("#id_preset", "quarterly")
    page.select_option("select[name=lines-0-product]", label="Hébergement")
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "subscriptions-phone-plan-form.png"), full_page=True)
    page.click("button[name=save]")
    expect(page.get_by_text("Formule Pro")).to_be_visible()
    assert Plan.objects.get().unit == "month"

    # a subscription with its own lines: a fixed one and a tiered metered one
    page.goto(f"{base}/subscriptions/new/")
    page.select_option("#id_customer", str(customer.pk))
    page.fill("#id_name", "Maintenance et API")
    page.fill("input[name=lines-0-description]", "Maintenance")
    page.fill("input[name=lines-0-unit_price]", "30")
    page.click("#add-line")
    page.fill("input[name=lines-1-description]", "Appels API")
    page.select_option("select[name=lines-1-pricing]", "tiered")
    page.fill("input[name=lines-1-metric]", "api")
    page.fill("input[name=lines-1-tiers]", "1000 0.01; * 0.005")
    page.check("input[name=end][value=count]")
    page.fill("#id_max_periods", "12")
    page.select_option("#id_auto_pay", "sepa")
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "subscriptions-phone-new.png"), full_page=True)
    page.click("button[name=save]")
    expect(page.get_by_role("heading", name="Maintenance et API")).to_be_visible()
    sub = Subscription.objects.get()
    assert (sub.max_periods, sub.auto_pay, sub.lines.count()) == (12, "sepa", 2)
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "subscriptions-phone-detail.png"), full_page=True)

    # billed today; then a change, previewed before it is applied
    billing.run_billing(timezone.localdate())
    page.goto(f"{base}/subscriptions/{sub.pk}/change/")
    page.fill("input[name=lines-0-unit_price]", "60")
    page.click("button[name=preview]")
    expect(page.locator("#change-preview")).to_be_visible()
    no_horizontal_scroll(page)
    page.screenshot(
        path=str(screenshots / "subscriptions-phone-change-preview.png"), full_page=True
    )
    assert sub.lines.count() == 2  # a preview writes nothing
    page.click("button[name=apply]")
    expect(page.get_by_text("Changement appliqué.")).to_be_visible()

    # cancel immediately
    page.locator("details summary", has_text="Annuler").click()
    page.check("input[name=when][value=now]")
    page.get_by_role("button", name="Résilier l'abonnement").click()
    expect(page.get_by_text("Abonnement résilié.")).to_be_visible()
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELLED
    assert Invoice.objects.filter(kind=DocumentKind.INVOICE).exists()
    page.screenshot(path=str(screenshots / "subscriptions-phone-cancelled.png"), full_page=True)
    context.close()


def test_subscription_form_in_english(live_server: Any, browser: Any, screenshots: Path) -> None:
    make_org("subs-en@example.com")
    base = live_server.url
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, base, "subs-en@example.com")
    page.goto(f"{base}/subscriptions/new/")
    if page.locator("text=Automatic payment").count() == 0:  # French by default: switch
        page.context.add_cookies([{"name": "django_language", "value": "en", "url": base}])
        page.goto(f"{base}/subscriptions/new/")
    expect(page.get_by_text("Automatic payment")).to_be_visible()
    page.click("button[name=save]")  # nothing filled in: errors beside the fields
    expect(page.locator(".field-error").first).to_be_visible()
    page.screenshot(path=str(screenshots / "subscriptions-desktop-en-errors.png"), full_page=True)
    context.close()
