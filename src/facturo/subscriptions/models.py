"""Plans, subscriptions and the record of what each billing period produced.

The guarantee « one invoice per (subscription, period) » is the unique constraint on
``BillingPeriod (subscription, period_start)``, written in the same transaction as the
invoice (see services/billing.py).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from facturo.catalog.models import UNIT_CHOICES, VAT_CATEGORY_CHOICES, Product
from facturo.core.recurrence import Timing, Unit
from facturo.customers.models import Customer
from facturo.foundation.fields import (
    MONEY_SCALE,
    PRICE_SCALE,
    QUANTITY_SCALE,
    RATE_SCALE,
    ScaledDecimalField,
)
from facturo.foundation.models import UUIDModel
from facturo.invoicing.models import Invoice
from facturo.organizations.models import Organization

UNITS = [
    (Unit.DAY.value, _("day(s)")),
    (Unit.WEEK.value, _("week(s)")),
    (Unit.MONTH.value, _("month(s)")),
    (Unit.YEAR.value, _("year(s)")),
    (Unit.SEMI_MONTH.value, _("twice a month")),
]
TIMINGS = [(Timing.ADVANCE.value, _("in advance")), (Timing.ARREARS.value, _("in arrears"))]


class IssueMode(models.TextChoices):
    ISSUE = "issue", _("Issue and send")
    DRAFT = "draft", _("Leave a draft for review")


class ProrationMode(models.TextChoices):
    INVOICE_NOW = "invoice_now", _("Invoice or credit now")
    NEXT_INVOICE = "next_invoice", _("Charge on the next invoice (credits now)")
    NONE = "none", _("No proration")


class AutoPay(models.TextChoices):
    NONE = "none", _("No (the customer pays the invoice)")
    SEPA = "sepa", _("SEPA direct debit")
    CARD = "card", _("Card (Stripe)")


class Pricing(models.TextChoices):
    FIXED = "fixed", _("Fixed (quantity × price)")
    UNIT = "unit", _("Metered: per unit")
    TIERED = "tiered", _("Metered: tiered (graduated)")
    VOLUME = "volume", _("Metered: volume")


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    PAUSED = "paused", _("Paused")
    CANCELLED = "cancelled", _("Cancelled")
    ENDED = "ended", _("Ended")


class ScheduleFields(models.Model):
    """The frequency fields shared by plans and subscriptions."""

    unit = models.CharField(_("every"), max_length=12, choices=UNITS, default=Unit.MONTH.value)
    interval = models.PositiveSmallIntegerField(_("interval"), default=1)
    semi_day1 = models.PositiveSmallIntegerField(null=True, blank=True)
    semi_day2 = models.PositiveSmallIntegerField(null=True, blank=True)
    timing = models.CharField(
        _("billing"), max_length=10, choices=TIMINGS, default=Timing.ADVANCE.value
    )
    anchor_day = models.PositiveSmallIntegerField(
        _("anchor day"),
        default=0,
        help_text=_("0: the start date; 1–31: that day (31 = month end)."),
    )

    class Meta:
        abstract = True


class Plan(UUIDModel, ScheduleFields):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="plans")
    name = models.CharField(_("name"), max_length=200)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    trial_days = models.PositiveSmallIntegerField(_("trial days"), default=0)
    archived = models.BooleanField(_("archived"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LineFields(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, null=True, blank=True)
    position = models.PositiveIntegerField(default=1)
    description = models.CharField(_("description"), max_length=500)
    quantity = ScaledDecimalField(_("quantity"), scale=QUANTITY_SCALE, default=1)
    # NULL: the catalog (or plan) price at billing time, so price changes apply from the
    # next period; a value is a per-subscription override.
    unit_price = ScaledDecimalField(
        _("unit price excl. VAT"), scale=PRICE_SCALE, null=True, blank=True
    )  # type: ignore[misc]
    unit_code = models.CharField(_("unit"), max_length=3, choices=UNIT_CHOICES, default="C62")
    vat_category = models.CharField(max_length=2, choices=VAT_CATEGORY_CHOICES, default="S")
    vat_rate = ScaledDecimalField(_("VAT rate (%)"), scale=RATE_SCALE, default=20)
    # Metered lines bill the usage recorded before the invoice date (in arrears); ``tiers``
    # is ``[[up_to | null, unit_price, flat_fee], …]`` for tiered and volume pricing.
    pricing = models.CharField(
        _("pricing"), max_length=10, choices=Pricing.choices, default=Pricing.FIXED
    )
    metric = models.CharField(_("usage metric"), max_length=50, blank=True)
    tiers = models.JSONField(default=list, blank=True)

    class Meta:
        abstract = True


class PlanLine(LineFields):
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="lines")

    class Meta:
        ordering = ["position"]


class Subscription(UUIDModel, ScheduleFields):
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="subscriptions"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True)
    name = models.CharField(_("name"), max_length=200)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=SubscriptionStatus.choices,
        default=SubscriptionStatus.ACTIVE,
    )
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    start_date = models.DateField(_("start date"))
    trial_end = models.DateField(_("trial ends"), null=True, blank=True)
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    max_periods = models.PositiveIntegerField(_("number of invoices"), null=True, blank=True)
    pauses = models.JSONField(default=list, blank=True)  # [[from, until | null], …] ISO dates
    issue_mode = models.CharField(
        _("invoices"), max_length=10, choices=IssueMode.choices, default=IssueMode.ISSUE
    )
    proration_mode = models.CharField(
        _("mid-period changes"),
        max_length=15,
        choices=ProrationMode.choices,
        default=ProrationMode.INVOICE_NOW,
    )
    send_email = models.BooleanField(_("send by e-mail"), default=True)
    owner_email = models.EmailField(_("copy to (sales rep)"), blank=True)
    auto_pay = models.CharField(
        _("automatic payment"), max_length=4, choices=AutoPay.choices, default=AutoPay.NONE
    )
    # Billing state, moved forward in the transaction that bills a period.
    last_period_start = models.DateField(null=True, blank=True)
    last_period_end = models.DateField(null=True, blank=True)
    next_invoice_date = models.DateField(null=True, blank=True)  # NULL: nothing more to bill
    periods_billed = models.PositiveIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    cancelled_at = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "next_invoice_date"]),
            models.Index(fields=["organization", "status"]),
        ]

    def __str__(self) -> str:
        return self.name


class SubscriptionLine(LineFields):
    """A line version, valid on ``[starts_on, ends_on)`` (NULL: unbounded): a change ends
    the current versions and starts new ones, so each period bills what applied, by day."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="lines")
    discount_percent = ScaledDecimalField(_("discount (%)"), scale=RATE_SCALE, default=0)
    discount_until = models.DateField(_("discount until"), null=True, blank=True)
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["position"]


