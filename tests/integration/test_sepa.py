"""SEPA direct debit: creditor identifier, mandates, pain.008 batches, returns
(SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from facturo.core.errors import BusinessError
from facturo.formats.sepa import pain008
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from facturo.payments import sepa
from facturo.payments import services as payments
from facturo.payments.models import DebitBatch, Mandate, Payment, PaymentStatus
from tests.factories import make_customer, make_org

SIGNED = dt.date(2026, 11, 2)
COLLECT = dt.date(2027, 1, 15)
IBAN = "FR1420041010050500013M02606"


def one_line(price: str) -> list[dict[str, object]]:
    return [{"description": "Abonnement", "quantity": Decimal(1), "unit_price": Decimal(price),
             "vat_rate": Decimal(0), "vat_category": "E"}]  # fmt: skip


def issued(ctx, customer, price: str) -> Invoice:
    draft = invoicing.create_draft(ctx, customer.id, one_line(price))
    return invoicing.issue_invoice(ctx, draft.id, render=False)


def status(invoice: Invoice) -> str:
    return Invoice.objects.get(pk=invoice.pk).status


def setup(**customer):
    _, ctx = make_org()
    sepa.configure_creditor(ctx, identifier="FR72 ZZZ 123456")
    return ctx, make_customer(ctx, **customer)


def mandate(ctx, customer, **kw):
    return sepa.create_mandate(ctx, customer_id=customer.id, iban=kw.pop("iban", IBAN),
                               bic=kw.pop("bic", "CCBPFRPP"), debtor_name=customer.name,
                               signed_on=SIGNED, **kw)  # fmt: skip


def test_batch_file_is_valid_first_then_recurrent(engine: str) -> None:
    ctx, customer = setup()
    other = make_customer(ctx, name="Garage Dupont", siren="", vat_number="")
    m = mandate(ctx, customer)
    mandate(ctx, other, kind="one_off", source="portal")
    a, b = issued(ctx, customer, "100.00"), issued(ctx, customer, "20.50")
    c = issued(ctx, other, "33.33")
    no_mandate = issued(ctx, make_customer(ctx, name="Sans Mandat", siren="", vat_number=""), "9")
    result = sepa.create_batch(ctx, collection_date=COLLECT)
    batch = result.batch
    assert batch is not None
    assert result.skipped == []
    data = bytes(batch.content)
    assert pain008.validate(data) == []
    assert (batch.count, batch.total) == (2, Decimal("153.83"))
    assert b"<NbOfTxs>2</NbOfTxs>" in data
    assert b"<CtrlSum>153.83</CtrlSum>" in data
    assert b"<SeqTp>FRST</SeqTp>" in data
    assert b"<SeqTp>OOFF</SeqTp>" in data
    assert m.reference.encode() in data
    # Pending sepa_debit payments allocated on the collection date: invoices paid.
    for invoice in (a, b, c):
        assert status(invoice) == Status.PAID
    assert status(no_mandate) == Status.ISSUED
    pay = Payment.objects.get(debit__mandate=m)
    assert (pay.method, pay.status, pay.received_on) == ("sepa_debit", "pending", COLLECT)
    assert sepa.settle_batch(ctx, batch.pk) == 2
    # Nothing left to collect; the next invoice is RCUR, the used one-off mandate is refused.
    assert sepa.create_batch(ctx, collection_date=COLLECT).batch is None
    issued(ctx, customer, "10.00")
    d = issued(ctx, other, "5.00")
    second = sepa.create_batch(ctx, collection_date=COLLECT + dt.timedelta(days=30))
    assert second.batch is not None
    assert b"<SeqTp>RCUR</SeqTp>" in bytes(second.batch.content)
    assert b"FRST" not in bytes(second.batch.content)
    assert [(s.invoice_number, s.code) for s in second.skipped] == [(d.number, "sepa.mandate_used")]


def test_revoked_mandate_is_skipped_with_the_reason_and_never_collected(engine: str) -> None:
    ctx, customer = setup()
    m = mandate(ctx, customer)
    invoice = issued(ctx, customer, "50.00")
    sepa.revoke_mandate(ctx, m.pk, revoked_on=dt.date(2026, 11, 20), reason="customer letter")
    result = sepa.create_batch(ctx, collection_date=COLLECT)
    assert result.batch is None
    (skip,) = result.skipped
    assert (skip.invoice_number, skip.code) == (invoice.number, "sepa.mandate_revoked")
    assert m.reference in skip.reason
    assert "2026-11-20" in skip.reason
    assert not DebitBatch.objects.exists()
    assert not Payment.objects.exists()
    assert status(invoice) == Status.ISSUED
    # Explicitly asked for: still refused.
    assert sepa.create_batch(ctx, collection_date=COLLECT, invoice_ids=[invoice.pk]).batch is None


def test_bad_mandates_are_refused_and_nothing_is_created(engine: str) -> None:
    ctx, customer = setup()
    cases = [({"iban": ""}, "mandate.iban_required"),
             ({"iban": "FR1420041010050500013M02607"}, "identifier.invalid_iban"),
             ({"bic": "NOTABIC!"}, "identifier.invalid_bic"),
             ({"bic": "CCBPFRP"}, "identifier.invalid_bic")]  # fmt: skip
    for kwargs, code in cases:
        with pytest.raises(BusinessError) as err:
            mandate(ctx, customer, **kwargs)
        assert err.value.code == code
    m = mandate(ctx, customer, reference="UMR-2026-001")
    with pytest.raises(BusinessError) as err:
        mandate(ctx, customer, reference="UMR-2026-001")
    assert err.value.code == "mandate.duplicate_reference"
    assert list(Mandate.objects.all()) == [m]
    with pytest.raises(BusinessError) as err:
        sepa.configure_creditor(ctx, identifier="FR73ZZZ123456")
    assert err.value.code == "sepa.invalid_creditor_identifier"


def test_return_reopens_the_invoice_and_next_collection_is_first_again(engine: str) -> None:
    ctx, customer = setup()
    mandate(ctx, customer)
    invoice = issued(ctx, customer, "80.00")
    batch = sepa.create_batch(ctx, collection_date=COLLECT).batch
    assert batch is not None
    assert status(invoice) == Status.PAID
    pay = Payment.objects.get(debit__batch=batch)
    with pytest.raises(BusinessError) as err:
        sepa.record_return(ctx, pay.pk, reason_code="XX99", returned_on=COLLECT)
    assert err.value.code == "sepa.bad_reason_code"
    sepa.record_return(ctx, pay.pk, reason_code="am04", note="retry next month",
                       returned_on=COLLECT + dt.timedelta(days=3))  # fmt: skip
    pay.refresh_from_db()
    assert pay.status == PaymentStatus.RETURNED
    assert pay.return_reason.startswith("AM04 Insufficient funds (2027-01-18)")
    assert status(invoice) == Status.ISSUED
    assert payments.amount_due(Invoice.objects.get(pk=invoice.pk)) == Decimal("80.00")
    again = sepa.create_batch(ctx, collection_date=COLLECT + dt.timedelta(days=10)).batch
    assert again is not None
    assert b"<SeqTp>FRST</SeqTp>" in bytes(again.content)


def test_other_organization_cannot_touch_mandates(engine: str) -> None:
    ctx, customer = setup()
    m = mandate(ctx, customer)
    _, intruder = make_org("intruder@example.com")
    with pytest.raises(BusinessError) as err:
        sepa.revoke_mandate(intruder, m.pk, revoked_on=COLLECT)
    assert err.value.code == "mandate.not_found"
    with pytest.raises(BusinessError) as err:
        sepa.create_mandate(intruder, customer_id=customer.id, iban=IBAN, debtor_name="x",
                            signed_on=SIGNED)  # fmt: skip
    assert err.value.code == "customer.not_found"
