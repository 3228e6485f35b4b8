"""Dunning run throughput on PostgreSQL: N overdue invoices, 1/2 worker processes at once.

    uv run python bench/dunning_run.py --invoices 5000 --workers 1,2

Each case repopulates the database: one real issued invoice per customer (20 customers),
copied to N rows (the run reads invoice rows, allocations and credit notes only), a
one-step e-mail policy, then the workers run ``run_dunning`` for the same date at the same
time. Every reminder goes the whole way (locked group, balance re-read, reminder row,
message, outbox e-mail, audit event). Prints: workers, reminders queued, wall time,
reminders/s, the largest peak RSS of the workers (MiB), the load average at the start.

Uses (and recreates) ``facturo_bench_dunning`` on ``FACTURO_BENCH_POSTGRES``
(default postgresql://postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time

SERVER = os.environ.get("FACTURO_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
DB = "facturo_bench_dunning"
ISSUED = dt.date(2026, 1, 5)
RUN_DAY = dt.date(2026, 2, 11)
WORKER = """
import datetime as dt, os, resource, sys, time
os.environ["DJANGO_SETTINGS_MODULE"] = "facturo.web.settings"
import django
django.setup()
from facturo.dunning import run
t = time.perf_counter()
s = run.run_dunning(dt.date.fromisoformat(sys.argv[1]),
                    now=dt.datetime(2026, 2, 11, 9, 0, tzinfo=dt.UTC))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(s.queued, len(s.skipped), round(time.perf_counter() - t, 2), round(rss, 1), flush=True)
"""


def recreate() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")


def populate(n: int) -> None:
    import uuid

    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "facturo.web.settings"
    django.setup()
    from django.core.management import call_command

    from facturo.accounts.models import User
    from facturo.dunning import services as dunning
    from facturo.invoicing import services as invoicing
    from facturo.invoicing.models import Invoice
    from facturo.organizations import services as orgs

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.factories import ORG_IDENTITY, make_customer

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench@example.com", "pw-1234-x")
    org = orgs.create_organization(user, **ORG_IDENTITY)
    ctx = orgs.context_for(user, org.id)
    text = {
        "subject_fr": "Relance {{ invoice_number }}",
        "body_fr": "{{ invoice_list }}",
        "subject_en": "Reminder {{ invoice_number }}",
        "body_en": "{{ invoice_list }}",
    }
    dunning.create_policy(ctx, name="Bench", steps=[{"name": "Relance", "offset_days": 7, **text}])
    line = [{"description": "Service", "quantity": "1", "unit_price": "100", "vat_rate": "20"}]
    models = []
    for i in range(20):
        c = make_customer(ctx, name=f"Client {i}", email=f"client{i}@example.com")
        draft = invoicing.create_draft(ctx, c.id, line)
        models.append(invoicing.issue_invoice(ctx, draft.id, issue_date=ISSUED, render=False))
    copies = []
    for i in range(len(models), n):
        copy = Invoice.objects.get(pk=models[i % len(models)].pk)
        copy.pk = uuid.uuid4()
        copy.number = f"FA-2026-{i + 1:06d}"
        copy.sequence_value = copy.series_position = i + 1
        copies.append(copy)
    Invoice.objects.bulk_create(copies, batch_size=2000)


def run_case(n: int, workers: int, env: dict[str, str]) -> tuple[object, ...]:
    recreate()
    subprocess.run([sys.executable, __file__, "--populate", str(n)], env=env, check=True)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, RUN_DAY.isoformat()],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    outputs = [p.communicate()[0].split() for p in procs]
    wall = time.perf_counter() - start
    queued = sum(int(o[0]) for o in outputs)
    rss = max(float(o[3]) for o in outputs)
    return workers, queued, wall, queued / wall, rss, load


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=2000)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    env = {**os.environ, "FACTURO_DATABASE_URL": f"{SERVER}/{DB}"}
    os.environ.update(env)
    print(f"{args.invoices} overdue invoices, one e-mail step, PostgreSQL", flush=True)
    print(
        f"{'workers':>8}{'queued':>9}{'wall s':>9}{'rem/s':>9}{'peak RSS MiB':>14}{'load':>7}",
        flush=True,
    )
    for workers in [int(w) for w in args.workers.split(",")]:
        w, queued, wall, rate, rss, load = run_case(args.invoices, workers, env)
        print(f"{w:>8}{queued:>9}{wall:>9.1f}{rate:>9.1f}{rss:>14.1f}{load:>7.1f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--populate":
        populate(int(sys.argv[2]))
    else:
        main()
