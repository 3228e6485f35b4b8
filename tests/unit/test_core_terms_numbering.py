"""Due dates (art. L441-10 C. com.) and legal number formats (BR-FR-01/02)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facturo.core import numbering
from facturo.core.chain import GENESIS, link_hash, verify_chain
from facturo.core.errors import BusinessError
from facturo.core.terms import (
    PaymentTerms,
    TermsKind,
    check_due_date,
    due_date,
    legal_latest_due_date,
)

D = dt.date


@pytest.mark.parametrize(
    ("issue", "terms", "expected"),
    [
        (D(2026, 1, 15), PaymentTerms(TermsKind.ON_RECEIPT), D(2026, 1, 15)),
        (D(2026, 1, 15), PaymentTerms(TermsKind.NET, 30), D(2026, 2, 14)),
        (D(2026, 1, 31), PaymentTerms(TermsKind.NET, 30), D(2026, 3, 2)),
        # 30 jours fin de mois: 15 Jan + 30 d = 14 Feb → end of February
        (D(2026, 1, 15), PaymentTerms(TermsKind.DAYS_END_OF_MONTH, 30), D(2026, 2, 28)),
        (D(2028, 1, 31), PaymentTerms(TermsKind.DAYS_END_OF_MONTH, 30), D(2028, 3, 31)),
        (D(2028, 1, 20), PaymentTerms(TermsKind.DAYS_END_OF_MONTH, 30), D(2028, 2, 29)),  # leap
        # fin de mois + 45 jours: 31 Jan + 45 d = 17 Mar
        (D(2026, 1, 10), PaymentTerms(TermsKind.END_OF_MONTH_PLUS, 45), D(2026, 3, 17)),
        (D(2026, 12, 5), PaymentTerms(TermsKind.END_OF_MONTH_PLUS, 10), D(2027, 1, 10)),
    ],
)
def test_due_dates(issue: dt.date, terms: PaymentTerms, expected: dt.date) -> None:
    assert due_date(issue, terms) == expected


def test_legal_maximum() -> None:
    issue = D(2026, 1, 10)
    # 60 days = 11 Mar; 45 days end of month: 31 Jan + 45 = 17 Mar, or eom(24 Feb) = 28 Feb.
    assert legal_latest_due_date(issue) == D(2026, 3, 17)
    check_due_date(issue, D(2026, 3, 17))
    with pytest.raises(BusinessError) as err:
        check_due_date(issue, D(2026, 3, 18))
    assert err.value.code == "terms.beyond_legal_maximum"
    with pytest.raises(BusinessError) as err:
        check_due_date(issue, D(2026, 1, 9))
    assert err.value.code == "terms.due_before_issue"


@given(
    st.dates(min_value=D(2000, 1, 1), max_value=D(2100, 1, 1)),
    st.sampled_from(list(TermsKind)),
    st.integers(min_value=0, max_value=365),
)
def test_due_date_never_before_issue(issue: dt.date, kind: TermsKind, days: int) -> None:
    assert due_date(issue, PaymentTerms(kind, days)) >= issue


def test_terms_days_are_bounded() -> None:
    with pytest.raises(BusinessError):
        PaymentTerms(TermsKind.NET, 400)


def test_number_format() -> None:
    assert numbering.format_number("FA-{YYYY}-{seq:05}", D(2026, 3, 1), 42) == "FA-2026-00042"
    assert numbering.format_number("{YY}{MM}/{seq}", D(2026, 3, 1), 7) == "2603/7"
    assert numbering.period_key(numbering.Reset.YEARLY, D(2026, 3, 1)) == "2026"
    assert numbering.period_key(numbering.Reset.MONTHLY, D(2026, 3, 1)) == "2026-03"
    assert numbering.period_key(numbering.Reset.NEVER, D(2026, 3, 1)) == ""


@pytest.mark.parametrize(
    ("pattern", "reset", "code"),
    [
        ("FA-{YYYY}", "yearly", "numbering.no_sequence"),
        ("FA {YYYY}-{seq}", "yearly", "numbering.invalid_number"),  # space (BR-FR-02)
        ("FA-{seq:05}", "yearly", "numbering.reset_needs_year"),
        ("FA-{YYYY}-{seq}", "monthly", "numbering.reset_needs_month"),
        ("FA-{DD}-{seq}", "never", "numbering.unknown_token"),
        ("FACTURE-CLIENT-PROFESSIONNEL-{YYYY}-{seq:09}", "yearly", "numbering.invalid_number"),
    ],
)
def test_bad_patterns(pattern: str, reset: str, code: str) -> None:
    with pytest.raises(BusinessError) as err:
        numbering.check_pattern(pattern, numbering.Reset(reset))
    assert err.value.code == code


@given(st.text(min_size=1, max_size=40))
def test_number_rules(candidate: str) -> None:
    allowed = len(candidate) <= 35 and all(
        c.isascii() and (c.isalnum() or c in "+-_/") for c in candidate
    )
    try:
        numbering.check_number(candidate)
        assert allowed
    except BusinessError:
        assert not allowed


def test_hash_chain_pinpoints_the_altered_record() -> None:
    records, previous = [], GENESIS
    for i in range(5):
        payload = {"n": i, "amount": f"{i}.00"}
        h = link_hash(previous, payload)
        records.append((f"r{i}", payload, previous, h))
        previous = h
    assert verify_chain(records) is None
    tampered = list(records)
    tampered[2] = ("r2", {"n": 2, "amount": "999.00"}, records[2][2], records[2][3])
    broken = verify_chain(tampered)
    assert broken is not None
    assert broken.record_id == "r2"
    removed = records[:1] + records[2:]
    broken = verify_chain(removed)
    assert broken is not None
    assert broken.record_id == "r2"
