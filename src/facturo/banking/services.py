"""Bank accounts, statement imports, matching runs, reconciliation and its undo.

- **Import** (``import_statement``): file → ``formats.statements`` → lines inserted under the
  unique key ``(account, fingerprint)`` (ADR 0008), plus a soft check on the end-to-end id
  (a CAMT.054 without ``AcctSvcrRef`` then the CAMT.053 with it). A file for another
  account or in another currency is refused with the reason; a bad row refuses the whole
  file unless the caller chose "import valid lines" (then the row is reported, with why).
- **Matching** (``run_matching``): user rules first, then our own SEPA debits (collected or
  returned), then ``core.matching`` against the organization's open invoices (customer
  IBANs from mandates and from past manual matches). A proposal at or above the account's
  threshold is confirmed at once; below, it waits in the review queue on the line.
- **Confirm** (``confirm_payment``): in one transaction, one payment per customer through
  ``payments.services.record_payment`` with explicit allocations; a small difference is
  written off (the payment carries it as ``fees``, and ``WriteOffRecorded`` is published).
- **Undo** (``undo_match``): the payments created are taken back with
  ``payments.services.return_payment`` (allocations reversed, invoices reopen), audited.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections, models
from django.db.models import Sum
from django.utils import timezone
from rapidfuzz import fuzz
from schwifty import IBAN

from facturo.audit import services as audit
from facturo.core.bank import RejectedRow, Statement, StatementError, with_fingerprints
from facturo.core.errors import BusinessError, ConflictError, NotFound, _
from facturo.core.matching import (
    Matcher,
    MatchProposal,
    MatchSettings,
    OpenInvoice,
)
from facturo.core.matching import normalise_name as _normalise_name
from facturo.core.money import ZERO, check_currency, round_money
from facturo.core.text import clean_text
from facturo.customers.models import Customer
from facturo.formats.sepa.reference import creditor_reference
from facturo.formats.statements import CsvMapping, parse_statement_file
from facturo.foundation import events
from facturo.foundation.db import atomic, current_alias
from facturo.foundation.ids import uuid7
from facturo.invoicing.models import Invoice, Status
from facturo.organizations.context import Ctx, Perm
from facturo.organizations.models import DocumentKind
from facturo.payments import sepa
from facturo.payments import services as payments
from facturo.payments.models import (
    Allocation,
    DebitItem,
    Mandate,
    Method,
    Payment,
    PaymentStatus,
    Refund,
)

from . import events as bank_events
from .models import (
    BankAccount,
    BankLine,
    BankMatch,
    LearnedCounterparty,
    LineStatus,
    MatchKind,
    MatchPayment,
    MatchRule,
    RuleAction,
    StatementImport,
)
from .sources import FileSource, StatementSource

OPEN_LINE = (LineStatus.UNMATCHED, LineStatus.SUGGESTED)
PROVIDER = "bank"
CHUNK = 2000  # ids per IN (…) query: well under SQLite's 32,766 variables
Progress = Callable[[int, int], None]


def _get(model: Any, ctx: Ctx, pk: Any, code: str, message: str, *, lock: bool = False) -> Any:
    qs = model.objects.filter(organization=ctx.organization)
    if lock:
        qs = qs.select_for_update()
    try:
        return qs.get(pk=pk)
    except (model.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFound(code, message) from None


def get_account(ctx: Ctx, account_id: Any, *, lock: bool = False) -> BankAccount:
    ctx.require(Perm.VIEW)
    return _get(
        BankAccount,
        ctx,
        account_id,
        "bank.account_not_found",
        _("No such bank account."),
        lock=lock,
    )


def get_line(ctx: Ctx, line_id: Any, *, lock: bool = False) -> BankLine:
    ctx.require(Perm.VIEW)
    return _get(BankLine, ctx, line_id, "bank.line_not_found", _("No such bank line."), lock=lock)


# --- bank accounts ---------------------------------------------------------------------------


def normalise_iban(value: str, field: str = "iban") -> str:
    text = re.sub(r"\s+", "", str(value or "")).upper()
    try:
        return str(IBAN(text).compact)
    except ValueError:
        raise BusinessError(
            "bank.bad_iban", _("“%(value)s” is not a valid IBAN."), field, value=text[:40]
        ) from None


def create_account(
    ctx: Ctx,
    *,
    name: str,
    iban: str,
    bic: str = "",
    currency: str = "EUR",
    journal_code: str = "BQ1",
    ledger_account: str = "5121",
    auto_confirm_threshold: int = 90,
    write_off_account: str = "658",
    write_off_max: Any = "5.00",
    fee_account: str = "627",
) -> BankAccount:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    compact = normalise_iban(iban)
    check_currency(currency)
    if not 50 <= int(auto_confirm_threshold) <= 101:
        raise BusinessError(
            "bank.bad_threshold",
            _("The auto-confirm threshold is between 50 and 100 (101 turns it off)."),
            "auto_confirm_threshold",
        )
    limit = Decimal(str(write_off_max))
    if not limit.is_finite() or limit < 0 or round_money(limit, currency) != limit:
        raise BusinessError(
            "bank.bad_write_off", _("The largest write-off is an amount ≥ 0."), "write_off_max"
        )
    with atomic():
        if BankAccount.objects.filter(organization=ctx.organization, iban=compact).exists():
            raise ConflictError(
                "bank.account_exists",
                _("A bank account with IBAN %(iban)s already exists."),
                "iban",
                iban=compact,
            )
        account = BankAccount.objects.create(
            organization=ctx.organization,
            name=clean_text(name, "name", max_length=100) or compact,
            iban=compact,
            bic=clean_text(bic, "bic", max_length=11).upper(),
            currency=currency,
            journal_code=clean_text(journal_code, "journal_code", max_length=10) or "BQ1",
            ledger_account=clean_text(ledger_account, "ledger_account", max_length=20),
            auto_confirm_threshold=int(auto_confirm_threshold),
            write_off_account=clean_text(write_off_account, "write_off_account", max_length=20),
            write_off_max=limit,
            fee_account=clean_text(fee_account, "fee_account", max_length=20),
        )
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "bank.account_created",
            account,
            after={"iban": compact, "currency": currency, "journal": account.journal_code},
        )
    return account


def update_account(ctx: Ctx, account_id: Any, **changes: Any) -> BankAccount:
    """Change an account's name, BIC, journal, threshold, write-off and fee settings."""
    ctx.require(Perm.MANAGE_ORGANIZATION)
    allowed = {
        "name", "bic", "journal_code", "ledger_account", "auto_confirm_threshold",
        "write_off_account", "write_off_max", "fee_account", "is_active",
    }  # fmt: skip
    unknown = set(changes) - allowed
    if unknown:
        raise BusinessError(
            "bank.bad_field", _("Unknown bank account field(s): %(fields)s."), "fields",
            fields=", ".join(sorted(unknown)),
        )  # fmt: skip
    with atomic():
        account = get_account(ctx, account_id, lock=True)
        before = {k: getattr(account, k) for k in changes}
        for key, value in changes.items():
            if key == "auto_confirm_threshold":
                if not 50 <= int(value) <= 101:
                    raise BusinessError(
                        "bank.bad_threshold",
                        _("The auto-confirm threshold is between 50 and 100 (101 turns it off)."),
                        "auto_confirm_threshold",
                    )
                value = int(value)
            elif key == "write_off_max":
                value = Decimal(str(value))
                if (
                    not value.is_finite()
                    or value < 0
                    or round_money(value, account.currency) != value
                ):
                    raise BusinessError(
                        "bank.bad_write_off", _("The largest write-off is an amount ≥ 0."),
                        "write_off_max",
                    )  # fmt: skip
            elif key == "is_active":
                value = bool(value)
            else:
                limit = {"name": 100, "bic": 11, "journal_code": 10}.get(key, 20)
                value = clean_text(value, key, max_length=limit)
                if key == "bic":
                    value = value.upper()
                if key in ("name", "journal_code") and not value:
                    raise BusinessError("bank.required", _("This field is required."), key)
            setattr(account, key, value)
        account.save(update_fields=list(changes))
        audit.record(
            ctx.organization.id, ctx.actor, "bank.account_updated", account,
            before=before, after={k: getattr(account, k) for k in changes},
        )  # fmt: skip
    return account


