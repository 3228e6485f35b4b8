"""Sending invoices through the e-mail outbox, against SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connections
from django.utils import timezone

from facturo.audit.models import AuditEvent
from facturo.core.errors import BusinessError, ConflictError, PermissionDenied
from facturo.documents import services as documents
from facturo.foundation.db import current_alias, using_database
from facturo.invoicing import sending
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from facturo.notifications import services as notifications
from facturo.notifications.models import OutboxEmail, OutboxStatus
from facturo.organizations.context import Ctx
from facturo.organizations.models import Organization, Role
from tests.factories import lines, make_customer, make_org

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
SMTP = "django.core.mail.backends.smtp.EmailBackend"


@pytest.fixture(autouse=True)
def delivery_requests(settings: Any) -> Iterator[list[int]]:
    """No real enqueue from these tests (the trigger only counts), the locmem backend, and
    the plug-ins restored afterwards."""
    calls: list[int] = []
    previous = (notifications._delivery_trigger, notifications._attachment_loader)
    notifications.set_delivery_trigger(lambda: calls.append(1))
    notifications.set_attachment_loader(sending.load_documents)
    settings.EMAIL_BACKEND = LOCMEM
    mail.outbox = []
    yield calls
    notifications.set_delivery_trigger(previous[0])
    notifications.set_attachment_loader(previous[1])


def _issued(ctx: Ctx, n: int = 3, **customer: Any) -> Invoice:
    c = make_customer(ctx, **customer)
    return invoicing.issue_invoice(
        ctx, invoicing.create_draft(ctx, c.id, lines(n)).id, render=False
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_send_writes_one_email_marks_sent_and_audits(engine: str) -> None:
    org, ctx = make_org()
    invoice = _issued(ctx)
    email = sending.send_invoice(ctx, invoice.id)
    assert OutboxEmail.objects.count() == 1
    assert email.status == OutboxStatus.PENDING
    assert email.to == ["compta@boulangerie-martin.example"]
    assert email.cc == []
    assert email.subject_id == invoice.id
    assert email.organization_id == org.id
    assert email.from_email == "Atelier Lumière <facturo@localhost>"
    assert email.reply_to == ["facturation@atelier-lumiere.example"]
    assert email.attachment_ids == []  # rendered without PDF here
    sent = Invoice.objects.get(pk=invoice.id)
    assert sent.status == Status.SENT
    assert sent.sent_at is not None
    event = AuditEvent.objects.get(organization_id=org.id, action="invoice.sent")
    assert event.object_id == str(invoice.id)
    assert event.after is not None
    assert event.after["outbox_email_id"] == str(email.id)

    # Retrying the same request writes nothing; a resend is a new e-mail.
    again = sending.send_invoice(ctx, invoice.id, request_key="click-1")
    assert sending.send_invoice(ctx, invoice.id, request_key="click-1").id == again.id
    assert again.id != email.id
    assert OutboxEmail.objects.count() == 2
    with pytest.raises(ConflictError) as err:
        sending.send_invoice(ctx, invoice.id, to=["other@example.com"], request_key="click-1")
    assert err.value.code == "invoice.send_key_reused"
    assert AuditEvent.objects.filter(action="invoice.sent").count() == 2


def test_send_requests_delivery_after_commit_only(
    engine: str, delivery_requests: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    _, ctx = make_org()
    invoice = _issued(ctx)
    with django_capture_on_commit_callbacks(using=current_alias(), execute=True) as callbacks:
        sending.send_invoice(ctx, invoice.id)
        assert delivery_requests == []
    assert len(callbacks) == 1
    assert delivery_requests == [1]


def test_drafts_missing_recipients_and_roles_are_refused(engine: str) -> None:
    org, ctx = make_org()
    customer = make_customer(ctx)
    draft = invoicing.create_draft(ctx, customer.id, lines(1))
    with pytest.raises(BusinessError) as err:
        sending.send_invoice(ctx, draft.id)
    assert err.value.code == "invoice.not_issued"

    no_email = _issued(ctx, name="Client Sans Adresse", email="")
    with pytest.raises(BusinessError) as err:
        sending.send_invoice(ctx, no_email.id)
    assert err.value.code == "invoice.no_recipient"
    assert err.value.field == "to"
    assert "Client Sans Adresse" in err.value.message
    assert "customer's page" in err.value.message
    with pytest.raises(BusinessError) as err:
        sending.send_invoice(ctx, no_email.id, to=["not an address"])
    assert err.value.code == "invoice.invalid_recipient"

    reader = Ctx(org, Role.READ_ONLY, ctx.actor)
    with pytest.raises(PermissionDenied):
        sending.send_invoice(reader, no_email.id, to=["a@example.com"])
    assert OutboxEmail.objects.count() == 0
    assert Invoice.objects.get(pk=no_email.id).status == Status.ISSUED
    assert Invoice.objects.get(pk=draft.id).status == Status.DRAFT


def test_recipients_default_to_customer_addresses_and_accounting_copy(engine: str) -> None:
    org, ctx = make_org()
    Organization.objects.filter(pk=org.pk).update(accounting_copy_email="archive@atelier.example")
    invoice = _issued(
        ctx,
        cc_emails="boss@boulangerie.example, Compta@boulangerie-martin.example",
        accounting_email="cabinet@expert.example",
    )
    email = sending.send_invoice(ctx, invoice.id)
    assert email.to == ["compta@boulangerie-martin.example"]
    assert email.cc == ["boss@boulangerie.example", "cabinet@expert.example",
                        "archive@atelier.example"]  # fmt: skip
    explicit = sending.send_invoice(ctx, invoice.id, to=["ceo@boulangerie.example"], cc=[])
    assert explicit.to == ["ceo@boulangerie.example"]
    assert explicit.cc == ["archive@atelier.example"]
    # Without a main address, the accounting address becomes the recipient.
    promoted = _issued(ctx, name="Sans e-mail", email="", accounting_email="ap@client.example")
    assert sending.send_invoice(ctx, promoted.id).to == ["ap@client.example"]


def test_subject_and_body_in_the_customers_language(engine: str) -> None:
    _, ctx = make_org()
    fr = _issued(ctx)
    email = sending.send_invoice(ctx, fr.id)
    assert email.subject == f"Facture {fr.number} – Atelier Lumière"
    assert email.body.startswith("Bonjour,")
    assert f"facture n° {fr.number}" in email.body
    assert "729,53\xa0€ TTC" in email.body
    assert "Date d'échéance :" in email.body
    assert "IBAN : FR76 3000 6000 0112 3456 7890 189" in email.body
    assert f"Référence à indiquer : {fr.snapshot['payment']['remittance']}" in email.body
    assert fr.snapshot["payment"]["remittance"].startswith("RF")
    assert "ci-joint" not in email.body  # no PDF: the text does not promise one
    assert email.body.rstrip().endswith("Atelier Lumière")

    # Plain text: nothing is HTML-escaped.
    Organization.objects.filter(pk=ctx.organization.pk).update(name="Lumière, Fils & Cie")
    en = _issued(ctx, 1, name="Smith & Sons Ltd", language="en", email="ap@smith.example")
    email = sending.send_invoice(ctx, en.id)
    assert email.subject == f"Invoice {en.number} – Lumière, Fils & Cie"
    assert email.from_email == '"Lumière, Fils & Cie" <facturo@localhost>'
    assert email.body.startswith("Hello,")
    assert email.body.rstrip().endswith("Lumière, Fils & Cie")
    assert "€119.99 including VAT" in email.body
    assert "Due date:" in email.body

    note = invoicing.create_credit_note(ctx, fr.id, reason="Erreur de quantité", issue=True,
                                        render=False)  # fmt: skip
    email = sending.send_invoice(ctx, note.id)
    assert email.subject == f"Avoir {note.number} – Lumière, Fils & Cie"
    assert f"notre avoir n° {note.number}" in email.body
    assert f"notre facture n° {fr.number}" in email.body
    assert "Motif : Erreur de quantité" in email.body
    assert "IBAN" not in email.body


def test_delivery_attaches_the_stored_pdf_with_the_message_id(engine: str) -> None:
    org, ctx = make_org()
    invoice = _issued(ctx)
    assert invoice.number
    documents.store(org.id, invoice.id, invoice.number, b"%PDF-1.7 fake", b"<xml/>")
    email = sending.send_invoice(ctx, invoice.id)
    assert len(email.attachment_ids) == 1
    assert "Veuillez trouver ci-joint" in email.body

    report = notifications.deliver_pending()
    assert report == notifications.DeliveryReport(sent=1, failed=0, retried=0)
    [message] = mail.outbox
    assert message.extra_headers["Message-ID"] == email.message_id
    assert message.message()["Message-ID"] == email.message_id
    assert message.to == email.to
    assert message.subject == email.subject
    assert message.reply_to == ["facturation@atelier-lumiere.example"]
    assert message.attachments == [(f"{invoice.number}.pdf", b"%PDF-1.7 fake", "application/pdf")]
    row = OutboxEmail.objects.get(pk=email.pk)
    assert row.status == OutboxStatus.SENT
    assert row.sent_at is not None
    assert row.attempts == 1
    assert row.claim_token is None
    assert AuditEvent.objects.filter(action="email.sent", object_id=str(email.id)).count() == 1
    # Nothing left: a second run sends nothing.
    assert notifications.deliver_pending() == notifications.DeliveryReport()
    assert len(mail.outbox) == 1


def test_a_missing_attachment_is_retried_not_sent_without_it(engine: str) -> None:
    _, ctx = make_org()
    email = sending.send_invoice(ctx, _issued(ctx).id)
    OutboxEmail.objects.filter(pk=email.pk).update(attachment_ids=[str(email.id)])
    assert notifications.deliver_pending().retried == 1
    assert mail.outbox == []
    assert "stored document" in OutboxEmail.objects.get(pk=email.pk).last_error


def test_refused_connection_is_retried_with_backoff_then_failed(engine: str, settings: Any) -> None:
    settings.EMAIL_BACKEND = SMTP
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _closed_port()
    settings.EMAIL_TIMEOUT = 5
    _, ctx = make_org()
    invoice = _issued(ctx)
    email = sending.send_invoice(ctx, invoice.id)
    now = timezone.now() + dt.timedelta(seconds=1)
    expected_delays = [1, 5, 25, 125, 625, 1440, 1440]  # minutes, capped at a day
    for attempt, delay in enumerate(expected_delays, start=1):
        assert notifications.deliver_pending(now=now) == notifications.DeliveryReport(retried=1)
        row = OutboxEmail.objects.get(pk=email.pk)
        assert row.attempts == attempt
        assert row.status == OutboxStatus.PENDING
        assert row.next_attempt_at == now + dt.timedelta(minutes=delay)
        assert "Connection refused" in row.last_error or "ConnectionRefused" in row.last_error
        # Not due before its time.
        assert notifications.deliver_pending(now=row.next_attempt_at - dt.timedelta(seconds=1)) \
            == notifications.DeliveryReport()  # fmt: skip
        now = row.next_attempt_at
    assert notifications.deliver_pending(now=now) == notifications.DeliveryReport(failed=1)
    row = OutboxEmail.objects.get(pk=email.pk)
    assert row.status == OutboxStatus.FAILED
    assert row.attempts == notifications.MAX_ATTEMPTS
    assert AuditEvent.objects.filter(action="email.failed", object_id=str(email.id)).exists()
    assert notifications.deliver_pending(now=now + dt.timedelta(days=30)) \
        == notifications.DeliveryReport()  # fmt: skip
    assert Invoice.objects.get(pk=invoice.id).status == Status.SENT


def test_crash_between_send_and_mark_resends_with_the_same_message_id(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ctx = make_org()
    email = sending.send_invoice(ctx, _issued(ctx).id)

    class Crash(BaseException):
        pass

    def crash(*args: Any) -> None:
        raise Crash

    monkeypatch.setattr(notifications, "_mark_sent", crash)
    now = timezone.now() + dt.timedelta(seconds=1)
    with pytest.raises(Crash):
        notifications.deliver_pending(now=now)
    monkeypatch.undo()
    assert len(mail.outbox) == 1
    # Claimed: another worker leaves it alone until the lease ends…
    assert notifications.deliver_pending(now=now + dt.timedelta(minutes=1)).sent == 0
    # …then it goes out again, recognisably the same e-mail.
    later = now + notifications.LEASE
    assert notifications.deliver_pending(now=later).sent == 1
    assert [m.extra_headers["Message-ID"] for m in mail.outbox] == [email.message_id] * 2
    row = OutboxEmail.objects.get(pk=email.pk)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)


class SlowRecordingBackend(BaseEmailBackend):
    """Takes a little time per message, so that concurrent workers really overlap."""

    sent: list[tuple[str, str]] = []
    lock = threading.Lock()

    def send_messages(self, email_messages: Any) -> int:
        for message in email_messages:
            time.sleep(0.02)
            with self.lock:
                self.sent.append(
                    (threading.current_thread().name, message.extra_headers["Message-ID"])
                )
        return len(email_messages)


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_send_each_email_once(engine: str, settings: Any) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.SlowRecordingBackend"
    SlowRecordingBackend.sent = []
    _, ctx = make_org()
    invoice = _issued(ctx)
    emails = [sending.send_invoice(ctx, invoice.id) for _ in range(16)]
    alias = current_alias()
    barrier = threading.Barrier(2)
    reports: dict[str, notifications.DeliveryReport] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with using_database(alias):
                barrier.wait(timeout=10)
                reports[name] = notifications.deliver_pending()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,), name=n) for n in ("w1", "w2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    ids = [message_id for _, message_id in SlowRecordingBackend.sent]
    assert sorted(ids) == sorted(e.message_id for e in emails)  # each once, none missing
    assert reports["w1"].sent + reports["w2"].sent == 16
    assert {name for name, _ in SlowRecordingBackend.sent} == {"w1", "w2"}  # really concurrent
    assert OutboxEmail.objects.filter(status=OutboxStatus.SENT).count() == 16


def test_huey_tasks_deliver_and_the_flush_runs_every_minute(engine: str) -> None:
    from huey.contrib.djhuey import HUEY

    from facturo.jobs import tasks

    _, ctx = make_org()
    sending.send_invoice(ctx, _issued(ctx).id)
    assert tasks.flush_outbox.s().validate_datetime(dt.datetime(2026, 1, 1, 3, 17))  # noqa: DTZ001
    previous = HUEY.immediate
    HUEY.immediate = True
    try:
        tasks.deliver_outbox()
    finally:
        HUEY.immediate = previous
    assert len(mail.outbox) == 1
    sending.send_invoice(ctx, _issued(ctx).id)
    tasks.flush_outbox.call_local()
    assert len(mail.outbox) == 2


def test_an_email_whose_sending_always_kills_the_worker_is_given_up(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ctx = make_org()
    email = sending.send_invoice(ctx, _issued(ctx).id)

    class Crash(BaseException):
        pass

    def crash(*args: Any) -> None:
        raise Crash

    monkeypatch.setattr(notifications, "_mark_sent", crash)
    now = timezone.now() + dt.timedelta(seconds=1)
    for attempt in range(notifications.MAX_ATTEMPTS):
        with pytest.raises(Crash):
            notifications.deliver_pending(now=now + attempt * notifications.LEASE)
    monkeypatch.undo()
    sent_before = len(mail.outbox)
    report = notifications.deliver_pending(
        now=now + notifications.MAX_ATTEMPTS * notifications.LEASE
    )
    assert report.sent == 0
    assert len(mail.outbox) == sent_before
    row = OutboxEmail.objects.get(pk=email.pk)
    assert row.status == OutboxStatus.FAILED
    assert row.attempts == notifications.MAX_ATTEMPTS
    assert "stopped while sending" in row.last_error
