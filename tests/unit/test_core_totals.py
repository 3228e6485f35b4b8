"""Totals by the EN 16931 rounding rules (CONVENTIONS.md), as properties and worked examples."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facturo.core.errors import BusinessError
from facturo.core.money import round_money, split_amount
from facturo.core.tax import MAINLAND_RATES, VatCategory
from facturo.core.totals import LineInput, compute_totals

quantities = st.decimals(min_value=D("0.0001"), max_value=D(10_000), places=4)
prices = st.decimals(min_value=D(0), max_value=D(100_000), places=6)
percents = st.decimals(min_value=D(0), max_value=D(100), places=2)
line_strategy = st.builds(
    LineInput,
    quantity=quantities,
    unit_price=prices,
    vat_category=st.just(VatCategory.STANDARD),
    vat_rate=st.sampled_from(MAINLAND_RATES),
    discount_percent=percents,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(line_strategy, min_size=1, max_size=25), percents)
def test_totals_invariants(lines: list[LineInput], discount: D) -> None:
    t = compute_totals(lines, "EUR", document_discount_percent=discount)
    cent = D("0.01")
    # every amount has at most 2 decimals (BR-DEC-*)
    for amount in (
        t.line_total,
        t.tax_exclusive,
        t.tax_total,
        t.tax_inclusive,
        t.due_payable,
        *(la.net_amount for la in t.lines),
        *(g.tax_amount for g in t.vat_groups),
    ):
        assert amount == amount.quantize(cent)
    assert t.line_total == sum(la.net_amount for la in t.lines)  # BR-CO-10
    assert t.allowance_total == sum(a.amount for a in t.allowances if not a.is_charge)  # BR-CO-11
    assert t.tax_exclusive == t.line_total - t.allowance_total + t.charge_total  # BR-CO-13
    assert t.tax_total == sum(g.tax_amount for g in t.vat_groups)  # BR-CO-14
    assert t.tax_inclusive == t.tax_exclusive + t.tax_total  # BR-CO-15
    assert t.due_payable == t.tax_inclusive - t.prepaid  # BR-CO-16
    assert sum(g.taxable_amount for g in t.vat_groups) == t.tax_exclusive  # BR-S-08 summed
    for g in t.vat_groups:  # BR-CO-17 exactly, without the official ±1.00 slack
        assert g.tax_amount == round_money(g.taxable_amount * g.rate / 100, "EUR")
    # one VAT group per rate
    assert len({g.rate for g in t.vat_groups}) == len(t.vat_groups)


@settings(max_examples=200, deadline=None)
@given(st.lists(line_strategy, min_size=1, max_size=10), percents)
def test_full_credit_note_cancels_the_invoice(lines: list[LineInput], discount: D) -> None:
    invoice = compute_totals(lines, "EUR", document_discount_percent=discount)
    credit = compute_totals(lines, "EUR", document_discount_percent=discount)
    # A credit note (type 381) carries the same positive amounts; signed, they sum to zero.
    assert invoice.tax_inclusive + (-credit.tax_inclusive) == 0
    assert [g.tax_amount for g in invoice.vat_groups] == [g.tax_amount for g in credit.vat_groups]


def test_vat_is_rounded_once_per_rate_half_up() -> None:
    # 25.00 × 5.5 % = 1.375 → 1.38 (half up), the example of the law notes.
    t = compute_totals([LineInput(D(1), D(25), VatCategory.STANDARD, D("5.5"))], "EUR")
    assert t.vat_groups[0].tax_amount == D("1.38")
    # Three lines of 0.35 € at 20 %: per-line VAT would be 3 × 0.07 = 0.21; EN 16931 rounds
    # the base 1.05 × 20 % = 0.21 once — and for 0.125 → 0.13 the same half-up rule applies.
    lines = [LineInput(D(1), D("0.35"), VatCategory.STANDARD, D(20))] * 3
    assert compute_totals(lines, "EUR").tax_total == D("0.21")
    lines = [LineInput(D(1), D("0.25"), VatCategory.STANDARD, D(10))] * 5  # 1.25 × 10 % = 0.125
    assert compute_totals(lines, "EUR").tax_total == D("0.13")


def test_line_net_is_rounded_per_line() -> None:
    t = compute_totals([LineInput(D(3), D("33.335"), VatCategory.STANDARD, D(20))], "EUR")
    assert t.lines[0].net_amount == D("100.01")  # 100.005 → 100.01
    t = compute_totals(
        [LineInput(D(2), D("19.99"), VatCategory.STANDARD, D(20), discount_percent=D("12.5"))],
        "EUR",
    )
    assert t.lines[0].allowance_amount == D("5.00")  # 39.98 × 12.5 % = 4.9975 → 5.00
    assert t.lines[0].net_amount == D("34.98")


def test_document_discount_is_split_per_vat_group() -> None:
    lines = [
        LineInput(D(1), D(100), VatCategory.STANDARD, D(20)),
        LineInput(D(1), D("24.90"), VatCategory.STANDARD, D("5.5")),
    ]
    t = compute_totals(lines, "EUR", document_discount_percent=D(10))
    assert [(a.vat_rate, a.amount) for a in t.allowances] == [
        (D(20), D("10.00")),
        (D("5.5"), D("2.49")),
    ]
    assert t.tax_exclusive == D("112.41")
    assert t.tax_total == D("18.00") + D("1.23")  # 90 × 20 %; 22.41 × 5.5 % = 1.23255


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (LineInput(D(-1), D(10), VatCategory.STANDARD, D(20)), "invoice.negative_quantity"),
        (LineInput(D(1), D(-10), VatCategory.STANDARD, D(20)), "invoice.negative_price"),
        (LineInput(D(1), D(10), VatCategory.STANDARD, D(19)), "tax.invalid_rate"),
        (LineInput(D(1), D(10), VatCategory.EXEMPT, D(20)), "tax.rate_must_be_zero"),
        (LineInput(D(1), D(10), VatCategory.STANDARD, D(20), D(120)), "invoice.invalid_discount"),
    ],
)
def test_bad_lines_are_refused_with_a_code(line: LineInput, code: str) -> None:
    with pytest.raises(BusinessError) as err:
        compute_totals([line], "EUR")
    assert err.value.code == code


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(BusinessError) as err:
        compute_totals([LineInput(D(1), D(1), VatCategory.STANDARD, D(20))], "EURO")
    assert err.value.code == "money.unknown_currency"


@settings(max_examples=300, deadline=None)
@given(
    st.decimals(min_value=D("-1000000"), max_value=D("1000000"), places=2),
    st.lists(st.decimals(min_value=D(0), max_value=D(1000), places=3), min_size=1, max_size=20),
)
def test_split_amount_parts_sum_to_the_whole(total: D, weights: list[D]) -> None:
    parts = split_amount(total, weights, "EUR")
    assert sum(parts) == total
    assert len(parts) == len(weights)
    assert all(p == p.quantize(D("0.01")) for p in parts)


def test_zero_decimal_currency() -> None:
    t = compute_totals([LineInput(D(3), D("333.5"), VatCategory.STANDARD, D(20))], "JPY")
    assert t.lines[0].net_amount == D(1001)  # 1000.5 → 1001
    assert t.tax_total == D(200)  # 200.2 → 200


def test_control_characters_are_refused_with_their_position() -> None:
    from facturo.core.text import clean_text

    assert clean_text("  Café\tcrème\n ", "description") == "Café\tcrème"
    with pytest.raises(BusinessError) as err:
        clean_text("Pain\x0caux noix", "lines.2.description")
    assert err.value.code == "input.control_character"
    assert err.value.field == "lines.2.description"
    assert "U+000C at position 5" in err.value.message
    with pytest.raises(BusinessError) as err:
        clean_text("x" * 501, "description", max_length=500)
    assert err.value.code == "input.too_long"
