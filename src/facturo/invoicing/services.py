"""Invoices and credit notes: drafts, issue, credit notes, deposits.

Issuing is one transaction: lock the series, allocate the next number, freeze the snapshot
(the one computation of the totals), chain its hash, build and store the PDF/A-3 + Factur-X,
record the audit event. A rollback anywhere gives the number back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone

from facturo.audit import services as audit
from facturo.catalog.models import Product
from facturo.catalog.services import as_decimal
from facturo.core import numbering
from facturo.core.chain import GENESIS, canonical_json
from facturo.core.document import (
    Address,
    DocumentLine,
    InvoiceDocument,
    Nature,
    Party,
    PaymentInstructions,
    PrecedingInvoice,
    TypeCode,
    to_dict,
)
from facturo.core.errors import BusinessError, ConflictError, NotFound, _
from facturo.core.mentions import legal_notes, operation_nature
from facturo.core.money import ZERO, check_currency
from facturo.core.tax import VatCategory
from facturo.core.terms import PaymentTerms, TermsKind, check_due_date, due_date
from facturo.core.text import clean_text
from facturo.core.totals import LineInput, Totals, compute_totals
from facturo.customers.models import Customer
from facturo.documents import services as documents
from facturo.formats.sepa.reference import creditor_reference
from facturo.foundation import events, rawsql
from facturo.foundation.db import atomic
from facturo.organizations.context import Ctx, Perm
from facturo.organizations.models import (
    DocumentKind,
    NumberingSeries,
    Organization,
    SeriesCounter,
    VatRegime,
)

from .events import InvoiceIssued
from .models import Invoice, InvoiceLine, Status

TYPE_CODES = {
    DocumentKind.INVOICE: TypeCode.INVOICE,
    DocumentKind.CREDIT_NOTE: TypeCode.CREDIT_NOTE,
    DocumentKind.DEPOSIT: TypeCode.DEPOSIT_INVOICE,
}
LINE_FIELDS = (
    "description",
    "quantity",
    "unit_code",
    "unit_price",
    "discount_percent",
    "vat_category",
    "vat_rate",
    "nature",
    "account_code",
)
HEADER_FIELDS = (
    "currency",
    "language",
    "payment_terms_kind",
    "payment_terms_days",
    "purchase_order",
    "buyer_reference",
    "delivery_date",
    "due_date",
    "document_discount_percent",
    "free_text",
    "reason",
)
MAX_LINES = 1000
ISSUE_FIELDS = [
    "number",
    "series",
    "period_key",
    "sequence_value",
    "series_position",
    "issue_date",
    "due_date",
    "snapshot",
    "chain_previous_hash",
    "chain_hash",
    "status",
    "issued_at",
    "issued_by",
    "total_excl_vat",
    "total_vat",
    "total_incl_vat",
    "updated_at",
]
_ISSUE_ATTNAMES = tuple("series_id" if f == "series" else f for f in ISSUE_FIELDS)


# --- reading -------------------------------------------------------------------------------


def get_invoice(ctx: Ctx, invoice_id: Any, *, for_update: bool = False) -> Invoice:
    ctx.require(Perm.VIEW)
    qs = Invoice.objects.filter(organization=ctx.organization)
    if for_update:
        qs = qs.select_for_update()
    try:
        return qs.get(pk=invoice_id)
    except (Invoice.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        # malformed ids are "not found" too: never say more about other tenants' ids
        raise NotFound("invoice.not_found", _("No such invoice.")) from None


def line_inputs(lines: Iterable[InvoiceLine]) -> list[LineInput]:
    return [
        LineInput(
            quantity=line.quantity,
            unit_price=line.unit_price,
            vat_category=VatCategory(line.vat_category),
            vat_rate=line.vat_rate,
            discount_percent=line.discount_percent,
            allow_negative=line.deducted_invoice_id is not None,
        )
        for line in lines
    ]


def draft_totals(invoice: Invoice, lines: list[InvoiceLine] | None = None) -> Totals:
    """Totals of a draft (live preview); issued invoices read their frozen snapshot."""
    lines = list(invoice.lines.all()) if lines is None else lines
    return compute_totals(
        line_inputs(lines),
        invoice.currency,
        document_discount_percent=invoice.document_discount_percent,
        discount_label="Remise" if invoice.language == "fr" else "Discount",
    )


# --- drafts --------------------------------------------------------------------------------


def _clean_lines(
    ctx: Ctx,
    lines: Iterable[Mapping[str, Any]],
    currency: str,
    products: dict[Any, Product | None] | None = None,
) -> list[InvoiceLine]:
    """Checked lines; ``products`` caches the catalog lookups across the drafts of a batch."""
    result: list[InvoiceLine] = []
    products = {} if products is None else products
    for position, raw in enumerate(lines, start=1):
        data = dict(raw)
        product = None
        if data.get("product_id"):
            key = data["product_id"]
            if key not in products:
                products[key] = Product.objects.filter(
                    organization=ctx.organization, pk=key
                ).first()
            product = products[key]
            if product is None:
                raise BusinessError(
                    "invoice.unknown_product",
                    _("Line %(position)s: unknown product."),
                    field=f"lines.{position}.product_id",
                    position=position,
                )
            for field in ("unit_code", "vat_category", "nature", "account_code"):
                data.setdefault(field, getattr(product, field))
            data.setdefault("description", product.name)
            data.setdefault("unit_price", product.unit_price)
            data.setdefault("vat_rate", product.vat_rate)
        description = clean_text(
            data.get("description", ""), f"lines.{position}.description", max_length=500
        )
        if not description:
            raise BusinessError(
                "invoice.line_description_required",
                _("Line %(position)s: a description is required."),
                field=f"lines.{position}.description",
                position=position,
            )
        line = InvoiceLine(
            position=position,
            product=product,
            description=description[:500],
            quantity=as_decimal(data.get("quantity", "1"), f"lines.{position}.quantity"),
            unit_code=str(data.get("unit_code") or "C62"),
            unit_price=as_decimal(data.get("unit_price", "0"), f"lines.{position}.unit_price"),
            discount_percent=as_decimal(
                data.get("discount_percent") or "0", f"lines.{position}.discount_percent"
            ),
            vat_category=str(data.get("vat_category") or "S"),
            vat_rate=as_decimal(data.get("vat_rate", "20"), f"lines.{position}.vat_rate"),
            nature=str(data.get("nature") or Nature.SERVICES.value),
            account_code=str(data.get("account_code") or ""),
        )
        for field, places in (
            ("quantity", 4),
            ("unit_price", 6),
            ("discount_percent", 4),
            ("vat_rate", 4),
        ):
            value = getattr(line, field)
            if value.as_tuple().exponent < -places:
                raise BusinessError(
                    "invoice.too_many_decimals",
                    _("Line %(position)s: %(field)s has more than %(places)s decimals."),
                    field=f"lines.{position}.{field}",
                    position=position,
                    places=places,
                    field_name=field,
                )
        if line.nature not in (n.value for n in Nature):
            raise BusinessError(
                "invoice.invalid_nature",
                _("Nature is goods or services."),
                field=f"lines.{position}.nature",
            )
        try:
            compute_totals(line_inputs([line]), currency)
        except BusinessError as exc:
            raise BusinessError(
                exc.code,
                _("Line %(position)s: %(error)s"),
                field=f"lines.{position}.{exc.field or ''}".rstrip("."),
                position=position,
                error=exc.message,
            ) from exc
        result.append(line)
    if len(result) > MAX_LINES:
        raise BusinessError(
            "invoice.too_many_lines", _("An invoice has at most %(max)s lines."), max=MAX_LINES
        )
    return result


TEXT_LIMITS = {"purchase_order": 100, "buyer_reference": 100, "free_text": 2000, "reason": 300}


def _clean_header(data: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = {k: v for k, v in data.items() if k in HEADER_FIELDS}
    for key, limit in TEXT_LIMITS.items():
        if key in cleaned:
            cleaned[key] = clean_text(cleaned[key], key, max_length=limit)
    if "currency" in cleaned:
        cleaned["currency"] = check_currency(str(cleaned["currency"]).upper())
    if cleaned.get("language", "fr") not in ("fr", "en"):
        raise BusinessError(
            "invoice.invalid_language", _("Language must be fr or en."), field="language"
        )
    if "document_discount_percent" in cleaned:
        cleaned["document_discount_percent"] = as_decimal(
            cleaned["document_discount_percent"] or "0", "document_discount_percent"
        )
    if cleaned.get("payment_terms_kind"):
        PaymentTerms(
            TermsKind(cleaned["payment_terms_kind"]), int(cleaned.get("payment_terms_days") or 0)
        )
    for key in ("delivery_date", "due_date"):
        if isinstance(cleaned.get(key), str):
            try:
                cleaned[key] = dt.date.fromisoformat(cleaned[key]) if cleaned[key] else None
            except ValueError:
                raise BusinessError(
                    "input.invalid_date",
                    _("“%(value)s” is not a date (YYYY-MM-DD)."),
                    field=key,
                    value=cleaned[key],
                ) from None
    return cleaned


def _invoice_snapshot(
    invoice: Invoice, lines: Iterable[InvoiceLine] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {f: getattr(invoice, f) for f in HEADER_FIELDS}
    data["customer_id"] = str(invoice.customer_id)
    lines = invoice.lines.all() if lines is None else lines
    data["lines"] = [{f: getattr(line, f) for f in LINE_FIELDS} for line in lines]
    return data


def create_draft(
    ctx: Ctx,
    customer_id: Any,
    lines: Iterable[Mapping[str, Any]] = (),
    kind: str = DocumentKind.INVOICE,
    **header: Any,
) -> Invoice:
    ctx.require(Perm.EDIT_INVOICES)
    customer = Customer.objects.filter(organization=ctx.organization, pk=customer_id).first()
    if customer is None:
        raise NotFound("customer.not_found", _("No such customer."), field="customer_id")
    return create_drafts(ctx, [DraftSpec(customer, lines, header, kind)])[0][0]


@dataclasses.dataclass(frozen=True)
class DraftSpec:
    """One draft to create: its customer (of the acting organization), lines and header."""

    customer: Customer
    lines: Iterable[Mapping[str, Any]]
    header: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    kind: str = DocumentKind.INVOICE


def create_drafts(ctx: Ctx, specs: list[DraftSpec]) -> list[tuple[Invoice, list[InvoiceLine]]]:
    """Create drafts (each with its lines), checked as :func:`create_draft` checks one,
    with one insert for the invoices and one for their lines. Returns each draft with its
    lines, ready for :func:`issue_loaded` in the same transaction."""
    ctx.require(Perm.EDIT_INVOICES)
    org = ctx.organization
    products: dict[Any, Product | None] = {}
    made: list[tuple[Invoice, list[InvoiceLine]]] = []
    for spec in specs:
        if spec.kind not in (DocumentKind.INVOICE, DocumentKind.DEPOSIT):
            raise BusinessError(
                "invoice.invalid_kind",
                _("Create credit notes from the invoice they correct."),
                field="kind",
            )
        if spec.customer.organization_id != org.id:
            raise NotFound("customer.not_found", _("No such customer."), field="customer_id")
        header = dict(spec.header)
        header.setdefault("currency", spec.customer.currency)
        header.setdefault("language", spec.customer.language)
        cleaned = _clean_header(header)
        lines = _clean_lines(ctx, spec.lines, cleaned["currency"], products)
        invoice = Invoice(organization=org, customer=spec.customer, kind=spec.kind, **cleaned)
        for line in lines:
            line.invoice = invoice
        made.append((invoice, lines))
    with atomic():
        Invoice.objects.bulk_create([i for i, _lines in made])
        InvoiceLine.objects.bulk_create([line for _i, lines in made for line in lines])
        for invoice, lines in made:
            audit.record(
                org.id,
                ctx.actor,
                "invoice.draft_created",
                invoice,
                after=_invoice_snapshot(invoice, lines),
            )
    return made


def _refuse_if_issued(invoice: Invoice) -> None:
    if not invoice.is_draft:
        raise ConflictError(
            "invoice.already_issued",
            _(
                "Invoice %(number)s is issued and can no longer be changed or deleted; "
                "create a credit note to correct or cancel it."
            ),
            number=invoice.number,
        )


def update_draft(
    ctx: Ctx, invoice_id: Any, lines: Iterable[Mapping[str, Any]] | None = None, **header: Any
) -> Invoice:
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        invoice = get_invoice(ctx, invoice_id, for_update=True)
        _refuse_if_issued(invoice)
        before = _invoice_snapshot(invoice)
        if "customer_id" in header:
            customer = Customer.objects.filter(
                organization=ctx.organization, pk=header.pop("customer_id")
            ).first()
            if customer is None:
                raise NotFound("customer.not_found", _("No such customer."), field="customer_id")
            invoice.customer = customer
        for key, value in _clean_header(header).items():
            setattr(invoice, key, value)
        invoice.save()
        if lines is not None:
            clean_lines = _clean_lines(ctx, lines, invoice.currency)
            invoice.lines.filter(deducted_invoice__isnull=True).delete()
            offset = len(clean_lines)
            for line in clean_lines:
                line.invoice = invoice
            InvoiceLine.objects.bulk_create(clean_lines)
            for i, deduction in enumerate(invoice.lines.filter(deducted_invoice__isnull=False)):
                deduction.position = offset + i + 1
                deduction.save(update_fields=["position"])
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "invoice.draft_updated",
            invoice,
            before=before,
            after=_invoice_snapshot(invoice),
        )
    return invoice


def delete_draft(ctx: Ctx, invoice_id: Any) -> None:
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        invoice = get_invoice(ctx, invoice_id, for_update=True)
        _refuse_if_issued(invoice)
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "invoice.draft_deleted",
            invoice,
            before=_invoice_snapshot(invoice),
        )
        invoice.delete()


# --- deposits ------------------------------------------------------------------------------


def deduct_deposit(ctx: Ctx, invoice_id: Any, deposit_id: Any) -> Invoice:
    """Deduct an issued deposit invoice from a final invoice draft: one negative line per
    VAT group of the deposit, so the VAT already invoiced is not charged twice."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        invoice = get_invoice(ctx, invoice_id, for_update=True)
        _refuse_if_issued(invoice)
        deposit = get_invoice(ctx, deposit_id)
        if deposit.kind != DocumentKind.DEPOSIT or deposit.is_draft:
            raise BusinessError(
                "invoice.not_a_deposit", _("Only an issued deposit invoice can be deducted.")
            )
        if deposit.customer_id != invoice.customer_id or deposit.currency != invoice.currency:
            raise BusinessError(
                "invoice.deposit_mismatch",
                _("The deposit invoice belongs to another customer or currency."),
            )
        if (
            InvoiceLine.objects.filter(deducted_invoice=deposit).exclude(invoice=invoice).exists()
            or invoice.lines.filter(deducted_invoice=deposit).exists()
        ):
            raise ConflictError(
                "invoice.deposit_already_deducted",
                _("Deposit invoice %(number)s is already deducted."),
                number=deposit.number,
            )
        assert deposit.snapshot is not None
        position = invoice.lines.count()
        first_line = deposit.lines.first()
        for group in deposit.snapshot["totals"]["vat_groups"]:
            position += 1
            InvoiceLine.objects.create(
                invoice=invoice,
                position=position,
                deducted_invoice=deposit,
                description=f"Acompte {deposit.number} du {deposit.issue_date:%d/%m/%Y}"
                if invoice.language == "fr"
                else f"Deposit {deposit.number} of {deposit.issue_date:%Y-%m-%d}",
                quantity=Decimal(-1),
                unit_price=Decimal(group["taxable_amount"]),
                vat_category=group["category"],
                vat_rate=Decimal(group["rate"]),
                nature=first_line.nature if first_line else Nature.SERVICES.value,
            )
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "invoice.deposit_deducted",
            invoice,
            after={"deposit": deposit.number},
        )
    return invoice


