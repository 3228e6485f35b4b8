"""The REST API (/api/v1) end to end through Django's test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import threading
import time
from typing import Any
from urllib.parse import urlencode

import pytest
import time_machine
from django.db import connections
from django.test import Client
from django.utils import timezone

from facturo.api.models import IdempotencyRecord
from facturo.customers.models import Customer
from facturo.foundation.db import current_alias, using_database
from facturo.invoicing.models import Invoice
from facturo.organizations.context import Ctx
from facturo.organizations.models import Membership, Organization, Role
from facturo.organizations.services import add_member, create_api_token
from tests.factories import make_org

TODAY = timezone.localdate()  # the organization's time zone (Europe/Paris)
YEAR = TODAY.year
RENDERING = all(
    importlib.util.find_spec(name) is not None
    for name in ("facturo.documents.pdf.render", "facturo.formats.einvoice.cii")
)

CUSTOMER = {
    "name": "Boulangerie Martin SARL",
    "siren": "552100554",
    "vat_number": "FR96552100554",
    "address_line1": "4 place du Marché",
    "postcode": "33000",
    "city": "Bordeaux",
    "email": "compta@boulangerie-martin.example",
}


def line(description: str, quantity: str, unit_price: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "quantity": quantity, "unit_price": unit_price,
            "vat_rate": "20", **extra}  # fmt: skip


DEFAULT_TOKEN = "<the client's token>"


class Api:
    """A bearer-token client of /api/v1."""

    def __init__(self, token: str | None, language: str = "en") -> None:
        self.token = token
        self.language = language
        self.client = Client()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        query: dict[str, Any] | None = None,
        key: str | None = None,
        token: str | None = DEFAULT_TOKEN,
        language: str | None = None,
    ) -> Any:
        headers: dict[str, str] = {"HTTP_ACCEPT_LANGUAGE": language or self.language}
        token = self.token if token is DEFAULT_TOKEN else token
        if token is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        url = "/api/v1" + path + (f"?{urlencode(query)}" if query else "")
        data: bytes | str = raw if raw is not None else (
            json.dumps(body) if body is not None else "")  # fmt: skip
        return self.client.generic(method, url, data, content_type="application/json",
                                   **headers)  # fmt: skip

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)


def member_api(
    org: Organization, email: str, role: str = Role.OWNER, ctx: Ctx | None = None
) -> Api:
    membership = Membership.objects.filter(organization=org, user__email=email).first()
    if membership is None:
        assert ctx is not None
        membership = add_member(ctx, email, role, password="pw-1234-x")
    return Api(create_api_token(membership))


def owner_api(email: str = "owner@example.com", **identity: Any) -> tuple[Organization, Ctx, Api]:
    org, ctx = make_org(email, **identity)
    return org, ctx, member_api(org, email)


def assert_problem(response: Any, status: int, code: str | None = None,
                   field: str | None = None) -> dict[str, Any]:  # fmt: skip
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "code"} <= body.keys()
    assert "Traceback" not in response.content.decode()
    if code is not None:
        assert body["code"] == code, body
    if field is not None:
        assert body.get("field") == field, body
    return body


def create_customer(api: Api, **data: Any) -> dict[str, Any]:
    response = api.post("/customers", {**CUSTOMER, **data})
    assert response.status_code == 201, response.content
    return dict(response.json())


def create_draft(api: Api, customer_id: str, lines: list[dict[str, Any]] | None = None,
                 **header: Any) -> dict[str, Any]:  # fmt: skip
    body = {"customer_id": customer_id, "lines": lines if lines is not None else [
        line("Prestation 1", "1", "99.99")], **header}  # fmt: skip
    response = api.post("/invoices", body)
    assert response.status_code == 201, response.content
    return dict(response.json())


def issue(api: Api, invoice_id: str, **kw: Any) -> dict[str, Any]:
    response = api.post(f"/invoices/{invoice_id}/issue", **kw)
    assert response.status_code == 200, response.content
    return dict(response.json())


# --- the whole journey -----------------------------------------------------------------------


def test_happy_path_customer_product_draft_issue_credit_note_lists(engine: str) -> None:
    _, _, api = owner_api()
    customer = create_customer(api)
    assert customer["siren"] == "552100554"

    product = api.post("/products", {"name": "Développement", "code": "DEV", "unit_code": "HUR",
                                     "unit_price": "99.99", "vat_rate": "20"})  # fmt: skip
    assert product.status_code == 201, product.content
    product = product.json()
    assert product["unit_price"] == "99.99"
    assert product["vat_rate"] == "20.00"

    draft = create_draft(api, customer["id"], [
        {"product_id": product["id"], "quantity": "1"},
        line("Prestation 2", "2", "100.99"),
        line("Prestation 3", "3", "101.99"),
    ])  # fmt: skip
    assert draft["status"] == "draft"
    assert draft["number"] is None
    assert draft["lines"][0]["description"] == "Développement"
    assert draft["lines"][0]["unit_code"] == "HUR"
    # 1×99.99 + 2×100.99 + 3×101.99 = 607.94; VAT 20 % = 121.588 → 121.59
    assert draft["totals"]["tax_exclusive"] == "607.94"
    assert draft["totals"]["tax_total"] == "121.59"
    assert draft["totals"]["tax_inclusive"] == "729.53"
    assert draft["totals_frozen"] is False

    updated = api.patch(
        f"/invoices/{draft['id']}", {"purchase_order": "PO-42", "document_discount_percent": "0"}
    )
    assert updated.status_code == 200, updated.content
    assert updated.json()["purchase_order"] == "PO-42"
    assert updated.json()["totals"]["tax_inclusive"] == "729.53"  # lines kept

    issued = issue(api, draft["id"])
    assert issued["number"] == f"FA-{YEAR}-00001"
    assert issued["status"] == "issued"
    assert issued["totals_frozen"] is True
    assert issued["issue_date"] == TODAY.isoformat()
    assert issued["totals"]["tax_inclusive"] == "729.53"
    assert issued["totals"]["vat_groups"] == [
        {"category": "S", "rate": "20", "taxable_amount": "607.94", "tax_amount": "121.59"}
    ]
    assert [x["net_amount"] for x in issued["lines"]] == ["99.99", "201.98", "305.97"]

    fetched = api.get(f"/invoices/{draft['id']}").json()
    assert fetched == issued
    invoice = Invoice.objects.get(pk=draft["id"])
    assert invoice.snapshot is not None
    assert fetched["totals"]["due_payable"] == invoice.snapshot["totals"]["due_payable"]

    note = api.post(
        f"/invoices/{draft['id']}/credit-note",
        {"lines": [line("Geste commercial", "1", "50")], "reason": "Retard de livraison"},
    )
    assert note.status_code == 201, note.content
    note = note.json()
    assert note["number"] == f"AV-{YEAR}-00001"
    assert note["kind"] == "credit_note"
    assert note["credited_invoice_id"] == draft["id"]
    assert note["totals"]["tax_inclusive"] == "60.00"

    second = create_draft(api, customer["id"], [line("Maintenance", "1", "10")])

    # lists, filters, pagination
    everything = api.get("/invoices").json()
    assert everything["count"] == 3
    assert [i["id"] for i in everything["items"]] == [second["id"], note["id"], draft["id"]]
    summary = everything["items"][2]
    assert summary["total_incl_vat"] == "729.53"
    assert summary["number"] == f"FA-{YEAR}-00001"
    assert everything["items"][0]["total_incl_vat"] is None  # draft

    def ids(**query: Any) -> list[str]:
        response = api.get("/invoices", query=query)
        assert response.status_code == 200, response.content
        return [i["id"] for i in response.json()["items"]]

    assert ids(kind="credit_note") == [note["id"]]
    assert ids(status="draft") == [second["id"]]
    assert ids(status="issued") == [note["id"], draft["id"]]
    assert ids(number="FA-") == [draft["id"]]
    assert ids(customer_id=customer["id"], kind="invoice") == [second["id"], draft["id"]]
    assert ids(issued_from=TODAY.isoformat(), issued_to=TODAY.isoformat()) == [
        note["id"],
        draft["id"],
    ]
    assert ids(issued_from=(TODAY + dt.timedelta(days=1)).isoformat()) == []
    page = api.get("/invoices", query={"limit": 1, "offset": 1}).json()
    assert page["count"] == 3
    assert page["limit"] == 1
    assert page["offset"] == 1
    assert [i["id"] for i in page["items"]] == [note["id"]]

    create_customer(api, name="Zèbre & Co", siren="", vat_number="", email="z@zebre.example")
    customers = api.get("/customers", query={"limit": 1}).json()
    assert customers["count"] == 2
    assert len(customers["items"]) == 1
    assert customers["items"][0]["name"] == "Boulangerie Martin SARL"
    found = api.get("/customers", query={"search": "zèbre"}).json()
    assert [c["name"] for c in found["items"]] == ["Zèbre & Co"]
    patched = api.patch(f"/customers/{customer['id']}", {"archived": True, "city": "Talence"})
    assert patched.status_code == 200
    assert patched.json()["city"] == "Talence"
    assert api.get("/customers").json()["count"] == 1
    assert api.get("/customers", query={"include_archived": "true"}).json()["count"] == 2
    assert api.get(f"/customers/{customer['id']}").json()["archived"] is True

    products = api.get("/products", query={"search": "DEV"}).json()
    assert products["count"] == 1
    assert products["items"][0]["id"] == product["id"]
    repriced = api.patch(f"/products/{product['id']}", {"unit_price": "120"})
    assert repriced.status_code == 200
    assert repriced.json()["unit_price"] == "120.00"
    assert api.get(f"/products/{product['id']}").json()["unit_price"] == "120.00"

    gone = api.delete(f"/invoices/{second['id']}")
    assert gone.status_code == 204
    assert_problem(api.get(f"/invoices/{second['id']}"), 404, "invoice.not_found")


def test_pdf_and_xml_downloads(engine: str) -> None:
    if not RENDERING:
        pytest.skip("facturo.documents.pdf.render or formats.einvoice.cii not merged yet")
    _, _, api = owner_api()
    customer = create_customer(api)
    draft = create_draft(api, customer["id"])
    assert_problem(api.get(f"/invoices/{draft['id']}/pdf"), 409, "invoice.not_issued")
    issued = issue(api, draft["id"])
    pdf = api.get(f"/invoices/{draft['id']}/pdf")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == f'attachment; filename="{issued["number"]}.pdf"'
    assert pdf.content.startswith(b"%PDF")
    again = api.get(f"/invoices/{draft['id']}/pdf")
    assert again.content == pdf.content  # stored at issue: byte-identical
    xml = api.get(f"/invoices/{draft['id']}/xml")
    assert xml.status_code == 200
    assert xml["Content-Type"] == "application/xml"
    assert xml["Content-Disposition"] == f'attachment; filename="{issued["number"]}.xml"'
    assert b"CrossIndustryInvoice" in xml.content
    assert issued["number"].encode() in xml.content
    assert b"729.53" not in xml.content
    assert b"119.99" in xml.content


def test_deposit_deduction_and_json_numbers_read_exactly(engine: str) -> None:
    _, _, api = owner_api()
    customer = create_customer(api)
    # A JSON number (not a string) is read digit for digit: no binary float in between.
    raw = (
        '{"customer_id": "CID", "kind": "deposit", "lines": [{"description": "Acompte 30 %",'
        ' "quantity": 1, "unit_price": 300.10, "vat_rate": 20}]}'
    ).replace("CID", customer["id"])
    response = api.post("/invoices", raw=raw)
    assert response.status_code == 201, response.content
    deposit = response.json()
    assert deposit["lines"][0]["unit_price"] == "300.10"
    deposit = issue(api, deposit["id"])
    assert deposit["number"] == f"AC-{YEAR}-00001"
    final = create_draft(api, customer["id"], [line("Site complet", "1", "1000")])
    deducted = api.post(f"/invoices/{final['id']}/deposit-deductions",
                        {"deposit_id": deposit["id"]})  # fmt: skip
    assert deducted.status_code == 200, deducted.content
    body = deducted.json()
    assert body["lines"][1]["deducted_invoice_id"] == deposit["id"]
    assert body["totals"]["tax_exclusive"] == "699.90"
    twice = api.post(f"/invoices/{final['id']}/deposit-deductions", {"deposit_id": deposit["id"]})
    assert_problem(twice, 409, "invoice.deposit_already_deducted")
    assert issue(api, final["id"])["totals"]["tax_inclusive"] == "839.88"


# --- bad input -------------------------------------------------------------------------------


def test_customer_identifiers_and_required_fields_are_checked(engine: str) -> None:
    _, _, api = owner_api()
    assert_problem(api.post("/customers", {**CUSTOMER, "siren": "123456789"}), 422,
                   "identifier.invalid_siren", "siren")  # fmt: skip
    assert_problem(api.post("/customers", {**CUSTOMER, "vat_number": "FR00000000000"}), 422,
                   "identifier.invalid_vat", "vat_number")  # fmt: skip
    missing = assert_problem(api.post("/customers", {"name": "Sans adresse"}), 422, "input.invalid")
    assert {e["field"] for e in missing["errors"]} == {"address_line1", "postcode", "city"}
    assert_problem(api.post("/customers", {**CUSTOMER, "currency": "XXX"}), 422,
                   "money.unknown_currency", "currency")  # fmt: skip
    assert_problem(api.post("/customers", {**CUSTOMER, "name": None}), 422, "input.invalid",
                   "name")  # fmt: skip
    assert_problem(api.post("/customers", {**CUSTOMER, "name": "x" * 201}), 422, "input.invalid",
                   "name")  # fmt: skip
    assert Customer.objects.count() == 0


def test_invoice_input_errors(engine: str) -> None:
    _, _, api = owner_api()
    customer = create_customer(api)
    cid = customer["id"]

    def post(lines: list[dict[str, Any]], **header: Any) -> Any:
        return api.post("/invoices", {"customer_id": cid, "lines": lines, **header})

    assert_problem(post([line("x", "-2", "10")]), 422, "invoice.negative_quantity",
                   "lines.1.quantity")  # fmt: skip
    for bad in ("1e400", "NaN", "Infinity", "-inf", "1,5", "12.5.3", "", "0x10", "1" * 30):
        assert_problem(post([line("ok", "1", "10"), line("x", "1", bad)]), 422,
                       "input.invalid", "lines.2.unit_price")  # fmt: skip
    assert_problem(post([line("x", "1.00001", "10")]), 422, "input.invalid", "lines.1.quantity")
    big = '{"customer_id": "CID", "lines": [{"description": "x", "unit_price": 1e400}]}'
    big = big.replace("CID", cid)
    assert_problem(api.post("/invoices", raw=big), 422, "input.invalid", "lines.1.unit_price")
    nan = '{"customer_id": "CID", "lines": [{"description": "x", "unit_price": NaN}]}'
    nan = nan.replace("CID", cid)
    assert_problem(api.post("/invoices", raw=nan), 400, "input.malformed")
    assert_problem(api.post("/invoices", raw="{not json"), 400, "input.malformed")
    assert_problem(post([line("x", "1", "10")], currency="XYZ"), 422, "money.unknown_currency",
                   "currency")  # fmt: skip
    assert_problem(post([line("x", "1", "10", vat_rate="19")]), 422, "tax.invalid_rate")
    assert_problem(post([line("x", "1", "10", vat_category="ZZ")]), 422, "input.invalid",
                   "lines.1.vat_category")  # fmt: skip
    assert_problem(post([], payment_terms_kind="someday"), 422, "input.invalid",
                   "payment_terms_kind")  # fmt: skip
    assert_problem(api.post("/invoices", {"customer_id": "nope", "lines": []}), 422,
                   "input.invalid", "customer_id")  # fmt: skip
    for text in ("a\x00b", "page\x0cbreak", "\ud800"):
        control = assert_problem(post([line(text, "1", "10")]), 422, "input.invalid",
                                 "lines.1.description")  # fmt: skip
        assert control["errors"][0]["code"] in ("input.control_character", "input.string_unicode")
    assert Invoice.objects.count() == 0
    draft = create_draft(api, cid)
    assert_problem(api.patch(f"/invoices/{draft['id']}", {"currency": None}), 422,
                   "input.invalid", "currency")  # fmt: skip
    cleared = api.patch(f"/invoices/{draft['id']}", {"due_date": None, "free_text": "Merci"})
    assert cleared.status_code == 200, cleared.content
    assert cleared.json()["free_text"] == "Merci"


def test_workflow_errors(engine: str) -> None:
    _, _, api = owner_api()
    customer = create_customer(api)
    empty = create_draft(api, customer["id"], [])
    assert_problem(api.post(f"/invoices/{empty['id']}/issue"), 422, "invoice.empty")
    assert_problem(api.post(f"/invoices/{empty['id']}/credit-note", {}), 422,
                   "credit_note.draft_invoice")  # fmt: skip
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
    assert_problem(api.post(f"/invoices/{empty['id']}/issue", {"issue_date": tomorrow}), 422,
                   "invoice.future_date", "issue_date")  # fmt: skip

    draft = create_draft(api, customer["id"], [line("Conseil", "2", "100")])
    issued = issue(api, draft["id"], body={"issue_date": TODAY.isoformat()})
    assert_problem(api.post(f"/invoices/{draft['id']}/issue"), 409, "invoice.already_issued")
    assert_problem(api.patch(f"/invoices/{draft['id']}", {"free_text": "changed"}), 409,
                   "invoice.already_issued")  # fmt: skip
    assert_problem(api.delete(f"/invoices/{draft['id']}"), 409, "invoice.already_issued")
    too_much = api.post(f"/invoices/{draft['id']}/credit-note",
                        {"lines": [line("Trop", "1", "500")]})  # fmt: skip
    assert_problem(too_much, 422, "credit_note.exceeds_invoice")
    assert api.get(f"/invoices/{draft['id']}").json() == issued
    assert Invoice.objects.filter(kind="credit_note", status="issued").count() == 0


def test_unknown_and_malformed_ids_are_404(engine: str) -> None:
    _, _, api = owner_api()
    unknown = "0190b5c4-0000-7000-8000-000000000000"
    for path in ("/invoices/{}", "/customers/{}", "/products/{}", "/invoices/{}/pdf"):
        for value in ("not-a-uuid", unknown, "1"):
            assert_problem(api.get(path.format(value)), 404)
    assert_problem(api.patch("/customers/42", {"name": "x"}), 404)
    assert_problem(api.delete("/invoices/../customers"), 404)
    assert_problem(api.post("/invoices/xyz/issue"), 404)
    assert_problem(api.get("/no/such/route"), 404, "not_found")
    wrong = assert_problem(api.call("PUT", "/customers", {}), 405, "method_not_allowed")
    assert "POST" in wrong["detail"]


def test_authentication_and_roles(engine: str) -> None:
    org, ctx, api = owner_api()
    for token in (None, "", "fct_nope_nope", "garbage", "fct_" + "x" * 500):
        response = api.get("/customers", token=token)
        assert_problem(response, 401, "auth.unauthenticated")
        assert response["WWW-Authenticate"] == "Bearer"
    basic = api.client.get("/api/v1/customers", HTTP_AUTHORIZATION="Basic dXNlcjpwdw==")
    assert_problem(basic, 401)
    assert_problem(api.post("/customers", CUSTOMER, token=None), 401)
    assert Customer.objects.count() == 0

    reader = member_api(org, "reader@example.com", Role.READ_ONLY, ctx)
    customer = create_customer(api)
    assert reader.get("/customers").json()["count"] == 1
    assert reader.get(f"/customers/{customer['id']}").status_code == 200
    assert_problem(reader.post("/customers", CUSTOMER), 403, "auth.forbidden")
    assert_problem(reader.patch(f"/customers/{customer['id']}", {"name": "x"}), 403)
    assert_problem(reader.post("/invoices", {"customer_id": customer["id"], "lines": []}), 403)
    draft = create_draft(api, customer["id"])
    assert_problem(reader.post(f"/invoices/{draft['id']}/issue"), 403)
    assert_problem(reader.delete(f"/invoices/{draft['id']}"), 403)
    assert Customer.objects.count() == 1
    assert Invoice.objects.count() == 1

    # A revoked token stops working at once.
    from facturo.organizations.models import ApiToken

    ApiToken.objects.filter(membership__user__email="reader@example.com").update(
        revoked_at=dt.datetime.now(dt.UTC)
    )
    assert_problem(reader.get("/customers"), 401)


def test_problem_details_follow_the_request_language(engine: str) -> None:
    _, _, api = owner_api()
    english = assert_problem(api.get("/customers/x", language="en"), 404)
    assert english["title"] == "Not found"
    response = api.get("/customers/x", language="fr")
    assert response["Content-Language"] == "fr"
    assert api.get("/customers/x", language="en")["Content-Language"] == "en"
    body = assert_problem(api.post("/customers", {**CUSTOMER, "siren": "1"}), 422)
    assert "“1”" in body["detail"]  # the parameters are interpolated


# --- idempotency -----------------------------------------------------------------------------


def test_idempotency_replays_the_same_response_and_acts_once(engine: str) -> None:
    _, _, api = owner_api()
    first = api.post("/customers", CUSTOMER, key="create-martin")
    assert first.status_code == 201
    assert not first.has_header("Idempotent-Replayed")
    again = api.post("/customers", CUSTOMER, key="create-martin")
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == first["Content-Type"]
    assert Customer.objects.count() == 1

    other = api.post("/customers", {**CUSTOMER, "name": "Autre"}, key="create-martin")
    assert_problem(other, 409, "idempotency.key_reused")
    elsewhere = api.post("/products", {"name": "x", "unit_price": "1"}, key="create-martin")
    assert_problem(elsewhere, 409, "idempotency.key_reused")
    assert Customer.objects.count() == 1

    # issuing twice with one key: the second call replays the success instead of a 409
    draft = create_draft(api, first.json()["id"])
    issued = api.post(f"/invoices/{draft['id']}/issue", key='"issue-1"')
    replay = api.post(f"/invoices/{draft['id']}/issue", key='"issue-1"')
    assert issued.status_code == replay.status_code == 200
    assert replay.content == issued.content
    assert replay["Idempotent-Replayed"] == "true"
    assert_problem(api.post(f"/invoices/{draft['id']}/issue", key="issue-2"), 409,
                   "invoice.already_issued")  # fmt: skip

    assert_problem(api.post("/customers", CUSTOMER, key="with space"), 400,
                   "idempotency.invalid_key")  # fmt: skip
    assert_problem(api.post("/customers", CUSTOMER, key="k" * 256), 400)


def test_idempotency_failed_requests_are_not_stored_and_keys_expire(engine: str) -> None:
    org, _, api = owner_api()
    bad = api.post("/customers", {**CUSTOMER, "siren": "123"}, key="k1")
    assert_problem(bad, 422, "identifier.invalid_siren")
    assert not IdempotencyRecord.objects.filter(key="k1").exists()
    fixed = api.post("/customers", CUSTOMER, key="k1")
    assert fixed.status_code == 201
    record = IdempotencyRecord.objects.get(key="k1")
    assert record.organization_id == org.id
    assert record.status_code == 201
    assert record.path == "/api/v1/customers"
    assert record.method == "POST"

    # another organization may use the same key for its own request
    _, _, other = owner_api("other@example.com", name="Autre SAS", siren="", siret="",
                            vat_number="")  # fmt: skip
    assert other.post("/customers", CUSTOMER, key="k1").status_code == 201
    assert Customer.objects.count() == 2

    # a key still running elsewhere: 409 in progress
    body = json.dumps(CUSTOMER).encode()
    IdempotencyRecord.objects.create(
        organization=org,
        key="busy",
        method="POST",
        path="/api/v1/customers",
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
    assert_problem(api.post("/customers", CUSTOMER, key="busy"), 409, "idempotency.in_progress")

    # after 24 hours a key is forgotten: the same request acts again
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)):
        again = api.post("/customers", CUSTOMER, key="k1")
        assert again.status_code == 201
        assert not again.has_header("Idempotent-Replayed")
        from facturo.api.idempotency import purge_expired

        assert purge_expired() == 2  # "busy" and the other organization's k1, not our new k1
    assert Customer.objects.filter(organization=org).count() == 2


@pytest.mark.django_db(transaction=True)
def test_idempotency_concurrent_requests_run_once(engine: str, monkeypatch: Any) -> None:
    _, _, api = owner_api()
    alias = current_alias()
    from facturo.customers import services

    real = services.create_customer

    def slow_create(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.6)
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "create_customer", slow_create)
    results: list[Any] = []

    def request(delay: float) -> None:
        time.sleep(delay)
        try:
            with using_database(alias):
                results.append(Api(api.token).post("/customers", CUSTOMER, key="same"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request, args=(d,)) for d in (0, 0.2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2
    statuses = sorted(r.status_code for r in results)
    assert statuses[0] == 201
    late = max(results, key=lambda r: r.status_code if r.status_code == 409 else
               int(r.has_header("Idempotent-Replayed")))  # fmt: skip
    # PostgreSQL answers "in progress" at once; SQLite queues writers, so the second request
    # waits for the first and then gets its stored response.
    if late.status_code == 409:
        assert_problem(late, 409, "idempotency.in_progress")
    else:
        assert late["Idempotent-Replayed"] == "true"
        assert late.content == min(results, key=lambda r: r.has_header(
            "Idempotent-Replayed")).content  # fmt: skip
    assert Customer.objects.count() == 1


# --- sending ---------------------------------------------------------------------------------


def test_send_invoice(engine: str) -> None:
    if importlib.util.find_spec("facturo.invoicing.sending") is None:
        pytest.skip("sending not merged yet")
    _, _, api = owner_api()
    customer = create_customer(api)
    draft = create_draft(api, customer["id"])
    issue(api, draft["id"])
    bad = api.post(f"/invoices/{draft['id']}/send", {"to": ["not-an-address"]})
    assert_problem(bad, 422, "input.invalid", "to.1")
    sent = api.post(f"/invoices/{draft['id']}/send", {"to": ["compta@example.com"]},
                    key="send-once")  # fmt: skip
    assert sent.status_code == 202, sent.content
    assert sent.json()["id"] == draft["id"]
    replay = api.post(f"/invoices/{draft['id']}/send", {"to": ["compta@example.com"]},
                      key="send-once")  # fmt: skip
    assert replay["Idempotent-Replayed"] == "true"


# --- the OpenAPI document --------------------------------------------------------------------

EXPECTED_ROUTES = {
    ("get", "/api/v1/customers"), ("post", "/api/v1/customers"),
    ("get", "/api/v1/customers/{customer_id}"), ("patch", "/api/v1/customers/{customer_id}"),
    ("get", "/api/v1/products"), ("post", "/api/v1/products"),
    ("get", "/api/v1/products/{product_id}"), ("patch", "/api/v1/products/{product_id}"),
    ("get", "/api/v1/invoices"), ("post", "/api/v1/invoices"),
    ("post", "/api/v1/invoices/batch-issue"),
    ("get", "/api/v1/invoices/{invoice_id}"), ("patch", "/api/v1/invoices/{invoice_id}"),
    ("delete", "/api/v1/invoices/{invoice_id}"),
    ("post", "/api/v1/invoices/{invoice_id}/issue"),
    ("get", "/api/v1/invoices/{invoice_id}/pdf"), ("get", "/api/v1/invoices/{invoice_id}/xml"),
    ("post", "/api/v1/invoices/{invoice_id}/credit-note"),
    ("post", "/api/v1/invoices/{invoice_id}/deposit-deductions"),
    ("post", "/api/v1/invoices/{invoice_id}/send"),
    ("get", "/api/v1/plans"), ("post", "/api/v1/plans"), ("get", "/api/v1/plans/{plan_id}"),
    ("get", "/api/v1/subscriptions"), ("post", "/api/v1/subscriptions"),
    ("get", "/api/v1/subscriptions/{subscription_id}"),
    ("patch", "/api/v1/subscriptions/{subscription_id}"),
    ("get", "/api/v1/subscriptions/{subscription_id}/periods"),
    *(("post", f"/api/v1/subscriptions/{{subscription_id}}/{action}") for action in (
        "pause", "resume", "cancel", "change-preview", "change", "usage")),
    ("get", "/api/v1/billing-runs"), ("post", "/api/v1/billing-runs"),
    ("get", "/api/v1/billing-runs/{run_id}"), ("get", "/api/v1/mrr"),
    ("get", "/api/v1/payments"), ("post", "/api/v1/payments"),
    ("get", "/api/v1/payments/{payment_id}"),
    *(("post", f"/api/v1/payments/{{payment_id}}/{action}") for action in (
        "allocations", "unallocate", "refunds")),
    ("get", "/api/v1/customers/{customer_id}/balance"),
    ("get", "/api/v1/mandates"), ("post", "/api/v1/mandates"),
    ("post", "/api/v1/mandates/{mandate_id}/revoke"),
    ("get", "/api/v1/sepa-batches"), ("post", "/api/v1/sepa-batches"),
    ("get", "/api/v1/sepa-batches/{batch_id}/file"),
    ("post", "/api/v1/sepa-batches/{batch_id}/settle"), ("post", "/api/v1/sepa-returns"),
    ("get", "/api/v1/payment-settings"), ("put", "/api/v1/payment-settings"),
    ("get", "/api/v1/bank/accounts"), ("post", "/api/v1/bank/accounts"),
    ("get", "/api/v1/bank/accounts/{account_id}"), ("patch", "/api/v1/bank/accounts/{account_id}"),
    ("get", "/api/v1/bank/accounts/{account_id}/reconciliation"),
    ("post", "/api/v1/bank/statements"), ("get", "/api/v1/bank/lines"),
    ("get", "/api/v1/bank/lines/{line_id}"), ("get", "/api/v1/bank/lines/{line_id}/matches"),
    *(("post", f"/api/v1/bank/lines/{{line_id}}/{action}") for action in (
        "confirm", "accept", "expense", "ignore")),
    ("post", "/api/v1/bank/matches/{match_id}/undo"), ("post", "/api/v1/bank/match-runs"),
    ("get", "/api/v1/dunning/policies"), ("post", "/api/v1/dunning/policies"),
    ("get", "/api/v1/dunning/policies/{policy_id}"),
    ("put", "/api/v1/dunning/policies/{policy_id}"),
    ("post", "/api/v1/dunning/policies/{policy_id}/archive"),
    ("post", "/api/v1/dunning/assignments"), ("post", "/api/v1/dunning/preview"),
    ("get", "/api/v1/dunning/pauses"), ("post", "/api/v1/dunning/pauses"),
    ("post", "/api/v1/dunning/pauses/{pause_id}/lift"),
    *(("post", f"/api/v1/invoices/{{invoice_id}}/dunning/{action}") for action in (
        "dispute", "resolve", "policy")),
    ("get", "/api/v1/invoices/{invoice_id}/dunning/timeline"),
    ("get", "/api/v1/dunning/tasks"), ("post", "/api/v1/dunning/tasks/{task_id}/done"),
    ("get", "/api/v1/dunning/upcoming"), ("get", "/api/v1/dunning/reminders"),
    ("post", "/api/v1/dunning/runs"),
    ("get", "/api/v1/accounting/journals"), ("get", "/api/v1/accounting/accounts"),
    ("get", "/api/v1/accounting/entries"), ("get", "/api/v1/accounting/entries/{entry_id}"),
    ("get", "/api/v1/accounting/invoices/{invoice_id}/preview"),
    ("get", "/api/v1/accounting/mapping-rules"), ("post", "/api/v1/accounting/mapping-rules"),
    ("delete", "/api/v1/accounting/mapping-rules/{rule_id}"),
    ("get", "/api/v1/accounting/trial-balance"), ("post", "/api/v1/accounting/exports"),
    ("get", "/api/v1/accounting/exports/{job_id}"),
    ("get", "/api/v1/accounting/exports/{job_id}/file"),
}  # fmt: skip


def test_openapi_document_lists_every_endpoint(engine: str) -> None:
    client = Client()
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["version"] == "1"
    routes = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert routes == EXPECTED_ROUTES
    assert schema["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert "default" in op["responses"], (method, path)
            headers = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
            assert ("Idempotency-Key" in headers) == (method == "post"), (method, path)
    amount = schema["components"]["schemas"]["LineIn"]["properties"]["unit_price"]
    assert "string" in json.dumps(amount)
    assert "number" not in json.dumps(amount)

    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "cdn" not in html.lower()
    assert "/api/v1/openapi.json" in html
    asset = client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert client.get("/api/v1/docs/assets/..%2Fsettings.py").status_code == 404
