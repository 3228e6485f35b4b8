"""Template context: the organization the user is working in."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def organization(request: HttpRequest) -> dict[str, Any]:
    return {
        "current_org": getattr(request, "organization", None),
        "current_role": getattr(request, "role", None),
    }
