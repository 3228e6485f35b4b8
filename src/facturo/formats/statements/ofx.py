"""OFX 1.x (SGML) and 2.x (XML) bank statements, read with ofxtools.

ofxtools tokenises OFX itself (no XML parser, no entity expansion); we still refuse DOCTYPE
and ENTITY declarations up front like for CAMT. OFX carries only the closing (ledger)
balance, so the balance check is not possible: ``balance_checked`` stays False.
"""

from __future__ import annotations

import io
from decimal import Decimal

from ofxtools.Parser import OFXTree

from facturo.core.bank import Balance, Statement, StatementError, StatementLine, with_fingerprints

from ._common import DEFAULT_MAX_BYTES, Rows, check_currency, check_size


def parse_ofx(
    data: bytes,
    source: str = "",
    *,
    import_valid_lines: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Statement]:
    check_size(data, source, max_bytes)
    for marker in (b"<!DOCTYPE", b"<!ENTITY"):
        if marker in data.upper():
            raise StatementError(
                source, "header", "DOCTYPE/ENTITY declarations are not allowed in OFX",
                code="statement.hostile_xml",
            )  # fmt: skip
    tree = OFXTree()
    try:
        tree.parse(io.BytesIO(data))
        ofx = tree.convert()
    except Exception as exc:  # ofxtools raises many types (ParseError, ValueError, KeyError…)
        raise StatementError(
            source, "OFX", f"expected a valid OFX statement ({type(exc).__name__}: {exc})"
        ) from None
    statements = []
    for s_index, stmt in enumerate(getattr(ofx, "statements", []) or [], 1):
        label = f"STMTRS[{s_index}]"
        account = str(getattr(stmt.account, "acctid", "") or "")
        currency = check_currency(str(stmt.curdef or ""), source, label + "/CURDEF")
        rows = Rows(source, import_valid_lines)
        lines = []
        for t_index, trn in enumerate(stmt.banktranlist or [], 1):
            where = f"{label}/STMTTRN[{t_index}] (FITID {trn.fitid})"
            try:
                amount = trn.trnamt
                if not isinstance(amount, Decimal) or trn.dtposted is None:
                    raise StatementError(source, where, "expected TRNAMT and DTPOSTED")
                name = str(trn.name or getattr(trn.payee, "name", "") or "")
                trn_currency = currency
                if trn.currency is not None:
                    trn_currency = check_currency(str(trn.currency.cursym), source, where)
                lines.append(
                    StatementLine(
                        booking_date=trn.dtposted.date(),
                        value_date=trn.dtavail.date() if trn.dtavail else None,
                        amount=amount,
                        currency=trn_currency,
                        counterparty_name=name.strip(),
                        remittance_unstructured=str(trn.memo or "").strip(),
                        bank_reference=str(trn.fitid or "").strip(),
                        end_to_end_id=str(trn.refnum or "").strip(),
                        position=where,
                    )
                )
            except StatementError as exc:
                rows.reject(exc, repr(trn))
        closing = None
        if stmt.ledgerbal is not None:
            closing = Balance(stmt.ledgerbal.balamt, currency, stmt.ledgerbal.dtasof.date())
        statements.append(
            Statement(
                source=source,
                format="ofx",
                account_iban=account,
                currency=currency,
                lines=with_fingerprints(account, lines),
                closing_balance=closing,
                rejected=tuple(rows.rejected),
                notes=("OFX carries no opening balance: balances not checked",),
            )
        )
    if not statements:
        raise StatementError(source, "OFX", "expected at least one bank statement (STMTRS)")
    return statements
