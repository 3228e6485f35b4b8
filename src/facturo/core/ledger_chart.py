"""The default chart of accounts and the rules that pick an account for each amount.

Every number is a setting of ``LedgerSettings`` (an organization may use its accountant's
numbering); the defaults follow the PCG and are explained in ``docs/accounting.md`` and
ADR 9.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from .document import Nature
from .errors import BusinessError, _
from .ledger import check_account_number
from .tax import VatCategory


class CustomerType(StrEnum):
    FRANCE = "france"
    EU = "eu"  # another member state of the European Union
    EXPORT = "export"  # outside the EU


# Member states of the EU (ISO 3166-1 alpha-2; Greece is GR here, EL only in VAT numbers).
EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
    ]
)
# Monaco belongs to the French VAT territory (art. 1 of the 1963 Franco-Monegasque treaty).
FRANCE_FOR_VAT = frozenset({"FR", "MC"})


def customer_type(country_code: str) -> CustomerType:
    """France (with Monaco), another EU member state, or export; decided by the country of
    the customer's address, as a French seller sees it."""
    code = country_code.upper()
    if code in FRANCE_FOR_VAT:
        return CustomerType.FRANCE
    if code in EU_COUNTRIES:
        return CustomerType.EU
    return CustomerType.EXPORT


# One digit per VAT rate, in descending order of the mainland rates, then the overseas and
# Corsican rates; 44571<d> is the VAT collected, 44574<d> the VAT on receipts still pending.
# Any other rate (historical 19.6 %, 7 % …) goes to the catch-all digit 0.
VAT_RATE_DIGITS: dict[Decimal, str] = {
    Decimal("20"): "1",
    Decimal("10"): "2",
    Decimal("5.5"): "3",
    Decimal("2.1"): "4",
    Decimal("8.5"): "5",
    Decimal("13"): "6",
    Decimal("0.9"): "7",
    Decimal("1.75"): "8",
    Decimal("1.05"): "9",
}


def _rate_text(rate: Decimal) -> str:
    return format(rate.normalize(), "f").replace(".", ",")


DEFAULT_LABELS: dict[str, str] = {
    "411": "Clients",
    "4191": "Clients - Avances et acomptes reçus sur commandes",
    "4197": "Clients créditeurs - Trop-perçus et avoirs à rembourser",
    "44566": "TVA déductible sur autres biens et services",
    "445710": "TVA collectée - autres taux",
    "445740": "TVA sur encaissements en attente - autres taux",
    "512": "Banque",
    "627": "Services bancaires et assimilés",
    "658": "Charges diverses de gestion courante",
    "758": "Produits divers de gestion courante",
    "706": "Prestations de services",
    "7061": "Prestations de services - France",
    "7062": "Prestations de services - Union européenne",
    "7063": "Prestations de services - Export",
    "707": "Ventes de marchandises",
    "7071": "Ventes de marchandises - France",
    "7072": "Ventes de marchandises - Union européenne",
    "7073": "Ventes de marchandises - Export",
    "708": "Produits des activités annexes",
    "7085": "Ports et frais accessoires facturés",
    "7088": "Autres produits d'activités annexes",
}
for _rate, _digit in VAT_RATE_DIGITS.items():
    DEFAULT_LABELS["44571" + _digit] = f"TVA collectée {_rate_text(_rate)} %"
    DEFAULT_LABELS["44574" + _digit] = f"TVA sur encaissements en attente {_rate_text(_rate)} %"


# Products of this catalogue category are ancillary activities (PCG 708), unless a rule says
# otherwise.
ANCILLARY_CATEGORY = "ancillary"


@dataclass(frozen=True)
class RevenueRule:
    """Send the revenue of matching lines to ``account``. Every criterion left ``None``
    matches anything; the most specific matching rule wins, the first one on a tie."""

    account: str
    product_code: str | None = None
    category: str | None = None  # the product's category in the catalogue
    nature: Nature | None = None
    customer_type: CustomerType | None = None
    vat_category: VatCategory | None = None

    def __post_init__(self) -> None:
        check_account_number(self.account)

    @property
    def specificity(self) -> int:
        return sum(
            v is not None
            for v in (
                self.product_code,
                self.category,
                self.nature,
                self.customer_type,
                self.vat_category,
            )
        )

    def matches(
        self,
        *,
        product_code: str,
        category: str,
        nature: Nature,
        customer: CustomerType,
        vat_category: VatCategory,
    ) -> bool:
        return (
            (self.product_code is None or self.product_code == product_code)
            and (self.category is None or self.category == category)
            and (self.nature is None or self.nature == nature)
            and (self.customer_type is None or self.customer_type == customer)
            and (self.vat_category is None or self.vat_category == vat_category)
        )


