"""VAT categories (EN 16931 / UNCL 5305) and the French rules that go with them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from .errors import BusinessError, _


class VatCategory(StrEnum):
    STANDARD = "S"
    ZERO_RATED = "Z"
    EXEMPT = "E"  # e.g. franchise en base (art. 293 B CGI)
    REVERSE_CHARGE = "AE"  # autoliquidation
    INTRA_EU_SUPPLY = "K"  # livraison intracommunautaire de biens
    EXPORT = "G"  # exportation hors UE
    NOT_SUBJECT = "O"  # hors champ de la TVA


@dataclass(frozen=True)
class Exemption:
    code: str  # VATEX code (BT-121)
    text_fr: str
    text_en: str


EXEMPTIONS: dict[VatCategory, Exemption] = {
    VatCategory.EXEMPT: Exemption(
        "VATEX-FR-FRANCHISE",
        "TVA non applicable, art. 293 B du CGI",
        "VAT not applicable, art. 293 B of the French General Tax Code",
    ),
    VatCategory.REVERSE_CHARGE: Exemption(
        "VATEX-EU-AE",
        "Autoliquidation",
        "Reverse charge (Autoliquidation)",
    ),
    VatCategory.INTRA_EU_SUPPLY: Exemption(
        "VATEX-EU-IC",
        "Exonération de TVA, article 262 ter I du CGI (art. 138 directive 2006/112/CE)",
        "Intra-community supply exempt from VAT, art. 262 ter I CGI "
        "(art. 138 Directive 2006/112/EC)",
    ),
    VatCategory.EXPORT: Exemption(
        "VATEX-EU-G",
        "Exonération de TVA, article 262 I du CGI (exportation)",
        "Export outside the EU exempt from VAT, art. 262 I CGI",
    ),
    VatCategory.NOT_SUBJECT: Exemption(
        "VATEX-EU-O",
        "Opération hors du champ d'application de la TVA",
        "Not subject to VAT",
    ),
}

# Rates accepted by the French CTC rule BR-FR-16 (mainland, Corsica, overseas departments).
FRENCH_RATES: frozenset[Decimal] = frozenset(
    Decimal(r)
    for r in (
        "0",
        "0.9",
        "1.05",
        "1.75",
        "2.1",
        "5.5",
        "7",
        "8.5",
        "9.2",
        "9.6",
        "10",
        "13",
        "19.6",
        "20",
        "20.6",
    )
)
MAINLAND_RATES = (Decimal(20), Decimal(10), Decimal("5.5"), Decimal("2.1"))


def check_vat(category: VatCategory | str, rate: Decimal) -> tuple[VatCategory, Decimal]:
    """Return a valid (category, rate) pair or raise a precise error."""
    try:
        cat = VatCategory(category)
    except ValueError:
        raise BusinessError(
            "tax.unknown_category",
            _("Unknown VAT category “%(category)s”."),
            field="vat_category",
            category=category,
        ) from None
    if cat in (VatCategory.STANDARD,):
        if rate not in FRENCH_RATES or rate == 0:
            raise BusinessError(
                "tax.invalid_rate",
                _("VAT rate %(rate)s %% is not a French rate (20, 10, 5.5, 2.1 …)."),
                field="vat_rate",
                rate=rate,
            )
    elif rate != 0:
        raise BusinessError(
            "tax.rate_must_be_zero",
            _("VAT category %(category)s requires a rate of 0 %%, not %(rate)s %%."),
            field="vat_rate",
            category=cat.value,
            rate=rate,
        )
    return cat, rate
