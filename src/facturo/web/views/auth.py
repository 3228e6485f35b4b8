"""Signing in and out, the language and the organization being worked in."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from facturo.web.forms import EmailAuthenticationForm
from facturo.web.middleware import switch_organization

login = auth_views.LoginView.as_view(
    template_name="web/login.html",
    authentication_form=EmailAuthenticationForm,
    redirect_authenticated_user=True,
)
logout = auth_views.LogoutView.as_view(next_page="web:login")


@require_POST
def switch(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("web:login")
    if not switch_organization(request, request.POST.get("organization", "")):
        messages.error(request, _("You are not a member of this organization."))
    # The page the user was on belongs to the previous organization: start from the dashboard.
    return redirect("web:dashboard")
