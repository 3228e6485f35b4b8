"""Ledger tables: settings, journals, accounts, mapping rules, fiscal years and the posted
entries (append-only, balanced, hash-chained; see ``triggers`` and ADR 9/10).

Amounts are exact scaled integers (``ScaledDecimalField``), so the database triggers that
check the balance of an entry sum integers.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from facturo.foundation.fields import MONEY_SCALE, ScaledDecimalField
from facturo.foundation.models import UUIDModel
from facturo.organizations.models import Organization


class LedgerState(models.Model):
    """One row per organization: the head of the entries' hash chain, the next entry
    number, the date up to which the books are closed and the settings' version (cache
    key). Every posting locks this row, so numbers and the chain follow validation order."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="ledger_state"
    )
    last_number = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, blank=True)
    locked_through = models.DateField(null=True, blank=True)
    settings_version = models.PositiveIntegerField(default=1)
    last_lettering = models.PositiveIntegerField(default=0)


class AccountingSettings(models.Model):
    """The organization's account numbers (``core.ledger_chart.LedgerSettings`` fields that
    differ from the defaults) and options."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="accounting_settings"
    )
    numbers = models.JSONField(default=dict, blank=True)
    customer_type_suffixes = models.JSONField(default=dict, blank=True)
    fec_encoding = models.CharField(max_length=12, default="iso-8859-15")
    fec_separator = models.CharField(max_length=1, default="\t")
    updated_at = models.DateTimeField(auto_now=True)


class FiscalYear(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="fiscal_years"
    )
    start = models.DateField(_("start"))
    end = models.DateField(_("end"))
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=255, blank=True)
    # Totals per account at the closing, the chain's last number and hash, signed (HMAC).
    closing_summary = models.JSONField(null=True, blank=True)
    closing_signature = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "start"], name="fiscal_year_start"),
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="fiscal_year_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d} – {self.end:%Y-%m-%d}"


class JournalKind(models.TextChoices):
    SALES = "sales", _("Sales")
    BANK = "bank", _("Bank")
    MISC = "misc", _("Miscellaneous")


class Journal(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="journals"
    )
    code = models.CharField(_("code"), max_length=8)
    label = models.CharField(_("label"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=JournalKind.choices)
    # Bank journals: the bank account (banking app) and its ledger account (512…).
    bank_account_id = models.UUIDField(null=True, blank=True)
    account = models.CharField(_("account"), max_length=20, blank=True)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="journal_unique_code")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.label}"


class Account(models.Model):
    """An account of the organization's chart (label editable; numbers PCG-shaped)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="ledger_accounts"
    )
    number = models.CharField(_("number"), max_length=20)
    label = models.CharField(_("label"), max_length=200)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="account_unique")
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.label}"


class RevenueRule(models.Model):
    """A mapping rule (``core.ledger_chart.RevenueRule``): empty criteria match anything."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="revenue_rules"
    )
    position = models.PositiveIntegerField(default=0)
    account = models.CharField(_("account"), max_length=20)
    product_code = models.CharField(_("product code"), max_length=50, blank=True)
    category = models.CharField(_("category"), max_length=50, blank=True)
    nature = models.CharField(_("nature"), max_length=10, blank=True)
    customer_type = models.CharField(_("customer type"), max_length=10, blank=True)
    vat_category = models.CharField(_("VAT category"), max_length=2, blank=True)

    class Meta:
        ordering = ["position", "id"]


class Entry(UUIDModel):
    """A posted journal entry. Never updated nor deleted (triggers); a correction is a
    reversing entry. ``number`` is continuous per organization in validation order and
    ``hash`` chains every entry to the previous one."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    number = models.PositiveBigIntegerField()
    journal_code = models.CharField(max_length=8)
    journal_label = models.CharField(max_length=100)
    date = models.DateField()
    label = models.CharField(max_length=200)
    piece_ref = models.CharField(max_length=100)
    piece_date = models.DateField()
    currency = models.CharField(max_length=3, default="EUR")
    source_kind = models.CharField(max_length=30)
    source_id = models.CharField(max_length=64, blank=True)
    reverses = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversals"
    )
    total = ScaledDecimalField(scale=MONEY_SCALE)
    validated_on = models.DateField()
    posted_at = models.DateTimeField()
    posted_by = models.CharField(max_length=255, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="entry_unique_number"),
            models.CheckConstraint(condition=models.Q(total__gt=0), name="entry_total_positive"),
        ]
        indexes = [
            models.Index(fields=["organization", "date"]),
            models.Index(fields=["organization", "source_kind", "source_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.journal_code} {self.number} {self.piece_ref}"


class EntryLine(models.Model):
    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="lines")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    position = models.PositiveSmallIntegerField()
    account = models.CharField(max_length=20)
    account_label = models.CharField(max_length=200)
    auxiliary = models.CharField(max_length=30, blank=True)
    auxiliary_label = models.CharField(max_length=200, blank=True)
    label = models.CharField(max_length=200, blank=True)
    debit = ScaledDecimalField(scale=MONEY_SCALE, default=0)
    credit = ScaledDecimalField(scale=MONEY_SCALE, default=0)
    # The invoice a customer-account line belongs to (lettering, aged balance).
    invoice_id = models.UUIDField(null=True, blank=True)
    # The only columns that change after posting (FEC EcritureLet/DateLet).
    lettering = models.CharField(max_length=10, blank=True)
    lettering_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["entry", "position"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(debit__gte=0, credit__gte=0)
                & (models.Q(debit=0, credit__gt=0) | models.Q(credit=0, debit__gt=0)),
                name="entry_line_one_side",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "account"]),
            models.Index(fields=["organization", "invoice_id"]),
        ]


class InvoiceLedger(models.Model):
    """What the ledger knows of an invoice (or deposit invoice) it posted: the amount owed
    (less credit notes posted), its VAT on receipts per rate still tied to it, and what was
    allocated to it. Allocations use it to release VAT on receipts (ADR 9)."""

    invoice_id = models.UUIDField(primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    number = models.CharField(max_length=35)
    issue_date = models.DateField()
    customer_code = models.CharField(max_length=30)
    customer_name = models.CharField(max_length=200)
    total = ScaledDecimalField(scale=MONEY_SCALE)
    pending_vat = models.JSONField(default=dict, blank=True)  # {rate: amount} as strings
    paid = ScaledDecimalField(scale=MONEY_SCALE, default=0)


class PostedAllocation(models.Model):
    """A payments allocation posted to the ledger (and its undoing)."""

    allocation_id = models.BigIntegerField(primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    invoice_id = models.UUIDField()
    amount = ScaledDecimalField(scale=MONEY_SCALE)
    reversed = models.BooleanField(default=False)


class Unposted(models.Model):
    """A business event the ledger could not post (e.g. a document in a foreign currency):
    shown on the accounting page so that the accountant books it by hand."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    source_kind = models.CharField(max_length=30)
    source_id = models.CharField(max_length=64)
    reference = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class ExportJob(UUIDModel):
    """An export prepared in the background (API), kept for download."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    kind = models.CharField(max_length=20)  # fec | journal_csv | journal_xlsx | …
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, default="pending")  # pending | done | failed
    error = models.TextField(blank=True)
    filename = models.CharField(max_length=200, blank=True)
    content = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
