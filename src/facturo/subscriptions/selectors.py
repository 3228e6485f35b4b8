"""Read queries on plans, subscriptions and billing runs, always scoped to the acting
organization; and the MRR view (monthly recurring revenue, churn, expected invoicing).

Definitions used by :func:`mrr_view` (also shown on the page and in the API):

- **MRR**: the full-period price excluding VAT of the lines in force today, of every
  *active* subscription whose billing has started (trial over, start date reached), brought
  to one month by ``core.mrr`` (exact sum, one half-up rounding per currency). Paused,
  cancelled and ended subscriptions do not count; pending one-off charges do not either.
- **Active**: status « active » (including those still in trial or not started yet, counted
  apart as ``not_started``).
- **Churned this month**: subscriptions cancelled (cancellation date) in the current
  calendar month, with the monthly amount they represented.
- **Expected invoicing**: for the current calendar month and the two next ones, the amount
  excluding VAT of every period still to be invoiced, from each subscription's schedule and
  line versions, computed as the billing run computes invoice lines (per line, pro rata by
  day for partial periods); periods overdue and not billed yet fall in the current month,
  and charges waiting for the next invoice are added to it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, Q, QuerySet

from facturo.core import mrr as core_mrr
from facturo.core import proration
from facturo.core.errors import NotFound, _
from facturo.core.money import ZERO, round_money
from facturo.core.recurrence import Period
from facturo.core.tax import VatCategory
from facturo.core.totals import LineInput, line_amounts
from facturo.organizations.context import Ctx, Perm

from .models import (
    BillingPeriod,
    BillingRun,
    PendingCharge,
    PeriodStatus,
    Plan,
    Pricing,
    Subscription,
    SubscriptionLine,
    SubscriptionStatus,
)
from .services import frequency_of, full_amount, line_price, rule_of, schedule_of

FORECAST_MONTHS = 3


def organization_today(ctx: Ctx) -> dt.date:
    """Today in the organization's time zone (the date billing and the MRR view use)."""
    import zoneinfo

    from django.utils import timezone

    try:
        zone = zoneinfo.ZoneInfo(ctx.organization.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("Europe/Paris")
    return timezone.localdate(timezone=zone)


# --- lists and objects ---------------------------------------------------------------------


def plans(ctx: Ctx, *, include_archived: bool = False, search: str = "") -> QuerySet[Plan]:
    ctx.require(Perm.VIEW)
    qs = Plan.objects.filter(organization=ctx.organization)
    if not include_archived:
        qs = qs.filter(archived=False)
    if search:
        qs = qs.filter(name__icontains=search)
    return qs.prefetch_related("lines").order_by("name", "id")


def subscriptions(
    ctx: Ctx,
    *,
    status: str = "",
    customer_id: uuid.UUID | str | None = None,
    plan_id: uuid.UUID | str | None = None,
    search: str = "",
) -> QuerySet[Subscription]:
    """Subscriptions of the organization, newest first."""
    ctx.require(Perm.VIEW)
    qs = Subscription.objects.filter(organization=ctx.organization).select_related(
        "customer", "plan"
    )
    if status:
        qs = qs.filter(status=status)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if plan_id:
        qs = qs.filter(plan_id=plan_id)
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(customer__name__icontains=search))
    # the list shows each one's monthly amount: its lines come in one query per page
    return qs.prefetch_related(_lines_prefetch()).order_by("-created_at", "-id")


def subscription(ctx: Ctx, pk: Any) -> Subscription:
    ctx.require(Perm.VIEW)
    return _one(
        Subscription.objects.filter(organization=ctx.organization).select_related(
            "customer", "plan"
        ),
        pk,
        "subscription",
    )


def billed_periods(ctx: Ctx, sub: Subscription) -> QuerySet[BillingPeriod]:
    """The periods of ``sub`` billed (or failed), latest first, with their invoices."""
    ctx.require(Perm.VIEW)
    return (
        BillingPeriod.objects.filter(organization=ctx.organization, subscription=sub)
        .select_related("invoice")
        .order_by("-period_start")
    )


