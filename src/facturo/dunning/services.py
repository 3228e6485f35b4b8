"""Dunning policies, the human controls (pause, dispute, override, tasks), and template
checks. The run itself is in :mod:`facturo.dunning.run`.

Permissions: policies and their assignment are organization settings
(``manage_organization``); pausing, disputing, overriding a policy for one invoice and
closing tasks are part of chasing (``send_invoices``).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.utils import timezone

from facturo.audit import services as audit
from facturo.core import dunning as rules
from facturo.core import interest
from facturo.core.errors import BusinessError, ConflictError, NotFound, _
from facturo.core.text import clean_text
from facturo.customers.models import Customer, CustomerKind
from facturo.foundation.db import atomic
from facturo.invoicing.models import Invoice
from facturo.notifications.models import OutboxEmail
from facturo.organizations.context import Ctx, Perm
from facturo.organizations.models import Organization

from .models import (
    Channel,
    DunningPolicy,
    DunningStep,
    DunningTask,
    InterestRate,
    InvoiceDunning,
    MessageStatus,
    Pause,
    PolicyAssignment,
    Reminder,
    ReminderMessage,
    Segment,
)

OUTBOX_PREFIX = "dunning:"
BABEL_LOCALES = {"fr": "fr_FR", "en": "en_GB"}
LANGUAGES = ("fr", "en")
_SEPARATORS = re.compile(r"[,;\s]+")

# The variables a reminder template may use (``{{ name }}``), with what they hold.
VARIABLES: dict[str, str] = {
    "customer_name": _("the customer's name"),
    "organization_name": _("your company's name"),
    "invoice_number": _("number of the (first) invoice chased"),
    "invoice_list": _("the invoices chased, one per line: number, dates, amount due, days late"),
    "total_due": _("total still due"),
    "due_date": _("due date of the (oldest) invoice"),
    "days_late": _("days late of the oldest invoice"),
    "payment_link": _("link to see and pay the invoice online"),
    "iban": _("your IBAN"),
    "bic": _("your BIC"),
    "payment_reference": _("the reference to quote with the transfer"),
    "sepa_qr": _("a line pointing to the SEPA QR code (attached / printed)"),
    "legal_penalty_text": _("the legal text on late penalties and the 40 € indemnity (B2B)"),
    "late_interest": _("late interest owed to date (B2B)"),
    "recovery_indemnity": _("the fixed recovery indemnity owed (40 € per invoice, B2B)"),
    "today": _("the date of the reminder"),
    "step_name": _("the name of the step"),
}


# --- plug-ins from the apps above ------------------------------------------------------------

# The customer's payment link lives in the portal (above this app): set at start-up by
# ``facturo.jobs.tasks``. Without it, ``{{ payment_link }}`` is empty.
_link_builder: Callable[[Invoice], str] | None = None


def set_link_builder(builder: Callable[[Invoice], str] | None) -> None:
    global _link_builder
    _link_builder = builder


def payment_link(invoice: Invoice) -> str:
    if _link_builder is None:
        return ""
    try:
        return _link_builder(invoice)
    except Exception:
        return ""


# --- templates -------------------------------------------------------------------------------


def check_template(text: str, field: str) -> None:
    unknown = rules.unknown_variables(text, VARIABLES)
    if unknown:
        raise BusinessError(
            "dunning.unknown_variable",
            _("Unknown variable {{ %(name)s }} in the template. Available: %(available)s."),
            field=field,
            name=unknown[0],
            available=", ".join(sorted(VARIABLES)),
        )
    if rules.unbalanced_braces(text):
        raise BusinessError(
            "dunning.template_braces",
            _("The template has “{{” or “}}” without its pair: write variables as {{ name }}."),
            field=field,
        )


@dataclass(frozen=True)
class ChasedInvoice:
    """One invoice in a reminder, with the figures printed."""

    invoice: Invoice
    amount_due: Decimal
    days_late: int
    interest: Decimal | None = None  # B2B only
    indemnity: Decimal | None = None  # B2B only


def _money(amount: Decimal, currency: str, language: str) -> str:
    return format_currency(amount, currency, locale=BABEL_LOCALES[language])


def _day(value: dt.date | None, language: str) -> str:
    return format_date(value, format="long", locale=BABEL_LOCALES[language]) if value else ""


def language_of(customer: Customer, invoice: Invoice | None = None) -> str:
    for language in (invoice.language if invoice else None, customer.language):
        if language in LANGUAGES:
            return str(language)
    return "fr"


def penalty_rate_text(org: Organization, day: dt.date, language: str) -> str:
    rates, _exact = interest.rates_on(day, rate_table())
    rate = interest.applicable_rate(rates, org.late_penalty_rate)
    return format_decimal(rate, format="#,##0.00", locale=BABEL_LOCALES[language])


def legal_text(org: Organization, day: dt.date, language: str) -> str:
    rate = penalty_rate_text(org, day, language)
    if language == "fr":
        return (
            "Conformément à l'article L441-10 du Code de commerce, tout retard de paiement "
            f"entraîne de plein droit des pénalités de retard au taux annuel de {rate} %, "
            "exigibles sans rappel, ainsi qu'une indemnité forfaitaire pour frais de "
            "recouvrement de 40 € par facture (article D441-5 du Code de commerce)."
        )
    return (
        "Under article L441-10 of the French Commercial Code, any late payment automatically "
        f"bears late-payment penalties at the annual rate of {rate} %, due without reminder, "
        "and a fixed recovery indemnity of €40 per invoice (article D441-5)."
    )


def template_values(
    org: Organization,
    customer: Customer,
    chased: Sequence[ChasedInvoice],
    *,
    language: str,
    day: dt.date,
    step_name: str = "",
    has_qr: bool = False,
    with_link: bool = True,
) -> dict[str, str]:
    currency = chased[0].invoice.currency if chased else org.currency
    total = sum((c.amount_due for c in chased), Decimal(0))
    lines = []
    for c in chased:
        inv = c.invoice
        amount = _money(c.amount_due, inv.currency, language)
        if language == "fr":
            lines.append(
                f"- {inv.number} du {_day(inv.issue_date, 'fr')}, échue le "
                f"{_day(inv.due_date, 'fr')} : {amount} ({c.days_late} jours de retard)"
            )
        else:
            lines.append(
                f"- {inv.number} of {_day(inv.issue_date, 'en')}, due on "
                f"{_day(inv.due_date, 'en')}: {amount} ({c.days_late} days late)"
            )
    oldest = min(chased, key=lambda c: c.invoice.due_date or day) if chased else None
    b2b = customer.kind == CustomerKind.COMPANY
    interest_total = sum((c.interest or Decimal(0) for c in chased), Decimal(0))
    indemnity_total = sum((c.indemnity or Decimal(0) for c in chased), Decimal(0))
    first = chased[0].invoice if chased else None
    payment = (first.snapshot or {}).get("payment", {}) if first else {}
    qr_line = ""
    if has_qr:
        qr_line = (
            "Le QR code SEPA joint permet de payer par virement depuis votre application bancaire."
            if language == "fr"
            else "Scan the SEPA QR code provided to pay by bank transfer from your banking app."
        )
    return {
        "customer_name": customer.name,
        "organization_name": org.name,
        "invoice_number": (first.number or "") if first else "",
        "invoice_list": "\n".join(lines),
        "total_due": _money(total, currency, language),
        "due_date": _day(oldest.invoice.due_date, language) if oldest else "",
        "days_late": str(oldest.days_late) if oldest else "0",
        "payment_link": payment_link(first) if with_link and first is not None else "",
        "iban": payment.get("iban") or org.iban,
        "bic": payment.get("bic") or org.bic,
        "payment_reference": (payment.get("remittance") or (first.number if first else "")) or "",
        "sepa_qr": qr_line,
        "legal_penalty_text": legal_text(org, day, language) if b2b else "",
        "late_interest": _money(interest_total, currency, language) if b2b else "",
        "recovery_indemnity": _money(indemnity_total, currency, language) if b2b else "",
        "today": _day(day, language),
        "step_name": step_name,
    }


def render(subject: str, body: str, values: Mapping[str, str]) -> tuple[str, str]:
    subject = " ".join(rules.render_template(subject, values).split())
    return subject, rules.render_template(body, values).strip() + "\n"


def sample_values(ctx: Ctx, language: str, customer_id: Any = None) -> dict[str, str]:
    """Values for the live preview: a real customer's overdue invoices when one is given,
    else a made-up invoice (never saved)."""
    org = ctx.organization
    day = ctx.today()
    customer = None
    if customer_id:
        customer = _customer(ctx, customer_id)
    if customer is not None:
        from facturo.payments.services import OPEN_STATUSES, amount_due

        invoices = Invoice.objects.filter(
            organization=org, customer=customer, status__in=OPEN_STATUSES, due_date__lt=day
        ).order_by("due_date")[:10]
        chased = [
            ChasedInvoice(i, amount_due(i), rules.days_late(i.due_date, day))
            for i in invoices
            if i.due_date
        ]
        if chased:
            return template_values(org, customer, chased, language=language, day=day, has_qr=True)
    sample_customer = Customer(organization=org, name="Boulangerie Martin SARL", kind="company")
    sample = Invoice(
        organization=org,
        number="F-2026-0042",
        currency=org.currency,
        issue_date=day - dt.timedelta(days=45),
        due_date=day - dt.timedelta(days=15),
        snapshot={"payment": {"iban": org.iban, "bic": org.bic, "remittance": "RF18F20260042"}},
    )
    chased = [ChasedInvoice(sample, Decimal("1200.00"), 15, Decimal("4.93"), Decimal("40.00"))]
    return template_values(
        org, sample_customer, chased, language=language, day=day, step_name="Relance", has_qr=True
    )


def preview(
    ctx: Ctx, *, subject: str, body: str, language: str, customer_id: Any = None
) -> tuple[str, str]:
    """Subject and text as the customer would read them; unknown variables raise."""
    ctx.require(Perm.VIEW)
    language = language if language in LANGUAGES else "fr"
    check_template(subject, f"subject_{language}")
    check_template(body, f"body_{language}")
    return render(subject, body, sample_values(ctx, language, customer_id))


# --- policies --------------------------------------------------------------------------------

DEFAULT_STEPS: list[dict[str, Any]] = [
    {
        "name": "Courtoisie",
        "offset_days": -3,
        "subject_fr": "Rappel : facture {{ invoice_number }} à échéance le {{ due_date }}",
        "body_fr": (
            "Bonjour,\n\nPetit rappel amical : la facture {{ invoice_number }} arrive à "
            "échéance le {{ due_date }}.\n\n{{ invoice_list }}\n\nVous pouvez la consulter et "
            "la régler ici : {{ payment_link }}\nIBAN : {{ iban }} — référence : "
            "{{ payment_reference }}\n\nSi le paiement est déjà parti, merci et ignorez ce "
            "message.\n\nCordialement,\n{{ organization_name }}"
        ),
        "subject_en": "Reminder: invoice {{ invoice_number }} due on {{ due_date }}",
        "body_en": (
            "Hello,\n\nA friendly reminder: invoice {{ invoice_number }} is due on "
            "{{ due_date }}.\n\n{{ invoice_list }}\n\nSee and pay it here: {{ payment_link }}\n"
            "IBAN: {{ iban }} — reference: {{ payment_reference }}\n\nIf you have already "
            "paid, thank you and please ignore this message.\n\nKind regards,\n"
            "{{ organization_name }}"
        ),
    },
    {
        "name": "Relance",
        "offset_days": 7,
        "subject_fr": "Facture impayée {{ invoice_number }} — {{ organization_name }}",
        "body_fr": (
            "Bonjour,\n\nSauf erreur de notre part, nous n'avons pas reçu le règlement de :\n\n"
            "{{ invoice_list }}\n\nTotal dû : {{ total_due }}\n\nPayer en ligne : "
            "{{ payment_link }}\nVirement : IBAN {{ iban }}, BIC {{ bic }}, référence "
            "{{ payment_reference }}\n{{ sepa_qr }}\n\n{{ legal_penalty_text }}\n\n"
            "Cordialement,\n{{ organization_name }}"
        ),
        "subject_en": "Unpaid invoice {{ invoice_number }} — {{ organization_name }}",
        "body_en": (
            "Hello,\n\nUnless we are mistaken, we have not received payment of:\n\n"
            "{{ invoice_list }}\n\nTotal due: {{ total_due }}\n\nPay online: {{ payment_link }}"
            "\nBank transfer: IBAN {{ iban }}, BIC {{ bic }}, reference "
            "{{ payment_reference }}\n{{ sepa_qr }}\n\n{{ legal_penalty_text }}\n\n"
            "Kind regards,\n{{ organization_name }}"
        ),
    },
    {
        "name": "Seconde relance",
        "offset_days": 15,
        "task_title": "Appeler le client",
        "subject_fr": "Seconde relance : {{ total_due }} restent dus",
        "body_fr": (
            "Bonjour,\n\nMalgré notre précédent rappel, les factures suivantes restent "
            "impayées :\n\n{{ invoice_list }}\n\nTotal dû : {{ total_due }}\nMerci de régulariser "
            "sous 8 jours : {{ payment_link }}\n\n{{ legal_penalty_text }}\n\nCordialement,\n"
            "{{ organization_name }}"
        ),
        "subject_en": "Second reminder: {{ total_due }} still due",
        "body_en": (
            "Hello,\n\nDespite our previous reminder, the following invoices are still unpaid:"
            "\n\n{{ invoice_list }}\n\nTotal due: {{ total_due }}\nPlease settle within 8 days: "
            "{{ payment_link }}\n\n{{ legal_penalty_text }}\n\nKind regards,\n"
            "{{ organization_name }}"
        ),
    },
    {
        "name": "Mise en demeure",
        "offset_days": 30,
        "channel": Channel.LETTER,
        "add_interest": True,
        "subject_fr": "Mise en demeure de payer",
        "body_fr": (
            "{{ customer_name }}\n\nObjet : mise en demeure de payer\n\nMadame, Monsieur,\n\n"
            "Malgré nos relances, les factures suivantes restent impayées :\n\n"
            "{{ invoice_list }}\n\nNous vous mettons en demeure de régler la somme de "
            "{{ total_due }} sous huit jours, majorée des pénalités de retard "
            "({{ late_interest }} à ce jour) et de l'indemnité forfaitaire pour frais de "
            "recouvrement ({{ recovery_indemnity }}).\n\n{{ legal_penalty_text }}\n\n"
            "IBAN : {{ iban }} — référence : {{ payment_reference }}\n{{ sepa_qr }}\n\n"
            "À défaut, nous engagerons une procédure de recouvrement.\n\n{{ organization_name }}"
        ),
        "subject_en": "Formal notice to pay",
        "body_en": (
            "{{ customer_name }}\n\nRe: formal notice to pay\n\nDear Sir or Madam,\n\n"
            "Despite our reminders, the following invoices are still unpaid:\n\n"
            "{{ invoice_list }}\n\nWe hereby give you formal notice to pay {{ total_due }} "
            "within eight days, plus late-payment penalties ({{ late_interest }} to date) and "
            "the fixed recovery indemnity ({{ recovery_indemnity }}).\n\n"
            "{{ legal_penalty_text }}\n\nIBAN: {{ iban }} — reference: {{ payment_reference }}"
            "\n{{ sepa_qr }}\n\nFailing this, we will start recovery proceedings.\n\n"
            "{{ organization_name }}"
        ),
    },
    {
        "name": "Recouvrement",
        "offset_days": 45,
        "suspend_subscriptions": True,
        "task_title": "Transmettre le dossier au recouvrement",
        "subject_fr": "Transmission au service de recouvrement",
        "body_fr": (
            "Bonjour,\n\nFaute de règlement de {{ total_due }}, votre dossier est transmis à "
            "notre service de recouvrement et vos abonnements sont suspendus.\n\n"
            "{{ invoice_list }}\n\n{{ organization_name }}"
        ),
        "subject_en": "Handed over to collection",
        "body_en": (
            "Hello,\n\nAs {{ total_due }} is still unpaid, your file is handed over to our "
            "collection department and your subscriptions are suspended.\n\n{{ invoice_list }}"
            "\n\n{{ organization_name }}"
        ),
    },
]

_STEP_FIELDS = (
    "name",
    "offset_days",
    "channel",
    "subject_fr",
    "body_fr",
    "subject_en",
    "body_en",
    "to_customer_copies",
    "copy_internal",
    "add_interest",
    "suspend_subscriptions",
    "task_title",
    "task_assignee",
)


def _int(value: Any, field: str) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise BusinessError(
            "dunning.invalid_number", _("Type a whole number of days."), field=field
        ) from None


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes")
    return bool(value)


def _addresses(value: str, field: str) -> list[str]:
    result = [a for a in _SEPARATORS.split(value or "") if a]
    for address in result:
        try:
            validate_email(address)
        except ValidationError:
            raise BusinessError(
                "dunning.invalid_address",
                _("“%(address)s” is not a valid e-mail address."),
                field=field,
                address=address,
            ) from None
    return result


def clean_steps(steps: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Checked step data, in the order given. Errors name the step (``steps.<i>.<field>``)."""
    cleaned: list[dict[str, Any]] = []
    for i, raw in enumerate(steps):
        prefix = f"steps.{i}."
        step: dict[str, Any] = {"id": raw.get("id") or None}
        step["name"] = clean_text(raw.get("name") or "", prefix + "name", max_length=100)
        if not step["name"]:
            raise BusinessError(
                "dunning.step_name_required",
                _("Step %(n)s has no name."),
                field=prefix + "name",
                n=i + 1,
            )
        step["offset_days"] = _int(raw.get("offset_days"), prefix + "offset_days")
        channel = raw.get("channel") or Channel.EMAIL
        if channel not in Channel.values:
            raise BusinessError(
                "dunning.invalid_channel",
                _("Unknown channel “%(channel)s” (e-mail or letter)."),
                field=prefix + "channel",
                channel=channel,
            )
        step["channel"] = channel
        for language in LANGUAGES:
            subject = clean_text(raw.get(f"subject_{language}") or "", prefix + "subject")
            body = clean_text(raw.get(f"body_{language}") or "", prefix + f"body_{language}")
            if not body:
                raise BusinessError(
                    "dunning.template_required",
                    _("Step “%(name)s” needs a text in %(language)s."),
                    field=prefix + f"body_{language}",
                    name=step["name"],
                    language="French" if language == "fr" else "English",
                )
            if channel == Channel.EMAIL and not subject:
                raise BusinessError(
                    "dunning.subject_required",
                    _("Step “%(name)s” sends an e-mail: give it a subject in %(language)s."),
                    field=prefix + f"subject_{language}",
                    name=step["name"],
                    language="French" if language == "fr" else "English",
                )
            check_template(subject, prefix + f"subject_{language}")
            check_template(body, prefix + f"body_{language}")
            step[f"subject_{language}"], step[f"body_{language}"] = subject[:300], body
        for flag in ("copy_internal", "add_interest", "suspend_subscriptions"):
            step[flag] = _bool(raw.get(flag, False))
        step["to_customer_copies"] = _bool(raw.get("to_customer_copies", True))
        step["task_title"] = clean_text(raw.get("task_title") or "", prefix + "task_title")[:200]
        step["task_assignee"] = clean_text(
            raw.get("task_assignee") or "", prefix + "task_assignee"
        )[:200]
        cleaned.append(step)
    problems = rules.check_steps([s["offset_days"] for s in cleaned])
    if problems:
        p = problems[0]
        field = f"steps.{p.index}.offset_days"
        if p.code == "range":
            raise BusinessError(
                "dunning.step_offset_range",
                _("Step %(n)s: %(offset)s days is out of range (%(min)s to %(max)s)."),
                field=field,
                n=p.index + 1,
                offset=p.offset_days,
                min=rules.MIN_OFFSET,
                max=rules.MAX_OFFSET,
            )
        raise BusinessError(
            "dunning.step_order",
            _(
                "Step %(n)s (%(offset)s days) must come after step %(previous)s "
                "(%(previous_offset)s days): each step is sent later than the one before."
            ),
            field=field,
            n=p.index + 1,
            offset=p.offset_days,
            previous=p.index,
            previous_offset=cleaned[p.index - 1]["offset_days"],
        )
    return cleaned


