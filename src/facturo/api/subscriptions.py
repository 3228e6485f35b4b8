"""/plans, /subscriptions, /billing-runs and /mrr (through the subscriptions services,
selectors and billing run).

Amounts are exact decimals as strings. A product named in a line that does not exist in
your organization is a 404, as any other id of another organization.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from facturo.catalog.models import Product
from facturo.core.errors import NotFound, _
from facturo.core.money import round_money
from facturo.organizations.context import Ctx
from facturo.subscriptions import billing, selectors
from facturo.subscriptions import services as subs
from facturo.subscriptions.models import (
    AutoPay,
    BillingRun,
    IssueMode,
    Plan,
    Pricing,
    ProrationMode,
    Subscription,
    SubscriptionStatus,
    UsageRecord,
)

from .auth import ctx_of
from .products import UnitCode, VatCategoryCode
from .schemas import (
    DecimalOut,
    Input,
    PageMeta,
    PageParams,
    Percent,
    Quantity,
    UnitPrice,
    optional,
    plain,
)

router = Router(tags=["subscriptions"])

UnitName = Literal["day", "week", "month", "year", "semi_month"]
TimingName = Literal["advance", "arrears"]
StatusName = Literal["active", "paused", "cancelled", "ended"]
IssueModeName = Literal["issue", "draft"]
ProrationModeName = Literal["invoice_now", "next_invoice", "none"]
AutoPayName = Literal["none", "sepa", "card"]
PricingName = Literal["fixed", "unit", "tiered", "volume"]
MAX_LINES = 100
assert set(IssueModeName.__args__) == set(IssueMode.values)  # type: ignore[attr-defined]
assert set(ProrationModeName.__args__) == set(ProrationMode.values)  # type: ignore[attr-defined]
assert set(StatusName.__args__) == set(SubscriptionStatus.values)  # type: ignore[attr-defined]
assert set(AutoPayName.__args__) == set(AutoPay.values)  # type: ignore[attr-defined]
assert set(PricingName.__args__) == set(Pricing.values)  # type: ignore[attr-defined]


# --- output ----------------------------------------------------------------------------------


class TierOut(Schema):
    up_to: DecimalOut | None = Field(description="Inclusive upper bound; null: no bound.")
    unit_price: DecimalOut
    flat_fee: DecimalOut


class PlanLineOut(Schema):
    position: int
    product_id: uuid.UUID | None
    description: str
    quantity: DecimalOut
    unit_price: DecimalOut | None = Field(
        description="Null: the product's catalog price at billing time."
    )
    unit_code: str
    vat_category: str
    vat_rate: DecimalOut
    pricing: str = Field(description="fixed, or metered: unit, tiered, volume.")
    metric: str = Field(description="The usage a metered line bills (usage records' metric).")
    tiers: list[TierOut]


class SubscriptionLineOut(PlanLineOut):
    discount_percent: DecimalOut
    discount_until: dt.date | None
    starts_on: dt.date | None = Field(description="The version applies from this day…")
    ends_on: dt.date | None = Field(description="…until this day (excluded); null: open.")


class ScheduleOut(Schema):
    unit: str
    interval: int
    semi_month_days: list[int] | None
    timing: str
    anchor_day: int


class PlanOut(ScheduleOut):
    id: uuid.UUID
    name: str
    currency: str
    trial_days: int
    archived: bool
    lines: list[PlanLineOut]
    created_at: dt.datetime


class PlanPage(PageMeta):
    items: list[PlanOut]


class SubscriptionOut(ScheduleOut):
    id: uuid.UUID
    name: str
    status: str
    customer_id: uuid.UUID
    customer_name: str
    plan_id: uuid.UUID | None
    currency: str
    start_date: dt.date
    trial_end: dt.date | None
    ends_on: dt.date | None = Field(description="Exclusive: the last period ends the day before.")
    max_periods: int | None
    pauses: list[list[dt.date | None]]
    issue_mode: str
    proration_mode: str
    send_email: bool
    owner_email: str
    auto_pay: str = Field(description="none, sepa (direct debit) or card (Stripe).")
    last_period_start: dt.date | None
    last_period_end: dt.date | None
    next_invoice_date: dt.date | None = Field(description="Null: nothing more to bill.")
    periods_billed: int
    cancelled_at: dt.date | None
    monthly_amount: DecimalOut = Field(
        description="The subscription's share of MRR today (excl. VAT, rounded)."
    )
    lines: list[SubscriptionLineOut]
    created_at: dt.datetime


class SubscriptionPage(PageMeta):
    items: list[SubscriptionOut]


class PeriodOut(Schema):
    period_start: dt.date
    period_end: dt.date = Field(description="Exclusive.")
    index: int
    status: str
    invoice_id: uuid.UUID | None
    invoice_number: str | None
    error_code: str
    error: str
    run_id: uuid.UUID | None


class PeriodPage(PageMeta):
    items: list[PeriodOut]


class AdjustmentOut(Schema):
    vat_category: str
    vat_rate: DecimalOut
    amount: DecimalOut


class ChangeOut(Schema):
    effective: dt.date
    period_start: dt.date | None = Field(description="The period already billed, if any.")
    period_end: dt.date | None
    adjustments: list[AdjustmentOut] = Field(description="Per VAT rate, excl. VAT.")
    total: DecimalOut
    action: Literal[
        "invoice",
        "credit_note",
        "next_invoice",
        "invoice_and_credit_note",
        "next_invoice_and_credit_note",
        "none",
        "in_next_period",
    ]


class UsageOut(Schema):
    id: int
    subscription_id: uuid.UUID
    client_id: str
    quantity: DecimalOut
    occurred_on: dt.date
    metric: str
    created_at: dt.datetime
    created: bool = Field(description="False: this client id was already recorded.")


class RunErrorOut(Schema):
    subscription: str
    period_start: str
    error: str


class BillingRunOut(Schema):
    id: uuid.UUID
    run_date: dt.date
    dry_run: bool
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_seconds: DecimalOut | None
    issued: int
    drafts: int
    skipped: int
    failed: int
    caught_up: int = Field(description="Periods that were due before the run date.")
    errors: list[RunErrorOut]


class BillingRunPage(PageMeta):
    items: list[BillingRunOut]


class PlannedOut(Schema):
    subscription_id: uuid.UUID
    period_start: dt.date
    period_end: dt.date
    total_incl_vat: DecimalOut | None
    caught_up: bool


class BillingPreviewOut(Schema):
    dry_run: Literal[True] = True
    run_date: dt.date
    planned: int = Field(description="Invoices a real run on this date would create.")
    caught_up: int
    periods: list[PlannedOut]


class CurrencyAmount(Schema):
    currency: str
    amount: DecimalOut


class MonthOut(Schema):
    month: str = Field(description="YYYY-MM")
    invoices: int
    amounts: list[CurrencyAmount] = Field(description="Excl. VAT, per currency.")


class MrrOut(Schema):
    date: dt.date
    currency: str
    mrr: DecimalOut = Field(description="Monthly recurring revenue excl. VAT, rounded once.")
    arr: DecimalOut
    count: int = Field(description="Subscriptions counted in the MRR (every currency).")
    other_currencies: list[CurrencyAmount] = Field(
        description="MRR of subscriptions billed in other currencies (not converted)."
    )
    active: int
    not_started: int = Field(description="Active, but in trial or starting later.")
    paused: int
    churned_this_month: int
    churned_mrr: list[CurrencyAmount]
    expected: list[MonthOut] = Field(description="This month and the next two.")


def _line_out(line: Any) -> dict[str, Any]:
    return {
        "position": line.position,
        "product_id": line.product_id,
        "description": line.description,
        "quantity": plain(line.quantity),
        "unit_price": plain(line.unit_price, 2),
        "unit_code": line.unit_code,
        "vat_category": line.vat_category,
        "vat_rate": plain(line.vat_rate),
        "pricing": line.pricing,
        "metric": line.metric,
        "tiers": [
            {"up_to": t[0], "unit_price": t[1], "flat_fee": t[2]} for t in (line.tiers or [])
        ],
    }


def _schedule_out(obj: Plan | Subscription) -> dict[str, Any]:
    days = [obj.semi_day1, obj.semi_day2] if obj.unit == "semi_month" else None
    return {"unit": obj.unit, "interval": obj.interval, "semi_month_days": days,
            "timing": obj.timing, "anchor_day": obj.anchor_day}  # fmt: skip


def plan_out(plan: Plan) -> dict[str, Any]:
    return {
        **_schedule_out(plan), "id": plan.id, "name": plan.name, "currency": plan.currency,
        "trial_days": plan.trial_days, "archived": plan.archived,
        "lines": [_line_out(line) for line in plan.lines.all()], "created_at": plan.created_at,
    }  # fmt: skip


def subscription_out(sub: Subscription, today: dt.date) -> dict[str, Any]:
    lines = list(sub.lines.all())
    return {
        **_schedule_out(sub),
        **{k: getattr(sub, k) for k in (
            "id", "name", "status", "customer_id", "plan_id", "currency", "start_date",
            "trial_end", "ends_on", "max_periods", "issue_mode", "proration_mode", "send_email",
            "owner_email", "auto_pay", "last_period_start", "last_period_end", "next_invoice_date",
            "periods_billed", "cancelled_at", "created_at")},
        "customer_name": sub.customer.name,
        "pauses": [[dt.date.fromisoformat(a), dt.date.fromisoformat(b) if b else None]
                   for a, b in sub.pauses],
        "monthly_amount": str(selectors.monthly_amount(sub, today)),
        "lines": [{**_line_out(line), "discount_percent": plain(line.discount_percent),
                   "discount_until": line.discount_until, "starts_on": line.starts_on,
                   "ends_on": line.ends_on} for line in lines],
    }  # fmt: skip


def run_out(run: BillingRun) -> dict[str, Any]:
    duration = None
    if run.finished_at is not None:
        delta = run.finished_at - run.started_at
        micro = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        duration = str(Decimal(micro).scaleb(-6).quantize(Decimal("0.001")))
    return {
        **{k: getattr(run, k) for k in (
            "id", "run_date", "dry_run", "status", "started_at", "finished_at", "issued",
            "drafts", "skipped", "failed", "caught_up")},
        "duration_seconds": duration,
        "errors": [{"subscription": str(e.get("subscription", "")),
                    "period_start": str(e.get("period_start", "")),
                    "error": str(e.get("error", ""))} for e in run.errors],
    }  # fmt: skip


def _amounts(values: dict[str, Decimal]) -> list[dict[str, str]]:
    return [{"currency": c, "amount": str(a)} for c, a in values.items()]


# --- input -----------------------------------------------------------------------------------


class TierIn(Input):
    up_to: Quantity | None = Field(None, description="Inclusive upper bound; null: no bound.")
    unit_price: UnitPrice
    flat_fee: UnitPrice = optional(description="Added once when the tier is reached.")


class PlanLineIn(Input):
    """A line; with ``product_id``, omitted fields come from the product, and without
    ``unit_price`` the product's catalog price applies at each billing."""

    product_id: uuid.UUID | None = None
    description: str = optional(max_length=500)
    quantity: Quantity = optional(description="Default 1.")
    unit_code: UnitCode = optional()
    unit_price: UnitPrice = optional(description="Unit price excluding VAT.")
    vat_category: VatCategoryCode = optional()
    vat_rate: Percent = optional(description="Percent, e.g. 20 or 5.5. Default 20.")
    pricing: PricingName = optional(
        description="fixed (default): quantity × price each period; unit, tiered, volume: "
        "metered, the usage recorded is billed in arrears."
    )
    metric: str = optional(max_length=50, description="Metered: the usage's metric name.")
    tiers: list[TierIn] = optional(
        max_length=20, description="Tiered / volume: tiers in order, the last without up_to."
    )


