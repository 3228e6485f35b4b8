"""Dunning pages: upcoming reminders (next 7 days) with the run button, history with the
exact e-mail or letter, the to-do list, pauses, the policy editor with a live template
preview (htmx), and one invoice's dunning page (timeline, dispute, pause, policy override).

Reads through ``dunning.selectors``, writes through ``dunning.services`` / ``dunning.run``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from facturo.core.errors import BusinessError
from facturo.customers.models import Customer
from facturo.dunning import run as dunning_run
from facturo.dunning import selectors
from facturo.dunning import services as dunning
from facturo.dunning.models import (
    Channel,
    DunningPolicy,
    InvoiceDunning,
    PolicyAssignment,
    Segment,
)
from facturo.invoicing.models import Invoice
from facturo.invoicing.sending import load_documents  # noqa: F401  (outbox attachment loader)
from facturo.organizations.context import Ctx, Perm
from facturo.payments.services import amount_due

from .base import Amount, is_htmx, member_view, message_of, page, paginate

BLANK_STEPS = 2  # empty rows offered in the editor to add steps
STEP_FLAGS = ("to_customer_copies", "copy_internal", "add_interest", "suspend_subscriptions")
STEP_TEXTS = ("name", "offset_days", "channel", "subject_fr", "body_fr", "subject_en",
              "body_en", "task_title", "task_assignee", "id")  # fmt: skip


def _error(request: HttpRequest, err: BusinessError) -> None:
    messages.error(request, message_of(err))


# --- home: upcoming, run, pauses -------------------------------------------------------------


@member_view(post=Perm.SEND_INVOICES)
def dunning_home(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    if request.method == "POST":
        summary = dunning_run.run_for(ctx)
        messages.success(
            request,
            _("Dunning run: %(queued)s reminder(s) queued, %(skipped)s invoice(s) skipped.")
            % {"queued": summary.queued, "skipped": len(summary.skipped)},
        )
        for skipped in summary.skipped[:20]:
            messages.warning(request, f"{skipped.number}: {skipped.reason}")
        return redirect("web:dunning_home")
    upcoming = selectors.upcoming(ctx, days=7)
    rows = [(u, Amount(amount_due(u.invoice), u.invoice.currency)) for u in upcoming]
    customers = Customer.objects.filter(organization=ctx.organization, archived=False)
    return page(
        request,
        ctx,
        "web/dunning/home.html",
        {
            "rows": rows,
            "pauses": selectors.pauses(ctx),
            "open_tasks": selectors.tasks(ctx).count(),
            "has_policy": selectors.policies(ctx).exists(),
            "customers": customers.order_by("name"),
            "today": ctx.today(),
        },
    )


@member_view(post=Perm.SEND_INVOICES, methods=("POST",))
def dunning_pause_customer(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    try:
        dunning.pause(
            ctx,
            customer_id=request.POST.get("customer_id") or None,
            until=request.POST.get("until", ""),
            reason=request.POST.get("reason", ""),
        )
        messages.success(request, _("Dunning paused."))
    except BusinessError as err:
        _error(request, err)
    return redirect("web:dunning_home")


@member_view(post=Perm.SEND_INVOICES, methods=("POST",))
def dunning_pause_lift(request: HttpRequest, ctx: Ctx, pk: Any) -> HttpResponse:
    dunning.lift_pause(ctx, pk)
    messages.success(request, _("Pause ended: reminders resume."))
    return redirect(request.POST.get("next") or "web:dunning_home")


# --- history ---------------------------------------------------------------------------------


@member_view()
def dunning_history(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    page_obj = paginate(request, selectors.history_queryset(ctx))
    rows = [
        (m, Amount(m.total_due, m.currency), selectors.delivery_status(m))
        for m in page_obj.object_list
    ]
    return page(request, ctx, "web/dunning/history.html", {"page_obj": page_obj, "rows": rows})


@member_view()
def dunning_message(request: HttpRequest, ctx: Ctx, pk: Any) -> HttpResponse:
    msg = selectors.message(ctx, pk)
    return page(
        request,
        ctx,
        "web/dunning/message.html",
        {
            "msg": msg,
            "total": Amount(msg.total_due, msg.currency),
            "status": selectors.delivery_status(msg),
            "reminders": msg.reminders.select_related("invoice", "step", "penalty_invoice"),
        },
    )


@member_view()
def dunning_message_pdf(request: HttpRequest, ctx: Ctx, pk: Any) -> HttpResponse:
    msg = selectors.message(ctx, pk)
    if not msg.pdf:
        from django.http import Http404

        raise Http404(_("This reminder has no letter."))
    response = HttpResponse(bytes(msg.pdf), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="reminder-{str(msg.pk)[:8]}.pdf"'
    return response


# --- tasks -----------------------------------------------------------------------------------


@member_view()
def dunning_tasks(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    show_done = request.GET.get("done") == "1"
    page_obj = paginate(request, selectors.tasks(ctx, open_only=not show_done))
    return page(
        request, ctx, "web/dunning/tasks.html", {"page_obj": page_obj, "show_done": show_done}
    )


@member_view(post=Perm.SEND_INVOICES, methods=("POST",))
def dunning_task_done(request: HttpRequest, ctx: Ctx, pk: Any) -> HttpResponse:
    try:
        dunning.complete_task(ctx, pk, note=request.POST.get("note", ""))
        messages.success(request, _("Task done."))
    except BusinessError as err:
        _error(request, err)
    return redirect("web:dunning_tasks")


# --- policies --------------------------------------------------------------------------------


@member_view(post=Perm.MANAGE_ORGANIZATION)
def dunning_policies(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    if request.method == "POST":
        try:
            dunning.assign_policy(
                ctx,
                request.POST.get("policy_id"),
                customer_id=request.POST.get("customer_id") or None,
                segment=request.POST.get("segment", ""),
            )
            messages.success(request, _("Policy assigned."))
        except BusinessError as err:
            _error(request, err)
        return redirect("web:dunning_policies")
    policies = [(p, selectors.steps(p)) for p in selectors.policies(ctx)]
    assignments = PolicyAssignment.objects.filter(organization=ctx.organization).select_related(
        "policy", "customer"
    )
    customers = Customer.objects.filter(organization=ctx.organization, archived=False)
    return page(
        request,
        ctx,
        "web/dunning/policies.html",
        {
            "policies": policies,
            "assignments": assignments,
            "customers": customers.order_by("name"),
            "segments": Segment.choices,
        },
    )


def _steps_from_post(request: HttpRequest) -> list[dict[str, Any]]:
    count = min(int(request.POST.get("step_count", "0") or 0), 20)
    steps: list[dict[str, Any]] = []
    for i in range(count):
        prefix = f"steps-{i}-"
        data: dict[str, Any] = {k: request.POST.get(prefix + k, "") for k in STEP_TEXTS}
        if not data["name"].strip() and not data["body_fr"].strip():
            continue  # an empty row
        for flag in STEP_FLAGS:
            data[flag] = request.POST.get(prefix + flag) == "on"
        steps.append(data)
    return steps


def _step_rows(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    blank = {"channel": Channel.EMAIL, "to_customer_copies": True}
    rows = [*steps, *([blank] * BLANK_STEPS)]
    return [{**row, "index": i} for i, row in enumerate(rows)]


def _policy_form(policy: DunningPolicy | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if policy is None:
        return (
            {"name": "", "office_start": "09:00", "office_end": "18:00", "office_days": "01234"},
            [dict(s) for s in dunning.DEFAULT_STEPS],
        )
    fields = {
        "name": policy.name,
        "is_default": policy.is_default,
        "group_per_customer": policy.group_per_customer,
        "office_start": policy.office_start.strftime("%H:%M"),
        "office_end": policy.office_end.strftime("%H:%M"),
        "office_days": policy.office_days,
        "copy_to": policy.copy_to,
    }
    steps = [
        {k: getattr(s, k) for k in (*STEP_TEXTS[:-1], *STEP_FLAGS)} | {"id": str(s.pk)}
        for s in selectors.steps(policy)
    ]
    return fields, steps


@member_view(post=Perm.MANAGE_ORGANIZATION)
def dunning_policy_edit(request: HttpRequest, ctx: Ctx, pk: Any = None) -> HttpResponse:
    policy = dunning.get_policy(ctx, pk) if pk else None
    error: BusinessError | None = None
    if request.method == "POST":
        if request.POST.get("archive") and policy is not None:
            dunning.archive_policy(ctx, policy.pk)
            messages.success(request, _("Policy archived."))
            return redirect("web:dunning_policies")
        fields: dict[str, Any] = {
            "name": request.POST.get("name", ""),
            "is_default": request.POST.get("is_default") == "on",
            "group_per_customer": request.POST.get("group_per_customer") == "on",
            "office_start": request.POST.get("office_start", ""),
            "office_end": request.POST.get("office_end", ""),
            "office_days": "".join(request.POST.getlist("office_days")),
            "copy_to": request.POST.get("copy_to", ""),
        }
        steps = _steps_from_post(request)
        try:
            if policy is None:
                policy = dunning.create_policy(ctx, steps=steps, **fields)
            else:
                dunning.update_policy(ctx, policy.pk, steps=steps, **fields)
            messages.success(request, _("Policy saved."))
            return redirect("web:dunning_policies")
        except BusinessError as err:
            error = err
        form = fields
    else:
        form, steps = _policy_form(policy)
    return page(
        request,
        ctx,
        "web/dunning/policy_form.html",
        {
            "policy": policy,
            "form": form,
            "steps": _step_rows(steps),
            "error": message_of(error) if error else "",
            "error_field": (error.field or "") if error else "",
            "channels": Channel.choices,
            "weekdays": [
                ("0", _("Mon")),
                ("1", _("Tue")),
                ("2", _("Wed")),
                ("3", _("Thu")),
                ("4", _("Fri")),
                ("5", _("Sat")),
                ("6", _("Sun")),
            ],
            "variables": sorted(dunning.VARIABLES.items()),
        },
        status=422 if error else 200,
    )


@member_view(methods=("POST",), post=Perm.VIEW)
def dunning_preview(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    """htmx: the template of one step in one language, as the customer would read it."""
    index = request.POST.get("index", "0")
    language = request.POST.get("language", "fr")
    prefix = f"steps-{index}-"
    subject = request.POST.get(f"{prefix}subject_{language}", "")
    body = request.POST.get(f"{prefix}body_{language}", "")
    try:
        rendered_subject, rendered_body = dunning.preview(
            ctx, subject=subject, body=body, language=language
        )
        context = {"subject": rendered_subject, "body": rendered_body, "error": ""}
    except BusinessError as err:
        context = {"subject": "", "body": "", "error": message_of(err)}
    context["language"] = language
    status = 200 if is_htmx(request) or not context["error"] else 422
    return page(request, ctx, "web/dunning/_preview.html", context, status=status)


# --- one invoice -----------------------------------------------------------------------------


@member_view(post=Perm.SEND_INVOICES)
def dunning_invoice(request: HttpRequest, ctx: Ctx, pk: Any) -> HttpResponse:
    invoice = Invoice.objects.filter(organization=ctx.organization, pk=pk).first()
    timeline = selectors.timeline(ctx, pk)  # 404 for another organization's invoice
    assert invoice is not None
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "dispute":
                dunning.mark_disputed(ctx, pk, reason=request.POST.get("reason", ""))
                messages.success(request, _("Invoice marked disputed: no reminder until resolved."))
            elif action == "resolve":
                dunning.resolve_dispute(ctx, pk)
                messages.success(request, _("Dispute resolved: reminders resume."))
            elif action == "pause":
                dunning.pause(
                    ctx,
                    invoice_id=pk,
                    until=request.POST.get("until", ""),
                    reason=request.POST.get("reason", ""),
                )
                messages.success(request, _("Dunning paused."))
            elif action == "policy":
                dunning.set_invoice_policy(ctx, pk, request.POST.get("policy_id") or None)
                messages.success(request, _("Policy saved."))
        except BusinessError as err:
            _error(request, err)
        return redirect("web:dunning_invoice", pk=pk)
    settings = selectors.disputed(ctx).filter(invoice=invoice).first()
    override = (
        InvoiceDunning.objects.filter(invoice=invoice).values_list("policy_id", flat=True)
    ).first()
    entries = [
        (e, Amount(e.amount, invoice.currency) if e.amount is not None else None) for e in timeline
    ]
    return page(
        request,
        ctx,
        "web/dunning/invoice.html",
        {
            "invoice": invoice,
            "due": Amount(amount_due(invoice), invoice.currency),
            "entries": entries,
            "dispute": settings,
            "override": str(override) if override else "",
            "policies": selectors.policies(ctx),
            "pauses": [p for p in selectors.pauses(ctx) if p.invoice_id == invoice.pk],
            "min_date": (ctx.today() + dt.timedelta(days=1)).isoformat(),
        },
    )
