"""Verification of what the law and our conventions promise about issued documents:
numbers without gaps or duplicates, in date order, and an unbroken hash chain per series."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from facturo.core.chain import GENESIS, link_hash
from facturo.documents.models import StoredDocument
from facturo.organizations.models import NumberingSeries, Organization

from .models import Invoice, Status
from .services import chain_payload


@dataclass(frozen=True)
class Problem:
    organization: str
    record: str
    reason: str

    def __str__(self) -> str:
        return f"{self.organization}: {self.record}: {self.reason}"


def verify_series(series: NumberingSeries) -> Problem | None:
    """The first problem in a series (chain order = issue order), or None."""
    org = series.organization.name
    issued = (
        Invoice.objects.filter(series=series)
        .exclude(status=Status.DRAFT)
        .order_by("series_position")
        .only(
            "id",
            "organization_id",
            "number",
            "series_position",
            "snapshot",
            "issue_date",
            "period_key",
            "sequence_value",
            "chain_previous_hash",
            "chain_hash",
        )
    )
    previous_hash = GENESIS
    expected_position = 1
    last_date = None
    next_value: dict[str, int] = {}
    for invoice in issued.iterator(chunk_size=500):
        label = f"{invoice.number} (position {invoice.series_position})"
        if invoice.series_position != expected_position:
            return Problem(
                org,
                label,
                f"expected position {expected_position}: a document is missing or was inserted",
            )
        if invoice.chain_previous_hash != previous_hash:
            return Problem(org, label, "previous hash does not match the chain")
        if link_hash(invoice.chain_previous_hash, chain_payload(invoice)) != invoice.chain_hash:
            return Problem(org, label, "content does not match its hash (altered after issue)")
        expected_value = next_value.get(invoice.period_key, 0) + 1
        if invoice.sequence_value != expected_value:
            return Problem(
                org,
                label,
                f"gap in numbering: expected sequence {expected_value} in "
                f"period '{invoice.period_key}'",
            )
        if last_date and invoice.issue_date and invoice.issue_date < last_date:
            return Problem(org, label, "issue date earlier than the previous document")
        snapshot = invoice.snapshot or {}
        if snapshot.get("number") != invoice.number:
            return Problem(org, label, "number differs from the frozen document")
        next_value[invoice.period_key] = expected_value
        previous_hash = invoice.chain_hash
        expected_position += 1
        last_date = invoice.issue_date
    if series.issued_count != expected_position - 1:
        return Problem(
            org,
            series.name,
            f"series says {series.issued_count} documents were "
            f"issued, {expected_position - 1} found",
        )
    if series.issued_count and series.last_hash != previous_hash:
        return Problem(org, series.name, "the last documents of the chain were removed")
    return None


def verify_stored_documents(organization: Organization) -> Problem | None:
    for doc in StoredDocument.objects.filter(organization_id=organization.id).iterator(
        chunk_size=100
    ):
        if hashlib.sha256(bytes(doc.content)).hexdigest() != doc.sha256:
            return Problem(organization.name, doc.filename, "stored file altered after issue")
    return None


def verify_organization(organization: Organization) -> list[Problem]:
    from facturo.audit.services import verify as verify_audit

    problems = [
        p
        for p in (verify_series(s) for s in organization.series.all().order_by("kind"))
        if p is not None
    ]
    if stored := verify_stored_documents(organization):
        problems.append(stored)
    if broken := verify_audit(organization.id):
        problems.append(Problem(organization.name, broken.record_id, broken.reason))
    return problems
