from django.db import models
from django.utils.translation import gettext_lazy as _

from facturo.core.terms import TermsKind
from facturo.foundation.models import UUIDModel
from facturo.organizations.models import Organization


class CustomerKind(models.TextChoices):
    COMPANY = "company", _("Company")
    PERSON = "person", _("Individual")


class Customer(UUIDModel):
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="customers"
    )
    kind = models.CharField(
        _("type"), max_length=10, choices=CustomerKind.choices, default=CustomerKind.COMPANY
    )
    name = models.CharField(_("name"), max_length=200)
    siren = models.CharField(_("SIREN"), max_length=9, blank=True)
    siret = models.CharField(_("SIRET"), max_length=14, blank=True)
    vat_number = models.CharField(_("VAT number"), max_length=20, blank=True)
    address_line1 = models.CharField(_("address"), max_length=200)
    address_line2 = models.CharField(_("address (line 2)"), max_length=200, blank=True)
    postcode = models.CharField(_("postcode"), max_length=20)
    city = models.CharField(_("city"), max_length=100)
    country_code = models.CharField(_("country"), max_length=2, default="FR")
    delivery_line1 = models.CharField(_("delivery address"), max_length=200, blank=True)
    delivery_line2 = models.CharField(_("delivery address (line 2)"), max_length=200, blank=True)
    delivery_postcode = models.CharField(_("delivery postcode"), max_length=20, blank=True)
    delivery_city = models.CharField(_("delivery city"), max_length=100, blank=True)
    delivery_country_code = models.CharField(_("delivery country"), max_length=2, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    cc_emails = models.CharField(_("copy to (comma-separated)"), max_length=500, blank=True)
    accounting_email = models.EmailField(_("accounting e-mail"), blank=True)
    language = models.CharField(
        _("language"), max_length=8, choices=[("fr", "Français"), ("en", "English")], default="fr"
    )
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    payment_terms_kind = models.CharField(
        _("payment terms"),
        max_length=32,
        blank=True,
        choices=[(k.value, k.value) for k in TermsKind],
        help_text=_("Empty: the organization's default terms."),
    )
    payment_terms_days = models.PositiveSmallIntegerField(
        _("payment terms (days)"), null=True, blank=True
    )
    notes = models.TextField(_("internal notes"), blank=True)
    archived = models.BooleanField(_("archived"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["organization", "name"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_company(self) -> bool:
        return self.kind == CustomerKind.COMPANY
