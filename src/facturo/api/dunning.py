"""/dunning: policies and their steps, assignments, template preview, pauses, disputes,
tasks, upcoming reminders, history, per-invoice timeline, and a run for the caller's
organization. Thin handlers over ``facturo.dunning`` (services check roles and input)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from facturo.core.money import round_money
from facturo.dunning import run as dunning_run
from facturo.dunning import selectors
from facturo.dunning import services as dunning
from facturo.dunning.models import DunningPolicy, DunningStep, DunningTask, Pause
from facturo.invoicing.models import Invoice
from facturo.organizations.context import Perm

from .auth import ctx_of
from .schemas import DecimalOut, Input, PageMeta, PageParams

router = Router(tags=["dunning"])

ChannelName = Literal["email", "letter"]
SegmentName = Literal["company", "person"]


class StepIO(Input):
    # A string (checked by the service): the id of an existing step to keep.
    id: str | None = Field(None, max_length=36, description="Keep this step (omit: a new one).")
    name: str = Field(max_length=100)
    offset_days: int = Field(ge=-60, le=730, description="Days after the due date (−: before).")
    channel: ChannelName = "email"
    subject_fr: str = Field("", max_length=300)
    body_fr: str = Field(max_length=20000)
    subject_en: str = Field("", max_length=300)
    body_en: str = Field(max_length=20000)
    to_customer_copies: bool = True
    copy_internal: bool = False
    add_interest: bool = Field(False, description="Invoice late interest + 40 € (B2B only).")
    suspend_subscriptions: bool = False
    task_title: str = Field("", max_length=200)
    task_assignee: str = Field("", max_length=200)


class PolicyIn(Input):
    name: str = Field(max_length=100)
    is_default: bool = False
    group_per_customer: bool = False
    office_start: dt.time = dt.time(9, 0)
    office_end: dt.time = dt.time(18, 0)
    office_days: str = Field("01234", max_length=7, description="0 = Monday … 6 = Sunday.")
    copy_to: str = Field("", max_length=500)
    steps: list[StepIO] = Field(default_factory=list, max_length=20)


class PolicyOut(Schema):
    id: uuid.UUID
    name: str
    is_default: bool
    group_per_customer: bool
    office_start: dt.time
    office_end: dt.time
    office_days: str
    copy_to: str
    steps: list[StepIO]


def _policy_out(policy: DunningPolicy) -> dict[str, Any]:
    fields = list(StepIO.model_fields)

    def step(s: DunningStep) -> dict[str, Any]:
        return {k: getattr(s, k) if k != "id" else str(s.pk) for k in fields}

    return {
        "id": policy.pk,
        "name": policy.name,
        "is_default": policy.is_default,
        "group_per_customer": policy.group_per_customer,
        "office_start": policy.office_start,
        "office_end": policy.office_end,
        "office_days": policy.office_days,
        "copy_to": policy.copy_to,
        "steps": [step(s) for s in selectors.steps(policy)],
    }


def _policy_data(payload: PolicyIn) -> dict[str, Any]:
    data = payload.model_dump()
    return data


def _page(items: list[Any], filters: PageParams) -> dict[str, Any]:
    return {
        "count": len(items),
        "limit": filters.limit,
        "offset": filters.offset,
        "items": items[filters.offset : filters.offset + filters.limit],
    }


class PolicyPage(PageMeta):
    items: list[PolicyOut]


@router.get("/dunning/policies", response=PolicyPage, summary="List dunning policies")
def list_policies(request: HttpRequest, filters: Query[PageParams]) -> dict[str, Any]:
    return _page([_policy_out(p) for p in selectors.policies(ctx_of(request))], filters)


@router.post("/dunning/policies", response={201: PolicyOut}, summary="Create a policy")
def create_policy(request: HttpRequest, payload: PolicyIn) -> Status:
    data = _policy_data(payload)
    policy = dunning.create_policy(ctx_of(request), **data)
    return Status(201, _policy_out(policy))


@router.get("/dunning/policies/{policy_id}", response=PolicyOut, summary="Get a policy")
def get_policy(request: HttpRequest, policy_id: uuid.UUID) -> dict[str, Any]:
    return _policy_out(dunning.get_policy(ctx_of(request), policy_id))


@router.put("/dunning/policies/{policy_id}", response=PolicyOut,
            summary="Replace a policy and its steps (sent steps stay as history)")  # fmt: skip
def update_policy(request: HttpRequest, policy_id: uuid.UUID, payload: PolicyIn) -> dict[str, Any]:
    policy = dunning.update_policy(ctx_of(request), policy_id, **_policy_data(payload))
    return _policy_out(policy)


@router.post("/dunning/policies/{policy_id}/archive", response={204: None},
             summary="Archive a policy (its assignments go; history stays)")  # fmt: skip
def archive_policy(request: HttpRequest, policy_id: uuid.UUID) -> Status:
    dunning.archive_policy(ctx_of(request), policy_id)
    return Status(204, None)


class AssignmentIn(Input):
    policy_id: uuid.UUID
    customer_id: uuid.UUID | None = None
    segment: SegmentName | None = None


class AssignmentOut(Schema):
    policy_id: uuid.UUID
    customer_id: uuid.UUID | None
    segment: str


@router.post("/dunning/assignments", response={201: AssignmentOut},
             summary="Assign a policy to a customer or a segment (company / person)")  # fmt: skip
def assign(request: HttpRequest, payload: AssignmentIn) -> Status:
    row = dunning.assign_policy(
        ctx_of(request),
        payload.policy_id,
        customer_id=payload.customer_id,
        segment=payload.segment or "",
    )
    return Status(
        201, {"policy_id": row.policy_id, "customer_id": row.customer_id, "segment": row.segment}
    )


class PreviewIn(Input):
    subject: str = Field("", max_length=300)
    body: str = Field(max_length=20000)
    language: Literal["fr", "en"] = "fr"
    customer_id: uuid.UUID | None = None


class PreviewOut(Schema):
    subject: str
    body: str


@router.post("/dunning/preview", response=PreviewOut,
             summary="Render a template (unknown variables are refused)")  # fmt: skip
def preview(request: HttpRequest, payload: PreviewIn) -> dict[str, str]:
    subject, body = dunning.preview(
        ctx_of(request),
        subject=payload.subject,
        body=payload.body,
        language=payload.language,
        customer_id=payload.customer_id,
    )
    return {"subject": subject, "body": body}


class PauseIn(Input):
    customer_id: uuid.UUID | None = None
    invoice_id: uuid.UUID | None = None
    until: dt.date
    reason: str = Field(max_length=300)


class PauseOut(Schema):
    id: uuid.UUID
    customer_id: uuid.UUID | None
    invoice_id: uuid.UUID | None
    until: dt.date
    reason: str
    lifted_at: dt.datetime | None


def _pause_out(p: Pause) -> dict[str, Any]:
    return {
        "id": p.pk,
        "customer_id": p.customer_id,
        "invoice_id": p.invoice_id,
        "until": p.until,
        "reason": p.reason,
        "lifted_at": p.lifted_at,
    }


class PausePage(PageMeta):
    items: list[PauseOut]


@router.get("/dunning/pauses", response=PausePage, summary="Pauses in force")
def list_pauses(request: HttpRequest, filters: Query[PageParams]) -> dict[str, Any]:
    return _page([_pause_out(p) for p in selectors.pauses(ctx_of(request))], filters)


@router.post("/dunning/pauses", response={201: PauseOut},
             summary="Pause dunning for a customer or an invoice until a date")  # fmt: skip
def create_pause(request: HttpRequest, payload: PauseIn) -> Status:
    row = dunning.pause(
        ctx_of(request),
        customer_id=payload.customer_id,
        invoice_id=payload.invoice_id,
        until=payload.until,
        reason=payload.reason,
    )
    return Status(201, _pause_out(row))


@router.post("/dunning/pauses/{pause_id}/lift", response=PauseOut, summary="End a pause now")
def lift_pause(request: HttpRequest, pause_id: uuid.UUID) -> dict[str, Any]:
    return _pause_out(dunning.lift_pause(ctx_of(request), pause_id))


class DisputeIn(Input):
    reason: str = Field(max_length=300)


class InvoiceDunningOut(Schema):
    invoice_id: uuid.UUID
    policy_id: uuid.UUID | None
    disputed: bool
    dispute_reason: str


def _settings_out(row: Any) -> dict[str, Any]:
    return {
        "invoice_id": row.invoice_id,
        "policy_id": row.policy_id,
        "disputed": row.disputed,
        "dispute_reason": row.dispute_reason,
    }


@router.post("/invoices/{invoice_id}/dunning/dispute", response=InvoiceDunningOut,
             summary="Mark an invoice disputed (no reminder until resolved)")  # fmt: skip
def dispute(request: HttpRequest, invoice_id: uuid.UUID, payload: DisputeIn) -> dict[str, Any]:
    return _settings_out(dunning.mark_disputed(ctx_of(request), invoice_id, reason=payload.reason))


@router.post("/invoices/{invoice_id}/dunning/resolve", response=InvoiceDunningOut,
             summary="The dispute is over: reminders resume")  # fmt: skip
def resolve(request: HttpRequest, invoice_id: uuid.UUID) -> dict[str, Any]:
    return _settings_out(dunning.resolve_dispute(ctx_of(request), invoice_id))


class OverrideIn(Input):
    policy_id: uuid.UUID | None = Field(None, description="null: back to the customer's policy")


@router.post("/invoices/{invoice_id}/dunning/policy", response=InvoiceDunningOut,
             summary="Override the policy of one invoice")  # fmt: skip
def override(request: HttpRequest, invoice_id: uuid.UUID, payload: OverrideIn) -> dict[str, Any]:
    return _settings_out(dunning.set_invoice_policy(ctx_of(request), invoice_id, payload.policy_id))


class TimelineOut(Schema):
    at: dt.datetime
    kind: str
    title: str
    amount: DecimalOut | None
    detail: str
    message_id: uuid.UUID | None
    subject: str
    body: str


@router.get("/invoices/{invoice_id}/dunning/timeline", response=list[TimelineOut],
            summary="Reminders (with their exact text) and payments of an invoice")  # fmt: skip
def timeline(request: HttpRequest, invoice_id: uuid.UUID) -> list[dict[str, Any]]:
    ctx = ctx_of(request)
    entries = selectors.timeline(ctx, invoice_id)  # 404 first
    currency = Invoice.objects.get(organization=ctx.organization, pk=invoice_id).currency
    return [
        {
            "at": e.at,
            "kind": e.kind,
            "title": e.title,
            "amount": str(round_money(e.amount, currency)) if e.amount is not None else None,
            "detail": e.detail,
            "message_id": e.message.pk if e.message else None,
            "subject": e.message.subject if e.message else "",
            "body": e.message.body if e.message else "",
        }
        for e in entries
    ]


class TaskOut(Schema):
    id: uuid.UUID
    title: str
    assignee: str
    customer_id: uuid.UUID
    invoice_id: uuid.UUID | None
    due_on: dt.date
    done_at: dt.datetime | None
    note: str


def _task_out(t: DunningTask) -> dict[str, Any]:
    return {
        "id": t.pk,
        "title": t.title,
        "assignee": t.assignee,
        "customer_id": t.customer_id,
        "invoice_id": t.invoice_id,
        "due_on": t.due_on,
        "done_at": t.done_at,
        "note": t.note,
    }


class TaskFilters(PageParams):
    open: bool = True


class TaskPage(PageMeta):
    items: list[TaskOut]


@router.get("/dunning/tasks", response=TaskPage, summary="The to-do list of dunning tasks")
def list_tasks(request: HttpRequest, filters: Query[TaskFilters]) -> dict[str, Any]:
    qs = selectors.tasks(ctx_of(request), open_only=filters.open)
    items = qs[filters.offset : filters.offset + filters.limit]
    return {"count": qs.count(), "limit": filters.limit, "offset": filters.offset,
            "items": [_task_out(t) for t in items]}  # fmt: skip


class TaskDoneIn(Input):
    note: str = Field("", max_length=500)


@router.post("/dunning/tasks/{task_id}/done", response=TaskOut, summary="Mark a task done")
def task_done(request: HttpRequest, task_id: uuid.UUID, payload: TaskDoneIn) -> dict[str, Any]:
    return _task_out(dunning.complete_task(ctx_of(request), task_id, note=payload.note))


class UpcomingOut(Schema):
    on: dt.date
    invoice_id: uuid.UUID
    invoice_number: str
    customer: str
    step: str
    offset_days: int
    channel: str
    policy: str
    blocked: str | None


class UpcomingFilters(PageParams):
    days: int = Field(7, ge=1, le=60)


class UpcomingPage(PageMeta):
    items: list[UpcomingOut]


@router.get("/dunning/upcoming", response=UpcomingPage,
            summary="Reminders falling due in the next days (7 by default)")  # fmt: skip
def upcoming(request: HttpRequest, filters: Query[UpcomingFilters]) -> dict[str, Any]:
    rows = [
        {
            "on": u.on,
            "invoice_id": u.invoice.pk,
            "invoice_number": u.invoice.number or "",
            "customer": u.invoice.customer.name,
            "step": u.step.name,
            "offset_days": u.step.offset_days,
            "channel": u.step.channel,
            "policy": u.policy.name,
            "blocked": u.blocked,
        }
        for u in selectors.upcoming(ctx_of(request), days=filters.days)
    ]
    return _page(rows, filters)


class ReminderOut(Schema):
    id: uuid.UUID
    created_at: dt.datetime
    scheduled_for: dt.datetime
    customer_id: uuid.UUID
    channel: str
    to: list[str]
    cc: list[str]
    subject: str
    body: str
    total_due: DecimalOut
    currency: str
    status: str
    invoices: list[str]


class ReminderPage(PageMeta):
    items: list[ReminderOut]


@router.get("/dunning/reminders", response=ReminderPage,
            summary="Reminders sent or queued, latest first")  # fmt: skip
def history(request: HttpRequest, filters: Query[PageParams]) -> dict[str, Any]:
    ctx = ctx_of(request)
    qs = selectors.history_queryset(ctx)
    messages = qs[filters.offset : filters.offset + filters.limit]
    rows = [
        {
            "id": m.pk,
            "created_at": m.created_at,
            "scheduled_for": m.scheduled_for,
            "customer_id": m.customer_id,
            "channel": m.channel,
            "to": m.to,
            "cc": m.cc,
            "subject": m.subject,
            "body": m.body,
            "total_due": str(round_money(m.total_due, m.currency)),
            "currency": m.currency,
            "status": selectors.delivery_status(m),
            "invoices": [r.invoice.number or "" for r in m.reminders.all()],
        }
        for m in messages
    ]
    return {"count": qs.count(), "limit": filters.limit, "offset": filters.offset, "items": rows}


class RunIn(Input):
    date: dt.date | None = Field(None, description="Default: today (organization time zone).")


class SkippedOut(Schema):
    invoice_id: uuid.UUID
    number: str
    reason: str


class RunOut(Schema):
    queued: int
    messages: int
    skipped: list[SkippedOut]
    summary: str


@router.post("/dunning/runs", response=RunOut,
             summary="Run dunning now for your organization (idempotent)")  # fmt: skip
def run(request: HttpRequest, payload: RunIn) -> dict[str, Any]:
    ctx = ctx_of(request)
    ctx.require(Perm.SEND_INVOICES)
    summary = dunning_run.run_for(ctx, payload.date)
    return {
        "queued": summary.queued,
        "messages": summary.messages,
        "skipped": [
            {"invoice_id": s.invoice_id, "number": s.number, "reason": s.reason}
            for s in summary.skipped
        ],
        "summary": summary.line(),
    }