def save_csv_mapping(ctx: Ctx, account_id: Any, mapping: dict[str, Any]) -> BankAccount:
    """Keep the CSV column mapping of this account's bank (checked by building it)."""
    ctx.require(Perm.MANAGE_ORGANIZATION)
    try:
        known = set(CsvMapping.__dataclass_fields__)
        unknown = set(mapping) - known
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        data = dict(mapping)
        if "remittance_columns" in data:
            data["remittance_columns"] = tuple(data["remittance_columns"])
        CsvMapping(**data)
    except (TypeError, ValueError) as exc:
        raise BusinessError(
            "bank.bad_csv_mapping",
            _("The CSV mapping is not valid: %(why)s."),
            "csv_mapping",
            why=str(exc),
        ) from None
    with atomic():
        account = get_account(ctx, account_id, lock=True)
        before = account.csv_mapping
        account.csv_mapping = dict(mapping)
        account.save(update_fields=["csv_mapping"])
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "bank.csv_mapping_saved",
            account,
            before=before,
            after=account.csv_mapping,
        )
    return account


def csv_mapping_of(account: BankAccount) -> CsvMapping | None:
    if not account.csv_mapping:
        return None
    data = dict(account.csv_mapping)
    if "remittance_columns" in data:
        data["remittance_columns"] = tuple(data["remittance_columns"])
    return CsvMapping(**data)


# --- import ----------------------------------------------------------------------------------


@dataclass
class ImportResult:
    account: BankAccount
    imports: list[StatementImport] = field(default_factory=list)
    new: int = 0
    duplicate: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    matched: int = 0
    suggested: int = 0
    line_ids: list[Any] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"new {self.new}, duplicate {self.duplicate}, rejected {len(self.rejected)}, "
            f"matched {self.matched}"
        )


def _account_for(ctx: Ctx, statement: Statement, given: BankAccount | None) -> BankAccount:
    iban = re.sub(r"\s+", "", statement.account_iban or "").upper()
    if given is not None:
        if iban and iban != given.iban and iban not in given.iban:
            raise StatementError(
                statement.source,
                f"statement {statement.statement_id or 1}",
                f"the file is for account {iban}, not for {given.name} ({given.iban}); "
                "choose the right account or create it first",
                code="statement.other_account",
            )
        return given
    if not iban:
        accounts = list(BankAccount.objects.filter(organization=ctx.organization, is_active=True))
        if len(accounts) == 1:
            return accounts[0]
        raise StatementError(
            statement.source,
            "file",
            "the file does not name its account: choose the bank account to import into",
            code="statement.account_needed",
        )
    account = BankAccount.objects.filter(organization=ctx.organization, iban=iban).first()
    if account is None:
        raise StatementError(
            statement.source,
            f"statement {statement.statement_id or 1}",
            f"no bank account with IBAN {iban} in this organization: create it first",
            code="statement.unknown_account",
        )
    return account


def _check_currency(statement: Statement, account: BankAccount) -> None:
    if statement.currency and statement.currency != account.currency:
        raise StatementError(
            statement.source,
            f"statement {statement.statement_id or 1}",
            f"the statement is in {statement.currency} but the account {account.name} is in "
            f"{account.currency}",
            code="statement.other_currency",
        )


def import_statement(
    ctx: Ctx,
    data: bytes,
    filename: str = "",
    *,
    account_id: Any = None,
    iban: str = "",
    import_valid_lines: bool = False,
    auto_match: bool = True,
    source: str = "file",
    progress: Progress | None = None,
) -> ImportResult:
    """Import one statement file (all of it, or only its valid lines when asked)."""
    ctx.require(Perm.EDIT_INVOICES)
    filename = clean_text(filename, "filename", max_length=255)
    given: BankAccount | None = None
    if account_id is not None:
        given = get_account(ctx, account_id)
    elif iban:
        compact = normalise_iban(iban, "account")
        given = BankAccount.objects.filter(organization=ctx.organization, iban=compact).first()
        if given is None:
            raise NotFound(
                "bank.account_not_found",
                _("No bank account with IBAN %(iban)s in this organization."),
                iban=compact,
            )
    mapping = csv_mapping_of(given) if given is not None else None
    if mapping is None and given is None:
        only = list(BankAccount.objects.filter(organization=ctx.organization, is_active=True))
        if len(only) == 1 and only[0].csv_mapping:
            mapping = csv_mapping_of(only[0])
    statements = parse_statement_file(
        data,
        filename,
        csv_mapping=mapping,
        account=given.iban if given else "",
        import_valid_lines=import_valid_lines,
    )
    targets = []
    for statement in statements:
        account = _account_for(ctx, statement, given)
        _check_currency(statement, account)
        targets.append((statement, account))
    if not targets:
        raise StatementError(filename, "file", "no statement in the file", code="statement.empty")
    digest = hashlib.sha256(data).hexdigest()
    result = ImportResult(targets[0][1])
    total = sum(len(s.lines) for s, _a in targets)
    done = 0
    with atomic():
        for statement, account in targets:
            account = BankAccount.objects.select_for_update().get(pk=account.pk)
            result.account = account
            named = re.sub(r"\s+", "", statement.account_iban or "").upper()
            # The parser fingerprinted the lines with the file's account; only a file that
            # names no IBAN (CSV, OFX account number) needs them again with the account's.
            lines = (
                statement.lines
                if named == account.iban and all(x.fingerprint for x in statement.lines)
                else with_fingerprints(account.iban, statement.lines)
            )
            rejected = list(statement.rejected)
            kept = []
            for line in lines:
                if line.currency != account.currency:
                    problem = (
                        f"the line is in {line.currency} but the account is in {account.currency}"
                    )
                    if not import_valid_lines:
                        raise StatementError(
                            statement.source, line.position, problem, "statement.other_currency"
                        )
                    rejected.append(RejectedRow(line.position, problem))
                elif line.amount == 0:
                    rejected.append(RejectedRow(line.position, "zero amount (information only)"))
                else:
                    kept.append(line)
            existing: set[str] = set()
            fps = [line.fingerprint for line in kept]
            for start in range(0, len(fps), CHUNK):
                existing.update(
                    BankLine.objects.filter(
                        account=account, fingerprint__in=fps[start : start + CHUNK]
                    ).values_list("fingerprint", flat=True)
                )
            e2e = {
                line.end_to_end_id
                for line in kept
                if line.end_to_end_id and line.end_to_end_id.upper() != "NOTPROVIDED"
            }
            known_e2e: set[tuple[str, Decimal]] = set()
            e2e_list = sorted(e2e)
            for start in range(0, len(e2e_list), CHUNK):
                known_e2e.update(
                    BankLine.objects.filter(
                        account=account, end_to_end_id__in=e2e_list[start : start + CHUNK]
                    ).values_list("end_to_end_id", "amount")
                )
            dates = [line.booking_date for line in kept]
            balances: dict[str, Any] = {
                "opening_balance": statement.opening_balance.amount
                if statement.opening_balance
                else None,
                "closing_balance": statement.closing_balance.amount
                if statement.closing_balance
                else None,
            }
            record = StatementImport.objects.create(
                **balances,
                organization=ctx.organization,
                account=account,
                source=source[:30],
                filename=filename,
                format=statement.format[:40],
                sha256=digest,
                statement_ids=statement.statement_id[:500],
                period_start=min(dates) if dates else None,
                period_end=max(dates) if dates else None,
                balance_checked=statement.balance_checked,
                created_by=ctx.actor.label,
            )
            new_rows: list[dict[str, Any]] = []
            duplicates = 0
            seen: set[str] = set()
            for line in kept:
                done += 1
                key = (line.end_to_end_id, line.amount)
                if line.fingerprint in existing or line.fingerprint in seen or key in known_e2e:
                    duplicates += 1
                    continue
                seen.add(line.fingerprint)
                new_rows.append(
                    {
                        "id": uuid7(),
                        "organization_id": ctx.organization.pk,
                        "account_id": account.pk,
                        "statement_import_id": record.pk,
                        "booking_date": line.booking_date,
                        "value_date": line.value_date,
                        "amount": line.amount,
                        "currency": line.currency,
                        "counterparty_name": line.counterparty_name[:140],
                        "counterparty_iban": line.counterparty_iban[:34],
                        "remittance_unstructured": line.remittance_unstructured[:500],
                        "remittance_structured": line.remittance_structured[:35],
                        "end_to_end_id": line.end_to_end_id[:35],
                        "bank_reference": line.bank_reference[:100],
                        "return_reason": line.return_reason[:4],
                        "fingerprint": line.fingerprint,
                        "position": line.position[:100],
                    }
                )
                if progress is not None and done % 1000 == 0:
                    progress(done, total)
            _insert_lines(new_rows)
            record.new_count = len(new_rows)
            record.duplicate_count = duplicates
            record.rejected_count = len(rejected)
            record.rejected = [
                {"position": r.position, "reason": r.reason, "raw": r.raw} for r in rejected
            ]
            record.save(
                update_fields=["new_count", "duplicate_count", "rejected_count", "rejected"]
            )
            audit.record(
                ctx.organization.id,
                ctx.actor,
                "bank.statement_imported",
                record,
                after={
                    "file": filename,
                    "format": statement.format,
                    "new": len(new_rows),
                    "duplicate": duplicates,
                    "rejected": len(rejected),
                },
            )
            result.imports.append(record)
            result.new += len(new_rows)
            result.duplicate += duplicates
            result.rejected.extend(rejected)
            result.line_ids.extend(row["id"] for row in new_rows)
    if progress is not None:
        progress(total, total)
    if auto_match and result.line_ids:
        run = run_matching(ctx, line_ids=result.line_ids)
        result.matched = run.confirmed
        result.suggested = run.suggested
        for record in result.imports:
            record.matched_count = BankLine.objects.filter(
                statement_import=record, status=LineStatus.MATCHED
            ).count()
            record.save(update_fields=["matched_count"])
    return result


