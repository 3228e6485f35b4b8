"""E-mails about payments, written to the notifications outbox inside the transaction that
causes them, each under an idempotency key (so a retry or a second run never sends twice):

- ``payment-received:<payment id>`` to the invoice's issuer or a fixed address (setting);
- ``sepa-prenotification:<debit item id>`` to the debtor, delivered N days before the
  collection date (setting; at once when that day is already past);
- ``autopay-link:<invoice id>`` the card payment link of an auto-pay subscription invoice.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

from babel.numbers import format_currency
from django.utils import timezone

from facturo.core.errors import BusinessError, _
from facturo.core.text import clean_text
from facturo.foundation.db import atomic
from facturo.invoicing.models import Invoice
from facturo.notifications import services as outbox
from facturo.organizations.context import Ctx, Perm
from facturo.organizations.models import Organization

from .models import (
    Allocation,
    DebitItem,
    NotifyTarget,
    PainVersion,
    Payment,
    PaymentSettings,
    PaymentStatus,
)

METHOD_LABELS = {
    "fr": {"transfer": "virement", "card": "carte", "sepa_debit": "prélèvement SEPA",
           "cheque": "chèque", "cash": "espèces", "other": "autre"},
    "en": {"transfer": "bank transfer", "card": "card", "sepa_debit": "SEPA direct debit",
           "cheque": "cheque", "cash": "cash", "other": "other"},
}  # fmt: skip
STATUS_LABELS = {
    "fr": {"paid": "payée", "partially_paid": "payée en partie"},
    "en": {"paid": "paid", "partially_paid": "partly paid"},
}


def settings_of(organization: Organization) -> PaymentSettings:
    """The organization's payment settings (defaults when never saved)."""
    row = PaymentSettings.objects.filter(organization=organization).first()
    return row or PaymentSettings(organization=organization)


def save_settings(
    ctx: Ctx,
    *,
    notify_on_payment: str,
    notify_address: str = "",
    prenotification_days: int = 14,
    pain_version: str = PainVersion.V02,
) -> PaymentSettings:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    if notify_on_payment not in NotifyTarget.values:
        raise BusinessError(
            "payments.bad_notify", _("Unknown notification choice."), "notify_on_payment"
        )
    address = clean_text(notify_address, "notify_address", max_length=254)
    if notify_on_payment == NotifyTarget.ADDRESS and "@" not in address:
        raise BusinessError(
            "payments.notify_address_required",
            _("Give the address that receives payment notifications."),
            "notify_address",
        )
    if not 0 <= int(prenotification_days) <= 30:
        raise BusinessError(
            "payments.bad_prenotification_days",
            _("The pre-notification is sent between 0 and 30 days before the collection."),
            "prenotification_days",
        )
    if pain_version not in PainVersion.values:
        raise BusinessError(
            "payments.bad_pain_version", _("Unknown SEPA file version."), "pain_version"
        )
    from facturo.audit import services as audit

    with atomic():
        row, _created = PaymentSettings.objects.update_or_create(
            organization=ctx.organization,
            defaults={
                "notify_on_payment": notify_on_payment,
                "notify_address": address,
                "prenotification_days": int(prenotification_days),
                "pain_version": pain_version,
            },
        )
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "payments.settings_changed",
            row,
            after={
                "notify_on_payment": notify_on_payment,
                "prenotification_days": int(prenotification_days),
                "pain_version": pain_version,
            },
        )
    return row


def _language(org: Organization, invoice: Invoice | None = None) -> str:
    lang = (invoice.language if invoice else org.default_language) or "fr"
    return "en" if lang.startswith("en") else "fr"


def money(amount: Decimal, currency: str, language: str) -> str:
    return format_currency(amount, currency, locale="fr_FR" if language == "fr" else "en_GB")


def _email_in(label: str) -> str:
    """The address in an actor label such as ``ann@example.com`` or ``ann@x.fr (API)``."""
    for word in (label or "").replace("<", " ").replace(">", " ").split():
        if "@" in word and "." in word.split("@")[-1]:
            return word.strip(",;()")
    return ""


