"""ISO 11649 structured creditor references ("RF" references) derived from invoice numbers.

Banks carry the reference unchanged from the payer to us, and its check digits catch typing
errors, so a transfer quoting it matches its invoice exactly.
"""

from __future__ import annotations

import hashlib
import re

from stdnum import iso11649
from stdnum.iso7064 import mod_97_10

MAX_BODY = 21  # RF + 2 check digits + at most 21 letters or digits


def creditor_reference(number: str) -> str:
    """``RFkk`` + the invoice number's letters and digits (upper case). A number longer
    than 21 such characters is replaced by a 21-character digest of it, still unique in
    practice and stable."""
    body = re.sub(r"[^0-9A-Za-z]", "", number).upper()
    if not body:
        raise ValueError("an invoice number is needed to derive a creditor reference")
    if len(body) > MAX_BODY:
        body = str(int(hashlib.sha256(number.encode()).hexdigest(), 16))[:MAX_BODY]
    reference = "RF" + mod_97_10.calc_check_digits(body + "RF") + body
    return iso11649.validate(reference)


def is_creditor_reference(text: str) -> bool:
    return bool(iso11649.is_valid(text))