def _insert_lines(rows: Sequence[dict[str, Any]]) -> None:
    """Insert new lines with one prepared INSERT run by ``executemany``: ``bulk_create``
    builds a model per row and SQLite caps it at ~47 rows per statement, which made 100,000
    lines cost minutes. Values still go through each field's own database conversion."""
    if not rows:
        return
    connection = connections[current_alias()]
    fields = list(BankLine._meta.concrete_fields)
    defaults = {"status": LineStatus.UNMATCHED, "suggestion": None, "created_at": timezone.now()}
    convert = [_converter(f, connection) for f in fields]
    table = connection.ops.quote_name(BankLine._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.attname) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 - names from the model
    params = []
    for row in rows:
        values = []
        for f, conv in zip(fields, convert, strict=True):
            value = row[f.attname] if f.attname in row else defaults[f.attname]
            values.append(value if conv is None else conv(value))
        params.append(values)
    with connection.cursor() as cursor:
        for start in range(0, len(params), 5000):
            cursor.executemany(sql, params[start : start + 5000])


def _converter(field: Any, connection: Any) -> Callable[[Any], Any] | None:
    """How a value of ``field`` goes to the database (None: as it is)."""
    if isinstance(field, models.CharField | models.TextField | models.BooleanField):
        return None
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if isinstance(target, models.UUIDField):
        if connection.features.has_native_uuid_field:
            return None
        return lambda v: v.hex if v is not None else None
    if type(field) is models.DateField:
        return lambda v: connection.ops.adapt_datefield_value(v)
    return functools.partial(_prep, field, connection)


def _prep(field: Any, connection: Any, value: Any) -> Any:
    return field.get_db_prep_save(value, connection)


def import_from_source(
    ctx: Ctx, account_id: Any, source: StatementSource, since: dt.date | None = None
) -> list[ImportResult]:
    """Import every document a source yields for the account (live feeds, later)."""
    account = get_account(ctx, account_id)
    return [
        import_statement(ctx, doc.data, doc.filename, account_id=account.pk, source=source.name)
        for doc in source.fetch(account.iban, since)
    ]


def import_file(ctx: Ctx, account_id: Any, filename: str, data: bytes) -> ImportResult:
    [result] = import_from_source(ctx, account_id, FileSource(filename, data))
    return result


# --- open invoices for the engine ------------------------------------------------------------


def _scaled_sum(value: Any) -> Decimal:
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(int(value)).scaleb(-3)


def open_invoices(ctx: Ctx, currency: str, customer_id: Any = None) -> list[OpenInvoice]:
    """The organization's invoices that still owe money, as the matching engine sees them."""
    qs = Invoice.objects.filter(
        organization=ctx.organization,
        currency=currency,
        kind__in=payments.PAYABLE_KINDS,
        status__in=payments.OPEN_STATUSES,
    ).select_related("customer")
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    invoices = list(qs)
    ids = [i.pk for i in invoices]
    paid: dict[Any, Decimal] = {}
    credited: dict[Any, Decimal] = {}
    e2e: dict[Any, list[str]] = defaultdict(list)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in (
            Allocation.objects.filter(invoice_id__in=chunk, reversed_at__isnull=True)
            .values("invoice_id")
            .annotate(s=Sum("amount"))
        ):
            paid[row["invoice_id"]] = _scaled_sum(row["s"])
        for note_of, total in (
            Invoice.objects.filter(credited_invoice_id__in=chunk, kind=DocumentKind.CREDIT_NOTE)
            .exclude(status=Status.DRAFT)
            .values("credited_invoice_id")
            .annotate(s=Sum("total_incl_vat"))
            .values_list("credited_invoice_id", "s")
        ):
            credited[note_of] = _scaled_sum(total)
    ibans: dict[Any, set[str]] = defaultdict(set)
    for customer_id_, iban in Mandate.objects.filter(organization=ctx.organization).values_list(
        "customer_id", "iban"
    ):
        ibans[customer_id_].add(iban.replace(" ", "").upper())
    for key, customer_id_ in LearnedCounterparty.objects.filter(
        organization=ctx.organization, key__startswith="iban:"
    ).values_list("key", "customer_id"):
        ibans[customer_id_].add(key[5:])
    result = []
    for inv in invoices:
        due = max(ZERO, (inv.total_incl_vat or ZERO) - credited.get(inv.pk, ZERO))
        due -= paid.get(inv.pk, ZERO)
        if due <= 0:
            continue
        try:
            reference = creditor_reference(inv.number or "")
        except Exception:  # a number without letters or digits has no RF reference
            reference = ""
        result.append(
            OpenInvoice(
                id=str(inv.pk),
                number=inv.number or "",
                customer_id=str(inv.customer_id),
                customer_name=inv.customer.name,
                open_amount=due,
                currency=inv.currency,
                due_date=inv.due_date or inv.issue_date or dt.date.min,
                reference=reference,
                customer_ibans=tuple(sorted(ibans.get(inv.customer_id, ()))),
                end_to_end_ids=tuple(e2e.get(inv.pk, ())),
            )
        )
    return result


