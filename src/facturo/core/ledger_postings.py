"""The entry of each business event, computed from core data only (pure functions).

Sign convention inside this module: a positive amount is a debit, a negative one a credit;
amounts on the same (account, auxiliary account) are netted, then each becomes one line on
its side. Every function returns a checked ``JournalEntry`` (it balances by construction:
the figures all come from ``core.totals``, nothing is recomputed).

VAT on receipts (ADR 9): for services, VAT is due when the price is received (art. 269-2-c
CGI) unless the seller opted for debits. Such VAT is credited at issue to 44574<rate>
("pending") and moved to 44571<rate> ("collected") as payments are allocated to the
invoice, in proportion of what is paid (``ReceiptsVat.released``). Goods, and services of a
seller with the option for debits, go straight to 44571<rate>.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .document import InvoiceDocument, Nature, Party, TypeCode
from .errors import BusinessError, _
from .ledger import (
    BANK_JOURNAL,
    MISC_JOURNAL,
    SALES_JOURNAL,
    EntryLine,
    Journal,
    JournalEntry,
    SourceRef,
    check_auxiliary,
)
from .ledger_chart import DEFAULT_SETTINGS, LedgerSettings, customer_type
from .money import ZERO, round_money, split_amount


@dataclass(frozen=True)
class CustomerAccount:
    """The customer's auxiliary account (FEC CompAuxNum/CompAuxLib) and country."""

    code: str
    name: str
    country_code: str

    def __post_init__(self) -> None:
        check_auxiliary(self.code)

    @classmethod
    def of(cls, code: str, party: Party) -> CustomerAccount:
        return cls(code, party.name, party.address.country_code)


@dataclass(frozen=True)
class BankAccount:
    account: str = "512"
    journal: Journal = BANK_JOURNAL


@dataclass(frozen=True)
class ReceiptsVat:
    """The VAT on receipts tied to one invoice: released as ``total`` gets paid.

    ``total`` is what the customer owes for the invoice (tax inclusive, less its credit
    notes) and ``pending`` the VAT on receipts per rate (less that of its credit notes)."""

    total: Decimal
    pending: tuple[tuple[Decimal, Decimal], ...]

    def released(self, paid: Decimal, currency: str) -> dict[Decimal, Decimal]:
        """VAT due once ``paid`` has been received: the same fraction of each rate's VAT,
        rounded half up, and exactly all of it once the total is paid."""
        if self.total <= 0:
            return {rate: vat for rate, vat in self.pending}
        paid = min(max(paid, ZERO), self.total)
        return {rate: round_money(vat * paid / self.total, currency) for rate, vat in self.pending}

    def minus(self, other: ReceiptsVat) -> ReceiptsVat:
        pending = dict(self.pending)
        for rate, vat in other.pending:
            pending[rate] = pending.get(rate, ZERO) - vat
        return ReceiptsVat(self.total - other.total, tuple(sorted(pending.items())))

    @property
    def is_empty(self) -> bool:
        return not any(vat for _rate, vat in self.pending)


@dataclass(frozen=True)
class Settlement:
    """Part of a payment (or of the customer's credit) applied to one invoice: the
    allocation. ``paid_before`` is what was allocated to the invoice before this one."""

    invoice_number: str
    amount: Decimal
    vat: ReceiptsVat | None = None  # None when the invoice has no VAT on receipts
    paid_before: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise BusinessError(
                "ledger.settlement_amount",
                _("An allocation to %(number)s must be a positive amount."),
                field="amount",
                number=self.invoice_number,
            )


@dataclass(frozen=True)
class CreditedInvoice:
    """The invoice a credit note corrects, as it stood before the credit note: its VAT on
    receipts and what was allocated to it (so the part already collected is reversed)."""

    vat: ReceiptsVat
    paid: Decimal


