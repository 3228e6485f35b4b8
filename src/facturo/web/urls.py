from django.contrib import admin
from django.urls import include, path

from facturo.api.urls import urlpatterns as api_urls
from facturo.payments.webhooks import provider_webhook
from facturo.web.views import urlpatterns as web_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/<str:provider>/<str:token>/", provider_webhook, name="provider-webhook"),
    path("p/", include("facturo.portal.urls", namespace="portal")),
]

urlpatterns += api_urls
urlpatterns += [path("", include((web_urls, "web"), namespace="web"))]
