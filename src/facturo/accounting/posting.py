"""Posting: turn a checked ``core.ledger.JournalEntry`` into stored, numbered, hash-chained
rows, inside the caller's transaction.

A posting costs three statements: lock the organization's ``LedgerState`` row (entry
number, chain head, closed-period date, settings version), then insert the lines (one
multi-row INSERT) and the entry; the entry's triggers check
that the lines balance and that it continues the chain, and move the chain head. The
organization's chart, journals and mapping rules are cached per settings version, which
every change of them increments.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from facturo.core.chain import GENESIS, link_hash
from facturo.core.document import Nature
from facturo.core.errors import BusinessError, _
from facturo.core.ledger import Journal as CoreJournal
from facturo.core.ledger import JournalEntry
from facturo.core.ledger_chart import DEFAULT_LABELS, CustomerType, LedgerSettings, RevenueRule
from facturo.core.ledger_postings import BankAccount
from facturo.core.tax import VatCategory
from facturo.foundation.db import atomic, current_alias, on_commit
from facturo.foundation.ids import uuid7
from facturo.organizations.models import Organization

from . import models as m

# --- books: the organization's chart, journals and rules, cached per version ----------------


@dataclass
class Books:
    organization_id: uuid.UUID
    currency: str
    settings: LedgerSettings
    sales: CoreJournal
    bank: BankAccount
    misc: CoreJournal
    bank_accounts: dict[uuid.UUID, BankAccount] = field(default_factory=dict)
    known_accounts: set[str] = field(default_factory=set)
    known_journals: set[str] = field(default_factory=set)


_cache: dict[tuple[str, uuid.UUID], tuple[int, Books]] = {}
_cache_lock = threading.Lock()


def _suffixes(raw: dict[str, str]) -> dict[CustomerType, str]:
    base = {CustomerType.FRANCE: "1", CustomerType.EU: "2", CustomerType.EXPORT: "3"}
    if raw:
        base = {CustomerType(k): v for k, v in raw.items() if v is not None}
    return base


def ledger_settings(org_id: uuid.UUID) -> LedgerSettings:
    """The organization's ``LedgerSettings`` from its tables (not cached)."""
    conf = m.AccountingSettings.objects.filter(organization_id=org_id).first()
    labels = dict(m.Account.objects.filter(organization_id=org_id).values_list("number", "label"))
    rules = tuple(
        RevenueRule(
            account=r.account,
            product_code=r.product_code or None,
            category=r.category or None,
            nature=Nature(r.nature) if r.nature else None,
            customer_type=CustomerType(r.customer_type) if r.customer_type else None,
            vat_category=VatCategory(r.vat_category) if r.vat_category else None,
        )
        for r in m.RevenueRule.objects.filter(organization_id=org_id)
    )
    numbers = dict(conf.numbers) if conf else {}
    suffixes = _suffixes(dict(conf.customer_type_suffixes) if conf else {})
    return LedgerSettings(**numbers, customer_type_suffixes=suffixes, rules=rules, labels=labels)


def _journal(row: m.Journal) -> CoreJournal:
    return CoreJournal(row.code, row.label)


def _load_books(org_id: uuid.UUID) -> Books:
    settings = ledger_settings(org_id)
    currency = Organization.objects.values_list("currency", flat=True).get(pk=org_id)
    journals = list(m.Journal.objects.filter(organization_id=org_id))

    def default(kind: str) -> m.Journal | None:
        rows = [j for j in journals if j.kind == kind]
        return next((j for j in rows if j.is_default), rows[0] if rows else None)

    sales, bank, misc = (
        default(m.JournalKind.SALES),
        default(m.JournalKind.BANK),
        default(m.JournalKind.MISC),
    )
    books = Books(
        organization_id=org_id,
        currency=currency,
        settings=settings,
        sales=_journal(sales) if sales else CoreJournal("VE", "Ventes"),
        bank=BankAccount(
            (bank.account if bank and bank.account else settings.bank),
            _journal(bank) if bank else CoreJournal("BQ", "Banque"),
        ),
        misc=_journal(misc) if misc else CoreJournal("OD", "Opérations diverses"),
        known_accounts=set(settings.labels),
        known_journals={j.code for j in journals},
    )
    for j in journals:
        if j.kind == m.JournalKind.BANK and j.bank_account_id:
            books.bank_accounts[j.bank_account_id] = BankAccount(
                j.account or settings.bank, _journal(j)
            )
    return books


