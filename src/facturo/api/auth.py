"""Bearer-token authentication: ``Authorization: Bearer fct_…`` → the member's ``Ctx``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from facturo.organizations.context import Ctx
from facturo.organizations.services import authenticate_token

MAX_TOKEN_LENGTH = 200  # real tokens are ~60 characters; refuse to hash megabytes
_CACHE_ATTR = "_facturo_api_ctx"


def _raw_token(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token


def request_ctx(request: HttpRequest) -> Ctx | None:
    """The acting context of the request's token (None when absent or invalid).

    Cached on the request: the idempotency layer needs the organization before django-ninja
    runs its own authentication, and the token is looked up only once.
    """
    if hasattr(request, _CACHE_ATTR):
        cached: Ctx | None = getattr(request, _CACHE_ATTR)
        return cached
    raw = _raw_token(request)
    ctx = authenticate_token(raw, ip=request.META.get("REMOTE_ADDR")) if raw else None
    setattr(request, _CACHE_ATTR, ctx)
    return ctx


class BearerAuth(HttpBearer):
    """API tokens are created per member (``create_api_token``); the token acts with that
    member's role in that member's organization. No session and no CSRF token are needed."""

    def authenticate(self, request: HttpRequest, token: str) -> Ctx | None:
        return request_ctx(request)


def ctx_of(request: Any) -> Ctx:
    """The ``Ctx`` django-ninja stored after authentication (every route requires it)."""
    ctx = request.auth
    assert isinstance(ctx, Ctx)
    return ctx
