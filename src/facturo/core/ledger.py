"""Double-entry bookkeeping: accounts, journals, entries and their checks (pure).

An entry is checked when it is built: a ``JournalEntry`` that exists balances, has no line
on both sides, no negative or zero line, amounts in the currency's minor unit and PCG-shaped
account numbers. Posted entries are never changed: a correction is a reversing entry
(``reverse_entry``, the French *contre-passation*) followed by the right one.

The default chart, the mapping rules and the entries of each business event live in
``ledger_chart`` and ``ledger_postings``; ``docs/accounting.md`` describes them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from .errors import BusinessError, _
from .money import ZERO, check_currency, round_money

# French PCG (plan comptable général): classes 1 to 7 of the general accounting; the number
# is all digits, at least the 3 of the PCG account it details (art. 933-1 PCG lets the
# entity open sub-accounts by adding digits). 20 digits is a generous upper bound.
_ACCOUNT = re.compile(r"[1-7][0-9]{2,19}")
# Auxiliary (subsidiary) accounts, e.g. one per customer under 411: letters and digits.
_AUXILIARY = re.compile(r"[0-9A-Z][0-9A-Z_.-]{0,29}")
_JOURNAL = re.compile(r"[0-9A-Z]{1,8}")


def check_account_number(number: str, *, field_name: str = "account") -> str:
    """Return ``number`` if it is a PCG-shaped general account number, else raise."""
    if not isinstance(number, str) or not _ACCOUNT.fullmatch(number):
        raise BusinessError(
            "ledger.invalid_account",
            _(
                "Account number “%(number)s” is not a French chart of accounts number: "
                "digits only, at least 3, the first being a class from 1 to 7 (e.g. 411, 7061)."
            ),
            field=field_name,
            number=number,
        )
    return number


def check_auxiliary(code: str) -> str:
    if not _AUXILIARY.fullmatch(code):
        raise BusinessError(
            "ledger.invalid_auxiliary",
            _(
                "Auxiliary account “%(auxiliary)s” must be 1 to 30 upper-case letters, digits, "
                "“_”, “.” or “-”, starting with a letter or a digit."
            ),
            field="auxiliary",
            auxiliary=code,
        )
    return code


@dataclass(frozen=True)
class Account:
    number: str
    label: str

    def __post_init__(self) -> None:
        check_account_number(self.number)
        if not self.label.strip():
            raise BusinessError(
                "ledger.account_label", _("An account needs a label."), field="label"
            )


@dataclass(frozen=True)
class Journal:
    code: str  # FEC JournalCode
    label: str  # FEC JournalLib

    def __post_init__(self) -> None:
        if not _JOURNAL.fullmatch(self.code):
            raise BusinessError(
                "ledger.invalid_journal",
                _("Journal code “%(journal)s” must be 1 to 8 upper-case letters or digits."),
                field="journal",
                journal=self.code,
            )
        if not self.label.strip():
            raise BusinessError(
                "ledger.journal_label", _("A journal needs a label."), field="label"
            )


SALES_JOURNAL = Journal("VE", "Ventes")
BANK_JOURNAL = Journal("BQ", "Banque")
MISC_JOURNAL = Journal("OD", "Opérations diverses")


@dataclass(frozen=True)
class EntryLine:
    account: str
    account_label: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    label: str = ""  # FEC EcritureLib of the line; the entry's label when empty
    auxiliary: str = ""  # FEC CompAuxNum (e.g. the customer's code under 411)
    auxiliary_label: str = ""  # FEC CompAuxLib
    # Lettering is added after posting (when an invoice is fully paid); it is the only thing
    # an export may attach to a posted line.
    lettering: str = ""  # FEC EcritureLet
    lettering_date: date | None = None  # FEC DateLet

    @property
    def balance(self) -> Decimal:
        """Debit minus credit."""
        return self.debit - self.credit


@dataclass(frozen=True)
class SourceRef:
    """What the entry comes from: a document or a business event, for traceability."""

    kind: str  # invoice, credit_note, deposit_invoice, payment, refund, write_off, …
    reference: str  # e.g. the invoice number or the payment's id


@dataclass(frozen=True)
class JournalEntry:
    journal: Journal
    date: date  # FEC EcritureDate: the accounting date of the operation
    label: str  # FEC EcritureLib (default for the lines)
    piece_ref: str  # FEC PieceRef: the supporting document's reference
    piece_date: dt.date  # FEC PieceDate
    lines: tuple[EntryLine, ...]
    currency: str = "EUR"
    source: SourceRef | None = None
    reverses: str = ""  # piece_ref/label of the entry this one cancels, for reversing entries

    def __post_init__(self) -> None:
        check_entry(self)

    @property
    def total_debit(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO)


def _line_error(code: str, message: str, index: int, **params: object) -> BusinessError:
    return BusinessError(code, message, field=f"lines[{index}]", line=index + 1, **params)


def check_entry(entry: JournalEntry) -> None:
    """Raise a precise ``BusinessError`` unless the entry is a valid double entry."""
    check_currency(entry.currency)
    if not entry.label.strip():
        raise BusinessError("ledger.empty_label", _("An entry needs a label."), field="label")
    if not entry.piece_ref.strip():
        raise BusinessError(
            "ledger.no_piece",
            _("An entry needs the reference of its supporting document."),
            field="piece_ref",
        )
    if len(entry.lines) < 2:
        raise BusinessError(
            "ledger.too_few_lines",
            _("An entry has at least two lines (one debit, one credit)."),
            field="lines",
        )
    for i, line in enumerate(entry.lines):
        check_account_number(line.account, field_name=f"lines[{i}].account")
        if line.auxiliary:
            check_auxiliary(line.auxiliary)
        if not line.account_label.strip():
            raise _line_error("ledger.account_label", _("Line %(line)s has no account label."), i)
        if line.debit < 0 or line.credit < 0:
            raise _line_error(
                "ledger.negative_amount",
                _("Line %(line)s has a negative amount: put it on the other side instead."),
                i,
            )
        if line.debit and line.credit:
            raise _line_error(
                "ledger.both_sides",
                _("Line %(line)s has both a debit and a credit: split it in two lines."),
                i,
            )
        if not line.debit and not line.credit:
            raise _line_error("ledger.zero_line", _("Line %(line)s has no amount."), i)
        amount = line.debit or line.credit
        if round_money(amount, entry.currency) != amount:
            raise _line_error(
                "ledger.amount_precision",
                _("Line %(line)s: %(amount)s has more decimals than %(currency)s allows."),
                i,
                amount=str(amount),
                currency=entry.currency,
            )
        if bool(line.lettering) != bool(line.lettering_date):
            raise _line_error(
                "ledger.lettering",
                _("Line %(line)s: a lettering code and its date go together."),
                i,
            )
    debit, credit = entry.total_debit, entry.total_credit
    if debit != credit:
        raise BusinessError(
            "ledger.unbalanced",
            _("The entry does not balance: debit %(debit)s, credit %(credit)s (difference "
              "%(difference)s)."),
            field="lines",
            debit=str(debit),
            credit=str(credit),
            difference=str(debit - credit),
        )  # fmt: skip


def reverse_entry(
    entry: JournalEntry, *, on: date, label: str = "", piece_ref: str = ""
) -> JournalEntry:
    """The reversing entry (*contre-passation*): same accounts, sides swapped.

    Amounts stay positive (the FEC and most accounting software refuse negative amounts),
    so the reversal of a debit is a credit of the same amount."""
    return replace(
        entry,
        date=on,
        label=label or f"Extourne {entry.label}"[:200],
        piece_ref=piece_ref or entry.piece_ref,
        lines=tuple(
            replace(
                line,
                debit=line.credit,
                credit=line.debit,
                label=f"Extourne {line.label}"[:200] if line.label else "",
                lettering="",
                lettering_date=None,
            )
            for line in entry.lines
        ),
        source=SourceRef("reversal", entry.piece_ref),
        reverses=entry.piece_ref,
    )


@dataclass(frozen=True)
class PostedEntry:
    """An entry with its place in the books: the continuous number of validation order
    (FEC EcritureNum) and the validation date (FEC ValidDate)."""

    number: int
    validation_date: date
    entry: JournalEntry


@dataclass
class Balance:
    debit: Decimal = ZERO
    credit: Decimal = ZERO

    @property
    def balance(self) -> Decimal:
        return self.debit - self.credit


@dataclass
class TrialBalance:
    """Totals per general account and per (account, auxiliary account)."""

    accounts: dict[str, Balance] = field(default_factory=dict)
    auxiliaries: dict[tuple[str, str], Balance] = field(default_factory=dict)

    @property
    def total_debit(self) -> Decimal:
        return sum((b.debit for b in self.accounts.values()), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((b.credit for b in self.accounts.values()), ZERO)

    def balance_of(self, prefix: str) -> Decimal:
        """Debit minus credit of every account starting with ``prefix`` (e.g. "44571")."""
        return sum(
            (b.balance for number, b in self.accounts.items() if number.startswith(prefix)),
            ZERO,
        )


def trial_balance(entries: Iterable[JournalEntry]) -> TrialBalance:
    tb = TrialBalance()
    for entry in entries:
        for line in entry.lines:
            b = tb.accounts.setdefault(line.account, Balance())
            b.debit += line.debit
            b.credit += line.credit
            if line.auxiliary:
                a = tb.auxiliaries.setdefault((line.account, line.auxiliary), Balance())
                a.debit += line.debit
                a.credit += line.credit
    return tb


def number_entries(
    entries: Sequence[JournalEntry], *, validated_on: date | None = None, first: int = 1
) -> list[PostedEntry]:
    """Number entries continuously in the given (validation) order; the validation date is
    ``validated_on`` or, by default, each entry's own date."""
    return [PostedEntry(first + i, validated_on or e.date, e) for i, e in enumerate(entries)]
