"""A generated year of activity posted through core.ledger, checked as an accountant would:
the trial balance balances, every customer's 411 balance is what they owe, 4197 their
credit, the VAT accounts hold exactly the VAT of the issued documents (pending = what is
not yet paid), and the FEC of the year passes the checker.

The activity is built from core types and ``core.totals`` only, with a seeded generator:
invoices (some with a discount, some deposit invoices deducted later), credit notes that
push paid invoices below what was allocated, exact, partial, over- and short payments,
credit applied to later invoices, refunds, card fees, monthly bank fees and SEPA returns.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal as D

from facturo.core.document import InvoiceDocument, Nature, TypeCode
from facturo.core.ledger import JournalEntry, number_entries, trial_balance
from facturo.core.ledger_chart import CustomerType, customer_type
from facturo.core.ledger_postings import (
    CreditedInvoice,
    CustomerAccount,
    ReceiptsVat,
    Settlement,
    allocation_reversed_entry,
    bank_fee_entry,
    credit_applied_entry,
    document_entry,
    overpayment_kept_entry,
    payment_entry,
    payment_returned_entry,
    receipts_vat,
    refund_entry,
    write_off_entry,
)
from facturo.core.money import ZERO, round_money
from facturo.core.tax import VatCategory
from facturo.formats.fec import check_fec, fec_filename, write_fec

from .test_ledger_support import L, make_doc, party

YEAR_START, YEAR_END = date(2026, 1, 1), date(2026, 12, 31)
CENT = D("0.01")


@dataclass
class Inv:
    number: str
    customer: CustomerAccount
    doc: InvoiceDocument
    total: D
    vat: ReceiptsVat
    credited: D = ZERO
    written_off: D = ZERO
    allocs: list[list[object]] = field(default_factory=list)  # [payment, amount]
    credit_noted: bool = False

    @property
    def allocated(self) -> D:
        return sum((a[1] for a in self.allocs), ZERO)  # type: ignore[misc]

    @property
    def settled(self) -> D:
        return self.allocated + self.written_off

    @property
    def due(self) -> D:
        return self.total - self.credited - self.settled


@dataclass
class Pay:
    ref: str
    customer: CustomerAccount
    amount: D
    allocs: dict[str, D] = field(default_factory=dict)
    refunded: D = ZERO
    kept: D = ZERO
    returned: bool = False

    @property
    def free(self) -> D:
        return self.amount - sum(self.allocs.values(), ZERO) - self.refunded - self.kept


class Year:
    def __init__(self, seed: int = 2026, per_day: int = 15):
        self.rng = random.Random(seed)
        self.per_day = per_day
        self.entries: list[JournalEntry] = []
        self.invoices: dict[str, Inv] = {}
        self.payments: list[Pay] = []
        self.payments_of: dict[str, list[Pay]] = defaultdict(list)
        self.docs: list[InvoiceDocument] = []
        countries = ["FR"] * 8 + ["DE", "BE", "US"]
        # Names with characters ISO-8859-15 lacks (’) exercise the FEC transliteration.
        self.customers = [
            CustomerAccount(f"C{i:05d}", f"Client {i} « Société » ’Test’", country)
            for i, country in enumerate((self.rng.choice(countries) for _ in range(300)), 1)
        ]
        self.counts: dict[str, int] = defaultdict(int)
        self.scheduled: dict[date, list[tuple[str, object]]] = defaultdict(list)
        self.bank = ZERO

    # --- helpers ----------------------------------------------------------------------------

    def post(self, entry: JournalEntry | None, kind: str) -> None:
        if entry is not None:
            self.entries.append(entry)
            self.counts[kind] += 1

    def _lines(self, ctype: CustomerType) -> list[L]:
        out = []
        for _ in range(self.rng.randint(1, 3)):
            nature = self.rng.choice([Nature.SERVICES, Nature.SERVICES, Nature.GOODS])
            price = D(self.rng.randint(500, 250_000)) / 100
            qty = D(self.rng.choice(["1", "2", "3", "0.5", "1.25", "7"]))
            if ctype == CustomerType.FRANCE:
                rate = self.rng.choice([D(20), D(20), D(10), D("5.5"), D("2.1")])
                out.append(L(price, rate, nature, qty))
            elif ctype == CustomerType.EU:
                cat = (
                    VatCategory.INTRA_EU_SUPPLY
                    if nature == Nature.GOODS
                    else VatCategory.REVERSE_CHARGE
                )
                out.append(L(price, D(0), nature, qty, category=cat))
            else:
                out.append(L(price, D(0), nature, qty, category=VatCategory.EXPORT))
        return out

    def issue(self, day: date, customer: CustomerAccount, lines: list[L], **kw: object) -> Inv:
        type_code = kw.pop("type_code", TypeCode.INVOICE)
        prefix = "AC" if type_code == TypeCode.DEPOSIT_INVOICE else "FA"
        number = f"{prefix}-2026-{len(self.invoices) + 1:05d}"
        doc = make_doc(
            lines,
            type_code=type_code,  # type: ignore[arg-type]
            number=number,
            issue=day,
            buyer=party(customer.name, customer.country_code),
            vat_on_debits=self.rng.random() < 0.15,
            **kw,  # type: ignore[arg-type]
        )
        self.docs.append(doc)
        self.post(document_entry(doc, customer), str(type_code))
        inv = Inv(number, customer, doc, doc.totals.tax_inclusive, receipts_vat(doc))
        self.invoices[number] = inv
        return inv

    def allocate(self, inv: Inv, pay: Pay, amount: D) -> Settlement:
        settlement = Settlement(inv.number, amount, inv.vat, inv.settled)
        inv.allocs.append([pay, amount])
        pay.allocs[inv.number] = pay.allocs.get(inv.number, ZERO) + amount
        return settlement

    # --- events -----------------------------------------------------------------------------

    def new_invoice(self, day: date) -> None:
        customer = self.rng.choice(self.customers)
        ctype = customer_type(customer.country_code)
        roll = self.rng.random()
        if roll < 0.03 and ctype == CustomerType.FRANCE:
            deposit = self.issue(
                day, customer, [L(D(self.rng.randint(100, 2000)))],
                type_code=TypeCode.DEPOSIT_INVOICE,
            )  # fmt: skip
            self.schedule_payment(deposit, day)
            self.scheduled[day + timedelta(days=self.rng.randint(5, 30))].append(("final", deposit))
            return
        discount = D(self.rng.choice([0, 0, 0, 5, 10])) if roll < 0.5 else ZERO
        inv = self.issue(day, customer, self._lines(ctype), discount=discount)
        self.apply_credit(day, inv)
        self.schedule_payment(inv, day)
        if self.rng.random() < 0.06:
            self.scheduled[day + timedelta(days=self.rng.randint(1, 60))].append(("credit", inv))

    def final_invoice(self, day: date, deposit: Inv) -> None:
        base = deposit.doc.totals.vat_groups[0].taxable_amount
        lines = [L(base * 3), L(base, deduction=True)]
        inv = self.issue(day, deposit.customer, lines)
        self.schedule_payment(inv, day)

    def schedule_payment(self, inv: Inv, day: date) -> None:
        if self.rng.random() < 0.9:
            self.scheduled[day + timedelta(days=self.rng.randint(0, 45))].append(("pay", inv))

    def apply_credit(self, day: date, inv: Inv) -> None:
        settlements = []
        for pay in self.payments_of[inv.customer.code]:
            if pay.returned or pay.free <= 0 or inv.due <= 0:
                continue
            settlements.append(self.allocate(inv, pay, min(pay.free, inv.due)))
        if settlements:
            merged = Settlement(
                inv.number,
                sum((s.amount for s in settlements), ZERO),
                inv.vat,
                settlements[0].paid_before,
            )
            self.post(
                credit_applied_entry(
                    reference=f"IMP-{inv.number}", on=day, customer=inv.customer,
                    settlements=[merged],
                ),
                "credit_applied",
            )  # fmt: skip

    def pay(self, day: date, inv: Inv) -> None:
        due = inv.due
        if due <= 0:
            return
        roll = self.rng.random()
        if roll < 0.1:
            amount = round_money(due / 2, "EUR") or due
            self.scheduled[day + timedelta(days=20)].append(("pay", inv))
        elif roll < 0.15:
            amount = due + D(self.rng.choice(["10.00", "0.15", "50.00"]))
        elif roll < 0.18 and due > 1:
            amount = due - D(self.rng.choice(["0.01", "0.30", "0.50"]))
        else:
            amount = due
        pay = Pay(f"VIR-{len(self.payments) + 1:06d}", inv.customer, amount)
        self.payments.append(pay)
        self.payments_of[inv.customer.code].append(pay)
        settlement = self.allocate(inv, pay, min(amount, due))
        self.post(
            payment_entry(
                reference=pay.ref, received_on=day, amount=amount, customer=inv.customer,
                settlements=[settlement],
            ),
            "payment",
        )  # fmt: skip
        self.bank += amount
        short = inv.due
        if 0 < short <= D("0.50") and self.rng.random() < 0.95:
            self.post(
                write_off_entry(
                    reference=f"PERTE-{inv.number}", on=day, customer=inv.customer,
                    settlement=Settlement(inv.number, short, inv.vat, inv.settled),
                ),
                "write_off",
            )  # fmt: skip
            inv.written_off += short
        if 0 < pay.free <= D("0.20"):
            self.post(
                overpayment_kept_entry(
                    reference=f"GAIN-{pay.ref}", on=day, customer=inv.customer, amount=pay.free
                ),
                "overpayment_kept",
            )
            pay.kept += pay.free
        if self.rng.random() < 0.2:  # card payment: provider fee
            fee = round_money(amount * D("0.014") + D("0.25"), "EUR")
            self.post(bank_fee_entry(reference=f"FRAIS-{pay.ref}", on=day, amount=fee), "fee")
            self.bank -= fee
        if self.rng.random() < 0.02:
            self.scheduled[day + timedelta(days=5)].append(("return", pay))

    def credit_note(self, day: date, inv: Inv) -> None:
        if inv.credited_note_blocked():
            return
        specs = [
            L(line.unit_price, line.vat_rate, Nature(line.nature), line.quantity,
              category=VatCategory(line.vat_category), discount=line.discount_percent)
            for line in inv.doc.lines
        ]  # fmt: skip
        chosen = self.rng.sample(specs, self.rng.randint(1, len(specs)))
        if len(chosen) == len(specs):
            chosen = specs  # the whole invoice, with its discount: exactly its totals
        number = f"AV-2026-{len(self.invoices) + 1:05d}"
        note = make_doc(
            chosen, type_code=TypeCode.CREDIT_NOTE, number=number, issue=day,
            buyer=inv.doc.buyer, vat_on_debits=inv.doc.vat_on_debits,
            discount=self._discount_of(inv.doc),
        )  # fmt: skip
        if note.totals.tax_inclusive > inv.total - inv.credited:
            return
        self.docs.append(note)
        self.post(
            document_entry(note, inv.customer, credited=CreditedInvoice(inv.vat, inv.settled)),
            "381",
        )
        inv.vat = inv.vat.minus(receipts_vat(note))
        inv.credited += note.totals.tax_inclusive
        inv.credit_noted = True
        excess = inv.settled - (inv.total - inv.credited)
        if excess > 0:
            before = inv.settled
            moved = ZERO
            for row in reversed(inv.allocs):
                if excess <= 0:
                    break
                pay, amount = row[0], row[1]
                take = min(amount, excess)  # type: ignore[type-var]
                row[1] = amount - take  # type: ignore[operator]
                pay.allocs[inv.number] -= take  # type: ignore[attr-defined]
                excess -= take
                moved += take
            inv.allocs = [r for r in inv.allocs if r[1]]
            self.post(
                allocation_reversed_entry(
                    reference=f"DES-{number}", on=day, customer=inv.customer,
                    settlements=[Settlement(inv.number, moved, inv.vat, before)],
                ),
                "unallocation",
            )  # fmt: skip

    @staticmethod
    def _discount_of(doc: InvoiceDocument) -> D:
        for allowance in doc.totals.allowances:
            label = allowance.reason.split()[1].replace(",", ".")
            return D(label)
        return ZERO

    def sepa_return(self, day: date, pay: Pay) -> None:
        if pay.returned or pay.refunded or pay.kept:
            return
        settlements = []
        for number, amount in pay.allocs.items():
            if not amount:
                continue
            inv = self.invoices[number]
            settlements.append(Settlement(number, amount, inv.vat, inv.settled))
            for row in inv.allocs:
                if row[0] is pay:
                    row[1] = ZERO
            inv.allocs = [r for r in inv.allocs if r[1]]
        pay.allocs = {}
        pay.returned = True
        self.post(
            payment_returned_entry(
                reference=pay.ref, on=day, customer=pay.customer, amount=pay.amount,
                settlements=settlements,
            ),
            "return",
        )  # fmt: skip
        self.bank -= pay.amount

    def month_end(self, day: date) -> None:
        self.post(
            bank_fee_entry(
                reference=f"FRAIS-{day:%Y%m}", on=day, amount=D("12.00"), vat=D("2.00"),
                label="Frais de tenue de compte",
            ),
            "fee",
        )  # fmt: skip
        self.bank -= D("12.00")
        for pay in self.payments:
            if not pay.returned and pay.free > 0 and self.rng.random() < 0.5:
                amount = pay.free
                self.post(
                    refund_entry(
                        reference=f"RB-{pay.ref}", on=day, customer=pay.customer, amount=amount
                    ),
                    "refund",
                )
                pay.refunded += amount
                self.bank -= amount

    def run(self) -> Year:
        day = YEAR_START
        while day <= YEAR_END:
            for _ in range(self.per_day):
                self.new_invoice(day)
            for kind, target in self.scheduled.pop(day, []):
                if kind == "pay":
                    self.pay(day, target)  # type: ignore[arg-type]
                elif kind == "credit":
                    self.credit_note(day, target)  # type: ignore[arg-type]
                elif kind == "final":
                    self.final_invoice(day, target)  # type: ignore[arg-type]
                else:
                    self.sepa_return(day, target)  # type: ignore[arg-type]
            if (day + timedelta(days=1)).month != day.month:
                self.month_end(day)
            day += timedelta(days=1)
        return self


def _blocked(self: Inv) -> bool:
    # One credit note per invoice; none on invoices with a written-off balance or a deducted
    # deposit (their negative lines would make the copy a negative credit note).
    return (
        self.credit_noted
        or bool(self.written_off)
        or self.doc.type_code != TypeCode.INVOICE
        or any(line.amounts.net_amount < 0 for line in self.doc.lines)
    )


Inv.credited_note_blocked = _blocked  # type: ignore[attr-defined]

_YEAR: Year | None = None


def year() -> Year:
    global _YEAR
    if _YEAR is None:
        _YEAR = Year().run()
    return _YEAR


def test_the_generated_year_is_big_enough() -> None:
    y = year()
    assert y.counts["380"] >= 5000
    assert y.counts["381"] >= 100
    assert y.counts["386"] >= 20
    assert y.counts["payment"] >= 4000
    assert y.counts["return"] >= 20
    assert y.counts["unallocation"] >= 20
    assert min(y.counts[k] for k in ("fee", "refund", "write_off", "credit_applied")) >= 10


def test_trial_balance_balances_and_bank_matches() -> None:
    y = year()
    tb = trial_balance(y.entries)
    assert tb.total_debit == tb.total_credit
    assert tb.balance_of("512") == y.bank


def test_customer_accounts_equal_what_is_due_and_the_credit() -> None:
    y = year()
    tb = trial_balance(y.entries)
    due: dict[str, D] = defaultdict(lambda: ZERO)
    for inv in y.invoices.values():
        due[inv.customer.code] += inv.due
    credit: dict[str, D] = defaultdict(lambda: ZERO)
    for pay in y.payments:
        if not pay.returned:
            credit[pay.customer.code] += pay.free
    for c in y.customers:
        receivable = tb.auxiliaries.get(("411", c.code))
        assert (receivable.balance if receivable else ZERO) == due[c.code], c.code
        credits = tb.auxiliaries.get(("4197", c.code))
        assert (-credits.balance if credits else ZERO) == credit[c.code], c.code
    assert tb.balance_of("411") == sum(due.values(), ZERO)
    assert sum(due.values(), ZERO) > 0


def test_vat_accounts_hold_the_vat_of_the_issued_documents() -> None:
    y = year()
    tb = trial_balance(y.entries)
    vat = sum(
        (-d.totals.tax_total if d.is_credit_note else d.totals.tax_total for d in y.docs), ZERO
    )
    assert -tb.balance_of("4457") == vat
    # Still pending: for each invoice, its VAT on receipts less what its payments released.
    pending = ZERO
    for inv in y.invoices.values():
        released = inv.vat.released(inv.settled, "EUR")
        pending += sum((v - released[r] for r, v in inv.vat.pending), ZERO)
    assert -tb.balance_of("44574") == pending
    assert 0 < pending < vat
    assert tb.balance_of("44566") == D("24.00")  # 12 monthly fees with 2.00 of VAT


def test_the_year_fec_passes_the_checker() -> None:
    y = year()
    posted = number_entries(y.entries)
    data = write_fec(posted)
    report = check_fec(data, fiscal_year_start=YEAR_START, fiscal_year_end=YEAR_END)
    assert report.errors == []
    assert report.warnings == []
    assert report.entries == len(posted)
    assert report.lines == sum(len(e.lines) for e in y.entries)
    assert report.total_debit == report.total_credit == trial_balance(y.entries).total_debit
    assert report.encoding == "iso-8859-15"
    assert fec_filename("732829320", YEAR_END) == "732829320FEC20261231.txt"
    print(
        f"\nyear: {dict(sorted(y.counts.items()))}, {len(posted)} entries, "
        f"{report.lines} FEC lines, {len(data)} bytes, debit {report.total_debit}"
    )
