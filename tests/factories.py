"""Builders for test data, going through the real services."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from facturo.accounts.models import User
from facturo.audit.services import Actor
from facturo.customers import services as customers
from facturo.customers.models import Customer
from facturo.organizations import services as orgs
from facturo.organizations.context import Ctx
from facturo.organizations.models import Organization

ORG_IDENTITY: dict[str, Any] = {
    "name": "Atelier Lumière",
    "legal_name": "Atelier Numérique Lumière",
    "legal_form": "SAS",
    "share_capital": "10 000 €",
    "siren": "732829320",
    "siret": "73282932000074",
    "vat_number": "FR44732829320",
    "rcs": "RCS Lyon 732 829 320",
    "address_line1": "12 rue de la République",
    "postcode": "69002",
    "city": "Lyon",
    "email": "facturation@atelier-lumiere.example",
    "iban": "FR7630006000011234567890189",
    "bic": "AGRIFRPP",
}


def make_org(email: str = "owner@example.com", **identity: Any) -> tuple[Organization, Ctx]:
    user = User.objects.filter(email=email).first() or User.objects.create_user(email, "pw-1234-x")
    org = orgs.create_organization(user, **{**ORG_IDENTITY, **identity})
    return org, orgs.context_for(user, org.id, ip="127.0.0.1")


def make_customer(ctx: Ctx, **data: Any) -> Customer:
    defaults: dict[str, Any] = {
        "name": "Boulangerie Martin SARL",
        "siren": "552100554",
        "vat_number": "FR96552100554",
        "address_line1": "4 place du Marché",
        "postcode": "33000",
        "city": "Bordeaux",
        "email": "compta@boulangerie-martin.example",
    }
    return customers.create_customer(ctx, **{**defaults, **data})


def lines(n: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "description": f"Prestation {i + 1}",
            "quantity": Decimal(i + 1),
            "unit_price": Decimal("99.99") + i,
            "vat_rate": Decimal(20),
            "vat_category": "S",
        }
        for i in range(n)
    ]


SYSTEM = Actor()
