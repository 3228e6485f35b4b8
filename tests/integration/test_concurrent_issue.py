"""Concurrent issuing: numbers stay gapless, unique and in date order under contention.

Each thread has its own database connection; the lock on the series row (PostgreSQL
``SELECT … FOR UPDATE``, SQLite ``BEGIN IMMEDIATE``) is what serialises allocation.
Documents are not rendered here (bench/issue.py measures that); numbering is the subject.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connections, transaction

from facturo.foundation.db import current_alias, using_database
from facturo.invoicing import services as invoicing
from facturo.invoicing.integrity import verify_series
from facturo.invoicing.models import Invoice, Status
from facturo.organizations.models import NumberingSeries
from tests.factories import lines, make_customer, make_org

THREADS = 8
INVOICES = {"sqlite": 120, "postgresql": 520}


class Rollback(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_concurrent_issue_is_gapless(engine: str) -> None:
    org, ctx = make_org()
    customer = make_customer(ctx)
    count = INVOICES[engine]
    drafts = [invoicing.create_draft(ctx, customer.id, lines(2)).id for _ in range(count)]
    alias = current_alias()
    errors: list[BaseException] = []
    rolled_back: list[object] = []
    start = threading.Barrier(THREADS)

    def work(my_drafts: list[object], thread_no: int) -> None:
        try:
            with using_database(alias):
                start.wait()
                for i, draft_id in enumerate(my_drafts):
                    if i % 25 == 7 and thread_no % 2 == 0:
                        # An issue that fails after allocating its number must give it back.
                        try:
                            with transaction.atomic(using=alias):
                                invoicing.issue_invoice(ctx, draft_id, render=False)
                                raise Rollback
                        except Rollback:
                            rolled_back.append(draft_id)
                    invoicing.issue_invoice(ctx, draft_id, render=False)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(drafts[i::THREADS], i)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert rolled_back, "the rollback path was exercised"

    issued = list(
        Invoice.objects.filter(organization=org)
        .exclude(status=Status.DRAFT)
        .order_by("series_position")
    )
    assert len(issued) == count
    numbers = [inv.number for inv in issued]
    values = [inv.sequence_value for inv in issued]
    assert not [n for n, c in Counter(numbers).items() if c > 1], "duplicate numbers"
    assert values == list(range(1, count + 1)), "gap or disorder in the sequence"
    dates = [inv.issue_date for inv in issued]
    assert dates == sorted(dates), "numbers must follow issue dates"
    series = NumberingSeries.objects.get(organization=org, kind="invoice")
    assert verify_series(series) is None
