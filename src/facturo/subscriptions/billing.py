"""The billing run: every due period becomes exactly one invoice.

Idempotent by construction:

- the unique constraint on ``BillingPeriod (subscription, period_start)``;
- one transaction per (subscription, period): lock the subscription row, insert the period
  record, create the invoice, issue it (the number is allocated now, never in advance),
  queue the e-mail, move the subscription's ``last_period_start`` — all or nothing; a crash
  at any point rolls back the number too, and a re-run picks the period up again;
- work is shared between workers in chunks claimed with ``SELECT … FOR UPDATE SKIP LOCKED``
  (PostgreSQL) and a short lease, so several processes run the same date without overlap,
  and a killed worker's chunk is taken over when its lease expires.

Periods due before the run date (the server was off) are caught up and counted as such;
their invoices are dated on the run date (numbers follow dates), the period is printed on
the line.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import IntegrityError
from django.db.models import Exists, F, OuterRef, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from facturo.audit import services as audit
from facturo.audit.services import Actor
from facturo.core import metered as core_metered
from facturo.core import proration
from facturo.core.errors import BusinessError, _
from facturo.core.money import ZERO
from facturo.core.recurrence import Period, Timing
from facturo.core.tax import VatCategory
from facturo.core.totals import LineInput, compute_totals
from facturo.foundation import events, rawsql
from facturo.foundation.db import atomic, is_postgresql
from facturo.invoicing import sending
from facturo.invoicing import services as invoicing
from facturo.organizations.context import Ctx, Perm
from facturo.organizations.models import Organization, Role

from .events import SubscriptionInvoiceIssued
from .models import (
    BillingPeriod,
    BillingRun,
    IssueMode,
    PendingCharge,
    PeriodStatus,
    Pricing,
    RunStatus,
    Subscription,
    SubscriptionLine,
    SubscriptionStatus,
    UsageRecord,
)
from .services import (
    _prorata_text,
    advance_to,
    final_usage_period,
    full_amount,
    line_price,
    rule_of,
    schedule_of,
)

log = logging.getLogger(__name__)
CHUNK = 50
LEASE = dt.timedelta(minutes=5)
RUN_ACTOR = Actor(label="billing run")


@dataclass
class Outcome:
    subscription_id: Any
    period_start: dt.date
    period_end: dt.date
    status: str  # issued | draft | skipped | failed | planned
    invoice_number: str = ""
    total: Any = None
    caught_up: bool = False
    error: str = ""
    due_again: bool = True  # False: the subscription has nothing more due on this run date


@dataclass
class Summary:
    issued: int = 0
    drafts: int = 0
    skipped: int = 0
    failed: int = 0
    caught_up: int = 0
    planned: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    keep_outcomes: bool = True

    def add(self, o: Outcome) -> None:
        match o.status:
            case "issued":
                self.issued += 1
            case "draft":
                self.drafts += 1
            case "skipped":
                self.skipped += 1
            case "failed":
                self.failed += 1
            case "planned":
                self.planned += 1
        if o.caught_up and o.status in ("issued", "draft", "planned"):
            self.caught_up += 1
        if self.keep_outcomes or o.status == "failed":
            self.outcomes.append(o)

    def line(self) -> str:
        return (
            f"issued {self.issued}, drafts {self.drafts}, skipped {self.skipped}, "
            f"failed {self.failed}"
        )


def run_ctx(org: Organization) -> Ctx:
    return Ctx(org, Role.OWNER, RUN_ACTOR)


def _due(run_date: dt.date, organization_id: Any) -> Any:
    qs = Subscription.objects.filter(
        status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELLED],
        next_invoice_date__lte=run_date,
    )
    if organization_id:
        qs = qs.filter(organization_id=organization_id)
    return qs


def count_due(run_date: dt.date, organization_id: Any = None) -> int:
    return int(_due(run_date, organization_id).count())


def _claim_chunk(run_date: dt.date, organization_id: Any, worker: str) -> list[Any]:
    """Claim up to CHUNK due subscriptions for this worker (lease), skipping rows another
    worker is claiming right now (SKIP LOCKED) or holds under a live lease."""
    now = timezone.now()
    with atomic():
        qs = (
            _due(run_date, organization_id)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now) | Q(claimed_by=worker))
            .order_by("next_invoice_date", "id")
        )
        if is_postgresql():
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("id", flat=True)[:CHUNK])
        if ids:
            Subscription.objects.filter(pk__in=ids).update(
                claimed_until=now + LEASE, claimed_by=worker
            )
    return ids


def _release(ids: list[Any], worker: str) -> None:
    Subscription.objects.filter(pk__in=ids, claimed_by=worker).update(
        claimed_until=None, claimed_by=""
    )


def usage_cutoff(sub: Subscription, period: Period) -> dt.date:
    """Usage is billed in arrears: an invoice bills the usage that occurred before its
    period's invoice date (in advance: before the period starts; in arrears: before it
    ends), whatever was not billed yet — usage recorded late goes on the next invoice."""
    return period.end if sub.timing == Timing.ARREARS else period.start


def _usage_qs(sub: Subscription, period: Period) -> Any:
    return UsageRecord.objects.filter(
        subscription=sub, billed_in__isnull=True, occurred_on__lt=usage_cutoff(sub, period)
    )


def usage_lines(
    sub: Subscription, period: Period, lines: list[SubscriptionLine]
) -> list[dict[str, Any]]:
    """Invoice lines for the metered usage not billed yet (see :func:`usage_cutoff`): per
    metric, the version of its line in force on the last day of usage, priced by unit,
    tiered or volume (``core.metered``)."""
    metered_lines = [x for x in lines if x.pricing != Pricing.FIXED]
    if not metered_lines:
        return []
    cutoff = usage_cutoff(sub, period)
    totals = dict(
        _usage_qs(sub, period)
        .values("metric")
        .annotate(q=Sum("quantity"))
        .values_list("metric", "q")
    )
    language = sub.customer.language
    out: list[dict[str, Any]] = []
    order = list(dict.fromkeys(x.metric for x in metered_lines))  # the lines' order
    for metric in order:
        quantity = totals.get(metric)
        versions = [x for x in metered_lines if x.metric == metric]
        if not quantity:
            continue
        in_force = [x for x in versions if x.starts_on is None or x.starts_on < cutoff]
        line = max(in_force or versions, key=lambda x: (x.starts_on or dt.date.min, x.pk or 0))
        tiers = core_metered.parse_tiers(line.tiers) if line.tiers else []
        pieces = core_metered.pieces(
            line.pricing, Decimal(quantity), line_price(line), tiers, sub.currency
        )
        for p in pieces:
            out.append(
                {
                    "description": _usage_text(line.description, p, line.pricing, language),
                    "quantity": p.quantity,
                    "unit_price": p.unit_price,
                    "unit_code": "C62" if p.flat else line.unit_code,
                    "vat_category": line.vat_category,
                    "vat_rate": line.vat_rate,
                    "product_id": line.product_id,
                }
            )
    return out


def _usage_text(description: str, p: core_metered.Piece, pricing: str, language: str) -> str:
    if pricing == Pricing.UNIT:
        return description
    last = "∞" if p.last is None else f"{p.last.normalize():f}"
    first = f"{p.first.normalize():f}"
    if language == "fr":
        kind = "forfait palier" if p.flat else "palier"
        text = f"{description} — {kind} {p.tier} ({first} à {last})"
    else:
        kind = "tier flat fee" if p.flat else "tier"
        text = f"{description} — {kind} {p.tier} ({first} to {last})"
    return text[:500]


def invoice_lines(
    sub: Subscription,
    period: Period,
    *,
    with_pending: bool = True,
    with_usage: bool = True,
    lines: list[SubscriptionLine] | None = None,
) -> list[dict[str, Any]]:
    """The lines of a period: each line version, pro rata of the days it applied, the
    metered usage not billed yet, plus the charges waiting for this invoice."""
    natural = rule_of(sub).natural_period(period.start)
    out: list[dict[str, Any]] = []
    language = sub.customer.language
    if lines is None:
        lines = list(sub.lines.select_related("product").order_by("position", "id"))
    for line in lines:
        if line.pricing != Pricing.FIXED:
            continue
        start = max(period.start, line.starts_on or period.start)
        end = min(period.end, line.ends_on or period.end)
        if start >= end:
            continue
        base = {
            "unit_code": line.unit_code,
            "vat_category": line.vat_category,
            "vat_rate": line.vat_rate,
            "product_id": line.product_id,
        }
        if (start, end) == natural:
            discount = line.discount_percent
            if line.discount_until is not None and period.start >= line.discount_until:
                discount = ZERO
            out.append(
                {
                    **base,
                    "description": line.description,
                    "quantity": line.quantity,
                    "unit_price": line_price(line),
                    "discount_percent": discount,
                }
            )
        else:
            amount = proration.piece(
                full_amount(line, sub.currency, period.start), natural, (start, end), sub.currency
            )
            if amount > 0:
                out.append(
                    {
                        **base,
                        "description": _prorata_text(line.description, start, end, language),
                        "quantity": "1",
                        "unit_price": amount,
                        "unit_code": "C62",
                    }
                )
    if with_usage:
        out.extend(usage_lines(sub, period, lines))
    if with_pending:
        for charge in sub.pending_charges.filter(billed_in__isnull=True).order_by("id"):
            out.append(
                {
                    "description": charge.description,
                    "quantity": "1",
                    "unit_price": charge.amount,
                    "vat_category": charge.vat_category,
                    "vat_rate": charge.vat_rate,
                }
            )
    return out


def _period_text(period: Period, language: str) -> str:
    if period.days == 0:  # the closing usage invoice (final_usage_period)
        last = period.start - dt.timedelta(days=1)
        if language == "fr":
            return f"Consommation jusqu’au {last:%d/%m/%Y} (facture de clôture)"
        return f"Usage up to {last:%Y-%m-%d} (closing invoice)"
    last = period.last_day
    if language == "fr":
        return f"Période du {period.start:%d/%m/%Y} au {last:%d/%m/%Y}"
    return f"Period {period.start:%Y-%m-%d} to {last:%Y-%m-%d}"


def _locked(sub_id: Any) -> Subscription:
    """The subscription row, locked (only it: not its customer, shared by many), with what
    the period's transaction needs to know to skip queries: whether a billing record exists
    past the last billed period (a failed one to retry), charges wait, usage is unbilled."""
    sub: Subscription = _locking().get(pk=sub_id)
    return sub


def _locking() -> Any:
    after = Coalesce(OuterRef("last_period_start"), Value(dt.date(1, 1, 1)))
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("customer")
        .annotate(
            has_record=Exists(
                BillingPeriod.objects.filter(subscription=OuterRef("pk"), period_start__gt=after)
            ),
            has_pending=Exists(
                PendingCharge.objects.filter(subscription=OuterRef("pk"), billed_in__isnull=True)
            ),
            has_usage=Exists(
                UsageRecord.objects.filter(subscription=OuterRef("pk"), billed_in__isnull=True)
            ),
        )
    )


def bill_period(
    sub_id: Any,
    run_date: dt.date,
    run: BillingRun | None,
    *,
    render: bool = False,
    orgs: dict[Any, Organization] | None = None,
) -> Outcome | None:
    """Bill the next due period of one subscription, in one transaction. None: nothing due.

    Everything of the period is written before the invoice is issued, so that the invoice
    number (allocated by issuing, under the series' lock) is held for as short a time as
    possible: the series serialises every issuing transaction of the organization.
    ``orgs`` caches organizations across the periods of a chunk (read-only here)."""
    with atomic():
        sub = _locked(sub_id)
        if sub.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELLED):
            return None
        period = schedule_of(sub).next_period(sub.last_period_start) or final_usage_period(sub)
        if period is None or period.invoice_date > run_date:
            before = (sub.next_invoice_date, sub.status)
            advance_to(sub, period, run_date)
            if (sub.next_invoice_date, sub.status) != before:
                _advance(sub, period, run_date)
            return None
        outcome = Outcome(
            sub.pk, period.start, period.end, "skipped", caught_up=period.invoice_date < run_date
        )
        existing = None
        if sub.has_record:  # type: ignore[attr-defined]
            existing = BillingPeriod.objects.filter(
                subscription=sub, period_start=period.start
            ).first()
        if existing is not None and existing.status != PeriodStatus.FAILED:
            # billed by someone else (its transaction committed): just move on
            sub.last_period_start, sub.last_period_end = period.start, period.end
            _advance(sub, schedule_of(sub).next_period(period.start), run_date)
            return outcome
        record = existing or BillingPeriod(
            organization_id=sub.organization_id, subscription=sub, period_start=period.start
        )
        record.period_end, record.index = period.end, period.index
        org = (orgs or {}).get(sub.organization_id)
        if org is None:
            org = Organization.objects.get(pk=sub.organization_id)
            if orgs is not None:
                orgs[sub.organization_id] = org
        ctx = run_ctx(org)
        lines = list(sub.lines.select_related("product").order_by("position", "id"))
        invoice_data = invoice_lines(
            sub,
            period,
            lines=lines,
            with_pending=sub.has_pending,  # type: ignore[attr-defined]
            with_usage=sub.has_usage,  # type: ignore[attr-defined]
        )
        if not invoice_data:  # a closing period without usage: nothing to invoice
            record.status, outcome.status = PeriodStatus.EMPTY, "skipped"
            record.run, record.error, record.error_code = run, "", ""
            record.save()
            sub.last_period_start, sub.last_period_end = period.start, period.end
            _advance(sub, None, run_date)
            outcome.due_again = False
            return outcome
        language = sub.customer.language
        draft = invoicing.create_draft(
            ctx,
            sub.customer_id,
            invoice_data,
            currency=sub.currency,  # the lines are priced in the subscription's currency
            delivery_date=period.start,
            free_text=f"{sub.name} — {_period_text(period, language)}",
        )
        issue = sub.issue_mode == IssueMode.ISSUE
        record.status = outcome.status = PeriodStatus.ISSUED if issue else PeriodStatus.DRAFT
        record.invoice = draft
        record.run = run
        record.error = record.error_code = ""
        record.save()
        if sub.has_pending:  # type: ignore[attr-defined]
            sub.pending_charges.filter(billed_in__isnull=True).update(billed_in=record)
        if sub.has_usage and any(x.pricing != Pricing.FIXED for x in lines):  # type: ignore[attr-defined]
            _usage_qs(sub, period).update(billed_in=record)
        sub.last_period_start, sub.last_period_end = period.start, period.end
        sub.periods_billed = F("periods_billed") + 1
        _advance(sub, schedule_of(sub).next_period(period.start), run_date)
        outcome.due_again = sub.next_invoice_date is not None and (
            sub.next_invoice_date <= run_date
        )
        if issue:
            invoice = invoicing.issue_invoice(ctx, draft.id, issue_date=run_date, render=render)
            if sub.send_email:
                sending.send_invoice(
                    ctx,
                    invoice.id,
                    cc=_copies(sub),
                    request_key=f"billing:{sub.pk}:{period.start}",
                )
            outcome.invoice_number = invoice.number or ""
            outcome.total = invoice.total_incl_vat
            _published(sub, period, invoice)
    return outcome


def _batchable(sub: Subscription, run_date: dt.date) -> Period | None:
    """The period to bill in a batch, or None: the subscription goes the one-period way
    (nothing due, a failed record to retry, charges or usage waiting, drafts for review)."""
    if (
        sub.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELLED)
        or sub.issue_mode != IssueMode.ISSUE
        or sub.has_record  # type: ignore[attr-defined]
        or sub.has_pending  # type: ignore[attr-defined]
        or sub.has_usage  # type: ignore[attr-defined]
    ):
        return None
    period = schedule_of(sub).next_period(sub.last_period_start)
    if period is None or period.invoice_date > run_date:
        return None
    return period


def bill_batch(
    ids: list[Any],
    run_date: dt.date,
    run: BillingRun | None,
    *,
    render: bool = False,
    orgs: dict[Any, Organization] | None = None,
) -> tuple[list[Outcome], list[Any]]:
    """Bill the next due period of many subscriptions in one transaction: all or nothing,
    like :func:`bill_period` for one (same invoices, records and e-mails), with a few
    statements for the whole batch instead of a few dozen per period (ADR 16).

    Returns the outcomes and the subscriptions left for :func:`bill_period` — those that
    are not plain (see :func:`_batchable`) or have a further period due (catching up)."""
    orgs = {} if orgs is None else orgs
    outcomes: list[Outcome] = []
    rest: list[Any] = []
    with atomic(), audit.deferred():
        locked = {s.pk: s for s in _locking().filter(pk__in=ids).order_by("pk")}
        plain: list[tuple[Subscription, Period]] = []
        for sub_id in ids:
            sub = locked.get(sub_id)
            period = _batchable(sub, run_date) if sub is not None else None
            if sub is None or period is None:
                rest.append(sub_id)
            else:
                plain.append((sub, period))
        lines: dict[Any, list[SubscriptionLine]] = {s.pk: [] for s, _p in plain}
        for line in (
            SubscriptionLine.objects.filter(subscription_id__in=list(lines))
            .select_related("product")
            .order_by("position", "id")
        ):
            lines[line.subscription_id].append(line)
        for org_id in sorted({s.organization_id for s, _p in plain}, key=str):
            org = orgs.get(org_id)
            if org is None:
                org = orgs[org_id] = Organization.objects.get(pk=org_id)
            of_org = [(s, p) for s, p in plain if s.organization_id == org_id]
            outcomes.extend(_bill_org_batch(run_ctx(org), of_org, lines, run_date, run, render))
    rest.extend(o.subscription_id for o in outcomes if o.due_again)
    return outcomes, rest


def _bill_org_batch(
    ctx: Ctx,
    plain: list[tuple[Subscription, Period]],
    lines: dict[Any, list[SubscriptionLine]],
    run_date: dt.date,
    run: BillingRun | None,
    render: bool,
) -> list[Outcome]:
    specs = [
        invoicing.DraftSpec(
            sub.customer,
            invoice_lines(sub, period, lines=lines[sub.pk], with_pending=False, with_usage=False),
            {
                "currency": sub.currency,  # the lines are priced in the subscription's currency
                "delivery_date": period.start,
                "free_text": f"{sub.name} — {_period_text(period, sub.customer.language)}",
            },
        )
        for sub, period in plain
    ]
    drafts = invoicing.create_drafts(ctx, specs)
    outcomes = []
    for sub, period in plain:
        sub.last_period_start, sub.last_period_end = period.start, period.end
        sub.periods_billed += 1
        advance_to(sub, schedule_of(sub).next_period(period.start), run_date)
        outcomes.append(
            Outcome(
                sub.pk,
                period.start,
                period.end,
                PeriodStatus.ISSUED,
                caught_up=period.invoice_date < run_date,
                due_again=sub.next_invoice_date is not None and sub.next_invoice_date <= run_date,
            )
        )
    BillingPeriod.objects.bulk_create(
        [
            BillingPeriod(
                organization_id=sub.organization_id,
                subscription=sub,
                period_start=period.start,
                period_end=period.end,
                index=period.index,
                status=PeriodStatus.ISSUED,
                invoice=draft,
                run=run,
            )
            for (sub, period), (draft, _lines) in zip(plain, drafts, strict=True)
        ]
    )
    _save_advanced([s for s, _p in plain])
    invoices = invoicing.issue_loaded(ctx, drafts, run_date, render=render)
    sending.send_loaded(
        ctx,
        [
            sending.SendRequest(
                invoice, cc=_copies(sub), request_key=f"billing:{sub.pk}:{period.start}"
            )
            for (sub, period), invoice in zip(plain, invoices, strict=True)
            if sub.send_email
        ],
    )
    for (sub, period), invoice, outcome in zip(plain, invoices, outcomes, strict=True):
        outcome.invoice_number = invoice.number or ""
        outcome.total = invoice.total_incl_vat
        _published(sub, period, invoice)
    return outcomes


_ADVANCED = [
    "last_period_start",
    "last_period_end",
    "periods_billed",
    "next_invoice_date",
    "status",
]


def _save_advanced(subs: list[Subscription]) -> None:
    """Write the billing position of many subscriptions: one UPDATE each, in one
    ``executemany`` (``bulk_update``'s CASE expressions cost more to build than to run)."""
    conn = rawsql.connection()
    assignments = ", ".join(f"{rawsql.column(Subscription, a)} = %s" for a in _ADVANCED)
    statement = rawsql.compose(
        "UPDATE {table} SET {assignments} WHERE id = %s",
        table=rawsql.table(Subscription),
        assignments=assignments,
    )
    prepare = rawsql.preparer(Subscription, [*_ADVANCED, "id"])
    with conn.cursor() as cursor:
        cursor.executemany(statement, [prepare(conn, s) for s in subs])


def _copies(sub: Subscription) -> list[str]:
    """Who gets a copy of a subscription's invoice: the customer's copy and accounting
    addresses and the subscription's owner (sales rep)."""
    cc = [sub.customer.cc_emails, sub.customer.accounting_email, sub.owner_email]
    return [c for c in cc if c]


def _published(sub: Subscription, period: Period, invoice: Any) -> None:
    events.publish(
        SubscriptionInvoiceIssued(
            sub.organization_id,
            sub.pk,
            invoice.pk,
            period.start,
            period.end,
            customer_id=sub.customer_id,
            auto_pay=sub.auto_pay,
            currency=invoice.currency,
            total_incl_vat=invoice.total_incl_vat,
            invoice_number=invoice.number or "",
        )
    )


def _advance(sub: Subscription, nxt: Period | None, run_date: dt.date) -> None:
    advance_to(sub, nxt, run_date)
    sub.save(update_fields=_ADVANCED)


def _record_failure(
    sub_id: Any, run_date: dt.date, run: BillingRun | None, exc: BaseException
) -> Outcome:
    """Record why a period failed (nothing else of it was kept); the subscription stays due
    and the next run retries it. A schedule that cannot even be computed (bad data) is
    recorded on the subscription's next invoice date, so the run goes on with the others."""
    code = exc.code if isinstance(exc, BusinessError) else type(exc).__name__
    message = exc.message if isinstance(exc, BusinessError) else str(exc)
    sub = Subscription.objects.get(pk=sub_id)
    try:
        period = schedule_of(sub).next_period(sub.last_period_start)
    except Exception:
        period = None
    if period is not None:
        start, end, index = period.start, period.end, period.index
    else:
        start = sub.next_invoice_date or run_date
        end, index = start, sub.periods_billed + 1
    with atomic():
        BillingPeriod.objects.update_or_create(
            subscription=sub,
            period_start=start,
            defaults={
                "organization_id": sub.organization_id,
                "period_end": end,
                "index": index,
                "status": PeriodStatus.FAILED,
                "run": run,
                "error_code": code,
                "error": message[:2000],
            },
        )
    return Outcome(sub_id, start, end, "failed", error=f"{code}: {message}")


def _subscription_periods(
    sub_id: Any,
    run_date: dt.date,
    run: BillingRun | None,
    render: bool,
    orgs: dict[Any, Organization] | None = None,
) -> Iterator[Outcome]:
    for _attempt in range(10_000):  # a bound: a subscription never has that many due periods
        try:
            outcome = bill_period(sub_id, run_date, run, render=render, orgs=orgs)
        except IntegrityError:
            # a concurrent run inserted the same period first: the constraint did its job
            try:
                sub = Subscription.objects.get(pk=sub_id)
                period = schedule_of(sub).next_period(sub.last_period_start)
            except Exception as exc:
                yield _record_failure(sub_id, run_date, run, exc)
                return
            if period is None:
                return
            yield Outcome(sub_id, period.start, period.end, "skipped")
            continue
        except Exception as exc:
            yield _record_failure(sub_id, run_date, run, exc)
            return
        if outcome is None:
            return
        yield outcome
        if not outcome.due_again:
            return  # known from the period's transaction: no second look needed


PREVIEW_HORIZON = dt.timedelta(days=366)


def preview(run_date: dt.date, organization_id: Any = None) -> Summary:
    """What a real run on ``run_date`` would bill (dry run: nothing is written). Charges
    waiting for the next invoice go on the first period only, as in a real run; a
    subscription whose schedule is broken is listed as failed, as a real run would."""
    summary = Summary()
    qs = (
        _due(run_date, organization_id)
        .select_related("customer")
        .order_by("next_invoice_date", "id")
    )
    for sub in qs.iterator(chunk_size=500):
        try:
            periods = schedule_of(sub).due(run_date, sub.last_period_start)
            final = None if periods else final_usage_period(sub)
            if final is not None and final.invoice_date <= run_date:
                periods = [final]
            done = set(
                BillingPeriod.objects.filter(
                    subscription=sub, period_start__in=[p.start for p in periods]
                )
                .exclude(status=PeriodStatus.FAILED)
                .values_list("period_start", flat=True)
            )
            lines = list(sub.lines.select_related("product").order_by("position", "id"))
            first = True
            for period in periods:
                if period.start in done:
                    continue
                invoice = invoice_lines(sub, period, with_pending=first, lines=lines)
                first = False
                if not invoice:  # a closing period without usage: a real run skips it
                    summary.add(Outcome(sub.pk, period.start, period.end, "skipped"))
                    continue
                totals = compute_totals(
                    [
                        LineInput(
                            quantity=Decimal(str(x["quantity"])),
                            unit_price=Decimal(str(x["unit_price"])),
                            vat_category=VatCategory(x["vat_category"]),
                            vat_rate=Decimal(str(x["vat_rate"])),
                            discount_percent=Decimal(str(x.get("discount_percent") or "0")),
                        )
                        for x in invoice
                    ],
                    sub.currency,
                )
                summary.add(
                    Outcome(
                        sub.pk,
                        period.start,
                        period.end,
                        "planned",
                        total=totals.tax_inclusive,
                        caught_up=period.invoice_date < run_date,
                    )
                )
        except Exception as exc:
            code = exc.code if isinstance(exc, BusinessError) else type(exc).__name__
            message = exc.message if isinstance(exc, BusinessError) else str(exc)
            start = sub.next_invoice_date or run_date
            summary.add(Outcome(sub.pk, start, start, "failed", error=f"{code}: {message}"))
    return summary


def start_run(
    run_date: dt.date, organization_id: Any = None, *, dry_run: bool = False
) -> BillingRun:
    with atomic():
        return BillingRun.objects.create(
            organization_id=organization_id, run_date=run_date, dry_run=dry_run
        )


def run_billing(
    run_date: dt.date,
    organization_id: Any = None,
    *,
    run: BillingRun | None = None,
    render: bool = False,
    on_progress: Callable[[Outcome], None] | None = None,
    worker: str | None = None,
    keep_outcomes: bool = True,
) -> Summary:
    """Bill everything due on ``run_date``; safe to run twice, concurrently, or after a crash.
    Several processes may call it with the same date: they share the work."""
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    run = run or start_run(run_date, organization_id)
    summary = Summary(keep_outcomes=keep_outcomes)
    orgs: dict[Any, Organization] = {}
    while True:
        ids = _claim_chunk(run_date, organization_id, worker)
        if not ids:
            break
        chunk = Summary(keep_outcomes=False)
        try:
            try:
                batch, rest = bill_batch(ids, run_date, run, render=render, orgs=orgs)
            except Exception as exc:
                # one period of the chunk cannot be billed (e.g. a customer without an
                # e-mail address): the batch rolled back; one period at a time finds it
                # and records why, and bills the others
                log.info("billing batch of %s subscriptions failed (%s): one by one", len(ids), exc)
                batch, rest = [], ids
            for outcome in batch:
                summary.add(outcome)
                chunk.add(outcome)
                if on_progress:
                    on_progress(outcome)
            for sub_id in rest:
                for outcome in _subscription_periods(sub_id, run_date, run, render, orgs):
                    summary.add(outcome)
                    chunk.add(outcome)
                    if on_progress:
                        on_progress(outcome)
        finally:
            _release(ids, worker)
        with atomic():
            BillingRun.objects.filter(pk=run.pk).update(
                issued=F("issued") + chunk.issued,
                drafts=F("drafts") + chunk.drafts,
                skipped=F("skipped") + chunk.skipped,
                failed=F("failed") + chunk.failed,
                caught_up=F("caught_up") + chunk.caught_up,
            )
            if chunk.outcomes:
                errors = BillingRun.objects.select_for_update().get(pk=run.pk).errors
                errors = [
                    *errors,
                    *(
                        {
                            "subscription": str(o.subscription_id),
                            "period_start": o.period_start.isoformat(),
                            "error": o.error,
                        }
                        for o in chunk.outcomes
                    ),
                ][:500]
                BillingRun.objects.filter(pk=run.pk).update(errors=errors)
        if any(o.status == "failed" for o in chunk.outcomes):
            # failed subscriptions stay due: don't spin on them in this run
            failed_ids = {o.subscription_id for o in chunk.outcomes}
            Subscription.objects.filter(pk__in=failed_ids).update(
                claimed_until=timezone.now() + dt.timedelta(days=1), claimed_by=f"failed:{run.pk}"
            )
    Subscription.objects.filter(claimed_by=f"failed:{run.pk}").update(
        claimed_until=None, claimed_by=""
    )
    BillingRun.objects.filter(pk=run.pk).update(status=RunStatus.DONE, finished_at=timezone.now())
    return summary


def run_due_billing() -> Summary:
    """The daily job: bill what is due today for each organization, « today » being its own
    date in its time zone (``Ctx.today()``): an organization in Nouméa bills the 1st while
    the server is still on the 31st, one in Papeete waits for its own 1st."""
    total = Summary(keep_outcomes=False)
    org_ids = (
        Subscription.objects.filter(
            status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELLED],
            next_invoice_date__isnull=False,
        )
        .values_list("organization_id", flat=True)
        .distinct()
    )
    for org in Organization.objects.filter(pk__in=list(org_ids)).order_by("pk"):
        today = run_ctx(org).today()
        if count_due(today, org.pk) == 0:
            continue
        part = run_billing(today, org.pk, keep_outcomes=False)
        for name in ("issued", "drafts", "skipped", "failed", "caught_up"):
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.outcomes.extend(part.outcomes)
    return total


def retry_failed(run_date: dt.date, organization_id: Any = None) -> Summary:
    """Failed periods stay due: a new run retries them (after the cause is fixed)."""
    return run_billing(run_date, organization_id)


# --- entry points for people (API, web): permissions and dates checked here -----------------


def preview_for(ctx: Ctx, run_date: dt.date) -> Summary:
    """What a run on ``run_date`` would bill for the acting organization (dry run), up to a
    year ahead of the organization's today."""
    ctx.require(Perm.VIEW)
    limit = ctx.today() + PREVIEW_HORIZON
    if run_date > limit:
        raise BusinessError(
            "billing.preview_too_far",
            _("A preview looks at most a year ahead: choose a date up to %(limit)s."),
            field="date",
            limit=limit.isoformat(),
        )
    return preview(run_date, ctx.organization.id)


def run_for(ctx: Ctx, run_date: dt.date | None = None) -> BillingRun:
    """Bill every due period of the acting organization now; safe to repeat (a period is
    never billed twice). Refuses a date in the organization's future."""
    from .selectors import organization_today

    ctx.require(Perm.ISSUE_INVOICES)
    today = organization_today(ctx)
    run_date = run_date or today
    if run_date > today:
        raise BusinessError(
            "billing.future_date",
            _(
                "Invoices cannot be issued in the future: run on %(today)s or before, or "
                "preview with dry_run."
            ),
            field="date",
            today=today.isoformat(),
        )
    run = start_run(run_date, ctx.organization.id)
    run_billing(run_date, ctx.organization.id, run=run, keep_outcomes=False)
    run.refresh_from_db()
    return run
