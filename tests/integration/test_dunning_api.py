"""/api/v1/dunning: policy editor round trip, bad input as problems, pause / dispute / tasks,
upcoming, run, history and timeline; both engines."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from typer.testing import CliRunner

from facturo.cli import app
from facturo.dunning import services as dunning
from facturo.organizations.context import Ctx
from tests.integration.test_api import (
    Api,
    assert_problem,
    create_customer,
    create_draft,
    issue,
    line,
    owner_api,
)


def step(offset: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"Relance {offset}",
        "offset_days": offset,
        "subject_fr": "Relance {{ invoice_number }}",
        "body_fr": "{{ invoice_list }}",
        "subject_en": "Reminder {{ invoice_number }}",
        "body_en": "{{ invoice_list }}",
        **extra,
    }


def dunning_ids(api: Api, ctx: Ctx, customer_id: str, invoice_id: str) -> dict[str, list[str]]:
    """A policy, a pause and a task of ``api``'s organization (tenant-isolation tests)."""
    policy = api.post("/dunning/policies", {"name": "Iso", "steps": [step(7, task_title="Call")]})
    assert policy.status_code == 201, policy.content
    until = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    pause = api.post("/dunning/pauses", {"customer_id": customer_id, "until": until,
                                         "reason": "Iso"})  # fmt: skip
    assert pause.status_code == 201, pause.content
    from facturo.customers.models import Customer
    from facturo.dunning.models import DunningTask
    from facturo.invoicing.models import Invoice

    task = DunningTask.objects.create(
        organization=ctx.organization,
        customer=Customer.objects.get(pk=customer_id),
        invoice=Invoice.objects.get(pk=invoice_id),
        title="Iso",
        due_on=timezone.localdate(),
    )
    return {"policy_id": [policy.json()["id"]], "pause_id": [pause.json()["id"]],
            "task_id": [str(task.pk)]}  # fmt: skip


def test_policy_round_trip_and_bad_input(engine: str) -> None:
    _org, _ctx, api = owner_api()
    created = api.post("/dunning/policies", {"name": "Standard", "group_per_customer": True,
                                             "steps": [step(-3), step(7), step(30)]})  # fmt: skip
    assert created.status_code == 201, created.content
    policy = created.json()
    assert policy["is_default"] is True  # the first policy is the default
    assert [s["offset_days"] for s in policy["steps"]] == [-3, 7, 30]
    listed = api.get("/dunning/policies").json()
    assert listed["count"] == 1
    assert listed["items"][0]["id"] == policy["id"]

    bad_order = api.post("/dunning/policies", {"name": "B", "steps": [step(15), step(7)]})
    body = assert_problem(bad_order, 422, "dunning.step_order", "steps.1.offset_days")
    assert "must come after step 1" in body["detail"]
    unknown = api.post("/dunning/policies", {"name": "B", "steps": [step(7, body_fr="{{ x }}")]})
    assert_problem(unknown, 422, "dunning.unknown_variable", "steps.0.body_fr")

    # Replace: keep the first step by id, change the others.
    steps = policy["steps"]
    update = api.call("PUT", f"/dunning/policies/{policy['id']}", {
        "name": "Standard", "steps": [steps[0], step(10), step(45, channel="letter")]})  # fmt: skip
    assert update.status_code == 200, update.content
    assert update.json()["steps"][0]["id"] == steps[0]["id"]
    assert [s["offset_days"] for s in update.json()["steps"]] == [-3, 10, 45]

    template = {"subject": "Facture {{ invoice_number }}", "body": "{{ total_due }}"}
    preview = api.post("/dunning/preview", {**template, "language": "en"})
    assert preview.status_code == 200
    assert preview.json()["subject"] == "Facture F-2026-0042"
    assert_problem(
        api.post("/dunning/preview", {"body": "{{ nope }}"}), 422, "dunning.unknown_variable"
    )


