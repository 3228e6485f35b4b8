"""PDF/A-3b rendering of invoices and credit notes, with the Factur-X XML embedded.

Checks the container the law notes describe (section 1.5: PDF/A-3 with an output intent,
``factur-x.xml`` referenced from /AF with /AFRelationship /Data, XMP with the Factur-X
extension schema), the printed figures (the ones of ``doc.totals``), determinism, page
flow, hostile text, and the EPC QR code (same symbol as segno's own EPC helper).
"""

from __future__ import annotations

import dataclasses
import io
import re
import struct
import zlib
from datetime import date
from decimal import Decimal
from typing import Any, cast

import facturx
import pytest
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject
from segno import helpers as segno_helpers

from facturo.core.document import InvoiceDocument, TypeCode
from facturo.core.samples import sample_invoice
from facturo.documents.pdf import embed_facturx, facturx_xml_from_pdf, render_pdf
from facturo.documents.pdf import render as rendering
from facturo.formats.einvoice.cii import build_cii

VAT_CASES = ("standard", "franchise", "reverse_charge", "intra_eu_goods", "export")
FX_NS = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "pdfaExtension": "http://www.aiim.org/pdfa/ns/extension/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "fx": FX_NS,
}
TITLES = {
    ("fr", TypeCode.INVOICE): "FACTURE",
    ("fr", TypeCode.CREDIT_NOTE): "AVOIR",
    ("fr", TypeCode.DEPOSIT_INVOICE): "FACTURE D’ACOMPTE",
    ("en", TypeCode.INVOICE): "INVOICE",
    ("en", TypeCode.CREDIT_NOTE): "CREDIT NOTE",
    ("en", TypeCode.DEPOSIT_INVOICE): "DEPOSIT INVOICE",
}
CASES = [
    pytest.param(vat_case, TypeCode.INVOICE, lang, id=f"{vat_case}-{lang}")
    for vat_case in VAT_CASES
    for lang in ("fr", "en")
] + [
    pytest.param("standard", type_code, lang, id=f"{type_code.name.lower()}-{lang}")
    for type_code in (TypeCode.CREDIT_NOTE, TypeCode.DEPOSIT_INVOICE)
    for lang in ("fr", "en")
]


def flat(text: str) -> str:
    """Extracted text with the typographic spaces and minus of the PDF made plain."""
    text = text.replace("\u202f", " ").replace("\xa0", " ").replace("−", "-")
    return re.sub(r"[ \t]+", " ", text)


def oneline(text: str) -> str:
    return re.sub(r"\s+", " ", flat(text))


def pdf_text(pdf: bytes) -> list[str]:
    return [flat(page.extract_text()) for page in PdfReader(io.BytesIO(pdf)).pages]


def money(amount: Decimal, lang: str) -> str:
    return flat(format_currency(amount, "EUR", locale="fr_FR" if lang == "fr" else "en_GB"))


def catalog_of(reader: PdfReader) -> Any:
    return reader.trailer["/Root"]  # the catalog, a DictionaryObject (typed as PdfObject)


def xmp_of(pdf: bytes) -> etree._Element:
    metadata = catalog_of(PdfReader(io.BytesIO(pdf)))["/Metadata"].get_object()
    return etree.fromstring(metadata.get_data())


def xpath_text(root: etree._Element, path: str) -> list[str]:
    return [str(e.text) for e in root.iterfind(path, NS)]


def make_doc(vat_case: str, type_code: TypeCode, lang: str, **kw: object) -> InvoiceDocument:
    number = {TypeCode.CREDIT_NOTE: "AV-2026-00007", TypeCode.DEPOSIT_INVOICE: "FA-2026-00043"}
    return sample_invoice(
        vat_case=vat_case,
        type_code=type_code,
        language=lang,
        number=number.get(type_code, "FA-2026-00042"),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, TypeCode, str], tuple[InvoiceDocument, bytes]]:
    """Each case rendered once (render_pdf), shared by the tests below."""
    out = {}
    for param in CASES:
        vat_case, type_code, lang = cast(tuple[str, TypeCode, str], param.values)
        doc = make_doc(vat_case, type_code, lang)
        out[(vat_case, type_code, lang)] = (doc, render_pdf(doc))
    return out