def fuzzy_similarity(a: str, b: str) -> float:
    """``core.matching.name_similarity`` (sorted words, normalised edit similarity) by
    rapidfuzz: the same scale, many times faster than difflib."""
    if not a or not b:
        return 0.0
    return float(fuzz.token_sort_ratio(a, b, processor=None)) / 100.0


def match_settings(account: BankAccount) -> MatchSettings:
    return MatchSettings(tolerance_absolute=account.write_off_max, similarity=fuzzy_similarity)


# --- rules -----------------------------------------------------------------------------------


def create_rule(
    ctx: Ctx,
    *,
    name: str,
    label_contains: str = "",
    label_regex: str = "",
    counterparty_contains: str = "",
    amount_min: Any = None,
    amount_max: Any = None,
    customer_id: Any = None,
    ledger_account: str = "",
    target_kind: str = MatchKind.PAYMENT,
    action: str = RuleAction.SUGGEST,
    account_id: Any = None,
    priority: int = 100,
) -> MatchRule:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    if label_regex:
        try:
            re.compile(label_regex)
        except re.error as exc:
            raise BusinessError(
                "bank.bad_regex",
                _("The regular expression is not valid: %(why)s."),
                "label_regex",
                why=str(exc),
            ) from None
    if not (label_contains or label_regex or counterparty_contains or amount_min or amount_max):
        raise BusinessError(
            "bank.rule_empty", _("A rule needs at least one condition."), "label_contains"
        )
    if target_kind not in MatchKind.values or action not in RuleAction.values:
        raise BusinessError("bank.bad_rule", _("Unknown rule target or action."), "target_kind")
    if target_kind == MatchKind.PAYMENT and customer_id is None:
        raise BusinessError(
            "bank.rule_target", _("A payment rule names the customer."), "customer_id"
        )
    if target_kind in (MatchKind.EXPENSE, MatchKind.FEE) and not ledger_account:
        raise BusinessError(
            "bank.rule_target",
            _("An expense or fee rule names the ledger account."),
            "ledger_account",
        )
    with atomic():
        customer = None
        if customer_id is not None:
            customer = _get(
                Customer, ctx, customer_id, "customer.not_found", _("No such customer.")
            )
        account = get_account(ctx, account_id) if account_id is not None else None
        bounds: dict[str, Any] = {
            "amount_min": None if amount_min in (None, "") else Decimal(str(amount_min)),
            "amount_max": None if amount_max in (None, "") else Decimal(str(amount_max)),
        }
        rule = MatchRule.objects.create(
            organization=ctx.organization,
            account=account,
            name=clean_text(name, "name", max_length=100),
            label_contains=clean_text(label_contains, "label_contains", max_length=100),
            label_regex=label_regex[:200],
            counterparty_contains=clean_text(
                counterparty_contains, "counterparty_contains", max_length=100
            ),
            **bounds,
            customer=customer,
            ledger_account=clean_text(ledger_account, "ledger_account", max_length=20),
            target_kind=target_kind,
            action=action,
            priority=priority,
        )
        audit.record(
            ctx.organization.id, ctx.actor, "bank.rule_created", rule, after={"name": name}
        )
    return rule


def rule_applies(rule: MatchRule, line: BankLine) -> bool:
    if rule.account_id is not None and rule.account_id != line.account_id:
        return False
    label = line.label.upper()
    if rule.label_contains and rule.label_contains.upper() not in label:
        return False
    if rule.label_regex:
        try:
            if not re.search(rule.label_regex, line.label, re.IGNORECASE):
                return False
        except re.error:
            return False
    if (
        rule.counterparty_contains
        and rule.counterparty_contains.upper() not in line.counterparty_name.upper()
    ):
        return False
    magnitude = abs(line.amount)
    if rule.amount_min is not None and magnitude < rule.amount_min:
        return False
    if rule.amount_max is not None and magnitude > rule.amount_max:
        return False
    if rule.target_kind == MatchKind.PAYMENT and not line.is_credit:
        return False
    return not (rule.target_kind in (MatchKind.EXPENSE, MatchKind.FEE) and line.is_credit)


# --- matching run ----------------------------------------------------------------------------


@dataclass
class MatchRun:
    confirmed: int = 0
    suggested: int = 0
    unmatched: int = 0
    errors: list[str] = field(default_factory=list)


def _suggestion(proposal: MatchProposal, *, reason: str = "", rule: str = "") -> dict[str, Any]:
    return {
        "kind": MatchKind.PAYMENT,
        "allocations": [[a.invoice_id, str(a.amount)] for a in proposal.allocations],
        "confidence": proposal.confidence,
        "reason": reason or proposal.reason,
        "detail": proposal.detail,
        "write_off": str(proposal.write_off),
        "unallocated": str(proposal.unallocated),
        "rule": rule,
    }


def _counterparty_keys(line: BankLine) -> list[str]:
    """How a line's counterparty is remembered: by IBAN first, then by normalised name."""
    keys = []
    if line.counterparty_iban:
        keys.append("iban:" + line.counterparty_iban)
    name = _normalise_name(line.counterparty_name)
    if name:
        keys.append("name:" + name[:135])
    return keys


def _learned_customer(ctx: Ctx, line: BankLine) -> Any:
    for key in _counterparty_keys(line):
        row = (
            LearnedCounterparty.objects.filter(organization=ctx.organization, key=key)
            .order_by("-times", "-last_used")
            .first()
        )
        if row is not None:
            return row.customer_id
    return None


def _as_statement_line(line: BankLine) -> Any:
    from facturo.core.bank import StatementLine

    return StatementLine(
        booking_date=line.booking_date,
        amount=line.amount,
        currency=line.currency,
        value_date=line.value_date,
        counterparty_name=line.counterparty_name,
        counterparty_iban=line.counterparty_iban,
        remittance_unstructured=line.remittance_unstructured,
        remittance_structured=line.remittance_structured,
        end_to_end_id=line.end_to_end_id,
        bank_reference=line.bank_reference,
        position=str(line.pk),
        fingerprint=line.fingerprint,
    )


def _suggest(line: BankLine, suggestion: dict[str, Any]) -> None:
    """Put the proposal on the line for review, unless the line was reconciled meanwhile
    (another run, a person): a conditional update, so a reconciled line is never reopened."""
    BankLine.objects.filter(pk=line.pk, status__in=OPEN_LINE).update(
        status=LineStatus.SUGGESTED, suggestion=suggestion
    )


def _try_confirm(ctx: Ctx, line: BankLine, suggestion: dict[str, Any], run: MatchRun) -> bool:
    try:
        accept_suggestion(ctx, line.pk, automatic=True, suggestion=suggestion)
    except BusinessError as exc:
        run.errors.append(f"{line.pk}: {exc.message}")
        suggestion = dict(suggestion, detail=f"{suggestion.get('detail', '')} ({exc.message})")
        with atomic():
            _suggest(line, suggestion)
        return False
    return True


