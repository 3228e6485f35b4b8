"""Exact decimal storage on SQLite and PostgreSQL alike.

SQLite has no exact decimal type (Django's DecimalField goes through a float there), so
amounts are stored as BIGINT counting 10^-scale units (CONVENTIONS.md, « Money »).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.expressions import Combinable

MONEY_SCALE = 3  # currencies with up to 3 decimals (TND)
PRICE_SCALE = 6  # unit prices
QUANTITY_SCALE = 4  # quantities (BR-FR-DEC-02)
RATE_SCALE = 4  # percentages


if TYPE_CHECKING:
    _Base = models.Field[Decimal | int | str | Combinable, Decimal]
else:
    _Base = models.Field


class ScaledDecimalField(_Base):
    """A Decimal stored exactly as a BIGINT number of 10^-scale units."""

    description = "Exact decimal stored as a scaled integer"

    def __init__(self, *args: Any, scale: int = MONEY_SCALE, **kwargs: Any) -> None:
        self.scale = scale
        super().__init__(*args, **kwargs)

    def get_default(self) -> Any:
        return self.to_python(super().get_default())

    def get_internal_type(self) -> str:
        return "BigIntegerField"

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["scale"] = self.scale
        return name, path, args, kwargs

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Decimal | None:
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-self.scale)

    def to_python(self, value: Any) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, float):
            raise ValidationError("Floats are not accepted for exact amounts.")
        try:
            return Decimal(str(value))
        except ArithmeticError as exc:
            raise ValidationError(f"“{value}” is not a number.") from exc

    def get_prep_value(self, value: Any) -> Any:
        if hasattr(value, "resolve_expression"):
            return value
        value = self.to_python(value)
        if value is None:
            return None
        scaled = value.scaleb(self.scale)
        if scaled != scaled.to_integral_value():
            raise ValidationError(
                f"{value} has more than {self.scale} decimals and cannot be stored exactly."
            )
        return int(scaled)

    def formfield(self, **kwargs: Any) -> Any:
        from django import forms

        return super().formfield(
            **{"form_class": forms.DecimalField, "decimal_places": self.scale, **kwargs}
        )