def test_pause_dispute_run_history_timeline_tasks(engine: str) -> None:
    _org, _ctx, api = owner_api()
    customer = create_customer(api)["id"]
    silent = create_customer(api, name="Sans Mail", email="", siren="", vat_number="")["id"]
    policy = api.post("/dunning/policies", {"name": "P", "steps": [
        step(0, task_title="Appeler", task_assignee="Camille")]}).json()  # fmt: skip
    no_email = api.post("/dunning/assignments", {"policy_id": policy["id"], "customer_id": silent})
    assert_problem(no_email, 422, "dunning.customer_no_email", "customer_id")

    on_receipt = {"payment_terms_kind": "on_receipt"}
    invoice = issue(
        api, create_draft(api, customer, [line("Conseil", "1", "100")], **on_receipt)["id"]
    )
    other = issue(api, create_draft(api, customer, [line("Audit", "1", "50")], **on_receipt)["id"])
    upcoming = api.get("/dunning/upcoming").json()["items"]
    assert {u["invoice_number"] for u in upcoming} == {invoice["number"], other["number"]}

    dispute = api.post(f"/invoices/{other['id']}/dunning/dispute", {"reason": "Quantité"})
    assert dispute.status_code == 200
    assert dispute.json()["disputed"] is True
    run = api.post("/dunning/runs", {})
    assert run.status_code == 200, run.content
    assert run.json()["summary"] == "queued 1, skipped 1"
    assert run.json()["skipped"][0]["reason"] == "disputed: Quantité"
    assert api.post("/dunning/runs", {}).json()["summary"] == "queued 0, skipped 1"
    future = (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    assert_problem(api.post("/dunning/runs", {"date": future}), 422, "dunning.future_date")

    history = api.get("/dunning/reminders").json()
    assert history["count"] == 1
    assert history["items"][0]["invoices"] == [invoice["number"]]
    assert history["items"][0]["status"] == "queued"
    timeline = api.get(f"/invoices/{invoice['id']}/dunning/timeline").json()
    assert [e["kind"] for e in timeline] == ["issued", "reminder"]
    assert invoice["number"] in timeline[1]["body"]

    tasks = api.get("/dunning/tasks").json()
    assert tasks["count"] == 1
    assert tasks["items"][0]["assignee"] == "Camille"
    done = api.post(f"/dunning/tasks/{tasks['items'][0]['id']}/done", {"note": "Rappelé"})
    assert done.status_code == 200
    assert done.json()["done_at"]
    assert api.get("/dunning/tasks").json()["count"] == 0

    until = (timezone.localdate() + dt.timedelta(days=10)).isoformat()
    pause = api.post("/dunning/pauses", {"invoice_id": invoice["id"], "until": until,
                                         "reason": "Promesse"})  # fmt: skip
    assert pause.status_code == 201
    assert api.get("/dunning/pauses").json()["count"] == 1
    lifted = api.post(f"/dunning/pauses/{pause.json()['id']}/lift", {})
    assert lifted.json()["lifted_at"]
    both = api.post("/dunning/pauses", {"invoice_id": invoice["id"], "customer_id": customer,
                                        "until": until, "reason": "x"})  # fmt: skip
    assert_problem(both, 422, "dunning.pause_target")
    assert dunning.VARIABLES  # the variables are documented in the OpenAPI description too


def test_cli_run_prints_the_summary(engine: str) -> None:
    _org, _ctx, api = owner_api()
    customer = create_customer(api)["id"]
    api.post("/dunning/policies", {"name": "P", "steps": [step(0)]})
    invoice = issue(api, create_draft(api, customer, [line("Conseil", "1", "100")],
                                      payment_terms_kind="on_receipt")["id"])  # fmt: skip
    api.post(f"/invoices/{invoice['id']}/dunning/dispute", {"reason": "Litige"})
    result = CliRunner().invoke(app, ["dunning", "run"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1] == "queued 0, skipped 1"
    assert f"skipped {invoice['number']}: disputed: Litige" in result.output
    bad = CliRunner().invoke(app, ["dunning", "run", "--date", "2026-02-30"])
    assert bad.exit_code == 2
