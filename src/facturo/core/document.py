"""The frozen content of an issued invoice or credit note.

``InvoiceDocument`` is built once, at issue, from the draft, the organization and the
customer; it is stored as JSON (``to_dict``) and is the single source for the PDF, the
Factur-X XML, the API, the hash chain and the ledger. It never changes afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .tax import VatCategory
from .totals import DocumentAllowance, LineAmounts, Totals, VatGroup


class TypeCode(StrEnum):
    """UNTDID 1001 document types (BT-3)."""

    INVOICE = "380"
    CREDIT_NOTE = "381"
    DEPOSIT_INVOICE = "386"  # facture d'acompte (prepayment invoice)


class Nature(StrEnum):
    GOODS = "goods"
    SERVICES = "services"


@dataclass(frozen=True)
class Address:
    line1: str
    postcode: str
    city: str
    country_code: str  # ISO 3166-1 alpha-2
    line2: str = ""


@dataclass(frozen=True)
class Party:
    name: str
    address: Address
    siren: str = ""  # BT-30 / BT-47 (scheme 0002)
    siret: str = ""
    vat_number: str = ""  # BT-31 / BT-48
    email: str = ""
    legal_form: str = ""  # e.g. SAS
    share_capital: str = ""  # e.g. "10 000 €", printed as is
    rcs: str = ""  # e.g. "RCS Lyon 123 456 789"
    is_company: bool = True


@dataclass(frozen=True)
class DocumentLine:
    position: int
    description: str
    quantity: Decimal
    unit_code: str  # UN/ECE Rec 20 (C62 unit, HUR hour, DAY day …)
    unit_price: Decimal
    discount_percent: Decimal
    vat_category: VatCategory
    vat_rate: Decimal
    nature: Nature
    amounts: LineAmounts
    product_code: str = ""
    note: str = ""  # e.g. "Acompte FA-2026-00012 du 2026-03-02"


@dataclass(frozen=True)
class PrecedingInvoice:
    number: str  # BT-25
    issue_date: date  # BT-26


@dataclass(frozen=True)
class PaymentInstructions:
    means_code: str  # UNTDID 4461: 30 credit transfer, 58 SEPA credit transfer, 10 cash …
    iban: str = ""
    bic: str = ""
    account_name: str = ""
    remittance: str = ""  # BT-83, the reference the payer must quote


@dataclass(frozen=True)
class LegalNotes:
    """Texts required by art. L441-9/L441-10 C. com. (French CTC notes PMD, PMT, AAB)."""

    late_penalties: str  # PMD
    recovery_indemnity: str  # PMT
    early_payment_discount: str  # AAB
    mentions: tuple[str, ...] = ()  # e.g. "Autoliquidation", "TVA non applicable, art. 293 B"


@dataclass(frozen=True)
class InvoiceDocument:
    type_code: TypeCode
    number: str
    issue_date: date
    due_date: date
    currency: str
    language: str
    seller: Party
    buyer: Party
    lines: tuple[DocumentLine, ...]
    totals: Totals
    payment: PaymentInstructions
    notes: LegalNotes
    payment_terms_text: str
    operation_nature: str  # BT-23 cadre de facturation: B1, S1, M1 (B4/S4/M4 after deposits)
    vat_on_debits: bool = False  # « Option pour le paiement de la taxe d'après les débits »
    delivery_address: Address | None = None  # BG-15 when it differs from the buyer's address
    delivery_date: date | None = None  # BT-72
    period_start: date | None = None  # BT-73
    period_end: date | None = None  # BT-74
    buyer_reference: str = ""  # BT-10
    purchase_order: str = ""  # BT-13
    preceding_invoices: tuple[PrecedingInvoice, ...] = ()  # BG-3
    free_text: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_credit_note(self) -> bool:
        return self.type_code == TypeCode.CREDIT_NOTE


# --- JSON round trip ------------------------------------------------------------------------
# Decimals become strings and dates ISO strings, so the JSON is exact and stable for hashing.


def _encode(value: Any) -> Any:
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        encoder = _ENCODERS[type(value)] = _encoder_for(value)
    return encoder(value)


def _encoder_for(value: Any) -> Callable[[Any], Any]:
    """How to encode every value of ``type(value)`` (decided once per type)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = tuple(f.name for f in dataclasses.fields(value))
        return lambda v: {name: _encode(getattr(v, name)) for name in names}
    if isinstance(value, Decimal):
        return str
    if isinstance(value, date):
        return lambda v: v.isoformat()
    if isinstance(value, StrEnum):
        return lambda v: v.value
    if isinstance(value, tuple | list):
        return lambda v: [_encode(x) for x in v]
    if isinstance(value, dict):
        return lambda v: {k: _encode(x) for k, x in v.items()}
    return _same


