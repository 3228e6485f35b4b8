"""/accounting: journals, accounts, posted entries (read only), the entry an invoice will
produce, mapping rules, reports and exports (a background job, then a download).

Entries are never written through the API: they come from business events (and from the
accountant's pages). Amounts are exact decimals as strings.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from facturo.accounting import exports, selectors, services
from facturo.accounting import models as m
from facturo.core.errors import NotFound, _
from facturo.core.ledger import JournalEntry
from facturo.foundation.db import on_commit
from facturo.organizations.context import Perm

from .auth import ctx_of
from .schemas import DecimalOut, Input, PageMeta, PageParams, plain

router = Router(tags=["accounting"])


def _amount(value: Any) -> str:
    return plain(value, 2) or "0.00"


class JournalOut(Schema):
    code: str
    label: str
    kind: str
    account: str


class AccountOut(Schema):
    number: str
    label: str
    active: bool


class LineOut(Schema):
    account: str
    account_label: str
    auxiliary: str
    auxiliary_label: str
    label: str
    debit: DecimalOut
    credit: DecimalOut
    lettering: str = Field(description="FEC EcritureLet; empty until lettered.")
    lettering_date: dt.date | None = None


class EntryOut(Schema):
    id: uuid.UUID
    number: int = Field(description="Continuous per organization, in validation order.")
    journal: str
    date: dt.date
    label: str
    piece_ref: str
    piece_date: dt.date
    source_kind: str
    source_id: str
    reverses_id: uuid.UUID | None
    total: DecimalOut
    validated_on: dt.date
    hash: str
    lines: list[LineOut]


class EntryPage(PageMeta):
    items: list[EntryOut]


class JournalPage(PageMeta):
    items: list[JournalOut]


class AccountPage(PageMeta):
    items: list[AccountOut]


def _page(rows: Any, params: PageParams, render: Any = None) -> dict[str, Any]:
    count = rows.count() if hasattr(rows, "count") and not isinstance(rows, list) else len(rows)
    items = rows[params.offset : params.offset + params.limit]
    return {
        "count": count,
        "limit": params.limit,
        "offset": params.offset,
        "items": [render(x) for x in items] if render else list(items),
    }


class EntryFilters(PageParams):
    start: dt.date | None = None
    end: dt.date | None = None
    journal: str | None = Field(None, max_length=8)
    account: str | None = Field(None, max_length=20)


def _lines_out(rows: Any) -> list[dict[str, Any]]:
    return [
        {
            "account": x.account,
            "account_label": x.account_label,
            "auxiliary": x.auxiliary,
            "auxiliary_label": x.auxiliary_label,
            "label": x.label,
            "debit": _amount(x.debit),
            "credit": _amount(x.credit),
            "lettering": getattr(x, "lettering", ""),
            "lettering_date": getattr(x, "lettering_date", None),
        }
        for x in rows
    ]


def _entry_out(e: m.Entry) -> dict[str, Any]:
    return {
        "id": e.id,
        "number": e.number,
        "journal": e.journal_code,
        "date": e.date,
        "label": e.label,
        "piece_ref": e.piece_ref,
        "piece_date": e.piece_date,
        "source_kind": e.source_kind,
        "source_id": e.source_id,
        "reverses_id": e.reverses_id,
        "total": _amount(e.total),
        "validated_on": e.validated_on,
        "hash": e.hash,
        "lines": _lines_out(e.lines.all()),
    }


@router.get("/accounting/journals", response=JournalPage, summary="List journals")
def list_journals(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    ctx = ctx_of(request)
    ctx.require(Perm.VIEW)
    return _page(m.Journal.objects.filter(organization=ctx.organization), params)


@router.get("/accounting/accounts", response=AccountPage, summary="List the chart")
def list_accounts(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    ctx = ctx_of(request)
    ctx.require(Perm.VIEW)
    return _page(m.Account.objects.filter(organization=ctx.organization), params)


@router.get("/accounting/entries", response=EntryPage, summary="List posted entries")
def list_entries(request: HttpRequest, filters: Query[EntryFilters]) -> dict[str, Any]:
    ctx = ctx_of(request)
    ctx.require(Perm.VIEW)
    qs = selectors.entries_in(ctx.organization.id, filters.start, filters.end)
    if filters.journal:
        qs = qs.filter(journal_code=filters.journal.upper())
    if filters.account:
        qs = qs.filter(lines__account=filters.account).distinct()
    return _page(qs.prefetch_related("lines"), filters, _entry_out)


@router.get("/accounting/entries/{entry_id}", response=EntryOut, summary="Get an entry")
def get_entry(request: HttpRequest, entry_id: uuid.UUID) -> dict[str, Any]:
    ctx = ctx_of(request)
    ctx.require(Perm.VIEW)
    entry = m.Entry.objects.filter(organization=ctx.organization, pk=entry_id).first()
    if entry is None:
        raise NotFound("accounting.entry_not_found", _("No such entry."))
    return _entry_out(entry)


class PreviewOut(Schema):
    journal: str
    date: dt.date
    label: str
    lines: list[LineOut]


@router.get(
    "/accounting/invoices/{invoice_id}/preview",
    response=PreviewOut | None,
    summary="The entry an invoice (draft or issued) produces with the current rules",
)
def preview(request: HttpRequest, invoice_id: uuid.UUID) -> dict[str, Any] | None:
    entry: JournalEntry | None = services.preview_invoice(ctx_of(request), invoice_id)
    if entry is None:
        return None
    return {
        "journal": entry.journal.code,
        "date": entry.date,
        "label": entry.label,
        "lines": _lines_out(entry.lines),
    }


class RuleIn(Input):
    account: str = Field(max_length=20, examples=["706100"])
    product_code: str = Field("", max_length=50)
    category: str = Field("", max_length=50)
    nature: Literal["", "services", "goods"] = ""
    customer_type: Literal["", "france", "eu", "export"] = ""
    vat_category: str = Field("", max_length=2)
    position: int = Field(0, ge=0, le=10000)


class RuleOut(RuleIn):
    id: int


class RulePage(PageMeta):
    items: list[RuleOut]


@router.get("/accounting/mapping-rules", response=RulePage, summary="List mapping rules")
def list_rules(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    ctx = ctx_of(request)
    ctx.require(Perm.VIEW)
    return _page(m.RevenueRule.objects.filter(organization=ctx.organization), params)


@router.post("/accounting/mapping-rules", response={201: RuleOut},
             summary="Add a mapping rule (the most specific matching rule wins)")  # fmt: skip
def add_rule(request: HttpRequest, payload: RuleIn) -> Status:
    return Status(201, services.add_rule(ctx_of(request), **payload.dict()))


@router.delete("/accounting/mapping-rules/{rule_id}", response={204: None},
               summary="Delete a mapping rule")  # fmt: skip
def delete_rule(request: HttpRequest, rule_id: int) -> Status:
    services.delete_rule(ctx_of(request), rule_id)
    return Status(204, None)


class TrialRowOut(Schema):
    account: str
    label: str
    debit: DecimalOut
    credit: DecimalOut
    balance: DecimalOut


class PeriodParams(PageParams):
    start: dt.date | None = None
    end: dt.date | None = None


class TrialPage(PageMeta):
    items: list[TrialRowOut]


@router.get("/accounting/trial-balance", response=TrialPage, summary="Trial balance")
def trial_balance(request: HttpRequest, period: Query[PeriodParams]) -> dict[str, Any]:
    ctx = ctx_of(request)
    ctx.require(Perm.VIEW)
    rows = [
        {
            "account": r.account,
            "label": r.label,
            "debit": _amount(r.debit),
            "credit": _amount(r.credit),
            "balance": _amount(r.balance),
        }
        for r in selectors.trial_balance(ctx.organization.id, period.start, period.end)
    ]
    return _page(rows, period)


ExportKind = Literal["fec", "journal", "trial_balance", "general_ledger", "aged_balance"]


class ExportIn(Input):
    kind: ExportKind
    year: int | None = Field(None, ge=2000, le=2100, description="FEC: the fiscal year's end.")
    start: dt.date | None = None
    end: dt.date | None = None
    format: Literal["csv", "xlsx", "pdf"] = "csv"
    preset: str = Field("generic", max_length=20, description="Journal CSV preset.")
    encoding: Literal["iso-8859-15", "utf-8"] = "iso-8859-15"
    separator: Literal["tab", "|"] = "tab"
    account: str = Field("", max_length=20)
    columns: list[tuple[str, str]] | None = Field(
        None, max_length=40, description="Journal: [header, field] pairs instead of a preset."
    )


class ExportOut(Schema):
    id: uuid.UUID
    kind: str
    status: str = Field(description="pending, done or failed")
    error: str
    filename: str
    created_at: dt.datetime
    finished_at: dt.datetime | None


def _job_out(job: m.ExportJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "error": job.error,
        "filename": job.filename,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


def _job(request: HttpRequest, job_id: uuid.UUID) -> m.ExportJob:
    ctx = ctx_of(request)
    ctx.require(Perm.EXPORT)
    job = m.ExportJob.objects.filter(organization=ctx.organization, pk=job_id).first()
    if job is None:
        raise NotFound("export.not_found", _("No such export."))
    return job


@router.post("/accounting/exports", response={202: ExportOut},
             summary="Prepare an export in the background (FEC, journal, reports)")  # fmt: skip
def request_export(request: HttpRequest, payload: ExportIn) -> Status:
    from facturo.accounting import tasks

    ctx = ctx_of(request)
    params = payload.dict(exclude={"kind"})
    params = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in params.items()}
    params["separator"] = "|" if payload.separator == "|" else "\t"
    job = exports.request_job(ctx, payload.kind, params)
    on_commit(lambda: tasks.run_export_job(str(ctx.organization.id), str(job.id)))
    return Status(202, _job_out(job))


@router.get("/accounting/exports/{job_id}", response=ExportOut, summary="An export's state")
def get_export(request: HttpRequest, job_id: uuid.UUID) -> dict[str, Any]:
    return _job_out(_job(request, job_id))


_FILE = {"description": "The file", "content": {"application/octet-stream": {}}}


@router.get(
    "/accounting/exports/{job_id}/file",
    summary="Download a finished export",
    response={200: None},
    openapi_extra={"responses": {"200": _FILE}},
)
def download_export(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job(request, job_id)
    if job.status == "pending":  # no worker yet: build it now (idempotent)
        job = exports.run_job(ctx_of(request), job.id)
    if job.status != "done":
        from facturo.core.errors import BusinessError

        raise BusinessError(
            "export.failed",
            _("This export failed: %(error)s"),
            error=job.error or "-",
        )
    response = HttpResponse(bytes(job.content or b""), content_type="application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(True, job.filename)
    return response