def _clean_policy(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "name" in data:
        out["name"] = clean_text(data["name"], "name", max_length=100)
        if not out["name"]:
            raise BusinessError("dunning.name_required", _("Give the policy a name."), "name")
    for flag in ("is_default", "group_per_customer"):
        if flag in data:
            out[flag] = _bool(data[flag])
    for key in ("office_start", "office_end"):
        if key in data and data[key] not in (None, ""):
            value = data[key]
            if isinstance(value, str):
                try:
                    value = dt.time.fromisoformat(value)
                except ValueError:
                    raise BusinessError(
                        "dunning.invalid_time", _("Type a time as HH:MM."), field=key
                    ) from None
            out[key] = value
    if "office_days" in data:
        days = "".join(sorted({c for c in str(data["office_days"]) if c in "0123456"}))
        if not days:
            raise BusinessError(
                "dunning.no_office_day",
                _("Choose at least one working day."),
                field="office_days",
            )
        out["office_days"] = days
    if "copy_to" in data:
        out["copy_to"] = ", ".join(_addresses(data["copy_to"] or "", "copy_to"))
    return out


def _check_hours(policy: DunningPolicy) -> None:
    if policy.office_start >= policy.office_end:
        raise BusinessError(
            "dunning.office_hours",
            _("Office hours must end after they start (%(start)s–%(end)s)."),
            field="office_end",
            start=policy.office_start.strftime("%H:%M"),
            end=policy.office_end.strftime("%H:%M"),
        )


def office_hours(policy: DunningPolicy) -> rules.OfficeHours:
    return rules.OfficeHours(
        policy.office_start,
        policy.office_end,
        frozenset(int(c) for c in policy.office_days),
    )


def get_policy(ctx: Ctx, policy_id: Any, *, for_update: bool = False) -> DunningPolicy:
    qs = DunningPolicy.objects.filter(organization=ctx.organization, archived=False)
    if for_update:
        qs = qs.select_for_update()
    try:
        policy: DunningPolicy = qs.get(pk=policy_id)
    except (DunningPolicy.DoesNotExist, ValueError, ValidationError):
        raise NotFound("dunning.policy_not_found", _("Dunning policy not found.")) from None
    return policy


def _unique_name(ctx: Ctx, name: str, exclude: Any = None) -> None:
    qs = DunningPolicy.objects.filter(organization=ctx.organization, name=name)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    if qs.exists():
        raise ConflictError(
            "dunning.policy_name_taken",
            _("A policy named “%(name)s” already exists."),
            field="name",
            name=name,
        )


def _make_default(ctx: Ctx, policy: DunningPolicy) -> None:
    DunningPolicy.objects.filter(organization=ctx.organization, is_default=True).exclude(
        pk=policy.pk
    ).update(is_default=False)


def _save_steps(policy: DunningPolicy, steps: list[dict[str, Any]]) -> None:
    """Replace the policy's steps. A step that has reminders is kept (archived) when removed
    or when its offset changes, so the timeline keeps pointing at what was sent."""
    existing = {str(s.pk): s for s in policy.steps.filter(archived=False)}
    kept: set[str] = set()
    used = set(
        str(pk)
        for pk in Reminder.objects.filter(step__policy=policy).values_list("step_id", flat=True)
    )
    to_save: list[DunningStep] = []
    for position, data in enumerate(steps):
        current = existing.get(str(data.get("id"))) if data.get("id") else None
        if current is not None and not (
            str(current.pk) in used and current.offset_days != data["offset_days"]
        ):
            kept.add(str(current.pk))
            step = current
        else:
            step = DunningStep(policy=policy)
        step.position = position
        for key in _STEP_FIELDS:
            setattr(step, key, data[key])
        to_save.append(step)
    for pk, step in existing.items():
        if pk in kept:
            continue
        if pk in used:
            DunningStep.objects.filter(pk=pk).update(archived=True)
        else:
            step.delete()
    # Offsets are unique per policy: park the kept steps on free values first, so that
    # shifting them (7, 15 → 15, 30) never collides half-way.
    for i, step in enumerate(s for s in to_save if s.pk and str(s.pk) in kept):
        DunningStep.objects.filter(pk=step.pk).update(offset_days=-1000 - i)
    for step in to_save:
        step.save()


def _has_email_steps(steps: Iterable[Mapping[str, Any] | DunningStep]) -> bool:
    for s in steps:
        channel = s["channel"] if isinstance(s, Mapping) else s.channel
        if channel == Channel.EMAIL:
            return True
    return False


def create_policy(
    ctx: Ctx, *, name: str, steps: Iterable[Mapping[str, Any]] = (), **data: Any
) -> DunningPolicy:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    fields = _clean_policy({"name": name, **data})
    cleaned = clean_steps(steps)
    with atomic():
        _unique_name(ctx, fields["name"])
        policy = DunningPolicy(organization=ctx.organization, **fields)
        _check_hours(policy)
        if not DunningPolicy.objects.filter(organization=ctx.organization, archived=False).exists():
            policy.is_default = True
        if policy.is_default:
            _make_default(ctx, policy)
        policy.save()
        _save_steps(policy, cleaned)
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "dunning.policy_created",
            policy,
            after={**fields, "steps": [s["offset_days"] for s in cleaned]},
        )
    return policy


