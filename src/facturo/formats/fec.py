"""FEC (fichier des écritures comptables, art. L47 A and A47 A-1 LPF): writer and checker.

Format choices (``docs/accounting.md`` gives the sources):
- the 18 columns of A47 A-1 in their order, with their exact names on the first line;
- one separator character, tab (default) or ``|``; a separator, tab, CR or LF inside a
  text is replaced by a space, so no field can shift the columns;
- dates ``AAAAMMJJ``; amounts with a decimal comma, no thousands separator, always
  positive, in Debit or Credit (never both);
- EcritureNum: one continuous sequence over the file, in validation order;
- ISO-8859-15 by default (A47 A-1 allows ASCII, ISO 8859-15 or EBCDIC), UTF-8 on request;
  a character ISO-8859-15 cannot carry is either refused (``unrepresentable="error"``) or
  transliterated (typographic quotes and dashes to ASCII, accents kept when the letter
  exists in ISO-8859-15, else dropped from the base letter; anything left becomes ``?``);
- CRLF line ends by default (LF on request); file name ``<SIREN>FEC<AAAAMMJJ>.txt`` with
  the closing date of the fiscal year.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Literal

from facturo.core.errors import BusinessError, _
from facturo.core.ledger import PostedEntry
from facturo.core.money import ZERO, round_money

FEC_COLUMNS: tuple[str, ...] = (
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
)
_COL = {name: i for i, name in enumerate(FEC_COLUMNS)}
SEPARATORS = ("\t", "|")
ENCODINGS = ("iso-8859-15", "utf-8")

# Typographic characters French text is full of, and their ISO-8859-15 stand-ins.
_TRANSLITERATIONS = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "\u202f": " ",  # narrow no-break space (French thousands separator and before « : »)
    "\u2009": " ",
    "\u2022": "-",
    "\u2122": "TM",
}


def fec_filename(siren: str, closing_date: date) -> str:
    """``<SIREN>FEC<AAAAMMJJ>.txt``, the date being the fiscal year's closing date."""
    if not re.fullmatch(r"[0-9]{9}", siren):
        raise BusinessError(
            "fec.invalid_siren",
            _("The FEC file name needs the company's 9-digit SIREN, not “%(siren)s”."),
            field="siren",
            siren=siren,
        )
    return f"{siren}FEC{closing_date:%Y%m%d}.txt"


def format_amount(amount: Decimal, currency: str = "EUR") -> str:
    """``1234,50``: decimal comma, no thousands separator, the currency's decimals."""
    return format(round_money(amount, currency), "f").replace(".", ",")


def _date(value: date | None) -> str:
    return f"{value:%Y%m%d}" if value else ""


def transliterate(text: str, encoding: str = "iso-8859-15") -> str:
    """The text with every character ``encoding`` cannot carry replaced (see module doc)."""
    out = []
    for ch in text:
        try:
            ch.encode(encoding)
            out.append(ch)
            continue
        except UnicodeEncodeError:
            pass
        if ch in _TRANSLITERATIONS:
            out.append(_TRANSLITERATIONS[ch])
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        try:
            base.encode(encoding)
            out.append(base or "?")
        except UnicodeEncodeError:
            out.append("?")
    return "".join(out)


class _Encoder:
    def __init__(self, separator: str, encoding: str, unrepresentable: str):
        self.separator = separator
        self.encoding = encoding
        self.unrepresentable = unrepresentable
        # C0 and C1 controls (tab, CR, LF among them), line/paragraph separators, and the
        # field separator.
        self.unsafe = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029" + re.escape(separator) + "]")
        self.cache: dict[tuple[str, str], str] = {}

    def text(self, value: str, *, number: int, column: str) -> str:
        key = (value, column)
        cached = self.cache.get(key)
        if cached is None:
            cached = self.cache[key] = self._text(value, number=number, column=column)
        return cached

    def _text(self, value: str, *, number: int, column: str) -> str:
        # Control characters and the separator would shift the columns: a space instead.
        cleaned = self.unsafe.sub(" ", value).strip()
        try:
            cleaned.encode(self.encoding)
        except UnicodeEncodeError as exc:
            if self.unrepresentable == "error":
                bad = cleaned[exc.start]
                raise BusinessError(
                    "fec.unrepresentable",
                    _(
                        "Entry %(number)s, %(column)s: the character “%(char)s” (U+%(codepoint)s) "
                        "cannot be written in %(encoding)s."
                    ),
                    number=number,
                    column=column,
                    char=bad,
                    codepoint=f"{ord(bad):04X}",
                    encoding=self.encoding,
                ) from None
            cleaned = transliterate(cleaned, self.encoding)
        return cleaned


