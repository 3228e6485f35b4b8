"""Sending an issued invoice or credit note to the customer by e-mail.

Sending writes the e-mail to the outbox, marks the invoice sent and records the audit
event, in one transaction; the outbox job delivers it afterwards (at-least-once, with the
PDF/A-3 + Factur-X built at issue attached byte for byte).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from facturo.audit import services as audit
from facturo.core.errors import BusinessError, ConflictError, _
from facturo.documents.models import StoredDocument
from facturo.documents.services import PDF
from facturo.foundation.db import atomic
from facturo.notifications import services as notifications
from facturo.notifications.models import OutboxEmail
from facturo.organizations.context import Ctx, Perm
from facturo.organizations.models import DocumentKind

from .models import Invoice
from .services import get_invoice, mark_sent

BABEL_LOCALES = {"fr": "fr_FR", "en": "en_GB"}
_SEPARATORS = re.compile(r"[,;\s]+")


def send_invoice(
    ctx: Ctx,
    invoice_id: Any,
    *,
    to: list[str] | None = None,
    cc: list[str] | None = None,
    request_key: str | None = None,
) -> OutboxEmail:
    """Put the e-mail carrying an issued invoice (or credit note) in the outbox.

    Recipients default to the customer's e-mail address, with the customer's copy and
    accounting addresses in Cc; the organization's accounting copy address is always added
    in Cc. Every call is a new e-mail (sending again is a deliberate resend), except a retry
    of the same request: the same ``request_key`` returns the e-mail already written.
    """
    ctx.require(Perm.SEND_INVOICES)
    with atomic():
        invoice = get_invoice(ctx, invoice_id, for_update=True)
        if invoice.is_draft:
            raise BusinessError("invoice.not_issued", _("A draft cannot be sent: issue it first."))
        invoice = Invoice.objects.select_related(
            "organization", "customer", "credited_invoice"
        ).get(pk=invoice.pk)
        return send_loaded(ctx, [SendRequest(invoice, to, cc, request_key)])[0]


@dataclass(frozen=True)
class SendRequest:
    """One e-mail to write: an issued invoice read (and locked, or issued) in the caller's
    transaction with its organization and customer, and who gets it (see send_invoice)."""

    invoice: Invoice
    to: list[str] | None = None
    cc: list[str] | None = None
    request_key: str | None = None


def send_loaded(ctx: Ctx, requests: list[SendRequest]) -> list[OutboxEmail]:
    """The e-mails of several issued invoices, each as :func:`send_invoice` writes it, with
    one query for the e-mails already written, one for the PDFs and one insert."""
    ctx.require(Perm.SEND_INVOICES)
    prepared = []
    for r in requests:
        recipients, copies = _recipients(r.invoice, r.to, r.cc)
        key = _idempotency_key(r.invoice.id, r.request_key or uuid.uuid4().hex)
        prepared.append((r.invoice, recipients, copies, key))
    existing = {
        e.idempotency_key: e
        for e in OutboxEmail.objects.filter(idempotency_key__in=[p[3] for p in prepared])
    }
    pdfs = dict(
        StoredDocument.objects.filter(
            organization_id=ctx.organization.id,
            owner_id__in=[p[0].id for p in prepared],
            content_type=PDF,
        ).values_list("owner_id", "id")
    )
    results: list[OutboxEmail] = []
    new: list[tuple[Invoice, OutboxEmail]] = []
    senders: dict[Any, str] = {}
    for invoice, recipients, copies, key in prepared:
        found = existing.get(key)
        if found is not None:
            if (found.to, found.cc) != (recipients, copies):
                raise ConflictError(
                    "invoice.send_key_reused",
                    _("This sending request was already made with other recipients."),
                )
            results.append(found)
            continue
        pdf_id = pdfs.get(invoice.id)
        subject, body = notifications.render_email(
            "credit_note" if invoice.kind == DocumentKind.CREDIT_NOTE else "invoice",
            _language(invoice),
            _email_context(invoice, has_pdf=pdf_id is not None),
        )
        org = invoice.organization
        if org.id not in senders:
            senders[org.id] = notifications.sender_address(org)
        email = OutboxEmail(
            idempotency_key=key,
            **notifications.email_fields(
                organization_id=org.id,
                subject_id=invoice.id,
                from_email=senders[org.id],
                to=recipients,
                cc=copies,
                reply_to=[org.email] if org.email else [],
                subject=subject,
                body=body,
                attachment_ids=[pdf_id] if pdf_id is not None else [],
            ),
        )
        new.append((invoice, email))
        results.append(email)
    notifications.queue_emails([e for _i, e in new])
    mark_sent([i.id for i, _e in new])
    for invoice, email in new:
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "invoice.sent",
            invoice,
            before={"status": invoice.status},
            after={
                "to": email.to,
                "cc": email.cc,
                "outbox_email_id": str(email.id),
                "message_id": email.message_id,
            },
        )
    return results


def _idempotency_key(invoice_id: uuid.UUID, request_key: str) -> str:
    digest = hashlib.sha256(f"{invoice_id}:{request_key}".encode()).hexdigest()[:40]
    return f"invoice.sent:{invoice_id}:{digest}"


def _addresses(values: Iterable[str]) -> list[str]:
    result: list[str] = []
    for value in values:
        result.extend(a for a in _SEPARATORS.split(value or "") if a)
    return result


def _check(addresses: Sequence[str], field: str) -> None:
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise BusinessError(
                "invoice.invalid_recipient",
                _("“%(address)s” is not a valid e-mail address."),
                field=field,
                address=address,
            ) from None


def _unique(addresses: Iterable[str], seen: set[str]) -> list[str]:
    result = []
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            result.append(address)
    return result


def _recipients(
    invoice: Invoice, to: list[str] | None, cc: list[str] | None
) -> tuple[list[str], list[str]]:
    customer, org = invoice.customer, invoice.organization
    customer_copies = _addresses([customer.cc_emails, customer.accounting_email])
    if to is None:
        # Without a main address, the customer's accounting or copy address takes its place.
        candidates = _addresses([customer.email]) or customer_copies[:1]
    else:
        candidates = _addresses(to)
    copies = customer_copies if cc is None else _addresses(cc)
    _check(candidates, "to")
    _check(copies, "cc")
    seen: set[str] = set()
    recipients = _unique(candidates, seen)
    if not recipients:
        raise BusinessError(
            "invoice.no_recipient",
            _(
                "Customer %(customer)s has no e-mail address: add one on the customer's page "
                "(field “E-mail”), or type a recipient."
            ),
            field="to",
            customer=customer.name,
        )
    copies = _unique([*copies, *_addresses([org.accounting_copy_email])], seen)
    return recipients, copies


def _language(invoice: Invoice) -> str:
    for language in (invoice.language, invoice.customer.language):
        if language in notifications.LANGUAGES:
            return language
    return "fr"


def _group(value: str, size: int = 4) -> str:
    return " ".join(value[i : i + size] for i in range(0, len(value), size))


def _email_context(invoice: Invoice, *, has_pdf: bool) -> dict[str, Any]:
    """What the e-mail says, read from the frozen snapshot, like the PDF."""
    snapshot = invoice.snapshot or {}
    locale = BABEL_LOCALES[_language(invoice)]
    totals = snapshot.get("totals", {})
    currency = invoice.currency
    amount = Decimal(str(totals.get("due_payable") or invoice.total_incl_vat or 0))
    payment = snapshot.get("payment") or {}
    issue_date, due = invoice.issue_date, invoice.due_date

    def day(value: dt.date | None) -> str:
        return _long_date(value, locale) if value else ""

    credited = invoice.credited_invoice
    return {
        "is_deposit": invoice.kind == DocumentKind.DEPOSIT,
        "number": invoice.number,
        "issue_date": day(issue_date),
        "total": format_currency(amount, currency, locale=locale),
        "with_vat": Decimal(str(totals.get("tax_total") or invoice.total_vat or 0)) != 0,
        "due_date": day(due),
        "on_receipt": bool(due and issue_date and due <= issue_date),
        "iban": _group(payment.get("iban", "")),
        "bic": payment.get("bic", ""),
        "account_name": payment.get("account_name", ""),
        "payment_reference": payment.get("remittance") or invoice.number,
        "credited_number": credited.number if credited else "",
        "reason": invoice.reason,
        "seller_name": invoice.organization.name,
        "customer_name": invoice.customer.name,
        "has_pdf": has_pdf,
    }


@functools.lru_cache(maxsize=512)
def _long_date(value: dt.date, locale: str) -> str:
    """« 22 novembre 2026 »: the same few dates come back for every e-mail of a run."""
    return format_date(value, format="long", locale=locale)


def load_documents(
    organization_id: uuid.UUID, ids: Sequence[str]
) -> list[notifications.Attachment]:
    """The stored documents an outbox e-mail carries, byte for byte as built at issue."""
    documents = {
        str(d.id): d
        for d in StoredDocument.objects.filter(organization_id=organization_id, pk__in=list(ids))
    }
    missing = [i for i in ids if str(i) not in documents]
    if missing:
        raise LookupError(f"stored document(s) not found: {', '.join(map(str, missing))}")
    return [
        notifications.Attachment(d.filename, bytes(d.content), d.content_type)
        for d in (documents[str(i)] for i in ids)
    ]


# The outbox lives below this app and cannot import the documents it attaches: hand it the
# loader. Importing this module (the web and API views, the worker's tasks) is enough.
notifications.set_attachment_loader(load_documents)
