"""Signed, expiring portal links. The token signs the invoice id with its organization id
(django.core.signing, HMAC with SECRET_KEY and a salt of our own); anything that does not
verify, is too old, or names another invoice resolves to nothing (the view answers 404)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from facturo.audit import services as audit
from facturo.core.errors import NotFound, _
from facturo.foundation.db import atomic
from facturo.invoicing.models import Invoice, Status
from facturo.organizations.context import Ctx, Perm

from .models import LinkRevocation

SALT = "facturo.portal.invoice"
DEFAULT_DAYS = 90


def max_age() -> dt.timedelta:
    return dt.timedelta(days=int(getattr(settings, "FACTURO_PORTAL_LINK_DAYS", DEFAULT_DAYS)))


def invoice_token(invoice: Invoice) -> str:
    signer = signing.TimestampSigner(salt=SALT)
    # "t": when the link was made (ms), so links made before a revocation stop working.
    payload = {"i": str(invoice.pk), "o": str(invoice.organization_id),
               "t": int(time.time() * 1000)}  # fmt: skip
    return signer.sign_object(payload)


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
        made = int(data.get("t", 0))
    except (KeyError, ValueError, TypeError):
        return None
    invoice = (
        Invoice.objects.select_related("customer", "organization", "portal_revocation")
        .filter(pk=invoice_id, organization_id=organization_id)
        .exclude(status=Status.DRAFT)
        .first()
    )
    if invoice is None:
        return None
    revocation = getattr(invoice, "portal_revocation", None)
    if revocation is not None and made <= revocation.revoked_before.timestamp() * 1000:
        return None
    return invoice


def revoke_links(ctx: Ctx, invoice_id: Any) -> LinkRevocation:
    """Every link to this invoice made until now stops working (a new one can be made)."""
    ctx.require(Perm.SEND_INVOICES)
    with atomic():
        invoice = Invoice.objects.filter(organization=ctx.organization, pk=invoice_id).first()
        if invoice is None:
            raise NotFound("invoice.not_found", _("No such invoice."))
        row, _created = LinkRevocation.objects.update_or_create(
            invoice=invoice,
            defaults={"revoked_before": timezone.now(), "revoked_by": ctx.actor.label},
        )
        audit.record(ctx.organization.id, ctx.actor, "portal.links_revoked", invoice,
                     after={"number": invoice.number})  # fmt: skip
    return row
