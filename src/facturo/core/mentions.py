"""Legal mentions generated from data (art. 242 nonies A CGI, L441-9 and L441-10 C. com.).

The wording is legal text, so it lives here as data in French and English rather than in
translation catalogues that a translator could soften.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from .document import LegalNotes, Nature
from .tax import EXEMPTIONS, VatCategory

RECOVERY_INDEMNITY_EUR = Decimal(40)  # art. D441-5 C. com.


def operation_nature(natures: Iterable[Nature], after_deposit: bool = False) -> str:
    """BT-23 « cadre de facturation »: B1 goods, S1 services, M1 mixed (…4 after deposits)."""
    kinds = set(natures)
    letter = "M" if len(kinds) > 1 else ("B" if kinds == {Nature.GOODS} else "S")
    return f"{letter}{4 if after_deposit else 1}"


def _fmt_rate(rate: Decimal) -> str:
    text = format(rate.normalize(), "f")
    return text.replace(".", ",")


def legal_notes(
    *,
    language: str,
    late_penalty_rate: Decimal | None,
    early_payment_discount: str,
    categories: Iterable[VatCategory],
    vat_on_debits: bool,
    buyer_is_business: bool,
) -> LegalNotes:
    """Build the mandatory notes. ``late_penalty_rate`` None means the legal default
    (ECB refinancing rate + 10 points, art. L441-10 II)."""
    fr = language.startswith("fr")
    if late_penalty_rate is None:
        penalties = (
            "Pénalités de retard : taux de refinancement de la BCE majoré de 10 points "
            "(art. L441-10 du Code de commerce), exigibles sans rappel."
            if fr
            else "Late payment penalties: ECB refinancing rate plus 10 percentage points "
            "(art. L441-10 French Commercial Code), due without reminder."
        )
    else:
        penalties = (
            f"Pénalités de retard : {_fmt_rate(late_penalty_rate)} % par an "
            "(art. L441-10 du Code de commerce), exigibles sans rappel."
            if fr
            else f"Late payment penalties: {late_penalty_rate.normalize():f} % per year "
            "(art. L441-10 French Commercial Code), due without reminder."
        )
    if buyer_is_business:
        indemnity = (
            "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40 € "
            "(art. L441-10 et D441-5 du Code de commerce)."
            if fr
            else "Fixed compensation for recovery costs in case of late payment: €40 "
            "(art. L441-10 and D441-5 French Commercial Code)."
        )
    else:
        indemnity = (
            "Indemnité forfaitaire pour frais de recouvrement : non applicable "
            "(client particulier)."
            if fr
            else "Fixed recovery compensation: not applicable (consumer customer)."
        )
    discount = early_payment_discount or (
        "Pas d'escompte pour paiement anticipé." if fr else "No discount for early payment."
    )
    mentions: list[str] = []
    seen: set[VatCategory] = set()
    for cat in categories:
        if cat in EXEMPTIONS and cat not in seen:
            seen.add(cat)
            ex = EXEMPTIONS[cat]
            mentions.append(ex.text_fr if fr else ex.text_en)
    if vat_on_debits:
        mentions.append(
            "Option pour le paiement de la taxe d'après les débits"
            if fr
            else "Option for payment of VAT on debits (Option pour le paiement de la taxe "
            "d'après les débits)"
        )
    return LegalNotes(penalties, indemnity, discount, tuple(mentions))