def _same(value: Any) -> Any:
    return value


_ENCODERS: dict[type, Callable[[Any], Any]] = {}


def to_dict(doc: InvoiceDocument) -> dict[str, Any]:
    result: dict[str, Any] = _encode(doc)
    return result


def _d(v: str) -> Decimal:
    return Decimal(v)


def _date(v: str | None) -> date | None:
    return date.fromisoformat(v) if v else None


def _address(v: dict[str, Any] | None) -> Address | None:
    return Address(**v) if v else None


def _party(v: dict[str, Any]) -> Party:
    address = _address(v["address"])
    assert address is not None
    return Party(**{**v, "address": address})


def _totals(v: dict[str, Any]) -> Totals:
    return Totals(
        currency=v["currency"],
        lines=tuple(
            LineAmounts(_d(x["gross_amount"]), _d(x["allowance_amount"]), _d(x["net_amount"]))
            for x in v["lines"]
        ),
        allowances=tuple(
            DocumentAllowance(
                _d(a["amount"]),
                VatCategory(a["vat_category"]),
                _d(a["vat_rate"]),
                a["reason"],
                a["is_charge"],
            )
            for a in v["allowances"]
        ),
        vat_groups=tuple(
            VatGroup(
                VatCategory(g["category"]),
                _d(g["rate"]),
                _d(g["taxable_amount"]),
                _d(g["tax_amount"]),
            )
            for g in v["vat_groups"]
        ),
        **{
            k: _d(v[k])
            for k in (
                "line_total",
                "allowance_total",
                "charge_total",
                "tax_exclusive",
                "tax_total",
                "tax_inclusive",
                "prepaid",
                "due_payable",
            )
        },
    )


def from_dict(v: dict[str, Any]) -> InvoiceDocument:
    issue_date = _date(v["issue_date"])
    due = _date(v["due_date"])
    assert issue_date is not None
    assert due is not None
    return InvoiceDocument(
        type_code=TypeCode(v["type_code"]),
        number=v["number"],
        issue_date=issue_date,
        due_date=due,
        currency=v["currency"],
        language=v["language"],
        seller=_party(v["seller"]),
        buyer=_party(v["buyer"]),
        lines=tuple(
            DocumentLine(
                position=x["position"],
                description=x["description"],
                quantity=_d(x["quantity"]),
                unit_code=x["unit_code"],
                unit_price=_d(x["unit_price"]),
                discount_percent=_d(x["discount_percent"]),
                vat_category=VatCategory(x["vat_category"]),
                vat_rate=_d(x["vat_rate"]),
                nature=Nature(x["nature"]),
                amounts=LineAmounts(
                    _d(x["amounts"]["gross_amount"]),
                    _d(x["amounts"]["allowance_amount"]),
                    _d(x["amounts"]["net_amount"]),
                ),
                product_code=x["product_code"],
                note=x["note"],
            )
            for x in v["lines"]
        ),
        totals=_totals(v["totals"]),
        payment=PaymentInstructions(**v["payment"]),
        notes=LegalNotes(**{**v["notes"], "mentions": tuple(v["notes"]["mentions"])}),
        payment_terms_text=v["payment_terms_text"],
        operation_nature=v["operation_nature"],
        vat_on_debits=v["vat_on_debits"],
        delivery_address=_address(v["delivery_address"]),
        delivery_date=_date(v["delivery_date"]),
        period_start=_date(v["period_start"]),
        period_end=_date(v["period_end"]),
        buyer_reference=v["buyer_reference"],
        purchase_order=v["purchase_order"],
        preceding_invoices=tuple(
            PrecedingInvoice(p["number"], date.fromisoformat(p["issue_date"]))
            for p in v["preceding_invoices"]
        ),
        free_text=v["free_text"],
        extra=dict(v["extra"]),
    )
