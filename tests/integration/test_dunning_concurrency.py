"""The dunning run twice, after a crash, and concurrently: exactly one e-mail per (invoice,
step), counted by a real SMTP server (aiosmtpd on 127.0.0.1).

PostgreSQL: 1,000 overdue invoices; a run that crashes part-way, then two runs started at
the same time (threads, each with its own connection), then a third run; the outbox is then
delivered by two concurrent workers. SQLite (one writer at a time): 150 invoices, the same
sequence without the threads.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import connections

from facturo.dunning import run as dunning_run
from facturo.dunning import services as dunning
from facturo.dunning.models import Reminder
from facturo.foundation.db import current_alias, using_database
from facturo.invoicing import sending
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice
from facturo.notifications import services as notifications
from facturo.notifications.models import OutboxEmail, OutboxStatus
from tests.factories import make_customer, make_org

UTC = dt.UTC
ISSUED = dt.date(2026, 1, 5)  # net 30: due 4 February
RUN_DAY = dt.date(2026, 2, 11)  # +7
NOW = dt.datetime(2026, 2, 11, 9, 0, tzinfo=UTC)  # 10:00 in Paris, a Wednesday


class Collector:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def smtp(settings: Any) -> Iterator[Collector]:
    handler = Collector()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 10
    previous = (notifications._delivery_trigger, notifications._attachment_loader)
    notifications.set_delivery_trigger(None)  # the test delivers
    notifications.set_attachment_loader(sending.load_documents)
    try:
        yield handler
    finally:
        notifications.set_delivery_trigger(previous[0])
        notifications.set_attachment_loader(previous[1])
        controller.stop()


def _overdue(count: int) -> tuple[Any, list[Any]]:
    org, ctx = make_org()
    dunning.create_policy(
        ctx,
        name="Standard",
        steps=[
            {
                "name": "Relance",
                "offset_days": 7,
                "subject_fr": "Relance {{ invoice_number }}",
                "body_fr": "{{ invoice_list }}\nTotal : {{ total_due }}",
                "subject_en": "Reminder {{ invoice_number }}",
                "body_en": "{{ invoice_list }}\nTotal: {{ total_due }}",
            }
        ],
    )
    customers = [
        make_customer(ctx, name=f"Client {i}", email=f"client{i}@example.com") for i in range(20)
    ]
    line = [{"description": "Service", "quantity": "1", "unit_price": "100", "vat_rate": "20"}]
    # One real issued invoice per customer; the others are copies of its row with their own
    # number (issuing 1,000 one by one would take most of the test's time; the dunning run
    # only reads the invoice rows, their allocations and credit notes).
    models = [
        invoicing.issue_invoice(
            ctx,
            invoicing.create_draft(ctx, c.id, line).id,
            issue_date=ISSUED,
            render=False,
        )
        for c in customers
    ]
    copies = []
    for i in range(len(models), count):
        model = models[i % len(models)]
        copy = Invoice.objects.get(pk=model.pk)
        copy.pk = uuid.uuid4()
        copy.number = f"FA-2026-{i + 1:05d}"
        copy.sequence_value = copy.series_position = i + 1
        copies.append(copy)
    Invoice.objects.bulk_create(copies, batch_size=500)
    numbers = list(Invoice.objects.filter(organization=org).values_list("number", flat=True))
    assert len(numbers) == count
    return org, numbers


def _crash_part_way(monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    """A run that dies after ``after`` messages (the process is gone: nothing after it)."""
    original = notifications.queue_email
    calls = {"n": 0}

    def queue_email(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > after:
            raise RuntimeError("killed")
        return original(**kwargs)

    monkeypatch.setattr(notifications, "queue_email", queue_email)
    with pytest.raises(RuntimeError, match="killed"):
        dunning_run.run_dunning(RUN_DAY, now=NOW)
    monkeypatch.setattr(notifications, "queue_email", original)


def _concurrently(count: int, work: Any) -> list[Any]:
    alias = current_alias()
    results: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def target() -> None:
        try:
            with using_database(alias):
                barrier.wait()
                results.append(work())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_runs_twice_after_a_crash_and_concurrently_send_one_email_per_invoice_and_step(
    engine: str, smtp: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 1000 if engine == "postgresql" else 150
    started = time.monotonic()
    _org, numbers = _overdue(count)
    setup = time.monotonic() - started

    _crash_part_way(monkeypatch, after=count // 3)
    assert Reminder.objects.count() == count // 3  # the groups written before the crash

    if engine == "postgresql":
        summaries = _concurrently(2, lambda: dunning_run.run_dunning(RUN_DAY, now=NOW))
    else:
        summaries = [dunning_run.run_dunning(RUN_DAY, now=NOW) for _ in range(2)]
    assert sum(s.queued for s in summaries) == count - count // 3
    assert dunning_run.run_dunning(RUN_DAY, now=NOW).line() == "queued 0, skipped 0"

    reminders = Counter(Reminder.objects.values_list("invoice_id", "step_id"))
    assert len(reminders) == count
    assert max(reminders.values()) == 1
    assert OutboxEmail.objects.filter(idempotency_key__startswith="dunning:").count() == count

    def deliver() -> notifications.DeliveryReport:
        return notifications.deliver_pending(limit=count * 2, now=NOW)

    reports = _concurrently(2, deliver) if engine == "postgresql" else [deliver(), deliver()]
    assert sum(r.sent for r in reports) == count
    assert sum(r.failed + r.retried for r in reports) == 0
    assert deliver() == notifications.DeliveryReport()  # a late flush sends nothing more

    subjects = Counter()
    for envelope in smtp.envelopes:
        for raw in envelope.original_content.split(b"\r\n"):
            if raw.startswith(b"Subject: "):
                subjects[raw.removeprefix(b"Subject: ").decode()] += 1
    assert len(smtp.envelopes) == count
    assert subjects == Counter(f"Relance {n}" for n in numbers)  # each invoice exactly once
    assert not OutboxEmail.objects.exclude(status=OutboxStatus.SENT).exists()
    total = time.monotonic() - started
    print(f"\n{engine}: {count} invoices, setup {setup:.1f}s, total {total:.1f}s")
