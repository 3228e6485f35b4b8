"""The reconciliation report as CSV (formula injection neutralised) and PDF (Typst, as the
invoices)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any, cast

from facturo.core.money import round_money
from facturo.formats.csv_export import neutralise

from .selectors import ReconciliationReport

HEADERS = ["Date", "Montant", "Devise", "Contrepartie", "Libellé", "État", "Détail"]


def _money(value: Decimal | None, currency: str) -> str:
    if value is None:
        return ""
    return format(round_money(value, currency), "f").replace(".", ",")


def report_csv(report: ReconciliationReport) -> bytes:
    """Semicolon-separated, decimal comma, UTF-8 with BOM (what French spreadsheets read)."""
    cur = report.account.currency
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    summary = [
        ("Compte", f"{report.account.name} {report.account.iban}"),
        ("Période", f"{report.start:%d/%m/%Y} – {report.end:%d/%m/%Y}"),
        ("Solde d'ouverture", _money(report.opening_balance, cur)),
        ("Rapproché", _money(report.matched_total, cur)),
        ("Non rapproché", _money(report.unmatched_total, cur)),
        ("Solde de clôture calculé", _money(report.computed_closing, cur)),
        ("Solde de clôture relevé", _money(report.closing_balance, cur)),
    ]
    for label, value in summary:
        writer.writerow([neutralise(label), neutralise(value)])
    for text in report.discrepancies:
        writer.writerow(["Écart", neutralise(text)])
    writer.writerow([])
    writer.writerow(HEADERS)
    for row in report.lines:
        x = row.line
        writer.writerow(
            [
                x.booking_date.strftime("%d/%m/%Y"),
                _money(x.amount, cur),
                x.currency,
                neutralise(x.counterparty_name),
                neutralise(x.label),
                row.state,
                neutralise(row.detail),
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


def _t(value: Any) -> str:
    """A Typst string literal (no markup is interpreted inside)."""
    if value is None:
        text = ""
    elif isinstance(value, dt.date):
        text = value.strftime("%d/%m/%Y")
    else:
        text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def report_pdf(report: ReconciliationReport, organization: str) -> bytes:
    import typst

    cur = report.account.currency
    summary = [
        ("Solde d'ouverture", _money(report.opening_balance, cur)),
        ("Encaissements", _money(report.total_in, cur)),
        ("Décaissements", _money(report.total_out, cur)),
        (f"Rapproché ({report.matched_count})", _money(report.matched_total, cur)),
        (f"Non rapproché ({report.unmatched_count})", _money(report.unmatched_total, cur)),
        ("Solde de clôture calculé", _money(report.computed_closing, cur)),
        ("Solde de clôture relevé", _money(report.closing_balance, cur)),
    ]
    summary_cells = ",\n".join(f"[#{_t(a)}], [#{_t(b)}]" for a, b in summary)
    rows = ",\n".join(
        ", ".join(
            f"[#{_t(v)}]"
            for v in (
                r.line.booking_date,
                _money(r.line.amount, cur),
                r.line.counterparty_name[:40],
                r.line.label[:70],
                r.state,
                r.detail[:40],
            )
        )
        for r in report.lines
    )
    gaps = "\n".join(f"- #{_t(d)}" for d in report.discrepancies) or "#" + _t("—")
    title = f"Rapprochement bancaire — {report.account.name} ({report.account.iban})"
    period = f"{report.start:%d/%m/%Y} – {report.end:%d/%m/%Y}"
    source = f"""#set page(paper: "a4", flipped: true, margin: 1.2cm,
  footer: context [#set text(7pt); #{_t(organization)} — #counter(page).display("1/1", both: true)])
#set text(size: 8pt, lang: "fr")
= #{_t(title)}
#{_t(period)}

#table(columns: 2, stroke: 0.3pt + gray, inset: 3pt,
{summary_cells}
)

== Écarts
{gaps}

== Lignes
#table(columns: 6, stroke: 0.3pt + gray, inset: 3pt,
  table.header([*Date*], [*Montant*], [*Contrepartie*], [*Libellé*], [*État*], [*Détail*]),
{rows}
)
"""
    return cast(bytes, typst.compile(source.encode("utf-8")))
