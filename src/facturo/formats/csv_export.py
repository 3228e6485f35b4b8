"""CSV export of journal lines with a configurable column mapping (pure, bytes out).

Spreadsheets run a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula (CSV/formula injection, OWASP): every text cell that starts so is
prefixed with an apostrophe. Amounts and dates are formatted here, never taken from user
text, so they are written as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from facturo.core.errors import BusinessError, _
from facturo.core.ledger import EntryLine, PostedEntry
from facturo.core.money import round_money

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """The cell, prefixed with ``'`` when a spreadsheet would read it as a formula."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


Value = str | Decimal | date | int | None
_Getter = Callable[[PostedEntry, EntryLine], Value]

JOURNAL_FIELDS: dict[str, _Getter] = {
    "journal_code": lambda p, line: p.entry.journal.code,
    "journal_label": lambda p, line: p.entry.journal.label,
    "entry_number": lambda p, line: p.number,
    "date": lambda p, line: p.entry.date,
    "account": lambda p, line: line.account,
    "account_label": lambda p, line: line.account_label,
    "auxiliary": lambda p, line: line.auxiliary,
    "auxiliary_label": lambda p, line: line.auxiliary_label,
    "piece_ref": lambda p, line: p.entry.piece_ref,
    "piece_date": lambda p, line: p.entry.piece_date,
    "label": lambda p, line: line.label or p.entry.label,
    "debit": lambda p, line: line.debit,
    "credit": lambda p, line: line.credit,
    "balance": lambda p, line: line.debit - line.credit,
    "lettering": lambda p, line: line.lettering,
    "lettering_date": lambda p, line: line.lettering_date,
    "validation_date": lambda p, line: p.validation_date,
    "currency": lambda p, line: p.entry.currency,
    "empty": lambda p, line: "",  # a column the target software wants but we leave blank
}


@dataclass(frozen=True)
class CsvColumn:
    header: str
    field: str  # a key of JOURNAL_FIELDS

    def __post_init__(self) -> None:
        if self.field not in JOURNAL_FIELDS:
            raise BusinessError(
                "export.unknown_field",
                _("Unknown column field “%(unknown)s”; known: %(known)s."),
                field="field",
                unknown=self.field,
                known=", ".join(JOURNAL_FIELDS),
            )


DEFAULT_COLUMNS: tuple[CsvColumn, ...] = (
    CsvColumn("Journal", "journal_code"),
    CsvColumn("N° écriture", "entry_number"),
    CsvColumn("Date", "date"),
    CsvColumn("Compte", "account"),
    CsvColumn("Libellé compte", "account_label"),
    CsvColumn("Compte auxiliaire", "auxiliary"),
    CsvColumn("Pièce", "piece_ref"),
    CsvColumn("Libellé", "label"),
    CsvColumn("Débit", "debit"),
    CsvColumn("Crédit", "credit"),
    CsvColumn("Lettrage", "lettering"),
)


def _cell(value: Value, *, decimal_comma: bool, date_format: str, currency: str) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = format(round_money(value, currency), "f")
        return text.replace(".", ",") if decimal_comma else text
    if isinstance(value, date):
        return value.strftime(date_format)
    if isinstance(value, int):
        return str(value)
    return neutralise(value)


def journal_csv(
    entries: Sequence[PostedEntry],
    columns: Sequence[CsvColumn] = DEFAULT_COLUMNS,
    *,
    delimiter: str = ";",
    decimal_comma: bool = True,
    date_format: str = "%d/%m/%Y",
    encoding: Literal["utf-8-sig", "utf-8", "iso-8859-15", "cp1252"] = "utf-8-sig",
    line_terminator: Literal["\r\n", "\n"] = "\r\n",
    header: bool = True,
) -> bytes:
    """One row per entry line. ``utf-8-sig`` (with a byte order mark) is what spreadsheet
    software needs to read accents right; characters another encoding cannot carry become
    ``?``."""
    if len(delimiter) != 1 or delimiter in '"\r\n' or (decimal_comma and delimiter == ","):
        raise BusinessError(
            "export.delimiter",
            _("Choose a one-character delimiter other than a quote, a line break, or a comma "
              "when amounts use a decimal comma."),
            field="delimiter",
        )  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_terminator)
    if header:
        writer.writerow([neutralise(c.header) for c in columns])
    getters = [JOURNAL_FIELDS[c.field] for c in columns]
    for posted in entries:
        for line in posted.entry.lines:
            writer.writerow(
                [
                    _cell(
                        get(posted, line),
                        decimal_comma=decimal_comma,
                        date_format=date_format,
                        currency=posted.entry.currency,
                    )
                    for get in getters
                ]
            )
    return buffer.getvalue().encode(encoding, errors="replace")