class _Amounts:
    """Signed amounts per (account, auxiliary), in the order first seen."""

    def __init__(self, settings: LedgerSettings, currency: str):
        self.settings = settings
        self.currency = currency
        self.amounts: dict[tuple[str, str], Decimal] = {}
        self.aux_labels: dict[str, str] = {}

    def add(self, account: str, amount: Decimal, customer: CustomerAccount | None = None) -> None:
        aux = ""
        if customer is not None:
            aux = customer.code
            self.aux_labels[aux] = customer.name
        key = (account, aux)
        self.amounts[key] = self.amounts.get(key, ZERO) + amount

    def negate(self) -> None:
        self.amounts = {k: -v for k, v in self.amounts.items()}

    def release(self, settlement: Settlement, sign: int = 1) -> None:
        """Move the VAT released by the settlement from pending to collected (``sign=-1``:
        back, when the allocation is undone)."""
        if settlement.vat is None:
            return
        amount = settlement.amount * sign
        before = settlement.vat.released(settlement.paid_before, self.currency)
        after = settlement.vat.released(settlement.paid_before + amount, self.currency)
        for rate, vat in after.items():
            delta = vat - before[rate]
            self.add(self.settings.vat_pending(rate), delta)
            self.add(self.settings.vat_collected(rate), -delta)

    def lines(self, label: str) -> tuple[EntryLine, ...]:
        result = []
        for (account, aux), amount in self.amounts.items():
            if not amount:
                continue
            result.append(
                EntryLine(
                    account=account,
                    account_label=self.settings.label(account),
                    debit=amount if amount > 0 else ZERO,
                    credit=-amount if amount < 0 else ZERO,
                    label=label,
                    auxiliary=aux,
                    auxiliary_label=self.aux_labels.get(aux, ""),
                )
            )
        return tuple(result)


def _refuse_foreign(currency: str, book_currency: str) -> None:
    if currency != book_currency:
        raise BusinessError(
            "ledger.foreign_currency",
            _(
                "Posting a %(currency)s document in books kept in %(book)s needs an exchange "
                "rate, which is not supported yet."
            ),
            currency=currency,
            book=book_currency,
        )


def _label(prefix: str, reference: str, name: str) -> str:
    return f"{prefix} {reference} {name}".strip()[:200]


def _entry(
    amounts: _Amounts,
    *,
    journal: Journal,
    on: date,
    label: str,
    piece_ref: str,
    piece_date: date | None = None,
    source: SourceRef,
) -> JournalEntry:
    return JournalEntry(
        journal=journal,
        date=on,
        label=label,
        piece_ref=piece_ref,
        piece_date=piece_date or on,
        lines=amounts.lines(label),
        currency=amounts.currency,
        source=source,
    )


# --- documents: invoice, credit note, deposit invoice ----------------------------------------


def _is_deposit_deduction(doc: InvoiceDocument, net: Decimal) -> bool:
    # Only system lines deducting an issued deposit invoice may be negative (core.totals);
    # a credit note of a final invoice carries them too (and gives the deposit back).
    return doc.type_code in (TypeCode.INVOICE, TypeCode.CREDIT_NOTE) and net < 0


