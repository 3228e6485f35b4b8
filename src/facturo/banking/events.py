"""Events published by banking inside its transactions (accounting subscribes from its
``ready()``: it posts write-offs, bank fees and expenses, and letters bank lines).

Fields are stable: new fields are only added with defaults. Amounts are positive
``Decimal``s in ``currency``; ``account`` is the ledger account number configured on the
bank account or rule (e.g. ``"658"`` for write-offs, ``"627"`` for bank fees).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class BankLineMatched:
    """A bank line was reconciled: with customer payment(s) allocated to invoices, or with
    a write-off / fee / expense / return (then ``payment_ids`` may be empty)."""

    organization_id: uuid.UUID
    bank_line_id: uuid.UUID
    bank_account_id: uuid.UUID
    match_id: uuid.UUID
    payment_ids: tuple[uuid.UUID, ...] = ()
    invoice_ids: tuple[uuid.UUID, ...] = ()
    amount: Decimal = Decimal(0)
    currency: str = "EUR"
    kind: str = "payment"  # payment | expense | fee | return | refund | settlement
    automatic: bool = False
    booking_date: dt.date | None = None


@dataclass(frozen=True)
class BankLineUnmatched:
    """A reconciliation was undone: the payment(s) it created were returned/reversed."""

    organization_id: uuid.UUID
    bank_line_id: uuid.UUID
    bank_account_id: uuid.UUID
    match_id: uuid.UUID
    payment_ids: tuple[uuid.UUID, ...] = ()
    invoice_ids: tuple[uuid.UUID, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class WriteOffRecorded:
    """A small difference between a bank credit and the invoice(s) it pays was written off
    (customer paid ``amount`` less than owed, typically bank fees on their side).

    payments has no write-off of its own, so the invoice is closed by the payment created
    for the line (``payment_id``), which carries the written-off amount as its ``fees``
    (amount = allocated, fees = this write-off, amount − fees = the money on the bank line).
    Accounting: post the fees of that payment to ``account`` (D account / C 411), not to
    bank fees — or, if ``PaymentRecorded`` already posted them as fees, reclassify them."""

    organization_id: uuid.UUID
    bank_line_id: uuid.UUID
    customer_id: uuid.UUID
    invoice_id: uuid.UUID
    amount: Decimal
    currency: str
    account: str
    match_id: uuid.UUID | None = None
    reversed: bool = False
    payment_id: uuid.UUID | None = None


@dataclass(frozen=True)
class BankFeeRecorded:
    """A bank debit recognised as bank charges."""

    organization_id: uuid.UUID
    bank_line_id: uuid.UUID
    amount: Decimal
    currency: str
    account: str
    match_id: uuid.UUID | None = None
    reversed: bool = False


@dataclass(frozen=True)
class ExpenseRecorded:
    """A bank debit booked as an expense (supplier paid without a supplier invoice here)."""

    organization_id: uuid.UUID
    bank_line_id: uuid.UUID
    amount: Decimal
    account: str
    label: str
    currency: str = "EUR"
    match_id: uuid.UUID | None = None
    reversed: bool = False
    booking_date: dt.date | None = field(default=None)
