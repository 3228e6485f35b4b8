"""Billing runs that overlap, repeat or die: every due period is invoiced exactly once.

- two runs started at once for the same date (threads, each with its own connection):
  together they bill each period once, and a later run creates nothing;
- fault injection on PostgreSQL: a worker *process* billing a few hundred subscriptions is
  killed with SIGKILL at random points, several times, then re-run to the end: exactly one
  invoice per (subscription, period), no gap in the numbers, one e-mail per invoice — then
  the outbox is delivered by two concurrent workers to a real SMTP server (aiosmtpd on
  127.0.0.1), which receives each invoice's e-mail exactly once.
  (The issue's 2,000 subscriptions × 4 workers × 20 kills is ``test_kill_and_rerun_large``,
  run when ``FACTURO_SLOW_TESTS=1``.)
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from facturo.foundation.db import current_alias, using_database
from facturo.invoicing.integrity import verify_series
from facturo.invoicing.models import Invoice, Status
from facturo.notifications import services as notifications
from facturo.notifications.models import OutboxEmail
from facturo.organizations.models import NumberingSeries
from facturo.subscriptions import billing
from facturo.subscriptions import services as subs
from facturo.subscriptions.models import BillingPeriod, PeriodStatus
from tests.factories import make_customer, make_org
from tests.integration.test_dunning_concurrency import Collector, _concurrently
from tests.integration.test_dunning_concurrency import smtp as smtp  # the fixture


def _setup(count: int, months_back: int = 2) -> tuple[Any, dt.date, int]:
    org, ctx = make_org()
    customer = make_customer(ctx)
    today = timezone.localdate()
    start = (today.replace(day=1) - dt.timedelta(days=31 * months_back)).replace(day=1)
    line = {"description": "Maintenance", "unit_price": "49.90", "vat_rate": "20"}
    for _ in range(count):
        subs.create_subscription(ctx, customer.id, start_date=start, lines=[line])
    sub = subs.Subscription.objects.filter(organization=org).first()
    assert sub is not None
    expected = len(subs.schedule_of(sub).due(today)) * count
    return org, today, expected


def _check_exactly_once(org: Any, expected: int) -> None:
    records = BillingPeriod.objects.filter(organization=org)
    assert records.count() == expected
    assert not records.exclude(status=PeriodStatus.ISSUED).exists()
    keys = Counter(records.values_list("subscription_id", "period_start"))
    assert max(keys.values()) == 1
    issued = Invoice.objects.filter(organization=org).exclude(status=Status.DRAFT)
    assert issued.count() == expected
    assert not Invoice.objects.filter(organization=org, status=Status.DRAFT).exists()
    series = NumberingSeries.objects.get(organization=org, kind="invoice", is_default=True)
    assert verify_series(series) is None
    values = sorted(issued.values_list("sequence_value", flat=True))
    assert values == list(range(1, expected + 1)), "gap in the numbering"
    mails = Counter(
        OutboxEmail.objects.filter(organization_id=org.id).values_list("subject_id", flat=True)
    )
    assert len(mails) == expected, "one e-mail per invoice"
    assert max(mails.values()) == 1, "no duplicate e-mail"


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_bill_each_period_once(engine: str) -> None:
    org, today, expected = _setup(30)
    alias = current_alias()
    results: list[billing.Summary] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work() -> None:
        try:
            with using_database(alias):
                barrier.wait()
                results.append(billing.run_billing(today))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sum(r.issued for r in results) == expected
    assert sum(r.failed for r in results) == 0
    _check_exactly_once(org, expected)
    again = billing.run_billing(today)
    assert (again.issued, again.drafts, again.failed) == (0, 0, 0)
    _check_exactly_once(org, expected)


WORKER = """
import datetime as dt, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "facturo.web.settings"
import django
django.setup()
from facturo.subscriptions import billing
billing.CHUNK = 10
summary = billing.run_billing(dt.date.fromisoformat(sys.argv[1]), keep_outcomes=False)
print(summary.line(), flush=True)
"""


def _worker_env() -> dict[str, str]:
    db = settings.DATABASES["postgresql"]
    url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    if db.get("PASSWORD"):
        url = url.replace("@", f":{db['PASSWORD']}@", 1)
    return {**os.environ, "FACTURO_DATABASE_URL": url}


def _delivered_once(smtp: Collector, org: Any, expected: int) -> None:
    """Two delivery workers at once: the SMTP server gets each invoice's e-mail once."""
    reports = _concurrently(2, lambda: notifications.deliver_pending(limit=expected * 2))
    assert sum(r.sent for r in reports) == expected
    assert sum(r.failed + r.retried for r in reports) == 0
    assert notifications.deliver_pending() == notifications.DeliveryReport()
    received: Counter[str] = Counter()
    for envelope in smtp.envelopes:
        for raw in envelope.original_content.split(b"\r\n"):
            if raw.startswith(b"Subject: "):
                found = re.search(r"FA-\d{4}-\d{5}", raw.decode())
                assert found, raw
                received[found.group()] += 1
    numbers = Invoice.objects.filter(organization=org).values_list("number", flat=True)
    assert received == Counter({n: 1 for n in numbers}), "each invoice's e-mail exactly once"


def _kill_and_rerun(smtp: Collector, count: int, workers: int, kills: int, seed: int) -> None:
    org, today, expected = _setup(count)
    rng = random.Random(seed)
    env = _worker_env()
    args = [sys.executable, "-c", WORKER, today.isoformat()]
    for _ in range(kills):
        procs = [
            subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(workers)
        ]
        # django start-up takes ~1 s; kill somewhere in the billing that follows
        deadline = time.monotonic() + 1.0 + rng.random() * 1.5
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            time.sleep(0.02)  # waiting for a real process, not for time to pass in the test
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()
        # a killed worker's lease would delay the others by LEASE: expire it, as time would
        billing.Subscription.objects.filter(organization=org).update(claimed_until=None)
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("failed 0"), done.stdout
    _check_exactly_once(org, expected)
    _delivered_once(smtp, org, expected)


@pytest.mark.django_db(transaction=True)
def test_kill_and_rerun(engine: str, smtp: Collector) -> None:
    if engine != "postgresql":
        pytest.skip("worker processes share a PostgreSQL database (SQLite: one file per test)")
    with using_database("postgresql"):
        _kill_and_rerun(smtp, count=60, workers=2, kills=4, seed=3)


@pytest.mark.skipif(
    os.environ.get("FACTURO_SLOW_TESTS") != "1",
    reason="slow (minutes): FACTURO_SLOW_TESTS=1 runs it",
)
@pytest.mark.django_db(transaction=True)
def test_kill_and_rerun_large(engine: str, smtp: Collector) -> None:
    if engine != "postgresql":
        pytest.skip("PostgreSQL only")
    _kill_and_rerun(smtp, count=2000, workers=4, kills=20, seed=7)
