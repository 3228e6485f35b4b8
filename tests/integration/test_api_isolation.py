"""Tenant isolation: every route of the OpenAPI document, called with another organization's
ids, answers 404 (never 403, never data) and changes nothing in that organization.

The routes are read from the OpenAPI document, so a new endpoint is covered the day it is
added; a path or body id this test does not know how to fill fails it loudly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.utils import timezone

from facturo.organizations.models import Organization
from tests.integration.test_accounting_api import accounting_ids
from tests.integration.test_api import (
    Api,
    assert_problem,
    create_customer,
    create_draft,
    issue,
    line,
    owner_api,
)
from tests.integration.test_api_payments import payment_ids, record
from tests.integration.test_api_subscriptions import create_subscription, subscription_ids
from tests.integration.test_bank_api import b_bank_line, bank_ids
from tests.integration.test_dunning_api import dunning_ids

TODAY = timezone.localdate()


def tenant_state(org: Organization) -> dict[str, list[dict[str, Any]]]:
    """Every row of every model that belongs to ``org`` (found by its organization field)."""
    state: dict[str, list[dict[str, Any]]] = {}
    for model in apps.get_models():
        names = {f.name for f in model._meta.get_fields()}
        if "organization" in names:
            qs = model._default_manager.filter(organization=org)
        elif "organization_id" in names:
            qs = model._default_manager.filter(organization_id=org.id)
        elif "invoice" in names and model._meta.label == "invoicing.InvoiceLine":
            qs = model._default_manager.filter(invoice__organization=org)
        else:
            continue
        rows = [
            {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()}
            for row in qs.order_by("pk").values()
        ]
        state[model._meta.label] = rows
    return state


class Scenario:
    def __init__(self) -> None:
        self.org_a, ctx_a, self.api_a = owner_api("a@example.com", name="Org A")
        self.org_b, _, self.api_b = owner_api("b@example.com", name="Org B", siren="",
                                              siret="", vat_number="")  # fmt: skip
        a = self.api_a
        self.customer = create_customer(a)["id"]
        product = a.post("/products", {"name": "Secret A", "unit_price": "10"})
        assert product.status_code == 201
        self.product = product.json()["id"]
        self.draft = create_draft(a, self.customer)["id"]
        self.issued = issue(a, create_draft(a, self.customer, [line("Conseil", "3", "100")])["id"])
        self.issued_id = self.issued["id"]
        deposit = create_draft(a, self.customer, [line("Acompte", "1", "30")], kind="deposit")
        self.deposit = issue(a, deposit["id"])["id"]
        note = a.post(f"/invoices/{self.issued_id}/credit-note",
                      {"lines": [line("Geste", "1", "5")]})  # fmt: skip
        assert note.status_code == 201
        self.note = note.json()["id"]
        # B has data of its own, so that B's requests are valid apart from A's ids.
        self.b_customer = create_customer(self.api_b, siren="", vat_number="")["id"]
        self.subscriptions = subscription_ids(a, self.customer)  # plan, subscription, run
        self.payments = payment_ids(a, ctx_a, self.customer, self.deposit)
        self.bank = bank_ids(a, ctx_a, self.customer)
        self.dunning = dunning_ids(a, ctx_a, self.customer, self.issued_id)
        self.accounting = accounting_ids(a, ctx_a, self.issued_id)
        self.secrets = [self.customer, self.product, self.draft, self.issued_id, self.deposit,
                        self.note, self.issued["number"], "Secret A"]  # fmt: skip

    def ids_for(self, name: str) -> list[str]:
        known = {
            "customer_id": [self.customer],
            "product_id": [self.product],
            "deposit_id": [self.deposit],
            "invoice_id": [self.draft, self.issued_id, self.deposit, self.note],
            "credit_note_id": [self.note],
            "invoice_ids": [self.issued_id],
            **self.subscriptions,
            **self.payments,
            **self.bank,
            **self.dunning,
            **self.accounting,
        }
        assert name in known, f"the isolation test does not know which id to put in {name!r}"
        return known[name]


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _has_uuid(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> bool:
    schema = _resolve(schema, components)
    if schema.get("format") == "uuid":
        return True
    if depth > 5:
        return False
    children = [*schema.get("anyOf", []), *schema.get("properties", {}).values()]
    if "items" in schema:
        children.append(schema["items"])
    return any(_has_uuid(c, components, depth + 1) for c in children)


IdsFor = Callable[[str], list[str]]


def example(schema: dict[str, Any], name: str, components: dict[str, Any], ids_for: IdsFor,
            used: list[str]) -> Any:  # fmt: skip
    """A valid value for ``schema``; ids come from ``ids_for`` (and are recorded in ``used``)."""
    schema = _resolve(schema, components)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        return example(options[0], name, components, ids_for, used)
    if schema.get("format") == "uuid":
        value = ids_for(name)[0]
        used.append(value)
        return value
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        required = set(schema.get("required", []))
        return {
            prop: example(sub, prop, components, ids_for, used)
            for prop, sub in schema.get("properties", {}).items()
            if prop in required or _has_uuid(sub, components)
        }
    if kind == "array":
        return [example(schema["items"], name, components, ids_for, used)]
    if kind == "string":
        if schema.get("format") == "date":
            return TODAY.isoformat()
        if "pattern" in schema and re.fullmatch(schema["pattern"], "1"):
            return "1"
        return "x"
    if kind == "integer":
        return 1
    if kind == "boolean":
        return False
    raise AssertionError(f"no example for {name}: {schema}")


def test_every_route_hides_other_organizations(engine: str) -> None:
    s = Scenario()
    schema = s.api_b.client.get("/api/v1/openapi.json").json()
    components = schema["components"]["schemas"]
    before = tenant_state(s.org_a)
    assert before["invoicing.Invoice"]
    assert before["customers.Customer"]
    called: list[tuple[str, str]] = []

    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            path_params = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            query_params = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            combos: list[dict[str, str]] = [{}]
            for param in path_params:
                combos = [{**c, param["name"]: v} for c in combos
                          for v in s.ids_for(param["name"])]  # fmt: skip
            for combo in combos:
                used = list(combo.values())
                path = template
                for name, value in combo.items():
                    path = path.replace("{" + name + "}", value)
                query = {
                    p["name"]: example(p["schema"], p["name"], components, s.ids_for, used)
                    for p in query_params if _has_uuid(p["schema"], components)
                }  # fmt: skip
                body = None
                if "application/json" in operation.get("requestBody", {}).get("content", {}):
                    body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
                    body = example(body_schema, "body", components, s.ids_for, used)
                response = s.api_b.call(method.upper(), path.removeprefix("/api/v1"), body,
                                        query=query or None)  # fmt: skip
                called.append((method, template))
                where = f"{method.upper()} {path} {body} {query}"
                assert response.status_code < 500, where
                if used and not (method == "get" and not path_params):
                    # an id of A in the path or the body: A's object does not exist for B
                    assert_problem(response, 404)
                else:  # lists: they answer, without A's objects
                    assert response.status_code < 400 or response.status_code == 422, where
                text = response.content.decode(errors="replace")
                for secret in s.secrets:
                    assert secret not in text, f"{where} leaked {secret}"
                if method == "get" and not path_params and response.status_code == 200:
                    # lists and counted views (/mrr); /payment-settings is one object
                    if template != "/api/v1/payment-settings":
                        assert response.json()["count"] >= 0
                    if used:  # filtered by one of A's ids
                        assert response.json()["items"] == [], where

    assert {(m, t) for m, t in called} == {
        (m, t) for t, ops in schema["paths"].items() for m in ops
    }
    assert tenant_state(s.org_a) == before, "a request of B changed A's data"
    # and A still sees all of it
    assert s.api_a.get(f"/invoices/{s.issued_id}").json() == s.issued


def test_ids_of_another_organization_in_a_body_are_as_unknown_as_random_ids(engine: str) -> None:
    """B acting on its own objects but naming A's objects in the body gets exactly the answer
    it would get for an id that exists nowhere: nothing tells B that A's object exists."""
    s = Scenario()
    b_draft = create_draft(s.api_b, s.b_customer)["id"]
    b_sub = create_subscription(s.api_b, s.b_customer, start=TODAY.isoformat())["id"]
    b_payment = record(s.api_b, s.b_customer, "10.00", auto_allocate=False)["id"]
    b_line = b_bank_line(s.api_b)
    b_ids = {"invoice_id": [b_draft], "customer_id": [s.b_customer], "subscription_id": [b_sub],
             "payment_id": [b_payment], "line_id": [b_line]}  # fmt: skip
    schema = s.api_b.client.get("/api/v1/openapi.json").json()
    components = schema["components"]["schemas"]
    before = tenant_state(s.org_a)
    checked = 0
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "application/json" not in operation.get("requestBody", {}).get("content", {}):
                continue  # (a multipart upload has no ids in its body)
            body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
            if not _has_uuid(body_schema, components):
                continue
            path = template
            for param in operation.get("parameters", []):
                if param["in"] == "path":
                    assert param["name"] in b_ids, f"add B's {param['name']} to this test"
                    path = path.replace("{" + param["name"] + "}", b_ids[param["name"]][0])
            answers = []
            for ids_for in (s.ids_for, lambda name: [str(uuid.uuid4())]):
                used: list[str] = []
                body = example(body_schema, "body", components, ids_for, used)
                response = s.api_b.call(method.upper(), path.removeprefix("/api/v1"), body)
                assert response.status_code >= 400, f"{method} {path} {body} acted"
                answers.append((response.status_code, response.json().get("code")))
            assert answers[0] == answers[1], f"{method.upper()} {template}: {answers}"
            checked += 1
    assert checked >= 4
    assert tenant_state(s.org_a) == before


