"""Accounting pages: books overview (fiscal years, close, exports), entries, chart and
journals, mapping rules with the invoice entry preview, reports (trial balance, general
ledger, aged balance as page, CSV, XLSX, PDF) and the VAT return helper."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _

from facturo.accounting import exports, selectors, services
from facturo.accounting import models as m
from facturo.core.errors import BusinessError
from facturo.formats.csv_export import PRESETS
from facturo.organizations.context import Ctx, Perm

from .base import Amount, member_view, message_of, page, paginate


def _date(request: HttpRequest, name: str, default: dt.date | None = None) -> dt.date | None:
    raw = (request.GET.get(name) or request.POST.get(name) or "").strip()
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        return default


def _period(request: HttpRequest, ctx: Ctx) -> tuple[dt.date, dt.date]:
    today = ctx.today()
    return (
        _date(request, "start", today.replace(month=1, day=1)) or today,
        _date(request, "end", today) or today,
    )


def _file(name: str, data: bytes, content_type: str = "application/octet-stream") -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, name)
    return response


def _money(value: Decimal, ctx: Ctx) -> Amount:
    return Amount(value, ctx.organization.currency)


@member_view(post=Perm.MANAGE_ORGANIZATION)
def accounting_home(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    org = ctx.organization
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "fiscal_year":
                start, end = _date(request, "start"), _date(request, "end")
                if start is None or end is None:
                    raise BusinessError(
                        "accounting.fiscal_year_dates", _("Give the start and end dates.")
                    )
                services.add_fiscal_year(ctx, start, end)
                messages.success(request, _("Fiscal year added."))
            elif action == "close_period":
                through = _date(request, "through")
                if through is None:
                    raise BusinessError("accounting.close_date", _("Give a date."))
                end = services.close_period(ctx, through)
                messages.success(
                    request, _("The books are closed up to %(date)s.") % {"date": end.isoformat()}
                )
            elif action == "close_year":
                year = services.close_fiscal_year(ctx, request.POST.get("year_id"))
                messages.success(request, _("Fiscal year %(year)s closed.") % {"year": str(year)})
        except BusinessError as err:
            messages.error(request, message_of(err))
        return redirect("web:accounting_home")
    state = m.LedgerState.objects.filter(organization=org).first()
    return page(
        request,
        ctx,
        "web/accounting/home.html",
        {
            "state": state,
            "entries": m.Entry.objects.filter(organization=org).count(),
            "years": m.FiscalYear.objects.filter(organization=org),
            "unposted": m.Unposted.objects.filter(organization=org)[:20],
            "presets": PRESETS.values(),
            "today": ctx.today(),
        },
    )


@member_view(get=Perm.EXPORT, post=Perm.EXPORT, methods=("POST",))
def accounting_fec(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    try:
        name, data = exports.fec(
            ctx,
            int(request.POST.get("year") or 0),
            encoding="utf-8" if request.POST.get("encoding") == "utf-8" else "iso-8859-15",
            separator="|" if request.POST.get("separator") == "|" else "\t",
        )
    except (BusinessError, ValueError) as err:
        messages.error(
            request, message_of(err) if isinstance(err, BusinessError) else _("Give a year.")
        )
        return redirect("web:accounting_home")
    return _file(name, data, "text/plain")


@member_view(get=Perm.EXPORT)
def accounting_journal_export(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    start, end = _period(request, ctx)
    try:
        name, data = exports.journal(
            ctx,
            start=start,
            end=end,
            preset=request.GET.get("preset") or "generic",
            fmt="xlsx" if request.GET.get("format") == "xlsx" else "csv",
        )
    except BusinessError as err:
        messages.error(request, message_of(err))
        return redirect("web:accounting_home")
    return _file(name, data)


@member_view()
def accounting_entries(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    start, end = _date(request, "start"), _date(request, "end")
    qs = selectors.entries_in(ctx.organization.id, start, end)
    journal = (request.GET.get("journal") or "").upper()[:8]
    account = (request.GET.get("account") or "").strip()[:20]
    if journal:
        qs = qs.filter(journal_code=journal)
    if account:
        qs = qs.filter(lines__account__startswith=account).distinct()
    entries = paginate(request, qs.order_by("-number"))
    return page(
        request,
        ctx,
        "web/accounting/entries.html",
        {
            "page_obj": entries,
            "rows": [(e, _money(e.total, ctx)) for e in entries],
            "journals": m.Journal.objects.filter(organization=ctx.organization),
            "filters": {"journal": journal, "account": account, "start": start, "end": end},
        },
    )


@member_view(post=Perm.MANAGE_ORGANIZATION)
def accounting_entry(request: HttpRequest, ctx: Ctx, pk: uuid.UUID) -> HttpResponse:
    entry = m.Entry.objects.filter(organization=ctx.organization, pk=pk).first()
    if entry is None:
        from django.http import Http404

        raise Http404(_("No such entry."))
    if request.method == "POST":
        try:
            new = services.reverse_posted_entry(ctx, entry.pk)
            messages.success(request, _("Reversing entry %(n)s posted.") % {"n": new.number})
            return redirect("web:accounting_entry", pk=new.pk)
        except BusinessError as err:
            messages.error(request, message_of(err))
        return redirect("web:accounting_entry", pk=entry.pk)
    lines = [(x, _money(x.debit, ctx), _money(x.credit, ctx)) for x in entry.lines.all()]
    return page(
        request,
        ctx,
        "web/accounting/entry.html",
        {"entry": entry, "lines": lines, "reversals": entry.reversals.all()},
    )


@member_view(get=Perm.MANAGE_ORGANIZATION)
def accounting_entry_new(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    journals = m.Journal.objects.filter(organization=ctx.organization)
    values: dict[str, Any] = {"date": ctx.today().isoformat(), "journal": "OD"}
    error = ""
    if request.method == "POST":
        values = {k: request.POST.get(k, "") for k in request.POST}
        lines = [
            {
                "account": request.POST.get(f"account_{i}", ""),
                "debit": request.POST.get(f"debit_{i}", ""),
                "credit": request.POST.get(f"credit_{i}", ""),
                "label": request.POST.get(f"label_{i}", ""),
            }
            for i in range(6)
            if request.POST.get(f"account_{i}", "").strip()
        ]
        try:
            day = _date(request, "date")
            if day is None:
                raise BusinessError("accounting.entry_date", _("Give the entry's date."), "date")
            entry = services.post_manual_entry(
                ctx,
                journal_code=request.POST.get("journal", ""),
                date=day,
                label=request.POST.get("label", ""),
                piece_ref=request.POST.get("piece_ref", ""),
                lines=lines,
            )
            messages.success(request, _("Entry %(n)s posted.") % {"n": entry.number})
            return redirect("web:accounting_entry", pk=entry.pk)
        except BusinessError as err:
            error = message_of(err)
    return page(
        request,
        ctx,
        "web/accounting/entry_form.html",
        {"journals": journals, "values": values, "error": error, "rows": range(6)},
        status=422 if error else 200,
    )


@member_view(post=Perm.MANAGE_ORGANIZATION)
def accounting_chart(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "account":
                services.save_account(
                    ctx, request.POST.get("number", ""), request.POST.get("label", "")
                )
                messages.success(request, _("Account saved."))
            elif action == "journal":
                services.save_journal(
                    ctx,
                    request.POST.get("code", ""),
                    request.POST.get("label", ""),
                    request.POST.get("kind", ""),
                    account=request.POST.get("account", "").strip(),
                )
                messages.success(request, _("Journal saved."))
            elif action == "settings":
                services.save_settings(
                    ctx, {k: request.POST.get(k, "") for k in services.NUMBER_FIELDS}
                )
                messages.success(request, _("Account numbers saved."))
        except BusinessError as err:
            messages.error(request, message_of(err))
        return redirect("web:accounting_chart")
    books = services._books(ctx)
    settings = books.settings
    return page(
        request,
        ctx,
        "web/accounting/chart.html",
        {
            "accounts": m.Account.objects.filter(organization=ctx.organization),
            "journals": m.Journal.objects.filter(organization=ctx.organization),
            "kinds": m.JournalKind.choices,
            "numbers": [(name, getattr(settings, name)) for name in services.NUMBER_FIELDS],
        },
    )


@member_view(post=Perm.MANAGE_ORGANIZATION)
def accounting_rules(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    preview = None
    preview_error = ""
    if request.method == "POST":
        try:
            if request.POST.get("action") == "delete":
                services.delete_rule(ctx, request.POST.get("rule_id"))
                messages.success(request, _("Mapping rule deleted."))
            else:
                services.add_rule(
                    ctx,
                    **{
                        k: request.POST.get(k, "")
                        for k in ("account", "product_code", "category", "nature",
                                  "customer_type", "vat_category", "position")
                    },
                )  # fmt: skip
                messages.success(request, _("Mapping rule added."))
        except BusinessError as err:
            messages.error(request, message_of(err))
        return redirect("web:accounting_rules")
    number = (request.GET.get("invoice") or "").strip()
    if number:
        from facturo.invoicing.models import Invoice

        invoice = (
            Invoice.objects.filter(organization=ctx.organization, number=number).first()
            if not _is_uuid(number)
            else Invoice.objects.filter(organization=ctx.organization, pk=number).first()
        )
        if invoice is None:
            preview_error = _("No invoice numbered %(n)s.") % {"n": number}
        else:
            try:
                preview = services.preview_invoice(ctx, invoice.pk)
            except BusinessError as err:
                preview_error = message_of(err)
    return page(
        request,
        ctx,
        "web/accounting/rules.html",
        {
            "rules": m.RevenueRule.objects.filter(organization=ctx.organization),
            "preview": preview,
            "preview_lines": [
                (x, _money(x.debit, ctx), _money(x.credit, ctx)) for x in preview.lines
            ]
            if preview
            else [],
            "preview_error": preview_error,
            "invoice": number,
        },
    )


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


REPORT_TITLES = {
    "trial_balance": "Trial balance",
    "general_ledger": "General ledger",
    "aged_balance": "Aged balance",
}


@member_view()
def accounting_report(request: HttpRequest, ctx: Ctx, report: str) -> HttpResponse:
    if report not in REPORT_TITLES:
        from django.http import Http404

        raise Http404(report)
    start, end = _period(request, ctx)
    account = (request.GET.get("account") or "").strip()[:20]
    fmt = request.GET.get("format", "")
    try:
        if fmt in ("csv", "xlsx", "pdf"):
            name, data, content_type = exports.report_file(
                ctx, report, fmt, start=start, end=end, account=account
            )
            return _file(name, data, content_type)
        _title, headers, rows = exports.report_table(
            ctx, report, start=start, end=end, account=account
        )
    except BusinessError as err:
        messages.error(request, message_of(err))
        return redirect("web:accounting_home")
    shown = [
        [
            {
                "text": str(_money(v, ctx)) if isinstance(v, Decimal) else v,
                "num": isinstance(v, Decimal),
            }
            for v in row
        ]
        for row in rows[:2000]
    ]
    return page(
        request,
        ctx,
        "web/accounting/report.html",
        {
            "report": report,
            "title": _(REPORT_TITLES[report]),
            "headers": headers,
            "rows": shown,
            "truncated": len(rows) > 2000,
            "start": start,
            "end": end,
            "account": account,
            "query": f"start={start.isoformat()}&end={end.isoformat()}&account={account}",
        },
    )


@member_view()
def accounting_vat(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    start, end = _period(request, ctx)
    books = services._books(ctx)
    rows = selectors.vat_return(ctx.organization.id, books.settings, start, end)
    shown = [
        (
            r,
            _money(r.on_debits, ctx),
            _money(r.on_receipts, ctx),
            _money(r.due, ctx),
            _money(r.pending_end, ctx),
        )
        for r in rows
    ]
    return page(
        request,
        ctx,
        "web/accounting/vat.html",
        {"rows": shown, "start": start, "end": end},
    )
