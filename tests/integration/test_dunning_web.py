"""Dunning pages for a member (every page, the policy editor with its errors, the htmx preview,
stepping in on an invoice), another organization (404) and a read-only member (403)."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from facturo.accounts.models import User
from facturo.dunning import run as dunning_run
from facturo.dunning import services as dunning
from facturo.dunning.models import DunningPolicy, InvoiceDunning, Pause, ReminderMessage
from facturo.invoicing import services as invoicing
from facturo.organizations import services as orgs
from facturo.organizations.models import Role
from tests.factories import lines, make_customer, make_org

PASSWORD = "pw-1234-x"


@pytest.fixture(autouse=True)
def _no_render(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dunning_run, "RENDER_PENALTY_INVOICES", False)


def client_for(email: str, language: str = "fr") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(User.objects.get(email=email))
    client.cookies["django_language"] = language
    return client


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def world() -> dict[str, Any]:
    _org, ctx = make_org("owner-a@example.com")
    dunning.create_default_policy(ctx)
    customer = make_customer(ctx)
    today = ctx.today()
    draft = invoicing.create_draft(ctx, customer.id, lines(1), payment_terms_kind="on_receipt")
    invoice = invoicing.issue_invoice(ctx, draft.id, issue_date=today - dt.timedelta(days=40),
                                      render=False)  # fmt: skip
    summary = dunning_run.run_organization(ctx.organization, today)
    assert summary.queued == 1  # +30 formal notice (letter)
    orgs.add_member(ctx, "viewer-a@example.com", Role.READ_ONLY, PASSWORD)
    make_org("owner-b@example.com", name="Autre Société")
    message = ReminderMessage.objects.get()
    return {"ctx": ctx, "invoice": invoice, "customer": customer, "message": message}


def pages(w: dict[str, Any]) -> list[str]:
    policy = DunningPolicy.objects.get(organization=w["ctx"].organization)
    return [
        reverse("web:dunning_home"),
        reverse("web:dunning_history"),
        reverse("web:dunning_message", args=[w["message"].pk]),
        reverse("web:dunning_message_pdf", args=[w["message"].pk]),
        reverse("web:dunning_tasks"),
        reverse("web:dunning_policies"),
        reverse("web:dunning_policy_new"),
        reverse("web:dunning_policy_edit", args=[policy.pk]),
        reverse("web:dunning_invoice", args=[w["invoice"].pk]),
    ]


def test_member_sees_every_page_in_both_languages(engine: str) -> None:
    w = world()
    for language in ("fr", "en"):
        owner = client_for("owner-a@example.com", language)
        for url in pages(w):
            response = owner.get(url)
            assert response.status_code == 200, url
        history = text(owner.get(reverse("web:dunning_history")))
        assert w["invoice"].number in history
        letter = owner.get(reverse("web:dunning_message_pdf", args=[w["message"].pk]))
        assert letter.content.startswith(b"%PDF")
        timeline = text(owner.get(reverse("web:dunning_invoice", args=[w["invoice"].pk])))
        assert w["message"].subject in timeline  # the exact text, unfolded on the page
        editor = text(owner.get(reverse("web:dunning_policy_new")))
        assert "{{ invoice_list }}" in editor  # the default steps, ready to edit
        assert 'hx-post="' + reverse("web:dunning_preview") in editor
    fr = text(client_for("owner-a@example.com", "fr").get(reverse("web:dunning_home")))
    assert "Relances" in fr  # the menu entry, in French
    en = text(client_for("owner-a@example.com", "en").get(reverse("web:dunning_home")))
    assert "Reminders" in en


def test_editor_errors_and_live_preview(engine: str) -> None:
    world()
    owner = client_for("owner-a@example.com", "en")
    form = {
        "name": "Ferme", "office_start": "09:00", "office_end": "18:00",
        "office_days": ["0", "1", "2", "3", "4"], "step_count": "2",
        "steps-0-name": "A", "steps-0-offset_days": "15", "steps-0-channel": "email",
        "steps-0-subject_fr": "S", "steps-0-body_fr": "{{ invoice_list }}",
        "steps-0-subject_en": "S", "steps-0-body_en": "{{ invoice_list }}",
        "steps-1-name": "B", "steps-1-offset_days": "7", "steps-1-channel": "email",
        "steps-1-subject_fr": "S", "steps-1-body_fr": "x",
        "steps-1-subject_en": "S", "steps-1-body_en": "x",
    }  # fmt: skip
    bad = owner.post(reverse("web:dunning_policy_new"), form)
    assert bad.status_code == 422
    assert "Step 2 (7 days) must come after step 1 (15 days)" in text(bad)
    assert not DunningPolicy.objects.filter(name="Ferme").exists()
    form["steps-1-offset_days"] = "30"
    form["steps-1-body_en"] = "Hello {{ client }}"
    unknown = owner.post(reverse("web:dunning_policy_new"), form)
    assert unknown.status_code == 422
    assert "Unknown variable {{ client }}" in text(unknown)
    form["steps-1-body_en"] = "Hello {{ customer_name }}"
    assert owner.post(reverse("web:dunning_policy_new"), form).status_code == 302
    assert DunningPolicy.objects.get(name="Ferme").steps.count() == 2

    preview = owner.post(reverse("web:dunning_preview"), {
        "index": "0", "language": "fr", "steps-0-subject_fr": "Facture {{ invoice_number }}",
        "steps-0-body_fr": "{{ invoice_list }}"}, HTTP_HX_REQUEST="true")  # fmt: skip
    assert preview.status_code == 200
    assert "Facture F-2026-0042" in text(preview)
    assert "jours de retard" in text(preview)
    nope = {"index": "0", "language": "en", "steps-0-body_en": "{{ nope }}"}
    oops = owner.post(reverse("web:dunning_preview"), nope, HTTP_HX_REQUEST="true")
    assert "Unknown variable {{ nope }}" in text(oops)


def test_stepping_in_on_an_invoice(engine: str) -> None:
    w = world()
    owner = client_for("owner-a@example.com", "en")
    url = reverse("web:dunning_invoice", args=[w["invoice"].pk])
    assert owner.post(url, {"action": "dispute", "reason": "Quantité"}).status_code == 302
    assert InvoiceDunning.objects.get(invoice=w["invoice"]).disputed
    assert owner.post(url, {"action": "resolve"}).status_code == 302
    assert not InvoiceDunning.objects.get(invoice=w["invoice"]).disputed
    until = (w["ctx"].today() + dt.timedelta(days=5)).isoformat()
    owner.post(url, {"action": "pause", "until": until, "reason": "Promesse"})
    pause = Pause.objects.get(invoice=w["invoice"])
    assert pause.reason == "Promesse"
    home = text(owner.get(reverse("web:dunning_home")))
    assert "Promesse" in home
    owner.post(reverse("web:dunning_pause_lift", args=[pause.pk]))
    pause.refresh_from_db()
    assert pause.lifted_at is not None
    run = owner.post(reverse("web:dunning_home"))
    assert run.status_code == 302


def test_other_organization_and_read_only(engine: str) -> None:
    w = world()
    other = client_for("owner-b@example.com")
    for url in pages(w)[2:4] + pages(w)[7:]:
        assert other.get(url).status_code == 404, url
    viewer = client_for("viewer-a@example.com")
    assert viewer.get(reverse("web:dunning_home")).status_code == 200
    assert "Run dunning now" not in text(viewer.get(reverse("web:dunning_home")))
    url = reverse("web:dunning_invoice", args=[w["invoice"].pk])
    assert viewer.post(url, {"action": "dispute", "reason": "x"}).status_code == 403
    assert viewer.post(reverse("web:dunning_home")).status_code == 403
    assert viewer.get(reverse("web:dunning_policy_new")).status_code == 200
    assert viewer.post(reverse("web:dunning_policy_new"), {"name": "x"}).status_code == 403


@pytest.mark.django_db
def test_invoice_page_links_to_its_reminders() -> None:
    _org, ctx = make_org("owner-a@example.com")
    customer = make_customer(ctx)
    draft = invoicing.create_draft(ctx, customer.id, lines(1))
    invoice = invoicing.issue_invoice(ctx, draft.id)
    page = text(
        client_for("owner-a@example.com").get(reverse("web:invoice_detail", args=[invoice.pk]))
    )
    assert reverse("web:dunning_invoice", args=[invoice.pk]) in page
    assert "Relances" in page
