"""Business errors with a stable code, shared by every layer.

Messages are English templates marked with ``_`` so that Django's ``makemessages`` collects
them; the web and API layers translate ``message_template`` and interpolate ``params``.
"""

from __future__ import annotations

from typing import Any


def _(message: str) -> str:
    """Mark a message for translation without translating it (the core has no i18n)."""
    return message


class BusinessError(Exception):
    """A rule of the business was broken; ``code`` is stable, the message is for people."""

    http_status = 422

    def __init__(self, code: str, message_template: str, field: str | None = None, **params: Any):
        self.code = code
        self.message_template = message_template
        self.field = field
        self.params = params
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return self.message_template % self.params if self.params else self.message_template


class ConflictError(BusinessError):
    """The request conflicts with the current state (already issued, same key other body…)."""

    http_status = 409


class NotFound(BusinessError):
    """The object does not exist for this organization (never says whether it exists elsewhere)."""

    http_status = 404


class PermissionDenied(BusinessError):
    """The user's role does not allow this action in this organization."""

    http_status = 403