# --- Rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize(("vat_case", "type_code", "lang"), CASES)
def test_render_prints_the_document(
    rendered: dict[tuple[str, TypeCode, str], tuple[InvoiceDocument, bytes]],
    vat_case: str,
    type_code: TypeCode,
    lang: str,
) -> None:
    doc, pdf = rendered[(vat_case, type_code, lang)]
    assert pdf.startswith(b"%PDF-1.7")
    pages = pdf_text(pdf)
    assert len(pages) == 1  # ten lines fit on one page
    text = pages[0]
    assert TITLES[(lang, type_code)] in text
    assert doc.number in text
    t = doc.totals
    for amount in (t.line_total, t.tax_exclusive, t.tax_total, t.tax_inclusive, t.due_payable):
        assert money(amount, lang) in text, (amount, lang)
    for group in t.vat_groups:
        assert money(group.taxable_amount, lang) in text
    issue = "20/11/2026" if lang == "fr" else "20 Nov 2026"
    assert issue in text
    assert doc.buyer.name in text
    assert doc.seller.name in text
    for note in (doc.notes.late_penalties, doc.notes.recovery_indemnity, *doc.notes.mentions):
        assert oneline(note) in oneline(text)
    if type_code == TypeCode.CREDIT_NOTE:
        original = "FA-2026-00041 du 02/11/2026" if lang == "fr" else "FA-2026-00041 of 2 Nov 2026"
        assert original in text
    else:
        due = "20/12/2026" if lang == "fr" else "20 Dec 2026"
        assert due in text
        assert "FR76 3000 6000 0112 3456 7890 189" in text
    page = "Page 1 / 1"
    assert page in text


@pytest.mark.parametrize(("vat_case", "type_code", "lang"), CASES)
def test_render_is_pdf_a_3b(
    rendered: dict[tuple[str, TypeCode, str], tuple[InvoiceDocument, bytes]],
    vat_case: str,
    type_code: TypeCode,
    lang: str,
) -> None:
    doc, pdf = rendered[(vat_case, type_code, lang)]
    reader = PdfReader(io.BytesIO(pdf))
    catalog = catalog_of(reader)
    intents = catalog["/OutputIntents"]
    assert intents[0].get_object()["/S"] == "/GTS_PDFA1"
    assert "/DestOutputProfile" in intents[0].get_object()
    xmp = xmp_of(pdf)
    assert xpath_text(xmp, ".//pdfaid:part") == ["3"]
    assert xpath_text(xmp, ".//pdfaid:conformance") == ["B"]
    assert catalog["/Lang"] == lang
    # The XMP and the information dictionary agree (PDF/A 6.6.2.3), dated on the issue date.
    info = reader.metadata
    assert info is not None
    assert info["/CreationDate"] == "D:20261120000000Z"
    assert xpath_text(xmp, ".//dc:title/rdf:Alt/rdf:li") == [info["/Title"]]
    assert doc.number in str(info["/Title"])
    assert "/ID" in reader.trailer


def test_amounts_and_dates_follow_the_language() -> None:
    doc = sample_invoice(lines=10)
    fr = pdf_text(render_pdf(doc))[0]
    en = pdf_text(render_pdf(dataclasses.replace(doc, language="en")))[0]
    for expected in ("2 764,01 €", "20/11/2026", "1,5", "5,5 %", "-117,10 €", "Net à payer"):
        assert expected in fr
    for expected in ("€2,764.01", "20 Nov 2026", "1.5", "5.5%", "-€117.10", "Amount due"):
        assert expected in en