#: The LedgerSettings fields that hold an account number (checked, editable in the UI).
ACCOUNT_SETTINGS = (
    "customers",
    "customer_deposits",
    "customer_credits",
    "services_revenue",
    "goods_revenue",
    "ancillary_revenue",
    "charges_revenue",
    "vat_collected_root",
    "vat_pending_root",
    "deductible_vat",
    "bank",
    "bank_fees",
    "write_off_loss",
    "write_off_gain",
)


@dataclass(frozen=True)
class LedgerSettings:
    """Account numbers of an organization; the defaults are the PCG-based chart."""

    customers: str = "411"
    customer_deposits: str = "4191"
    customer_credits: str = "4197"
    services_revenue: str = "706"
    goods_revenue: str = "707"
    ancillary_revenue: str = "7088"
    charges_revenue: str = "7085"  # document-level charges (shipping, handling)
    # Suffix added to the revenue root per customer type; empty mapping = root account only.
    customer_type_suffixes: Mapping[CustomerType, str] = field(
        default_factory=lambda: {
            CustomerType.FRANCE: "1",
            CustomerType.EU: "2",
            CustomerType.EXPORT: "3",
        }
    )
    vat_collected_root: str = "44571"
    vat_pending_root: str = "44574"
    vat_rate_digits: Mapping[Decimal, str] = field(default_factory=lambda: VAT_RATE_DIGITS)
    vat_other_digit: str = "0"
    deductible_vat: str = "44566"
    bank: str = "512"
    bank_fees: str = "627"
    write_off_loss: str = "658"
    write_off_gain: str = "758"
    rules: tuple[RevenueRule, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)  # overrides of DEFAULT_LABELS

    def __post_init__(self) -> None:
        for name in ACCOUNT_SETTINGS:
            check_account_number(getattr(self, name), field_name=name)
        for suffix in [*self.customer_type_suffixes.values(), *self.vat_rate_digits.values()]:
            if not suffix.isdigit():
                raise BusinessError(
                    "ledger.invalid_suffix",
                    _("Account suffix “%(suffix)s” must be digits."),
                    suffix=suffix,
                )

    # --- accounts -----------------------------------------------------------------------

    def label(self, number: str) -> str:
        """The account's label: an override, the default chart, else the label of the
        longest known parent account followed by the number."""
        if number in self.labels:
            return self.labels[number]
        if number in DEFAULT_LABELS:
            return DEFAULT_LABELS[number]
        for end in range(len(number) - 1, 2, -1):
            parent = number[:end]
            if parent in self.labels or parent in DEFAULT_LABELS:
                return f"{self.label(parent)} {number}"
        return f"Compte {number}"

    def vat_collected(self, rate: Decimal) -> str:
        return self.vat_collected_root + self.vat_rate_digits.get(rate, self.vat_other_digit)

    def vat_pending(self, rate: Decimal) -> str:
        return self.vat_pending_root + self.vat_rate_digits.get(rate, self.vat_other_digit)

    def revenue_account(
        self,
        *,
        nature: Nature,
        customer: CustomerType,
        vat_category: VatCategory,
        product_code: str = "",
        category: str = "",
    ) -> str:
        """The mapping rules: the most specific matching ``RevenueRule``; else 7088 for the
        "ancillary" category; else 706 for services / 707 for goods, with the customer
        type's suffix (7061, 7072 …)."""
        best: RevenueRule | None = None
        for rule in self.rules:
            if rule.matches(
                product_code=product_code,
                category=category,
                nature=nature,
                customer=customer,
                vat_category=vat_category,
            ) and (best is None or rule.specificity > best.specificity):
                best = rule
        if best is not None:
            return best.account
        if category == ANCILLARY_CATEGORY:
            return self.ancillary_revenue
        root = self.services_revenue if nature == Nature.SERVICES else self.goods_revenue
        return root + self.customer_type_suffixes.get(customer, "")


DEFAULT_SETTINGS = LedgerSettings()
