"""Invoice totals by the EN 16931 rounding rules (see CONVENTIONS.md, « Money and rounding »).

1. line net (BT-131) = quantity × unit price − line allowance, rounded per line;
2. document allowances/charges (BT-92/BT-99) rounded each, one per VAT group;
3. per VAT category and rate: base (BT-116) = Σ line nets ± document allowances/charges,
   VAT (BT-117) = base × rate, rounded once;
4. every total (BT-106 … BT-115) is a sum of rounded figures.

Every output of facturo (PDF, XML, API, ledger) reads these numbers; nothing recomputes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .errors import BusinessError, _
from .money import ZERO, round_money
from .tax import VatCategory, check_vat

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class LineInput:
    quantity: Decimal
    unit_price: Decimal  # excluding VAT
    vat_category: VatCategory
    vat_rate: Decimal  # percent, e.g. Decimal("20")
    discount_percent: Decimal = ZERO
    allow_negative: bool = False  # only system lines (deposit deductions) may be negative


@dataclass(frozen=True)
class LineAmounts:
    gross_amount: Decimal  # quantity × unit price, rounded (shown for information)
    allowance_amount: Decimal  # BT-136
    net_amount: Decimal  # BT-131


@dataclass(frozen=True)
class DocumentAllowance:
    """A document-level allowance (discount) or charge (BG-20 / BG-21)."""

    amount: Decimal
    vat_category: VatCategory
    vat_rate: Decimal
    reason: str
    is_charge: bool = False


@dataclass(frozen=True)
class VatGroup:
    category: VatCategory
    rate: Decimal
    taxable_amount: Decimal  # BT-116
    tax_amount: Decimal  # BT-117


@dataclass(frozen=True)
class Totals:
    currency: str
    lines: tuple[LineAmounts, ...]
    allowances: tuple[DocumentAllowance, ...]
    vat_groups: tuple[VatGroup, ...]
    line_total: Decimal  # BT-106
    allowance_total: Decimal  # BT-107
    charge_total: Decimal  # BT-108
    tax_exclusive: Decimal  # BT-109
    tax_total: Decimal  # BT-110
    tax_inclusive: Decimal  # BT-112
    prepaid: Decimal  # BT-113
    due_payable: Decimal  # BT-115


def line_amounts(line: LineInput, currency: str) -> LineAmounts:
    if line.quantity < 0 and not line.allow_negative:
        raise BusinessError(
            "invoice.negative_quantity",
            _("Quantity must be positive; to reduce an issued invoice, create a credit note."),
            field="quantity",
        )
    if line.unit_price < 0 and not line.allow_negative:
        raise BusinessError(
            "invoice.negative_price",
            _("Unit price must be positive or zero; give a discount instead."),
            field="unit_price",
        )
    if not ZERO <= line.discount_percent <= HUNDRED:
        raise BusinessError(
            "invoice.invalid_discount",
            _("A discount is a percentage between 0 and 100."),
            field="discount_percent",
        )
    check_vat(line.vat_category, line.vat_rate)
    gross = line.quantity * line.unit_price
    allowance = round_money(gross * line.discount_percent / HUNDRED, currency)
    # Half-up rounding commutes with subtracting a whole number of cents: net is exact.
    net = round_money(gross - allowance, currency)
    return LineAmounts(round_money(gross, currency), allowance, net)


def compute_totals(
    lines: Sequence[LineInput],
    currency: str,
    *,
    document_discount_percent: Decimal = ZERO,
    extra_allowances: Sequence[DocumentAllowance] = (),
    prepaid: Decimal = ZERO,
    discount_label: str = "Remise",
) -> Totals:
    """The one computation of an invoice's totals."""
    amounts = tuple(line_amounts(line, currency) for line in lines)
    bases: dict[tuple[VatCategory, Decimal], Decimal] = {}
    for line, la in zip(lines, amounts, strict=True):
        key = (VatCategory(line.vat_category), line.vat_rate)
        bases[key] = bases.get(key, ZERO) + la.net_amount

    if not ZERO <= document_discount_percent <= HUNDRED:
        raise BusinessError(
            "invoice.invalid_discount",
            _("A discount is a percentage between 0 and 100."),
            field="document_discount_percent",
        )
    allowances: list[DocumentAllowance] = []
    percent_text = format(document_discount_percent.normalize(), "f")
    if discount_label == "Remise":  # French decimal comma
        percent_text = percent_text.replace(".", ",")
    if document_discount_percent:
        # One allowance per VAT group, as EN 16931 requires a VAT category on each (BT-95).
        for (cat, rate), base in bases.items():
            amount = round_money(base * document_discount_percent / HUNDRED, currency)
            if amount:
                allowances.append(
                    DocumentAllowance(amount, cat, rate, f"{discount_label} {percent_text} %")
                )
    for extra in extra_allowances:
        check_vat(extra.vat_category, extra.vat_rate)
        allowances.append(
            DocumentAllowance(
                round_money(extra.amount, currency),
                VatCategory(extra.vat_category),
                extra.vat_rate,
                extra.reason,
                extra.is_charge,
            )
        )
    for a in allowances:
        key = (a.vat_category, a.vat_rate)
        bases[key] = bases.get(key, ZERO) + (a.amount if a.is_charge else -a.amount)

    groups = tuple(
        VatGroup(cat, rate, base, round_money(base * rate / HUNDRED, currency))
        for (cat, rate), base in sorted(bases.items(), key=lambda kv: (kv[0][0].value, -kv[0][1]))
    )
    line_total = sum((la.net_amount for la in amounts), ZERO)
    allowance_total = sum((a.amount for a in allowances if not a.is_charge), ZERO)
    charge_total = sum((a.amount for a in allowances if a.is_charge), ZERO)
    tax_exclusive = line_total - allowance_total + charge_total
    tax_total = sum((g.tax_amount for g in groups), ZERO)
    tax_inclusive = tax_exclusive + tax_total
    prepaid = round_money(prepaid, currency)

    # Sums of rounded figures are exact; quantizing only gives empty sums their "0.00" form.
    def q(amount: Decimal) -> Decimal:
        return round_money(amount, currency)

    return Totals(
        currency=currency,
        lines=amounts,
        allowances=tuple(allowances),
        vat_groups=groups,
        line_total=q(line_total),
        allowance_total=q(allowance_total),
        charge_total=q(charge_total),
        tax_exclusive=q(tax_exclusive),
        tax_total=q(tax_total),
        tax_inclusive=q(tax_inclusive),
        prepaid=prepaid,
        due_payable=q(tax_inclusive - prepaid),
    )
