"""Events published by subscriptions (payments subscribes to collect auto-pay customers)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class SubscriptionInvoiceIssued:
    """A billing run issued the invoice of a period (inside the period's transaction)."""

    organization_id: uuid.UUID
    subscription_id: uuid.UUID
    invoice_id: uuid.UUID
    period_start: dt.date
    period_end: dt.date
