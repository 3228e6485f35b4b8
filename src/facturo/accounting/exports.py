"""Exports of the books: the FEC of a fiscal year, the journal as CSV/XLSX (presets or a
column mapping), the reports as CSV/XLSX/PDF; and the background export jobs of the API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal, cast

from django.utils import timezone

from facturo.core.errors import BusinessError, _
from facturo.formats import csv_export
from facturo.formats.fec import fec_filename, write_fec
from facturo.foundation.db import atomic
from facturo.organizations.context import Ctx, Perm

from . import models as m
from .selectors import AGE_BUCKETS, aged_balance, general_ledger, posted_entries, trial_balance
from .services import _books, fiscal_year_for


def fec(
    ctx: Ctx,
    year: int,
    *,
    encoding: Literal["iso-8859-15", "utf-8"] = "iso-8859-15",
    separator: Literal["\t", "|"] = "\t",
) -> tuple[str, bytes]:
    """The FEC (art. A47 A-1 LPF) of the fiscal year ending in ``year``."""
    ctx.require(Perm.EXPORT)
    org = ctx.organization
    fiscal = fiscal_year_for(ctx, year)
    if not (org.siren or "").isdigit() or len(org.siren) != 9:
        raise BusinessError(
            "accounting.no_siren",
            _("The FEC file is named after the SIREN: set the organization's SIREN first."),
            field="siren",
        )
    entries = list(posted_entries(org.id, fiscal.start, fiscal.end))
    data = write_fec(entries, separator=separator, encoding=encoding, book_currency=org.currency)
    return fec_filename(org.siren, fiscal.end), data


def _period(ctx: Ctx, start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    today = ctx.today()
    return start or today.replace(month=1, day=1), end or today


def journal(
    ctx: Ctx,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    preset: str = "generic",
    columns: Sequence[tuple[str, str]] | None = None,
    fmt: str = "csv",
) -> tuple[str, bytes]:
    """The journal lines of a period, as CSV (a software preset, or a mapping of columns)
    or XLSX."""
    ctx.require(Perm.EXPORT)
    if preset not in csv_export.PRESETS:
        raise BusinessError(
            "export.unknown_preset",
            _("Unknown export preset “%(preset)s”; known: %(known)s."),
            field="preset",
            preset=preset,
            known=", ".join(csv_export.PRESETS),
        )
    start, end = _period(ctx, start, end)
    cols = csv_export.columns_from_mapping(columns) if columns else None
    entries = list(posted_entries(ctx.organization.id, start, end))
    stem = f"journal-{start:%Y%m%d}-{end:%Y%m%d}"
    if fmt == "xlsx":
        return f"{stem}.xlsx", csv_export.journal_xlsx(
            entries, cols or csv_export.PRESETS[preset].columns
        )
    if cols:
        return f"{stem}.csv", csv_export.journal_csv(entries, cols)
    return f"{stem}-{preset}.csv", csv_export.preset_csv(entries, preset)


REPORTS = ("trial_balance", "general_ledger", "aged_balance")


def report_table(
    ctx: Ctx, report: str, *, start: dt.date, end: dt.date, account: str = ""
) -> tuple[str, list[str], list[list[Any]]]:
    """A report as a title, headers and rows (shared by the CSV, XLSX and PDF exports)."""
    ctx.require(Perm.VIEW)
    org_id = ctx.organization.id
    if report == "trial_balance":
        rows = trial_balance(org_id, start, end)
        return (
            f"Balance {start:%d/%m/%Y} - {end:%d/%m/%Y}",
            ["Compte", "Libellé", "Débit", "Crédit", "Solde"],
            [[r.account, r.label, r.debit, r.credit, r.balance] for r in rows],
        )
    if report == "general_ledger":
        accounts = [account] if account else [r.account for r in trial_balance(org_id, start, end)]
        out: list[list[Any]] = []
        for number in accounts:
            for x in general_ledger(org_id, number, start, end):
                out.append(
                    [number, x.date, x.journal, x.number, x.piece_ref, x.label, x.auxiliary,
                     x.debit, x.credit, x.lettering, x.running]
                )  # fmt: skip
        return (
            f"Grand livre {start:%d/%m/%Y} - {end:%d/%m/%Y}",
            ["Compte", "Date", "Journal", "N°", "Pièce", "Libellé", "Auxiliaire", "Débit",
             "Crédit", "Lettrage", "Solde"],
            out,
        )  # fmt: skip
    if report == "aged_balance":
        books = _books(ctx)
        aged = aged_balance(org_id, books.settings, end)
        return (
            f"Balance âgée au {end:%d/%m/%Y}",
            ["Compte", "Client", *AGE_BUCKETS, "Total", "Avoir/crédit"],
            [[a.code, a.name, *a.buckets, a.total, a.credit] for a in aged],
        )
    raise BusinessError(
        "export.unknown_report",
        _("Unknown report “%(report)s”."),
        field="report",
        report=report,
    )


def report_file(
    ctx: Ctx, report: str, fmt: str, *, start: dt.date, end: dt.date, account: str = ""
) -> tuple[str, bytes, str]:
    """(filename, bytes, content type) of a report as CSV, XLSX or PDF."""
    title, headers, rows = report_table(ctx, report, start=start, end=end, account=account)
    stem = f"{report}-{end:%Y%m%d}"
    if fmt == "xlsx":
        return (
            f"{stem}.xlsx",
            csv_export.table_xlsx(headers, rows, title=report),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    if fmt == "pdf":
        return (
            f"{stem}.pdf",
            table_pdf(ctx.organization.name, title, headers, rows),
            "application/pdf",
        )
    return f"{stem}.csv", csv_export.table_csv(headers, rows), "text/csv"


def _typst_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = f"{value:,.2f}".replace(",", " ").replace(".", ",")
    elif isinstance(value, dt.date):
        text = value.strftime("%d/%m/%Y")
    else:
        text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def table_pdf(org: str, title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """A report as a PDF table (Typst, as the invoices), landscape A4, header repeated."""
    import typst

    cells = ",\n".join(", ".join(f"[#{_typst_text(v)}]" for v in row) for row in rows)
    head = ", ".join(f"[*#{_typst_text(h)}*]" for h in headers)
    footer = _typst_text(org)[1:-1]
    source = f"""#set page(paper: "a4", flipped: true, margin: 1.2cm,
  footer: context [#set text(7pt); {footer} — #counter(page).display("1/1", both: true)])
#set text(size: 7pt, lang: "fr")
= #{_typst_text(title)}
#table(columns: {len(headers)}, stroke: 0.3pt + gray, inset: 3pt,
  table.header({head}),
  {cells}
)
"""
    return cast(bytes, typst.compile(source.encode("utf-8")))


# --- background jobs (API) -------------------------------------------------------------------


def request_job(ctx: Ctx, kind: str, params: dict[str, Any]) -> m.ExportJob:
    ctx.require(Perm.EXPORT)
    if kind not in ("fec", "journal", *REPORTS):
        raise BusinessError(
            "export.unknown_kind", _("Unknown export “%(kind)s”."), field="kind", kind=kind
        )
    with atomic():
        job = m.ExportJob.objects.create(organization=ctx.organization, kind=kind, params=params)
    return job


def run_job(ctx: Ctx, job_id: Any) -> m.ExportJob:
    """Build the file of a pending job (idempotent: a finished job is left as it is)."""
    job = m.ExportJob.objects.get(organization=ctx.organization, pk=job_id)
    if job.status != "pending":
        return job
    p = job.params

    def day(name: str) -> dt.date | None:
        return dt.date.fromisoformat(p[name]) if p.get(name) else None

    try:
        if job.kind == "fec":
            name, data = fec(
                ctx,
                int(p.get("year") or 0),
                encoding=p.get("encoding") or "iso-8859-15",
                separator="|" if p.get("separator") == "|" else "\t",
            )
        elif job.kind == "journal":
            name, data = journal(
                ctx,
                start=day("start"),
                end=day("end"),
                preset=p.get("preset") or "generic",
                columns=[(str(c[0]), str(c[1])) for c in p.get("columns") or []] or None,
                fmt=p.get("format") or "csv",
            )
        else:
            start, end = _period(ctx, day("start"), day("end"))
            name, data, _type = report_file(
                ctx, job.kind, p.get("format") or "csv", start=start, end=end,
                account=p.get("account") or "",
            )  # fmt: skip
        job.status, job.filename, job.content = "done", name, data
    except BusinessError as exc:
        job.status, job.error = "failed", exc.message
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "filename", "content", "error", "finished_at"])
    return job
