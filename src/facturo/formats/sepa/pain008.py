"""SEPA Core direct debit initiation files, ISO 20022 ``pain.008.001.02`` and ``.08``.

A pure writer: plain dataclasses in, bytes out. The two versions differ, for what we write,
only by their namespace and the agent's ``BIC`` element (``BICFI`` in .08). One ``PmtInf``
block per sequence type (FRST, RCUR, OOFF) as the rulebook wants; the group header and
every block carry the number of transactions and the control sum of what they contain.
:func:`validate` checks a file against the official ISO 20022 XSD of its version, shipped
by the ``sepaxml`` package.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources

from lxml import etree

V02, V08 = "pain.008.001.02", "pain.008.001.08"
VERSIONS = (V02, V08)
NAMESPACE = f"urn:iso:std:iso:20022:tech:xsd:{V02}"
_ID = re.compile(r"^[A-Za-z0-9/\-?:().,'+]{1,35}$")
SEQUENCE_TYPES = ("FRST", "RCUR", "OOFF")
_NOT_LATIN = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")


def sequence_type(*, recurrent: bool, collected_before: bool) -> str:
    """OOFF for a one-off mandate; for a recurrent one FRST until a collection went through
    (a returned first collection leaves it at FRST), RCUR afterwards."""
    if not recurrent:
        return "OOFF"
    return "RCUR" if collected_before else "FRST"


def sepa_id(text: str, max_length: int = 35) -> str:
    """An identifier (EndToEndId, MsgId) as it will be written: SEPA Latin, no spaces
    (``_`` and other characters become ``-``). Store this value, not the raw one."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"-{2,}", "-", _NOT_LATIN.sub("-", plain.replace(" ", "-"))).strip("-/")
    return cleaned[:max_length] or "NOTPROVIDED"