def update_policy(
    ctx: Ctx, policy_id: Any, *, steps: Iterable[Mapping[str, Any]] | None = None, **data: Any
) -> DunningPolicy:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    get_policy(ctx, policy_id)  # another organization's policy: 404 before any other error
    fields = _clean_policy(data)
    cleaned = clean_steps(steps) if steps is not None else None
    with atomic():
        policy = get_policy(ctx, policy_id, for_update=True)
        before = {k: getattr(policy, k) for k in fields}
        if "name" in fields:
            _unique_name(ctx, fields["name"], exclude=policy.pk)
        for key, value in fields.items():
            setattr(policy, key, value)
        _check_hours(policy)
        if fields.get("is_default"):
            _make_default(ctx, policy)
        policy.save()
        if cleaned is not None:
            _save_steps(policy, cleaned)
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "dunning.policy_updated",
            policy,
            before=before,
            after={**fields, **({"steps": [s["offset_days"] for s in cleaned]} if cleaned else {})},
        )
    return policy


def archive_policy(ctx: Ctx, policy_id: Any) -> None:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    with atomic():
        policy = get_policy(ctx, policy_id, for_update=True)
        policy.archived, policy.is_default = True, False
        policy.save(update_fields=["archived", "is_default"])
        PolicyAssignment.objects.filter(policy=policy).delete()
        audit.record(ctx.organization.id, ctx.actor, "dunning.policy_archived", policy)


