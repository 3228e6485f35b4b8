"""Customers: create, update, archive — validated and audited."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from facturo.audit import services as audit
from facturo.core.errors import BusinessError, NotFound, _
from facturo.core.money import check_currency
from facturo.core.terms import PaymentTerms, TermsKind
from facturo.core.text import clean_text
from facturo.foundation.db import atomic
from facturo.organizations import identifiers as ids
from facturo.organizations.context import Ctx, Perm

from .models import Customer, CustomerKind

FIELDS = (
    "kind",
    "name",
    "siren",
    "siret",
    "vat_number",
    "address_line1",
    "address_line2",
    "postcode",
    "city",
    "country_code",
    "delivery_line1",
    "delivery_line2",
    "delivery_postcode",
    "delivery_city",
    "delivery_country_code",
    "email",
    "cc_emails",
    "accounting_email",
    "language",
    "currency",
    "payment_terms_kind",
    "payment_terms_days",
    "notes",
    "archived",
)


TEXT_FIELDS = (
    "name",
    "address_line1",
    "address_line2",
    "postcode",
    "city",
    "delivery_line1",
    "delivery_line2",
    "delivery_postcode",
    "delivery_city",
)


def _snapshot(c: Customer) -> dict[str, Any]:
    return {f: getattr(c, f) for f in FIELDS}


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    cleaned = {k: v for k, v in data.items() if k in FIELDS}
    for key in TEXT_FIELDS:
        if key in cleaned:
            limit = getattr(Customer._meta.get_field(key), "max_length", None)
            cleaned[key] = clean_text(cleaned[key], key, max_length=limit)
    for required in ("name", "address_line1", "postcode", "city"):
        if not str(cleaned.get(required, "")).strip():
            raise BusinessError("customer.required", _("This field is required."), field=required)
    if cleaned.get("kind", CustomerKind.COMPANY) not in CustomerKind.values:
        raise BusinessError("customer.invalid_kind", _("Unknown customer type."), field="kind")
    cleaned["country_code"] = str(cleaned.get("country_code") or "FR").upper()
    if len(cleaned["country_code"]) != 2:
        raise BusinessError(
            "customer.invalid_country",
            _("Use a two-letter country code (FR, DE, BE…)."),
            field="country_code",
        )
    cleaned["siren"] = ids.clean_siren(cleaned.get("siren", ""))
    cleaned["siret"] = ids.clean_siret(cleaned.get("siret", ""))
    if cleaned["siret"] and not cleaned["siren"]:
        cleaned["siren"] = cleaned["siret"][:9]
    ids.check_siret_matches(cleaned["siren"], cleaned["siret"])
    cleaned["vat_number"] = ids.clean_vat_number(cleaned.get("vat_number", ""))
    for field in ("email", "accounting_email"):
        if cleaned.get(field):
            try:
                validate_email(cleaned[field])
            except ValidationError:
                raise BusinessError(
                    "customer.invalid_email",
                    _("“%(value)s” is not a valid e-mail address."),
                    field=field,
                    value=cleaned[field],
                ) from None
    cc = [a.strip() for a in str(cleaned.get("cc_emails", "")).split(",") if a.strip()]
    for address in cc:
        try:
            validate_email(address)
        except ValidationError:
            raise BusinessError(
                "customer.invalid_email",
                _("“%(value)s” is not a valid e-mail address."),
                field="cc_emails",
                value=address,
            ) from None
    cleaned["cc_emails"] = ", ".join(cc)
    check_currency(cleaned.get("currency") or "EUR")
    if cleaned.get("language", "fr") not in ("fr", "en"):
        raise BusinessError(
            "customer.invalid_language", _("Language must be fr or en."), field="language"
        )
    if cleaned.get("payment_terms_kind"):
        PaymentTerms(
            TermsKind(cleaned["payment_terms_kind"]), int(cleaned.get("payment_terms_days") or 0)
        )
    return cleaned


def create_customer(ctx: Ctx, **data: Any) -> Customer:
    ctx.require(Perm.EDIT_CUSTOMERS)
    cleaned = _clean(data)
    with atomic():
        customer = Customer.objects.create(organization=ctx.organization, **cleaned)
        audit.record(
            ctx.organization.id, ctx.actor, "customer.created", customer, after=_snapshot(customer)
        )
    return customer


def get_customer(ctx: Ctx, customer_id: Any) -> Customer:
    ctx.require(Perm.VIEW)
    customer = Customer.objects.filter(organization=ctx.organization, pk=customer_id).first()
    if customer is None:
        raise NotFound("customer.not_found", _("No such customer."))
    return customer


def update_customer(ctx: Ctx, customer_id: Any, **data: Any) -> Customer:
    ctx.require(Perm.EDIT_CUSTOMERS)
    with atomic():
        customer = get_customer(ctx, customer_id)
        before = _snapshot(customer)
        cleaned = _clean({**before, **data})
        for key, value in cleaned.items():
            setattr(customer, key, value)
        customer.save()
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "customer.updated",
            customer,
            before=before,
            after=_snapshot(customer),
        )
    return customer