def _document_amounts(
    doc: InvoiceDocument,
    customer: CustomerAccount,
    settings: LedgerSettings,
    categories: Mapping[str, str],
    line_accounts: Mapping[int, str] | None = None,
) -> tuple[_Amounts, dict[Decimal, Decimal]]:
    """The amounts of ``doc`` seen as an invoice (receivable debited) and its VAT on
    receipts per rate."""
    currency = doc.currency
    acc = _Amounts(settings, currency)
    ctype = customer_type(customer.country_code)
    is_deposit = doc.type_code == TypeCode.DEPOSIT_INVOICE
    pending: dict[Decimal, Decimal] = {}
    acc.add(settings.customers, doc.totals.tax_inclusive, customer)
    for group in doc.totals.vat_groups:
        key = (group.category, group.rate)
        buckets: dict[str, Decimal] = {}
        by_nature = {Nature.SERVICES: ZERO, Nature.GOODS: ZERO}
        fallback = ""
        for line in doc.lines:
            if (line.vat_category, line.vat_rate) != key:
                continue
            net = line.amounts.net_amount
            by_nature[Nature(line.nature)] += net
            if is_deposit:
                account = settings.customer_deposits
            elif line_accounts and line.position in line_accounts:
                account = line_accounts[line.position]  # the line's own revenue account
            else:
                account = settings.revenue_account(
                    nature=Nature(line.nature),
                    customer=ctype,
                    vat_category=group.category,
                    product_code=line.product_code,
                    category=categories.get(line.product_code, ""),
                )
            fallback = fallback or account
            if _is_deposit_deduction(doc, net):
                acc.add(settings.customer_deposits, -net, customer)  # debit: deposit used
                continue
            buckets[account] = buckets.get(account, ZERO) + net
        for allowance in doc.totals.allowances:
            if (allowance.vat_category, allowance.vat_rate) != key:
                continue
            if allowance.is_charge:
                target = settings.customer_deposits if is_deposit else settings.charges_revenue
                acc.add(target, -allowance.amount, customer if is_deposit else None)
                continue
            # A discount on the invoice lowers the revenue it applies to (net commercial
            # amount, PCG art. 512-4 / 946-70); spread over the group's revenue accounts.
            targets = [k for k, v in buckets.items() if v > 0] or [
                fallback
                or settings.revenue_account(
                    nature=Nature.SERVICES, customer=ctype, vat_category=group.category
                )
            ]
            weights = [max(buckets.get(k, ZERO), ZERO) for k in targets]
            for k, part in zip(
                targets, split_amount(allowance.amount, weights, currency), strict=True
            ):
                buckets[k] = buckets.get(k, ZERO) - part
        for account, net in buckets.items():
            acc.add(account, -net, customer if is_deposit else None)
        tax = group.tax_amount
        if not tax:
            continue
        services, goods = abs(by_nature[Nature.SERVICES]), abs(by_nature[Nature.GOODS])
        if doc.vat_on_debits or not services:
            on_receipts = ZERO
        else:
            on_receipts = split_amount(tax, [services, goods], currency)[0]
        if on_receipts:
            acc.add(settings.vat_pending(group.rate), -on_receipts)
            pending[group.rate] = pending.get(group.rate, ZERO) + on_receipts
        if tax - on_receipts:
            acc.add(settings.vat_collected(group.rate), -(tax - on_receipts))
    return acc, pending


def receipts_vat(doc: InvoiceDocument, settings: LedgerSettings = DEFAULT_SETTINGS) -> ReceiptsVat:
    """The VAT on receipts of a document (what a credit note removes from its invoice)."""
    customer = CustomerAccount("X", doc.buyer.name or "x", doc.buyer.address.country_code)
    _acc, pending = _document_amounts(doc, customer, settings, {})
    return ReceiptsVat(doc.totals.tax_inclusive, tuple(sorted(pending.items())))


_DOCUMENT_LABELS = {
    TypeCode.INVOICE: ("Facture", "invoice"),
    TypeCode.CREDIT_NOTE: ("Avoir", "credit_note"),
    TypeCode.DEPOSIT_INVOICE: ("Facture d'acompte", "deposit_invoice"),
}


def document_entry(
    doc: InvoiceDocument,
    customer: CustomerAccount,
    settings: LedgerSettings = DEFAULT_SETTINGS,
    *,
    journal: Journal = SALES_JOURNAL,
    categories: Mapping[str, str] | None = None,
    credited: CreditedInvoice | None = None,
    book_currency: str = "EUR",
    line_accounts: Mapping[int, str] | None = None,
) -> JournalEntry | None:
    """See ``document_posting``; the entry alone."""
    return document_posting(
        doc,
        customer,
        settings,
        journal=journal,
        categories=categories,
        credited=credited,
        book_currency=book_currency,
        line_accounts=line_accounts,
    )[0]


