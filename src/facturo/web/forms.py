"""Web forms: they parse and shape input; the services own every business rule.

Identifiers, amounts and rates are plain text here on purpose: the services clean them (with
python-stdnum, schwifty, exact decimals that accept a French comma) and their errors are shown
beside the field they name.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, validate_email
from django.db import models
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from lxml import etree

from facturo.catalog.models import NATURE_CHOICES, UNIT_CHOICES, VAT_CATEGORY_CHOICES, Product
from facturo.customers.models import Customer, CustomerKind
from facturo.organizations.context import Ctx
from facturo.organizations.models import Organization, Role, VatRegime

TERMS_CHOICES = [
    ("on_receipt", _("On receipt")),
    ("net", _("Net (N days)")),
    ("days_end_of_month", _("N days, end of month")),
    ("end_of_month_plus", _("End of month + N days")),
]
RESET_CHOICES = [("yearly", _("Every year")), ("monthly", _("Every month")), ("never", _("Never"))]
LANGUAGE_CHOICES = [("fr", "Français"), ("en", "English")]
DECIMAL_INPUT = {"inputmode": "decimal", "autocomplete": "off"}
LOGO_MAX_BYTES = 1024 * 1024
LOGO_TYPES = {"image/png", "image/jpeg", "image/svg+xml"}


def _label(model: type[models.Model], name: str) -> Any:
    return capfirst(model._meta.get_field(name).verbose_name)  # type: ignore[union-attr]


def _text(
    model: type[models.Model],
    name: str,
    *,
    required: bool = False,
    max_length: int = 200,
    **kwargs: Any,
) -> forms.CharField:
    return forms.CharField(
        label=_label(model, name), required=required, max_length=max_length, **kwargs
    )


def _email_list(value: str) -> list[str]:
    addresses = [a.strip() for a in re.split(r"[,;\s]+", value or "") if a.strip()]
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(
                _("“%(value)s” is not a valid e-mail address."), params={"value": address}
            ) from None
    return addresses


class EmailAuthenticationForm(AuthenticationForm):
    """Django's login form; the user name is the e-mail address."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("E-mail address")
        self.fields["username"].widget.attrs.update(
            {"type": "email", "autocomplete": "email", "autofocus": True}
        )


# --- customers and catalog -----------------------------------------------------------------


class CustomerForm(forms.Form):
    kind = forms.ChoiceField(label=_("Type"), choices=CustomerKind.choices)
    name = _text(Customer, "name", required=True)
    siren = _text(Customer, "siren", max_length=30)
    siret = _text(Customer, "siret", max_length=30)
    vat_number = _text(Customer, "vat_number", max_length=30)
    address_line1 = _text(Customer, "address_line1", required=True)
    address_line2 = _text(Customer, "address_line2")
    postcode = _text(Customer, "postcode", required=True, max_length=20)
    city = _text(Customer, "city", required=True, max_length=100)
    country_code = _text(Customer, "country_code", required=True, max_length=2, initial="FR")
    delivery_line1 = _text(Customer, "delivery_line1")
    delivery_line2 = _text(Customer, "delivery_line2")
    delivery_postcode = _text(Customer, "delivery_postcode", max_length=20)
    delivery_city = _text(Customer, "delivery_city", max_length=100)
    delivery_country_code = _text(Customer, "delivery_country_code", max_length=2)
    email = _text(Customer, "email", max_length=254, widget=forms.EmailInput)
    cc_emails = _text(Customer, "cc_emails", max_length=500)
    accounting_email = _text(Customer, "accounting_email", max_length=254, widget=forms.EmailInput)
    language = forms.ChoiceField(label=_label(Customer, "language"), choices=LANGUAGE_CHOICES)
    currency = _text(Customer, "currency", required=True, max_length=3, initial="EUR")
    payment_terms_kind = forms.ChoiceField(
        label=_label(Customer, "payment_terms_kind"),
        required=False,
        choices=[("", _("Organization default")), *TERMS_CHOICES],
    )
    payment_terms_days = forms.IntegerField(
        label=_label(Customer, "payment_terms_days"), required=False, min_value=0, max_value=365
    )
    notes = _text(Customer, "notes", max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))
    archived = forms.BooleanField(label=_label(Customer, "archived"), required=False)

    def clean_country_code(self) -> str:
        return str(self.cleaned_data["country_code"]).upper()

    def clean_currency(self) -> str:
        return str(self.cleaned_data["currency"]).upper()


