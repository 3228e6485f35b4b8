"""Subscriptions: list, detail (periods billed, pause / resume / cancel), plans, billing runs
(status page with failed periods and a retry), MRR page with a CSS/SVG bar chart.

Reads go through ``subscriptions.selectors``, writes through ``subscriptions.services`` and
the billing run; nothing is computed here except the chart's bar heights.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from facturo.core.errors import BusinessError, NotFound
from facturo.core.errors import _ as mark
from facturo.organizations.context import Ctx, Perm
from facturo.subscriptions import billing, selectors
from facturo.subscriptions import services as subs
from facturo.subscriptions.models import BillingRun, RunStatus, SubscriptionStatus

from .base import Amount, member_view, message_of, page, paginate, plain

CHART_HEIGHT = 120  # SVG units of the tallest bar


def _day(request: HttpRequest, ctx: Ctx, name: str = "on") -> dt.date:
    raw = request.POST.get(name, "").strip()
    if not raw:
        return selectors.organization_today(ctx)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BusinessError(
            "input.invalid_date", mark("“%(value)s” is not a date (YYYY-MM-DD)."), value=raw[:40]
        ) from None


# --- subscriptions -------------------------------------------------------------------------


@member_view(methods=("GET",))
def subscription_list(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    status = request.GET.get("status", "")
    if status not in SubscriptionStatus.values:
        status = ""
    page_obj = paginate(request, selectors.subscriptions(ctx, status=status))
    today = selectors.organization_today(ctx)
    rows = [(sub, Amount(selectors.monthly_amount(sub, today), sub.currency)) for sub in page_obj]
    return page(
        request,
        ctx,
        "web/subscriptions/list.html",
        {
            "page_obj": page_obj,
            "rows": rows,
            "status": status,
            "statuses": SubscriptionStatus.choices,
        },
    )


@member_view(methods=("GET",))
def subscription_detail(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    sub = selectors.subscription(ctx, pk)
    today = selectors.organization_today(ctx)
    periods = paginate(request, selectors.billed_periods(ctx, sub))
    lines = [
        {
            "line": line,
            "quantity": plain(line.quantity),
            "unit_price": Amount(subs.line_price(line), sub.currency),
            "discount": plain(line.discount_percent) if line.discount_percent else "",
            "vat_rate": plain(line.vat_rate),
        }
        for line in sub.lines.select_related("product").order_by("position", "id")
    ]
    return page(
        request,
        ctx,
        "web/subscriptions/detail.html",
        {
            "sub": sub,
            "today": today,
            "lines": lines,
            "page_obj": periods,
            "periods": [
                (p, Amount(p.invoice.total_incl_vat if p.invoice else None, sub.currency))
                for p in periods
            ],
            "monthly": Amount(selectors.monthly_amount(sub, today), sub.currency),
            "can_pause": sub.status == SubscriptionStatus.ACTIVE,
            "can_resume": sub.status == SubscriptionStatus.PAUSED,
            "can_cancel": sub.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED),
        },
    )


def _act(request: HttpRequest, ctx: Ctx, pk: uuid.UUID, action: str) -> HttpResponse:
    try:
        day = _day(request, ctx)
        if action == "pause":
            subs.pause(ctx, pk, on=day)
            messages.success(request, _("Subscription paused."))
        elif action == "resume":
            subs.resume(ctx, pk, on=day)
            messages.success(request, _("Subscription resumed."))
        else:
            at_period_end = request.POST.get("when", "period_end") != "now"
            subs.cancel(ctx, pk, at_period_end=at_period_end, on=day)
            messages.success(request, _("Subscription cancelled."))
    except NotFound:
        raise
    except BusinessError as err:
        if err.http_status == 403:
            raise
        messages.error(request, message_of(err))
    return redirect("web:subscription_detail", pk=pk)


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def subscription_pause(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    return _act(request, ctx, pk, "pause")


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def subscription_resume(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    return _act(request, ctx, pk, "resume")


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def subscription_cancel(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    return _act(request, ctx, pk, "cancel")


# --- plans ---------------------------------------------------------------------------------


@member_view(methods=("GET",))
def plan_list(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    page_obj = paginate(request, selectors.plans(ctx))
    rows = [
        (plan, [(line, Amount(subs.line_price(line), plan.currency)) for line in plan.lines.all()])
        for plan in page_obj
    ]
    return page(request, ctx, "web/subscriptions/plans.html", {"page_obj": page_obj, "rows": rows})


# --- billing runs --------------------------------------------------------------------------


def _duration(run: BillingRun) -> str:
    if run.finished_at is None:
        return ""
    delta = run.finished_at - run.started_at
    micro = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{Decimal(micro).scaleb(-6).quantize(Decimal('0.1'))} s"


@member_view(methods=("GET",))
def billing_run_list(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    page_obj = paginate(request, selectors.billing_runs(ctx))
    return page(
        request,
        ctx,
        "web/subscriptions/runs.html",
        {
            "page_obj": page_obj,
            "runs": [(run, _duration(run)) for run in page_obj],
            "failed_count": selectors.failed_periods(ctx).count(),
            "today": selectors.organization_today(ctx),
        },
    )


@member_view(methods=("GET",))
def billing_run_detail(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    run = selectors.billing_run(ctx, pk)
    failed = list(selectors.failed_periods(ctx, run)[:500])
    return page(
        request,
        ctx,
        "web/subscriptions/run.html",
        {
            "run": run,
            "duration": _duration(run),
            "running": run.status == RunStatus.RUNNING,
            "failed": failed,
            "still_failed": selectors.failed_periods(ctx).count(),
        },
    )


def _run_now(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    """Bill what is due today for this organization (a retry of failed periods is the same
    thing: a failed period stays due until a run bills it)."""
    run = billing.run_for(ctx)
    messages.success(
        request,
        _("Billing run done: issued %(issued)s, drafts %(drafts)s, failed %(failed)s.")
        % {"issued": run.issued, "drafts": run.drafts, "failed": run.failed},
    )
    return redirect("web:billing_run_detail", pk=run.pk)


@member_view(get=None, post=Perm.ISSUE_INVOICES, methods=("POST",))
def billing_run_start(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    return _run_now(request, ctx)


@member_view(get=None, post=Perm.ISSUE_INVOICES, methods=("POST",))
def billing_run_retry(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    selectors.billing_run(ctx, pk)  # 404 for another organization's run
    return _run_now(request, ctx)


# --- MRR -----------------------------------------------------------------------------------


@member_view(methods=("GET",))
def mrr(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    view = selectors.mrr_view(ctx, selectors.organization_today(ctx))
    currency = view.currency
    values = [m.amounts.get(currency, Decimal(0)) for m in view.forecast]
    top = max(values) if values and max(values) > 0 else Decimal(1)
    bars = []
    for i, (month, value) in enumerate(zip(view.forecast, values, strict=True)):
        height = int((value * CHART_HEIGHT / top).to_integral_value())
        bars.append(
            {
                "month": month,
                "amount": Amount(value, currency),
                "others": [Amount(a, c) for c, a in month.amounts.items() if c != currency],
                "x": 20 + i * 100,
                "y": 20 + CHART_HEIGHT - height,
                "height": height,
            }
        )
    return page(
        request,
        ctx,
        "web/subscriptions/mrr.html",
        {
            "view": view,
            "mrr": Amount(view.mrr, currency),
            "arr": Amount(view.arr, currency),
            "others": [Amount(a, c) for c, a in view.other_currencies.items()],
            "churned": [Amount(a, c) for c, a in view.churned_mrr.items()],
            "bars": bars,
            "chart_bottom": 20 + CHART_HEIGHT,
        },
    )