def test_lists_only_show_the_callers_organization(engine: str) -> None:
    s = Scenario()
    for path in ("/customers", "/products", "/invoices"):
        a_items = s.api_a.get(path, query={"limit": 200}).json()["items"]
        b_items = s.api_b.get(path, query={"limit": 200}).json()["items"]
        assert a_items, path
        assert not {i["id"] for i in a_items} & {i["id"] for i in b_items}, path
    b_customers = s.api_b.get("/customers", query={"search": "Boulangerie"}).json()
    assert [c["id"] for c in b_customers["items"]] == [s.b_customer]
    # the same Idempotency-Key in both organizations does not replay A's response to B
    a = s.api_a.post("/customers", {"name": "N", "address_line1": "a", "postcode": "1",
                                    "city": "c"}, key="shared")  # fmt: skip
    b = s.api_b.post("/customers", {"name": "N", "address_line1": "a", "postcode": "1",
                                    "city": "c"}, key="shared")  # fmt: skip
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert not b.has_header("Idempotent-Replayed")


def test_b_token_cannot_reach_a_even_as_read_only(engine: str) -> None:
    s = Scenario()
    reader = Api(s.api_b.token)
    for path in (f"/customers/{s.customer}", f"/products/{s.product}",
                 f"/invoices/{s.issued_id}", f"/invoices/{s.issued_id}/pdf",
                 f"/invoices/{s.issued_id}/xml"):  # fmt: skip
        assert_problem(reader.get(path), 404)