def billing_runs(ctx: Ctx) -> QuerySet[BillingRun]:
    """Runs started for this organization (runs over every organization, started from the
    command line without ``--organization``, hold other organizations' errors: not shown)."""
    ctx.require(Perm.VIEW)
    return BillingRun.objects.filter(organization=ctx.organization).order_by("-started_at", "-id")


def billing_run(ctx: Ctx, pk: Any) -> BillingRun:
    ctx.require(Perm.VIEW)
    return _one(BillingRun.objects.filter(organization=ctx.organization), pk, "billing_run")


def failed_periods(ctx: Ctx, run: BillingRun | None = None) -> QuerySet[BillingPeriod]:
    """Periods whose billing failed and that are still failed (a later run that billed them
    turned them into issued or draft periods), with their reason."""
    ctx.require(Perm.VIEW)
    qs = BillingPeriod.objects.filter(organization=ctx.organization, status=PeriodStatus.FAILED)
    if run is not None:
        qs = qs.filter(run=run)
    return qs.select_related("subscription", "subscription__customer").order_by(
        "period_start", "id"
    )


def _one(qs: QuerySet[Any], pk: Any, code: str) -> Any:
    try:
        return qs.get(pk=pk)
    except (qs.model.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFound(f"{code}.not_found", _("Not found.")) from None


# --- amounts -------------------------------------------------------------------------------


def _lines_prefetch() -> Prefetch:
    return Prefetch(
        "lines",
        queryset=SubscriptionLine.objects.select_related("product").order_by("position", "id"),
    )


def _in_force(lines: Iterable[SubscriptionLine], day: dt.date) -> list[SubscriptionLine]:
    return [
        line
        for line in lines
        if (line.starts_on is None or line.starts_on <= day)
        and (line.ends_on is None or day < line.ends_on)
    ]


def period_price(sub: Subscription, day: dt.date) -> Decimal:
    """The price excluding VAT of one full period with the lines in force on ``day``."""
    return sum(
        (full_amount(line, sub.currency, day) for line in _in_force(sub.lines.all(), day)), ZERO
    )


def monthly_amount(sub: Subscription, day: dt.date) -> Decimal:
    """The subscription's share of MRR on ``day`` (rounded, for display beside it)."""
    return core_mrr.monthly_amount(period_price(sub, day), frequency_of(sub), sub.currency)


def period_amount(sub: Subscription, period: Period) -> Decimal:
    """What the billing run will invoice (excl. VAT) for ``period``, line by line as
    ``billing.invoice_lines`` builds it, without pending charges."""
    natural = rule_of(sub).natural_period(period.start)
    total = ZERO
    for line in sub.lines.all():
        if line.pricing != Pricing.FIXED:
            continue  # metered: unknown until the usage is recorded
        start = max(period.start, line.starts_on or period.start)
        end = min(period.end, line.ends_on or period.end)
        if start >= end:
            continue
        if (start, end) == natural:
            discount = line.discount_percent
            if line.discount_until is not None and period.start >= line.discount_until:
                discount = ZERO
            amounts = line_amounts(
                LineInput(
                    quantity=line.quantity,
                    unit_price=line_price(line),
                    vat_category=VatCategory(line.vat_category),
                    vat_rate=line.vat_rate,
                    discount_percent=discount,
                ),
                sub.currency,
            )
            total += amounts.net_amount
        else:
            part = proration.piece(
                full_amount(line, sub.currency, period.start), natural, (start, end), sub.currency
            )
            if part > 0:
                total += part
    return total


# --- the MRR view --------------------------------------------------------------------------


@dataclass
class MonthForecast:
    start: dt.date  # first day of the month
    end: dt.date  # first day of the next month
    invoices: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)  # currency → excl. VAT


@dataclass
class MrrView:
    today: dt.date
    currency: str  # the organization's
    mrr: Decimal  # in the organization's currency
    counted: int  # subscriptions counted in the MRR (every currency)
    other_currencies: dict[str, Decimal]  # MRR of subscriptions in other currencies
    active: int
    not_started: int  # active, in trial or starting later (not in MRR)
    paused: int
    churned_this_month: int
    churned_mrr: dict[str, Decimal]
    forecast: list[MonthForecast]

    @property
    def arr(self) -> Decimal:
        return self.mrr * 12


