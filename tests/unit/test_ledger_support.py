"""Builders shared by the ledger and FEC tests (no tests here): documents from core types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal as D

from facturo.core.document import (
    Address,
    DocumentLine,
    InvoiceDocument,
    LegalNotes,
    Nature,
    Party,
    PaymentInstructions,
    TypeCode,
)
from facturo.core.ledger import JournalEntry
from facturo.core.tax import VatCategory
from facturo.core.totals import DocumentAllowance, LineInput, compute_totals

SELLER = Party("Atelier Lumière", Address("1 rue A", "69002", "Lyon", "FR"), siren="732829320")


def party(name: str = "Boulangerie Martin", country: str = "FR") -> Party:
    return Party(name, Address("4 place du Marché", "33000", "Ville", country))


@dataclass(frozen=True)
class L:
    """A line to put on a test document."""

    price: D
    rate: D = D(20)
    nature: Nature = Nature.SERVICES
    quantity: D = D(1)
    category: VatCategory = VatCategory.STANDARD
    product_code: str = ""
    discount: D = D(0)
    deduction: bool = False  # a deducted deposit (negative system line)


def make_doc(
    lines: Sequence[L],
    *,
    type_code: TypeCode = TypeCode.INVOICE,
    number: str = "FA-2026-00001",
    issue: date = date(2026, 3, 2),
    buyer: Party | None = None,
    vat_on_debits: bool = False,
    discount: D = D(0),
    charges: Sequence[DocumentAllowance] = (),
) -> InvoiceDocument:
    inputs = [
        LineInput(
            -line.quantity if line.deduction else line.quantity,
            line.price,
            line.category,
            line.rate,
            discount_percent=line.discount,
            allow_negative=line.deduction,
        )
        for line in lines
    ]
    totals = compute_totals(
        inputs, "EUR", document_discount_percent=discount, extra_allowances=charges
    )
    return InvoiceDocument(
        type_code=type_code,
        number=number,
        issue_date=issue,
        due_date=issue + timedelta(days=30),
        currency="EUR",
        language="fr",
        seller=SELLER,
        buyer=buyer or party(),
        lines=tuple(
            DocumentLine(
                position=i + 1,
                description=f"Ligne {i + 1}",
                quantity=li.quantity,
                unit_code="C62",
                unit_price=li.unit_price,
                discount_percent=li.discount_percent,
                vat_category=li.vat_category,
                vat_rate=li.vat_rate,
                nature=spec.nature,
                amounts=totals.lines[i],
                product_code=spec.product_code,
            )
            for i, (spec, li) in enumerate(zip(lines, inputs, strict=True))
        ),
        totals=totals,
        payment=PaymentInstructions("58"),
        notes=LegalNotes("pénalités", "40 €", "néant"),
        payment_terms_text="30 jours",
        operation_nature="S1",
        vat_on_debits=vat_on_debits,
    )


def rows(entry: JournalEntry | None) -> list[tuple[str, str, str, str]]:
    """The entry as sorted (account, auxiliary, debit, credit) rows, amounts as text."""
    assert entry is not None
    return sorted((x.account, x.auxiliary, str(x.debit), str(x.credit)) for x in entry.lines)


def golden(*expected: tuple[str, str, str, str]) -> list[tuple[str, str, str, str]]:
    return sorted(expected)
