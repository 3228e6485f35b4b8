"""URLs of the REST API, included by the project's root URLconf."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ninja
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.urls import URLPattern, path, re_path
from django.utils.translation import gettext
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from .errors import PROBLEM_CONTENT_TYPE, not_found, problem
from .main import api

_NINJA_STATIC = Path(ninja.__file__).parent / "static" / "ninja"
_DOCS_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-init.js": "text/javascript",
}


@require_GET
@cache_control(public=True, max_age=86400)
def docs_asset(request: HttpRequest, name: str) -> HttpResponseBase:
    """The Swagger UI files bundled with django-ninja (a fixed list: no path traversal)."""
    if name not in _DOCS_ASSETS:
        return not_found()
    return FileResponse((_NINJA_STATIC / name).open("rb"), content_type=_DOCS_ASSETS[name])


def unknown_route(request: HttpRequest, rest: str) -> HttpResponse:
    return not_found()


def _problem_for_wrong_method(view: Callable[..., HttpResponseBase]) -> Callable[..., Any]:
    """django-ninja answers a wrong method with a plain-text 405; make it a problem too."""

    @functools.wraps(view)  # keeps csrf_exempt
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(
            PROBLEM_CONTENT_TYPE
        ):
            allowed = response.get("Allow", "")
            response = problem(405, "method_not_allowed",
                               gettext("Allowed methods: %(allowed)s.") % {"allowed": allowed},
                               headers={"Allow": allowed})  # fmt: skip
        return response

    return wrapper


def _api_urls() -> Any:
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = _problem_for_wrong_method(pattern.callback)
    return patterns, app_name, namespace


urlpatterns = [
    path("api/v1/docs/assets/<str:name>", docs_asset, name="api-docs-asset"),
    path("api/v1/", _api_urls()),
    re_path(r"^api/v1/(?P<rest>.*)$", unknown_route),
]
