"""Alerts to a subscription's owner: an upcoming renewal (N days before the next invoice) and
the end of a fixed-term subscription (an end date, or a number of invoices).

Idempotent by construction: ``SubscriptionAlert (subscription, kind, period_start)`` is unique
and written in the transaction that queues the e-mail, whose outbox key is derived from the
same triple — running the job twice, or concurrently, sends each alert once. The owner is
the subscription's ``owner_email``, else the organization's billing e-mail; without either,
nothing is sent (and nothing recorded, so adding an address later still alerts).

Failed periods are not alerted by e-mail: they are listed with their reason on the billing
run's page and on the subscription (retry from the run page, or any later run retries them).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F, Q

from facturo.core.money import round_money
from facturo.foundation.db import atomic
from facturo.notifications import services as notifications
from facturo.organizations.models import Organization

from .billing import run_ctx
from .models import IssueMode, Subscription, SubscriptionAlert, SubscriptionStatus
from .services import schedule_of

log = logging.getLogger(__name__)
DEFAULT_DAYS = 7
RENEWAL = "renewal"
END = "end"


@dataclass
class AlertSummary:
    renewal: int = 0
    end: int = 0
    no_recipient: int = 0


def _days() -> int:
    return int(getattr(settings, "FACTURO_RENEWAL_ALERT_DAYS", DEFAULT_DAYS))


def end_date(sub: Subscription) -> tuple[dt.date, int | None] | None:
    """When a fixed-term subscription stops being billed (exclusive), and after how many
    invoices; None when it runs until cancelled."""
    if sub.cancelled_at is not None:
        return None
    if sub.max_periods:
        last = None
        for period in schedule_of(sub).periods():
            last = period
        if last is not None and last.index == sub.max_periods:
            return last.end, sub.max_periods
        return (sub.ends_on, None) if sub.ends_on else None
    if sub.ends_on:
        return sub.ends_on, None
    return None


def _url(sub: Subscription) -> str:
    return f"{settings.FACTURO_BASE_URL}/subscriptions/{sub.pk}/"


def _send(
    sub: Subscription, org: Organization, kind: str, key_date: dt.date, context: dict[str, Any]
) -> bool:
    """Record the alert and queue its e-mail in one transaction; False if already sent."""
    to = sub.owner_email or org.email
    language = org.default_language if org.default_language in ("fr", "en") else "fr"
    subject, body = notifications.render_email(f"subscription_{kind}", language, context)
    try:
        with atomic():
            SubscriptionAlert.objects.create(subscription=sub, kind=kind, period_start=key_date)
            notifications.queue_email(
                organization_id=org.pk,
                idempotency_key=f"subscription-alert:{kind}:{sub.pk}:{key_date.isoformat()}",
                from_email=notifications.sender_address(org),
                to=[to],
                subject=subject,
                body=body,
                subject_id=sub.pk,
            )
    except IntegrityError:
        return False  # sent by an earlier (or concurrent) run
    return True


def _fmt(day: dt.date, language: str) -> str:
    return day.strftime("%d/%m/%Y") if language == "fr" else day.isoformat()


def send_alerts(today: dt.date | None = None, organization_id: Any = None) -> AlertSummary:
    """Alert owners of renewals and ends coming within ``FACTURO_RENEWAL_ALERT_DAYS`` days
    (default 7) of each organization's today (or ``today``)."""
    from .selectors import period_price

    summary = AlertSummary()
    days = _days()
    orgs = Organization.objects.filter(
        pk__in=Subscription.objects.filter(
            status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.ENDED]
        ).values("organization_id")
    )
    if organization_id:
        orgs = orgs.filter(pk=organization_id)
    for org in orgs.order_by("pk"):
        day = today or run_ctx(org).today()
        horizon = day + dt.timedelta(days=days)
        language = org.default_language if org.default_language in ("fr", "en") else "fr"
        candidates = (
            # « ended » once its last period is billed, until its end date
            Subscription.objects.filter(
                organization=org,
                status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.ENDED],
            )
            .filter(
                Q(next_invoice_date__gt=day, next_invoice_date__lte=horizon)
                | Q(ends_on__gt=day, ends_on__lte=horizon)
                | Q(max_periods__isnull=False, periods_billed__gte=F("max_periods") - 1)
            )
            .exclude(status=SubscriptionStatus.ENDED, last_period_end__lte=day)
            .select_related("customer")
            .prefetch_related("lines__product")
            .order_by("pk")
        )
        for sub in candidates.iterator(chunk_size=200):
            try:
                schedule = schedule_of(sub)
                nxt = schedule.next_period(sub.last_period_start)
                ends = end_date(sub)
            except Exception:  # a broken schedule is the billing run's to report
                log.warning("subscription %s: schedule unreadable, no alert", sub.pk)
                continue
            base = {
                "name": sub.name,
                "customer": sub.customer.name,
                "organization": org.name,
                "url": _url(sub),
            }
            if not (sub.owner_email or org.email):
                summary.no_recipient += 1
                continue
            if nxt is not None and day < nxt.invoice_date <= horizon and nxt.index > 1:
                price = round_money(period_price(sub, nxt.start), sub.currency)
                amount = f"{price} {sub.currency}"
                if language == "fr":
                    amount = amount.replace(".", ",")
                context = {
                    **base,
                    "date": _fmt(nxt.invoice_date, language),
                    "start": _fmt(nxt.start, language),
                    "last": _fmt(nxt.last_day, language),
                    "amount": amount,
                    "draft": sub.issue_mode == IssueMode.DRAFT,
                }
                if _send(sub, org, RENEWAL, nxt.start, context):
                    summary.renewal += 1
            if ends is not None and day < ends[0] <= horizon:
                context = {**base, "date": _fmt(ends[0], language), "count": ends[1]}
                if _send(sub, org, END, ends[0], context):
                    summary.end += 1
    return summary
