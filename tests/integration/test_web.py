"""The web UI through Django's test client, on SQLite and PostgreSQL.

French is the default language: the assertions read the French text users see.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from facturo.accounts.models import User
from facturo.audit.models import AuditEvent
from facturo.catalog import services as catalog
from facturo.catalog.models import Product
from facturo.customers.models import Customer
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, InvoiceLine, Status
from facturo.organizations import services as orgs
from facturo.organizations.context import Ctx
from facturo.organizations.models import Membership, NumberingSeries, Organization, Role
from tests.factories import lines, make_customer, make_org

PASSWORD = "pw-1234-x"
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


@dataclass
class World:
    org_a: Organization
    ctx_a: Ctx
    customer: Customer
    product: Product
    draft: Invoice
    issued: Invoice
    sales: Membership
    org_b: Organization
    ctx_b: Ctx


@pytest.fixture
def world(engine: str) -> World:
    org_a, ctx_a = make_org("owner-a@example.com")
    customer = make_customer(ctx_a)
    product = catalog.create_product(
        ctx_a,
        name="Journée de conseil",
        unit_price="650",
        unit_code="DAY",
        vat_category="S",
        vat_rate="20",
    )
    draft = invoicing.create_draft(ctx_a, customer.id, lines(2))
    issued = invoicing.issue_invoice(ctx_a, invoicing.create_draft(ctx_a, customer.id, lines(1)).id)
    sales = orgs.add_member(ctx_a, "sales-a@example.com", Role.SALES, PASSWORD)
    org_b, ctx_b = make_org("owner-b@example.com", name="Autre Société")
    return World(org_a, ctx_a, customer, product, draft, issued, sales, org_b, ctx_b)


def client_for(email: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def editor_post(customer: Customer, rows: list[dict[str, str]], **extra: str) -> dict[str, str]:
    data = {
        "customer": str(customer.pk),
        "kind": "invoice",
        "language": "fr",
        "document_discount_percent": "",
        **extra,
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"lines-{i}-{key}"] = value
    return data


TWO_LINES = [
    {
        "description": "Développement",
        "quantity": "2",
        "unit_price": "100",
        "unit_code": "DAY",
        "vat_category": "S",
        "vat_rate": "20",
    },
    {
        "description": "Livre",
        "quantity": "1",
        "unit_price": "50,50",
        "unit_code": "C62",
        "vat_category": "S",
        "vat_rate": "10",
    },
]


# --- signing in ----------------------------------------------------------------------------


def test_login_logout_and_redirects(world: World) -> None:
    client = Client()
    assert client.get(reverse("web:dashboard")).status_code == 302
    page = client.get(reverse("web:login"))
    assert page.status_code == 200
    assert "Adresse e-mail" in text(page)
    bad = client.post(reverse("web:login"), {"username": "owner-a@example.com", "password": "no"})
    assert bad.status_code == 200
    assert "_auth_user_id" not in client.session
    good = client.post(
        reverse("web:login"), {"username": "owner-a@example.com", "password": PASSWORD}
    )
    assert good.status_code == 302
    assert good["Location"] == reverse("web:dashboard")
    dashboard = client.get(reverse("web:dashboard"))
    assert dashboard.status_code == 200
    assert "Tableau de bord" in text(dashboard)
    assert client.post(reverse("web:logout")).status_code == 302
    assert client.get(reverse("web:dashboard")).status_code == 302


def test_language_switch_to_english(world: World) -> None:
    client = client_for("owner-a@example.com")
    response = client.post(
        reverse("web:set_language"), {"language": "en", "next": reverse("web:invoice_list")}
    )
    assert response.status_code == 302
    assert "Invoices" in text(client.get(reverse("web:invoice_list")))
    client.post(reverse("web:set_language"), {"language": "fr", "next": "/"})
    assert "Factures" in text(client.get(reverse("web:invoice_list")))


def test_dashboard_empty_state(engine: str) -> None:
    make_org("solo@example.com")
    page = text(client_for("solo@example.com").get(reverse("web:dashboard")))
    assert "Aucune facture pour l’instant — créez la première." in page
    assert "Ajouter un client" in page


def test_user_without_organization_is_told_so(engine: str) -> None:
    User.objects.create_user("alone@example.com", PASSWORD)
    response = client_for("alone@example.com").get(reverse("web:dashboard"))
    assert response.status_code == 403
    assert "membre d’aucune organisation" in text(response)


# --- every page renders for a member -------------------------------------------------------


def member_pages(w: World) -> list[str]:
    return [
        reverse("web:dashboard"),
        reverse("web:customer_list"),
        reverse("web:customer_list") + "?q=boul",
        reverse("web:customer_create"),
        reverse("web:customer_detail", args=[w.customer.pk]),
        reverse("web:customer_edit", args=[w.customer.pk]),
        reverse("web:product_list"),
        reverse("web:product_create"),
        reverse("web:product_edit", args=[w.product.pk]),
        reverse("web:invoice_list"),
        reverse("web:invoice_list") + "?status=draft",
        reverse("web:invoice_create"),
        reverse("web:invoice_create") + f"?customer={w.customer.pk}",
        reverse("web:invoice_detail", args=[w.draft.pk]),
        reverse("web:invoice_detail", args=[w.issued.pk]),
        reverse("web:invoice_pdf", args=[w.issued.pk]),
        reverse("web:org_settings"),
        reverse("web:numbering_example") + "?kind=invoice&invoice-pattern=F{YYYY}-{seq:04}"
        "&invoice-reset=yearly",
        reverse("web:members"),
    ]


def test_every_page_renders_for_a_member(world: World) -> None:
    client = client_for("owner-a@example.com")
    for url in member_pages(world):
        response = client.get(url)
        assert response.status_code == 200, url
    dashboard = text(client.get(reverse("web:dashboard")))
    assert world.issued.number is not None
    assert world.issued.number in dashboard
    issued_page = text(client.get(reverse("web:invoice_detail", args=[world.issued.pk])))
    assert "Télécharger le PDF" in issued_page
    assert "Envoyer par e-mail" in issued_page
    assert "compta@boulangerie-martin.example" in issued_page  # recipients prefilled


def test_pdf_download_and_inline_preview(world: World) -> None:
    client = client_for("owner-a@example.com")
    url = reverse("web:invoice_pdf", args=[world.issued.pk])
    download = client.get(url)
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"].startswith("attachment;")
    assert download.content.startswith(b"%PDF")
    inline = client.get(url + "?inline=1")
    assert inline["Content-Disposition"].startswith("inline;")
    assert inline["X-Frame-Options"] == "SAMEORIGIN"  # the preview iframe may show it
    assert client.get(reverse("web:invoice_pdf", args=[world.draft.pk])).status_code == 404


# --- tenancy: another organization's objects are 404, and nothing changes -------------------


def state_of(org: Organization) -> Any:
    return (
        AuditEvent.objects.filter(organization_id=org.id).count(),
        list(
            Invoice.objects.filter(organization=org)
            .order_by("id")
            .values_list("id", "status", "number", "updated_at", "customer_id")
        ),
        list(
            InvoiceLine.objects.filter(invoice__organization=org)
            .order_by("id")
            .values_list("id", "description", "quantity")
        ),
        list(Customer.objects.filter(organization=org).order_by("id").values()),
        list(Product.objects.filter(organization=org).order_by("id").values()),
        list(Membership.objects.filter(organization=org).order_by("id").values_list("id", "role")),
        list(
            NumberingSeries.objects.filter(organization=org)
            .order_by("id")
            .values_list("pattern", "reset", "issued_count")
        ),
        Organization.objects.filter(pk=org.pk).values().get(),
    )


def foreign_requests(w: World) -> list[tuple[str, str, dict[str, str]]]:
    c, p, d, i, m = w.customer.pk, w.product.pk, w.draft.pk, w.issued.pk, w.sales.pk
    invoice_form = editor_post(w.customer, TWO_LINES)
    return [
        ("get", reverse("web:customer_detail", args=[c]), {}),
        ("get", reverse("web:customer_edit", args=[c]), {}),
        (
            "post",
            reverse("web:customer_edit", args=[c]),
            {
                "kind": "company",
                "name": "Piraté",
                "address_line1": "x",
                "postcode": "1",
                "city": "x",
                "country_code": "FR",
                "language": "fr",
                "currency": "EUR",
            },
        ),
        ("get", reverse("web:product_edit", args=[p]), {}),
        (
            "post",
            reverse("web:product_edit", args=[p]),
            {
                "name": "Piraté",
                "unit_price": "1",
                "unit_code": "C62",
                "vat_category": "S",
                "vat_rate": "20",
                "nature": "services",
            },
        ),
        ("get", reverse("web:invoice_detail", args=[d]), {}),
        ("post", reverse("web:invoice_detail", args=[d]), invoice_form),
        ("post", reverse("web:invoice_detail", args=[d]), {**invoice_form, "action": "issue"}),
        ("post", reverse("web:invoice_totals", args=[d]), invoice_form),
        ("post", reverse("web:invoice_issue", args=[d]), {}),
        ("post", reverse("web:invoice_delete", args=[d]), {}),
        ("get", reverse("web:invoice_detail", args=[i]), {}),
        ("post", reverse("web:invoice_detail", args=[i]), invoice_form),
        ("get", reverse("web:invoice_pdf", args=[i]), {}),
        ("get", reverse("web:invoice_pdf", args=[i]) + "?inline=1", {}),
        ("post", reverse("web:invoice_send", args=[i]), {"to": "pirate@example.com"}),
        ("post", reverse("web:invoice_credit", args=[i]), {"mode": "full", "reason": "x"}),
        ("post", reverse("web:invoice_issue", args=[i]), {}),
        ("post", reverse("web:member_role", args=[m]), {f"m{m}-role": "owner"}),
        ("post", reverse("web:member_remove", args=[m]), {}),
    ]


def test_other_organizations_objects_are_404_and_unchanged(world: World) -> None:
    intruder = client_for("owner-b@example.com")
    make_customer(world.ctx_b, name="Client de B")
    before_a, before_b = state_of(world.org_a), state_of(world.org_b)
    for method, url, data in foreign_requests(world):
        response = getattr(intruder, method)(url, data)
        assert response.status_code == 404, (method, url, response.status_code)
        assert world.customer.name not in text(response)
    # Forms that pick objects by id: the other organization's ids are not valid choices.
    response = intruder.post(reverse("web:invoice_create"), editor_post(world.customer, TWO_LINES))
    assert response.status_code == 200
    assert "Sélectionnez un choix valide" in text(response)
    response = intruder.post(
        reverse("web:invoice_totals_new"),
        editor_post(world.customer, [{"product": str(world.product.pk), "quantity": "1"}]),
    )
    assert "650" not in text(response)
    assert state_of(world.org_a) == before_a
    assert state_of(world.org_b) == before_b


def test_organization_switcher_checks_membership(world: World) -> None:
    orgs.add_member(world.ctx_b, "owner-a@example.com", Role.READ_ONLY)
    client = client_for("owner-a@example.com")
    assert world.org_a.name in text(client.get(reverse("web:dashboard")))
    response = client.post(reverse("web:org_switch"), {"organization": str(world.org_b.pk)})
    assert response.status_code == 302
    page = text(client.get(reverse("web:customer_list")))
    assert "Autre Société" in page
    assert world.customer.name not in page
    # In B now: A's objects are out of reach, B's role (read-only) applies.
    assert client.get(reverse("web:customer_detail", args=[world.customer.pk])).status_code == 404
    assert client.post(reverse("web:customer_create"), {}).status_code == 403
    stranger, _ = make_org("stranger@example.com", name="Inconnue")
    client.post(reverse("web:org_switch"), {"organization": str(stranger.pk)})
    assert "Autre Société" in text(client.get(reverse("web:dashboard")))
    # A membership removed while signed in: back to an organization the user still has.
    Membership.objects.filter(user__email="owner-a@example.com", organization=world.org_b).delete()
    assert world.org_a.name in text(client.get(reverse("web:dashboard")))


# --- roles ---------------------------------------------------------------------------------


def test_read_only_role_sees_no_edit_buttons_and_gets_403_on_post(world: World) -> None:
    orgs.add_member(world.ctx_a, "viewer@example.com", Role.READ_ONLY, PASSWORD)
    viewer = client_for("viewer@example.com")
    before = state_of(world.org_a)
    detail = text(viewer.get(reverse("web:customer_detail", args=[world.customer.pk])))
    assert "Modifier" not in detail
    assert "Nouvelle facture" not in detail
    draft_page = viewer.get(reverse("web:invoice_detail", args=[world.draft.pk]))
    assert draft_page.status_code == 200
    assert "Émettre" not in text(draft_page)
    assert 'name="lines-0-description"' not in text(draft_page)
    issued_page = text(viewer.get(reverse("web:invoice_detail", args=[world.issued.pk])))
    assert "Télécharger le PDF" in issued_page
    assert "Créer un avoir" not in issued_page
    assert "Envoyer par e-mail" not in issued_page
    for url in (
        reverse("web:org_settings"),
        reverse("web:members"),
        reverse("web:invoice_create"),
        reverse("web:customer_create") + "x",
    ):
        assert viewer.get(url).status_code in (403, 404), url
    posts = [
        reverse("web:customer_create"),
        reverse("web:customer_edit", args=[world.customer.pk]),
        reverse("web:product_create"),
        reverse("web:product_edit", args=[world.product.pk]),
        reverse("web:invoice_create"),
        reverse("web:invoice_totals_new"),
        reverse("web:invoice_detail", args=[world.draft.pk]),
        reverse("web:invoice_totals", args=[world.draft.pk]),
        reverse("web:invoice_issue", args=[world.draft.pk]),
        reverse("web:invoice_delete", args=[world.draft.pk]),
        reverse("web:invoice_send", args=[world.issued.pk]),
        reverse("web:invoice_credit", args=[world.issued.pk]),
        reverse("web:org_settings"),
        reverse("web:members"),
        reverse("web:member_role", args=[world.sales.pk]),
        reverse("web:member_remove", args=[world.sales.pk]),
    ]
    for url in posts:
        response = viewer.post(url, editor_post(world.customer, TWO_LINES, action="issue"))
        assert response.status_code == 403, url
    assert state_of(world.org_a) == before


def test_sales_role_cannot_open_settings_but_edits_invoices(world: World) -> None:
    sales = client_for("sales-a@example.com")
    assert sales.get(reverse("web:org_settings")).status_code == 403
    assert sales.get(reverse("web:members")).status_code == 403
    nav = text(sales.get(reverse("web:dashboard")))
    assert reverse("web:org_settings") not in nav
    response = sales.post(reverse("web:invoice_create"), editor_post(world.customer, TWO_LINES))
    assert response.status_code == 302


# --- customers and catalog -----------------------------------------------------------------


def test_invalid_siren_shows_the_french_error_beside_the_field(world: World) -> None:
    client = client_for("owner-a@example.com")
    count = Customer.objects.count()
    response = client.post(
        reverse("web:customer_create"),
        {
            "kind": "company",
            "name": "Menuiserie Dubois",
            "siren": "123456789",
            "address_line1": "3 rue des Lilas",
            "postcode": "75011",
            "city": "Paris",
            "country_code": "fr",
            "language": "fr",
            "currency": "EUR",
        },
    )
    assert response.status_code == 200
    page = text(response)
    error = re.search(r'<small class="field-error" id="id_siren-error">([^<]*)</small>', page)
    assert error is not None, page
    assert error.group(1) == (
        "« 123456789 » n’est pas un SIREN valide : 9 chiffres avec une clé de contrôle valide."
    )
    assert 'value="Menuiserie Dubois"' in page  # what was typed is kept
    assert Customer.objects.count() == count


def test_customer_create_edit_search_and_detail(world: World) -> None:
    client = client_for("owner-a@example.com")
    response = client.post(
        reverse("web:customer_create"),
        {
            "kind": "company",
            "name": "Menuiserie Dubois",
            "siren": "732 829 320",
            "address_line1": "3 rue des Lilas",
            "postcode": "75011",
            "city": "Paris",
            "country_code": "fr",
            "language": "fr",
            "currency": "eur",
            "email": "a@dubois.example",
        },
    )
    assert response.status_code == 302
    customer = Customer.objects.get(name="Menuiserie Dubois")
    assert (customer.siren, customer.country_code, customer.currency) == ("732829320", "FR", "EUR")
    edit = client.post(
        reverse("web:customer_edit", args=[customer.pk]),
        {
            "kind": "company",
            "name": "Menuiserie Dubois & Fils",
            "address_line1": "3 rue des Lilas",
            "postcode": "75011",
            "city": "Paris",
            "country_code": "FR",
            "language": "fr",
            "currency": "EUR",
            "email": "pas-une-adresse",
        },
    )
    assert edit.status_code == 200
    assert "« pas-une-adresse » n’est pas une adresse e-mail valide." in text(edit) or (
        "Saisissez une adresse e-mail valide." in text(edit)
    )
    found = client.get(reverse("web:customer_list"), {"q": "dubois"}, HTTP_HX_REQUEST="true")
    assert "Menuiserie Dubois" in text(found)
    assert "<html" not in text(found)  # htmx gets the rows only
    assert "Boulangerie" not in text(found)
    detail = text(client.get(reverse("web:customer_detail", args=[world.customer.pk])))
    assert world.issued.number is not None
    assert world.issued.number in detail


def test_product_create_with_french_decimal_and_error(world: World) -> None:
    client = client_for("owner-a@example.com")
    data = {
        "name": "Heure de formation",
        "unit_price": "85,50",
        "unit_code": "HUR",
        "vat_category": "S",
        "vat_rate": "7,3",
        "nature": "services",
    }
    bad = client.post(reverse("web:product_create"), data)
    assert bad.status_code == 200
    assert 'id="id_vat_rate-error"' in text(bad)
    data["vat_rate"] = "20"
    assert client.post(reverse("web:product_create"), data).status_code == 302
    assert Product.objects.get(name="Heure de formation").unit_price == Decimal("85.5")


# --- invoices ------------------------------------------------------------------------------


def test_live_totals_come_from_the_core_computation(world: World) -> None:
    client = client_for("owner-a@example.com")
    response = client.post(
        reverse("web:invoice_totals_new"),
        editor_post(world.customer, TWO_LINES),
        HTTP_HX_REQUEST="true",
    )
    page = text(response).replace("\u202f", " ").replace("\xa0", " ")
    # 2 × 100 + 50.50 = 250.50 HT; VAT 40.00 (20 %) + 5.05 (10 %) = 45.05; 295.55 TTC
    assert "250,50 €" in page
    assert "40,00 €" in page
    assert "5,05 €" in page
    assert "295,55 €" in page
    assert 'id="net-0" hx-swap-oob="true">200,00 €' in page
    with_discount = (
        text(
            client.post(
                reverse("web:invoice_totals_new"),
                editor_post(world.customer, TWO_LINES, document_discount_percent="10"),
            )
        )
        .replace("\u202f", " ")
        .replace("\xa0", " ")
    )
    assert "225,45 €" in with_discount  # 250.50 − 20.00 − 5.05
    bad_rows = [{**TWO_LINES[0], "quantity": "-1"}]
    refused = text(
        client.post(reverse("web:invoice_totals_new"), editor_post(world.customer, bad_rows))
    )
    assert "La quantité doit être positive" in refused
    # a product fills the price and VAT the user left empty
    product_row = [{"product": str(world.product.pk), "quantity": "2"}]
    filled = text(
        client.post(reverse("web:invoice_totals_new"), editor_post(world.customer, product_row))
    )
    assert "1 560,00 €" in filled.replace("\u202f", " ").replace("\xa0", " ")


def test_editor_creates_and_updates_a_draft(world: World) -> None:
    client = client_for("owner-a@example.com")
    response = client.post(
        reverse("web:invoice_create"),
        editor_post(world.customer, TWO_LINES, purchase_order="BC-42"),
    )
    assert response.status_code == 302
    draft = Invoice.objects.filter(organization=world.org_a, purchase_order="BC-42").get()
    assert response["Location"] == reverse("web:invoice_detail", args=[draft.pk])
    assert [line.description for line in draft.lines.all()] == ["Développement", "Livre"]
    assert draft.lines.all()[1].unit_price == Decimal("50.5")
    editor = text(client.get(response["Location"]))
    assert 'value="Développement"' in editor
    assert "295,55" in editor
    rows = [TWO_LINES[1], {"description": "", "unit_price": ""}]  # blank rows are ignored
    update = client.post(response["Location"], editor_post(world.customer, rows))
    assert update.status_code == 302
    assert [line.description for line in draft.lines.all()] == ["Livre"]
    bad = client.post(
        response["Location"], editor_post(world.customer, [{**TWO_LINES[0], "quantity": "abc"}])
    )
    assert bad.status_code == 200
    assert "« abc » n’est pas un nombre." in text(bad)
    assert [line.description for line in draft.lines.all()] == ["Livre"]


def test_editing_an_issued_invoice_is_refused(world: World) -> None:
    client = client_for("owner-a@example.com")
    url = reverse("web:invoice_detail", args=[world.issued.pk])
    before = state_of(world.org_a)
    response = client.post(url, editor_post(world.customer, TWO_LINES, purchase_order="changed"))
    assert response.status_code == 409
    assert f"La facture {world.issued.number} est émise" in text(response)
    assert 'name="lines-0-description"' not in text(client.get(url))  # no editor for it
    assert client.post(reverse("web:invoice_delete", args=[world.issued.pk])).status_code == 302
    assert state_of(world.org_a) == before


def test_double_issue_is_refused_cleanly(world: World) -> None:
    client = client_for("owner-a@example.com")
    url = reverse("web:invoice_issue", args=[world.draft.pk])
    first = client.post(url)
    assert first.status_code == 302
    issued = Invoice.objects.get(pk=world.draft.pk)
    assert issued.status == Status.ISSUED
    assert issued.number is not None
    assert issued.number in text(client.get(first["Location"]))
    again = client.post(url, follow=True)
    assert again.status_code == 200
    assert f"Cette facture a déjà été émise sous le numéro {issued.number}." in text(again)
    # The editor's "Issue" button posted twice behaves the same.
    editor_again = client.post(
        reverse("web:invoice_detail", args=[world.draft.pk]),
        editor_post(world.customer, TWO_LINES, action="issue"),
        follow=True,
    )
    assert f"déjà été émise sous le numéro {issued.number}" in text(editor_again)
    assert Invoice.objects.get(pk=world.draft.pk).number == issued.number
    assert issued.series is not None
    assert issued.series.issued_count == 2  # the fixture's invoice and this one, no more


def test_editor_issue_button_saves_then_issues(world: World) -> None:
    client = client_for("owner-a@example.com")
    response = client.post(
        reverse("web:invoice_create"),
        editor_post(world.customer, TWO_LINES, action="issue"),
        follow=True,
    )
    invoice = Invoice.objects.filter(organization=world.org_a).order_by("-created_at").first()
    assert invoice is not None
    assert invoice.status == Status.ISSUED
    assert invoice.total_incl_vat == Decimal("295.55")
    assert f"Émise sous le numéro {invoice.number}." in text(response)


def test_issue_error_is_explained(world: World) -> None:
    client = client_for("owner-a@example.com")
    empty = invoicing.create_draft(world.ctx_a, world.customer.id, [])
    response = client.post(reverse("web:invoice_issue", args=[empty.pk]), follow=True)
    assert "Une facture sans ligne ne peut pas être émise" in text(response)
    assert Invoice.objects.get(pk=empty.pk).status == Status.DRAFT


def test_credit_notes_full_and_partial(world: World) -> None:
    client = client_for("owner-a@example.com")
    invoice = invoicing.issue_invoice(
        world.ctx_a, invoicing.create_draft(world.ctx_a, world.customer.id, lines(2)).id
    )
    url = reverse("web:invoice_credit", args=[invoice.pk])
    first_line = invoice.lines.first()
    assert first_line is not None
    nothing = client.post(url, {"mode": "partial", "reason": "Erreur"})
    assert "Choisissez au moins une ligne à créditer." in text(nothing)
    partial = client.post(
        url,
        {
            "mode": "partial",
            "reason": "Remise commerciale",
            f"credit-{first_line.pk}": "on",
            f"credit-{first_line.pk}-quantity": "1",
        },
    )
    assert partial.status_code == 302
    note = Invoice.objects.get(credited_invoice=invoice)
    assert note.status == Status.ISSUED
    assert note.total_excl_vat == Decimal("99.99")
    full = client.post(url, {"mode": "full", "reason": "Annulation"})
    assert full.status_code == 200  # the rest of the invoice only: refused with the reason
    assert "dépasse ce qui reste à créditer" in text(full)


def test_deposit_deduction_from_the_editor(world: World) -> None:
    client = client_for("owner-a@example.com")
    deposit = invoicing.issue_invoice(
        world.ctx_a,
        invoicing.create_draft(world.ctx_a, world.customer.id, lines(1), kind="deposit").id,
    )
    url = reverse("web:invoice_detail", args=[world.draft.pk])
    assert deposit.number is not None
    assert deposit.number in text(client.get(url))
    response = client.post(
        url,
        editor_post(world.customer, TWO_LINES, action="deduct", deposit=str(deposit.pk)),
        follow=True,
    )
    assert "Acompte déduit." in text(response)
    assert world.draft.lines.filter(deducted_invoice=deposit).count() == 1
    assert f"Acompte {deposit.number}" in text(response)


def test_send_by_email_puts_it_in_the_outbox(world: World) -> None:
    from facturo.notifications.models import OutboxEmail

    client = client_for("owner-a@example.com")
    url = reverse("web:invoice_send", args=[world.issued.pk])
    bad = client.post(url, {"to": "pas-une-adresse"})
    assert bad.status_code == 200
    assert 'id="id_to-error"' in text(bad)
    data = {"to": "client@example.com", "cc": "", "request_key": "k1"}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302  # a double-click: one e-mail
    emails = OutboxEmail.objects.filter(subject_id=world.issued.pk)
    assert emails.count() == 1
    assert emails.get().to == ["client@example.com"]
    assert Invoice.objects.get(pk=world.issued.pk).status == Status.SENT


# --- organization --------------------------------------------------------------------------


def settings_post(org: Organization, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {f: getattr(org, f) for f in orgs.IDENTITY_FIELDS}
    data.update(
        section="identity", smtp_password="", late_penalty_rate="", smtp_port=org.smtp_port or ""
    )
    data.update(changes)
    return {k: ("on" if v is True else v) for k, v in data.items() if v is not False}


def test_settings_identity_logo_and_numbering(world: World) -> None:
    client = client_for("owner-a@example.com")
    url = reverse("web:org_settings")
    bad = client.post(url, settings_post(world.org_a, siren="123456789"))
    assert 'id="id_siren-error"' in text(bad)
    too_big = io.BytesIO(PNG_1PX + b"\0" * (1024 * 1024))
    too_big.name = "logo.png"
    response = client.post(url, {**settings_post(world.org_a), "logo": too_big})
    assert "Le logo dépasse 1 Mo." in text(response)
    svg = io.BytesIO(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    svg.name = "logo.svg"
    response = client.post(url, {**settings_post(world.org_a), "logo": svg})
    assert "Ce SVG contient des scripts" in text(response)
    fake = io.BytesIO(b"GIF89a not really")
    fake.name = "logo.png"
    assert "PNG, JPEG ou SVG" in text(
        client.post(url, {**settings_post(world.org_a), "logo": fake})
    )
    logo = io.BytesIO(PNG_1PX)
    logo.name = "logo.png"
    saved = client.post(
        url,
        {
            **settings_post(
                world.org_a, accent_color="#aa3300", late_penalty_rate="12,5", vat_on_debits=True
            ),
            "logo": logo,
        },
    )
    assert saved.status_code == 302, text(saved)
    org = Organization.objects.get(pk=world.org_a.pk)
    assert (org.accent_color, org.late_penalty_rate, org.vat_on_debits) == (
        "#aa3300",
        Decimal("12.5"),
        True,
    )
    assert org.logo_mime == "image/png"
    served = client.get(reverse("web:org_logo"))
    assert served.content == PNG_1PX
    assert served["Content-Type"] == "image/png"
    example = client.get(
        reverse("web:numbering_example"),
        {"kind": "invoice", "invoice-pattern": "F-{YYYY}-{seq:03}", "invoice-reset": "yearly"},
    )
    assert re.search(r"F-\d{4}-002", text(example))  # one invoice issued this year already
    no_seq = client.get(
        reverse("web:numbering_example"),
        {"kind": "credit_note", "credit_note-pattern": "AV", "credit_note-reset": "never"},
    )
    assert "doit contenir {seq}" in text(no_seq)
    numbering = {"section": "numbering"}
    for kind, pattern in (
        ("invoice", "F-{YYYY}-{seq:04}"),
        ("credit_note", "AV-{YYYY}-{seq:05}"),
        ("deposit", "AC"),
    ):
        numbering.update({f"{kind}-pattern": pattern, f"{kind}-reset": "yearly"})
    refused = client.post(url, numbering)
    assert "doit contenir {seq}" in text(refused)
    assert NumberingSeries.objects.get(organization=world.org_a, kind="invoice").pattern == (
        "FA-{YYYY}-{seq:05}"
    )  # all or nothing
    numbering["deposit-pattern"] = "AC-{YYYY}-{seq:05}"
    assert client.post(url, numbering).status_code == 302
    assert NumberingSeries.objects.get(organization=world.org_a, kind="invoice").pattern == (
        "F-{YYYY}-{seq:04}"
    )


def test_members_add_change_role_and_remove(world: World) -> None:
    client = client_for("owner-a@example.com")
    url = reverse("web:members")
    missing_password = client.post(url, {"email": "new@example.com", "role": "accountant"})
    assert "Un mot de passe est nécessaire pour un nouvel utilisateur." in text(missing_password)
    added = client.post(
        url,
        {"email": "new@example.com", "role": "accountant", "password": "correct-horse-battery-9"},
    )
    assert added.status_code == 302
    member = Membership.objects.get(organization=world.org_a, user__email="new@example.com")
    assert member.role == Role.ACCOUNTANT
    client.post(reverse("web:member_role", args=[member.pk]), {f"m{member.pk}-role": "sales"})
    member.refresh_from_db()
    assert member.role == Role.SALES
    owner = Membership.objects.get(organization=world.org_a, user__email="owner-a@example.com")
    last = client.post(
        reverse("web:member_role", args=[owner.pk]), {f"m{owner.pk}-role": "admin"}, follow=True
    )
    assert "au moins un propriétaire" in text(last)
    assert Membership.objects.get(pk=owner.pk).role == Role.OWNER
    removed = client.post(reverse("web:member_remove", args=[member.pk]))
    assert removed.status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_admin_is_read_only(world: World) -> None:
    User.objects.filter(email="owner-a@example.com").update(is_staff=True)
    client = client_for("owner-a@example.com")
    listing = client.get("/admin/invoicing/invoice/")
    assert listing.status_code == 200
    assert world.issued.number is not None
    assert world.issued.number in text(listing)
    change = client.get(f"/admin/invoicing/invoice/{world.issued.pk}/change/")
    assert change.status_code == 200
    assert 'name="_save"' not in text(change)
    post = client.post(f"/admin/invoicing/invoice/{world.issued.pk}/change/", {"reason": "x"})
    assert post.status_code == 403
    assert (
        client.post(
            f"/admin/invoicing/invoice/{world.issued.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    # another organization's invoice is not visible to this owner
    other = invoicing.create_draft(world.ctx_b, make_customer(world.ctx_b).id, lines(1))
    assert client.get(f"/admin/invoicing/invoice/{other.pk}/change/").status_code == 302


def test_editor_sets_payment_terms_and_refuses_backdating(world: World) -> None:
    from facturo.core.terms import end_of_month

    client = client_for("owner-a@example.com")
    client.post(
        reverse("web:invoice_create"),
        editor_post(
            world.customer,
            TWO_LINES,
            action="issue",
            payment_terms_kind="end_of_month_plus",
            payment_terms_days="10",
        ),
        follow=True,
    )
    invoice = Invoice.objects.filter(organization=world.org_a).order_by("-created_at").first()
    assert invoice is not None
    assert invoice.issue_date is not None
    assert invoice.due_date == end_of_month(invoice.issue_date) + dt.timedelta(days=10)
    # A date before the last issued invoice of the series is refused, with the reason shown.
    response = client.post(
        reverse("web:invoice_create"),
        editor_post(
            world.customer,
            TWO_LINES,
            action="issue",
            issue_date=str(invoice.issue_date - dt.timedelta(days=30)),
        ),
        follow=True,
    )
    assert "un nouveau ne peut pas être daté plus tôt" in text(response)
    latest = Invoice.objects.filter(organization=world.org_a).order_by("-created_at").first()
    assert latest is not None
    assert latest.status == Status.DRAFT