# --- issue ---------------------------------------------------------------------------------


def _party_seller(org: Organization) -> Party:
    return Party(
        name=org.legal_name or org.name,
        legal_form=org.legal_form,
        share_capital=org.share_capital,
        rcs=org.rcs,
        siren=org.siren,
        siret=org.siret,
        vat_number=org.vat_number,
        email=org.email,
        address=Address(
            org.address_line1, org.postcode, org.city, org.country_code, org.address_line2
        ),
    )


def _party_buyer(c: Customer) -> Party:
    return Party(
        name=c.name,
        siren=c.siren,
        siret=c.siret,
        vat_number=c.vat_number,
        email=c.email,
        address=Address(c.address_line1, c.postcode, c.city, c.country_code, c.address_line2),
        is_company=c.is_company,
    )


def _delivery(c: Customer) -> Address | None:
    if not c.delivery_line1:
        return None
    return Address(
        c.delivery_line1,
        c.delivery_postcode,
        c.delivery_city,
        c.delivery_country_code or c.country_code,
        c.delivery_line2,
    )


def _terms(invoice: Invoice, customer: Customer, org: Organization) -> PaymentTerms:
    if invoice.payment_terms_kind:
        return PaymentTerms(TermsKind(invoice.payment_terms_kind), invoice.payment_terms_days or 0)
    if customer.payment_terms_kind:
        return PaymentTerms(
            TermsKind(customer.payment_terms_kind), customer.payment_terms_days or 0
        )
    return PaymentTerms(TermsKind(org.payment_terms_kind), org.payment_terms_days)


