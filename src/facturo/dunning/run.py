"""The dunning run: from the database, decide which invoices get which reminder today, and
write each reminder (its message, e-mail or letter, and its actions) exactly once.

Idempotent and safe concurrently:

- ``Reminder (invoice, step)`` is unique in the database: one reminder per step, ever;
- each message (one invoice, or one customer's invoices when grouped) is written in one
  transaction that first locks its invoice rows (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so
  a concurrent run skips the group instead of waiting; SQLite: ``BEGIN IMMEDIATE``), then
  re-reads the reminders already sent and the balance, then writes the reminder rows, the
  message, the outbox e-mail and the actions — all or nothing. A crash rolls the group
  back; the next run does it again. A unique-key race (two runs past the check at once)
  rolls the loser's group back;
- the outbox e-mail is scheduled in the policy's office hours in the organization's time
  zone, and re-checked right before delivery (``services.still_wanted``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import IntegrityError
from django.db.models import Max
from django.utils import timezone

from facturo.audit import services as audit
from facturo.audit.services import Actor
from facturo.core import dunning as rules
from facturo.core import interest
from facturo.core.money import ZERO
from facturo.customers.models import Customer, CustomerKind
from facturo.documents.models import StoredDocument
from facturo.foundation.db import atomic, is_postgresql
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice
from facturo.notifications import services as notifications
from facturo.organizations.context import Ctx, Perm
from facturo.organizations.models import Organization, Role, VatRegime
from facturo.payments.models import Allocation
from facturo.payments.services import OPEN_STATUSES, PAYABLE_KINDS, net_total

from . import services
from .models import (
    Channel,
    DunningPolicy,
    DunningStep,
    DunningTask,
    InvoiceDunning,
    Pause,
    PolicyAssignment,
    Reminder,
    ReminderMessage,
)

log = logging.getLogger(__name__)
RUN_ACTOR = Actor(label="dunning run")
# Penalty invoices are issued like any other: with their PDF/A-3 (tests may switch it off).
RENDER_PENALTY_INVOICES = True


@dataclass(frozen=True)
class Planned:
    invoice: Invoice
    policy: DunningPolicy
    step: DunningStep


@dataclass(frozen=True)
class Skipped:
    invoice_id: Any
    number: str
    reason: str


@dataclass
class Summary:
    queued: int = 0  # reminders written (one per invoice and step)
    messages: int = 0  # e-mails / letters written
    skipped: list[Skipped] = field(default_factory=list)
    tasks: int = 0
    penalty_invoices: int = 0

    def line(self) -> str:
        return f"queued {self.queued}, skipped {len(self.skipped)}"


def run_ctx(org: Organization) -> Ctx:
    return Ctx(org, Role.OWNER, RUN_ACTOR)


# --- planning --------------------------------------------------------------------------------


@dataclass
class _OrgData:
    policies: dict[Any, DunningPolicy]
    steps: dict[Any, list[DunningStep]]
    default: DunningPolicy | None
    by_customer: dict[Any, Any]
    by_segment: dict[str, Any]


def _org_data(org: Organization) -> _OrgData:
    policies = {p.pk: p for p in DunningPolicy.objects.filter(organization=org, archived=False)}
    steps: dict[Any, list[DunningStep]] = {pk: [] for pk in policies}
    for step in DunningStep.objects.filter(policy__in=list(policies), archived=False).order_by(
        "offset_days"
    ):
        steps[step.policy_id].append(step)
    default = next((p for p in policies.values() if p.is_default), None)
    by_customer: dict[Any, Any] = {}
    by_segment: dict[str, Any] = {}
    for a in PolicyAssignment.objects.filter(organization=org, policy__archived=False):
        if a.customer_id:
            by_customer[a.customer_id] = a.policy_id
        else:
            by_segment[a.segment] = a.policy_id
    return _OrgData(policies, steps, default, by_customer, by_segment)


def policy_for(
    data: _OrgData, invoice: Invoice, override: Any, customer: Customer
) -> DunningPolicy | None:
    """Invoice override, else the customer's, else its segment's, else the default."""
    for pk in (override, data.by_customer.get(customer.pk), data.by_segment.get(customer.kind)):
        if pk and pk in data.policies:
            return data.policies[pk]
    return data.default


def _candidates(org: Organization, day: dt.date, data: _OrgData) -> Any:
    earliest = min((s.offset_days for steps in data.steps.values() for s in steps), default=None)
    if earliest is None:
        return Invoice.objects.none()
    return (
        Invoice.objects.filter(
            organization=org,
            kind__in=PAYABLE_KINDS,
            status__in=OPEN_STATUSES,
            due_date__isnull=False,
            due_date__lte=day - dt.timedelta(days=earliest),
        )
        .select_related("customer")
        .order_by("due_date", "id")
    )


def plan(org: Organization, day: dt.date) -> tuple[list[Planned], list[Skipped]]:
    """What the run would send for ``org`` on ``day``, and what it must skip (with why)."""
    data = _org_data(org)
    invoices = list(_candidates(org, day, data))
    if not invoices:
        return [], []
    ids = [i.pk for i in invoices]
    last_offset = dict(
        Reminder.objects.filter(invoice_id__in=ids)
        .values("invoice_id")
        .annotate(m=Max("offset_days"))
        .values_list("invoice_id", "m")
    )
    settings = {s.invoice_id: s for s in InvoiceDunning.objects.filter(invoice_id__in=ids)}
    pauses = Pause.objects.filter(organization=org, until__gte=day, lifted_at__isnull=True)
    paused_invoices = {p.invoice_id: p.until for p in pauses if p.invoice_id}
    paused_customers = {p.customer_id: p.until for p in pauses if p.customer_id}
    planned: list[Planned] = []
    skipped: list[Skipped] = []
    for invoice in invoices:
        assert invoice.due_date is not None
        row = settings.get(invoice.pk)
        policy = policy_for(data, invoice, row.policy_id if row else None, invoice.customer)
        if policy is None:
            continue
        steps = data.steps[policy.pk]
        rule = rules.due_step(
            [rules.StepRule(str(s.pk), s.offset_days) for s in steps],
            invoice.due_date,
            day,
            last_sent_offset=last_offset.get(invoice.pk),
        )
        if rule is None:
            continue
        step = next(s for s in steps if str(s.pk) == rule.key)
        number = invoice.number or ""

        def skip(reason: str, _i: Invoice = invoice, _n: str = number) -> None:
            skipped.append(Skipped(_i.pk, _n, reason))

        if row is not None and row.disputed:
            skip(f"disputed: {row.dispute_reason}")
            continue
        until = paused_invoices.get(invoice.pk) or paused_customers.get(invoice.customer_id)
        if until is not None:
            skip(f"paused until {until.isoformat()}")
            continue
        customer = invoice.customer
        if step.channel == Channel.EMAIL and not (customer.email or customer.accounting_email):
            skip(f"customer {customer.name} has no e-mail address")
            continue
        planned.append(Planned(invoice, policy, step))
    return planned, skipped


# --- writing ---------------------------------------------------------------------------------


def _split(value: str) -> list[str]:
    return [a for a in services._SEPARATORS.split(value or "") if a]


def _recipients(
    org: Organization, customer: Customer, policy: DunningPolicy, step: DunningStep
) -> tuple[list[str], list[str]]:
    to = _split(customer.email) or _split(customer.accounting_email)[:1]
    cc: list[str] = []
    if step.to_customer_copies:
        cc += _split(customer.cc_emails) + _split(customer.accounting_email)
    if step.copy_internal:
        cc += _split(policy.copy_to)
    cc += _split(org.accounting_copy_email)
    seen = {a.lower() for a in to}
    unique: list[str] = []
    for address in cc:
        if address.lower() not in seen:
            seen.add(address.lower())
            unique.append(address)
    return to, unique


def _interest_for(
    org: Organization, invoice: Invoice, day: dt.date, table: Any
) -> interest.LateInterest:
    assert invoice.due_date is not None
    paid = [
        (a.payment.received_on, a.amount)
        for a in Allocation.objects.filter(invoice=invoice, reversed_at__isnull=True)
        .select_related("payment")
        .order_by("created_at")
    ]
    return interest.late_interest(
        net_total(invoice),
        invoice.due_date,
        day,
        payments=paid,
        contract_rate=services.invoice_rate(invoice),
        table=table,
    )


def _penalty_invoice(
    ctx: Ctx, invoice: Invoice, day: dt.date, late: interest.LateInterest, indemnity: Decimal | None
) -> Invoice | None:
    """A separate invoice for late interest and the 40 € indemnity (outside the scope of
    VAT: damages, not a supply; category O, or E under the franchise)."""
    org = ctx.organization
    fr = invoice.language != "en"
    category = "E" if org.vat_regime == VatRegime.FRANCHISE else "O"
    lines: list[dict[str, Any]] = []
    if late.amount > 0:
        rate = late.segments[-1].rate if late.segments else ZERO
        lines.append(
            {
                "description": (
                    f"Pénalités de retard sur la facture {invoice.number} ({late.days} jours, "
                    f"taux {rate} % l'an, art. L441-10 C. com.)"
                    if fr
                    else f"Late-payment interest on invoice {invoice.number} ({late.days} days "
                    f"at {rate} % a year, art. L441-10 French Commercial Code)"
                ),
                "quantity": "1",
                "unit_price": late.amount,
                "vat_category": category,
                "vat_rate": "0",
            }
        )
    if indemnity:
        lines.append(
            {
                "description": (
                    f"Indemnité forfaitaire pour frais de recouvrement, facture {invoice.number} "
                    "(art. D441-5 C. com.)"
                    if fr
                    else f"Fixed recovery indemnity, invoice {invoice.number} "
                    "(art. D441-5 French Commercial Code)"
                ),
                "quantity": "1",
                "unit_price": indemnity,
                "vat_category": category,
                "vat_rate": "0",
            }
        )
    if not lines:
        return None
    draft = invoicing.create_draft(
        ctx,
        invoice.customer_id,
        lines,
        currency=invoice.currency,
        language=invoice.language,
        payment_terms_kind="on_receipt",
    )
    return invoicing.issue_invoice(ctx, draft.id, issue_date=day, render=RENDER_PENALTY_INVOICES)


def _suspend_subscriptions(ctx: Ctx, customer: Customer, day: dt.date) -> list[str]:
    from facturo.subscriptions import services as subs
    from facturo.subscriptions.models import Subscription, SubscriptionStatus

    done: list[str] = []
    for sub in Subscription.objects.filter(
        organization=ctx.organization, customer=customer, status=SubscriptionStatus.ACTIVE
    ):
        try:
            with atomic():  # a savepoint: one refusal leaves the others and the reminder
                subs.pause(ctx, sub.pk, on=day + dt.timedelta(days=1))
            done.append(str(sub.pk))
        except Exception as exc:
            log.warning("subscription %s not suspended: %s", sub.pk, exc)
    return done


def _lock(ids: list[Any]) -> list[Invoice]:
    qs = Invoice.objects.filter(pk__in=ids).select_related("customer").order_by("id")
    if is_postgresql():
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return list(qs)


def write_group(
    org: Organization, group: list[Planned], day: dt.date, now: dt.datetime, summary: Summary
) -> None:
    """Write one message (and its reminders and actions) for ``group``, in one transaction."""
    ctx = run_ctx(org)
    try:
        with atomic():
            locked = {i.pk: i for i in _lock([p.invoice.pk for p in group])}
            if len(locked) < len(group):
                return  # another run holds some of these invoices right now: it does them
            # What was sent already, read under the lock (one query).
            done: set[tuple[Any, Any]] = set()
            last: dict[Any, int] = {}
            for invoice_id, step_id, offset in Reminder.objects.filter(
                invoice_id__in=list(locked)
            ).values_list("invoice_id", "step_id", "offset_days"):
                done.add((invoice_id, step_id))
                last[invoice_id] = max(offset, last.get(invoice_id, offset))
            items: list[tuple[Planned, Invoice, Decimal]] = []
            for p in group:
                invoice = locked[p.invoice.pk]
                if (invoice.pk, p.step.pk) in done or last.get(invoice.pk, -(10**6)) >= (
                    p.step.offset_days
                ):
                    continue  # sent meanwhile (another run committed first)
                reason, due = services.chase_check(invoice, day)
                if reason is not None:
                    summary.skipped.append(Skipped(invoice.pk, invoice.number or "", reason))
                    continue
                items.append((p, invoice, due))
            if not items:
                return
            _write(ctx, org, items, day, now, summary)
    except IntegrityError:
        # Another run wrote one of these reminders between our check and our insert: its
        # transaction won, ours is rolled back whole.
        log.info("dunning: group already written by a concurrent run")


def _write(
    ctx: Ctx,
    org: Organization,
    items: list[tuple[Planned, Invoice, Decimal]],
    day: dt.date,
    now: dt.datetime,
    summary: Summary,
) -> None:
    # The most advanced step of the group speaks for it (its template, channel, actions).
    lead = max(items, key=lambda t: t[0].step.offset_days)[0]
    policy, step = lead.policy, lead.step
    customer: Customer = items[0][1].customer
    language = services.language_of(customer, items[0][1] if len(items) == 1 else None)
    b2b = customer.kind == CustomerKind.COMPANY
    subject_t = step.subject_fr if language == "fr" else step.subject_en
    body_t = step.body_fr if language == "fr" else step.body_en
    used = set(rules.template_variables(subject_t + body_t))
    # Interest is computed when it is printed or invoiced (B2B only).
    table = (
        services.rate_table()
        if b2b and (step.add_interest or used & {"late_interest", "recovery_indemnity"})
        else None
    )
    chased: list[services.ChasedInvoice] = []
    interests: dict[Any, interest.LateInterest] = {}
    for _p, invoice, due in items:
        assert invoice.due_date is not None
        late = _interest_for(org, invoice, day, table) if table is not None else None
        if late is not None:
            interests[invoice.pk] = late
        chased.append(
            services.ChasedInvoice(
                invoice,
                due,
                rules.days_late(invoice.due_date, day),
                late.amount if late else None,
                interest.recovery_indemnity(invoice.currency) if b2b else None,
            )
        )
    total = sum((c.amount_due for c in chased), Decimal(0))
    first = items[0][1]
    qr = services.qr_png(org, first, total) if "sepa_qr" in used else None
    values = services.template_values(
        org,
        customer,
        chased,
        language=language,
        day=day,
        step_name=step.name,
        has_qr=qr is not None,
        with_link="payment_link" in used,
    )
    subject, body = services.render(subject_t or step.name, body_t, values)
    to, cc = _recipients(org, customer, policy, step)
    send_at = rules.next_send_time(now, services.office_hours(policy), rules.zone(org.time_zone))
    message = ReminderMessage(
        organization=org,
        customer=customer,
        channel=step.channel,
        language=language,
        to=to if step.channel == Channel.EMAIL else [],
        cc=cc if step.channel == Channel.EMAIL else [],
        subject=subject,
        body=body,
        total_due=total,
        currency=first.currency,
        run_date=day,
        scheduled_for=send_at,
    )
    reminders = [
        Reminder(
            organization=org,
            invoice=invoice,
            step=p.step,
            offset_days=p.step.offset_days,
            message=message,
            amount_due=due,
            days_late=rules.days_late(invoice.due_date or day, day),
        )
        for p, invoice, due in items
    ]
    wants_qr = values["sepa_qr"] != ""
    if step.channel == Channel.EMAIL:
        attachments: list[Any] = []
        if qr is not None and wants_qr:
            document = StoredDocument.objects.create(
                organization_id=org.id,
                owner_id=message.pk,
                filename="sepa-qr.png",
                content_type="image/png",
                content=qr,
                sha256=hashlib.sha256(qr).hexdigest(),
            )
            attachments.append(document.pk)
        email, _created = notifications.queue_email(
            organization_id=org.id,
            idempotency_key=f"{services.OUTBOX_PREFIX}{message.pk}",
            subject_id=first.pk,
            from_email=notifications.sender_address(org),
            to=to,
            cc=cc,
            reply_to=[org.email] if org.email else [],
            subject=subject,
            body=body,
            attachment_ids=attachments,
            now=send_at,
        )
        message.outbox_email_id = email.pk
    else:
        place = f"{org.city}, {services._day(day, language)}"
        svg = ""
        if wants_qr:
            svg = _qr_svg(org, first, total)
        from .letter import render_letter

        message.pdf = render_letter(
            org,
            customer,
            subject=subject,
            body=body,
            place_date=place,
            language=language,
            qr_svg=svg,
        )
    message.save(force_insert=True)
    # A duplicate (invoice, step) raises IntegrityError here: the whole group rolls back.
    Reminder.objects.bulk_create(reminders)
    summary.messages += 1
    summary.queued += len(reminders)
    # Actions of the step.
    if step.add_interest and b2b:
        penalty_ids = set(
            Reminder.objects.filter(organization=org, penalty_invoice__isnull=False).values_list(
                "penalty_invoice_id", flat=True
            )
        )
        for reminder in reminders:
            if reminder.invoice_id in penalty_ids:
                continue
            late = interests.get(reminder.invoice_id)
            indemnity = interest.recovery_indemnity(reminder.invoice.currency)
            if late is None:
                continue
            penalty = _penalty_invoice(ctx, reminder.invoice, day, late, indemnity)
            if penalty is not None:
                reminder.penalty_invoice = penalty
                reminder.save(update_fields=["penalty_invoice"])
                summary.penalty_invoices += 1
    suspended: list[str] = []
    if step.suspend_subscriptions:
        suspended = _suspend_subscriptions(ctx, customer, day)
    if step.task_title:
        DunningTask.objects.create(
            organization=org,
            customer=customer,
            invoice=first,
            reminder=reminders[0],
            title=step.task_title,
            assignee=step.task_assignee,
            due_on=day,
        )
        summary.tasks += 1
    audit.record(
        org.id,
        RUN_ACTOR,
        "dunning.reminder_queued",
        message,
        after={
            "step": step.name,
            "offset_days": step.offset_days,
            "channel": step.channel,
            "invoices": [r.invoice.number for r in reminders],
            "total_due": total,
            "to": to,
            "scheduled_for": send_at,
            "suspended_subscriptions": suspended,
        },
    )


def _qr_svg(org: Organization, invoice: Invoice, amount: Decimal) -> str:
    png = services.qr_png(org, invoice, amount)
    if png is None:
        return ""
    import base64

    # Typst reads the PNG through an SVG wrapper (sys.inputs carries text only).
    data = base64.b64encode(png).decode()
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'width="300" height="300"><image width="300" height="300" '
        f'xlink:href="data:image/png;base64,{data}"/></svg>'
    )


# --- the run ---------------------------------------------------------------------------------


def organizations(organization_id: Any = None) -> list[Organization]:
    qs = Organization.objects.filter(
        pk__in=DunningPolicy.objects.filter(archived=False).values("organization_id")
    )
    if organization_id:
        qs = qs.filter(pk=organization_id)
    return list(qs.order_by("created_at"))


def run_organization(
    org: Organization,
    day: dt.date,
    *,
    now: dt.datetime | None = None,
    summary: Summary | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Summary:
    summary = summary if summary is not None else Summary()
    now = now or timezone.now()
    planned, skipped = plan(org, day)
    summary.skipped.extend(skipped)
    groups = rules.group(
        planned,
        lambda p: (
            (p.invoice.customer_id, p.policy.pk, p.step.channel, p.invoice.currency)
            if p.policy.group_per_customer
            else (p.invoice.pk,)
        ),
    )
    for group in groups.values():
        write_group(org, group, day, now, summary)
        if on_progress is not None:
            on_progress(len(group))
    return summary


def run_dunning(
    day: dt.date | None = None,
    organization_id: Any = None,
    *,
    now: dt.datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Summary:
    """Every organization with a policy (or one): reminders due on ``day`` (default: today
    in each organization's time zone)."""
    summary = Summary()
    now = now or timezone.now()
    for org in organizations(organization_id):
        org_day = day or now.astimezone(rules.zone(org.time_zone)).date()
        run_organization(org, org_day, now=now, summary=summary, on_progress=on_progress)
    return summary


def count_planned(day: dt.date | None = None, organization_id: Any = None) -> int:
    now = timezone.now()
    total = 0
    for org in organizations(organization_id):
        org_day = day or now.astimezone(rules.zone(org.time_zone)).date()
        total += len(plan(org, org_day)[0])
    return total


def run_for(ctx: Ctx, day: dt.date | None = None) -> Summary:
    """A run started by a person for their organization (never for a future date)."""
    ctx.require(Perm.SEND_INVOICES)
    today = ctx.today()
    day = day or today
    if day > today:
        from facturo.core.errors import BusinessError, _

        raise BusinessError(
            "dunning.future_date",
            _("A dunning run cannot be started for a future date (%(date)s)."),
            field="date",
            date=day.isoformat(),
        )
    return run_organization(ctx.organization, day)
