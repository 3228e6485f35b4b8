"""Bank accounts, imported statement lines and how each line was reconciled.

Tables and constraints only; the rules live in ``services``. The unique constraint
``(account, fingerprint)`` on ``BankLine`` is what makes imports idempotent (ADR 0008). A
match is never deleted: undoing it stamps ``undone_at`` so the history stays readable.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from facturo.customers.models import Customer
from facturo.foundation.fields import MONEY_SCALE, ScaledDecimalField
from facturo.foundation.models import UUIDModel
from facturo.organizations.models import Organization
from facturo.payments.models import Payment


class BankAccount(UUIDModel):
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="bank_accounts"
    )
    name = models.CharField(_("name"), max_length=100)
    iban = models.CharField(_("IBAN"), max_length=34)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    journal_code = models.CharField(_("journal code"), max_length=10, default="BQ1")
    ledger_account = models.CharField(_("ledger account"), max_length=20, default="5121")
    auto_confirm_threshold = models.PositiveSmallIntegerField(
        _("auto-confirm threshold"), default=90
    )
    write_off_account = models.CharField(_("write-off account"), max_length=20, default="658")
    write_off_max = ScaledDecimalField(
        _("largest write-off"), scale=MONEY_SCALE, default=Decimal("5.00")
    )
    fee_account = models.CharField(_("bank fee account"), max_length=20, default="627")
    # The CSV column mapping of this bank (``formats.statements.CsvMapping`` fields).
    csv_mapping = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "iban"], name="bank_account_unique_iban"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.iban})"


class StatementImport(UUIDModel):
    """One file (or one fetch of a live source) imported into an account."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, related_name="imports")
    source = models.CharField(max_length=30, default="file")
    filename = models.CharField(max_length=255, blank=True)
    format = models.CharField(max_length=40)
    sha256 = models.CharField(max_length=64)
    statement_ids = models.CharField(max_length=500, blank=True)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    opening_balance = ScaledDecimalField(scale=MONEY_SCALE, null=True, blank=True)  # type: ignore[misc]
    closing_balance = ScaledDecimalField(scale=MONEY_SCALE, null=True, blank=True)  # type: ignore[misc]
    balance_checked = models.BooleanField(default=False)
    new_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    matched_count = models.PositiveIntegerField(default=0)
    rejected = models.JSONField(default=list, blank=True)  # [{position, reason, raw}]
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]


class LineStatus(models.TextChoices):
    UNMATCHED = "unmatched", _("To reconcile")
    SUGGESTED = "suggested", _("To review")
    MATCHED = "matched", _("Reconciled")
    IGNORED = "ignored", _("Ignored")


class BankLine(UUIDModel):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, related_name="lines")
    statement_import = models.ForeignKey(
        StatementImport, on_delete=models.PROTECT, related_name="lines"
    )
    booking_date = models.DateField(_("date"))
    value_date = models.DateField(_("value date"), null=True, blank=True)
    amount = ScaledDecimalField(_("amount"), scale=MONEY_SCALE)  # signed: + credit
    currency = models.CharField(_("currency"), max_length=3)
    counterparty_name = models.CharField(_("counterparty"), max_length=140, blank=True)
    counterparty_iban = models.CharField(_("counterparty IBAN"), max_length=34, blank=True)
    remittance_unstructured = models.CharField(_("label"), max_length=500, blank=True)
    remittance_structured = models.CharField(_("reference"), max_length=35, blank=True)
    end_to_end_id = models.CharField(_("end-to-end id"), max_length=35, blank=True)
    bank_reference = models.CharField(_("bank reference"), max_length=100, blank=True)
    return_reason = models.CharField(max_length=4, blank=True)
    fingerprint = models.CharField(max_length=64)
    position = models.CharField(max_length=100, blank=True)
    status = models.CharField(
        max_length=12, choices=LineStatus.choices, default=LineStatus.UNMATCHED
    )
    # The engine's (or a rule's) proposal while the line waits in the review queue.
    suggestion = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["booking_date", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "fingerprint"], name="bank_line_unique_fingerprint"
            ),
            models.CheckConstraint(condition=~models.Q(amount=0), name="bank_line_amount_not_zero"),
        ]
        indexes = [
            models.Index(fields=["organization", "status"]),
            models.Index(fields=["account", "booking_date"]),
            models.Index(fields=["account", "end_to_end_id"]),
        ]

    @property
    def is_credit(self) -> bool:
        return self.amount > 0

    @property
    def label(self) -> str:
        return " ".join(
            t for t in (self.remittance_structured, self.remittance_unstructured) if t
        ).strip()


