"""SEPA: EndToEndIds (written = stored, unique), pain.008.001.08, pre-notifications,
returns imported from pain.002 and camt.054, auto-pay of subscription invoices, and the
batch's query count (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from lxml import etree

from facturo.core.errors import BusinessError
from facturo.formats.sepa import pain008
from facturo.foundation import events
from facturo.foundation.db import current_alias
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from facturo.notifications.models import OutboxEmail
from facturo.payments import notify, sepa
from facturo.payments import services as payments
from facturo.payments.models import AutoPayRequest, DebitItem, PaymentStatus
from facturo.subscriptions.events import SubscriptionInvoiceIssued
from tests.factories import make_customer, make_org

SIGNED = dt.date(2026, 11, 2)
COLLECT = dt.date(2027, 1, 15)
IBAN = "FR1420041010050500013M02606"


def issued(ctx, customer, price: str) -> Invoice:
    line = {"description": "Abonnement", "quantity": Decimal(1), "unit_price": Decimal(price),
            "vat_rate": Decimal(0), "vat_category": "E"}  # fmt: skip
    draft = invoicing.create_draft(ctx, customer.id, [line])
    return invoicing.issue_invoice(ctx, draft.id, render=False)


def setup(n_customers: int = 1):
    _, ctx = make_org()
    sepa.configure_creditor(ctx, identifier="FR72 ZZZ 123456")
    customers = []
    for i in range(n_customers):
        c = make_customer(ctx, name=f"Client {i}", siren="", vat_number="",
                          email=f"client{i}@example.com")  # fmt: skip
        sepa.create_mandate(ctx, customer_id=c.id, iban=IBAN, bic="CCBPFRPP",
                            debtor_name=c.name, signed_on=SIGNED)  # fmt: skip
        customers.append(c)
    return ctx, customers


def e2e_in_file(content: bytes) -> list[str]:
    doc = etree.fromstring(content)
    ns = {"p": etree.QName(doc).namespace}
    return [str(t) for t in doc.xpath("//p:EndToEndId/text()", namespaces=ns)]


def test_end_to_end_id_in_file_is_the_stored_one_and_never_reused(engine: str) -> None:
    ctx, (customer,) = setup()
    invoice = issued(ctx, customer, "80.00")
    first = sepa.create_batch(ctx, collection_date=COLLECT).batch
    item = DebitItem.objects.get(batch=first)
    assert e2e_in_file(bytes(first.content)) == [item.end_to_end_id]
    assert item.end_to_end_id.startswith(pain008.sepa_id(invoice.number))
    sepa.record_return(ctx, item.payment_id, reason_code="AM04", returned_on=COLLECT)
    again = sepa.create_batch(ctx, collection_date=COLLECT + dt.timedelta(days=7)).batch
    second = DebitItem.objects.get(batch=again)
    assert second.end_to_end_id != item.end_to_end_id
    assert e2e_in_file(bytes(again.content)) == [second.end_to_end_id]


def test_end_to_end_id_of_a_number_with_underscores() -> None:
    """Regression: sepa_text turned "_" into a space in the file while the raw number was
    stored; the id is now made SEPA-safe first and written as is."""
    e2e = sepa._end_to_end_id(["FA_2026_0007"], uuid.UUID(int=7))
    assert e2e == "FA-2026-0007-00000000"
    debit = pain008.DirectDebit(e2e, Decimal("1.00"), "UMR", SIGNED, "FRST", "X", IBAN, "", "r")
    creditor = pain008.Creditor("Org", IBAN, "", "FR72ZZZ123456")
    content = pain008.write(message_id="M", created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                            creditor=creditor, collection_date=COLLECT, debits=[debit])  # fmt: skip
    assert e2e_in_file(content) == [e2e]
    with pytest.raises(pain008.Pain008Error):
        pain008.write(message_id="M", created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                      creditor=creditor, collection_date=COLLECT,
                      debits=[debit, debit])  # fmt: skip


def test_pain_008_001_08_from_the_setting_validates(engine: str) -> None:
    ctx, (customer,) = setup()
    issued(ctx, customer, "42.00")
    notify.save_settings(ctx, notify_on_payment="none", pain_version="pain.008.001.08")
    batch = sepa.create_batch(ctx, collection_date=COLLECT).batch
    content = bytes(batch.content)
    assert batch.version == "pain.008.001.08"
    assert b"urn:iso:std:iso:20022:tech:xsd:pain.008.001.08" in content
    assert b"<BICFI>CCBPFRPP</BICFI>" in content
    assert pain008.validate(content) == []
    with pytest.raises(BusinessError) as err:
        sepa.create_batch(ctx, collection_date=COLLECT, version="pain.008.001.99")
    assert err.value.code == "sepa.bad_version"


def test_pre_notification_is_due_n_days_before_and_written_once(engine: str) -> None:
    ctx, (customer,) = setup()
    notify.save_settings(ctx, notify_on_payment="none", prenotification_days=5)
    invoice = issued(ctx, customer, "60.00")
    batch = sepa.create_batch(ctx, collection_date=COLLECT).batch
    item = DebitItem.objects.select_related("batch__organization", "mandate",
                                            "payment__customer").get(batch=batch)  # fmt: skip
    mail = OutboxEmail.objects.get(idempotency_key=f"sepa-prenotification:{item.pk}")
    assert mail.to == [customer.email]
    assert invoice.number in mail.body
    assert "60,00" in mail.body
    assert "2027-01-15" in mail.body
    assert item.end_to_end_id in mail.body
    assert "FR72ZZZ123456" in mail.body
    local = mail.next_attempt_at.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert local.date() == COLLECT - dt.timedelta(days=5)
    assert not notify.prenotify(item, "FR72ZZZ123456")
    assert OutboxEmail.objects.filter(idempotency_key__startswith="sepa-pre").count() == 1


def pain002(message_id: str, rejected: list[tuple[str, str, str]], group: str = "") -> bytes:
    txs = "".join(
        f"<TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
        f"<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf>"
        f'<OrgnlTxRef><Amt><InstdAmt Ccy="EUR">{amount}</InstdAmt></Amt>'
        f"<ReqdColltnDt>2027-01-15</ReqdColltnDt></OrgnlTxRef></TxInfAndSts>"
        for e2e, code, amount in rejected
    )
    status = (f"<GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>{group}</Cd></Rsn></StsRsnInf>"
              if group else "<GrpSts>PART</GrpSts>")  # fmt: skip
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>'
        "<GrpHdr><MsgId>STS-1</MsgId><CreDtTm>2027-01-16T09:00:00</CreDtTm></GrpHdr>"
        f"<OrgnlGrpInfAndSts><OrgnlMsgId>{message_id}</OrgnlMsgId>"
        f"<OrgnlMsgNmId>pain.008.001.02</OrgnlMsgNmId>{status}</OrgnlGrpInfAndSts>"
        f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{message_id}-FRST</OrgnlPmtInfId>{txs}"
        "</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>"
    ).encode()


def test_pain_002_rejection_reopens_the_invoice_with_the_reason(engine: str) -> None:
    ctx, (a, b) = setup(2)
    ia, ib = issued(ctx, a, "100.00"), issued(ctx, b, "25.50")
    batch = sepa.create_batch(ctx, collection_date=COLLECT).batch
    assert Invoice.objects.get(pk=ia.pk).status == Status.PAID
    item_a = DebitItem.objects.get(batch=batch, mandate__customer=a)
    data = pain002(batch.message_id, [(item_a.end_to_end_id, "AM04", "100.00"),
                                      ("NOT-OURS-1", "AC04", "5.00")])  # fmt: skip
    report = sepa.import_returns(ctx, data, filename="status.xml")
    outcomes = {r.end_to_end_id: r.outcome for r in report}
    assert outcomes == {item_a.end_to_end_id: "returned", "NOT-OURS-1": "unknown"}
    returned = next(r for r in report if r.outcome == "returned")
    assert returned.reason == "Provision insuffisante"  # in the active language (fr)
    assert returned.invoices == (ia.number,)
    assert Invoice.objects.get(pk=ia.pk).status == Status.ISSUED
    assert payments.amount_due(Invoice.objects.get(pk=ia.pk)) == Decimal("100.00")
    assert Invoice.objects.get(pk=ib.pk).status == Status.PAID  # the other debit stands
    item_a.payment.refresh_from_db()
    assert item_a.payment.status == PaymentStatus.RETURNED
    assert item_a.payment.return_reason.startswith("AM04 Insufficient funds (2027-01-15)")
    again = sepa.import_returns(ctx, data, filename="status.xml")
    assert [r.outcome for r in again if r.end_to_end_id == item_a.end_to_end_id] == [
        "already_returned"
    ]


def test_pain_002_group_rejection_returns_every_debit(engine: str) -> None:
    ctx, (a, b) = setup(2)
    ia, ib = issued(ctx, a, "10.00"), issued(ctx, b, "20.00")
    batch = sepa.create_batch(ctx, collection_date=COLLECT).batch
    report = sepa.import_returns(ctx, pain002(batch.message_id, [], group="FF01"))
    assert sorted(r.outcome for r in report) == ["returned", "returned"]
    assert {Invoice.objects.get(pk=i.pk).status for i in (ia, ib)} == {Status.ISSUED}


def test_camt_054_return_and_bad_files(engine: str) -> None:
    ctx, (customer,) = setup()
    invoice = issued(ctx, customer, "75.00")
    batch = sepa.create_batch(ctx, collection_date=COLLECT).batch
    sepa.settle_batch(ctx, batch.id)
    item = DebitItem.objects.get(batch=batch)
    camt = f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><BkToCstmrDbtCdtNtfctn>
<GrpHdr><MsgId>N1</MsgId><CreDtTm>2027-01-20T10:00:00</CreDtTm></GrpHdr>
<Ntfctn><Id>N1-1</Id><Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id><Ccy>EUR</Ccy></Acct>
<Ntry><Amt Ccy="EUR">75.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2027-01-20</Dt></BookgDt><NtryDtls><TxDtls>
<Refs><EndToEndId>{item.end_to_end_id}</EndToEndId></Refs>
<Amt Ccy="EUR">75.00</Amt><CdtDbtInd>DBIT</CdtDbtInd>
<RtrInf><Rsn><Cd>MD06</Cd></Rsn></RtrInf>
</TxDtls></NtryDtls></Ntry></Ntfctn></BkToCstmrDbtCdtNtfctn></Document>""".encode()
    report = sepa.import_returns(ctx, camt, filename="notif.xml")
    assert [(r.outcome, r.reason_code) for r in report] == [("returned", "MD06")]
    assert Invoice.objects.get(pk=invoice.pk).status == Status.ISSUED
    item.payment.refresh_from_db()
    assert "MD06 Refund requested by the debtor (2027-01-20)" in item.payment.return_reason
    for bad, code in ((b"<Document", "sepa.bad_returns_file"),
                      (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>',
                       "sepa.bad_returns_file")):  # fmt: skip
        with pytest.raises(BusinessError) as err:
            sepa.import_returns(ctx, bad, filename="bad.xml")
        assert err.value.code == code


