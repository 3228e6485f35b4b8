"""Bank pages: upload (the file a drag and drop posts), the reconciliation screen (accept,
split, write-off, expense, undo), rules and the report (page, CSV, PDF); another
organization gets 404 and a read-only member sees no buttons and gets 403 on actions."""

from __future__ import annotations

import html
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from facturo.accounts.models import User
from facturo.banking import services as banking
from facturo.banking.models import BankLine, BankMatch, LineStatus
from facturo.invoicing.models import Invoice, Status
from facturo.organizations import services as orgs
from facturo.organizations.models import Role
from tests.factories import make_customer, make_org
from tests.integration.test_banking import IBAN, camt, entry, issued

PASSWORD = "pw-1234-x"


def client_for(email: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def test_upload_reconcile_undo_report(engine: str) -> None:
    _org, ctx = make_org()
    banking.create_account(ctx, name="Compte pro", iban=IBAN)
    customer = make_customer(ctx)
    a = issued(ctx, customer, "100.00")
    b = issued(ctx, customer, "40.00")
    c = issued(ctx, customer, "50.00")
    owner = client_for("owner@example.com")
    home = owner.get(reverse("web:bank_home"))
    assert home.status_code == 200
    assert "Compte pro" in home.content.decode()
    data = camt(
        entry("100.00", f"Facture {a.number}", name="Boulangerie Martin", ref="W1"),
        entry("88.00", "deux factures", name="Quelqu'un", ref="W2"),
        entry("-15.00", "ABONNEMENT LOGICIEL", ref="W3"),
    )
    upload = SimpleUploadedFile("releve.xml", data, content_type="application/xml")
    response = owner.post(reverse("web:bank_upload"), {"file": upload}, follow=True)
    text = html.unescape(response.content.decode())
    assert "1 rapprochée" in text or "1 matched" in text, text[:3000]
    assert Invoice.objects.get(pk=a.pk).status == Status.PAID
    # The screen: the open credit is listed, with the two invoices as candidates.
    w2 = BankLine.objects.get(bank_reference="W2")
    screen = owner.get(reverse("web:bank_reconcile") + f"?line={w2.pk}")
    page = screen.content.decode()
    assert b.number in page
    assert c.number in page
    # Split 88.00 across b (40) and c (50) with 2.00 written off.
    response = owner.post(
        reverse("web:bank_line_confirm", args=[w2.pk]),
        {"invoice": [str(b.pk), str(c.pk)], f"amount-{b.pk}": "40,00",
         f"amount-{c.pk}": "50,00", "write_off": "2,00"},
    )  # fmt: skip
    assert response.status_code == 302
    assert Invoice.objects.get(pk=b.pk).status == Status.PAID
    assert Invoice.objects.get(pk=c.pk).status == Status.PAID
    match = BankMatch.objects.get(line=w2)
    assert match.write_off == Decimal("2.00")
    # A debit booked as an expense.
    w3 = BankLine.objects.get(bank_reference="W3")
    owner.post(reverse("web:bank_line_expense", args=[w3.pk]),
               {"kind": "expense", "ledger_account": "6064", "label": "Logiciel"})  # fmt: skip
    assert BankLine.objects.get(pk=w3.pk).status == LineStatus.MATCHED
    # Undo from the screen.
    owner.post(reverse("web:bank_match_undo", args=[match.pk]), {"reason": "erreur"})
    assert Invoice.objects.get(pk=b.pk).status == Status.ISSUED
    assert BankLine.objects.get(pk=w2.pk).status == LineStatus.UNMATCHED
    # Report: page, CSV, PDF.
    report = owner.get(reverse("web:bank_report") + "?start=2026-03-01&end=2026-03-31")
    assert report.status_code == 200
    assert "ABONNEMENT LOGICIEL" in report.content.decode()
    csv = owner.get(reverse("web:bank_report") + "?start=2026-03-01&end=2026-03-31&format=csv")
    assert csv["Content-Type"].startswith("text/csv")
    pdf = owner.get(reverse("web:bank_report") + "?start=2026-03-01&end=2026-03-31&format=pdf")
    assert pdf.content.startswith(b"%PDF")
    # Rules page: create a rule.
    owner.post(reverse("web:bank_rules"), {"name": "Frais", "label_contains": "FRAIS",
                                            "target_kind": "fee", "ledger_account": "627",
                                            "action": "confirm"})  # fmt: skip
    assert "Frais" in owner.get(reverse("web:bank_rules")).content.decode()


def test_bad_file_other_organization_and_read_only(engine: str) -> None:
    _org, ctx = make_org()
    banking.create_account(ctx, name="Compte pro", iban=IBAN)
    banking.import_statement(ctx, camt(entry("5.00", "x", ref="R1")), "r.xml")
    line = BankLine.objects.get()
    owner = client_for("owner@example.com")
    bad = SimpleUploadedFile("cut.xml", camt(entry("1.00", ref="R2"))[:-50])
    response = owner.post(reverse("web:bank_upload"), {"file": bad}, follow=True)
    assert "cut.xml" in html.unescape(response.content.decode())
    assert BankLine.objects.count() == 1
    orgs.add_member(ctx, "viewer@example.com", Role.READ_ONLY, PASSWORD)
    viewer = client_for("viewer@example.com")
    screen = viewer.get(reverse("web:bank_reconcile") + f"?line={line.pk}")
    assert screen.status_code == 200
    assert reverse("web:bank_line_confirm", args=[line.pk]) not in screen.content.decode()
    denied = viewer.post(reverse("web:bank_line_ignore", args=[line.pk]))
    assert denied.status_code == 403
    make_org("other@example.com", siren="552100554", siret="", vat_number="")
    other = client_for("other@example.com")
    assert other.get(reverse("web:bank_reconcile") + f"?line={line.pk}").status_code == 404
    assert other.post(reverse("web:bank_line_ignore", args=[line.pk])).status_code == 404
    assert BankLine.objects.get().status == LineStatus.UNMATCHED


def test_account_settings_and_csv_mapping_then_csv_upload(engine: str) -> None:
    _org, ctx = make_org()
    account = banking.create_account(ctx, name="Compte pro", iban=IBAN)
    owner = client_for("owner@example.com")
    url = reverse("web:bank_account", args=[account.pk])
    assert owner.get(url).status_code == 200
    owner.post(url, {"form": "settings", "name": "Compte pro", "journal_code": "BQ2",
                     "auto_confirm_threshold": "95", "write_off_max": "1,50",
                     "write_off_account": "6588", "fee_account": "627"})  # fmt: skip
    account.refresh_from_db()
    assert (account.journal_code, account.auto_confirm_threshold) == ("BQ2", 95)
    assert account.write_off_max == Decimal("1.50")
    owner.post(url, {"form": "csv", "date_column": "Date", "debit_column": "Débit",
                     "credit_column": "Crédit", "remittance_columns": "Libellé; Détail",
                     "date_format": "%d/%m/%Y", "decimal_separator": ",",
                     "encoding": "cp1252"})  # fmt: skip
    account.refresh_from_db()
    assert account.csv_mapping["remittance_columns"] == ["Libellé", "Détail"]
    data = "Date;Libellé;Détail;Débit;Crédit\r\n02/03/2026;VIR;Facture;;1 234,50\r\n"
    upload = SimpleUploadedFile("export.csv", data.encode("cp1252"))
    owner.post(reverse("web:bank_upload"), {"file": upload, "account": str(account.pk)})
    line = BankLine.objects.get()
    assert line.amount == Decimal("1234.50")
    assert line.remittance_unstructured == "VIR Facture"
    # A bad threshold is refused with the reason and changes nothing.
    response = owner.post(url, {"form": "settings", "name": "X", "journal_code": "BQ2",
                                "auto_confirm_threshold": "20", "write_off_max": "1"},
                          follow=True)  # fmt: skip
    assert "50" in html.unescape(response.content.decode())
    account.refresh_from_db()
    assert account.name == "Compte pro"