def books_for(state: m.LedgerState) -> Books:
    key = (current_alias(), state.organization_id)
    cached = _cache.get(key)
    if cached and cached[0] == state.settings_version:
        return cached[1]
    books = _load_books(state.organization_id)
    with _cache_lock:
        _cache[key] = (state.settings_version, books)
    return books


def forget_books() -> None:
    """Drop every cached chart (tests flush databases under the cache)."""
    with _cache_lock:
        _cache.clear()


# --- the state row ---------------------------------------------------------------------------


DEFAULT_JOURNALS = (
    ("VE", "Ventes", m.JournalKind.SALES),
    ("BQ", "Banque", m.JournalKind.BANK),
    ("OD", "Opérations diverses", m.JournalKind.MISC),
)


def ensure_books(org_id: uuid.UUID) -> None:
    """Create the organization's ledger rows with the default chart (idempotent)."""
    m.AccountingSettings.objects.get_or_create(organization_id=org_id)
    for code, label, kind in DEFAULT_JOURNALS:
        m.Journal.objects.get_or_create(
            organization_id=org_id,
            code=code,
            defaults={"label": label, "kind": kind, "is_default": True},
        )
    m.Account.objects.bulk_create(
        [
            m.Account(organization_id=org_id, number=number, label=label)
            for number, label in sorted(DEFAULT_LABELS.items())
        ],
        ignore_conflicts=True,
    )
    try:
        with atomic():
            m.LedgerState.objects.get_or_create(organization_id=org_id)
    except IntegrityError:  # created concurrently
        pass


def lock_state(org_id: uuid.UUID) -> m.LedgerState:
    """Lock and return the organization's ledger state (creating the books the first time).

    Lock order: the audit chain head first (on PostgreSQL), then the ledger state. Every
    business write records an audit event, some before publishing their event (payments)
    and some after (issuing): taking the audit head here too keeps one order everywhere,
    so two such transactions never wait for each other."""
    from django.db import connections

    from facturo.audit.models import AuditChainHead

    if connections[current_alias()].vendor == "postgresql":
        list(
            AuditChainHead.objects.select_for_update()
            .filter(organization_id=org_id)
            .values_list("pk", flat=True)
        )
    state = m.LedgerState.objects.select_for_update().filter(organization_id=org_id).first()
    if state is None:
        ensure_books(org_id)
        state = m.LedgerState.objects.select_for_update().get(organization_id=org_id)
    return state


def bump_version(org_id: uuid.UUID) -> None:
    """Settings, accounts, journals or rules changed: the cached books are stale."""
    from django.db.models import F

    ensure_books(org_id)
    m.LedgerState.objects.filter(organization_id=org_id).update(
        settings_version=F("settings_version") + 1
    )


def check_open(state: m.LedgerState, on: dt.date) -> None:
    if state.locked_through and on <= state.locked_through:
        raise BusinessError(
            "accounting.period_closed",
            _(
                "The books are closed up to %(locked)s: nothing can be posted or issued on "
                "%(date)s. Use a later date, or ask the accountant (closed periods cannot "
                "be reopened)."
            ),
            field="date",
            locked=state.locked_through.isoformat(),
            date=on.isoformat(),
        )


# --- hashing ---------------------------------------------------------------------------------


def _units(amount: Decimal) -> int:
    return int(amount.scaleb(3))


def entry_payload(entry: m.Entry, lines: list[m.EntryLine]) -> dict[str, Any]:
    """What the hash covers: everything but the lettering (which may change)."""
    return {
        "id": str(entry.id),
        "number": entry.number,
        "journal": [entry.journal_code, entry.journal_label],
        "date": entry.date.isoformat(),
        "label": entry.label,
        "piece": [entry.piece_ref, entry.piece_date.isoformat()],
        "currency": entry.currency,
        "source": [entry.source_kind, entry.source_id],
        "reverses": str(entry.reverses_id or ""),
        "total": _units(entry.total),
        "validated_on": entry.validated_on.isoformat(),
        "lines": [
            [
                line.position,
                line.account,
                line.account_label,
                line.auxiliary,
                line.auxiliary_label,
                line.label,
                _units(line.debit),
                _units(line.credit),
                str(line.invoice_id or ""),
            ]
            for line in lines
        ],
    }