def _check_vat_cases(org: Organization, customer: Customer, lines: list[InvoiceLine]) -> None:
    categories = {line.vat_category for line in lines}
    if org.vat_regime == VatRegime.FRANCHISE and categories - {VatCategory.EXEMPT.value}:
        raise BusinessError(
            "invoice.franchise_requires_exempt",
            _(
                "Your company is under the franchise en base: every line must use VAT category "
                "E (exempt, art. 293 B CGI) at 0 %."
            ),
        )
    needs_both_vat = {VatCategory.REVERSE_CHARGE.value, VatCategory.INTRA_EU_SUPPLY.value}
    if categories & needs_both_vat:
        if not org.vat_number:
            raise BusinessError(
                "invoice.seller_vat_required",
                _(
                    "Reverse charge and intra-EU supplies need your VAT number "
                    "(art. 242 nonies A, 3° and 4°): add it in the settings."
                ),
            )
        if not customer.vat_number:
            raise BusinessError(
                "invoice.buyer_vat_required",
                _(
                    "Reverse charge and intra-EU supplies need the customer's VAT "
                    "number (art. 242 nonies A, 3° and 4°)."
                ),
                field="customer_id",
            )
    if VatCategory.STANDARD.value in categories and not org.vat_number:
        raise BusinessError(
            "invoice.seller_vat_required",
            _(
                "Invoices with VAT must show your VAT number (art. 242 nonies A, "
                "2°): add it in the organization settings."
            ),
        )


def _check_credit_note_limit(invoice: Invoice, totals: Totals) -> None:
    # Lock the credited invoice: two credit notes issued at once must not both fit the cap.
    original = (
        Invoice.objects.select_for_update().filter(pk=invoice.credited_invoice_id).first()
        if invoice.credited_invoice_id
        else None
    )
    if original is None:
        raise BusinessError(
            "credit_note.no_invoice", _("A credit note must reference the invoice it corrects.")
        )
    if invoice.currency != original.currency:
        raise BusinessError(
            "credit_note.currency_mismatch",
            _("A credit note must be in the invoice's currency (%(currency)s)."),
            field="currency",
            currency=original.currency,
        )
    invoice.credited_invoice = original  # build_document reads it: no second query
    credited = _credited_total(original, excluding=invoice.pk)
    remaining = (original.total_incl_vat or ZERO) - credited
    if totals.tax_inclusive > remaining:
        raise BusinessError(
            "credit_note.exceeds_invoice",
            _(
                "This credit note (%(amount)s) exceeds what remains to credit on invoice "
                "%(number)s (%(remaining)s)."
            ),
            amount=totals.tax_inclusive,
            number=original.number,
            remaining=remaining,
        )


