"""ISO 11649 creditor references derived from invoice numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import iso11649

from facturo.formats.sepa.reference import creditor_reference


def test_known_number() -> None:
    assert creditor_reference("FA-2026-00001") == "RF79FA202600001"
    assert iso11649.is_valid("RF79FA202600001")


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-_/",
               min_size=1, max_size=35).filter(lambda s: any(c.isalnum() for c in s)))  # fmt: skip
def test_every_legal_number_gives_a_valid_stable_reference(number: str) -> None:
    ref = creditor_reference(number)
    assert iso11649.is_valid(ref)
    assert len(ref) <= 25
    assert creditor_reference(number) == ref


def test_number_without_letters_or_digits_is_refused() -> None:
    with pytest.raises(ValueError, match="invoice number"):
        creditor_reference("--")
