"""Read queries for dunning, scoped by the caller's organization."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Max, QuerySet

from facturo.core import dunning as rules
from facturo.core.errors import NotFound, _
from facturo.invoicing.models import Invoice
from facturo.notifications.models import OutboxEmail
from facturo.organizations.context import Ctx

from . import run as dunning_run
from . import services
from .models import (
    DunningPolicy,
    DunningStep,
    DunningTask,
    InvoiceDunning,
    Pause,
    Reminder,
    ReminderMessage,
)


def policies(ctx: Ctx) -> QuerySet[DunningPolicy]:
    return DunningPolicy.objects.filter(organization=ctx.organization, archived=False).order_by(
        "-is_default", "name"
    )


def steps(policy: DunningPolicy) -> list[DunningStep]:
    return list(policy.steps.filter(archived=False).order_by("offset_days"))


def history_queryset(ctx: Ctx) -> QuerySet[ReminderMessage]:
    return (
        ReminderMessage.objects.filter(organization=ctx.organization)
        .select_related("customer")
        .prefetch_related("reminders__invoice", "reminders__step")
        .order_by("-created_at")
    )


def history(ctx: Ctx, limit: int = 200) -> QuerySet[ReminderMessage]:
    return history_queryset(ctx)[:limit]


def message(ctx: Ctx, message_id: Any) -> ReminderMessage:
    try:
        row: ReminderMessage = ReminderMessage.objects.select_related("customer").get(
            organization=ctx.organization, pk=message_id
        )
    except (ReminderMessage.DoesNotExist, ValueError, ValidationError):
        raise NotFound("dunning.message_not_found", _("Reminder not found.")) from None
    return row


def delivery_status(msg: ReminderMessage) -> str:
    """queued | sent | failed | cancelled | printable (letters)."""
    if msg.status == "cancelled":
        return "cancelled"
    if msg.outbox_email_id is None:
        return "printable"
    email = OutboxEmail.objects.filter(pk=msg.outbox_email_id).first()
    if email is None:
        return "queued"
    return str(email.status).replace("pending", "queued")


def tasks(ctx: Ctx, *, open_only: bool = True) -> QuerySet[DunningTask]:
    qs = DunningTask.objects.filter(organization=ctx.organization).select_related(
        "customer", "invoice"
    )
    if open_only:
        qs = qs.filter(done_at__isnull=True)
    return qs.order_by("due_on", "created_at")


def pauses(ctx: Ctx) -> QuerySet[Pause]:
    return (
        Pause.objects.filter(
            organization=ctx.organization, lifted_at__isnull=True, until__gte=ctx.today()
        )
        .select_related("customer", "invoice")
        .order_by("until")
    )


def disputed(ctx: Ctx) -> QuerySet[InvoiceDunning]:
    return InvoiceDunning.objects.filter(organization=ctx.organization, disputed=True)


@dataclass(frozen=True)
class Upcoming:
    on: dt.date
    invoice: Invoice
    step: DunningStep
    policy: DunningPolicy
    blocked: str | None  # why it would be skipped today (disputed, paused…), else None


def upcoming(ctx: Ctx, *, start: dt.date | None = None, days: int = 7) -> list[Upcoming]:
    """The next step of each open invoice falling within ``days`` days from ``start``."""
    org = ctx.organization
    start = start or ctx.today()
    end = start + dt.timedelta(days=days)
    data = dunning_run._org_data(org)
    invoices = list(dunning_run._candidates(org, end, data))
    ids = [i.pk for i in invoices]
    last = dict(
        Reminder.objects.filter(invoice_id__in=ids)
        .values("invoice_id")
        .annotate(m=Max("offset_days"))
        .values_list("invoice_id", "m")
    )
    overrides = dict(
        InvoiceDunning.objects.filter(invoice_id__in=ids).values_list("invoice_id", "policy_id")
    )
    result: list[Upcoming] = []
    for invoice in invoices:
        assert invoice.due_date is not None
        policy = dunning_run.policy_for(data, invoice, overrides.get(invoice.pk), invoice.customer)
        if policy is None:
            continue
        reached = last.get(invoice.pk)
        for step in data.steps[policy.pk]:
            if reached is not None and step.offset_days <= reached:
                continue
            on = rules.step_date(invoice.due_date, rules.StepRule(str(step.pk), step.offset_days))
            if step.offset_days < 0 and on < start and start >= invoice.due_date:
                continue
            if on > end:
                break
            on = max(on, start)
            result.append(Upcoming(on, invoice, step, policy, services.blocked_reason(invoice, on)))
            break
    result.sort(key=lambda u: (u.on, u.invoice.due_date or u.on))
    return result


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str  # issued | reminder | payment | payment_reversed | credit_note | pause | dispute
    title: str
    amount: Decimal | None = None
    message: ReminderMessage | None = None
    detail: str = ""


def _aware(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)


def timeline(ctx: Ctx, invoice_id: Any) -> list[TimelineEntry]:
    """Everything that happened to an invoice's payment: issue, each reminder (with the
    exact message), each payment and reversal, credit notes, pauses and the dispute."""
    from facturo.payments.models import Allocation

    try:
        invoice: Invoice = Invoice.objects.get(organization=ctx.organization, pk=invoice_id)
    except (Invoice.DoesNotExist, ValueError, ValidationError):
        raise NotFound("invoice.not_found", _("Invoice not found.")) from None
    entries: list[TimelineEntry] = []
    if invoice.issued_at:
        entries.append(
            TimelineEntry(invoice.issued_at, "issued", invoice.number or "", invoice.total_incl_vat)
        )
    for r in Reminder.objects.filter(invoice=invoice).select_related("message", "step"):
        entries.append(
            TimelineEntry(
                r.created_at,
                "reminder",
                f"{r.step.name} ({r.offset_days:+d})",
                r.amount_due,
                r.message,
                delivery_status(r.message),
            )
        )
    for a in Allocation.objects.filter(invoice=invoice).select_related("payment"):
        entries.append(
            TimelineEntry(
                a.created_at,
                "payment",
                f"{a.payment.get_method_display()} {a.payment.received_on.isoformat()}",
                a.amount,
            )
        )
        if a.reversed_at:
            entries.append(
                TimelineEntry(a.reversed_at, "payment_reversed", a.reversal_reason, -a.amount)
            )
    for note in Invoice.objects.filter(credited_invoice=invoice).exclude(status="draft"):
        if note.issued_at:
            entries.append(
                TimelineEntry(note.issued_at, "credit_note", note.number or "", note.total_incl_vat)
            )
    for p in Pause.objects.filter(invoice=invoice) | Pause.objects.filter(
        customer_id=invoice.customer_id
    ):
        entries.append(
            TimelineEntry(p.created_at, "pause", p.reason, detail=f"until {p.until.isoformat()}")
        )
    settings = InvoiceDunning.objects.filter(invoice=invoice).first()
    if settings is not None and settings.disputed and settings.disputed_at:
        entries.append(TimelineEntry(settings.disputed_at, "dispute", settings.dispute_reason))
    entries.sort(key=lambda e: e.at)
    return entries
