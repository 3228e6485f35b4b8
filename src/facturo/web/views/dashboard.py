"""The dashboard: what is in progress, what is owed, what was invoiced this month."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from facturo.invoicing.models import Invoice, Status
from facturo.organizations.context import Ctx
from facturo.organizations.models import DocumentKind
from facturo.payments import selectors as payment_selectors

from .base import Amount, member_view, page
from .invoices import invoice_rows


@dataclass(frozen=True)
class Figure:
    count: int
    amounts: list[Amount]  # one per currency


def _figure(qs: QuerySet[Invoice], field: str) -> Figure:
    rows = qs.order_by().values("currency").annotate(n=Count("id"), total=Sum(field))
    count = 0
    amounts = []
    for row in sorted(rows, key=lambda r: r["currency"]):
        count += row["n"]
        amounts.append(Amount(row["total"] or Decimal(0), row["currency"]))
    return Figure(count, amounts)


def _owed(ctx: Ctx) -> Figure:
    """Amount due (not the totals) of the open invoices: a partly paid invoice counts for
    what it still owes, a credited one for what is left after its credit notes."""
    rows = payment_selectors.amounts_owed(ctx)
    return Figure(sum(n for _c, n, _a in rows), [Amount(a, c) for c, _n, a in rows])


def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("Europe/Paris")


@member_view(methods=("GET",))
def dashboard(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    invoices = Invoice.objects.filter(organization=ctx.organization)
    sales = invoices.exclude(kind=DocumentKind.CREDIT_NOTE)
    month_start = timezone.localdate(timezone=_zone(ctx.organization.time_zone)).replace(day=1)
    latest = list(invoices.select_related("customer").order_by("-created_at")[:10])
    return page(
        request,
        ctx,
        "web/dashboard.html",
        {
            "drafts": invoices.filter(status=Status.DRAFT).count(),
            "unpaid": _owed(ctx),
            "this_month": _figure(
                sales.exclude(status=Status.DRAFT).filter(issue_date__gte=month_start),
                "total_excl_vat",
            ),
            "rows": invoice_rows(latest),
            "has_customers": ctx.organization.customers.exists(),
        },
    )
