"""A small CAMT.053.001.08 writer for the demo company and the browser tests (the real
files come from banks; this one only writes what ``formats.statements`` reads)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class SampleEntry:
    booking_date: dt.date
    amount: Decimal  # signed
    label: str = ""
    name: str = ""
    iban: str = ""
    reference: str = ""  # RF creditor reference
    bank_reference: str = ""
    end_to_end_id: str = "NOTPROVIDED"


def camt053(
    iban: str, entries: Sequence[SampleEntry], *, opening: Decimal = Decimal(0),
    currency: str = "EUR", statement_id: str = "DEMO-1",
) -> bytes:  # fmt: skip
    closing = opening + sum((e.amount for e in entries), Decimal(0))
    first = min((e.booking_date for e in entries), default=dt.date(2026, 1, 1))
    last = max((e.booking_date for e in entries), default=first)

    def bal(code: str, amount: Decimal, day: dt.date) -> str:
        ind = "CRDT" if amount >= 0 else "DBIT"
        return (
            f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
            f'<Amt Ccy="{currency}">{abs(amount):.2f}</Amt><CdtDbtInd>{ind}</CdtDbtInd>'
            f"<Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>"
        )

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:'
        'xsd:camt.053.001.08"><BkToCstmrStmt><GrpHdr><MsgId>'
        f"{escape(statement_id)}</MsgId><CreDtTm>{last.isoformat()}T20:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>{escape(statement_id)}</Id><Acct><Id><IBAN>{iban}</IBAN></Id>"
        f"<Ccy>{currency}</Ccy></Acct>",
        bal("OPBD", opening, first),
        bal("CLBD", closing, last),
    ]
    for e in entries:
        credit = e.amount > 0
        role = "Dbtr" if credit else "Cdtr"
        strd = (
            f"<Strd><CdtrRefInf><Ref>{escape(e.reference)}</Ref></CdtrRefInf></Strd>"
            if e.reference
            else ""
        )
        account = f"<{role}Acct><Id><IBAN>{e.iban}</IBAN></Id></{role}Acct>" if e.iban else ""
        ref = f"<AcctSvcrRef>{escape(e.bank_reference)}</AcctSvcrRef>" if e.bank_reference else ""
        parts.append(
            f'<Ntry><Amt Ccy="{currency}">{abs(e.amount):.2f}</Amt>'
            f"<CdtDbtInd>{'CRDT' if credit else 'DBIT'}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
            f"<BookgDt><Dt>{e.booking_date.isoformat()}</Dt></BookgDt>"
            f"<ValDt><Dt>{e.booking_date.isoformat()}</Dt></ValDt>{ref}"
            f"<NtryDtls><TxDtls><Refs><EndToEndId>{escape(e.end_to_end_id)}</EndToEndId></Refs>"
            f"<RltdPties><{role}><Pty><Nm>{escape(e.name)}</Nm></Pty></{role}>{account}"
            f"</RltdPties><RmtInf><Ustrd>{escape(e.label)}</Ustrd>{strd}</RmtInf>"
            "</TxDtls></NtryDtls></Ntry>"
        )
    parts.append("</Stmt></BkToCstmrStmt></Document>")
    return "".join(parts).encode()
