"""Realistic sample documents for tests, benchmarks and template previews (pure data)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from .document import (
    Address,
    DocumentLine,
    InvoiceDocument,
    Nature,
    Party,
    PaymentInstructions,
    PrecedingInvoice,
    TypeCode,
)
from .mentions import legal_notes, operation_nature
from .tax import VatCategory
from .terms import PaymentTerms, TermsKind, due_date
from .totals import LineInput, compute_totals

SELLER = Party(
    name="Atelier Numérique Lumière",
    legal_form="SAS",
    share_capital="10 000 €",
    rcs="RCS Lyon 732 829 320",
    siren="732829320",
    siret="73282932000074",
    vat_number="FR44732829320",
    email="facturation@atelier-lumiere.example",
    address=Address("12 rue de la République", "69002", "Lyon", "FR"),
)
BUYER_FR = Party(
    name="Boulangerie Martin SARL",
    siren="552100554",
    siret="55210055400013",
    vat_number="FR96552100554",
    email="compta@boulangerie-martin.example",
    address=Address("4 place du Marché", "33000", "Bordeaux", "FR", line2="Bâtiment B"),
)
BUYER_DE = Party(
    name="Müller Digital GmbH",
    vat_number="DE136695976",
    email="rechnung@mueller-digital.example",
    address=Address("Friedrichstraße 123", "10117", "Berlin", "DE"),
)

_CATALOGUE = [
    ("Développement site vitrine", "DAY", D("650.00"), Nature.SERVICES, D("20")),
    ("Maintenance mensuelle", "C62", D("89.90"), Nature.SERVICES, D("20")),
    ("Formation WordPress (heure)", "HUR", D("75.00"), Nature.SERVICES, D("20")),
    ("Hébergement annuel", "C62", D("119.00"), Nature.SERVICES, D("20")),
    ("Nom de domaine .fr", "C62", D("12.50"), Nature.SERVICES, D("20")),
    ("Livre « Le Web pour les artisans »", "C62", D("24.90"), Nature.GOODS, D("5.5")),
    ("Repas de travail", "C62", D("18.40"), Nature.SERVICES, D("10")),
    ("Clé USB 64 Go", "C62", D("15.99"), Nature.GOODS, D("20")),
    ("Audit SEO", "C62", D("480.00"), Nature.SERVICES, D("20")),
    ("Rédaction de contenu (page)", "C62", D("95.00"), Nature.SERVICES, D("20")),
]


def sample_invoice(
    *,
    number: str = "FA-2026-00042",
    lines: int = 10,
    language: str = "fr",
    type_code: TypeCode = TypeCode.INVOICE,
    vat_case: str = "standard",  # standard | franchise | reverse_charge | intra_eu_goods | export
    issue: date = date(2026, 11, 20),
    document_discount_percent: D = D("5"),
) -> InvoiceDocument:
    buyer = BUYER_FR
    category, forced_rate = VatCategory.STANDARD, None
    if vat_case == "franchise":
        category, forced_rate = VatCategory.EXEMPT, D(0)
    elif vat_case == "reverse_charge":
        category, forced_rate, buyer = VatCategory.REVERSE_CHARGE, D(0), BUYER_DE
    elif vat_case == "intra_eu_goods":
        category, forced_rate, buyer = VatCategory.INTRA_EU_SUPPLY, D(0), BUYER_DE
    elif vat_case == "export":
        category, forced_rate = VatCategory.EXPORT, D(0)
        buyer = Party(
            name="Maple Bakery Inc.",
            email="ap@maple.example",
            address=Address("200 Bay Street", "M5J 2J2", "Toronto", "CA"),
        )
    picked = [_CATALOGUE[i % len(_CATALOGUE)] for i in range(lines)]
    inputs, natures = [], []
    for i, (_, _, price, nature, rate) in enumerate(picked):
        qty = D(i % 3 + 1) if i % 4 else D("1.5")
        if vat_case in ("intra_eu_goods",):
            nature = Nature.GOODS
        natures.append(nature)
        inputs.append(
            LineInput(
                qty,
                price,
                category,
                forced_rate if forced_rate is not None else rate,
                discount_percent=D(10) if i == 2 else D(0),
            )
        )
    totals = compute_totals(inputs, "EUR", document_discount_percent=document_discount_percent)
    doc_lines = tuple(
        DocumentLine(
            position=i + 1,
            description=p[0],
            quantity=li.quantity,
            unit_code=p[1],
            unit_price=li.unit_price,
            discount_percent=li.discount_percent,
            vat_category=li.vat_category,
            vat_rate=li.vat_rate,
            nature=natures[i],
            amounts=totals.lines[i],
            product_code=f"P{i + 1:03d}",
        )
        for i, (p, li) in enumerate(zip(picked, inputs, strict=True))
    )
    terms = PaymentTerms(TermsKind.NET, 30)
    return InvoiceDocument(
        type_code=type_code,
        number=number,
        issue_date=issue,
        due_date=due_date(issue, terms),
        currency="EUR",
        language=language,
        seller=SELLER,
        buyer=buyer,
        lines=doc_lines,
        totals=totals,
        payment=PaymentInstructions(
            "58",
            iban="FR7630006000011234567890189",
            bic="AGRIFRPP",
            account_name=SELLER.name,
            remittance=number,
        ),
        notes=legal_notes(
            language=language,
            late_penalty_rate=None,
            early_payment_discount="",
            categories=[g.category for g in totals.vat_groups],
            vat_on_debits=False,
            buyer_is_business=True,
        ),
        payment_terms_text=terms.describe(language),
        operation_nature=operation_nature(natures),
        delivery_date=issue,
        purchase_order="BC-2026-118",
        preceding_invoices=(
            (PrecedingInvoice("FA-2026-00041", date(2026, 11, 2)),)
            if type_code == TypeCode.CREDIT_NOTE
            else ()
        ),
    )
