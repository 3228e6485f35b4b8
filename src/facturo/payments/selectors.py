"""Read queries for payments, scoped by the invoice's or the organization's id."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db.models import Prefetch, QuerySet

from facturo.core.money import ZERO
from facturo.invoicing.models import Invoice
from facturo.organizations.context import Ctx, Perm

from . import services
from .models import (
    Allocation,
    AutoPayRequest,
    DebitBatch,
    DebitItem,
    Mandate,
    Payment,
    PaymentStatus,
    ProviderSettings,
    Refund,
    SepaCreditor,
)


def payments_with_details(ctx: Ctx) -> QuerySet[Payment]:
    """The organization's payments, latest first, with customer, allocations (and their
    invoices) and refunds prefetched: a page of any length is four queries."""
    ctx.require(Perm.VIEW)
    return (
        Payment.objects.filter(organization=ctx.organization)
        .select_related("customer")
        .prefetch_related(
            Prefetch("allocations", queryset=Allocation.objects.select_related("invoice")),
            Prefetch("refunds", queryset=Refund.objects.all()),
        )
        .order_by("-received_on", "-created_at")
    )


def left_of(
    payment: Payment, allocations: Iterable[Allocation], refunds: Iterable[Refund]
) -> Decimal:
    """:func:`services.unallocated` from rows already loaded."""
    if payment.status == PaymentStatus.RETURNED:
        return ZERO
    used = sum((a.amount for a in allocations if a.reversed_at is None), ZERO)
    return payment.amount - used - sum((r.amount for r in refunds), ZERO)


def mandates(ctx: Ctx) -> QuerySet[Mandate]:
    ctx.require(Perm.VIEW)
    return Mandate.objects.filter(organization=ctx.organization).select_related("customer")


def batches(ctx: Ctx) -> QuerySet[DebitBatch]:
    ctx.require(Perm.VIEW)
    return DebitBatch.objects.filter(organization=ctx.organization).order_by("-created_at")


def batch_items(batch: DebitBatch) -> QuerySet[DebitItem]:
    return (
        DebitItem.objects.filter(batch=batch)
        .select_related("mandate", "payment", "payment__customer")
        .order_by("id")
    )


def auto_pay_requests(ctx: Ctx) -> QuerySet[AutoPayRequest]:
    ctx.require(Perm.VIEW)
    return (
        AutoPayRequest.objects.filter(organization=ctx.organization)
        .select_related("invoice", "invoice__customer")
        .order_by("-created_at")
    )


def provider_settings(ctx: Ctx, provider: str = "stripe") -> ProviderSettings | None:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    return ProviderSettings.objects.filter(organization=ctx.organization, provider=provider).first()


def open_invoices(ctx: Ctx, customer_id: Any) -> list[tuple[Invoice, Decimal]]:
    """A customer's invoices that still owe something, oldest first, with what they owe."""
    ctx.require(Perm.VIEW)
    rows = list(
        Invoice.objects.filter(
            organization=ctx.organization,
            customer_id=customer_id,
            kind__in=services.PAYABLE_KINDS,
            status__in=services.OPEN_STATUSES,
        ).order_by("due_date", "number")
    )
    due = services.amounts_due(rows)
    return [(i, due[i.pk]) for i in rows if due[i.pk] > 0]


def invoice_balance(invoice: Invoice) -> services.InvoiceBalance:
    return services.balance(invoice)


def online_payment_enabled(organization_id: Any, provider: str = "stripe") -> bool:
    return ProviderSettings.objects.filter(
        organization_id=organization_id, provider=provider, enabled=True
    ).exists()


def sepa_creditor(organization_id: Any) -> SepaCreditor | None:
    return SepaCreditor.objects.filter(organization_id=organization_id).first()


def active_mandate(invoice: Invoice, on: dt.date) -> Mandate | None:
    return (
        Mandate.objects.filter(
            organization_id=invoice.organization_id,
            customer_id=invoice.customer_id,
            revoked_on__isnull=True,
            signed_on__lte=on,
        )
        .order_by("-signed_on", "-created_at")
        .first()
    )


def amounts_owed(ctx: Ctx) -> list[tuple[str, int, Decimal]]:
    """What customers still owe, per currency: ``(currency, invoices, amount due)`` where
    amount due = total − credit notes − payments (a partly paid invoice counts for what it
    still owes, not its total). Three queries whatever the number of invoices."""
    ctx.require(Perm.VIEW)
    open_rows = list(
        Invoice.objects.filter(
            organization=ctx.organization,
            kind__in=services.PAYABLE_KINDS,
            status__in=services.OPEN_STATUSES,
        ).only("id", "status", "kind", "currency", "total_incl_vat")
    )
    due = services.amounts_due(open_rows)
    totals: dict[str, tuple[int, Decimal]] = {}
    for invoice in open_rows:
        owed = due[invoice.pk]
        if owed > 0:
            count, amount = totals.get(invoice.currency, (0, ZERO))
            totals[invoice.currency] = (count + 1, amount + owed)
    return [(c, n, a) for c, (n, a) in sorted(totals.items())]


def known_invoice_ids(ctx: Ctx, ids: Iterable[Any]) -> set[Any]:
    """Which of these ids are invoices of the caller's organization."""
    return set(
        Invoice.objects.filter(organization=ctx.organization, pk__in=list(ids)).values_list(
            "pk", flat=True
        )
    )


def customer_balance(ctx: Ctx, customer: Any) -> tuple[dict[str, Decimal], dict[str, Decimal], int]:
    """What a customer owes per currency (open invoices' amount due), their credit per
    currency (unallocated, unrefunded payments), and how many invoices are open."""
    ctx.require(Perm.VIEW)
    open_rows = list(
        Invoice.objects.filter(
            organization=ctx.organization,
            customer=customer,
            kind__in=services.PAYABLE_KINDS,
            status__in=services.OPEN_STATUSES,
        )
    )
    due = services.amounts_due(open_rows)
    owed: dict[str, Decimal] = {}
    count = 0
    for invoice in open_rows:
        if due[invoice.pk] > 0:
            owed[invoice.currency] = owed.get(invoice.currency, ZERO) + due[invoice.pk]
            count += 1
    credit: dict[str, Decimal] = {}
    received = (
        payments_with_details(ctx)
        .filter(customer=customer, status=PaymentStatus.RECEIVED)
        .order_by()
    )
    for p in received:
        left = left_of(p, list(p.allocations.all()), list(p.refunds.all()))
        credit[p.currency] = credit.get(p.currency, ZERO) + left
    return owed, credit, count
