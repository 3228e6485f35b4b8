"""Recording, allocating and refunding payments; the invoice status follows from them.

Rules (issue 4):
- amount due = total − issued credit notes − active allocations, never negative;
- an allocation never exceeds what the invoice still owes nor what the payment has left;
- a payment's part that is not allocated nor refunded is the customer's credit;
- an invoice's status (issued/sent → partially_paid → paid, and back) is derived here from
  its allocations by :func:`refresh_status`, never set by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Sum
from django.utils import timezone

from facturo.audit import services as audit
from facturo.core.errors import BusinessError, NotFound, _
from facturo.core.money import ZERO, check_currency, round_money
from facturo.core.text import clean_text
from facturo.customers.models import Customer
from facturo.foundation import events
from facturo.foundation.db import atomic
from facturo.invoicing.events import InvoiceIssued
from facturo.invoicing.models import Invoice, Status
from facturo.organizations.context import Ctx, Perm
from facturo.organizations.models import DocumentKind

from . import events as payment_events
from .models import Allocation, Method, Payment, PaymentStatus, Refund

PAYABLE_KINDS = (DocumentKind.INVOICE, DocumentKind.DEPOSIT)
OPEN_STATUSES = (Status.ISSUED, Status.SENT, Status.PARTIALLY_PAID)
DERIVED_STATUSES = (Status.ISSUED, Status.SENT, Status.PARTIALLY_PAID, Status.PAID)


# --- amounts ---------------------------------------------------------------------------------


def _sum(qs: Any, field: str = "amount") -> Decimal:
    value = qs.aggregate(s=Sum(field))["s"]
    # Sum over a scaled-integer column comes back in units of 10^-scale.
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(int(value)).scaleb(-3)


def credited(invoice: Invoice) -> Decimal:
    notes = Invoice.objects.filter(
        credited_invoice_id=invoice.pk, kind=DocumentKind.CREDIT_NOTE
    ).exclude(status=Status.DRAFT)
    return _sum(notes, "total_incl_vat")


def allocated(invoice: Invoice) -> Decimal:
    return _sum(Allocation.objects.filter(invoice_id=invoice.pk, reversed_at__isnull=True))


def net_total(invoice: Invoice) -> Decimal:
    """What the customer owes before payments: total minus issued credit notes (≥ 0)."""
    return max(ZERO, (invoice.total_incl_vat or ZERO) - credited(invoice))


def amount_due(invoice: Invoice) -> Decimal:
    if invoice.status == Status.DRAFT or invoice.kind not in PAYABLE_KINDS:
        return ZERO
    return max(ZERO, net_total(invoice) - allocated(invoice))


def unallocated(payment: Payment) -> Decimal:
    """What is left of a payment: not allocated, not refunded (the customer's credit)."""
    if payment.status == PaymentStatus.RETURNED:
        return ZERO
    used = _sum(Allocation.objects.filter(payment_id=payment.pk, reversed_at__isnull=True))
    return payment.amount - used - _sum(Refund.objects.filter(payment_id=payment.pk))


def customer_credit(customer: Customer, currency: str | None = None) -> Decimal:
    payments = Payment.objects.filter(customer=customer, status=PaymentStatus.RECEIVED)
    if currency:
        payments = payments.filter(currency=currency)
    return sum((unallocated(p) for p in payments), ZERO)


def amounts_due(invoices: Sequence[Invoice]) -> dict[Any, Decimal]:
    """:func:`amount_due` of many invoices in two queries (lists, batches: no N+1)."""
    ids = [i.pk for i in invoices]
    notes = (
        Invoice.objects.filter(credited_invoice_id__in=ids, kind=DocumentKind.CREDIT_NOTE)
        .exclude(status=Status.DRAFT)
        .values("credited_invoice_id")
        .annotate(s=Sum("total_incl_vat"))
    )
    paid = (
        Allocation.objects.filter(invoice_id__in=ids, reversed_at__isnull=True)
        .values("invoice_id")
        .annotate(s=Sum("amount"))
    )

    def value(raw: Any) -> Decimal:
        if raw is None:
            return ZERO
        return raw if isinstance(raw, Decimal) else Decimal(int(raw)).scaleb(-3)

    credited_by = {row["credited_invoice_id"]: value(row["s"]) for row in notes}
    paid_by = {row["invoice_id"]: value(row["s"]) for row in paid}
    result: dict[Any, Decimal] = {}
    for invoice in invoices:
        if invoice.status == Status.DRAFT or invoice.kind not in PAYABLE_KINDS:
            result[invoice.pk] = ZERO
            continue
        net = max(ZERO, (invoice.total_incl_vat or ZERO) - credited_by.get(invoice.pk, ZERO))
        result[invoice.pk] = max(ZERO, net - paid_by.get(invoice.pk, ZERO))
    return result


@dataclass(frozen=True)
class InvoiceBalance:
    total: Decimal
    credited: Decimal
    allocated: Decimal
    due: Decimal


def balance(invoice: Invoice) -> InvoiceBalance:
    return InvoiceBalance(
        invoice.total_incl_vat or ZERO, credited(invoice), allocated(invoice), amount_due(invoice)
    )


# --- status ----------------------------------------------------------------------------------


def derived_status(invoice: Invoice, net: Decimal, paid: Decimal) -> str:
    if invoice.status == Status.CREDITED or invoice.status == Status.DRAFT:
        return invoice.status
    if paid <= 0:
        return Status.SENT if invoice.sent_at else Status.ISSUED
    if paid >= net:
        return Status.PAID
    return Status.PARTIALLY_PAID


def refresh_status(invoice_id: Any) -> str:
    """Recompute an invoice's payment status from its allocations and store it."""
    invoice = Invoice.objects.get(pk=invoice_id)
    if invoice.kind not in PAYABLE_KINDS:
        return invoice.status
    status = derived_status(invoice, net_total(invoice), allocated(invoice))
    if status != invoice.status:
        Invoice.objects.filter(pk=invoice.pk).update(status=status)
        events.publish(
            payment_events.InvoicePaymentStatusChanged(
                invoice.organization_id, invoice.pk, invoice.status, status
            )
        )
    return status


# --- lookups ---------------------------------------------------------------------------------


def _get(model: Any, ctx: Ctx, pk: Any, code: str, message: str, *, lock: bool = False) -> Any:
    qs = model.objects.filter(organization=ctx.organization)
    if lock:
        qs = qs.select_for_update()
    try:
        return qs.get(pk=pk)
    except (model.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFound(code, message) from None


def get_payment(ctx: Ctx, payment_id: Any, *, lock: bool = False) -> Payment:
    ctx.require(Perm.VIEW)
    return _get(Payment, ctx, payment_id, "payment.not_found", _("No such payment."), lock=lock)


def _payable_invoice(ctx: Ctx, invoice_id: Any, *, lock: bool = True) -> Invoice:
    invoice: Invoice = _get(
        Invoice, ctx, invoice_id, "invoice.not_found", _("No such invoice."), lock=lock
    )
    if invoice.kind not in PAYABLE_KINDS or invoice.status == Status.DRAFT:
        raise BusinessError(
            "payment.not_payable",
            _("Only issued invoices can receive payments (not drafts nor credit notes)."),
            field="invoice_id",
        )
    return invoice


def _fees(fees: Any, currency: str, amount: Decimal) -> Decimal:
    """Fees kept by the payment provider: 0 up to the amount, at most the currency's decimals."""
    fee = ZERO if fees in (None, "") else _amount(fees, currency, "fees", allow_zero=True)
    if fee > amount:
        raise BusinessError("payment.bad_fees", _("Fees must be between 0 and the amount."), "fees")
    return fee


def _amount(value: Any, currency: str, field: str, *, allow_zero: bool = False) -> Decimal:
    if isinstance(value, float):
        raise BusinessError("payment.float_amount", _("Amounts must be exact decimals."), field)
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise BusinessError(
            "payment.bad_amount", _("“%(value)s” is not an amount."), field, value=str(value)
        ) from None
    too_small = amount < 0 if allow_zero else amount <= 0
    if not amount.is_finite() or too_small or round_money(amount, currency) != amount:
        raise BusinessError(
            "payment.bad_amount",
            _("The amount must be positive, with at most the currency's decimals."),
            field,
            value=str(value),
        )
    return amount


# --- allocation ------------------------------------------------------------------------------


def _allocate_one(
    ctx: Ctx, payment: Payment, invoice: Invoice, amount: Decimal, left: Decimal
) -> Allocation:
    if invoice.currency != payment.currency:
        raise BusinessError(
            "payment.currency_mismatch",
            _("The payment is in %(payment)s but the invoice %(number)s is in %(invoice)s."),
            field="currency",
            payment=payment.currency,
            invoice=invoice.currency,
            number=invoice.number,
        )
    if invoice.customer_id != payment.customer_id:
        raise BusinessError(
            "payment.other_customer",
            _("The invoice %(number)s belongs to another customer."),
            field="invoice_id",
            number=invoice.number,
        )
    due = amount_due(invoice)
    if amount > due:
        raise BusinessError(
            "payment.over_allocation",
            _("Invoice %(number)s only owes %(due)s: %(amount)s cannot be allocated to it."),
            field="amount",
            number=invoice.number,
            due=str(due),
            amount=str(amount),
        )
    if amount > left:
        raise BusinessError(
            "payment.insufficient",
            _("Only %(left)s of this payment is left to allocate."),
            field="amount",
            left=str(left),
        )
    row = Allocation.objects.create(
        organization=ctx.organization,
        payment=payment,
        invoice=invoice,
        amount=amount,
        created_by=ctx.actor.label,
    )
    events.publish(
        payment_events.AllocationChanged(
            ctx.organization.id, row.pk, payment.pk, invoice.pk, reversed=False
        )
    )
    refresh_status(invoice.pk)
    audit.record(
        ctx.organization.id,
        ctx.actor,
        "payment.allocated",
        row,
        after={"payment": str(payment.pk), "invoice": invoice.number, "amount": amount},
    )
    return row


# The order invoices are locked in, everywhere (accounting's handlers use the same one):
# two transactions locking overlapping sets of invoices take them in the same order.
INVOICE_LOCK_ORDER = ("due_date", "issue_date", "series_position", "number", "pk")


def _lock_invoices(ids: Iterable[Any]) -> dict[Any, Invoice]:
    """Lock invoices in :data:`INVOICE_LOCK_ORDER`. Lock order everywhere in payments:
    invoices first, then payments (by id) — two operations never wait on each other in a
    cycle."""
    rows = (
        Invoice.objects.select_for_update().filter(pk__in=list(ids)).order_by(*INVOICE_LOCK_ORDER)
    )
    return {row.pk: row for row in rows}


def _open_invoices(customer_id: Any, currency: str) -> list[Invoice]:
    """Locked (by id), then oldest first: by due date, then issue date, then number."""
    ids = Invoice.objects.filter(
        customer_id=customer_id,
        currency=currency,
        kind__in=PAYABLE_KINDS,
        status__in=OPEN_STATUSES,
    ).values_list("pk", flat=True)
    locked = _lock_invoices(ids)
    return sorted(
        (i for i in locked.values() if i.status in OPEN_STATUSES),
        key=lambda i: (i.due_date or dt.date.max, i.issue_date or dt.date.max,
                       i.series_position or 0, i.number or ""),
    )  # fmt: skip


def allocate(
    ctx: Ctx,
    payment_id: Any,
    allocations: Sequence[tuple[Any, Any]] | None = None,
) -> list[Allocation]:
    """Allocate what is left of a payment: to the given ``(invoice_id, amount)`` pairs, or
    (``None``) to the customer's open invoices, oldest first, until it is used up."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        # Which customer and currency (no lock yet: invoices are locked before the payment).
        target = get_payment(ctx, payment_id)
        if allocations is None:
            invoices = _open_invoices(target.customer_id, target.currency)
        else:
            for invoice_id, _raw in allocations:
                _get(Invoice, ctx, invoice_id, "invoice.not_found", _("No such invoice."))
            _lock_invoices(invoice_id for invoice_id, _raw in allocations)
        payment = get_payment(ctx, payment_id, lock=True)
        if payment.status == PaymentStatus.RETURNED:
            raise BusinessError(
                "payment.returned", _("This payment was returned: it cannot be allocated.")
            )
        left = unallocated(payment)
        rows: list[Allocation] = []
        if allocations is None:
            for invoice in invoices:
                if left <= 0:
                    break
                part = min(left, amount_due(invoice))
                if part > 0:
                    rows.append(_allocate_one(ctx, payment, invoice, part, left))
                    left -= part
            return rows
        for position, (invoice_id, raw) in enumerate(allocations, start=1):
            invoice = _payable_invoice(ctx, invoice_id, lock=False)  # locked above
            amount = _amount(raw, payment.currency, f"allocations.{position}.amount")
            rows.append(_allocate_one(ctx, payment, invoice, amount, left))
            left -= amount
        return rows


def unallocate(ctx: Ctx, allocation_id: Any, *, reason: str = "") -> Allocation:
    """Take an allocation back (the money returns to the customer's credit); audited."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        row: Allocation = _get(
            Allocation, ctx, allocation_id, "allocation.not_found", _("No such allocation.")
        )
        Invoice.objects.select_for_update().filter(pk=row.invoice_id).first()
        row = Allocation.objects.select_for_update().get(pk=row.pk)
        if row.reversed_at is not None:
            return row
        _reverse(ctx, row, clean_text(reason, "reason", max_length=300))
        refresh_status(row.invoice_id)
    return row


def _reverse(ctx: Ctx, row: Allocation, reason: str) -> None:
    row.reversed_at = timezone.now()
    row.reversed_by = ctx.actor.label
    row.reversal_reason = reason
    row.save(update_fields=["reversed_at", "reversed_by", "reversal_reason"])
    events.publish(
        payment_events.AllocationChanged(
            ctx.organization.id, row.pk, row.payment_id, row.invoice_id, reversed=True
        )
    )
    audit.record(
        ctx.organization.id,
        ctx.actor,
        "payment.unallocated",
        row,
        before={"invoice": str(row.invoice_id), "amount": row.amount},
        after={"reason": reason},
    )


# --- payments --------------------------------------------------------------------------------


def record_payment(
    ctx: Ctx,
    *,
    customer_id: Any,
    amount: Any,
    currency: str,
    method: str,
    received_on: dt.date,
    payer: str = "",
    reference: str = "",
    fees: Any = "0",
    allocations: Sequence[tuple[Any, Any]] | None = None,
    auto_allocate: bool = True,
    provider: str = "",
    provider_reference: str | None = None,
    status: str = PaymentStatus.RECEIVED,
) -> Payment:
    """Record money received. With ``allocations`` it goes to those invoices; otherwise,
    when ``auto_allocate``, to the customer's open invoices oldest first. Whatever is left
    is the customer's credit."""
    ctx.require(Perm.EDIT_INVOICES)
    check_currency(currency)
    if method not in Method.values:
        raise BusinessError(
            "payment.bad_method", _("Unknown payment method “%(method)s”."), "method", method=method
        )
    value = _amount(amount, currency, "amount")
    fee = _fees(fees, currency, value)
    with atomic():
        customer: Customer = _get(
            Customer, ctx, customer_id, "customer.not_found", _("No such customer.")
        )
        payment = Payment.objects.create(
            organization=ctx.organization,
            customer=customer,
            method=method,
            received_on=received_on,
            amount=value,
            currency=currency,
            fees=fee,
            payer=clean_text(payer, "payer", max_length=200),
            reference=clean_text(reference, "reference", max_length=200),
            provider=provider,
            provider_reference=provider_reference,
            status=status,
        )
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "payment.recorded",
            payment,
            after={"amount": value, "currency": currency, "method": method, "fees": fee},
        )
        events.publish(payment_events.PaymentRecorded(ctx.organization.id, payment.pk))
        if allocations is not None:
            allocate(ctx, payment.pk, allocations)
        elif auto_allocate:
            allocate(ctx, payment.pk)
        from . import notify  # the e-mail names the invoices just paid

        notify.payment_received(payment)
    return payment


def apply_credit(ctx: Ctx, invoice_id: Any, amount: Any = None) -> list[Allocation]:
    """Use the customer's credit (unallocated payments, oldest first) on an invoice."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        invoice = _payable_invoice(ctx, invoice_id)
        due = amount_due(invoice)
        wanted = due if amount is None else _amount(amount, invoice.currency, "amount")
        if wanted > due:
            raise BusinessError(
                "payment.over_allocation",
                _("Invoice %(number)s only owes %(due)s: %(amount)s cannot be allocated to it."),
                field="amount",
                number=invoice.number,
                due=str(due),
                amount=str(wanted),
            )
        rows: list[Allocation] = []
        payments = Payment.objects.select_for_update().filter(
            customer_id=invoice.customer_id,
            currency=invoice.currency,
            status=PaymentStatus.RECEIVED,
        )
        # Invoice locked first (above), then the payments by id (see _lock_invoices).
        locked = list(payments.order_by("pk"))
        for payment in sorted(locked, key=lambda p: (p.received_on, p.created_at)):
            if wanted <= 0:
                break
            left = unallocated(payment)
            part = min(left, wanted)
            if part > 0:
                rows.append(_allocate_one(ctx, payment, invoice, part, left))
                wanted -= part
        if amount is not None and wanted > 0:
            raise BusinessError(
                "payment.insufficient_credit",
                _("The customer's credit does not cover this amount."),
                field="amount",
            )
        return rows


def refund(
    ctx: Ctx,
    *,
    customer_id: Any,
    amount: Any,
    refunded_on: dt.date,
    method: str = Method.TRANSFER,
    credit_note_id: Any = None,
    reference: str = "",
) -> list[Refund]:
    """Pay back part of the customer's credit (oldest payments first), optionally for a
    credit note. Refused above the credit."""
    ctx.require(Perm.EDIT_INVOICES)
    with atomic():
        customer: Customer = _get(
            Customer, ctx, customer_id, "customer.not_found", _("No such customer.")
        )
        note = None
        if credit_note_id is not None:
            note = _get(Invoice, ctx, credit_note_id, "invoice.not_found", _("No such invoice."))
            if (
                note.kind != DocumentKind.CREDIT_NOTE
                or note.customer_id != customer.pk
                or note.is_draft
            ):
                raise BusinessError(
                    "refund.not_a_credit_note",
                    _("A refund refers to an issued credit note of the same customer."),
                    field="credit_note_id",
                )
        payments = sorted(
            Payment.objects.select_for_update()
            .filter(customer=customer, status=PaymentStatus.RECEIVED)
            .order_by("pk"),
            key=lambda p: (p.received_on, p.created_at),
        )
        currency = note.currency if note else (payments[0].currency if payments else "EUR")
        wanted = _amount(amount, currency, "amount")
        if note is not None:
            refunded = _sum(Refund.objects.filter(credit_note=note), "amount")
            left = (note.total_incl_vat or ZERO) - refunded
            if wanted > left:
                raise BusinessError(
                    "refund.above_credit_note",
                    _("Credit note %(number)s has %(left)s left to refund."),
                    field="amount",
                    number=note.number,
                    left=str(left),
                )
        available = [(p, unallocated(p)) for p in payments if p.currency == currency]
        if wanted > sum((a for _p, a in available), ZERO):
            raise BusinessError(
                "refund.above_credit",
                _("The customer's credit (%(credit)s) is less than this refund."),
                field="amount",
                credit=str(sum((a for _p, a in available), ZERO)),
            )
        rows: list[Refund] = []
        for payment, left in available:
            part = min(left, wanted)
            if part <= 0:
                continue
            rows.append(
                Refund.objects.create(
                    organization=ctx.organization,
                    payment=payment,
                    credit_note=note,
                    amount=part,
                    refunded_on=refunded_on,
                    method=method,
                    reference=clean_text(reference, "reference", max_length=200),
                )
            )
            wanted -= part
            if wanted <= 0:
                break
        for row in rows:
            audit.record(
                ctx.organization.id,
                ctx.actor,
                "payment.refunded",
                row,
                after={"payment": str(row.payment_id), "amount": row.amount},
            )
            events.publish(
                payment_events.PaymentRefunded(ctx.organization.id, row.pk, row.payment_id)
            )
        return rows


def return_payment(ctx: Ctx, payment_id: Any, *, reason: str) -> Payment:
    """A payment came back (SEPA return or rejection, chargeback, bounced cheque): every
    allocation is taken back and the invoices reopen, with the reason."""
    ctx.require(Perm.EDIT_INVOICES)
    reason = clean_text(reason, "reason", max_length=300)
    if not reason:
        raise BusinessError("payment.return_reason", _("Give the reason of the return."), "reason")
    with atomic():
        # Invoices first (by id), then the payment: the lock order of allocate/apply_credit.
        target = get_payment(ctx, payment_id)
        _lock_invoices(
            Allocation.objects.filter(payment=target, reversed_at__isnull=True).values_list(
                "invoice_id", flat=True
            )
        )
        payment = get_payment(ctx, payment_id, lock=True)
        if payment.status == PaymentStatus.RETURNED:
            return payment
        if payment.refunds.exists():
            raise BusinessError(
                "payment.refunded",
                _("Part of this payment was refunded: it cannot be returned."),
            )
        rows = list(payment.allocations.select_for_update().filter(reversed_at__isnull=True))
        for row in rows:
            _reverse(ctx, row, reason)
        payment.status = PaymentStatus.RETURNED
        payment.return_reason = reason
        payment.returned_at = timezone.now()
        payment.save(update_fields=["status", "return_reason", "returned_at"])
        events.publish(payment_events.PaymentReturned(ctx.organization.id, payment.pk))
        for invoice_id in {row.invoice_id for row in rows}:
            refresh_status(invoice_id)
        audit.record(
            ctx.organization.id, ctx.actor, "payment.returned", payment, after={"reason": reason}
        )
    return payment


# --- credit notes ----------------------------------------------------------------------------


def on_invoice_issued(event: InvoiceIssued) -> None:
    """A credit note lowers what the credited invoice owes: allocations above the new net
    total go back to the customer's credit (newest first), and the status follows."""
    if not event.credited_invoice_id:
        return
    from facturo.audit.services import SYSTEM
    from facturo.organizations.models import Organization

    invoice = Invoice.objects.select_for_update().get(pk=event.credited_invoice_id)
    excess = allocated(invoice) - net_total(invoice)
    if excess > 0:
        org = Organization.objects.get(pk=event.organization_id)
        ctx = Ctx(org, "owner", SYSTEM)
        active = Allocation.objects.select_for_update().filter(
            invoice_id=invoice.pk, reversed_at__isnull=True
        )
        for row in active.order_by("-created_at", "-id"):
            if excess <= 0:
                break
            _reverse(ctx, row, f"credit note {event.number}")
            keep = row.amount - excess
            excess -= row.amount
            if keep > 0:
                Allocation.objects.create(
                    organization_id=row.organization_id,
                    payment_id=row.payment_id,
                    invoice_id=row.invoice_id,
                    amount=keep,
                    created_by="system",
                )
    refresh_status(invoice.pk)


def payments_of(invoice: Invoice) -> Iterable[Allocation]:
    return Allocation.objects.filter(invoice=invoice, reversed_at__isnull=True).select_related(
        "payment"
    )
