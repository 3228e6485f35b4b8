"""Catalog: products and services with their price and VAT."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from facturo.catalog import selectors
from facturo.catalog import services as catalog
from facturo.catalog.models import Product
from facturo.core.errors import BusinessError, NotFound
from facturo.organizations.context import Ctx, Perm
from facturo.web.forms import ProductForm

from .base import Amount, attach_error, is_htmx, member_view, page, paginate, percent, plain


@member_view(methods=("GET",))
def product_list(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:100]
    page_obj = paginate(request, selectors.products(ctx, search=search))
    rows = [
        (p, Amount(p.unit_price, ctx.organization.currency), percent(p.vat_rate)) for p in page_obj
    ]
    template = "web/catalog/_rows.html" if is_htmx(request) else "web/catalog/list.html"
    return page(request, ctx, template, {"page_obj": page_obj, "rows": rows, "q": search})


def _initial(product: Product) -> dict[str, Any]:
    data: dict[str, Any] = {f: getattr(product, f) for f in catalog.FIELDS}
    data["unit_price"] = plain(product.unit_price)
    data["vat_rate"] = plain(product.vat_rate)
    return data


@member_view(post=Perm.EDIT_CATALOG)
def product_create(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    form = ProductForm(
        request.POST or None, initial={"vat_rate": "20", "vat_category": "S", "nature": "services"}
    )
    if request.method == "POST" and form.is_valid():
        try:
            catalog.create_product(ctx, **form.cleaned_data)
        except NotFound:
            raise
        except BusinessError as err:
            attach_error(form, err)
        else:
            messages.success(request, _("Product created."))
            return redirect("web:product_list")
    return page(request, ctx, "web/catalog/form.html", {"form": form, "product": None})


@member_view(post=Perm.EDIT_CATALOG)
def product_edit(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    product = catalog.get_product(ctx, pk)
    form = ProductForm(request.POST or None, initial=_initial(product))
    if request.method == "POST" and form.is_valid():
        try:
            catalog.update_product(ctx, product.pk, **form.cleaned_data)
        except NotFound:
            raise
        except BusinessError as err:
            attach_error(form, err)
        else:
            messages.success(request, _("Product saved."))
            return redirect("web:product_list")
    return page(request, ctx, "web/catalog/form.html", {"form": form, "product": product})
