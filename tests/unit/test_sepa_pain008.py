"""pain.008.001.02 files: valid against the official ISO 20022 XSD (shipped by sepaxml),
control sums and counts that match, FRST/RCUR/OOFF blocks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from facturo.formats.sepa import pain008
from facturo.formats.sepa.pain008 import Creditor, DirectDebit

NS = {"p": pain008.NAMESPACE}
CREDITOR = Creditor("Atelier Numérique Lumière", "FR7630006000011234567890189", "AGRIFRPP",
                    "FR72ZZZ123456")  # fmt: skip
WHEN = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def debit(n: int, amount: str, seq: str = "RCUR", bic: str = "BNPAFRPP") -> DirectDebit:
    return DirectDebit(
        end_to_end_id=f"F-2026-{n:04d}",
        amount=Decimal(amount),
        mandate_reference=f"UMR-{n}",
        mandate_signed_on=dt.date(2025, 12, 1),
        sequence_type=seq,
        debtor_name="Boulangerie Martin & Fils — Café «Étoile»",
        debtor_iban="FR1420041010050500013M02606",
        debtor_bic=bic,
        remittance=f"RF18F2026{n:04d} Facture F-2026-{n:04d}",
    )


def write(debits: list[DirectDebit]) -> bytes:
    return pain008.write(message_id="B-2026-03-01-1", created_at=WHEN, creditor=CREDITOR,
                         collection_date=dt.date(2026, 3, 6), debits=debits)  # fmt: skip


def test_file_is_valid_against_the_official_xsd_and_sums_match() -> None:
    data = write([debit(1, "120.00", "FRST"), debit(2, "80.50"), debit(3, "0.01", "RCUR", bic=""),
                  debit(4, "19.99", "OOFF")])  # fmt: skip
    assert pain008.validate(data) == []
    doc = etree.fromstring(data)
    assert doc.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "4"
    assert doc.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "220.50"
    blocks = {b.findtext("p:PmtTpInf/p:SeqTp", namespaces=NS): b
              for b in doc.iterfind(".//p:PmtInf", namespaces=NS)}  # fmt: skip
    assert set(blocks) == {"FRST", "RCUR", "OOFF"}
    assert blocks["RCUR"].findtext("p:NbOfTxs", namespaces=NS) == "2"
    assert blocks["RCUR"].findtext("p:CtrlSum", namespaces=NS) == "80.51"
    # Names in the SEPA Latin character set; a missing BIC is "NOTPROVIDED".
    assert b"Boulangerie Martin Fils Cafe Etoile" in data
    assert b"<Id>NOTPROVIDED</Id>" in data


def test_the_xsd_really_checks_something() -> None:
    data = write([debit(1, "10.00")])
    broken = data.replace(b"<SeqTp>RCUR</SeqTp>", b"<SeqTp>NEXT</SeqTp>")
    assert any("SeqTp" in e for e in pain008.validate(broken))
    wrong_sum = data.replace(b"<CtrlSum>10.00</CtrlSum>", b"<CtrlSum>11.00</CtrlSum>", 1)
    assert any("CtrlSum 11.00" in e for e in pain008.validate(wrong_sum))
    assert pain008.validate(b"<not xml")[0].startswith("not well-formed")


def test_sequence_type_follows_the_mandate_history() -> None:
    assert pain008.sequence_type(recurrent=True, collected_before=False) == "FRST"
    assert pain008.sequence_type(recurrent=True, collected_before=True) == "RCUR"
    assert pain008.sequence_type(recurrent=False, collected_before=False) == "OOFF"


@pytest.mark.parametrize("amount", ["0", "-5.00", "1.001"])
def test_bad_amounts_and_empty_files_are_refused(amount: str) -> None:
    with pytest.raises(pain008.Pain008Error):
        write([debit(1, amount)])
    with pytest.raises(pain008.Pain008Error):
        write([])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10_000_000), st.sampled_from(pain008.SEQUENCE_TYPES)),
                min_size=1, max_size=25))  # fmt: skip
def test_any_batch_validates_and_header_matches(rows: list[tuple[int, str]]) -> None:
    debits = [debit(i, str(Decimal(cents).scaleb(-2)), seq) for i, (cents, seq) in enumerate(rows)]
    data = write(debits)
    assert pain008.validate(data) == []
    doc = etree.fromstring(data)
    header = doc.find(".//p:GrpHdr", namespaces=NS)
    assert header is not None
    assert int(header.findtext("p:NbOfTxs", namespaces=NS) or 0) == len(rows)
    assert Decimal(header.findtext("p:CtrlSum", namespaces=NS) or 0) == sum(
        (Decimal(c).scaleb(-2) for c, _ in rows), Decimal(0)
    )


@pytest.mark.parametrize("text", ["FR72ZZZ123456", "fr72 zzz 123456", "ES23ZZZ47690558N"])
def test_creditor_identifiers_that_pass(text: str) -> None:
    from facturo.formats.sepa import creditor_id

    assert creditor_id.normalize(text) == text.replace(" ", "").upper()


@pytest.mark.parametrize("text", ["", "FR73ZZZ123456", "FR72ZZZ12345", "FR72ZZZ1234567", "XX"])
def test_creditor_identifiers_that_fail(text: str) -> None:
    from facturo.formats.sepa import creditor_id

    with pytest.raises(creditor_id.BadCreditorIdentifier):
        creditor_id.normalize(text)
