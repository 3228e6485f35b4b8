"""Reconciliation benchmark (issue 6): 100,000 bank lines in one CAMT.053 file against
100,000 open invoices — parse + match, with precision and recall.

    uv run python bench/reconcile.py [N] [--db]

With ``--db`` the same file is also imported through the banking app (parse, fingerprints,
duplicate checks, bulk insert) into a fresh SQLite database in a temporary data directory,
then imported a second time (every line a duplicate).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.test_matching_quality import generate, score
from tests.unit.test_matching_rapidfuzz import fuzzy

from facturo.core.matching import AUTO_CONFIRM, MatchSettings, match_lines
from facturo.formats.statements import parse_camt


def camt(cases: list) -> bytes:  # type: ignore[type-arg]
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:'
        'xsd:camt.053.001.08"><BkToCstmrStmt><GrpHdr><MsgId>B</MsgId></GrpHdr><Stmt><Id>S</Id>'
        "<Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id><Ccy>EUR</Ccy></Acct>"
    ]
    for c in cases:
        x = c.line
        ind = "CRDT" if x.amount > 0 else "DBIT"
        role = "Dbtr" if x.amount > 0 else "Cdtr"
        strd = (
            f"<Strd><CdtrRefInf><Ref>{x.remittance_structured}</Ref></CdtrRefInf></Strd>"
            if x.remittance_structured
            else ""
        )
        parts.append(
            f'<Ntry><Amt Ccy="EUR">{abs(x.amount)}</Amt><CdtDbtInd>{ind}</CdtDbtInd>'
            f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{x.booking_date}</Dt></BookgDt>"
            f"<ValDt><Dt>{x.booking_date}</Dt></ValDt><AcctSvcrRef>{x.bank_reference}</AcctSvcrRef>"
            f"<NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>"
            f"<RltdPties><{role}><Pty><Nm>{escape(x.counterparty_name)}</Nm></Pty></{role}>"
            f"<{role}Acct><Id><IBAN>{x.counterparty_iban}</IBAN></Id></{role}Acct></RltdPties>"
            f"<RmtInf><Ustrd>{escape(x.remittance_unstructured)}</Ustrd>{strd}</RmtInf>"
            "</TxDtls></NtryDtls></Ntry>"
        )
    parts.append("</Stmt></BkToCstmrStmt></Document>")
    return "".join(parts).encode()


def db_import(data: bytes) -> list[tuple[str, int, float, float, float]]:
    """Import through ``banking.services.import_statement`` into a throw-away SQLite."""
    import tempfile

    tmp = tempfile.mkdtemp(prefix="facturo-bench-")
    os.environ["FACTURO_DATA_DIR"] = tmp
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facturo.web.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from tests.factories import make_org

    from facturo.banking import services as banking
    from facturo.banking.models import BankLine

    call_command("migrate", verbosity=0)
    _org, ctx = make_org("bench@example.com")
    banking.create_account(ctx, name="Bench", iban="FR7630006000011234567890189")
    rows = []
    mib = 1024 * 1024
    for label in ("app import (new)", "app import (dup)"):
        c0, t0 = time.process_time(), time.perf_counter()
        result = banking.import_statement(ctx, data, "bench.xml", auto_match=False)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / mib
        rows.append((label, result.new + result.duplicate, wall, cpu, peak))
    assert BankLine.objects.count() == rows[0][1]
    return rows


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100_000
    print(f"load average before: {os.getloadavg()}  (2 cores, shared)")
    invoices, cases = generate(n, n, seed=2024)
    data = camt(cases)
    rows = []
    c0, t0 = time.process_time(), time.perf_counter()
    [stmt] = parse_camt(data, "bench.xml", max_bytes=len(data) + 1)
    c1, t1 = time.process_time(), time.perf_counter()
    peak_parse = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # Names compared with rapidfuzz, as the banking app does (the core's default is difflib).
    proposals = match_lines(stmt.lines, invoices, MatchSettings(similarity=fuzzy))
    c2, t2 = time.process_time(), time.perf_counter()
    peak_match = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert len(stmt.lines) == len(cases)
    figures = score(cases, proposals, AUTO_CONFIRM)
    mib = 1024 * 1024
    rows.append(("parse CAMT.053", len(stmt.lines), t1 - t0, c1 - c0, peak_parse / mib))
    rows.append(("match", len(stmt.lines), t2 - t1, c2 - c1, peak_match / mib))
    rows.append(
        ("parse + match", len(stmt.lines), t2 - t0, c2 - c0, max(peak_parse, peak_match) / mib)
    )
    if "--db" in sys.argv:
        rows.extend(db_import(data))
    print(f"file: {len(data) / mib:.1f} MiB, {len(invoices)} open invoices")
    # CPU seconds (this process) next to wall time: the machine is shared, wall time is
    # inflated by the other processes' load, CPU time much less so.
    head = f"{'step':18} {'n':>8} {'wall s':>8} {'cpu s':>8} {'lines/s':>10} {'peak RSS MiB':>12}"
    print(head)
    for step, count, wall, cpu, peak in rows:
        print(f"{step:18} {count:>8} {wall:>8.2f} {cpu:>8.2f} {count / wall:>10.0f} {peak:>12.0f}")
    print(
        f"precision (auto ≥{AUTO_CONFIRM}) {figures['precision']:.4f} on {figures['auto']:.0f}; "
        f"recall {figures['recall']:.4f} on {figures['matchable']:.0f}"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
