"""Automatic posting: every business event becomes its entry in the same transaction.

Subscribed in ``AccountingConfig.ready()``. A handler that raises rolls the business
operation back (an invoice dated inside a closed period is not issued and its number is
given back). Documents or payments in another currency than the books' are not posted:
they are listed as ``Unposted`` for the accountant, and the operation goes on.

Payments (docs/accounting.md, « Entries per business event »):
- recorded (any method, SEPA direct debits included while pending: the bank credits the
  collection on its date and a return comes back as its own debit): D 512 / C 4197, plus
  D 627 / C 512 for the provider's fees;
- each allocation to an invoice: D 4197 / C 411, VAT on receipts released;
- an allocation undone (by hand, by a credit note, by a return): D 411 / C 4197;
- refunded: D 4197 / C 512; returned: D 4197 / C 512 (its allocations were undone first).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from django.db import connections

from facturo.banking import events as bank_events
from facturo.core.document import InvoiceDocument, TypeCode, from_dict
from facturo.core.errors import BusinessError
from facturo.core.ledger import (
    EntryLine,
    JournalEntry,
    SourceRef,
    check_account_number,
    reverse_entry,
)
from facturo.core.ledger import Journal as CoreJournal
from facturo.core.ledger_postings import (
    BankAccount,
    CreditedInvoice,
    CustomerAccount,
    ReceiptsVat,
    Settlement,
    allocation_reversed_entry,
    bank_fee_entry,
    credit_applied_entry,
    document_posting,
    payment_entry,
    payment_returned_entry,
    refund_entry,
    write_off_entry,
    write_off_of_fees_entry,
)
from facturo.foundation import events
from facturo.foundation.db import current_alias
from facturo.invoicing.events import InvoiceIssued
from facturo.invoicing.models import Invoice
from facturo.payments import events as pay_events
from facturo.payments.models import Allocation, Payment, Refund

from . import models as m
from .posting import (
    Books,
    books_for,
    check_open,
    customer_code,
    insert_all,
    letter_invoice,
    local_today,
    lock_state,
    post,
    record_unposted,
    unletter_invoice,
)
from .selectors import as_journal_entry

SYSTEM = "system"


def _vat_json(vat: ReceiptsVat) -> dict[str, str]:
    return {str(rate): str(amount) for rate, amount in vat.pending if amount}


def _vat_of(led: m.InvoiceLedger) -> ReceiptsVat:
    return ReceiptsVat(
        led.total,
        tuple(sorted((Decimal(r), Decimal(a)) for r, a in (led.pending_vat or {}).items())),
    )


def _customer(led: m.InvoiceLedger) -> CustomerAccount:
    return CustomerAccount(led.customer_code, led.customer_name, "FR")


def _settlement(led: m.InvoiceLedger, amount: Decimal) -> Settlement:
    vat = _vat_of(led)
    return Settlement(led.number, amount, None if vat.is_empty else vat, paid_before=led.paid)


_SEP = "\x1f"
_LOAD_SQL = {
    "postgresql": """SELECT i.snapshot, i.customer_id, i.credited_invoice_id, i.issue_date,
        (SELECT string_agg(l.account_code, E'\\x1f' ORDER BY l.position, l.id)
         FROM invoicing_invoiceline l WHERE l.invoice_id = i.id)
        FROM invoicing_invoice i WHERE i.id = %s""",
    "sqlite": """SELECT i.snapshot, i.customer_id, i.credited_invoice_id, i.issue_date,
        (SELECT group_concat(account_code, char(31)) FROM (SELECT account_code
         FROM invoicing_invoiceline WHERE invoice_id = i.id ORDER BY position, id))
        FROM invoicing_invoice i WHERE i.id = %s""",
}


@dataclass(frozen=True)
class _Issued:
    snapshot: dict[str, Any]
    customer_id: uuid.UUID
    credited_invoice_id: uuid.UUID | None
    issue_date: dt.date
    line_accounts: dict[int, str]


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def _load_issued(invoice_id: uuid.UUID) -> _Issued:
    """The issued document and its lines' own revenue accounts in one query (the posting
    runs inside every issue: each round trip counts)."""
    conn = connections[current_alias()]
    sql = _LOAD_SQL["postgresql" if conn.vendor == "postgresql" else "sqlite"]
    with conn.cursor() as cur:
        cur.execute(sql, [invoice_id if conn.vendor == "postgresql" else invoice_id.hex])
        snapshot, customer_id, credited_id, issue_date, codes = cur.fetchone()
    if isinstance(snapshot, str | bytes):
        snapshot = json.loads(snapshot)
    if isinstance(issue_date, str):
        issue_date = dt.date.fromisoformat(issue_date)
    accounts = {
        i: code for i, code in enumerate((codes or "").split(_SEP), start=1) if code and _pcg(code)
    }
    customer = _uuid(customer_id)
    assert customer is not None
    return _Issued(snapshot, customer, _uuid(credited_id), issue_date, accounts)


def _pcg(code: str) -> bool:
    try:
        check_account_number(code)
    except BusinessError:
        return False
    return True


# --- documents -------------------------------------------------------------------------------


def on_invoice_issued(event: InvoiceIssued) -> None:
    on_invoices_issued([event])


def on_invoices_issued(issued: list[InvoiceIssued]) -> None:
    """Post the sales entry of each issued document, in order; the ledger is locked and its
    settings read once for a whole batch (e.g. a billing run's chunk)."""
    for org_id in dict.fromkeys(e.organization_id for e in issued):
        state = lock_state(org_id)
        books = books_for(state)
        of_org = [e for e in issued if e.organization_id == org_id]
        # Credit notes read the ledger back (the credited invoice's row): their entries are
        # written as they go; a batch of invoices has its entries written together.
        pending: list[Any] | None = (
            None if any(e.credited_invoice_id for e in of_org) or len(of_org) == 1 else []
        )
        for event in of_org:
            _post_issued(state, books, event, pending)
        if pending:
            insert_all(pending)


def _issued_of(event: InvoiceIssued) -> tuple[_Issued, InvoiceDocument]:
    """What the posting needs: from the event when it carries the frozen document (the
    issuing transaction built it), else read back from the invoice."""
    doc = event.document
    if doc is not None and event.line_accounts is not None and event.customer_id is not None:
        accounts = {
            i: code for i, code in enumerate(event.line_accounts, start=1) if code and _pcg(code)
        }
        issued = _Issued({}, event.customer_id, event.credited_invoice_id, doc.issue_date, accounts)
        return issued, doc
    inv = _load_issued(event.invoice_id)
    return inv, from_dict(inv.snapshot)


def _post_issued(
    state: m.LedgerState, books: Books, event: InvoiceIssued, pending: list[Any] | None = None
) -> None:
    org_id = event.organization_id
    inv, doc = _issued_of(event)
    check_open(state, inv.issue_date)
    if doc.currency != books.currency:
        record_unposted(
            org_id,
            event.kind,
            str(event.invoice_id),
            event.number,
            f"{doc.currency} document in {books.currency} books: post it by hand",
        )
        return
    settings = books.settings
    line_accounts = inv.line_accounts
    customer = CustomerAccount(
        customer_code(inv.customer_id), doc.buyer.name[:200] or "-", doc.buyer.address.country_code
    )
    credited_led: m.InvoiceLedger | None = None
    credited: CreditedInvoice | None = None
    if doc.type_code == TypeCode.CREDIT_NOTE and inv.credited_invoice_id:
        credited_led = invoice_ledger(org_id, inv.credited_invoice_id, books)
        if credited_led is not None:
            credited = CreditedInvoice(_vat_of(credited_led), credited_led.paid)
    entry, vat = document_posting(
        doc,
        customer,
        settings,
        journal=books.sales,
        credited=credited,
        book_currency=books.currency,
        line_accounts=line_accounts,
    )
    tag = inv.credited_invoice_id or event.invoice_id
    if entry is not None:
        post(
            state,
            books,
            entry,
            source_id=str(event.invoice_id),
            invoice_id=tag,
            posted_by=SYSTEM,
            pending=pending,
        )
    if doc.type_code != TypeCode.CREDIT_NOTE:
        return  # its InvoiceLedger row is made when first needed (one insert less here)
    if credited_led is not None:
        after = _vat_of(credited_led).minus(vat)
        credited_led.total = after.total
        credited_led.pending_vat = _vat_json(after)
        credited_led.save(update_fields=["total", "pending_vat"])
        # Payments kept part of a reversed allocation without an event: post it here.
        _sweep_allocations(state, books, credited_led)
        letter_invoice(state, credited_led.invoice_id, doc.issue_date)


def invoice_ledger(
    org_id: uuid.UUID, invoice_id: uuid.UUID, books: Books
) -> m.InvoiceLedger | None:
    """The ledger's row of a posted invoice or deposit invoice, locked; made from its frozen
    document the first time an allocation, a credit note or a write-off needs it (every
    such event goes through here, so ``paid`` and the VAT stay in step). None when the
    invoice was never posted (foreign currency, issued before the ledger existed)."""
    led = m.InvoiceLedger.objects.select_for_update().filter(pk=invoice_id).first()
    if led is not None:
        return led
    inv = (
        Invoice.objects.filter(pk=invoice_id, organization_id=org_id)
        .only("id", "snapshot", "customer_id", "kind", "number")
        .first()
    )
    if inv is None or not inv.snapshot or inv.kind not in ("invoice", "deposit"):
        return None
    if not m.Entry.objects.filter(
        organization_id=org_id,
        source_kind__in=("invoice", "deposit_invoice"),
        source_id=str(inv.id),
    ).exists():
        return None
    doc = from_dict(inv.snapshot)
    customer = CustomerAccount(
        customer_code(inv.customer_id), doc.buyer.name[:200] or "-", doc.buyer.address.country_code
    )
    _entry, vat = document_posting(doc, customer, books.settings, book_currency=doc.currency)
    return m.InvoiceLedger.objects.create(
        invoice_id=inv.id,
        organization_id=org_id,
        number=doc.number,
        issue_date=doc.issue_date,
        customer_code=customer.code,
        customer_name=customer.name,
        total=doc.totals.tax_inclusive,
        pending_vat=_vat_json(vat),
    )


def _sweep_allocations(state: m.LedgerState, books: Books, led: m.InvoiceLedger) -> None:
    posted = set(
        m.PostedAllocation.objects.filter(invoice_id=led.invoice_id).values_list(
            "allocation_id", flat=True
        )
    )
    for row in Allocation.objects.filter(invoice_id=led.invoice_id, reversed_at__isnull=True):
        if row.pk not in posted:
            _post_allocation(state, books, row, led)


# --- payments --------------------------------------------------------------------------------


def _payment_customer(payment: Payment) -> CustomerAccount:
    name = (
        payment.customer.name
        if hasattr(payment, "customer")
        else payment.customer_id.hex  # pragma: no cover
    )
    return CustomerAccount(customer_code(payment.customer_id), name[:200] or "-", "FR")


def _payment_ref(payment: Payment) -> str:
    return (payment.reference or f"PAY-{payment.pk.hex[-8:].upper()}")[:100]


def _lock_invoices_first(*, invoice_id: uuid.UUID | None = None, customer_id: Any = None) -> None:
    """Lock order: invoices, then the ledger state (last). Issuing a credit note locks its
    invoice then posts; a payment posts then allocates (locking invoices): without this,
    the two could wait for each other. The customer's open invoices are locked in the
    order payments allocates them."""
    qs = Invoice.objects.select_for_update()
    if invoice_id is not None:
        list(qs.filter(pk=invoice_id).values_list("id", flat=True))
    if customer_id is not None:
        list(
            qs.filter(
                customer_id=customer_id,
                kind__in=("invoice", "deposit"),
                status__in=("issued", "sent", "partially_paid"),
            )
            .order_by("due_date", "issue_date", "series_position", "number")
            .values_list("id", flat=True)
        )


def on_payment_recorded(event: pay_events.PaymentRecorded) -> None:
    payment = Payment.objects.select_related("customer").get(pk=event.payment_id)
    _lock_invoices_first(customer_id=payment.customer_id)
    state = lock_state(event.organization_id)
    books = books_for(state)
    if payment.currency != books.currency:
        record_unposted(
            event.organization_id,
            "payment",
            str(payment.pk),
            _payment_ref(payment),
            f"{payment.currency} payment in {books.currency} books",
        )
        return
    ref = _payment_ref(payment)
    bank = _bank_of_payment(books, payment)
    entry = payment_entry(
        reference=ref,
        received_on=payment.received_on,
        amount=payment.amount,
        customer=_payment_customer(payment),
        bank=bank,
        settings=books.settings,
        currency=payment.currency,
    )
    post(
        state, books, entry, source_id=str(payment.pk), posted_by=SYSTEM, bank_account=bank.account
    )
    if payment.fees:
        fee = bank_fee_entry(
            reference=ref,
            on=payment.received_on,
            amount=payment.fees,
            label=f"Frais {payment.get_method_display()}",
            bank=bank,
            settings=books.settings,
            currency=payment.currency,
        )
        post(
            state,
            books,
            fee,
            source_id=str(payment.pk),
            posted_by=SYSTEM,
            bank_account=bank.account,
        )


def _allocation_date(state: m.LedgerState, payment: Payment, led: m.InvoiceLedger) -> dt.date:
    on = max(payment.received_on, led.issue_date)
    if state.locked_through and on <= state.locked_through:
        on = max(local_today(), on)
    return on


def _post_allocation(
    state: m.LedgerState, books: Books, row: Allocation, led: m.InvoiceLedger
) -> None:
    payment = Payment.objects.select_related("customer").get(pk=row.payment_id)
    entry = credit_applied_entry(
        reference=_payment_ref(payment),
        on=_allocation_date(state, payment, led),
        customer=_customer(led),
        settlements=[_settlement(led, row.amount)],
        settings=books.settings,
        currency=books.currency,
        journal=books.misc,
    )
    post(state, books, entry, source_id=str(row.pk), invoice_id=led.invoice_id, posted_by=SYSTEM)
    led.paid += row.amount
    led.save(update_fields=["paid"])
    m.PostedAllocation.objects.create(
        allocation_id=row.pk,
        organization_id=row.organization_id,
        invoice_id=led.invoice_id,
        amount=row.amount,
    )


def on_allocation_changed(event: pay_events.AllocationChanged) -> None:
    _lock_invoices_first(invoice_id=event.invoice_id)
    state = lock_state(event.organization_id)
    books = books_for(state)
    led = invoice_ledger(event.organization_id, event.invoice_id, books)
    if led is None:  # the invoice was not posted (foreign currency, before the ledger)
        return
    if not event.reversed:
        if m.PostedAllocation.objects.filter(pk=event.allocation_id).exists():
            return
        row = Allocation.objects.get(pk=event.allocation_id)
        _post_allocation(state, books, row, led)
        return
    done = m.PostedAllocation.objects.select_for_update().filter(
        pk=event.allocation_id, reversed=False
    )
    posted = done.first()
    if posted is None:
        return
    entry = allocation_reversed_entry(
        reference=f"{led.number} désimputation",
        on=max(local_today(), led.issue_date),
        customer=_customer(led),
        settlements=[
            Settlement(
                led.number,
                posted.amount,
                None if _vat_of(led).is_empty else _vat_of(led),
                paid_before=led.paid,
            )
        ],
        settings=books.settings,
        currency=books.currency,
        journal=books.misc,
    )
    post(
        state,
        books,
        entry,
        source_id=str(event.allocation_id),
        invoice_id=led.invoice_id,
        posted_by=SYSTEM,
    )
    led.paid -= posted.amount
    led.save(update_fields=["paid"])
    done.update(reversed=True)


def on_status_changed(event: pay_events.InvoicePaymentStatusChanged) -> None:
    if event.new_status == "paid":
        _lock_invoices_first(invoice_id=event.invoice_id)
        state = lock_state(event.organization_id)
        letter_invoice(state, event.invoice_id, local_today())
    elif event.old_status == "paid":
        unletter_invoice(event.organization_id, event.invoice_id)


def on_payment_refunded(event: pay_events.PaymentRefunded) -> None:
    state = lock_state(event.organization_id)
    books = books_for(state)
    refund = Refund.objects.select_related("payment__customer").get(pk=event.refund_id)
    if refund.payment.currency != books.currency:
        return
    entry = refund_entry(
        reference=(refund.reference or f"REM-{refund.pk.hex[-8:].upper()}")[:100],
        on=refund.refunded_on,
        customer=_payment_customer(refund.payment),
        amount=refund.amount,
        bank=_bank_of_payment(books, refund.payment),
        settings=books.settings,
        currency=books.currency,
    )
    post(state, books, entry, source_id=str(refund.pk), posted_by=SYSTEM)


def on_payment_returned(event: pay_events.PaymentReturned) -> None:
    state = lock_state(event.organization_id)
    books = books_for(state)
    payment = Payment.objects.select_related("customer").get(pk=event.payment_id)
    if payment.currency != books.currency:
        return
    if not m.Entry.objects.filter(
        organization_id=event.organization_id, source_kind="payment", source_id=str(payment.pk)
    ).exists():
        return  # never posted
    # Its allocations were undone (AllocationChanged) before: the money left the credit.
    entry = payment_returned_entry(
        reference=_payment_ref(payment),
        on=max(local_today(), payment.received_on),
        customer=_payment_customer(payment),
        amount=payment.amount,
        bank=_bank_of_payment(books, payment),
        settings=books.settings,
        currency=books.currency,
    )
    post(state, books, entry, source_id=str(payment.pk), posted_by=SYSTEM)


# --- banking ---------------------------------------------------------------------------------


def _reverse_source(
    state: m.LedgerState, books: Books, kind: str, source_id: str, on: dt.date
) -> m.Entry | None:
    """Post the reversal of the latest entry of that source not reversed yet."""
    rows = m.Entry.objects.filter(
        organization_id=state.organization_id, source_kind=kind, source_id=source_id
    ).order_by("-number")
    for row in rows:
        if not m.Entry.objects.filter(reverses=row).exists():
            original = stored_entry(row)
            rev = reverse_entry(original, on=max(on, row.date))
            first_invoice = next(
                (line.invoice_id for line in row.lines.all() if line.invoice_id), None
            )
            return post(
                state,
                books,
                rev,
                source_id=source_id,
                source_kind="reversal",
                invoice_id=first_invoice,
                reverses=row,
                posted_by=SYSTEM,
            )
    return None


def stored_entry(row: m.Entry) -> JournalEntry:
    """A stored entry as a ``core.ledger.JournalEntry`` (lettering included)."""
    return as_journal_entry(row, row.lines.all())


def _bank_of_line(books: Books, bank_line_id: Any) -> tuple[BankAccount, dt.date | None]:
    """The journal and ledger account of the bank account a statement line belongs to
    (banking's ``journal_code``/``ledger_account``, e.g. BQ1/5121), and the line's date;
    the default bank journal when unknown or not usable."""
    from facturo.banking.models import BankLine

    line = (
        BankLine.objects.filter(pk=bank_line_id)
        .select_related("account")
        .only("booking_date", "account__journal_code", "account__ledger_account", "account__name")
        .first()
    )
    if line is None:
        return books.bank, None
    account = line.account
    try:
        bank = BankAccount(
            check_account_number(account.ledger_account),
            CoreJournal(account.journal_code.upper(), f"Banque {account.name}"[:100]),
        )
    except BusinessError:
        return books.bank, line.booking_date
    return bank, line.booking_date


def _bank_of_payment(books: Books, payment: Payment) -> BankAccount:
    """A payment confirmed from a bank statement line goes to that bank account's journal."""
    if payment.provider == "bank" and payment.provider_reference:
        try:
            line_id = uuid.UUID(payment.provider_reference.split("/", 1)[0])
        except ValueError:
            return books.bank
        return _bank_of_line(books, line_id)[0]
    return books.bank


def on_write_off(event: bank_events.WriteOffRecorded) -> None:
    _lock_invoices_first(invoice_id=event.invoice_id)
    state = lock_state(event.organization_id)
    books = books_for(state)
    source = str(event.bank_line_id)
    led = invoice_ledger(event.organization_id, event.invoice_id, books)
    if event.currency != books.currency or led is None:
        return
    settled_by_payment = event.payment_id is not None
    if event.reversed:
        reversal = _reverse_source(state, books, "write_off", source, local_today())
        if reversal is not None and not settled_by_payment:
            led.paid -= event.amount
            led.save(update_fields=["paid"])
        return
    settings = books.settings
    if event.account:
        settings = replace(settings, write_off_loss=check_account_number(event.account))
    if settled_by_payment:
        # The payment carries the difference as its fees: its entries already cleared 411
        # (allocation) and booked the fees to 627; only reclassify them (banking events).
        reclass = write_off_of_fees_entry(
            reference=led.number,
            on=max(local_today(), led.issue_date),
            amount=event.amount,
            customer_name=_customer(led).name,
            settings=settings,
            currency=books.currency,
            journal=books.misc,
        )
        post(state, books, reclass, source_id=source, invoice_id=led.invoice_id, posted_by=SYSTEM)
        return
    entry = write_off_entry(
        reference=led.number,
        on=max(local_today(), led.issue_date),
        customer=_customer(led),
        settlement=_settlement(led, event.amount),
        settings=settings,
        currency=books.currency,
        journal=books.misc,
    )
    post(state, books, entry, source_id=source, invoice_id=led.invoice_id, posted_by=SYSTEM)
    led.paid += event.amount
    led.save(update_fields=["paid"])


def on_bank_fee(event: bank_events.BankFeeRecorded) -> None:
    state = lock_state(event.organization_id)
    books = books_for(state)
    source = str(event.bank_line_id)
    if event.currency != books.currency:
        return
    bank, booked = _bank_of_line(books, event.bank_line_id)
    on = booked or local_today()
    if event.reversed:
        _reverse_source(state, books, "bank_fee", source, local_today())
        return
    settings = books.settings
    if event.account:
        settings = replace(settings, bank_fees=check_account_number(event.account))
    entry = bank_fee_entry(
        reference=f"BANK-{event.bank_line_id.hex[-8:].upper()}",
        on=on,
        amount=event.amount,
        bank=bank,
        settings=settings,
        currency=books.currency,
    )
    post(state, books, entry, source_id=source, posted_by=SYSTEM, bank_account=bank.account)


def on_expense(event: bank_events.ExpenseRecorded) -> None:
    state = lock_state(event.organization_id)
    books = books_for(state)
    source = str(event.bank_line_id)
    if event.currency != books.currency:
        return
    bank, booked = _bank_of_line(books, event.bank_line_id)
    on = event.booking_date or booked or local_today()
    if event.reversed:
        _reverse_source(state, books, "expense", source, local_today())
        return
    account = check_account_number(event.account, field_name="account")
    label = (event.label or "Dépense")[:200]
    entry = JournalEntry(
        journal=bank.journal,
        date=on,
        label=label,
        piece_ref=f"BANK-{event.bank_line_id.hex[-8:].upper()}",
        piece_date=on,
        lines=(
            EntryLine(account, books.settings.label(account), debit=event.amount),
            EntryLine(bank.account, books.settings.label(bank.account), credit=event.amount),
        ),
        currency=books.currency,
        source=SourceRef("expense", source),
    )
    post(state, books, entry, source_id=source, posted_by=SYSTEM, bank_account=bank.account)


def subscribe_all() -> None:
    events.subscribe(InvoiceIssued, on_invoice_issued, batch=on_invoices_issued)
    events.subscribe(pay_events.PaymentRecorded, on_payment_recorded)
    events.subscribe(pay_events.AllocationChanged, on_allocation_changed)
    events.subscribe(pay_events.InvoicePaymentStatusChanged, on_status_changed)
    events.subscribe(pay_events.PaymentRefunded, on_payment_refunded)
    events.subscribe(pay_events.PaymentReturned, on_payment_returned)
    events.subscribe(bank_events.WriteOffRecorded, on_write_off)
    events.subscribe(bank_events.BankFeeRecorded, on_bank_fee)
    events.subscribe(bank_events.ExpenseRecorded, on_expense)


__all__ = ["BusinessError", "subscribe_all"]
