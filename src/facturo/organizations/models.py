from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from facturo.core.numbering import Reset
from facturo.core.terms import TermsKind
from facturo.foundation.fields import RATE_SCALE, ScaledDecimalField
from facturo.foundation.models import UUIDModel


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Administrator")
    ACCOUNTANT = "accountant", _("Accountant")
    SALES = "sales", _("Sales")
    READ_ONLY = "read_only", _("Read-only")


class VatRegime(models.TextChoices):
    NORMAL = "normal", _("Normal (VAT charged)")
    FRANCHISE = "franchise", _("Franchise en base (no VAT, art. 293 B CGI)")


class Organization(UUIDModel):
    """A company using facturo: the tenant every business row belongs to."""

    name = models.CharField(_("trade name"), max_length=200)
    legal_name = models.CharField(_("legal name"), max_length=200)
    legal_form = models.CharField(_("legal form"), max_length=50, blank=True)
    share_capital = models.CharField(_("share capital"), max_length=50, blank=True)
    siren = models.CharField(_("SIREN"), max_length=9, blank=True)
    siret = models.CharField(_("SIRET"), max_length=14, blank=True)
    vat_number = models.CharField(_("VAT number"), max_length=20, blank=True)
    rcs = models.CharField(_("RCS registration"), max_length=100, blank=True)
    address_line1 = models.CharField(_("address"), max_length=200)
    address_line2 = models.CharField(_("address (line 2)"), max_length=200, blank=True)
    postcode = models.CharField(_("postcode"), max_length=20)
    city = models.CharField(_("city"), max_length=100)
    country_code = models.CharField(_("country"), max_length=2, default="FR")
    email = models.EmailField(_("billing e-mail"), blank=True)
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    iban = models.CharField(_("IBAN"), max_length=34, blank=True)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    logo = models.BinaryField(_("logo"), null=True, blank=True, editable=True)
    logo_mime = models.CharField(max_length=50, blank=True)
    accent_color = models.CharField(_("accent colour"), max_length=7, default="#1f4e79")
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    default_language = models.CharField(_("default language"), max_length=8, default="fr")
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Paris")
    payment_terms_kind = models.CharField(
        _("payment terms"),
        max_length=32,
        choices=[(k.value, k.value) for k in TermsKind],
        default=TermsKind.NET.value,
    )
    payment_terms_days = models.PositiveSmallIntegerField(_("payment terms (days)"), default=30)
    late_penalty_rate = ScaledDecimalField(  # type: ignore[misc]
        _("late penalty rate (% per year)"),
        scale=RATE_SCALE,
        null=True,
        blank=True,
        help_text=_("Empty: the legal rate (ECB refinancing rate + 10 points)."),
    )
    early_payment_discount = models.CharField(
        _("early payment discount terms"),
        max_length=200,
        blank=True,
        help_text=_("Empty: “No discount for early payment.”"),
    )
    vat_regime = models.CharField(
        _("VAT regime"), max_length=20, choices=VatRegime.choices, default=VatRegime.NORMAL
    )
    vat_on_debits = models.BooleanField(_("VAT on debits option"), default=False)
    smtp_host = models.CharField(_("SMTP server"), max_length=200, blank=True)
    smtp_port = models.PositiveIntegerField(_("SMTP port"), null=True, blank=True)
    smtp_user = models.CharField(_("SMTP user"), max_length=200, blank=True)
    smtp_password = models.CharField(_("SMTP password"), max_length=200, blank=True)
    smtp_starttls = models.BooleanField(_("SMTP STARTTLS"), default=False)
    email_from = models.EmailField(_("sender address"), blank=True)
    accounting_copy_email = models.EmailField(_("accounting copy"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique")
        ]


class DocumentKind(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    CREDIT_NOTE = "credit_note", _("Credit note")
    DEPOSIT = "deposit", _("Deposit invoice")


class NumberingSeries(UUIDModel):
    """A legal numbering series; its row is locked while a number is allocated."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="series")
    kind = models.CharField(_("document kind"), max_length=20, choices=DocumentKind.choices)
    name = models.CharField(_("name"), max_length=100)
    pattern = models.CharField(_("pattern"), max_length=60)
    reset = models.CharField(
        _("reset"),
        max_length=10,
        choices=[(r.value, r.value) for r in Reset],
        default=Reset.YEARLY.value,
    )
    is_default = models.BooleanField(default=True)
    last_issue_date = models.DateField(null=True, blank=True)
    last_hash = models.CharField(max_length=64, blank=True)  # head of the issued-document chain
    issued_count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind"],
                condition=models.Q(is_default=True),
                name="one_default_series_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.pattern})"


class SeriesCounter(models.Model):
    series = models.ForeignKey(NumberingSeries, on_delete=models.PROTECT, related_name="counters")
    period_key = models.CharField(max_length=7, blank=True)
    last_value = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "period_key"], name="counter_unique_period")
        ]


class ApiToken(UUIDModel):
    """A bearer token for the REST API, acting as one member of one organization."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
