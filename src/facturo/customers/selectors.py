from __future__ import annotations

from django.db.models import Q, QuerySet

from facturo.organizations.context import Ctx, Perm

from .models import Customer


def customers(ctx: Ctx, search: str = "", include_archived: bool = False) -> QuerySet[Customer]:
    ctx.require(Perm.VIEW)
    qs = Customer.objects.filter(organization=ctx.organization)
    if not include_archived:
        qs = qs.filter(archived=False)
    if search:
        qs = qs.filter(
            Q(name__icontains=search) | Q(email__icontains=search) | Q(siren__startswith=search)
        )
    return qs.order_by("name")
