"""/accounting API: journals, accounts, entries, preview, mapping rules, trial balance and
exports (job then download) on both engines; ids for the tenant-isolation test."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from facturo.accounting import services
from facturo.formats.fec import check_fec
from facturo.organizations.context import Ctx
from tests.integration.test_api import Api, create_customer, create_draft, issue, line, owner_api


def accounting_ids(api: Api, ctx: Ctx, issued_invoice_id: str) -> dict[str, list[str]]:
    """An entry, a mapping rule and an export of ``api``'s organization."""
    entries = api.get("/accounting/entries").json()["items"]
    assert entries, "the issued invoices are posted"
    rule = api.post("/accounting/mapping-rules", {"account": "706500", "product_code": "ISO"})
    assert rule.status_code == 201, rule.content
    job = api.post("/accounting/exports", {"kind": "trial_balance"})
    assert job.status_code == 202, job.content
    return {
        "entry_id": [entries[0]["id"]],
        "rule_id": [str(rule.json()["id"])],
        "job_id": [job.json()["id"]],
    }


def test_entries_rules_preview_and_exports(engine: str) -> None:
    org, ctx, api = owner_api()
    customer = create_customer(api)["id"]
    draft = create_draft(api, customer, [line("Conseil", "2", "100", nature="services")])
    preview = api.get(f"/accounting/invoices/{draft['id']}/preview").json()
    assert {(x["account"], x["debit"], x["credit"]) for x in preview["lines"]} == {
        ("411", "240.00", "0.00"),
        ("7061", "0.00", "200.00"),
        ("445741", "0.00", "40.00"),
    }
    rule = api.post("/accounting/mapping-rules", {"account": "706500", "nature": "services"})
    assert rule.status_code == 201
    bad = api.post("/accounting/mapping-rules", {"account": "9999"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "ledger.invalid_account"
    issued = issue(api, draft["id"])
    entries = api.get("/accounting/entries", query={"journal": "VE"}).json()
    assert entries["count"] == 1
    entry = entries["items"][0]
    assert entry["piece_ref"] == issued["number"]
    assert {x["account"] for x in entry["lines"]} == {"411", "706500", "445741"}
    assert api.get(f"/accounting/entries/{entry['id']}").json()["hash"] == entry["hash"]
    assert api.delete(f"/accounting/mapping-rules/{rule.json()['id']}").status_code == 204
    assert {j["code"] for j in api.get("/accounting/journals").json()["items"]} == {
        "VE",
        "BQ",
        "OD",
    }
    accounts = {
        a["number"] for a in api.get("/accounting/accounts", query={"limit": 200}).json()["items"]
    }
    assert {"411", "706500", "445711"} <= accounts
    tb = api.get("/accounting/trial-balance").json()["items"]
    assert sum(Decimal(r["balance"]) for r in tb) == 0

    # Exports: a job, then the file (built on download when no worker ran it yet).
    year = timezone.localdate().year
    missing = api.post("/accounting/exports", {"kind": "fec", "year": year})
    assert missing.status_code == 202
    failed = api.get(f"/accounting/exports/{missing.json()['id']}/file")
    assert failed.status_code == 422
    assert "No fiscal year" in failed.json()["detail"]
    services.add_fiscal_year(ctx, dt.date(year, 1, 1), dt.date(year, 12, 31))
    job = api.post("/accounting/exports", {"kind": "fec", "year": year, "encoding": "utf-8"})
    response = api.get(f"/accounting/exports/{job.json()['id']}/file")
    assert response.status_code == 200
    assert f"{org.siren}FEC{year}1231.txt" in response["Content-Disposition"]
    report = check_fec(response.content, fiscal_year_start=dt.date(year, 1, 1),
                       fiscal_year_end=dt.date(year, 12, 31))  # fmt: skip
    assert report.ok, report.errors
    assert api.get(f"/accounting/exports/{job.json()['id']}").json()["status"] == "done"
    for body, magic in (
        ({"kind": "journal", "preset": "sage100"}, b"Jou\t"),
        ({"kind": "journal", "format": "xlsx"}, b"PK"),
        ({"kind": "aged_balance", "format": "pdf"}, b"%PDF"),
        ({"kind": "general_ledger", "format": "csv"}, b"\xef\xbb\xbf"),
    ):
        job = api.post("/accounting/exports", body)
        assert job.status_code == 202, job.content
        file = api.get(f"/accounting/exports/{job.json()['id']}/file")
        assert file.status_code == 200, (body, file.content[:200])
        assert file.content.startswith(magic), body
