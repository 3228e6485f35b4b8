"""Online payment: hosted checkout pages per invoice and the provider's webhooks.

Both are thin over :mod:`.services`: a verified ``paid`` event records the payment and
allocates it to its invoice (what the invoice no longer owes becomes the customer's credit).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from facturo.audit import services as audit
from facturo.audit.services import Actor
from facturo.core.errors import BusinessError, _
from facturo.foundation.db import atomic, on_commit
from facturo.invoicing.models import Invoice
from facturo.organizations.context import Ctx, Perm

from . import notify, services
from .models import (
    AutoPayRequest,
    AutoPayState,
    CheckoutLink,
    Payment,
    ProviderEvent,
    ProviderSettings,
)
from .providers import CheckoutRequest, WebhookRejected, get_provider

log = logging.getLogger(__name__)

__all__ = ["WebhookRejected", "checkout_url", "configure", "handle_webhook", "test_connection"]


def configure(
    ctx: Ctx,
    provider: str,
    *,
    secret_key: str,
    webhook_secret: str,
    enabled: bool = True,
) -> ProviderSettings:
    """Save a provider's keys; a new webhook secret keeps the previous one valid while the
    provider rolls over."""
    ctx.require(Perm.MANAGE_ORGANIZATION)
    get_provider(provider)
    with atomic():
        row = ProviderSettings.objects.filter(
            organization=ctx.organization, provider=provider
        ).first()
        if row is None:
            row = ProviderSettings(
                organization=ctx.organization,
                provider=provider,
                webhook_token=secrets.token_urlsafe(24),
            )
        elif row.webhook_secret != webhook_secret:
            row.previous_webhook_secret = row.webhook_secret
        row.secret_key, row.webhook_secret, row.enabled = secret_key, webhook_secret, enabled
        row.save()
        audit.record(ctx.organization.id, ctx.actor, "payments.provider_configured", row,
                     after={"provider": provider, "enabled": enabled})  # fmt: skip
    return row


def test_connection(ctx: Ctx, provider: str) -> None:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    row = ProviderSettings.objects.get(organization=ctx.organization, provider=provider)
    get_provider(provider).test_connection(row.secret_key)


def checkout_url(
    invoice: Invoice, *, provider: str = "stripe", success_url: str, cancel_url: str
) -> str:
    """The hosted payment page for what the invoice owes now, created on first use.

    The row is written first and its id is the idempotency key sent to the provider: a
    retry after a crash or a double click gets the same session back."""
    row_settings = ProviderSettings.objects.filter(
        organization_id=invoice.organization_id, provider=provider, enabled=True
    ).first()
    if row_settings is None:
        raise BusinessError("payments.provider_disabled", _("Online payment is not enabled."))
    due = services.amount_due(invoice)
    if due <= 0:
        raise BusinessError("payments.nothing_due", _("This invoice has nothing left to pay."))
    now = timezone.now()
    # Pages made for another amount (before a partial payment or a credit note) go first.
    expire_stale_checkouts(invoice.pk)
    link = (
        CheckoutLink.objects.filter(
            invoice=invoice, provider=provider, amount=due, closed_at__isnull=True
        )
        .exclude(expires_at__lte=now + dt.timedelta(minutes=5))
        .first()
    )
    if link and link.url:
        return link.url
    if link is None:
        link = CheckoutLink.objects.create(
            organization_id=invoice.organization_id,
            invoice=invoice,
            provider=provider,
            amount=due,
            currency=invoice.currency,
        )
    created = get_provider(provider).create_checkout(
        row_settings.secret_key,
        CheckoutRequest(
            idempotency_key=f"facturo-checkout-{link.pk}",
            invoice_id=str(invoice.pk),
            invoice_number=invoice.number or "",
            organization_id=str(invoice.organization_id),
            amount=due,
            currency=invoice.currency,
            description=str(_("Invoice %(number)s") % {"number": invoice.number}),
            customer_email=invoice.customer.email,
            success_url=success_url,
            cancel_url=cancel_url,
        ),
    )
    link.external_id, link.url, link.expires_at = (
        created.external_id,
        created.url,
        created.expires_at,
    )
    link.save(update_fields=["external_id", "url", "expires_at"])
    return link.url


def handle_webhook(
    provider: str, token: str, payload: bytes, headers: dict[str, str], *, now: Any = None
) -> str:
    """Verify, then act once per event id. Returns what was done (for the log and tests).
    Raises :class:`WebhookRejected` (answer 400) when the request is not authentic."""
    row = ProviderSettings.objects.filter(provider=provider, webhook_token=token).first()
    if row is None:
        raise WebhookRejected("unknown endpoint")
    event = get_provider(provider).verify_event(
        payload,
        headers,
        [row.webhook_secret, row.previous_webhook_secret],
        now or timezone.now(),
    )
    org = row.organization
    ctx = Ctx(org, "owner", Actor(label=f"{provider} webhook"))
    with atomic():
        try:
            with atomic():
                seen = ProviderEvent.objects.create(
                    provider=provider,
                    event_id=event.event_id,
                    organization=org,
                    event_type=event.event_type,
                )
        except IntegrityError:
            return "duplicate"
        seen.outcome = _act(ctx, provider, event.payment)
        seen.save(update_fields=["outcome"])
        return seen.outcome


def _act(ctx: Ctx, provider: str, paid: Any) -> str:
    if paid is None:
        return "ignored"
    # Several events (completed, async succeeded) can report the same payment, in any order.
    if Payment.objects.filter(
        organization=ctx.organization, provider=provider, provider_reference=paid.external_reference
    ).exists():
        return "already recorded"
    try:  # sessions created outside facturo carry no (or another) invoice id
        invoice_id = uuid.UUID(str(paid.invoice_id))
    except (TypeError, ValueError):
        return "unknown invoice"
    invoice = Invoice.objects.filter(organization=ctx.organization, pk=invoice_id).first()
    if invoice is None:
        return "unknown invoice"
    payment = services.record_payment(
        ctx,
        customer_id=invoice.customer_id,
        amount=paid.amount,
        currency=paid.currency,
        method=paid.method,
        received_on=ctx.today(),
        payer=paid.payer,
        reference=paid.external_reference,
        auto_allocate=False,
        provider=provider,
        provider_reference=paid.external_reference,
    )
    if invoice.currency == paid.currency:
        part = min(paid.amount, services.amount_due(invoice))
        if part > 0:
            services.allocate(ctx, payment.pk, [(invoice.pk, part)])
            return "recorded"
    # An old page paid after the invoice was settled (or credited): nothing is lost, the
    # money is the customer's credit, to apply elsewhere or refund; the team is told.
    audit.record(ctx.organization.id, ctx.actor, "payments.paid_after_settled", payment,
                 after={"invoice": invoice.number, "amount": paid.amount})  # fmt: skip
    return "recorded as credit (invoice already settled)"


# --- stale checkouts -------------------------------------------------------------------------


def _stale(invoice_id: Any = None) -> list[CheckoutLink]:
    """Open pages whose amount is no longer what their invoice owes."""
    links = CheckoutLink.objects.filter(closed_at__isnull=True).exclude(external_id="")
    links = links.exclude(expires_at__lte=timezone.now())
    if invoice_id is not None:
        links = links.filter(invoice_id=invoice_id)
    rows = list(links.select_related("invoice"))
    if not rows:
        return []
    due = services.amounts_due(list({r.invoice_id: r.invoice for r in rows}.values()))
    return [r for r in rows if r.amount != due[r.invoice_id]]


def expire_stale_checkouts(invoice_id: Any = None) -> int:
    """Tell the provider to expire every open page of an invoice (or of all invoices) that
    asks for another amount than what is owed now — after a payment, a credit note, or a
    partial payment elsewhere — and mark it closed. Idempotent; the periodic job retries
    what a provider outage left open. Returns how many were closed."""
    closed = 0
    for link in _stale(invoice_id):
        row = ProviderSettings.objects.filter(
            organization_id=link.organization_id, provider=link.provider
        ).first()
        if row is None:
            continue
        try:
            get_provider(link.provider).expire_checkout(row.secret_key, link.external_id)
        except Exception:  # an outage: the link stays open, the job will try again
            log.warning("could not expire checkout %s", link.external_id, exc_info=True)
            continue
        CheckoutLink.objects.filter(pk=link.pk, closed_at__isnull=True).update(
            closed_at=timezone.now()
        )
        closed += 1
    return closed


def on_allocation_changed(event: Any) -> None:
    """After the commit, close the invoice's pages that no longer match what it owes."""
    invoice_id = event.invoice_id
    if (
        CheckoutLink.objects.filter(invoice_id=invoice_id, closed_at__isnull=True)
        .exclude(external_id="")
        .exists()
    ):
        on_commit(lambda: _expire_quietly(invoice_id))