def create_default_policy(ctx: Ctx, name: str = "Standard") -> DunningPolicy:
    """The five-step policy of the issue (−3, +7, +15, +30 formal notice, +45 collection)."""
    return create_policy(ctx, name=name, steps=DEFAULT_STEPS, is_default=True)


def _customer(ctx: Ctx, customer_id: Any) -> Customer:
    try:
        customer: Customer = Customer.objects.get(organization=ctx.organization, pk=customer_id)
    except (Customer.DoesNotExist, ValueError, ValidationError):
        raise NotFound("customer.not_found", _("Customer not found.")) from None
    return customer


def _invoice(ctx: Ctx, invoice_id: Any, *, for_update: bool = False) -> Invoice:
    qs = Invoice.objects.filter(organization=ctx.organization).exclude(status="draft")
    if for_update:
        qs = qs.select_for_update()
    try:
        invoice: Invoice = qs.select_related("customer").get(pk=invoice_id)
    except (Invoice.DoesNotExist, ValueError, ValidationError):
        raise NotFound("invoice.not_found", _("Invoice not found.")) from None
    return invoice


def _require_email(customer: Customer, policy: DunningPolicy) -> None:
    if customer.email or customer.accounting_email:
        return
    if _has_email_steps(policy.steps.filter(archived=False)):
        raise BusinessError(
            "dunning.customer_no_email",
            _(
                "Customer %(customer)s has no e-mail address, and policy “%(policy)s” sends "
                "e-mails: add an address on the customer's page, or choose a policy that "
                "only prints letters."
            ),
            field="customer_id",
            customer=customer.name,
            policy=policy.name,
        )


