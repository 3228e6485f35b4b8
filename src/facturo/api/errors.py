"""Every error of the API is an RFC 9457 problem (``application/problem+json``).

A problem carries ``type``, ``title``, ``status``, ``detail`` (in the request's language,
from ``Accept-Language``), the stable ``code`` of the error and, when known, the ``field``
it concerns (dotted path, list positions counted from 1 as on an invoice: ``lines.2.quantity``).
Validation problems also list every invalid field in ``errors``. Stack traces never leave
the server: unexpected exceptions are logged and answered with a generic 500 problem.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import get_language, gettext
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.responses import NinjaJSONEncoder

from facturo.core.errors import BusinessError, _

if TYPE_CHECKING:
    from ninja import NinjaAPI

logger = logging.getLogger("facturo.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:facturo:problem:"

TITLES: dict[int, str] = {
    400: _("Malformed request"),
    401: _("Authentication required"),
    403: _("Forbidden"),
    404: _("Not found"),
    405: _("Method not allowed"),
    409: _("Conflict"),
    413: _("Request too large"),
    422: _("Invalid input"),
    429: _("Too many requests"),
    500: _("Server error"),
    501: _("Not implemented"),
    503: _("Service unavailable"),
}


def translate(template: str, params: dict[str, Any] | None = None) -> str:
    """Translate a message template with the active language, then interpolate its
    parameters (as ``BusinessError.message`` does: no interpolation without parameters)."""
    text = gettext(template)
    if not params:
        return text
    try:
        return text % params
    except (KeyError, ValueError, TypeError):  # a broken translation must not hide the error
        return template % params


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": gettext(TITLES.get(status, "Error")),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if field:
        body["field"] = field
    if errors is not None:
        body["errors"] = errors
    response = HttpResponse(
        json.dumps(body, cls=NinjaJSONEncoder, ensure_ascii=False),
        status=status,
        content_type=f"{PROBLEM_CONTENT_TYPE}; charset=utf-8",
    )
    response["Content-Language"] = get_language() or "fr"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def business_problem(err: BusinessError) -> HttpResponse:
    return problem(err.http_status, err.code, translate(err.message_template, err.params),
                   field=err.field)  # fmt: skip


def not_found(code: str = "not_found", detail: str | None = None) -> HttpResponse:
    return problem(404, code, detail or gettext("No such resource."))


# --- field paths of validation errors -------------------------------------------------------


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "payload", "lines", 0, "quantity")`` → ``lines.1.quantity``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        source = parts.pop(0)
        if source == "body" and parts and parts[0] == "payload":
            parts.pop(0)
    return ".".join(str(p + 1) if isinstance(p, int) else str(p) for p in parts)


def validation_problem(exc: ValidationError) -> HttpResponse:
    # A malformed id in the URL names nothing that exists: 404, as for an unknown id.
    if any(err.get("loc", ("",))[0] == "path" for err in exc.errors):
        return not_found()
    errors = [
        {"field": field_path(err.get("loc", ())), "code": f"input.{err.get('type', 'invalid')}",
         "message": str(err.get("msg", ""))}
        for err in exc.errors
    ]  # fmt: skip
    first = errors[0] if errors else {"field": "", "message": ""}
    detail = translate(_("Invalid value for %(field)s: %(message)s"), first) if errors else ""
    return problem(422, "input.invalid", detail, field=first["field"] or None, errors=errors)


# --- wiring into the NinjaAPI ---------------------------------------------------------------


def install(api: NinjaAPI) -> None:
    """Replace django-ninja's default handlers (which may print tracebacks with DEBUG)."""

    def on_business_error(request: HttpRequest, exc: Any) -> HttpResponse:
        return business_problem(exc)

    def on_validation_error(request: HttpRequest, exc: Any) -> HttpResponse:
        return validation_problem(exc)

    def on_authentication_error(request: HttpRequest, exc: Any) -> HttpResponse:
        return problem(401, "auth.unauthenticated",
                       gettext("A valid API token is required: send “Authorization: Bearer "
                               "<token>”."), headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    def on_http_error(request: HttpRequest, exc: Any) -> HttpResponse:
        status = exc.status_code
        code = {400: "input.malformed", 405: "method_not_allowed",
                429: "rate_limited"}.get(status, f"http.{status}")  # fmt: skip
        if status == 400:
            detail = gettext("The request body is not valid JSON.")
        else:
            detail = gettext(TITLES.get(status, "Error"))
        return problem(status, code, detail)

    def on_404(request: HttpRequest, exc: Any) -> HttpResponse:
        return not_found()

    def on_data_error(request: HttpRequest, exc: Any) -> HttpResponse:
        # Inputs are bounded by the schemas; what still overflows a column is refused here.
        logger.warning("value out of range on %s %s: %s", request.method, request.path, exc)
        return problem(422, "input.out_of_range",
                       gettext("A value is too large to be stored."))  # fmt: skip

    def on_unexpected(request: HttpRequest, exc: Any) -> HttpResponse:
        logger.exception("unexpected error on %s %s", request.method, request.path)
        return problem(500, "server.error",
                       gettext("An unexpected error occurred; it has been logged."))  # fmt: skip

    api.add_exception_handler(BusinessError, on_business_error)
    api.add_exception_handler(ValidationError, on_validation_error)
    api.add_exception_handler(AuthenticationError, on_authentication_error)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(Http404, on_404)
    api.add_exception_handler(DataError, on_data_error)
    api.add_exception_handler(OverflowError, on_data_error)
    api.add_exception_handler(Exception, on_unexpected)