class SubscriptionLineIn(PlanLineIn):
    discount_percent: Percent = optional()
    discount_until: dt.date = optional(description="The discount applies to periods starting "
                                                   "before this day.")  # fmt: skip


class ScheduleIn(Input):
    unit: UnitName = optional(description="Default month.")
    interval: int = optional(ge=1, le=366, description="Every N units. Default 1.")
    semi_month_days: list[int] = optional(min_length=2, max_length=2,
                                          description="Twice a month: the two days (first "
                                                      "≤ 27). Default [1, 15].")  # fmt: skip
    timing: TimingName = optional(description="In advance (default) or in arrears.")
    anchor_day: int = optional(
        ge=0, le=31, description="0: the start date; 1–31: that day of the month (31 = month end)."
    )


class PlanIn(ScheduleIn):
    name: str = Field(max_length=200)
    currency: str = optional(max_length=3, description="Default: the organization's.")
    trial_days: int = optional(ge=0, le=365)
    lines: list[PlanLineIn] = Field(min_length=1, max_length=MAX_LINES)


class SubscriptionIn(ScheduleIn):
    customer_id: uuid.UUID
    plan_id: uuid.UUID | None = Field(None, description="Its lines and schedule are copied.")
    start_date: dt.date
    name: str = optional(max_length=200)
    lines: list[SubscriptionLineIn] = optional(
        max_length=MAX_LINES, description="Required without a plan; replaces the plan's lines."
    )
    trial_days: int = optional(ge=0, le=365)
    ends_on: dt.date = optional(description="Exclusive end date.")
    max_periods: int = optional(ge=1, le=10_000, description="End after N invoices.")
    issue_mode: IssueModeName = optional()
    proration_mode: ProrationModeName = optional()
    send_email: bool = optional()
    owner_email: str = optional(max_length=254, description="Sales rep copied on invoices.")
    auto_pay: AutoPayName = optional(
        description="Collect each issued invoice automatically: none (default), sepa, card."
    )


