"""formats.statements on the hand-written samples of tests/data/statements (see its README)."""

from __future__ import annotations

import re
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest

from facturo.core.bank import StatementError, StatementLine, with_fingerprints
from facturo.formats.statements import CsvMapping, parse_csv, parse_statement_file
from facturo.formats.statements.camt import VERSIONS

DATA = Path(__file__).parents[1] / "data" / "statements"
FR = CsvMapping(
    date_column="Date", value_date_column="Date de valeur", debit_column="Débit",
    credit_column="Crédit", remittance_columns=("Libellé",), encoding="cp1252",
    thousands_separator=" ", skip_lines=3,
)  # fmt: skip
DE = CsvMapping(
    date_column="Buchungstag", value_date_column="Valuta", amount_column="Betrag",
    currency_column="Währung", counterparty_name_column="Auftraggeber/Empfänger",
    counterparty_iban_column="IBAN", remittance_columns=("Verwendungszweck",),
    date_format="%d.%m.%Y", thousands_separator=".",
)  # fmt: skip
EN = CsvMapping(
    date_column="Date", debit_column="Paid out", credit_column="Paid in",
    remittance_columns=("Description", "Reference"), date_format="%Y-%m-%d",
    decimal_separator=".", thousands_separator=",", currency="GBP",
)  # fmt: skip


def parse(name: str, **kw: object):  # type: ignore[no-untyped-def]
    return parse_statement_file((DATA / name).read_bytes(), name, **kw)  # type: ignore[arg-type]


def test_camt053_v02_lines_balances_and_pending_entry() -> None:
    [stmt] = parse("camt053_v02.xml")
    assert stmt.format == "camt.053.001.02"
    assert stmt.account_iban == "FR7630006000011234567890189"
    assert stmt.balance_checked
    assert [line.amount for line in stmt.lines] == [
        Decimal("1440.00"), Decimal("-350.00"), Decimal("550.00"), Decimal("-5.50")
    ]  # fmt: skip
    first = stmt.lines[0]
    assert first.counterparty_name == "ACME INDUSTRIE SAS"
    assert first.counterparty_iban == "FR1420041010050500013M02606"
    assert first.remittance_structured == "RF89F2024000123"
    assert first.end_to_end_id == "ACME-PAY-88123"
    assert first.bank_reference == "0503240001234567"
    assert "PDNG" in stmt.notes[0]
    assert len({line.fingerprint for line in stmt.lines}) == 4


def test_camt053_v08_batch_is_split_per_transaction() -> None:
    [stmt] = parse("camt053_v08_batch.xml")
    assert [(str(x.amount), x.counterparty_name, x.bank_reference) for x in stmt.lines] == [
        ("2400.00", "Müller & Söhne GmbH", "20240412-TX-0001"),
        ("1200.00", "Boulangerie Léa", "20240412-TX-0002"),
    ]
    assert stmt.opening_balance is not None
    assert stmt.opening_balance.amount == Decimal("-250.00")
    assert stmt.balance_checked


@pytest.mark.parametrize("version", VERSIONS)
def test_every_camt_version_is_read(version: str) -> None:
    """.02–.05 files use the .02 layout (Sts as a code), .06–.08 the .08 layout (Sts/Cd,
    Dbtr/Pty); only the namespace differs between those, as in the message definitions."""
    kind = version[:8]
    if kind == "camt.053":
        sample = "camt053_v02.xml" if version < "camt.053.001.06" else "camt053_v08_batch.xml"
    else:
        sample = "camt054_v08_credit_notification.xml"
    text = (DATA / sample).read_text()
    text = re.sub(r"camt\.05\d\.001\.0\d", version, text)
    if kind == "camt.053" and "BkToCstmrDbtCdtNtfctn" in text:
        pytest.skip("not applicable")
    [stmt] = parse_statement_file(text.encode(), sample)
    assert stmt.format == version
    assert stmt.lines


def test_camt053_and_camt054_of_one_transaction_have_one_fingerprint() -> None:
    [statement] = parse("camt053_v02.xml")
    [notification] = parse("camt054_v08_credit_notification.xml")
    assert notification.lines[0].fingerprint == statement.lines[0].fingerprint


def test_same_file_twice_gives_the_same_fingerprints() -> None:
    for name in ("camt053_v02.xml", "mt940_fr_slash_tags.sta", "ofx_v102_sgml.ofx"):
        a = [x.fingerprint for s in parse(name) for x in s.lines]
        b = [x.fingerprint for s in parse(name) for x in s.lines]
        assert a == b
        assert len(set(a)) == len(a)


def test_identical_lines_without_references_stay_distinct() -> None:
    from datetime import date

    line = StatementLine(date(2024, 3, 1), Decimal("10.00"), "EUR", remittance_unstructured="X")
    one, two = with_fingerprints("FR76", [line, line])
    assert one.fingerprint != two.fingerprint
    assert with_fingerprints("FR76", [line, line]) == (one, two)


