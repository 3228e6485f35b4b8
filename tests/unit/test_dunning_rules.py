"""Pure dunning rules: step order, the step due on a day, templates, office hours."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from facturo.core import dunning as rules
from facturo.core.dunning import OfficeHours, StepRule, due_step, next_send_time

DUE = dt.date(2026, 3, 2)
STEPS = [StepRule("c", -3), StepRule("r1", 7), StepRule("r2", 15), StepRule("md", 30)]
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
UTC = dt.UTC


def at(offset: int) -> dt.date:
    return DUE + dt.timedelta(days=offset)


def test_step_order_problems() -> None:
    assert rules.check_steps([-3, 7, 15, 30, 45]) == []
    assert rules.check_steps([]) == []
    assert [(p.index, p.code) for p in rules.check_steps([7, 15, 10])] == [(2, "order")]
    assert [(p.index, p.code) for p in rules.check_steps([7, 7])] == [(1, "duplicate")]
    assert [(p.index, p.code) for p in rules.check_steps([-90, 7])] == [(0, "range")]


@pytest.mark.parametrize(
    ("offset", "last", "expected"),
    [
        (-4, None, None),  # nothing yet
        (-3, None, "c"),  # courtesy, before the due date
        (0, None, None),  # courtesy is only sent before the due date
        (6, -3, None),
        (7, -3, "r1"),
        (7, 7, None),  # already sent
        (20, None, "r2"),  # missed steps: only the latest one
        (20, 15, None),
        (40, 7, "md"),
        (40, 30, None),
        (40, 60, None),  # a later level reached (other policy): never go back
    ],
)
def test_due_step(offset: int, last: int | None, expected: str | None) -> None:
    step = due_step(STEPS, DUE, at(offset), last_sent_offset=last)
    assert (step.key if step else None) == expected


def test_templates() -> None:
    text = "Bonjour {{ customer_name }}, {{total_due}} dû. {{ customer_name }}"
    assert rules.template_variables(text) == ["customer_name", "total_due"]
    assert rules.unknown_variables(text, {"customer_name"}) == ["total_due"]
    assert rules.render_template(text, {"customer_name": "A", "total_due": "5 €"}) == (
        "Bonjour A, 5 € dû. A"
    )
    assert rules.unbalanced_braces("Bonjour {{ name")
    assert not rules.unbalanced_braces("Bonjour {{ name }}")


def test_group_keeps_first_seen_order() -> None:
    assert rules.group([3, 1, 4, 1, 5], lambda n: n % 2) == {1: [3, 1, 1, 5], 0: [4]}


def test_office_hours_in_the_organization_time_zone() -> None:
    hours = OfficeHours()
    # Tuesday 10:00 Paris (09:00 UTC in winter): now.
    now = dt.datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    assert next_send_time(now, hours, PARIS) == now
    # Tuesday 19:00 Paris: Wednesday 09:00 Paris = 08:00 UTC.
    late = dt.datetime(2026, 3, 3, 18, 0, tzinfo=UTC)
    assert next_send_time(late, hours, PARIS) == dt.datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
    # Friday 20:00 Paris → Monday 09:00.
    friday = dt.datetime(2026, 3, 6, 19, 0, tzinfo=UTC)
    assert next_send_time(friday, hours, PARIS) == dt.datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    # Across the switch to summer time (29 March 2026): Monday 09:00 Paris is 07:00 UTC.
    saturday = dt.datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert next_send_time(saturday, hours, PARIS) == dt.datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    # Another zone: 23:00 UTC Monday is Tuesday 12:00 in Auckland (UTC+13): open.
    auckland = zoneinfo.ZoneInfo("Pacific/Auckland")
    monday = dt.datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    assert next_send_time(monday, hours, auckland) == monday
    with pytest.raises(ValueError, match="end after they start"):
        OfficeHours(dt.time(18), dt.time(9))
    naive = dt.datetime(2026, 3, 3, 9, 0)  # noqa: DTZ001 - the case refused
    with pytest.raises(ValueError, match="timezone-aware"):
        next_send_time(naive, hours, PARIS)


def test_quote_follow_up_uses_the_same_rules() -> None:
    """Quotes plug into the same rules: the reference date is the day the quote was sent,
    steps are "N days without an answer" (see docs/dunning.md, quote follow-up)."""
    sent = dt.date(2026, 3, 2)
    follow_ups = [StepRule("q1", 7), StepRule("q2", 14)]
    assert rules.check_steps([s.offset_days for s in follow_ups]) == []
    assert due_step(follow_ups, sent, sent + dt.timedelta(days=6)) is None
    first = due_step(follow_ups, sent, sent + dt.timedelta(days=7))
    assert first is not None
    assert first.key == "q1"
    assert due_step(follow_ups, sent, sent + dt.timedelta(days=9), last_sent_offset=7) is None
    second = due_step(follow_ups, sent, sent + dt.timedelta(days=30), last_sent_offset=7)
    assert second is not None
    assert second.key == "q2"
