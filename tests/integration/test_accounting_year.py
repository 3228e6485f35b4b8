"""A generated year of activity through the real services (invoices, deposits, credit
notes, payments with fees, partial payments, overpayments and refunds, SEPA returns, bank
fees), then the books are checked against the business data:

- the trial balance balances (for the year and overall);
- each customer's auxiliary balances equal what payments says is due and their credit;
- the VAT collected and pending equals the VAT of the issued documents, and once fully
  paid the VAT on receipts is all collected;
- the FEC of the year passes the checker; the hash chain verifies.

300 invoices by default; 5,000 with FACTURO_SLOW_TESTS=1. Runs on one engine: PostgreSQL
when it is reachable, else SQLite."""

from __future__ import annotations

import datetime as dt
import os
import random
import time
import uuid
from collections import defaultdict
from decimal import Decimal

import pytest
from django.utils import timezone

from facturo.accounting import exports, selectors, services
from facturo.accounting.integrity import verify_ledger
from facturo.accounting.models import Entry, EntryLine
from facturo.accounting.posting import customer_code
from facturo.banking import events as bank_events
from facturo.core.ledger import Balance
from facturo.formats.fec import check_fec
from facturo.foundation import events
from facturo.foundation.db import atomic
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from facturo.payments import sepa
from facturo.payments import services as payments
from tests.conftest import _postgres_reachable
from tests.factories import make_customer, make_org

D = Decimal
SLOW = os.environ.get("FACTURO_SLOW_TESTS") == "1"
N_INVOICES = 5000 if SLOW else 300

RATES = [(D(20), "S"), (D(10), "S"), (D("5.5"), "S")]


def _lines(rng: random.Random, customer_kind: str) -> list[dict[str, object]]:
    out = []
    for _ in range(rng.randint(1, 3)):
        rate, category = rng.choice(RATES)
        if customer_kind == "eu":
            rate, category = D(0), "AE"
        elif customer_kind == "export":
            rate, category = D(0), "G"
        out.append(
            {
                "description": rng.choice(["Conseil", "Formation", "Lampe", "Câble"]),
                "quantity": D(rng.randint(1, 5)),
                "unit_price": D(rng.randint(500, 250000)) / 100,
                "vat_rate": rate,
                "vat_category": category,
                "nature": rng.choice(["services", "goods"]),
                "discount_percent": rng.choice([D(0), D(0), D(10)]),
            }
        )
    return out


