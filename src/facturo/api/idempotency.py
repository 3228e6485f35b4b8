"""``Idempotency-Key`` on every POST of the API, so that a retried request acts once.

The rules (also in the OpenAPI description):

- The key is chosen by the client (a random UUID is a good choice): 1 to 255 printable ASCII
  characters, optionally in double quotes (the structured-field form). Keys are scoped to
  the organization of the token.
- Same key, same method, same path and the same body bytes: the stored response is sent
  again, byte for byte, with the header ``Idempotent-Replayed: true``; nothing runs twice.
- Same key with another method, path or body: ``409`` problem ``idempotency.key_reused``.
- Same key while the first request is still running: ``409`` problem
  ``idempotency.in_progress`` with ``Retry-After``; the unique constraint on
  (organization, key) guarantees that two concurrent requests never both run.
- Only successful (2xx) responses are stored. The request runs in one transaction together
  with the storing of its response, and any other outcome rolls that transaction back, so a
  failed request changed nothing and may be retried (fixed or not) with the same key.
- Keys expire **24 hours** after their first use; an expired key counts as new.
  :func:`purge_expired` deletes expired rows (run it from a periodic job). A key left
  "in progress" by a crashed process is abandoned after 15 minutes.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext

from facturo.foundation.db import atomic, current_alias
from facturo.organizations.models import Organization

from .auth import request_ctx
from .errors import problem
from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_TTL = dt.timedelta(hours=24)
ABANDONED_AFTER = dt.timedelta(minutes=15)
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def purge_expired(now: dt.datetime | None = None) -> int:
    """Delete the keys older than 24 hours; returns how many were deleted."""
    limit = (now or timezone.now()) - KEY_TTL
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=limit).delete()
    return deleted


def _parse_key(raw: str) -> str | None:
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    return key if _KEY.fullmatch(key) else None


def _is_stale(record: IdempotencyRecord, now: dt.datetime) -> bool:
    if record.created_at < now - KEY_TTL:
        return True
    return record.status_code is None and record.created_at < now - ABANDONED_AFTER


def _replay(record: IdempotencyRecord) -> HttpResponse:
    assert record.status_code is not None
    response = HttpResponse(bytes(record.response_body or b""), status=record.status_code,
                            content_type=record.content_type or None)  # fmt: skip
    response[REPLAYED_HEADER] = "true"
    return response


def _key_reused() -> HttpResponse:
    return problem(409, "idempotency.key_reused",
                   gettext("This Idempotency-Key was already used for a different request; "
                           "use a new key for a new request."))  # fmt: skip


def _in_progress() -> HttpResponse:
    return problem(409, "idempotency.in_progress",
                   gettext("A request with this Idempotency-Key is still being processed; "
                           "retry in a moment."), headers={"Retry-After": "1"})  # fmt: skip


def _claim(
    organization: Organization, key: str, method: str, path: str, digest: str
) -> IdempotencyRecord | HttpResponse:
    """Insert the in-progress row, or answer from the row another request inserted."""
    for _attempt in range(3):
        try:
            with atomic():
                return IdempotencyRecord.objects.create(
                    organization=organization, key=key, method=method, path=path,
                    body_sha256=digest,
                )  # fmt: skip
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(organization=organization, key=key).first()
        if existing is None:  # released between our insert and our read: try again
            continue
        if _is_stale(existing, timezone.now()):
            IdempotencyRecord.objects.filter(pk=existing.pk).delete()
            continue
        if (existing.method, existing.path, existing.body_sha256) != (method, path, digest):
            return _key_reused()
        if existing.status_code is None:
            return _in_progress()
        return _replay(existing)
    return _in_progress()


def idempotent(run: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Wrap an operation's ``run`` (django-ninja "view" decorator, applied to every route;
    it acts on POST requests that carry the header)."""

    @functools.wraps(run)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        raw = request.headers.get(HEADER)
        if request.method != "POST" or raw is None:
            return run(request, *args, **kwargs)
        ctx = request_ctx(request)
        if ctx is None:  # let the authentication answer 401
            return run(request, *args, **kwargs)
        key = _parse_key(raw)
        if key is None:
            return problem(400, "idempotency.invalid_key",
                           gettext("The Idempotency-Key must be 1 to 255 printable ASCII "
                                   "characters."), field=HEADER)  # fmt: skip
        try:
            digest = hashlib.sha256(request.body).hexdigest()
        except RequestDataTooBig:
            return problem(413, "input.too_large", gettext("The request body is too large."))
        claimed = _claim(ctx.organization, key, request.method, request.path, digest)
        if isinstance(claimed, HttpResponse):
            return claimed
        record = claimed
        stored = False
        try:
            with atomic():
                response = run(request, *args, **kwargs)
                if 200 <= response.status_code < 300 and not isinstance(
                    response, StreamingHttpResponse
                ):
                    assert isinstance(response, HttpResponse)
                    IdempotencyRecord.objects.filter(pk=record.pk).update(
                        status_code=response.status_code, response_body=response.content,
                        content_type=response.get("Content-Type", ""),
                        completed_at=timezone.now(),
                    )  # fmt: skip
                    stored = True
                else:  # whatever the failed request did, it did not happen
                    transaction.set_rollback(True, using=current_alias())
        finally:
            if not stored:
                IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return response

    return wrapper
