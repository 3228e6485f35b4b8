"""/customers: list, create, read, update (through the customers services)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from facturo.customers import selectors
from facturo.customers import services as customers
from facturo.customers.models import Customer

from .auth import ctx_of
from .schemas import Input, PageMeta, PageParams, TermsKindName, optional

router = Router(tags=["customers"])


class CustomerOut(Schema):
    id: uuid.UUID
    kind: str
    name: str
    siren: str
    siret: str
    vat_number: str
    address_line1: str
    address_line2: str
    postcode: str
    city: str
    country_code: str
    delivery_line1: str
    delivery_line2: str
    delivery_postcode: str
    delivery_city: str
    delivery_country_code: str
    email: str
    cc_emails: str
    accounting_email: str
    language: str
    currency: str
    payment_terms_kind: str
    payment_terms_days: int | None
    notes: str
    archived: bool
    created_at: dt.datetime


class CustomerPage(PageMeta):
    items: list[CustomerOut]


class CustomerFields(Input):
    """Optional fields, shared by create and update (``null`` is refused: send "")."""

    kind: Literal["company", "person"] = optional()
    siren: str = optional(max_length=20, description="9 digits; spaces allowed.")
    siret: str = optional(max_length=20, description="14 digits; spaces allowed.")
    vat_number: str = optional(max_length=20, description="e.g. FR96552100554")
    address_line2: str = optional(max_length=200)
    country_code: str = optional(max_length=2, description="ISO 3166-1 alpha-2")
    delivery_line1: str = optional(max_length=200)
    delivery_line2: str = optional(max_length=200)
    delivery_postcode: str = optional(max_length=20)
    delivery_city: str = optional(max_length=100)
    delivery_country_code: str = optional(max_length=2)
    email: str = optional(max_length=254)
    cc_emails: str = optional(max_length=500, description="Comma-separated addresses.")
    accounting_email: str = optional(max_length=254)
    language: Literal["fr", "en"] = optional()
    currency: str = optional(max_length=3, description="ISO 4217, e.g. EUR")
    payment_terms_kind: TermsKindName = optional(
        description="Empty: the organization's default terms."
    )
    payment_terms_days: int | None = Field(None, ge=0, le=365)
    notes: str = optional(max_length=10_000)
    archived: bool = optional()


class CustomerIn(CustomerFields):
    name: str = Field(max_length=200)
    address_line1: str = Field(max_length=200)
    postcode: str = Field(max_length=20)
    city: str = Field(max_length=100)


class CustomerPatch(CustomerFields):
    name: str = optional(max_length=200)
    address_line1: str = optional(max_length=200)
    postcode: str = optional(max_length=20)
    city: str = optional(max_length=100)


class CustomerFilters(PageParams):
    search: str = Field("", max_length=200, description="Name, e-mail or SIREN prefix.")
    include_archived: bool = False


def _sent(payload: Schema) -> dict[str, Any]:
    """The fields the client sent (an absent field keeps its value)."""
    return payload.model_dump(exclude_unset=True)


@router.get("/customers", response=CustomerPage, summary="List customers")
def list_customers(request: HttpRequest, filters: Query[CustomerFilters]) -> dict[str, Any]:
    qs = selectors.customers(ctx_of(request), search=filters.search,
                             include_archived=filters.include_archived)  # fmt: skip
    return {"count": qs.count(), "limit": filters.limit, "offset": filters.offset,
            "items": list(qs[filters.offset : filters.offset + filters.limit])}  # fmt: skip


@router.post("/customers", response={201: CustomerOut}, summary="Create a customer")
def create_customer(request: HttpRequest, payload: CustomerIn) -> Status:
    return Status(201, customers.create_customer(ctx_of(request), **_sent(payload)))


@router.get("/customers/{customer_id}", response=CustomerOut, summary="Get a customer")
def get_customer(request: HttpRequest, customer_id: uuid.UUID) -> Customer:
    return customers.get_customer(ctx_of(request), customer_id)


@router.patch("/customers/{customer_id}", response=CustomerOut, summary="Update a customer")
def update_customer(request: HttpRequest, customer_id: uuid.UUID,
                    payload: CustomerPatch) -> Customer:  # fmt: skip
    return customers.update_customer(ctx_of(request), customer_id, **_sent(payload))