def assign_policy(
    ctx: Ctx, policy_id: Any, *, customer_id: Any = None, segment: str = ""
) -> PolicyAssignment:
    """The policy for one customer, or for a segment (companies / individuals)."""
    ctx.require(Perm.MANAGE_ORGANIZATION)
    get_policy(ctx, policy_id)
    if customer_id:
        _customer(ctx, customer_id)
    if bool(customer_id) == bool(segment):
        raise BusinessError(
            "dunning.assignment_target",
            _("Assign a policy either to a customer or to a segment."),
            field="customer_id",
        )
    if segment and segment not in Segment.values:
        raise BusinessError(
            "dunning.invalid_segment",
            _("Unknown segment “%(segment)s” (company or person)."),
            field="segment",
            segment=segment,
        )
    with atomic():
        policy = get_policy(ctx, policy_id)
        if customer_id:
            customer = _customer(ctx, customer_id)
            _require_email(customer, policy)
            row, _created = PolicyAssignment.objects.update_or_create(
                organization=ctx.organization, customer=customer, defaults={"policy": policy}
            )
        else:
            row, _created = PolicyAssignment.objects.update_or_create(
                organization=ctx.organization, segment=segment, defaults={"policy": policy}
            )
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "dunning.policy_assigned",
            policy,
            after={"customer_id": customer_id, "segment": segment},
        )
    return row