# --- presets for accounting software ---------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """Columns and format an accounting package imports. ``verified`` names the public
    description it was checked against (docs/accounting.md); empty when it was not."""

    name: str
    label: str
    columns: tuple[CsvColumn, ...]
    delimiter: str = ";"
    decimal_comma: bool = True
    date_format: str = "%d/%m/%Y"
    encoding: Literal["utf-8-sig", "utf-8", "iso-8859-15", "cp1252"] = "utf-8-sig"
    header: bool = True
    verified: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("generic", "Generic (one row per line)", DEFAULT_COLUMNS),
        Preset(
            "sage100",
            "Sage 100 Comptabilité (import texte, tabulations)",
            (
                CsvColumn("Jou", "journal_code"),
                CsvColumn("Date", "date"),
                CsvColumn("N°", "piece_ref"),
                CsvColumn("Général", "account"),
                CsvColumn("Tiers", "auxiliary"),
                CsvColumn("Libellé", "label"),
                CsvColumn("Règlement", "empty"),
                CsvColumn("Echéance", "empty"),
                CsvColumn("Débit", "debit"),
                CsvColumn("Crédit", "credit"),
            ),
            delimiter="\t",
            date_format="%d%m%y",
            encoding="cp1252",
            verified="Sage developer documentation, Sage 100 « Exemples mappage import texte »",
        ),
        Preset(
            "odoo",
            "Odoo (module import_account_move_csv)",
            (
                CsvColumn("DATE", "date"),
                CsvColumn("JAL", "journal_code"),
                CsvColumn("COMPTE", "account"),
                CsvColumn("PCE", "piece_ref"),
                CsvColumn("LIBELLE", "label"),
                CsvColumn("DEBIT", "debit"),
                CsvColumn("CREDIT", "credit"),
                CsvColumn("AUX NUM (FEC)", "auxiliary"),
            ),
            delimiter=",",
            decimal_comma=False,
            encoding="utf-8",
            verified="Odoo Apps page of the import_account_move_csv module (CSV format section)",
        ),
        Preset(
            "fec_like",
            "FEC columns (semicolon CSV, for spreadsheets)",
            (
                CsvColumn("JournalCode", "journal_code"),
                CsvColumn("JournalLib", "journal_label"),
                CsvColumn("EcritureNum", "entry_number"),
                CsvColumn("EcritureDate", "date"),
                CsvColumn("CompteNum", "account"),
                CsvColumn("CompteLib", "account_label"),
                CsvColumn("CompAuxNum", "auxiliary"),
                CsvColumn("CompAuxLib", "auxiliary_label"),
                CsvColumn("PieceRef", "piece_ref"),
                CsvColumn("PieceDate", "piece_date"),
                CsvColumn("EcritureLib", "label"),
                CsvColumn("Debit", "debit"),
                CsvColumn("Credit", "credit"),
                CsvColumn("EcritureLet", "lettering"),
                CsvColumn("DateLet", "lettering_date"),
                CsvColumn("ValidDate", "validation_date"),
            ),
            date_format="%Y%m%d",
        ),
    )
}


def preset_csv(entries: Sequence[PostedEntry], preset: str | Preset) -> bytes:
    p = PRESETS[preset] if isinstance(preset, str) else preset
    return journal_csv(
        entries,
        p.columns,
        delimiter=p.delimiter,
        decimal_comma=p.decimal_comma,
        date_format=p.date_format,
        encoding=p.encoding,
        header=p.header,
    )


def columns_from_mapping(mapping: Sequence[tuple[str, str]]) -> tuple[CsvColumn, ...]:
    """A configurable mapping ``[(header, field), …]`` as checked columns."""
    if not mapping:
        raise BusinessError("export.no_columns", _("Choose at least one column."), field="columns")
    return tuple(CsvColumn(header, name) for header, name in mapping)


# --- XLSX and plain tables ------------------------------------------------------------------


Cell = str | Decimal | date | int | None


def _xlsx_cell(value: Cell) -> object:
    if isinstance(value, str):
        return neutralise(value)
    return value


def table_xlsx(headers: Sequence[str], rows: Sequence[Sequence[Cell]], *, title: str = "") -> bytes:
    """An XLSX workbook of one sheet. Text starting like a formula is neutralised; amounts
    stay numbers (Decimal is written exactly as a number with two decimals shown)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = (title or "Export")[:31]
    ws.append([neutralise(h) for h in headers])
    for row in rows:
        ws.append([_xlsx_cell(v) for v in row])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, Decimal | float):
                cell.number_format = "#,##0.00"
            elif isinstance(cell.value, date):
                cell.number_format = "DD/MM/YYYY"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def journal_xlsx(
    entries: Sequence[PostedEntry], columns: Sequence[CsvColumn] = DEFAULT_COLUMNS
) -> bytes:
    getters = [JOURNAL_FIELDS[c.field] for c in columns]
    rows = [
        [get(posted, line) for get in getters] for posted in entries for line in posted.entry.lines
    ]
    return table_xlsx([c.header for c in columns], rows, title="Journal")


def table_csv(
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    delimiter: str = ";",
    decimal_comma: bool = True,
    date_format: str = "%d/%m/%Y",
) -> bytes:
    """A report as CSV (UTF-8 with BOM, formula injection neutralised)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([neutralise(h) for h in headers])
    for row in rows:
        writer.writerow(
            [
                _cell(v, decimal_comma=decimal_comma, date_format=date_format, currency="EUR")
                for v in row
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")
