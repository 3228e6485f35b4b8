"""Reads of the ledger: entries, trial balance, general and customer ledgers, aged balance,
VAT return helper. Scoped by organization; no writes."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from facturo.core.ledger import Balance, EntryLine, Journal, JournalEntry, PostedEntry, SourceRef
from facturo.core.ledger_chart import VAT_RATE_DIGITS, LedgerSettings

from . import models as m

ZERO = Decimal(0)


def _dec(value: Any) -> Decimal:
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(int(value)).scaleb(-3)


def lines_in(org_id: uuid.UUID, start: dt.date | None = None, end: dt.date | None = None) -> Any:
    qs = m.EntryLine.objects.filter(organization_id=org_id)
    if start:
        qs = qs.filter(entry__date__gte=start)
    if end:
        qs = qs.filter(entry__date__lte=end)
    return qs


def account_totals(
    org_id: uuid.UUID, start: dt.date | None = None, end: dt.date | None = None
) -> dict[str, Balance]:
    rows = (
        lines_in(org_id, start, end)
        .values("account")
        .annotate(d=Sum("debit"), c=Sum("credit"))
        .order_by("account")
    )
    return {r["account"]: Balance(_dec(r["d"]), _dec(r["c"])) for r in rows}


@dataclass
class TrialRow:
    account: str
    label: str
    debit: Decimal
    credit: Decimal

    @property
    def balance(self) -> Decimal:
        return self.debit - self.credit


def trial_balance(
    org_id: uuid.UUID, start: dt.date | None = None, end: dt.date | None = None
) -> list[TrialRow]:
    labels = dict(m.Account.objects.filter(organization_id=org_id).values_list("number", "label"))
    return [
        TrialRow(number, labels.get(number, number), b.debit, b.credit)
        for number, b in account_totals(org_id, start, end).items()
    ]


def auxiliary_totals(
    org_id: uuid.UUID, account: str, end: dt.date | None = None
) -> dict[str, Balance]:
    rows = (
        lines_in(org_id, None, end)
        .filter(account=account)
        .values("auxiliary")
        .annotate(d=Sum("debit"), c=Sum("credit"))
    )
    return {r["auxiliary"]: Balance(_dec(r["d"]), _dec(r["c"])) for r in rows}


@dataclass
class LedgerLine:
    number: int
    date: dt.date
    journal: str
    piece_ref: str
    label: str
    auxiliary: str
    debit: Decimal
    credit: Decimal
    lettering: str
    running: Decimal = ZERO


def general_ledger(
    org_id: uuid.UUID,
    account: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    auxiliary: str = "",
    limit: int = 5000,
) -> list[LedgerLine]:
    qs = lines_in(org_id, start, end).filter(account=account)
    if auxiliary:
        qs = qs.filter(auxiliary=auxiliary)
    rows = qs.select_related("entry").order_by("entry__date", "entry__number", "position")[:limit]
    out: list[LedgerLine] = []
    running = ZERO
    for x in rows:
        running += x.debit - x.credit
        out.append(
            LedgerLine(
                x.entry.number,
                x.entry.date,
                x.entry.journal_code,
                x.entry.piece_ref,
                x.label,
                x.auxiliary,
                x.debit,
                x.credit,
                x.lettering,
                running,
            )
        )
    return out


@dataclass
class AgedRow:
    code: str
    name: str
    buckets: list[Decimal] = field(default_factory=lambda: [ZERO] * 5)
    credit: Decimal = ZERO  # unallocated payments (4197)

    @property
    def total(self) -> Decimal:
        return sum(self.buckets, ZERO)


AGE_BUCKETS = ("not due", "1-30", "31-60", "61-90", "> 90")


def aged_balance(org_id: uuid.UUID, settings: LedgerSettings, on: dt.date) -> list[AgedRow]:
    """Balance âgée: per customer, what each invoice still owes on the customers' account by
    days past its due date, and the customer's unallocated credit."""
    from facturo.invoicing.models import Invoice

    per_invoice = (
        lines_in(org_id, None, on)
        .filter(account=settings.customers, invoice_id__isnull=False)
        .values("invoice_id", "auxiliary", "auxiliary_label")
        .annotate(d=Sum("debit"), c=Sum("credit"))
    )
    open_rows = [r for r in per_invoice if _dec(r["d"]) != _dec(r["c"])]
    due = dict(
        Invoice.objects.filter(pk__in=[r["invoice_id"] for r in open_rows]).values_list(
            "id", "due_date"
        )
    )
    result: dict[str, AgedRow] = {}
    for r in open_rows:
        row = result.setdefault(r["auxiliary"], AgedRow(r["auxiliary"], r["auxiliary_label"]))
        due_date = due.get(r["invoice_id"])
        late = (on - due_date).days if due_date else 0
        index = 0 if late <= 0 else 1 if late <= 30 else 2 if late <= 60 else 3 if late <= 90 else 4
        row.buckets[index] += _dec(r["d"]) - _dec(r["c"])
    credits = (
        lines_in(org_id, None, on)
        .filter(account=settings.customer_credits)
        .values("auxiliary", "auxiliary_label")
        .annotate(d=Sum("debit"), c=Sum("credit"))
    )
    for r in credits:
        amount = _dec(r["c"]) - _dec(r["d"])
        if amount:
            row = result.setdefault(r["auxiliary"], AgedRow(r["auxiliary"], r["auxiliary_label"]))
            row.credit += amount
    return sorted(result.values(), key=lambda x: (x.name, x.code))