def on_credit_note(event: Any) -> None:
    if getattr(event, "credited_invoice_id", None):
        on_allocation_changed(type("E", (), {"invoice_id": event.credited_invoice_id})())


def _expire_quietly(invoice_id: Any) -> None:
    try:
        expire_stale_checkouts(invoice_id)
    except Exception:
        log.warning("expiring checkouts of %s failed", invoice_id, exc_info=True)


# --- auto-pay by card ------------------------------------------------------------------------


def base_url() -> str:
    return str(settings.FACTURO_BASE_URL)


def send_payment_links(organization_id: Any = None) -> int:
    """E-mail the card payment link of every auto-pay invoice queued for it (one e-mail per
    invoice, whatever the number of runs). The checkout is created outside any transaction
    (it calls the provider); the e-mail and the state change are written together."""
    queued = AutoPayRequest.objects.filter(method="card", state=AutoPayState.QUEUED)
    if organization_id is not None:
        queued = queued.filter(organization_id=organization_id)
    sent = 0
    for request in queued.select_related("invoice__customer", "invoice__organization"):
        invoice = request.invoice
        try:
            url = checkout_url(invoice, success_url=base_url() + "/?paid=1",
                               cancel_url=base_url() + "/")  # fmt: skip
        except BusinessError as exc:  # paid meanwhile, provider disabled …
            AutoPayRequest.objects.filter(pk=request.pk, state=AutoPayState.QUEUED).update(
                state=AutoPayState.SKIPPED, note=exc.message[:300]
            )
            continue
        except Exception:
            log.warning("payment link for %s not created", invoice.pk, exc_info=True)
            continue
        with atomic():
            if AutoPayRequest.objects.filter(pk=request.pk, state=AutoPayState.QUEUED).update(
                state=AutoPayState.LINK_SENT, note=url[:300]
            ):
                notify.payment_link(invoice, url)
                sent += 1
    return sent