@dataclass(frozen=True)
class IssuedWithAutoPay(SubscriptionInvoiceIssued):
    """The event as the subscriptions app makes it once it carries ``auto_pay``."""

    auto_pay: str = "none"


def publish_autopay(invoice: Invoice, method: str) -> None:
    from facturo.payments import autopay

    fields = {f for f in SubscriptionInvoiceIssued.__dataclass_fields__}
    kwargs = dict(organization_id=invoice.organization_id, subscription_id=uuid.uuid4(),
                  invoice_id=invoice.pk, period_start=COLLECT, period_end=COLLECT)  # fmt: skip
    if "auto_pay" in fields:
        events.publish(SubscriptionInvoiceIssued(**kwargs, auto_pay=method))  # type: ignore[call-arg]
    else:
        autopay.on_subscription_invoice_issued(IssuedWithAutoPay(**kwargs, auto_pay=method))


def test_auto_pay_by_sepa_is_collected_by_the_next_batch(engine: str) -> None:
    ctx, (customer,) = setup()
    no_mandate = make_customer(ctx, name="Sans mandat", siren="", vat_number="")
    later = issued(ctx, customer, "30.00")
    orphan = issued(ctx, no_mandate, "12.00")
    collect = later.issue_date + dt.timedelta(days=2)
    assert later.due_date > collect  # not due yet: only auto-pay brings it in
    publish_autopay(later, "sepa")
    publish_autopay(later, "sepa")  # redelivered: still one request
    publish_autopay(orphan, "sepa")
    assert AutoPayRequest.objects.get(invoice=later).state == "queued"
    assert AutoPayRequest.objects.get(invoice=orphan).state == "skipped"
    assert sepa.create_batch(ctx, collection_date=collect, invoice_ids=[]).batch is None
    batch = sepa.create_batch(ctx, collection_date=collect).batch  # before its due date
    assert batch is not None
    assert batch.count == 1
    assert Invoice.objects.get(pk=later.pk).status == Status.PAID
    request = AutoPayRequest.objects.get(invoice=later)
    assert (request.state, request.note) == ("collected", batch.message_id)


