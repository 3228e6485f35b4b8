"""Plans and subscriptions: create, pause, resume, cancel, change (with proration).

Every write owns its transaction and records an audit event. Billing itself (the run that
turns due periods into invoices) lives in :mod:`facturo.subscriptions.billing`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError

from facturo.audit import services as audit
from facturo.catalog.models import UNIT_CHOICES, Product
from facturo.catalog.services import as_decimal
from facturo.core import metered, proration
from facturo.core.errors import BusinessError, ConflictError, NotFound, _
from facturo.core.money import ZERO, check_currency
from facturo.core.recurrence import Frequency, Period, Rule, Schedule, Timing, Unit
from facturo.core.tax import VatCategory
from facturo.core.text import clean_text
from facturo.core.totals import LineInput, compute_totals, line_amounts
from facturo.customers.models import Customer
from facturo.foundation.db import atomic
from facturo.invoicing import services as invoicing
from facturo.organizations.context import Ctx, Perm

from .models import (
    AutoPay,
    IssueMode,
    PendingCharge,
    Plan,
    PlanLine,
    Pricing,
    ProrationMode,
    Subscription,
    SubscriptionLine,
    SubscriptionStatus,
    UsageRecord,
)

UNIT_CODES = {code for code, _label in UNIT_CHOICES}

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


def open_pause(sub: Subscription) -> dt.date | None:
    """The start of the pause without an end (scheduled or current), if any."""
    if sub.pauses and sub.pauses[-1][1] is None:
        return dt.date.fromisoformat(sub.pauses[-1][0])
    return None


def final_usage_period(sub: Subscription) -> Period | None:
    """The closing "period" of an advance-billed subscription with metered lines that has
    reached its end: an advance invoice bills the usage before its period starts, so the
    usage of the last period (up to the end, or up to an immediate cancellation) is billed
    by one more invoice, dated the day the subscription ends — zero days long, usage only.
    None when there is none to make (arrears, no metered line, or already made)."""
    from .models import BillingPeriod

    if sub.timing != Timing.ADVANCE or sub.last_period_end is None:
        return None
    day = sub.last_period_end
    if sub.ends_on is not None and sub.ends_on < day:
        day = sub.ends_on
    if sub.last_period_start is None or day <= sub.last_period_start:
        return None  # made already (its start is then the last one), or nothing to bill
    if schedule_of(sub).next_period(sub.last_period_start) is not None:
        return None  # not over yet
    if not sub.lines.exclude(pricing=Pricing.FIXED).exists():
        return None
    if BillingPeriod.objects.filter(subscription=sub, period_start=day).exists():
        return None
    return Period(sub.periods_billed + 1, day, day, day, 0, 0)


def advance_to(sub: Subscription, nxt: Any, today: dt.date | None = None) -> None:
    """Set where the next run picks this subscription up, from its next period ``nxt``.

    Nothing more to bill because of a pause without an end: the subscription stays active
    until the pause starts (``today`` reached it: paused), and the run wakes it up on that
    day. Nothing more otherwise: the closing usage invoice, if one is due
    (:func:`final_usage_period`), else ended (once something was billed)."""
    sub.next_invoice_date = nxt.invoice_date if nxt else None
    if nxt is not None:
        return
    paused_from = open_pause(sub)
    if paused_from is None:
        final = final_usage_period(sub)
        if final is not None:
            sub.next_invoice_date = final.invoice_date
            return
    if paused_from is not None:
        if sub.status == SubscriptionStatus.ACTIVE:
            if today is not None and paused_from <= today:
                sub.status = SubscriptionStatus.PAUSED
            else:
                sub.next_invoice_date = paused_from
        return
    if sub.status == SubscriptionStatus.ACTIVE and sub.last_period_start:
        sub.status = SubscriptionStatus.ENDED


def refresh_next_invoice_date(sub: Subscription, today: dt.date | None = None) -> None:
    """Where the next run picks this subscription up (NULL: nothing more to bill)."""
    advance_to(sub, schedule_of(sub).next_period(sub.last_period_start), today)


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


MAX_LINES = 200
DECIMALS = (("quantity", 4), ("unit_price", 6), ("discount_percent", 4), ("vat_rate", 4))


def _clean_lines(
    ctx: Ctx, lines: Iterable[Mapping[str, Any]], currency: str
) -> list[dict[str, Any]]:
    """Lines as the invoice will take them: the same checks as invoicing (decimals, unit,
    VAT category and rate, discount 0–100, non-negative amounts), plus metered pricing."""
    result = []
    for position, raw in enumerate(lines, start=1):
        data = dict(raw)
        where = f"lines.{position}"
        product = None
        if data.get("product_id"):
            try:
                product = Product.objects.filter(
                    organization=ctx.organization, pk=data["product_id"]
                ).first()
            except (ValueError, DjangoValidationError):
                product = None
            if product is None:
                raise BusinessError(
                    "subscription.unknown_product",
                    _("Line %(position)s: unknown product."),
                    field=f"{where}.product_id",
                    position=position,
                )
        description = clean_text(
            data.get("description") or (product.name if product else ""),
            f"{where}.description",
            max_length=500,
        )
        if not description:
            raise BusinessError(
                "subscription.line_description_required",
                _("Line %(position)s: a description is required."),
                field=f"{where}.description",
                position=position,
            )
        pricing = str(data.get("pricing") or Pricing.FIXED)
        if pricing not in Pricing.values:
            raise BusinessError(
                "subscription.invalid_pricing",
                _("Line %(position)s: pricing is fixed, unit, tiered or volume."),
                field=f"{where}.pricing",
                position=position,
            )
        price = data.get("unit_price")
        if price in (None, "") and product is None and pricing in (Pricing.FIXED, Pricing.UNIT):
            raise BusinessError(
                "subscription.line_price_required",
                _("Line %(position)s: a price is required without a product."),
                field=f"{where}.unit_price",
                position=position,
            )
        tiers: list[list[str | None]] = []
        if pricing in (Pricing.TIERED, Pricing.VOLUME):
            parsed = metered.parse_tiers(data.get("tiers") or [], f"{where}.tiers")
            for tier in parsed:
                for value, name, places in (
                    (tier.up_to, "up_to", 4),
                    (tier.unit_price, "unit_price", 6),
                    (tier.flat_fee, "flat_fee", 6),
                ):
                    if value is not None and value.as_tuple().exponent < -places:  # type: ignore[operator]
                        raise BusinessError(
                            "subscription.too_many_decimals",
                            _("Line %(position)s: %(name)s has more than %(places)s decimals."),
                            field=f"{where}.tiers",
                            position=position,
                            name=name,
                            places=places,
                        )
            tiers = [
                [None if t.up_to is None else str(t.up_to), str(t.unit_price), str(t.flat_fee)]
                for t in parsed
            ]
        unit_code = str(data.get("unit_code") or (product.unit_code if product else "C62"))
        if unit_code not in UNIT_CODES:
            raise BusinessError(
                "subscription.invalid_unit_code",
                _("Line %(position)s: unknown unit code “%(unit)s”."),
                field=f"{where}.unit_code",
                position=position,
                unit=unit_code,
            )
        line: dict[str, Any] = {
            "position": position,
            "product": product,
            "description": description,
            "quantity": as_decimal(data.get("quantity") or "1", f"{where}.quantity"),
            "unit_price": None if price in (None, "") else as_decimal(price, f"{where}.unit_price"),
            "unit_code": unit_code,
            "vat_category": str(
                data.get("vat_category") or (product.vat_category if product else "S")
            ),
            "vat_rate": as_decimal(
                data.get("vat_rate")
                if data.get("vat_rate") not in (None, "")
                else (product.vat_rate if product else "20"),
                f"{where}.vat_rate",
            ),
            "discount_percent": as_decimal(
                data.get("discount_percent") or "0", f"{where}.discount_percent"
            ),
            "discount_until": _date(data.get("discount_until"), f"{where}.discount_until"),
            "pricing": pricing,
            "metric": clean_text(str(data.get("metric") or ""), f"{where}.metric", max_length=50),
            "tiers": tiers,
        }
        for name, places in DECIMALS:
            value = line[name]
            if value is not None and value.as_tuple().exponent < -places:
                raise BusinessError(
                    "subscription.too_many_decimals",
                    _("Line %(position)s: %(name)s has more than %(places)s decimals."),
                    field=f"{where}.{name}",
                    position=position,
                    name=name,
                    places=places,
                )
        if line["quantity"] < 0 or (line["unit_price"] is not None and line["unit_price"] < 0):
            raise BusinessError(
                "subscription.negative_line",
                _("Line %(position)s: quantities and prices cannot be negative."),
                field=where,
                position=position,
            )
        try:
            VatCategory(line["vat_category"])
            compute_totals(
                [
                    LineInput(
                        line["quantity"],
                        line["unit_price"] or (product.unit_price if product else ZERO),
                        VatCategory(line["vat_category"]),
                        line["vat_rate"],
                        line["discount_percent"],
                    )
                ],
                currency,
            )
        except ValueError:
            raise BusinessError(
                "subscription.invalid_vat_category",
                _("Line %(position)s: unknown VAT category “%(category)s”."),
                field=f"{where}.vat_category",
                position=position,
                category=line["vat_category"],
            ) from None
        except BusinessError as exc:
            raise BusinessError(
                exc.code,
                _("Line %(position)s: %(error)s"),
                field=f"{where}.{exc.field or ''}".rstrip("."),
                position=position,
                error=exc.message,
            ) from exc
        result.append(line)
    if not result:
        raise BusinessError("subscription.no_lines", _("Add at least one line."), field="lines")
    if len(result) > MAX_LINES:
        raise BusinessError(
            "subscription.too_many_lines",
            _("A subscription has at most %(max)s lines."),
            field="lines",
            max=MAX_LINES,
        )
    metrics = [x["metric"] for x in result if x["pricing"] != Pricing.FIXED]
    if len(metrics) != len(set(metrics)):
        raise BusinessError(
            "subscription.duplicate_metric",
            _("Two metered lines measure the same usage: give each one its own metric name."),
            field="lines",
        )
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
    currency = check_currency(str(data.get("currency") or ctx.organization.currency).upper())
    clean = _clean_lines(ctx, lines, currency)
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


def update_plan(
    ctx: Ctx, pk: Any, name: str, lines: Iterable[Mapping[str, Any]], **data: Any
) -> Plan:
    """Change a plan: name, schedule, trial, lines, archived. Subscriptions already made from
    it keep their own copy (their lines and schedule change through :func:`change`)."""
    ctx.require(Perm.EDIT_CATALOG)
    name = clean_text(name, "name", max_length=200)
    if not name:
        raise BusinessError("plan.name_required", _("A name is required."), field="name")
    schedule = _clean_schedule(data)
    trial_days = int(data.get("trial_days") or 0)
    if not 0 <= trial_days <= 365:
        raise BusinessError(
            "plan.invalid_trial", _("A trial lasts 0 to 365 days."), field="trial_days"
        )
    with atomic():
        plan: Plan = _get(Plan, ctx, pk, "plan", for_update=True)
        clean = _clean_lines(ctx, lines, plan.currency)
        before = {"name": plan.name, "lines": plan.lines.count()}
        plan.name = name
        plan.trial_days = trial_days
        plan.archived = bool(data.get("archived", plan.archived))
        plan.semi_day1 = plan.semi_day2 = None
        for key, value in schedule.items():
            setattr(plan, key, value)
        plan.save()
        plan.lines.all().delete()
        PlanLine.objects.bulk_create(
            PlanLine(plan=plan, **{k: v for k, v in line.items() if not k.startswith("discount")})
            for line in clean
        )
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "plan.updated",
            plan,
            before=before,
            after={"name": name, "lines": len(clean), **schedule},
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
            _clean_lines(ctx, lines, plan.currency)
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
                    "pricing": pl.pricing,
                    "metric": pl.metric,
                    "tiers": pl.tiers,
                }
                for pl in plan.lines.all()
            ]
        )
        trial_days = int(data.get("trial_days", plan.trial_days) or 0)
        currency = plan.currency
        name = data.get("name") or plan.name
    else:
        schedule = _clean_schedule(data)
        clean = _clean_lines(ctx, lines or [], customer.currency)
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
    settings = _clean_settings(data)
    sub = Subscription(
        organization=ctx.organization,
        customer=customer,
        plan=plan,
        name=clean_text(str(name), "name", max_length=200),
        currency=currency,
        start_date=start,
        trial_end=trial_end,
        ends_on=ends_on,
        max_periods=_max_periods(max_periods),
        **settings,
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


SETTING_CHOICES = {
    "issue_mode": IssueMode.values,
    "proration_mode": ProrationMode.values,
    "auto_pay": AutoPay.values,
}


def _clean_settings(data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Issue mode, proration mode, auto-pay, e-mail sending and the owner's address."""
    out: dict[str, Any] = {}
    defaults = {
        "issue_mode": IssueMode.ISSUE,
        "proration_mode": ProrationMode.INVOICE_NOW,
        "auto_pay": AutoPay.NONE,
    }
    for name, allowed in SETTING_CHOICES.items():
        if partial and name not in data:
            continue
        value = str(data.get(name) or defaults[name])
        if value not in allowed:
            raise BusinessError(
                "subscription.invalid_setting",
                _("Unknown value “%(value)s” for %(name)s (expected one of: %(allowed)s)."),
                field=name,
                value=value,
                name=name,
                allowed=", ".join(allowed),
            )
        out[name] = value
    if not partial or "send_email" in data:
        out["send_email"] = bool(data.get("send_email", True))
    if not partial or "owner_email" in data:
        from django.core.validators import validate_email

        email = clean_text(str(data.get("owner_email") or ""), "owner_email", max_length=254)
        if email:
            try:
                validate_email(email)
            except DjangoValidationError:
                raise BusinessError(
                    "subscription.invalid_owner_email",
                    _("“%(value)s” is not an e-mail address."),
                    field="owner_email",
                    value=email,
                ) from None
        out["owner_email"] = email
    return out


