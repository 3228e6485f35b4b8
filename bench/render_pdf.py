"""Benchmark: an invoice as PDF/A-3b with its Factur-X XML embedded, step by step.

Every iteration renders a different document (its own number and line descriptions), so
Typst's caches help only as much as they would between two real invoices of one seller.

    uv run python bench/render_pdf.py [--n 200] [--lines 10]

Columns: median and 95th percentile wall time, invoices per second at the median, median
CPU time of this process, peak RSS. Steps (per invoice): the EPC QR code, the view (strings
formatted for the language), Typst compiling tagged and untagged PDF/A-3b, the CII XML
(build_cii, not part of rendering), embedding it (XSD check on), and the whole of what
``documents.services.build`` does with the default settings: render_pdf + build_cii +
embed_facturx.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from facturo.core.document import InvoiceDocument
from facturo.core.samples import sample_invoice
from facturo.documents.pdf import render as r
from facturo.formats.einvoice.cii import build_cii


def documents(n: int, lines: int) -> list[InvoiceDocument]:
    docs = []
    for i in range(n):
        doc = sample_invoice(number=f"FA-2026-{i:05d}", lines=lines)
        varied = tuple(
            dataclasses.replace(line, description=f"{line.description} – lot {i}")
            for line in doc.lines
        )
        docs.append(dataclasses.replace(doc, lines=varied))
    return docs


def measure(items: Sequence[Any], step: Callable[[Any], object]) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds per item (CPU time is less disturbed by other processes on a
    shared machine; Typst runs on the calling thread, so both count the same work)."""
    step(items[-1])  # warm-up (fonts, XSD, first compile)
    wall, cpu = [], []
    for item in items:
        start, start_cpu = time.perf_counter(), time.process_time()
        step(item)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--lines", type=int, default=10)
    args = parser.parse_args()
    docs = documents(args.n, args.lines)
    stamp = datetime.combine(docs[0].issue_date, datetime.min.time(), tzinfo=UTC)

    def typst_inputs(doc: InvoiceDocument) -> dict[str, str]:
        view = r.build_view(doc)
        return {"data": json.dumps(view, ensure_ascii=False), "qr": r.epc_qr_svg(doc)}

    inputs = [typst_inputs(d) for d in docs]
    xmls = [build_cii(d) for d in docs]
    untagged = [r.render_pdf(d, tagged=False) for d in docs]
    tagged = [r.render_pdf(d, tagged=True) for d in docs]
    default = "tagged" if r.DEFAULT_TAGGED else "untagged"

    def build(doc: InvoiceDocument) -> bytes:
        return r.embed_facturx(r.render_pdf(doc), build_cii(doc))

    steps: list[tuple[str, Sequence[Any], Callable[[Any], object]]] = [
        ("EPC QR code (payload, mask, SVG)", docs, r.epc_qr_svg),
        ("view (formatting, JSON)", docs, lambda d: json.dumps(r.build_view(d))),
        ("typst compile, tagged", inputs, lambda i: r._compile(i, stamp, True)),
        ("typst compile, untagged", inputs, lambda i: r._compile(i, stamp, False)),
        ("CII XML (build_cii)", docs, build_cii),
        ("embed XML into tagged PDF", list(zip(tagged, xmls, strict=True)),
         lambda p: r.embed_facturx(*p)),
        ("embed XML into untagged PDF", list(zip(untagged, xmls, strict=True)),
         lambda p: r.embed_facturx(*p)),
        ("render_pdf (view + QR + typst)", docs, r.render_pdf),
        (f"total: render_pdf + build_cii + embed ({default})", docs, build),
    ]  # fmt: skip

    print(f"# {args.n} invoices of {args.lines} lines, Python {platform.python_version()}, "
          f"{platform.machine()}, default PDF: {default}")  # fmt: skip
    print(f"# load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(
        f"{'step':50} {'n':>5} {'median ms':>10} {'p95 ms':>8} {'per s':>8} "
        f"{'cpu ms':>7} {'peak MB':>8}"
    )
    for name, items, step in steps:
        wall, cpu = measure(items, step)
        median = statistics.median(wall)
        p95 = statistics.quantiles(wall, n=20)[-1]
        print(
            f"{name:50} {len(wall):>5} {median:>10.2f} {p95:>8.2f} {1000 / median:>8.1f} "
            f"{statistics.median(cpu):>7.2f} {peak_rss_mb():>8.0f}"
        )
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    sizes = [len(build(d)) for d in docs[:5]]
    print(f"# PDF size with XML: {statistics.mean(sizes) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