def payment_received(payment: Payment) -> bool:
    """Queue the "payment received" e-mail (once per payment). False when nobody is to be
    told (setting "nobody", or no address known)."""
    if payment.status != PaymentStatus.RECEIVED:
        return False
    org = payment.organization
    config = settings_of(org)
    if config.notify_on_payment == NotifyTarget.NONE:
        return False
    rows = list(
        Allocation.objects.filter(payment=payment, reversed_at__isnull=True)
        .select_related("invoice")
        .order_by("id")
    )
    if config.notify_on_payment == NotifyTarget.ADDRESS:
        to = [config.notify_address]
    else:
        issuers = {_email_in(r.invoice.issued_by) for r in rows} - {""}
        to = sorted(issuers) or ([org.email] if org.email else [])
    if not to or not to[0]:
        return False
    lang = _language(org)
    labels = STATUS_LABELS[lang]
    invoices = [
        {
            "number": r.invoice.number,
            "amount": money(r.amount, payment.currency, lang),
            "status": labels.get(r.invoice.status, r.invoice.status),
        }
        for r in rows
    ]
    left = payment.amount - sum((r.amount for r in rows), Decimal(0))
    subject, body = outbox.render_email(
        "payment_received",
        lang,
        {
            "amount": money(payment.amount, payment.currency, lang),
            "customer": payment.customer.name,
            "received_on": payment.received_on.isoformat(),
            "method": METHOD_LABELS[lang].get(payment.method, payment.method),
            "reference": payment.reference,
            "invoices": invoices,
            "left": money(left, payment.currency, lang) if left > 0 else "",
            "organization": org.name,
        },
    )
    _row, created = outbox.queue_email(
        organization_id=org.id,
        idempotency_key=f"payment-received:{payment.pk}",
        from_email=outbox.sender_address(org),
        to=to,
        subject=subject,
        body=body,
        subject_id=payment.pk,
    )
    return created


def _start_of(day: dt.date, org: Organization) -> dt.datetime:
    try:
        zone = zoneinfo.ZoneInfo(org.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("Europe/Paris")
    return dt.datetime.combine(day, dt.time(8, 0), tzinfo=zone)


def prenotify(item: DebitItem, creditor_identifier: str) -> bool:
    """Queue the debtor's pre-notification of one debit, due ``prenotification_days``
    before the collection date (at once when that is past). Once per debit."""
    batch = item.batch
    org = batch.organization
    customer = item.payment.customer
    if not customer.email:
        return False
    config = settings_of(org)
    invoices = list(
        Invoice.objects.filter(allocations__payment_id=item.payment_id)
        .order_by("number")
        .values_list("number", "language")
    )
    lang = "en" if invoices and (invoices[0][1] or "").startswith("en") else _language(org)
    send_on = batch.collection_date - dt.timedelta(days=config.prenotification_days)
    when = max(timezone.now(), _start_of(send_on, org))
    iban = item.mandate.iban
    subject, body = outbox.render_email(
        "sepa_prenotification",
        lang,
        {
            "amount": money(item.amount, "EUR", lang),
            "collection_date": batch.collection_date.isoformat(),
            "mandate": item.mandate.reference,
            "iban": f"{iban[:4]} … {iban[-4:]}",
            "invoices": [number for number, _lang in invoices],
            "creditor_id": creditor_identifier,
            "end_to_end_id": item.end_to_end_id,
            "organization": org.name,
        },
    )
    _row, created = outbox.queue_email(
        organization_id=org.id,
        idempotency_key=f"sepa-prenotification:{item.pk}",
        from_email=outbox.sender_address(org),
        to=[customer.email],
        subject=subject,
        body=body,
        subject_id=item.payment_id,
        now=when,
    )
    return created


def payment_link(invoice: Invoice, url: str) -> bool:
    """Queue the card payment link of an auto-pay invoice to the customer (once)."""
    org = invoice.organization
    if not invoice.customer.email:
        return False
    from . import services

    lang = _language(org, invoice)
    subject, body = outbox.render_email(
        "payment_link",
        lang,
        {
            "number": invoice.number,
            "amount": money(services.amount_due(invoice), invoice.currency, lang),
            "url": url,
            "organization": org.name,
        },
    )
    _row, created = outbox.queue_email(
        organization_id=org.id,
        idempotency_key=f"autopay-link:{invoice.pk}",
        from_email=outbox.sender_address(org),
        to=[invoice.customer.email],
        subject=subject,
        body=body,
        subject_id=invoice.pk,
    )
    return created
