"""Catalog of products and services."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from facturo.audit import services as audit
from facturo.core.document import Nature
from facturo.core.errors import BusinessError, NotFound, _
from facturo.core.tax import check_vat
from facturo.core.text import clean_text
from facturo.foundation.db import atomic
from facturo.organizations.context import Ctx, Perm

from .models import UNIT_CHOICES, Product

FIELDS = (
    "code",
    "name",
    "description",
    "unit_code",
    "unit_price",
    "vat_category",
    "vat_rate",
    "nature",
    "account_code",
    "archived",
)


def as_decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, float):
        value = str(value)
    try:
        result = Decimal(str(value).replace(",", ".").strip())
    except (InvalidOperation, ValueError):
        raise BusinessError(
            "input.not_a_number", _("“%(value)s” is not a number."), field=field, value=value
        ) from None
    if not result.is_finite():
        raise BusinessError(
            "input.not_a_number", _("“%(value)s” is not a number."), field=field, value=value
        )
    return result


def _snapshot(p: Product) -> dict[str, Any]:
    return {f: getattr(p, f) for f in FIELDS}


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    cleaned = {k: v for k, v in data.items() if k in FIELDS}
    for key, limit in (("code", 50), ("name", 200), ("description", 2000)):
        if key in cleaned:
            cleaned[key] = clean_text(cleaned[key], key, max_length=limit)
    if not str(cleaned.get("name", "")).strip():
        raise BusinessError("product.required", _("This field is required."), field="name")
    cleaned["unit_price"] = as_decimal(cleaned.get("unit_price", "0"), "unit_price")
    if cleaned["unit_price"] < 0:
        raise BusinessError(
            "product.negative_price", _("A price cannot be negative."), field="unit_price"
        )
    if cleaned["unit_price"].as_tuple().exponent < -6:
        raise BusinessError(
            "product.too_precise", _("A unit price has at most 6 decimals."), field="unit_price"
        )
    cleaned["vat_rate"] = as_decimal(cleaned.get("vat_rate", "20"), "vat_rate")
    check_vat(cleaned.get("vat_category", "S"), cleaned["vat_rate"])
    if cleaned.get("unit_code", "C62") not in dict(UNIT_CHOICES):
        raise BusinessError("product.invalid_unit", _("Unknown unit."), field="unit_code")
    if cleaned.get("nature", Nature.SERVICES) not in (n.value for n in Nature):
        raise BusinessError(
            "product.invalid_nature", _("Nature is goods or services."), field="nature"
        )
    return cleaned


def create_product(ctx: Ctx, **data: Any) -> Product:
    ctx.require(Perm.EDIT_CATALOG)
    cleaned = _clean(data)
    with atomic():
        product = Product.objects.create(organization=ctx.organization, **cleaned)
        audit.record(
            ctx.organization.id, ctx.actor, "product.created", product, after=_snapshot(product)
        )
    return product


def get_product(ctx: Ctx, product_id: Any) -> Product:
    ctx.require(Perm.VIEW)
    product = Product.objects.filter(organization=ctx.organization, pk=product_id).first()
    if product is None:
        raise NotFound("product.not_found", _("No such product."))
    return product


def update_product(ctx: Ctx, product_id: Any, **data: Any) -> Product:
    ctx.require(Perm.EDIT_CATALOG)
    with atomic():
        product = get_product(ctx, product_id)
        before = _snapshot(product)
        cleaned = _clean({**before, **data})
        for key, value in cleaned.items():
            setattr(product, key, value)
        product.save()
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "product.updated",
            product,
            before=before,
            after=_snapshot(product),
        )
    return product