# --- posting ---------------------------------------------------------------------------------


def local_today() -> dt.date:
    return timezone.localdate()


def post(
    state: m.LedgerState,
    books: Books,
    entry: JournalEntry,
    *,
    source_id: str = "",
    source_kind: str = "",
    invoice_id: uuid.UUID | None = None,
    reverses: m.Entry | None = None,
    posted_by: str = "",
    bank_account: str = "",
    pending: list[tuple[list[m.EntryLine], m.Entry]] | None = None,
) -> m.Entry:
    """Store ``entry`` (already checked by ``core.ledger``) as the next entry of the
    organization's books. ``state`` must have been locked by ``lock_state`` in the current
    transaction. Lines on the customers' account are tagged with ``invoice_id``.

    With ``pending``, the rows are appended to it instead, for :func:`insert_all` to write
    with the batch's other entries (nothing in between may read the entries back)."""
    check_open(state, entry.date)
    if entry.currency != books.currency:
        raise BusinessError(
            "ledger.foreign_currency",
            _("The books are kept in %(book)s: a %(currency)s entry cannot be posted."),
            book=books.currency,
            currency=entry.currency,
        )
    org_id = state.organization_id
    number = state.last_number + 1
    previous = state.last_hash or GENESIS
    customers = books.settings.customers
    row = m.Entry(
        id=uuid7(),
        organization_id=org_id,
        number=number,
        journal_code=entry.journal.code,
        journal_label=entry.journal.label,
        date=entry.date,
        label=entry.label[:200],
        piece_ref=entry.piece_ref[:100],
        piece_date=entry.piece_date,
        currency=entry.currency,
        source_kind=source_kind or (entry.source.kind if entry.source else "manual"),
        source_id=source_id[:64],
        reverses=reverses,
        total=entry.total_debit,
        validated_on=local_today(),
        posted_at=timezone.now(),
        posted_by=posted_by[:255],
        previous_hash=previous,
    )
    lines = [
        m.EntryLine(
            entry_id=row.id,
            organization_id=org_id,
            position=i + 1,
            account=line.account,
            account_label=line.account_label[:200],
            auxiliary=line.auxiliary,
            auxiliary_label=line.auxiliary_label[:200],
            label=(line.label or entry.label)[:200],
            debit=line.debit,
            credit=line.credit,
            invoice_id=invoice_id if line.account == customers else None,
        )
        for i, line in enumerate(entry.lines)
    ]
    row.hash = link_hash(previous, entry_payload(row, lines))
    if pending is None:
        insert_all([(lines, row)])
    else:
        pending.append((lines, row))
    # The insert trigger checked that the entry continues the chain and moved its head.
    state.last_number = number
    state.last_hash = row.hash
    if entry.journal.code not in books.known_journals:  # e.g. a bank account's journal
        code, label = entry.journal.code, entry.journal.label
        m.Journal.objects.get_or_create(
            organization_id=org_id,
            code=code,
            defaults={"label": label, "kind": m.JournalKind.BANK, "account": bank_account},
        )
        on_commit(lambda: books.known_journals.add(code))
    missing = {line.account for line in entry.lines} - books.known_accounts
    if missing:
        m.Account.objects.bulk_create(
            [
                m.Account(organization_id=org_id, number=n, label=books.settings.label(n))
                for n in sorted(missing)
            ],
            ignore_conflicts=True,
        )
        on_commit(lambda: books.known_accounts.update(missing))
    return row


_LINE_COLUMNS = [
    "entry_id", "organization_id", "position", "account", "account_label", "auxiliary",
    "auxiliary_label", "label", "debit", "credit", "invoice_id", "lettering", "lettering_date",
]  # fmt: skip
_ENTRY_COLUMNS = [
    "id", "organization_id", "number", "journal_code", "journal_label", "date", "label",
    "piece_ref", "piece_date", "currency", "source_kind", "source_id", "reverses_id", "total",
    "validated_on", "posted_at", "posted_by", "previous_hash", "hash",
]  # fmt: skip


def _values(obj: Any, model: Any, columns: list[str], connection: Any) -> list[Any]:
    return [
        f.get_db_prep_save(getattr(obj, f.attname), connection)
        for f in _fields_of(model, tuple(columns))
    ]


