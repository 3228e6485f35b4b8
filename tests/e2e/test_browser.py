"""A real browser journey: log in, add a customer, write an invoice (totals update live),
issue it, download its PDF/A-3 and find the Factur-X XML inside; then the same pages on a
phone-sized screen."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from facturo.catalog import services as catalog
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice, Status
from tests.factories import lines, make_customer, make_org

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-1234-x"  # tests.factories.make_org
PHONE = {"width": 390, "height": 844}


def log_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")


def no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"{page.url}: {width}px wide in a {viewport}px viewport"


def totals(page: Any) -> str:
    return str(page.locator("[data-total=incl]").inner_text()).replace("\u202f", " ")


def test_invoice_journey(live_server: Any, browser: Any, screenshots: Path) -> None:
    make_org("e2e@example.com")
    base = live_server.url
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, base, "e2e@example.com")
    expect(page.get_by_text("Aucune facture pour l’instant — créez la première.")).to_be_visible()
    page.screenshot(path=str(screenshots / "dashboard-empty.png"), full_page=True)

    # a customer
    page.click("text=Ajouter un client")
    page.fill("#id_name", "Menuiserie Dubois")
    page.fill("#id_siren", "123456789")
    page.fill("#id_address_line1", "3 rue des Lilas")
    page.fill("#id_postcode", "75011")
    page.fill("#id_city", "Paris")
    page.fill("#id_email", "compta@dubois.example")
    page.click("button:has-text('Enregistrer')")
    expect(page.locator("#id_siren-error")).to_contain_text("n’est pas un SIREN valide")
    page.fill("#id_siren", "732829320")
    page.click("button:has-text('Enregistrer')")
    expect(page.locator("h1")).to_contain_text("Menuiserie Dubois")

    # an invoice with two lines; the totals follow what is typed
    page.click("text=Nouvelle facture")
    expect(page.locator("#id_customer")).to_have_value(re.compile(r".+"))
    page.fill("input[name=lines-0-description]", "Développement")
    page.fill("input[name=lines-0-quantity]", "2")
    page.fill("input[name=lines-0-unit_price]", "100")
    expect(page.locator("[data-total=incl]")).to_contain_text("240,00")
    page.click("#add-line")
    page.fill("input[name=lines-1-description]", "Formation")
    page.fill("input[name=lines-1-unit_price]", "50,50")
    page.fill("input[name=lines-1-vat_rate]", "10")
    expect(page.locator("[data-total=incl]")).to_contain_text("295,55")
    expect(page.locator("#net-1")).to_contain_text("50,50")
    assert "295,55" in totals(page)
    page.screenshot(path=str(screenshots / "editor-desktop.png"), full_page=True)

    # issue it (double-click safe), then download the PDF
    page.locator("button[value=issue]").dblclick()
    expect(page.locator(".message-success")).to_contain_text("Émise sous le numéro")
    issued = Invoice.objects.get(status=Status.ISSUED)
    assert issued.number is not None
    assert Invoice.objects.filter(status=Status.ISSUED).count() == 1
    assert issued.total_incl_vat is not None
    assert str(issued.total_incl_vat) in ("295.55", "295.550")
    expect(page.locator("h1")).to_contain_text(issued.number)
    page.screenshot(path=str(screenshots / "invoice-issued.png"), full_page=True)
    with page.expect_download() as download_info:
        page.click("text=Télécharger le PDF")
    download = download_info.value
    assert download.suggested_filename == f"{issued.number}.pdf"
    pdf = Path(download.path()).read_bytes()
    attachments = PdfReader(io.BytesIO(pdf)).attachments
    assert "factur-x.xml" in attachments
    assert issued.number.encode() in attachments["factur-x.xml"][0]

    # send it: the customer's address is already there
    page.click("summary:has-text('Envoyer par e-mail')")
    expect(page.locator("#id_to")).to_have_value("compta@dubois.example")
    page.screenshot(path=str(screenshots / "invoice-send.png"), full_page=True)
    page.click("button:has-text('Envoyer')")
    expect(page.locator(".message-success")).to_contain_text("compta@dubois.example")
    assert Invoice.objects.get(pk=issued.pk).status == Status.SENT
    context.close()


def test_phone_sized_pages(live_server: Any, browser: Any, screenshots: Path) -> None:
    _, ctx = make_org("phone@example.com")
    customer = make_customer(ctx)
    catalog.create_product(
        ctx,
        name="Forfait maintenance",
        unit_price="120",
        vat_rate="10",
        vat_category="S",
        unit_code="MON",
    )
    for n in range(3):
        draft = invoicing.create_draft(ctx, customer.id, lines(n + 1))
        if n:
            invoicing.issue_invoice(ctx, draft.id)
    base = live_server.url
    context = browser.new_context(
        locale="fr-FR", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    page = context.new_page()
    log_in(page, base, "phone@example.com")
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "phone-dashboard.png"), full_page=True)
    page.goto(f"{base}/invoices/")
    expect(page.locator("h1")).to_have_text("Factures")
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "phone-invoice-list.png"), full_page=True)
    page.goto(f"{base}/invoices/{draft.id}/")
    no_horizontal_scroll(page)
    page.click("summary:has-text('Créer un avoir')")
    page.click("text=Certaines lignes seulement")
    expect(page.locator(".partial-lines")).to_be_visible()
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "phone-invoice-issued.png"), full_page=True)
    page.goto(f"{base}/invoices/new/?customer={customer.id}")
    page.fill("input[name=lines-0-description]", "Réparation")
    page.fill("input[name=lines-0-unit_price]", "80")
    expect(page.locator("[data-total=incl]")).to_contain_text("96,00")
    page.click("#add-line")
    page.fill("input[name=lines-1-description]", "Déplacement")
    page.fill("input[name=lines-1-unit_price]", "25")
    expect(page.locator("[data-total=incl]")).to_contain_text("126,00")
    # the product picker fills the third line: 120 € at 10 % VAT, per month
    page.click("#add-line")
    page.select_option("select[name=lines-2-product]", label="Forfait maintenance")
    expect(page.locator("input[name=lines-2-description]")).to_have_value("Forfait maintenance")
    expect(page.locator("input[name=lines-2-unit_price]")).to_have_value("120")
    expect(page.locator("select[name=lines-2-unit_code]")).to_have_value("MON")
    expect(page.locator("[data-total=incl]")).to_contain_text("258,00")
    # removing a line updates the totals too
    page.locator("[data-line]").nth(1).locator(".remove-line").click()
    expect(page.locator("[data-total=incl]")).to_contain_text("228,00")
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "phone-invoice-editor.png"), full_page=True)
    page.goto(f"{base}/customers/new/")
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "phone-customer-form.png"), full_page=True)
    page.goto(f"{base}/settings/")
    no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "phone-settings.png"), full_page=True)
    page.screenshot(path=str(screenshots / "phone-settings-top.png"))
    page.locator("#numbering").scroll_into_view_if_needed()
    page.fill("input[name=invoice-pattern]", "F{YY}{MM}-{seq:03}")
    page.select_option("select[name=invoice-reset]", "monthly")
    expect(page.locator("#example-invoice")).to_contain_text("-001")
    page.screenshot(path=str(screenshots / "phone-settings-numbering.png"))
    context.close()


def test_issue_selected_drafts(live_server: Any, browser: Any, screenshots: Path) -> None:
    _, ctx = make_org("bulk@example.com")
    customer = make_customer(ctx, name="Atelier Martin")
    drafts = [invoicing.create_draft(ctx, customer.id, lines(n)) for n in (1, 2, 3)]
    base = live_server.url
    for name, viewport in (("desktop", {"width": 1280, "height": 900}), ("phone", PHONE)):
        context = browser.new_context(locale="fr-FR", viewport=viewport)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        log_in(page, base, "bulk@example.com")
        page.goto(f"{base}/invoices/?status=draft")
        if name == "phone":
            no_horizontal_scroll(page)
            page.screenshot(path=str(screenshots / "phone-drafts-selectable.png"), full_page=True)
            context.close()
            continue
        expect(page.get_by_text("Cochez des brouillons pour les émettre ensemble")).to_be_visible()
        page.check(f"input[name=ids][value='{drafts[2].id}']")
        page.check(f"input[name=ids][value='{drafts[0].id}']")
        page.screenshot(path=str(screenshots / "drafts-selected.png"), full_page=True)
        page.click("button:has-text('Émettre les brouillons sélectionnés')")
        expect(page.locator("main")).to_contain_text("2 factures émises")
        page.screenshot(path=str(screenshots / "drafts-issued.png"), full_page=True)
        # the issued invoice's page: disable the portal links sent in reminders
        page.click(f"table a:has-text('FA-{drafts[0].created_at:%Y}-00002')")
        page.click("summary:has-text('Liens de l’espace client')")
        page.screenshot(path=str(screenshots / "invoice-portal-links.png"), full_page=True)
        page.click("button:has-text('Désactiver les liens envoyés')")
        expect(page.locator("main")).to_contain_text("ne l’ouvrent plus")
        context.close()
    issued = {i.id: i for i in Invoice.objects.filter(status=Status.ISSUED)}
    assert set(issued) == {drafts[0].id, drafts[2].id}  # the list's order: newest first
    assert Invoice.objects.get(pk=drafts[1].id).status == Status.DRAFT