def unassign(ctx: Ctx, *, customer_id: Any = None, segment: str = "") -> None:
    ctx.require(Perm.MANAGE_ORGANIZATION)
    with atomic():
        qs = PolicyAssignment.objects.filter(organization=ctx.organization)
        qs = qs.filter(customer_id=customer_id) if customer_id else qs.filter(segment=segment)
        qs.delete()
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "dunning.policy_unassigned",
            object_type="dunning.assignment",
            after={"customer_id": customer_id, "segment": segment},
        )


def _invoice_settings(ctx: Ctx, invoice: Invoice) -> InvoiceDunning:
    row, _created = InvoiceDunning.objects.select_for_update().get_or_create(
        invoice=invoice, defaults={"organization": ctx.organization}
    )
    return row


def set_invoice_policy(ctx: Ctx, invoice_id: Any, policy_id: Any = None) -> InvoiceDunning:
    """Override the policy for one invoice (None: back to the customer's policy)."""
    ctx.require(Perm.SEND_INVOICES)
    with atomic():
        invoice = _invoice(ctx, invoice_id, for_update=True)
        policy = get_policy(ctx, policy_id) if policy_id else None
        if policy is not None:
            _require_email(invoice.customer, policy)
        row = _invoice_settings(ctx, invoice)
        before = str(row.policy_id) if row.policy_id else None
        row.policy = policy
        row.save()
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "dunning.invoice_policy_set",
            invoice,
            before={"policy_id": before},
            after={"policy_id": str(policy.pk) if policy else None},
        )
    return row