def _billing_started(today: dt.date) -> Q:
    return Q(trial_end__isnull=True, start_date__lte=today) | Q(trial_end__lte=today)


def _sum_by_currency(
    items: Iterable[tuple[str, Decimal, Any]],
) -> dict[str, Decimal]:
    exact: dict[str, Fraction] = defaultdict(Fraction)
    for currency, amount, frequency in items:
        exact[currency] += core_mrr.monthly_fraction(amount, frequency)
    return {c: core_mrr.round_fraction(v, c) for c, v in sorted(exact.items())}


def mrr_view(ctx: Ctx, today: dt.date, *, months: int = FORECAST_MONTHS) -> MrrView:
    """MRR, active subscriptions, churn of the month and expected invoicing (see the module
    docstring for the definitions). ``today`` is the organization's date (no clock here)."""
    ctx.require(Perm.VIEW)
    org = ctx.organization
    base = Subscription.objects.filter(organization=org)
    currency = org.currency

    counting = (
        base.filter(status=SubscriptionStatus.ACTIVE)
        .filter(_billing_started(today))
        .prefetch_related(_lines_prefetch())
    )
    counted: list[tuple[str, Decimal, Any]] = [
        (sub.currency, period_price(sub, today), frequency_of(sub))
        for sub in counting.iterator(chunk_size=500)
    ]
    by_currency = _sum_by_currency(counted)

    active = base.filter(status=SubscriptionStatus.ACTIVE)
    month_start, month_end = core_mrr.next_months(today, 1)[0]
    churned = base.filter(
        status=SubscriptionStatus.CANCELLED,
        cancelled_at__gte=month_start,
        cancelled_at__lt=month_end,
    ).prefetch_related(_lines_prefetch())
    churned_list = list(churned)
    churned_mrr = _sum_by_currency(
        (sub.currency, period_price(sub, sub.cancelled_at or today), frequency_of(sub))
        for sub in churned_list
    )

    return MrrView(
        today=today,
        currency=currency,
        mrr=by_currency.pop(currency, round_money(ZERO, currency)),
        counted=len(counted),
        other_currencies=by_currency,
        active=active.count(),
        not_started=active.exclude(_billing_started(today)).count(),
        paused=base.filter(status=SubscriptionStatus.PAUSED).count(),
        churned_this_month=len(churned_list),
        churned_mrr=churned_mrr,
        forecast=expected_invoicing(ctx, today, months=months),
    )


def expected_invoicing(
    ctx: Ctx, today: dt.date, *, months: int = FORECAST_MONTHS
) -> list[MonthForecast]:
    """Periods still to invoice in the current month and the ``months - 1`` next ones."""
    ctx.require(Perm.VIEW)
    buckets = [MonthForecast(start, end) for start, end in core_mrr.next_months(today, months)]
    window_end = buckets[-1].end
    due = (
        Subscription.objects.filter(
            organization=ctx.organization,
            status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELLED],
            next_invoice_date__isnull=False,
            next_invoice_date__lt=window_end,
        )
        .prefetch_related(
            _lines_prefetch(),
            Prefetch(
                "pending_charges",
                queryset=PendingCharge.objects.filter(billed_in__isnull=True),
                to_attr="open_charges",
            ),
        )
        .order_by("id")
    )
    totals: list[dict[str, Decimal]] = [defaultdict(lambda: ZERO) for _ in buckets]
    for sub in due.iterator(chunk_size=500):
        periods = schedule_of(sub).due(window_end - dt.timedelta(days=1), sub.last_period_start)
        for n, period in enumerate(periods):
            index = next(
                (i for i, b in enumerate(buckets) if period.invoice_date < b.end), len(buckets) - 1
            )
            amount = period_amount(sub, period)
            if n == 0:
                amount += sum((c.amount for c in sub.open_charges), ZERO)
            buckets[index].invoices += 1
            totals[index][sub.currency] += amount
    for bucket, amounts in zip(buckets, totals, strict=True):
        bucket.amounts = {c: round_money(a, c) for c, a in sorted(amounts.items())}
    return buckets
