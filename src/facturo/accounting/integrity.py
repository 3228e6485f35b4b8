"""``facturo check`` for the ledger: the entries' hash chain (continuous numbers, each hash
over the entry, its lines and the previous hash), the balance of each entry, the chain
head, and the signed year-end summaries."""

from __future__ import annotations

from collections import defaultdict

from facturo.core.chain import GENESIS, link_hash
from facturo.organizations.models import Organization

from . import models as m
from .posting import entry_payload


def verify_ledger(organization: Organization) -> list[str]:
    """Every problem found, as readable sentences (empty: the books are intact)."""
    from .services import closing_summary, sign_summary

    org_id = organization.id
    problems: list[str] = []
    previous = GENESIS
    expected = 1
    by_number: dict[int, str] = {}
    entries = m.Entry.objects.filter(organization_id=org_id).order_by("number")
    batch: list[m.Entry] = []

    def check(batch: list[m.Entry]) -> None:
        nonlocal previous, expected
        lines: dict[object, list[m.EntryLine]] = defaultdict(list)
        for x in m.EntryLine.objects.filter(entry_id__in=[e.id for e in batch]).order_by(
            "entry_id", "position"
        ):
            lines[x.entry_id].append(x)
        for e in batch:
            where = f"entry {e.number} ({e.journal_code} {e.piece_ref})"
            if e.number != expected:
                problems.append(f"{where}: expected number {expected}, an entry is missing")
                expected = e.number
            if e.previous_hash != previous:
                problems.append(f"{where}: previous hash does not match the chain")
            if link_hash(e.previous_hash, entry_payload(e, lines[e.id])) != e.hash:
                problems.append(f"{where}: content does not match its hash (altered after posting)")
            debit = sum((x.debit for x in lines[e.id]), start=e.total * 0)
            credit = sum((x.credit for x in lines[e.id]), start=e.total * 0)
            if debit != credit or debit != e.total:
                problems.append(f"{where}: does not balance (debit {debit}, credit {credit})")
            by_number[e.number] = e.hash
            previous = e.hash
            expected += 1
            if len(problems) > 50:
                return

    for e in entries.iterator(chunk_size=1000):
        batch.append(e)
        if len(batch) >= 1000:
            check(batch)
            batch = []
    if batch:
        check(batch)
    state = m.LedgerState.objects.filter(organization_id=org_id).first()
    if state is not None and state.last_number != expected - 1:
        problems.append(
            f"ledger says {state.last_number} entries were posted, {expected - 1} found"
        )
    elif state is not None and state.last_number and state.last_hash != previous:
        problems.append("the last entries of the chain were removed or replaced")
    for year in m.FiscalYear.objects.filter(organization_id=org_id, closed_at__isnull=False):
        summary = year.closing_summary or {}
        if sign_summary(summary) != year.closing_signature:
            problems.append(f"fiscal year {year}: closing summary altered (bad signature)")
            continue
        last = summary.get("last_number") or 0
        if last and by_number.get(last) != summary.get("last_hash"):
            problems.append(f"fiscal year {year}: the closing hash is no longer in the chain")
        if closing_summary(org_id, year)["accounts"] != summary.get("accounts"):
            problems.append(f"fiscal year {year}: totals differ from the closing summary")
    return [f"{organization.name}: {p}" for p in problems]
