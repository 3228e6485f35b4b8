"""Subscriptions: list, detail (periods billed, pause / resume / cancel), plans, billing runs
(status page with failed periods and a retry), MRR page with a CSS/SVG bar chart.

Reads go through ``subscriptions.selectors``, writes through ``subscriptions.services`` and
the billing run; nothing is computed here except the chart's bar heights.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from facturo.catalog.models import VAT_CATEGORY_CHOICES
from facturo.core.errors import BusinessError, NotFound
from facturo.core.errors import _ as mark
from facturo.core.recurrence import PRESETS
from facturo.customers.models import Customer
from facturo.organizations.context import Ctx, Perm
from facturo.subscriptions import billing, selectors
from facturo.subscriptions import services as subs
from facturo.subscriptions.models import (
    TIMINGS,
    UNITS,
    AutoPay,
    BillingRun,
    IssueMode,
    Plan,
    Pricing,
    ProrationMode,
    RunStatus,
    Subscription,
    SubscriptionStatus,
)

from .base import Amount, member_view, message_of, page, paginate, place_line_error, plain

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
            "tiers": _tiers_text(line.tiers or []),
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
            "can_pause": sub.status == SubscriptionStatus.ACTIVE and subs.open_pause(sub) is None,
            "can_resume": subs.open_pause(sub) is not None
            and sub.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED),
            "pause_from": subs.open_pause(sub),
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


# --- editing: plans, subscriptions, settings, changes ---------------------------------------

PRESET_LABELS = [
    ("monthly", gettext_lazy("Monthly")),
    ("weekly", gettext_lazy("Weekly")),
    ("biweekly", gettext_lazy("Every two weeks")),
    ("semi_monthly", gettext_lazy("Twice a month")),
    ("bimonthly", gettext_lazy("Every two months")),
    ("quarterly", gettext_lazy("Quarterly")),
    ("half_yearly", gettext_lazy("Half-yearly")),
    ("yearly", gettext_lazy("Yearly")),
    ("custom", gettext_lazy("Other (every N days, weeks, months or years)")),
]
ROW_KEYS = (
    "product",
    "description",
    "quantity",
    "unit_price",
    "vat_category",
    "vat_rate",
    "discount_percent",
    "discount_until",
    "pricing",
    "metric",
    "tiers",
)
ROW = re.compile(r"^lines-(\d{1,3})-[a-z_]+$")
END_CHOICES = [
    ("never", gettext_lazy("Never")),
    ("count", gettext_lazy("After a number of invoices")),
    ("date", gettext_lazy("On a date")),
    ("once", gettext_lazy("Once: a single invoice on the start date (one-off)")),
]


def _lazy(choices: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return list(choices)


class ScheduleForm(forms.Form):
    preset = forms.ChoiceField(label=gettext_lazy("Frequency"), choices=_lazy(PRESET_LABELS))
    unit = forms.ChoiceField(label=gettext_lazy("Every"), choices=UNITS, required=False)
    interval = forms.IntegerField(
        label=gettext_lazy("Interval"), min_value=1, max_value=366, required=False
    )
    semi_day1 = forms.IntegerField(
        label=gettext_lazy("First day"), min_value=1, max_value=27, required=False
    )
    semi_day2 = forms.IntegerField(
        label=gettext_lazy("Second day"), min_value=2, max_value=31, required=False
    )
    anchor_day = forms.IntegerField(
        label=gettext_lazy("Anchor day"),
        min_value=0,
        max_value=31,
        initial=0,
        required=False,
        help_text=gettext_lazy(
            "0: the start date; 1–31: that day of the month (31 = the month's last day)."
        ),
    )
    timing = forms.ChoiceField(label=gettext_lazy("Billing"), choices=TIMINGS)

    def schedule(self) -> dict[str, Any]:
        data = self.cleaned_data
        out: dict[str, Any] = {"timing": data["timing"], "anchor_day": data.get("anchor_day") or 0}
        preset = data["preset"]
        if preset == "custom":
            out["unit"] = data.get("unit") or "month"
            out["interval"] = data.get("interval") or 1
        else:
            freq = PRESETS[preset]
            out["unit"], out["interval"] = freq.unit.value, freq.interval
            if freq.days:
                out["semi_month_days"] = freq.days
        if out["unit"] == "semi_month" and (data.get("semi_day1") or data.get("semi_day2")):
            out["semi_month_days"] = (data.get("semi_day1") or 1, data.get("semi_day2") or 15)
        return out


def _schedule_initial(obj: Plan | Subscription) -> dict[str, Any]:
    preset = "custom"
    freq = subs.frequency_of(obj)
    for name, candidate in PRESETS.items():
        if candidate == freq:
            preset = name
    return {
        "preset": preset,
        "unit": obj.unit,
        "interval": obj.interval,
        "semi_day1": obj.semi_day1,
        "semi_day2": obj.semi_day2,
        "anchor_day": obj.anchor_day,
        "timing": obj.timing,
    }


class PlanForm(ScheduleForm):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    trial_days = forms.IntegerField(
        label=gettext_lazy("Trial days"), min_value=0, max_value=365, required=False
    )
    archived = forms.BooleanField(label=gettext_lazy("Archived"), required=False)


class SettingsForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200, required=False)
    end = forms.ChoiceField(
        label=gettext_lazy("Ends"), choices=_lazy(END_CHOICES), widget=forms.RadioSelect
    )
    max_periods = forms.IntegerField(
        label=gettext_lazy("Number of invoices"), min_value=1, max_value=10_000, required=False
    )
    ends_on = forms.DateField(
        label=gettext_lazy("End date (excluded)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    issue_mode = forms.ChoiceField(label=gettext_lazy("Invoices"), choices=IssueMode.choices)
    proration_mode = forms.ChoiceField(
        label=gettext_lazy("Mid-period changes"), choices=ProrationMode.choices
    )
    auto_pay = forms.ChoiceField(label=gettext_lazy("Automatic payment"), choices=AutoPay.choices)
    send_email = forms.BooleanField(label=gettext_lazy("Send by e-mail"), required=False)
    owner_email = forms.EmailField(
        label=gettext_lazy("Copy to (owner or sales rep)"),
        required=False,
        help_text=gettext_lazy("Also receives renewal and end alerts."),
    )

    def end_values(self, start: dt.date | None = None) -> dict[str, Any]:
        data = self.cleaned_data
        match data["end"]:
            case "count":
                if not data.get("max_periods"):
                    self.add_error("max_periods", _("How many invoices?"))
                return {"max_periods": data.get("max_periods"), "ends_on": None}
            case "date":
                if not data.get("ends_on"):
                    self.add_error("ends_on", _("Which date?"))
                return {"ends_on": data.get("ends_on"), "max_periods": None}
            case "once":
                return {"max_periods": 1, "ends_on": None}
        return {"max_periods": None, "ends_on": None}

    def settings(self) -> dict[str, Any]:
        data = self.cleaned_data
        keys = ("issue_mode", "proration_mode", "auto_pay", "send_email", "owner_email")
        return {k: data[k] for k in keys}


class SubscriptionForm(ScheduleForm, SettingsForm):
    customer = forms.ChoiceField(label=gettext_lazy("Customer"))
    plan = forms.ChoiceField(label=gettext_lazy("Plan"), required=False)
    start_date = forms.DateField(
        label=gettext_lazy("Start date"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    trial_days = forms.IntegerField(
        label=gettext_lazy("Trial days"), min_value=0, max_value=365, required=False
    )

    def __init__(self, ctx: Ctx, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        customers = Customer.objects.filter(organization=ctx.organization).order_by("name")
        customer_field = self.fields["customer"]
        plan_field = self.fields["plan"]
        assert isinstance(customer_field, forms.ChoiceField)
        assert isinstance(plan_field, forms.ChoiceField)
        customer_field.choices = [("", "—")] + [
            (str(c.pk), c.name) for c in customers.only("pk", "name")
        ]
        plan_field.choices = [("", _("— none: the lines below —"))] + [
            (str(p.pk), p.name) for p in selectors.plans(ctx)
        ]


@dataclass
class Row:
    index: int
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def blank(self) -> bool:
        v = self.values
        return not (v["description"] or v["product"] or v["unit_price"] or v["tiers"])


def _blank_row(index: int) -> Row:
    values = dict.fromkeys(ROW_KEYS, "")
    values.update(quantity="1", vat_category="S", vat_rate="20", pricing="fixed")
    return Row(index, values)


def _rows_from_post(data: Any) -> list[Row]:
    indexes = sorted({int(m.group(1)) for key in data if (m := ROW.match(key))})[:200]
    return [
        Row(i, {k: str(data.get(f"lines-{i}-{k}", "")).strip()[:1000] for k in ROW_KEYS})
        for i in indexes
    ]


def _tiers_text(tiers: list[Any]) -> str:
    parts = []
    for up_to, price, flat in tiers:
        text = f"{up_to if up_to is not None else '*'} {price}"
        if flat and Decimal(flat):
            text += f" {flat}"
        parts.append(text)
    return "; ".join(parts)


def _rows_from_lines(lines: Any) -> list[Row]:
    rows = []
    for i, line in enumerate(lines):
        discount: Decimal | None = getattr(line, "discount_percent", None)
        rows.append(
            Row(
                i,
                {
                    "product": str(line.product_id or ""),
                    "description": line.description,
                    "quantity": plain(line.quantity),
                    "unit_price": plain(line.unit_price) if line.unit_price is not None else "",
                    "vat_category": line.vat_category,
                    "vat_rate": plain(line.vat_rate),
                    "discount_percent": plain(discount) if discount else "",
                    "discount_until": line.discount_until.isoformat()
                    if getattr(line, "discount_until", None)
                    else "",
                    "pricing": line.pricing,
                    "metric": line.metric,
                    "tiers": _tiers_text(line.tiers or []),
                },
            )
        )
    return rows


def _parse_tiers(text: str, position: int) -> list[list[str | None]]:
    """« 1000 0.01; * 0.005 2 »: up to (``*``: no bound), unit price, optional flat fee."""
    tiers: list[list[str | None]] = []
    for part in re.split(r"[;\n]", text):
        words = part.split()
        if not words:
            continue
        if len(words) not in (2, 3):
            raise BusinessError(
                "subscription.tier_format",
                gettext_noop(
                    "Line %(position)s: write each tier as « up to, unit price, flat fee », "
                    "e.g. « 1000 0.01; * 0.005 » (* = no upper bound)."
                ),
                field=f"lines.{position}.tiers",
                position=position,
            )
        up_to = None if words[0] in ("*", "∞", "-") else words[0]
        tiers.append([up_to, words[1], words[2] if len(words) == 3 else None])
    return tiers


def _service_lines(rows: list[Row]) -> tuple[list[dict[str, Any]], list[Row]]:
    used = [row for row in rows if not row.blank]
    out: list[dict[str, Any]] = []
    for position, row in enumerate(used, start=1):
        data: dict[str, Any] = {
            k: v for k, v in row.values.items() if v and k not in ("product", "tiers")
        }
        if row.values["product"]:
            try:
                data["product_id"] = uuid.UUID(row.values["product"])
            except ValueError:
                raise BusinessError(
                    "subscription.unknown_product",
                    mark("Line %(position)s: unknown product."),
                    field=f"lines.{position}.product_id",
                    position=position,
                ) from None
        if row.values["tiers"]:
            data["tiers"] = _parse_tiers(row.values["tiers"], position)
        out.append(data)
    return out, used


def _place_line_error(err: BusinessError, used: list[Row]) -> bool:
    return place_line_error(err, used, ROW_KEYS)


def _line_context(ctx: Ctx, rows: list[Row]) -> dict[str, Any]:
    products = selectors_products(ctx)
    return {
        "rows": rows,
        "next_index": max((r.index for r in rows), default=-1) + 1,
        "template_row": _blank_row(0),
        "products": products,
        "categories": VAT_CATEGORY_CHOICES,
        "pricings": Pricing.choices,
    }


def selectors_products(ctx: Ctx) -> list[Any]:
    from facturo.catalog.models import Product

    return list(
        Product.objects.filter(organization=ctx.organization, archived=False)
        .order_by("name")
        .only("pk", "name")
    )


def _handle(form: forms.Form, rows: list[Row] | None, err: BusinessError) -> None:
    if err.http_status == 403:
        raise err
    if rows is not None:
        _used = [row for row in rows if not row.blank]
        if _place_line_error(err, _used):
            return
    aliases = {"semi_month_days": "semi_day1", "lines": "__all__"}
    field_name = aliases.get(err.field or "", err.field or "")
    if field_name in form.fields:
        form.add_error(field_name, message_of(err))
    else:
        form.add_error(None, message_of(err))


@member_view(post=Perm.EDIT_CATALOG)
def plan_edit(request: HttpRequest, ctx: Ctx, pk: uuid.UUID | None = None) -> HttpResponse:
    plan = subs.get_plan(ctx, pk) if pk else None
    initial: dict[str, Any] = {"preset": "monthly", "timing": "advance", "anchor_day": 0}
    if plan is not None:
        initial = {
            **_schedule_initial(plan),
            "name": plan.name,
            "trial_days": plan.trial_days,
            "archived": plan.archived,
        }
    form = PlanForm(request.POST or None, initial=initial)
    if request.method == "POST":
        rows = _rows_from_post(request.POST)
        if "add_line" not in request.POST and form.is_valid():
            try:
                lines, _used = _service_lines(rows)
                data = {**form.schedule(), "trial_days": form.cleaned_data.get("trial_days")}
                if plan is None:
                    plan = subs.create_plan(ctx, form.cleaned_data["name"], lines, **data)
                    messages.success(request, _("Plan created."))
                else:
                    subs.update_plan(
                        ctx,
                        plan.pk,
                        form.cleaned_data["name"],
                        lines,
                        archived=form.cleaned_data.get("archived", False),
                        **data,
                    )
                    messages.success(request, _("Plan saved."))
                return redirect("web:plan_list")
            except NotFound as err:
                if not (err.field or "").startswith("lines."):
                    raise
                _handle(form, rows, err)
            except BusinessError as err:
                _handle(form, rows, err)
    else:
        rows = _rows_from_lines(plan.lines.all()) if plan else [_blank_row(0)]
    if "add_line" in request.POST:
        rows.append(_blank_row(max((r.index for r in rows), default=-1) + 1))
    return page(
        request,
        ctx,
        "web/subscriptions/plan_form.html",
        {"form": form, "plan": plan, **_line_context(ctx, rows)},
    )


@member_view(post=Perm.EDIT_INVOICES)
def subscription_create(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    today = selectors.organization_today(ctx)
    initial = {
        "preset": "monthly",
        "timing": "advance",
        "anchor_day": 0,
        "start_date": today,
        "end": "never",
        "issue_mode": IssueMode.ISSUE,
        "proration_mode": ProrationMode.INVOICE_NOW,
        "auto_pay": AutoPay.NONE,
        "send_email": True,
        "customer": request.GET.get("customer", ""),
    }
    form = SubscriptionForm(ctx, request.POST or None, initial=initial)
    rows = _rows_from_post(request.POST) if request.method == "POST" else [_blank_row(0)]
    if request.method == "POST" and "add_line" not in request.POST and form.is_valid():
        ends = form.end_values()
        if form.is_valid():
            data = form.cleaned_data
            try:
                lines, _used = _service_lines(rows)
                plan_id = data.get("plan") or None
                extra: dict[str, Any] = {**form.settings(), **ends}
                if data.get("name"):
                    extra["name"] = data["name"]
                if data.get("trial_days") is not None:
                    extra["trial_days"] = data["trial_days"]
                if plan_id is None:
                    extra.update(form.schedule())
                else:
                    schedule = form.schedule()
                    extra.update(timing=schedule["timing"], anchor_day=schedule["anchor_day"])
                sub = subs.create_subscription(
                    ctx,
                    data["customer"],
                    start_date=data["start_date"],
                    plan_id=plan_id,
                    lines=lines or None if plan_id else lines,
                    **extra,
                )
            except NotFound as err:
                if err.field not in ("customer_id",) and not (err.field or "").startswith("lines."):
                    raise
                _handle(form, rows, err)
            except BusinessError as err:
                _handle(form, rows, err)
            else:
                messages.success(request, _("Subscription created."))
                return redirect("web:subscription_detail", pk=sub.pk)
    if "add_line" in request.POST:
        rows.append(_blank_row(max((r.index for r in rows), default=-1) + 1))
    return page(
        request,
        ctx,
        "web/subscriptions/subscription_form.html",
        {"form": form, **_line_context(ctx, rows)},
    )


@member_view(post=Perm.EDIT_INVOICES)
def subscription_edit(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    sub = selectors.subscription(ctx, pk)
    end = "never"
    if sub.max_periods == 1:
        end = "once"
    elif sub.max_periods:
        end = "count"
    elif sub.ends_on:
        end = "date"
    initial = {
        "name": sub.name,
        "end": end,
        "max_periods": sub.max_periods,
        "ends_on": sub.ends_on,
        "issue_mode": sub.issue_mode,
        "proration_mode": sub.proration_mode,
        "auto_pay": sub.auto_pay,
        "send_email": sub.send_email,
        "owner_email": sub.owner_email,
    }
    form = SettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        ends = form.end_values()
        if form.is_valid():
            try:
                subs.update_subscription(
                    ctx, sub.pk, name=form.cleaned_data["name"] or sub.name, **form.settings(),
                    **ends,
                )  # fmt: skip
            except BusinessError as err:
                _handle(form, None, err)
            else:
                messages.success(request, _("Subscription saved."))
                return redirect("web:subscription_detail", pk=sub.pk)
    return page(request, ctx, "web/subscriptions/settings_form.html", {"form": form, "sub": sub})


class ChangeForm(forms.Form):
    effective = forms.DateField(
        label=gettext_lazy("Effective from"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


@member_view(post=Perm.EDIT_INVOICES)
def subscription_change(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    """Upgrade, downgrade or change quantities from a date: « Preview » shows the prorated
    adjustment (per VAT rate) and what will happen; « Apply » does it."""
    sub = selectors.subscription(ctx, pk)
    today = selectors.organization_today(ctx)
    form = ChangeForm(request.POST or None, initial={"effective": today})
    result = None
    if request.method == "POST":
        rows = _rows_from_post(request.POST)
        apply = "apply" in request.POST
        if "add_line" not in request.POST and form.is_valid():
            try:
                lines, _used = _service_lines(rows)
                result = subs.change(
                    ctx,
                    sub.pk,
                    lines=lines,
                    effective=form.cleaned_data["effective"],
                    preview=not apply,
                )
            except BusinessError as err:
                if isinstance(err, NotFound) and not (err.field or "").startswith("lines."):
                    raise
                _handle(form, rows, err)
            else:
                if apply:
                    messages.success(request, _("Change applied."))
                    return redirect("web:subscription_detail", pk=sub.pk)
    else:
        rows = _rows_from_lines(subs.versions_at(sub, max(today, sub.start_date)))
        rows = rows or [_blank_row(0)]
    if "add_line" in request.POST:
        rows.append(_blank_row(max((r.index for r in rows), default=-1) + 1))
    preview = None
    if result is not None:
        preview = {
            "result": result,
            "action": dict(CHANGE_ACTIONS).get(result.action, result.action),
            "total": Amount(result.total, sub.currency),
            "adjustments": [
                (a, Amount(a["amount"], sub.currency), plain(a["vat_rate"]))
                for a in result.adjustments
            ],
        }
    return page(
        request,
        ctx,
        "web/subscriptions/change.html",
        {"form": form, "sub": sub, "preview": preview, **_line_context(ctx, rows)},
    )


CHANGE_ACTIONS = [
    ("invoice", gettext_lazy("An invoice for the difference is issued now.")),
    ("credit_note", gettext_lazy("A credit note for the difference is issued now.")),
    ("next_invoice", gettext_lazy("The difference is added to the next invoice.")),
    (
        "invoice_and_credit_note",
        gettext_lazy("Increases are invoiced now and decreases credited now."),
    ),
    (
        "next_invoice_and_credit_note",
        gettext_lazy("Increases go on the next invoice, decreases are credited now."),
    ),
    ("none", gettext_lazy("No adjustment (the period already billed stays as it is).")),
    (
        "in_next_period",
        gettext_lazy("Nothing to adjust: the new lines are billed from the next invoice."),
    ),
]
