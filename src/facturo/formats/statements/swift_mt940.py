"""SWIFT MT940 statements, read with the ``mt-940`` package.

Many banks put structured details in field :86: — either ``?20``…``?33`` sub-fields (German
"GVC" layout) or ``/TAG/value`` pairs (``/EREF/``, ``/NAME/``, ``/IBAN/``, ``/REMI/``, used by
Dutch and French banks). Both are recognised; anything else becomes remittance text.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import mt940

from facturo.core.bank import (
    Balance,
    Statement,
    StatementError,
    StatementLine,
    check_balances,
    with_fingerprints,
)

from ._common import DEFAULT_MAX_BYTES, Rows, check_currency, check_size

_SLASH_TAGS = re.compile(r"/(EREF|NAME|IBAN|REMI|CNTP|ORDP|BENM|MARF|CSID|RTRN|BIC)/")
_GVC = re.compile(r"\?(\d\d)")


def _details(text: str) -> dict[str, str]:
    text = text.replace("\r", "").replace("\n", "")
    result: dict[str, str] = {}
    if _GVC.search(text):
        parts = _GVC.split(text)
        fields: dict[str, list[str]] = {}
        for code, value in zip(parts[1::2], parts[2::2], strict=False):
            fields.setdefault(code, []).append(value)
        purpose = "".join("".join(fields.get(str(c), [])) for c in range(20, 30))
        purpose += "".join("".join(fields.get(str(c), [])) for c in range(60, 64))
        eref = re.search(r"EREF\+(\S+)", purpose)
        if eref:
            result["end_to_end_id"] = eref.group(1)
        result["remittance_unstructured"] = purpose.strip()
        result["counterparty_name"] = "".join(fields.get("32", []) + fields.get("33", [])).strip()
        result["counterparty_iban"] = "".join(fields.get("31", [])).strip()
        return result
    pieces = _SLASH_TAGS.split(text)
    if len(pieces) > 1:
        values = dict(zip(pieces[1::2], pieces[2::2], strict=False))
        result["end_to_end_id"] = values.get("EREF", "").strip("/ ")
        result["counterparty_name"] = values.get("NAME", "").strip("/ ")
        result["counterparty_iban"] = values.get("IBAN", "").strip("/ ")
        remi = values.get("REMI", "").strip("/ ")
        result["remittance_unstructured"] = (remi or pieces[0]).strip()
        return result
    result["remittance_unstructured"] = text.strip()
    return result


_IBAN_PREFIX = re.compile(r"^([A-Z]{2}\d{2}[A-Z0-9]{10,30}?)(?=[A-Z][a-z]|\s|$)")


def _gvc_details(t: dict[str, object]) -> dict[str, str]:
    name = str(t.get("applicant_name") or "")
    iban = str(t.get("gvc_applicant_iban") or t.get("applicant_iban") or "")
    # Some files put ?31 (IBAN) right before ?32 (name) and the package joins them.
    match = _IBAN_PREFIX.match(name)
    if not iban and match:
        iban, name = match.group(1), name[match.end() :]
    purpose = " ".join(str(t.get(k) or "") for k in ("purpose", "additional_purpose")).strip()
    return {
        "counterparty_name": name.strip(),
        "counterparty_iban": iban.strip(),
        "remittance_unstructured": purpose,
        "end_to_end_id": str(t.get("end_to_end_reference") or "").strip(),
    }


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # SWIFT charset is a subset anyway


def parse_mt940(
    data: bytes,
    source: str = "",
    *,
    import_valid_lines: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Statement]:
    check_size(data, source, max_bytes)
    text = _decode(data)
    if ":20:" not in text or (":61:" not in text and ":60" not in text):
        raise StatementError(source, "line 1", "expected an MT940 statement (fields :20:, :60F:)")
    # Line numbers of every :61: so each transaction's error can say where it is.
    tx_lines = [i for i, line in enumerate(text.splitlines(), 1) if line.startswith(":61:")]
    try:
        parsed = mt940.parse_statements(text)
    except Exception as exc:  # the package raises ValueError, RuntimeError… with the tag
        raise StatementError(source, "MT940", f"expected valid MT940 fields ({exc})") from None
    statements = []
    tx_index = 0
    for s_index, stmt in enumerate(parsed, 1):
        label = f"statement {s_index}"
        data_ = stmt.data
        account = str(data_.get("account_identification") or "").replace(" ", "")
        opening_raw = data_.get("final_opening_balance") or data_.get("opening_balance")
        closing_raw = data_.get("final_closing_balance") or data_.get("closing_balance")
        if opening_raw is None or closing_raw is None:
            raise StatementError(source, label, "expected :60F: and :62F: balances")
        currency = check_currency(str(opening_raw.amount.currency), source, label + " :60F:")
        opening = Balance(Decimal(opening_raw.amount.amount), currency)
        closing = Balance(Decimal(closing_raw.amount.amount), currency)
        rows = Rows(source, import_valid_lines)
        lines = []
        for tx in stmt:
            line_no = tx_lines[tx_index] if tx_index < len(tx_lines) else 0
            tx_index += 1
            where = f"line {line_no} (:61:)"
            t = tx.data
            try:
                if t.get("amount") is None or t.get("date") is None:
                    raise StatementError(source, where, "expected a date and an amount in :61:")
                if "purpose" in t:  # the package already split the German ?xx sub-fields
                    details = _gvc_details(t)
                else:
                    details = _details(str(t.get("transaction_details") or ""))
                customer_ref = str(t.get("customer_reference") or "")
                if customer_ref and customer_ref != "NONREF" and "end_to_end_id" not in details:
                    details["end_to_end_id"] = customer_ref
                raw_entry = t.get("entry_date") or t["date"]
                entry = date(raw_entry.year, raw_entry.month, raw_entry.day)
                value = date(t["date"].year, t["date"].month, t["date"].day)
                lines.append(
                    StatementLine(
                        booking_date=entry,
                        value_date=value,
                        amount=Decimal(t["amount"].amount),
                        currency=check_currency(str(t.get("currency") or currency), source, where),
                        bank_reference=str(t.get("bank_reference") or "").strip(),
                        position=where,
                        **details,
                    )
                )
            except StatementError as exc:
                rows.reject(exc, str(t))
        checked = False
        if not rows.rejected:
            checked = check_balances(source, f"{label} :62F:", opening, closing, lines)
        statements.append(
            Statement(
                source=source,
                format="mt940",
                account_iban=account,
                currency=currency,
                lines=with_fingerprints(account, lines),
                statement_id=str(data_.get("transaction_reference") or ""),
                opening_balance=opening,
                closing_balance=closing,
                rejected=tuple(rows.rejected),
                balance_checked=checked,
            )
        )
    if not statements:
        raise StatementError(source, "MT940", "expected at least one statement")
    return statements
