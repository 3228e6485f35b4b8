"""Proration by day, exact to the minor unit.

The arithmetic (also in docs/subscriptions.md):

- A price ``P`` for a period of ``D`` days split at dates ``c1 < c2 < …`` into pieces of
  ``d1, d2, …`` days (Σ di = D) gives the pieces ``split_amount(P, [d1, d2, …])``: the
  largest-remainder split of ``core.money``, each piece rounded to the minor unit, ties to
  the earliest piece. **The pieces always sum to P exactly**, whatever the split.
- The piece of ``[a, b)`` inside ``[s, e)`` is always computed by splitting ``[s, e)`` at
  ``a`` and ``b`` (never by ``P × days / D`` rounded on its own), so the pieces of one
  period computed at different times stay consistent and sum to the whole.
- A stub period (first period before the anchor, last period cut by an end date) is the
  first piece of its natural period: ``split_amount(P, [days, D − days])[0]``.
- A mid-period change at ``c`` of a period ``[s, e)`` billed in advance at ``P_old``:
  the customer owes ``piece(P_new, [c, e)) − piece(P_old, [c, e))`` — positive: charged,
  negative: credited. Paid in total: ``piece(P_old, [s, c)) + piece(P_new, [c, e))``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from .errors import BusinessError, _
from .money import round_money, split_amount


def split_by_days(amount: Decimal, cuts: Sequence[date], currency: str) -> list[Decimal]:
    """Split ``amount`` over the consecutive pieces ``[cuts[0], cuts[1]), [cuts[1], cuts[2])…``.
    The pieces sum to ``amount`` rounded to the currency's minor unit."""
    if len(cuts) < 2:
        raise ValueError("at least a start and an end")
    days = [(b - a).days for a, b in itertools.pairwise(cuts)]
    if any(d < 0 for d in days):
        raise BusinessError(
            "proration.unordered", _("Proration dates must be in order."), field="date"
        )
    if sum(days) == 0:
        raise BusinessError("proration.empty_period", _("The period is empty."), field="date")
    return split_amount(round_money(amount, currency), [Decimal(d) for d in days], currency)


def piece(
    amount: Decimal, period: tuple[date, date], part: tuple[date, date], currency: str
) -> Decimal:
    """The share of ``amount`` (the price of the whole ``period``) for ``part`` ⊆ ``period``."""
    start, end = period
    a, b = part
    if not (start <= a <= b <= end):
        raise BusinessError(
            "proration.outside_period",
            _("The date %(date)s is outside the period %(start)s – %(end)s."),
            field="date",
            date=(a if a < start or a > end else b).isoformat(),
            start=start.isoformat(),
            end=end.isoformat(),
        )
    cuts = [start]
    for c in (a, b):
        if c != cuts[-1]:
            cuts.append(c)
    if end != cuts[-1]:
        cuts.append(end)
    if a == b:
        return round_money(Decimal(0), currency)
    pieces = split_by_days(amount, cuts, currency)
    return pieces[0] if a == start else pieces[1]


def stub(amount: Decimal, days: int, full_days: int, currency: str) -> Decimal:
    """The first ``days`` of a natural period of ``full_days`` (a stub period)."""
    if not 0 < days <= full_days:
        raise BusinessError("proration.invalid_days", _("Invalid number of days."), field="date")
    if days == full_days:
        return round_money(amount, currency)
    return split_amount(
        round_money(amount, currency), [Decimal(days), Decimal(full_days - days)], currency
    )[0]


def change_adjustment(
    old: Decimal,
    new: Decimal,
    period: tuple[date, date],
    change: date,
    currency: str,
    until: date | None = None,
) -> Decimal:
    """What a change on ``change`` costs (positive) or gives back (negative) for a period
    already billed at ``old``; the full-period price becomes ``new`` from that day.

    ``period`` is the *natural* period the prices are for; a billed stub ending before it
    (an end date cut it) passes its end as ``until``, so only the billed days count."""
    rest = (change, until or period[1])
    return piece(new, period, rest, currency) - piece(old, period, rest, currency)