def mark_disputed(ctx: Ctx, invoice_id: Any, *, reason: str) -> InvoiceDunning:
    """The customer contests the invoice: no reminder until the dispute is resolved."""
    ctx.require(Perm.SEND_INVOICES)
    reason = clean_text(reason, "reason", max_length=300)
    if not reason:
        raise BusinessError(
            "dunning.reason_required", _("Say why the invoice is disputed."), field="reason"
        )
    with atomic():
        invoice = _invoice(ctx, invoice_id, for_update=True)
        row = _invoice_settings(ctx, invoice)
        row.disputed, row.dispute_reason, row.disputed_at = True, reason, timezone.now()
        row.save()
        audit.record(
            ctx.organization.id, ctx.actor, "dunning.disputed", invoice, after={"reason": reason}
        )
    return row


def resolve_dispute(ctx: Ctx, invoice_id: Any) -> InvoiceDunning:
    ctx.require(Perm.SEND_INVOICES)
    with atomic():
        invoice = _invoice(ctx, invoice_id, for_update=True)
        row = _invoice_settings(ctx, invoice)
        before = row.dispute_reason
        row.disputed, row.dispute_reason, row.disputed_at = False, "", None
        row.save()
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "dunning.dispute_resolved",
            invoice,
            before={"reason": before},
        )
    return row