def test_deposit_deduction_and_other_languages() -> None:
    """A final invoice deducts a deposit with a negative line (core allows it for system
    lines); a language other than French prints in English, as the legal notes do."""
    doc = sample_invoice(lines=2)
    deduction = dataclasses.replace(
        doc.lines[1],
        description="Acompte FA-2026-00012",
        quantity=Decimal(1),
        unit_price=Decimal("-500.00"),
        amounts=dataclasses.replace(doc.lines[1].amounts, net_amount=Decimal("-500.00")),
    )
    text = pdf_text(render_pdf(dataclasses.replace(doc, lines=(doc.lines[0], deduction))))[0]
    assert "Acompte FA-2026-00012 1 u. -500,00 € 20 % -500,00 €" in text
    german = pdf_text(render_pdf(dataclasses.replace(doc, language="de")))[0]
    assert "INVOICE" in german
    assert "20 Nov 2026" in german


def test_render_is_deterministic() -> None:
    doc = sample_invoice()
    assert render_pdf(doc) == render_pdf(doc)
    xml = build_cii(doc)
    assert embed_facturx(render_pdf(doc), xml) == embed_facturx(render_pdf(doc), xml)


def test_tagged_and_untagged_are_both_pdf_a() -> None:
    doc = sample_invoice()
    for tagged in (True, False):
        pdf = render_pdf(doc, tagged=tagged)
        catalog = catalog_of(PdfReader(io.BytesIO(pdf)))
        assert ("/StructTreeRoot" in catalog) is tagged
        assert xpath_text(xmp_of(pdf), ".//pdfaid:part") == ["3"]
        out = embed_facturx(pdf, build_cii(doc))
        assert facturx_xml_from_pdf(out) == build_cii(doc)


def test_seventy_lines_flow_over_pages_with_the_header_repeated() -> None:
    doc = sample_invoice(lines=70)
    pages = pdf_text(render_pdf(doc))
    assert 2 <= len(pages) <= 4
    for i, text in enumerate(pages, start=1):
        assert doc.number in text  # on every page (footer)
        assert f"Page {i} / {len(pages)}" in text
    assert "Désignation" in pages[1]  # the column header is repeated
    assert "PU HT" in pages[1]
    assert "(suite)" in pages[1]
    everything = "\n".join(pages)
    for line in doc.lines:
        assert f"P{line.position:03d}" in everything
    assert money(doc.totals.due_payable, "fr") in everything


HOSTILE = [
    '#eval("1")',
    "$x^2$",
    "*gras* _it_",
    "<b>tag</b> <label>",
    "back\\slash \\n",
    "@ref // comment /* c */",
    "] [ } { #set page(width: 1cm)",
    'it\'s "quoted" & €',
]


def test_hostile_text_is_printed_literally() -> None:
    doc = sample_invoice(lines=len(HOSTILE) + 1)
    lines = list(doc.lines)
    for i, text in enumerate(HOSTILE):
        lines[i] = dataclasses.replace(lines[i], description=f"L{i} {text}")
    lines[-1] = dataclasses.replace(lines[-1], description="Emoji 🎉 ok ☃ 👍🏽 中文 ❤️")
    buyer = dataclasses.replace(doc.buyer, name='Client #strong[X] $ "')
    doc = dataclasses.replace(doc, lines=tuple(lines), buyer=buyer, free_text="#pagebreak()")
    pages = pdf_text(render_pdf(doc))
    assert len(pages) == 1  # nothing was evaluated: no page break, no resized page
    text = pages[0]
    for i, hostile in enumerate(HOSTILE):
        assert f"L{i} {hostile}" in text, hostile
    assert 'Client #strong[X] $ "' in text
    assert "#pagebreak()" in text
    # PDF/A forbids glyphs the fonts lack, and Typst's embedded fonts have no emoji nor
    # CJK: those are printed as their code points; characters the fonts have stay as they are.
    assert "Emoji [U+1F389] ok ☃ [U+1F44D][U+1F3FD] [U+4E2D][U+6587] ❤" in text


