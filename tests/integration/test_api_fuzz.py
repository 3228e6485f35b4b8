"""Hostile and random bodies never make the API fail (5xx) nor answer outside the contract."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from facturo.invoicing.models import Invoice
from tests.integration.test_api import CUSTOMER, Api, create_customer, owner_api

NASTY = st.sampled_from([
    "1e400", "-1e400", "1E-400", "NaN", "nan", "Infinity", "-Infinity", "sNaN", "0x1F", "1_000",
    "１２", "١٢", "1,5", " 12 ", "12.", ".5", "+3", "-0", "0.0000001", "9" * 25, "", "\x00",
    "'; DROP TABLE invoicing_invoice; --", "<script>", "../../etc/passwd", "😀" * 3,
])  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats() | st.text(max_size=12) | NASTY,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)  # fmt: skip
DECIMALS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.decimals(min_value=Decimal(-1000), max_value=Decimal(10**6), places=2).map(str),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.text(alphabet="0123456789.-+eE,", max_size=10),
    NASTY,
    JSON_VALUES,
)
LINE = st.fixed_dictionaries(
    {},
    optional={
        "description": st.text(max_size=30) | JSON_VALUES,
        "quantity": DECIMALS,
        "unit_price": DECIMALS,
        "vat_rate": st.sampled_from(["20", "10", "5.5", "2.1", "0", "19"]) | DECIMALS,
        "vat_category": st.sampled_from(["S", "Z", "E", "AE", "K", "G", "O", "X"]) | JSON_VALUES,
        "discount_percent": DECIMALS,
        "unit_code": st.sampled_from(["C62", "HUR", "XXX"]) | JSON_VALUES,
        "nature": st.sampled_from(["goods", "services", "other"]),
        "product_id": st.uuids().map(str) | JSON_VALUES,
    },
)
VALID_LINE = st.fixed_dictionaries({
    "description": st.text(min_size=1, max_size=40).filter(str.strip),
    "quantity": st.decimals(min_value=0, max_value=10**6, places=4).map(str),
    "unit_price": st.decimals(min_value=0, max_value=10**7, places=6).map(str),
    "vat_rate": st.sampled_from(["20", "10", "5.5", "2.1"]),
    "discount_percent": st.decimals(min_value=0, max_value=100, places=2).map(str),
})  # fmt: skip
HEADER = st.fixed_dictionaries(
    {},
    optional={
        "currency": st.sampled_from(["EUR", "USD", "JPY", "TND", "XYZ", "eur", ""]) | JSON_VALUES,
        "language": st.sampled_from(["fr", "en", "de"]),
        "payment_terms_kind": st.sampled_from(["net", "on_receipt", "days_end_of_month", "x"]),
        "payment_terms_days": st.integers(min_value=-5, max_value=400) | JSON_VALUES,
        "document_discount_percent": DECIMALS,
        "due_date": st.dates().map(str) | JSON_VALUES,
        "delivery_date": st.dates().map(str) | st.text(max_size=10),
        "free_text": st.text(max_size=50),
        "kind": st.sampled_from(["invoice", "deposit", "credit_note", ""]),
    },
)


def check_contract(response: Any) -> None:
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response["Content-Type"].startswith("application/problem+json")
        body = response.json()
        assert body["status"] == response.status_code
        assert body["code"]
        assert "Traceback" not in response.content.decode()


def _amounts_are_strings(invoice: dict[str, Any]) -> None:
    totals = invoice["totals"]
    for key in ("tax_exclusive", "tax_total", "tax_inclusive", "due_payable"):
        assert isinstance(totals[key], str)
        assert Decimal(totals[key]).is_finite()


def test_random_invoice_bodies_never_break_the_api(engine: str) -> None:
    _, _, api = owner_api()
    customer = create_customer(api)

    @settings(max_examples=120, deadline=None, database=None)
    @given(header=st.just({}) | HEADER, lines=st.lists(VALID_LINE | VALID_LINE | LINE, max_size=4))
    def check(header: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        body = {"customer_id": customer["id"], "lines": lines, **header}
        try:
            raw = json.dumps(body)
        except ValueError:
            return
        response = api.post("/invoices", raw=raw)
        check_contract(response)
        if response.status_code == 201:
            draft = response.json()
            _amounts_are_strings(draft)
            issued = api.post(f"/invoices/{draft['id']}/issue")
            check_contract(issued)
            if issued.status_code == 200:
                assert issued.json()["totals"] == draft["totals"]
            else:
                assert api.delete(f"/invoices/{draft['id']}").status_code == 204

    check()


def test_random_customer_bodies_and_raw_bytes(engine: str) -> None:
    _, _, api = owner_api()
    fields = st.fixed_dictionaries(
        {}, optional={k: st.text(max_size=40) | JSON_VALUES for k in (*CUSTOMER, "siret",
                                                                     "country_code", "kind",
                                                                     "cc_emails", "language")}
    )  # fmt: skip

    @settings(max_examples=80, deadline=None, database=None)
    @given(data=fields, garbage=st.binary(max_size=40))
    def check(data: dict[str, Any], garbage: bytes) -> None:
        try:
            raw = json.dumps({**CUSTOMER, **data})
        except ValueError:
            raw = "{}"
        check_contract(api.post("/customers", raw=raw))
        check_contract(api.post("/customers", raw=garbage))
        check_contract(api.patch("/customers/" + garbage.hex()[:36], raw=raw))

    check()


def test_hostile_headers(engine: str) -> None:
    _, _, api = owner_api()
    bad = Api("fct_" + "a" * 10_000)
    check_contract(bad.get("/customers"))
    for key in ("", " ", "\t", "é", "x" * 10_000, '"', '""'):
        check_contract(api.post("/customers", CUSTOMER, key=key))
    check_contract(api.get("/invoices", query={"limit": "999999999999999999999"}))
    check_contract(api.get("/invoices", query={"offset": "-1", "issued_from": "2024-02-30"}))
    check_contract(api.get("/customers", query={"search": "\x00%_" * 50}))
    assert Invoice.objects.count() == 0
