"""Django admin: a read-only window on the data, for owners (and superusers).

Every write goes through a service (permissions, validation, audit, hash chain), so the admin
never adds, changes or deletes: issued invoices in particular have no change or delete
permission here (the database triggers refuse it anyway). A staff user who is not a superuser
sees only the organizations they own. Reaching /admin/ needs ``is_staff`` (Django's rule).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from facturo.audit.models import AuditEvent
from facturo.catalog.models import Product
from facturo.customers.models import Customer
from facturo.invoicing.models import Invoice, InvoiceLine
from facturo.organizations.models import Membership, NumberingSeries, Organization, Role


def _owned_organization_ids(request: HttpRequest) -> list[Any]:
    if request.user.pk is None:
        return []
    return list(
        Membership.objects.filter(
            user_id=str(request.user.pk), role=Role.OWNER, user__is_active=True
        ).values_list("organization_id", flat=True)
    )


class OwnerReadOnlyAdmin(admin.ModelAdmin):
    """View permission for superusers and owners (their organizations only); nothing else."""

    organization_lookup = "organization_id__in"

    def _allowed(self, request: HttpRequest) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        return bool(user.is_superuser or _owned_organization_ids(request))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{self.organization_lookup: _owned_organization_ids(request)})


class OrganizationAdmin(OwnerReadOnlyAdmin):
    organization_lookup = "id__in"
    list_display = ("name", "legal_name", "siren", "vat_number", "city", "created_at")
    search_fields = ("name", "legal_name", "siren")
    exclude = ("smtp_password", "logo")


class MembershipAdmin(OwnerReadOnlyAdmin):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role",)


class NumberingSeriesAdmin(OwnerReadOnlyAdmin):
    list_display = ("organization", "kind", "pattern", "reset", "issued_count", "last_issue_date")


class CustomerAdmin(OwnerReadOnlyAdmin):
    list_display = ("name", "organization", "siren", "city", "email", "archived")
    search_fields = ("name", "siren", "email")
    list_filter = ("archived", "kind")


class ProductAdmin(OwnerReadOnlyAdmin):
    list_display = ("name", "code", "organization", "unit_price", "vat_rate", "archived")
    search_fields = ("name", "code")


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fk_name = "invoice"
    extra = 0
    can_delete = False
    fields = (
        "position",
        "description",
        "quantity",
        "unit_code",
        "unit_price",
        "discount_percent",
        "vat_category",
        "vat_rate",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class InvoiceAdmin(OwnerReadOnlyAdmin):
    list_display = (
        "__str__",
        "organization",
        "kind",
        "status",
        "customer",
        "issue_date",
        "total_incl_vat",
    )
    list_filter = ("status", "kind")
    search_fields = ("number", "customer__name")
    exclude = ("snapshot",)
    inlines = (InvoiceLineInline,)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # issued invoices are immutable; drafts change through the web UI

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditEventAdmin(OwnerReadOnlyAdmin):
    list_display = ("at", "organization_id", "actor_label", "action", "object_type", "object_id")
    list_filter = ("action",)


REGISTRY: tuple[tuple[type[Model], type[admin.ModelAdmin]], ...] = (
    (Organization, OrganizationAdmin),
    (Membership, MembershipAdmin),
    (NumberingSeries, NumberingSeriesAdmin),
    (Customer, CustomerAdmin),
    (Product, ProductAdmin),
    (Invoice, InvoiceAdmin),
    (AuditEvent, AuditEventAdmin),
)
for model, model_admin in REGISTRY:
    # An app that registers its own admin first keeps it.
    if not admin.site.is_registered(model):
        admin.site.register(model, model_admin)
