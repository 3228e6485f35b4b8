"""Organizations: identity checks, roles, owners, numbering settings, audit trail."""

from __future__ import annotations

import pytest

from facturo.audit.models import AuditEvent
from facturo.audit.services import verify
from facturo.core.errors import BusinessError, PermissionDenied
from facturo.organizations import services as orgs
from facturo.organizations.models import Membership, Role
from tests.factories import make_org


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("siren", "732829321", "identifier.invalid_siren"),
        ("siret", "73282932000075", "identifier.invalid_siret"),
        ("vat_number", "FR45732829320", "identifier.invalid_vat"),
        ("iban", "FR7630006000011234567890188", "identifier.invalid_iban"),
        ("bic", "AGRIFRP", "identifier.invalid_bic"),
        ("currency", "EURO", "money.unknown_currency"),
    ],
)
def test_invalid_identity_is_refused_and_nothing_changes(
    engine: str, field: str, value: str, code: str
) -> None:
    org, ctx = make_org()
    with pytest.raises(BusinessError) as err:
        orgs.update_organization(ctx, **{field: value})
    assert err.value.code == code
    org.refresh_from_db()
    assert getattr(org, field) != value


def test_siret_must_belong_to_siren(engine: str) -> None:
    _, ctx = make_org()
    with pytest.raises(BusinessError) as err:
        orgs.update_organization(ctx, siret="55210055400013")
    assert err.value.code == "identifier.siret_siren_mismatch"


def test_owner_rules(engine: str) -> None:
    org, owner_ctx = make_org()
    admin = orgs.add_member(owner_ctx, "admin@example.com", Role.ADMIN, password="x-pw-12345")
    admin_ctx = orgs.context_for(admin.user, org.id)
    owner = Membership.objects.get(organization=org, role=Role.OWNER)
    with pytest.raises(BusinessError) as err:  # an admin cannot demote the owner
        orgs.add_member(admin_ctx, owner.user.email, Role.SALES)
    assert err.value.code == "member.owner_only"
    with pytest.raises(BusinessError) as err:  # nor remove them
        orgs.remove_member(admin_ctx, owner.pk)
    assert err.value.code == "member.owner_only"
    with pytest.raises(BusinessError) as err:  # the last owner cannot demote themself
        orgs.add_member(owner_ctx, owner.user.email, Role.ADMIN)
    assert err.value.code == "member.last_owner"
    orgs.add_member(owner_ctx, "second@example.com", Role.OWNER, password="x-pw-12345")
    orgs.add_member(owner_ctx, owner.user.email, Role.ADMIN)  # now allowed
    assert Membership.objects.get(pk=owner.pk).role == Role.ADMIN


def test_roles_are_checked_in_services(engine: str) -> None:
    org, owner_ctx = make_org()
    reader = orgs.add_member(owner_ctx, "reader@example.com", Role.READ_ONLY, password="x-pw-1234")
    reader_ctx = orgs.context_for(reader.user, org.id)
    with pytest.raises(PermissionDenied):
        orgs.update_organization(reader_ctx, name="Hacked")
    with pytest.raises(PermissionDenied):
        orgs.add_member(reader_ctx, "x@example.com", Role.OWNER)


def test_every_write_is_audited_and_chained(engine: str) -> None:
    org, ctx = make_org()
    orgs.update_organization(ctx, name="Nouveau nom", legal_form="SARL")
    orgs.update_series(ctx, "invoice", "F{YY}{MM}-{seq:04}", "monthly")
    events = list(AuditEvent.objects.filter(organization_id=org.id).order_by("seq"))
    assert [e.action for e in events] == [
        "organization.created",
        "organization.updated",
        "series.updated",
    ]
    updated = events[1]
    assert updated.before is not None
    assert updated.after is not None
    assert updated.before["legal_form"] == "SAS"
    assert updated.after["legal_form"] == "SARL"
    assert updated.ip == "127.0.0.1"
    assert updated.actor_label == "owner@example.com"
    assert verify(org.id) is None


def test_bad_numbering_pattern_is_refused(engine: str) -> None:
    _, ctx = make_org()
    with pytest.raises(BusinessError) as err:
        orgs.update_series(ctx, "invoice", "FACTURE {seq}", "never")
    assert err.value.code == "numbering.invalid_number"


def test_owners_get_a_read_only_admin_of_their_own_organizations(engine: str) -> None:
    from django.test import Client

    from facturo.invoicing import services as invoicing
    from tests.factories import lines, make_customer

    org_a, ctx_a = make_org("a@example.com")
    _, ctx_b = make_org("b@example.com", name="Autre société")
    mine = invoicing.issue_invoice(
        ctx_a, invoicing.create_draft(ctx_a, make_customer(ctx_a).id, lines(1)).id, render=False
    )
    theirs = invoicing.create_draft(ctx_b, make_customer(ctx_b, name="Client B").id, lines(1))
    owner = Membership.objects.get(organization=org_a, role=Role.OWNER).user
    assert owner.is_staff
    client = Client()
    client.force_login(owner)
    listing = client.get("/admin/invoicing/invoice/")
    assert listing.status_code == 200
    assert str(mine.number) in listing.content.decode()
    assert client.get(f"/admin/invoicing/invoice/{theirs.pk}/change/").status_code in (302, 404)
    response = client.post(f"/admin/invoicing/invoice/{mine.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert type(mine).objects.filter(pk=mine.pk).exists()
