"""What every page shares: membership check, roles, business errors, money display."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from typing import Any, Concatenate, ParamSpec

from babel.numbers import format_currency, format_decimal
from django import forms
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as Forbidden
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render
from django.utils.translation import get_language, gettext

from facturo.core.errors import BusinessError, NotFound, PermissionDenied
from facturo.organizations.context import Ctx, Perm
from facturo.web.middleware import memberships_of, resolve_context

P = ParamSpec("P")
OrgView = Callable[Concatenate[HttpRequest, Ctx, P], HttpResponse]
PAGE_SIZE = 50


def member_view(
    *,
    get: Perm | None = Perm.VIEW,
    post: Perm | None = None,
    methods: tuple[str, ...] = ("GET", "POST"),
) -> Callable[[OrgView[P]], Callable[Concatenate[HttpRequest, P], HttpResponse]]:
    """Signed in, member of the current organization, role allowed for the method.

    Objects are looked up by the services and selectors within ``ctx.organization``: another
    organization's object is a 404, a role without the permission a 403.
    """

    def decorate(view: OrgView[P]) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if request.method not in methods:
                return HttpResponseNotAllowed(methods)
            ctx = resolve_context(request)
            if ctx is None:
                return render(request, "web/no_organization.html", status=403)
            needed = post if request.method == "POST" else get
            if needed is not None and not ctx.can(needed):
                raise Forbidden(gettext("Your role does not allow this action."))
            try:
                return view(request, ctx, *args, **kwargs)
            except NotFound as err:
                raise Http404(message_of(err)) from err
            except PermissionDenied as err:
                raise Forbidden(message_of(err)) from err

        return wrapper

    return decorate


def page(
    request: HttpRequest,
    ctx: Ctx,
    template: str,
    context: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    data: dict[str, Any] = {
        "ctx": ctx,
        "can": {perm.value: ctx.can(perm) for perm in Perm},
        "memberships": list(memberships_of(request.user)),
    }
    data.update(context or {})
    return render(request, template, data, status=status)


def is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def paginate(request: HttpRequest, qs: QuerySet[Any]) -> Page[Any]:
    return Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))


# --- business errors -----------------------------------------------------------------------


def message_of(err: BusinessError) -> str:
    """The error in the user's language: the service's English template, translated."""
    params = dict(err.params)
    cause = err.__cause__
    if isinstance(cause, BusinessError) and "error" in params:
        params["error"] = message_of(cause)
    template = gettext(err.message_template)
    if not params:
        return template
    try:
        return template % params
    except (KeyError, ValueError, TypeError):
        return err.message


def place_line_error(err: BusinessError, rows: Sequence[Any], keys: Collection[str]) -> bool:
    """Put an error about ``lines.N.field`` beside that field of editor row N (rows have an
    ``errors`` dict; unknown fields go to the description); False if not about a line."""
    parts = (err.field or "").split(".")
    if parts[0] != "lines" or len(parts) < 2 or not parts[1].isdigit():
        return False
    position = int(parts[1])
    if not 1 <= position <= len(rows):
        return False
    name = parts[2] if len(parts) > 2 else "description"
    name = "product" if name == "product_id" else name
    rows[position - 1].errors[name if name in keys else "description"] = message_of(err)
    return True


def attach_error(
    form: forms.Form, err: BusinessError, aliases: dict[str, str] | None = None
) -> None:
    """Show a service error beside the field it names (or above the form)."""
    field = (aliases or {}).get(err.field or "", err.field)
    if field and field in form.fields:
        form.add_error(field, message_of(err))
    else:
        form.add_error(None, message_of(err))


# --- display -------------------------------------------------------------------------------


def babel_locale() -> str:
    return "fr_FR" if (get_language() or "fr").startswith("fr") else "en_GB"


class Amount:
    """An amount shown in the active language (formatting only; never computed here)."""

    def __init__(self, value: Decimal | None, currency: str) -> None:
        self.value, self.currency = value, currency

    def __str__(self) -> str:
        if self.value is None:
            return "—"
        return format_currency(self.value, self.currency, locale=babel_locale())

    @property
    def is_negative(self) -> bool:
        return self.value is not None and self.value < 0


def plain(value: Decimal | None) -> str:
    """A decimal as typed in a form: no exponent, no trailing zeros (20.0000 → 20)."""
    if value is None:
        return ""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def percent(value: Decimal | None) -> str:
    if value is None:
        return ""
    return f"{format_decimal(Decimal(plain(value)), locale=babel_locale())} %"
