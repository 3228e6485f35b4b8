"""Benchmark: invoices issued per second, with and without documents, on SQLite and PostgreSQL.

Each (engine, documents) case runs in its own process against a fresh database so that peak
memory (max RSS) belongs to that case. Every invoice has 10 lines; "with documents" means the
full issuing pipeline: number, snapshot, Factur-X XML, PDF/A-3 with the XML embedded and a
SEPA QR code, stored in the database, audit record — one transaction per invoice.

    uv run python bench/issue.py [--n 1000] [--engines sqlite,postgresql]
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


def run_case(engine: str, documents: bool, n: int) -> dict[str, object]:
    import resource

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.factories import make_customer, make_org

    from facturo.catalog import services as catalog
    from facturo.invoicing import services as invoicing

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
    started = time.perf_counter()
    for draft_id in drafts:
        t0 = time.perf_counter()
        invoicing.issue_invoice(ctx, draft_id, render=documents)
        timings.append(time.perf_counter() - t0)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "engine": engine,
        "documents": documents,
        "n": n,
        "median_ms": statistics.median(timings) * 1000,
        "p95_ms": sorted(timings)[int(len(timings) * 0.95)] * 1000,
        "per_second": n / wall,
        "peak_mb": peak_mb,
    }


def spawn(engine: str, documents: bool, n: int) -> dict[str, object]:
    env = dict(os.environ)
    data_dir = tempfile.mkdtemp(prefix="facturo-bench-")
    env["FACTURO_DATA_DIR"] = data_dir
    env["DJANGO_SETTINGS_MODULE"] = "facturo.web.settings"
    if engine == "postgresql":
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS facturo_bench")
            conn.execute("CREATE DATABASE facturo_bench")
        env["FACTURO_DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/facturo_bench"
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--case",
            engine,
            "--documents",
            str(int(documents)),
            "--n",
            str(n),
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
    parser.add_argument("--case")
    parser.add_argument("--documents", type=int, default=1)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, bool(args.documents), args.n)))
        return
    rows = []
    for engine in args.engines.split(","):
        for documents in (True, False):
            n = args.n if documents else args.n * 2
            print(f"… {engine}, documents={documents}, n={n}", file=sys.stderr, flush=True)
            rows.append(spawn(engine, documents, n))
    print(
        f"\nIssuing 10-line invoices — {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, one process, one invoice per transaction\n"
    )
    header = (
        f"{'engine':<11} {'documents':<10} {'n':>6} {'median ms':>10} {'p95 ms':>8} "
        f"{'invoices/s':>11} {'peak MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['engine']:<11} {('yes' if r['documents'] else 'no'):<10} {r['n']:>6} "
            f"{r['median_ms']:>10.1f} {r['p95_ms']:>8.1f} {r['per_second']:>11.1f} "
            f"{r['peak_mb']:>8.0f}"
        )


if __name__ == "__main__":
    main()
