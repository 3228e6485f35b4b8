"""Read queries for payments, scoped by the invoice's or the organization's id."""

from __future__ import annotations

import datetime as dt
from typing import Any

from facturo.invoicing.models import Invoice

from . import services
from .models import Mandate, ProviderSettings, SepaCreditor


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
