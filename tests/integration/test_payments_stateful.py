"""Random sequences of issue / credit / pay / over-pay / allocate / unallocate / refund /
apply credit, on SQLite and PostgreSQL; after every step the invariants of issue 4 hold:
amount due = total − credit notes − allocations and is never negative, the status follows
from the allocations, and the customer's balance adds up."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from facturo.core.errors import BusinessError
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from facturo.payments import services as payments
from facturo.payments.models import Allocation, Payment, Refund
from tests.factories import make_customer, make_org

DAY = dt.date(2026, 3, 1)
_orgs = itertools.count()
cents = st.integers(min_value=1, max_value=50_000).map(lambda c: Decimal(c).scaleb(-2))


def one_line(price: Decimal) -> list[dict[str, object]]:
    return [{"description": "Service", "quantity": Decimal(1), "unit_price": price,
             "vat_rate": Decimal(0), "vat_category": "E"}]  # fmt: skip


class PaymentsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        _, self.ctx = make_org(f"stateful{next(_orgs)}@example.com")
        self.customer = make_customer(self.ctx)
        self.invoices: list[Invoice] = []
        self.received = Decimal(0)
        self.refunded = Decimal(0)

    def _pay(self, amount: Decimal, **kwargs: object) -> None:
        payments.record_payment(self.ctx, customer_id=self.customer.id, amount=amount,
                                currency="EUR", method="transfer", received_on=DAY,
                                **kwargs)  # type: ignore[arg-type]  # fmt: skip
        self.received += amount

    @rule(price=cents)
    def issue(self, price: Decimal) -> None:
        draft = invoicing.create_draft(self.ctx, self.customer.id, one_line(price))
        self.invoices.append(invoicing.issue_invoice(self.ctx, draft.id, render=False))

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), share=st.integers(1, 100))
    def credit(self, data: st.DataObject, share: int) -> None:
        invoice = data.draw(st.sampled_from(self.invoices))
        left = payments.net_total(Invoice.objects.get(pk=invoice.pk))
        amount = (left * share / 100).quantize(Decimal("0.01"))
        if amount <= 0:
            return
        invoicing.create_credit_note(
            self.ctx, invoice.id, lines=one_line(amount), issue=True, render=False
        )

    @rule(amount=cents)
    def pay(self, amount: Decimal) -> None:
        self._pay(amount)

    @rule(extra=cents)
    def over_pay(self, extra: Decimal) -> None:
        owed = sum((payments.amount_due(Invoice.objects.get(pk=i.pk)) for i in self.invoices),
                   Decimal(0))  # fmt: skip
        self._pay(owed + extra)

    @rule(amount=cents)
    def pay_unallocated(self, amount: Decimal) -> None:
        self._pay(amount, auto_allocate=False)

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), amount=cents)
    def allocate_explicitly(self, data: st.DataObject, amount: Decimal) -> None:
        invoice = Invoice.objects.get(pk=data.draw(st.sampled_from(self.invoices)).pk)
        candidates = list(Payment.objects.filter(customer=self.customer))
        if not candidates:
            return
        payment = data.draw(st.sampled_from(candidates))
        fits = amount <= payments.amount_due(invoice) and amount <= payments.unallocated(payment)
        if fits:
            payments.allocate(self.ctx, payment.id, [(invoice.id, amount)])
            return
        with pytest.raises(BusinessError) as err:
            payments.allocate(self.ctx, payment.id, [(invoice.id, amount)])
        assert err.value.code in {"payment.over_allocation", "payment.insufficient"}

    @rule(data=st.data())
    def unallocate(self, data: st.DataObject) -> None:
        active = list(Allocation.objects.filter(payment__customer=self.customer,
                                                reversed_at__isnull=True))  # fmt: skip
        if active:
            payments.unallocate(self.ctx, data.draw(st.sampled_from(active)).pk, reason="test")

    @precondition(lambda self: self.invoices)
    @rule(data=st.data())
    def apply_credit(self, data: st.DataObject) -> None:
        invoice = Invoice.objects.get(pk=data.draw(st.sampled_from(self.invoices)).pk)
        if payments.amount_due(invoice) > 0:
            payments.apply_credit(self.ctx, invoice.id)

    @rule(share=st.integers(1, 100))
    def refund(self, share: int) -> None:
        credit = payments.customer_credit(self.customer)
        amount = (credit * share / 100).quantize(Decimal("0.01"))
        if amount > 0:
            payments.refund(self.ctx, customer_id=self.customer.id, amount=amount,
                            refunded_on=DAY)  # fmt: skip
            self.refunded += amount

    @invariant()
    def invoices_add_up(self) -> None:
        for row in self.invoices:
            invoice = Invoice.objects.get(pk=row.pk)
            total = invoice.total_incl_vat or Decimal(0)
            b = payments.balance(invoice)
            net = max(Decimal(0), total - b.credited)
            assert b.allocated <= net
            assert b.due == net - b.allocated >= 0
            if invoice.status == Status.CREDITED:
                assert net == 0
                assert b.allocated == 0
            elif b.allocated == 0:
                assert invoice.status in (Status.ISSUED, Status.SENT)
            elif b.due == 0:
                assert invoice.status == Status.PAID
            else:
                assert invoice.status == Status.PARTIALLY_PAID

    @invariant()
    def customer_balance_adds_up(self) -> None:
        allocated = sum((a.amount for a in Allocation.objects.filter(
            payment__customer=self.customer, reversed_at__isnull=True)), Decimal(0))  # fmt: skip
        refunds = sum((r.amount for r in Refund.objects.filter(payment__customer=self.customer)),
                      Decimal(0))  # fmt: skip
        credit = payments.customer_credit(self.customer)
        assert refunds == self.refunded
        assert credit >= 0
        assert allocated + refunds + credit == self.received
        for payment in Payment.objects.filter(customer=self.customer):
            assert payments.unallocated(payment) >= 0


def test_payments_state_machine(engine: str) -> None:
    run_state_machine_as_test(
        PaymentsMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