class SubscriptionPatch(Input):
    name: str = optional(max_length=200)
    ends_on: dt.date | None = optional(description="Exclusive end date; null: never.")
    max_periods: int | None = optional(ge=1, le=10_000, description="Null: no limit.")
    issue_mode: IssueModeName = optional()
    proration_mode: ProrationModeName = optional()
    send_email: bool = optional()
    owner_email: str = optional(max_length=254)
    auto_pay: AutoPayName = optional()


class DayIn(Input):
    on: dt.date | None = Field(None, description="Default: today.")


class CancelIn(Input):
    at_period_end: bool = Field(True, description="False: immediately (credits unused days).")
    on: dt.date | None = Field(None, description="Default: today.")


class ChangeIn(Input):
    effective: dt.date
    lines: list[SubscriptionLineIn] = Field(min_length=1, max_length=MAX_LINES)


class UsageIn(Input):
    client_id: str = Field(min_length=1, max_length=100, description="Your id: idempotency.")
    quantity: Quantity
    occurred_on: dt.date
    metric: str = optional(max_length=50, description="The metered line's metric, if named.")


class BillingRunIn(Input):
    date: dt.date | None = Field(None, description="Default: today.")
    dry_run: bool = Field(False, description="Preview what a run would invoice; writes nothing.")