def _attach_line_references(lines: list[InvoiceLine]) -> None:
    """Load the products and deducted deposits the lines refer to, in one query each."""
    product_ids = {line.product_id for line in lines if line.product_id}
    if product_ids:
        products = {p.pk: p for p in Product.objects.filter(pk__in=product_ids).only("id", "code")}
        for line in lines:
            if line.product_id:
                line.product = products.get(line.product_id)
    deposit_ids = {line.deducted_invoice_id for line in lines if line.deducted_invoice_id}
    if deposit_ids:
        deposits = {
            d.pk: d
            for d in Invoice.objects.filter(pk__in=deposit_ids).only("id", "number", "issue_date")
        }
        for line in lines:
            if line.deducted_invoice_id:
                line.deducted_invoice = deposits.get(line.deducted_invoice_id)


def build_document(
    invoice: Invoice,
    lines: list[InvoiceLine],
    number: str,
    issue_date: dt.date,
    *,
    totals: Totals | None = None,
) -> InvoiceDocument:
    org, customer = invoice.organization, invoice.customer
    totals = totals or draft_totals(invoice, lines)
    terms = _terms(invoice, customer, org)
    due = invoice.due_date or due_date(issue_date, terms)
    check_due_date(issue_date, due)
    natures = [Nature(line.nature) for line in lines if line.deducted_invoice_id is None] or [
        Nature(lines[0].nature)
    ]
    has_deductions = any(line.deducted_invoice_id for line in lines)
    preceding: list[PrecedingInvoice] = []
    if invoice.credited_invoice_id:
        original = invoice.credited_invoice
        assert original is not None
        assert original.number
        assert original.issue_date
        preceding.append(PrecedingInvoice(original.number, original.issue_date))
    for line in lines:
        deposit = line.deducted_invoice
        if deposit is not None and deposit.number and deposit.issue_date:
            entry = PrecedingInvoice(deposit.number, deposit.issue_date)
            if entry not in preceding:
                preceding.append(entry)
    language = invoice.language
    doc_lines = tuple(
        DocumentLine(
            position=i + 1,
            description=line.description,
            quantity=line.quantity,
            unit_code=line.unit_code,
            unit_price=line.unit_price,
            discount_percent=line.discount_percent,
            vat_category=VatCategory(line.vat_category),
            vat_rate=line.vat_rate,
            nature=Nature(line.nature),
            amounts=totals.lines[i],
            product_code=line.product.code if line.product else "",
        )
        for i, line in enumerate(lines)
    )
    return InvoiceDocument(
        type_code=TYPE_CODES[DocumentKind(invoice.kind)],
        number=number,
        issue_date=issue_date,
        due_date=due,
        currency=invoice.currency,
        language=language,
        seller=_party_seller(org),
        buyer=_party_buyer(customer),
        lines=doc_lines,
        totals=totals,
        payment=PaymentInstructions(
            "58" if org.iban else "30",
            iban=org.iban,
            bic=org.bic,
            account_name=org.legal_name or org.name,
            remittance=creditor_reference(number) if number else "",
        ),
        notes=legal_notes(
            language=language,
            late_penalty_rate=org.late_penalty_rate,
            early_payment_discount=org.early_payment_discount,
            categories=[g.category for g in totals.vat_groups],
            vat_on_debits=org.vat_on_debits,
            buyer_is_business=customer.is_company,
        ),
        payment_terms_text=terms.describe(language),
        operation_nature=operation_nature(natures, after_deposit=has_deductions),
        vat_on_debits=org.vat_on_debits,
        delivery_address=_delivery(customer),
        delivery_date=invoice.delivery_date or issue_date,
        buyer_reference=invoice.buyer_reference,
        purchase_order=invoice.purchase_order,
        preceding_invoices=tuple(preceding),
        free_text=invoice.free_text or invoice.reason,
    )


def issue_invoice(
    ctx: Ctx,
    invoice_id: Any,
    *,
    issue_date: dt.date | None = None,
    render: bool = True,
) -> Invoice:
    """Issue a draft: allocate its number and freeze it. Idempotent against double clicks:
    a second call finds it issued and raises ``invoice.already_issued`` (409).

    The hot path is hand-written SQL (ADR 10): load the draft with its organization and
    customer (row locked), its lines, lock the series with its counter, write counter +
    invoice + series (one statement on PostgreSQL), then the event handlers and the audit
    record — instead of ~15 ORM queries whose compilation cost more than running them.
    """
    ctx.require(Perm.ISSUE_INVOICES)
    issue_date = _checked_issue_date(ctx, issue_date)
    pk = _invoice_pk(invoice_id)
    with atomic():
        conn, sql = rawsql.connection(), _issue_sql()
        with conn.cursor() as cursor:
            invoice = _load_for_issue(cursor, conn, sql, ctx.organization.id, pk, with_logo=render)
            _refuse_if_issued(invoice)
            lines = _load_lines(cursor, conn, sql, invoice)
        # Build and check the document before taking the series lock; only the number is
        # missing, and it is filled in once allocated.
        ready = _prepare_issue(invoice, lines, issue_date)
        with conn.cursor() as cursor:
            series = _lock_series(cursor, conn, sql, ctx.organization.id, invoice.kind, issue_date)
            _refuse_backdated(series, issue_date)
            snapshot_json = _assign_number(ctx, ready, series, 0, series.last_hash or GENESIS)
            _write_issues(cursor, conn, sql, [(invoice, snapshot_json)], series)
        _after_issue(ctx, ready, render)
    return invoice


def issue_invoices(
    ctx: Ctx,
    invoice_ids: Iterable[Any],
    *,
    issue_date: dt.date | None = None,
    render: bool = True,
) -> list[Invoice]:
    """Issue several drafts at once, numbered in the order given: all or none (the first
    refused draft is named in the error and nothing is issued). One transaction, one series
    lock and a handful of statements for the whole batch instead of a round of them per
    invoice; the result is exactly what issuing them one by one would give (ADR 16)."""
    ctx.require(Perm.ISSUE_INVOICES)
    issue_date = _checked_issue_date(ctx, issue_date)
    pks = list(dict.fromkeys(_invoice_pk(i) for i in invoice_ids))
    if not pks:
        return []
    if len(pks) > MAX_BATCH:
        raise BusinessError(
            "invoice.batch_too_large",
            _("Issue at most %(max)s invoices at once."),
            max=MAX_BATCH,
        )
    with atomic(), audit.deferred():
        conn, sql = rawsql.connection(), _issue_sql()
        with conn.cursor() as cursor:
            invoices = _load_many_for_issue(cursor, conn, sql, ctx.organization.id, pks, render)
            for invoice in invoices:
                _refuse_if_issued(invoice)
            lines = _load_many_lines(cursor, conn, sql, invoices)
        return issue_loaded(ctx, [(i, lines[i.pk]) for i in invoices], issue_date, render=render)


MAX_BATCH = 500


