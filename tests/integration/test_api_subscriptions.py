"""/api/v1 plans, subscriptions, usage, billing runs and MRR, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import time_machine
from django.utils import timezone

from facturo.organizations.models import Role
from facturo.subscriptions.models import SubscriptionLine
from tests.integration.test_api import Api, assert_problem, create_customer, member_api, owner_api

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
D = dt.date.fromisoformat


def at(day: str) -> dt.datetime:
    return dt.datetime.combine(D(day), dt.time(9, 0), PARIS)


def sub_line(price: str, description: str = "Abonnement", **extra: Any) -> dict[str, Any]:
    return {"description": description, "unit_price": price, "vat_rate": "20", **extra}


def create_subscription(api: Api, customer_id: str, start: str = "2027-01-01",
                        price: str = "30.00", **extra: Any) -> dict[str, Any]:  # fmt: skip
    body = {"customer_id": customer_id, "start_date": start, "lines": [sub_line(price)], **extra}
    response = api.post("/subscriptions", body)
    assert response.status_code == 201, response.content
    return dict(response.json())


def subscription_ids(api: Api, customer_id: str) -> dict[str, list[str]]:
    """A plan, a subscription (billed once) and a billing run of ``api``'s organization, for
    the tenant-isolation test."""
    plan = api.post("/plans", {"name": "Plan secret A", "lines": [sub_line("12")]})
    assert plan.status_code == 201, plan.content
    today = timezone.localdate().isoformat()
    sub = create_subscription(api, customer_id, start=today, plan_id=plan.json()["id"])
    run = api.post("/billing-runs", {"date": today})
    assert run.status_code == 201, run.content
    return {"plan_id": [plan.json()["id"]], "subscription_id": [sub["id"]],
            "run_id": [run.json()["id"]]}  # fmt: skip


def test_plans(engine: str) -> None:
    _org, _ctx, api = owner_api()
    product = api.post("/products", {"name": "Hébergement", "unit_price": "19.99"}).json()
    body = {
        "name": "Pro",
        "unit": "month",
        "interval": 3,
        "trial_days": 14,
        "lines": [{"product_id": product["id"]}, sub_line("0.5", "Support", quantity="2.5")],
    }
    response = api.post("/plans", body)  # fmt: skip
    assert response.status_code == 201, response.content
    plan = response.json()
    assert (plan["unit"], plan["interval"], plan["timing"], plan["trial_days"]) == (
        "month", 3, "advance", 14)  # fmt: skip
    assert plan["lines"][0]["description"] == "Hébergement"
    assert plan["lines"][0]["unit_price"] is None  # the catalog price at billing time
    assert plan["lines"][1]["quantity"] == "2.5"
    assert plan["lines"][1]["unit_price"] == "0.50"
    assert api.get(f"/plans/{plan['id']}").json() == plan
    listed = api.get("/plans").json()
    assert listed["count"] == 1
    assert listed["items"] == [plan]
    # impossible schedule: a clear error, nothing written
    bad = api.post("/plans", {**body, "unit": "semi_month", "interval": 1,
                              "semi_month_days": [10, 10]})  # fmt: skip
    assert_problem(bad, 422, "recurrence.semi_month_same_day")
    assert_problem(api.post("/plans", {**body, "lines": []}), 422)
    unknown = api.post("/plans", {**body, "lines": [{"product_id": _ctx.organization.id.hex}]})
    assert_problem(unknown, 404, "product.not_found", "lines.1.product_id")
    assert_problem(api.get("/plans/00000000-0000-0000-0000-000000000000"), 404)
    assert api.get("/plans").json()["count"] == 1


def test_subscription_lifecycle(engine: str) -> None:
    with time_machine.travel(at("2027-01-01"), tick=False) as clock:
        _org, _ctx, api = owner_api()
        customer = create_customer(api)["id"]
        sub = create_subscription(api, customer, owner_email="rep@example.com")
        assert sub["status"] == "active"
        assert sub["next_invoice_date"] == "2027-01-01"
        assert sub["monthly_amount"] == "30.00"
        assert sub["lines"][0]["unit_price"] == "30.00"
        assert api.get(f"/subscriptions/{sub['id']}").json() == sub
        # dry run: what a real run would issue, nothing written
        dry = api.post("/billing-runs", {"dry_run": True})
        assert dry.status_code == 200, dry.content
        assert dry.json()["planned"] == 1
        assert dry.json()["periods"][0]["total_incl_vat"] == "36.00"
        assert api.get("/billing-runs").json()["count"] == 0
        assert_problem(api.post("/billing-runs", {"date": "2027-01-02"}), 422,
                       "billing.future_date", "date")  # fmt: skip
        run = api.post("/billing-runs", {}, key="run-1")
        assert run.status_code == 201, run.content
        assert {k: run.json()[k] for k in ("run_date", "issued", "failed", "status")} == {
            "run_date": "2027-01-01", "issued": 1, "failed": 0, "status": "done"}  # fmt: skip
        assert api.post("/billing-runs", {}, key="run-1").json() == run.json()  # replayed
        again = api.post("/billing-runs", {})  # a second run bills nothing more
        assert again.json()["issued"] == 0
        runs = api.get("/billing-runs").json()
        assert runs["count"] == 2
        assert api.get(f"/billing-runs/{run.json()['id']}").json() == run.json()
        periods = api.get(f"/subscriptions/{sub['id']}/periods").json()
        assert periods["count"] == 1
        assert periods["items"][0]["status"] == "issued"
        assert periods["items"][0]["invoice_number"]

        # mid-period change, in advance: 30 → 60 on 16 January = +30.97 − 15.48 = +15.49
        clock.move_to(at("2027-01-16"))
        change = {"effective": "2027-01-16", "lines": [sub_line("60.00", "Abonnement+")]}
        preview = api.post(f"/subscriptions/{sub['id']}/change-preview", change)
        assert preview.status_code == 200, preview.content
        assert preview.json() == {
            "effective": "2027-01-16", "period_start": "2027-01-01",
            "period_end": "2027-02-01", "total": "15.49", "action": "invoice",
            "adjustments": [{"vat_category": "S", "vat_rate": "20", "amount": "15.49"}],
        }  # fmt: skip
        assert SubscriptionLine.objects.filter(subscription_id=sub["id"]).count() == 1
        done = api.post(f"/subscriptions/{sub['id']}/change", change)
        assert done.json() == preview.json()
        lines = api.get(f"/subscriptions/{sub['id']}").json()["lines"]
        assert [(x["unit_price"], x["starts_on"], x["ends_on"]) for x in lines] == [
            ("30.00", None, "2027-01-16"), ("60.00", "2027-01-16", None)]  # fmt: skip
        assert_problem(api.post(f"/subscriptions/{sub['id']}/change",
                                {**change, "effective": "2026-12-31"}), 422,
                       "subscription.change_before_billed")  # fmt: skip

        # pause, resume, cancel
        paused = api.post(f"/subscriptions/{sub['id']}/pause", {"on": "2027-01-20"}).json()
        assert paused["status"] == "active"  # scheduled: it pauses on 20 January
        assert paused["pauses"] == [["2027-01-20", None]]
        assert_problem(api.post(f"/subscriptions/{sub['id']}/pause", {}), 409)
        resumed = api.post(f"/subscriptions/{sub['id']}/resume", {"on": "2027-03-01"}).json()
        assert resumed["status"] == "active"
        assert resumed["next_invoice_date"] == "2027-03-01"  # February started in the pause
        cancelled = api.post(f"/subscriptions/{sub['id']}/cancel", {"on": "2027-03-10"}).json()
        assert cancelled["status"] == "cancelled"
        assert cancelled["ends_on"] == "2027-04-01"
        listed = api.get("/subscriptions", query={"status": "cancelled"}).json()
        assert [s["id"] for s in listed["items"]] == [sub["id"]]
        assert api.get("/subscriptions", query={"status": "active"}).json()["count"] == 0


def test_usage_is_idempotent_by_client_id(engine: str) -> None:
    _org, _ctx, api = owner_api()
    customer = create_customer(api)["id"]
    metered = sub_line("0.10", "Appels API", pricing="unit", metric="api_calls")
    sub = create_subscription(api, customer, start="2027-01-01",
                              lines=[sub_line("30.00"), metered])  # fmt: skip
    path = f"/subscriptions/{sub['id']}/usage"
    body = {"client_id": "evt-1", "quantity": "12.5", "occurred_on": "2027-01-03",
            "metric": "api_calls"}  # fmt: skip
    first = api.post(path, body)
    assert first.status_code == 201, first.content
    assert first.json()["quantity"] == "12.5"
    assert first.json()["created"] is True
    second = api.post(path, body)
    assert second.status_code == 200
    assert {**second.json(), "created": True} == first.json()
    assert_problem(api.post(path, {**body, "quantity": "13"}), 409, "usage.duplicate_id")
    number = api.post(path, {**body, "client_id": "evt-1b", "quantity": 0.1})  # digit for digit
    assert number.json()["quantity"] == "0.1"
    assert_problem(api.post(path, {**body, "client_id": "evt-1c", "quantity": "1e3"}), 422)
    api.post(f"/subscriptions/{sub['id']}/cancel", {"at_period_end": False, "on": "2027-01-01"})
    assert_problem(api.post(path, {**body, "client_id": "evt-2"}), 409,
                   "usage.subscription_closed")  # fmt: skip


def test_subscription_to_a_plan_and_filters(engine: str) -> None:
    _org, _ctx, api = owner_api()
    customer = create_customer(api)["id"]
    plan = api.post("/plans", {"name": "Annuel", "unit": "year",
                               "lines": [sub_line("1200")]}).json()  # fmt: skip
    sub = create_subscription(api, customer, start="2027-02-01", plan_id=plan["id"])
    # the body's lines replace the plan's; schedule comes from the plan
    assert (sub["unit"], sub["plan_id"], sub["name"]) == ("year", plan["id"], "Annuel")
    plain = api.post("/subscriptions", {"customer_id": customer, "start_date": "2027-02-01",
                                        "plan_id": plan["id"]}).json()  # fmt: skip
    assert plain["lines"][0]["unit_price"] == "1200.00"
    assert plain["monthly_amount"] == "100.00"
    assert api.get("/subscriptions", query={"plan_id": plan["id"]}).json()["count"] == 2
    assert api.get("/subscriptions", query={"customer_id": customer}).json()["count"] == 2
    assert_problem(api.post("/subscriptions", {"customer_id": customer,
                                               "start_date": "2027-02-01"}), 422,
                   "subscription.no_lines")  # fmt: skip
    assert_problem(api.post("/subscriptions", {"customer_id": customer,
                                               "start_date": "2027-02-01",
                                               "lines": [sub_line("1")],
                                               "ends_on": "2027-01-01"}), 422,
                   "recurrence.end_before_start")  # fmt: skip


def test_mrr(engine: str) -> None:
    with time_machine.travel(at("2027-03-10"), tick=False):
        _org, _ctx, api = owner_api()
        customer = create_customer(api)["id"]
        create_subscription(api, customer, start="2027-03-01", price="30.00")
        create_subscription(api, customer, start="2027-01-15", price="100.00", unit="month",
                            interval=3)  # fmt: skip
        create_subscription(api, customer, start="2027-03-08", price="10.00", unit="week")
        mrr = api.get("/mrr").json()
    # 30 + 100 / 3 + 10 × 30.4375 / 7 = 106.815476… → 106.82
    assert mrr["mrr"] == "106.82"
    assert mrr["arr"] == "1281.84"
    assert (mrr["count"], mrr["active"], mrr["paused"], mrr["churned_this_month"]) == (3, 3, 0, 0)
    assert mrr["date"] == "2027-03-10"
    # nothing billed yet: overdue periods count in March (30 + 100 + 8, 15, 22, 29 March 4 × 10)
    assert mrr["expected"][0] == {"month": "2027-03", "invoices": 6,
                                  "amounts": [{"currency": "EUR", "amount": "170.00"}]}  # fmt: skip
    later = api.get("/mrr", query={"date": "2027-01-10"}).json()  # before any start
    assert later["mrr"] == "0.00"
    assert later["not_started"] == 3


def test_read_only_member_reads_but_cannot_write(engine: str) -> None:
    with time_machine.travel(at("2027-01-05"), tick=False):
        _org, ctx, api = owner_api()
        customer = create_customer(api)["id"]
        sub = create_subscription(api, customer)
        reader = member_api(ctx.organization, "viewer@example.com", Role.READ_ONLY, ctx)
        assert reader.get(f"/subscriptions/{sub['id']}").status_code == 200
        assert reader.get("/mrr").status_code == 200
        assert reader.post("/billing-runs", {"dry_run": True}).status_code == 200
        for path, body in [
            ("/plans", {"name": "X", "lines": [sub_line("1")]}),
            ("/subscriptions", {"customer_id": customer, "start_date": "2027-01-01",
                                "lines": [sub_line("1")]}),
            (f"/subscriptions/{sub['id']}/pause", {}),
            (f"/subscriptions/{sub['id']}/cancel", {}),
            (f"/subscriptions/{sub['id']}/change", {"effective": "2027-01-05",
                                                    "lines": [sub_line("1")]}),
            (f"/subscriptions/{sub['id']}/usage", {"client_id": "a", "quantity": "1",
                                                   "occurred_on": "2027-01-05"}),
            ("/billing-runs", {}),
        ]:  # fmt: skip
            assert_problem(reader.post(path, body), 403)
        assert api.get("/billing-runs").json()["count"] == 0
        assert api.get(f"/subscriptions/{sub['id']}").json()["status"] == "active"
