"""Dunning scenarios travelling in time (run dates given explicitly; the clock moved with
time-machine where a service reads it), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from facturo.core.errors import BusinessError
from facturo.dunning import run as dunning_run
from facturo.dunning import selectors
from facturo.dunning import services as dunning
from facturo.dunning.models import DunningTask, MessageStatus, Reminder, ReminderMessage
from facturo.invoicing import services as invoicing
from facturo.invoicing.models import Invoice
from facturo.notifications import services as notifications
from facturo.notifications.models import OutboxEmail, OutboxStatus
from facturo.organizations.context import Ctx
from facturo.organizations.models import Organization
from facturo.payments import services as payments
from tests.factories import lines, make_customer, make_org

D0 = dt.date(2026, 1, 5)  # issue date; net 30 → due 4 February 2026
DUE = D0 + dt.timedelta(days=30)
UTC = dt.UTC


def day(offset: int) -> dt.date:
    return DUE + dt.timedelta(days=offset)


@pytest.fixture(autouse=True)
def _no_render(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dunning_run, "RENDER_PENALTY_INVOICES", False)


def issue(ctx: Ctx, customer: Any, on: dt.date = D0, n: int = 1) -> Invoice:
    draft = invoicing.create_draft(ctx, customer.id, lines(n))
    return invoicing.issue_invoice(ctx, draft.id, issue_date=on, render=False)


def simple_steps(*offsets: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": f"Step {o}",
            "offset_days": o,
            "subject_fr": f"Relance {o} {{{{ invoice_number }}}}",
            "body_fr": "Dû : {{ total_due }}\n{{ invoice_list }}",
            "subject_en": f"Reminder {o} {{{{ invoice_number }}}}",
            "body_en": "Due: {{ total_due }}\n{{ invoice_list }}",
            **extra,
        }
        for o in offsets
    ]


def run(on: dt.date, org: Organization | None = None) -> dunning_run.Summary:
    # 10:00 Paris on that day: within office hours, so e-mails are due at once.
    now = dt.datetime.combine(on, dt.time(9, 0), tzinfo=UTC)
    return dunning_run.run_dunning(on, org.pk if org else None, now=now)


def reminders(invoice: Invoice) -> list[int]:
    return list(
        Reminder.objects.filter(invoice=invoice)
        .order_by("offset_days")
        .values_list("offset_days", flat=True)
    )


def test_each_step_once_in_order_and_a_second_run_sends_nothing(engine: str) -> None:
    _org, ctx = make_org()
    dunning.create_default_policy(ctx)
    invoice = issue(ctx, make_customer(ctx))
    assert run(day(-4)).queued == 0  # too early
    assert run(day(-3)).line() == "queued 1, skipped 0"  # courtesy
    assert run(day(-3)).line() == "queued 0, skipped 0"  # same day again: nothing
    assert run(day(2)).queued == 0  # courtesy is past, +7 not yet
    assert run(day(7)).queued == 1
    assert run(day(15)).queued == 1
    assert reminders(invoice) == [-3, 7, 15]
    task = DunningTask.objects.get(invoice=invoice)
    assert task.title == "Appeler le client"
    assert task.done_at is None
    emails = OutboxEmail.objects.filter(subject_id=invoice.id)
    assert emails.count() == 3
    assert all(e.idempotency_key.startswith("dunning:") for e in emails)
    last = ReminderMessage.objects.order_by("-created_at").first()
    assert last is not None
    assert invoice.number in last.body
    assert "15 jours de retard" in last.body
    assert "L441-10" in last.body  # B2B customer: the legal penalty text


def test_missed_steps_are_not_sent_in_a_burst(engine: str) -> None:
    _org, ctx = make_org()
    dunning.create_default_policy(ctx)
    invoice = issue(ctx, make_customer(ctx))
    summary = run(day(20))  # the server was off: only the latest due step (+15)
    assert summary.queued == 1
    assert reminders(invoice) == [15]


def test_paid_between_steps_stops_reminders(engine: str) -> None:
    _org, ctx = make_org()
    dunning.create_policy(ctx, name="P", steps=simple_steps(7, 15))
    customer = make_customer(ctx)
    invoice = issue(ctx, customer)
    assert run(day(7)).queued == 1
    payments.record_payment(
        ctx,
        customer_id=customer.id,
        amount=invoice.total_incl_vat,
        currency="EUR",
        method="transfer",
        received_on=day(9),
    )
    assert run(day(15)).line() == "queued 0, skipped 0"
    assert reminders(invoice) == [7]


def test_paid_after_queueing_is_cancelled_right_before_sending(engine: str, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.core import mail

    _org, ctx = make_org()
    dunning.create_policy(ctx, name="P", steps=simple_steps(7))
    customer = make_customer(ctx)
    invoice = issue(ctx, customer)
    assert run(day(7)).queued == 1
    payments.record_payment(
        ctx,
        customer_id=customer.id,
        amount=invoice.total_incl_vat,
        currency="EUR",
        method="transfer",
        received_on=day(7),
    )
    notifications.deliver_pending(now=dt.datetime(2030, 1, 1, tzinfo=UTC))
    # (a payment receipt may go out; the reminder must not)
    assert not [m for m in mail.outbox if m.subject.startswith("Relance 7")]
    row = OutboxEmail.objects.get(idempotency_key__startswith="dunning:")
    assert row.status == OutboxStatus.CANCELLED
    assert row.last_error.startswith("cancelled:")
    message = ReminderMessage.objects.get(outbox_email_id=row.id)
    assert message.status == MessageStatus.CANCELLED
    assert message.cancel_reason == f"{invoice.number}: status paid"


def test_partial_payment_reminds_of_what_is_left(engine: str) -> None:
    _org, ctx = make_org()
    dunning.create_policy(ctx, name="P", steps=simple_steps(7))
    customer = make_customer(ctx)
    invoice = issue(ctx, customer)
    assert invoice.total_incl_vat is not None
    payments.record_payment(
        ctx,
        customer_id=customer.id,
        amount=Decimal("100.00"),
        currency="EUR",
        method="transfer",
        received_on=day(3),
    )
    assert run(day(7)).queued == 1
    reminder = Reminder.objects.get(invoice=invoice)
    assert reminder.amount_due == invoice.total_incl_vat - Decimal("100.00")
    left = f"{reminder.amount_due:,.2f}".replace(",", "\u202f").replace(".", ",")
    assert left in reminder.message.body


def test_credit_note_stops_reminders(engine: str) -> None:
    _org, ctx = make_org()
    dunning.create_policy(ctx, name="P", steps=simple_steps(7, 15))
    invoice = issue(ctx, make_customer(ctx))
    assert run(day(7)).queued == 1
    invoicing.create_credit_note(ctx, invoice.id, reason="Annulée", issue=True, render=False)
    assert run(day(15)).line() == "queued 0, skipped 0"
    assert reminders(invoice) == [7]


def test_dispute_skips_with_the_reason_until_resolved(engine: str) -> None:
    _org, ctx = make_org()
    dunning.create_policy(ctx, name="P", steps=simple_steps(7, 15))
    invoice = issue(ctx, make_customer(ctx))
    dunning.mark_disputed(ctx, invoice.id, reason="Livraison incomplète")
    summary = run(day(7))
    assert summary.line() == "queued 0, skipped 1"
    assert summary.skipped[0].number == invoice.number
    assert summary.skipped[0].reason == "disputed: Livraison incomplète"
    dunning.resolve_dispute(ctx, invoice.id)
    assert run(day(16)).queued == 1
    assert reminders(invoice) == [15]


def test_pause_until_a_date(engine: str) -> None:
    with time_machine.travel(dt.datetime(2026, 2, 1, 12, tzinfo=UTC), tick=False):
        _org, ctx = make_org()
        dunning.create_policy(ctx, name="P", steps=simple_steps(7, 15))
        customer = make_customer(ctx)
        invoice = issue(ctx, customer)
        with pytest.raises(BusinessError) as err:
            dunning.pause(ctx, customer_id=customer.id, until="2026-01-20", reason="x")
        assert err.value.code == "dunning.pause_in_past"
        dunning.pause(ctx, customer_id=customer.id, until=day(10), reason="Promesse de paiement")
    summary = run(day(7))
    assert summary.skipped[0].reason == f"paused until {day(10).isoformat()}"
    assert run(day(10)).queued == 0  # the end date is included
    assert run(day(11)).queued == 1  # pause over: the latest due step (+7) goes out
    assert reminders(invoice) == [7]


def test_policy_changed_mid_way_never_goes_back(engine: str) -> None:
    _org, ctx = make_org()
    dunning.create_policy(ctx, name="A", steps=simple_steps(7, 15))
    b = dunning.create_policy(ctx, name="B", steps=simple_steps(5, 20))
    customer = make_customer(ctx)
    invoice = issue(ctx, customer)
    assert run(day(7)).queued == 1  # A's +7
    dunning.assign_policy(ctx, b.id, customer_id=customer.id)
    assert run(day(15)).queued == 0  # B has no +15, and B's +5 is behind
    assert run(day(20)).queued == 1
    assert reminders(invoice) == [7, 20]
    steps = Reminder.objects.filter(invoice=invoice).values_list("step__policy__name", flat=True)
    assert sorted(steps) == ["A", "B"]


def test_policy_edited_mid_way_keeps_the_history(engine: str) -> None:
    _org, ctx = make_org()
    policy = dunning.create_policy(ctx, name="A", steps=simple_steps(7, 15))
    invoice = issue(ctx, make_customer(ctx))
    assert run(day(7)).queued == 1
    ids = [str(s.pk) for s in policy.steps.order_by("offset_days")]
    edited = simple_steps(10, 30)
    edited[0]["id"] = ids[0]  # the sent step moves: it is archived, a new one takes its place
    dunning.update_policy(ctx, policy.id, steps=edited)
    assert list(policy.steps.filter(archived=False).values_list("offset_days", flat=True)) == [
        10,
        30,
    ]
    assert run(day(10)).queued == 1
    assert run(day(30)).queued == 1
    assert reminders(invoice) == [7, 10, 30]


def test_grouped_reminder_lists_all_invoices_of_the_customer(engine: str) -> None:
    org, ctx = make_org()
    dunning.create_policy(ctx, name="G", steps=simple_steps(7, 15), group_per_customer=True)
    customer = make_customer(ctx)
    other = make_customer(ctx, name="Garage Durand", email="compta@garage-durand.example")
    first = issue(ctx, customer, D0)
    second = issue(ctx, customer, D0 + dt.timedelta(days=2))
    third = issue(ctx, other, D0 + dt.timedelta(days=2))
    summary = run(day(9))
    assert summary.queued == 3
    assert summary.messages == 2
    message = Reminder.objects.get(invoice=first).message
    assert Reminder.objects.get(invoice=second).message == message
    assert Reminder.objects.get(invoice=third).message != message
    assert first.number in message.body
    assert second.number in message.body
    assert third.number not in message.body
    assert OutboxEmail.objects.filter(organization_id=org.id).count() == 2
    total = (first.total_incl_vat or 0) + (second.total_incl_vat or 0)
    assert message.total_due == total


def test_time_zone_and_office_hours(engine: str) -> None:
    org, ctx = make_org()
    Organization.objects.filter(pk=org.pk).update(time_zone="Pacific/Auckland")
    org.refresh_from_db()
    dunning.create_policy(ctx, name="P", steps=simple_steps(7))
    invoice = issue(ctx, make_customer(ctx))
    # 10 Feb 2026 at 20:00 UTC is already 11 Feb 09:00 in Auckland (UTC+13): +7 is due.
    now = dt.datetime(2026, 2, 10, 20, 0, tzinfo=UTC)
    assert dunning_run.run_dunning(now=now).queued == 1
    message = Reminder.objects.get(invoice=invoice).message
    assert message.run_date == day(7)
    assert message.scheduled_for == now  # 09:00 local: office is open

    org2, ctx2 = make_org("paris@example.com", name="Paris SAS")
    dunning.create_policy(ctx2, name="P", steps=simple_steps(7))
    invoice2 = issue(ctx2, make_customer(ctx2))
    # Saturday 14 Feb 2026, 05:00 UTC = 06:00 in Paris: queued for Monday 09:00 Paris.
    saturday = dt.datetime(2026, 2, 14, 5, 0, tzinfo=UTC)
    dunning_run.run_dunning(organization_id=org2.pk, now=saturday)
    message2 = Reminder.objects.get(invoice=invoice2).message
    assert message2.scheduled_for == dt.datetime(2026, 2, 16, 8, 0, tzinfo=UTC)
    email = OutboxEmail.objects.get(pk=message2.outbox_email_id)
    assert email.next_attempt_at == message2.scheduled_for


def test_late_interest_invoice_for_b2b_only(engine: str) -> None:
    _org, ctx = make_org()
    steps = simple_steps(30)
    steps[0]["add_interest"] = True
    dunning.create_policy(ctx, name="P", steps=steps)
    company = make_customer(ctx)
    person = make_customer(ctx, name="Jean Dupont", kind="person", siren="", vat_number="")
    invoice = issue(ctx, company)
    issue(ctx, person)
    summary = run(day(30))
    assert summary.queued == 2
    assert summary.penalty_invoices == 1
    reminder = Reminder.objects.get(invoice=invoice)
    penalty = reminder.penalty_invoice
    assert penalty is not None
    assert penalty.customer_id == company.id
    # Default legal rate, first half of 2026: ECB 2.15 % + 10 points = 12.15 % (L441-10 II),
    # 30 days on the invoice's total, actual/365.
    total = invoice.total_incl_vat or Decimal(0)
    expected = (total * Decimal("12.15") / 100 * 30 / 365).quantize(Decimal("0.01"))
    amounts = sorted(line.unit_price for line in penalty.lines.all())
    assert amounts == sorted([expected, Decimal("40.00")])
    assert penalty.total_incl_vat == expected + Decimal("40.00")  # outside the scope of VAT
    # The penalty invoice is not itself penalised at a later interest step.
    assert run(day(30)).queued == 0


def test_letter_channel_stores_the_pdf(engine: str) -> None:
    _org, ctx = make_org()
    steps = simple_steps(30)
    steps[0].update(
        channel="letter", body_fr="Mise en demeure\n\n{{ invoice_list }}\n{{ sepa_qr }}"
    )
    dunning.create_policy(ctx, name="P", steps=steps)
    invoice = issue(ctx, make_customer(ctx, email=""))  # no e-mail needed for letters
    assert run(day(30)).queued == 1
    message = Reminder.objects.get(invoice=invoice).message
    assert message.channel == "letter"
    assert message.outbox_email_id is None
    assert bytes(message.pdf).startswith(b"%PDF")
    timeline = selectors.timeline(ctx, invoice.id)
    assert [e.kind for e in timeline] == ["issued", "reminder"]


def test_bad_input_is_refused_when_saving(engine: str) -> None:
    _org, ctx = make_org()
    with pytest.raises(BusinessError) as err:
        dunning.create_policy(ctx, name="P", steps=simple_steps(15, 7))
    assert err.value.code == "dunning.step_order"
    assert err.value.field == "steps.1.offset_days"
    assert "Step 2 (7 days) must come after step 1 (15 days)" in err.value.message
    bad = simple_steps(7)
    bad[0]["body_en"] = "Hello {{ customer_nam }}"
    with pytest.raises(BusinessError) as err:
        dunning.create_policy(ctx, name="P", steps=bad)
    assert err.value.code == "dunning.unknown_variable"
    assert err.value.field == "steps.0.body_en"
    assert "customer_nam" in err.value.message
    with pytest.raises(BusinessError) as err:
        dunning.preview(ctx, subject="x", body="{{ nope }}", language="fr")
    assert err.value.code == "dunning.unknown_variable"
    policy = dunning.create_policy(ctx, name="P", steps=simple_steps(7))
    silent = make_customer(ctx, name="Sans Mail", email="")
    with pytest.raises(BusinessError) as err:
        dunning.assign_policy(ctx, policy.id, customer_id=silent.id)
    assert err.value.code == "dunning.customer_no_email"
    # Reaching the run anyway (the customer lost its address later): skipped, with why.
    invoice = issue(ctx, silent)
    summary = run(day(7))
    assert summary.line() == "queued 0, skipped 1"
    assert summary.skipped[0].invoice_id == invoice.id
    assert "no e-mail address" in summary.skipped[0].reason


def test_preview_renders_in_both_languages(engine: str) -> None:
    _org, ctx = make_org()
    subject, body = dunning.preview(
        ctx, subject="Facture {{ invoice_number }}", body="{{ invoice_list }}", language="fr"
    )
    assert subject == "Facture F-2026-0042"
    assert "jours de retard" in body
    _s, body_en = dunning.preview(ctx, subject="x", body="{{ invoice_list }}", language="en")
    assert "days late" in body_en


def test_upcoming_and_other_organization(engine: str) -> None:
    _org, ctx = make_org()
    dunning.create_policy(ctx, name="P", steps=simple_steps(7, 15))
    invoice = issue(ctx, make_customer(ctx))
    upcoming = selectors.upcoming(ctx, start=day(3), days=7)
    assert [(u.invoice.pk, u.step.offset_days, u.on) for u in upcoming] == [(invoice.pk, 7, day(7))]
    _other_org, other_ctx = make_org("other@example.com", name="Autre")
    from facturo.core.errors import NotFound

    with pytest.raises(NotFound):
        dunning.mark_disputed(other_ctx, invoice.id, reason="x")


def test_interest_uses_the_rate_printed_on_the_invoice(engine: str) -> None:
    org, ctx = make_org()
    Organization.objects.filter(pk=org.pk).update(late_penalty_rate=Decimal("15"))
    ctx.organization.refresh_from_db()
    invoice = issue(ctx, make_customer(ctx))  # prints "15 % par an"
    Organization.objects.filter(pk=org.pk).update(late_penalty_rate=None)  # changed later
    assert dunning.invoice_rate(invoice) == Decimal("15")
    steps = simple_steps(20)
    steps[0]["add_interest"] = True
    dunning.create_policy(ctx, name="P", steps=steps)
    assert run(day(20)).penalty_invoices == 1
    penalty = Reminder.objects.get(invoice=invoice).penalty_invoice
    assert penalty is not None
    # 15 % is above the floor (3 × 2.62 % = 7.86 %, S1 2026): 20 days at 15 %, actual/365.
    total = invoice.total_incl_vat or Decimal(0)
    expected = (total * Decimal("0.15") * 20 / 365).quantize(Decimal("0.01"))
    assert expected in [line.unit_price for line in penalty.lines.all()]
