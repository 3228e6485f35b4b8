"""HTTP endpoint for providers' webhooks: thin over :func:`online.handle_webhook`."""

from __future__ import annotations

import structlog
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import online

log = structlog.get_logger(__name__)


@csrf_exempt  # authenticated by the provider's signature, not by a session
@require_POST
def provider_webhook(request: HttpRequest, provider: str, token: str) -> HttpResponse:
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        outcome = online.handle_webhook(provider, token, request.body, headers)
    except online.WebhookRejected as exc:
        log.warning("webhook rejected", provider=provider, reason=str(exc))
        return HttpResponse(f"rejected: {exc}", status=400, content_type="text/plain")
    except LookupError:
        return HttpResponse(status=404)
    return HttpResponse(outcome, content_type="text/plain")
