"""Reads, always scoped to the organization: accounts, lines, the review queue, candidates
for a line, and the reconciliation report of an account over a period."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from facturo.core.errors import BusinessError, _
from facturo.core.matching import Matcher, OpenInvoice
from facturo.core.money import ZERO
from facturo.organizations.context import Ctx, Perm

from . import services
from .models import BankAccount, BankLine, BankMatch, LineStatus, MatchRule, StatementImport


def accounts(ctx: Ctx) -> QuerySet[BankAccount]:
    ctx.require(Perm.VIEW)
    return BankAccount.objects.filter(organization=ctx.organization).order_by("name")


def lines(ctx: Ctx, *, account_id: Any = None, status: str | None = None) -> QuerySet[BankLine]:
    ctx.require(Perm.VIEW)
    qs = BankLine.objects.filter(organization=ctx.organization).select_related("account")
    if account_id is not None:
        qs = qs.filter(account_id=account_id)
    if status == "open":
        qs = qs.filter(status__in=services.OPEN_LINE)
    elif status:
        qs = qs.filter(status=status)
    return qs.order_by("booking_date", "created_at")


def imports(ctx: Ctx, account_id: Any = None) -> QuerySet[StatementImport]:
    ctx.require(Perm.VIEW)
    qs = StatementImport.objects.filter(organization=ctx.organization).select_related("account")
    if account_id is not None:
        qs = qs.filter(account_id=account_id)
    return qs.order_by("-created_at")


def matches(ctx: Ctx, line: BankLine) -> QuerySet[BankMatch]:
    ctx.require(Perm.VIEW)
    return BankMatch.objects.filter(organization=ctx.organization, line=line).order_by(
        "-created_at"
    )


def rules(ctx: Ctx) -> QuerySet[MatchRule]:
    ctx.require(Perm.VIEW)
    return MatchRule.objects.filter(organization=ctx.organization).select_related("customer")


@dataclass(frozen=True)
class Candidate:
    """An open invoice proposed for a line on the reconciliation screen."""

    invoice: OpenInvoice
    amount: Decimal  # what the line would allocate to it
    score: int
    why: str


def candidates(ctx: Ctx, line: BankLine, limit: int = 8) -> list[Candidate]:
    """The engine's proposal first, then invoices of the same amount, then the open
    invoices of the customer the engine or the counterparty points to."""
    ctx.require(Perm.VIEW)
    if not line.is_credit:
        return []
    invoices = services.open_invoices(ctx, line.currency)
    by_id = {inv.id: inv for inv in invoices}
    result: list[Candidate] = []
    seen: set[str] = set()

    def add(inv_id: str, amount: Decimal, score: int, why: str) -> None:
        if inv_id in by_id and inv_id not in seen and len(result) < limit:
            seen.add(inv_id)
            result.append(Candidate(by_id[inv_id], amount, score, why))

    suggestion = line.suggestion or {}
    for inv_id, amount in suggestion.get("allocations", []):
        add(
            inv_id,
            Decimal(amount),
            int(suggestion.get("confidence") or 0),
            suggestion.get("detail", ""),
        )
    settings = services.match_settings(line.account)
    [proposal] = Matcher(invoices, settings).match([services._as_statement_line(line)])
    if proposal is not None:
        for alloc in proposal.allocations:
            add(alloc.invoice_id, alloc.amount, proposal.confidence, proposal.detail)
    for inv in invoices:
        if inv.open_amount == line.amount:
            add(inv.id, inv.open_amount, 50, "same amount")
    customers = {by_id[i].customer_id for i in seen if i in by_id}
    for inv in invoices:
        if inv.customer_id in customers:
            add(inv.id, min(inv.open_amount, line.amount), 40, "same customer")
    # Then the invoices that fit in the line, closest amounts first (parts of a split).
    fitting = sorted(
        (inv for inv in invoices if inv.open_amount <= line.amount),
        key=lambda inv: (line.amount - inv.open_amount, inv.due_date, inv.number),
    )
    for inv in fitting:
        add(inv.id, inv.open_amount, 20, "fits in the amount")
    return result


@dataclass
class ReportLine:
    line: BankLine
    state: str
    detail: str


@dataclass
class ReconciliationReport:
    account: BankAccount
    start: dt.date
    end: dt.date
    opening_balance: Decimal | None
    closing_balance: Decimal | None  # as the bank states it (last statement of the period)
    computed_closing: Decimal | None
    total_in: Decimal
    total_out: Decimal
    matched_total: Decimal
    unmatched_total: Decimal
    matched_count: int
    unmatched_count: int
    lines: list[ReportLine] = field(default_factory=list)
    discrepancies: list[str] = field(default_factory=list)


def reconciliation_report(
    ctx: Ctx, account_id: Any, start: dt.date, end: dt.date
) -> ReconciliationReport:
    """Opening balance, what was matched and what was not, discrepancies, closing balance."""
    account = services.get_account(ctx, account_id)
    if start > end:
        raise BusinessError("bank.bad_period", _("The period starts after it ends."), "start")
    period = list(
        BankLine.objects.filter(account=account, booking_date__gte=start, booking_date__lte=end)
        .prefetch_related("matches")
        .order_by("booking_date", "created_at")
    )
    before = BankLine.objects.filter(account=account, booking_date__lt=start)
    first_import = (
        StatementImport.objects.filter(account=account, opening_balance__isnull=False)
        .order_by("period_start", "created_at")
        .first()
    )
    opening: Decimal | None = None
    if first_import is not None and first_import.period_start is not None:
        assert first_import.opening_balance is not None
        if first_import.period_start >= start:
            opening = first_import.opening_balance
            # Lines of the period booked before that statement's own start come first.
            opening -= sum(
                (x.amount for x in period if x.booking_date < first_import.period_start), ZERO
            )
        else:
            opening = first_import.opening_balance + sum(
                (x.amount for x in before.filter(booking_date__gte=first_import.period_start)),
                ZERO,
            )
    last_import = (
        StatementImport.objects.filter(
            account=account,
            closing_balance__isnull=False,
            period_end__gte=start,
            period_end__lte=end,
        )
        .order_by("-period_end", "-created_at")
        .first()
    )
    total = sum((x.amount for x in period), ZERO)
    computed = opening + total if opening is not None else None
    stated = None
    discrepancies: list[str] = []
    if last_import is not None:
        assert last_import.closing_balance is not None
        assert last_import.period_end is not None
        stated = last_import.closing_balance
        after = sum((x.amount for x in period if x.booking_date > last_import.period_end), ZERO)
        if computed is not None and stated + after != computed:
            discrepancies.append(
                f"closing balance stated {stated} on {last_import.period_end} but the lines "
                f"give {computed - after}: lines are missing or imported twice"
            )
    report_lines = []
    matched_total = unmatched_total = ZERO
    matched_count = unmatched_count = 0
    for x in period:
        active = next((m for m in x.matches.all() if m.undone_at is None), None)
        if x.status == LineStatus.MATCHED and active is not None:
            matched_total += x.amount
            matched_count += 1
            detail = active.get_kind_display()
            if active.write_off:
                detail += f", written off {active.write_off}"
                discrepancies.append(
                    f"{x.booking_date} {x.amount}: {active.write_off} written off "
                    f"to {active.ledger_account}"
                )
            report_lines.append(ReportLine(x, "matched", detail))
        elif x.status == LineStatus.IGNORED:
            matched_count += 1
            matched_total += x.amount
            report_lines.append(ReportLine(x, "ignored", ""))
        else:
            unmatched_total += x.amount
            unmatched_count += 1
            report_lines.append(ReportLine(x, "unmatched", ""))
    for record in StatementImport.objects.filter(
        account=account, period_end__gte=start, period_start__lte=end, rejected_count__gt=0
    ):
        discrepancies.append(
            f"{record.filename}: {record.rejected_count} row(s) rejected at import"
        )
    return ReconciliationReport(
        account=account,
        start=start,
        end=end,
        opening_balance=opening,
        closing_balance=stated,
        computed_closing=computed,
        total_in=sum((x.amount for x in period if x.amount > 0), ZERO),
        total_out=sum((x.amount for x in period if x.amount < 0), ZERO),
        matched_total=matched_total,
        unmatched_total=unmatched_total,
        matched_count=matched_count,
        unmatched_count=unmatched_count,
        lines=report_lines,
        discrepancies=discrepancies,
    )
