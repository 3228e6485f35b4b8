"""Recording and allocating payments; the invoice status follows (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from facturo.audit.models import AuditEvent
from facturo.core.errors import BusinessError
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from facturo.payments import services as payments
from facturo.payments.models import Allocation, PaymentStatus
from tests.factories import make_customer, make_org

DAY = dt.date(2026, 3, 1)


def one_line(price: str) -> list[dict[str, object]]:
    return [
        {
            "description": "Service",
            "quantity": Decimal(1),
            "unit_price": Decimal(price),
            "vat_rate": Decimal(0),
            "vat_category": "E",
        }
    ]


def issued(ctx, customer, price: str, currency: str = "EUR") -> Invoice:  # type: ignore[no-untyped-def]
    draft = invoicing.create_draft(ctx, customer.id, one_line(price), currency=currency)
    return invoicing.issue_invoice(ctx, draft.id, render=False)


def status(invoice: Invoice) -> str:
    return Invoice.objects.get(pk=invoice.pk).status


def test_partial_then_full_payment_and_back(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    invoice = issued(ctx, customer, "100.00")
    p1 = payments.record_payment(
        ctx,
        customer_id=customer.id,
        amount="40.00",
        currency="EUR",
        method="transfer",
        received_on=DAY,
    )
    assert status(invoice) == Status.PARTIALLY_PAID
    assert payments.amount_due(Invoice.objects.get(pk=invoice.pk)) == Decimal("60.00")
    payments.record_payment(
        ctx, customer_id=customer.id, amount="60.00", currency="EUR", method="card", received_on=DAY
    )
    assert status(invoice) == Status.PAID
    first = Allocation.objects.get(payment=p1)
    payments.unallocate(ctx, first.pk, reason="wrong customer")
    assert status(invoice) == Status.PARTIALLY_PAID
    assert payments.customer_credit(customer) == Decimal("40.00")
    assert AuditEvent.objects.filter(action="payment.unallocated").count() == 1


def test_oldest_first_overpayment_is_credit_then_applied_and_refunded(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    a, b = issued(ctx, customer, "30.00"), issued(ctx, customer, "50.00")
    payments.record_payment(
        ctx,
        customer_id=customer.id,
        amount="100.00",
        currency="EUR",
        method="transfer",
        received_on=DAY,
    )
    assert (status(a), status(b)) == (Status.PAID, Status.PAID)
    assert payments.customer_credit(customer) == Decimal("20.00")
    c = issued(ctx, customer, "15.00")
    payments.apply_credit(ctx, c.id)
    assert status(c) == Status.PAID
    assert payments.customer_credit(customer) == Decimal("5.00")
    with pytest.raises(BusinessError) as err:
        payments.refund(ctx, customer_id=customer.id, amount="6.00", refunded_on=DAY)
    assert err.value.code == "refund.above_credit"
    payments.refund(ctx, customer_id=customer.id, amount="5.00", refunded_on=DAY)
    assert payments.customer_credit(customer) == Decimal(0)


def test_bad_input_is_refused_and_nothing_is_recorded(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    invoice = issued(ctx, customer, "100.00")
    with pytest.raises(BusinessError) as err:
        payments.record_payment(
            ctx,
            customer_id=customer.id,
            amount="10.00",
            currency="USD",
            method="cash",
            received_on=DAY,
            allocations=[(invoice.id, "10.00")],
        )
    assert err.value.code == "payment.currency_mismatch"
    with pytest.raises(BusinessError) as err:
        payments.record_payment(
            ctx,
            customer_id=customer.id,
            amount="200.00",
            currency="EUR",
            method="cash",
            received_on=DAY,
            allocations=[(invoice.id, "150.00")],
        )
    assert err.value.code == "payment.over_allocation"
    for bad in ("0", "-1", "1.001", "abc"):
        with pytest.raises(BusinessError):
            payments.record_payment(
                ctx,
                customer_id=customer.id,
                amount=bad,
                currency="EUR",
                method="cash",
                received_on=DAY,
            )
    assert not customer.payments.exists()
    assert status(invoice) == Status.ISSUED


def test_credit_note_after_payment_moves_excess_to_credit(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    invoice = issued(ctx, customer, "100.00")
    payments.record_payment(
        ctx,
        customer_id=customer.id,
        amount="100.00",
        currency="EUR",
        method="transfer",
        received_on=DAY,
    )
    note = invoicing.create_credit_note(
        ctx, invoice.id, lines=one_line("30.00"), issue=True, render=False
    )
    fresh = Invoice.objects.get(pk=invoice.pk)
    assert fresh.status == Status.PAID
    assert payments.allocated(fresh) == Decimal("70.00")
    assert payments.customer_credit(customer) == Decimal("30.00")
    (row,) = payments.refund(
        ctx, customer_id=customer.id, amount="30.00", refunded_on=DAY, credit_note_id=note.id
    )
    assert row.credit_note_id == note.id


def test_returned_payment_reopens_invoice_with_reason(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    invoice = issued(ctx, customer, "100.00")
    p = payments.record_payment(
        ctx,
        customer_id=customer.id,
        amount="100.00",
        currency="EUR",
        method="sepa_debit",
        received_on=DAY,
    )
    assert status(invoice) == Status.PAID
    payments.return_payment(ctx, p.id, reason="AM04 insufficient funds")
    assert status(invoice) == Status.ISSUED
    p.refresh_from_db()
    assert p.status == PaymentStatus.RETURNED
    assert Allocation.objects.get(payment=p).reversal_reason == "AM04 insufficient funds"


def test_other_organization_sees_nothing(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    p = payments.record_payment(
        ctx, customer_id=customer.id, amount="1.00", currency="EUR", method="cash", received_on=DAY
    )
    _, other = make_org("other@example.com")
    with pytest.raises(BusinessError) as err:
        payments.get_payment(other, p.id)
    assert err.value.code == "payment.not_found"


def test_issued_invoice_carries_rf_reference_in_snapshot_xml(engine: str) -> None:
    from facturo.formats.sepa.reference import creditor_reference

    _, ctx = make_org()
    invoice = issued(ctx, make_customer(ctx), "10.00")
    assert invoice.number
    remittance = invoice.snapshot["payment"]["remittance"]
    assert remittance == creditor_reference(invoice.number)
    assert remittance.startswith("RF")


def test_refunds_against_a_credit_note_are_capped_and_need_it_issued(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    invoice = issued(ctx, customer, "100.00")
    payments.record_payment(
        ctx,
        customer_id=customer.id,
        amount="100.00",
        currency="EUR",
        method="transfer",
        received_on=DAY,
    )
    draft_note = invoicing.create_credit_note(ctx, invoice.id, reason="Annulation")
    with pytest.raises(BusinessError) as err:
        payments.refund(
            ctx,
            customer_id=customer.id,
            amount="10.00",
            refunded_on=DAY,
            credit_note_id=draft_note.id,
        )
    assert err.value.code == "refund.not_a_credit_note"
    note = invoicing.issue_invoice(ctx, draft_note.id, render=False)
    assert payments.customer_credit(customer) == Decimal("100.00")
    payments.refund(
        ctx, customer_id=customer.id, amount="60.00", refunded_on=DAY, credit_note_id=note.id
    )
    with pytest.raises(BusinessError) as err:  # only 40.00 of this note is left to refund
        payments.refund(
            ctx, customer_id=customer.id, amount="60.00", refunded_on=DAY, credit_note_id=note.id
        )
    assert err.value.code == "refund.above_credit_note"
    assert payments.customer_credit(customer) == Decimal("40.00")


@pytest.mark.parametrize("fees", ["abc", "-1", "0.001", "150"])
def test_malformed_fees_get_a_precise_error(engine: str, fees: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    with pytest.raises(BusinessError) as err:
        payments.record_payment(
            ctx,
            customer_id=customer.id,
            amount="100.00",
            currency="EUR",
            method="card",
            received_on=DAY,
            fees=fees,
        )
    assert err.value.field == "fees"
    assert err.value.code in ("payment.bad_amount", "payment.bad_fees")
