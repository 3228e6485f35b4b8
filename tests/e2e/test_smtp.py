"""Delivering invoice e-mails to a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import email
import email.policy
import importlib.util
import io
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from facturo.documents import services as documents
from facturo.documents.models import StoredDocument
from facturo.invoicing import sending
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice
from facturo.notifications import services as notifications
from facturo.notifications.models import OutboxEmail, OutboxStatus
from facturo.organizations.context import Ctx
from facturo.organizations.models import Organization
from tests.factories import lines, make_customer, make_org

pytestmark = pytest.mark.e2e

# The PDF/A-3 + Factur-X renderer: when present, issue builds the real document.
RENDER = importlib.util.find_spec("facturo.documents.pdf.render") is not None


class Collector:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(e.original_content, policy=email.policy.default)
            for e in self.envelopes
        ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[Collector, int]]:
    handler = Collector()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def _real_smtp_backend(settings: Any) -> Iterator[None]:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_TIMEOUT = 10
    previous = (notifications._delivery_trigger, notifications._attachment_loader)
    notifications.set_delivery_trigger(None)  # delivery is run by the test itself
    notifications.set_attachment_loader(sending.load_documents)
    yield
    notifications.set_delivery_trigger(previous[0])
    notifications.set_attachment_loader(previous[1])


def _issue(ctx: Ctx, **customer: Any) -> Invoice:
    c = make_customer(ctx, **customer)
    invoice = invoicing.issue_invoice(
        ctx, invoicing.create_draft(ctx, c.id, lines(3)).id, render=RENDER
    )
    if not RENDER:  # stand-in until the renderer lands: the attachment path is the same
        assert invoice.number
        documents.store(ctx.organization.id, invoice.id, invoice.number, b"%PDF-1.7", b"<x/>")
    return invoice


def test_invoice_email_arrives_once_with_its_factur_x_pdf(
    engine: str, settings: Any, smtp_server: tuple[Collector, int]
) -> None:
    collector, port = smtp_server
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    org, ctx = make_org()
    Organization.objects.filter(pk=org.pk).update(accounting_copy_email="archive@atelier.example")
    invoice = _issue(ctx, cc_emails="direction@boulangerie-martin.example")
    outbox = sending.send_invoice(ctx, invoice.id)

    report = notifications.deliver_pending()
    assert report == notifications.DeliveryReport(sent=1)
    [envelope] = collector.envelopes
    assert envelope.rcpt_tos == [
        "compta@boulangerie-martin.example",
        "direction@boulangerie-martin.example",
        "archive@atelier.example",
    ]
    [message] = collector.messages()
    assert message["To"] == "compta@boulangerie-martin.example"
    assert message["Cc"] == "direction@boulangerie-martin.example, archive@atelier.example"
    assert message["Subject"] == f"Facture {invoice.number} – Atelier Lumière"
    assert message["From"] == "Atelier Lumière <facturo@localhost>"
    assert message["Reply-To"] == "facturation@atelier-lumiere.example"
    assert message["Message-ID"] == outbox.message_id
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert "Veuillez trouver ci-joint notre facture" in body.get_content()

    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"{invoice.number}.pdf"
    assert attachment.get_content_type() == "application/pdf"
    pdf = attachment.get_content()
    stored = StoredDocument.objects.get(owner_id=invoice.id, content_type=documents.PDF)
    assert pdf == bytes(stored.content)  # byte for byte what was built at issue
    if RENDER:
        from pypdf import PdfReader

        assert "factur-x.xml" in PdfReader(io.BytesIO(pdf)).attachments

    row = OutboxEmail.objects.get(pk=outbox.pk)
    assert row.status == OutboxStatus.SENT
    assert row.sent_at is not None
    # A second flush (or a late duplicate task) sends nothing more.
    assert notifications.deliver_pending() == notifications.DeliveryReport()
    assert len(collector.envelopes) == 1


def test_the_organizations_own_smtp_server_is_used(
    engine: str, settings: Any, smtp_server: tuple[Collector, int]
) -> None:
    collector, port = smtp_server
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _free_port()  # nothing listens
    org, ctx = make_org()
    Organization.objects.filter(pk=org.pk).update(
        smtp_host="127.0.0.1", smtp_port=port, email_from="factures@atelier.example"
    )
    invoice = _issue(ctx, language="en")
    outbox = sending.send_invoice(ctx, invoice.id)
    assert notifications.deliver_pending() == notifications.DeliveryReport(sent=1)
    [message] = collector.messages()
    assert message["From"] == "Atelier Lumière <factures@atelier.example>"
    assert message["Subject"] == f"Invoice {invoice.number} – Atelier Lumière"
    assert message["Message-ID"] == outbox.message_id


def test_server_down_then_up_delivers_exactly_once(
    engine: str, settings: Any, smtp_server: tuple[Collector, int]
) -> None:
    import datetime as dt

    from django.utils import timezone

    collector, port = smtp_server
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _free_port()  # down
    _, ctx = make_org()
    outbox = sending.send_invoice(ctx, _issue(ctx).id)
    assert notifications.deliver_pending() == notifications.DeliveryReport(retried=1)
    settings.EMAIL_PORT = port  # back up
    later = timezone.now() + dt.timedelta(minutes=2)
    assert notifications.deliver_pending(now=later) == notifications.DeliveryReport(sent=1)
    assert notifications.deliver_pending(now=later) == notifications.DeliveryReport()
    [message] = collector.messages()
    assert message["Message-ID"] == outbox.message_id
    assert OutboxEmail.objects.get(pk=outbox.pk).attempts == 2
