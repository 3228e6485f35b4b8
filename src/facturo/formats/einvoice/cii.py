"""Factur-X / ZUGFeRD writer: UN/CEFACT CII D22B, EN 16931 profile, French CTC rules (BR-FR).

``build_cii`` serialises an issued ``InvoiceDocument``; it never computes an amount: every
figure comes from ``doc.totals`` (CONVENTIONS.md, « Money and rounding »), so the XML, the PDF
and the ledger show the same numbers. The tree is built top-down with ``etree.SubElement``
(no template parsed at run time): about 1 ms for a 10-line invoice.

Where the French rules read the data (Flux 2 schematron shipped with ``factur-x``):
- BT-23 « cadre de facturation » (B1/S1/M1 …) goes in
  ``ExchangedDocumentContext/BusinessProcessSpecifiedDocumentContextParameter/ID`` (BR-FR-08);
- notes PMD, PMT, AAB exactly once each (BR-FR-05/06); the note BAR tells the platform how
  to treat the invoice (B2B, B2BINT, B2C; BR-FR-20);
- seller SIREN as legal organization scheme 0002 (BR-FR-10), SIRET as global id 0009 (BR-FR-09);
- electronic addresses BT-34/BT-49 are mandatory (BR-FR-12/13); for a French company it is
  its SIREN in scheme 0225 (the directory of the reform, BR-FR-21), otherwise its e-mail (EM);
- BT-8 ``DueDateTypeCode`` = 5 when the seller opted for VAT on debits.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from facturo.core.document import Address, InvoiceDocument, Party
from facturo.core.tax import EXEMPTIONS, VatCategory

RSM_NS = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM_NS = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT_NS = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT_NS = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM_NS, "ram": RAM_NS, "udt": UDT_NS, "qdt": QDT_NS}

GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"  # BT-24, Factur-X EN 16931 (ex-COMFORT)
SCHEME_SIREN = "0002"
SCHEME_SIRET = "0009"
SCHEME_FR_DIRECTORY = "0225"  # French e-invoicing directory (annuaire), address = SIREN[…]
SCHEME_EMAIL = "EM"
DUE_DATE_TYPE_DEBITS = "5"  # BT-8 in CII: tax due on the invoice date (« débits »)
ALLOWANCE_REASON_DISCOUNT = "95"  # UNTDID 5189

_RSM = f"{{{RSM_NS}}}"
_RAM = f"{{{RAM_NS}}}"
_UDT = f"{{{UDT_NS}}}"
_QDT = f"{{{QDT_NS}}}"

_sub = etree.SubElement


def _text(parent: etree._Element, tag: str, value: str, **attrib: str) -> etree._Element:
    element = _sub(parent, tag, attrib)
    element.text = value
    return element


def _amount(value: Decimal) -> str:
    # Plain notation of the already rounded figure from core.totals; never re-rounded here.
    return format(value, "f")


def _rate(rate: Decimal) -> str:
    # "20", "5.5", "2.1", "0": the exact strings BR-FR-16 accepts.
    return format(rate.normalize(), "f")


def _quantity(quantity: Decimal) -> str:
    return format(quantity, "f")


def _date(parent: etree._Element, tag: str, value: date, ns: str = _UDT) -> None:
    holder = _sub(parent, tag)
    _text(holder, ns + "DateTimeString", value.strftime("%Y%m%d"), format="102")


def _note(parent: etree._Element, content: str, subject: str = "") -> None:
    if not content:
        return
    note = _sub(parent, _RAM + "IncludedNote")
    _text(note, _RAM + "Content", content)
    if subject:
        _text(note, _RAM + "SubjectCode", subject)


def _treatment(buyer: Party) -> str:
    """BAR note: how the French platforms route the invoice (B2B goes through the network)."""
    if not buyer.is_company:
        return "B2C"
    return "B2B" if buyer.address.country_code == "FR" else "B2BINT"


def electronic_address(party: Party) -> tuple[str, str] | None:
    """(scheme, address) for BT-34/BT-49: SIREN in the French directory, else the e-mail."""
    if party.siren and party.address.country_code == "FR":
        return SCHEME_FR_DIRECTORY, party.siren
    if party.email:
        return SCHEME_EMAIL, party.email
    return None


def _seller_legal_information(seller: Party, language: str) -> str:
    """BT-33: legal form, share capital and registration (art. R123-237 C. com.)."""
    fr = language.startswith("fr")
    parts = []
    if seller.legal_form and seller.share_capital:
        joiner = " au capital de " if fr else " with a share capital of "
        parts.append(f"{seller.legal_form}{joiner}{seller.share_capital}")
    elif seller.legal_form:
        parts.append(seller.legal_form)
    elif seller.share_capital:
        parts.append(("Capital social : " if fr else "Share capital: ") + seller.share_capital)
    if seller.rcs:
        parts.append(seller.rcs)
    return " – ".join(parts)


def _address(parent: etree._Element, address: Address) -> None:
    postal = _sub(parent, _RAM + "PostalTradeAddress")
    if address.postcode:
        _text(postal, _RAM + "PostcodeCode", address.postcode)
    if address.line1:
        _text(postal, _RAM + "LineOne", address.line1)
    if address.line2:
        _text(postal, _RAM + "LineTwo", address.line2)
    if address.city:
        _text(postal, _RAM + "CityName", address.city)
    _text(postal, _RAM + "CountryID", address.country_code)


def _party(parent: etree._Element, tag: str, party: Party, description: str = "") -> None:
    node = _sub(parent, tag)
    if party.siret:
        _text(node, _RAM + "GlobalID", party.siret, schemeID=SCHEME_SIRET)
    _text(node, _RAM + "Name", party.name)
    if description:
        _text(node, _RAM + "Description", description)
    if party.siren:
        legal = _sub(node, _RAM + "SpecifiedLegalOrganization")
        _text(legal, _RAM + "ID", party.siren, schemeID=SCHEME_SIREN)
    if party.email:
        contact = _sub(node, _RAM + "DefinedTradeContact")
        email = _sub(contact, _RAM + "EmailURIUniversalCommunication")
        _text(email, _RAM + "URIID", party.email)
    _address(node, party.address)
    endpoint = electronic_address(party)
    if endpoint is not None:
        uri = _sub(node, _RAM + "URIUniversalCommunication")
        _text(uri, _RAM + "URIID", endpoint[1], schemeID=endpoint[0])
    if party.vat_number:
        tax = _sub(node, _RAM + "SpecifiedTaxRegistration")
        _text(tax, _RAM + "ID", party.vat_number, schemeID="VA")


def _trade_tax(parent: etree._Element, category: VatCategory, rate: Decimal) -> None:
    tax = _sub(parent, _RAM + "CategoryTradeTax")
    _text(tax, _RAM + "TypeCode", "VAT")
    _text(tax, _RAM + "CategoryCode", category.value)
    _text(tax, _RAM + "RateApplicablePercent", _rate(rate))


def build_cii(doc: InvoiceDocument) -> bytes:
    """The Factur-X EN 16931 XML of ``doc`` (UTF-8 bytes, deterministic)."""
    fr = doc.language.startswith("fr")
    totals = doc.totals
    currency = doc.currency
    root = etree.Element(_RSM + "CrossIndustryInvoice", nsmap=NSMAP)

    # --- BG-2 process control ------------------------------------------------------------
    context = _sub(root, _RSM + "ExchangedDocumentContext")
    if doc.operation_nature:
        process = _sub(context, _RAM + "BusinessProcessSpecifiedDocumentContextParameter")
        _text(process, _RAM + "ID", doc.operation_nature)  # BT-23
    guideline = _sub(context, _RAM + "GuidelineSpecifiedDocumentContextParameter")
    _text(guideline, _RAM + "ID", GUIDELINE_EN16931)  # BT-24

    # --- document header, BG-1 notes -----------------------------------------------------
    header = _sub(root, _RSM + "ExchangedDocument")
    _text(header, _RAM + "ID", doc.number)  # BT-1
    _text(header, _RAM + "TypeCode", doc.type_code.value)  # BT-3
    _date(header, _RAM + "IssueDateTime", doc.issue_date)  # BT-2
    notes = doc.notes
    _note(header, notes.late_penalties, "PMD")
    _note(header, notes.recovery_indemnity, "PMT")
    _note(header, notes.early_payment_discount, "AAB")
    for mention in notes.mentions:
        _note(header, mention, "REG")
    _note(header, doc.free_text, "AAI")
    _note(header, _treatment(doc.buyer), "BAR")

    transaction = _sub(root, _RSM + "SupplyChainTradeTransaction")

    # --- BG-25 lines ---------------------------------------------------------------------
    discount_reason = "Remise" if fr else "Discount"
    for line, amounts in zip(doc.lines, totals.lines, strict=True):
        item = _sub(transaction, _RAM + "IncludedSupplyChainTradeLineItem")
        line_doc = _sub(item, _RAM + "AssociatedDocumentLineDocument")
        _text(line_doc, _RAM + "LineID", str(line.position))  # BT-126
        if line.note:
            line_note = _sub(line_doc, _RAM + "IncludedNote")
            _text(line_note, _RAM + "Content", line.note)  # BT-127
        product = _sub(item, _RAM + "SpecifiedTradeProduct")
        if line.product_code:
            _text(product, _RAM + "SellerAssignedID", line.product_code)  # BT-155
        _text(product, _RAM + "Name", line.description)  # BT-153

        # BT-146 must not be negative (BR-27): a negative line (deposit deduction) carries
        # the sign on its quantity instead; quantity × price is unchanged.
        price, quantity = line.unit_price, line.quantity
        if price < 0:
            price, quantity = -price, -quantity
        agreement = _sub(item, _RAM + "SpecifiedLineTradeAgreement")
        net_price = _sub(agreement, _RAM + "NetPriceProductTradePrice")
        _text(net_price, _RAM + "ChargeAmount", _amount(price))  # BT-146
        delivery = _sub(item, _RAM + "SpecifiedLineTradeDelivery")
        _text(delivery, _RAM + "BilledQuantity", _quantity(quantity), unitCode=line.unit_code)

        settlement = _sub(item, _RAM + "SpecifiedLineTradeSettlement")
        line_tax = _sub(settlement, _RAM + "ApplicableTradeTax")
        _text(line_tax, _RAM + "TypeCode", "VAT")
        _text(line_tax, _RAM + "CategoryCode", line.vat_category.value)  # BT-151
        _text(line_tax, _RAM + "RateApplicablePercent", _rate(line.vat_rate))  # BT-152
        if amounts.allowance_amount:
            allowance = _sub(settlement, _RAM + "SpecifiedTradeAllowanceCharge")
            indicator = _sub(allowance, _RAM + "ChargeIndicator")
            _text(indicator, _UDT + "Indicator", "false")
            _text(allowance, _RAM + "CalculationPercent", _rate(line.discount_percent))
            _text(allowance, _RAM + "BasisAmount", _amount(amounts.gross_amount))  # BT-137
            _text(allowance, _RAM + "ActualAmount", _amount(amounts.allowance_amount))
            _text(allowance, _RAM + "ReasonCode", ALLOWANCE_REASON_DISCOUNT)  # BT-140
            _text(allowance, _RAM + "Reason", discount_reason)  # BT-139
        line_sum = _sub(settlement, _RAM + "SpecifiedTradeSettlementLineMonetarySummation")
        _text(line_sum, _RAM + "LineTotalAmount", _amount(amounts.net_amount))  # BT-131

    # --- parties (BG-4, BG-7), references ------------------------------------------------
    agreement = _sub(transaction, _RAM + "ApplicableHeaderTradeAgreement")
    if doc.buyer_reference:
        _text(agreement, _RAM + "BuyerReference", doc.buyer_reference)  # BT-10
    _party(
        agreement,
        _RAM + "SellerTradeParty",
        doc.seller,
        _seller_legal_information(doc.seller, doc.language),
    )
    _party(agreement, _RAM + "BuyerTradeParty", doc.buyer)
    if doc.purchase_order:
        order = _sub(agreement, _RAM + "BuyerOrderReferencedDocument")
        _text(order, _RAM + "IssuerAssignedID", doc.purchase_order)  # BT-13

    # --- delivery (BG-13) ----------------------------------------------------------------
    delivery = _sub(transaction, _RAM + "ApplicableHeaderTradeDelivery")
    ship_to = doc.delivery_address
    if ship_to is None and any(
        g.category == VatCategory.INTRA_EU_SUPPLY for g in totals.vat_groups
    ):
        # BR-IC-12 needs the deliver-to country; without a separate delivery address the
        # goods went to the buyer's address.
        ship_to = doc.buyer.address
    if ship_to is not None:
        party = _sub(delivery, _RAM + "ShipToTradeParty")
        _text(party, _RAM + "Name", doc.buyer.name)  # BT-70
        _address(party, ship_to)  # BG-15
    if doc.delivery_date is not None:
        event = _sub(delivery, _RAM + "ActualDeliverySupplyChainEvent")
        _date(event, _RAM + "OccurrenceDateTime", doc.delivery_date)  # BT-72

    # --- settlement ----------------------------------------------------------------------
    settlement = _sub(transaction, _RAM + "ApplicableHeaderTradeSettlement")
    payment = doc.payment
    if payment.remittance:
        _text(settlement, _RAM + "PaymentReference", payment.remittance)  # BT-83
    _text(settlement, _RAM + "InvoiceCurrencyCode", currency)  # BT-5
    if payment.means_code:
        means = _sub(settlement, _RAM + "SpecifiedTradeSettlementPaymentMeans")
        _text(means, _RAM + "TypeCode", payment.means_code)  # BT-81
        if payment.iban:
            account = _sub(means, _RAM + "PayeePartyCreditorFinancialAccount")
            _text(account, _RAM + "IBANID", payment.iban)  # BT-84
            if payment.account_name:
                _text(account, _RAM + "AccountName", payment.account_name)  # BT-85
        if payment.bic:
            bank = _sub(means, _RAM + "PayeeSpecifiedCreditorFinancialInstitution")
            _text(bank, _RAM + "BICID", payment.bic)  # BT-86

    for group in totals.vat_groups:  # BG-23
        tax = _sub(settlement, _RAM + "ApplicableTradeTax")
        _text(tax, _RAM + "CalculatedAmount", _amount(group.tax_amount))  # BT-117
        _text(tax, _RAM + "TypeCode", "VAT")
        exemption = EXEMPTIONS.get(group.category)
        if exemption is not None:
            reason = exemption.text_fr if fr else exemption.text_en
            _text(tax, _RAM + "ExemptionReason", reason)  # BT-120
        _text(tax, _RAM + "BasisAmount", _amount(group.taxable_amount))  # BT-116
        _text(tax, _RAM + "CategoryCode", group.category.value)  # BT-118
        if exemption is not None:
            _text(tax, _RAM + "ExemptionReasonCode", exemption.code)  # BT-121
        if doc.vat_on_debits:
            _text(tax, _RAM + "DueDateTypeCode", DUE_DATE_TYPE_DEBITS)  # BT-8
        _text(tax, _RAM + "RateApplicablePercent", _rate(group.rate))  # BT-119

    if doc.period_start is not None or doc.period_end is not None:  # BG-14
        period = _sub(settlement, _RAM + "BillingSpecifiedPeriod")
        if doc.period_start is not None:
            _date(period, _RAM + "StartDateTime", doc.period_start)  # BT-73
        if doc.period_end is not None:
            _date(period, _RAM + "EndDateTime", doc.period_end)  # BT-74

    for item_allowance in totals.allowances:  # BG-20 / BG-21
        charge = _sub(settlement, _RAM + "SpecifiedTradeAllowanceCharge")
        indicator = _sub(charge, _RAM + "ChargeIndicator")
        _text(indicator, _UDT + "Indicator", "true" if item_allowance.is_charge else "false")
        _text(charge, _RAM + "ActualAmount", _amount(item_allowance.amount))  # BT-92/BT-99
        _text(charge, _RAM + "Reason", item_allowance.reason)  # BT-97/BT-104
        _trade_tax(charge, item_allowance.vat_category, item_allowance.vat_rate)

    terms = _sub(settlement, _RAM + "SpecifiedTradePaymentTerms")
    if doc.payment_terms_text:
        _text(terms, _RAM + "Description", doc.payment_terms_text)  # BT-20
    _date(terms, _RAM + "DueDateDateTime", doc.due_date)  # BT-9

    summation = _sub(settlement, _RAM + "SpecifiedTradeSettlementHeaderMonetarySummation")
    _text(summation, _RAM + "LineTotalAmount", _amount(totals.line_total))  # BT-106
    _text(summation, _RAM + "ChargeTotalAmount", _amount(totals.charge_total))  # BT-108
    _text(summation, _RAM + "AllowanceTotalAmount", _amount(totals.allowance_total))  # BT-107
    _text(summation, _RAM + "TaxBasisTotalAmount", _amount(totals.tax_exclusive))  # BT-109
    _text(summation, _RAM + "TaxTotalAmount", _amount(totals.tax_total), currencyID=currency)
    _text(summation, _RAM + "GrandTotalAmount", _amount(totals.tax_inclusive))  # BT-112
    if totals.prepaid:
        _text(summation, _RAM + "TotalPrepaidAmount", _amount(totals.prepaid))  # BT-113
    _text(summation, _RAM + "DuePayableAmount", _amount(totals.due_payable))  # BT-115

    for preceding in doc.preceding_invoices:  # BG-3
        reference = _sub(settlement, _RAM + "InvoiceReferencedDocument")
        _text(reference, _RAM + "IssuerAssignedID", preceding.number)  # BT-25
        _date(reference, _RAM + "FormattedIssueDateTime", preceding.issue_date, _QDT)  # BT-26

    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