def test_control_characters_and_long_words() -> None:
    doc = sample_invoice(lines=2)
    word = "x" * 150
    lines = (
        dataclasses.replace(doc.lines[0], description="bell\x07 nul\x00 tab\there\r\nnext line"),
        dataclasses.replace(doc.lines[1], description=word, product_code="A-VERY-LONG-CODE-123"),
    )
    text = pdf_text(render_pdf(dataclasses.replace(doc, lines=lines)))[0]
    assert "bell nul tab here\nnext line" in text
    assert word in text.replace("\n", "")  # wrapped inside its column, not cut
    assert "Réf. A-VERY-LONG-CODE-123" in text  # long codes move under the description


def _png(width: int, height: int) -> bytes:
    rows = b"".join(b"\x00" + bytes((x * 7) % 256 for x in range(width * 3)) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


SVG_LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">'
    b'<rect width="120" height="40" fill="#1f4e79"/></svg>'
)


@pytest.mark.parametrize(
    ("logo", "mime"),
    [(_png(240, 80), "image/png"), (_png(60, 60), ""), (SVG_LOGO, "image/svg+xml")],
    ids=["png", "png-sniffed", "svg"],
)
def test_logo(logo: bytes, mime: str) -> None:
    doc = sample_invoice()
    pdf = render_pdf(doc, logo=logo, logo_mime=mime, accent="#8a1538")
    assert pdf != render_pdf(doc)
    assert pdf == render_pdf(doc, logo=logo, logo_mime=mime, accent="#8a1538")
    assert doc.number in pdf_text(pdf)[0]


def test_logo_and_accent_are_checked() -> None:
    doc = sample_invoice()
    with pytest.raises(ValueError, match="logo"):
        render_pdf(doc, logo=b"not an image")
    with pytest.raises(ValueError, match="accent"):
        render_pdf(doc, accent='red"); #eval("1')


def test_jpeg_size_is_read_from_its_frame_header() -> None:
    sof = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 50, 200) + b"\x03" + b"\x00" * 9
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    jpeg = b"\xff\xd8" + app0 + sof + b"\xff\xd9"
    assert rendering._image_size(jpeg, "image/jpeg") == (200, 50)
    assert rendering._sniff_mime(jpeg) == "image/jpeg"


# --- Factur-X container ----------------------------------------------------------------------


@pytest.mark.parametrize(("vat_case", "type_code", "lang"), CASES)
def test_embed_facturx(
    rendered: dict[tuple[str, TypeCode, str], tuple[InvoiceDocument, bytes]],
    vat_case: str,
    type_code: TypeCode,
    lang: str,
) -> None:
    doc, pdf = rendered[(vat_case, type_code, lang)]
    xml = build_cii(doc)
    out = embed_facturx(pdf, xml)  # XSD check on
    assert out.startswith(pdf)  # an incremental update: the rendered bytes are kept
    assert facturx_xml_from_pdf(out) == xml
    assert facturx_xml_from_pdf(pdf) is None

    reader = PdfReader(io.BytesIO(out), strict=True)
    catalog = catalog_of(reader)
    af = catalog["/AF"]
    assert len(af) == 1
    spec = af[0].get_object()
    assert spec["/Type"] == "/Filespec"
    assert spec["/F"] == spec["/UF"] == "factur-x.xml"
    assert spec["/AFRelationship"] == "/Data"
    embedded = spec["/EF"]["/F"].get_object()
    assert embedded["/Subtype"] == "/text/xml"
    assert embedded.get_data() == xml
    assert embedded["/Params"]["/Size"] == len(xml)
    assert embedded["/Params"]["/ModDate"] == "D:20261120000000Z"  # the issue date
    names = catalog["/Names"]["/EmbeddedFiles"]["/Names"]
    assert names[0] == "factur-x.xml"
    assert names[1].get_object() == spec
    assert len(reader.pages) == 1
    assert catalog["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1"

    xmp = xmp_of(out)
    assert xpath_text(xmp, ".//pdfaid:part") == ["3"]
    assert xpath_text(xmp, ".//pdfaid:conformance") == ["B"]
    assert xpath_text(xmp, ".//fx:DocumentType") == ["INVOICE"]
    assert xpath_text(xmp, ".//fx:DocumentFileName") == ["factur-x.xml"]
    assert xpath_text(xmp, ".//fx:Version") == ["1.0"]
    assert xpath_text(xmp, ".//fx:ConformanceLevel") == ["EN 16931"]
    schemas = xmp.findall(".//pdfaExtension:schemas/rdf:Bag/rdf:li", NS)
    fx_schema = [s for s in schemas if s.findtext("pdfaSchema:namespaceURI", None, NS) == FX_NS]
    assert len(fx_schema) == 1
    assert fx_schema[0].findtext("pdfaSchema:prefix", None, NS) == "fx"
    assert FX_NS.encode() in out

    # The reference library finds and validates it too.
    filename, found = facturx.get_facturx_xml_from_pdf(out, check_xsd=True)
    assert (filename, found) == ("factur-x.xml", xml)


def test_embed_rejects_what_it_cannot_vouch_for() -> None:
    doc = sample_invoice()
    pdf = render_pdf(doc)
    xml = build_cii(doc)
    with pytest.raises(ValueError, match="conformance"):
        embed_facturx(pdf, xml, conformance="COMFORT")
    with pytest.raises(ValueError, match="declares profile"):
        embed_facturx(pdf, xml, conformance="EXTENDED")
    broken = xml.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"<ram:Oops>380</ram:Oops>", 1)
    assert broken != xml
    with pytest.raises(ValueError, match="XSD"):
        embed_facturx(pdf, broken)
    with pytest.raises(ValueError, match="already"):
        embed_facturx(embed_facturx(pdf, xml), xml)
    plain = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.write(plain)
    with pytest.raises(ValueError, match="PDF/A"):
        embed_facturx(plain.getvalue(), xml)


