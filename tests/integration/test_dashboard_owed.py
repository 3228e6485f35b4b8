"""Dashboard: "unpaid" is what is still owed, not the totals of partly paid invoices
(review finding; SQLite and PostgreSQL)."""

from __future__ import annotations

import html
from decimal import Decimal

from django.test import Client

from facturo.accounts.models import User
from facturo.invoicing import services as invoicing
from facturo.payments import selectors
from facturo.payments import services as payments
from tests.factories import make_customer, make_org


def test_unpaid_counts_the_amount_due(engine: str) -> None:
    _org, ctx = make_org("dash@example.com")
    customer = make_customer(ctx)
    line = {"description": "Audit", "quantity": Decimal(1), "unit_price": Decimal("100.00"),
            "vat_rate": Decimal(20), "vat_category": "S"}  # fmt: skip
    a = invoicing.issue_invoice(ctx, invoicing.create_draft(ctx, customer.id, [line]).id,
                                render=False)  # fmt: skip
    invoicing.issue_invoice(ctx, invoicing.create_draft(ctx, customer.id, [line]).id,
                            render=False)  # fmt: skip
    paid = invoicing.issue_invoice(ctx, invoicing.create_draft(ctx, customer.id, [line]).id,
                                   render=False)  # fmt: skip
    payments.record_payment(ctx, customer_id=customer.id, amount="45.50", currency="EUR",
                            method="transfer", received_on=ctx.today(),
                            allocations=[(a.id, "45.50")])  # fmt: skip
    payments.record_payment(ctx, customer_id=customer.id, amount="120.00", currency="EUR",
                            method="transfer", received_on=ctx.today(),
                            allocations=[(paid.id, "120.00")])  # fmt: skip
    # 120 − 45.50 + 120 = 194.50 owed on two invoices (was 240 with the partly paid total).
    assert selectors.amounts_owed(ctx) == [("EUR", 2, Decimal("194.50"))]
    client = Client()
    client.force_login(User.objects.get(email="dash@example.com"))
    page = html.unescape(client.get("/").content.decode()).replace("\u202f", " ")
    assert "194,50" in page
    assert "240,00" not in page