class ProductForm(forms.Form):
    code = _text(Product, "code", max_length=50)
    name = _text(Product, "name", required=True)
    description = _text(
        Product, "description", max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )
    unit_code = forms.ChoiceField(label=_label(Product, "unit_code"), choices=UNIT_CHOICES)
    unit_price = _text(
        Product,
        "unit_price",
        required=True,
        max_length=30,
        widget=forms.TextInput(attrs=DECIMAL_INPUT),
    )
    vat_category = forms.ChoiceField(
        label=_label(Product, "vat_category"), choices=VAT_CATEGORY_CHOICES
    )
    vat_rate = _text(
        Product,
        "vat_rate",
        required=True,
        max_length=10,
        initial="20",
        widget=forms.TextInput(attrs=DECIMAL_INPUT),
    )
    nature = forms.ChoiceField(label=_label(Product, "nature"), choices=NATURE_CHOICES)
    account_code = _text(Product, "account_code", max_length=20)
    archived = forms.BooleanField(label=_label(Product, "archived"), required=False)


# --- invoices ------------------------------------------------------------------------------


class InvoiceHeaderForm(forms.Form):
    customer = forms.ModelChoiceField(
        label=_("Customer"), queryset=Customer.objects.none(), empty_label=_("Choose a customer…")
    )
    kind = forms.ChoiceField(
        label=_("Kind"),
        required=False,
        choices=[("invoice", _("Invoice")), ("deposit", _("Deposit invoice"))],
    )
    purchase_order = forms.CharField(label=_("Purchase order"), required=False, max_length=100)
    buyer_reference = forms.CharField(label=_("Buyer reference"), required=False, max_length=100)
    document_discount_percent = forms.CharField(
        label=_("Discount on the whole document (%)"),
        required=False,
        max_length=10,
        widget=forms.TextInput(attrs=DECIMAL_INPUT),
    )
    delivery_date = forms.DateField(
        label=_("Delivery date"),
        required=False,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
    )
    due_date = forms.DateField(
        label=_("Due date"),
        required=False,
        help_text=_("Empty: from the payment terms."),
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
    )
    payment_terms_kind = forms.ChoiceField(
        label=_("Payment terms"),
        required=False,
        choices=[("", _("The customer's usual terms")), *TERMS_CHOICES],
    )
    payment_terms_days = forms.IntegerField(
        label=_("Payment terms (days)"), required=False, min_value=0, max_value=365
    )
    issue_date = forms.DateField(
        label=_("Issue date"),
        required=False,
        help_text=_("Empty: today. Never earlier than the last invoice issued."),
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
    )
    language = forms.ChoiceField(label=_("Language of the document"), choices=LANGUAGE_CHOICES)
    free_text = forms.CharField(
        label=_("Note to the customer"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, ctx: Ctx, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["customer"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Customer.objects.filter(organization=ctx.organization, archived=False)


class SendForm(forms.Form):
    to = forms.CharField(
        label=_("To"), max_length=1000, help_text=_("Several addresses: separate them with commas.")
    )
    cc = forms.CharField(label=_("Copy to"), required=False, max_length=1000)
    # One key per displayed form: a double-click or a retry sends one e-mail, not two.
    request_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def clean_to(self) -> list[str]:
        addresses = _email_list(self.cleaned_data["to"])
        if not addresses:
            raise ValidationError(_("This field is required."))
        return addresses

    def clean_cc(self) -> list[str]:
        return _email_list(self.cleaned_data.get("cc", ""))


class CreditNoteForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("What to credit"),
        widget=forms.RadioSelect,
        initial="full",
        choices=[("full", _("The whole invoice")), ("partial", _("Some lines only"))],
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=300, help_text=_("Shown on the credit note.")
    )


class DepositDeductionForm(forms.Form):
    deposit = forms.UUIDField(label=_("Deposit invoice"))


# --- organization --------------------------------------------------------------------------


class OrganizationForm(forms.Form):
    name = _text(Organization, "name", required=True)
    legal_name = _text(Organization, "legal_name", required=True)
    legal_form = _text(Organization, "legal_form", max_length=50)
    share_capital = _text(Organization, "share_capital", max_length=50)
    siren = _text(Organization, "siren", max_length=30)
    siret = _text(Organization, "siret", max_length=30)
    vat_number = _text(Organization, "vat_number", max_length=30)
    rcs = _text(Organization, "rcs", max_length=100)
    address_line1 = _text(Organization, "address_line1", required=True)
    address_line2 = _text(Organization, "address_line2")
    postcode = _text(Organization, "postcode", required=True, max_length=20)
    city = _text(Organization, "city", required=True, max_length=100)
    country_code = _text(Organization, "country_code", required=True, max_length=2)
    email = _text(Organization, "email", max_length=254, widget=forms.EmailInput)
    phone = _text(Organization, "phone", max_length=30)
    iban = _text(Organization, "iban", max_length=50)
    bic = _text(Organization, "bic", max_length=20)
    accent_color = _text(
        Organization,
        "accent_color",
        required=True,
        max_length=7,
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour such as #1f4e79."))],
        widget=forms.TextInput(attrs={"type": "color"}),
    )
    logo = forms.FileField(
        label=_("Logo"),
        required=False,
        help_text=_("PNG, JPEG or SVG, at most 1 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/svg+xml"}),
    )
    remove_logo = forms.BooleanField(label=_("Remove the logo"), required=False)
    payment_terms_kind = forms.ChoiceField(
        label=_label(Organization, "payment_terms_kind"), choices=TERMS_CHOICES
    )
    payment_terms_days = forms.IntegerField(
        label=_label(Organization, "payment_terms_days"), min_value=0, max_value=365
    )
    late_penalty_rate = forms.DecimalField(
        label=_label(Organization, "late_penalty_rate"),
        required=False,
        localize=True,
        min_value=0,
        max_value=100,
        max_digits=8,
        decimal_places=4,
        help_text=Organization._meta.get_field("late_penalty_rate").help_text,
        widget=forms.TextInput(attrs=DECIMAL_INPUT),
    )
    early_payment_discount = _text(
        Organization,
        "early_payment_discount",
        help_text=Organization._meta.get_field("early_payment_discount").help_text,
    )
    vat_regime = forms.ChoiceField(
        label=_label(Organization, "vat_regime"), choices=VatRegime.choices
    )
    vat_on_debits = forms.BooleanField(label=_label(Organization, "vat_on_debits"), required=False)
    smtp_host = _text(Organization, "smtp_host")
    smtp_port = forms.IntegerField(
        label=_label(Organization, "smtp_port"), required=False, min_value=1, max_value=65535
    )
    smtp_user = _text(Organization, "smtp_user")
    smtp_password = _text(
        Organization,
        "smtp_password",
        help_text=_("Leave empty to keep the current password."),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    smtp_starttls = forms.BooleanField(label=_label(Organization, "smtp_starttls"), required=False)
    email_from = _text(Organization, "email_from", max_length=254, widget=forms.EmailInput)
    accounting_copy_email = _text(
        Organization, "accounting_copy_email", max_length=254, widget=forms.EmailInput
    )

    def clean_country_code(self) -> str:
        return str(self.cleaned_data["country_code"]).upper()

    def clean_logo(self) -> tuple[bytes, str] | None:
        upload = self.cleaned_data.get("logo")
        if not upload:
            return None
        if upload.size is not None and upload.size > LOGO_MAX_BYTES:
            raise ValidationError(_("The logo is larger than 1 MB."))
        data = upload.read(LOGO_MAX_BYTES + 1)
        if len(data) > LOGO_MAX_BYTES:
            raise ValidationError(_("The logo is larger than 1 MB."))
        return data, logo_mime(data)


_SVG = "{http://www.w3.org/2000/svg}"
_FORBIDDEN_SVG = {"script", "foreignObject", "iframe", "embed", "object"}


def logo_mime(data: bytes) -> str:
    """The type of an uploaded logo, read from its bytes (never from the browser's claim)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        raise ValidationError(_("The logo must be a PNG, JPEG or SVG image.")) from None
    if root.tag not in (f"{_SVG}svg", "svg"):
        raise ValidationError(_("The logo must be a PNG, JPEG or SVG image."))
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        name = etree.QName(element).localname
        attributes = {etree.QName(k).localname.lower(): v for k, v in element.attrib.items()}
        external = any(
            k == "href" and not v.startswith("#") and not v.startswith("data:image/")
            for k, v in attributes.items()
        )
        if name in _FORBIDDEN_SVG or external or any(k.startswith("on") for k in attributes):
            raise ValidationError(
                _(
                    "This SVG contains scripts or external references; export it again as a "
                    "plain image."
                )
            )
    return "image/svg+xml"


class SeriesForm(forms.Form):
    pattern = forms.CharField(
        label=_("Pattern"),
        max_length=60,
        help_text=_("Tokens: {YYYY}, {YY}, {MM}, {seq} or {seq:05}."),
    )
    reset = forms.ChoiceField(label=_("Counter restarts"), choices=RESET_CHOICES)


class MemberForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.SALES)
    password = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        help_text=_("For a new user only; leave empty if the person already has an account."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_password(self) -> str:
        password = str(self.cleaned_data.get("password") or "")
        if password:
            validate_password(password)
        return password


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


# --- payments --------------------------------------------------------------------------------

PAYMENT_METHODS = [
    ("transfer", _("Bank transfer")),
    ("card", _("Card")),
    ("sepa_debit", _("SEPA direct debit")),
    ("cheque", _("Cheque")),
    ("cash", _("Cash")),
    ("other", _("Other")),
]


class CustomerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


class PaymentForm(forms.Form):
    customer = CustomerChoiceField(queryset=Customer.objects.none(), label=_("Customer"))
    amount = forms.DecimalField(label=_("Amount"), max_digits=15, decimal_places=2)
    currency = forms.CharField(label=_("Currency"), max_length=3, initial="EUR")
    method = forms.ChoiceField(label=_("Method"), choices=PAYMENT_METHODS, initial="transfer")
    received_on = forms.DateField(
        label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    payer = forms.CharField(label=_("Payer"), max_length=200, required=False)
    reference = forms.CharField(label=_("Reference"), max_length=200, required=False)
    fees = forms.DecimalField(
        label=_("Fees"), max_digits=15, decimal_places=2, required=False, initial=0
    )
    auto_allocate = forms.BooleanField(
        label=_("Allocate to the oldest open invoices"), required=False, initial=True
    )

    def __init__(self, *args: Any, ctx: Ctx, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["customer"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Customer.objects.filter(
            organization=ctx.organization, archived=False
        ).order_by("name")


class AllocateForm(forms.Form):
    invoice = forms.ChoiceField(label=_("Invoice"))
    amount = forms.DecimalField(label=_("Amount"), max_digits=15, decimal_places=2)

    def __init__(self, *args: Any, invoices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["invoice"].choices = invoices  # type: ignore[attr-defined]


class UnallocateForm(forms.Form):
    allocation = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label=_("Reason"), max_length=300)


class RefundForm(forms.Form):
    amount = forms.DecimalField(label=_("Amount"), max_digits=15, decimal_places=2)
    refunded_on = forms.DateField(
        label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    method = forms.ChoiceField(label=_("Method"), choices=PAYMENT_METHODS, initial="transfer")
    reference = forms.CharField(label=_("Reference"), max_length=200, required=False)


class MandateCreateForm(forms.Form):
    customer = CustomerChoiceField(queryset=Customer.objects.none(), label=_("Customer"))
    debtor_name = forms.CharField(label=_("Account holder"), max_length=70)
    iban = forms.CharField(label=_("IBAN"), max_length=50)
    bic = forms.CharField(label=_("BIC"), max_length=20, required=False)
    signed_on = forms.DateField(
        label=_("Signature date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    kind = forms.ChoiceField(
        label=_("Kind"), choices=[("recurrent", _("Recurrent")), ("one_off", _("One-off"))]
    )
    reference = forms.CharField(
        label=_("Mandate reference (UMR)"),
        max_length=35,
        required=False,
        help_text=_("Leave empty to generate one."),
    )

    def __init__(self, *args: Any, ctx: Ctx, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["customer"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Customer.objects.filter(
            organization=ctx.organization, archived=False
        ).order_by("name")


class RevokeForm(forms.Form):
    revoked_on = forms.DateField(
        label=_("Revoked on"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    reason = forms.CharField(label=_("Reason"), max_length=300, required=False)


PAIN_VERSIONS = [("pain.008.001.02", "pain.008.001.02"), ("pain.008.001.08", "pain.008.001.08")]


class BatchForm(forms.Form):
    collection_date = forms.DateField(
        label=_("Collection date"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    version = forms.ChoiceField(label=_("SEPA file version"), choices=PAIN_VERSIONS)


class ReturnsUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Bank file (pain.002 or camt.054)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".xml,application/xml,text/xml"}),
    )


class ManualReturnForm(forms.Form):
    payment = forms.UUIDField(widget=forms.HiddenInput)
    reason_code = forms.ChoiceField(label=_("Reason"))
    returned_on = forms.DateField(
        label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def __init__(self, *args: Any, reasons: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason_code"].choices = reasons  # type: ignore[attr-defined]


class StripeForm(forms.Form):
    secret_key = forms.CharField(
        label=_("Secret key"), max_length=255, widget=forms.PasswordInput(render_value=False),
        help_text=_("sk_live_… or sk_test_…; leave empty to keep the current one."),
        required=False,
    )  # fmt: skip
    webhook_secret = forms.CharField(
        label=_("Webhook signing secret"), max_length=255, required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("whsec_…; leave empty to keep the current one."),
    )  # fmt: skip
    enabled = forms.BooleanField(label=_("Online payment enabled"), required=False)


class PaymentSettingsForm(forms.Form):
    notify_on_payment = forms.ChoiceField(
        label=_("Notify when a payment is received"),
        choices=[
            ("issuer", _("The member who issued the invoice")),
            ("address", _("A fixed address")),
            ("none", _("Nobody")),
        ],
    )
    notify_address = forms.EmailField(label=_("Notification address"), required=False)
    prenotification_days = forms.IntegerField(
        label=_("SEPA pre-notification (days before collection)"), min_value=0, max_value=30
    )
    pain_version = forms.ChoiceField(label=_("SEPA file version"), choices=PAIN_VERSIONS)


class CreditorForm(forms.Form):
    identifier = forms.CharField(label=_("Creditor identifier (ICS)"), max_length=40)
    iban = forms.CharField(
        label=_("IBAN credited"), max_length=50, required=False,
        help_text=_("Default: the organization's IBAN."),
    )  # fmt: skip
    bic = forms.CharField(label=_("BIC"), max_length=20, required=False)