def write_fec(
    entries: Sequence[PostedEntry],
    *,
    separator: Literal["\t", "|"] = "\t",
    encoding: Literal["iso-8859-15", "utf-8"] = "iso-8859-15",
    line_ending: Literal["\r\n", "\n"] = "\r\n",
    unrepresentable: Literal["transliterate", "error"] = "transliterate",
    book_currency: str = "EUR",
) -> bytes:
    """The FEC of ``entries``, given in validation order with continuous numbers."""
    if separator not in SEPARATORS:
        raise BusinessError("fec.separator", _("The FEC separator is a tab or “|”."))
    if encoding not in ENCODINGS:
        raise BusinessError("fec.encoding", _("The FEC is written in ISO-8859-15 or UTF-8."))
    if line_ending not in ("\r\n", "\n"):
        raise BusinessError("fec.line_ending", _("Lines end with CRLF or LF."))
    enc = _Encoder(separator, encoding, unrepresentable)
    rows = [separator.join(FEC_COLUMNS)]
    previous: int | None = None
    for posted in entries:
        if previous is not None and posted.number != previous + 1:
            raise BusinessError(
                "fec.sequence_gap",
                _("Entry numbers must be continuous: %(number)s follows %(previous)s."),
                number=posted.number,
                previous=previous,
            )
        previous = posted.number
        e = posted.entry
        if e.currency != book_currency:
            raise BusinessError(
                "fec.foreign_currency",
                _("Entry %(number)s is in %(currency)s, the books in %(book)s."),
                number=posted.number,
                currency=e.currency,
                book=book_currency,
            )
        n = posted.number
        for line in e.lines:
            fields = (
                enc.text(e.journal.code, number=n, column="JournalCode"),
                enc.text(e.journal.label, number=n, column="JournalLib"),
                str(n),
                _date(e.date),
                line.account,
                enc.text(line.account_label, number=n, column="CompteLib"),
                enc.text(line.auxiliary, number=n, column="CompAuxNum"),
                enc.text(line.auxiliary_label, number=n, column="CompAuxLib"),
                enc.text(e.piece_ref, number=n, column="PieceRef"),
                _date(e.piece_date),
                enc.text(line.label or e.label, number=n, column="EcritureLib"),
                format_amount(line.debit, book_currency),
                format_amount(line.credit, book_currency),
                enc.text(line.lettering, number=n, column="EcritureLet"),
                _date(line.lettering_date),
                _date(posted.validation_date),
                "",  # Montantdevise: the books and the entries share one currency
                "",  # Idevise
            )
            rows.append(separator.join(fields))
    return (line_ending.join(rows) + line_ending).encode(encoding)


# --- checker ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FecIssue:
    line: int | None  # 1-based line of the file (1 = header); None for the whole file
    code: str
    message: str


@dataclass
class FecReport:
    errors: list[FecIssue] = field(default_factory=list)
    warnings: list[FecIssue] = field(default_factory=list)
    encoding: str = ""
    separator: str = ""
    lines: int = 0  # data lines, header excluded
    entries: int = 0
    total_debit: Decimal = ZERO
    total_credit: Decimal = ZERO
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def codes(self) -> list[tuple[int | None, str]]:
        return [(i.line, i.code) for i in self.errors]


_DATE = re.compile(r"[0-9]{8}")
_AMOUNT = re.compile(r"-?[0-9]+(,[0-9]+)?")
_FEC_ACCOUNT = re.compile(r"[1-8][0-9]{2}[0-9A-Za-z]*")
_NUMBER = re.compile(r"(.*?)([0-9]+)")
_CURRENCY = re.compile(r"[A-Z]{3}")
_C1 = re.compile("[\x80-\x9f]")
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


class _Collector:
    def __init__(self, report: FecReport, max_issues: int):
        self.report = report
        self.max_issues = max_issues

    def error(self, line: int | None, code: str, message: str) -> None:
        if len(self.report.errors) >= self.max_issues:
            self.report.truncated = True
            return
        self.report.errors.append(FecIssue(line, code, message))

    def warning(self, line: int | None, code: str, message: str) -> None:
        if len(self.report.warnings) < self.max_issues:
            self.report.warnings.append(FecIssue(line, code, message))


@functools.lru_cache(maxsize=4096)
def _parse_date(text: str) -> date | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _parse_amount(text: str) -> Decimal | None:
    if not _AMOUNT.fullmatch(text):
        return None
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover (the pattern already excludes it)
        return None


