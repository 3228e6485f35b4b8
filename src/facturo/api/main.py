"""The REST API, version 1: one NinjaAPI with its routers, auth, errors and idempotency."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import escape, json_script
from ninja import NinjaAPI
from ninja.openapi.docs import DocsBase
from ninja.openapi.schema import OpenAPISchema

from . import (
    accounting,
    banking,
    customers,
    dunning,
    errors,
    invoices,
    payments,
    products,
    subscriptions,
)
from .auth import BearerAuth
from .idempotency import HEADER, REPLAYED_HEADER, idempotent
from .schemas import DecimalJSONParser, Problem

DESCRIPTION = """
Invoicing for French businesses: customers, catalog, invoices (drafts, issue, credit notes,
deposits), their PDF/A-3 and Factur-X documents.

**Authentication** — every call sends `Authorization: Bearer <token>`; a token acts as one
member of one organization, with that member's role (a read-only member gets 403 on writes).

**Money** — amounts, prices, quantities and rates are JSON strings holding exact decimals
(`"729.53"`), never binary floats. Inputs also accept JSON numbers, read digit for digit.

**Errors** — RFC 9457 problems (`application/problem+json`) with a stable `code`
(e.g. `invoice.already_issued`), a `detail` in the language asked by `Accept-Language`
(fr, en) and the `field` concerned when known (list positions count from 1: `lines.2.quantity`).
Objects of another organization do not exist for you: 404, as for unknown or malformed ids.

**Idempotency** — every POST honours an `Idempotency-Key` header (1–255 printable ASCII
characters, scoped to your organization). Repeating a request with the same key and the same
body returns the stored response again (header `Idempotent-Replayed: true`) without acting
twice; the same key with a different request is a 409 `idempotency.key_reused`; while the
first request is running, a 409 `idempotency.in_progress`. Only successful responses are
stored (a failed request changed nothing and may be retried). **Keys expire after 24 hours.**

**Pagination** — lists take `limit` (≤ 200) and `offset` and return `count`, the total.
"""


class LocalSwagger(DocsBase):
    """Swagger UI from the files bundled with django-ninja, served by this application:
    no CDN at run time (ARCHITECTURE.md) and no need for ``ninja`` in INSTALLED_APPS."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        settings = {"url": self.get_openapi_url(api, kwargs), "layout": "BaseLayout",
                    "deepLinking": True}  # fmt: skip

        def asset(name: str) -> str:
            return escape(reverse("api-docs-asset", kwargs={"name": name}))

        html = (
            '<!DOCTYPE html><html><head><meta charset="utf-8">'
            f"<title>{escape(api.title)}</title>"
            f'<link rel="stylesheet" href="{asset("swagger-ui.css")}"></head><body>'
            f'{json_script(settings, "swagger-settings")}<div id="swagger-ui"></div>'
            f'<script src="{asset("swagger-ui-bundle.js")}"></script>'
            f'<script src="{asset("swagger-ui-init.js")}"></script></body></html>'
        )
        return HttpResponse(html)


class FacturoAPI(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for name, definition in components["Problem"].pop("$defs", {}).items():
            components.setdefault(name, definition)
        problem_response = {
            "description": "An RFC 9457 problem.",
            "content": {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}}},
        }  # fmt: skip
        for operations in schema["paths"].values():
            for method, operation in operations.items():
                operation.setdefault("responses", {}).setdefault("default", problem_response)
                if method == "post":
                    operation.setdefault("parameters", []).append({
                        "in": "header", "name": HEADER, "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        "description": "Makes a retry safe: the same key and body return the "
                                       f"stored response (header `{REPLAYED_HEADER}: true`). "
                                       "Keys expire after 24 hours.",
                    })  # fmt: skip
        return schema


api = FacturoAPI(
    title="facturo API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    auth=BearerAuth(),
    parser=DecimalJSONParser(),
    docs=LocalSwagger(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
errors.install(api)
api.add_decorator(idempotent, mode="view")
api.add_router("", customers.router)
api.add_router("", products.router)
api.add_router("", invoices.router)
api.add_router("", subscriptions.router)
api.add_router("", payments.router)
api.add_router("", banking.router)
api.add_router("", dunning.router)
api.add_router("", accounting.router)
