"""core.ledger: hand-computed golden entries for every business event, the checks of an
entry, the mapping rules, and (Hypothesis) every generated entry balances."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facturo.core.document import Nature, TypeCode
from facturo.core.errors import BusinessError
from facturo.core.ledger import (
    MISC_JOURNAL,
    EntryLine,
    JournalEntry,
    check_account_number,
    reverse_entry,
    trial_balance,
)
from facturo.core.ledger_chart import (
    DEFAULT_SETTINGS,
    CustomerType,
    LedgerSettings,
    RevenueRule,
    customer_type,
)
from facturo.core.ledger_postings import (
    BankAccount,
    CreditedInvoice,
    CustomerAccount,
    ReceiptsVat,
    Settlement,
    allocation_reversed_entry,
    bank_fee_entry,
    credit_applied_entry,
    credit_note_entry,
    deposit_invoice_entry,
    document_entry,
    invoice_issued_entry,
    overpayment_kept_entry,
    payment_entry,
    payment_returned_entry,
    receipts_vat,
    refund_entry,
    write_off_entry,
)
from facturo.core.tax import VatCategory
from facturo.core.totals import DocumentAllowance

from .test_ledger_support import L, golden, make_doc, party, rows

C = CustomerAccount("C001", "Boulangerie Martin", "FR")
DAY = date(2026, 3, 2)
VAT_1200 = ReceiptsVat(D("1200.00"), ((D(20), D("200.00")),))


# --- documents -------------------------------------------------------------------------------


def test_invoice_services_on_receipts_goods_on_debits() -> None:
    # 1 000.00 services at 20 % (VAT 200.00, due on receipt) + 2 × 24.90 goods at 5.5 %
    # (base 49.80, VAT 2.739 → 2.74, due at once): total 1 252.54.
    doc = make_doc([L(D(1000)), L(D("24.90"), D("5.5"), Nature.GOODS, D(2))])
    entry = invoice_issued_entry(doc, C)
    assert rows(entry) == golden(
        ("411", "C001", "1252.54", "0"),
        ("7061", "", "0", "1000.00"),
        ("7071", "", "0", "49.80"),
        ("445741", "", "0", "200.00"),
        ("445713", "", "0", "2.74"),
    )
    assert entry is not None
    assert entry.journal.code == "VE"
    assert entry.piece_ref == "FA-2026-00001"
    assert entry.date == entry.piece_date == DAY
    assert entry.lines[0].auxiliary_label == "Boulangerie Martin"
    assert {x.account_label for x in entry.lines} >= {
        "Clients",
        "Prestations de services - France",
        "TVA sur encaissements en attente 20 %",
        "TVA collectée 5,5 %",
    }


def test_invoice_with_the_option_for_debits_collects_all_vat_at_once() -> None:
    doc = make_doc([L(D(1000))], vat_on_debits=True)
    assert rows(document_entry(doc, C)) == golden(
        ("411", "C001", "1200.00", "0"),
        ("7061", "", "0", "1000.00"),
        ("445711", "", "0", "200.00"),
    )


def test_mixed_natures_at_one_rate_split_the_vat_in_proportion() -> None:
    # 100 services + 50 goods at 20 %: VAT 30.00 split 2:1 → 20.00 pending, 10.00 collected.
    doc = make_doc([L(D(100)), L(D(50), nature=Nature.GOODS)])
    assert rows(document_entry(doc, C)) == golden(
        ("411", "C001", "180.00", "0"),
        ("7061", "", "0", "100.00"),
        ("7071", "", "0", "50.00"),
        ("445741", "", "0", "20.00"),
        ("445711", "", "0", "10.00"),
    )


def test_document_discount_lowers_each_revenue_account_and_charges_go_to_7085() -> None:
    # 300 services + 100 goods at 20 %, 10 % discount = 40.00 (split 30.00 / 10.00),
    # shipping charge 10.00 at 20 %: base 370.00, VAT 74.00 split by nature 3:1.
    shipping = DocumentAllowance(D(10), VatCategory.STANDARD, D(20), "Port", is_charge=True)
    doc = make_doc([L(D(300)), L(D(100), nature=Nature.GOODS)], discount=D(10), charges=[shipping])
    assert doc.totals.tax_inclusive == D("444.00")
    assert rows(document_entry(doc, C)) == golden(
        ("411", "C001", "444.00", "0"),
        ("7061", "", "0", "270.00"),
        ("7071", "", "0", "90.00"),
        ("7085", "", "0", "10.00"),
        ("445741", "", "0", "55.50"),
        ("445711", "", "0", "18.50"),
    )


@pytest.mark.parametrize(
    ("country", "category", "nature", "account"),
    [
        ("US", VatCategory.EXPORT, Nature.GOODS, "7073"),
        ("CA", VatCategory.NOT_SUBJECT, Nature.SERVICES, "7063"),
        ("DE", VatCategory.INTRA_EU_SUPPLY, Nature.GOODS, "7072"),
        ("DE", VatCategory.REVERSE_CHARGE, Nature.SERVICES, "7062"),
        ("MC", VatCategory.EXEMPT, Nature.SERVICES, "7061"),
    ],
)
def test_exempt_and_foreign_sales_have_no_vat_line(
    country: str, category: VatCategory, nature: Nature, account: str
) -> None:
    doc = make_doc([L(D(500), D(0), nature, category=category)], buyer=party("X", country))
    customer = CustomerAccount.of("C002", doc.buyer)
    assert rows(document_entry(doc, customer)) == golden(
        ("411", "C002", "500.00", "0"), (account, "", "0", "500.00")
    )


def test_deposit_invoice_then_final_invoice_deducting_it() -> None:
    deposit = make_doc([L(D(300))], type_code=TypeCode.DEPOSIT_INVOICE, number="FA-2")
    assert rows(deposit_invoice_entry(deposit, C)) == golden(
        ("411", "C001", "360.00", "0"),
        ("4191", "C001", "0", "300.00"),
        ("445741", "", "0", "60.00"),
    )
    # Final invoice 1 000.00 with the deposit's 300.00 deducted: base 700, VAT 140.
    final = make_doc([L(D(1000)), L(D(300), deduction=True)], number="FA-3")
    assert rows(invoice_issued_entry(final, C)) == golden(
        ("411", "C001", "840.00", "0"),
        ("4191", "C001", "300.00", "0"),
        ("7061", "", "0", "1000.00"),
        ("445741", "", "0", "140.00"),
    )


def test_credit_note_of_a_final_invoice_gives_the_deposit_back() -> None:
    # The credit note of the final invoice above carries the deduction line too: it credits
    # 4191 back (the deposit is owed again) instead of lowering the revenue it reverses.
    note = make_doc([L(D(1000)), L(D(300), deduction=True)], type_code=TypeCode.CREDIT_NOTE,
                    number="AV-3")  # fmt: skip
    assert rows(credit_note_entry(note, C)) == golden(
        ("411", "C001", "0", "840.00"),
        ("4191", "C001", "0", "300.00"),
        ("7061", "", "1000.00", "0"),
        ("445741", "", "140.00", "0"),
    )


def test_a_line_with_its_own_revenue_account_wins_over_the_rules() -> None:
    doc = make_doc([L(D(100)), L(D(50), nature=Nature.GOODS)], number="FA-9")
    settings = LedgerSettings(rules=(RevenueRule(account="7068"),))
    entry = document_entry(doc, C, settings, line_accounts={2: "707500"})
    assert rows(entry) == golden(
        ("411", "C001", "180.00", "0"),
        ("7068", "", "0", "100.00"),
        ("707500", "", "0", "50.00"),
        ("445741", "", "0", "20.00"),
        ("445711", "", "0", "10.00"),
    )


def test_credit_note_mirrors_the_invoice() -> None:
    note = make_doc([L(D(100))], type_code=TypeCode.CREDIT_NOTE, number="AV-1")
    entry = credit_note_entry(note, C)
    assert rows(entry) == golden(
        ("411", "C001", "0", "120.00"),
        ("7061", "", "100.00", "0"),
        ("445741", "", "20.00", "0"),
    )
    assert entry is not None
    assert entry.label.startswith("Avoir AV-1")


def test_credit_note_on_a_paid_invoice_takes_its_vat_from_collected() -> None:
    # The invoice (1 200.00, VAT on receipts 200.00) was fully paid: all its VAT was moved
    # to 445711. Crediting 120.00 of it leaves 1 080.00, still fully paid: the 20.00 of VAT
    # of the credit note comes out of 445711, none out of 445741.
    note = make_doc([L(D(100))], type_code=TypeCode.CREDIT_NOTE, number="AV-2")
    entry = credit_note_entry(note, C, credited=CreditedInvoice(VAT_1200, D("1200.00")))
    assert rows(entry) == golden(
        ("411", "C001", "0", "120.00"),
        ("7061", "", "100.00", "0"),
        ("445711", "", "20.00", "0"),
    )
    # Half paid (600.00 of 1 200.00 → 100.00 collected); after the note 600/1 080 of 180.00
    # = 100.00 collected still: the note's VAT all comes out of pending.
    half = credit_note_entry(note, C, credited=CreditedInvoice(VAT_1200, D("600.00")))
    assert ("445741", "", "20.00", "0") in rows(half)


def test_zero_document_posts_nothing_and_wrong_kinds_are_refused() -> None:
    assert document_entry(make_doc([L(D(0))]), C) is None
    with pytest.raises(BusinessError) as exc:
        credit_note_entry(make_doc([L(D(1))]), C)
    assert exc.value.code == "ledger.not_a_credit_note"


def test_foreign_currency_document_is_refused() -> None:
    doc = make_doc([L(D(1))])
    with pytest.raises(BusinessError) as exc:
        document_entry(doc, C, book_currency="USD")
    assert exc.value.code == "ledger.foreign_currency"


def test_receipts_vat_of_a_document() -> None:
    doc = make_doc([L(D(100)), L(D(50), nature=Nature.GOODS), L(D(10), D(10))])
    assert receipts_vat(doc) == ReceiptsVat(D("191.00"), ((D(10), D("1.00")), (D(20), D("20.00"))))


# --- mapping rules --------------------------------------------------------------------------


def test_mapping_rules_most_specific_first() -> None:
    chart = LedgerSettings(
        rules=(
            RevenueRule("7068", nature=Nature.SERVICES),
            RevenueRule("70611", category="training", customer_type=CustomerType.FRANCE),
            RevenueRule(
                "7065", product_code="HOST", category="training", customer_type=CustomerType.FRANCE
            ),
        )
    )

    def account(**kw: object) -> str:
        base: dict[str, object] = {
            "nature": Nature.SERVICES,
            "customer": CustomerType.FRANCE,
            "vat_category": VatCategory.STANDARD,
        }
        return chart.revenue_account(**{**base, **kw})  # type: ignore[arg-type]

    assert account() == "7068"
    assert account(category="training") == "70611"
    assert account(category="training", product_code="HOST") == "7065"
    assert account(category="training", customer=CustomerType.EU) == "7068"
    assert account(nature=Nature.GOODS) == "7071"
    assert account(nature=Nature.GOODS, category="ancillary") == "7088"
    no_suffix = LedgerSettings(customer_type_suffixes={})
    assert (
        no_suffix.revenue_account(
            nature=Nature.GOODS, customer=CustomerType.EU, vat_category=VatCategory.STANDARD
        )
        == "707"
    )


def test_mapping_rules_reach_the_entry_through_product_categories() -> None:
    chart = LedgerSettings(rules=(RevenueRule("7088", category="rental"),))
    doc = make_doc([L(D(100), product_code="LOC")], vat_on_debits=True)
    entry = document_entry(doc, C, chart, categories={"LOC": "rental"})
    assert ("7088", "", "0", "100.00") in rows(entry)


def test_customer_type_and_vat_accounts() -> None:
    assert customer_type("fr") is CustomerType.FRANCE
    assert customer_type("MC") is CustomerType.FRANCE
    assert customer_type("BE") is CustomerType.EU
    assert customer_type("GB") is CustomerType.EXPORT
    s = DEFAULT_SETTINGS
    assert [s.vat_collected(D(r)) for r in ("20", "10", "5.5", "2.1", "8.5", "19.6")] == [
        "445711", "445712", "445713", "445714", "445715", "445710",
    ]  # fmt: skip
    assert s.vat_pending(D("10")) == "445742"
    assert s.label("4457115") == "TVA collectée 20 % 4457115"
    assert LedgerSettings(labels={"512": "Banque Populaire"}).label("512") == "Banque Populaire"
    with pytest.raises(BusinessError):
        LedgerSettings(bank="ABC")


# --- money events ---------------------------------------------------------------------------


def test_payment_in_full_releases_the_vat_on_receipts() -> None:
    entry = payment_entry(
        reference="PAY-1",
        received_on=DAY,
        amount=D("1200.00"),
        customer=C,
        settlements=[Settlement("FA-1", D("1200.00"), VAT_1200)],
    )
    assert entry.journal.code == "BQ"
    assert rows(entry) == golden(
        ("512", "", "1200.00", "0"),
        ("411", "C001", "0", "1200.00"),
        ("445741", "", "200.00", "0"),
        ("445711", "", "0", "200.00"),
    )


def test_two_partial_payments_release_exactly_the_whole_vat() -> None:
    # 500/1 200 of 200.00 = 83.333… → 83.33; then the rest: 200.00 − 83.33 = 116.67.
    first = payment_entry(
        reference="PAY-1",
        received_on=DAY,
        amount=D("500.00"),
        customer=C,
        settlements=[Settlement("FA-1", D("500.00"), VAT_1200)],
    )
    second = payment_entry(
        reference="PAY-2",
        received_on=DAY,
        amount=D("700.00"),
        customer=C,
        settlements=[Settlement("FA-1", D("700.00"), VAT_1200, paid_before=D("500.00"))],
        bank=BankAccount("5122"),
    )
    assert ("445711", "", "0", "83.33") in rows(first)
    assert rows(second) == golden(
        ("5122", "", "700.00", "0"),
        ("411", "C001", "0", "700.00"),
        ("445741", "", "116.67", "0"),
        ("445711", "", "0", "116.67"),
    )


def test_overpayment_goes_to_the_customer_credit_and_can_be_applied_later() -> None:
    entry = payment_entry(
        reference="PAY-3",
        received_on=DAY,
        amount=D("1300.00"),
        customer=C,
        settlements=[Settlement("FA-1", D("1200.00"))],
    )
    assert rows(entry) == golden(
        ("512", "", "1300.00", "0"),
        ("411", "C001", "0", "1200.00"),
        ("4197", "C001", "0", "100.00"),
    )
    applied = credit_applied_entry(
        reference="ALLOC-1",
        on=DAY,
        customer=C,
        settlements=[Settlement("FA-9", D("100.00"), VAT_1200, paid_before=D("1100.00"))],
    )
    assert applied.journal == MISC_JOURNAL
    # 1 200/1 200 × 200 − 1 100/1 200 × 200 = 200.00 − 183.33 = 16.67
    assert rows(applied) == golden(
        ("4197", "C001", "100.00", "0"),
        ("411", "C001", "0", "100.00"),
        ("445741", "", "16.67", "0"),
        ("445711", "", "0", "16.67"),
    )


def test_allocation_reversed_puts_the_vat_back_to_pending() -> None:
    entry = allocation_reversed_entry(
        reference="UNALLOC-1",
        on=DAY,
        customer=C,
        settlements=[Settlement("FA-1", D("600.00"), VAT_1200, paid_before=D("1200.00"))],
    )
    assert rows(entry) == golden(
        ("411", "C001", "600.00", "0"),
        ("4197", "C001", "0", "600.00"),
        ("445711", "", "100.00", "0"),
        ("445741", "", "0", "100.00"),
    )


def test_refund_write_offs_and_bank_fee() -> None:
    assert rows(refund_entry(reference="RB-1", on=DAY, customer=C, amount=D("100.00"))) == (
        golden(("4197", "C001", "100.00", "0"), ("512", "", "0", "100.00"))
    )
    loss = write_off_entry(
        reference="WO-1",
        on=DAY,
        customer=C,
        settlement=Settlement("FA-1", D("0.30"), VAT_1200, paid_before=D("1199.70")),
    )
    # 200.00 − round(200 × 1 199.70 / 1 200) = 200.00 − 199.95 = 0.05
    assert rows(loss) == golden(
        ("658", "", "0.30", "0"),
        ("411", "C001", "0", "0.30"),
        ("445741", "", "0.05", "0"),
        ("445711", "", "0", "0.05"),
    )
    gain = overpayment_kept_entry(reference="WO-2", on=DAY, customer=C, amount=D("0.20"))
    assert rows(gain) == golden(("4197", "C001", "0.20", "0"), ("758", "", "0", "0.20"))
    fee = bank_fee_entry(reference="FEE-1", on=DAY, amount=D("12.00"), vat=D("2.00"))
    assert rows(fee) == golden(
        ("627", "", "10.00", "0"), ("44566", "", "2.00", "0"), ("512", "", "0", "12.00")
    )
    assert rows(bank_fee_entry(reference="FEE-2", on=DAY, amount=D("1.50"))) == golden(
        ("627", "", "1.50", "0"), ("512", "", "0", "1.50")
    )


def test_sepa_return_undoes_the_payment() -> None:
    entry = payment_returned_entry(
        reference="PAY-1",
        on=DAY,
        customer=C,
        amount=D("1300.00"),
        settlements=[Settlement("FA-1", D("1200.00"), VAT_1200, paid_before=D("1200.00"))],
    )
    assert rows(entry) == golden(
        ("411", "C001", "1200.00", "0"),
        ("4197", "C001", "100.00", "0"),
        ("512", "", "0", "1300.00"),
        ("445711", "", "200.00", "0"),
        ("445741", "", "0", "200.00"),
    )
    assert entry.label.startswith("Retour de paiement PAY-1")


def test_money_events_refuse_bad_amounts() -> None:
    with pytest.raises(BusinessError) as exc:
        payment_entry(
            reference="P",
            received_on=DAY,
            amount=D("10.00"),
            customer=C,
            settlements=[Settlement("FA-1", D("20.00"))],
        )
    assert exc.value.code == "ledger.over_allocated"
    with pytest.raises(BusinessError) as exc:
        refund_entry(reference="R", on=DAY, customer=C, amount=D("1.001"))
    assert exc.value.code == "ledger.invalid_amount"
    with pytest.raises(BusinessError) as exc:
        Settlement("FA-1", D(0))
    assert exc.value.code == "ledger.settlement_amount"
    with pytest.raises(BusinessError) as exc:
        bank_fee_entry(reference="F", on=DAY, amount=D(1), vat=D(2))
    assert exc.value.code == "ledger.invalid_amount"


# --- entries ---------------------------------------------------------------------------------


def _entry(*lines: EntryLine) -> JournalEntry:
    return JournalEntry(MISC_JOURNAL, DAY, "Saisie", "OD-1", DAY, tuple(lines))


def _l(account: str, debit: str = "0", credit: str = "0", **kw: object) -> EntryLine:
    return EntryLine(account, "Compte", D(debit), D(credit), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ((_l("512", "10"), _l("411", credit="9.99")), "ledger.unbalanced"),
        ((_l("512", "10", "10"), _l("411", "10"), _l("411", credit="10")), "ledger.both_sides"),
        ((_l("512", "-10"), _l("411", credit="-10")), "ledger.negative_amount"),
        ((_l("512", "10"), _l("411"), _l("411", credit="10")), "ledger.zero_line"),
        ((_l("512", "10"),), "ledger.too_few_lines"),
        ((_l("512", "10.001"), _l("411", credit="10.001")), "ledger.amount_precision"),
        ((_l("41", "10"), _l("411", credit="10")), "ledger.invalid_account"),
        ((_l("812", "10"), _l("411", credit="10")), "ledger.invalid_account"),
        ((_l("4a11", "10"), _l("411", credit="10")), "ledger.invalid_account"),
        ((_l("512", "10"), _l("411", credit="10", auxiliary="c 1")), "ledger.invalid_auxiliary"),
        ((_l("512", "10"), _l("411", credit="10", lettering="AA")), "ledger.lettering"),
    ],
)
def test_entry_checks(lines: tuple[EntryLine, ...], code: str) -> None:
    with pytest.raises(BusinessError) as exc:
        _entry(*lines)
    assert exc.value.code == code


def test_unbalanced_message_is_precise() -> None:
    with pytest.raises(BusinessError) as exc:
        _entry(_l("512", "10"), _l("411", credit="9.99"))
    assert exc.value.message == (
        "The entry does not balance: debit 10, credit 9.99 (difference 0.01)."
    )
    assert check_account_number("70611") == "70611"


def test_reversing_entry_swaps_sides_and_cancels_the_original() -> None:
    doc = make_doc([L(D(1000))])
    entry = document_entry(doc, C)
    assert entry is not None
    reversal = reverse_entry(entry, on=date(2026, 3, 5))
    assert reversal.date == date(2026, 3, 5)
    assert reversal.reverses == "FA-2026-00001"
    assert reversal.label.startswith("Extourne Facture FA-2026-00001")
    assert all(r.debit == o.credit and r.credit == o.debit for r, o in zip(reversal.lines,
               entry.lines, strict=True))  # fmt: skip
    tb = trial_balance([entry, reversal])
    assert all(b.balance == 0 for b in tb.accounts.values())


# --- properties ------------------------------------------------------------------------------

RATES = [D(20), D(10), D("5.5"), D("2.1"), D("8.5"), D("13"), D("19.6")]
lines_st = st.builds(
    L,
    price=st.decimals(min_value=D(0), max_value=D(50_000), places=4),
    rate=st.sampled_from(RATES),
    nature=st.sampled_from(list(Nature)),
    quantity=st.decimals(min_value=D("0.001"), max_value=D(500), places=3),
    discount=st.decimals(min_value=D(0), max_value=D(100), places=2),
)
zero_rated = st.builds(
    L,
    price=st.decimals(min_value=D(0), max_value=D(50_000), places=2),
    rate=st.just(D(0)),
    nature=st.sampled_from(list(Nature)),
    category=st.sampled_from([VatCategory.EXPORT, VatCategory.REVERSE_CHARGE, VatCategory.EXEMPT]),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(lines_st, zero_rated), min_size=1, max_size=12),
    st.decimals(min_value=D(0), max_value=D(100), places=2),
    st.sampled_from(list(TypeCode)),
    st.booleans(),
    st.sampled_from(["FR", "DE", "US"]),
)
def test_every_document_entry_balances_and_matches_the_totals(
    lines: list[L], discount: D, type_code: TypeCode, on_debits: bool, country: str
) -> None:
    doc = make_doc(
        lines, type_code=type_code, discount=discount, vat_on_debits=on_debits,
        buyer=party("Client", country),
    )  # fmt: skip
    entry = document_entry(doc, CustomerAccount.of("C9", doc.buyer))
    if entry is None:
        assert doc.totals.tax_inclusive == 0
        return
    tb = trial_balance([entry])
    sign = -1 if type_code == TypeCode.CREDIT_NOTE else 1
    assert tb.total_debit == tb.total_credit
    assert tb.balance_of("411") == sign * doc.totals.tax_inclusive
    assert tb.balance_of("4457") == -sign * doc.totals.tax_total
    revenue = tb.balance_of("7") + tb.balance_of("4191")
    assert revenue == -sign * doc.totals.tax_exclusive
    if on_debits:
        assert tb.balance_of("44574") == 0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=D("0.01"), max_value=D(10_000), places=2),
            st.decimals(min_value=D("0.01"), max_value=D(10_000), places=2),
            st.decimals(min_value=D(0), max_value=D(2_000), places=2),
            st.decimals(min_value=D(0), max_value=D(1), places=3),
        ),
        max_size=6,
    ),
    st.decimals(min_value=D(0), max_value=D(5_000), places=2),
)
def test_every_payment_and_return_balances(parts: list[tuple[D, D, D, D]], extra: D) -> None:
    settlements = [
        Settlement(
            f"FA-{i}",
            amount,
            ReceiptsVat(total, ((D(20), vat), (D(10), vat * share))),
            paid_before=total * share,
        )
        for i, (amount, total, vat, share) in enumerate(parts)
    ]
    settlements = [
        Settlement(s.invoice_number, s.amount, s.vat and ReceiptsVat(
            s.vat.total, tuple((r, v.quantize(D("0.01"))) for r, v in s.vat.pending)
        ), s.paid_before)
        for s in settlements
    ]  # fmt: skip
    amount = sum((s.amount for s in settlements), D(0)) + extra
    if amount == 0:
        return
    paid = payment_entry(
        reference="P", received_on=DAY, amount=amount, customer=C, settlements=settlements
    )
    back = payment_returned_entry(
        reference="P", on=DAY, amount=amount, customer=C, settlements=settlements
    )
    assert paid.total_debit == paid.total_credit
    assert back.total_debit == back.total_credit