class PlanFilters(PageParams):
    search: str = Field("", max_length=200)
    include_archived: bool = False


class SubscriptionFilters(PageParams):
    status: StatusName | None = None
    customer_id: uuid.UUID | None = None
    plan_id: uuid.UUID | None = None
    search: str = Field("", max_length=200, description="Name or customer name.")


class MrrParams(Input):
    date: dt.date | None = Field(None, description="Default: today.")


def _lines(ctx: Ctx, lines: list[Any] | None) -> list[dict[str, Any]] | None:
    """The lines as the service takes them; an unknown product id is a 404 (it may be
    another organization's: it does not exist for you)."""
    if lines is None:
        return None
    result = [line.model_dump(exclude_unset=True) for line in lines]
    wanted = {line["product_id"] for line in result if line.get("product_id")}
    known = set(Product.objects.filter(organization=ctx.organization, pk__in=wanted)
                .values_list("pk", flat=True))  # fmt: skip
    for position, line in enumerate(result, start=1):
        if line.get("product_id") and line["product_id"] not in known:
            raise NotFound("product.not_found", _("Line %(position)s: unknown product."),
                           field=f"lines.{position}.product_id", position=position)  # fmt: skip
    return result


def _sent(payload: Schema, *exclude: str) -> dict[str, Any]:
    return {k: v for k, v in payload.model_dump(exclude_unset=True).items() if k not in exclude}


