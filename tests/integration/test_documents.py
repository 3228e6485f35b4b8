"""Issued documents through the real pipeline: Factur-X valid (XSD + EN 16931 + BR-FR), embedded
in the stored PDF/A-3, byte-identical on every download, and checked by `facturo check`."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.db import connections
from pypdf import PdfReader
from typer.testing import CliRunner

from facturo.cli import app
from facturo.documents.services import PDF, XML, fetch
from facturo.formats.einvoice import validate_cii
from facturo.foundation.db import current_alias
from facturo.invoicing import services as invoicing
from facturo.invoicing.triggers import PG_REVERSE, SQLITE_REVERSE
from tests.factories import lines, make_customer, make_org

VAT_CASES = {
    "standard": ({}, [{"description": "Conseil", "quantity": "2.5", "unit_price": "480",
                       "vat_rate": "20"},
                      {"description": "Livre", "quantity": "3", "unit_price": "24.90",
                       "vat_rate": "5.5", "nature": "goods"}]),
    "reverse_charge": ({"name": "Müller GmbH", "siren": "", "vat_number": "DE136695976",
                        "country_code": "DE", "postcode": "10117", "city": "Berlin"},
                       [{"description": "Audit", "quantity": "1", "unit_price": "900",
                         "vat_category": "AE", "vat_rate": "0"}]),
    "intra_eu_goods": ({"name": "Müller GmbH", "siren": "", "vat_number": "DE136695976",
                        "country_code": "DE", "postcode": "10117", "city": "Berlin"},
                       [{"description": "Lampes", "quantity": "12", "unit_price": "45",
                         "vat_category": "K", "vat_rate": "0", "nature": "goods"}]),
    "export": ({"name": "Maple Bakery Inc.", "siren": "", "vat_number": "", "country_code": "CA",
                "postcode": "M5J 2J2", "city": "Toronto"},
               [{"description": "Site web", "quantity": "1", "unit_price": "3000",
                 "vat_category": "G", "vat_rate": "0"}]),
    "consumer": ({"name": "Claire Moreau", "kind": "person", "siren": "", "vat_number": "",
                  "email": "claire@example.org"},
                 [{"description": "Cours", "quantity": "2", "unit_price": "40",
                   "vat_rate": "20"}]),
}  # fmt: skip


def _embedded_xml(pdf: bytes) -> bytes:
    reader = PdfReader(io.BytesIO(pdf))
    return reader.attachments["factur-x.xml"][0]


@pytest.mark.parametrize("case", sorted(VAT_CASES))
def test_issued_documents_are_valid_factur_x(engine: str, case: str) -> None:
    customer_data, invoice_lines = VAT_CASES[case]
    _, ctx = make_org()
    customer = make_customer(ctx, **customer_data)
    invoice = invoicing.issue_invoice(
        ctx, invoicing.create_draft(ctx, customer.id, invoice_lines).id
    )
    xml = bytes(fetch(ctx.organization.id, invoice.id, XML).content)
    report = validate_cii(xml)
    assert report.ok, report.summary()
    pdf_doc = fetch(ctx.organization.id, invoice.id, PDF)
    pdf = bytes(pdf_doc.content)
    assert pdf_doc.filename == f"{invoice.number}.pdf"
    assert _embedded_xml(pdf) == xml
    assert f"<ram:GrandTotalAmount>{invoice.total_incl_vat}</ram:GrandTotalAmount>" in xml.decode()
    # a re-download is byte-identical: nothing is rebuilt
    assert bytes(fetch(ctx.organization.id, invoice.id, PDF).content) == pdf


def test_credit_note_and_deposit_documents_are_valid(engine: str) -> None:
    _, ctx = make_org()
    customer = make_customer(ctx)
    invoice = invoicing.issue_invoice(ctx, invoicing.create_draft(ctx, customer.id, lines(3)).id)
    note = invoicing.create_credit_note(ctx, invoice.id, reason="Annulation", issue=True)
    deposit = invoicing.issue_invoice(ctx, invoicing.create_draft(
        ctx, customer.id, [{"description": "Acompte", "quantity": "1", "unit_price": "100",
                            "vat_rate": "20"}], kind="deposit").id)  # fmt: skip
    final = invoicing.create_draft(ctx, customer.id, lines(2))
    invoicing.deduct_deposit(ctx, final.id, deposit.id)
    final = invoicing.issue_invoice(ctx, final.id)
    for doc in (note, deposit, final):
        xml = bytes(fetch(ctx.organization.id, doc.id, XML).content)
        report = validate_cii(xml)
        assert report.ok, (doc.number, report.summary())
    note_xml = bytes(fetch(ctx.organization.id, note.id, XML).content)
    assert b"<rsm:ExchangedDocument>" in note_xml
    assert b">381<" in note_xml
    assert invoice.number is not None
    assert invoice.number.encode() in note_xml  # BG-3 reference to the credited invoice
    # 1 × 99.99 + 2 × 100.99 = 301.97, minus the 100.00 deposit; VAT 20 % of 201.97 = 40.39
    assert final.total_excl_vat == Decimal("201.97")
    assert final.total_vat == Decimal("40.39")


def _drop_triggers() -> None:
    connection = connections[current_alias()]
    statements = PG_REVERSE if connection.vendor == "postgresql" else SQLITE_REVERSE
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def _restore_triggers() -> None:
    from facturo.invoicing.triggers import PG, SQLITE

    connection = connections[current_alias()]
    with connection.cursor() as cursor:
        for sql in PG if connection.vendor == "postgresql" else SQLITE:
            cursor.execute(sql)


def test_check_names_the_altered_record(engine: str) -> None:
    org, ctx = make_org()
    customer = make_customer(ctx)
    issued = [invoicing.issue_invoice(ctx, invoicing.create_draft(ctx, customer.id, lines(2)).id,
                                      render=False) for _ in range(3)]  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output

    # Someone with database access drops the triggers and lowers a total.
    _drop_triggers()
    try:
        target = issued[1]
        snapshot = dict(target.snapshot or {})
        snapshot["totals"] = {**snapshot["totals"], "tax_inclusive": "1.00"}
        type(target).objects.filter(pk=target.pk).update(snapshot=snapshot)
        result = runner.invoke(app, ["check"])
        assert result.exit_code == 1
        assert f"{target.number} (position 2): content does not match its hash" in result.output
    finally:
        _restore_triggers()
    assert org.name in result.output
