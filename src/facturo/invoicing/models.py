from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from facturo.catalog.models import NATURE_CHOICES, UNIT_CHOICES, VAT_CATEGORY_CHOICES, Product
from facturo.core.terms import TermsKind
from facturo.customers.models import Customer
from facturo.foundation.fields import (
    MONEY_SCALE,
    PRICE_SCALE,
    QUANTITY_SCALE,
    RATE_SCALE,
    ScaledDecimalField,
)
from facturo.foundation.models import UUIDModel
from facturo.organizations.models import DocumentKind, NumberingSeries, Organization


class Status(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ISSUED = "issued", _("Issued")
    SENT = "sent", _("Sent")
    PARTIALLY_PAID = "partially_paid", _("Partially paid")
    PAID = "paid", _("Paid")
    CREDITED = "credited", _("Credited")


class Invoice(UUIDModel):
    """An invoice, credit note or deposit invoice. Drafts are editable and have no number;
    once issued, the number, the snapshot and the totals are frozen (a database trigger
    refuses any change) and only the workflow status moves on."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="invoices"
    )
    kind = models.CharField(
        _("kind"), max_length=20, choices=DocumentKind.choices, default=DocumentKind.INVOICE
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.DRAFT
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    language = models.CharField(_("language"), max_length=8, default="fr")
    issue_date = models.DateField(_("issue date"), null=True, blank=True)
    due_date = models.DateField(_("due date"), null=True, blank=True)
    payment_terms_kind = models.CharField(
        _("payment terms"),
        max_length=32,
        blank=True,
        choices=[(k.value, k.value) for k in TermsKind],
    )
    payment_terms_days = models.PositiveSmallIntegerField(null=True, blank=True)
    purchase_order = models.CharField(_("purchase order"), max_length=100, blank=True)
    buyer_reference = models.CharField(_("buyer reference"), max_length=100, blank=True)
    delivery_date = models.DateField(_("delivery date"), null=True, blank=True)
    document_discount_percent = ScaledDecimalField(
        _("discount on the whole document (%)"), scale=RATE_SCALE, default=0
    )
    free_text = models.TextField(_("note to the customer"), blank=True)
    credited_invoice = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes"
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    series = models.ForeignKey(NumberingSeries, on_delete=models.PROTECT, null=True, blank=True)
    # NULL (not "") for drafts: the unique constraint on numbers must ignore them.
    number = models.CharField(_("number"), max_length=35, null=True, blank=True)  # noqa: DJ001
    period_key = models.CharField(max_length=7, blank=True)
    sequence_value = models.PositiveBigIntegerField(null=True, blank=True)
    series_position = models.PositiveBigIntegerField(null=True, blank=True)
    snapshot = models.JSONField(null=True, blank=True)
    chain_previous_hash = models.CharField(max_length=64, blank=True)
    chain_hash = models.CharField(max_length=64, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    issued_by = models.CharField(max_length=255, blank=True)
    total_excl_vat = ScaledDecimalField(scale=MONEY_SCALE, null=True, blank=True)  # type: ignore[misc]
    total_vat = ScaledDecimalField(scale=MONEY_SCALE, null=True, blank=True)  # type: ignore[misc]
    total_incl_vat = ScaledDecimalField(scale=MONEY_SCALE, null=True, blank=True)  # type: ignore[misc]
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "number"],
                condition=models.Q(number__isnull=False),
                name="invoice_unique_number",
            ),
            models.UniqueConstraint(
                fields=["series", "period_key", "sequence_value"],
                condition=models.Q(sequence_value__isnull=False),
                name="invoice_unique_sequence",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(status="draft", number__isnull=True)
                    | (~models.Q(status="draft") & models.Q(number__isnull=False))
                ),
                name="invoice_number_iff_issued",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status"]),
            models.Index(fields=["organization", "issue_date"]),
        ]

    def __str__(self) -> str:
        return self.number or f"draft {str(self.pk)[:8]}"

    @property
    def is_draft(self) -> bool:
        return self.status == Status.DRAFT


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    product = models.ForeignKey(Product, on_delete=models.SET_NULL, null=True, blank=True)
    description = models.CharField(_("description"), max_length=500)
    quantity = ScaledDecimalField(_("quantity"), scale=QUANTITY_SCALE)
    unit_code = models.CharField(_("unit"), max_length=3, choices=UNIT_CHOICES, default="C62")
    unit_price = ScaledDecimalField(_("unit price excl. VAT"), scale=PRICE_SCALE)
    discount_percent = ScaledDecimalField(_("discount (%)"), scale=RATE_SCALE, default=0)
    vat_category = models.CharField(max_length=2, choices=VAT_CATEGORY_CHOICES, default="S")
    vat_rate = ScaledDecimalField(_("VAT rate (%)"), scale=RATE_SCALE, default=20)
    nature = models.CharField(max_length=10, choices=NATURE_CHOICES, default="services")
    account_code = models.CharField(max_length=20, blank=True)
    deducted_invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="deducted_in"
    )

    class Meta:
        ordering = ["position"]