def test_mt940_both_layouts() -> None:
    [fr] = parse("mt940_fr_slash_tags.sta")
    assert fr.balance_checked
    assert fr.lines[0].counterparty_name == "ACME INDUSTRIE SAS"
    assert fr.lines[0].remittance_unstructured == "RF89F2024000123"
    [de] = parse("mt940_de_gvc.sta")
    assert de.lines[0].end_to_end_id == "INV2024-0456"
    assert de.lines[0].counterparty_iban == "DE89370400440532013000"
    assert de.lines[0].remittance_unstructured == "Rechnung F2024-000456"


def test_ofx() -> None:
    [stmt] = parse("ofx_v102_sgml.ofx")
    assert stmt.currency == "EUR"
    assert stmt.account_iban == "12345678901"
    assert [str(x.amount) for x in stmt.lines] == ["1440.00", "-35.90", "275.00"]
    assert stmt.lines[0].bank_reference == "24064000012345"
    assert not stmt.balance_checked


@pytest.mark.parametrize(
    ("name", "mapping", "amounts"),
    [
        ("csv_fr_debit_credit_cp1252.csv", FR, ["1440.00", "-35.90", "275.00"]),
        ("csv_de_signed_utf8_bom.csv", DE, ["2400.00", "-19.99", "1200.00"]),
        ("csv_en_comma_dotdecimal.csv", EN, ["1440.00", "-2.50"]),
    ],
)
def test_csv_mappings_of_several_banks(name: str, mapping: CsvMapping, amounts: list[str]) -> None:
    [stmt] = parse(name, csv_mapping=mapping, account="FR76TEST")
    assert [str(x.amount) for x in stmt.lines] == amounts
    assert stmt.lines[0].remittance_unstructured


def test_csv_wrong_encoding_and_wrong_mapping_say_where() -> None:
    utf8 = CsvMapping(**{**FR.__dict__, "encoding": "utf-8"})
    with pytest.raises(StatementError) as err:
        parse("hostile/csv_cp1252_read_as_utf8.csv", csv_mapping=utf8)
    assert err.value.code == "statement.encoding"
    assert "line 1" in str(err.value)
    with pytest.raises(StatementError) as err:
        parse("csv_de_signed_utf8_bom.csv", csv_mapping=FR)
    assert err.value.code == "statement.wrong_mapping"


def test_csv_import_valid_lines_reports_rejected_rows() -> None:
    mapping = CsvMapping(
        date_column="Date", amount_column="Montant", remittance_columns=("Libellé",)
    )
    data = (DATA / "hostile" / "csv_bad_rows.csv").read_bytes()
    with pytest.raises(StatementError, match="line 3"):
        parse_csv(data, mapping, "bad.csv")
    stmt = parse_csv(data, mapping, "bad.csv", import_valid_lines=True)
    assert [str(x.amount) for x in stmt.lines] == ["100.00", "25.00"]
    assert [r.position for r in stmt.rejected] == [
        "line 3, column 'Date'",
        "line 4, column 'Montant'",
    ]


@pytest.mark.parametrize(
    ("name", "code", "where"),
    [
        ("hostile/billion_laughs.xml", "statement.hostile_xml", "line 2"),
        ("hostile/xxe.xml", "statement.hostile_xml", "line 2"),
        ("hostile/truncated_camt053.xml", "statement.invalid", "line "),
        ("hostile/camt053_utf16.xml", "statement.invalid", "file"),
        ("hostile/camt053_balance_mismatch.xml", "statement.balance_mismatch", "Stmt[1]/Bal"),
        ("hostile/camt053_bad_amount.xml", "statement.invalid", "Ntry[2]/Amt (line 59)"),
    ],
)
def test_hostile_files_are_refused_precisely(name: str, code: str, where: str) -> None:
    with pytest.raises(StatementError) as err:
        parse(name)
    assert err.value.code == code
    assert name.split("/")[-1] in str(err.value)
    assert where in str(err.value)


def test_xml_bomb_is_refused_fast_and_without_memory() -> None:
    bomb = (DATA / "hostile" / "billion_laughs.xml").read_bytes()
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(StatementError):
        parse_statement_file(bomb, "bomb.xml")
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"\nbomb refused in {elapsed * 1000:.2f} ms, peak {peak / 1024:.0f} KiB")
    assert elapsed < 0.1
    assert peak < 5 * 1024 * 1024


def test_bad_entry_can_be_skipped_with_import_valid_lines() -> None:
    data = (DATA / "hostile" / "camt053_bad_amount.xml").read_bytes()
    [stmt] = parse_statement_file(data, "x.xml", import_valid_lines=True)
    assert len(stmt.lines) == 3
    assert "Ntry[2]" in stmt.rejected[0].position
    assert not stmt.balance_checked


def test_size_limit() -> None:
    with pytest.raises(StatementError) as err:
        parse_statement_file((DATA / "camt053_v02.xml").read_bytes(), "x.xml", max_bytes=100)
    assert err.value.code == "statement.too_large"
