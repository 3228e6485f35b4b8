"""Huey tasks and schedules: thin, each calls one service.

The Huey consumer (``run_huey``) imports this module; so should the web process at start-up
(``JobsConfig.ready``), so that queued e-mails are delivered right after their commit
instead of at the next periodic flush.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from facturo.banking import services as bank_services
from facturo.dunning import run as dunning_run
from facturo.dunning import services as dunning_services
from facturo.invoicing import sending  # noqa: F401  (registers the outbox attachment loader)
from facturo.notifications import services as notifications
from facturo.payments import online
from facturo.portal import links
from facturo.subscriptions import alerts, billing


# They return nothing: Huey would keep every result in its storage until read.
@db_task()
def deliver_outbox() -> None:
    notifications.deliver_pending()


@db_periodic_task(crontab(minute="*"))
def flush_outbox() -> None:
    """Every minute: delivers whatever is due, including e-mails whose enqueue was lost."""
    notifications.deliver_pending()


@db_periodic_task(crontab(minute="5"))
def daily_billing_run() -> None:
    """Every hour (at :05): bill the subscription periods due on each organization's own
    date, soon after its midnight (safe to run twice: each period is billed once)."""
    billing.run_due_billing()


@db_periodic_task(crontab(hour="7", minute="0"))
def subscription_alerts() -> None:
    """Every day at 07:00: renewals and ends of fixed-term subscriptions coming soon, to
    their owners (each alert once per subscription and period)."""
    alerts.send_alerts()


@db_periodic_task(crontab(minute="20"))
def bank_rematch() -> None:
    """Every hour (at :20): match the bank lines still open against the invoices issued
    since their import (safe to run twice or concurrently)."""
    bank_services.rematch_open_lines()


@db_periodic_task(crontab(hour="7", minute="30"))
def daily_dunning_run() -> None:
    """Every day at 07:30 (server time): queue the reminders due today in each
    organization's time zone; e-mails wait for the policy's office hours (safe to run twice)."""
    dunning_run.run_dunning()


def _payment_link(invoice: Any) -> str:
    # The portal lives above dunning: reminders get the customer's link through this hook.
    return links.invoice_link(invoice, base_url=settings.FACTURO_BASE_URL)


dunning_services.set_link_builder(_payment_link)


@db_periodic_task(crontab(minute="*/15"))
def send_payment_links() -> None:
    """Every 15 minutes: e-mail the card links of auto-pay invoices (once per invoice)."""
    online.send_payment_links()


@db_periodic_task(crontab(minute="7,37"))
def expire_stale_checkouts() -> None:
    """Twice an hour: expire hosted payment pages that ask for another amount than is owed
    (retries what a provider outage left open)."""
    online.expire_stale_checkouts()


notifications.set_delivery_trigger(deliver_outbox)
