"""CSV exports of online banking, read through a declarative column mapping.

One ``CsvMapping`` per bank layout (saved per bank account by the banking app). Columns are
named by their header text; numbers may use a decimal comma and a thousands separator;
debits and credits may be two columns or one signed amount; files in cp1252/latin-1 or
UTF-8 with or without BOM; the delimiter is sniffed when not given.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from facturo.core.bank import (
    RejectedRow,
    Statement,
    StatementError,
    StatementLine,
    with_fingerprints,
)

from ._common import DEFAULT_MAX_BYTES, Rows, check_currency, check_size, decimal_amount


@dataclass(frozen=True)
class CsvMapping:
    date_column: str
    amount_column: str = ""  # one signed amount …
    debit_column: str = ""  # … or two columns
    credit_column: str = ""
    debit_is_negative: bool = False  # True when the debit column already has a minus sign
    value_date_column: str = ""
    counterparty_name_column: str = ""
    counterparty_iban_column: str = ""
    remittance_columns: tuple[str, ...] = ()
    end_to_end_id_column: str = ""
    bank_reference_column: str = ""
    currency_column: str = ""
    currency: str = "EUR"
    date_format: str = "%d/%m/%Y"
    decimal_separator: str = ","
    thousands_separator: str = ""  # "", " ", ".", "'", "\u00a0"
    encoding: str = "utf-8"  # a BOM is removed whatever the encoding says
    delimiter: str = ""  # "" = sniff among ; , tab |
    skip_lines: int = 0  # preamble lines (account name, period…) before the header

    def __post_init__(self) -> None:
        if bool(self.amount_column) == bool(self.debit_column or self.credit_column):
            raise ValueError("a mapping needs either amount_column or debit/credit columns")

    def columns(self) -> list[str]:
        named = [
            self.date_column, self.amount_column, self.debit_column, self.credit_column,
            self.value_date_column, self.counterparty_name_column,
            self.counterparty_iban_column, self.end_to_end_id_column,
            self.bank_reference_column, self.currency_column, *self.remittance_columns,
        ]  # fmt: skip
        return [c for c in named if c]


def _decode(data: bytes, mapping: CsvMapping, source: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        encoding = "utf-8"
    else:
        encoding = mapping.encoding
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StatementError(
            source,
            f"line {line}",
            f"byte 0x{data[exc.start]:02X} is not valid {encoding}: the file is probably in "
            "another encoding (cp1252/latin-1 for many French bank exports); fix the mapping",
            code="statement.encoding",
        ) from None
    except LookupError:
        raise StatementError(source, "mapping", f"unknown encoding {encoding!r}") from None


def _delimiter(sample: str, mapping: CsvMapping) -> str:
    if mapping.delimiter:
        return mapping.delimiter
    try:
        return csv.Sniffer().sniff(sample, delimiters=";,\t|").delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        return max(";,\t|", key=header.count)


class _Row:
    def __init__(self, mapping: CsvMapping, source: str, where: str, values: dict[str, str]):
        self.m, self.source, self.where, self.values = mapping, source, where, values

    def get(self, column: str) -> str:
        return (self.values.get(column) or "").strip() if column else ""

    def amount(self, column: str) -> Decimal | None:
        raw = self.get(column)
        if not raw:
            return None
        text = raw.replace("\u00a0", "").replace("\u202f", "").replace("€", "").strip()
        if self.m.thousands_separator:
            text = text.replace(self.m.thousands_separator.replace("\u00a0", ""), "")
            text = text.replace(self.m.thousands_separator, "")
        text = text.replace(" ", "")
        if self.m.decimal_separator != ".":
            if "." in text and self.m.thousands_separator != ".":
                raise StatementError(
                    self.source,
                    f"{self.where}, column {column!r}",
                    f"expected a decimal comma amount such as 1 234,56, found {raw!r} "
                    "(is the mapping's decimal separator right?)",
                )
            text = text.replace(self.m.decimal_separator, ".")
        if text.startswith("(") and text.endswith(")"):
            text = "-" + text[1:-1]
        if text.endswith("-"):
            text = "-" + text[:-1]
        if not re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
            raise StatementError(
                self.source,
                f"{self.where}, column {column!r}",
                f"expected an amount (decimal separator {self.m.decimal_separator!r}, thousands "
                f"separator {self.m.thousands_separator!r}), found {raw!r}",
            )
        return decimal_amount(text, self.source, self.where)

    def date(self, column: str, required: bool) -> date | None:
        raw = self.get(column)
        if not raw:
            if required:
                raise StatementError(
                    self.source,
                    f"{self.where}, column {column!r}",
                    "expected a date, found nothing",
                )
            return None
        try:
            return datetime.strptime(raw, self.m.date_format).date()  # noqa: DTZ007 (a date)
        except ValueError:
            raise StatementError(
                self.source,
                f"{self.where}, column {column!r}",
                f"expected a date like {self.m.date_format!r}, found {raw!r}",
            ) from None


def _line(row: _Row) -> StatementLine:
    m = row.m
    if m.amount_column:
        amount = row.amount(m.amount_column)
        if amount is None:
            raise StatementError(
                row.source, row.where, f"expected an amount in {m.amount_column!r}"
            )
    else:
        debit = row.amount(m.debit_column)
        credit = row.amount(m.credit_column)
        if (debit is None) == (credit is None):
            raise StatementError(
                row.source,
                row.where,
                f"expected exactly one of {m.debit_column!r} and {m.credit_column!r} filled",
            )
        amount = credit if credit is not None else (debit if m.debit_is_negative else -debit)  # type: ignore[operator]
        assert amount is not None
    currency = row.get(m.currency_column) or m.currency
    remittance = " ".join(row.get(c) for c in m.remittance_columns if row.get(c))
    return StatementLine(
        booking_date=row.date(m.date_column, True),  # type: ignore[arg-type]
        value_date=row.date(m.value_date_column, False),
        amount=amount,
        currency=check_currency(currency, row.source, row.where),
        counterparty_name=row.get(m.counterparty_name_column),
        counterparty_iban=row.get(m.counterparty_iban_column).replace(" ", "").upper(),
        remittance_unstructured=remittance,
        end_to_end_id=row.get(m.end_to_end_id_column),
        bank_reference=row.get(m.bank_reference_column),
        position=row.where,
    )


def parse_csv(
    data: bytes,
    mapping: CsvMapping,
    source: str = "",
    *,
    account: str = "",
    import_valid_lines: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Statement:
    check_size(data, source, max_bytes)
    text = _decode(data, mapping, source)
    if "\x00" in text:
        raise StatementError(source, "file", "NUL characters: this is not a text CSV file")
    all_lines = text.splitlines(keepends=True)
    body = "".join(all_lines[mapping.skip_lines :])
    delimiter = _delimiter(body[:4096], mapping)
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise StatementError(
            source, f"line {mapping.skip_lines + 1}", "expected a header"
        ) from None
    missing = [c for c in mapping.columns() if c not in header]
    if missing:
        raise StatementError(
            source,
            f"line {mapping.skip_lines + 1} (header)",
            f"expected column(s) {', '.join(map(repr, missing))} of the mapping; the header has "
            f"{', '.join(map(repr, header))} (delimiter {delimiter!r}): "
            "wrong mapping for this file?",
            code="statement.wrong_mapping",
        )
    rows = Rows(source, import_valid_lines)
    lines: list[StatementLine] = []
    try:
        for raw in reader:
            line_no = mapping.skip_lines + reader.line_num
            if not any(cell.strip() for cell in raw):
                continue
            where = f"line {line_no}"
            if len(raw) != len(header):
                rows.reject(
                    StatementError(
                        source, where, f"expected {len(header)} fields, found {len(raw)}"
                    ),
                    delimiter.join(raw),
                )
                continue
            try:
                lines.append(
                    _line(_Row(mapping, source, where, dict(zip(header, raw, strict=True))))
                )
            except StatementError as exc:
                rows.reject(exc, delimiter.join(raw))
    except csv.Error as exc:
        raise StatementError(source, f"line {reader.line_num}", f"malformed CSV: {exc}") from None
    if not lines and not rows.rejected:
        raise StatementError(source, "file", "expected at least one transaction row")
    currencies = {line.currency for line in lines}
    return Statement(
        source=source,
        format="csv",
        account_iban=account,
        currency=currencies.pop() if len(currencies) == 1 else mapping.currency,
        lines=with_fingerprints(account, lines),
        rejected=tuple(rows.rejected),
        notes=("CSV exports carry no balances: balances not checked",),
    )


__all__ = ["CsvMapping", "RejectedRow", "parse_csv"]
