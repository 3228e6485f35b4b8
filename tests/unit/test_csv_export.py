"""formats.csv_export: configurable columns, French number/date formats, formula injection."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from facturo.core.errors import BusinessError
from facturo.core.ledger import PostedEntry, number_entries
from facturo.core.ledger_postings import CustomerAccount, document_entry
from facturo.formats.csv_export import CsvColumn, journal_csv, neutralise

from .test_ledger_support import L, make_doc


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+33 6 12", "'+33 6 12"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Boulangerie", "Boulangerie"),
        ("", ""),
    ],
)
def test_neutralise(cell: str, expected: str) -> None:
    assert neutralise(cell) == expected


def test_journal_csv_with_default_and_custom_columns() -> None:
    customer = CustomerAccount("C001", "=cmd|' /C calc'!A0", "FR")
    entry = document_entry(make_doc([L(D("1000.5"))]), customer)
    assert entry is not None
    posted = number_entries([entry], validated_on=date(2026, 4, 1))
    data = journal_csv(posted)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = data.decode("utf-8-sig").split("\r\n")
    assert rows[0] == (
        "Journal;N° écriture;Date;Compte;Libellé compte;Compte auxiliaire;Pièce;Libellé;"
        "Débit;Crédit;Lettrage"
    )
    assert rows[1].startswith("VE;1;02/03/2026;411;Clients;C001;FA-2026-00001;")
    assert rows[1].endswith(";1200,60;0,00;")
    custom = journal_csv(
        posted,
        [CsvColumn("Tiers", "auxiliary_label"), CsvColumn("Solde", "balance"),
         CsvColumn("Date", "date")],
        delimiter=",",
        decimal_comma=False,
        date_format="%Y-%m-%d",
        encoding="utf-8",
        line_terminator="\n",
    )  # fmt: skip
    lines = custom.decode().splitlines()
    assert lines[1] == "'=cmd|' /C calc'!A0,1200.60,2026-03-02"
    assert lines[2] == ",-1000.50,2026-03-02"  # our own negative number is not a formula
    with pytest.raises(BusinessError):
        CsvColumn("X", "nope")
    with pytest.raises(BusinessError):
        journal_csv(posted, delimiter=",")


def _posted() -> list[PostedEntry]:
    customer = CustomerAccount("C001", "=cmd|' /C calc'!A0", "FR")
    entry = document_entry(make_doc([L(D("1000.5"))]), customer)
    assert entry is not None
    return number_entries([entry], validated_on=date(2026, 4, 1))


def test_presets_sage100_and_odoo() -> None:
    from facturo.formats.csv_export import preset_csv

    sage = preset_csv(_posted(), "sage100").decode("cp1252").splitlines()
    assert sage[0].split("\t") == ["Jou", "Date", "N°", "Général", "Tiers", "Libellé",
                                   "Règlement", "Echéance", "Débit", "Crédit"]  # fmt: skip
    first = sage[1].split("\t")
    assert first[0] == "VE"
    assert first[1] == make_doc([L(D(1))]).issue_date.strftime("%d%m%y")
    assert first[3:5] == ["411", "C001"]
    assert first[8:] == ["1200,60", "0,00"]
    odoo = preset_csv(_posted(), "odoo").decode("utf-8").splitlines()
    assert odoo[0] == "DATE,JAL,COMPTE,PCE,LIBELLE,DEBIT,CREDIT,AUX NUM (FEC)"
    assert ",1200.60,0.00,C001" in odoo[1]


def test_xlsx_keeps_amounts_as_numbers_and_neutralises_formulas() -> None:
    import io

    from openpyxl import load_workbook

    from facturo.formats.csv_export import DEFAULT_COLUMNS, CsvColumn, journal_xlsx

    columns = (*DEFAULT_COLUMNS, CsvColumn("Tiers", "auxiliary_label"))
    sheet = load_workbook(io.BytesIO(journal_xlsx(_posted(), columns))).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Journal"
    assert rows[1][-1] == "'=cmd|' /C calc'!A0"
    assert rows[1][8] == 1200.6  # a number the spreadsheet can add up
