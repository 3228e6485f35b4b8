"""Renewal and end-of-term alerts to the subscription's owner, through the outbox, once per
subscription and period (running the job again sends nothing more)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine

from facturo.notifications.models import OutboxEmail
from facturo.subscriptions import alerts, billing
from facturo.subscriptions import services as subs
from facturo.subscriptions.models import SubscriptionAlert
from tests.factories import make_customer, make_org

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
D = dt.date.fromisoformat
pytestmark = pytest.mark.django_db


def at(day: str) -> dt.datetime:
    return dt.datetime.combine(D(day), dt.time(9, 0), PARIS)


def alert_mails() -> list[OutboxEmail]:
    return list(
        OutboxEmail.objects.filter(idempotency_key__startswith="subscription-alert:").order_by(
            "idempotency_key"
        )
    )


def test_renewal_and_end_alerts_go_once_to_the_owner() -> None:
    with time_machine.travel(at("2027-01-01"), tick=False) as clock:
        org, ctx = make_org()
        customer = make_customer(ctx)
        line = [{"description": "Maintenance", "unit_price": "30.00", "vat_rate": "20"}]
        renewing = subs.create_subscription(ctx, customer.id, start_date="2027-01-01", lines=line,
                                            owner_email="commercial@example.com")  # fmt: skip
        fixed = subs.create_subscription(ctx, customer.id, start_date="2027-01-01", lines=line,
                                         max_periods=2, name="Contrat 2 mois")  # fmt: skip
        billing.run_billing(D("2027-01-01"))
        assert alerts.send_alerts().renewal == 0  # 1 February is more than 7 days away

        clock.move_to(at("2027-01-26"))
        first = alerts.send_alerts()
        assert (first.renewal, first.end) == (2, 0)
        again = alerts.send_alerts()  # the job runs again (or twice at once): nothing more
        assert (again.renewal, again.end) == (0, 0)
        mails = alert_mails()
        assert len(mails) == 2
        by_to = {m.to[0]: m for m in mails}
        mail = by_to["commercial@example.com"]
        assert "Renouvellement le 01/02/2027" in mail.subject
        assert "30,00 EUR" in mail.body
        assert f"/subscriptions/{renewing.pk}/" in mail.body
        assert org.email in by_to  # without an owner, the organization's address

        clock.move_to(at("2027-02-01"))
        billing.run_billing(D("2027-02-01"))
        clock.move_to(at("2027-02-25"))
        end = alerts.send_alerts()
        assert (end.renewal, end.end) == (1, 1)  # the fixed-term one ends, the other renews
        assert alerts.send_alerts().end == 0
    (ending,) = [m for m in alert_mails() if m.idempotency_key.startswith("subscription-alert:end")]
    assert "Fin d'abonnement le 01/03/2027" in ending.subject
    assert "après 2 factures" in ending.body
    assert SubscriptionAlert.objects.filter(subscription=fixed, kind="end").count() == 1


def test_no_address_no_alert_and_nothing_recorded() -> None:
    with time_machine.travel(at("2027-01-26"), tick=False):
        org, ctx = make_org()
        org.email = ""
        org.save(update_fields=["email"])
        customer = make_customer(ctx)
        line = [{"description": "Maintenance", "unit_price": "30.00", "vat_rate": "20"}]
        subs.create_subscription(ctx, customer.id, start_date="2027-01-01", lines=line,
                                 ends_on="2027-02-01")  # fmt: skip
        summary = alerts.send_alerts()
    assert summary.no_recipient == 1
    assert not SubscriptionAlert.objects.exists()
    assert alert_mails() == []
