"""Dunning rules (pure): which step is due for a document on a given day, step order checks,
reminder templates with named variables, grouping, and office-hours scheduling.

Nothing here knows invoices: a *chased document* is anything with a reference date (the due
date of an invoice, the sending date of a quote) and steps are offsets from that date. The
``dunning`` app feeds invoices; quote follow-up feeds quotes the same way.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

MIN_OFFSET = -60
MAX_OFFSET = 730
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class StepRule:
    key: str  # stable identity of the step (its id)
    offset_days: int  # relative to the reference date (due date); negative: before it


@dataclass(frozen=True)
class StepProblem:
    index: int  # position in the list as given (0-based)
    code: str  # "order" | "duplicate" | "range"
    offset_days: int


def check_steps(offsets: Sequence[int]) -> list[StepProblem]:
    """Steps must go forward in time: strictly increasing offsets, each within
    [MIN_OFFSET, MAX_OFFSET]. An empty list is allowed (a policy that never chases)."""
    problems: list[StepProblem] = []
    for i, offset in enumerate(offsets):
        if not MIN_OFFSET <= offset <= MAX_OFFSET:
            problems.append(StepProblem(i, "range", offset))
        if i and offset == offsets[i - 1]:
            problems.append(StepProblem(i, "duplicate", offset))
        elif i and offset < offsets[i - 1]:
            problems.append(StepProblem(i, "order", offset))
    return problems


def step_date(reference: dt.date, step: StepRule) -> dt.date:
    return reference + dt.timedelta(days=step.offset_days)


def due_step(
    steps: Sequence[StepRule],
    reference: dt.date,
    today: dt.date,
    *,
    last_sent_offset: int | None = None,
) -> StepRule | None:
    """The one step to send today, or None.

    - the latest step whose date has come (missed earlier steps are not sent in a burst:
      the customer gets the most relevant reminder only);
    - never a step at or below an offset already reached by a reminder sent for this
      document (even under another policy: changing the policy never goes backwards nor
      repeats a level);
    - a step before the reference date (courtesy notice) is only sent before that date.
    """
    candidates = [s for s in steps if step_date(reference, s) <= today]
    if not candidates:
        return None
    step = max(candidates, key=lambda s: s.offset_days)
    if last_sent_offset is not None and step.offset_days <= last_sent_offset:
        return None
    if step.offset_days < 0 and today >= reference:
        return None
    return step


def days_late(due_date: dt.date, today: dt.date) -> int:
    return max(0, (today - due_date).days)


# --- templates -------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def template_variables(text: str) -> list[str]:
    """The variable names used in ``text`` (``{{ name }}``), in order of first use."""
    seen: dict[str, None] = {}
    for match in _VARIABLE.finditer(text):
        seen.setdefault(match.group(1), None)
    return list(seen)


def unknown_variables(text: str, allowed: Iterable[str]) -> list[str]:
    known = set(allowed)
    return [name for name in template_variables(text) if name not in known]


def unbalanced_braces(text: str) -> bool:
    """``{{`` without ``}}`` (or the reverse) once the variables are taken out."""
    rest = _VARIABLE.sub("", text)
    return "{{" in rest or "}}" in rest


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Replace each ``{{ name }}``; a name not in ``values`` raises KeyError (templates are
    checked when saved, so this only happens on a programming error)."""
    return _VARIABLE.sub(lambda m: values[m.group(1)], text)


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


# --- grouping --------------------------------------------------------------------------------


def group(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """Items by key, keys and items in first-seen order."""
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


# --- office hours ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficeHours:
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(18, 0)
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError("office hours must end after they start")
        if not self.weekdays or not self.weekdays <= set(range(7)):
            raise ValueError("office hours need at least one weekday (0 = Monday … 6)")


def zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("Europe/Paris")


def next_send_time(now: dt.datetime, hours: OfficeHours, tz: dt.tzinfo) -> dt.datetime:
    """``now`` if it falls within office hours in ``tz``, else the next opening; returned in
    UTC. Local times are built as wall-clock times in ``tz`` (a DST change is handled by
    zoneinfo: 09:00 stays 09:00 local)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local = now.astimezone(tz)
    day = local.date()
    for i in range(8):
        candidate = day + dt.timedelta(days=i)
        if candidate.weekday() not in hours.weekdays:
            continue
        opening = dt.datetime.combine(candidate, hours.start, tzinfo=tz)
        closing = dt.datetime.combine(candidate, hours.end, tzinfo=tz)
        if i == 0 and opening <= local < closing:
            return now.astimezone(dt.UTC)
        if local < opening:
            return opening.astimezone(dt.UTC)
    raise AssertionError("unreachable: a week always has an open weekday")
