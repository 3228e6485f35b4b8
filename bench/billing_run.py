"""Billing run throughput on PostgreSQL: N monthly subscriptions, 1/2/4 worker processes.

    uv run python bench/billing_run.py --subscriptions 2000 --workers 1,2,4 --pdf no,yes

The issue's figure is 100,000 subscriptions (``--subscriptions 100000``); each case
repopulates the database, so measure fewer when time is short and say so. Every invoice
goes through the whole pipeline (numbered, taxed, stored, audited, e-mail queued, events);
``--pdf yes`` also renders and stores the PDF/A-3 with its Factur-X XML. The environment
variable ``FACTURO_BENCH_CHUNK`` sets the subscriptions claimed (and billed in one
transaction) at a time, default ``billing.CHUNK`` (50).

Uses (and recreates) the database ``facturo_bench_billing`` on the PostgreSQL server of
``FACTURO_BENCH_POSTGRES`` (default postgresql://postgres@127.0.0.1:5432). Prints per case:
workers, invoices, failed, wall time, invoices/s, the largest peak RSS of the worker
processes (MiB), the load average at the start (the machine may be shared) and the workers'
CPU time per invoice (what the rate would be bounded by on an idle machine, client side).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time

SERVER = os.environ.get("FACTURO_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
DB = "facturo_bench_billing"
WORKER = """
import datetime as dt, os, resource, sys, time
os.environ["DJANGO_SETTINGS_MODULE"] = "facturo.web.settings"
import django
django.setup()
from facturo.subscriptions import billing
billing.CHUNK = int(os.environ.get("FACTURO_BENCH_CHUNK", billing.CHUNK))
t, cpu = time.perf_counter(), time.process_time()
s = billing.run_billing(dt.date.fromisoformat(sys.argv[1]), render=sys.argv[2] == "1",
                        keep_outcomes=False)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(s.issued, s.failed, round(time.perf_counter() - t, 2), round(rss, 1),
      round(time.process_time() - cpu, 3), flush=True)
"""


def recreate() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")


def populate(n: int) -> dt.date:
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "facturo.web.settings"
    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from facturo.accounts.models import User
    from facturo.foundation.ids import uuid7
    from facturo.organizations import services as orgs
    from facturo.subscriptions import services as subs
    from facturo.subscriptions.models import Subscription, SubscriptionLine

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.factories import ORG_IDENTITY, make_customer

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench@example.com", "pw-1234-x")
    org = orgs.create_organization(user, **ORG_IDENTITY)
    ctx = orgs.context_for(user, org.id)
    customer = make_customer(ctx, email="client@example.com")
    today = timezone.localdate()
    template = subs.create_subscription(
        ctx,
        customer.id,
        start_date=today,
        lines=[{"description": "Maintenance", "unit_price": "49.90", "vat_rate": "20"}],
    )
    fields = {
        f.attname: getattr(template, f.attname)
        for f in Subscription._meta.concrete_fields
        if f.attname != "id"
    }
    # one customer per subscription, as in a SaaS (issuing locks the customer's row: a
    # single shared customer would serialise the workers on it)
    from facturo.customers.models import Customer

    base = {
        f.attname: getattr(customer, f.attname)
        for f in Customer._meta.concrete_fields
        if f.attname != "id"
    }
    customers = [Customer(id=uuid7(), **{**base, "name": f"Client {i:06d}"}) for i in range(n - 1)]
    Customer.objects.bulk_create(customers, batch_size=2000)
    rows = [Subscription(id=uuid7(), **{**fields, "customer_id": c.id}) for c in customers]
    Subscription.objects.bulk_create(rows, batch_size=2000)
    line = SubscriptionLine.objects.get()
    SubscriptionLine.objects.bulk_create(
        [
            SubscriptionLine(
                subscription=s,
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
                vat_rate=line.vat_rate,
            )
            for s in rows
        ],
        batch_size=2000,
    )
    return today


def run_case(n: int, workers: int, pdf: bool, env: dict[str, str]) -> tuple[object, ...]:
    recreate()
    out = subprocess.run(
        [sys.executable, __file__, "--populate", str(n)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    today = out.stdout.strip().splitlines()[-1]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, today, "1" if pdf else "0"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    outputs = [p.communicate()[0].split() for p in procs]
    wall = time.perf_counter() - start
    issued = sum(int(o[0]) for o in outputs)
    failed = sum(int(o[1]) for o in outputs)
    rss = max(float(o[3]) for o in outputs)
    cpu_ms = sum(float(o[4]) for o in outputs) / max(issued, 1) * 1000
    return ("with PDF" if pdf else "without PDF", workers, issued, failed, wall, issued / wall,
            rss, load, cpu_ms)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--pdf", default="no", help="no, yes or no,yes")
    args = parser.parse_args()
    env = {**os.environ, "FACTURO_DATABASE_URL": f"{SERVER}/{DB}"}
    os.environ.update(env)
    print(f"{args.subscriptions} active monthly subscriptions, one run, PostgreSQL", flush=True)
    print(
        f"{'documents':<13}{'workers':>8}{'invoices':>10}{'failed':>8}{'wall s':>9}"
        f"{'inv/s':>9}{'peak RSS MiB':>14}{'load':>7}{'client CPU ms/inv':>19}",
        flush=True,
    )
    for pdf in [p.strip() == "yes" for p in args.pdf.split(",")]:
        for workers in [int(w) for w in args.workers.split(",")]:
            what, w, n, f, wall, rate, rss, load, cpu = run_case(
                args.subscriptions, workers, pdf, env
            )
            print(
                f"{what:<13}{w:>8}{n:>10}{f:>8}{wall:>9.1f}{rate:>9.1f}{rss:>14.1f}{load:>7.1f}"
                f"{cpu:>19.1f}",
                flush=True,
            )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--populate":
        print(populate(int(sys.argv[2])).isoformat())
    else:
        main()
