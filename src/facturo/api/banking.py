"""/bank/accounts, /bank/statements (multipart upload), /bank/lines (list, read, matches,
confirm, accept, expense, ignore), /bank/matches/{id}/undo, /bank/match-runs and the
reconciliation report (JSON, CSV, PDF) — thin handlers over ``banking.services``.

Another organization's ids are a 404, as unknown ids."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from django.http import HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from ninja import Field, File, Form, Query, Router, Schema, UploadedFile
from ninja.responses import Status

from facturo.banking import exports, selectors
from facturo.banking import services as banking
from facturo.banking.models import BankAccount, BankLine, BankMatch, StatementImport
from facturo.core.errors import BusinessError, _
from facturo.core.money import round_money

from .auth import ctx_of
from .schemas import DecimalOut, Input, PageMeta, PageParams, decimal_type

router = Router(tags=["bank"])
MAX_UPLOAD = 64 * 1024 * 1024

if TYPE_CHECKING:
    Amount = Decimal
else:
    Amount = decimal_type(3, 10**9, "120.00")


class AccountOut(Schema):
    id: uuid.UUID
    csv_mapping: dict[str, Any]
    name: str
    iban: str
    bic: str
    currency: str
    journal_code: str
    auto_confirm_threshold: int
    write_off_account: str
    write_off_max: DecimalOut
    fee_account: str


class AccountIn(Input):
    name: str = Field(max_length=100)
    iban: str = Field(max_length=42)
    bic: str = Field("", max_length=11)
    currency: str = Field("EUR", min_length=3, max_length=3)
    journal_code: str = Field("BQ1", max_length=10)
    auto_confirm_threshold: int = Field(90, ge=50, le=101)
    write_off_account: str = Field("658", max_length=20)
    write_off_max: Amount = Decimal("5.00")
    fee_account: str = Field("627", max_length=20)


class RejectedOut(Schema):
    position: str
    reason: str


class ImportOut(Schema):
    account_id: uuid.UUID
    import_ids: list[uuid.UUID]
    new: int
    duplicate: int
    rejected: int
    matched: int
    suggested: int
    rejected_rows: list[RejectedOut]
    summary: str


class LineOut(Schema):
    id: uuid.UUID
    account_id: uuid.UUID
    booking_date: dt.date
    value_date: dt.date | None
    amount: DecimalOut
    currency: str
    counterparty_name: str
    counterparty_iban: str
    remittance_unstructured: str
    remittance_structured: str
    end_to_end_id: str
    bank_reference: str
    status: str
    suggestion: dict[str, Any] | None


class LinePage(PageMeta):
    items: list[LineOut]


class MatchOut(Schema):
    id: uuid.UUID
    line_id: uuid.UUID
    kind: str
    automatic: bool
    confidence: int | None
    reason: str
    detail: str
    payment_ids: list[uuid.UUID]
    invoice_ids: list[uuid.UUID]
    write_off: DecimalOut
    ledger_account: str
    label: str
    created_at: dt.datetime
    created_by: str
    undone_at: dt.datetime | None
    undone_by: str
    undo_reason: str


class LineFilters(PageParams):
    account_id: uuid.UUID | None = None
    status: Literal["open", "unmatched", "suggested", "matched", "ignored"] | None = None


class AllocationIn(Input):
    invoice_id: uuid.UUID
    amount: Amount


class ConfirmIn(Input):
    allocations: list[AllocationIn] = Field(default_factory=list, max_length=100)
    write_off: Amount = Decimal(0)
    customer_id: uuid.UUID | None = Field(
        None, description="For a payment on account (no invoice): the customer who paid."
    )


class ExpenseIn(Input):
    kind: Literal["expense", "fee"] = "expense"
    ledger_account: str = Field("", max_length=20)
    label: str = Field("", max_length=200)


class UndoIn(Input):
    reason: str = Field("", max_length=300)


class RunIn(Input):
    account_id: uuid.UUID | None = None


class RunOut(Schema):
    confirmed: int
    suggested: int
    unmatched: int


class ReportParams(Input):
    start: dt.date | None = Field(None, description="Default: the first day of the month.")
    end: dt.date | None = Field(None, description="Default: today.")
    format: Literal["json", "csv", "pdf"] = "json"


def _money(value: Decimal, currency: str) -> str:
    return str(round_money(value, currency))


def account_out(a: BankAccount) -> dict[str, Any]:
    data = {f: getattr(a, f) for f in AccountOut.model_fields if f != "id"} | {"id": a.pk}
    return data | {"write_off_max": _money(a.write_off_max, a.currency)}


def line_out(x: BankLine) -> dict[str, Any]:
    data = {f: getattr(x, f) for f in LineOut.model_fields}
    return data | {"amount": _money(x.amount, x.currency)}


def match_out(m: BankMatch) -> dict[str, Any]:
    return {
        **{f: getattr(m, f) for f in MatchOut.model_fields if f not in ("payment_ids",)},
        "line_id": m.line_id,
        "payment_ids": [p.pk for p in m.payments.all()],
        "write_off": _money(m.write_off, m.line.currency),
    }


class AccountPage(PageMeta):
    items: list[AccountOut]


@router.get("/bank/accounts", response=AccountPage, summary="List bank accounts")
def list_accounts(request: HttpRequest, page: Query[PageParams]) -> dict[str, Any]:
    qs = selectors.accounts(ctx_of(request))
    items = qs[page.offset : page.offset + page.limit]
    return {"count": qs.count(), "limit": page.limit, "offset": page.offset,
            "items": [account_out(a) for a in items]}  # fmt: skip


class AccountPatch(Input):
    name: str | None = Field(None, max_length=100)
    bic: str | None = Field(None, max_length=11)
    journal_code: str | None = Field(None, max_length=10)
    auto_confirm_threshold: int | None = Field(None, ge=50, le=101)
    write_off_account: str | None = Field(None, max_length=20)
    write_off_max: Amount | None = None
    fee_account: str | None = Field(None, max_length=20)
    csv_mapping: dict[str, Any] | None = Field(
        None, description="The CSV column mapping of this bank (see docs/banking.md)."
    )


@router.get("/bank/accounts/{account_id}", response=AccountOut, summary="Get a bank account")
def get_account(request: HttpRequest, account_id: uuid.UUID) -> dict[str, Any]:
    return account_out(banking.get_account(ctx_of(request), account_id))


@router.patch("/bank/accounts/{account_id}", response=AccountOut,
              summary="Change a bank account's settings or its CSV mapping")  # fmt: skip
def update_account(request: HttpRequest, account_id: uuid.UUID,
                   payload: AccountPatch) -> dict[str, Any]:  # fmt: skip
    ctx = ctx_of(request)
    banking.get_account(ctx, account_id)
    changes = payload.model_dump(exclude_unset=True)
    mapping = changes.pop("csv_mapping", None)
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes:
        banking.update_account(ctx, account_id, **changes)
    if mapping is not None:
        banking.save_csv_mapping(ctx, account_id, mapping)
    return account_out(banking.get_account(ctx, account_id))


@router.post("/bank/accounts", response={201: AccountOut}, summary="Create a bank account")
def create_account(request: HttpRequest, payload: AccountIn) -> Status:
    account = banking.create_account(ctx_of(request), **payload.model_dump())
    return Status(201, account_out(account))


@router.post(
    "/bank/statements",
    response={201: ImportOut},
    summary="Import a statement file (CAMT.053/054, OFX, MT940, CSV), idempotent",
    description="Multipart: `file`, optional `account_id` (else the file's IBAN), "
    "`import_valid_lines` (keep the good rows of a bad file; rejected rows are listed), "
    "`match` (reconcile the new lines at once, default true). Lines already imported are "
    "counted as duplicates.",
)
def import_statement(
    request: HttpRequest,
    file: File[UploadedFile],
    account_id: Form[uuid.UUID | None] = None,
    import_valid_lines: Form[bool] = False,
    match: Form[bool] = True,
) -> Status:
    ctx = ctx_of(request)
    if file.size is not None and file.size > MAX_UPLOAD:
        raise BusinessError(
            "statement.too_large", _("The file is larger than 64 MiB: split it."), "file"
        )
    result = banking.import_statement(
        ctx,
        file.read(),
        file.name or "statement",
        account_id=account_id,
        import_valid_lines=import_valid_lines,
        auto_match=match,
        source="api",
    )
    return Status(
        201,
        {
            "account_id": result.account.pk,
            "import_ids": [r.pk for r in result.imports],
            "new": result.new,
            "duplicate": result.duplicate,
            "rejected": len(result.rejected),
            "matched": result.matched,
            "suggested": result.suggested,
            "rejected_rows": [
                {"position": r.position, "reason": r.reason} for r in result.rejected
            ],
            "summary": result.summary(),
        },
    )


@router.get("/bank/lines", response=LinePage, summary="List bank lines")
def list_lines(request: HttpRequest, filters: Query[LineFilters]) -> dict[str, Any]:
    ctx = ctx_of(request)
    qs = selectors.lines(ctx, account_id=filters.account_id, status=filters.status)
    items = qs[filters.offset : filters.offset + filters.limit]
    return {"count": qs.count(), "limit": filters.limit, "offset": filters.offset,
            "items": [line_out(x) for x in items]}  # fmt: skip


@router.get("/bank/lines/{line_id}", response=LineOut, summary="Get a bank line")
def get_line(request: HttpRequest, line_id: uuid.UUID) -> dict[str, Any]:
    return line_out(banking.get_line(ctx_of(request), line_id))


@router.get("/bank/lines/{line_id}/matches", response=list[MatchOut],
            summary="How a line was reconciled (undone ones included)")  # fmt: skip
def line_matches(request: HttpRequest, line_id: uuid.UUID) -> list[dict[str, Any]]:
    ctx = ctx_of(request)
    return [match_out(m) for m in selectors.matches(ctx, banking.get_line(ctx, line_id))]


@router.post("/bank/lines/{line_id}/confirm", response={201: MatchOut},
             summary="Reconcile a credit with invoices (split, write-off, on account)")  # fmt: skip
def confirm(request: HttpRequest, line_id: uuid.UUID, payload: ConfirmIn) -> Status:
    ctx = ctx_of(request)
    banking.get_line(ctx, line_id)
    match = banking.confirm_payment(
        ctx,
        line_id,
        [(a.invoice_id, a.amount) for a in payload.allocations],
        write_off=payload.write_off,
        customer_id=payload.customer_id,
    )
    return Status(201, match_out(match))


@router.post("/bank/lines/{line_id}/accept", response={201: MatchOut},
             summary="Accept the proposal waiting in the review queue")  # fmt: skip
def accept(request: HttpRequest, line_id: uuid.UUID) -> Status:
    ctx = ctx_of(request)
    return Status(201, match_out(banking.accept_suggestion(ctx, line_id)))


@router.post("/bank/lines/{line_id}/expense", response={201: MatchOut},
             summary="Book a debit as an expense or a bank fee")  # fmt: skip
def expense(request: HttpRequest, line_id: uuid.UUID, payload: ExpenseIn) -> Status:
    match = banking.record_expense(
        ctx_of(request), line_id, kind=payload.kind, ledger_account=payload.ledger_account,
        label=payload.label,
    )  # fmt: skip
    return Status(201, match_out(match))


@router.post("/bank/lines/{line_id}/ignore", response=LineOut, summary="Leave a line out")
def ignore(request: HttpRequest, line_id: uuid.UUID) -> dict[str, Any]:
    return line_out(banking.ignore_line(ctx_of(request), line_id))


@router.post("/bank/matches/{match_id}/undo", response=MatchOut,
             summary="Undo a reconciliation (payments taken back, invoices reopen)")  # fmt: skip
def undo(request: HttpRequest, match_id: uuid.UUID, payload: UndoIn) -> dict[str, Any]:
    return match_out(banking.undo_match(ctx_of(request), match_id, reason=payload.reason))


@router.post("/bank/match-runs", response=RunOut, summary="Match every open line now")
def match_run(request: HttpRequest, payload: RunIn) -> dict[str, Any]:
    run = banking.run_matching(ctx_of(request), account_id=payload.account_id)
    return {"confirmed": run.confirmed, "suggested": run.suggested, "unmatched": run.unmatched}


@router.get("/bank/accounts/{account_id}/reconciliation",
            summary="Reconciliation report of an account and period (JSON, CSV, PDF)")  # fmt: skip
def report(request: HttpRequest, account_id: uuid.UUID, params: Query[ReportParams]) -> Any:
    ctx = ctx_of(request)
    end = params.end or ctx.today()
    start = params.start or end.replace(day=1)
    rep = selectors.reconciliation_report(ctx, account_id, start, end)
    stem = f"rapprochement-{rep.account.iban}-{end:%Y%m%d}"
    if params.format in ("csv", "pdf"):
        if params.format == "csv":
            data, content_type = exports.report_csv(rep), "text/csv; charset=utf-8"
        else:
            data, content_type = exports.report_pdf(rep, ctx.organization.name), "application/pdf"
        response = HttpResponse(data, content_type=content_type)
        response["Content-Disposition"] = content_disposition_header(
            True, f"{stem}.{params.format}"
        )
        return response
    return {
        "account_id": str(rep.account.pk),
        "start": rep.start.isoformat(),
        "end": rep.end.isoformat(),
        "opening_balance": None if rep.opening_balance is None else str(rep.opening_balance),
        "closing_balance": None if rep.closing_balance is None else str(rep.closing_balance),
        "computed_closing": None if rep.computed_closing is None else str(rep.computed_closing),
        "matched_total": str(rep.matched_total),
        "unmatched_total": str(rep.unmatched_total),
        "matched_count": rep.matched_count,
        "unmatched_count": rep.unmatched_count,
        "discrepancies": rep.discrepancies,
    }


__all__ = ["StatementImport", "router"]
