"""Portal links can be revoked, and the portal acts with a role that has no permission:
its only capability is the signed link (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from facturo.audit.models import AuditEvent
from facturo.core.errors import PermissionDenied
from facturo.organizations.context import Ctx
from facturo.payments import sepa
from facturo.payments import services as payments
from facturo.payments.models import Mandate
from facturo.portal import links
from tests.integration.test_portal import IBAN, setup


def test_revoking_kills_every_link_made_before(engine: str) -> None:
    ctx, _customer, invoice = setup()
    old = links.invoice_link(invoice)
    assert Client().get(old).status_code == 200
    links.revoke_links(ctx, invoice.id)
    assert Client().get(old).status_code == 404
    time.sleep(0.002)
    fresh = links.invoice_link(invoice)
    assert Client().get(fresh).status_code == 200
    assert AuditEvent.objects.filter(action="portal.links_revoked").count() == 1


def test_a_read_only_member_cannot_revoke(engine: str) -> None:
    ctx, _customer, invoice = setup()
    with pytest.raises(PermissionDenied):
        links.revoke_links(Ctx(ctx.organization, "read_only", ctx.actor), invoice.id)


def test_portal_signs_a_mandate_with_a_role_that_can_do_nothing_else(engine: str) -> None:
    """Regression: the portal built a Ctx with the owner's role."""
    _ctx, customer, invoice = setup()
    response = Client().post(links.invoice_link(invoice), {
        "debtor_name": "Boulangerie Martin", "iban": IBAN, "bic": "", "consent": "on"})  # fmt: skip
    assert response.status_code == 302
    mandate = Mandate.objects.get(customer=customer)
    assert mandate.source == "portal"
    event = AuditEvent.objects.get(action="sepa.mandate_created")
    assert event.actor_id == f"portal:{invoice.pk}"
    portal = Ctx(invoice.organization, sepa.PORTAL_ROLE, None)  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied):
        payments.record_payment(portal, customer_id=customer.id, amount="1.00", currency="EUR",
                                method="cash", received_on=mandate.signed_on)  # fmt: skip
    with pytest.raises(PermissionDenied):
        sepa.revoke_mandate(portal, mandate.id, revoked_on=mandate.signed_on)


def test_the_invoice_page_disables_the_links_sent(engine: str) -> None:
    from facturo.organizations import services as orgs
    from facturo.organizations.models import Role
    from tests.factories import make_org

    ctx, _customer, invoice = setup()
    sent = links.invoice_link(invoice)
    page = f"/invoices/{invoice.id}/"
    revoke = f"/invoices/{invoice.id}/revoke-links/"
    # a read-only member sees no button and cannot post; another organization sees nothing
    orgs.add_member(ctx, "viewer@example.com", Role.READ_ONLY, "pw-1234-x")
    viewer = Client()
    assert viewer.login(username="viewer@example.com", password="pw-1234-x")
    assert revoke.encode() not in viewer.get(page).content
    assert viewer.post(revoke).status_code == 403
    make_org("stranger@example.com", name="Autre SAS")
    stranger = Client()
    assert stranger.login(username="stranger@example.com", password="pw-1234-x")
    assert stranger.post(revoke).status_code == 404
    assert Client().get(sent).status_code == 200  # still working
    owner = Client()
    assert owner.login(username="owner@example.com", password="pw-1234-x")
    assert revoke.encode() in owner.get(page).content
    done = owner.post(revoke, follow=True)
    assert done.status_code == 200
    assert invoice.number.encode() in done.content
    assert Client().get(sent).status_code == 404
    assert AuditEvent.objects.filter(action="portal.links_revoked").count() == 1
