"""Text typed by people, checked before it reaches a legal document or an XML file."""

from __future__ import annotations

import re

from .errors import BusinessError, _

# C0/C1 controls other than tab, newline and carriage return, and the UTF-16 surrogates and
# non-characters that XML 1.0 cannot carry.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean_text(value: object, field: str, *, max_length: int | None = None) -> str:
    """Strip surrounding spaces; refuse control characters with the position of the first."""
    text = "" if value is None else str(value).strip()
    match = _FORBIDDEN.search(text)
    if match:
        raise BusinessError(
            "input.control_character",
            _("Invisible control character U+%(codepoint)s at position %(position)s: remove it "
              "(it often comes from a copy-paste)."),
            field=field,
            codepoint=f"{ord(match.group()):04X}",
            position=match.start() + 1,
        )  # fmt: skip
    if max_length is not None and len(text) > max_length:
        raise BusinessError(
            "input.too_long",
            _("At most %(max)s characters (%(length)s given)."),
            field=field,
            max=max_length,
            length=len(text),
        )
    return text
