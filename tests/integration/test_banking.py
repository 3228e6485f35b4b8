"""Banking app on SQLite and PostgreSQL: import → auto-match → payment allocated → invoice
paid; idempotent imports; review queue; split; write-off; undo; rules; learning; bad files."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from facturo.audit.models import AuditEvent
from facturo.banking import events as bank_events
from facturo.banking import services as banking
from facturo.banking.models import BankLine, BankMatch, LineStatus
from facturo.core.bank import StatementError
from facturo.core.errors import BusinessError, ConflictError
from facturo.foundation import events
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from facturo.payments import services as payments
from facturo.payments.models import Payment, PaymentStatus
from tests.factories import make_customer, make_org

IBAN = "FR7630006000011234567890189"
CUSTOMER_IBAN = "FR1420041010050500013M02606"
DATA = Path(__file__).resolve().parents[1] / "data" / "statements"


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


def issued(ctx, customer, price: str) -> Invoice:  # type: ignore[no-untyped-def]
    draft = invoicing.create_draft(ctx, customer.id, one_line(price), currency="EUR")
    return invoicing.issue_invoice(ctx, draft.id, render=False)


def entry(
    amount: str,
    text: str = "",
    *,
    name: str = "",
    iban: str = "",
    ref: str = "",
    e2e: str = "NOTPROVIDED",
    day: str = "2026-03-02",
    strd: str = "",
    reason: str = "",
) -> str:
    value = Decimal(amount)
    ind = "CRDT" if value > 0 else "DBIT"
    role = "Dbtr" if value > 0 else "Cdtr"
    strd_xml = f"<Strd><CdtrRefInf><Ref>{strd}</Ref></CdtrRefInf></Strd>" if strd else ""
    rtr = f"<RtrInf><Rsn><Cd>{reason}</Cd></Rsn></RtrInf>" if reason else ""
    iban_xml = f"<{role}Acct><Id><IBAN>{iban}</IBAN></Id></{role}Acct>" if iban else ""
    ref_xml = f"<AcctSvcrRef>{ref}</AcctSvcrRef>" if ref else ""
    return (
        f'<Ntry><Amt Ccy="EUR">{abs(value)}</Amt><CdtDbtInd>{ind}</CdtDbtInd>'
        f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt>"
        f"{ref_xml}<NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs>"
        f"<RltdPties><{role}><Nm>{escape(name)}</Nm></{role}>{iban_xml}</RltdPties>"
        f"<RmtInf><Ustrd>{escape(text)}</Ustrd>{strd_xml}</RmtInf>{rtr}"
        "</TxDtls></NtryDtls></Ntry>"
    )


def camt(*entries: str, account: str = IBAN, currency: str = "EUR") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:'
        'xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>M</MsgId></GrpHdr><Stmt><Id>S1</Id>'
        f"<Acct><Id><IBAN>{account}</IBAN></Id><Ccy>{currency}</Ccy></Acct>"
        + "".join(entries)
        + "</Stmt></BkToCstmrStmt></Document>"
    ).encode()


@pytest.fixture
def setup(engine: str):  # type: ignore[no-untyped-def]
    _, ctx = make_org()
    account = banking.create_account(ctx, name="Compte courant", iban=IBAN, bic="AGRIFRPP")
    customer = make_customer(ctx)
    return ctx, account, customer


def status(invoice: Invoice) -> str:
    return Invoice.objects.get(pk=invoice.pk).status


def test_import_auto_match_pays_the_invoice_and_undo_reopens_it(setup) -> None:  # type: ignore[no-untyped-def]
    ctx, _account, customer = setup
    invoice = issued(ctx, customer, "1200.00")
    seen: list[object] = []
    events.subscribe(bank_events.BankLineMatched, seen.append)
    events.subscribe(bank_events.BankLineUnmatched, seen.append)
    data = camt(entry("1200.00", f"Facture {invoice.number}", name="Boulangerie Martin", ref="R1"))
    result = banking.import_statement(ctx, data, "mars.xml")
    assert (result.new, result.duplicate, len(result.rejected), result.matched) == (1, 0, 0, 1)
    assert result.summary() == "new 1, duplicate 0, rejected 0, matched 1"
    assert status(invoice) == Status.PAID
    line = BankLine.objects.get()
    assert line.status == LineStatus.MATCHED
    match = BankMatch.objects.get(line=line)
    assert match.automatic
    assert match.reason in ("number", "reference")
    payment = Payment.objects.get(customer=customer)
    assert payment.amount == Decimal("1200.00")
    assert payment.received_on == dt.date(2026, 3, 2)
    assert [type(e).__name__ for e in seen] == ["BankLineMatched"]
    # The same file again: nothing new, nothing matched twice.
    again = banking.import_statement(ctx, data, "mars.xml")
    assert (again.new, again.duplicate, again.matched) == (0, 1, 0)
    assert Payment.objects.filter(customer=customer).count() == 1
    # Undo: the payment is taken back, the invoice reopens, the line is back in the queue.
    banking.undo_match(ctx, match.pk, reason="wrong customer")
    assert status(invoice) == Status.ISSUED
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.RETURNED
    assert BankLine.objects.get().status == LineStatus.UNMATCHED
    assert type(seen[-1]).__name__ == "BankLineUnmatched"
    assert AuditEvent.objects.filter(action="bank.line_unmatched").count() == 1
    # Undoing twice is harmless; matching again pays the invoice again.
    banking.undo_match(ctx, match.pk)
    run = banking.run_matching(ctx)
    assert run.confirmed == 1
    assert status(invoice) == Status.PAID


def test_overlap_and_camt054_then_camt053_create_no_duplicate(setup) -> None:  # type: ignore[no-untyped-def]
    ctx, _account, _customer = setup
    first = camt(entry("10.00", "a", ref="A1"), entry("20.00", "b", ref="A2"))
    second = camt(entry("20.00", "b", ref="A2"), entry("30.00", "c", ref="A3"))
    assert banking.import_statement(ctx, first, "1.xml").new == 2
    r = banking.import_statement(ctx, second, "2.xml")
    assert (r.new, r.duplicate) == (1, 1)
    # A notification without the bank reference, then the statement with it: same e2e id.
    note = camt(entry("40.00", "d", e2e="E2E-40"))
    stmt = camt(entry("40.00", "d", e2e="E2E-40", ref="A4"))
    assert banking.import_statement(ctx, note, "n.xml").new == 1
    assert banking.import_statement(ctx, stmt, "s.xml").duplicate == 1
    assert BankLine.objects.count() == 4
    # The repository's own CAMT.054 sample: same transaction twice → one line.
    sample = (DATA / "camt054_v08_credit_notification.xml").read_bytes()
    n1 = banking.import_statement(ctx, sample, "camt054.xml", auto_match=False)
    n2 = banking.import_statement(ctx, sample, "camt054.xml", auto_match=False)
    assert n1.new >= 1
    assert n2.new == 0
    assert n2.duplicate == n1.new


def test_other_account_other_currency_and_bad_rows(setup) -> None:  # type: ignore[no-untyped-def]
    ctx, account, _customer = setup
    with pytest.raises(StatementError) as exc:
        banking.import_statement(
            ctx, camt(entry("1.00"), account=CUSTOMER_IBAN), "x.xml", account_id=account.pk
        )
    assert exc.value.code == "statement.other_account"
    assert CUSTOMER_IBAN in exc.value.message
    with pytest.raises(StatementError) as exc:
        banking.import_statement(ctx, camt(entry("1.00"), account=CUSTOMER_IBAN), "x.xml")
    assert exc.value.code == "statement.unknown_account"
    with pytest.raises(StatementError) as exc:
        banking.import_statement(ctx, camt(entry("1.00"), currency="USD"), "usd.xml")
    assert exc.value.code == "statement.other_currency"
    assert "USD" in exc.value.message
    bad = (DATA / "hostile" / "camt053_bad_amount.xml").read_bytes()
    with pytest.raises(StatementError):
        banking.import_statement(ctx, bad, "bad.xml", account_id=account.pk)
    assert BankLine.objects.count() == 0
    for name in ("xxe.xml", "billion_laughs.xml", "truncated_camt053.xml"):
        with pytest.raises(StatementError):
            banking.import_statement(
                ctx, (DATA / "hostile" / name).read_bytes(), name, account_id=account.pk
            )
    assert BankLine.objects.count() == 0


def test_import_valid_lines_reports_the_rejected_rows(setup) -> None:  # type: ignore[no-untyped-def]
    ctx, account, _customer = setup
    banking.save_csv_mapping(
        ctx,
        account.pk,
        {
            "date_column": "Date",
            "amount_column": "Montant",
            "remittance_columns": ["Libellé"],
            "date_format": "%d/%m/%Y",
            "decimal_separator": ",",
        },
    )
    data = (
        "Date;Libellé;Montant\n02/03/2026;VIR A;12,50\n"
        "31/02/2026;VIR B;3,00\n03/03/2026;VIR C;abc\n"
    )
    with pytest.raises(StatementError):
        banking.import_statement(ctx, data.encode(), "b.csv", account_id=account.pk)
    assert BankLine.objects.count() == 0
    result = banking.import_statement(
        ctx, data.encode(), "b.csv", account_id=account.pk, import_valid_lines=True
    )
    assert result.new == 1
    assert len(result.rejected) == 2
    assert all(r.position.startswith("line") and r.reason for r in result.rejected)
    assert result.imports[0].rejected_count == 2


def test_review_queue_split_write_off_and_learning(setup) -> None:  # type: ignore[no-untyped-def]
    ctx, _account, customer = setup
    other = make_customer(ctx, name="Garage Dupont", siren="", vat_number="")
    a = issued(ctx, customer, "100.00")
    b = issued(ctx, customer, "50.00")
    c = issued(ctx, other, "70.00")
    # Amount only, no reference, unknown name: a suggestion waits for review.
    data = camt(
        entry("70.00", "virement", name="X Y", ref="Q1"),
        entry("220.00", "regroupe", name="Z", ref="Q2"),
        entry("97.50", "paiement", name="Inconnu", ref="Q3"),
    )
    result = banking.import_statement(ctx, data, "q.xml")
    assert result.matched == 0
    lines = {str(x.amount.quantize(Decimal("0.01"))): x for x in BankLine.objects.all()}
    review = lines["70.00"]
    assert review.status == LineStatus.SUGGESTED
    assert review.suggestion["confidence"] < 90
    # Accept with one action.
    banking.accept_suggestion(ctx, review.pk)
    assert status(c) == Status.PAID
    # Split one line across invoices of two customers.
    c2 = issued(ctx, other, "70.00")
    banking.confirm_payment(
        ctx, lines["220.00"].pk, [(a.pk, "100.00"), (b.pk, "50.00"), (c2.pk, "70.00")]
    )
    assert {status(a), status(b), status(c2)} == {Status.PAID}
    assert Payment.objects.filter(reference__contains="regroupe").count() == 2
    # Write off a small difference (the payment carries it as fees).
    d = issued(ctx, customer, "100.00")
    offs: list[bank_events.WriteOffRecorded] = []
    events.subscribe(bank_events.WriteOffRecorded, offs.append)
    with pytest.raises(BusinessError) as exc:
        banking.confirm_payment(ctx, lines["97.50"].pk, [(d.pk, "100.00")], write_off="250")
    assert exc.value.code == "bank.write_off_too_large"
    banking.confirm_payment(ctx, lines["97.50"].pk, [(d.pk, "100.00")], write_off="2.50")
    assert status(d) == Status.PAID
    assert offs[-1].amount == Decimal("2.50")
    assert offs[-1].account == "658"
    assert offs[-1].invoice_id == d.pk
    assert offs[-1].payment_id is not None
    pay = Payment.objects.get(pk=offs[-1].payment_id)
    assert (pay.amount, pay.fees) == (Decimal("100.00"), Decimal("2.50"))
    # The books see the write-off once: the invoice's customer lines net to zero, the 2.50
    # sits in 658 (moved out of the 627 fees the payment booked), the bank holds 97.50.
    from facturo.accounting.models import EntryLine

    def net(**where: object) -> Decimal:
        rows = EntryLine.objects.filter(organization=ctx.organization, **where)
        return sum((r.debit - r.credit for r in rows), Decimal(0))

    assert net(account="411", invoice_id=d.pk) == 0
    assert net(account="658") == Decimal("2.50")
    assert net(account="627") == 0
    assert net(account__startswith="512", entry__source_id=str(pay.pk)) == Decimal("97.50")
    with pytest.raises(ConflictError):
        banking.confirm_payment(ctx, lines["97.50"].pk, [(d.pk, "1.00")])
    # Learned: the name confirmed by hand for Garage Dupont suggests its next invoice.
    e = issued(ctx, other, "33.00")
    banking.import_statement(ctx, camt(entry("33.00", "merci", name="X Y", ref="Q9")), "l.xml")
    learned = BankLine.objects.get(bank_reference="Q9")
    assert learned.suggestion
    assert learned.suggestion["allocations"][0][0] == str(e.pk)


def test_rules_expense_and_customer(setup) -> None:  # type: ignore[no-untyped-def]
    ctx, _account, customer = setup
    fees: list[bank_events.BankFeeRecorded] = []
    events.subscribe(bank_events.BankFeeRecorded, fees.append)
    banking.create_rule(
        ctx, name="Frais", label_contains="FRAIS TENUE", target_kind="fee",
        ledger_account="627", action="confirm",
    )  # fmt: skip
    banking.create_rule(
        ctx, name="Loyer", label_regex=r"^loyer \d+", target_kind="expense",
        ledger_account="6132", action="suggest",
    )  # fmt: skip
    inv = issued(ctx, customer, "80.00")
    banking.create_rule(
        ctx, name="Martin", counterparty_contains="MARTIN", customer_id=customer.pk,
        action="confirm",
    )  # fmt: skip
    data = camt(
        entry("-12.00", "FRAIS TENUE DE COMPTE", ref="F1"),
        entry("-900.00", "LOYER 03", ref="F2"),
        entry("80.00", "virement", name="M. MARTIN", ref="F3"),
    )
    result = banking.import_statement(ctx, data, "r.xml")
    assert result.matched == 2
    assert fees[-1].amount == Decimal("12.00")
    assert fees[-1].account == "627"
    rent = BankLine.objects.get(bank_reference="F2")
    assert rent.status == LineStatus.SUGGESTED
    assert rent.suggestion["kind"] == "expense"
    assert status(inv) == Status.PAID
    banking.accept_suggestion(ctx, rent.pk)
    match = BankMatch.objects.get(line=rent)
    assert match.ledger_account == "6132"
    banking.undo_match(ctx, match.pk)
    assert BankLine.objects.get(pk=rent.pk).status == LineStatus.UNMATCHED


def test_another_organization_sees_nothing(setup) -> None:  # type: ignore[no-untyped-def]
    ctx, _account, customer = setup
    banking.import_statement(ctx, camt(entry("5.00", ref="Z1")), "z.xml")
    line = BankLine.objects.get()
    _, other = make_org("other@example.com", siren="552100554", siret="", vat_number="")
    with pytest.raises(BusinessError) as exc:
        banking.get_line(other, line.pk)
    assert exc.value.code == "bank.line_not_found"
    with pytest.raises(BusinessError):
        banking.import_statement(other, camt(entry("5.00", ref="Z1")), "z.xml")
    assert payments.customer_credit(customer) == Decimal(0)


def test_our_sepa_debits_are_settled_then_a_return_reopens_the_invoice(engine: str) -> None:
    from facturo.payments import sepa
    from facturo.payments.models import DebitItem
    from tests.integration.test_sepa import mandate, setup

    ctx, customer = setup()
    banking.create_account(ctx, name="Compte", iban=IBAN)
    mandate(ctx, customer)
    first = issued(ctx, customer, "45.00")
    second = issued(ctx, make_customer(ctx, name="Garage Dupont", siren="", vat_number=""), "9")
    mandate(ctx, Invoice.objects.get(pk=second.pk).customer, iban=CUSTOMER_IBAN)
    batch = sepa.create_batch(ctx, collection_date=dt.date(2027, 1, 15)).batch
    assert batch is not None
    items = {i.payment.customer_id: i for i in DebitItem.objects.filter(batch=batch)}
    one, two = items[customer.pk], items[Invoice.objects.get(pk=second.pk).customer_id]
    # The bank credits the two debits (one line each, with our end-to-end ids).
    data = camt(
        entry("45.00", "PRLV SEPA", e2e=one.end_to_end_id, ref="S1", day="2027-01-15"),
        entry("9.00", "PRLV SEPA", e2e=two.end_to_end_id, ref="S2", day="2027-01-15"),
    )
    result = banking.import_statement(ctx, data, "prlv.xml")
    assert result.matched == 2
    assert Payment.objects.get(pk=one.payment_id).status == PaymentStatus.RECEIVED
    assert BankMatch.objects.filter(kind="settlement").count() == 2
    with pytest.raises(ConflictError):  # the batch is settled: undo would lie
        banking.undo_match(ctx, BankMatch.objects.filter(kind="settlement").first().pk)
    # Then the first debit comes back (insufficient funds).
    back = camt(entry("-45.00", "RETOUR PRLV", e2e=one.end_to_end_id, ref="S3",
                      day="2027-01-20", reason="AM04"))  # fmt: skip
    assert banking.import_statement(ctx, back, "retour.xml").matched == 1
    payment = Payment.objects.get(pk=one.payment_id)
    assert payment.status == PaymentStatus.RETURNED
    assert "AM04" in payment.return_reason
    assert status(first) == Status.ISSUED


def test_a_debit_pays_a_recorded_refund(setup) -> None:  # type: ignore[no-untyped-def]
    ctx, _account, customer = setup
    payments.record_payment(ctx, customer_id=customer.id, amount="50.00", currency="EUR",
                            method="transfer", received_on=dt.date(2026, 3, 1),
                            auto_allocate=False)  # fmt: skip
    [refund] = payments.refund(ctx, customer_id=customer.id, amount="30.00",
                               refunded_on=dt.date(2026, 3, 3))  # fmt: skip
    data = camt(
        entry("-30.00", "REMBOURSEMENT", name="BOULANGERIE MARTIN", ref="RF1", day="2026-03-04"),
        entry("-30.00", "AUTRE", name="Inconnu SA", ref="RF2", day="2026-03-04"),
    )
    result = banking.import_statement(ctx, data, "remb.xml")
    assert result.matched == 1
    match = BankMatch.objects.get(kind="refund")
    assert match.refund_ids == [str(refund.pk)]
    assert match.line.bank_reference == "RF1"
    # The refund is taken: the other debit of the same amount is left unmatched.
    assert BankLine.objects.get(bank_reference="RF2").status == LineStatus.UNMATCHED


def test_the_hourly_job_matches_lines_imported_before_their_invoice(setup) -> None:  # type: ignore[no-untyped-def]
    from facturo.jobs import tasks

    ctx, _account, customer = setup
    # A first payment from this IBAN, matched by hand, teaches the IBAN.
    first = issued(ctx, customer, "10.00")
    banking.import_statement(ctx, camt(entry("10.00", "x", iban=CUSTOMER_IBAN, ref="J0")), "0")
    banking.confirm_payment(ctx, BankLine.objects.get(bank_reference="J0").pk, [(first.pk, "10")])
    data = camt(entry("240.00", "acompte commande 12", iban=CUSTOMER_IBAN, ref="J1"))
    assert banking.import_statement(ctx, data, "avant.xml").matched == 0
    invoice = issued(ctx, customer, "240.00")
    tasks.bank_rematch.call_local()
    assert status(invoice) == Status.PAID
    assert BankLine.objects.get(bank_reference="J1").status == LineStatus.MATCHED
    tasks.bank_rematch.call_local()  # twice: nothing more
    assert Payment.objects.filter(customer=customer).count() == 2


def test_reconciliation_report_balances_and_discrepancies(setup) -> None:  # type: ignore[no-untyped-def]
    from facturo.banking import exports, selectors
    from facturo.banking.samples import SampleEntry, camt053

    ctx, account, customer = setup
    invoice = issued(ctx, customer, "100.00")
    day = dt.date(2026, 3, 10)
    march = camt053(IBAN, [
        SampleEntry(day, Decimal("100.00"), f"FACTURE {invoice.number}", bank_reference="P1"),
        SampleEntry(day, Decimal("-20.00"), '#set "frais" ] [x', bank_reference="P2"),
        SampleEntry(day, Decimal("-5.00"), "=cmd|' /C calc'!A0", bank_reference="P3"),
    ], opening=Decimal("1000.00"), statement_id="MARS")  # fmt: skip
    banking.import_statement(ctx, march, "mars.xml")
    report = selectors.reconciliation_report(ctx, account.pk, dt.date(2026, 3, 1), day)
    assert report.opening_balance == Decimal("1000.00")
    assert report.closing_balance == Decimal("1075.00")
    assert report.computed_closing == Decimal("1075.00")
    assert (report.matched_count, report.unmatched_count) == (1, 2)
    assert report.unmatched_total == Decimal("-25.00")
    assert report.discrepancies == []
    pdf = exports.report_pdf(report, "Atelier")
    assert pdf.startswith(b"%PDF")
    csv = exports.report_csv(report).decode("utf-8-sig")
    assert ";'=cmd|" in csv
    # A statement whose stated closing balance the lines do not reach: a discrepancy.
    april = camt053(IBAN, [SampleEntry(dt.date(2026, 4, 2), Decimal("10.00"), "x",
                                       bank_reference="P4")],
                    opening=Decimal("1075.00"), statement_id="AVRIL")  # fmt: skip
    banking.import_statement(ctx, april, "avril.xml")
    BankLine.objects.filter(bank_reference="P4").update(amount=Decimal("11.00"))
    april_report = selectors.reconciliation_report(
        ctx, account.pk, dt.date(2026, 4, 1), dt.date(2026, 4, 30)
    )
    assert april_report.opening_balance == Decimal("1075.00")
    assert any("closing balance stated" in d for d in april_report.discrepancies)


def test_a_return_already_recorded_from_the_return_file_is_only_linked(engine: str) -> None:
    from facturo.payments import sepa
    from facturo.payments.models import DebitItem
    from tests.integration.test_sepa import mandate, setup

    ctx, customer = setup()
    banking.create_account(ctx, name="Compte", iban=IBAN)
    mandate(ctx, customer)
    invoice = issued(ctx, customer, "45.00")
    batch = sepa.create_batch(ctx, collection_date=dt.date(2027, 1, 15)).batch
    assert batch is not None
    item = DebitItem.objects.get(batch=batch)
    sepa.record_return(ctx, item.payment_id, reason_code="AM04", returned_on=dt.date(2027, 1, 19))
    reason = Payment.objects.get(pk=item.payment_id).return_reason
    back = camt(entry("-45.00", "RETOUR PRLV", e2e=item.end_to_end_id, ref="S9",
                      day="2027-01-20", reason="AM04"))  # fmt: skip
    assert banking.import_statement(ctx, back, "retour.xml").matched == 1
    match = BankMatch.objects.get(kind="return")
    assert match.invoice_ids == [str(invoice.pk)]
    assert Payment.objects.get(pk=item.payment_id).return_reason == reason  # not twice
    assert status(invoice) == Status.ISSUED
