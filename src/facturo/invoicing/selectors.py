"""Read queries on invoices, always scoped to the acting organization."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db.models import QuerySet

from facturo.organizations.context import Ctx, Perm

from .models import Invoice


def invoices(
    ctx: Ctx,
    *,
    status: str = "",
    kind: str = "",
    customer_id: uuid.UUID | str | None = None,
    issued_from: dt.date | None = None,
    issued_to: dt.date | None = None,
    number: str = "",
) -> QuerySet[Invoice]:
    """Invoices, credit notes and deposits of the organization, newest first."""
    ctx.require(Perm.VIEW)
    qs = Invoice.objects.filter(organization=ctx.organization).select_related("customer")
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if issued_from:
        qs = qs.filter(issue_date__gte=issued_from)
    if issued_to:
        qs = qs.filter(issue_date__lte=issued_to)
    if number:
        qs = qs.filter(number__icontains=number)
    return qs.order_by("-created_at", "-id")
