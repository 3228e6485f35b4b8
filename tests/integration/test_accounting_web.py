"""Accounting pages for the owner (every page and download, a manual entry refused then
posted, a reversal), a read-only member (pages yes, buttons no, POST 403) and another
organization (404). French is the default language."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from facturo.accounting import services
from facturo.accounting.models import Entry
from facturo.accounts.models import User
from facturo.invoicing import services as invoicing
from facturo.organizations import services as orgs
from facturo.organizations.models import Role
from tests.factories import make_customer, make_org

PASSWORD = "pw-1234-x"


def client_for(email: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def test_accounting_pages(engine: str) -> None:
    org, ctx = make_org("owner-a@example.com")
    customer = make_customer(ctx)
    lines = [{"description": "Conseil", "quantity": Decimal(1), "unit_price": Decimal("100")}]
    draft = invoicing.create_draft(ctx, customer.id, lines)
    invoice = invoicing.issue_invoice(ctx, draft.id, render=False)
    year = timezone.localdate().year
    services.add_fiscal_year(ctx, dt.date(year, 1, 1), dt.date(year, 12, 31))
    owner = client_for("owner-a@example.com")
    entry = Entry.objects.get(organization=org)

    home = owner.get(reverse("web:accounting_home"))
    assert home.status_code == 200
    assert "Comptabilité" in home.content.decode()
    for name, args, query in (
        ("web:accounting_entries", (), ""),
        ("web:accounting_entry", (entry.pk,), ""),
        ("web:accounting_chart", (), ""),
        ("web:accounting_rules", (), f"?invoice={invoice.number}"),
        ("web:accounting_report", ("trial_balance",), ""),
        ("web:accounting_report", ("general_ledger",), "?account=411"),
        ("web:accounting_report", ("aged_balance",), ""),
        ("web:accounting_vat", (), ""),
        ("web:accounting_entry_new", (), ""),
    ):
        response = owner.get(reverse(name, args=args) + query)
        assert response.status_code == 200, name
    preview = owner.get(reverse("web:accounting_rules") + f"?invoice={invoice.number}")
    assert "7061" in preview.content.decode()
    for fmt, magic in (("csv", b"\xef\xbb\xbf"), ("xlsx", b"PK"), ("pdf", b"%PDF")):
        report = owner.get(reverse("web:accounting_report", args=("trial_balance",)),
                           {"format": fmt})  # fmt: skip
        assert report.content.startswith(magic), fmt
    fec = owner.post(reverse("web:accounting_fec"), {"year": year})
    assert fec.status_code == 200
    assert f"{org.siren}FEC{year}1231.txt" in fec["Content-Disposition"]
    journal = owner.get(reverse("web:accounting_journal_export"), {"preset": "sage100"})
    assert journal.content.startswith(b"Jou\t")

    # A manual entry that does not balance is refused, with the reason; then posted.
    form = {"journal": "OD", "date": timezone.localdate().isoformat(), "label": "Achat",
            "piece_ref": "F-1", "account_0": "6061", "debit_0": "10", "account_1": "512",
            "credit_1": "9"}  # fmt: skip
    refused = owner.post(reverse("web:accounting_entry_new"), form)
    assert refused.status_code == 422
    assert "équilibr" in refused.content.decode() or "balance" in refused.content.decode()
    assert Entry.objects.count() == 1
    posted = owner.post(reverse("web:accounting_entry_new"), {**form, "credit_1": "10"})
    assert posted.status_code == 302
    manual = Entry.objects.get(source_kind="manual")
    reversed_ = owner.post(reverse("web:accounting_entry", args=(manual.pk,)))
    assert reversed_.status_code == 302
    assert Entry.objects.filter(reverses=manual).exists()

    # Read-only: sees the pages, no buttons, refused POST.
    orgs.add_member(ctx, "viewer-a@example.com", Role.READ_ONLY, PASSWORD)
    viewer = client_for("viewer-a@example.com")
    page = viewer.get(reverse("web:accounting_entry", args=(entry.pk,)))
    assert page.status_code == 200
    assert "reversing entry" not in page.content.decode()
    assert "extourne</button>" not in page.content.decode()
    assert viewer.post(reverse("web:accounting_entry", args=(entry.pk,))).status_code == 403
    assert viewer.post(reverse("web:accounting_fec"), {"year": year}).status_code == 403

    # Another organization: its own books, A's entry is a 404.
    make_org("owner-b@example.com", name="Org B")
    other = client_for("owner-b@example.com")
    assert other.get(reverse("web:accounting_entry", args=(entry.pk,))).status_code == 404
    assert invoice.number not in other.get(reverse("web:accounting_entries")).content.decode()