class PendingCharge(models.Model):
    """A prorated charge waiting for the next invoice (proration mode « next invoice »)."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="pending_charges"
    )
    description = models.CharField(max_length=500)
    amount = ScaledDecimalField(scale=MONEY_SCALE)
    vat_category = models.CharField(max_length=2, default="S")
    vat_rate = ScaledDecimalField(scale=RATE_SCALE, default=20)
    billed_in = models.ForeignKey("BillingPeriod", on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


class RunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")


class SubscriptionAlert(models.Model):
    """An alert sent to the subscription's owner, once per (subscription, kind, period)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=10)  # renewal | end
    period_start = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "kind", "period_start"], name="one_alert_per_period"
            )
        ]


class BillingRun(UUIDModel):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="billing_runs"
    )
    run_date = models.DateField(_("date"))
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    issued = models.PositiveIntegerField(default=0)
    drafts = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    caught_up = models.PositiveIntegerField(default=0)  # periods due before the run date
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at"]


class PeriodStatus(models.TextChoices):
    ISSUED = "issued", _("Issued")
    DRAFT = "draft", _("Draft")
    FAILED = "failed", _("Failed")
    EMPTY = "empty", _("Nothing to bill")  # a closing usage period without usage


class BillingPeriod(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="billed_periods"
    )
    period_start = models.DateField()
    period_end = models.DateField()
    index = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=PeriodStatus.choices)
    invoice = models.OneToOneField(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="billing_period"
    )
    run = models.ForeignKey(BillingRun, on_delete=models.SET_NULL, null=True, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    # invoices issued for mid-period increases of this period (ids), credited in turn when
    # the subscription is cancelled immediately
    adjustment_invoices = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start"], name="one_invoice_per_period"
            )
        ]
        indexes = [models.Index(fields=["organization", "status"])]


class UsageRecord(models.Model):
    """Metered usage posted through the API, idempotent by the client's id."""

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="usage")
    client_id = models.CharField(max_length=100)
    metric = models.CharField(max_length=50, blank=True)
    quantity = ScaledDecimalField(scale=QUANTITY_SCALE)
    occurred_on = models.DateField()
    billed_in = models.ForeignKey(
        "BillingPeriod", on_delete=models.SET_NULL, null=True, blank=True, related_name="usage"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "client_id"], name="usage_unique_client_id"
            )
        ]
