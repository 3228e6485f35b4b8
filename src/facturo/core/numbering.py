"""Legal document numbers: a pattern, a counter per period, and the French BT-1 format rules.

Numbers come from one counter per (series, period) locked in the issuing transaction; this
module only formats and checks them (art. 242 nonies A I-7° CGI; BR-FR-01/02).
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum

from .errors import BusinessError, _

MAX_LENGTH = 35  # BR-FR-01
ALLOWED = re.compile(r"^[A-Za-z0-9+\-_/]+$")  # BR-FR-02
TOKEN = re.compile(r"\{(YYYY|YY|MM|seq(?::0?(\d))?)\}")


class Reset(StrEnum):
    NEVER = "never"
    YEARLY = "yearly"
    MONTHLY = "monthly"


def period_key(reset: Reset, on: date) -> str:
    match Reset(reset):
        case Reset.NEVER:
            return ""
        case Reset.YEARLY:
            return f"{on.year:04d}"
        case Reset.MONTHLY:
            return f"{on.year:04d}-{on.month:02d}"


def format_number(pattern: str, on: date, seq: int) -> str:
    def repl(m: re.Match[str]) -> str:
        token = m.group(1)
        if token == "YYYY":
            return f"{on.year:04d}"
        if token == "YY":
            return f"{on.year % 100:02d}"
        if token == "MM":
            return f"{on.month:02d}"
        width = int(m.group(2) or 0)
        return f"{seq:0{width}d}"

    return TOKEN.sub(repl, pattern)


def check_number(number: str) -> str:
    if len(number) > MAX_LENGTH or not ALLOWED.match(number):
        raise BusinessError(
            "numbering.invalid_number",
            _(
                "Invoice number “%(number)s” is not allowed: at most 35 letters, digits or "
                "+ - _ / (no spaces)."
            ),
            field="pattern",
            number=number,
        )
    return number


def check_pattern(pattern: str, reset: Reset) -> str:
    """Refuse a pattern that could produce duplicates or an invalid number."""
    if "{seq" not in pattern:
        raise BusinessError(
            "numbering.no_sequence",
            _("The numbering pattern must contain {seq} (e.g. FA-{YYYY}-{seq:05})."),
            field="pattern",
        )
    leftover = TOKEN.sub("", pattern)
    if "{" in leftover or "}" in leftover:
        raise BusinessError(
            "numbering.unknown_token",
            _("Unknown token in “%(pattern)s”: use {YYYY}, {YY}, {MM} and {seq} or {seq:05}."),
            field="pattern",
            pattern=pattern,
        )
    if Reset(reset) == Reset.YEARLY and "{YY" not in pattern:
        raise BusinessError(
            "numbering.reset_needs_year",
            _("A series reset every year must contain the year ({YYYY} or {YY}) in its pattern."),
            field="pattern",
        )
    if Reset(reset) == Reset.MONTHLY and ("{MM}" not in pattern or "{YY" not in pattern):
        raise BusinessError(
            "numbering.reset_needs_month",
            _("A series reset every month must contain {YYYY} (or {YY}) and {MM}."),
            field="pattern",
        )
    # The longest number this pattern can produce with a 9-digit counter must still be valid.
    check_number(format_number(pattern, date(2099, 12, 31), 999_999_999))
    return pattern