def issue_loaded(
    ctx: Ctx,
    drafts: list[tuple[Invoice, list[InvoiceLine]]],
    issue_date: dt.date,
    *,
    render: bool = False,
) -> list[Invoice]:
    """Issue drafts already read (and locked, or created) in the caller's transaction, with
    their organization, customer and lines: the batch form of :func:`issue_invoice`, for
    :func:`issue_invoices` and the billing run. Documents are built before the series are
    locked; numbers are consecutive in the order given."""
    ctx.require(Perm.ISSUE_INVOICES)
    ready: list[_Ready] = []
    for position, (invoice, lines) in enumerate(drafts, start=1):
        try:
            ready.append(_prepare_issue(invoice, lines, issue_date))
        except BusinessError as exc:
            if len(drafts) == 1:
                raise
            raise BusinessError(
                exc.code,
                _("Draft %(position)s of %(count)s (%(customer)s): %(error)s"),
                field=exc.field,
                position=position,
                count=len(drafts),
                customer=invoice.customer.name,
                error=exc.message,
            ) from exc
    conn, sql = rawsql.connection(), _issue_sql()
    with conn.cursor() as cursor:
        for kind in sorted({r.invoice.kind for r in ready}):  # one lock order
            of_kind = [r for r in ready if r.invoice.kind == kind]
            series = _lock_series(
                cursor, conn, sql, ctx.organization.id, kind, issue_date, count=len(of_kind)
            )
            _refuse_backdated(series, issue_date)
            previous = series.last_hash or GENESIS
            written: list[tuple[Invoice, str]] = []
            for offset, r in enumerate(of_kind):
                written.append((r.invoice, _assign_number(ctx, r, series, offset, previous)))
                previous = r.invoice.chain_hash
            _write_issues(cursor, conn, sql, written, series)
    issued = [_after_issue(ctx, r, render, publish=False) for r in ready]
    events.publish_all(issued)
    return [r.invoice for r in ready]


def _checked_issue_date(ctx: Ctx, issue_date: dt.date | None) -> dt.date:
    today = timezone.localdate(timezone=_zone(ctx.organization))
    issue_date = issue_date or today
    if issue_date > today:
        raise BusinessError(
            "invoice.future_date",
            _("An invoice cannot be issued with a date in the future."),
            field="issue_date",
        )
    return issue_date


@dataclasses.dataclass
class _Ready:
    """A draft checked and its document built, waiting for its number."""

    invoice: Invoice
    lines: list[InvoiceLine]
    totals: Totals
    document: InvoiceDocument  # complete once numbered


def _prepare_issue(invoice: Invoice, lines: list[InvoiceLine], issue_date: dt.date) -> _Ready:
    if not lines:
        raise BusinessError(
            "invoice.empty",
            _("An invoice without lines cannot be issued: add at least one line."),
        )
    _check_vat_cases(invoice.organization, invoice.customer, lines)
    totals = draft_totals(invoice, lines)
    if totals.tax_inclusive < 0:
        raise BusinessError(
            "invoice.negative_total", _("The total is negative: issue a credit note instead.")
        )
    if invoice.kind == DocumentKind.CREDIT_NOTE:
        _check_credit_note_limit(invoice, totals)
    return _Ready(
        invoice, lines, totals, build_document(invoice, lines, "", issue_date, totals=totals)
    )


def _refuse_backdated(series: _LockedSeries, issue_date: dt.date) -> None:
    if series.last_issue_date and issue_date < series.last_issue_date:
        raise BusinessError(
            "numbering.backdated",
            _(
                "The last document of this series is dated %(last)s: a new one cannot "
                "be dated earlier (numbers must follow the dates)."
            ),
            field="issue_date",
            last=series.last_issue_date.isoformat(),
        )


def _assign_number(
    ctx: Ctx, ready: _Ready, series: _LockedSeries, offset: int, previous: str
) -> str:
    """Give ``ready`` the ``offset``-th value allocated in ``series`` (chained after
    ``previous``) and freeze it; returns the snapshot's canonical JSON (hashed and stored)."""
    invoice, draft_doc, totals = ready.invoice, ready.document, ready.totals
    issue_date = draft_doc.issue_date
    value = series.value + offset
    number = numbering.check_number(numbering.format_number(series.pattern, issue_date, value))
    doc = dataclasses.replace(
        draft_doc,
        number=number,
        payment=dataclasses.replace(draft_doc.payment, remittance=creditor_reference(number)),
    )
    snapshot = to_dict(doc)
    snapshot_json = canonical_json(snapshot)  # serialised once: hashed and stored
    invoice.number = number
    invoice.series_id = series.id
    invoice.period_key = series.period_key
    invoice.sequence_value = value
    invoice.series_position = series.issued_count + 1 + offset
    invoice.issue_date = issue_date
    invoice.due_date = doc.due_date
    invoice.snapshot = snapshot
    invoice.chain_previous_hash = previous
    invoice.chain_hash = _chain_hash(invoice, previous, snapshot_json)
    invoice.status = Status.ISSUED
    invoice.issued_at = invoice.updated_at = timezone.now()
    invoice.issued_by = ctx.actor.label
    invoice.total_excl_vat = totals.tax_exclusive
    invoice.total_vat = totals.tax_total
    invoice.total_incl_vat = totals.tax_inclusive
    ready.document = doc
    return snapshot_json


def _after_issue(ctx: Ctx, ready: _Ready, render: bool, *, publish: bool = True) -> InvoiceIssued:
    """What follows the number: the stored PDF/A-3 + Factur-X, the credited invoice's
    status, the audit record and the event (accounting, payments) — published here, or
    returned for the caller to publish with its batch's others."""
    invoice, doc, org_id = ready.invoice, ready.document, ctx.organization.id
    number = doc.number
    if render:
        org_row = invoice.organization
        branding = documents.Branding(
            bytes(org_row.logo) if org_row.logo else None,
            org_row.logo_mime,
            org_row.accent_color,
        )
        pdf, xml = documents.build(doc, branding)
        documents.store(org_id, invoice.id, number, pdf, xml)
    if invoice.credited_invoice_id:
        _update_credited_status(invoice.credited_invoice_id)
    event = InvoiceIssued(
        org_id,
        invoice.id,
        invoice.kind,
        number,
        invoice.credited_invoice_id,
        doc,
        line_accounts=tuple(line.account_code for line in ready.lines),
        customer_id=invoice.customer_id,
    )
    if publish:
        events.publish(event)
    audit.record(
        org_id,
        ctx.actor,
        "invoice.issued",
        object_type=_INVOICE_LABEL,
        object_id=str(invoice.id),
        after={
            "number": number,
            "total_incl_vat": str(ready.totals.tax_inclusive),
            "chain_hash": invoice.chain_hash,
        },
    )
    return event


def chain_payload(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": str(invoice.id),
        "organization_id": str(invoice.organization_id),
        "number": invoice.number,
        "series_position": invoice.series_position,
        "snapshot": invoice.snapshot,
    }


