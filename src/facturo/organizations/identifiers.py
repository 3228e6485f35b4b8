"""Checks of French and EU identifiers with python-stdnum and schwifty.

No hand-written checksums."""

from __future__ import annotations

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum import exceptions as stdnum_errors
from stdnum.eu import vat
from stdnum.fr import siren, siret

from facturo.core.errors import BusinessError, _


def clean_siren(value: str, field: str = "siren") -> str:
    if not value:
        return ""
    try:
        return str(siren.validate(value))
    except stdnum_errors.ValidationError:
        raise BusinessError(
            "identifier.invalid_siren",
            _("“%(value)s” is not a valid SIREN: 9 digits with a valid check digit."),
            field=field,
            value=value,
        ) from None


def clean_siret(value: str, field: str = "siret") -> str:
    if not value:
        return ""
    try:
        return str(siret.validate(value))
    except stdnum_errors.ValidationError:
        raise BusinessError(
            "identifier.invalid_siret",
            _(
                "“%(value)s” is not a valid SIRET: 14 digits (SIREN + NIC) with a valid "
                "check digit."
            ),
            field=field,
            value=value,
        ) from None


def clean_vat_number(value: str, field: str = "vat_number") -> str:
    if not value:
        return ""
    try:
        return str(vat.validate(value))
    except stdnum_errors.ValidationError:
        raise BusinessError(
            "identifier.invalid_vat",
            _("“%(value)s” is not a valid EU VAT number (e.g. FR44732829320)."),
            field=field,
            value=value,
        ) from None


def clean_iban(value: str, field: str = "iban") -> str:
    if not value:
        return ""
    try:
        return str(IBAN(value).compact)
    except SchwiftyException:
        raise BusinessError(
            "identifier.invalid_iban",
            _("“%(value)s” is not a valid IBAN (check the country code and the check digits)."),
            field=field,
            value=value,
        ) from None


def clean_bic(value: str, field: str = "bic") -> str:
    if not value:
        return ""
    try:
        return str(BIC(value).compact)
    except SchwiftyException:
        raise BusinessError(
            "identifier.invalid_bic",
            _("“%(value)s” is not a valid BIC (8 or 11 characters)."),
            field=field,
            value=value,
        ) from None


def check_siret_matches(siren_value: str, siret_value: str) -> None:
    if siren_value and siret_value and not siret_value.startswith(siren_value):
        raise BusinessError(
            "identifier.siret_siren_mismatch",
            _("The SIRET %(siret)s does not belong to the SIREN %(siren)s."),
            field="siret",
            siret=siret_value,
            siren=siren_value,
        )