def run_matching(
    ctx: Ctx,
    *,
    account_id: Any = None,
    line_ids: Sequence[Any] | None = None,
    progress: Progress | None = None,
) -> MatchRun:
    """Propose (and, above the threshold, confirm) a reconciliation for every open line."""
    ctx.require(Perm.EDIT_INVOICES)
    qs = BankLine.objects.filter(organization=ctx.organization, status__in=OPEN_LINE)
    if account_id is not None:
        qs = qs.filter(account_id=get_account(ctx, account_id).pk)
    if line_ids is not None:
        qs = qs.filter(pk__in=list(line_ids))
    lines = list(qs.select_related("account").order_by("booking_date", "created_at"))
    rules = list(
        MatchRule.objects.filter(organization=ctx.organization, is_active=True).order_by(
            "priority", "created_at"
        )
    )
    run = MatchRun()
    pending: dict[tuple[Any, str], list[BankLine]] = defaultdict(list)
    debits: list[BankLine] = []
    for n, line in enumerate(lines, 1):
        if progress is not None and n % 500 == 0:
            progress(n, len(lines))
        account = line.account
        rule = next((r for r in rules if rule_applies(r, line)), None)
        if rule is not None and _apply_rule(ctx, line, rule, run):
            continue
        if _sepa(ctx, line, run):
            continue
        if line.is_credit:
            pending[(account.pk, account.currency)].append(line)
        elif not _refund(ctx, line, run, confident_only=True):
            debits.append(line)
    # Weaker refund proposals only once every confident one has taken its refund.
    for line in debits:
        if not _refund(ctx, line, run, confident_only=False):
            run.unmatched += 1
    for (_account, currency), credit_lines in pending.items():
        account = credit_lines[0].account
        invoices = open_invoices(ctx, currency)
        matcher = Matcher(invoices, match_settings(account))
        proposals = matcher.match([_as_statement_line(x) for x in credit_lines])
        for line, proposal in zip(credit_lines, proposals, strict=True):
            if proposal is None or not proposal.allocations:
                customer_id = _learned_customer(ctx, line)
                learned = None
                if customer_id is not None:
                    subset = open_invoices(ctx, currency, customer_id)
                    settings = match_settings(account)
                    [learned] = Matcher(subset, settings).match([_as_statement_line(line)])
                    if learned is None and subset:
                        learned = Matcher(subset, settings)._customer_amount(
                            _as_statement_line(line), str(customer_id), 80, "learned"
                        )
                if learned is not None and learned.allocations:
                    suggestion = _suggestion(learned, reason="learned")
                    suggestion["confidence"] = min(learned.confidence, 80)
                    with atomic():
                        _suggest(line, suggestion)
                    run.suggested += 1
                else:
                    run.unmatched += 1
                continue
            suggestion = _suggestion(proposal)
            auto = (
                proposal.confidence >= account.auto_confirm_threshold
                and proposal.write_off <= account.write_off_max
            )
            if auto and _try_confirm(ctx, line, suggestion, run):
                run.confirmed += 1
            elif auto:
                run.suggested += 1
            else:
                with atomic():
                    _suggest(line, suggestion)
                run.suggested += 1
    return run


def _apply_rule(ctx: Ctx, line: BankLine, rule: MatchRule, run: MatchRun) -> bool:
    auto = rule.action == RuleAction.CONFIRM
    suggestion: dict[str, Any]
    if rule.target_kind in (MatchKind.EXPENSE, MatchKind.FEE):
        suggestion = {
            "kind": rule.target_kind,
            "ledger_account": rule.ledger_account,
            "label": rule.name,
            "confidence": 100 if auto else 80,
            "reason": "rule",
            "detail": f"rule “{rule.name}”",
            "rule": str(rule.pk),
        }
        if auto:
            with atomic():
                record_expense(
                    ctx,
                    line.pk,
                    kind=rule.target_kind,
                    ledger_account=rule.ledger_account,
                    label=rule.name,
                    automatic=True,
                    reason="rule",
                )
            run.confirmed += 1
        else:
            with atomic():
                _suggest(line, suggestion)
            run.suggested += 1
        return True
    if rule.target_kind == MatchKind.PAYMENT and rule.customer_id is not None:
        invoices = open_invoices(ctx, line.currency, rule.customer_id)
        stmt_line = _as_statement_line(line)
        matcher = Matcher(invoices, match_settings(line.account))
        proposal = matcher.match([stmt_line])[0] or (
            matcher._customer_amount(stmt_line, str(rule.customer_id), 90, "rule")
            if invoices
            else None
        )
        if proposal is None or not proposal.allocations:
            suggestion = {
                "kind": MatchKind.PAYMENT,
                "allocations": [],
                "customer_id": str(rule.customer_id),
                "confidence": 70,
                "reason": "rule",
                "detail": f"rule “{rule.name}”: payment on account",
                "write_off": "0",
                "unallocated": str(line.amount),
                "rule": str(rule.pk),
            }
        else:
            suggestion = _suggestion(proposal, reason="rule", rule=str(rule.pk))
            suggestion["detail"] = f"rule “{rule.name}”: {proposal.detail}"
        if auto and _try_confirm(ctx, line, suggestion, run):
            run.confirmed += 1
        else:
            if not auto:
                with atomic():
                    _suggest(line, suggestion)
            run.suggested += 1
        return True
    return False


def _debit_item(ctx: Ctx, line: BankLine) -> DebitItem | None:
    if not line.end_to_end_id or line.end_to_end_id.upper() == "NOTPROVIDED":
        return None
    return (
        DebitItem.objects.filter(organization=ctx.organization, end_to_end_id=line.end_to_end_id)
        .select_related("payment", "batch")
        .order_by("-batch__created_at")
        .first()
    )


def _sepa(ctx: Ctx, line: BankLine, run: MatchRun) -> bool:
    """Our own SEPA debits: a credit collects one, a debit with the same id returns it."""
    item = _debit_item(ctx, line)
    if item is None:
        return False
    payment = item.payment
    if line.is_credit and line.amount == item.amount and payment.status == PaymentStatus.PENDING:
        with atomic():
            _record_settlement(ctx, line, item, automatic=True)
        run.confirmed += 1
        return True
    already = MatchPayment.objects.filter(
        payment=payment, match__kind=MatchKind.RETURN, match__undone_at__isnull=True
    ).exists()
    if not line.is_credit and -line.amount == item.amount and not already:
        if payment.status == PaymentStatus.RETURNED:
            # Recorded from the bank's return file (pain.002 / camt.054) already: the
            # statement line only confirms it.
            record_return(ctx, line.pk, payment.pk, line.return_reason, automatic=True)
            run.confirmed += 1
            return True
        suggestion = {
            "kind": MatchKind.RETURN,
            "payment_id": str(payment.pk),
            "reason_code": line.return_reason,
            "confidence": 98 if line.return_reason in sepa.RETURN_REASONS else 80,
            "reason": "end_to_end_id",
            "detail": f"return of our SEPA debit {line.end_to_end_id}",
        }
        if line.return_reason in sepa.RETURN_REASONS:
            record_return(ctx, line.pk, payment.pk, line.return_reason, automatic=True)
            run.confirmed += 1
        else:
            with atomic():
                _suggest(line, suggestion)
            run.suggested += 1
        return True
    return False


def _linked_refunds(ctx: Ctx) -> set[str]:
    linked: set[str] = set()
    for ids in BankMatch.objects.filter(
        organization=ctx.organization, kind=MatchKind.REFUND, undone_at__isnull=True
    ).values_list("refund_ids", flat=True):
        linked.update(ids)
    return linked


def _refund(ctx: Ctx, line: BankLine, run: MatchRun, *, confident_only: bool) -> bool:
    """A debit of exactly a refund's amount (not yet reconciled) pays that refund back;
    confirmed when the counterparty is the refund's customer (IBAN or name)."""
    linked = _linked_refunds(ctx)
    refunds = [
        r
        for r in Refund.objects.filter(
            organization=ctx.organization, amount=-line.amount, payment__currency=line.currency
        ).select_related("payment__customer")
        if str(r.pk) not in linked
    ]
    if not refunds:
        return False
    learned = _learned_customer(ctx, line)
    name = _normalise_name(line.counterparty_name)
    known = [
        r
        for r in refunds
        if r.payment.customer_id == learned
        or (name and fuzzy_similarity(name, _normalise_name(r.payment.customer.name)) >= 0.85)
    ]
    chosen = known[0] if len(known) == 1 else refunds[0]
    confidence = 92 if len(known) == 1 else (70 if len(refunds) == 1 else 40)
    suggestion = {
        "kind": MatchKind.REFUND,
        "refund_ids": [str(chosen.pk)],
        "confidence": confidence,
        "reason": "refund",
        "detail": f"refund of {chosen.amount} to {chosen.payment.customer.name}",
    }
    if confidence >= line.account.auto_confirm_threshold:
        record_refund(ctx, line.pk, [chosen.pk], automatic=True, confidence=confidence)
        run.confirmed += 1
    elif confident_only:
        return False
    else:
        with atomic():
            _suggest(line, suggestion)
        run.suggested += 1
    return True


