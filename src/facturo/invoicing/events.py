"""Events published by invoicing (subscribe to them from higher apps' ``ready()``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class InvoiceIssued:
    """An invoice, deposit invoice or credit note was issued (inside the issuing transaction)."""

    organization_id: uuid.UUID
    invoice_id: uuid.UUID
    kind: str  # invoice | credit_note | deposit
    number: str
    credited_invoice_id: uuid.UUID | None