def _max_periods(value: Any) -> int | None:
    if value in (None, "", 0, "0"):
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise BusinessError(
            "recurrence.invalid_count",
            _("The number of invoices must be at least 1."),
            field="max_periods",
        )
    return count


def update_subscription(ctx: Ctx, pk: Any, **data: Any) -> Subscription:
    """Change the name, settings (issue mode, proration, auto-pay, e-mail, owner) and the end
    (date or number of invoices) of a subscription; lines change through :func:`change`."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        sub = get_subscription(ctx, pk, for_update=True)  # another organization's: 404 first
        settings = _clean_settings(data, partial=True)
        _require_active(sub, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED)
        before = {k: getattr(sub, k) for k in (*settings, "name", "ends_on", "max_periods")}
        for key, value in settings.items():
            setattr(sub, key, value)
        if "name" in data:
            name = clean_text(str(data["name"] or ""), "name", max_length=200)
            if not name:
                raise BusinessError(
                    "subscription.name_required", _("A name is required."), field="name"
                )
            sub.name = name
        if "ends_on" in data:
            ends_on = _date(data["ends_on"], "ends_on")
            if ends_on is not None and sub.last_period_end and ends_on < sub.last_period_end:
                raise BusinessError(
                    "subscription.end_before_billed",
                    _("The end cannot come before the end of the last billed period (%(date)s)."),
                    field="ends_on",
                    date=sub.last_period_end.isoformat(),
                )
            sub.ends_on = ends_on
        if "max_periods" in data:
            count = _max_periods(data["max_periods"])
            if count is not None and count < sub.periods_billed:
                raise BusinessError(
                    "subscription.count_below_billed",
                    _("%(count)s invoices were already issued: the number cannot be lower."),
                    field="max_periods",
                    count=sub.periods_billed,
                )
            sub.max_periods = count
        schedule_of(sub)  # refuses an end before the start
        refresh_next_invoice_date(sub)
        sub.save()
        after = {k: getattr(sub, k) for k in before}
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "subscription.updated",
            sub,
            before=before,
            after=after,
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
    """Periods starting on or after ``on`` are not billed until resumed. A pause dated in
    the future is scheduled: the subscription stays active (and billed) until that day."""
    ctx.require(Perm.EDIT_INVOICES)
    day = _date(on, "on")
    assert day is not None
    with atomic():
        sub = get_subscription(ctx, pk, for_update=True)
        _require_active(sub)
        if open_pause(sub) is not None:
            raise ConflictError(
                "subscription.pause_scheduled",
                _("A pause is already scheduled from %(date)s: resume or change it first."),
                field="on",
                date=open_pause(sub).isoformat(),  # type: ignore[union-attr]
            )
        if sub.last_period_start and day <= sub.last_period_start:
            raise BusinessError(
                "subscription.pause_before_billed",
                _("A pause cannot start before the last billed period (%(date)s)."),
                field="on",
                date=sub.last_period_start.isoformat(),
            )
        sub.pauses = [*sub.pauses, [day.isoformat(), None]]
        if day <= ctx.today():
            sub.status = SubscriptionStatus.PAUSED
        refresh_next_invoice_date(sub, ctx.today())
        sub.save()
        audit.record(ctx.organization.id, ctx.actor, "subscription.paused", sub, after={"on": day})
    return sub


def resume(ctx: Ctx, pk: Any, *, on: dt.date | str) -> Subscription:
    ctx.require(Perm.EDIT_INVOICES)
    day = _date(on, "on")
    assert day is not None
    with atomic():
        sub = get_subscription(ctx, pk, for_update=True)
        start = open_pause(sub)
        if start is None or sub.status not in (
            SubscriptionStatus.ACTIVE,
            SubscriptionStatus.PAUSED,
        ):
            raise ConflictError(
                "subscription.invalid_state",
                _("This subscription is %(status)s."),
                status=sub.status,
            )
        if day <= start and sub.status == SubscriptionStatus.ACTIVE:
            # a scheduled pause called off before it started
            sub.pauses = sub.pauses[:-1]
        elif day <= start:
            raise BusinessError(
                "recurrence.pause_order", _("A pause must end after it starts."), field="on"
            )
        else:
            sub.pauses = [*sub.pauses[:-1], [start.isoformat(), day.isoformat()]]
        sub.status = SubscriptionStatus.ACTIVE
        refresh_next_invoice_date(sub, ctx.today())
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
        # immediately on the first day of the last billed period: that whole period is credited
        if sub.last_period_start and ends_on < sub.last_period_start:
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
            advance_to(sub, schedule_of(sub).next_period(sub.last_period_start), day)
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
    """Credit the days ``[day, end)`` of the last period billed in advance.

    What those days were charged: with proration « none », the invoice's lines (changes were
    never charged); otherwise each line version at its own price for the days it applies
    (the invoice plus the adjustments already invoiced or credited for the period), minus
    the increases still waiting for the next invoice (never charged — settled here). A rate
    that comes out owed (a pending increase larger than the days left) is invoiced."""
    invoice = _last_invoice(sub)
    if invoice is None or invoice.is_draft:
        return None
    assert sub.last_period_start
    assert sub.last_period_end
    end = sub.last_period_end
    if sub.proration_mode == ProrationMode.NONE:
        lines = [line for line in invoice.lines.all() if line.deducted_invoice_id is None]
        amounts = compute_totals(invoicing.line_inputs(lines), invoice.currency).lines
        by_rate: dict[tuple[str, Decimal], Decimal] = defaultdict(lambda: ZERO)
        for line, amount in zip(lines, amounts, strict=True):
            by_rate[(line.vat_category, line.vat_rate)] += proration.piece(
                amount.net_amount, (sub.last_period_start, end), (day, end), invoice.currency
            )
    else:
        by_rate = defaultdict(lambda: ZERO, charged_between(sub, day, end))
        pending = list(sub.pending_charges.filter(billed_in__isnull=True))
        for charge in pending:
            by_rate[(charge.vat_category, charge.vat_rate)] -= charge.amount
        if pending:
            from .models import BillingPeriod

            record = BillingPeriod.objects.get(subscription=sub, period_start=sub.last_period_start)
            sub.pending_charges.filter(pk__in=[c.pk for c in pending]).update(billed_in=record)
    text = _prorata_text(sub.name, day, end, invoice.language)
    owed = [(k, -v) for k, v in sorted(by_rate.items()) if v < 0]
    if owed:
        draft = invoicing.create_draft(
            ctx,
            sub.customer_id,
            currency=sub.currency,
            lines=[
                {
                    "description": text,
                    "quantity": "1",
                    "unit_price": amount,
                    "vat_category": cat,
                    "vat_rate": rate,
                }
                for (cat, rate), amount in owed
            ],
        )
        if sub.issue_mode == IssueMode.ISSUE:
            invoicing.issue_invoice(ctx, draft.id, render=render)
    needed = {k: v for k, v in by_rate.items() if v > 0}
    reason = "Résiliation anticipée" if invoice.language == "fr" else "Early cancellation"
    first = None
    # The period's invoice first, then the invoices of its increases: each is credited at
    # most what is left of it, per VAT rate (a credit note never exceeds its invoice).
    from facturo.invoicing.models import Invoice

    for target in [invoice, *_adjustment_invoices(sub, Invoice)]:
        left = _creditable_by_rate(target)
        part = {k: min(v, left.get(k, ZERO)) for k, v in needed.items()}
        part = {k: v for k, v in part.items() if v > 0}
        if not part:
            continue
        note = invoicing.create_credit_note(
            ctx,
            target.id,
            lines=[
                {
                    "description": text,
                    "quantity": "1",
                    "unit_price": amount,
                    "vat_category": cat,
                    "vat_rate": rate,
                }
                for (cat, rate), amount in sorted(part.items())
            ],
            reason=reason,
            issue=True,
            render=render,
        )
        first = first or note
        needed = {k: v - part.get(k, ZERO) for k, v in needed.items()}
        if not any(v > 0 for v in needed.values()):
            break
    return first


def _link_adjustment(sub: Subscription, invoice_id: Any) -> None:
    from .models import BillingPeriod

    if sub.last_period_start is None:
        return
    record = BillingPeriod.objects.filter(
        subscription=sub, period_start=sub.last_period_start
    ).first()
    if record is not None:
        record.adjustment_invoices = [*record.adjustment_invoices, str(invoice_id)]
        record.save(update_fields=["adjustment_invoices", "updated_at"])


def _adjustment_invoices(sub: Subscription, model: Any) -> list[Any]:
    from .models import BillingPeriod

    if sub.last_period_start is None:
        return []
    record = BillingPeriod.objects.filter(
        subscription=sub, period_start=sub.last_period_start
    ).first()
    ids = record.adjustment_invoices if record else []
    found = {str(x.pk): x for x in model.objects.filter(pk__in=ids)}
    return [found[i] for i in ids if i in found and not found[i].is_draft]


def _creditable_by_rate(invoice: Any) -> dict[tuple[str, Decimal], Decimal]:
    """Per (VAT category, rate): the invoice's net amount minus what issued credit notes
    already gave back."""
    left: dict[tuple[str, Decimal], Decimal] = defaultdict(lambda: ZERO)
    for doc, sign in [(invoice, 1), *((n, -1) for n in invoice.credit_notes.all())]:
        if doc.is_draft:
            continue
        lines = [x for x in doc.lines.all() if x.deducted_invoice_id is None]
        amounts = compute_totals(invoicing.line_inputs(lines), doc.currency).lines
        for line, amount in zip(lines, amounts, strict=True):
            left[(line.vat_category, line.vat_rate)] += sign * amount.net_amount
    return dict(left)


def charged_between(
    sub: Subscription, start: dt.date, end: dt.date
) -> dict[tuple[str, Decimal], Decimal]:
    """Per VAT rate, what the line versions cost for ``[start, end)`` inside the last billed
    period: each stretch between two changes at the prices then in force, a piece of the
    natural period (the same pieces the change adjustments were computed from)."""
    assert sub.last_period_start
    natural = rule_of(sub).natural_period(sub.last_period_start)
    lines = list(sub.lines.select_related("product"))
    cuts = sorted(
        {start, end}
        | {d for line in lines for d in (line.starts_on, line.ends_on) if d and start < d < end}
    )
    totals: dict[tuple[str, Decimal], Decimal] = defaultdict(lambda: ZERO)
    for a, b in itertools.pairwise(cuts):
        active = [
            line
            for line in lines
            if (line.starts_on is None or line.starts_on <= a)
            and (line.ends_on is None or a < line.ends_on)
        ]
        for key, price in rate_totals(active, sub.currency, sub.last_period_start).items():
            totals[key] += proration.piece(price, natural, (a, b), sub.currency)
    return dict(totals)


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
    """The price of a full period for this line (after its discount when it applies);
    zero for a metered line (its usage is billed in arrears, never prorated)."""
    if line.pricing != Pricing.FIXED:
        return ZERO
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
    with atomic():
        sub = get_subscription(ctx, pk, for_update=not preview)
        _require_active(sub, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED)
        clean = _clean_lines(ctx, lines, sub.currency)
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
            # Prices are for the natural period, even when the billed one was a stub.
            natural = rule_of(sub).natural_period(sub.last_period_start)
            new_lines = [SubscriptionLine(subscription=sub, **line) for line in clean]
            before = rate_totals(old, sub.currency, sub.last_period_start)
            after = rate_totals(new_lines, sub.currency, sub.last_period_start)
            by_rate = {
                key: proration.change_adjustment(
                    before.get(key, ZERO),
                    after.get(key, ZERO),
                    natural,
                    day,
                    sub.currency,
                    until=sub.last_period_end,
                )
                for key in {*before, *after}
            }
            result.adjustments = [
                {"vat_category": cat, "vat_rate": rate, "amount": amount}
                for (cat, rate), amount in sorted(by_rate.items())
                if amount != 0
            ]
            result.total = sum((a["amount"] for a in result.adjustments), ZERO)
            result.action = _change_action(sub.proration_mode, result.adjustments)
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


def rate_totals(
    lines: Iterable[SubscriptionLine], currency: str, period_start: dt.date
) -> dict[tuple[str, Decimal], Decimal]:
    """Full-period prices of the fixed lines, summed per (VAT category, rate)."""
    totals: dict[tuple[str, Decimal], Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        if line.pricing == Pricing.FIXED:
            totals[(line.vat_category, line.vat_rate)] += full_amount(line, currency, period_start)
    return dict(totals)


def _change_action(mode: str, adjustments: list[dict[str, Any]]) -> str:
    """What applying the adjustments does: increases are invoiced now or wait for the next
    invoice, decreases are credited now — both when some rates go up and others down."""
    if mode == ProrationMode.NONE or not adjustments:
        return "none"
    up = any(a["amount"] > 0 for a in adjustments)
    down = any(a["amount"] < 0 for a in adjustments)
    charge = "next_invoice" if mode == ProrationMode.NEXT_INVOICE else "invoice"
    if up and down:
        return f"{charge}_and_credit_note"
    return charge if up else "credit_note"


def _apply_adjustment(ctx: Ctx, sub: Subscription, result: ChangePreview, *, render: bool) -> None:
    assert result.period_end is not None
    text = _prorata_text(sub.name, result.effective, result.period_end, sub.customer.language)
    if result.action.startswith("next_invoice"):
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
    if result.action.startswith("invoice"):
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
        _link_adjustment(sub, draft.id)
    if result.action.endswith("credit_note"):
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
    ctx: Ctx,
    pk: Any,
    *,
    client_id: str,
    quantity: Any,
    occurred_on: dt.date | str,
    metric: str = "",
) -> tuple[UsageRecord, bool]:
    """Store a usage record of a metered line (``metric`` names it when there are several);
    the same ``client_id`` with the same values returns the stored record (created False),
    with other values a conflict. It is billed on the next invoice (in arrears)."""
    ctx.require(Perm.EDIT_INVOICES)
    qty = as_decimal(quantity, "quantity")
    day = _date(occurred_on, "occurred_on")
    assert day is not None
    client_id = clean_text(client_id, "client_id", max_length=100)
    metric = clean_text(str(metric or ""), "metric", max_length=50)
    if not client_id:
        raise BusinessError(
            "usage.client_id_required", _("A client id is required."), field="client_id"
        )
    with atomic():
        sub = get_subscription(ctx, pk, for_update=True)
        existing = UsageRecord.objects.filter(subscription=sub, client_id=client_id).first()
        if existing is not None:
            if (existing.quantity, existing.occurred_on, existing.metric) != (qty, day, metric):
                raise ConflictError(
                    "usage.duplicate_id",
                    _(
                        "Usage id “%(id)s” was already recorded with other values "
                        "(%(quantity)s on %(date)s): use a new id for new usage."
                    ),
                    field="client_id",
                    id=client_id,
                    quantity=existing.quantity,
                    date=existing.occurred_on.isoformat(),
                )
            return existing, False
        # Cancelled but still running (until its end, its last invoice to come): usage of
        # those days is taken, and billed by the last invoice (see final_usage_period).
        running = (
            sub.status == SubscriptionStatus.CANCELLED
            and sub.ends_on is not None
            and day < sub.ends_on
            and sub.next_invoice_date is not None
        )
        if sub.status in (SubscriptionStatus.CANCELLED, SubscriptionStatus.ENDED) and not running:
            raise ConflictError(
                "usage.subscription_closed",
                _(
                    "This subscription is %(status)s: no usage can be recorded. Record it "
                    "on the customer's current subscription."
                ),
                status=sub.status,
            )
        if qty < 0:
            raise BusinessError("usage.negative", _("Usage cannot be negative."), field="quantity")
        if qty.as_tuple().exponent < -4:  # type: ignore[operator]
            raise BusinessError(
                "usage.too_many_decimals",
                _("A usage quantity has at most 4 decimals."),
                field="quantity",
            )
        metrics = set(sub.lines.exclude(pricing=Pricing.FIXED).values_list("metric", flat=True))
        if metric not in metrics:
            raise BusinessError(
                "usage.unknown_metric",
                _(
                    "This subscription has no metered line for “%(metric)s” (metered lines: "
                    "%(metrics)s)."
                ),
                field="metric",
                metric=metric or "—",
                metrics=", ".join(sorted(m or "—" for m in metrics)) or "—",
            )
        record = UsageRecord.objects.create(
            subscription=sub, client_id=client_id, quantity=qty, occurred_on=day, metric=metric
        )
    return record, True