def document_posting(
    doc: InvoiceDocument,
    customer: CustomerAccount,
    settings: LedgerSettings = DEFAULT_SETTINGS,
    *,
    journal: Journal = SALES_JOURNAL,
    categories: Mapping[str, str] | None = None,
    credited: CreditedInvoice | None = None,
    book_currency: str = "EUR",
    line_accounts: Mapping[int, str] | None = None,
) -> tuple[JournalEntry | None, ReceiptsVat]:
    """The sales-journal entry of an issued invoice, credit note or deposit invoice, dated
    on its issue date; ``None`` for a document of zero amount (nothing to post).

    - invoice: D 411 (tax inclusive) / C revenue per mapping rule / C VAT per rate
      (44571x collected, or 44574x pending for services on receipts); a deducted deposit
      is debited to 4191;
    - deposit invoice: the same with 4191 instead of revenue;
    - credit note: the invoice's mirror. With ``credited``, the share of its VAT that was
      already collected (the invoice was partly paid) is taken from 44571x, the rest
      from 44574x.
    ``categories`` maps product codes to catalogue categories for the mapping rules;
    ``line_accounts`` maps line positions to their own revenue account (it wins over the
    rules). Also returns the document's VAT on receipts (what allocations will release)."""
    _refuse_foreign(doc.currency, book_currency)
    acc, pending = _document_amounts(doc, customer, settings, categories or {}, line_accounts)
    if doc.type_code == TypeCode.CREDIT_NOTE:
        if credited is not None:
            mine = ReceiptsVat(doc.totals.tax_inclusive, tuple(sorted(pending.items())))
            after = credited.vat.minus(mine)
            before_released = credited.vat.released(credited.paid, doc.currency)
            after_released = after.released(credited.paid, doc.currency)
            for rate in sorted(set(before_released) | set(after_released)):
                shift = before_released.get(rate, ZERO) - after_released.get(rate, ZERO)
                acc.add(settings.vat_pending(rate), shift)
                acc.add(settings.vat_collected(rate), -shift)
        acc.negate()
    prefix, kind = _DOCUMENT_LABELS[TypeCode(doc.type_code)]
    vat = ReceiptsVat(doc.totals.tax_inclusive, tuple(sorted(pending.items())))
    if not any(acc.amounts.values()):
        return None, vat
    return _entry(
        acc,
        journal=journal,
        on=doc.issue_date,
        label=_label(prefix, doc.number, customer.name),
        piece_ref=doc.number,
        piece_date=doc.issue_date,
        source=SourceRef(kind, doc.number),
    ), vat


def invoice_issued_entry(
    doc: InvoiceDocument, customer: CustomerAccount, settings: LedgerSettings = DEFAULT_SETTINGS
) -> JournalEntry | None:
    if doc.type_code != TypeCode.INVOICE:
        raise BusinessError("ledger.not_an_invoice", _("This document is not an invoice."))
    return document_entry(doc, customer, settings)


def deposit_invoice_entry(
    doc: InvoiceDocument, customer: CustomerAccount, settings: LedgerSettings = DEFAULT_SETTINGS
) -> JournalEntry | None:
    if doc.type_code != TypeCode.DEPOSIT_INVOICE:
        raise BusinessError("ledger.not_a_deposit", _("This document is not a deposit invoice."))
    return document_entry(doc, customer, settings)


def credit_note_entry(
    doc: InvoiceDocument,
    customer: CustomerAccount,
    settings: LedgerSettings = DEFAULT_SETTINGS,
    *,
    credited: CreditedInvoice | None = None,
) -> JournalEntry | None:
    if doc.type_code != TypeCode.CREDIT_NOTE:
        raise BusinessError("ledger.not_a_credit_note", _("This document is not a credit note."))
    return document_entry(doc, customer, settings, credited=credited)


# --- money: payments, allocations, refunds, write-offs, fees, returns ------------------------


def _positive(amount: Decimal, currency: str, name: str) -> Decimal:
    if amount <= 0 or round_money(amount, currency) != amount:
        raise BusinessError(
            "ledger.invalid_amount",
            _("%(name)s must be a positive amount in %(currency)s minor units, not %(amount)s."),
            field=name,
            name=name,
            currency=currency,
            amount=str(amount),
        )
    return amount


def _allocated(settlements: Sequence[Settlement], currency: str) -> Decimal:
    for s in settlements:
        _positive(s.amount, currency, "amount")
    return sum((s.amount for s in settlements), ZERO)


def payment_entry(
    *,
    reference: str,
    received_on: date,
    amount: Decimal,
    customer: CustomerAccount,
    settlements: Sequence[Settlement] = (),
    bank: BankAccount | None = None,
    settings: LedgerSettings = DEFAULT_SETTINGS,
    currency: str = "EUR",
) -> JournalEntry:
    """A payment received: D bank / C 411 for each allocation, C 4197 (the customer's
    credit) for what is not allocated; VAT on receipts released for each allocation."""
    bank = bank or BankAccount(settings.bank)
    _positive(amount, currency, "amount")
    allocated = _allocated(settlements, currency)
    if allocated > amount:
        raise BusinessError(
            "ledger.over_allocated",
            _("The payment (%(amount)s) is smaller than its allocations (%(allocated)s)."),
            field="settlements",
            amount=str(amount),
            allocated=str(allocated),
        )
    acc = _Amounts(settings, currency)
    acc.add(bank.account, amount)
    for s in settlements:
        acc.add(settings.customers, -s.amount, customer)
        acc.release(s)
    if amount - allocated:
        acc.add(settings.customer_credits, -(amount - allocated), customer)
    return _entry(
        acc,
        journal=bank.journal,
        on=received_on,
        label=_label("Règlement", reference, customer.name),
        piece_ref=reference,
        source=SourceRef("payment", reference),
    )


