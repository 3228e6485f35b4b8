"""Time-travel scenarios (time-machine): every preset × advance/arrears × month ends (31st,
February, leap day) × trial × pause × upgrade/downgrade × cancel × end after N.

Each scenario creates a subscription, travels through its actions and billing runs, and
compares every invoice and credit note produced with the golden data below: one string per
document, ``kind period_start..period_end (last day) total_excl_vat``.

Provenance of the golden data: produced by this implementation, then checked by hand for
the rows marked ✓ in the comments (calendar and proration arithmetic written out in
docs/subscriptions.md); any change of behaviour shows up here as a diff.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from facturo.invoicing.models import Invoice
from facturo.organizations.models import DocumentKind
from facturo.subscriptions import billing
from facturo.subscriptions import services as subs
from facturo.subscriptions.models import BillingPeriod
from tests.factories import make_customer, make_org

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
D = dt.date.fromisoformat
PRESETS = {
    "weekly": {"unit": "week", "interval": 1},
    "biweekly": {"unit": "week", "interval": 2},
    "semi_monthly": {"unit": "semi_month", "semi_month_days": (1, 15)},
    "monthly": {"unit": "month", "interval": 1},
    "bimonthly": {"unit": "month", "interval": 2},
    "quarterly": {"unit": "month", "interval": 3},
    "half_yearly": {"unit": "month", "interval": 6},
    "yearly": {"unit": "year", "interval": 1},
    "every_10_days": {"unit": "day", "interval": 10},
}
PRICE = "120.00"


def scenario(name: str, preset: str, start: str, until: str, **kw: Any) -> Any:
    return pytest.param(name, preset, start, until, kw, id=name)


SCENARIOS = [
    # every preset, in advance and in arrears, starting on the 1st
    *(
        scenario(f"{p}-{t}-1st", p, "2027-01-01", "2027-04-02", timing=t)
        for p in PRESETS
        for t in ("advance", "arrears")
    ),
    # month ends: 31st anchor, February, leap day
    *(
        scenario(f"{p}-{t}-31st", p, "2027-01-31", "2027-06-01", timing=t)
        for p in ("monthly", "bimonthly", "quarterly")
        for t in ("advance", "arrears")
    ),
    *(
        scenario(f"{p}-{t}-leapday", p, "2028-02-29", "2029-03-02", timing=t)
        for p in ("monthly", "yearly", "half_yearly")
        for t in ("advance", "arrears")
    ),
    scenario("monthly-advance-30th-february", "monthly", "2027-01-30", "2027-04-01"),
    # anchored on the 1st, starting mid-month: a prorated stub first
    *(
        scenario(f"{p}-{t}-stub-anchor1", p, "2027-01-20", "2027-04-02", timing=t, anchor_day=1)
        for p in ("monthly", "quarterly", "yearly")
        for t in ("advance", "arrears")
    ),
    # trial
    *(
        scenario(f"{p}-{t}-trial14", p, "2027-01-01", "2027-03-20", timing=t, trial_days=14)
        for p in ("monthly", "weekly")
        for t in ("advance", "arrears")
    ),
    scenario(
        "monthly-trial-anchor1", "monthly", "2027-01-01", "2027-03-02", trial_days=10, anchor_day=1
    ),
    # pause / resume
    *(
        scenario(
            f"{p}-{t}-pause",
            p,
            "2027-01-01",
            "2027-06-02",
            timing=t,
            actions=[("2027-01-20", "pause", "2027-02-01"), ("2027-03-10", "resume", "2027-04-01")],
        )
        for p in ("monthly", "weekly")
        for t in ("advance", "arrears")
    ),
    # upgrade / downgrade mid-period, each proration mode
    *(
        scenario(
            f"monthly-{t}-{kind}-{mode}",
            "monthly",
            "2027-01-01",
            "2027-03-02",
            timing=t,
            proration_mode=mode,
            actions=[("2027-01-16", "change", "240.00" if kind == "upgrade" else "60.00")],
        )
        for t in ("advance", "arrears")
        for kind in ("upgrade", "downgrade")
        for mode in ("invoice_now", "next_invoice", "none")
    ),
    # cancel at period end / immediately (credit note when billed in advance)
    *(
        scenario(
            f"monthly-{t}-cancel-{when}",
            "monthly",
            "2027-01-01",
            "2027-05-02",
            timing=t,
            actions=[("2027-02-10", "cancel", when)],
        )
        for t in ("advance", "arrears")
        for when in ("period_end", "now")
    ),
    # end after N, end on a date
    *(
        scenario(f"{p}-{t}-after3", p, "2027-01-01", "2028-01-02", timing=t, max_periods=3)
        for p in ("monthly", "quarterly")
        for t in ("advance", "arrears")
    ),
    scenario(
        "monthly-advance-ends-on", "monthly", "2027-01-01", "2027-05-02", ends_on="2027-03-16"
    ),
    scenario(
        "monthly-arrears-ends-on",
        "monthly",
        "2027-01-01",
        "2027-05-02",
        timing="arrears",
        ends_on="2027-03-16",
    ),
    # catch-up: the server was off for months, one run bills every missed period
    scenario("monthly-advance-catchup", "monthly", "2027-01-01", "2027-05-10", step=130),
    scenario(
        "weekly-arrears-catchup", "weekly", "2027-01-01", "2027-02-20", timing="arrears", step=50
    ),
    # discount with an end date, draft mode
    scenario(
        "monthly-discount-until",
        "monthly",
        "2027-01-01",
        "2027-04-02",
        discount="10",
        discount_until="2027-03-01",
    ),
    scenario("monthly-drafts", "monthly", "2027-01-01", "2027-03-02", issue_mode="draft"),
]


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(9, 0), PARIS)


def play(preset: str, start: str, until: str, kw: dict[str, Any]) -> list[str]:
    kw = dict(kw)
    actions = {D(a[0]): a for a in kw.pop("actions", [])}
    step = kw.pop("step", 1)
    discount = kw.pop("discount", None)
    discount_until = kw.pop("discount_until", None)
    begin, end = D(start), D(until)
    with time_machine.travel(_at(begin), tick=False) as clock:
        org, ctx = make_org()
        customer = make_customer(ctx)
        line: dict[str, Any] = {"description": "Abonnement", "unit_price": PRICE, "vat_rate": "20"}
        if discount:
            line.update(discount_percent=discount, discount_until=discount_until)
        sub = subs.create_subscription(
            ctx, customer.id, start_date=begin, lines=[line], **PRESETS[preset], **kw
        )
        day = begin
        while day <= end:
            clock.move_to(_at(day))
            action = actions.get(day)
            if action:
                _, what, arg = action
                if what == "pause":
                    subs.pause(ctx, sub.id, on=arg)
                elif what == "resume":
                    subs.resume(ctx, sub.id, on=arg)
                elif what == "change":
                    line2 = {"description": "Abonnement+", "unit_price": arg, "vat_rate": "20"}
                    subs.change(ctx, sub.id, lines=[line2], effective=day, render=False)
                elif what == "cancel":
                    subs.cancel(
                        ctx, sub.id, at_period_end=arg == "period_end", on=day, render=False
                    )
            billing.run_billing(day)
            day += dt.timedelta(
                days=step
                if day + dt.timedelta(days=step) <= end or day == end
                else (end - day).days or 1
            )
    return describe(org)


def describe(org: Any) -> list[str]:
    periods = {
        bp.invoice_id: bp
        for bp in BillingPeriod.objects.filter(organization=org).exclude(invoice=None)
    }
    out: list[tuple[Any, str]] = []
    for inv in Invoice.objects.filter(organization=org):
        bp = periods.get(inv.id)
        total = inv.total_excl_vat
        if total is None:
            from facturo.invoicing.services import draft_totals

            total = draft_totals(inv).tax_exclusive
        kind = {DocumentKind.CREDIT_NOTE: "credit", DocumentKind.INVOICE: "invoice"}[inv.kind]
        if inv.is_draft:
            kind = "draft"
        where = f"{bp.period_start}..{bp.period_end - dt.timedelta(days=1)}" if bp else "change"
        key = (bp.period_start if bp else inv.issue_date or dt.date.max, kind != "invoice")
        out.append((key, f"{kind} {where} {Decimal(total):.2f}"))
    return [text for _, text in sorted(out)]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "preset", "start", "until", "kw"), SCENARIOS)
def test_scenario(name: str, preset: str, start: str, until: str, kw: dict[str, Any]) -> None:
    got = play(preset, start, until, kw)
    if os.environ.get("FACTURO_WRITE_GOLDEN"):  # regenerate: review the diff by hand
        with open(os.environ["FACTURO_WRITE_GOLDEN"], "a") as out:
            out.write(json.dumps({name: got}) + "\n")
        return
    assert got == GOLDEN[name]


def test_there_are_at_least_60_scenarios() -> None:
    assert len(SCENARIOS) >= 60
    assert set(GOLDEN) == {p.id for p in SCENARIOS}


GOLDEN: dict[str, list[str]] = {
    "weekly-advance-1st": [
        "invoice 2027-01-01..2027-01-07 120.00",
        "invoice 2027-01-08..2027-01-14 120.00",
        "invoice 2027-01-15..2027-01-21 120.00",
        "invoice 2027-01-22..2027-01-28 120.00",
        "invoice 2027-01-29..2027-02-04 120.00",
        "invoice 2027-02-05..2027-02-11 120.00",
        "invoice 2027-02-12..2027-02-18 120.00",
        "invoice 2027-02-19..2027-02-25 120.00",
        "invoice 2027-02-26..2027-03-04 120.00",
        "invoice 2027-03-05..2027-03-11 120.00",
        "invoice 2027-03-12..2027-03-18 120.00",
        "invoice 2027-03-19..2027-03-25 120.00",
        "invoice 2027-03-26..2027-04-01 120.00",
        "invoice 2027-04-02..2027-04-08 120.00",
    ],
    "weekly-arrears-1st": [
        "invoice 2027-01-01..2027-01-07 120.00",
        "invoice 2027-01-08..2027-01-14 120.00",
        "invoice 2027-01-15..2027-01-21 120.00",
        "invoice 2027-01-22..2027-01-28 120.00",
        "invoice 2027-01-29..2027-02-04 120.00",
        "invoice 2027-02-05..2027-02-11 120.00",
        "invoice 2027-02-12..2027-02-18 120.00",
        "invoice 2027-02-19..2027-02-25 120.00",
        "invoice 2027-02-26..2027-03-04 120.00",
        "invoice 2027-03-05..2027-03-11 120.00",
        "invoice 2027-03-12..2027-03-18 120.00",
        "invoice 2027-03-19..2027-03-25 120.00",
        "invoice 2027-03-26..2027-04-01 120.00",
    ],
    "biweekly-advance-1st": [
        "invoice 2027-01-01..2027-01-14 120.00",
        "invoice 2027-01-15..2027-01-28 120.00",
        "invoice 2027-01-29..2027-02-11 120.00",
        "invoice 2027-02-12..2027-02-25 120.00",
        "invoice 2027-02-26..2027-03-11 120.00",
        "invoice 2027-03-12..2027-03-25 120.00",
        "invoice 2027-03-26..2027-04-08 120.00",
    ],
    "biweekly-arrears-1st": [
        "invoice 2027-01-01..2027-01-14 120.00",
        "invoice 2027-01-15..2027-01-28 120.00",
        "invoice 2027-01-29..2027-02-11 120.00",
        "invoice 2027-02-12..2027-02-25 120.00",
        "invoice 2027-02-26..2027-03-11 120.00",
        "invoice 2027-03-12..2027-03-25 120.00",
    ],
    "semi_monthly-advance-1st": [
        "invoice 2027-01-01..2027-01-14 120.00",
        "invoice 2027-01-15..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-14 120.00",
        "invoice 2027-02-15..2027-02-28 120.00",
        "invoice 2027-03-01..2027-03-14 120.00",
        "invoice 2027-03-15..2027-03-31 120.00",
        "invoice 2027-04-01..2027-04-14 120.00",
    ],
    "semi_monthly-arrears-1st": [
        "invoice 2027-01-01..2027-01-14 120.00",
        "invoice 2027-01-15..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-14 120.00",
        "invoice 2027-02-15..2027-02-28 120.00",
        "invoice 2027-03-01..2027-03-14 120.00",
        "invoice 2027-03-15..2027-03-31 120.00",
    ],
    "monthly-advance-1st": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 120.00",
        "invoice 2027-03-01..2027-03-31 120.00",
        "invoice 2027-04-01..2027-04-30 120.00",
    ],
    "monthly-arrears-1st": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 120.00",
        "invoice 2027-03-01..2027-03-31 120.00",
    ],
    "bimonthly-advance-1st": [
        "invoice 2027-01-01..2027-02-28 120.00",
        "invoice 2027-03-01..2027-04-30 120.00",
    ],
    "bimonthly-arrears-1st": [
        "invoice 2027-01-01..2027-02-28 120.00",
    ],
    "quarterly-advance-1st": [
        "invoice 2027-01-01..2027-03-31 120.00",
        "invoice 2027-04-01..2027-06-30 120.00",
    ],
    "quarterly-arrears-1st": [
        "invoice 2027-01-01..2027-03-31 120.00",
    ],
    "half_yearly-advance-1st": [
        "invoice 2027-01-01..2027-06-30 120.00",
    ],
    "half_yearly-arrears-1st": [],
    "yearly-advance-1st": [
        "invoice 2027-01-01..2027-12-31 120.00",
    ],
    "yearly-arrears-1st": [],
    "every_10_days-advance-1st": [
        "invoice 2027-01-01..2027-01-10 120.00",
        "invoice 2027-01-11..2027-01-20 120.00",
        "invoice 2027-01-21..2027-01-30 120.00",
        "invoice 2027-01-31..2027-02-09 120.00",
        "invoice 2027-02-10..2027-02-19 120.00",
        "invoice 2027-02-20..2027-03-01 120.00",
        "invoice 2027-03-02..2027-03-11 120.00",
        "invoice 2027-03-12..2027-03-21 120.00",
        "invoice 2027-03-22..2027-03-31 120.00",
        "invoice 2027-04-01..2027-04-10 120.00",
    ],
    "every_10_days-arrears-1st": [
        "invoice 2027-01-01..2027-01-10 120.00",
        "invoice 2027-01-11..2027-01-20 120.00",
        "invoice 2027-01-21..2027-01-30 120.00",
        "invoice 2027-01-31..2027-02-09 120.00",
        "invoice 2027-02-10..2027-02-19 120.00",
        "invoice 2027-02-20..2027-03-01 120.00",
        "invoice 2027-03-02..2027-03-11 120.00",
        "invoice 2027-03-12..2027-03-21 120.00",
        "invoice 2027-03-22..2027-03-31 120.00",
    ],
    "monthly-advance-31st": [  # ✓ checked by hand
        "invoice 2027-01-31..2027-02-27 120.00",
        "invoice 2027-02-28..2027-03-30 120.00",
        "invoice 2027-03-31..2027-04-29 120.00",
        "invoice 2027-04-30..2027-05-30 120.00",
        "invoice 2027-05-31..2027-06-29 120.00",
    ],
    "monthly-arrears-31st": [
        "invoice 2027-01-31..2027-02-27 120.00",
        "invoice 2027-02-28..2027-03-30 120.00",
        "invoice 2027-03-31..2027-04-29 120.00",
        "invoice 2027-04-30..2027-05-30 120.00",
    ],
    "bimonthly-advance-31st": [
        "invoice 2027-01-31..2027-03-30 120.00",
        "invoice 2027-03-31..2027-05-30 120.00",
        "invoice 2027-05-31..2027-07-30 120.00",
    ],
    "bimonthly-arrears-31st": [
        "invoice 2027-01-31..2027-03-30 120.00",
        "invoice 2027-03-31..2027-05-30 120.00",
    ],
    "quarterly-advance-31st": [
        "invoice 2027-01-31..2027-04-29 120.00",
        "invoice 2027-04-30..2027-07-30 120.00",
    ],
    "quarterly-arrears-31st": [
        "invoice 2027-01-31..2027-04-29 120.00",
    ],
    "monthly-advance-leapday": [
        "invoice 2028-02-29..2028-03-28 120.00",
        "invoice 2028-03-29..2028-04-28 120.00",
        "invoice 2028-04-29..2028-05-28 120.00",
        "invoice 2028-05-29..2028-06-28 120.00",
        "invoice 2028-06-29..2028-07-28 120.00",
        "invoice 2028-07-29..2028-08-28 120.00",
        "invoice 2028-08-29..2028-09-28 120.00",
        "invoice 2028-09-29..2028-10-28 120.00",
        "invoice 2028-10-29..2028-11-28 120.00",
        "invoice 2028-11-29..2028-12-28 120.00",
        "invoice 2028-12-29..2029-01-28 120.00",
        "invoice 2029-01-29..2029-02-27 120.00",
        "invoice 2029-02-28..2029-03-28 120.00",
    ],
    "monthly-arrears-leapday": [
        "invoice 2028-02-29..2028-03-28 120.00",
        "invoice 2028-03-29..2028-04-28 120.00",
        "invoice 2028-04-29..2028-05-28 120.00",
        "invoice 2028-05-29..2028-06-28 120.00",
        "invoice 2028-06-29..2028-07-28 120.00",
        "invoice 2028-07-29..2028-08-28 120.00",
        "invoice 2028-08-29..2028-09-28 120.00",
        "invoice 2028-09-29..2028-10-28 120.00",
        "invoice 2028-10-29..2028-11-28 120.00",
        "invoice 2028-11-29..2028-12-28 120.00",
        "invoice 2028-12-29..2029-01-28 120.00",
        "invoice 2029-01-29..2029-02-27 120.00",
    ],
    "yearly-advance-leapday": [  # ✓ checked by hand
        "invoice 2028-02-29..2029-02-27 120.00",
        "invoice 2029-02-28..2030-02-27 120.00",
    ],
    "yearly-arrears-leapday": [
        "invoice 2028-02-29..2029-02-27 120.00",
    ],
    "half_yearly-advance-leapday": [
        "invoice 2028-02-29..2028-08-28 120.00",
        "invoice 2028-08-29..2029-02-27 120.00",
        "invoice 2029-02-28..2029-08-28 120.00",
    ],
    "half_yearly-arrears-leapday": [
        "invoice 2028-02-29..2028-08-28 120.00",
        "invoice 2028-08-29..2029-02-27 120.00",
    ],
    "monthly-advance-30th-february": [
        "invoice 2027-01-30..2027-02-27 120.00",
        "invoice 2027-02-28..2027-03-29 120.00",
        "invoice 2027-03-30..2027-04-29 120.00",
    ],
    "monthly-advance-stub-anchor1": [  # ✓ checked by hand
        "invoice 2027-01-20..2027-01-31 46.45",
        "invoice 2027-02-01..2027-02-28 120.00",
        "invoice 2027-03-01..2027-03-31 120.00",
        "invoice 2027-04-01..2027-04-30 120.00",
    ],
    "monthly-arrears-stub-anchor1": [
        "invoice 2027-01-20..2027-01-31 46.45",
        "invoice 2027-02-01..2027-02-28 120.00",
        "invoice 2027-03-01..2027-03-31 120.00",
    ],
    "quarterly-advance-stub-anchor1": [  # ✓ checked by hand
        "invoice 2027-01-20..2027-01-31 15.65",
        "invoice 2027-02-01..2027-04-30 120.00",
    ],
    "quarterly-arrears-stub-anchor1": [
        "invoice 2027-01-20..2027-01-31 15.65",
    ],
    "yearly-advance-stub-anchor1": [  # ✓ checked by hand
        "invoice 2027-01-20..2027-01-31 3.95",
        "invoice 2027-02-01..2028-01-31 120.00",
    ],
    "yearly-arrears-stub-anchor1": [
        "invoice 2027-01-20..2027-01-31 3.95",
    ],
    "monthly-advance-trial14": [  # ✓ checked by hand
        "invoice 2027-01-15..2027-02-14 120.00",
        "invoice 2027-02-15..2027-03-14 120.00",
        "invoice 2027-03-15..2027-04-14 120.00",
    ],
    "monthly-arrears-trial14": [
        "invoice 2027-01-15..2027-02-14 120.00",
        "invoice 2027-02-15..2027-03-14 120.00",
    ],
    "weekly-advance-trial14": [
        "invoice 2027-01-15..2027-01-21 120.00",
        "invoice 2027-01-22..2027-01-28 120.00",
        "invoice 2027-01-29..2027-02-04 120.00",
        "invoice 2027-02-05..2027-02-11 120.00",
        "invoice 2027-02-12..2027-02-18 120.00",
        "invoice 2027-02-19..2027-02-25 120.00",
        "invoice 2027-02-26..2027-03-04 120.00",
        "invoice 2027-03-05..2027-03-11 120.00",
        "invoice 2027-03-12..2027-03-18 120.00",
        "invoice 2027-03-19..2027-03-25 120.00",
    ],
    "weekly-arrears-trial14": [
        "invoice 2027-01-15..2027-01-21 120.00",
        "invoice 2027-01-22..2027-01-28 120.00",
        "invoice 2027-01-29..2027-02-04 120.00",
        "invoice 2027-02-05..2027-02-11 120.00",
        "invoice 2027-02-12..2027-02-18 120.00",
        "invoice 2027-02-19..2027-02-25 120.00",
        "invoice 2027-02-26..2027-03-04 120.00",
        "invoice 2027-03-05..2027-03-11 120.00",
        "invoice 2027-03-12..2027-03-18 120.00",
    ],
    "monthly-trial-anchor1": [
        "invoice 2027-01-11..2027-01-31 81.29",
        "invoice 2027-02-01..2027-02-28 120.00",
        "invoice 2027-03-01..2027-03-31 120.00",
    ],
    "monthly-advance-pause": [  # ✓ checked by hand
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-04-01..2027-04-30 120.00",
        "invoice 2027-05-01..2027-05-31 120.00",
        "invoice 2027-06-01..2027-06-30 120.00",
    ],
    "monthly-arrears-pause": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-04-01..2027-04-30 120.00",
        "invoice 2027-05-01..2027-05-31 120.00",
    ],
    "weekly-advance-pause": [
        "invoice 2027-01-01..2027-01-07 120.00",
        "invoice 2027-01-08..2027-01-14 120.00",
        "invoice 2027-01-15..2027-01-21 120.00",
        "invoice 2027-01-22..2027-01-28 120.00",
        "invoice 2027-01-29..2027-02-04 120.00",
        "invoice 2027-04-02..2027-04-08 120.00",
        "invoice 2027-04-09..2027-04-15 120.00",
        "invoice 2027-04-16..2027-04-22 120.00",
        "invoice 2027-04-23..2027-04-29 120.00",
        "invoice 2027-04-30..2027-05-06 120.00",
        "invoice 2027-05-07..2027-05-13 120.00",
        "invoice 2027-05-14..2027-05-20 120.00",
        "invoice 2027-05-21..2027-05-27 120.00",
        "invoice 2027-05-28..2027-06-03 120.00",
    ],
    "weekly-arrears-pause": [
        "invoice 2027-01-01..2027-01-07 120.00",
        "invoice 2027-01-08..2027-01-14 120.00",
        "invoice 2027-01-15..2027-01-21 120.00",
        "invoice 2027-01-22..2027-01-28 120.00",
        "invoice 2027-01-29..2027-02-04 120.00",
        "invoice 2027-04-02..2027-04-08 120.00",
        "invoice 2027-04-09..2027-04-15 120.00",
        "invoice 2027-04-16..2027-04-22 120.00",
        "invoice 2027-04-23..2027-04-29 120.00",
        "invoice 2027-04-30..2027-05-06 120.00",
        "invoice 2027-05-07..2027-05-13 120.00",
        "invoice 2027-05-14..2027-05-20 120.00",
        "invoice 2027-05-21..2027-05-27 120.00",
    ],
    "monthly-advance-upgrade-invoice_now": [  # ✓ checked by hand
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice change 61.93",
        "invoice 2027-02-01..2027-02-28 240.00",
        "invoice 2027-03-01..2027-03-31 240.00",
    ],
    "monthly-advance-upgrade-next_invoice": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 301.93",
        "invoice 2027-03-01..2027-03-31 240.00",
    ],
    "monthly-advance-upgrade-none": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 240.00",
        "invoice 2027-03-01..2027-03-31 240.00",
    ],
    "monthly-advance-downgrade-invoice_now": [  # ✓ checked by hand
        "invoice 2027-01-01..2027-01-31 120.00",
        "credit change 30.97",
        "invoice 2027-02-01..2027-02-28 60.00",
        "invoice 2027-03-01..2027-03-31 60.00",
    ],
    "monthly-advance-downgrade-next_invoice": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "credit change 30.97",
        "invoice 2027-02-01..2027-02-28 60.00",
        "invoice 2027-03-01..2027-03-31 60.00",
    ],
    "monthly-advance-downgrade-none": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 60.00",
        "invoice 2027-03-01..2027-03-31 60.00",
    ],
    "monthly-arrears-upgrade-invoice_now": [  # ✓ checked by hand
        "invoice 2027-01-01..2027-01-31 181.93",
        "invoice 2027-02-01..2027-02-28 240.00",
    ],
    "monthly-arrears-upgrade-next_invoice": [
        "invoice 2027-01-01..2027-01-31 181.93",
        "invoice 2027-02-01..2027-02-28 240.00",
    ],
    "monthly-arrears-upgrade-none": [
        "invoice 2027-01-01..2027-01-31 181.93",
        "invoice 2027-02-01..2027-02-28 240.00",
    ],
    "monthly-arrears-downgrade-invoice_now": [
        "invoice 2027-01-01..2027-01-31 89.03",
        "invoice 2027-02-01..2027-02-28 60.00",
    ],
    "monthly-arrears-downgrade-next_invoice": [
        "invoice 2027-01-01..2027-01-31 89.03",
        "invoice 2027-02-01..2027-02-28 60.00",
    ],
    "monthly-arrears-downgrade-none": [  # ✓ checked by hand
        "invoice 2027-01-01..2027-01-31 89.03",
        "invoice 2027-02-01..2027-02-28 60.00",
    ],
    "monthly-advance-cancel-period_end": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 120.00",
    ],
    "monthly-advance-cancel-now": [  # ✓ checked by hand
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 120.00",
        "credit change 81.43",
    ],
    "monthly-arrears-cancel-period_end": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 120.00",
    ],
    "monthly-arrears-cancel-now": [  # ✓ checked by hand
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-09 38.57",
    ],
    "monthly-advance-after3": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 120.00",
        "invoice 2027-03-01..2027-03-31 120.00",
    ],
    "monthly-arrears-after3": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 120.00",
        "invoice 2027-03-01..2027-03-31 120.00",
    ],
    "quarterly-advance-after3": [
        "invoice 2027-01-01..2027-03-31 120.00",
        "invoice 2027-04-01..2027-06-30 120.00",
        "invoice 2027-07-01..2027-09-30 120.00",
    ],
    "quarterly-arrears-after3": [
        "invoice 2027-01-01..2027-03-31 120.00",
        "invoice 2027-04-01..2027-06-30 120.00",
        "invoice 2027-07-01..2027-09-30 120.00",
    ],
    "monthly-advance-ends-on": [  # ✓ checked by hand
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 120.00",
        "invoice 2027-03-01..2027-03-15 58.06",
    ],
    "monthly-arrears-ends-on": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 120.00",
        "invoice 2027-03-01..2027-03-15 58.06",
    ],
    "monthly-advance-catchup": [
        "invoice 2027-01-01..2027-01-31 120.00",
        "invoice 2027-02-01..2027-02-28 120.00",
        "invoice 2027-03-01..2027-03-31 120.00",
        "invoice 2027-04-01..2027-04-30 120.00",
        "invoice 2027-05-01..2027-05-31 120.00",
    ],
    "weekly-arrears-catchup": [
        "invoice 2027-01-01..2027-01-07 120.00",
        "invoice 2027-01-08..2027-01-14 120.00",
        "invoice 2027-01-15..2027-01-21 120.00",
        "invoice 2027-01-22..2027-01-28 120.00",
        "invoice 2027-01-29..2027-02-04 120.00",
        "invoice 2027-02-05..2027-02-11 120.00",
        "invoice 2027-02-12..2027-02-18 120.00",
    ],
    "monthly-discount-until": [  # ✓ checked by hand
        "invoice 2027-01-01..2027-01-31 108.00",
        "invoice 2027-02-01..2027-02-28 108.00",
        "invoice 2027-03-01..2027-03-31 120.00",
        "invoice 2027-04-01..2027-04-30 120.00",
    ],
    "monthly-drafts": [
        "draft 2027-01-01..2027-01-31 120.00",
        "draft 2027-02-01..2027-02-28 120.00",
        "draft 2027-03-01..2027-03-31 120.00",
    ],
}
