from __future__ import annotations

from django.db.models import Q, QuerySet

from facturo.organizations.context import Ctx, Perm

from .models import Product


def products(ctx: Ctx, search: str = "", include_archived: bool = False) -> QuerySet[Product]:
    ctx.require(Perm.VIEW)
    qs = Product.objects.filter(organization=ctx.organization)
    if not include_archived:
        qs = qs.filter(archived=False)
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(code__icontains=search))
    return qs.order_by("name")