def credit_applied_entry(
    *,
    reference: str,
    on: date,
    customer: CustomerAccount,
    settlements: Sequence[Settlement],
    settings: LedgerSettings = DEFAULT_SETTINGS,
    currency: str = "EUR",
    journal: Journal = MISC_JOURNAL,
) -> JournalEntry:
    """The customer's credit (an earlier payment) allocated to invoices: D 4197 / C 411,
    VAT on receipts released."""
    total = _allocated(settlements, currency)
    acc = _Amounts(settings, currency)
    acc.add(settings.customer_credits, total, customer)
    for s in settlements:
        acc.add(settings.customers, -s.amount, customer)
        acc.release(s)
    return _entry(
        acc,
        journal=journal,
        on=on,
        label=_label("Imputation règlement", reference, customer.name),
        piece_ref=reference,
        source=SourceRef("allocation", reference),
    )


def allocation_reversed_entry(
    *,
    reference: str,
    on: date,
    customer: CustomerAccount,
    settlements: Sequence[Settlement],
    settings: LedgerSettings = DEFAULT_SETTINGS,
    currency: str = "EUR",
    journal: Journal = MISC_JOURNAL,
) -> JournalEntry:
    """Allocations undone (by hand, or because a credit note lowered the invoice below
    what was paid): the money goes back to the customer's credit, D 411 / C 4197, and the
    VAT released goes back to pending. ``paid_before`` is what was allocated before the
    reversal."""
    total = _allocated(settlements, currency)
    acc = _Amounts(settings, currency)
    for s in settlements:
        acc.add(settings.customers, s.amount, customer)
        acc.release(s, sign=-1)
    acc.add(settings.customer_credits, -total, customer)
    return _entry(
        acc,
        journal=journal,
        on=on,
        label=_label("Désimputation", reference, customer.name),
        piece_ref=reference,
        source=SourceRef("unallocation", reference),
    )


def refund_entry(
    *,
    reference: str,
    on: date,
    customer: CustomerAccount,
    amount: Decimal,
    bank: BankAccount | None = None,
    settings: LedgerSettings = DEFAULT_SETTINGS,
    currency: str = "EUR",
) -> JournalEntry:
    """Part of the customer's credit paid back: D 4197 / C bank."""
    bank = bank or BankAccount(settings.bank)
    _positive(amount, currency, "amount")
    acc = _Amounts(settings, currency)
    acc.add(settings.customer_credits, amount, customer)
    acc.add(bank.account, -amount)
    return _entry(
        acc,
        journal=bank.journal,
        on=on,
        label=_label("Remboursement", reference, customer.name),
        piece_ref=reference,
        source=SourceRef("refund", reference),
    )


def write_off_entry(
    *,
    reference: str,
    on: date,
    customer: CustomerAccount,
    settlement: Settlement,
    settings: LedgerSettings = DEFAULT_SETTINGS,
    currency: str = "EUR",
    journal: Journal = MISC_JOURNAL,
) -> JournalEntry:
    """A small unpaid balance abandoned (écart de règlement): D 658 / C 411. The VAT of
    the invoice stays due (only a credit note reduces it, art. 272-1 CGI), so its VAT on
    receipts is released as if paid (ADR 9)."""
    _positive(settlement.amount, currency, "amount")
    acc = _Amounts(settings, currency)
    acc.add(settings.write_off_loss, settlement.amount)
    acc.add(settings.customers, -settlement.amount, customer)
    acc.release(settlement)
    return _entry(
        acc,
        journal=journal,
        on=on,
        label=_label("Perte sur écart de règlement", reference, customer.name),
        piece_ref=reference,
        source=SourceRef("write_off", reference),
    )


