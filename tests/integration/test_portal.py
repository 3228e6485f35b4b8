"""Customer portal: signed, expiring invoice links (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import time_machine
from django.test import Client
from django.utils import timezone

from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice
from facturo.payments import sepa
from facturo.payments import services as payments
from facturo.payments.models import Mandate
from facturo.portal import links
from tests.factories import make_customer, make_org

IBAN = "FR1420041010050500013M02606"


def one_line(price: str) -> list[dict[str, object]]:
    return [{"description": "Conseil", "quantity": Decimal(1), "unit_price": Decimal(price),
             "vat_rate": Decimal(20), "vat_category": "S"}]  # fmt: skip


def setup(language: str = "fr", render: bool = False):
    _, ctx = make_org()
    sepa.configure_creditor(ctx, identifier="FR72ZZZ123456")
    customer = make_customer(ctx, language=language)
    draft = invoicing.create_draft(ctx, customer.id, one_line("100.00"), language=language)
    invoice = invoicing.issue_invoice(ctx, draft.id, render=render)
    return ctx, customer, invoice


def test_valid_link_shows_invoice_and_what_is_owed_in_its_language(engine: str) -> None:
    ctx, customer, invoice = setup(render=True)
    payments.record_payment(ctx, customer_id=customer.id, amount="20.00", currency="EUR",
                            method="transfer", received_on=timezone.localdate())  # fmt: skip
    url = links.invoice_link(invoice)
    assert url.startswith("/p/")
    page = Client().get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert invoice.number in html
    assert "Montant restant dû" in html or "Amount owed" in html
    assert "120,00" in html  # total
    assert "100,00" in html  # still owed after 20.00 paid
    assert "Signer le mandat" in html
    assert "Payer en ligne" not in html  # no Stripe configured
    pdf = Client().get(url + "pdf/")
    assert pdf.status_code == 200
    assert bytes(pdf.content).startswith(b"%PDF")


def test_english_invoice_page_is_in_english(engine: str) -> None:
    _, _, invoice = setup(language="en")
    html = Client().get(links.invoice_link(invoice)).content.decode()
    assert "Amount owed" in html
    assert "Sign the mandate" in html


def test_expired_tampered_and_foreign_links_are_404(engine: str) -> None:
    _, _, invoice = setup()
    url = links.invoice_link(invoice)
    with time_machine.travel(timezone.now() + dt.timedelta(days=89)):
        assert Client().get(url).status_code == 200
    with time_machine.travel(timezone.now() + dt.timedelta(days=91)):
        assert Client().get(url).status_code == 404
        assert Client().get(url + "pdf/").status_code == 404
    token = url.removeprefix("/p/").rstrip("/")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert Client().get(f"/p/{tampered}/").status_code == 404
    assert Client().get("/p/nonsense/").status_code == 404
    # A validly signed token naming another organization's invoice.
    _, other_ctx = make_org("other@example.com")
    other_customer = make_customer(other_ctx)
    other = invoicing.issue_invoice(
        other_ctx, invoicing.create_draft(other_ctx, other_customer.id, one_line("5")).id,
        render=False,
    )  # fmt: skip
    from django.core import signing

    forged = signing.TimestampSigner(salt=links.SALT).sign_object(
        {"i": str(other.pk), "o": str(invoice.organization_id)}
    )
    assert Client().get(f"/p/{forged}/").status_code == 404
    assert Client().get(links.invoice_link(other)).status_code == 200
    assert Client().post(f"/p/{tampered}/", {"iban": IBAN}).status_code == 404


def test_mandate_signed_in_portal_and_bad_iban_shows_error(engine: str) -> None:
    _, customer, invoice = setup()
    url = links.invoice_link(invoice)
    client = Client()
    bad = client.post(url, {"debtor_name": "Boulangerie Martin", "iban": "FR14 2004 1010 0505 "
                            "0001 3M02 607", "bic": "", "consent": "on"})  # fmt: skip
    assert bad.status_code == 200
    assert "n’est pas un IBAN valide" in bad.content.decode()
    assert 'aria-invalid="true"' in bad.content.decode()
    assert not Mandate.objects.exists()
    no_consent = client.post(url, {"debtor_name": "B. Martin", "iban": IBAN})
    assert no_consent.status_code == 200
    assert not Mandate.objects.exists()
    ok = client.post(url, {"debtor_name": "Boulangerie Martin", "iban": IBAN, "bic": "CCBPFRPP",
                           "consent": "on"})  # fmt: skip
    assert ok.status_code == 302
    mandate = Mandate.objects.get()
    assert (mandate.customer_id, mandate.source, mandate.iban) == (customer.id, "portal", IBAN)
    page = client.get(ok["Location"]).content.decode()
    assert mandate.reference in page
    assert Invoice.objects.get(pk=invoice.pk).status == "issued"