def sepa_text(text: str, max_length: int) -> str:
    """The SEPA Latin character set: accents dropped, other characters replaced by a space."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"\s+", " ", _NOT_LATIN.sub(" ", plain)).strip()
    return cleaned[:max_length].strip() or "NOTPROVIDED"[:max_length]


@dataclass(frozen=True)
class Creditor:
    name: str
    iban: str
    bic: str
    identifier: str  # SEPA creditor identifier (ICS in France)


@dataclass(frozen=True)
class DirectDebit:
    end_to_end_id: str
    amount: Decimal
    mandate_reference: str
    mandate_signed_on: dt.date
    sequence_type: str
    debtor_name: str
    debtor_iban: str
    debtor_bic: str  # "" when unknown (allowed inside the EEA since 2016)
    remittance: str


class Pain008Error(ValueError):
    pass


def _amount(value: Decimal) -> str:
    if value != value.quantize(Decimal("0.01")) or value <= 0:
        raise Pain008Error(f"amount {value} must be positive with at most 2 decimals")
    return f"{value:.2f}"


def _namespace(version: str) -> str:
    if version not in VERSIONS:
        raise Pain008Error(f"unknown version {version!r} (expected one of {VERSIONS})")
    return f"urn:iso:std:iso:20022:tech:xsd:{version}"


def _sub(
    parent: etree._Element, tag: str, text: str | None = None, **attrib: str
) -> etree._Element:
    ns = etree.QName(parent).namespace
    element = etree.SubElement(parent, f"{{{ns}}}{tag}", attrib)
    if text is not None:
        element.text = text
    return element


def _path(parent: etree._Element, path: str, text: str) -> etree._Element:
    *heads, last = path.split("/")
    for head in heads:
        parent = _sub(parent, head)
    return _sub(parent, last, text)


def _agent(parent: etree._Element, tag: str, bic: str) -> None:
    institution = _sub(_sub(parent, tag), "FinInstnId")
    if bic:
        v08 = etree.QName(parent).namespace == _namespace(V08)
        _sub(institution, "BICFI" if v08 else "BIC", bic)
    else:
        _path(institution, "Othr/Id", "NOTPROVIDED")


def control_sum(debits: Sequence[DirectDebit]) -> Decimal:
    return sum((d.amount for d in debits), Decimal(0))


def write(
    *,
    message_id: str,
    created_at: dt.datetime,
    creditor: Creditor,
    collection_date: dt.date,
    debits: Sequence[DirectDebit],
    currency: str = "EUR",
    version: str = V02,
) -> bytes:
    """The pain.008 file (``version`` .02 or .08) for these debits, all collected on
    ``collection_date``. EndToEndIds are written as given: they must already be
    :func:`sepa_id` values (what is stored is what the bank will quote back)."""
    namespace = _namespace(version)
    if not debits:
        raise Pain008Error("a direct debit file needs at least one transaction")
    if currency != "EUR":
        raise Pain008Error("SEPA direct debits are in euros")
    for debit in debits:
        if debit.sequence_type not in SEQUENCE_TYPES:
            raise Pain008Error(f"unknown sequence type {debit.sequence_type!r}")
        _amount(debit.amount)
        if not _ID.match(debit.end_to_end_id):
            raise Pain008Error(f"EndToEndId {debit.end_to_end_id!r} is not a SEPA identifier")
    ids = [d.end_to_end_id for d in debits]
    if len(set(ids)) != len(ids):
        raise Pain008Error("two transactions share an EndToEndId")
    root = etree.Element(f"{{{namespace}}}Document", nsmap={None: namespace})
    initiation = _sub(root, "CstmrDrctDbtInitn")
    header = _sub(initiation, "GrpHdr")
    _sub(header, "MsgId", sepa_text(message_id, 35))
    _sub(header, "CreDtTm", created_at.replace(microsecond=0, tzinfo=None).isoformat())
    _sub(header, "NbOfTxs", str(len(debits)))
    _sub(header, "CtrlSum", _amount(control_sum(debits)))
    _path(header, "InitgPty/Nm", sepa_text(creditor.name, 70))
    for seq in SEQUENCE_TYPES:
        group = [d for d in debits if d.sequence_type == seq]
        if not group:
            continue
        block = _sub(initiation, "PmtInf")
        _sub(block, "PmtInfId", sepa_text(f"{message_id}-{seq}", 35))
        _sub(block, "PmtMtd", "DD")
        _sub(block, "BtchBookg", "true")
        _sub(block, "NbOfTxs", str(len(group)))
        _sub(block, "CtrlSum", _amount(control_sum(group)))
        kind = _sub(block, "PmtTpInf")
        _path(kind, "SvcLvl/Cd", "SEPA")
        _path(kind, "LclInstrm/Cd", "CORE")
        _sub(kind, "SeqTp", seq)
        _sub(block, "ReqdColltnDt", collection_date.isoformat())
        _path(block, "Cdtr/Nm", sepa_text(creditor.name, 70))
        _path(block, "CdtrAcct/Id/IBAN", creditor.iban)
        _agent(block, "CdtrAgt", creditor.bic)
        _sub(block, "ChrgBr", "SLEV")
        scheme = _sub(_sub(_sub(_sub(block, "CdtrSchmeId"), "Id"), "PrvtId"), "Othr")
        _sub(scheme, "Id", creditor.identifier)
        _path(scheme, "SchmeNm/Prtry", "SEPA")
        for debit in group:
            tx = _sub(block, "DrctDbtTxInf")
            _path(tx, "PmtId/EndToEndId", debit.end_to_end_id)
            _sub(tx, "InstdAmt", _amount(debit.amount), Ccy=currency)
            mandate = _sub(_sub(tx, "DrctDbtTx"), "MndtRltdInf")
            _sub(mandate, "MndtId", debit.mandate_reference)
            _sub(mandate, "DtOfSgntr", debit.mandate_signed_on.isoformat())
            _agent(tx, "DbtrAgt", debit.debtor_bic)
            _path(tx, "Dbtr/Nm", sepa_text(debit.debtor_name, 70))
            _path(tx, "DbtrAcct/Id/IBAN", debit.debtor_iban)
            _path(tx, "RmtInf/Ustrd", sepa_text(debit.remittance, 140))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


@cache
def _schema(version: str = V02) -> etree.XMLSchema:
    """The official ISO 20022 XSD of ``version``, as shipped by the ``sepaxml`` package
    (``sepaxml/schemas/pain.008.001.0X.xsd``; see docs/payments.md for provenance)."""
    source = resources.files("sepaxml") / "schemas" / f"{version}.xsd"
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.fromstring(source.read_bytes(), parser))


def version_of(data: bytes) -> str:
    """``pain.008.001.02`` or ``.08`` from the document's namespace ("" when neither)."""
    for version in VERSIONS:
        if _namespace(version).encode() in data[:2000]:
            return version
    return ""


def validate(data: bytes) -> list[str]:
    """Errors against the official XSD of the file's version (.02 or .08), plus the sums
    the XSD cannot check (group header and blocks against their transactions); empty when
    the file is valid."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        document = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    namespace = etree.QName(document).namespace or ""
    version = namespace.rsplit(":", 1)[-1]
    if version not in VERSIONS:
        return [f"not a pain.008.001.02 or .08 document (namespace {namespace!r})"]
    schema = _schema(version)
    errors: list[str] = []
    if not schema.validate(document):
        errors = [f"line {e.line}: {e.message}" for e in schema.error_log]
    ns = {"p": namespace}

    def amounts(node: etree._Element) -> list[Decimal]:
        return [Decimal(str(t)) for t in node.xpath(".//p:InstdAmt/text()", namespaces=ns)]

    for node in [*document.xpath("//p:GrpHdr", namespaces=ns),
                 *document.xpath("//p:PmtInf", namespaces=ns)]:  # fmt: skip
        scope = document if etree.QName(node).localname == "GrpHdr" else node
        found = amounts(scope)
        count = node.findtext(f"{{{namespace}}}NbOfTxs")
        total = node.findtext(f"{{{namespace}}}CtrlSum")
        where = etree.QName(node).localname
        if count is not None and int(count) != len(found):
            errors.append(f"{where}: NbOfTxs {count} but {len(found)} transactions")
        if total is not None and Decimal(total) != sum(found, Decimal(0)):
            errors.append(f"{where}: CtrlSum {total} but transactions sum to {sum(found)}")
    return errors
