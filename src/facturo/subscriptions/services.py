"""Plans and subscriptions: create, pause, resume, cancel, change (with proration).

Every write owns its transaction and records an audit event. Billing itself (the run that
turns due periods into invoices) lives in :mod:`facturo.subscriptions.billing`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError

from facturo.audit import services as audit
from facturo.catalog.models import Product
from facturo.catalog.services import as_decimal
from facturo.core import proration
from facturo.core.errors import BusinessError, ConflictError, NotFound, _
from facturo.core.money import ZERO, check_currency
from facturo.core.recurrence import Frequency, Rule, Schedule, Timing, Unit
from facturo.core.tax import VatCategory
from facturo.core.text import clean_text
from facturo.core.totals import LineInput, compute_totals, line_amounts
from facturo.customers.models import Customer
from facturo.foundation.db import atomic
from facturo.invoicing import services as invoicing
from facturo.organizations.context import Ctx, Perm

from .models import (
    IssueMode,
    PendingCharge,
    Plan,
    PlanLine,
    ProrationMode,
    Subscription,
    SubscriptionLine,
    SubscriptionStatus,
    UsageRecord,
)

LINE_KEYS = (
    "product_id",
    "description",
    "quantity",
    "unit_price",
    "unit_code",
    "vat_category",
    "vat_rate",
)


# --- schedules -----------------------------------------------------------------------------


def frequency_of(obj: Plan | Subscription) -> Frequency:
    days = (obj.semi_day1, obj.semi_day2) if obj.unit == Unit.SEMI_MONTH else None
    return Frequency(Unit(obj.unit), obj.interval, days)  # type: ignore[arg-type]


def billing_start(sub: Subscription) -> dt.date:
    return sub.trial_end or sub.start_date


def rule_of(sub: Subscription) -> Rule:
    start = billing_start(sub)
    freq = frequency_of(sub)
    day = sub.anchor_day
    if day and freq.unit in (Unit.MONTH, Unit.YEAR):
        # the first boundary on or after the start that falls on the anchor day
        from facturo.core.recurrence import clamp_day

        anchor = clamp_day(start.year, start.month, day)
        if anchor < start:
            y, m = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
            anchor = clamp_day(y, m, day)
        return Rule(freq, anchor, day)
    if day and freq.unit in (Unit.WEEK, Unit.DAY):
        # day 1–7: weekday (1 = Monday) of the boundaries
        anchor = start + dt.timedelta(days=(day - 1 - start.weekday()) % 7)
        return Rule(freq, anchor)
    return Rule(freq, start)


def schedule_of(sub: Subscription) -> Schedule:
    pauses = [
        (dt.date.fromisoformat(a), dt.date.fromisoformat(b) if b else None) for a, b in sub.pauses
    ]
    return Schedule(
        rule_of(sub),
        billing_start(sub),
        Timing(sub.timing),
        ends_on=sub.ends_on,
        max_periods=sub.max_periods,
        pauses=pauses,
    )


def refresh_next_invoice_date(sub: Subscription) -> None:
    """Where the next run picks this subscription up (NULL: nothing more to bill)."""
    nxt = schedule_of(sub).next_period(sub.last_period_start)
    sub.next_invoice_date = nxt.invoice_date if nxt else None
    if nxt is None and sub.status == SubscriptionStatus.ACTIVE and sub.last_period_start:
        sub.status = SubscriptionStatus.ENDED


# --- reading -------------------------------------------------------------------------------


def _get(model: Any, ctx: Ctx, pk: Any, code: str, *, for_update: bool = False) -> Any:
    ctx.require(Perm.VIEW)
    qs = model.objects.filter(organization=ctx.organization)
    if for_update:
        qs = qs.select_for_update()
    try:
        return qs.get(pk=pk)
    except (model.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFound(f"{code}.not_found", _("Not found.")) from None


def get_plan(ctx: Ctx, pk: Any) -> Plan:
    plan: Plan = _get(Plan, ctx, pk, "plan")
    return plan


def get_subscription(ctx: Ctx, pk: Any, *, for_update: bool = False) -> Subscription:
    sub: Subscription = _get(Subscription, ctx, pk, "subscription", for_update=for_update)
    return sub


# --- input cleaning ------------------------------------------------------------------------


def _clean_schedule(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    unit = str(data.get("unit") or Unit.MONTH.value)
    try:
        Unit(unit)
    except ValueError:
        raise BusinessError(
            "recurrence.invalid_unit", _("Unknown frequency."), field="unit"
        ) from None
    out["unit"] = unit
    out["interval"] = int(data.get("interval") or 1)
    days = data.get("semi_month_days")
    if unit == Unit.SEMI_MONTH:
        days = tuple(days or (1, 15))
        if len(days) != 2:
            raise BusinessError(
                "recurrence.semi_month_days",
                _("Twice a month needs two days of the month."),
                field="semi_month_days",
            )
        out["semi_day1"], out["semi_day2"] = int(days[0]), int(days[1])
    Frequency(
        Unit(unit),
        out["interval"],
        (out["semi_day1"], out["semi_day2"]) if unit == Unit.SEMI_MONTH else None,
    )
    timing = str(data.get("timing") or Timing.ADVANCE.value)
    if timing not in (t.value for t in Timing):
        raise BusinessError(
            "recurrence.invalid_timing", _("Billing is in advance or in arrears."), field="timing"
        )
    out["timing"] = timing
    anchor_day = int(data.get("anchor_day") or 0)
    if not 0 <= anchor_day <= 31:
        raise BusinessError(
            "recurrence.invalid_anchor", _("The anchor day is 0 to 31."), field="anchor_day"
        )
    out["anchor_day"] = anchor_day
    return out


def _clean_lines(ctx: Ctx, lines: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for position, raw in enumerate(lines, start=1):
        data = dict(raw)
        product = None
        if data.get("product_id"):
            product = Product.objects.filter(
                organization=ctx.organization, pk=data["product_id"]
            ).first()
            if product is None:
                raise BusinessError(
                    "subscription.unknown_product",
                    _("Line %(position)s: unknown product."),
                    field=f"lines.{position}.product_id",
                    position=position,
                )
        description = clean_text(
            data.get("description") or (product.name if product else ""),
            f"lines.{position}.description",
            max_length=500,
        )
        if not description:
            raise BusinessError(
                "subscription.line_description_required",
                _("Line %(position)s: a description is required."),
                field=f"lines.{position}.description",
                position=position,
            )
        price = data.get("unit_price")
        if price in (None, "") and product is None:
            raise BusinessError(
                "subscription.line_price_required",
                _("Line %(position)s: a price is required without a product."),
                field=f"lines.{position}.unit_price",
                position=position,
            )
        line: dict[str, Any] = {
            "position": position,
            "product": product,
            "description": description,
            "quantity": as_decimal(data.get("quantity", "1"), f"lines.{position}.quantity"),
            "unit_price": None
            if price in (None, "")
            else as_decimal(price, f"lines.{position}.unit_price"),
            "unit_code": str(data.get("unit_code") or (product.unit_code if product else "C62")),
            "vat_category": str(
                data.get("vat_category") or (product.vat_category if product else "S")
            ),
            "vat_rate": as_decimal(
                data.get("vat_rate", product.vat_rate if product else "20"),
                f"lines.{position}.vat_rate",
            ),
            "discount_percent": as_decimal(
                data.get("discount_percent") or "0", f"lines.{position}.discount_percent"
            ),
            "discount_until": _date(data.get("discount_until"), f"lines.{position}.discount_until"),
        }
        if line["quantity"] < 0 or (line["unit_price"] is not None and line["unit_price"] < 0):
            raise BusinessError(
                "subscription.negative_line",
                _("Line %(position)s: quantities and prices cannot be negative."),
                field=f"lines.{position}",
                position=position,
            )
        result.append(line)
    if not result:
        raise BusinessError("subscription.no_lines", _("Add at least one line."), field="lines")
    return result


def _date(value: Any, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise BusinessError(
            "input.invalid_date",
            _("“%(value)s” is not a date (YYYY-MM-DD)."),
            field=name,
            value=value,
        ) from None


# --- plans ---------------------------------------------------------------------------------


def create_plan(ctx: Ctx, name: str, lines: Iterable[Mapping[str, Any]], **data: Any) -> Plan:
    ctx.require(Perm.EDIT_CATALOG)
    name = clean_text(name, "name", max_length=200)
    if not name:
        raise BusinessError("plan.name_required", _("A name is required."), field="name")
    schedule = _clean_schedule(data)
    clean = _clean_lines(ctx, lines)
    currency = check_currency(str(data.get("currency") or ctx.organization.currency).upper())
    trial_days = int(data.get("trial_days") or 0)
    if not 0 <= trial_days <= 365:
        raise BusinessError(
            "plan.invalid_trial", _("A trial lasts 0 to 365 days."), field="trial_days"
        )
    with atomic():
        plan = Plan.objects.create(
            organization=ctx.organization,
            name=name,
            currency=currency,
            trial_days=trial_days,
            **schedule,
        )
        PlanLine.objects.bulk_create(
            PlanLine(plan=plan, **{k: v for k, v in line.items() if not k.startswith("discount")})
            for line in clean
        )
        audit.record(
            ctx.organization.id, ctx.actor, "plan.created", plan, after={"name": name, **schedule}
        )
    return plan


# --- subscriptions -------------------------------------------------------------------------


def create_subscription(
    ctx: Ctx,
    customer_id: Any,
    *,
    start_date: dt.date | str,
    plan_id: Any = None,
    lines: Iterable[Mapping[str, Any]] | None = None,
    **data: Any,
) -> Subscription:
    """A subscription to a plan (its lines and schedule) or with its own lines and schedule
    (a « recurring invoice without plan »)."""
    ctx.require(Perm.EDIT_INVOICES)
    customer = Customer.objects.filter(organization=ctx.organization, pk=customer_id).first()
    if customer is None:
        raise NotFound("customer.not_found", _("No such customer."), field="customer_id")
    start = _date(start_date, "start_date")
    assert start is not None
    plan = get_plan(ctx, plan_id) if plan_id else None
    if plan is not None:
        schedule = {
            "unit": plan.unit,
            "interval": plan.interval,
            "semi_day1": plan.semi_day1,
            "semi_day2": plan.semi_day2,
            "timing": plan.timing,
            "anchor_day": plan.anchor_day,
        }
        overrides: dict[str, Any] = {k: data[k] for k in ("timing", "anchor_day") if k in data}
        schedule.update(_clean_schedule({**_schedule_input(plan), **overrides}))
        clean = (
            _clean_lines(ctx, lines)
            if lines is not None
            else [
                {
                    "position": pl.position,
                    "product": pl.product,
                    "description": pl.description,
                    "quantity": pl.quantity,
                    "unit_price": pl.unit_price,
                    "unit_code": pl.unit_code,
                    "vat_category": pl.vat_category,
                    "vat_rate": pl.vat_rate,
                    "discount_percent": ZERO,
                    "discount_until": None,
                }
                for pl in plan.lines.all()
            ]
        )
        trial_days = int(data.get("trial_days", plan.trial_days) or 0)
        currency = plan.currency
        name = data.get("name") or plan.name
    else:
        schedule = _clean_schedule(data)
        clean = _clean_lines(ctx, lines or [])
        trial_days = int(data.get("trial_days") or 0)
        currency = customer.currency
        name = data.get("name") or clean[0]["description"]
    ends_on = _date(data.get("ends_on"), "ends_on")
    max_periods = data.get("max_periods")
    trial_end = start + dt.timedelta(days=trial_days) if trial_days else None
    if ends_on is not None and ends_on <= (trial_end or start):
        raise BusinessError(
            "recurrence.end_before_start",
            _("The end date must come after the start date."),
            field="ends_on",
        )
    issue_mode = str(data.get("issue_mode") or IssueMode.ISSUE)
    proration_mode = str(data.get("proration_mode") or ProrationMode.INVOICE_NOW)
    if issue_mode not in IssueMode.values or proration_mode not in ProrationMode.values:
        raise BusinessError(
            "subscription.invalid_setting",
            _("Unknown setting value."),
            field="issue_mode" if issue_mode not in IssueMode.values else "proration_mode",
        )
    sub = Subscription(
        organization=ctx.organization,
        customer=customer,
        plan=plan,
        name=clean_text(str(name), "name", max_length=200),
        currency=currency,
        start_date=start,
        trial_end=trial_end,
        ends_on=ends_on,
        max_periods=int(max_periods) if max_periods else None,
        issue_mode=issue_mode,
        proration_mode=proration_mode,
        send_email=bool(data.get("send_email", True)),
        owner_email=str(data.get("owner_email") or ""),
        **schedule,
    )
    schedule_of(sub)  # refuses impossible schedules before anything is written
    refresh_next_invoice_date(sub)
    with atomic():
        sub.save()
        SubscriptionLine.objects.bulk_create(
            SubscriptionLine(subscription=sub, **line) for line in clean
        )
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "subscription.created",
            sub,
            after={"customer": str(customer.pk), "start_date": start, **schedule},
        )
    return sub


def _schedule_input(plan: Plan) -> dict[str, Any]:
    return {
        "unit": plan.unit,
        "interval": plan.interval,
        "timing": plan.timing,
        "anchor_day": plan.anchor_day,
        "semi_month_days": (plan.semi_day1, plan.semi_day2)
        if plan.unit == Unit.SEMI_MONTH
        else None,
    }


def _require_active(sub: Subscription, *allowed: str) -> None:
    if sub.status not in (allowed or (SubscriptionStatus.ACTIVE,)):
        raise ConflictError(
            "subscription.invalid_state", _("This subscription is %(status)s."), status=sub.status
        )


def pause(ctx: Ctx, pk: Any, *, on: dt.date | str) -> Subscription:
    """Periods starting on or after ``on`` are not billed until resumed."""
    ctx.require(Perm.EDIT_INVOICES)
    day = _date(on, "on")
    assert day is not None
    with atomic():
        sub = get_subscription(ctx, pk, for_update=True)
        _require_active(sub)
        if sub.last_period_start and day <= sub.last_period_start:
            raise BusinessError(
                "subscription.pause_before_billed",
                _("A pause cannot start before the last billed period (%(date)s)."),
                field="on",
                date=sub.last_period_start.isoformat(),
            )
        sub.pauses = [*sub.pauses, [day.isoformat(), None]]
        sub.status = SubscriptionStatus.PAUSED
        refresh_next_invoice_date(sub)
        sub.save()
        audit.record(ctx.organization.id, ctx.actor, "subscription.paused", sub, after={"on": day})
    return sub


def resume(ctx: Ctx, pk: Any, *, on: dt.date | str) -> Subscription:
    ctx.require(Perm.EDIT_INVOICES)
    day = _date(on, "on")
    assert day is not None
    with atomic():
        sub = get_subscription(ctx, pk, for_update=True)
        _require_active(sub, SubscriptionStatus.PAUSED)
        start = dt.date.fromisoformat(sub.pauses[-1][0])
        if day <= start:
            raise BusinessError(
                "recurrence.pause_order", _("A pause must end after it starts."), field="on"
            )
        sub.pauses = [*sub.pauses[:-1], [start.isoformat(), day.isoformat()]]
        sub.status = SubscriptionStatus.ACTIVE
        refresh_next_invoice_date(sub)
        sub.save()
        audit.record(ctx.organization.id, ctx.actor, "subscription.resumed", sub, after={"on": day})
    return sub


def cancel(
    ctx: Ctx,
    pk: Any,
    *,
    at_period_end: bool = True,
    on: dt.date | str | None = None,
    render: bool = True,
) -> Subscription:
    """Cancel at the end of the current period, or immediately on ``on`` — then a period
    already billed in advance is credited pro rata for the days left (a credit note)."""
    ctx.require(Perm.EDIT_INVOICES)
    day = _date(on, "on") or _today(ctx)
    with atomic():
        sub = get_subscription(ctx, pk, for_update=True)
        _require_active(sub, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED)
        current = schedule_of(sub).period_containing(day) if at_period_end else None
        ends_on = current.end if current is not None else day
        if sub.last_period_start and ends_on <= sub.last_period_start:
            raise BusinessError(
                "subscription.cancel_before_billed",
                _("The cancellation cannot come before the last billed period (%(date)s)."),
                field="on",
                date=sub.last_period_start.isoformat(),
            )
        credit = None
        if (
            not at_period_end
            and sub.last_period_end
            and ends_on < sub.last_period_end
            and sub.timing == Timing.ADVANCE
        ):
            credit = _credit_unused(ctx, sub, ends_on, render=render)
        sub.ends_on = ends_on if ends_on > billing_start(sub) else None
        sub.cancelled_at = day
        sub.status = SubscriptionStatus.CANCELLED
        sub.next_invoice_date = None
        if sub.ends_on is not None:
            nxt = schedule_of(sub).next_period(sub.last_period_start)
            sub.next_invoice_date = nxt.invoice_date if nxt else None
        sub.save()
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "subscription.cancelled",
            sub,
            after={"ends_on": ends_on, "credit_note": str(credit.pk) if credit else None},
        )
    return sub


def _today(ctx: Ctx) -> dt.date:
    from django.utils import timezone

    return timezone.localdate(timezone=invoicing._zone(ctx.organization))


def _last_invoice(sub: Subscription) -> Any:
    from .models import BillingPeriod

    if sub.last_period_start is None:
        return None
    record = (
        BillingPeriod.objects.filter(subscription=sub, period_start=sub.last_period_start)
        .select_related("invoice")
        .first()
    )
    return record.invoice if record else None


def _credit_unused(ctx: Ctx, sub: Subscription, day: dt.date, *, render: bool) -> Any:
    """Credit the days ``[day, end)`` of the last period billed in advance."""
    invoice = _last_invoice(sub)
    if invoice is None or invoice.is_draft:
        return None
    assert sub.last_period_start
    assert sub.last_period_end
    lines = [line for line in invoice.lines.all() if line.deducted_invoice_id is None]
    amounts = compute_totals(invoicing.line_inputs(lines), invoice.currency).lines
    credit_lines = []
    for line, amount in zip(lines, amounts, strict=True):
        part = proration.piece(
            amount.net_amount,
            (sub.last_period_start, sub.last_period_end),
            (day, sub.last_period_end),
            invoice.currency,
        )
        if part > 0:
            credit_lines.append(
                {
                    "description": _prorata_text(
                        line.description, day, sub.last_period_end, invoice.language
                    ),
                    "quantity": "1",
                    "unit_price": part,
                    "vat_category": line.vat_category,
                    "vat_rate": line.vat_rate,
                    "nature": line.nature,
                }
            )
    if not credit_lines:
        return None
    reason = "Résiliation anticipée" if invoice.language == "fr" else "Early cancellation"
    return invoicing.create_credit_note(
        ctx, invoice.id, lines=credit_lines, reason=reason, issue=True, render=render
    )


def _prorata_text(description: str, start: dt.date, end: dt.date, language: str) -> str:
    last = end - dt.timedelta(days=1)
    if language == "fr":
        return f"{description} — prorata du {start:%d/%m/%Y} au {last:%d/%m/%Y}"[:500]
    return f"{description} — pro rata {start:%Y-%m-%d} to {last:%Y-%m-%d}"[:500]


# --- changes -------------------------------------------------------------------------------


@dataclass
class ChangePreview:
    effective: dt.date
    period_start: dt.date | None
    period_end: dt.date | None
    adjustments: list[dict[str, Any]] = field(default_factory=list)  # per VAT rate
    total: Decimal = ZERO
    action: str = "none"  # invoice | credit_note | next_invoice | none | in_next_period


def line_price(line: SubscriptionLine | PlanLine) -> Decimal:
    if line.unit_price is not None:
        return line.unit_price
    if line.product is not None:
        return line.product.unit_price
    return ZERO


def full_amount(line: SubscriptionLine, currency: str, period_start: dt.date) -> Decimal:
    """The price of a full period for this line (after its discount when it applies)."""
    discount = line.discount_percent
    if line.discount_until is not None and period_start >= line.discount_until:
        discount = ZERO
    # The invoice line's own computation, so that prorated pieces add up to what a full
    # period's invoice line shows (VAT does not change a line net: any valid rate will do).
    return line_amounts(
        LineInput(line.quantity, line_price(line), VatCategory.STANDARD, Decimal(20), discount),
        currency,
    ).net_amount


def versions_at(sub: Subscription, day: dt.date) -> list[SubscriptionLine]:
    return [
        line
        for line in sub.lines.select_related("product")
        if (line.starts_on is None or line.starts_on <= day)
        and (line.ends_on is None or day < line.ends_on)
    ]


def change(
    ctx: Ctx,
    pk: Any,
    *,
    lines: Iterable[Mapping[str, Any]],
    effective: dt.date | str,
    preview: bool = False,
    render: bool = True,
) -> ChangePreview:
    """Replace the lines from ``effective`` (upgrade, downgrade, quantity change).

    In arrears, the next invoice bills each version by day. In advance, the period already
    billed is adjusted by ``core.proration.change_adjustment`` per VAT rate, according to the
    subscription's proration mode. ``preview`` computes without writing."""
    ctx.require(Perm.VIEW if preview else Perm.EDIT_INVOICES)
    day = _date(effective, "effective")
    assert day is not None
    clean = _clean_lines(ctx, lines)
    with atomic():
        sub = get_subscription(ctx, pk, for_update=not preview)
        _require_active(sub, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED)
        if sub.last_period_start and day < sub.last_period_start:
            raise BusinessError(
                "subscription.change_before_billed",
                _("A change cannot be dated before the last billed period (%(date)s)."),
                field="effective",
                date=sub.last_period_start.isoformat(),
            )
        result = ChangePreview(day, sub.last_period_start, sub.last_period_end)
        billed = (
            sub.timing == Timing.ADVANCE
            and sub.last_period_start is not None
            and sub.last_period_end is not None
            and day < sub.last_period_end
        )
        old = versions_at(sub, day)
        if billed:
            assert sub.last_period_start
            assert sub.last_period_end
            period = (sub.last_period_start, sub.last_period_end)
            by_rate: dict[tuple[str, Decimal], Decimal] = defaultdict(lambda: ZERO)
            new_lines = [SubscriptionLine(subscription=sub, **line) for line in clean]
            for line, sign in [*((x, -1) for x in old), *((x, 1) for x in new_lines)]:
                amount = full_amount(line, sub.currency, sub.last_period_start)
                part = proration.piece(amount, period, (day, period[1]), sub.currency)
                by_rate[(line.vat_category, line.vat_rate)] += sign * part
            result.adjustments = [
                {"vat_category": cat, "vat_rate": rate, "amount": amount}
                for (cat, rate), amount in sorted(by_rate.items())
                if amount != 0
            ]
            result.total = sum((a["amount"] for a in result.adjustments), ZERO)
            mode = sub.proration_mode
            if mode == ProrationMode.NONE or not result.adjustments:
                result.action = "none"
            elif mode == ProrationMode.NEXT_INVOICE and result.total > 0:
                result.action = "next_invoice"
            else:
                result.action = "invoice" if result.total > 0 else "credit_note"
        else:
            result.action = "in_next_period"
        if preview:
            return result
        for line in old:
            if line.starts_on is not None and line.starts_on >= day:
                line.delete()
            else:
                line.ends_on = day
                line.save(update_fields=["ends_on"])
        # A change scheduled after ``day`` is superseded: these lines apply from ``day`` on.
        sub.lines.filter(starts_on__gt=day).delete()
        SubscriptionLine.objects.bulk_create(
            SubscriptionLine(subscription=sub, starts_on=day, **line) for line in clean
        )
        if billed:
            _apply_adjustment(ctx, sub, result, render=render)
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "subscription.changed",
            sub,
            after={"effective": day, "total": result.total, "action": result.action},
        )
    return result


