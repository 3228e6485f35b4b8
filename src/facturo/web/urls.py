from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
]

try:  # the API and the web UI register themselves when present
    from facturo.api.urls import urlpatterns as api_urls

    urlpatterns += api_urls
except ImportError:  # pragma: no cover - during the first build only
    pass
try:
    from facturo.web.views import urlpatterns as web_urls

    urlpatterns += [path("", include((web_urls, "web"), namespace="web"))]
except ImportError:  # pragma: no cover
    pass
