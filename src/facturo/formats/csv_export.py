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
