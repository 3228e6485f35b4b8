"""Creating and editing plans and subscriptions in the web UI: forms, line rows, errors
beside their field, the proration preview, one-off invoices; French (default) and English."""

from __future__ import annotations

import datetime as dt
import html
import zoneinfo
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from facturo.accounts.models import User
from facturo.catalog import services as catalog
from facturo.invoicing.models import Invoice
from facturo.organizations import services as orgs
from facturo.organizations.models import DocumentKind, Role
from facturo.subscriptions import billing
from facturo.subscriptions.models import Plan, Subscription
from tests.factories import make_customer, make_org

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
pytestmark = pytest.mark.django_db


def now() -> Any:
    return time_machine.travel(dt.datetime(2027, 1, 16, 9, 0, tzinfo=PARIS), tick=False)


def client_for(email: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def row(i: int, **values: str) -> dict[str, str]:
    base = {"quantity": "1", "vat_category": "S", "vat_rate": "20", "pricing": "fixed"}
    return {f"lines-{i}-{k}": v for k, v in {**base, **values}.items()}


SETTINGS = {
    "issue_mode": "issue",
    "proration_mode": "invoice_now",
    "auto_pay": "none",
    "send_email": "on",
    "end": "never",
}


def test_plan_create_and_edit() -> None:
    with now():
        _org, ctx = make_org()
        product = catalog.create_product(ctx, name="Hébergement", unit_price="19.99")
        owner = client_for("owner@example.com")
        assert reverse("web:plan_create") in text(owner.get(reverse("web:plan_list")))
        form = owner.get(reverse("web:plan_create"))
        assert form.status_code == 200
        assert "Périodicité" in text(form)
        data = {"name": "Pro", "preset": "quarterly", "timing": "advance", "anchor_day": "1",
                **row(0, product=str(product.pk)), **row(1, description="Support",
                                                        unit_price="10", quantity="2")}  # fmt: skip
        response = owner.post(reverse("web:plan_create"), data)
        assert response.status_code == 302, text(response)
        plan = Plan.objects.get()
        assert (plan.unit, plan.interval, plan.anchor_day) == ("month", 3, 1)
        assert [x.description for x in plan.lines.all()] == ["Hébergement", "Support"]
        # a bad line: the error is shown beside it, nothing is written
        bad = owner.post(reverse("web:plan_edit", args=[plan.pk]),
                         {**data, **row(1, description="Support", unit_price="-3")})  # fmt: skip
        assert bad.status_code == 200
        assert "Ligne 2" in text(bad)
        assert plan.lines.get(position=2).unit_price == 10
        ok = owner.post(reverse("web:plan_edit", args=[plan.pk]), {**data, "preset": "yearly"})
        assert ok.status_code == 302
        plan.refresh_from_db()
        assert (plan.unit, plan.interval) == ("year", 1)


def test_subscription_create_change_with_preview_and_settings() -> None:
    with now():
        org, ctx = make_org()
        customer = make_customer(ctx)
        owner = client_for("owner@example.com")
        page = owner.get(reverse("web:subscription_create"))
        assert page.status_code == 200
        assert "Paiement automatique" in text(page)
        data = {"customer": str(customer.pk), "plan": "", "name": "Maintenance",
                "start_date": "2027-01-01", "preset": "monthly", "timing": "advance",
                "anchor_day": "0", **SETTINGS, "auto_pay": "sepa", "end": "count",
                "max_periods": "12", **row(0, description="Maintenance", unit_price="30"),
                **row(1, description="Appels API", pricing="tiered", metric="api",
                      tiers="1000 0.01; * 0.005 2", unit_price="")}  # fmt: skip
        missing = owner.post(reverse("web:subscription_create"), {**data, "max_periods": ""})
        assert missing.status_code == 200  # « after N invoices » needs N
        bad_tiers = owner.post(reverse("web:subscription_create"),
                               {**data, **row(1, description="Appels API", pricing="tiered",
                                              metric="api", tiers="1000")})  # fmt: skip
        assert "Ligne 2" in text(bad_tiers)
        assert not Subscription.objects.exists()
        response = owner.post(reverse("web:subscription_create"), data)
        assert response.status_code == 302, text(response)
        sub = Subscription.objects.get()
        assert (sub.auto_pay, sub.max_periods, sub.name) == ("sepa", 12, "Maintenance")
        assert sub.lines.get(position=2).tiers == [["1000", "0.01", "0"], [None, "0.005", "2"]]
        detail = text(owner.get(reverse("web:subscription_detail", args=[sub.pk])))
        assert "Prélèvement SEPA" in detail
        assert "Modifier les lignes" in detail

        billing.run_billing(dt.date(2027, 1, 16))  # January billed in advance
        url = reverse("web:subscription_change", args=[sub.pk])
        form = text(owner.get(url))
        assert 'value="30"' in form  # the current lines, to edit
        change = {"effective": "2027-01-16", "preview": "1",
                  **row(0, description="Maintenance+", unit_price="60"),
                  **row(1, description="Appels API", pricing="tiered", metric="api",
                        tiers="1000 0.01; * 0.005 2")}  # fmt: skip
        preview = text(owner.post(url, change))
        assert "Aperçu du prorata" in preview
        assert "15,49" in preview  # 30.97 − 15.48
        assert sub.lines.count() == 2  # a preview writes nothing
        applied = owner.post(url, {**change, "apply": "1"})
        assert applied.status_code == 302
        assert Invoice.objects.filter(organization=org, kind=DocumentKind.INVOICE).count() == 2

        settings_url = reverse("web:subscription_edit", args=[sub.pk])
        assert owner.get(settings_url).status_code == 200
        saved = owner.post(settings_url, {**SETTINGS, "name": "Maintenance annuelle",
                                          "auto_pay": "card", "end": "date",
                                          "ends_on": "2027-06-01"})  # fmt: skip
        assert saved.status_code == 302
        sub.refresh_from_db()
        assert (sub.name, sub.auto_pay, sub.ends_on, sub.max_periods) == (
            "Maintenance annuelle", "card", dt.date(2027, 6, 1), None)  # fmt: skip


def test_one_off_invoice_from_a_template_in_english() -> None:
    with now():
        _org, ctx = make_org()
        customer = make_customer(ctx)
        owner = client_for("owner@example.com")
        owner.cookies["django_language"] = "en"
        page = text(owner.get(reverse("web:subscription_create"), HTTP_ACCEPT_LANGUAGE="en"))
        assert "Automatic payment" in page
        data = {"customer": str(customer.pk), "start_date": "2027-01-10", "preset": "monthly",
                "timing": "advance", **SETTINGS, "end": "once",
                **row(0, description="Audit", unit_price="900")}  # fmt: skip
        assert owner.post(reverse("web:subscription_create"), data).status_code == 302
        sub = Subscription.objects.get()
        assert sub.max_periods == 1
        billing.run_billing(dt.date(2027, 1, 16))
        billing.run_billing(dt.date(2027, 1, 16))
        sub.refresh_from_db()
        assert (sub.periods_billed, sub.status) == (1, "ended")


def test_read_only_member_cannot_create_or_change() -> None:
    with now():
        _org, ctx = make_org()
        customer = make_customer(ctx)
        orgs.add_member(ctx, "viewer@example.com", Role.READ_ONLY, "pw-1234-x")
        viewer = client_for("viewer@example.com")
        listing = text(viewer.get(reverse("web:subscription_list")))
        assert reverse("web:subscription_create") not in listing
        data = {"customer": str(customer.pk), "start_date": "2027-02-01", "preset": "monthly",
                "timing": "advance", **SETTINGS,
                **row(0, description="X", unit_price="1")}  # fmt: skip
        assert viewer.post(reverse("web:subscription_create"), data).status_code == 403
        assert viewer.post(reverse("web:plan_create"), data).status_code == 403
        assert not Subscription.objects.exists()
