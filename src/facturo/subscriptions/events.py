"""Events published by subscriptions (payments subscribes to collect auto-pay customers)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class SubscriptionInvoiceIssued:
    """A billing run issued the invoice of a period (inside the period's transaction).

    ``auto_pay`` is the subscription's automatic payment setting: ``"none"`` (the customer
    pays the invoice), ``"sepa"`` (collect by SEPA direct debit) or ``"card"`` (charge the
    card on file, Stripe). Fields after ``period_end`` were added later, with defaults, so
    the event keeps its first five positional fields."""

    organization_id: uuid.UUID
    subscription_id: uuid.UUID
    invoice_id: uuid.UUID
    period_start: dt.date
    period_end: dt.date
    customer_id: uuid.UUID | None = None
    auto_pay: str = "none"
    currency: str = "EUR"
    total_incl_vat: Decimal | None = None
    invoice_number: str = ""
