"""The invoice page a customer reaches from a signed link: no login, 404 on anything else."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import content_disposition_header
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from facturo.core.errors import BusinessError
from facturo.documents import services as documents
from facturo.documents.models import StoredDocument
from facturo.invoicing.models import Invoice
from facturo.payments import online, selectors, sepa

from . import links
from .forms import MandateForm


def _invoice(token: str) -> Invoice:
    invoice = links.resolve(token)
    if invoice is None:
        raise Http404()
    return invoice


def _language(invoice: Invoice) -> str:
    return "en" if (invoice.language or "fr").startswith("en") else "fr"


def _money(amount: Decimal, currency: str, language: str) -> str:
    return format_currency(amount, currency, locale="fr_FR" if language == "fr" else "en_GB")


def _message(err: BusinessError) -> str:
    template = gettext(err.message_template)
    try:
        return template % err.params if err.params else template
    except (KeyError, ValueError, TypeError):
        return err.message


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


@require_http_methods(["GET", "POST"])
def invoice_page(request: HttpRequest, token: str) -> HttpResponse:
    invoice = _invoice(token)
    language = _language(invoice)
    with translation.override(language):
        creditor = selectors.sepa_creditor(invoice.organization_id)
        today = timezone.localdate()
        mandate = selectors.active_mandate(invoice, today)
        form = MandateForm(creditor=creditor.name if creditor else "")
        if request.method == "POST":
            if creditor is None or mandate is not None:
                raise Http404()
            form = MandateForm(request.POST, creditor=creditor.name)
            if form.is_valid():
                try:
                    sepa.sign_mandate_in_portal(
                        invoice,
                        iban=form.cleaned_data["iban"],
                        bic=form.cleaned_data["bic"],
                        debtor_name=form.cleaned_data["debtor_name"],
                        signed_on=today,
                        signed_ip=_client_ip(request),
                    )
                except BusinessError as exc:
                    field = exc.field if exc.field in form.fields else None
                    form.add_error(field, _message(exc))
                else:
                    return HttpResponseRedirect(request.path + "?mandate=signed")
        balance = selectors.invoice_balance(invoice)
        currency = invoice.currency
        context = {
            "invoice": invoice,
            "organization": invoice.organization,
            "token": token,
            "language": language,
            "total": _money(balance.total, currency, language),
            "credited": _money(balance.credited, currency, language) if balance.credited else "",
            "paid": _money(balance.allocated, currency, language),
            "due": _money(balance.due, currency, language),
            "is_due": balance.due > 0,
            "has_pdf": StoredDocument.objects.filter(
                organization_id=invoice.organization_id,
                owner_id=invoice.pk,
                content_type=documents.PDF,
            ).exists(),
            "can_pay_online": balance.due > 0
            and selectors.online_payment_enabled(invoice.organization_id),
            "creditor": creditor,
            "mandate": mandate,
            "mandate_signed": request.GET.get("mandate") == "signed",
            "form": form,
        }
        response = render(request, "portal/invoice.html", context)
    response["Cache-Control"] = "private, no-store"
    # Keeps the token out of other sites' logs; "no-referrer" would make browsers send
    # "Origin: null" with our own forms, which CSRF protection rightly refuses.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_http_methods(["GET"])
def invoice_pdf(request: HttpRequest, token: str) -> HttpResponse:
    invoice = _invoice(token)
    try:
        stored = documents.fetch(invoice.organization_id, invoice.pk, documents.PDF)
    except StoredDocument.DoesNotExist:
        raise Http404() from None
    response = HttpResponse(bytes(stored.content), content_type="application/pdf")
    filename = stored.filename.replace("/", "-")
    response["Content-Disposition"] = content_disposition_header(True, filename) or ""
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
def pay_online(request: HttpRequest, token: str) -> HttpResponse:
    invoice = _invoice(token)
    back = request.build_absolute_uri(reverse("portal:invoice", kwargs={"token": token}))
    try:
        url = online.checkout_url(invoice, success_url=back + "?paid=1", cancel_url=back)
    except BusinessError:
        return HttpResponseRedirect(back)
    return HttpResponseRedirect(url)
