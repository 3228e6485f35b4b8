"""Regression tests for the subscription bugs found in review (issue 3), one test each, and
the ``SubscriptionInvoiceIssued`` event payments relies on for auto-pay."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from facturo.accounts.models import User
from facturo.core import proration
from facturo.core.errors import BusinessError
from facturo.foundation import events
from facturo.invoicing.models import Invoice
from facturo.organizations.models import DocumentKind
from facturo.subscriptions import billing
from facturo.subscriptions import services as subs
from facturo.subscriptions.events import SubscriptionInvoiceIssued
from facturo.subscriptions.models import (
    BillingPeriod,
    PendingCharge,
    PeriodStatus,
    Subscription,
    SubscriptionStatus,
)
from tests.factories import make_customer, make_org

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
D = dt.date.fromisoformat
EUR = "EUR"


def at(day: str, hour: int = 9, tz: Any = PARIS) -> Any:
    return time_machine.travel(dt.datetime.combine(D(day), dt.time(hour, 0), tz), tick=False)


def line(price: str, description: str = "Abonnement", **extra: Any) -> dict[str, Any]:
    return {"description": description, "unit_price": price, "vat_rate": "20", **extra}


def credit_notes(org: Any) -> list[Invoice]:
    return list(
        Invoice.objects.filter(organization=org, kind=DocumentKind.CREDIT_NOTE).order_by(
            "issue_date", "number"
        )
    )


def invoices(org: Any) -> list[Invoice]:
    return list(
        Invoice.objects.filter(organization=org, kind=DocumentKind.INVOICE).order_by("created_at")
    )


@pytest.mark.django_db
def test_change_on_a_stub_period_prorates_on_the_natural_period() -> None:
    # start on 10 January, anchored on the 1st: the first period is the stub 10–31 January,
    # billed 22/31 of the monthly price; a change on the 20th concerns 12 days of 31.
    with at("2027-01-10") as clock:
        org, ctx = make_org()
        customer = make_customer(ctx)
        sub = subs.create_subscription(
            ctx, customer.id, start_date="2027-01-10", anchor_day=1, lines=[line("31.00")]
        )
        billing.run_billing(D("2027-01-10"))
        first = invoices(org)[0]
        assert first.total_excl_vat == Decimal("22.00")  # 31 × 22/31
        clock.move_to(dt.datetime(2027, 1, 20, 9, tzinfo=PARIS))
        result = subs.change(
            ctx, sub.id, lines=[line("62.00")], effective="2027-01-20", render=False
        )
    jan = (D("2027-01-01"), D("2027-02-01"))
    expected = proration.change_adjustment(
        Decimal("31.00"), Decimal("62.00"), jan, D("2027-01-20"), EUR
    )
    assert expected == Decimal("12.00")
    assert result.total == expected  # was 16.91: 12/22 of the difference
    extra = invoices(org)[1]
    assert extra.total_excl_vat == expected


@pytest.mark.django_db
def test_immediate_cancel_after_a_downgrade_credits_the_days_left_once() -> None:
    with at("2027-01-01") as clock:
        org, ctx = make_org()
        customer = make_customer(ctx)
        sub = subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                       lines=[line("60.00")])  # fmt: skip
        billing.run_billing(D("2027-01-01"))
        clock.move_to(dt.datetime(2027, 1, 16, 9, tzinfo=PARIS))
        subs.change(ctx, sub.id, lines=[line("30.00")], effective="2027-01-16", render=False)
        clock.move_to(dt.datetime(2027, 1, 21, 9, tzinfo=PARIS))
        subs.cancel(ctx, sub.id, at_period_end=False, on="2027-01-21", render=False)
    jan = (D("2027-01-01"), D("2027-02-01"))
    downgrade, cancel = credit_notes(org)  # credit notes carry positive totals
    assert downgrade.total_excl_vat == -proration.change_adjustment(
        Decimal("60.00"), Decimal("30.00"), jan, D("2027-01-16"), EUR
    )
    # 21–31 January at the price then in force (30.00), not at the invoiced 60.00 again
    assert cancel.total_excl_vat == proration.piece(
        Decimal("30.00"), jan, (D("2027-01-21"), D("2027-02-01")), EUR
    )
    # what the customer paid in the end: 60 € for 1–15, 30 € for 16–20 January, by day —
    # within the cent that differencing two splits may leave (ADR 0006)
    paid = invoices(org)[0].total_excl_vat - downgrade.total_excl_vat - cancel.total_excl_vat
    owed = proration.piece(
        Decimal("60.00"), jan, (D("2027-01-01"), D("2027-01-16")), EUR
    ) + proration.piece(Decimal("30.00"), jan, (D("2027-01-16"), D("2027-01-21")), EUR)
    assert abs(paid - owed) <= Decimal("0.01")


@pytest.mark.django_db
def test_immediate_cancel_with_a_pending_increase_does_not_credit_what_was_never_charged() -> None:
    with at("2027-01-01") as clock:
        org, ctx = make_org()
        customer = make_customer(ctx)
        sub = subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                       lines=[line("30.00")],
                                       proration_mode="next_invoice")  # fmt: skip
        billing.run_billing(D("2027-01-01"))
        clock.move_to(dt.datetime(2027, 1, 16, 9, tzinfo=PARIS))
        subs.change(ctx, sub.id, lines=[line("60.00")], effective="2027-01-16", render=False)
        assert PendingCharge.objects.filter(subscription=sub, billed_in=None).count() == 1
        clock.move_to(dt.datetime(2027, 1, 20, 9, tzinfo=PARIS))
        subs.cancel(ctx, sub.id, at_period_end=False, on="2027-01-20", render=False)
    jan = (D("2027-01-01"), D("2027-02-01"))

    def piece(price: str, a: str, b: str) -> Decimal:
        return proration.piece(Decimal(price), jan, (D(a), D(b)), EUR)

    # paid 30.00; owed 30 € for 1–15 and 60 € for 16–19 January (the increase was never
    # invoiced: crediting 60 € × 12 days would give back what was not paid)
    owed = piece("30", "2027-01-01", "2027-01-16") + piece("60", "2027-01-16", "2027-01-20")
    (credit,) = credit_notes(org)
    assert credit.total_excl_vat == Decimal("7.74")
    assert abs(Decimal("30.00") - credit.total_excl_vat - owed) <= Decimal("0.01")
    assert len(invoices(org)) == 1
    assert PendingCharge.objects.filter(subscription=sub, billed_in=None).count() == 0


@pytest.mark.django_db
def test_increase_on_one_rate_is_invoiced_when_the_net_change_is_negative() -> None:
    with at("2027-01-01") as clock:
        org, ctx = make_org()
        customer = make_customer(ctx)
        sub = subs.create_subscription(ctx, customer.id, start_date="2027-01-01", lines=[
            line("100.00", "Licence"), line("10.00", "Livres", vat_rate="5.5")])  # fmt: skip
        billing.run_billing(D("2027-01-01"))
        clock.move_to(dt.datetime(2027, 1, 16, 9, tzinfo=PARIS))
        new = [line("20.00", "Licence"), line("50.00", "Livres", vat_rate="5.5")]
        preview = subs.change(ctx, sub.id, lines=new, effective="2027-01-16", preview=True)
        assert preview.action == "invoice_and_credit_note"
        assert preview.total < 0
        subs.change(ctx, sub.id, lines=new, effective="2027-01-16", render=False)
    by_rate = {a["vat_rate"]: a["amount"] for a in preview.adjustments}
    assert by_rate[Decimal("5.5")] > 0 > by_rate[Decimal("20")]
    extra = invoices(org)[1]
    assert extra.total_excl_vat == by_rate[Decimal("5.5")]  # the increase was lost before
    assert [x.vat_rate for x in extra.lines.all()] == [Decimal("5.5")]
    (credit,) = credit_notes(org)
    assert credit.total_excl_vat == -by_rate[Decimal("20")]


@pytest.mark.django_db
def test_the_daily_job_bills_on_each_organizations_own_date() -> None:
    # 31 December 2026, 20:00 in Paris: already 1 January 2027 in Nouméa (UTC+11)
    with at("2026-12-31", hour=20):
        paris, ctx_paris = make_org("paris@example.com")
        noumea, ctx_noumea = make_org("noumea@example.com", name="Nouméa SARL")
        noumea.time_zone = "Pacific/Noumea"
        noumea.save(update_fields=["time_zone"])
        ctx_noumea.organization.time_zone = "Pacific/Noumea"
        for ctx in (ctx_paris, ctx_noumea):
            customer = make_customer(ctx)
            subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                     lines=[line("10.00")])  # fmt: skip
        summary = billing.run_due_billing()
    assert summary.issued == 1
    (invoice,) = Invoice.objects.filter(issue_date__isnull=False)
    assert invoice.organization_id == noumea.id
    assert invoice.issue_date == D("2027-01-01")
    assert not Invoice.objects.filter(organization=paris).exists()


@pytest.mark.django_db
def test_a_subscription_with_a_bad_schedule_is_a_failed_period_and_the_run_goes_on() -> None:
    with at("2027-01-05"):
        _org, ctx = make_org()
        customer = make_customer(ctx)
        broken = subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                          lines=[line("10.00")], name="Cassé")  # fmt: skip
        good = subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                        lines=[line("20.00")], name="Bon")  # fmt: skip
        # data damaged outside the services (an old import, a manual fix in the database)
        Subscription.objects.filter(pk=broken.pk).update(interval=0)
        summary = billing.run_billing(D("2027-01-05"))
        assert (summary.issued, summary.failed) == (1, 1)
        failed = BillingPeriod.objects.get(subscription=broken)
        assert failed.status == PeriodStatus.FAILED
        assert failed.error_code == "recurrence.invalid_interval"
        assert BillingPeriod.objects.get(subscription=good).status == PeriodStatus.ISSUED
        preview = billing.preview(D("2027-01-05"))
        assert preview.failed == 1  # the dry run says so too, instead of crashing
        # fixed: the next run bills it, on the same record
        Subscription.objects.filter(pk=broken.pk).update(interval=1)
        again = billing.run_billing(D("2027-01-05"))
        assert (again.issued, again.failed) == (1, 0)
        assert BillingPeriod.objects.get(subscription=broken).status == PeriodStatus.ISSUED


@pytest.mark.django_db
def test_a_pause_dated_in_the_future_keeps_billing_until_it_starts() -> None:
    with at("2027-01-05") as clock:
        _org, ctx = make_org()
        customer = make_customer(ctx)
        sub = subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                       lines=[line("10.00")])  # fmt: skip
        billing.run_billing(D("2027-01-05"))
        paused = subs.pause(ctx, sub.id, on="2027-02-15")
        assert paused.status == SubscriptionStatus.ACTIVE  # scheduled, not yet paused
        assert paused.next_invoice_date == D("2027-02-01")
        clock.move_to(dt.datetime(2027, 2, 1, 9, tzinfo=PARIS))
        assert billing.run_billing(D("2027-02-01")).issued == 1  # February is billed
        sub.refresh_from_db()
        assert sub.status == SubscriptionStatus.ACTIVE
        assert sub.next_invoice_date == D("2027-02-15")  # wakes up when the pause starts
        clock.move_to(dt.datetime(2027, 2, 15, 9, tzinfo=PARIS))
        billing.run_billing(D("2027-02-15"))
        sub.refresh_from_db()
        assert sub.status == SubscriptionStatus.PAUSED
        clock.move_to(dt.datetime(2027, 3, 1, 9, tzinfo=PARIS))
        assert billing.run_billing(D("2027-03-01")).issued == 0
        subs.resume(ctx, sub.id, on="2027-03-20")
        clock.move_to(dt.datetime(2027, 4, 1, 9, tzinfo=PARIS))
        assert billing.run_billing(D("2027-04-01")).issued == 1
    assert [p.period_start for p in BillingPeriod.objects.filter(subscription=sub)] == [
        D("2027-01-01"), D("2027-02-01"), D("2027-04-01")]  # fmt: skip


@pytest.mark.django_db
def test_a_scheduled_pause_can_be_called_off_before_it_starts() -> None:
    with at("2027-01-05"):
        _org, ctx = make_org()
        customer = make_customer(ctx)
        sub = subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                       lines=[line("10.00")])  # fmt: skip
        subs.pause(ctx, sub.id, on="2027-03-01")
        with pytest.raises(BusinessError) as exc:
            subs.pause(ctx, sub.id, on="2027-04-01")
        assert exc.value.code == "subscription.pause_scheduled"
        resumed = subs.resume(ctx, sub.id, on="2027-01-05")
        assert resumed.pauses == []
        assert resumed.status == SubscriptionStatus.ACTIVE


@pytest.mark.django_db
def test_dry_run_counts_pending_charges_once_and_matches_the_real_run() -> None:
    with at("2027-01-01") as clock:
        _org, ctx = make_org()
        customer = make_customer(ctx)
        sub = subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                       lines=[line("30.00")],
                                       proration_mode="next_invoice")  # fmt: skip
        billing.run_billing(D("2027-01-01"))
        clock.move_to(dt.datetime(2027, 1, 16, 9, tzinfo=PARIS))
        subs.change(ctx, sub.id, lines=[line("60.00")], effective="2027-01-16", render=False)
        # the server was off: February and March are due at once on 1 March
        clock.move_to(dt.datetime(2027, 3, 1, 9, tzinfo=PARIS))
        planned = billing.preview_for(ctx, D("2027-03-01"))
        assert planned.planned == 2
        billing.run_billing(D("2027-03-01"))
    real = {
        bp.period_start: bp.invoice.total_incl_vat
        for bp in BillingPeriod.objects.filter(subscription=sub).select_related("invoice")
    }
    assert {o.period_start: o.total for o in planned.outcomes} == {
        k: v for k, v in real.items() if k >= D("2027-02-01")
    }
    assert real[D("2027-02-01")] != real[D("2027-03-01")]  # the pending charge, once


@pytest.mark.django_db
def test_dry_run_looks_at_most_a_year_ahead() -> None:
    with at("2027-01-01"):
        _org, ctx = make_org()
        billing.preview_for(ctx, D("2027-12-31"))
        with pytest.raises(BusinessError) as exc:
            billing.preview_for(ctx, D("2099-01-01"))
    assert exc.value.code == "billing.preview_too_far"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad", "code", "field"),
    [
        ({"quantity": "1.23456"}, "subscription.too_many_decimals", "lines.1.quantity"),
        ({"unit_price": "1.1234567"}, "subscription.too_many_decimals", "lines.1.unit_price"),
        ({"unit_code": "XXX"}, "subscription.invalid_unit_code", "lines.1.unit_code"),
        ({"vat_category": "Q"}, "subscription.invalid_vat_category", "lines.1.vat_category"),
        ({"vat_rate": "19"}, "tax.invalid_rate", "lines.1.vat_rate"),
        ({"discount_percent": "150"}, "invoice.invalid_discount", "lines.1.discount_percent"),
        ({"vat_category": "E", "vat_rate": "20"}, None, "lines.1"),
        ({"pricing": "per_seat"}, "subscription.invalid_pricing", "lines.1.pricing"),
        ({"pricing": "tiered", "tiers": []}, "metered.no_tiers", "lines.1.tiers"),
    ],
)
def test_subscription_lines_are_checked_like_invoice_lines(
    bad: dict[str, Any], code: str | None, field: str
) -> None:
    _org, ctx = make_org()
    customer = make_customer(ctx)
    with pytest.raises(BusinessError) as exc:
        subs.create_subscription(
            ctx, customer.id, start_date="2027-01-01", lines=[{**line("10.00"), **bad}]
        )
    if code:
        assert exc.value.code == code
    assert (exc.value.field or "").startswith(field)
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_the_subscription_list_does_not_query_per_subscription() -> None:
    with at("2027-01-05"):
        _org, ctx = make_org()
        customer = make_customer(ctx)
        client = Client()
        client.force_login(User.objects.get(email="owner@example.com"))

        def count() -> int:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(reverse("web:subscription_list")).status_code == 200
            return len(queries)

        subs.create_subscription(ctx, customer.id, start_date="2027-01-01", lines=[line("1")])
        count()  # the first request also writes the session
        few = count()
        for n in range(6):
            subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                     lines=[line(f"{n + 2}"), line("3", "Support")])  # fmt: skip
        assert count() == few


@pytest.fixture
def captured() -> Iterator[list[SubscriptionInvoiceIssued]]:
    seen: list[SubscriptionInvoiceIssued] = []
    events.subscribe(SubscriptionInvoiceIssued, seen.append)
    try:
        yield seen
    finally:
        events._handlers[SubscriptionInvoiceIssued].remove(seen.append)


@pytest.mark.django_db
def test_issued_event_carries_what_auto_pay_needs(
    captured: list[SubscriptionInvoiceIssued],
) -> None:
    with at("2027-01-01"):
        org, ctx = make_org()
        customer = make_customer(ctx)
        sepa = subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                        lines=[line("10.00")], auto_pay="sepa")  # fmt: skip
        plain = subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                         lines=[line("20.00")])  # fmt: skip
        draft = subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                         lines=[line("5.00")], issue_mode="draft",
                                         auto_pay="card")  # fmt: skip
        with pytest.raises(BusinessError) as exc:
            subs.update_subscription(ctx, plain.id, auto_pay="cheque")
        assert exc.value.field == "auto_pay"
        subs.update_subscription(ctx, plain.id, auto_pay="card")
        billing.run_billing(D("2027-01-01"))
    by_sub = {e.subscription_id: e for e in captured}
    assert draft.id not in by_sub  # a draft is not issued: nothing to collect yet
    event = by_sub[sepa.id]
    period = BillingPeriod.objects.get(subscription=sepa)
    assert period.invoice is not None
    assert (event.organization_id, event.invoice_id, event.customer_id) == (
        org.id, period.invoice.id, customer.id)  # fmt: skip
    assert (event.period_start, event.period_end) == (D("2027-01-01"), D("2027-02-01"))
    assert event.auto_pay == "sepa"
    assert (event.currency, event.total_incl_vat) == ("EUR", Decimal("12.00"))
    assert event.invoice_number == period.invoice.number
    assert by_sub[plain.id].auto_pay == "card"


@pytest.mark.django_db
def test_immediate_cancel_after_an_invoiced_upgrade_credits_both_invoices() -> None:
    # 30 € billed on 1 January, upgraded to 60 € the same day (an invoice for +30 €), then
    # cancelled that day: 60 € to give back, more than the first invoice alone holds.
    with at("2027-01-01"):
        org, ctx = make_org()
        customer = make_customer(ctx)
        sub = subs.create_subscription(ctx, customer.id, start_date="2027-01-01",
                                       lines=[line("30.00")])  # fmt: skip
        billing.run_billing(D("2027-01-01"))
        subs.change(ctx, sub.id, lines=[line("60.00")], effective="2027-01-01", render=False)
        subs.cancel(ctx, sub.id, at_period_end=False, on="2027-01-01", render=False)
    first, upgrade = invoices(org)
    assert (first.total_excl_vat, upgrade.total_excl_vat) == (Decimal("30.00"), Decimal("30.00"))
    notes = credit_notes(org)
    assert {n.credited_invoice_id: n.total_excl_vat for n in notes} == {
        first.id: Decimal("30.00"), upgrade.id: Decimal("30.00")}  # fmt: skip
