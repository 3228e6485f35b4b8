"""Organizations, members, numbering series and API tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

from django.utils import timezone

from facturo.accounts.models import User
from facturo.audit import services as audit
from facturo.audit.services import Actor
from facturo.core.errors import BusinessError, NotFound, _
from facturo.core.money import check_currency
from facturo.core.numbering import Reset, check_pattern
from facturo.core.terms import PaymentTerms, TermsKind
from facturo.core.text import clean_text
from facturo.foundation.db import atomic

from . import identifiers as ids
from .context import Ctx, Perm
from .models import ApiToken, DocumentKind, Membership, NumberingSeries, Organization, Role

DEFAULT_PATTERNS = {
    DocumentKind.INVOICE: "FA-{YYYY}-{seq:05}",
    DocumentKind.CREDIT_NOTE: "AV-{YYYY}-{seq:05}",
    DocumentKind.DEPOSIT: "AC-{YYYY}-{seq:05}",
}
IDENTITY_FIELDS = (
    "name",
    "legal_name",
    "legal_form",
    "share_capital",
    "siren",
    "siret",
    "vat_number",
    "rcs",
    "address_line1",
    "address_line2",
    "postcode",
    "city",
    "country_code",
    "email",
    "phone",
    "iban",
    "bic",
    "accent_color",
    "currency",
    "default_language",
    "time_zone",
    "payment_terms_kind",
    "payment_terms_days",
    "late_penalty_rate",
    "early_payment_discount",
    "vat_regime",
    "vat_on_debits",
    "smtp_host",
    "smtp_port",
    "smtp_user",
    "smtp_password",
    "smtp_starttls",
    "email_from",
    "accounting_copy_email",
)


def _snapshot(org: Organization) -> dict[str, Any]:
    data = {f: getattr(org, f) for f in IDENTITY_FIELDS}
    data["smtp_password"] = "***" if org.smtp_password else ""
    return data


ORG_TEXT = (
    "name",
    "legal_name",
    "legal_form",
    "share_capital",
    "rcs",
    "address_line1",
    "address_line2",
    "postcode",
    "city",
    "early_payment_discount",
)


def _clean_identity(data: dict[str, Any]) -> dict[str, Any]:
    cleaned = dict(data)
    for key in ORG_TEXT:
        if key in cleaned:
            limit = getattr(Organization._meta.get_field(key), "max_length", None)
            cleaned[key] = clean_text(cleaned[key], key, max_length=limit)
    cleaned["siren"] = ids.clean_siren(data.get("siren", ""))
    cleaned["siret"] = ids.clean_siret(data.get("siret", ""))
    ids.check_siret_matches(cleaned["siren"], cleaned["siret"])
    cleaned["vat_number"] = ids.clean_vat_number(data.get("vat_number", ""))
    cleaned["iban"] = ids.clean_iban(data.get("iban", ""))
    cleaned["bic"] = ids.clean_bic(data.get("bic", ""))
    if "currency" in data:
        check_currency(data["currency"])
    if "payment_terms_kind" in data or "payment_terms_days" in data:
        PaymentTerms(
            TermsKind(data.get("payment_terms_kind", TermsKind.NET)),
            int(data.get("payment_terms_days", 30)),
        )
    for required in ("name", "legal_name", "address_line1", "postcode", "city"):
        if required in data and not str(data[required]).strip():
            raise BusinessError(
                "organization.required", _("This field is required."), field=required
            )
    return cleaned


def create_organization(owner: User, actor: Actor | None = None, **data: Any) -> Organization:
    """Create a company with its owner and the default invoice/credit-note/deposit series."""
    data.setdefault("legal_name", data.get("name", ""))
    cleaned = _clean_identity(data)
    with atomic():
        org = Organization.objects.create(**cleaned)
        Membership.objects.create(user=owner, organization=org, role=Role.OWNER)
        _grant_admin(owner)
        for kind, pattern in DEFAULT_PATTERNS.items():
            NumberingSeries.objects.create(
                organization=org,
                kind=kind,
                name=str(kind.label),
                pattern=pattern,
                reset=Reset.YEARLY,
                is_default=True,
            )
        audit.record(
            org.id,
            actor or Actor(str(owner.pk), owner.email),
            "organization.created",
            org,
            after=_snapshot(org),
        )
    return org


def _grant_admin(user: User) -> None:
    """Owners may open the (read-only, organization-scoped) Django admin, which needs is_staff;
    what they see there is limited to the organizations they own (facturo.web.admin)."""
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])


def update_organization(ctx: Ctx, **data: Any) -> Organization:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    with atomic():
        org = Organization.objects.select_for_update().get(pk=ctx.organization.pk)
        before = _snapshot(org)
        merged = {f: getattr(org, f) for f in IDENTITY_FIELDS}
        merged.update({k: v for k, v in data.items() if k in IDENTITY_FIELDS})
        cleaned = _clean_identity(merged)
        for key, value in cleaned.items():
            setattr(org, key, value)
        if "logo" in data:
            org.logo, org.logo_mime = data["logo"], data.get("logo_mime", "")
        org.save()
        audit.record(
            org.id, ctx.actor, "organization.updated", org, before=before, after=_snapshot(org)
        )
    return org


def update_series(ctx: Ctx, kind: str, pattern: str, reset: str) -> NumberingSeries:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    check_pattern(pattern, Reset(reset))
    with atomic():
        series = NumberingSeries.objects.select_for_update().get(
            organization=ctx.organization, kind=kind, is_default=True
        )
        before = {"pattern": series.pattern, "reset": series.reset}
        if series.issued_count and Reset(reset) != Reset(series.reset):
            raise BusinessError(
                "numbering.reset_locked",
                _("Documents were already issued in this series: its reset rule cannot change."),
                field="reset",
            )
        series.pattern, series.reset = pattern, reset
        series.save(update_fields=["pattern", "reset"])
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "series.updated",
            series,
            before=before,
            after={"pattern": pattern, "reset": reset},
        )
    return series


def add_member(ctx: Ctx, email: str, role: str, password: str | None = None) -> Membership:
    ctx.require(Perm.MANAGE_MEMBERS)
    if role not in Role.values:
        raise BusinessError(
            "member.invalid_role", _("Unknown role “%(role)s”."), field="role", role=role
        )
    if role == Role.OWNER and ctx.role != Role.OWNER:
        raise BusinessError(
            "member.owner_only", _("Only an owner can add another owner."), field="role"
        )
    with atomic():
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(email, password)
        membership, created = Membership.objects.get_or_create(
            user=user, organization=ctx.organization, defaults={"role": role}
        )
        if role == Role.OWNER:
            _grant_admin(user)
        if not created:
            before = {"role": membership.role}
            _check_owner_change(ctx, membership, role)
            membership.role = role
            membership.save(update_fields=["role"])
        else:
            before = None
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "member.saved",
            membership,
            before=before,
            after={"email": user.email, "role": role},
        )
    return membership


def _check_owner_change(ctx: Ctx, membership: Membership, new_role: str | None) -> None:
    """Only owners change or remove owners, and an organization always keeps one owner."""
    if membership.role != Role.OWNER or new_role == Role.OWNER:
        return
    if ctx.role != Role.OWNER:
        raise BusinessError(
            "member.owner_only", _("Only an owner can change or remove an owner."), field="role"
        )
    owners = Membership.objects.select_for_update().filter(
        organization=ctx.organization, role=Role.OWNER
    )
    if owners.count() <= 1:
        raise BusinessError(
            "member.last_owner",
            _("The organization must keep at least one owner: make someone else owner first."),
            field="role",
        )


def remove_member(ctx: Ctx, membership_id: int) -> None:
    ctx.require(Perm.MANAGE_MEMBERS)
    with atomic():
        membership = Membership.objects.filter(
            pk=membership_id, organization=ctx.organization
        ).first()
        if membership is None:
            raise NotFound("member.not_found", _("No such member."))
        _check_owner_change(ctx, membership, None)
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "member.removed",
            membership,
            before={"email": membership.user.email, "role": membership.role},
        )
        membership.delete()


def context_for(user: User, organization_id: uuid.UUID | str, ip: str | None = None) -> Ctx:
    """The acting context of a user in an organization; NotFound if not a member."""
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=user, organization_id=organization_id, user__is_active=True)
        .first()
    )
    if membership is None:
        raise NotFound("organization.not_found", _("No such organization."))
    return Ctx(membership.organization, membership.role, Actor(str(user.pk), user.email, ip))


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_token(membership: Membership, name: str = "cli") -> str:
    """Return a new raw token ``fct_<prefix>_<secret>``; only its hash is stored."""
    prefix = secrets.token_hex(4)
    raw = f"fct_{prefix}_{secrets.token_urlsafe(32)}"
    with atomic():
        token = ApiToken.objects.create(
            membership=membership, name=name, prefix=prefix, token_hash=_hash_token(raw)
        )
        audit.record(
            membership.organization_id,
            Actor(str(membership.user_id), membership.user.email),
            "api_token.created",
            token,
            after={"name": name, "prefix": prefix},
        )
    return raw


def authenticate_token(raw: str, ip: str | None = None) -> Ctx | None:
    parts = raw.split("_")
    if len(parts) < 3 or parts[0] != "fct":
        return None
    token = (
        ApiToken.objects.select_related("membership__organization", "membership__user")
        .filter(prefix=parts[1], revoked_at__isnull=True)
        .first()
    )
    if token is None or not secrets.compare_digest(token.token_hash, _hash_token(raw)):
        return None
    user = token.membership.user
    if not user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 300:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return Ctx(
        token.membership.organization,
        token.membership.role,
        Actor(str(user.pk), f"{user.email} (API)", ip),
    )