@dataclass
class VatRow:
    period: str  # YYYY-MM
    rate: Decimal | None  # None: a rate outside the known ones (catch-all account)
    on_debits: Decimal  # collected at invoicing (goods, option for debits)
    on_receipts: Decimal  # released by payments (services on receipts)
    pending_end: Decimal  # VAT on receipts still pending at the end of the period

    @property
    def due(self) -> Decimal:
        return self.on_debits + self.on_receipts


def vat_return(
    org_id: uuid.UUID, settings: LedgerSettings, start: dt.date, end: dt.date
) -> list[VatRow]:
    """Collected VAT per month and rate, split between VAT on debits (posted by the sales
    journal: goods, services with the option for debits, credit notes) and VAT on receipts
    (moved from 44574x by payments and write-offs); with what is still pending."""
    digits = {d: r for r, d in settings.vat_rate_digits.items()}
    coll, pend = settings.vat_collected_root, settings.vat_pending_root
    rows = (
        lines_in(org_id, start, end)
        .filter(account__startswith=coll)
        .values("account", "entry__date", "entry__source_kind")
        .annotate(d=Sum("debit"), c=Sum("credit"))
    )
    table: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    sales_kinds = {"invoice", "credit_note", "deposit_invoice"}
    for r in rows:
        key = (r["entry__date"].strftime("%Y-%m"), r["account"][len(coll) :])
        amount = _dec(r["c"]) - _dec(r["d"])
        table[key][0 if r["entry__source_kind"] in sales_kinds else 1] += amount
    out = []
    for (period, digit), (debits, receipts) in sorted(table.items()):
        year, month = (int(x) for x in period.split("-"))
        period_end = (dt.date(year, month, 28) + dt.timedelta(days=4)).replace(day=1)
        pending = lines_in(org_id, None, period_end - dt.timedelta(days=1)).filter(
            account=pend + digit
        )
        agg = pending.aggregate(d=Sum("debit"), c=Sum("credit"))
        out.append(
            VatRow(period, digits.get(digit), debits, receipts, _dec(agg["c"]) - _dec(agg["d"]))
        )
    return out


_RATE_OF_DIGIT = {d: r for r, d in VAT_RATE_DIGITS.items()}


def entries_in(org_id: uuid.UUID, start: dt.date | None = None, end: dt.date | None = None) -> Any:
    qs = m.Entry.objects.filter(organization_id=org_id)
    if start:
        qs = qs.filter(date__gte=start)
    if end:
        qs = qs.filter(date__lte=end)
    return qs.order_by("number")


def as_journal_entry(e: m.Entry, lines: Iterable[m.EntryLine]) -> JournalEntry:
    """A stored entry and its lines as a ``core.ledger.JournalEntry`` (lettering included)."""
    return JournalEntry(
        journal=Journal(e.journal_code, e.journal_label),
        date=e.date,
        label=e.label,
        piece_ref=e.piece_ref,
        piece_date=e.piece_date,
        currency=e.currency,
        source=SourceRef(e.source_kind, e.source_id),
        lines=tuple(
            EntryLine(
                account=x.account,
                account_label=x.account_label,
                debit=x.debit,
                credit=x.credit,
                label=x.label,
                auxiliary=x.auxiliary,
                auxiliary_label=x.auxiliary_label,
                lettering=x.lettering,
                lettering_date=x.lettering_date,
            )
            for x in lines
        ),
    )


def posted_entries(
    org_id: uuid.UUID, start: dt.date | None = None, end: dt.date | None = None
) -> Iterator[PostedEntry]:
    """The entries dated in [start, end] as ``core.ledger.PostedEntry``, in validation order
    and numbered continuously from 1 within that selection (FEC EcritureNum: the
    organization-wide number is kept as the source, see docs/accounting.md)."""
    lines: dict[uuid.UUID, list[m.EntryLine]] = defaultdict(list)
    entries = list(entries_in(org_id, start, end))
    ids = [e.id for e in entries]
    for chunk in range(0, len(ids), 2000):
        for x in m.EntryLine.objects.filter(entry_id__in=ids[chunk : chunk + 2000]).order_by(
            "entry_id", "position"
        ):
            lines[x.entry_id].append(x)
    for i, e in enumerate(entries, start=1):
        yield PostedEntry(i, e.validated_on, as_journal_entry(e, lines[e.id]))
