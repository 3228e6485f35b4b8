"""/api/v1 payments, allocations, refunds, balances, SEPA mandates and batches, on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from facturo.formats.sepa import pain008
from facturo.organizations.context import Ctx
from facturo.organizations.models import Role
from facturo.payments import sepa
from tests.integration.test_api import (
    Api,
    assert_problem,
    create_customer,
    create_draft,
    issue,
    line,
    member_api,
    owner_api,
)

TODAY = timezone.localdate()
IBAN = "FR1420041010050500013M02606"
BIC = "CCBPFRPP"
ICS = "FR72 ZZZ 123456"


def record(api: Api, customer_id: str, amount: str, key: str | None = None,
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    body = {"customer_id": customer_id, "amount": amount, "method": "transfer", **extra}
    response = api.post("/payments", body, key=key)
    assert response.status_code == 201, response.content
    return dict(response.json())


def invoice_of(api: Api, customer_id: str, price: str) -> dict[str, Any]:
    """An issued invoice of ``price`` excl. VAT (20 %)."""
    return issue(api, create_draft(api, customer_id, [line("Conseil", "1", price)])["id"])


def mandate(api: Api, customer_id: str, **extra: Any) -> Any:
    body = {"customer_id": customer_id, "iban": IBAN, "bic": BIC,
            "signed_on": TODAY.isoformat(), **extra}  # fmt: skip
    return api.post("/mandates", body)


def payment_ids(api: Api, ctx: Ctx, customer_id: str, invoice_id: str) -> dict[str, list[str]]:
    """A payment, a mandate and a SEPA batch (collecting ``invoice_id``) of ``api``'s
    organization, for the tenant-isolation test."""
    sepa.configure_creditor(ctx, identifier=ICS)
    payment = record(api, customer_id, "50.00", auto_allocate=False)
    made = mandate(api, customer_id)
    assert made.status_code == 201, made.content
    batch = api.post("/sepa-batches", {"collection_date": TODAY.isoformat(),
                                       "invoice_ids": [invoice_id]})  # fmt: skip
    assert batch.status_code == 201, batch.content
    return {"payment_id": [payment["id"]], "mandate_id": [made.json()["id"]],
            "batch_id": [batch.json()["batch"]["id"]]}  # fmt: skip


def alloc(invoice: dict[str, Any], amount: str) -> dict[str, Any]:
    return {"allocations": [{"invoice_id": invoice["id"], "amount": amount}]}


def status(api: Api, invoice: dict[str, Any]) -> str:
    return str(api.get(f"/invoices/{invoice['id']}").json()["status"])


def test_record_allocates_oldest_first_and_balance(engine: str) -> None:
    _org, _ctx, api = owner_api()
    customer = create_customer(api)["id"]
    first, second = invoice_of(api, customer, "100"), invoice_of(api, customer, "100")
    payment = record(api, customer, "150.00", payer="Boulangerie", reference="VIR 1", fees="1.5",
                     key="pay-1")  # fmt: skip
    assert (payment["amount"], payment["fees"], payment["currency"]) == ("150.00", "1.50", "EUR")
    assert payment["status"] == "received"
    assert payment["unallocated"] == "0.00"
    assert [(a["invoice_id"], a["amount"]) for a in payment["allocations"]] == [
        (first["id"], "120.00"), (second["id"], "30.00")]  # fmt: skip
    assert (status(api, first), status(api, second)) == ("paid", "partially_paid")
    # Idempotency-Key: the same request is replayed, not recorded twice
    again = api.post("/payments", {"customer_id": customer, "amount": "150.00",
                                   "method": "transfer", "payer": "Boulangerie",
                                   "reference": "VIR 1", "fees": "1.5"}, key="pay-1")  # fmt: skip
    assert again.json() == payment
    assert again["Idempotent-Replayed"] == "true"
    assert api.get(f"/payments/{payment['id']}").json() == payment
    listed = api.get("/payments", query={"customer_id": customer}).json()
    assert (listed["count"], listed["items"]) == (1, [payment])
    assert api.get("/payments", query={"status": "returned"}).json()["count"] == 0
    # a payment in another currency, with no invoice in it: the customer's credit in USD
    usd = record(api, customer, "10.00", currency="USD", method="card")
    assert usd["allocations"] == []
    assert usd["unallocated"] == "10.00"
    balance = api.get(f"/customers/{customer}/balance").json()
    assert balance == {"customer_id": customer, "open_invoices": 1,
                       "owed": [{"currency": "EUR", "amount": "90.00"}],
                       "credit": [{"currency": "USD", "amount": "10.00"}]}  # fmt: skip


def test_explicit_allocations_unallocate_and_refund(engine: str) -> None:
    _org, _ctx, api = owner_api()
    customer = create_customer(api)["id"]
    first, second = invoice_of(api, customer, "100"), invoice_of(api, customer, "100")
    payment = record(api, customer, "200.00",
                     allocations=[{"invoice_id": second["id"], "amount": "50.00"}])  # fmt: skip
    assert payment["unallocated"] == "150.00"
    assert status(api, first) == "issued"
    pid = payment["id"]
    allocated = api.post(f"/payments/{pid}/allocations", alloc(first, "120.00"))
    assert allocated.status_code == 201, allocated.content
    assert allocated.json()["unallocated"] == "30.00"
    assert status(api, first) == "paid"
    # the second invoice owes 70: 100 is too much for it, 40 too much for what is left (30)
    over = api.post(f"/payments/{pid}/allocations", alloc(second, "100.00"))
    assert_problem(over, 422, "payment.over_allocation", "amount")
    short = api.post(f"/payments/{pid}/allocations", alloc(second, "40.00"))
    assert_problem(short, 422, "payment.insufficient", "amount")
    assert api.get(f"/payments/{pid}").json()["unallocated"] == "30.00"  # nothing written

    row = next(a for a in allocated.json()["allocations"] if a["invoice_id"] == first["id"])
    back = api.post(f"/payments/{pid}/unallocate", {"allocation_id": row["id"],
                                                    "reason": "wrong invoice"})  # fmt: skip
    assert back.status_code == 200, back.content
    stamped = next(a for a in back.json()["allocations"] if a["id"] == row["id"])
    assert stamped["reversed_at"] is not None
    assert stamped["reversal_reason"] == "wrong invoice"
    assert back.json()["unallocated"] == "150.00"
    assert status(api, first) == "issued"
    assert_problem(api.post(f"/payments/{pid}/unallocate", {"allocation_id": 10**9,
                                                            "reason": "x"}),
                   404, "allocation.not_found", "allocation_id")  # fmt: skip
    assert_problem(api.post(f"/payments/{pid}/unallocate", {"allocation_id": row["id"]}), 422)
    # the credit (150) can be refunded, not more
    assert_problem(api.post(f"/payments/{pid}/refunds", {"amount": "150.01"}), 422,
                   "refund.above_credit", "amount")  # fmt: skip
    refund = api.post(f"/payments/{pid}/refunds", {"amount": "20.00", "reference": "RB 1"})
    assert refund.status_code == 201, refund.content
    assert [(r["payment_id"], r["amount"], r["method"]) for r in refund.json()["refunds"]] == [
        (pid, "20.00", "transfer")]  # fmt: skip
    assert api.get(f"/payments/{pid}").json()["unallocated"] == "130.00"
    balance = api.get(f"/customers/{customer}/balance").json()
    assert balance["owed"] == [{"currency": "EUR", "amount": "190.00"}]
    assert balance["credit"] == [{"currency": "EUR", "amount": "130.00"}]
    # what is left goes oldest first: 120 to the first invoice, 10 to the second
    auto = api.post(f"/payments/{pid}/allocations", {})
    assert auto.status_code == 201, auto.content
    assert auto.json()["unallocated"] == "0.00"
    assert (status(api, first), status(api, second)) == ("paid", "partially_paid")
    balance = api.get(f"/customers/{customer}/balance").json()
    assert (balance["owed"], balance["credit"]) == ([{"currency": "EUR", "amount": "60.00"}], [])


def test_bad_payments_are_precise_problems(engine: str) -> None:
    _org, _ctx, api = owner_api()
    customer = create_customer(api)["id"]
    invoice = invoice_of(api, customer, "100")
    draft = create_draft(api, customer)

    def refused(status_code: int, code: str, field: str | None, **body: Any) -> None:
        full = {"customer_id": customer, "amount": "10.00", "method": "transfer", **body}
        assert_problem(api.post("/payments", full), status_code, code, field)

    refused(422, "payment.currency_mismatch", "currency", currency="USD",
            allocations=[{"invoice_id": invoice["id"], "amount": "10.00"}])  # fmt: skip
    refused(422, "payment.over_allocation", "amount", amount="200.00",
            allocations=[{"invoice_id": invoice["id"], "amount": "150.00"}])  # fmt: skip
    refused(422, "payment.not_payable", "invoice_id",
            allocations=[{"invoice_id": draft["id"], "amount": "10.00"}])  # fmt: skip
    refused(422, "payment.bad_amount", "amount", amount="0")
    refused(422, "payment.bad_amount", "amount", amount="1.005")
    refused(422, "money.unknown_currency", "currency", currency="XYZ")
    refused(422, "payment.bad_fees", "fees", fees="11")
    refused(422, "input.invalid", "method", method="bitcoin")
    refused(422, "input.invalid", "amount", amount="12,50")
    refused(404, "customer.not_found", None, customer_id="00000000-0000-0000-0000-000000000000")
    refused(404, "invoice.not_found", "allocations.1",
            allocations=[{"invoice_id": "00000000-0000-0000-0000-000000000000",
                          "amount": "1"}])  # fmt: skip
    assert api.get("/payments").json()["count"] == 0  # nothing recorded
    assert status(api, invoice) == "issued"
    assert_problem(api.get("/payments/00000000-0000-0000-0000-000000000000"), 404)
    assert_problem(api.get("/payments/not-an-id"), 404)


def test_mandates_batches_and_the_file(engine: str) -> None:
    _org, ctx, api = owner_api()
    customer = create_customer(api)["id"]
    other = create_customer(api, name="Garage Dupont", siren="", vat_number="")["id"]
    collect = (TODAY + dt.timedelta(days=90)).isoformat()
    assert_problem(api.post("/sepa-batches", {"collection_date": collect}), 422, "sepa.no_creditor")
    sepa.configure_creditor(ctx, identifier=ICS)

    assert_problem(mandate(api, customer, iban="FR00 1234"), 422, "identifier.invalid_iban",
                   "iban")  # fmt: skip
    assert_problem(mandate(api, customer, bic="NOTABIC"), 422, "identifier.invalid_bic", "bic")
    assert_problem(mandate(api, customer, iban=""), 422, "mandate.iban_required", "iban")
    assert_problem(mandate(api, customer, kind="weekly"), 422, "input.invalid", "kind")
    made = mandate(api, customer)
    assert made.status_code == 201, made.content
    first = made.json()
    assert first["reference"].startswith("FCT-")
    assert (first["iban"], first["kind"], first["source"], first["revoked_on"]) == (
        IBAN, "recurrent", "paper", None)  # fmt: skip
    assert first["debtor_name"] == "Boulangerie Martin SARL"
    dup = mandate(api, other, reference=first["reference"])
    assert_problem(dup, 422, "mandate.duplicate_reference", "reference")
    second = mandate(api, other, kind="one_off", debtor_name="M. Dupont").json()
    listed = api.get("/mandates").json()
    assert listed["count"] == 2
    assert api.get("/mandates", query={"customer_id": other}).json()["items"] == [second]

    revoked = api.post(f"/mandates/{first['id']}/revoke", {"reason": "customer left"})
    assert revoked.status_code == 200, revoked.content
    assert revoked.json()["revoked_on"] == TODAY.isoformat()
    assert api.get("/mandates", query={"active": True}).json()["items"] == [second]

    unpaid = invoice_of(api, customer, "100")
    collected = invoice_of(api, other, "50")
    response = api.post("/sepa-batches", {"collection_date": collect})
    assert response.status_code == 201, response.content
    result = response.json()
    batch = result["batch"]
    assert (batch["count"], batch["total"], batch["currency"]) == (1, "60.00", "EUR")
    assert [(s["invoice_number"], s["code"]) for s in result["skipped"]] == [
        (unpaid["number"], "sepa.mandate_revoked")]  # fmt: skip
    assert (status(api, unpaid), status(api, collected)) == ("issued", "paid")
    pending = api.get("/payments", query={"status": "pending", "method": "sepa_debit"}).json()
    assert pending["count"] == 1
    assert pending["items"][0]["allocations"][0]["invoice_id"] == collected["id"]

    file = api.get(f"/sepa-batches/{batch['id']}/file")
    assert file.status_code == 200
    assert file["Content-Type"] == "application/xml"
    assert batch["filename"] in file["Content-Disposition"]
    assert pain008.validate(file.content) == []
    assert b"<SeqTp>OOFF</SeqTp>" in file.content
    assert batch["message_id"].encode() in file.content
    assert api.get("/sepa-batches").json()["items"] == [batch]
    # the revoked mandate is never collected; nothing else is due: no batch
    again = api.post("/sepa-batches", {"collection_date": collect})
    assert again.status_code == 200, again.content
    assert again.json()["batch"] is None
    assert [s["code"] for s in again.json()["skipped"]] == ["sepa.mandate_revoked"]
    explicit = api.post(
        "/sepa-batches",
        {"collection_date": collect, "invoice_ids": ["00000000-0000-0000-0000-000000000000"]},
    )
    assert_problem(explicit, 404, "invoice.not_found", "invoice_ids.1")
    assert_problem(api.get("/sepa-batches/00000000-0000-0000-0000-000000000000/file"), 404,
                   "sepa.batch_not_found")  # fmt: skip
    assert api.get("/sepa-batches").json()["count"] == 1


def test_read_only_member_reads_but_cannot_write(engine: str) -> None:
    org, ctx, api = owner_api()
    customer = create_customer(api)["id"]
    invoice_of(api, customer, "100")
    sepa.configure_creditor(ctx, identifier=ICS)
    payment = record(api, customer, "200.00")
    made = mandate(api, customer).json()
    reader = member_api(org, "reader@example.com", Role.READ_ONLY, ctx)
    pid = payment["id"]
    assert reader.get(f"/payments/{pid}").json() == payment
    assert reader.get("/payments").json()["count"] == 1
    assert reader.get("/mandates").json()["count"] == 1
    assert reader.get(f"/customers/{customer}/balance").status_code == 200
    assert reader.get("/sepa-batches").status_code == 200
    writes = [
        ("/payments", {"customer_id": customer, "amount": "1.00", "method": "cash"}),
        (f"/payments/{pid}/allocations", {}),
        (f"/payments/{pid}/unallocate", {"allocation_id": payment["allocations"][0]["id"],
                                         "reason": "x"}),
        (f"/payments/{pid}/refunds", {"amount": "1.00"}),
        ("/mandates", {"customer_id": customer, "iban": IBAN, "signed_on": TODAY.isoformat()}),
        (f"/mandates/{made['id']}/revoke", {}),
        ("/sepa-batches", {"collection_date": TODAY.isoformat()}),
    ]  # fmt: skip
    for path, body in writes:
        assert_problem(reader.post(path, body), 403)
    assert api.get(f"/payments/{pid}").json() == payment
    assert api.get("/mandates").json()["items"][0]["revoked_on"] is None
    assert api.get("/sepa-batches").json()["count"] == 0