def test_embed_without_xsd_check_accepts_a_stand_in() -> None:
    standin = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:'
        b'CrossIndustryInvoice:100" xmlns:ram="urn:un:unece:uncefact:data:standard:'
        b'ReusableAggregateBusinessInformationEntity:100"><rsm:ExchangedDocumentContext>'
        b"<ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn:cen.eu:en16931:2017"
        b"</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>"
        b"</rsm:ExchangedDocumentContext></rsm:CrossIndustryInvoice>\n"
    )
    pdf = render_pdf(sample_invoice())
    with pytest.raises(ValueError, match="XSD"):
        embed_facturx(pdf, standin)
    assert facturx_xml_from_pdf(embed_facturx(pdf, standin, check_xsd=False)) == standin


def test_embedded_pdf_is_well_formed_for_other_readers() -> None:
    out = embed_facturx(render_pdf(sample_invoice()), build_cii(sample_invoice()))
    # One increment after the original, chained by /Prev, and nothing after %%EOF.
    assert out.count(b"%%EOF") == 2
    assert out.endswith(b"%%EOF\n")
    trailer = PdfReader(io.BytesIO(out), strict=True).trailer
    assert isinstance(trailer, DictionaryObject)
    assert "/Prev" in trailer
    assert trailer["/ID"] == PdfReader(io.BytesIO(out[: out.index(b"%%EOF") + 5])).trailer["/ID"]


# --- EPC QR code ---------------------------------------------------------------------------


def test_qr_only_when_it_can_be_paid_by_sepa_transfer() -> None:
    doc = sample_invoice()
    assert rendering.epc_qr_svg(doc).startswith("<svg")
    credit = sample_invoice(type_code=TypeCode.CREDIT_NOTE)
    assert rendering.epc_qr_svg(credit) == ""
    assert rendering.epc_qr_svg(dataclasses.replace(doc, currency="USD")) == ""
    no_iban = dataclasses.replace(doc, payment=dataclasses.replace(doc.payment, iban=""))
    assert rendering.epc_qr_svg(no_iban) == ""
    cheque = dataclasses.replace(doc, payment=dataclasses.replace(doc.payment, means_code="20"))
    assert rendering.epc_qr_svg(cheque) == ""
    paid = dataclasses.replace(
        doc, totals=dataclasses.replace(doc.totals, due_payable=Decimal("0.00"))
    )
    assert rendering.epc_qr_svg(paid) == ""


