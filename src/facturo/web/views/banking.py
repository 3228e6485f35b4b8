"""Bank: accounts and statement upload (drag and drop), the reconciliation screen (open
lines left, candidates right, keyboard-driven), rules, and the reconciliation report (page,
CSV, PDF). Reads through ``banking.selectors``, writes through ``banking.services``."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _

from facturo.banking import exports, selectors
from facturo.banking import services as banking
from facturo.banking.models import BankLine, LineStatus, MatchKind, RuleAction
from facturo.core.errors import BusinessError, NotFound
from facturo.core.errors import _ as mark
from facturo.core.money import round_money
from facturo.customers.models import Customer
from facturo.organizations.context import Ctx, Perm

from .base import Amount, member_view, message_of, page

MAX_UPLOAD = 64 * 1024 * 1024


def _account_id(request: HttpRequest, ctx: Ctx) -> Any:
    raw = request.GET.get("account") or request.POST.get("account") or ""
    if not raw:
        return None
    try:
        return banking.get_account(ctx, uuid.UUID(raw)).pk
    except ValueError:
        raise NotFound("bank.account_not_found", mark("No such bank account.")) from None


def _reconcile_url(account: Any = None, line: Any = None) -> str:
    url = reverse("web:bank_reconcile")
    query = "&".join(f"{k}={v}" for k, v in (("account", account), ("line", line)) if v is not None)
    return f"{url}?{query}" if query else url


# --- accounts and upload -----------------------------------------------------------------


@member_view(post=Perm.MANAGE_ORGANIZATION)
def bank_home(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    if request.method == "POST":
        try:
            banking.create_account(
                ctx,
                name=request.POST.get("name", ""),
                iban=request.POST.get("iban", ""),
                bic=request.POST.get("bic", ""),
                currency=request.POST.get("currency", "EUR").strip().upper() or "EUR",
                journal_code=request.POST.get("journal_code", "") or "BQ1",
            )
            messages.success(request, _("Bank account created."))
        except BusinessError as err:
            messages.error(request, message_of(err))
        return redirect("web:bank_home")
    accounts = list(selectors.accounts(ctx))
    counts = {a.pk: selectors.lines(ctx, account_id=a.pk, status="open").count() for a in accounts}
    return page(
        request,
        ctx,
        "web/banking/home.html",
        {
            "accounts": [(a, counts[a.pk]) for a in accounts],
            "imports": list(selectors.imports(ctx)[:10]),
        },
    )


CSV_TEXT_FIELDS = (
    "date_column", "amount_column", "debit_column", "credit_column", "value_date_column",
    "counterparty_name_column", "counterparty_iban_column", "end_to_end_id_column",
    "bank_reference_column", "currency", "date_format", "decimal_separator",
    "thousands_separator", "encoding", "delimiter",
)  # fmt: skip


@member_view(post=Perm.MANAGE_ORGANIZATION)
def bank_account(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    account = banking.get_account(ctx, pk)
    if request.method == "POST":
        try:
            if request.POST.get("form") == "csv":
                mapping: dict[str, Any] = {
                    f: request.POST.get(f, "") for f in CSV_TEXT_FIELDS if request.POST.get(f)
                }
                labels = [c.strip() for c in request.POST.get("remittance_columns", "").split(";")]
                mapping["remittance_columns"] = [c for c in labels if c]
                mapping["debit_is_negative"] = request.POST.get("debit_is_negative") == "on"
                mapping["skip_lines"] = int(request.POST.get("skip_lines") or 0)
                banking.save_csv_mapping(ctx, account.pk, mapping)
            else:
                banking.update_account(
                    ctx,
                    account.pk,
                    name=request.POST.get("name", ""),
                    bic=request.POST.get("bic", ""),
                    journal_code=request.POST.get("journal_code", ""),
                    auto_confirm_threshold=int(request.POST.get("auto_confirm_threshold") or 90),
                    write_off_max=_decimal(
                        request.POST.get("write_off_max") or "0", "write_off_max"
                    ),
                    write_off_account=request.POST.get("write_off_account", ""),
                    fee_account=request.POST.get("fee_account", ""),
                )
            messages.success(request, _("Bank account saved."))
        except ValueError:
            messages.error(request, _("Enter whole numbers for the threshold and skipped lines."))
        except BusinessError as err:
            messages.error(request, message_of(err))
        return redirect("web:bank_account", pk=account.pk)
    mapping = dict(account.csv_mapping or {})
    mapping["remittance_columns"] = "; ".join(mapping.get("remittance_columns", []))
    return page(
        request,
        ctx,
        "web/banking/account.html",
        {"account": account, "mapping": mapping, "write_off_max": f"{account.write_off_max:f}"},
    )


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def bank_upload(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    upload = request.FILES.get("file")
    account_id = _account_id(request, ctx)
    if upload is None:
        messages.error(request, _("Choose a statement file to import."))
        return redirect("web:bank_home")
    if upload.size and upload.size > MAX_UPLOAD:
        messages.error(request, _("The file is larger than 64 MiB: split it."))
        return redirect("web:bank_home")
    try:
        result = banking.import_statement(
            ctx,
            upload.read(),
            upload.name or "statement",
            account_id=account_id,
            import_valid_lines=request.POST.get("import_valid_lines") == "on",
        )
    except BusinessError as err:
        messages.error(request, message_of(err))
        return redirect("web:bank_home")
    messages.success(
        request,
        _("Imported: %(new)s new, %(dup)s duplicate, %(rej)s rejected, %(matched)s matched.")
        % {
            "new": result.new,
            "dup": result.duplicate,
            "rej": len(result.rejected),
            "matched": result.matched,
        },
    )
    for row in result.rejected[:20]:
        messages.warning(request, f"{row.position}: {row.reason}")
    return redirect(_reconcile_url(result.account.pk))


# --- reconciliation screen ---------------------------------------------------------------


def _candidates(ctx: Ctx, line: BankLine) -> list[dict[str, Any]]:
    return [
        {
            "invoice": c.invoice,
            "amount": f"{round_money(c.amount, c.invoice.currency):f}",
            "open": Amount(c.invoice.open_amount, c.invoice.currency),
            "score": c.score,
            "why": c.why,
            "checked": i == 0
            or str(c.invoice.id) in {a[0] for a in (line.suggestion or {}).get("allocations", [])},
        }
        for i, c in enumerate(selectors.candidates(ctx, line))
    ]


def _panel_context(ctx: Ctx, line: BankLine) -> dict[str, Any]:
    active = banking.active_match(line)
    suggestion = line.suggestion or {}
    customers = []
    if line.status in banking.OPEN_LINE and line.is_credit:
        customers = list(
            Customer.objects.filter(organization=ctx.organization)
            .order_by("name")
            .values("id", "name")[:500]
        )
    write_off = Decimal(str(suggestion.get("write_off") or "0"))
    return {
        "line": line,
        "write_off": f"{round_money(write_off, line.currency):f}" if write_off > 0 else "",
        "amount": Amount(line.amount, line.currency),
        "candidates": _candidates(ctx, line) if line.status in banking.OPEN_LINE else [],
        "suggestion": suggestion,
        "active": active,
        "history": list(selectors.matches(ctx, line)),
        "customers": customers,
        "is_open": line.status in banking.OPEN_LINE,
    }


@member_view(methods=("GET",))
def bank_reconcile(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    account_id = _account_id(request, ctx)
    status = request.GET.get("status", "open")
    if status not in ("open", *LineStatus.values):
        status = "open"
    lines = list(selectors.lines(ctx, account_id=account_id, status=status)[:200])
    selected = None
    raw = request.GET.get("line")
    if raw:
        try:
            selected = banking.get_line(ctx, uuid.UUID(raw))
        except ValueError:
            raise NotFound("bank.line_not_found", mark("No such bank line.")) from None
    elif lines:
        selected = lines[0]
    context: dict[str, Any] = {
        "rows": [(x, Amount(x.amount, x.currency)) for x in lines],
        "accounts": list(selectors.accounts(ctx)),
        "account_id": account_id,
        "status": status,
        "statuses": [("open", _("To do")), *LineStatus.choices],
    }
    if selected is not None:
        context.update(_panel_context(ctx, selected))
    template = "web/banking/reconcile.html"
    if request.headers.get("HX-Request") and request.GET.get("panel"):
        template = "web/banking/_panel.html"
    return page(request, ctx, template, context)


def _act(request: HttpRequest, ctx: Ctx, pk: uuid.UUID, action: Any) -> HttpResponse:
    """Run ``action`` on the line, then back to the screen on the next open line."""
    line = banking.get_line(ctx, pk)
    try:
        action(line)
    except BusinessError as err:
        messages.error(request, message_of(err))
        return redirect(_reconcile_url(line.account_id, line.pk))
    following = (
        selectors.lines(ctx, account_id=line.account_id, status="open").exclude(pk=line.pk).first()
    )
    return redirect(_reconcile_url(line.account_id, following.pk if following else None))


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def bank_line_accept(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    def accept(line: BankLine) -> None:
        banking.accept_suggestion(ctx, line.pk)
        messages.success(request, _("Line reconciled."))

    return _act(request, ctx, pk, accept)


def _decimal(raw: str, field: str) -> Decimal:
    try:
        value = Decimal(raw.strip().replace(",", ".").replace("\u00a0", "").replace(" ", ""))
    except InvalidOperation:
        raise BusinessError(
            "input.invalid_amount", mark("“%(value)s” is not an amount."), field, value=raw[:40]
        ) from None
    return value


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def bank_line_confirm(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    def confirm(line: BankLine) -> None:
        allocations = [
            (inv, _decimal(request.POST.get(f"amount-{inv}", ""), "amount"))
            for inv in request.POST.getlist("invoice")
        ]
        customer = request.POST.get("customer") or None
        banking.confirm_payment(
            ctx,
            line.pk,
            allocations,
            write_off=_decimal(request.POST.get("write_off") or "0", "write_off"),
            customer_id=customer if not allocations else None,
        )
        messages.success(request, _("Line reconciled."))

    return _act(request, ctx, pk, confirm)


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def bank_line_expense(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    def expense(line: BankLine) -> None:
        kind = request.POST.get("kind", MatchKind.EXPENSE)
        banking.record_expense(
            ctx,
            line.pk,
            kind=kind if kind in (MatchKind.EXPENSE, MatchKind.FEE) else MatchKind.EXPENSE,
            ledger_account=request.POST.get("ledger_account", ""),
            label=request.POST.get("label", ""),
        )
        messages.success(request, _("Line booked."))

    return _act(request, ctx, pk, expense)


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def bank_line_ignore(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    def ignore(line: BankLine) -> None:
        banking.ignore_line(ctx, line.pk)
        messages.success(request, _("Line left out."))

    return _act(request, ctx, pk, ignore)


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def bank_match_undo(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    try:
        match = banking.undo_match(ctx, pk, reason=request.POST.get("reason", ""))
        messages.success(request, _("Reconciliation undone."))
        return redirect(_reconcile_url(match.line.account_id, match.line_id))
    except BusinessError as err:
        messages.error(request, message_of(err))
        return redirect("web:bank_reconcile")


@member_view(get=None, post=Perm.EDIT_INVOICES, methods=("POST",))
def bank_match_run(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    account_id = _account_id(request, ctx)
    run = banking.run_matching(ctx, account_id=account_id)
    messages.success(
        request,
        _("Matching: %(confirmed)s reconciled, %(suggested)s to review, %(unmatched)s left.")
        % {"confirmed": run.confirmed, "suggested": run.suggested, "unmatched": run.unmatched},
    )
    return redirect(_reconcile_url(account_id))


# --- rules -------------------------------------------------------------------------------


@member_view(post=Perm.MANAGE_ORGANIZATION)
def bank_rules(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    if request.method == "POST":
        target = request.POST.get("target_kind", MatchKind.PAYMENT)
        try:
            banking.create_rule(
                ctx,
                name=request.POST.get("name", ""),
                label_contains=request.POST.get("label_contains", ""),
                label_regex=request.POST.get("label_regex", ""),
                counterparty_contains=request.POST.get("counterparty_contains", ""),
                amount_min=_decimal(request.POST["amount_min"], "amount_min")
                if request.POST.get("amount_min")
                else None,
                amount_max=_decimal(request.POST["amount_max"], "amount_max")
                if request.POST.get("amount_max")
                else None,
                customer_id=request.POST.get("customer") or None,
                ledger_account=request.POST.get("ledger_account", ""),
                target_kind=target,
                action=request.POST.get("action", RuleAction.SUGGEST),
            )
            messages.success(request, _("Rule created."))
        except BusinessError as err:
            messages.error(request, message_of(err))
        return redirect("web:bank_rules")
    return page(
        request,
        ctx,
        "web/banking/rules.html",
        {
            "rules": list(selectors.rules(ctx)),
            "customers": list(
                Customer.objects.filter(organization=ctx.organization)
                .order_by("name")
                .values("id", "name")[:500]
            ),
            "kinds": MatchKind.choices,
            "actions": RuleAction.choices,
        },
    )


# --- report ------------------------------------------------------------------------------


def _date(raw: str, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(raw) if raw else default
    except ValueError:
        raise BusinessError(
            "input.invalid_date", mark("“%(value)s” is not a date (YYYY-MM-DD)."), value=raw[:40]
        ) from None


@member_view(methods=("GET",))
def bank_report(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    accounts = list(selectors.accounts(ctx))
    today = ctx.today()
    context: dict[str, Any] = {"accounts": accounts}
    try:
        end = _date(request.GET.get("end", ""), today)
        start = _date(request.GET.get("start", ""), end.replace(day=1))
        account_id = _account_id(request, ctx) or (accounts[0].pk if accounts else None)
        context.update({"start": start, "end": end, "account_id": account_id})
        if account_id is not None:
            report = selectors.reconciliation_report(ctx, account_id, start, end)
            fmt = request.GET.get("format", "")
            if fmt in ("csv", "pdf"):
                stem = f"rapprochement-{report.account.iban}-{end:%Y%m%d}"
                if fmt == "csv":
                    data, ctype = exports.report_csv(report), "text/csv; charset=utf-8"
                else:
                    data, ctype = (
                        exports.report_pdf(report, ctx.organization.name),
                        "application/pdf",
                    )
                response = HttpResponse(data, content_type=ctype)
                response["Content-Disposition"] = content_disposition_header(True, f"{stem}.{fmt}")
                return response
            cur = report.account.currency
            context.update(
                {
                    "report": report,
                    "figures": [
                        (_("Opening balance"), Amount(report.opening_balance, cur)),
                        (_("Money in"), Amount(report.total_in, cur)),
                        (_("Money out"), Amount(report.total_out, cur)),
                        (_("Reconciled"), Amount(report.matched_total, cur)),
                        (_("Not reconciled"), Amount(report.unmatched_total, cur)),
                        (_("Closing balance (computed)"), Amount(report.computed_closing, cur)),
                        (_("Closing balance (statement)"), Amount(report.closing_balance, cur)),
                    ],
                    "rows": [(r, Amount(r.line.amount, cur)) for r in report.lines],
                }
            )
    except BusinessError as err:
        messages.error(request, message_of(err))
    return page(request, ctx, "web/banking/report.html", context)
