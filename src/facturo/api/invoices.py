"""/invoices: drafts, issue, documents, credit notes, deposits, sending.

Drafts show live totals (computed by the same ``core.totals`` as at issue); issued
documents show their frozen snapshot, which is also what the PDF and the Factur-X XML say.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from ninja import Field, Query, Router, Schema
from ninja.responses import Status
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from facturo.core.errors import ConflictError, NotFound, _
from facturo.core.money import round_money
from facturo.core.totals import Totals
from facturo.documents import services as documents
from facturo.documents.models import StoredDocument
from facturo.invoicing import selectors, sending
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, InvoiceLine
from facturo.organizations.context import Ctx

from .auth import ctx_of
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .products import NatureName, UnitCode, VatCategoryCode
from .schemas import (
    DecimalOut,
    Input,
    PageMeta,
    PageParams,
    Percent,
    Quantity,
    TermsKindName,
    UnitPrice,
    optional,
    plain,
)

router = Router(tags=["invoices"])

MAX_LINES = invoicing.MAX_LINES
StatusName = Literal["draft", "issued", "sent", "partially_paid", "paid", "credited"]
KindName = Literal["invoice", "credit_note", "deposit"]


# --- output ----------------------------------------------------------------------------------


class LineOut(Schema):
    position: int
    product_id: uuid.UUID | None
    description: str
    quantity: DecimalOut
    unit_code: str
    unit_price: DecimalOut
    discount_percent: DecimalOut
    vat_category: str
    vat_rate: DecimalOut
    nature: str
    account_code: str
    deducted_invoice_id: uuid.UUID | None = Field(
        description="Set on the negative lines that deduct a deposit invoice."
    )
    net_amount: DecimalOut = Field(description="Line net amount (BT-131), rounded.")


class VatGroupOut(Schema):
    category: str
    rate: DecimalOut
    taxable_amount: DecimalOut
    tax_amount: DecimalOut


class TotalsOut(Schema):
    line_total: DecimalOut
    allowance_total: DecimalOut
    charge_total: DecimalOut
    tax_exclusive: DecimalOut
    tax_total: DecimalOut
    tax_inclusive: DecimalOut
    prepaid: DecimalOut
    due_payable: DecimalOut
    vat_groups: list[VatGroupOut]


class InvoiceOut(Schema):
    id: uuid.UUID
    kind: str
    status: str
    number: str | None
    customer_id: uuid.UUID
    customer_name: str
    currency: str
    language: str
    issue_date: dt.date | None
    due_date: dt.date | None
    payment_terms_kind: str
    payment_terms_days: int | None
    purchase_order: str
    buyer_reference: str
    delivery_date: dt.date | None
    document_discount_percent: DecimalOut
    free_text: str
    reason: str
    credited_invoice_id: uuid.UUID | None
    lines: list[LineOut]
    totals: TotalsOut
    totals_frozen: bool = Field(
        description="True once issued: the totals are those of the issued document."
    )
    issued_at: dt.datetime | None
    sent_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class InvoiceSummary(Schema):
    id: uuid.UUID
    kind: str
    status: str
    number: str | None
    customer_id: uuid.UUID
    customer_name: str
    currency: str
    issue_date: dt.date | None
    due_date: dt.date | None
    total_excl_vat: DecimalOut | None = Field(description="Null for drafts (see GET one).")
    total_vat: DecimalOut | None
    total_incl_vat: DecimalOut | None
    created_at: dt.datetime


class InvoicePage(PageMeta):
    items: list[InvoiceSummary]


def _money(value: Decimal | str) -> str:
    return str(Decimal(value))


def _totals_out(totals: dict[str, Any]) -> dict[str, Any]:
    keys = ("line_total", "allowance_total", "charge_total", "tax_exclusive", "tax_total",
            "tax_inclusive", "prepaid", "due_payable")  # fmt: skip
    result: dict[str, Any] = {k: _money(totals[k]) for k in keys}
    result["vat_groups"] = [
        {"category": str(g["category"]), "rate": plain(Decimal(g["rate"])),
         "taxable_amount": _money(g["taxable_amount"]), "tax_amount": _money(g["tax_amount"])}
        for g in totals["vat_groups"]
    ]  # fmt: skip
    return result


def _live_totals(totals: Totals) -> dict[str, Any]:
    return {
        **{k: getattr(totals, k) for k in ("line_total", "allowance_total", "charge_total",
                                           "tax_exclusive", "tax_total", "tax_inclusive",
                                           "prepaid", "due_payable")},
        "vat_groups": [{"category": g.category.value, "rate": g.rate,
                        "taxable_amount": g.taxable_amount, "tax_amount": g.tax_amount}
                       for g in totals.vat_groups],
        "lines": [{"net_amount": amounts.net_amount} for amounts in totals.lines],
    }  # fmt: skip


def invoice_out(invoice: Invoice) -> dict[str, Any]:
    lines: list[InvoiceLine] = list(invoice.lines.all())
    if invoice.is_draft or not invoice.snapshot:
        totals = _live_totals(invoicing.draft_totals(invoice, lines))
    else:
        totals = invoice.snapshot["totals"]
    line_amounts = totals["lines"]
    return {
        "id": invoice.id,
        "kind": invoice.kind,
        "status": invoice.status,
        "number": invoice.number,
        "customer_id": invoice.customer_id,
        "customer_name": invoice.customer.name,
        "currency": invoice.currency,
        "language": invoice.language,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "payment_terms_kind": invoice.payment_terms_kind,
        "payment_terms_days": invoice.payment_terms_days,
        "purchase_order": invoice.purchase_order,
        "buyer_reference": invoice.buyer_reference,
        "delivery_date": invoice.delivery_date,
        "document_discount_percent": plain(invoice.document_discount_percent),
        "free_text": invoice.free_text,
        "reason": invoice.reason,
        "credited_invoice_id": invoice.credited_invoice_id,
        "lines": [
            {"position": line.position, "product_id": line.product_id,
             "description": line.description, "quantity": plain(line.quantity),
             "unit_code": line.unit_code, "unit_price": plain(line.unit_price, 2),
             "discount_percent": plain(line.discount_percent), "vat_category": line.vat_category,
             "vat_rate": plain(line.vat_rate), "nature": line.nature,
             "account_code": line.account_code, "deducted_invoice_id": line.deducted_invoice_id,
             "net_amount": _money(line_amounts[i]["net_amount"])}
            for i, line in enumerate(lines)
        ],
        "totals": _totals_out(totals),
        "totals_frozen": not invoice.is_draft,
        "issued_at": invoice.issued_at,
        "sent_at": invoice.sent_at,
        "created_at": invoice.created_at,
        "updated_at": invoice.updated_at,
    }  # fmt: skip


def _summary(invoice: Invoice) -> dict[str, Any]:
    def amount(value: Decimal | None) -> str | None:
        # Stored with 3 decimals; shown with the currency's (they are already rounded to it).
        return (
            None if value is None or invoice.is_draft else str(round_money(value, invoice.currency))
        )

    return {
        "id": invoice.id, "kind": invoice.kind, "status": invoice.status,
        "number": invoice.number, "customer_id": invoice.customer_id,
        "customer_name": invoice.customer.name, "currency": invoice.currency,
        "issue_date": invoice.issue_date, "due_date": invoice.due_date,
        "total_excl_vat": amount(invoice.total_excl_vat), "total_vat": amount(invoice.total_vat),
        "total_incl_vat": amount(invoice.total_incl_vat), "created_at": invoice.created_at,
    }  # fmt: skip


# --- input -----------------------------------------------------------------------------------


def _check_email(value: str) -> str:
    try:
        validate_email(value)
    except DjangoValidationError:
        raise PydanticCustomError("email", "“{value}” is not a valid e-mail address.",
                                  {"value": value[:100]}) from None  # fmt: skip
    return value


EmailAddress = Annotated[str, Field(max_length=254), AfterValidator(_check_email)]


class LineIn(Input):
    """A line; with ``product_id``, omitted fields come from the product."""

    product_id: uuid.UUID | None = None
    description: str = optional(max_length=500)
    quantity: Quantity = optional(description="Default 1.")
    unit_code: UnitCode = optional()
    unit_price: UnitPrice = optional(description="Unit price excluding VAT.")
    discount_percent: Percent = optional()
    vat_category: VatCategoryCode = optional()
    vat_rate: Percent = optional(description="Percent, e.g. 20 or 5.5. Default 20.")
    nature: NatureName = optional()
    account_code: str = optional(max_length=20)


class InvoiceHeader(Input):
    currency: str = optional(max_length=3, description="ISO 4217; default: the customer's.")
    language: Literal["fr", "en"] = optional()
    payment_terms_kind: TermsKindName = optional()
    payment_terms_days: int | None = Field(None, ge=0, le=365)
    purchase_order: str = optional(max_length=100)
    buyer_reference: str = optional(max_length=100)
    delivery_date: dt.date | None = None
    due_date: dt.date | None = None
    document_discount_percent: Percent = optional()
    free_text: str = optional(max_length=10_000)


class InvoiceIn(InvoiceHeader):
    customer_id: uuid.UUID
    kind: Literal["invoice", "deposit"] = "invoice"
    lines: list[LineIn] = Field(default_factory=list, max_length=MAX_LINES)


class InvoicePatch(InvoiceHeader):
    customer_id: uuid.UUID = optional()
    lines: list[LineIn] = optional(max_length=MAX_LINES,
                                description="When sent, replaces every line (deposit "
                                            "deductions are kept).")  # fmt: skip


class IssueIn(Input):
    issue_date: dt.date | None = Field(None, description="Default: today.")


class IssueManyIn(Input):
    invoice_ids: list[uuid.UUID] = Field(
        ..., min_length=1, max_length=invoicing.MAX_BATCH,
        description="Drafts to issue, numbered in this order.",
    )  # fmt: skip
    issue_date: dt.date | None = Field(None, description="Default: today.")


class IssuedList(Schema):
    items: list[InvoiceOut]


class CreditNoteIn(Input):
    lines: list[LineIn] | None = Field(
        None, max_length=MAX_LINES, description="Omit to credit the whole invoice."
    )
    reason: str = Field("", max_length=300)
    issue: bool = Field(True, description="Issue it at once (default) or keep it as a draft.")


class DepositDeductionIn(Input):
    deposit_id: uuid.UUID


class SendIn(Input):
    to: list[EmailAddress] | None = Field(
        None, max_length=20, description="Default: the customer's address."
    )
    cc: list[EmailAddress] | None = Field(None, max_length=20)


class InvoiceFilters(PageParams):
    status: StatusName | None = None
    kind: KindName | None = None
    customer_id: uuid.UUID | None = None
    issued_from: dt.date | None = Field(None, description="Issue date on or after.")
    issued_to: dt.date | None = Field(None, description="Issue date on or before.")
    number: str = Field("", max_length=35, description="Part of the number.")


def _lines(lines: list[LineIn] | None) -> list[dict[str, Any]] | None:
    return None if lines is None else [line.model_dump(exclude_unset=True) for line in lines]


def _header(payload: Schema, *exclude: str) -> dict[str, Any]:
    return {k: v for k, v in payload.model_dump(exclude_unset=True).items() if k not in exclude}


def _fetch(ctx: Ctx, invoice_id: Any) -> dict[str, Any]:
    invoice = invoicing.get_invoice(ctx, invoice_id)
    return invoice_out(invoice)


# --- routes ----------------------------------------------------------------------------------


@router.get("/invoices", response=InvoicePage, summary="List invoices and credit notes")
def list_invoices(request: HttpRequest, filters: Query[InvoiceFilters]) -> dict[str, Any]:
    qs = selectors.invoices(
        ctx_of(request),
        status=filters.status or "",
        kind=filters.kind or "",
        customer_id=filters.customer_id,
        issued_from=filters.issued_from,
        issued_to=filters.issued_to,
        number=filters.number or "",
    )
    page = qs[filters.offset : filters.offset + filters.limit]
    return {"count": qs.count(), "limit": filters.limit, "offset": filters.offset,
            "items": [_summary(invoice) for invoice in page]}  # fmt: skip


@router.post("/invoices", response={201: InvoiceOut}, summary="Create a draft")
def create_invoice(request: HttpRequest, payload: InvoiceIn) -> Status:
    ctx = ctx_of(request)
    draft = invoicing.create_draft(ctx, payload.customer_id, _lines(payload.lines) or [],
                                   payload.kind,
                                   **_header(payload, "customer_id", "kind", "lines"))  # fmt: skip
    return Status(201, _fetch(ctx, draft.id))  # read back: the stored values, as GET shows


@router.post("/invoices/batch-issue", response=IssuedList,
             summary="Issue several drafts at once (all or none)",
             description="One transaction: every draft gets its number, in the order given, "
                         "or none does (the error names the refused draft). Safe to retry "
                         "with the same Idempotency-Key.")  # fmt: skip
# Declared before /invoices/{invoice_id}: routes match in order.
def issue_invoices(request: HttpRequest, payload: IssueManyIn) -> dict[str, Any]:
    ctx = ctx_of(request)
    issued = invoicing.issue_invoices(ctx, payload.invoice_ids, issue_date=payload.issue_date)
    return {"items": [_fetch(ctx, invoice.id) for invoice in issued]}


@router.get("/invoices/{invoice_id}", response=InvoiceOut, summary="Get an invoice")
def get_invoice(request: HttpRequest, invoice_id: uuid.UUID) -> dict[str, Any]:
    return _fetch(ctx_of(request), invoice_id)


@router.patch("/invoices/{invoice_id}", response=InvoiceOut, summary="Update a draft")
def update_invoice(request: HttpRequest, invoice_id: uuid.UUID,
                   payload: InvoicePatch) -> dict[str, Any]:  # fmt: skip
    ctx = ctx_of(request)
    header = _header(payload, "lines")
    invoicing.update_draft(ctx, invoice_id, lines=_lines(payload.lines), **header)
    return _fetch(ctx, invoice_id)


@router.delete("/invoices/{invoice_id}", response={204: None}, summary="Delete a draft")
def delete_invoice(request: HttpRequest, invoice_id: uuid.UUID) -> Status:
    invoicing.delete_draft(ctx_of(request), invoice_id)
    return Status(204, None)


@router.post("/invoices/{invoice_id}/issue", response=InvoiceOut,
             summary="Issue a draft (number, frozen totals, PDF/A-3 + Factur-X)")  # fmt: skip
def issue_invoice(request: HttpRequest, invoice_id: uuid.UUID,
                  payload: IssueIn | None = None) -> dict[str, Any]:  # fmt: skip
    ctx = ctx_of(request)
    issue_date = payload.issue_date if payload else None
    invoicing.issue_invoice(ctx, invoice_id, issue_date=issue_date, render=True)
    return _fetch(ctx, invoice_id)


def _safe_filename(number: str, extension: str) -> str:
    return re.sub(r"[^A-Za-z0-9+_-]", "-", number) + "." + extension


def _document(request: HttpRequest, invoice_id: uuid.UUID, content_type: str,
              extension: str) -> HttpResponse:  # fmt: skip
    ctx = ctx_of(request)
    invoice = invoicing.get_invoice(ctx, invoice_id)
    if invoice.is_draft or not invoice.number:
        raise ConflictError("invoice.not_issued",
                            _("A draft has no document yet: issue it first."))  # fmt: skip
    try:
        stored = documents.fetch(ctx.organization.id, invoice.id, content_type)
    except StoredDocument.DoesNotExist:
        raise NotFound("document.not_found",
                       _("The document of %(number)s was not built."),
                       number=invoice.number) from None  # fmt: skip
    response = HttpResponse(bytes(stored.content), content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(
        True, _safe_filename(invoice.number, extension)
    )
    return response


@router.get("/invoices/{invoice_id}/pdf", response={200: None}, summary="Download the PDF",
            openapi_extra={"responses": {"200": {"description": "PDF/A-3 with Factur-X",
                           "content": {"application/pdf": {"schema": {
                               "type": "string", "format": "binary"}}}}}})  # fmt: skip
def invoice_pdf(request: HttpRequest, invoice_id: uuid.UUID) -> HttpResponse:
    return _document(request, invoice_id, documents.PDF, "pdf")


@router.get("/invoices/{invoice_id}/xml", response={200: None},
            summary="Download the Factur-X (CII) XML",
            openapi_extra={"responses": {"200": {"description": "Factur-X XML (EN 16931)",
                           "content": {"application/xml": {"schema": {
                               "type": "string"}}}}}})  # fmt: skip
def invoice_xml(request: HttpRequest, invoice_id: uuid.UUID) -> HttpResponse:
    return _document(request, invoice_id, documents.XML, "xml")


@router.post("/invoices/{invoice_id}/credit-note", response={201: InvoiceOut},
             summary="Create a credit note for an issued invoice")  # fmt: skip
def create_credit_note(request: HttpRequest, invoice_id: uuid.UUID,
                       payload: CreditNoteIn) -> Status:  # fmt: skip
    ctx = ctx_of(request)
    note = invoicing.create_credit_note(ctx, invoice_id, lines=_lines(payload.lines),
                                        reason=payload.reason, issue=payload.issue,
                                        render=True)  # fmt: skip
    return Status(201, _fetch(ctx, note.id))


@router.post("/invoices/{invoice_id}/deposit-deductions", response=InvoiceOut,
             summary="Deduct an issued deposit invoice from a draft")  # fmt: skip
def deduct_deposit(request: HttpRequest, invoice_id: uuid.UUID,
                   payload: DepositDeductionIn) -> dict[str, Any]:  # fmt: skip
    ctx = ctx_of(request)
    invoicing.deduct_deposit(ctx, invoice_id, payload.deposit_id)
    return _fetch(ctx, invoice_id)


@router.post("/invoices/{invoice_id}/send", response={202: InvoiceOut},
             summary="Send the invoice by e-mail (queued in the outbox)")  # fmt: skip
def send_invoice(request: HttpRequest, invoice_id: uuid.UUID, payload: SendIn) -> Status:
    ctx = ctx_of(request)
    invoicing.get_invoice(ctx, invoice_id)  # 404 before anything else
    key = request.headers.get(IDEMPOTENCY_HEADER)
    # A retry after the API's 24 h replay window still writes one e-mail only.
    sending.send_invoice(ctx, invoice_id, to=payload.to, cc=payload.cc,
                         request_key=f"api:{key}" if key else None)  # fmt: skip
    return Status(202, _fetch(ctx, invoice_id))