def _apply_adjustment(ctx: Ctx, sub: Subscription, result: ChangePreview, *, render: bool) -> None:
    assert result.period_end is not None
    text = _prorata_text(sub.name, result.effective, result.period_end, sub.customer.language)
    if result.action == "next_invoice":
        PendingCharge.objects.bulk_create(
            PendingCharge(
                subscription=sub,
                description=text,
                amount=a["amount"],
                vat_category=a["vat_category"],
                vat_rate=a["vat_rate"],
            )
            for a in result.adjustments
            if a["amount"] > 0
        )
    if result.action == "invoice":
        draft = invoicing.create_draft(
            ctx,
            sub.customer_id,
            currency=sub.currency,
            lines=[
                {
                    "description": text,
                    "quantity": "1",
                    "unit_price": a["amount"],
                    "vat_category": a["vat_category"],
                    "vat_rate": a["vat_rate"],
                }
                for a in result.adjustments
                if a["amount"] > 0
            ],
        )
        if sub.issue_mode == IssueMode.ISSUE:
            invoicing.issue_invoice(ctx, draft.id, render=render)
    if result.action in ("invoice", "credit_note", "next_invoice"):
        credits = [a for a in result.adjustments if a["amount"] < 0]
        invoice = _last_invoice(sub)
        if credits and invoice is not None and not invoice.is_draft:
            invoicing.create_credit_note(
                ctx,
                invoice.id,
                issue=True,
                render=render,
                reason="Changement d'abonnement"
                if invoice.language == "fr"
                else "Subscription change",
                lines=[
                    {
                        "description": text,
                        "quantity": "1",
                        "unit_price": -a["amount"],
                        "vat_category": a["vat_category"],
                        "vat_rate": a["vat_rate"],
                    }
                    for a in credits
                ],
            )