def _page(qs: Any, filters: PageParams, render: Any) -> dict[str, Any]:
    items = qs[filters.offset : filters.offset + filters.limit]
    return {"count": qs.count(), "limit": filters.limit, "offset": filters.offset,
            "items": [render(item) for item in items]}  # fmt: skip


def _subscription(ctx: Ctx, pk: Any) -> dict[str, Any]:
    sub = selectors.subscription(ctx, pk)
    return subscription_out(sub, selectors.organization_today(ctx))


# --- plans -----------------------------------------------------------------------------------


@router.get("/plans", response=PlanPage, summary="List plans")
def list_plans(request: HttpRequest, filters: Query[PlanFilters]) -> dict[str, Any]:
    qs = selectors.plans(ctx_of(request), include_archived=filters.include_archived,
                         search=filters.search)  # fmt: skip
    return _page(qs, filters, plan_out)


@router.post("/plans", response={201: PlanOut}, summary="Create a plan")
def create_plan(request: HttpRequest, payload: PlanIn) -> Status:
    ctx = ctx_of(request)
    lines = _lines(ctx, payload.lines) or []
    plan = subs.create_plan(ctx, payload.name, lines, **_sent(payload, "name", "lines"))
    return Status(201, plan_out(selectors.plans(ctx, include_archived=True).get(pk=plan.pk)))


@router.get("/plans/{plan_id}", response=PlanOut, summary="Get a plan")
def get_plan(request: HttpRequest, plan_id: uuid.UUID) -> dict[str, Any]:
    return plan_out(subs.get_plan(ctx_of(request), plan_id))


# --- subscriptions ---------------------------------------------------------------------------


@router.get("/subscriptions", response=SubscriptionPage, summary="List subscriptions")
def list_subscriptions(request: HttpRequest,
                       filters: Query[SubscriptionFilters]) -> dict[str, Any]:  # fmt: skip
    ctx = ctx_of(request)
    qs = selectors.subscriptions(ctx, status=filters.status or "", customer_id=filters.customer_id,
                                 plan_id=filters.plan_id, search=filters.search)  # fmt: skip
    today = selectors.organization_today(ctx)
    return _page(qs, filters,
                 lambda sub: subscription_out(sub, today))  # fmt: skip


@router.post("/subscriptions", response={201: SubscriptionOut},
             summary="Create a subscription (to a plan, or with its own lines)")  # fmt: skip
def create_subscription(request: HttpRequest, payload: SubscriptionIn) -> Status:
    ctx = ctx_of(request)
    data = _sent(payload, "customer_id", "plan_id", "start_date", "lines")
    sub = subs.create_subscription(ctx, payload.customer_id, start_date=payload.start_date,
                                   plan_id=payload.plan_id,
                                   lines=_lines(ctx, payload.lines if "lines" in
                                                payload.model_fields_set else None),
                                   **data)  # fmt: skip
    return Status(201, _subscription(ctx, sub.pk))


@router.get("/subscriptions/{subscription_id}", response=SubscriptionOut,
            summary="Get a subscription")  # fmt: skip
