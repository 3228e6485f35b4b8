"""Dunning: policies and their steps, assignments, pauses and disputes, reminders sent (one
per (document, step), enforced by the database), the messages they went out in, tasks, and
the late-interest rate table an administrator can extend.

Tables and constraints only; the rules live in ``services`` and ``facturo.core.dunning``.
"""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.utils.translation import gettext_lazy as _

from facturo.customers.models import Customer
from facturo.foundation.fields import MONEY_SCALE, RATE_SCALE, ScaledDecimalField
from facturo.foundation.models import UUIDModel
from facturo.invoicing.models import Invoice
from facturo.organizations.models import Organization


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    LETTER = "letter", _("Letter (PDF to print)")


class Segment(models.TextChoices):
    COMPANY = "company", _("Companies (B2B)")
    PERSON = "person", _("Individuals (B2C)")


class DunningPolicy(UUIDModel):
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="dunning_policies"
    )
    name = models.CharField(_("name"), max_length=100)
    is_default = models.BooleanField(_("default policy"), default=False)
    group_per_customer = models.BooleanField(
        _("one reminder per customer listing all overdue invoices"), default=False
    )
    office_start = models.TimeField(_("office hours from"), default=dt.time(9, 0))
    office_end = models.TimeField(_("office hours to"), default=dt.time(18, 0))
    office_days = models.CharField(_("working days (0 = Monday)"), max_length=7, default="01234")
    copy_to = models.CharField(
        _("copy to (sales rep, accounting; comma-separated)"), max_length=500, blank=True
    )
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="dunning_policy_unique_name"
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(is_default=True, archived=False),
                name="dunning_policy_one_default",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DunningStep(UUIDModel):
    """One step of a policy: when (days from the due date), how, what it says, what it does.
    A step a reminder was sent for is never deleted (it is archived) so the history stays."""

    policy = models.ForeignKey(DunningPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(_("name"), max_length=100)
    offset_days = models.SmallIntegerField(_("days after the due date"))
    channel = models.CharField(
        _("channel"), max_length=10, choices=Channel.choices, default=Channel.EMAIL
    )
    subject_fr = models.CharField(_("subject (French)"), max_length=300, blank=True)
    body_fr = models.TextField(_("text (French)"))
    subject_en = models.CharField(_("subject (English)"), max_length=300, blank=True)
    body_en = models.TextField(_("text (English)"))
    to_customer_copies = models.BooleanField(
        _("copy the customer's accounting and copy addresses"), default=True
    )
    copy_internal = models.BooleanField(_("copy the policy's internal addresses"), default=False)
    add_interest = models.BooleanField(
        _("invoice late interest and the 40 € indemnity (B2B)"), default=False
    )
    suspend_subscriptions = models.BooleanField(_("suspend subscriptions"), default=False)
    task_title = models.CharField(_("create a task"), max_length=200, blank=True)
    task_assignee = models.CharField(_("task for"), max_length=200, blank=True)
    archived = models.BooleanField(default=False)

    class Meta:
        ordering = ["policy", "offset_days"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "offset_days"],
                condition=models.Q(archived=False),
                name="dunning_step_unique_offset",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.offset_days:+d})"


class PolicyAssignment(models.Model):
    """Which policy applies: a customer's own assignment wins over its segment's."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    policy = models.ForeignKey(DunningPolicy, on_delete=models.CASCADE, related_name="assignments")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, null=True, blank=True)
    segment = models.CharField(max_length=10, choices=Segment.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "customer"],
                condition=models.Q(customer__isnull=False),
                name="dunning_assignment_unique_customer",
            ),
            models.UniqueConstraint(
                fields=["organization", "segment"],
                condition=~models.Q(segment=""),
                name="dunning_assignment_unique_segment",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(customer__isnull=False, segment="")
                    | models.Q(customer__isnull=True) & ~models.Q(segment="")
                ),
                name="dunning_assignment_customer_xor_segment",
            ),
        ]


class InvoiceDunning(models.Model):
    """Per-invoice settings: a policy override and the dispute flag."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    invoice = models.OneToOneField(Invoice, on_delete=models.CASCADE, related_name="dunning")
    policy = models.ForeignKey(DunningPolicy, on_delete=models.PROTECT, null=True, blank=True)
    disputed = models.BooleanField(_("disputed"), default=False)
    dispute_reason = models.CharField(_("dispute reason"), max_length=300, blank=True)
    disputed_at = models.DateTimeField(null=True, blank=True)


class Pause(UUIDModel):
    """Dunning stopped for a customer or an invoice until ``until`` (inclusive)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, null=True, blank=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, null=True, blank=True)
    until = models.DateField(_("until"))
    reason = models.CharField(_("reason"), max_length=300)
    created_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(customer__isnull=False, invoice__isnull=True)
                | models.Q(customer__isnull=True, invoice__isnull=False),
                name="dunning_pause_customer_xor_invoice",
            ),
        ]


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")  # e-mail in the outbox / letter ready to print
    SENT = "sent", _("Sent")
    CANCELLED = "cancelled", _("Cancelled before sending")


class ReminderMessage(UUIDModel):
    """What went out (or was printed): the exact text, and the letter's PDF."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    language = models.CharField(max_length=8)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    pdf = models.BinaryField(null=True, blank=True)
    outbox_email_id = models.UUIDField(null=True, blank=True, db_index=True)
    status = models.CharField(
        max_length=10, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    cancel_reason = models.CharField(max_length=300, blank=True)
    total_due = ScaledDecimalField(scale=MONEY_SCALE)
    currency = models.CharField(max_length=3)
    run_date = models.DateField()
    scheduled_for = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class Reminder(models.Model):
    """One reminder for one document at one step — ever (unique constraint)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="reminders")
    step = models.ForeignKey(DunningStep, on_delete=models.PROTECT, related_name="reminders")
    offset_days = models.SmallIntegerField()  # the step's offset when sent
    message = models.ForeignKey(ReminderMessage, on_delete=models.PROTECT, related_name="reminders")
    amount_due = ScaledDecimalField(scale=MONEY_SCALE)
    days_late = models.IntegerField()
    penalty_invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "step"], name="reminder_once_per_step"),
        ]
        indexes = [models.Index(fields=["organization", "created_at"])]


class DunningTask(UUIDModel):
    """A to-do for a person, created by a step ("call the customer")."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True)
    reminder = models.OneToOneField(
        Reminder, on_delete=models.PROTECT, null=True, blank=True, related_name="task"
    )
    title = models.CharField(_("task"), max_length=200)
    assignee = models.CharField(_("for"), max_length=200, blank=True)
    due_on = models.DateField(_("due on"))
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.CharField(max_length=255, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["done_at", "due_on", "created_at"]


class InterestRate(models.Model):
    """A half-year's rates (added by an administrator): they replace or extend the table
    shipped in ``facturo.core.interest.RATE_TABLE``."""

    start = models.DateField(_("half-year starting"), unique=True)
    ecb_refinancing = ScaledDecimalField(_("ECB refinancing rate (%)"), scale=RATE_SCALE)
    legal = ScaledDecimalField(_("legal interest rate, other cases (%)"), scale=RATE_SCALE)
    source = models.CharField(_("source"), max_length=200, blank=True)

    class Meta:
        ordering = ["start"]

    def __str__(self) -> str:
        return f"{self.start}: ECB {self.ecb_refinancing} %, legal {self.legal} %"
