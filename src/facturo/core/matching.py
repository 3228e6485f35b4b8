"""Propose the invoices a bank credit pays, with a confidence (0–100) and the reason.

Pure and fast: invoices are indexed once (by normalised number and RF reference, by
end-to-end id, by customer IBAN, by open amount, by customer), so each line costs a few
dictionary look-ups, never a scan of all invoices. Strategies, strongest first (ADR 0008):

1. RF creditor reference or invoice number found in the remittance text, tolerant of spaces,
   dashes and OCR-like confusions (O/0, I/1, S/5); several numbers → a grouped payment;
2. the SEPA end-to-end id of one of our own debits;
3. a counterparty IBAN known for a customer, with an amount equal to one of that customer's
   open invoices, to a combination of them (bounded subset sum), or within the tolerance;
4. the amount alone, confirmed by an invoice number one typo away, or by the counterparty
   name (normalised similarity, ``difflib`` — stdlib only: no rapidfuzz in the core);
5. the name alone with a combination or a tolerance.

Lines are matched in two passes (strong evidence first for every line, then the rest), and
an invoice already fully claimed is not proposed again by a weaker strategy. Everything is
deterministic: ties break on due date, then invoice number.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from difflib import SequenceMatcher
from itertools import combinations

from .bank import NOT_PROVIDED, StatementLine

AUTO_CONFIRM = 90  # default threshold; a setting of the organization in the app


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    id: str
    number: str
    customer_id: str
    customer_name: str
    open_amount: Decimal
    currency: str
    due_date: date
    reference: str = ""  # RF creditor reference
    customer_ibans: tuple[str, ...] = ()
    end_to_end_ids: tuple[str, ...] = ()  # of our own SEPA debits collecting it


@dataclass(frozen=True, slots=True)
class Allocation:
    invoice_id: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class MatchProposal:
    line: StatementLine
    allocations: tuple[Allocation, ...]
    confidence: int
    reason: str  # stable code: reference, number, number_ocr, end_to_end_id, iban_amount…
    detail: str
    write_off: Decimal = Decimal(0)  # small difference (fees) to write off
    unallocated: Decimal = Decimal(0)  # over-payment left on the customer's credit

    def auto_confirm(self, threshold: int = AUTO_CONFIRM) -> bool:
        return self.confidence >= threshold


@dataclass(frozen=True)
class MatchSettings:
    tolerance_absolute: Decimal = Decimal("5.00")
    tolerance_ratio: Decimal = Decimal("0.02")
    max_group_candidates: int = 12  # open invoices of a customer tried in a subset sum
    max_group_size: int = 4
    name_similarity: float = 0.82
    # How alike two normalised names are, in [0, 1]: difflib here (stdlib only); the app
    # passes rapidfuzz's, which is much faster on many customers.
    similarity: Callable[[str, str], float] | None = None


_OCR = str.maketrans({"O": "0", "I": "1", "L": "1", "S": "5"})
_TOKEN = re.compile(r"[A-Z0-9]+(?:[-./_][A-Z0-9]+)*")
_LEGAL_FORMS = {
    "SARL", "SAS", "SASU", "SA", "EURL", "SCI", "SNC", "GMBH", "AG", "KG", "LTD", "BV",
    "SRL", "SL", "SPA", "INC", "LLC", "MME", "MR", "M", "MLLE", "STE", "ETS", "ET", "CIE",
}  # fmt: skip


def canonical(text: str) -> str:
    """Upper case, letters and digits only, OCR look-alikes folded: the key of every look-up."""
    return re.sub(r"[^0-9A-Z]", "", text.upper()).translate(_OCR)


def normalise_name(name: str) -> str:
    text = unicodedata.normalize("NFKD", name.upper())
    text = "".join(c if c.isalnum() else " " for c in text if not unicodedata.combining(c))
    return " ".join(w for w in text.split() if w not in _LEGAL_FORMS)


def name_similarity(a: str, b: str) -> float:
    """Normalised similarity of two names in [0, 1] (difflib ratio; word order ignored)."""
    if not a or not b:
        return 0.0
    a1, b1 = " ".join(sorted(a.split())), " ".join(sorted(b.split()))
    return SequenceMatcher(None, a1, b1, autojunk=False).ratio()


def _candidates(text: str) -> list[str]:
    """Canonical strings that may be an invoice number or a reference: runs of letters and
    digits, alone and joined with their 1–2 neighbours (numbers typed with spaces)."""
    tokens = _TOKEN.findall(text.upper())
    result = []
    for i in range(len(tokens)):
        joined = ""
        for j in range(i, min(i + 3, len(tokens))):
            joined += tokens[j]
            if sum(c.isdigit() for c in joined) >= 2:
                result.append(canonical(joined))
    return result


def _one_edit(a: str, b: str) -> bool:
    """One substitution, insertion, deletion or adjacent transposition apart."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )  # fmt: skip
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