def test_batch_reads_do_not_grow_with_the_number_of_debits(engine: str) -> None:
    """Regression (N+1): mandates, earlier collections and amounts due are read in bulk;
    what remains per debit is writing it (payment, allocation, audit, e-mail)."""

    def queries_for(n: int) -> int:
        ctx, customers = setup(n)
        for c in customers:
            issued(ctx, c, "10.00")
        notify.save_settings(ctx, notify_on_payment="none")
        with CaptureQueriesContext(connections[current_alias()]) as q:
            assert sepa.create_batch(ctx, collection_date=COLLECT).batch.count == n
        mandate_reads = [x for x in q.captured_queries
                         if x["sql"].startswith("SELECT") and '"payments_mandate"' in x["sql"]
                         and "FROM \"payments_mandate\"" in x["sql"]]  # fmt: skip
        return len(q.captured_queries), len(mandate_reads)

    (two, mandates_two), (six, mandates_six) = queries_for(2), queries_for(6)
    print(f"create_batch queries: 2 debits {two}, 6 debits {six}, {(six - two) / 4} per debit")
    assert mandates_two == mandates_six  # one read of the mandates, whatever their number


def test_billing_run_of_an_auto_pay_subscription_is_collected_by_sepa(engine: str) -> None:
    """The whole path: subscription set to auto-pay by SEPA → billing run issues the invoice
    → queued → the next batch collects it (the event comes from the real billing run)."""
    import time_machine

    from facturo.subscriptions import billing
    from facturo.subscriptions import services as subs

    ctx, (customer,) = setup()
    day = dt.date(2027, 3, 10)
    with time_machine.travel(dt.datetime(2027, 3, 10, 9, 0, tzinfo=dt.UTC), tick=False):
        line = [{"description": "Maintenance", "unit_price": "30.00", "vat_rate": "20"}]
        subs.create_subscription(ctx, customer.id, start_date="2027-03-01", lines=line,
                                 auto_pay="sepa")  # fmt: skip
        run = billing.start_run(day, ctx.organization.id)
        billing.run_billing(day, ctx.organization.id, run=run)
    request = AutoPayRequest.objects.get()
    assert request.state == "queued"
    batch = sepa.create_batch(ctx, collection_date=day + dt.timedelta(days=2)).batch
    assert batch is not None
    assert AutoPayRequest.objects.get().state == "collected"
    assert Invoice.objects.get(pk=request.invoice_id).status == Status.PAID
