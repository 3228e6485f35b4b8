"""Signed, expiring portal links. The token signs the invoice id with its organization id
(django.core.signing, HMAC with SECRET_KEY and a salt of our own); anything that does not
verify, is too old, or names another invoice resolves to nothing (the view answers 404)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

from facturo.invoicing.models import Invoice, Status

SALT = "facturo.portal.invoice"
DEFAULT_DAYS = 90


def max_age() -> dt.timedelta:
    return dt.timedelta(days=int(getattr(settings, "FACTURO_PORTAL_LINK_DAYS", DEFAULT_DAYS)))


def invoice_token(invoice: Invoice) -> str:
    signer = signing.TimestampSigner(salt=SALT)
    return signer.sign_object({"i": str(invoice.pk), "o": str(invoice.organization_id)})


def invoice_link(invoice: Invoice, *, base_url: str = "") -> str:
    """The customer's link to this issued invoice (absolute when ``base_url`` is given,
    e.g. ``https://facturo.example``), for e-mails and the invoice page."""
    if invoice.status == Status.DRAFT:
        raise ValueError("a draft has no portal link")
    path = reverse("portal:invoice", kwargs={"token": invoice_token(invoice)})
    return base_url.rstrip("/") + path


def resolve(token: str) -> Invoice | None:
    signer = signing.TimestampSigner(salt=SALT)
    try:
        data: Any = signer.unsign_object(token, max_age=max_age())
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        invoice_id, organization_id = uuid.UUID(str(data["i"])), uuid.UUID(str(data["o"]))
    except (KeyError, ValueError):
        return None
    return (
        Invoice.objects.select_related("customer", "organization")
        .filter(pk=invoice_id, organization_id=organization_id)
        .exclude(status=Status.DRAFT)
        .first()
    )
