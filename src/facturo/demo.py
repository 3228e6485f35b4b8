"""A realistic demo company: customers, catalog, issued invoices, a credit note, a deposit,
and drafts. Loaded by ``facturo demo``; loading twice does nothing the second time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from facturo.accounts.models import User
from facturo.catalog import services as catalog
from facturo.customers import services as customers
from facturo.invoicing import services as invoicing
from facturo.organizations import services as orgs
from facturo.organizations.context import Ctx
from facturo.organizations.models import Membership, Organization, Role

DEMO_EMAIL = "demo@facturo.example"
DEMO_PASSWORD = "demo-facturo-2026"  # noqa: S105 - printed on purpose for the local demo
LOGO_SVG = b"""<svg xmlns="http://www.w3.org/2000/svg" width="240" height="64" viewBox="0 0 240 64">
<rect width="64" height="64" rx="14" fill="#1f4e79"/><circle cx="32" cy="28" r="13" fill="#f5c542"/>
<rect x="26" y="43" width="12" height="8" rx="2" fill="#f5c542"/>
<text x="76" y="30" font-family="sans-serif" font-size="20" font-weight="700" fill="#1f4e79">Atelier</text>
<text x="76" y="54" font-family="sans-serif" font-size="20" fill="#1f4e79">Lumi\xc3\xa8re</text></svg>"""

CUSTOMERS: list[dict[str, str | int]] = [
    {
        "name": "Boulangerie Martin SARL",
        "siren": "552100554",
        "vat_number": "FR96552100554",
        "address_line1": "4 place du Marché",
        "postcode": "33000",
        "city": "Bordeaux",
        "email": "compta@boulangerie-martin.example",
        "accounting_email": "cabinet@expert.example",
    },
    {
        "name": "Cabinet Dupont Avocats",
        "siren": "732829320",
        "vat_number": "FR44732829320",
        "address_line1": "18 cours Mirabeau",
        "postcode": "13100",
        "city": "Aix-en-Provence",
        "email": "secretariat@dupont-avocats.example",
        "payment_terms_kind": "end_of_month_plus",
        "payment_terms_days": 15,
    },
    {
        "name": "Claire Moreau",
        "kind": "person",
        "address_line1": "7 rue des Lilas",
        "postcode": "75011",
        "city": "Paris",
        "email": "claire.moreau@example.org",
    },
    {
        "name": "Müller Digital GmbH",
        "vat_number": "DE136695976",
        "country_code": "DE",
        "address_line1": "Friedrichstraße 123",
        "postcode": "10117",
        "city": "Berlin",
        "email": "rechnung@mueller-digital.example",
        "language": "en",
    },
    {
        "name": "Maple Bakery Inc.",
        "country_code": "CA",
        "address_line1": "200 Bay Street",
        "postcode": "M5J 2J2",
        "city": "Toronto",
        "email": "ap@maple.example",
        "language": "en",
    },
    {
        "name": "Librairie Le Passage",
        "siren": "419256359",
        "address_line1": "2 rue Sainte-Catherine",
        "postcode": "69001",
        "city": "Lyon",
        "email": "contact@le-passage.example",
        "delivery_line1": "Entrepôt, 45 avenue Berthelot",
        "delivery_postcode": "69007",
        "delivery_city": "Lyon",
        "delivery_country_code": "FR",
    },
]
PRODUCTS: list[dict[str, str]] = [
    {"code": "DEV-J", "name": "Développement web (jour)", "unit_code": "DAY", "unit_price": "650"},
    {"code": "MAINT", "name": "Maintenance mensuelle", "unit_code": "MON", "unit_price": "89.90"},
    {"code": "FORM-H", "name": "Formation (heure)", "unit_code": "HUR", "unit_price": "75"},
    {"code": "HEB", "name": "Hébergement annuel", "unit_code": "ANN", "unit_price": "119"},
    {"code": "SEO", "name": "Audit SEO", "unit_price": "480"},
    {
        "code": "LIVRE",
        "name": "Livre « Le Web pour les artisans »",
        "unit_price": "24.90",
        "vat_rate": "5.5",
        "nature": "goods",
    },
    {"code": "USB", "name": "Clé USB 64 Go", "unit_price": "15.99", "nature": "goods"},
    {"code": "REDAC", "name": "Rédaction de contenu (page)", "unit_price": "95"},
]


def load_demo(today: dt.date | None = None) -> tuple[Organization, bool]:
    """Create the demo company; return it and whether it was created now."""
    existing = Organization.objects.filter(memberships__user__email=DEMO_EMAIL).first()
    if existing:
        return existing, False
    today = today or timezone.localdate()
    user = User.objects.filter(email=DEMO_EMAIL).first() or User.objects.create_user(
        DEMO_EMAIL, DEMO_PASSWORD, full_name="Camille Demo"
    )
    org = orgs.create_organization(
        user,
        name="Atelier Lumière",
        legal_name="Atelier Numérique Lumière",
        legal_form="SAS",
        share_capital="10 000 €",
        siren="732829320",
        siret="73282932000074",
        vat_number="FR44732829320",
        rcs="RCS Lyon 732 829 320",
        address_line1="12 rue de la République",
        postcode="69002",
        city="Lyon",
        email="facturation@atelier-lumiere.example",
        phone="+33 4 72 00 00 00",
        iban="FR7630006000011234567890189",
        bic="AGRIFRPP",
    )
    ctx = orgs.context_for(user, org.id)
    orgs.update_organization(ctx, logo=LOGO_SVG, logo_mime="image/svg+xml")
    ctx = orgs.context_for(user, org.id)
    orgs.add_member(ctx, "comptable@facturo.example", Role.ACCOUNTANT, password=DEMO_PASSWORD)
    cs = [customers.create_customer(ctx, **c) for c in CUSTOMERS]
    ps = [catalog.create_product(ctx, **p) for p in PRODUCTS]
    # The books: calendar fiscal years (the entries are posted as documents are issued).
    from facturo.accounting import services as accounting

    for year in (today.year - 1, today.year):
        accounting.add_fiscal_year(ctx, dt.date(year, 1, 1), dt.date(year, 12, 31))

    def line(p: int, qty: str, **extra: str) -> dict[str, object]:
        return {"product_id": ps[p].id, "quantity": qty, **extra}

    start = today - dt.timedelta(days=75)
    plan = [
        (0, [line(0, "3"), line(3, "1"), line(5, "10")], {}),
        (1, [line(2, "6"), line(4, "1")], {"purchase_order": "BC-2026-118"}),
        (2, [line(1, "1")], {}),
        (
            5,
            [line(5, "40"), line(6, "25", discount_percent="10")],
            {"document_discount_percent": "5"},
        ),
        (0, [line(1, "1"), line(7, "4")], {}),
        (1, [line(0, "2")], {}),
    ]
    issued = []
    for i, (c, lines, header) in enumerate(plan):
        draft = invoicing.create_draft(ctx, cs[c].id, lines, **header)
        issued.append(
            invoicing.issue_invoice(ctx, draft.id, issue_date=start + dt.timedelta(days=9 * i))
        )
    # Reverse charge (EU B2B service) and export (outside the EU)
    rc = invoicing.create_draft(ctx, cs[3].id, [line(0, "5", vat_category="AE", vat_rate="0")])
    invoicing.issue_invoice(ctx, rc.id, issue_date=start + dt.timedelta(days=56))
    ex = invoicing.create_draft(ctx, cs[4].id, [line(4, "1", vat_category="G", vat_rate="0")])
    invoicing.issue_invoice(ctx, ex.id, issue_date=start + dt.timedelta(days=60))
    # A partial credit note on the first invoice
    invoicing.create_credit_note(
        ctx,
        issued[0].id,
        reason="Geste commercial : retard de livraison",
        issue=True,
        lines=[
            {
                "description": "Remise exceptionnelle",
                "quantity": "1",
                "unit_price": "150",
                "vat_rate": "20",
            }
        ],
    )
    # A deposit invoice, then the final invoice deducting it (left as a draft)
    deposit = invoicing.create_draft(
        ctx,
        cs[1].id,
        kind="deposit",
        lines=[
            {
                "description": "Acompte 30 % — refonte du site",
                "quantity": "1",
                "unit_price": "1950",
                "vat_rate": "20",
            }
        ],
    )
    deposit = invoicing.issue_invoice(ctx, deposit.id, issue_date=today - dt.timedelta(days=5))
    final = invoicing.create_draft(ctx, cs[1].id, [line(0, "10")], purchase_order="BC-2026-131")
    invoicing.deduct_deposit(ctx, final.id, deposit.id)
    invoicing.create_draft(ctx, cs[2].id, [line(2, "2"), line(5, "1")], free_text="Merci !")
    assert Membership.objects.filter(organization=org).count() == 2
    # A few active subscriptions (billed by `facturo billing run` / the daily job)
    from facturo.subscriptions import services as subscriptions

    monthly_start = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    subscriptions.create_subscription(
        ctx, cs[0].id, start_date=monthly_start, name="Maintenance du site",
        lines=[{"description": "Maintenance et hébergement", "unit_price": "89", "vat_rate": "20"}],
    )  # fmt: skip
    subscriptions.create_subscription(
        ctx, cs[1].id, start_date=monthly_start, name="Support trimestriel", unit="month",
        interval=3, lines=[{"description": "Support (forfait trimestriel)", "unit_price": "450",
                            "vat_rate": "20"}],
    )  # fmt: skip
    subscriptions.create_subscription(
        ctx, cs[2].id, start_date=monthly_start, name="Licence annuelle", unit="year",
        timing="advance", lines=[{"description": "Licence logicielle", "unit_price": "1200",
                                  "vat_rate": "20"}],
    )  # fmt: skip
    _demo_bank(ctx, org, issued, today)
    # Payment reminders: the standard policy (−3, +7, +15, +30 formal notice, +45
    # collection); the invoices issued 75–40 days ago are overdue. One is disputed, and
    # today's run is done so the history and the invoice timelines have something to show.
    from facturo.dunning import run as dunning_run
    from facturo.dunning import services as dunning

    dunning.create_default_policy(ctx)
    dunning.mark_disputed(ctx, issued[2].id, reason="Le client conteste la quantité livrée")
    dunning_run.run_organization(org, today)
    return org, True


def _demo_bank(ctx: Ctx, org: Organization, issued: list[Any], today: dt.date) -> None:
    """A bank account and one imported statement: two lines matched automatically (invoice
    number, RF reference), one waiting in the review queue (amount and a similar name), a
    bank fee booked by a rule, and a transfer nobody recognises."""
    from decimal import Decimal

    from facturo.banking import services as banking
    from facturo.banking.samples import SampleEntry, camt053
    from facturo.formats.sepa.reference import creditor_reference
    from facturo.payments.services import amount_due

    account = banking.create_account(
        ctx, name="Compte courant Crédit Agricole", iban=org.iban, bic=org.bic,
        journal_code="BQ1",
    )  # fmt: skip
    banking.create_rule(
        ctx, name="Frais bancaires", label_contains="FRAIS TENUE DE COMPTE", target_kind="fee",
        ledger_account="627", action="confirm",
    )  # fmt: skip
    day = today - dt.timedelta(days=3)
    due = [amount_due(inv) for inv in issued]
    entries = [
        SampleEntry(day, due[1], f"VIR SEPA FACTURE {issued[1].number}",
                    "CABINET DUPONT AVOCATS", bank_reference="DEMO-0001"),
        SampleEntry(day, due[3], "VIREMENT", "MULLER DIGITAL GMBH",
                    reference=creditor_reference(issued[3].number), bank_reference="DEMO-0002"),
        SampleEntry(day, due[5], "VIR DUPONT", "Cabinet Dupont", bank_reference="DEMO-0003"),
        SampleEntry(day, Decimal("-8.40"), "FRAIS TENUE DE COMPTE", bank_reference="DEMO-0004"),
        SampleEntry(day, Decimal("250.00"), "REMBOURSEMENT DEPOT DE GARANTIE",
                    "SCI LES TILLEULS", bank_reference="DEMO-0005"),
    ]  # fmt: skip
    data = camt053(org.iban, entries, opening=Decimal("12480.35"), statement_id="DEMO-RELEVE-1")
    banking.import_statement(ctx, data, "releve-demo.xml", account_id=account.pk)
