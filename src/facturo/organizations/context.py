"""Who acts, for which organization, with which role: passed to every service."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from enum import StrEnum

from facturo.audit.services import Actor
from facturo.core.errors import PermissionDenied, _

from .models import Organization, Role


class Perm(StrEnum):
    VIEW = "view"
    EDIT_CUSTOMERS = "edit_customers"
    EDIT_CATALOG = "edit_catalog"
    EDIT_INVOICES = "edit_invoices"
    ISSUE_INVOICES = "issue_invoices"
    SEND_INVOICES = "send_invoices"
    EXPORT = "export"
    MANAGE_ORGANIZATION = "manage_organization"
    MANAGE_MEMBERS = "manage_members"


_ALL = frozenset(Perm)
ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.OWNER: _ALL,
    Role.ADMIN: _ALL,
    Role.ACCOUNTANT: frozenset({Perm.VIEW, Perm.EXPORT, Perm.ISSUE_INVOICES, Perm.SEND_INVOICES}),
    Role.SALES: frozenset(
        {
            Perm.VIEW,
            Perm.EDIT_CUSTOMERS,
            Perm.EDIT_CATALOG,
            Perm.EDIT_INVOICES,
            Perm.ISSUE_INVOICES,
            Perm.SEND_INVOICES,
        }
    ),
    Role.READ_ONLY: frozenset({Perm.VIEW}),
}


@dataclass(frozen=True)
class Ctx:
    organization: Organization
    role: str
    actor: Actor

    def today(self) -> dt.date:
        """Today in the organization's time zone (invoice and payment dates are local)."""
        try:
            zone = zoneinfo.ZoneInfo(self.organization.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = zoneinfo.ZoneInfo("Europe/Paris")
        return dt.datetime.now(tz=zone).date()

    def can(self, perm: Perm) -> bool:
        return perm in ROLE_PERMISSIONS.get(self.role, frozenset())

    def require(self, perm: Perm) -> None:
        if not self.can(perm):
            raise PermissionDenied(
                "auth.forbidden",
                _("Your role (%(role)s) does not allow this action (%(perm)s)."),
                role=self.role,
                perm=perm.value,
            )
