from django import forms
from django.utils.translation import gettext_lazy as _


class MandateForm(forms.Form):
    debtor_name = forms.CharField(label=_("Account holder"), max_length=70)
    iban = forms.CharField(label=_("IBAN"), max_length=42)
    bic = forms.CharField(label=_("BIC"), max_length=11, required=False)
    consent = forms.BooleanField(
        label=_(
            "By signing this mandate, I authorise %(creditor)s to send instructions to my bank "
            "to debit my account, and my bank to debit my account in accordance with those "
            "instructions. I am entitled to a refund from my bank within 8 weeks of the debit."
        ),
        required=True,
    )

    def __init__(self, *args: object, creditor: str = "", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["consent"]
        field.label = str(field.label) % {"creditor": creditor}
