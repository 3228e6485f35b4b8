"""Events published by payments, inside the business transaction (subscribe from higher
apps' ``ready()``: accounting posts entries and letters accounts, dunning stops chasing)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class PaymentRecorded:
    """Money was received from a customer (before any allocation)."""

    organization_id: uuid.UUID
    payment_id: uuid.UUID


@dataclass(frozen=True)
class AllocationChanged:
    """Part of a payment was allocated to an invoice, or such an allocation was reversed."""

    organization_id: uuid.UUID
    allocation_id: int
    payment_id: uuid.UUID
    invoice_id: uuid.UUID
    reversed: bool


@dataclass(frozen=True)
class InvoicePaymentStatusChanged:
    """An invoice's derived payment status changed (e.g. issued → partially_paid → paid)."""

    organization_id: uuid.UUID
    invoice_id: uuid.UUID
    old_status: str
    new_status: str


@dataclass(frozen=True)
class PaymentRefunded:
    """Part of a customer's credit was paid back (one row per payment drawn on)."""

    organization_id: uuid.UUID
    refund_id: uuid.UUID
    payment_id: uuid.UUID


@dataclass(frozen=True)
class PaymentReturned:
    """A received payment came back (SEPA return, chargeback, bounced cheque)."""

    organization_id: uuid.UUID
    payment_id: uuid.UUID
