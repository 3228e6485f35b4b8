"""The MRR view and the subscription selectors, with figures computed by hand.

The book of subscriptions, on 10 March 2027 (after the billing run of that day):

| sub | schedule | price excl. VAT | started | MRR share |
| --- | --- | --- | --- | --- |
| S1 | monthly, in advance | 30.00 | 2027-01-01 | 30 |
| S2 | quarterly, in advance | 100.00 | 2027-01-15 | 100 / 3 = 33.333… |
| S3 | yearly, in arrears | 1,200.00 | 2026-06-01 | 100 |
| S4 | weekly, in advance | 10.00 | 2027-03-08 (Monday) | 10 × 30.4375 / 7 = 43.482142… |
| S5 | monthly, 30-day trial | 50.00 | trial to 2027-03-31 | not started: 0 |
| S6 | monthly | 80.00 | cancelled 2027-03-05 at period end | churned: 80 |
| S7 | monthly | 40.00 | paused 2027-03-05 | paused: 0 |
| S8 | yearly, USD | 120.00 | 2027-02-01 | 10 USD |

MRR (EUR) = 30 + 33.333… + 100 + 43.482142… = 206.815476… → **206.82** (rounded once).

Expected invoicing (excl. VAT), from the schedules:
- March: S4 on 15, 22, 29 (3 × 10) + S5 on 31 March (end of trial, 50) → 4 invoices, 80.00
- April: S1 (30) + S2 on 15 April (100) + S4 on 5, 12, 19, 26 (40) + S5 on 30 April (50)
  → 7 invoices, 220.00
- May: S1 (30) + S4 on 3, 10, 17, 24, 31 (50) + S5 on 31 May (50) → 7 invoices, 130.00
(S3 is next invoiced on 1 June 2027; S6 ends on 1 April and was billed for March.)
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from facturo.core.errors import NotFound, PermissionDenied
from facturo.organizations import services as orgs
from facturo.organizations.models import Role
from facturo.subscriptions import billing, selectors
from facturo.subscriptions import services as subs
from facturo.subscriptions.models import SubscriptionStatus
from tests.factories import make_customer, make_org

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
D = dt.date.fromisoformat
TODAY = D("2027-03-10")


def at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(9, 0), PARIS)


def _line(price: str, description: str = "Abonnement") -> list[dict[str, Any]]:
    return [{"description": description, "quantity": "1", "unit_price": price, "vat_rate": "20"}]


def book() -> Any:
    """Build the book of the module docstring; returns (ctx, subscriptions by name)."""
    with time_machine.travel(at(D("2026-06-01")), tick=False) as clock:
        org, ctx = make_org()
        eur = make_customer(ctx)
        usd = make_customer(ctx, name="Acme Inc", siren="", vat_number="", currency="USD")
        s: dict[str, Any] = {}

        def new(name: str, customer: Any, start: str, price: str, **kw: Any) -> None:
            s[name] = subs.create_subscription(
                ctx, customer.id, start_date=start, lines=_line(price, name), **kw
            )

        new("S3", eur, "2026-06-01", "1200.00", unit="year", timing="arrears")
        clock.move_to(at(D("2027-01-01")))
        new("S1", eur, "2027-01-01", "30.00", unit="month")
        new("S6", eur, "2027-01-01", "80.00", unit="month")
        new("S7", eur, "2027-01-01", "40.00", unit="month")
        new("S2", eur, "2027-01-15", "100.00", unit="month", interval=3)
        new("S8", usd, "2027-02-01", "120.00", unit="year")
        new("S4", eur, "2027-03-08", "10.00", unit="week")
        new("S5", eur, "2027-03-01", "50.00", unit="month", trial_days=30)
        clock.move_to(at(TODAY))
        billing.run_billing(TODAY, org.id)
        subs.cancel(ctx, s["S6"].id, at_period_end=True, on="2027-03-05", render=False)
        subs.pause(ctx, s["S7"].id, on="2027-03-05")
    return org, ctx, s


def test_mrr_view_by_hand(engine: str) -> None:
    _org, ctx, s = book()
    view = selectors.mrr_view(ctx, TODAY)
    assert view.currency == "EUR"
    assert view.mrr == Decimal("206.82")
    assert str(view.mrr) == "206.82"
    assert view.arr == Decimal("2481.84")
    assert view.other_currencies == {"USD": Decimal("10.00")}
    assert view.active == 6  # S1 S2 S3 S4 S5 S8
    assert view.not_started == 1  # S5, in trial
    assert view.paused == 1
    assert view.churned_this_month == 1
    assert view.churned_mrr == {"EUR": Decimal("80.00")}
    assert [(m.start, m.invoices, m.amounts) for m in view.forecast] == [
        (D("2027-03-01"), 4, {"EUR": Decimal("80.00")}),
        (D("2027-04-01"), 7, {"EUR": Decimal("220.00")}),
        (D("2027-05-01"), 7, {"EUR": Decimal("130.00")}),
    ]
    # each share, rounded for display
    assert selectors.monthly_amount(s["S2"], TODAY) == Decimal("33.33")
    assert selectors.monthly_amount(s["S4"], TODAY) == Decimal("43.48")
    # next month, S6 (ended) is no longer churned "this month"
    assert selectors.mrr_view(ctx, D("2027-04-10")).churned_this_month == 0


def test_forecast_follows_changes_and_pending_charges(engine: str) -> None:
    """S1 goes from 30 to 60 on 16 April, charged on the next invoice: the May invoice bills
    60 plus the prorated difference for 16–30 April: piece(60, 15/30) − piece(30, 15/30)
    = 30.00 − 15.00 = 15.00; June bills 60."""
    with time_machine.travel(at(D("2027-04-01")), tick=False) as clock:
        _org, ctx = make_org()
        customer = make_customer(ctx)
        sub = subs.create_subscription(
            ctx,
            customer.id,
            start_date="2027-04-01",
            lines=_line("30.00"),
            proration_mode="next_invoice",
        )
        billing.run_billing(D("2027-04-01"), ctx.organization.id)
        clock.move_to(at(D("2027-04-16")))
        preview = subs.change(
            ctx, sub.id, lines=_line("60.00"), effective="2027-04-16", render=False
        )
        assert preview.total == Decimal("15.00")
        view = selectors.mrr_view(ctx, D("2027-04-16"))
    assert view.mrr == Decimal("60.00")
    assert [(m.invoices, m.amounts) for m in view.forecast] == [
        (0, {}),
        (1, {"EUR": Decimal("75.00")}),
        (1, {"EUR": Decimal("60.00")}),
    ]


def test_selectors_are_scoped_and_read_only_may_read(engine: str) -> None:
    _org, ctx, s = book()
    _other, ctx_b = make_org("b@example.com", name="Autre")
    assert selectors.subscriptions(ctx_b).count() == 0
    assert selectors.billing_runs(ctx_b).count() == 0
    assert selectors.mrr_view(ctx_b, TODAY).mrr == Decimal("0.00")
    with pytest.raises(NotFound):
        selectors.subscription(ctx_b, s["S1"].id)
    run = selectors.billing_runs(ctx).get()
    with pytest.raises(NotFound):
        selectors.billing_run(ctx_b, run.id)
    with pytest.raises(NotFound):
        selectors.subscription(ctx, "not-a-uuid")
    # S1, S6, S7: Jan, Feb, Mar = 9; S2: Jan 15 = 1; S8: Feb 1 = 1; S4: Mar 8 = 1 → 12
    assert (run.issued, run.failed, run.caught_up) == (12, 0, 12)  # all dated before 10 March
    assert selectors.subscriptions(ctx).count() == 8
    assert selectors.subscriptions(ctx, status=SubscriptionStatus.PAUSED).get().name == "S7"
    assert [p.period_start for p in selectors.billed_periods(ctx, s["S1"])] == [
        D("2027-03-01"),
        D("2027-02-01"),
        D("2027-01-01"),
    ]
    viewer = orgs.add_member(ctx, "viewer@example.com", Role.READ_ONLY, "pw-1234-x")
    ctx_v = orgs.context_for(viewer.user, ctx.organization.id, ip="127.0.0.1")
    assert selectors.mrr_view(ctx_v, TODAY).mrr == Decimal("206.82")
    with pytest.raises(PermissionDenied):
        subs.pause(ctx_v, s["S1"].id, on="2027-03-20")


def test_billing_entry_points_check_role_and_date(engine: str) -> None:
    from facturo.core.errors import BusinessError

    org, ctx = make_org()
    reader = orgs.add_member(ctx, "lecteur@example.com", Role.READ_ONLY, password="x-pw-12345")
    reader_ctx = orgs.context_for(reader.user, org.id)
    today = selectors.organization_today(ctx)
    assert billing.preview_for(reader_ctx, today).planned == 0  # reading is allowed
    with pytest.raises(PermissionDenied):
        billing.run_for(reader_ctx)
    with pytest.raises(BusinessError) as err:
        billing.run_for(ctx, today + dt.timedelta(days=1))
    assert err.value.code == "billing.future_date"
    run = billing.run_for(ctx)
    assert run.run_date == today
    assert run.issued == 0


def test_invoices_are_in_the_subscription_currency(engine: str) -> None:
    with time_machine.travel(at(D("2027-01-01")), tick=False):
        org, ctx = make_org()
        eur_customer = make_customer(ctx)  # the customer's own currency is EUR
        plan = subs.create_plan(ctx, "Pro US", _line("49.00"), currency="USD", unit="month")
        sub = subs.create_subscription(
            ctx, eur_customer.id, start_date="2027-01-01", plan_id=plan.id
        )
        billing.run_billing(D("2027-01-01"), org.id)
    period = sub.billed_periods.get()
    assert period.invoice is not None
    assert period.invoice.currency == "USD"
    assert period.invoice.total_excl_vat == Decimal("49.00")


def test_full_period_price_is_the_invoice_line_net() -> None:
    from facturo.core.tax import VatCategory
    from facturo.core.totals import LineInput, line_amounts
    from facturo.subscriptions.models import SubscriptionLine

    # 10.005 with 50 %: the invoice line computes 10.005 − 5.0025→5.00 = 5.005 → 5.01
    line = SubscriptionLine(
        quantity=Decimal(1), unit_price=Decimal("10.005"), discount_percent=Decimal(50)
    )
    expected = line_amounts(
        LineInput(Decimal(1), Decimal("10.005"), VatCategory.STANDARD, Decimal(20), Decimal(50)),
        "EUR",
    ).net_amount
    assert expected == Decimal("5.01")
    assert subs.full_amount(line, "EUR", D("2027-01-01")) == expected


def test_a_later_change_supersedes_one_scheduled_after_it(engine: str) -> None:
    with time_machine.travel(at(D("2027-01-01")), tick=False):
        _, ctx = make_org()
        customer = make_customer(ctx)
        sub = subs.create_subscription(
            ctx, customer.id, start_date="2027-01-01", lines=_line("30.00"), unit="month"
        )
        subs.change(ctx, sub.id, lines=_line("60.00"), effective="2027-03-01", render=False)
        subs.change(ctx, sub.id, lines=_line("45.00"), effective="2027-02-01", render=False)
    in_march = subs.versions_at(sub, D("2027-03-15"))
    assert [line.unit_price for line in in_march] == [Decimal("45.00")]
