from django.db import models
from django.utils.translation import gettext_lazy as _

from facturo.core.document import Nature
from facturo.core.tax import VatCategory
from facturo.foundation.fields import PRICE_SCALE, RATE_SCALE, ScaledDecimalField
from facturo.foundation.models import UUIDModel
from facturo.organizations.models import Organization

VAT_CATEGORY_CHOICES = [
    (VatCategory.STANDARD.value, _("Standard (S)")),
    (VatCategory.ZERO_RATED.value, _("Zero rated (Z)")),
    (VatCategory.EXEMPT.value, _("Exempt (E)")),
    (VatCategory.REVERSE_CHARGE.value, _("Reverse charge (AE)")),
    (VatCategory.INTRA_EU_SUPPLY.value, _("Intra-EU supply of goods (K)")),
    (VatCategory.EXPORT.value, _("Export outside the EU (G)")),
    (VatCategory.NOT_SUBJECT.value, _("Not subject to VAT (O)")),
]
NATURE_CHOICES = [(Nature.GOODS.value, _("Goods")), (Nature.SERVICES.value, _("Services"))]
UNIT_CHOICES = [
    ("C62", _("unit")),
    ("HUR", _("hour")),
    ("DAY", _("day")),
    ("MON", _("month")),
    ("ANN", _("year")),
    ("KGM", _("kilogram")),
    ("MTR", _("metre")),
    ("LTR", _("litre")),
    ("MTK", _("square metre")),
    ("SET", _("set")),
]


class Product(UUIDModel):
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="products"
    )
    code = models.CharField(_("code"), max_length=50, blank=True)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    unit_code = models.CharField(_("unit"), max_length=3, choices=UNIT_CHOICES, default="C62")
    unit_price = ScaledDecimalField(_("unit price excl. VAT"), scale=PRICE_SCALE)
    vat_category = models.CharField(
        _("VAT category"), max_length=2, choices=VAT_CATEGORY_CHOICES, default="S"
    )
    vat_rate = ScaledDecimalField(_("VAT rate (%)"), scale=RATE_SCALE, default=20)
    nature = models.CharField(
        _("nature"), max_length=10, choices=NATURE_CHOICES, default=Nature.SERVICES.value
    )
    account_code = models.CharField(_("revenue account"), max_length=20, blank=True)
    archived = models.BooleanField(_("archived"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
