"""Organization settings (identity, logo, numbering, terms, VAT, SMTP) and members."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _

from facturo.core import numbering
from facturo.core.errors import BusinessError, NotFound
from facturo.foundation.db import atomic
from facturo.organizations import services as organizations
from facturo.organizations.context import Ctx, Perm
from facturo.organizations.models import (
    DocumentKind,
    Membership,
    NumberingSeries,
    Role,
    SeriesCounter,
)
from facturo.organizations.services import IDENTITY_FIELDS
from facturo.web.forms import MemberForm, OrganizationForm, RoleForm, SeriesForm

from .base import attach_error, member_view, message_of, page, plain

KINDS = (DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE, DocumentKind.DEPOSIT)


def _series(ctx: Ctx) -> dict[str, NumberingSeries]:
    found = NumberingSeries.objects.filter(organization=ctx.organization, is_default=True)
    return {s.kind: s for s in found}


def _identity_initial(ctx: Ctx) -> dict[str, Any]:
    org = ctx.organization
    data: dict[str, Any] = {f: getattr(org, f) for f in IDENTITY_FIELDS}
    data["smtp_password"] = ""
    data["late_penalty_rate"] = plain(org.late_penalty_rate) if org.late_penalty_rate else ""
    return data


def _save_identity(request: HttpRequest, ctx: Ctx, form: OrganizationForm) -> bool:
    if not form.is_valid():
        return False
    cleaned = form.cleaned_data
    data = {k: v for k, v in cleaned.items() if k in IDENTITY_FIELDS}
    if not data.get("smtp_password"):
        data.pop("smtp_password", None)  # empty means "keep the current one"
    if cleaned.get("logo"):
        data["logo"], data["logo_mime"] = cleaned["logo"]
    elif cleaned.get("remove_logo"):
        data["logo"], data["logo_mime"] = None, ""
    try:
        organizations.update_organization(ctx, **data)
    except NotFound:
        raise
    except BusinessError as err:
        attach_error(form, err)
        return False
    return True


def _save_numbering(ctx: Ctx, forms: dict[str, SeriesForm]) -> bool:
    if not all(f.is_valid() for f in forms.values()):
        return False
    current = _series(ctx)
    try:
        with atomic():  # all three series or none
            for kind, form in forms.items():
                series = current.get(kind)
                pattern, reset = form.cleaned_data["pattern"], form.cleaned_data["reset"]
                if series and (series.pattern, series.reset) == (pattern, reset):
                    continue
                try:
                    organizations.update_series(ctx, kind, pattern, reset)
                except BusinessError as err:
                    attach_error(form, err)
                    raise
    except NotFound:
        raise
    except BusinessError:
        return False
    return True


def _example(series: NumberingSeries | None, pattern: str, reset: str) -> tuple[str, str]:
    """(next number with this pattern, error) — what the next document would be numbered."""
    today = timezone.localdate()
    try:
        numbering.check_pattern(pattern, numbering.Reset(reset))
    except BusinessError as err:
        return "", message_of(err)
    except ValueError:
        return "", _("Choose when the counter restarts.")
    seq = 1
    if series is not None and reset == series.reset:
        key = numbering.period_key(numbering.Reset(reset), today)
        counter = SeriesCounter.objects.filter(series=series, period_key=key).first()
        seq = (counter.last_value if counter else 0) + 1
    return numbering.format_number(pattern, today, seq), ""


@member_view(get=Perm.MANAGE_ORGANIZATION, post=Perm.MANAGE_ORGANIZATION)
def org_settings(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    section = request.POST.get("section", "") if request.method == "POST" else ""
    series = _series(ctx)
    identity = OrganizationForm(
        request.POST if section == "identity" else None,
        request.FILES if section == "identity" else None,
        initial=_identity_initial(ctx),
    )
    series_forms = {
        kind.value: SeriesForm(
            request.POST if section == "numbering" else None,
            prefix=kind.value,
            initial={"pattern": series[kind].pattern, "reset": series[kind].reset}
            if kind in series
            else {"reset": "yearly"},
        )
        for kind in KINDS
    }
    if section == "identity" and _save_identity(request, ctx, identity):
        messages.success(request, _("Settings saved."))
        return redirect("web:org_settings")
    if section == "numbering" and _save_numbering(ctx, series_forms):
        messages.success(request, _("Numbering saved."))
        return redirect("web:org_settings")
    numbering_rows = []
    for kind in KINDS:
        form = series_forms[kind.value]
        pattern = str(form["pattern"].value() or "")
        reset = str(form["reset"].value() or "yearly")
        example, problem = _example(series.get(kind), pattern, reset)
        numbering_rows.append({"kind": kind, "form": form, "example": example, "problem": problem})
    return page(
        request,
        ctx,
        "web/organization/settings.html",
        {
            "form": identity,
            "numbering": numbering_rows,
            "section": section,
            "has_logo": bool(ctx.organization.logo),
        },
    )


@member_view(get=Perm.MANAGE_ORGANIZATION, methods=("GET",))
def numbering_example(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    kind = request.GET.get("kind", "")
    if kind not in DocumentKind.values:
        raise Http404
    pattern = request.GET.get(f"{kind}-pattern", "")[:60]
    reset = request.GET.get(f"{kind}-reset", "yearly")
    example, problem = _example(_series(ctx).get(kind), pattern, reset)
    return page(
        request, ctx, "web/organization/_example.html", {"example": example, "problem": problem}
    )


@member_view(methods=("GET",))
def org_logo(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    org = ctx.organization
    if not org.logo:
        raise Http404
    response = HttpResponse(bytes(org.logo), content_type=org.logo_mime or "image/png")
    # An SVG opened on its own is a document: no script, no outside fetch, ever.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response["Cache-Control"] = "private, max-age=60"
    return response


# --- members -------------------------------------------------------------------------------


def _membership(ctx: Ctx, pk: int) -> Membership:
    membership = (
        Membership.objects.select_related("user")
        .filter(organization=ctx.organization, pk=pk)
        .first()
    )
    if membership is None:
        raise Http404
    return membership


@member_view(get=Perm.MANAGE_MEMBERS, post=Perm.MANAGE_MEMBERS)
def members(request: HttpRequest, ctx: Ctx) -> HttpResponse:
    from facturo.accounts.models import User

    form = MemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email, role = form.cleaned_data["email"], form.cleaned_data["role"]
        password = form.cleaned_data["password"] or None
        if password is None and not User.objects.filter(email__iexact=email).exists():
            form.add_error("password", _("A password is required for a new user."))
        else:
            try:
                organizations.add_member(ctx, email, role, password)
            except NotFound:
                raise
            except BusinessError as err:
                attach_error(form, err)
            else:
                messages.success(request, _("%(email)s is now a member.") % {"email": email})
                return redirect("web:members")
    memberships = (
        Membership.objects.filter(organization=ctx.organization)
        .select_related("user")
        .order_by("user__email")
    )
    return page(
        request,
        ctx,
        "web/organization/members.html",
        {
            "form": form,
            "rows": [
                (m, RoleForm(initial={"role": m.role}, prefix=f"m{m.pk}")) for m in memberships
            ],
            "roles": Role.choices,
        },
    )


@member_view(get=None, post=Perm.MANAGE_MEMBERS, methods=("POST",))
def member_role(request: HttpRequest, ctx: Ctx, pk: int) -> HttpResponse:
    membership = _membership(ctx, pk)
    form = RoleForm(request.POST, prefix=f"m{membership.pk}")
    if not form.is_valid():
        messages.error(request, _("Choose a role."))
        return redirect("web:members")
    role = form.cleaned_data["role"]
    # The owner rules (owners managed by owners, one owner kept) live in the service.
    try:
        organizations.add_member(ctx, membership.user.email, role)
    except NotFound:
        raise
    except BusinessError as err:
        messages.error(request, message_of(err))
    else:
        messages.success(request, _("Role saved."))
    return redirect("web:members")


@member_view(get=None, post=Perm.MANAGE_MEMBERS, methods=("POST",))
def member_remove(request: HttpRequest, ctx: Ctx, pk: int) -> HttpResponse:
    membership = _membership(ctx, pk)
    try:
        organizations.remove_member(ctx, membership.pk)
    except NotFound:
        raise
    except BusinessError as err:
        messages.error(request, message_of(err))
    else:
        messages.success(request, _("%(email)s was removed.") % {"email": membership.user.email})
    return redirect("web:members")