@dataclass
class _Index:
    invoices: dict[str, OpenInvoice]
    by_key: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    key_lengths: set[int] = field(default_factory=set)
    by_e2e: dict[str, str] = field(default_factory=dict)
    by_iban: dict[str, str] = field(default_factory=dict)  # IBAN → customer id
    by_amount: dict[tuple[str, Decimal], list[str]] = field(
        default_factory=lambda: defaultdict(list)
    )
    by_customer: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    customer_names: dict[str, str] = field(default_factory=dict)
    by_name_word: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, invoices: Iterable[OpenInvoice]) -> _Index:
        ordered = sorted(invoices, key=lambda i: (i.due_date, i.number, i.id))
        index = cls({i.id: i for i in ordered})
        for inv in ordered:
            for key in {canonical(inv.number), canonical(inv.reference)} - {""}:
                index.by_key[key].append(inv.id)
            for e2e in inv.end_to_end_ids:
                index.by_e2e[e2e] = inv.id
            for iban in inv.customer_ibans:
                index.by_iban[iban.replace(" ", "").upper()] = inv.customer_id
            index.by_amount[(inv.currency, inv.open_amount)].append(inv.id)
            index.by_customer[inv.customer_id].append(inv.id)
            if inv.customer_id not in index.customer_names:
                name = normalise_name(inv.customer_name)
                index.customer_names[inv.customer_id] = name
                for word in set(name.split()):
                    if len(word) >= 3:
                        index.by_name_word[word].append(inv.customer_id)
        return index


