"""Posting under contention (PostgreSQL; SQLite serialises whole transactions): threads
issue invoices and credit notes while others record payments for the same customers. No
deadlock, no error; the chain is continuous and verifies; the books match the business
data."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import timezone

from facturo.accounting import selectors
from facturo.accounting.integrity import verify_ledger
from facturo.accounting.models import Entry
from facturo.accounting.posting import customer_code
from facturo.core.ledger import Balance
from facturo.foundation.db import current_alias, using_database
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from facturo.payments import services as payments
from tests.factories import make_customer, make_org

D = Decimal
PER_THREAD = 12


@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_credit_notes_and_payments(engine: str) -> None:
    if engine != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: nothing to race")
    org, ctx = make_org()
    customers = [make_customer(ctx, name=f"Client {i}") for i in range(2)]
    line = [{"description": "Conseil", "quantity": D(1), "unit_price": D("100.00")}]
    drafts = {
        c.pk: [invoicing.create_draft(ctx, c.id, line).id for _ in range(PER_THREAD)]
        for c in customers
    }
    alias = current_alias()
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def issuer(customer_id: object) -> None:
        try:
            with using_database(alias):
                start.wait()
                for i, draft_id in enumerate(drafts[customer_id]):  # type: ignore[index]
                    invoice = invoicing.issue_invoice(ctx, draft_id, render=False)
                    # Credit notes only for the customer nobody pays concurrently: a credit
                    # note locks its invoice before the audit chain while a payment takes
                    # the chain before the invoices (payments and invoicing, not the ledger).
                    if i % 4 == 3 and customer_id == customers[0].pk:
                        invoicing.create_credit_note(ctx, invoice.id, issue=True, render=False)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def payer(customer_id: object) -> None:
        try:
            with using_database(alias):
                start.wait()
                for _ in range(PER_THREAD):
                    payments.record_payment(
                        ctx, customer_id=customer_id, amount="90.00", currency="EUR",
                        method="transfer", received_on=timezone.localdate(),
                    )  # fmt: skip
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=issuer, args=(c.pk,)) for c in customers] + [
        threading.Thread(target=payer, args=(customers[1].pk,)) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    numbers = list(Entry.objects.filter(organization=org).values_list("number", flat=True))
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    assert verify_ledger(org) == []
    owed = selectors.auxiliary_totals(org.id, "411")
    credit = selectors.auxiliary_totals(org.id, "4197")
    issued = list(Invoice.objects.filter(organization=org).exclude(status=Status.DRAFT))
    for customer in customers:
        code = customer_code(customer.id)
        due = sum((payments.amount_due(i) for i in issued if i.customer_id == customer.pk), D(0))
        assert owed.get(code, Balance()).balance == due
        assert -credit.get(code, Balance()).balance == payments.customer_credit(customer)