def _chain_hash(invoice: Invoice, previous: str, snapshot_json: str) -> str:
    """``link_hash(previous, chain_payload(invoice))`` with the snapshot's canonical JSON
    already at hand: the payload's keys in sorted order, written as canonical_json would
    (tests compare both on every issued document; ``facturo check`` recomputes it)."""
    dumps = functools.partial(json.dumps, ensure_ascii=False)
    payload = (
        f'{{"id":{dumps(str(invoice.id))},"number":{dumps(invoice.number)},'
        f'"organization_id":{dumps(str(invoice.organization_id))},'
        f'"series_position":{int(invoice.series_position or 0)},"snapshot":{snapshot_json}}}'
    )
    return hashlib.sha256((previous + payload).encode()).hexdigest()


# --- issuing: hand-written SQL (ADR 10) ----------------------------------------------------

_INVOICE_LABEL = Invoice._meta.label_lower


def _invoice_pk(invoice_id: Any) -> uuid.UUID:
    """The id as a UUID; malformed ids are "not found" too (never say more about ids)."""
    try:
        value = Invoice._meta.pk.to_python(invoice_id)
    except (DjangoValidationError, ValueError, TypeError, AttributeError):
        value = None
    if not isinstance(value, uuid.UUID):
        raise NotFound("invoice.not_found", _("No such invoice."))
    return value


@dataclasses.dataclass(frozen=True)
class _IssueSql:
    """The statements of the issuing hot path for one database alias, built once."""

    invoice: rawsql.Columns
    organization: rawsql.Columns  # without the logo
    organization_logo: rawsql.Columns
    customer: rawsql.Columns
    line: rawsql.Columns
    product: rawsql.Columns
    deposit: rawsql.Columns
    series: rawsql.Columns
    counter: rawsql.Columns
    load: str
    load_logo: str
    lines: str
    lock_series: str
    insert_counter: str
    update_counter: str
    update_invoice: str
    update_series: str
    upsert_counter: str
    write: str  # PostgreSQL: invoice + series in one statement
    issue_params: Any  # (conn, invoice) -> values of _ISSUE_ATTNAMES but the snapshot, id
    postgresql: bool


_issue_sql_cache: dict[str, _IssueSql] = {}
_SNAPSHOT_AT = _ISSUE_ATTNAMES.index("snapshot")


def _issue_sql() -> _IssueSql:
    conn = rawsql.connection()
    cached = _issue_sql_cache.get(conn.alias)
    if cached is not None:
        return cached
    pg = rawsql.is_postgresql(conn)
    q, t, col = conn.ops.quote_name, rawsql.table, rawsql.column
    no_logo = tuple(f.attname for f in Organization._meta.concrete_fields if f.name != "logo")
    cols = {
        "invoice": rawsql.columns(Invoice, "i"),
        "organization": rawsql.columns(Organization, "o", no_logo),
        "organization_logo": rawsql.columns(Organization, "o"),
        "customer": rawsql.columns(Customer, "c"),
        "line": rawsql.columns(InvoiceLine, "l"),
        "product": rawsql.columns(Product, "p", ("id", "code")),
        "deposit": rawsql.columns(Invoice, "d", ("id", "number", "issue_date")),
        "series": rawsql.columns(
            NumberingSeries,
            "s",
            ("id", "pattern", "reset", "last_issue_date", "last_hash", "issued_count"),
        ),
        "counter": rawsql.columns(SeriesCounter, "c", ("id", "last_value")),
    }
    # Identifiers only come from the models' metadata; every value is a parameter. The
    # snapshot arrives as its canonical JSON text (PostgreSQL casts it to jsonb).
    issue_set = [f"{col(Invoice, f)} = %s" for f in _ISSUE_ATTNAMES]
    if pg:
        issue_set[_SNAPSHOT_AT] += "::jsonb"
    names = {
        **{f"{k}_cols": v.sql for k, v in cols.items()},
        "invoice": t(Invoice),
        "organization": t(Organization),
        "customer": t(Customer),
        "line": t(InvoiceLine),
        "product": t(Product),
        "series": t(NumberingSeries),
        "counter": t(SeriesCounter),
        "series_id": q("series_id"),
        "period_key": q("period_key"),
        "last_value": q("last_value"),
        "last_issue_date": q("last_issue_date"),
        "last_hash": q("last_hash"),
        "issued_count": q("issued_count"),
        "issue_set": ", ".join(issue_set),
        "lock_i": " FOR UPDATE OF i" if pg else "",
        "period_case": "(CASE s.reset WHEN %s THEN %s WHEN %s THEN %s ELSE %s END)",
    }
    load = (
        "SELECT {invoice_cols}, {org}, {customer_cols} FROM {invoice} i "
        "JOIN {organization} o ON o.id = i.organization_id "
        "JOIN {customer} c ON c.id = i.customer_id "
        "WHERE i.id = %s AND i.organization_id = %s{lock_i}"
    )
    sql = {
        "load": load.replace("{org}", "{organization_cols}"),
        "load_logo": load.replace("{org}", "{organization_logo_cols}"),
        "lines": "SELECT {line_cols}, {product_cols}, {deposit_cols} FROM {line} l "
        "LEFT JOIN {product} p ON p.id = l.product_id "
        "LEFT JOIN {invoice} d ON d.id = l.deducted_invoice_id "
        "WHERE l.invoice_id = %s ORDER BY l.position, l.id",
        # PostgreSQL: lock the series, then bump its counter in the same statement. Only
        # rows a statement locks or updates are re-read after waiting for a lock; a counter
        # merely joined would be read as it was before the previous issuer committed.
        "lock_series": (
            "WITH s AS (SELECT {series_cols} FROM {series} s WHERE s.organization_id = %s "
            "AND s.kind = %s AND s.is_default FOR UPDATE), "
            "c AS (UPDATE {counter} SET {last_value} = {counter}.{last_value} + %s FROM s "
            "WHERE {counter}.{series_id} = s.id AND {counter}.{period_key} = {period_case} "
            "RETURNING {counter}.id, {counter}.{last_value}) "
            "SELECT {series_cols}, {counter_cols} FROM s LEFT JOIN c ON true"
            if pg
            # SQLite: the whole transaction holds the database lock (BEGIN IMMEDIATE).
            else "SELECT {series_cols}, {counter_cols} FROM {series} s "
            "LEFT JOIN {counter} c ON c.series_id = s.id AND c.period_key = {period_case} "
            "WHERE s.organization_id = %s AND s.kind = %s AND s.is_default"
        ),
        # first document of a period (the series is locked; the conflict clause is for
        # the statement-snapshot case where a concurrent first insert was not yet visible)
        "upsert_counter": "INSERT INTO {counter} ({series_id}, {period_key}, {last_value}) "
        "VALUES (%s, %s, %s) ON CONFLICT ({series_id}, {period_key}) DO UPDATE SET "
        "{last_value} = {counter}.{last_value} + %s RETURNING {last_value}",
        "insert_counter": "INSERT INTO {counter} ({series_id}, {period_key}, {last_value}) "
        "VALUES (%s, %s, %s)",
        "update_counter": "UPDATE {counter} SET {last_value} = %s WHERE id = %s",
        "update_invoice": "UPDATE {invoice} SET {issue_set} WHERE id = %s",
        "update_series": "UPDATE {series} SET {last_issue_date} = %s, {last_hash} = %s, "
        "{issued_count} = %s WHERE id = %s",
    }
    sql = {k: rawsql.compose(v, **names) for k, v in sql.items()}
    sql["write"] = rawsql.compose("WITH i AS ({update_invoice}) {update_series}", **sql)
    cached = _IssueSql(
        **cols,  # type: ignore[arg-type]
        **sql,  # type: ignore[arg-type]
        issue_params=rawsql.preparer(
            Invoice, [*(a for a in _ISSUE_ATTNAMES if a != "snapshot"), "id"]
        ),
        postgresql=pg,
    )
    _issue_sql_cache[conn.alias] = cached
    return cached