def test_epc_payload() -> None:
    payload = rendering.epc_payload(
        name="Atelier Numérique Lumière",
        iban="FR7630006000011234567890189",
        amount=Decimal("2764.10"),
        text="FA-2026-00042",
        bic="AGRIFRPP",
    )
    assert payload.decode("iso-8859-1").split("\n") == [
        "BCD", "002", "2", "SCT", "AGRIFRPP", "Atelier Numérique Lumière",
        "FR7630006000011234567890189", "EUR2764.1", "", "", "FA-2026-00042",
    ]  # fmt: skip
    assert rendering._is_creditor_reference("RF18 5390 0754 7034")
    assert not rendering._is_creditor_reference("RF19 5390 0754 7034")


@pytest.mark.parametrize("vat_case", VAT_CASES)
def test_qr_symbol_is_segnos(vat_case: str) -> None:
    """Our mask choice is segno's: the symbol equals ``segno_helpers.make_epc_qr``'s."""
    doc = sample_invoice(vat_case=vat_case)
    pay = doc.payment
    expected = segno_helpers.make_epc_qr(
        name=pay.account_name,
        iban=pay.iban,
        amount=doc.totals.due_payable,
        text=pay.remittance,
        bic=pay.bic,
    )
    payload = rendering.epc_payload(
        name=pay.account_name,
        iban=pay.iban,
        amount=doc.totals.due_payable,
        text=pay.remittance,
        bic=pay.bic,
    )
    assert rendering.qr_matrix(payload) == ["".join(map(str, row)) for row in expected.matrix]


@settings(max_examples=25, deadline=None)
@given(
    name=st.text(
        st.characters(codec="utf-8", categories=("L", "N", "Zs", "P")), min_size=1, max_size=70
    ).filter(lambda s: 0 < len(s.strip()) <= 70),
    cents=st.integers(1, 99_999_999_999),
    text=st.text(st.characters(codec="latin-1", categories=("L", "N")), min_size=1, max_size=140),
)
def test_qr_mask_choice_matches_segno(name: str, cents: int, text: str) -> None:
    amount = Decimal(cents).scaleb(-2)
    iban = "FR7630006000011234567890189"
    payload = rendering.epc_payload(name=name, iban=iban, amount=amount, text=text)
    expected = segno_helpers.make_epc_qr(name=name, iban=iban, amount=amount, text=text)
    assert rendering.qr_matrix(payload) == ["".join(map(str, row)) for row in expected.matrix]


# --- Formatting ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    value=st.decimals(
        min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=6, allow_nan=False
    ),
    lang=st.sampled_from(["fr", "en"]),
    currency=st.sampled_from(["EUR", "USD", "CHF", "JPY", "TND"]),
    day=st.dates(date(1990, 1, 1), date(2100, 12, 31)),
)
def test_formatting_is_babels(value: Decimal, lang: str, currency: str, day: date) -> None:
    """The fast formatter prints exactly what Babel's format_* functions print."""
    f = rendering._Formatter(lang, currency)
    value = abs(value) if value == 0 else value  # we print no "−0"; Babel would
    locale = "fr_FR" if lang == "fr" else "en_GB"
    exponent = rendering.CURRENCY_EXPONENTS[currency]
    rounded = value.quantize(Decimal(1).scaleb(-exponent))
    rounded = abs(rounded) if rounded == 0 else rounded

    def babel(text: str) -> str:
        return text.replace("-", "−")

    assert f.money(rounded) == babel(format_currency(rounded, currency, locale=locale))
    assert f.unit_price(value) == babel(
        format_currency(value, currency, locale=locale, decimal_quantization=False)
    )
    assert f.number(value) == babel(
        format_decimal(value, locale=locale, decimal_quantization=False)
    )
    rate = abs(value) % 100
    assert f.percent(rate) == format_percent(rate / 100, locale=locale, decimal_quantization=False)
    pattern = "dd/MM/y" if lang == "fr" else "d MMM y"
    assert f.date(day) == format_date(day, pattern, locale=locale)
