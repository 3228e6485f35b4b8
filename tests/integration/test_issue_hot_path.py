"""The hand-written SQL of the issuing path (ADR 10) against SQLite and PostgreSQL: the
returned invoice is what the database holds, the hash is the one ``facturo check``
recomputes, periods start their own counter, foreign or malformed ids are "not found",
and the statement count stays where the ADR says."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from facturo.audit.models import AuditChainHead, AuditEvent
from facturo.core.chain import link_hash
from facturo.core.document import from_dict
from facturo.core.errors import NotFound
from facturo.foundation import events
from facturo.foundation.db import current_alias
from facturo.invoicing import services as invoicing
from facturo.invoicing.events import InvoiceIssued
from facturo.invoicing.integrity import verify_organization
from facturo.invoicing.models import Invoice, Status
from facturo.organizations import services as organizations
from facturo.organizations.models import NumberingSeries, SeriesCounter
from tests.factories import lines, make_customer, make_org

ISSUE_FIELDS = [f for f in invoicing.ISSUE_FIELDS if f not in ("series", "updated_at")]


def test_returned_invoice_is_what_the_database_holds(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx, name="Boulangerie « L’Épi d’or »")  # non-ASCII in the hash
    draft = invoicing.create_draft(ctx, customer.id, lines(4), document_discount_percent="5")
    issued = invoicing.issue_invoice(ctx, draft.id, render=False)
    stored = Invoice.objects.get(pk=draft.id)
    for field in [*ISSUE_FIELDS, "series_id", "customer_id", "organization_id", "kind"]:
        assert getattr(issued, field) == getattr(stored, field), field
    assert stored.status == Status.ISSUED
    assert issued.customer.name == customer.name  # related objects come along, no query
    assert issued.organization.pk == ctx.organization.pk
    # the hash written by the hot path is the one the integrity check recomputes
    assert stored.chain_hash == link_hash(
        stored.chain_previous_hash, invoicing.chain_payload(stored)
    )
    assert from_dict(stored.snapshot).number == stored.number
    assert verify_organization(ctx.organization) == []
    event = AuditEvent.objects.filter(action="invoice.issued", object_id=str(draft.id)).get()
    assert event.after == {
        "number": issued.number,
        "total_incl_vat": str(issued.total_incl_vat),
        "chain_hash": issued.chain_hash,
    }
    head = AuditChainHead.objects.get(organization_id=ctx.organization.id)
    assert (head.last_seq, head.last_hash) == (event.seq, event.hash)


def test_monthly_series_starts_each_period_at_one(engine: str) -> None:
    _, ctx = make_org()
    organizations.update_series(ctx, "invoice", "F{YYYY}{MM}-{seq:03}", "monthly")
    customer = make_customer(ctx)
    today = ctx.today()
    first_of_month = today.replace(day=1)
    last_month = first_of_month - dt.timedelta(days=1)
    numbers = []
    for day in (last_month, last_month, first_of_month, today):
        draft = invoicing.create_draft(ctx, customer.id, lines(1))
        numbers.append(invoicing.issue_invoice(ctx, draft.id, issue_date=day, render=False).number)
    assert numbers == [
        f"F{last_month:%Y%m}-001",
        f"F{last_month:%Y%m}-002",
        f"F{today:%Y%m}-001",
        f"F{today:%Y%m}-002",
    ]
    series = NumberingSeries.objects.get(organization=ctx.organization, kind="invoice")
    assert series.issued_count == 4
    counters = dict(
        SeriesCounter.objects.filter(series=series).values_list("period_key", "last_value")
    )
    assert counters == {f"{last_month:%Y-%m}": 2, f"{today:%Y-%m}": 2}
    assert verify_organization(ctx.organization) == []


@pytest.mark.parametrize("bad", ["not-a-uuid", 42, None, "", str(uuid.uuid4())])
def test_malformed_or_unknown_ids_are_not_found(engine: str, bad: Any) -> None:
    _, ctx = make_org()
    with pytest.raises(NotFound):
        invoicing.issue_invoice(ctx, bad, render=False)


def test_another_organizations_draft_is_not_found_and_untouched(engine: str) -> None:
    _, ctx_a = make_org("a@example.com")
    _, ctx_b = make_org("b@example.com")
    draft = invoicing.create_draft(ctx_b, make_customer(ctx_b).id, lines(1))
    with pytest.raises(NotFound):
        invoicing.issue_invoice(ctx_a, draft.id, render=False)
    assert Invoice.objects.get(pk=draft.id).status == Status.DRAFT
    assert not SeriesCounter.objects.filter(series__organization=ctx_a.organization).exists()


def test_event_carries_the_frozen_document(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[InvoiceIssued] = []
    monkeypatch.setitem(events._handlers, InvoiceIssued, [seen.append])
    _, ctx = make_org()
    draft = invoicing.create_draft(ctx, make_customer(ctx).id, lines(2))
    issued = invoicing.issue_invoice(ctx, draft.id, render=False)
    (event,) = seen
    assert event.document is not None
    assert event.document.number == issued.number
    assert (
        event.document.totals.tax_inclusive == issued.total_incl_vat == Decimal("362.36")
    )  # (99.99 + 2 × 100.99) × 1.2, half up
    assert from_dict(issued.snapshot) == event.document


def test_statement_count(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issuing transaction's own statements, without the other apps' handlers: PG:
    load, lines, lock series + counter, invoice + series, audit (lock, hash, insert, move);
    SQLite: the writes one by one (a statement costs microseconds in-process)."""
    monkeypatch.setitem(events._handlers, InvoiceIssued, [])
    _, ctx = make_org()
    customer = make_customer(ctx)
    drafts = [invoicing.create_draft(ctx, customer.id, lines(10)).id for _ in range(2)]
    invoicing.issue_invoice(ctx, drafts[0], render=False)  # first: creates the counter
    conn = connections[current_alias()]
    with CaptureQueriesContext(conn) as queries:
        invoicing.issue_invoice(ctx, drafts[1], render=False)
    statements = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].split()[0].upper() not in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")
    ]
    assert len(statements) == (5 if engine == "postgresql" else 9), statements


def test_audit_chain_links_whatever_the_text(engine: str) -> None:
    """The audit hash computed in SQL on PostgreSQL is the one Python recomputes, with
    non-ASCII text, quotes, backslashes and nested values, from the first event on."""
    from facturo.audit import services as audit

    org_id = uuid.uuid4()
    actor = audit.Actor("u-1", 'Zoë « l’Haÿ » \\ "quoted" 🧾', "192.0.2.7")
    recorded = [
        audit.record(org_id, actor, "test.first", object_type="x", object_id="1"),
        audit.record(
            org_id,
            actor,
            "test.nested",
            object_type="x",
            object_id="2",
            before={"amount": Decimal("12.30"), "day": dt.date(2026, 1, 31)},
            after={"lines": [{"é": "ü"}, None, 3], "ok": True},
        ),
        audit.record(org_id, audit.SYSTEM, "test.third", object_type="x", object_id="3"),
    ]
    stored = list(AuditEvent.objects.filter(organization_id=org_id).order_by("seq"))
    assert [e.seq for e in stored] == [1, 2, 3]
    for mine, theirs in zip(recorded, stored, strict=True):
        assert (mine.pk, mine.seq, mine.hash) == (theirs.pk, theirs.seq, theirs.hash)
        assert theirs.hash == link_hash(theirs.previous_hash, theirs.payload())
    assert stored[1].before == {"amount": "12.30", "day": "2026-01-31"}
    assert audit.verify(org_id) is None