def record_refund(
    ctx: Ctx, line_id: Any, refund_ids: Sequence[Any], *, automatic: bool = False,
    confidence: int | None = None,
) -> BankMatch:  # fmt: skip
    """A debit line is the transfer of refund(s) recorded in payments."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        line = _locked_open_line(ctx, line_id)
        if line.is_credit:
            raise BusinessError("bank.not_a_debit", _("A refund is money going out."), "line_id")
        refunds = []
        for refund_id in refund_ids:
            refunds.append(_get(Refund, ctx, refund_id, "refund.not_found", _("No such refund.")))
        taken = _linked_refunds(ctx) & {str(r.pk) for r in refunds}
        if taken:
            raise ConflictError(
                "bank.refund_reconciled",
                _("This refund is already reconciled with another bank line."),
                "refund_ids",
            )
        total = sum((r.amount for r in refunds), ZERO)
        if not refunds or total != -line.amount:
            raise BusinessError(
                "bank.refund_amount",
                _("The refunds (%(total)s) are not the line's amount (%(amount)s)."),
                "refund_ids",
                total=str(total),
                amount=str(-line.amount),
            )
        match = _new_match(
            ctx, line, MatchKind.REFUND, automatic=automatic, confidence=confidence,
            reason="refund", refund_ids=[str(r.pk) for r in refunds],
            detail=", ".join(f"{r.amount} {r.payment.customer.name}" for r in refunds),
        )  # fmt: skip
        MatchPayment.objects.bulk_create(
            [MatchPayment(match=match, payment_id=r.payment_id) for r in refunds]
        )
        audit.record(
            ctx.organization.id, ctx.actor, "bank.refund_matched", match,
            after={"line": str(line.pk), "refunds": [str(r.pk) for r in refunds]},
        )  # fmt: skip
        _publish_matched(
            ctx, line, match, MatchKind.REFUND, automatic, {r.payment_id for r in refunds}
        )
    return match


def rematch_open_lines() -> int:
    """For the periodic job: match again the open lines of every organization (invoices
    issued after a statement was imported can now be found). Safe to run twice or
    concurrently: a line is confirmed once (locked, status checked), proposals never reopen
    a reconciled line. Returns how many lines were confirmed."""
    from facturo.audit.services import SYSTEM
    from facturo.organizations.models import Organization

    confirmed = 0
    orgs = BankLine.objects.filter(status__in=OPEN_LINE).values("organization_id").distinct()
    for org in Organization.objects.filter(pk__in=orgs):
        confirmed += run_matching(Ctx(org, "owner", SYSTEM)).confirmed
    return confirmed


# --- confirming ------------------------------------------------------------------------------


def _locked_open_line(ctx: Ctx, line_id: Any) -> BankLine:
    line = get_line(ctx, line_id, lock=True)
    if line.status not in OPEN_LINE:
        raise ConflictError(
            "bank.line_reconciled",
            _("This bank line is already reconciled: undo its match first."),
        )
    return line


def _new_match(
    ctx: Ctx,
    line: BankLine,
    kind: str,
    *,
    automatic: bool,
    confidence: int | None,
    reason: str,
    detail: str = "",
    **extra: Any,
) -> BankMatch:
    match = BankMatch.objects.create(
        organization=ctx.organization,
        line=line,
        kind=kind,
        automatic=automatic,
        confidence=confidence,
        reason=reason[:40],
        detail=detail[:300],
        created_by=ctx.actor.label,
        **extra,
    )
    line.status = LineStatus.MATCHED
    line.suggestion = None
    line.save(update_fields=["status", "suggestion"])
    return match


def _learn(ctx: Ctx, line: BankLine, customer_id: Any) -> None:
    for key in _counterparty_keys(line):
        row, created = LearnedCounterparty.objects.get_or_create(
            organization=ctx.organization, key=key, customer_id=customer_id
        )
        if not created:
            row.times += 1
            row.save(update_fields=["times", "last_used"])


def confirm_payment(
    ctx: Ctx,
    line_id: Any,
    allocations: Sequence[tuple[Any, Any]],
    *,
    write_off: Any = "0",
    customer_id: Any = None,
    automatic: bool = False,
    confidence: int | None = None,
    reason: str = "manual",
    detail: str = "",
) -> BankMatch:
    """Reconcile a bank credit with invoices: one payment per customer, allocations explicit
    (a line may be split across invoices), a small difference written off, any excess left
    on the customer's credit. ``allocations=[]`` with ``customer_id``: a payment on account."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        line = _locked_open_line(ctx, line_id)
        account = line.account
        if not line.is_credit:
            raise BusinessError(
                "bank.not_a_credit", _("Only money received can pay invoices."), "line_id"
            )
        try:
            difference = Decimal(str(write_off or "0"))
        except ArithmeticError:
            difference = Decimal(-1)
        if (
            not difference.is_finite()
            or difference < 0
            or round_money(difference, line.currency) != difference
        ):
            raise BusinessError(
                "bank.bad_write_off", _("The write-off is an amount ≥ 0."), "write_off"
            )
        if difference > account.write_off_max:
            raise BusinessError(
                "bank.write_off_too_large",
                _("A write-off of %(amount)s is above this account's limit of %(limit)s."),
                "write_off",
                amount=str(difference),
                limit=str(account.write_off_max),
            )
        parts: list[tuple[Invoice, Decimal]] = []
        for position, (invoice_id, raw) in enumerate(allocations, start=1):
            invoice = _get(
                Invoice, ctx, invoice_id, "invoice.not_found", _("No such invoice."), lock=True
            )
            try:
                amount = Decimal(str(raw))
            except ArithmeticError:
                amount = Decimal(-1)
            if not amount.is_finite() or amount <= 0:
                raise BusinessError(
                    "bank.bad_amount",
                    _("Allocation %(n)s: the amount must be positive."),
                    f"allocations.{position}.amount",
                    n=position,
                )
            parts.append((invoice, amount))
        allocated = sum((a for _i, a in parts), ZERO)
        excess = line.amount + difference - allocated
        if excess < 0:
            raise BusinessError(
                "bank.over_allocated",
                _(
                    "The allocations (%(allocated)s) exceed the line (%(amount)s) plus the "
                    "write-off (%(write_off)s)."
                ),
                "allocations",
                allocated=str(allocated),
                amount=str(line.amount),
                write_off=str(difference),
            )
        if difference and not parts:
            raise BusinessError(
                "bank.write_off_needs_invoice",
                _("A write-off closes an invoice: choose the invoice."),
                "write_off",
            )
        if difference and excess:
            raise BusinessError(
                "bank.write_off_and_excess",
                _("Nothing is written off when the line pays more than the invoices."),
                "write_off",
            )
        by_customer: dict[Any, list[tuple[Invoice, Decimal]]] = defaultdict(list)
        for invoice, amount in parts:
            by_customer[invoice.customer_id].append((invoice, amount))
        if not by_customer:
            if customer_id is None:
                raise BusinessError(
                    "bank.nothing_to_confirm",
                    _("Choose the invoices this line pays, or the customer who paid."),
                    "allocations",
                )
            customer = _get(
                Customer, ctx, customer_id, "customer.not_found", _("No such customer.")
            )
            by_customer[customer.pk] = []
        elif customer_id is not None and str(customer_id) not in {str(c) for c in by_customer}:
            raise BusinessError(
                "payment.other_customer",
                _("The invoices chosen belong to another customer."),
                "customer_id",
            )
        write_off_invoice = parts[-1][0] if difference else None
        created: list[Payment] = []
        label = (line.label or line.counterparty_name)[:200]
        for n, (customer_pk, items) in enumerate(by_customer.items()):
            amount = sum((a for _i, a in items), ZERO) + (excess if n == 0 else ZERO)
            fees = (
                difference
                if write_off_invoice is not None and write_off_invoice.customer_id == customer_pk
                else ZERO
            )
            payment = payments.record_payment(
                ctx,
                customer_id=customer_pk,
                amount=amount,
                currency=line.currency,
                method=Method.TRANSFER,
                received_on=line.booking_date,
                payer=line.counterparty_name[:200],
                reference=clean_text(label, "reference", max_length=200),
                fees=fees,
                allocations=[(i.pk, a) for i, a in items],
                auto_allocate=False,
                provider=PROVIDER,
                provider_reference=f"{line.pk}/{uuid.uuid4().hex[:12]}/{n}",
            )
            created.append(payment)
        invoice_ids = [str(i.pk) for i, _a in parts]
        match = _new_match(
            ctx,
            line,
            MatchKind.PAYMENT,
            automatic=automatic,
            confidence=confidence,
            reason=reason,
            detail=detail,
            invoice_ids=invoice_ids,
            write_off=difference,
            ledger_account=account.write_off_account if difference else "",
        )
        MatchPayment.objects.bulk_create([MatchPayment(match=match, payment=p) for p in created])
        if not automatic:
            for customer_pk in by_customer:
                _learn(ctx, line, customer_pk)
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "bank.line_matched",
            match,
            after={
                "line": str(line.pk),
                "amount": line.amount,
                "invoices": [i.number for i, _a in parts],
                "payments": [str(p.pk) for p in created],
                "write_off": difference,
                "automatic": automatic,
                "reason": reason,
            },
        )
        events.publish(
            bank_events.BankLineMatched(
                organization_id=ctx.organization.id,
                bank_line_id=line.pk,
                bank_account_id=account.pk,
                match_id=match.pk,
                payment_ids=tuple(p.pk for p in created),
                invoice_ids=tuple(i.pk for i, _a in parts),
                amount=line.amount,
                currency=line.currency,
                kind=MatchKind.PAYMENT,
                automatic=automatic,
                booking_date=line.booking_date,
            )
        )
        if write_off_invoice is not None:
            events.publish(
                bank_events.WriteOffRecorded(
                    organization_id=ctx.organization.id,
                    bank_line_id=line.pk,
                    customer_id=write_off_invoice.customer_id,
                    invoice_id=write_off_invoice.pk,
                    amount=difference,
                    currency=line.currency,
                    account=account.write_off_account,
                    match_id=match.pk,
                    payment_id=next(
                        p.pk for p in created if p.customer_id == write_off_invoice.customer_id
                    ),
                )
            )
    return match


