"""The e-mail outbox: write an e-mail in the transaction that causes it, deliver it later.

Writing (:func:`queue_email`) happens inside the caller's transaction, so the e-mail exists
if and only if the change that causes it was committed. Delivery (:func:`deliver_pending`)
runs in a job; the row is the source of truth, so a lost enqueue only delays the e-mail
until the periodic flush.

Two things live above this app and are plugged in at start-up, so that this app imports
nothing above it (ARCHITECTURE.md, dependency rules):

- the attachment loader (the stored PDF of an invoice lives in ``documents``), set by
  :func:`set_attachment_loader`;
- the delivery trigger (the Huey task lives in ``jobs``), set by :func:`set_delivery_trigger`.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.template.loader import render_to_string
from django.utils import timezone

from facturo.audit import services as audit
from facturo.foundation.db import atomic, is_postgresql, on_commit
from facturo.organizations.models import Organization

from .models import OutboxEmail, OutboxStatus

log = logging.getLogger(__name__)

LANGUAGES = ("fr", "en")
MAX_ATTEMPTS = 8
# Longer than any single SMTP exchange can take (EMAIL_TIMEOUT bounds each socket operation):
# a claimed row is not due again before its lease ends, so no second worker picks it up
# while the first is still sending.
LEASE = dt.timedelta(minutes=10)
MAX_BACKOFF = dt.timedelta(hours=24)


# --- plug-ins from the apps above ----------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str


# (organization_id, attachment ids) -> the files, in order; raises if one is missing.
AttachmentLoader = Callable[[uuid.UUID, Sequence[str]], list[Attachment]]
Connections = dict[tuple[Any, ...], BaseEmailBackend]  # open SMTP connections of one run

_attachment_loader: AttachmentLoader | None = None
_delivery_trigger: Callable[[], Any] | None = None


def set_attachment_loader(loader: AttachmentLoader | None) -> None:
    global _attachment_loader
    _attachment_loader = loader


def set_delivery_trigger(trigger: Callable[[], Any] | None) -> None:
    """``trigger()`` is called after the commit of every transaction that queued e-mails
    (it enqueues the delivery task). Without one, the periodic flush delivers them."""
    global _delivery_trigger
    _delivery_trigger = trigger


# Idempotency-key prefix -> check(row) run in the claiming transaction right before an
# e-mail is sent: a reason (str) cancels it (an app above, e.g. dunning, re-checks that the
# e-mail is still wanted: the invoice may have been paid since it was queued).
SendCheck = Callable[[OutboxEmail], str | None]
_send_checks: dict[str, SendCheck] = {}


def register_send_check(prefix: str, check: SendCheck) -> None:
    _send_checks[prefix] = check


def _veto(row: OutboxEmail) -> str | None:
    for prefix, check in _send_checks.items():
        if row.idempotency_key.startswith(prefix):
            return check(row)
    return None


def request_delivery() -> None:
    """Ask for a delivery run now. Best effort: a failure here loses nothing, because the
    periodic job delivers every pending row anyway."""
    if _delivery_trigger is None:
        return
    try:
        _delivery_trigger()
    except Exception:
        log.exception("could not enqueue the outbox delivery; the periodic flush will")


# --- writing -------------------------------------------------------------------------------


def render_email(name: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
    """Subject and body from ``notifications/<name>_subject.<lang>.txt`` and
    ``notifications/<name>_body.<lang>.txt`` (one text per language, written by people,
    rather than a sentence-by-sentence translation)."""
    lang = language if language in LANGUAGES else "fr"
    subject = render_to_string(f"notifications/{name}_subject.{lang}.txt", context)
    body = render_to_string(f"notifications/{name}_body.{lang}.txt", context)
    # A header cannot hold a line break (Django would refuse it as a header injection).
    return " ".join(subject.split()), body.strip() + "\n"


def sender_address(org: Organization) -> str:
    """``"Trade name" <address>``: the organization's sender address, else the global one.
    Kept in Unicode: Django encodes the header when it builds the message."""
    _name, address = parseaddr(org.email_from or settings.DEFAULT_FROM_EMAIL)
    try:
        return str(Address(display_name=org.name, addr_spec=address))
    except (ValueError, IndexError):
        return address


def queue_email(*, idempotency_key: str, **fields: Any) -> tuple[OutboxEmail, bool]:
    """Write an e-mail to the outbox; call it inside the transaction that causes it.
    ``fields``: those of :func:`email_fields` (organization, sender, recipients, text…).

    Returns ``(row, created)``. The same ``idempotency_key`` twice returns the first row and
    writes nothing (the database's unique key decides, so concurrent retries are safe too).
    After the commit, delivery is requested (see :func:`request_delivery`).
    """
    row, created = OutboxEmail.objects.get_or_create(
        idempotency_key=idempotency_key, defaults=email_fields(**fields)
    )
    if created:
        on_commit(request_delivery)
    return row, created


def email_fields(
    *,
    organization_id: uuid.UUID,
    from_email: str,
    to: Sequence[str],
    subject: str,
    body: str,
    cc: Sequence[str] = (),
    reply_to: Sequence[str] = (),
    attachment_ids: Iterable[Any] = (),
    subject_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The columns of an outbox row but its idempotency key."""
    return {
        "organization_id": organization_id,
        "subject_id": subject_id,
        "from_email": from_email,
        "to": list(to),
        "cc": list(cc),
        "reply_to": list(reply_to),
        "subject": subject,
        "body": body,
        "attachment_ids": [str(a) for a in attachment_ids],
        "next_attempt_at": now or timezone.now(),
    }


def queue_emails(rows: list[OutboxEmail]) -> None:
    """Write several new e-mails (built with :func:`email_fields`) in one insert, inside
    the transaction that causes them. Their keys must be new: the caller holds the rows
    they are about (e.g. invoices it just issued), so no concurrent writer can have them;
    a duplicate key fails the transaction rather than being skipped silently."""
    if rows:
        OutboxEmail.objects.bulk_create(rows)
        on_commit(request_delivery)


# --- delivery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0  # gave up after MAX_ATTEMPTS
    retried: int = 0  # failed this time, scheduled again


def backoff(attempts: int) -> dt.timedelta:
    """Delay after the ``attempts``-th failed attempt: 1, 5, 25, 125, 625 min, then a day."""
    return min(dt.timedelta(minutes=5 ** max(attempts - 1, 0)), MAX_BACKOFF)


def deliver_pending(limit: int = 100, now: dt.datetime | None = None) -> DeliveryReport:
    """Send up to ``limit`` due e-mails; safe to run twice, concurrently, or after a crash.

    Each row goes through three steps, the first and the last each in its own short
    transaction:

    1. **claim** — lock one due pending row (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so
       concurrent workers take different rows; SQLite: the ``BEGIN IMMEDIATE`` transaction
       serialises claimers), count the attempt, give it a fresh ``claim_token`` and push
       ``next_attempt_at`` to the end of a lease (:data:`LEASE`). Once committed, no other
       worker sees the row as due until the lease ends.
    2. **send** — through SMTP, outside any transaction (a slow server never holds a database
       lock), with ``Message-ID`` = ``row.message_id``.
    3. **mark** — sent (or failed / rescheduled with backoff), only if the row still carries
       our ``claim_token``.

    A crash between 2 and 3 leaves the row pending; when its lease ends it is claimed and
    sent again, with the same Message-ID, so the receiving side can recognise the duplicate:
    delivery is at-least-once, and never twice at the same time. A crash between 1 and 2
    costs one attempt. A row claimed :data:`MAX_ATTEMPTS` times without success is marked
    failed.
    """
    clock: Callable[[], dt.datetime] = (lambda: now) if now is not None else timezone.now
    sent = failed = retried = 0
    connections: Connections = {}
    try:
        for _ in range(limit):
            claimed = _claim(clock())
            if claimed is None:
                break
            row, token = claimed
            try:
                _send(row, connections)
            except Exception as exc:
                log.warning("e-mail %s not delivered: %s", row.id, exc)
                _drop_connection(row, connections)
                if _mark_failure(row, token, exc, clock()):
                    failed += 1
                else:
                    retried += 1
            else:
                _mark_sent(row, token, clock())
                sent += 1
    finally:
        for connection in connections.values():
            try:
                connection.close()
            except Exception:
                log.debug("closing an SMTP connection failed", exc_info=True)
    return DeliveryReport(sent=sent, failed=failed, retried=retried)


def _claim(now: dt.datetime) -> tuple[OutboxEmail, uuid.UUID] | None:
    while True:
        with atomic():
            due = OutboxEmail.objects.filter(
                status=OutboxStatus.PENDING, next_attempt_at__lte=now
            ).order_by("next_attempt_at", "id")
            if is_postgresql():
                due = due.select_for_update(skip_locked=True)
            row = due.first()
            if row is None:
                return None
            reason = _veto(row)
            if reason is not None:
                # Not wanted any more (a registered send check said why): never sent.
                OutboxEmail.objects.filter(pk=row.pk).update(
                    status=OutboxStatus.CANCELLED,
                    claim_token=None,
                    last_error=f"cancelled: {reason}",
                )
                audit.record(
                    row.organization_id,
                    audit.SYSTEM,
                    "email.cancelled",
                    row,
                    after={"to": row.to, "reason": reason},
                )
                continue
            if row.attempts < MAX_ATTEMPTS:
                return _take(row, now)
            # Still pending after its last attempt: every try died while sending (a worker
            # killed mid-send never records a failure). Give up instead of looping forever.
            error = f"the worker stopped while sending, {row.attempts} times"
            OutboxEmail.objects.filter(pk=row.pk).update(
                status=OutboxStatus.FAILED, claim_token=None, last_error=error
            )
            audit.record(
                row.organization_id,
                audit.SYSTEM,
                "email.failed",
                row,
                after={"to": row.to, "attempts": row.attempts, "error": error},
            )


def _take(row: OutboxEmail, now: dt.datetime) -> tuple[OutboxEmail, uuid.UUID]:
    """Claim ``row`` for one attempt (inside the claiming transaction)."""
    token = uuid.uuid4()
    row.claim_token = token
    row.attempts += 1
    row.next_attempt_at = now + LEASE
    row.save(update_fields=["claim_token", "attempts", "next_attempt_at"])
    return row, token


def _smtp_key(org: Organization | None) -> tuple[Any, ...]:
    if org is None or not org.smtp_host:
        return ("default",)
    port = org.smtp_port or (587 if org.smtp_starttls else 25)
    return (org.smtp_host, port, org.smtp_user, org.smtp_password, org.smtp_starttls)


def _organization(row: OutboxEmail) -> Organization | None:
    return Organization.objects.filter(pk=row.organization_id).first()


def _connection(row: OutboxEmail, connections: Connections) -> Any:
    """One open connection per SMTP server for the whole run: the organization's own server
    when it configured one, else the global one (settings EMAIL_*). The backend class stays
    settings.EMAIL_BACKEND, so a test or staging backend never sends for real."""
    key = _smtp_key(_organization(row))
    connection = connections.get(key)
    if connection is None:
        if key == ("default",):
            connection = get_connection(fail_silently=False)
        else:
            host, port, user, password, starttls = key
            connection = get_connection(
                fail_silently=False,
                host=host,
                port=port,
                username=user,
                password=password,
                use_tls=starttls,
                use_ssl=False,
                timeout=settings.EMAIL_TIMEOUT,
            )
        connection.open()
        connections[key] = connection
    return connection


def _drop_connection(row: OutboxEmail, connections: Connections) -> None:
    """After an error the connection may be half-dead: close it, the next row reconnects."""
    connection = connections.pop(_smtp_key(_organization(row)), None)
    if connection is not None:
        try:
            connection.close()
        except Exception:
            log.debug("closing an SMTP connection failed", exc_info=True)


def _attachments(row: OutboxEmail) -> list[Attachment]:
    if not row.attachment_ids:
        return []
    if _attachment_loader is None:
        # Sending without the invoice would be worse than sending late.
        raise RuntimeError("no attachment loader is registered (import facturo.invoicing.sending)")
    return _attachment_loader(row.organization_id, list(row.attachment_ids))


def _send(row: OutboxEmail, connections: Connections) -> None:
    message = EmailMessage(
        subject=row.subject,
        body=row.body,
        from_email=row.from_email,
        to=list(row.to),
        cc=list(row.cc),
        reply_to=list(row.reply_to),
        headers={"Message-ID": row.message_id},
    )
    for attachment in _attachments(row):
        message.attach(attachment.filename, attachment.content, attachment.mimetype)
    message.connection = _connection(row, connections)
    if message.send(fail_silently=False) != 1:
        raise RuntimeError("the mail backend accepted no message")


def _mark_sent(row: OutboxEmail, token: uuid.UUID, now: dt.datetime) -> None:
    with atomic():
        marked = OutboxEmail.objects.filter(
            pk=row.pk, claim_token=token, status=OutboxStatus.PENDING
        ).update(status=OutboxStatus.SENT, sent_at=now, claim_token=None, last_error="")
        if marked:
            details = {
                "to": row.to,
                "cc": row.cc,
                "subject": row.subject,
                "message_id": row.message_id,
                "attempts": row.attempts,
            }
            audit.record(row.organization_id, audit.SYSTEM, "email.sent", row, after=details)
        else:
            # Our lease ran out while sending and another worker took the row over: it will
            # mark it. The e-mail may go out twice, with the same Message-ID.
            log.warning("e-mail %s was sent after its claim expired", row.id)


def _mark_failure(row: OutboxEmail, token: uuid.UUID, exc: Exception, now: dt.datetime) -> bool:
    """Record the error; True when the row is given up (failed), False when rescheduled."""
    error = f"{type(exc).__name__}: {exc}"[:2000]
    give_up = row.attempts >= MAX_ATTEMPTS
    changes: dict[str, Any] = {"claim_token": None, "last_error": error}
    if give_up:
        changes["status"] = OutboxStatus.FAILED
    else:
        changes["next_attempt_at"] = now + backoff(row.attempts)
    with atomic():
        marked = OutboxEmail.objects.filter(
            pk=row.pk, claim_token=token, status=OutboxStatus.PENDING
        ).update(**changes)
        if marked and give_up:
            details = {"to": row.to, "attempts": row.attempts, "error": error}
            audit.record(row.organization_id, audit.SYSTEM, "email.failed", row, after=details)
    return give_up
