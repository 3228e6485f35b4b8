"""SEPA creditor identifiers (AT-02; "ICS" in France): ISO 7064 MOD 97-10 check digits over
the national part, computed by python-stdnum; French ones also have their fixed shape
``FRkk`` + 3-character business code (usually ``ZZZ``) + 6 characters."""

from __future__ import annotations

import re

from stdnum.eu import at_02
from stdnum.exceptions import ValidationError

FRENCH = re.compile(r"^FR[0-9]{2}[A-Z0-9]{3}[A-Z0-9]{6}$")


class BadCreditorIdentifier(ValueError):
    pass


def normalize(text: str) -> str:
    """The compact identifier, or :class:`BadCreditorIdentifier` saying what is wrong."""
    compact = re.sub(r"[\s.-]", "", text or "").upper()
    if not compact:
        raise BadCreditorIdentifier("empty")
    try:
        at_02.validate(compact)
    except ValidationError as exc:
        raise BadCreditorIdentifier(str(exc).rstrip(".")) from None
    if compact.startswith("FR") and not FRENCH.match(compact):
        raise BadCreditorIdentifier("a French ICS is FRkk + 3 characters + 6 characters")
    return compact
