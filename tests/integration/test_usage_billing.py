"""Metered lines end to end: usage posted through the API (idempotent by client id), billed
in arrears with unit, tiered and volume pricing, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

import time_machine

from facturo.invoicing.models import Invoice
from facturo.subscriptions import billing
from facturo.subscriptions.models import BillingPeriod, UsageRecord
from tests.integration.test_api import assert_problem, create_customer, owner_api

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
D = dt.date.fromisoformat


def at(day: str) -> dt.datetime:
    return dt.datetime.combine(D(day), dt.time(9, 0), PARIS)


LINES = [
    {"description": "Forfait", "unit_price": "30.00", "vat_rate": "20"},
    {"description": "Appels API", "pricing": "tiered", "metric": "api_calls", "vat_rate": "20",
     "tiers": [{"up_to": "1000", "unit_price": "0.01"},
               {"up_to": None, "unit_price": "0.005", "flat_fee": "2.00"}]},
    {"description": "Stockage (Go)", "pricing": "volume", "metric": "storage", "vat_rate": "20",
     "tiers": [{"up_to": "100", "unit_price": "0.20"}, {"up_to": None, "unit_price": "0.10"}]},
    {"description": "SMS", "pricing": "unit", "metric": "sms", "unit_price": "0.07",
     "vat_rate": "20"},
]  # fmt: skip


def lines_of(invoice: Invoice) -> list[tuple[str, Decimal, Decimal]]:
    return [(x.description, x.quantity, x.unit_price) for x in invoice.lines.order_by("position")]


def test_usage_is_billed_in_arrears_with_each_pricing(engine: str) -> None:
    with time_machine.travel(at("2027-01-01"), tick=False) as clock:
        _org, _ctx, api = owner_api()
        customer = create_customer(api)["id"]
        made = api.post("/subscriptions", {"customer_id": customer, "start_date": "2027-01-01",
                                           "lines": LINES})  # fmt: skip
        assert made.status_code == 201, made.content
        sub = made.json()
        assert [x["pricing"] for x in sub["lines"]] == ["fixed", "tiered", "volume", "unit"]
        assert sub["lines"][1]["tiers"][1] == {"up_to": None, "unit_price": "0.005",
                                               "flat_fee": "2.00"}  # fmt: skip
        assert sub["monthly_amount"] == "30.00"  # usage is not recurring revenue
        path = f"/subscriptions/{sub['id']}/usage"

        def usage(client_id: str, metric: str, quantity: str, day: str) -> Any:
            return api.post(path, {"client_id": client_id, "metric": metric,
                                   "quantity": quantity, "occurred_on": day})  # fmt: skip

        billing.run_billing(D("2027-01-01"))  # January in advance: no usage yet
        first = BillingPeriod.objects.get(subscription_id=sub["id"]).invoice
        assert first is not None
        assert [x[0] for x in lines_of(first)] == ["Forfait"]

        assert usage("c1", "api_calls", "800", "2027-01-05").status_code == 201
        assert usage("c2", "api_calls", "700", "2027-01-20").status_code == 201
        assert usage("s1", "storage", "150", "2027-01-31").status_code == 201
        assert usage("m1", "sms", "12", "2027-01-10").status_code == 201
        replay = usage("c1", "api_calls", "800", "2027-01-05")
        assert replay.status_code == 200
        assert replay.json()["created"] is False
        assert_problem(usage("c1", "api_calls", "801", "2027-01-05"), 409, "usage.duplicate_id")
        assert_problem(usage("x1", "minutes", "1", "2027-01-05"), 422, "usage.unknown_metric",
                       "metric")  # fmt: skip
        assert UsageRecord.objects.count() == 4

        clock.move_to(at("2027-02-01"))
        billing.run_billing(D("2027-02-01"))
        february = BillingPeriod.objects.get(
            subscription_id=sub["id"], period_start=D("2027-02-01")
        )
        assert february.invoice is not None
        got = lines_of(february.invoice)
        assert got[0] == ("Forfait", Decimal(1), Decimal("30.00"))
        # graduated: 1000 × 0.01 + 500 × 0.005 + 2.00; volume: 150 × 0.10; unit: 12 × 0.07
        assert [(q, p) for _d, q, p in got[1:]] == [
            (Decimal(1000), Decimal("0.01")), (Decimal(500), Decimal("0.005")),
            (Decimal(1), Decimal("2.00")), (Decimal(150), Decimal("0.10")),
            (Decimal(12), Decimal("0.07"))]  # fmt: skip
        assert "palier 1" in got[1][0]
        assert "forfait palier 2" in got[3][0]
        assert february.invoice.total_excl_vat == Decimal("30.00") + Decimal("14.50") + Decimal(
            "15.00"
        ) + Decimal("0.84")
        assert UsageRecord.objects.filter(billed_in=february).count() == 4

        # late usage for January goes on the next invoice; nothing is billed twice
        assert usage("c3", "api_calls", "10", "2027-01-31").status_code == 201
        clock.move_to(at("2027-03-01"))
        billing.run_billing(D("2027-03-01"))
        billing.run_billing(D("2027-03-01"))
        march = BillingPeriod.objects.get(subscription_id=sub["id"], period_start=D("2027-03-01"))
        assert march.invoice is not None
        assert [(q, p) for _d, q, p in lines_of(march.invoice)[1:]] == [
            (Decimal(10), Decimal("0.01"))]  # fmt: skip
        assert not UsageRecord.objects.filter(billed_in=None).exists()

        # a cancelled subscription takes no more usage: a clear error, nothing written
        api.post(f"/subscriptions/{sub['id']}/cancel", {"at_period_end": False, "on": "2027-03-05"})
        assert_problem(usage("c9", "api_calls", "1", "2027-03-05"), 409,
                       "usage.subscription_closed")  # fmt: skip
        assert UsageRecord.objects.count() == 5


def test_usage_in_arrears_is_billed_with_its_period(engine: str) -> None:
    with time_machine.travel(at("2027-01-01"), tick=False) as clock:
        _org, _ctx, api = owner_api()
        customer = create_customer(api)["id"]
        sub = api.post("/subscriptions", {"customer_id": customer, "start_date": "2027-01-01",
                                          "timing": "arrears",
                                          "lines": [LINES[0], LINES[3]]}).json()  # fmt: skip
        path = f"/subscriptions/{sub['id']}/usage"
        body = {"client_id": "a", "metric": "sms", "quantity": "100", "occurred_on": "2027-01-31"}
        assert api.post(path, body).status_code == 201
        clock.move_to(at("2027-02-01"))
        billing.run_billing(D("2027-02-01"))
        (period,) = BillingPeriod.objects.filter(subscription_id=sub["id"])
        assert period.period_start == D("2027-01-01")
        assert period.invoice is not None
        assert period.invoice.total_excl_vat == Decimal("37.00")  # 30 + 100 × 0.07


def test_settings_and_end_change_through_the_api(engine: str) -> None:
    with time_machine.travel(at("2027-01-05"), tick=False):
        _org, _ctx, api = owner_api()
        customer = create_customer(api)["id"]
        body = {"customer_id": customer, "start_date": "2027-01-01", "lines": [LINES[0]],
                "auto_pay": "sepa"}  # fmt: skip
        sub = api.post("/subscriptions", body).json()
        assert sub["auto_pay"] == "sepa"
        path = f"/subscriptions/{sub['id']}"
        changed = api.patch(path, {"auto_pay": "card", "max_periods": 6, "owner_email":
                                   "commercial@example.com", "issue_mode": "draft"})  # fmt: skip
        assert changed.status_code == 200, changed.content
        body = changed.json()
        assert (body["auto_pay"], body["max_periods"], body["issue_mode"]) == ("card", 6, "draft")
        assert_problem(api.patch(path, {"auto_pay": "cheque"}), 422)
        assert_problem(api.patch(path, {"owner_email": "pas une adresse"}), 422,
                       "subscription.invalid_owner_email", "owner_email")  # fmt: skip
        assert api.patch(path, {"max_periods": None}).json()["max_periods"] is None
        assert api.get(path).json()["auto_pay"] == "card"


def _metered(api: Any, **extra: Any) -> tuple[dict[str, Any], Any]:
    customer = create_customer(api)["id"]
    made = api.post("/subscriptions", {"customer_id": customer, "start_date": "2027-01-01",
                                       "lines": [LINES[0], LINES[3]], **extra})  # fmt: skip
    assert made.status_code == 201, made.content
    sub = made.json()

    def usage(client_id: str, quantity: str, day: str) -> Any:
        return api.post(
            f"/subscriptions/{sub['id']}/usage",
            {"client_id": client_id, "metric": "sms", "quantity": quantity, "occurred_on": day},
        )

    return sub, usage


def test_the_last_period_usage_of_an_advance_subscription_is_billed_when_it_ends(
    engine: str,
) -> None:
    """Billed in advance, an invoice carries the usage before its period: the usage of the
    last period is billed by a closing invoice on the day the subscription ends."""
    with time_machine.travel(at("2027-01-01"), tick=False) as clock:
        _org, _ctx, api = owner_api()
        sub, usage = _metered(api)
        billing.run_billing(D("2027-01-01"))
        clock.move_to(at("2027-01-15"))
        assert usage("a", "100", "2027-01-10").status_code == 201
        cancelled = api.post(f"/subscriptions/{sub['id']}/cancel", {"at_period_end": True})
        assert cancelled.status_code == 200, cancelled.content
        assert cancelled.json()["next_invoice_date"] == "2027-02-01"
        # still running until 1 February: its usage is taken, and billed at the end
        assert usage("b", "20", "2027-01-30").status_code == 201
        assert_problem(usage("c", "1", "2027-02-01"), 409, "usage.subscription_closed")
        plan = billing.preview(D("2027-02-01"))
        assert [(o.status, o.total) for o in plan.outcomes] == [("planned", Decimal("10.08"))]

        clock.move_to(at("2027-02-01"))
        summary = billing.run_billing(D("2027-02-01"))
        assert summary.line() == "issued 1, drafts 0, skipped 0, failed 0"
        closing = BillingPeriod.objects.get(subscription_id=sub["id"], period_start=D("2027-02-01"))
        assert closing.period_end == D("2027-02-01")
        assert closing.invoice is not None
        assert lines_of(closing.invoice) == [("SMS", Decimal(120), Decimal("0.07"))]
        assert closing.invoice.total_excl_vat == Decimal("8.40")
        assert "Consommation jusqu’au 31/01/2027" in closing.invoice.free_text
        assert not UsageRecord.objects.filter(billed_in=None).exists()
        # once: a second run bills nothing, the subscription takes no more usage
        assert (
            billing.run_billing(D("2027-02-01")).line() == "issued 0, drafts 0, skipped 0, failed 0"
        )
        assert BillingPeriod.objects.filter(subscription_id=sub["id"]).count() == 2
        assert api.get(f"/subscriptions/{sub['id']}").json()["next_invoice_date"] is None
        assert_problem(usage("d", "1", "2027-01-31"), 409, "usage.subscription_closed")


def test_an_immediate_cancellation_bills_the_usage_up_to_that_day(engine: str) -> None:
    with time_machine.travel(at("2027-01-01"), tick=False) as clock:
        _org, _ctx, api = owner_api()
        sub, usage = _metered(api)
        billing.run_billing(D("2027-01-01"))
        clock.move_to(at("2027-02-01"))
        billing.run_billing(D("2027-02-01"))
        clock.move_to(at("2027-02-10"))
        assert usage("a", "50", "2027-02-03").status_code == 201
        done = api.post(f"/subscriptions/{sub['id']}/cancel",
                        {"at_period_end": False, "on": "2027-02-10"})  # fmt: skip
        assert done.status_code == 200, done.content
        summary = billing.run_billing(D("2027-02-10"))
        assert summary.issued == 1
        closing = BillingPeriod.objects.get(subscription_id=sub["id"], period_start=D("2027-02-10"))
        assert closing.invoice is not None
        assert lines_of(closing.invoice) == [("SMS", Decimal(50), Decimal("0.07"))]
        assert closing.invoice.issue_date == D("2027-02-10")


def test_a_fixed_term_without_usage_ends_without_an_empty_invoice(engine: str) -> None:
    with time_machine.travel(at("2027-01-01"), tick=False) as clock:
        _org, _ctx, api = owner_api()
        sub, _usage = _metered(api, max_periods=2)
        billing.run_billing(D("2027-01-01"))
        clock.move_to(at("2027-02-01"))
        billing.run_billing(D("2027-02-01"))
        assert api.get(f"/subscriptions/{sub['id']}").json()["next_invoice_date"] == "2027-03-01"
        clock.move_to(at("2027-03-01"))
        summary = billing.run_billing(D("2027-03-01"))
        assert summary.line() == "issued 0, drafts 0, skipped 1, failed 0"
        closing = BillingPeriod.objects.get(subscription_id=sub["id"], period_start=D("2027-03-01"))
        assert closing.status == "empty"
        assert closing.invoice is None
        assert Invoice.objects.filter(customer_id=sub["customer_id"]).count() == 2
        after = api.get(f"/subscriptions/{sub['id']}").json()
        assert after["status"] == "ended"
        assert after["next_invoice_date"] is None
        assert (
            billing.run_billing(D("2027-03-02")).line() == "issued 0, drafts 0, skipped 0, failed 0"
        )
