"""Payments, their allocations to invoices, refunds, online checkouts and provider events.

Tables and constraints only; the rules live in ``services``. An allocation is never
deleted: unallocating stamps it (``reversed_at``) so the history stays readable.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from facturo.customers.models import Customer
from facturo.foundation.fields import MONEY_SCALE, ScaledDecimalField
from facturo.foundation.models import UUIDModel
from facturo.invoicing.models import Invoice
from facturo.organizations.models import Organization


class Method(models.TextChoices):
    TRANSFER = "transfer", _("Bank transfer")
    CARD = "card", _("Card")
    SEPA_DEBIT = "sepa_debit", _("SEPA direct debit")
    CHEQUE = "cheque", _("Cheque")
    CASH = "cash", _("Cash")
    OTHER = "other", _("Other")


class PaymentStatus(models.TextChoices):
    # A SEPA direct debit sent to the bank: allocated, until settled or returned.
    PENDING = "pending", _("Pending")
    RECEIVED = "received", _("Received")
    RETURNED = "returned", _("Returned")


class Payment(UUIDModel):
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="payments"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    method = models.CharField(_("method"), max_length=20, choices=Method.choices)
    status = models.CharField(
        max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.RECEIVED
    )
    received_on = models.DateField(_("date"))
    amount = ScaledDecimalField(_("amount"), scale=MONEY_SCALE)
    currency = models.CharField(_("currency"), max_length=3)
    fees = ScaledDecimalField(_("fees"), scale=MONEY_SCALE, default=0)
    payer = models.CharField(_("payer"), max_length=200, blank=True)
    reference = models.CharField(_("reference"), max_length=200, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    # NULL when none: the unique constraint must ignore manual payments.
    provider_reference = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    return_reason = models.CharField(_("return reason"), max_length=300, blank=True)
    returned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_on", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "provider", "provider_reference"],
                condition=models.Q(provider_reference__isnull=False),
                name="payment_unique_provider_reference",
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_positive"),
            models.CheckConstraint(condition=models.Q(fees__gte=0), name="payment_fees_positive"),
        ]
        indexes = [models.Index(fields=["organization", "customer"])]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} {self.received_on}"


class Allocation(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="allocations")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="allocations")
    amount = ScaledDecimalField(_("amount"), scale=MONEY_SCALE)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=255, blank=True)
    reversed_at = models.DateTimeField(null=True, blank=True)
    reversed_by = models.CharField(max_length=255, blank=True)
    reversal_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="allocation_positive"),
        ]
        indexes = [models.Index(fields=["invoice", "reversed_at"])]


class Refund(UUIDModel):
    """Money paid back to the customer out of a payment's unallocated part (their credit),
    usually because of a credit note."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    credit_note = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds"
    )
    amount = ScaledDecimalField(_("amount"), scale=MONEY_SCALE)
    refunded_on = models.DateField(_("date"))
    method = models.CharField(_("method"), max_length=20, choices=Method.choices)
    reference = models.CharField(_("reference"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_positive"),
        ]


class ProviderSettings(models.Model):
    """An online payment provider's account for one organization (Stripe today)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    provider = models.CharField(max_length=20)
    enabled = models.BooleanField(default=True)
    secret_key = models.CharField(max_length=255)
    # The current signing secret, then the previous one while Stripe rolls secrets over.
    webhook_secret = models.CharField(max_length=255)
    previous_webhook_secret = models.CharField(max_length=255, blank=True)
    # Public, unguessable part of the webhook URL that names the organization.
    webhook_token = models.CharField(max_length=64, unique=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "provider"], name="provider_settings_unique"
            )
        ]


class CheckoutLink(UUIDModel):
    """A hosted payment page for an invoice, created lazily; its id is the idempotency key
    sent to the provider, so a retry never creates a second session."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="checkouts")
    provider = models.CharField(max_length=20)
    amount = ScaledDecimalField(scale=MONEY_SCALE)
    currency = models.CharField(max_length=3)
    external_id = models.CharField(max_length=255, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Set once the provider was told to expire the session (the invoice no longer owes its
    # amount): a closed link is never handed out again.
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class ProviderEvent(models.Model):
    """Every webhook event accepted, once: the unique key makes redelivery harmless."""

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    event_type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="provider_event_unique")
        ]


# --- SEPA direct debit -----------------------------------------------------------------------


class SepaCreditor(models.Model):
    """The organization as a SEPA direct debit creditor: its identifier (ICS in France) and
    the account the debits are paid into."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="sepa_creditor"
    )
    identifier = models.CharField(_("creditor identifier (ICS)"), max_length=35)
    name = models.CharField(_("creditor name"), max_length=70)
    iban = models.CharField(_("IBAN"), max_length=34)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    updated_at = models.DateTimeField(auto_now=True)


class MandateKind(models.TextChoices):
    RECURRENT = "recurrent", _("Recurrent")
    ONE_OFF = "one_off", _("One-off")


class MandateSource(models.TextChoices):
    PORTAL = "portal", _("Signed in the customer portal")
    PAPER = "paper", _("Recorded from a signed paper")


class Mandate(UUIDModel):
    """A customer's authorisation to debit their account. Revoked means never collected
    again; the sequence type (FRST/RCUR) follows from its collections."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="mandates")
    reference = models.CharField(_("mandate reference (UMR)"), max_length=35)
    kind = models.CharField(max_length=10, choices=MandateKind.choices)
    source = models.CharField(max_length=10, choices=MandateSource.choices)
    debtor_name = models.CharField(_("account holder"), max_length=70)
    iban = models.CharField(_("IBAN"), max_length=34)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    signed_on = models.DateField(_("signature date"))
    signed_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_on = models.DateField(_("revoked on"), null=True, blank=True)
    revocation_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-signed_on", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "reference"], name="mandate_unique_reference"
            )
        ]


