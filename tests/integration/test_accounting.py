"""The ledger fed by business events: hand-computed golden entries for every event type,
lettering, immutability and the hash chain, period close, bad input (SQLite and
PostgreSQL). Amounts below are computed by hand in the comments."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connections, transaction
from django.utils import timezone
from typer.testing import CliRunner

from facturo.accounting import exports, selectors, services
from facturo.accounting.integrity import verify_ledger
from facturo.accounting.models import Entry, EntryLine, LedgerState
from facturo.accounting.posting import customer_code
from facturo.banking import events as bank_events
from facturo.cli import app
from facturo.core.errors import BusinessError
from facturo.formats.fec import check_fec
from facturo.foundation import events
from facturo.foundation.db import current_alias
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice
from facturo.payments import services as payments
from tests.factories import make_customer, make_org

D = Decimal
runner = CliRunner()


def mixed_lines() -> list[dict[str, object]]:
    return [
        {"description": "Audit", "quantity": D(1), "unit_price": D("1000.00"), "vat_rate": D(20),
         "vat_category": "S", "nature": "services"},
        {"description": "Lampe", "quantity": D(2), "unit_price": D("250.00"), "vat_rate": D(20),
         "vat_category": "S", "nature": "goods"},
    ]  # fmt: skip


def issue(ctx, customer, lines, **kw):  # type: ignore[no-untyped-def]
    draft = invoicing.create_draft(ctx, customer.id, lines, **kw)
    return invoicing.issue_invoice(ctx, draft.id, render=False)


def lines_of(entry: Entry) -> list[tuple[str, str, Decimal, Decimal]]:
    return sorted(
        (x.account, x.auxiliary, x.debit, x.credit) for x in EntryLine.objects.filter(entry=entry)
    )


def entry_for(kind: str, source_id: object) -> Entry:
    return Entry.objects.get(source_kind=kind, source_id=str(source_id))


def test_invoice_payment_lettering_golden(engine: str) -> None:
    org, ctx = make_org()
    customer = make_customer(ctx)
    aux = customer_code(customer.id)
    invoice = issue(ctx, customer, mixed_lines())
    # Net 1000 (services) + 500 (goods) = 1500, VAT 20 % = 300, total 1800.
    # The VAT splits by nature: 300 × 1000/1500 = 200 on receipts (44574 1), 100 collected.
    assert lines_of(entry_for("invoice", invoice.id)) == sorted(
        [
            ("411", aux, D("1800.00"), D(0)),
            ("7061", "", D(0), D("1000.00")),
            ("7071", "", D(0), D("500.00")),
            ("445741", "", D(0), D("200.00")),
            ("445711", "", D(0), D("100.00")),
        ]
    )
    p1 = payments.record_payment(
        ctx, customer_id=customer.id, amount="900.00", currency="EUR", method="transfer",
        received_on=timezone.localdate(), reference="VIR-1",
    )  # fmt: skip
    # Payment: D 512 900 / C 4197 900; allocation: D 4197 900 / C 411 900, and half of the
    # invoice is paid so half the VAT on receipts (100) moves from 445741 to 445711.
    assert lines_of(entry_for("payment", p1.pk)) == sorted(
        [("512", "", D("900.00"), D(0)), ("4197", aux, D(0), D("900.00"))]
    )
    alloc = p1.allocations.get()
    assert lines_of(entry_for("allocation", alloc.pk)) == sorted(
        [
            ("4197", aux, D("900.00"), D(0)),
            ("411", aux, D(0), D("900.00")),
            ("445741", "", D("100.00"), D(0)),
            ("445711", "", D(0), D("100.00")),
        ]
    )
    assert not EntryLine.objects.exclude(lettering="").exists()
    payments.record_payment(
        ctx, customer_id=customer.id, amount="900.00", currency="EUR", method="card",
        received_on=timezone.localdate(), fees="1.50",
    )  # fmt: skip
    # Fully paid: the three 411 lines (1800 D, 900 C, 900 C) are lettered together.
    lettered = EntryLine.objects.filter(account="411", invoice_id=invoice.id)
    assert {x.lettering for x in lettered} == {"A"}
    assert all(x.lettering_date for x in lettered)
    fee = Entry.objects.get(source_kind="bank_fee")
    assert lines_of(fee) == sorted([("627", "", D("1.50"), D(0)), ("512", "", D(0), D("1.50"))])
    tb = {r.account: r.balance for r in selectors.trial_balance(org.id)}
    assert tb["445741"] == 0
    assert tb["445711"] == D("-300.00")
    assert tb["411"] == 0
    assert sum(tb.values()) == 0
    # Undo the first allocation: the invoice is no longer paid, the lettering goes.
    payments.unallocate(ctx, alloc.pk, reason="wrong invoice")
    assert not EntryLine.objects.exclude(lettering="").exists()
    undo = Entry.objects.get(source_kind="unallocation")
    assert lines_of(undo) == sorted(
        [
            ("411", aux, D("900.00"), D(0)),
            ("4197", aux, D(0), D("900.00")),
            ("445711", "", D("100.00"), D(0)),
            ("445741", "", D(0), D("100.00")),
        ]
    )
    assert verify_ledger(org) == []


def test_credit_note_deposit_refund_return_golden(engine: str) -> None:
    org, ctx = make_org()
    customer = make_customer(ctx)
    aux = customer_code(customer.id)
    services_only = [{"description": "Conseil", "quantity": D(1), "unit_price": D("100.00"),
                      "vat_rate": D(20), "vat_category": "S"}]  # fmt: skip
    invoice = issue(ctx, customer, services_only)  # 100 + 20 VAT on receipts = 120
    payments.record_payment(
        ctx, customer_id=customer.id, amount="60.00", currency="EUR", method="transfer",
        received_on=timezone.localdate(),
    )  # fmt: skip
    # Half paid: 10 of the 20 VAT collected. A full credit note leaves nothing owed, so
    # payments first takes the 60 back to the customer's credit (D 411 / C 4197) and the
    # 10 VAT released goes back to pending; then the credit note: 120 leaves 411, the whole
    # 20 VAT leaves 445741.
    note = invoicing.create_credit_note(ctx, invoice.id, issue=True, render=False)
    assert lines_of(Entry.objects.get(source_kind="unallocation")) == sorted(
        [
            ("411", aux, D("60.00"), D(0)),
            ("4197", aux, D(0), D("60.00")),
            ("445711", "", D("10.00"), D(0)),
            ("445741", "", D(0), D("10.00")),
        ]
    )
    assert lines_of(entry_for("credit_note", note.id)) == sorted(
        [
            ("7061", "", D("100.00"), D(0)),
            ("445741", "", D("20.00"), D(0)),
            ("411", aux, D(0), D("120.00")),
        ]
    )
    # Payments moved the 60 allocated back to the customer's credit: D 411 / C 4197.
    tb = {r.account: r.balance for r in selectors.trial_balance(org.id)}
    assert tb["411"] == 0
    assert tb["4197"] == D("-60.00")
    assert tb.get("445711", D(0)) == 0
    assert tb.get("445741", D(0)) == 0
    rows = payments.refund(
        ctx, customer_id=customer.id, amount="60.00", refunded_on=timezone.localdate(),
        credit_note_id=note.id,
    )  # fmt: skip
    assert lines_of(entry_for("refund", rows[0].pk)) == sorted(
        [("4197", aux, D("60.00"), D(0)), ("512", "", D(0), D("60.00"))]
    )
    # Deposit invoice: 4191 instead of revenue. 300 + 60 VAT (services on receipts).
    deposit = issue(ctx, customer, [dict(services_only[0], unit_price=D("300.00"))],
                    kind="deposit")  # fmt: skip
    assert lines_of(entry_for("deposit_invoice", deposit.id)) == sorted(
        [("411", aux, D("360.00"), D(0)), ("4191", aux, D(0), D("300.00")),
         ("445741", "", D(0), D("60.00"))]
    )  # fmt: skip
    # A SEPA-like return: paid then returned; its allocation is undone, then D 4197 / C 512.
    pay = payments.record_payment(
        ctx, customer_id=customer.id, amount="360.00", currency="EUR", method="sepa_debit",
        received_on=timezone.localdate(),
    )  # fmt: skip
    assert EntryLine.objects.filter(invoice_id=deposit.id).exclude(lettering="").count() == 2
    payments.return_payment(ctx, pay.pk, reason="AC04 closed account")
    back = Entry.objects.get(source_kind="payment_return")
    assert lines_of(back) == sorted(
        [("4197", aux, D("360.00"), D(0)), ("512", "", D(0), D("360.00"))]
    )
    assert not EntryLine.objects.filter(invoice_id=deposit.id).exclude(lettering="").exists()
    tb = {r.account: r.balance for r in selectors.trial_balance(org.id)}
    assert tb["411"] == D("360.00")
    assert tb.get("4197", D(0)) == 0
    assert tb["445741"] == D("-60.00")
    assert tb.get("445711", D(0)) == 0
    assert verify_ledger(org) == []


def test_banking_events_golden(engine: str) -> None:
    org, ctx = make_org()
    customer = make_customer(ctx)
    aux = customer_code(customer.id)
    invoice = issue(ctx, customer, [{"description": "Conseil", "quantity": D(1),
                                     "unit_price": D("100.00"), "vat_rate": D(20)}])  # fmt: skip
    line = uuid.uuid4()
    from facturo.foundation.db import atomic

    with atomic():
        events.publish(bank_events.WriteOffRecorded(
            org.id, line, customer.id, invoice.id, D("0.60"), "EUR", "658"))  # fmt: skip
        events.publish(bank_events.BankFeeRecorded(org.id, uuid.uuid4(), D("4.80"), "EUR", "627"))
        events.publish(bank_events.ExpenseRecorded(org.id, uuid.uuid4(), D("49.90"), "6262",
                                                   "Abonnement téléphone"))  # fmt: skip
    # Write-off of 0.60 on a 120.00 invoice (20 VAT on receipts): 0.60/120 of the VAT is
    # released as if paid = 0.10.
    assert lines_of(Entry.objects.get(source_kind="write_off")) == sorted(
        [("658", "", D("0.60"), D(0)), ("411", aux, D(0), D("0.60")),
         ("445741", "", D("0.10"), D(0)), ("445711", "", D(0), D("0.10"))]
    )  # fmt: skip
    assert lines_of(Entry.objects.get(source_kind="bank_fee")) == sorted(
        [("627", "", D("4.80"), D(0)), ("512", "", D(0), D("4.80"))]
    )
    assert lines_of(Entry.objects.get(source_kind="expense")) == sorted(
        [("6262", "", D("49.90"), D(0)), ("512", "", D(0), D("49.90"))]
    )
    with atomic():
        events.publish(bank_events.WriteOffRecorded(
            org.id, line, customer.id, invoice.id, D("0.60"), "EUR", "658", reversed=True
        ))  # fmt: skip
    reversal = Entry.objects.get(source_kind="reversal")
    assert lines_of(reversal) == sorted(
        [("658", "", D(0), D("0.60")), ("411", aux, D("0.60"), D(0)),
         ("445741", "", D(0), D("0.10")), ("445711", "", D("0.10"), D(0))]
    )  # fmt: skip
    assert reversal.reverses == Entry.objects.get(source_kind="write_off")


def test_posted_entry_is_immutable_and_check_finds_an_alteration(engine: str) -> None:
    _org, ctx = make_org()
    customer = make_customer(ctx)
    invoice = issue(ctx, customer, mixed_lines())
    entry = entry_for("invoice", invoice.id)
    conn = connections[current_alias()]
    for sql in (
        "UPDATE accounting_entry SET label = 'x' WHERE id = %s",
        "DELETE FROM accounting_entryline WHERE entry_id = %s",
        "UPDATE accounting_entryline SET debit = debit + 1 WHERE entry_id = %s",
    ):
        with (
            pytest.raises(Exception, match=r"ledger\.posted"),
            transaction.atomic(using=conn.alias),
            conn.cursor() as cur,
        ):
            cur.execute(sql, [entry.id.hex if conn.vendor == "sqlite" else entry.id])
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    # Someone with the rights to bypass the triggers alters an amount: check reports it.
    with conn.cursor() as cur:
        if conn.vendor == "postgresql":
            cur.execute("SET session_replication_role = replica")
            cur.execute(
                "UPDATE accounting_entryline SET credit = credit + 1000, debit = 0 "
                "WHERE entry_id = %s AND account = '7061'",
                [entry.id],
            )
            cur.execute("SET session_replication_role = DEFAULT")
        else:
            cur.execute("DROP TRIGGER ledger_line_immutable_u")
            cur.execute(
                "UPDATE accounting_entryline SET credit = credit + 1000 "
                "WHERE entry_id = %s AND account = '7061'",
                [entry.id.hex],
            )
            from facturo.accounting.triggers import SQLITE

            cur.execute(next(s for s in SQLITE if "ledger_line_immutable_u" in s))
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    assert "altered after posting" in result.output
    assert f"entry {entry.number}" in result.output


def test_bad_input_is_refused_and_nothing_is_posted(engine: str, tmp_path: Path) -> None:
    _org, ctx = make_org()
    customer = make_customer(ctx)
    issue(ctx, customer, mixed_lines())
    before = Entry.objects.count()
    good = [{"account": "6061", "debit": "10"}, {"account": "512", "credit": "10"}]
    day = timezone.localdate()
    with pytest.raises(BusinessError) as exc:
        services.post_manual_entry(
            ctx, journal_code="OD", date=day, label="Achat", piece_ref="F1",
            lines=[good[0], dict(good[1], credit="9.99")],
        )  # fmt: skip
    assert exc.value.code == "ledger.unbalanced"
    with pytest.raises(BusinessError) as exc:
        services.post_manual_entry(
            ctx, journal_code="OD", date=day, label="Achat", piece_ref="F1",
            lines=[good[0], dict(good[1], account="9X1")],
        )  # fmt: skip
    assert exc.value.code == "ledger.invalid_account"
    assert Entry.objects.count() == before
    with pytest.raises(BusinessError) as exc:
        exports.fec(ctx, 2031)
    assert exc.value.code == "accounting.no_fiscal_year"
    result = runner.invoke(app, ["accounting", "export-fec", "--year", "2031", "--out",
                                 str(tmp_path)])  # fmt: skip
    assert result.exit_code == 1
    assert "No fiscal year ending in 2031" in result.output
    services.post_manual_entry(ctx, journal_code="OD", date=day, label="Achat", piece_ref="F1",
                               lines=good)  # fmt: skip
    assert Entry.objects.count() == before + 1


def test_closed_period_refuses_posting_and_issuing(engine: str) -> None:
    org, ctx = make_org()
    customer = make_customer(ctx)
    last_month_end = timezone.localdate().replace(day=1) - dt.timedelta(days=1)
    services.close_period(ctx, last_month_end)
    assert LedgerState.objects.get(organization=org).locked_through == last_month_end
    draft = invoicing.create_draft(ctx, customer.id, mixed_lines())
    with pytest.raises(BusinessError) as exc:
        invoicing.issue_invoice(ctx, draft.id, issue_date=last_month_end, render=False)
    assert exc.value.code == "accounting.period_closed"
    assert last_month_end.isoformat() in exc.value.message
    # The issue was rolled back: still a draft, and the number is given back.
    assert Invoice.objects.get(pk=draft.id).number is None
    issued = invoicing.issue_invoice(ctx, draft.id, render=False)
    assert issued.number
    assert issued.number.endswith("1")
    with pytest.raises(BusinessError) as exc:
        services.post_manual_entry(
            ctx, journal_code="OD", date=last_month_end, label="x", piece_ref="x",
            lines=[{"account": "6061", "debit": "1"}, {"account": "512", "credit": "1"}],
        )  # fmt: skip
    assert exc.value.code == "accounting.period_closed"


def test_year_close_fec_export_and_check(engine: str, tmp_path: Path) -> None:
    org, ctx = make_org()
    customer = make_customer(ctx, name="Café “Zoë” & Fils")
    year = timezone.localdate().year - 1
    services.add_fiscal_year(ctx, dt.date(year, 1, 1), dt.date(year, 12, 31))
    services.add_fiscal_year(ctx, dt.date(year + 1, 1, 1), dt.date(year + 1, 12, 31))
    for month in (3, 6, 9):
        draft = invoicing.create_draft(ctx, customer.id, mixed_lines())
        invoicing.issue_invoice(ctx, draft.id, issue_date=dt.date(year, month, 15), render=False)
    payments.record_payment(
        ctx, customer_id=customer.id, amount="1800.00", currency="EUR", method="transfer",
        received_on=dt.date(year, 10, 1),
    )  # fmt: skip
    result = runner.invoke(app, ["accounting", "export-fec", "--year", str(year), "--out",
                                 str(tmp_path), "--organization", str(org.pk)])  # fmt: skip
    assert result.exit_code == 0, result.output
    path = tmp_path / f"{org.siren}FEC{year}1231.txt"
    data = path.read_bytes()
    report = check_fec(data, fiscal_year_start=dt.date(year, 1, 1),
                       fiscal_year_end=dt.date(year, 12, 31))  # fmt: skip
    assert report.ok, report.errors
    assert 'Café "Zoë" & Fils'.encode("iso-8859-15") in data  # transliterated quotes
    assert runner.invoke(app, ["accounting", "check-fec", str(path)]).exit_code == 0
    broken = tmp_path / f"{org.siren}FEC{year}1231b.txt"
    broken.write_bytes(data.replace(b"\t1800,00\t", b"\t1700,00\t", 1))
    result = runner.invoke(app, ["accounting", "check-fec", str(broken), "--end",
                                 f"{year}-12-31"])  # fmt: skip
    assert result.exit_code == 1
    assert "line 2" in result.output
    fy = services.fiscal_year_for(ctx, year)
    closed = services.close_fiscal_year(ctx, fy.pk)
    summary = closed.closing_summary or {}
    assert summary["accounts"]["411"] == ["5400.00", "1800.00"]
    assert summary["last_hash"] == Entry.objects.order_by("-number").first().hash  # type: ignore[union-attr]
    assert verify_ledger(org) == []
    draft = invoicing.create_draft(ctx, customer.id, mixed_lines())
    with pytest.raises(BusinessError):
        invoicing.issue_invoice(ctx, draft.id, issue_date=dt.date(year, 12, 31), render=False)


def test_demo_books_bank_lines_post_to_their_bank_account(engine: str) -> None:
    from facturo.demo import load_demo

    org, _created = load_demo()
    # The demo's statement: customer payments matched from it and a bank fee booked by a
    # rule go to the bank account's own journal and ledger account (BQ1 / 5121).
    bank_entries = Entry.objects.filter(organization=org, journal_code="BQ1")
    assert bank_entries.filter(source_kind="payment").exists()
    assert bank_entries.filter(source_kind="bank_fee").exists()
    assert EntryLine.objects.filter(entry__in=bank_entries, account="5121").exists()
    tb = selectors.trial_balance(org.id)
    assert sum(r.debit for r in tb) == sum(r.credit for r in tb) > 0
    assert verify_ledger(org) == []