def accept_suggestion(
    ctx: Ctx, line_id: Any, *, automatic: bool = False, suggestion: dict[str, Any] | None = None
) -> BankMatch:
    """Accept the proposal waiting on the line (the review queue's one-key accept)."""
    ctx.require(Perm.EDIT_INVOICES)
    if suggestion is None:
        line = get_line(ctx, line_id)
        suggestion = line.suggestion
        if not suggestion or line.status != LineStatus.SUGGESTED:
            raise ConflictError(
                "bank.no_suggestion", _("There is no proposal to accept on this line.")
            )
    kind = suggestion.get("kind", MatchKind.PAYMENT)
    common = {
        "automatic": automatic,
        "confidence": suggestion.get("confidence"),
        "reason": suggestion.get("reason", "manual"),
    }
    if kind in (MatchKind.EXPENSE, MatchKind.FEE):
        return record_expense(
            ctx,
            line_id,
            kind=kind,
            ledger_account=suggestion["ledger_account"],
            label=suggestion.get("label", ""),
            **common,
        )
    if kind == MatchKind.REFUND:
        return record_refund(
            ctx, line_id, suggestion["refund_ids"], automatic=automatic,
            confidence=suggestion.get("confidence"),
        )  # fmt: skip
    if kind == MatchKind.RETURN:
        return record_return(
            ctx,
            line_id,
            suggestion["payment_id"],
            suggestion.get("reason_code", ""),
            automatic=automatic,
        )
    return confirm_payment(
        ctx,
        line_id,
        [(inv, amount) for inv, amount in suggestion.get("allocations", [])],
        write_off=suggestion.get("write_off", "0"),
        customer_id=suggestion.get("customer_id"),
        detail=suggestion.get("detail", ""),
        **common,
    )


def record_expense(
    ctx: Ctx,
    line_id: Any,
    *,
    kind: str = MatchKind.EXPENSE,
    ledger_account: str = "",
    label: str = "",
    automatic: bool = False,
    confidence: int | None = None,
    reason: str = "manual",
) -> BankMatch:
    """Book a bank debit as an expense or a bank fee (accounting posts it)."""
    ctx.require(Perm.EDIT_INVOICES)
    if kind not in (MatchKind.EXPENSE, MatchKind.FEE):
        raise BusinessError("bank.bad_kind", _("An expense or a bank fee."), "kind")
    with atomic():
        line = _locked_open_line(ctx, line_id)
        if line.is_credit:
            raise BusinessError(
                "bank.not_a_debit", _("Only money paid out is an expense or a fee."), "line_id"
            )
        account_code = clean_text(ledger_account, "ledger_account", max_length=20) or (
            line.account.fee_account if kind == MatchKind.FEE else ""
        )
        if not account_code:
            raise BusinessError(
                "bank.account_needed", _("Give the ledger account (e.g. 6064)."), "ledger_account"
            )
        text = clean_text(label, "label", max_length=200) or line.label[:200]
        match = _new_match(
            ctx,
            line,
            kind,
            automatic=automatic,
            confidence=confidence,
            reason=reason,
            ledger_account=account_code,
            label=text,
        )
        amount = -line.amount
        audit.record(
            ctx.organization.id,
            ctx.actor,
            f"bank.{kind}_recorded",
            match,
            after={"line": str(line.pk), "amount": amount, "account": account_code},
        )
        _publish_matched(ctx, line, match, kind, automatic)
        if kind == MatchKind.FEE:
            events.publish(
                bank_events.BankFeeRecorded(
                    ctx.organization.id, line.pk, amount, line.currency, account_code, match.pk
                )
            )
        else:
            events.publish(
                bank_events.ExpenseRecorded(
                    ctx.organization.id,
                    line.pk,
                    amount,
                    account_code,
                    text,
                    line.currency,
                    match.pk,
                    booking_date=line.booking_date,
                )
            )
    return match


def _publish_matched(
    ctx: Ctx,
    line: BankLine,
    match: BankMatch,
    kind: str,
    automatic: bool,
    payment_ids: Iterable[Any] = (),
    invoice_ids: Iterable[Any] = (),
) -> None:
    events.publish(
        bank_events.BankLineMatched(
            organization_id=ctx.organization.id,
            bank_line_id=line.pk,
            bank_account_id=line.account_id,
            match_id=match.pk,
            payment_ids=tuple(payment_ids),
            invoice_ids=tuple(invoice_ids),
            amount=line.amount,
            currency=line.currency,
            kind=kind,
            automatic=automatic,
            booking_date=line.booking_date,
        )
    )


