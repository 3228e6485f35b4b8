"""/api/v1/bank: accounts, multipart statement upload (idempotent), lines, confirm, accept,
undo, match runs and the reconciliation report; and `facturo bank import`. Both engines."""

from __future__ import annotations

from typing import Any

from django.test import Client
from typer.testing import CliRunner

from facturo.cli import app
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
from tests.integration.test_banking import IBAN, camt, entry

runner = CliRunner()


def upload(api: Api, data: bytes, name: str = "releve.xml", **form: Any) -> Any:
    client: Client = api.client
    headers = {k: form.pop(k) for k in list(form) if k.startswith("HTTP_")}
    return client.post(
        "/api/v1/bank/statements",
        {"file": _File(data, name), **form},
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
        **headers,
    )


class _File:
    """What Django's test client needs for a multipart file part."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name = data, name

    def read(self) -> bytes:
        return self.data


def create_account(api: Api, iban: str = IBAN) -> dict[str, Any]:
    response = api.post("/bank/accounts", {"name": "Compte courant", "iban": iban})
    assert response.status_code == 201, response.content
    return dict(response.json())


def bank_ids(api: Api, ctx: Ctx, customer_id: str) -> dict[str, list[str]]:
    """An account, a reconciled line (a payment on account, so no invoice changes) and an
    open line of ``api``'s organization, for the tenant-isolation tests."""
    account = create_account(api)
    data = camt(entry("10.00", "acompte", ref="ISO-1"), entry("12.34", "inconnu", ref="ISO-2"))
    response = upload(api, data, match="false")
    assert response.status_code == 201, response.content
    lines = {x["bank_reference"]: x["id"] for x in api.get("/bank/lines").json()["items"]}
    on_account = {"allocations": [], "customer_id": customer_id}
    match = api.post(f"/bank/lines/{lines['ISO-1']}/confirm", on_account)
    assert match.status_code == 201, match.content
    return {"account_id": [account["id"]], "line_id": [lines["ISO-2"], lines["ISO-1"]],
            "match_id": [match.json()["id"]]}  # fmt: skip


def b_bank_line(api: Api) -> str:
    """An open credit line of ``api``'s organization (which has no invoice to match)."""
    create_account(api)
    assert upload(api, camt(entry("12.00", "x", ref="B-OWN"))).status_code == 201
    return str(api.get("/bank/lines").json()["items"][0]["id"])


