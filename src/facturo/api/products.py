"""/products: the catalog of products and services (through the catalog services)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.responses import Status
from pydantic import field_validator

from facturo.catalog import selectors
from facturo.catalog import services as catalog
from facturo.catalog.models import Product

from .auth import ctx_of
from .schemas import DecimalOut, Input, PageMeta, PageParams, Percent, UnitPrice, optional, plain

router = Router(tags=["products"])

UnitCode = Literal["C62", "HUR", "DAY", "MON", "ANN", "KGM", "MTR", "LTR", "MTK", "SET"]
VatCategoryCode = Literal["S", "Z", "E", "AE", "K", "G", "O"]
NatureName = Literal["goods", "services"]


class ProductOut(Schema):
    id: uuid.UUID
    code: str
    name: str
    description: str
    unit_code: str
    unit_price: DecimalOut
    vat_category: str
    vat_rate: DecimalOut
    nature: str
    account_code: str
    archived: bool
    created_at: dt.datetime

    @field_validator("unit_price", "vat_rate", mode="before")
    @classmethod
    def _plain(cls, value: Any) -> Any:
        return plain(value, 2) if isinstance(value, Decimal) else value


class ProductPage(PageMeta):
    items: list[ProductOut]


class ProductFields(Input):
    code: str = optional(max_length=50)
    description: str = optional(max_length=10_000)
    unit_code: UnitCode = optional(description="UN/ECE Rec 20 unit code.")
    vat_category: VatCategoryCode = optional()
    vat_rate: Percent = optional()
    nature: NatureName = optional()
    account_code: str = optional(max_length=20)
    archived: bool = optional()


class ProductIn(ProductFields):
    name: str = Field(max_length=200)
    unit_price: UnitPrice = Field(description="Unit price excluding VAT.")


class ProductPatch(ProductFields):
    name: str = optional(max_length=200)
    unit_price: UnitPrice = optional()


class ProductFilters(PageParams):
    search: str = Field("", max_length=200, description="Name or code.")
    include_archived: bool = False


@router.get("/products", response=ProductPage, summary="List products")
def list_products(request: HttpRequest, filters: Query[ProductFilters]) -> dict[str, Any]:
    qs = selectors.products(ctx_of(request), search=filters.search,
                            include_archived=filters.include_archived)  # fmt: skip
    return {"count": qs.count(), "limit": filters.limit, "offset": filters.offset,
            "items": list(qs[filters.offset : filters.offset + filters.limit])}  # fmt: skip


@router.post("/products", response={201: ProductOut}, summary="Create a product")
def create_product(request: HttpRequest, payload: ProductIn) -> Status:
    data = payload.model_dump(exclude_unset=True)
    return Status(201, catalog.create_product(ctx_of(request), **data))


@router.get("/products/{product_id}", response=ProductOut, summary="Get a product")
def get_product(request: HttpRequest, product_id: uuid.UUID) -> Product:
    return catalog.get_product(ctx_of(request), product_id)


@router.patch("/products/{product_id}", response=ProductOut, summary="Update a product")
def update_product(request: HttpRequest, product_id: uuid.UUID,
                   payload: ProductPatch) -> Product:  # fmt: skip
    data = payload.model_dump(exclude_unset=True)
    return catalog.update_product(ctx_of(request), product_id, **data)