# --- usage ---------------------------------------------------------------------------------


def record_usage(
    ctx: Ctx, pk: Any, *, client_id: str, quantity: Any, occurred_on: dt.date | str
) -> tuple[UsageRecord, bool]:
    """Store a usage record; the same ``client_id`` with the same values returns the stored
    record (created False), with other values a conflict."""
    ctx.require(Perm.EDIT_INVOICES)
    qty = as_decimal(quantity, "quantity")
    day = _date(occurred_on, "occurred_on")
    assert day is not None
    client_id = clean_text(client_id, "client_id", max_length=100)
    if not client_id:
        raise BusinessError(
            "usage.client_id_required", _("A client id is required."), field="client_id"
        )
    with atomic():
        sub = get_subscription(ctx, pk, for_update=True)
        existing = UsageRecord.objects.filter(subscription=sub, client_id=client_id).first()
        if existing is not None:
            if (existing.quantity, existing.occurred_on) != (qty, day):
                raise ConflictError(
                    "usage.duplicate_id",
                    _("Usage id “%(id)s” was already recorded with other values."),
                    field="client_id",
                    id=client_id,
                )
            return existing, False
        if sub.status in (SubscriptionStatus.CANCELLED, SubscriptionStatus.ENDED):
            raise ConflictError(
                "usage.subscription_closed",
                _("This subscription is %(status)s: no usage can be recorded."),
                status=sub.status,
            )
        if qty < 0:
            raise BusinessError("usage.negative", _("Usage cannot be negative."), field="quantity")
        record = UsageRecord.objects.create(
            subscription=sub, client_id=client_id, quantity=qty, occurred_on=day
        )
    return record, True
