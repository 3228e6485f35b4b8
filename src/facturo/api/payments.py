"""/payments, /customers/{id}/balance, /mandates and /sepa-batches (through the payments
services and the SEPA direct debit module).

Amounts are exact decimals as strings, rounded to the currency. Ids of another organization
(a customer, an invoice, a credit note) are a 404, as unknown ids: they are looked up before
anything else is checked, so the answer never depends on whether they exist elsewhere.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from django.http import HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from ninja import Field, File, Query, Router, Schema, UploadedFile
from ninja.responses import Status

from facturo.core.errors import BusinessError, NotFound, _
from facturo.core.money import ZERO, round_money
from facturo.customers import services as customers
from facturo.organizations.context import Ctx, Perm
from facturo.payments import notify, selectors, sepa
from facturo.payments import services as payments
from facturo.payments.models import (
    DebitBatch,
    Mandate,
    MandateKind,
    MandateSource,
    Method,
    Payment,
    PaymentStatus,
)

from .auth import ctx_of
from .schemas import DecimalOut, Input, PageMeta, PageParams, decimal_type, optional

router = Router(tags=["payments"])

MethodName = Literal["transfer", "card", "sepa_debit", "cheque", "cash", "other"]
PaymentStatusName = Literal["pending", "received", "returned"]
MandateKindName = Literal["recurrent", "one_off"]
MandateSourceName = Literal["paper", "portal"]
assert set(MethodName.__args__) == set(Method.values)  # type: ignore[attr-defined]
assert set(PaymentStatusName.__args__) == set(PaymentStatus.values)  # type: ignore[attr-defined]
assert set(MandateKindName.__args__) == set(MandateKind.values)  # type: ignore[attr-defined]
assert set(MandateSourceName.__args__) == set(MandateSource.values)  # type: ignore[attr-defined]
MAX_ALLOCATIONS = 100
MAX_BATCH_INVOICES = 1000
MAX_RETURNS_FILE = 20 * 1024 * 1024

if TYPE_CHECKING:  # an exact decimal (the currency's decimals are checked by the service)
    Amount = Decimal
else:
    Amount = decimal_type(3, 10**9, "120.00")


def _money(value: Decimal, currency: str) -> str:
    return str(round_money(value, currency))


# --- output ----------------------------------------------------------------------------------


class AllocationOut(Schema):
    id: int
    invoice_id: uuid.UUID
    invoice_number: str | None
    amount: DecimalOut
    created_at: dt.datetime
    created_by: str
    reversed_at: dt.datetime | None = Field(description="Set when the allocation was taken back.")
    reversed_by: str
    reversal_reason: str


class RefundOut(Schema):
    id: uuid.UUID
    payment_id: uuid.UUID
    credit_note_id: uuid.UUID | None
    amount: DecimalOut
    refunded_on: dt.date
    method: str
    reference: str
    created_at: dt.datetime


class PaymentOut(Schema):
    id: uuid.UUID
    customer_id: uuid.UUID
    customer_name: str
    method: str
    status: str
    received_on: dt.date
    amount: DecimalOut
    currency: str
    fees: DecimalOut
    payer: str
    reference: str
    unallocated: DecimalOut = Field(
        description="Neither allocated nor refunded: the customer's credit from this payment."
    )
    return_reason: str
    returned_at: dt.datetime | None
    allocations: list[AllocationOut] = Field(description="Taken-back ones included (stamped).")
    refunds: list[RefundOut]
    created_at: dt.datetime


class PaymentPage(PageMeta):
    items: list[PaymentOut]


class RefundsOut(Schema):
    refunds: list[RefundOut] = Field(description="Drawn from the customer's credit, oldest first.")


class CurrencyAmount(Schema):
    currency: str
    amount: DecimalOut


class BalanceOut(Schema):
    customer_id: uuid.UUID
    owed: list[CurrencyAmount] = Field(description="Amount due on open invoices, per currency.")
    credit: list[CurrencyAmount] = Field(description="Unallocated, unrefunded payments.")
    open_invoices: int


class MandateOut(Schema):
    id: uuid.UUID
    customer_id: uuid.UUID
    reference: str = Field(description="Unique mandate reference (UMR).")
    kind: str
    source: str
    debtor_name: str
    iban: str
    bic: str
    signed_on: dt.date
    revoked_on: dt.date | None
    revocation_reason: str
    created_at: dt.datetime


class MandatePage(PageMeta):
    items: list[MandateOut]


class BatchOut(Schema):
    id: uuid.UUID
    message_id: str
    collection_date: dt.date
    count: int = Field(description="Number of debits (one per mandate).")
    total: DecimalOut
    currency: str
    filename: str
    version: str = Field(description="pain.008.001.02 or pain.008.001.08.")
    settled_at: dt.datetime | None = Field(description="When the bank credited it.")
    created_at: dt.datetime


class SettledOut(Schema):
    settled: int = Field(description="Pending debits now received.")


class ReturnOut(Schema):
    end_to_end_id: str
    reason_code: str = Field(description="ISO 20022 reason code (AM04, MD06, …).")
    reason: str = Field(description="The reason in words, in the request's language.")
    outcome: Literal["returned", "already_returned", "unknown", "amount_mismatch"]
    payment_id: uuid.UUID | None
    invoices: list[str | None]
    position: str = Field(description="Where in the file.")


class ReturnsOut(Schema):
    items: list[ReturnOut]


class PaymentSettingsIO(Input):
    notify_on_payment: Literal["none", "issuer", "address"]
    notify_address: str = optional(max_length=254)
    prenotification_days: int = Field(14, ge=0, le=30)
    pain_version: Literal["pain.008.001.02", "pain.008.001.08"] = "pain.008.001.02"


class BatchPage(PageMeta):
    items: list[BatchOut]


class SkippedOut(Schema):
    invoice_number: str
    customer: str
    code: str
    reason: str


class BatchResultOut(Schema):
    batch: BatchOut | None = Field(description="Null: nothing could be collected.")
    skipped: list[SkippedOut]


def allocation_out(row: Any, currency: str) -> dict[str, Any]:
    return {"id": row.pk, "invoice_id": row.invoice_id, "invoice_number": row.invoice.number,
            "amount": _money(row.amount, currency), "created_at": row.created_at,
            "created_by": row.created_by, "reversed_at": row.reversed_at,
            "reversed_by": row.reversed_by, "reversal_reason": row.reversal_reason}  # fmt: skip


def refund_out(row: Any, currency: str | None = None) -> dict[str, Any]:
    currency = currency or row.payment.currency
    return {"id": row.pk, "payment_id": row.payment_id, "credit_note_id": row.credit_note_id,
            "amount": _money(row.amount, currency), "refunded_on": row.refunded_on,
            "method": row.method, "reference": row.reference,
            "created_at": row.created_at}  # fmt: skip


def payment_out(payment: Payment) -> dict[str, Any]:
    """Reads the allocations and refunds prefetched by ``selectors.payments_with_details``
    (a list page costs the same few queries whatever its length)."""
    allocations = sorted(payment.allocations.all(), key=lambda a: (a.created_at, a.pk))
    refunds = list(payment.refunds.all())
    return {
        **{k: getattr(payment, k) for k in (
            "id", "customer_id", "method", "status", "received_on", "currency", "payer",
            "reference", "return_reason", "returned_at", "created_at")},
        "customer_name": payment.customer.name,
        "amount": _money(payment.amount, payment.currency),
        "fees": _money(payment.fees, payment.currency),
        "unallocated": _money(selectors.left_of(payment, allocations, refunds),
                              payment.currency),
        "allocations": [allocation_out(row, payment.currency) for row in allocations],
        "refunds": [refund_out(row, payment.currency) for row in refunds],
    }  # fmt: skip


def mandate_out(mandate: Mandate) -> dict[str, Any]:
    return {k: getattr(mandate, k) for k in (
        "id", "customer_id", "reference", "kind", "source", "debtor_name", "iban", "bic",
        "signed_on", "revoked_on", "revocation_reason", "created_at")}  # fmt: skip


def batch_out(batch: DebitBatch) -> dict[str, Any]:
    return {**{k: getattr(batch, k) for k in (
        "id", "message_id", "collection_date", "count", "currency", "filename", "version",
        "settled_at", "created_at")},
        "total": _money(batch.total, batch.currency)}  # fmt: skip


# --- input -----------------------------------------------------------------------------------


class AllocationIn(Input):
    invoice_id: uuid.UUID
    amount: Amount


class PaymentIn(Input):
    customer_id: uuid.UUID
    amount: Amount
    currency: str = optional(max_length=3, description="Default: the customer's currency.")
    method: MethodName
    received_on: dt.date = optional(description="Default: today.")
    payer: str = optional(max_length=200)
    reference: str = optional(max_length=200)
    fees: Amount = optional(description="Default 0.")
    allocations: list[AllocationIn] = optional(
        max_length=MAX_ALLOCATIONS,
        description="Explicit allocations; without them, the customer's open invoices are "
        "paid oldest first (unless auto_allocate is false). What is left is credit.",
    )
    auto_allocate: bool = Field(True, description="False: keep it all as credit.")


class AllocateIn(Input):
    allocations: list[AllocationIn] | None = Field(
        None, max_length=MAX_ALLOCATIONS,
        description="Null or omitted: the customer's open invoices, oldest first.",
    )  # fmt: skip


class UnallocateIn(Input):
    allocation_id: int = Field(ge=1, le=2**63 - 1)
    reason: str = Field(min_length=1, max_length=300)


class RefundIn(Input):
    amount: Amount
    refunded_on: dt.date = optional(description="Default: today.")
    method: MethodName = optional(description="Default transfer.")
    credit_note_id: uuid.UUID | None = Field(None, description="The credit note refunded.")
    reference: str = optional(max_length=200)


class MandateIn(Input):
    customer_id: uuid.UUID
    iban: str = Field(max_length=50)
    bic: str = optional(max_length=20)
    debtor_name: str = optional(max_length=70, description="Default: the customer's name.")
    signed_on: dt.date
    kind: MandateKindName = optional(description="Default recurrent.")
    source: MandateSourceName = optional(description="Default paper.")
    reference: str = optional(max_length=35, description="UMR; generated when omitted.")


class RevokeIn(Input):
    revoked_on: dt.date = optional(description="Default: today.")
    reason: str = optional(max_length=300)


class BatchIn(Input):
    collection_date: dt.date
    version: Literal["pain.008.001.02", "pain.008.001.08"] | None = Field(
        None, description="Default: the organization's setting."
    )
    invoice_ids: list[uuid.UUID] | None = Field(
        None, max_length=MAX_BATCH_INVOICES,
        description="Default: every invoice due by the collection date of a customer with a "
                    "mandate.",
    )  # fmt: skip


class PaymentFilters(PageParams):
    customer_id: uuid.UUID | None = None
    status: PaymentStatusName | None = None
    method: MethodName | None = None


class MandateFilters(PageParams):
    customer_id: uuid.UUID | None = None
    active: bool | None = Field(None, description="True: not revoked; false: revoked.")


def _page(qs: Any, filters: PageParams, render: Any) -> dict[str, Any]:
    items = qs[filters.offset : filters.offset + filters.limit]
    return {"count": qs.count(), "limit": filters.limit, "offset": filters.offset,
            "items": [render(item) for item in items]}  # fmt: skip


def _pairs(allocations: list[AllocationIn] | None) -> list[tuple[Any, Any]] | None:
    if allocations is None:
        return None
    return [(a.invoice_id, a.amount) for a in allocations]


def _check_invoices(ctx: Ctx, ids: list[uuid.UUID], field: str) -> None:
    """An invoice id of another organization is as unknown as a random one: 404 first."""
    known = selectors.known_invoice_ids(ctx, ids)
    for position, pk in enumerate(ids, start=1):
        if pk not in known:
            raise NotFound("invoice.not_found", _("No such invoice."),
                           field=f"{field}.{position}")  # fmt: skip


def _fetch(ctx: Ctx, payment_id: Any) -> dict[str, Any]:
    payment = payments.get_payment(ctx, payment_id)
    return payment_out(selectors.payments_with_details(ctx).get(pk=payment.pk))


# --- payments --------------------------------------------------------------------------------


@router.get("/payments", response=PaymentPage, summary="List payments, latest first")
def list_payments(request: HttpRequest, filters: Query[PaymentFilters]) -> dict[str, Any]:
    ctx = ctx_of(request)
    qs = selectors.payments_with_details(ctx)
    if filters.customer_id:
        qs = qs.filter(customer_id=filters.customer_id)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.method:
        qs = qs.filter(method=filters.method)
    return _page(qs.order_by("-received_on", "-created_at"), filters, payment_out)


@router.post("/payments", response={201: PaymentOut},
             summary="Record a payment (allocated explicitly or oldest first)")  # fmt: skip
def create_payment(request: HttpRequest, payload: PaymentIn) -> Status:
    ctx = ctx_of(request)
    ctx.require(Perm.EDIT_INVOICES)
    customer = customers.get_customer(ctx, payload.customer_id)
    allocations = payload.allocations if "allocations" in payload.model_fields_set else None
    if allocations:
        _check_invoices(ctx, [a.invoice_id for a in allocations], "allocations")
    payment = payments.record_payment(
        ctx,
        customer_id=customer.pk,
        amount=payload.amount,
        currency=payload.currency or customer.currency or ctx.organization.currency,
        method=payload.method,
        received_on=payload.received_on or ctx.today(),
        payer=payload.payer or "",
        reference=payload.reference or "",
        fees=payload.fees if payload.fees is not None else ZERO,
        allocations=_pairs(allocations),
        auto_allocate=payload.auto_allocate,
    )
    return Status(201, _fetch(ctx, payment.pk))


@router.get("/payments/{payment_id}", response=PaymentOut, summary="Get a payment")
def get_payment(request: HttpRequest, payment_id: uuid.UUID) -> dict[str, Any]:
    return _fetch(ctx_of(request), payment_id)


@router.post("/payments/{payment_id}/allocations", response={201: PaymentOut},
             summary="Allocate what is left of a payment (explicit, or oldest first)")  # fmt: skip
def allocate(request: HttpRequest, payment_id: uuid.UUID, payload: AllocateIn) -> Status:
    ctx = ctx_of(request)
    payments.get_payment(ctx, payment_id)
    if payload.allocations:
        _check_invoices(ctx, [a.invoice_id for a in payload.allocations], "allocations")
    payments.allocate(ctx, payment_id, _pairs(payload.allocations))
    return Status(201, _fetch(ctx, payment_id))


@router.post("/payments/{payment_id}/unallocate", response=PaymentOut,
             summary="Take an allocation back (audited; the row is kept, stamped)")  # fmt: skip
def unallocate(request: HttpRequest, payment_id: uuid.UUID,
               payload: UnallocateIn) -> dict[str, Any]:  # fmt: skip
    ctx = ctx_of(request)
    payment = payments.get_payment(ctx, payment_id)
    if not payment.allocations.filter(pk=payload.allocation_id).exists():
        raise NotFound("allocation.not_found", _("No such allocation."), field="allocation_id")
    payments.unallocate(ctx, payload.allocation_id, reason=payload.reason)
    return _fetch(ctx, payment_id)


@router.post("/payments/{payment_id}/refunds", response={201: RefundsOut},
             summary="Refund part of the credit of the payment's customer",
             description="The refund is drawn from the customer's credit (unallocated "
                         "payments, oldest first), not necessarily from this payment alone; "
                         "refused above the credit.")  # fmt: skip
def create_refund(request: HttpRequest, payment_id: uuid.UUID, payload: RefundIn) -> Status:
    ctx = ctx_of(request)
    payment = payments.get_payment(ctx, payment_id)
    rows = payments.refund(
        ctx,
        customer_id=payment.customer_id,
        amount=payload.amount,
        refunded_on=payload.refunded_on or ctx.today(),
        method=payload.method or Method.TRANSFER,
        credit_note_id=payload.credit_note_id,
        reference=payload.reference or "",
    )
    return Status(201, {"refunds": [refund_out(row) for row in rows]})


@router.get("/customers/{customer_id}/balance", response=BalanceOut,
            summary="What a customer owes and their credit, per currency")  # fmt: skip
def customer_balance(request: HttpRequest, customer_id: uuid.UUID) -> dict[str, Any]:
    ctx = ctx_of(request)
    customer = customers.get_customer(ctx, customer_id)
    owed, credit, count = selectors.customer_balance(ctx, customer)
    return {
        "customer_id": customer.pk, "open_invoices": count,
        "owed": [{"currency": c, "amount": _money(a, c)} for c, a in sorted(owed.items())],
        "credit": [{"currency": c, "amount": _money(a, c)}
                   for c, a in sorted(credit.items()) if a > 0],
    }  # fmt: skip


# --- mandates --------------------------------------------------------------------------------


@router.get("/mandates", response=MandatePage, summary="List SEPA mandates")
def list_mandates(request: HttpRequest, filters: Query[MandateFilters]) -> dict[str, Any]:
    ctx = ctx_of(request)
    qs = selectors.mandates(ctx)
    if filters.customer_id:
        qs = qs.filter(customer_id=filters.customer_id)
    if filters.active is not None:
        qs = qs.filter(revoked_on__isnull=filters.active)
    return _page(qs.order_by("-signed_on", "-created_at"), filters, mandate_out)


@router.post("/mandates", response={201: MandateOut},
             summary="Record a SEPA mandate (IBAN and BIC checked, UMR generated)")  # fmt: skip
def create_mandate(request: HttpRequest, payload: MandateIn) -> Status:
    ctx = ctx_of(request)
    ctx.require(Perm.EDIT_INVOICES)
    customer = customers.get_customer(ctx, payload.customer_id)
    mandate = sepa.create_mandate(
        ctx,
        customer_id=customer.pk,
        iban=payload.iban,
        bic=payload.bic or "",
        debtor_name=payload.debtor_name if payload.debtor_name is not None else customer.name,
        signed_on=payload.signed_on,
        kind=payload.kind or MandateKind.RECURRENT,
        source=payload.source or MandateSource.PAPER,
        reference=payload.reference or "",
    )
    return Status(201, mandate_out(mandate))


@router.post("/mandates/{mandate_id}/revoke", response=MandateOut,
             summary="Revoke a mandate for good (never collected again)")  # fmt: skip
def revoke_mandate(request: HttpRequest, mandate_id: uuid.UUID,
                   payload: RevokeIn) -> dict[str, Any]:  # fmt: skip
    ctx = ctx_of(request)
    mandate = sepa.revoke_mandate(ctx, mandate_id, revoked_on=payload.revoked_on or ctx.today(),
                                  reason=payload.reason or "")  # fmt: skip
    return mandate_out(mandate)


# --- SEPA batches ----------------------------------------------------------------------------


def _batch(ctx: Ctx, batch_id: Any) -> DebitBatch:
    return sepa.get_batch(ctx, batch_id)


@router.get("/sepa-batches", response=BatchPage, summary="List SEPA direct debit batches")
def list_batches(request: HttpRequest, filters: Query[PageParams]) -> dict[str, Any]:
    return _page(selectors.batches(ctx_of(request)), filters, batch_out)


@router.post("/sepa-batches", response={200: BatchResultOut, 201: BatchResultOut},
             summary="Collect the due invoices by SEPA direct debit on a date (pain.008)",
             description="201 with the batch; 200 with batch null when nothing can be "
                         "collected. Invoices that cannot be are listed in skipped, with a "
                         "code (sepa.mandate_revoked, sepa.no_mandate, …).")  # fmt: skip
def create_batch(request: HttpRequest, payload: BatchIn) -> Status:
    ctx = ctx_of(request)
    ctx.require(Perm.EDIT_INVOICES)
    if payload.invoice_ids is not None:
        _check_invoices(ctx, payload.invoice_ids, "invoice_ids")
    result = sepa.create_batch(ctx, collection_date=payload.collection_date,
                               invoice_ids=payload.invoice_ids,
                               version=payload.version)  # fmt: skip
    body = {"batch": batch_out(result.batch) if result.batch else None,
            "skipped": [vars(s) for s in result.skipped]}  # fmt: skip
    return Status(201 if result.batch else 200, body)


@router.get("/sepa-batches/{batch_id}/file", response={200: None},
            summary="Download the batch's pain.008 file (as generated)",
            openapi_extra={"responses": {"200": {"description": "pain.008.001.02/.08 XML",
                           "content": {"application/xml": {"schema": {
                               "type": "string"}}}}}})  # fmt: skip
def batch_file(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    batch = _batch(ctx_of(request), batch_id)
    response = HttpResponse(bytes(batch.content), content_type="application/xml")
    response["Content-Disposition"] = content_disposition_header(True, batch.filename)
    return response


@router.post("/sepa-batches/{batch_id}/settle", response=SettledOut,
             summary="The bank credited the batch: its pending debits become received")  # fmt: skip
def settle_batch(request: HttpRequest, batch_id: uuid.UUID) -> dict[str, Any]:
    return {"settled": sepa.settle_batch(ctx_of(request), batch_id)}


@router.post("/sepa-returns", response=ReturnsOut,
             summary="Import a pain.002 or camt.054 file: rejected/returned debits reopen "
                     "their invoices, with the ISO reason (idempotent)")  # fmt: skip
def import_returns(request: HttpRequest, file: File[UploadedFile]) -> dict[str, Any]:
    ctx = ctx_of(request)
    ctx.require(Perm.EDIT_INVOICES)
    if file.size is not None and file.size > MAX_RETURNS_FILE:
        raise BusinessError("sepa.file_too_large", _("The file is larger than 20 MiB."), "file")
    report = sepa.import_returns(ctx, file.read(), filename=file.name or "returns.xml")
    return {"items": [vars(r) for r in report]}


@router.get("/payment-settings", response=PaymentSettingsIO,
            summary="Payment notifications, SEPA pre-notification, pain.008 version")  # fmt: skip
def get_payment_settings(request: HttpRequest) -> dict[str, Any]:
    ctx = ctx_of(request)
    ctx.require(Perm.VIEW)
    row = notify.settings_of(ctx.organization)
    return {k: getattr(row, k) for k in (
        "notify_on_payment", "notify_address", "prenotification_days", "pain_version")}  # fmt: skip


@router.put("/payment-settings", response=PaymentSettingsIO, summary="Change payment settings")
def put_payment_settings(request: HttpRequest, payload: PaymentSettingsIO) -> dict[str, Any]:
    ctx = ctx_of(request)
    row = notify.save_settings(ctx, notify_on_payment=payload.notify_on_payment,
                               notify_address=payload.notify_address or "",
                               prenotification_days=payload.prenotification_days,
                               pain_version=payload.pain_version)  # fmt: skip
    return {k: getattr(row, k) for k in (
        "notify_on_payment", "notify_address", "prenotification_days", "pain_version")}  # fmt: skip
