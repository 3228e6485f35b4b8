"""Accounting operations: books set-up, fiscal years, accounts, journals, mapping rules,
manual and reversing entries, period close and year-end closing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django.core import signing
from django.utils import timezone

from facturo.audit import services as audit
from facturo.core.chain import canonical_json
from facturo.core.document import Nature
from facturo.core.errors import BusinessError, NotFound, _
from facturo.core.ledger import (
    EntryLine,
    Journal,
    JournalEntry,
    SourceRef,
    check_account_number,
    reverse_entry,
)
from facturo.core.ledger_chart import ACCOUNT_SETTINGS, CustomerType, LedgerSettings
from facturo.core.ledger_postings import CustomerAccount, document_entry
from facturo.core.tax import VatCategory
from facturo.core.text import clean_text
from facturo.foundation.db import atomic
from facturo.organizations.context import Ctx, Perm

from . import models as m
from .handlers import stored_entry
from .posting import (
    books_for,
    bump_version,
    customer_code,
    ensure_books,
    lock_state,
    post,
    unletter_invoice,
)

SIGNING_SALT = "facturo.accounting.closing"


def setup_books(ctx: Ctx) -> None:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    with atomic():
        ensure_books(ctx.organization.id)


# --- fiscal years ----------------------------------------------------------------------------


def add_fiscal_year(ctx: Ctx, start: dt.date, end: dt.date) -> m.FiscalYear:
    """A fiscal year (usually 12 months; the first may be 1 to 23 months long)."""
    ctx.require(Perm.MANAGE_ORGANIZATION)
    if end <= start or (end - start).days > 730:
        raise BusinessError(
            "accounting.fiscal_year_dates",
            _("A fiscal year ends after it starts and lasts at most 24 months."),
            field="end",
        )
    with atomic():
        ensure_books(ctx.organization.id)
        overlap = m.FiscalYear.objects.filter(
            organization=ctx.organization, start__lte=end, end__gte=start
        ).first()
        if overlap:
            raise BusinessError(
                "accounting.fiscal_year_overlap",
                _("This fiscal year overlaps the fiscal year %(other)s."),
                field="start",
                other=str(overlap),
            )
        year = m.FiscalYear.objects.create(organization=ctx.organization, start=start, end=end)
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "accounting.fiscal_year_added",
            year,
            after={"start": start, "end": end},
        )
    return year


def fiscal_year_for(ctx: Ctx, year: int) -> m.FiscalYear:
    """The fiscal year that ends in calendar year ``year``; a clear error without one."""
    found = m.FiscalYear.objects.filter(organization=ctx.organization, end__year=year).first()
    if found is None:
        raise BusinessError(
            "accounting.no_fiscal_year",
            _(
                "No fiscal year ending in %(year)s is set for this organization: add it on the "
                "Accounting page (Fiscal years: start and end dates) first."
            ),
            field="year",
            year=year,
        )
    return found


# --- accounts, journals, settings, rules -----------------------------------------------------


def save_account(ctx: Ctx, number: str, label: str, *, active: bool = True) -> m.Account:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    number = check_account_number(clean_text(number, "number", max_length=20), field_name="number")
    label = clean_text(label, "label", max_length=200)
    if not label:
        raise BusinessError("ledger.account_label", _("An account needs a label."), "label")
    with atomic():
        ensure_books(ctx.organization.id)
        row, _created = m.Account.objects.update_or_create(
            organization=ctx.organization,
            number=number,
            defaults={"label": label, "active": active},
        )
        bump_version(ctx.organization.id)
        audit.record(
            ctx.organization.id, ctx.actor, "accounting.account_saved", row, after={"label": label}
        )
    return row


def save_journal(
    ctx: Ctx,
    code: str,
    label: str,
    kind: str,
    *,
    account: str = "",
    bank_account_id: uuid.UUID | None = None,
) -> m.Journal:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    journal = Journal(clean_text(code, "code", max_length=8).upper(), clean_text(label, "label"))
    if kind not in m.JournalKind.values:
        raise BusinessError(
            "accounting.journal_kind", _("Unknown journal kind “%(kind)s”."), "kind", kind=kind
        )
    if account:
        check_account_number(account, field_name="account")
    with atomic():
        ensure_books(ctx.organization.id)
        row, _created = m.Journal.objects.update_or_create(
            organization=ctx.organization,
            code=journal.code,
            defaults={
                "label": journal.label,
                "kind": kind,
                "account": account,
                "bank_account_id": bank_account_id,
            },
        )
        bump_version(ctx.organization.id)
        audit.record(ctx.organization.id, ctx.actor, "accounting.journal_saved", row)
    return row


NUMBER_FIELDS = ACCOUNT_SETTINGS


def save_settings(ctx: Ctx, numbers: Mapping[str, str]) -> m.AccountingSettings:
    """Change account numbers of the chart (PCG-shaped, checked by ``LedgerSettings``)."""
    ctx.require(Perm.MANAGE_ORGANIZATION)
    defaults = LedgerSettings()
    cleaned = {}
    for name, value in numbers.items():
        if name not in NUMBER_FIELDS:
            raise BusinessError(
                "accounting.unknown_setting", _("Unknown setting “%(name)s”."), name, name=name
            )
        value = (value or "").strip()
        if value and value != getattr(defaults, name):
            cleaned[name] = check_account_number(value, field_name=name)
    LedgerSettings(**cast(Any, cleaned))  # checks the numbers together
    with atomic():
        ensure_books(ctx.organization.id)
        row = m.AccountingSettings.objects.get(organization=ctx.organization)
        row.numbers = cleaned
        row.save(update_fields=["numbers", "updated_at"])
        bump_version(ctx.organization.id)
        audit.record(
            ctx.organization.id, ctx.actor, "accounting.settings_saved", row, after=cleaned
        )
    return row


def add_rule(ctx: Ctx, **criteria: Any) -> m.RevenueRule:
    """A mapping rule: the revenue account for lines matching every given criterion."""
    ctx.require(Perm.MANAGE_ORGANIZATION)
    account = check_account_number(str(criteria.get("account", "")).strip())
    row = m.RevenueRule(
        organization=ctx.organization,
        account=account,
        product_code=clean_text(criteria.get("product_code") or "", "product_code", max_length=50),
        category=clean_text(criteria.get("category") or "", "category", max_length=50),
        nature=criteria.get("nature") or "",
        customer_type=criteria.get("customer_type") or "",
        vat_category=criteria.get("vat_category") or "",
        position=int(criteria.get("position") or 0),
    )
    for name, allowed in (
        ("nature", [n.value for n in Nature]),
        ("customer_type", [c.value for c in CustomerType]),
        ("vat_category", [c.value for c in VatCategory]),
    ):
        value = getattr(row, name)
        if value and value not in allowed:
            raise BusinessError(
                "accounting.rule_value",
                _("“%(value)s” is not a valid %(name)s (one of %(allowed)s)."),
                name,
                value=value,
                name=name,
                allowed=", ".join(allowed),
            )
    with atomic():
        row.save()
        bump_version(ctx.organization.id)
        audit.record(ctx.organization.id, ctx.actor, "accounting.rule_added", row)
    return row


def delete_rule(ctx: Ctx, rule_id: Any) -> None:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    with atomic():
        deleted, _n = m.RevenueRule.objects.filter(
            organization=ctx.organization, pk=rule_id
        ).delete()
        if not deleted:
            raise NotFound("accounting.rule_not_found", _("No such mapping rule."))
        bump_version(ctx.organization.id)
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "accounting.rule_deleted",
            object_type="revenue_rule",
            object_id=str(rule_id),
        )


def preview_invoice(ctx: Ctx, invoice_id: Any) -> JournalEntry | None:
    """The entry an invoice (draft or issued) produces with the current rules."""
    from facturo.invoicing import services as invoicing

    ctx.require(Perm.VIEW)
    invoice = invoicing.get_invoice(ctx, invoice_id)
    lines = list(invoice.lines.all())
    if not lines:
        return None
    state_books = _books(ctx)
    doc = invoicing.build_document(
        invoice, lines, invoice.number or "APERCU", invoice.issue_date or ctx.today()
    )
    customer = CustomerAccount(
        customer_code(invoice.customer_id), doc.buyer.name or "-", doc.buyer.address.country_code
    )
    return document_entry(
        doc,
        customer,
        state_books.settings,
        journal=state_books.sales,
        book_currency=doc.currency,
    )


def _books(ctx: Ctx) -> Any:
    ensure_books(ctx.organization.id)
    state = m.LedgerState.objects.get(organization=ctx.organization)
    return books_for(state)


# --- manual entries --------------------------------------------------------------------------


def _amount(value: Any, where: str) -> Decimal:
    if value in (None, ""):
        return Decimal(0)
    try:
        amount = Decimal(str(value).replace(",", ".").strip())
    except InvalidOperation:
        raise BusinessError(
            "ledger.invalid_amount",
            _("%(where)s: “%(value)s” is not an amount."),
            where,
            where=where,
            value=value,
        ) from None
    if not amount.is_finite():
        raise BusinessError(
            "ledger.invalid_amount", _("%(where)s is not an amount."), where, where=where
        )
    return amount


def post_manual_entry(
    ctx: Ctx,
    *,
    journal_code: str,
    date: dt.date,
    label: str,
    piece_ref: str,
    lines: Sequence[Mapping[str, Any]],
) -> m.Entry:
    """A miscellaneous entry typed by the accountant; refused unless it balances, every
    account is PCG-shaped and the date is in an open period (nothing is posted then)."""
    ctx.require(Perm.MANAGE_ORGANIZATION)
    org_id = ctx.organization.id
    with atomic():
        state = lock_state(org_id)
        books = books_for(state)
        journal = m.Journal.objects.filter(
            organization=ctx.organization, code=(journal_code or "").upper()
        ).first()
        if journal is None:
            raise BusinessError(
                "accounting.no_journal",
                _("No journal with code “%(journal)s”."),
                "journal_code",
                journal=journal_code,
            )
        core_lines = []
        for i, line in enumerate(lines):
            account = str(line.get("account", "")).strip()
            check_account_number(account, field_name=f"lines[{i}].account")
            core_lines.append(
                EntryLine(
                    account=account,
                    account_label=books.settings.label(account),
                    debit=_amount(line.get("debit"), f"lines[{i}].debit"),
                    credit=_amount(line.get("credit"), f"lines[{i}].credit"),
                    label=clean_text(line.get("label") or "", "label", max_length=200),
                    auxiliary=str(line.get("auxiliary") or "").strip().upper(),
                    auxiliary_label=clean_text(
                        line.get("auxiliary_label") or "", "auxiliary_label", max_length=200
                    ),
                )
            )
        entry = JournalEntry(
            journal=Journal(journal.code, journal.label),
            date=date,
            label=clean_text(label, "label", max_length=200),
            piece_ref=clean_text(piece_ref, "piece_ref", max_length=100),
            piece_date=date,
            lines=tuple(core_lines),
            currency=books.currency,
            source=SourceRef("manual", ""),
        )
        row = post(state, books, entry, source_kind="manual", posted_by=ctx.actor.label)
        audit.record(
            org_id, ctx.actor, "accounting.entry_posted", row, after={"number": row.number}
        )
    return row


def reverse_posted_entry(ctx: Ctx, entry_id: Any, *, on: dt.date | None = None) -> m.Entry:
    """Post the reversing entry (*contre-passation*) of a posted entry; the original stays."""
    ctx.require(Perm.MANAGE_ORGANIZATION)
    org_id = ctx.organization.id
    with atomic():
        state = lock_state(org_id)
        books = books_for(state)
        row = m.Entry.objects.filter(organization=ctx.organization, pk=entry_id).first()
        if row is None:
            raise NotFound("accounting.entry_not_found", _("No such entry."))
        if m.Entry.objects.filter(reverses=row).exists():
            raise BusinessError(
                "accounting.already_reversed", _("Entry %(n)s was already reversed."), n=row.number
            )
        day = on or ctx.today()
        rev = reverse_entry(stored_entry(row), on=max(day, row.date))
        invoice_ids = {x.invoice_id for x in row.lines.all() if x.invoice_id}
        new = post(
            state,
            books,
            rev,
            source_kind="reversal",
            source_id=str(row.pk),
            reverses=row,
            invoice_id=next(iter(invoice_ids), None),
            posted_by=ctx.actor.label,
        )
        for invoice_id in invoice_ids:
            unletter_invoice(org_id, invoice_id)
        audit.record(
            org_id, ctx.actor, "accounting.entry_reversed", new, after={"reverses": row.number}
        )
    return new


# --- period close ----------------------------------------------------------------------------


def _month_end(day: dt.date) -> dt.date:
    nxt = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return nxt - dt.timedelta(days=1)


def close_period(ctx: Ctx, through: dt.date) -> dt.date:
    """Lock the books up to the end of ``through``'s month: nothing can then be posted or
    issued on or before that date. Closing is final (FEC, art. A47 A-1 LPF)."""
    ctx.require(Perm.MANAGE_ORGANIZATION)
    end = _month_end(through)
    if end >= ctx.today():
        raise BusinessError(
            "accounting.close_future",
            _("A period can be closed once it is over (%(end)s is not)."),
            "through",
            end=end.isoformat(),
        )
    with atomic():
        state = lock_state(ctx.organization.id)
        if state.locked_through and end <= state.locked_through:
            return state.locked_through
        m.LedgerState.objects.filter(pk=state.pk).update(locked_through=end)
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "accounting.period_closed",
            object_type="ledger",
            object_id=str(ctx.organization.id),
            before={"locked_through": state.locked_through},
            after={"locked_through": end},
        )
    return end


def closing_summary(org_id: uuid.UUID, year: m.FiscalYear) -> dict[str, Any]:
    from .selectors import account_totals

    totals = account_totals(org_id, year.start, year.end)
    last = (
        m.Entry.objects.filter(organization_id=org_id, date__lte=year.end)
        .order_by("-number")
        .values_list("number", "hash")
        .first()
    )
    return {
        "organization": str(org_id),
        "start": year.start.isoformat(),
        "end": year.end.isoformat(),
        "accounts": {
            number: [f"{b.debit:.2f}", f"{b.credit:.2f}"] for number, b in sorted(totals.items())
        },
        "last_number": last[0] if last else 0,
        "last_hash": last[1] if last else "",
    }


def sign_summary(summary: dict[str, Any]) -> str:
    return signing.Signer(salt=SIGNING_SALT).signature(canonical_json(summary))


def close_fiscal_year(ctx: Ctx, year_id: Any) -> m.FiscalYear:
    """Year-end closing: lock the whole year and record a signed summary (totals per account,
    the chain's last number and hash). The hash chain simply goes on into the next year."""
    ctx.require(Perm.MANAGE_ORGANIZATION)
    with atomic():
        year = (
            m.FiscalYear.objects.select_for_update()
            .filter(organization=ctx.organization, pk=year_id)
            .first()
        )
        if year is None:
            raise NotFound("accounting.fiscal_year_not_found", _("No such fiscal year."))
        if year.closed_at:
            return year
        if year.end >= ctx.today():
            raise BusinessError(
                "accounting.close_future",
                _("A period can be closed once it is over (%(end)s is not)."),
                "end",
                end=year.end.isoformat(),
            )
        state = lock_state(ctx.organization.id)
        if not state.locked_through or state.locked_through < year.end:
            m.LedgerState.objects.filter(pk=state.pk).update(locked_through=year.end)
        summary = closing_summary(ctx.organization.id, year)
        year.closing_summary = summary
        year.closing_signature = sign_summary(summary)
        year.closed_at = timezone.now()
        year.closed_by = ctx.actor.label
        year.save(update_fields=["closing_summary", "closing_signature", "closed_at", "closed_by"])
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "accounting.year_closed",
            year,
            after={"last_hash": summary["last_hash"], "last_number": summary["last_number"]},
        )
    return year
