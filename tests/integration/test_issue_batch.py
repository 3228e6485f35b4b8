"""Issuing several drafts at once (ADR 16): the same invoices as one by one, all or none."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from facturo.accounting.models import Entry
from facturo.audit import services as audit
from facturo.audit.models import AuditEvent
from facturo.core.chain import canonical_json, link_hash
from facturo.core.errors import BusinessError, ConflictError, NotFound
from facturo.invoicing import integrity
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from facturo.organizations.models import NumberingSeries
from tests.factories import lines, make_customer, make_org
from tests.integration.test_api import owner_api

TODAY = dt.datetime.now(tz=dt.UTC).astimezone(ZoneInfo("Europe/Paris")).date()


def _drafts(ctx, customer, n: int) -> list:  # type: ignore[no-untyped-def]
    return [invoicing.create_draft(ctx, customer.id, lines(i % 3 + 1)).id for i in range(n)]


def test_batch_numbers_in_the_order_given_and_continues_every_chain(engine: str) -> None:
    org, ctx = make_org()
    customer = make_customer(ctx)
    first = invoicing.issue_invoice(ctx, _drafts(ctx, customer, 1)[0], render=False)
    ids = _drafts(ctx, customer, 6)
    order = [ids[3], ids[0], ids[5], ids[1], ids[4], ids[2]]
    issued = invoicing.issue_invoices(ctx, order, render=False)

    assert [i.id for i in issued] == order
    assert [i.number for i in issued] == [f"FA-{TODAY.year}-{n:05d}" for n in range(2, 8)]
    stored = {i.id: i for i in Invoice.objects.filter(pk__in=ids)}
    previous = first.chain_hash
    for position, invoice in enumerate(issued, start=2):
        row = stored[invoice.id]
        assert row.status == Status.ISSUED
        assert row.series_position == position
        assert row.sequence_value == position
        assert row.chain_previous_hash == previous
        # the hash is recomputed from the stored row, as `facturo check` does
        assert row.chain_hash == link_hash(previous, invoicing.chain_payload(row))
        assert row.snapshot["number"] == row.number
        previous = row.chain_hash
    series = NumberingSeries.objects.get(organization=org, kind="invoice", is_default=True)
    assert series.issued_count == 7
    assert series.last_hash == previous
    assert integrity.verify_organization(org) == []
    assert audit.verify(org.id) is None
    # every invoice was posted: one sales entry each, the ledger's chain intact
    assert Entry.objects.filter(organization_id=org.id, source_kind="invoice").count() == 7
    from facturo.accounting.integrity import verify_ledger

    assert verify_ledger(org) == []


def test_batch_totals_and_documents_equal_one_by_one_issuing(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    one = invoicing.issue_invoice(ctx, _drafts(ctx, customer, 1)[0], render=False)
    many = invoicing.issue_invoices(ctx, _drafts(ctx, customer, 3), render=False)
    same_lines = Invoice.objects.get(pk=many[0].id)  # lines(1), like `one`
    assert same_lines.total_incl_vat == one.total_incl_vat
    a = dict(Invoice.objects.get(pk=one.id).snapshot)
    b = dict(same_lines.snapshot)
    for key in ("number", "payment"):
        a.pop(key), b.pop(key)
    assert canonical_json(a) == canonical_json(b)


def test_a_refused_draft_refuses_the_whole_batch_and_names_it(engine: str) -> None:
    org, ctx = make_org()
    customer = make_customer(ctx)
    good = _drafts(ctx, customer, 2)
    empty = invoicing.create_draft(ctx, customer.id, []).id
    events_before = AuditEvent.objects.filter(organization_id=org.id).count()
    with pytest.raises(BusinessError) as err:
        invoicing.issue_invoices(ctx, [good[0], empty, good[1]], render=False)
    assert err.value.code == "invoice.empty"
    assert "Draft 2 of 3" in err.value.message
    assert not Invoice.objects.filter(organization=org).exclude(status=Status.DRAFT).exists()
    series = NumberingSeries.objects.get(organization=org, kind="invoice", is_default=True)
    assert series.issued_count == 0
    assert not series.counters.exists() or series.counters.get().last_value == 0
    assert AuditEvent.objects.filter(organization_id=org.id).count() == events_before
    # the good drafts still issue afterwards, from number 1: nothing was lost
    issued = invoicing.issue_invoices(ctx, good, render=False)
    assert [i.number for i in issued] == [f"FA-{TODAY.year}-00001", f"FA-{TODAY.year}-00002"]


def test_an_issued_invoice_or_another_organizations_draft_refuses_the_batch(engine: str) -> None:
    _org, ctx = make_org()
    customer = make_customer(ctx)
    drafts = _drafts(ctx, customer, 2)
    issued = invoicing.issue_invoice(ctx, drafts[0], render=False)
    with pytest.raises(ConflictError) as conflict:
        invoicing.issue_invoices(ctx, [drafts[1], drafts[0]], render=False)
    assert conflict.value.code == "invoice.already_issued"
    _, other_ctx = make_org("other@example.com", name="Other SAS")
    foreign = invoicing.create_draft(other_ctx, make_customer(other_ctx).id, lines(1)).id
    with pytest.raises(NotFound):
        invoicing.issue_invoices(ctx, [drafts[1], foreign], render=False)
    assert Invoice.objects.get(pk=drafts[1]).status == Status.DRAFT
    assert Invoice.objects.get(pk=foreign).status == Status.DRAFT
    assert Invoice.objects.get(pk=issued.id).number == f"FA-{TODAY.year}-00001"
    with pytest.raises(BusinessError) as err:
        invoicing.issue_invoices(ctx, [drafts[1]], issue_date=TODAY + dt.timedelta(days=1))
    assert err.value.code == "invoice.future_date"


def test_api_batch_issue_and_its_retry(engine: str) -> None:
    _org, ctx, api = owner_api()
    customer = make_customer(ctx)
    ids = [str(i) for i in _drafts(ctx, customer, 3)]
    response = api.post("/invoices/batch-issue", {"invoice_ids": ids}, key="batch-1")
    assert response.status_code == 200, response.content
    items = response.json()["items"]
    assert [i["id"] for i in items] == ids
    assert [i["number"] for i in items] == [f"FA-{TODAY.year}-{n:05d}" for n in (1, 2, 3)]
    again = api.post("/invoices/batch-issue", {"invoice_ids": ids}, key="batch-1")
    assert again.status_code == 200
    assert again.json() == response.json()
    refused = api.post("/invoices/batch-issue", {"invoice_ids": ids})
    assert refused.status_code == 409
    assert refused.json()["code"] == "invoice.already_issued"
    empty = api.post("/invoices/batch-issue", {"invoice_ids": []})
    assert empty.status_code == 422


def test_web_issue_selected_drafts(engine: str) -> None:
    from django.test import Client

    org, ctx = make_org()
    customer = make_customer(ctx)
    ids = _drafts(ctx, customer, 2)
    client = Client()
    assert client.login(username="owner@example.com", password="pw-1234-x")
    page = client.get("/invoices/?status=draft")
    assert page.status_code == 200
    assert f'name="ids" value="{ids[0]}"'.encode() in page.content
    assert b"Issue the selected drafts" in page.content or "Émettre".encode() in page.content
    response = client.post("/invoices/issue/", {"ids": [str(i) for i in ids]}, follow=True)
    assert response.status_code == 200
    numbers = [f"FA-{TODAY.year}-00001", f"FA-{TODAY.year}-00002"]
    assert numbers[0].encode() in response.content
    assert numbers[1].encode() in response.content
    assert [i.number for i in Invoice.objects.filter(pk__in=ids).order_by("number")] == numbers
    # a second click: nothing more is issued, the user is told
    twice = client.post("/invoices/issue/", {"ids": [str(i) for i in ids]}, follow=True)
    assert twice.status_code == 200
    assert NumberingSeries.objects.get(organization=org, kind="invoice").issued_count == 2
    nothing = client.post("/invoices/issue/", {}, follow=True)
    assert nothing.status_code == 200
