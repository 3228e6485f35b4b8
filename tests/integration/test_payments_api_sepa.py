"""/api/v1: settle a SEPA batch, import returns (pain.002), payment settings; the CLI's
``facturo sepa import-returns`` (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from typer.testing import CliRunner

from facturo.cli import app
from facturo.invoicing.models import Invoice
from facturo.payments import sepa
from facturo.payments.models import DebitItem, Payment
from tests.integration.test_api import assert_problem, create_customer, owner_api
from tests.integration.test_api_payments import ICS, TODAY, invoice_of, mandate
from tests.integration.test_sepa_returns_autopay import pain002


def upload(api: Any, data: bytes, name: str = "status.xml") -> Any:
    return api.client.post(
        "/api/v1/sepa-returns",
        {"file": SimpleUploadedFile(name, data, content_type="application/xml")},
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
        HTTP_ACCEPT_LANGUAGE="fr",
    )


def batch_of(api: Any, ctx: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    sepa.configure_creditor(ctx, identifier=ICS)
    customer = create_customer(api)
    invoice = invoice_of(api, customer["id"], "50.00")
    assert mandate(api, customer["id"]).status_code == 201
    made = api.post("/sepa-batches", {"collection_date": TODAY.isoformat(),
                                      "invoice_ids": [invoice["id"]],
                                      "version": "pain.008.001.08"})  # fmt: skip
    assert made.status_code == 201, made.content
    return made.json()["batch"], invoice


def test_settle_then_import_a_rejection(engine: str) -> None:
    _org, ctx, api = owner_api()
    batch, invoice = batch_of(api, ctx)
    assert batch["version"] == "pain.008.001.08"
    settled = api.post(f"/sepa-batches/{batch['id']}/settle", {})
    assert settled.json() == {"settled": 1}
    assert api.get("/sepa-batches").json()["items"][0]["settled_at"] is not None
    item = DebitItem.objects.get()
    response = upload(api, pain002(batch["message_id"], [(item.end_to_end_id, "AC04", "60.00")]))
    assert response.status_code == 200, response.content
    (row,) = response.json()["items"]
    assert row["outcome"] == "returned"
    assert row["reason_code"] == "AC04"
    assert row["reason"] == "Compte clôturé"  # in the request's language
    assert Invoice.objects.get(pk=invoice["id"]).status == "issued"
    assert_problem(upload(api, b"<nope"), 422, "sepa.bad_returns_file", "file")


def test_payment_settings_round_trip(engine: str) -> None:
    _org, _ctx, api = owner_api()
    assert api.get("/payment-settings").json()["notify_on_payment"] == "issuer"
    body = {"notify_on_payment": "address", "notify_address": "cash@example.com",
            "prenotification_days": 3, "pain_version": "pain.008.001.08"}  # fmt: skip
    assert api.call("PUT", "/payment-settings", body).json() == body
    assert_problem(api.call("PUT", "/payment-settings", {**body, "notify_address": ""}), 422,
                   "payments.notify_address_required", "notify_address")  # fmt: skip


def test_cli_import_returns(engine: str, tmp_path: Any) -> None:
    _org, ctx, api = owner_api()
    batch, _invoice = batch_of(api, ctx)
    item = DebitItem.objects.get()
    path = tmp_path / "status.xml"
    path.write_bytes(pain002(batch["message_id"], [(item.end_to_end_id, "MD01", "60.00")]))
    result = CliRunner().invoke(app, ["sepa", "import-returns", str(path)])
    assert result.exit_code == 0, result.output
    assert "returned 1, already returned 0, unknown 0, mismatch 0" in result.output
    assert Payment.objects.get(pk=item.payment_id).status == "returned"
    again = CliRunner().invoke(app, ["sepa", "import-returns", str(path)])
    assert "returned 0, already returned 1" in again.output
