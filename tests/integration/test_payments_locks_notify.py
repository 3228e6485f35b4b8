"""Lock order (invoices before payments), payment-received notifications through the outbox,
and the payments list without N+1 queries (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from facturo.foundation.db import current_alias
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice
from facturo.notifications.models import OutboxEmail
from facturo.payments import notify
from facturo.payments import services as payments
from facturo.payments.models import Payment
from tests.factories import make_customer, make_org

DAY = dt.date(2026, 11, 20)


def issued(ctx, customer, price: str) -> Invoice:
    line = {"description": "Audit", "quantity": Decimal(1), "unit_price": Decimal(price),
            "vat_rate": Decimal(0), "vat_category": "E"}  # fmt: skip
    draft = invoicing.create_draft(ctx, customer.id, [line])
    return invoicing.issue_invoice(ctx, draft.id, render=False)


UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


def locks(queries: list[dict[str, str]]) -> list[tuple[str, set[str]]]:
    """Each SELECT … FOR UPDATE on invoices or payments, in order, with the ids it names."""
    found = []
    for q in queries:
        sql = q["sql"]
        if "FOR UPDATE" in sql:
            match = re.search(r'FROM "(\w+)"', sql)
            if match and match.group(1) in ("invoicing_invoice", "payments_payment"):
                ids = {u.replace("-", "") for u in UUID.findall(sql)}
                found.append((match.group(1), ids))
    return found


def assert_invoices_first(taken: list[tuple[str, set[str]]]) -> None:
    """Invoices are locked before any payment; after a payment lock, only invoices already
    held may be named again (a row lock already held never waits)."""
    tables = [t for t, _ids in taken]
    assert "invoicing_invoice" in tables, tables
    assert "payments_payment" in tables, tables
    first_payment = tables.index("payments_payment")
    held: set[str] = set()
    for table, ids in taken[:first_payment]:
        if table == "invoicing_invoice":
            held |= ids
    for table, ids in taken[first_payment:]:
        if table == "invoicing_invoice":
            assert ids <= held, f"an invoice was first locked after a payment: {tables}"


def test_every_operation_locks_invoices_before_payments(engine: str) -> None:
    """Regression: apply_credit locked invoice → payments while allocate locked payment →
    invoices; two of them at once could deadlock. Now always invoices (by id) first."""
    if engine == "sqlite":
        pytest.skip("SQLite has no row locks (BEGIN IMMEDIATE serialises writers)")
    _, ctx = make_org()
    customer = make_customer(ctx)
    a, b = issued(ctx, customer, "100.00"), issued(ctx, customer, "50.00")
    credit = payments.record_payment(ctx, customer_id=customer.id, amount="30.00",
                                     currency="EUR", method="transfer", received_on=DAY,
                                     auto_allocate=False)  # fmt: skip
    later = payments.record_payment(ctx, customer_id=customer.id, amount="40.00",
                                    currency="EUR", method="transfer", received_on=DAY,
                                    auto_allocate=False)  # fmt: skip
    connection = connections[current_alias()]
    with CaptureQueriesContext(connection) as auto:
        payments.allocate(ctx, later.id)
    assert_invoices_first(locks(auto.captured_queries))
    with CaptureQueriesContext(connection) as explicit:
        payments.allocate(ctx, credit.id, [(b.id, "10.00")])
    assert_invoices_first(locks(explicit.captured_queries))
    with CaptureQueriesContext(connection) as applied:
        payments.apply_credit(ctx, a.id)
    assert_invoices_first(locks(applied.captured_queries))
    with CaptureQueriesContext(connection) as returned:
        payments.return_payment(ctx, later.id, reason="cheque bounced")
    assert_invoices_first(locks(returned.captured_queries))
    assert payments.amount_due(Invoice.objects.get(pk=a.pk)) == Decimal("80.00")


def test_payment_received_notifies_the_issuer_once(engine: str) -> None:
    _org, ctx = make_org("sales@example.com")
    customer = make_customer(ctx)
    invoice = issued(ctx, customer, "120.00")
    payment = payments.record_payment(ctx, customer_id=customer.id, amount="150.00",
                                      currency="EUR", method="transfer", received_on=DAY,
                                      reference="VIR 42")  # fmt: skip
    mail = OutboxEmail.objects.get(idempotency_key=f"payment-received:{payment.pk}")
    assert mail.to == ["sales@example.com"]  # who issued the invoice
    assert invoice.number in mail.body
    assert "VIR 42" in mail.body
    assert "30,00" in mail.body  # what is left is the customer's credit
    assert not notify.payment_received(payment)  # a second time writes nothing
    assert OutboxEmail.objects.filter(subject_id=payment.pk).count() == 1


def test_payment_notification_settings(engine: str) -> None:
    _org, ctx = make_org()
    customer = make_customer(ctx)
    issued(ctx, customer, "10.00")
    notify.save_settings(ctx, notify_on_payment="none")
    p1 = payments.record_payment(ctx, customer_id=customer.id, amount="5.00", currency="EUR",
                                 method="cash", received_on=DAY)  # fmt: skip
    assert not OutboxEmail.objects.filter(subject_id=p1.pk).exists()
    notify.save_settings(ctx, notify_on_payment="address", notify_address="boss@example.com")
    p2 = payments.record_payment(ctx, customer_id=customer.id, amount="5.00", currency="EUR",
                                 method="cash", received_on=DAY)  # fmt: skip
    assert OutboxEmail.objects.get(subject_id=p2.pk).to == ["boss@example.com"]
    from facturo.core.errors import BusinessError

    with pytest.raises(BusinessError) as err:
        notify.save_settings(ctx, notify_on_payment="address", notify_address="")
    assert err.value.code == "payments.notify_address_required"


def test_payments_list_query_count_does_not_grow(engine: str) -> None:
    """Regression: the list loaded allocations, refunds and the unallocated part per row."""
    from facturo.payments import selectors

    _, ctx = make_org()
    customer = make_customer(ctx)

    def render() -> int:
        from facturo.api.payments import payment_out

        with CaptureQueriesContext(connections[current_alias()]) as queries:
            rows = [payment_out(p) for p in selectors.payments_with_details(ctx)]
        assert rows
        return len(queries.captured_queries)

    for _ in range(2):
        issued(ctx, customer, "10.00")
        payments.record_payment(ctx, customer_id=customer.id, amount="12.00", currency="EUR",
                                method="transfer", received_on=DAY)  # fmt: skip
    few = render()
    for _ in range(8):
        issued(ctx, customer, "10.00")
        payments.record_payment(ctx, customer_id=customer.id, amount="12.00", currency="EUR",
                                method="transfer", received_on=DAY)  # fmt: skip
    assert Payment.objects.count() == 10
    assert render() == few <= 4