class DebitBatch(UUIDModel):
    """One pain.008 file as generated (its bytes kept, so a download is the same file)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    message_id = models.CharField(max_length=35)
    collection_date = models.DateField(_("collection date"))
    count = models.PositiveIntegerField()
    total = ScaledDecimalField(scale=MONEY_SCALE)
    currency = models.CharField(max_length=3, default="EUR")
    filename = models.CharField(max_length=100)
    version = models.CharField(max_length=20, default="pain.008.001.02")
    content = models.BinaryField()
    settled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "message_id"], name="debit_batch_unique_message"
            )
        ]


class DebitItem(models.Model):
    """One transaction of a batch: a mandate debited for one or several invoices, and the
    pending payment that stands for it."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    batch = models.ForeignKey(DebitBatch, on_delete=models.PROTECT, related_name="items")
    mandate = models.ForeignKey(Mandate, on_delete=models.PROTECT, related_name="debits")
    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="debit")
    # Exactly the EndToEndId written in the file, unique per organization, so a return
    # (pain.002, camt.054) names one debit.
    end_to_end_id = models.CharField(max_length=35)
    sequence_type = models.CharField(max_length=4)
    amount = ScaledDecimalField(scale=MONEY_SCALE)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "end_to_end_id"], name="debit_item_unique_e2e"
            )
        ]


# --- settings, pre-notifications, auto-pay ---------------------------------------------------


class NotifyTarget(models.TextChoices):
    NONE = "none", _("Nobody")
    ISSUER = "issuer", _("The member who issued the invoice")
    ADDRESS = "address", _("A fixed address")


class PainVersion(models.TextChoices):
    V02 = "pain.008.001.02", "pain.008.001.02"
    V08 = "pain.008.001.08", "pain.008.001.08"


class PaymentSettings(models.Model):
    """An organization's payment preferences (one row, created on first save)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="payment_settings"
    )
    notify_on_payment = models.CharField(
        _("notify when a payment is received"),
        max_length=10,
        choices=NotifyTarget.choices,
        default=NotifyTarget.ISSUER,
    )
    notify_address = models.EmailField(_("notification address"), blank=True)
    prenotification_days = models.PositiveSmallIntegerField(
        _("SEPA pre-notification (days before collection)"), default=14
    )
    pain_version = models.CharField(
        _("SEPA file version"),
        max_length=20,
        choices=PainVersion.choices,
        default=PainVersion.V02,
    )


class AutoPayState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    COLLECTED = "collected", _("In a SEPA batch")
    LINK_SENT = "link_sent", _("Payment link sent")
    SKIPPED = "skipped", _("Skipped")


class AutoPayRequest(models.Model):
    """A subscription invoice to collect automatically: by the next SEPA batch, or by
    e-mailing a card payment link (one row per invoice: the event is handled once)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    invoice = models.OneToOneField(Invoice, on_delete=models.CASCADE, related_name="auto_pay")
    method = models.CharField(max_length=10)  # "sepa" or "card"
    state = models.CharField(
        max_length=10, choices=AutoPayState.choices, default=AutoPayState.QUEUED
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "method", "state"])]