def _date(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise BusinessError(
            "dunning.invalid_date", _("Type a date as YYYY-MM-DD."), field=field
        ) from None


def pause(
    ctx: Ctx,
    *,
    until: dt.date | str,
    reason: str,
    customer_id: Any = None,
    invoice_id: Any = None,
) -> Pause:
    """No reminder for this customer (or invoice) up to and including ``until``."""
    ctx.require(Perm.SEND_INVOICES)
    # Ids first: another organization's object is a 404 whatever else is wrong.
    customer = _customer(ctx, customer_id) if customer_id else None
    invoice = _invoice(ctx, invoice_id) if invoice_id else None
    if bool(customer_id) == bool(invoice_id):
        raise BusinessError(
            "dunning.pause_target",
            _("Pause dunning either for a customer or for an invoice."),
            field="customer_id",
        )
    day = _date(until, "until")
    if day < ctx.today():
        raise BusinessError(
            "dunning.pause_in_past",
            _("The end of the pause (%(date)s) is already past."),
            field="until",
            date=day.isoformat(),
        )
    reason = clean_text(reason, "reason", max_length=300)
    if not reason:
        raise BusinessError(
            "dunning.reason_required", _("Say why dunning is paused."), field="reason"
        )
    with atomic():
        row = Pause.objects.create(
            organization=ctx.organization,
            customer=customer,
            invoice=invoice,
            until=day,
            reason=reason,
            created_by=ctx.actor.label,
        )
        audit.record(
            ctx.organization.id,
            ctx.actor,
            "dunning.paused",
            invoice or customer,
            after={"until": day, "reason": reason},
        )
    return row


def lift_pause(ctx: Ctx, pause_id: Any) -> Pause:
    ctx.require(Perm.SEND_INVOICES)
    with atomic():
        try:
            row: Pause = Pause.objects.select_for_update().get(
                organization=ctx.organization, pk=pause_id
            )
        except (Pause.DoesNotExist, ValueError, ValidationError):
            raise NotFound("dunning.pause_not_found", _("Pause not found.")) from None
        if row.lifted_at is None:
            row.lifted_at = timezone.now()
            row.save(update_fields=["lifted_at"])
            audit.record(ctx.organization.id, ctx.actor, "dunning.pause_lifted", row)
    return row


def complete_task(ctx: Ctx, task_id: Any, *, note: str = "") -> DunningTask:
    ctx.require(Perm.SEND_INVOICES)
    with atomic():
        try:
            task: DunningTask = DunningTask.objects.select_for_update().get(
                organization=ctx.organization, pk=task_id
            )
        except (DunningTask.DoesNotExist, ValueError, ValidationError):
            raise NotFound("dunning.task_not_found", _("Task not found.")) from None
        if task.done_at is None:
            task.done_at, task.done_by = timezone.now(), ctx.actor.label
            task.note = clean_text(note, "note", max_length=500)
            task.save()
            audit.record(ctx.organization.id, ctx.actor, "dunning.task_done", task)
    return task


# --- rates -----------------------------------------------------------------------------------


_RATE_ON_INVOICE = re.compile(r"(\d+(?:[.,]\d+)?) ?%")


def invoice_rate(invoice: Invoice) -> Decimal | None:
    """The penalty rate printed on the invoice (its frozen PMD note), None for the legal
    default (ECB + 10 points). Without a snapshot: the organization's current setting."""
    notes = (invoice.snapshot or {}).get("notes") or {}
    text = notes.get("late_penalties")
    if not isinstance(text, str):
        return invoice.organization.late_penalty_rate
    match = _RATE_ON_INVOICE.search(text)
    return Decimal(match.group(1).replace(",", ".")) if match else None


def rate_table() -> tuple[interest.HalfYearRates, ...]:
    """The shipped table with the rows an administrator added (InterestRate)."""
    extra = [
        interest.HalfYearRates(r.start, r.ecb_refinancing, r.legal, r.source)
        for r in InterestRate.objects.all()
    ]
    return interest.merged_table(extra)


# --- sending checks --------------------------------------------------------------------------


def chase_check(invoice: Invoice, day: dt.date) -> tuple[str | None, Decimal]:
    """``(why this invoice must not be chased on day, or None; what it owes)``."""
    from facturo.payments.services import OPEN_STATUSES, amount_due

    if invoice.status not in OPEN_STATUSES:
        return f"status {invoice.status}", Decimal(0)
    settings = InvoiceDunning.objects.filter(invoice_id=invoice.pk).first()
    if settings is not None and settings.disputed:
        return f"disputed: {settings.dispute_reason}", Decimal(0)
    pause = (
        Pause.objects.filter(until__gte=day, lifted_at__isnull=True)
        .filter(models.Q(invoice_id=invoice.pk) | models.Q(customer_id=invoice.customer_id))
        .order_by("-until")
        .first()
    )
    if pause is not None:
        return f"paused until {pause.until.isoformat()}", Decimal(0)
    due = amount_due(invoice)
    if due <= 0:
        return "nothing due", due
    return None, due


def blocked_reason(invoice: Invoice, day: dt.date) -> str | None:
    """Why this invoice must not be chased on ``day`` (None: it may be)."""
    return chase_check(invoice, day)[0]


def still_wanted(row: OutboxEmail) -> str | None:
    """Outbox veto (registered in ``DunningConfig.ready``), run right before delivery: the
    reminder is cancelled when none of its invoices may be chased any more."""
    message = ReminderMessage.objects.filter(outbox_email_id=row.pk).first()
    if message is None:
        return None
    if message.status == MessageStatus.CANCELLED:
        return message.cancel_reason or "cancelled"
    org = Organization.objects.get(pk=message.organization_id)
    day = timezone.now().astimezone(rules.zone(org.time_zone)).date()
    reasons = []
    for reminder in message.reminders.select_related("invoice"):
        reason = blocked_reason(reminder.invoice, day)
        if reason is None:
            return None
        reasons.append(f"{reminder.invoice.number}: {reason}")
    text = "; ".join(reasons) or "no invoice"
    ReminderMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.CANCELLED, cancel_reason=text[:300]
    )
    return text


def qr_png(org: Organization, invoice: Invoice, amount: Decimal) -> bytes | None:
    """EPC QR code (SEPA credit transfer) for ``amount``, when it can be made."""
    payment = (invoice.snapshot or {}).get("payment", {})
    iban = (payment.get("iban") or org.iban or "").replace(" ", "")
    if invoice.currency != "EUR" or not iban or amount <= 0:
        return None
    import segno.helpers

    try:
        code = segno.helpers.make_epc_qr(
            name=(payment.get("account_name") or org.legal_name or org.name)[:70],
            iban=iban,
            amount=amount,
            reference=payment.get("remittance") or None,
            text=None if payment.get("remittance") else (invoice.number or "")[:140],
            bic=payment.get("bic") or org.bic or None,
        )
    except ValueError:
        return None
    out = io.BytesIO()
    code.save(out, kind="png", scale=5)
    return out.getvalue()