def get_subscription(request: HttpRequest, subscription_id: uuid.UUID) -> dict[str, Any]:
    return _subscription(ctx_of(request), subscription_id)


@router.patch("/subscriptions/{subscription_id}", response=SubscriptionOut,
              summary="Change a subscription's name, settings or end")  # fmt: skip
def update_subscription(request: HttpRequest, subscription_id: uuid.UUID,
                        payload: SubscriptionPatch) -> dict[str, Any]:  # fmt: skip
    ctx = ctx_of(request)
    subs.update_subscription(ctx, subscription_id, **payload.model_dump(exclude_unset=True))
    return _subscription(ctx, subscription_id)


@router.get("/subscriptions/{subscription_id}/periods", response=PeriodPage,
            summary="Billed (and failed) periods of a subscription, latest first")  # fmt: skip
def list_periods(request: HttpRequest, subscription_id: uuid.UUID,
                 filters: Query[PageParams]) -> dict[str, Any]:  # fmt: skip
    ctx = ctx_of(request)
    sub = selectors.subscription(ctx, subscription_id)

    def render(p: Any) -> dict[str, Any]:
        return {"period_start": p.period_start, "period_end": p.period_end, "index": p.index,
                "status": p.status, "invoice_id": p.invoice_id,
                "invoice_number": p.invoice.number if p.invoice else None,
                "error_code": p.error_code, "error": p.error, "run_id": p.run_id}  # fmt: skip

    return _page(selectors.billed_periods(ctx, sub), filters, render)


@router.post("/subscriptions/{subscription_id}/pause", response=SubscriptionOut,
             summary="Pause: periods starting during the pause are not billed")  # fmt: skip
def pause(request: HttpRequest, subscription_id: uuid.UUID, payload: DayIn) -> dict[str, Any]:
    ctx = ctx_of(request)
    subs.pause(ctx, subscription_id, on=payload.on or selectors.organization_today(ctx))
    return _subscription(ctx, subscription_id)


@router.post("/subscriptions/{subscription_id}/resume", response=SubscriptionOut,
             summary="Resume a paused subscription")  # fmt: skip
def resume(request: HttpRequest, subscription_id: uuid.UUID, payload: DayIn) -> dict[str, Any]:
    ctx = ctx_of(request)
    subs.resume(ctx, subscription_id, on=payload.on or selectors.organization_today(ctx))
    return _subscription(ctx, subscription_id)


@router.post("/subscriptions/{subscription_id}/cancel", response=SubscriptionOut,
             summary="Cancel at period end, or immediately (pro rata credit note)")  # fmt: skip
def cancel(request: HttpRequest, subscription_id: uuid.UUID,
           payload: CancelIn) -> dict[str, Any]:  # fmt: skip
    ctx = ctx_of(request)
    subs.cancel(ctx, subscription_id, at_period_end=payload.at_period_end, on=payload.on)
    return _subscription(ctx, subscription_id)


def _change(request: HttpRequest, subscription_id: uuid.UUID, payload: ChangeIn,
            preview: bool) -> dict[str, Any]:  # fmt: skip
    ctx = ctx_of(request)
    selectors.subscription(ctx, subscription_id)  # 404 before the lines are looked at
    result = subs.change(ctx, subscription_id, lines=_lines(ctx, payload.lines) or [],
                         effective=payload.effective, preview=preview)  # fmt: skip
    return {
        "effective": result.effective, "period_start": result.period_start,
        "period_end": result.period_end, "total": str(result.total), "action": result.action,
        "adjustments": [{"vat_category": a["vat_category"], "vat_rate": plain(a["vat_rate"]),
                         "amount": str(a["amount"])} for a in result.adjustments],
    }  # fmt: skip


@router.post("/subscriptions/{subscription_id}/change-preview", response=ChangeOut,
             summary="Preview a change of lines and its proration (writes nothing)")  # fmt: skip
def change_preview(request: HttpRequest, subscription_id: uuid.UUID,
                   payload: ChangeIn) -> dict[str, Any]:  # fmt: skip
    return _change(request, subscription_id, payload, preview=True)


