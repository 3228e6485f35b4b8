"""The late-interest rate table: a superuser adds a row each half-year (1 Jan, 1 Jul). It is
the one table of this app edited here: it is shared by every organization (it is the law's
rate, not a setting), so only superusers may change it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import InterestRate


@admin.register(InterestRate)
class InterestRateAdmin(admin.ModelAdmin):
    list_display = ("start", "ecb_refinancing", "legal", "source")
    ordering = ("-start",)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)
