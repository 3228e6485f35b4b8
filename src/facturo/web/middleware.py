"""The organization a signed-in user is working in.

It is kept in the session, checked against the user's memberships on every request (a
membership removed a second ago no longer gives access) and falls back to the user's first
organization. Views resolve it lazily through :func:`resolve_context` (the ``member_view``
decorator does), so nothing here needs to be listed in ``MIDDLEWARE``.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.db.models import QuerySet
from django.http import HttpRequest

from facturo.accounts.models import User
from facturo.core.errors import NotFound
from facturo.organizations import services as organizations
from facturo.organizations.context import Ctx
from facturo.organizations.models import Membership

SESSION_KEY = "facturo.organization_id"
_CACHE = "_facturo_ctx"


def client_ip(request: HttpRequest) -> str | None:
    # Only the socket address: X-Forwarded-For is trivially forged unless a proxy is trusted.
    return request.META.get("REMOTE_ADDR") or None


def memberships_of(user: Any) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user, user__is_active=True)
        .select_related("organization")
        .order_by("organization__name", "organization_id")
    )


def _remember(request: HttpRequest, ctx: Ctx | None) -> Ctx | None:
    setattr(request, _CACHE, ctx)
    # Read by the template context processor ``facturo.web.context.organization``.
    setattr(request, "organization", ctx.organization if ctx else None)  # noqa: B010
    setattr(request, "role", ctx.role if ctx else None)  # noqa: B010
    return ctx


def resolve_context(request: HttpRequest) -> Ctx | None:
    """The acting context of the signed-in user, or None (anonymous, or no membership)."""
    if hasattr(request, _CACHE):
        return cast(Ctx | None, getattr(request, _CACHE))
    if not request.user.is_authenticated:
        return _remember(request, None)
    user = cast(User, request.user)
    ip = client_ip(request)
    wanted = request.session.get(SESSION_KEY)
    if wanted:
        try:
            return _remember(request, organizations.context_for(user, uuid.UUID(wanted), ip))
        except (NotFound, ValueError, TypeError, AttributeError):
            request.session.pop(SESSION_KEY, None)
    first = memberships_of(user).first()
    if first is None:
        return _remember(request, None)
    request.session[SESSION_KEY] = str(first.organization_id)
    return _remember(request, organizations.context_for(user, first.organization_id, ip))


def switch_organization(request: HttpRequest, organization_id: str) -> bool:
    """Work in another organization of the user's; False (and no change) if not a member."""
    if not request.user.is_authenticated:
        return False
    try:
        wanted = uuid.UUID(str(organization_id))
    except ValueError:
        return False
    user = cast(User, request.user)
    try:
        ctx = organizations.context_for(user, wanted, client_ip(request))
    except NotFound:
        return False
    request.session[SESSION_KEY] = str(wanted)
    _remember(request, ctx)
    return True