def write_off_of_fees_entry(
    *,
    reference: str,
    on: date,
    amount: Decimal,
    customer_name: str = "",
    settings: LedgerSettings = DEFAULT_SETTINGS,
    currency: str = "EUR",
    journal: Journal = MISC_JOURNAL,
) -> JournalEntry:
    """A write-off already settled through a payment's fees (bank reconciliation closes the
    invoice with a payment of the full amount whose fees are the difference): the payment's
    entries cleared 411 and released the VAT on receipts, so only the charge moves from bank
    fees to the write-off account: D 658 / C 627."""
    _positive(amount, currency, "amount")
    acc = _Amounts(settings, currency)
    acc.add(settings.write_off_loss, amount)
    acc.add(settings.bank_fees, -amount)
    return _entry(
        acc,
        journal=journal,
        on=on,
        label=_label("Perte sur écart de règlement", reference, customer_name),
        piece_ref=reference,
        source=SourceRef("write_off", reference),
    )


def overpayment_kept_entry(
    *,
    reference: str,
    on: date,
    customer: CustomerAccount,
    amount: Decimal,
    settings: LedgerSettings = DEFAULT_SETTINGS,
    currency: str = "EUR",
    journal: Journal = MISC_JOURNAL,
) -> JournalEntry:
    """A small excess payment kept rather than refunded: D 4197 / C 758."""
    _positive(amount, currency, "amount")
    acc = _Amounts(settings, currency)
    acc.add(settings.customer_credits, amount, customer)
    acc.add(settings.write_off_gain, -amount)
    return _entry(
        acc,
        journal=journal,
        on=on,
        label=_label("Gain sur écart de règlement", reference, customer.name),
        piece_ref=reference,
        source=SourceRef("write_off", reference),
    )


def bank_fee_entry(
    *,
    reference: str,
    on: date,
    amount: Decimal,
    vat: Decimal = ZERO,
    label: str = "Frais bancaires",
    bank: BankAccount | None = None,
    settings: LedgerSettings = DEFAULT_SETTINGS,
    currency: str = "EUR",
) -> JournalEntry:
    """Bank or payment-provider fees: D 627 (without VAT) + D 44566 (deductible VAT, if
    any) / C bank (``amount`` is what left the bank, VAT included)."""
    bank = bank or BankAccount(settings.bank)
    _positive(amount, currency, "amount")
    if vat < 0 or vat >= amount or round_money(vat, currency) != vat:
        raise BusinessError(
            "ledger.invalid_amount",
            _("The VAT of a fee is between 0 and the fee's amount."),
            field="vat",
        )
    acc = _Amounts(settings, currency)
    acc.add(settings.bank_fees, amount - vat)
    if vat:
        acc.add(settings.deductible_vat, vat)
    acc.add(bank.account, -amount)
    return _entry(
        acc,
        journal=bank.journal,
        on=on,
        label=f"{label} {reference}".strip()[:200],
        piece_ref=reference,
        source=SourceRef("bank_fee", reference),
    )


def payment_returned_entry(
    *,
    reference: str,
    on: date,
    customer: CustomerAccount,
    amount: Decimal,
    settlements: Sequence[Settlement] = (),
    bank: BankAccount | None = None,
    settings: LedgerSettings = DEFAULT_SETTINGS,
    currency: str = "EUR",
) -> JournalEntry:
    """A payment that came back (SEPA return/reject, chargeback): its allocations are taken
    back (D 411, VAT released goes back to pending), its unallocated part leaves the
    customer's credit (D 4197), C bank. ``settlements`` are the allocations undone, each
    with ``paid_before`` = what was allocated to the invoice before the return."""
    bank = bank or BankAccount(settings.bank)
    _positive(amount, currency, "amount")
    allocated = _allocated(settlements, currency)
    if allocated > amount:
        raise BusinessError(
            "ledger.over_allocated",
            _("The payment (%(amount)s) is smaller than its allocations (%(allocated)s)."),
            field="settlements",
            amount=str(amount),
            allocated=str(allocated),
        )
    acc = _Amounts(settings, currency)
    for s in settlements:
        acc.add(settings.customers, s.amount, customer)
        acc.release(s, sign=-1)
    if amount - allocated:
        acc.add(settings.customer_credits, amount - allocated, customer)
    acc.add(bank.account, -amount)
    return _entry(
        acc,
        journal=bank.journal,
        on=on,
        label=_label("Retour de paiement", reference, customer.name),
        piece_ref=reference,
        source=SourceRef("payment_return", reference),
    )
