"""Bank statement lines, balances and their fingerprints: what every statement format becomes.

Pure: the parsers in ``facturo.formats.statements`` turn bytes into these types, the banking
app stores them, ``core.matching`` proposes the invoices they pay.

Fingerprints (ADR 0008) make imports idempotent. A line's fingerprint is a SHA-256 over the
account and the strongest identifier the bank gives for the transaction, in this order:

1. the bank's own reference for the entry (CAMT ``AcctSvcrRef``, OFX ``FITID``, MT940 bank
   reference after ``//``): unique per account by definition, and the same in a CAMT.053
   statement and in the CAMT.054 notification of the same entry, so the key is
   ``(account, "bank", reference, amount)`` — without the date, because a notification may
   carry another booking date than the end-of-day statement;
2. else the SEPA end-to-end id (not ``NOTPROVIDED``): ``(account, "e2e", id, amount, date)``;
3. else the line's content: ``(account, "content", booking date, amount, currency,
   counterparty IBAN, normalised remittance text, occurrence)`` where *occurrence* counts
   identical lines before it in the same file, so two genuinely identical transfers on one
   day stay two lines while the same file imported twice gives the same fingerprints.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from .errors import BusinessError, _

NOT_PROVIDED = "NOTPROVIDED"


class StatementError(BusinessError):
    """A statement file cannot be read: says which file, where, and what was expected."""

    def __init__(self, file: str, position: str, problem: str, code: str = "statement.invalid"):
        super().__init__(
            code,
            _("%(file)s, %(position)s: %(problem)s"),
            field="file",
            file=file or "statement",
            position=position or "file",
            problem=problem,
        )
        self.file = file
        self.position = position
        self.problem = problem


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One booked transaction. ``amount`` is signed: positive = credit (money in)."""

    booking_date: date
    amount: Decimal
    currency: str
    value_date: date | None = None
    counterparty_name: str = ""
    counterparty_iban: str = ""
    remittance_unstructured: str = ""
    remittance_structured: str = ""  # ISO 11649 creditor reference (RF…) or a bank's own
    end_to_end_id: str = ""
    bank_reference: str = ""
    return_reason: str = ""  # ISO reason code of a returned debit/transfer (AC04, MD06…)
    position: str = ""  # where in the file: "line 12", "Stmt[1]/Ntry[3] (line 40)"
    fingerprint: str = ""

    @property
    def is_credit(self) -> bool:
        return self.amount > 0


@dataclass(frozen=True, slots=True)
class Balance:
    amount: Decimal  # signed
    currency: str
    date: date | None = None


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row left out by "import valid lines", with where and why."""

    position: str
    reason: str
    raw: str = ""


@dataclass(frozen=True, slots=True)
class Statement:
    """One account's lines from one file (a CAMT file may carry several statements)."""

    source: str  # file name, for messages
    format: str  # "camt.053.001.08", "ofx", "mt940", "csv"
    account_iban: str
    currency: str
    lines: tuple[StatementLine, ...]
    statement_id: str = ""
    opening_balance: Balance | None = None
    closing_balance: Balance | None = None
    rejected: tuple[RejectedRow, ...] = ()
    balance_checked: bool = False
    notes: tuple[str, ...] = field(default=())


_SPACES = re.compile(r"\s+")


def _normalised(text: str) -> str:
    return _SPACES.sub(" ", text).strip().upper()


def line_fingerprint(account: str, line: StatementLine, occurrence: int = 0) -> str:
    """The fingerprint described in the module docstring (stable across formats/versions)."""
    account = account.replace(" ", "").upper()
    amount = format(line.amount.normalize(), "f") if line.amount else "0"
    if line.bank_reference:
        parts: tuple[str, ...] = (account, "bank", line.bank_reference.strip(), amount)
    elif line.end_to_end_id and line.end_to_end_id.upper() != NOT_PROVIDED:
        parts = (account, "e2e", line.end_to_end_id.strip(), amount, line.booking_date.isoformat())
    else:
        parts = (
            account,
            "content",
            line.booking_date.isoformat(),
            amount,
            line.currency,
            line.counterparty_iban.replace(" ", "").upper(),
            _normalised(line.remittance_unstructured + " " + line.remittance_structured),
            str(occurrence),
        )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def with_fingerprints(account: str, lines: Iterable[StatementLine]) -> tuple[StatementLine, ...]:
    """Give every line its fingerprint; identical content-keyed lines get occurrences 0, 1…"""
    seen: dict[str, int] = {}
    result = []
    for line in lines:
        first = line_fingerprint(account, line, 0)
        occurrence = seen.get(first, 0)
        seen[first] = occurrence + 1
        fingerprint = first if occurrence == 0 else line_fingerprint(account, line, occurrence)
        result.append(replace(line, fingerprint=fingerprint))
    return tuple(result)


def check_balances(
    source: str,
    position: str,
    opening: Balance | None,
    closing: Balance | None,
    lines: Sequence[StatementLine],
) -> bool:
    """Opening + Σ lines must equal closing; raise a precise error when they disagree.

    Returns whether the check could be made (both balances known)."""
    if opening is None or closing is None:
        return False
    total = sum((line.amount for line in lines), Decimal(0))
    expected = opening.amount + total
    if expected != closing.amount:
        raise StatementError(
            source,
            position,
            f"closing balance {closing.amount} {closing.currency} does not equal opening "
            f"balance {opening.amount} + the {len(lines)} lines ({total}) = {expected}; "
            "the file is incomplete or altered",
            code="statement.balance_mismatch",
        )
    return True