def test_upload_match_confirm_undo_and_report(engine: str) -> None:
    _org, _ctx, api = owner_api()
    account = create_account(api)
    customer = create_customer(api)["id"]
    invoice = issue(api, create_draft(api, customer, [line("Conseil", "1", "100")])["id"])
    other = issue(api, create_draft(api, customer, [line("Audit", "1", "50")])["id"])
    data = camt(
        entry(invoice["totals"]["due_payable"], f"Facture {invoice['number']}", ref="B1"),
        entry("60.00", "acompte", name="Quelqu'un", ref="B2"),
        entry("-3.50", '=HYPERLINK("x")', ref="B3"),
    )
    response = upload(api, data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["summary"] == "new 3, duplicate 0, rejected 0, matched 1"
    again = upload(api, data)
    assert again.json()["summary"] == "new 0, duplicate 3, rejected 0, matched 0"
    keyed = [upload(api, data, HTTP_IDEMPOTENCY_KEY="stmt-1") for _ in range(2)]
    assert keyed[0].content == keyed[1].content
    assert keyed[1]["Idempotent-Replayed"] == "true"
    assert api.get(f"/invoices/{invoice['id']}").json()["status"] == "paid"
    lines = {x["bank_reference"]: x for x in api.get("/bank/lines").json()["items"]}
    assert lines["B1"]["status"] == "matched"
    open_lines = api.get("/bank/lines", query={"status": "open"}).json()
    assert {x["bank_reference"] for x in open_lines["items"]} == {"B2", "B3"}
    # Split 60.00: the rest of the audit invoice (60.00 incl. VAT) and nothing else.
    split = {"allocations": [{"invoice_id": other["id"], "amount": "60.00"}]}
    confirm = api.post(f"/bank/lines/{lines['B2']['id']}/confirm", split)
    assert confirm.status_code == 201, confirm.content
    assert api.get(f"/invoices/{other['id']}").json()["status"] == "paid"
    twice = api.post(f"/bank/lines/{lines['B2']['id']}/confirm",
                     {"allocations": [{"invoice_id": other["id"], "amount": "1.00"}]})  # fmt: skip
    assert_problem(twice, 409, "bank.line_reconciled")
    fee = api.post(f"/bank/lines/{lines['B3']['id']}/expense", {"kind": "fee"})
    assert fee.status_code == 201, fee.content
    assert fee.json()["ledger_account"] == "627"
    # Undo the automatic match: the invoice reopens.
    match = api.get(f"/bank/lines/{lines['B1']['id']}/matches").json()[0]
    undone = api.post(f"/bank/matches/{match['id']}/undo", {"reason": "erreur"})
    assert undone.status_code == 200, undone.content
    assert undone.json()["undone_at"]
    assert api.get(f"/invoices/{invoice['id']}").json()["status"] == "issued"
    run = api.post("/bank/match-runs", {})
    assert run.json()["confirmed"] == 1
    # The report: JSON, CSV (formula neutralised), PDF.
    query = {"start": "2026-03-01", "end": "2026-03-31"}
    report = api.get(f"/bank/accounts/{account['id']}/reconciliation", query=query)
    assert report.status_code == 200, report.content
    assert report.json()["matched_count"] == 3
    assert report.json()["unmatched_count"] == 0
    csv = api.get(f"/bank/accounts/{account['id']}/reconciliation",
                  query={**query, "format": "csv"})  # fmt: skip
    text = csv.content.decode("utf-8-sig")
    assert "'=HYPERLINK" in text
    assert "\n=HYPERLINK" not in text
    assert ";=HYPERLINK" not in text
    pdf = api.get(f"/bank/accounts/{account['id']}/reconciliation",
                  query={**query, "format": "pdf"})  # fmt: skip
    assert pdf.content.startswith(b"%PDF")


def test_bad_files_are_problems_and_change_nothing(engine: str) -> None:
    _org, _ctx, api = owner_api()
    create_account(api)
    truncated = camt(entry("1.00", ref="T1"))[:-40]
    response = upload(api, truncated, "cut.xml")
    problem = assert_problem(response, 422)
    assert "cut.xml" in problem["detail"]
    other = upload(api, camt(entry("1.00"), account="FR1420041010050500013M02606"))
    assert_problem(other, 422, "statement.unknown_account")
    assert api.get("/bank/lines").json()["count"] == 0
    duplicate = api.post("/bank/accounts", {"name": "Bis", "iban": IBAN})
    assert_problem(duplicate, 409, "bank.account_exists")
    account = api.get("/bank/accounts").json()["items"][0]
    changed = api.patch(f"/bank/accounts/{account['id']}",
                        {"auto_confirm_threshold": 101, "csv_mapping": {"date_column": "D",
                         "amount_column": "M"}})  # fmt: skip
    assert changed.status_code == 200, changed.content
    assert changed.json()["auto_confirm_threshold"] == 101
    assert changed.json()["csv_mapping"]["amount_column"] == "M"
    bad = api.patch(f"/bank/accounts/{account['id']}", {"csv_mapping": {"date_column": "D"}})
    assert_problem(bad, 422, "bank.bad_csv_mapping")


def test_cli_bank_import(engine: str, tmp_path: Any) -> None:
    _org, _ctx, api = owner_api()
    create_account(api)
    path = tmp_path / "releve.xml"
    path.write_bytes(camt(entry("10.00", "x", ref="C1"), entry("-2.00", "frais", ref="C2")))
    result = runner.invoke(app, ["bank", "import", str(path), "--account", IBAN])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "new 2, duplicate 0, rejected 0, matched 0"
    again = runner.invoke(app, ["bank", "import", str(path)])
    assert again.output.strip().splitlines()[-1] == "new 0, duplicate 2, rejected 0, matched 0"
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<?xml version='1.0'?><Document><BkToCstmrStmt>")
    failed = runner.invoke(app, ["bank", "import", str(bad)])
    assert failed.exit_code == 1