def _load_for_issue(
    cursor: Any, conn: Any, sql: _IssueSql, org_id: uuid.UUID, pk: uuid.UUID, *, with_logo: bool
) -> Invoice:
    """The draft (row locked) with its organization and customer, in one statement.

    On PostgreSQL, a statement that waited for the row lock re-reads the locked invoice
    but re-checks the join against the customer row it first read: if a concurrent edit
    changed the draft's customer, the row drops out. Running it again (new snapshot)
    tells that case from a missing invoice."""
    params = [
        rawsql.prep(Invoice, "id", pk, conn),
        rawsql.prep(Invoice, "organization_id", org_id, conn),
    ]
    statement = sql.load_logo if with_logo else sql.load
    cursor.execute(statement, params)
    row = cursor.fetchone()
    if row is None and sql.postgresql:
        cursor.execute(statement, params)
        row = cursor.fetchone()
    if row is None:
        raise NotFound("invoice.not_found", _("No such invoice."))
    return _invoice_of(conn, sql, row, with_logo)


def _load_many_for_issue(
    cursor: Any,
    conn: Any,
    sql: _IssueSql,
    org_id: uuid.UUID,
    pks: list[uuid.UUID],
    with_logo: bool,
) -> list[Invoice]:
    """:func:`_load_for_issue` for several drafts, locked in id order (two batches over
    the same drafts never wait for each other crosswise), returned in the order of
    ``pks``. Any id missing (or of another organization): not found, nothing issued."""
    statement = (sql.load_logo if with_logo else sql.load).replace(
        "i.id = %s", "i.id IN (" + ", ".join(["%s"] * len(pks)) + ")"
    )
    lock = " FOR UPDATE OF i"
    statement = statement.removesuffix(lock) + " ORDER BY i.id" + (lock if sql.postgresql else "")
    params = [rawsql.prep(Invoice, "id", pk, conn) for pk in pks]
    params.append(rawsql.prep(Invoice, "organization_id", org_id, conn))
    for _attempt in range(2 if sql.postgresql else 1):  # see _load_for_issue
        cursor.execute(statement, params)
        found = {i.pk: i for i in (_invoice_of(conn, sql, r, with_logo) for r in cursor.fetchall())}
        if len(found) == len(pks):
            break
    missing = [position for position, pk in enumerate(pks, start=1) if pk not in found]
    if missing:  # which one, by position: never say more about an id than "not found"
        raise NotFound(
            "invoice.not_found",
            _("No such invoice (item %(position)s of the list)."),
            position=missing[0],
        )
    return [found[pk] for pk in pks]


def _invoice_of(conn: Any, sql: _IssueSql, row: Any, with_logo: bool) -> Invoice:
    org_cols = sql.organization_logo if with_logo else sql.organization
    n_invoice = len(sql.invoice)
    invoice: Invoice = sql.invoice.instance(row, 0, conn)
    rawsql.set_related(invoice, "organization", org_cols.instance(row, n_invoice, conn))
    rawsql.set_related(
        invoice, "customer", sql.customer.instance(row, n_invoice + len(org_cols), conn)
    )
    return invoice


def _load_lines(cursor: Any, conn: Any, sql: _IssueSql, invoice: Invoice) -> list[InvoiceLine]:
    """The lines in order, with the product code and the deducted deposit's number and date
    each of them refers to. A statement of its own, after the invoice row is locked: joined
    to the locking statement, lines edited by a transaction it waited for would be read as
    they were before that edit."""
    return _load_many_lines(cursor, conn, sql, [invoice])[invoice.pk]


def _load_many_lines(
    cursor: Any, conn: Any, sql: _IssueSql, invoices: list[Invoice]
) -> dict[uuid.UUID, list[InvoiceLine]]:
    """The lines of each invoice (see :func:`_load_lines`), by invoice id."""
    by_id = {i.pk: i for i in invoices}
    statement = sql.lines
    if len(invoices) > 1:
        statement = statement.replace(
            "l.invoice_id = %s", "l.invoice_id IN (" + ", ".join(["%s"] * len(invoices)) + ")"
        )
    cursor.execute(
        statement, [rawsql.prep(InvoiceLine, "invoice_id", i.pk, conn) for i in invoices]
    )
    rows = cursor.fetchall()
    n_line, n_product = len(sql.line), len(sql.product)
    lines: dict[uuid.UUID, list[InvoiceLine]] = {pk: [] for pk in by_id}
    for row in rows:
        line: InvoiceLine = sql.line.instance(row, 0, conn)
        rawsql.set_related(line, "invoice", by_id[line.invoice_id])
        rawsql.set_related(
            line, "product", sql.product.instance(row, n_line, conn) if line.product_id else None
        )
        rawsql.set_related(
            line,
            "deducted_invoice",
            sql.deposit.instance(row, n_line + n_product, conn)
            if line.deducted_invoice_id
            else None,
        )
        lines[line.invoice_id].append(line)
    return lines


@dataclasses.dataclass(frozen=True)
class _LockedSeries:
    id: uuid.UUID
    pattern: str
    reset: str
    last_issue_date: dt.date | None
    last_hash: str
    issued_count: int
    period_key: str
    value: int  # the first sequence value allocated (to the first document)
    count: int  # values allocated: value … value + count - 1
    counter_id: int | None  # SQLite: the counter row to write (None: to create)

    @property
    def last_value(self) -> int:
        return self.value + self.count - 1


