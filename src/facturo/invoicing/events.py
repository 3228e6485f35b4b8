"""Events published by invoicing (subscribe to them from higher apps' ``ready()``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from facturo.core.document import InvoiceDocument


@dataclass(frozen=True)
class InvoiceIssued:
    """An invoice, deposit invoice or credit note was issued (inside the issuing transaction)."""

    organization_id: uuid.UUID
    invoice_id: uuid.UUID
    kind: str  # invoice | credit_note | deposit
    number: str
    credited_invoice_id: uuid.UUID | None
    # The frozen document (what the snapshot column holds), so handlers need not read the
    # snapshot back and parse it; None when published by code that does not have it.
    document: InvoiceDocument | None = field(default=None, compare=False, repr=False)
    # With the document: each line's own revenue account ("" for none) and the customer.
    line_accounts: tuple[str, ...] | None = field(default=None, compare=False, repr=False)
    customer_id: uuid.UUID | None = field(default=None, compare=False, repr=False)
