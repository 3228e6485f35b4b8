"""formats.fec: the writer's exact format, and the checker catching each kind of defect on
the right line (line 1 is the header)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal as D

import pytest

from facturo.core.errors import BusinessError
from facturo.core.ledger import PostedEntry, number_entries
from facturo.core.ledger_postings import (
    CustomerAccount,
    ReceiptsVat,
    Settlement,
    bank_fee_entry,
    document_entry,
    payment_entry,
)
from facturo.formats.fec import FEC_COLUMNS, check_fec, fec_filename, transliterate, write_fec

from .test_ledger_support import L, make_doc

START, END = date(2026, 1, 1), date(2026, 12, 31)
C = CustomerAccount("C001", "Boulangerie Martin", "FR")


def posted(customer: CustomerAccount = C) -> list[PostedEntry]:
    invoice = document_entry(make_doc([L(D(1000))]), customer)
    assert invoice is not None
    payment = payment_entry(
        reference="VIR-1",
        received_on=date(2026, 3, 20),
        amount=D("1200.00"),
        customer=customer,
        settlements=[
            Settlement("FA-2026-00001", D("1200.00"), ReceiptsVat(D(1200), ((D(20), D(200)),)))
        ],
    )
    fee = bank_fee_entry(reference="FRAIS-03", on=date(2026, 3, 31), amount=D("12.00"))
    return number_entries([invoice, payment, fee], validated_on=date(2026, 4, 1))


def lines_of(data: bytes) -> list[str]:
    return data.decode("iso-8859-15").split("\r\n")[:-1]


def check(data: bytes, **kw: object) -> list[tuple[int | None, str]]:
    return check_fec(data, fiscal_year_start=START, fiscal_year_end=END, **kw).codes()  # type: ignore[arg-type]


def rebuild(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("iso-8859-15")


# --- writer ------------------------------------------------------------------------------------


def test_written_file_has_the_a47_a1_layout() -> None:
    data = write_fec(posted())
    lines = lines_of(data)
    assert lines[0] == "\t".join(FEC_COLUMNS)
    assert len(FEC_COLUMNS) == 18
    assert lines[1].split("\t") == [
        "VE", "Ventes", "1", "20260302", "411", "Clients", "C001", "Boulangerie Martin",
        "FA-2026-00001", "20260302", "Facture FA-2026-00001 Boulangerie Martin",
        "1200,00", "0,00", "", "", "20260401", "", "",
    ]  # fmt: skip
    assert lines[2].split("\t")[4:6] == ["7061", "Prestations de services - France"]
    assert [line.split("\t")[2] for line in lines[1:]] == ["1"] * 3 + ["2"] * 4 + ["3"] * 2
    assert data.endswith(b"\r\n")
    report = check_fec(data, fiscal_year_start=START, fiscal_year_end=END)
    assert report.ok
    assert (report.entries, report.lines, report.separator) == (3, 9, "\t")
    assert report.total_debit == D("2612.00")


def test_pipe_separator_utf8_and_lf() -> None:
    data = write_fec(posted(), separator="|", encoding="utf-8", line_ending="\n")
    text = data.decode("utf-8")
    assert "\r" not in text
    assert text.splitlines()[0] == "|".join(FEC_COLUMNS)
    report = check_fec(data, fiscal_year_start=START, fiscal_year_end=END)
    assert report.ok
    assert (report.separator, report.encoding) == ("|", "utf-8")


def test_separators_and_line_breaks_inside_labels_are_neutralised() -> None:
    nasty = CustomerAccount("C002", "A|B\tC\r\nD", "FR")
    for sep in ("\t", "|"):
        data = write_fec(posted(nasty), separator=sep)  # type: ignore[arg-type]
        assert check_fec(data, fiscal_year_start=START, fiscal_year_end=END).ok
        assert "A|B C  D".replace("|", " " if sep == "|" else "|") in data.decode("iso-8859-15")


def test_characters_outside_iso_8859_15_are_transliterated_or_refused() -> None:
    assert transliterate("L’été “chaud” – Öğrenci 😀 œuvre €") == (
        'L\'été "chaud" - Ögrenci ? œuvre €'
    )
    customer = CustomerAccount("C003", "Öğrenci “Ltd”", "FR")
    data = write_fec(posted(customer))
    assert 'Ögrenci "Ltd"' in data.decode("iso-8859-15")
    assert check_fec(data, fiscal_year_start=START, fiscal_year_end=END).ok
    with pytest.raises(BusinessError) as exc:
        write_fec(posted(customer), unrepresentable="error")
    assert exc.value.code == "fec.unrepresentable"
    assert "U+011F" in exc.value.message
    assert "CompAuxLib" in exc.value.message
    utf8 = write_fec(posted(customer), encoding="utf-8")
    assert "Öğrenci “Ltd”" in utf8.decode("utf-8")


def test_writer_refuses_a_gap_and_the_file_name() -> None:
    entries = posted()
    with pytest.raises(BusinessError) as exc:
        write_fec([entries[0], replace(entries[1], number=5)])
    assert exc.value.code == "fec.sequence_gap"
    assert fec_filename("732829320", date(2026, 12, 31)) == "732829320FEC20261231.txt"
    with pytest.raises(BusinessError):
        fec_filename("73282932", date(2026, 12, 31))


# --- checker -----------------------------------------------------------------------------------


def _set(lines: list[str], line_no: int, column: str, value: str) -> None:
    cols = lines[line_no - 1].split("\t")
    cols[FEC_COLUMNS.index(column)] = value
    lines[line_no - 1] = "\t".join(cols)


def test_checker_finds_an_unbalanced_entry_on_its_first_line() -> None:
    lines = lines_of(write_fec(posted()))
    _set(lines, 6, "Credit", "199,99")  # a VAT line of entry 2 (lines 5-8)
    assert check(rebuild(lines)) == [(5, "unbalanced_entry"), (None, "unbalanced_file")]


def test_checker_finds_a_gap_in_the_numbering() -> None:
    lines = lines_of(write_fec(posted()))
    _set(lines, 9, "EcritureNum", "4")  # entry 3 (lines 9-10) renumbered 4: 3 is missing
    _set(lines, 10, "EcritureNum", "4")
    assert check(rebuild(lines)) == [(9, "sequence_gap")]


def test_checker_finds_dates_outside_the_year_and_bad_dates() -> None:
    lines = lines_of(write_fec(posted()))
    _set(lines, 9, "EcritureDate", "20270105")
    _set(lines, 10, "EcritureDate", "20270105")
    _set(lines, 3, "PieceDate", "2026-03-02")
    _set(lines, 4, "ValidDate", "20260231")
    assert check(rebuild(lines)) == [
        (3, "date_format"),
        (4, "date_format"),
        (9, "date_outside_year"),
        (10, "date_outside_year"),
    ]


def test_checker_finds_bad_encodings_by_line() -> None:
    data = write_fec(posted())
    lines = data.split(b"\r\n")
    lines[2] = lines[2].replace(b"Prestations", "Prést".encode())  # UTF-8 in a Latin-9 file
    lines[3] = lines[3].replace(b"Ventes", b"V\x92ntes")  # Windows-1252 quote: C1 control
    bad = b"\r\n".join(lines)
    assert check(bad, encoding="iso-8859-15") == [(3, "encoding"), (4, "encoding")]
    assert check(bad) == [(3, "encoding"), (4, "encoding")]  # not valid UTF-8: read as Latin-9
    utf8 = write_fec(posted(), encoding="utf-8").split(b"\r\n")
    utf8[5] = utf8[5].replace(b"Clients", b"Cli\xe9nts")  # a Latin-1 byte in a UTF-8 file
    assert check(b"\r\n".join(utf8), encoding="utf-8") == [(6, "encoding")]


def test_checker_finds_wrong_column_counts_and_header() -> None:
    lines = lines_of(write_fec(posted()))
    lines[2] += "\textra"
    lines[6] = "\t".join(lines[6].split("\t")[:17])
    assert check(rebuild(lines))[:2] == [(3, "columns"), (7, "columns")]
    header = lines_of(write_fec(posted()))
    header[0] = header[0].replace("Montantdevise", "MontantDevise")
    assert check(rebuild(header)) == [(1, "header")]
    header[0] = "JournalCode;JournalLib"
    assert check(rebuild(header)) == [(1, "separator")]


def test_checker_finds_bad_accounts_amounts_and_lettering() -> None:
    lines = lines_of(write_fec(posted()))
    _set(lines, 2, "CompteNum", "ABC")
    _set(lines, 3, "CompteNum", "41")
    _set(lines, 4, "Debit", "1.000,00")
    _set(lines, 5, "EcritureLet", "AA")
    _set(lines, 6, "CompAuxNum", "")
    _set(lines, 7, "Debit", "-1,00")
    _set(lines, 8, "Debit", "1,00")
    codes = check(rebuild(lines))
    assert (2, "account") in codes
    assert (3, "account") in codes
    assert (4, "amount_format") in codes
    assert (5, "lettering") in codes
    assert (6, "auxiliary") in codes
    assert (7, "negative_amount") in codes
    assert (8, "both_sides") in codes


def test_checker_finds_split_entries_and_lettering_that_does_not_balance() -> None:
    lines = lines_of(write_fec(posted()))
    lines[3], lines[4] = lines[4], lines[3]  # a line of entry 2 inside entry 1
    codes = check(rebuild(lines))
    assert (5, "entry_split") in codes
    lines = lines_of(write_fec(posted()))
    _set(lines, 2, "EcritureLet", "A")
    _set(lines, 2, "DateLet", "20260320")
    report = check_fec(rebuild(lines), fiscal_year_start=START, fiscal_year_end=END)
    assert report.ok
    assert [(w.line, w.code) for w in report.warnings] == [(2, "lettering_unbalanced")]
    _set(lines, 6, "EcritureLet", "A")  # the payment's 411 line: the letter now balances
    _set(lines, 6, "DateLet", "20260320")
    assert check_fec(rebuild(lines), fiscal_year_start=START, fiscal_year_end=END).warnings == []


def test_lettered_lines_are_written_and_an_empty_file_is_reported() -> None:
    entries = posted()
    first = entries[0]
    lettered = replace(
        first,
        entry=replace(
            first.entry,
            lines=(
                replace(first.entry.lines[0], lettering="AA", lettering_date=date(2026, 3, 20)),
                *first.entry.lines[1:],
            ),
        ),
    )
    data = write_fec([lettered, *entries[1:]])
    assert lines_of(data)[1].split("\t")[13:16] == ["AA", "20260320", "20260401"]
    assert check(b"") == [(None, "empty")]