def record_return(
    ctx: Ctx, line_id: Any, payment_id: Any, reason_code: str = "", *, automatic: bool = False
) -> BankMatch:
    """A debit line is a payment coming back: the payment is returned (SEPA debits with
    their ISO reason code), its invoices reopen."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        line = _locked_open_line(ctx, line_id)
        if line.is_credit:
            raise BusinessError("bank.not_a_debit", _("A return is money going out."), "line_id")
        payment = payments.get_payment(ctx, payment_id, lock=True)
        if payment.amount != -line.amount:
            raise BusinessError(
                "bank.return_amount",
                _("The line (%(line)s) is not the payment's amount (%(payment)s)."),
                "payment_id",
                line=str(-line.amount),
                payment=str(payment.amount),
            )
        if MatchPayment.objects.filter(
            payment=payment, match__kind=MatchKind.RETURN, match__undone_at__isnull=True
        ).exists():
            raise ConflictError(
                "bank.return_reconciled",
                _("This return is already reconciled with another bank line."),
                "payment_id",
            )
        invoice_ids = list(
            {a.invoice_id for a in payment.allocations.all()}
            if payment.status == PaymentStatus.RETURNED
            else payment.allocations.filter(reversed_at__isnull=True).values_list(
                "invoice_id", flat=True
            )
        )
        if payment.status == PaymentStatus.RETURNED:
            pass  # already returned (the bank's return file): the line only confirms it
        elif payment.method == Method.SEPA_DEBIT:
            sepa.record_return(
                ctx,
                payment.pk,
                reason_code=reason_code or "MS02",
                note="bank statement",
                returned_on=line.booking_date,
            )
        else:
            payments.return_payment(
                ctx, payment.pk, reason=f"returned by the bank {reason_code}".strip()
            )
        match = _new_match(
            ctx,
            line,
            MatchKind.RETURN,
            automatic=automatic,
            confidence=None,
            reason="return",
            detail=reason_code,
            invoice_ids=[str(i) for i in invoice_ids],
        )
        MatchPayment.objects.create(match=match, payment=payment)
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "bank.return_recorded",
            match,
            after={"line": str(line.pk), "payment": str(payment.pk), "code": reason_code},
        )
        _publish_matched(ctx, line, match, MatchKind.RETURN, automatic, [payment.pk], invoice_ids)
    return match


def _record_settlement(ctx: Ctx, line: BankLine, item: DebitItem, *, automatic: bool) -> None:
    line = _locked_open_line(ctx, line.pk)
    match = _new_match(
        ctx,
        line,
        MatchKind.SETTLEMENT,
        automatic=automatic,
        confidence=98,
        reason="end_to_end_id",
        detail=f"SEPA debit {item.end_to_end_id}",
        invoice_ids=[
            str(i)
            for i in item.payment.allocations.filter(reversed_at__isnull=True).values_list(
                "invoice_id", flat=True
            )
        ],
    )
    MatchPayment.objects.create(match=match, payment=item.payment)
    # The batch is settled once the bank has credited every one of its debits.
    items = DebitItem.objects.filter(batch=item.batch)
    settled = MatchPayment.objects.filter(
        payment_id__in=items.values("payment_id"),
        match__kind=MatchKind.SETTLEMENT,
        match__undone_at__isnull=True,
    ).count()
    if settled >= items.count():
        sepa.settle_batch(ctx, item.batch_id)
    audit.record(
        ctx.organization.id,
        ctx.actor,
        "bank.debit_collected",
        match,
        after={"line": str(line.pk), "payment": str(item.payment_id)},
    )
    _publish_matched(ctx, line, match, MatchKind.SETTLEMENT, automatic, [item.payment_id])


def ignore_line(ctx: Ctx, line_id: Any) -> BankLine:
    """Leave a line out of reconciliation (an internal transfer, say); undo with reopen."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        line = _locked_open_line(ctx, line_id)
        line.status = LineStatus.IGNORED
        line.save(update_fields=["status"])
        audit.record(ctx.organization.id, ctx.actor, "bank.line_ignored", line)
    return line


# --- undo ------------------------------------------------------------------------------------


def undo_match(ctx: Ctx, match_id: Any, *, reason: str = "") -> BankMatch:
    """Take a reconciliation back: the payments it created are reversed (allocations taken
    back, invoices reopen), the line goes back to the queue; audited."""
    ctx.require(Perm.EDIT_INVOICES)
    reason = clean_text(reason, "reason", max_length=300)
    with atomic():
        match = _get(
            BankMatch,
            ctx,
            match_id,
            "bank.match_not_found",
            _("No such reconciliation."),
            lock=True,
        )
        if match.undone_at is not None:
            return match
        line = BankLine.objects.select_for_update().get(pk=match.line_id)
        payment_ids = list(
            MatchPayment.objects.filter(match=match).values_list("payment_id", flat=True)
        )
        if match.kind == MatchKind.PAYMENT:
            for payment_id in payment_ids:
                payments.return_payment(
                    ctx, payment_id, reason=f"bank reconciliation undone {reason}".strip()[:300]
                )
        elif match.kind == MatchKind.SETTLEMENT:
            if Payment.objects.filter(pk__in=payment_ids, status=PaymentStatus.RECEIVED).exists():
                raise ConflictError(
                    "bank.settled",
                    _("The direct debit batch is already settled: record a return instead."),
                )
        elif match.kind == MatchKind.RETURN:
            raise ConflictError(
                "bank.return_final",
                _("A returned payment cannot be restored: record the payment again."),
            )
        match.undone_at = timezone.now()
        match.undone_by = ctx.actor.label
        match.undo_reason = reason
        match.save(update_fields=["undone_at", "undone_by", "undo_reason"])
        line.status = LineStatus.UNMATCHED
        line.suggestion = None
        line.save(update_fields=["status", "suggestion"])
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "bank.line_unmatched",
            match,
            before={"kind": match.kind, "payments": [str(p) for p in payment_ids]},
            after={"reason": reason},
        )
        events.publish(
            bank_events.BankLineUnmatched(
                ctx.organization.id,
                line.pk,
                line.account_id,
                match.pk,
                tuple(payment_ids),
                tuple(match.invoice_ids),
                reason,
            )
        )
        amount = -line.amount
        if match.kind == MatchKind.FEE:
            events.publish(
                bank_events.BankFeeRecorded(
                    ctx.organization.id,
                    line.pk,
                    amount,
                    line.currency,
                    match.ledger_account,
                    match.pk,
                    reversed=True,
                )
            )
        elif match.kind == MatchKind.EXPENSE:
            events.publish(
                bank_events.ExpenseRecorded(
                    ctx.organization.id,
                    line.pk,
                    amount,
                    match.ledger_account,
                    match.label,
                    line.currency,
                    match.pk,
                    reversed=True,
                    booking_date=line.booking_date,
                )
            )
        elif match.write_off and match.invoice_ids:
            invoice = Invoice.objects.get(pk=match.invoice_ids[-1])
            events.publish(
                bank_events.WriteOffRecorded(
                    ctx.organization.id,
                    line.pk,
                    invoice.customer_id,
                    invoice.pk,
                    match.write_off,
                    line.currency,
                    match.ledger_account,
                    match.pk,
                    reversed=True,
                )
            )
    return match


def reopen_line(ctx: Ctx, line_id: Any) -> BankLine:
    """An ignored line back to the queue."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        line = get_line(ctx, line_id, lock=True)
        if line.status == LineStatus.IGNORED:
            line.status = LineStatus.UNMATCHED
            line.save(update_fields=["status"])
            audit.record(ctx.organization.id, ctx.actor, "bank.line_reopened", line)
    return line


def active_match(line: BankLine) -> BankMatch | None:
    return line.matches.filter(undone_at__isnull=True).first()


__all__ = [
    "ImportResult",
    "MatchRun",
    "accept_suggestion",
    "confirm_payment",
    "create_account",
    "create_rule",
    "import_statement",
    "record_expense",
    "record_return",
    "run_matching",
    "undo_match",
]