@functools.lru_cache(maxsize=8)
def _fields_of(model: Any, columns: tuple[str, ...]) -> list[Any]:
    by_column = {f.column: f for f in model._meta.concrete_fields}
    return [by_column[c] for c in columns]


_ROWS = 500  # lines per INSERT: 13 parameters each, under SQLite's 32,766


def insert_all(rows: list[tuple[list[m.EntryLine], m.Entry]]) -> None:
    """Insert the lines then the entries by hand (the ORM's per-object work costs more than
    the statements here): the lines with a multi-row INSERT — or, for a batch on
    PostgreSQL, with COPY (the driver need not parse thousands of placeholders; the row
    triggers fire as for INSERT) —, then the entries one statement each, in order: the
    insert trigger checks that each continues the chain and moves its head; a batch's go
    in one ``executemany`` (pipelined by psycopg)."""
    from django.db import connections

    if not rows:
        return
    conn = connections[current_alias()]
    lines = [_values(x, m.EntryLine, _LINE_COLUMNS, conn) for ls, _row in rows for x in ls]
    entries = [_values(row, m.Entry, _ENTRY_COLUMNS, conn) for _lines, row in rows]
    with conn.cursor() as cur:
        if len(rows) > 1 and conn.vendor == "postgresql":
            with cur.cursor.copy(_LINE_COPY) as copy:
                for values in lines:
                    copy.write_row(values)
        else:
            for start in range(0, len(lines), _ROWS):
                part = lines[start : start + _ROWS]
                cur.execute(
                    _LINE_INSERT + ", ".join([_LINE_ROW] * len(part)),
                    [v for values in part for v in values],
                )
        if len(entries) == 1:
            cur.execute(_ENTRY_INSERT, entries[0])
        else:
            cur.executemany(_ENTRY_INSERT, entries)


_LINE_INSERT = f"INSERT INTO accounting_entryline ({', '.join(_LINE_COLUMNS)}) VALUES "  # noqa: S608
_LINE_ROW = "(" + ", ".join(["%s"] * len(_LINE_COLUMNS)) + ")"
_LINE_COPY = f"COPY accounting_entryline ({', '.join(_LINE_COLUMNS)}) FROM STDIN"
_ENTRY_INSERT = (
    f"INSERT INTO accounting_entry ({', '.join(_ENTRY_COLUMNS)}) VALUES ("  # noqa: S608
    + ", ".join(["%s"] * len(_ENTRY_COLUMNS))
    + ")"
)


def record_unposted(
    org_id: uuid.UUID, source_kind: str, source_id: str, reference: str, reason: str
) -> None:
    m.Unposted.objects.create(
        organization_id=org_id,
        source_kind=source_kind,
        source_id=source_id[:64],
        reference=reference[:100],
        reason=reason[:300],
    )


def customer_code(customer_id: uuid.UUID) -> str:
    """The customer's auxiliary account: stable, derived from the random part of its id."""
    return "C" + customer_id.hex[-10:].upper()


# --- lettering -------------------------------------------------------------------------------


def _code(n: int) -> str:
    letters = ""
    while True:
        n, r = divmod(n - 1, 26)
        letters = chr(65 + r) + letters
        if n == 0:
            return letters


def letter_invoice(state: m.LedgerState, invoice_id: uuid.UUID, on: dt.date) -> str:
    """Letter the invoice's customer-account lines if they balance (it is fully paid or
    credited); returns the code, or "" when they do not balance."""
    lines = list(
        m.EntryLine.objects.filter(
            organization_id=state.organization_id, invoice_id=invoice_id, lettering=""
        ).only("id", "debit", "credit")
    )
    if len(lines) < 2 or sum((x.debit - x.credit for x in lines), Decimal(0)) != 0:
        return ""
    state.last_lettering += 1
    code = _code(state.last_lettering)
    m.LedgerState.objects.filter(pk=state.pk).update(last_lettering=state.last_lettering)
    m.EntryLine.objects.filter(pk__in=[x.id for x in lines]).update(
        lettering=code, lettering_date=on
    )
    return code


def unletter_invoice(org_id: uuid.UUID, invoice_id: uuid.UUID) -> int:
    return (
        m.EntryLine.objects.filter(organization_id=org_id, invoice_id=invoice_id)
        .exclude(lettering="")
        .update(lettering="", lettering_date=None)
    )
