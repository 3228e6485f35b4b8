"""Benchmark: invoices issued per second, with and without documents, on SQLite and PostgreSQL.

Each (engine, documents) case runs in its own process against a fresh database so that peak
memory (max RSS) belongs to that case. Every invoice has 10 lines; "with documents" means the
full issuing pipeline: number, snapshot, Factur-X XML, PDF/A-3 with the XML embedded and a
SEPA QR code, stored in the database, audit record — one transaction per invoice, through
``invoicing.services.issue_invoice`` (what the UI, the API and the billing run call), with
every installed app's event handlers (payments, accounting posting …) unless ``--without``.
``--batch N`` issues the drafts N at a time through ``invoicing.services.issue_invoices``
(one transaction, one series lock per batch: what "issue the selected drafts" and the
billing run do, ADR 16); the timing columns are then per transaction.

Besides wall time (``invoices/s``, what the issue's targets are about) the table gives the
CPU time per invoice of this process and, on a local PostgreSQL, of its server backend: on a
machine shared with other work, wall time moves with the load, CPU time much less.
``cpu-bound/s`` = 1000 / (client + server CPU ms): the rate on an otherwise idle machine
(on PostgreSQL, where client and server overlap only through round trips, a lower bound).

    uv run python bench/issue.py [--n 1000] [--engines sqlite,postgresql] [--documents yes,no]
                                 [--without accounting] [--batch 1,50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_ADMIN_URL = os.environ.get("FACTURO_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = os.environ.get("FACTURO_BENCH_PG_DB", "facturo_bench_issue")


def _drop_handlers(apps: list[str]) -> None:
    """Unsubscribe the event handlers of these apps (to measure what they cost)."""
    from facturo.foundation import events

    prefixes = tuple(f"facturo.{a}." for a in apps)
    for event_type, handlers in events._handlers.items():
        events._handlers[event_type] = [
            h for h in handlers if not h.__module__.startswith(prefixes)
        ]


def _backend_cpu_seconds() -> float | None:
    """CPU time used so far by this process's PostgreSQL backend, when it runs here."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_case(
    engine: str, documents: bool, n: int, without: list[str], batch: int = 1
) -> dict[str, object]:
    import resource

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.factories import make_customer, make_org

    from facturo.catalog import services as catalog
    from facturo.invoicing import services as invoicing

    _drop_handlers(without)

    _, ctx = make_org(f"bench-{engine}@example.com")
    customer = make_customer(ctx)
    products = [
        catalog.create_product(
            ctx,
            name=f"Produit {i}",
            unit_price=f"{12 + i * 7}.90",
            vat_rate="5.5" if i == 3 else "20",
        )
        for i in range(10)
    ]
    lines = [{"product_id": p.id, "quantity": str(i % 3 + 1)} for i, p in enumerate(products)]
    drafts = [invoicing.create_draft(ctx, customer.id, lines).id for _ in range(n)]
    # warm-up: templates, fonts and stylesheets load on first use
    warm = invoicing.create_draft(ctx, customer.id, lines)
    invoicing.issue_invoice(ctx, warm.id, render=documents)
    timings = []
    load_before = os.getloadavg()[0]
    server_before = _backend_cpu_seconds()
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, n, batch):
        t0 = time.perf_counter()
        if batch == 1:
            invoicing.issue_invoice(ctx, drafts[start], render=documents)
        else:
            invoicing.issue_invoices(ctx, drafts[start : start + batch], render=documents)
        timings.append(time.perf_counter() - t0)
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - cpu_started
    server_after = _backend_cpu_seconds()
    server_cpu = (
        server_after - server_before
        if server_before is not None and server_after is not None
        else None
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "engine": engine,
        "documents": documents,
        "without": without,
        "n": n,
        "batch": batch,
        "client_cpu_ms": client_cpu / n * 1000,
        "server_cpu_ms": server_cpu / n * 1000 if server_cpu is not None else None,
        "load": (load_before + os.getloadavg()[0]) / 2,
        "median_ms": statistics.median(timings) * 1000,
        "p95_ms": sorted(timings)[int(len(timings) * 0.95)] * 1000,
        "per_second": n / wall,
        "peak_mb": peak_mb,
    }


def spawn(
    engine: str, documents: bool, n: int, without: list[str], batch: int
) -> dict[str, object]:
    env = dict(os.environ)
    data_dir = tempfile.mkdtemp(prefix="facturo-bench-")
    env["FACTURO_DATA_DIR"] = data_dir
    env["DJANGO_SETTINGS_MODULE"] = "facturo.web.settings"
    if engine == "postgresql":
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DB}")
            conn.execute(f"CREATE DATABASE {PG_DB}")
        env["FACTURO_DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DB}"
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--case",
            engine,
            "--documents",
            "yes" if documents else "no",
            "--n",
            str(n),
            "--without",
            ",".join(without),
            "--batch",
            str(batch),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--documents", default="yes,no", help="yes, no or yes,no")
    parser.add_argument("--without", default="", help="apps whose event handlers to drop")
    parser.add_argument("--batch", default="1", help="invoices per transaction, e.g. 1,50")
    parser.add_argument("--case")
    args = parser.parse_args()
    without = [a for a in args.without.split(",") if a]
    if args.case:
        batch = int(args.batch)
        print(json.dumps(run_case(args.case, args.documents == "yes", args.n, without, batch)))
        return
    rows = []
    for engine in args.engines.split(","):
        for documents in (d == "yes" for d in args.documents.split(",")):
            for batch in (int(b) for b in args.batch.split(",")):
                n = args.n if documents else args.n * 2
                print(
                    f"… {engine}, documents={documents}, n={n}, batch={batch}",
                    file=sys.stderr,
                    flush=True,
                )
                rows.append(spawn(engine, documents, n, without, batch))
    handlers = "all apps' event handlers" + (f" but {', '.join(without)}" if without else "")
    print(
        f"\nIssuing 10-line invoices — {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, one process, {handlers}; batch = invoices "
        "per transaction, median and p95 per transaction\n"
    )
    header = (
        f"{'engine':<11} {'documents':<10} {'n':>6} {'batch':>6} {'median ms':>10} {'p95 ms':>8} "
        f"{'invoices/s':>11} {'cpu ms':>7} {'pg cpu ms':>10} {'cpu-bound/s':>12} "
        f"{'peak MB':>8} {'load':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        server = r["server_cpu_ms"]
        cpu = float(r["client_cpu_ms"]) + float(server or 0)  # type: ignore[arg-type]
        print(
            f"{r['engine']:<11} {('yes' if r['documents'] else 'no'):<10} {r['n']:>6} "
            f"{r['batch']:>6} "
            f"{r['median_ms']:>10.1f} {r['p95_ms']:>8.1f} {r['per_second']:>11.1f} "
            f"{r['client_cpu_ms']:>7.2f} "
            f"{(f'{server:.2f}' if server is not None else '-'):>10} "
            f"{1000 / cpu:>12.0f} {r['peak_mb']:>8.0f} {r['load']:>5.1f}"
        )
    print("\nload: 1-minute load average during the case (2 = both cores busy)")


if __name__ == "__main__":
    main()
