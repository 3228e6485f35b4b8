"""Bank statement files in, ``core.bank`` types out: CAMT.053/054, OFX, MT940, CSV.

``parse_statement_file`` sniffs the format; each parser can also be called directly. Every
error is a ``StatementError`` naming the file, the line or element, and what was expected.
With ``import_valid_lines=True`` bad rows are returned in ``Statement.rejected`` instead.
"""

from __future__ import annotations

from facturo.core.bank import Statement, StatementError

from ._common import DEFAULT_MAX_BYTES
from .camt import parse_camt
from .csvfile import CsvMapping, parse_csv
from .ofx import parse_ofx
from .swift_mt940 import parse_mt940


def sniff_format(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")):
        return "camt"  # UTF-16 XML: the CAMT reader refuses it with the reason
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if b"urn:iso:std:iso:20022:tech:xsd:camt" in head or (
        head.startswith(b"<?xml") and (b"<Document" in head)
    ):
        return "camt"
    if b"OFXHEADER" in head[:200] or b"<OFX>" in head.upper():
        return "ofx"
    if head.startswith((b":20:", b"{1:")) or b"\n:20:" in head:
        return "mt940"
    return "csv"


def parse_statement_file(
    data: bytes,
    source: str = "",
    *,
    csv_mapping: CsvMapping | None = None,
    account: str = "",
    import_valid_lines: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Statement]:
    kind = sniff_format(data)
    if kind == "camt":
        return parse_camt(data, source, import_valid_lines=import_valid_lines, max_bytes=max_bytes)
    if kind == "ofx":
        return parse_ofx(data, source, import_valid_lines=import_valid_lines, max_bytes=max_bytes)
    if kind == "mt940":
        return parse_mt940(data, source, import_valid_lines=import_valid_lines, max_bytes=max_bytes)
    if csv_mapping is None:
        raise StatementError(
            source, "file", "not CAMT, OFX or MT940: a CSV file needs a column mapping"
        )
    return [
        parse_csv(
            data,
            csv_mapping,
            source,
            account=account,
            import_valid_lines=import_valid_lines,
            max_bytes=max_bytes,
        )
    ]


__all__ = [
    "CsvMapping",
    "StatementError",
    "parse_camt",
    "parse_csv",
    "parse_mt940",
    "parse_ofx",
    "parse_statement_file",
    "sniff_format",
]