def test_generated_year_books_match_business_data(engine: str) -> None:
    if engine == "sqlite" and _postgres_reachable() is None:
        pytest.skip("runs on PostgreSQL when it is reachable (one engine is enough)")
    started = time.perf_counter()
    rng = random.Random(7)
    org, ctx = make_org()
    year = timezone.localdate().year - 1
    services.add_fiscal_year(ctx, dt.date(year, 1, 1), dt.date(year, 12, 31))
    services.add_fiscal_year(ctx, dt.date(year + 1, 1, 1), dt.date(year + 1, 12, 31))
    customers = [(make_customer(ctx, name=f"Client {i:02d}"), "france") for i in range(30)]
    customers.append(
        (
            make_customer(ctx, name="Lampen GmbH", country_code="DE", siren="",
                          vat_number="DE136695976", postcode="10115", city="Berlin"),
            "eu",
        )
    )  # fmt: skip
    customers.append(
        (
            make_customer(ctx, name="Lamps Inc", country_code="US", siren="", vat_number="",
                          postcode="10001", city="New York"),
            "export",
        )
    )  # fmt: skip
    days = sorted(
        dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(365)) for _ in range(N_INVOICES)
    )
    last_day = dt.date(year, 12, 31)
    pending_payments: dict[dt.date, list[tuple[object, Invoice, str]]] = defaultdict(list)
    open_deposits: dict[object, Invoice] = {}
    credit_days: list[tuple[dt.date, Invoice]] = []
    counts: dict[str, int] = defaultdict(int)

    def pay_due(until: dt.date) -> None:
        for day in sorted(d for d in pending_payments if d <= until):
            for customer, invoice, how in pending_payments.pop(day):
                fresh = Invoice.objects.get(pk=invoice.pk)
                due = payments.amount_due(fresh)
                if due <= 0:
                    continue
                if how == "partial":
                    due = (due / 2).quantize(D("0.01"))
                method = {"sepa": "sepa_debit", "card": "card"}.get(how, "transfer")
                fees = D("0.25") + (due * D("0.014")).quantize(D("0.01")) if how == "card" else 0
                amount = due + (D("5.00") if how == "over" else 0)
                pay = payments.record_payment(
                    ctx, customer_id=customer.id, amount=str(amount), currency="EUR",  # type: ignore[attr-defined]
                    method=method, received_on=day, fees=str(fees),
                    allocations=[(invoice.pk, str(due))],
                )  # fmt: skip
                counts[f"payment_{how}"] += 1
                if how == "sepa" and rng.random() < 0.2:
                    sepa.record_return(ctx, pay.pk, reason_code="AM04", returned_on=day)
                    counts["sepa_return"] += 1
                if how == "over" and rng.random() < 0.5:
                    payments.refund(ctx, customer_id=customer.id, amount="5.00",  # type: ignore[attr-defined]
                                    refunded_on=day)  # fmt: skip
                    counts["refund"] += 1

    for i, day in enumerate(days):
        pay_due(day)
        for cday, original in [c for c in credit_days if c[0] <= day]:
            credit_days.remove((cday, original))
            invoicing.issue_invoice(
                ctx,
                invoicing.create_credit_note(ctx, original.pk, reason="Retour").pk,
                issue_date=day,
                render=False,
            )
            counts["credit_note"] += 1
        customer, kind = rng.choice(customers)
        if i % 97 == 5 and kind == "france" and customer.pk not in open_deposits:
            deposit = invoicing.create_draft(ctx, customer.id, _lines(rng, kind), kind="deposit")
            open_deposits[customer.pk] = invoicing.issue_invoice(
                ctx, deposit.pk, issue_date=day, render=False
            )
            pending_payments[day].append((customer, open_deposits[customer.pk], "transfer"))
            counts["deposit"] += 1
            continue
        draft = invoicing.create_draft(ctx, customer.id, _lines(rng, kind))
        deposit_ = open_deposits.get(customer.pk)
        if (
            deposit_ is not None
            and rng.random() < 0.5
            and invoicing.draft_totals(Invoice.objects.get(pk=draft.pk)).tax_inclusive
            > (deposit_.total_incl_vat or 0)
        ):
            invoicing.deduct_deposit(ctx, draft.pk, open_deposits.pop(customer.pk).pk)
            counts["final_invoice"] += 1
        invoice = invoicing.issue_invoice(ctx, draft.pk, issue_date=day, render=False)
        counts["invoice"] += 1
        roll = rng.random()
        pay_on = min(day + dt.timedelta(days=rng.randint(0, 45)), last_day)
        if roll < 0.04:
            credit_days.append((min(day + dt.timedelta(days=rng.randint(1, 20)), last_day),
                                invoice))  # fmt: skip
        if roll < 0.55:
            pending_payments[pay_on].append((customer, invoice, "transfer"))
        elif roll < 0.70:
            pending_payments[pay_on].append((customer, invoice, "card"))
        elif roll < 0.80:
            pending_payments[pay_on].append((customer, invoice, "sepa"))
        elif roll < 0.88:
            pending_payments[pay_on].append((customer, invoice, "partial"))
        elif roll < 0.92:
            pending_payments[pay_on].append((customer, invoice, "over"))
    pay_due(last_day)
    for day, original in credit_days:
        invoicing.issue_invoice(
            ctx, invoicing.create_credit_note(ctx, original.pk).pk, issue_date=day, render=False
        )
        counts["credit_note"] += 1
    with atomic():
        for _month in range(1, 13):
            events.publish(
                bank_events.BankFeeRecorded(org.id, uuid.uuid4(), D("7.50"), "EUR", "627")
            )
            counts["bank_fee"] += 1
    generated = time.perf_counter() - started
    assert counts["invoice"] + counts["deposit"] >= N_INVOICES * 0.99
    assert counts["credit_note"]
    assert counts["sepa_return"]
    assert counts["payment_card"]

    # 1. The trial balance balances, overall and for the fiscal year.
    for start, end in ((None, None), (dt.date(year, 1, 1), dt.date(year, 12, 31))):
        tb = selectors.trial_balance(org.id, start, end)
        assert sum(r.debit for r in tb) == sum(r.credit for r in tb) > 0

    # 2. Customer ledgers equal what payments says is due, and the customers' credit.
    owed = selectors.auxiliary_totals(org.id, "411")
    credit = selectors.auxiliary_totals(org.id, "4197")
    issued = list(Invoice.objects.filter(organization=org).exclude(status=Status.DRAFT))
    for customer, _kind in customers:
        code = customer_code(customer.id)
        due = sum(
            (payments.amount_due(inv) for inv in issued if inv.customer_id == customer.pk), D(0)
        )
        assert owed.get(code, Balance()).balance == due, customer.name
        assert -credit.get(code, Balance()).balance == payments.customer_credit(customer)

    # 3. VAT: collected + pending = VAT of the documents; paid invoices have no VAT pending.
    totals = selectors.account_totals(org.id)
    vat_books = -sum(
        (b.balance for n, b in totals.items() if n.startswith(("44571", "44574"))), D(0)
    )
    vat_docs = sum(
        (-(inv.total_vat or 0) if inv.kind == "credit_note" else (inv.total_vat or 0))
        for inv in issued
    )
    assert vat_books == vat_docs
    per_invoice_pending = EntryLine.objects.filter(
        organization=org, account__startswith="44574"
    ).count()
    assert per_invoice_pending > 0
    rows = selectors.vat_return(org.id, services._books(ctx).settings, dt.date(year, 1, 1),
                                dt.date(year + 1, 12, 31))  # fmt: skip
    assert sum((r.due for r in rows), D(0)) == -sum(
        (b.balance for n, b in totals.items() if n.startswith("44571")), D(0)
    )

    # 4. The FEC of the year passes the checker; the chain verifies.
    name, data = exports.fec(ctx, year)
    assert name == f"{org.siren}FEC{year}1231.txt"
    report = check_fec(data, fiscal_year_start=dt.date(year, 1, 1),
                       fiscal_year_end=dt.date(year, 12, 31))  # fmt: skip
    assert report.ok, report.errors[:5]
    assert report.entries == Entry.objects.filter(date__year=year).count()
    assert EntryLine.objects.exclude(lettering="").exists()
    assert verify_ledger(org) == []
    print(  # the timing, shown with -s
        f"\n{dict(counts)}; {Entry.objects.count()} entries; generated in {generated:.1f} s, "
        f"checked in {time.perf_counter() - started - generated:.1f} s"
    )
