"""ISO 20022 CAMT.053 (bank-to-customer statement) and CAMT.054 (debit/credit notification),
versions .001.02 to .001.08, read namespace-agnostically by version.

Hardening: the file must be UTF-8 (ISO 20022 requires it) and is refused *before parsing*
if it contains a DOCTYPE or an ENTITY declaration, so neither a "billion laughs" bomb nor an
external entity can cost time, memory or a network access; lxml also runs with entity
resolution, DTD loading and network access off, and the size is capped explicitly. Entries
are read with ``iterparse`` and freed as we go, so memory stays flat on large files.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

from lxml import etree

from facturo.core.bank import (
    Balance,
    Statement,
    StatementError,
    StatementLine,
    check_balances,
    with_fingerprints,
)

from ._common import DEFAULT_MAX_BYTES, Rows, check_currency, check_size, decimal_amount

VERSIONS = tuple(f"camt.05{kind}.001.0{v}" for kind in "34" for v in range(2, 9))
_NAMESPACE = re.compile(
    rb'xmlns(?::[\w.-]+)?\s*=\s*["\']urn:iso:std:iso:20022:tech:xsd:([^"\']+)["\']'
)
_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype", b"<!entity")
OPENING_CODES = ("OPBD", "PRCD")
CLOSING_CODES = ("CLBD",)


def _refuse_hostile(data: bytes, source: str) -> None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or data[:4] in (b"\x00<\x00?", b"<\x00?\x00"):
        raise StatementError(source, "file", "expected UTF-8 XML (ISO 20022), found UTF-16")
    head = data[:200]
    match = re.search(rb'encoding\s*=\s*["\']([\w.-]+)["\']', head)
    if match and match.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        raise StatementError(
            source,
            "line 1",
            f"expected UTF-8 XML (ISO 20022), found encoding {match.group(1).decode()!r}",
        )
    for marker in _FORBIDDEN:
        at = data.find(marker)
        if at >= 0:
            line = data.count(b"\n", 0, at) + 1
            raise StatementError(
                source,
                f"line {line}",
                "a DOCTYPE or ENTITY declaration is not allowed in a bank statement "
                "(refused to protect against XML bombs and external entities)",
                code="statement.hostile_xml",
            )


def detect_version(data: bytes, source: str = "") -> str:
    match = _NAMESPACE.search(data[:4096])
    if not match:
        raise StatementError(
            source,
            "Document",
            "expected an ISO 20022 namespace urn:iso:std:iso:20022:tech:xsd:camt.053.001.0x "
            "or camt.054.001.0x",
        )
    version = match.group(1).decode("ascii", "replace")
    if version not in VERSIONS:
        raise StatementError(
            source,
            "Document",
            f"unsupported message {version!r}; expected one of {', '.join(VERSIONS)}",
        )
    return version


class _Reader:
    def __init__(self, ns: str, source: str) -> None:
        self.ns = ns
        self.source = source
        self._paths: dict[str, str] = {}

    def path(self, path: str) -> str:
        cached = self._paths.get(path)
        if cached is None:
            cached = "/".join(f"{{{self.ns}}}{part}" for part in path.split("/"))
            self._paths[path] = cached
        return cached

    def text(self, el: etree._Element, path: str) -> str:
        found = el.find(self.path(path))
        return (found.text or "").strip() if found is not None else ""

    def find(self, el: etree._Element, path: str) -> etree._Element | None:
        return el.find(self.path(path))

    def where(self, el: etree._Element, label: str) -> str:
        return f"{label} (line {el.sourceline})"

    def date(self, el: etree._Element | None, label: str, required: bool) -> date | None:
        """``Dt`` or ``DtTm`` (the date part), as in every version."""
        if el is None:
            if required:
                raise StatementError(self.source, label, "expected a date (Dt or DtTm)")
            return None
        raw = self.text(el, "Dt") or self.text(el, "DtTm")[:10]
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise StatementError(
                self.source, self.where(el, label), f"expected a date YYYY-MM-DD, found {raw!r}"
            ) from None

    def amount(self, el: etree._Element, label: str) -> tuple[Decimal, str]:
        amt = self.find(el, "Amt")
        if amt is None:
            raise StatementError(self.source, self.where(el, label), "expected an Amt element")
        where = self.where(amt, label + "/Amt")
        value = decimal_amount(amt.text or "", self.source, where)
        if value < 0:
            raise StatementError(
                self.source, where, "expected a positive Amt (the sign is in CdtDbtInd)"
            )
        currency = check_currency(amt.get("Ccy", ""), self.source, where + " @Ccy")
        indicator = self.text(el, "CdtDbtInd")
        if indicator not in ("CRDT", "DBIT"):
            raise StatementError(
                self.source,
                self.where(el, label + "/CdtDbtInd"),
                f"expected CdtDbtInd CRDT or DBIT, found {indicator!r}",
            )
        return (value if indicator == "CRDT" else -value), currency


def _party(r: _Reader, parties: etree._Element | None, role: str) -> tuple[str, str]:
    """Name and IBAN of Dbtr/Cdtr (.02–.07) or Dbtr/Pty (.08), and their account."""
    if parties is None:
        return "", ""
    name = r.text(parties, f"{role}/Nm") or r.text(parties, f"{role}/Pty/Nm")
    iban = r.text(parties, f"{role}Acct/Id/IBAN")
    return name, iban.replace(" ", "").upper()


def _transaction(
    r: _Reader, entry: etree._Element, tx: etree._Element | None, amount: Decimal
) -> dict[str, str]:
    details: dict[str, str] = {"bank_reference": r.text(entry, "AcctSvcrRef")}
    if tx is None:
        details["remittance_unstructured"] = r.text(entry, "AddtlNtryInf")
        return details
    details["bank_reference"] = details["bank_reference"] or r.text(tx, "Refs/AcctSvcrRef")
    details["end_to_end_id"] = r.text(tx, "Refs/EndToEndId")
    parties = r.find(tx, "RltdPties")
    # For money in, the counterparty is the debtor; for money out, the creditor.
    role = "Dbtr" if amount > 0 else "Cdtr"
    details["counterparty_name"], details["counterparty_iban"] = _party(r, parties, role)
    ustrd = [(el.text or "").strip() for el in tx.iterfind(r.path("RmtInf/Ustrd")) if el.text]
    details["remittance_unstructured"] = " ".join(ustrd) or r.text(entry, "AddtlNtryInf")
    details["remittance_structured"] = r.text(tx, "RmtInf/Strd/CdtrRefInf/Ref")
    # A returned SEPA debit or transfer carries the ISO reason (AC04, AM04, MD06…).
    details["return_reason"] = r.text(tx, "RtrInf/Rsn/Cd")[:4].upper()
    return details


def _lines_of_entry(r: _Reader, entry: etree._Element, label: str) -> Iterator[StatementLine]:
    amount, currency = r.amount(entry, label)
    booking = r.date(r.find(entry, "BookgDt"), r.where(entry, label + "/BookgDt"), False)
    value = r.date(r.find(entry, "ValDt"), r.where(entry, label + "/ValDt"), False)
    if booking is None:
        booking = value
    if booking is None:
        raise StatementError(r.source, r.where(entry, label), "expected BookgDt or ValDt")
    txs = list(entry.iterfind(r.path("NtryDtls/TxDtls")))

    def make(line_amount: Decimal, details: dict[str, str], position: str) -> StatementLine:
        return StatementLine(
            booking_date=booking,
            value_date=value,
            amount=line_amount,
            currency=currency,
            counterparty_name=details.get("counterparty_name", ""),
            counterparty_iban=details.get("counterparty_iban", ""),
            remittance_unstructured=details.get("remittance_unstructured", ""),
            remittance_structured=details.get("remittance_structured", ""),
            end_to_end_id=details.get("end_to_end_id", ""),
            bank_reference=details.get("bank_reference", ""),
            return_reason=details.get("return_reason", ""),
            position=position,
        )

    # A batch entry carrying several transactions with their own amounts becomes one line
    # per transaction (each may pay another invoice), when their amounts add up.
    if len(txs) > 1:
        parts = []
        for i, tx in enumerate(txs, 1):
            amt_el = r.find(tx, "Amt")
            if amt_el is None:
                amt_el = r.find(tx, "AmtDtls/TxAmt/Amt")
            if amt_el is None:
                break
            sign = -1 if amount < 0 else 1
            tx_label = f"{label}/TxDtls[{i}]"
            value_i = decimal_amount(amt_el.text or "", r.source, r.where(amt_el, tx_label))
            parts.append((tx, sign * value_i, tx_label))
        if len(parts) == len(txs) and sum(p[1] for p in parts) == amount:
            for tx, part_amount, tx_label in parts:
                details = _transaction(r, entry, tx, part_amount)
                entry_ref = r.text(entry, "AcctSvcrRef")
                tx_ref = r.text(tx, "Refs/AcctSvcrRef")
                if tx_ref or entry_ref:
                    suffix = tx_label.rsplit("/", 1)[-1]
                    details["bank_reference"] = tx_ref or f"{entry_ref}/{suffix}"
                yield make(part_amount, details, r.where(tx, tx_label))
            return
    details = _transaction(r, entry, txs[0] if txs else None, amount)
    yield make(amount, details, r.where(entry, label))


def _balances(
    r: _Reader, stmt: etree._Element, label: str
) -> tuple[Balance | None, Balance | None]:
    opening = closing = None
    for i, bal in enumerate(stmt.iterfind(r.path("Bal")), 1):
        code = r.text(bal, "Tp/CdOrPrtry/Cd")
        if code not in OPENING_CODES + CLOSING_CODES:
            continue
        amount, currency = r.amount(bal, f"{label}/Bal[{i}]")
        when = r.date(r.find(bal, "Dt"), r.where(bal, f"{label}/Bal[{i}]/Dt"), False)
        balance = Balance(amount, currency, when)
        if code in OPENING_CODES and opening is None:
            opening = balance
        elif code in CLOSING_CODES:
            closing = balance
    return opening, closing


def parse_camt(
    data: bytes,
    source: str = "",
    *,
    import_valid_lines: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Statement]:
    check_size(data, source, max_bytes)
    _refuse_hostile(data, source)
    version = detect_version(data, source)
    ns = f"urn:iso:std:iso:20022:tech:xsd:{version}"
    r = _Reader(ns, source)
    container = "Stmt" if version.startswith("camt.053") else "Ntfctn"
    statements: list[Statement] = []
    rows = Rows(source, import_valid_lines)
    pending: list[StatementLine] = []
    notes: list[str] = []
    n_stmt = 0
    n_entry = 0
    events = etree.iterparse(
        io.BytesIO(data),
        events=("end",),
        tag=(f"{{{ns}}}Ntry", f"{{{ns}}}{container}"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        for _event, el in events:
            if el.tag == f"{{{ns}}}Ntry":
                n_entry += 1
                label = f"{container}[{n_stmt + 1}]/Ntry[{n_entry}]"
                status = r.text(el, "Sts") or r.text(el, "Sts/Cd")
                if status and status != "BOOK":
                    notes.append(f"{label}: entry with status {status} skipped (not booked)")
                else:
                    try:
                        new = list(_lines_of_entry(r, el, label))
                        pending.extend(new)
                    except StatementError as exc:
                        rows.reject(exc, etree.tostring(el, encoding="unicode")[:500])
                # Entries are done with: free them so memory stays flat on large files.
                el.clear(keep_tail=False)
                continue
            n_stmt += 1
            label = f"{container}[{n_stmt}]"
            iban = r.text(el, "Acct/Id/IBAN").replace(" ", "").upper()
            other = r.text(el, "Acct/Id/Othr/Id")
            account = iban or other
            if not account:
                raise StatementError(
                    source, r.where(el, label + "/Acct"), "expected Acct/Id/IBAN or Acct/Id/Othr/Id"
                )
            currency = r.text(el, "Acct/Ccy") or (pending[0].currency if pending else "")
            opening, closing = _balances(r, el, label)
            checked = False
            rejected_here = [x for x in rows.rejected if x.position.startswith(label + "/")]
            if not rejected_here:
                checked = check_balances(source, label + "/Bal", opening, closing, pending)
            elif opening is not None and closing is not None:
                notes.append(f"{label}: balances not checked because rows were rejected")
            statements.append(
                Statement(
                    source=source,
                    format=version,
                    account_iban=account,
                    currency=currency,
                    lines=with_fingerprints(account, pending),
                    statement_id=r.text(el, "Id"),
                    opening_balance=opening,
                    closing_balance=closing,
                    rejected=tuple(rejected_here),
                    balance_checked=checked,
                    notes=tuple(notes),
                )
            )
            pending, notes, n_entry = [], [], 0
            el.clear(keep_tail=False)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else "?"
        raise StatementError(
            source, f"line {line}", f"malformed or truncated XML: {exc.msg}"
        ) from None
    if not statements:
        raise StatementError(
            source, "Document", f"expected at least one {container} element in {version}"
        )
    return statements
