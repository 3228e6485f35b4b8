"""Subscription pages: list, detail with actions, plans, billing runs (failed periods, retry),
MRR — for a member, another organization (404) and a read-only member (no buttons, 403).

French is the default language: the assertions read the French text users see.
"""

from __future__ import annotations

import datetime as dt
import html
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from facturo.accounts.models import User
from facturo.organizations import services as orgs
from facturo.organizations.context import Ctx
from facturo.organizations.models import Role
from facturo.subscriptions import billing
from facturo.subscriptions import services as subs
from facturo.subscriptions.models import BillingRun, PeriodStatus, Subscription
from tests.factories import make_customer, make_org

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
TODAY = dt.date(2027, 3, 10)
PASSWORD = "pw-1234-x"


@dataclass
class World:
    ctx: Ctx
    good: Subscription
    failing: Subscription
    run: BillingRun


@pytest.fixture
def world(engine: str) -> Iterator[World]:
    with time_machine.travel(dt.datetime(2027, 3, 10, 9, 0, tzinfo=PARIS), tick=False):
        _org, ctx = make_org("owner-a@example.com")
        customer = make_customer(ctx)
        silent = make_customer(ctx, name="Client sans e-mail", email="", siren="",
                               vat_number="")  # fmt: skip
        subs.create_plan(ctx, "Formule Pro", [{"description": "Licence", "unit_price": "49"}])
        line = [{"description": "Maintenance", "unit_price": "30.00", "vat_rate": "20"}]
        good = subs.create_subscription(ctx, customer.id, start_date="2027-03-01", lines=line)
        failing = subs.create_subscription(ctx, silent.id, start_date="2027-03-01", lines=line,
                                           name="Contrat sans adresse")  # fmt: skip
        run = billing.start_run(TODAY, ctx.organization.id)
        billing.run_billing(TODAY, ctx.organization.id, run=run)
        run.refresh_from_db()
        assert (run.issued, run.failed) == (1, 1)
        orgs.add_member(ctx, "viewer-a@example.com", Role.READ_ONLY, PASSWORD)
        make_org("owner-b@example.com", name="Autre Société")
        yield World(ctx, good, failing, run)