class MatchKind(models.TextChoices):
    PAYMENT = "payment", _("Customer payment")
    SETTLEMENT = "settlement", _("SEPA direct debit collected")
    RETURN = "return", _("Payment returned")
    REFUND = "refund", _("Refund")
    EXPENSE = "expense", _("Expense")
    FEE = "fee", _("Bank fee")


class BankMatch(UUIDModel):
    """How one bank line was reconciled (active until undone)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    line = models.ForeignKey(BankLine, on_delete=models.PROTECT, related_name="matches")
    kind = models.CharField(max_length=12, choices=MatchKind.choices)
    automatic = models.BooleanField(default=False)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=40, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    payments = models.ManyToManyField(Payment, through="MatchPayment", related_name="+")
    invoice_ids = models.JSONField(default=list, blank=True)
    refund_ids = models.JSONField(default=list, blank=True)  # payments.Refund paid by a debit
    write_off = ScaledDecimalField(scale=MONEY_SCALE, default=Decimal(0))
    ledger_account = models.CharField(max_length=20, blank=True)
    label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=255, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.CharField(max_length=255, blank=True)
    undo_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # At most one active reconciliation per line, whatever the race.
            models.UniqueConstraint(
                fields=["line"],
                condition=models.Q(undone_at__isnull=True),
                name="bank_match_one_active_per_line",
            ),
        ]


class MatchPayment(models.Model):
    match = models.ForeignKey(BankMatch, on_delete=models.PROTECT)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT)


class RuleAction(models.TextChoices):
    CONFIRM = "confirm", _("Confirm automatically")
    SUGGEST = "suggest", _("Suggest only")


class MatchRule(UUIDModel):
    """A user's rule: lines whose label / amount / counterparty fit go to a customer (their
    open invoices) or to a ledger account (expense, bank fee)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    account = models.ForeignKey(BankAccount, on_delete=models.CASCADE, null=True, blank=True)
    name = models.CharField(_("name"), max_length=100)
    label_contains = models.CharField(_("label contains"), max_length=100, blank=True)
    label_regex = models.CharField(_("label matches (regex)"), max_length=200, blank=True)
    counterparty_contains = models.CharField(_("counterparty contains"), max_length=100, blank=True)
    amount_min = ScaledDecimalField(scale=MONEY_SCALE, null=True, blank=True)  # type: ignore[misc]
    amount_max = ScaledDecimalField(scale=MONEY_SCALE, null=True, blank=True)  # type: ignore[misc]
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, null=True, blank=True)
    ledger_account = models.CharField(_("ledger account"), max_length=20, blank=True)
    target_kind = models.CharField(
        max_length=12, choices=MatchKind.choices, default=MatchKind.PAYMENT
    )
    action = models.CharField(max_length=10, choices=RuleAction.choices, default=RuleAction.SUGGEST)
    priority = models.PositiveSmallIntegerField(default=100)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["priority", "created_at"]


class LearnedCounterparty(models.Model):
    """A counterparty (IBAN or normalised name) confirmed by hand for a customer: next time
    its lines are matched to that customer."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    key = models.CharField(max_length=140)  # "iban:FR76…" or "name:ACME"
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    times = models.PositiveIntegerField(default=1)
    last_used = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "key", "customer"], name="learned_counterparty_unique"
            )
        ]