def _lock_series(
    cursor: Any,
    conn: Any,
    sql: _IssueSql,
    org_id: uuid.UUID,
    kind: str,
    on: dt.date,
    *,
    count: int = 1,
) -> _LockedSeries:
    """Lock the default series of ``kind`` (the serialisation point of numbering) and
    allocate the next ``count`` values of its counter for the period of ``on``."""
    keys = {r: numbering.period_key(r, on) for r in numbering.Reset}
    case = [
        numbering.Reset.NEVER.value,
        keys[numbering.Reset.NEVER],
        numbering.Reset.MONTHLY.value,
        keys[numbering.Reset.MONTHLY],
        keys[numbering.Reset.YEARLY],
    ]
    where = [rawsql.prep(NumberingSeries, "organization_id", org_id, conn), kind]
    cursor.execute(sql.lock_series, [*where, count, *case] if sql.postgresql else case + where)
    row = cursor.fetchone()
    if row is None:
        raise NumberingSeries.DoesNotExist(f"no default {kind} series")
    sid, pattern, reset, last_date, last_hash, issued = sql.series.values(row, 0, conn)
    counter_id, counter_value = sql.counter.values(row, len(sql.series), conn)
    key = keys[numbering.Reset(reset)]
    if not sql.postgresql:
        value = (counter_value or 0) + 1  # written by _write_issues
    elif counter_id is not None:
        value = counter_value - count + 1  # already moved by the statement
    else:  # first document of the period
        cursor.execute(
            sql.upsert_counter,
            [rawsql.prep(SeriesCounter, "series_id", sid, conn), key, count, count],
        )
        value = cursor.fetchone()[0] - count + 1
    return _LockedSeries(
        sid, pattern, reset, last_date, last_hash, issued, key, value, count, counter_id
    )


def _write_issues(
    cursor: Any,
    conn: Any,
    sql: _IssueSql,
    written: list[tuple[Invoice, str]],
    series: _LockedSeries,
) -> None:
    """Write the issued invoices of one series and the series. PostgreSQL moved the counter
    when locking; one invoice goes with the series in one statement (data-modifying CTE),
    several in one ``executemany`` (pipelined by psycopg) then the series. SQLite (in
    process, where a statement costs microseconds): counter, invoices, series."""
    last = written[-1][0]
    if sql.postgresql and len(written) == 1:
        cursor.execute(
            sql.write, _invoice_params(conn, sql, *written[0]) + _series_params(conn, series, last)
        )
        return
    if not sql.postgresql:
        if series.counter_id is None:
            cursor.execute(
                sql.insert_counter,
                [
                    rawsql.prep(SeriesCounter, "series_id", series.id, conn),
                    series.period_key,
                    series.last_value,
                ],
            )
        else:
            cursor.execute(sql.update_counter, [series.last_value, series.counter_id])
    cursor.executemany(sql.update_invoice, [_invoice_params(conn, sql, i, j) for i, j in written])
    cursor.execute(sql.update_series, _series_params(conn, series, last, len(written)))


def _invoice_params(conn: Any, sql: _IssueSql, invoice: Invoice, snapshot_json: str) -> list[Any]:
    params: list[Any] = sql.issue_params(conn, invoice)
    params.insert(_SNAPSHOT_AT, snapshot_json)
    return params


def _series_params(conn: Any, series: _LockedSeries, last: Invoice, count: int = 1) -> list[Any]:
    return [
        rawsql.prep(NumberingSeries, "last_issue_date", last.issue_date, conn),
        last.chain_hash,
        series.issued_count + count,
        rawsql.prep(NumberingSeries, "id", series.id, conn),
    ]


def _zone(org: Organization) -> dt.tzinfo:
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(org.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("Europe/Paris")


def _credited_total(original: Invoice, excluding: Any = None) -> Decimal:
    """Total incl. VAT of the credit notes already issued against ``original``."""
    notes = original.credit_notes.exclude(status=Status.DRAFT)
    if excluding is not None:
        notes = notes.exclude(pk=excluding)
    return sum((note.total_incl_vat or ZERO for note in notes), ZERO)


def _update_credited_status(original_id: Any) -> None:
    original = Invoice.objects.select_for_update().get(pk=original_id)
    if _credited_total(original) >= (original.total_incl_vat or ZERO):
        Invoice.objects.filter(pk=original_id).update(status=Status.CREDITED)


# --- credit notes --------------------------------------------------------------------------


def create_credit_note(
    ctx: Ctx,
    invoice_id: Any,
    *,
    lines: Iterable[Mapping[str, Any]] | None = None,
    reason: str = "",
    issue: bool = False,
    render: bool = True,
) -> Invoice:
    """A credit note for the whole invoice (``lines`` None) or for the given lines."""
    ctx.require(Perm.EDIT_INVOICES if not issue else Perm.ISSUE_INVOICES)
    with atomic():
        original = get_invoice(ctx, invoice_id, for_update=True)
        if original.is_draft:
            raise BusinessError(
                "credit_note.draft_invoice",
                _("A draft can be edited or deleted; credit notes are for issued invoices."),
            )
        if original.kind == DocumentKind.CREDIT_NOTE:
            raise BusinessError(
                "credit_note.of_credit_note",
                _("A credit note cannot be credited; issue a new invoice."),
            )
        if lines is None:
            source = list(original.lines.all())
            line_data: list[Mapping[str, Any]] = [
                {f: getattr(line, f) for f in LINE_FIELDS}
                for line in source
                if line.deducted_invoice_id is None
            ]
            deductions = [line for line in source if line.deducted_invoice_id is not None]
        else:
            line_data, deductions = list(lines), []
        note = Invoice.objects.create(
            organization=ctx.organization,
            customer=original.customer,
            kind=DocumentKind.CREDIT_NOTE,
            credited_invoice=original,
            currency=original.currency,
            language=original.language,
            payment_terms_kind=TermsKind.ON_RECEIPT.value,
            payment_terms_days=0,
            document_discount_percent=original.document_discount_percent
            if lines is None
            else Decimal(0),
            purchase_order=original.purchase_order,
            reason=clean_text(reason, "reason", max_length=300),
        )
        clean = _clean_lines(ctx, line_data, note.currency)
        for line in clean:
            line.invoice = note
        for i, d in enumerate(deductions):
            clean.append(
                InvoiceLine(
                    invoice=note,
                    position=len(clean) + 1 + i,
                    description=d.description,
                    quantity=d.quantity,
                    unit_code=d.unit_code,
                    unit_price=d.unit_price,
                    vat_category=d.vat_category,
                    vat_rate=d.vat_rate,
                    nature=d.nature,
                    deducted_invoice=d.deducted_invoice,
                )
            )
        InvoiceLine.objects.bulk_create(clean)
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "credit_note.draft_created",
            note,
            after={"credits": original.number, "reason": reason},
        )
        if issue:
            note = issue_invoice(ctx, note.id, render=render)
    return note


# --- sending -------------------------------------------------------------------------------


def mark_sent(invoice_ids: list[Any]) -> None:
    """Issued invoices whose e-mail was just written are "sent" (later states stay)."""
    if invoice_ids:
        Invoice.objects.filter(pk__in=invoice_ids, status=Status.ISSUED).update(
            status=Status.SENT, sent_at=timezone.now()
        )