class Matcher:
    """Holds the index of open invoices and what earlier lines already claimed."""

    def __init__(self, invoices: Iterable[OpenInvoice], settings: MatchSettings | None = None):
        self.settings = settings or MatchSettings()
        self.similar = self.settings.similarity or name_similarity
        self.index = _Index.build(invoices)
        self.remaining = {i: inv.open_amount for i, inv in self.index.invoices.items()}

    # -- helpers ----------------------------------------------------------------------
    def _open(self, ids: Iterable[str], currency: str) -> list[OpenInvoice]:
        invs = self.index.invoices
        return [invs[i] for i in ids if self.remaining[i] > 0 and invs[i].currency == currency]

    def _proposal(
        self,
        line: StatementLine,
        invoices: Sequence[OpenInvoice],
        confidence: int,
        reason: str,
        detail: str,
        write_off: Decimal = Decimal(0),
    ) -> MatchProposal:
        """Allocate the line to the invoices in order (oldest first), up to each's open
        amount; a difference within tolerance is a write-off, an excess stays unallocated."""
        left = line.amount + write_off
        allocations = []
        for inv in invoices:
            if left <= 0:
                break
            part = min(left, self.remaining[inv.id])
            allocations.append(Allocation(inv.id, part))
            left -= part
        return MatchProposal(
            line, tuple(allocations), confidence, reason, detail, write_off, max(left, Decimal(0))
        )

    def _within_tolerance(self, amount: Decimal, open_amount: Decimal) -> Decimal | None:
        diff = open_amount - amount
        s = self.settings
        if diff > 0 and diff <= s.tolerance_absolute and diff <= open_amount * s.tolerance_ratio:
            return diff
        return None

    def _subset(self, invoices: list[OpenInvoice], amount: Decimal) -> list[list[OpenInvoice]]:
        """Combinations (2…max size) of a customer's open invoices summing to ``amount``."""
        s = self.settings
        pool = invoices[: s.max_group_candidates]
        found = []
        for size in range(2, min(s.max_group_size, len(pool)) + 1):
            for combo in combinations(pool, size):
                if sum(self.remaining[i.id] for i in combo) == amount:
                    found.append(list(combo))
                    if len(found) > 1:
                        return found
            if found:
                return found
        return found

    def _commit(self, proposal: MatchProposal) -> MatchProposal:
        for alloc in proposal.allocations:
            self.remaining[alloc.invoice_id] -= alloc.amount
        return proposal

    # -- strategies ---------------------------------------------------------------------
    def _by_text(self, line: StatementLine) -> MatchProposal | None:
        text = f"{line.remittance_structured} {line.remittance_unstructured}"
        found: list[str] = []
        exact = True
        structured_raw = re.sub(r"[\s-]", "", line.remittance_structured.upper())
        for cand in _candidates(text):
            ids = self.index.by_key.get(cand)
            if not ids and cand.startswith("RF") and len(cand) > 4:
                ids = self.index.by_key.get(cand[4:])  # RF reference → its invoice number
            if ids:
                for inv_id in ids:
                    if inv_id not in found:
                        found.append(inv_id)
        if not found:
            return None
        invoices = self._open(found, line.currency)
        if not invoices:
            return None
        for inv in invoices:
            raw = re.sub(r"[^0-9A-Z]", "", text.upper())
            if canonical(inv.number) not in raw.translate(_OCR) or (
                re.sub(r"[^0-9A-Z]", "", inv.number.upper()) not in raw
                and (not inv.reference or inv.reference not in raw)
            ):
                exact = False
        structured = bool(structured_raw) and any(
            inv.reference == structured_raw for inv in invoices
        )
        total = sum((self.remaining[i.id] for i in invoices), Decimal(0))
        reason = "reference" if structured else ("number" if exact else "number_ocr")
        numbers = ", ".join(i.number for i in invoices)
        if total == line.amount:
            confidence = 99 if structured else (97 if exact else 93)
            return self._proposal(line, invoices, confidence, reason, f"{reason}: {numbers}")
        tolerance = self._within_tolerance(line.amount, total)
        if tolerance is not None:
            confidence = 94 if exact or structured else 90
            return self._proposal(
                line, invoices, confidence, reason,
                f"{reason}: {numbers}, difference {tolerance} written off", tolerance,
            )  # fmt: skip
        # The amount disagrees: a typo may have turned the number into another invoice's
        # (numbers are dense), so an invoice of exactly this amount one typo away wins.
        typo = self._amount_number_typo(line)
        if typo is not None:
            return typo
        # Partial payment or over-payment: only a structured reference (its check digits
        # catch typos) is strong enough to confirm automatically.
        confidence = 91 if structured else 75
        kind = "partial payment" if line.amount < total else "over-payment"
        return self._proposal(line, invoices, confidence, reason, f"{reason}: {numbers}, {kind}")

    def _by_e2e(self, line: StatementLine) -> MatchProposal | None:
        if not line.end_to_end_id or line.end_to_end_id == NOT_PROVIDED:
            return None
        inv_id = self.index.by_e2e.get(line.end_to_end_id)
        if inv_id is None:
            return None
        invoices = self._open([inv_id], line.currency)
        if not invoices:
            return None
        return self._proposal(
            line, invoices, 98, "end_to_end_id", f"our SEPA debit {line.end_to_end_id}"
        )

    def _customer_amount(
        self, line: StatementLine, customer: str, base: int, why: str
    ) -> MatchProposal | None:
        invoices = self._open(self.index.by_customer.get(customer, ()), line.currency)
        if not invoices:
            return None
        equal = [i for i in invoices if self.remaining[i.id] == line.amount]
        if equal:
            confidence = base if len(equal) == 1 else base - 25
            return self._proposal(line, equal[:1], confidence, f"{why}_amount", f"{why}, amount")
        combos = self._subset(invoices, line.amount)
        if combos:
            confidence = base - 4 if len(combos) == 1 else base - 30
            return self._proposal(line, combos[0], confidence, f"{why}_group", f"{why}, group")
        for inv in invoices:
            diff = self._within_tolerance(line.amount, self.remaining[inv.id])
            if diff is not None:
                return self._proposal(
                    line, [inv], base - 8, f"{why}_tolerance", f"{why}, written off {diff}", diff
                )
        return self._proposal(line, invoices, base - 40, f"{why}_partial", f"{why}, oldest first")

    def _by_iban(self, line: StatementLine) -> MatchProposal | None:
        customer = self.index.by_iban.get(line.counterparty_iban)
        if customer is None:
            return None
        return self._customer_amount(line, customer, 95, "iban")

    def _name_customers(self, line: StatementLine) -> list[tuple[float, str]]:
        name = normalise_name(line.counterparty_name)
        if not name:
            return []
        seen: set[str] = set()
        for word in name.split():
            bucket = self.index.by_name_word.get(word, [])
            if len(bucket) <= 200:  # a very common word says nothing
                seen.update(bucket)
        scored = []
        for customer in seen:
            score = self.similar(name, self.index.customer_names[customer])
            if score >= self.settings.name_similarity:
                scored.append((score, customer))
        scored.sort(key=lambda s: (-s[0], s[1]))
        return scored

    def _amount_number_typo(
        self, line: StatementLine, invoices: list[OpenInvoice] | None = None
    ) -> MatchProposal | None:
        if invoices is None:
            ids = self.index.by_amount.get((line.currency, line.amount), ())
            invoices = [
                i for i in self._open(ids, line.currency) if self.remaining[i.id] == line.amount
            ]
        cands = _candidates(line.remittance_unstructured + " " + line.remittance_structured)
        near = [inv for inv in invoices if any(_one_edit(c, canonical(inv.number)) for c in cands)]
        if len(near) == 1:
            return self._proposal(
                line, near, 92, "amount_number_typo", f"amount, number {near[0].number} ±1 typo"
            )
        return None

    def _by_amount(self, line: StatementLine) -> MatchProposal | None:
        ids = self.index.by_amount.get((line.currency, line.amount), ())
        invoices = [
            i for i in self._open(ids, line.currency) if self.remaining[i.id] == line.amount
        ]
        if not invoices:
            return None
        typo = self._amount_number_typo(line, invoices)
        if typo is not None:
            return typo
        name = normalise_name(line.counterparty_name)
        if name:
            scored = sorted(
                (
                    (self.similar(name, self.index.customer_names[i.customer_id]), i)
                    for i in invoices
                ),
                key=lambda s: (-s[0], s[1].due_date, s[1].number),
            )
            best_score, best = scored[0]
            if best_score >= self.settings.name_similarity:
                unique = len(scored) == 1 or scored[1][0] < best_score - 0.1
                return self._proposal(
                    line, [best], 88 if unique else 60, "amount_name",
                    f"amount and name ({best_score:.2f})",
                )  # fmt: skip
        if len(invoices) == 1:
            return self._proposal(line, invoices, 65, "amount", "amount only (unique)")
        return self._proposal(line, invoices[:1], 30, "amount", "amount only (ambiguous)")

    def _by_name(self, line: StatementLine) -> MatchProposal | None:
        for _score, customer in self._name_customers(line)[:1]:
            return self._customer_amount(line, customer, 84, "name")
        return None

    # -- public -------------------------------------------------------------------------
    def match(self, lines: Sequence[StatementLine]) -> list[MatchProposal | None]:
        """One proposal (or None) per line, in the lines' order."""
        results: list[MatchProposal | None] = [None] * len(lines)
        credits = [(n, line) for n, line in enumerate(lines) if line.amount > 0]
        for n, line in credits:
            proposal = self._by_text(line) or self._by_e2e(line)
            if proposal is not None:
                results[n] = self._commit(proposal)
        for n, line in credits:
            if results[n] is None:
                proposal = self._by_iban(line) or self._by_amount(line) or self._by_name(line)
                if proposal is not None:
                    results[n] = self._commit(proposal)
        return results


def match_lines(
    lines: Sequence[StatementLine],
    invoices: Iterable[OpenInvoice],
    settings: MatchSettings | None = None,
) -> list[MatchProposal | None]:
    return Matcher(invoices, settings).match(lines)