@router.post("/subscriptions/{subscription_id}/change", response=ChangeOut,
             summary="Change the lines from a date (upgrade, downgrade, quantity)")  # fmt: skip
def change(request: HttpRequest, subscription_id: uuid.UUID,
           payload: ChangeIn) -> dict[str, Any]:  # fmt: skip
    return _change(request, subscription_id, payload, preview=False)


@router.post("/subscriptions/{subscription_id}/usage", response={200: UsageOut, 201: UsageOut},
             summary="Record metered usage (idempotent by client_id)")  # fmt: skip
def record_usage(request: HttpRequest, subscription_id: uuid.UUID, payload: UsageIn) -> Status:
    record: UsageRecord
    record, created = subs.record_usage(ctx_of(request), subscription_id,
                                        client_id=payload.client_id, quantity=payload.quantity,
                                        occurred_on=payload.occurred_on,
                                        metric=payload.metric or "")  # fmt: skip
    body = {"id": record.pk, "subscription_id": record.subscription_id,
            "client_id": record.client_id, "quantity": plain(record.quantity),
            "occurred_on": record.occurred_on, "metric": record.metric,
            "created_at": record.created_at,
            "created": created}  # fmt: skip
    return Status(201 if created else 200, body)


# --- billing runs ----------------------------------------------------------------------------


@router.get("/billing-runs", response=BillingRunPage, summary="List billing runs")
def list_runs(request: HttpRequest, filters: Query[PageParams]) -> dict[str, Any]:
    return _page(selectors.billing_runs(ctx_of(request)), filters, run_out)


@router.get("/billing-runs/{run_id}", response=BillingRunOut, summary="Get a billing run")
def get_run(request: HttpRequest, run_id: uuid.UUID) -> dict[str, Any]:
    return run_out(selectors.billing_run(ctx_of(request), run_id))


@router.post("/billing-runs", response={200: BillingPreviewOut, 201: BillingRunOut},
             summary="Run billing for your organization on a date (or preview it: dry_run)",
             description="Bills every due period (catch-up included) now, in this request; "
                         "safe to repeat: a period is never billed twice.")  # fmt: skip
def start_run(request: HttpRequest, payload: BillingRunIn) -> Status:
    ctx = ctx_of(request)
    day = payload.date or selectors.organization_today(ctx)
    if payload.dry_run:
        summary = billing.preview_for(ctx, day)
        return Status(200, {
            "dry_run": True, "run_date": day, "planned": summary.planned,
            "caught_up": summary.caught_up,
            "periods": [{"subscription_id": o.subscription_id, "period_start": o.period_start,
                         "period_end": o.period_end, "caught_up": o.caught_up,
                         "total_incl_vat": None if o.total is None else str(o.total)}
                        for o in summary.outcomes],
        })  # fmt: skip
    return Status(201, run_out(billing.run_for(ctx, day)))


# --- MRR -------------------------------------------------------------------------------------


@router.get("/mrr", response=MrrOut,
            summary="MRR, active subscriptions, churn, expected invoicing")  # fmt: skip
def get_mrr(request: HttpRequest, params: Query[MrrParams]) -> dict[str, Any]:
    ctx = ctx_of(request)
    view = selectors.mrr_view(ctx, params.date or selectors.organization_today(ctx))
    return {
        "date": view.today, "currency": view.currency, "mrr": str(view.mrr),
        "arr": str(round_money(view.arr, view.currency)), "count": view.counted,
        "other_currencies": _amounts(view.other_currencies), "active": view.active,
        "not_started": view.not_started, "paused": view.paused,
        "churned_this_month": view.churned_this_month,
        "churned_mrr": _amounts(view.churned_mrr),
        "expected": [{"month": f"{m.start:%Y-%m}", "invoices": m.invoices,
                      "amounts": _amounts(m.amounts)} for m in view.forecast],
    }  # fmt: skip
