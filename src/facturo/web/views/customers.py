"""Customers: list with search, create, edit, detail with their invoices."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from facturo.core.errors import BusinessError, NotFound
from facturo.customers import selectors
from facturo.customers import services as customers
from facturo.customers.services import FIELDS
from facturo.invoicing.models import Invoice
from facturo.organizations.context import Ctx, Perm
from facturo.web.forms import CustomerForm

from .base import attach_error, is_htmx, member_view, page, paginate
from .invoices import invoice_rows


@member_view(methods=("GET",))
def customer_list(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:100]
    archived = request.GET.get("archived") == "1"
    qs = selectors.customers(ctx, search=search, include_archived=archived)
    template = "web/customers/_rows.html" if is_htmx(request) else "web/customers/list.html"
    return page(
        request,
        ctx,
        template,
        {"page_obj": paginate(request, qs), "q": search, "archived": archived},
    )


def _data(form: CustomerForm) -> dict[str, Any]:
    data = {k: v for k, v in form.cleaned_data.items() if k in FIELDS}
    data["payment_terms_days"] = data.get("payment_terms_days")
    return data


@member_view(post=Perm.EDIT_CUSTOMERS)
def customer_create(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    form = CustomerForm(
        request.POST or None, initial={"language": "fr", "currency": "EUR", "country_code": "FR"}
    )
    if request.method == "POST" and form.is_valid():
        try:
            customer = customers.create_customer(ctx, **_data(form))
        except NotFound:
            raise
        except BusinessError as err:
            attach_error(form, err)
        else:
            messages.success(request, _("Customer “%(name)s” created.") % {"name": customer.name})
            return redirect("web:customer_detail", pk=customer.pk)
    return page(request, ctx, "web/customers/form.html", {"form": form, "customer": None})


@member_view(post=Perm.EDIT_CUSTOMERS)
def customer_edit(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    customer = customers.get_customer(ctx, pk)
    initial = {f: getattr(customer, f) for f in FIELDS}
    form = CustomerForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            customers.update_customer(ctx, customer.pk, **_data(form))
        except NotFound:
            raise
        except BusinessError as err:
            attach_error(form, err)
        else:
            messages.success(request, _("Customer saved."))
            return redirect("web:customer_detail", pk=customer.pk)
    return page(request, ctx, "web/customers/form.html", {"form": form, "customer": customer})


@member_view(methods=("GET",))
def customer_detail(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    customer = customers.get_customer(ctx, pk)
    invoices = Invoice.objects.filter(organization=ctx.organization, customer=customer)
    page_obj = paginate(request, invoices.order_by("-created_at"))
    rows = invoice_rows(list(page_obj))
    return page(
        request,
        ctx,
        "web/customers/detail.html",
        {"customer": customer, "page_obj": page_obj, "rows": rows},
    )