def client_for(email: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def pages(w: World) -> list[str]:
    return [
        reverse("web:subscription_list"),
        reverse("web:subscription_detail", args=[w.good.pk]),
        reverse("web:subscription_detail", args=[w.failing.pk]),
        reverse("web:plan_list"),
        reverse("web:billing_run_list"),
        reverse("web:billing_run_detail", args=[w.run.pk]),
        reverse("web:mrr"),
    ]


def actions(w: World) -> list[str]:
    return [
        reverse("web:subscription_pause", args=[w.good.pk]),
        reverse("web:subscription_resume", args=[w.good.pk]),
        reverse("web:subscription_cancel", args=[w.good.pk]),
        reverse("web:billing_run_retry", args=[w.run.pk]),
        reverse("web:billing_run_start"),
    ]


def test_member_sees_every_page(world: World) -> None:
    owner = client_for("owner-a@example.com")
    with time_machine.travel(dt.datetime(2027, 3, 10, 9, 0, tzinfo=PARIS), tick=False):
        for url in pages(world):
            response = owner.get(url)
            assert response.status_code == 200, url
            assert 'name="viewport"' in text(response)
        listing = text(owner.get(reverse("web:subscription_list")))
        assert "Maintenance" in listing
        assert "Contrat sans adresse" in listing
        assert "Abonnements" in listing  # the nav entry, in French
        detail = text(owner.get(reverse("web:subscription_detail", args=[world.good.pk])))
        assert "01/04/2027" in detail or "1 avril 2027" in detail  # next invoice
        assert "Suspendre l'abonnement" in detail
        assert "Résilier l'abonnement" in detail
        run = text(owner.get(reverse("web:billing_run_detail", args=[world.run.pk])))
        assert "Contrat sans adresse" in run  # the failed period, with its reason
        assert "Relancer les périodes en échec" in run
        plans = text(owner.get(reverse("web:plan_list")))
        assert "Formule Pro" in plans
        mrr = text(owner.get(reverse("web:mrr")))
        assert "Revenu mensuel récurrent" in mrr
        assert "60,00\xa0€" in mrr or "60,00 €" in mrr  # 2 × 30 (both started on 1 March)
        assert "<svg" in mrr
        assert "<rect" in mrr
        assert "cdn" not in mrr.lower()


def test_actions_call_the_services(world: World) -> None:
    owner = client_for("owner-a@example.com")
    with time_machine.travel(dt.datetime(2027, 3, 10, 9, 0, tzinfo=PARIS), tick=False):
        url = reverse("web:subscription_pause", args=[world.good.pk])
        assert owner.post(url, {"on": "2027-03-10"}).status_code == 302
        world.good.refresh_from_db()
        assert world.good.status == "paused"
        url = reverse("web:subscription_resume", args=[world.good.pk])
        owner.post(url, {"on": "2027-05-01"})
        world.good.refresh_from_db()
        assert world.good.status == "active"
        assert world.good.next_invoice_date == dt.date(2027, 5, 1)
        # a bad date is a message, not a crash
        bad = owner.post(reverse("web:subscription_pause", args=[world.good.pk]),
                         {"on": "2027-02-30"}, follow=True)  # fmt: skip
        assert bad.status_code == 200
        assert "2027-02-30" in text(bad)
        owner.post(reverse("web:subscription_cancel", args=[world.good.pk]),
                   {"on": "2027-03-20", "when": "period_end"})  # fmt: skip
        world.good.refresh_from_db()
        assert world.good.status == "cancelled"
        # retry: fix the cause, then the failed period is billed by a new run
        customer = world.failing.customer
        customer.email = "facturation@client.example"
        customer.save()
        response = owner.post(reverse("web:billing_run_retry", args=[world.run.pk]))
        assert response.status_code == 302
        retried = BillingRun.objects.exclude(pk=world.run.pk).get()
        assert response["Location"] == reverse("web:billing_run_detail", args=[retried.pk])
        assert (retried.issued, retried.failed) == (1, 0)
        assert world.failing.billed_periods.get().status == PeriodStatus.ISSUED
        page = text(owner.get(reverse("web:billing_run_detail", args=[world.run.pk])))
        assert "ont été facturées depuis" in page


def test_other_organizations_objects_are_404(world: World) -> None:
    other = client_for("owner-b@example.com")
    ids = (str(world.good.pk), str(world.failing.pk), str(world.run.pk))
    for url in pages(world):
        response = other.get(url)
        if any(i in url for i in ids):
            assert response.status_code == 404, url
        else:
            assert response.status_code == 200, url
            assert "Contrat sans adresse" not in text(response)
            assert "Formule Pro" not in text(response)
    for url in actions(world)[:4]:
        assert other.post(url, {"on": "2027-03-15"}).status_code == 404, url
    world.good.refresh_from_db()
    assert world.good.status == "active"
    assert BillingRun.objects.count() == 1


def test_read_only_sees_no_buttons_and_gets_403_on_post(world: World) -> None:
    viewer = client_for("viewer-a@example.com")
    with time_machine.travel(dt.datetime(2027, 3, 10, 9, 0, tzinfo=PARIS), tick=False):
        for url in pages(world):
            response = viewer.get(url)
            assert response.status_code == 200, url
            body = text(response)
            assert 'method="post" action="/subscriptions' not in body, url
            assert "Relancer les périodes" not in body
            assert "Suspendre l'abonnement" not in body
        for url in actions(world):
            assert viewer.post(url, {"on": "2027-03-15"}).status_code == 403, url
    world.good.refresh_from_db()
    assert world.good.status == "active"
    assert BillingRun.objects.count() == 1
    assert Client().get(reverse("web:mrr")).status_code == 302  # signed out: to the login
