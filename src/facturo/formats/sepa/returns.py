"""Returns and rejections of SEPA direct debits reported by the bank.

- ``pain.002`` (customer payment status report, versions .001.02 to .001.10): a rejected
  group (``GrpSts`` RJCT, every debit of the original message) or rejected transactions
  (``TxSts`` RJCT) with their ISO reason code (``StsRsnInf/Rsn/Cd``);
- ``camt.054`` (debit notification): booked debits on our account that reverse a
  collection, the reason in ``RtrInf/Rsn/Cd``. Amounts, dates and EndToEndIds come from the
  statements reader (``formats.statements.camt``, which also does its hardening); only the
  reason codes are read here.

Pure: bytes in, plain dataclasses out. Refused before parsing: more than ``max_bytes``, a
DOCTYPE or ENTITY declaration (XML bombs, external entities); lxml runs without network or
entity resolution.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from facturo.core.bank import StatementError
from facturo.formats.statements.camt import parse_camt

MAX_BYTES = 20 * 1024 * 1024
_NS = re.compile(rb'xmlns(?::[\w.-]+)?\s*=\s*["\']urn:iso:std:iso:20022:tech:xsd:([^"\']+)["\']')


class ReturnsFileError(ValueError):
    """The file cannot be read; ``where`` says where (element path or line)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where, self.message = where, message


@dataclass(frozen=True)
class ReturnedDebit:
    """One debit the bank did not (or no longer) pay. ``end_to_end_id`` empty and
    ``message_id`` set: the whole original file was rejected."""

    end_to_end_id: str
    reason_code: str
    amount: Decimal | None
    message_id: str
    on: dt.date | None
    position: str


@dataclass(frozen=True)
class ReturnsFile:
    kind: str  # "pain.002.001.03", "camt.054.001.02", …
    items: list[ReturnedDebit]


def _version(data: bytes) -> str:
    match = _NS.search(data[:4000])
    if not match:
        raise ReturnsFileError("", "not an ISO 20022 document (no urn:iso:std:iso:20022 namespace)")
    return match.group(1).decode("ascii", "replace")


def _refuse_hostile(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise ReturnsFileError("", f"file larger than {max_bytes} bytes")
    for marker in (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype", b"<!entity"):
        at = data.find(marker)
        if at >= 0:
            line = data.count(b"\n", 0, at) + 1
            raise ReturnsFileError(f"line {line}", "a DOCTYPE or ENTITY declaration is refused")


def _tree(data: bytes) -> etree._Element:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ReturnsFileError(f"line {exc.lineno}", f"not well-formed XML: {exc.msg}") from None


def _text(el: etree._Element, path: str, ns: str) -> str:
    found = el.find("/".join(f"{{{ns}}}{p}" for p in path.split("/")))
    return (found.text or "").strip() if found is not None else ""


def _reason(el: etree._Element, ns: str) -> str:
    return _text(el, "StsRsnInf/Rsn/Cd", ns) or _text(el, "StsRsnInf/Rsn/Prtry", ns)


def _pain002(root: etree._Element, ns: str) -> list[ReturnedDebit]:
    report = root.find(f"{{{ns}}}CstmrPmtStsRpt")
    if report is None:
        raise ReturnsFileError("Document", "expected CstmrPmtStsRpt")
    group = report.find(f"{{{ns}}}OrgnlGrpInfAndSts")
    if group is None:
        raise ReturnsFileError("CstmrPmtStsRpt", "expected OrgnlGrpInfAndSts")
    message_id = _text(group, "OrgnlMsgId", ns)
    items: list[ReturnedDebit] = []
    txs = list(report.iter(f"{{{ns}}}TxInfAndSts"))
    for i, tx in enumerate(txs, 1):
        status = _text(tx, "TxSts", ns)
        if status != "RJCT":
            continue
        where = f"TxInfAndSts[{i}] (line {tx.sourceline})"
        e2e = _text(tx, "OrgnlEndToEndId", ns)
        if not e2e:
            raise ReturnsFileError(where, "a rejected transaction without OrgnlEndToEndId")
        raw = _text(tx, "OrgnlTxRef/Amt/InstdAmt", ns)
        try:
            amount = Decimal(raw) if raw else None
        except InvalidOperation:
            raise ReturnsFileError(where, f"amount {raw!r} is not a number") from None
        on_text = _text(tx, "OrgnlTxRef/ReqdColltnDt", ns)
        on = dt.date.fromisoformat(on_text) if on_text else None
        reason = _reason(tx, ns) or _reason(group, ns)
        items.append(ReturnedDebit(e2e, reason, amount, message_id, on, where))
    if not items and _text(group, "GrpSts", ns) == "RJCT":
        where = f"OrgnlGrpInfAndSts (line {group.sourceline})"
        items.append(ReturnedDebit("", _reason(group, ns), None, message_id, None, where))
    return items


def _camt054(data: bytes, root: etree._Element, ns: str, source: str) -> list[ReturnedDebit]:
    reasons: dict[str, str] = {}
    for tx in root.iter(f"{{{ns}}}TxDtls"):
        e2e = _text(tx, "Refs/EndToEndId", ns)
        code = _text(tx, "RtrInf/Rsn/Cd", ns) or _text(tx, "RtrInf/Rsn/Prtry", ns)
        if e2e and code:
            reasons[e2e] = code
    try:
        statements = parse_camt(data, source)
    except StatementError as exc:
        raise ReturnsFileError("", str(exc)) from None
    items: list[ReturnedDebit] = []
    for statement in statements:
        for line in statement.lines:
            # A return is money going back out of our account for one of our debits.
            if line.amount >= 0 or line.end_to_end_id not in reasons:
                continue
            items.append(
                ReturnedDebit(
                    line.end_to_end_id,
                    reasons[line.end_to_end_id],
                    -line.amount,
                    "",
                    line.booking_date,
                    line.position,
                )
            )
    return items


def parse_returns(data: bytes, source: str = "", *, max_bytes: int = MAX_BYTES) -> ReturnsFile:
    """The debits a pain.002 or camt.054 file reports as rejected or returned."""
    _refuse_hostile(data, max_bytes)
    version = _version(data)
    root = _tree(data)
    ns = etree.QName(root).namespace or ""
    if version.startswith("pain.002."):
        return ReturnsFile(version, _pain002(root, ns))
    if version.startswith("camt.054."):
        return ReturnsFile(version, _camt054(data, root, ns, source))
    raise ReturnsFileError("", f"expected a pain.002 or camt.054 file, found {version}")