def _decode(raw: bytes, number: int, encoding: str, out: _Collector) -> str:
    """The line's text; a byte that does not belong is reported and replaced, so that the
    other checks still run on the line."""
    if encoding == "utf-8":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.error(
                number,
                "encoding",
                f"byte 0x{raw[exc.start]:02X} at column {exc.start + 1} is not valid UTF-8",
            )
            return raw.decode("utf-8", errors="replace")
    text = raw.decode("iso-8859-15")
    bad = _C1.search(text)
    if bad:
        out.error(
            number,
            "encoding",
            f"byte 0x{ord(bad.group()):02X} at column {bad.start() + 1} is a control code in "
            "ISO-8859-15 (Windows-1252 or UTF-8 text?)",
        )
        return _C1.sub("?", text)
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return text
        out.error(
            number, "encoding", "this line is UTF-8 text, but the file is read as ISO-8859-15"
        )
    return text


def check_fec(
    data: bytes,
    *,
    fiscal_year_start: date,
    fiscal_year_end: date,
    encoding: Literal["auto", "iso-8859-15", "utf-8"] = "auto",
    max_issues: int = 1000,
) -> FecReport:
    """Check a FEC file; every problem is reported with its line (1 = the header).

    Checks: encoding, header names and order, column count, the format of dates, amounts,
    account numbers and currency codes, entry dates within the fiscal year, one side per
    line, each entry balanced, the file balanced, EcritureNum continuous (per prefix, if
    numbers carry one) with each entry's lines together, EcritureLet and DateLet given
    together; lettered groups that do not balance and validation dates going backwards are
    warnings."""
    report = FecReport()
    out = _Collector(report, max_issues)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        if encoding == "iso-8859-15":
            out.error(1, "encoding", "a UTF-8 byte order mark starts an ISO-8859-15 file")
        encoding = "utf-8"
    if encoding == "auto":
        try:
            data.decode("utf-8")
            encoding = "iso-8859-15" if data.isascii() else "utf-8"
        except UnicodeDecodeError:
            encoding = "iso-8859-15"
    report.encoding = encoding
    raw_lines = data.splitlines()
    if not raw_lines:
        out.error(None, "empty", "the file is empty")
        return report
    header = _decode(raw_lines[0], 1, encoding, out)
    separator = "\t" if "\t" in header else "|" if "|" in header else ""
    if not separator:
        out.error(1, "separator", "the header has no tab or “|” separator")
        return report
    report.separator = separator
    names = header.split(separator)
    if tuple(names) != FEC_COLUMNS:
        if len(names) != len(FEC_COLUMNS):
            out.error(
                1, "columns", f"the header has {len(names)} columns, {len(FEC_COLUMNS)} expected"
            )
        for i, (got, want) in enumerate(zip(names, FEC_COLUMNS, strict=False)):
            if got != want:
                out.error(1, "header", f"column {i + 1} is “{got}”, expected “{want}”")
                break
        return report

    entry_balance: dict[tuple[str, str], Decimal] = {}
    entry_first_line: dict[tuple[str, str], int] = {}
    entry_date: dict[tuple[str, str], str] = {}
    order: list[tuple[str, str]] = []
    closed: set[tuple[str, str]] = set()
    current: tuple[str, str] | None = None
    lettering: dict[tuple[str, str, str], tuple[int, Decimal]] = {}
    last_valid: date | None = None
    for index, raw in enumerate(raw_lines[1:], start=2):
        if not raw.strip():
            out.error(index, "empty_line", "empty line")
            continue
        text = _decode(raw, index, encoding, out)
        report.lines += 1
        if _CONTROL.search(text.replace(separator, "")):
            out.error(index, "control_character", "a control character inside a field")
        cols = text.split(separator)
        if len(cols) != len(FEC_COLUMNS):
            out.error(index, "columns", f"{len(cols)} columns, {len(FEC_COLUMNS)} expected")
            continue

        def col(name: str, cols: list[str] = cols) -> str:
            return cols[_COL[name]]

        for name in ("JournalCode", "JournalLib", "EcritureNum", "CompteLib", "PieceRef",
                     "EcritureLib"):  # fmt: skip
            if not col(name).strip():
                out.error(index, "missing", f"{name} is empty")
        entry_day = _parse_date(col("EcritureDate"))
        if entry_day is None:
            out.error(index, "date_format", f"EcritureDate “{col('EcritureDate')}” is not AAAAMMJJ")
        elif not fiscal_year_start <= entry_day <= fiscal_year_end:
            out.error(
                index,
                "date_outside_year",
                f"EcritureDate {entry_day:%Y-%m-%d} is outside the fiscal year "
                f"{fiscal_year_start:%Y-%m-%d} – {fiscal_year_end:%Y-%m-%d}",
            )
        for name in ("PieceDate", "ValidDate"):
            if _parse_date(col(name)) is None:
                out.error(index, "date_format", f"{name} “{col(name)}” is not AAAAMMJJ")
        valid = _parse_date(col("ValidDate"))
        if valid and last_valid and valid < last_valid:
            out.warning(index, "validation_order", "ValidDate goes back in time")
        last_valid = valid or last_valid
        if not _FEC_ACCOUNT.fullmatch(col("CompteNum")):
            out.error(
                index,
                "account",
                f"CompteNum “{col('CompteNum')}” does not start with 3 digits of a PCG account",
            )
        if bool(col("CompAuxNum").strip()) != bool(col("CompAuxLib").strip()):
            out.error(index, "auxiliary", "CompAuxNum and CompAuxLib go together")
        debit, credit = _parse_amount(col("Debit")), _parse_amount(col("Credit"))
        for name, value in (("Debit", debit), ("Credit", credit)):
            if value is None:
                out.error(
                    index,
                    "amount_format",
                    f"{name} “{col(name)}” is not an amount with a decimal comma",
                )
            elif value < 0:
                out.error(index, "negative_amount", f"{name} is negative")
        debit, credit = debit or ZERO, credit or ZERO
        if debit and credit:
            out.error(index, "both_sides", "a line has both a debit and a credit")
        report.total_debit += debit
        report.total_credit += credit
        let, date_let = col("EcritureLet").strip(), col("DateLet").strip()
        if bool(let) != bool(date_let):
            out.error(index, "lettering", "EcritureLet and DateLet go together")
        elif date_let and _parse_date(date_let) is None:
            out.error(index, "date_format", f"DateLet “{date_let}” is not AAAAMMJJ")
        if let:
            key3 = (col("CompteNum"), col("CompAuxNum"), let)
            first, total = lettering.get(key3, (index, ZERO))
            lettering[key3] = (first, total + debit - credit)
        amount_currency, currency = col("Montantdevise").strip(), col("Idevise").strip()
        if bool(amount_currency) != bool(currency):
            out.error(index, "currency", "Montantdevise and Idevise go together")
        elif currency and (
            not _CURRENCY.fullmatch(currency) or _parse_amount(amount_currency) is None
        ):
            out.error(index, "currency", "Idevise is an ISO 4217 code, Montantdevise an amount")

        key = (col("JournalCode"), col("EcritureNum"))
        if key != current:
            if key in closed or key in entry_balance:
                out.error(
                    index,
                    "entry_split",
                    f"the lines of entry {key[1]} are not together (it started on line "
                    f"{entry_first_line[key]})",
                )
            else:
                order.append(key)
                entry_first_line[key] = index
                entry_date[key] = col("EcritureDate")
            if current is not None:
                closed.add(current)
            current = key
        elif col("EcritureDate") != entry_date.get(key):
            out.error(index, "entry_date", f"entry {key[1]} has lines on different dates")
        entry_balance[key] = entry_balance.get(key, ZERO) + debit - credit

    report.entries = len(order)
    for key in order:
        if entry_balance[key]:
            out.error(
                entry_first_line[key],
                "unbalanced_entry",
                f"entry {key[1]} (journal {key[0]}) does not balance: debit − credit = "
                f"{format_amount(entry_balance[key])}",
            )
    # EcritureNum: continuous, per prefix when numbers carry one (e.g. VE000012).
    last: dict[str, int] = {}
    seen_numbers: set[str] = set()
    for key in order:
        num = key[1]
        if num in seen_numbers:
            out.error(
                entry_first_line[key],
                "duplicate_number",
                f"EcritureNum {num} is used by two entries",
            )
            continue
        seen_numbers.add(num)
        m = _NUMBER.fullmatch(num)
        if not m:
            out.error(entry_first_line[key], "number_format", f"EcritureNum “{num}” has no number")
            continue
        prefix, n = m.group(1), int(m.group(2))
        if prefix in last and n != last[prefix] + 1:
            if n <= last[prefix]:
                message = f"EcritureNum {num} comes after {prefix}{last[prefix]}"
            else:
                message = (
                    f"EcritureNum jumps from {prefix}{last[prefix]} to {num} "
                    f"({n - last[prefix] - 1} missing)"
                )
            out.error(entry_first_line[key], "sequence_gap", message)
        last[prefix] = n
    if report.total_debit != report.total_credit:
        out.error(
            None,
            "unbalanced_file",
            f"the file does not balance: debit {format_amount(report.total_debit)}, "
            f"credit {format_amount(report.total_credit)}",
        )
    for (account, aux, let), (first, total) in lettering.items():
        if total:
            out.warning(
                first,
                "lettering_unbalanced",
                f"lettering {let} on {account} {aux} leaves {format_amount(total)}".replace(
                    "  ", " "
                ),
            )
    return report
