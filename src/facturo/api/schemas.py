"""Types shared by the routers: exact decimals in and out, pagination, problems.

Money, prices, quantities and rates travel as JSON strings (``"729.53"``), never as binary
floats. Inputs also accept JSON numbers, which the API's parser reads as ``Decimal`` (the
digits as written, no float in between); exponents, ``NaN`` and infinities are refused.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, get_args

from django.http import HttpRequest
from ninja import Schema
from ninja.parser import Parser
from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from facturo.core.terms import TermsKind

_PLAIN_DECIMAL = re.compile(r"[+-]?\d{1,20}(?:\.\d{1,20})?")
# Characters that XML 1.0 (Factur-X), PostgreSQL text (NUL) or a PDF cannot carry.
_FORBIDDEN_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def check_text(value: str) -> str:
    found = _FORBIDDEN_CHARACTERS.search(value)
    if found:
        raise PydanticCustomError("control_character",
                                  "Control characters are not allowed (U+{code}).",
                                  {"code": f"{ord(found.group()):04X}"})  # fmt: skip
    return value


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def optional(**kwargs: Any) -> Any:
    """An optional field that, when sent, must not be ``null`` (omit it to leave the value
    unchanged). Typed ``Any`` so that ``name: str = optional()`` reads as what it means."""
    return Field(None, json_schema_extra=_drop_default, **kwargs)


class Input(Schema):
    """Base of every request schema: texts must be printable, because they end up in the
    Factur-X XML and the PDF (a NUL or a form feed would only fail later, at issue)."""

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        if isinstance(value, str):
            check_text(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    check_text(item)
        return value


class DecimalJSONParser(Parser):
    """JSON bodies with numbers read as ``Decimal``; ``NaN``/``Infinity`` are not JSON."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        def refuse(name: str) -> Any:
            raise ValueError(f"{name} is not a number")

        data: dict[str, Any] = json.loads(request.body, parse_float=Decimal,
                                          parse_constant=refuse)  # fmt: skip
        return data


def _decimal_validator(places: int, limit: int) -> Any:
    bound = Decimal(limit)

    def validate(value: Any) -> Decimal:
        if isinstance(value, bool | float):
            raise PydanticCustomError("decimal_type", 'Send decimals as strings, e.g. "12.50".')
        if isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, Decimal):
            number = value
        elif isinstance(value, str):
            text = value.strip()
            if not _PLAIN_DECIMAL.fullmatch(text):
                raise PydanticCustomError(
                    "decimal_format", "“{value}” is not a decimal number such as 1234.56.",
                    {"value": value[:40]},
                )  # fmt: skip
            try:
                number = Decimal(text)
            except InvalidOperation:  # pragma: no cover - the pattern already ensures it
                raise PydanticCustomError("decimal_format", "Not a decimal number.") from None
        else:
            raise PydanticCustomError("decimal_type", "Expected a decimal number as a string.")
        if not number.is_finite():
            raise PydanticCustomError("decimal_format", "Not a finite number.")
        if abs(number) >= bound:
            raise PydanticCustomError("decimal_too_large",
                                      "Must be smaller than {limit} in absolute value.",
                                      {"limit": limit})  # fmt: skip
        exponent = number.as_tuple().exponent
        assert isinstance(exponent, int)
        if exponent < -places:
            number = number.normalize()  # "1.500000" is fine, "1.5000001" is not
            exponent = number.as_tuple().exponent
            assert isinstance(exponent, int)
            if exponent < -places:
                raise PydanticCustomError("decimal_places", "At most {places} decimals.",
                                          {"places": places})  # fmt: skip
            if exponent > 0:
                number = number.quantize(Decimal(1))
        return number

    return validate


def decimal_type(places: int, limit: int, example: str) -> Any:
    integer_digits = len(str(limit)) - 1
    pattern = rf"^[+-]?\d{{1,{integer_digits}}}(\.\d{{1,{places}}})?$"
    return Annotated[
        Decimal,
        BeforeValidator(_decimal_validator(places, limit)),
        WithJsonSchema({"type": "string", "pattern": pattern, "examples": [example],
                        "description": f"Exact decimal as a string (at most {places} "
                                       "decimals); a JSON number is read digit for digit."}),
    ]  # fmt: skip


# Bounds keep every product of quantity × price inside the exact integer columns.
Quantity = decimal_type(4, 10**9, "2.5")
UnitPrice = decimal_type(6, 10**9, "99.99")
Percent = decimal_type(4, 10**4, "20")

# "" means: the default terms (the customer's, else the organization's).
TermsKindName = Literal["", "on_receipt", "net", "days_end_of_month", "end_of_month_plus"]
assert set(get_args(TermsKindName)) == {"", *(k.value for k in TermsKind)}

DecimalOut = Annotated[
    str, WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["729.53"]})
]


def plain(value: Decimal | None, min_places: int = 0) -> str | None:
    """``Decimal("99.990000")`` → ``"99.99"``; never an exponent; at least ``min_places``."""
    if value is None:
        return None
    if value == 0:
        value = Decimal(0)
    text = format(value.normalize(), "f")
    if min_places:
        places = len(text.partition(".")[2])
        if places < min_places:
            text = format(value.quantize(Decimal(1).scaleb(-min_places)), "f")
    return text


# --- pagination ------------------------------------------------------------------------------

MAX_LIMIT = 200


class PageParams(Input):
    limit: int = Field(50, ge=1, le=MAX_LIMIT, description="Page size (at most 200).")
    offset: int = Field(0, ge=0, le=10**9, description="Items to skip.")


class PageMeta(Schema):
    count: int = Field(description="Total number of items matching the filters.")
    limit: int
    offset: int


# --- problems (for the OpenAPI document; responses are built in errors.py) -------------------


class FieldError(Schema):
    field: str
    code: str
    message: str


class Problem(Schema):
    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable error code, e.g. invoice.already_issued.")
    field: str | None = None
    errors: list[FieldError] | None = None
